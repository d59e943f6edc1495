//! Benchmarks against real peers (slapd, scim2-server, PostgreSQL on loopback), for the performance targets P4–P6:
//!
//! - `p4`: time-to-revoke. A provisioned population on all three peers; then leavers, one per
//!   import, each followed by an executor run; from the case's `opened_at` to the last
//!   operation's `verified_at`.
//! - `p5`: provisioning throughput. For each peer, a raw protocol client, the connector's
//!   `apply` and the full executor (apply + read-back + durable queue), all at the same
//!   concurrency, writing the same account + two grants per person.
//! - `p6`: reconciliation of 100,000 LDAP accounts and 200,000 memberships through
//!   `reconcile::reconcile`, with a store that knows every identity and holding.
//!
//! Run: `cargo bench -p tenure-engine --bench peers -- p4|p5|p6|all`. Sizes can be changed with
//! environment variables (see `Knobs`). Results and how to read them: `benches/RESULTS.md`.
//!
//! `cargo test` runs this file too (the bench target sets `test = true`), without `--bench`: then
//! every benchmark runs once at a smoke size (a few people, a few hundred accounts), so a change
//! that breaks a benchmark fails the suite; the figures of such a run mean nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure must stop the run loudly"
)]

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tenure_connect::{AccountSpec, Connector, Request};
use tenure_core::config::Config;
use tenure_core::{EventKind, OpKind, OpState};
use tenure_engine::Engine;
use tenure_engine::executor::{self, Backend, Connectors, ExecOptions, ExecReport};
use tenure_engine::import::{ImportOptions, import_csv};
use tenure_policy::Policy;
use tenure_store::{OpFilter, SqliteStore, Store};
use tenure_testkit::company::{Company, Options, Person};
use tenure_testkit::peers::{Ldap, Postgres, Scim};
use tenure_testkit::stack::Stack;

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`; everything else is the selection.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let which = args.first().map_or("all", String::as_str);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let knobs = if smoke { Knobs::smoke() } else { Knobs::from_env() };
    println!("machine: {} cores, {}", num_cpus(), cpu_model());
    println!("knobs: {knobs:?}");
    match which {
        "p4" => p4(&rt, &knobs)?,
        "p5" => p5(&rt, &knobs)?,
        "p6" => p6(&rt, &knobs)?,
        "all" => {
            p4(&rt, &knobs)?;
            p6(&rt, &knobs)?;
            p5(&rt, &knobs)?;
        }
        other => bail!("unknown benchmark `{other}`: use p4, p5, p6 or all"),
    }
    Ok(())
}

/// Sizes, from the environment.
#[derive(Debug)]
struct Knobs {
    /// P4: the provisioned population (`TENURE_BENCH_P4_PEOPLE`, 200).
    p4_people: usize,
    /// P4: leavers measured (`TENURE_BENCH_P4_LEAVERS`, 100).
    p4_leavers: usize,
    /// P4: leavers per import (`TENURE_BENCH_P4_BATCH`, 1).
    p4_batch: usize,
    /// P5: accounts per peer and path (`TENURE_BENCH_P5_N`, 10,000).
    p5_n: usize,
    /// P5: concurrency of every path (`TENURE_BENCH_P5_CONCURRENCY`, 4, the config default).
    p5_concurrency: usize,
    /// P5: which peers (`TENURE_BENCH_P5_PEERS`, `ldap,scim,postgres`).
    p5_peers: Vec<String>,
    /// P5: which paths (`TENURE_BENCH_P5_PATHS`, `raw,apply,executor`).
    p5_paths: Vec<String>,
    /// P5: raw and apply alternate in this many rounds (`TENURE_BENCH_P5_ROUNDS`, 5).
    p5_rounds: usize,
    /// P6: accounts (`TENURE_BENCH_P6_N`, 100,000).
    p6_n: usize,
}

impl Knobs {
    fn from_env() -> Self {
        let n = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let list = |k: &str, d: &str| {
            std::env::var(k).unwrap_or_else(|_| d.to_string()).split(',').map(|s| s.trim().to_string()).collect()
        };
        Self {
            p4_people: n("TENURE_BENCH_P4_PEOPLE", 200),
            p4_leavers: n("TENURE_BENCH_P4_LEAVERS", 100),
            p4_batch: n("TENURE_BENCH_P4_BATCH", 1).max(1),
            p5_n: n("TENURE_BENCH_P5_N", 10_000),
            p5_concurrency: n("TENURE_BENCH_P5_CONCURRENCY", 4).max(1),
            p5_peers: list("TENURE_BENCH_P5_PEERS", "ldap,scim,postgres"),
            p5_paths: list("TENURE_BENCH_P5_PATHS", "raw,apply,executor"),
            p5_rounds: n("TENURE_BENCH_P5_ROUNDS", 5),
            p6_n: n("TENURE_BENCH_P6_N", 100_000),
        }
    }

    /// The sizes of a `cargo test` run: every path of every benchmark, each over a handful of
    /// people or accounts.
    fn smoke() -> Self {
        Self {
            p4_people: 8,
            p4_leavers: 2,
            p4_batch: 1,
            p5_n: 20,
            p5_concurrency: 2,
            p5_peers: ["ldap", "scim", "postgres"].map(String::from).to_vec(),
            p5_paths: ["raw", "apply", "executor"].map(String::from).to_vec(),
            p5_rounds: 1,
            p6_n: 200,
        }
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

// ---------------------------------------------------------------------------------------------
// Config, policy and store for a bench: no manual target.

fn header(max_leavers: u64) -> String {
    format!(
        r#"[store]
url = "sqlite://tenure-data/tenure.db"

[policy]
path = "policy.toml"

[guard]
max_leavers = {max_leavers}
max_leaver_fraction = 0.2
max_access_losses = {max_leavers}
max_access_loss_fraction = 0.2

{source}"#,
        source = tenure_testkit::company::SOURCE_TOML
    )
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn ldap_target(l: &Ldap, concurrency: usize) -> String {
    format!(
        "\n[[target]]\nname = \"directory\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{}\"\npassword_file = \"{}\"\n\
         users_dn = \"{}\"\ngroups_dn = \"{}\"\ndisabled_dn = \"{}\"\nconcurrency = {concurrency}\nmax_attempts = 8\n",
        esc(&l.url),
        esc(&l.bind_dn),
        esc(&l.password_file.to_string_lossy()),
        esc(&l.users_dn),
        esc(&l.groups_dn),
        esc(&l.disabled_dn)
    )
}

fn scim_target(s: &Scim, concurrency: usize) -> String {
    format!(
        "\n[[target]]\nname = \"chat\"\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"{}\"\nconcurrency = {concurrency}\nmax_attempts = 8\n",
        esc(&s.url()),
        esc(&s.token_file().to_string_lossy())
    )
}

fn pg_target(p: &Postgres, concurrency: usize) -> String {
    format!(
        "\n[[target]]\nname = \"warehouse\"\nkind = \"postgres\"\nurl_file = \"{}\"\nconcurrency = {concurrency}\nmax_attempts = 8\n",
        esc(p.url_file())
    )
}

struct Env {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    config: Arc<Config>,
    policy: Policy,
    store: Arc<SqliteStore>,
    today: NaiveDate,
}

impl Env {
    fn new(config_text: &str, policy_text: &str) -> Result<Env> {
        let dir = tempfile::Builder::new().prefix("tenure-bench-").tempdir()?;
        let today = Utc::now().date_naive();
        let config = tenure_core::config::parse("bench.toml", config_text).map_err(|p| {
            anyhow!("bench config: {}", p.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        let policy = tenure_policy::parse("policy.toml", policy_text, &config, today).map_err(|p| {
            anyhow!("bench policy: {}", p.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        let db = dir.path().join("tenure.db");
        let store = Arc::new(SqliteStore::open(&db, Arc::new(tenure_store::SystemClock))?);
        Ok(Env { _dir: dir, db, config: Arc::new(config), policy, store, today })
    }

    fn import(&self, csv: &str) -> Result<tenure_engine::import::ImportReport> {
        let engine = Engine::new(&self.config, &self.policy, self.store.as_ref(), self.today);
        Ok(import_csv(&engine, "hr", "bench.csv", csv.as_bytes(), &ImportOptions::default())?)
    }

    async fn apply(&self, conns: &Arc<Connectors>) -> Result<ExecReport> {
        let backend: Arc<dyn Backend> = self.store.clone();
        let opts = ExecOptions { wait: true, ..ExecOptions::default() };
        Ok(executor::run(self.config.clone(), backend, conns.clone(), opts).await?)
    }
}

fn company(people: usize, departments: usize) -> Company {
    let mut o = Options::new(people, Utc::now().date_naive());
    o.departments = departments;
    o.service_accounts = 0;
    o.contractor_fraction = 0.0;
    Company::generate(&o)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s).with_context(|| format!("timestamp `{s}`"))?.with_timezone(&Utc))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn summary(label: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    println!(
        "{label}: n={} p50={:.0} p95={:.0} p99={:.0} max={:.0} mean={:.0} (ms)",
        values.len(),
        percentile(values, 50.0),
        percentile(values, 95.0),
        percentile(values, 99.0),
        values.last().copied().unwrap_or(f64::NAN),
        mean
    );
}

// ---------------------------------------------------------------------------------------------
// P4: time-to-revoke.

const P4_POLICY: &str = r#"
[[role]]
id = "staff"
when = { status = "active" }
grant = ["directory:staff", "directory:everyone", "chat:staff", "chat:everyone", "warehouse:analyst", "warehouse:reporting"]
"#;

fn p4(rt: &tokio::runtime::Runtime, k: &Knobs) -> Result<()> {
    println!("\n== P4 time-to-revoke: {} people, {} leavers, {} per import", k.p4_people, k.p4_leavers, k.p4_batch);
    let t = Instant::now();
    let stack = Stack::start(&["analyst", "reporting"])?;
    println!("peers started in {:.1}s", t.elapsed().as_secs_f64());
    let config = header(25) + &ldap_target(&stack.ldap, 4) + &scim_target(&stack.scim, 4) + &pg_target(&stack.pg, 4);
    let env = Env::new(&config, P4_POLICY)?;
    let mut co = company(k.p4_people, 4);
    let conns = Arc::new(rt.block_on(executor::connectors(&env.config)).require_all()?);

    let t = Instant::now();
    let r = env.import(&co.to_csv())?;
    let report = rt.block_on(env.apply(&conns))?;
    ensure!(report.failed == 0, "provisioning failed: {report:?}");
    println!(
        "provisioned {} people ({} operations, all verified: {}) in {:.1}s",
        co.people.len(),
        r.counts.operations,
        report.verified,
        t.elapsed().as_secs_f64()
    );

    // Leavers manage nobody, so each import holds exactly the leaver events asked for.
    let managers: std::collections::HashSet<String> = co.people.iter().filter_map(|p| p.manager.clone()).collect();
    let candidates: Vec<String> =
        co.people.iter().rev().filter(|p| !managers.contains(&p.id)).map(|p| p.id.clone()).take(k.p4_leavers).collect();
    ensure!(candidates.len() == k.p4_leavers, "only {} people manage nobody", candidates.len());

    let mut total = Vec::new();
    let mut per_target: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut exec_wall = Vec::new();
    let mut ops_per_leaver = 0usize;
    for batch in candidates.chunks(k.p4_batch) {
        for id in batch {
            co.remove(id);
        }
        let r = env.import(&co.to_csv())?;
        ensure!(
            r.counts.leavers == batch.len() && r.outcome == tenure_core::ImportOutcome::Applied,
            "import: {:?} {}",
            r.counts,
            r.outcome
        );
        let t = Instant::now();
        let report = rt.block_on(env.apply(&conns))?;
        exec_wall.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(report.failed == 0 && report.retries == 0, "leaver run: {report:?}");
        let cases = env.store.cases(false)?;
        for id in batch {
            let case = cases
                .iter()
                .rev()
                .find(|c| c.identity == *id && c.kind == EventKind::Leaver)
                .ok_or_else(|| anyhow!("no leaver case for {id}"))?;
            let ops = env.store.operations(&OpFilter { case_id: Some(case.id), ..OpFilter::default() })?;
            ensure!(
                !ops.is_empty() && ops.iter().all(|o| o.state == OpState::Verified),
                "case {} not verified",
                case.id
            );
            ops_per_leaver = ops.len();
            let opened = parse_time(&case.opened_at)?;
            let mut last = opened;
            let mut by_target: HashMap<&str, DateTime<Utc>> = HashMap::new();
            for o in &ops {
                let v = parse_time(o.verified_at.as_deref().unwrap_or_default())?;
                last = last.max(v);
                let e = by_target.entry(o.target.as_str()).or_insert(v);
                *e = (*e).max(v);
            }
            total.push((last - opened).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            for (t, v) in by_target {
                per_target
                    .entry(t.to_string())
                    .or_default()
                    .push((v - opened).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    println!("operations per leaver: {ops_per_leaver}");
    summary("P4 time-to-revoke (opened_at -> last verified_at)", &mut total);
    for (t, v) in &mut per_target {
        summary(&format!("  last verified on {t}"), v);
    }
    summary("  executor run wall time per import", &mut exec_wall);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// P5: provisioning throughput against raw clients.

fn spec(p: &Person, prefix: &str) -> AccountSpec {
    AccountSpec {
        identity_id: p.id.clone(),
        account: format!("{prefix}{}", p.username),
        given_name: Some(p.given.clone()),
        family_name: Some(p.family.clone()),
        email: Some(p.email.clone()),
        ..AccountSpec::default()
    }
}

/// Runs `work(i)` for `0..n` on `concurrency` tasks; returns the wall time.
async fn drive<F, Fut>(n: usize, concurrency: usize, work: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (work, next) = (work.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                work(i).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(t.elapsed())
}

struct Row {
    peer: &'static str,
    path: &'static str,
    n: usize,
    secs: f64,
}

fn print_rows(rows: &[Row]) {
    println!(
        "\n{:<9} {:<9} {:>7} {:>8} {:>10} {:>10} {:>8}",
        "peer", "path", "accounts", "secs", "accts/s", "writes/s", "vs raw"
    );
    for r in rows {
        let raw = rows.iter().find(|x| x.peer == r.peer && x.path == "raw").map(|x| x.n as f64 / x.secs);
        let rate = r.n as f64 / r.secs;
        let vs = raw.map_or_else(|| "-".into(), |raw| format!("{:.0}%", 100.0 * rate / raw));
        println!(
            "{:<9} {:<9} {:>7} {:>8.1} {:>10.1} {:>10.1} {:>8}",
            r.peer,
            r.path,
            r.n,
            r.secs,
            rate,
            rate * 3.0,
            vs
        );
    }
}

fn p5(rt: &tokio::runtime::Runtime, k: &Knobs) -> Result<()> {
    let (n, c) = (k.p5_n, k.p5_concurrency);
    println!("\n== P5 provisioning: {n} accounts x (create + 2 grants) per peer and path, concurrency {c}");
    let stack = Stack::start(&["raw-a", "raw-b", "app-a", "app-b", "exe-a", "exe-b"])?;
    let co = company(n, 10);
    let mut rows = Vec::new();
    for peer in ["ldap", "scim", "postgres"] {
        if !k.p5_peers.iter().any(|p| p == peer) {
            continue;
        }
        let has = |path: &str| k.p5_paths.iter().any(|p| p == path);
        // Raw and apply alternate in rounds over slices of the population, so that noise from
        // other work on the machine and the growth of the groups fall on both alike.
        let raw_groups = rt.block_on(ensure_groups(&stack, peer, ["raw-a", "raw-b"]))?;
        rt.block_on(ensure_groups(&stack, peer, ["app-a", "app-b"]))?;
        let conn = rt.block_on(connector(&stack, peer, c))?;
        // Opens a connection before the clock starts, as the raw clients do.
        rt.block_on(conn.list_entitlements())?;
        let raw_specs: Vec<AccountSpec> = co.people.iter().map(|p| spec(p, "raw-")).collect();
        let app_specs: Vec<AccountSpec> = co.people.iter().map(|p| spec(p, "app-")).collect();
        let (mut raw_secs, mut app_secs) = (0.0, 0.0);
        let rounds = k.p5_rounds.clamp(1, n.max(1));
        for r in 0..rounds {
            let range = r * n / rounds..(r + 1) * n / rounds;
            if has("raw") {
                let specs = Arc::new(raw_specs[range.clone()].to_vec());
                raw_secs += rt.block_on(p5_raw(&stack, peer, specs, &raw_groups, c))?;
            }
            if has("apply") {
                let specs = Arc::new(app_specs[range].to_vec());
                app_secs += rt.block_on(p5_apply(conn.clone(), specs, c))?;
            }
        }
        for (path, secs) in [("raw", raw_secs), ("apply", app_secs)] {
            if has(path) {
                println!("  {peer:<8} {path:<8} {n} accounts in {secs:.1}s ({:.1} accounts/s)", n as f64 / secs);
                rows.push(Row { peer, path, n, secs });
            }
        }
        if has("executor") {
            let secs = p5_executor(rt, &stack, peer, &co, c)?;
            println!("  {peer:<8} executor {n} accounts in {secs:.1}s ({:.1} accounts/s)", n as f64 / secs);
            rows.push(Row { peer, path: "executor", n, secs });
        }
    }
    print_rows(&rows);
    Ok(())
}

async fn ldap_client(l: &Ldap) -> Result<ldap3::Ldap> {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&l.url).await?;
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(&l.bind_dn, &l.password).await?.success()?;
    Ok(ldap)
}

/// Creates the groups a path grants (LDAP groups with the placeholder member, SCIM groups
/// without members); PostgreSQL roles come from `Stack::start`. Returns SCIM group ids.
async fn ensure_groups(stack: &Stack, peer: &str, names: [&str; 2]) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    match peer {
        "ldap" => {
            let mut ldap = ldap_client(&stack.ldap).await?;
            for g in names {
                let dn = format!("cn={g},{}", stack.ldap.groups_dn);
                let attrs = vec![
                    ("objectClass", std::collections::HashSet::from(["top", "groupOfNames"])),
                    ("cn", std::collections::HashSet::from([g])),
                    ("member", std::collections::HashSet::from([stack.ldap.groups_dn.as_str()])),
                ];
                ldap.add(&dn, attrs).await?.success()?;
            }
        }
        "scim" => {
            let http = reqwest::Client::new();
            for g in names {
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": g});
                let v: Value = http
                    .post(format!("{}/Groups", stack.scim.url()))
                    .bearer_auth(stack.scim.token())
                    .header("content-type", "application/scim+json")
                    .body(serde_json::to_vec(&body)?)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                ids.insert(g.to_string(), v["id"].as_str().ok_or_else(|| anyhow!("group without id"))?.to_string());
            }
        }
        _ => {}
    }
    Ok(ids)
}

/// The raw clients: exactly the writes the connector makes, nothing read first.
async fn p5_raw(
    stack: &Stack,
    peer: &str,
    specs: Arc<Vec<AccountSpec>>,
    groups: &HashMap<String, String>,
    c: usize,
) -> Result<f64> {
    let groups = groups.clone();
    let n = specs.len();
    let elapsed = match peer {
        "ldap" => {
            // As many multiplexed connections as the connector's pool opens (min(c, 4)).
            let mut conns = Vec::new();
            for _ in 0..c.min(4) {
                conns.push(ldap_client(&stack.ldap).await?);
            }
            let conns = Arc::new(conns);
            let (users, groups_dn) = (stack.ldap.users_dn.clone(), stack.ldap.groups_dn.clone());
            let turn = Arc::new(AtomicUsize::new(0));
            drive(n, c, move |i| {
                let (specs, conns, users, groups_dn, turn) =
                    (specs.clone(), conns.clone(), users.clone(), groups_dn.clone(), turn.clone());
                async move {
                    let s = &specs[i];
                    let mut ldap = conns[turn.fetch_add(1, Ordering::Relaxed) % conns.len()].clone();
                    let dn = format!("uid={},{users}", s.account);
                    let display = s.display_name();
                    let set = |v: &str| std::collections::HashSet::from([v.to_string()]);
                    let attrs: Vec<(String, std::collections::HashSet<String>)> = vec![
                        (
                            "objectClass".into(),
                            ["top", "person", "organizationalPerson", "inetOrgPerson"]
                                .iter()
                                .map(|s| s.to_string())
                                .collect(),
                        ),
                        ("uid".into(), set(&s.account)),
                        ("cn".into(), set(&display)),
                        ("sn".into(), set(s.family_name.as_deref().unwrap_or(&s.account))),
                        ("displayName".into(), set(&display)),
                        ("givenName".into(), set(s.given_name.as_deref().unwrap_or(""))),
                        ("mail".into(), set(s.email.as_deref().unwrap_or(""))),
                        ("employeeNumber".into(), set(&s.identity_id)),
                    ];
                    ldap.add(&dn, attrs).await?.success()?;
                    for g in ["raw-a", "raw-b"] {
                        let group = format!("cn={g},{groups_dn}");
                        let m = ldap3::Mod::Add("member".to_string(), std::collections::HashSet::from([dn.clone()]));
                        ldap.modify(&group, vec![m]).await?.success()?;
                    }
                    Ok(())
                }
            })
            .await?
        }
        "scim" => {
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .build()?;
            let (base, token) = (stack.scim.url(), stack.scim.token().to_string());
            let groups = Arc::new(groups);
            drive(n, c, move |i| {
                let (specs, http, base, token, groups) =
                    (specs.clone(), http.clone(), base.clone(), token.clone(), groups.clone());
                async move {
                    let s = &specs[i];
                    let display = s.display_name();
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": s.account,
                        "externalId": s.identity_id,
                        "name": {"givenName": s.given_name, "familyName": s.family_name, "formatted": display},
                        "displayName": display,
                        "emails": [{"value": s.email, "primary": true, "type": "work"}],
                        "active": true,
                    });
                    let resp = http
                        .post(format!("{base}/Users"))
                        .bearer_auth(&token)
                        .header("accept", "application/scim+json, application/json")
                        .header("content-type", "application/scim+json")
                        .body(serde_json::to_vec(&body)?)
                        .send()
                        .await?;
                    ensure!(resp.status() == reqwest::StatusCode::CREATED, "POST /Users: {}", resp.status());
                    let user: Value = serde_json::from_slice(&resp.bytes().await?)?;
                    let uid = user["id"].as_str().ok_or_else(|| anyhow!("user without id"))?.to_string();
                    for g in ["raw-a", "raw-b"] {
                        let patch = json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
                        });
                        let resp = http
                            .patch(format!("{base}/Groups/{}", groups[g]))
                            .bearer_auth(&token)
                            .header("accept", "application/scim+json, application/json")
                            .header("content-type", "application/scim+json")
                            .body(serde_json::to_vec(&patch)?)
                            .send()
                            .await?;
                        ensure!(resp.status().is_success(), "PATCH /Groups: {}", resp.status());
                        let _ = resp.bytes().await?;
                    }
                    Ok(())
                }
            })
            .await?
        }
        _ => {
            // One connection per unit of concurrency, as the connector's pool.
            let mut clients = Vec::new();
            for _ in 0..c {
                let (client, conn) = tokio_postgres::connect(&stack.pg.url(), tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                client.batch_execute("SET client_min_messages = warning; SET lock_timeout = '10s'").await?;
                clients.push(Arc::new(tokio::sync::Mutex::new(client)));
            }
            let clients = Arc::new(clients);
            let free = Arc::new(tokio::sync::Semaphore::new(c));
            drive(n, c, move |i| {
                let (specs, clients, free) = (specs.clone(), clients.clone(), free.clone());
                async move {
                    let _permit = free.acquire().await?;
                    let client =
                        clients.iter().find_map(|m| m.try_lock().ok()).ok_or_else(|| anyhow!("no free client"))?;
                    let s = &specs[i];
                    let role = format!("\"{}\"", s.account.replace('"', "\"\""));
                    // The connector sends CREATE ROLE and its COMMENT as one message; so do we.
                    client
                        .batch_execute(&format!(
                            "CREATE ROLE {role} LOGIN; COMMENT ON ROLE {role} IS 'tenure:{}'",
                            s.identity_id.replace('\'', "''")
                        ))
                        .await?;
                    client.batch_execute(&format!("GRANT \"raw-a\" TO {role}")).await?;
                    client.batch_execute(&format!("GRANT \"raw-b\" TO {role}")).await?;
                    Ok(())
                }
            })
            .await?
        }
    };
    Ok(elapsed.as_secs_f64())
}

async fn connector(stack: &Stack, peer: &str, c: usize) -> Result<Arc<dyn Connector>> {
    Ok(match peer {
        "ldap" => Arc::new(tenure_connect::ldap::LdapConnector::new("directory", &stack.ldap.settings(), c)?),
        "scim" => Arc::new(tenure_connect::scim::ScimConnector::new("chat", &stack.scim.settings(), c)?),
        _ => Arc::new(tenure_connect::postgres::PostgresConnector::new("warehouse", &stack.pg.settings(), c).await?),
    })
}

/// The connector's `apply`, the same create + 2 grants per account, no read-back.
async fn p5_apply(conn: Arc<dyn Connector>, specs: Arc<Vec<AccountSpec>>, c: usize) -> Result<f64> {
    let elapsed = drive(specs.len(), c, move |i| {
        let (specs, conn) = (specs.clone(), conn.clone());
        async move {
            let s = &specs[i];
            let mut r = Request {
                kind: OpKind::CreateAccount,
                entitlement: None,
                account: s.clone(),
                new_owner: None,
                secret: None,
            };
            conn.apply(&r).await?;
            r.kind = OpKind::Grant;
            for g in ["app-a", "app-b"] {
                r.entitlement = Some(g.to_string());
                conn.apply(&r).await?;
            }
            Ok(())
        }
    })
    .await?;
    Ok(elapsed.as_secs_f64())
}

/// The executor: import (not timed), then `executor::run` until every operation is verified.
fn p5_executor(rt: &tokio::runtime::Runtime, stack: &Stack, peer: &str, co: &Company, c: usize) -> Result<f64> {
    rt.block_on(ensure_groups(stack, peer, ["exe-a", "exe-b"]))?;
    let (target, name) = match peer {
        "ldap" => (ldap_target(&stack.ldap, c), "directory"),
        "scim" => (scim_target(&stack.scim, c), "chat"),
        _ => (pg_target(&stack.pg, c), "warehouse"),
    };
    let policy = format!(
        "[[role]]\nid = \"all\"\nwhen = {{ status = \"active\" }}\ngrant = [\"{name}:exe-a\", \"{name}:exe-b\"]\n"
    );
    let env = Env::new(&(header(25) + &target), &policy)?;
    let mut co = co.clone();
    for p in &mut co.people {
        p.username = format!("exe-{}", p.username);
    }
    let t = Instant::now();
    let r = env.import(&co.to_csv())?;
    println!(
        "  {peer:<8} executor: imported {} joiners, {} operations in {:.1}s (not counted)",
        r.counts.joiners,
        r.counts.operations,
        t.elapsed().as_secs_f64()
    );
    let conns = Arc::new(rt.block_on(executor::connectors(&env.config)).require_all()?);
    let t = Instant::now();
    let report = rt.block_on(env.apply(&conns))?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(report.failed == 0 && report.verified == r.counts.operations, "executor: {report:?}");
    if report.retries > 0 {
        println!("  {peer:<8} executor: {} retries", report.retries);
    }
    Ok(secs)
}

// ---------------------------------------------------------------------------------------------
// P6: reconciliation of a large directory.

fn slug(department: &str) -> String {
    department.to_lowercase().replace(' ', "-")
}

fn p6(rt: &tokio::runtime::Runtime, k: &Knobs) -> Result<()> {
    let n = k.p6_n;
    println!("\n== P6 reconciliation: {n} LDAP accounts, {} memberships", 2 * n);
    let co = company(n, 10);
    let departments: Vec<String> = {
        let mut d: Vec<String> = co.people.iter().map(|p| p.department.clone()).collect();
        d.sort();
        d.dedup();
        d
    };
    let mut policy =
        String::from("[[role]]\nid = \"staff\"\nwhen = { status = \"active\" }\ngrant = [\"directory:staff\"]\n");
    for (i, d) in departments.iter().enumerate() {
        policy.push_str(&format!(
            "\n[[role]]\nid = \"dept-{i}\"\nwhen = {{ status = \"active\", department = \"{d}\" }}\ngrant = [\"directory:{}\"]\n",
            slug(d)
        ));
    }

    // The directory, loaded offline with slapadd: each person, and the groups with members.
    let t = Instant::now();
    let users = "ou=people,dc=example,dc=com";
    let groups = "ou=groups,dc=example,dc=com";
    let mut ldif = String::with_capacity(n * 300);
    let mut members: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for p in &co.people {
        use std::fmt::Write as _;
        let _ = write!(
            ldif,
            "dn: uid={u},{users}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n\
             objectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: {u}\nemployeeNumber: {id}\n\n",
            u = p.username,
            id = p.id
        );
        members.entry("staff".into()).or_default().push(&p.username);
        members.entry(slug(&p.department)).or_default().push(&p.username);
    }
    for (g, ms) in &members {
        use std::fmt::Write as _;
        let _ = write!(ldif, "dn: cn={g},{groups}\nobjectClass: top\nobjectClass: groupOfNames\ncn: {g}\n");
        for m in ms {
            let _ = writeln!(ldif, "member: uid={m},{users}");
        }
        ldif.push('\n');
    }
    let ldap = Ldap::start_seeded(&ldif)?;
    drop(ldif);
    println!("slapd seeded with slapadd in {:.1}s", t.elapsed().as_secs_f64());

    let env = Env::new(&(header(25) + &ldap_target(&ldap, 4)), &policy)?;
    let t = Instant::now();
    let r = env.import(&co.to_csv())?;
    println!(
        "store: imported {} joiners, {} operations in {:.1}s",
        r.counts.joiners,
        r.counts.operations,
        t.elapsed().as_secs_f64()
    );
    // Setup shortcut: the planned operations are marked verified directly in SQLite instead of
    // applying 300,000 operations; the directory already holds exactly what they would make.
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    rusqlite::Connection::open(&env.db)
        .and_then(|c| c.execute_batch(&format!("UPDATE operations SET state = 'verified', verified_at = '{now}'")))
        .map_err(|e| anyhow!("marking operations verified: {e}"))?;

    let conns: Connectors = rt.block_on(executor::connectors(&env.config)).require_all()?;
    let backend: Arc<dyn Backend> = env.store.clone();
    let mut runs = Vec::new();
    for run in 1..=3 {
        let t = Instant::now();
        let report = rt.block_on(tenure_engine::reconcile::reconcile(
            &env.config,
            &env.policy,
            backend.clone(),
            &conns,
            Some("directory"),
            false,
        ))?;
        let secs = t.elapsed().as_secs_f64();
        let tr = report.targets.first().ok_or_else(|| anyhow!("no target report"))?;
        ensure!(tr.accounts == n && tr.grants == 2 * n, "read {} accounts, {} grants", tr.accounts, tr.grants);
        ensure!(report.finding_count() == 0, "{} findings, first: {:?}", report.finding_count(), tr.findings.first());
        println!(
            "P6 run {run}: reconcile end to end {secs:.2}s ({} accounts, {} grants, 0 findings; target part {} ms)",
            tr.accounts, tr.grants, tr.millis
        );
        runs.push(secs);
    }
    let conn = conns.get("directory").ok_or_else(|| anyhow!("no directory connector"))?;
    let t = Instant::now();
    let listed = rt.block_on(conn.list_accounts())?;
    println!("  of which LDAP list_accounts alone: {:.2}s ({} accounts)", t.elapsed().as_secs_f64(), listed.len());
    let t = Instant::now();
    let ids = env.store.identities(&env.config.schema, None)?;
    let holdings = env.store.all_holdings()?;
    println!(
        "  of which store identities + holdings: {:.2}s ({} / {})",
        t.elapsed().as_secs_f64(),
        ids.len(),
        holdings.len()
    );
    Ok(())
}

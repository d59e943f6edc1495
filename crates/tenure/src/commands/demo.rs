//! `tenure demo`: the whole story on a fresh machine, against real peers.

use crate::output::table;
use crate::support::{self, UsageError, runtime};
use anyhow::{Context as _, Result, bail};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tenure_core::{EventKind, OpState};
use tenure_engine::app::App;
use tenure_engine::import::{self, ImportOptions};
use tenure_engine::{decisions, evidence, reports, views};
use tenure_sample::company::{Company, Options};
use tenure_store::OpFilter;
use tenure_testkit::stack::Stack;

fn step(title: &str) {
    outln!("\n== {title}");
}

pub fn run(dir: Option<&Path>, people: usize, keep: bool, no_serve: bool) -> Result<ExitCode> {
    if people < 4 {
        bail!("--people must be at least 4");
    }
    let temp;
    let kept = keep || dir.is_some();
    let dir: PathBuf = match dir {
        Some(d) => d.to_path_buf(),
        None if keep => PathBuf::from("tenure-demo"),
        None => {
            temp = tempfile::TempDir::new().context("creating the demo dir")?;
            temp.path().to_path_buf()
        }
    };
    // The demo replaces its own files; it never overwrites a directory it did not make.
    const MARK: &str = ".tenure-demo";
    if dir.exists() && !dir.join(MARK).exists() && std::fs::read_dir(&dir)?.next().is_some() {
        return Err(UsageError(format!(
            "`{}` exists and is not a previous demo's directory; pick a new one (the demo writes its own tenure.toml and store)",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(MARK), "written by `tenure demo`; it may replace everything in this directory\n")?;
    for f in ["tenure-data/tenure.db", "tenure-data/tenure.db-wal", "tenure-data/tenure.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    step("starting real peers: OpenLDAP, scim2-server, PostgreSQL (installing what is missing)");
    let started = std::time::Instant::now();
    let stack = Stack::start(&["analyst", "finance", "admin"])?;
    outln!("  directory  {} (slapd)", stack.ldap.url);
    outln!("  chat       {} (scim2-server)", stack.scim.url());
    outln!("  warehouse  postgresql://127.0.0.1:{}/postgres (throwaway cluster)", stack.pg.port());
    outln!("  payroll    manual target: tickets for payroll-admins");
    outln!("  ready in {:.1}s", started.elapsed().as_secs_f64());

    std::fs::write(dir.join("tenure.toml"), stack.config_toml(25))?;
    std::fs::write(dir.join("policy.toml"), tenure_sample::starter::POLICY)?;
    let clock = support::clock()?;
    let mut opts = Options::new(people, clock.today());
    opts.departments = 4;
    opts.service_accounts = 1;
    opts.contractor_fraction = 0.15;
    let mut company = Company::generate(&opts);
    outln!("  files in {}", dir.display());

    let app = App::open(&dir.join("tenure.toml"), false, clock)?;

    step(&format!(
        "day 1: HR snapshot with {} people and service accounts: everyone is a joiner",
        company.people.len()
    ));
    import_file(&app, &dir, "day1.csv", &company.to_csv())?;
    print_plan(&app, 12)?;
    apply_and_close_tickets(&app)?;
    show_targets(&app, None)?;

    let mover = company
        .people
        .iter()
        .find(|p| p.department == "Engineering" && p.kind == "employee" && p.id != "E000000")
        .map(|p| p.id.clone());
    let leaver = company
        .people
        .iter()
        .rev()
        .find(|p| {
            p.kind == "employee"
                && Some(&p.id) != mover.as_ref()
                && !company.people.iter().any(|q| q.manager.as_ref() == Some(&p.id))
        })
        .map(|p| p.id.clone());
    let (Some(mover), Some(leaver)) = (mover, leaver) else { bail!("the sample company has no engineer to move") };
    step(&format!("day 2: `{mover}` moves from Engineering to Sales; `{leaver}` leaves (row removed)"));
    company.transfer(&mover, "Sales");
    company.remove(&leaver);
    import_file(&app, &dir, "day2.csv", &company.to_csv())?;
    print_plan(&app, 40)?;
    apply_and_close_tickets(&app)?;
    show_targets(&app, Some(&[mover.as_str(), leaver.as_str()]))?;

    step("time-to-revoke");
    let cases = views::cases(app.store_ref(), false)?;
    for c in cases.iter().filter(|c| c.identity == leaver && c.kind == EventKind::Leaver) {
        let automated = reports::automated_ms(app.config(), app.store_ref(), c)?;
        outln!(
            "  leaver `{leaver}`: case {} {}; directory + chat + warehouse verified clean {} after the event; whole case (incl. manual payroll tickets) {}",
            c.id,
            c.state,
            automated.map_or_else(|| "-".into(), |ms| format!("{ms} ms")),
            c.revoke_ms.map_or_else(|| "still open".into(), |ms| format!("{ms} ms"))
        );
    }

    step("reconciliation: read every target back and compare");
    let report = runtime()?.block_on(async {
        let conns = tenure_engine::executor::connectors(app.config()).await.require_all()?;
        let policy = app.policy()?;
        anyhow::Ok(
            tenure_engine::reconcile::reconcile(app.config(), policy, app.store().clone(), &conns, None, false).await?,
        )
    })?;
    for t in &report.targets {
        outln!(
            "  {:<10} {} accounts, {} grants, {} finding(s) in {} ms",
            t.target,
            t.accounts,
            t.grants,
            t.findings.len(),
            t.millis
        );
        for f in &t.findings {
            outln!("    {} {}", f.kind, f.detail);
        }
    }

    step("audit chain");
    let v = evidence::verify_store(app.store_ref(), None, None)?;
    match &v.first_bad {
        None => outln!("  verified: {} records, each hash-chained to the one before", v.records),
        Some(b) => outln!("  BROKEN at seq {}: {}", b.seq, b.reason),
    }
    // Another day for whoever explores the kept demo: one more leaver and a joiner.
    let next_leaver = company
        .people
        .iter()
        .rev()
        .find(|p| {
            p.kind == "employee"
                && p.id != mover
                && p.id != leaver
                && !company.people.iter().any(|q| q.manager.as_ref() == Some(&p.id))
        })
        .map(|p| p.id.clone());
    if let Some(id) = &next_leaver {
        company.remove(id);
    }
    let joiner = company.hire("Engineering");
    std::fs::write(dir.join("next.csv"), company.to_csv())?;

    let ok = v.first_bad.is_none() && report.finding_count() == 0;
    outln!("\ndone in {:.1}s.", started.elapsed().as_secs_f64());
    // On a terminal the story ends with the server running on its data, the peers behind it;
    // a script or a test (no terminal on stdin) gets the story only.
    if !no_serve && std::io::stdin().is_terminal() {
        serve(&app)?;
        outln!("stopping the server and the peers");
        drop(stack);
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if !kept {
        outln!("(the peers stop now and the files go; `--dir DIR` keeps the files, `--keep` also keeps the peers)");
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let config = dir.join("tenure.toml");
    outln!("The files are in {}. Explore, one command per line:", dir.display());
    for cmd in [
        "tenure cases".to_string(),
        format!("tenure identity show {leaver}"),
        "tenure audit verify".to_string(),
        "tenure audit export --format jsonl".to_string(),
    ] {
        outln!("  tenure --config {} {}", config.display(), cmd.trim_start_matches("tenure "));
    }
    if !keep {
        outln!("(the peers stop now, so `apply` and `reconcile` need `--keep`)");
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    outln!(
        "next.csv is another day at the company ({} leaves, {joiner} joins). With the peers up, from another terminal:",
        next_leaver.as_deref().unwrap_or("nobody")
    );
    outln!("  cd {}", dir.display());
    for cmd in ["tenure import --source hr next.csv", "tenure apply --wait", "tenure tasks", "tenure reconcile"] {
        outln!("  {cmd}");
    }
    outln!("The peers stay up until Ctrl-C (the config's secrets are files in their temp dirs).");
    wait_for_stop()?;
    outln!("stopping the peers");
    drop(stack);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Serves the demo's data (`tenure serve`, workers included) until Ctrl-C, with a fresh admin
/// token printed once.
fn serve(app: &App) -> Result<()> {
    use tenure_engine::tokens;
    let store = app.store().as_ref();
    // A demo dir used before has a `demo-admin` already: replace it.
    let _ = tokens::revoke(store, "demo-admin", "user:demo");
    let token = tokens::create(app.config(), store, "demo-admin", tenure_core::Scope::Admin, None, "user:demo")?;
    if std::env::var_os("RUST_LOG").is_some() {
        tenure_server::telemetry::init();
    }
    runtime()?.block_on(async {
        let wanted = app.config().server_listen.clone();
        let listener = match tokio::net::TcpListener::bind(&wanted).await {
            Ok(l) => l,
            // The configured port is taken: any free one will do for a demo.
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await.context("listening on loopback")?,
        };
        let url = format!("http://{}", listener.local_addr()?);
        step("tenure serve: the API on the demo's data");
        outln!("  {url}  (the REST API under /api/v1, its OpenAPI document at /api/v1/openapi.json, /metrics)");
        outln!("  admin token, shown only this once: {}", token.secret);
        outln!("  try:");
        outln!("    curl -H 'Authorization: Bearer {}' {url}/api/v1/identities", token.secret);
        outln!("    curl -H 'Authorization: Bearer {}' {url}/api/v1/cases/coverage", token.secret);
        outln!("    curl -H 'Authorization: Bearer {}' {url}/api/v1/audit/verify", token.secret);
        outln!("  the workers apply what the API imports against the peers. Ctrl-C stops everything.");
        let state = tenure_server::ServerState::new(app.clone());
        tenure_server::serve(state, listener, tenure_server::shutdown_signal()).await.context("serving")
    })
}

/// Blocks until Ctrl-C (SIGINT) or SIGTERM.
fn wait_for_stop() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    runtime()?.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("listening for Ctrl-C")?,
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })
}

fn import_file(app: &App, dir: &Path, name: &str, csv: &str) -> Result<()> {
    std::fs::write(dir.join(name), csv)?;
    let r = import::import_csv(&app.engine()?, "hr", name, csv.as_bytes(), &ImportOptions::default())?;
    let c = &r.counts;
    outln!(
        "  imported {name}: {} joiners, {} movers ({} significant), {} leavers; {} operations planned",
        c.joiners,
        c.movers,
        c.significant_movers,
        c.leavers,
        c.operations
    );
    Ok(())
}

fn print_plan(app: &App, limit: usize) -> Result<()> {
    let ops = views::operations(app.store_ref(), &OpFilter { states: vec![OpState::Pending], ..OpFilter::default() })?;
    let rows: Vec<Vec<String>> = ops
        .iter()
        .take(limit)
        .map(|o| {
            vec![
                o.identity.clone(),
                o.target.clone(),
                o.kind.to_string(),
                o.entitlement.clone().unwrap_or_else(|| "-".into()),
                why(&o.reason),
            ]
        })
        .collect();
    outln!(
        "  plan ({} operations{}):",
        ops.len(),
        if ops.len() > limit { format!(", first {limit} shown") } else { String::new() }
    );
    table(&["IDENTITY", "TARGET", "KIND", "ENTITLEMENT", "WHY"], &rows);
    Ok(())
}

/// The event kind and the rules behind an operation, short.
fn why(r: &tenure_proto::OpReason) -> String {
    format!("{} {}", r.kind.map(|k| k.as_str()).unwrap_or(""), r.rules.join(","))
}

fn apply_and_close_tickets(app: &App) -> Result<()> {
    let t = std::time::Instant::now();
    let r = support::apply(app, true, None, false)?.report;
    outln!(
        "  applied in {:.2}s: {} operations verified by reading the target back, {} retried, {} failed, {} payroll ticket(s) opened",
        t.elapsed().as_secs_f64(),
        r.verified,
        r.retries,
        r.failed,
        r.tickets
    );
    let tickets = views::tickets(app.store().as_ref(), true)?;
    for tk in &tickets {
        decisions::complete_ticket(
            app.store().as_ref(),
            tk.id,
            "payroll-admin",
            "done in the payroll UI; screenshot attached to the change record",
        )?;
    }
    if !tickets.is_empty() {
        outln!("  payroll-admins completed {} ticket(s) with evidence", tickets.len());
    }
    Ok(())
}

fn show_targets(app: &App, only: Option<&[&str]>) -> Result<()> {
    let config = app.config();
    let identities = views::identities(app.store_ref(), &config.schema)?;
    let rows = runtime()?.block_on(async {
        let conns = tenure_engine::executor::connectors(config).await.require_all()?;
        let mut rows = Vec::new();
        for t in config.targets.iter().filter(|t| conns.contains_key(&t.name)) {
            let Some(conn) = conns.get(&t.name) else { continue };
            let accounts = conn.list_accounts().await?;
            for a in accounts {
                let owner = a.external_id.clone().unwrap_or_default();
                if only.is_some_and(|ids| !ids.contains(&owner.as_str())) {
                    continue;
                }
                let status =
                    identities.iter().find(|i| i.id == owner).map_or("-".to_string(), |i| i.status.to_string());
                let grants: Vec<&str> = a.grants.iter().map(String::as_str).collect();
                rows.push(vec![
                    t.name.clone(),
                    a.account.clone(),
                    owner,
                    status,
                    if a.enabled { "enabled".into() } else { "disabled".into() },
                    grants.join(", "),
                ]);
            }
        }
        anyhow::Ok(rows)
    })?;
    outln!(
        "  read back from the targets themselves{}:",
        if only.is_some() { " (the mover and the leaver)" } else { "" }
    );
    let limit = if only.is_some() { rows.len() } else { 16 };
    table(
        &["TARGET", "ACCOUNT", "IDENTITY", "STATUS", "STATE", "GRANTS"],
        &rows.iter().take(limit).cloned().collect::<Vec<_>>(),
    );
    if rows.len() > limit {
        outln!("  ... {} more accounts", rows.len() - limit);
    }
    Ok(())
}

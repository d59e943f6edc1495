//! P9: API read latency at 100,000 identities under 50 concurrent clients, p99 ≤ 10 ms, for
//! `GET /api/v1/identities/{id}` (random ids) and a page of `GET /api/v1/identities` (50
//! identities from a random cursor), against the real release `tenure serve` on loopback, with
//! `wrk` as the load generator. Beside each, in the same run, its floor: a minimal axum server
//! answering the same row (or page) from the same SQLite file with one `rusqlite` connection on
//! the blocking pool, with no authentication, no engine and no wire types.
//!
//! The store is the day-one import of `day1.csv` with the starter policy (P8's), copied once
//! into `runs/p9/` (seeded by the real binary when missing).

use crate::data::Layout;
use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONNECTIONS: usize = 50;
const TARGET_P99_MS: f64 = 10.0;

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One wrk run's figures.
struct Load {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    non_2xx: u64,
}

fn ms(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Some(v) = t.strip_suffix("us") {
        return v.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    if let Some(v) = t.strip_suffix("ms") {
        return v.parse().ok();
    }
    t.strip_suffix('s').and_then(|v| v.parse::<f64>().ok()).map(|v| v * 1000.0)
}

fn wrk(url: &str, script: &Path, seconds: u64) -> Result<Load> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| -> Option<String> {
        text.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(|r| r.trim().to_string())
    };
    let p50 = field("50%").and_then(|v| ms(&v));
    let p99 = field("99%").and_then(|v| ms(&v));
    let rps = field("Requests/sec:").and_then(|v| v.parse().ok());
    let non_2xx = field("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0);
    match (p50, p99, rps) {
        (Some(p50_ms), Some(p99_ms), Some(rps)) => Ok(Load { p50_ms, p99_ms, rps, non_2xx }),
        _ => bail!("cannot read wrk's output:\n{text}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// A wrk script that asks for `paths` in random order with `token`.
fn script(dir: &Path, name: &str, paths: &[String], token: Option<&str>) -> Result<PathBuf> {
    let list = dir.join(format!("{name}.paths"));
    std::fs::write(&list, paths.join("\n") + "\n")?;
    let auth = token.map(|t| format!("[\"Authorization\"] = \"Bearer {t}\"")).unwrap_or_default();
    let lua = format!(
        r#"local paths = {{}}
for l in io.lines("{list}") do paths[#paths + 1] = l end
math.randomseed(7)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {{ {auth} }})
end
"#,
        list = list.display()
    );
    let p = dir.join(format!("{name}.lua"));
    std::fs::write(&p, lua)?;
    Ok(p)
}

fn ids_of(csv: &Path) -> Result<Vec<String>> {
    let mut r = csv::Reader::from_path(csv)?;
    let key = r.headers()?.iter().position(|h| h == "employee_id").context("no employee_id column")?;
    let mut ids = Vec::new();
    for row in r.records() {
        if let Some(k) = row?.get(key) {
            ids.push(k.to_string());
        }
    }
    Ok(ids)
}

/// `runs/p9`: the starter config and policy with a day-one store.
fn seeded(layout: &Layout, tenure: &Path) -> Result<PathBuf> {
    let dir = layout.dir.join("runs").join("p9");
    let db = dir.join("store").join("tenure.db");
    if db.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(dir.join("store"))?;
    let starter = layout.dir.join("runs").join("p8-starter");
    for f in ["tenure.toml", "policy.toml"] {
        std::fs::copy(starter.join(f), dir.join(f))
            .with_context(|| format!("run `tenure-bench p8` first (no `{f}`)"))?;
    }
    eprintln!("p9: seeding the store with the day-one import of day1.csv");
    let out = Command::new(tenure)
        .args(["import", "--source", "hr"])
        .arg(layout.dir.join("day1.csv"))
        .env("TENURE_CONFIG", dir.join("tenure.toml"))
        .env("TENURE_STORE_URL", format!("sqlite://{}", db.display()))
        .output()?;
    if !db.exists() || out.status.code().is_none_or(|c| c > 1) {
        bail!("seeding failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(dir)
}

/// Starts `tenure serve` on a free port; returns it and its base URL.
fn serve(tenure: &Path, dir: &Path) -> Result<(Killer, String, String)> {
    let env = |c: &mut Command| {
        c.env("TENURE_CONFIG", dir.join("tenure.toml"))
            .env("TENURE_STORE_URL", format!("sqlite://{}", dir.join("store").join("tenure.db").display()));
    };
    let mut create = Command::new(tenure);
    create.args(["token", "create", "--name", &format!("p9-{}", std::process::id()), "--scope", "auditor"]);
    env(&mut create);
    let out = create.output()?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !token.starts_with("tnr_") {
        bail!("no token: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut cmd = Command::new(tenure);
    // As deployed: the default `info` level, one JSON log line per request.
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).env("RUST_LOG", "info");
    env(&mut cmd);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            if line.contains("listening")
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(a) = v.get("address").and_then(|a| a.as_str())
            {
                let _ = tx.send(a.to_string());
            }
            // Keep draining, so the server never blocks on a full pipe.
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(120)).context("tenure serve did not start")?;
    Ok((Killer(child), format!("http://{addr}"), token))
}

/// The floor: the same reads with nothing around them.
fn floor(db: &Path) -> Result<(tokio::runtime::Runtime, String)> {
    use axum::extract::{Path as P, Query, State};
    use axum::routing::get;
    type Db = Arc<Mutex<rusqlite::Connection>>;
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let db: Db = Arc::new(Mutex::new(conn));
    async fn one(State(db): State<Db>, P(id): P<String>) -> String {
        tokio::task::spawn_blocking(move || {
            let c = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            c.query_row("SELECT id, kind, status, attrs FROM identities WHERE id = ?1", [id], |r| {
                Ok(format!(
                    r#"{{"id":{:?},"kind":{:?},"status":{:?},"attributes":{}}}"#,
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?
                ))
            })
            .unwrap_or_default()
        })
        .await
        .unwrap_or_default()
    }
    #[derive(serde::Deserialize)]
    struct Cursor {
        after: Option<String>,
    }
    async fn page(State(db): State<Db>, Query(c): Query<Cursor>) -> String {
        tokio::task::spawn_blocking(move || {
            let c2 = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Ok(mut stmt) =
                c2.prepare_cached("SELECT id, kind, status, attrs FROM identities WHERE id > ?1 ORDER BY id LIMIT 51")
            else {
                return String::new();
            };
            let rows = stmt.query_map([c.after.unwrap_or_default()], |r| {
                Ok(format!(
                    r#"{{"id":{:?},"kind":{:?},"status":{:?},"attributes":{}}}"#,
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?
                ))
            });
            let items: Vec<String> =
                rows.map(|r| r.filter_map(std::result::Result::ok).take(50).collect()).unwrap_or_default();
            format!(r#"{{"items":[{}]}}"#, items.join(","))
        })
        .await
        .unwrap_or_default()
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/identities/{id}", get(one)).route("/identities", get(page)).with_state(db);
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((rt, format!("http://{addr}")))
}

pub fn run(layout: &Layout, tenure: &Path, seconds: u64) -> Result<bool> {
    let dir = seeded(layout, tenure)?;
    let ids = ids_of(&layout.dir.join("day1.csv"))?;
    let sample: Vec<&String> = ids.iter().step_by((ids.len() / 5000).max(1)).collect();
    let cursor = |id: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("identities:{id}"));
    let (_server, base, token) = serve(tenure, &dir)?;
    let (_rt, floor_base) = floor(&dir.join("store").join("tenure.db"))?;
    let work = tempfile::tempdir()?;
    let one: Vec<String> = sample.iter().map(|id| format!("/api/v1/identities/{id}")).collect();
    let pages: Vec<String> =
        sample.iter().map(|id| format!("/api/v1/identities?limit=50&cursor={}", cursor(id))).collect();
    let floor_one: Vec<String> = sample.iter().map(|id| format!("/identities/{id}")).collect();
    let floor_pages: Vec<String> = sample.iter().map(|id| format!("/identities?after={id}")).collect();
    let cases = [
        ("GET /api/v1/identities/{id}", base.clone(), script(work.path(), "one", &one, Some(&token))?, true),
        (
            "  floor: one row from SQLite",
            floor_base.clone(),
            script(work.path(), "floor-one", &floor_one, None)?,
            false,
        ),
        ("GET /api/v1/identities (50 from a cursor)", base, script(work.path(), "page", &pages, Some(&token))?, true),
        ("  floor: 50 rows from SQLite", floor_base, script(work.path(), "floor-page", &floor_pages, None)?, false),
    ];
    let mut ok = true;
    println!(
        "P9: {} identities, {CONNECTIONS} connections, {seconds} s each (wrk -t2 -c{CONNECTIONS} --latency)",
        ids.len()
    );
    println!("{:<44} {:>9} {:>9} {:>10} {:>8}", "", "p50 ms", "p99 ms", "req/s", "non-2xx");
    for (name, url, script, target) in cases {
        // A short warm-up, then the measured run.
        let _ = wrk(&url, &script, 2)?;
        let l = wrk(&url, &script, seconds)?;
        println!("{name:<44} {:>9.2} {:>9.2} {:>10.0} {:>8}", l.p50_ms, l.p99_ms, l.rps, l.non_2xx);
        if target {
            ok &= l.p99_ms <= TARGET_P99_MS && l.non_2xx == 0;
        }
    }
    std::io::stdout().flush()?;
    println!("target: p99 <= {TARGET_P99_MS} ms with every answer 2xx: {}", if ok { "met" } else { "NOT met" });
    Ok(ok)
}

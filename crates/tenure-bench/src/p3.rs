//! P3: signed webhook ingest, durable before the acknowledgement, under a real load generator.
//!
//! Each run starts a real `tenure serve` on a fresh store (a webhook source `bench` with the
//! starter's columns), pre-signs one unique delivery per request (a joiner each: unique
//! `webhook-id`, timestamp now, Standard Webhooks HMAC) and has `wrk` replay them over 50
//! connections on loopback for the run's duration, cycling through them per thread with a Lua
//! script so no two requests share a delivery id. It reports wrk's requests per second and its
//! latency percentiles, then how long the server took to ingest the journal it acknowledged.
//!
//! The floor, measured in the same run with the same requests: a minimal axum handler that
//! only appends the body to SQLite (one autocommitted INSERT per request, WAL, `synchronous =
//! NORMAL` like the store) and answers 202. Its ratio to Tenure is what survives a noisy
//! machine.

use anyhow::{Context as _, Result, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tenure_server::webhook::Secret;

/// wrk's numbers for one run.
#[derive(Debug, Clone, Default)]
pub struct Load {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub non_2xx: u64,
}

pub struct Opts {
    pub runs: usize,
    pub seconds: u64,
    pub connections: u32,
}

const LUA: &str = r#"
-- Replays pre-signed deliveries, one line each: id TAB timestamp TAB signature TAB body.
-- Each thread takes every n-th line, so no delivery id is sent twice.
local n = 0
setup = function(thread)
  thread:set("tid", n)
  n = n + 1
end
local reqs, i = {}, 0
init = function(args)
  local threads = tonumber(args[2])
  local k = 0
  for line in io.lines(args[1]) do
    if k % threads == tid then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = { id = id, ts = ts, sig = sig, body = body }
    end
    k = k + 1
  end
end
request = function()
  i = i + 1
  local r = reqs[(i - 1) % #reqs + 1]
  return wrk.format("POST", args_path, {
    ["authorization"] = "Bearer " .. token,
    ["content-type"] = "application/json",
    ["webhook-id"] = r.id,
    ["webhook-timestamp"] = r.ts,
    ["webhook-signature"] = r.sig,
  }, r.body)
end
"#;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(addr: &str, path: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::Read as _;
            let _ = s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.contains(" 200 ") {
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server on {addr} did not become ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a config with a webhook source `bench`, its secret and a source token; returns the
/// secret and the token.
fn setup(dir: &Path, tenure: &Path) -> Result<(Secret, String)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new(tenure).args(args).current_dir(dir).env_remove("TENURE_CONFIG").output()?;
        if !out.status.success() {
            bail!("tenure {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    std::fs::create_dir_all(dir)?;
    run(&["init", "."])?;
    let whsec = Secret::generate();
    std::fs::write(dir.join("bench.secret"), &whsec)?;
    let mut config = std::fs::read_to_string(dir.join("tenure.toml"))?;
    config.push('\n');
    config.push_str(&tenure_sample::company::webhook_source_toml("bench", "bench.secret"));
    std::fs::write(dir.join("tenure.toml"), config)?;
    let token = run(&["token", "create", "--name", "bench", "--scope", "source", "--source", "bench"])?;
    Ok((Secret::parse(&whsec).map_err(|e| anyhow::anyhow!("{e}"))?, token.trim().to_string()))
}

/// One signed joiner per line, for the Lua script.
fn sign_requests(path: &Path, secret: &Secret, n: usize, run: usize) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let ts = chrono::Utc::now().timestamp();
    for i in 0..n {
        let id = format!("msg_{run}_{i}");
        let body = format!(
            r#"{{"employee_id":"B{run}{i:07}","first_name":"Bea","last_name":"Ng","login":"b{run}x{i}","work_email":"b{run}x{i}@example.com","dept":"Support","title":"Associate","employment_type":"employee","kind":"employee","employment_status":"active"}}"#
        );
        let sig = secret.sign(&id, ts, body.as_bytes());
        writeln!(out, "{id}\t{ts}\t{sig}\t{body}")?;
    }
    out.flush()?;
    Ok(())
}

fn wrk(url: &str, path: &str, token: &str, lines: &Path, o: &Opts, script_dir: &Path) -> Result<Load> {
    let threads = 2;
    let script = script_dir.join("p3.lua");
    std::fs::write(&script, format!("args_path = {path:?}\ntoken = {token:?}\n{LUA}"))?;
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &o.connections.to_string(), "-d", &format!("{}s", o.seconds)])
        .args(["--latency", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(url)
        .arg("--")
        .arg(lines)
        .arg(threads.to_string())
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text)
}

/// wrk prints latencies as `12.34us`, `1.20ms`, `2.00s`.
fn ms(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Result<Load> {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => load.p50_ms = ms(v).unwrap_or_default(),
            ["90%", v] => load.p90_ms = ms(v).unwrap_or_default(),
            ["99%", v] => load.p99_ms = ms(v).unwrap_or_default(),
            ["Requests/sec:", v] => load.requests_per_sec = v.parse().unwrap_or_default(),
            [n, "requests", "in", ..] => load.requests = n.parse().unwrap_or_default(),
            ["Non-2xx", "or", "3xx", "responses:", n] => load.non_2xx = n.parse().unwrap_or_default(),
            _ => {}
        }
    }
    if load.requests == 0 {
        bail!("could not read wrk's output:\n{text}");
    }
    Ok(load)
}

/// The floor: `tenure-bench p3-floor --db FILE --listen ADDR`.
pub fn floor_server(db: &Path, listen: &str) -> Result<()> {
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};
    let conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")?;
    let conn = Arc::new(Mutex::new(conn));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/hooks/bench",
                post(move |body: axum::body::Bytes| {
                    let conn = conn.clone();
                    async move {
                        let ok = tokio::task::spawn_blocking(move || {
                            let c = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            c.execute("INSERT INTO journal (body) VALUES (?1)", [&body[..]]).is_ok()
                        })
                        .await
                        .unwrap_or(false);
                        if ok {
                            axum::http::StatusCode::ACCEPTED
                        } else {
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        }
                    }
                }),
            )
            .route("/readyz", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok::<(), anyhow::Error>(())
    })
}

fn pending(db: &Path) -> Result<i64> {
    let c = rusqlite::Connection::open(db)?;
    Ok(c.query_row("SELECT count(*) FROM push_journal WHERE state = 'pending'", [], |r| r.get(0))?)
}

pub fn run(bench_dir: &Path, tenure: &Path, o: &Opts) -> Result<bool> {
    let me = std::env::current_exe()?;
    let mut met = true;
    println!(
        "P3: signed webhook pushes (one joiner each), wrk -t2 -c{} -d{}s on loopback, {} run(s)",
        o.connections, o.seconds, o.runs
    );
    for run in 0..o.runs {
        let dir: PathBuf = bench_dir.join("p3");
        let (secret, token) = setup(&dir, tenure)?;
        // Enough unique deliveries for 20,000 a second.
        let n = usize::try_from(o.seconds).unwrap_or(30) * 20_000;
        let lines = dir.join("requests.tsv");
        sign_requests(&lines, &secret, n, run)?;

        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let server = Killed(
            Command::new(tenure)
                .args(["serve", "--listen", &addr])
                .current_dir(&dir)
                .env_remove("TENURE_CONFIG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_ready(&addr, "/readyz")?;
        let t = wrk(&format!("http://{addr}"), "/hooks/bench", &token, &lines, o, &dir)?;
        let db = dir.join("tenure-data/tenure.db");
        let backlog = pending(&db)?;
        let drain_start = Instant::now();
        while pending(&db)? > 0 && drain_start.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let drained = drain_start.elapsed();
        drop(server);

        let floor_db = dir.join("floor.db");
        let fport = free_port()?;
        let faddr = format!("127.0.0.1:{fport}");
        let floor = Killed(
            Command::new(&me)
                .args(["p3-floor", "--db"])
                .arg(&floor_db)
                .args(["--listen", &faddr])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_ready(&faddr, "/readyz")?;
        // Fresh signatures: the floor does not check them, but the requests are the same size.
        let f = wrk(&format!("http://{faddr}"), "/hooks/bench", &token, &lines, o, &dir)?;
        drop(floor);

        let ok = t.requests_per_sec >= 5_000.0 && t.p99_ms <= 20.0 && t.non_2xx == 0;
        met &= ok;
        println!(
            "run {}: tenure {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, {} requests, {} non-2xx; \
             journal backlog at the end {backlog}, ingested {:.1} s later | floor {:.0} req/s, p99 {:.2} ms | \
             ratio {:.2} | {}",
            run + 1,
            t.requests_per_sec,
            t.p50_ms,
            t.p90_ms,
            t.p99_ms,
            t.requests,
            t.non_2xx,
            drained.as_secs_f64(),
            f.requests_per_sec,
            f.p99_ms,
            t.requests_per_sec / f.requests_per_sec.max(1.0),
            if ok { "met" } else { "NOT met" }
        );
    }
    Ok(met)
}

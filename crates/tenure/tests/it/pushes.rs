//! Signed webhooks against a real `tenure serve` and real peers: the server killed with SIGKILL
//! during a burst of pushes loses nothing it acknowledged, applies nothing twice, and every
//! acknowledged joiner's case proceeds to verified.

use crate::Env;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tenure_server::webhook::Secret;
use tenure_testkit::stack::Stack;

/// A `tenure serve` child on a free loopback port; killed (SIGKILL) when dropped.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(env: &Env) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["serve", "--listen", &listen])
        .current_dir(env.dir.path())
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL")
        .env_remove("TENURE_TODAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{listen}");
    let started = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
            use std::io::{Read as _, Write as _};
            let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "tenure serve did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { child, url }
}

/// A webhook source `workday` (the `hr` columns) with a fresh secret, and a source token for it.
pub fn webhook_source(env: &Env) -> (Secret, String) {
    let whsec = Secret::generate();
    env.write("workday.secret", &whsec);
    let mut config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    config.push('\n');
    config.push_str(&tenure_sample::company::webhook_source_toml("workday", "workday.secret"));
    env.write("tenure.toml", &config);
    let token = env.ok(&["token", "create", "--name", "workday", "--scope", "source", "--source", "workday"]);
    (Secret::parse(&whsec).unwrap(), token.stdout.trim().to_string())
}

fn joiner(i: usize) -> String {
    format!(
        r#"{{"employee_id": "W{i:04}", "first_name": "Wen", "last_name": "Ng", "login": "wng{i}", "work_email": "wng{i}@example.com", "dept": "Engineering", "title": "Engineer", "employment_type": "employee", "kind": "employee", "employment_status": "active"}}"#
    )
}

#[test]
fn a_server_killed_mid_burst_loses_no_acknowledged_push_and_applies_none_twice() {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(1000));
    let (_, token) = webhook_source(&env);
    env.ok(&["check"]);
    let server = Arc::new(Mutex::new(Some(serve(&env))));
    let url = server.lock().unwrap().as_ref().unwrap().url.clone();

    // Eight clients push one joiner each per request; after 40 acknowledgements the server is
    // killed with SIGKILL while the others are in flight.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url, token, acked, next, server) =
                (client.clone(), url.clone(), token.clone(), acked.clone(), next.clone(), server.clone());
            let secret = Secret::parse(&std::fs::read_to_string(env.path("workday.secret")).unwrap()).unwrap();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= 400 {
                        return;
                    }
                    let body = joiner(i);
                    let id = format!("msg_{i}");
                    let ts = chrono::Utc::now().timestamp();
                    let sent = client
                        .post(format!("{url}/hooks/workday"))
                        .bearer_auth(&token)
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", ts.to_string())
                        .header("webhook-signature", secret.sign(&id, ts, body.as_bytes()))
                        .body(body)
                        .send()
                        .await;
                    let Ok(resp) = sent else { return };
                    if resp.status() == reqwest::StatusCode::ACCEPTED {
                        let n = {
                            let mut a = acked.lock().unwrap();
                            a.insert(id, format!("W{i:04}"));
                            a.len()
                        };
                        if n == 40 {
                            // Dropping the handle SIGKILLs the child.
                            server.lock().unwrap().take();
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40, "the burst was acknowledged before the kill: {}", acked.len());

    // Restarted, the server ingests what the killed one journaled and had not ingested.
    let again = serve(&env);
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let started = Instant::now();
    loop {
        let pending: i64 =
            db.query_row("SELECT count(*) FROM push_journal WHERE state = 'pending'", [], |r| r.get(0)).unwrap();
        if pending == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{pending} journal entries never ingested");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut journal: BTreeMap<String, i64> = BTreeMap::new();
    let mut stmt = db.prepare("SELECT delivery, state FROM push_journal WHERE source = 'workday'").unwrap();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap() {
        let (delivery, state) = row.unwrap();
        assert_eq!(state, "ingested");
        *journal.entry(delivery).or_default() += 1;
    }
    for id in acked.keys() {
        assert_eq!(journal.get(id), Some(&1), "acknowledged delivery `{id}` is in the journal exactly once");
    }
    // Each journaled joiner was applied once: one joiner event and one case per identity.
    let events: i64 = db
        .query_row("SELECT count(*) FROM events WHERE source = 'workday' AND kind = 'joiner'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(usize::try_from(events).unwrap(), journal.len(), "one joiner event per journaled delivery");
    eprintln!("acknowledged {}, journaled {}", acked.len(), journal.len());
    drop(again);

    // The cases proceed: applied against the real peers and verified by reading them back.
    env.ok(&["apply", "--wait"]);
    let tickets = env.ok(&["tasks", "--format", "json"]).json();
    for t in tickets.as_array().unwrap() {
        let id = t["id"].as_i64().unwrap().to_string();
        env.ok(&["task", "done", &id, "--evidence", "created in the payroll UI", "--as", "payroll-admin"]);
    }
    let wanted: BTreeSet<&String> = acked.values().collect();
    let mut stmt = db.prepare("SELECT identity, state FROM cases").unwrap();
    let cases: Vec<(String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    for who in &wanted {
        let states: Vec<&str> = cases.iter().filter(|(i, _)| i == *who).map(|(_, s)| s.as_str()).collect();
        assert_eq!(states, ["closed"], "`{who}`'s case is closed, every operation verified");
    }
    let unverified: i64 = db
        .query_row(
            "SELECT count(*) FROM operations WHERE identity LIKE 'W%' AND state NOT IN ('verified', 'done')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unverified, 0);
    env.ok(&["audit", "verify"]);
    drop(stack);
}

//! Issue 15, through the real binary and the real PostgreSQL peer: a privileged role granted by
//! a condition (`title = "DBA"`) with `approval = "manager"` is asked for, never applied by the
//! match; the batch that makes seven people eligible is held, and none of the seven (by id or by
//! username, in any case) nor whoever imported it may release it, from the CLI (`--as`) or the
//! API (the token's name); PostgreSQL is asked with `psql` that the role is absent until the
//! manager approves and present after. Listing tickets or exceptions writes nothing.

use crate::Env;
use std::time::{Duration, Instant};
use tenure_testkit::stack::Stack;

const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";

/// The issue's role.
const DBA: &str = r#"
[[role]]
id = "dba"
privileged = true
when = { title = "DBA" }
approval = "manager"
max_duration = "8h"
grant = ["warehouse:admin"]
"#;

fn row(id: &str, login: &str, title: &str, manager: &str) -> String {
    format!(
        "{id},N,L,{login}@example.com,{login},Support,{title},Berlin,CC1,{manager},employee,employee,,2020-01-01,,active"
    )
}

/// `M1` (`boss`) and seven DBAs `W5001`..`W5007` (`w5001`..) managed by `M1`; `title` is
/// W5001's.
fn people(title: &str) -> String {
    let mut rows = vec![HEADER.to_string(), row("M1", "boss", "Lead", "")];
    rows.push(row("W5001", "w5001", title, "M1"));
    rows.extend((2..=7).map(|i| row(&format!("W500{i}"), &format!("w500{i}"), "DBA", "M1")));
    rows.join("\n") + "\n"
}

struct World {
    env: Env,
    stack: Stack,
}

fn world() -> World {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(25));
    env.write("policy.toml", &format!("{}{DBA}", tenure_sample::starter::POLICY));
    env.ok(&["check"]);
    World { env, stack }
}

impl World {
    /// The PostgreSQL roles `user` is a member of, asked with psql.
    fn members(&self, user: &str) -> String {
        self.stack
            .psql(&format!(
                "SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') FROM pg_auth_members m \
                 JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{user}'"
            ))
            .unwrap()
            .trim()
            .to_string()
    }

    /// What a refusal must leave alone: the audit chain's length, the approvals, the requests
    /// and the operations, as the CLI prints them.
    fn state(&self) -> (u64, String, String, String) {
        let audit = self.env.ok(&["audit", "verify", "--format", "json"]).json();
        (
            audit["records"].as_u64().unwrap(),
            self.env.ok(&["approvals", "--all", "--format", "json"]).stdout,
            self.env.ok(&["requests", "--format", "json"]).stdout,
            self.env.ok(&["plan", "--all", "--format", "json"]).stdout,
        )
    }

    fn refused(&self, args: &[&str], says: &str) {
        let before = self.state();
        let mut json = args.to_vec();
        json.extend(["--format", "json"]);
        let out = self.env.run(&json);
        assert_eq!(out.code, 1, "{args:?} should be refused: {}{}", out.stdout, out.stderr);
        let body = out.json();
        assert_eq!(body["code"], "self_approval", "{args:?}: {body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{args:?}: `{body}` should say `{says}`");
        assert_eq!(self.state(), before, "{args:?}: a refusal changes nothing");
    }

    /// The pending approval of W5001's request.
    fn request_approval(&self, identity: &str) -> String {
        let list = self.env.ok(&["requests", "--open", "--format", "json"]).json();
        let r = list.as_array().unwrap().iter().find(|r| r["identity"] == identity).unwrap().clone();
        assert_eq!((r["via"].as_str(), r["state"].as_str()), (Some("birthright"), Some("pending")), "{r}");
        r["stages"][0]["approval_id"].as_i64().unwrap().to_string()
    }
}

#[test]
fn issue15_cli_nobody_releases_their_own_privileged_batch_and_a_dba_gets_admin_only_once_approved() {
    let w = world();
    w.env.write("day1.csv", &people("DBA"));
    let held = w.env.run(&["import", "--source", "hr", "day1.csv", "--as", "ops", "--format", "json"]).json();
    assert_eq!(held["outcome"], "held", "{held}");
    assert!(held["held_reason"].as_str().unwrap().contains("7 identities gaining privileged access"), "{held}");
    let batch = held["approval_id"].as_i64().unwrap().to_string();

    // One of the seven, by id or username in any case, the manager who joins in it too, and the
    // importer: refused, naming who.
    w.refused(&["approve", &batch, "--as", "W5001"], "identity `W5001`");
    w.refused(&["approve", &batch, "--as", "w5001"], "identity `W5001`");
    w.refused(&["approve", &batch, "--as", "W5003"], "identity `W5003`");
    w.refused(&["approve", &batch, "--as", "Boss"], "identity `M1`");
    w.refused(&["approve", &batch, "--as", "ops"], "submitted what approval");
    w.refused(&["reject", &batch, "--reason", "no", "--as", "w5002"], "identity `W5002`");
    w.env.ok(&["approve", &batch, "--as", "ciso"]);
    w.env.ok(&["apply", "--wait"]);
    assert!(!w.members("w5001").contains("admin"), "not granted by the match: {}", w.members("w5001"));

    // W5001's request waits for M1: W5001 may not approve it; M1 does, and only then is the
    // role applied and verified in PostgreSQL.
    let approval = w.request_approval("W5001");
    w.refused(&["approve", &approval, "--as", "W5001"], "cannot approve a request for themselves");
    w.env.ok(&["approve", &approval, "--as", "boss"]);
    w.env.ok(&["apply", "--wait"]);
    assert_eq!(w.members("w5001"), "admin", "granted once approved");
    assert!(!w.members("w5002").contains("admin"), "the others still wait");

    // W5001 stops being a DBA: the grant is revoked as for any role.
    w.env.write("day2.csv", &people("Associate"));
    w.env.ok(&["import", "--source", "hr", "day2.csv"]);
    w.env.ok(&["apply", "--wait"]);
    assert_eq!(w.members("w5001"), "", "revoked in PostgreSQL");
    let all = w.env.ok(&["requests", "--format", "json"]).json();
    let mine: Vec<&serde_json::Value> = all.as_array().unwrap().iter().filter(|r| r["identity"] == "W5001").collect();
    assert_eq!(mine.len(), 1, "{all}");
    assert_eq!(mine[0]["state"], "revoked");
}

fn record(id: &str, login: &str, title: &str, manager: &str) -> String {
    format!(
        r#"{{"employee_id": "{id}", "first_name": "N", "last_name": "L", "login": "{login}", "work_email": "{login}@example.com", "dept": "Support", "title": "{title}", "manager": "{manager}", "employment_type": "employee", "kind": "employee", "employment_status": "active"}}"#
    )
}

/// The issue's reproduction over the API: seven DBAs pushed by a webhook are held; the token
/// named after one of them gets 403 `self_approval` from `POST /api/v1/approvals/{id}/approve`,
/// so does the token that pushed records through the events API; the role reaches PostgreSQL
/// only after the manager's token approves the request, applied by the server's workers.
#[test]
fn issue15_api_a_token_named_after_a_pushed_dba_cannot_release_the_batch() {
    let w = world();
    let (secret, source_token) = crate::pushes::webhook_source(&w.env);
    let token =
        |name: &str| w.env.ok(&["token", "create", "--name", name, "--scope", "approver"]).stdout.trim().to_string();
    let (w5001, boss, ciso) = (token("W5001"), token("M1"), token("ciso"));
    let operator = w.env.ok(&["token", "create", "--name", "ops", "--scope", "admin"]).stdout.trim().to_string();
    let server = crate::pushes::serve(&w.env);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let post = |path: &str, bearer: &str, body: String, headers: Vec<(&str, String)>| {
        let mut req = client.post(format!("{}{path}", server.url)).bearer_auth(bearer).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        rt.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap_or_default())
        })
    };

    let mut records = vec![record("M1", "boss", "Lead", "")];
    records.extend((1..=7).map(|i| record(&format!("W500{i}"), &format!("w500{i}"), "DBA", "M1")));
    let body = format!(r#"{{"records": [{}]}}"#, records.join(","));
    let ts = chrono::Utc::now().timestamp();
    let signed = vec![
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", secret.sign("msg_1", ts, body.as_bytes())),
        ("content-type", "application/json".to_string()),
    ];
    let (st, answer) = post("/hooks/workday", &source_token, body, signed);
    assert_eq!(st, 202, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let batch = loop {
        let pending = w.env.ok(&["approvals", "--format", "json"]).json();
        if let Some(a) = pending.as_array().unwrap().iter().find(|a| a["kind"] == "batch") {
            break a["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "the push was never held");
        std::thread::sleep(Duration::from_millis(100));
    };
    // An operator's correction pushed through the events API joins the held batch.
    let (st, answer) = post(
        "/api/v1/events?source=workday",
        &operator,
        record("W5008", "w5008", "DBA", "M1"),
        vec![("content-type", "application/json".to_string())],
    );
    assert_eq!(st, 202, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let batch = loop {
        let pending = w.env.ok(&["approvals", "--format", "json"]).json();
        let a = pending.as_array().unwrap().iter().find(|a| a["kind"] == "batch").cloned();
        if let Some(a) = a.filter(|a| a["id"].as_i64() != Some(batch)) {
            break a;
        }
        assert!(Instant::now() < deadline, "the correction never joined the held batch");
        std::thread::sleep(Duration::from_millis(100));
    };

    let submitted = batch["summary"]["submitted_by"].clone();
    let batch = batch["id"].as_i64().unwrap();
    let approve =
        |id: i64, bearer: &str| post(&format!("/api/v1/approvals/{id}/approve"), bearer, String::new(), vec![]);
    let before = w.state();
    for (bearer, says) in [(&w5001, "identity `W5001`"), (&operator, "submitted what approval")] {
        let (st, e) = approve(batch, bearer);
        assert_eq!((st, e["code"].as_str()), (403, Some("self_approval")), "{e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    }
    assert_eq!(w.state(), before, "refusals change nothing");
    assert_eq!(
        submitted,
        serde_json::json!(["token:ops", "source:workday", "token:workday"]),
        "both pushers are recorded, the webhook's token too"
    );
    assert!(w.members("w5001").is_empty(), "nothing applied");
    let (st, e) = approve(batch, &ciso);
    assert_eq!(st, 200, "{e}");

    // W5001 holds no admin until M1's token approves the request; the workers apply it.
    let approval: i64 = w.request_approval("W5001").parse().unwrap();
    let (st, e) = approve(approval, &w5001);
    assert_eq!((st, e["code"].as_str()), (403, Some("self_approval")), "{e}");
    let (st, e) = approve(approval, &boss);
    assert_eq!(st, 200, "{e}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.members("w5001") != "admin" {
        assert!(Instant::now() < deadline, "the approved grant never reached PostgreSQL: `{}`", w.members("w5001"));
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 2..=8 {
        assert!(!w.members(&format!("w500{i}")).contains("admin"), "w500{i} still waits");
    }
}

/// Listing tickets and exceptions is a read: an overdue ticket is not recorded by `tenure tasks`
/// or `tenure exceptions` (the `overdue` schedule records it), so the store and the audit trail
/// stay as they were.
#[test]
fn issue15_listing_overdue_tickets_and_exceptions_writes_nothing() {
    let env = Env::new();
    // The starter's manual payroll and nothing else: applying opens its tickets.
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let start = config.find("[[target]]").unwrap();
    let payroll = config.find("[[target]]\nname = \"payroll\"").unwrap();
    let end = config[payroll + 10..].find("[[target]]").map_or(config.len(), |i| payroll + 10 + i);
    env.write("tenure.toml", &format!("{}{}", &config[..start], &config[payroll..end]));
    env.write(
        "policy.toml",
        "[[role]]\nid = \"record\"\nwhen = { status = \"active\" }\ngrant = [\"payroll:employee-record\"]\n",
    );
    env.ok(&["check"]);
    env.write("hr.csv", &format!("{HEADER}\n{}\n", row("E1", "eli", "Rep", "")));
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    env.ok(&["apply"]);
    let tickets = env.ok(&["tasks", "--format", "json"]).json();
    assert!(!tickets.as_array().unwrap().is_empty(), "payroll tickets: {tickets}");
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let trail = |env: &Env| env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let before = trail(&env);
    let listed = env.run_on_clock(&later, &["tasks", "--format", "json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.json().as_array().unwrap().iter().all(|t| t["overdue"] == true), "{}", listed.stdout);
    let ex = env.run_on_clock(&later, &["exceptions", "--format", "json"]);
    assert_eq!(ex.code, 0, "{}", ex.stderr);
    assert!(ex.json().as_array().unwrap().iter().all(|e| e["kind"] != "overdue_ticket"), "{}", ex.stdout);
    assert_eq!(trail(&env), before, "a listing appends nothing to the audit trail");
    // The overdue job records them.
    let job = env.run_on_clock(&later, &["schedule", "run-once", "--job", "overdue"]);
    assert_eq!(job.code, 0, "{}", job.stderr);
    let ex = env.run_on_clock(&later, &["exceptions", "--format", "json"]).json();
    assert!(ex.as_array().unwrap().iter().any(|e| e["kind"] == "overdue_ticket"), "{ex}");
}

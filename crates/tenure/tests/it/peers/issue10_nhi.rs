//! Issue 10, deliverable 5, against the real PostgreSQL peer through the real binary: a service
//! account's credential rotated on request (`tenure rotate`), on an owner change and by the
//! `credentials` schedule once it is past `credential_max_age`; each new password logs in
//! (checked with a plain tokio-postgres connection as the account) and the one before it does
//! not; the secret is in the sink (0600 in 0700 directories) and nowhere else: not in the store's
//! files, the audit export, any command's output or its log lines. Reconciliation reports the
//! stale credential and an NHI whose owner is not active, and a fix someone declines is a
//! `declined_fix` exception.

use super::{World, world};
use crate::{Out, company};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use tenure_testkit::company::{Company, Person};

/// Every command's output, kept to be searched for secrets at the end.
#[derive(Default)]
struct Transcript {
    runs: Vec<(String, Out)>,
}

impl Transcript {
    fn run(&mut self, w: &World, args: &[&str], now: Option<&str>) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenure"));
        cmd.args(args)
            .current_dir(w.env.path(""))
            .env_remove("TENURE_CONFIG")
            .env_remove("TENURE_STORE_URL")
            .env("TENURE_USER", "ops-lead")
            .env("RUST_LOG", "debug");
        if let Some(now) = now {
            cmd.env("TENURE_NOW", now);
        }
        let raw = cmd.output().unwrap();
        let out = || Out {
            code: raw.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
        };
        self.runs.push((args.join(" "), out()));
        out()
    }

    fn ok(&mut self, w: &World, args: &[&str]) -> Out {
        self.expect(w, 0, args)
    }

    fn expect(&mut self, w: &World, code: i32, args: &[&str]) -> Out {
        let out = self.run(w, args, None);
        assert_eq!(out.code, code, "tenure {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        out
    }

    fn assert_free_of(&self, secret: &str) {
        for (cmd, out) in &self.runs {
            for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                assert!(!text.contains(secret), "a rotated secret appears in the {stream} of `tenure {cmd}`:\n{text}");
            }
        }
    }
}

fn service(co: &Company, owner: &str) -> Person {
    let mut p = co.get(owner).unwrap().clone();
    p.id = "S000001".into();
    p.given = "Nightly".into();
    p.family = "ETL".into();
    p.email = "svc-etl@example.com".into();
    p.username = "svc-etl".into();
    p.title = "Service Account".into();
    p.manager = None;
    p.employment_type = String::new();
    p.kind = "service".into();
    p.owner = Some(owner.to_string());
    p.end = None;
    p
}

/// Logs in to the warehouse as `user` with `password` on a plain connection of its own.
fn login(w: &World, user: &str, password: &str) -> Result<String, String> {
    let url = format!("postgres://{user}:{password}@127.0.0.1:{}/postgres", w.stack.pg.port());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.map_err(|e| {
            e.as_db_error().map_or_else(|| e.to_string(), |d| format!("{}: {}", d.code().code(), d.message()))
        })?;
        tokio::spawn(conn);
        let row = client.query_one("SELECT current_user::text", &[]).await.map_err(|e| e.to_string())?;
        Ok(row.get::<_, String>(0))
    })
}

fn sink_secret(w: &World) -> String {
    let path = w.env.path("secrets/warehouse/svc-etl");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "the secret file is 0600");
    assert_eq!(mode(&w.env.path("secrets")), 0o700, "the sink is 0700");
    assert_eq!(mode(&w.env.path("secrets/warehouse")), 0o700, "the target's directory is 0700");
    let text = std::fs::read_to_string(&path).unwrap();
    let secret = text.trim_end().to_string();
    assert_eq!(secret.len(), 40, "one secret and a newline: {}", text.len());
    let names: Vec<String> = std::fs::read_dir(w.env.path("secrets/warehouse"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["svc-etl"], "nothing staged or temporary is left behind");
    secret
}

fn store_bytes(w: &World) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(w.env.path("tenure-data")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn issue10_a_rotated_service_password_logs_in_the_old_one_does_not_and_it_is_only_in_the_sink() {
    let w = world(25);
    let mut t = Transcript::default();
    let mut co = company(10);
    let owner = co.hire("Engineering");
    let heir = co.hire("Engineering");
    co.people.push(service(&co, &owner));
    w.import("day1.csv", &co);
    w.apply_all();
    assert_eq!(w.pg("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'svc-etl'"), "t");

    // Without a sink a rotation is refused before the target is touched: the operation fails
    // saying why, and the role still has no password.
    t.ok(&w, &["rotate", "S000001"]);
    t.expect(&w, 1, &["apply", "--wait"]);
    let ops = t.ok(&w, &["plan", "--all", "--identity", "S000001", "--format", "json"]).json();
    let failed = ops.as_array().unwrap().iter().find(|o| o["kind"] == "rotate_credential").unwrap().clone();
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["last_error"].as_str().unwrap().contains("needs a secret sink"), "{failed}");
    assert_eq!(w.pg("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'svc-etl'"), "t");
    assert!(!w.env.path("secrets").exists());
    let exceptions = t.ok(&w, &["exceptions", "--format", "json"]).json();
    let x = exceptions.as_array().unwrap().iter().find(|e| e["identity"] == "S000001").cloned();
    let x = x.unwrap_or_else(|| panic!("the failed rotation is an exception: {exceptions:#}"));
    assert_eq!(x["kind"], "failed_operation", "a rotation takes no access away: {x}");
    t.ok(&w, &["exception", "resolve", &x["id"].to_string(), "--reason", "sink configured"]);

    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap();
    w.env.write("tenure.toml", &format!("{config}\n[nhi]\nsecret_sink = \"secrets\"\ncredential_max_age = \"30d\"\n"));
    t.ok(&w, &["check"]);
    t.ok(&w, &["apply", "--retry-failed", "--wait"]);
    let zeroth = sink_secret(&w);
    assert_eq!(login(&w, "svc-etl", &zeroth).as_deref(), Ok("svc-etl"), "retried once the sink is there");

    // Refusals change nothing: a person, an unknown identity, a target without an account.
    let before = t.ok(&w, &["plan", "--format", "json"]).stdout;
    let out = t.expect(&w, 1, &["rotate", &owner]);
    assert!(out.stderr.contains("only service and bot identities"), "{}", out.stderr);
    let out = t.expect(&w, 1, &["rotate", "S404"]);
    assert!(out.stderr.contains("identity `S404`"), "{}", out.stderr);
    let out = t.run(&w, &["rotate", "S000001", "--target", "nowhere"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = t.expect(&w, 1, &["rotate", "S000001", "--target", "directory"]);
    assert!(out.stderr.contains("no enabled account in `directory`"), "{}", out.stderr);
    assert_eq!(t.ok(&w, &["plan", "--format", "json"]).stdout, before, "nothing was planned");

    // On request: planned, applied, verified by logging in.
    let planned = t.ok(&w, &["rotate", "S000001", "--format", "json"]).json();
    assert_eq!(planned.as_array().unwrap().len(), 1, "{planned}");
    assert_eq!((planned[0]["target"].as_str(), planned[0]["queued"].as_bool()), (Some("warehouse"), Some(true)));
    let again = t.ok(&w, &["rotate", "S000001", "--format", "json"]).json();
    assert_eq!(again[0]["queued"], false, "one rotation at a time per account: {again}");
    assert_eq!(again[0]["operation"], planned[0]["operation"]);
    t.ok(&w, &["apply", "--wait"]);
    let first = sink_secret(&w);
    assert_eq!(login(&w, "svc-etl", &first).as_deref(), Ok("svc-etl"), "the rotated password logs in");
    let op = t.ok(&w, &["plan", "--all", "--identity", "S000001", "--format", "json"]).json();
    let rot = op.as_array().unwrap().iter().find(|o| o["kind"] == "rotate_credential").unwrap().clone();
    assert_eq!(rot["state"], "verified", "{rot}");

    // Again: the new one logs in, the old one does not.
    t.ok(&w, &["rotate", "S000001"]);
    t.ok(&w, &["apply", "--wait"]);
    let second = sink_secret(&w);
    assert_ne!(first, second);
    assert_eq!(login(&w, "svc-etl", &second).as_deref(), Ok("svc-etl"));
    let refused = login(&w, "svc-etl", &first).unwrap_err();
    assert!(refused.starts_with("28P01: password authentication failed"), "{refused}");

    // The owner changes: the credential is rotated with the rest of the plan.
    co.get_mut("S000001").unwrap().owner = Some(heir.clone());
    let day2 = w.import("day2.csv", &co);
    assert!(day2.to_string().contains("S000001"), "{day2}");
    let pending = w.env.pending("S000001");
    assert_eq!(pending, ["warehouse rotate_credential"], "rotated on the owner change");
    t.ok(&w, &["apply", "--wait"]);
    let third = sink_secret(&w);
    assert!(third != second && login(&w, "svc-etl", &third).is_ok() && login(&w, "svc-etl", &second).is_err());

    // Forty days later the credential is stale: reconciliation says so and the schedule rotates
    // it, as `schedule:credentials`.
    let later = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let rec = t.run(&w, &["reconcile", "--target", "warehouse", "--format", "json"], Some(&later));
    assert_eq!(rec.code, 1, "{}", rec.stderr);
    let findings = rec.json()["targets"][0]["findings"].clone();
    let stale = findings.as_array().unwrap().iter().find(|f| f["kind"] == "stale_credential").cloned();
    let stale = stale.unwrap_or_else(|| panic!("no stale_credential: {findings:#}"));
    assert_eq!((stale["identity"].as_str(), stale["account"].as_str()), (Some("S000001"), Some("svc-etl")), "{stale}");
    let run = t.run(&w, &["schedule", "run-once", "--job", "credentials", "--format", "json"], Some(&later));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let pending = w.env.pending("S000001");
    assert_eq!(pending, ["warehouse rotate_credential"], "{}", run.stdout);
    let run = t.run(&w, &["apply", "--wait"], Some(&later));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fourth = sink_secret(&w);
    assert!(fourth != third && login(&w, "svc-etl", &fourth).is_ok() && login(&w, "svc-etl", &third).is_err());
    let rec = t.run(&w, &["reconcile", "--target", "warehouse", "--format", "json"], Some(&later));
    let findings = rec.json()["targets"][0]["findings"].clone();
    assert!(findings.as_array().unwrap().iter().all(|f| f["kind"] != "stale_credential"), "fresh now: {findings:#}");

    // The owner goes on leave: the service has no active owner.
    co.get_mut(&heir).unwrap().status = "leave".into();
    w.import("day3.csv", &co);
    w.apply_all();
    let rec = t.expect(&w, 1, &["reconcile", "--target", "warehouse", "--format", "json"]).json();
    let findings = rec["targets"][0]["findings"].clone();
    let ownerless = findings.as_array().unwrap().iter().find(|f| f["kind"] == "nhi_without_owner").cloned();
    let ownerless = ownerless.unwrap_or_else(|| panic!("no nhi_without_owner: {findings:#}"));
    assert!(
        ownerless["detail"].as_str().unwrap().contains(&format!("owned by `{heir}`, who is suspended")),
        "{ownerless}"
    );

    // A fix someone declines is control debt: a role granted by hand, the revocation held by the
    // guard, rejected, and the grant left in place as a `declined_fix` owned by who declined it.
    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap();
    assert!(config.contains("max_access_losses = 25\n"), "{config}");
    w.env.write("tenure.toml", &config.replacen("max_access_losses = 25\n", "max_access_losses = 0\n", 1));
    w.stack.psql("GRANT finance TO \"svc-etl\"").unwrap();
    let rem = t.expect(&w, 1, &["reconcile", "--target", "warehouse", "--remediate", "--format", "json"]).json();
    let approval = rem["remediation"]["approval_id"].as_i64().unwrap_or_else(|| panic!("held: {rem:#}")).to_string();
    t.ok(&w, &["reject", &approval, "--reason", "needed for the quarter close", "--as", "finance-lead"]);
    let open = t.ok(&w, &["exceptions", "--format", "json"]).json();
    let declined = open.as_array().unwrap().iter().find(|e| e["kind"] == "declined_fix").cloned();
    let declined = declined.unwrap_or_else(|| panic!("no declined_fix: {open:#}"));
    assert_eq!((declined["identity"].as_str(), declined["owner"].as_str()), (Some("S000001"), Some("finance-lead")));
    assert!(declined["reason"].as_str().unwrap().contains("needed for the quarter close"), "{declined}");
    assert!(w.pg("SELECT pg_has_role('svc-etl', 'finance', 'MEMBER')") == "t", "the grant stays");
    let id = declined["id"].to_string();
    t.ok(&w, &["exception", "accept", &id, "--reason", "quarter close", "--due", "2099-03-31"]);

    // The audit trail tells the story without the secrets.
    let audit = t.ok(&w, &["audit", "export", "--format", "jsonl"]).stdout;
    for action in ["plan.rotate_credential", "apply.rotate_credential", "nhi.rotate_on_owner_change"] {
        assert!(audit.contains(&format!("\"action\":\"{action}\"")), "{action}");
    }
    assert!(audit.lines().any(|l| l.contains("plan.rotate_credential") && l.contains("\"actor\":\"user:ops-lead\"")));
    assert!(
        audit.lines().any(|l| l.contains("plan.rotate_credential") && l.contains("\"actor\":\"schedule:credentials\""))
    );
    t.ok(&w, &["audit", "export", "--format", "csv"]);
    for args in [
        &["plan", "--all", "--format", "json"][..],
        &["identity", "show", "S000001", "--format", "json"],
        &["identity", "show", "S000001"],
        &["exceptions", "--all", "--format", "json"],
        &["cases", "--format", "json"],
    ] {
        t.ok(&w, args);
    }
    t.ok(&w, &["audit", "verify"]);

    let store = store_bytes(&w);
    let server_log = w.stack.pg.log();
    for secret in [&zeroth, &first, &second, &third, &fourth] {
        assert!(!server_log.contains(secret.as_str()), "a rotated secret is in the PostgreSQL server's log");
        t.assert_free_of(secret);
        assert!(!holds(&store, secret), "a rotated secret is in the store's files");
        assert!(!audit.contains(secret.as_str()));
    }
}

//! Issue 8, workers and schedules, against the real peers and a running `tenure serve`:
//!
//! - a contractor whose `end_date` passes while the server runs (its clock started by
//!   `TENURE_NOW` three seconds before the end of that day in the source's timezone, the
//!   scheduler ticking every second) is deprovisioned and verified on LDAP, SCIM and PostgreSQL
//!   with nobody acting, and the audit names `schedule:end_date`;
//! - the account, re-enabled by hand in PostgreSQL after the leaver case closed, is found by the
//!   post-offboarding re-check as `resurrected` when the server runs again a day later: the case
//!   reopens, the account is disabled again, and the case closes again.
//!
//! Every check asks the peers directly (ldapsearch, SCIM over HTTP, psql), never Tenure. Waits
//! poll for a state with a generous deadline that only bounds a failure; nothing asserts a
//! duration.

use super::{World, world};
use std::process::Command;
use std::time::{Duration, Instant};
use tenure_testkit::server::Server;

/// The contractor's last working day, in New York.
const LAST_DAY: &str = "2026-11-30";
/// Noon of that day in New York (UTC-5 in winter).
const DAY_NOON: &str = "2026-11-30T17:00:00Z";
/// Three seconds before that day ends in New York: 2026-11-30T23:59:57-05:00.
const DAY_END_SOON: &str = "2026-12-01T04:59:57Z";
/// When the day has ended in New York.
const DAY_ENDED: &str = "2026-12-01T05:00:00Z";
/// An hour later: a person finishes nothing here; this is only the CLI's clock for reading.
const AFTER: &str = "2026-12-01T06:00:00Z";
/// A day and a bit after the case closed: the re-check (`recheck_after_days = 1`) is due.
const RECHECK_DAY: &str = "2026-12-02T07:00:00Z";

/// `tenure ARGS` in the test's directory on a clock started at `now` (no pinned date: the
/// schedules follow the clock).
fn tenure_at(w: &World, now: &str, args: &[&str]) -> crate::Out {
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .current_dir(w.env.dir.path())
        .env("TENURE_NOW", now)
        .env_remove("TENURE_TODAY")
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL")
        .env("TENURE_USER", "test-admin")
        .output()
        .unwrap();
    crate::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_at(w: &World, now: &str, args: &[&str]) -> crate::Out {
    let out = tenure_at(w, now, args);
    assert_eq!(out.code, 0, "tenure {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

/// A real `tenure serve` in the test's directory (`tenure_testkit::server`), its clock started
/// at `now`.
fn serve(w: &World, rt: &tokio::runtime::Runtime, now: &str) -> Server {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap();
    rt.block_on(Server::start_with(&bin, w.env.dir.path(), &config, &[("TENURE_NOW", now), ("RUST_LOG", "info")]))
        .expect("tenure serve starts")
}

/// SIGTERM, a graceful stop.
fn stop(server: Server) {
    let (code, logs) = server.terminate().unwrap();
    assert_eq!(code, Some(0), "a graceful stop; the server logged:\n{}", logs.join("\n"));
}

/// Polls `check` until it holds; fails with `what` (and the server's log) past a deadline that
/// only bounds a failure.
fn wait_for(server: &Server, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "waited in vain for {what}; server log:\n{}", server.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The audit records of `identity` as `(at, actor, action)`.
fn audit_of(w: &World, now: &str, identity: &str) -> Vec<(String, String, String)> {
    let out = ok_at(w, now, &["audit", "export", "--identity", identity, "--format", "jsonl"]);
    out.stdout
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"seq\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["at"].as_str().unwrap_or_default().to_string(),
                v["actor"].as_str().unwrap_or_default().to_string(),
                v["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn leaver_case(w: &World, now: &str, identity: &str) -> Option<serde_json::Value> {
    let cases = ok_at(w, now, &["cases", "--format", "json"]).json();
    cases.as_array().unwrap().iter().find(|c| c["identity"] == identity && c["kind"] == "leaver").cloned()
}

#[test]
fn issue8_an_end_date_passing_while_the_server_runs_deprovisions_and_the_recheck_finds_a_resurrection() {
    let w = world(25);
    // The source's dates are New York's; the scheduler looks for due work every second and
    // re-checks a leaver's targets a day after the case closes.
    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap();
    let config = config.replacen("name = \"hr\"\n", "name = \"hr\"\ntimezone = \"America/New_York\"\n", 1)
        + "\n[schedule]\ntick = \"1s\"\nrecheck_after_days = 1\n";
    assert!(config.contains("timezone = \"America/New_York\""));
    w.env.write("tenure.toml", &config);
    ok_at(&w, DAY_NOON, &["check"]);

    let mut co = super::company(12);
    let kim = co.hire("Engineering");
    {
        let p = co.get_mut(&kim).unwrap();
        p.employment_type = "contractor".into();
        p.kind = "contractor".into();
        p.end = Some(chrono::NaiveDate::parse_from_str(LAST_DAY, "%Y-%m-%d").unwrap());
    }
    let name = w.username(&co, &kim);
    w.env.write("day1.csv", &co.to_csv());
    ok_at(&w, DAY_NOON, &["import", "--source", "hr", "day1.csv"]);
    ok_at(&w, DAY_NOON, &["apply", "--wait"]);
    for t in ok_at(&w, DAY_NOON, &["tasks", "--format", "json"]).json().as_array().unwrap() {
        let id = t["id"].as_i64().unwrap().to_string();
        ok_at(&w, DAY_NOON, &["task", "done", &id, "--evidence", "set up in the payroll UI", "--as", "payroll-admin"]);
    }
    let in_people = || w.ldap("ou=people,dc=example,dc=com", &format!("(uid={name})"), &["dn"]);
    let in_disabled = || w.ldap("ou=disabled,dc=example,dc=com", &format!("(uid={name})"), &["dn"]);
    let can_login = || w.pg(&format!("SELECT rolcanlogin FROM pg_roles WHERE rolname = '{name}'"));
    assert!(in_people().contains(&format!("uid={name}")), "the contractor works until the end of {LAST_DAY}");
    assert_eq!(w.scim_user(&name).unwrap()["active"], true);
    assert_eq!(can_login(), "t");
    let status = ok_at(&w, DAY_NOON, &["identity", "show", &kim, "--format", "json"]).json();
    assert_eq!(status["status"], "active", "{status}");

    // The server starts three seconds before the day ends in New York; nobody runs anything.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = serve(&w, &rt, DAY_END_SOON);
    wait_for(&server, "the contractor disabled in LDAP, SCIM and PostgreSQL", || {
        let user = w.scim_user(&name);
        in_people().trim().is_empty()
            && in_disabled().contains(&format!("uid={name}"))
            && user.is_some_and(|u| u["active"] == false)
            && can_login() == "f"
    });
    wait_for(&server, "the leaver case closed, every operation verified", || {
        leaver_case(&w, AFTER, &kim).is_some_and(|c| c["state"] == "closed")
    });
    stop(server);

    let user = w.scim_user(&name).unwrap();
    assert!(w.scim_groups_of(user["id"].as_str().unwrap()).is_empty(), "no SCIM group left");
    let memberships = w.ldap("ou=groups,dc=example,dc=com", "(objectClass=groupOfNames)", &["member"]);
    assert!(!memberships.contains(&format!("uid={name},")), "no LDAP group left: {memberships}");
    assert_eq!(
        w.pg(&format!(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{name}'"
        )),
        "0"
    );
    // The leaver came from the schedule, after the day ended there, and nobody else acted.
    let audit = audit_of(&w, AFTER, &kim);
    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let leaving: Vec<&(String, String, String)> = audit.iter().filter(|(at, ..)| t(at) >= t(DAY_END_SOON)).collect();
    assert!(
        leaving.iter().any(|(_, actor, action)| actor == "schedule:end_date" && action == "event.leaver"),
        "{leaving:#?}"
    );
    for (at, actor, action) in &leaving {
        assert!(t(at) >= t(DAY_ENDED), "nothing happened before the day ended: {at} {actor} {action}");
        assert!(
            actor.starts_with("schedule:") || actor == "planner" || actor == "executor",
            "only the schedule (its event planned, the plan carried out) acted: {at} {actor} {action}"
        );
    }
    let case = leaver_case(&w, AFTER, &kim).unwrap();
    let closed_at = case["closed_at"].as_str().unwrap().to_string();

    // Someone re-enables the account by hand in PostgreSQL and gives it a role back.
    w.pg(&format!("ALTER ROLE \"{name}\" LOGIN"));
    w.pg(&format!("GRANT analyst TO \"{name}\""));
    assert_eq!(can_login(), "t");

    // A day later the server runs again: the re-check reads every target again.
    // The testkit makes a fresh admin token for each start.
    ok_at(&w, RECHECK_DAY, &["token", "revoke", "testkit-admin"]);
    let server = serve(&w, &rt, RECHECK_DAY);
    wait_for(&server, "the re-check's resurrected findings and the reopened case", || {
        let a = audit_of(&w, RECHECK_DAY, &kim);
        let by = |action: &str| a.iter().any(|(_, actor, act)| actor == "schedule:recheck" && act == action);
        by("finding.resurrected") && by("case.reopened")
    });
    wait_for(&server, "the account disabled again and the case closed again", || {
        can_login() == "f"
            && leaver_case(&w, RECHECK_DAY, &kim)
                .is_some_and(|c| c["state"] == "closed" && c["closed_at"].as_str() != Some(closed_at.as_str()))
    });
    // The API lists them among the latest findings.
    let findings: serde_json::Value = rt.block_on(async {
        let r =
            server.client.get(server.url("/api/v1/findings?limit=500")).bearer_auth(&server.admin_token).send().await;
        r.unwrap().json().await.unwrap()
    });
    let mut back: Vec<String> = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "resurrected" && f["identity"] == kim.as_str())
        .map(|f| format!("{} {}", f["target"].as_str().unwrap(), f["entitlement"].as_str().unwrap_or("-")))
        .collect();
    back.sort();
    assert_eq!(back, ["warehouse -", "warehouse analyst"], "{findings}");
    stop(server);
    assert_eq!(
        w.pg(&format!(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{name}'"
        )),
        "0",
        "the role given back is revoked again"
    );
    let found: Vec<(String, String, String)> = audit_of(&w, RECHECK_DAY, &kim)
        .into_iter()
        .filter(|(_, actor, action)| actor == "schedule:recheck" && action == "finding.resurrected")
        .collect();
    assert_eq!(found.len(), 2, "the login and the role came back: {found:#?}");
    let verified = ok_at(&w, RECHECK_DAY, &["audit", "verify"]);
    assert!(verified.stdout.contains("audit chain verified"), "{}", verified.stdout);
}

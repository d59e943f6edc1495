//! Issue 10, access requests, end to end on the real binary and the real PostgreSQL peer: a
//! request for `warehouse-admin` with `--duration 2s`, approved by the identity's manager, is
//! granted and verified in PostgreSQL (asked with `psql`, not through Tenure); after its expiry
//! `tenure apply` alone revokes it and PostgreSQL shows it gone; the audit tells request,
//! approval, grant, expiry and revoke in order. Self-approval, an over-long duration and a
//! `block` SoD conflict are refused with their reasons and change neither the store nor the
//! audit trail. Time moves with `TENURE_NOW`, never by sleeping. The same request approved
//! while `tenure serve` runs is granted and revoked by its workers alone.

use super::{World, world};
use crate::company;

/// The tests' day, as instants: the setup, the request and its approval, and an hour later.
const SETUP: &str = "2026-11-21T09:00:00Z";
const ASKED: &str = "2026-11-21T10:00:00Z";
/// The grant is applied on a clock a minute before the approval was recorded, so the 2 s are
/// not yet over whatever the machine's load (each process's clock starts where it is told).
const GRANT_APPLIED: &str = "2026-11-21T09:59:00Z";
const LATER: &str = "2026-11-21T11:00:00Z";

/// A requestable role that `payments` (block) conflicts with for Finance, who hold
/// `payroll:create-payment`.
const EXTRA: &str = r#"
[[role]]
id = "payment-approver"
approval = "manager"
grant = ["payroll:approve-payment"]
"#;

fn members(w: &World, user: &str) -> String {
    w.pg(&format!(
        "SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') FROM pg_auth_members m \
         JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{user}'"
    ))
}

/// What a refusal must leave alone: the audit chain's length, the requests, the approvals and
/// the operations, as the CLI prints them.
fn state(w: &World) -> (u64, String, String, String) {
    let audit = w.env.ok(&["audit", "verify", "--format", "json"]).json();
    (
        audit["records"].as_u64().unwrap(),
        w.env.ok(&["requests", "--format", "json"]).stdout,
        w.env.ok(&["approvals", "--all", "--format", "json"]).stdout,
        w.env.ok(&["plan", "--all", "--format", "json"]).stdout,
    )
}

fn refused(w: &World, args: &[&str], code: &str, says: &str) {
    let before = state(w);
    let out = w.env.run_at(ASKED, args);
    assert_eq!(out.code, 1, "{args:?} should be refused: {}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(says), "{args:?}: `{}` should say `{says}`", out.stderr);
    let mut json = args.to_vec();
    json.extend(["--format", "json"]);
    let body = w.env.run_at(ASKED, &json).json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(state(w), before, "{args:?}: a refusal changes nothing");
}

#[test]
fn issue10_a_requested_warehouse_admin_is_granted_then_revoked_at_expiry_in_real_postgres() {
    let w = world(25);
    w.env.write("policy.toml", &format!("{}{EXTRA}", tenure_sample::starter::POLICY));
    let co = company(12);
    // An engineer with an active manager: the warehouse account exists for `analyst` already.
    let engineer = co
        .people
        .iter()
        .find(|p| {
            p.department == "Engineering"
                && p.manager.as_deref().is_some_and(|m| co.get(m).is_some_and(|m| m.status == "active"))
        })
        .expect("an engineer with a manager");
    let (id, user) = (engineer.id.clone(), engineer.username.clone());
    let manager = co.get(engineer.manager.as_deref().unwrap()).unwrap();
    let (boss, boss_name) = (manager.id.clone(), manager.username.clone());
    w.env.write("day1.csv", &co.to_csv());
    let run = |now: &str, args: &[&str]| {
        let out = w.env.run_at(now, args);
        assert_eq!(out.code, 0, "tenure {args:?}\n{}\n{}", out.stdout, out.stderr);
        out
    };
    run(SETUP, &["import", "--source", "hr", "day1.csv"]);
    run(SETUP, &["apply", "--wait"]);
    assert_eq!(members(&w, &user), "analyst", "birthright only");

    // Refusals first: each says why and changes nothing.
    refused(
        &w,
        &["request", "warehouse-admin", "--for", &id, "--reason", "close", "--duration", "9h"],
        "request_refused",
        "longer than role `warehouse-admin` allows",
    );
    let finance =
        co.people.iter().find(|p| p.department == "Finance" && p.title != "Intern" && p.manager.is_some()).unwrap();
    refused(
        &w,
        &["request", "payment-approver", "--for", &finance.id, "--reason", "cover"],
        "sod_conflict",
        "sod rule `payments` blocks",
    );

    // The request, for 2 s, asked by the engineer themselves.
    let r = run(
        ASKED,
        &[
            "request",
            "warehouse-admin",
            "--for",
            &id,
            "--reason",
            "quarter close",
            "--duration",
            "2s",
            "--as",
            &user,
            "--format",
            "json",
        ],
    )
    .json();
    let request = r["id"].as_i64().unwrap().to_string();
    assert_eq!(r["stages"][0]["approver"], boss.as_str(), "the manager from HR");
    assert_eq!(r["via"], "cli --as");
    let approval = r["stages"][0]["approval_id"].as_i64().unwrap().to_string();
    let listed = run(ASKED, &["approvals"]).stdout;
    assert!(listed.contains(&format!("approval {approval} [pending] request {request}")), "{listed}");
    refused(&w, &["approve", &approval, "--as", &user], "self_approval", "cannot approve a request for themselves");
    refused(&w, &["approve", &approval, "--as", "someone-else"], "not_approver", &format!("waits for `{boss}`"));

    // The manager approves (by username): the grant is planned, applied and verified.
    let said = run(ASKED, &["approve", &approval, "--as", &boss_name]).stdout;
    assert!(said.contains(&format!("request {request} granted until")), "{said}");
    run(GRANT_APPLIED, &["apply", "--wait"]);
    assert_eq!(members(&w, &user), "admin,analyst", "granted in PostgreSQL");
    let granted = run(GRANT_APPLIED, &["plan", "--all", "--identity", &id, "--format", "json"]).json();
    let grant =
        granted.as_array().unwrap().iter().find(|o| o["kind"] == "grant" && o["entitlement"] == "admin").unwrap();
    assert_eq!(grant["state"], "verified");

    // An hour later nobody acts but `tenure apply`: the expiry is found, the revoke planned,
    // applied and verified.
    let report = run(LATER, &["apply", "--wait", "--format", "json"]).json();
    assert_eq!(report["expired_requests"], 1, "{report}");
    assert_eq!(members(&w, &user), "analyst", "revoked in PostgreSQL");
    let after = run(LATER, &["requests", "--format", "json"]).json();
    assert_eq!(after[0]["state"], "expired");
    let ops = run(LATER, &["plan", "--all", "--identity", &id, "--format", "json"]).json();
    let revoke = ops.as_array().unwrap().iter().find(|o| o["kind"] == "revoke" && o["entitlement"] == "admin").unwrap();
    assert_eq!(revoke["state"], "verified");
    assert_eq!(revoke["reason"]["rules"][0], format!("request:{request}"));

    // The audit: request, approval, grant, expiry, revoke, in that order, each with the id.
    let export = run(LATER, &["audit", "export", "--identity", &id, "--format", "jsonl"]).stdout;
    let story: Vec<(String, String)> = export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        // A filtered export starts with its header line.
        .filter(|r| r.get("action").is_some())
        .filter(|r| {
            let a = r["action"].as_str().unwrap();
            ["request.created", "approval.approved", "request.granted", "request.expired"].contains(&a)
                || (r["target"] == "warehouse"
                    && r["entitlement"] == "admin"
                    && ["apply.grant", "apply.revoke"].contains(&a))
        })
        .map(|r| (r["action"].as_str().unwrap().to_string(), r["outcome"].as_str().unwrap().to_string()))
        .collect();
    let actions: Vec<&str> = story.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["request.created", "approval.approved", "request.granted", "apply.grant", "request.expired", "apply.revoke"],
        "{export}"
    );
    assert!(story.iter().filter(|(a, _)| a.starts_with("apply.")).all(|(_, o)| o == "verified"), "{story:?}");
    let approved = export.lines().find(|l| l.contains("\"approval.approved\"")).unwrap();
    assert!(approved.contains(&format!("request {request}")) && approved.contains("via cli --as"), "{approved}");
    run(LATER, &["audit", "verify"]);
}

/// The server's workers alone: the executor grants what the approval planned, the scheduler's
/// `grant_expiry` job ends the request at its expiry and the executor revokes it, verified by
/// reading PostgreSQL back. Waits poll for a state with a deadline that only bounds a failure.
#[test]
fn issue10_the_servers_workers_grant_and_revoke_a_requested_role_with_nobody_acting() {
    use std::time::{Duration, Instant};
    let w = world(25);
    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap() + "\n[schedule]\ntick = \"1s\"\n";
    w.env.write("tenure.toml", &config);
    let co = company(12);
    let engineer = co
        .people
        .iter()
        .find(|p| {
            p.department == "Engineering"
                && p.manager.as_deref().is_some_and(|m| co.get(m).is_some_and(|m| m.status == "active"))
        })
        .unwrap();
    let (id, user) = (engineer.id.clone(), engineer.username.clone());
    let boss = engineer.manager.clone().unwrap();
    w.env.write("day1.csv", &co.to_csv());
    let run = |now: &str, args: &[&str]| {
        let out = w.env.run_at(now, args);
        assert_eq!(out.code, 0, "tenure {args:?}\n{}\n{}", out.stdout, out.stderr);
        out
    };
    run(SETUP, &["import", "--source", "hr", "day1.csv"]);
    run(SETUP, &["apply", "--wait"]);
    let r = run(
        ASKED,
        &["request", "warehouse-admin", "--for", &id, "--reason", "on call", "--duration", "2s", "--format", "json"],
    )
    .json();
    let approval = r["stages"][0]["approval_id"].as_i64().unwrap().to_string();
    run(ASKED, &["approve", &approval, "--as", &boss]);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let server = rt
        .block_on(tenure_testkit::server::Server::start_with(&bin, w.env.dir.path(), &config, &[("TENURE_NOW", ASKED)]))
        .expect("tenure serve starts");
    let request = r["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = w.env.run_at(LATER, &["requests", "--format", "json"]).json();
        let ops = w.env.run_at(LATER, &["plan", "--all", "--identity", &id, "--format", "json"]).json();
        let revoked = ops
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "revoke" && o["entitlement"] == "admin" && o["state"] == "verified");
        if state[0]["state"] == "expired" && revoked {
            break;
        }
        assert!(Instant::now() < deadline, "waited in vain for the expiry; server log:\n{}", server.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, logs) = server.terminate().unwrap();
    assert_eq!(code, Some(0), "{}", logs.join("\n"));
    assert_eq!(members(&w, &user), "analyst", "revoked in PostgreSQL");

    // Granted and verified by the executor, ended by the schedule, revoked and verified: nobody
    // acted after the approval.
    let export = run(LATER, &["audit", "export", "--identity", &id, "--format", "jsonl"]).stdout;
    let after: Vec<(String, String, String)> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r.get("action").is_some())
        .skip_while(|r| r["action"] != "request.granted")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("actor"), s("action"), format!("{} {}", s("entitlement"), s("outcome")))
        })
        .collect();
    let admin: Vec<(&str, &str)> = after
        .iter()
        .filter(|(_, a, what)| a.starts_with("request.") || (a.starts_with("apply.") && what.starts_with("admin ")))
        .map(|(actor, a, _)| (actor.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        admin,
        [
            (&*format!("user:{boss}"), "request.granted"),
            ("executor", "apply.grant"),
            ("schedule:grant_expiry", "request.expired"),
            ("executor", "apply.revoke")
        ],
        "{after:#?}"
    );
    assert!(
        after.iter().all(|(actor, ..)| actor == &format!("user:{boss}")
            || ["executor", "planner"].contains(&actor.as_str())
            || actor.starts_with("schedule:")),
        "{after:#?}"
    );
    assert!(export.contains(&format!("request {request}")));
}

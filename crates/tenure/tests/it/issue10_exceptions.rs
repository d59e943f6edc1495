//! Issue 10, deliverable 4, through the real binary: each kind of exception is recorded where it
//! happens (a revocation that fails past its retries, an overdue ticket recorded as
//! `schedule:overdue` by the overdue job, a leaver's case closing with access left
//! behind), and `tenure exception resolve|accept` is audited with who, while every refusal
//! changes nothing.

use crate::Env;
use crate::hardening::{HEADER, row};
use std::process::Command;

/// A directory nobody listens on (one attempt per operation) and the starter's manual payroll.
fn setup(env: &Env) {
    let port = tenure_testkit::peers::free_port().unwrap();
    env.write("ldap.pw", "secret\n");
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let start = config.find("[[target]]").unwrap();
    let payroll = config.find("[[target]]\nname = \"payroll\"").unwrap();
    let config = format!(
        "{}[[target]]\nname = \"directory\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{port}\"\n\
         bind_dn = \"cn=admin,dc=example,dc=com\"\npassword_file = \"{}\"\nusers_dn = \"ou=people,dc=example,dc=com\"\n\
         groups_dn = \"ou=groups,dc=example,dc=com\"\ndisabled_dn = \"ou=disabled,dc=example,dc=com\"\nmax_attempts = 1\n\n{}",
        &config[..start],
        env.path("ldap.pw").display(),
        &config[payroll..]
    );
    env.write("tenure.toml", &config);
    env.write(
        "policy.toml",
        "[[role]]\nid = \"staff\"\nwhen = { status = \"active\" }\ngrant = [\"directory:staff\", \"payroll:employee-record\"]\n",
    );
    env.ok(&["check"]);
}

fn exceptions(env: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["exceptions", "--format", "json"];
    all.extend_from_slice(args);
    env.ok(&all).json().as_array().unwrap().clone()
}

fn audit(env: &Env) -> Vec<String> {
    env.ok(&["audit", "export", "--format", "jsonl"]).stdout.lines().map(str::to_string).collect()
}

#[test]
fn issue10_exceptions_are_recorded_where_they_happen_and_closed_with_who_and_why() {
    let env = Env::new();
    setup(&env);
    env.write("a.csv", &format!("{HEADER}\n{}\n{}\n", row("E1", "ada", "Engineering"), row("E2", "bob", "Sales")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    env.settle_in_db();
    env.write("b.csv", &format!("{HEADER}\n{}\n", row("E2", "bob", "Sales")));
    // One of two leaves: past the guard's fraction, so approved first.
    env.expect(1, &["import", "--source", "hr", "b.csv"]);
    env.ok(&["approve", "1", "--as", "hr-lead"]);
    env.expect(1, &["apply", "--wait"]);

    // The directory's removals failed past their one attempt: failed revocations, owned by the
    // target, naming the leaver.
    let open = exceptions(&env, &[]);
    let failed: Vec<&serde_json::Value> = open.iter().filter(|e| e["kind"] == "failed_revocation").collect();
    assert!(!failed.is_empty(), "{open:#?}");
    for e in &failed {
        assert_eq!((e["identity"].as_str(), e["target"].as_str()), (Some("E1"), Some("directory")), "{e}");
        assert_eq!(e["state"], "open");
        assert!(e["age_seconds"].as_i64().unwrap() >= 0 && e["due_at"].is_null(), "{e}");
    }
    assert!(open.iter().all(|e| e["kind"] != "overdue_ticket"), "no ticket is overdue yet");
    let text = env.ok(&["exceptions"]).stdout;
    assert!(text.contains("failed_revocation") && text.contains("AGE"), "{text}");

    // Two days later the payroll tickets are overdue; the overdue job records them, and says
    // so in the audit trail (a listing only reads).
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let job = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["schedule", "run-once", "--job", "overdue"])
        .current_dir(env.path(""))
        .env("TENURE_NOW", &later)
        .env_remove("TENURE_CONFIG")
        .output()
        .unwrap();
    assert!(job.status.success(), "{}", String::from_utf8_lossy(&job.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["exceptions", "--format", "json"])
        .current_dir(env.path(""))
        .env("TENURE_NOW", &later)
        .env_remove("TENURE_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let overdue: Vec<&serde_json::Value> =
        listed.as_array().unwrap().iter().filter(|e| e["kind"] == "overdue_ticket").collect();
    assert_eq!(overdue.len(), 3, "E1's three payroll removals: {listed:#}");
    for e in &overdue {
        assert_eq!((e["owner"].as_str(), e["identity"].as_str()), (Some("payroll-admins"), Some("E1")), "{e}");
        assert_eq!(e["overdue"], true, "due when the ticket was: {e}");
    }
    let trail = audit(&env);
    let opened: Vec<&String> = trail.iter().filter(|l| l.contains("\"action\":\"exception.opened\"")).collect();
    assert!(opened.iter().any(|l| l.contains("\"actor\":\"schedule:overdue\"")), "{opened:#?}");
    assert!(!opened.iter().any(|l| l.contains("\"actor\":\"executor\"") && l.contains("overdue")), "{opened:#?}");

    // Refusals change nothing: an unknown id, no reason, a due date in the past or on a
    // resolve, a date that is not one.
    let first = failed[0]["id"].as_i64().unwrap().to_string();
    let before = audit(&env).len();
    let out = env.expect(1, &["exception", "resolve", "9999", "--reason", "x"]);
    assert!(out.stderr.contains("exception 9999"), "{}", out.stderr);
    for (args, says) in [
        (vec!["exception", "accept", &first, "--reason", " "], "a reason is required"),
        (vec!["exception", "accept", &first, "--reason", "x", "--due", "2001-01-01"], "is not in the future"),
        (vec!["exception", "accept", &first, "--reason", "x", "--due", "next week"], "is not a date"),
    ] {
        let out = env.run(&args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    assert_eq!(audit(&env).len(), before, "refusals audit nothing");
    assert!(
        exceptions(&env, &[]).iter().any(|e| e["id"].as_i64() == first.parse::<i64>().ok() && e["state"] == "open")
    );

    // Accepting the failed revocations excepts them; once the payroll team has done its
    // tickets, the leaver's case closes with the directory access left: a partial removal owned
    // by who accepted, due when they said.
    for e in &failed {
        let id = e["id"].to_string();
        let out = env.ok(&[
            "exception",
            "accept",
            &id,
            "--reason",
            "directory decommissioned on Friday",
            "--due",
            "2099-01-31",
            "--as",
            "risk-lead",
        ]);
        assert!(out.stdout.contains("accepted by risk-lead"), "{}", out.stdout);
    }
    let out = env.expect(1, &["exception", "resolve", &first, "--reason", "again"]);
    assert!(out.stderr.contains(&format!("exception {first} is already accepted")), "{}", out.stderr);
    for t in env.ok(&["tasks", "--format", "json"]).json().as_array().unwrap() {
        env.ok(&["task", "done", &t["id"].to_string(), "--evidence", "done in the payroll UI"]);
    }
    let open = exceptions(&env, &[]);
    let partial: Vec<&serde_json::Value> = open.iter().filter(|e| e["kind"] == "partial_removal").collect();
    assert_eq!(partial.len(), 1, "{open:#?}");
    let p = partial[0];
    assert_eq!((p["identity"].as_str(), p["owner"].as_str()), (Some("E1"), Some("risk-lead")), "{p}");
    assert!(p["due_at"].as_str().unwrap().starts_with("2099-01-31"), "{p}");
    assert!(p["reason"].as_str().unwrap().contains("access left in place"), "{p}");
    let cases = env.ok(&["cases", "--format", "json"]).json();
    assert!(
        cases
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["identity"] == "E1" && c["kind"] == "leaver")
            .all(|c| c["state"] == "closed"),
        "{cases:#}"
    );

    let pid = p["id"].to_string();
    let out = env.ok(&["exception", "resolve", &pid, "--reason", "entry deleted by hand", "--format", "json"]).json();
    assert_eq!((out["state"].as_str(), out["closed_by"].as_str()), (Some("resolved"), Some("test-admin")), "{out}");
    let all = exceptions(&env, &["--all"]);
    assert!(
        all.iter().any(|e| e["id"].as_i64() == pid.parse::<i64>().ok() && e["close_reason"] == "entry deleted by hand"),
        "{all:#?}"
    );
    let trail = audit(&env);
    assert!(
        trail
            .iter()
            .any(|l| l.contains("\"action\":\"exception.accepted\"") && l.contains("\"actor\":\"user:risk-lead\""))
    );
    assert!(
        trail
            .iter()
            .any(|l| l.contains("\"action\":\"exception.resolved\"") && l.contains("\"actor\":\"user:test-admin\""))
    );
    env.ok(&["audit", "verify"]);
}

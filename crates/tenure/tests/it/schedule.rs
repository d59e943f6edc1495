//! `tenure schedule run-once` (issue 8): what is due runs once, audited as `schedule:NAME`; an
//! unknown job is a usage error; another process holding the scheduler lease is refused.

use crate::Env;

const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";

#[test]
fn issue8_run_once_makes_a_passed_end_date_a_leaver_once_audited_as_the_schedule() {
    let env = Env::new();
    let csv = format!(
        "{HEADER}\nE1,Ada,L,ada@example.com,ada,Engineering,Engineer,Berlin,CC1,,employee,employee,,2020-01-01,,active\nK1,Kim,L,kim@example.com,kim,Engineering,Engineer,Berlin,CC1,,contractor,contractor,,2020-01-01,2026-11-30,active\n"
    );
    env.write("hr.csv", &csv);
    let day = "2026-11-30T12:00:00Z";
    assert_eq!(env.run_on_clock(day, &["import", "--source", "hr", "hr.csv"]).code, 0);

    let bad = env.run_on_clock(day, &["schedule", "run-once", "--job", "end-date"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown job `end-date`; expected one of: start_date, end_date,"), "{}", bad.stderr);

    let job = |now: &str| {
        let out = env.run_on_clock(now, &["schedule", "run-once", "--job", "end_date", "--format", "json"]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        let v = out.json();
        assert_eq!(v["held_by"], serde_json::Value::Null);
        let j = &v["jobs"][0];
        (
            j["job"].as_str().unwrap().to_string(),
            j["acted"].as_u64().unwrap(),
            j["detail"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(job(day), ("end_date".into(), 0, "nothing due".into()), "the end date is the last working day");
    // One leaver of two people is past the starter's guard: the push is held, like a snapshot.
    let (_, acted, detail) = job("2026-12-01T00:00:00Z");
    assert_eq!(acted, 1, "{detail}");
    assert!(detail.starts_with("hr: leaver `K1`") && detail.contains("held for approval"), "{detail}");
    assert_eq!(job("2026-12-01T00:01:00Z"), ("end_date".into(), 0, "nothing due".into()), "held: not pushed again");
    let approvals = env.run_on_clock("2026-12-01T00:01:30Z", &["approvals", "--format", "json"]).json();
    let id = approvals[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(env.run_on_clock("2026-12-01T00:01:40Z", &["approve", &id, "--as", "alice"]).code, 0);
    let show = env.run_on_clock("2026-12-01T00:01:50Z", &["identity", "show", "K1", "--format", "json"]).json();
    assert_eq!(show["status"], "terminated");
    assert_eq!(job("2026-12-01T00:02:00Z").1, 0, "once");

    let audit = env.run_on_clock("2026-12-01T00:02:10Z", &["audit", "export", "--format", "jsonl"]);
    let records: Vec<serde_json::Value> =
        audit.stdout.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).collect();
    let by = |actor: &str| -> Vec<String> {
        records
            .iter()
            .filter(|v| v["actor"] == actor)
            .map(|v| v["action"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let scheduled = by("schedule:end_date");
    assert!(scheduled.iter().any(|a| a == "schedule.run"), "{scheduled:?}");
    assert!(scheduled.iter().any(|a| a.starts_with("import.")), "the held push is the schedule's: {scheduled:?}");
    // The approver released it: the leaver's event is recorded as theirs.
    let leaver: Vec<&serde_json::Value> =
        records.iter().filter(|v| v["action"] == "event.leaver" && v["identity"] == "K1").collect();
    assert_eq!(leaver.iter().map(|v| v["actor"].as_str().unwrap()).collect::<Vec<_>>(), ["user:alice"]);

    // A whole pass: the jobs that are due, the executor last (the starter's targets are not
    // running here, so what it attempts is retried later), each named in the table.
    let pass = env.run_on_clock("2026-12-01T00:03:00Z", &["schedule", "run-once"]);
    for job in ["start_date", "grant_expiry", "recheck", "overdue", "retention", "reconcile", "checkpoint", "apply"] {
        assert!(pass.stdout.contains(job), "{job} ran:\n{}\n{}", pass.stdout, pass.stderr);
    }
    assert_eq!(pass.code, 1, "reconciliation could not read the targets: a failed job\n{}", pass.stdout);

    // Another process holds the scheduler lease: refused, nothing run.
    let db = rusqlite::Connection::open(env.db()).unwrap();
    db.execute(
        "INSERT INTO schedule_lease (name, owner, until, since) VALUES ('scheduler', 'other:1:ff', '2099-01-01T00:00:00.000000Z', '2026-12-01T00:00:00.000000Z')
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until",
        [],
    )
    .unwrap();
    let held = env.run_on_clock("2026-12-01T00:04:00Z", &["schedule", "run-once"]);
    assert_ne!(held.code, 0);
    assert!(held.stderr.contains("holds the scheduler lease: other:1:ff"), "{}", held.stderr);
}

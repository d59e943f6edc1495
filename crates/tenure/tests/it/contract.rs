//! Issue 7: the JSON shapes scripts and API clients read are a contract. The field names of
//! every list and report `--format json` prints are pinned here, end to end; the exact bytes
//! of each wire type are pinned in `tenure-proto`'s unit tests. And the clock the binary runs
//! on is the one `TENURE_NOW` describes.

use crate::{Env, Out};

/// The object's field names, sorted.
fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn check(what: &str, v: &serde_json::Value, expect: &[&str]) {
    assert_eq!(keys(v), expect, "{what}: {v:#}");
}

/// The first element of a JSON list, which must not be empty.
fn first<'a>(what: &str, v: &'a serde_json::Value) -> &'a serde_json::Value {
    v.as_array().and_then(|a| a.first()).unwrap_or_else(|| panic!("{what}: empty list: {v}"))
}

const OPERATION: &[&str] = &[
    "account",
    "attempts",
    "case_id",
    "created_at",
    "entitlement",
    "id",
    "idem_key",
    "identity",
    "kind",
    "last_error",
    "next_attempt_at",
    "note",
    "reason",
    "state",
    "target",
    "updated_at",
    "verified_at",
];

#[test]
fn issue7_the_json_field_names_of_every_list_and_report_are_pinned() {
    let env = Env::new();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    // The starter's automated targets have no secrets here: their operations fail (exceptions);
    // payroll is manual (tickets).
    let apply = env.expect(1, &["apply", "--format", "json"]).json();
    check("apply", &apply, &["expired_requests", "open_tickets", "report", "retried"]);
    check(
        "apply.report",
        &apply["report"],
        &["attempts", "failed", "remaining", "retries", "tickets", "unusable", "verified"],
    );

    let plan = env.ok(&["plan", "--all", "--format", "json"]).json();
    check("plan", first("plan", &plan), OPERATION);
    check("plan.reason", &first("plan", &plan)["reason"], &["event", "kind", "rules"]);

    let cases = env.ok(&["cases", "--format", "json"]).json();
    check(
        "cases",
        first("cases", &cases),
        &["closed_at", "event_id", "id", "identity", "kind", "opened_at", "ops", "revoke_ms", "state"],
    );
    for state in keys(&first("cases", &cases)["ops"]) {
        assert!(state.parse::<tenure_core::OpState>().is_ok(), "case ops are counted by state: {state}");
    }

    let tasks = env.ok(&["tasks", "--format", "json"]).json();
    check(
        "tasks",
        first("tasks", &tasks),
        &[
            "created_at",
            "done_at",
            "done_by",
            "due_at",
            "evidence",
            "id",
            "identity",
            "operation_id",
            "overdue",
            "owner",
            "state",
            "summary",
            "target",
        ],
    );
    let exceptions = env.ok(&["exceptions", "--format", "json"]).json();
    check(
        "exceptions",
        first("exceptions", &exceptions),
        &[
            "age_seconds",
            "case_id",
            "close_reason",
            "closed_by",
            "created_at",
            "due_at",
            "id",
            "identity",
            "kind",
            "overdue",
            "owner",
            "reason",
            "resolved_at",
            "state",
            "subject",
            "target",
        ],
    );

    let list = env.ok(&["identity", "list", "--format", "json"]).json();
    check("identity list", first("identity list", &list), &["attributes", "id", "kind", "status"]);
    let id = first("identity list", &list)["id"].as_str().unwrap().to_string();
    let shown = env.ok(&["identity", "show", &id, "--format", "json"]).json();
    check(
        "identity show",
        &shown,
        &["accounts", "attributes", "events", "id", "kind", "operations", "status", "timeline"],
    );
    let payroll = &shown["accounts"]["payroll"];
    check("identity show.accounts.*", payroll, &["open_operations", "planned", "verified"]);
    check("identity show.accounts.*.planned", &payroll["planned"], &["enabled", "exists", "grants"]);
    check("identity show.accounts.*.verified", &payroll["verified"], &["enabled", "exists", "grants"]);
    check("identity show.operations", first("operations", &shown["operations"]), OPERATION);
    check(
        "identity show.events",
        first("events", &shown["events"]),
        &["changes", "id", "identity", "import_id", "kind", "note", "received_at", "significant", "source", "state"],
    );
    check(
        "identity show.timeline",
        first("timeline", &shown["timeline"]),
        &[
            "action",
            "actor",
            "approver",
            "at",
            "entitlement",
            "hash",
            "identity",
            "outcome",
            "prev_hash",
            "reason",
            "seq",
            "target",
        ],
    );

    // Most of the company leaves at once: the batch is held for approval.
    let hr = std::fs::read_to_string(env.path("hr.csv")).unwrap();
    let kept: Vec<&str> = hr.lines().take(4).collect();
    env.write("few.csv", &format!("{}\n", kept.join("\n")));
    env.expect(1, &["import", "--source", "hr", "few.csv"]);
    let approvals = env.ok(&["approvals", "--format", "json"]).json();
    let held = first("approvals", &approvals);
    check(
        "approvals",
        held,
        &["created_at", "decided_at", "decided_by", "decision_reason", "id", "kind", "state", "subject", "summary"],
    );
    check("approvals.summary (batch)", &held["summary"], &["counts", "file", "reason", "source", "submitted_by"]);
    env.ok(&["approve", &held["id"].to_string()]);

    let coverage = env.expect(1, &["cases", "--coverage", "--format", "json"]).json();
    check("coverage", &coverage, &["classes", "leaver_cases", "open_leaver_cases", "time_to_revoke_ms"]);
    check(
        "coverage.classes",
        first("classes", &coverage["classes"]),
        &["class", "coverage", "excepted", "failed", "open", "operations", "verified"],
    );
    check("coverage.time_to_revoke_ms", &coverage["time_to_revoke_ms"], &["closed", "max", "p50", "p99"]);

    let checked = env.ok(&["check", "--format", "json"]).json();
    check("check", &checked, &["ok", "online", "problems", "summary", "unchecked_targets"]);
    check("check.summary", &checked["summary"], &["entitlements", "roles", "sod_rules", "sources", "targets"]);
}

/// Runs the binary with the given clock variables and no others.
fn run_at(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Out {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .current_dir(env.dir.path())
        .env_remove("TENURE_TODAY")
        .env_remove("TENURE_NOW")
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL")
        .env("TENURE_USER", "test-admin")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn issue7_tenure_now_sets_the_clock_dates_and_timestamps_follow() {
    let env = Env::new();
    let header = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";
    // A contractor whose contract ends on 2026-12-31, among enough staff that one leaver stays
    // under the guard.
    let staff: Vec<String> = (1..=30)
        .map(|i| format!("E{i},Ada,Ng,a{i}@x.com,a{i},Sales,Lead,Berlin,CC1,,employee,,,2020-01-01,,active"))
        .collect();
    env.write(
        "c.csv",
        &format!(
            "{header}\nK1,Kim,Lee,kim@x.com,klee,Sales,Rep,Berlin,CC1,,contractor,,,2026-01-05,2026-12-31,active\n{}\n",
            staff.join("\n")
        ),
    );
    let before = [("TENURE_NOW", "2026-12-31T23:59:50Z")];
    let out = run_at(&env, &before, &["import", "--source", "hr", "c.csv", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["counts"]["joiners"], 31);
    let shown = run_at(&env, &before, &["identity", "show", "K1", "--format", "json"]).json();
    assert_eq!(shown["status"], "active", "the contract runs to the end of its last day");
    let at = shown["timeline"][0]["at"].as_str().unwrap().to_string();
    assert!(at.starts_with("2026-12-31T23:59:5"), "the store's timestamps come from TENURE_NOW: {at}");

    // The same snapshot a few seconds later, past midnight: the contractor's end date passed.
    let after = [("TENURE_NOW", "2027-01-01T00:00:05Z")];
    let out = run_at(&env, &after, &["import", "--source", "hr", "c.csv", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!((report["counts"]["leavers"].as_u64(), report["events"][0]["identity"].as_str()), (Some(1), Some("K1")));
    let shown = run_at(&env, &after, &["identity", "show", "K1", "--format", "json"]).json();
    assert_eq!(shown["status"], "terminated");
    let cases = run_at(&env, &after, &["cases", "--format", "json"]).json();
    let leaver = cases.as_array().unwrap().iter().find(|c| c["kind"] == "leaver").unwrap();
    assert!(leaver["opened_at"].as_str().unwrap().starts_with("2027-01-01T00:00:0"), "{leaver}");
    // TENURE_TODAY still pins the date alone; a malformed clock is a usage error.
    let pinned = run_at(&env, &[("TENURE_TODAY", "2026-06-01")], &["identity", "show", "K1", "--format", "json"]);
    assert_eq!(pinned.code, 0, "{}", pinned.stderr);
    let bad = run_at(&env, &[("TENURE_NOW", "tomorrow")], &["plan", "--format", "json"]);
    assert_eq!((bad.code, bad.json()["code"].as_str()), (2, Some("usage")), "{}", bad.stdout);
}

/// Issue 9: a CSV import derives leavers from the dates with today in the source's timezone, at
/// the instant `TENURE_NOW` says; `TENURE_TODAY` still pins the date in every zone.
#[test]
fn issue9_a_csv_import_reads_its_dates_in_the_sources_timezone() {
    let header = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";
    let staff: Vec<String> = (1..=30)
        .map(|i| format!("E{i},Ada,Ng,a{i}@x.com,a{i},Sales,Lead,Berlin,CC1,,employee,,,2020-01-01,,active"))
        .collect();
    // A contractor whose last day is 2026-11-30, among enough staff that one leaver stays under
    // the guard, in a source kept in `timezone`.
    let env_in = |timezone: &str| {
        let env = Env::new();
        let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
        let zoned = config.replacen("name = \"hr\"\n", &format!("name = \"hr\"\ntimezone = \"{timezone}\"\n"), 1);
        assert_ne!(zoned, config, "the starter names its source `hr`");
        env.write("tenure.toml", &zoned);
        env.write(
            "c.csv",
            &format!(
                "{header}\nK1,Kim,Lee,kim@x.com,klee,Sales,Rep,Berlin,CC1,,contractor,,,2026-01-05,2026-11-30,active\n{}\n",
                staff.join("\n")
            ),
        );
        env
    };
    let import = |env: &Env, vars: &[(&str, &str)]| {
        let out = run_at(env, vars, &["import", "--source", "hr", "c.csv", "--format", "json"]);
        assert_eq!(out.code, 0, "{vars:?}\n{}{}", out.stdout, out.stderr);
        let status = run_at(env, vars, &["identity", "show", "K1", "--format", "json"]).json()["status"].clone();
        (out.json()["counts"]["leavers"].as_u64().unwrap(), status.as_str().unwrap().to_string())
    };

    // 02:00 UTC on Dec 1 is 18:00 on Nov 30 in Los Angeles: the last day is not over there.
    let la = env_in("America/Los_Angeles");
    assert_eq!(import(&la, &[("TENURE_NOW", "2026-12-01T02:00:00Z")]), (0, "active".into()));
    // At 08:30 UTC it is 00:30 on Dec 1 there.
    assert_eq!(import(&la, &[("TENURE_NOW", "2026-12-01T08:30:00Z")]), (1, "terminated".into()));

    // 16:00 UTC on Nov 30 is already Dec 1 in Tokyo; a pinned TENURE_TODAY is the date there too.
    let tokyo = env_in("Asia/Tokyo");
    let pinned = [("TENURE_NOW", "2026-11-30T16:00:00Z"), ("TENURE_TODAY", "2026-11-30")];
    assert_eq!(import(&tokyo, &pinned), (0, "active".into()));
    assert_eq!(import(&tokyo, &[("TENURE_NOW", "2026-11-30T16:00:00Z")]), (1, "terminated".into()));
}

#[test]
fn issue7_tenure_now_drives_retention() {
    use crate::hardening::{HEADER, manual_only, row};
    let env = Env::new();
    manual_only(&env);
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let config = config.replacen("name = \"payroll\"\n", "name = \"payroll\"\ndelete_after_days = 30\n", 1);
    env.write("tenure.toml", &config);
    let rows: Vec<String> = (1..=40).map(|i| row(&format!("E{i}"), &format!("u{i}"), "Sales")).collect();
    env.write("a.csv", &format!("{HEADER}\n{}\n", rows.join("\n")));
    env.write("b.csv", &format!("{HEADER}\n{}\n", rows[..39].join("\n")));
    // Each step runs at its own instant; every ticket is worked the moment it opens.
    let step = |now: &str, args: &[&str]| {
        let out = run_at(&env, &[("TENURE_NOW", now)], args);
        assert_eq!(out.code, 0, "tenure {args:?} at {now}\n{}{}", out.stdout, out.stderr);
        out
    };
    let work_tickets = |now: &str| {
        step(now, &["apply"]);
        for t in step(now, &["tasks", "--format", "json"]).json().as_array().unwrap() {
            step(now, &["task", "done", &t["id"].to_string(), "--evidence", "done in the payroll UI"]);
        }
    };
    step("2026-11-01T09:00:00Z", &["import", "--source", "hr", "a.csv"]);
    work_tickets("2026-11-01T09:00:00Z");
    // E40 leaves on 2026-11-02; the disable ticket is worked the same day and the case closes.
    step("2026-11-02T09:00:00Z", &["import", "--source", "hr", "b.csv"]);
    work_tickets("2026-11-02T09:00:00Z");
    let cases = step("2026-11-02T09:00:00Z", &["cases", "--format", "json"]).json();
    let leaver = cases.as_array().unwrap().iter().find(|c| c["kind"] == "leaver").unwrap().clone();
    assert_eq!(leaver["state"], "closed", "{leaver}");
    let deletes = |now: &str| -> Vec<String> {
        step(now, &["plan", "--all", "--identity", "E40", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "delete_account")
            .map(|o| o["target"].as_str().unwrap().to_string())
            .collect()
    };
    // Twenty-nine days later the retention period has not passed: apply plans no deletion.
    step("2026-12-01T09:00:00Z", &["apply"]);
    assert_eq!(deletes("2026-12-01T09:00:00Z"), Vec::<String>::new());
    // Thirty-one days later it has: apply plans the deletion (a ticket, payroll being manual).
    step("2026-12-03T09:00:00Z", &["apply"]);
    assert_eq!(deletes("2026-12-03T09:00:00Z"), ["payroll"]);
    let tasks = step("2026-12-03T09:00:00Z", &["tasks", "--format", "json"]).json();
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["identity"] == "E40" && t["summary"].as_str().unwrap().starts_with("delete_account")),
        "{tasks}"
    );
}

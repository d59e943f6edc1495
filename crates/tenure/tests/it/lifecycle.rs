//! Joiner, mover, leaver and rehire through three snapshots; the guard holding a truncated file.

use crate::{Env, TODAY, company};
use chrono::NaiveDate;
use tenure_testkit::company::{Company, Options};

fn ops_since(env: &Env, baseline: usize, identity: &str) -> Vec<String> {
    env.pending_after(baseline as u64, identity)
}

fn max_op_id(env: &Env) -> usize {
    let ops = env.ok(&["plan", "--all", "--format", "json"]).json();
    ops.as_array().unwrap().iter().map(|o| o["id"].as_u64().unwrap() as usize).max().unwrap_or(0)
}

#[test]
fn three_snapshots_plan_joiners_movers_leavers_and_rehires() {
    let env = Env::new();
    let mut co = company(30);
    // An engineer who will move to Sales, and a person who will leave and come back.
    let mover = co.hire("Engineering");
    let leaver = co.hire("Engineering");

    // Day 1: everyone is a joiner with birthright access.
    env.write("day1.csv", &co.to_csv());
    let day1 = env.ok(&["import", "--source", "hr", "day1.csv", "--format", "json"]).json();
    assert_eq!(day1["counts"]["joiners"], 32);
    assert_eq!(
        env.pending(&mover),
        [
            "chat create_account",
            "chat grant engineering",
            "chat grant everyone",
            "directory create_account",
            "directory grant engineers",
            "directory grant staff",
            "payroll create_account",
            "payroll grant employee-record",
            "warehouse create_account",
            "warehouse grant analyst",
        ]
    );
    // Re-importing the same file changes nothing.
    let again = env.ok(&["import", "--source", "hr", "day1.csv", "--format", "json"]).json();
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["counts"]["operations"], 0);
    env.settle_in_db();

    // Day 2: a department change and a removed row.
    let base = max_op_id(&env);
    co.transfer(&mover, "Sales");
    co.remove(&leaver);
    env.write("day2.csv", &co.to_csv());
    let day2 = env.ok(&["import", "--source", "hr", "day2.csv", "--format", "json"]).json();
    assert_eq!(day2["counts"]["movers"], 1);
    assert_eq!(day2["counts"]["significant_movers"], 1);
    assert_eq!(day2["counts"]["leavers"], 1);
    assert_eq!(
        ops_since(&env, base, &mover),
        [
            "chat grant sales",
            "chat revoke engineering",
            "directory grant sales",
            "directory revoke engineers",
            "warehouse disable",
            "warehouse revoke analyst",
            "warehouse revoke_sessions",
        ]
    );
    assert_eq!(
        ops_since(&env, base, &leaver),
        [
            "chat disable",
            "chat revoke engineering",
            "chat revoke everyone",
            "directory disable",
            "directory revoke engineers",
            "directory revoke staff",
            "payroll disable",
            "payroll revoke employee-record",
            "payroll revoke_sessions",
            "warehouse disable",
            "warehouse revoke analyst",
            "warehouse revoke_sessions",
        ]
    );
    let shown = env.ok(&["identity", "show", &leaver, "--format", "json"]).json();
    assert_eq!(shown["status"], "terminated");
    env.settle_in_db();

    // Day 3: the leaver is rehired (into Sales): accounts are enabled with birthright access only.
    let base = max_op_id(&env);
    let mut person = co.get(&mover).unwrap().clone();
    person.id = leaver.clone();
    person.username = format!("{}-rehired", person.username);
    co.people.push(person);
    env.write("day3.csv", &co.to_csv());
    let day3 = env.ok(&["import", "--source", "hr", "day3.csv", "--format", "json"]).json();
    assert_eq!(day3["counts"]["rehires"], 1);
    // The rehired row carries another name, title and email: the accounts keep their recorded
    // names and get their mapped attributes updated where the targets keep any.
    assert_eq!(
        ops_since(&env, base, &leaver),
        [
            "chat enable",
            "chat grant everyone",
            "chat grant sales",
            "chat update_attributes",
            "directory enable",
            "directory grant sales",
            "directory grant staff",
            "directory update_attributes",
            "payroll enable",
            "payroll grant employee-record",
        ]
    );
    env.ok(&["audit", "verify"]);
}

#[test]
fn a_truncated_snapshot_is_held_until_approved() {
    let env = Env::new();
    let co = company(60);
    env.write("full.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "full.csv"]);
    env.settle_in_db();
    let before = env.pending_count();

    // A file cut off half way: 30 leavers, far beyond the guard.
    let text = co.to_csv();
    let truncated: String = text.split_inclusive("\r\n").take(31).collect();
    env.write("truncated.csv", &truncated);
    let out = env.expect(1, &["import", "--source", "hr", "truncated.csv"]);
    assert!(out.stdout.contains("HELD"), "{}", out.stdout);
    assert_eq!(env.pending_count(), before, "a held batch must plan nothing");
    let someone = &co.people[45].id;
    let shown = env.ok(&["identity", "show", someone, "--format", "json"]).json();
    assert_eq!(shown["status"], "active", "a held batch must change no identity");

    let approvals = env.ok(&["approvals", "--format", "json"]).json();
    let list = approvals.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "pending");
    let id = list[0]["id"].as_i64().unwrap().to_string();

    let out = env.ok(&["approve", &id, "--as", "ciso"]);
    assert!(out.stdout.contains("approved by ciso"), "{}", out.stdout);
    assert!(env.pending_count() > before, "approval applies the batch");
    let shown = env.ok(&["identity", "show", someone, "--format", "json"]).json();
    assert_eq!(shown["status"], "terminated");
    let audit = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(
        audit.lines().any(|l| l.contains("\"approval.approved\"") && l.contains("\"approver\":\"ciso\"")),
        "the approval and its approver are audited"
    );
    assert!(env.ok(&["approvals", "--format", "json"]).json().as_array().unwrap().is_empty());
    env.ok(&["audit", "verify"]);
}

#[test]
fn a_rejected_batch_changes_nothing_and_records_why() {
    let env = Env::new();
    let co = company(40);
    env.write("full.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "full.csv"]);
    let before = env.pending_count();
    let truncated: String = co.to_csv().split_inclusive("\r\n").take(11).collect();
    env.write("truncated.csv", &truncated);
    env.expect(1, &["import", "--source", "hr", "truncated.csv"]);
    let id = env.ok(&["approvals", "--format", "json"]).json()[0]["id"].as_i64().unwrap().to_string();
    env.ok(&["reject", &id, "--reason", "truncated export from Workday"]);
    assert_eq!(env.pending_count(), before);
    env.expect(1, &["approve", &id]);
    let audit = env.ok(&["audit", "export", "--format", "csv"]).stdout;
    assert!(audit.contains("approval.rejected") && audit.contains("truncated export from Workday"));
}

/// Issue 7: the engine decides that a newer snapshot supersedes the source's held batch (the
/// store only writes it): the held approval can no longer be approved, and the newer one stands.
#[test]
fn issue7_a_newer_snapshot_supersedes_the_held_batch() {
    let env = Env::new();
    let co = company(40);
    env.write("full.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "full.csv"]);
    let truncated: String = co.to_csv().split_inclusive("\r\n").take(11).collect();
    env.write("truncated.csv", &truncated);
    env.expect(1, &["import", "--source", "hr", "truncated.csv"]);
    let held = env.ok(&["approvals", "--format", "json"]).json()[0]["id"].as_i64().unwrap();
    env.ok(&["import", "--source", "hr", "full.csv"]);
    let all = env.ok(&["approvals", "--all", "--format", "json"]).json();
    let approval = all.as_array().unwrap().iter().find(|a| a["id"] == held).unwrap();
    assert_eq!((approval["kind"].as_str(), approval["state"].as_str()), (Some("batch"), Some("superseded")));
    assert!(env.ok(&["approvals", "--format", "json"]).json().as_array().unwrap().is_empty(), "nothing pending");
    let out = env.expect(1, &["approve", &held.to_string()]);
    assert!(out.stderr.contains("not pending"), "{}", out.stderr);
    let audit = env.ok(&["audit", "export", "--format", "csv"]).stdout;
    assert!(audit.contains("approval.superseded"), "audited");
    env.ok(&["audit", "verify"]);
}

/// Issue 6 review H2, now that the store offers attempted work (issue 7): a joiner's directory
/// operations failed after their retries, so they may have landed. The person leaves: the failed
/// operations are cancelled (no `--retry-failed` can bring them back), their failure exceptions
/// resolved, and what they may have done is undone.
#[test]
fn issue7_a_leavers_failed_joiner_work_is_cancelled_and_undone() {
    let env = Env::new();
    let mut co = company(40);
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    let leaver = co.people[5].id.clone();
    {
        let db = rusqlite::Connection::open(env.db()).unwrap();
        let failed = db
            .execute(
                "UPDATE operations SET state = 'failed', attempts = 8, last_error = 'no answer' \
                 WHERE identity = ?1 AND target = 'directory'",
                [&leaver],
            )
            .unwrap();
        assert!(failed >= 2, "the create and a grant failed");
        db.execute(
            "INSERT INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
             SELECT 'failed_operation', 'operation:' || id, case_id, identity, target, target, 'no answer', 'open', created_at
             FROM operations WHERE identity = ?1 AND state = 'failed'",
            [&leaver],
        )
        .unwrap();
    }
    env.settle_in_db();
    co.remove(&leaver);
    env.write("day2.csv", &co.to_csv());
    let report = env.ok(&["import", "--source", "hr", "day2.csv", "--format", "json"]).json();
    assert_eq!(report["counts"]["leavers"], 1);
    let ops = env.ok(&["plan", "--identity", &leaver, "--all", "--format", "json"]).json();
    let directory: Vec<(String, String)> = ops
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["target"] == "directory")
        .map(|o| (o["kind"].as_str().unwrap().to_string(), o["state"].as_str().unwrap().to_string()))
        .collect();
    assert!(directory.iter().all(|(_, state)| state != "failed"), "nothing left to retry: {directory:?}");
    assert!(directory.iter().any(|(k, s)| k == "create_account" && s == "cancelled"), "{directory:?}");
    assert!(
        directory.iter().any(|(k, s)| k == "disable" && s == "pending"),
        "what may have landed is undone: {directory:?}"
    );
    assert!(directory.iter().any(|(k, s)| k == "revoke" && s == "pending"), "{directory:?}");
    let open = env.ok(&["exceptions", "--format", "json"]).json();
    assert!(
        open.as_array().unwrap().iter().all(|e| e["identity"] != leaver.as_str()),
        "the failure exceptions are resolved: {open:#}"
    );
    let audit = env.ok(&["audit", "export", "--identity", &leaver, "--format", "jsonl"]).stdout;
    assert!(audit.contains("attempted without a verified result"), "the cancellation says why");
    env.ok(&["audit", "verify"]);
}

#[test]
fn simulate_previews_a_policy_change_and_changes_nothing() {
    let env = Env::new();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    let before = env.pending_count();
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let stricter = policy.replace(
        "when = { status = \"active\", employment_type = [\"employee\", \"contractor\"] }",
        "when = { status = \"active\", employment_type = \"employee\" }",
    );
    assert_ne!(policy, stricter);
    env.write("stricter.toml", &stricter);
    let sim = env.ok(&["simulate", "--policy", "stricter.toml", "--format", "json"]).json();
    let contractors = std::fs::read_to_string(env.path("hr.csv")).unwrap().matches(",contractor,").count();
    assert_eq!(sim["revokes"].as_u64().unwrap() as usize, contractors * 2, "staff's two grants go for each contractor");
    assert_eq!(env.pending_count(), before);
}

#[test]
fn check_reports_each_problem_with_file_line_and_reason() {
    let env = Env::new();
    env.ok(&["check"]);
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let broken = policy.replace("department = \"Sales\" }", "departmnet = \"Sales\" }").replace(
        "grant = [\"directory:staff\", \"chat:everyone\"]",
        "grant = [\"directory:staff\", \"chat:everyone\", \"payroll:admin\"]",
    );
    env.write("policy.toml", &broken);
    let out = env.expect(1, &["check"]);
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        out.stdout.contains(&format!("policy.toml:{}: unknown attribute `departmnet`", line_of("departmnet"))),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "policy.toml:{}: entitlement `payroll:admin` is not declared",
            line_of("payroll:admin")
        )),
        "{}",
        out.stdout
    );
    let json = env.expect(1, &["check", "--format", "json"]).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), 2);
}

#[test]
fn a_service_account_moves_to_the_leaving_owners_manager() {
    let env = Env::new();
    // Large enough that two leavers stay under the guard's 5%.
    let mut o = Options::new(60, NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap());
    o.service_accounts = 1;
    let mut co = Company::generate(&o);
    let owner = co
        .people
        .iter()
        .find(|p| p.kind == "employee" && p.manager.as_deref() == Some("E000000") && p.id != "E000000")
        .unwrap()
        .clone();
    co.get_mut("S000000").unwrap().owner = Some(owner.id.clone());
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);

    // The owner leaves; the HR extract still names them as the owner.
    co.get_mut(&owner.id).unwrap().status = "terminated".into();
    env.write("day2.csv", &co.to_csv());
    let day2 = env.ok(&["import", "--source", "hr", "day2.csv", "--format", "json"]).json();
    assert_eq!(day2["counts"]["leavers"], 1);
    let svc = env.ok(&["identity", "show", "S000000", "--format", "json"]).json();
    assert_eq!(svc["attributes"]["owner_id"], "E000000", "ownership moved to the owner's manager");
    assert_eq!(svc["status"], "active");
    let audit = env.ok(&["audit", "export", "--identity", "S000000", "--format", "jsonl"]).stdout;
    assert!(audit.contains("nhi.transfer_ownership"), "{audit}");
    // Issue 10: the owner changed, so the credential the old owner may know is rotated.
    assert!(audit.contains("nhi.rotate_on_owner_change"), "{audit}");
    assert!(
        env.pending("S000000").contains(&"warehouse rotate_credential".to_string()),
        "{:?}",
        env.pending("S000000")
    );
    // Stable: the same extract again changes nothing.
    let again = env.ok(&["import", "--source", "hr", "day2.csv", "--format", "json"]).json();
    assert_eq!(again["outcome"], "unchanged");

    // With `revoke`, a service account whose owner leaves is terminated instead.
    let policy = std::fs::read_to_string(env.path("policy.toml"))
        .unwrap()
        .replace("\"transfer_to_manager\"   #", "\"revoke\" #");
    env.write("policy.toml", &policy);
    let new_owner =
        co.people.iter().find(|p| p.kind == "employee" && p.id != owner.id && p.manager.is_some()).unwrap().id.clone();
    co.get_mut("S000000").unwrap().owner = Some(new_owner.clone());
    env.write("day3.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day3.csv"]);
    co.get_mut(&new_owner).unwrap().status = "terminated".into();
    env.write("day4.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day4.csv"]);
    assert_eq!(env.ok(&["identity", "show", "S000000", "--format", "json"]).json()["status"], "terminated");
    // A terminated service account's queued rotation is cancelled with its access.
    assert!(!env.pending("S000000").iter().any(|o| o.contains("rotate_credential")), "{:?}", env.pending("S000000"));
}

#[test]
fn a_changed_username_never_redirects_a_revocation() {
    let env = Env::new();
    let mut co = company(40);
    let id = co.hire("Engineering");
    let original = co.get(&id).unwrap().username.clone();
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.settle_in_db();
    co.get_mut(&id).unwrap().username = "someone-else".into();
    env.write("day2.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day2.csv"]);
    co.remove(&id);
    env.write("day3.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day3.csv"]);
    let ops = env.ok(&["plan", "--identity", &id, "--format", "json"]).json();
    let revokes: Vec<&serde_json::Value> = ops.as_array().unwrap().iter().filter(|o| o["kind"] == "disable").collect();
    assert!(!revokes.is_empty());
    assert!(
        revokes.iter().all(|o| o["account"] == original.as_str()),
        "revocations act on the account that was created: {revokes:#?}"
    );
}

#[test]
fn a_broken_column_that_strips_many_is_held() {
    let env = Env::new();
    let mut co = company(60);
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    let before = env.pending_count();
    // A mapping error upstream: everyone's department is blank. Nobody leaves, but most lose access.
    for p in &mut co.people {
        p.department = "Unknown".into();
    }
    env.write("day2.csv", &co.to_csv());
    let out = env.expect(1, &["import", "--source", "hr", "day2.csv", "--format", "json"]).json();
    assert_eq!(out["outcome"], "held");
    assert_eq!(out["counts"]["leavers"], 0);
    assert!(out["held_reason"].as_str().unwrap().contains("identities losing access"), "{out}");
    assert_eq!(env.pending_count(), before);
}

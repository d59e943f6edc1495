//! Tampering with the audit table in the database file is detected and the record named.

use crate::Env;
use rusqlite::Connection;

fn env_with_history() -> Env {
    let env = Env::new();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    env.ok(&["audit", "verify"]);
    env
}

/// Tampers with the database directly, then expects `audit verify` to fail naming `seq`.
fn check(tamper: &str, seq: i64) {
    let env = env_with_history();
    {
        let db = Connection::open(env.db()).unwrap();
        db.execute_batch(tamper).unwrap();
    }
    let out = env.expect(1, &["audit", "verify"]);
    assert!(out.stdout.contains(&format!("BROKEN at seq {seq}:")), "after `{tamper}`:\n{}", out.stdout);
    let json = env.expect(1, &["audit", "verify", "--format", "json"]).json();
    assert_eq!(json["first_bad"]["seq"], seq);
}

#[test]
fn editing_a_record_is_named() {
    check("UPDATE audit SET outcome = 'approved' WHERE seq = 7", 7);
    check("UPDATE audit SET identity = 'someone-else' WHERE seq = 12", 12);
}

#[test]
fn deleting_a_record_is_named() {
    check("DELETE FROM audit WHERE seq = 9", 9);
}

#[test]
fn truncating_the_tail_is_caught_by_a_head_kept_outside() {
    let env = env_with_history();
    let v = env.ok(&["audit", "verify", "--format", "json"]).json();
    let (seq, hash) = (v["head"][0].as_i64().unwrap(), v["head"][1].as_str().unwrap().to_string());
    let head = format!("{seq}:{hash}");
    env.ok(&["audit", "verify", "--expect-head", &head]);
    // Cutting off the tail leaves a chain that is valid on its own ...
    Connection::open(env.db()).unwrap().execute_batch("DELETE FROM audit WHERE seq > 20").unwrap();
    env.ok(&["audit", "verify"]);
    // ... but not one that still holds the head recorded before.
    let out = env.expect(1, &["audit", "verify", "--expect-head", &head]);
    assert!(out.stdout.contains(&format!("record {seq} is gone")), "{}", out.stdout);
    env.expect(2, &["audit", "verify", "--expect-head", "garbage"]);
}

#[test]
fn inserting_a_record_is_named() {
    // Shift records 10.. up by one, then put a forged record at 10.
    check(
        "UPDATE audit SET seq = -seq WHERE seq >= 10;
         UPDATE audit SET seq = -seq + 1 WHERE seq < 0;
         INSERT INTO audit (seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash)
           SELECT 10, at, 'user:mallory', 'approval.approved', identity, target, entitlement, reason, 'mallory', 'approved', hash, hash
           FROM audit WHERE seq = 9;",
        10,
    );
}

#[test]
fn reordering_records_is_named() {
    // Swap the contents of records 5 and 8, keeping their positions.
    check(
        "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (5, 8);
         UPDATE audit SET (at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash) =
           (SELECT at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash FROM t WHERE t.seq = 13 - audit.seq)
           WHERE seq IN (5, 8);",
        5,
    );
}

#[test]
fn export_filters_by_identity_and_since() {
    let env = env_with_history();
    let all = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let e1 = env.ok(&["audit", "export", "--identity", "E000001", "--format", "jsonl"]).stdout;
    assert!(e1.lines().count() > 1 && e1.lines().count() < all.lines().count());
    assert!(e1.lines().all(|l| l.contains("\"identity\":\"E000001\"")));
    let future = env.ok(&["audit", "export", "--since", "2999-01-01", "--format", "csv"]).stdout;
    assert_eq!(future.lines().count(), 1, "only the header: {future}");
    let csv = env.ok(&["audit", "export", "--format", "csv"]).stdout;
    assert!(csv.starts_with("seq,at,actor,action,identity,target,entitlement,reason,approver,outcome,prev_hash,hash"));
    env.expect(2, &["audit", "export", "--format", "xml"]);
}

#[test]
fn an_export_verifies_offline_and_an_edit_to_it_is_named() {
    let env = env_with_history();
    let export = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    env.write("evidence.jsonl", &export);
    let out = env.ok(&["audit", "verify", "--export", "evidence.jsonl"]);
    assert!(out.stdout.contains("export verified"), "{}", out.stdout);
    let filtered = env.ok(&["audit", "export", "--identity", "E000001", "--format", "jsonl"]).stdout;
    env.write("one.jsonl", &filtered);
    env.ok(&["audit", "verify", "--export", "one.jsonl"]);
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    lines[4] = lines[4].replace("\"outcome\":\"pending\"", "\"outcome\":\"verified\"");
    env.write("edited.jsonl", &(lines.join("\n") + "\n"));
    let out = env.expect(1, &["audit", "verify", "--export", "edited.jsonl"]);
    assert!(out.stdout.contains("BROKEN at seq 5"), "{}", out.stdout);
}

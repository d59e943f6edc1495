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
    // A filtered export says so in its first line; every line after it is a record.
    let (header, records) = e1.split_once('\n').unwrap();
    assert_eq!(header, r#"{"tenure_audit_export":{"filtered":true,"identity":"E000001","since":null}}"#);
    assert!(records.lines().count() > 1 && records.lines().count() < all.lines().count());
    assert!(records.lines().all(|l| l.contains("\"identity\":\"E000001\"") && l.contains("\"seq\":")));
    assert!(!all.contains("tenure_audit_export"), "a full export has no header");
    let future = env.ok(&["audit", "export", "--since", "2999-01-01", "--format", "jsonl"]).stdout;
    assert_eq!(future.lines().count(), 1, "only the filter header: {future}");
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
    let out = env.ok(&["audit", "verify", "--export", "one.jsonl"]);
    assert!(out.stdout.contains("completeness cannot be proven"), "{}", out.stdout);
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    lines[4] = lines[4].replace("\"outcome\":\"pending\"", "\"outcome\":\"verified\"");
    env.write("edited.jsonl", &(lines.join("\n") + "\n"));
    let out = env.expect(1, &["audit", "verify", "--export", "edited.jsonl"]);
    assert!(out.stdout.contains("BROKEN at seq 5"), "{}", out.stdout);
}

// ---- Issue 6: signed evidence, complete exports, spreadsheet-safe CSV, store hygiene ----

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use tenure_core::audit::{AuditRecord, hash};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn records(jsonl: &str) -> Vec<AuditRecord> {
    jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn to_jsonl(records: &[AuditRecord]) -> String {
    records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect()
}

/// Recomputes the hashes of `records[from..]` so the chain re-verifies, as someone who can
/// write the database (but not read the signing key) would.
fn rechain(records: &mut [AuditRecord], from: usize) {
    for i in from..records.len() {
        let prev = if i == 0 { tenure_core::audit::GENESIS.to_string() } else { records[i - 1].hash.clone() };
        let r = &mut records[i];
        r.prev_hash = prev;
        r.hash = hash(r.seq, &r.at, &r.entry, &r.prev_hash);
    }
}

/// Replaces the whole audit table with `records`.
fn rewrite_table(env: &Env, records: &[AuditRecord]) {
    let mut db = Connection::open(env.db()).unwrap();
    let tx = db.transaction().unwrap();
    tx.execute("DELETE FROM audit", []).unwrap();
    for r in records {
        let e = &r.entry;
        tx.execute(
            "INSERT INTO audit (seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params![
                r.seq, r.at, e.actor, e.action, e.identity, e.target, e.entitlement, e.reason, e.approver, e.outcome,
                r.prev_hash, r.hash
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// The secret seed of the env's signing key, as it appears in the key file.
fn secret(env: &Env) -> String {
    let text = std::fs::read_to_string(env.path("tenure-data/audit-signing.key")).unwrap();
    text.split_whitespace().last().unwrap().to_string()
}

#[test]
fn issue6_a_history_rewritten_before_a_checkpoint_fails_although_the_chain_rechains() {
    let env = env_with_history();
    assert_eq!(mode(&env.path("tenure-data/audit-signing.key")), 0o600, "tenure init creates the key 0600");
    assert!(env.path("tenure-data/audit-signing.key.pub").is_file());
    let out = env.ok(&["audit", "checkpoint", "--as", "auditor"]);
    assert!(out.stdout.contains("signed with key"), "{}", out.stdout);
    let ok = env.ok(&["audit", "verify", "--format", "json"]).json();
    assert_eq!(ok["checkpoints"]["verified"], 1);
    assert_eq!(ok["checkpoints"]["unsigned_records"], 0, "a checkpoint covers its own record");

    // Rewrite record 7 (an approval, say) and re-chain everything after it: the hash links
    // alone verify again, and so did `audit verify` before checkpoints.
    let mut all = records(&env.ok(&["audit", "export", "--format", "jsonl"]).stdout);
    all[6].entry.outcome = "approved".into();
    all[6].entry.approver = Some("mallory".into());
    rechain(&mut all, 6);
    rewrite_table(&env, &all);
    let mut v = tenure_core::audit::Verifier::default();
    assert!(all.iter().all(|r| v.push(r).is_ok()), "the forged chain is internally consistent");
    let out = env.expect(1, &["audit", "verify"]);
    let last = all.len();
    assert!(out.stdout.contains(&format!("history REWRITTEN at seq {last}:")), "{}", out.stdout);
    assert!(out.stdout.contains("rewritten and re-chained from the start"), "{}", out.stdout);
    let json = env.expect(1, &["audit", "verify", "--format", "json"]).json();
    assert_eq!(json["first_bad"], serde_json::Value::Null, "the links themselves hold");
    assert_eq!(json["checkpoints"]["first_bad"]["seq"], last);

    // A forged record appended after the checkpoint is only chain-protected, and says so.
    let env = env_with_history();
    env.ok(&["audit", "checkpoint"]);
    let mut all = records(&env.ok(&["audit", "export", "--format", "jsonl"]).stdout);
    let mut forged = all.last().unwrap().clone();
    forged.seq += 1;
    forged.entry = tenure_core::audit::AuditEntry::new("user:mallory", "approval.approved", "approved");
    all.push(forged);
    let n = all.len();
    rechain(&mut all, n - 1);
    rewrite_table(&env, &all);
    let out = env.ok(&["audit", "verify"]);
    assert!(out.stdout.contains("1 record(s) after it are protected by the hash chain only"), "{}", out.stdout);

    // Another public key (say, a replaced `.pub`) does not verify the checkpoints.
    let other = Env::new();
    let out = env.expect(
        1,
        &["audit", "verify", "--public-key", &other.path("tenure-data/audit-signing.key.pub").display().to_string()],
    );
    assert!(out.stdout.contains("not by the given public key"), "{}", out.stdout);
    env.expect(2, &["audit", "verify", "--public-key", "missing.pub"]);
}

/// Exports a bundle of the env and returns its directory name.
fn bundle(env: &Env) -> &'static str {
    let out = env.ok(&["audit", "export", "--bundle", "evidence", "--as", "auditor"]);
    assert!(out.stdout.contains("bundle written to `evidence`"), "{}", out.stdout);
    "evidence"
}

/// Copies the bundle, applies `tamper` to its records, and expects the verifier to name `seq`.
fn check_bundle(env: &Env, name: &str, tamper: impl Fn(&mut Vec<AuditRecord>), seq: usize) {
    let dir = env.path(name);
    std::fs::create_dir(&dir).unwrap();
    for f in ["records.jsonl", "checkpoints.jsonl", "manifest.json"] {
        std::fs::copy(env.path("evidence").join(f), dir.join(f)).unwrap();
    }
    let mut all = records(&std::fs::read_to_string(dir.join("records.jsonl")).unwrap());
    tamper(&mut all);
    std::fs::write(dir.join("records.jsonl"), to_jsonl(&all)).unwrap();
    let out =
        env.expect(1, &["audit", "verify", "--bundle", name, "--public-key", "tenure-data/audit-signing.key.pub"]);
    let named = [format!("bundle BROKEN at seq {seq} ("), format!("bundle BROKEN at seq {seq}:")];
    assert!(named.iter().any(|n| out.stdout.contains(n.as_str())), "{name}:\n{}", out.stdout);
    let json = env
        .expect(
            1,
            &[
                "audit",
                "verify",
                "--bundle",
                name,
                "--public-key",
                "tenure-data/audit-signing.key.pub",
                "--format",
                "json",
            ],
        )
        .json();
    assert_eq!(json["first_bad"]["seq"], seq, "{name}");
}

#[test]
fn issue6_a_bundle_verifies_offline_and_names_the_first_bad_record_after_each_tampering() {
    let env = env_with_history();
    env.ok(&["audit", "checkpoint"]);
    let dir = bundle(&env);
    let key = "tenure-data/audit-signing.key.pub";
    // Offline: another directory, no config and no store.
    let auditor = tempfile::TempDir::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["audit", "verify", "--bundle"])
        .arg(env.path(dir))
        .arg("--public-key")
        .arg(env.path(key))
        .current_dir(auditor.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("bundle verified"), "{stdout}");
    // records.jsonl is byte for byte the full JSONL export up to the bundle's signed head.
    let bundled = std::fs::read_to_string(env.path(dir).join("records.jsonl")).unwrap();
    let export = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(export.starts_with(&bundled));
    let n = records(&bundled).len();

    check_bundle(&env, "edited", |r| r[9].entry.outcome = "approved".into(), 10);
    check_bundle(&env, "deleted", |r| drop(r.remove(11)), 12);
    check_bundle(
        &env,
        "inserted",
        |r| {
            let mut forged = r[4].clone();
            forged.entry.actor = "user:mallory".into();
            forged.hash = hash(forged.seq, &forged.at, &forged.entry, &forged.prev_hash);
            r.insert(4, forged);
        },
        5,
    );
    check_bundle(&env, "reordered", |r| r.swap(6, 8), 7);
    check_bundle(
        &env,
        "appended",
        |r| {
            let last = r.last().unwrap().clone();
            let entry = tenure_core::audit::AuditEntry::new("user:mallory", "approval.approved", "approved");
            let h = hash(last.seq + 1, &last.at, &entry, &last.hash);
            r.push(AuditRecord { seq: last.seq + 1, at: last.at, entry, prev_hash: last.hash, hash: h });
        },
        n + 1,
    );
    check_bundle(&env, "truncated", |r| r.truncate(n - 3), n - 2);

    // Truncation with the manifest edited to match: its signature fails.
    let cut = env.path("truncated");
    let kept = std::fs::read(cut.join("records.jsonl")).unwrap();
    let kept_records = records(std::str::from_utf8(&kept).unwrap());
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(cut.join("manifest.json")).unwrap()).unwrap();
    m["records_sha256"] = sha256(&kept).into();
    m["record_count"] = kept_records.len().into();
    m["last_seq"] = kept_records.last().unwrap().seq.into();
    m["head_hash"] = kept_records.last().unwrap().hash.clone().into();
    std::fs::write(cut.join("manifest.json"), m.to_string()).unwrap();
    let out = env.expect(1, &["audit", "verify", "--bundle", "truncated", "--public-key", key]);
    assert!(out.stdout.contains("manifest.json: the signature does not verify"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("bundle BROKEN at seq {}:", n - 2)), "{}", out.stdout);

    // Usage errors: a missing directory, an unreadable key, no key.
    env.expect(2, &["audit", "verify", "--bundle", "no-such-dir", "--public-key", key]);
    env.expect(2, &["audit", "verify", "--bundle", dir, "--public-key", "no-such.pub"]);
    env.expect(2, &["audit", "verify", "--bundle", dir, "--public-key", "hr.csv"]);
    env.expect(2, &["audit", "verify", "--bundle", dir]);
    // A second bundle never overwrites the first.
    env.expect(1, &["audit", "export", "--bundle", dir]);
}

/// SHA-256 in hex, by coreutils' `sha256sum`, independent of the code under test.
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn issue6_the_signing_key_never_appears_in_output_audit_or_store() {
    let env = Env::new();
    let seed = secret(&env);
    let mut seen = String::new();
    for args in [
        &["import", "--source", "hr", "hr.csv"][..],
        &["audit", "checkpoint"],
        &["audit", "export", "--bundle", "b"],
        &["audit", "verify"],
        &["audit", "verify", "--format", "json"],
        &["audit", "export", "--format", "jsonl"],
        &["audit", "export", "--format", "csv"],
    ] {
        let out = env.run(args);
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    for f in ["records.jsonl", "checkpoints.jsonl", "manifest.json"] {
        seen.push_str(&std::fs::read_to_string(env.path("b").join(f)).unwrap());
    }
    assert!(!seen.contains(&seed), "the private key was printed or exported");
    let db = std::fs::read(env.db()).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&seed), "the private key is in the store");
    // A key other users can read is refused, and the refusal does not show it either.
    set_mode(&env.path("tenure-data/audit-signing.key"), 0o644);
    let out = env.expect(1, &["audit", "checkpoint"]);
    assert!(out.stderr.contains("chmod 600") && !out.stderr.contains(&seed), "{}", out.stderr);
}

#[test]
fn issue6_a_line_deleted_from_a_full_export_is_reported_as_a_gap() {
    let env = env_with_history();
    let export = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let lines: Vec<&str> = export.lines().collect();
    // Remove record 5 and records 9-10: both gaps are reported.
    let kept: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| ![4, 8, 9].contains(i)).map(|(_, l)| *l).collect();
    env.write("gappy.jsonl", &(kept.join("\n") + "\n"));
    let out = env.expect(1, &["audit", "verify", "--export", "gappy.jsonl"]);
    assert!(out.stdout.contains("export GAP: record 5 is missing"), "{}", out.stdout);
    assert!(out.stdout.contains("export GAP: records 9..=10 are missing"), "{}", out.stdout);
    let json = env.expect(1, &["audit", "verify", "--export", "gappy.jsonl", "--format", "json"]).json();
    assert_eq!(json["gaps"], serde_json::json!([{"from": 5, "to": 5}, {"from": 9, "to": 10}]));
    // The first line gone: a full export starts at seq 1.
    env.write("headless.jsonl", &(lines[1..].join("\n") + "\n"));
    let out = env.expect(1, &["audit", "verify", "--export", "headless.jsonl"]);
    assert!(out.stdout.contains("export GAP: record 1 is missing"), "{}", out.stdout);
    // A filtered export without its header is taken for a full one, and fails.
    let filtered = env.ok(&["audit", "export", "--identity", "E000001"]).stdout;
    let (_, body) = filtered.split_once('\n').unwrap();
    env.write("stripped.jsonl", body);
    env.expect(1, &["audit", "verify", "--export", "stripped.jsonl"]);
    // --expect-head works on an export too.
    let head = env.ok(&["audit", "verify", "--format", "json"]).json()["head"].clone();
    let head = format!("{}:{}", head[0], head[1].as_str().unwrap());
    env.write("full.jsonl", &export);
    env.ok(&["audit", "verify", "--export", "full.jsonl", "--expect-head", &head]);
    let cut: String = lines[..lines.len() - 1].iter().map(|l| format!("{l}\n")).collect();
    env.write("cut.jsonl", &cut);
    env.expect(1, &["audit", "verify", "--export", "cut.jsonl", "--expect-head", &head]);
    env.expect(2, &["audit", "verify", "--export", "no-such.jsonl"]);
}

#[test]
fn issue6_csv_export_neutralises_cells_that_start_a_formula() {
    let env = Env::new();
    let csv = std::fs::read_to_string(env.path("hr.csv")).unwrap();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    // A truncated file is held; rejecting it records the rejecter's name as the approver.
    let truncated: String = csv.split_inclusive('\n').take(6).collect();
    env.write("cut.csv", &truncated);
    env.expect(1, &["import", "--source", "hr", "cut.csv"]);
    let id = env.ok(&["approvals", "--format", "json"]).json()[0]["id"].as_i64().unwrap().to_string();
    let hostile = "=HYPERLINK(\"http://evil.example/\",\"click\")";
    env.ok(&["reject", &id, "--reason", "x", "--as", hostile]);
    let out = env.ok(&["audit", "export", "--format", "csv"]).stdout;
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let approvers: Vec<String> =
        reader.records().map(|r| r.unwrap()[8].to_string()).filter(|a| a.contains("HYPERLINK")).collect();
    assert_eq!(approvers, vec![format!("'{hostile}")], "the formula is shown as text");
    for row in csv::Reader::from_reader(out.as_bytes()).records() {
        for cell in row.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "unsafe cell {cell:?}");
        }
    }
    // The JSONL export keeps the value byte for byte (it is what the hashes cover).
    let jsonl = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(jsonl.contains(&format!("\"approver\":{}", serde_json::to_string(hostile).unwrap())));
    env.write("all.jsonl", &jsonl);
    env.ok(&["audit", "verify", "--export", "all.jsonl"]);
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Runs the binary in `dir`, as `nobody` when the tests run as root (root ignores file modes).
fn run_as_other(dir: &Path, args: &[&str]) -> crate::Out {
    let bin = env!("CARGO_BIN_EXE_tenure");
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        std::process::Command::new(bin)
    };
    let out = cmd
        .args(args)
        .current_dir(dir)
        .env("TENURE_TODAY", crate::TODAY)
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL")
        .output()
        .unwrap();
    crate::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A copy of the env's config, store and public key in a fresh traversable dir, with the
/// store directory 0555 and the database 0444 (the private key is not copied).
fn read_only_copy(env: &Env, db: &Path) -> tempfile::TempDir {
    let copy = tempfile::TempDir::new().unwrap();
    set_mode(copy.path(), 0o755);
    std::fs::copy(env.path("tenure.toml"), copy.path().join("tenure.toml")).unwrap();
    let data = copy.path().join("tenure-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(db, data.join("tenure.db")).unwrap();
    std::fs::copy(env.path("tenure-data/audit-signing.key.pub"), data.join("audit-signing.key.pub")).unwrap();
    set_mode(&data.join("tenure.db"), 0o444);
    set_mode(&data.join("audit-signing.key.pub"), 0o444);
    set_mode(&data, 0o555);
    copy
}

#[test]
fn issue6_audit_verify_and_export_work_on_a_read_only_copy_owned_by_someone_else() {
    let env = env_with_history();
    env.ok(&["audit", "checkpoint"]);
    let jsonl = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let csv = env.ok(&["audit", "export", "--format", "csv"]).stdout;
    let copy = read_only_copy(&env, &env.db());
    let db = copy.path().join("tenure-data/tenure.db");
    let before = std::fs::read(&db).unwrap();

    let out = run_as_other(copy.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 of 1 verified"), "{}", out.stdout);
    let out = run_as_other(copy.path(), &["audit", "export", "--format", "jsonl"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, jsonl.as_str()), "{}", out.stderr);
    let out = run_as_other(copy.path(), &["audit", "export", "--format", "csv", "--identity", "E000001"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(csv.starts_with(out.stdout.lines().next().unwrap()));
    assert_eq!(std::fs::read(&db).unwrap(), before, "a read-only open changes nothing");
    assert!(!copy.path().join("tenure-data/tenure.db-wal").exists());
    // Writing commands fail there instead of creating anything.
    let out = run_as_other(copy.path(), &["audit", "checkpoint"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
}

#[test]
fn issue6_an_older_store_without_checkpoints_verifies_read_only_without_migrating() {
    let env = env_with_history();
    let old = env.path("old.db");
    std::fs::copy(env.db(), &old).unwrap();
    {
        let c = Connection::open(&old).unwrap();
        // A store of migration 3: no checkpoints (4), no leases (5).
        c.execute_batch(
            "DROP TABLE audit_checkpoints; ALTER TABLE operations DROP COLUMN claimed_until;
             DELETE FROM schema_migrations WHERE version >= 4;",
        )
        .unwrap();
    }
    let copy = read_only_copy(&env, &old);
    let out = run_as_other(copy.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("checkpoints: none"), "{}", out.stdout);
    let versions: i64 = Connection::open(copy.path().join("tenure-data/tenure.db"))
        .unwrap()
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 3, "no migration ran");
}

#[test]
fn issue6_the_store_is_private_and_a_symlinked_store_path_is_refused() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let with_url = |url: &str, extra: &str| {
        config.replacen("url = \"sqlite://tenure-data/tenure.db\"", &format!("url = \"sqlite://{url}\"{extra}"), 1)
    };
    env.write("tenure.toml", &with_url("private/store/t.db", ""));
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    assert_eq!(mode(&env.path("private/store")), 0o700);
    assert_eq!(mode(&env.path("private/store/t.db")), 0o600);
    for side in ["t.db-wal", "t.db-shm"] {
        let p = env.path("private/store").join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }

    // A symlinked directory, then a symlinked database file.
    std::os::unix::fs::symlink(env.path("private/store"), env.path("linked")).unwrap();
    env.write("tenure.toml", &with_url("linked/t.db", ""));
    let out = env.expect(1, &["audit", "verify"]);
    assert!(out.stderr.contains("a symbolic link") && out.stderr.contains("allow_symlink"), "{}", out.stderr);
    env.expect(1, &["import", "--source", "hr", "hr.csv"]);
    std::fs::create_dir(env.path("other")).unwrap();
    std::os::unix::fs::symlink(env.path("private/store/t.db"), env.path("other/t.db")).unwrap();
    env.write("tenure.toml", &with_url("other/t.db", ""));
    let out = env.expect(1, &["audit", "verify"]);
    assert!(out.stderr.contains("it is a symbolic link"), "{}", out.stderr);
    // ... unless the config accepts it.
    env.write("tenure.toml", &with_url("linked/t.db", "\nallow_symlink = true"));
    env.ok(&["audit", "verify"]);
}

#[test]
fn issue6_a_broken_chain_is_never_signed() {
    let env = env_with_history();
    Connection::open(env.db()).unwrap().execute_batch("UPDATE audit SET reason = 'forged' WHERE seq = 10").unwrap();
    let out = env.expect(1, &["audit", "checkpoint"]);
    assert!(out.stderr.contains("the audit chain is broken at seq 10"), "{}", out.stderr);
    let dir = env.path("bundle");
    let out = env.expect(1, &["audit", "export", "--bundle", dir.to_str().unwrap()]);
    assert!(out.stderr.contains("broken at seq 10"), "{}", out.stderr);
}

#[test]
fn issue6_an_unsigned_export_header_cannot_switch_off_the_gap_check() {
    let env = env_with_history();
    let full = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let mut lines: Vec<&str> = full.lines().collect();
    lines.remove(20);
    for header in [
        r#"{"tenure_audit_export":{"filtered":false,"identity":null,"since":null}}"#,
        r#"{"tenure_audit_export":{"filtered":true,"identity":null,"since":null}}"#,
        r#"{"tenure_audit_export":{"filtered":true,"identity":null,"since":"2000-01-01T00:00:00.000000Z"}}"#,
    ] {
        env.write("cut.jsonl", &format!("{header}\n{}\n", lines.join("\n")));
        let out = env.expect(1, &["audit", "verify", "--export", "cut.jsonl"]);
        assert!(out.stdout.contains("record 21 is missing"), "the gap is reported under {header}:\n{}", out.stdout);
    }
}

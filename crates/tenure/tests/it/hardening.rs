//! Issue 6: hostile input, a second source, superseded work, stuck failures and honest output,
//! each reproduced as the red-team and the new-user runs found it.

use crate::{Env, company};

pub(crate) const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";

pub(crate) fn row(id: &str, login: &str, dept: &str) -> String {
    format!("{id},N,L,{login}@x.com,{login},{dept},Lead,Berlin,CC1,,employee,,,2020-01-01,,active")
}

/// 40 engineers `E1`..`E40` imported; returns their rows.
fn forty(env: &Env) -> Vec<String> {
    let rows: Vec<String> = (1..=40).map(|i| row(&format!("E{i}"), &format!("u{i}"), "Engineering")).collect();
    env.write("a.csv", &format!("{HEADER}\n{}\n", rows.join("\n")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    rows
}

fn status(env: &Env, id: &str) -> String {
    env.ok(&["identity", "show", id, "--format", "json"]).json()["status"].as_str().unwrap().to_string()
}

#[test]
fn issue6_a_second_source_cannot_take_over_an_identity() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let second = tenure_testkit::company::SOURCE_TOML.replace("name = \"hr\"", "name = \"contractors\"");
    env.write("tenure.toml", &format!("{config}\n{second}"));
    env.ok(&["check"]);
    forty(&env);
    // A one-row file from the second source names an `hr` employee and moves them to Finance.
    env.write(
        "c.csv",
        &format!("{HEADER}\nE7,N,L,u7@x.com,u7,Finance,Director,Berlin,CC9,,employee,,,2020-01-01,,active\n"),
    );
    let out = env.expect(1, &["import", "--source", "contractors", "c.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["rejected"], 1, "{out}");
    assert_eq!(out["rejected"][0]["line"], 2);
    assert!(
        out["rejected"][0]["reason"].as_str().unwrap().contains("belongs to source `hr`"),
        "{}",
        out["rejected"][0]
    );
    assert_eq!(out["counts"]["operations"], 0, "nothing planned for someone else's identity");
    let e7 = env.ok(&["identity", "show", "E7", "--format", "json"]).json();
    assert_eq!(e7["attributes"]["department"], "Engineering");
    assert_eq!(e7["attributes"]["title"], "Lead");
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let source: String = db.query_row("SELECT source FROM identities WHERE id = 'E7'", [], |r| r.get(0)).unwrap();
    assert_eq!(source, "hr", "the identity's source is never overwritten");
    // And the second source's own, empty, snapshot does not make anyone of `hr` a leaver.
    env.write("empty.csv", &format!("{HEADER}\n"));
    let out = env.ok(&["import", "--source", "contractors", "empty.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["leavers"], 0);
}

#[test]
fn issue6_a_key_with_a_control_character_never_creates_a_leaver() {
    for corrupt in ["E40\u{0}", "E4\u{1b}0", "E40\u{85}"] {
        let env = Env::new();
        let rows = forty(&env);
        let mut changed = rows[..39].to_vec();
        changed.push(rows[39].replacen("E40", corrupt, 1));
        env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
        let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json"]).json();
        assert_eq!(out["outcome"], "held", "{corrupt:?}: {out}");
        assert!(out["held_reason"].as_str().unwrap().contains("cannot be attributed"), "{out}");
        assert_eq!(out["rejected"][0]["key"], serde_json::Value::Null, "the corrupted key is not trusted");
        assert_eq!(status(&env, "E40"), "active");
        let text = env.expect(1, &["import", "--source", "hr", "b.csv", "--dry-run"]).stdout;
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "control characters escaped: {text:?}");
    }
}

#[test]
fn issue6_a_file_cut_at_98_percent_holds_its_removals() {
    let env = Env::new();
    let co = company(100);
    let full = co.to_csv();
    env.write("full.csv", &full);
    env.ok(&["import", "--source", "hr", "full.csv"]);
    let cut = &full.as_bytes()[..full.len() * 98 / 100];
    std::fs::write(env.path("cut.csv"), cut).unwrap();
    let out = env.expect(1, &["import", "--source", "hr", "cut.csv", "--format", "json"]).json();
    assert!(out["counts"]["leavers"].as_u64().unwrap() >= 1, "{out}");
    assert!(out["counts"]["leavers"].as_u64().unwrap() <= 5, "under the guard's limits on its own: {out}");
    assert_eq!(out["outcome"], "held", "{out}");
    let last = co.people.last().unwrap();
    assert_eq!(status(&env, &last.id), "active");
    assert!(out["held_reason"].as_str().unwrap().contains("last record may be cut off"), "{out}");
    // Cut inside a quoted field, with a line break after the cut: still truncated.
    let at = full[..full.len() * 98 / 100].rfind(',').unwrap() + 1;
    env.write("quoted.csv", &format!("{}\"Smith\n", &full[..at]));
    let out = env.expect(1, &["import", "--source", "hr", "quoted.csv", "--format", "json", "--dry-run"]).json();
    assert_eq!(out["outcome"], "held", "{out}");
    assert!(out["held_reason"].as_str().unwrap().contains("ends inside a quoted field"), "{out}");
}

#[test]
fn issue6_hostile_dates_are_rejected_and_the_person_stays_active() {
    let env = Env::new();
    let rows = forty(&env);
    for (bad, why) in [
        ("-001-01-01", "expected YYYY-MM-DD"),
        ("0000-01-01", "year outside 1900-9999"),
        ("2026-01-01T25:99:99garbage", "not a valid time"),
        ("2026/01/01", "expected YYYY-MM-DD"),
    ] {
        let mut changed = rows.clone();
        changed[4] = changed[4].replace("2020-01-01,,active", &format!("2020-01-01,{bad},active"));
        env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
        let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json"]).json();
        assert_eq!(out["rejected"][0]["line"], 6, "{bad}: {out}");
        assert_eq!(out["rejected"][0]["field"], "end_date");
        let reason = out["rejected"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("bad date") && reason.contains(why), "{bad}: {reason}");
        assert_eq!(status(&env, "E5"), "active");
    }
    // A real, past end date still makes a leaver.
    let mut changed = rows;
    changed[4] = changed[4].replace("2020-01-01,,active", "2020-01-01,2026-01-31T17:00:00+01:00,active");
    env.write("c.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
    let out = env.ok(&["import", "--source", "hr", "c.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["leavers"], 1, "{out}");
}

#[test]
fn issue6_a_50_mb_field_yields_a_short_message_and_a_short_audit_record() {
    let env = Env::new();
    let rows = forty(&env);
    let mut changed = rows.clone();
    // A field over the 4 KiB limit in a record under the 1 MiB record limit rejects its row.
    changed[2] = changed[2].replace(",Lead,", &format!(",{},", "A".repeat(512 * 1024)));
    env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "b.csv"]);
    assert!(out.stdout.len() < 4096, "stdout is {} bytes", out.stdout.len());
    assert!(out.stdout.contains("field `title` is 524288 bytes; the limit is 4096"), "{}", out.stdout);
    // A 50 MB field makes a record over the record limit: the file is refused with its line,
    // in a short message, before the record is read whole.
    let mut huge = rows;
    huge[2] = huge[2].replace(",Lead,", &format!(",{},", "A".repeat(50 * 1024 * 1024)));
    env.write("h.csv", &format!("{HEADER}\n{}\n", huge.join("\n")));
    let refused = env.expect(1, &["import", "--source", "hr", "h.csv"]);
    assert!(refused.stderr.len() < 4096 && refused.stdout.len() < 4096);
    assert!(refused.stderr.contains("line 4: the record starting here is over 1048576 bytes"), "{}", refused.stderr);
    let export = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(export.len() < 200_000, "the audit trail holds no copy of the field: {} bytes", export.len());
    assert_eq!(status(&env, "E3"), "active");
}

#[test]
fn issue6_control_characters_are_escaped_in_messages_tables_and_audit_reasons() {
    let env = Env::new();
    let rows = forty(&env);
    let mut changed = rows;
    changed[1] = changed[1].replace(",Engineering,", ",Engineering\u{1b}[2J\u{202e},");
    changed[2] = changed[2].replace(",Lead,", ",\"Lead\nof things\",");
    env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "b.csv"]);
    assert!(out.stdout.contains("\\u{1b}[2J\\u{202e}"), "{}", out.stdout);
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'));
    let audit = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(
        !audit.contains("\\u001b") && !audit.contains('\u{202e}'),
        "audit reasons carry escapes, not the raw bytes"
    );
    // A newline in a title is accepted and prints on one line in tables.
    let list = env.ok(&["identity", "list"]).stdout;
    let e3 = list.lines().find(|l| l.starts_with("E3 ")).unwrap();
    assert!(e3.contains("Lead\\nof things"), "{list}");
    assert_eq!(list.lines().count(), 42, "one line per identity plus header and total: {list}");
}

#[test]
fn issue6_a_mapped_column_named_twice_is_a_file_error() {
    let env = Env::new();
    forty(&env);
    // A second status column: the first used to win silently, making leavers of the rest.
    let header = format!("{HEADER},employment_status");
    let rows: Vec<String> =
        (1..=40).map(|i| format!("{},terminated", row(&format!("E{i}"), &format!("u{i}"), "Engineering"))).collect();
    env.write("b.csv", &format!("{header}\n{}\n", rows.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "b.csv"]);
    assert!(out.stderr.contains("names column `employment_status` (mapped to `status`) 2 times"), "{}", out.stderr);
    assert_eq!(status(&env, "E1"), "active");
}

#[test]
fn issue6_the_guard_holds_a_batch_granting_privileged_access_to_many() {
    let env = Env::new();
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let policy = policy.replace(
        "approval = \"manager\"         # requested, approved by the manager",
        "approval = \"manager\"\nwhen = { status = \"active\", department = \"Engineering\" }",
    );
    env.write("policy.toml", &policy);
    env.ok(&["check"]);
    // The role's condition opens a request for each, approved by their manager `M0`; the guard
    // counts those requests like the grants they ask for.
    let boss = row("M0", "boss", "Sales");
    let rows: Vec<String> = (1..=8)
        .map(|i| row(&format!("E{i}"), &format!("u{i}"), "Engineering").replacen(",CC1,,", ",CC1,M0,", 1))
        .collect();
    env.write("a.csv", &format!("{HEADER}\n{boss}\n{}\n", rows.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "a.csv", "--format", "json"]).json();
    assert_eq!(out["outcome"], "held", "{out}");
    assert!(out["held_reason"].as_str().unwrap().contains("8 identities gaining privileged access"), "{out}");
    assert_eq!(env.pending_count(), 0);
    // Within the limit, it applies.
    let env = Env::new();
    env.write("policy.toml", &policy);
    env.write("a.csv", &format!("{HEADER}\n{boss}\n{}\n", rows[..3].join("\n")));
    let out = env.ok(&["import", "--source", "hr", "a.csv", "--format", "json"]).json();
    assert_eq!(out["outcome"], "applied");
}

#[test]
fn issue6_a_key_typed_onto_another_row_never_creates_a_leaver() {
    let env = Env::new();
    let rows = forty(&env);
    // E1's id typed onto E2's row: both rows are duplicates of E1, and E2 is missing.
    let mut changed = rows;
    changed[1] = changed[1].replacen("E2,", "E1,", 1);
    env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["rejected"], 2, "{out}");
    assert_eq!(out["outcome"], "held", "{out}");
    let reason = out["held_reason"].as_str().unwrap();
    assert!(reason.contains("`E2` (line 3)"), "{reason}");
    assert_eq!(status(&env, "E2"), "active");
    assert!(env.pending("E2").iter().all(|o| !o.contains("revoke")), "no revocation planned for E2");
}

/// A config with one manual target only, and a policy granting there: tickets without peers.
pub(crate) fn manual_only(env: &Env) {
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let start = config.find("[[target]]").unwrap();
    let payroll = config.find("[[target]]\nname = \"payroll\"").unwrap();
    let config = format!("{}{}", &config[..start], &config[payroll..]);
    env.write("tenure.toml", &config);
    env.write(
        "policy.toml",
        "[[role]]\nid = \"staff\"\nwhen = { status = \"active\" }\ngrant = [\"payroll:employee-record\"]\n",
    );
    env.ok(&["check"]);
}

#[test]
fn issue6_superseded_operations_are_cancelled_and_tickets_withdrawn() {
    let env = Env::new();
    manual_only(&env);
    let rows: Vec<String> = (1..=40).map(|i| row(&format!("E{i}"), &format!("u{i}"), "Engineering")).collect();
    env.write("a.csv", &format!("{HEADER}\n{}\n", rows.join("\n")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    // The payroll tickets for E40 are opened, and nobody works them before E40 leaves.
    env.ok(&["apply"]);
    let open = env.ok(&["tasks", "--format", "json"]).json();
    assert!(open.as_array().unwrap().iter().any(|t| t["identity"] == "E40"));
    env.write("b.csv", &format!("{HEADER}\n{}\n", rows[..39].join("\n")));
    let out = env.ok(&["import", "--source", "hr", "b.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["leavers"], 1);
    assert_eq!(out["counts"]["operations"], 0, "no disable for an account that was never created: {out}");
    assert_eq!(out["counts"]["cancelled"], 2, "{out}");
    let ops = env.ok(&["plan", "--identity", "E40", "--all", "--format", "json"]).json();
    assert!(ops.as_array().unwrap().iter().all(|o| o["state"] == "cancelled"), "{ops:#}");
    let tasks = env.ok(&["tasks", "--all", "--format", "json"]).json();
    let e40: Vec<&serde_json::Value> = tasks.as_array().unwrap().iter().filter(|t| t["identity"] == "E40").collect();
    assert_eq!(e40.len(), 2);
    assert!(e40.iter().all(|t| t["state"] == "withdrawn"), "{e40:#?}");
    let cases = env.ok(&["cases", "--format", "json"]).json();
    assert!(
        cases.as_array().unwrap().iter().filter(|c| c["identity"] == "E40").all(|c| c["state"] == "closed"),
        "{cases:#}"
    );
    let audit = env.ok(&["audit", "export", "--identity", "E40", "--format", "jsonl"]).stdout;
    assert_eq!(audit.matches("\"outcome\":\"cancelled\"").count(), 2, "{audit}");
    env.ok(&["audit", "verify"]);

    // A held batch approved later is planned the same way: queued joiner work is cancelled.
    let env = Env::new();
    manual_only(&env);
    env.write("a.csv", &format!("{HEADER}\n{}\n", rows.join("\n")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    env.write("b.csv", &format!("{HEADER}\n{}\n", rows[..10].join("\n")));
    env.expect(1, &["import", "--source", "hr", "b.csv"]);
    env.ok(&["approve", "1", "--as", "ciso"]);
    let ops = env.ok(&["plan", "--identity", "E40", "--all", "--format", "json"]).json();
    let kinds: Vec<(&str, &str)> =
        ops.as_array().unwrap().iter().map(|o| (o["kind"].as_str().unwrap(), o["state"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("create_account", "cancelled"), ("grant", "cancelled")], "nothing created then disabled");
}

/// A config whose directory points at a port nothing listens on, with one attempt per operation.
fn unreachable_directory(env: &Env) {
    let port = tenure_testkit::peers::free_port().unwrap();
    env.write("ldap.pw", "secret\n");
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let start = config.find("[[target]]").unwrap();
    let config = format!(
        "{}[[target]]\nname = \"directory\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{port}\"\n\
         bind_dn = \"cn=admin,dc=example,dc=com\"\npassword_file = \"{}\"\nusers_dn = \"ou=people,dc=example,dc=com\"\n\
         groups_dn = \"ou=groups,dc=example,dc=com\"\ndisabled_dn = \"ou=disabled,dc=example,dc=com\"\nmax_attempts = 1\n",
        &config[..start],
        env.path("ldap.pw").display()
    );
    env.write("tenure.toml", &config);
    env.write(
        "policy.toml",
        "[[role]]\nid = \"staff\"\nwhen = { status = \"active\" }\ngrant = [\"directory:staff\"]\n",
    );
    env.ok(&["check"]);
}

#[test]
fn issue6_failed_operations_can_be_retried_and_apply_exits_1_while_any_failed() {
    let env = Env::new();
    unreachable_directory(&env);
    env.write("a.csv", &format!("{HEADER}\n{}\n", row("E1", "ada", "Engineering")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    env.expect(1, &["apply", "--wait"]);
    let failed = |env: &Env| {
        let ops = env.ok(&["plan", "--all", "--format", "json"]).json();
        ops.as_array().unwrap().iter().filter(|o| o["state"] == "failed").count()
    };
    assert_eq!(failed(&env), 2, "the create and the grant behind it");
    // A second apply has nothing to do but failed operations remain: still exit 1.
    let again = env.expect(1, &["apply"]);
    assert!(again.stdout.contains("--retry-failed"), "{}", again.stdout);
    let out = env.expect(1, &["apply", "--retry-failed", "--as", "ops-lead", "--format", "json"]).json();
    assert_eq!(out["retried"], 2, "{out}");
    assert_eq!(out["report"]["attempts"], 1, "the create was tried again (and the grant waited behind it)");
    let audit = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"action\":\"apply.retry_failed\"") && l.contains("\"actor\":\"user:ops-lead\"")),
        "the retry is audited with who asked"
    );
    env.ok(&["audit", "verify"]);
}

#[test]
fn issue6_exit_statuses_match_the_readme() {
    let env = Env::new();
    // Usage errors: an unknown source, a missing config.
    let out = env.expect(2, &["import", "--source", "nope", "hr.csv"]);
    assert!(out.stderr.contains("unknown source `nope`"), "{}", out.stderr);
    let out = env.expect(2, &["--config", "missing.toml", "plan"]);
    assert!(out.stderr.contains("no config at `missing.toml`"), "{}", out.stderr);
    env.expect(2, &["plan", "--format", "xml"]);
    let out = env.expect(2, &["reconcile", "--target", "nope"]);
    assert!(out.stderr.contains("unknown target `nope`"), "{}", out.stderr);
    env.expect(2, &["apply", "--as", "bob"]);
    // The demo never overwrites a directory it did not make (checked before any peer starts).
    let out = env.expect(2, &["demo", "--dir", "."]);
    assert!(out.stderr.contains("is not a previous demo's directory"), "{}", out.stderr);
    assert!(env.path("tenure.toml").exists());
    // Findings that need action: rejected rows.
    env.write("bad.csv", &format!("{HEADER}\n,no,key,x@x.com,x,Sales,Rep,Tokyo,CC2,,employee,,,2022-01-01,,active\n"));
    env.expect(1, &["import", "--source", "hr", "bad.csv"]);
}

#[test]
fn issue6_identity_show_separates_verified_from_planned() {
    let env = Env::new();
    manual_only(&env);
    env.write("a.csv", &format!("{HEADER}\n{}\n", row("E1", "ada", "Engineering")));
    env.ok(&["import", "--source", "hr", "a.csv"]);
    let shown = env.ok(&["identity", "show", "E1", "--format", "json"]).json();
    let payroll = &shown["accounts"]["payroll"];
    assert_eq!(payroll["planned"]["enabled"], true);
    assert_eq!(payroll["verified"]["exists"], false, "nothing was created yet: {payroll}");
    assert_eq!(payroll["open_operations"], 2);
    let text = env.ok(&["identity", "show", "E1"]).stdout;
    let line = text.lines().find(|l| l.trim_start().starts_with("payroll")).unwrap();
    assert!(line.contains("no account") && line.contains("enabled: employee-record"), "{text}");
    // Once the tickets are done with evidence, the account is verified.
    env.ok(&["apply"]);
    for t in env.ok(&["tasks", "--format", "json"]).json().as_array().unwrap() {
        env.ok(&["task", "done", &t["id"].to_string(), "--evidence", "done in the payroll UI"]);
    }
    let shown = env.ok(&["identity", "show", "E1", "--format", "json"]).json();
    assert_eq!(shown["accounts"]["payroll"]["verified"]["enabled"], true);
    assert_eq!(shown["accounts"]["payroll"]["verified"]["grants"][0], "employee-record");
}

#[test]
fn issue6_check_says_which_entitlements_it_could_not_check() {
    let env = Env::new();
    let out = env.ok(&["check"]);
    assert!(
        out.stdout.contains("not checked: the entitlements the policy grants in `directory`, `chat`, `warehouse`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tenure check --online"), "{}", out.stdout);
    let json = env.ok(&["check", "--format", "json"]).json();
    assert_eq!(json["unchecked_targets"], serde_json::json!(["directory", "chat", "warehouse"]));
}

#[test]
fn issue6_the_starter_policy_gives_service_accounts_only_their_own_role() {
    let env = Env::new();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    let hr = std::fs::read_to_string(env.path("hr.csv")).unwrap();
    let services: Vec<&str> =
        hr.lines().filter(|l| l.contains(",service,")).map(|l| l.split(',').next().unwrap()).collect();
    assert!(!services.is_empty());
    for s in services {
        assert_eq!(env.pending(s), ["warehouse create_account", "warehouse grant analyst"], "{s}");
    }
    // `other.toml`, which the tour simulates, exists and changes something.
    let sim = env.ok(&["simulate", "--policy", "other.toml", "--format", "json"]).json();
    assert!(sim["affected"].as_u64().unwrap() > 0, "{sim}");
}

#[test]
fn issue6_a_closed_pipe_ends_an_export_quietly() {
    let env = Env::new();
    env.ok(&["import", "--source", "hr", "hr.csv"]);
    for format in ["csv", "jsonl"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; '{}' audit export --format {format} | head -n 1",
                env!("CARGO_BIN_EXE_tenure")
            ))
            .current_dir(env.dir.path())
            .env("TENURE_TODAY", crate::TODAY)
            .env_remove("TENURE_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn issue6_documents_cite_only_files_that_exist_and_the_license_matches() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("a LICENSE file");
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"Apache-2.0\""));
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    let listed = std::process::Command::new("git").args(["ls-files", "*.md"]).current_dir(&root).output().unwrap();
    let docs: Vec<String> = String::from_utf8_lossy(&listed.stdout).lines().map(str::to_string).collect();
    assert!(docs.len() >= 3, "{docs:?}");
    for doc in &docs {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(
            // Spelled in two parts so this file does not itself cite the design notes.
            !text.contains(concat!("DESIGN", ".md")) && !text.contains(concat!("DESIGN", " §")),
            "{doc} cites the design, which is not in the repository"
        );
        for token in text.split(|c: char| c.is_whitespace() || "`()[],;:\"'".contains(c)) {
            let token = token.trim_end_matches('.');
            let looks_like_path = ["crates/", "scripts/", ".ci/", "docs/"].iter().any(|p| token.starts_with(p))
                || (token.ends_with(".md")
                    && !token.contains('/')
                    && token.chars().next().is_some_and(char::is_uppercase));
            if looks_like_path && !token.contains('*') && !token.contains("NNNN") {
                assert!(root.join(token).exists(), "{doc} cites `{token}`, which is not in the repository");
            }
        }
    }
}

#[test]
fn issue7_errors_have_stable_codes_and_one_body() {
    let env = Env::new();
    for (args, code, exit) in [
        (vec!["--config", "missing.toml", "plan"], "usage", 2),
        (vec!["import", "--source", "nope", "hr.csv"], "unknown_source", 2),
        (vec!["approve", "99"], "not_found", 1),
        (vec!["reject", "99", "--reason", "x"], "conflict", 1),
    ] {
        let mut args = args.clone();
        args.extend(["--format", "json"]);
        let out = env.expect(exit, &args);
        let body = out.json();
        assert_eq!(body["code"], code, "{args:?}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "only code and message: {body}");
    }
    env.write("policy.toml", "[[role]]\nid = \"x\"\nwhen = { departmnet = \"Sales\" }\ngrant = [\"chat:x\"]\n");
    let out = env.expect(1, &["import", "--source", "hr", "hr.csv", "--format", "json"]);
    assert_eq!(out.json()["code"], "policy_invalid");
}

#[test]
fn issue6_a_key_with_an_invisible_or_look_alike_character_is_not_trusted() {
    for corrupt in ["E40\u{a0}", "E40\u{2028}", "E4\u{3164}0", "\u{415}40", "E4\u{61c}0", "E4\u{e0041}0"] {
        let env = Env::new();
        let rows = forty(&env);
        let mut changed = rows[..39].to_vec();
        changed.push(rows[39].replacen("E40", corrupt, 1));
        env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
        let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json", "--dry-run"]).json();
        assert_eq!(out["outcome"], "held", "{corrupt:?}: {out}");
        assert_eq!(out["counts"]["joiners"], 0, "no look-alike joiner: {out}");
        assert_eq!(status(&env, "E40"), "active");
    }
}

#[test]
fn issue6_a_mistyped_key_never_creates_a_leaver() {
    let env = Env::new();
    let rows = forty(&env);
    // E5's key loses a character: a "new" person with E5's login and email, and E5 missing.
    let mut changed = rows;
    changed[4] = changed[4].replacen("E5,", "E05,", 1);
    env.write("b.csv", &format!("{HEADER}\n{}\n", changed.join("\n")));
    let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["joiners"], 0, "{out}");
    assert!(out["rejected"][0]["reason"].as_str().unwrap().contains("username `u5` belongs to identity `E5`"), "{out}");
    assert_eq!(out["outcome"], "held", "{out}");
    assert_eq!(status(&env, "E5"), "active");
}

#[test]
fn issue6_a_cut_off_last_record_is_never_applied() {
    let env = Env::new();
    // The department is the last column, so a cut inside it leaves a plausible value.
    let header = "employee_id,first_name,last_name,work_email,login,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status,dept";
    let rows: Vec<String> = (1..=40)
        .map(|i| format!("E{i},N,L,u{i}@x.com,u{i},Lead,Berlin,CC1,,employee,,,2020-01-01,,active,Engineering"))
        .collect();
    let full = format!("{header}\n{}\n", rows.join("\n"));
    env.write("a.csv", &full);
    env.ok(&["import", "--source", "hr", "a.csv"]);
    env.write("b.csv", &full[..full.len() - 9]); // ends `...,active,Eng`
    let out = env.expect(1, &["import", "--source", "hr", "b.csv", "--format", "json"]).json();
    assert_eq!(out["counts"]["movers"], 0, "{out}");
    let r = &out["rejected"][0];
    assert_eq!(r["key"], "E40");
    assert!(r["reason"].as_str().unwrap().contains("may be incomplete"), "{r}");
    let e40 = env.ok(&["identity", "show", "E40", "--format", "json"]).json();
    assert_eq!(e40["attributes"]["department"], "Engineering");
}

#[test]
fn issue6_operator_input_reaches_output_and_the_audit_escaped() {
    let env = Env::new();
    forty(&env);
    env.write("c\u{1b}[31mut.csv", &format!("{HEADER}\n{}\n", row("E1", "u1", "Engineering")));
    let out = env.expect(1, &["import", "--source", "hr", "c\u{1b}[31mut.csv"]);
    assert!(!out.stdout.contains('\u{1b}'), "file name escaped: {}", out.stdout);
    let id = env.ok(&["approvals", "--format", "json"]).json()[0]["id"].to_string();
    let out = env.ok(&["reject", &id, "--reason", "bad\u{1b}[2J\u{1b}[31mRED\u{202e}", "--as", "mal\u{1b}[1mlory"]);
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
    let shown = env.ok(&["approvals", "--all"]).stdout;
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'), "{shown}");
    let audit = env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(!audit.contains("\\u001b") && !audit.contains('\u{202e}'), "the chain stores escapes, not control bytes");
    assert!(audit.contains("mal\\\\u{1b}[1mlory"), "who rejected is still recorded, escaped");
    env.ok(&["audit", "verify"]);
}

#[test]
fn issue6_a_held_batch_can_be_approved_after_another_source_took_one_of_its_identities() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("tenure.toml")).unwrap();
    let second = tenure_testkit::company::SOURCE_TOML.replace("name = \"hr\"", "name = \"contractors\"");
    env.write("tenure.toml", &format!("{config}\n{second}"));
    forty(&env);
    // A held batch: most people leave, and K1 joins.
    let rows: Vec<String> = (1..=10).map(|i| row(&format!("E{i}"), &format!("u{i}"), "Engineering")).collect();
    env.write("b.csv", &format!("{HEADER}\n{}\n{}\n", rows.join("\n"), row("K1", "k1", "Sales")));
    env.expect(1, &["import", "--source", "hr", "b.csv"]);
    // Meanwhile the contractors feed brings K1.
    env.write("c.csv", &format!("{HEADER}\n{}\n", row("K1", "k1", "Sales")));
    env.ok(&["import", "--source", "contractors", "c.csv"]);
    let out = env.ok(&["approve", "1", "--as", "ciso"]);
    assert!(out.stdout.contains("approved by ciso"), "{}", out.stdout);
    assert_eq!(status(&env, "E40"), "terminated", "the rest of the batch was released");
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let source: String = db.query_row("SELECT source FROM identities WHERE id = 'K1'", [], |r| r.get(0)).unwrap();
    assert_eq!(source, "contractors");
    let audit = env.ok(&["audit", "export", "--identity", "K1", "--format", "jsonl"]).stdout;
    assert!(audit.contains("approval.event_skipped"), "{audit}");
}

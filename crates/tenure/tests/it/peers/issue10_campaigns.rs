//! Issue 10, certification campaigns, against the real OpenLDAP peer: a campaign over
//! `target:directory` reviewed by managers; a `revoke` removes the membership from slapd
//! (checked with ldapsearch), a `keep` leaves it, an unreviewed item follows `on_timeout` at the
//! due date (time moved with `TENURE_NOW`), and the CSV export has one row per item with the
//! documented columns. Also: only the reviewer decides, a reason is required, a decided item and a
//! closed campaign are refused, and a later import does not grant the revoked access again.

use super::world;
use crate::company;

fn members(w: &super::World, group: &str) -> String {
    w.ldap("ou=groups,dc=example,dc=com", &format!("(cn={group})"), &["member"])
}

fn member_line(w: &super::World, username: &str) -> String {
    format!("member: uid={username},{}", w.stack.ldap.users_dn)
}

#[test]
fn issue10_a_campaign_over_the_directory_revokes_keeps_and_times_out_on_the_real_directory() {
    let w = world(25);
    let mut co = company(12);
    let x = co.hire("Engineering");
    let k = co.hire("Engineering");
    let manager = co.get(&x).unwrap().manager.clone().unwrap();
    let manager_name = w.username(&co, &manager);
    let (x_name, k_name) = (w.username(&co, &x), w.username(&co, &k));
    w.import("day1.csv", &co);
    w.apply_all();
    assert!(members(&w, "engineers").contains(&member_line(&w, &x_name)), "{}", members(&w, "engineers"));
    assert!(members(&w, "engineers").contains(&member_line(&w, &k_name)));

    // Bad input creates nothing.
    let bad = w.env.expect(
        1,
        &[
            "campaign",
            "create",
            "--name",
            "Q4",
            "--scope",
            "target:nowhere",
            "--reviewer",
            "manager",
            "--due",
            "2030-01-01",
        ],
    );
    assert!(bad.stderr.contains("unknown target `nowhere`"), "{}", bad.stderr);
    let bad = w.env.expect(
        1,
        &[
            "campaign",
            "create",
            "--name",
            "Q4",
            "--scope",
            "target:directory",
            "--reviewer",
            "boss",
            "--due",
            "2030-01-01",
        ],
    );
    assert!(bad.stderr.contains("expected `manager` or `owner:NAME`"), "{}", bad.stderr);
    let bad = w.env.expect(
        1,
        &[
            "campaign",
            "create",
            "--name",
            "Q4",
            "--scope",
            "target:directory",
            "--reviewer",
            "manager",
            "--due",
            "2020-01-01",
        ],
    );
    assert!(bad.stderr.contains("is not in the future"), "{}", bad.stderr);
    assert_eq!(w.env.ok(&["campaign", "list", "--format", "json"]).json(), serde_json::json!([]));

    let created = w
        .env
        .ok(&[
            "campaign",
            "create",
            "--name",
            "Q4 directory",
            "--scope",
            "target:directory",
            "--reviewer",
            "manager",
            "--due",
            "2030-01-01",
            "--on-timeout",
            "revoke",
            "--format",
            "json",
        ])
        .json();
    let id = created["id"].as_i64().unwrap().to_string();
    let shown = w.env.ok(&["campaign", "show", &id, "--format", "json"]).json();
    let items = shown["items"].as_array().unwrap().clone();
    assert_eq!(items.len() as u64, created["items"].as_u64().unwrap());
    let item = |who: &str, ent: &str| -> serde_json::Value {
        items.iter().find(|i| i["identity"] == who && i["entitlement"] == ent).cloned().unwrap()
    };
    // One item per identity and entitlement held in the directory, with the roles behind it,
    // reviewed by the identity's manager.
    let x_eng = item(&x, "directory:engineers");
    let x_staff = item(&x, "directory:staff");
    let k_eng = item(&k, "directory:engineers");
    assert_eq!(x_eng["why"], serde_json::json!(["engineering"]));
    assert_eq!(x_staff["why"], serde_json::json!(["staff"]));
    assert_eq!(x_eng["reviewer"], manager.as_str());
    for i in &items {
        let p = co.get(i["identity"].as_str().unwrap()).unwrap();
        if let Some(m) = &p.manager {
            assert_eq!(i["reviewer"], m.as_str(), "{i}");
        }
        assert!(i["entitlement"].as_str().unwrap().starts_with("directory:"), "{i}");
    }
    let (x_eng, x_staff, k_eng) =
        (x_eng["id"].to_string(), x_staff["id"].to_string(), k_eng["id"].as_i64().unwrap().to_string());

    // Only the reviewer decides, and only with a reason.
    let other = w.env.expect(1, &["review", &x_eng, "--revoke", "--reason", "no", "--as", &x_name]);
    assert!(other.stderr.contains("may not decide"), "{}", other.stderr);
    let no_reason = w.env.expect(2, &["review", &x_eng, "--revoke", "--as", &manager_name]);
    assert!(no_reason.stderr.contains("--reason"), "{}", no_reason.stderr);
    let blank = w.env.expect(1, &["review", &x_eng, "--revoke", "--reason", "  ", "--as", &manager_name]);
    assert!(blank.stderr.contains("needs a reason"), "{}", blank.stderr);

    let revoked =
        w.env.ok(&["review", &x_eng, "--revoke", "--reason", "moved off the platform team", "--as", &manager_name]);
    assert!(revoked.stdout.contains("1 revocation(s) planned"), "{}", revoked.stdout);
    w.env.ok(&["review", &x_staff, "--keep", "--reason", "still works here", "--as", &manager]);
    let twice = w.env.expect(1, &["review", &x_eng, "--keep", "--reason", "changed my mind", "--as", &manager_name]);
    assert!(twice.stderr.contains("was decided already"), "{}", twice.stderr);

    // The revocation is applied and verified like any other: gone from the real directory,
    // while the kept membership stays.
    w.apply_all();
    assert!(!members(&w, "engineers").contains(&member_line(&w, &x_name)), "{}", members(&w, "engineers"));
    assert!(members(&w, "staff").contains(&member_line(&w, &x_name)), "{}", members(&w, "staff"));
    let shown = w.env.ok(&["campaign", "show", &id, "--format", "json"]).json();
    let by_id = |id: &str| {
        shown["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"].as_i64().map(|n| n.to_string()).as_deref() == Some(id))
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(&x_eng)["outcome"], "revoked");
    assert!(by_id(&x_eng)["applied_at"].is_string(), "verified: {}", by_id(&x_eng));
    assert_eq!(by_id(&x_staff)["outcome"], "kept");
    let exceptions = w.env.ok(&["exceptions", "--format", "json"]).json();
    let exc = exceptions.as_array().unwrap().iter().find(|e| e["subject"] == format!("review:{x_eng}")).cloned();
    let exc = exc.expect("the deviation from policy is on the register");
    assert_eq!((exc["kind"].as_str(), exc["owner"].as_str()), (Some("manual_override"), Some(manager.as_str())));

    // It stays revoked: a later import that changes the identity plans no grant of it again, and
    // reconciliation finds nothing to put back.
    co.get_mut(&x).unwrap().title = "Staff Engineer".into();
    w.import("day2.csv", &co);
    let pending = w.env.pending(&x);
    assert!(!pending.iter().any(|p| p.contains("engineers")), "{pending:?}");
    let recon = w.env.run(&["reconcile", "--target", "directory", "--format", "json"]).json();
    let findings = recon["targets"][0]["findings"].as_array().unwrap();
    assert!(!findings.iter().any(|f| f["identity"] == x.as_str()), "{findings:?}");

    // The due date passes with items unreviewed: they take `on_timeout = revoke`, decided by the
    // schedule. So many revocations at once are held by the guard until a person approves.
    let after_due = "2030-01-02T00:05:00Z";
    let pass = w.env.run_at(after_due, &["schedule", "run-once", "--job", "campaigns", "--format", "json"]);
    assert_eq!(pass.code, 0, "{}\n{}", pass.stdout, pass.stderr);
    let detail = pass.json()["jobs"][0]["detail"].as_str().unwrap().to_string();
    assert!(detail.contains(&format!("on_timeout applied to campaign(s) {id}")), "{detail}");
    assert!(detail.contains("held for approval"), "{detail}");
    assert!(members(&w, "engineers").contains(&member_line(&w, &k_name)), "held: nothing revoked yet");
    let approvals = w.env.run_at("2030-01-02T00:06:00Z", &["approvals", "--format", "json"]).json();
    let approval = approvals.as_array().unwrap().iter().find(|a| a["summary"]["source"] == "campaign").cloned();
    let approval = approval.expect("a held campaign batch").get("id").unwrap().to_string();
    let ok = w.env.run_at("2030-01-02T00:07:00Z", &["approve", &approval, "--as", "security-lead"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let applied = w.env.run_at("2030-01-02T00:08:00Z", &["apply", "--wait"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(!members(&w, "engineers").contains(&member_line(&w, &k_name)), "{}", members(&w, "engineers"));
    assert!(members(&w, "staff").contains(&member_line(&w, &x_name)), "the kept item stays");

    // Closed: nothing more changes.
    let closed = w.env.run_at("2030-01-02T00:09:00Z", &["campaign", "close", &id, "--as", "security-lead"]);
    assert_eq!(closed.code, 0, "{}", closed.stderr);
    let again = w.env.run_at("2030-01-02T00:09:30Z", &["campaign", "close", &id]);
    assert!(again.code == 1 && again.stderr.contains("closed already"), "{}", again.stderr);
    let late =
        w.env.run_at("2030-01-02T00:10:00Z", &["review", &k_eng, "--keep", "--reason", "late", "--as", &manager]);
    assert!(late.code == 1 && late.stderr.contains("is closed"), "{}", late.stderr);

    // The export: the documented columns, one row per item.
    let export = w.env.run_at("2030-01-02T00:11:00Z", &["campaign", "export", &id, "--format", "csv"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut r = csv::Reader::from_reader(export.stdout.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        [
            "campaign",
            "item",
            "identity",
            "entitlement",
            "why",
            "reviewer",
            "decision",
            "justification",
            "decided_at",
            "applied_by",
            "applied_at",
            "outcome"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), items.len(), "one row per item");
    let row = |item: &str| rows.iter().find(|r| &r[1] == item).cloned().unwrap();
    let revoked = row(&x_eng);
    assert_eq!((&revoked[0], &revoked[2], &revoked[3]), ("Q4 directory", x.as_str(), "directory:engineers"));
    assert_eq!((&revoked[4], &revoked[5], &revoked[6]), ("engineering", manager.as_str(), "revoke"));
    let planned_by = format!("user:{manager_name}");
    assert_eq!(
        (&revoked[7], &revoked[9], &revoked[11]),
        ("moved off the platform team", planned_by.as_str(), "revoked")
    );
    assert!(!revoked[8].is_empty() && !revoked[10].is_empty(), "{revoked:?}");
    assert_eq!((&row(&x_staff)[6], &row(&x_staff)[11]), ("keep", "kept"));
    let timed_out = row(&k_eng);
    assert_eq!((&timed_out[6], &timed_out[11]), ("revoke", "revoked"));
    assert!(timed_out[7].contains("not reviewed by the due date"), "{timed_out:?}");

    // Everything is audited: creation, each decision with its reviewer, the timeout, the close.
    let audit = w.env.run_at("2030-01-02T00:12:00Z", &["audit", "export", "--format", "jsonl"]);
    let records: Vec<serde_json::Value> = audit.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |action: &str| records.iter().filter(|r| r["action"] == action).collect::<Vec<_>>();
    assert_eq!(find("campaign.create").len(), 1);
    let by_manager: Vec<_> = find("review.revoke").into_iter().filter(|r| r["approver"] == manager.as_str()).collect();
    assert_eq!(by_manager.len(), 1, "the manager's revoke, with them as the approver");
    assert_eq!(by_manager[0]["entitlement"], "engineers");
    assert!(find("review.keep").iter().any(|r| r["approver"] == manager.as_str()));
    let timeout = find("campaign.timeout");
    assert_eq!(timeout.len(), 1);
    assert_eq!(timeout[0]["actor"], "schedule:campaigns");
    assert!(find("review.revoke").iter().any(|r| r["actor"] == "schedule:campaigns"));
    assert_eq!(find("campaign.close")[0]["approver"], "security-lead");
    assert_eq!(w.env.ok(&["audit", "verify"]).code, 0);
}

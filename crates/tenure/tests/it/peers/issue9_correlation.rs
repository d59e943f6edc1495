//! Issue 9, point 5: brownfield correlation against real slapd. A directory populated by hand
//! before Tenure's first import yields linked accounts (by employee number, username and email,
//! compared normalised) and correlation cases (two accounts claiming one identity, a fuzzy name
//! below the threshold); nothing is planned for the undecided ones — no account is created for
//! their candidates and the accounts are left exactly as they were — until a person decides,
//! which is audited. Every check reads the directory with `ldapsearch`, not through Tenure.

use super::{World, world};
use crate::company;

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const GROUPS: &str = "ou=groups,dc=example,dc=com";

fn person(co: &mut tenure_testkit::company::Company, given: &str, family: &str, username: &str) -> String {
    let id = co.hire("Engineering");
    let p = co.get_mut(&id).unwrap();
    p.given = given.into();
    p.family = family.into();
    p.username = username.into();
    p.email = format!("{username}@example.com");
    id
}

fn entry(w: &World, uid: &str, extra: &str) {
    w.ldap_modify(&format!(
        "dn: uid={uid},{PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n{extra}"
    ));
}

/// The undecided accounts and every group that names them, as ldapsearch prints them.
fn undecided(w: &World, uids: &[&str]) -> String {
    let any: String = uids.iter().map(|u| format!("(uid={u})")).collect();
    let members: String = uids.iter().map(|u| format!("(member=uid={u},{PEOPLE})")).collect();
    format!(
        "{}\n{}",
        w.ldap(PEOPLE, &format!("(|{any})"), &["*", "+"])
            .lines()
            .filter(|l| !l.starts_with("entryCSN"))
            .collect::<Vec<_>>()
            .join("\n"),
        w.ldap(GROUPS, &format!("(|{members})"), &["cn", "member"])
    )
}

fn case_of<'a>(cases: &'a serde_json::Value, account: &str) -> &'a serde_json::Value {
    cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["account"] == account)
        .unwrap_or_else(|| panic!("no case for {account}: {cases:#}"))
}

#[test]
fn issue9_a_populated_directory_yields_links_and_cases_and_nothing_undecided_is_touched() {
    let w = world(25);
    let mut co = company(6);
    let by_name = person(&mut co, "Ada", "Quill", "aquill");
    let by_number = person(&mut co, "Bea", "Rund", "brund");
    let by_email = person(&mut co, "Cy", "Ortiz", "cortiz");
    let claimed = person(&mut co, "Dana", "Voss", "dvoss");
    let fuzzy = person(&mut co, "Zoë", "Quist", "zq");
    // By hand, before Tenure: Ada's login under her username (in a book club nobody manages),
    // Bea's under another name carrying her employee number, Cy's found by an email written in
    // capitals, two logins both carrying Dana's email, one that looks like Zoë's name, a printer.
    entry(&w, "aquill", "");
    w.ldap_modify(&format!(
        "dn: cn=book-club,{GROUPS}\nchangetype: add\nobjectClass: groupOfNames\ncn: book-club\nmember: uid=aquill,{PEOPLE}\n"
    ));
    entry(&w, "bea-legacy", &format!("employeeNumber: {by_number}\n"));
    entry(&w, "cyo", "mail: CY.ORTIZ@EXAMPLE.COM\n");
    co.get_mut(&by_email).unwrap().email = "cy.ortiz@example.com".into();
    entry(&w, "dup1", "mail: dvoss@example.com\n");
    entry(&w, "dup2", "mail: dvoss@example.com\n");
    entry(&w, "zoe.quist", "");
    entry(&w, "printer", "employeeNumber: SVC-PRINT\n");
    let untouched = ["dup1", "dup2", "zoe.quist", "printer"];
    let before = undecided(&w, &untouched);
    let before_orphans = undecided(&w, &["dup1", "printer"]);

    let report = w.import("day1.csv", &co);
    assert_eq!(report["outcome"], "applied", "{report:#}");
    let dir = report["correlation"].as_array().unwrap().iter().find(|c| c["target"] == "directory").unwrap();
    assert_eq!((dir["accounts"].as_u64(), dir["linked"].as_u64()), (Some(7), Some(3)), "{dir:#}");
    assert_eq!((dir["cases"].as_u64(), dir["unmatched"].as_u64()), (Some(3), Some(1)), "{dir:#}");
    let held: Vec<(String, String)> = report["held_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["identity"].as_str().unwrap().to_string(), h["target"].as_str().unwrap().to_string()))
        .collect();
    for id in [&claimed, &fuzzy] {
        assert!(held.contains(&(id.clone(), "directory".into())), "{id} is held back: {report:#}");
    }
    assert!(!held.iter().any(|(_, t)| t != "directory"), "held back only where the case is: {held:?}");

    let cases = w.env.ok(&["correlations", "--open", "--format", "json"]).json();
    assert_eq!(cases.as_array().unwrap().len(), 3, "{cases:#}");
    for dup in ["dup1", "dup2"] {
        let c = case_of(&cases, dup);
        assert_eq!(c["candidates"], serde_json::json!([{"identity": claimed, "rule": "email", "confidence": 0.95}]));
        assert!(c["why"].as_str().unwrap().contains("another account also matches"), "{c:#}");
    }
    let z = case_of(&cases, "zoe.quist");
    assert_eq!(z["candidates"], serde_json::json!([{"identity": fuzzy, "rule": "name", "confidence": 0.8}]));

    w.apply_all();
    // Linked: the hand-made accounts got the policy's groups; no second account was created.
    let staff = w.ldap(GROUPS, "(cn=staff)", &["member"]);
    for uid in ["aquill", "bea-legacy", "cyo"] {
        assert!(staff.contains(&format!("member: uid={uid},{PEOPLE}")), "{uid} in staff: {staff}");
    }
    let club = w.ldap(GROUPS, "(cn=book-club)", &["member"]);
    assert!(club.contains("uid=aquill"), "an unmanaged membership of a linked account stays: {club}");
    for uid in ["brund", "cortiz", "dvoss", "zq"] {
        assert!(w.ldap(PEOPLE, &format!("(uid={uid})"), &["dn"]).trim().is_empty(), "no duplicate `{uid}` created");
    }
    // Undecided: exactly as they were, and their candidates got nothing in the directory (but
    // the other targets, where nothing is in doubt, provisioned them).
    assert_eq!(undecided(&w, &untouched), before, "nothing undecided is touched");
    let plan = w.env.ok(&["plan", "--identity", &claimed, "--all", "--format", "json"]).json();
    let targets: Vec<&str> = plan.as_array().unwrap().iter().map(|o| o["target"].as_str().unwrap()).collect();
    assert!(!targets.contains(&"directory") && targets.contains(&"chat"), "{plan:#}");

    // Reconciliation reports the undecided accounts as orphans naming their case, and fixes none.
    let zid = z["id"].as_i64().unwrap().to_string();
    let rec = w.env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let f = rec["targets"][0]["findings"].as_array().unwrap().iter().find(|f| f["account"] == "zoe.quist").unwrap();
    assert_eq!(f["kind"], "orphan", "{f}");
    assert!(
        f["detail"].as_str().unwrap().contains(&format!("(correlation case {zid}, open: `tenure correlate {zid}`)")),
        "{f}"
    );

    // Bad decisions are refused and change nothing.
    let out = w.env.expect(1, &["correlate", "999", "--to", &fuzzy]);
    assert!(out.stderr.contains("no correlation case 999"), "{}", out.stderr);
    let out = w.env.expect(1, &["correlate", &zid, "--to", "NOBODY"]);
    assert!(out.stderr.contains("no identity `NOBODY`"), "{}", out.stderr);
    let out = w.env.expect(1, &["correlate", &zid, "--to", &by_name]);
    assert!(out.stderr.contains("already has account `aquill`"), "{}", out.stderr);
    w.env.expect(2, &["correlate", &zid, "--orphan"]);
    w.env.expect(2, &["correlate", &zid]);
    w.env.expect(2, &["correlate", &zid, "--to", &fuzzy, "--orphan", "--reason", "x"]);
    assert_eq!(w.env.ok(&["correlations", "--open", "--format", "json"]).json(), cases, "nothing changed");

    // A person decides: Zoë's and one of Dana's logins are theirs, the other is nobody's.
    let out = w.env.ok(&["correlate", &zid, "--to", &fuzzy, "--reason", "Zoë confirmed it", "--as", "alice"]);
    assert!(out.stdout.contains(&format!("linked to `{fuzzy}` by alice")), "{}", out.stdout);
    let d1 = case_of(&cases, "dup1")["id"].as_i64().unwrap().to_string();
    let d2 = case_of(&cases, "dup2")["id"].as_i64().unwrap().to_string();
    w.env.ok(&["correlate", &d1, "--orphan", "--reason", "an old test login", "--as", "alice"]);
    w.env.ok(&["correlate", &d2, "--to", &claimed, "--as", "bob"]);
    let out = w.env.expect(1, &["correlate", &d1, "--to", &claimed]);
    assert!(out.stderr.contains("was decided already (orphaned by alice"), "{}", out.stderr);
    assert_eq!(w.env.ok(&["correlations", "--open"]).stdout.trim(), "no open correlation cases");

    w.apply_all();
    let staff = w.ldap(GROUPS, "(cn=staff)", &["member"]);
    for uid in ["zoe.quist", "dup2"] {
        assert!(staff.contains(&format!("member: uid={uid},{PEOPLE}")), "decided `{uid}` is managed now: {staff}");
    }
    assert_eq!(undecided(&w, &["dup1", "printer"]), before_orphans);
    for uid in ["dvoss", "zq"] {
        assert!(w.ldap(PEOPLE, &format!("(uid={uid})"), &["dn"]).trim().is_empty(), "still no duplicate `{uid}`");
    }

    // Audited: who decided what, and which candidates were refused.
    let audit = w.env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let decided: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "correlation.decided")
        .collect();
    assert_eq!(decided.len(), 3, "one record per decision, none for the refusals: {decided:#?}");
    let orphaned = decided.iter().find(|r| r["outcome"] == "orphaned").unwrap();
    assert_eq!(orphaned["actor"], "user:alice");
    let reason = orphaned["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("candidates refused: {claimed} (email 0.95)")), "{reason}");
    assert!(reason.contains("an old test login"), "{reason}");
    let linked = decided.iter().find(|r| r["identity"] == fuzzy.as_str()).unwrap();
    assert!(linked["reason"].as_str().unwrap().contains("a candidate (name 0.80)"), "{linked:#}");
    assert!(
        audit.lines().filter(|l| l.contains("\"correlation.linked\"")).count() >= 3,
        "the rules' links are audited"
    );

    // `explain --live` says how each account was found.
    let x = w.env.ok(&["explain", &by_number, "--target", "directory", "--live", "--format", "json"]).json();
    let how = x["targets"]["directory"]["live"]["correlated_by"].as_str().unwrap();
    assert!(how.starts_with("linked by correlation rule `employee_number` (confidence 1.00)"), "{how}");
    let x = w.env.ok(&["explain", &fuzzy, "--target", "directory", "--live", "--format", "json"]).json();
    let how = x["targets"]["directory"]["live"]["correlated_by"].as_str().unwrap();
    assert!(how.starts_with(&format!("linked by user:alice deciding correlation case {zid}")), "{how}");

    // Reconciliation: the orphaned login and the printer are orphans, never fixed.
    let rec = w.env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    let findings = rec["targets"][0]["findings"].as_array().unwrap();
    for uid in ["dup1", "printer"] {
        let f = findings.iter().find(|f| f["account"] == uid).unwrap_or_else(|| panic!("{uid}: {rec:#}"));
        assert_eq!(f["kind"], "orphan", "{f}");
    }
    let f = findings.iter().find(|f| f["account"] == "dup1").unwrap();
    assert!(f["detail"].as_str().unwrap().ends_with(&format!("(correlation case {d1}, orphaned)")), "{f}");
    assert!(
        !findings.iter().any(|f| f["kind"] != "orphan"),
        "the linked accounts are exactly as the policy wants: {findings:#?}"
    );
    w.apply_all();
    assert_eq!(undecided(&w, &["dup1", "printer"]), before_orphans);
    w.env.ok(&["audit", "verify"]);
}

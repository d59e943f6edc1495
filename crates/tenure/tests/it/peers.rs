//! Joiner, mover, leaver and rehire end to end against real OpenLDAP, scim2-server and
//! PostgreSQL plus a manual target; failures mid-apply; reconciliation. After each step the
//! peers are queried directly (ldapsearch, plain HTTP, psql), never through Tenure.

mod issue10_campaigns;
mod issue10_nhi;
mod issue10_requests;
mod issue6_secrets;
mod issue8_schedule;
mod issue9_correlation;

use crate::{Env, TODAY, company};
use std::process::Command;
use std::time::{Duration, Instant};
use tenure_testkit::company::Company;
use tenure_testkit::stack::Stack;

struct World {
    env: Env,
    stack: Stack,
}

fn world(max_leavers: u64) -> World {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(max_leavers));
    env.ok(&["check"]);
    World { env, stack }
}

impl World {
    fn import(&self, name: &str, co: &Company) -> serde_json::Value {
        self.env.write(name, &co.to_csv());
        let out = self.env.run(&["import", "--source", "hr", name, "--format", "json"]);
        assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
        out.json()
    }

    /// `apply --wait`, then finishes every manual ticket as the payroll team would.
    fn apply_all(&self) {
        self.env.ok(&["apply", "--wait"]);
        let tickets = self.env.ok(&["tasks", "--format", "json"]).json();
        for t in tickets.as_array().unwrap() {
            let id = t["id"].as_i64().unwrap().to_string();
            self.env.ok(&["task", "done", &id, "--evidence", "done in the payroll UI", "--as", "payroll-admin"]);
        }
    }

    fn ldap(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        let l = &self.stack.ldap;
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &l.url, "-D", &l.bind_dn, "-y"])
            .arg(&l.password_file)
            .args(["-b", base, filter])
            .args(attrs)
            .output()
            .unwrap();
        assert!(
            out.status.success() || out.status.code() == Some(32),
            "ldapsearch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ldap_modify(&self, ldif: &str) {
        let l = &self.stack.ldap;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &l.url, "-D", &l.bind_dn, "-y"])
            .arg(&l.password_file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "ldapmodify failed for\n{ldif}");
    }

    fn scim(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.stack.scim.url());
        let token = self.stack.scim.token().to_string();
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    }

    fn scim_user(&self, user_name: &str) -> Option<serde_json::Value> {
        let filter = format!("userName eq \"{user_name}\"");
        let v = self.scim(&format!("/Users?filter={}", urlencode(&filter)));
        v["Resources"].as_array().and_then(|r| r.first().cloned())
    }

    fn scim_groups_of(&self, user_id: &str) -> Vec<String> {
        let v = self.scim("/Groups?count=1000");
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["members"].as_array().is_some_and(|m| m.iter().any(|x| x["value"] == user_id)))
            .map(|g| g["displayName"].as_str().unwrap().to_string())
            .collect()
    }

    fn pg(&self, sql: &str) -> String {
        self.stack.psql(sql).unwrap().trim().to_string()
    }

    fn username(&self, co: &Company, id: &str) -> String {
        co.get(id).unwrap().username.clone()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn joiner_mover_leaver_rehire_against_real_peers() {
    let w = world(25);
    let mut co = company(12);
    let mover = co.hire("Engineering");
    let leaver = co.hire("Engineering");
    let (mover_name, leaver_name) = (w.username(&co, &mover), w.username(&co, &leaver));

    // Day 1: joiners.
    w.import("day1.csv", &co);
    w.apply_all();
    let entry = w.ldap("ou=people,dc=example,dc=com", &format!("(uid={mover_name})"), &["employeeNumber"]);
    assert!(entry.contains(&format!("employeeNumber: {mover}")), "{entry}");
    let engineers = w.ldap("ou=groups,dc=example,dc=com", "(cn=engineers)", &["member"]);
    assert!(engineers.contains(&format!("uid={mover_name},ou=people")), "{engineers}");
    let user = w.scim_user(&mover_name).expect("SCIM user created");
    assert_eq!(user["active"], true);
    assert_eq!(user["externalId"], mover.as_str());
    let mut groups = w.scim_groups_of(user["id"].as_str().unwrap());
    groups.sort();
    assert_eq!(groups, ["engineering", "everyone"]);
    assert_eq!(w.pg(&format!("SELECT rolcanlogin FROM pg_roles WHERE rolname = '{mover_name}'")), "t");
    assert_eq!(
        w.pg(&format!("SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{mover_name}'")),
        "analyst"
    );

    // Day 2: the mover goes to Sales, the leaver's row disappears.
    co.transfer(&mover, "Sales");
    co.remove(&leaver);
    let day2 = w.import("day2.csv", &co);
    assert_eq!(day2["counts"]["movers"], 1);
    assert_eq!(day2["counts"]["leavers"], 1);
    w.apply_all();
    let sales = w.ldap("ou=groups,dc=example,dc=com", "(cn=sales)", &["member"]);
    assert!(sales.contains(&format!("uid={mover_name},")), "{sales}");
    let engineers = w.ldap("ou=groups,dc=example,dc=com", "(cn=engineers)", &["member"]);
    assert!(!engineers.contains(&format!("uid={mover_name},")), "mover kept engineers: {engineers}");

    // The leaver, asked of each peer directly: no enabled account, no membership anywhere.
    let active = w.ldap("ou=people,dc=example,dc=com", &format!("(uid={leaver_name})"), &["dn"]);
    assert!(active.trim().is_empty(), "leaver still under users_dn: {active}");
    let disabled = w.ldap("ou=disabled,dc=example,dc=com", &format!("(uid={leaver_name})"), &["dn"]);
    assert!(disabled.contains(&format!("uid={leaver_name}")), "leaver moved to disabled_dn: {disabled}");
    let memberships = w.ldap("ou=groups,dc=example,dc=com", &format!("(member=*uid={leaver_name},*)"), &["cn"]);
    let memberships = w.ldap("ou=groups,dc=example,dc=com", "(objectClass=groupOfNames)", &["member"]) + &memberships;
    assert!(!memberships.contains(&format!("uid={leaver_name},")), "leaver still a member: {memberships}");
    let user = w.scim_user(&leaver_name).expect("SCIM user kept, disabled");
    assert_eq!(user["active"], false);
    assert!(w.scim_groups_of(user["id"].as_str().unwrap()).is_empty());
    assert_eq!(w.pg(&format!("SELECT rolcanlogin FROM pg_roles WHERE rolname = '{leaver_name}'")), "f");
    assert_eq!(
        w.pg(&format!("SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{leaver_name}'")),
        "0"
    );
    let cases = w.env.ok(&["cases", "--format", "json"]).json();
    let leaver_case =
        cases.as_array().unwrap().iter().find(|c| c["identity"] == leaver.as_str() && c["kind"] == "leaver").unwrap();
    assert_eq!(leaver_case["state"], "closed", "every target verified clean, tickets done");
    assert!(leaver_case["revoke_ms"].as_i64().is_some());
    let coverage = w.env.ok(&["cases", "--coverage", "--format", "json"]).json();
    assert_eq!(coverage["open_leaver_cases"], 0);
    for class in coverage["classes"].as_array().unwrap() {
        assert_eq!(class["coverage"], 1.0, "{class}");
    }
    let classes: Vec<&str> =
        coverage["classes"].as_array().unwrap().iter().map(|c| c["class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["api", "manual", "scim"]);

    // Day 3: rehired into Sales: enabled again with birthright access only.
    let mut back = co.get(&mover).unwrap().clone();
    back.id = leaver.clone();
    back.username = leaver_name.clone();
    back.email = format!("{leaver_name}@example.com");
    co.people.push(back);
    let day3 = w.import("day3.csv", &co);
    assert_eq!(day3["counts"]["rehires"], 1);
    w.apply_all();
    let again = w.ldap("ou=people,dc=example,dc=com", &format!("(uid={leaver_name})"), &["dn"]);
    assert!(again.contains(&format!("uid={leaver_name}")), "rehire back under users_dn: {again}");
    let user = w.scim_user(&leaver_name).unwrap();
    assert_eq!(user["active"], true);
    let mut groups = w.scim_groups_of(user["id"].as_str().unwrap());
    groups.sort();
    assert_eq!(groups, ["everyone", "sales"], "birthright only");
    assert_eq!(
        w.pg(&format!("SELECT rolcanlogin FROM pg_roles WHERE rolname = '{leaver_name}'")),
        "f",
        "sales needs no warehouse login"
    );
    w.env.ok(&["audit", "verify"]);
    w.env.ok(&["reconcile"]);
}

#[test]
fn a_target_down_mid_apply_is_retried_and_completed_after_it_returns() {
    let mut w = world(25);
    let co = company(10);
    w.import("day1.csv", &co);
    w.stack.pg.stop().unwrap();
    let out = w.env.run(&["apply", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ops = w.env.ok(&["plan", "--all", "--format", "json"]).json();
    let warehouse: Vec<&serde_json::Value> =
        ops.as_array().unwrap().iter().filter(|o| o["target"] == "warehouse").collect();
    assert!(!warehouse.is_empty());
    assert!(warehouse.iter().all(|o| o["state"] == "pending"), "nothing verified while down: {warehouse:#?}");
    // The first operation of each account was attempted and failed transiently; the ones
    // queued behind it wait their turn.
    assert!(warehouse.iter().filter(|o| o["kind"] == "create_account").all(|o| o["last_error"].is_string()));
    assert!(ops.as_array().unwrap().iter().any(|o| o["target"] == "directory" && o["state"] == "verified"));
    let cases = w.env.ok(&["cases", "--open", "--format", "json"]).json();
    assert!(!cases.as_array().unwrap().is_empty(), "cases stay open");

    w.stack.pg.start_again().unwrap();
    w.apply_all();
    let ops = w.env.ok(&["plan", "--all", "--format", "json"]).json();
    assert!(ops.as_array().unwrap().iter().all(|o| o["state"] == "verified"), "{ops:#}");
    assert!(w.env.ok(&["cases", "--open", "--format", "json"]).json().as_array().unwrap().is_empty());
    let logins = w.pg("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname <> 'postgres'");
    // The starter policy grants warehouse roles to Engineering and to Finance (but not interns).
    let expected = co
        .people
        .iter()
        .filter(|p| p.department == "Engineering" || (p.department == "Finance" && p.title != "Intern"))
        .count();
    assert_eq!(logins, expected.to_string(), "exactly the people the policy gives warehouse access hold a login");
    w.env.ok(&["audit", "verify"]);
}

#[test]
fn sigkill_mid_apply_then_rerun_completes_without_duplicates() {
    let w = world(25);
    let co = company(120);
    w.import("day1.csv", &co);
    let total = w.env.pending_count();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["apply", "--wait"])
        .current_dir(w.env.dir.path())
        .env("TENURE_TODAY", TODAY)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some, but not all, operations are verified.
    let started = Instant::now();
    loop {
        let db = rusqlite::Connection::open(w.env.db()).unwrap();
        let done: i64 =
            db.query_row("SELECT count(*) FROM operations WHERE state = 'verified'", [], |r| r.get(0)).unwrap_or(0);
        if done >= 20 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let db = rusqlite::Connection::open(w.env.db()).unwrap();
    let verified: i64 =
        db.query_row("SELECT count(*) FROM operations WHERE state = 'verified'", [], |r| r.get(0)).unwrap();
    assert!(verified > 0 && (verified as usize) < total, "killed mid-run: {verified} of {total} verified");

    w.apply_all();
    let ops = w.env.ok(&["plan", "--all", "--format", "json"]).json();
    assert!(ops.as_array().unwrap().iter().all(|o| o["state"] == "verified"));
    // No duplicates in any peer: one entry, one SCIM user, one role per person.
    let people = co.people.len();
    let entries = w.ldap("ou=people,dc=example,dc=com", "(objectClass=inetOrgPerson)", &["uid"]);
    assert_eq!(entries.matches("uid: ").count(), people);
    let users = w.scim("/Users?count=1000");
    let names: Vec<&str> =
        users["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len());
    assert_eq!(names.len(), people);
    let groups = w.scim("/Groups?count=1000");
    for g in groups["Resources"].as_array().unwrap() {
        let members: Vec<&str> = g["members"]
            .as_array()
            .map(|m| m.iter().map(|x| x["value"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let unique: std::collections::BTreeSet<&str> = members.iter().copied().collect();
        assert_eq!(members.len(), unique.len(), "duplicate members in {}", g["displayName"]);
    }
    let dupes =
        w.pg("SELECT count(*) FROM (SELECT member, roleid FROM pg_auth_members GROUP BY 1, 2 HAVING count(*) > 1) d");
    assert_eq!(dupes, "0");
    w.env.ok(&["audit", "verify"]);
}

#[test]
fn orphans_and_drift_are_found_and_drift_removed_after_approval() {
    let w = world(0); // every removal is held for approval
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    w.env.ok(&["reconcile"]);

    // By hand, outside Tenure: an account nobody owns, and a membership no rule grants.
    w.ldap_modify(
        "dn: uid=ghost,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ghost\ncn: Ghost\nsn: Ghost\n",
    );
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    w.ldap_modify(&format!(
        "dn: cn=finance,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: uid={},ou=people,dc=example,dc=com\n",
        engineer.username
    ));
    let found = w.env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let findings = found["targets"][0]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "orphan" && f["account"] == "ghost"), "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "drift" && f["identity"] == engineer.id.as_str() && f["entitlement"] == "finance"),
        "{findings:#?}"
    );

    let rem = w.env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    let approval = rem["remediation"]["approval_id"].as_i64().expect("held by the guard").to_string();
    w.env.ok(&["apply", "--wait"]);
    let still = w.ldap("ou=groups,dc=example,dc=com", "(cn=finance)", &["member"]);
    assert!(still.contains(&format!("uid={},", engineer.username)), "nothing removed before approval");

    w.env.ok(&["approve", &approval, "--as", "security-lead"]);
    w.env.ok(&["apply", "--wait"]);
    let after = w.ldap("ou=groups,dc=example,dc=com", "(cn=finance)", &["member"]);
    assert!(!after.contains(&format!("uid={},", engineer.username)), "drift removed: {after}");
    // The hand-made account carries no correlation id: it is reported, never disabled by a rule.
    let ghost = w.ldap("ou=people,dc=example,dc=com", "(uid=ghost)", &["dn"]);
    assert!(ghost.contains("uid=ghost"), "an untagged orphan is left for a person: {ghost}");
    let again = w.env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let left = again["targets"][0]["findings"].as_array().unwrap();
    assert_eq!(left.len(), 1, "only the orphan remains: {left:#?}");
    assert_eq!(left[0]["kind"], "orphan");
    w.env.ok(&["audit", "verify"]);
}

#[test]
fn leavers_accounts_are_deleted_after_retention_with_ownership_transferred() {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    let config = stack
        .config_toml(25)
        .replace(
            "concurrency = 4\nmax_attempts = 8\n\n[[target]]\nname = \"warehouse\"",
            "concurrency = 4\nmax_attempts = 8\ndelete_after_days = 0\n\n[[target]]\nname = \"warehouse\"",
        )
        .replace("kind = \"postgres\"\n", "kind = \"postgres\"\ndelete_after_days = 0\nreassign_to = \"admin\"\n");
    assert_eq!(config.matches("delete_after_days = 0").count(), 2);
    env.write("tenure.toml", &config);
    let w = World { env, stack };
    let mut co = company(6);
    let leaver = co.hire("Engineering");
    let name = w.username(&co, &leaver);
    w.import("day1.csv", &co);
    w.apply_all();
    // The leaver owns a table in the warehouse.
    w.pg("CREATE TABLE leaver_report (id int)");
    w.pg(&format!("ALTER TABLE leaver_report OWNER TO \"{name}\""));

    co.remove(&leaver);
    w.import("day2.csv", &co);
    w.apply_all(); // disables; the case closes
    assert!(w.scim_user(&name).is_some(), "disabled, not deleted, until the case closed");
    w.apply_all(); // retention (0 days) passed: deletes
    assert!(w.scim_user(&name).is_none(), "SCIM user deleted after retention");
    assert_eq!(w.pg(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'")), "0", "role dropped");
    assert_eq!(
        w.pg("SELECT tableowner FROM pg_tables WHERE tablename = 'leaver_report'"),
        "admin",
        "ownership transferred"
    );
    let audit = w.env.ok(&["audit", "export", "--identity", &leaver, "--format", "jsonl"]).stdout;
    assert!(audit.contains("\"action\":\"apply.delete_account\"") && audit.contains("\"target\":\"warehouse\""));
    assert!(w.env.ok(&["identity", "show", &leaver, "--format", "json"]).json()["accounts"].get("chat").is_none());
    w.env.ok(&["audit", "verify"]);
}

#[test]
fn check_online_finds_entitlements_missing_from_live_targets() {
    let w = world(25);
    w.env.ok(&["check", "--online"]);
    let policy = std::fs::read_to_string(w.env.path("policy.toml")).unwrap();
    w.env.write(
        "policy.toml",
        &policy.replace("\"warehouse:analyst\"", "\"warehouse:analyst\", \"warehouse:reporting\""),
    );
    w.env.ok(&["check"]);
    let out = w.env.expect(1, &["check", "--online"]);
    assert!(out.stdout.contains("entitlement `warehouse:reporting` does not exist in `warehouse`"), "{}", out.stdout);
}

#[test]
fn an_account_owned_by_another_identity_is_never_taken_over() {
    let w = world(25);
    let co = company(6);
    let victim = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    // Someone else's entry already uses this login.
    w.ldap_modify(&format!(
        "dn: uid={},ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {}\ncn: X\nsn: X\nemployeeNumber: CONTRACTOR-77\n",
        victim.username, victim.username
    ));
    // The first import correlates the directory: the entry's employee number names nobody Tenure
    // knows while its name matches the victim, so it is a correlation case, and nothing is
    // planned for the victim in the directory until a person decides (issue 9, point 5).
    let report = w.import("day1.csv", &co);
    assert!(report["held_back"].as_array().unwrap().iter().any(|h| h["identity"] == victim.id.as_str()), "{report:#}");
    w.env.ok(&["apply", "--wait"]);
    let cases = w.env.ok(&["correlations", "--open", "--format", "json"]).json();
    let case = cases.as_array().unwrap().iter().find(|c| c["account"] == victim.username.as_str()).unwrap();
    assert!(case["why"].as_str().unwrap().contains("`CONTRACTOR-77` names no identity"), "{case:#}");
    let ops = w.env.ok(&["plan", "--identity", &victim.id, "--all", "--format", "json"]).json();
    assert!(!ops.as_array().unwrap().iter().any(|o| o["target"] == "directory"), "{ops:#}");
    // Deciding it the victim's is refused: the entry names another identity.
    let out = w.env.expect(1, &["correlate", &case["id"].to_string(), "--to", &victim.id, "--as", "alice"]);
    assert!(out.stderr.contains("carries correlation id `CONTRACTOR-77`"), "{}", out.stderr);
    w.env.ok(&["apply", "--wait"]);
    let groups = w.ldap(
        "ou=groups,dc=example,dc=com",
        &format!("(member=uid={},ou=people,dc=example,dc=com)", victim.username),
        &["cn"],
    );
    assert!(groups.trim().is_empty(), "no grant landed on the other identity's entry: {groups}");
    let ops = w.env.ok(&["plan", "--identity", &victim.id, "--all", "--format", "json"]).json();
    assert!(!ops.as_array().unwrap().iter().any(|o| o["target"] == "directory"), "still nothing: {ops:#}");
}

#[test]
fn issue6_reconciliation_fixes_that_grant_privileged_access_to_many_are_held() {
    let w = world(25);
    let policy = std::fs::read_to_string(w.env.path("policy.toml")).unwrap().replace(
        "approval = \"manager\"         # requested, approved by the manager",
        "approval = \"manager\"\nwhen = { status = \"active\", department = \"Engineering\" }",
    );
    w.env.write("policy.toml", &policy);
    let config = std::fs::read_to_string(w.env.path("tenure.toml")).unwrap();
    w.env.write("tenure.toml", &config.replace("[guard]", "[guard]\nmax_privileged_grants = 100"));
    let co = company(16);
    w.import("day1.csv", &co);
    // The role's condition asks for it: each engineer's manager approves their request.
    let asked = w.env.ok(&["requests", "--open", "--format", "json"]).json();
    let mut engineers: Vec<&str> = Vec::new();
    for r in asked.as_array().unwrap() {
        let stage = &r["stages"][0];
        let approval = stage["approval_id"].as_i64().unwrap().to_string();
        w.env.ok(&["approve", &approval, "--as", stage["approver"].as_str().unwrap()]);
        engineers.push(co.get(r["identity"].as_str().unwrap()).unwrap().username.as_str());
    }
    w.apply_all();
    assert!(engineers.len() >= 3, "{engineers:?}");
    // Someone strips the privileged role from every engineer by hand; the fix would grant it back
    // to all of them at once, past a tighter limit.
    w.env.write("tenure.toml", &config.replace("[guard]", "[guard]\nmax_privileged_grants = 2"));
    for name in &engineers {
        w.pg(&format!("REVOKE admin FROM \"{name}\""));
    }
    let rem = w.env.expect(1, &["reconcile", "--target", "warehouse", "--remediate", "--format", "json"]).json();
    let held = rem["remediation"]["held"].as_str().unwrap_or_default();
    assert!(held.contains("identities gaining privileged access exceed max_privileged_grants = 2"), "{rem:#}");
    w.env.ok(&["apply", "--wait"]);
    for name in &engineers {
        let n = w.pg(&format!(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{name}' AND g.rolname = 'admin'"
        ));
        assert_eq!(n, "0", "nothing granted before approval");
    }
}

#[test]
fn issue6_an_account_that_only_claims_an_identity_gets_nothing_and_is_not_disabled() {
    let w = world(0); // every fix is held, then approved
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    // A hand-made entry carrying a real identity's correlation id.
    w.ldap_modify(&format!(
        "dn: uid=impostor,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: impostor\ncn: I\nsn: I\nemployeeNumber: {}\n",
        engineer.id
    ));
    let rem = w.env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    let findings = rem["targets"][0]["findings"].as_array().unwrap();
    let f = findings.iter().find(|f| f["account"] == "impostor").expect("the impostor is reported");
    assert_eq!(f["kind"], "orphan");
    assert!(f["detail"].as_str().unwrap().contains("claims identity"), "{f}");
    if let Some(id) = rem["remediation"]["approval_id"].as_i64() {
        w.env.ok(&["approve", &id.to_string(), "--as", "security-lead"]);
    }
    w.env.ok(&["apply", "--wait"]);
    let groups = w.ldap("ou=groups,dc=example,dc=com", "(member=uid=impostor,ou=people,dc=example,dc=com)", &["cn"]);
    assert!(groups.trim().is_empty(), "the impostor was given nothing: {groups}");
    let still = w.ldap("ou=people,dc=example,dc=com", "(uid=impostor)", &["dn"]);
    assert!(still.contains("uid=impostor"), "and was not disabled either: {still}");
}

#[test]
fn issue6_a_name_match_alone_never_gets_an_account_disabled_and_names_a_leavers_account() {
    let w = world(0);
    let mut co = company(8);
    // A contractor whose contract ended before Tenure's first import still has a hand-made login.
    let gone = co.hire("Sales");
    let name = co.get(&gone).unwrap().username.clone();
    co.get_mut(&gone).unwrap().status = "terminated".into();
    w.ldap_modify(&format!(
        "dn: uid={name},ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {name}\ncn: G\nsn: G\n"
    ));
    w.import("day1.csv", &co);
    w.apply_all();
    assert_eq!(w.env.ok(&["identity", "show", &gone, "--format", "json"]).json()["status"], "terminated");
    let rem = w.env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    let findings = rem["targets"][0]["findings"].as_array().unwrap();
    let f = findings.iter().find(|f| f["account"] == name.as_str()).expect("the login is reported");
    assert_eq!(f["identity"], gone.as_str(), "named as the leaver's account, not an anonymous orphan: {f}");
    assert!(f["detail"].as_str().unwrap().contains("of terminated identity"), "{f}");
    if let Some(id) = rem["remediation"]["approval_id"].as_i64() {
        w.env.ok(&["approve", &id.to_string(), "--as", "security-lead"]);
    }
    w.env.ok(&["apply", "--wait"]);
    let still = w.ldap("ou=people,dc=example,dc=com", &format!("(uid={name})"), &["dn"]);
    assert!(still.contains(&format!("uid={name}")), "not disabled by a rule: {still}");
}

/// Issue 9: Tenure acts only on what it manages. A group no rule grants and no target declares
/// is someone else's: a membership in it is reported as unmanaged and survives `reconcile
/// --remediate` (approved and applied), while a managed group held without a rule is revoked. An
/// account Tenure did not create and cannot correlate stays as it is, groups and all.
#[test]
fn issue9_a_membership_in_an_unmanaged_group_survives_reconcile_remediate() {
    let w = world(0); // every fix is held, then approved
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    let dn = format!("uid={},ou=people,dc=example,dc=com", engineer.username);
    let ghost = "uid=ghost,ou=people,dc=example,dc=com";
    // By hand, outside Tenure: a login nobody owns, a book club with it and the engineer in it,
    // and the managed `finance` group, which no rule grants the engineer.
    w.ldap_modify(&format!("dn: {ghost}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ghost\ncn: G\nsn: G\n"));
    w.ldap_modify(&format!(
        "dn: cn=book-club,ou=groups,dc=example,dc=com\nchangetype: add\nobjectClass: groupOfNames\ncn: book-club\nmember: {dn}\nmember: {ghost}\n"
    ));
    w.ldap_modify(&format!(
        "dn: cn=finance,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: {dn}\n"
    ));

    let rem = w.env.expect(1, &["reconcile", "--target", "directory", "--remediate", "--format", "json"]).json();
    let t = &rem["targets"][0];
    let findings = t["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "drift" && f["identity"] == engineer.id.as_str() && f["entitlement"] == "finance"),
        "{findings:#?}"
    );
    assert!(
        !findings.iter().any(|f| f["entitlement"] == "book-club"),
        "an unmanaged group is no finding: {findings:#?}"
    );
    assert_eq!(t["unmanaged"], serde_json::json!([{"entitlement": "book-club", "accounts": 1}]), "{t:#}");
    assert_eq!(rem["remediation"]["operations"], 1, "only the finance membership is fixed: {rem:#}");
    let approval = rem["remediation"]["approval_id"].as_i64().expect("held by the guard").to_string();
    w.env.ok(&["approve", &approval, "--as", "security-lead"]);
    w.env.ok(&["apply", "--wait"]);

    let finance = w.ldap("ou=groups,dc=example,dc=com", "(cn=finance)", &["member"]);
    assert!(!finance.contains(&dn), "the managed group is revoked: {finance}");
    let club = w.ldap("ou=groups,dc=example,dc=com", "(cn=book-club)", &["member"]);
    assert!(club.contains(&dn) && club.contains(ghost), "the unmanaged memberships stay: {club}");
    let still = w.ldap("ou=people,dc=example,dc=com", "(uid=ghost)", &["dn"]);
    assert!(still.contains("uid=ghost"), "the uncorrelated login is not disabled: {still}");

    // Again, in text: only the orphan is a finding, and the book club is named as left alone.
    let again = w.env.expect(1, &["reconcile", "--target", "directory"]);
    assert!(
        again.stdout.contains("directory: left alone, not managed by the policy: `book-club` (1)"),
        "{}",
        again.stdout
    );
    let json = w.env.expect(1, &["reconcile", "--target", "directory", "--format", "json"]).json();
    let left: Vec<&str> =
        json["targets"][0]["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(left, ["orphan"], "{json:#}");
    w.env.ok(&["audit", "verify"]);
}

/// Issue 7: two executors started together on one store share the queue through lease claims.
/// Every operation is applied once (verified exactly once in the audit trail, one ticket per
/// manual operation), the peers, queried directly, hold no duplicate, and the chain verifies.
#[test]
fn issue7_two_applies_started_together_apply_every_operation_once() {
    let w = world(25);
    let co = company(260);
    w.import("day1.csv", &co);
    let planned = w.env.ok(&["plan", "--all", "--format", "json"]).json();
    let planned = planned.as_array().unwrap();
    assert!(planned.len() >= 2000, "the test needs 2,000 pending operations, has {}", planned.len());
    let manual: std::collections::BTreeSet<i64> =
        planned.iter().filter(|o| o["target"] == "payroll").map(|o| o["id"].as_i64().unwrap()).collect();
    let automatic: std::collections::BTreeSet<i64> =
        planned.iter().filter(|o| o["target"] != "payroll").map(|o| o["id"].as_i64().unwrap()).collect();

    let apply = || {
        Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["apply", "--wait", "--format", "json"])
            .current_dir(w.env.dir.path())
            .env("TENURE_TODAY", TODAY)
            .env_remove("TENURE_CONFIG")
            .env_remove("TENURE_STORE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (apply(), apply());
    let reports: Vec<serde_json::Value> = [a, b]
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "apply failed: {stderr}");
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
        })
        .collect();
    let verified: Vec<u64> = reports.iter().map(|r| r["report"]["verified"].as_u64().unwrap()).collect();
    assert!(verified.iter().all(|&n| n > 0), "both executors did work: {verified:?}");
    assert_eq!(verified.iter().sum::<u64>(), automatic.len() as u64, "verified once between them: {verified:?}");
    let tickets: u64 = reports.iter().map(|r| r["report"]["tickets"].as_u64().unwrap()).sum();
    assert_eq!(tickets, manual.len() as u64, "one ticket per manual operation");

    let ops = w.env.ok(&["plan", "--all", "--format", "json"]).json();
    for o in ops.as_array().unwrap() {
        let expect = if o["target"] == "payroll" { "done" } else { "verified" };
        assert_eq!(o["state"], expect, "{o:#}");
        if expect == "verified" {
            assert_eq!(o["attempts"], 1, "applied once: {o:#}");
        }
    }
    // The audit trail, operation by operation: one verification each, one ticket each, and no
    // claim taken over from a live executor.
    let jsonl = w.env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    let mut verified_by_op: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    let mut tickets_by_op: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for line in jsonl.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let (action, outcome, reason) =
            (r["action"].as_str().unwrap(), r["outcome"].as_str().unwrap(), r["reason"].as_str().unwrap_or(""));
        assert_ne!(action, "executor.recovered", "no live claim was taken over: {reason}");
        if action.starts_with("apply.") && outcome == "verified" {
            let id = reason.strip_prefix("operation ").and_then(|r| r.split(' ').next()).unwrap();
            *verified_by_op.entry(id.parse().unwrap()).or_default() += 1;
        }
        if action == "ticket.opened" {
            *tickets_by_op.entry(format!("{}/{}", r["identity"], r["entitlement"])).or_default() += 1;
        }
    }
    assert_eq!(verified_by_op.keys().copied().collect::<std::collections::BTreeSet<i64>>(), automatic);
    assert!(verified_by_op.values().all(|&n| n == 1), "verified more than once: {verified_by_op:?}");
    assert_eq!(tickets_by_op.len(), manual.len());
    assert!(tickets_by_op.values().all(|&n| n == 1), "a ticket opened twice: {tickets_by_op:?}");

    // The peers, asked directly: one entry, one user and one role per person, no member twice.
    let people = co.people.len();
    let entries = w.ldap("ou=people,dc=example,dc=com", "(objectClass=inetOrgPerson)", &["uid"]);
    let uids: Vec<&str> = entries.lines().filter_map(|l| l.strip_prefix("uid: ")).collect();
    assert_eq!(uids.len(), people);
    assert_eq!(uids.iter().collect::<std::collections::BTreeSet<_>>().len(), people, "no LDAP entry twice");
    let groups = w.ldap("ou=groups,dc=example,dc=com", "(objectClass=groupOfNames)", &["member"]);
    for group in groups.split("\n\n").filter(|g| !g.trim().is_empty()) {
        let members: Vec<&str> = group.lines().filter_map(|l| l.strip_prefix("member: ")).collect();
        let unique: std::collections::BTreeSet<&str> = members.iter().copied().collect();
        assert_eq!(members.len(), unique.len(), "a member twice in {group}");
    }
    let users = w.scim("/Users?count=5000");
    let names: Vec<&str> =
        users["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names.len(), people);
    assert_eq!(names.iter().collect::<std::collections::BTreeSet<_>>().len(), people, "no SCIM user twice");
    let scim_groups = w.scim("/Groups?count=1000");
    for g in scim_groups["Resources"].as_array().unwrap() {
        let members: Vec<&str> = g["members"]
            .as_array()
            .map(|m| m.iter().map(|x| x["value"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let unique: std::collections::BTreeSet<&str> = members.iter().copied().collect();
        assert_eq!(members.len(), unique.len(), "a member twice in SCIM group {}", g["displayName"]);
    }
    let warehouse = planned.iter().filter(|o| o["target"] == "warehouse" && o["kind"] == "create_account").count();
    assert_eq!(
        w.pg("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname <> 'postgres'"),
        warehouse.to_string(),
        "one login role per warehouse account"
    );
    let dupes =
        w.pg("SELECT count(*) FROM (SELECT member, roleid FROM pg_auth_members GROUP BY 1, 2 HAVING count(*) > 1) d");
    assert_eq!(dupes, "0");
    w.env.ok(&["audit", "verify"]);
}

/// Issue 9, point 6: `tenure explain --live` reads the account from real OpenLDAP, says how it
/// was correlated, and compares its groups with the policy (a managed group the policy does not
/// grant is extra, a hand-made group unmanaged), changing nothing in the directory.
/// Mover attribute sync: a mover's new title and family name are pushed to the directory (a
/// modify replace of the mapped attributes, never the naming attribute) and to the SCIM app (a
/// PATCH), verified by reading them back; importing the same snapshot again plans nothing.
#[test]
fn a_movers_new_title_and_name_land_in_slapd_and_the_scim_peer_and_verify() {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    let config = stack.config_toml(100).replacen(
        "max_attempts = 8\n\n[[target]]\nname = \"chat\"",
        "max_attempts = 8\n\n[target.attributes]\ntitle = \"{title}\"\n\n[[target]]\nname = \"chat\"",
        1,
    );
    assert!(config.contains("title = \"{title}\""), "{config}");
    env.write("tenure.toml", &config);
    env.ok(&["check"]);
    let w = World { env, stack };
    let mut co = company(8);
    let id = co.hire("Engineering");
    let name = w.username(&co, &id);
    w.import("day1.csv", &co);
    w.apply_all();
    let (given, old_title) = {
        let p = co.get_mut(&id).unwrap();
        (p.given.clone(), p.title.clone())
    };
    let entry = w.ldap("ou=people,dc=example,dc=com", &format!("(uid={name})"), &["title"]);
    assert!(entry.contains(&format!("title: {old_title}")), "{entry}");

    // Day 2: a new title and a new family name, nothing that changes access.
    {
        let p = co.get_mut(&id).unwrap();
        p.title = "Principal Engineer".into();
        p.family = "Okafor-Lind".into();
    }
    let day2 = w.import("day2.csv", &co);
    assert_eq!(day2["counts"]["operations"], 2, "{day2:#}");
    let plan = w.env.ok(&["plan", "--identity", &id, "--format", "json"]).json();
    let mut planned: Vec<String> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["target"].as_str().unwrap()))
        .collect();
    planned.sort();
    assert_eq!(planned, ["update_attributes chat", "update_attributes directory"], "{plan:#}");
    w.apply_all();

    // Checked in each peer directly.
    let entry = w.ldap(
        "ou=people,dc=example,dc=com",
        &format!("(uid={name})"),
        &["uid", "title", "sn", "cn", "displayName", "employeeNumber"],
    );
    assert!(entry.contains(&format!("dn: uid={name},ou=people,dc=example,dc=com")), "{entry}");
    assert!(entry.contains("title: Principal Engineer\n"), "{entry}");
    assert!(entry.contains("sn: Okafor-Lind\n"), "{entry}");
    assert!(entry.contains(&format!("displayName: {given} Okafor-Lind\n")), "{entry}");
    assert!(entry.contains(&format!("cn: {given} Okafor-Lind\n")), "{entry}");
    assert!(entry.contains(&format!("employeeNumber: {id}\n")), "{entry}");
    let user = w.scim_user(&name).expect("the SCIM user is still there");
    assert_eq!(user["title"], "Principal Engineer", "{user:#}");
    assert_eq!(user["name"]["familyName"], "Okafor-Lind", "{user:#}");
    assert_eq!(user["displayName"], format!("{given} Okafor-Lind"), "{user:#}");
    assert_eq!(user["userName"], name.as_str(), "{user:#}");

    // Verified by reading back: the mover's case closed, and nothing differs live.
    let open = w.env.ok(&["cases", "--open", "--format", "json"]).json();
    assert!(!open.as_array().unwrap().iter().any(|c| c["identity"] == id.as_str()), "{open:#}");
    let json = w.env.ok(&["explain", &id, "--live", "--format", "json"]).json();
    assert_eq!(json["targets"]["directory"]["live"]["attributes"], serde_json::json!([]), "{json:#}");
    assert_eq!(json["targets"]["chat"]["live"]["attributes"], serde_json::json!([]), "{json:#}");

    // The same snapshot again plans nothing.
    let again = w.import("day2-again.csv", &co);
    assert_eq!(again["counts"]["operations"], 0, "{again:#}");
}

/// Issue 9 deliverable 6: `explain --live` shows the mapped attributes that would change, read
/// from the live directory (edited by hand with `ldapmodify`) and the live SCIM peer, and
/// changes nothing in either.
#[test]
fn issue9_explain_live_names_the_mapped_attributes_edited_by_hand_and_changes_nothing() {
    let w = world(100);
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    let p = co.people.iter().find(|p| p.status == "active" && !p.email.is_empty()).unwrap();
    let dn = format!("uid={},ou=people,dc=example,dc=com", p.username);
    w.ldap_modify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: displayName\ndisplayName: Hand Edited\n-\ndelete: mail\n"
    ));
    let before = w.ldap("dc=example,dc=com", "(objectClass=*)", &["*"]);

    let json = w.env.ok(&["explain", &p.id, "--live", "--format", "json"]).json();
    let live = &json["targets"]["directory"]["live"];
    assert_eq!(live["error"], serde_json::Value::Null, "{json:#}");
    assert_eq!(
        live["attributes"],
        serde_json::json!([
            {"attribute": "displayName", "live": ["Hand Edited"], "desired": format!("{} {}", p.given, p.family)},
            {"attribute": "mail", "live": [], "desired": p.email},
        ]),
        "{live:#}"
    );
    // The SCIM account was created from the same mapping, title included: nothing differs.
    let chat = &json["targets"]["chat"]["live"];
    assert_eq!(chat["error"], serde_json::Value::Null, "{json:#}");
    assert_eq!(chat["found"], true, "{json:#}");
    assert_eq!(chat["attributes"], serde_json::json!([]), "{chat:#}");

    let text = w.env.ok(&["explain", &p.id, "--target", "directory", "--live"]).stdout;
    assert!(text.contains("    would change displayName: \"Hand Edited\" -> \""), "{text}");
    assert!(text.contains("    would change mail: none -> \""), "{text}");
    assert_eq!(w.ldap("dc=example,dc=com", "(objectClass=*)", &["*"]), before, "explain changes nothing");
}

#[test]
fn issue9_explain_live_reads_the_account_from_real_slapd_and_changes_nothing() {
    let w = world(100);
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    let dn = format!("uid={},ou=people,dc=example,dc=com", engineer.username);
    w.ldap_modify(&format!(
        "dn: cn=book-club,ou=groups,dc=example,dc=com\nchangetype: add\nobjectClass: groupOfNames\ncn: book-club\nmember: {dn}\n"
    ));
    w.ldap_modify(&format!(
        "dn: cn=finance,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: {dn}\n"
    ));
    let before = w.ldap("dc=example,dc=com", "(objectClass=*)", &["*"]);

    let json = w.env.ok(&["explain", &engineer.id, "--target", "directory", "--live", "--format", "json"]).json();
    assert_eq!(json["targets_read"], true);
    let live = &json["targets"]["directory"]["live"];
    assert_eq!(live["found"], true, "{json:#}");
    assert_eq!(live["error"], serde_json::Value::Null);
    assert_eq!(
        live["correlated_by"],
        format!("account name `{}` and its correlation id names this identity", engineer.username)
    );
    assert_eq!(live["extra"], serde_json::json!(["finance"]), "{live:#}");
    assert_eq!(live["unmanaged"], serde_json::json!(["book-club"]), "{live:#}");
    assert_eq!(live["missing"], serde_json::json!([]), "{live:#}");

    let text = w.env.ok(&["explain", &engineer.id, "--target", "directory", "--live"]).stdout;
    assert!(text.contains("targets (read live):"), "{text}");
    assert!(text.contains("    live missing: none; extra: finance; unmanaged, left alone: book-club"), "{text}");
    assert_eq!(w.ldap("dc=example,dc=com", "(objectClass=*)", &["*"]), before, "explain changes nothing");
}

/// Whoever ran `reconcile --remediate` submitted the fixes it held: they (`--as`, in any case)
/// cannot release them, and the approval records them as its submitter; someone else does.
#[test]
fn issue15_whoever_runs_reconcile_remediate_cannot_release_the_held_fixes() {
    let w = world(0); // every removal is held for approval
    let co = company(8);
    w.import("day1.csv", &co);
    w.apply_all();
    let engineer = co.people.iter().find(|p| p.department == "Engineering").unwrap();
    w.ldap_modify(&format!(
        "dn: cn=finance,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: uid={},ou=people,dc=example,dc=com\n",
        engineer.username
    ));
    let rem = w
        .env
        .expect(1, &["reconcile", "--target", "directory", "--remediate", "--as", "ops", "--format", "json"])
        .json();
    let id = rem["remediation"]["approval_id"].as_i64().expect("held by the guard");
    let approval = id.to_string();
    let list = w.env.ok(&["approvals", "--format", "json"]).json();
    let held = list.as_array().unwrap().iter().find(|a| a["id"].as_i64() == Some(id)).unwrap().clone();
    assert_eq!(held["summary"]["submitted_by"], serde_json::json!(["user:ops"]), "{held}");
    for name in ["ops", "OPS"] {
        let out = w.env.run(&["approve", &approval, "--as", name, "--format", "json"]);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        let body = out.json();
        assert_eq!(body["code"], "self_approval", "{body}");
        assert!(body["message"].as_str().unwrap().contains("submitted what approval"), "{body}");
    }
    w.env.ok(&["apply", "--wait"]);
    let still = w.ldap("ou=groups,dc=example,dc=com", "(cn=finance)", &["member"]);
    assert!(still.contains(&format!("uid={},", engineer.username)), "nothing removed by a refusal");
    w.env.ok(&["approve", &approval, "--as", "security-lead"]);
    w.env.ok(&["apply", "--wait"]);
    let after = w.ldap("ou=groups,dc=example,dc=com", "(cn=finance)", &["member"]);
    assert!(!after.contains(&format!("uid={},", engineer.username)), "removed once someone else approved: {after}");
}

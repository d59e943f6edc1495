//! Connectors and the executor against real slapd, scim2-server and PostgreSQL, driven through
//! the `tenure` binary; every check reads the peers directly (`ldapsearch`, `ldapwhoami`,
//! plain HTTP), never through Tenure.
//!
//! - A login made by hand after go-live (`hmade99`, with a password its maker chose) is not
//!   handed to a joiner of that username: the create opens a correlation case, nothing is
//!   planned on the account, the maker's password still binds but the entry is in none of
//!   Tenure's groups and the SCIM user carries no `externalId`; once a person decides the case
//!   (`tenure correlate CASE --to ID`), the joiner is provisioned on it.
//! - A leaver whose entry was renamed (`modrdn`) or moved to another OU by hand, and whose SCIM
//!   `userName` an admin changed, is found by correlation id and disabled there: the moved
//!   entry no longer binds (`ldapwhoami`), the SCIM user is `active = false`, and only then is
//!   the case closed. A leaver whose entry Tenure made and read back is gone by hand is not
//!   "verified": the case is stuck with an exception saying where it was searched.

use crate::{Env, company};
use std::io::Write as _;
use std::process::{Command, Stdio};
use tenure_testkit::company::Company;
use tenure_testkit::stack::Stack;

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const GROUPS: &str = "ou=groups,dc=example,dc=com";
const DISABLED: &str = "ou=disabled,dc=example,dc=com";
const ATTACKER_PASSWORD: &str = "chosen-by-the-attacker-15";

struct World {
    env: Env,
    stack: Stack,
}

fn world() -> World {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    env.write("tenure.toml", &stack.config_toml(25));
    env.ok(&["check"]);
    World { env, stack }
}

impl World {
    fn import(&self, name: &str, co: &Company) {
        self.env.write(name, &co.to_csv());
        let out = self.env.run(&["import", "--source", "hr", name, "--format", "json"]);
        assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    }

    /// `apply --wait`, then every manual ticket done.
    fn apply_all(&self) {
        self.env.run(&["apply", "--wait"]);
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
        assert!(out.status.success() || out.status.code() == Some(32), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tool` (`ldapmodify`, `ldapmodrdn`, `ldapdelete`) as the root DN with `input`.
    fn ldap_tool(&self, tool: &str, args: &[&str], input: &str) {
        let l = &self.stack.ldap;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &l.url, "-D", &l.bind_dn, "-y"])
            .arg(&l.password_file)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "{tool} {args:?} failed for\n{input}");
    }

    /// Whether `ldapwhoami` binds as `dn` with `password`.
    fn binds(&self, dn: &str, password: &str) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.stack.ldap.url, "-D", dn, "-w", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn scim(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = format!("{}{path}", self.stack.scim.url());
        let token = self.stack.scim.token().to_string();
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            let mut r = reqwest::Client::new().request(method, url).bearer_auth(token);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r.send().await.unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            resp.json::<serde_json::Value>().await.unwrap_or_default()
        })
    }

    fn scim_users(&self) -> Vec<serde_json::Value> {
        self.scim(reqwest::Method::GET, "/Users?count=1000", None)["Resources"].as_array().cloned().unwrap_or_default()
    }

    fn scim_user(&self, user_name: &str) -> serde_json::Value {
        self.scim_users().into_iter().find(|u| u["userName"] == user_name).unwrap_or_else(|| panic!("no {user_name}"))
    }

    fn scim_groups_of(&self, user_id: &str) -> Vec<String> {
        let v = self.scim(reqwest::Method::GET, "/Groups?count=1000", None);
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["members"].as_array().is_some_and(|m| m.iter().any(|x| x["value"] == user_id)))
            .map(|g| g["displayName"].as_str().unwrap().to_string())
            .collect()
    }

    fn ops_of(&self, identity: &str, target: &str) -> Vec<serde_json::Value> {
        let ops = self.env.ok(&["plan", "--all", "--format", "json"]).json();
        ops.as_array().unwrap().iter().filter(|o| o["identity"] == identity && o["target"] == target).cloned().collect()
    }
}

#[test]
fn issue15_a_hand_made_login_is_not_handed_to_a_joiner_until_a_person_decides() {
    let w = world();
    let mut co = company(6);
    w.import("day1.csv", &co);
    w.apply_all();

    // After go-live, by hand: `hmade99` in the directory, with a password its maker chose, and
    // in the SCIM app, with no externalId.
    w.ldap_tool(
        "ldapmodify",
        &[],
        &format!(
            "dn: uid=hmade99,{PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: hmade99\ncn: hand made\nsn: made\nuserPassword: {ATTACKER_PASSWORD}\n"
        ),
    );
    let made = w.scim(
        reqwest::Method::POST,
        "/Users",
        Some(serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hmade99", "active": true})),
    );
    let made_id = made["id"].as_str().unwrap().to_string();

    // A joiner whose username is `hmade99`.
    let joiner = co.hire("Engineering");
    {
        let p = co.get_mut(&joiner).unwrap();
        p.username = "hmade99".into();
        p.email = "hmade99@example.com".into();
    }
    w.import("day2.csv", &co);
    w.apply_all();

    // Not adopted: the maker's password still binds, but the entry carries no employee number
    // and is in none of Tenure's groups; the SCIM user carries no externalId and no group.
    let hmade_dn = format!("uid=hmade99,{PEOPLE}");
    assert!(w.binds(&hmade_dn, ATTACKER_PASSWORD), "the hand-made entry is left as it was");
    let entry = w.ldap(PEOPLE, "(uid=hmade99)", &["employeeNumber"]);
    assert!(!entry.contains("employeeNumber"), "{entry}");
    let groups = w.ldap(GROUPS, &format!("(member={hmade_dn})"), &["cn"]);
    assert!(groups.trim().is_empty(), "the hand-made entry was given groups: {groups}");
    let user = w.scim_user("hmade99");
    assert!(user.get("externalId").is_none_or(serde_json::Value::is_null), "{user}");
    assert!(w.scim_groups_of(&made_id).is_empty());

    // Each is a correlation case naming the joiner, and nothing is queued on those targets.
    let cases = w.env.ok(&["correlations", "--open", "--format", "json"]).json();
    let mut case_ids = Vec::new();
    for target in ["directory", "chat"] {
        let case = cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == target && c["account"] == "hmade99")
            .unwrap_or_else(|| panic!("no case in {target}: {cases:#}"));
        assert_eq!(case["candidates"][0]["identity"], joiner.as_str(), "{case}");
        case_ids.push(case["id"].as_i64().unwrap().to_string());
        let ops = w.ops_of(&joiner, target);
        assert!(ops.iter().all(|o| o["state"] == "cancelled"), "{target}: {ops:#?}");
        let create = ops.iter().find(|o| o["kind"] == "create_account").expect("the create was tried");
        assert!(create["note"].as_str().unwrap().contains("correlation case"), "{create}");
    }
    // The joiner's PostgreSQL login, which nobody made by hand, was created as usual.
    assert!(w.ops_of(&joiner, "warehouse").iter().all(|o| o["state"] == "verified"));
    // Importing again plans nothing on the undecided accounts.
    w.import("day2b.csv", &co);
    assert!(w.ops_of(&joiner, "directory").iter().all(|o| o["state"] == "cancelled"));
    let audit = w.env.ok(&["audit", "export", "--format", "jsonl"]).stdout;
    assert!(audit.contains("correlation.case_opened"), "audited");

    // A person decides: the account is the joiner's. Then it is provisioned.
    for case in &case_ids {
        w.env.ok(&["correlate", case, "--to", &joiner, "--reason", "checked with IT", "--as", "alice"]);
    }
    w.apply_all();
    let groups = w.ldap(GROUPS, &format!("(member={hmade_dn})"), &["cn"]);
    assert!(groups.contains("cn: engineers"), "linked and provisioned: {groups}");
    assert!(w.scim_groups_of(&made_id).contains(&"engineering".to_string()));
    w.env.ok(&["audit", "verify"]);
}

#[test]
fn issue15_a_leaver_renamed_moved_or_deleted_by_hand_is_never_verified_while_it_works() {
    let w = world();
    // Large enough that three leavers stay under the guard's leaver fraction.
    let mut co = company(20);
    let renamed = co.hire("Engineering");
    let moved = co.hire("Engineering");
    let deleted = co.hire("Engineering");
    let name = |id: &str| co.get(id).unwrap().username.clone();
    let (renamed_name, moved_name, deleted_name) = (name(&renamed), name(&moved), name(&deleted));
    w.import("day1.csv", &co);
    w.apply_all();

    // By hand: passwords the users log in with, then one entry renamed, one moved to another
    // OU, one deleted; the SCIM admin changes the renamed one's userName.
    for n in [&renamed_name, &moved_name] {
        w.ldap_tool(
            "ldapmodify",
            &[],
            &format!("dn: uid={n},{PEOPLE}\nchangetype: modify\nreplace: userPassword\nuserPassword: pw-of-{n}\n"),
        );
    }
    w.ldap_tool("ldapmodrdn", &["-r"], &format!("uid={renamed_name},{PEOPLE}\nuid={renamed_name}-old\n"));
    w.ldap_tool(
        "ldapmodify",
        &[],
        "dn: ou=contractors,dc=example,dc=com\nchangetype: add\nobjectClass: organizationalUnit\nou: contractors\n",
    );
    w.ldap_tool(
        "ldapmodrdn",
        &["-r", "-s", "ou=contractors,dc=example,dc=com"],
        &format!("uid={moved_name},{PEOPLE}\nuid={moved_name}\n"),
    );
    w.ldap_tool("ldapdelete", &[], &format!("uid={deleted_name},{PEOPLE}\n"));
    let renamed_dn = format!("uid={renamed_name}-old,{PEOPLE}");
    let moved_dn = format!("uid={moved_name},ou=contractors,dc=example,dc=com");
    assert!(w.binds(&renamed_dn, &format!("pw-of-{renamed_name}")));
    assert!(w.binds(&moved_dn, &format!("pw-of-{moved_name}")));
    let mut user = w.scim_user(&renamed_name);
    let scim_id = user["id"].as_str().unwrap().to_string();
    user["userName"] = serde_json::json!(format!("{renamed_name}.renamed"));
    w.scim(reqwest::Method::PUT, &format!("/Users/{scim_id}"), Some(user));

    // All three leave.
    for id in [&renamed, &moved, &deleted] {
        co.remove(id);
    }
    w.import("day2.csv", &co);
    w.apply_all();

    // The renamed and the moved entries are disabled where they were found: moved into
    // disabled_dn under their own names, without a password, in no group.
    assert!(!w.binds(&renamed_dn, &format!("pw-of-{renamed_name}")), "the renamed entry still binds");
    assert!(!w.binds(&moved_dn, &format!("pw-of-{moved_name}")), "the moved entry still binds");
    let disabled = w.ldap(DISABLED, "(objectClass=inetOrgPerson)", &["uid", "userPassword"]);
    assert!(disabled.contains(&format!("uid={renamed_name}-old,{DISABLED}")), "{disabled}");
    assert!(disabled.contains(&format!("uid={moved_name},{DISABLED}")), "{disabled}");
    assert!(!disabled.contains("userPassword"), "{disabled}");
    let members = w.ldap(GROUPS, "(objectClass=groupOfNames)", &["member"]);
    for n in [&renamed_name, &moved_name] {
        assert!(!members.contains(&format!("uid={n},")) && !members.contains(&format!("uid={n}-old,")), "{members}");
    }
    let user = w.scim(reqwest::Method::GET, &format!("/Users/{scim_id}"), None);
    assert_eq!(user["active"], false, "the renamed SCIM user is disabled: {user}");
    assert!(w.scim_groups_of(&scim_id).is_empty());

    // Their cases close on that evidence; the deleted one's does not: Tenure read that entry
    // back before, so its absence is an exception to look into, not a verified disable.
    let cases = w.env.ok(&["cases", "--format", "json"]).json();
    let case = |id: &str| {
        cases.as_array().unwrap().iter().find(|c| c["identity"] == id && c["kind"] == "leaver").cloned().unwrap()
    };
    assert_eq!(case(&renamed)["state"], "closed", "{cases:#}");
    assert_eq!(case(&moved)["state"], "closed", "{cases:#}");
    assert_eq!(case(&deleted)["state"], "stuck", "{cases:#}");
    let disable = w.ops_of(&renamed, "directory").into_iter().find(|o| o["kind"] == "disable").unwrap();
    assert!(disable["note"].as_str().unwrap().contains("found by its correlation id"), "{disable}");
    let failed = w.ops_of(&deleted, "directory").into_iter().find(|o| o["kind"] == "disable").unwrap();
    assert_eq!(failed["state"], "failed", "{failed}");
    let why = failed["last_error"].as_str().unwrap();
    assert!(why.contains("absent") && why.contains("searched by name and correlation id"), "{why}");
    let exceptions = w.env.ok(&["exceptions", "--format", "json"]).json();
    assert!(
        exceptions.as_array().unwrap().iter().any(|e| e["identity"] == deleted.as_str() && e["target"] == "directory"),
        "{exceptions:#}"
    );
    // Coverage says so (and the command exits non-zero): the directory's removals are not all
    // verified.
    let out = w.env.run(&["cases", "--coverage", "--format", "json"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let coverage = out.json();
    assert_eq!(coverage["open_leaver_cases"], 1, "{coverage}");
    let api = coverage["classes"].as_array().unwrap().iter().find(|c| c["class"] == "api").unwrap();
    assert!(api["coverage"].as_f64().unwrap() < 1.0 && api["failed"].as_i64().unwrap() > 0, "{coverage}");
    w.env.ok(&["audit", "verify"]);
}

/// A brownfield account linked by username at go-live, with nothing for Tenure to change on it
/// since, is still one Tenure holds: renamed by hand and then its person leaves, it is not
/// "absent, verified" while it still binds.
#[test]
fn issue15_a_linked_account_renamed_by_hand_is_not_verified_absent_when_its_person_leaves() {
    let w = world();
    let mut co = company(20);
    let linked = co.hire("Engineering");
    let uid = co.get(&linked).unwrap().username.clone();
    // Before go-live, by hand: the account under the person's username, no employee number,
    // already in the groups the policy gives, with a password the user logs in with.
    w.ldap_tool(
        "ldapmodify",
        &[],
        &format!(
            "dn: uid={uid},{PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: pw-of-{uid}\n"
        ),
    );
    for g in ["staff", "engineers"] {
        w.ldap_tool(
            "ldapmodify",
            &[],
            &format!(
                "dn: cn={g},{GROUPS}\nchangetype: add\nobjectClass: groupOfNames\ncn: {g}\nmember: uid={uid},{PEOPLE}\n"
            ),
        );
    }
    w.import("day1.csv", &co);
    w.apply_all();
    let open = w.env.ok(&["correlations", "--open", "--format", "json"]).stdout;
    assert!(!open.contains(&uid), "linked at go-live, not a case: {open}");
    assert!(
        !w.ops_of(&linked, "directory").iter().any(|o| o["kind"] == "create_account"),
        "linked, so no account is created: {:#?}",
        w.ops_of(&linked, "directory")
    );
    assert!(
        w.ops_of(&linked, "directory").iter().all(|o| o["state"] != "verified"),
        "nothing verified on the linked account: {:#?}",
        w.ops_of(&linked, "directory")
    );

    // Renamed by hand, then the person leaves.
    w.ldap_tool("ldapmodrdn", &["-r"], &format!("uid={uid},{PEOPLE}\nuid={uid}-old\n"));
    let renamed_dn = format!("uid={uid}-old,{PEOPLE}");
    assert!(w.binds(&renamed_dn, &format!("pw-of-{uid}")));
    co.remove(&linked);
    w.import("day2.csv", &co);
    w.apply_all();

    assert!(w.binds(&renamed_dn, &format!("pw-of-{uid}")), "it still binds, so nothing may be verified");
    let disable = w.ops_of(&linked, "directory").into_iter().find(|o| o["kind"] == "disable").unwrap();
    assert_eq!(disable["state"], "failed", "{disable}");
    let cases = w.env.ok(&["cases", "--format", "json"]).json();
    let case =
        cases.as_array().unwrap().iter().find(|c| c["identity"] == linked.as_str() && c["kind"] == "leaver").unwrap();
    assert_eq!(case["state"], "stuck", "{cases:#}");
}

/// A deletion that finds nothing is held to the same rule as a disable: an entry Tenure made and
/// read back, renamed and stripped of its employee number by hand after the leaver was
/// disabled, is not "deleted" when retention comes.
#[test]
fn issue15_a_retention_delete_that_finds_nothing_is_not_verified_when_tenure_had_seen_the_account() {
    let stack = Stack::start(&["analyst", "finance", "admin"]).expect("real peers must start");
    let env = Env::new();
    let config = stack.config_toml(25).replacen(
        "concurrency = 4\nmax_attempts = 8\n\n[[target]]\nname = \"chat\"",
        "concurrency = 4\nmax_attempts = 8\ndelete_after_days = 0\n\n[[target]]\nname = \"chat\"",
        1,
    );
    assert_eq!(config.matches("delete_after_days = 0").count(), 1);
    env.write("tenure.toml", &config);
    env.ok(&["check"]);
    let w = World { env, stack };
    let mut co = company(20);
    let leaver = co.hire("Engineering");
    let uid = co.get(&leaver).unwrap().username.clone();
    w.import("day1.csv", &co);
    w.apply_all();
    co.remove(&leaver);
    w.import("day2.csv", &co);
    w.apply_all(); // disabled: moved under disabled_dn
    let disabled = w.ldap(DISABLED, &format!("(uid={uid})"), &["dn"]);
    assert!(disabled.contains(&format!("uid={uid},{DISABLED}")), "{disabled}");

    // By hand: the employee number removed and the entry renamed.
    w.ldap_tool("ldapmodify", &[], &format!("dn: uid={uid},{DISABLED}\nchangetype: modify\ndelete: employeeNumber\n"));
    w.ldap_tool("ldapmodrdn", &["-r"], &format!("uid={uid},{DISABLED}\nuid={uid}-kept\n"));
    w.apply_all(); // retention (0 days) passed: the delete finds nothing

    let kept = w.ldap(DISABLED, &format!("(uid={uid}-kept)"), &["dn"]);
    assert!(kept.contains(&format!("uid={uid}-kept,{DISABLED}")), "the entry is still there: {kept}");
    let delete = w.ops_of(&leaver, "directory").into_iter().find(|o| o["kind"] == "delete_account");
    let delete = delete.unwrap_or_else(|| panic!("a delete was planned: {:#?}", w.ops_of(&leaver, "directory")));
    assert_eq!(delete["state"], "failed", "{delete}");
    let why = delete["last_error"].as_str().unwrap();
    assert!(why.contains("absent") && why.contains("never deleted"), "{why}");
}

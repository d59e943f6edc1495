//! Policy loading problems, evaluation, and the differential test of the compiled evaluator
//! against the reference evaluator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use chrono::NaiveDate;
use proptest::prelude::*;
use tenure_core::config::Config;
use tenure_core::{Attrs, Identity, Kind, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Compiled, Policy, reference};

const CONFIG: &str = r#"
[attributes]
team = "string"

[[target]]
name = "directory"
kind = "ldap"
url = "ldap://127.0.0.1:1"
bind_dn = "cn=admin"
password_env = "P"
users_dn = "ou=people"
groups_dn = "ou=groups"
disabled_dn = "ou=disabled"

[[target]]
name = "payroll"
kind = "manual"
owner = "payroll-admins"
entitlements = ["create-payment", "approve-payment", "view"]
"#;

fn config() -> Config {
    tenure_core::config::parse("tenure.toml", CONFIG).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

fn load(src: &str) -> Result<Policy, Vec<String>> {
    tenure_policy::parse("policy.toml", src, &config(), today())
        .map_err(|ps| ps.iter().map(|p| format!("{}: {}", p.line, p.message)).collect())
}

/// Loads `src` and expects exactly one problem, on `line`, containing `want`.
fn check_problem(src: &str, line: usize, want: &str) {
    let problems = load(src).err().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p.starts_with(&format!("{line}: ")) && p.contains(want)),
        "wanted `{line}: ..{want}..`, got {problems:#?}"
    );
}

#[test]
fn typos_and_undeclared_things_are_load_errors_with_lines() {
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { departmnt = \"Eng\" }\ngrant = [\"directory:x\"]\n",
        3,
        "unknown attribute `departmnt`",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { status = \"active\" }\ngrant = [\"drectory:x\"]\n",
        4,
        "unknown target `drectory`",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { status = \"active\" }\ngrant = [\"payroll:admin\"]\n",
        4,
        "not declared in target `payroll`",
    );
    check_problem("[[role]]\nid = \"a\"\nwhen = { status = \"active\" }\ngrant = [\"directory\"]\n", 4, "malformed");
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { status = \"activ\" }\ngrant = [\"directory:x\"]\n",
        3,
        "`status` is never `activ`",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { title = { regex = \"(\" } }\ngrant = [\"directory:x\"]\n",
        3,
        "regex",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { title = { before = \"today\" } }\ngrant = [\"directory:x\"]\n",
        3,
        "not a date attribute",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { start_date = { before = \"yesterday\" } }\ngrant = [\"directory:x\"]\n",
        3,
        "not a date",
    );
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = { title = { startswith = \"x\" } }\ngrant = [\"directory:x\"]\n",
        3,
        "unknown test `startswith`",
    );
    check_problem("[[role]]\nid = \"a\"\ngrant = [\"directory:x\"]\n", 1, "neither `when`");
    check_problem(
        "[[role]]\nid = \"a\"\nwhen = {status=\"active\"}\ngrnat = [\"directory:x\"]\n",
        4,
        "unknown key `grnat`",
    );
    check_problem("[mover]\nsignificant = [\"departmnet\"]\n", 2, "unknown attribute `departmnet`");
    check_problem("[[sod]]\nid = \"s\"\nconflict = [\"payroll:view\"]\n", 1, "at least two");
    check_problem(
        "[[role]]\nid = \"a\"\nmax_duration = \"8 hours\"\napproval = \"manager\"\ngrant = [\"directory:x\"]\n",
        3,
        "not a duration",
    );
}

fn ident(attrs: &[(&str, &str)]) -> Identity {
    let cfg = config();
    let mut a = Attrs::new(&cfg.schema);
    for (k, v) in attrs {
        a.set(cfg.schema.slot(k).unwrap(), Some(v));
    }
    let status = attrs.iter().find(|(k, _)| *k == "status").map_or(Status::Active, |(_, v)| v.parse().unwrap());
    Identity::new("E1", Kind::Employee, status, a)
}

const POLICY: &str = r#"
[[role]]
id = "staff"
when = { status = "active", employment_type = ["employee", "contractor"] }
grant = ["directory:staff"]

[[role]]
id = "eng"
when = { department = "Engineering", not = { title = { prefix = "Intern" } } }
grant = ["directory:engineers"]

[[role]]
id = "veterans"
when = { start_date = { before = "today-365d" }, any = [ { location = "Berlin" }, { team = { regex = "^core-" } } ] }
grant = ["directory:veterans"]

[[role]]
id = "no-email"
when = { email = { present = false } }
grant = ["directory:needs-email"]

[[role]]
id = "pay-create"
when = { department = "Finance" }
grant = ["payroll:create-payment"]

[[role]]
id = "pay-approve"
when = { title = "Controller" }
grant = ["payroll:approve-payment"]

[[sod]]
id = "payments"
conflict = ["payroll:create-payment", "payroll:approve-payment"]
action = "block"
"#;

#[test]
fn conditions_evaluate_as_documented() {
    let policy = load(POLICY).unwrap();
    let cfg = config();
    let compiled = Compiled::new(&policy, cfg.schema.len());
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (&[("employment_type", "employee"), ("email", "a@x")], &["staff"]),
        (&[("employment_type", "employee"), ("status", "suspended"), ("email", "a@x")], &[]),
        (&[("department", "Engineering"), ("title", "Engineer"), ("email", "a@x")], &["eng"]),
        (&[("department", "Engineering"), ("title", "Intern, summer"), ("email", "a@x")], &[]),
        (&[("start_date", "2020-01-01"), ("location", "Berlin"), ("email", "a@x")], &["veterans"]),
        (&[("start_date", "2026-06-01"), ("location", "Berlin"), ("email", "a@x")], &[]),
        (&[("start_date", "2020-01-01"), ("team", "core-db"), ("email", "a@x")], &["veterans"]),
        (&[], &["no-email"]),
    ];
    for (attrs, want) in cases {
        let id = ident(attrs);
        let reference: Vec<&str> =
            reference::matching_roles(&policy, &id).iter().map(|&i| policy.roles[i].id.as_str()).collect();
        let mut out = Vec::new();
        compiled.matching_roles(&id, &mut Scratch::default(), &mut out);
        let fast: Vec<&str> = out.iter().map(|&i| policy.roles[i].id.as_str()).collect();
        assert_eq!(reference, *want, "reference on {attrs:?}");
        assert_eq!(fast, *want, "compiled on {attrs:?}");
    }
}

#[test]
fn sod_block_refuses_the_second_conflicting_grant() {
    let policy = load(POLICY).unwrap();
    let id = ident(&[("department", "Finance"), ("title", "Controller"), ("email", "a@x")]);
    let roles = reference::matching_roles(&policy, &id);
    let mut desired = policy.desired(&roles);
    let hits = policy.apply_sod(&mut desired, &Default::default());
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].refused, vec!["payroll:approve-payment".to_string()]);
    let payroll: Vec<&String> = desired["payroll"].keys().collect();
    assert_eq!(payroll, ["create-payment"]);
}

// Differential test: random policies over a small vocabulary and random identities; the
// compiled evaluator must agree with the reference evaluator on every identity.

const DEPTS: &[&str] = &["Engineering", "Sales", "Finance", "Ops"];
const TITLES: &[&str] = &["Engineer", "Senior Engineer", "Intern", "Controller", "VP Sales"];
const LOCS: &[&str] = &["Berlin", "Paris", "Tokyo"];
const DATES: &[&str] = &["2019-05-01", "2025-11-21", "2026-11-21", "2027-01-01", "not-a-date"];

fn arb_leaf() -> impl Strategy<Value = String> {
    let d = proptest::sample::select(DEPTS);
    let t = proptest::sample::select(TITLES);
    let l = proptest::sample::select(LOCS);
    prop_oneof![
        d.clone().prop_map(|v| format!("department = \"{v}\"")),
        (d.clone(), d).prop_map(|(a, b)| format!("department = [\"{a}\", \"{b}\"]")),
        t.clone().prop_map(|v| format!("title = {{ prefix = \"{}\" }}", &v[..3])),
        t.prop_map(|v| format!("title = {{ not = \"{v}\" }}")),
        l.prop_map(|v| format!("location = {{ regex = \"^{}\" }}", &v[..2])),
        proptest::sample::select(&["before", "after", "on_or_before", "on_or_after"][..])
            .prop_map(|op| format!("start_date = {{ {op} = \"today-30d\" }}")),
        proptest::sample::select(&["active", "suspended", "prehire"][..]).prop_map(|s| format!("status = \"{s}\"")),
        any::<bool>().prop_map(|b| format!("email = {{ present = {b} }}")),
    ]
}

fn arb_cond() -> impl Strategy<Value = String> {
    let leaf = arb_leaf().prop_map(|l| format!("{{ {l} }}"));
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..3).prop_map(|v| format!("{{ any = [{}] }}", v.join(", "))),
            inner.clone().prop_map(|c| format!("{{ not = {c} }}")),
            (arb_leaf(), inner).prop_map(|(l, c)| format!("{{ {l}, all = [{c}] }}")),
        ]
    })
}

fn arb_identity() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    (
        proptest::option::of(proptest::sample::select(DEPTS)),
        proptest::option::of(proptest::sample::select(TITLES)),
        proptest::option::of(proptest::sample::select(LOCS)),
        proptest::option::of(proptest::sample::select(DATES)),
        proptest::sample::select(&["active", "suspended", "prehire"][..]),
        any::<bool>(),
    )
        .prop_map(|(d, t, l, s, st, e)| {
            let mut v = vec![("status", st)];
            d.into_iter().for_each(|x| v.push(("department", x)));
            t.into_iter().for_each(|x| v.push(("title", x)));
            l.into_iter().for_each(|x| v.push(("location", x)));
            s.into_iter().for_each(|x| v.push(("start_date", x)));
            if e {
                v.push(("email", "a@example.com"));
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn compiled_agrees_with_reference(
        conds in proptest::collection::vec(arb_cond(), 1..12),
        people in proptest::collection::vec(arb_identity(), 1..40),
    ) {
        let src: String = conds
            .iter()
            .enumerate()
            .map(|(i, c)| format!("[[role]]\nid = \"r{i}\"\nwhen = {c}\ngrant = [\"directory:g{i}\"]\n\n"))
            .collect();
        let policy = load(&src).map_err(|e| TestCaseError::fail(format!("{e:?}\n{src}")))?;
        let compiled = Compiled::new(&policy, config().schema.len());
        let mut scratch = Scratch::default();
        for attrs in &people {
            let id = ident(attrs);
            let want = reference::matching_roles(&policy, &id);
            let mut got = Vec::new();
            compiled.matching_roles(&id, &mut scratch, &mut got);
            prop_assert_eq!(&got, &want, "identity {:?}\npolicy:\n{}", attrs, src);
        }
    }
}

proptest! {
    #[test]
    fn loading_never_panics(at in 0usize..1500, junk in "[\\[\\]=\"a-z0-9 \n.,{}:_-]{0,16}") {
        let mut text = POLICY.to_string();
        let at = at.min(text.len());
        if text.is_char_boundary(at) {
            text.insert_str(at, &junk);
            let _ = load(&text);
        }
    }
}

/// Issue 10: requestable roles, approval stages and `[[sod]] mode` are validated at load, each
/// problem on its line.
#[test]
fn issue10_request_keys_are_validated_with_lines() {
    let role = |extra: &str| format!("[[role]]\nid = \"a\"\n{extra}grant = [\"directory:x\"]\n");
    check_problem(
        &role("approval = \"boss\"\n"),
        3,
        "approver `boss` in role `a` must be \"manager\" or \"owner:NAME\"",
    );
    check_problem(&role("approval = [\"manager\", \"owner:\"]\n"), 3, "approver `owner:` in role `a`");
    check_problem(&role("approval = []\n"), 3, "names no approver");
    check_problem(&role("approval = 3\n"), 3, "must be a string or an array of strings");
    check_problem(
        &role("when = { status = \"active\" }\nrequestable = true\n"),
        4,
        "requestable but names no approver",
    );
    check_problem(
        &role("approval = \"manager\"\nrequestable = \"yes\"\n"),
        4,
        "`requestable` in role `a` must be true or false",
    );
    check_problem(
        &role("approval = \"manager\"\nmax_duration = \"2 seconds\"\n"),
        4,
        "not a duration like `8h`, `30m`, `7d` or `2s`",
    );
    let sod = |extra: &str| {
        format!("[[sod]]\nid = \"s\"\nconflict = [\"payroll:view\", \"payroll:create-payment\"]\n{extra}")
    };
    check_problem(&sod("mode = \"audit\"\n"), 4, "`mode` `audit` in sod rule `s` must be \"enforce\" or \"record\"");
    check_problem(&sod("owner = \"a b\"\n"), 4, "`owner` `a b` in sod rule `s`");

    let p = load(
        "[[role]]\nid = \"admin\"\nprivileged = true\napproval = [\"manager\", \"owner:E1\"]\nmax_duration = \"2s\"\ngrant = [\"directory:admins\"]\n\n\
         [[role]]\nid = \"birthright\"\nwhen = { status = \"active\" }\ngrant = [\"directory:staff\"]\n\n\
         [[role]]\nid = \"quiet\"\nprivileged = true\nrequestable = false\napproval = \"manager\"\nwhen = { status = \"active\" }\ngrant = [\"directory:ops\"]\n\n\
         [[sod]]\nid = \"s\"\nconflict = [\"payroll:view\", \"payroll:create-payment\"]\nmode = \"record\"\nowner = \"E1\"\n",
    )
    .unwrap();
    let admin = p.role("admin").unwrap();
    assert!(admin.requestable, "privileged roles are requestable");
    assert_eq!(
        admin.approval,
        [tenure_policy::ApprovalStage::Manager, tenure_policy::ApprovalStage::Owner("E1".into())]
    );
    assert_eq!(admin.max_duration, Some(2), "seconds, for tests");
    assert!(!p.role("birthright").unwrap().requestable);
    assert!(!p.role("quiet").unwrap().requestable, "`requestable = false` wins");
    assert_eq!((p.sod[0].mode, p.sod[0].owner.as_deref()), (tenure_policy::SodMode::Record, Some("E1")));
}

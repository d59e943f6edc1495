//! Campaign decisions without IO, driven with data: what each scope selects from the holdings
//! (and why each item is held), who reviews whom (a manager, the manager's manager when the
//! manager is not active, a named owner, nobody reviewing their own access), the due date and
//! escalation forms, and the outcome of an item. The identities are a fixed roster.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use super::select::{self, CampaignScope, People, ReviewerRule, UNMANAGED};
use std::collections::{BTreeMap, HashMap};
use tenure_core::config::Config;
use tenure_core::plan::{AccountView, Holdings};
use tenure_core::{Attrs, CampaignState, Entitlement, Identity, Kind, OpState, ReviewDecision, ReviewOutcome, Status};
use tenure_policy::{Desired, Policy};

const CONFIG: &str = r#"
[[source]]
name = "hr"
kind = "csv"
key = "employee_id"

[[target]]
name = "directory"
kind = "ldap"
url = "ldap://127.0.0.1:9"
bind_dn = "cn=admin,dc=example,dc=com"
password_env = "DIRECTORY_PASSWORD"
users_dn = "ou=people,dc=example,dc=com"
groups_dn = "ou=groups,dc=example,dc=com"
disabled_dn = "ou=disabled,dc=example,dc=com"

[[target]]
name = "warehouse"
kind = "postgres"
url_env = "WAREHOUSE_URL"
"#;

const POLICY: &str = r#"
[[role]]
id = "staff"
when = { status = "active" }
grant = ["directory:staff"]

[[role]]
id = "engineering"
when = { status = "active", department = "Engineering" }
grant = ["directory:engineers", "warehouse:analyst"]

[[role]]
id = "warehouse-admin"
privileged = true
approval = "manager"
grant = ["warehouse:admin"]
"#;

/// `id username status manager`: E1 runs the company; E2 reports to E1, E3 to E2 (who is on
/// leave: suspended), E4 to E3; E5 has no manager; E6 left.
const ROSTER: &[&str] = &[
    "E1 ada active -",
    "E2 bob suspended E1",
    "E3 cy active E2",
    "E4 dee active E3",
    "E5 eve active -",
    "E6 fay terminated E1",
    "E7 gus active E7",
];

fn config() -> Config {
    tenure_core::config::parse("tenure.toml", CONFIG).unwrap()
}

fn policy(config: &Config) -> Policy {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    tenure_policy::parse("policy.toml", POLICY, config, today).unwrap()
}

fn roster(config: &Config) -> Vec<Identity> {
    let (username, manager) = (config.schema.slot_of("username"), config.schema.slot_of("manager_id"));
    ROSTER
        .iter()
        .map(|line| {
            let [id, name, status, boss] = line.split(' ').collect::<Vec<_>>()[..] else { panic!("`{line}`") };
            let status: Status = status.parse().unwrap();
            let mut attrs = Attrs::new(&config.schema);
            attrs.set(username, Some(name));
            attrs.set(manager, (boss != "-").then_some(boss));
            Identity::new(id, Kind::Employee, status, attrs)
        })
        .collect()
}

/// Holdings from `identity target:name,target:name` lines.
fn holdings(lines: &[&str]) -> HashMap<String, Holdings> {
    let mut out: HashMap<String, Holdings> = HashMap::new();
    for line in lines {
        let (id, grants) = line.split_once(' ').unwrap();
        let h = out.entry(id.to_string()).or_default();
        for g in grants.split(',') {
            let e = Entitlement::parse(g).unwrap();
            let acct = h.entry(e.target.clone()).or_insert_with(|| AccountView {
                exists: true,
                enabled: true,
                ..AccountView::default()
            });
            acct.grants.insert(e.name);
        }
    }
    out
}

/// Desired access from `identity target:name=role+role` lines.
fn desired(lines: &[&str]) -> HashMap<String, Desired> {
    let mut out: HashMap<String, Desired> = HashMap::new();
    for line in lines {
        let (id, rest) = line.split_once(' ').unwrap();
        for part in rest.split(' ') {
            let (ent, roles) = part.split_once('=').unwrap();
            let e = Entitlement::parse(ent).unwrap();
            out.entry(id.to_string())
                .or_default()
                .entry(e.target)
                .or_default()
                .insert(e.name, roles.split('+').map(str::to_string).collect());
        }
    }
    out
}

const HELD: &[&str] = &[
    "E1 directory:staff,warehouse:admin",
    "E3 directory:staff,directory:engineers,warehouse:analyst",
    "E4 directory:staff,directory:book-club",
    "E6 directory:staff",
];

const DESIRED: &[&str] = &[
    "E1 directory:staff=staff",
    "E3 directory:staff=staff directory:engineers=engineering warehouse:analyst=engineering",
    "E4 directory:staff=staff",
];

/// What `scope` selects, as `identity entitlement why` lines.
fn check_scope(scope: &str, expect: &[&str]) {
    let config = config();
    let policy = policy(&config);
    let scope = CampaignScope::parse(scope, &config, &policy).unwrap();
    let mut requested: HashMap<String, BTreeMap<Entitlement, Vec<String>>> = HashMap::new();
    requested
        .entry("E1".into())
        .or_default()
        .insert(Entitlement::parse("warehouse:admin").unwrap(), vec!["request:7".into()]);
    let got: Vec<String> =
        select::select(&scope, &policy, &roster(&config), &holdings(HELD), &desired(DESIRED), &requested)
            .into_iter()
            .map(|s| format!("{} {} {}", s.identity, s.entitlement, s.why.join("+")))
            .collect();
    assert_eq!(got, expect, "{scope:?}");
}

#[test]
fn each_scope_selects_the_held_access_it_names_with_why_it_is_held() {
    // A terminated identity (E6) is never reviewed: a leaver holds nothing to certify.
    check_scope(
        "target:directory",
        &[
            "E1 directory:staff staff",
            "E3 directory:engineers engineering",
            "E3 directory:staff staff",
            &format!("E4 directory:book-club {UNMANAGED}"),
            "E4 directory:staff staff",
        ],
    );
    check_scope("role:engineering", &["E3 directory:engineers engineering", "E3 warehouse:analyst engineering"]);
    check_scope(
        "entitlement:directory:staff",
        &["E1 directory:staff staff", "E3 directory:staff staff", "E4 directory:staff staff"],
    );
    check_scope("privileged", &["E1 warehouse:admin request:7"]);
    check_scope("entitlement:warehouse:nobody-holds-it", &[]);
}

#[test]
fn a_scope_naming_nothing_known_is_refused_with_what_exists() {
    let config = config();
    let policy = policy(&config);
    let refused = |s: &str, want: &str| {
        let e = CampaignScope::parse(s, &config, &policy).unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    };
    refused("target:payroll", "unknown target `payroll`; targets in the config: directory, warehouse");
    refused("role:admins", "unknown role `admins`; roles in the policy: staff, engineering, warehouse-admin");
    refused("entitlement:chat:everyone", "unknown target `chat`");
    refused("entitlement:directory", "malformed");
    refused("everything", "expected `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`");
    refused("group:x", "is malformed");
}

/// Who reviews each subject under `rule`, as `subject reviewer [note]` lines.
fn check_reviewers(rule: &str, subjects: &[&str], expect: &[&str]) {
    let config = config();
    let people = People::new(&roster(&config), &config);
    let rule = ReviewerRule::parse(rule).unwrap();
    let got: Vec<String> = subjects
        .iter()
        .map(|s| {
            let (r, note) = select::reviewer_for(&rule, s, &people, "creator");
            match note {
                Some(n) => format!("{s} {r} [{n}]"),
                None => format!("{s} {r}"),
            }
        })
        .collect();
    assert_eq!(got, expect, "{rule:?}");
}

#[test]
fn the_manager_reviews_or_the_managers_manager_when_the_manager_is_not_active() {
    check_reviewers(
        "manager",
        &["E2", "E3", "E4", "E5", "E7", "nobody"],
        &[
            "E2 E1",
            // E3's manager E2 is on leave: E2's manager reviews.
            "E3 E1 [manager `E2` is not active: their manager reviews]",
            "E4 E3",
            "E5 creator [`E5` has no active manager: the campaign's creator reviews]",
            // Nobody is their own reviewer.
            "E7 creator [`E7` has no active manager: the campaign's creator reviews]",
            "nobody creator [`nobody` has no active manager: the campaign's creator reviews]",
        ],
    );
}

#[test]
fn a_named_owner_reviews_everyone_but_themselves() {
    check_reviewers(
        "owner:cy",
        &["E1", "E4", "E3"],
        &["E1 E3", "E4 E3", "E3 E1 [`E3` may not review their own access: their manager reviews]"],
    );
    check_reviewers(
        "owner:E5",
        &["E5"],
        &[
            "E5 creator [`E5` may not review their own access and has no active manager: the campaign's creator reviews]",
        ],
    );
    assert!(ReviewerRule::parse("owner:").is_err());
    assert!(ReviewerRule::parse("managers").is_err());
    assert_eq!(ReviewerRule::parse("owner: ada ").unwrap(), ReviewerRule::Owner("ada".into()));
}

#[test]
fn due_dates_end_at_midnight_and_escalation_takes_days_or_durations() {
    assert_eq!(tenure_core::clock::stamp(select::due_at("2030-01-01").unwrap()), "2030-01-02T00:00:00.000000Z");
    assert_eq!(
        tenure_core::clock::stamp(select::due_at("2030-01-01T09:30:00+01:00").unwrap()),
        "2030-01-01T08:30:00.000000Z"
    );
    assert!(select::due_at("2030-02-30").unwrap_err().contains("no such calendar date"));
    assert!(select::due_at("next week").is_err());
    assert_eq!(select::escalate_after("3"), Ok(3 * 86_400));
    assert_eq!(select::escalate_after("12h"), Ok(12 * 3_600));
    assert_eq!(select::escalate_after("90s"), Ok(90));
    assert!(select::escalate_after("0").is_err());
    assert!(select::escalate_after("soon").is_err());
    let t = |s: &str| tenure_core::clock::parse_stamp(s).unwrap();
    let created = t("2030-01-01T00:00:00Z");
    assert!(!select::escalation_due(created, Some(86_400), t("2030-01-01T23:59:59Z")));
    assert!(select::escalation_due(created, Some(86_400), t("2030-01-02T00:00:00Z")));
    assert!(!select::escalation_due(created, None, t("2099-01-01T00:00:00Z")));
    let due = Some(t("2030-01-10T00:00:00Z"));
    assert!(!select::reminder_due(due, t("2030-01-08T23:59:59Z")), "more than a day before");
    assert!(select::reminder_due(due, t("2030-01-09T00:00:00Z")));
    assert!(!select::reminder_due(due, t("2030-01-10T00:00:00Z")), "due: the timeout's, not a reminder");
}

#[test]
fn an_items_outcome_is_its_decision_then_its_revocations_state() {
    let item =
        |decision: Option<ReviewDecision>, op: Option<OpState>, not_held: bool| tenure_store::campaigns::ItemRecord {
            id: 1,
            campaign_id: 1,
            campaign_state: CampaignState::Open,
            identity: "E1".into(),
            target: "directory".into(),
            entitlement: "staff".into(),
            why: vec![],
            reviewer: "E2".into(),
            decision,
            justification: None,
            decided_at: None,
            decided_by: None,
            note: None,
            escalated_at: None,
            operation_id: op.map(|_| 9),
            operation_state: op,
            verified_at: None,
            applied_by: None,
            applied_at: None,
            not_held,
        };
    use ReviewDecision::{Keep, Revoke};
    let cases = [
        (None, None, false, None),
        (Some(Keep), None, false, Some(ReviewOutcome::Kept)),
        (Some(Revoke), None, false, None),
        (Some(Revoke), None, true, Some(ReviewOutcome::NotHeld)),
        (Some(Revoke), Some(OpState::Pending), false, Some(ReviewOutcome::Revoking)),
        (Some(Revoke), Some(OpState::Held), false, Some(ReviewOutcome::Held)),
        (Some(Revoke), Some(OpState::Verified), false, Some(ReviewOutcome::Revoked)),
        (Some(Revoke), Some(OpState::Failed), false, Some(ReviewOutcome::Failed)),
        (Some(Revoke), Some(OpState::Excepted), false, Some(ReviewOutcome::Excepted)),
    ];
    for (d, op, not_held, want) in cases {
        assert_eq!(select::outcome(&item(d, op, not_held)), want, "{d:?} {op:?} {not_held}");
    }
}

//! Approver resolution, the decider check, durations and SoD prediction over data, without IO.

use super::decide::{self, People, Person};
use std::collections::{BTreeMap, BTreeSet};
use tenure_core::error::Code;
use tenure_core::{Entitlement, Status};

/// A roster: `(id, username, status, manager)`.
struct Roster(BTreeMap<String, Person>);

fn roster(rows: &[(&str, &str, Status, Option<&str>)]) -> Roster {
    Roster(
        rows.iter()
            .map(|(id, u, s, m)| {
                let p =
                    Person { id: (*id).into(), username: Some((*u).into()), status: *s, manager_id: m.map(Into::into) };
                ((*id).to_string(), p)
            })
            .collect(),
    )
}

impl People for Roster {
    fn by_id(&self, id: &str) -> Option<Person> {
        self.0.get(id).cloned()
    }

    fn by_username(&self, username: &str) -> Option<Person> {
        self.0.values().find(|p| p.username.as_deref() == Some(username)).cloned()
    }
}

fn company() -> Roster {
    use Status::*;
    roster(&[
        ("E1", "ceo", Active, None),
        ("E2", "vp", Active, Some("E1")),
        ("E3", "lead", Suspended, Some("E2")),
        ("E4", "dev", Active, Some("E3")),
        ("E5", "gone", Terminated, Some("E2")),
        ("E6", "newbie", Active, Some("E5")),
        ("E7", "loop-a", Active, Some("E8")),
        ("E8", "loop-b", Suspended, Some("E7")),
    ])
}

fn policy(src: &str) -> tenure_policy::Policy {
    let config = tenure_core::config::parse(
        "tenure.toml",
        "[[target]]\nname = \"warehouse\"\nkind = \"postgres\"\nurl_env = \"W\"\n\n[[target]]\nname = \"payroll\"\nkind = \"manual\"\nowner = \"p\"\n",
    )
    .unwrap();
    tenure_policy::parse("policy.toml", src, &config, chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()).unwrap()
}

const POLICY: &str = r#"
[[role]]
id = "admin"
privileged = true
approval = ["manager", "owner:E1"]
max_duration = "8h"
grant = ["warehouse:admin"]

[[role]]
id = "approver"
approval = "manager"
grant = ["payroll:approve"]

[[role]]
id = "creator"
approval = "owner:ceo"
grant = ["payroll:create"]

[[role]]
id = "auditor"
approval = "manager"
grant = ["payroll:audit"]

[[sod]]
id = "payments"
conflict = ["payroll:create", "payroll:approve"]
action = "block"

[[sod]]
id = "watch"
conflict = ["payroll:audit", "payroll:create"]
action = "flag"
owner = "E2"

[[sod]]
id = "rollout"
conflict = ["payroll:audit", "payroll:approve"]
action = "block"
mode = "record"
"#;

/// `(identity, requester)` -> the resolved approvers, or the refusal's code.
fn check_stages(role: &str, identity: &str, requester: &str, expect: Result<&[&str], Code>) {
    let people = company();
    let p = policy(POLICY);
    let role = p.role(role).unwrap();
    let got = decide::stages(&people, role, &people.by_id(identity).unwrap(), requester, &[]);
    match (got, expect) {
        (Ok(stages), Ok(want)) => {
            let ids: Vec<&str> = stages.iter().map(|s| s.approver.as_str()).collect();
            assert_eq!(ids, want, "{identity} asked by {requester}");
        }
        (Err(r), Err(code)) => assert_eq!(r.code, code, "{identity} asked by {requester}: {}", r.message),
        (got, want) => panic!("{identity} asked by {requester}: got {got:?}, wanted {want:?}"),
    }
}

#[test]
fn approvers_resolve_stage_by_stage_up_the_manager_chain() {
    // The manager approves, then the named owner.
    check_stages("admin", "E2", "E2", Ok(&["E1", "E1"]));
    // A suspended manager is passed over for the manager's manager.
    check_stages("admin", "E4", "E4", Ok(&["E2", "E1"]));
    // A terminated manager too.
    check_stages("approver", "E6", "E6", Ok(&["E2"]));
    // The requester is never their own approver: the chain goes up past them.
    check_stages("approver", "E4", "E2", Ok(&["E1"]));
    // An owner given as a username resolves to the identity id.
    check_stages("creator", "E4", "E4", Ok(&["E1"]));
}

#[test]
fn resolution_refuses_self_approval_and_chains_that_end() {
    // The top of the tree has no manager.
    check_stages("approver", "E1", "E1", Err(Code::RequestRefused));
    // The owner is the identity itself, or the requester.
    check_stages("creator", "E1", "E2", Err(Code::SelfApproval));
    check_stages("creator", "E4", "ceo", Err(Code::SelfApproval));
    // A cycle of inactive managers ends.
    check_stages("approver", "E7", "E7", Err(Code::RequestRefused));
}

#[test]
fn a_flagged_conflict_adds_a_stage_for_its_owner_or_the_manager() {
    let people = company();
    let p = policy(POLICY);
    let role = p.role("approver").unwrap();
    let e4 = people.by_id("E4").unwrap();
    let stages = decide::stages(&people, role, &e4, "E4", &[("watch", Some("E1")), ("other", None)]).unwrap();
    let got: Vec<(String, String)> = stages.into_iter().map(|s| (s.rule, s.approver)).collect();
    let want = [("manager", "E2"), ("sod:watch", "E1"), ("sod:other", "E2")];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
}

#[test]
fn only_the_resolved_approver_decides_and_never_for_themselves() {
    let people = company();
    // (decider, approver, identity, requester) -> allowed or the code.
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Result<(), Code>);
    let cases: &[Case<'_>] = &[
        ("E2", "E2", "E4", "E4", Ok(())),
        ("vp", "E2", "E4", "E4", Ok(())),
        ("E1", "E2", "E4", "E4", Err(Code::NotApprover)),
        ("E4", "E2", "E4", "E4", Err(Code::SelfApproval)),
        ("dev", "E2", "E4", "helpdesk", Err(Code::SelfApproval)),
        ("helpdesk", "E2", "E4", "helpdesk", Err(Code::SelfApproval)),
        ("vp", "E2", "E4", "E2", Err(Code::SelfApproval)),
        ("stranger", "E2", "E4", "E4", Err(Code::NotApprover)),
        // An owner that is no identity approves under that name.
        ("payroll-admins", "payroll-admins", "E4", "E4", Ok(())),
    ];
    for (decider, approver, identity, requester, want) in cases {
        let got = decide::may_approve(&people, decider, approver, identity, requester).map_err(|r| r.code);
        assert_eq!(&got, want, "{decider} deciding for {approver} on {identity} asked by {requester}");
    }
}

#[test]
fn durations_stay_within_max_duration() {
    let p = policy(POLICY);
    let admin = p.role("admin").unwrap();
    let approver = p.role("approver").unwrap();
    assert_eq!(decide::duration(admin, Some(2), Some("2s")), Ok(Some(2)));
    assert_eq!(decide::duration(admin, None, None), Ok(Some(8 * 3600)));
    assert_eq!(decide::duration(admin, Some(9 * 3600), Some("9h")).map_err(|r| r.code), Err(Code::RequestRefused));
    assert_eq!(decide::duration(approver, None, None), Ok(None));
    assert_eq!(decide::duration(approver, Some(60), Some("1m")), Ok(Some(60)));
}

fn ents(list: &[&str]) -> Vec<Entitlement> {
    list.iter().map(|e| Entitlement::parse(e).unwrap()).collect()
}

#[test]
fn sod_is_predicted_block_flag_and_record() {
    let p = policy(POLICY);
    // (held, requested) -> (blocks, flags, recorded) rule ids.
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (&["payroll:create"], &["payroll:approve"], &["payments"], &[], &[]),
        (&["payroll:approve"], &["payroll:create"], &["payments"], &[], &[]),
        (&["payroll:audit"], &["payroll:create"], &[], &["watch"], &[]),
        (&["payroll:audit"], &["payroll:approve"], &[], &[], &["rollout"]),
        (&[], &["payroll:create"], &[], &[], &[]),
        // Held conflicts the request does not touch are not the request's.
        (&["payroll:create", "payroll:approve"], &["warehouse:admin"], &[], &[], &[]),
    ];
    for (held, requested, blocks, flags, recorded) in cases {
        let have: BTreeSet<Entitlement> = ents(held).into_iter().collect();
        let got = decide::predict(&p, &have, &ents(requested));
        let ids = |hits: &[tenure_policy::SodHit]| hits.iter().map(|h| h.rule.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&got.blocks), *blocks, "{held:?} + {requested:?}");
        assert_eq!(ids(&got.flags), *flags, "{held:?} + {requested:?}");
        assert_eq!(ids(&got.recorded), *recorded, "{held:?} + {requested:?}");
        assert_eq!(got.refusal("r", "E4").is_some(), !blocks.is_empty());
    }
    let refusal = decide::predict(&p, &ents(&["payroll:create"]).into_iter().collect(), &ents(&["payroll:approve"]))
        .refusal("approver", "E4")
        .unwrap();
    assert_eq!(refusal.code, Code::SodConflict);
    assert!(refusal.message.contains("sod rule `payments` blocks"), "{}", refusal.message);
}

//! The planner: desired entitlements minus what an identity holds gives operations.
//!
//! Planning is a pure function of the identity's status, what Tenure has already committed to
//! (accounts and grants, including operations still pending) and the desired entitlements. Running
//! it twice on the same inputs yields the same operations; running it on its own output yields
//! none, which is what makes re-importing a snapshot a no-op.

use crate::model::{OpKind, Status};
use std::collections::{BTreeMap, BTreeSet};

/// Tenure's committed view of one account in one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountView {
    pub exists: bool,
    pub enabled: bool,
    pub grants: BTreeSet<String>,
    /// The account's name in the target, fixed when it is created (the planner never changes
    /// it; the engine names new accounts).
    pub name: Option<String>,
}

/// Committed state of one identity: target name -> account.
pub type Holdings = BTreeMap<String, AccountView>;

/// One operation to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOp {
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
}

impl PlannedOp {
    fn new(target: &str, kind: OpKind, entitlement: Option<&str>) -> Self {
        Self { target: target.to_string(), kind, entitlement: entitlement.map(str::to_string) }
    }
}

/// What the planner decided: the operations in execution order and the resulting holdings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<PlannedOp>,
    pub holdings: Holdings,
}

/// Plans the operations that take `held` to `desired` for an identity in `status`.
///
/// `desired` maps target -> entitlement names. A terminated identity ignores `desired`: every
/// account is disabled, its sessions revoked and every grant revoked. A suspended identity's
/// accounts are disabled and its sessions revoked. Otherwise missing accounts are created,
/// disabled ones are enabled when the identity is active, and grants follow `desired` exactly
/// (lost qualifications are revoked; nothing is only ever added).
pub fn plan(status: Status, held: &Holdings, desired: &BTreeMap<String, BTreeSet<String>>) -> Plan {
    let mut ops = Vec::new();
    let mut holdings = held.clone();
    match status {
        Status::Terminated => {
            for (target, acct) in &mut holdings {
                if acct.exists && acct.enabled {
                    ops.push(PlannedOp::new(target, OpKind::Disable, None));
                    ops.push(PlannedOp::new(target, OpKind::RevokeSessions, None));
                    acct.enabled = false;
                }
                for g in std::mem::take(&mut acct.grants) {
                    ops.push(PlannedOp::new(target, OpKind::Revoke, Some(&g)));
                }
            }
        }
        Status::Active | Status::Prehire | Status::Suspended => {
            let empty = BTreeSet::new();
            let targets: BTreeSet<&String> = desired.keys().chain(held.keys()).collect();
            for target in targets {
                let want = desired.get(target).unwrap_or(&empty);
                let acct = holdings.entry(target.clone()).or_default();
                if !acct.exists && want.is_empty() {
                    continue;
                }
                // Accounts follow entitlements: an account nothing is desired on is disabled,
                // because a bare login is access too.
                let needed = !want.is_empty();
                if !acct.exists {
                    ops.push(PlannedOp::new(target, OpKind::CreateAccount, None));
                    acct.exists = true;
                    // A prehire's account is created disabled; it is enabled on the start date.
                    acct.enabled = status == Status::Active;
                    if status == Status::Prehire {
                        ops.push(PlannedOp::new(target, OpKind::Disable, None));
                    }
                } else if status == Status::Active && needed && !acct.enabled {
                    ops.push(PlannedOp::new(target, OpKind::Enable, None));
                    acct.enabled = true;
                }
                if (status == Status::Suspended || !needed) && acct.enabled {
                    ops.push(PlannedOp::new(target, OpKind::Disable, None));
                    ops.push(PlannedOp::new(target, OpKind::RevokeSessions, None));
                    acct.enabled = false;
                }
                // A disabled account holds no grants (a directory strips group memberships when
                // it disables an entry); they are granted again when it is enabled.
                let want = if acct.enabled { want } else { &empty };
                let lost: Vec<String> = acct.grants.difference(want).cloned().collect();
                for g in lost {
                    ops.push(PlannedOp::new(target, OpKind::Revoke, Some(&g)));
                    acct.grants.remove(&g);
                }
                for g in want.difference(&acct.grants.clone()) {
                    ops.push(PlannedOp::new(target, OpKind::Grant, Some(g)));
                    acct.grants.insert(g.clone());
                }
            }
            holdings.retain(|_, a| a.exists);
        }
    }
    Plan { ops, holdings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn want(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        pairs.iter().map(|(t, gs)| (t.to_string(), gs.iter().map(|g| g.to_string()).collect())).collect()
    }

    fn ops(p: &Plan) -> Vec<String> {
        p.ops
            .iter()
            .map(|o| {
                format!(
                    "{} {}{}",
                    o.target,
                    o.kind,
                    o.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_joiner_gets_accounts_then_grants() {
        let p = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff", "eng"]), ("chat", &["all"])]));
        assert_eq!(
            ops(&p),
            ["chat create_account", "chat grant all", "dir create_account", "dir grant eng", "dir grant staff"]
        );
    }

    #[test]
    fn a_mover_loses_what_no_rule_grants() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff", "eng"])])).holdings;
        let p = plan(Status::Active, &held, &want(&[("dir", &["staff", "sales"])]));
        assert_eq!(ops(&p), ["dir revoke eng", "dir grant sales"]);
    }

    #[test]
    fn a_leaver_is_disabled_and_loses_everything() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"]), ("db", &["analyst"])])).holdings;
        let p = plan(Status::Terminated, &held, &want(&[("dir", &["staff"])]));
        assert_eq!(
            ops(&p),
            [
                "db disable",
                "db revoke_sessions",
                "db revoke analyst",
                "dir disable",
                "dir revoke_sessions",
                "dir revoke staff"
            ]
        );
        assert!(p.holdings.values().all(|a| a.exists && !a.enabled && a.grants.is_empty()));
    }

    #[test]
    fn a_rehire_is_enabled_with_birthright_only() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff", "admin"])])).holdings;
        let gone = plan(Status::Terminated, &held, &BTreeMap::new()).holdings;
        let p = plan(Status::Active, &gone, &want(&[("dir", &["staff"])]));
        assert_eq!(ops(&p), ["dir enable", "dir grant staff"]);
    }

    #[test]
    fn an_account_nothing_is_desired_on_is_disabled() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("db", &["analyst"]), ("dir", &["staff"])])).holdings;
        let p = plan(Status::Active, &held, &want(&[("dir", &["staff"])]));
        assert_eq!(ops(&p), ["db disable", "db revoke_sessions", "db revoke analyst"]);
        let back = plan(Status::Active, &p.holdings, &want(&[("dir", &["staff"])]));
        assert!(back.ops.is_empty());
    }

    #[test]
    fn a_suspended_identity_is_disabled_and_regranted_on_resume() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"])])).holdings;
        let p = plan(Status::Suspended, &held, &want(&[("dir", &["staff"])]));
        assert_eq!(ops(&p), ["dir disable", "dir revoke_sessions", "dir revoke staff"]);
        let back = plan(Status::Active, &p.holdings, &want(&[("dir", &["staff"])]));
        assert_eq!(ops(&back), ["dir enable", "dir grant staff"]);
    }

    fn arb_desired() -> impl Strategy<Value = BTreeMap<String, BTreeSet<String>>> {
        proptest::collection::btree_map("[ab]", proptest::collection::btree_set("[a-d]", 0..4), 0..3)
    }

    fn arb_status() -> impl Strategy<Value = Status> {
        proptest::sample::select(Status::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn planning_is_idempotent(d1 in arb_desired(), d2 in arb_desired(), s1 in arb_status(), s2 in arb_status()) {
            let first = plan(s1, &Holdings::new(), &d1);
            let second = plan(s2, &first.holdings, &d2);
            let again = plan(s2, &second.holdings, &d2);
            prop_assert!(again.ops.is_empty(), "replanning produced {:?}", again.ops);
        }

        #[test]
        fn holdings_match_desired_for_active_identities(d1 in arb_desired(), d2 in arb_desired()) {
            let first = plan(Status::Active, &Holdings::new(), &d1);
            let second = plan(Status::Active, &first.holdings, &d2);
            for (t, acct) in &second.holdings {
                let want = d2.get(t).cloned().unwrap_or_default();
                prop_assert_eq!(&acct.grants, &want);
                prop_assert_eq!(acct.enabled, !want.is_empty(), "accounts follow entitlements");
            }
        }

        #[test]
        fn disabled_accounts_hold_no_grants(d1 in arb_desired(), d2 in arb_desired(), s in arb_status()) {
            let first = plan(Status::Active, &Holdings::new(), &d1);
            let next = plan(s, &first.holdings, &d2);
            prop_assert!(next.holdings.values().all(|a| a.enabled || a.grants.is_empty()));
        }

        #[test]
        fn terminated_identities_hold_nothing_enabled(d1 in arb_desired(), d2 in arb_desired()) {
            let first = plan(Status::Active, &Holdings::new(), &d1);
            let gone = plan(Status::Terminated, &first.holdings, &d2);
            prop_assert!(gone.holdings.values().all(|a| !a.enabled && a.grants.is_empty()));
        }
    }
}

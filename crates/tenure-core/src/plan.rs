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

/// An operation already queued for an identity that is not finished: never attempted, a manual
/// ticket nobody has carried out yet, or attempted without a verified result (failed, or waiting
/// for a retry). A new plan may keep or cancel it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    /// It was attempted, so it may have taken effect in the target even though nothing verified
    /// it. Such an operation is assumed to have taken effect: if the new plan does not want its
    /// effect, the plan undoes it (a revoke of a grant that may have landed), and the operation
    /// itself is cancelled so that no retry can bring it back.
    pub attempted: bool,
}

/// The holdings as they were before `queued` (in queue order) took effect, undoing them last
/// first. Holdings describe what Tenure committed to, pending operations included, so this is
/// what the targets hold once the operations already under way are done.
pub fn unapply(held: &Holdings, queued: &[Queued]) -> Holdings {
    let mut h = held.clone();
    for q in queued.iter().rev() {
        let acct = h.entry(q.target.clone()).or_default();
        match (q.kind, &q.entitlement) {
            (OpKind::CreateAccount, _) => *acct = AccountView::default(),
            (OpKind::Enable, _) => acct.enabled = false,
            (OpKind::Disable, _) => acct.enabled = true,
            (OpKind::DeleteAccount, _) => {
                acct.exists = true;
                acct.enabled = false;
            }
            (OpKind::Grant, Some(g)) => {
                acct.grants.remove(g);
            }
            (OpKind::Revoke, Some(g)) => {
                acct.grants.insert(g.clone());
            }
            _ => {}
        }
    }
    h.retain(|_, a| a.exists);
    h
}

/// Holdings after `ops` (target, kind, entitlement) took effect, in order, starting from
/// `from`. Folding an identity's verified operations from nothing gives what the targets were
/// last read back to hold, as opposed to what Tenure has planned.
pub fn apply_ops<'a>(from: &Holdings, ops: impl IntoIterator<Item = (&'a str, OpKind, Option<&'a str>)>) -> Holdings {
    let mut h = from.clone();
    for (target, kind, entitlement) in ops {
        let acct = h.entry(target.to_string()).or_default();
        match (kind, entitlement) {
            (OpKind::CreateAccount, _) => {
                acct.exists = true;
                acct.enabled = true;
            }
            (OpKind::Enable, _) => acct.enabled = true,
            (OpKind::Disable, _) => acct.enabled = false,
            (OpKind::DeleteAccount, _) => *acct = AccountView::default(),
            (OpKind::Grant, Some(g)) => {
                acct.grants.insert(g.to_string());
            }
            (OpKind::Revoke, Some(g)) => {
                acct.grants.remove(g);
            }
            _ => {}
        }
    }
    h.retain(|_, a| a.exists || !a.grants.is_empty());
    h
}

/// A plan made over operations that are queued but have not taken effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replan {
    /// Operations to add, in execution order, after the kept ones.
    pub ops: Vec<PlannedOp>,
    pub holdings: Holdings,
    /// Queued operations the new plan needs, left in the queue as they are.
    pub keep: Vec<i64>,
    /// Queued operations the new desired state no longer needs.
    pub cancel: Vec<i64>,
}

/// Plans `desired` for an identity whose `held` holdings include `queued` operations that have
/// not taken effect. The plan is made from the state before them; queued operations it needs are
/// kept (in their queue order, so they still run first), the others are cancelled, and only the
/// rest is added. A leaver whose joiner operations never ran therefore gets no account created
/// and then disabled: the queued creation is cancelled and nothing is added.
pub fn replan(
    status: Status,
    held: &Holdings,
    queued: &[Queued],
    desired: &BTreeMap<String, BTreeSet<String>>,
) -> Replan {
    if queued.is_empty() {
        let p = plan(status, held, desired);
        return Replan { ops: p.ops, holdings: p.holdings, keep: Vec::new(), cancel: Vec::new() };
    }
    let (uncertain, untried): (Vec<&Queued>, Vec<&Queued>) = queued.iter().partition(|q| q.attempted);
    let untried: Vec<Queued> = untried.into_iter().cloned().collect();
    let queued = untried.as_slice();
    // Attempted operations are taken as done (they stay in `held`); only untried ones are undone.
    let base = unapply(held, queued);
    let fresh = plan(status, &base, desired);
    let mut used = vec![false; queued.len()];
    let mut keep = Vec::new();
    let mut ops = Vec::new();
    // Kept operations keep their relative order and run before anything added (they are earlier
    // in the queue), so a queued operation is kept only ahead of the last kept one and only if it
    // may run before every operation added so far.
    let commute = |a: &PlannedOp, b: &PlannedOp| {
        let grant_like = |k: OpKind| matches!(k, OpKind::Grant | OpKind::Revoke);
        a.target != b.target || (grant_like(a.kind) && grant_like(b.kind) && a.entitlement != b.entitlement)
    };
    let mut cursor = 0;
    for op in fresh.ops {
        let found = ops.iter().all(|added| commute(added, &op)).then(|| {
            queued
                .iter()
                .skip(cursor)
                .position(|q| q.target == op.target && q.kind == op.kind && q.entitlement == op.entitlement)
        });
        match found.flatten() {
            Some(offset) => {
                let at = cursor + offset;
                if let (Some(u), Some(q)) = (used.get_mut(at), queued.get(at)) {
                    *u = true;
                    keep.push(q.id);
                }
                cursor = at + 1;
            }
            None => ops.push(op),
        }
    }
    // Work no desired state produces (a credential rotation, an ownership transfer) is never
    // "no longer needed" by a new desired state: it stays while the account it acts on does.
    for (q, u) in queued.iter().zip(used.iter_mut()) {
        let side = matches!(q.kind, OpKind::RotateCredential | OpKind::TransferOwnership);
        let acct = fresh.holdings.get(&q.target);
        let stays = match q.kind {
            OpKind::RotateCredential => acct.is_some_and(|a| a.exists && a.enabled),
            _ => acct.is_some_and(|a| a.exists),
        };
        if side && !*u && stays {
            *u = true;
            keep.push(q.id);
        }
    }
    // An attribute update is not part of the access plan: it carries no values (the executor
    // renders the identity's attributes when it runs), so a queued one stays, whatever the new
    // plan, while its account exists and the identity is not leaving.
    let syncs = |q: &Queued| {
        q.kind == OpKind::UpdateAttributes
            && status != Status::Terminated
            && fresh.holdings.get(&q.target).is_some_and(|a| a.exists)
    };
    let mut cancel: Vec<i64> = Vec::new();
    for (q, u) in queued.iter().zip(&used) {
        if *u {
            continue;
        }
        if syncs(q) { keep.push(q.id) } else { cancel.push(q.id) }
    }
    // An attempted operation stays (a retry may still finish it) only while its effect is what
    // the new plan ends with; otherwise the plan has undone it and the operation is cancelled.
    for q in uncertain {
        let acct = fresh.holdings.get(&q.target);
        let exists = acct.is_some_and(|a| a.exists);
        let enabled = acct.is_some_and(|a| a.exists && a.enabled);
        let holds = |g: &Option<String>| g.as_ref().is_some_and(|g| acct.is_some_and(|a| a.grants.contains(g)));
        let wanted = match q.kind {
            OpKind::CreateAccount | OpKind::Enable => enabled,
            OpKind::Disable | OpKind::RevokeSessions => !enabled,
            OpKind::DeleteAccount => !exists,
            OpKind::Grant => holds(&q.entitlement),
            OpKind::Revoke => !holds(&q.entitlement),
            OpKind::RotateCredential | OpKind::TransferOwnership | OpKind::OpenTicket => exists,
            OpKind::UpdateAttributes => syncs(q),
        };
        if wanted {
            keep.push(q.id);
        } else {
            cancel.push(q.id);
        }
    }
    cancel.sort_unstable();
    keep.sort_unstable();
    Replan { ops, holdings: fresh.holdings, keep, cancel }
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

    fn queued(p: &Plan, first_id: i64) -> Vec<Queued> {
        p.ops
            .iter()
            .enumerate()
            .map(|(i, o)| Queued {
                id: first_id + i as i64,
                target: o.target.clone(),
                kind: o.kind,
                entitlement: o.entitlement.clone(),
                attempted: false,
            })
            .collect()
    }

    #[test]
    fn issue6_a_failed_create_is_cancelled_for_a_leaver_and_its_effect_undone() {
        // The joiner's create and grant failed after their retries: they may or may not have
        // landed. The person leaves.
        let joiner = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"])]));
        let mut q = queued(&joiner, 1);
        for op in &mut q {
            op.attempted = true;
        }
        let r = replan(Status::Terminated, &joiner.holdings, &q, &BTreeMap::new());
        assert_eq!(r.cancel, [1, 2], "no retry can create or grant for a leaver");
        let undo = ops(&Plan { ops: r.ops, holdings: r.holdings });
        assert_eq!(undo, ["dir disable", "dir revoke_sessions", "dir revoke staff"], "what may have landed is undone");
        // A failed grant that is still wanted stays, for a retry to finish.
        let r = replan(Status::Active, &joiner.holdings, &q, &want(&[("dir", &["staff", "eng"])]));
        assert_eq!(r.keep, [1, 2]);
        assert!(r.cancel.is_empty());
        assert_eq!(ops(&Plan { ops: r.ops, holdings: r.holdings }), ["dir grant eng"]);
    }

    #[test]
    fn a_queued_attribute_update_stays_through_a_later_plan_until_the_identity_leaves() {
        // The account exists; a mover's attribute update is queued (untried, or attempted and
        // waiting for a retry). A later change that plans nothing for attributes keeps it: it
        // pushes the identity's attributes as they are when it runs.
        let joiner = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"])]));
        for attempted in [false, true] {
            let q =
                [Queued { id: 7, target: "dir".into(), kind: OpKind::UpdateAttributes, entitlement: None, attempted }];
            let r = replan(Status::Active, &joiner.holdings, &q, &want(&[("dir", &["staff", "eng"])]));
            assert_eq!((r.keep.as_slice(), r.cancel.as_slice()), (&[7][..], &[][..]), "attempted: {attempted}");
            assert_eq!(ops(&Plan { ops: r.ops, holdings: r.holdings }), ["dir grant eng"]);
            let r = replan(Status::Terminated, &joiner.holdings, &q, &BTreeMap::new());
            assert_eq!((r.keep.as_slice(), r.cancel.as_slice()), (&[][..], &[7][..]), "attempted: {attempted}");
        }
    }

    #[test]
    fn issue6_a_leaver_whose_joiner_operations_never_ran_gets_nothing_created_or_disabled() {
        let joiner = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"]), ("pay", &["record"])]));
        let r = replan(Status::Terminated, &joiner.holdings, &queued(&joiner, 1), &BTreeMap::new());
        assert!(r.ops.is_empty(), "{:?}", r.ops);
        assert!(r.keep.is_empty());
        assert_eq!(r.cancel, [1, 2, 3, 4]);
        assert!(r.holdings.is_empty(), "nothing was ever created");
    }

    #[test]
    fn replanning_keeps_what_is_still_needed_and_adds_only_the_rest() {
        let joiner = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff", "eng"])]));
        // Still queued: create, grant eng, grant staff. The person moved to sales before any ran.
        let r = replan(Status::Active, &joiner.holdings, &queued(&joiner, 10), &want(&[("dir", &["staff", "sales"])]));
        assert_eq!(r.keep, [10, 12], "create and grant staff stay queued");
        assert_eq!(r.cancel, [11], "grant eng is no longer needed");
        assert_eq!(ops(&Plan { ops: r.ops, holdings: r.holdings.clone() }), ["dir grant sales"]);
        assert_eq!(r.holdings.get("dir").map(|a| a.grants.len()), Some(2));
    }

    #[test]
    fn issue10_a_queued_rotation_stays_while_its_account_is_enabled() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("warehouse", &["analyst"])])).holdings;
        let rotation = |id: i64| Queued {
            id,
            target: "warehouse".into(),
            kind: OpKind::RotateCredential,
            entitlement: None,
            attempted: false,
        };
        let r = replan(Status::Active, &held, &[rotation(7)], &want(&[("warehouse", &["analyst", "admin"])]));
        assert_eq!((r.keep.clone(), r.cancel.clone()), (vec![7], vec![]), "kept beside a new grant");
        assert_eq!(ops(&Plan { ops: r.ops, holdings: r.holdings }), ["warehouse grant admin"]);
        let r = replan(Status::Terminated, &held, &[rotation(7)], &want(&[]));
        assert_eq!(r.cancel, vec![7], "cancelled once the account is disabled");
    }

    #[test]
    fn a_queued_revocation_is_cancelled_when_the_access_is_wanted_again() {
        let held = plan(Status::Active, &Holdings::new(), &want(&[("dir", &["staff"])])).holdings;
        let leaver = plan(Status::Terminated, &held, &BTreeMap::new());
        let r = replan(Status::Active, &leaver.holdings, &queued(&leaver, 20), &want(&[("dir", &["staff"])]));
        assert!(r.ops.is_empty() && r.keep.is_empty(), "{r:?}");
        assert_eq!(r.cancel, [20, 21, 22]);
        assert_eq!(r.holdings, held);
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
        fn replanning_over_a_queue_ends_where_planning_without_it_would(
            d1 in arb_desired(), d2 in arb_desired(), d3 in arb_desired(), s2 in arb_status(), s3 in arb_status()
        ) {
            // d1 took effect; d2's operations are still queued when d3 arrives.
            let done = plan(Status::Active, &Holdings::new(), &d1);
            let queued_plan = plan(s2, &done.holdings, &d2);
            let r = replan(s3, &queued_plan.holdings, &queued(&queued_plan, 1), &d3);
            let direct = plan(s3, &done.holdings, &d3);
            prop_assert_eq!(&r.holdings, &direct.holdings);
            prop_assert_eq!(r.keep.len() + r.ops.len(), direct.ops.len());
            let again = plan(s3, &r.holdings, &d3);
            prop_assert!(again.ops.is_empty());
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

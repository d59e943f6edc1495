//! Conformance cases for credential rotations ([`crate::Credentials`]).

use super::{Failure, LEASE, Outcome, Subject, World, joiners, settle};
use crate::{Planned, RotationIn, Rotations};
use tenure_core::{OpKind, OpState};

fn rotation(identity: &str, target: &str) -> RotationIn {
    RotationIn {
        identity: identity.into(),
        target: target.into(),
        account: Some("acct".into()),
        why: "requested by alice".into(),
    }
}

/// A rotation is planned once per account while one is queued, audited with who and why, and
/// once verified it is the account's last rotation.
pub fn rotations_are_planned_once_and_their_verification_dated(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["S1", "S2"])?)?;
    settle(&w, "A")?;
    let r = Rotations { actor: "user:alice".into(), ops: vec![rotation("S1", "dir"), rotation("S2", "dir")] };
    let planned = w.store.plan_rotations(&r)?;
    let ids: Vec<i64> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Queued { operation, .. } => Some(*operation),
            Planned::AlreadyQueued { .. } => None,
        })
        .collect();
    ensure_eq!(ids.len(), 2, "both queued: {planned:?}");
    let ops = w.ops("S1")?;
    let op = ops.iter().find(|o| o.kind == OpKind::RotateCredential).cloned();
    let op = op.ok_or_else(|| Failure("no rotate_credential for S1".into()))?;
    ensure_eq!((op.state, op.account.as_deref()), (OpState::Pending, Some("acct")), "pending on the recorded account");
    let again = w.store.plan_rotations(&Rotations { actor: "user:bob".into(), ops: vec![rotation("S1", "dir")] })?;
    ensure_eq!(again, [Planned::AlreadyQueued { operation: op.id }], "once while queued");
    let audited = w.audit_records()?;
    let plans: Vec<_> = audited.iter().filter(|r| r.entry.action == "plan.rotate_credential").collect();
    ensure_eq!(plans.len(), 2, "audited once each");
    ensure!(
        plans.iter().all(|r| r.entry.actor == "user:alice"
            && r.entry.reason.as_deref().is_some_and(|x| x.contains("requested by alice"))),
        "with who and why"
    );
    ensure!(w.store.last_rotations(None)?.is_empty(), "nothing verified yet");
    ensure!(w.store.queued(Some(&["S1"]))?.is_empty(), "a rotation is not lifecycle work a replan may cancel");

    w.clock.advance(super::seconds(30));
    let claimed = w.store.claim("A", LEASE, 10)?;
    ensure_eq!(claimed.len(), 2, "claimable");
    settle_claimed(&w, &claimed)?;
    let last = w.store.last_rotations(Some(&["S1"]))?;
    ensure_eq!(last.get(&("S1".to_string(), "dir".to_string())), Some(&w.now()), "dated by its verification");
    ensure_eq!(last.len(), 1, "only the identities asked about");
    ensure_eq!(w.store.last_rotations(None)?.len(), 2, "or all");
    w.chain_verifies()
}

fn settle_claimed(w: &World, ops: &[crate::OpRecord]) -> Outcome {
    let done: Vec<crate::Finished> = ops.iter().map(|o| super::finished(o, OpState::Verified)).collect();
    ensure_eq!(w.store.finish_many(&done, &[], "A")?, done.len(), "recorded");
    Ok(())
}

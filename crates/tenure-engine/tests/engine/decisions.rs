//! What a person decides about a held batch: approving plans its events against the state at
//! approval, rejecting discards it and records why, and a newer snapshot supersedes it.

use crate::{Setup, World, snapshot};
use tenure_core::error::{Code, HasCode};
use tenure_core::{ApprovalState, ImportOutcome, Status};
use tenure_engine::decisions::{self, Approved};
use tenure_sample::starter::Guard;

const LEAVING: &[&str] = &["C01", "C02", "C03"];

/// A world whose guard holds three leavers, with that batch held; `settled` says whether the
/// crowd's joiner work was applied before.
fn held(settled: bool) -> (World, i64) {
    let guard = Guard { max_leavers: 2, max_leaver_fraction: 1.0, ..Guard::STARTER };
    let w = World::with(Setup { guard, settled, ..Setup::default() });
    assert_eq!(w.import(&snapshot(&[], LEAVING)).outcome, ImportOutcome::Held);
    let id = w.pending_approval();
    (w, id)
}

fn approve(w: &World, id: i64, by: &str) -> tenure_engine::Result<Approved> {
    decisions::approve(
        &w.app.engine().unwrap(),
        w.store().as_ref(),
        id,
        &decisions::Decider::new(by, decisions::Via::CliAs),
    )
}

/// The operations of one crowd leaver whose accounts exist.
fn leaver(id: &str) -> Vec<String> {
    [
        "chat disable",
        "chat revoke everyone [staff]",
        "directory disable",
        "directory revoke staff [staff]",
        "payroll disable",
        "payroll revoke employee-record [payroll-record]",
        "payroll revoke_sessions",
    ]
    .iter()
    .map(|op| format!("plan {id} {op}"))
    .collect()
}

#[test]
fn approving_plans_the_held_events_against_the_state_at_approval() {
    // The joiner work was applied while the batch was held: approving disables what exists.
    let (w, id) = held(false);
    w.settle();
    let (approved, lines) = w.changes(|| approve(&w, id, "ciso").unwrap());
    let Approved::Batch(ids) = approved else { panic!("{approved:?}") };
    assert_eq!((ids.events, ids.operations), (3, 21));
    assert_eq!(lines, [leaver("C01"), leaver("C02"), leaver("C03")].concat());
    assert!(LEAVING.iter().all(|c| w.status(c) == Status::Terminated));
    let approval = w.store().approval(id).unwrap();
    assert_eq!((approval.state, approval.decided_by.as_deref()), (ApprovalState::Approved, Some("ciso")));
    let audited = w.audit("approval.approved");
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].entry.approver.as_deref(), Some("ciso"));
    assert_eq!(audited[0].entry.actor, "user:ciso");

    // Still queued at approval: nothing exists to disable, and the joiner work is cancelled.
    let (w, id) = held(false);
    let (_, lines) = w.changes(|| approve(&w, id, "ciso").unwrap());
    let cancelled: Vec<&String> = lines.iter().filter(|l| l.starts_with("cancel C01 ")).collect();
    assert_eq!(
        cancelled,
        [
            "cancel C01 chat create_account",
            "cancel C01 chat grant everyone",
            "cancel C01 directory create_account",
            "cancel C01 directory grant staff",
            "cancel C01 payroll create_account",
            "cancel C01 payroll grant employee-record",
        ]
    );
    assert!(lines.iter().all(|l| l.starts_with("cancel ")), "nothing planned: {lines:#?}");
    assert_eq!(lines.len(), 18);
}

#[test]
fn an_approval_is_given_once() {
    let (w, id) = held(true);
    approve(&w, id, "ciso").unwrap();
    let e = approve(&w, id, "ciso").unwrap_err();
    assert_eq!((e.code(), e.to_string()), (Code::InvalidInput, format!("approval {id} is approved, not pending")));
    let e = approve(&w, 999, "ciso").unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
}

#[test]
fn rejecting_discards_the_batch_and_records_why() {
    let (w, id) = held(true);
    let before = (w.ops().len(), w.identities());
    decisions::reject(
        &w.app.engine().unwrap(),
        id,
        &decisions::Decider::new("ciso", decisions::Via::CliAs),
        "truncated export from Workday",
    )
    .unwrap();
    assert_eq!((w.ops().len(), w.identities()), before, "nothing planned, nobody changed");
    let approval = w.store().approval(id).unwrap();
    assert_eq!(
        (approval.state, approval.decided_by.as_deref(), approval.decision_reason.as_deref()),
        (ApprovalState::Rejected, Some("ciso"), Some("truncated export from Workday"))
    );
    let audited = w.audit("approval.rejected");
    assert_eq!(audited.len(), 1);
    assert!(audited[0].entry.reason.as_deref().unwrap().contains("truncated export from Workday"), "{audited:?}");
    // It cannot be approved afterwards, nor rejected again.
    let e = approve(&w, id, "ciso").unwrap_err();
    assert_eq!(e.to_string(), format!("approval {id} is rejected, not pending"));
    assert!(
        decisions::reject(
            &w.app.engine().unwrap(),
            id,
            &decisions::Decider::new("ciso", decisions::Via::CliAs),
            "again"
        )
        .is_err()
    );
    // The same file again is judged afresh, against the unchanged state: held again.
    assert_eq!(w.import(&snapshot(&[], LEAVING)).outcome, ImportOutcome::Held);
    assert_ne!(w.pending_approval(), id);
}

#[test]
fn a_newer_snapshot_supersedes_the_held_batch() {
    let (w, id) = held(true);
    let report = w.import(&snapshot(&["E1 ada Sales Lead active"], &[]));
    assert_eq!((report.outcome, report.counts.joiners, report.counts.leavers), (ImportOutcome::Applied, 1, 0));
    assert_eq!(w.store().approval(id).unwrap().state, ApprovalState::Superseded);
    assert!(w.store().approvals(true).unwrap().is_empty(), "nothing pending");
    assert_eq!(w.audit("approval.superseded").len(), 1);
    let e = approve(&w, id, "ciso").unwrap_err();
    assert_eq!(e.to_string(), format!("approval {id} is superseded, not pending"));
    assert!(LEAVING.iter().all(|c| w.status(c) == Status::Active), "the superseded removals never happen");
    // An unchanged snapshot supersedes it too: the newer file is what HR says now.
    let (w, id) = held(true);
    assert_eq!(w.import(&snapshot(&[], &[])).outcome, ImportOutcome::Unchanged);
    assert_eq!(w.store().approval(id).unwrap().state, ApprovalState::Superseded);
}

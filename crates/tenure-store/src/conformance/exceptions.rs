//! Conformance cases for the exceptions register ([`crate::Exceptions`]).

use super::{
    Failure, LEASE, Outcome, Subject, World, batch, event, expect_code, finished, holdings, joiners, nth, op_in,
    person, settle,
};
use crate::{CloseException, Closing, NewException};
use tenure_core::clock::Clock as _;
use tenure_core::error::Code;
use tenure_core::{CaseState, EventKind, ExceptionKind, ExceptionState, OpKind, OpState, Status};

fn close<'a>(id: i64, closing: Closing, reason: &'a str, due_at: Option<&'a str>) -> CloseException<'a> {
    CloseException { id, closing, actor: "user:carol", by: "carol", reason, due_at }
}

/// A failed revocation is recorded as such, a refused close changes nothing, accepting it
/// excepts the operation, and the leaver's case then closes with a `partial_removal`; a
/// recorded exception is opened once, resolved with who and why, and counted while it is debt.
pub fn exceptions_are_recorded_resolved_and_accepted(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    settle(&w, "A")?;
    let mut leave = event(
        EventKind::Leaver,
        person(&w.schema, "E1", Status::Terminated),
        vec![op_in("dir", OpKind::Revoke, Some("staff")), op_in("dir", OpKind::Disable, None)],
    );
    leave.holdings = Some(holdings("dir", false, &[]));
    w.commit(&batch("hr", vec![leave], w.store.last_import("hr")?))?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let (revoke, disable) = (nth(&ops, 0, "claimed")?, nth(&ops, 1, "claimed")?);
    w.store.finish_many(&[finished(&revoke, OpState::Failed)], &[disable.id], "A")?;
    let open = w.store.exceptions(true)?;
    let x = nth(&open, 0, "open exceptions")?;
    ensure_eq!((open.len(), x.kind), (1, ExceptionKind::FailedRevocation), "a failed revocation");
    ensure_eq!(x.subject, format!("operation:{}", revoke.id), "about the revoke");
    ensure_eq!((x.due_at.clone(), x.closed_by.clone()), (None, None), "no due date, not closed");
    settle(&w, "A")?;
    ensure_eq!(w.case_of(&revoke)?.state, CaseState::Stuck, "the leaver's case is stuck");

    // Refusals change nothing.
    let before = w.audit_records()?.len();
    expect_code(w.store.close_exception(&close(x.id + 100, Closing::Resolve, "no", None)), Code::NotFound, "unknown")?;
    ensure_eq!(w.audit_records()?.len(), before, "an unknown id audits nothing");

    w.clock.advance(super::seconds(60));
    let due = super::stamp(w.clock.now() + super::seconds(86_400 * 30));
    let accepted =
        w.store.close_exception(&close(x.id, Closing::Accept, "the group is retired next month", Some(&due)))?;
    ensure_eq!(
        (accepted.state, accepted.closed_by.as_deref(), accepted.due_at.as_deref(), accepted.resolved_at.clone()),
        (ExceptionState::Accepted, Some("carol"), Some(due.as_str()), Some(w.now())),
        "accepted by carol with a due date"
    );
    ensure_eq!(accepted.close_reason.as_deref(), Some("the group is retired next month"), "and why");
    ensure_eq!(w.op(revoke.id)?.state, OpState::Excepted, "the failed revocation is excepted");
    ensure_eq!(w.case_of(&revoke)?.state, CaseState::Closed, "the case closes");
    let after = w.audit_records()?.len();
    expect_code(w.store.close_exception(&close(x.id, Closing::Resolve, "again", None)), Code::Conflict, "twice")?;
    ensure_eq!(w.audit_records()?.len(), after, "a refused close audits nothing");
    ensure_eq!(w.store.exception(x.id)?.map(|x| x.state), Some(ExceptionState::Accepted), "still accepted");

    let partial = w.store.exceptions(true)?;
    let p = nth(&partial, 0, "open after the case closed")?;
    ensure_eq!((partial.len(), p.kind), (1, ExceptionKind::PartialRemoval), "the case left access behind");
    ensure_eq!(
        (p.subject.clone(), p.identity.as_deref(), p.owner.as_str(), p.due_at.as_deref()),
        (format!("case:{}", revoke.case_id), Some("E1"), "carol", Some(due.as_str())),
        "owned and due as accepted"
    );
    ensure!(p.reason.contains(&format!("operation {}", revoke.id)), "naming what is left: {}", p.reason);
    let actions = w.actions()?;
    for a in ["exception.opened", "exception.accepted", "case.closed"] {
        ensure!(actions.iter().any(|x| x == a), "`{a}` audited: {actions:?}");
    }

    // Recorded from above: once per kind and subject.
    let new = NewException {
        kind: ExceptionKind::AcceptedSod,
        subject: "request:7",
        case_id: None,
        identity: Some("E1"),
        target: Some("payroll"),
        owner: "risk-office",
        reason: "sod `payments` flagged",
        due_at: Some(&due),
    };
    let sod = w.store.open_exception(&new, "user:dana")?;
    ensure_eq!(
        (sod.kind, sod.state, sod.created_at.clone()),
        (ExceptionKind::AcceptedSod, ExceptionState::Open, w.now()),
        "opened"
    );
    let again = w.store.open_exception(&NewException { reason: "again", ..new }, "user:dana")?;
    ensure_eq!((again.id, again.reason.as_str()), (sod.id, "sod `payments` flagged"), "once");
    let counts = w.store.exception_counts()?;
    let debt: Vec<_> = counts.iter().map(|c| (c.kind, c.state, c.count)).collect();
    ensure_eq!(
        debt,
        [
            (ExceptionKind::AcceptedSod, ExceptionState::Open, 1),
            (ExceptionKind::FailedRevocation, ExceptionState::Accepted, 1),
            (ExceptionKind::PartialRemoval, ExceptionState::Open, 1),
        ],
        "debt by kind and state"
    );
    let resolved = w.store.close_exception(&close(sod.id, Closing::Resolve, "the conflicting grant is gone", None))?;
    ensure_eq!(
        (resolved.state, resolved.due_at.as_deref()),
        (ExceptionState::Resolved, Some(due.as_str())),
        "resolved"
    );
    ensure!(w.actions()?.iter().any(|a| a == "exception.resolved"), "audited");
    ensure!(w.store.exception_counts()?.iter().all(|c| c.kind != ExceptionKind::AcceptedSod), "no longer debt");
    if w.store.exception(sod.id + 100)?.is_some() {
        return Err(Failure("an unknown id is found".into()));
    }
    w.chain_verifies()
}

//! What a person decides: approving or rejecting what the guard held, and finishing a manual
//! ticket with evidence. Each decision is recorded with the person's name in the audit trail.

use crate::Engine;
use tenure_core::ApprovalKind;
use tenure_proto as proto;
use tenure_store::{BatchIds, Queue};

/// What an approval released.
#[derive(Debug, Clone)]
pub enum Approved {
    /// A held snapshot batch, now applied: its events, operations and cases.
    Batch(BatchIds),
    /// Held reconciliation remediation: this many operations, now pending.
    Remediation(usize),
}

/// Approves pending approval `id` as `approver`: a held batch is applied (planned against the
/// current state), held remediation is released to the executor.
pub fn approve(engine: &Engine<'_>, queue: &dyn Queue, id: i64, approver: &str) -> crate::Result<Approved> {
    if engine.store.approval(id)?.kind == ApprovalKind::Remediation {
        return Ok(Approved::Remediation(queue.release_remediation(id, approver)?));
    }
    Ok(Approved::Batch(crate::import::approve(engine, id, approver)?))
}

/// Rejects pending approval `id` as `by`, with `reason`: what it held is discarded.
pub fn reject(store: &dyn tenure_store::Store, id: i64, by: &str, reason: &str) -> crate::Result<()> {
    Ok(store.reject(id, by, reason)?)
}

/// Marks manual ticket `id` done by `by`, with `evidence` of what was done; its operation
/// counts as verified.
pub fn complete_ticket(queue: &dyn Queue, id: i64, by: &str, evidence: &str) -> crate::Result<proto::Ticket> {
    Ok(crate::views::ticket(&queue.complete_ticket(id, by, evidence)?))
}

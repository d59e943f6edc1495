//! What a person decides: approving or rejecting what the guard held or an access request's
//! stage, and finishing a manual ticket with evidence. Each decision is recorded with the
//! person's name in the audit trail, and how they were identified ([`Decider`]: through the
//! API, the token's name, never a name from the body; through the CLI, `--as` or the user).

use crate::Engine;
pub use crate::requests::decide::{Decider, Via};
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
    /// A stage of an access request: the request as it stands now (granted after its last
    /// stage, its grant planned).
    Request(Box<proto::Request>),
}

/// Approves pending approval `id` as `decider`: a held batch is applied (planned against the
/// current state), held remediation is released to the executor, an access request's stage is
/// approved if `decider` is its resolved approver (and the grant planned after the last stage).
pub fn approve(engine: &Engine<'_>, queue: &dyn Queue, id: i64, decider: &Decider) -> crate::Result<Approved> {
    match engine.store.approval(id)?.kind {
        ApprovalKind::Remediation => {
            Ok(Approved::Remediation(queue.release_remediation_as(id, &decider.name, &decider.actor())?))
        }
        ApprovalKind::Request => Ok(Approved::Request(Box::new(crate::requests::approve(engine, id, decider)?))),
        ApprovalKind::Batch => Ok(Approved::Batch(crate::import::approve_as(engine, id, decider)?)),
    }
}

/// Rejects pending approval `id` as `decider`, with `reason`: what it held is discarded; an
/// access request is rejected if `decider` is its stage's approver, the identity, or the
/// requester.
pub fn reject(engine: &Engine<'_>, id: i64, decider: &Decider, reason: &str) -> crate::Result<()> {
    // An approval that does not exist is the store's to refuse, as it always was (`conflict`).
    if engine.store.approval(id).is_ok_and(|a| a.kind == ApprovalKind::Request) {
        return crate::requests::reject(engine, id, decider, reason);
    }
    Ok(engine.store.reject_via(id, &decider.name, &decider.via_text(), reason)?)
}

/// Marks manual ticket `id` done by `by`, with `evidence` of what was done; its operation
/// counts as verified.
pub fn complete_ticket(queue: &dyn Queue, id: i64, by: &str, evidence: &str) -> crate::Result<proto::Ticket> {
    Ok(crate::views::ticket(&queue.complete_ticket(id, by, evidence)?))
}

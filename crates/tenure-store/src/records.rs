//! What goes into the store and what comes out of it. These are the store's own shapes, not the
//! API's: the server and `--format json` convert them at their edge.

use serde::Serialize;
use std::collections::BTreeMap;
use tenure_core::audit::{AuditEntry, ChainBreak};
use tenure_core::plan::{Holdings, Queued};
use tenure_core::{
    ApprovalKind, ApprovalState, CaseState, Change, EventKind, EventState, ExceptionKind, ExceptionState, FindingKind,
    Identity, OpKind, OpState, TicketState,
};

pub use tenure_core::rules::{HeldBatch, RetentionCandidate};

/// An operation to persist as `pending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpIn {
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    /// Ids of the policy rules behind the operation.
    pub rules: Vec<String>,
    /// The account name in the target, fixed when the account was created.
    pub account: Option<String>,
}

/// A lifecycle event with what it changes.
#[derive(Debug, Clone)]
pub struct EventIn {
    pub kind: EventKind,
    pub identity: Identity,
    pub changes: Vec<Change>,
    pub significant: bool,
    pub note: Option<String>,
    /// Set when approving a held batch: the event row already exists.
    pub existing_id: Option<i64>,
    pub ops: Vec<OpIn>,
    /// The identity's committed holdings after the event (`None`: unchanged).
    pub holdings: Option<Holdings>,
    /// Further audit records about this event (SoD refusals, NHI ownership transfers). Their
    /// `reason` is prefixed with the event id.
    pub audit: Vec<AuditEntry>,
    /// Queued operations of this identity that the event's plan no longer needs, as
    /// [`Store::queued`](crate::Store::queued) listed them: they are cancelled (audited), their
    /// open manual tickets withdrawn and a failure exception about them resolved. The commit
    /// fails with `Conflict` if one of them is no longer as listed (it started, or untried work
    /// was attempted meanwhile).
    pub cancel: Vec<Queued>,
    /// Access requests the event's plan opens or ends (a role with `approval` whose birthright
    /// condition began or stopped matching), written with the event.
    pub requests: crate::requests::RequestChanges,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchState {
    /// Apply now.
    Applied,
    /// Hold the whole batch for approval; `reason` says which guard limit it exceeds.
    /// `submitted_by` are the actors whose input the batch carries (the importing token or
    /// person, every pusher of the pushes it joined), recorded in the approval's summary so that
    /// none of them releases it.
    Held { reason: String, submitted_by: Vec<String> },
    /// Apply a previously held batch.
    Approved { import_id: i64, approval_id: i64, approver: String },
    /// Apply now a plan the engine made from a decision, not from the source's data (an access
    /// request's grant, its expiry or early revocation): recorded as an applied import of the
    /// identity's source, so queued work stays replannable and a concurrent import of the source
    /// fails as stale, but it supersedes nothing, is never held, and adds no `import` record
    /// (the decision's own records describe it).
    Planned,
}

/// Everything one import (or one approval of a held import) commits.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Who caused it: `source:hr`, `user:alice`.
    pub actor: String,
    pub source: String,
    pub file: String,
    pub sha256: String,
    pub summary: serde_json::Value,
    pub state: BatchState,
    /// The events, each carrying its identity's new state (inserted or updated when the batch
    /// is applied, left alone when it is held).
    pub events: Vec<EventIn>,
    /// Batch-level audit records (one per rejected row, for example).
    pub audit: Vec<AuditEntry>,
    /// The source's last applied import when this batch was computed. The commit fails with
    /// `Conflict` if another import of the source was applied since (the diff would be stale).
    pub base_import: Option<i64>,
    /// Held batches this one supersedes, as `tenure_core::rules::superseded_by_snapshot`
    /// decided from [`Store::held_batches`](crate::Store::held_batches): their approvals,
    /// imports and events become `superseded` (audited). The commit fails with `Conflict` if one
    /// of them was decided meanwhile, or if a batch of the same source was held since.
    pub supersede: Vec<HeldBatch>,
    /// Journaled pushes this batch ingests (none for a snapshot).
    pub ingests: crate::Ingested,
    /// The correlation this batch's plan was made from (a target's baseline, or late matches
    /// of its unmatched accounts), written in the batch's transaction, so a batch that fails
    /// leaves no target correlated or account linked. Audited as
    /// [`Correlations::record_baseline`](crate::Correlations::record_baseline) is.
    pub correlation: Vec<crate::correlation::CorrelationIn>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchIds {
    pub import_id: i64,
    pub approval_id: Option<i64>,
    pub events: usize,
    pub operations: usize,
    pub cases: usize,
    /// The ids of the correlation cases the batch opened, per entry of `Batch::correlation`.
    pub correlation_cases: Vec<Vec<i64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpRecord {
    pub id: i64,
    pub case_id: i64,
    pub identity: String,
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    pub reason: serde_json::Value,
    pub idem_key: String,
    pub state: OpState,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    /// The account acted on when the operation is not about a known identity (an orphan).
    pub account: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct OpFilter {
    pub identity: Option<String>,
    pub states: Vec<OpState>,
    pub case_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    pub id: i64,
    pub event_id: i64,
    pub identity: String,
    pub kind: EventKind,
    pub state: CaseState,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub revoke_ms: Option<i64>,
    /// Operation counts by state.
    pub ops: BTreeMap<OpState, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    pub id: i64,
    pub kind: ApprovalKind,
    pub subject: i64,
    pub summary: serde_json::Value,
    pub state: ApprovalState,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub import_id: Option<i64>,
    pub source: String,
    pub kind: EventKind,
    pub identity: String,
    pub received_at: String,
    pub changes: Vec<Change>,
    pub significant: bool,
    pub note: Option<String>,
    pub state: EventState,
}

/// A held event as stored, with the identity it would produce.
#[derive(Debug, Clone)]
pub struct HeldEvent {
    pub record: EventRecord,
    pub identity: Identity,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub identity: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`; records at or after it.
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub records: u64,
    pub first_bad: Option<ChainBreak>,
    /// The last record's `(seq, hash)`: keep it outside the database and pass it back with
    /// `audit verify --expect-head` to detect truncation or a rewritten chain.
    pub head: Option<(i64, String)>,
}

/// How an operation attempt ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub op: i64,
    pub state: OpState,
    pub error: Option<String>,
    /// For a retry: when to try again (state stays `pending`).
    pub next_attempt_at: Option<String>,
    pub note: Option<String>,
    pub audit: AuditEntry,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketRecord {
    pub id: i64,
    pub operation_id: i64,
    pub target: String,
    pub owner: String,
    pub identity: String,
    pub summary: String,
    pub state: TicketState,
    pub created_at: String,
    pub due_at: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
    pub evidence: Option<String>,
    /// Open and past its due time by the store's clock.
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRecord {
    pub id: i64,
    pub kind: ExceptionKind,
    pub subject: String,
    pub case_id: Option<i64>,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub owner: String,
    pub reason: String,
    pub state: ExceptionState,
    pub created_at: String,
    /// When it was resolved or accepted.
    pub resolved_at: Option<String>,
    /// When it is due: by when an open one should be dealt with, or when an accepted risk is
    /// to be looked at again.
    pub due_at: Option<String>,
    /// Who resolved or accepted it, and why.
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub target: String,
    pub account: Option<String>,
    pub identity: Option<String>,
    pub entitlement: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconRun {
    pub target: String,
    pub accounts: usize,
    pub grants: usize,
    pub millis: u64,
}

/// Operations that fix reconciliation findings, applied now or held for approval.
#[derive(Debug, Clone)]
pub struct Remediation {
    pub run_ids: Vec<i64>,
    pub ops: Vec<RemediationOp>,
    pub held: Option<String>,
    pub actor: String,
}

/// One fix for one finding.
#[derive(Debug, Clone)]
pub struct RemediationOp {
    /// The identity, or `orphan:TARGET:ACCOUNT` for an account nobody owns.
    pub identity: String,
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    pub account: Option<String>,
    /// The finding this fixes.
    pub detail: String,
}

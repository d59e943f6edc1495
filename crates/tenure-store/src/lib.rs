//! Tenure's durable state: identities, the event journal, cases, the operation queue, approvals
//! and the hash-chained audit trail with its signed checkpoints.
//!
//! Callers use the [`Store`] trait. It is shaped around *batches*: the engine computes an
//! import's events, operations and holdings in memory and hands them over as one [`Batch`],
//! which the store writes in a single transaction together with the audit records describing it.
//! Either everything in a batch is durable or nothing is, so a crash or a bad row never leaves
//! half-applied state, and the audit chain always describes exactly what was committed.
//!
//! [`sqlite::SqliteStore`] is the embedded implementation (WAL mode, embedded numbered
//! migrations). A PostgreSQL implementation can follow behind the same trait: nothing here
//! exposes SQLite types.

pub mod queue;
pub mod sqlite;

use serde::Serialize;
use tenure_core::audit::{AuditEntry, AuditRecord, ChainBreak};
use tenure_core::evidence::Checkpoint;
use tenure_core::plan::{Holdings, Queued};
use tenure_core::{Change, EventKind, Identity, OpKind, OpState, Schema};

pub use queue::{ExceptionRecord, Finding, Finished, Queue, ReconRun, Remediation, RemediationOp, TicketRecord};
pub use sqlite::{SqliteStore, StoreOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot open store at `{path}`: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "migration {version} was changed after it was applied (checksum mismatch); never edit an applied migration"
    )]
    MigrationChanged { version: i64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

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
    /// Queued operations of this identity that the event's plan no longer needs: they are
    /// cancelled (audited) and their open manual tickets withdrawn. The commit fails with
    /// `Conflict` if one of them started meanwhile.
    pub cancel: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchState {
    /// Apply now.
    Applied,
    /// Hold the whole batch for approval; `reason` says which guard limit it exceeds.
    Held { reason: String },
    /// Apply a previously held batch.
    Approved { import_id: i64, approval_id: i64, approver: String },
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
    /// Identities to insert or update (with their new state).
    pub identities: Vec<Identity>,
    pub events: Vec<EventIn>,
    /// Batch-level audit records (one per rejected row, for example).
    pub audit: Vec<AuditEntry>,
    /// The source's last applied import when this batch was computed. The commit fails with
    /// `Conflict` if another import of the source was applied since (the diff would be stale).
    pub base_import: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchIds {
    pub import_id: i64,
    pub approval_id: Option<i64>,
    pub events: usize,
    pub operations: usize,
    pub cases: usize,
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
    pub state: tenure_core::CaseState,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub revoke_ms: Option<i64>,
    /// Operation counts by state.
    pub ops: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    pub id: i64,
    pub kind: String,
    pub subject: i64,
    pub summary: serde_json::Value,
    pub state: String,
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
    pub state: String,
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

/// The store. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
    /// Every identity (of one source, if given).
    fn identities(&self, schema: &Schema, source: Option<&str>) -> Result<Vec<Identity>>;
    fn identity(&self, schema: &Schema, id: &str) -> Result<Option<Identity>>;
    /// Tenure's committed holdings for one identity.
    fn holdings(&self, identity: &str) -> Result<Holdings>;
    /// Committed holdings of every identity.
    fn all_holdings(&self) -> Result<std::collections::HashMap<String, Holdings>>;

    /// Operations queued for identities that have not taken effect (never attempted, or a manual
    /// ticket still open), by identity, in queue order; of the given identities, or of all.
    /// Only lifecycle operations count: remediation and retention work is never replaced.
    fn queued(&self, identities: Option<&[&str]>) -> Result<std::collections::HashMap<String, Vec<Queued>>>;
    /// Identities that belong to sources other than `source`: id -> owning source.
    fn foreign_identities(&self, source: &str) -> Result<std::collections::HashMap<String, String>>;

    /// The id of the source's last applied (or approved) import.
    fn last_import(&self, source: &str) -> Result<Option<i64>>;
    /// Commits a batch in one transaction.
    fn commit_batch(&self, schema: &Schema, batch: &Batch) -> Result<BatchIds>;

    fn approvals(&self, pending_only: bool) -> Result<Vec<ApprovalRecord>>;
    fn approval(&self, id: i64) -> Result<ApprovalRecord>;
    fn held_events(&self, schema: &Schema, import_id: i64) -> Result<Vec<HeldEvent>>;
    /// Rejects a pending approval: its held batch is discarded (audited, with the reason).
    fn reject(&self, id: i64, by: &str, reason: &str) -> Result<()>;

    fn operations(&self, filter: &OpFilter) -> Result<Vec<OpRecord>>;
    fn cases(&self, open_only: bool) -> Result<Vec<CaseRecord>>;
    fn events(&self, identity: &str) -> Result<Vec<EventRecord>>;

    /// Appends audit records in one transaction.
    fn audit(&self, entries: &[AuditEntry]) -> Result<()>;
    /// Visits audit records in `seq` order; the visitor returns `false` to stop.
    fn scan_audit(&self, filter: &AuditFilter, visit: &mut dyn FnMut(AuditRecord) -> bool) -> Result<()>;
    /// Verifies the whole chain and names the first bad record.
    fn verify_audit(&self) -> Result<VerifyReport>;
    /// The signed checkpoints of the chain in `seq` order (none in a store older than them).
    fn checkpoints(&self) -> Result<Vec<Checkpoint>>;
    /// Appends `entry`, has `sign` sign the new head (that record), and stores the checkpoint,
    /// in one transaction: a checkpoint always covers its own audit record.
    fn append_checkpoint(&self, entry: &AuditEntry, sign: &dyn Fn(&AuditRecord) -> Checkpoint) -> Result<Checkpoint>;
}

//! The store's API: [`Store`] (lifecycle and audit), [`Queue`] (the operation queue and what
//! hangs off it), and [`Backend`], both at once.
//!
//! The traits are synchronous. Async code calls them only through a blocking pool
//! (`tenure_engine::blocking`), never from a runtime thread: the embedded SQLite store is
//! synchronous by nature, and a PostgreSQL store can use the synchronous `postgres` client
//! behind the same traits, so one calling convention serves both.

use crate::Result;
use crate::records::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tenure_core::audit::{AuditEntry, AuditRecord};
use tenure_core::evidence::Checkpoint;
use tenure_core::plan::{Holdings, Queued};
use tenure_core::{Identity, OpState, Schema};

/// Lifecycle state and the audit chain. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
    /// The clock every timestamp the store writes comes from; callers that schedule (retry
    /// times, ticket due times, retention cutoffs) use the same one.
    fn clock(&self) -> Arc<dyn tenure_core::clock::Clock>;
    /// Every identity (of one source, if given).
    fn identities(&self, schema: &Schema, source: Option<&str>) -> Result<Vec<Identity>>;
    fn identity(&self, schema: &Schema, id: &str) -> Result<Option<Identity>>;
    /// Tenure's committed holdings for one identity.
    fn holdings(&self, identity: &str) -> Result<Holdings>;
    /// Committed holdings of every identity.
    fn all_holdings(&self) -> Result<HashMap<String, Holdings>>;

    /// Operations queued for identities that are not finished, by identity, in queue order; of
    /// the given identities, or of all: never attempted or a manual ticket nobody carried out
    /// (`attempted: false`), or attempted without a verified result, failed or waiting for a
    /// retry (`attempted: true`: it may have landed). Running operations are not listed: their
    /// outcome is on its way. Only lifecycle operations count: remediation and retention work
    /// is never replaced.
    fn queued(&self, identities: Option<&[&str]>) -> Result<HashMap<String, Vec<Queued>>>;
    /// Identities that belong to sources other than `source`: id -> owning source.
    fn foreign_identities(&self, source: &str) -> Result<HashMap<String, String>>;

    /// The id of the source's last applied (or approved) import.
    fn last_import(&self, source: &str) -> Result<Option<i64>>;
    /// Every batch still held for approval (of any source), oldest first.
    fn held_batches(&self) -> Result<Vec<HeldBatch>>;
    /// Commits a batch in one transaction.
    fn commit_batch(&self, schema: &Schema, batch: &Batch) -> Result<BatchIds>;
    /// Commits a batch whose events (instead of `batch.events`) come from `events`, written as
    /// they arrive, still in one transaction: the day-one import of every joiner never holds all
    /// their operations at once.
    fn commit_stream(
        &self,
        schema: &Schema,
        batch: &Batch,
        events: &mut dyn Iterator<Item = EventIn>,
    ) -> Result<BatchIds>;

    fn approvals(&self, pending_only: bool) -> Result<Vec<ApprovalRecord>>;
    fn approval(&self, id: i64) -> Result<ApprovalRecord>;
    fn held_events(&self, schema: &Schema, import_id: i64) -> Result<Vec<HeldEvent>>;
    /// Rejects a pending approval: its held batch is discarded (audited, with the reason); a
    /// rejected remediation's operations become exceptions (the deviation is accepted).
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

/// The durable operation queue, manual tickets, exceptions, findings and remediation.
///
/// Operations of one identity in one target run strictly in order (an account is created before
/// it is granted anything); different identities and targets run concurrently.
///
/// **Leases.** An operation is claimed by an owner (a token unique to one executor run) until a
/// lease expires; the owner renews the lease while it works. A claim whose lease has passed is
/// taken over by the next [`claim`](Queue::claim) of any owner, which applies the operation
/// again (connectors are idempotent). Liveness is the lease alone: no process id, no host. An
/// owner keeps its claim until someone else takes it over, so a late [`finish`](Queue::finish)
/// of an expired but untaken claim still records; one whose claim was taken over changes
/// nothing.
pub trait Queue: Send + Sync {
    /// Claims up to `limit` runs for `owner` until now + `lease`, marking their operations
    /// `running`. A run is a claimable operation (pending and due, or running under an expired
    /// lease) not behind an unfinished earlier operation of the same identity and target,
    /// followed by the claimable operations queued right behind it for the same identity and
    /// target, in order. Runs are returned one after another, each in order.
    fn claim(&self, owner: &str, lease: Duration, limit: usize) -> Result<Vec<OpRecord>>;
    /// Extends to now + `lease` the claims `owner` still holds among `ops`; returns how many.
    fn renew(&self, owner: &str, ops: &[i64], lease: Duration) -> Result<usize>;
    /// Records how an attempt ended. Returns `false`, changing nothing, when the operation is
    /// no longer running under `owner` (another owner took it over).
    fn finish(&self, f: &Finished, owner: &str) -> Result<bool> {
        Ok(self.finish_many(std::slice::from_ref(f), &[], owner)? == 1)
    }
    /// Records several outcomes and returns claimed operations that were not attempted
    /// (`release`) to `pending`, in one transaction. Returns how many outcomes were recorded.
    fn finish_many(&self, done: &[Finished], release: &[i64], owner: &str) -> Result<usize>;
    /// Returns every failed operation to `pending` with a fresh retry budget, audited with who
    /// asked; their failure exceptions are resolved and their cases reopened. Their last error is
    /// kept (so they are never mistaken for untried work). Returns how many.
    fn retry_failed(&self, by: &str) -> Result<usize>;
    /// Operation counts by state.
    fn queue_counts(&self) -> Result<BTreeMap<OpState, i64>>;
    /// When the queue next changes without anyone finishing work: the earliest retry time of a
    /// pending operation or lease end of a running one.
    fn next_wake_at(&self) -> Result<Option<String>>;

    /// Opens the ticket for a manual operation (once); the operation becomes `done` and waits
    /// for a person to finish the ticket. Fails with `Conflict` when `owner` lost the claim.
    fn open_ticket(&self, op: &OpRecord, ticket_owner: &str, summary: &str, due_at: &str, owner: &str) -> Result<i64>;
    fn tickets(&self, open_only: bool) -> Result<Vec<TicketRecord>>;
    /// Marks a ticket done with evidence; its operation becomes `verified`.
    fn complete_ticket(&self, id: i64, by: &str, evidence: &str) -> Result<TicketRecord>;
    /// Records an exception for every open ticket past its due time (by the store's clock);
    /// their cases become stuck. Audited with `actor`. Returns the new exceptions.
    fn flag_overdue(&self, actor: &str) -> Result<Vec<ExceptionRecord>>;
    fn exceptions(&self, open_only: bool) -> Result<Vec<ExceptionRecord>>;

    /// Records a reconciliation run of one target and its findings, audited with `actor`.
    fn record_recon(&self, run: &ReconRun, findings: &[Finding], actor: &str) -> Result<i64>;
    fn findings(&self, run_id: i64) -> Result<Vec<Finding>>;
    /// Plans remediation operations (one event and case per identity); returns the approval id
    /// when held.
    fn commit_remediation(&self, r: &Remediation) -> Result<(usize, Option<i64>)>;
    /// Releases a held remediation: its operations become pending.
    fn release_remediation(&self, approval_id: i64, approver: &str) -> Result<usize> {
        self.release_remediation_as(approval_id, approver, &format!("user:{approver}"))
    }
    /// [`release_remediation`](Queue::release_remediation) audited with `actor` (`token:NAME`
    /// when the approver decided through the API).
    fn release_remediation_as(&self, approval_id: i64, approver: &str, actor: &str) -> Result<usize>;

    /// What a retention sweep of `target` decides on: the accounts there of terminated
    /// identities, with their facts (see `tenure_core::rules::retention_due`).
    fn retention_candidates(&self, target: &str) -> Result<Vec<RetentionCandidate>>;
    /// Plans `delete_account` in `target` for each of `due` (one event and case each) and drops
    /// the account from the committed holdings, audited with `cutoff` and `actor`. A candidate
    /// whose facts changed since it was read is left for the next sweep. Returns how many were
    /// planned.
    fn plan_retention(&self, target: &str, due: &[RetentionCandidate], cutoff: &str, actor: &str) -> Result<usize>;
}

/// A store that is all of them: what the executor, reconciliation, pushes, the schedules and the
/// server need.
pub trait Backend:
    Store
    + Queue
    + crate::Pushes
    + crate::Tokens
    + crate::Browse
    + crate::Schedules
    + crate::scim::ScimStore
    + crate::Correlations
    + crate::Exceptions
    + crate::Credentials
    + crate::requests::Requests
    + crate::campaigns::Campaigns
{
}
impl<
    T: Store
        + Queue
        + crate::Pushes
        + crate::Tokens
        + crate::Browse
        + crate::Schedules
        + crate::scim::ScimStore
        + crate::Correlations
        + crate::Exceptions
        + crate::Credentials
        + crate::requests::Requests
        + crate::campaigns::Campaigns,
> Backend for T
{
}

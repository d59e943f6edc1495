//! The store's side of the schedules (issue 8): the single-scheduler lease, the last run of each
//! job, and the post-offboarding re-check's bookkeeping and writes.
//!
//! As everywhere in the store, the decisions are made above (which job is due, what counts as a
//! resurrected account, whether the guard holds the fixes): this trait records them, each write
//! in one transaction with its audit records, and checks the precondition it was computed under
//! (the lease still held, the case still closed as it was read).

use crate::Result;
use crate::records::{Finding, OpIn};
use std::time::Duration;

/// The scheduler lease as it stands after [`Schedules::lead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// Whether the asking owner holds it now.
    pub held: bool,
    /// Who holds it (the asker, or the other process).
    pub owner: String,
    /// Until when (a stored timestamp).
    pub until: String,
}

pub use tenure_core::JobOutcome;

/// The last run of one scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub job: String,
    pub last_at: String,
    pub outcome: JobOutcome,
    pub detail: String,
    pub runs: i64,
}

/// What a job run did, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDone {
    pub job: String,
    pub outcome: JobOutcome,
    /// What it did (`2 leaver(s) pushed`) or why it failed; never a secret.
    pub detail: String,
    /// Append a `schedule.run` audit record (actor `schedule:JOB`). Runs that found nothing to
    /// do are recorded as the job's last run without one, so a 30-second tick does not flood
    /// the chain.
    pub audit: bool,
}

/// A closed leaver case due for the post-offboarding re-check: the latest leaver case of a
/// terminated identity, closed at or before the cutoff, not re-checked since it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecheckCandidate {
    pub case_id: i64,
    pub event_id: i64,
    pub identity: String,
    pub closed_at: String,
}

/// The outcome of re-reading one case's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recheck {
    pub candidate: RecheckCandidate,
    /// Accounts read back.
    pub accounts: usize,
    /// `resurrected` findings (empty: the offboarding held).
    pub findings: Vec<Finding>,
    /// The operations that undo what came back, added to the case, which reopens.
    pub ops: Vec<OpIn>,
}

/// What [`Schedules::record_rechecks`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecheckIds {
    /// The findings' run (one for the whole pass), if there were findings.
    pub run_id: Option<i64>,
    pub reopened: Vec<i64>,
    pub operations: usize,
    /// Set when the fixes were held for approval (a remediation approval over the reopened
    /// cases: `tenure approve` releases them).
    pub approval_id: Option<i64>,
}

/// Schedule state. Implementations are safe to share between threads.
pub trait Schedules: Send + Sync {
    /// Takes the scheduler lease for `owner` until now + `lease` if it is free, expired or
    /// already `owner`'s (renewing it), and says who holds it.
    fn lead(&self, owner: &str, lease: Duration) -> Result<Lead>;
    /// Gives the lease up if `owner` holds it (a clean shutdown), so another process can take it
    /// at once.
    fn release_lead(&self, owner: &str) -> Result<()>;
    /// The identities of `source` whose status a date may change: those not terminated whose
    /// `end_date` is before `ends_before`, and prehire ones whose `start_date` is at or before
    /// `starts_by` (dates as stored, compared as text). A superset: the engine re-derives each
    /// status and decides.
    fn date_candidates(
        &self,
        schema: &tenure_core::Schema,
        source: &str,
        ends_before: &str,
        starts_by: &str,
    ) -> Result<Vec<tenure_core::Identity>>;
    /// The last run of every job that has run, by job name.
    fn job_runs(&self) -> Result<Vec<JobRun>>;
    /// Records a job's run (and its audit record, if asked) while `owner` holds the lease;
    /// `Conflict` when it does not (another process took over).
    fn record_job(&self, owner: &str, done: &JobDone) -> Result<()>;
    /// Leaver cases due for the re-check: closed at or before `closed_before`, see
    /// [`RecheckCandidate`], oldest close first.
    fn recheck_candidates(&self, closed_before: &str) -> Result<Vec<RecheckCandidate>>;
    /// Records a re-check pass in one transaction: every case as checked, the `resurrected`
    /// findings (one reconciliation run named `*recheck`, apart from the targets' own runs, each finding audited), and for each case
    /// with fixes the operations added to it (`held` when `held` says why, else `pending`) and
    /// the case reopened, audited as `case.reopened`; everything with `actor`. Fails with
    /// `Conflict` when a case is no longer closed as it was read.
    fn record_rechecks(&self, rechecks: &[Recheck], held: Option<&str>, actor: &str) -> Result<RecheckIds>;
}

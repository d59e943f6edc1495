//! Workers and schedules: the work nobody asks for. Dates in HR data come due
//! (`start_date` activates a prehire, a passed `end_date` makes a leaver at the end of that day
//! in the source's timezone), time-bound grants expire, reconciliation runs every `reconcile`
//! interval, retention deletes what its period has passed, overdue tickets become exceptions,
//! audit checkpoints are signed, and N days after a leaver case closes every target is read
//! again (the post-offboarding re-check: an account enabled again or a grant back is a
//! `resurrected` finding and reopens the case); certification campaigns escalate and time out
//! (`campaigns`).
//!
//! Each job is named ([`Job`]) and acts as `schedule:NAME` in the audit trail. [`run_pass`] runs
//! the jobs that are due (or the one asked for) under the single-scheduler lease, so when
//! several processes share a store only one runs the schedules; each job's last run is stored,
//! so intervals count across restarts and processes. The server runs [`run_scheduler`] and
//! [`run_executor`] as workers; `tenure schedule run-once` runs one pass (with the executor as
//! its last job) for CLI-only deployments.
//!
//! What is due is decided without IO in [`select`] (tested over data with a fake clock); the
//! jobs in [`jobs`] read, decide with it, and write through the same paths a person's command
//! takes: status changes through [`crate::ingest::push`], fixes through the guard.

pub mod jobs;
pub mod select;

use crate::app::App;
use crate::blocking;
use crate::executor::{self, Connectors, ExecOptions};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tenure_core::JobOutcome;
use tenure_core::config::ScheduleConfig;
use tenure_core::error::HasCode as _;
use tenure_proto::{JobReport, ScheduleRun};
use tenure_store::{JobDone, StoreError};

/// A scheduled job. Its [`name`](Job::name) is its `--job` value and, after `schedule:`, its
/// audit actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Prehire identities whose `start_date` has come become active.
    StartDate,
    /// Identities whose `end_date` has passed (the day is over in the source's timezone) leave.
    EndDate,
    /// Time-bound grants past their expiry are revoked.
    GrantExpiry,
    /// Certification campaigns: escalations after `escalate_after`, `on_timeout` at the due
    /// date, and revoke decisions carried out through the guard.
    Campaigns,
    /// The post-offboarding re-check.
    Recheck,
    /// Overdue manual tickets become exceptions.
    Overdue,
    /// Accounts past their target's `delete_after_days` are deleted.
    Retention,
    /// Non-human identities' credentials past their `credential_max_age` are rotated (issue 10).
    Credentials,
    /// Every target is reconciled (findings recorded; fixes are `tenure reconcile --remediate`).
    Reconcile,
    /// The audit chain's head is signed.
    Checkpoint,
    /// Pending operations are carried out (`tenure apply`). The server runs the executor as its
    /// own worker instead; a `run-once` pass runs it last, so what the other jobs planned is
    /// applied in the same pass.
    Apply,
}

impl Job {
    /// Every job, in the order a pass runs them: date changes first (their plans are the most
    /// urgent), then checks, then housekeeping, the checkpoint after everything it signs, and
    /// the executor last.
    pub const ALL: &'static [Job] = &[
        Job::StartDate,
        Job::EndDate,
        Job::GrantExpiry,
        Job::Campaigns,
        Job::Recheck,
        Job::Overdue,
        Job::Retention,
        Job::Credentials,
        Job::Reconcile,
        Job::Checkpoint,
        Job::Apply,
    ];

    /// The jobs the server's scheduler runs (the executor is a worker of its own there).
    pub const SCHEDULED: &'static [Job] = &[
        Job::StartDate,
        Job::EndDate,
        Job::GrantExpiry,
        Job::Campaigns,
        Job::Recheck,
        Job::Overdue,
        Job::Retention,
        Job::Credentials,
        Job::Reconcile,
        Job::Checkpoint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::StartDate => "start_date",
            Job::EndDate => "end_date",
            Job::GrantExpiry => "grant_expiry",
            Job::Campaigns => "campaigns",
            Job::Recheck => "recheck",
            Job::Overdue => "overdue",
            Job::Retention => "retention",
            Job::Credentials => "credentials",
            Job::Reconcile => "reconcile",
            Job::Checkpoint => "checkpoint",
            Job::Apply => "apply",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.iter().copied().find(|j| j.name() == name)
    }

    /// The names, for messages.
    pub fn names() -> String {
        Job::ALL.iter().map(|j| j.name()).collect::<Vec<_>>().join(", ")
    }

    /// The audit actor of everything the job does.
    pub fn actor(self) -> String {
        format!("schedule:{}", self.name())
    }

    /// How long after its last run the job is due again.
    pub fn interval_secs(self, cfg: &ScheduleConfig) -> u64 {
        match self {
            Job::StartDate | Job::EndDate | Job::GrantExpiry | Job::Campaigns | Job::Recheck | Job::Apply => {
                cfg.tick_secs
            }
            Job::Overdue => cfg.overdue_secs,
            Job::Retention => cfg.retention_secs,
            Job::Credentials => cfg.credentials_secs,
            Job::Reconcile => cfg.reconcile_secs,
            Job::Checkpoint => cfg.checkpoint_secs,
        }
    }
}

/// What one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub outcome: JobOutcome,
    pub detail: String,
    pub acted: usize,
}

impl Done {
    pub fn ok(acted: usize, detail: impl Into<String>) -> Self {
        Self { outcome: JobOutcome::Ok, detail: detail.into(), acted }
    }

    pub fn failed(acted: usize, detail: impl Into<String>) -> Self {
        Self { outcome: JobOutcome::Failed, detail: detail.into(), acted }
    }
}

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Run this job now, due or not; otherwise every job of `jobs` that is due.
    pub only: Option<Job>,
    pub jobs: &'static [Job],
    /// Who runs it: the owner of the scheduler lease (see `executor::owner_token`).
    pub owner: String,
    /// How long the lease is taken for; the pass renews it while it runs.
    pub lease: Duration,
}

/// Runs one pass of the schedules: takes (or renews) the scheduler lease, runs the due jobs in
/// order, records each run (audited as `schedule:NAME` when it acted or failed). Another
/// process holding the lease makes it a pass that ran nothing, saying who holds it.
pub async fn run_pass(app: &App, conns: &Arc<Connectors>, opts: &PassOptions) -> crate::Result<ScheduleRun> {
    let store = app.store();
    let (owner, lease) = (opts.owner.clone(), opts.lease);
    let lead = blocking::store(store, move |s| s.lead(&owner, lease)).await?;
    if !lead.held {
        return Ok(ScheduleRun { held_by: Some(format!("{} (until {})", lead.owner, lead.until)), jobs: vec![] });
    }
    let renewer = tokio::spawn(renew_lead(app.clone(), opts.owner.clone(), lease));
    let result = run_jobs(app, conns, opts).await;
    renewer.abort();
    result
}

async fn run_jobs(app: &App, conns: &Arc<Connectors>, opts: &PassOptions) -> crate::Result<ScheduleRun> {
    let store = app.store();
    let runs = blocking::store(store, |s| s.job_runs()).await?;
    let last: HashMap<Job, DateTime<Utc>> =
        runs.iter().filter_map(|r| Some((Job::parse(&r.job)?, tenure_core::clock::parse_stamp(&r.last_at)?))).collect();
    let jobs = match opts.only {
        Some(job) => vec![job],
        None => select::due_jobs(&app.config().schedule, opts.jobs, &last, app.clock().now()),
    };
    let mut report = ScheduleRun::default();
    for job in jobs {
        let done = jobs::run(app, conns, job).await;
        if done.outcome == JobOutcome::Failed {
            tracing::warn!(job = job.name(), "scheduled job failed: {}", done.detail);
        } else if done.acted > 0 {
            tracing::info!(job = job.name(), "{}", done.detail);
        }
        let record = JobDone {
            job: job.name().to_string(),
            outcome: done.outcome,
            detail: done.detail.clone(),
            audit: select::worth_auditing(job, &done, runs.iter().find(|r| r.job == job.name())),
        };
        let owner = opts.owner.clone();
        match blocking::store(store, move |s| s.record_job(&owner, &record)).await {
            Ok(()) => {}
            // Another process took the lease over (ours lapsed): it runs the schedules now.
            Err(crate::EngineError::Store(StoreError::Conflict(why))) => {
                tracing::warn!("{why}");
                report.jobs.push(report_of(job, done));
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
        report.jobs.push(report_of(job, done));
    }
    Ok(report)
}

fn report_of(job: Job, d: Done) -> JobReport {
    JobReport { job: job.name().to_string(), outcome: d.outcome, detail: d.detail, acted: d.acted }
}

/// How long a one-off pass (`tenure schedule run-once`) takes the scheduler lease for. The
/// pass renews it while it runs, so this only bounds how long a killed pass keeps a server
/// from scheduling.
pub const RUN_ONCE_LEASE: Duration = Duration::from_secs(60);

/// One pass for a deployment without the server: every due job of [`Job::ALL`] (or only
/// `only`, due or not), the executor last, then the lease given up at once.
pub async fn run_once(app: &App, conns: &Arc<Connectors>, only: Option<Job>) -> crate::Result<ScheduleRun> {
    let opts = PassOptions { only, jobs: Job::ALL, owner: executor::owner_token(), lease: RUN_ONCE_LEASE };
    let run = run_pass(app, conns, &opts).await;
    if run.as_ref().is_ok_and(|r| r.held_by.is_none()) {
        let owner = opts.owner.clone();
        if let Err(e) = blocking::store(app.store(), move |s| s.release_lead(&owner)).await {
            tracing::warn!("giving up the scheduler lease: {e}");
        }
    }
    run
}

/// Renews the scheduler lease every third of it while a pass runs.
async fn renew_lead(app: App, owner: String, lease: Duration) {
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let owner = owner.clone();
        if let Err(e) = blocking::store(app.store(), move |s| s.lead(&owner, lease)).await {
            tracing::warn!("renewing the scheduler lease: {e}");
        }
    }
}

/// The scheduler lease a running server takes: long enough that a busy store does not lose
/// it between ticks, short enough that another process takes over within minutes.
pub fn server_lease(cfg: &ScheduleConfig) -> Duration {
    Duration::from_secs(cfg.tick_secs.saturating_mul(3).clamp(30, 600))
}

/// The server's scheduler: a pass every `tick` until `shutdown` resolves. A pass under way
/// finishes first (its jobs' writes are each one transaction, and what they plan is the
/// executor's); the lease is then given up so another process can take over at once.
pub async fn run_scheduler(app: App, conns: Arc<Connectors>, shutdown: impl Future<Output = ()>) {
    let cfg = app.config().schedule;
    let opts =
        PassOptions { only: None, jobs: Job::SCHEDULED, owner: executor::owner_token(), lease: server_lease(&cfg) };
    let tick = Duration::from_secs(cfg.tick_secs);
    tokio::pin!(shutdown);
    loop {
        match run_pass(&app, &conns, &opts).await {
            Ok(run) => {
                if let Some(holder) = run.held_by {
                    tracing::debug!("the schedules run in another process: {holder}");
                }
            }
            Err(e) => tracing::error!(code = %e.code(), "scheduler pass: {e}"),
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(tick) => {}
        }
    }
    let owner = opts.owner.clone();
    if let Err(e) = blocking::store(app.store(), move |s| s.release_lead(&owner)).await {
        tracing::warn!("giving up the scheduler lease: {e}");
    }
}

/// How often the server's executor looks for work when the queue had none runnable.
pub const EXECUTOR_POLL: Duration = Duration::from_millis(200);

/// The server's executor: runs the queue until nothing is runnable, then looks again every
/// [`EXECUTOR_POLL`], until `shutdown` resolves. On shutdown it claims nothing more and returns
/// once the operations in flight are recorded. Retention and overdue tickets are the
/// scheduler's (`housekeeping: false`).
pub async fn run_executor(app: App, conns: Arc<Connectors>, shutdown: impl Future<Output = ()>) {
    let stop = Arc::new(AtomicBool::new(false));
    tokio::pin!(shutdown);
    loop {
        let opts = ExecOptions { housekeeping: false, stop: Some(stop.clone()), ..ExecOptions::default() };
        let run = executor::run(app.config_arc(), app.store().clone(), conns.clone(), opts);
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => r,
            () = &mut shutdown => {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Err(e) = run.await {
                    tracing::error!("executor: {e}");
                }
                return;
            }
        };
        if let Err(e) = result {
            tracing::error!(code = %e.code(), "executor: {e}");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(EXECUTOR_POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests;

//! What is due, without IO: which jobs, which identities' dates have come, what a re-check's
//! read-back shows came back, which time-bound grants have expired. Everything takes `now` (and
//! the data) as parameters, so the tests step a fake clock over plain data.

use super::Job;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tenure_connect::AccountState;
use tenure_core::JobOutcome;
use tenure_core::config::{Config, ScheduleConfig};
use tenure_core::plan::AccountView;
use tenure_core::record::{self, Record};
use tenure_core::{FindingKind, Identity, OpKind, Status};
use tenure_store::{Finding, JobRun, OpIn};

/// The jobs among `jobs` that are due at `now`, in `jobs`' order: never run, run at least one
/// interval ago, or run "in the future" (the clock was set back, as `TENURE_NOW` can: waiting
/// for it to catch up would silence the schedule).
pub fn due_jobs(
    cfg: &ScheduleConfig,
    jobs: &[Job],
    last: &HashMap<Job, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Job> {
    jobs.iter()
        .copied()
        .filter(|job| match last.get(job) {
            None => true,
            Some(at) if *at > now => true,
            Some(at) => {
                now.signed_duration_since(*at).num_seconds()
                    >= i64::try_from(job.interval_secs(cfg)).unwrap_or(i64::MAX)
            }
        })
        .collect()
}

/// Whether a job's run gets a `schedule.run` audit record: when it acted, or when it failed
/// otherwise than its last run did (a target down for a day fails the same way every tick: the
/// first failure is on the record, the repeats only in the job's last run and the log). The
/// checkpoint's own record says what it did; a summary after it would leave the chain one
/// unsigned record longer every time.
pub fn worth_auditing(job: Job, done: &super::Done, last: Option<&JobRun>) -> bool {
    if job == Job::Checkpoint {
        return false;
    }
    let same_failure = last.is_some_and(|l| l.outcome == JobOutcome::Failed && l.detail == done.detail);
    done.acted > 0 || (done.outcome == JobOutcome::Failed && !same_failure)
}

/// An identity whose lifecycle status changes today only because a date came: `start_date`
/// (prehire to active) or `end_date` (a leaver once the day has ended in the source's
/// timezone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateDue {
    pub job: Job,
    pub source: String,
    pub identity: String,
    pub from: Status,
    pub to: Status,
}

/// The record a date job pushes for an identity: its key and nothing else, so the engine
/// re-derives the status from the stored attributes at the new day (a record without a status
/// keeps the previous HR standing, see `tenure_core::record::apply`).
pub fn rederive(identity: &str) -> Record {
    Record { index: 0, key: identity.to_string(), deleted: false, fields: Vec::new() }
}

/// The identities of `identities` (with their sources) whose status, re-derived at `now` in
/// their source's timezone with the same rule an import and a push use, differs from the
/// stored one because of a date: prehire identities whose `start_date` has come
/// ([`Job::StartDate`]), and identities not yet terminated whose `end_date` has passed
/// ([`Job::EndDate`]). Identities of sources no longer configured are left alone.
pub fn dates_due<'a>(
    config: &Config,
    identities: impl IntoIterator<Item = (&'a str, &'a Identity)>,
    now: DateTime<Utc>,
) -> Vec<DateDue> {
    let mut out = Vec::new();
    for (source, identity) in identities {
        let Some(src) = config.source(source) else { continue };
        if identity.status == Status::Terminated {
            continue;
        }
        let today = src.today_at(now);
        let Ok(again) = record::apply(&config.schema, Some(identity), &rederive(&identity.id), today) else {
            continue;
        };
        let job = match (identity.status, again.status) {
            (from, to) if from == to => continue,
            (_, Status::Terminated) => Job::EndDate,
            (Status::Prehire, _) => Job::StartDate,
            // Nothing else changes with the date alone.
            _ => continue,
        };
        out.push(DateDue {
            job,
            source: source.to_string(),
            identity: identity.id.to_string(),
            from: identity.status,
            to: again.status,
        });
    }
    out
}

/// What a re-check found in one target for one leaver: the `resurrected` findings and the
/// operations that undo them (grants revoked first, then the account disabled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameBack {
    pub findings: Vec<Finding>,
    pub ops: Vec<OpIn>,
}

/// Compares a leaver's account in `target` as Tenure left it (`view`: disabled, no grants) with
/// what the target shows now (`read`; `None`: the account is gone, which is fine). An account
/// enabled again, or any grant held, came back.
pub fn came_back(identity: &str, target: &str, view: &AccountView, read: Option<&AccountState>) -> CameBack {
    let mut out = CameBack::default();
    let Some(read) = read else { return out };
    let account = read.account.clone();
    let finding = |entitlement: Option<&str>, detail: String| Finding {
        kind: FindingKind::Resurrected,
        target: target.to_string(),
        account: Some(account.clone()),
        identity: Some(identity.to_string()),
        entitlement: entitlement.map(str::to_string),
        detail,
    };
    let op = |kind: OpKind, entitlement: Option<&str>| OpIn {
        target: target.to_string(),
        kind,
        entitlement: entitlement.map(str::to_string),
        rules: vec!["recheck".to_string()],
        account: view.name.clone(),
    };
    for g in &read.grants {
        if view.grants.contains(g) {
            // Tenure still means the leaver to hold it (a grant kept deliberately): not back.
            continue;
        }
        out.findings.push(finding(
            Some(g),
            format!("`{g}` is held again in `{target}` by account `{account}` of leaver `{identity}`"),
        ));
        out.ops.push(op(OpKind::Revoke, Some(g)));
    }
    if read.enabled && !view.enabled {
        out.findings
            .push(finding(None, format!("account `{account}` of leaver `{identity}` is enabled again in `{target}`")));
        out.ops.push(op(OpKind::Disable, None));
    }
    out
}

/// A time-bound grant: access given until `expires_at` (an approved request with
/// `--duration`, a privileged role's `max_duration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBoundGrant {
    /// The access request that granted it.
    pub request: i64,
    pub identity: String,
    pub target: String,
    pub entitlement: String,
    pub expires_at: DateTime<Utc>,
}

/// The grants among `grants` that have expired at `now` (an expiry is inclusive: at
/// `expires_at` the access is over), soonest expired first.
pub fn expired(grants: &[TimeBoundGrant], now: DateTime<Utc>) -> Vec<&TimeBoundGrant> {
    let mut out: Vec<&TimeBoundGrant> = grants.iter().filter(|g| g.expires_at <= now).collect();
    out.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.identity.cmp(&b.identity)));
    out
}

/// The requests whose grants have expired at `now`, each once, soonest expired first: what the
/// `grant_expiry` job (and `tenure apply`) ends.
pub fn expired_requests(grants: &[TimeBoundGrant], now: DateTime<Utc>) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for g in expired(grants, now) {
        if !out.contains(&g.request) {
            out.push(g.request);
        }
    }
    out
}

/// The time-bound grants of granted requests, one per entitlement (a request without an
/// expiry has none).
pub fn time_bound(grants: &std::collections::HashMap<String, Vec<tenure_store::RequestGrant>>) -> Vec<TimeBoundGrant> {
    let mut out = Vec::new();
    for (identity, list) in grants {
        for g in list {
            let Some(at) = g.expires_at.as_deref().and_then(tenure_core::clock::parse_stamp) else { continue };
            for e in &g.entitlements {
                let (target, entitlement) = e.split_once(':').unwrap_or((e.as_str(), ""));
                out.push(TimeBoundGrant {
                    request: g.request_id,
                    identity: identity.clone(),
                    target: target.to_string(),
                    entitlement: entitlement.to_string(),
                    expires_at: at,
                });
            }
        }
    }
    out
}

//! The jobs: each reads what it needs, decides with [`super::select`], and writes through the
//! path a person's command takes, audited as `schedule:NAME`. A job never fails the pass: what
//! went wrong is its outcome (`failed`, with the reason), recorded and audited, and the next
//! job runs.

use super::select;
use super::{Done, Job};
use crate::app::App;
use crate::blocking;
use crate::executor::{self, Connectors, ExecOptions};
use crate::ingest::PushOptions;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tenure_core::clock::stamp;
use tenure_core::config::TargetSettings;
use tenure_core::record::Record;
use tenure_store::{Recheck, RecheckCandidate};

type JobResult = Result<Done, String>;

/// Runs `job` now.
pub async fn run(app: &App, conns: &Arc<Connectors>, job: Job) -> Done {
    let result = match job {
        Job::StartDate | Job::EndDate => dates(app, job).await,
        Job::GrantExpiry => grant_expiry(app).await,
        Job::Campaigns => campaigns(app).await,
        Job::Recheck => recheck(app, conns).await,
        Job::Overdue => overdue(app).await,
        Job::Retention => retention(app).await,
        Job::Credentials => credentials(app).await,
        Job::Reconcile => reconcile(app, conns).await,
        Job::Checkpoint => checkpoint(app).await,
        Job::Apply => apply(app, conns).await,
    };
    result.unwrap_or_else(|why| Done::failed(0, why))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `start_date` and `end_date`: the identities whose status the date alone changes, pushed
/// through the engine's ingest path as records that re-derive the stored identity at the new
/// day (in each source's timezone), with the job's actor. The guard applies to them as to any
/// push.
async fn dates(app: &App, job: Job) -> JobResult {
    let config = app.config_arc();
    let now = app.clock().now();
    // Identities in a batch held for approval already wait for a person's decision: pushing
    // them again every tick would change nothing but the audit trail.
    let cfg = config.clone();
    let waiting: HashSet<String> = blocking::store(app.store(), move |s| {
        let mut ids = HashSet::new();
        for h in s.held_batches()? {
            ids.extend(s.held_events(&cfg.schema, h.import)?.into_iter().map(|e| e.record.identity));
        }
        Ok(ids)
    })
    .await
    .map_err(err)?;
    let mut due: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for source in &config.sources {
        // Only the identities a date may change are read (the store's indexed superset).
        let (cfg, name, today) = (config.clone(), source.name.clone(), source.today_at(now).to_string());
        let identities = blocking::store(app.store(), move |s| s.date_candidates(&cfg.schema, &name, &today, &today))
            .await
            .map_err(err)?;
        let found = select::dates_due(&config, identities.iter().map(|i| (source.name.as_str(), i)), now);
        for d in found.into_iter().filter(|d| d.job == job && !waiting.contains(&d.identity)) {
            due.entry(d.source).or_default().push(select::rederive(&d.identity));
        }
    }
    if due.is_empty() {
        return Ok(Done::ok(0, "nothing due"));
    }
    let mut acted = 0;
    let mut said = Vec::new();
    for (source, records) in due {
        let (events, report) = push(app, &source, records, &job.actor()).await?;
        acted += events;
        said.push(format!("{source}: {report}"));
    }
    Ok(Done::ok(acted, said.join("; ")))
}

/// Pushes re-derived records of `source` as `actor` through [`crate::ingest::push`] (on the
/// blocking pool: the push is synchronous); says how many events it made and what it did.
async fn push(app: &App, source: &str, records: Vec<Record>, actor: &str) -> Result<(usize, String), String> {
    let (app, source) = (app.clone(), source.to_string());
    let opts = PushOptions { actor: actor.to_string(), label: actor.to_string(), ..PushOptions::default() };
    let r = tokio::task::spawn_blocking(move || crate::ingest::push(&app, &source, &records, &opts))
        .await
        .map_err(err)?
        .map_err(err)?;
    let events: Vec<String> = r
        .events
        .iter()
        .take(20)
        .map(|e| format!("{} `{}` ({} operation(s))", e.kind, e.identity, e.operations))
        .collect();
    let mut said = match r.events.len() {
        0 => "no event".to_string(),
        n if n > events.len() => format!("{} and {} more", events.join(", "), n - events.len()),
        _ => events.join(", "),
    };
    if let Some(why) = &r.held_reason {
        said.push_str(&format!("; held for approval {}: {why}", r.approval_id.unwrap_or_default()));
    }
    if !r.rejected.is_empty() {
        let why: Vec<String> =
            r.rejected.iter().map(|x| format!("`{}`: {}", x.key.as_deref().unwrap_or("?"), x.reason)).collect();
        said.push_str(&format!("; refused {}", why.join("; ")));
    }
    Ok((r.events.len(), said))
}

/// `grant_expiry`: granted access requests whose expiry has come end (`expired`), each one's
/// revocation planned for the executor and verified like any revocation
/// ([`crate::requests::expire_due`]; `tenure apply` runs the same check first).
async fn grant_expiry(app: &App) -> JobResult {
    let n = crate::apply::expire_requests(app, &Job::GrantExpiry.actor()).await.map_err(err)?;
    Ok(match n {
        0 => Done::ok(0, "no time-bound grant has expired"),
        n => Done::ok(n, format!("{n} access request(s) expired; their revocation is planned")),
    })
}

/// `campaigns`: escalations, timeouts and revoke decisions carried out
/// ([`crate::campaigns::run_schedule`], as `schedule:campaigns`; on the blocking pool: the
/// store is synchronous).
async fn campaigns(app: &App) -> JobResult {
    let app = app.clone();
    let pass =
        tokio::task::spawn_blocking(move || crate::campaigns::run_schedule(&app)).await.map_err(err)?.map_err(err)?;
    Ok(Done::ok(pass.acted(), pass.detail()))
}

/// `recheck`: the post-offboarding re-check. For each leaver case closed `recheck_after_days`
/// ago or more and not re-checked since, every target the leaver had an account in is read
/// again; anything back is a `resurrected` finding, and its undoing is planned in the case,
/// which reopens (held for approval past the guard). A case whose targets cannot all be read
/// is left for the next run.
async fn recheck(app: &App, conns: &Arc<Connectors>) -> JobResult {
    let config = app.config_arc();
    let now = app.clock().now();
    let cutoff = stamp(now - chrono::Duration::days(i64::from(config.schedule.recheck_after_days)));
    let candidates = blocking::store(app.store(), move |s| s.recheck_candidates(&cutoff)).await.map_err(err)?;
    if candidates.is_empty() {
        return Ok(Done::ok(0, "no leaver case is due for its re-check"));
    }
    let mut rechecks = Vec::new();
    let mut unread = Vec::new();
    for c in candidates {
        match recheck_one(app, conns, &c).await {
            Ok(r) => rechecks.push(r),
            Err(why) => unread.push(format!("case {} of `{}`: {why}", c.case_id, c.identity)),
        }
    }
    let with_fixes = rechecks.iter().filter(|r| !r.ops.is_empty()).count();
    let held = if with_fixes > 0 {
        let cfg = config.clone();
        let population =
            blocking::store(app.store(), move |s| s.identities(&cfg.schema, None)).await.map_err(err)?.len();
        crate::guard::Counts { losses: with_fixes, population, ..Default::default() }.check(&config.guard)
    } else {
        None
    };
    let (checked, findings) = (rechecks.len(), rechecks.iter().map(|r| r.findings.len()).sum::<usize>());
    let actor = Job::Recheck.actor();
    let held_reason = held.clone();
    let ids = blocking::store(app.store(), move |s| s.record_rechecks(&rechecks, held_reason.as_deref(), &actor))
        .await
        .map_err(err)?;
    let mut detail = format!(
        "{checked} leaver case(s) re-checked: {findings} resurrected finding(s), {} case(s) reopened",
        ids.reopened.len()
    );
    if let (Some(id), Some(why)) = (ids.approval_id, &held) {
        detail.push_str(&format!("; the fixes are held for approval {id} ({why})"));
    }
    if unread.is_empty() {
        Ok(Done::ok(findings, detail))
    } else {
        detail.push_str(&format!("; not re-checked, for the next run: {}", unread.join("; ")));
        Ok(Done::failed(findings, detail))
    }
}

/// Reads back every account the leaver of `c` had and compares it with Tenure's view.
async fn recheck_one(app: &App, conns: &Arc<Connectors>, c: &RecheckCandidate) -> Result<Recheck, String> {
    let config = app.config_arc();
    let (cfg, id) = (config.clone(), c.identity.clone());
    let (holdings, identity) =
        blocking::store(app.store(), move |s| Ok((s.holdings(&id)?, s.identity(&cfg.schema, &id)?)))
            .await
            .map_err(err)?;
    let timeout = ExecOptions::default().call_timeout;
    let mut out = Recheck { candidate: c.clone(), accounts: 0, findings: vec![], ops: vec![] };
    for (target, view) in holdings.iter().filter(|(_, v)| v.exists) {
        let Some(t) = config.target(target) else { continue };
        // A manual target has nobody to ask but a person: its re-check is not automatic.
        if matches!(t.settings, TargetSettings::Manual(_)) {
            continue;
        }
        let Some(conn) = conns.get(target) else {
            let why = conns.why_unusable(target).map_or_else(|| "no connector".to_string(), |e| e.message.clone());
            return Err(format!("`{target}` cannot be used: {why}"));
        };
        let spec = executor::spec_of(&config, target, &c.identity, view.name.as_deref(), identity.as_ref())?;
        let read = match tokio::time::timeout(timeout, conn.read_account(&spec)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(format!("reading `{target}` failed: {e}")),
            Err(_) => return Err(format!("`{target}` did not answer within {timeout:?}")),
        };
        out.accounts += 1;
        let back = select::came_back(&c.identity, target, view, read.as_ref());
        out.findings.extend(back.findings);
        out.ops.extend(back.ops);
    }
    Ok(out)
}

/// `overdue`: open manual tickets past their due time become exceptions (their cases stuck).
async fn overdue(app: &App) -> JobResult {
    let actor = Job::Overdue.actor();
    let flagged = blocking::store(app.store(), move |s| s.flag_overdue(&actor)).await.map_err(err)?;
    Ok(match flagged.len() {
        0 => Done::ok(0, "no ticket is newly overdue"),
        n => Done::ok(n, format!("{n} overdue ticket(s) recorded as exceptions")),
    })
}

/// `credentials`: every active NHI's credential older than its `credential_max_age` (or of
/// unknown age once a maximum applies) is planned for rotation; the executor rotates it, hands
/// the secret to the sink and verifies it.
async fn credentials(app: &App) -> JobResult {
    let (config, actor) = (app.config_arc(), Job::Credentials.actor());
    let store = app.store().clone();
    let n = tokio::task::spawn_blocking(move || crate::nhi::rotate_stale(&config, store.as_ref(), &actor))
        .await
        .map_err(err)?
        .map_err(err)?;
    Ok(match n {
        0 => Done::ok(0, "no credential is past its maximum age"),
        n => Done::ok(n, format!("{n} stale credential(s) planned for rotation")),
    })
}

/// `retention`: accounts past their target's `delete_after_days` are planned for deletion, and
/// ingested push journal entries older than `[server] journal_retention` are deleted (a replay
/// of one is refused by its signature's timestamp long before: the retention is at least ten
/// minutes, twice the five minutes a timestamp may be off).
async fn retention(app: &App) -> JobResult {
    let n = executor::sweep_retention(app.config(), app.store(), &Job::Retention.actor()).await.map_err(err)?;
    let pruned = prune_journal(app).await?;
    let accounts = match n {
        0 => "no account is past its retention period".to_string(),
        n => format!("{n} account(s) past retention planned for deletion"),
    };
    Ok(match pruned {
        0 => Done::ok(n, accounts),
        p => Done::ok(n + p, format!("{accounts}; {p} ingested push journal entries past retention deleted")),
    })
}

/// Deletes the ingested journal entries past `[server] journal_retention`, a bounded number per
/// transaction so a large backlog never holds the store's write lock for long.
async fn prune_journal(app: &App) -> Result<usize, String> {
    const PER_TRANSACTION: usize = 5_000;
    let retention = app.config().server.journal_retention_secs;
    let secs = i64::try_from(retention).unwrap_or(i64::MAX);
    let cut = app.clock().now() - chrono::Duration::try_seconds(secs).unwrap_or(chrono::Duration::MAX);
    let before = tenure_core::clock::stamp(cut);
    let mut total = 0;
    loop {
        let before = before.clone();
        let n = crate::blocking::store(app.store(), move |s| s.journal_prune(&before, PER_TRANSACTION))
            .await
            .map_err(err)?;
        total += n;
        if n < PER_TRANSACTION {
            return Ok(total);
        }
    }
}

/// `reconcile`: every target read and compared; findings recorded, nothing remediated (fixes
/// are a person's `tenure reconcile --remediate`, through the guard).
async fn reconcile(app: &App, conns: &Arc<Connectors>) -> JobResult {
    let policy = app.policy().map_err(err)?;
    let actor = Job::Reconcile.actor();
    let report = crate::reconcile::reconcile_as(app.config(), policy, app.store().clone(), conns, None, false, &actor)
        .await
        .map_err(err)?;
    let findings: usize = report.targets.iter().map(|t| t.findings.len()).sum::<usize>() + report.sod.len();
    let mut detail = format!("{} target(s) reconciled, {findings} finding(s)", report.targets.len());
    if report.skipped.is_empty() {
        return Ok(Done::ok(findings, detail));
    }
    let skipped: Vec<String> = report.skipped.iter().map(|s| format!("`{}`: {}", s.target, s.reason)).collect();
    detail.push_str(&format!("; skipped {}", skipped.join("; ")));
    Ok(Done::failed(findings, detail))
}

/// `checkpoint`: the chain's head signed (`tenure audit checkpoint`, with the key it uses,
/// created on first use as there), unless nothing was appended since the last checkpoint.
async fn checkpoint(app: &App) -> JobResult {
    let key = app.loaded().signing_key_path();
    let store = app.store().clone();
    tokio::task::spawn_blocking(move || {
        let last = store.checkpoints().map_err(err)?.into_iter().last();
        if let Some(cp) = &last {
            let mut newer = false;
            let filter = tenure_store::AuditFilter { identity: None, since: Some(cp.at.clone()) };
            store
                .scan_audit(&filter, &mut |r| {
                    newer = r.seq > cp.seq;
                    !newer
                })
                .map_err(err)?;
            if !newer {
                return Ok(Done::ok(0, format!("nothing appended since the checkpoint at seq {}", cp.seq)));
            }
        }
        let files = crate::evidence::ensure_signing_key(&key).map_err(err)?;
        let cp = crate::evidence::checkpoint(store.as_ref(), &files.signer, &Job::Checkpoint.actor()).map_err(err)?;
        Ok(Done::ok(1, format!("the chain up to seq {} signed with key {}", cp.seq, cp.key_id)))
    })
    .await
    .map_err(err)?
}

/// `apply` (a `run-once` pass only): the executor over what is runnable now, as `tenure apply`
/// runs it; retention and overdue tickets are their own jobs.
async fn apply(app: &App, conns: &Arc<Connectors>) -> JobResult {
    let opts = ExecOptions { housekeeping: false, ..ExecOptions::default() };
    let r = executor::run(app.config_arc(), app.store().clone(), conns.clone(), opts).await.map_err(err)?;
    Ok(Done::ok(
        r.attempts,
        format!("{} attempt(s): {} verified, {} to retry, {} failed", r.attempts, r.verified, r.retries, r.failed),
    ))
}

//! The schedules' tables (migration 0010): the scheduler lease, the last run of each job, and
//! the post-offboarding re-check (see [`crate::schedule`]).

use super::audit::append;
use super::lifecycle::{identity_from, refresh_case};
use super::{R, SqliteStore, conflict, enum_col, sql_int};
use crate::records::Finding;
use crate::schedule::{JobDone, JobRun, Lead, Recheck, RecheckCandidate, RecheckIds};
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;
use tenure_core::audit::AuditEntry;
use tenure_core::{ApprovalKind, ApprovalState, CaseState, EventKind, Identity, OpState, Schema, Status};

/// The one lease name: every process's scheduler competes for it.
const LEASE: &str = "scheduler";

pub(super) fn lead(store: &SqliteStore, owner: &str, lease: Duration) -> R<Lead> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = store.now();
    let until = store.after(lease);
    let current: Option<(String, String, String)> = tx
        .query_row("SELECT owner, until, since FROM schedule_lease WHERE name = ?1", [LEASE], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let out = match current {
        Some((holder, held_until, _)) if holder != owner && held_until >= now => {
            Lead { held: false, owner: holder, until: held_until }
        }
        other => {
            let since = other.filter(|(holder, ..)| holder == owner).map_or_else(|| now.clone(), |(.., s)| s);
            tx.execute(
                "INSERT INTO schedule_lease (name, owner, until, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET owner = ?2, until = ?3, since = ?4",
                params![LEASE, owner, until, since],
            )?;
            Lead { held: true, owner: owner.to_string(), until }
        }
    };
    tx.commit()?;
    Ok(out)
}

pub(super) fn release_lead(store: &SqliteStore, owner: &str) -> R<()> {
    store.lock().execute("DELETE FROM schedule_lease WHERE name = ?1 AND owner = ?2", params![LEASE, owner])?;
    Ok(())
}

pub(super) fn date_candidates(
    conn: &Connection,
    schema: &Schema,
    source: &str,
    ends_before: &str,
    starts_by: &str,
) -> R<Vec<Identity>> {
    // Each half matches its partial expression index (migration 0010).
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, status, attrs FROM identities
         WHERE status <> 'terminated' AND json_extract(attrs, '$.end_date') < ?2 AND source = ?1
         UNION
         SELECT id, kind, status, attrs FROM identities
         WHERE status = 'prehire' AND json_extract(attrs, '$.start_date') <= ?3 AND source = ?1
         ORDER BY id",
    )?;
    let mut rows = stmt.query(params![source, ends_before, starts_by])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, kind, status, attrs): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        out.push(identity_from(schema, &id, &kind, &status, &attrs)?);
    }
    Ok(out)
}

pub(super) fn job_runs(conn: &Connection) -> R<Vec<JobRun>> {
    let mut stmt = conn.prepare_cached("SELECT job, last_at, outcome, detail, runs FROM schedule_runs ORDER BY job")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(JobRun {
            job: r.get(0)?,
            last_at: r.get(1)?,
            outcome: enum_col(r, 2)?,
            detail: r.get(3)?,
            runs: r.get(4)?,
        });
    }
    Ok(out)
}

pub(super) fn record_job(store: &SqliteStore, owner: &str, done: &JobDone) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let holder: Option<String> =
        tx.query_row("SELECT owner FROM schedule_lease WHERE name = ?1", [LEASE], |r| r.get(0)).optional()?;
    // An expired lease nobody took over is still ours, as with operation claims.
    if holder.as_deref() != Some(owner) {
        return Err(conflict(format!(
            "the scheduler lease is no longer held by this process; job `{}` was not recorded",
            done.job
        )));
    }
    tx.execute(
        "INSERT INTO schedule_runs (job, last_at, outcome, detail, runs) VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (job) DO UPDATE SET last_at = ?2, outcome = ?3, detail = ?4, runs = runs + 1",
        params![done.job, at, done.outcome.as_str(), done.detail],
    )?;
    if done.audit {
        let e = AuditEntry::new(&format!("schedule:{}", done.job), "schedule.run", done.outcome.as_str())
            .reason(done.detail.clone());
        append(&tx, &[e], &at)?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn recheck_candidates(conn: &Connection, closed_before: &str) -> R<Vec<RecheckCandidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.event_id, c.identity, c.closed_at FROM cases c JOIN identities i ON i.id = c.identity
         WHERE c.kind = ?1 AND c.state = ?2 AND c.closed_at <= ?3 AND i.status = ?4
           AND c.id = (SELECT max(l.id) FROM cases l WHERE l.identity = c.identity AND l.kind = ?1)
           AND NOT EXISTS (SELECT 1 FROM schedule_rechecks r WHERE r.case_id = c.id AND r.closed_at = c.closed_at)
         ORDER BY c.closed_at, c.id",
    )?;
    let mut rows = stmt.query(params![
        EventKind::Leaver.as_str(),
        CaseState::Closed.as_str(),
        closed_before,
        Status::Terminated.as_str()
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(RecheckCandidate {
            case_id: r.get(0)?,
            event_id: r.get(1)?,
            identity: r.get(2)?,
            closed_at: r.get(3)?,
        });
    }
    Ok(out)
}

pub(super) fn record_rechecks(
    store: &SqliteStore,
    rechecks: &[Recheck],
    held: Option<&str>,
    actor: &str,
) -> R<RecheckIds> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut audit = Vec::new();
    let mut out = RecheckIds::default();
    for r in rechecks {
        let c = &r.candidate;
        let now: Option<(String, Option<String>)> = tx
            .query_row("SELECT state, closed_at FROM cases WHERE id = ?1", [c.case_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        if now != Some((CaseState::Closed.as_str().to_string(), Some(c.closed_at.clone()))) {
            return Err(conflict(format!("case {} is no longer closed as it was when re-checked", c.case_id)));
        }
        tx.execute(
            "INSERT INTO schedule_rechecks (case_id, closed_at, identity, checked_at, findings) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.case_id, c.closed_at, c.identity, at, sql_int(r.findings.len())],
        )?;
    }
    let findings: Vec<&Finding> = rechecks.iter().flat_map(|r| &r.findings).collect();
    if !findings.is_empty() {
        let accounts: usize = rechecks.iter().map(|r| r.accounts).sum();
        tx.execute(
            "INSERT INTO recon_runs (target, at, accounts, grants, findings, millis) VALUES ('*recheck', ?1, ?2, 0, ?3, 0)",
            params![at, sql_int(accounts), sql_int(findings.len())],
        )?;
        let run_id = tx.last_insert_rowid();
        out.run_id = Some(run_id);
        let mut ins = tx.prepare_cached(
            "INSERT INTO findings (run_id, kind, target, account, identity, entitlement, detail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for f in &findings {
            ins.execute(params![
                run_id,
                f.kind.as_str(),
                f.target,
                f.account,
                f.identity,
                f.entitlement,
                f.detail,
                at
            ])?;
            let mut e = AuditEntry::new(actor, &format!("finding.{}", f.kind), "open")
                .target(&f.target)
                .entitlement(f.entitlement.as_deref())
                .reason(format!("run {run_id}: {}", f.detail));
            e.identity.clone_from(&f.identity);
            audit.push(e);
        }
    }
    let state = if held.is_some() { OpState::Held } else { OpState::Pending };
    for r in rechecks.iter().filter(|r| !r.ops.is_empty()) {
        let c = &r.candidate;
        let detail = r.findings.iter().map(|f| f.detail.as_str()).collect::<Vec<_>>().join("; ");
        for (i, op) in r.ops.iter().enumerate() {
            let reason = serde_json::json!({
                "event": c.event_id, "kind": EventKind::Leaver.as_str(), "rules": op.rules, "finding": detail,
            });
            let key = format!("recheck-{}-{}-{i}", c.case_id, c.closed_at);
            tx.execute(
                "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state,
                                         created_at, updated_at, account)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                params![
                    c.case_id,
                    c.identity,
                    op.target,
                    op.kind.as_str(),
                    op.entitlement,
                    reason.to_string(),
                    key,
                    state.as_str(),
                    at,
                    op.account
                ],
            )?;
            out.operations += 1;
            audit.push(
                AuditEntry::new(actor, &format!("plan.{}", op.kind), state.as_str())
                    .identity(&c.identity)
                    .target(&op.target)
                    .entitlement(op.entitlement.as_deref())
                    .reason(format!("event {} (re-check of case {}): {detail}", c.event_id, c.case_id)),
            );
        }
        refresh_case(&tx, c.case_id, &at, &mut audit)?;
        audit.push(
            AuditEntry::new(actor, "case.reopened", "open")
                .identity(&c.identity)
                .reason(format!("case {} (leaver): closed at {}, re-checked: {detail}", c.case_id, c.closed_at)),
        );
        out.reopened.push(c.case_id);
    }
    if let Some(reason) = held.filter(|_| out.operations > 0) {
        let summary = serde_json::json!({
            "source": "recheck", "reason": reason, "runs": out.run_id.into_iter().collect::<Vec<_>>(),
            "operations": out.operations, "cases": out.reopened,
        });
        tx.execute(
            "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                ApprovalKind::Remediation.as_str(),
                out.run_id.unwrap_or_default(),
                summary.to_string(),
                ApprovalState::Pending.as_str(),
                at
            ],
        )?;
        let id = tx.last_insert_rowid();
        out.approval_id = Some(id);
        audit.push(AuditEntry::new(actor, "remediation.held", "held").reason(format!("approval {id}: {reason}")));
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(out)
}

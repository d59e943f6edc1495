//! The durable operation queue, manual tickets, exceptions and reconciliation findings.
//!
//! Operations of one identity in one target run strictly in order (an account is created before
//! it is granted anything); different identities and targets run concurrently. An operation is
//! claimed by moving it to `running`; after a crash, `recover_running` moves such operations back
//! to `pending`. Re-applying them is safe because every connector operation is idempotent.

use crate::sqlite::{OP_COLUMNS, SqliteStore, append, now, op_row};
use crate::{OpRecord, Result, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use std::collections::BTreeMap;
use tenure_core::audit::AuditEntry;
use tenure_core::{CaseState, OpKind, OpState};

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
    pub state: String,
    pub created_at: String,
    pub due_at: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
    pub evidence: Option<String>,
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRecord {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub case_id: Option<i64>,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub owner: String,
    pub reason: String,
    pub state: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub kind: String,
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

pub trait Queue: Send + Sync {
    /// Moves operations left `running` by executors that are gone (`alive` says no for their
    /// claimer token) back to `pending`. Work of a live executor is never taken over.
    fn recover_running(&self, alive: &dyn Fn(&str) -> bool) -> Result<usize>;
    /// Claims up to `limit` runs for `claimer` and marks them `running`. A run is a runnable
    /// operation (pending, due, not behind an unfinished earlier operation of the same identity
    /// and target) followed by the due, pending operations queued right behind it for the same
    /// identity and target, in order. Runs are returned one after another, each in order.
    fn claim(&self, now: &str, limit: usize, claimer: &str) -> Result<Vec<OpRecord>>;
    /// Records how an attempt ended. Returns `false`, changing nothing, when the operation is
    /// no longer running under `claimer` (another executor recovered it).
    fn finish(&self, f: &Finished, claimer: &str) -> Result<bool> {
        Ok(self.finish_many(std::slice::from_ref(f), &[], claimer)? == 1)
    }
    /// Records several outcomes and returns claimed operations that were not attempted
    /// (`release`) to `pending`, in one transaction. Returns how many outcomes were recorded.
    fn finish_many(&self, done: &[Finished], release: &[i64], claimer: &str) -> Result<usize>;
    /// Returns every failed operation to `pending` with a fresh retry budget, audited with who
    /// asked; their failure exceptions are resolved and their cases reopened. Their last error is
    /// kept (so they are never mistaken for untried work). Returns how many.
    fn retry_failed(&self, by: &str) -> Result<usize>;
    /// Operation counts by state.
    fn queue_counts(&self) -> Result<BTreeMap<String, i64>>;
    /// The earliest time a pending operation waits for.
    fn next_retry_at(&self) -> Result<Option<String>>;

    /// Opens the ticket for a manual operation (once); the operation becomes `done` and waits
    /// for a person to finish the ticket.
    fn open_ticket(&self, op: &OpRecord, owner: &str, summary: &str, due_at: &str, claimer: &str) -> Result<i64>;
    fn tickets(&self, open_only: bool) -> Result<Vec<TicketRecord>>;
    /// Marks a ticket done with evidence; its operation becomes `verified`.
    fn complete_ticket(&self, id: i64, by: &str, evidence: &str) -> Result<TicketRecord>;
    /// Records an exception for every open ticket past its due time; their cases become stuck.
    fn flag_overdue(&self, now: &str) -> Result<Vec<ExceptionRecord>>;
    fn exceptions(&self, open_only: bool) -> Result<Vec<ExceptionRecord>>;

    fn record_recon(&self, run: &ReconRun, findings: &[Finding]) -> Result<i64>;
    fn findings(&self, run_id: i64) -> Result<Vec<Finding>>;
    /// Plans remediation operations (one event and case per identity); returns the approval id
    /// when held.
    fn commit_remediation(&self, r: &Remediation) -> Result<(usize, Option<i64>)>;
    /// Releases a held remediation: its operations become pending.
    fn release_remediation(&self, approval_id: i64, approver: &str) -> Result<usize>;
    /// Plans `delete_account` in `target` for every terminated identity whose leaver case
    /// closed before `cutoff` and whose account there is disabled and idle. Returns how many.
    fn plan_retention(&self, target: &str, cutoff: &str) -> Result<usize>;
}

/// Recomputes a case's state from its operations and open exceptions.
pub(crate) fn refresh_case(tx: &Transaction<'_>, case_id: i64, at: &str, audit: &mut Vec<AuditEntry>) -> Result<()> {
    let (total, ok, failed): (i64, i64, i64) = tx.query_row(
        "SELECT count(*), sum(state IN ('verified', 'excepted', 'cancelled')), sum(state = 'failed') FROM operations
         WHERE case_id = ?1",
        [case_id],
        |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0), r.get::<_, Option<i64>>(2)?.unwrap_or(0))),
    )?;
    let overdue: i64 =
        tx.query_row("SELECT count(*) FROM exceptions WHERE case_id = ?1 AND state = 'open'", [case_id], |r| r.get(0))?;
    let (current, kind, identity, opened): (String, String, String, String) =
        tx.query_row("SELECT state, kind, identity, opened_at FROM cases WHERE id = ?1", [case_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let state = if total == ok {
        CaseState::Closed
    } else if failed > 0 || overdue > 0 {
        CaseState::Stuck
    } else {
        CaseState::Open
    };
    if current == state.as_str() {
        return Ok(());
    }
    if state == CaseState::Closed {
        let ms = millis_between(&opened, at);
        let revoke_ms = (kind == "leaver").then_some(ms);
        tx.execute(
            "UPDATE cases SET state = 'closed', closed_at = ?2, revoke_ms = ?3 WHERE id = ?1",
            params![case_id, at, revoke_ms],
        )?;
        let mut reason = format!("case {case_id} ({kind}): all {total} operations verified, excepted or cancelled");
        if let Some(ms) = revoke_ms {
            reason.push_str(&format!("; time-to-revoke {ms} ms"));
        }
        audit.push(AuditEntry::new("executor", "case.closed", "closed").identity(&identity).reason(reason));
    } else {
        tx.execute("UPDATE cases SET state = ?2, closed_at = NULL WHERE id = ?1", params![case_id, state.as_str()])?;
        if state == CaseState::Stuck {
            audit.push(
                AuditEntry::new("executor", "case.stuck", "stuck").identity(&identity).reason(format!(
                    "case {case_id} ({kind}): {failed} operation(s) failed, {overdue} open exception(s)"
                )),
            );
        }
    }
    Ok(())
}

fn millis_between(a: &str, b: &str) -> i64 {
    let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (p(a), p(b)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds(),
        _ => 0,
    }
}

fn ticket_row(r: &rusqlite::Row<'_>, now: &str) -> rusqlite::Result<TicketRecord> {
    let state: String = r.get(6)?;
    let due_at: String = r.get(8)?;
    Ok(TicketRecord {
        id: r.get(0)?,
        operation_id: r.get(1)?,
        target: r.get(2)?,
        owner: r.get(3)?,
        identity: r.get(4)?,
        summary: r.get(5)?,
        overdue: state == "open" && due_at.as_str() < now,
        state,
        created_at: r.get(7)?,
        due_at,
        done_at: r.get(9)?,
        done_by: r.get(10)?,
        evidence: r.get(11)?,
    })
}

const TICKET_COLUMNS: &str =
    "id, operation_id, target, owner, identity, summary, state, created_at, due_at, done_at, done_by, evidence";

fn exception_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExceptionRecord> {
    Ok(ExceptionRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        case_id: r.get(3)?,
        identity: r.get(4)?,
        target: r.get(5)?,
        owner: r.get(6)?,
        reason: r.get(7)?,
        state: r.get(8)?,
        created_at: r.get(9)?,
        resolved_at: r.get(10)?,
    })
}

/// Records one outcome inside `tx`; returns its case, or `None` if the operation is no longer
/// running under `claimer`.
fn finish_one(
    tx: &Transaction<'_>,
    f: &Finished,
    claimer: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> Result<Option<i64>> {
    let at = at.to_string();
    let verified_at = (f.state == OpState::Verified).then(|| at.clone());
    let n = tx.execute(
        "UPDATE operations SET state = ?2, last_error = ?3, next_attempt_at = ?4, note = COALESCE(?5, note),
                updated_at = ?6, verified_at = COALESCE(?7, verified_at), claimed_by = NULL
         WHERE id = ?1 AND state = 'running' AND claimed_by = ?8",
        params![f.op, f.state.as_str(), f.error, f.next_attempt_at, f.note, at, verified_at, claimer],
    )?;
    if n != 1 {
        return Ok(None);
    }
    let (case_id, identity, target): (i64, String, String) =
        tx.query_row("SELECT case_id, identity, target FROM operations WHERE id = ?1", [f.op], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    audit.push(f.audit.clone());
    let kind: String = tx.query_row("SELECT kind FROM operations WHERE id = ?1", [f.op], |r| r.get(0))?;
    if f.state == OpState::Failed && (kind == "create_account" || kind == "enable") {
        // Grants queued behind a failed create or enable cannot be right: the account is not
        // (or not provably) this identity's. They fail with it, unattempted. Revocations are
        // never cascaded: removing access is always attempted.
        let n = tx.execute(
            "UPDATE operations SET state = 'failed', last_error = ?4, updated_at = ?5
             WHERE identity = ?1 AND target = ?2 AND id > ?3 AND kind = 'grant' AND state IN ('pending', 'held')",
            params![identity, target, f.op, format!("not attempted: operation {} ({kind}) failed", f.op), at],
        )?;
        if n > 0 {
            audit.push(
                AuditEntry::new("executor", "apply.grant", "failed")
                    .identity(&identity)
                    .target(&target)
                    .reason(format!("{n} grant(s) not attempted because operation {} ({kind}) failed", f.op)),
            );
        }
    }
    if f.state == OpState::Failed {
        tx.execute(
            "INSERT OR IGNORE INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
             VALUES ('failed_operation', ?1, ?2, ?3, ?4, ?4, ?5, 'open', ?6)",
            params![format!("operation:{}", f.op), case_id, identity, target, f.error.clone().unwrap_or_default(), at],
        )?;
    }
    Ok(Some(case_id))
}

impl Queue for SqliteStore {
    fn recover_running(&self, alive: &dyn Fn(&str) -> bool) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let claimers: Vec<Option<String>> = {
            let mut stmt = tx.prepare_cached("SELECT DISTINCT claimed_by FROM operations WHERE state = 'running'")?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut n = 0;
        for c in claimers {
            if c.as_deref().is_some_and(alive) {
                continue;
            }
            n += tx.execute(
                "UPDATE operations SET state = 'pending', claimed_by = NULL, updated_at = ?1
                 WHERE state = 'running' AND claimed_by IS ?2",
                params![now(), c],
            )?;
        }
        if n > 0 {
            append(
                &tx,
                &[AuditEntry::new("executor", "executor.recovered", "pending")
                    .reason(format!("{n} operation(s) left running by an executor that is gone were requeued"))],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn claim(&self, at: &str, limit: usize, claimer: &str) -> Result<Vec<OpRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ops = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations o
                 WHERE o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)
                   AND NOT EXISTS (SELECT 1 FROM operations p WHERE p.identity = o.identity AND p.target = o.target
                                   AND p.id < o.id AND p.state IN ('pending', 'running', 'held'))
                 ORDER BY o.id LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![at, i64::try_from(limit).unwrap_or(i64::MAX)])?;
            let mut heads = Vec::new();
            while let Some(r) = rows.next()? {
                heads.push(op_row(r)?);
            }
            drop(rows);
            let mut behind = tx.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations WHERE identity = ?1 AND target = ?2 AND id > ?3 ORDER BY id LIMIT 64"
            ))?;
            let mut out = Vec::with_capacity(heads.len() * 3);
            for head in heads {
                let mut rows = behind.query(params![head.identity, head.target, head.id])?;
                out.push(head);
                while let Some(r) = rows.next()? {
                    let op = op_row(r)?;
                    let due = op.next_attempt_at.as_deref().is_none_or(|t| t <= at);
                    if op.state != OpState::Pending || !due {
                        break;
                    }
                    out.push(op);
                }
            }
            out
        };
        {
            let mut upd = tx.prepare_cached(
                "UPDATE operations SET state = 'running', attempts = attempts + 1, updated_at = ?2, claimed_by = ?3
                 WHERE id = ?1",
            )?;
            for op in &ops {
                upd.execute(params![op.id, at, claimer])?;
            }
        }
        tx.commit()?;
        Ok(ops
            .into_iter()
            .map(|mut o| {
                o.state = OpState::Running;
                o.attempts += 1;
                o
            })
            .collect())
    }

    fn finish_many(&self, done: &[Finished], release: &[i64], claimer: &str) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        for id in release {
            tx.execute(
                "UPDATE operations SET state = 'pending', attempts = max(attempts - 1, 0), claimed_by = NULL,
                        updated_at = ?3
                 WHERE id = ?1 AND state = 'running' AND claimed_by = ?2",
                params![id, claimer, at],
            )?;
        }
        let mut audit = Vec::new();
        let mut cases = std::collections::BTreeSet::new();
        let mut recorded = 0;
        for f in done {
            if let Some(case_id) = finish_one(&tx, f, claimer, &at, &mut audit)? {
                cases.insert(case_id);
                recorded += 1;
            }
        }
        for case_id in cases {
            refresh_case(&tx, case_id, &at, &mut audit)?;
        }
        append(&tx, &audit)?;
        tx.commit()?;
        Ok(recorded)
    }

    fn retry_failed(&self, by: &str) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let failed: Vec<(i64, i64)> = {
            let mut stmt =
                tx.prepare_cached("SELECT id, case_id FROM operations WHERE state = 'failed' ORDER BY id")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let mut audit = Vec::new();
        let mut cases = std::collections::BTreeSet::new();
        for (op, case_id) in &failed {
            tx.execute(
                "UPDATE operations SET state = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ?2,
                        note = ?3
                 WHERE id = ?1 AND state = 'failed'",
                params![op, at, format!("retry requested by {by}")],
            )?;
            tx.execute(
                "UPDATE exceptions SET state = 'resolved', resolved_at = ?2
                 WHERE kind = 'failed_operation' AND subject = ?1 AND state = 'open'",
                params![format!("operation:{op}"), at],
            )?;
            cases.insert(*case_id);
        }
        if !failed.is_empty() {
            let ids: Vec<String> = failed.iter().map(|(op, _)| op.to_string()).collect();
            audit.push(
                AuditEntry::new(&format!("user:{by}"), "apply.retry_failed", "pending").approver(by).reason(format!(
                    "{} failed operation(s) queued again: {}",
                    failed.len(),
                    ids.join(", ")
                )),
            );
        }
        for case_id in cases {
            refresh_case(&tx, case_id, &at, &mut audit)?;
        }
        append(&tx, &audit)?;
        tx.commit()?;
        Ok(failed.len())
    }

    fn queue_counts(&self) -> Result<BTreeMap<String, i64>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM operations GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn next_retry_at(&self) -> Result<Option<String>> {
        let conn = self.lock();
        Ok(conn.query_row(
            "SELECT min(next_attempt_at) FROM operations WHERE state = 'pending' AND next_attempt_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }

    fn open_ticket(&self, op: &OpRecord, owner: &str, summary: &str, due_at: &str, claimer: &str) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let existing: Option<i64> =
            tx.query_row("SELECT id FROM tickets WHERE operation_id = ?1", [op.id], |r| r.get(0)).optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO tickets (operation_id, target, owner, identity, summary, state, created_at, due_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
                    params![op.id, op.target, owner, op.identity, summary, at, due_at],
                )?;
                tx.last_insert_rowid()
            }
        };
        let n = tx.execute(
            "UPDATE operations SET state = 'done', note = ?2, updated_at = ?3, claimed_by = NULL
             WHERE id = ?1 AND state = 'running' AND claimed_by = ?4",
            params![op.id, format!("ticket {id} opened for {owner}"), at, claimer],
        )?;
        if n != 1 {
            return Err(StoreError::Conflict(format!("operation {} is no longer claimed by this executor", op.id)));
        }
        append(
            &tx,
            &[AuditEntry::new("executor", "ticket.opened", "open")
                .identity(&op.identity)
                .target(&op.target)
                .entitlement(op.entitlement.as_deref())
                .reason(format!("ticket {id} for `{owner}` (due {due_at}): {summary}"))],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn tickets(&self, open_only: bool) -> Result<Vec<TicketRecord>> {
        let conn = self.lock();
        let at = now();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE (?1 = 0 OR state = 'open') ORDER BY id"
        ))?;
        let rows = stmt.query_map([open_only], |r| ticket_row(r, &at))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn complete_ticket(&self, id: i64, by: &str, evidence: &str) -> Result<TicketRecord> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let t = tx
            .query_row(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1"), [id], |r| ticket_row(r, &at))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("ticket {id}")))?;
        if t.state != "open" {
            return Err(StoreError::Conflict(format!("ticket {id} is already {}", t.state)));
        }
        tx.execute(
            "UPDATE tickets SET state = 'done', done_at = ?2, done_by = ?3, evidence = ?4 WHERE id = ?1",
            params![id, at, by, evidence],
        )?;
        tx.execute(
            "UPDATE operations SET state = 'verified', verified_at = ?2, updated_at = ?2, note = ?3 WHERE id = ?1",
            params![t.operation_id, at, format!("ticket {id} done by {by}")],
        )?;
        tx.execute(
            "UPDATE exceptions SET state = 'resolved', resolved_at = ?2 WHERE subject = ?1 AND state = 'open'",
            params![format!("ticket:{id}"), at],
        )?;
        let case_id: i64 =
            tx.query_row("SELECT case_id FROM operations WHERE id = ?1", [t.operation_id], |r| r.get(0))?;
        let mut audit = vec![
            AuditEntry::new(&format!("user:{by}"), "ticket.done", "verified")
                .identity(&t.identity)
                .target(&t.target)
                .approver(by)
                .reason(format!("ticket {id} ({}): evidence: {evidence}", t.summary)),
        ];
        refresh_case(&tx, case_id, &at, &mut audit)?;
        append(&tx, &audit)?;
        tx.commit()?;
        Ok(TicketRecord {
            state: "done".into(),
            done_at: Some(at),
            done_by: Some(by.into()),
            evidence: Some(evidence.into()),
            overdue: false,
            ..t
        })
    }

    fn flag_overdue(&self, at: &str) -> Result<Vec<ExceptionRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let due: Vec<(i64, i64, String, String, String, String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT t.id, o.case_id, t.identity, t.target, t.owner, t.summary, t.due_at FROM tickets t
                 JOIN operations o ON o.id = t.operation_id
                 WHERE t.state = 'open' AND t.due_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.kind = 'overdue_ticket' AND e.subject = 'ticket:' || t.id)",
            )?;
            stmt.query_map([at], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut audit = Vec::new();
        let mut ids = Vec::new();
        for (ticket, case_id, identity, target, owner, summary, due_at) in due {
            let reason = format!("ticket {ticket} overdue since {due_at}: {summary}");
            tx.execute(
                "INSERT INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
                 VALUES ('overdue_ticket', ?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
                params![format!("ticket:{ticket}"), case_id, identity, target, owner, reason, at],
            )?;
            ids.push(tx.last_insert_rowid());
            audit.push(
                AuditEntry::new("executor", "exception.opened", "overdue")
                    .identity(&identity)
                    .target(&target)
                    .reason(reason),
            );
            refresh_case(&tx, case_id, at, &mut audit)?;
        }
        append(&tx, &audit)?;
        let out = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, kind, subject, case_id, identity, target, owner, reason, state, created_at, resolved_at
                 FROM exceptions WHERE id IN (SELECT value FROM json_each(?1))",
            )?;
            let rows = stmt.query_map([serde_json::to_string(&ids).unwrap_or_default()], exception_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        Ok(out)
    }

    fn exceptions(&self, open_only: bool) -> Result<Vec<ExceptionRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, subject, case_id, identity, target, owner, reason, state, created_at, resolved_at
             FROM exceptions WHERE (?1 = 0 OR state = 'open') ORDER BY id",
        )?;
        let rows = stmt.query_map([open_only], exception_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_recon(&self, run: &ReconRun, findings: &[Finding]) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        tx.execute(
            "INSERT INTO recon_runs (target, at, accounts, grants, findings, millis) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run.target,
                at,
                i64::try_from(run.accounts).unwrap_or(i64::MAX),
                i64::try_from(run.grants).unwrap_or(i64::MAX),
                i64::try_from(findings.len()).unwrap_or(i64::MAX),
                i64::try_from(run.millis).unwrap_or(i64::MAX)
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        let mut audit = vec![
            AuditEntry::new("reconciler", "reconcile", if findings.is_empty() { "clean" } else { "findings" })
                .target(&run.target)
                .reason(format!(
                    "run {run_id}: {} accounts, {} grants read; {} finding(s)",
                    run.accounts,
                    run.grants,
                    findings.len()
                )),
        ];
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO findings (run_id, kind, target, account, identity, entitlement, detail, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for f in findings {
                ins.execute(params![run_id, f.kind, f.target, f.account, f.identity, f.entitlement, f.detail, at])?;
                let mut e = AuditEntry::new("reconciler", &format!("finding.{}", f.kind), "open")
                    .target(&f.target)
                    .entitlement(f.entitlement.as_deref())
                    .reason(format!("run {run_id}: {}", f.detail));
                e.identity.clone_from(&f.identity);
                audit.push(e);
            }
        }
        append(&tx, &audit)?;
        tx.commit()?;
        Ok(run_id)
    }

    fn findings(&self, run_id: i64) -> Result<Vec<Finding>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, target, account, identity, entitlement, detail FROM findings WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(Finding {
                kind: r.get(0)?,
                target: r.get(1)?,
                account: r.get(2)?,
                identity: r.get(3)?,
                entitlement: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn commit_remediation(&self, r: &Remediation) -> Result<(usize, Option<i64>)> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let state = if r.held.is_some() { "held" } else { "pending" };
        let mut by_identity: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in r.ops.iter().enumerate() {
            by_identity.entry(op.identity.as_str()).or_default().push(i);
        }
        let runs = r.run_ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let mut audit = Vec::new();
        let mut case_ids = Vec::new();
        for (identity, idx) in &by_identity {
            tx.execute(
                "INSERT INTO events (import_id, source, kind, identity, received_at, changes, significant, note, after, state)
                 VALUES (NULL, 'reconcile', 'update', ?1, ?2, '[]', 0, ?3, '{}', 'applied')",
                params![identity, at, format!("remediation of reconciliation run(s) {runs}")],
            )?;
            let event_id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO cases (event_id, identity, kind, state, opened_at) VALUES (?1, ?2, 'update', 'open', ?3)",
                params![event_id, identity, at],
            )?;
            let case_id = tx.last_insert_rowid();
            case_ids.push(case_id);
            for &i in idx {
                let Some(RemediationOp { target, kind, entitlement: ent, account, detail, .. }) = r.ops.get(i) else {
                    continue;
                };
                let reason = serde_json::json!({ "event": event_id, "kind": "update", "rules": [], "finding": detail });
                let key = format!("remediate-{event_id}-{i}");
                tx.execute(
                    "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state,
                                             created_at, updated_at, account)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                    params![case_id, identity, target, kind.as_str(), ent, reason.to_string(), key, state, at, account],
                )?;
                audit.push(
                    AuditEntry::new(&r.actor, &format!("plan.{kind}"), state)
                        .identity(identity)
                        .target(target)
                        .entitlement(ent.as_deref())
                        .reason(format!("event {event_id} (remediation): {detail}")),
                );
            }
        }
        let mut approval = None;
        if let Some(reason) = &r.held {
            let summary = serde_json::json!({ "source": "reconcile", "reason": reason, "runs": r.run_ids, "operations": r.ops.len(), "cases": case_ids });
            tx.execute(
                "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES ('remediation', ?1, ?2, 'pending', ?3)",
                params![r.run_ids.first().copied().unwrap_or_default(), summary.to_string(), at],
            )?;
            let id = tx.last_insert_rowid();
            approval = Some(id);
            audit
                .push(AuditEntry::new(&r.actor, "remediation.held", "held").reason(format!("approval {id}: {reason}")));
        }
        append(&tx, &audit)?;
        tx.commit()?;
        Ok((r.ops.len(), approval))
    }

    fn release_remediation(&self, approval_id: i64, approver: &str) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let summary: String = tx
            .query_row(
                "SELECT summary FROM approvals WHERE id = ?1 AND kind = 'remediation' AND state = 'pending'",
                [approval_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::Conflict(format!("approval {approval_id} is not a pending remediation")))?;
        let v: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
        let cases: Vec<i64> = v
            .get("cases")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
            .unwrap_or_default();
        let mut n = 0;
        for c in cases {
            n += tx.execute(
                "UPDATE operations SET state = 'pending', updated_at = ?2 WHERE case_id = ?1 AND state = 'held'",
                params![c, at],
            )?;
        }
        tx.execute(
            "UPDATE approvals SET state = 'approved', decided_at = ?2, decided_by = ?3 WHERE id = ?1",
            params![approval_id, at, approver],
        )?;
        append(
            &tx,
            &[AuditEntry::new(&format!("user:{approver}"), "approval.approved", "approved")
                .approver(approver)
                .reason(format!("approval {approval_id}: {n} remediation operation(s) released"))],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn plan_retention(&self, target: &str, cutoff: &str) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        let due: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.identity FROM accounts a JOIN identities i ON i.id = a.identity
                 WHERE a.target = ?1 AND a.enabled = 0 AND i.status = 'terminated'
                   AND EXISTS (SELECT 1 FROM cases c WHERE c.identity = a.identity AND c.kind = 'leaver'
                               AND c.state = 'closed' AND c.closed_at < ?2)
                   AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.identity = a.identity AND o.target = a.target
                                   AND o.state IN ('pending', 'running', 'held', 'done'))
                 ORDER BY a.identity",
            )?;
            stmt.query_map(params![target, cutoff], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut audit = Vec::new();
        for identity in &due {
            tx.execute(
                "INSERT INTO events (import_id, source, kind, identity, received_at, changes, significant, note, after, state)
                 VALUES (NULL, 'retention', 'update', ?1, ?2, '[]', 0, ?3, '{}', 'applied')",
                params![identity, at, format!("retention period of `{target}` passed")],
            )?;
            let event_id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO cases (event_id, identity, kind, state, opened_at) VALUES (?1, ?2, 'update', 'open', ?3)",
                params![event_id, identity, at],
            )?;
            let case_id = tx.last_insert_rowid();
            let reason =
                serde_json::json!({ "event": event_id, "kind": "update", "rules": [], "finding": "retention" });
            tx.execute(
                "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'delete_account', NULL, ?4, ?5, 'pending', ?6, ?6)",
                params![case_id, identity, target, reason.to_string(), format!("retention-{event_id}"), at],
            )?;
            tx.execute("DELETE FROM grants WHERE identity = ?1 AND target = ?2", params![identity, target])?;
            tx.execute("DELETE FROM accounts WHERE identity = ?1 AND target = ?2", params![identity, target])?;
            audit.push(
                AuditEntry::new("retention", "plan.delete_account", "pending")
                    .identity(identity)
                    .target(target)
                    .reason(format!(
                        "event {event_id}: the leaver case closed before {cutoff}; the disabled account is deleted"
                    )),
            );
        }
        append(&tx, &audit)?;
        tx.commit()?;
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, BatchState, EventIn, OpIn, Store, StoreError};
    use tenure_core::{Attrs, EventKind, Identity, Kind, Schema, Status};

    fn batch(schema: &Schema, base_import: Option<i64>) -> Batch {
        let identity = Identity::new("E1", Kind::Employee, Status::Active, Attrs::new(schema));
        let op = |kind, ent: Option<&str>| OpIn {
            target: "dir".into(),
            kind,
            entitlement: ent.map(Into::into),
            rules: vec![],
            account: Some("ada".into()),
        };
        Batch {
            actor: "test".into(),
            source: "hr".into(),
            file: "a.csv".into(),
            sha256: String::new(),
            summary: serde_json::json!({}),
            state: BatchState::Applied,
            identities: vec![identity.clone()],
            events: vec![EventIn {
                kind: EventKind::Joiner,
                identity,
                changes: vec![],
                significant: false,
                note: None,
                existing_id: None,
                ops: vec![op(OpKind::CreateAccount, None), op(OpKind::Grant, Some("staff"))],
                holdings: None,
                audit: vec![],
                cancel: vec![],
            }],
            audit: vec![],
            base_import,
        }
    }

    fn done(op: i64, state: OpState) -> Finished {
        Finished {
            op,
            state,
            error: None,
            next_attempt_at: None,
            note: None,
            audit: AuditEntry::new("t", "apply", "x"),
        }
    }

    #[test]
    fn claims_belong_to_their_executor() {
        let schema = Schema::default();
        let store = SqliteStore::memory().unwrap();
        store.commit_batch(&schema, &batch(&schema, None)).unwrap();
        let ops = store.claim(&now(), 10, "A").unwrap();
        let kinds: Vec<OpKind> = ops.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [OpKind::CreateAccount, OpKind::Grant], "a run is claimed in order");
        assert!(store.claim(&now(), 10, "B").unwrap().is_empty(), "claimed work is not claimed twice");
        // A live executor's work is never taken over, a dead one's is.
        assert_eq!(store.recover_running(&|c| c == "A").unwrap(), 0);
        assert!(!store.finish(&done(ops[0].id, OpState::Verified), "B").unwrap(), "only the claimer may finish");
        assert_eq!(store.recover_running(&|_| false).unwrap(), 2);
        assert!(!store.finish(&done(ops[0].id, OpState::Verified), "A").unwrap(), "A lost the claim");
        let again = store.claim(&now(), 10, "B").unwrap();
        assert_eq!(again.first().map(|o| o.id), Some(ops[0].id));
        assert!(store.finish(&done(ops[0].id, OpState::Verified), "B").unwrap());
        assert!(store.verify_audit().unwrap().first_bad.is_none());
    }

    #[test]
    fn a_failed_create_fails_the_grants_behind_it() {
        let schema = Schema::default();
        let store = SqliteStore::memory().unwrap();
        store.commit_batch(&schema, &batch(&schema, None)).unwrap();
        let ops = store.claim(&now(), 10, "A").unwrap();
        // The executor stops a run at its first failure and hands the rest back.
        assert_eq!(store.finish_many(&[done(ops[0].id, OpState::Failed)], &[ops[1].id], "A").unwrap(), 1);
        let counts = store.queue_counts().unwrap();
        assert_eq!(counts.get("failed"), Some(&2));
        assert_eq!(store.cases(false).unwrap()[0].state, CaseState::Stuck);
    }

    #[test]
    fn a_stale_import_is_refused() {
        let schema = Schema::default();
        let store = SqliteStore::memory().unwrap();
        store.commit_batch(&schema, &batch(&schema, None)).unwrap();
        // Computed against "no import yet", but one was applied meanwhile.
        let err = store.commit_batch(&schema, &batch(&schema, None)).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let last = store.last_import("hr").unwrap();
        assert!(last.is_some());
    }
}

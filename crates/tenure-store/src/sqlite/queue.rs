//! The durable operation queue with lease claims, manual tickets, exceptions, reconciliation
//! findings, remediation and retention.
//!
//! A claim sets `claimed_by` (the owner) and `claimed_until` (the lease). The next claim of any
//! owner takes over a running operation whose lease has passed; a lease is renewed only by its
//! owner, and an outcome is recorded only while its owner still holds the claim.

use super::audit::append;
use super::lifecycle::{OP_COLUMNS, op_row, refresh_case, summary_cases};
use super::{R, SqliteStore, conflict, count, enum_col, not_found, parse_enum, sql_int};
use crate::records::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tenure_core::audit::AuditEntry;
use tenure_core::{
    ApprovalKind, ApprovalState, CaseState, EventKind, ExceptionKind, ExceptionState, OpKind, OpState, Status,
    TicketState,
};

/// Lists at most a few ids in an audit reason, so a large takeover stays a short record.
fn id_list(ids: &[i64]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
    let more = ids.len().saturating_sub(shown.len());
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// Whether `op` may be claimed at `now`: pending and due, or running under an expired lease
/// (a lease of `NULL` is a claim made before leases existed, and counts as expired).
fn claimable(op: &OpRecord, lease_until: Option<&str>, now: &str) -> bool {
    match op.state {
        OpState::Pending => op.next_attempt_at.as_deref().is_none_or(|t| t <= now),
        OpState::Running => lease_until.is_none_or(|t| t < now),
        _ => false,
    }
}

pub(super) fn claim(store: &SqliteStore, owner: &str, lease: Duration, limit: usize) -> R<Vec<OpRecord>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = store.now();
    let until = store.after(lease);
    // (operation, its lease before this claim, its owner before this claim)
    let mut picked: Vec<(OpRecord, Option<String>)> = Vec::new();
    {
        // Two queries, each read in id order straight off the state index and cut at `limit`:
        // one `OR` of both would make SQLite collect and sort every pending operation first.
        let mut heads: Vec<(OpRecord, Option<String>)> = Vec::new();
        for claimable in [
            "o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)",
            "o.state = 'running' AND (o.claimed_until IS NULL OR o.claimed_until < ?1)",
        ] {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {OP_COLUMNS}, claimed_until, claimed_by FROM operations o
                 WHERE {claimable}
                   AND NOT EXISTS (SELECT 1 FROM operations p WHERE p.identity = o.identity AND p.target = o.target
                                   AND p.id < o.id AND p.state IN ('pending', 'running', 'held'))
                 ORDER BY o.id LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![now, sql_int(limit)])?;
            while let Some(r) = rows.next()? {
                heads.push((op_row(r)?, r.get::<_, Option<String>>(18)?));
            }
        }
        heads.sort_by_key(|(o, _)| o.id);
        heads.truncate(limit);
        let mut behind = tx.prepare_cached(&format!(
            "SELECT {OP_COLUMNS}, claimed_until, claimed_by FROM operations
             WHERE identity = ?1 AND target = ?2 AND id > ?3 ORDER BY id LIMIT 64"
        ))?;
        for (head, head_owner) in heads {
            let mut rows = behind.query(params![head.identity, head.target, head.id])?;
            picked.push((head, head_owner));
            while let Some(r) = rows.next()? {
                let op = op_row(r)?;
                let lease_until: Option<String> = r.get(17)?;
                if !claimable(&op, lease_until.as_deref(), &now) {
                    break;
                }
                picked.push((op, r.get(18)?));
            }
        }
    }
    let mut taken_over = Vec::new();
    let mut previous_owners = BTreeSet::new();
    {
        let mut upd = tx.prepare_cached(
            "UPDATE operations SET state = 'running', attempts = attempts + 1, updated_at = ?2, claimed_by = ?3,
                    claimed_until = ?4
             WHERE id = ?1",
        )?;
        for (op, previous) in &picked {
            upd.execute(params![op.id, now, owner, until])?;
            if op.state == OpState::Running {
                taken_over.push(op.id);
                previous_owners.insert(previous.clone().unwrap_or_else(|| "an executor without a lease".into()));
            }
        }
    }
    if !taken_over.is_empty() {
        let owners: Vec<String> = previous_owners.into_iter().map(|o| format!("`{o}`")).collect();
        append(
            &tx,
            &[AuditEntry::new("executor", "executor.recovered", "running").reason(format!(
                "{} operation(s) whose lease of {} expired are claimed again by `{owner}`: {}",
                taken_over.len(),
                owners.join(", "),
                id_list(&taken_over)
            ))],
            &now,
        )?;
    }
    tx.commit()?;
    Ok(picked
        .into_iter()
        .map(|(mut o, _)| {
            o.state = OpState::Running;
            o.attempts += 1;
            o
        })
        .collect())
}

pub(super) fn renew(store: &SqliteStore, owner: &str, ops: &[i64], lease: Duration) -> R<usize> {
    if ops.is_empty() {
        return Ok(0);
    }
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let until = store.after(lease);
    let mut n = 0;
    {
        let mut upd = tx.prepare_cached(
            "UPDATE operations SET claimed_until = ?3 WHERE id = ?1 AND state = 'running' AND claimed_by = ?2",
        )?;
        for id in ops {
            n += upd.execute(params![id, owner, until])?;
        }
    }
    tx.commit()?;
    Ok(n)
}

/// Records one outcome inside `tx`; returns its case, or `None` if the operation is no longer
/// running under `owner`.
pub(super) fn finish_one(
    tx: &Transaction<'_>,
    f: &Finished,
    owner: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> R<Option<i64>> {
    let verified_at = (f.state == OpState::Verified).then_some(at);
    let n = tx.execute(
        "UPDATE operations SET state = ?2, last_error = ?3, next_attempt_at = ?4, note = COALESCE(?5, note),
                updated_at = ?6, verified_at = COALESCE(?7, verified_at), claimed_by = NULL, claimed_until = NULL
         WHERE id = ?1 AND state = 'running' AND claimed_by = ?8",
        params![f.op, f.state.as_str(), f.error, f.next_attempt_at, f.note, at, verified_at, owner],
    )?;
    if n != 1 {
        return Ok(None);
    }
    let (case_id, identity, target, kind): (i64, String, String, String) =
        tx.query_row("SELECT case_id, identity, target, kind FROM operations WHERE id = ?1", [f.op], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let kind: OpKind = parse_enum(&kind)?;
    audit.push(f.audit.clone());
    if f.state == OpState::Failed && matches!(kind, OpKind::CreateAccount | OpKind::Enable) {
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
             VALUES (?7, ?1, ?2, ?3, ?4, ?4, ?5, 'open', ?6)",
            params![
                format!("operation:{}", f.op),
                case_id,
                identity,
                target,
                f.error.clone().unwrap_or_default(),
                at,
                failure_kind(kind).as_str()
            ],
        )?;
        if kind.removes_access() {
            audit.push(
                AuditEntry::new("executor", "exception.opened", "open")
                    .identity(&identity)
                    .target(&target)
                    .reason(format!("{}: operation {} ({kind}) failed past its retries", failure_kind(kind), f.op)),
            );
        }
    }
    Ok(Some(case_id))
}

/// The exception a failed operation is recorded as: access that could not be taken away is a
/// `failed_revocation`, anything else a `failed_operation`.
pub(super) fn failure_kind(kind: OpKind) -> ExceptionKind {
    if kind.removes_access() { ExceptionKind::FailedRevocation } else { ExceptionKind::FailedOperation }
}

pub(super) fn finish_many(store: &SqliteStore, done: &[Finished], release: &[i64], owner: &str) -> R<usize> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    for id in release {
        tx.execute(
            "UPDATE operations SET state = 'pending', attempts = max(attempts - 1, 0), claimed_by = NULL,
                    claimed_until = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'running' AND claimed_by = ?2",
            params![id, owner, at],
        )?;
    }
    let mut audit = Vec::new();
    let mut cases = BTreeSet::new();
    let mut recorded = 0;
    for f in done {
        if let Some(case_id) = finish_one(&tx, f, owner, &at, &mut audit)? {
            cases.insert(case_id);
            recorded += 1;
        }
    }
    for case_id in cases {
        refresh_case(&tx, case_id, &at, &mut audit)?;
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(recorded)
}

pub(super) fn retry_failed(store: &SqliteStore, by: &str) -> R<usize> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let failed: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare_cached("SELECT id, case_id FROM operations WHERE state = 'failed' ORDER BY id")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut audit = Vec::new();
    let mut cases = BTreeSet::new();
    for (op, case_id) in &failed {
        tx.execute(
            "UPDATE operations SET state = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ?2, note = ?3
             WHERE id = ?1 AND state = 'failed'",
            params![op, at, format!("retry requested by {by}")],
        )?;
        tx.execute(
            "UPDATE exceptions SET state = 'resolved', resolved_at = ?2, closed_by = ?5, close_reason = 'retry requested'
             WHERE kind IN (?3, ?4) AND subject = ?1 AND state = 'open'",
            params![
                format!("operation:{op}"),
                at,
                ExceptionKind::FailedOperation.as_str(),
                ExceptionKind::FailedRevocation.as_str(),
                by
            ],
        )?;
        cases.insert(*case_id);
    }
    if !failed.is_empty() {
        let ids: Vec<i64> = failed.iter().map(|(op, _)| *op).collect();
        audit.push(AuditEntry::new(&format!("user:{by}"), "apply.retry_failed", "pending").approver(by).reason(
            format!(
                "{} failed operation(s) queued again: {}",
                failed.len(),
                ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for case_id in cases {
        refresh_case(&tx, case_id, &at, &mut audit)?;
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(failed.len())
}

pub(super) fn queue_counts(conn: &Connection) -> R<BTreeMap<OpState, i64>> {
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM operations GROUP BY state")?;
    let mut rows = stmt.query([])?;
    let mut out = BTreeMap::new();
    while let Some(r) = rows.next()? {
        out.insert(enum_col(r, 0)?, r.get(1)?);
    }
    Ok(out)
}

pub(super) fn next_wake_at(conn: &Connection) -> R<Option<String>> {
    Ok(conn.query_row(
        "SELECT min(t) FROM (
             SELECT min(next_attempt_at) AS t FROM operations WHERE state = 'pending'
             UNION ALL SELECT min(claimed_until) FROM operations WHERE state = 'running')",
        [],
        |r| r.get(0),
    )?)
}

pub(super) fn open_ticket(
    store: &SqliteStore,
    op: &OpRecord,
    ticket_owner: &str,
    summary: &str,
    due_at: &str,
    owner: &str,
) -> R<i64> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let n = tx.execute(
        "UPDATE operations SET state = 'done', updated_at = ?2, claimed_by = NULL, claimed_until = NULL
         WHERE id = ?1 AND state = 'running' AND claimed_by = ?3",
        params![op.id, at, owner],
    )?;
    if n != 1 {
        return Err(conflict(format!("operation {} is no longer claimed by this executor", op.id)));
    }
    let existing: Option<i64> =
        tx.query_row("SELECT id FROM tickets WHERE operation_id = ?1", [op.id], |r| r.get(0)).optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO tickets (operation_id, target, owner, identity, summary, state, created_at, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7)",
                params![op.id, op.target, ticket_owner, op.identity, summary, at, due_at, TicketState::Open.as_str()],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "UPDATE operations SET note = ?2 WHERE id = ?1",
        params![op.id, format!("ticket {id} opened for {ticket_owner}")],
    )?;
    append(
        &tx,
        &[AuditEntry::new("executor", "ticket.opened", "open")
            .identity(&op.identity)
            .target(&op.target)
            .entitlement(op.entitlement.as_deref())
            .reason(format!("ticket {id} for `{ticket_owner}` (due {due_at}): {summary}"))],
        &at,
    )?;
    tx.commit()?;
    Ok(id)
}

const TICKET_COLUMNS: &str =
    "id, operation_id, target, owner, identity, summary, state, created_at, due_at, done_at, done_by, evidence";

fn ticket_row(r: &rusqlite::Row<'_>, now: &str) -> R<TicketRecord> {
    let state: TicketState = enum_col(r, 6)?;
    let due_at: String = r.get(8)?;
    Ok(TicketRecord {
        id: r.get(0)?,
        operation_id: r.get(1)?,
        target: r.get(2)?,
        owner: r.get(3)?,
        identity: r.get(4)?,
        summary: r.get(5)?,
        overdue: state == TicketState::Open && due_at.as_str() < now,
        state,
        created_at: r.get(7)?,
        due_at,
        done_at: r.get(9)?,
        done_by: r.get(10)?,
        evidence: r.get(11)?,
    })
}

pub(super) fn tickets(store: &SqliteStore, open_only: bool) -> R<Vec<TicketRecord>> {
    let conn = store.lock();
    let now = store.now();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE (?1 = 0 OR state = 'open') ORDER BY id"
    ))?;
    let mut rows = stmt.query([open_only])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(ticket_row(r, &now)?);
    }
    Ok(out)
}

pub(super) fn complete_ticket(store: &SqliteStore, id: i64, by: &str, evidence: &str) -> R<TicketRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let t = tx
        .query_row(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1"), [id], |r| Ok(ticket_row(r, &at)))
        .optional()?
        .ok_or_else(|| not_found(format!("ticket {id}")))??;
    if t.state != TicketState::Open {
        return Err(conflict(format!("ticket {id} is already {}", t.state)));
    }
    tx.execute(
        "UPDATE tickets SET state = ?5, done_at = ?2, done_by = ?3, evidence = ?4 WHERE id = ?1",
        params![id, at, by, evidence, TicketState::Done.as_str()],
    )?;
    tx.execute(
        "UPDATE operations SET state = 'verified', verified_at = ?2, updated_at = ?2, note = ?3 WHERE id = ?1",
        params![t.operation_id, at, format!("ticket {id} done by {by}")],
    )?;
    tx.execute(
        "UPDATE exceptions SET state = 'resolved', resolved_at = ?2 WHERE subject = ?1 AND state = 'open'",
        params![format!("ticket:{id}"), at],
    )?;
    let case_id: i64 = tx.query_row("SELECT case_id FROM operations WHERE id = ?1", [t.operation_id], |r| r.get(0))?;
    let mut audit = vec![
        AuditEntry::new(&format!("user:{by}"), "ticket.done", "verified")
            .identity(&t.identity)
            .target(&t.target)
            .approver(by)
            .reason(format!("ticket {id} ({}): evidence: {evidence}", t.summary)),
    ];
    refresh_case(&tx, case_id, &at, &mut audit)?;
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(TicketRecord {
        state: TicketState::Done,
        done_at: Some(at),
        done_by: Some(by.into()),
        evidence: Some(evidence.into()),
        overdue: false,
        ..t
    })
}

pub(super) const EXCEPTION_COLUMNS: &str = "id, kind, subject, case_id, identity, target, owner, reason, state, created_at, \
     resolved_at, due_at, closed_by, close_reason";

pub(super) fn exception_row(r: &rusqlite::Row<'_>) -> R<ExceptionRecord> {
    Ok(ExceptionRecord {
        id: r.get(0)?,
        kind: enum_col(r, 1)?,
        subject: r.get(2)?,
        case_id: r.get(3)?,
        identity: r.get(4)?,
        target: r.get(5)?,
        owner: r.get(6)?,
        reason: r.get(7)?,
        state: enum_col(r, 8)?,
        created_at: r.get(9)?,
        resolved_at: r.get(10)?,
        due_at: r.get(11)?,
        closed_by: r.get(12)?,
        close_reason: r.get(13)?,
    })
}

pub(super) fn flag_overdue(store: &SqliteStore, actor: &str) -> R<Vec<ExceptionRecord>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let due: Vec<(i64, i64, String, String, String, String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT t.id, o.case_id, t.identity, t.target, t.owner, t.summary, t.due_at FROM tickets t
             JOIN operations o ON o.id = t.operation_id
             WHERE t.state = 'open' AND t.due_at < ?1
               AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.kind = ?2 AND e.subject = 'ticket:' || t.id)
             ORDER BY t.id",
        )?;
        stmt.query_map(params![at, ExceptionKind::OverdueTicket.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut audit = Vec::new();
    let mut ids = Vec::new();
    for (ticket, case_id, identity, target, owner, summary, due_at) in due {
        let reason = format!("ticket {ticket} overdue since {due_at}: {summary}");
        tx.execute(
            "INSERT INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at, due_at)
             VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?9, ?7, ?10)",
            params![
                format!("ticket:{ticket}"),
                case_id,
                identity,
                target,
                owner,
                reason,
                at,
                ExceptionKind::OverdueTicket.as_str(),
                ExceptionState::Open.as_str(),
                due_at
            ],
        )?;
        ids.push(tx.last_insert_rowid());
        audit.push(
            AuditEntry::new(actor, "exception.opened", "overdue").identity(&identity).target(&target).reason(reason),
        );
        refresh_case(&tx, case_id, &at, &mut audit)?;
    }
    append(&tx, &audit, &at)?;
    let mut out = Vec::with_capacity(ids.len());
    {
        let mut stmt = tx.prepare_cached(&format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE id = ?1"))?;
        for id in ids {
            out.push(stmt.query_row([id], |r| Ok(exception_row(r)))??);
        }
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn exceptions(conn: &Connection, open_only: bool) -> R<Vec<ExceptionRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE (?1 = 0 OR state = 'open') ORDER BY id"
    ))?;
    let mut rows = stmt.query([open_only])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(exception_row(r)?);
    }
    Ok(out)
}

pub(super) fn record_recon(store: &SqliteStore, run: &ReconRun, findings: &[Finding], actor: &str) -> R<i64> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    tx.execute(
        "INSERT INTO recon_runs (target, at, accounts, grants, findings, millis) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run.target,
            at,
            sql_int(run.accounts),
            sql_int(run.grants),
            sql_int(findings.len()),
            i64::try_from(run.millis).unwrap_or(i64::MAX)
        ],
    )?;
    let run_id = tx.last_insert_rowid();
    let mut audit = vec![
        AuditEntry::new(actor, "reconcile", if findings.is_empty() { "clean" } else { "findings" })
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
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(run_id)
}

pub(super) fn findings(conn: &Connection, run_id: i64) -> R<Vec<Finding>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, target, account, identity, entitlement, detail FROM findings WHERE run_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([run_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Finding {
            kind: enum_col(r, 0)?,
            target: r.get(1)?,
            account: r.get(2)?,
            identity: r.get(3)?,
            entitlement: r.get(4)?,
            detail: r.get(5)?,
        });
    }
    Ok(out)
}

/// Inserts an event and an open case outside any import (remediation, retention); returns
/// `(event id, case id)`.
pub(super) fn insert_case(tx: &Transaction<'_>, source: &str, identity: &str, note: &str, at: &str) -> R<(i64, i64)> {
    tx.execute(
        "INSERT INTO events (import_id, source, kind, identity, received_at, changes, significant, note, after, state)
         VALUES (NULL, ?1, ?2, ?3, ?4, '[]', 0, ?5, '{}', 'applied')",
        params![source, EventKind::Update.as_str(), identity, at, note],
    )?;
    let event_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO cases (event_id, identity, kind, state, opened_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![event_id, identity, EventKind::Update.as_str(), CaseState::Open.as_str(), at],
    )?;
    Ok((event_id, tx.last_insert_rowid()))
}

pub(super) fn commit_remediation(store: &SqliteStore, r: &Remediation) -> R<(usize, Option<i64>)> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let state = if r.held.is_some() { OpState::Held } else { OpState::Pending };
    let mut by_identity: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in r.ops.iter().enumerate() {
        by_identity.entry(op.identity.as_str()).or_default().push(i);
    }
    let runs = r.run_ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let mut audit = Vec::new();
    let mut case_ids = Vec::new();
    for (identity, idx) in &by_identity {
        let note = format!("remediation of reconciliation run(s) {runs}");
        let (event_id, case_id) = insert_case(&tx, "reconcile", identity, &note, &at)?;
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
                params![
                    case_id,
                    identity,
                    target,
                    kind.as_str(),
                    ent,
                    reason.to_string(),
                    key,
                    state.as_str(),
                    at,
                    account
                ],
            )?;
            audit.push(
                AuditEntry::new(&r.actor, &format!("plan.{kind}"), state.as_str())
                    .identity(identity)
                    .target(target)
                    .entitlement(ent.as_deref())
                    .reason(format!("event {event_id} (remediation): {detail}")),
            );
        }
    }
    let mut approval = None;
    if let Some(reason) = &r.held {
        let summary = serde_json::json!({
            "source": "reconcile", "reason": reason, "runs": r.run_ids, "operations": r.ops.len(), "cases": case_ids,
            "submitted_by": [r.actor],
        });
        tx.execute(
            "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES (?4, ?1, ?2, ?5, ?3)",
            params![
                r.run_ids.first().copied().unwrap_or_default(),
                summary.to_string(),
                at,
                ApprovalKind::Remediation.as_str(),
                ApprovalState::Pending.as_str()
            ],
        )?;
        let id = tx.last_insert_rowid();
        approval = Some(id);
        audit.push(AuditEntry::new(&r.actor, "remediation.held", "held").reason(format!("approval {id}: {reason}")));
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok((r.ops.len(), approval))
}

pub(super) fn release_remediation(store: &SqliteStore, approval_id: i64, approver: &str, actor: &str) -> R<usize> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let summary: String = tx
        .query_row(
            "SELECT summary FROM approvals WHERE id = ?1 AND kind = ?2 AND state = 'pending'",
            params![approval_id, ApprovalKind::Remediation.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| conflict(format!("approval {approval_id} is not a pending remediation")))?;
    let mut n = 0;
    for c in summary_cases(&summary) {
        // A certification review's held revocation leaves the holdings now, as it would have
        // when planned had the guard not held it.
        tx.execute(
            "DELETE FROM grants WHERE EXISTS (
                 SELECT 1 FROM operations o JOIN campaign_items i ON i.operation_id = o.id
                 WHERE o.case_id = ?1 AND o.state = 'held' AND o.kind = ?2 AND o.identity = grants.identity
                   AND o.target = grants.target AND o.entitlement = grants.entitlement)",
            params![c, OpKind::Revoke.as_str()],
        )?;
        n += tx.execute(
            "UPDATE operations SET state = 'pending', updated_at = ?2 WHERE case_id = ?1 AND state = 'held'",
            params![c, at],
        )?;
    }
    tx.execute(
        "UPDATE approvals SET state = ?4, decided_at = ?2, decided_by = ?3 WHERE id = ?1",
        params![approval_id, at, approver, ApprovalState::Approved.as_str()],
    )?;
    append(
        &tx,
        &[AuditEntry::new(actor, "approval.approved", "approved")
            .approver(approver)
            .reason(format!("approval {approval_id}: {n} remediation operation(s) released"))],
        &at,
    )?;
    tx.commit()?;
    Ok(n)
}

/// Retention candidates in `target` (of one identity, if given): accounts of terminated
/// identities with the facts `tenure_core::rules::retention_due` decides on. Which operation
/// states are unfinished comes from `OpState::is_final`, not from this SQL.
fn candidates(conn: &Connection, target: &str, identity: Option<&str>) -> R<Vec<RetentionCandidate>> {
    let unfinished: Vec<String> =
        OpState::ALL.iter().filter(|s| !s.is_final()).map(|s| format!("'{}'", s.as_str())).collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT a.identity, i.status, a.enabled,
                (SELECT CASE WHEN c.state = ?3 THEN c.closed_at END FROM cases c
                 WHERE c.identity = a.identity AND c.kind = ?4 ORDER BY c.id DESC LIMIT 1),
                (SELECT count(*) FROM operations o WHERE o.identity = a.identity AND o.target = a.target
                 AND o.state IN ({}))
         FROM accounts a JOIN identities i ON i.id = a.identity
         WHERE a.target = ?1 AND i.status = ?2 AND (?5 IS NULL OR a.identity = ?5)
         ORDER BY a.identity",
        unfinished.join(", ")
    ))?;
    let mut rows = stmt.query(params![
        target,
        Status::Terminated.as_str(),
        CaseState::Closed.as_str(),
        EventKind::Leaver.as_str(),
        identity
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(RetentionCandidate {
            identity: r.get(0)?,
            status: enum_col(r, 1)?,
            enabled: r.get(2)?,
            leaver_closed_at: r.get(3)?,
            unfinished: count(r.get(4)?),
        });
    }
    Ok(out)
}

pub(super) fn retention_candidates(conn: &Connection, target: &str) -> R<Vec<RetentionCandidate>> {
    candidates(conn, target, None)
}

pub(super) fn plan_retention(
    store: &SqliteStore,
    target: &str,
    due: &[RetentionCandidate],
    cutoff: &str,
    actor: &str,
) -> R<usize> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut audit = Vec::new();
    let mut planned = 0;
    for c in due {
        // The decision was made on these facts; if they changed since (a rehire, new work), the
        // next sweep decides again.
        if candidates(&tx, target, Some(&c.identity))?.first() != Some(c) {
            continue;
        }
        let identity = c.identity.as_str();
        let (event_id, case_id) =
            insert_case(&tx, "retention", identity, &format!("retention period of `{target}` passed"), &at)?;
        let reason = serde_json::json!({ "event": event_id, "kind": "update", "rules": [], "finding": "retention" });
        tx.execute(
            "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, 'pending', ?7, ?7)",
            params![
                case_id,
                identity,
                target,
                OpKind::DeleteAccount.as_str(),
                reason.to_string(),
                format!("retention-{event_id}"),
                at
            ],
        )?;
        tx.execute("DELETE FROM grants WHERE identity = ?1 AND target = ?2", params![identity, target])?;
        tx.execute("DELETE FROM accounts WHERE identity = ?1 AND target = ?2", params![identity, target])?;
        audit.push(AuditEntry::new(actor, "plan.delete_account", "pending").identity(identity).target(target).reason(
            format!("event {event_id}: the leaver case closed before {cutoff}; the disabled account is deleted"),
        ));
        planned += 1;
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(planned)
}

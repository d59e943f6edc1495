//! The exceptions register's writes in SQLite (table `exceptions`, migrations 0002 and 0015).

use super::audit::append;
use super::lifecycle::refresh_case;
use super::queue::{EXCEPTION_COLUMNS, exception_row};
use super::{R, SqliteStore, conflict, enum_col, not_found};
use crate::exceptions::{CloseException, Closing, NewException, OpenByKind};
use crate::records::ExceptionRecord;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tenure_core::audit::AuditEntry;
use tenure_core::{ExceptionKind, ExceptionState, OpState};

fn by_id(conn: &Connection, id: i64) -> R<Option<ExceptionRecord>> {
    conn.query_row(&format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE id = ?1"), [id], |r| Ok(exception_row(r)))
        .optional()?
        .transpose()
}

pub(super) fn get(conn: &Connection, id: i64) -> R<Option<ExceptionRecord>> {
    by_id(conn, id)
}

pub(super) fn open(store: &SqliteStore, x: &NewException<'_>, actor: &str) -> R<ExceptionRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let n = tx.execute(
        "INSERT OR IGNORE INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            x.kind.as_str(),
            x.subject,
            x.case_id,
            x.identity,
            x.target,
            x.owner,
            x.reason,
            ExceptionState::Open.as_str(),
            at,
            x.due_at
        ],
    )?;
    let id: i64 = tx.query_row(
        "SELECT id FROM exceptions WHERE kind = ?1 AND subject = ?2",
        params![x.kind.as_str(), x.subject],
        |r| r.get(0),
    )?;
    if n > 0 {
        let mut entry = AuditEntry::new(actor, "exception.opened", "open")
            .reason(format!("exception {id} ({}, owner `{}`): {}", x.kind, x.owner, x.reason));
        entry.identity = x.identity.map(Into::into);
        entry.target = x.target.map(Into::into);
        let mut audit = vec![entry];
        if let Some(case_id) = x.case_id {
            refresh_case(&tx, case_id, &at, &mut audit)?;
        }
        append(&tx, &audit, &at)?;
    }
    let out = by_id(&tx, id)?.ok_or_else(|| not_found(format!("exception {id}")))?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn close(store: &SqliteStore, c: &CloseException<'_>) -> R<ExceptionRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let x = by_id(&tx, c.id)?.ok_or_else(|| not_found(format!("exception {}", c.id)))?;
    if x.state != ExceptionState::Open {
        return Err(conflict(format!(
            "exception {} is already {} (by {} at {})",
            c.id,
            x.state,
            x.closed_by.as_deref().unwrap_or("the system"),
            x.resolved_at.as_deref().unwrap_or("an unknown time")
        )));
    }
    let state = c.closing.state();
    tx.execute(
        "UPDATE exceptions SET state = ?2, resolved_at = ?3, closed_by = ?4, close_reason = ?5,
                due_at = COALESCE(?6, due_at)
         WHERE id = ?1 AND state = 'open'",
        params![c.id, state.as_str(), at, c.by, c.reason, c.due_at],
    )?;
    let mut audit = Vec::new();
    let mut why = format!("exception {} ({}, {}) {state} by {}: {}", c.id, x.kind, x.subject, c.by, c.reason);
    if let Some(due) = c.due_at {
        why.push_str(&format!("; due {due}"));
    }
    let excepted = if c.closing == Closing::Accept { except_failed_operation(&tx, &x, c, &at)? } else { None };
    if let Some(op) = excepted {
        why.push_str(&format!("; operation {op} is excepted"));
    }
    let mut entry = AuditEntry::new(c.actor, &format!("exception.{}", action(c.closing)), state.as_str())
        .approver(c.by)
        .reason(why);
    entry.identity.clone_from(&x.identity);
    entry.target.clone_from(&x.target);
    audit.push(entry);
    if let Some(case_id) = x.case_id {
        refresh_case(&tx, case_id, &at, &mut audit)?;
    }
    append(&tx, &audit, &at)?;
    let out = by_id(&tx, c.id)?.ok_or_else(|| not_found(format!("exception {}", c.id)))?;
    tx.commit()?;
    Ok(out)
}

fn action(c: Closing) -> &'static str {
    match c {
        Closing::Resolve => "resolved",
        Closing::Accept => "accepted",
    }
}

/// Accepting a failed operation's exception settles the operation as `excepted`: the risk is
/// taken knowingly, so its case may close (a leaver's then records a `partial_removal`).
fn except_failed_operation(
    tx: &Transaction<'_>,
    x: &ExceptionRecord,
    c: &CloseException<'_>,
    at: &str,
) -> R<Option<i64>> {
    if !matches!(x.kind, ExceptionKind::FailedOperation | ExceptionKind::FailedRevocation) {
        return Ok(None);
    }
    let Some(op) = x.subject.strip_prefix("operation:").and_then(|s| s.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let n = tx.execute(
        "UPDATE operations SET state = ?2, note = ?3, updated_at = ?4, next_attempt_at = NULL
         WHERE id = ?1 AND state = ?5",
        params![
            op,
            OpState::Excepted.as_str(),
            format!("excepted: exception {} accepted by {}: {}", x.id, c.by, c.reason),
            at,
            OpState::Failed.as_str()
        ],
    )?;
    Ok((n > 0).then_some(op))
}

pub(super) fn counts(conn: &Connection) -> R<Vec<OpenByKind>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, state, count(*), min(created_at) FROM exceptions WHERE state IN (?1, ?2)
         GROUP BY kind, state ORDER BY kind, state",
    )?;
    let mut rows = stmt.query(params![ExceptionState::Open.as_str(), ExceptionState::Accepted.as_str()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(OpenByKind { kind: enum_col(r, 0)?, state: enum_col(r, 1)?, count: r.get(2)?, oldest: r.get(3)? });
    }
    Ok(out)
}

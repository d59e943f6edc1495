//! The audit chain and its signed checkpoints. Records are only ever appended, inside the
//! transaction of the change they describe; checkpoints are never updated or deleted.

use super::{R, SqliteStore, conflict, has_table};
use crate::records::{AuditFilter, VerifyReport};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tenure_core::audit::{self, AuditEntry, AuditRecord, GENESIS, Verifier};
use tenure_core::evidence::Checkpoint;

/// Appends entries to the chain inside `tx`, stamped `at`.
pub(crate) fn append(tx: &Transaction<'_>, entries: &[AuditEntry], at: &str) -> R<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut chain = Appender::new(tx, at)?;
    for e in entries {
        chain.push(tx, e)?;
    }
    Ok(())
}

/// The chain's end inside one transaction, so a large batch appends its records as it writes
/// them instead of collecting them first.
pub(crate) struct Appender {
    seq: i64,
    prev: String,
    at: String,
}

impl Appender {
    pub(crate) fn new(tx: &Transaction<'_>, at: &str) -> R<Self> {
        let (seq, prev): (i64, String) = tx
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, GENESIS.to_string()));
        Ok(Self { seq, prev, at: at.to_string() })
    }

    pub(crate) fn push(&mut self, tx: &Transaction<'_>, e: &AuditEntry) -> R<()> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        // INVARIANT: the chain stores sanitized entries only (hidden characters escaped, the
        // reason capped), so no input can put a terminal escape or megabytes into the evidence.
        let e = e.sanitized();
        let e = e.as_ref();
        self.seq += 1;
        let hash = audit::hash(self.seq, &self.at, e, &self.prev);
        stmt.execute(params![
            self.seq,
            self.at,
            e.actor,
            e.action,
            e.identity,
            e.target,
            e.entitlement,
            e.reason,
            e.approver,
            e.outcome,
            self.prev,
            hash
        ])?;
        self.prev = hash;
        Ok(())
    }
}

pub(super) fn append_now(store: &SqliteStore, entries: &[AuditEntry]) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    append(&tx, entries, &at)?;
    tx.commit()?;
    Ok(())
}

pub(super) const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, identity, target, entitlement, reason, approver, outcome, prev_hash, hash";

pub(super) fn scan(conn: &Connection, filter: &AuditFilter, visit: &mut dyn FnMut(AuditRecord) -> bool) -> R<()> {
    // The identity filter is spelt out only when given, so it uses the identity index.
    let by_identity = if filter.identity.is_some() { "identity = ?1" } else { "?1 IS NULL" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit WHERE {by_identity} AND (?2 IS NULL OR at >= ?2) ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![filter.identity, filter.since])?;
    while let Some(r) = rows.next()? {
        if !visit(audit_row(r)?) {
            break;
        }
    }
    Ok(())
}

pub(super) fn verify(conn: &Connection) -> R<VerifyReport> {
    let mut v = Verifier::default();
    let mut first_bad = None;
    let mut head = None;
    scan(conn, &AuditFilter::default(), &mut |r| match v.push(&r) {
        Ok(()) => {
            head = Some((r.seq, r.hash));
            true
        }
        Err(b) => {
            first_bad = Some(b);
            false
        }
    })?;
    Ok(VerifyReport { records: v.count, first_bad, head })
}

pub(super) fn checkpoints(conn: &Connection) -> R<Vec<Checkpoint>> {
    // A store older than migration 4 (opened read-only, so not migrated) has none.
    if !has_table(conn, "audit_checkpoints")? {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare_cached("SELECT seq, head, at, key_id, signature FROM audit_checkpoints ORDER BY seq, id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Checkpoint { seq: r.get(0)?, head: r.get(1)?, at: r.get(2)?, key_id: r.get(3)?, signature: r.get(4)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn append_checkpoint(
    store: &SqliteStore,
    entry: &AuditEntry,
    sign: &dyn Fn(&AuditRecord) -> Checkpoint,
) -> R<Checkpoint> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    append(&tx, std::slice::from_ref(entry), &at)?;
    let head = tx.query_row(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"), [], |r| {
        Ok(audit_row(r))
    })??;
    let c = sign(&head);
    if c.seq != head.seq || c.head != head.hash {
        return Err(conflict(format!("checkpoint of seq {} does not sign the head {}", c.seq, head.seq)));
    }
    tx.execute(
        "INSERT INTO audit_checkpoints (seq, head, at, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![c.seq, c.head, c.at, c.key_id, c.signature],
    )?;
    tx.commit()?;
    Ok(c)
}

pub(super) fn audit_row(r: &rusqlite::Row<'_>) -> R<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        at: r.get(1)?,
        entry: AuditEntry {
            actor: r.get(2)?,
            action: r.get(3)?,
            identity: r.get(4)?,
            target: r.get(5)?,
            entitlement: r.get(6)?,
            reason: r.get(7)?,
            approver: r.get(8)?,
            outcome: r.get(9)?,
        },
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

//! The token table (`api_tokens`, migration 0007) in SQLite.

use super::{R, SqliteStore, audit, conflict, enum_col, not_found};
use crate::tokens::{NewToken, TokenRecord};
use rusqlite::{Connection, OptionalExtension, params};
use tenure_core::audit::AuditEntry;

const COLUMNS: &str = "id, name, scope, source, created_at, created_by, last_used_at, revoked_at, revoked_by";

fn row(r: &rusqlite::Row<'_>) -> R<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        scope: enum_col(r, 2)?,
        source: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
        revoked_by: r.get(8)?,
    })
}

fn describe(t: &TokenRecord) -> String {
    match &t.source {
        Some(s) => format!("token `{}` with scope {} for source `{s}`", t.name, t.scope),
        None => format!("token `{}` with scope {}", t.name, t.scope),
    }
}

pub(super) fn create(store: &SqliteStore, t: &NewToken<'_>) -> R<TokenRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let live: Option<i64> = tx
        .query_row("SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL", [t.name], |r| r.get(0))
        .optional()?;
    if live.is_some() {
        return Err(conflict(format!(
            "a token named `{}` exists; revoke it first (`tenure token revoke {}`)",
            t.name, t.name
        )));
    }
    let taken: Option<i64> =
        tx.query_row("SELECT id FROM api_tokens WHERE hash = ?1", [t.hash], |r| r.get(0)).optional()?;
    if taken.is_some() {
        return Err(conflict("that token is already stored"));
    }
    tx.execute(
        "INSERT INTO api_tokens (name, hash, scope, source, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![t.name, t.hash, t.scope.as_str(), t.source, at, t.created_by],
    )?;
    let id = tx.last_insert_rowid();
    let rec = tx.query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"), [id], |r| Ok(row(r)))??;
    let entry = AuditEntry::new(t.created_by, "token.create", "created").reason(describe(&rec));
    audit::append(&tx, &[entry], &at)?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn list(conn: &Connection, include_revoked: bool) -> R<Vec<TokenRecord>> {
    let filter = if include_revoked { "" } else { "WHERE revoked_at IS NULL" };
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM api_tokens {filter} ORDER BY name, id"))?;
    let rows = stmt.query_map([], |r| Ok(row(r)))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

pub(super) fn by_hash(conn: &Connection, hash: &str) -> R<Option<TokenRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL"))?;
    stmt.query_row([hash], |r| Ok(row(r))).optional()?.transpose()
}

pub(super) fn touch(store: &SqliteStore, id: i64) -> R<()> {
    let at = store.now();
    store.lock().execute("UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2", params![at, id])?;
    Ok(())
}

pub(super) fn revoke(store: &SqliteStore, name: &str, by: &str) -> R<TokenRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let id: Option<i64> = tx
        .query_row("SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL", [name], |r| r.get(0))
        .optional()?;
    let Some(id) = id else {
        return Err(not_found(format!("token `{name}`")));
    };
    tx.execute("UPDATE api_tokens SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3", params![at, by, id])?;
    let rec = tx.query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"), [id], |r| Ok(row(r)))??;
    let entry = AuditEntry::new(by, "token.revoke", "revoked").reason(describe(&rec));
    audit::append(&tx, &[entry], &at)?;
    tx.commit()?;
    Ok(rec)
}

//! SCIM resources (migration 0011): reads, and the write that commits a resource row together
//! with the lifecycle batch it makes.

use super::audit::append;
use super::lifecycle::write_batch;
use super::{R, SqliteStore, conflict, enum_col};
use crate::records::Batch;
use crate::scim::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tenure_core::Schema;

const COLUMNS: &str = "source, kind, id, version, created_at, modified_at, body, user_name, external_id, identity_key";

fn row(r: &rusqlite::Row<'_>) -> R<ScimResource> {
    Ok(ScimResource {
        source: r.get(0)?,
        kind: enum_col(r, 1)?,
        id: r.get(2)?,
        version: r.get(3)?,
        created_at: r.get(4)?,
        modified_at: r.get(5)?,
        body: r.get(6)?,
        user_name: r.get(7)?,
        external_id: r.get(8)?,
        identity_key: r.get(9)?,
    })
}

pub(super) fn get(conn: &Connection, source: &str, kind: ScimKind, id: &str) -> R<Option<ScimResource>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 AND id = ?3"))?;
    let mut rows = stmt.query(params![source, kind.as_str(), id])?;
    rows.next()?.map(row).transpose()
}

pub(super) fn list(
    conn: &Connection,
    source: &str,
    kind: ScimKind,
    lookup: Option<ScimLookup<'_>>,
) -> R<Vec<ScimResource>> {
    // One statement per lookup, each with a plain equality its index answers.
    let (sql, value) = match lookup {
        None => (format!("SELECT {COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 ORDER BY id"), None),
        Some(ScimLookup::UserName(v)) => (
            format!(
                "SELECT {COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 AND user_name = ?3 ORDER BY id"
            ),
            Some(v),
        ),
        Some(ScimLookup::ExternalId(v)) => (
            format!(
                "SELECT {COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 AND external_id = ?3 ORDER BY id"
            ),
            Some(v),
        ),
        Some(ScimLookup::IdentityKey(v)) => (
            format!(
                "SELECT {COLUMNS} FROM scim_resources WHERE source = ?1 AND kind = ?2 AND identity_key = ?3 ORDER BY id"
            ),
            Some(v),
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match value {
        None => stmt.query(params![source, kind.as_str()])?,
        Some(v) => stmt.query(params![source, kind.as_str(), v])?,
    };
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(row(r)?);
    }
    Ok(out)
}

/// Which unique value of `body` another resource of the source (other than `id`) holds.
fn taken(tx: &Transaction<'_>, source: &str, kind: ScimKind, id: &str, body: &ScimBody) -> R<Option<ScimTaken>> {
    if let Some(name) = &body.user_name {
        let other: Option<String> = tx
            .query_row(
                "SELECT id FROM scim_resources WHERE source = ?1 AND kind = ?2 AND user_name = ?3 AND id <> ?4",
                params![source, kind.as_str(), name, id],
                |r| r.get(0),
            )
            .optional()?;
        if other.is_some() {
            return Ok(Some(ScimTaken::UserName));
        }
    }
    if let Some(key) = &body.identity_key {
        // Per source, across types: two resources never map to one identity.
        let other: Option<String> = tx
            .query_row(
                "SELECT id FROM scim_resources WHERE source = ?1 AND identity_key = ?2 AND NOT (kind = ?3 AND id = ?4)",
                params![source, key, kind.as_str(), id],
                |r| r.get(0),
            )
            .optional()?;
        if other.is_some() {
            return Ok(Some(ScimTaken::IdentityKey));
        }
    }
    Ok(None)
}

pub(super) fn write(store: &SqliteStore, schema: &Schema, w: &ScimWrite, batch: Option<&Batch>) -> R<ScimOutcome> {
    if let Some(b) = batch.filter(|b| b.source != w.source) {
        return Err(conflict(format!("a batch of `{}` cannot commit with a SCIM write of `{}`", b.source, w.source)));
    }
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let current: Option<i64> = tx
        .query_row(
            "SELECT version FROM scim_resources WHERE source = ?1 AND kind = ?2 AND id = ?3",
            params![w.source, w.kind.as_str(), w.id],
            |r| r.get(0),
        )
        .optional()?;
    // Each precondition is checked before anything is written: a refused write changes nothing.
    match (&w.change, current) {
        (ScimChange::Create(_), Some(_)) => return Ok(ScimOutcome::IdTaken),
        (ScimChange::Replace { .. } | ScimChange::Delete { .. }, None) => return Ok(ScimOutcome::NotFound),
        (ScimChange::Replace { expected, .. } | ScimChange::Delete { expected }, Some(v)) if *expected != v => {
            return Ok(ScimOutcome::VersionMismatch);
        }
        _ => {}
    }
    if let ScimChange::Create(body) | ScimChange::Replace { body, .. } = &w.change
        && let Some(t) = taken(&tx, &w.source, w.kind, &w.id, body)?
    {
        return Ok(ScimOutcome::Taken(t));
    }
    match &w.change {
        ScimChange::Create(b) => {
            tx.execute(
                "INSERT INTO scim_resources (source, kind, id, version, created_at, modified_at, body, user_name,
                                             external_id, identity_key)
                 VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6, ?7, ?8)",
                params![w.source, w.kind.as_str(), w.id, at, b.body, b.user_name, b.external_id, b.identity_key],
            )?;
        }
        ScimChange::Replace { body: b, .. } => {
            tx.execute(
                "UPDATE scim_resources SET version = version + 1, modified_at = ?4, body = ?5, user_name = ?6,
                        external_id = ?7, identity_key = ?8
                 WHERE source = ?1 AND kind = ?2 AND id = ?3",
                params![w.source, w.kind.as_str(), w.id, at, b.body, b.user_name, b.external_id, b.identity_key],
            )?;
        }
        ScimChange::Delete { .. } => {
            tx.execute(
                "DELETE FROM scim_resources WHERE source = ?1 AND kind = ?2 AND id = ?3",
                params![w.source, w.kind.as_str(), w.id],
            )?;
        }
    }
    // The write's own audit records come first: the batch's describe what it caused.
    append(&tx, &w.audit, &at)?;
    let ids = match batch {
        Some(b) => {
            let mut events = b.events.iter().map(std::borrow::Cow::Borrowed);
            Some(write_batch(&tx, &at, schema, b, &mut events)?)
        }
        None => None,
    };
    let resource = get(&tx, &w.source, w.kind, &w.id)?.map(Box::new);
    tx.commit()?;
    Ok(ScimOutcome::Written { resource, batch: ids })
}

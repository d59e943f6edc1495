//! The API's paged reads and the readiness probe in SQLite.
//!
//! A page walks the primary key from the cursor, so a page costs what it returns (plus what the
//! filters skip): the filters are bound parameters in a statement built from fixed fragments.

use super::R;
use super::lifecycle::identity_from;
use crate::browse::{IdentityQuery, TargetCount};
use crate::{AuditFilter, Finding};
use rusqlite::Connection;
use rusqlite::types::Value;
use tenure_core::audit::AuditRecord;
use tenure_core::{Identity, Schema};

pub(super) fn applied_schema_version(conn: &Connection) -> R<i64> {
    Ok(conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

pub(super) fn identity_page(conn: &Connection, schema: &Schema, q: &IdentityQuery) -> R<Vec<Identity>> {
    let mut sql = String::from("SELECT id, kind, status, attrs FROM identities WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut bind = |sql: &mut String, fragment: &str, v: Value| {
        args.push(v);
        sql.push_str(&fragment.replace('?', &format!("?{}", args.len())));
    };
    if let Some(after) = &q.after {
        bind(&mut sql, " AND id > ?", Value::Text(after.clone()));
    }
    if let Some(s) = q.status {
        bind(&mut sql, " AND status = ?", Value::Text(s.as_str().into()));
    }
    if let Some(k) = q.kind {
        bind(&mut sql, " AND kind = ?", Value::Text(k.as_str().into()));
    }
    if let Some(d) = &q.department {
        bind(&mut sql, " AND json_extract(attrs, '$.department') = ?", Value::Text(d.clone()));
    }
    if let Some(t) = &q.text {
        // `instr` on lowercased text: no LIKE pattern, so `%` and `_` in the search are literal.
        bind(
            &mut sql,
            " AND (instr(lower(id), ?) > 0 OR EXISTS (SELECT 1 FROM json_each(identities.attrs) j \
              WHERE j.type = 'text' AND instr(lower(j.value), ?) > 0))",
            Value::Text(t.to_lowercase()),
        );
    }
    bind(&mut sql, " ORDER BY id LIMIT ?", Value::Integer(super::sql_int(q.limit)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, kind, status, attrs): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        out.push(identity_from(schema, &id, &kind, &status, &attrs)?);
    }
    Ok(out)
}

/// The latest run's findings of every target; with `identity`, only those about it.
pub(super) fn latest_findings(conn: &Connection, identity: Option<&str>) -> R<Vec<Finding>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, target, account, identity, entitlement, detail FROM findings
         WHERE run_id IN (SELECT max(id) FROM recon_runs GROUP BY target) AND (?1 IS NULL OR identity = ?1)
         ORDER BY target, id",
    )?;
    let mut rows = stmt.query([identity])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Finding {
            kind: super::enum_col(r, 0)?,
            target: r.get(1)?,
            account: r.get(2)?,
            identity: r.get(3)?,
            entitlement: r.get(4)?,
            detail: r.get(5)?,
        });
    }
    Ok(out)
}

pub(super) fn operation_counts(conn: &Connection, leavers_only: bool) -> R<Vec<TargetCount>> {
    let sql = if leavers_only {
        "SELECT o.target, o.state, count(*) FROM operations o JOIN cases c ON c.id = o.case_id
         WHERE c.kind = 'leaver' GROUP BY o.target, o.state ORDER BY o.target, o.state"
    } else {
        "SELECT target, state, count(*) FROM operations GROUP BY target, state ORDER BY target, state"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(TargetCount { target: r.get(0)?, state: super::enum_col(r, 1)?, count: r.get(2)? });
    }
    Ok(out)
}

pub(super) fn revoke_times(conn: &Connection) -> R<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT revoke_ms FROM cases WHERE revoke_ms IS NOT NULL ORDER BY revoke_ms")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

pub(super) fn audit_page(conn: &Connection, filter: &AuditFilter, after: i64, limit: usize) -> R<Vec<AuditRecord>> {
    // The identity filter is spelt out only when given, so it uses the identity index.
    let by_identity = if filter.identity.is_some() { "identity = ?1" } else { "?1 IS NULL" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM audit WHERE {by_identity} AND (?2 IS NULL OR at >= ?2) AND seq > ?3 ORDER BY seq LIMIT ?4",
        super::audit::AUDIT_COLUMNS
    ))?;
    let mut rows = stmt.query(rusqlite::params![filter.identity, filter.since, after, super::sql_int(limit)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(super::audit::audit_row(r)?);
    }
    Ok(out)
}

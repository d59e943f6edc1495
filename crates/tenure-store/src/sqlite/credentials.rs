//! `rotate_credential` planning and the last verified rotations in SQLite (`operations`, index
//! `operations_rotations` of migration 0015).

use super::audit::append;
use super::queue::insert_case;
use super::{R, SqliteStore};
use crate::credentials::{Planned, Rotations};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};
use tenure_core::audit::AuditEntry;
use tenure_core::{OpKind, OpState};

pub(super) fn plan(store: &SqliteStore, r: &Rotations) -> R<Vec<Planned>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut out = vec![None; r.ops.len()];
    let mut by_identity: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in r.ops.iter().enumerate() {
        let queued: Option<i64> = tx
            .query_row(
                "SELECT id FROM operations WHERE identity = ?1 AND target = ?2 AND kind = ?3
                   AND state IN ('pending', 'running', 'held') ORDER BY id LIMIT 1",
                params![op.identity, op.target, OpKind::RotateCredential.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        match queued {
            Some(operation) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(Planned::AlreadyQueued { operation });
                }
            }
            None => by_identity.entry(op.identity.as_str()).or_default().push(i),
        }
    }
    let mut audit = Vec::new();
    for (identity, idx) in &by_identity {
        let (event_id, case_id) = insert_case(&tx, "nhi", identity, "credential rotation", &at)?;
        for &i in idx {
            let Some(op) = r.ops.get(i) else { continue };
            let reason = serde_json::json!({ "event": event_id, "kind": "update", "rules": [], "finding": op.why });
            tx.execute(
                "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state,
                                         created_at, updated_at, account)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8, ?8, ?9)",
                params![
                    case_id,
                    identity,
                    op.target,
                    OpKind::RotateCredential.as_str(),
                    reason.to_string(),
                    format!("rotate-{event_id}-{i}"),
                    OpState::Pending.as_str(),
                    at,
                    op.account
                ],
            )?;
            let operation = tx.last_insert_rowid();
            audit.push(
                AuditEntry::new(&r.actor, "plan.rotate_credential", "pending")
                    .identity(identity)
                    .target(&op.target)
                    .reason(format!("event {event_id}: operation {operation}: {}", op.why)),
            );
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(Planned::Queued { operation, case: case_id });
            }
        }
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(out.into_iter().flatten().collect())
}

pub(super) fn last(conn: &Connection, identities: Option<&[&str]>) -> R<HashMap<(String, String), String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT identity, target, max(verified_at) FROM operations
         WHERE kind = 'rotate_credential' AND state = 'verified' AND verified_at IS NOT NULL
         GROUP BY identity, target",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let (identity, target, at): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if identities.is_none_or(|ids| ids.contains(&identity.as_str())) {
            out.insert((identity, target), at);
        }
    }
    Ok(out)
}

//! Access requests (`requests`, `request_stages`, migration 0013) in SQLite. Each write is one
//! transaction with its audit records; a stage's decision and a request's end check that the
//! request is still as the engine saw it.

use super::audit::append;
use super::lifecycle::write_batch;
use super::{R, SqliteStore, conflict, corrupt, enum_col, not_found};
use crate::requests::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::HashMap;
use tenure_core::audit::AuditEntry;
use tenure_core::clock::{parse_stamp, stamp};
use tenure_core::{ApprovalKind, ApprovalState, ExceptionKind, RequestState, Schema, StageState};

const COLUMNS: &str = "id, role, identity, requester, via, reason, duration_secs, entitlements, state, created_at,
     decided_at, expires_at, ended_at, ended_by, end_reason";

fn row(r: &rusqlite::Row<'_>) -> R<RequestRecord> {
    let ents: String = r.get(7)?;
    let secs: Option<i64> = r.get(6)?;
    Ok(RequestRecord {
        id: r.get(0)?,
        role: r.get(1)?,
        identity: r.get(2)?,
        requester: r.get(3)?,
        via: r.get(4)?,
        reason: r.get(5)?,
        duration_secs: secs.map(|s| u64::try_from(s).unwrap_or(0)),
        entitlements: serde_json::from_str(&ents).map_err(|e| corrupt(format!("request entitlements: {e}")))?,
        state: enum_col(r, 8)?,
        created_at: r.get(9)?,
        decided_at: r.get(10)?,
        expires_at: r.get(11)?,
        ended_at: r.get(12)?,
        ended_by: r.get(13)?,
        end_reason: r.get(14)?,
        stages: Vec::new(),
    })
}

fn stages(conn: &Connection, request: i64) -> R<Vec<StageRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT stage, rule, approver, approval_id, state, decided_by, decided_at, via FROM request_stages
         WHERE request_id = ?1 ORDER BY stage",
    )?;
    let mut rows = stmt.query([request])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(StageRecord {
            stage: r.get(0)?,
            rule: r.get(1)?,
            approver: r.get(2)?,
            approval_id: r.get(3)?,
            state: enum_col(r, 4)?,
            decided_by: r.get(5)?,
            decided_at: r.get(6)?,
            via: r.get(7)?,
        });
    }
    Ok(out)
}

fn load(conn: &Connection, id: i64) -> R<Option<RequestRecord>> {
    let rec = conn
        .query_row(&format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"), [id], |r| Ok(row(r)))
        .optional()?
        .transpose()?;
    match rec {
        Some(mut rec) => {
            rec.stages = stages(conn, id)?;
            Ok(Some(rec))
        }
        None => Ok(None),
    }
}

pub(super) fn get(conn: &Connection, id: i64) -> R<RequestRecord> {
    load(conn, id)?.ok_or_else(|| not_found(format!("request {id}")))
}

pub(super) fn list(conn: &Connection, open_only: bool) -> R<Vec<RequestRecord>> {
    let filter = if open_only { "WHERE state IN ('pending', 'granted')" } else { "" };
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare(&format!("SELECT id FROM requests {filter} ORDER BY id DESC"))?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    ids.into_iter().map(|id| get(conn, id)).collect()
}

pub(super) fn by_approval(conn: &Connection, approval_id: i64) -> R<Option<RequestRecord>> {
    let id: Option<i64> = conn
        .query_row("SELECT request_id FROM request_stages WHERE approval_id = ?1", [approval_id], |r| r.get(0))
        .optional()?;
    id.map(|id| get(conn, id)).transpose()
}

/// Opens stage `stage` of `request`: its approval row (kind `request`, the request as
/// subject), the stage `pending`, audited.
fn open_stage(tx: &Transaction<'_>, rec: &RequestRecord, stage: &StageRecord, at: &str) -> R<AuditEntry> {
    let total = rec.stages.len();
    let summary = serde_json::json!({
        "request": rec.id,
        "role": rec.role,
        "identity": rec.identity,
        "requester": rec.requester,
        "reason": rec.reason,
        "stage": stage.stage + 1,
        "stages": total,
        "rule": stage.rule,
        "approver": stage.approver,
        "duration_secs": rec.duration_secs,
        "entitlements": rec.entitlements,
    });
    tx.execute(
        "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![ApprovalKind::Request.as_str(), rec.id, summary.to_string(), ApprovalState::Pending.as_str(), at],
    )?;
    let approval = tx.last_insert_rowid();
    tx.execute(
        "UPDATE request_stages SET state = ?3, approval_id = ?4 WHERE request_id = ?1 AND stage = ?2",
        params![rec.id, stage.stage, StageState::Pending.as_str(), approval],
    )?;
    Ok(AuditEntry::new("requests", "request.stage_opened", "pending")
        .identity(&rec.identity)
        .approver(&stage.approver)
        .reason(format!(
            "request {}: stage {} of {total} ({}) waits for `{}` (approval {approval})",
            rec.id,
            stage.stage + 1,
            stage.rule,
            stage.approver
        )))
}

pub(super) fn create(store: &SqliteStore, r: &NewRequest) -> R<RequestRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let actor = format!("user:{}", r.requester);
    let (id, audit) = insert(&tx, r, &actor, &at)?;
    append(&tx, &audit, &at)?;
    let rec = get(&tx, id)?;
    tx.commit()?;
    Ok(rec)
}

/// Writes request `r` with its first stage's approval inside `tx`; returns its id and the audit
/// records describing it (`request.created` as `actor`), for the caller to append.
fn insert(tx: &Transaction<'_>, r: &NewRequest, actor: &str, at: &str) -> R<(i64, Vec<AuditEntry>)> {
    if r.stages.is_empty() {
        return Err(conflict(format!("request for `{}` has no approval stage", r.role)));
    }
    let secs = r.duration_secs.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO requests (role, identity, requester, via, reason, duration_secs, entitlements, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            r.role,
            r.identity,
            r.requester,
            r.via,
            r.reason,
            secs,
            serde_json::to_string(&r.entitlements).unwrap_or_else(|_| "[]".into()),
            RequestState::Pending.as_str(),
            at
        ],
    )?;
    let id = tx.last_insert_rowid();
    for (n, s) in r.stages.iter().enumerate() {
        tx.execute(
            "INSERT INTO request_stages (request_id, stage, rule, approver, state) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, super::sql_int(n), s.rule, s.approver, StageState::Waiting.as_str()],
        )?;
    }
    let rec = get(tx, id)?;
    let duration = r.duration_secs.map_or_else(|| "until revoked".to_string(), |s| format!("for {s} s"));
    let stages: Vec<String> = r.stages.iter().map(|s| format!("{} `{}`", s.rule, s.approver)).collect();
    let mut audit = vec![AuditEntry::new(actor, "request.created", "pending").identity(&r.identity).reason(format!(
        "request {id}: role `{}` ({}) {duration}, asked by `{}` via {}: {}; approvers in order: {}",
        r.role,
        r.entitlements.join(", "),
        r.requester,
        r.via,
        r.reason,
        stages.join(", ")
    ))];
    let first = rec.stages.first().cloned().ok_or_else(|| corrupt("request without stages"))?;
    audit.push(open_stage(tx, &rec, &first, at)?);
    for e in &r.audit {
        let mut e = e.clone();
        e.reason = Some(format!("request {id}; {}", e.reason.unwrap_or_default()));
        audit.push(e);
    }
    Ok((id, audit))
}

/// Writes an event's request changes inside the batch's transaction (event `event_id`, by the
/// batch's `actor`): ends come first, then opens. An open fails with `Conflict` when the identity
/// has an open request for the role already, an end when the request is no longer as the plan
/// saw it.
pub(super) fn apply_changes(
    tx: &Transaction<'_>,
    c: &RequestChanges,
    event_id: i64,
    actor: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> R<()> {
    for e in &c.end {
        if !matches!(e.state, RequestState::Cancelled | RequestState::Revoked) {
            return Err(conflict(format!("a plan ends a request as cancelled or revoked, not {}", e.state)));
        }
        let rec = get(tx, e.request_id)?;
        if rec.state != e.was {
            return Err(conflict(format!("request {} changed while this was being prepared; run it again", rec.id)));
        }
        close(tx, &rec, e.state, actor, &e.reason, at)?;
        let what = if rec.state == RequestState::Granted { "its grant is revoked" } else { "never granted" };
        audit.push(
            AuditEntry::new(actor, &format!("request.{}", e.state), e.state.as_str()).identity(&rec.identity).reason(
                format!("request {}: role `{}` {} (event {event_id}): {}; {what}", rec.id, rec.role, e.state, e.reason),
            ),
        );
    }
    for r in &c.open {
        let open: i64 = tx.query_row(
            "SELECT COUNT(*) FROM requests WHERE identity = ?1 AND role = ?2 AND state IN ('pending', 'granted')",
            params![r.identity, r.role],
            |row| row.get(0),
        )?;
        if open > 0 {
            return Err(conflict(format!(
                "identity `{}` has an open request for role `{}` already; run it again",
                r.identity, r.role
            )));
        }
        let (_, created) = insert(tx, r, actor, at)?;
        audit.extend(created);
    }
    Ok(())
}

/// The request of pending stage approval `approval_id`, with the stage.
fn pending_stage(tx: &Transaction<'_>, approval_id: i64) -> R<(RequestRecord, StageRecord)> {
    let rec = by_approval(tx, approval_id)?.ok_or_else(|| not_found(format!("request of approval {approval_id}")))?;
    let stage = rec
        .stages
        .iter()
        .find(|s| s.approval_id == Some(approval_id))
        .cloned()
        .ok_or_else(|| corrupt(format!("approval {approval_id} has no stage")))?;
    if rec.state != RequestState::Pending || stage.state != StageState::Pending {
        return Err(conflict(format!(
            "approval {approval_id} is not pending (request {} is {}, its stage {})",
            rec.id, rec.state, stage.state
        )));
    }
    Ok((rec, stage))
}

pub(super) fn approve(store: &SqliteStore, schema: &Schema, d: &StageApproval) -> R<RequestRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let (rec, stage) = pending_stage(&tx, d.approval_id)?;
    let n = tx.execute(
        "UPDATE approvals SET state = ?4, decided_at = ?2, decided_by = ?3 WHERE id = ?1 AND state = 'pending'",
        params![d.approval_id, at, d.by, ApprovalState::Approved.as_str()],
    )?;
    if n != 1 {
        return Err(conflict(format!("approval {} is not pending", d.approval_id)));
    }
    tx.execute(
        "UPDATE request_stages SET state = ?3, decided_by = ?4, decided_at = ?5, via = ?6
         WHERE request_id = ?1 AND stage = ?2",
        params![rec.id, stage.stage, StageState::Approved.as_str(), d.by, at, d.via],
    )?;
    let total = rec.stages.len();
    let mut audit = vec![
        AuditEntry::new(&actor_of(&d.by, &d.via), "approval.approved", "approved")
            .identity(&rec.identity)
            .approver(&d.by)
            .reason(format!(
                "approval {}: request {} stage {} of {total} ({}) approved by `{}` via {}",
                d.approval_id,
                rec.id,
                stage.stage + 1,
                stage.rule,
                d.by,
                d.via
            )),
    ];
    audit.extend(d.audit.iter().cloned());
    let next = rec.stages.iter().find(|s| s.stage > stage.stage && s.state == StageState::Waiting).cloned();
    match (&next, &d.grant) {
        (Some(next), None) => {
            audit.push(open_stage(&tx, &rec, next, &at)?);
            append(&tx, &audit, &at)?;
        }
        (None, Some(batch)) => {
            let expires = rec.duration_secs.and_then(|s| {
                let now = parse_stamp(&at)?;
                Some(stamp(now + chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))))
            });
            tx.execute(
                "UPDATE requests SET state = ?2, decided_at = ?3, expires_at = ?4 WHERE id = ?1",
                params![rec.id, RequestState::Granted.as_str(), at, expires],
            )?;
            for x in &d.exceptions {
                let reason = match &expires {
                    Some(e) => format!("{}; accepted until {e}", x.reason),
                    None => format!("{}; accepted until the request ends", x.reason),
                };
                // Due when the request expires: the register shows until when the risk stands.
                tx.execute(
                    "INSERT INTO exceptions (kind, subject, identity, target, owner, reason, state, created_at, due_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8)",
                    params![
                        ExceptionKind::AcceptedSod.as_str(),
                        x.subject,
                        x.identity,
                        x.target,
                        x.owner,
                        reason,
                        at,
                        expires
                    ],
                )?;
                audit.push(
                    AuditEntry::new(&actor_of(&d.by, &d.via), "exception.opened", "open")
                        .identity(&x.identity)
                        .target(x.target.as_deref().unwrap_or_default())
                        .approver(&d.by)
                        .reason(format!(
                            "request {}: accepted SoD risk `{}` owned by `{}`: {reason}",
                            rec.id, x.subject, x.owner
                        )),
                );
            }
            let until = expires.as_deref().map_or_else(|| "until revoked".to_string(), |e| format!("until {e}"));
            audit.push(
                AuditEntry::new(&actor_of(&d.by, &d.via), "request.granted", "granted")
                    .identity(&rec.identity)
                    .approver(&d.by)
                    .reason(format!(
                        "request {}: role `{}` ({}) granted {until}",
                        rec.id,
                        rec.role,
                        rec.entitlements.join(", ")
                    )),
            );
            append(&tx, &audit, &at)?;
            write_batch(&tx, &at, schema, batch, &mut batch.events.iter().map(std::borrow::Cow::Borrowed))?;
        }
        (Some(_), Some(_)) => {
            return Err(conflict(format!("request {} has stages left; it cannot be granted yet", rec.id)));
        }
        (None, None) => {
            return Err(conflict(format!("request {} has no stage left, so its grant must be planned", rec.id)));
        }
    }
    let out = get(&tx, rec.id)?;
    tx.commit()?;
    Ok(out)
}

/// The actor of a decision: the token it came through, else the person the CLI was told.
pub(super) fn actor_of(by: &str, via: &str) -> String {
    match via.strip_prefix("token:") {
        Some(name) => format!("token:{name}"),
        None => format!("user:{by}"),
    }
}

/// Rejects the request whose pending stage is approval `approval_id`, inside `Store::reject`'s
/// transaction (which marks the approval rejected and records `approval.rejected`).
pub(super) fn reject_stage(
    tx: &Transaction<'_>,
    approval_id: i64,
    by: &str,
    via: Option<&str>,
    reason: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> R<()> {
    let (rec, stage) = pending_stage(tx, approval_id)?;
    tx.execute(
        "UPDATE request_stages SET state = ?3, decided_by = ?4, decided_at = ?5, via = ?6
         WHERE request_id = ?1 AND stage = ?2",
        params![rec.id, stage.stage, StageState::Rejected.as_str(), by, at, via],
    )?;
    tx.execute(
        "UPDATE request_stages SET state = ?2 WHERE request_id = ?1 AND state = 'waiting'",
        params![rec.id, StageState::Cancelled.as_str()],
    )?;
    tx.execute(
        "UPDATE requests SET state = ?2, decided_at = ?3, ended_at = ?3, ended_by = ?4, end_reason = ?5 WHERE id = ?1",
        params![rec.id, RequestState::Rejected.as_str(), at, by, reason],
    )?;
    let via_text = via.map(|v| format!(" via {v}")).unwrap_or_default();
    audit.push(
        AuditEntry::new(&actor_of(by, via.unwrap_or_default()), "request.rejected", "rejected")
            .identity(&rec.identity)
            .approver(by)
            .reason(format!(
                "request {}: role `{}` rejected at stage {} ({}) by `{by}`{via_text}: {reason}",
                rec.id,
                rec.role,
                stage.stage + 1,
                stage.rule
            )),
    );
    Ok(())
}

/// Ends `rec` (pending or granted) as `state` inside `tx`: its stages still open cancelled,
/// their approvals superseded, its accepted-risk exceptions resolved.
fn close(tx: &Transaction<'_>, rec: &RequestRecord, state: RequestState, by: &str, reason: &str, at: &str) -> R<()> {
    let n = tx.execute(
        "UPDATE requests SET state = ?2, ended_at = ?3, ended_by = ?4, end_reason = ?5
         WHERE id = ?1 AND state = ?6",
        params![rec.id, state.as_str(), at, by, reason, rec.state.as_str()],
    )?;
    if n != 1 {
        return Err(conflict(format!("request {} changed while this was being prepared; run it again", rec.id)));
    }
    tx.execute(
        "UPDATE approvals SET state = ?2, decided_at = ?3, decision_reason = ?4
         WHERE state = 'pending' AND id IN (SELECT approval_id FROM request_stages WHERE request_id = ?1)",
        params![rec.id, ApprovalState::Superseded.as_str(), at, format!("request {} {state}", rec.id)],
    )?;
    tx.execute(
        "UPDATE request_stages SET state = ?2 WHERE request_id = ?1 AND state IN ('waiting', 'pending')",
        params![rec.id, StageState::Cancelled.as_str()],
    )?;
    tx.execute(
        "UPDATE exceptions SET state = 'resolved', resolved_at = ?2, closed_by = ?4, close_reason = ?5
         WHERE kind = ?3 AND state IN ('open', 'accepted') AND subject LIKE ?1",
        params![
            format!("request:{}:%", rec.id),
            at,
            ExceptionKind::AcceptedSod.as_str(),
            by,
            format!("request {} {state}: the access it accepted the risk for is gone", rec.id)
        ],
    )?;
    Ok(())
}

pub(super) fn end(store: &SqliteStore, schema: &Schema, e: &RequestEnd) -> R<RequestRecord> {
    if !matches!(e.state, RequestState::Expired | RequestState::Revoked) {
        return Err(conflict(format!("a request ends as expired or revoked, not {}", e.state)));
    }
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let rec = get(&tx, e.request_id)?;
    let allowed =
        rec.state == RequestState::Granted || (rec.state == RequestState::Pending && e.state == RequestState::Revoked);
    if !allowed {
        return Err(conflict(format!("request {} is {}; it cannot become {}", rec.id, rec.state, e.state)));
    }
    close(&tx, &rec, e.state, &e.by, &e.reason, &at)?;
    let mut audit = e.audit.clone();
    let action = if e.state == RequestState::Expired { "request.expired" } else { "request.revoked" };
    audit.insert(
        0,
        AuditEntry::new(&e.by, action, e.state.as_str()).identity(&rec.identity).reason(format!(
            "request {}: role `{}` ({}) {}: {}",
            rec.id,
            rec.role,
            rec.entitlements.join(", "),
            e.state,
            e.reason
        )),
    );
    append(&tx, &audit, &at)?;
    if let Some(batch) = &e.batch {
        write_batch(&tx, &at, schema, batch, &mut batch.events.iter().map(std::borrow::Cow::Borrowed))?;
    }
    let out = get(&tx, rec.id)?;
    tx.commit()?;
    Ok(out)
}

/// Cancels every open request of leaver `identity` inside the batch's transaction (event
/// `event_id`); the event's plan revokes what the granted ones gave.
pub(super) fn cancel_for_leaver(
    tx: &Transaction<'_>,
    identity: &str,
    event_id: i64,
    actor: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> R<()> {
    let ids: Vec<i64> = {
        let mut stmt =
            tx.prepare_cached("SELECT id FROM requests WHERE identity = ?1 AND state IN ('pending', 'granted')")?;
        stmt.query_map([identity], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    for id in ids {
        let rec = get(tx, id)?;
        let why = format!("identity `{identity}` left (event {event_id})");
        close(tx, &rec, RequestState::Cancelled, actor, &why, at)?;
        let what =
            if rec.state == RequestState::Granted { "its grant is revoked with the rest" } else { "never granted" };
        audit.push(
            AuditEntry::new(actor, "request.cancelled", "cancelled")
                .identity(identity)
                .reason(format!("request {id}: role `{}` cancelled: {why}; {what}", rec.role)),
        );
    }
    Ok(())
}

pub(super) fn grants(conn: &Connection, identities: Option<&[&str]>) -> R<HashMap<String, Vec<RequestGrant>>> {
    let mut out: HashMap<String, Vec<RequestGrant>> = HashMap::new();
    let mut all = conn.prepare_cached(
        "SELECT id, identity, role, entitlements, expires_at FROM requests WHERE state = 'granted' ORDER BY id",
    )?;
    let mut one = conn.prepare_cached(
        "SELECT id, identity, role, entitlements, expires_at FROM requests WHERE state = 'granted' AND identity = ?1
         ORDER BY id",
    )?;
    super::rows_for_identities(&mut all, &mut one, identities, |r| {
        let ents: String = r.get(3)?;
        out.entry(r.get(1)?).or_default().push(RequestGrant {
            request_id: r.get(0)?,
            role: r.get(2)?,
            entitlements: serde_json::from_str(&ents).map_err(|e| corrupt(format!("request entitlements: {e}")))?,
            expires_at: r.get(4)?,
        });
        Ok(())
    })?;
    Ok(out)
}

//! Identities, batches, approvals, cases and the event journal.

use super::audit::{Appender, append};
use super::{R, SqliteStore, conflict, corrupt, count, enum_col, not_found, parse_enum};
use crate::records::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::audit::AuditEntry;
use tenure_core::clock::parse_stamp;
use tenure_core::plan::{AccountView, Holdings, Queued};
use tenure_core::rules::{self, CaseCounts};
use tenure_core::{
    ApprovalKind, ApprovalState, Attrs, CaseState, EventKind, EventState, ExceptionKind, ExceptionState, Identity,
    ImportState, OpKind, OpState, Schema,
};

pub(super) fn identity_from(schema: &Schema, id: &str, kind: &str, status: &str, attrs: &str) -> R<Identity> {
    let attrs = Attrs::from_json_str(schema, attrs).map_err(|e| corrupt(format!("attrs of `{id}`: {e}")))?;
    Ok(Identity::new(id, parse_enum(kind)?, parse_enum(status)?, attrs))
}

pub(super) fn identities(conn: &Connection, schema: &Schema, source: Option<&str>) -> R<Vec<Identity>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, kind, status, attrs FROM identities WHERE ?1 IS NULL OR source = ?1 ORDER BY id")?;
    let mut rows = stmt.query([source])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, kind, status, attrs): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        out.push(identity_from(schema, &id, &kind, &status, &attrs)?);
    }
    Ok(out)
}

pub(super) fn identity(conn: &Connection, schema: &Schema, id: &str) -> R<Option<Identity>> {
    let row: Option<(String, String, String)> = conn
        .query_row("SELECT kind, status, attrs FROM identities WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    row.map(|(k, s, a)| identity_from(schema, id, &k, &s, &a)).transpose()
}

pub(super) fn holdings(conn: &Connection, identity: &str) -> R<Holdings> {
    let mut h = Holdings::new();
    let mut stmt = conn.prepare_cached("SELECT target, enabled, name FROM accounts WHERE identity = ?1")?;
    let mut rows = stmt.query([identity])?;
    while let Some(r) = rows.next()? {
        h.insert(
            r.get(0)?,
            AccountView { exists: true, enabled: r.get(1)?, grants: Default::default(), name: r.get(2)? },
        );
    }
    let mut stmt = conn.prepare_cached("SELECT target, entitlement FROM grants WHERE identity = ?1")?;
    let mut rows = stmt.query([identity])?;
    while let Some(r) = rows.next()? {
        let t: String = r.get(0)?;
        h.entry(t).or_default().grants.insert(r.get(1)?);
    }
    Ok(h)
}

pub(super) fn all_holdings(conn: &Connection) -> R<HashMap<String, Holdings>> {
    let mut out: HashMap<String, Holdings> = HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT identity, target, enabled, name FROM accounts")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out.entry(r.get(0)?).or_default().insert(
            r.get(1)?,
            AccountView { exists: true, enabled: r.get(2)?, grants: Default::default(), name: r.get(3)? },
        );
    }
    let mut stmt = conn.prepare_cached("SELECT identity, target, entitlement FROM grants")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (i, t): (String, String) = (r.get(0)?, r.get(1)?);
        out.entry(i).or_default().entry(t).or_default().grants.insert(r.get(2)?);
    }
    Ok(out)
}

/// Queued operations that have not taken effect: never attempted (no attempt, no error) and not
/// claimed, or done as far as the executor goes but waiting on a manual ticket nobody has
/// carried out.
const UNTRIED: &str = "((o.state = 'pending' AND o.attempts = 0 AND o.last_error IS NULL)
     OR (o.state = 'done' AND EXISTS (SELECT 1 FROM tickets t WHERE t.operation_id = o.id AND t.state = 'open')))";

/// Queued operations attempted (or refused) without a verified result: failed, or pending a
/// retry. Their effect may have landed.
const ATTEMPTED: &str =
    "(o.state = 'failed' OR (o.state = 'pending' AND (o.attempts > 0 OR o.last_error IS NOT NULL)))";

pub(super) fn queued(conn: &Connection, identities: Option<&[&str]>) -> R<HashMap<String, Vec<Queued>>> {
    // Two statements, not one with `?1 IS NULL OR identity = ?1`: that disjunction keeps SQLite
    // from using the identity index, and a per-identity lookup then scans every pending
    // operation in the store (minutes after a day-one import that was never applied).
    let base = format!(
        "SELECT o.id, o.identity, o.target, o.kind, o.entitlement, {ATTEMPTED} FROM operations o
         JOIN cases c ON c.id = o.case_id JOIN events e ON e.id = c.event_id
         WHERE e.import_id IS NOT NULL AND ({UNTRIED} OR {ATTEMPTED})"
    );
    let mut all = conn.prepare_cached(&format!("{base} ORDER BY o.id"))?;
    let mut one = conn.prepare_cached(&format!("{base} AND o.identity = ?1 ORDER BY o.id"))?;
    let mut out: HashMap<String, Vec<Queued>> = HashMap::new();
    let mut read = |who: Option<&str>| -> R<()> {
        let mut rows = match who {
            None => all.query([])?,
            Some(id) => one.query([id])?,
        };
        while let Some(r) = rows.next()? {
            out.entry(r.get(1)?).or_default().push(Queued {
                id: r.get(0)?,
                target: r.get(2)?,
                kind: enum_col(r, 3)?,
                entitlement: r.get(4)?,
                attempted: r.get(5)?,
            });
        }
        Ok(())
    };
    match identities {
        None => read(None)?,
        Some(ids) => {
            for id in ids {
                read(Some(id))?;
            }
        }
    }
    Ok(out)
}

pub(super) fn foreign_identities(conn: &Connection, source: &str) -> R<HashMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT id, source FROM identities WHERE source <> ?1")?;
    let rows = stmt.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const LAST_IMPORT: &str = "SELECT max(id) FROM imports WHERE source = ?1 AND state IN ('applied', 'approved')";

pub(super) fn last_import(conn: &Connection, source: &str) -> R<Option<i64>> {
    Ok(conn.query_row(LAST_IMPORT, [source], |r| r.get(0))?)
}

pub(super) fn held_batches(conn: &Connection) -> R<Vec<HeldBatch>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, i.id, i.source FROM approvals a JOIN imports i ON a.subject = i.id
         WHERE a.kind = 'batch' AND a.state = 'pending' ORDER BY a.id",
    )?;
    let rows = stmt.query_map([], |r| Ok(HeldBatch { approval: r.get(0)?, import: r.get(1)?, source: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The operation's idempotency key: its event and its place in the event's plan. Unique by
/// construction, short, and increasing within a batch, so the unique index grows at its end
/// instead of taking each key at a random place.
fn idem_key(event_id: i64, n: usize) -> String {
    format!("e{event_id}.{n}")
}

/// Inserts an event row and returns its id.
fn insert_event(
    tx: &Transaction<'_>,
    schema: &Schema,
    import_id: i64,
    source: &str,
    ev: &EventIn,
    at: &str,
    state: EventState,
) -> R<i64> {
    insert_event_with(tx, &ev.identity.attrs.to_json(schema).to_string(), import_id, source, ev, at, state)
}

/// [`insert_event`] with the identity's attributes already as JSON.
fn insert_event_with(
    tx: &Transaction<'_>,
    attrs_json: &str,
    import_id: i64,
    source: &str,
    ev: &EventIn,
    at: &str,
    state: EventState,
) -> R<i64> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (import_id, source, kind, identity, received_at, changes, significant, note, after, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    // The identity after the event: id, kind, status, attrs (what `held_events` reads back).
    let after = format!(
        "{{\"id\":{},\"kind\":\"{}\",\"status\":\"{}\",\"attrs\":{attrs_json}}}",
        serde_json::Value::String(ev.identity.id.to_string()),
        ev.identity.kind,
        ev.identity.status
    );
    stmt.execute(params![
        import_id,
        source,
        ev.kind.as_str(),
        &*ev.identity.id,
        at,
        serde_json::to_string(&ev.changes).unwrap_or_default(),
        ev.significant,
        ev.note,
        after,
        state.as_str(),
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Recomputes a case's state with `tenure_core::rules::case_state` and writes it (audited when
/// it closes or gets stuck).
pub(crate) fn refresh_case(tx: &Transaction<'_>, case_id: i64, at: &str, audit: &mut Vec<AuditEntry>) -> R<()> {
    let states: Vec<(OpState, u64)> = {
        let mut stmt = tx.prepare_cached("SELECT state, count(*) FROM operations WHERE case_id = ?1 GROUP BY state")?;
        let mut rows = stmt.query([case_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((enum_col(r, 0)?, count(r.get(1)?)));
        }
        out
    };
    let open_exceptions: i64 = tx.query_row(
        "SELECT count(*) FROM exceptions WHERE case_id = ?1 AND state = ?2",
        params![case_id, ExceptionState::Open.as_str()],
        |r| r.get(0),
    )?;
    let counts = CaseCounts::from_states(states, count(open_exceptions));
    let state = rules::case_state(&counts);
    let (current, kind, identity, opened): (String, String, String, String) =
        tx.query_row("SELECT state, kind, identity, opened_at FROM cases WHERE id = ?1", [case_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let (current, kind): (CaseState, EventKind) = (parse_enum(&current)?, parse_enum(&kind)?);
    if current == state {
        return Ok(());
    }
    if state == CaseState::Closed {
        let revoke_ms = (kind == EventKind::Leaver).then(|| millis_between(&opened, at));
        // A leaver case the post-offboarding re-check reopened keeps its first time-to-revoke:
        // the revocation that came undone later is a `resurrected` finding, not a slower one.
        tx.execute(
            "UPDATE cases SET state = ?2, closed_at = ?3, revoke_ms = coalesce(revoke_ms, ?4) WHERE id = ?1",
            params![case_id, state.as_str(), at, revoke_ms],
        )?;
        let mut reason =
            format!("case {case_id} ({kind}): all {} operations verified, excepted or cancelled", counts.total);
        if let Some(ms) = revoke_ms {
            reason.push_str(&format!("; time-to-revoke {ms} ms"));
        }
        audit.push(AuditEntry::new("executor", "case.closed", "closed").identity(&identity).reason(reason));
        if matches!(kind, EventKind::Leaver | EventKind::Suspend) {
            record_partial_removal(tx, case_id, kind, &identity, at, audit)?;
        }
    } else {
        tx.execute("UPDATE cases SET state = ?2, closed_at = NULL WHERE id = ?1", params![case_id, state.as_str()])?;
        if state == CaseState::Stuck {
            audit.push(AuditEntry::new("executor", "case.stuck", "stuck").identity(&identity).reason(format!(
                "case {case_id} ({kind}): {} operation(s) failed, {} open exception(s)",
                counts.failed, counts.open_exceptions
            )));
        }
    }
    Ok(())
}

/// A leaver's or suspension's case that closes with removals excepted (a failed revocation
/// someone accepted) left access behind: that is a `partial_removal` exception, once per case.
/// Its owner and due date are those of the acceptance, else the target's.
fn record_partial_removal(
    tx: &Transaction<'_>,
    case_id: i64,
    kind: EventKind,
    identity: &str,
    at: &str,
    audit: &mut Vec<AuditEntry>,
) -> R<()> {
    // (operation, kind, target, entitlement, who accepted it, due date of the acceptance)
    type Excepted = (i64, String, String, Option<String>, Option<String>, Option<String>);
    let excepted: Vec<Excepted> = {
        let mut stmt = tx.prepare_cached(
            "SELECT o.id, o.kind, o.target, o.entitlement, e.closed_by, e.due_at FROM operations o
             LEFT JOIN exceptions e ON e.subject = 'operation:' || o.id AND e.state = ?2
             WHERE o.case_id = ?1 AND o.state = ?3 ORDER BY o.id",
        )?;
        stmt.query_map(params![case_id, ExceptionState::Accepted.as_str(), OpState::Excepted.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let removals: Vec<_> =
        excepted.iter().filter(|(_, k, ..)| k.parse::<OpKind>().is_ok_and(OpKind::removes_access)).collect();
    let Some((_, _, target, _, by, due)) = removals.first() else {
        return Ok(());
    };
    let left: Vec<String> = removals
        .iter()
        .map(|(id, k, t, e, ..)| {
            format!("operation {id} ({k}{} in {t})", e.as_deref().map(|e| format!(" `{e}`")).unwrap_or_default())
        })
        .collect();
    let reason = format!("case {case_id} ({kind}) closed with access left in place: {}", left.join(", "));
    let owner = by.clone().unwrap_or_else(|| target.clone());
    let n = tx.execute(
        "INSERT OR IGNORE INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            ExceptionKind::PartialRemoval.as_str(),
            format!("case:{case_id}"),
            case_id,
            identity,
            target,
            owner,
            reason,
            ExceptionState::Open.as_str(),
            at,
            due
        ],
    )?;
    if n > 0 {
        audit.push(
            AuditEntry::new("executor", "exception.opened", "open")
                .identity(identity)
                .target(target)
                .reason(format!("{}: {reason}", ExceptionKind::PartialRemoval)),
        );
    }
    Ok(())
}

fn millis_between(a: &str, b: &str) -> i64 {
    match (parse_stamp(a), parse_stamp(b)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds(),
        _ => 0,
    }
}

/// Cancels queued operations that event `event_id` supersedes, withdrawing their open tickets
/// and resolving a failure exception about them. Each must still be as the plan saw it.
fn cancel_superseded(
    tx: &Transaction<'_>,
    event_id: i64,
    identity: &str,
    ops: &[Queued],
    at: &str,
    audit_out: &mut Vec<AuditEntry>,
) -> R<()> {
    let mut cases = BTreeSet::new();
    for q in ops {
        let op = q.id;
        let class = if q.attempted { ATTEMPTED } else { UNTRIED };
        let row: Option<(i64, String, String, Option<String>)> = tx
            .query_row(
                &format!(
                    "SELECT o.case_id, o.target, o.kind, o.entitlement FROM operations o
                     WHERE o.id = ?1 AND o.identity = ?2 AND {class}"
                ),
                params![op, identity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((case_id, target, kind, entitlement)) = row else {
            return Err(conflict(format!(
                "operation {op} of `{identity}` changed while this change was being prepared; run it again"
            )));
        };
        tx.execute(
            "UPDATE operations SET state = ?4, note = ?2, updated_at = ?3, next_attempt_at = NULL WHERE id = ?1",
            params![op, format!("superseded by event {event_id}: no longer needed"), at, OpState::Cancelled.as_str()],
        )?;
        let withdrawn = tx.execute(
            "UPDATE tickets SET state = 'withdrawn', done_at = ?2, evidence = ?3 WHERE operation_id = ?1 AND state = 'open'",
            params![op, at, format!("withdrawn: event {event_id} no longer needs it")],
        )?;
        tx.execute(
            "UPDATE exceptions SET state = 'resolved', resolved_at = ?2
             WHERE state = 'open' AND (subject = 'operation:' || ?1
                   OR subject IN (SELECT 'ticket:' || id FROM tickets WHERE operation_id = ?1))",
            params![op, at],
        )?;
        let mut why =
            format!("event {event_id} supersedes operation {op} ({kind}): the new desired state no longer needs it");
        if q.attempted {
            why.push_str("; it was attempted without a verified result, so no retry may bring it back");
        }
        if withdrawn > 0 {
            why.push_str("; its manual ticket is withdrawn");
        }
        audit_out.push(
            AuditEntry::new("planner", &format!("plan.{kind}"), "cancelled")
                .identity(identity)
                .target(&target)
                .entitlement(entitlement.as_deref())
                .reason(why),
        );
        cases.insert(case_id);
    }
    for case_id in cases {
        refresh_case(tx, case_id, at, audit_out)?;
    }
    Ok(())
}

/// Marks the held batches the engine decided `batch` supersedes, after checking that decision
/// still stands: each is still pending, and no other batch of the source was held since.
fn supersede(tx: &Transaction<'_>, batch: &Batch, at: &str, audit_out: &mut Vec<AuditEntry>) -> R<()> {
    let held: Vec<HeldBatch> = {
        let mut stmt = tx.prepare_cached(
            "SELECT a.id, i.id, i.source FROM approvals a JOIN imports i ON a.subject = i.id
             WHERE a.kind = 'batch' AND a.state = 'pending' AND i.source = ?1",
        )?;
        let rows = stmt.query_map([&batch.source], |r| {
            Ok(HeldBatch { approval: r.get(0)?, import: r.get(1)?, source: r.get(2)? })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for h in &held {
        if !batch.supersede.iter().any(|s| s.approval == h.approval) {
            return Err(conflict(format!(
                "another import of `{}` was held (approval {}) while this one was being prepared; run it again",
                batch.source, h.approval
            )));
        }
    }
    for s in &batch.supersede {
        if !held.iter().any(|h| h.approval == s.approval && h.import == s.import) {
            return Err(conflict(format!(
                "approval {} (import {}) was decided while this import was being prepared; run it again",
                s.approval, s.import
            )));
        }
        tx.execute(
            "UPDATE approvals SET state = ?2, decided_at = ?3 WHERE id = ?1",
            params![s.approval, ApprovalState::Superseded.as_str(), at],
        )?;
        tx.execute("UPDATE imports SET state = ?2 WHERE id = ?1", params![s.import, ImportState::Superseded.as_str()])?;
        tx.execute(
            "UPDATE events SET state = ?2 WHERE import_id = ?1",
            params![s.import, EventState::Superseded.as_str()],
        )?;
        audit_out.push(AuditEntry::new(&batch.actor, "approval.superseded", "superseded").reason(format!(
            "approval {} (import {}) superseded by a newer snapshot of `{}`",
            s.approval, s.import, batch.source
        )));
    }
    Ok(())
}

pub(super) fn commit_batch<'e>(
    store: &SqliteStore,
    schema: &Schema,
    batch: &Batch,
    events: &mut dyn Iterator<Item = std::borrow::Cow<'e, EventIn>>,
) -> R<BatchIds> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let ids = write_batch(&tx, &at, schema, batch, events)?;
    tx.commit()?;
    Ok(ids)
}

/// Writes a batch inside `tx` (the caller commits), at the store time `at`: what
/// [`commit_batch`] does, for writes that must commit together with a batch (a SCIM resource
/// and the record it makes).
pub(super) fn write_batch<'e>(
    tx: &Transaction<'_>,
    at: &str,
    schema: &Schema,
    batch: &Batch,
    events: &mut dyn Iterator<Item = std::borrow::Cow<'e, EventIn>>,
) -> R<BatchIds> {
    let at = at.to_string();
    if !matches!(batch.state, BatchState::Approved { .. }) {
        let last: Option<i64> = tx.query_row(LAST_IMPORT, [&batch.source], |r| r.get(0))?;
        if last != batch.base_import {
            return Err(conflict(format!(
                "another import of `{}` was applied while this one was being prepared; run it again",
                batch.source
            )));
        }
    }
    let mut ids = BatchIds::default();
    let mut audit_out: Vec<AuditEntry> = Vec::new();
    // The correlation the plan was made from commits with it, or not at all.
    ids.correlation_cases = super::correlation::write_in_batch(tx, &at, &batch.actor, &batch.correlation)?;

    let import_id = match &batch.state {
        BatchState::Planned => {
            tx.execute(
                "INSERT INTO imports (source, file, sha256, at, state, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    batch.source,
                    batch.file,
                    batch.sha256,
                    at,
                    ImportState::Applied.as_str(),
                    batch.summary.to_string()
                ],
            )?;
            tx.last_insert_rowid()
        }
        BatchState::Applied | BatchState::Held { .. } => {
            supersede(tx, batch, &at, &mut audit_out)?;
            let state =
                if matches!(batch.state, BatchState::Held { .. }) { ImportState::Held } else { ImportState::Applied };
            tx.execute(
                "INSERT INTO imports (source, file, sha256, at, state, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![batch.source, batch.file, batch.sha256, at, state.as_str(), batch.summary.to_string()],
            )?;
            let import_id = tx.last_insert_rowid();
            let mut e = AuditEntry::new(&batch.actor, "import", state.as_str())
                .reason(format!("import {import_id} of `{}` (sha256 {}): {}", batch.file, batch.sha256, batch.summary));
            if let BatchState::Held { reason, .. } = &batch.state {
                e.action = "import.held".into();
                e.reason = Some(format!("import {import_id} of `{}` held: {reason}", batch.file));
            }
            audit_out.push(e);
            import_id
        }
        BatchState::Approved { import_id, approval_id, approver } => {
            let n = tx.execute(
                "UPDATE approvals SET state = ?4, decided_at = ?2, decided_by = ?3 WHERE id = ?1 AND state = 'pending'",
                params![approval_id, at, approver, ApprovalState::Approved.as_str()],
            )?;
            if n != 1 {
                return Err(conflict(format!("approval {approval_id} is not pending")));
            }
            tx.execute(
                "UPDATE imports SET state = ?2 WHERE id = ?1",
                params![import_id, ImportState::Approved.as_str()],
            )?;
            audit_out.push(
                AuditEntry::new(&batch.actor, "approval.approved", "approved")
                    .approver(approver)
                    .reason(format!("approval {approval_id}: held import {import_id} released")),
            );
            *import_id
        }
    };
    ids.import_id = import_id;
    super::push::mark_ingested(tx, &batch.ingests, Some(import_id))?;
    audit_out.extend(batch.audit.iter().cloned());

    if let BatchState::Held { reason, submitted_by } = &batch.state {
        for ev in events {
            insert_event(tx, schema, import_id, &batch.source, &ev, &at, EventState::Held)?;
            ids.events += 1;
        }
        let summary = serde_json::json!({
            "source": batch.source, "file": batch.file, "reason": reason, "counts": batch.summary,
            "submitted_by": submitted_by,
        });
        tx.execute(
            "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ApprovalKind::Batch.as_str(), import_id, summary.to_string(), ApprovalState::Pending.as_str(), at],
        )?;
        ids.approval_id = Some(tx.last_insert_rowid());
        append(tx, &audit_out, &at)?;
        return Ok(ids);
    }

    // A large batch (the day-one import: every joiner's birthright operations) is written as it
    // is read: each event's records and audit entries go out before the next event's are made,
    // and the page cache is large enough that the transaction does not spill to the WAL and
    // read itself back.
    tx.pragma_update(None, "cache_size", BATCH_CACHE_KIB)?;
    let mut chain = Appender::new(tx, &at)?;
    for e in audit_out.drain(..) {
        chain.push(tx, &e)?;
    }
    // An identity belongs to the source that created it: a row from another source never
    // rewrites it (the engine rejects such rows; this keeps the store honest regardless).
    let mut upsert = tx.prepare_cached(
        "INSERT INTO identities (id, source, kind, status, attrs, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
         attrs = excluded.attrs, updated_at = excluded.updated_at WHERE identities.source = excluded.source",
    )?;
    let mut upd_event = tx.prepare_cached("UPDATE events SET state = ?2 WHERE id = ?1")?;
    let mut ins_case = tx.prepare_cached(
        "INSERT INTO cases (event_id, identity, kind, state, opened_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ins_op = tx.prepare_cached(
        "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state, created_at,
                                 updated_at, account)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9)",
    )?;
    let mut del_acct = tx.prepare_cached("DELETE FROM accounts WHERE identity = ?1")?;
    let mut del_grants = tx.prepare_cached("DELETE FROM grants WHERE identity = ?1")?;
    let mut ins_acct =
        tx.prepare_cached("INSERT INTO accounts (identity, target, enabled, name) VALUES (?1, ?2, ?3, ?4)")?;
    let mut ins_grant = tx.prepare_cached("INSERT INTO grants (identity, target, entitlement) VALUES (?1, ?2, ?3)")?;
    let mut event_audit: Vec<AuditEntry> = Vec::new();
    for ev in events {
        let ev = ev.as_ref();
        let id: &str = &ev.identity.id;
        let attrs = ev.identity.attrs.to_json(schema).to_string();
        let n = upsert.execute(params![
            id,
            batch.source,
            ev.identity.kind.as_str(),
            ev.identity.status.as_str(),
            attrs,
            at
        ])?;
        if n != 1 {
            return Err(conflict(format!(
                "identity `{id}` belongs to another source; `{}` cannot change it",
                batch.source
            )));
        }
        let event_id = match ev.existing_id {
            Some(eid) => {
                upd_event.execute(params![eid, EventState::Applied.as_str()])?;
                eid
            }
            None => insert_event_with(tx, &attrs, import_id, &batch.source, ev, &at, EventState::Applied)?,
        };
        ids.events += 1;
        cancel_superseded(tx, event_id, id, &ev.cancel, &at, &mut event_audit)?;
        // A leaver's access requests end with them: the pending ones are cancelled, the granted
        // ones too (their grants are revoked by this event's plan, with the rest).
        if rules::ends_requests(ev.identity.status) {
            super::requests::cancel_for_leaver(tx, id, event_id, &batch.actor, &at, &mut event_audit)?;
        }
        if !ev.requests.is_empty() {
            super::requests::apply_changes(tx, &ev.requests, event_id, &batch.actor, &at, &mut event_audit)?;
        }
        let changes: Vec<String> = ev
            .changes
            .iter()
            .map(|c| {
                // Values are HR data: escaped and cut, so the chain never stores a terminal
                // escape or a multi-megabyte copy.
                let v = |v: Option<&str>| v.map_or_else(|| "∅".to_string(), tenure_core::text::quote);
                format!("{}: {} -> {}", c.attribute, v(c.from.as_deref()), v(c.to.as_deref()))
            })
            .collect();
        let mut reason = format!("event {event_id}");
        if !changes.is_empty() {
            reason.push_str(&format!("; {}", changes.join(", ")));
        }
        if ev.significant {
            reason.push_str("; security-significant");
        }
        if let Some(n) = &ev.note {
            reason.push_str(&format!("; {n}"));
        }
        event_audit
            .push(AuditEntry::new(&batch.actor, &format!("event.{}", ev.kind), "recorded").identity(id).reason(reason));
        for extra in &ev.audit {
            let mut e = extra.clone();
            e.identity.get_or_insert_with(|| id.to_string());
            e.reason = Some(format!("event {event_id}; {}", e.reason.unwrap_or_default()));
            event_audit.push(e);
        }
        for e in event_audit.drain(..) {
            chain.push(tx, &e)?;
        }
        // A new case's operations are all pending: the rule closes it at once only if it has none.
        let pending = u64::try_from(ev.ops.len()).unwrap_or(u64::MAX);
        let state = rules::case_state(&CaseCounts::from_states([(OpState::Pending, pending)], 0));
        let closed_at = (state == CaseState::Closed).then(|| at.clone());
        ins_case.execute(params![event_id, id, ev.kind.as_str(), state.as_str(), at, closed_at])?;
        let case_id = tx.last_insert_rowid();
        ids.cases += 1;
        // One record for the event's plan, naming every operation with the rules behind it:
        // the operations themselves are rows, and each gets its own records when it is applied.
        let mut plan = String::new();
        for (n, op) in ev.ops.iter().enumerate() {
            let rules = serde_json::to_string(&op.rules).unwrap_or_else(|_| "[]".into());
            let reason = format!("{{\"event\":{event_id},\"kind\":\"{}\",\"rules\":{rules}}}", ev.kind);
            ins_op.execute(params![
                case_id,
                id,
                op.target,
                op.kind.as_str(),
                op.entitlement,
                reason,
                idem_key(event_id, n),
                at,
                op.account
            ])?;
            ids.operations += 1;
            plan.push_str(if n == 0 { ": " } else { "; " });
            plan.push_str(&op.target);
            plan.push(' ');
            plan.push_str(op.kind.as_str());
            if let Some(e) = &op.entitlement {
                plan.push(' ');
                plan.push_str(e);
            }
            if !op.rules.is_empty() {
                plan.push_str(" [");
                plan.push_str(&op.rules.join(", "));
                plan.push(']');
            }
        }
        if !ev.ops.is_empty() {
            chain.push(
                tx,
                &AuditEntry::new("planner", "plan", "pending").identity(id).reason(format!(
                    "event {event_id} ({}), case {case_id}: {} operation(s){plan}",
                    ev.kind,
                    ev.ops.len()
                )),
            )?;
        }
        if let Some(h) = &ev.holdings {
            // A joiner new to the store holds nothing yet: nothing to delete.
            if !(ev.kind == EventKind::Joiner && ev.existing_id.is_none()) {
                del_acct.execute([id])?;
                del_grants.execute([id])?;
            }
            for (target, acct) in h {
                if acct.exists {
                    ins_acct.execute(params![id, target, acct.enabled, acct.name])?;
                }
                for g in &acct.grants {
                    ins_grant.execute(params![id, target, g])?;
                }
            }
        }
    }
    drop((upsert, upd_event, ins_case, ins_op, del_acct, del_grants, ins_acct, ins_grant));
    tx.pragma_update(None, "cache_size", DEFAULT_CACHE_KIB)?;
    Ok(ids)
}

/// The page cache while a batch is written (KiB, as SQLite takes a negative size), and after.
const BATCH_CACHE_KIB: i64 = -64 * 1024;
const DEFAULT_CACHE_KIB: i64 = -2000;

const APPROVAL_COLUMNS: &str = "id, kind, subject, summary, state, created_at, decided_at, decided_by, decision_reason";

fn approval_row(r: &rusqlite::Row<'_>) -> R<ApprovalRecord> {
    let summary: String = r.get(3)?;
    Ok(ApprovalRecord {
        id: r.get(0)?,
        kind: enum_col(r, 1)?,
        subject: r.get(2)?,
        summary: serde_json::from_str(&summary).unwrap_or_default(),
        state: enum_col(r, 4)?,
        created_at: r.get(5)?,
        decided_at: r.get(6)?,
        decided_by: r.get(7)?,
        decision_reason: r.get(8)?,
    })
}

pub(super) fn approvals(conn: &Connection, pending_only: bool) -> R<Vec<ApprovalRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (?1 = 0 OR state = 'pending') ORDER BY id"
    ))?;
    let mut rows = stmt.query([pending_only])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(approval_row(r)?);
    }
    Ok(out)
}

pub(super) fn approval(conn: &Connection, id: i64) -> R<ApprovalRecord> {
    conn.query_row(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"), [id], |r| Ok(approval_row(r)))
        .optional()?
        .ok_or_else(|| not_found(format!("approval {id}")))?
}

const EVENT_SELECT: &str =
    "SELECT id, import_id, source, kind, identity, received_at, changes, significant, note, state, after FROM events";

fn event_row(r: &rusqlite::Row<'_>) -> R<EventRecord> {
    let changes: String = r.get(6)?;
    Ok(EventRecord {
        id: r.get(0)?,
        import_id: r.get(1)?,
        source: r.get(2)?,
        kind: enum_col(r, 3)?,
        identity: r.get(4)?,
        received_at: r.get(5)?,
        changes: serde_json::from_str(&changes).unwrap_or_default(),
        significant: r.get(7)?,
        note: r.get(8)?,
        state: enum_col(r, 9)?,
    })
}

pub(super) fn held_events(conn: &Connection, schema: &Schema, import_id: i64) -> R<Vec<HeldEvent>> {
    let mut stmt =
        conn.prepare_cached(&format!("{EVENT_SELECT} WHERE import_id = ?1 AND state = 'held' ORDER BY id"))?;
    let mut rows = stmt.query([import_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let record = event_row(r)?;
        let after: String = r.get(10)?;
        let v: serde_json::Value = serde_json::from_str(&after).map_err(|e| corrupt(e.to_string()))?;
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("employee");
        let status = v.get("status").and_then(|k| k.as_str()).unwrap_or("active");
        let attrs = v.get("attrs").cloned().unwrap_or_default();
        let identity =
            Identity::new(&record.identity, parse_enum(kind)?, parse_enum(status)?, Attrs::from_json(schema, &attrs));
        out.push(HeldEvent { record, identity });
    }
    Ok(out)
}

pub(super) fn events(conn: &Connection, identity: &str) -> R<Vec<EventRecord>> {
    let mut stmt = conn.prepare_cached(&format!("{EVENT_SELECT} WHERE identity = ?1 ORDER BY id"))?;
    let mut rows = stmt.query([identity])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(event_row(r)?);
    }
    Ok(out)
}

pub(super) fn reject(store: &SqliteStore, id: i64, by: &str, via: Option<&str>, reason: &str) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let row: Option<(i64, String, String)> = tx
        .query_row("SELECT subject, kind, summary FROM approvals WHERE id = ?1 AND state = 'pending'", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((subject, kind, summary)) = row else {
        return Err(conflict(format!("approval {id} is not pending")));
    };
    let kind: ApprovalKind = parse_enum(&kind)?;
    tx.execute(
        "UPDATE approvals SET state = ?5, decided_at = ?2, decided_by = ?3, decision_reason = ?4 WHERE id = ?1",
        params![id, at, by, reason, ApprovalState::Rejected.as_str()],
    )?;
    let mut audit = Vec::new();
    match kind {
        ApprovalKind::Remediation => {
            // Declining a fix accepts the deviation: the held operations become exceptions.
            for c in summary_cases(&summary) {
                // A declined review revocation keeps the access (its grant never left the
                // holdings): the review's override is resolved, so planning desires the grant
                // again and nothing drifts.
                let reviews = tx.execute(
                    "UPDATE exceptions SET state = 'resolved', resolved_at = ?2, closed_by = ?3, close_reason = ?4
                     WHERE kind = ?5 AND state = 'open' AND subject IN (
                         SELECT 'review:' || i.id FROM campaign_items i JOIN operations o ON o.id = i.operation_id
                         WHERE o.case_id = ?1 AND o.state = 'held')",
                    params![
                        c,
                        at,
                        by,
                        format!("review revocation declined with approval {id}: {reason}"),
                        ExceptionKind::ManualOverride.as_str()
                    ],
                )?;
                if reviews > 0 {
                    audit.push(
                        AuditEntry::new(
                            &super::requests::actor_of(by, via.unwrap_or_default()),
                            "exception.resolved",
                            "resolved",
                        )
                        .approver(by)
                        .reason(format!(
                            "approval {id} declined: {reviews} review revocation(s) not carried out; the access stays"
                        )),
                    );
                }
                tx.execute(
                    "INSERT OR IGNORE INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
                     SELECT ?5, 'operation:' || id, case_id, identity, target, ?2, ?3, 'open', ?4
                     FROM operations WHERE case_id = ?1 AND state = 'held'",
                    params![c, by, format!("remediation declined: {reason}"), at, ExceptionKind::DeclinedFix.as_str()],
                )?;
                tx.execute(
                    "UPDATE operations SET state = ?4, note = ?2, updated_at = ?3 WHERE case_id = ?1 AND state = 'held'",
                    params![c, format!("remediation declined by {by}: {reason}"), at, OpState::Excepted.as_str()],
                )?;
                refresh_case(&tx, c, &at, &mut audit)?;
            }
        }
        ApprovalKind::Request => {
            super::requests::reject_stage(&tx, id, by, via, reason, &at, &mut audit)?;
        }
        ApprovalKind::Batch => {
            tx.execute(
                "UPDATE imports SET state = ?2 WHERE id = ?1",
                params![subject, ImportState::Rejected.as_str()],
            )?;
            tx.execute(
                "UPDATE events SET state = ?2 WHERE import_id = ?1",
                params![subject, EventState::Rejected.as_str()],
            )?;
        }
    }
    let what = if kind == ApprovalKind::Request { "request" } else { "import" };
    audit.insert(
        0,
        AuditEntry::new(&super::requests::actor_of(by, via.unwrap_or_default()), "approval.rejected", "rejected")
            .approver(by)
            .reason(format!(
                "approval {id} ({what} {subject}) rejected{}: {reason}",
                via.map(|v| format!(" by `{by}` via {v}")).unwrap_or_default()
            )),
    );
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(())
}

/// The case ids a held remediation's summary names.
pub(crate) fn summary_cases(summary: &str) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_str(summary).unwrap_or_default();
    v.get("cases")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default()
}

/// Columns in the order [`op_row`] reads them.
pub(crate) const OP_COLUMNS: &str = "id, case_id, identity, target, kind, entitlement, reason, idem_key, state, attempts, \
     next_attempt_at, last_error, created_at, updated_at, verified_at, account, note";

pub(crate) fn op_row(r: &rusqlite::Row<'_>) -> R<OpRecord> {
    let reason: String = r.get(6)?;
    Ok(OpRecord {
        id: r.get(0)?,
        case_id: r.get(1)?,
        identity: r.get(2)?,
        target: r.get(3)?,
        kind: enum_col(r, 4)?,
        entitlement: r.get(5)?,
        reason: serde_json::from_str(&reason).unwrap_or_default(),
        idem_key: r.get(7)?,
        state: enum_col(r, 8)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        verified_at: r.get(14)?,
        account: r.get(15)?,
        note: r.get(16)?,
    })
}

pub(super) fn operations(conn: &Connection, filter: &OpFilter) -> R<Vec<OpRecord>> {
    let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
    let states_json = serde_json::to_string(&states).unwrap_or_default();
    // Only the filters given, so SQLite can use the identity or case index (an `IS NULL OR`
    // disjunction would make every filtered read a scan of the whole queue).
    let mut sql =
        format!("SELECT {OP_COLUMNS} FROM operations WHERE (?2 = '[]' OR state IN (SELECT value FROM json_each(?2)))");
    // An absent filter still names its parameter, as a constant (`?1 IS NULL`).
    sql.push_str(if filter.identity.is_some() { " AND identity = ?1" } else { " AND ?1 IS NULL" });
    sql.push_str(if filter.case_id.is_some() { " AND case_id = ?3" } else { " AND ?3 IS NULL" });
    sql.push_str(" ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![filter.identity, states_json, filter.case_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(op_row(r)?);
    }
    Ok(out)
}

pub(super) fn cases(conn: &Connection, open_only: bool) -> R<Vec<CaseRecord>> {
    let mut counts: HashMap<i64, BTreeMap<OpState, i64>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT o.case_id, o.state, count(*) FROM operations o JOIN cases c ON c.id = o.case_id
             WHERE (?1 = 0 OR c.state != 'closed') GROUP BY o.case_id, o.state",
        )?;
        let mut rows = stmt.query([open_only])?;
        while let Some(r) = rows.next()? {
            counts.entry(r.get(0)?).or_default().insert(enum_col(r, 1)?, r.get(2)?);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, event_id, identity, kind, state, opened_at, closed_at, revoke_ms FROM cases
         WHERE (?1 = 0 OR state != 'closed') ORDER BY id",
    )?;
    let mut rows = stmt.query([open_only])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        out.push(CaseRecord {
            id,
            event_id: r.get(1)?,
            identity: r.get(2)?,
            kind: enum_col(r, 3)?,
            state: enum_col(r, 4)?,
            opened_at: r.get(5)?,
            closed_at: r.get(6)?,
            revoke_ms: r.get(7)?,
            ops: counts.remove(&id).unwrap_or_default(),
        });
    }
    Ok(out)
}

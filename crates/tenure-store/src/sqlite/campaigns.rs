//! Certification campaigns' tables (migration 0014): campaigns, review items, decisions,
//! reassignments and timeouts, and the revocations that carry out revoke decisions (see
//! [`crate::campaigns`]).

use super::audit::append;
use super::lifecycle::refresh_case;
use super::queue::insert_case;
use super::{R, SqliteStore, conflict, count, enum_col, not_found};
use crate::campaigns::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::audit::AuditEntry;
use tenure_core::{
    ApprovalKind, ApprovalState, CampaignState, Entitlement, ExceptionKind, ExceptionState, OpKind, OpState,
    ReviewDecision,
};

const CAMPAIGN_COLUMNS: &str =
    "c.id, c.name, c.scope, c.reviewer, c.due_at, c.escalate_after_secs, c.on_timeout, c.state,
    c.created_by, c.created_at, c.closed_at, c.closed_by, c.timed_out_at, c.reminded_at,
    (SELECT count(*) FROM campaign_items i WHERE i.campaign_id = c.id),
    (SELECT count(*) FROM campaign_items i WHERE i.campaign_id = c.id AND i.decision IS NOT NULL)";

fn campaign_row(r: &rusqlite::Row<'_>) -> R<CampaignRecord> {
    let escalate: Option<i64> = r.get(5)?;
    Ok(CampaignRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        scope: r.get(2)?,
        reviewer: r.get(3)?,
        due_at: r.get(4)?,
        escalate_after_secs: escalate.and_then(|s| u64::try_from(s).ok()),
        on_timeout: enum_col(r, 6)?,
        state: enum_col(r, 7)?,
        created_by: r.get(8)?,
        created_at: r.get(9)?,
        closed_at: r.get(10)?,
        closed_by: r.get(11)?,
        timed_out_at: r.get(12)?,
        reminded_at: r.get(13)?,
        items: count(r.get(14)?),
        decided: count(r.get(15)?),
    })
}

const ITEM_COLUMNS: &str = "i.id, i.campaign_id, c.state, i.identity, i.target, i.entitlement, i.why, i.reviewer,
    i.decision, i.justification, i.decided_at, i.decided_by, i.note, i.escalated_at, i.operation_id, o.state,
    o.verified_at, i.applied_by, i.applied_at, i.not_held";

const ITEM_FROM: &str = "FROM campaign_items i JOIN campaigns c ON c.id = i.campaign_id
    LEFT JOIN operations o ON o.id = i.operation_id";

fn item_row(r: &rusqlite::Row<'_>) -> R<ItemRecord> {
    let why: String = r.get(6)?;
    let decision: Option<String> = r.get(8)?;
    let op_state: Option<String> = r.get(15)?;
    Ok(ItemRecord {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        campaign_state: enum_col(r, 2)?,
        identity: r.get(3)?,
        target: r.get(4)?,
        entitlement: r.get(5)?,
        why: serde_json::from_str(&why).map_err(|e| super::corrupt(format!("review item `why`: {e}")))?,
        reviewer: r.get(7)?,
        decision: decision.as_deref().map(super::parse_enum).transpose()?,
        justification: r.get(9)?,
        decided_at: r.get(10)?,
        decided_by: r.get(11)?,
        note: r.get(12)?,
        escalated_at: r.get(13)?,
        operation_id: r.get(14)?,
        operation_state: op_state.as_deref().map(super::parse_enum).transpose()?,
        verified_at: r.get(16)?,
        applied_by: r.get(17)?,
        applied_at: r.get(18)?,
        not_held: r.get(19)?,
    })
}

fn campaign_in(conn: &Connection, id: i64) -> R<CampaignRecord> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns c WHERE c.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => campaign_row(r),
        None => Err(not_found(format!("campaign {id}"))),
    }
}

fn item_in(conn: &Connection, id: i64) -> R<ItemRecord> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE i.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => item_row(r),
        None => Err(not_found(format!("review item {id}"))),
    }
}

pub(super) fn create(store: &SqliteStore, c: &NewCampaign) -> R<CampaignRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    tx.execute(
        "INSERT INTO campaigns (name, scope, reviewer, due_at, escalate_after_secs, on_timeout, state, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            c.name,
            c.scope,
            c.reviewer,
            c.due_at,
            c.escalate_after_secs.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            c.on_timeout.as_str(),
            CampaignState::Open.as_str(),
            c.created_by,
            at
        ],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO campaign_items (campaign_id, identity, target, entitlement, why, reviewer, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for i in &c.items {
            let why = serde_json::to_string(&i.why).unwrap_or_else(|_| "[]".into());
            ins.execute(params![id, i.identity, i.target, i.entitlement, why, i.reviewer, i.note])?;
        }
    }
    if let Some(event) = c.mover_event {
        let fresh = tx.execute(
            "INSERT INTO mover_reviews (event_id, identity, campaign_id, checked_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (event_id) DO NOTHING",
            params![event, c.items.first().map(|i| i.identity.as_str()).unwrap_or_default(), id, at],
        )?;
        if fresh == 0 {
            return Err(conflict(format!("mover event {event} was checked for a micro-review already")));
        }
    }
    let reviewers: BTreeSet<&str> = c.items.iter().map(|i| i.reviewer.as_str()).collect();
    append(
        &tx,
        &[AuditEntry::new(&c.actor, "campaign.create", "open").reason(format!(
            "campaign {id} `{}`: scope {}, reviewer {}, due {}, on_timeout {}{}; {} item(s) for {} reviewer(s)",
            c.name,
            c.scope,
            c.reviewer,
            c.due_at,
            c.on_timeout,
            c.escalate_after_secs.map(|s| format!(", escalate after {s}s")).unwrap_or_default(),
            c.items.len(),
            reviewers.len()
        ))],
        &at,
    )?;
    let out = campaign_in(&tx, id)?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn unchecked_movers(conn: &Connection) -> R<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.identity FROM events e
         WHERE e.kind = 'mover' AND e.significant = 1 AND e.state = 'applied'
           AND e.received_at >= (SELECT applied_at FROM schema_migrations WHERE version = 14)
           AND NOT EXISTS (SELECT 1 FROM mover_reviews m WHERE m.event_id = e.id)
         ORDER BY e.id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn movers_checked(store: &SqliteStore, movers: &[(i64, String)]) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    for (event, identity) in movers {
        tx.execute(
            "INSERT INTO mover_reviews (event_id, identity, campaign_id, checked_at) VALUES (?1, ?2, NULL, ?3)
             ON CONFLICT (event_id) DO NOTHING",
            params![event, identity, at],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn campaigns(conn: &Connection) -> R<Vec<CampaignRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns c ORDER BY c.id"))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(campaign_row(r)?);
    }
    Ok(out)
}

pub(super) fn campaign(conn: &Connection, id: i64) -> R<CampaignRecord> {
    campaign_in(conn, id)
}

pub(super) fn items(conn: &Connection, f: &ItemFilter) -> R<Vec<ItemRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} {ITEM_FROM}
         WHERE (?1 IS NULL OR i.campaign_id = ?1) AND (?2 IS NULL OR i.reviewer = ?2)
           AND (?3 = 0 OR (i.decision IS NULL AND c.state = 'open'))
         ORDER BY i.id"
    ))?;
    let mut rows = stmt.query(params![f.campaign, f.reviewer, f.open_only])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(item_row(r)?);
    }
    Ok(out)
}

pub(super) fn item(conn: &Connection, id: i64) -> R<ItemRecord> {
    item_in(conn, id)
}

/// Checks that `item` is undecided in an open campaign and assigned to `reviewer`.
fn open_item(tx: &Transaction<'_>, id: i64, reviewer: &str) -> R<ItemRecord> {
    let item = item_in(tx, id)?;
    if item.campaign_state != CampaignState::Open {
        return Err(conflict(format!("campaign {} is closed: review item {id} cannot change", item.campaign_id)));
    }
    if let Some(d) = item.decision {
        return Err(conflict(format!(
            "review item {id} was decided already ({d} by {} at {})",
            item.decided_by.as_deref().unwrap_or("?"),
            item.decided_at.as_deref().unwrap_or("?")
        )));
    }
    if item.reviewer != reviewer {
        return Err(conflict(format!("review item {id} is assigned to `{}` now", item.reviewer)));
    }
    Ok(item)
}

fn decide_in(tx: &Transaction<'_>, d: &ItemDecision, at: &str, audit: &mut Vec<AuditEntry>) -> R<()> {
    let item = open_item(tx, d.item, &d.reviewer)?;
    // Nobody decides on their own access, whoever the item names as its reviewer (names
    // compared as usernames are kept: NFKC, case-folded).
    let key = |n: &str| tenure_core::text::fold(&tenure_core::text::nfkc(n));
    if key(&d.by) == key(&item.identity) {
        return Err(conflict(format!(
            "review item {} is `{}`'s own access: nobody reviews their own access",
            d.item, d.by
        )));
    }
    tx.execute(
        "UPDATE campaign_items SET decision = ?2, justification = ?3, decided_at = ?4, decided_by = ?5 WHERE id = ?1",
        params![d.item, d.decision.as_str(), d.justification, at, d.by],
    )?;
    audit.push(
        AuditEntry::new(&d.actor, &format!("review.{}", d.decision), d.decision.as_str())
            .identity(&item.identity)
            .target(&item.target)
            .entitlement(Some(&item.entitlement))
            .approver(&d.by)
            .reason(format!("campaign {} item {}: {}", item.campaign_id, item.id, d.justification)),
    );
    Ok(())
}

pub(super) fn decide(store: &SqliteStore, d: &ItemDecision) -> R<ItemRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut audit = Vec::new();
    decide_in(&tx, d, &at, &mut audit)?;
    append(&tx, &audit, &at)?;
    let out = item_in(&tx, d.item)?;
    tx.commit()?;
    Ok(out)
}

fn reassign_in(tx: &Transaction<'_>, r: &Reassignment, actor: &str, at: &str, audit: &mut Vec<AuditEntry>) -> R<()> {
    let item = open_item(tx, r.item, &r.from)?;
    let line = format!("{at} {} -> {}: {}", r.from, r.to, r.note);
    let note = match &item.note {
        Some(n) => format!("{n}\n{line}"),
        None => line,
    };
    if r.escalation {
        tx.execute(
            "UPDATE campaign_items SET reviewer = ?2, note = ?3, escalated_at = coalesce(escalated_at, ?4) WHERE id = ?1",
            params![r.item, r.to, note, at],
        )?;
    } else {
        tx.execute("UPDATE campaign_items SET reviewer = ?2, note = ?3 WHERE id = ?1", params![r.item, r.to, note])?;
    }
    let (action, outcome) =
        if r.escalation { ("review.escalate", "escalated") } else { ("review.reassign", "reassigned") };
    audit.push(
        AuditEntry::new(actor, action, outcome)
            .identity(&item.identity)
            .target(&item.target)
            .entitlement(Some(&item.entitlement))
            .reason(format!(
                "campaign {} item {}: from `{}` to `{}`: {}",
                item.campaign_id, item.id, r.from, r.to, r.note
            )),
    );
    Ok(())
}

pub(super) fn reassign(store: &SqliteStore, rs: &[Reassignment], actor: &str) -> R<Vec<ItemRecord>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut audit = Vec::new();
    for r in rs {
        reassign_in(&tx, r, actor, &at, &mut audit)?;
    }
    append(&tx, &audit, &at)?;
    let out = rs.iter().map(|r| item_in(&tx, r.item)).collect::<R<Vec<_>>>()?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn time_out(store: &SqliteStore, t: &Timeout, actor: &str) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let c = campaign_in(&tx, t.campaign)?;
    if c.state != CampaignState::Open {
        return Err(conflict(format!("campaign {} is closed", c.id)));
    }
    if c.timed_out_at.is_some() {
        return Err(conflict(format!("campaign {} timed out already", c.id)));
    }
    let mut audit = vec![AuditEntry::new(actor, "campaign.timeout", c.on_timeout.as_str()).reason(format!(
        "campaign {} `{}` reached its due date {}: on_timeout {} for {} unreviewed item(s)",
        c.id,
        c.name,
        c.due_at,
        c.on_timeout,
        t.decisions.len() + t.escalations.len()
    ))];
    for d in &t.decisions {
        decide_in(&tx, d, &at, &mut audit)?;
    }
    for r in &t.escalations {
        reassign_in(&tx, r, actor, &at, &mut audit)?;
    }
    tx.execute("UPDATE campaigns SET timed_out_at = ?2 WHERE id = ?1", params![c.id, at])?;
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn remind(store: &SqliteStore, id: i64, reviewers: &[(String, usize)], actor: &str) -> R<()> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let c = campaign_in(&tx, id)?;
    if c.state != CampaignState::Open || c.reminded_at.is_some() {
        return Err(conflict(format!("campaign {id} is closed or its reviewers were reminded already")));
    }
    tx.execute("UPDATE campaigns SET reminded_at = ?2 WHERE id = ?1", params![id, at])?;
    let audit: Vec<AuditEntry> = reviewers
        .iter()
        .map(|(reviewer, n)| {
            AuditEntry::new(actor, "campaign.reminder", "sent")
                .approver(reviewer)
                .reason(format!("campaign {id} `{}`: {n} item(s) for `{reviewer}` to review by {}", c.name, c.due_at))
        })
        .collect();
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn close(store: &SqliteStore, id: i64, by: &str, actor: &str) -> R<CampaignRecord> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let c = campaign_in(&tx, id)?;
    if c.state != CampaignState::Open {
        return Err(conflict(format!(
            "campaign {id} is closed already (by {} at {})",
            c.closed_by.as_deref().unwrap_or("?"),
            c.closed_at.as_deref().unwrap_or("?")
        )));
    }
    tx.execute(
        "UPDATE campaigns SET state = ?2, closed_at = ?3, closed_by = ?4 WHERE id = ?1",
        params![id, CampaignState::Closed.as_str(), at, by],
    )?;
    append(
        &tx,
        &[AuditEntry::new(actor, "campaign.close", "closed").approver(by).reason(format!(
            "campaign {id} `{}`: {} of {} item(s) decided, {} left unreviewed",
            c.name,
            c.decided,
            c.items,
            c.items.saturating_sub(c.decided)
        ))],
        &at,
    )?;
    let out = campaign_in(&tx, id)?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn unplanned(conn: &Connection) -> R<Vec<ItemRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} {ITEM_FROM}
         WHERE i.decision = 'revoke' AND i.operation_id IS NULL AND i.not_held = 0 ORDER BY i.id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(item_row(r)?);
    }
    Ok(out)
}

pub(super) fn recent(conn: &Connection, since: &str) -> R<BTreeSet<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT identity FROM campaign_items WHERE operation_id IS NOT NULL AND applied_at >= ?1",
    )?;
    let rows = stmt.query_map([since], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Checks that item `id` is a revoke decision nothing carried out yet.
fn unplanned_item(tx: &Transaction<'_>, id: i64) -> R<ItemRecord> {
    let item = item_in(tx, id)?;
    if item.decision != Some(ReviewDecision::Revoke) || item.operation_id.is_some() || item.not_held {
        return Err(conflict(format!("review item {id} is no longer a revoke decision waiting to be carried out")));
    }
    Ok(item)
}

pub(super) fn plan(store: &SqliteStore, r: &ReviewRevocations) -> R<RevocationIds> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut audit = Vec::new();
    let mut out = RevocationIds::default();
    for &id in &r.not_held {
        let item = unplanned_item(&tx, id)?;
        tx.execute(
            "UPDATE campaign_items SET not_held = 1, applied_by = ?2, applied_at = ?3 WHERE id = ?1",
            params![id, r.actor, at],
        )?;
        audit.push(
            AuditEntry::new(&r.actor, "review.not_held", "not_held")
                .identity(&item.identity)
                .target(&item.target)
                .entitlement(Some(&item.entitlement))
                .reason(format!(
                    "campaign {} item {id}: the access was no longer held; nothing to revoke",
                    item.campaign_id
                )),
        );
    }
    let state = if r.held.is_some() { OpState::Held } else { OpState::Pending };
    let mut by_identity: BTreeMap<&str, Vec<&ReviewRevocation>> = BTreeMap::new();
    for v in &r.revoke {
        by_identity.entry(v.identity.as_str()).or_default().push(v);
    }
    for (identity, revs) in by_identity {
        let items: Vec<String> = revs.iter().map(|v| v.item.to_string()).collect();
        let note = format!("certification review item(s) {}", items.join(", "));
        let (event_id, case_id) = insert_case(&tx, "campaign", identity, &note, &at)?;
        out.cases.push(case_id);
        for v in revs {
            let item = unplanned_item(&tx, v.item)?;
            if (item.identity.as_str(), item.target.as_str(), item.entitlement.as_str())
                != (v.identity.as_str(), v.target.as_str(), v.entitlement.as_str())
            {
                return Err(conflict(format!("review item {} is about other access", v.item)));
            }
            // A held revocation leaves the grant in the holdings until its approval releases it
            // (`release_remediation`); a rejected one never removes it.
            let removed = if state == OpState::Held {
                tx.query_row(
                    "SELECT count(*) FROM grants WHERE identity = ?1 AND target = ?2 AND entitlement = ?3",
                    params![v.identity, v.target, v.entitlement],
                    |r| r.get::<_, i64>(0),
                )?
            } else {
                i64::try_from(tx.execute(
                    "DELETE FROM grants WHERE identity = ?1 AND target = ?2 AND entitlement = ?3",
                    params![v.identity, v.target, v.entitlement],
                )?)
                .unwrap_or(1)
            };
            if removed == 0 {
                return Err(conflict(format!(
                    "`{}` no longer holds `{}:{}`: review item {} has nothing to revoke",
                    v.identity, v.target, v.entitlement, v.item
                )));
            }
            let reason = serde_json::json!({
                "event": event_id, "kind": "update", "rules": v.rules, "review": v.item, "finding": v.detail,
            });
            tx.execute(
                "INSERT INTO operations (case_id, identity, target, kind, entitlement, reason, idem_key, state,
                                         created_at, updated_at, account)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                params![
                    case_id,
                    v.identity,
                    v.target,
                    OpKind::Revoke.as_str(),
                    v.entitlement,
                    reason.to_string(),
                    format!("review-{}", v.item),
                    state.as_str(),
                    at,
                    v.account
                ],
            )?;
            let op = tx.last_insert_rowid();
            out.operations += 1;
            tx.execute(
                "UPDATE campaign_items SET operation_id = ?2, applied_by = ?3, applied_at = ?4 WHERE id = ?1",
                params![v.item, op, r.actor, at],
            )?;
            // The deviation from policy, on the register until someone resolves it.
            tx.execute(
                "INSERT INTO exceptions (kind, subject, case_id, identity, target, owner, reason, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (kind, subject) DO NOTHING",
                params![
                    ExceptionKind::ManualOverride.as_str(),
                    format!("review:{}", v.item),
                    case_id,
                    v.identity,
                    v.target,
                    v.owner,
                    v.detail,
                    ExceptionState::Open.as_str(),
                    at
                ],
            )?;
            audit.push(
                AuditEntry::new(&r.actor, "plan.revoke", state.as_str())
                    .identity(&v.identity)
                    .target(&v.target)
                    .entitlement(Some(&v.entitlement))
                    .reason(format!("event {event_id} (review item {}): {}", v.item, v.detail)),
            );
            audit.push(
                AuditEntry::new(&r.actor, "exception.open", "open")
                    .identity(&v.identity)
                    .target(&v.target)
                    .entitlement(Some(&v.entitlement))
                    .reason(format!("manual_override review:{}: {}", v.item, v.detail)),
            );
        }
        refresh_case(&tx, case_id, &at, &mut audit)?;
    }
    if let Some(reason) = r.held.as_ref().filter(|_| out.operations > 0) {
        let summary = serde_json::json!({
            "source": "campaign", "reason": reason, "operations": out.operations, "cases": out.cases,
        });
        tx.execute(
            "INSERT INTO approvals (kind, subject, summary, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                ApprovalKind::Remediation.as_str(),
                out.cases.first().copied().unwrap_or_default(),
                summary.to_string(),
                ApprovalState::Pending.as_str(),
                at
            ],
        )?;
        let id = tx.last_insert_rowid();
        out.approval_id = Some(id);
        audit.push(AuditEntry::new(&r.actor, "remediation.held", "held").reason(format!("approval {id}: {reason}")));
    }
    append(&tx, &audit, &at)?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn overrides(conn: &Connection, identities: Option<&[&str]>) -> R<HashMap<String, BTreeSet<Entitlement>>> {
    let base = "SELECT i.identity, i.target, i.entitlement FROM campaign_items i
         WHERE i.decision = 'revoke' AND i.operation_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.id = i.operation_id AND o.state = 'held')
           AND NOT EXISTS (SELECT 1 FROM exceptions x WHERE x.kind = 'manual_override'
                           AND x.subject = 'review:' || i.id AND x.state = 'resolved')";
    let mut all = conn.prepare_cached(base)?;
    let mut one = conn.prepare_cached(&format!("{base} AND i.identity = ?1"))?;
    let mut out: HashMap<String, BTreeSet<Entitlement>> = HashMap::new();
    super::rows_for_identities(&mut all, &mut one, identities, |r| {
        out.entry(r.get(0)?).or_default().insert(Entitlement { target: r.get(1)?, name: r.get(2)? });
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn held_deciders(conn: &Connection, approval_id: i64) -> R<Vec<(i64, String)>> {
    let summary: Option<String> = conn
        .query_row(
            "SELECT summary FROM approvals WHERE id = ?1 AND kind = ?2",
            params![approval_id, ApprovalKind::Remediation.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.decided_by FROM campaign_items i JOIN operations o ON o.id = i.operation_id
         WHERE o.case_id = ?1 AND o.state = 'held' AND i.decided_by IS NOT NULL ORDER BY i.id",
    )?;
    let mut out = Vec::new();
    for c in summary.as_deref().map(super::lifecycle::summary_cases).unwrap_or_default() {
        let rows = stmt.query_map([c], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            out.push(row?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

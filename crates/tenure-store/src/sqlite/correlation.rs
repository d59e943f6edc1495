//! The correlation tables (`correlation_baselines`, `correlation_links`, `correlation_cases`,
//! migration 0012) in SQLite.

use super::{R, SqliteStore, audit, conflict, corrupt, enum_col, not_found, sql_int};
use crate::correlation::{
    Baseline, Candidate, CaseIn, CorrelationCase, Decision, LateMatches, LinkIn, LinkRecord, RefusedAdoption,
    Unmatched, Verdict,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tenure_core::CorrelationState;
use tenure_core::audit::AuditEntry;
use tenure_core::text;

const CASE_COLUMNS: &str = "id, target, account, external_id, email, enabled, grants, candidates, why, state, \
                            created_at, decided_at, decided_by, identity, reason";
const LINK_COLUMNS: &str =
    "target, account, identity, rule, confidence, enabled, grants, case_id, linked_by, linked_at";

fn json_col<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> R<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| corrupt(format!("correlation column {i}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> R<String> {
    serde_json::to_string(v).map_err(|e| corrupt(format!("encoding a correlation row: {e}")))
}

fn case_row(r: &rusqlite::Row<'_>) -> R<CorrelationCase> {
    Ok(CorrelationCase {
        id: r.get(0)?,
        target: r.get(1)?,
        account: r.get(2)?,
        external_id: r.get(3)?,
        email: r.get(4)?,
        enabled: r.get(5)?,
        grants: json_col(r, 6)?,
        candidates: json_col(r, 7)?,
        why: r.get(8)?,
        state: enum_col(r, 9)?,
        created_at: r.get(10)?,
        decided_at: r.get(11)?,
        decided_by: r.get(12)?,
        identity: r.get(13)?,
        reason: r.get(14)?,
    })
}

fn link_row(r: &rusqlite::Row<'_>) -> R<LinkRecord> {
    Ok(LinkRecord {
        target: r.get(0)?,
        account: r.get(1)?,
        identity: r.get(2)?,
        rule: r.get(3)?,
        confidence: r.get(4)?,
        enabled: r.get(5)?,
        grants: json_col(r, 6)?,
        case_id: r.get(7)?,
        linked_by: r.get(8)?,
        linked_at: r.get(9)?,
    })
}

/// A list of candidates for an audit reason: `E1 (username 0.95), E2 (name 0.60)`.
pub(crate) fn shown(candidates: &[Candidate]) -> String {
    let c: Vec<String> =
        candidates.iter().map(|c| format!("{} ({} {:.2})", c.identity, c.rule, c.confidence)).collect();
    if c.is_empty() { "none".into() } else { c.join(", ") }
}

pub(super) fn baselines(conn: &Connection) -> R<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT target, at FROM correlation_baselines ORDER BY target")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `(target, account)` or `(target, identity)` is linked already.
fn linked(tx: &Transaction<'_>, target: &str, account: &str, identity: &str) -> R<bool> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM correlation_links WHERE target = ?1 AND (account = ?2 OR identity = ?3)",
            params![target, account, identity],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

pub(super) fn record_baseline(store: &SqliteStore, b: &Baseline<'_>) -> R<Vec<i64>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let ids = baseline_in(&tx, &at, b)?;
    tx.commit()?;
    Ok(ids)
}

/// Writes a batch's correlation ([`crate::Batch::correlation`]) inside the batch's
/// transaction, as its actor; the new cases' ids per entry.
pub(super) fn write_in_batch(
    tx: &Transaction<'_>,
    at: &str,
    actor: &str,
    entries: &[crate::correlation::CorrelationIn],
) -> R<Vec<Vec<i64>>> {
    let mut out = Vec::with_capacity(entries.len());
    for c in entries {
        out.push(match c.baseline {
            Some(accounts) => baseline_in(
                tx,
                at,
                &Baseline {
                    target: &c.target,
                    accounts,
                    links: &c.links,
                    cases: &c.cases,
                    unmatched: &c.unmatched,
                    actor,
                },
            )?,
            None => late_in(tx, at, &LateMatches { target: &c.target, links: &c.links, cases: &c.cases, actor })?,
        });
    }
    Ok(out)
}

fn baseline_in(tx: &Transaction<'_>, at: &str, b: &Baseline<'_>) -> R<Vec<i64>> {
    let at = at.to_string();
    let done: Option<String> =
        tx.query_row("SELECT at FROM correlation_baselines WHERE target = ?1", [b.target], |r| r.get(0)).optional()?;
    if let Some(when) = done {
        return Err(conflict(format!("the accounts of target `{}` were correlated already, at {when}", b.target)));
    }
    tx.execute(
        "INSERT INTO correlation_baselines (target, at, accounts, actor) VALUES (?1, ?2, ?3, ?4)",
        params![b.target, at, sql_int(b.accounts), b.actor],
    )?;
    let mut entries = Vec::with_capacity(b.links.len() + b.cases.len() + 1);
    entries.push(AuditEntry::new(b.actor, "correlation.baseline", "recorded").target(b.target).reason(format!(
        "{} existing account(s) read: {} linked by rule, {} left as correlation cases for a person, {} matched nobody",
        b.accounts,
        b.links.len(),
        b.cases.len(),
        b.unmatched.len()
    )));
    for u in b.unmatched {
        tx.execute(
            "INSERT INTO correlation_unmatched (target, account, external_id, email, enabled, grants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![b.target, u.account, u.external_id, u.email, u.enabled, to_json(&u.grants)?],
        )?;
    }
    let ids = write_matches(tx, b.target, b.links, b.cases, b.actor, &at, &mut entries)?;
    audit::append(tx, &entries, &at)?;
    Ok(ids)
}

pub(super) fn record_late(store: &SqliteStore, m: &LateMatches<'_>) -> R<Vec<i64>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let ids = late_in(&tx, &at, m)?;
    tx.commit()?;
    Ok(ids)
}

fn late_in(tx: &Transaction<'_>, at: &str, m: &LateMatches<'_>) -> R<Vec<i64>> {
    let at = at.to_string();
    for account in m.links.iter().map(|l| &l.account).chain(m.cases.iter().map(|c| &c.account)) {
        let n = tx.execute(
            "DELETE FROM correlation_unmatched WHERE target = ?1 AND account = ?2",
            params![m.target, account],
        )?;
        if n != 1 {
            return Err(conflict(format!(
                "account `{}` in target `{}` is no longer an unmatched account",
                text::quote(account),
                m.target
            )));
        }
    }
    let mut entries = Vec::new();
    let ids = write_matches(tx, m.target, m.links, m.cases, m.actor, &at, &mut entries)?;
    audit::append(tx, &entries, &at)?;
    Ok(ids)
}

pub(super) fn unmatched(conn: &Connection) -> R<Vec<(String, Unmatched)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT target, account, external_id, email, enabled, grants FROM correlation_unmatched ORDER BY target, account",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((|| -> R<(String, Unmatched)> {
            Ok((
                r.get(0)?,
                Unmatched {
                    account: r.get(1)?,
                    external_id: r.get(2)?,
                    email: r.get(3)?,
                    enabled: r.get(4)?,
                    grants: json_col(r, 5)?,
                },
            ))
        })())
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

/// Inserts `links` and `cases` of `target`, appending their audit entries; the cases' ids.
fn write_matches(
    tx: &Transaction<'_>,
    target: &str,
    links: &[LinkIn],
    cases: &[CaseIn],
    actor: &str,
    at: &str,
    entries: &mut Vec<AuditEntry>,
) -> R<Vec<i64>> {
    let b = Baseline { target, accounts: 0, links, cases, unmatched: &[], actor };
    for l in b.links {
        if linked(tx, b.target, &l.account, &l.identity)? {
            return Err(conflict(format!(
                "account `{}` or identity `{}` is linked in target `{}` already",
                text::quote(&l.account),
                l.identity,
                b.target
            )));
        }
        tx.execute(
            "INSERT INTO correlation_links (target, account, identity, rule, confidence, enabled, grants, case_id,
                                            linked_by, linked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9)",
            params![b.target, l.account, l.identity, l.rule, l.confidence, l.enabled, to_json(&l.grants)?, b.actor, at],
        )?;
        entries.push(
            AuditEntry::new(b.actor, "correlation.linked", "linked").identity(&l.identity).target(b.target).reason(
                format!(
                    "account `{}` linked by rule `{}` (confidence {:.2})",
                    text::quote(&l.account),
                    l.rule,
                    l.confidence
                ),
            ),
        );
    }
    let mut ids = Vec::with_capacity(b.cases.len());
    for c in b.cases {
        let id = insert_case(tx, b.target, c, at)?;
        ids.push(id);
        entries.push(AuditEntry::new(b.actor, "correlation.case_opened", "open").target(b.target).reason(format!(
            "correlation case {id}: account `{}`: {}; candidates: {}",
            text::quote(&c.account),
            c.why,
            shown(&c.candidates)
        )));
    }
    Ok(ids)
}

pub(super) fn links(conn: &Connection, target: Option<&str>) -> R<Vec<LinkRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM correlation_links WHERE ?1 IS NULL OR target = ?1 ORDER BY target, account"
    ))?;
    let rows = stmt.query_map([target], |r| Ok(link_row(r)))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

pub(super) fn cases(conn: &Connection, open_only: bool) -> R<Vec<CorrelationCase>> {
    let filter = if open_only { "WHERE state = 'open'" } else { "" };
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM correlation_cases {filter} ORDER BY id"))?;
    let rows = stmt.query_map([], |r| Ok(case_row(r)))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

fn case_in(conn: &Connection, id: i64) -> R<CorrelationCase> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM correlation_cases WHERE id = ?1"))?;
    stmt.query_row([id], |r| Ok(case_row(r)))
        .optional()?
        .transpose()?
        .ok_or_else(|| not_found(format!("no correlation case {id}")))
}

pub(super) fn case(conn: &Connection, id: i64) -> R<CorrelationCase> {
    case_in(conn, id)
}

pub(super) fn decide(store: &SqliteStore, d: &Decision<'_>) -> R<CorrelationCase> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let case = case_in(&tx, d.case_id)?;
    if case.state != CorrelationState::Open {
        return Err(conflict(format!(
            "correlation case {} was decided already ({} by {} at {})",
            case.id,
            case.state,
            case.decided_by.as_deref().unwrap_or("?"),
            case.decided_at.as_deref().unwrap_or("?")
        )));
    }
    let actor = d.actor;
    let (state, identity) = match &d.verdict {
        Verdict::Link { identity } => {
            if linked(&tx, &case.target, &case.account, identity)? {
                return Err(conflict(format!(
                    "identity `{identity}` already has a linked account in target `{}`",
                    case.target
                )));
            }
            tx.execute(
                "INSERT INTO correlation_links (target, account, identity, rule, confidence, enabled, grants,
                                                case_id, linked_by, linked_at)
                 VALUES (?1, ?2, ?3, 'person', 1.0, ?4, ?5, ?6, ?7, ?8)",
                params![case.target, case.account, identity, case.enabled, to_json(&case.grants)?, case.id, actor, at],
            )?;
            (CorrelationState::Linked, Some(identity.as_str()))
        }
        Verdict::Orphan => (CorrelationState::Orphaned, None),
    };
    tx.execute(
        "UPDATE correlation_cases SET state = ?1, decided_at = ?2, decided_by = ?3, identity = ?4, reason = ?5
         WHERE id = ?6 AND state = 'open'",
        params![state.as_str(), at, d.by, identity, d.reason, case.id],
    )?;
    let mut entry = AuditEntry::new(actor, "correlation.decided", state.as_str())
        .target(&case.target)
        .approver(d.by)
        .reason(d.detail.clone());
    if let Some(i) = identity {
        entry = entry.identity(i);
    }
    audit::append(&tx, &[entry], &at)?;
    let out = case_in(&tx, case.id)?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn refuse_adoption(store: &SqliteStore, r: &RefusedAdoption<'_>) -> R<Option<i64>> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let at = store.now();
    let mut entries = Vec::new();
    let finished = crate::Finished {
        op: r.op,
        state: tenure_core::OpState::Cancelled,
        error: None,
        next_attempt_at: None,
        note: Some(r.note.clone()),
        audit: r.audit.clone(),
    };
    let Some(case_id) = super::queue::finish_one(&tx, &finished, r.owner, &at, &mut entries)? else {
        return Ok(None);
    };
    let mut lifecycle_cases = std::collections::BTreeSet::from([case_id]);
    let others: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, case_id FROM operations WHERE identity = ?1 AND target = ?2 AND id != ?3
               AND (state IN ('pending', 'held') OR (state = 'running' AND claimed_by = ?4)) ORDER BY id",
        )?;
        stmt.query_map(params![r.identity, r.target, r.op, r.owner], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (op, case) in &others {
        tx.execute(
            "UPDATE operations SET state = 'cancelled', note = ?2, updated_at = ?3, claimed_by = NULL,
                    claimed_until = NULL
             WHERE id = ?1",
            params![op, r.note, at],
        )?;
        lifecycle_cases.insert(*case);
    }
    if !others.is_empty() {
        let ids: Vec<String> = others.iter().map(|(op, _)| op.to_string()).collect();
        entries.push(
            AuditEntry::new("executor", "apply.cancelled", "cancelled")
                .identity(r.identity)
                .target(r.target)
                .reason(format!("operation(s) {} cancelled with operation {}: {}", ids.join(", "), r.op, r.note)),
        );
    }
    tx.execute("DELETE FROM accounts WHERE identity = ?1 AND target = ?2", params![r.identity, r.target])?;
    tx.execute("DELETE FROM grants WHERE identity = ?1 AND target = ?2", params![r.identity, r.target])?;
    tx.execute(
        "DELETE FROM correlation_unmatched WHERE target = ?1 AND account = ?2",
        params![r.target, r.case.account],
    )?;
    let c = &r.case;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM correlation_cases WHERE target = ?1 AND account = ?2 AND state = ?3",
            params![r.target, c.account, CorrelationState::Open.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            let id = insert_case(&tx, r.target, c, &at)?;
            entries.push(
                AuditEntry::new("executor", "correlation.case_opened", "open")
                    .identity(r.identity)
                    .target(r.target)
                    .reason(format!(
                        "correlation case {id}: account `{}`: {}; candidates: {}",
                        text::quote(&c.account),
                        c.why,
                        shown(&c.candidates)
                    )),
            );
            id
        }
    };
    for case in lifecycle_cases {
        super::lifecycle::refresh_case(&tx, case, &at, &mut entries)?;
    }
    audit::append(&tx, &entries, &at)?;
    tx.commit()?;
    Ok(Some(id))
}

/// Opens a correlation case for `c` on `target` at `at`; its id.
fn insert_case(tx: &Transaction<'_>, target: &str, c: &CaseIn, at: &str) -> R<i64> {
    tx.execute(
        "INSERT INTO correlation_cases (target, account, external_id, email, enabled, grants, candidates, why,
                                        state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            target,
            c.account,
            c.external_id,
            c.email,
            c.enabled,
            to_json(&c.grants)?,
            to_json(&c.candidates)?,
            c.why,
            CorrelationState::Open.as_str(),
            at
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

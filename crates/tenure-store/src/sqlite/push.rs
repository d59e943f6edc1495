//! The push journal and the lookups behind [`crate::Pushes`], on SQLite.

use super::lifecycle::identity_from;
use super::{R, SqliteStore, conflict};
use crate::push::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};
use tenure_core::{Identity, Schema};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

const ENTRY: &str =
    "SELECT id, source, delivery, actor, received_at, records, response, state, import_id, result FROM push_journal";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    let state: String = r.get(7)?;
    Ok(JournalEntry {
        id: r.get(0)?,
        source: r.get(1)?,
        delivery: r.get(2)?,
        actor: r.get(3)?,
        received_at: r.get(4)?,
        records: json(&r.get::<_, String>(5)?),
        response: json(&r.get::<_, String>(6)?),
        state: if state == "pending" { JournalState::Pending } else { JournalState::Ingested },
        import_id: r.get(8)?,
        result: r.get::<_, Option<String>>(9)?.as_deref().map(json),
    })
}

/// Marks `done`'s entries ingested by `import_id` (or by no batch) inside the caller's
/// transaction; an entry that is not pending any more is a conflict when a batch ingests it
/// (it would be applied twice), and is skipped when there is none.
pub(super) fn mark_ingested(tx: &Transaction<'_>, done: &Ingested, import_id: Option<i64>) -> R<usize> {
    let mut stmt = tx.prepare_cached(
        "UPDATE push_journal SET state = 'ingested', import_id = ?2, result = ?3 WHERE id = ?1 AND state = 'pending'",
    )?;
    let mut n = 0;
    for (i, id) in done.entries.iter().enumerate() {
        let result = done.results.get(i).map(ToString::to_string);
        let changed = stmt.execute(params![id, import_id, result])?;
        if changed != 1 && import_id.is_some() {
            return Err(conflict(format!("journal entry {id} was already ingested")));
        }
        n += changed;
    }
    Ok(n)
}

impl Pushes for SqliteStore {
    fn journal_append(&self, entries: &[JournalIn]) -> crate::Result<Vec<Journaled>> {
        let at = self.now();
        let mut conn = self.lock();
        let run = |conn: &mut Connection| -> R<Vec<Journaled>> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(entries.len());
            {
                let mut find =
                    tx.prepare_cached("SELECT id, response FROM push_journal WHERE source = ?1 AND delivery = ?2")?;
                let mut ins = tx.prepare_cached(
                    "INSERT INTO push_journal (source, delivery, actor, received_at, records, response, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
                )?;
                for e in entries {
                    let seen: Option<(i64, String)> =
                        find.query_row(params![e.source, e.delivery], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
                    out.push(match seen {
                        Some((id, response)) => Journaled::Repeat { id, response: json(&response) },
                        None => {
                            ins.execute(params![
                                e.source,
                                e.delivery,
                                e.actor,
                                at,
                                e.records.to_string(),
                                e.response.to_string()
                            ])?;
                            Journaled::New(tx.last_insert_rowid())
                        }
                    });
                }
            }
            tx.commit()?;
            Ok(out)
        };
        Ok(run(&mut conn)?)
    }

    fn journal_pending(&self, limit: usize) -> crate::Result<Vec<JournalEntry>> {
        let conn = self.lock();
        let run = || -> R<Vec<JournalEntry>> {
            let mut stmt = conn.prepare_cached(&format!("{ENTRY} WHERE state = 'pending' ORDER BY id LIMIT ?1"))?;
            let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], entry)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        };
        Ok(run()?)
    }

    fn journal_entry(&self, id: i64) -> crate::Result<Option<JournalEntry>> {
        let conn = self.lock();
        let run = || -> R<Option<JournalEntry>> {
            Ok(conn.query_row(&format!("{ENTRY} WHERE id = ?1"), [id], entry).optional()?)
        };
        Ok(run()?)
    }

    fn journal_settle(&self, done: &Ingested) -> crate::Result<usize> {
        let mut conn = self.lock();
        let run = |conn: &mut Connection| -> R<usize> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = mark_ingested(&tx, done, None)?;
            tx.commit()?;
            Ok(n)
        };
        Ok(run(&mut conn)?)
    }

    fn journal_prune(&self, before: &str, limit: usize) -> crate::Result<usize> {
        let conn = self.lock();
        let run = || -> R<usize> {
            Ok(conn.execute(
                "DELETE FROM push_journal WHERE id IN (
                     SELECT id FROM push_journal WHERE state = 'ingested' AND received_at < ?1 ORDER BY id LIMIT ?2)",
                params![before, i64::try_from(limit).unwrap_or(i64::MAX)],
            )?)
        };
        Ok(run()?)
    }

    fn username_holders(&self, usernames: &[String]) -> crate::Result<Vec<(String, String)>> {
        let conn = self.lock();
        let run = || -> R<Vec<(String, String)>> {
            let mut out = Vec::new();
            let mut exact = conn.prepare_cached(
                "SELECT id, json_extract(attrs, '$.username') FROM identities WHERE username_lc = lower(?1)",
            )?;
            for u in usernames {
                let rows = exact.query_map([u], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
                out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            // SQLite's `lower` folds ASCII only: a non-ASCII name is compared by the caller
            // against every stored non-ASCII name (there are few).
            if usernames.iter().any(|u| !u.is_ascii()) {
                let mut wide = conn.prepare_cached(
                    "SELECT id, json_extract(attrs, '$.username') FROM identities
                     WHERE username_lc IS NOT NULL AND username_lc GLOB '*[^ -~]*'",
                )?;
                let rows = wide.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
                out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            Ok(out)
        };
        Ok(run()?)
    }

    fn owned_by(&self, schema: &Schema, owners: &[&str]) -> crate::Result<Vec<Identity>> {
        let conn = self.lock();
        let run = || -> R<Vec<Identity>> {
            let mut out = Vec::new();
            let mut stmt = conn.prepare_cached("SELECT id, kind, status, attrs FROM identities WHERE owner_id = ?1")?;
            for o in owners {
                let rows = stmt.query_map([o], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
                })?;
                for row in rows {
                    let (id, k, s, a) = row?;
                    out.push(identity_from(schema, &id, &k, &s, &a)?);
                }
            }
            Ok(out)
        };
        Ok(run()?)
    }

    fn sources_of(&self, ids: &[&str]) -> crate::Result<Vec<(String, String)>> {
        let conn = self.lock();
        let run = || -> R<Vec<(String, String)>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = conn.prepare(&format!("SELECT id, source FROM identities WHERE id IN ({marks})"))?;
                let rows = stmt.query_map(params_from_iter(chunk), |r| Ok((r.get(0)?, r.get(1)?)))?;
                out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            Ok(out)
        };
        Ok(run()?)
    }

    fn active_count(&self, source: &str) -> crate::Result<usize> {
        let conn = self.lock();
        let run = || -> R<usize> {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM identities WHERE source = ?1 AND status != 'terminated'",
                [source],
                |r| r.get(0),
            )?;
            Ok(usize::try_from(n).unwrap_or_default())
        };
        Ok(run()?)
    }

    fn batches_since(&self, source: &str, since: &str) -> crate::Result<Vec<RecentBatch>> {
        let conn = self.lock();
        let run = || -> R<Vec<RecentBatch>> {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, state, summary FROM imports WHERE source = ?1 AND at >= ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![source, since], |r| {
                Ok(RecentBatch {
                    import_id: r.get(0)?,
                    at: r.get(1)?,
                    state: r.get(2)?,
                    summary: json(&r.get::<_, String>(3)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        };
        Ok(run()?)
    }
}

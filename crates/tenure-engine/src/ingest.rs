//! Pushed records become lifecycle events: a signed webhook's records, a SCIM User written to
//! `/scim/v2`, an operator's event through the API, and the schedule's date transitions (a
//! contractor whose `end_date` passed) all come through [`push`].
//!
//! A push is an upsert of the identities its records name, not a snapshot: identities it does
//! not name are left alone, so nothing is a leaver for being absent. Otherwise it is an import
//! like any other: each record is checked as a CSV row is (and refused with its index, field
//! and reason), an identity of another source is never touched, an account name belongs to one
//! identity, a leaver's non-human identities are transferred or revoked per `[nhi]`, and the
//! events are guarded, planned and committed as one batch with their audit records. The guard
//! counts a push together with the source's other batches inside `[guard] window`, and while a
//! batch of the source is held, later pushes join it, so a flood of single terminations is
//! stopped exactly like a truncated file.

use crate::app::App;
use crate::import::{self, ImportReport, Prepared, Window};
use crate::{EngineError, Result};
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use tenure_core::record::{self, BadRecord, Record};
use tenure_core::snapshot::{self as record_checks, Parsed, Rejected};
use tenure_core::text::{self, fold};
use tenure_core::{Event, Identity, Status};
use tenure_store::{Ingested, StoreError};

/// How a push is made and recorded.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Who pushed, for the audit trail: `source:hr`, `token:NAME`, `schedule:end_date`.
    pub actor: String,
    /// Every actor whose records the push carries, when more than `actor` (pushes of several
    /// tokens drained together): none of them may release the batch if it is held.
    pub submitters: Vec<String>,
    /// What the batch is called in the imports list and the audit (`webhook 7f3a…`).
    pub label: String,
    /// Journal entries this push ingests, marked in the same transaction.
    pub ingests: Ingested,
    pub dry_run: bool,
    /// The accounts of the targets not correlated yet, read by the caller, as for an import
    /// ([`import::ImportOptions::correlation`]).
    pub correlation: Option<import::Correlate>,
}

/// Applies `records` of `source` in order (a later record of the same key applies over the
/// earlier one) and commits the resulting events as one batch. Records refused by a check are
/// reported in the result's `rejected` (with `line` = the record's index) and change nothing;
/// the others go ahead, exactly as the accepted rows of a file with rejected rows do.
pub fn push(app: &App, source: &str, records: &[Record], opts: &PushOptions) -> Result<ImportReport> {
    push_with(app, source, records, opts, &import::StoreCommit(app.store_ref()))
}

/// [`push`], committed through `commit`: a caller that writes something of its own in the
/// batch's transaction (the SCIM endpoint: the resource row a User write changes). `commit` is
/// called once per attempt, and again if another batch of the source landed first.
pub fn push_with(
    app: &App,
    source: &str,
    records: &[Record],
    opts: &PushOptions,
    commit: &dyn import::Commit,
) -> Result<ImportReport> {
    // Another batch of the source landing between reading and committing makes the store refuse
    // the commit; the push is then prepared again from the new state.
    let mut attempts = 0;
    loop {
        match push_once(app, source, records, opts, commit) {
            Err(EngineError::Store(StoreError::Conflict(_))) if attempts < 5 => attempts += 1,
            other => return other,
        }
    }
}

fn push_once(
    app: &App,
    source: &str,
    records: &[Record],
    opts: &PushOptions,
    commit: &dyn import::Commit,
) -> Result<ImportReport> {
    let cfg = app.config();
    let src = cfg.source(source).ok_or_else(|| {
        EngineError::UnknownSource(
            source.into(),
            cfg.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        )
    })?;
    let schema = &cfg.schema;
    let store = app.store();
    let now = app.clock().now();
    let today = src.today_at(now);
    let mut engine = app.engine().map_err(Box::new)?;
    engine.today = today;

    let base_import = store.last_import(source)?;
    // The source's held batch, if any: later pushes apply over its identities and join it.
    let held_batch = store.held_batches()?.into_iter().filter(|h| h.source == source).max_by_key(|h| h.import);
    let mut held_events: Vec<Event> = Vec::new();
    if let Some(h) = &held_batch {
        for e in store.held_events(schema, h.import)? {
            held_events.push(Event {
                kind: e.record.kind,
                previous: store.identity(schema, &e.record.identity)?,
                identity: e.identity,
                changes: e.record.changes,
                significant: e.record.significant,
                note: e.record.note,
            });
        }
    }
    let held_after: FxHashMap<&str, &Identity> = held_events.iter().map(|e| (&*e.identity.id, &e.identity)).collect();

    let keys: Vec<&str> = {
        let mut seen = HashSet::new();
        records.iter().map(|r| r.key.as_str()).filter(|k| seen.insert(*k)).collect()
    };
    // The index of each key's last record: what a refusal or an accepted row is reported under.
    let last_index: FxHashMap<&str, usize> = records.iter().map(|r| (r.key.as_str(), r.index)).collect();
    let owner_of: FxHashMap<String, String> = store.sources_of(&keys)?.into_iter().collect();
    let mut previous: FxHashMap<Box<str>, Identity> = FxHashMap::default();
    for k in &keys {
        if owner_of.get(*k).is_some_and(|s| s == source)
            && let Some(i) = store.identity(schema, k)?
        {
            previous.insert(i.id.clone(), i);
        }
    }

    let mut rejected: Vec<Rejected> = Vec::new();
    let mut refused: HashSet<String> = HashSet::new();
    let mut current: FxHashMap<String, Identity> = FxHashMap::default();
    let mut order: Vec<String> = Vec::new();
    let reject = |rejected: &mut Vec<Rejected>, refused: &mut HashSet<String>, e: BadRecord, key: &str| {
        refused.insert(key.to_string());
        rejected.push(Rejected {
            line: e.index as u64,
            key: Some(key.to_string()),
            field: e.field,
            reason: e.reason,
            attributed: true,
            names: Vec::new(),
        });
    };
    for r in records {
        if refused.contains(&r.key) {
            continue;
        }
        if let Some(owner) = owner_of.get(&r.key).filter(|s| *s != source) {
            let why = format!("key `{}` belongs to source `{owner}`; `{source}` cannot change it", r.key);
            reject(&mut rejected, &mut refused, BadRecord::new(r.index, Some(&src.key), why), &r.key);
            continue;
        }
        let base = current
            .get(&r.key)
            .or_else(|| held_after.get(r.key.as_str()).copied())
            .or_else(|| previous.get(r.key.as_str()));
        let next = if r.deleted {
            match base {
                Some(b) => record::deleted(b),
                // Nothing to delete: the source removes someone Tenure never had.
                None => continue,
            }
        } else {
            match record::apply(schema, base, r, today) {
                Ok(i) => i,
                Err(e) => {
                    reject(&mut rejected, &mut refused, e, &r.key);
                    continue;
                }
            }
        };
        if !current.contains_key(&r.key) {
            order.push(r.key.clone());
        }
        current.insert(r.key.clone(), next);
    }
    for k in &refused {
        current.remove(k);
    }

    // An account name belongs to one identity: a record that gives its identity a username
    // another identity holds (in the store, or earlier in this push) is refused.
    let username = schema.slot_of("username");
    let renamed: Vec<(&String, String)> = order
        .iter()
        .filter_map(|k| {
            let u = current.get(k)?.attrs.get(username)?;
            let before = previous.get(k.as_str()).and_then(|p| p.attrs.get(username));
            (before.map(fold) != Some(fold(u))).then(|| (k, fold(u)))
        })
        .collect();
    if !renamed.is_empty() {
        let wanted: Vec<String> = renamed.iter().map(|(_, u)| u.clone()).collect();
        let mut holders: FxHashMap<String, String> = FxHashMap::default();
        for (id, u) in store.username_holders(&wanted)? {
            // A holder renamed in this very push gives its name up.
            let gives_up = current.get(&id).is_some_and(|i| i.attrs.get(username).map(fold) != Some(fold(&u)));
            if !gives_up {
                holders.insert(fold(&u), id);
            }
        }
        for k in &order {
            if let Some(u) = current.get(k).and_then(|i| i.attrs.get(username)) {
                holders.entry(fold(u)).or_insert_with(|| k.clone());
            }
        }
        for (k, u) in renamed {
            if let Some(owner) = holders.get(&u).filter(|o| *o != k) {
                let name = src
                    .columns
                    .iter()
                    .find(|(slot, _)| *slot == username)
                    .map_or("username".to_string(), |(_, c)| c.clone());
                let why = format!("username `{}` belongs to identity `{owner}`", text::quote(&u));
                let index = last_index.get(k.as_str()).copied().unwrap_or(0);
                reject(&mut rejected, &mut refused, BadRecord::new(index, Some(&name), why), k);
            }
        }
        for k in &refused {
            current.remove(k);
        }
    }

    // The row checks every source makes: a manager or owner is an identity of this source, not
    // the record itself, and no manager chain leads back to it; a new username or email does not
    // look like another identity's.
    let column = |slot: tenure_core::schema::Slot, attr: &str| {
        src.columns.iter().find(|(s, _)| *s == slot).map_or_else(|| attr.to_string(), |(_, c)| c.clone())
    };
    let (manager_slot, owner_slot) = (schema.slot_of("manager_id"), schema.slot_of("owner_id"));
    let mut known: FxHashMap<String, Option<(String, Option<String>)>> = FxHashMap::default();
    let mut failure: Option<StoreError> = None;
    let mut refusals: Vec<(String, String, String)> = Vec::new();
    for k in &order {
        let Some(i) = current.get(k) else { continue };
        let changed = [manager_slot, owner_slot].into_iter().any(|s| {
            i.attrs.get(s).is_some() && i.attrs.get(s) != previous.get(k.as_str()).and_then(|p| p.attrs.get(s))
        });
        if !changed {
            continue;
        }
        let referent = |key: &str| -> record_checks::Referent {
            // This push's identities, then the source's held batch's (not stored until released).
            if let Some(j) = current.get(key).or_else(|| held_after.get(key).copied()) {
                return record_checks::Referent::Here { manager: j.attrs.get(manager_slot).map(str::to_string) };
            }
            let entry = known.entry(key.to_string()).or_insert_with(|| {
                let found = store.sources_of(&[key]).and_then(|v| match v.into_iter().next() {
                    None => Ok(None),
                    Some((_, s)) if s != source => Ok(Some((s, None))),
                    Some((_, s)) => Ok(Some((
                        s,
                        store.identity(schema, key)?.and_then(|j| j.attrs.get(manager_slot).map(str::to_string)),
                    ))),
                });
                found.unwrap_or_else(|e| {
                    failure.get_or_insert(e);
                    None
                })
            });
            match entry {
                None => record_checks::Referent::Nobody,
                Some((s, _)) if s != source => record_checks::Referent::Source(s.clone()),
                Some((_, manager)) => record_checks::Referent::Here { manager: manager.clone() },
            }
        };
        if let Some((attr, why)) = record_checks::check_references(schema, i, referent) {
            refusals.push((k.clone(), column(schema.slot_of(attr), attr), why));
        }
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    let email = schema.slot_of("email");
    for (slot, what) in [(username, "username"), (email, "email")] {
        let new_name = |k: &String| {
            let v = current.get(k)?.attrs.get(slot)?;
            (!v.is_ascii() && previous.get(k.as_str()).and_then(|p| p.attrs.get(slot)) != Some(v)).then_some(v)
        };
        let names: Vec<(&str, &str)> = order.iter().filter_map(|k| new_name(k).map(|v| (k.as_str(), v))).collect();
        if names.is_empty() {
            continue;
        }
        let stored = store.identities(schema, None)?;
        let others = stored.iter().chain(current.values()).filter_map(|i| i.attrs.get(slot).map(|v| (&*i.id, v)));
        for (n, k, v) in record_checks::look_alikes(&names, others) {
            if let Some((ck, cv)) = names.get(n) {
                refusals.push((ck.to_string(), column(slot, what), record_checks::look_alike_reason(what, cv, &k, &v)));
            }
        }
    }
    for (k, field, why) in refusals {
        if refused.contains(&k) {
            continue;
        }
        let index = last_index.get(k.as_str()).copied().unwrap_or(0);
        reject(&mut rejected, &mut refused, BadRecord::new(index, Some(&field), why), &k);
        current.remove(&k);
    }

    // A leaver's non-human identities leave or change hands with them.
    let leavers: Vec<&str> = current
        .values()
        .filter(|i| {
            i.status == Status::Terminated && previous.get(&*i.id).is_some_and(|p| p.status != Status::Terminated)
        })
        .map(|i| &*i.id)
        .collect();
    let owned = if leavers.is_empty() { Vec::new() } else { store.owned_by(schema, &leavers)? };
    for nhi in owned {
        if nhi.status == Status::Terminated || current.contains_key(&*nhi.id) || !nhi.is_nhi() {
            continue;
        }
        if owner_of.get(&*nhi.id).is_some_and(|s| s != source) {
            continue;
        }
        let id = nhi.id.to_string();
        order.push(id.clone());
        previous.insert(nhi.id.clone(), nhi.clone());
        current.insert(id, nhi);
    }

    let rejected_keys = refused.clone();
    let mut identities = Vec::with_capacity(current.len());
    let mut lines = Vec::with_capacity(current.len());
    for k in &order {
        if let Some(i) = current.remove(k) {
            lines.push(last_index.get(k.as_str()).map_or(0, |i| *i as u64));
            identities.push(i);
        }
    }
    // Previous state only of what this push names: nobody else is diffed, so nobody else is a
    // leaver for being absent.
    previous.retain(|k, _| identities.iter().any(|i| i.id == *k));
    let mut parsed = Parsed { identities, lines, rows: records.len(), ..Parsed::default() };
    for r in rejected {
        parsed.reject(r);
    }
    parsed.trim_rejected();
    parsed.rejected_keys.extend(rejected_keys);
    let nhi_audit = import::reassign_orphaned_nhi(&engine, &previous, &mut parsed);
    let correlated = import::correlate_first(&engine, &parsed, &previous, opts.correlation.as_ref())?;

    let window_secs = i64::try_from(cfg.guard.window_secs).unwrap_or(i64::MAX);
    let since = tenure_core::clock::stamp(now - chrono::Duration::seconds(window_secs));
    let mut prior = crate::guard::Counts::default();
    for b in store.batches_since(source, &since)? {
        if b.state != "applied" {
            continue;
        }
        let n = |k: &str| b.summary.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) as usize;
        prior.leavers += n("leavers");
        prior.losses += n("losses");
        prior.privileged += n("privileged_grants");
    }
    let held = held_batch.map(|h| (h, held_events));
    let prepared = Prepared {
        source: source.into(),
        file: opts.label.clone(),
        sha256: String::new(),
        previous,
        parsed,
        audit: nhi_audit,
        base_import,
        population: store.active_count(source)?,
        window: Some(Window { prior, held }),
        ingests: opts.ingests.clone(),
        unit: "record",
        actor: opts.actor.clone(),
        submitted_by: if opts.submitters.is_empty() { vec![opts.actor.clone()] } else { opts.submitters.clone() },
        correlated: correlated.outcomes,
        relink: correlated.linked,
    };
    let mut report = import::commit_prepared(&engine, prepared, opts.dry_run, commit)?;
    report.correlation_unread = opts.correlation.as_ref().map(|c| c.unread.clone()).unwrap_or_default();
    Ok(report)
}

/// A JSON field as read: its name, its text (strings and numbers) or its boolean.
type Field<'a> = (&'a str, Option<std::borrow::Cow<'a, str>>, Option<bool>);

/// At most this many records in one push request.
pub const MAX_RECORDS: usize = 1_000;

/// Reads a push body: one record, or `{"records": [...]}` with at most [`MAX_RECORDS`]. Each
/// record is a JSON object keyed by the source's column names, exactly like a CSV row of that
/// source; values are strings (numbers are taken as written), `null` clears, and `deleted` is
/// the one boolean. The first bad record refuses the whole body.
pub fn records_from_json(
    source: &tenure_core::config::SourceConfig,
    schema: &tenure_core::Schema,
    body: &serde_json::Value,
) -> std::result::Result<Vec<Record>, BadRecord> {
    use serde_json::Value as J;
    let list: Vec<&J> = match body {
        J::Object(o) if o.contains_key("records") => match o.get("records") {
            Some(J::Array(a)) => a.iter().collect(),
            _ => return Err(BadRecord::new(0, Some("records"), "`records` must be an array of records")),
        },
        J::Object(_) => vec![body],
        _ => return Err(BadRecord::new(0, None, "the body must be a record (a JSON object) or {\"records\": [...]}")),
    };
    if list.is_empty() {
        return Err(BadRecord::new(0, Some("records"), "no records"));
    }
    if list.len() > MAX_RECORDS {
        return Err(BadRecord::new(
            MAX_RECORDS,
            Some("records"),
            format!("{} records; at most {MAX_RECORDS} in one request", list.len()),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (index, r) in list.into_iter().enumerate() {
        let J::Object(fields) = r else {
            return Err(BadRecord::new(index, None, "a record must be a JSON object"));
        };
        let mut owned: Vec<Field<'_>> = Vec::with_capacity(fields.len());
        for (name, v) in fields {
            owned.push(match v {
                J::Null => (name, None, None),
                J::Bool(b) => (name, None, Some(*b)),
                J::String(s) => (name, Some(std::borrow::Cow::Borrowed(s.as_str())), None),
                J::Number(n) => (name, Some(std::borrow::Cow::Owned(n.to_string())), None),
                J::Array(_) | J::Object(_) => {
                    return Err(BadRecord::new(index, Some(name), "must be a string, a number or null"));
                }
            });
        }
        let values = owned.iter().map(|(name, s, b)| {
            let v = match (s, b) {
                (Some(s), _) => record::Value::Str(s),
                (None, Some(b)) => record::Value::Bool(*b),
                (None, None) => record::Value::Null,
            };
            (*name, v)
        });
        let rec = record::from_columns(source, index, values)?;
        // Check every value now, so that a bad record is refused before anything is journaled.
        if !rec.deleted {
            record::apply(schema, None, &rec, chrono::NaiveDate::MIN)?;
        }
        out.push(rec);
    }
    Ok(out)
}

/// What draining the push journal did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Drained {
    /// Journal entries ingested (or settled as unreadable).
    pub entries: usize,
    pub records: usize,
    /// One report per source batch committed.
    pub reports: Vec<ImportReport>,
}

/// Ingests up to `max_entries` pending journal entries, oldest first: the entries of one
/// source become one push (one batch, one guard decision) and are marked ingested in that
/// batch's transaction, so each is applied exactly once even if the process dies mid-way. A
/// store failure leaves the entries pending for the next run; an entry that cannot be read
/// any more (the config lost its source) is settled with the reason and audited.
pub fn drain_journal(app: &App, max_entries: usize) -> Result<Drained> {
    drain_journal_with(app, max_entries, None)
}

/// Whether pushes wait in the journal: the server reads the targets not correlated yet only
/// then, so that the first push against a populated directory correlates it.
pub fn journal_waiting(app: &App) -> Result<bool> {
    Ok(!app.store().journal_pending(1)?.is_empty())
}

/// [`drain_journal`] with the accounts of the targets not correlated yet, read by the caller
/// (the server's ingest task), so the first push that can read a target correlates it as the
/// first import does.
pub fn drain_journal_with(app: &App, max_entries: usize, correlation: Option<&import::Correlate>) -> Result<Drained> {
    let store = app.store();
    let pending = store.journal_pending(max_entries)?;
    let mut out = Drained::default();
    let mut sources: Vec<&str> = Vec::new();
    for e in &pending {
        if !sources.contains(&e.source.as_str()) {
            sources.push(&e.source);
        }
    }
    let cfg = app.config();
    for source in sources {
        let entries: Vec<&tenure_store::JournalEntry> = pending.iter().filter(|e| e.source == source).collect();
        let mut ingests = Ingested::default();
        let mut records: Vec<Record> = Vec::new();
        let mut unreadable: Vec<(i64, String)> = Vec::new();
        for e in &entries {
            let parsed = match cfg.source(source) {
                None => Err(format!("source `{source}` is not in the config any more")),
                Some(src) => records_from_json(src, &cfg.schema, &e.records).map_err(|b| b.to_string()),
            };
            ingests.entries.push(e.id);
            match parsed {
                Ok(rs) => {
                    ingests.results.push(serde_json::json!({ "records": rs.len() }));
                    records.extend(rs);
                }
                Err(why) => {
                    ingests.results.push(serde_json::json!({ "error": why }));
                    unreadable.push((e.id, why));
                }
            }
        }
        out.entries += entries.len();
        out.records += records.len();
        let first = entries.first().map_or(0, |e| e.id);
        let last = entries.last().map_or(0, |e| e.id);
        let label = match entries.as_slice() {
            [one] => format!("push {} (journal {})", tenure_core::text::quote(&one.delivery), one.id),
            _ => format!("pushes (journal {first}..{last})"),
        };
        // A journal entry's actor is who is audited, then whoever else pushed it, space
        // separated (a webhook is audited as its source and submitted by its token too): every
        // one of them is a submitter, who may not release the batch if it is held.
        let (mut submitters, mut audited): (Vec<String>, Vec<&str>) = (Vec::new(), Vec::new());
        for e in &entries {
            let mut parts = e.actor.split(' ').filter(|p| !p.is_empty());
            if let Some(first) = parts.next() {
                if !audited.contains(&first) {
                    audited.push(first);
                }
                for p in std::iter::once(first).chain(parts) {
                    if !submitters.iter().any(|s| s == p) {
                        submitters.push(p.to_string());
                    }
                }
            }
        }
        let actor = match audited.as_slice() {
            [one] => (*one).to_string(),
            _ => format!("source:{source}"),
        };
        if records.is_empty() || cfg.source(source).is_none() {
            store.journal_settle(&ingests)?;
            let audit: Vec<tenure_core::audit::AuditEntry> = unreadable
                .iter()
                .map(|(id, why)| {
                    tenure_core::audit::AuditEntry::new(&actor, "push.unreadable", "rejected")
                        .reason(format!("journal entry {id}: {why}"))
                })
                .collect();
            if !audit.is_empty() {
                store.audit(&audit)?;
            }
            continue;
        }
        // Records keep their index within the batch, so a refusal names one record exactly.
        for (i, r) in records.iter_mut().enumerate() {
            r.index = i;
        }
        let opts = PushOptions { actor, submitters, label, ingests, dry_run: false, correlation: correlation.cloned() };
        match push(app, source, &records, &opts) {
            Ok(report) => out.reports.push(report),
            Err(e @ EngineError::Store(_)) => return Err(e),
            Err(e) => {
                let why = e.to_string();
                let done = Ingested {
                    results: vec![serde_json::json!({ "error": why }); opts.ingests.entries.len()],
                    entries: opts.ingests.entries,
                };
                store.journal_settle(&done)?;
                store.audit(&[tenure_core::audit::AuditEntry::new(&opts.actor, "push.failed", "failed")
                    .reason(format!("{}: {why}", opts.label))])?;
            }
        }
    }
    Ok(out)
}

//! `tenure import`: a snapshot becomes lifecycle events and planned operations, or a held batch.

use crate::correlation::{self, Inventory, Overlay, TargetCorrelation};
use crate::desired::{self, names};
use crate::guard;
use crate::{Engine, EngineError, Result};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use tenure_core::audit::AuditEntry;
use tenure_core::config::SourceKind;
use tenure_core::plan::{self, Holdings, Queued};
use tenure_core::rules::superseded_by_snapshot;
use tenure_core::snapshot::{self, Parsed, Rejected};
use tenure_core::{ApprovalKind, ApprovalState, Change, Event, EventKind, Identity, ImportOutcome, OpKind, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Desired, OnOwnerLeave};
use tenure_store::{Batch, BatchState, EventIn, OpIn};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub dry_run: bool,
    /// Who runs the import, for the audit trail (`source:hr` by default).
    pub actor: Option<String>,
    /// The accounts of the targets not correlated yet, read by the caller
    /// ([`correlation::read_inventory`]), and the ones that could not be read.
    pub correlation: Option<Correlate>,
}

/// What the caller read for correlation before the import.
#[derive(Debug, Clone, Default)]
pub struct Correlate {
    pub inventory: Inventory,
    pub unread: Vec<correlation::Unread>,
}

/// An identity that correlation holds back on a target: nothing is planned for it there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeldBack {
    pub identity: String,
    pub target: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub rows: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub joiners: usize,
    pub movers: usize,
    pub significant_movers: usize,
    pub leavers: usize,
    pub rehires: usize,
    pub suspends: usize,
    pub resumes: usize,
    pub updates: usize,
    pub operations: usize,
    /// Queued operations cancelled because the new plan no longer needs them.
    pub cancelled: usize,
    /// Identities losing any access (the guard's count; pushes add it up over the window).
    pub losses: usize,
    /// Identities gaining a privileged entitlement, or a request for a privileged role opened
    /// because its condition matches.
    pub privileged_grants: usize,
}

/// The result of an import, printed as the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub source: String,
    pub file: String,
    pub sha256: String,
    pub dry_run: bool,
    pub counts: Counts,
    /// The rejected rows in detail, by line: at most
    /// [`snapshot::REJECTED_DETAIL_LIMIT`].
    pub rejected: Vec<Rejected>,
    /// Rejected rows beyond those listed in `rejected` (counted in `counts.rejected`).
    pub rejected_more: usize,
    /// `applied`, `held` or `unchanged`; a dry run says what would happen.
    pub outcome: ImportOutcome,
    pub held_reason: Option<String>,
    pub approval_id: Option<i64>,
    pub import_id: Option<i64>,
    pub events: Vec<EventSummary>,
    /// The targets whose existing accounts this import correlated (their first import).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub correlation: Vec<TargetCorrelation>,
    /// The targets not correlated yet because they could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub correlation_unread: Vec<correlation::Unread>,
    /// Identities with nothing planned on a target until a correlation case is decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub kind: EventKind,
    pub identity: String,
    pub significant: bool,
    pub changes: Vec<Change>,
    pub operations: usize,
}

/// Imports a CSV snapshot of `source` held in memory.
pub fn import_csv(
    engine: &Engine<'_>,
    source: &str,
    file: &str,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<ImportReport> {
    import_reader(engine, source, file, bytes, opts)
}

/// Imports a CSV snapshot of `source` as it is read (a file, an upload spooled to disk): the
/// file is never held whole, and a record over [`snapshot::RECORD_LIMIT`] refuses it with its
/// line before it is read to the end.
pub fn import_reader(
    engine: &Engine<'_>,
    source: &str,
    file: &str,
    input: impl std::io::Read,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let cfg = engine.config;
    let src = cfg.source(source).ok_or_else(|| {
        EngineError::UnknownSource(
            source.into(),
            cfg.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        )
    })?;
    if src.kind != SourceKind::Csv {
        return Err(EngineError::NotCsv(source.into()));
    }
    // A snapshot's dates are the source's: its leavers and prehires are derived with today in the
    // source's timezone, as a push's and the date schedules' are.
    let mut parsed = snapshot::parse_reader(src, &cfg.schema, input, engine.today_for(src))
        .map_err(|error| EngineError::Snapshot { file: file.into(), error })?;
    let sha256 = std::mem::take(&mut parsed.sha256);
    // An identity belongs to the source that first brought it: a row from another source with
    // the same key is rejected, never merged, so one feed cannot rewrite another's people.
    let foreign = engine.store.foreign_identities(source)?;
    if !foreign.is_empty() {
        parsed.reject_accepted(&cfg.schema, |i| {
            foreign.get(&*i.id).map(|owner| {
                (src.key.clone(), format!("key `{}` belongs to source `{owner}`; `{source}` cannot change it", i.id))
            })
        });
    }
    // What this import is computed against; the commit fails if another import of the same
    // source lands in between.
    let base_import = engine.store.last_import(source)?;
    let previous: FxHashMap<Box<str>, Identity> =
        engine.store.identities(&cfg.schema, Some(source))?.into_iter().map(|i| (i.id.clone(), i)).collect();
    // An account name belongs to one identity: a row that takes a stored identity's username
    // under another key (a mistyped or reused key, another source's person) is rejected, and a
    // removal it could stand for is then held.
    let username = cfg.schema.slot_of("username");
    // Only rows whose username is new to their key can take someone else's; most rows keep theirs.
    let unchanged = |i: &Identity| previous.get(&*i.id).is_some_and(|p| p.attrs.get(username) == i.attrs.get(username));
    if parsed.identities.iter().any(|i| i.attrs.get(username).is_some() && !unchanged(i)) {
        let mut owners: FxHashMap<String, Box<str>> = FxHashMap::default();
        let others = if foreign.is_empty() { Vec::new() } else { engine.store.identities(&cfg.schema, None)? };
        for i in previous.values().chain(others.iter().filter(|i| foreign.contains_key(&*i.id))) {
            if let Some(u) = i.attrs.get(username) {
                owners.insert(tenure_core::text::fold(u), i.id.clone());
            }
        }
        parsed.reject_accepted(&cfg.schema, |i| {
            if unchanged(i) {
                return None;
            }
            let u = i.attrs.get(username)?;
            let owner = owners.get(&tenure_core::text::fold(u)).filter(|o| ***o != *i.id)?;
            Some((
                "username".to_string(),
                format!("username `{}` belongs to identity `{owner}`", tenure_core::text::quote(u)),
            ))
        });
    }
    refuse_look_alikes(engine, &previous, &mut parsed)?;
    let nhi_audit = reassign_orphaned_nhi(engine, &previous, &mut parsed);
    let actor = opts.actor.clone().unwrap_or_else(|| format!("source:{source}"));
    let correlated = correlate_first(engine, &parsed, &previous, opts.correlation.as_ref())?;
    let population = previous.values().filter(|i| i.status != Status::Terminated).count();
    let prepared = Prepared {
        source: source.into(),
        file: file.into(),
        sha256,
        previous,
        parsed,
        audit: nhi_audit,
        base_import,
        population,
        window: None,
        ingests: Default::default(),
        unit: "line",
        submitted_by: vec![actor.clone()],
        actor,
        correlated: correlated.outcomes,
        relink: correlated.linked,
    };
    let mut report = commit_prepared(engine, prepared, opts.dry_run, &StoreCommit(engine.store))?;
    report.correlation_unread = opts.correlation.as_ref().map(|c| c.unread.clone()).unwrap_or_default();
    Ok(report)
}

/// Rejects the rows whose username or email is new for their key, not plain ASCII, and looks
/// like another identity's (any source's) without being it.
fn refuse_look_alikes(
    engine: &Engine<'_>,
    previous: &FxHashMap<Box<str>, Identity>,
    parsed: &mut Parsed,
) -> Result<()> {
    let schema = &engine.config.schema;
    let slots = [(schema.slot_of("username"), "username"), (schema.slot_of("email"), "email")];
    fn new_name<'i>(
        previous: &FxHashMap<Box<str>, Identity>,
        i: &'i Identity,
        slot: tenure_core::schema::Slot,
    ) -> Option<&'i str> {
        i.attrs.get(slot).filter(|v| !v.is_ascii() && previous.get(&*i.id).and_then(|p| p.attrs.get(slot)) != Some(*v))
    }
    if !parsed.identities.iter().any(|i| slots.iter().any(|(slot, _)| new_name(previous, i, *slot).is_some())) {
        return Ok(());
    }
    let stored = engine.store.identities(schema, None)?;
    for (slot, what) in slots {
        let names: Vec<(&str, &str)> =
            parsed.identities.iter().filter_map(|i| new_name(previous, i, slot).map(|v| (&*i.id, v))).collect();
        let others = stored.iter().chain(&parsed.identities).filter_map(|i| i.attrs.get(slot).map(|v| (&*i.id, v)));
        let refused: HashMap<String, String> = snapshot::look_alikes(&names, others)
            .into_iter()
            .filter_map(|(i, k, v)| {
                names.get(i).map(|(ck, cv)| (ck.to_string(), snapshot::look_alike_reason(what, cv, &k, &v)))
            })
            .collect();
        drop(names);
        if !refused.is_empty() {
            parsed.reject_accepted(schema, |i| refused.get(&*i.id).map(|r| (what.to_string(), r.clone())));
        }
    }
    Ok(())
}

/// The first import (or push) that can read a target correlates the accounts it already has
/// against every identity Tenure will know once the batch commits (the stored ones, with the
/// batch's accepted records in place of theirs); the batch is planned from the links and cases
/// found and records them (audited) in its own transaction, so a batch that fails (stale, a
/// conflict) leaves nothing correlated. Only the targets of `c` that are still not correlated
/// are (another batch may have correlated one since it was read; the store refuses the second).
/// A dry run records nothing.
#[derive(Default)]
pub(crate) struct Correlated {
    /// Each target's outcome and what it did, for the plan, the batch and the report.
    pub outcomes: Vec<(String, correlation::rules::Outcome, TargetCorrelation)>,
    /// The identities a rule linked an account to here: each is planned in this batch, with an
    /// `update` event if nothing else about it changed.
    pub linked: Vec<String>,
}

pub(crate) fn correlate_first(
    engine: &Engine<'_>,
    parsed: &Parsed,
    previous: &FxHashMap<Box<str>, Identity>,
    c: Option<&Correlate>,
) -> Result<Correlated> {
    let mut out = Correlated::default();
    let cfg = engine.config;
    let mut outcomes = Vec::new();
    let mut baselined: HashSet<String> = HashSet::new();
    if let Some(c) = c.filter(|c| !c.inventory.is_empty()) {
        let still: HashSet<String> = correlation::pending_targets(cfg, engine.store)?.into_iter().collect();
        let inventory: Inventory =
            c.inventory.iter().filter(|(t, _)| still.contains(*t)).map(|(t, a)| (t.clone(), a.clone())).collect();
        if !inventory.is_empty() {
            let stored = engine.store.identities(&cfg.schema, None)?;
            let mut known: BTreeMap<&str, &Identity> = stored.iter().map(|i| (&*i.id, i)).collect();
            for i in &parsed.identities {
                known.insert(&i.id, i);
            }
            let known: Vec<&Identity> = known.into_values().collect();
            baselined.extend(inventory.keys().cloned());
            outcomes = correlation::correlate(cfg, &inventory, &known, &engine.store.all_holdings()?);
        }
    }
    // Identities new in this batch meet the accounts earlier baselines matched to nobody.
    let new: Vec<&Identity> = parsed.identities.iter().filter(|i| !previous.contains_key(&i.id)).collect();
    outcomes.extend(correlation::correlate_late(cfg, engine.store, &new, &baselined)?);
    for (_, o, _) in &outcomes {
        out.linked.extend(o.links.iter().map(|l| l.identity.clone()));
    }
    out.outcomes = outcomes;
    Ok(out)
}

/// What a push's guard adds to the batch's own counts: what the source's other batches inside
/// the window did, and the batch of the source still held, which a new push joins.
pub(crate) struct Window {
    pub prior: guard::Counts,
    pub held: Option<(tenure_store::HeldBatch, Vec<Event>)>,
}

/// An ingest after its input was read and checked: the state it is diffed against and what
/// was accepted. A snapshot and a push differ only in how they get here.
pub(crate) struct Prepared {
    pub source: String,
    pub file: String,
    pub sha256: String,
    /// The stored state of the identities the events are diffed against (a snapshot: every
    /// identity of the source; a push: the identities its records name).
    pub previous: FxHashMap<Box<str>, Identity>,
    pub parsed: Parsed,
    /// Batch-level audit records besides the rejected rows.
    pub audit: Vec<AuditEntry>,
    pub base_import: Option<i64>,
    /// Active identities of the source, which the guard's fractions are of.
    pub population: usize,
    pub window: Option<Window>,
    pub ingests: tenure_store::Ingested,
    /// What a rejected input is called in messages: a file's `line`, a push's `record`.
    pub unit: &'static str,
    pub actor: String,
    /// Who submitted the input (the actor, or every pusher of the pushes drained together):
    /// recorded with a held batch, so that none of them releases it.
    pub submitted_by: Vec<String>,
    /// The correlation outcomes found for this batch, not recorded yet: the plan applies them,
    /// and the batch records them in its transaction (a dry run only plans with them).
    pub correlated: Vec<(String, correlation::rules::Outcome, TargetCorrelation)>,
    /// Identities correlation linked an account to in this batch: planned in it even if
    /// nothing about them changed (an `update` event), when the batch may write them.
    pub relink: Vec<String>,
}

/// Where a prepared batch is committed: the store ([`StoreCommit`], for every import and push),
/// or a caller that writes something of its own in the same transaction (the SCIM endpoint's
/// resource row, `tenure_store::ScimStore::scim_write`), so the batch and that write commit
/// together or not at all.
pub trait Commit {
    /// Commits `batch` in one transaction. Its events are `events` when given (written as they
    /// arrive, as [`tenure_store::Store::commit_stream`] does), else `batch.events`.
    fn commit(
        &self,
        schema: &tenure_core::Schema,
        batch: &Batch,
        events: Option<&mut dyn Iterator<Item = EventIn>>,
    ) -> tenure_store::Result<tenure_store::BatchIds>;
}

/// The store commits the batch by itself.
pub struct StoreCommit<'a>(pub &'a dyn tenure_store::Store);

impl Commit for StoreCommit<'_> {
    fn commit(
        &self,
        schema: &tenure_core::Schema,
        batch: &Batch,
        events: Option<&mut dyn Iterator<Item = EventIn>>,
    ) -> tenure_store::Result<tenure_store::BatchIds> {
        match events {
            Some(events) => self.0.commit_stream(schema, batch, events),
            None => self.0.commit_batch(schema, batch),
        }
    }
}

/// Diffs, guards, plans and commits a prepared ingest as one batch, through `commit`.
pub(crate) fn commit_prepared(
    engine: &Engine<'_>,
    p: Prepared,
    dry_run: bool,
    commit: &dyn Commit,
) -> Result<ImportReport> {
    let cfg = engine.config;
    let Prepared {
        source,
        file,
        sha256,
        previous,
        parsed,
        audit,
        base_import,
        population,
        window,
        ingests,
        unit,
        actor,
        mut submitted_by,
        correlated,
        relink,
    } = p;
    let source = source.as_str();
    let file = file.as_str();
    let nhi_audit = audit;
    let mut events = snapshot::diff(&cfg.schema, &previous, &parsed, &engine.policy.significant);
    // An identity whose existing account correlation just linked is planned on it now, not at
    // its next change. Only the batch's own identities can be (another source's are its own).
    if !relink.is_empty() {
        let named: HashSet<String> = events.iter().map(|e| e.identity.id.to_string()).collect();
        for id in relink.iter().filter(|id| !named.contains(*id)) {
            if let Some(i) = previous.get(id.as_str()) {
                events.push(Event {
                    kind: EventKind::Update,
                    identity: i.clone(),
                    previous: Some(i.clone()),
                    changes: Vec::new(),
                    significant: false,
                    note: Some("an existing account was linked by correlation".into()),
                });
            }
        }
    }

    let mut counts = Counts {
        rows: parsed.rows,
        accepted: parsed.identities.len(),
        rejected: parsed.rejected_count(),
        ..Counts::default()
    };
    for e in &events {
        match e.kind {
            EventKind::Joiner => counts.joiners += 1,
            EventKind::Mover => {
                counts.movers += 1;
                counts.significant_movers += usize::from(e.significant);
            }
            EventKind::Leaver => counts.leavers += 1,
            EventKind::Rehire => counts.rehires += 1,
            EventKind::Suspend => counts.suspends += 1,
            EventKind::Resume => counts.resumes += 1,
            EventKind::Update => counts.updates += 1,
        }
    }
    // Pass 1: plan every event for the guard and the summary, keeping only counts. The plans
    // themselves are made again, from the same inputs, while the batch is written (pass 2), so
    // the day-one import never holds every identity's operations in memory at once.
    let mut inputs = PlanInputs::load(engine, &events)?;
    for (t, o, _) in &correlated {
        inputs.overlay.add(engine, t, o);
    }
    let mut held_back = Vec::new();
    let mut shape = Vec::with_capacity(events.len());
    let (mut losses, mut gains) = (0usize, 0usize);
    {
        let privileged = guard::privileged_entitlements(engine.policy);
        let mut scratch = Scratch::default();
        for e in &events {
            let p = inputs.plan(engine, e, &mut scratch);
            for (target, why) in inputs.held_back(engine, e) {
                held_back.push(HeldBack { identity: e.identity.id.to_string(), target, why });
            }
            // Cancelling queued work counts too: a broken feed must not silently withdraw many
            // people's provisioning any more than it may revoke it.
            let loses = e.kind == EventKind::Leaver
                || !p.cancel.is_empty()
                || p.ops.iter().any(|o| matches!(o.kind, OpKind::Disable | OpKind::Revoke | OpKind::DeleteAccount));
            // A privileged role's request opened by its condition counts as a privileged gain: a
            // feed that suddenly makes many people eligible is held for a person to look at, and
            // each request still waits for its own approval after that.
            let gains_privileged =
                p.ops.iter().any(|o| {
                    o.kind == OpKind::Grant
                        && o.entitlement.as_deref().is_some_and(|g| privileged.contains(&(o.target.as_str(), g)))
                }) || p.requests.open.iter().any(|r| engine.policy.role(&r.role).is_some_and(|x| x.privileged));
            losses += usize::from(loses);
            gains += usize::from(gains_privileged);
            shape.push((p.ops.len(), p.cancel.len()));
        }
    }
    let removed: Vec<&Event> = events.iter().filter(|e| e.note.as_deref() == Some(snapshot::ROW_REMOVED)).collect();
    let own = guard::Counts { leavers: counts.leavers, losses, privileged: gains, population };
    counts.losses = losses;
    counts.privileged_grants = gains;
    let held_reason = match &window {
        None => own.check(&cfg.guard).or_else(|| untrusted_removals(engine, &parsed, &removed)),
        // A push joins the source's held batch until a person decides it, whatever it does.
        Some(Window { held: Some((h, _)), .. }) => Some(format!(
            "an earlier push of `{source}` is held for approval (approval {}); later pushes join it until it is decided",
            h.approval
        )),
        // Otherwise what it takes away or grants counts together with the source's other
        // batches inside the window, so a stream of single leavers is stopped like one file.
        Some(Window { prior, held: None }) if own.leavers + own.losses + own.privileged > 0 => guard::Counts {
            leavers: own.leavers + prior.leavers,
            losses: own.losses + prior.losses,
            privileged: own.privileged + prior.privileged,
            population,
        }
        .check(&cfg.guard)
        .map(|why| format!("{why}, counting the pushes of the last {}", guard::window_text(cfg.guard.window_secs))),
        Some(_) => None,
    };

    let mut rejected_audit: Vec<AuditEntry> = parsed
        .rejected
        .iter()
        .map(|r| {
            let mut e = AuditEntry::new(&actor, "import.row_rejected", "rejected").reason(format!(
                "{file} {unit} {}{}: {}",
                r.line,
                r.field.as_deref().map(|f| format!(" field `{f}`")).unwrap_or_default(),
                r.reason
            ));
            e.identity = r.key.clone();
            e
        })
        .collect();
    // Rows past the detail limit are audited as one count: the import record names the file's
    // SHA-256, so the file itself says which they were.
    if parsed.rejected_more > 0 {
        rejected_audit.push(AuditEntry::new(&actor, "import.rows_rejected", "rejected").reason(format!(
            "{file}: {} more rejected {unit}(s) not recorded one by one ({} rejected in all)",
            parsed.rejected_more,
            parsed.rejected_count()
        )));
    }
    rejected_audit.extend(nhi_audit);

    let is_held = held_reason.is_some();
    if !is_held {
        counts.operations = shape.iter().map(|(ops, _)| ops).sum();
        counts.cancelled = shape.iter().map(|(_, cancel)| cancel).sum();
    }
    let summaries = events
        .iter()
        .zip(&shape)
        .map(|(e, (ops, _))| EventSummary {
            kind: e.kind,
            identity: e.identity.id.to_string(),
            significant: e.significant,
            changes: e.changes.clone(),
            operations: if is_held { 0 } else { *ops },
        })
        .collect();
    let outcome = if held_reason.is_some() {
        ImportOutcome::Held
    } else if events.is_empty() {
        ImportOutcome::Unchanged
    } else {
        ImportOutcome::Applied
    };
    let mut report = ImportReport {
        source: source.into(),
        file: file.into(),
        sha256: sha256.clone(),
        dry_run,
        counts: counts.clone(),
        rejected: parsed.rejected.clone(),
        rejected_more: parsed.rejected_more,
        outcome,
        held_reason: held_reason.clone(),
        approval_id: None,
        import_id: None,
        events: summaries,
        correlation: Vec::new(),
        correlation_unread: Vec::new(),
        held_back,
    };
    if dry_run {
        report.correlation = correlated.into_iter().map(|(_, _, summary)| summary).collect();
        return Ok(report);
    }
    // The correlation the plan was made from is written by the batch, in its transaction.
    let writes: Vec<(usize, tenure_store::CorrelationIn)> = correlated
        .iter()
        .enumerate()
        .filter_map(|(i, (t, o, summary))| correlation::to_write(t, o, summary).map(|w| (i, w)))
        .collect();
    // A newer snapshot supersedes the batches of its source still held; the store checks the
    // decision still stands when it commits. A push instead carries the held batch's events
    // into its own held batch (the newer event of an identity wins).
    let (supersede, carried) = match window {
        Some(Window { held: Some((h, old)), .. }) => {
            // The held batch's events are carried into this one: so are the people who sent them.
            for s in submitters_of(&engine.store.approval(h.approval)?) {
                if !submitted_by.contains(&s) {
                    submitted_by.push(s);
                }
            }
            (vec![h], old)
        }
        Some(_) => (Vec::new(), Vec::new()),
        None => {
            let held = engine.store.held_batches()?;
            (superseded_by_snapshot(source, &held).into_iter().cloned().collect(), Vec::new())
        }
    };
    let mut batch = Batch {
        actor,
        source: source.into(),
        file: file.into(),
        sha256,
        summary: serde_json::to_value(&counts).unwrap_or_default(),
        state: match held_reason {
            Some(reason) => BatchState::Held { reason, submitted_by },
            None => BatchState::Applied,
        },
        events: Vec::new(),
        audit: rejected_audit,
        base_import,
        supersede,
        ingests,
        correlation: writes.iter().map(|(_, w)| w.clone()).collect(),
    };
    let planned = &events;
    let ids = if is_held {
        let fresh: HashSet<&str> = events.iter().map(|e| &*e.identity.id).collect();
        batch.events =
            carried.iter().filter(|e| !fresh.contains(&*e.identity.id)).chain(events.iter()).map(held_event).collect();
        commit.commit(&cfg.schema, &batch, None)?
    } else {
        // Pass 2: one thread plans, the other writes; the batch is still one transaction.
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<EventIn>(1024);
            let inputs = &inputs;
            let planner = s.spawn(move || {
                let mut scratch = Scratch::default();
                for e in planned {
                    if tx.send(inputs.plan(engine, e, &mut scratch)).is_err() {
                        break;
                    }
                }
            });
            let written = commit.commit(&cfg.schema, &batch, Some(&mut rx.iter()));
            drop(rx);
            let _ = planner.join();
            written
        })?
    };
    report.import_id = Some(ids.import_id);
    report.approval_id = ids.approval_id;
    let mut summaries: Vec<TargetCorrelation> = correlated.into_iter().map(|(_, _, summary)| summary).collect();
    for ((i, _), case_ids) in writes.iter().zip(&ids.correlation_cases) {
        if let Some(s) = summaries.get_mut(*i) {
            s.case_ids.clone_from(case_ids);
        }
    }
    // What is held back now names the cases by the ids the batch gave them.
    if summaries.iter().any(|s| !s.case_ids.is_empty()) {
        inputs.overlay = Overlay::load(engine)?;
        report.held_back = planned
            .iter()
            .flat_map(|e| {
                inputs.held_back(engine, e).into_iter().map(|(target, why)| HeldBack {
                    identity: e.identity.id.to_string(),
                    target,
                    why,
                })
            })
            .collect();
    }
    report.correlation = summaries;
    Ok(report)
}

/// The actors a held batch's approval records as having submitted it (`token:NAME`,
/// `user:NAME`, `source:NAME`).
pub fn submitters_of(a: &tenure_store::ApprovalRecord) -> Vec<String> {
    a.summary
        .get("submitted_by")
        .and_then(serde_json::Value::as_array)
        .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Why identities missing from the file cannot be trusted to have left, if they cannot: rows
/// that may stand for anyone (no trustworthy key, fields out of line), a file whose last record
/// is cut off, or a rejected row that carries a removed identity's key, username or email.
fn untrusted_removals(engine: &Engine<'_>, parsed: &Parsed, removed: &[&Event]) -> Option<String> {
    if removed.is_empty() {
        return None;
    }
    let n = removed.len();
    let who = if n == 1 { "identity" } else { "identities" };
    if let Some(why) = &parsed.truncated {
        return Some(format!("{why}; {n} {who} missing from it may only have been cut off"));
    }
    if parsed.unattributed > 0 {
        return Some(format!(
            "{} rejected row(s) cannot be attributed to a key with certainty, so {n} {who} missing from the file may not really have left",
            parsed.unattributed
        ));
    }
    let schema = &engine.config.schema;
    let mut matches: Vec<String> = removed
        .iter()
        .filter_map(|e| {
            let prev = e.previous.as_ref()?;
            parsed.could_be(schema, prev).map(|line| format!("`{}` (line {line})", prev.id))
        })
        .collect();
    if matches.is_empty() {
        return None;
    }
    let shown = matches.len();
    matches.truncate(10);
    Some(format!(
        "{shown} identit{} missing from the file share a key, username or email with a rejected row ({}{}): they may not really have left",
        if shown == 1 { "y" } else { "ies" },
        matches.join(", "),
        if shown > 10 { ", ..." } else { "" }
    ))
}

fn held_event(e: &Event) -> EventIn {
    event_in(e, Vec::new(), None, Vec::new(), Vec::new())
}

fn event_in(
    e: &Event,
    ops: Vec<OpIn>,
    holdings: Option<Holdings>,
    audit: Vec<AuditEntry>,
    cancel: Vec<Queued>,
) -> EventIn {
    EventIn {
        kind: e.kind,
        identity: e.identity.clone(),
        changes: e.changes.clone(),
        significant: e.significant,
        note: e.note.clone(),
        existing_id: None,
        ops,
        holdings,
        audit,
        cancel,
        requests: Default::default(),
    }
}

/// What planning a batch of events reads from the store, read once: the committed holdings and
/// the queued operations of the identities concerned. Both passes of an import plan from it, so
/// they plan the same operations.
pub(crate) struct PlanInputs {
    holdings: HashMap<String, Holdings>,
    queued: HashMap<String, Vec<Queued>>,
    overrides: HashMap<String, desired::Overrides>,
    /// Linked accounts and what correlation holds back ([`crate::correlation::Overlay`]).
    pub(crate) overlay: Overlay,
    /// The batch's people, among whom a birthright request's approvers are resolved first.
    roster: crate::requests::Roster,
}

impl PlanInputs {
    pub(crate) fn load(engine: &Engine<'_>, events: &[Event]) -> Result<Self> {
        // Above a few thousand events one scan beats one query per identity.
        let overlay = Overlay::load(engine)?;
        let roster = crate::requests::Roster::new(engine, events.iter().map(|e| &e.identity))?;
        if events.len() > 2_000 {
            return Ok(Self {
                holdings: engine.store.all_holdings()?,
                queued: engine.store.queued(None)?,
                overrides: desired::overrides(engine, None)?,
                overlay,
                roster,
            });
        }
        let ids: Vec<&str> = events.iter().map(|e| &*e.identity.id).collect();
        let mut holdings = HashMap::with_capacity(ids.len());
        for id in &ids {
            let h = engine.store.holdings(id)?;
            if !h.is_empty() {
                holdings.insert((*id).to_string(), h);
            }
        }
        Ok(Self {
            holdings,
            queued: engine.store.queued(Some(&ids))?,
            overrides: desired::overrides(engine, Some(&ids))?,
            overlay,
            roster,
        })
    }

    pub(crate) fn plan(&self, engine: &Engine<'_>, e: &Event, scratch: &mut Scratch) -> EventIn {
        let empty = Holdings::new();
        let held = self.holdings.get(&*e.identity.id).unwrap_or(&empty);
        let q = self.queued.get(&*e.identity.id).map_or(&[][..], Vec::as_slice);
        let none = desired::Overrides::default();
        let o = self.overrides.get(&*e.identity.id).unwrap_or(&none);
        let people = crate::requests::BatchPeople { engine, roster: &self.roster };
        plan_event(engine, e, held, q, o, scratch, &self.overlay, &people)
    }

    /// The targets where correlation holds `e`'s identity back, with why.
    pub(crate) fn held_back(&self, engine: &Engine<'_>, e: &Event) -> Vec<(String, String)> {
        if self.overlay.is_empty() {
            return Vec::new();
        }
        let empty = Holdings::new();
        let stored = self.holdings.get(&*e.identity.id).unwrap_or(&empty);
        let linked = self.overlay.holdings(&e.identity.id, stored);
        let held = linked.as_ref().unwrap_or(stored);
        engine
            .config
            .targets
            .iter()
            .filter_map(|t| self.overlay.held_back(engine, &e.identity, &t.name, held).map(|why| (t.name.clone(), why)))
            .collect()
    }
}

/// Plans one event: desired access under the policy and the identity's `overrides`, SoD
/// applied, minus what is held. Queued operations that have not taken effect are kept when still
/// needed and cancelled when not.
#[allow(clippy::too_many_arguments, reason = "the planning inputs of one event")]
pub(crate) fn plan_event(
    engine: &Engine<'_>,
    e: &Event,
    held: &Holdings,
    queued: &[Queued],
    overrides: &desired::Overrides,
    scratch: &mut Scratch,
    overlay: &Overlay,
    people: &dyn crate::requests::decide::People,
) -> EventIn {
    // A linked account Tenure holds nothing for yet is the account as read: the plan takes it
    // over instead of creating another.
    let linked = overlay.holdings(&e.identity.id, held);
    let held = linked.as_ref().unwrap_or(held);
    // Roles with `approval` are asked, never granted by their condition: the ones that stopped
    // matching end their birthright request (a granted one's grant is revoked by this plan).
    let gated = desired::gated_roles(engine, &e.identity, scratch);
    let (ended, request_ends) = crate::requests::birthright_ends(engine, &e.identity, overrides, &gated);
    let overrides = ended.as_ref().unwrap_or(overrides);
    // SoD looks at what the identity will hold once the work under way is done. Attempted work
    // may have landed, so like `replan` it is taken as done: only untried work is undone.
    let untried: Vec<Queued> = queued.iter().filter(|q| !q.attempted).cloned().collect();
    let base = plan::unapply(held, &untried);
    let (desired, hits) = desired::for_identity(engine, &e.identity, &base, overrides, scratch);
    let mut wanted = names(&desired);
    // INVARIANT: nothing is planned on a target where correlation holds the identity back (a
    // candidate of an open case, or an account name an account Tenure must not take over has):
    // no account is created there, so none is taken over or duplicated before a person decides.
    if !overlay.is_empty() {
        wanted.retain(|t, _| overlay.held_back(engine, &e.identity, t, held).is_none());
    }
    let r = plan::replan(e.identity.status, held, queued, &wanted);
    let mut p = plan::Plan { ops: r.ops, holdings: r.holdings };
    // New accounts take their name from the identity now; existing ones keep theirs, so a later
    // username change can never redirect a revocation to another account.
    for (target, acct) in &mut p.holdings {
        if acct.exists && acct.name.is_none() {
            acct.name = engine
                .config
                .target(target)
                .and_then(|t| e.identity.attrs.get(t.account_attribute))
                .map(str::to_string);
        }
    }
    // Why something is revoked: the roles that granted it before the event.
    let before: Desired = match &e.previous {
        Some(prev) if prev.status != Status::Terminated => {
            desired::for_identity(engine, prev, held, &overrides.before(), scratch).0
        }
        _ => Desired::new(),
    };
    let mut ops = Vec::with_capacity(p.ops.len());
    for op in p.ops {
        let Some(target) = engine.config.target(&op.target) else { continue };
        if !target.kind.supports(op.kind) {
            continue;
        }
        let rules = match (op.kind, &op.entitlement) {
            (OpKind::Grant, Some(g)) => roles_for(&desired, &op.target, g),
            (OpKind::Revoke, Some(g)) => roles_for(&before, &op.target, g),
            _ => Vec::new(),
        };
        let account = p.holdings.get(&op.target).and_then(|a| a.name.clone());
        ops.push(OpIn { target: op.target, kind: op.kind, entitlement: op.entitlement, rules, account });
    }
    ops.extend(attribute_updates(engine, e, held, &p.holdings, queued, &r.keep, &ops, overlay));
    let mut audit = Vec::new();
    let request_opens = if gated.is_empty() {
        Vec::new()
    } else {
        let mut have: std::collections::BTreeSet<tenure_core::Entitlement> = base
            .iter()
            .flat_map(|(t, a)| {
                a.grants.iter().map(move |g| tenure_core::Entitlement { target: t.clone(), name: g.clone() })
            })
            .collect();
        for (t, m) in &desired {
            have.extend(m.keys().map(|n| tenure_core::Entitlement { target: t.clone(), name: n.clone() }));
        }
        crate::requests::birthright_opens(engine, &e.identity, overrides, &gated, &have, people, &mut audit)
    };
    rotate_on_owner_change(engine, e, &p.holdings, &mut ops, &mut audit);
    for hit in hits {
        // `mode = "record"` rules refuse nothing and are recorded as such, for a gradual rollout.
        let (action, outcome) = match (hit.mode, hit.refused.is_empty()) {
            (tenure_policy::SodMode::Record, _) => ("sod.recorded", "recorded"),
            (_, true) => ("sod.flagged", "flagged"),
            (_, false) => ("sod.refused", "refused"),
        };
        for ent in if hit.refused.is_empty() { hit.conflicting.clone() } else { hit.refused.clone() } {
            audit.push(
                AuditEntry::new("policy", action, outcome).identity(&e.identity.id).entitlement(Some(&ent)).reason(
                    format!("sod rule `{}` ({:?}); conflicting: {}", hit.rule, hit.action, hit.conflicting.join(", ")),
                ),
            );
        }
    }
    // The store cancels them only if each is still as the plan saw it (untried or attempted).
    let cancel = queued.iter().filter(|q| r.cancel.contains(&q.id)).cloned().collect();
    let mut out = event_in(e, ops, Some(p.holdings), audit, cancel);
    out.requests = tenure_store::RequestChanges { open: request_opens, end: request_ends };
    out
}

/// Issue 10: a non-human identity whose owner changed (a transfer, or the owner leaving and the
/// ownership moving to their manager) gets its credentials rotated in every target that can
/// rotate them and where it keeps an enabled account: the previous owner may know the secret.
fn rotate_on_owner_change(
    engine: &Engine<'_>,
    e: &Event,
    holdings: &Holdings,
    ops: &mut Vec<OpIn>,
    audit: &mut Vec<AuditEntry>,
) {
    let schema = &engine.config.schema;
    let (Some(prev), Some(slot)) = (&e.previous, schema.slot("owner_id")) else { return };
    let (before, after) = (prev.attrs.get(slot), e.identity.attrs.get(slot));
    if !e.identity.is_nhi() || e.identity.status != Status::Active || before.is_none() || before == after {
        return;
    }
    for (target, acct) in holdings {
        let Some(t) = engine.config.target(target) else { continue };
        let queued = ops.iter().any(|o| &o.target == target && o.kind == OpKind::RotateCredential);
        if !acct.exists || !acct.enabled || !t.kind.supports(OpKind::RotateCredential) || queued {
            continue;
        }
        ops.push(OpIn {
            target: target.clone(),
            kind: OpKind::RotateCredential,
            entitlement: None,
            rules: Vec::new(),
            account: acct.name.clone(),
        });
        audit.push(
            AuditEntry::new("policy", "nhi.rotate_on_owner_change", "planned")
                .identity(&e.identity.id)
                .target(target)
                .reason(format!(
                    "owner changed from `{}` to `{}`: the credential in `{target}` is rotated",
                    before.unwrap_or_default(),
                    after.unwrap_or("nobody")
                )),
        );
    }
}

/// Attribute sync: an `update_attributes` for each existing account whose mapped attributes
/// (`tenure_core::attributes::desired`, under the account's recorded name) differ between the
/// identity before the event and after it — a mover's new title, a changed family name. No
/// values are stored: the executor renders the identity's attributes when it runs and the
/// connector writes only what differs from the live account, so the operation always pushes the
/// latest state. Planning again on the result plans nothing (there is no delta left), which keeps
/// planning idempotent. Not planned for a leaver, an account created in this plan (the create
/// writes the attributes), an account with an update still queued (it will push these values),
/// a target correlation holds the identity back on, or a target that keeps no attributes
/// (PostgreSQL, manual).
#[allow(clippy::too_many_arguments, reason = "the planning inputs of one event, as `plan_event` holds them")]
fn attribute_updates(
    engine: &Engine<'_>,
    e: &Event,
    held: &Holdings,
    after: &Holdings,
    queued: &[Queued],
    kept: &[i64],
    planned: &[OpIn],
    overlay: &Overlay,
) -> Vec<OpIn> {
    let Some(prev) = e.previous.as_ref() else { return Vec::new() };
    if e.identity.status == Status::Terminated {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (target, acct) in after {
        let Some(cfg) = engine.config.target(target) else { continue };
        if !acct.exists || !cfg.kind.supports(OpKind::UpdateAttributes) {
            continue;
        }
        let creating = planned.iter().any(|o| o.target == *target && o.kind == OpKind::CreateAccount)
            || queued.iter().any(|q| {
                q.target == *target
                    && kept.contains(&q.id)
                    && matches!(q.kind, OpKind::CreateAccount | OpKind::UpdateAttributes)
            });
        if creating || (!overlay.is_empty() && overlay.held_back(engine, &e.identity, target, held).is_some()) {
            continue;
        }
        let render = |i: &tenure_core::Identity| {
            crate::executor::spec_of(engine.config, target, &i.id, acct.name.as_deref(), Some(i))
                .map(|spec| tenure_core::attributes::desired(&cfg.settings, |n| spec.lookup(n)))
                .ok()
        };
        if render(prev) != render(&e.identity) {
            out.push(OpIn {
                target: target.clone(),
                kind: OpKind::UpdateAttributes,
                entitlement: None,
                rules: Vec::new(),
                account: acct.name.clone(),
            });
        }
    }
    out
}

fn roles_for(d: &Desired, target: &str, name: &str) -> Vec<String> {
    d.get(target).and_then(|m| m.get(name)).cloned().unwrap_or_default()
}

/// Non-human identities whose owner leaves get a new owner (the owner's manager) or are
/// terminated, per `[nhi] on_owner_leave`. The change is applied to the parsed snapshot before
/// the diff, so it shows up as an ordinary, audited event and stays stable on re-import.
pub(crate) fn reassign_orphaned_nhi(
    engine: &Engine<'_>,
    previous: &FxHashMap<Box<str>, Identity>,
    parsed: &mut Parsed,
) -> Vec<AuditEntry> {
    let schema = &engine.config.schema;
    let (Some(owner_slot), Some(manager_slot)) = (schema.slot("owner_id"), schema.slot("manager_id")) else {
        return Vec::new();
    };
    let present: HashSet<&str> = parsed.identities.iter().map(|i| &*i.id).collect();
    let mut leaving: HashSet<String> =
        parsed.identities.iter().filter(|i| i.status == Status::Terminated).map(|i| i.id.to_string()).collect();
    leaving.extend(
        previous
            .keys()
            .filter(|k| !present.contains(&***k) && !parsed.rejected_keys.contains(&***k))
            .map(ToString::to_string),
    );
    if leaving.is_empty() {
        return Vec::new();
    }
    let manager_of: BTreeMap<String, String> = parsed
        .identities
        .iter()
        .chain(previous.values())
        .filter_map(|i| i.attrs.get(manager_slot).map(|m| (i.id.to_string(), m.to_string())))
        .collect();
    let mut audit = Vec::new();
    for nhi in parsed.identities.iter_mut().filter(|i| i.is_nhi() && i.status != Status::Terminated) {
        let Some(owner) = nhi.attrs.get(owner_slot).map(str::to_string) else { continue };
        if !leaving.contains(&owner) {
            continue;
        }
        let heir = manager_of.get(&owner).filter(|m| !leaving.contains(*m)).cloned();
        match (engine.policy.on_owner_leave, heir) {
            (OnOwnerLeave::TransferToManager, Some(heir)) => {
                nhi.attrs.set(owner_slot, Some(&heir));
                audit.push(
                    AuditEntry::new("policy", "nhi.transfer_ownership", "transferred")
                        .identity(&nhi.id)
                        .reason(format!("owner `{owner}` is leaving; ownership moves to their manager `{heir}`")),
                );
            }
            (policy, _) => {
                nhi.set_status(Status::Terminated);
                let why = if policy == OnOwnerLeave::Revoke {
                    "on_owner_leave = revoke"
                } else {
                    "no manager to transfer it to"
                };
                audit.push(
                    AuditEntry::new("policy", "nhi.revoke", "terminated")
                        .identity(&nhi.id)
                        .reason(format!("owner `{owner}` is leaving; {why}")),
                );
            }
        }
    }
    audit
}

/// Releases a held batch: plans its events against the current state and applies them.
pub fn approve(engine: &Engine<'_>, approval_id: i64, approver: &str) -> Result<tenure_store::BatchIds> {
    approve_as(engine, approval_id, &crate::requests::decide::Decider::new(approver, crate::requests::decide::Via::Cli))
}

/// [`approve`] by `decider`, whose actor the audit trail records (`token:NAME` through the
/// API, `user:NAME` through the CLI).
pub fn approve_as(
    engine: &Engine<'_>,
    approval_id: i64,
    decider: &crate::requests::decide::Decider,
) -> Result<tenure_store::BatchIds> {
    let approver = decider.name.as_str();
    let actor = decider.actor();
    let a = engine.store.approval(approval_id)?;
    if a.state != ApprovalState::Pending {
        return Err(EngineError::Invalid(format!("approval {approval_id} is {}, not pending", a.state)));
    }
    if a.kind != ApprovalKind::Batch {
        return Err(EngineError::Invalid(format!("approval {approval_id} is a {} approval, not a held batch", a.kind)));
    }
    crate::decisions::not_their_own(engine, &a, decider, crate::decisions::Decision::Release)?;
    let held = engine.store.held_events(&engine.config.schema, a.subject)?;
    let source = a.summary.get("source").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    // An identity another source brought in while the batch was held is that source's now: its
    // held event is skipped (audited), so the rest of the batch can still be released.
    let foreign = engine.store.foreign_identities(&source)?;
    let mut skipped = Vec::new();
    let mut scratch = Scratch::default();
    let overlay = Overlay::load(engine)?;
    let roster = crate::requests::Roster::new(engine, held.iter().map(|h| &h.identity))?;
    let people = crate::requests::BatchPeople { engine, roster: &roster };
    let mut planned = Vec::with_capacity(held.len());
    for h in held {
        if let Some(owner) = foreign.get(&h.record.identity) {
            skipped.push(
                AuditEntry::new(&actor, "approval.event_skipped", "skipped")
                    .identity(&h.record.identity)
                    .approver(approver)
                    .reason(format!(
                        "approval {approval_id}: held event {} not applied: identity `{}` belongs to source `{owner}` now",
                        h.record.id, h.record.identity
                    )),
            );
            continue;
        }
        let previous = engine.store.identity(&engine.config.schema, &h.record.identity)?;
        let event = Event {
            kind: h.record.kind,
            identity: h.identity,
            previous,
            changes: h.record.changes.clone(),
            significant: h.record.significant,
            note: h.record.note.clone(),
        };
        let holdings = engine.store.holdings(&event.identity.id)?;
        let queued = engine.store.queued(Some(&[&*event.identity.id]))?;
        let q = queued.get(&*event.identity.id).map_or(&[][..], Vec::as_slice);
        let overrides = desired::overrides(engine, Some(&[&*event.identity.id]))?.remove(&*event.identity.id);
        let mut e =
            plan_event(engine, &event, &holdings, q, &overrides.unwrap_or_default(), &mut scratch, &overlay, &people);
        e.existing_id = Some(h.record.id);
        planned.push(e);
    }
    let file = a.summary.get("file").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    let batch = Batch {
        actor,
        source,
        file,
        sha256: String::new(),
        summary: a.summary.clone(),
        state: BatchState::Approved { import_id: a.subject, approval_id, approver: approver.into() },
        base_import: None,
        events: planned,
        audit: skipped,
        supersede: Vec::new(),
        ingests: Default::default(),
        correlation: Vec::new(),
    };
    Ok(engine.store.commit_batch(&engine.config.schema, &batch)?)
}

/// The whole population's plan under another policy. Changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    pub identities: usize,
    pub affected: usize,
    pub grants: usize,
    pub revokes: usize,
    pub accounts_created: usize,
    pub changes: Vec<SimulatedChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimulatedChange {
    pub identity: String,
    pub target: String,
    pub kind: OpKind,
    pub entitlement: Option<String>,
    pub rules: Vec<String>,
}

pub fn simulate(engine: &Engine<'_>) -> Result<Simulation> {
    let identities = engine.store.identities(&engine.config.schema, None)?;
    let holdings = engine.store.all_holdings()?;
    let overrides = desired::overrides(engine, None)?;
    // As every plan does (see `plan_event` and `explain`): loaded once, a linked account Tenure
    // holds nothing for yet is the account as read, and a target where correlation holds the
    // identity back gets nothing planned.
    let overlay = Overlay::load(engine)?;
    let empty = Holdings::new();
    let none = desired::Overrides::default();
    let mut scratch = Scratch::default();
    let mut sim = Simulation {
        identities: identities.len(),
        affected: 0,
        grants: 0,
        revokes: 0,
        accounts_created: 0,
        changes: Vec::new(),
    };
    for i in &identities {
        let stored = holdings.get(&*i.id).unwrap_or(&empty);
        let linked = overlay.holdings(&i.id, stored);
        let held = linked.as_ref().unwrap_or(stored);
        let (desired, _) = desired::for_identity(engine, i, held, overrides.get(&*i.id).unwrap_or(&none), &mut scratch);
        let mut wanted = names(&desired);
        if !overlay.is_empty() {
            wanted.retain(|t, _| overlay.held_back(engine, i, t, held).is_none());
        }
        let p = plan::plan(i.status, held, &wanted);
        let mut touched = false;
        for op in p.ops {
            if !engine.config.target(&op.target).is_some_and(|t| t.kind.supports(op.kind)) {
                continue;
            }
            touched = true;
            match op.kind {
                OpKind::Grant => sim.grants += 1,
                OpKind::Revoke => sim.revokes += 1,
                OpKind::CreateAccount => sim.accounts_created += 1,
                _ => {}
            }
            let rules = match &op.entitlement {
                Some(g) if op.kind == OpKind::Grant => roles_for(&desired, &op.target, g),
                _ => Vec::new(),
            };
            sim.changes.push(SimulatedChange {
                identity: i.id.to_string(),
                target: op.target,
                kind: op.kind,
                entitlement: op.entitlement,
                rules,
            });
        }
        sim.affected += usize::from(touched);
    }
    Ok(sim)
}

//! The behaviour every store implementation must have, written against the traits only.
//!
//! An implementation's test hands a [`Subject`] (how to make a fresh store on a given clock, and
//! how to reopen it read-only) to [`run_all`] and fails on any [`Failure`]. SQLite runs it in
//! `crates/tenure-store/tests/store/`; a PostgreSQL store runs the same cases. Each case is a
//! plain function on a fresh store with a [`FakeClock`], so leases and due times are stepped, not
//! waited for. Cases return errors instead of panicking, so this module obeys the workspace's
//! lints like any library code.

use crate::{
    Backend, Batch, BatchState, EventIn, Finding, Finished, HeldBatch, OpFilter, OpIn, OpRecord, ReconRun, Remediation,
    RemediationOp, Result, StoreError,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tenure_core::audit::{AuditEntry, AuditRecord};
use tenure_core::clock::{Clock, FakeClock, stamp};
use tenure_core::error::{Code, HasCode};
use tenure_core::evidence::Checkpoint;
use tenure_core::plan::{AccountView, Holdings};
use tenure_core::rules::retention_due;
use tenure_core::{
    ApprovalKind, ApprovalState, Attrs, CaseState, EventKind, EventState, ExceptionKind, ExceptionState, FindingKind,
    Identity, Kind, OpKind, OpState, Schema, Status, TicketState,
};

/// What the suite needs from an implementation.
pub trait Subject {
    /// A new, empty store whose timestamps come from `clock`.
    fn create(&self, clock: Arc<dyn Clock>) -> Result<Box<dyn Backend>>;
    /// The store [`create`](Subject::create) made last, opened again read-only.
    fn reopen_read_only(&self, clock: Arc<dyn Clock>) -> Result<Box<dyn Backend>>;
}

/// Why a case failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(format!("unexpected store error ({}): {e}", e.code()))
    }
}

pub type Outcome = std::result::Result<(), Failure>;

/// One case: a fresh store (or two) from the subject, checked.
pub type Case = fn(&dyn Subject) -> Outcome;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("a_pushed_delivery_is_journaled_once_and_ingested_once", a_pushed_delivery_is_journaled_once_and_ingested_once),
    (
        "issue15_ingested_journal_entries_are_pruned_pending_ones_kept",
        issue15_ingested_journal_entries_are_pruned_pending_ones_kept,
    ),
    ("push_lookups_find_usernames_owners_and_recent_batches", push_lookups_find_usernames_owners_and_recent_batches),
    ("a_batch_commits_whole_or_not_at_all_with_its_audit", a_batch_commits_whole_or_not_at_all_with_its_audit),
    ("the_audit_chain_appends_scans_and_checkpoints", the_audit_chain_appends_scans_and_checkpoints),
    ("audit_records_are_stored_sanitized", audit_records_are_stored_sanitized),
    ("a_stale_import_conflicts", a_stale_import_conflicts),
    ("a_held_batch_is_approved_once", a_held_batch_is_approved_once),
    ("a_held_batch_is_rejected", a_held_batch_is_rejected),
    ("a_newer_snapshot_supersedes_a_held_batch", a_newer_snapshot_supersedes_a_held_batch),
    ("an_identity_of_another_source_is_never_rewritten", an_identity_of_another_source_is_never_rewritten),
    ("queued_operations_are_replaced_or_refused", queued_operations_are_replaced_or_refused),
    (
        "attempted_work_is_offered_and_cancelled_only_as_it_was_seen",
        attempted_work_is_offered_and_cancelled_only_as_it_was_seen,
    ),
    ("claims_take_whole_runs_in_order_once", claims_take_whole_runs_in_order_once),
    ("a_live_lease_is_never_taken_over", a_live_lease_is_never_taken_over),
    ("an_expired_lease_is_taken_over", an_expired_lease_is_taken_over),
    (
        "a_finish_by_a_claimer_who_lost_the_lease_changes_nothing",
        a_finish_by_a_claimer_who_lost_the_lease_changes_nothing,
    ),
    ("finish_retry_and_cascade_drive_the_case", finish_retry_and_cascade_drive_the_case),
    ("tickets_are_opened_completed_flagged_and_withdrawn", tickets_are_opened_completed_flagged_and_withdrawn),
    ("findings_remediation_and_exceptions", findings_remediation_and_exceptions),
    (
        "retention_candidates_are_facts_and_planning_writes_the_decision",
        retention_candidates_are_facts_and_planning_writes_the_decision,
    ),
    ("a_read_only_store_reads_and_refuses_writes", a_read_only_store_reads_and_refuses_writes),
    ("the_scheduler_lease_has_one_holder", schedule::the_scheduler_lease_has_one_holder),
    ("job_runs_are_recorded_and_audited_when_asked", schedule::job_runs_are_recorded_and_audited_when_asked),
    (
        "a_closed_leaver_case_is_rechecked_once_and_reopened_by_what_came_back",
        schedule::a_closed_leaver_case_is_rechecked_once_and_reopened_by_what_came_back,
    ),
    (
        "rechecked_fixes_past_the_guard_are_held_for_approval",
        schedule::rechecked_fixes_past_the_guard_are_held_for_approval,
    ),
    (
        "date_candidates_are_the_identities_a_date_may_change",
        schedule::date_candidates_are_the_identities_a_date_may_change,
    ),
    ("scim_resources_are_per_source_versioned_and_unique", scim::scim_resources_are_per_source_versioned_and_unique),
    ("a_scim_write_and_its_batch_commit_together", scim::a_scim_write_and_its_batch_commit_together),
    ("tokens_are_found_by_hash_revoked_and_audited", tokens::tokens_are_found_by_hash_revoked_and_audited),
    (
        "correlation_is_recorded_once_and_cases_decided_once",
        correlation::correlation_is_recorded_once_and_cases_decided_once,
    ),
    (
        "a_refused_adoption_cancels_the_work_and_opens_a_case",
        correlation::a_refused_adoption_cancels_the_work_and_opens_a_case,
    ),
    (
        "a_refused_adoption_cancels_held_work_and_never_reuses_a_decided_case",
        correlation::a_refused_adoption_cancels_held_work_and_never_reuses_a_decided_case,
    ),
    ("exceptions_are_recorded_resolved_and_accepted", exceptions::exceptions_are_recorded_resolved_and_accepted),
    (
        "rotations_are_planned_once_and_their_verification_dated",
        credentials::rotations_are_planned_once_and_their_verification_dated,
    ),
    ("identity_pages_filter_and_continue_from_the_cursor", browse::identity_pages_filter_and_continue_from_the_cursor),
    (
        "a_campaign_is_decided_reassigned_timed_out_and_closed_once",
        campaigns::a_campaign_is_decided_reassigned_timed_out_and_closed_once,
    ),
    ("nobody_decides_their_own_review_item", campaigns::nobody_decides_their_own_review_item),
    (
        "a_revoke_decision_is_planned_once_with_its_exception_and_override",
        campaigns::a_revoke_decision_is_planned_once_with_its_exception_and_override,
    ),
    // Access requests (issue 10).
    (
        "a_request_is_approved_stage_by_stage_granted_and_expires",
        requests::a_request_is_approved_stage_by_stage_granted_and_expires,
    ),
    ("requests_end_by_rejection_revocation_and_leaving", requests::requests_end_by_rejection_revocation_and_leaving),
];

/// Runs every case on fresh stores of `subject`; returns the failures by case name.
pub fn run_all(subject: &dyn Subject) -> Vec<(&'static str, Failure)> {
    CASES.iter().filter_map(|(name, case)| case(subject).err().map(|f| (*name, f))).collect()
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure(format!("line {}: {}", line!(), format!($($fmt)+))));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err(Failure(format!("line {}: {}: {:?} != {:?}", line!(), format!($($fmt)+), left, right)));
                }
            }
        }
    };
}

mod campaigns;
mod requests;
mod schedule;
mod scim;

/// Fails unless `r` is an error with stable code `code`.
fn expect_code<T: std::fmt::Debug>(r: Result<T>, code: Code, what: &str) -> Outcome {
    match r {
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(Failure(format!("{what}: expected `{code}`, got `{}`: {e}", e.code()))),
        Ok(v) => Err(Failure(format!("{what}: expected `{code}`, got Ok({v:?})"))),
    }
}

fn nth<T: Clone>(v: &[T], i: usize, what: &str) -> std::result::Result<T, Failure> {
    v.get(i).cloned().ok_or_else(|| Failure(format!("{what}: no item {i} in {} item(s)", v.len())))
}

const LEASE: Duration = Duration::from_secs(30);

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// A fresh store on a fake clock.
struct World {
    store: Box<dyn Backend>,
    clock: Arc<FakeClock>,
    schema: Schema,
}

impl World {
    fn new(subject: &dyn Subject) -> std::result::Result<Self, Failure> {
        let clock = Arc::new(FakeClock::at(start()));
        Ok(Self { store: subject.create(clock.clone())?, clock, schema: Schema::default() })
    }

    fn now(&self) -> String {
        stamp(self.clock.now())
    }

    fn commit(&self, batch: &Batch) -> Result<crate::BatchIds> {
        self.store.commit_batch(&self.schema, batch)
    }

    fn ops(&self, identity: &str) -> Result<Vec<OpRecord>> {
        self.store.operations(&OpFilter { identity: Some(identity.into()), ..OpFilter::default() })
    }

    fn op(&self, id: i64) -> std::result::Result<OpRecord, Failure> {
        let all = self.store.operations(&OpFilter::default())?;
        all.into_iter().find(|o| o.id == id).ok_or_else(|| Failure(format!("operation {id} is gone")))
    }

    fn audit_records(&self) -> std::result::Result<Vec<AuditRecord>, Failure> {
        let mut out = Vec::new();
        self.store.scan_audit(&crate::AuditFilter::default(), &mut |r| {
            out.push(r);
            true
        })?;
        Ok(out)
    }

    fn actions(&self) -> std::result::Result<Vec<String>, Failure> {
        Ok(self.audit_records()?.into_iter().map(|r| r.entry.action).collect())
    }

    fn case_of(&self, op: &OpRecord) -> std::result::Result<crate::CaseRecord, Failure> {
        let cases = self.store.cases(false)?;
        cases.into_iter().find(|c| c.id == op.case_id).ok_or_else(|| Failure(format!("case {} is gone", op.case_id)))
    }

    fn chain_verifies(&self) -> Outcome {
        let v = self.store.verify_audit()?;
        ensure!(v.first_bad.is_none(), "the audit chain breaks: {:?}", v.first_bad);
        Ok(())
    }
}

fn person(schema: &Schema, id: &str, status: Status) -> Identity {
    let mut attrs = Attrs::new(schema);
    if let Some(slot) = schema.slot("username") {
        attrs.set(slot, Some(&id.to_lowercase()));
    }
    Identity::new(id, Kind::Employee, status, attrs)
}

fn op_in(target: &str, kind: OpKind, entitlement: Option<&str>) -> OpIn {
    OpIn { target: target.into(), kind, entitlement: entitlement.map(Into::into), rules: vec![], account: None }
}

fn event(kind: EventKind, identity: Identity, ops: Vec<OpIn>) -> EventIn {
    EventIn {
        kind,
        identity,
        changes: vec![],
        significant: false,
        note: None,
        existing_id: None,
        ops,
        holdings: None,
        audit: vec![],
        cancel: vec![],
        requests: Default::default(),
    }
}

fn holdings(target: &str, enabled: bool, grants: &[&str]) -> Holdings {
    let view = AccountView {
        exists: true,
        enabled,
        grants: grants.iter().map(ToString::to_string).collect(),
        name: Some("acct".into()),
    };
    BTreeMap::from([(target.to_string(), view)])
}

fn batch(source: &str, events: Vec<EventIn>, base_import: Option<i64>) -> Batch {
    Batch {
        actor: format!("source:{source}"),
        source: source.into(),
        file: format!("{source}.csv"),
        sha256: "00".into(),
        summary: serde_json::json!({ "rows": events.len() }),
        state: BatchState::Applied,
        events,
        audit: vec![],
        base_import,
        supersede: vec![],
        ingests: Default::default(),
        correlation: Vec::new(),
    }
}

/// Joiners of `source`, each with `create_account` and a `staff` grant in `dir`.
fn joiners(w: &World, source: &str, ids: &[&str]) -> std::result::Result<Batch, Failure> {
    let events = ids
        .iter()
        .map(|id| {
            let mut e = event(
                EventKind::Joiner,
                person(&w.schema, id, Status::Active),
                vec![op_in("dir", OpKind::CreateAccount, None), op_in("dir", OpKind::Grant, Some("staff"))],
            );
            e.holdings = Some(holdings("dir", true, &["staff"]));
            e
        })
        .collect();
    Ok(batch(source, events, w.store.last_import(source)?))
}

fn held(w: &World, source: &str, ids: &[&str]) -> std::result::Result<Batch, Failure> {
    let events = ids.iter().map(|id| event(EventKind::Leaver, person(&w.schema, id, Status::Terminated), vec![]));
    let mut b = batch(source, events.collect(), w.store.last_import(source)?);
    b.state =
        BatchState::Held { reason: "3 leavers exceed max_leavers = 2".into(), submitted_by: vec![b.actor.clone()] };
    Ok(b)
}

fn finished(op: &OpRecord, state: OpState) -> Finished {
    Finished {
        op: op.id,
        state,
        error: (state == OpState::Failed).then(|| "refused by the target".to_string()),
        next_attempt_at: None,
        note: None,
        audit: AuditEntry::new("executor", &format!("apply.{}", op.kind), state.as_str()).identity(&op.identity),
    }
}

/// Claims everything claimable for `owner` and finishes it `verified`.
fn settle(w: &World, owner: &str) -> Outcome {
    let ops = w.store.claim(owner, LEASE, 1000)?;
    let done: Vec<Finished> = ops.iter().map(|o| finished(o, OpState::Verified)).collect();
    let n = w.store.finish_many(&done, &[], owner)?;
    ensure_eq!(n, done.len(), "every outcome of the claimer is recorded");
    Ok(())
}

pub fn a_batch_commits_whole_or_not_at_all_with_its_audit(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let ids = w.commit(&joiners(&w, "hr", &["E1", "E2"])?)?;
    ensure_eq!((ids.events, ids.operations, ids.cases), (2, 4, 2), "counts of the batch");
    ensure!(ids.approval_id.is_none(), "an applied batch needs no approval");
    ensure_eq!(w.store.last_import("hr")?, Some(ids.import_id), "the batch is the source's last import");
    let people = w.store.identities(&w.schema, Some("hr"))?;
    ensure_eq!(people.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(), ["E1", "E2"], "identities written");
    ensure_eq!(w.store.holdings("E1")?, holdings("dir", true, &["staff"]), "holdings written");
    let ops = w.ops("E1")?;
    ensure_eq!(
        ops.iter().map(|o| (o.kind, o.state)).collect::<Vec<_>>(),
        [(OpKind::CreateAccount, OpState::Pending), (OpKind::Grant, OpState::Pending)],
        "operations queued in order"
    );
    ensure!(ops.iter().all(|o| o.created_at == w.now() && o.updated_at == w.now()), "times come from the clock");
    ensure!(
        w.store.cases(true)?.iter().all(|c| c.state == CaseState::Open && c.opened_at == w.now()),
        "one open case per event"
    );
    let records = w.audit_records()?;
    let actions: Vec<&str> = records.iter().map(|r| r.entry.action.as_str()).collect();
    ensure_eq!(
        actions,
        ["import", "event.joiner", "plan", "event.joiner", "plan"],
        "the audit records describing the batch"
    );
    let plan =
        records.iter().find(|r| r.entry.action == "plan").and_then(|r| r.entry.reason.clone()).unwrap_or_default();
    ensure!(
        plan.contains("2 operation(s)") && plan.contains("create_account") && plan.contains("grant"),
        "the plan record names every operation: {plan}"
    );
    ensure!(records.iter().all(|r| r.at == w.now()), "audit `at` comes from the clock");
    w.chain_verifies()?;

    // A batch that fails part-way (its second identity belongs to another source) leaves
    // nothing behind: no identity, operation, import or audit record.
    w.commit(&joiners(&w, "contractors", &["C1"])?)?;
    let before = (w.audit_records()?.len(), w.store.operations(&OpFilter::default())?.len());
    w.clock.advance(seconds(5));
    let mut bad = joiners(&w, "hr", &["E3", "C1"])?;
    bad.audit.push(AuditEntry::new("source:hr", "import.row_rejected", "rejected"));
    expect_code(w.commit(&bad), Code::Conflict, "a batch rewriting another source's identity")?;
    ensure!(w.store.identity(&w.schema, "E3")?.is_none(), "the first identity of the failed batch is not written");
    ensure_eq!(w.store.last_import("hr")?, Some(ids.import_id), "no import recorded");
    ensure_eq!(
        (w.audit_records()?.len(), w.store.operations(&OpFilter::default())?.len()),
        before,
        "no audit record or operation of the failed batch"
    );
    w.chain_verifies()
}

pub fn the_audit_chain_appends_scans_and_checkpoints(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let first = w.now();
    w.store.audit(&[
        AuditEntry::new("system", "test.a", "ok").identity("E1"),
        AuditEntry::new("system", "test.b", "ok").identity("E2"),
    ])?;
    w.clock.advance(seconds(60));
    let later = w.now();
    w.store.audit(&[AuditEntry::new("system", "test.c", "ok").identity("E1")])?;
    let records = w.audit_records()?;
    ensure_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3], "seq counts from 1 without gaps");
    ensure_eq!(records.iter().map(|r| r.at.as_str()).collect::<Vec<_>>(), [&first, &first, &later], "`at` per append");
    let mut of_e1 = Vec::new();
    w.store.scan_audit(&crate::AuditFilter { identity: Some("E1".into()), since: None }, &mut |r| {
        of_e1.push(r.entry.action);
        true
    })?;
    ensure_eq!(of_e1, ["test.a", "test.c"], "filtered by identity");
    let mut since = Vec::new();
    w.store.scan_audit(&crate::AuditFilter { identity: None, since: Some(later.clone()) }, &mut |r| {
        since.push(r.seq);
        true
    })?;
    ensure_eq!(since, [3], "filtered by time");
    let mut stopped = 0;
    w.store.scan_audit(&crate::AuditFilter::default(), &mut |_| {
        stopped += 1;
        false
    })?;
    ensure_eq!(stopped, 1, "the visitor stops the scan");
    let report = w.store.verify_audit()?;
    let last = nth(&records, 2, "records")?;
    ensure_eq!(report.records, 3, "verified records");
    ensure_eq!(report.head, Some((3, last.hash.clone())), "the head");

    // A checkpoint signs its own record, in the same transaction.
    w.clock.advance(seconds(1));
    let sign = |head: &AuditRecord| Checkpoint {
        seq: head.seq,
        head: head.hash.clone(),
        at: head.at.clone(),
        key_id: "k1".into(),
        signature: "c2ln".into(),
    };
    let c = w.store.append_checkpoint(&AuditEntry::new("user:alice", "audit.checkpoint", "signed"), &sign)?;
    let head = w.store.verify_audit()?.head;
    ensure_eq!(head, Some((c.seq, c.head.clone())), "the checkpoint covers its own record");
    ensure_eq!(c.at, w.now(), "the record is stamped by the clock");
    ensure_eq!(w.store.checkpoints()?, std::slice::from_ref(&c), "checkpoints are listed");
    let wrong = |head: &AuditRecord| Checkpoint { seq: head.seq - 1, ..sign(head) };
    expect_code(
        w.store.append_checkpoint(&AuditEntry::new("user:alice", "audit.checkpoint", "signed"), &wrong),
        Code::Conflict,
        "a checkpoint that does not sign the head",
    )?;
    ensure_eq!(w.audit_records()?.len(), 4, "the refused checkpoint's record is not appended");
    ensure_eq!(w.store.checkpoints()?.len(), 1, "nor the checkpoint");
    w.chain_verifies()
}

pub fn a_stale_import_conflicts(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let stale = joiners(&w, "hr", &["E2"])?;
    let ids = w.commit(&joiners(&w, "hr", &["E1"])?)?;
    expect_code(w.commit(&stale), Code::Conflict, "a batch computed before the last import")?;
    ensure!(w.store.identity(&w.schema, "E2")?.is_none(), "nothing of the stale batch is written");
    ensure_eq!(w.store.last_import("hr")?, Some(ids.import_id), "the last import stands");
    let fresh = joiners(&w, "hr", &["E2"])?;
    ensure_eq!(fresh.base_import, Some(ids.import_id), "computed against the last import");
    w.commit(&fresh)?;
    // Another source's imports do not make this one's stale.
    w.commit(&joiners(&w, "contractors", &["C1"])?)?;
    w.commit(&joiners(&w, "hr", &["E3"])?)?;
    Ok(())
}

/// Commits a held batch of `ids` and returns it with its approval and import.
fn commit_held(w: &World, source: &str, ids: &[&str]) -> std::result::Result<(Batch, HeldBatch), Failure> {
    let mut b = held(w, source, ids)?;
    b.supersede = crate::conformance::superseded(w, source)?;
    let r = w.commit(&b)?;
    let approval = r.approval_id.ok_or_else(|| Failure("a held batch has an approval".into()))?;
    Ok((b, HeldBatch { approval, import: r.import_id, source: source.into() }))
}

/// What the engine passes: every held batch of the source, as the supersession rule decides.
fn superseded(w: &World, source: &str) -> std::result::Result<Vec<HeldBatch>, Failure> {
    let held = w.store.held_batches()?;
    Ok(tenure_core::rules::superseded_by_snapshot(source, &held).into_iter().cloned().collect())
}

pub fn a_held_batch_is_approved_once(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let (_, h) = commit_held(&w, "hr", &["E1"])?;
    ensure_eq!(w.store.held_batches()?, std::slice::from_ref(&h), "the held batch is listed with its source");
    let approval = w.store.approval(h.approval)?;
    ensure_eq!((approval.kind, approval.state), (ApprovalKind::Batch, ApprovalState::Pending), "a pending batch");
    ensure_eq!(approval.subject, h.import, "the approval is about the import");
    ensure_eq!(w.store.approvals(true)?.len(), 1, "listed as pending");
    ensure_eq!(
        w.store.identity(&w.schema, "E1")?.map(|i| i.status),
        Some(Status::Active),
        "nothing of a held batch is applied"
    );
    let events = w.store.held_events(&w.schema, h.import)?;
    let e = nth(&events, 0, "held events")?;
    ensure_eq!((e.record.kind, e.record.state), (EventKind::Leaver, EventState::Held), "the held event");
    ensure_eq!(e.identity.status, Status::Terminated, "with the identity it would produce");
    ensure_eq!(w.store.last_import("hr")?.map(|i| i == h.import), Some(false), "a held import is not applied");

    w.clock.advance(seconds(90));
    let mut ev = event(EventKind::Leaver, e.identity.clone(), vec![op_in("dir", OpKind::Disable, None)]);
    ev.existing_id = Some(e.record.id);
    let mut approve = batch("hr", vec![ev], None);
    approve.actor = "user:alice".into();
    approve.state = BatchState::Approved { import_id: h.import, approval_id: h.approval, approver: "alice".into() };
    let ids = w.commit(&approve)?;
    ensure_eq!((ids.import_id, ids.events, ids.operations), (h.import, 1, 1), "the approved batch");
    let a = w.store.approval(h.approval)?;
    ensure_eq!(a.state, ApprovalState::Approved, "approved");
    ensure_eq!((a.decided_by.as_deref(), a.decided_at), (Some("alice"), Some(w.now())), "by whom and when");
    ensure_eq!(w.store.last_import("hr")?, Some(h.import), "an approved import is applied");
    ensure_eq!(
        w.store.identity(&w.schema, "E1")?.map(|i| i.status),
        Some(Status::Terminated),
        "the identity is written"
    );
    ensure_eq!(
        w.store.events("E1")?.iter().map(|e| e.state).collect::<Vec<_>>(),
        [EventState::Applied, EventState::Applied],
        "the held event is applied, not duplicated"
    );
    ensure!(w.actions()?.iter().any(|a| a == "approval.approved"), "the approval is audited");
    ensure!(w.store.held_batches()?.is_empty(), "nothing held any more");
    expect_code(w.commit(&approve), Code::Conflict, "approving twice")?;
    ensure_eq!(w.ops("E1")?.len(), 3, "the second approval planned nothing");
    w.chain_verifies()
}

pub fn a_held_batch_is_rejected(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let (_, h) = commit_held(&w, "hr", &["E1", "E2"])?;
    w.clock.advance(seconds(30));
    w.store.reject(h.approval, "alice", "the file was cut off")?;
    let a = w.store.approval(h.approval)?;
    ensure_eq!(a.state, ApprovalState::Rejected, "rejected");
    ensure_eq!(a.decision_reason.as_deref(), Some("the file was cut off"), "with the reason");
    ensure_eq!(a.decided_at, Some(w.now()), "decided now");
    ensure!(w.store.approvals(true)?.is_empty(), "no longer pending");
    ensure!(w.store.held_batches()?.is_empty(), "no longer held");
    ensure_eq!(w.store.events("E2")?.first().map(|e| e.state), Some(EventState::Rejected), "its events are rejected");
    ensure!(w.store.identities(&w.schema, None)?.is_empty(), "nothing applied");
    let rejected = w.audit_records()?.into_iter().find(|r| r.entry.action == "approval.rejected");
    ensure_eq!(rejected.and_then(|r| r.entry.approver), Some("alice".to_string()), "audited with who rejected");
    expect_code(w.store.reject(h.approval, "bob", "again"), Code::Conflict, "rejecting twice")?;
    expect_code(w.store.approval(h.approval + 100), Code::NotFound, "an unknown approval")?;
    w.chain_verifies()
}

pub fn a_newer_snapshot_supersedes_a_held_batch(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let (_, h1) = commit_held(&w, "hr", &["E1", "E2", "E3"])?;
    let (_, other) = commit_held(&w, "contractors", &["C1", "C2", "C3"])?;
    ensure_eq!(w.store.held_batches()?, [h1.clone(), other.clone()], "both held, oldest first");

    // The engine must pass the held batches of the source; leaving one out is a stale decision.
    let mut blind = joiners(&w, "hr", &["E9"])?;
    blind.supersede.clear();
    expect_code(w.commit(&blind), Code::Conflict, "a snapshot that ignores a held batch of its source")?;
    ensure!(w.store.identity(&w.schema, "E9")?.is_none(), "nothing of it is written");

    let mut next = joiners(&w, "hr", &["E9"])?;
    next.supersede = superseded(&w, "hr")?;
    ensure_eq!(next.supersede, std::slice::from_ref(&h1), "the rule picks the source's held batch");
    w.commit(&next)?;
    ensure_eq!(w.store.approval(h1.approval)?.state, ApprovalState::Superseded, "the held approval is superseded");
    ensure_eq!(w.store.approval(h1.approval)?.decided_at, Some(w.now()), "now");
    ensure_eq!(
        w.store.events("E1")?.first().map(|e| e.state),
        Some(EventState::Superseded),
        "its events are superseded"
    );
    ensure_eq!(w.store.approval(other.approval)?.state, ApprovalState::Pending, "another source's batch stays held");
    ensure_eq!(w.store.held_batches()?, std::slice::from_ref(&other), "only the other source's batch is held");
    ensure!(w.actions()?.iter().any(|a| a == "approval.superseded"), "audited");

    // A decision naming a batch that is no longer held is stale too.
    let mut late = joiners(&w, "hr", &["E8"])?;
    late.supersede = vec![h1];
    expect_code(w.commit(&late), Code::Conflict, "superseding a batch already decided")?;
    ensure!(w.store.identity(&w.schema, "E8")?.is_none(), "nothing of it is written");
    w.chain_verifies()
}

pub fn an_identity_of_another_source_is_never_rewritten(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "contractors", &["C1"])?)?;
    let mut takeover =
        batch("hr", vec![event(EventKind::Leaver, person(&w.schema, "C1", Status::Terminated), vec![])], None);
    takeover.base_import = w.store.last_import("hr")?;
    expect_code(w.commit(&takeover), Code::Conflict, "another source's batch naming the identity")?;
    ensure_eq!(
        w.store.identity(&w.schema, "C1")?.map(|i| i.status),
        Some(Status::Active),
        "the identity keeps its state"
    );
    ensure_eq!(
        w.store.foreign_identities("hr")?,
        std::collections::HashMap::from([("C1".to_string(), "contractors".to_string())]),
        "owned by the source that brought it"
    );
    ensure!(w.store.foreign_identities("contractors")?.is_empty(), "not foreign to its own source");
    ensure_eq!(w.store.identities(&w.schema, Some("hr"))?.len(), 0, "hr has no identities");
    Ok(())
}

pub fn queued_operations_are_replaced_or_refused(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let queued = w.store.queued(None)?;
    let mine = queued.get("E1").cloned().unwrap_or_default();
    ensure_eq!(
        mine.iter().map(|q| (q.kind, q.entitlement.clone())).collect::<Vec<_>>(),
        [(OpKind::CreateAccount, None), (OpKind::Grant, Some("staff".to_string()))],
        "queued, in order"
    );
    ensure_eq!(w.store.queued(Some(&["E1"]))?.get("E1"), Some(&mine), "the same for one identity");
    ensure!(w.store.queued(Some(&["E2"]))?.is_empty(), "nothing for an identity without work");

    // Claimed work has started: it is no longer replaceable, and cancelling it is refused.
    let claimed = w.store.claim("A", LEASE, 10)?;
    ensure_eq!(claimed.len(), 2, "the run is claimed");
    ensure!(w.store.queued(None)?.is_empty(), "started work is not queued");
    let grant = nth(&mine, 1, "queued")?;
    let mut mover = event(EventKind::Mover, person(&w.schema, "E1", Status::Active), vec![]);
    mover.cancel = vec![grant.clone()];
    let cancel = batch("hr", vec![mover.clone()], w.store.last_import("hr")?);
    expect_code(w.commit(&cancel), Code::Conflict, "cancelling an operation that started")?;
    ensure_eq!(w.op(grant.id)?.state, OpState::Running, "the started operation is untouched");

    // Released unattempted, it is queued again and can be cancelled (audited).
    let ids: Vec<i64> = claimed.iter().map(|o| o.id).collect();
    w.store.finish_many(&[], &ids, "A")?;
    ensure_eq!(w.store.queued(None)?.get("E1").map(Vec::len), Some(2), "released work is queued again");
    w.clock.advance(seconds(10));
    w.commit(&cancel)?;
    let g = w.op(grant.id)?;
    ensure_eq!(g.state, OpState::Cancelled, "cancelled");
    ensure_eq!(g.updated_at, w.now(), "now");
    ensure!(
        w.audit_records()?.iter().any(|r| r.entry.action == "plan.grant" && r.entry.outcome == "cancelled"),
        "the cancellation is audited"
    );
    ensure_eq!(w.case_of(&g)?.state, CaseState::Open, "the case waits for the create");

    // Remediation work is never replaced by a lifecycle plan.
    w.store.commit_remediation(&Remediation {
        run_ids: vec![],
        ops: vec![RemediationOp {
            identity: "E1".into(),
            target: "dir".into(),
            kind: OpKind::Revoke,
            entitlement: Some("finance".into()),
            account: None,
            detail: "drift".into(),
        }],
        held: None,
        actor: "reconciler".into(),
    })?;
    ensure_eq!(w.store.queued(None)?.get("E1").map(Vec::len), Some(1), "only the lifecycle create is queued");
    w.chain_verifies()
}

pub fn attempted_work_is_offered_and_cancelled_only_as_it_was_seen(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let (create, grant) = (nth(&ops, 0, "claimed")?, nth(&ops, 1, "claimed")?);
    let retry = Finished {
        state: OpState::Pending,
        error: Some("timed out".into()),
        next_attempt_at: Some(stamp(w.clock.now() + seconds(60))),
        ..finished(&create, OpState::Pending)
    };
    w.store.finish_many(&[retry], &[grant.id], "A")?;
    let listed = |w: &World| -> std::result::Result<Vec<(i64, bool)>, Failure> {
        let q = w.store.queued(Some(&["E1"]))?.remove("E1").unwrap_or_default();
        Ok(q.iter().map(|q| (q.id, q.attempted)).collect())
    };
    ensure_eq!(
        listed(&w)?,
        [(create.id, true), (grant.id, false)],
        "a retry may have landed; the released grant did not"
    );

    // A plan made on a view that no longer holds is refused: the create was attempted.
    let leaver = |cancel: Vec<tenure_core::plan::Queued>| {
        let mut e = event(EventKind::Leaver, person(&w.schema, "E1", Status::Terminated), vec![]);
        e.cancel = cancel;
        e
    };
    let as_untried = tenure_core::plan::Queued {
        id: create.id,
        target: create.target.clone(),
        kind: create.kind,
        entitlement: None,
        attempted: false,
    };
    let stale = batch("hr", vec![leaver(vec![as_untried.clone()])], w.store.last_import("hr")?);
    expect_code(w.commit(&stale), Code::Conflict, "cancelling attempted work as if untried")?;

    // Running work is not offered, and cannot be cancelled.
    w.clock.advance(seconds(61));
    let running = w.store.claim("A", LEASE, 10)?;
    ensure_eq!(running.len(), 2, "the run is claimed again");
    ensure_eq!(listed(&w)?, [], "running work is not offered");
    let attempted = tenure_core::plan::Queued { attempted: true, ..as_untried };
    let busy = batch("hr", vec![leaver(vec![attempted])], w.store.last_import("hr")?);
    expect_code(w.commit(&busy), Code::Conflict, "cancelling running work")?;

    // Failed (the create) and failed with it (the grant): both offered as attempted, and
    // cancelled as such, with the failure exception resolved; no retry brings them back.
    w.store.finish_many(&[finished(&create, OpState::Failed)], &[grant.id], "A")?;
    ensure_eq!(listed(&w)?, [(create.id, true), (grant.id, true)], "failed work is offered as attempted");
    ensure_eq!(w.store.exceptions(true)?.len(), 1, "the failure is an exception");
    let cancel = w.store.queued(Some(&["E1"]))?.remove("E1").unwrap_or_default();
    w.commit(&batch("hr", vec![leaver(cancel)], w.store.last_import("hr")?))?;
    ensure!(w.ops("E1")?.iter().all(|o| o.state == OpState::Cancelled), "cancelled");
    ensure!(w.store.exceptions(true)?.is_empty(), "the failure exception is resolved");
    ensure_eq!(w.store.retry_failed("alice")?, 0, "no retry brings them back");
    ensure_eq!(w.case_of(&create)?.state, CaseState::Closed, "the joiner case closes: nothing left to do");
    let why: Vec<String> = w
        .audit_records()?
        .into_iter()
        .filter(|r| r.entry.outcome == "cancelled")
        .filter_map(|r| r.entry.reason)
        .collect();
    ensure!(
        why.len() == 2 && why.iter().all(|r| r.contains("attempted without a verified result")),
        "audited: {why:?}"
    );
    w.chain_verifies()
}

pub fn claims_take_whole_runs_in_order_once(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let mut e1 = event(
        EventKind::Joiner,
        person(&w.schema, "E1", Status::Active),
        vec![
            op_in("dir", OpKind::CreateAccount, None),
            op_in("dir", OpKind::Grant, Some("a")),
            op_in("chat", OpKind::CreateAccount, None),
            op_in("dir", OpKind::Grant, Some("b")),
        ],
    );
    e1.holdings = Some(holdings("dir", true, &["a", "b"]));
    let e2 = event(
        EventKind::Joiner,
        person(&w.schema, "E2", Status::Active),
        vec![op_in("dir", OpKind::CreateAccount, None)],
    );
    w.commit(&batch("hr", vec![e1, e2], None))?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let runs: Vec<(String, String, Vec<String>)> = ops.iter().fold(Vec::new(), |mut runs, o| {
        let step = format!("{}{}", o.kind, o.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default());
        match runs.last_mut() {
            Some((i, t, steps)) if *i == o.identity && *t == o.target => steps.push(step),
            _ => runs.push((o.identity.clone(), o.target.clone(), vec![step])),
        }
        runs
    });
    let expect = |i: &str, t: &str, steps: &[&str]| {
        (i.to_string(), t.to_string(), steps.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    ensure_eq!(
        runs,
        [
            expect("E1", "dir", &["create_account", "grant a", "grant b"]),
            expect("E1", "chat", &["create_account"]),
            expect("E2", "dir", &["create_account"]),
        ],
        "one run per identity and target, each in queue order"
    );
    ensure!(ops.iter().all(|o| o.state == OpState::Running && o.attempts == 1), "claimed as running, attempt 1");
    ensure!(w.store.claim("B", LEASE, 10)?.is_empty(), "claimed work is not claimed twice");
    ensure_eq!(w.store.queue_counts()?.get(&OpState::Running), Some(&5), "counted as running");

    // A retry waits for its time; the operations behind it wait for it.
    let create = nth(&ops, 0, "claimed")?;
    let later = stamp(w.clock.now() + seconds(20));
    let retry = Finished {
        next_attempt_at: Some(later.clone()),
        state: OpState::Pending,
        error: Some("timed out".into()),
        ..finished(&create, OpState::Pending)
    };
    let behind: Vec<i64> = ops.iter().skip(1).take(2).map(|o| o.id).collect();
    ensure_eq!(w.store.finish_many(&[retry], &behind, "A")?, 1, "the retry is recorded");
    ensure_eq!(w.store.next_wake_at()?, Some(later.clone()), "the queue wakes at the retry time");
    ensure!(w.store.claim("B", LEASE, 10)?.is_empty(), "nothing is due before the retry time");
    w.clock.advance(seconds(21));
    let again = w.store.claim("B", LEASE, 10)?;
    ensure_eq!(
        again.iter().map(|o| (o.id, o.attempts)).collect::<Vec<_>>(),
        [(create.id, 2), (nth(&behind, 0, "behind")?, 1), (nth(&behind, 1, "behind")?, 1)],
        "the retried run, attempts counted (a released operation was not attempted)"
    );
    Ok(())
}

pub fn a_live_lease_is_never_taken_over(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let ids: Vec<i64> = ops.iter().map(|o| o.id).collect();
    ensure_eq!(ids.len(), 2, "claimed");
    ensure_eq!(w.store.next_wake_at()?, Some(stamp(w.clock.now() + seconds(30))), "the lease ends in 30 s");
    w.clock.advance(seconds(29));
    ensure!(w.store.claim("B", LEASE, 10)?.is_empty(), "a lease with a second left is not taken over");
    ensure_eq!(w.store.renew("A", &ids, LEASE)?, 2, "the owner renews");
    ensure_eq!(w.store.renew("B", &ids, LEASE)?, 0, "nobody else can");
    w.clock.advance(seconds(29));
    ensure!(w.store.claim("B", LEASE, 10)?.is_empty(), "a renewed lease is live");
    w.clock.advance(seconds(1));
    ensure!(w.store.claim("B", LEASE, 10)?.is_empty(), "a lease is live up to its last instant");
    let op = nth(&ops, 0, "claimed")?;
    ensure!(!w.store.finish(&finished(&op, OpState::Verified), "B")?, "only the owner finishes");
    ensure_eq!(w.op(op.id)?.state, OpState::Running, "still running under A");
    ensure!(w.store.finish(&finished(&op, OpState::Verified), "A")?, "the owner finishes");
    ensure_eq!(w.op(op.id)?.state, OpState::Verified, "verified");
    Ok(())
}

pub fn an_expired_lease_is_taken_over(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1", "E2"])?)?;
    let ops = w.store.claim("A", LEASE, 10)?;
    ensure_eq!(ops.len(), 4, "claimed");
    w.clock.advance(seconds(31));
    // An expired claim nobody took over is still its owner's: a late outcome records.
    let e2 = ops.iter().filter(|o| o.identity == "E2").map(|o| finished(o, OpState::Verified)).collect::<Vec<_>>();
    ensure_eq!(w.store.finish_many(&e2, &[], "A")?, 2, "a late finish before any takeover records");
    let taken = w.store.claim("B", LEASE, 10)?;
    ensure_eq!(
        taken.iter().map(|o| (o.id, o.attempts)).collect::<Vec<_>>(),
        ops.iter().filter(|o| o.identity == "E1").map(|o| (o.id, 2)).collect::<Vec<_>>(),
        "the expired run is taken over whole, in order, as a new attempt"
    );
    let recovered = w.audit_records()?.into_iter().find(|r| r.entry.action == "executor.recovered");
    let reason = recovered.and_then(|r| r.entry.reason).unwrap_or_default();
    ensure!(reason.contains("`A`") && reason.contains("`B`"), "the takeover is audited with both owners: {reason}");
    ensure!(w.store.claim("C", LEASE, 10)?.is_empty(), "the new lease is live");
    ensure_eq!(w.store.renew("A", &[nth(&taken, 0, "taken")?.id], LEASE)?, 0, "the old owner cannot renew");
    w.clock.advance(seconds(31));
    ensure_eq!(w.store.claim("C", LEASE, 10)?.len(), 2, "an expired takeover is taken over again");
    Ok(())
}

pub fn a_finish_by_a_claimer_who_lost_the_lease_changes_nothing(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let ops = w.store.claim("A", LEASE, 10)?;
    w.clock.advance(seconds(31));
    let taken = w.store.claim("B", LEASE, 10)?;
    ensure_eq!(taken.len(), 2, "taken over");
    let before = (w.audit_records()?.len(), w.store.exceptions(false)?.len());
    let create = nth(&ops, 0, "claimed")?;
    let lost = [finished(&create, OpState::Failed)];
    let release: Vec<i64> = ops.iter().skip(1).map(|o| o.id).collect();
    ensure_eq!(w.store.finish_many(&lost, &release, "A")?, 0, "nothing of the old owner's is recorded");
    ensure!(
        w.ops("E1")?.iter().all(|o| o.state == OpState::Running && o.attempts == 2),
        "still running under B, nothing released"
    );
    ensure_eq!((w.audit_records()?.len(), w.store.exceptions(false)?.len()), before, "no audit record, no exception");
    ensure_eq!(w.case_of(&create)?.state, CaseState::Open, "the case is untouched");
    let manual = w.store.open_ticket(&create, "payroll", "do it", &w.now(), "A");
    expect_code(manual, Code::Conflict, "a ticket opened by the old owner")?;
    let done: Vec<Finished> = taken.iter().map(|o| finished(o, OpState::Verified)).collect();
    ensure_eq!(w.store.finish_many(&done, &[], "B")?, 2, "the new owner's outcomes record");
    ensure_eq!(w.case_of(&create)?.state, CaseState::Closed, "and close the case");
    w.chain_verifies()
}

pub fn finish_retry_and_cascade_drive_the_case(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let (create, grant) = (nth(&ops, 0, "claimed")?, nth(&ops, 1, "claimed")?);
    // The executor stops a run at its first failure and hands the rest back; the grant behind a
    // failed create fails with it, unattempted.
    ensure_eq!(w.store.finish_many(&[finished(&create, OpState::Failed)], &[grant.id], "A")?, 1, "recorded");
    ensure_eq!(w.store.queue_counts()?.get(&OpState::Failed), Some(&2), "the grant failed with the create");
    ensure!(w.op(grant.id)?.last_error.is_some_and(|e| e.contains("not attempted")), "and says why");
    let exceptions = w.store.exceptions(true)?;
    let x = nth(&exceptions, 0, "open exceptions")?;
    ensure_eq!((exceptions.len(), x.kind, x.state), (1, ExceptionKind::FailedOperation, ExceptionState::Open), "one");
    ensure_eq!(x.subject, format!("operation:{}", create.id), "about the create");
    ensure_eq!(w.case_of(&create)?.state, CaseState::Stuck, "the case is stuck");
    ensure!(w.actions()?.iter().any(|a| a == "case.stuck"), "audited");

    w.clock.advance(seconds(60));
    ensure_eq!(w.store.retry_failed("alice")?, 2, "both are queued again");
    ensure_eq!(w.store.queue_counts()?.get(&OpState::Pending), Some(&2), "pending");
    ensure!(w.store.exceptions(true)?.is_empty(), "the failure exception is resolved");
    ensure_eq!(w.case_of(&create)?.state, CaseState::Open, "the case is open again");
    ensure!(w.op(create.id)?.last_error.is_some(), "the last error is kept");
    let queued = w.store.queued(None)?.remove("E1").unwrap_or_default();
    ensure!(queued.len() == 2 && queued.iter().all(|q| q.attempted), "retried work is never mistaken for untried work");
    ensure_eq!(w.store.retry_failed("alice")?, 0, "nothing left to retry");

    w.clock.advance(seconds(5));
    settle(&w, "A")?;
    let c = w.case_of(&create)?;
    ensure_eq!((c.state, c.closed_at.clone()), (CaseState::Closed, Some(w.now())), "closed now");
    ensure_eq!(c.revoke_ms, None, "a joiner case has no time-to-revoke");
    ensure_eq!(c.ops.get(&OpState::Verified), Some(&2), "its counts");
    ensure_eq!(w.op(create.id)?.verified_at, Some(w.now()), "verified now");

    // A leaver case records how long the revocation took, by the store's clock.
    let mut leave = event(
        EventKind::Leaver,
        person(&w.schema, "E1", Status::Terminated),
        vec![op_in("dir", OpKind::Disable, None)],
    );
    leave.holdings = Some(holdings("dir", false, &[]));
    w.commit(&batch("hr", vec![leave], w.store.last_import("hr")?))?;
    w.clock.advance(chrono::Duration::milliseconds(1500));
    settle(&w, "A")?;
    let leaver = w.store.cases(false)?.into_iter().find(|c| c.kind == EventKind::Leaver);
    ensure_eq!(leaver.and_then(|c| c.revoke_ms), Some(1500), "time-to-revoke");
    ensure!(w.store.cases(true)?.is_empty(), "every case closed");
    w.chain_verifies()
}

pub fn tickets_are_opened_completed_flagged_and_withdrawn(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let manual = |id: &str| {
        let mut e = event(
            EventKind::Joiner,
            person(&w.schema, id, Status::Active),
            vec![op_in("payroll", OpKind::Grant, Some("bonus"))],
        );
        e.holdings = Some(holdings("payroll", true, &["bonus"]));
        e
    };
    w.commit(&batch("hr", vec![manual("E1"), manual("E2")], None))?;
    let ops = w.store.claim("A", LEASE, 10)?;
    let (op1, op2) = (nth(&ops, 0, "claimed")?, nth(&ops, 1, "claimed")?);
    expect_code(w.store.open_ticket(&op1, "payroll", "grant bonus", &w.now(), "B"), Code::Conflict, "not the claimer")?;
    let due = stamp(w.clock.now() + seconds(3600));
    let t1 = w.store.open_ticket(&op1, "payroll", "grant `bonus` for `E1`", &due, "A")?;
    ensure_eq!(
        w.store.open_ticket(&op1, "payroll", "again", &due, "A").map_err(|e| e.code()),
        Err(Code::Conflict),
        "once"
    );
    let t2 = w.store.open_ticket(&op2, "payroll", "grant `bonus` for `E2`", &due, "A")?;
    ensure_eq!(w.op(op1.id)?.state, OpState::Done, "the operation waits for a person");
    let open = w.store.tickets(true)?;
    let first = nth(&open, 0, "open tickets")?;
    ensure_eq!((open.len(), first.id, first.state, first.overdue), (2, t1, TicketState::Open, false), "listed");
    ensure_eq!(
        (first.owner.as_str(), first.due_at.as_str(), first.created_at.clone()),
        ("payroll", due.as_str(), w.now()),
        "fields"
    );
    ensure!(w.actions()?.iter().any(|a| a == "ticket.opened"), "audited");

    // Past the due time by the store's clock: overdue, an exception, a stuck case.
    w.clock.advance(seconds(3601));
    ensure!(w.store.tickets(true)?.iter().all(|t| t.overdue), "overdue by the clock");
    let flagged = w.store.flag_overdue("executor")?;
    ensure_eq!(
        flagged.iter().map(|x| (x.kind, x.subject.clone())).collect::<Vec<_>>(),
        [
            (ExceptionKind::OverdueTicket, format!("ticket:{t1}")),
            (ExceptionKind::OverdueTicket, format!("ticket:{t2}"))
        ],
        "exceptions"
    );
    ensure_eq!(nth(&flagged, 0, "flagged")?.created_at, w.now(), "opened now");
    ensure!(w.store.flag_overdue("executor")?.is_empty(), "flagged once");
    ensure_eq!(w.case_of(&op1)?.state, CaseState::Stuck, "the case is stuck");

    let done = w.store.complete_ticket(t1, "bob", "granted in the payroll UI")?;
    ensure_eq!(
        (done.state, done.done_by.as_deref(), done.done_at.clone()),
        (TicketState::Done, Some("bob"), Some(w.now())),
        "done"
    );
    ensure_eq!(w.op(op1.id)?.state, OpState::Verified, "the operation is verified by the person");
    ensure_eq!(w.case_of(&op1)?.state, CaseState::Closed, "its case closes");
    ensure_eq!(w.store.exceptions(true)?.len(), 1, "its overdue exception is resolved");
    expect_code(w.store.complete_ticket(t1, "bob", "again"), Code::Conflict, "completing twice")?;
    expect_code(w.store.complete_ticket(t2 + 100, "bob", "x"), Code::NotFound, "an unknown ticket")?;

    // A ticket nobody carried out is withdrawn when newer work no longer needs it.
    let queued = w.store.queued(Some(&["E2"]))?.remove("E2").unwrap_or_default();
    ensure_eq!(queued.iter().map(|q| (q.id, q.attempted)).collect::<Vec<_>>(), [(op2.id, false)], "replaceable");
    let mut leave = event(EventKind::Leaver, person(&w.schema, "E2", Status::Terminated), vec![]);
    leave.cancel = queued;
    leave.holdings = Some(Holdings::new());
    w.commit(&batch("hr", vec![leave], w.store.last_import("hr")?))?;
    ensure_eq!(w.op(op2.id)?.state, OpState::Cancelled, "cancelled");
    let all = w.store.tickets(false)?;
    ensure_eq!(all.iter().find(|t| t.id == t2).map(|t| t.state), Some(TicketState::Withdrawn), "withdrawn");
    ensure!(w.store.tickets(true)?.is_empty(), "no ticket open");
    ensure!(w.store.exceptions(true)?.is_empty(), "its overdue exception is resolved");
    ensure_eq!(w.case_of(&op2)?.state, CaseState::Closed, "the joiner case closes: its work is no longer needed");
    w.chain_verifies()
}

pub fn findings_remediation_and_exceptions(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let findings = vec![
        Finding {
            kind: FindingKind::Orphan,
            target: "dir".into(),
            account: Some("ghost".into()),
            identity: None,
            entitlement: None,
            detail: "account `ghost` belongs to no known identity".into(),
        },
        Finding {
            kind: FindingKind::Drift,
            target: "dir".into(),
            account: Some("e1".into()),
            identity: Some("E1".into()),
            entitlement: Some("finance".into()),
            detail: "`e1` holds `finance`, which no rule grants".into(),
        },
    ];
    let run = w.store.record_recon(
        &ReconRun { target: "dir".into(), accounts: 2, grants: 1, millis: 7 },
        &findings,
        "reconciler",
    )?;
    ensure_eq!(w.store.findings(run)?, findings, "findings read back as recorded");
    ensure!(w.store.findings(run + 1)?.is_empty(), "per run");
    let actions = w.actions()?;
    ensure_eq!(actions, ["reconcile", "finding.orphan", "finding.drift"], "audited");

    let fix = |identity: &str, kind: OpKind, ent: Option<&str>| RemediationOp {
        identity: identity.into(),
        target: "dir".into(),
        kind,
        entitlement: ent.map(Into::into),
        account: Some("acct".into()),
        detail: "a finding".into(),
    };
    let remediation = |held: bool| Remediation {
        run_ids: vec![run],
        ops: vec![fix("E1", OpKind::Revoke, Some("finance")), fix("orphan:dir:ghost", OpKind::Disable, None)],
        held: held.then(|| "2 removals exceed max_leavers = 1".to_string()),
        actor: "reconciler".into(),
    };
    let (n, approval) = w.store.commit_remediation(&remediation(true))?;
    let approval = approval.ok_or_else(|| Failure("held remediation needs an approval".into()))?;
    ensure_eq!(n, 2, "planned");
    let a = w.store.approval(approval)?;
    ensure_eq!((a.kind, a.state), (ApprovalKind::Remediation, ApprovalState::Pending), "a pending remediation");
    ensure!(w.store.held_batches()?.is_empty(), "a remediation is not a held batch");
    ensure_eq!(w.store.queue_counts()?.get(&OpState::Held), Some(&2), "held");
    ensure!(w.store.claim("A", LEASE, 10)?.is_empty(), "held work is never claimed");
    ensure_eq!(w.store.release_remediation(approval, "alice")?, 2, "released");
    ensure_eq!(w.store.approval(approval)?.state, ApprovalState::Approved, "approved");
    ensure_eq!(w.store.claim("A", LEASE, 10)?.len(), 2, "released work is claimed");
    expect_code(w.store.release_remediation(approval, "alice"), Code::Conflict, "releasing twice")?;

    // Declining a fix accepts the deviation: the held operations become exceptions.
    let (_, declined) = w.store.commit_remediation(&remediation(true))?;
    let declined = declined.ok_or_else(|| Failure("held remediation needs an approval".into()))?;
    w.store.reject(declined, "carol", "the finance grant is intended")?;
    let excepted = w.store.operations(&OpFilter { states: vec![OpState::Excepted], ..OpFilter::default() })?;
    ensure_eq!(excepted.len(), 2, "excepted");
    let open = w.store.exceptions(true)?;
    ensure_eq!(open.len(), 2, "one exception each");
    ensure!(
        open.iter()
            .all(|x| x.kind == ExceptionKind::DeclinedFix && x.owner == "carol" && x.reason.contains("intended")),
        "a declined fix owned by who declined: {open:?}"
    );
    for op in &excepted {
        ensure_eq!(w.case_of(op)?.state, CaseState::Closed, "the remediation case closes");
    }
    w.chain_verifies()
}

pub fn retention_candidates_are_facts_and_planning_writes_the_decision(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1", "E2", "E3"])?)?;
    settle(&w, "A")?;
    let leave = |id: &str| {
        let mut e = event(
            EventKind::Leaver,
            person(&w.schema, id, Status::Terminated),
            vec![op_in("dir", OpKind::Disable, None)],
        );
        e.holdings = Some(holdings("dir", false, &[]));
        e
    };
    // E1 leaves and its case closes; E2 leaves later, still under way; E3 stays.
    w.commit(&batch("hr", vec![leave("E1")], w.store.last_import("hr")?))?;
    settle(&w, "A")?;
    let closed = w.now();
    w.clock.advance(seconds(3600));
    w.commit(&batch("hr", vec![leave("E2")], w.store.last_import("hr")?))?;
    let candidates = w.store.retention_candidates("dir")?;
    let facts: Vec<(&str, Status, bool, Option<&str>, u64)> = candidates
        .iter()
        .map(|c| (c.identity.as_str(), c.status, c.enabled, c.leaver_closed_at.as_deref(), c.unfinished))
        .collect();
    ensure_eq!(
        facts,
        [("E1", Status::Terminated, false, Some(closed.as_str()), 0), ("E2", Status::Terminated, false, None, 1)],
        "accounts of terminated identities, with their facts"
    );
    ensure!(w.store.retention_candidates("chat")?.is_empty(), "per target");

    let cutoff = w.now();
    let due: Vec<_> = retention_due(&candidates, &cutoff).into_iter().cloned().collect();
    ensure_eq!(due.iter().map(|c| c.identity.as_str()).collect::<Vec<_>>(), ["E1"], "the rule decides");
    // A decision made on facts that changed since is not written.
    let mut stale = nth(&candidates, 1, "candidates")?;
    stale.unfinished = 0;
    stale.leaver_closed_at = Some(closed.clone());
    ensure_eq!(
        w.store.plan_retention("dir", &[stale], &cutoff, "retention")?,
        0,
        "stale facts are left for the next sweep"
    );
    ensure_eq!(w.store.plan_retention("dir", &due, &cutoff, "retention")?, 1, "the decision is written");
    let delete = w.ops("E1")?.into_iter().find(|o| o.kind == OpKind::DeleteAccount);
    ensure_eq!(delete.map(|o| (o.state, o.created_at)), Some((OpState::Pending, w.now())), "a pending delete");
    ensure!(!w.store.holdings("E1")?.contains_key("dir"), "the account leaves the committed holdings");
    ensure!(w.actions()?.iter().any(|a| a == "plan.delete_account"), "audited");
    ensure_eq!(
        w.store.retention_candidates("dir")?.iter().map(|c| c.identity.as_str()).collect::<Vec<_>>(),
        ["E2"],
        "planned once"
    );
    w.chain_verifies()
}

pub fn a_read_only_store_reads_and_refuses_writes(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    w.commit(&joiners(&w, "hr", &["E1"])?)?;
    let head = w.store.verify_audit()?.head;
    let ro = subject.reopen_read_only(w.clock.clone())?;
    ensure_eq!(ro.identities(&w.schema, None)?.len(), 1, "reads identities");
    ensure_eq!(ro.verify_audit()?.head, head, "verifies the chain");
    ensure!(ro.checkpoints()?.is_empty(), "reads checkpoints");
    ensure_eq!(ro.queue_counts()?.get(&OpState::Pending), Some(&2), "reads the queue");
    ensure!(ro.audit(&[AuditEntry::new("system", "test", "ok")]).is_err(), "an audit append is refused");
    ensure!(ro.claim("A", LEASE, 10).is_err(), "a claim is refused");
    ensure!(ro.commit_batch(&w.schema, &joiners(&w, "hr", &["E2"])?).is_err(), "a batch is refused");
    drop(ro);
    ensure_eq!(w.store.verify_audit()?.head, head, "nothing was written");
    ensure_eq!(w.store.queue_counts()?.get(&OpState::Pending), Some(&2), "nothing was claimed");
    Ok(())
}

/// Hidden characters in any field reach the chain escaped, and a huge reason is cut: whoever
/// typed the reason or named the file, the evidence stays readable and small.
pub fn audit_records_are_stored_sanitized(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let store = &w.store;
    let raw = AuditEntry::new("user:mal\u{1b}[1mlory", "approval.rejected", "rejected")
        .identity("E1")
        .reason(format!("bad\u{1b}[2J\u{202e}{}", "x".repeat(100_000)));
    store.audit(std::slice::from_ref(&raw))?;
    let mut got = Vec::new();
    store.scan_audit(&crate::AuditFilter::default(), &mut |r| {
        got.push(r);
        true
    })?;
    let r = got.last().ok_or_else(|| Failure("nothing appended".into()))?;
    ensure!(
        !r.entry.actor.contains('\u{1b}') && r.entry.actor.contains("\\u{1b}"),
        "actor stored raw: {:?}",
        r.entry.actor
    );
    let reason = r.entry.reason.clone().unwrap_or_default();
    ensure!(!reason.chars().any(tenure_core::text::is_hidden), "reason stored raw");
    ensure!(reason.len() < 10_000, "a 100 kB reason is stored whole ({} bytes)", reason.len());
    ensure!(store.verify_audit()?.first_bad.is_none(), "the sanitized record verifies");
    Ok(())
}

pub fn a_pushed_delivery_is_journaled_once_and_ingested_once(subject: &dyn Subject) -> Outcome {
    use crate::{Ingested, JournalIn, JournalState, Journaled};
    let w = World::new(subject)?;
    let delivery = |id: &str, n: u64| JournalIn {
        source: "hr".into(),
        delivery: id.into(),
        actor: "source:hr".into(),
        records: serde_json::json!([{ "employee_id": "E1" }]),
        response: serde_json::json!({ "accepted": n }),
    };
    let first = w.store.journal_append(&[delivery("msg_1", 1), delivery("msg_2", 2)])?;
    let (Some(Journaled::New(a)), Some(Journaled::New(b))) = (first.first(), first.get(1)) else {
        return Err(Failure(format!("two new entries expected, got {first:?}")));
    };
    // A repeated delivery id is answered with the first response and writes nothing; the same
    // id from another source is another delivery.
    let again = w.store.journal_append(&[delivery("msg_1", 9)])?;
    ensure_eq!(again, [Journaled::Repeat { id: *a, response: serde_json::json!({ "accepted": 1 }) }], "a repeat");
    let other = w.store.journal_append(&[JournalIn { source: "contractors".into(), ..delivery("msg_1", 3) }])?;
    ensure!(matches!(other.first(), Some(Journaled::New(_))), "another source's delivery id is its own: {other:?}");
    let pending = w.store.journal_pending(10)?;
    ensure_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>().len(), 3, "three pending entries");
    ensure_eq!(pending.first().map(|e| e.received_at.clone()), Some(w.now()), "received at the clock's time");

    // A batch ingests an entry in its own transaction, once: a second batch naming it conflicts
    // and leaves nothing behind.
    let mut batch = joiners(&w, "hr", &["E1"])?;
    batch.ingests = Ingested { entries: vec![*a], results: vec![serde_json::json!({ "applied": 1 })] };
    let ids = w.commit(&batch)?;
    let entry = w.store.journal_entry(*a)?.ok_or_else(|| Failure("entry gone".into()))?;
    ensure_eq!((entry.state, entry.import_id), (JournalState::Ingested, Some(ids.import_id)), "ingested by the batch");
    ensure_eq!(entry.result, Some(serde_json::json!({ "applied": 1 })), "its result stored");
    let mut twice = joiners(&w, "hr", &["E2"])?;
    twice.base_import = Some(ids.import_id);
    twice.ingests = Ingested { entries: vec![*a], results: vec![] };
    expect_code(w.commit(&twice), Code::Conflict, "ingesting an entry twice")?;
    ensure!(w.store.identity(&w.schema, "E2")?.is_none(), "the refused batch wrote nothing");
    // Settling without a batch skips what is no longer pending.
    let settled = w.store.journal_settle(&Ingested { entries: vec![*a, *b], results: vec![] })?;
    ensure_eq!(settled, 1, "only the pending entry settles");
    ensure_eq!(w.store.journal_pending(10)?.len(), 1, "the other source's entry still pending");
    Ok(())
}

/// The journal is bounded: ingested entries older than a cut-off are deleted, oldest first and
/// `limit` at a time; pending ones stay whatever their age, and a pruned delivery id is free.
pub fn issue15_ingested_journal_entries_are_pruned_pending_ones_kept(subject: &dyn Subject) -> Outcome {
    use crate::{Ingested, JournalIn, Journaled};
    let w = World::new(subject)?;
    let delivery = |id: &str| JournalIn {
        source: "hr".into(),
        delivery: id.into(),
        actor: "source:hr".into(),
        records: serde_json::json!([]),
        response: serde_json::json!({ "accepted": 0 }),
    };
    let ids = |j: Vec<Journaled>| -> Vec<i64> {
        j.into_iter().filter_map(|e| if let Journaled::New(id) = e { Some(id) } else { None }).collect()
    };
    let old = ids(w.store.journal_append(&[delivery("old_1"), delivery("old_2"), delivery("old_pending")])?);
    let (Some(o1), Some(o2)) = (old.first(), old.get(1)) else { return Err(Failure("three entries".into())) };
    w.store.journal_settle(&Ingested { entries: vec![*o1, *o2], results: vec![] })?;
    w.clock.advance(seconds(3600));
    let cut = w.now();
    let new = ids(w.store.journal_append(&[delivery("new_1")])?);
    w.store.journal_settle(&Ingested { entries: new.clone(), results: vec![] })?;
    ensure_eq!(w.store.journal_prune(&cut, 1)?, 1, "one at a time");
    ensure_eq!(w.store.journal_prune(&cut, 10)?, 1, "the second old ingested entry");
    ensure_eq!(w.store.journal_prune(&cut, 10)?, 0, "nothing else is old and ingested");
    ensure!(w.store.journal_entry(*o1)?.is_none() && w.store.journal_entry(*o2)?.is_none(), "old ones gone");
    ensure_eq!(w.store.journal_pending(10)?.len(), 1, "the pending entry stays");
    ensure!(new.iter().all(|id| w.store.journal_entry(*id).ok().flatten().is_some()), "the recent one stays");
    let again = w.store.journal_append(&[delivery("old_1"), delivery("new_1")])?;
    ensure!(matches!(again.first(), Some(Journaled::New(_))), "a pruned id is new again: {again:?}");
    ensure!(matches!(again.get(1), Some(Journaled::Repeat { .. })), "a kept id is still a repeat: {again:?}");
    Ok(())
}

pub fn push_lookups_find_usernames_owners_and_recent_batches(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let mut batch = joiners(&w, "hr", &["E1", "E2", "S1"])?;
    for e in &mut batch.events {
        let (user, owner) = match &*e.identity.id {
            "E1" => ("Ada", None),
            "E2" => ("Ünal", None),
            _ => ("svc-backup", Some("E1")),
        };
        e.identity.attrs.set(w.schema.slot_of("username"), Some(user));
        if let Some(o) = owner {
            e.identity.attrs.set(w.schema.slot_of("owner_id"), Some(o));
        }
    }
    let ids = w.commit(&batch)?;
    let holders = |u: &str| -> std::result::Result<Vec<String>, Failure> {
        let mut v: Vec<String> = w
            .store
            .username_holders(&[u.to_string()])?
            .into_iter()
            .filter(|(_, name)| tenure_core::text::fold(name) == u)
            .map(|(id, _)| id)
            .collect();
        v.sort();
        Ok(v)
    };
    ensure_eq!(holders("ada")?, ["E1"], "an ASCII name, any case");
    ensure_eq!(holders("ünal")?, ["E2"], "a non-ASCII name, folded");
    ensure_eq!(holders("nobody")?, Vec::<String>::new(), "an unknown name");
    let owned = w.store.owned_by(&w.schema, &["E1"])?;
    ensure_eq!(owned.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(), ["S1"], "what E1 owns");
    let mut sources = w.store.sources_of(&["E1", "S1", "X9"])?;
    sources.sort();
    ensure_eq!(sources, [("E1".to_string(), "hr".to_string()), ("S1".to_string(), "hr".to_string())], "sources");
    ensure_eq!(w.store.active_count("hr")?, 3, "active identities of the source");
    let recent = w.store.batches_since("hr", &w.now())?;
    ensure_eq!(recent.iter().map(|b| b.import_id).collect::<Vec<_>>(), [ids.import_id], "the batch is recent");
    w.clock.advance(seconds(10));
    ensure_eq!(w.store.batches_since("hr", &w.now())?.len(), 0, "and then it is not");
    Ok(())
}

mod browse;
mod correlation;
mod credentials;
mod exceptions;
mod tokens;

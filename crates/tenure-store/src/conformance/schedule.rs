//! Conformance cases for the schedules' state ([`crate::Schedules`]): the one-holder lease, job
//! runs, and the post-offboarding re-check's bookkeeping and writes.

use super::*;
use crate::{JobDone, JobOutcome, Recheck, RecheckCandidate};

fn job(name: &str, audit: bool) -> JobDone {
    JobDone { job: name.into(), outcome: JobOutcome::Ok, detail: format!("{name} ran"), audit }
}

pub fn the_scheduler_lease_has_one_holder(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let a = w.store.lead("A", LEASE)?;
    ensure!(a.held && a.owner == "A", "a free lease is taken: {a:?}");
    let b = w.store.lead("B", LEASE)?;
    ensure!(!b.held && b.owner == "A" && b.until == a.until, "a live lease is never taken over: {b:?}");
    expect_code(w.store.record_job("B", &job("reconcile", false)), Code::Conflict, "a run of a non-holder")?;
    w.store.record_job("A", &job("reconcile", false))?;
    w.clock.advance(seconds(10));
    let renewed = w.store.lead("A", LEASE)?;
    ensure!(renewed.held && renewed.until > a.until, "the holder renews: {renewed:?}");
    w.clock.advance(seconds(31));
    // Expired and not taken over: still the holder's, as with operation claims.
    w.store.record_job("A", &job("reconcile", false))?;
    let b = w.store.lead("B", LEASE)?;
    ensure!(b.held && b.owner == "B", "an expired lease is taken over: {b:?}");
    expect_code(w.store.record_job("A", &job("reconcile", false)), Code::Conflict, "the old holder lost it")?;
    w.store.release_lead("A")?;
    ensure!(!w.store.lead("A", LEASE)?.held, "only the holder releases");
    w.store.release_lead("B")?;
    ensure!(w.store.lead("A", LEASE)?.held, "a released lease is free at once");
    w.chain_verifies()
}

pub fn job_runs_are_recorded_and_audited_when_asked(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    ensure!(w.store.job_runs()?.is_empty(), "nothing has run");
    w.store.lead("A", LEASE)?;
    w.store.record_job("A", &job("end_date", false))?;
    ensure!(w.audit_records()?.is_empty(), "a run without news is not audited");
    w.clock.advance(seconds(60));
    let failed =
        JobDone { outcome: JobOutcome::Failed, detail: "target `dir` unreachable".into(), ..job("reconcile", true) };
    w.store.record_job("A", &failed)?;
    w.clock.advance(seconds(60));
    w.store.record_job("A", &job("reconcile", true))?;
    let runs: Vec<(String, String, JobOutcome, i64)> =
        w.store.job_runs()?.into_iter().map(|r| (r.job, r.last_at, r.outcome, r.runs)).collect();
    let t = |s: i64| stamp(start() + seconds(s));
    ensure_eq!(
        runs,
        [("end_date".to_string(), t(0), JobOutcome::Ok, 1), ("reconcile".to_string(), t(120), JobOutcome::Ok, 2)],
        "the last run of each job, by name"
    );
    let audit: Vec<(String, String, String)> =
        w.audit_records()?.into_iter().map(|r| (r.entry.actor, r.entry.action, r.entry.outcome)).collect();
    let rec = |outcome: &str| ("schedule:reconcile".to_string(), "schedule.run".to_string(), outcome.to_string());
    ensure_eq!(audit, [rec("failed"), rec("ok")], "audited with the job's actor");
    w.chain_verifies()
}

/// E1 and E2 join and leave; both leaver cases close at `closed`.
fn two_closed_leavers(w: &World) -> std::result::Result<String, Failure> {
    w.commit(&joiners(w, "hr", &["E1", "E2"])?)?;
    settle(w, "A")?;
    let leave = |id: &str| {
        let mut e = event(
            EventKind::Leaver,
            person(&w.schema, id, Status::Terminated),
            vec![op_in("dir", OpKind::Revoke, Some("staff")), op_in("dir", OpKind::Disable, None)],
        );
        e.holdings = Some(holdings("dir", false, &[]));
        e
    };
    w.commit(&batch("hr", vec![leave("E1"), leave("E2")], w.store.last_import("hr")?))?;
    w.clock.advance(seconds(5));
    settle(w, "A")?;
    Ok(w.now())
}

fn resurrected(identity: &str) -> Finding {
    Finding {
        kind: FindingKind::Resurrected,
        target: "dir".into(),
        account: Some("acct".into()),
        identity: Some(identity.into()),
        entitlement: None,
        detail: format!("account `acct` of leaver `{identity}` is enabled again"),
    }
}

fn rechecked(c: &RecheckCandidate, found: Vec<Finding>) -> Recheck {
    let ops = if found.is_empty() { vec![] } else { vec![op_in("dir", OpKind::Disable, None)] };
    Recheck { candidate: c.clone(), accounts: 1, findings: found, ops }
}

pub fn a_closed_leaver_case_is_rechecked_once_and_reopened_by_what_came_back(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let closed = two_closed_leavers(&w)?;
    let leaver_cases: Vec<crate::CaseRecord> =
        w.store.cases(false)?.into_iter().filter(|c| c.kind == EventKind::Leaver).collect();
    ensure!(leaver_cases.iter().all(|c| c.state == CaseState::Closed), "closed: {leaver_cases:?}");
    let before = stamp(start() + seconds(4));
    ensure!(w.store.recheck_candidates(&before)?.is_empty(), "not before the cutoff");
    let due = w.store.recheck_candidates(&closed)?;
    let ids: Vec<(&str, &str)> = due.iter().map(|c| (c.identity.as_str(), c.closed_at.as_str())).collect();
    ensure_eq!(ids, [("E1", closed.as_str()), ("E2", closed.as_str())], "closed leaver cases at or before the cutoff");
    let (e1, e2) = (nth(&due, 0, "due")?, nth(&due, 1, "due")?);
    ensure!(leaver_cases.iter().any(|c| c.id == e1.case_id && c.event_id == e1.event_id), "the case and its event");

    w.clock.advance(seconds(60));
    let ids = w.store.record_rechecks(
        &[rechecked(&e1, vec![resurrected("E1")]), rechecked(&e2, vec![])],
        None,
        "schedule:recheck",
    )?;
    ensure_eq!((ids.reopened.clone(), ids.operations, ids.approval_id), (vec![e1.case_id], 1, None), "E1 reopens");
    let run = ids.run_id.ok_or_else(|| Failure("no findings run".into()))?;
    ensure_eq!(w.store.findings(run)?, [resurrected("E1")], "the finding is stored");
    let case = w.store.cases(false)?.into_iter().find(|c| c.id == e1.case_id);
    ensure_eq!(case.as_ref().map(|c| (c.state, c.closed_at.clone())), Some((CaseState::Open, None)), "reopened");
    let revoke_ms = case.and_then(|c| c.revoke_ms);
    let disable = w.ops("E1")?.into_iter().rev().find(|o| o.kind == OpKind::Disable && o.state == OpState::Pending);
    ensure_eq!(disable.map(|o| o.case_id), Some(e1.case_id), "the fix is pending in the leaver's case");
    let audit: Vec<(String, String)> = w
        .audit_records()?
        .into_iter()
        .filter(|r| r.entry.actor == "schedule:recheck")
        .map(|r| (r.entry.action, r.entry.identity.unwrap_or_default()))
        .collect();
    let a = |action: &str| (action.to_string(), "E1".to_string());
    ensure_eq!(audit, [a("finding.resurrected"), a("plan.disable"), a("case.reopened")], "audited as the schedule");
    ensure!(w.store.recheck_candidates(&w.now())?.is_empty(), "each close is re-checked once; E1 is open again");
    expect_code(
        w.store.record_rechecks(&[rechecked(&e1, vec![])], None, "schedule:recheck"),
        Code::Conflict,
        "a case no longer closed as read",
    )?;

    // Fixed and closed again: a new close, re-checked again after as long; the first
    // time-to-revoke stays.
    w.clock.advance(seconds(60));
    settle(&w, "A")?;
    let again = w.store.recheck_candidates(&w.now())?;
    ensure_eq!(
        again.iter().map(|c| (c.case_id, c.closed_at.clone())).collect::<Vec<_>>(),
        [(e1.case_id, w.now())],
        "closed again"
    );
    let case = w.store.cases(false)?.into_iter().find(|c| c.id == e1.case_id);
    ensure_eq!(case.and_then(|c| c.revoke_ms), revoke_ms, "the first time-to-revoke is kept");
    w.chain_verifies()
}

pub fn rechecked_fixes_past_the_guard_are_held_for_approval(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let closed = two_closed_leavers(&w)?;
    let due = w.store.recheck_candidates(&closed)?;
    let all: Vec<Recheck> = due.iter().map(|c| rechecked(c, vec![resurrected(&c.identity)])).collect();
    let ids = w.store.record_rechecks(&all, Some("2 leavers exceed max_leavers = 1"), "schedule:recheck")?;
    ensure_eq!(ids.operations, 2, "both fixes");
    let approval = ids.approval_id.ok_or_else(|| Failure("not held".into()))?;
    let held = w.store.operations(&OpFilter { states: vec![OpState::Held], ..OpFilter::default() })?;
    ensure_eq!(held.len(), 2, "held, not pending");
    let a = w.store.approval(approval)?;
    ensure_eq!((a.kind, a.state), (ApprovalKind::Remediation, ApprovalState::Pending), "a remediation approval");
    ensure_eq!(w.store.release_remediation(approval, "alice")?, 2, "approving releases them");
    let pending = w.store.operations(&OpFilter { states: vec![OpState::Pending], ..OpFilter::default() })?;
    ensure_eq!(pending.len(), 2, "pending once approved");
    w.chain_verifies()
}

pub fn date_candidates_are_the_identities_a_date_may_change(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let schema = &w.schema;
    let dated = |id: &str, status: Status, start: &str, end: &str| {
        let mut p = person(schema, id, status);
        p.attrs.set(schema.slot_of("start_date"), Some(start).filter(|s| !s.is_empty()));
        p.attrs.set(schema.slot_of("end_date"), Some(end).filter(|s| !s.is_empty()));
        event(EventKind::Joiner, p, vec![])
    };
    let hr = vec![
        dated("E1", Status::Active, "2020-01-01", "2026-11-20"),
        dated("E2", Status::Active, "2020-01-01", "2026-11-21"),
        dated("E3", Status::Terminated, "2020-01-01", "2026-11-01"),
        dated("E4", Status::Prehire, "2026-11-21", ""),
        dated("E5", Status::Prehire, "2026-11-22", ""),
        dated("E6", Status::Active, "2020-01-01", ""),
        dated("E7", Status::Suspended, "2020-01-01", "2026-11-02"),
    ];
    w.commit(&batch("hr", hr, None))?;
    w.commit(&batch("contractors", vec![dated("X1", Status::Active, "2020-01-01", "2026-11-01")], None))?;
    let ids = |source: &str, day: &str| -> std::result::Result<Vec<String>, Failure> {
        Ok(w.store.date_candidates(schema, source, day, day)?.into_iter().map(|i| i.id.to_string()).collect())
    };
    ensure_eq!(ids("hr", "2026-11-21")?, ["E1", "E4", "E7"], "ended before the day, or starting by it");
    ensure_eq!(ids("hr", "2026-11-22")?, ["E1", "E2", "E4", "E5", "E7"], "a day later");
    ensure_eq!(ids("contractors", "2026-11-21")?, ["X1"], "per source");
    ensure!(ids("hr", "2020-01-01")?.is_empty(), "nothing yet");
    let e1 = w.store.date_candidates(schema, "hr", "2026-11-21", "2026-11-21")?;
    let e1 = nth(&e1, 0, "candidates")?;
    ensure_eq!(e1.attr(schema, "end_date"), Some("2026-11-20"), "whole identities");
    Ok(())
}

//! Conformance cases for access requests ([`crate::Requests`]).

use super::{Failure, Outcome, Subject, World, event, expect_code, holdings, joiners, op_in, person};
use crate::{AcceptedRisk, Batch, BatchState, NewRequest, NewStage, RequestEnd, StageApproval};
use tenure_core::error::Code;
use tenure_core::{ApprovalKind, ApprovalState, EventKind, ExceptionKind, OpKind, RequestState, StageState, Status};

fn ask(identity: &str, stages: &[&str]) -> NewRequest {
    NewRequest {
        role: "warehouse-admin".into(),
        identity: identity.into(),
        requester: identity.into(),
        via: "cli --as".into(),
        reason: "quarter close".into(),
        duration_secs: Some(2),
        entitlements: vec!["dir:admin".into()],
        stages: stages.iter().map(|a| NewStage { rule: "manager".into(), approver: (*a).into() }).collect(),
        audit: vec![],
    }
}

/// The grant's plan for `identity`: one update event granting `dir:admin`.
fn grant_plan(w: &World, identity: &str, grants: &[&str]) -> std::result::Result<Batch, Failure> {
    let mut e = event(
        EventKind::Update,
        person(&w.schema, identity, Status::Active),
        vec![op_in("dir", if grants.contains(&"admin") { OpKind::Grant } else { OpKind::Revoke }, Some("admin"))],
    );
    e.holdings = Some(holdings("dir", true, grants));
    let mut b = super::batch("hr", vec![e], w.store.last_import("hr")?);
    b.state = BatchState::Planned;
    Ok(b)
}

/// A request opens its stages one after another through the approvals list; the last approval
/// writes the grant's plan and the expiry (the store's clock plus the duration) with its
/// accepted-risk exception; the expiry lists it once due; its end revokes and resolves the
/// exception; every step is audited.
pub fn a_request_is_approved_stage_by_stage_granted_and_expires(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    w.commit(&joiners(&w, "hr", &["E1", "M1", "M2"])?)?;
    expect_code(s.create_request(&ask("E1", &[])), Code::Conflict, "a request without stages")?;
    let r = s.create_request(&ask("E1", &["M1", "M2"]))?;
    ensure_eq!(r.state, RequestState::Pending, "pending");
    ensure_eq!(
        r.stages.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StageState::Pending, StageState::Waiting],
        "the first stage is open"
    );
    let first = r.stages.first().and_then(|s| s.approval_id).ok_or_else(|| Failure("no first approval".into()))?;
    let a = s.approval(first)?;
    ensure_eq!((a.kind, a.subject, a.state), (ApprovalKind::Request, r.id, ApprovalState::Pending), "its approval");
    ensure_eq!(s.request_by_approval(first)?.map(|x| x.id), Some(r.id), "found by its approval");
    ensure_eq!(s.requests(true)?.len(), 1, "open");
    ensure!(s.request_grants(None)?.is_empty(), "nothing granted yet");

    let approve = |id: i64, grant: Option<Batch>| StageApproval {
        approval_id: id,
        by: "M1".into(),
        via: "token:M1".into(),
        grant,
        exceptions: vec![],
        audit: vec![],
    };
    expect_code(
        s.approve_stage(&w.schema, &approve(first, Some(grant_plan(&w, "E1", &["staff", "admin"])?))),
        Code::Conflict,
        "a grant before the last stage",
    )?;
    let r = s.approve_stage(&w.schema, &approve(first, None))?;
    ensure_eq!(r.stages.first().and_then(|s| s.via.clone()).as_deref(), Some("token:M1"), "how the approver was known");
    expect_code(s.approve_stage(&w.schema, &approve(first, None)), Code::Conflict, "a stage approved twice")?;
    let second = r.current_stage().and_then(|s| s.approval_id).ok_or_else(|| Failure("no second approval".into()))?;
    let mut last = approve(second, Some(grant_plan(&w, "E1", &["staff", "admin"])?));
    last.exceptions.push(AcceptedRisk {
        subject: format!("request:{}:sod:payments", r.id),
        identity: "E1".into(),
        target: Some("dir".into()),
        owner: "M2".into(),
        reason: "sod rule `payments` (flag) accepted".into(),
    });
    let granted = s.approve_stage(&w.schema, &last)?;
    ensure_eq!(granted.state, RequestState::Granted, "granted");
    let expires =
        tenure_core::clock::stamp(tenure_core::clock::Clock::now(w.clock.as_ref()) + chrono::Duration::seconds(2));
    ensure_eq!(granted.expires_at.as_deref(), Some(expires.as_str()), "expiry = approval time + duration");
    ensure!(s.holdings("E1")?.get("dir").is_some_and(|a| a.grants.contains("admin")), "the grant is committed");
    ensure_eq!(
        s.request_grants(Some(&["E1"]))?.get("E1").map(|g| g.len()),
        Some(1),
        "planning sees the granted request"
    );
    let exceptions = s.exceptions(true)?;
    ensure!(
        exceptions
            .iter()
            .any(|x| x.kind == ExceptionKind::AcceptedSod && x.owner == "M2" && x.reason.contains(&expires)),
        "an accepted risk with owner and expiry: {exceptions:?}"
    );
    ensure!(
        exceptions
            .iter()
            .any(|x| x.kind == ExceptionKind::AcceptedSod && x.due_at.as_deref() == Some(expires.as_str())),
        "due at the request's expiry: {exceptions:?}"
    );
    let listed = s.request_grants(None)?;
    ensure_eq!(
        listed.get("E1").and_then(|g| g.first()).and_then(|g| g.expires_at.clone()),
        Some(expires.clone()),
        "planning and the expiry read the expiry"
    );
    w.clock.advance(super::seconds(2));
    let end = RequestEnd {
        request_id: granted.id,
        state: RequestState::Expired,
        by: "schedule:grant_expiry".into(),
        reason: "its expiry has come".into(),
        batch: Some(grant_plan(&w, "E1", &["staff"])?),
        audit: vec![],
    };
    let ended = s.end_request(&w.schema, &end)?;
    ensure_eq!(ended.state, RequestState::Expired, "expired");
    expect_code(s.end_request(&w.schema, &end), Code::Conflict, "ended twice")?;
    ensure!(!s.holdings("E1")?.get("dir").is_some_and(|a| a.grants.contains("admin")), "the revoke is committed");
    ensure!(s.exceptions(true)?.iter().all(|x| x.kind != ExceptionKind::AcceptedSod), "the accepted risk resolved");
    ensure!(s.request_grants(None)?.is_empty(), "nothing granted any more");

    let records = w.audit_records()?;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r.entry.action.as_str())
        .filter(|a| a.starts_with("request.") || a.starts_with("approval.") || *a == "plan")
        .collect();
    ensure_eq!(
        actions,
        vec![
            "plan",
            "plan",
            "plan",
            "request.created",
            "request.stage_opened",
            "approval.approved",
            "request.stage_opened",
            "approval.approved",
            "request.granted",
            "plan",
            "request.expired",
            "plan"
        ],
        "audited in order"
    );
    ensure!(
        records.iter().any(|r| r.entry.action == "approval.approved" && r.entry.actor == "token:M1"),
        "a token's decision names the token"
    );
    w.chain_verifies()
}

/// A rejected stage ends the request and cancels the rest; a leaver's open requests are
/// cancelled with the leaver's batch; a pending request can be revoked without a plan.
pub fn requests_end_by_rejection_revocation_and_leaving(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    w.commit(&joiners(&w, "hr", &["E1", "E2", "E3"])?)?;
    let r = s.create_request(&ask("E1", &["M1", "M2"]))?;
    let first = r.stages.first().and_then(|s| s.approval_id).ok_or_else(|| Failure("no approval".into()))?;
    s.reject_via(first, "M1", "cli --as", "not needed")?;
    let r = s.request(r.id)?;
    ensure_eq!(r.state, RequestState::Rejected, "rejected");
    ensure_eq!(
        r.stages.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![StageState::Rejected, StageState::Cancelled],
        "the later stage cancelled"
    );
    ensure_eq!(s.approval(first)?.state, ApprovalState::Rejected, "its approval rejected");

    let pending = s.create_request(&ask("E2", &["M1"]))?;
    let end = RequestEnd {
        request_id: pending.id,
        state: RequestState::Revoked,
        by: "user:M1".into(),
        reason: "asked by mistake".into(),
        batch: None,
        audit: vec![],
    };
    ensure_eq!(s.end_request(&w.schema, &end)?.state, RequestState::Revoked, "a pending request revoked");
    let approval = pending.stages.first().and_then(|s| s.approval_id).ok_or_else(|| Failure("no approval".into()))?;
    ensure_eq!(s.approval(approval)?.state, ApprovalState::Superseded, "its open approval withdrawn");

    let open = s.create_request(&ask("E3", &["M1"]))?;
    let leaver = event(EventKind::Leaver, person(&w.schema, "E3", Status::Terminated), vec![]);
    w.commit(&super::batch("hr", vec![leaver], s.last_import("hr")?))?;
    let gone = s.request(open.id)?;
    ensure_eq!(gone.state, RequestState::Cancelled, "a leaver's request is cancelled");
    ensure!(gone.end_reason.as_deref().is_some_and(|r| r.contains("left")), "with why: {:?}", gone.end_reason);
    ensure!(s.requests(true)?.is_empty(), "nothing open");
    let actions: Vec<String> = w.audit_records()?.into_iter().map(|r| r.entry.action).collect();
    for a in ["approval.rejected", "request.rejected", "request.revoked", "request.cancelled"] {
        ensure!(actions.iter().any(|x| x == a), "`{a}` audited: {actions:?}");
    }
    w.chain_verifies()
}

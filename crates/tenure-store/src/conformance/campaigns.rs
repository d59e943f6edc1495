//! Conformance cases for certification campaigns ([`crate::Campaigns`]).

use super::{Failure, LEASE, Outcome, Subject, World, expect_code, joiners, settle};
use crate::OpFilter;
use crate::campaigns::{
    ItemDecision, ItemFilter, NewCampaign, NewItem, Reassignment, ReviewRevocation, ReviewRevocations, Timeout,
};
use tenure_core::error::Code;
use tenure_core::{
    CampaignState, Entitlement, EventKind, ExceptionKind, OnTimeout, OpKind, OpState, ReviewDecision, Status,
};

fn campaign(items: &[(&str, &str)]) -> NewCampaign {
    NewCampaign {
        name: "Q4 staff".into(),
        scope: "entitlement:dir:staff".into(),
        reviewer: "manager".into(),
        due_at: "2030-01-02T00:00:00.000000Z".into(),
        escalate_after_secs: Some(86_400),
        on_timeout: OnTimeout::Revoke,
        created_by: "alice".into(),
        actor: "user:alice".into(),
        items: items
            .iter()
            .map(|(identity, reviewer)| NewItem {
                identity: (*identity).into(),
                target: "dir".into(),
                entitlement: "staff".into(),
                why: vec!["staff".into()],
                reviewer: (*reviewer).into(),
                note: None,
            })
            .collect(),
        mover_event: None,
    }
}

fn decision(item: i64, d: ReviewDecision, by: &str) -> ItemDecision {
    ItemDecision {
        item,
        decision: d,
        justification: format!("{d} it"),
        by: by.into(),
        reviewer: by.into(),
        actor: format!("user:{by}"),
    }
}

/// Nobody decides on their own access: an item whose reviewer is its identity (as an older
/// version could assign) is refused by the store and stays undecided.
pub fn nobody_decides_their_own_review_item(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    let c = s.create_campaign(&campaign(&[("E1", "E1")]))?;
    let items = s.campaign_items(&ItemFilter { campaign: Some(c.id), ..ItemFilter::default() })?;
    let [a] = items.as_slice() else { return Err(Failure(format!("one item, got {}", items.len()))) };
    expect_code(s.decide_item(&decision(a.id, ReviewDecision::Keep, "E1")), Code::Conflict, "own access")?;
    ensure_eq!(s.campaign_item(a.id)?.decision, None, "undecided");
    Ok(())
}

/// A campaign is created with its items, decided once by the reviewer the engine checked,
/// reassigned, timed out once and closed once; each step audited; a closed campaign refuses
/// everything.
pub fn a_campaign_is_decided_reassigned_timed_out_and_closed_once(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    let c = s.create_campaign(&campaign(&[("E1", "M1"), ("E2", "M1"), ("E3", "M2")]))?;
    ensure_eq!((c.items, c.decided, c.state), (3, 0, CampaignState::Open), "created");
    ensure_eq!(c.created_at, w.now(), "by the store's clock");
    let items = s.campaign_items(&ItemFilter { campaign: Some(c.id), ..ItemFilter::default() })?;
    let [a, b, d] = items.as_slice() else { return Err(Failure(format!("three items, got {}", items.len()))) };
    let mine =
        s.campaign_items(&ItemFilter { reviewer: Some("M1".into()), open_only: true, ..ItemFilter::default() })?;
    ensure_eq!(mine.len(), 2, "M1's open items");

    s.remind(c.id, &[("M1".into(), 2), ("M2".into(), 1)], "schedule:campaigns")?;
    ensure!(s.campaign(c.id)?.reminded_at.is_some(), "reminded");
    expect_code(s.remind(c.id, &[("M1".into(), 2)], "schedule:campaigns"), Code::Conflict, "reminded twice")?;
    let kept = s.decide_item(&decision(a.id, ReviewDecision::Keep, "M1"))?;
    ensure_eq!((kept.decision, kept.decided_by.as_deref()), (Some(ReviewDecision::Keep), Some("M1")), "decided");
    expect_code(s.decide_item(&decision(a.id, ReviewDecision::Revoke, "M1")), Code::Conflict, "decided twice")?;
    expect_code(s.decide_item(&decision(b.id, ReviewDecision::Keep, "M2")), Code::Conflict, "by another reviewer")?;
    let moved =
        Reassignment { item: b.id, from: "M1".into(), to: "M3".into(), note: "M3 knows".into(), escalation: false };
    let r = s.reassign_items(std::slice::from_ref(&moved), "user:M1")?;
    ensure_eq!(r.first().map(|i| i.reviewer.as_str()), Some("M3"), "reassigned");
    ensure!(
        r.first().and_then(|i| i.note.as_deref()).is_some_and(|n| n.contains("M1 -> M3: M3 knows")),
        "with its note"
    );
    expect_code(s.reassign_items(&[moved], "user:M1"), Code::Conflict, "reassigned from a reviewer it no longer has")?;

    let t = Timeout {
        campaign: c.id,
        decisions: vec![ItemDecision {
            actor: "schedule:campaigns".into(),
            ..decision(b.id, ReviewDecision::Revoke, "M3")
        }],
        escalations: vec![Reassignment {
            item: d.id,
            from: "M2".into(),
            to: "M9".into(),
            note: "due".into(),
            escalation: true,
        }],
    };
    s.time_out(&t, "schedule:campaigns")?;
    expect_code(s.time_out(&t, "schedule:campaigns"), Code::Conflict, "timed out twice")?;
    let esc = s.campaign_item(d.id)?;
    ensure!(esc.escalated_at.is_some() && esc.reviewer == "M9", "escalated: {esc:?}");
    ensure!(s.campaign(c.id)?.timed_out_at.is_some(), "the timeout is recorded");
    let unplanned: Vec<i64> = s.unplanned_revocations()?.iter().map(|i| i.id).collect();
    ensure_eq!(unplanned, vec![b.id], "the timeout's revoke waits to be carried out");

    let closed = s.close_campaign(c.id, "alice", "user:alice")?;
    ensure_eq!((closed.state, closed.decided), (CampaignState::Closed, 2), "closed");
    expect_code(s.close_campaign(c.id, "alice", "user:alice"), Code::Conflict, "closed twice")?;
    expect_code(s.decide_item(&decision(d.id, ReviewDecision::Keep, "M9")), Code::Conflict, "decided when closed")?;
    expect_code(s.campaign(99), Code::NotFound, "an unknown campaign")?;
    expect_code(s.campaign_item(99), Code::NotFound, "an unknown item")?;
    let actions = w.actions()?;
    for a in [
        "campaign.create",
        "review.keep",
        "review.reassign",
        "campaign.timeout",
        "review.revoke",
        "review.escalate",
        "campaign.close",
    ] {
        ensure!(actions.iter().any(|x| x == a), "`{a}` audited: {actions:?}");
    }
    w.chain_verifies()
}

/// A revoke decision is planned as a revocation (the grant leaves the holdings, a
/// `manual_override` exception opens, the item names its operation), held with an approval when
/// the guard says so, recorded as `not_held` when the access is gone, and is an override for
/// planning until its exception is resolved.
pub fn a_revoke_decision_is_planned_once_with_its_exception_and_override(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    w.commit(&joiners(&w, "hr", &["E1", "E2"])?)?;
    settle(&w, "exec")?;
    let c = s.create_campaign(&campaign(&[("E1", "M1"), ("E2", "M1")]))?;
    let items = s.campaign_items(&ItemFilter { campaign: Some(c.id), ..ItemFilter::default() })?;
    let [a, b] = items.as_slice() else { return Err(Failure("two items".into())) };
    s.decide_item(&decision(a.id, ReviewDecision::Revoke, "M1"))?;
    s.decide_item(&decision(b.id, ReviewDecision::Revoke, "M1"))?;
    let rev = |item: i64, identity: &str| ReviewRevocation {
        item,
        identity: identity.into(),
        target: "dir".into(),
        entitlement: "staff".into(),
        account: Some("acct".into()),
        rules: vec!["staff".into()],
        owner: "M1".into(),
        detail: "revoked by M1".into(),
    };
    let plan =
        ReviewRevocations { revoke: vec![rev(a.id, "E1")], not_held: vec![], held: None, actor: "user:M1".into() };
    let ids = s.plan_review_revocations(&plan)?;
    ensure_eq!((ids.operations, ids.approval_id), (1, None), "planned now");
    expect_code(s.plan_review_revocations(&plan), Code::Conflict, "planned twice")?;
    ensure!(!s.holdings("E1")?.get("dir").is_some_and(|v| v.grants.contains("staff")), "the grant left the holdings");
    let ops =
        s.operations(&OpFilter { identity: Some("E1".into()), states: vec![OpState::Pending], ..OpFilter::default() })?;
    ensure!(ops.len() == 1 && ops.first().is_some_and(|o| o.kind == OpKind::Revoke), "one pending revoke: {ops:?}");
    let item = s.campaign_item(a.id)?;
    ensure_eq!(
        (item.operation_state, item.applied_by.as_deref()),
        (Some(OpState::Pending), Some("user:M1")),
        "carried out by"
    );
    let exc = s.exceptions(true)?;
    let exc =
        exc.iter().find(|e| e.subject == format!("review:{}", a.id)).ok_or_else(|| Failure("no exception".into()))?;
    ensure_eq!((exc.kind, exc.owner.as_str()), (ExceptionKind::ManualOverride, "M1"), "the deviation");
    let o = s.review_overrides(Some(&["E1", "E2"]))?;
    ensure_eq!(
        o.get("E1").map(|v| v.iter().cloned().collect::<Vec<_>>()),
        Some(vec![Entitlement { target: "dir".into(), name: "staff".into() }]),
        "an override"
    );
    ensure!(!o.contains_key("E2"), "only carried-out decisions");
    ensure_eq!(s.recent_review_revocations("2000-01-01T00:00:00Z")?.len(), 1, "the window");
    // Settled, it reads back as verified.
    let claimed = s.claim("exec", LEASE, 10)?;
    let done: Vec<_> = claimed.iter().map(|o| super::finished(o, OpState::Verified)).collect();
    s.finish_many(&done, &[], "exec")?;
    ensure_eq!(s.campaign_item(a.id)?.operation_state, Some(OpState::Verified), "the outcome is the operation's");

    // Held past the guard: an approval over the case; gone access is recorded, nothing planned.
    let held = ReviewRevocations {
        revoke: vec![rev(b.id, "E2")],
        not_held: vec![],
        held: Some("too many".into()),
        actor: "schedule:campaigns".into(),
    };
    let ids = s.plan_review_revocations(&held)?;
    ensure!(ids.approval_id.is_some(), "held: {ids:?}");
    ensure_eq!(s.campaign_item(b.id)?.operation_state, Some(OpState::Held), "held");
    let c2 = s.create_campaign(&campaign(&[("E1", "M1")]))?;
    let i2 = s.campaign_items(&ItemFilter { campaign: Some(c2.id), ..ItemFilter::default() })?;
    let i2 = i2.first().ok_or_else(|| Failure("an item".into()))?.id;
    s.decide_item(&decision(i2, ReviewDecision::Revoke, "M1"))?;
    let gone = ReviewRevocations { revoke: vec![rev(i2, "E1")], not_held: vec![], held: None, actor: "user:M1".into() };
    expect_code(s.plan_review_revocations(&gone), Code::Conflict, "a grant no longer held")?;
    s.plan_review_revocations(&ReviewRevocations {
        revoke: vec![],
        not_held: vec![i2],
        held: None,
        actor: "user:M1".into(),
    })?;
    ensure!(s.campaign_item(i2)?.not_held, "recorded as not held");
    ensure!(s.unplanned_revocations()?.is_empty(), "nothing left to carry out");
    ensure!(s.unchecked_movers()?.is_empty(), "no significant mover yet");
    let mut mover = super::event(EventKind::Mover, super::person(&w.schema, "E2", Status::Active), vec![]);
    mover.significant = true;
    w.commit(&super::batch("hr", vec![mover], s.last_import("hr")?))?;
    let movers = s.unchecked_movers()?;
    ensure_eq!(movers.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(), vec!["E2"], "a significant mover");
    s.movers_checked(&movers)?;
    ensure!(s.unchecked_movers()?.is_empty(), "checked once");
    w.chain_verifies()
}

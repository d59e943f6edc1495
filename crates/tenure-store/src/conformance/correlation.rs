//! Conformance cases for the correlation tables ([`crate::Correlations`]).

use super::{Failure, Outcome, Subject, World, expect_code};
use crate::{Baseline, Candidate, CaseIn, Decision, LateMatches, LinkIn, Unmatched, Verdict};
use tenure_core::CorrelationState;
use tenure_core::error::Code;

fn candidate(identity: &str, rule: &str, confidence: f64) -> Candidate {
    Candidate { identity: identity.into(), rule: rule.into(), confidence }
}

fn case(account: &str, candidates: Vec<Candidate>) -> CaseIn {
    CaseIn {
        account: account.into(),
        external_id: None,
        email: Some(format!("{account}@example.com")),
        enabled: true,
        grants: vec!["staff".into()],
        candidates,
        why: "two identities match by rule `name`".into(),
    }
}

/// A target is correlated once, with its links and cases audited in the same transaction; a
/// case is decided once, by a person, and a link or an orphan verdict is kept as decided.
pub fn correlation_is_recorded_once_and_cases_decided_once(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    let links = vec![LinkIn {
        account: "ada".into(),
        identity: "E1".into(),
        rule: "employee_number".into(),
        confidence: 1.0,
        enabled: true,
        grants: vec!["staff".into(), "mail-list".into()],
    }];
    let cases = vec![
        case("jsmith", vec![candidate("E2", "name", 0.6), candidate("E3", "name", 0.6)]),
        case("bob", vec![candidate("E4", "email", 0.95)]),
    ];
    let unmatched = vec![
        Unmatched {
            account: "legacy-eve".into(),
            external_id: Some("E9".into()),
            email: None,
            enabled: false,
            grants: vec![],
        },
        Unmatched { account: "printer".into(), external_id: None, email: None, enabled: true, grants: vec![] },
    ];
    let b = Baseline {
        target: "directory",
        accounts: 5,
        links: &links,
        cases: &cases,
        unmatched: &unmatched,
        actor: "source:hr",
    };
    let ids = s.record_baseline(&b)?;
    ensure_eq!(ids.len(), 2, "one id per case");
    expect_code(s.record_baseline(&b), Code::Conflict, "a target correlated twice")?;
    let baselines = s.baselines()?;
    ensure_eq!(baselines, vec![("directory".to_string(), w.now())], "the baseline, by the store's clock");
    let stored = s.correlation_links(Some("directory"))?;
    ensure_eq!(stored.len(), 1, "the link");
    ensure!(stored.iter().all(|l| l.identity == "E1" && l.grants.len() == 2 && l.case_id.is_none()), "{stored:?}");
    ensure!(s.correlation_links(Some("chat"))?.is_empty(), "another target has none");
    let open = s.correlation_cases(true)?;
    ensure_eq!(open.len(), 2, "both cases open");
    let first = ids.first().copied().ok_or_else(|| Failure("no case id".into()))?;
    let second = ids.get(1).copied().ok_or_else(|| Failure("no second case id".into()))?;
    let c = s.correlation_case(first)?;
    ensure_eq!(c.candidates.len(), 2, "candidates kept");
    ensure_eq!(c.state, CorrelationState::Open, "open");
    expect_code(s.correlation_case(9_999), Code::NotFound, "an unknown case")?;

    let link = |id: i64, identity: &str| Decision {
        case_id: id,
        verdict: Verdict::Link { identity: identity.into() },
        reason: "checked with the owner",
        by: "alice",
        actor: "user:alice",
        detail: format!("case {id} linked to {identity}"),
    };
    expect_code(s.decide_correlation(&link(first, "E1")), Code::Conflict, "an identity linked twice")?;
    ensure_eq!(s.correlation_case(first)?.state, CorrelationState::Open, "a refused decision changes nothing");
    let decided = s.decide_correlation(&link(first, "E2"))?;
    ensure_eq!(decided.state, CorrelationState::Linked, "linked");
    ensure_eq!(decided.identity.as_deref(), Some("E2"), "to E2");
    ensure_eq!(decided.decided_by.as_deref(), Some("alice"), "by alice");
    expect_code(s.decide_correlation(&link(first, "E3")), Code::Conflict, "a case decided twice")?;
    let orphan = Decision {
        case_id: second,
        verdict: Verdict::Orphan,
        reason: "a test account",
        by: "bob",
        actor: "token:bob",
        detail: "orphaned".into(),
    };
    ensure_eq!(s.decide_correlation(&orphan)?.state, CorrelationState::Orphaned, "orphaned");
    ensure!(s.correlation_cases(true)?.is_empty(), "nothing open");
    let all = s.correlation_links(None)?;
    ensure_eq!(all.len(), 2, "the rule's link and the person's");
    ensure!(all.iter().any(|l| l.account == "jsmith" && l.rule == "person" && l.case_id == Some(first)), "{all:?}");

    // An identity that arrives later is matched to an unmatched account: it leaves the unmatched
    // ones, once.
    ensure_eq!(s.unmatched_accounts()?.len(), 2, "the unmatched accounts kept");
    let late = vec![LinkIn {
        account: "legacy-eve".into(),
        identity: "E9".into(),
        rule: "employee_number".into(),
        confidence: 1.0,
        enabled: false,
        grants: vec![],
    }];
    let m = LateMatches { target: "directory", links: &late, cases: &[], actor: "source:hr" };
    ensure!(s.record_late_matches(&m)?.is_empty(), "no case");
    expect_code(s.record_late_matches(&m), Code::Conflict, "an account matched twice")?;
    let left: Vec<String> = s.unmatched_accounts()?.into_iter().map(|(_, u)| u.account).collect();
    ensure_eq!(left, vec!["printer".to_string()], "the matched account left the unmatched ones");

    let actions: Vec<String> =
        w.audit_records()?.into_iter().map(|r| format!("{} {}", r.entry.action, r.entry.actor)).collect();
    ensure_eq!(
        actions,
        vec![
            "correlation.baseline source:hr".to_string(),
            "correlation.linked source:hr".to_string(),
            "correlation.case_opened source:hr".to_string(),
            "correlation.case_opened source:hr".to_string(),
            "correlation.decided user:alice".to_string(),
            "correlation.decided token:bob".to_string(),
            "correlation.linked source:hr".to_string(),
        ],
        "audited, refusals not"
    );
    Ok(())
}

/// A create that met an account it may not adopt: in one transaction the create and the
/// identity's other queued work on the target are cancelled, its holdings there dropped and a
/// case opened naming it, audited; only while the claim is held. Deciding the case then links.
pub fn a_refused_adoption_cancels_the_work_and_opens_a_case(subject: &dyn Subject) -> Outcome {
    use crate::{OpFilter, RefusedAdoption};
    use tenure_core::OpState;
    use tenure_core::audit::AuditEntry;
    let w = World::new(subject)?;
    let s = &w.store;
    w.commit(&super::joiners(&w, "hr", &["E1"])?)?;
    let ops = s.claim("A", super::LEASE, 10)?;
    let create = super::nth(&ops, 0, "claimed")?;
    let refused = |owner: &'static str| RefusedAdoption {
        op: create.id,
        owner,
        identity: "E1",
        target: "dir",
        case: CaseIn {
            account: "e1".into(),
            external_id: None,
            email: None,
            enabled: true,
            grants: vec![],
            candidates: vec![candidate("E1", "username", 1.0)],
            why: "made by hand".into(),
        },
        note: "not created: the account is not this identity's".into(),
        audit: AuditEntry::new("executor", "apply.create_account", "cancelled").identity("E1"),
    };
    ensure_eq!(s.refuse_adoption(&refused("B"))?, None, "a claim not held changes nothing");
    ensure_eq!(s.correlation_cases(true)?.len(), 0, "no case");
    let Some(id) = s.refuse_adoption(&refused("A"))? else { return Err(Failure("the claim was held".into())) };
    let all = s.operations(&OpFilter { identity: Some("E1".into()), ..OpFilter::default() })?;
    ensure!(
        all.len() == 2 && all.iter().all(|o| o.state == OpState::Cancelled),
        "the create and the grant behind it: {all:?}"
    );
    ensure!(!s.holdings("E1")?.get("dir").is_some_and(|v| v.exists), "the account is not the identity's holding");
    let case = s.correlation_case(id)?;
    ensure_eq!((case.account.as_str(), case.state), ("e1", CorrelationState::Open), "an open case");
    ensure_eq!(case.candidates.first().map(|c| c.identity.clone()), Some("E1".into()), "naming the identity");
    ensure!(w.actions()?.iter().any(|a| a == "correlation.case_opened"), "audited");
    ensure!(s.cases(true)?.is_empty(), "the joiner's case settles: nothing of it is queued any more");
    let d = Decision {
        case_id: id,
        verdict: Verdict::Link { identity: "E1".into() },
        reason: "checked",
        by: "alice",
        actor: "user:alice",
        detail: "linked".into(),
    };
    ensure_eq!(s.decide_correlation(&d)?.state, CorrelationState::Linked, "a person links it");
    w.chain_verifies()
}

/// A refused adoption also cancels the identity's held work on the target (a grant awaiting
/// approval must not land on the account once released), and opens a new case for the account
/// when the one there is already decided: a decided case is never reopened or reused.
pub fn a_refused_adoption_cancels_held_work_and_never_reuses_a_decided_case(subject: &dyn Subject) -> Outcome {
    use crate::{OpFilter, RefusedAdoption, Remediation, RemediationOp};
    use tenure_core::audit::AuditEntry;
    use tenure_core::{OpKind, OpState};
    let w = World::new(subject)?;
    let s = &w.store;
    // An earlier case for the account, decided: nobody's.
    let cases = vec![case("e1", vec![candidate("E7", "name", 0.6)])];
    let b = Baseline { target: "dir", accounts: 1, links: &[], cases: &cases, unmatched: &[], actor: "source:hr" };
    let old = s.record_baseline(&b)?.first().copied().ok_or_else(|| Failure("no case id".into()))?;
    let orphan = Decision {
        case_id: old,
        verdict: Verdict::Orphan,
        reason: "a test account",
        by: "bob",
        actor: "user:bob",
        detail: "orphaned".into(),
    };
    ensure_eq!(s.decide_correlation(&orphan)?.state, CorrelationState::Orphaned, "decided");

    w.commit(&super::joiners(&w, "hr", &["E1"])?)?;
    let fix = RemediationOp {
        identity: "E1".into(),
        target: "dir".into(),
        kind: OpKind::Grant,
        entitlement: Some("finance".into()),
        account: Some("e1".into()),
        detail: "a missing grant".into(),
    };
    let remediation = Remediation {
        run_ids: vec![],
        ops: vec![fix],
        held: Some("held for approval".into()),
        actor: "reconciler".into(),
    };
    let (_, approval) = s.commit_remediation(&remediation)?;
    ensure!(approval.is_some(), "the grant is held for approval");
    let held = s.operations(&OpFilter { identity: Some("E1".into()), states: vec![OpState::Held], case_id: None })?;
    ensure_eq!(held.len(), 1, "one held grant");
    let ops = s.claim("A", super::LEASE, 10)?;
    let create = ops.iter().find(|o| o.kind == OpKind::CreateAccount).ok_or_else(|| Failure("no create".into()))?;
    let refused = RefusedAdoption {
        op: create.id,
        owner: "A",
        identity: "E1",
        target: "dir",
        case: CaseIn {
            account: "e1".into(),
            external_id: None,
            email: None,
            enabled: true,
            grants: vec![],
            candidates: vec![candidate("E1", "username", 1.0)],
            why: "made by hand".into(),
        },
        note: "not created: the account is not this identity's".into(),
        audit: AuditEntry::new("executor", "apply.create_account", "cancelled").identity("E1"),
    };
    let Some(id) = s.refuse_adoption(&refused)? else { return Err(Failure("the claim was held".into())) };
    let all = s.operations(&OpFilter { identity: Some("E1".into()), ..OpFilter::default() })?;
    ensure!(
        all.iter().filter(|o| o.target == "dir").all(|o| o.state == OpState::Cancelled),
        "the held grant is cancelled with the create: {all:?}"
    );
    ensure!(id != old, "a new case, not the decided one");
    let case = s.correlation_case(id)?;
    ensure_eq!(case.state, CorrelationState::Open, "the new case is open");
    ensure_eq!(case.candidates.first().map(|c| c.identity.clone()), Some("E1".into()), "naming the identity");
    ensure_eq!(s.correlation_case(old)?.state, CorrelationState::Orphaned, "the decided case stays decided");
    w.chain_verifies()
}

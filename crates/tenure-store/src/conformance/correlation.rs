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

//! The JSON of every wire type, pinned: a renamed or reordered field fails here before any
//! script or API client notices. Each case also reads its JSON back.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use super::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, expect: &str) {
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(json, expect);
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "reads back");
}

fn op(reason: OpReason) -> Operation {
    Operation {
        id: 7,
        case_id: 3,
        identity: "E1".into(),
        target: "directory".into(),
        kind: OpKind::Grant,
        entitlement: Some("staff".into()),
        reason,
        idem_key: "k".into(),
        state: OpState::Pending,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        created_at: "t0".into(),
        updated_at: "t1".into(),
        verified_at: None,
        account: Some("ada".into()),
        note: None,
    }
}

#[test]
fn operations_and_their_reasons() {
    let planned = OpReason {
        event: Some(2),
        finding: None,
        kind: Some(EventKind::Joiner),
        review: None,
        rules: vec!["staff".into()],
    };
    check(
        &op(planned),
        r#"{"id":7,"case_id":3,"identity":"E1","target":"directory","kind":"grant","entitlement":"staff","reason":{"event":2,"kind":"joiner","rules":["staff"]},"idem_key":"k","state":"pending","attempts":0,"next_attempt_at":null,"last_error":null,"created_at":"t0","updated_at":"t1","verified_at":null,"account":"ada","note":null}"#,
    );
    let fix = OpReason {
        event: Some(9),
        finding: Some("drift".into()),
        kind: Some(EventKind::Update),
        review: None,
        rules: vec![],
    };
    check(&fix, r#"{"event":9,"finding":"drift","kind":"update","rules":[]}"#);
}

#[test]
fn cases_approvals_tickets_exceptions() {
    let case = Case {
        id: 1,
        event_id: 2,
        identity: "E1".into(),
        kind: EventKind::Leaver,
        state: CaseState::Closed,
        opened_at: "t0".into(),
        closed_at: Some("t1".into()),
        revoke_ms: Some(25),
        ops: BTreeMap::from([(OpState::Verified, 2), (OpState::Cancelled, 1), (OpState::Failed, 1)]),
    };
    check(
        &case,
        r#"{"id":1,"event_id":2,"identity":"E1","kind":"leaver","state":"closed","opened_at":"t0","closed_at":"t1","revoke_ms":25,"ops":{"verified":2,"failed":1,"cancelled":1}}"#,
    );
    assert_eq!(case.progress(), (3, 4), "cancelled is settled, failed is not");
    let approval = Approval {
        id: 4,
        kind: ApprovalKind::Batch,
        subject: 3,
        summary: serde_json::json!({"file": "b.csv", "reason": "too many"}),
        state: ApprovalState::Pending,
        created_at: "t0".into(),
        decided_at: None,
        decided_by: None,
        decision_reason: None,
    };
    check(
        &approval,
        r#"{"id":4,"kind":"batch","subject":3,"summary":{"file":"b.csv","reason":"too many"},"state":"pending","created_at":"t0","decided_at":null,"decided_by":null,"decision_reason":null}"#,
    );
    assert_eq!(approval.summary_str("file"), Some("b.csv"));
    assert_eq!(approval.summary_str("counts"), None);
    check(
        &Ticket {
            id: 1,
            operation_id: 7,
            target: "payroll".into(),
            owner: "payroll-admins".into(),
            identity: "E1".into(),
            summary: "grant".into(),
            state: TicketState::Open,
            created_at: "t0".into(),
            due_at: "t1".into(),
            done_at: None,
            done_by: None,
            evidence: None,
            overdue: true,
        },
        r#"{"id":1,"operation_id":7,"target":"payroll","owner":"payroll-admins","identity":"E1","summary":"grant","state":"open","created_at":"t0","due_at":"t1","done_at":null,"done_by":null,"evidence":null,"overdue":true}"#,
    );
    check(
        &Exception {
            id: 1,
            kind: ExceptionKind::FailedOperation,
            subject: "operation:7".into(),
            case_id: Some(3),
            identity: Some("E1".into()),
            target: Some("chat".into()),
            owner: "chat".into(),
            reason: "no answer".into(),
            state: ExceptionState::Open,
            created_at: "t0".into(),
            resolved_at: None,
            due_at: Some("t1".into()),
            closed_by: None,
            close_reason: None,
            age_seconds: 60,
            overdue: false,
        },
        r#"{"id":1,"kind":"failed_operation","subject":"operation:7","case_id":3,"identity":"E1","target":"chat","owner":"chat","reason":"no answer","state":"open","created_at":"t0","resolved_at":null,"due_at":"t1","closed_by":null,"close_reason":null,"age_seconds":60,"overdue":false}"#,
    );
}

#[test]
fn identities() {
    let attributes = BTreeMap::from([("username".to_string(), "ada".to_string())]);
    check(
        &IdentitySummary {
            attributes: attributes.clone(),
            id: "E1".into(),
            kind: Kind::Employee,
            status: Status::Active,
        },
        r#"{"attributes":{"username":"ada"},"id":"E1","kind":"employee","status":"active"}"#,
    );
    let detail = IdentityDetail {
        accounts: BTreeMap::from([(
            "payroll".to_string(),
            AccountState {
                open_operations: 1,
                planned: AccountView { enabled: true, exists: true, grants: vec!["record".into()] },
                verified: AccountView::default(),
                not_found: vec![],
            },
        )]),
        attributes,
        events: vec![Event {
            id: 1,
            import_id: Some(1),
            source: "hr".into(),
            kind: EventKind::Joiner,
            identity: "E1".into(),
            received_at: "t0".into(),
            changes: vec![Change { attribute: "title".into(), from: None, to: Some("Rep".into()) }],
            significant: false,
            note: None,
            state: EventState::Applied,
        }],
        id: "E1".into(),
        kind: Kind::Employee,
        operations: vec![],
        status: Status::Active,
        timeline: vec![AuditRecord {
            seq: 2,
            at: "t0".into(),
            actor: "source:hr".into(),
            action: "event.joiner".into(),
            identity: Some("E1".into()),
            target: None,
            entitlement: None,
            reason: Some("event 1".into()),
            approver: None,
            outcome: "recorded".into(),
            prev_hash: "a".into(),
            hash: "b".into(),
        }],
    };
    check(
        &detail,
        concat!(
            r#"{"accounts":{"payroll":{"open_operations":1,"planned":{"enabled":true,"exists":true,"grants":["record"]},"verified":{"enabled":false,"exists":false,"grants":[]}}},"#,
            r#""attributes":{"username":"ada"},"#,
            r#""events":[{"id":1,"import_id":1,"source":"hr","kind":"joiner","identity":"E1","received_at":"t0","changes":[{"attribute":"title","from":null,"to":"Rep"}],"significant":false,"note":null,"state":"applied"}],"#,
            r#""id":"E1","kind":"employee","operations":[],"status":"active","#,
            r#""timeline":[{"seq":2,"at":"t0","actor":"source:hr","action":"event.joiner","identity":"E1","target":null,"entitlement":null,"reason":"event 1","approver":null,"outcome":"recorded","prev_hash":"a","hash":"b"}]}"#
        ),
    );
}

#[test]
fn reports() {
    let coverage = Coverage {
        classes: vec![ClassCoverage {
            class: "manual".into(),
            coverage: 1.0,
            excepted: 1,
            failed: 0,
            open: 0,
            operations: 3,
            verified: 2,
        }],
        leaver_cases: 1,
        open_leaver_cases: 0,
        time_to_revoke_ms: RevokeTimes { closed: 1, max: Some(25), p50: Some(25), p99: Some(25) },
    };
    check(
        &coverage,
        r#"{"classes":[{"class":"manual","coverage":1.0,"excepted":1,"failed":0,"open":0,"operations":3,"verified":2}],"leaver_cases":1,"open_leaver_cases":0,"time_to_revoke_ms":{"closed":1,"max":25,"p50":25,"p99":25}}"#,
    );
    check(
        &CheckReport {
            ok: false,
            online: vec![],
            problems: vec![Problem { file: "policy.toml".into(), line: 3, message: "unknown attribute".into() }],
            summary: None,
            unchecked_targets: vec!["chat".into()],
            warnings: vec![],
        },
        r#"{"ok":false,"online":[],"problems":[{"file":"policy.toml","line":3,"message":"unknown attribute"}],"summary":null,"unchecked_targets":["chat"]}"#,
    );
    check(
        &CheckSummary { entitlements: 5, roles: 4, sod_rules: 1, sources: 2, targets: 3 },
        r#"{"entitlements":5,"roles":4,"sod_rules":1,"sources":2,"targets":3}"#,
    );
    let apply = ApplyReport {
        expired_requests: 1,
        open_tickets: 2,
        report: ExecReport {
            attempts: 3,
            verified: 1,
            retries: 1,
            failed: 1,
            tickets: 2,
            remaining: BTreeMap::from([(OpState::Failed, 1), (OpState::Done, 2)]),
            unusable: BTreeMap::from([("chat".to_string(), "no token".to_string())]),
            notes: BTreeMap::new(),
        },
        retried: 0,
    };
    check(
        &apply,
        r#"{"expired_requests":1,"open_tickets":2,"report":{"attempts":3,"verified":1,"retries":1,"failed":1,"tickets":2,"remaining":{"done":2,"failed":1},"unusable":{"chat":"no token"}},"retried":0}"#,
    );
    assert_eq!((apply.remaining(OpState::Failed), apply.remaining(OpState::Pending)), (1, 0));
    check(
        &ReconReport {
            targets: vec![TargetReport {
                target: "directory".into(),
                run_id: 1,
                accounts: 2,
                grants: 3,
                millis: 4,
                findings: vec![Finding {
                    kind: FindingKind::Orphan,
                    target: "directory".into(),
                    account: Some("x".into()),
                    identity: None,
                    entitlement: None,
                    detail: "nobody".into(),
                }],
                unmanaged: vec![UnmanagedGrant { entitlement: "book-club".into(), accounts: 2 }],
                notes: vec![],
            }],
            sod: vec![],
            remediation: Some(RemediationReport { operations: 1, held: None, approval_id: None }),
            skipped: vec![SkippedTarget { target: "chat".into(), reason: "down".into() }],
        },
        r#"{"targets":[{"target":"directory","run_id":1,"accounts":2,"grants":3,"millis":4,"findings":[{"kind":"orphan","target":"directory","account":"x","identity":null,"entitlement":null,"detail":"nobody"}],"unmanaged":[{"entitlement":"book-club","accounts":2}]}],"sod":[],"remediation":{"operations":1,"held":null,"approval_id":null},"skipped":[{"target":"chat","reason":"down"}]}"#,
    );
}

#[test]
fn the_error_body_is_cores() {
    check(
        &ErrorBody::new(Code::NotFound, "approval 9 not found"),
        r#"{"code":"not_found","message":"approval 9 not found"}"#,
    );
}

#[test]
fn an_explanation() {
    let fact = Fact {
        attribute: "department".into(),
        test: "eq".into(),
        negated: false,
        expected: vec!["Sales".into()],
        actual: Some("Sales".into()),
        held: true,
        changed: true,
        previous: Some("Engineering".into()),
    };
    let x = Explanation {
        id: "E1".into(),
        kind: Kind::Employee,
        status: Status::Active,
        last_event: None,
        matched: vec![RoleTrace { role: "sales".into(), grants: vec!["directory:sales".into()], facts: vec![fact] }],
        unmatched: Vec::new(),
        desired: BTreeMap::from([(
            "directory".to_string(),
            BTreeMap::from([("sales".to_string(), vec!["sales".to_string()])]),
        )]),
        sod: vec![SodOutcome {
            rule: "payments".into(),
            action: "block".into(),
            conflicting: vec!["payroll:a".into(), "payroll:b".into()],
            refused: vec!["payroll:b".into()],
        }],
        targets: BTreeMap::from([(
            "directory".to_string(),
            TargetEffect {
                account: Some("ada".into()),
                held: AccountView { enabled: true, exists: true, grants: vec!["engineers".into()] },
                open_operations: 0,
                changes: vec![PlannedChange {
                    kind: OpKind::Grant,
                    entitlement: Some("sales".into()),
                    rules: vec!["sales".into()],
                }],
                live: None,
            },
        )]),
        targets_read: false,
    };
    check(
        &x,
        r#"{"id":"E1","kind":"employee","status":"active","last_event":null,"matched":[{"role":"sales","grants":["directory:sales"],"facts":[{"attribute":"department","test":"eq","negated":false,"expected":["Sales"],"actual":"Sales","held":true,"changed":true,"previous":"Engineering"}]}],"unmatched":[],"desired":{"directory":{"sales":["sales"]}},"sod":[{"rule":"payments","action":"block","conflicting":["payroll:a","payroll:b"],"refused":["payroll:b"]}],"targets":{"directory":{"account":"ada","held":{"enabled":true,"exists":true,"grants":["engineers"]},"open_operations":0,"changes":[{"kind":"grant","entitlement":"sales","rules":["sales"]}],"live":null}},"targets_read":false}"#,
    );
}

#[test]
fn a_live_account_with_the_attributes_that_would_change() {
    check(
        &LiveAccount {
            found: true,
            correlated_by: "account name `ada`".into(),
            enabled: true,
            grants: vec!["staff".into()],
            missing: vec![],
            extra: vec![],
            unmanaged: vec![],
            attributes: vec![
                AttributeChange {
                    attribute: "title".into(),
                    live: vec!["Engineer".into()],
                    desired: Some("Lead".into()),
                },
                AttributeChange { attribute: "mail".into(), live: vec!["x@example.com".into()], desired: None },
            ],
            error: None,
        },
        r#"{"found":true,"correlated_by":"account name `ada`","enabled":true,"grants":["staff"],"missing":[],"extra":[],"unmanaged":[],"attributes":[{"attribute":"title","live":["Engineer"],"desired":"Lead"},{"attribute":"mail","live":["x@example.com"],"desired":null}],"error":null}"#,
    );
}

#[test]
fn correlation_cases_and_decisions() {
    let case = CorrelationCase {
        id: 4,
        target: "directory".into(),
        account: "jsmith".into(),
        state: CorrelationState::Linked,
        why: "2 identities match by rule `name`".into(),
        candidates: vec![CorrelationCandidate { identity: "E3".into(), rule: "name".into(), confidence: 0.6 }],
        external_id: None,
        email: Some("j@example.com".into()),
        enabled: true,
        grants: vec!["staff".into()],
        created_at: "t0".into(),
        decided_at: Some("t1".into()),
        decided_by: Some("alice".into()),
        identity: Some("E3".into()),
        reason: Some("checked".into()),
    };
    check(
        &case,
        r#"{"id":4,"target":"directory","account":"jsmith","state":"linked","why":"2 identities match by rule `name`","candidates":[{"identity":"E3","rule":"name","confidence":0.6}],"external_id":null,"email":"j@example.com","enabled":true,"grants":["staff"],"created_at":"t0","decided_at":"t1","decided_by":"alice","identity":"E3","reason":"checked"}"#,
    );
    let decided = CorrelationDecided { case, operations: 2 };
    let json = serde_json::to_string(&decided).unwrap();
    assert!(json.starts_with(r#"{"case":{"id":4,"#) && json.ends_with(r#""operations":2}"#), "{json}");
    check(
        &CorrelateRequest { to: Some("E3".into()), orphan: false, reason: None },
        r#"{"to":"E3","orphan":false,"reason":null}"#,
    );
}

#[test]
fn campaigns_and_review_items() {
    let item = ReviewItem {
        id: 4,
        campaign: 1,
        identity: "E1".into(),
        entitlement: "directory:staff".into(),
        why: vec!["staff".into()],
        reviewer: "E2".into(),
        decision: Some(ReviewDecision::Revoke),
        justification: Some("left".into()),
        decided_at: Some("t1".into()),
        decided_by: Some("E2".into()),
        note: None,
        escalated_at: None,
        operation: Some(9),
        applied_by: Some("user:bob".into()),
        applied_at: None,
        outcome: Some(ReviewOutcome::Revoking),
    };
    check(
        &item,
        r#"{"id":4,"campaign":1,"identity":"E1","entitlement":"directory:staff","why":["staff"],"reviewer":"E2","decision":"revoke","justification":"left","decided_at":"t1","decided_by":"E2","note":null,"escalated_at":null,"operation":9,"applied_by":"user:bob","applied_at":null,"outcome":"revoking"}"#,
    );
    let req: ReviewRequest = serde_json::from_str(r#"{"decision":"keep","reason":"ok"}"#).unwrap();
    assert_eq!((req.decision, req.reason.as_deref(), req.reassign), (Some(ReviewDecision::Keep), Some("ok"), None));
    assert!(
        serde_json::from_str::<ReviewRequest>(r#"{"decision":"keep","as":"E9"}"#).is_err(),
        "no self-asserted reviewer"
    );
}

//! Issue 10, deliverable 4, in-process: the exceptions register's decisions through the API
//! (`POST /api/v1/exceptions/{id}/resolve|accept`) recorded with the token's name, refusals
//! that change nothing, and the register's counts and ages in `/metrics`.

use super::World;
use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt as _;
use tenure_core::{ExceptionKind, Scope};
use tenure_store::NewException;
use tower::ServiceExt as _;

/// A JSON POST as `token`.
async fn post(w: &World, uri: &str, token: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let req = axum::http::Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = tenure_server::app(w.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn audit_len(w: &World) -> usize {
    let mut n = 0;
    w.state
        .app
        .store()
        .scan_audit(&Default::default(), &mut |_| {
            n += 1;
            true
        })
        .unwrap();
    n
}

fn open(w: &World, kind: ExceptionKind, subject: &str) -> i64 {
    let x = NewException {
        kind,
        subject,
        case_id: None,
        identity: Some("E1"),
        target: Some("payroll"),
        owner: "risk-office",
        reason: "recorded by a test",
        due_at: None,
    };
    w.state.app.store().open_exception(&x, "test").unwrap().id
}

#[tokio::test]
async fn issue10_exceptions_are_resolved_and_accepted_as_the_token_and_counted_in_metrics() {
    let w = World::new();
    let sod = open(&w, ExceptionKind::AcceptedSod, "request:1");
    w.clock.advance(chrono::Duration::seconds(1800));
    let manual = open(&w, ExceptionKind::ManualOverride, "review:1");
    w.clock.advance(chrono::Duration::seconds(1800));
    let auditor = w.token("audrey", Scope::Auditor);

    let (st, bytes) = w.raw("GET", "/metrics", &auditor, Body::empty()).await;
    assert_eq!(st, StatusCode::OK);
    let m = String::from_utf8(bytes).unwrap();
    for line in [
        "tenure_exceptions_open_oldest_age_seconds{kind=\"accepted_sod\"} 3600\n",
        "tenure_exceptions_open_oldest_age_seconds{kind=\"manual_override\"} 1800\n",
        "tenure_exceptions_open_oldest_age_seconds{kind=\"declined_fix\"} 0\n",
        "tenure_exceptions_open{kind=\"accepted_sod\",age=\"lt_1d\"} 1\n",
        "tenure_exceptions_accepted{kind=\"accepted_sod\"} 0\n",
    ] {
        assert!(m.contains(line), "{line}: {m}");
    }

    // Refusals: no reason, an unknown field, a past due date, a due date on a resolve, an
    // unknown id; none changes anything.
    let before = audit_len(&w);
    for (uri, body, status) in [
        (format!("/api/v1/exceptions/{sod}/resolve"), r#"{"reason": " "}"#, StatusCode::BAD_REQUEST),
        (format!("/api/v1/exceptions/{sod}/resolve"), r#"{"reason": "x", "by": "mallory"}"#, StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/exceptions/{sod}/accept"),
            r#"{"reason": "x", "due": "2020-01-01"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (format!("/api/v1/exceptions/{sod}/accept"), r#"{"reason": "x", "due": "soon"}"#, StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/exceptions/{sod}/resolve"),
            r#"{"reason": "x", "due": "2030-01-01"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/exceptions/999/resolve".to_string(), r#"{"reason": "x"}"#, StatusCode::NOT_FOUND),
    ] {
        let (st, e) = post(&w, &uri, &w.operator, body).await;
        assert_eq!(st, status, "{uri} {body}: {e}");
        assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
    }
    assert_eq!(audit_len(&w), before, "refusals audit nothing");
    let (_, list) = w.get("/api/v1/exceptions", &auditor).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "both still open: {list}");

    let (st, x) = post(
        &w,
        &format!("/api/v1/exceptions/{sod}/accept"),
        &w.operator,
        r#"{"reason": "risk owner signed off", "due": "2027-06-30"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{x}");
    assert_eq!(
        (x["state"].as_str(), x["closed_by"].as_str(), x["close_reason"].as_str()),
        (Some("accepted"), Some("ops"), Some("risk owner signed off")),
        "{x}"
    );
    assert!(x["due_at"].as_str().unwrap().starts_with("2027-06-30T23:59:59"), "{x}");
    assert_eq!(x["age_seconds"], 3600, "{x}");
    let (st, e) = post(&w, &format!("/api/v1/exceptions/{sod}/resolve"), &w.operator, r#"{"reason": "again"}"#).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("already accepted"), "{e}");
    let (st, x) =
        post(&w, &format!("/api/v1/exceptions/{manual}/resolve"), &w.operator, r#"{"reason": "access restored"}"#)
            .await;
    assert_eq!((st, x["state"].as_str()), (StatusCode::OK, Some("resolved")), "{x}");

    // Audited with the token's name as actor and approver.
    let (_, bytes) = w.raw("GET", "/api/v1/audit/export", &w.token("aud2", Scope::Auditor), Body::empty()).await;
    let text = String::from_utf8(bytes).unwrap();
    let accepted = text.lines().find(|l| l.contains("\"action\":\"exception.accepted\"")).expect(&text);
    assert!(accepted.contains("\"actor\":\"token:ops\"") && accepted.contains("\"approver\":\"ops\""), "{accepted}");
    assert!(text.lines().any(|l| l.contains("\"action\":\"exception.resolved\"")), "{text}");

    let (_, list) = w.get("/api/v1/exceptions", &auditor).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "none open: {list}");
    let (_, bytes) = w.raw("GET", "/metrics", &auditor, Body::empty()).await;
    let m = String::from_utf8(bytes).unwrap();
    assert!(m.contains("tenure_exceptions_accepted{kind=\"accepted_sod\"} 1\n"), "{m}");
    assert!(m.contains("tenure_exceptions_open_oldest_age_seconds{kind=\"accepted_sod\"} 0\n"), "{m}");
}

/// Issue 10: `POST /api/v1/identities/{id}/rotate` plans a service account's rotation as the
/// token (never a secret in the answer or the audit trail) and refuses what is not an active
/// NHI with an account to rotate.
#[tokio::test]
async fn issue10_a_rotation_is_planned_through_the_api_as_the_token() {
    let w = World::new();
    let c = tenure_sample::company::Company::generate(&tenure_sample::company::Options::new(
        100,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    ));
    let (st, report) = w.post("/api/v1/imports?source=hr", &w.operator, &c.to_csv()).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    let svc = c.people.iter().find(|p| p.kind == "service").unwrap().id.clone();
    let person = c.people.iter().find(|p| p.kind == "employee").unwrap().id.clone();

    let before = audit_len(&w);
    for (uri, status, code) in [
        ("/api/v1/identities/NOPE/rotate".to_string(), StatusCode::NOT_FOUND, "not_found"),
        (format!("/api/v1/identities/{person}/rotate"), StatusCode::BAD_REQUEST, "invalid_input"),
        (format!("/api/v1/identities/{svc}/rotate?target=chat"), StatusCode::BAD_REQUEST, "invalid_input"),
        (format!("/api/v1/identities/{svc}/rotate?target=nowhere"), StatusCode::NOT_FOUND, "unknown_target"),
        (format!("/api/v1/identities/{svc}/rotate?tgt=warehouse"), StatusCode::BAD_REQUEST, "invalid_input"),
    ] {
        let (st, e) = post(&w, &uri, &w.operator, "").await;
        assert_eq!((st, e["code"].as_str()), (status, Some(code)), "{uri}: {e}");
    }
    assert_eq!(audit_len(&w), before, "refusals audit nothing");

    let (st, planned) = post(&w, &format!("/api/v1/identities/{svc}/rotate"), &w.operator, "").await;
    assert_eq!(st, StatusCode::OK, "{planned}");
    let items = planned.as_array().unwrap();
    assert_eq!(items.len(), 1, "{planned}");
    assert_eq!((items[0]["target"].as_str(), items[0]["queued"].as_bool()), (Some("warehouse"), Some(true)));
    let (_, bytes) = w.raw("GET", "/api/v1/audit/export", &w.token("aud", Scope::Auditor), Body::empty()).await;
    let text = String::from_utf8(bytes).unwrap();
    let line = text.lines().find(|l| l.contains("\"action\":\"plan.rotate_credential\"")).expect(&text);
    assert!(line.contains("\"actor\":\"token:ops\"") && line.contains("requested by ops"), "{line}");
}

//! The REST API in-process (`oneshot` on `tenure_server::app`): pages and filters, the
//! `{code, message}` errors, an import held by the guard and approved as the token (never as a
//! body field), the streamed audit export byte for byte the CLI's, and the metrics.

use super::World;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tenure_core::Scope;
use tenure_sample::company::{Company, Options};
use tower::ServiceExt;

impl World {
    pub(crate) fn token(&self, name: &str, scope: Scope) -> String {
        let app = &self.state.app;
        tenure_engine::tokens::create(app.config(), app.store().as_ref(), name, scope, None, "test").unwrap().secret
    }

    pub(crate) async fn raw(&self, method: &str, uri: &str, token: &str, body: Body) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(body)
            .unwrap();
        let resp = tenure_server::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    pub(crate) async fn get(&self, uri: &str, token: &str) -> (StatusCode, serde_json::Value) {
        let (s, b) = self.raw("GET", uri, token, Body::empty()).await;
        (s, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
    }

    async fn post_json(&self, uri: &str, token: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = tenure_server::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    pub(crate) async fn post(&self, uri: &str, token: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let (s, b) = self.raw("POST", uri, token, Body::from(body.to_string())).await;
        (s, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
    }
}

fn company() -> Company {
    Company::generate(&Options::new(30, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()))
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn identities_page_filter_and_show_in_full() {
    let w = World::new();
    let c = company();
    let (st, report) = w.post("/api/v1/imports?source=hr", &w.operator, &c.to_csv()).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["outcome"], "applied", "{report}");
    let reader = w.token("reader", Scope::Auditor);

    // Pages of 7 walk every identity once, in id order.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/identities?limit=7".to_string();
    loop {
        let (st, page) = w.get(&uri, &reader).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/identities?limit=7&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, each once");
    assert_eq!(seen.len(), report["counts"]["accepted"].as_u64().unwrap() as usize);

    // Filters: everything returned matches, and text finds a person by username.
    let (_, active) = w.get("/api/v1/identities?status=active&kind=employee&limit=1000", &reader).await;
    for i in active["items"].as_array().unwrap() {
        assert_eq!((i["status"].as_str(), i["kind"].as_str()), (Some("active"), Some("employee")), "{i}");
    }
    let first = &active["items"][0];
    let username = first["attributes"]["username"].as_str().unwrap().to_uppercase();
    let (_, found) = w.get(&format!("/api/v1/identities?text={username}"), &reader).await;
    assert!(ids(&found).contains(&first["id"].as_str().unwrap().to_string()), "{found}");
    let dept = first["attributes"]["department"].as_str().unwrap();
    let (_, by_dept) = w
        .get(
            &format!("/api/v1/identities?department={}&limit=1000", dept.replace(' ', "%20").replace('&', "%26")),
            &reader,
        )
        .await;
    assert!(!ids(&by_dept).is_empty());
    for i in by_dept["items"].as_array().unwrap() {
        assert_eq!(i["attributes"]["department"].as_str(), Some(dept));
    }

    // One identity in full; an unknown one and bad input are `{code, message}`.
    let id = first["id"].as_str().unwrap();
    let (st, detail) = w.get(&format!("/api/v1/identities/{id}"), &reader).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(detail["id"], id);
    assert!(detail["accounts"].as_object().is_some_and(|a| !a.is_empty()), "{detail}");
    assert!(detail["timeline"].as_array().is_some_and(|t| !t.is_empty()), "{detail}");
    let (st, e) = w.get("/api/v1/identities/nobody", &reader).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{e}");
    let (st, e) = w.get("/api/v1/identities?limit=0", &reader).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{e}");
    let (st, e) = w.get("/api/v1/identities?status=retired", &reader).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{e}");
    let (st, e) = w.get("/api/v1/cases?cursor=aWRlbnRpdGllczpF", &reader).await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input")),
        "a cursor of another list: {e}"
    );
    let (st, e) = w.post("/api/v1/imports?source=nope", &w.operator, "a,b\n").await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_source")), "{e}");

    // The plan lists pending work; the operations filter by identity.
    let (_, plan) = w.get("/api/v1/plan?limit=1000", &reader).await;
    assert!(plan["items"].as_array().unwrap().iter().all(|o| o["state"] == "pending"));
    let (_, ops) = w.get(&format!("/api/v1/operations?identity={id}"), &reader).await;
    assert!(ops["items"].as_array().unwrap().iter().all(|o| o["identity"] == id));
}

#[tokio::test]
async fn a_held_import_is_approved_by_the_token_that_decides() {
    let w = World::new();
    let mut c = company();
    assert_eq!(w.post("/api/v1/imports?source=hr", &w.operator, &c.to_csv()).await.0, StatusCode::OK);
    let gone: Vec<String> =
        c.to_csv().lines().skip(1).take(5).map(|l| l.split(',').next().unwrap().to_string()).collect();
    for id in &gone {
        c.remove(id);
    }
    let (_, report) = w.post("/api/v1/imports?source=hr", &w.operator, &c.to_csv()).await;
    assert_eq!(report["outcome"], "held", "{report}");
    let approval = report["approval_id"].as_i64().unwrap();
    let approver = w.token("carol", Scope::Approver);

    // The operator may read the approval but not decide it.
    let (_, pending) = w.get("/api/v1/approvals", &w.operator).await;
    assert_eq!(pending["items"][0]["id"], approval, "{pending}");
    let (st, _) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &w.operator, "").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A rejection needs a reason; the body names no approver (an unknown field is refused).
    let (st, e) = w.post(&format!("/api/v1/approvals/{approval}/reject"), &approver, r#"{"reason": " "}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let body = r#"{"reason": "x", "approver": "mallory"}"#;
    let (st, e) = w.post(&format!("/api/v1/approvals/{approval}/reject"), &approver, body).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{e}");

    let (st, d) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &approver, "").await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["approval"]["decided_by"], "carol", "{d}");
    assert_eq!(d["approval"]["state"], "approved");
    assert!(d["events"].as_u64().unwrap() >= 5, "{d}");
    let (st, e) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &approver, "").await;
    // Approved once. (The engine calls this `invalid_input`; the registry's `conflict` describes
    // it better, noted for the engine's owner.)
    assert!(st.is_client_error() && e["message"].as_str().is_some_and(|m| m.contains("not pending")), "{e}");

    // The audit trail names the token as the approver; the export is the CLI's bytes.
    let auditor = w.token("audrey", Scope::Auditor);
    let (st, bytes) = w.raw("GET", "/api/v1/audit/export", &auditor, Body::empty()).await;
    assert_eq!(st, StatusCode::OK);
    let mut expected = Vec::new();
    tenure_engine::evidence::write_jsonl(w.state.app.store_ref(), &Default::default(), &mut expected).unwrap();
    assert_eq!(String::from_utf8(bytes.clone()).unwrap(), String::from_utf8(expected).unwrap());
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.lines().any(|l| l.contains(r#""approver":"carol""#)), "the approver is recorded");
    // Issue 10: and that it came through the token.
    assert!(
        text.lines().any(|l| l.contains(r#""actor":"token:carol","action":"approval.approved""#)),
        "the approval's actor is the token"
    );
    let (st, v) = w.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (st, bytes) =
        w.raw("GET", &format!("/api/v1/audit/export?identity={}", gone[0]), &auditor, Body::empty()).await;
    assert_eq!(st, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.lines().next().unwrap().contains("\"filtered\":true"), "a filtered export starts with its header");
    assert!(text.lines().skip(1).all(|l| l.contains(&format!("\"identity\":\"{}\"", gone[0]))), "{text}");

    // The metrics describe the store as the API lists it.
    let (_, open) = w.get("/api/v1/cases?open=true&limit=1000", &auditor).await;
    let open_joiners = open["items"].as_array().unwrap().iter().filter(|c| c["kind"] == "joiner").count();
    let (_, pending) = w.get("/api/v1/plan?limit=1000", &auditor).await;
    let pending_directory = pending["items"].as_array().unwrap().iter().filter(|o| o["target"] == "directory").count();
    let (st, bytes) = w.raw("GET", "/metrics", &auditor, Body::empty()).await;
    assert_eq!(st, StatusCode::OK);
    let m = String::from_utf8(bytes).unwrap();
    assert!(m.contains(&format!("tenure_open_cases{{kind=\"joiner\"}} {open_joiners}\n")), "{m}");
    assert!(
        m.contains(&format!("tenure_queue_depth{{target=\"directory\",state=\"pending\"}} {pending_directory}\n")),
        "{m}"
    );
    for family in [
        "tenure_revocation_debt",
        "tenure_operation_failures",
        "tenure_findings",
        "tenure_exceptions_open",
        "tenure_time_to_revoke_seconds",
    ] {
        assert!(m.contains(&format!("# TYPE {family} ")), "{family}: {m}");
    }
    assert!(
        m.contains(
            "tenure_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/approvals/{id}/approve\""
        ),
        "{m}"
    );
    for token in [&approver, &auditor, &w.operator] {
        assert!(!m.contains(&token[4..]) && !text.contains(&token[4..]));
    }
}

/// Issue 10 point 6: through the API the requester and the approver are the tokens' names,
/// never a name from the body; a request's stage is decided only by the token named as its
/// resolved approver, and the audit trail says it came through that token.
#[tokio::test]
async fn issue10_requests_are_asked_and_approved_as_the_token() {
    let w = World::new();
    let c = company();
    assert_eq!(w.post("/api/v1/imports?source=hr", &w.operator, &c.to_csv()).await.0, StatusCode::OK);
    let person = c
        .people
        .iter()
        .find(|p| {
            p.status == "active" && p.manager.as_deref().is_some_and(|m| c.get(m).is_some_and(|m| m.status == "active"))
        })
        .unwrap();
    let manager = c.get(person.manager.as_deref().unwrap()).unwrap();
    let asker = w.token(&person.username, Scope::Approver);
    let boss = w.token(&manager.id, Scope::Approver);
    let other = w.token("mallory", Scope::Approver);

    // Only approver (and admin) tokens ask; the body names no requester.
    let body =
        format!(r#"{{"role": "warehouse-admin", "identity": "{}", "reason": "close", "duration": "2s"}}"#, person.id);
    let (st, _) = w.post_json("/api/v1/requests", &w.operator, &body).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let spoofed = body.replace(r#""reason""#, r#""requester": "mallory", "reason""#);
    let (st, e) = w.post_json("/api/v1/requests", &asker, &spoofed).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["message"].as_str().unwrap().contains("requester"), "an unknown field is refused: {e}");
    let (st, too_long) = w.post_json("/api/v1/requests", &asker, &body.replace("2s", "9h")).await;
    assert_eq!(
        (st, too_long["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request_refused")),
        "{too_long}"
    );
    let (st, r) = w.post_json("/api/v1/requests", &asker, &body).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (r["requester"].as_str(), r["via"].as_str()),
        (Some(person.username.as_str()), Some(format!("token:{}", person.username).as_str()))
    );
    let approval = r["stages"][0]["approval_id"].as_i64().unwrap();
    let (_, listed) = w.get("/api/v1/requests?open=true", &w.operator).await;
    assert_eq!(listed["items"][0]["id"], r["id"], "{listed}");

    // The requester's own token, another approver's: refused, with their codes.
    let (st, e) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &asker, "").await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("self_approval")), "{e}");
    let (st, e) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &other, "").await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_approver")), "{e}");
    // The manager's token decides.
    let (st, d) = w.post(&format!("/api/v1/approvals/{approval}/approve"), &boss, "").await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["request"]["state"], "granted", "{d}");
    assert_eq!(d["request"]["stages"][0]["via"], format!("token:{}", manager.id));

    let (_, text) = w.raw("GET", "/api/v1/audit/export", &w.token("audit", Scope::Auditor), Body::empty()).await;
    let text = String::from_utf8(text).unwrap();
    let approved = text.lines().find(|l| l.contains(r#""action":"approval.approved""#)).unwrap();
    assert!(approved.contains(&format!(r#""actor":"token:{}""#, manager.id)), "{approved}");
    assert!(approved.contains(&format!(r#""approver":"{}""#, manager.id)), "{approved}");
    assert!(approved.contains(&format!("via token:{}", manager.id)), "{approved}");

    // A blank reason is refused and ends nothing.
    let uri = format!("/api/v1/requests/{}/revoke", r["id"]);
    let (st, e) = w.post_json(&uri, &boss, r#"{"reason": "  "}"#).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{e}");
    let (_, still) = w.get("/api/v1/requests", &boss).await;
    let still = still["items"].as_array().unwrap().iter().find(|x| x["id"] == r["id"]).unwrap().clone();
    assert_eq!(still["state"], "granted", "{still}");

    // Revoked early by a token without a reason:
    // planned, and recorded as that token with who ended it.
    let (st, ended) = w.post_json(&uri, &boss, "{}").await;
    assert_eq!((st, ended["state"].as_str()), (StatusCode::OK, Some("revoked")), "{ended}");
    assert_eq!(ended["ended_by"], format!("token:{}", manager.id));
    let (_, text) = w.raw("GET", "/api/v1/audit/export", &w.token("audit2", Scope::Auditor), Body::empty()).await;
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&format!("revoked early by {}", manager.id)), "{text}");
}

/// Correlation cases over the API: listed to any reader, decided by an operator in the token's
/// name; a malformed decision is a 400 and an unknown case a 404, and neither changes anything.
#[tokio::test]
async fn correlation_cases_are_listed_and_decided_as_the_token() {
    use tenure_engine::correlation::{AccountState, Inventory};
    let w = World::new();
    let c = company();
    let first = c.people.iter().find(|p| p.status == "active").unwrap();
    let login = |name: &str| AccountState {
        account: name.into(),
        external_id: None,
        email: Some(first.email.to_uppercase()),
        enabled: true,
        grants: Default::default(),
        sessions: None,
    };
    let mut inventory = Inventory::new();
    inventory.insert("directory".into(), vec![login("x1"), login("x2")]);
    let opts = tenure_engine::import::ImportOptions {
        correlation: Some(tenure_engine::import::Correlate { inventory, unread: Vec::new() }),
        ..Default::default()
    };
    let engine = w.state.app.engine().unwrap();
    let report = tenure_engine::import::import_csv(&engine, "hr", "hr.csv", c.to_csv().as_bytes(), &opts).unwrap();
    assert_eq!(report.correlation[0].cases, 2, "{report:?}");
    let reader = w.token("reader", Scope::Auditor);

    let (st, page) = w.get("/api/v1/correlations?open=true", &reader).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(
        items[0]["candidates"],
        serde_json::json!([{"identity": first.id, "rule": "email", "confidence": 0.95}])
    );
    let (x1, x2) = (items[0]["id"].as_i64().unwrap(), items[1]["id"].as_i64().unwrap());

    let decide = |id: i64| format!("/api/v1/correlations/{id}/decide");
    for body in ["{}", r#"{"to": "E1", "orphan": true, "reason": "x"}"#, r#"{"to": ""}"#, r#"{"who": "me"}"#] {
        let (st, e) = w.post_json(&decide(x1), &w.operator, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {e}");
    }
    let (st, e) = w.post_json(&decide(x1), &w.operator, r#"{"orphan": true}"#).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{e}");
    let (st, e) = w.post_json(&decide(999), &w.operator, r#"{"to": "E1"}"#).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{e}");
    let (st, _) = w.post_json(&decide(x1), &reader, r#"{"orphan": true, "reason": "x"}"#).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an auditor reads, never decides");
    let (_, still) = w.get("/api/v1/correlations?open=true", &reader).await;
    assert_eq!(still, page, "refusals change nothing");

    let body = format!(r#"{{"to": "{}", "reason": "checked"}}"#, first.id);
    let (st, d) = w.post_json(&decide(x2), &w.operator, &body).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!((d["case"]["state"].as_str(), d["case"]["decided_by"].as_str()), (Some("linked"), Some("ops")), "{d}");
    assert!(d["operations"].as_u64().unwrap() > 0, "the identity is planned on the account: {d}");
    let (st, e) = w.post_json(&decide(x2), &w.operator, &body).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "decided already: {e}");
    let (st, d) = w.post_json(&decide(x1), &w.operator, r#"{"orphan": true, "reason": "a shared login"}"#).await;
    assert_eq!((st, d["case"]["state"].as_str()), (StatusCode::OK, Some("orphaned")), "{d}");
    let (_, open) = w.get("/api/v1/correlations?open=true", &reader).await;
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
    let (_, all) = w.get("/api/v1/correlations", &reader).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");

    // Review finding 3: decided through the API, the decision and the planning are audited as
    // the token, never as a CLI user of the same name.
    let (_, text) = w.raw("GET", "/api/v1/audit/export", &w.token("aud3", Scope::Auditor), Body::empty()).await;
    let text = String::from_utf8(text).unwrap();
    for action in ["correlation.decided", "correlation.planned"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(&format!(r#""action":"{action}""#))).collect();
        assert!(!lines.is_empty(), "{action} audited: {text}");
        assert!(lines.iter().all(|l| l.contains(r#""actor":"token:ops""#)), "{action} by the token: {lines:?}");
    }
    assert!(!text.contains(r#""actor":"user:ops""#), "{text}");
}

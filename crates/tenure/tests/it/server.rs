//! `tenure serve` over a real socket (`tenure_testkit::server`): the authorization matrix over
//! every route, the throttle, graceful shutdown, and no token anywhere in logs or answers.

use std::collections::BTreeSet;
use tenure_testkit::server::Server;

/// What each route needs, as the design's section 10 says; every route the server documents
/// must be here, and every route here must be served.
const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/api/v1/openapi.json", Need::Read),
    ("GET", "/api/v1/identities", Need::Read),
    ("GET", "/api/v1/identities/{id}", Need::Read),
    ("POST", "/api/v1/identities/{id}/rotate", Need::Operate),
    ("GET", "/api/v1/plan", Need::Read),
    ("GET", "/api/v1/operations", Need::Read),
    ("POST", "/api/v1/operations/retry", Need::Operate),
    ("GET", "/api/v1/cases", Need::Read),
    ("GET", "/api/v1/cases/coverage", Need::Read),
    ("GET", "/api/v1/approvals", Need::Read),
    ("POST", "/api/v1/approvals/{id}/approve", Need::Approve),
    ("POST", "/api/v1/approvals/{id}/reject", Need::Approve),
    ("GET", "/api/v1/tasks", Need::Read),
    ("POST", "/api/v1/tasks/{id}/done", Need::Operate),
    ("GET", "/api/v1/findings", Need::Read),
    ("GET", "/api/v1/exceptions", Need::Read),
    ("POST", "/api/v1/exceptions/{id}/resolve", Need::Operate),
    ("POST", "/api/v1/exceptions/{id}/accept", Need::Operate),
    ("POST", "/api/v1/imports", Need::Operate),
    ("POST", "/api/v1/simulate", Need::Operate),
    ("GET", "/api/v1/audit/verify", Need::Audit),
    ("GET", "/api/v1/audit/export", Need::Audit),
    ("GET", "/api/v1/tokens", Need::Administer),
    // Certification campaigns (issue 10).
    ("GET", "/api/v1/campaigns", Need::Read),
    ("POST", "/api/v1/campaigns", Need::Administer),
    ("GET", "/api/v1/campaigns/{id}", Need::Read),
    ("POST", "/api/v1/campaigns/{id}/close", Need::Administer),
    ("GET", "/api/v1/campaigns/{id}/export", Need::Read),
    ("GET", "/api/v1/reviews", Need::Approve),
    ("POST", "/api/v1/reviews/{id}", Need::Approve),
    // Correlation (issue 9, point 5).
    ("GET", "/api/v1/correlations", Need::Read),
    ("POST", "/api/v1/correlations/{id}/decide", Need::Operate),
    // Access requests (issue 10).
    ("GET", "/api/v1/requests", Need::Read),
    ("POST", "/api/v1/requests", Need::Approve),
    ("POST", "/api/v1/requests/{id}/revoke", Need::Approve),
];

/// Routes outside the OpenAPI document.
const OTHER_ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/metrics", Need::Read),
    ("POST", "/api/v1/events?source=hr", Need::Operate),
    ("POST", "/hooks/hr", Need::Push),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Operate,
    Approve,
    Audit,
    Administer,
    /// A source's webhook: its own source token (bound to `hr` here), or admin.
    Push,
}

const SCOPES: &[&str] = &["admin", "operator", "approver", "auditor", "source"];

fn allowed(scope: &str, need: Need) -> bool {
    match (scope, need) {
        ("admin", _) => true,
        ("source", Need::Push) => true,
        ("source", _) | (_, Need::Push) => false,
        (_, Need::Read) => true,
        ("operator", Need::Operate) | ("approver", Need::Approve) | ("auditor", Need::Audit) => true,
        _ => false,
    }
}

async fn server(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let init = std::process::Command::new(&bin).args(["init", "."]).current_dir(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = std::fs::read_to_string(dir.path().join("tenure.toml")).unwrap();
    let s = Server::start_with(&bin, dir.path(), &config, env).await.unwrap();
    (dir, s)
}

async fn call(s: &Server, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let url = s.url(&path.replace("{id}", "1"));
    let mut req = match method {
        "POST" => s.client.post(url).header("content-type", "application/json").body("{}"),
        _ => s.client.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_401_without_a_known_token_403_to_the_wrong_scope_and_serves_the_right_one() {
    let (_dir, s) = server(&[("TENURE_AUTH_FAILURES", "100000")]).await;
    let mut tokens = vec![("admin".to_string(), s.admin_token.clone())];
    for scope in SCOPES.iter().filter(|sc| **sc != "admin") {
        let source = (*scope == "source").then_some("hr");
        tokens.push((scope.to_string(), s.token(&format!("t-{scope}"), scope, source).unwrap()));
    }

    // The document lists exactly the API routes above.
    let (status, body) = call(&s, "GET", "/api/v1/openapi.json", Some(&s.admin_token)).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"), "OpenAPI 3.1");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected, "documented routes and the matrix differ");

    let mut answers = Vec::new();
    let unknown = "tnr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (method, path, need) in ROUTES.iter().chain(OTHER_ROUTES) {
        let (st, body) = call(&s, method, path, None).await;
        assert_eq!(st, 401, "{method} {path} without a token: {body}");
        let (st, body) = call(&s, method, path, Some(unknown)).await;
        assert_eq!(st, 401, "{method} {path} with an unknown token: {body}");
        let (st, body) = call(&s, method, path, Some("not-a-token")).await;
        assert_eq!(st, 401, "{method} {path} with a malformed token: {body}");
        for (scope, token) in &tokens {
            let (st, body) = call(&s, method, path, Some(token)).await;
            if allowed(scope, *need) {
                assert!(st != 401 && st != 403, "{method} {path} as {scope}: {st} {body}");
                assert!(!body.contains("no route for"), "{method} {path} is not routed: {body}");
                assert!(st < 500, "{method} {path} as {scope}: {st} {body}");
            } else {
                assert_eq!(st, 403, "{method} {path} as {scope}: {body}");
                let e: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(e["code"], "forbidden", "{body}");
            }
            answers.push(body);
        }
        // Another method on a routed path is refused, so no undocumented method hides there
        // (unless the matrix routes that method too).
        let other = if *method == "GET" { "POST" } else { "GET" };
        if !ROUTES.iter().chain(OTHER_ROUTES).any(|(m, p, _)| *m == other && p == path) {
            let (st, body) = call(&s, other, path, Some(&s.admin_token)).await;
            assert_eq!(st, 405, "{other} {path}: {body}");
        }
    }
    // The health probes are the only routes without a token, and say nothing else.
    for path in ["/healthz", "/readyz"] {
        let (st, body) = call(&s, "GET", path, None).await;
        assert_eq!((st, body.as_str()), (200, r#"{"status":"ok"}"#), "{path}");
    }
    // An unknown path is 401 without a token (it reveals nothing) and 404 with one.
    assert_eq!(call(&s, "GET", "/api/v1/nothing", None).await.0, 401);
    assert_eq!(call(&s, "GET", "/api/v1/nothing", Some(&s.admin_token)).await.0, 404);

    // No token text in any answer or in the logs; the revoked one stops working at once.
    let (code, _, err) = s.tenure(&["token", "revoke", "t-auditor"]).unwrap();
    assert_eq!(code, 0, "{err}");
    let auditor = &tokens.iter().find(|(sc, _)| sc == "auditor").unwrap().1;
    assert_eq!(call(&s, "GET", "/api/v1/cases", Some(auditor)).await.0, 401, "a revoked token");
    let (code, logs) = s.terminate().unwrap();
    assert_eq!(code, Some(0), "{}", logs.join("\n"));
    for (_, t) in &tokens {
        let secret = &t[4..];
        assert!(!logs.iter().any(|l| l.contains(secret)), "a token in the logs");
        assert!(!answers.iter().any(|a| a.contains(secret)), "a token in an answer");
    }
    assert!(logs.iter().any(|l| l.contains("/api/v1/identities/{id}")), "requests are logged by route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_throttled_and_sigterm_stops_the_server_cleanly() {
    let (_dir, s) = server(&[("TENURE_AUTH_FAILURES", "5")]).await;
    for i in 0..5 {
        assert_eq!(call(&s, "GET", "/api/v1/cases", Some("tnr_wrong")).await.0, 401, "attempt {i}");
    }
    let (st, body) = call(&s, "GET", "/api/v1/cases", Some("tnr_wrong")).await;
    assert_eq!(st, 429, "{body}");
    assert!(body.contains("\"code\":\"throttled\""), "{body}");
    // Only failing attempts are throttled: a good token from the same address is served.
    assert_eq!(call(&s, "GET", "/api/v1/cases", Some(&s.admin_token)).await.0, 200);
    // The probes are not throttled.
    assert_eq!(call(&s, "GET", "/readyz", None).await.0, 200);

    let (code, logs) = s.terminate().unwrap();
    assert_eq!(code, Some(0), "{}", logs.join("\n"));
    let text = logs.join("\n");
    assert!(text.contains("SIGTERM received") && text.contains("\"stopped\""), "{text}");
}

/// The SCIM endpoint's routes: only the token of the `kind = "scim"` source they belong to.
const SCIM_ROUTES: &[(&str, &str)] = &[
    ("GET", "/scim/v2/ServiceProviderConfig"),
    ("GET", "/scim/v2/ResourceTypes"),
    ("GET", "/scim/v2/Schemas"),
    ("GET", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users/.search"),
    ("GET", "/scim/v2/Users/{id}"),
    ("PUT", "/scim/v2/Users/{id}"),
    ("PATCH", "/scim/v2/Users/{id}"),
    ("DELETE", "/scim/v2/Users/{id}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scim_route_answers_401_without_a_known_token_and_403_to_any_token_but_its_sources() {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tenure"));
    let init = std::process::Command::new(&bin).args(["init", "."]).current_dir(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut config = std::fs::read_to_string(dir.path().join("tenure.toml")).unwrap();
    config.push_str("\n[[source]]\nname = \"idp\"\nkind = \"scim\"\n");
    let s = Server::start_with(&bin, dir.path(), &config, &[("TENURE_AUTH_FAILURES", "100000")]).await.unwrap();
    let own = s.token("idp-push", "source", Some("idp")).unwrap();
    let mut others = vec![("admin".to_string(), s.admin_token.clone())];
    for scope in ["operator", "approver", "auditor"] {
        others.push((scope.to_string(), s.token(&format!("t-{scope}"), scope, None).unwrap()));
    }
    others.push(("hr's source".to_string(), s.token("hr-push", "source", Some("hr")).unwrap()));
    let send = |method: &str, path: &str, token: Option<&str>| {
        let url = s.url(&path.replace("{id}", "0000"));
        let mut req = s.client.request(method.parse().unwrap(), url).header("content-type", "application/scim+json");
        if method != "GET" && method != "DELETE" {
            req = req.body(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "probe"}"#);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    for (method, path) in SCIM_ROUTES {
        for token in [None, Some("tnr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Some("not-a-token")] {
            let res = send(method, path, token).await.unwrap();
            assert_eq!(res.status().as_u16(), 401, "{method} {path} with {token:?}");
        }
        for (who, token) in &others {
            let res = send(method, path, Some(token)).await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            assert_eq!(status, 403, "{method} {path} as {who}: {body}");
            assert!(body.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "a SCIM error: {body}");
        }
        let res = send(method, path, Some(&own)).await.unwrap();
        let status = res.status().as_u16();
        assert!(status != 401 && status != 403 && status < 500, "{method} {path} as its source: {status}");
    }
}

async fn send(s: &Server, method: &str, path: &str, token: &str, body: Option<serde_json::Value>) -> (u16, String) {
    let url = s.url(path);
    let req = match method {
        "POST" => s.client.post(url).json(&body.unwrap_or_else(|| serde_json::json!({}))),
        _ => s.client.get(url),
    };
    let res = req.bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// Issue 10 through the API: an admin creates a campaign, a manager's approver token lists and
/// decides their own items (the token's name is the reviewer), another reviewer's token is
/// refused, a decided item and a closed campaign conflict, the export is the CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_campaigns_and_reviews_through_the_api_decide_as_the_tokens_principal() {
    let (_dir, s) = server(&[]).await;
    let (code, _, err) = s.tenure(&["import", "--source", "hr", "hr.csv"]).unwrap();
    assert_eq!(code, 0, "{err}");
    let admin = s.admin_token.clone();
    let create = serde_json::json!({
        "name": "staff review", "scope": "entitlement:directory:staff", "reviewer": "manager", "due": "2099-01-01",
    });
    let (st, body) = send(&s, "POST", "/api/v1/campaigns", &admin, Some(create.clone())).await;
    assert_eq!(st, 200, "{body}");
    let campaign: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = campaign["id"].as_i64().unwrap();
    assert!(campaign["items"].as_u64().unwrap() > 2, "{body}");
    let (st, body) = send(&s, "POST", "/api/v1/campaigns", &admin, Some(serde_json::json!({"name": "x"}))).await;
    assert_eq!(st, 400, "{body}");

    // E000002's manager is E000001 (`jsilva1` in the starter's HR file).
    let manager = s.token("jsilva1", "approver", None).unwrap();
    let other = s.token("lokafor0", "approver", None).unwrap();
    let (st, body) = send(&s, "GET", "/api/v1/reviews", &manager, None).await;
    assert_eq!(st, 200, "{body}");
    let mine: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = mine["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.iter().all(|i| i["reviewer"] == "E000001"), "{body}");
    let item = items.iter().find(|i| i["identity"] == "E000002").unwrap()["id"].as_i64().unwrap();
    let path = format!("/api/v1/reviews/{item}");
    let revoke = serde_json::json!({"decision": "revoke", "reason": "left the team"});
    let (st, body) = send(&s, "POST", &path, &other, Some(revoke.clone())).await;
    assert_eq!(st, 403, "another reviewer: {body}");
    let (st, body) = send(&s, "POST", &path, &manager, Some(serde_json::json!({"decision": "revoke"}))).await;
    assert_eq!(st, 400, "no reason: {body}");
    let (st, body) = send(&s, "POST", &path, &manager, Some(revoke.clone())).await;
    assert_eq!(st, 200, "{body}");
    let decided: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((decided["decision"].as_str(), decided["decided_by"].as_str()), (Some("revoke"), Some("E000001")));
    assert_eq!(decided["outcome"], "revoking", "planned: {body}");
    let (st, body) = send(&s, "POST", &path, &manager, Some(revoke.clone())).await;
    assert_eq!(st, 409, "decided already: {body}");

    let auditor = s.token("auditor", "auditor", None).unwrap();
    let (st, csv) = send(&s, "GET", &format!("/api/v1/campaigns/{id}/export"), &auditor, None).await;
    assert_eq!(st, 200, "{csv}");
    assert!(csv.starts_with("campaign,item,identity,entitlement,why,reviewer,decision,justification,decided_at,applied_by,applied_at,outcome\n"), "{csv}");
    assert_eq!(csv.lines().count() as u64, 1 + campaign["items"].as_u64().unwrap());
    assert!(csv.contains(",token:jsilva1,"), "applied by the token: {csv}");

    let close = format!("/api/v1/campaigns/{id}/close");
    let (st, body) = send(&s, "POST", &close, &admin, None).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"state\":\"closed\""), "{body}");
    let (st, body) = send(&s, "POST", &close, &admin, None).await;
    assert_eq!(st, 409, "{body}");
    let (code, audit, _) = s.tenure(&["audit", "export", "--format", "jsonl"]).unwrap();
    assert_eq!(code, 0);
    let decision = audit.lines().find(|l| l.contains("\"action\":\"review.revoke\"")).unwrap();
    assert!(
        decision.contains("\"actor\":\"token:jsilva1\"") && decision.contains("\"approver\":\"E000001\""),
        "{decision}"
    );
}

//! Signed webhooks and operator events in-process (`oneshot` on `tenure_server::app`), on an
//! in-memory store and a fake clock: every refusal the design names, with the journal and the
//! identities unchanged after each, a repeated delivery with no second effect, and ingest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::sync::Arc;
use tenure_core::Scope;
use tenure_core::clock::{Clock, FakeClock};
use tenure_engine::app::{App, Loaded};
use tenure_server::webhook::Secret;
use tenure_server::{ServerState, app};
use tenure_store::{Backend, SqliteStore};
use tower::ServiceExt;

mod api;
mod issue10_exceptions;
mod issue15_imports;

const NOW: &str = "2026-11-21T09:00:00Z";

struct World {
    state: ServerState,
    secret: Secret,
    /// A `source` token for `workday`, an operator token, and a source token for `hr`.
    push: String,
    operator: String,
    other_source: String,
    /// The store's and the engine's clock, for tests that let time pass.
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// A world whose config `edit` changes after it is read.
    fn with_config(edit: impl FnOnce(&mut tenure_core::config::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let whsec = Secret::generate();
        let secret_path = dir.path().join("workday.secret");
        // Two secrets, as during a rotation: the second is the one senders use.
        std::fs::write(&secret_path, format!("{}\n{whsec}\n", Secret::generate())).unwrap();
        let guard = tenure_sample::starter::Guard::STARTER;
        let mut text =
            tenure_sample::starter::config_with("# hooks tests", &guard, &tenure_sample::starter::targets(true));
        text.push('\n');
        text.push_str(&tenure_sample::company::webhook_source_toml("workday", &secret_path.display().to_string()));
        let mut config = tenure_core::config::parse("tenure.toml", &text).unwrap();
        edit(&mut config);
        let clock = Arc::new(FakeClock::at(tenure_core::clock::parse_stamp(NOW).unwrap()));
        let policy =
            tenure_policy::parse("policy.toml", tenure_sample::starter::POLICY, &config, clock.today()).unwrap();
        let store: Arc<dyn Backend> = Arc::new(SqliteStore::memory(clock.clone()).unwrap());
        let loaded = Loaded { config, config_path: PathBuf::from("tenure.toml"), config_dir: dir.path().to_path_buf() };
        let app_state = App::from_parts(loaded, policy, store, clock.clone());
        let token = |name: &str, scope: Scope, source: Option<&str>| {
            tenure_engine::tokens::create(app_state.config(), app_state.store().as_ref(), name, scope, source, "test")
                .unwrap()
                .secret
        };
        let push = token("workday-push", Scope::Source, Some("workday"));
        let operator = token("ops", Scope::Operator, None);
        let other_source = token("hr-push", Scope::Source, Some("hr"));
        Self {
            state: ServerState::new(app_state),
            secret: Secret::parse(&whsec).unwrap(),
            push,
            operator,
            other_source,
            clock,
            _dir: dir,
        }
    }

    fn now(&self) -> i64 {
        self.state.app.clock().now().timestamp()
    }

    /// A signed push of `body` with delivery id `id`.
    fn signed(&self, id: &str, body: &str) -> Request<Body> {
        let ts = self.now();
        Request::post("/hooks/workday")
            .header("authorization", format!("Bearer {}", self.push))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", format!("v1,bogus {}", self.secret.sign(id, ts, body.as_bytes())))
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// What a refusal must leave alone: the journal and every identity.
    fn state_now(&self) -> (usize, Vec<String>) {
        let store = self.state.app.store();
        let journal = store.journal_pending(10_000).unwrap().len();
        let schema = &self.state.app.config().schema;
        let ids = store.identities(schema, None).unwrap().iter().map(|i| format!("{} {}", i.id, i.status)).collect();
        (journal, ids)
    }
}

const ADA: &str = r#"{"employee_id": "E1", "login": "ada", "work_email": "ada@example.com", "dept": "Engineering", "employment_status": "active"}"#;

#[tokio::test]
async fn a_signed_push_is_journaled_then_ingested_and_a_repeat_has_no_second_effect() {
    let w = World::new();
    let (status, body) = w.send(w.signed("msg_1", ADA)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["events"][0]["key"], "E1");
    assert_eq!(w.state_now().0, 1, "journaled before the 202");
    // The same delivery again, even with another body: the first answer, nothing written.
    let (status, again) = w.send(w.signed("msg_1", r#"{"employee_id": "E2"}"#)).await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &body));
    assert_eq!(w.state_now().0, 1);
    let drained = tenure_engine::ingest::drain_journal(&w.state.app, 100).unwrap();
    assert_eq!(drained.entries, 1);
    assert_eq!(w.state_now(), (0, vec!["E1 active".to_string()]));
    assert!(drained.reports[0].counts.operations > 0, "ada's birthright access is planned");
    let mut actors = Vec::new();
    w.state
        .app
        .store()
        .scan_audit(&tenure_store::AuditFilter::default(), &mut |r| {
            actors.push(r.entry.actor);
            true
        })
        .unwrap();
    assert!(actors.iter().any(|a| a == "source:workday"), "{actors:?}");
}

#[tokio::test]
async fn every_refusal_has_its_status_and_changes_nothing() {
    let w = World::new();
    let before = w.state_now();
    let ts = w.now();
    let sign = |id: &str, at: i64, body: &str| w.secret.sign(id, at, body.as_bytes());
    let post = |token: &str, headers: &[(&str, String)], body: String| {
        let mut r = Request::post("/hooks/workday").header("authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        r.body(Body::from(body)).unwrap()
    };
    let hdrs = |id: &str, at: i64, sig: String| {
        vec![("webhook-id", id.to_string()), ("webhook-timestamp", at.to_string()), ("webhook-signature", sig)]
    };
    let big = format!(r#"{{"employee_id": "E1", "title": "{}"}}"#, "x".repeat(tenure_server::hooks::MAX_BODY));
    let many = format!(r#"{{"records": [{}]}}"#, vec![r#"{"employee_id": "E1"}"#; 1001].join(","));
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "no token",
            Request::post("/hooks/workday").body(Body::from(ADA)).unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "another source's token",
            post(&w.other_source, &hdrs("m", ts, sign("m", ts, ADA)), ADA.into()),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "bad signature",
            post(&w.push, &hdrs("m", ts, sign("m", ts, "{}")), ADA.into()),
            StatusCode::UNAUTHORIZED,
            "no valid `v1` signature",
        ),
        (
            "no signature",
            post(&w.push, &hdrs("m", ts, String::new())[..2], ADA.into()),
            StatusCode::UNAUTHORIZED,
            "`webhook-signature` header is missing",
        ),
        (
            "stale timestamp",
            post(&w.push, &hdrs("m", ts - 301, sign("m", ts - 301, ADA)), ADA.into()),
            StatusCode::UNAUTHORIZED,
            "seconds away from now",
        ),
        (
            "future timestamp",
            post(&w.push, &hdrs("m", ts + 400, sign("m", ts + 400, ADA)), ADA.into()),
            StatusCode::UNAUTHORIZED,
            "seconds away from now",
        ),
        (
            "oversize",
            post(&w.push, &hdrs("m", ts, sign("m", ts, &big)), big.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "over 1048576 bytes",
        ),
        (
            "malformed JSON",
            post(&w.push, &hdrs("m", ts, sign("m", ts, "{\"employee_id\": ")), "{\"employee_id\": ".into()),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            "over 1,000 records",
            post(&w.push, &hdrs("m", ts, sign("m", ts, &many)), many.clone()),
            StatusCode::BAD_REQUEST,
            "1001 records; at most 1000",
        ),
    ];
    for (what, req, want, says) in cases {
        let (status, body) = w.send(req).await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(says) || body["code"] == says, "{what}: {body}");
        assert!(!body.to_string().contains(&w.push), "{what}: the token is never echoed");
        assert_eq!(w.state_now(), before, "{what}: nothing changed");
    }
    // A bad record inside a batch: its index, field and reason, and none of the batch applied.
    let batch = r#"{"records": [{"employee_id": "E1", "login": "ada"}, {"employee_id": "E2", "start": "2026-13-01"}]}"#;
    let (status, body) = w.send(w.signed("msg_9", batch)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (body["code"].as_str(), body["index"].as_u64(), body["field"].as_str()),
        (Some("invalid_input"), Some(1), Some("start"))
    );
    assert!(body["reason"].as_str().unwrap().starts_with("bad date `2026-13-01`"), "{body}");
    assert_eq!(w.state_now(), before, "nothing of the refused batch is journaled");
    // Refused deliveries never burn their id: the same id, now valid, is accepted.
    let (status, _) = w.send(w.signed("msg_9", ADA)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_operator_pushes_events_for_any_source_with_an_idempotency_key() {
    let w = World::new();
    let req = |token: &str, key: &str| {
        Request::post("/api/v1/events?source=workday")
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", key)
            .body(Body::from(ADA))
            .unwrap()
    };
    let (status, _) = w.send(req(&w.push, "k1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a source token cannot push as an operator");
    let (status, first) = w.send(req(&w.operator, "k1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (_, again) = w.send(req(&w.operator, "k1")).await;
    assert_eq!(again, first);
    let pending = w.state.app.store().journal_pending(10).unwrap();
    assert_eq!((pending.len(), pending[0].actor.as_str()), (1, "token:ops"));
    let unknown = Request::post("/api/v1/events?source=nope")
        .header("authorization", format!("Bearer {}", w.operator))
        .body(Body::from(ADA))
        .unwrap();
    let (status, body) = w.send(unknown).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_source")));
}

#[tokio::test]
async fn events_authorize_before_reading_the_request() {
    let w = World::new();
    let no_source = |token: &str| {
        Request::post("/api/v1/events")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(ADA))
            .unwrap()
    };
    let (status, body) = w.send(no_source(&w.push)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let (status, body) = w.send(no_source(&w.operator)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("?source=NAME"), "{body}");
}

//! Signed HR webhooks (`POST /hooks/{source}`, the design's section 11) and operator events
//! (`POST /api/v1/events`): pushed records, journaled durably before they are acknowledged and
//! ingested by a worker right after.
//!
//! **A request** is checked in full before anything is written: the token may push for the
//! source, the body is at most 1 MiB (413), the Standard Webhooks signature is valid for one of
//! the source's secrets and the timestamp within five minutes (401), the JSON is one record or
//! `{"records": [...]}` and every record passes the checks a CSV row passes (400 with the
//! record's index, field and reason). Any refusal changes nothing. An accepted request is
//! appended to the push journal and answered 202 once that transaction has committed; a
//! repeated `webhook-id` is answered with the first 202 and writes nothing.
//!
//! **Group commit.** Journal appends from concurrent requests go to one writer thread that
//! commits whatever is waiting in one transaction, so a burst costs one commit per group, not
//! one per request, and a request's 202 still waits for its own commit.
//!
//! **Ingest.** [`spawn_ingest`] wakes on every append (and once a second, and at start, which
//! recovers what a killed process journaled but never ingested) and runs
//! `tenure_engine::ingest::drain_journal`: each source's pending entries become one push, guarded
//! over the source's window, and are marked ingested in that batch's transaction, so every
//! journaled delivery is applied exactly once.
//!
//! **Durability.** SQLite in WAL mode with `synchronous = NORMAL` (the store's setting): a
//! committed append survives the process being killed (`kill -9`); surviving power loss as well
//! would need `synchronous = FULL`.

use crate::access::Principal;
use crate::error::ApiError;
use crate::webhook::{self, Secret};
use crate::{ServerState, auth::Action};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tenure_core::config::{SecretRef, SourceKind};
use tenure_core::error::Code;
use tenure_core::record::{BadRecord, Record};
use tenure_engine::ingest;
use tenure_store::{Backend, JournalIn, Journaled};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

/// The largest body a push may have.
pub const MAX_BODY: usize = 1 << 20;

/// How many appends one journal transaction takes at most.
const GROUP: usize = 512;

/// A journaled delivery, or why the append failed (its code and the store's message).
type Reply = oneshot::Sender<Result<Journaled, (Code, String)>>;

/// The push side of the server's state: the journal writer and the ingest worker's wake-up.
#[derive(Clone)]
pub struct Hooks {
    writer: mpsc::Sender<(JournalIn, Reply)>,
    /// Rung after every append; the ingest worker waits on it.
    pub ingest: Arc<Notify>,
    /// Rung after every ingest that planned operations; the executor worker may wait on it.
    pub work: Arc<Notify>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl Hooks {
    /// Starts the journal writer thread on `store`; it ends when the last `Hooks` is dropped.
    pub fn new(store: Arc<dyn Backend>) -> Self {
        let (writer, rx) = mpsc::channel::<(JournalIn, Reply)>();
        let spawned = std::thread::Builder::new().name("tenure-journal".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (entries, replies): (Vec<JournalIn>, Vec<Reply>) = group.into_iter().unzip();
                match store.journal_append(&entries) {
                    Ok(done) => {
                        for (reply, j) in replies.into_iter().zip(done) {
                            let _ = reply.send(Ok(j));
                        }
                    }
                    Err(e) => {
                        use tenure_core::error::HasCode;
                        let (code, why) = (e.code(), e.to_string());
                        for reply in replies {
                            let _ = reply.send(Err((code, why.clone())));
                        }
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the journal writer; pushes will be answered 503");
        }
        Self { writer, ingest: Arc::new(Notify::new()), work: Arc::new(Notify::new()) }
    }

    /// Appends one delivery and waits for its transaction to commit.
    async fn append(&self, entry: JournalIn) -> Result<Journaled, ApiError> {
        let (tx, rx) = oneshot::channel();
        let unavailable = || ApiError::internal(Code::StoreUnavailable, &"the journal writer is not running");
        self.writer.send((entry, tx)).map_err(|_| unavailable())?;
        let journaled = rx.await.map_err(|_| unavailable())?.map_err(|(code, why)| ApiError::internal(code, &why))?;
        self.ingest.notify_one();
        Ok(journaled)
    }
}

pub fn router() -> Router<ServerState> {
    Router::new().route("/hooks/{source}", post(webhook)).route("/api/v1/events", post(events))
}

/// A refused record: `{code, message, index, field, reason}`.
fn bad_record(e: &BadRecord) -> Response {
    let body = serde_json::json!({
        "code": Code::InvalidInput.as_str(),
        "message": e.to_string(),
        "index": e.index,
        "field": e.field,
        "reason": e.reason,
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Reads the body up to [`MAX_BODY`]; a longer one is 413 (the declared length is checked
/// first, so an oversized upload is refused before it is read).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(Code::PayloadTooLarge, format!("the body is over {MAX_BODY} bytes"));
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| too_large())
}

fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(format!("the body is not JSON: line {} column {}: {}", e.line(), e.column(), kind(&e)))
    })
}

/// serde_json's category, without echoing any of the body back.
fn kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// The source's signing secrets: `whsec_...` values separated by whitespace (two during a
/// rotation), each at least 24 random key bytes. Read on every request, so a rotated secret file
/// takes effect without a restart. A secret that is missing or too weak refuses every push:
/// the operator's mistake, logged with the reason and answered as the server's.
fn secrets(r: &SecretRef) -> Result<Vec<Secret>, ApiError> {
    let text = match r {
        SecretRef::Env(var) => std::env::var(var).ok(),
        SecretRef::File(path) => std::fs::read_to_string(path).ok(),
        SecretRef::None => None,
    };
    let Some(text) = text else {
        return Err(ApiError::internal(Code::ConfigInvalid, &"the webhook source has no readable `whsec_` secret"));
    };
    let keys = tenure_core::config::webhook_secret_keys(&text)
        .map_err(|why| ApiError::internal(Code::ConfigInvalid, &format!("the webhook source's secret: {why}")))?;
    keys.iter()
        .map(|k| Secret::from_key(k))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal(Code::ConfigInvalid, &"the webhook source's secret cannot be used"))
}

/// The webhook sources of `config` whose secret can be read but cannot sign pushes (too short,
/// not random, not `whsec_`), each with why: `tenure serve` refuses to start with one. A secret
/// that cannot be read yet is not one of them (pushes are refused until it can be).
pub fn weak_secrets(config: &tenure_core::config::Config) -> Vec<String> {
    config
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::Webhook)
        .filter_map(|s| {
            let text = match &s.secret {
                SecretRef::Env(var) => std::env::var(var).ok(),
                SecretRef::File(path) => std::fs::read_to_string(path).ok(),
                SecretRef::None => None,
            }?;
            let why = tenure_core::config::webhook_secret_keys(&text).err()?;
            Some(format!("source `{}`: {why}", tenure_core::text::escape(&s.name)))
        })
        .collect()
}

/// The 202's body: what was accepted. Stored with the delivery, so a repeat of the delivery
/// id is answered exactly as the first was.
fn accepted(delivery: &str, records: &[Record]) -> serde_json::Value {
    let events: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::json!({ "index": r.index, "key": r.key, "deleted": r.deleted })).collect();
    serde_json::json!({ "accepted": records.len(), "delivery": delivery, "events": events })
}

/// Journals `entry` (its response built from `records`) and answers 202.
async fn journal(state: &ServerState, mut entry: JournalIn, records: &[Record]) -> Result<Response, ApiError> {
    entry.response = accepted(&entry.delivery, records);
    let first = entry.response.clone();
    let body = match state.hooks.append(entry).await? {
        Journaled::New(_) => first,
        Journaled::Repeat { response, .. } => response,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn webhook(
    State(state): State<ServerState>,
    principal: Principal,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Action::Push { source: &source })?;
    let outcome = |o: &str| state.metrics.webhook_event(&source, o);
    let cfg = state.app.config();
    let Some(src) = cfg.source(&source).filter(|s| s.kind == SourceKind::Webhook) else {
        outcome("unknown_source");
        return Err(ApiError::new(
            Code::UnknownSource,
            format!("no webhook source `{}` in the config", tenure_core::text::quote(&source)),
        ));
    };
    let bytes = read_body(&headers, body).await.inspect_err(|_| outcome("too_large"))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let h = webhook::Headers {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    let now = state.app.clock().now().timestamp();
    let delivery = webhook::verify(&secrets(&src.secret)?, h, &bytes, now)
        .map_err(|e| match e {
            webhook::Refused::LongId(_) => {
                outcome("invalid");
                ApiError::invalid(e.to_string())
            }
            _ => {
                outcome("unauthorized");
                ApiError::new(Code::Unauthorized, e.to_string())
            }
        })?
        .to_string();
    let json = parse_json(&bytes).inspect_err(|_| outcome("invalid"))?;
    let records = match ingest::records_from_json(src, &cfg.schema, &json) {
        Ok(r) => r,
        Err(e) => {
            outcome("invalid");
            return Ok(bad_record(&e));
        }
    };
    let entry = JournalIn {
        source: source.clone(),
        delivery,
        // Audited as the source; the token that pushed is a submitter too (see `ingest`).
        actor: format!("source:{source} {}", principal.actor()),
        records: json,
        response: serde_json::Value::Null,
    };
    let answer = journal(&state, entry, &records).await?;
    outcome("accepted");
    Ok(answer)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    source: String,
}

/// `POST /api/v1/events?source=NAME`: an operator pushes records for any source (a correction
/// HR has not made yet, a termination reported by phone), through the same journal, checks and
/// guard as a webhook, audited as the token's principal. An `Idempotency-Key` header makes a
/// retry safe, as `webhook-id` does.
async fn events(
    State(state): State<ServerState>,
    principal: Principal,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Who may call comes first: a wrong-scope caller learns nothing about the request's shape.
    principal.require(Action::Operate)?;
    let Query(q) = query.map_err(|_| ApiError::invalid("`source` query parameter is required: ?source=NAME"))?;
    let cfg = state.app.config();
    let Some(src) = cfg.source(&q.source) else {
        return Err(ApiError::new(
            Code::UnknownSource,
            format!("no source `{}` in the config", tenure_core::text::quote(&q.source)),
        ));
    };
    let bytes = read_body(&headers, body).await?;
    let json = parse_json(&bytes)?;
    let records = match ingest::records_from_json(src, &cfg.schema, &json) {
        Ok(r) => r,
        Err(e) => return Ok(bad_record(&e)),
    };
    let delivery = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(k) if !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()) => format!("key:{k}"),
        Some(_) => return Err(ApiError::invalid("`Idempotency-Key` must be 1 to 200 printable ASCII characters")),
        None => format!("api:{}", crate::auth::generate_token()),
    };
    let entry = JournalIn {
        source: q.source.clone(),
        delivery,
        actor: principal.actor(),
        records: json,
        response: serde_json::Value::Null,
    };
    journal(&state, entry, &records).await
}

/// The ingest worker: drains the push journal whenever an append rings, once a second, and at
/// start. Stops when `stop` is cancelled, after the drain under way commits.
/// The accounts of the targets not correlated yet, read only when pushes wait in the journal
/// (nothing is read otherwise, and nothing once every target is correlated).
async fn correlation_inventory(state: &ServerState) -> Option<tenure_engine::import::Correlate> {
    let app = state.app.clone();
    let pending = tokio::task::spawn_blocking(move || -> tenure_engine::Result<Vec<String>> {
        if !ingest::journal_waiting(&app)? {
            return Ok(Vec::new());
        }
        tenure_engine::correlation::pending_targets(app.config(), app.store().as_ref())
    })
    .await
    .ok()?
    .ok()?;
    if pending.is_empty() {
        return None;
    }
    let conns = tenure_engine::executor::connectors(state.app.config()).await;
    let (inventory, unread) = tenure_engine::correlation::read_inventory(&conns, &pending).await;
    for u in &unread {
        tracing::warn!(target = %u.target, reason = %u.reason, "existing accounts not correlated yet");
    }
    Some(tenure_engine::import::Correlate { inventory, unread })
}

pub fn spawn_ingest(state: ServerState, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            loop {
                // The first push against a target with accounts correlates them, as the first
                // import does: the targets not correlated yet are read while pushes wait.
                let correlation = correlation_inventory(&state).await;
                let app = state.app.clone();
                let drained =
                    tokio::task::spawn_blocking(move || ingest::drain_journal_with(&app, 1_000, correlation.as_ref()))
                        .await;
                match drained {
                    Ok(Ok(d)) if d.entries == 0 => break,
                    Ok(Ok(d)) => {
                        let planned: usize = d.reports.iter().map(|r| r.counts.operations).sum();
                        tracing::info!(
                            entries = d.entries,
                            records = d.records,
                            operations = planned,
                            "pushes ingested"
                        );
                        if planned > 0 {
                            state.hooks.work.notify_waiters();
                            state.hooks.work.notify_one();
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "ingesting pushes failed; retrying shortly");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the ingest task panicked; retrying shortly");
                        break;
                    }
                }
                if stop.is_cancelled() {
                    return;
                }
            }
            tokio::select! {
                () = state.hooks.ingest.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

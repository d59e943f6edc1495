//! Structured logs and the per-request record: [`init`] installs the `tracing` subscriber (JSON
//! lines when stdout is not a terminal, for a log collector; readable text on a terminal), and
//! [`observe`] logs every request once and feeds the request-duration histogram.
//!
//! A request is logged by its method, its matched route template (`/api/v1/identities/{id}`),
//! status and duration: never its headers (where the token is), its query or its body. The
//! level comes from `RUST_LOG` (default `info`).

use crate::ServerState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::io::IsTerminal as _;
use std::time::Instant;

/// Installs the global subscriber; a second call (tests) changes nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    };
}

/// The request layer: one log line and one histogram sample per request.
pub async fn observe(State(state): State<ServerState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    state.metrics.http_request(&method, &route, status, elapsed.as_secs_f64());
    tracing::info!(method, route, status, millis = elapsed.as_secs_f64() * 1000.0, "request");
    res
}

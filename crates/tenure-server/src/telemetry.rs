//! Structured logs and the per-request record: [`init`] installs the `tracing` subscriber (JSON
//! lines when stdout is not a terminal, for a log collector; readable text on a terminal), and
//! [`observe`] logs every request once and feeds the request-duration histogram.
//!
//! A request is logged by its method, its matched route template (`/api/v1/identities/{id}`),
//! status and duration: never its headers (where the token is), its query or its body. The
//! level comes from `RUST_LOG` (default `info`), except for libraries that log the statements
//! they send ([`carries_statements`]): those stay at info and above, whatever `RUST_LOG` says.

use crate::ServerState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::io::IsTerminal as _;
use std::time::Instant;

/// Installs the global subscriber; a second call (tests) changes nothing.
///
/// Whatever `RUST_LOG` asks for, the events [`carries_statements`] names are never written: a
/// library that logs the statements it sends would log a rotated password's SCRAM verifier.
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _, filter::filter_fn, fmt};
    let env = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let quiet = || filter_fn(|meta| !carries_statements(meta));
    let registry = tracing_subscriber::registry();
    let _ = if std::io::stdout().is_terminal() {
        registry.with(fmt::layer().with_target(false).with_filter(env()).with_filter(quiet())).try_init()
    } else {
        let json = fmt::layer().with_target(false).json().flatten_event(true).with_current_span(false);
        registry.with(json.with_filter(env()).with_filter(quiet())).try_init()
    };
}

/// Whether an event may hold the text of a database statement: `tokio_postgres` logs every
/// statement and batch it sends at debug (and its parameters), and a password rotation sends
/// `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`, the verifier an attacker can brute-force
/// offline. Its events below info never reach a log, at any `RUST_LOG`.
pub fn carries_statements(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    let postgres = ["tokio_postgres", "postgres"]
        .iter()
        .any(|t| target == *t || target.strip_prefix(t).is_some_and(|rest| rest.starts_with("::")));
    postgres && *meta.level() > tracing::Level::INFO
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

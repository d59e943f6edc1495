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
    use tracing_subscriber::{EnvFilter, Layer as _, fmt};
    let env = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry();
    let _ = if std::io::stdout().is_terminal() {
        registry.with(fmt::layer().with_target(false).with_filter(env()).with_filter(quiet())).try_init()
    } else {
        let json = fmt::layer().with_target(false).json().flatten_event(true).with_current_span(false);
        registry.with(json.with_filter(env()).with_filter(quiet())).try_init()
    };
}

/// The filter every log layer carries: it drops what [`carries_statements`] names.
pub fn quiet() -> tracing_subscriber::filter::FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
    fn keep(meta: &tracing::Metadata<'_>) -> bool {
        !carries_statements(meta)
    }
    tracing_subscriber::filter::filter_fn(keep as fn(&tracing::Metadata<'_>) -> bool)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _, fmt};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn issue15_statements_postgres_logs_below_info_never_reach_a_log_at_trace() {
        let buf = Buf::default();
        let out = buf.clone();
        // `RUST_LOG=trace`: everything is asked for.
        let layer =
            fmt::layer().with_writer(move || out.clone()).with_filter(EnvFilter::new("trace")).with_filter(quiet());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::debug!(target: "tokio_postgres::query", "executing statement ALTER ROLE x PASSWORD 'SCRAM-SHA-256$4096:secret'");
            tracing::trace!(target: "tokio_postgres", "batch SCRAM-SHA-256$trace");
            tracing::debug!(target: "postgres", "SCRAM-SHA-256$sync");
            tracing::warn!(target: "tokio_postgres::connection", "connection reset");
            tracing::debug!(target: "tenure_connect::postgres", "rotating a password");
            tracing::debug!(target: "tokio_postgresql", "a different library");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("SCRAM-SHA-256$"), "{text}");
        assert!(text.contains("connection reset"), "warnings and above still show: {text}");
        assert!(text.contains("rotating a password"), "other targets keep their level: {text}");
        assert!(text.contains("a different library"), "only the postgres libraries are quieted: {text}");
    }
}

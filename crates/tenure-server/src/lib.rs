//! `tenure serve`: the always-on control plane.
//!
//! One process serves the REST API, the signed HR webhooks, the SCIM endpoint and the metrics,
//! and runs the workers and schedules (the design's sections 10–12). This crate owns the HTTP
//! edge: it turns requests into calls on the engine's application state and engine results into
//! JSON, and [`error`] is the one place that maps error codes to HTTP statuses.
//!
//! The shape: [`ServerState`] (cloneable, `Arc` inside) holds the engine's [`App`] and what the
//! server itself keeps (the failed-attempt throttle, the metrics); [`app`] merges every
//! resource's `router()` behind the authentication layer ([`access`]) into one `Router`, which
//! tests drive in-process with `oneshot`; [`serve`] runs it on a listener with the workers until
//! a shutdown signal, then lets in-flight requests and operations finish. [`conn`] is the accept
//! loop under it: hyper's HTTP/1.1 with the `[server]` header-read and idle timeouts and the
//! connection cap.
//!
//! The pure parts come first: [`auth`] (tokens, scopes, the throttle) and [`webhook`] (Standard
//! Webhooks signatures).

pub mod access;
pub mod api;
pub mod auth;
pub mod conn;
pub mod error;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod scim_source;
pub mod telemetry;
pub mod webhook;
pub mod workers;

use axum::Router;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenure_engine::app::App;
use tokio_util::sync::CancellationToken;

pub use access::Principal;
pub use metrics::Metrics;

/// How the server behaves, apart from the config file's `[server] listen` (which the binary
/// reads to bind the listener).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Failed authentication attempts from one address before it is answered 429.
    pub throttle_limit: u32,
    /// How long an address's failures count.
    pub throttle_window: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { throttle_limit: 10, throttle_window: Duration::from_secs(60) }
    }
}

/// Everything a request handler or a worker needs. Clone it freely: it is one `Arc` and the
/// engine's `App` (itself one `Arc`).
#[derive(Clone)]
pub struct ServerState {
    /// The engine's application state: config, policy, store, clock.
    pub app: App,
    /// The counters the server and its workers increment (`/metrics`).
    pub metrics: Metrics,
    /// The push journal's writer and the ingest and executor wake-ups.
    pub hooks: hooks::Hooks,
    inner: Arc<Inner>,
}

struct Inner {
    options: ServerOptions,
    throttle: Mutex<auth::Throttle>,
    /// When each token's `last_used_at` was last written, so a busy client costs one write a
    /// minute rather than one per request.
    touched: Mutex<std::collections::HashMap<i64, std::time::Instant>>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").field("app", &self.app).finish_non_exhaustive()
    }
}

impl ServerState {
    pub fn new(app: App) -> Self {
        Self::with_options(app, ServerOptions::default())
    }

    pub fn with_options(app: App, options: ServerOptions) -> Self {
        let throttle = auth::Throttle::new(options.throttle_limit, options.throttle_window);
        let inner =
            Inner { options, throttle: Mutex::new(throttle), touched: Mutex::new(std::collections::HashMap::new()) };
        let hooks = hooks::Hooks::new(app.store().clone());
        Self { app, metrics: Metrics::default(), hooks, inner: Arc::new(inner) }
    }

    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// The failed-attempt throttle. A poisoned lock only means a thread panicked while holding
    /// it; the table is still a table.
    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, auth::Throttle> {
        self.inner.throttle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether token `id`'s last use should be written now (at most once a minute per token).
    pub(crate) fn should_touch(&self, id: i64, now: std::time::Instant) -> bool {
        let mut touched = self.inner.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match touched.get(&id) {
            Some(at) if now.duration_since(*at) < Duration::from_secs(60) => false,
            _ => {
                touched.insert(id, now);
                true
            }
        }
    }
}

/// The whole HTTP surface: every resource's router behind authentication, and the public
/// health probes.
pub fn app(state: ServerState) -> Router {
    let authenticated = Router::new()
        .merge(api::router())
        .merge(metrics::router())
        .merge(hooks::router())
        .nest("/scim/v2", scim_source::router(&state))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authenticate))
        .layer(axum::middleware::from_fn(scim_source::scim_errors));
    Router::new()
        .merge(authenticated)
        .merge(health::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), telemetry::observe))
        .with_state(state)
}

/// Serves [`app`] on `listener` with the workers ([`workers::spawn`]) until `shutdown`
/// completes, under the connection limits of the config's `[server]` ([`conn`]); then stops
/// accepting connections, closes idle ones, lets in-flight requests finish, tells the workers
/// to stop and waits for them (an operation being applied is finished and recorded).
pub async fn serve(
    state: ServerState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let mut workers = workers::spawn(state.clone(), stop.clone());
    workers.push(hooks::spawn_ingest(state.clone(), stop.clone()));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.cancelled() => {}
            }
            tracing::info!("shutting down: no new connections; finishing in-flight requests and operations");
            stop.cancel();
        });
    }
    let limits = conn::Limits::from_config(&state.app.config().server).within(conn::open_file_limit());
    conn::serve(listener, app(state), limits, stop.clone()).await;
    stop.cancel();
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!(error = %e, "a worker ended abnormally");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM: what `tenure serve` passes to [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

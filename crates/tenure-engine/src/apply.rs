//! `tenure apply`: queue failed work again if asked, run the executor over everything pending,
//! and say what is left (the report the CLI prints and the server returns).

use crate::app::App;
use crate::blocking;
use crate::executor::{self, Connectors, ExecOptions, Progress};
use std::sync::Arc;
use tenure_core::OpState;
use tenure_proto::ApplyReport;

/// How one `apply` runs.
#[derive(Default)]
pub struct ApplyOptions {
    /// Return only when nothing is pending or in flight (retries included).
    pub wait: bool,
    /// First queue every failed operation again with a fresh retry budget, audited with this
    /// name.
    pub retry_failed_by: Option<String>,
    /// Told how many operations are pending when the run starts (`done` 0), then how many
    /// attempts are done.
    pub progress: Option<Arc<dyn Fn(ApplyProgress) + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyProgress {
    pub pending: i64,
    pub done: usize,
}

/// Runs `apply` with the given connectors (the caller builds them, and reports the targets that
/// cannot be used as it sees fit).
pub async fn apply(app: &App, conns: Arc<Connectors>, opts: ApplyOptions) -> crate::Result<ApplyReport> {
    let store = app.store();
    // Time-bound grants whose expiry has come are revoked first, as the `grant_expiry` job
    // would, so a deployment without the server needs nobody but `tenure apply`.
    let expired_requests = expire_requests(app, &crate::schedule::Job::GrantExpiry.actor()).await?;
    let retried = match opts.retry_failed_by {
        Some(by) => blocking::store(store, move |s| s.retry_failed(&by)).await?,
        None => 0,
    };
    let pending = blocking::store(store, |s| s.queue_counts()).await?.get(&OpState::Pending).copied().unwrap_or(0);
    let progress = opts.progress.map(|report| -> Arc<dyn Fn(Progress) + Send + Sync> {
        report(ApplyProgress { pending, done: 0 });
        Arc::new(move |p: Progress| report(ApplyProgress { pending, done: p.done }))
    });
    let exec = ExecOptions { wait: opts.wait, progress, ..ExecOptions::default() };
    let report = executor::run(app.config_arc(), store.clone(), conns, exec).await?;
    let open_tickets = blocking::store(store, |s| s.tickets(true)).await?.len();
    Ok(ApplyReport { expired_requests, open_tickets, report, retried })
}

/// Ends the access requests whose expiry has come and plans their revocation, as `actor`
/// (`tenure apply` and the `grant_expiry` job). The policy is read only when one has expired.
pub async fn expire_requests(app: &App, actor: &str) -> crate::Result<usize> {
    let (app, actor) = (app.clone(), actor.to_string());
    let ended = tokio::task::spawn_blocking(move || {
        if crate::requests::due(app.store().as_ref())?.is_empty() {
            return Ok(0);
        }
        let engine = app.engine().map_err(|e| crate::EngineError::App(Box::new(e)))?;
        Ok::<_, crate::EngineError>(crate::requests::expire_due(&engine, &actor)?.len())
    })
    .await
    .map_err(|e| crate::EngineError::Invalid(format!("the expiry check stopped: {e}")))??;
    Ok(ended)
}

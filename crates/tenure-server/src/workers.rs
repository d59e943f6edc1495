//! The workers and schedules `serve` runs beside the HTTP server (the design's section 10): the
//! executor, and the scheduler with its jobs (prehire activation, `end_date` leavers, grant
//! expiry, the post-offboarding re-check, overdue tickets, retention, reconciliation, signed
//! checkpoints). Both live in `tenure_engine::schedule`, where `tenure schedule run-once` runs
//! the same jobs; this module only starts them on the server's state and stops them.
//!
//! `serve` calls [`spawn`] once at start, cancels `shutdown` when asked to stop, and awaits
//! every handle: the executor claims nothing more and returns once the operations in flight are
//! recorded, the scheduler finishes the pass under way and gives up its lease.

use crate::ServerState;
use std::sync::Arc;
use tenure_engine::{executor, schedule};
use tokio_util::sync::CancellationToken;

/// Starts the executor and the scheduler on `state`'s application state; both stop when
/// `shutdown` is cancelled.
pub fn spawn(state: ServerState, shutdown: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let app = state.app;
    vec![tokio::spawn(async move {
        let conns = executor::connectors(app.config()).await;
        for (target, why) in conns.unusable() {
            tracing::warn!(target = target, "target cannot be used, its operations fail until this is fixed: {why}");
        }
        let conns = Arc::new(conns);
        let cfg = app.config().schedule;
        tracing::info!(
            tick_secs = cfg.tick_secs,
            reconcile_secs = cfg.reconcile_secs,
            checkpoint_secs = cfg.checkpoint_secs,
            recheck_after_days = cfg.recheck_after_days,
            "workers started: executor and scheduler"
        );
        let (stop_exec, stop_sched) = (shutdown.clone(), shutdown.clone());
        tokio::join!(
            schedule::run_executor(app.clone(), conns.clone(), async move { stop_exec.cancelled().await }),
            schedule::run_scheduler(app.clone(), conns.clone(), async move { stop_sched.cancelled().await }),
        );
        tracing::info!("workers stopped");
    })]
}

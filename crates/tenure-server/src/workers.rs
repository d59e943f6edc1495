//! The workers and schedules `serve` runs beside the HTTP server (the design's section 10): the
//! executor, prehire activation, `end_date` leavers, grant expiry, reconciliation, retention,
//! overdue tickets, the post-offboarding re-check.
//!
//! Owner: the schedule helper (issue 8). This file holds only the signature; its owner fills it
//! in. `serve` calls [`spawn`] once at start, cancels `shutdown` when asked to stop, and awaits
//! every handle, so an operation being applied is finished and recorded before the process ends.

use crate::ServerState;
use tokio_util::sync::CancellationToken;

pub fn spawn(_state: ServerState, _shutdown: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    Vec::new()
}

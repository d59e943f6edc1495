//! Signed HR webhooks (`POST /hooks/{source}`, the design's section 11) and operator events
//! (`POST /api/v1/events`).
//!
//! Owner: the LEAD (issue 8). This file holds only the signature `app()` merges; the lead fills
//! it in. Handlers authorize pushes themselves with `Principal::require(Action::Push { source })`,
//! since the source comes from the path.

use crate::ServerState;

pub fn router() -> axum::Router<ServerState> {
    axum::Router::new()
}

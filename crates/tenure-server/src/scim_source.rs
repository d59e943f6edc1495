//! The SCIM 2.0 service provider for `kind = "scim"` sources, nested by `app()` at `/scim/v2`
//! (the design's section 12).
//!
//! Owner: the SCIM helper (issue 8). This file holds only the signature; its owner fills it in
//! (the protocol is `tenure-scim`'s router over a `ScimBackend` on Tenure's store).

use crate::ServerState;

pub fn router(_state: &ServerState) -> axum::Router<ServerState> {
    axum::Router::new()
}

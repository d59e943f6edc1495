//! The health probes: `/healthz` (the process answers) and `/readyz` (the store answers and its
//! schema is the one this build expects). They are the only routes without authentication, so
//! an orchestrator's probe needs no credential; they say nothing but `ok` or why not ready.

use crate::ServerState;
use crate::error::ApiError;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tenure_core::error::Code;

pub fn router() -> Router<ServerState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

#[derive(Debug, serde::Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn readyz(State(state): State<ServerState>) -> Result<Json<Health>, ApiError> {
    let applied = tenure_engine::blocking::store(state.app.store(), |s| s.applied_schema_version()).await?;
    let expected = tenure_store::schema_version();
    if applied != expected {
        return Err(ApiError::new(
            Code::StoreUnavailable,
            format!("the store's schema is at version {applied}, this build expects {expected}"),
        ));
    }
    Ok(Json(Health { status: "ok" }))
}

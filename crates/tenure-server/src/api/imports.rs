//! `POST /api/v1/imports?source=NAME` (a CSV snapshot as the body, diffed, planned and
//! committed or held exactly as `tenure import` does) and `POST /api/v1/simulate` (a policy as
//! the body: the whole population's plan under it; changes nothing).

use super::{Q, St, blocking};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use tenure_engine::app::AppError;
use tenure_engine::import::{self, ImportOptions};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest snapshot accepted (a 100,000-row HR file is about 15 MB).
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;
/// The largest policy accepted.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new()
        .routes(routes!(import_snapshot))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(simulate))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_POLICY_BYTES)),
        )
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The source name from the config (a `kind = "csv"` source).
    pub source: String,
    /// Show what would happen; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Imports a CSV snapshot of a source. Rejected rows are reported with line and reason (and do
/// not fail the request); a batch past the guard is held for approval. The response is the
/// report `tenure import --format json` prints.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The snapshot, as the source's CSV file"),
    responses((status = 200, description = "The import report", body = Object),
        (status = 404, description = "Unknown source", body = tenure_proto::ErrorBody),
        (status = 413, body = tenure_proto::ErrorBody),
        (status = 422, description = "Not this source's CSV", body = tenure_proto::ErrorBody)))]
async fn import_snapshot(
    State(state): St,
    p: Principal,
    Q(params): Q<ImportParams>,
    body: Bytes,
) -> ApiResult<Json<import::ImportReport>> {
    let actor = p.actor();
    // As `tenure import` does: the targets not correlated yet are read first.
    let pending =
        blocking(&state, |app| Ok(tenure_engine::correlation::pending_targets(app.config(), app.store().as_ref())?))
            .await?;
    let correlation = if pending.is_empty() {
        None
    } else {
        let conns = tenure_engine::executor::connectors(state.app.config()).await;
        let (inventory, unread) = tenure_engine::correlation::read_inventory(&conns, &pending).await;
        Some(import::Correlate { inventory, unread })
    };
    let report = blocking(&state, move |app| {
        let opts = ImportOptions { dry_run: params.dry_run, actor: Some(actor), correlation };
        let file = format!("api upload for `{}`", params.source);
        Ok(import::import_csv(&app.engine()?, &params.source, &file, &body, &opts)?)
    })
    .await?;
    Ok(Json(report))
}

/// The whole population's plan under the policy in the body (TOML, as `policy.toml`).
/// Changes nothing. The response is what `tenure simulate --format json` prints.
#[utoipa::path(post, path = "/api/v1/simulate", tag = "imports",
    request_body(content = String, content_type = "application/toml", description = "A policy"),
    responses((status = 200, description = "The simulation", body = Object),
        (status = 400, body = tenure_proto::ErrorBody),
        (status = 422, description = "The policy has problems (each with line and reason)", body = tenure_proto::ErrorBody)))]
async fn simulate(State(state): St, body: Bytes) -> ApiResult<Json<import::Simulation>> {
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::invalid("the policy is not UTF-8 text"))?;
    let sim = blocking(&state, move |app| {
        let policy = tenure_policy::parse("policy", &text, app.config(), app.today()).map_err(AppError::Policy)?;
        let candidate = app.with_policy(policy);
        Ok(import::simulate(&candidate.engine()?)?)
    })
    .await?;
    Ok(Json(sim))
}

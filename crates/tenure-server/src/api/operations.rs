//! `GET /api/v1/plan` (pending operations with their reasons), `GET /api/v1/operations`
//! (every state, filtered) and `POST /api/v1/operations/retry` (queue every failed operation
//! again, as `tenure apply --retry-failed` does).

use super::{Paging, Q, St, blocking, page_by_id, who};
use crate::error::ApiResult;
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::views;
use tenure_proto::{OpState, Operation, Page, Retried};
use tenure_store::OpFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(plan)).routes(routes!(list))
}

pub fn operate_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(retry))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFilter {
    /// Only this identity's operations.
    pub identity: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpsFilter {
    pub identity: Option<String>,
    pub state: Option<OpState>,
    /// Only the operations of this case.
    pub case: Option<i64>,
}

/// Pending operations with their reasons (`tenure plan`).
#[utoipa::path(get, path = "/api/v1/plan", tag = "operations", params(PlanFilter, Paging),
    responses((status = 200, body = Page<Operation>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn plan(State(state): St, Q(f): Q<PlanFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Operation>>> {
    let filter = OpFilter { identity: f.identity, states: vec![OpState::Pending], case_id: None };
    let ops = blocking(&state, move |app| Ok(views::operations(app.store_ref(), &filter)?)).await?;
    Ok(Json(page_by_id("plan", ops, |o| o.id, &paging)?))
}

/// Operations in every state, or the ones asked for.
#[utoipa::path(get, path = "/api/v1/operations", tag = "operations", params(OpsFilter, Paging),
    responses((status = 200, body = Page<Operation>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<OpsFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Operation>>> {
    let filter = OpFilter { identity: f.identity, states: f.state.into_iter().collect(), case_id: f.case };
    let ops = blocking(&state, move |app| Ok(views::operations(app.store_ref(), &filter)?)).await?;
    Ok(Json(page_by_id("operations", ops, |o| o.id, &paging)?))
}

/// Queues every failed operation again with a fresh retry budget (audited with the token's
/// name); the executor picks them up.
#[utoipa::path(post, path = "/api/v1/operations/retry", tag = "operations",
    responses((status = 200, body = Retried)))]
async fn retry(State(state): St, p: Principal) -> ApiResult<Json<Retried>> {
    let by = who(&p);
    let retried = blocking(&state, move |app| Ok(app.store().retry_failed(&by)?)).await?;
    Ok(Json(Retried { retried }))
}

//! `GET /api/v1/cases` (lifecycle cases and their progress) and `GET /api/v1/cases/coverage`
//! (leaver revocation coverage per target class, with time-to-revoke).

use super::{Paging, Q, St, blocking, page_by_id};
use crate::ServerState;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use tenure_engine::{reports, views};
use tenure_proto::{Case, Coverage, Page};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(coverage))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    /// Only cases not closed yet.
    #[serde(default)]
    pub open: bool,
}

/// Lifecycle cases, oldest first.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseFilter, Paging),
    responses((status = 200, body = Page<Case>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<CaseFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Case>>> {
    let cases = blocking(&state, move |app| Ok(views::cases(app.store_ref(), f.open)?)).await?;
    Ok(Json(page_by_id("cases", cases, |c| c.id, &paging)?))
}

/// Revocation coverage of leaver cases per target class, with time-to-revoke.
#[utoipa::path(get, path = "/api/v1/cases/coverage", tag = "cases", responses((status = 200, body = Coverage)))]
async fn coverage(State(state): St) -> ApiResult<Json<Coverage>> {
    Ok(Json(blocking(&state, |app| Ok(reports::coverage(app.config(), app.store_ref())?)).await?))
}

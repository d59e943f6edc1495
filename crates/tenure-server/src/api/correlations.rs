//! Correlation cases (issue 9, point 5): `GET /api/v1/correlations` (every case, or `?open=true`)
//! and `POST /api/v1/correlations/{id}/decide` (`{"to": ID}` or `{"orphan": true, "reason": ...}`),
//! decided in the token's name exactly as `tenure correlate` does.

use super::{P, Paging, Q, St, blocking, page_by_id};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::correlation::{self, Choice};
use tenure_proto::{CorrelateRequest, CorrelationCase, CorrelationDecided, Page};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list))
}

pub fn operate_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(decide))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpenFilter {
    /// Only the cases nobody has decided yet.
    #[serde(default)]
    pub open: bool,
}

/// Correlation cases: accounts found in a target before Tenure managed it that the rules could
/// not decide, with their candidates (rule and confidence) and, once decided, by whom.
#[utoipa::path(get, path = "/api/v1/correlations", tag = "correlations", params(OpenFilter, Paging),
    responses((status = 200, body = Page<CorrelationCase>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<OpenFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<CorrelationCase>>> {
    let list = blocking(&state, move |app| Ok(correlation::cases(app.store().as_ref(), f.open)?)).await?;
    Ok(Json(page_by_id("correlations", list, |c| c.id, &paging)?))
}

/// Decides an open case in the token's name: `to` links the account to that identity (and plans
/// the identity on it), `orphan` leaves it nobody's for good (`reason` required). Audited with
/// the candidates refused. An unknown case is a 404; a decided one, an unknown identity or one
/// with an account there already is refused and changes nothing.
#[utoipa::path(post, path = "/api/v1/correlations/{id}/decide", tag = "correlations", request_body = CorrelateRequest,
    params(("id" = i64, Path, description = "The correlation case's id")),
    responses((status = 200, body = CorrelationDecided), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody)))]
async fn decide(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<CorrelateRequest>,
) -> ApiResult<Json<CorrelationDecided>> {
    let req = body.0;
    let choice = match (req.to, req.orphan) {
        (Some(to), false) if !to.trim().is_empty() => Choice::To(to),
        (None, true) => Choice::Orphan,
        _ => return Err(ApiError::invalid("give exactly one of `to` (an identity id) and `orphan: true`")),
    };
    let by = super::decider(&p);
    let reason = req.reason;
    let d = blocking(&state, move |app| Ok(correlation::decide(&app.engine()?, id, &choice, reason.as_deref(), &by)?))
        .await?;
    Ok(Json(d))
}

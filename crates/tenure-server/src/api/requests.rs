//! Access requests: `GET /api/v1/requests` (every one, or `?open=true`), `POST
//! /api/v1/requests` (ask for a requestable role) and `POST /api/v1/requests/{id}/revoke`. The
//! requester, and whoever revokes, is the token's name, never a field of the body (audited with
//! `via token:NAME`). A request's stages are decided through `/api/v1/approvals/{id}/approve`
//! and `/reject`, by the approver each stage resolved to.

use super::{P, Paging, Q, St, blocking, decider, page_by_id};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::requests::{self, Ask};
use tenure_proto::{NewRequestBody, Page, Request, RevokeRequestBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list))
}

pub fn decide_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(revoke))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    /// Only the open ones: pending and granted.
    #[serde(default)]
    pub open: bool,
}

/// Access requests, oldest first, with their stages.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestFilter, Paging),
    responses((status = 200, body = Page<Request>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<RequestFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Request>>> {
    let list = blocking(&state, move |app| Ok(requests::list(&app.engine()?, f.open)?)).await?;
    Ok(Json(page_by_id("requests", list, |r| r.id, &paging)?))
}

/// Asks for a requestable role for an identity, as the token's name. Refused, changing
/// nothing, when the role is not requestable (422), the duration is longer than its
/// `max_duration` (422), the identity is unknown (404) or terminated (422), a blocking SoD rule
/// would be violated (409, naming the rule), or the approver would be the identity or the
/// requester (403).
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequestBody,
    responses((status = 200, body = Request), (status = 400, body = tenure_proto::ErrorBody),
        (status = 403, body = tenure_proto::ErrorBody), (status = 404, body = tenure_proto::ErrorBody),
        (status = 409, body = tenure_proto::ErrorBody), (status = 422, body = tenure_proto::ErrorBody)))]
async fn create(State(state): St, p: Principal, body: super::JsonBody<NewRequestBody>) -> ApiResult<Json<Request>> {
    let b = body.0;
    let requester = decider(&p);
    let r = blocking(&state, move |app| {
        let ask = Ask { role: &b.role, identity: &b.identity, reason: &b.reason, duration: b.duration.as_deref() };
        Ok::<_, ApiError>(requests::create(&app.engine()?, &ask, &requester)?)
    })
    .await?;
    Ok(Json(r))
}

/// Ends a request early, as the token's name: a granted one's access is planned for
/// revocation (and verified by the executor), a pending one stops.
#[utoipa::path(post, path = "/api/v1/requests/{id}/revoke", tag = "requests", request_body = RevokeRequestBody,
    params(("id" = i64, Path, description = "The request's id")),
    responses((status = 200, body = Request), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody), (status = 409, body = tenure_proto::ErrorBody)))]
async fn revoke(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<RevokeRequestBody>,
) -> ApiResult<Json<Request>> {
    let by = decider(&p);
    let reason = body.0.reason.unwrap_or_else(|| format!("revoked early by {}", by.name));
    let r = blocking(&state, move |app| Ok::<_, ApiError>(requests::revoke(&app.engine()?, id, &by, &reason)?)).await?;
    Ok(Json(r))
}

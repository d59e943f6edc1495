//! `GET /api/v1/approvals` (pending, or every one with `?all=true`), and the decisions
//! `POST /api/v1/approvals/{id}/approve` and `POST /api/v1/approvals/{id}/reject`. The
//! approver is the token's name, never a field of the body: whoever holds an approver token
//! decides as that token, audited so (actor `token:NAME`, `approver` the name, `via
//! token:NAME`). An access request's stage is decided only by the approver it resolved to: the
//! token's name must be that identity's id or username.

use super::{P, Paging, Q, St, blocking, decider, page_by_id};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::decisions::{self, Approved};
use tenure_engine::views;
use tenure_proto::{Approval, Decision, Page, RejectRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list))
}

pub fn decide_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(approve)).routes(routes!(reject))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// Include decided approvals.
    #[serde(default)]
    pub all: bool,
}

/// Pending approvals (held batches, held remediation), oldest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalFilter, Paging),
    responses((status = 200, body = Page<Approval>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<ApprovalFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Approval>>> {
    let list = blocking(&state, move |app| Ok(views::approvals(app.store_ref(), !f.all)?)).await?;
    Ok(Json(page_by_id("approvals", list, |a| a.id, &paging)?))
}

/// Approves: a held batch is applied (planned against the current state), held remediation is
/// released to the executor. The approver is the token's name.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = i64, Path, description = "The approval's id")),
    responses((status = 200, body = Decision), (status = 404, body = tenure_proto::ErrorBody),
        (status = 409, description = "No longer pending", body = tenure_proto::ErrorBody)))]
async fn approve(State(state): St, p: Principal, P(id): P<i64>) -> ApiResult<Json<Decision>> {
    let approver = decider(&p);
    let decision = blocking(&state, move |app| {
        let engine = app.engine()?;
        let (events, operations, cases, request) =
            match decisions::approve(&engine, app.store().as_ref(), id, &approver)? {
                Approved::Batch(ids) => (ids.events, ids.operations, ids.cases, None),
                Approved::Remediation(n) => (0, n, 0, None),
                Approved::Request(r) => (0, 0, 0, Some(*r)),
            };
        let approval = views::approval(&app.store().approval(id)?);
        Ok::<_, ApiError>(Decision { approval, events, operations, cases, request })
    })
    .await?;
    Ok(Json(decision))
}

/// Rejects: what the approval held is discarded, with the reason, audited with the token's
/// name.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", request_body = RejectRequest,
    params(("id" = i64, Path, description = "The approval's id")),
    responses((status = 200, body = Approval), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody), (status = 409, body = tenure_proto::ErrorBody)))]
async fn reject(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<RejectRequest>,
) -> ApiResult<Json<Approval>> {
    let reason = body.0.reason;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("`reason` must say why"));
    }
    let by = decider(&p);
    let approval = blocking(&state, move |app| {
        decisions::reject(&app.engine()?, id, &by, &reason)?;
        Ok::<_, ApiError>(views::approval(&app.store().approval(id)?))
    })
    .await?;
    Ok(Json(approval))
}

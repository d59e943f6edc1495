//! Certification campaigns (issue 10): `GET /api/v1/campaigns`, `GET /api/v1/campaigns/{id}`,
//! `GET /api/v1/campaigns/{id}/export` (CSV) to read; `POST /api/v1/campaigns` and
//! `POST /api/v1/campaigns/{id}/close` to administer; `GET /api/v1/reviews` (the caller's own
//! review items) and `POST /api/v1/reviews/{id}` (decide or reassign) to approve.
//!
//! The reviewer is the token's name, never a field of the body: an approver token named after a
//! manager's username (or identity id) decides that manager's items, audited as `token:NAME`.

use super::{JsonBody, P, Paging, Q, St, blocking, page_by_id, who};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tenure_core::OnTimeout;
use tenure_engine::campaigns::{self, CreateOptions};
use tenure_proto::{Campaign, CampaignDetail, CreateCampaign, Page, ReviewItem, ReviewRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show)).routes(routes!(export))
}

pub fn admin_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(close))
}

pub fn review_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(reviews)).routes(routes!(review))
}

/// Every campaign with its progress, oldest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", params(Paging),
    responses((status = 200, body = Page<Campaign>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Campaign>>> {
    let list = blocking(&state, |app| Ok(campaigns::list(app)?)).await?;
    Ok(Json(page_by_id("campaigns", list, |c| c.id, &paging)?))
}

/// Creates a campaign over its scope's held access, one item per identity and entitlement,
/// each assigned to its reviewer; created by the token's name.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = CreateCampaign,
    responses((status = 200, body = Campaign), (status = 400, body = tenure_proto::ErrorBody)))]
async fn create(State(state): St, p: Principal, body: JsonBody<CreateCampaign>) -> ApiResult<Json<Campaign>> {
    let b = body.0;
    let o = CreateOptions {
        name: b.name,
        scope: b.scope,
        reviewer: b.reviewer,
        due: b.due,
        escalate_after: b.escalate_after,
        on_timeout: b.on_timeout.unwrap_or(OnTimeout::Keep),
        by: who(&p),
        actor: p.actor(),
    };
    Ok(Json(blocking(&state, move |app| Ok(campaigns::create(app, &o)?)).await?))
}

/// One campaign and its items.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = i64, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignDetail), (status = 404, body = tenure_proto::ErrorBody)))]
async fn show(State(state): St, P(id): P<i64>) -> ApiResult<Json<CampaignDetail>> {
    let (campaign, items) = blocking(&state, move |app| Ok(campaigns::show(app, id)?)).await?;
    Ok(Json(CampaignDetail { campaign, items }))
}

/// Closes a campaign: its revoke decisions are carried out first (through the guard); items
/// left unreviewed keep their access. Closed by the token's name.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/close", tag = "campaigns",
    params(("id" = i64, Path, description = "The campaign's id")),
    responses((status = 200, body = Campaign), (status = 404, body = tenure_proto::ErrorBody),
        (status = 409, description = "Closed already", body = tenure_proto::ErrorBody)))]
async fn close(State(state): St, p: Principal, P(id): P<i64>) -> ApiResult<Json<Campaign>> {
    let (by, actor) = (who(&p), p.actor());
    Ok(Json(blocking(&state, move |app| Ok(campaigns::close(app, id, &by, &actor)?.0)).await?))
}

/// The campaign's items as CSV: `campaign, item, identity, entitlement, why, reviewer,
/// decision, justification, decided_at, applied_by, applied_at, outcome`, one row per item,
/// every cell neutralised against spreadsheet formulas.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/export", tag = "campaigns",
    params(("id" = i64, Path, description = "The campaign's id")),
    responses((status = 200, description = "CSV, one row per item", content_type = "text/csv", body = String),
        (status = 404, body = tenure_proto::ErrorBody)))]
async fn export(State(state): St, P(id): P<i64>) -> ApiResult<Response> {
    let csv = blocking(&state, move |app| {
        let mut out = Vec::new();
        campaigns::export_csv(app, id, &mut out)?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// Include decided items and items of closed campaigns.
    #[serde(default)]
    pub all: bool,
}

/// The caller's review items (the token's name is the reviewer): undecided ones of open
/// campaigns, or every one with `?all=true`.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "reviews", params(ReviewFilter, Paging),
    responses((status = 200, body = Page<ReviewItem>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn reviews(
    State(state): St,
    p: Principal,
    Q(f): Q<ReviewFilter>,
    Q(paging): Q<Paging>,
) -> ApiResult<Json<Page<ReviewItem>>> {
    let me = who(&p);
    let list = blocking(&state, move |app| Ok(campaigns::reviews(app, Some(&me), !f.all)?)).await?;
    Ok(Json(page_by_id("reviews", list, |i| i.id, &paging)?))
}

/// Decides a review item (`decision` with a `reason`) or hands it on (`reassign` with a
/// `note`), as the token's name: only the item's reviewer may. A revoke is planned through the
/// guard and verified like any revocation.
#[utoipa::path(post, path = "/api/v1/reviews/{id}", tag = "reviews", request_body = ReviewRequest,
    params(("id" = i64, Path, description = "The review item's id")),
    responses((status = 200, body = ReviewItem), (status = 400, body = tenure_proto::ErrorBody),
        (status = 403, description = "Not the item's reviewer", body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody),
        (status = 409, description = "Decided already, or the campaign is closed", body = tenure_proto::ErrorBody)))]
async fn review(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: JsonBody<ReviewRequest>,
) -> ApiResult<Json<ReviewItem>> {
    let b = body.0;
    let (me, actor) = (who(&p), p.actor());
    let item = match (b.decision, b.reassign) {
        (Some(decision), None) => {
            let reason = b.reason.ok_or_else(|| ApiError::invalid("a decision needs a `reason`"))?;
            blocking(&state, move |app| Ok(campaigns::decide(app, id, decision, &reason, &me, &actor)?.0)).await?
        }
        (None, Some(to)) => {
            let note = b.note.ok_or_else(|| ApiError::invalid("a reassignment needs a `note`"))?;
            blocking(&state, move |app| Ok(campaigns::reassign(app, id, &to, &note, &me, &actor)?)).await?
        }
        _ => {
            return Err(ApiError::invalid(
                "give either `decision` (keep or revoke) with `reason`, or `reassign` with `note`",
            ));
        }
    };
    Ok(Json(item))
}

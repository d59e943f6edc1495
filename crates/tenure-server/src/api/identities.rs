//! `GET /api/v1/identities` (filtered, paged in id order by the store) and
//! `GET /api/v1/identities/{id}` (attributes, accounts and grants per target, operations,
//! events, timeline: `tenure_engine::reports::identity_detail`).

use super::{P, Paging, Q, St, blocking, encode_cursor};
use crate::ServerState;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use tenure_engine::{reports, views};
use tenure_proto::{IdentityDetail, IdentitySummary, Kind, Page, Status};
use tenure_store::IdentityQuery;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show))
}

/// Filters of the identity list; every one given must hold.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// The `department` attribute, exactly.
    pub department: Option<String>,
    /// Found, case-insensitively, in the id or any attribute value.
    pub text: Option<String>,
}

/// Identities with their status and attributes, in id order.
#[utoipa::path(get, path = "/api/v1/identities", tag = "identities", params(Filter, Paging),
    responses((status = 200, body = Page<IdentitySummary>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(filter): Q<Filter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<IdentitySummary>>> {
    let limit = paging.limit()?;
    let query = IdentityQuery {
        status: filter.status,
        kind: filter.kind,
        department: filter.department.filter(|d| !d.is_empty()),
        text: filter.text.filter(|t| !t.is_empty()),
        after: paging.after("identities")?,
        // One more than a page says whether there is a next one.
        limit: limit + 1,
    };
    let mut items = blocking(&state, move |app| {
        let store: &dyn tenure_store::Browse = app.store().as_ref();
        Ok(views::identity_page(store, &app.config().schema, &query)?)
    })
    .await?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more { items.last().map(|i| encode_cursor("identities", &i.id)) } else { None };
    Ok(Json(Page { items, next_cursor }))
}

/// One identity in full.
#[utoipa::path(get, path = "/api/v1/identities/{id}", tag = "identities",
    params(("id" = String, Path, description = "The identity's id (the source's key)")),
    responses((status = 200, body = IdentityDetail), (status = 404, body = tenure_proto::ErrorBody)))]
async fn show(State(state): St, P(id): P<String>) -> ApiResult<Json<IdentityDetail>> {
    let shown = id.clone();
    blocking(&state, move |app| {
        reports::identity_detail(app.config(), app.store().as_ref(), &id).map_err(ApiError::from)
    })
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::not_found(format!("identity `{}`", tenure_core::text::escape(&shown))))
}

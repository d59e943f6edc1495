//! `GET /api/v1/tokens`: the API tokens (never their text or hash), for administrators.
//! Tokens are created and revoked with `tenure token`, on the machine that holds the store.

use super::{Paging, Q, St, blocking};
use crate::ServerState;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use tenure_proto::{Page, Token};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenFilter {
    /// Include revoked tokens.
    #[serde(default)]
    pub all: bool,
}

/// API tokens by name.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenFilter, Paging),
    responses((status = 200, body = Page<Token>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn list(State(state): St, Q(f): Q<TokenFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Token>>> {
    let mut list = blocking(&state, move |app| Ok(tenure_engine::tokens::list(app.store().as_ref(), f.all)?)).await?;
    let limit = paging.limit()?;
    let after = paging.after("tokens")?;
    list.retain(|t| after.as_deref().is_none_or(|a| t.name.as_str() > a));
    let more = list.len() > limit;
    list.truncate(limit);
    let next_cursor = if more { list.last().map(|t| super::encode_cursor("tokens", &t.name)) } else { None };
    Ok(Json(Page { items: list, next_cursor }))
}

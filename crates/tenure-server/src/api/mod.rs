//! The REST API under `/api/v1` (the design's section 10): one module per resource, each with
//! its `router()`, and the OpenAPI 3.1 document generated from the handlers' annotations
//! (utoipa) and served at `/api/v1/openapi.json`.
//!
//! Every route sits behind the authentication layer and one [`need`] route layer that names
//! what it needs, so a route cannot be added without saying who may call it: the groups below
//! are by need. Handlers run their store work through `tenure_engine::blocking`, never on a
//! runtime thread, and answer the engine's wire types (`tenure-proto`).
//!
//! Lists are pages: `?limit=` (default 50, at most 1,000) and `?cursor=`, an opaque string the
//! previous page returned as `next_cursor`. A cursor is the last key of that page, tagged with
//! its list, base64url-encoded; one from another list, or one this server did not issue, is a
//! 400.

mod approvals;
mod audit;
mod campaigns;
mod cases;
mod correlations;
mod exceptions;
mod identities;
mod imports;
mod nhi;
mod operations;
mod registers;
mod requests;
mod tokens;

use crate::ServerState;
use crate::access::{Need, need};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tenure_engine::app::App;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the API lives.
pub const BASE: &str = "/api/v1";

/// The default and the largest page.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tenure",
        description = "The identity lifecycle engine's REST API. Every route needs `Authorization: Bearer TOKEN` \
                       (`tenure token create`); errors are `{code, message}` with a stable code.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(tenure_proto::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("tnr_…").build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// A group of routes that need `n`.
fn group(n: Need, router: OpenApiRouter<ServerState>) -> OpenApiRouter<ServerState> {
    router.route_layer(axum::middleware::from_fn(need(n)))
}

/// Every API route with its document.
pub fn openapi_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(group(
            Need::Read,
            OpenApiRouter::new()
                .merge(identities::router())
                .merge(operations::read_router())
                .merge(cases::router())
                .merge(approvals::read_router())
                .merge(registers::read_router())
                .merge(requests::read_router())
                .merge(correlations::read_router())
                .routes(routes!(openapi_json)),
        ))
        .merge(group(
            Need::Operate,
            OpenApiRouter::new()
                .merge(imports::router())
                .merge(operations::operate_router())
                .merge(registers::operate_router())
                .merge(correlations::operate_router())
                // issue 10 (nhi): the exceptions register's decisions, credential rotation.
                .merge(exceptions::operate_router())
                .merge(nhi::operate_router()),
        ))
        .merge(group(Need::Approve, approvals::decide_router()))
        // Access requests: asked for and revoked with the approver scope.
        .merge(group(Need::Approve, requests::decide_router()))
        .merge(group(Need::Audit, audit::router()))
        .merge(group(Need::Administer, tokens::router()))
        // Certification campaigns (issue 10): anyone may read them, approvers review, admins
        // create and close.
        .merge(group(Need::Read, campaigns::read_router()))
        .merge(group(Need::Approve, campaigns::review_router()))
        .merge(group(Need::Administer, campaigns::admin_router()))
}

/// The OpenAPI document of every API route (the lead's `/api/v1/events` included once its
/// handler is annotated and merged here).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().into_openapi()
}

/// The API's routes, for `app()`.
pub fn router() -> axum::Router<ServerState> {
    let (router, doc) = openapi_router().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router.layer(axum::Extension(doc))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(
    axum::Extension(doc): axum::Extension<std::sync::Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*doc).clone())
}

/// `?cursor=&limit=` on every list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (default 50, at most 1,000).
    pub limit: Option<usize>,
}

impl Paging {
    pub fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid(format!("`limit` must be 1 to {MAX_LIMIT}; got {n}"))),
        }
    }

    /// The key the cursor holds for list `list`, if a cursor was given.
    pub fn after(&self, list: &str) -> ApiResult<Option<String>> {
        self.cursor.as_deref().map(|c| decode_cursor(list, c)).transpose()
    }
}

pub fn encode_cursor(list: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{key}"))
}

fn decode_cursor(list: &str, cursor: &str) -> ApiResult<String> {
    let bad = || ApiError::invalid("`cursor` is not one this list returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(list).and_then(|r| r.strip_prefix(':')).map(str::to_string).ok_or_else(bad)
}

/// A page of a list the engine returns whole, in ascending numeric `key` order.
pub fn page_by_id<T>(
    list: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> i64,
    paging: &Paging,
) -> ApiResult<tenure_proto::Page<T>> {
    let limit = paging.limit()?;
    let after = match paging.after(list)? {
        Some(k) => Some(k.parse::<i64>().map_err(|_| ApiError::invalid("`cursor` is not one this list returned"))?),
        None => None,
    };
    let mut items: Vec<T> = items.into_iter().filter(|i| after.is_none_or(|a| key(i) > a)).collect();
    items.sort_by_key(|i| key(i));
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more { items.last().map(|i| encode_cursor(list, &key(i).to_string())) } else { None };
    Ok(tenure_proto::Page { items, next_cursor })
}

/// Runs `f` with the application state on the blocking pool.
pub async fn blocking<T, F>(state: &ServerState, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&App) -> ApiResult<T> + Send + 'static,
{
    tenure_engine::blocking::app(&state.app, f).await
}

/// The principal's name, as the engine records a person's (the approver, the one who did a
/// task).
pub fn who(p: &crate::Principal) -> String {
    p.name.clone()
}

/// The principal as the one who decides or asks: the token's name, identified by the token
/// (never a name from the body).
pub fn decider(p: &crate::Principal) -> tenure_engine::decisions::Decider {
    tenure_engine::decisions::Decider::new(p.name.clone(), tenure_engine::decisions::Via::Token)
}

pub(crate) type St = State<ServerState>;

/// The query string, deserialized; a malformed one is a 400 with `{code, message}`.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Q(v))
            .map_err(|e| ApiError::invalid(tenure_core::text::escape(&e.body_text()).into_owned()))
    }
}

/// A path parameter, deserialized; a malformed one is a 400 with `{code, message}`.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| P(v))
            .map_err(|e| ApiError::invalid(tenure_core::text::escape(&e.body_text()).into_owned()))
    }
}

/// A JSON body; a malformed one is a 400 (a body too large, 413) with `{code, message}`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(tenure_core::error::Code::PayloadTooLarge, "the request body is too large"))
            }
            Err(e) => Err(ApiError::invalid(tenure_core::text::escape(&e.body_text()).into_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_list() {
        let p = Paging { cursor: Some(encode_cursor("identities", "E:1")), limit: None };
        assert_eq!(p.after("identities").unwrap().as_deref(), Some("E:1"));
        assert!(p.after("cases").is_err(), "a cursor of another list");
        let junk = Paging { cursor: Some("%%%".into()), limit: None };
        assert!(junk.after("identities").is_err());
        assert!(Paging { cursor: None, limit: Some(0) }.limit().is_err());
        assert!(Paging { cursor: None, limit: Some(1001) }.limit().is_err());
        assert_eq!(Paging::default().limit().unwrap(), DEFAULT_LIMIT);
    }

    #[test]
    fn pages_of_a_whole_list_continue_from_the_cursor() {
        let items: Vec<i64> = vec![5, 1, 3, 2, 4];
        let first = page_by_id("x", items.clone(), |i| *i, &Paging { cursor: None, limit: Some(2) }).unwrap();
        assert_eq!(first.items, [1, 2]);
        let second =
            page_by_id("x", items.clone(), |i| *i, &Paging { cursor: first.next_cursor, limit: Some(2) }).unwrap();
        assert_eq!(second.items, [3, 4]);
        let last = page_by_id("x", items, |i| *i, &Paging { cursor: second.next_cursor, limit: Some(2) }).unwrap();
        assert_eq!((last.items, last.next_cursor), (vec![5], None));
    }
}

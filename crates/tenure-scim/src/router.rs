//! The HTTP surface (RFC 7644 §3): an axum router over a [`ScimBackend`].
//!
//! Mount it wherever the SCIM base URL is (`Router::nest("/scim/v2", tenure_scim::router(b))`);
//! it works out its own prefix from the request (or takes [`Config::base_url`]) to write
//! absolute `meta.location` URLs. It authenticates nobody: the server wraps it in its token
//! layer. Every response with a body is `application/scim+json`; every error is a SCIM Error
//! resource, including 404 for unknown paths and 405 for a method an endpoint does not serve.

use crate::backend::{ListQuery, ScimBackend, Write};
use crate::error::{BackendError, SCIM_CONTENT_TYPE, ScimError};
use crate::filter::{AttrPath, Filter};
use crate::patch::{self, PatchRequest};
use crate::resource::{self, Projection, SortValue, StoredResource};
use crate::schema::{self, LIST_RESPONSE_URN, ResourceKind, SERVICE_PROVIDER_CONFIG_URN};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How the router presents itself.
#[derive(Clone, Debug)]
pub struct Config {
    /// The absolute URL the router is served at (`https://tenure.example.com/scim/v2`), for
    /// `meta.location`. Without it, `http://` + the request's `Host` + the prefix the router is
    /// nested under; set it when a TLS proxy stands in front.
    pub base_url: Option<String>,
    /// `filter.maxResults`: the most resources one list or search returns.
    pub max_results: usize,
    /// The largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// `authenticationSchemes` in `/ServiceProviderConfig`: what the server in front checks.
    pub authentication_schemes: Vec<Value>,
    /// The resource types served (default: all). Discovery lists only these and their
    /// schemas; the endpoints of the others answer a SCIM 404 that says so, so a client never
    /// writes a resource the service provider would not act on.
    pub kinds: Vec<ResourceKind>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            base_url: None,
            max_results: 1000,
            max_body_bytes: 1024 * 1024,
            authentication_schemes: vec![json!({
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A bearer token with the `source` scope, made by `tenure token create`.",
                "primary": true,
            })],
            kinds: ResourceKind::ALL.to_vec(),
        }
    }
}

struct Shared<B> {
    backend: B,
    config: Config,
}

type St<B> = State<Arc<Shared<B>>>;

/// The router with default [`Config`].
pub fn router<B: ScimBackend>(backend: B) -> Router {
    router_with(backend, Config::default())
}

/// The router with `config`.
pub fn router_with<B: ScimBackend>(backend: B, config: Config) -> Router {
    let limit = config.max_body_bytes;
    let shared = Arc::new(Shared { backend, config });
    let mut r: Router<Arc<Shared<B>>> = Router::new()
        .route("/ServiceProviderConfig", only_get(get(service_provider_config::<B>)))
        .route("/ResourceTypes", only_get(get(resource_types::<B>)))
        .route("/ResourceTypes/{id}", only_get(get(resource_type::<B>)))
        .route("/Schemas", only_get(get(schemas::<B>)))
        .route("/Schemas/{id}", only_get(get(schema_by_id::<B>)))
        .route("/.search", post(|s: St<B>, c: Ctx, w: Caller<B>, b| search(s, c, w, None, b)).fallback(not_allowed));
    for kind in ResourceKind::ALL {
        let endpoint = kind.endpoint();
        if !shared.config.kinds.contains(&kind) {
            let refuse = move || async move { not_served(kind) };
            r = r
                .route(&format!("/{endpoint}"), axum::routing::any(refuse))
                .route(&format!("/{endpoint}/{{*rest}}"), axum::routing::any(refuse));
            continue;
        }
        r = r
            .route(
                &format!("/{endpoint}"),
                get(move |s: St<B>, c: Ctx, w: Caller<B>| list(s, c, w, kind))
                    .post(move |s: St<B>, c: Ctx, w: Caller<B>, b| create(s, c, w, kind, b))
                    .fallback(not_allowed),
            )
            .route(
                &format!("/{endpoint}/.search"),
                post(move |s: St<B>, c: Ctx, w: Caller<B>, b| search(s, c, w, Some(kind), b)).fallback(not_allowed),
            )
            .route(
                &format!("/{endpoint}/{{id}}"),
                get(move |s: St<B>, c: Ctx, w: Caller<B>, p: Path<String>| read(s, c, w, kind, p))
                    .put(move |s: St<B>, c: Ctx, w: Caller<B>, p: Path<String>, b| put(s, c, w, kind, p, b))
                    .patch(move |s: St<B>, c: Ctx, w: Caller<B>, p: Path<String>, b| patch(s, c, w, kind, p, b))
                    .delete(move |s: St<B>, c: Ctx, w: Caller<B>, p: Path<String>| delete(s, c, w, kind, p))
                    .fallback(not_allowed),
            );
    }
    r.fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

fn only_get<S: Clone + Send + Sync + 'static>(m: MethodRouter<S>) -> MethodRouter<S> {
    m.fallback(not_allowed)
}

async fn not_allowed() -> ScimError {
    ScimError::method_not_allowed()
}

/// The answer of every endpoint of a resource type the router does not serve.
fn not_served(kind: ResourceKind) -> ScimError {
    ScimError::not_found(format!("this service provider does not serve {} resources", kind.name()))
}

/// What every handler needs from the request head.
struct Ctx {
    base: String,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

impl<B: ScimBackend> FromRequestParts<Arc<Shared<B>>> for Ctx {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Shared<B>>) -> Result<Ctx, ScimError> {
        let base = match &state.config.base_url {
            Some(b) => b.trim_end_matches('/').to_string(),
            None => {
                let inner = parts.uri.path();
                let full = parts.extensions.get::<OriginalUri>().map(|o| o.path().to_string());
                let prefix = full
                    .as_deref()
                    .and_then(|f| f.strip_suffix(inner))
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string();
                match parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| is_host(h)) {
                    Some(host) => format!("http://{host}{prefix}"),
                    None => prefix,
                }
            }
        };
        let query = match parts.uri.query() {
            None => Vec::new(),
            Some(_) => axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|q| q.0)
                .map_err(|_| ScimError::invalid_value("the query string is malformed"))?,
        };
        Ok(Ctx { base, headers: parts.headers.clone(), query })
    }
}

/// The backend's caller, from the request's extensions (put there by the server's
/// authentication layer), else [`ScimBackend::default_caller`], else 401.
struct Caller<B: ScimBackend>(B::Caller);

impl<B: ScimBackend> FromRequestParts<Arc<Shared<B>>> for Caller<B> {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<Shared<B>>) -> Result<Caller<B>, ScimError> {
        parts
            .extensions
            .get::<B::Caller>()
            .cloned()
            .or_else(B::default_caller)
            .map(Caller)
            .ok_or_else(ScimError::unauthorized)
    }
}

/// A `Host` header fit to put in a URL.
fn is_host(h: &str) -> bool {
    !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl Ctx {
    /// The last value of a query parameter, its name matched case-insensitively.
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn projection(&self) -> Result<Projection, ScimError> {
        let all = |name: &str| -> Vec<String> {
            self.query.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
        };
        Projection::parse(&all("attributes"), &all("excludedAttributes"))
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    r
}

fn with_etag(mut r: Response, version: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&resource::etag(version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn list_response(total: usize, start: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn service_provider_config<B: ScimBackend>(State(s): St<B>, c: Ctx) -> Response {
    let body = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": s.config.max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": s.config.authentication_schemes,
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", c.base)},
    });
    scim_json(StatusCode::OK, &body)
}

async fn resource_types<B: ScimBackend>(State(s): St<B>, c: Ctx) -> Response {
    let all: Vec<Value> = served(&s.config)
        .map(|k| k.resource_type().to_json(&format!("{}/ResourceTypes/{}", c.base, k.name())))
        .collect();
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn resource_type<B: ScimBackend>(State(s): St<B>, c: Ctx, Path(id): Path<String>) -> Response {
    match served(&s.config).find(|k| k.name().eq_ignore_ascii_case(&id)) {
        Some(k) => {
            scim_json(StatusCode::OK, &k.resource_type().to_json(&format!("{}/ResourceTypes/{}", c.base, k.name())))
        }
        None => ScimError::not_found("no such resource type").into_response(),
    }
}

async fn schemas<B: ScimBackend>(State(s): St<B>, c: Ctx) -> Response {
    let all: Vec<Value> =
        served_schemas(&s.config).map(|s| s.to_json(&format!("{}/Schemas/{}", c.base, s.id))).collect();
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn schema_by_id<B: ScimBackend>(State(s): St<B>, c: Ctx, Path(id): Path<String>) -> Response {
    match served_schemas(&s.config).find(|s| s.id.eq_ignore_ascii_case(&id)) {
        Some(s) => scim_json(StatusCode::OK, &s.to_json(&format!("{}/Schemas/{}", c.base, s.id))),
        None => ScimError::not_found("no such schema").into_response(),
    }
}

/// The resource types served, in [`ResourceKind::ALL`] order.
fn served(config: &Config) -> impl Iterator<Item = ResourceKind> + '_ {
    ResourceKind::ALL.into_iter().filter(|k| config.kinds.contains(k))
}

/// The schemas (core and extensions) of the resource types served.
fn served_schemas(config: &Config) -> impl Iterator<Item = &'static schema::Schema> + '_ {
    schema::schemas().into_iter().filter(|s| {
        served(config).any(|k| {
            let rt = k.resource_type();
            rt.schema.id == s.id || rt.extensions.iter().any(|e| e.id == s.id)
        })
    })
}

/// List parameters, from a query string or a SearchRequest body.
#[derive(Default)]
struct Search {
    filter: Option<String>,
    sort_by: Option<String>,
    descending: bool,
    start_index: Option<i64>,
    count: Option<i64>,
    projection: Projection,
}

impl Search {
    fn from_query(c: &Ctx) -> Result<Search, ScimError> {
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            c.param(name)
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::invalid_value(format!("`{name}` must be an integer")))
                })
                .transpose()
        };
        Ok(Search {
            filter: c.param("filter").map(str::to_string),
            sort_by: c.param("sortBy").map(str::to_string),
            descending: sort_descending(c.param("sortOrder"))?,
            start_index: int("startIndex")?,
            count: int("count")?,
            projection: c.projection()?,
        })
    }

    fn from_body(body: &Value) -> Result<Search, ScimError> {
        let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let get = |k: &str| obj.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v);
        let string = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("`{k}` must be a string"))),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    v.as_i64().map(Some).ok_or_else(|| ScimError::invalid_value(format!("`{k}` must be an integer")))
                }
            }
        };
        let list = |k: &str| -> Result<Vec<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| ScimError::invalid_value(format!("`{k}` must list strings")))
                    })
                    .collect(),
                Some(_) => Err(ScimError::invalid_value(format!("`{k}` must be an array of strings"))),
            }
        };
        Ok(Search {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            descending: sort_descending(string("sortOrder")?.as_deref())?,
            start_index: int("startIndex")?,
            count: int("count")?,
            projection: Projection::parse(&list("attributes")?, &list("excludedAttributes")?)?,
        })
    }
}

fn sort_descending(order: Option<&str>) -> Result<bool, ScimError> {
    match order.map(str::trim) {
        None | Some("") => Ok(false),
        Some(o) if o.eq_ignore_ascii_case("ascending") => Ok(false),
        Some(o) if o.eq_ignore_ascii_case("descending") => Ok(true),
        Some(_) => Err(ScimError::invalid_value("`sortOrder` is `ascending` or `descending`")),
    }
}

async fn list<B: ScimBackend>(State(s): St<B>, c: Ctx, Caller(w): Caller<B>, kind: ResourceKind) -> Response {
    match Search::from_query(&c) {
        Ok(search) => run_search(&s, &c, &w, &[kind], search).await,
        Err(e) => e.into_response(),
    }
}

async fn search<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: Option<ResourceKind>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let search = json_body(body).and_then(|b| Search::from_body(&b));
    match search {
        Ok(search) => {
            let kinds: Vec<ResourceKind> = match kind {
                Some(k) => vec![k],
                None => served(&s.config).collect(),
            };
            run_search(&s, &c, &w, &kinds, search).await
        }
        Err(e) => e.into_response(),
    }
}

async fn run_search<B: ScimBackend>(
    s: &Shared<B>,
    c: &Ctx,
    w: &B::Caller,
    kinds: &[ResourceKind],
    search: Search,
) -> Response {
    match try_search(s, c, w, kinds, search).await {
        Ok(v) => scim_json(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// A matching resource, rendered, with its type.
type Found = (ResourceKind, Map<String, Value>);

async fn try_search<B: ScimBackend>(
    s: &Shared<B>,
    c: &Ctx,
    w: &B::Caller,
    kinds: &[ResourceKind],
    search: Search,
) -> Result<Value, ScimError> {
    let filter = search.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Filter::parse).transpose()?;
    match (&filter, kinds) {
        (Some(f), [kind]) => f.check(kind.resource_type())?,
        (Some(f), kinds) => f.check_across(&kinds.iter().map(|k| k.resource_type()).collect::<Vec<_>>())?,
        (None, _) => {}
    }
    let mut found: Vec<Found> = Vec::new();
    for &kind in kinds {
        let rt = kind.resource_type();
        let candidates =
            s.backend.list(w, kind, ListQuery::new(kind, filter.as_ref())).await.map_err(ScimError::from)?;
        for stored in candidates {
            let full = resource::render(rt, &stored, &c.base);
            if filter.as_ref().is_none_or(|f| f.matches(rt, &full)) {
                found.push((kind, full));
            }
        }
    }
    if let Some(sort_by) = search.sort_by.as_deref().filter(|s| !s.trim().is_empty()) {
        let path = AttrPath::parse(sort_by.trim()).map_err(ScimError::invalid_value)?;
        let mut keyed: Vec<(Option<SortValue>, Found)> =
            found.into_iter().map(|(k, r)| (resource::sort_value(k.resource_type(), &path, &r), (k, r))).collect();
        // Resources without a value sort last ascending, first descending (the order reversed).
        keyed.sort_by(|(a, _), (b, _)| {
            let o = match (a, b) {
                (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if search.descending { o.reverse() } else { o }
        });
        found = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = found.len();
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
    let start = usize::try_from(search.start_index.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    let max = s.config.max_results;
    let count = match search.count {
        Some(n) => usize::try_from(n.max(0)).unwrap_or(usize::MAX).min(max),
        None => max,
    };
    let page: Vec<Value> = found
        .into_iter()
        .skip(start.saturating_sub(1))
        .take(count)
        .map(|(k, r)| Value::Object(search.projection.apply(k.resource_type(), r)))
        .collect();
    Ok(list_response(total, start, page))
}

fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ScimError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ScimError::payload_too_large()
        } else {
            ScimError::invalid_syntax("the request body could not be read")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|_| ScimError::invalid_syntax("the request body is not valid JSON"))
}

fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ScimError> {
    match json_body(body)? {
        Value::Object(o) => Ok(o),
        _ => Err(ScimError::invalid_syntax("the request body must be a JSON object")),
    }
}

/// Renders a stored resource for a response, with its ETag.
fn respond(status: StatusCode, c: &Ctx, kind: ResourceKind, stored: &StoredResource) -> Result<Response, ScimError> {
    let rt = kind.resource_type();
    let full = resource::render(rt, stored, &c.base);
    let body = Value::Object(c.projection()?.apply(rt, full));
    let mut r = with_etag(scim_json(status, &body), &stored.version);
    if status == StatusCode::CREATED
        && let Some(Ok(loc)) =
            body.get("meta").and_then(|m| m.get("location")).and_then(Value::as_str).map(HeaderValue::from_str)
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

fn into_response(r: Result<Response, ScimError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn create<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: ResourceKind,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    into_response(
        async {
            let rt = kind.resource_type();
            let body = resource::normalize(rt, &json_object(body)?)?;
            let write = Write { unique: resource::unique_keys(rt, &body), body };
            let stored = s.backend.create(&w, kind, write).await?;
            respond(StatusCode::CREATED, &c, kind, &stored)
        }
        .await,
    )
}

async fn read<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: ResourceKind,
    Path(id): Path<String>,
) -> Response {
    into_response(
        async {
            let stored = current(&s, &w, kind, &id).await?;
            if precondition(&c.headers, header::IF_NONE_MATCH, &stored.version) == Some(true) {
                return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &stored.version));
            }
            respond(StatusCode::OK, &c, kind, &stored)
        }
        .await,
    )
}

async fn current<B: ScimBackend>(
    s: &Shared<B>,
    w: &B::Caller,
    kind: ResourceKind,
    id: &str,
) -> Result<StoredResource, ScimError> {
    s.backend
        .get(w, kind, id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no {} with id `{}`", kind.name(), crate::filter::clip(id))))
}

/// Whether an `If-Match` / `If-None-Match` value names `version` (`*` names any). Tags are
/// compared weakly: `W/"3"` and `"3"` both name version 3.
fn tags_match(header: &str, version: &str) -> bool {
    let ours = resource::etag(version);
    let ours = ours.trim_start_matches("W/");
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// Whether the `name` precondition header names `version`: `None` when it is absent, else
/// whether any entity tag of any of its fields does. RFC 9110 §5.3 makes several fields of a
/// list header one list, so `If-Match: W/"2"` and `If-Match: W/"3"` together match version 3
/// as `If-Match: W/"2", W/"3"` does; a field that is not text matches nothing.
fn precondition(headers: &HeaderMap, name: header::HeaderName, version: &str) -> Option<bool> {
    let mut fields = headers.get_all(name).iter().peekable();
    fields.peek()?;
    Some(fields.filter_map(|v| v.to_str().ok()).any(|tags| tags_match(tags, version)))
}

/// The `If-Match` precondition: fails with 412 unless the header is absent or names `version`.
fn check_if_match(c: &Ctx, version: &str) -> Result<bool, ScimError> {
    match precondition(&c.headers, header::IF_MATCH, version) {
        None => Ok(false),
        Some(true) => Ok(true),
        Some(false) => Err(ScimError::precondition_failed()),
    }
}

/// How often a write without `If-Match` is retried when a concurrent write changed the
/// resource between our read and our compare-and-swap.
const WRITE_ATTEMPTS: usize = 3;

async fn put<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: ResourceKind,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    into_response(
        async {
            let rt = kind.resource_type();
            let body = resource::normalize(rt, &json_object(body)?)?;
            let unique = resource::unique_keys(rt, &body);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let stored = current(&s, &w, kind, &id).await?;
                let conditional = check_if_match(&c, &stored.version)?;
                let write = Write { body: body.clone(), unique: unique.clone() };
                match s.backend.replace(&w, kind, &id, &stored.version, write).await {
                    Ok(new) => return respond(StatusCode::OK, &c, kind, &new),
                    Err(BackendError::VersionMismatch) if !conditional && attempt < WRITE_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        .await,
    )
}

async fn patch<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: ResourceKind,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    into_response(
        async {
            let rt = kind.resource_type();
            let request = PatchRequest::parse(&json_body(body)?)?;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let stored = current(&s, &w, kind, &id).await?;
                let conditional = check_if_match(&c, &stored.version)?;
                let mut patched = stored.body.clone();
                patch::apply(rt, &mut patched, &request)?;
                let body = resource::normalize(rt, &patched)?;
                if body == stored.body {
                    // Nothing changed: no write, no new version.
                    return respond(StatusCode::OK, &c, kind, &stored);
                }
                let write = Write { unique: resource::unique_keys(rt, &body), body };
                match s.backend.replace(&w, kind, &id, &stored.version, write).await {
                    Ok(new) => return respond(StatusCode::OK, &c, kind, &new),
                    Err(BackendError::VersionMismatch) if !conditional && attempt < WRITE_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        .await,
    )
}

async fn delete<B: ScimBackend>(
    State(s): St<B>,
    c: Ctx,
    Caller(w): Caller<B>,
    kind: ResourceKind,
    Path(id): Path<String>,
) -> Response {
    into_response(
        async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let stored = current(&s, &w, kind, &id).await?;
                let conditional = check_if_match(&c, &stored.version)?;
                match s.backend.delete(&w, kind, &id, &stored.version).await {
                    Ok(()) => return Ok(StatusCode::NO_CONTENT.into_response()),
                    Err(BackendError::VersionMismatch) if !conditional && attempt < WRITE_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_compare_weakly() {
        assert!(tags_match("W/\"3\"", "3"));
        assert!(tags_match("\"3\"", "3"));
        assert!(tags_match("W/\"1\", W/\"3\"", "3"));
        assert!(tags_match("*", "3"));
        assert!(!tags_match("W/\"4\"", "3"));
        assert!(!tags_match("", "3"));
    }

    #[test]
    fn issue15_a_list_of_entity_tags_matches_if_any_entry_does() {
        let headers = |fields: &[&str]| {
            let mut h = HeaderMap::new();
            for f in fields {
                h.append(header::IF_MATCH, HeaderValue::from_str(f).unwrap());
            }
            h
        };
        let check = |fields: &[&str], want: Option<bool>| {
            assert_eq!(precondition(&headers(fields), header::IF_MATCH, "3"), want, "{fields:?}");
        };
        check(&[], None);
        check(&["W/\"2\", W/\"3\""], Some(true));
        check(&["W/\"2\"", "W/\"3\""], Some(true));
        check(&["W/\"2\"", "*"], Some(true));
        check(&["W/\"2\"", "W/\"4\""], Some(false));
    }
}

//! Authentication and authorization at the HTTP edge (the design's section 10).
//!
//! [`authenticate`] is a layer over every route but the health probes: it reads
//! `Authorization: Bearer TOKEN`, hashes the token and looks the hash up in the store (through
//! the blocking pool), and puts the caller's [`Principal`] into the request's extensions. No
//! token, a malformed one or an unknown one is 401 and counts as a failure of the client's
//! address; an address with too many recent failures is answered 429 before any lookup, so the
//! throttle is no oracle. [`need`] is the per-route authorization: a route layer that answers
//! 403 unless the principal's scope allows the route's [`Need`].
//!
//! The presented token is never logged, audited, stored or echoed: messages here are fixed
//! texts, and only its hash leaves this module (into the store lookup).

use crate::ServerState;
use crate::auth::{self, Action, Scope};
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use tenure_core::error::Code;

/// Who is calling: the token that authenticated the request (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    /// The token's name: the actor in audit records and the approver of decisions.
    pub name: String,
    pub scope: Scope,
    /// The one source a `source` token may push for.
    pub source: Option<String>,
}

impl Principal {
    /// Whether this principal may perform `action`.
    pub fn may(&self, action: Action<'_>) -> bool {
        auth::allowed(self.scope, self.source.as_deref(), action)
    }

    /// `Ok` if this principal may perform `action`, else the 403 to answer.
    pub fn require(&self, action: Action<'_>) -> Result<(), ApiError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Forbidden,
                format!("a token with scope {} may not {}", self.scope, describe(action)),
            ))
        }
    }

    /// The actor recorded in the audit trail for what this principal does: `token:NAME`.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

fn describe(action: Action<'_>) -> String {
    match action {
        Action::Read => "read lifecycle state".into(),
        Action::Operate => "change lifecycle state (imports, events, apply, reconcile, tasks)".into(),
        Action::Approve => "decide approvals, requests or reviews".into(),
        Action::Audit => "verify or export the audit trail".into(),
        Action::Push { source } => format!("push records for source `{}`", tenure_core::text::escape(source)),
        Action::Administer => "administer the server".into(),
    }
}

/// Handlers take the principal the authentication layer inserted.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::new(Code::Unauthorized, "a bearer token is required"))
    }
}

/// The client's address, for the throttle. In-process tests have none: they share one.
fn client_ip(req: &Request) -> IpAddr {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip())
}

/// The token text of an `Authorization: Bearer` header, if there is one.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn throttled() -> Response {
    let mut res =
        ApiError::new(Code::Throttled, "too many failed attempts from this address; wait and retry").into_response();
    res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
    res
}

/// The authentication layer (see the module doc).
pub async fn authenticate(State(state): State<ServerState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let now = Instant::now();
    if state.throttle().blocked(ip, now) {
        return throttled();
    }
    let hash = match bearer(&req) {
        Some(t) if auth::looks_like_token(t) => auth::token_hash(t),
        found => {
            state.throttle().fail(ip, now);
            let message = if found.is_some() { "unknown token" } else { "a bearer token is required" };
            return ApiError::new(Code::Unauthorized, message).into_response();
        }
    };
    let looked_up = tenure_engine::blocking::store(state.app.store(), move |s| s.token_by_hash(&hash)).await;
    let record = match looked_up {
        Ok(Some(r)) => r,
        Ok(None) => {
            state.throttle().fail(ip, now);
            return ApiError::new(Code::Unauthorized, "unknown token").into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if state.should_touch(record.id, now) {
        let store = state.app.store().clone();
        let id = record.id;
        // Recording the last use is bookkeeping: the request does not wait for it.
        tokio::spawn(async move {
            if let Err(e) = tenure_engine::blocking::store(&store, move |s| s.touch_token(id)).await {
                tracing::warn!(error = %e, "cannot record a token's last use");
            }
        });
    }
    req.extensions_mut().insert(Principal {
        token_id: record.id,
        name: record.name,
        scope: record.scope,
        source: record.source,
    });
    next.run(req).await
}

/// What a route needs, for [`need`]. (Pushes are authorized by their handlers, which know the
/// source from the path: [`Principal::require`] with `Action::Push`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Operate,
    Approve,
    Audit,
    Administer,
}

impl Need {
    pub fn action(self) -> Action<'static> {
        match self {
            Need::Read => Action::Read,
            Need::Operate => Action::Operate,
            Need::Approve => Action::Approve,
            Need::Audit => Action::Audit,
            Need::Administer => Action::Administer,
        }
    }

    /// The scopes that may, for the authorization matrix and the OpenAPI descriptions.
    pub fn scopes(self) -> Vec<Scope> {
        Scope::ALL.iter().copied().filter(|s| auth::allowed(*s, None, self.action())).collect()
    }
}

/// The route layer that answers 403 unless the caller may do `n`:
/// `router.route_layer(axum::middleware::from_fn(access::need(Need::Read)))` style, wrapped up.
pub fn need(
    n: Need,
) -> impl Fn(Request, Next) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |req: Request, next: Next| {
        Box::pin(async move {
            let Some(p) = req.extensions().get::<Principal>() else {
                return ApiError::new(Code::Unauthorized, "a bearer token is required").into_response();
            };
            if let Err(e) = p.require(n.action()) {
                return e.into_response();
            }
            next.run(req).await
        })
    }
}

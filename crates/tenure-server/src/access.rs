//! Authentication and authorization at the HTTP edge (the design's section 10).
//!
//! [`authenticate`] is a layer over every route but the health probes: it reads
//! `Authorization: Bearer TOKEN`, hashes the token and looks the hash up in the store (through
//! the blocking pool), and puts the caller's [`Principal`] into the request's extensions. No
//! token, a malformed one or an unknown one is 401 and counts as a failure of the client's
//! address. The throttle refuses only failing attempts: from an address with too many recent
//! failures, a request without a well-formed token is answered 429 before any lookup, and one
//! whose token is unknown is answered 429 instead of 401; a valid token is always served, so a
//! neighbour's (or an attacker's) bad tokens behind the same proxy or NAT never lock out an HR
//! webhook or an IdP. The client's address is the peer's or, when the peer is one of `[server]
//! trusted_proxies`, the right-most `X-Forwarded-For` entry that is not a trusted proxy itself
//! (the one address the proxy saw; entries further left are whatever the client wrote).
//!
//! [`need`] is the per-route authorization: a route layer that answers
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

/// The client's address, for the throttle (see the module doc). In-process tests have no
/// peer: they share one address.
fn client_ip(state: &ServerState, req: &Request) -> IpAddr {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let server = &state.app.config().server;
    if !server.trusts(peer.ip()) {
        return peer.ip();
    }
    forwarded_client(req.headers(), peer.ip(), |ip| server.trusts(ip))
}

/// The right-most `X-Forwarded-For` address (over every such header, in order) that `trusted`
/// does not accept, else `peer`. An entry that is not an address ends the walk there: what
/// lies left of it cannot be attributed, so the last trusted hop is answered.
fn forwarded_client(headers: &axum::http::HeaderMap, peer: IpAddr, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        // `[v6]:port` and `v4:port` are what some proxies write.
        let bare = entry.strip_prefix('[').and_then(|e| e.split_once(']')).map_or(*entry, |(a, _)| a);
        let parsed = bare.parse::<IpAddr>().ok().or_else(|| bare.parse::<SocketAddr>().ok().map(|s| s.ip()));
        let Some(ip) = parsed else { return client };
        client = ip;
        if !trusted(ip) {
            return ip;
        }
    }
    client
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
    let ip = client_ip(&state, &req);
    let now = Instant::now();
    let blocked = state.throttle().blocked(ip, now);
    // A failure from a throttled address is answered 429 and not counted again.
    let refuse = |message: &'static str| {
        if blocked {
            return throttled();
        }
        state.throttle().fail(ip, now);
        ApiError::new(Code::Unauthorized, message).into_response()
    };
    let hash = match bearer(&req) {
        Some(t) if auth::looks_like_token(t) => auth::token_hash(t),
        Some(_) => return refuse("unknown token"),
        None => return refuse("a bearer token is required"),
    };
    let looked_up = tenure_engine::blocking::store(state.app.store(), move |s| s.token_by_hash(&hash)).await;
    let record = match looked_up {
        Ok(Some(r)) => r,
        Ok(None) => return refuse("unknown token"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_behind_trusted_proxies_is_the_right_most_untrusted_hop() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let trusted = |ip: IpAddr| matches!(ip, IpAddr::V4(v) if v.octets()[0] == 10);
        let check = |values: &[&str], want: &str| {
            let mut h = axum::http::HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", axum::http::HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(forwarded_client(&h, proxy, trusted), want.parse::<IpAddr>().unwrap(), "{values:?}");
        };
        check(&[], "10.0.0.1");
        check(&["198.51.100.7"], "198.51.100.7");
        // What the client wrote itself is left of what the proxy appended.
        check(&["203.0.113.9, 198.51.100.7"], "198.51.100.7");
        check(&["203.0.113.9", "198.51.100.7, 10.0.0.2"], "198.51.100.7");
        check(&["[2001:db8::5]:443"], "2001:db8::5");
        check(&["198.51.100.7:1234"], "198.51.100.7");
        check(&["203.0.113.9, garbage, 10.0.0.2"], "10.0.0.2");
    }
}

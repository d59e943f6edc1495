//! The HTTP side of the SCIM connector: one shared client, a semaphore, and the mapping from
//! transport failures and status codes to [`ConnectorError`]s.
//!
//! This layer never decides what a status means for an operation (a 404 is success for a delete
//! and a failure for a create); it hands back a [`Reply`] for every answer the server gave and only
//! turns transport failures (refused, reset, timed out) into errors. [`Reply::error`] is the one
//! place that classifies an unexpected status.
//!
//! The bearer token lives only in a `HeaderValue` marked sensitive, so neither `Debug` output nor
//! any error built here can contain it, and [`Http::error`], through which every message passes,
//! scrubs it from server text too. Errors do not repeat the configured URL either (a URL is
//! where credentials would hide): reqwest's errors are stripped of theirs (`without_url`).
//! Redirects are not followed: a SCIM service provider has no reason to send one, and following
//! it would send the bearer token wherever it points.

use crate::redact::Scrubber;
use crate::{ConnectorError, ErrorKind, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request, including reading the body, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The media type of RFC 7644 §3.1.
const SCIM_JSON: &str = "application/scim+json";

/// How the connector authenticates to the service provider.
pub(crate) enum Auth {
    None,
    /// `Bearer TOKEN` from `token_env` / `token_file`, marked sensitive.
    Static(HeaderValue),
    /// OAuth 2.0 client credentials.
    ClientCredentials(Box<super::oauth::OAuth>),
}

pub(crate) struct Http {
    /// The target name, for messages.
    target: String,
    client: reqwest::Client,
    /// The service provider's base URL, for instance `http://host/scim/v2`.
    base: Url,
    /// How requests authenticate.
    auth: Auth,
    /// No answer may be larger than this (`max_response_bytes`).
    max_response: usize,
    /// Erases the token from every message.
    scrub: Scrubber,
    /// INVARIANT: held across every request and its body, so at most `concurrency` requests are
    /// in flight at once.
    permits: Semaphore,
}

/// A server's answer, whatever its status.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) etag: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
    /// The OAuth token the request carried, to be scrubbed from any message about the answer.
    pub(crate) token: Option<String>,
}

impl Http {
    pub(crate) fn new(
        target: &str,
        url: &str,
        token: &str,
        oauth: Option<super::oauth::OAuth>,
        concurrency: usize,
        tls: &tenure_core::config::TlsSettings,
        max_response: usize,
    ) -> Result<Self> {
        let base = Url::parse(url)
            .map_err(|e| ConnectorError::permanent(format!("scim target `{target}`: the url is not valid: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ConnectorError::permanent(format!(
                "scim target `{target}`: the url must be an http or https url"
            )));
        }
        let auth = match oauth {
            Some(o) => Auth::ClientCredentials(Box::new(o)),
            None if token.is_empty() => Auth::None,
            None => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    ConnectorError::permanent(format!(
                        "scim target `{target}`: the token holds characters an HTTP header cannot carry"
                    ))
                })?;
                value.set_sensitive(true);
                Auth::Static(value)
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/scim+json, application/json"));
        let mut builder = reqwest::Client::builder();
        if base.scheme() == "https" {
            let verify = crate::tls::Verify::from_flag(tls.verify);
            builder = builder.tls_backend_preconfigured(crate::tls::client_config(
                target,
                "ca_file",
                tls.ca_file.as_deref(),
                verify,
            )?);
        }
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .map_err(|e| {
                ConnectorError::permanent(format!(
                    "scim target `{target}`: cannot build an HTTP client: {}",
                    e.without_url()
                ))
            })?;
        Ok(Self {
            target: target.to_string(),
            client,
            base,
            auth,
            max_response,
            scrub: Scrubber::new([token]),
            permits: Semaphore::new(concurrency.max(1)),
        })
    }

    /// The URL of `segments` below the base URL, each percent-encoded as one path segment, with a
    /// query string from `query`.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.set_query(None);
        if !query.is_empty() {
            url.set_query(Some(&super::filter::query_string(query)));
        }
        url
    }

    /// Sends one request and reads the whole answer. `what` names the step for messages.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Reply> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.error(ErrorKind::Permanent, what, "the connector is shut down"))?;
        let path = url.path().to_string();
        let bytes = match body {
            Some(body) => Some(
                serde_json::to_vec(body)
                    .map_err(|e| self.error(ErrorKind::Permanent, what, &format!("cannot encode the request: {e}")))?,
            ),
            None => None,
        };
        // With OAuth, a 401 may mean the token was revoked or rotated early: one more try with a
        // fresh token.
        for attempt in 0..2 {
            let mut req = self.client.request(method.clone(), url.clone());
            let mut token = None;
            match &self.auth {
                Auth::None => {}
                Auth::Static(value) => req = req.header(header::AUTHORIZATION, value.clone()),
                Auth::ClientCredentials(oauth) => {
                    let (value, t) = oauth.header().await?;
                    req = req.header(header::AUTHORIZATION, value);
                    token = Some(t);
                }
            }
            if let Some(bytes) = &bytes {
                req = req.header(header::CONTENT_TYPE, SCIM_JSON).body(bytes.clone());
            }
            if let Some(tag) = if_match
                && let Ok(tag) = HeaderValue::from_str(tag)
            {
                req = req.header(header::IF_MATCH, tag);
            }
            let resp = req.send().await.map_err(|e| self.transport_error(what, e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && attempt == 0
                && let (Auth::ClientCredentials(oauth), Some(t)) = (&self.auth, &token)
            {
                tracing::debug!(target: "tenure_connect::scim", scim_target = %self.target, "401 with a cached OAuth token; fetching a new one");
                oauth.refused(t).await;
                continue;
            }
            let headers = resp.headers();
            let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
            let retry_after = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let body = super::oauth::read_capped(resp, self.max_response).await.map_err(|why| {
                let kind = if why.contains("max_response_bytes") { ErrorKind::Permanent } else { ErrorKind::Transient };
                let mut e = self.error(kind, what, &why);
                if let Some(t) = &token {
                    e.message = Scrubber::new([t.as_str()]).clean(&e.message);
                }
                e
            })?;
            tracing::debug!(target: "tenure_connect::scim", scim_target = %self.target, %method, %path, status = status.as_u16(), "scim request");
            return Ok(Reply { status, etag, retry_after, body, token });
        }
        Err(self.error(ErrorKind::Permanent, what, "the server refused a freshly fetched OAuth token (HTTP 401)"))
    }

    /// How many OAuth tokens have been fetched (0 without OAuth).
    pub(crate) fn token_fetches(&self) -> u64 {
        match &self.auth {
            Auth::ClientCredentials(o) => o.fetches(),
            _ => 0,
        }
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> ConnectorError {
        let e = e.without_url();
        // A certificate that is not trusted will not become trusted by retrying.
        if let Some(why) = crate::tls::explain(&e) {
            return self.error(ErrorKind::Permanent, what, &why);
        }
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        // The innermost cause ("Connection refused (os error 111)") says the most; reqwest's own
        // message would repeat the URL (stripped above), which we already name by target.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let mut error = self.error(ErrorKind::Transient, what, &format!("{why}: {cause}"));
        if e.is_builder() {
            error.kind = ErrorKind::Permanent;
        }
        error
    }

    /// The one place a SCIM error message is made: it names the target and the step, and never
    /// holds the token, even when `why` is the server's own text.
    pub(crate) fn error(&self, kind: ErrorKind, what: &str, why: &str) -> ConnectorError {
        let message = self.scrub.clean(&format!("scim target `{}`: {what}: {why}", self.target));
        ConnectorError { kind, message, retry_after: None }
    }
}

#[cfg(test)]
impl Http {
    fn new_plain(target: &str, url: &str, token: &str, concurrency: usize) -> Result<Self> {
        Self::new(target, url, token, None, concurrency, &tenure_core::config::TlsSettings::default(), 1 << 20)
    }
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Decodes a JSON body. A body that is not the expected JSON is a permanent error: the URL
    /// most likely points at something that is not a SCIM service provider.
    pub(crate) fn json<T: DeserializeOwned>(&self, http: &Http, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            http.error(ErrorKind::Permanent, what, &format!("the server's answer is not the expected SCIM JSON: {e}"))
        })
    }

    /// The error for a status the caller did not expect. 429, 408 and 5xx are transient (with the
    /// server's `Retry-After` when it sent one); everything else is permanent.
    pub(crate) fn error(&self, http: &Http, what: &str) -> ConnectorError {
        let code = self.status.as_u16();
        let kind = if code == 429 || code == 408 || self.status.is_server_error() {
            ErrorKind::Transient
        } else {
            ErrorKind::Permanent
        };
        let mut why = format!("HTTP {code}");
        if let Some(detail) = self.detail() {
            why.push_str(": ");
            why.push_str(&detail);
        }
        let mut error = http.error(kind, what, &why);
        if let Some(t) = &self.token {
            error.message = Scrubber::new([t.as_str()]).clean(&error.message);
        }
        if kind == ErrorKind::Transient {
            error.retry_after = self.retry_after;
        }
        error
    }

    /// The `scimType` and `detail` of a SCIM error body (RFC 7644 §3.12), shortened and stripped
    /// of control characters so a hostile server cannot forge log lines.
    fn detail(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ScimErrorBody {
            detail: Option<String>,
            scim_type: Option<String>,
        }
        let body: ScimErrorBody = serde_json::from_slice(&self.body).ok()?;
        let text = match (body.scim_type, body.detail) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (Some(t), None) => t,
            (None, Some(d)) => d,
            (None, None) => return None,
        };
        Some(text.chars().filter(|c| !c.is_control()).take(300).collect())
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms a recipient must accept). A date in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT").map(|d| d.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y").map(|d| d.and_utc()))
        .ok()?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_forms() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let cases = [
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("Sat, 21 Nov 2026 12:00:30 GMT", Some(30)),
            ("Saturday, 21-Nov-26 12:01:00 GMT", Some(60)),
            ("Sat Nov 21 12:00:05 2026", Some(5)),
            ("Sat, 21 Nov 2026 11:00:00 GMT", Some(0)),
            ("-5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want.map(Duration::from_secs), "value {value:?}");
        }
    }

    #[tokio::test]
    async fn issue6_errors_carry_neither_the_url_nor_the_token() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let http =
            Http::new_plain("t", &format!("http://127.0.0.1:{port}/scim/v2?k=q-secret"), "tok-secret-1", 1).unwrap();
        let url = http.url(&["Users"], &[("filter", "userName eq \"q-secret\"")]);
        let e = http.send(Method::GET, url, None, None, "listing users").await.err().unwrap();
        assert!(e.is_transient(), "{e}");
        assert!(e.message.starts_with("scim target `t`: listing users: cannot connect: "), "{e}");
        assert!(!e.message.contains("q-secret") && !e.message.contains("/scim/v2"), "{e}");
        let e = http.error(ErrorKind::Permanent, "creating", "HTTP 401: bad token tok-secret-1");
        assert_eq!(e.message, "scim target `t`: creating: HTTP 401: bad token ***");
    }

    #[test]
    fn urls_encode_each_segment() {
        let http = Http::new_plain("t", "http://127.0.0.1:1/scim/v2/", "", 1).unwrap();
        let url = http.url(&["Users", "a/b?c#d"], &[("filter", "userName eq \"x\"")]);
        assert_eq!(url.as_str(), "http://127.0.0.1:1/scim/v2/Users/a%2Fb%3Fc%23d?filter=userName%20eq%20%22x%22");
    }

    #[test]
    fn token_stays_out_of_debug_output() {
        let http = Http::new_plain("t", "http://127.0.0.1:1/v2", "s3cr3t-token", 1).unwrap();
        let Auth::Static(auth) = &http.auth else { panic!("a static token") };
        assert!(!format!("{auth:?}").contains("s3cr3t"));
    }
}

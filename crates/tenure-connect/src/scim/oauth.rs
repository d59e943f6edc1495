//! OAuth 2.0 client credentials (RFC 6749 §4.4) for SCIM targets behind an authorization server.
//!
//! The token is fetched on first use and cached until shortly before it expires (a tenth of its
//! lifetime, at most a minute, early), so a burst of operations costs one token request. A 401
//! from the SCIM server drops the cached token, if it is still the one that was refused, and the
//! request is sent once more with a fresh one: tokens can be revoked or rotated before their
//! stated expiry. Concurrent callers wait for one fetch instead of each fetching.
//!
//! The token endpoint gets its own HTTP client: it trusts the system's roots (or
//! `token_ca_file`) and is always verified, whatever `tls_verify` says for the SCIM server,
//! because it receives the client secret. Redirects are not followed, for the same reason. The
//! secret and every token fetched are scrubbed from every message; the endpoint's error answer
//! (`{"error": "invalid_client", ...}`) is reported by its code and description only.

use crate::redact::Scrubber;
use crate::{ConnectorError, ErrorKind, Result};
use base64::Engine as _;
use reqwest::header::{self, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenure_core::config::{ClientAuth, OAuthSettings};

/// How large a token endpoint's answer may be.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct OAuth {
    target: String,
    client: reqwest::Client,
    token_url: reqwest::Url,
    client_id: String,
    secret: String,
    scope: Option<String>,
    auth: ClientAuth,
    scrub: Scrubber,
    cached: tokio::sync::Mutex<Option<Token>>,
    fetches: AtomicU64,
}

#[derive(Clone)]
struct Token {
    /// `Bearer ...`, marked sensitive.
    header: HeaderValue,
    value: String,
    /// When to fetch a new one; `None` when the server gave no lifetime (kept until a 401).
    refresh_at: Option<Instant>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuth {
    pub(crate) fn new(target: &str, s: &OAuthSettings) -> Result<OAuth> {
        let secret = crate::resolve_secret(&s.client_secret, &format!("scim target `{target}` client secret"))?;
        let token_url = reqwest::Url::parse(&s.token_url)
            .map_err(|e| ConnectorError::permanent(format!("scim target `{target}`: `token_url` is not valid: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT);
        if token_url.scheme() == "https" {
            let tls = crate::tls::client_config(
                target,
                "token_ca_file",
                s.token_ca_file.as_deref(),
                crate::tls::Verify::Full,
            )?;
            builder = builder.tls_backend_preconfigured(tls);
        }
        let client = builder.build().map_err(|e| {
            ConnectorError::permanent(format!(
                "scim target `{target}`: cannot build an HTTP client: {}",
                e.without_url()
            ))
        })?;
        Ok(OAuth {
            target: target.to_string(),
            client,
            token_url,
            client_id: s.client_id.clone(),
            scrub: Scrubber::new([secret.as_str()]),
            secret,
            scope: s.scope.clone(),
            auth: s.client_auth,
            cached: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many tokens have been fetched so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The `Authorization` header to send, and the token in it (for scrubbing).
    pub(crate) async fn header(&self) -> Result<(HeaderValue, String)> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && t.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok((t.header.clone(), t.value.clone()));
        }
        let token = self.fetch().await?;
        let out = (token.header.clone(), token.value.clone());
        *cached = Some(token);
        Ok(out)
    }

    /// Forgets `refused` (a token the SCIM server answered 401 to), unless it was already
    /// replaced.
    pub(crate) async fn refused(&self, refused: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == refused) {
            *cached = None;
        }
    }

    fn error(&self, kind: ErrorKind, why: &str, token: Option<&str>) -> ConnectorError {
        let mut message = self.scrub.clean(&format!("scim target `{}`: getting an OAuth token: {why}", self.target));
        if let Some(t) = token {
            message = Scrubber::new([t]).clean(&message);
        }
        ConnectorError { kind, message, retry_after: None }
    }

    async fn fetch(&self) -> Result<Token> {
        let (body, basic) = self.token_request()?;
        let mut req = self.client.post(self.token_url.clone()).header(header::ACCEPT, "application/json");
        if let Some(basic) = basic {
            req = req.header(header::AUTHORIZATION, basic);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let resp = req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let bytes =
            read_capped(resp, MAX_TOKEN_RESPONSE).await.map_err(|why| self.error(ErrorKind::Transient, &why, None))?;
        if !status.is_success() {
            let kind = if status.as_u16() == 429 || status.is_server_error() {
                ErrorKind::Transient
            } else {
                ErrorKind::Permanent
            };
            let detail = match serde_json::from_slice::<ErrorAnswer>(&bytes) {
                Ok(e) => match e.error_description {
                    Some(d) => format!(": {}: {}", cut(&e.error), cut(&d)),
                    None => format!(": {}", cut(&e.error)),
                },
                Err(_) => String::new(),
            };
            return Err(self.error(
                kind,
                &format!("the token endpoint answered HTTP {}{detail}", status.as_u16()),
                None,
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            self.error(ErrorKind::Permanent, "the token endpoint's answer is not an OAuth token response", None)
        })?;
        let token = answer.access_token;
        if let Some(t) = &answer.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(self.error(
                ErrorKind::Permanent,
                &format!("unsupported token type `{}`", cut(t)),
                Some(&token),
            ));
        }
        let lifetime = match answer.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
        let refresh_at = lifetime.map(|l| started + l.saturating_sub((l / 10).min(Duration::from_secs(60))));
        let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            self.error(ErrorKind::Permanent, "the token holds characters an HTTP header cannot carry", Some(&token))
        })?;
        header.set_sensitive(true);
        tracing::debug!(target: "tenure_connect::scim", scim_target = %self.target, ?lifetime, "fetched an OAuth token");
        Ok(Token { header, value: token, refresh_at })
    }

    /// The form body of the token request and, for `client_secret_basic`, the Authorization
    /// header (marked sensitive).
    fn token_request(&self) -> Result<(String, Option<HeaderValue>)> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        let basic = match self.auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.client_id), enc(&self.secret));
                let mut value =
                    HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
                        .map_err(|_| {
                            self.error(ErrorKind::Permanent, "the client id or secret cannot be sent", None)
                        })?;
                value.set_sensitive(true);
                Some(value)
            }
            ClientAuth::Post => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", &self.secret);
                None
            }
        };
        Ok((form.finish(), basic))
    }

    fn transport(&self, e: reqwest::Error) -> ConnectorError {
        let e = e.without_url();
        if let Some(why) = crate::tls::explain(&e) {
            return self.error(ErrorKind::Permanent, &why, None);
        }
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        self.error(ErrorKind::Transient, &format!("cannot reach the token endpoint: {cause}"), None)
    }
}

/// At most 200 characters of a server's text.
fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The whole body, unless it is larger than `max` bytes. The body is read as it streams in and
/// never buffered beyond `max`: the buffer grows by doubling, but never past the cap, and the
/// read stops at the first chunk that would pass it (so `concurrency` requests in flight hold at
/// most `concurrency * max` bytes of bodies).
pub(crate) async fn read_capped(mut resp: reqwest::Response, max: usize) -> std::result::Result<Vec<u8>, String> {
    let too_big = || format!("the answer is larger than {max} bytes (`max_response_bytes`)");
    let announced = resp.content_length();
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::with_capacity(announced.and_then(|n| usize::try_from(n).ok()).unwrap_or(0).min(max));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let need = body.len() + chunk.len();
                if need > max {
                    return Err(too_big());
                }
                if need > body.capacity() {
                    let grown = need.max(body.capacity().saturating_mul(2)).min(max);
                    body.reserve_exact(grown - body.len());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("reading the answer failed: {}", e.without_url())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Serves one chunked answer of `total` bytes in 64 KiB chunks to every connection; counts the
    /// bytes it managed to send.
    async fn chunked_server(total: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 4096];
                    let _ = sock.read(&mut head).await;
                    let start =
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if sock.write_all(start.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut left = total;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
                        if sock.write_all(&frame).await.is_err() {
                            return;
                        }
                        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        left -= n;
                    }
                    let _ = sock.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        (url, sent)
    }

    #[tokio::test]
    async fn issue15_a_body_is_never_buffered_beyond_the_cap() {
        let max = 3 * 1024 * 1024;
        // Under the cap: the whole body, in a buffer no larger than the cap (doubling from 64 KiB
        // chunks would have reached 4 MiB).
        let (url, _) = chunked_server(2_600_000).await;
        let resp = reqwest::get(&url).await.unwrap();
        let body = read_capped(resp, max).await.unwrap();
        assert_eq!(body.len(), 2_600_000);
        assert!(body.capacity() <= max, "a {} byte buffer for a {max} byte cap", body.capacity());

        // A 200 MB body: refused once the cap is passed.
        let (url, _) = chunked_server(200_000_000).await;
        let resp = reqwest::get(&url).await.unwrap();
        let e = read_capped(resp, max).await.unwrap_err();
        assert!(e.contains("larger than 3145728 bytes (`max_response_bytes`)"), "{e}");
    }
}

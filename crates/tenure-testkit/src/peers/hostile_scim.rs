//! A scripted SCIM service provider that misbehaves on purpose, for what no real server does
//! (endless pages, a server that ignores `startIndex`): an HTTP/1.1 server on 127.0.0.1, one
//! request per connection, running on a thread of its own so sync tests that run the `tenure`
//! binary can use it as well as async ones. Every request is counted and recorded.

use anyhow::{Context as _, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path without the query (`/scim/v2/Users`).
    pub path: String,
    /// The query's parameters, as sent (not percent-decoded).
    pub query: BTreeMap<String, String>,
}

impl Seen {
    /// A query parameter as a number (`startIndex`, `count`).
    pub fn number(&self, name: &str) -> Option<u64> {
        self.query.get(name).and_then(|v| v.parse().ok())
    }
}

type Script = dyn Fn(&Seen) -> (u16, String, std::time::Duration) + Send + Sync;

/// The running server; stopped when dropped.
pub struct HostileScim {
    /// The base URL, `http://127.0.0.1:PORT/scim/v2`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for HostileScim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl HostileScim {
    /// Answers every request with `script(request)`: a status and a JSON body.
    pub fn start(script: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> Result<HostileScim> {
        Self::start_slow(move |req| {
            let (status, body) = script(req);
            (status, body, std::time::Duration::ZERO)
        })
    }

    /// Answers every request with `script(request)`: a status, a JSON body, and how long to wait
    /// before answering (other requests are answered meanwhile).
    pub fn start_slow(
        script: impl Fn(&Seen) -> (u16, String, std::time::Duration) + Send + Sync + 'static,
    ) -> Result<HostileScim> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the hostile SCIM server")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/scim/v2", listener.local_addr()?);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let script: Arc<Script> = Arc::new(script);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let serve = async {
                    while let Ok((sock, _)) = listener.accept().await {
                        let (log, script) = (log.clone(), script.clone());
                        tokio::spawn(answer(sock, log, script));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(HostileScim { url, seen, stop: Some(stop) })
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many requests went to `path` (below the base URL, such as `/Users`).
    pub fn requests_to(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path.ends_with(path)).count()
    }
}

async fn answer(mut sock: tokio::net::TcpStream, log: Arc<Mutex<Vec<Seen>>>, script: Arc<Script>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
        if buf.len() > 1 << 20 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let req = Seen { method, path: path.to_string(), query };
    log.lock().unwrap_or_else(PoisonError::into_inner).push(req.clone());
    let (status, body, delay) = script(&req);
    tokio::time::sleep(delay).await;
    let head = format!(
        "HTTP/1.1 {status} Scripted\r\nConnection: close\r\nContent-Type: application/scim+json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A `ListResponse` (RFC 7644 §3.4.2) of `resources`, claiming `total` results from `start`.
pub fn list_response(resources: &[serde_json::Value], total: u64, start: u64) -> String {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
    .to_string()
}

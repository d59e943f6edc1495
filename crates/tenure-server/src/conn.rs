//! The accept loop: HTTP/1.1 connections served by hyper under the `[server]` connection limits.
//!
//! `axum::serve` gives no way to set hyper's timeouts or to bound the number of connections, so
//! a client that trickles a request's headers (slowloris) or simply opens sockets and sends
//! nothing keeps a file descriptor each for as long as it likes, until `/healthz` itself cannot
//! be accepted. This loop serves the same router with these limits:
//!
//! - **Header-read timeout.** Once a request's first byte has arrived, its headers must be
//!   complete within `header_read_timeout`, or the connection is closed.
//! - **Idle timeout.** A connection with no request under way (a fresh one before its first
//!   byte, a keep-alive one between requests) is closed after `idle_timeout`.
//! - **Slow clients.** While a request is under way, the time the server spends waiting for
//!   the client (for body bytes it has not sent, or for it to read response bytes) may not pass
//!   `body_timeout` plus one second per [`MIN_CLIENT_RATE`] bytes moved, nor `idle_timeout` in
//!   one stretch: a body trickled a byte a minute or a response read as slowly holds a
//!   connection no longer than a prompt client would, while a large import over a slow link
//!   still completes. A handler that takes long on its own is never cut off.
//! - **Bounded heads.** A request line and headers that do not fit a 64 KiB read buffer are
//!   refused (431); hyper checks after each read, so at most about twice that is ever held.
//! - **A cap, and a share of it per client.** At most `max_connections` are served at once,
//!   and at most `max_client_connections` from one client address (an IPv6 client by its /64;
//!   trusted proxies are exempt, their clients being many). At either cap a new connection takes
//!   the place of an idle one (one that has sent no byte of a request first, then the longest
//!   idle; closing an idle connection loses nothing: the client reconnects), so a flood of idle
//!   or slow sockets cannot keep a health probe or a webhook out.
//! - **Room for the probes.** When every connection at the cap has a request under way, a new
//!   one is taken on one of [`PROBE_SLOTS`] reserved slots: `/healthz` and `/readyz` are
//!   answered there, anything else gets `503 overloaded` with `Retry-After`, and the connection
//!   is closed. Past those slots a connection is answered the same 503 unread, and what it
//!   already sent is drained a moment so it sees the answer rather than a reset.
//!
//! Each connection has a small shared [`Activity`]: the requests under way (counted by the
//! service wrapper until each response has been written out and flushed), when it last became
//! idle, when the first byte of the next request arrived (seen by the IO wrapper), and how long
//! the current request has waited for the client. A watchdog in the connection's own task
//! applies the timeouts from it; the accept loop reads it to pick whom to evict. A connection
//! with a request under way is never evicted (the choice and the start of a request are one
//! atomic step). On shutdown every connection is told to finish (hyper's graceful shutdown:
//! idle ones close at once, responses under way are sent whole); what is still open after
//! `drain_timeout` is closed.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tenure_core::config::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// The client time a request may use before [`MIN_CLIENT_RATE`] applies.
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// Connections from one client address.
    pub max_client_connections: usize,
    /// How long shutdown waits for connections to finish.
    pub drain_timeout: Duration,
    /// Peers exempt from `max_client_connections` (reverse proxies).
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&tenure_core::config::ServerConfig::default())
    }
}

impl Limits {
    pub fn from_config(c: &tenure_core::config::ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            body_timeout: Duration::from_secs(c.body_timeout_secs),
            max_connections: c.max_connections.max(1),
            max_client_connections: c.max_client_connections.max(1),
            drain_timeout: Duration::from_secs(c.drain_timeout_secs),
            trusted_proxies: c.trusted_proxies.clone(),
        }
    }

    /// The connections one client address may hold.
    fn per_client(&self) -> usize {
        self.max_client_connections.min(self.max_connections)
    }
}

/// The slowest a client may send a body or read a response once `body_timeout` of waiting for
/// it has passed, in bytes a second: each such many bytes moved earns one more second.
pub const MIN_CLIENT_RATE: u64 = 16 * 1024;

/// Connections taken past the cap to answer the health probes (and 503 everything else).
pub const PROBE_SLOTS: usize = 4;

/// Refused connections at most being drained at once; past that one is closed at once.
const MAX_DRAINING: usize = 8;

/// File descriptors kept for everything but client connections: the store, the logs, the
/// connections to targets, the listener.
const RESERVED_DESCRIPTORS: usize = 64;

impl Limits {
    /// These limits with the cap lowered, if need be, below the process's open-file limit
    /// (`limit`, the soft `RLIMIT_NOFILE`) less [`RESERVED_DESCRIPTORS`] and the probe and
    /// drain slots: a cap the process cannot honour would let connections exhaust descriptors
    /// before the cap is reached.
    pub fn within(self, limit: Option<usize>) -> Self {
        let Some(limit) = limit else { return self };
        let room = limit.saturating_sub(RESERVED_DESCRIPTORS + PROBE_SLOTS + MAX_DRAINING).max(2);
        if self.max_connections <= room {
            return self;
        }
        tracing::warn!(
            max_connections = self.max_connections,
            open_file_limit = limit,
            serving = room,
            "`max_connections` in [server] is above what the open-file limit leaves; serving fewer (raise `ulimit -n` or LimitNOFILE)"
        );
        Self { max_connections: room, ..self }
    }
}

/// The process's soft open-file limit, where the system says (Linux's `/proc/self/limits`).
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// The largest request head (request line and headers) read, and so each connection's read
/// buffer.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// No time recorded (an [`Activity`] field).
const NONE: u64 = u64::MAX;

/// Set in [`Activity::state`] once the connection was chosen for eviction.
const EVICTED: usize = 1 << (usize::BITS - 1);

/// What one connection is doing, shared by its task, its IO and service wrappers and the
/// accept loop. Times are milliseconds since the loop's `epoch`.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Requests whose response is not written out yet, and [`EVICTED`]: one atomic word, so
    /// eviction (only of a connection with nothing under way) and the start of a request
    /// cannot interleave.
    state: AtomicUsize,
    /// Responses whose body is done but whose bytes may still sit in hyper's write buffer: they
    /// count as under way until the next flush.
    unflushed: AtomicUsize,
    /// When the connection last had no request under way ([`NONE`] while one is).
    idle_since: AtomicU64,
    /// When the first byte arrived since it became idle ([`NONE`] if none has).
    first_byte: AtomicU64,
    /// Since when a request under way has been waiting for the client: for body bytes it has
    /// not sent, or to read a response it does not take ([`NONE`] while nothing waits).
    stalled: AtomicU64,
    /// Milliseconds the current request has waited for the client, over finished stretches.
    waited: AtomicU64,
    /// Body and response bytes the current request has moved.
    moved: AtomicU64,
    /// Cancelled to close the connection (eviction at a cap).
    evict: CancellationToken,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let a = Self {
            epoch,
            state: AtomicUsize::new(0),
            unflushed: AtomicUsize::new(0),
            idle_since: AtomicU64::new(NONE),
            first_byte: AtomicU64::new(NONE),
            stalled: AtomicU64::new(NONE),
            waited: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            evict: CancellationToken::new(),
        };
        a.idle_since.store(a.now(), Ordering::SeqCst);
        a
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn in_flight(&self) -> usize {
        self.state.load(Ordering::SeqCst) & !EVICTED
    }

    fn begin(&self) {
        if self.state.fetch_add(1, Ordering::SeqCst) & !EVICTED == 0 {
            self.waited.store(0, Ordering::SeqCst);
            self.moved.store(0, Ordering::SeqCst);
            self.stalled.store(NONE, Ordering::SeqCst);
        }
        self.idle_since.store(NONE, Ordering::SeqCst);
    }

    fn end(&self) {
        if self.state.fetch_sub(1, Ordering::SeqCst) & !EVICTED == 1 {
            self.stalled.store(NONE, Ordering::SeqCst);
            self.first_byte.store(NONE, Ordering::SeqCst);
            self.idle_since.store(self.now(), Ordering::SeqCst);
        }
    }

    /// A response's body is done with; the request ends once its bytes are flushed.
    fn finished(&self) {
        self.unflushed.fetch_add(1, Ordering::SeqCst);
    }

    /// hyper flushed everything it had buffered to the socket.
    fn flushed(&self) {
        for _ in 0..self.unflushed.swap(0, Ordering::SeqCst) {
            self.end();
        }
    }

    /// Marks the connection evicted if, and only if, no request is under way.
    fn try_evict(&self) -> bool {
        self.state.compare_exchange(0, EVICTED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// When it became idle, if no request is under way.
    fn idle(&self) -> Option<u64> {
        if self.in_flight() > 0 {
            return None;
        }
        Some(self.idle_since.load(Ordering::SeqCst)).filter(|t| *t != NONE)
    }

    /// Bytes arrived: the first one since it became idle starts the header-read clock.
    fn read(&self) {
        if self.in_flight() == 0 && self.first_byte.load(Ordering::SeqCst) == NONE {
            let _ = self.first_byte.compare_exchange(NONE, self.now(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The client is being waited for (a read of the body or a write found nothing to do).
    fn waiting(&self) {
        if self.stalled.load(Ordering::SeqCst) == NONE {
            let _ = self.stalled.compare_exchange(NONE, self.now(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The client moved: `bytes` of body came or of response went.
    fn moved(&self, bytes: usize) {
        self.moved.fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::SeqCst);
        if self.stalled.load(Ordering::SeqCst) != NONE {
            let since = self.stalled.swap(NONE, Ordering::SeqCst);
            if since != NONE {
                self.waited.fetch_add(self.now().saturating_sub(since), Ordering::SeqCst);
            }
        }
    }

    /// Why the connection should be closed now, if a timeout has passed.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        self.expired_at(limits, self.now())
    }

    fn expired_at(&self, limits: &Limits, now: u64) -> Option<&'static str> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE);
        let Some(since) = self.idle() else {
            // A request under way is closed only for the client's slowness: waiting on it for
            // the idle timeout in one stretch, or in all past what its bytes earned. A handler
            // that takes long on its own is never cut off.
            let stalled = self.stalled.load(Ordering::SeqCst);
            if stalled == NONE {
                return None;
            }
            let stretch = now.saturating_sub(stalled);
            if stretch >= ms(limits.idle_timeout) {
                return Some("the client stalled a request");
            }
            let waited = self.waited.load(Ordering::SeqCst).saturating_add(stretch);
            let earned = self.moved.load(Ordering::SeqCst).saturating_mul(1000) / MIN_CLIENT_RATE;
            return (waited >= ms(limits.body_timeout).saturating_add(earned))
                .then_some("the client sent or read a request too slowly");
        };
        match self.first_byte.load(Ordering::SeqCst) {
            NONE => (now.saturating_sub(since) >= ms(limits.idle_timeout)).then_some("idle timeout"),
            first => (now.saturating_sub(first) >= ms(limits.header_read_timeout)).then_some("header read timeout"),
        }
    }
}

/// Counts a request as under way until its response body is done with and flushed.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// The socket, watched: every read that brings bytes is reported to the [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl Watched {
    /// A write that waits is the client not reading; one that goes is progress.
    fn wrote(&self, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.waiting(),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.moved(*n),
            Poll::Ready(_) => {}
        }
    }
}

/// A request's body, watched: a read that waits is the client not sending, one that yields a
/// frame is progress.
struct WatchedBody {
    inner: Incoming,
    activity: Arc<Activity>,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Pending => self.activity.waiting(),
            Poll::Ready(Some(Ok(f))) => self.activity.moved(f.data_ref().map_or(0, bytes::Bytes::len)),
            Poll::Ready(_) => self.activity.moved(0),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // hyper flushes the socket only once its own write buffer is empty: a response
        // finished before this flush is now wholly handed to the kernel.
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.activity.flushed();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The key a client address counts under: IPv4 as is (also when written as IPv6), IPv6 by
/// its /64, the block one host is given.
fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The connections being served, for the caps and for shutdown.
#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, (IpAddr, Arc<Activity>)>,
    per_client: HashMap<IpAddr, usize>,
}

impl Registry {
    fn remove(&mut self, id: u64) {
        let Some((key, _)) = self.open.remove(&id) else { return };
        if let Some(n) = self.per_client.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&key);
            }
        }
    }

    /// Evicts one idle connection among those `of` selects: one that has sent no byte of a
    /// request first, then the longest idle. Whether one was.
    fn evict_one(&mut self, of: impl Fn(IpAddr) -> bool) -> bool {
        let mut idle: Vec<((bool, u64), u64)> = self
            .open
            .iter()
            .filter(|(_, (key, _))| of(*key))
            .filter_map(|(id, (_, a))| a.idle().map(|t| ((a.first_byte.load(Ordering::SeqCst) != NONE, t), *id)))
            .collect();
        idle.sort_unstable();
        for (_, id) in idle {
            let Some((_, victim)) = self.open.get(&id) else { continue };
            // A request may have begun since it was seen idle: it is then left alone.
            if victim.try_evict() {
                victim.evict.cancel();
                self.remove(id);
                tracing::debug!("at a connection cap: closing an idle connection");
                return true;
            }
        }
        false
    }
}

type Shared = Arc<Mutex<Registry>>;

fn lock(r: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    registry: Shared,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.registry).remove(self.id);
    }
}

/// What the accept loop does with a new connection.
enum Admit {
    /// Served under this id.
    Serve(u64, Arc<Activity>),
    /// At a cap with every connection there busy: only the probes are answered.
    Probe,
}

/// Registers a new connection from `peer`, evicting an idle one at either cap.
fn admit(registry: &Shared, epoch: Instant, limits: &Limits, peer: IpAddr) -> Admit {
    let mut r = lock(registry);
    let key = client_key(peer);
    let exempt = limits.trusted_proxies.iter().any(|n| n.contains(peer));
    if !exempt && r.per_client.get(&key).copied().unwrap_or(0) >= limits.per_client() && !r.evict_one(|k| k == key) {
        return Admit::Probe;
    }
    if r.open.len() >= limits.max_connections && !r.evict_one(|_| true) {
        return Admit::Probe;
    }
    let id = r.next;
    r.next = r.next.wrapping_add(1);
    let activity = Arc::new(Activity::new(epoch));
    r.open.insert(id, (key, activity.clone()));
    *r.per_client.entry(key).or_insert(0) += 1;
    Admit::Serve(id, activity)
}

/// The body of the answer to a connection over the cap.
fn busy_body() -> String {
    format!(
        "{{\"code\":\"{}\",\"message\":\"every connection has a request under way; retry in a moment\"}}",
        tenure_core::error::Code::Overloaded.as_str()
    )
}

/// The answer to a connection over the cap, written without reading anything.
fn busy() -> Vec<u8> {
    let body = busy_body();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether an accept error means the process is out of file descriptors (or the system is).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// A counter of slots in use, released by the guard.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        if count.fetch_add(1, Ordering::SeqCst) < max {
            Some(Self(count.clone()))
        } else {
            count.fetch_sub(1, Ordering::SeqCst);
            None
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The refusal warning, at most once per [`Refusals::EVERY`] with the count since the last.
#[derive(Default)]
struct Refusals {
    last: Option<Instant>,
    since: u64,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn refused(&mut self, now: Instant) {
        self.since = self.since.saturating_add(1);
        if self.last.is_none_or(|at| now.duration_since(at) >= Self::EVERY) {
            tracing::warn!(
                refused = self.since,
                "at the connection cap with every connection busy: connections were answered 503"
            );
            self.last = Some(now);
            self.since = 0;
        }
    }
}

/// Answers `stream` 503 unread, then drains what it sends for a moment (bounded in bytes, time
/// and in how many are drained at once) so the client reads the answer rather than a reset.
fn refuse(stream: TcpStream, draining: &Arc<AtomicUsize>) {
    // A fresh socket's send buffer is empty, so this does not block.
    let _ = stream.try_write(&busy());
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let Some(slot) = Slot::take(draining, MAX_DRAINING) else { return };
    tokio::spawn(async move {
        let _slot = slot;
        let mut stream = stream;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let mut left = 64 * 1024usize;
            while left > 0 {
                match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                    Ok(n) if n > 0 => left = left.saturating_sub(n),
                    _ => break,
                }
            }
        })
        .await;
    });
}

/// Serves `router` on `listener` under `limits` until `stop` is cancelled; then stops accepting,
/// tells every connection to finish (idle ones close at once), and returns once every
/// connection has closed or `drain_timeout` has passed, closing what is left.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let registry: Shared = Arc::default();
    let epoch = Instant::now();
    let tracker = tokio_util::task::TaskTracker::new();
    let kill = CancellationToken::new();
    let limits = Arc::new(limits);
    let probing: Arc<AtomicUsize> = Arc::default();
    let draining: Arc<AtomicUsize> = Arc::default();
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if out_of_descriptors(&e) {
                    tracing::warn!(error = %e, "out of file descriptors: lower `max_connections` in [server] or raise the limit (ulimit -n)");
                    // Free one: an idle connection.
                    lock(&registry).evict_one(|_| true);
                }
                // Accept errors are per connection (a reset before accept) or resource
                // exhaustion; a short pause lets either pass without spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, stop, kill, limits) = (router.clone(), stop.clone(), kill.clone(), limits.clone());
        match admit(&registry, epoch, &limits, peer.ip()) {
            Admit::Serve(id, activity) => {
                let registered = Registered { registry: registry.clone(), id };
                tracker.spawn(async move {
                    let _registered = registered;
                    connection(stream, peer, router, activity, &limits, stop, kill).await;
                });
            }
            Admit::Probe => match Slot::take(&probing, PROBE_SLOTS) {
                Some(slot) => {
                    tracker.spawn(async move {
                        let _slot = slot;
                        probe(stream, peer, router, &limits, kill).await;
                    });
                }
                None => {
                    refusals.refused(Instant::now());
                    refuse(stream, &draining);
                }
            },
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(limits.drain_timeout, tracker.wait()).await.is_err() {
        tracing::warn!(open = tracker.len(), "connections still open after `drain_timeout` in [server]: closing them");
        kill.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    }
}

/// The longest a connection on a probe slot is kept, head to answer.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// Serves one request on a probe slot: `/healthz` and `/readyz` through the router, anything
/// else `503 overloaded`; then closes.
async fn probe(stream: TcpStream, peer: SocketAddr, router: Router, limits: &Limits, kill: CancellationToken) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let router = router.clone();
        let probe = req.method() == hyper::Method::GET && matches!(req.uri().path(), "/healthz" | "/readyz");
        req.extensions_mut().insert(ConnectInfo(peer));
        async move {
            if probe {
                return router.oneshot(req.map(Body::new)).await;
            }
            let mut res = hyper::Response::new(Body::from(busy_body()));
            *res.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            let h = res.headers_mut();
            h.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            h.insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
            Ok(res)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(limits.header_read_timeout.min(PROBE_DEADLINE))
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        done = tokio::time::timeout(PROBE_DEADLINE, conn) => {
            if let Ok(Err(e)) = done {
                tracing::debug!(error = %e, "a probe-slot connection ended with an error");
            }
        }
        () = kill.cancelled() => {}
    }
}

/// Serves one connection until the client closes it, a limit closes it, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    activity: Arc<Activity>,
    limits: &Limits,
    stop: CancellationToken,
    kill: CancellationToken,
) {
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let (router, activity) = (router.clone(), seen.clone());
        activity.begin();
        let guard = InFlight(activity.clone());
        req.extensions_mut().insert(ConnectInfo(peer));
        let req = req.map(|inner| Body::new(WatchedBody { inner, activity }));
        async move {
            let res = router.oneshot(req).await;
            // The request stays under way until hyper has taken (or dropped) the whole body,
            // and then until its bytes are flushed.
            res.map(|r| {
                r.map(|b| {
                    Body::new(b.map_frame(move |f| {
                        let _ = &guard;
                        f
                    }))
                })
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below enforces both limits; hyper's own header timer is the backstop for
    // a head that started arriving before the watchdog saw a byte.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout + limits.idle_timeout)
        // A head larger than this is refused (431), so a connection holds about this much read
        // buffer (twice at most): tens of MiB for the default cap, not hyper's ~400 KiB each.
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let tick = (limits.header_read_timeout.min(limits.idle_timeout).min(limits.body_timeout) / 10)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let (mut stopping, mut evicted) = (false, false);
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = kill.cancelled() => return,
            () = activity.evict.cancelled(), if !evicted => {
                evicted = true;
                // Evicted while idle; a request that began in the same instant is finished
                // first, its connection closed after it.
                if activity.in_flight() == 0 {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                // Idle connections close at once; a response under way is sent whole first.
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(tick) => {
                if let Some(why) = activity.expired(limits) {
                    tracing::debug!(reason = why, "closing a connection");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 2,
            max_client_connections: 64,
            drain_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
        }
    }

    const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room_and_busy_ones_never_do() {
        let registry: Shared = Arc::default();
        let epoch = Instant::now();
        let l = limits();
        let Admit::Serve(_, first) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        let Admit::Serve(_, second) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        first.idle_since.store(5, Ordering::SeqCst);
        second.idle_since.store(9, Ordering::SeqCst);
        let Admit::Serve(_, third) = admit(&registry, epoch, &l, ME) else { panic!("an idle one makes room") };
        assert!(first.evict.is_cancelled() && !second.evict.is_cancelled(), "the longest idle goes first");
        second.begin();
        third.begin();
        assert!(matches!(admit(&registry, epoch, &l, ME), Admit::Probe), "every connection is busy");
        assert!(!second.evict.is_cancelled() && !third.evict.is_cancelled());
        third.end();
        assert!(matches!(admit(&registry, epoch, &l, ME), Admit::Serve(..)), "an idle one again");
        assert!(third.evict.is_cancelled());
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(limits().within(None).max_connections, 2);
        let big = Limits { max_connections: 512, ..limits() };
        assert_eq!(big.clone().within(Some(20_000)).max_connections, 512);
        assert_eq!(big.clone().within(Some(256)).max_connections, 256 - 64 - PROBE_SLOTS - MAX_DRAINING);
        assert_eq!(big.within(Some(10)).max_connections, 2);
        assert!(open_file_limit().is_none_or(|n| n > 0));
    }

    #[test]
    fn the_timeouts_apply_only_while_no_request_is_under_way() {
        let a = Activity::new(Instant::now());
        let at = |s: u64| s * 1000 + 100_000;
        a.idle_since.store(at(0), Ordering::SeqCst);
        assert_eq!(a.expired_at(&limits(), at(59)), None);
        assert_eq!(a.expired_at(&limits(), at(61)), Some("idle timeout"));
        // Headers begun 11 s ago are late; begun 9 s ago they are not.
        a.first_byte.store(at(50), Ordering::SeqCst);
        assert_eq!(a.expired_at(&limits(), at(61)), Some("header read timeout"));
        assert_eq!(a.expired_at(&limits(), at(59)), None);
        a.begin();
        assert_eq!(a.expired_at(&limits(), at(100)), None, "a request under way is never timed out here");
        // Unless the client stalls it: waiting for its body (or its reading) for the idle
        // timeout.
        let l = Limits { body_timeout: Duration::from_secs(3600), ..limits() };
        a.stalled.store(at(100), Ordering::SeqCst);
        assert_eq!(a.expired_at(&l, at(159)), None);
        assert_eq!(a.expired_at(&l, at(161)), Some("the client stalled a request"));
        a.stalled.store(NONE, Ordering::SeqCst);
        assert_eq!(a.expired_at(&l, at(161)), None, "progress clears the stall");
        a.end();
        assert_eq!(a.expired(&limits()), None, "the request's end starts a new idle period");
    }

    #[test]
    fn a_request_whose_client_trickles_is_closed_once_its_waiting_passes_what_its_bytes_earned() {
        let a = Activity::new(Instant::now());
        a.begin();
        let l = limits();
        // A byte every 20 s: no stretch reaches the idle timeout, but the waits add up past
        // the body timeout (30 s) in two of them.
        let base = a.now();
        let mut closed_at = None;
        for i in 0..10u64 {
            a.stalled.store(base + i * 20_000, Ordering::SeqCst);
            if let Some(why) = a.expired_at(&l, base + i * 20_000 + 19_999) {
                assert_eq!(why, "the client sent or read a request too slowly");
                closed_at = Some(i);
                break;
            }
            a.stalled.store(NONE, Ordering::SeqCst);
            a.waited.fetch_add(19_999, Ordering::SeqCst);
            a.moved.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(closed_at, Some(1), "closed on the second stretch");
        // A client that moves bytes at the minimum rate earns its time: 64 KiB earns 4 s more.
        let b = Activity::new(Instant::now());
        b.begin();
        b.moved.store(4 * MIN_CLIENT_RATE, Ordering::SeqCst);
        b.waited.store(33_000, Ordering::SeqCst);
        b.stalled.store(1_000, Ordering::SeqCst);
        assert_eq!(b.expired_at(&l, 1_500), None, "30 s + 4 s earned, 33.5 s waited");
        assert!(b.expired_at(&l, 2_100).is_some(), "34.1 s waited");
        // A new request starts from nothing.
        b.end();
        b.begin();
        assert_eq!(b.waited.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn one_client_address_holds_at_most_its_share_and_trusted_proxies_are_exempt() {
        let registry: Shared = Arc::default();
        let epoch = Instant::now();
        let l = Limits { max_connections: 10, max_client_connections: 2, ..limits() };
        let other: IpAddr = [10, 0, 0, 2].into();
        let Admit::Serve(_, a1) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        let Admit::Serve(_, a2) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        a1.begin();
        a2.begin();
        assert!(matches!(admit(&registry, epoch, &l, ME), Admit::Probe), "its share is busy");
        assert!(matches!(admit(&registry, epoch, &l, other), Admit::Serve(..)), "another client is served");
        // Its own idle connection makes room for it, nobody else's.
        a2.end();
        assert!(matches!(admit(&registry, epoch, &l, ME), Admit::Serve(..)));
        assert!(a2.evict.is_cancelled());
        let proxied = Limits { trusted_proxies: vec![IpNet::parse("127.0.0.1").unwrap()], ..l };
        assert!(matches!(admit(&registry, epoch, &proxied, ME), Admit::Serve(..)), "a proxy is exempt");
        // An IPv6 client counts by its /64.
        let l = Limits { max_client_connections: 1, ..limits() };
        let v6 = Arc::<Mutex<Registry>>::default();
        let Admit::Serve(_, c) = admit(&v6, epoch, &l, "2001:db8::1".parse().unwrap()) else { panic!("room") };
        c.begin();
        assert!(matches!(admit(&v6, epoch, &l, "2001:db8::2".parse().unwrap()), Admit::Probe));
    }

    #[test]
    fn eviction_prefers_connections_that_sent_nothing_and_never_takes_one_that_began() {
        let registry: Shared = Arc::default();
        let epoch = Instant::now();
        let l = limits();
        let Admit::Serve(_, old) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        let Admit::Serve(_, silent) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        old.idle_since.store(1, Ordering::SeqCst);
        old.first_byte.store(2, Ordering::SeqCst);
        silent.idle_since.store(50, Ordering::SeqCst);
        assert!(matches!(admit(&registry, epoch, &l, ME), Admit::Serve(..)));
        assert!(silent.evict.is_cancelled() && !old.evict.is_cancelled(), "the silent one goes first");
        // Eviction and the start of a request are one step: once evicted, a request that
        // begins still counts (and the connection finishes it); once begun, never evicted.
        let a = Activity::new(epoch);
        a.begin();
        assert!(!a.try_evict());
        a.end();
        assert!(a.try_evict());
        a.begin();
        assert_eq!(a.in_flight(), 1);
        assert_eq!(a.idle(), None);
        // A registry entry goes with its guard, however the task ends.
        let registry: Shared = Arc::default();
        let Admit::Serve(id, _) = admit(&registry, epoch, &l, ME) else { panic!("room") };
        let guard = Registered { registry: registry.clone(), id };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("a handler panicked");
        }));
        assert!(lock(&registry).open.is_empty() && lock(&registry).per_client.is_empty());
    }

    #[test]
    fn a_finished_response_is_under_way_until_it_is_flushed() {
        let a = Arc::new(Activity::new(Instant::now()));
        a.begin();
        drop(InFlight(a.clone()));
        assert_eq!(a.idle(), None, "the body is done but its bytes are still buffered");
        a.flushed();
        assert!(a.idle().is_some());
    }
}

//! The accept loop: HTTP/1.1 connections served by hyper under the `[server]` connection limits.
//!
//! `axum::serve` gives no way to set hyper's timeouts or to bound the number of connections, so
//! a client that trickles a request's headers (slowloris) or simply opens sockets and sends
//! nothing keeps a file descriptor each for as long as it likes, until `/healthz` itself cannot
//! be accepted. This loop serves the same router with three limits:
//!
//! - **Header-read timeout.** Once a request's first byte has arrived, its headers must be
//!   complete within `header_read_timeout`, or the connection is closed.
//! - **Idle timeout.** A connection with no request under way (a fresh one before its first
//!   byte, a keep-alive one between requests) is closed after `idle_timeout`.
//! - **Stalled requests.** A request under way whose client sends no body byte, or reads no
//!   response byte, for `idle_timeout` is closed (a body trickled byte by byte holds a
//!   connection as surely as slow headers do). A handler that takes long on its own is never
//!   cut off.
//! - **Bounded heads.** A request line and headers that do not fit a 64 KiB read buffer are
//!   refused (431); hyper checks after each read, so at most about twice that is ever held.
//! - **A cap.** At most `max_connections` are served at once. At the cap, a new connection
//!   takes the place of the connection that has been idle longest (closing an idle connection
//!   loses nothing: the client reconnects), so a flood of idle or slow sockets cannot keep a
//!   health probe or a webhook out; only when every connection has a request under way is the
//!   new one answered `503` with `Retry-After` and closed.
//!
//! Each connection has a small shared [`Activity`]: the requests under way (counted by the
//! service wrapper until each response body is finished or dropped), when it last became idle,
//! and when the first byte of the next request arrived (seen by the IO wrapper). A watchdog in
//! the connection's own task applies the two timeouts from it; the accept loop reads it to pick
//! whom to evict. A connection with a request under way is never closed by these limits, and
//! on shutdown it is let finish (hyper's graceful shutdown) while idle ones are closed at once.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
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
            max_connections: c.max_connections.max(1),
        }
    }
}

/// File descriptors kept for everything but client connections: the store, the logs, the
/// connections to targets, the listener.
const RESERVED_DESCRIPTORS: usize = 64;

impl Limits {
    /// These limits with the cap lowered, if need be, below the process's open-file limit
    /// (`limit`, the soft `RLIMIT_NOFILE`) less [`RESERVED_DESCRIPTORS`]: a cap the process
    /// cannot honour would let connections exhaust descriptors before the cap is reached.
    pub fn within(self, limit: Option<usize>) -> Self {
        let Some(limit) = limit else { return self };
        let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(2);
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

/// What one connection is doing, shared by its task, its IO and service wrappers and the
/// accept loop. Times are milliseconds since the loop's `epoch`.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Requests whose response is not finished yet.
    in_flight: AtomicUsize,
    /// When the connection last had no request under way ([`NONE`] while one is).
    idle_since: AtomicU64,
    /// When the first byte arrived since it became idle ([`NONE`] if none has).
    first_byte: AtomicU64,
    /// Since when a request under way has been waiting for the client: for body bytes it has
    /// not sent, or to read a response it does not take ([`NONE`] while nothing waits).
    stalled: AtomicU64,
    /// Cancelled to close the connection if it is idle (eviction at the cap).
    evict: CancellationToken,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let a = Self {
            epoch,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(NONE),
            first_byte: AtomicU64::new(NONE),
            stalled: AtomicU64::new(NONE),
            evict: CancellationToken::new(),
        };
        a.idle_since.store(a.now(), Ordering::SeqCst);
        a
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.idle_since.store(NONE, Ordering::SeqCst);
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.stalled.store(NONE, Ordering::SeqCst);
            self.first_byte.store(NONE, Ordering::SeqCst);
            self.idle_since.store(self.now(), Ordering::SeqCst);
        }
    }

    /// When it became idle, if no request is under way.
    fn idle(&self) -> Option<u64> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.idle_since.load(Ordering::SeqCst)).filter(|t| *t != NONE)
    }

    /// Bytes arrived: the first one since it became idle starts the header-read clock.
    fn read(&self) {
        if self.in_flight.load(Ordering::SeqCst) == 0 && self.first_byte.load(Ordering::SeqCst) == NONE {
            let _ = self.first_byte.compare_exchange(NONE, self.now(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The client is being waited for (a read of the body or a write found nothing to do).
    fn waiting(&self) {
        if self.stalled.load(Ordering::SeqCst) == NONE {
            let _ = self.stalled.compare_exchange(NONE, self.now(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The client moved: body bytes came or response bytes went.
    fn moved(&self) {
        if self.stalled.load(Ordering::SeqCst) != NONE {
            self.stalled.store(NONE, Ordering::SeqCst);
        }
    }

    /// Why the connection should be closed now, if a timeout has passed.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        self.expired_at(limits, self.now())
    }

    fn expired_at(&self, limits: &Limits, now: u64) -> Option<&'static str> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE);
        let Some(since) = self.idle() else {
            // A request under way is closed only when the client has stalled it for the idle
            // timeout (a body trickled or never sent, a response never read); a handler that
            // takes long on its own is never cut off.
            let stalled = self.stalled.load(Ordering::SeqCst);
            return (stalled != NONE && now.saturating_sub(stalled) >= ms(limits.idle_timeout))
                .then_some("the client stalled a request");
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE);
        match self.first_byte.load(Ordering::SeqCst) {
            NONE => (now.saturating_sub(since) >= ms(limits.idle_timeout)).then_some("idle timeout"),
            first => (now.saturating_sub(first) >= ms(limits.header_read_timeout)).then_some("header read timeout"),
        }
    }
}

/// Counts a request as under way until its response body is done with.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
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
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.moved(),
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
            Poll::Ready(_) => self.activity.moved(),
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
        Pin::new(&mut self.inner).poll_flush(cx)
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

/// The connections being served, for the cap and for shutdown.
#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Arc<Activity>>,
}

type Shared = Arc<Mutex<Registry>>;

fn lock(r: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the accept loop does with a new connection.
enum Admit {
    /// Served under this id.
    Serve(u64, Arc<Activity>),
    /// At the cap with every connection busy.
    Refuse,
}

/// Registers a new connection, evicting the longest-idle one at the cap.
fn admit(registry: &Shared, epoch: Instant, max: usize) -> Admit {
    let mut r = lock(registry);
    if r.open.len() >= max {
        let oldest = r.open.iter().filter_map(|(id, a)| a.idle().map(|t| (t, *id))).min().map(|(_, id)| id);
        match oldest.and_then(|id| r.open.remove(&id)) {
            Some(victim) => {
                tracing::debug!("at the connection cap: closing the longest-idle connection");
                victim.evict.cancel();
            }
            None => return Admit::Refuse,
        }
    }
    let id = r.next;
    r.next = r.next.wrapping_add(1);
    let activity = Arc::new(Activity::new(epoch));
    r.open.insert(id, activity.clone());
    Admit::Serve(id, activity)
}

/// The answer to a connection over the cap, written without reading anything.
fn busy() -> Vec<u8> {
    let body = format!(
        "{{\"code\":\"{}\",\"message\":\"every connection has a request under way; retry in a moment\"}}",
        tenure_core::error::Code::Overloaded.as_str()
    );
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

/// Serves `router` on `listener` under `limits` until `stop` is cancelled; then stops accepting,
/// closes idle connections, lets requests under way finish and returns once every connection
/// has closed.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let registry: Shared = Arc::default();
    let epoch = Instant::now();
    let tracker = tokio_util::task::TaskTracker::new();
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
                    // Free one: the longest-idle connection.
                    let mut r = lock(&registry);
                    let oldest = r.open.iter().filter_map(|(id, a)| a.idle().map(|t| (t, *id))).min().map(|(_, id)| id);
                    if let Some(victim) = oldest.and_then(|id| r.open.remove(&id)) {
                        victim.evict.cancel();
                    }
                }
                // Accept errors are per connection (a reset before accept) or resource
                // exhaustion; a short pause lets either pass without spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (id, activity) = match admit(&registry, epoch, limits.max_connections) {
            Admit::Serve(id, a) => (id, a),
            Admit::Refuse => {
                tracing::warn!("at the connection cap with every connection busy: a connection was refused");
                // A fresh socket's send buffer is empty, so this does not block.
                let _ = stream.try_write(&busy());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, registry, stop) = (router.clone(), registry.clone(), stop.clone());
        tracker.spawn(async move {
            connection(stream, peer, router, activity, limits, stop).await;
            lock(&registry).open.remove(&id);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until the client closes it, a limit closes it, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    activity: Arc<Activity>,
    limits: Limits,
    stop: CancellationToken,
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
            // The request stays under way until hyper has sent (or dropped) the whole body.
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
    let tick = (limits.header_read_timeout.min(limits.idle_timeout) / 10)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.evict.cancelled(), if activity.idle().is_some() => return,
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                if activity.idle().is_some() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(tick) => {
                if let Some(why) = activity.expired(&limits) {
                    tracing::debug!(reason = why, "closing a connection");
                    return;
                }
                if stopping && activity.idle().is_some() {
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
            max_connections: 2,
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room_and_busy_ones_never_do() {
        let registry: Shared = Arc::default();
        let epoch = Instant::now();
        let Admit::Serve(_, first) = admit(&registry, epoch, 2) else { panic!("room") };
        let Admit::Serve(_, second) = admit(&registry, epoch, 2) else { panic!("room") };
        first.idle_since.store(5, Ordering::SeqCst);
        second.idle_since.store(9, Ordering::SeqCst);
        let Admit::Serve(_, third) = admit(&registry, epoch, 2) else { panic!("an idle one makes room") };
        assert!(first.evict.is_cancelled() && !second.evict.is_cancelled(), "the longest idle goes first");
        second.begin();
        third.begin();
        assert!(matches!(admit(&registry, epoch, 2), Admit::Refuse), "every connection is busy");
        assert!(!second.evict.is_cancelled() && !third.evict.is_cancelled());
        third.end();
        assert!(matches!(admit(&registry, epoch, 2), Admit::Serve(..)), "an idle one again");
        assert!(third.evict.is_cancelled());
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(limits().within(None).max_connections, 2);
        let big = Limits { max_connections: 512, ..limits() };
        assert_eq!(big.within(Some(20_000)).max_connections, 512);
        assert_eq!(big.within(Some(256)).max_connections, 192);
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
        a.stalled.store(at(100), Ordering::SeqCst);
        assert_eq!(a.expired_at(&limits(), at(159)), None);
        assert_eq!(a.expired_at(&limits(), at(161)), Some("the client stalled a request"));
        a.moved();
        assert_eq!(a.expired_at(&limits(), at(161)), None, "progress clears the stall");
        a.end();
        assert_eq!(a.expired(&limits()), None, "the request's end starts a new idle period");
    }
}

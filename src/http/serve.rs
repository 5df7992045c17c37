//! Connections: the accept loop, TLS, limits and timeouts, and HTTP/1 by
//! hyper around the service of [`super::service`].
//!
//! - **Cap**: at most [`ConnectionSettings::max_connections`] at once. At the
//!   cap, a new connection takes the place of the one that has been idle the
//!   longest (no request under way); when every connection is busy, it waits
//!   for one to end. Reaching the cap is logged, at most once a minute.
//! - **Idle timeout**: a connection with no request under way and no byte of
//!   the next one (a new connection, or a kept-alive one) is closed after
//!   [`ConnectionSettings::idle_timeout`].
//! - **Header timeout**: once the first byte of a request has arrived, its
//!   request line and headers must be complete within
//!   [`ConnectionSettings::header_timeout`] (a client sending a byte at a time
//!   cannot hold a connection); a TLS handshake gets as long.
//! - **hyper's own answers**: hyper answers what it cannot parse (bad bytes
//!   in the request line, a URL over 64 KiB, over 100 headers or over
//!   [`MAX_HEAD_BYTES`] of request line and headers)
//!   with an empty body. [`Guarded`] recognises such an answer as it is
//!   written (every answer of the service carries a `request-id`, hyper's
//!   never do) and sends the Graph error envelope in its place.

use super::error::ApiError;
use super::error::envelope;
use super::request::request_id;
use crate::clock::{Clock, SharedClock};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Limits on connections; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// File descriptors kept for what is not a connection: the database, its
/// pool and WAL, key files, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The request line and headers together may not exceed this (hyper's
/// read buffer alone is not a sharp bound).
pub const MAX_HEAD_BYTES: usize = 128 * 1024;

/// How long a stop waits for requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Raises the soft limit on open files to the hard one (the common soft
/// limit of 1,024 is far below what a server needs), and returns the cap on
/// connections that the limit leaves room for: `wanted`, or fewer.
pub fn fit_to_descriptors(wanted: usize) -> usize {
    let Some(limit) = raise_open_files() else {
        return wanted;
    };
    let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    if (wanted as u64) <= room {
        return wanted;
    }
    tracing::warn!(
        wanted,
        open_files_limit = limit,
        cap = room,
        "the limit on open files leaves room for fewer connections than configured"
    );
    room as usize
}

/// The soft `RLIMIT_NOFILE` after raising it to the hard limit; `None` where
/// there is no such limit or it cannot be read.
#[cfg(unix)]
fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

#[cfg(not(unix))]
fn raise_open_files() -> Option<u64> {
    None
}

/// Milliseconds since the first use, as last set by a reaper (see
/// [`reap`]): a clock the per-request path reads with one atomic load.
fn coarse_now() -> u64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

static COARSE_NOW: AtomicU64 = AtomicU64::new(0);

/// Sets the coarse clock from the real one.
fn tick() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    COARSE_NOW.fetch_max(now, Ordering::Relaxed);
    now
}

/// What a connection has been asked to do, in [`Conn::order`].
const SERVE: u8 = 0;
/// Finish the request under way (if any), then close.
const CLOSE_GRACEFULLY: u8 = 1;
/// Close now: nothing is under way (checked again before closing).
const CLOSE_NOW: u8 = 2;

/// One connection's state, shared by its task, its I/O and the registry.
struct Conn {
    /// Requests handed to the service and not yet answered.
    busy: AtomicU32,
    /// When ([`coarse_now`]) the connection was last active: accepted,
    /// answered, or written to.
    active: AtomicU64,
    /// When the first byte of a request head arrived while idle; [`NONE`]
    /// while none is being read.
    head: AtomicU64,
    /// [`SERVE`], [`CLOSE_GRACEFULLY`] or [`CLOSE_NOW`].
    order: AtomicU8,
    /// Wakes the connection's task when an order is given.
    waker: Mutex<Option<Waker>>,
}

const NONE: u64 = u64::MAX;

impl Conn {
    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Gives an order (a stronger one is not weakened) and wakes the task.
    fn order(&self, order: u8) {
        self.order.fetch_max(order, Ordering::AcqRel);
        if let Some(waker) = self.waker.lock().expect("waker poisoned").take() {
            waker.wake();
        }
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().expect("waker poisoned");
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

/// Every open connection, for the reaper and for picking the one to close
/// at the cap.
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// When the cap was last reported ([`coarse_now`]), or [`NONE`].
    reported: AtomicU64,
}

impl Registry {
    fn add(&self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            busy: AtomicU32::new(0),
            active: AtomicU64::new(coarse_now()),
            head: AtomicU64::new(NONE),
            order: AtomicU8::new(SERVE),
            waker: Mutex::new(None),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().expect("connection registry poisoned")
    }

    /// Asks the connection idle the longest to close; false when all are busy.
    fn evict_idlest(&self) -> bool {
        let open = self.lock();
        let idlest = open
            .values()
            .filter(|c| c.idle() && c.order.load(Ordering::Relaxed) == SERVE)
            .min_by_key(|c| c.active.load(Ordering::Relaxed));
        match idlest {
            Some(conn) => {
                conn.order(CLOSE_GRACEFULLY);
                true
            }
            None => false,
        }
    }

    /// Closes the connections whose idle or header time is up. Their
    /// stamps are of the coarse clock, up to one interval behind the real
    /// one, so a timeout counts one interval more: never early, at most two
    /// intervals late.
    fn reap(&self, now: u64, settings: &ConnectionSettings) {
        let slack = reap_interval(settings).as_millis() as u64;
        let header = settings.header_timeout.as_millis() as u64 + slack;
        let idle = settings.idle_timeout.as_millis() as u64 + slack;
        for conn in self.lock().values().filter(|c| c.idle()) {
            let expired = match conn.head.load(Ordering::Relaxed) {
                NONE => now.saturating_sub(conn.active.load(Ordering::Relaxed)) >= idle,
                head => now.saturating_sub(head) >= header,
            };
            if expired {
                conn.order(CLOSE_NOW);
            }
        }
    }

    fn order_all(&self, order: u8) {
        for conn in self.lock().values() {
            conn.order(order);
        }
    }

    /// Logs that the cap was reached, at most once a minute.
    fn report_cap(&self, cap: usize) {
        let now = coarse_now();
        let last = self.reported.load(Ordering::Relaxed);
        if last != NONE && now.saturating_sub(last) < 60_000 {
            return;
        }
        if self
            .reported
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                max_connections = cap,
                "connection limit reached: closing the idlest connection for each new one \
                 (raise --max-connections if clients need more)"
            );
        }
    }
}

/// How often the reaper looks: a quarter of the shorter timeout, between
/// 10 ms and a second, so a timeout is acted on at most half as late again
/// (see [`Registry::reap`]).
fn reap_interval(settings: &ConnectionSettings) -> Duration {
    (settings.header_timeout.min(settings.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Serves `service` on `listener` until `shutdown` resolves, then lets the
/// requests under way finish (for up to 30 seconds).
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: S,
    settings: ConnectionSettings,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let cap = settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let registry = Arc::new(Registry {
        next: AtomicU64::new(0),
        open: Mutex::new(HashMap::new()),
        reported: AtomicU64::new(NONE),
    });
    tick();
    // One timer for every connection: the clock and the timeouts.
    let reaper = {
        let registry = Arc::downgrade(&registry);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(reap_interval(&settings));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let now = tick();
                match registry.upgrade() {
                    Some(registry) => registry.reap(now, &settings),
                    None => return,
                }
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was
                    // taken: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                registry.report_cap(cap);
                registry.evict_idlest();
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, conn) = registry.add();
        let service = service.clone();
        let tls = tls.clone();
        let registry = registry.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            serve_connection(stream, tls, service, conn, settings, clock).await;
            registry.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    registry.order_all(CLOSE_GRACEFULLY);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still under way after the grace period were cut off");
    }
    reaper.abort();
    Ok(())
}

async fn serve_connection<S>(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: S,
    conn: Arc<Conn>,
    settings: ConnectionSettings,
    clock: SharedClock,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    match tls {
        None => http(stream, service, conn, clock).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(settings.header_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => http(stream, service, conn, clock).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn http<IO, S>(io: IO, service: S, conn: Arc<Conn>, clock: SharedClock)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let io = Guarded {
        inner: io,
        conn: conn.clone(),
        clock,
        replacing: None,
    };
    let counted = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        use tower::ServiceExt;
        counted.busy.fetch_add(1, Ordering::AcqRel);
        counted.head.store(NONE, Ordering::Relaxed);
        let answer = service.clone().oneshot(req.map(axum::body::Body::new));
        let counted = counted.clone();
        async move {
            let response = answer.await;
            counted.active.store(coarse_now(), Ordering::Relaxed);
            counted.busy.fetch_sub(1, Ordering::AcqRel);
            response
        }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let served = Ordered {
        http: Box::pin(http),
        conn,
        graceful: false,
    };
    if let Err(e) = served.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A hyper connection that follows its [`Conn::order`].
struct Ordered<F> {
    http: Pin<Box<F>>,
    conn: Arc<Conn>,
    graceful: bool,
}

impl<IO, S> Future for Ordered<hyper::server::conn::http1::Connection<IO, S>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Registered before the order is read, so no order goes unseen.
        this.conn.register(cx.waker());
        match this.conn.order.load(Ordering::Acquire) {
            // Nothing under way: closing loses nothing.
            CLOSE_NOW if this.conn.idle() => return Poll::Ready(Ok(())),
            SERVE => {}
            // Closes at once when idle, else after the answer under way.
            _ if !this.graceful => {
                this.graceful = true;
                this.http.as_mut().graceful_shutdown();
            }
            _ => {}
        }
        this.http.as_mut().poll(cx)
    }
}

/// A connection's byte stream: notes when a request head starts and when
/// the connection writes, and replaces hyper's own error answers.
struct Guarded<IO> {
    inner: IO,
    conn: Arc<Conn>,
    /// Dates the envelopes that replace hyper's answers.
    clock: SharedClock,
    /// An envelope being written in place of hyper's answer, how much of it
    /// is written, and how many bytes of hyper's answer it stands for.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.conn.idle()
            && self.conn.head.load(Ordering::Relaxed) == NONE
        {
            self.conn.head.store(coarse_now(), Ordering::Relaxed);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> Guarded<IO> {
    /// Writes the rest of a replacement; ready with the length of what it
    /// replaced once all is written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, replaced)) = &mut self.replacing {
            if *written == bytes.len() {
                let replaced = *replaced;
                self.replacing = None;
                return Poll::Ready(Ok(replaced));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }

    fn noted_write(&self) {
        self.conn.active.store(coarse_now(), Ordering::Relaxed);
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none()
            && let Some(envelope) = replacement(buf, this.clock.as_ref())
        {
            this.replacing = Some((envelope, 0, buf.len()));
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        this.noted_write();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let first = bufs.iter().find(|b| !b.is_empty());
        if this.replacing.is_none()
            && let Some(envelope) = first.and_then(|b| replacement(b, this.clock.as_ref()))
        {
            this.replacing = Some((envelope, 0, first.map_or(0, |b| b.len())));
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        this.noted_write();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// When `head` is the start of an answer hyper wrote on its own (an error
/// status without the `request-id` every answer of the service has), the
/// whole answer to send instead: the same status with the Graph envelope.
fn replacement(head: &[u8], clock: &dyn Clock) -> Option<Vec<u8>> {
    // Most writes are successful answers or bodies: out in a few comparisons.
    if !matches!(head.get(9), Some(b'4' | b'5')) || !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status = std::str::from_utf8(rest.get(..3)?).ok()?;
    let error = match status {
        "400" => ApiError::MalformedRequest,
        "414" => ApiError::UriTooLong,
        "431" => ApiError::HeadersTooLarge,
        s if s.starts_with(['4', '5']) => ApiError::MalformedRequest,
        _ => return None,
    };
    let end = memchr::memmem::find(head, b"\r\n\r\n").unwrap_or(head.len());
    if memchr::memmem::find(&head[..end], b"\r\nrequest-id:").is_some() {
        return None;
    }
    let mut report = error.report();
    if let Ok(code) = status.parse::<u16>()
        && let Ok(status) = axum::http::StatusCode::from_u16(code)
    {
        report.status = status;
    }
    let id = request_id();
    tracing::info!(request_id = %id, status = report.status.as_u16(), code = %report.code, "request refused before routing");
    let body = envelope(&report, &id, None, clock.now());
    let date = head[..end]
        .split(|&b| b == b'\n')
        .find(|line| line.len() > 5 && line[..5].eq_ignore_ascii_case(b"date:"))
        .map(|line| String::from_utf8_lossy(line).trim().to_owned());
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nrequest-id: {id}\r\nclient-request-id: {id}\r\nconnection: close\r\n",
        report.status.as_u16(),
        report.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(date) = date {
        out.push_str(&date);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::{RESERVED_DESCRIPTORS, fit_to_descriptors, replacement};
    use crate::clock::FixedClock;

    const CLOCK: FixedClock = FixedClock(time::macros::datetime!(2026-12-06 10:00 UTC));

    #[cfg(unix)]
    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one_and_bounds_the_cap() {
        use rustix::process::{Resource, getrlimit};
        let cap = fit_to_descriptors(usize::MAX / 2);
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
        match limit.current {
            Some(n) => assert_eq!(cap as u64, n.saturating_sub(RESERVED_DESCRIPTORS).max(1)),
            None => assert_eq!(cap, usize::MAX / 2),
        }
        assert_eq!(fit_to_descriptors(10), 10);
    }

    #[test]
    fn hyper_error_answers_become_envelopes_and_the_service_answers_stay() {
        for (head, status, code) in [
            (
                &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\n"[..],
                "400 Bad Request",
                "BadRequest",
            ),
            (
                b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n",
                "414 URI Too Long",
                "RequestUriTooLong",
            ),
            (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n",
                "431 Request Header Fields Too Large",
                "RequestHeaderFieldsTooLarge",
            ),
        ] {
            let out = String::from_utf8(replacement(head, &CLOCK).expect("replaced")).unwrap();
            assert!(out.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{out}");
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            assert!(head.contains("\r\nrequest-id: "), "{head}");
            assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(body["error"]["innerError"]["request-id"].is_string());
        }
        assert!(
            String::from_utf8(
                replacement(b"HTTP/1.1 400 Bad Request\r\ndate: X\r\n\r\n", &CLOCK).unwrap()
            )
            .unwrap()
            .contains("\r\ndate: X\r\n")
        );
        for kept in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nrequest-id: x\r\n\r\n",
            b"{\"value\":[]}",
            b"HTTP/1.1",
        ] {
            assert_eq!(
                replacement(kept, &CLOCK),
                None,
                "{}",
                String::from_utf8_lossy(kept)
            );
        }
    }
}

//! The load generator: a fixed number of keep-alive HTTP/1.1 connections, each
//! driven by one task that sends a request, reads the whole answer, and sends
//! the next (a closed loop). Requests started during the warm-up or finished
//! after the end are not counted.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// A small fast random generator (splitmix64); each task has its own.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One request to send: method, path with query, optional JSON body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
        }
    }

    pub fn with_body(method: Method, path: impl Into<String>, body: String) -> Self {
        Self {
            method,
            path: path.into(),
            body: Some(body),
        }
    }
}

/// Makes the next call of a task; gets the task's random generator.
pub type MakeCall = Arc<dyn Fn(&mut Rng) -> Call + Send + Sync>;

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Authorization` header value, if the server wants one.
    pub authorization: Option<String>,
    /// More servers answering the same (replicas): the connections of a
    /// [`run`] are spread round-robin over `addr` and these. Other calls use
    /// `addr` alone.
    pub replicas: Vec<SocketAddr>,
}

impl Target {
    /// The server connection `i` of a run talks to: the `i mod n`-th of the
    /// `n` addresses, `addr` first.
    pub fn of_connection(&self, i: usize) -> Target {
        let addr = match i % (self.replicas.len() + 1) {
            0 => self.addr,
            k => self.replicas[k - 1],
        };
        Target {
            addr,
            authorization: self.authorization.clone(),
            replicas: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one timed run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Answers with an expected status inside the measured window.
    pub ok: u64,
    /// Every answer, warm-up included (to share out the server's CPU time).
    pub all: u64,
    /// Answers with another status, or failed connections, inside the window.
    pub failed: u64,
    /// The first unexpected answer, for the report.
    pub first_failure: Option<String>,
    /// Latencies of the counted answers, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    pub window: Duration,
}

impl Outcome {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), nearest rank.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        Duration::from_nanos(self.latencies[rank - 1])
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

/// Answers a run counts at least, extending its window if need be.
const MIN_COUNTED: u64 = 20;
/// How far past its duration a run may go to count `MIN_COUNTED` answers.
const MAX_EXTENSION: Duration = Duration::from_secs(60);

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn build(target: &Target, call: &Call) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(call.method.clone())
        .uri(&call.path)
        .header(hyper::header::HOST, target.addr.to_string())
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(auth) = &target.authorization {
        req = req.header(hyper::header::AUTHORIZATION, auth);
    }
    let body = match &call.body {
        Some(b) => {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(b.clone()))
        }
        None => Full::new(Bytes::new()),
    };
    req.body(body).expect("a well-formed request")
}

/// Sends one call on a fresh connection and returns the status and body.
pub async fn once(target: &Target, call: &Call) -> std::io::Result<(StatusCode, Bytes)> {
    let mut sender = connect(target.addr).await?;
    send(&mut sender, target, call).await
}

async fn send(
    sender: &mut Sender,
    target: &Target,
    call: &Call,
) -> std::io::Result<(StatusCode, Bytes)> {
    sender.ready().await.map_err(std::io::Error::other)?;
    let response = sender
        .send_request(build(target, call))
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, body))
}

/// A persistent connection for sequential calls (data loading, checks).
pub struct Client {
    target: Target,
    sender: Option<Sender>,
}

impl Client {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    pub async fn call(&mut self, call: &Call) -> std::io::Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(connect(self.target.addr).await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let result = send(sender, &self.target, call).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// Runs `shape.connections` closed loops for the warm-up plus the duration.
///
/// Slow scenarios (a list taking seconds at 1M instances) go on past the
/// duration until at least `MIN_COUNTED` answers were counted, or for at most
/// `MAX_EXTENSION` more; the window then ends at the last counted answer.
pub async fn run(
    target: &Target,
    shape: Shape,
    make: MakeCall,
    expect: fn(StatusCode) -> bool,
    seed: u64,
) -> Outcome {
    let start = Instant::now();
    let counted_from = start + shape.warmup;
    let end = counted_from + shape.duration;
    let hard_end = end + MAX_EXTENSION;
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(shape.connections);
    for i in 0..shape.connections {
        let target = target.of_connection(i);
        let make = make.clone();
        let counted = counted.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let mut out = Outcome::default();
            let mut last_counted: Option<Instant> = None;
            let mut sender: Option<Sender> = None;
            let enough = || counted.load(Ordering::Relaxed) >= MIN_COUNTED;
            loop {
                let now = Instant::now();
                if now >= hard_end || (now >= end && enough()) {
                    break;
                }
                if sender.as_ref().is_none_or(|s| s.is_closed()) {
                    match tokio::time::timeout(hard_end - now, connect(target.addr)).await {
                        Ok(Ok(s)) => sender = Some(s),
                        Ok(Err(e)) => {
                            if now >= counted_from {
                                out.failed += 1;
                                out.first_failure.get_or_insert(format!("connect: {e}"));
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        Err(_) => break,
                    }
                }
                let call = make(&mut rng);
                let s = sender.as_mut().expect("connected above");
                let sent = Instant::now();
                let result = tokio::time::timeout(
                    hard_end.saturating_duration_since(sent) + Duration::from_secs(5),
                    send(s, &target, &call),
                )
                .await;
                let done = Instant::now();
                out.all += 1;
                // Inside the window, or past it while too few answers were counted.
                let counted_now = sent >= counted_from && (done <= end || !enough());
                match result {
                    Ok(Ok((status, _))) if expect(status) => {
                        if counted_now {
                            counted.fetch_add(1, Ordering::Relaxed);
                            out.ok += 1;
                            out.latencies.push((done - sent).as_nanos() as u64);
                            last_counted = Some(done);
                        }
                    }
                    Ok(Ok((status, body))) => {
                        if counted_now {
                            out.failed += 1;
                            out.first_failure.get_or_insert_with(|| {
                                format!(
                                    "{} {} -> {status}: {}",
                                    call.method,
                                    call.path,
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                )
                            });
                        }
                    }
                    Ok(Err(e)) => {
                        sender = None;
                        if counted_now {
                            out.failed += 1;
                            out.first_failure
                                .get_or_insert(format!("{} {}: {e}", call.method, call.path));
                        }
                    }
                    Err(_) => {
                        sender = None;
                        if sent >= counted_from {
                            out.failed += 1;
                            out.first_failure
                                .get_or_insert(format!("{} {}: timed out", call.method, call.path));
                        }
                    }
                }
            }
            (out, last_counted)
        }));
    }
    let mut total = Outcome {
        window: shape.duration,
        ..Outcome::default()
    };
    for t in tasks {
        let (out, last) = t.await.expect("a load task panicked");
        total.ok += out.ok;
        total.all += out.all;
        total.failed += out.failed;
        if total.first_failure.is_none() {
            total.first_failure = out.first_failure;
        }
        total.latencies.extend(out.latencies);
        if let Some(last) = last.filter(|l| *l > end) {
            total.window = total.window.max(last - counted_from);
        }
    }
    total.latencies.sort_unstable();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let out = Outcome {
            ok: 100,
            latencies: (1..=100).collect(),
            window: Duration::from_secs(1),
            ..Outcome::default()
        };
        assert_eq!(out.percentile(0.5), Duration::from_nanos(50));
        assert_eq!(out.percentile(0.99), Duration::from_nanos(99));
        assert_eq!(out.percentile(1.0), Duration::from_nanos(100));
        assert_eq!(out.throughput(), 100.0);
    }

    #[test]
    fn connections_go_round_robin_over_the_replicas() {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let alone = Target {
            addr: addr(1),
            authorization: Some("Bearer t".into()),
            replicas: Vec::new(),
        };
        assert!((0..5).all(|i| alone.of_connection(i).addr == addr(1)));
        let three = Target {
            replicas: vec![addr(2), addr(3)],
            ..alone
        };
        let ports: Vec<u16> = (0..7).map(|i| three.of_connection(i).addr.port()).collect();
        assert_eq!(ports, [1, 2, 3, 1, 2, 3, 1]);
        let one = three.of_connection(4);
        assert_eq!(one.authorization.as_deref(), Some("Bearer t"));
        assert!(one.replicas.is_empty());
    }

    #[test]
    fn the_generator_spreads_numbers() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}

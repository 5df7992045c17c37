//! The connection layer, over raw sockets: what hyper refuses before the
//! service sees it gets the Graph envelope, and idle, slow or surplus
//! connections cannot lock other clients out.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn address(s: &TestServer) -> String {
    s.origin.trim_start_matches("http://").to_owned()
}

/// Sends `request` as it is and reads the answer until the server closes.
async fn raw(s: &TestServer, request: &[u8]) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(address(s)).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .ok();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_graph_envelope_with_a_request_id() {
    let s = TestServer::start().await;
    let long_url = format!(
        "GET /beta/agentRegistry/agentInstances?$filter={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /beta/agentRegistry HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..120)
            .map(|n| format!("x-h{n}: v\r\n"))
            .collect::<String>()
    );
    let huge_header = format!(
        "GET /beta/agentRegistry HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "v".repeat(200_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a control byte in the request line",
            b"GET /beta/agentRegistry/\x01 HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "a header line without a colon",
            b"GET /beta/agentRegistry HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "an unknown HTTP version",
            b"GET /beta/agentRegistry HTTP/7.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "a Content-Length that is not a number",
            b"POST /beta/agentRegistry/agentInstances HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "a TLS hello on the plain port",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello".to_vec(),
            400,
            "BadRequest",
        ),
        ("a URL over 64 KiB", long_url.into_bytes(), 414, "RequestUriTooLong"),
        (
            "more than 100 headers",
            many_headers.into_bytes(),
            431,
            "RequestHeaderFieldsTooLarge",
        ),
        (
            "a header of 200 kB",
            huge_header.into_bytes(),
            431,
            "RequestHeaderFieldsTooLarge",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, head, body) = raw(&s, &request).await;
        assert_eq!(got, status, "{what}: {head}");
        assert!(
            head.contains("\r\ncontent-type: application/json"),
            "{what}: {head}"
        );
        let error = &body["error"];
        assert_eq!(error["code"], code, "{what}: {body}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        let id = error["innerError"]["request-id"]
            .as_str()
            .expect("request id");
        assert!(
            head.contains(&format!("\r\nrequest-id: {id}")),
            "{what}: {head}"
        );
        assert_eq!(error["innerError"]["client-request-id"], id, "{what}");
        assert!(error["innerError"]["date"].is_string(), "{what}");
    }
    // The server still serves after all of that.
    assert_eq!(s.get("/agentRegistry").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_do_not_lock_a_client_out() {
    let s = TestServer::start_configured(|c| {
        c.connections.max_connections = 8;
        c.connections.idle_timeout = Duration::from_secs(120);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(address(&s)).await.expect("connect"));
    }
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), s.get("/agentRegistry"))
        .await
        .expect("a normal client is served while idle connections fill the cap");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served without waiting for idle timeouts"
    );
    // The idle connections made room: the oldest ones were closed.
    let mut closed = 0;
    for mut stream in idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 12,
        "only {closed} of 20 idle connections were closed"
    );
}

#[tokio::test]
async fn a_request_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let s = TestServer::start_configured(|c| {
        c.connections.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(address(&s)).await.expect("connect");
    let started = Instant::now();
    let request = b"GET /beta/agentRegistry HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let mut cut = false;
    for byte in request.iter().chain(std::iter::repeat(&b'a')).take(200) {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
        {
            // Closed (or reset) by the server.
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            cut = true;
            break;
        }
    }
    assert!(cut, "the slow request was never cut off");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_idle_timeout() {
    let s = TestServer::start_configured(|c| {
        c.connections.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // A kept-alive connection that goes quiet, and one that never speaks.
    let client = reqwest::Client::new();
    let r = client
        .get(s.url("/agentRegistry"))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut silent = TcpStream::connect(address(&s)).await.expect("connect");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
        .await
        .expect("closed before five seconds");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The pooled connection was closed too; the client opens a new one.
    let r = client
        .get(s.url("/agentRegistry"))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

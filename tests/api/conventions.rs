//! Graph conventions on every response: request ids, the error envelope for
//! every kind of bad input, tokens, context URLs.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_client_request_id() {
    let s = TestServer::start().await;
    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("client-request-id", "my-correlation-id")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["client-request-id"], "my-correlation-id");
    let rid = r.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&rid).is_ok());
    assert_eq!(r.headers()["odata-version"], "4.0");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json;odata.metadata=minimal")
    );

    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances/none")
        .header("client-request-id", "abc")
        .send()
        .await
        .unwrap();
    let e = assert_graph_error(r, 404, "AgentNotFound").await;
    assert_eq!(e["error"]["innerError"]["client-request-id"], "abc");

    let r = s.get("/agentRegistry/agentInstances").await;
    assert_eq!(
        r.headers()["client-request-id"],
        r.headers()["request-id"],
        "without one, the request id stands in"
    );
}

#[tokio::test]
async fn the_singleton_answers_with_its_context() {
    let s = TestServer::start().await;
    let body = s.get_json("/agentRegistry").await;
    assert_eq!(
        body,
        json!({"@odata.context": s.url("/$metadata#agentRegistry/$entity")})
    );
    assert_eq!(
        s.patch("/agentRegistry", json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_graph_error(
        s.patch("/agentRegistry", json!({"x": 1})).await,
        400,
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn bad_bodies_get_graph_errors() {
    let s = TestServer::start().await;
    let url = s.url("/agentRegistry/agentInstances");
    let send = |body: &'static str, content_type: Option<&'static str>| {
        let mut b = s.client.post(&url).bearer_auth(s.token()).body(body);
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.send()
    };
    assert_graph_error(
        send("{\"displayName\":", Some("application/json"))
            .await
            .unwrap(),
        400,
        "BadRequest",
    )
    .await;
    assert_graph_error(
        send("not json", Some("application/json")).await.unwrap(),
        400,
        "BadRequest",
    )
    .await;
    assert_graph_error(
        send("", Some("application/json")).await.unwrap(),
        400,
        "BadRequest",
    )
    .await;
    assert_graph_error(send("", None).await.unwrap(), 400, "BadRequest").await;
    assert_graph_error(
        send("{}", Some("text/plain")).await.unwrap(),
        415,
        "UnsupportedMediaType",
    )
    .await;
    assert_graph_error(send("{}", None).await.unwrap(), 415, "UnsupportedMediaType").await;
    assert_graph_error(
        send("\"a string\"", Some("application/json"))
            .await
            .unwrap(),
        400,
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_whether_declared_or_streamed() {
    let s = TestServer::start().await;
    let big = format!(
        "{{\"displayName\":\"{}\",\"ownerIds\":[]}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let r = s
        .req(Method::POST, "/agentRegistry/agentInstances")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 413, "RequestEntityTooLarge").await;

    // Chunked, without Content-Length: the limit applies while reading.
    let raw = raw_chunked_post(&s, "/beta/agentRegistry/agentInstances", big.as_bytes()).await;
    assert!(
        raw.starts_with("HTTP/1.1 413"),
        "{}",
        &raw[..raw.len().min(200)]
    );
    assert!(raw.contains("\"RequestEntityTooLarge\""), "{raw}");
}

async fn raw_chunked_post(s: &TestServer, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.origin.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.token()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        if tcp
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || tcp.write_all(chunk).await.is_err()
            || tcp.write_all(b"\r\n").await.is_err()
        {
            break; // the server may answer and close before reading everything
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn unknown_paths_methods_and_query_options_get_graph_errors() {
    let s = TestServer::start().await;
    let e = assert_graph_error(s.get("/agentRegistry/agentThings").await, 400, "BadRequest").await;
    assert_eq!(
        e["error"]["message"],
        "Resource not found for the segment 'agentThings'."
    );
    assert_graph_error(
        s.get("/agentRegistry/agentInstances/x/owners").await,
        400,
        "BadRequest",
    )
    .await;
    assert_graph_error(s.get("/somewhere").await, 400, "BadRequest").await;
    assert_graph_error(
        s.req(Method::PUT, "/agentRegistry/agentInstances/x")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        405,
        "Request_BadRequest",
    )
    .await;
    let r = s
        .req(Method::DELETE, "/agentRegistry/agentInstances")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET,HEAD,POST");
    assert_graph_error(r, 405, "Request_BadRequest").await;
    for q in [
        "$foo=1",
        "$top=abc",
        "$top=5000",
        "$count=maybe",
        "$skiptoken=forged",
        "$select=id,,",
        "$top=1&$top=2",
    ] {
        let r = s.get(&format!("/agentRegistry/agentInstances?{q}")).await;
        assert_graph_error(r, 400, "BadRequest").await;
    }
    let r = s.get("/agentRegistry/agentInstances/x?$top=1").await;
    assert_graph_error(r, 400, "BadRequest").await;
    assert_eq!(
        s.get("/agentRegistry/agentInstances?custom=1")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn query_option_names_may_be_percent_encoded_or_lack_the_dollar() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    for q in ["%24select=id", "$select=id", "select=id"] {
        let body = s
            .get_json(&format!("/agentRegistry/agentInstances/i?{q}"))
            .await;
        // @odata.context, @odata.etag and the one property selected.
        assert_eq!(body.as_object().unwrap().len(), 3, "{q}: {body}");
        assert_eq!(body["id"], "i");
    }
}

#[tokio::test]
async fn missing_and_bad_tokens_are_401_with_www_authenticate() {
    let s = TestServer::start().await;
    let url = s.url("/agentRegistry/agentInstances");
    let other = TestServer::start().await;
    let expired = s.keys.mint(&token_request(TENANT_A, 60, -7200)).unwrap();
    let future = s.keys.mint(&token_request(TENANT_A, 3600, 3600)).unwrap();
    // A token of another data folder's key says so, and names the keys this server has.
    let other_key = format!(
        "Access token validation failure. The token is signed with key '{}', which this server does not have (it has: {}); a token from 'agentry token' must come from the server's own data folder or --keys-dir.",
        other.keys.kid(),
        s.keys.kid()
    );
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "Access token is empty."),
        (Some("Bearer".into()), "Access token is empty."),
        (
            Some("Bearer not.a.jwt".into()),
            "CompactToken parsing failed with error code: 80049217",
        ),
        (
            Some("Basic dXNlcjpwYXNz".into()),
            "CompactToken parsing failed with error code: 80049217",
        ),
        (Some(format!("Bearer {}", other.token())), &other_key),
        (
            Some(format!("Bearer {expired}")),
            "Access token has expired or is not yet valid.",
        ),
        (
            Some(format!("Bearer {future}")),
            "Access token has expired or is not yet valid.",
        ),
    ];
    for (auth, message) in cases {
        let mut req = s.client.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"), "{auth:?}");
        let e = assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
        assert_eq!(e["error"]["message"], message, "{auth:?}");
    }
    other.stop().await;
}

#[tokio::test]
async fn absolute_urls_use_the_request_host_and_ignore_forwarded_headers_by_default() {
    let s = TestServer::start().await;
    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&s.origin),
        "{body}"
    );
}

#[tokio::test]
async fn forwarded_headers_are_honoured_when_the_proxy_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = agentry::config::ServerConfig::with_data_dir(dir.path());
    config.trust_proxy = true;
    let s = TestServer::start_with(config).await;
    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("x-forwarded-host", "graph.example.org")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        "https://graph.example.org/beta/$metadata#agentRegistry/agentInstances"
    );
}

#[tokio::test]
async fn a_nul_character_anywhere_is_a_400_on_every_backend_and_nothing_is_stored() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("x", "x")).await;
    for path in [
        "/agentRegistry/agentInstances/%00",
        "/agentRegistry/agentInstances/a%00b",
        "/agentRegistry/agentInstances('a%00')",
        "/agentRegistry/agentCardManifests/%00",
        "/agentRegistry/agentCollections/%00/members",
        "/copilot/admin/policySettings/a%00",
    ] {
        let e = assert_graph_error(s.get(path).await, 400, "BadRequest").await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("U+0000"),
            "{path}: {e}"
        );
    }
    for query in [
        "$filter=displayName eq 'a%00'",
        "$filter=ownerIds/any(o: o eq '%00')",
        "$filter=startswith(displayName, '%00')",
        "$orderby=displayName%00",
        "$search=\"displayName:a%00\"",
        "$skiptoken=%00",
    ] {
        let r = s
            .req(
                Method::GET,
                &format!("/agentRegistry/agentInstances?{query}"),
            )
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        let e = assert_graph_error(r, 400, "BadRequest").await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("U+0000"),
            "{query}: {e}"
        );
    }
    for body in [
        json!({"id": "a\u{0}", "displayName": "n", "ownerIds": [USER]}),
        json!({"displayName": "a\u{0}", "ownerIds": [USER]}),
        json!({"displayName": "n", "ownerIds": ["\u{0}"]}),
        json!({"displayName": "n", "ownerIds": [USER], "agentCardManifest": {"displayName": "m", "securitySchemes": {"k\u{0}": {}}}}),
    ] {
        let e = assert_graph_error(
            s.post("/agentRegistry/agentInstances", body.clone()).await,
            400,
            "BadRequest",
        )
        .await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("U+0000"),
            "{body}: {e}"
        );
    }
    assert_graph_error(
        s.patch(
            "/agentRegistry/agentInstances/x",
            json!({"displayName": "\u{0}"}),
        )
        .await,
        400,
        "BadRequest",
    )
    .await;
    let list = s.get_json("/agentRegistry/agentInstances").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["value"][0]["displayName"], "x");

    let r = s
        .client
        .post(format!("{}/{TENANT_A}/oauth2/v2.0/token", s.origin))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=a%00&client_secret=s&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
}

#[tokio::test]
async fn everything_the_server_stamps_reads_its_injected_clock() {
    let at = time::macros::datetime!(2030-01-02 03:04:05 UTC);
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with_clock(
        agentry::config::ServerConfig::with_data_dir(dir.path()),
        std::sync::Arc::new(agentry::clock::FixedClock(at)),
    )
    .await;
    let created = s.create_instance(instance_body("timed", "Timed")).await;
    assert_eq!(created["createdDateTime"], "2030-01-02T03:04:05.0000000Z");
    let global = s
        .get_json(&format!("/agentRegistry/agentCollections/{GLOBAL}"))
        .await;
    assert_eq!(global["createdDateTime"], "2030-01-02T03:04:05.0000000Z");
    let e = assert_graph_error(
        s.get("/agentRegistry/agentInstances/none").await,
        404,
        "AgentNotFound",
    )
    .await;
    assert_eq!(e["error"]["innerError"]["date"], "2030-01-02T03:04:05");
    let journal: Value = s
        .client
        .get(format!("{}/_agentry/requests?format=har", s.origin))
        .bearer_auth(s.app_token_for(TENANT_A, &["Agentry.Admin"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        journal["log"]["entries"][0]["startedDateTime"],
        "2030-01-02T03:04:05.0000000Z"
    );
}

#[tokio::test]
async fn browsers_on_a_configured_origin_get_preflights_without_a_token_and_readable_headers() {
    let s =
        TestServer::start_configured(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let path = s.url("/agentRegistry/agentInstances");
    let r = s
        .client
        .request(Method::OPTIONS, &path)
        .header("origin", "http://app.example")
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization,content-type,if-match",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "answered before authentication");
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.example");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PATCH")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("if-match")
    );

    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in ["request-id", "client-request-id", "etag", "location"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    // An error answer is readable too, and another origin is not let in.
    let r = s
        .client
        .get(&path)
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_configured_origins_no_cors_header_is_sent() {
    let s = TestServer::start().await;
    let r = s
        .req(Method::GET, "/agentRegistry/agentInstances")
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn graph_operations_agentry_does_not_implement_answer_501_naming_them() {
    let s = TestServer::start().await;
    let cases = [
        (
            Method::GET,
            "/beta/copilot/agents",
            "GET /beta/copilot/agents",
        ),
        (
            Method::GET,
            "/beta/copilot/agents/a1",
            "GET /beta/copilot/agents/{id}",
        ),
        (
            Method::POST,
            "/beta/copilot/communications/realtimeActivityFeed/meetings",
            "/beta/copilot/communications/realtimeActivityFeed/meetings",
        ),
        (
            Method::GET,
            "/v1.0/copilot/users/u1",
            "/v1.0/copilot/users/{id}",
        ),
    ];
    for (method, path, named) in cases {
        let r = s
            .client
            .request(method, format!("{}{path}", s.origin))
            .bearer_auth(s.token())
            .send()
            .await
            .unwrap();
        let e = assert_graph_error(r, 501, "NotImplemented").await;
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(named) && message.contains("Agentry does not implement"),
            "{message}"
        );
    }
    // A path Graph does not have is still Graph's 400.
    let r = s.get("/copilot/nothing").await;
    assert_graph_error(r, 400, "BadRequest").await;
}

/// Every row of docs/fidelity.md, checked against the server: an
/// implemented operation answers neither 405 nor 501, the others what the
/// table says.
#[tokio::test]
async fn the_fidelity_table_says_what_the_server_answers() {
    let mut s = TestServer::start().await;
    s.not_counted_as_coverage();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fidelity.md")).unwrap();
    let mut checked = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, method, template, answer, ..] = cells.as_slice() else {
            continue;
        };
        if !template.starts_with('`') {
            continue;
        }
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            continue;
        };
        let path = template
            .trim_matches('`')
            .replace("{id}", "x")
            .replace('@', "%40");
        let mut req = s
            .client
            .request(method.clone(), format!("{}{path}", s.origin))
            .bearer_auth(s.token());
        if [Method::POST, Method::PATCH, Method::PUT].contains(&method) {
            req = req.json(&json!({}));
        }
        let status = req.send().await.unwrap().status().as_u16();
        match *answer {
            "yes" => assert!(status != 405 && status != 501, "{method} {path}: {status}"),
            "no (405)" => assert_eq!(status, 405, "{method} {path}"),
            "no (501)" => assert_eq!(status, 501, "{method} {path}"),
            other if other.starts_with("no (answered as") => {
                assert!(status != 501, "{method} {path}: {status}")
            }
            other => panic!("unknown answer {other}"),
        }
        checked += 1;
    }
    assert!(
        checked > 100,
        "the table lists the SDKs' operations ({checked})"
    );
}

//! Watching registered agents: the checker fetches each agent's live card
//! from agents served by the test on loopback and records healthy, drifted
//! or unreachable, seen through the control plane, the entity's
//! annotation and the metrics.

use crate::support::*;
use axum::http::StatusCode as AxumStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SET: &str = "/copilot/agentRegistrations";

/// How an agent served by the test answers for its card.
#[derive(Clone)]
enum Answer {
    Card(Value),
    Status(u16),
    Redirect,
    Slow(Duration, Value),
    Huge,
}

/// An agent on loopback serving `/.well-known/agent-card.json` as told.
#[derive(Clone)]
struct Agent {
    answer: Arc<Mutex<Answer>>,
    origin: String,
    /// Requests for the card so far.
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

async fn card_route(
    axum::extract::State(a): axum::extract::State<Agent>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    a.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let answer = a.answer.lock().unwrap().clone();
    match answer {
        Answer::Card(card) => card.to_string().into_response(),
        Answer::Status(code) => AxumStatus::from_u16(code).unwrap().into_response(),
        Answer::Redirect => (
            AxumStatus::FOUND,
            [("location", "http://169.254.169.254/latest/meta-data")],
        )
            .into_response(),
        Answer::Slow(wait, card) => {
            tokio::time::sleep(wait).await;
            card.to_string().into_response()
        }
        Answer::Huge => format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024)).into_response(),
    }
}

impl Agent {
    async fn start(answer: Answer) -> Agent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let agent = Agent {
            answer: Arc::new(Mutex::new(answer)),
            origin,
            hits: Default::default(),
        };
        let app = axum::Router::new()
            .route(
                "/.well-known/agent-card.json",
                axum::routing::get(card_route),
            )
            .with_state(agent.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        agent
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn card(&self) -> Value {
        card(&format!("{}/a2a", self.origin))
    }
}

fn card(url: &str) -> Value {
    json!({
        "protocolVersion": "0.3.0", "name": "Travel", "description": "Books trips",
        "version": "1.0.0", "url": url,
        "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "book", "name": "Book", "description": "Books", "tags": ["travel"]}]
    })
}

async fn register(s: &TestServer, id: &str, card: Value) {
    let r = s
        .post(
            SET,
            json!({
                "id": id, "displayName": id, "ownerIds": [USER], "createdBy": USER,
                "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
                "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z",
                "agentCard": card,
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn watch(s: &TestServer) {
    let r = s
        .control_as(TENANT_A, Method::PATCH, "/a2a/settings")
        .json(&json!({"watch": {"enabled": true, "intervalSeconds": 3600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn check_now(s: &TestServer) {
    // The worker learns that the tenant watches within a pass.
    for _ in 0..100 {
        let r = s
            .control_as(TENANT_A, Method::POST, "/a2a/watch")
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::ACCEPTED {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the checks did not start");
}

/// The health of `id` once its state is `state` (checked again until then).
async fn health_becomes(s: &TestServer, id: &str, state: &str) -> Value {
    for _ in 0..200 {
        let got = s.get_json(&format!("{SET}/{id}")).await;
        if got["@agentry.health"]["state"] == state {
            return got["@agentry.health"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = s.get_json(&format!("{SET}/{id}")).await;
    panic!("{id} never became {state}: {}", got["@agentry.health"]);
}

async fn listed(s: &TestServer, query: &str) -> Vec<String> {
    let r = s
        .control_as(TENANT_A, Method::GET, &format!("/a2a/agents?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let body: Value = r.json().await.unwrap();
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_watched_agent_goes_from_healthy_to_drifted_to_unreachable() {
    let s = TestServer::start().await;
    let agent = Agent::start(Answer::Status(200)).await;
    agent.set(Answer::Card(agent.card()));
    register(&s, "travel", agent.card()).await;
    watch(&s).await;
    check_now(&s).await;
    let healthy = health_becomes(&s, "travel", "healthy").await;
    assert_eq!(
        healthy["url"],
        format!("{}/.well-known/agent-card.json", agent.origin)
    );
    let first = healthy["changedDateTime"].clone();
    assert_eq!(listed(&s, "health=healthy").await, ["travel"]);

    // The agent changes its card: drifted, with what changed.
    let mut changed = agent.card();
    changed["description"] = "Books flights only".into();
    changed["skills"][0]["tags"] = json!(["travel", "flights"]);
    agent.set(Answer::Card(changed));
    check_now(&s).await;
    let drifted = health_becomes(&s, "travel", "drifted").await;
    assert_eq!(
        drifted["differences"],
        json!([{"pointer": "/description", "change": "changed"},
               {"pointer": "/skills/0/tags/1", "change": "added"}])
    );
    assert_ne!(drifted["changedDateTime"], first);

    // It stops answering: unreachable, with why.
    agent.set(Answer::Status(503));
    check_now(&s).await;
    let down = health_becomes(&s, "travel", "unreachable").await;
    assert_eq!(down["error"], "answered 503");
    assert_eq!(listed(&s, "health=unreachable").await, ["travel"]);
    assert!(listed(&s, "health=healthy").await.is_empty());
    let metrics = s
        .client
        .get(format!("{}/metrics", s.origin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("agentry_watched_agents{state=\"unreachable\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("agentry_agent_checks_total{outcome=\"drifted\"} 1"));
}

#[tokio::test]
async fn redirects_oversized_cards_and_slow_agents_are_unreachable() {
    let s = TestServer::start_configured(|c| c.watch.timeout_seconds = 1).await;
    let redirecting = Agent::start(Answer::Redirect).await;
    let huge = Agent::start(Answer::Huge).await;
    let slow = Agent::start(Answer::Status(200)).await;
    slow.set(Answer::Slow(Duration::from_secs(3), slow.card()));
    register(&s, "redirecting", redirecting.card()).await;
    register(&s, "huge", huge.card()).await;
    register(&s, "slow", slow.card()).await;
    watch(&s).await;
    check_now(&s).await;
    let r = health_becomes(&s, "redirecting", "unreachable").await;
    assert_eq!(
        r["error"],
        "answered 302 redirecting to http://169.254.169.254/latest/meta-data (redirects are not followed)"
    );
    let r = health_becomes(&s, "huge", "unreachable").await;
    assert_eq!(r["error"], "the card is larger than 256 KiB");
    let r = health_becomes(&s, "slow", "unreachable").await;
    assert_eq!(r["error"], "no answer within 1 s");
}

#[tokio::test]
async fn the_list_keeps_one_kind_of_agent_when_asked() {
    let s = TestServer::start().await;
    let agent = Agent::start(Answer::Status(200)).await;
    agent.set(Answer::Card(agent.card()));
    register(&s, "travel", agent.card()).await;
    // An instance whose agent does not answer at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/a2a", closed.local_addr().unwrap());
    drop(closed);
    let r = s
        .post(
            "/agentRegistry/agentInstances",
            json!({"id": "desk", "displayName": "Desk", "ownerIds": [USER], "url": url}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    watch(&s).await;
    check_now(&s).await;
    health_becomes(&s, "travel", "healthy").await;
    for _ in 0..200 {
        if !listed(&s, "health=unreachable").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        listed(&s, "health=unreachable&kind=agentInstance").await,
        ["desk"]
    );
    assert!(
        listed(&s, "health=unreachable&kind=agentRegistration")
            .await
            .is_empty()
    );
    assert_eq!(
        listed(&s, "health=healthy&kind=agentRegistration").await,
        ["travel"]
    );
    assert!(
        listed(&s, "health=healthy&kind=agentInstance")
            .await
            .is_empty()
    );
    // Without health: registrations by their annotations; instances carry none.
    assert_eq!(listed(&s, "kind=agentRegistration").await, ["travel"]);
    assert!(listed(&s, "kind=agentInstance").await.is_empty());
}

#[tokio::test]
async fn agents_off_the_allow_list_are_never_contacted() {
    let s = TestServer::start_configured(|c| {
        c.watch.allow = Some(agentry::outbound::AllowList::parse(&["public"]).unwrap());
    })
    .await;
    let agent = Agent::start(Answer::Status(200)).await;
    agent.set(Answer::Card(agent.card()));
    register(&s, "inside", agent.card()).await;
    watch(&s).await;
    check_now(&s).await;
    let r = health_becomes(&s, "inside", "unreachable").await;
    assert_eq!(r["error"], "'127.0.0.1' is not on the watch allow-list");
}

#[tokio::test]
async fn checks_need_a_watching_tenant_and_the_list_refuses_bad_filters() {
    let s = TestServer::start().await;
    let r = s
        .control_as(TENANT_A, Method::POST, "/a2a/watch")
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "BadRequest").await;
    for bad in [
        "health=sick",
        "signature=maybe",
        "validation=yes",
        "top=0",
        "cursor=x",
        "kind=agent",
        "colour=red",
    ] {
        let r = s
            .control_as(TENANT_A, Method::GET, &format!("/a2a/agents?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Without a health filter: registrations by their annotations.
    register(&s, "plain", card("https://plain.example/a2a")).await;
    assert_eq!(listed(&s, "").await, ["plain"]);
    assert!(listed(&s, "signature=verified").await.is_empty());
}

#[tokio::test]
async fn two_replicas_on_postgresql_check_each_agent_once() {
    let keys = tempfile::tempdir().unwrap();
    let db = crate::pg::shared().create_database();
    let replica = || {
        TestServer::start_configured(|c| {
            c.keys_dir = keys.path().to_owned();
            c.database_url = db.clone();
        })
    };
    let (a, b) = (replica().await, replica().await);
    let agent = Agent::start(Answer::Status(200)).await;
    agent.set(Answer::Card(agent.card()));
    for i in 0..10 {
        register(
            if i % 2 == 0 { &a } else { &b },
            &format!("r{i}"),
            agent.card(),
        )
        .await;
    }
    watch(&a).await;
    check_now(&a).await;
    for i in 0..10 {
        health_becomes(&b, &format!("r{i}"), "healthy").await;
    }
    // Both replicas look every second; the leases let one check each agent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(agent.hits.load(std::sync::atomic::Ordering::SeqCst), 10);
}

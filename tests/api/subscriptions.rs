//! Change notifications: subscriptions (`/subscriptions`), the validation
//! handshake, the allow-list, and delivery to receivers on loopback:
//! change types, retries with backoff, the `missed` lifecycle event, and a
//! kill -9 during delivery.

use crate::support::*;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A notification receiver on a loopback port: echoes validation tokens
/// (or not), fails the first `fail` deliveries, records the rest.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<AtomicU32>,
    fail: Arc<AtomicU32>,
    handshakes: Arc<AtomicU32>,
    wrong_token: bool,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    body: String,
) -> (AxumStatus, String) {
    if let Some(token) = validation_token(&uri) {
        r.handshakes.fetch_add(1, Ordering::SeqCst);
        let answer = if r.wrong_token {
            "nope".to_owned()
        } else {
            token
        };
        return (AxumStatus::OK, answer);
    }
    r.attempts.fetch_add(1, Ordering::SeqCst);
    if r.fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (AxumStatus::SERVICE_UNAVAILABLE, String::new());
    }
    let batch: Value = serde_json::from_str(&body).expect("a JSON notification batch");
    let items = batch["value"].as_array().expect("value").clone();
    r.received.lock().unwrap().extend(items);
    (AxumStatus::ACCEPTED, String::new())
}

/// The `validationToken` query parameter, form-decoded.
fn validation_token(uri: &axum::http::Uri) -> Option<String> {
    let value = uri
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix("validationToken="))?;
    let spaced = value.replace('+', " ");
    Some(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

impl Receiver {
    /// Serves the receiver; returns its URL.
    async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/hook")
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` distinct notifications (by id) have arrived.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let got = distinct(&self.received());
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} of {n} notifications arrived: {:?}",
            distinct(&self.received()).len(),
            self.received()
        );
    }
}

/// The notifications in arrival order, repeats (same id) dropped.
fn distinct(items: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .filter(|n| seen.insert(n["id"].as_str().unwrap_or("").to_owned()))
        .cloned()
        .collect()
}

fn in_hours(hours: i64) -> String {
    let t = agentry::clock::wall_now() + time::Duration::hours(hours);
    agentry::clock::entity_timestamp(t)
}

fn subscription(url: &str, change_type: &str) -> Value {
    json!({
        "changeType": change_type,
        "notificationUrl": url,
        "resource": "agentRegistry/agentInstances",
        "expirationDateTime": in_hours(24),
        "clientState": "secret-state",
    })
}

fn changes(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|n| {
            (
                n["changeType"].as_str().unwrap().to_owned(),
                n["resourceData"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_subscription_passes_the_handshake_and_is_told_of_creates_updates_and_deletes() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let r = s
        .post(
            "/subscriptions",
            subscription(&url, "created,updated,deleted"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub: Value = r.json().await.unwrap();
    assert_eq!(receiver.handshakes.load(Ordering::SeqCst), 1);
    assert!(
        sub["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#subscriptions/$entity")
    );
    assert_eq!(sub["resource"], "agentRegistry/agentInstances");
    assert_eq!(sub["clientState"], "secret-state");
    assert!(sub["applicationId"].is_string() && sub["creatorId"] == USER);

    s.create_instance(instance_body("n1", "One")).await;
    let r = s
        .patch(
            "/agentRegistry/agentInstances/n1",
            json!({"displayName": "Uno"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.delete("/agentRegistry/agentInstances/n1").await.status(),
        StatusCode::NO_CONTENT
    );

    let got = receiver.wait_for(3).await;
    assert_eq!(
        changes(&got),
        [("created", "n1"), ("updated", "n1"), ("deleted", "n1")]
            .map(|(c, i)| (c.to_owned(), i.to_owned()))
    );
    let n = &got[0];
    assert_eq!(n["subscriptionId"], sub["id"]);
    assert_eq!(n["clientState"], "secret-state");
    assert_eq!(n["tenantId"], TENANT_A);
    assert_eq!(n["resource"], "agentRegistry/agentInstances/n1");
    assert_eq!(
        n["resourceData"]["@odata.type"],
        "#microsoft.graph.agentInstance"
    );
    assert_eq!(
        n["subscriptionExpirationDateTime"],
        sub["expirationDateTime"]
    );
}

#[tokio::test]
async fn only_the_change_types_and_the_resource_subscribed_to_are_notified() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let r = s
        .post("/subscriptions", subscription(&url, "deleted"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.create_instance(instance_body("d1", "One")).await;
    s.create_instance(instance_body("d2", "Two")).await;
    s.create_collection("Not followed").await;
    assert_eq!(
        s.delete("/agentRegistry/agentInstances/d2").await.status(),
        StatusCode::NO_CONTENT
    );
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        changes(&distinct(&receiver.received())),
        [("deleted".to_owned(), "d2".to_owned())]
    );
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn a_receiver_that_does_not_echo_the_token_is_refused_and_nothing_is_stored() {
    let s = TestServer::start().await;
    let receiver = Receiver {
        wrong_token: true,
        ..Receiver::default()
    };
    let url = receiver.clone().start().await;
    let r = s
        .post("/subscriptions", subscription(&url, "created"))
        .await;
    let body = assert_graph_error(r, 400, "InvalidRequest").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("validationToken"),
        "{body}"
    );
    let list = s.get_json("/subscriptions").await;
    assert_eq!(list["value"], json!([]));
    // Nobody listening at all: refused the same way.
    let r = s
        .post(
            "/subscriptions",
            subscription("http://127.0.0.1:9/hook", "created"),
        )
        .await;
    assert_graph_error(r, 400, "InvalidRequest").await;
}

#[tokio::test]
async fn receivers_off_the_allow_list_are_refused_before_any_request() {
    let s = TestServer::start().await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[fd00::1]/hook",
        "http://192.168.1.10:8080/hook",
    ] {
        let r = s.post("/subscriptions", subscription(url, "created")).await;
        let body = assert_graph_error(r, 400, "InvalidRequest").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("allow-list"),
            "{url}: {body}"
        );
    }
    // An operator who allows only public receivers also shuts loopback out.
    let public_only = TestServer::start_configured(|c| {
        c.notifications.allow = Some(agentry::notify::AllowList::parse(&["public"]).unwrap());
    })
    .await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let r = public_only
        .post("/subscriptions", subscription(&url, "created"))
        .await;
    assert_graph_error(r, 400, "InvalidRequest").await;
    let named = url.replace("127.0.0.1", "localhost");
    let r = public_only
        .post("/subscriptions", subscription(&named, "created"))
        .await;
    assert_graph_error(r, 400, "InvalidRequest").await;
    assert_eq!(receiver.handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_receiver_that_fails_then_recovers_gets_every_change_in_order() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    receiver.fail.store(3, Ordering::SeqCst);
    let url = receiver.clone().start().await;
    let r = s
        .post("/subscriptions", subscription(&url, "created,updated"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.create_instance(instance_body("r1", "One")).await;
    for n in 0..4 {
        let r = s
            .patch(
                "/agentRegistry/agentInstances/r1",
                json!({"displayName": format!("v{n}")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let got = receiver.wait_for(5).await;
    assert!(
        receiver.attempts.load(Ordering::SeqCst) >= 4,
        "the failures were retried"
    );
    let kinds: Vec<String> = changes(&got).into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        kinds,
        ["created", "updated", "updated", "updated", "updated"]
    );
}

#[tokio::test]
async fn a_receiver_failing_past_the_retry_time_gets_a_missed_lifecycle_notification() {
    let s = TestServer::start_configured(|c| c.notifications.retry_seconds = 0).await;
    let receiver = Receiver::default();
    receiver.fail.store(1, Ordering::SeqCst);
    let url = receiver.clone().start().await;
    let lifecycle = Receiver::default();
    let lifecycle_url = lifecycle.clone().start().await;
    let mut body = subscription(&url, "created");
    body["lifecycleNotificationUrl"] = lifecycle_url.into();
    let r = s.post("/subscriptions", body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub: Value = r.json().await.unwrap();
    s.create_instance(instance_body("m1", "One")).await;
    let events = lifecycle.wait_for(1).await;
    assert_eq!(events[0]["lifecycleEvent"], "missed");
    assert_eq!(events[0]["subscriptionId"], sub["id"]);
    // The subscription is marked, and keeps everything else.
    let marked = s
        .get_json(&format!("/subscriptions/{}", sub["id"].as_str().unwrap()))
        .await;
    assert!(
        marked["@agentry.lastMissedDateTime"].is_string(),
        "{marked}"
    );
    assert_eq!(marked["expirationDateTime"], sub["expirationDateTime"]);
    // Delivery goes on with the changes after the ones dropped.
    s.create_instance(instance_body("m2", "Two")).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(changes(&got), [("created".to_owned(), "m2".to_owned())]);
}

#[tokio::test]
async fn an_application_lists_renews_and_deletes_only_its_own_subscriptions() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let r = s
        .post("/subscriptions", subscription(&url, "created"))
        .await;
    let sub: Value = r.json().await.unwrap();
    let id = sub["id"].as_str().unwrap();
    let path = format!("/subscriptions/{id}");

    let list = s.get_json("/subscriptions").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(s.get_json(&path).await["id"], id);

    let later = in_hours(48);
    let r = s.patch(&path, json!({"expirationDateTime": later})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let renewed: Value = r.json().await.unwrap();
    assert_ne!(renewed["expirationDateTime"], sub["expirationDateTime"]);
    assert_eq!(
        s.get_json(&path).await["expirationDateTime"],
        renewed["expirationDateTime"]
    );
    let r = s
        .patch(&path, json!({"resource": "agentRegistry/agentCollections"}))
        .await;
    assert_graph_error(r, 400, "InvalidRequest").await;

    // Another application sees none of it.
    let other = s.app_token(
        "33333333-0000-4000-8000-000000000003",
        &["AgentInstance.Read.All"],
    );
    let r = s
        .client
        .get(s.url("/subscriptions"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["value"], json!([]));
    let r = s
        .client
        .get(s.url(&path))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "ResourceNotFound").await;
    let r = s
        .client
        .delete(s.url(&path))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "ResourceNotFound").await;

    let reauthorize = format!("{path}/reauthorize");
    assert_eq!(
        s.post(&reauthorize, json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = s
        .client
        .post(s.url(&reauthorize))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "ResourceNotFound").await;
    assert_eq!(s.delete(&path).await.status(), StatusCode::NO_CONTENT);
    assert_graph_error(s.get(&path).await, 404, "ResourceNotFound").await;
    let audits = s
        .get_json("/auditLogs/directoryAudits?$filter=category eq 'ChangeNotifications'")
        .await;
    let activities: Vec<&str> = audits["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activityDisplayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        activities,
        [
            "Delete subscription",
            "Update subscription",
            "Add subscription"
        ]
    );
    // No more notifications once deleted.
    s.create_instance(instance_body("x1", "One")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn subscription_bodies_graph_refuses_are_refused_with_invalid_request() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let cases = [
        json!({"resource": "users"}),
        json!({"resource": "agentRegistry/agentInstances/a1"}),
        json!({"changeType": "created,moved"}),
        json!({"expirationDateTime": in_hours(-1)}),
        json!({"expirationDateTime": in_hours(24 * 4)}),
        json!({"notificationUrl": "not a url"}),
        json!({"includeResourceData": true}),
        json!({"clientState": "x".repeat(200)}),
        json!({"unknownProperty": 1}),
        json!({"changeType": null}),
    ];
    for change in cases {
        let mut body = subscription(&url, "created");
        body.as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let r = s.post("/subscriptions", body).await;
        assert_graph_error(r, 400, "InvalidRequest").await;
    }
    assert_eq!(
        receiver.handshakes.load(Ordering::SeqCst),
        0,
        "refused before the handshake"
    );
}

#[tokio::test]
async fn subscribing_needs_read_permission_on_the_resource() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let token = s.app_token(APP, &["AgentCollection.Read.All"]);
    let r = s
        .client
        .request(Method::POST, s.url("/subscriptions"))
        .bearer_auth(&token)
        .json(&subscription(&url, "created"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let mut body = subscription(&url, "created");
    body["resource"] = "agentRegistry/agentCollections".into();
    let r = s
        .client
        .request(Method::POST, s.url("/subscriptions"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_kill_9_during_delivery_loses_no_notification() {
    let dir = tempfile::tempdir().unwrap();
    let keys = agentry::auth::KeyRing::load_or_create(dir.path()).unwrap();
    let token = keys.mint(&token_request(TENANT_A, 3600, 0)).unwrap();
    let client = crate::support::client();
    let receiver = Receiver::default();
    receiver.fail.store(u32::MAX, Ordering::SeqCst);
    let url = receiver.clone().start().await;

    let mut first = crate::durability::Process::start(dir.path());
    let post = |origin: &str, path: &str, body: Value| {
        client
            .post(format!("{origin}/beta{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = post(&first.1, "/subscriptions", subscription(&url, "created"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for i in 0..10 {
        let r = post(
            &first.1,
            "/agentRegistry/agentInstances",
            instance_body(&format!("k{i}"), "K"),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    while receiver.attempts.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap(); // SIGKILL in the middle of retrying
    first.0.wait().unwrap();

    receiver.fail.store(0, Ordering::SeqCst);
    let _second = crate::durability::Process::start(dir.path());
    let got = receiver.wait_for(10).await;
    let mut ids: Vec<String> = changes(&got).into_iter().map(|(_, id)| id).collect();
    ids.sort();
    assert_eq!(ids, (0..10).map(|i| format!("k{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn two_replicas_on_postgresql_deliver_each_change_once() {
    let keys = tempfile::tempdir().unwrap();
    let db = crate::pg::shared().create_database();
    let replica = || {
        TestServer::start_configured(|c| {
            c.keys_dir = keys.path().to_owned();
            c.database_url = db.clone();
        })
    };
    let (a, b) = (replica().await, replica().await);
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let r = a
        .post("/subscriptions", subscription(&url, "created"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for i in 0..20 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.create_instance(instance_body(&format!("p{i:02}"), "P"))
            .await;
    }
    receiver.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The lease kept the two replicas from both delivering a change.
    assert_eq!(receiver.received().len(), 20);
}

#[tokio::test]
async fn a_reset_of_the_tenant_is_a_missed_lifecycle_event_and_delivery_goes_on() {
    let s = TestServer::start().await;
    let receiver = Receiver::default();
    let url = receiver.clone().start().await;
    let lifecycle = Receiver::default();
    let mut body = subscription(&url, "created");
    body["lifecycleNotificationUrl"] = lifecycle.clone().start().await.into();
    assert_eq!(
        s.post("/subscriptions", body).await.status(),
        StatusCode::CREATED
    );
    let r = s
        .control_as(TENANT_A, Method::POST, "/reset")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let events = lifecycle.wait_for(1).await;
    assert_eq!(events[0]["lifecycleEvent"], "missed");
    s.create_instance(instance_body("after-reset", "A")).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(
        changes(&got),
        [("created".to_owned(), "after-reset".to_owned())]
    );
}

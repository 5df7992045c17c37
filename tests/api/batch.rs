//! `POST /beta/$batch`: Graph's JSON batching, each inner request served as
//! a request of its own.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn batch(s: &TestServer, token: &str, version: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .client
        .post(format!("{}/{version}/$batch", s.origin))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn answer<'a>(batch: &'a Value, id: &str) -> &'a Value {
    batch["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no answer for {id}: {batch}"))
}

#[tokio::test]
async fn a_batch_runs_its_requests_in_order_and_answers_each_inside_it() {
    let s = TestServer::start().await;
    let body = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/agentRegistry/agentInstances",
         "headers": {"Content-Type": "application/json"}, "body": instance_body("b1", "Batched")},
        {"id": "2", "method": "GET", "url": "agentRegistry/agentInstances/b1?$select=id,displayName", "dependsOn": ["1"]},
        {"id": "3", "method": "PATCH", "url": "/agentRegistry/agentInstances/b1", "dependsOn": ["2"],
         "body": {"displayName": "Renamed"}},
        {"id": "4", "method": "POST", "url": "/agentRegistry/agentInstances", "body": {"displayName": "x", "ownerIds": [], "nope": 1}},
        {"id": "5", "method": "DELETE", "url": "/agentRegistry/agentInstances/b1", "dependsOn": ["4"]},
        {"id": "6", "method": "GET", "url": "/agentRegistry/agentInstances/$count"},
        {"id": "7", "method": "GET", "url": "/$batch"},
        {"id": "8", "method": "GET", "url": "/agentRegistry/nowhere"},
    ]});
    let (status, got) = batch(&s, &s.token(), "beta", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer(&got, "1")["status"], 201);
    assert_eq!(answer(&got, "1")["body"]["displayName"], "Batched");
    assert!(answer(&got, "1")["headers"]["request-id"].is_string());
    assert_eq!(answer(&got, "2")["status"], 200);
    assert_eq!(answer(&got, "2")["body"]["displayName"], "Batched");
    assert_eq!(answer(&got, "3")["status"], 204);
    assert_eq!(answer(&got, "4")["status"], 400);
    assert_eq!(
        answer(&got, "4")["body"]["error"]["code"],
        "ValidationError"
    );
    assert_eq!(
        answer(&got, "5")["status"],
        424,
        "its dependency failed, so it did not run"
    );
    assert_eq!(answer(&got, "6")["status"], 200);
    // Not JSON: base64, as Graph answers it (and the SDKs' batch readers decode it).
    assert_eq!(answer(&got, "6")["body"], "MQ==");
    assert_eq!(answer(&got, "7")["status"], 400, "no nested batch");
    assert_eq!(answer(&got, "8")["status"], 400);
    // What the batch did is real.
    assert_eq!(
        s.get_json("/agentRegistry/agentInstances/b1").await["displayName"],
        "Renamed"
    );
}

#[tokio::test]
async fn a_batch_can_do_only_what_its_requests_could_and_is_refused_whole_for_its_own_shape() {
    let s = TestServer::start().await;
    let reader = s.user_token(
        &["AgentInstance.Read.All"],
        &[agentry::auth::permissions::AGENT_REGISTRY_ADMINISTRATOR],
    );
    let body = json!({"requests": [
        {"id": "r", "method": "GET", "url": "/agentRegistry/agentInstances"},
        {"id": "w", "method": "POST", "url": "/agentRegistry/agentInstances", "body": instance_body("x", "x")},
    ]});
    let (status, got) = batch(&s, &reader, "beta", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer(&got, "r")["status"], 200);
    assert_eq!(answer(&got, "w")["status"], 403);
    assert_eq!(
        answer(&got, "w")["body"]["error"]["code"],
        "Authorization_RequestDenied"
    );
    assert_eq!(
        s.get("/agentRegistry/agentInstances/x").await.status(),
        StatusCode::NOT_FOUND
    );

    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/agentRegistry"}))
        .collect();
    let r = s
        .req(Method::POST, "/$batch")
        .json(&json!({"requests": many}))
        .send()
        .await
        .unwrap();
    let e = assert_graph_error(r, 400, "BadRequest").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{e}"
    );
    let r = s
        .client
        .post(format!("{}/beta/$batch", s.origin))
        .json(&json!({"requests": []}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
}

#[tokio::test]
async fn a_v1_batch_reaches_what_lives_under_v1() {
    let s = TestServer::start().await;
    let body = json!({"requests": [
        {"id": "p", "method": "GET", "url": "/copilot/admin/catalog/packages"},
        {"id": "a", "method": "GET", "url": "/agentRegistry/agentInstances"},
    ]});
    let (status, got) = batch(&s, &s.token(), "v1.0", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer(&got, "p")["status"], 200);
    assert!(
        answer(&got, "p")["body"]["@odata.context"]
            .as_str()
            .unwrap()
            .contains("/v1.0/$metadata#")
    );
    assert_eq!(
        answer(&got, "a")["status"],
        400,
        "the registry is not on v1.0"
    );
}

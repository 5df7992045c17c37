//! A2A card validation of agent registrations, per `card_validation`:
//! off (kept as sent), warn (kept and reported), require (refused).

use crate::support::*;
use agentry::domain::a2a::ValidationMode;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SET: &str = "/copilot/agentRegistrations";

fn card(url: &str) -> Value {
    json!({
        "protocolVersion": "0.3.0", "name": "Travel", "description": "Books trips",
        "version": "1.0.0", "url": url,
        "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "book", "name": "Book", "description": "Books", "tags": ["travel"]}]
    })
}

fn registration(id: &str, card: Value) -> Value {
    json!({
        "id": id, "displayName": "R", "ownerIds": [USER], "createdBy": USER,
        "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
        "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z",
        "agentCard": card,
    })
}

async fn server(mode: ValidationMode) -> TestServer {
    TestServer::start_configured(|c| c.card_validation = mode).await
}

#[tokio::test]
async fn with_validation_off_a_card_is_kept_as_sent_and_not_annotated() {
    let s = server(ValidationMode::Off).await;
    let r = s
        .post(SET, registration("r1", json!({"anything": [1, 2]})))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/r1")).await;
    assert_eq!(got["agentCard"], json!({"anything": [1, 2]}));
    assert!(got.get("@agentry.cardValidation").is_none(), "{got}");
}

#[tokio::test]
async fn with_validation_warn_a_card_is_kept_and_its_problems_are_annotated() {
    let s = server(ValidationMode::Warn).await;
    let r = s
        .post(SET, registration("bad", card("ftp://travel.example")))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/bad")).await;
    assert_eq!(
        got["@agentry.cardValidation"],
        json!({"version": "0.3", "valid": false, "problems": [
            {"pointer": "/url", "message": "'url' must be an absolute http or https URL"}]})
    );
    let r = s
        .post(
            SET,
            registration("good", card("https://travel.example/a2a")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/good")).await;
    assert_eq!(got["@agentry.cardValidation"]["valid"], true);
    // A PATCH of the card checks it again; one of other properties leaves it be.
    let r = s
        .patch(&format!("{SET}/good"), json!({"agentCard": card("nope")}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = s.get_json(&format!("{SET}/good")).await;
    assert_eq!(got["@agentry.cardValidation"]["valid"], false);
}

#[tokio::test]
async fn with_validation_require_an_invalid_card_is_refused_with_every_problem() {
    let s = server(ValidationMode::Require).await;
    let mut bad = card("ftp://travel.example");
    bad.as_object_mut().unwrap().remove("name");
    let r = s.post(SET, registration("bad", bad)).await;
    let error = assert_graph_error(r, 400, "ValidationError").await;
    assert_eq!(
        error["error"]["details"],
        json!([
            {"code": "invalidAgentCard", "message": "'name' is required", "target": "agentCard/name"},
            {"code": "invalidAgentCard", "message": "'url' must be an absolute http or https URL", "target": "agentCard/url"},
        ])
    );
    assert_eq!(
        s.get(&format!("{SET}/bad")).await.status(),
        StatusCode::NOT_FOUND
    );

    let r = s
        .post(
            SET,
            registration("good", card("https://travel.example/a2a")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .patch(&format!("{SET}/good"), json!({"agentCard": {"name": "x"}}))
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let r = s
        .patch(&format!("{SET}/good"), json!({"displayName": "Renamed"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

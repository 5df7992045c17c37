//! The console's view of what Agentry knows of an agent's card: the
//! validation of its built card, shown in headless Chromium.

use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use agentry::domain::a2a::ValidationMode;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn in_chromium_the_agent_view_shows_its_cards_validation_problems() {
    let s = TestServer::start_configured(|c| {
        c.console_dev_signin = true;
        c.card_validation = ValidationMode::Warn;
    })
    .await;
    let agent = json!({
        "id": "ftp-agent", "displayName": "Legacy Agent", "ownerIds": [USER],
        "url": "ftp://legacy.example/a2a",
        "agentCardManifest": {
            "displayName": "Legacy Agent", "description": "Reached over FTP.", "version": "1.0.0",
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "capabilities": {},
            "skills": [{"id": "files", "displayName": "Files", "description": "Moves files", "tags": ["files"]}]
        }
    });
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::POST,
            "/agentRegistry/agentInstances",
        )
        .json(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("{}/", s.origin)).await;
    browser.wait_text("h1", |t| t.contains("Sign in")).await;
    browser.click("#dev-signin").await;
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    browser
        .click("#agents a[href=\"#/agents/ftp-agent\"]")
        .await;
    browser
        .wait_text("#agent-name", |t| t == "Legacy Agent")
        .await;
    let badge = browser.wait_text("#validation", |t| !t.is_empty()).await;
    assert_eq!(badge, "1 problem(s)");
    let checks = browser.text("#checks").await.unwrap();
    assert!(
        checks.contains("/url") && checks.contains("absolute http or https URL"),
        "{checks}"
    );
    browser.quit().await;
}

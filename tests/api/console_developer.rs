//! The console's developer tools in headless Chromium: the request journal
//! followed live, fault rules, reset and snapshots, through the control
//! plane with the built-in admin user's delegated token.

use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn create(s: &TestServer, id: &str) {
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::POST,
            "/agentRegistry/agentInstances",
        )
        .json(&json!({"id": id, "displayName": format!("Agent {id}"), "ownerIds": [USER]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Opens the journal row of the request `request_id`.
async fn open_row(browser: &Browser, request_id: &str) {
    let found = browser
        .script(
            "const row = [...document.querySelectorAll('#requests tr')]
               .find(r => r.textContent.includes(arguments[0]));
             if (!row) return false;
             row.querySelector('button.link').click();
             return true;",
            json!([request_id]),
        )
        .await;
    assert_eq!(found, true, "a row for {request_id}");
}

async fn status_of(s: &TestServer, id: &str) -> u16 {
    s.req_as(
        DEFAULT_TENANT,
        Method::GET,
        &format!("/agentRegistry/agentInstances/{id}"),
    )
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

#[tokio::test]
async fn in_chromium_the_developer_tools_follow_the_journal_inject_a_fault_and_restore_a_snapshot()
{
    let s = TestServer::start_configured(|c| {
        c.console_dev_signin = true;
        c.journal.bodies = true;
    })
    .await;
    create(&s, "kept").await;
    let browser = Browser::signed_in(&s.origin).await;

    // The journal, followed live: a request made now shows up by itself.
    browser
        .open(&format!("{}/console/#/developer", s.origin))
        .await;
    browser.wait_text("h1", |t| t == "Requests").await;
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/agentRegistry/agentInstances/kept",
        )
        .header("client-request-id", "followed-live")
        .send()
        .await
        .unwrap();
    let request_id = r.headers()["request-id"].to_str().unwrap().to_owned();
    let rows = browser
        .wait_text("#requests", |t| t.contains(&request_id))
        .await;
    assert!(
        rows.contains("/beta/agentRegistry/agentInstances/kept"),
        "{rows}"
    );
    // Its detail: ids, and the body kept with --journal-bodies.
    open_row(&browser, &request_id).await;
    let detail = browser
        .wait_text("#request-detail", |t| !t.is_empty())
        .await;
    assert!(detail.contains("Request id"), "{detail}");
    // A filter by client request id keeps that request only.
    browser.type_into("#clientRequestId", "followed-live").await;
    browser.click("#journal-button").await;
    browser
        .wait_text("#requests", |t| t.contains(&request_id))
        .await;
    let count = browser
        .script(
            "return document.querySelectorAll('#requests tr').length;",
            json!([]),
        )
        .await;
    assert_eq!(count, 1);
    open_row(&browser, &request_id).await;
    let detail = browser
        .wait_text("#request-detail", |t| t.contains("followed-live"))
        .await;
    assert!(detail.contains("Agent kept"), "the response body: {detail}");
    crate::console::screenshot(&browser, "developer").await;
    browser.click("#download-har").await;
    let saved = browser.wait_text("#har-saved", |t| !t.is_empty()).await;
    assert!(saved.contains("1 request"), "{saved}");

    // A fault rule added in the console fails the next matching request.
    browser.click("#tab-faults").await;
    browser.wait_text("#no-faults", |t| !t.is_empty()).await;
    browser
        .type_into("#fault-path", "/beta/agentRegistry/agentInstances/kept")
        .await;
    browser.type_into("#fault-status", "503").await;
    browser.type_into("#fault-count", "1").await;
    browser.click("#add-fault").await;
    browser
        .wait_text("#faults tbody", |t| t.contains("503"))
        .await;
    assert_eq!(status_of(&s, "kept").await, 503);
    assert_eq!(status_of(&s, "kept").await, 200, "the rule applied once");
    browser.click("#tab-faults").await;
    browser.click("#tab-requests").await;
    browser.click("#tab-faults").await;
    browser.wait_text("#no-faults", |t| !t.is_empty()).await;
    // A refused rule shows Graph's message.
    browser.type_into("#fault-path", "no-slash").await;
    browser.type_into("#fault-status", "503").await;
    browser.click("#add-fault").await;
    let refused = browser
        .wait_text("#fault-form-status .message", |t| !t.is_empty())
        .await;
    assert!(refused.contains("'path'"), "{refused}");

    // A snapshot downloaded, the tenant reset, then a snapshot restored.
    let snapshot: Value = s
        .client
        .get(format!("{}/_agentry/snapshot", s.origin))
        .bearer_auth(s.app_token_for(DEFAULT_TENANT, &["Agentry.Admin"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = std::env::temp_dir().join(format!("agentry-snapshot-{}.json", std::process::id()));
    std::fs::write(&file, snapshot.to_string()).unwrap();
    browser.click("#tab-data").await;
    browser.click("#download-snapshot").await;
    let saved = browser
        .wait_text("#snapshot-saved", |t| !t.is_empty())
        .await;
    assert!(saved.contains("1 agent instance"), "{saved}");
    browser.click("#reset").await;
    browser.click("#confirm-delete").await;
    browser.wait_text("#reset-done", |t| !t.is_empty()).await;
    assert_eq!(status_of(&s, "kept").await, 404);
    browser
        .type_into("#snapshot-file", file.to_str().unwrap())
        .await;
    browser.click("#restore-snapshot").await;
    browser.click("#confirm-delete").await;
    browser
        .wait_text("#snapshot-restored", |t| !t.is_empty())
        .await;
    assert_eq!(status_of(&s, "kept").await, 200);
    std::fs::remove_file(&file).ok();
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_the_developer_tools_say_what_a_token_without_the_control_plane_needs() {
    let s = TestServer::start().await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("{}/console", s.origin)).await;
    let mut request = token_request(DEFAULT_TENANT, 3600, 0);
    request.scopes = vec!["AgentInstance.Read.All".into()];
    request.wids = vec![];
    let reader = s.keys.mint(&request).unwrap();
    browser.type_into("#token-input", &reader).await;
    browser.click("#token-form button[type=submit]").await;
    browser.wait_text("h1", |t| t == "Agents").await;
    browser.click("#nav-developer").await;
    let needs = browser.wait_text("#control-needs", |t| !t.is_empty()).await;
    assert!(
        needs.contains("Agentry.Admin") && needs.contains("Global Administrator"),
        "{needs}"
    );
    browser.quit().await;
}

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

    let browser = Browser::signed_in(&s.origin).await;
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

#[tokio::test]
async fn in_chromium_registrations_show_their_card_and_the_activity_lists_the_changes() {
    let s = TestServer::start_configured(|c| {
        c.console_dev_signin = true;
        c.card_validation = ValidationMode::Warn;
    })
    .await;
    let registration = json!({
        "id": "travel-registration", "displayName": "Travel Registration",
        "ownerIds": [USER], "createdBy": USER,
        "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
        "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z",
        "agentCard": {
            "name": "Travel", "description": "Books trips", "version": "1.0.0",
            "supportedInterfaces": [{"url": "https://travel.example/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "book", "name": "Book a trip", "description": "Books", "tags": ["travel"]}]
        }
    });
    let r = s
        .req_as(DEFAULT_TENANT, Method::POST, "/copilot/agentRegistrations")
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let browser = Browser::signed_in(&s.origin).await;
    browser
        .wait_text("#agent-count", |t| {
            t.ends_with("agents") || t.ends_with("agent")
        })
        .await;

    browser.click("#nav-registrations").await;
    browser
        .wait_text("#registration-count", |t| t == "1 registration")
        .await;
    browser
        .click("#registrations a[href=\"#/registrations/travel-registration\"]")
        .await;
    browser
        .wait_text("#registration-name", |t| t == "Travel Registration")
        .await;
    let skills = browser.text("#skills").await.unwrap();
    assert!(
        skills.contains("Book a trip") && skills.contains("travel"),
        "{skills}"
    );
    let badge = browser.wait_text("#validation", |t| !t.is_empty()).await;
    assert_eq!(badge, "valid A2A 1.0 card");

    // The list filtered by card checks, from the control plane.
    browser.click("#nav-registrations").await;
    browser
        .wait_text("#registration-count", |t| t == "1 registration")
        .await;
    for (validation, expected) in [("valid", "1 on this page"), ("invalid", "0 on this page")] {
        browser
            .script(
                "document.getElementById('check-validation').value = arguments[0];",
                json!([validation]),
            )
            .await;
        browser.click("#checks-button").await;
        browser
            .wait_text("#registration-count", |t| t == expected)
            .await;
    }
    browser
        .script(
            "document.getElementById('check-validation').value = 'valid';",
            json!([]),
        )
        .await;
    browser.click("#checks-button").await;
    let row = browser.wait_text("#checked tbody", |t| !t.is_empty()).await;
    assert!(
        row.contains("travel-registration") && row.contains("valid"),
        "{row}"
    );

    browser.click("#nav-activity").await;
    let count = browser
        .wait_text("#activity-count", |t| !t.is_empty())
        .await;
    assert!(count.ends_with("records"), "{count}");
    let timeline = browser.text("#activity").await.unwrap();
    assert!(timeline.contains("Add agent registration"), "{timeline}");
    // Filtered to the control plane's actions: none here.
    browser
        .script(
            "const s = document.getElementById('category'); s.value = 'Agentry'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    browser
        .wait_text("#activity-count", |t| t == "No activity matches.")
        .await;
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_a_copilot_setting_is_changed_and_a_group_scoped_one_says_why_not() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    // Web search is also set in a group policy: Graph refuses it (422).
    let admin = s.app_token_for(DEFAULT_TENANT, &["Agentry.Admin"]);
    let r = s
        .client
        .post(format!("{}/_agentry/copilot/policies", s.origin))
        .bearer_auth(&admin)
        .json(&json!({
            "id": "sales-group", "displayName": "Sales", "service": "cloudPolicyService",
            "scope": "group", "targetGroupIds": ["11111111-2222-3333-4444-555555555555"],
            "priority": 1, "settings": {"microsoft.copilot.allowwebsearch": "0"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let browser = Browser::signed_in(&s.origin).await;
    browser.wait_text("#agent-count", |t| !t.is_empty()).await;
    browser.click("#nav-copilot").await;
    let pinning = "[data-setting=\"microsoft.copilot.copilotchatpinning\"]";
    browser
        .wait_text(&format!("{pinning} .setting-value"), |t| t == "not set")
        .await;
    browser
        .script(
            "const s = document.getElementById('value-microsoft.copilot.copilotchatpinning'); s.value = '1';",
            json!([]),
        )
        .await;
    browser
        .click(&format!("{pinning} button[type=\"submit\"]"))
        .await;
    browser
        .wait_text(&format!("{pinning} .setting-value"), |t| t == "1")
        .await;
    // The policy that now holds it, from the control plane.
    let scope = browser
        .wait_text(&format!("{pinning} .policy-scope"), |t| !t.is_empty())
        .await;
    assert_eq!(scope, "tenant");
    let facts = browser.text(pinning).await.unwrap();
    assert!(facts.contains("Cloud Policy service"), "{facts}");
    let got = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/copilot/admin/policySettings/microsoft.copilot.copilotchatpinning",
        )
        .send()
        .await
        .unwrap();
    let got: serde_json::Value = got.json().await.unwrap();
    assert_eq!(got["value"], "1");
    let web = browser
        .wait_text(
            "[data-setting=\"microsoft.copilot.allowwebsearch\"] .alert",
            |t| !t.is_empty(),
        )
        .await;
    assert!(web.contains("groupScopedSettingNotSupported"), "{web}");
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_the_agents_view_lists_watched_agents_by_health() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    // An instance whose agent does not answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/a2a", closed.local_addr().unwrap());
    drop(closed);
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::POST,
            "/agentRegistry/agentInstances",
        )
        .json(&json!({"id": "desk", "displayName": "Desk", "ownerIds": [USER], "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .control_as(DEFAULT_TENANT, Method::PATCH, "/a2a/settings")
        .json(&json!({"watch": {"enabled": true, "intervalSeconds": 3600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut checked = false;
    for _ in 0..200 {
        let _ = s
            .control_as(DEFAULT_TENANT, Method::POST, "/a2a/watch")
            .send()
            .await
            .unwrap();
        let r = s
            .control_as(
                DEFAULT_TENANT,
                Method::GET,
                "/a2a/agents?health=unreachable&kind=agentInstance",
            )
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        if body["value"].as_array().is_some_and(|v| !v.is_empty()) {
            checked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(checked, "the instance was checked");

    let browser = Browser::signed_in(&s.origin).await;
    browser
        .script("location.hash = '#/agents?health=unreachable';", json!([]))
        .await;
    let rows = browser
        .wait_text("#agents tbody", |t| t.contains("desk"))
        .await;
    assert!(rows.contains("unreachable"), "{rows}");
    browser
        .script(
            "const s = document.getElementById('health'); s.value = 'healthy'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    browser
        .wait_text("#empty", |t| t.contains("No watched agent"))
        .await;
    browser.quit().await;
}

//! Every view of the console, checked by axe-core (the version
//! `tests/console/package.json` pins, installed by `tests/run.sh`) in
//! headless Chromium, wide and narrow: no serious or critical violation of
//! WCAG 2.1 A and AA or of axe's best practices.

use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// axe-core's script, or a failure saying how to install it: a check that
/// cannot run must not pass unseen.
fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/console/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({e}): run tests/run.sh, or `npm ci` in tests/console, \
             which installs the version tests/console/package.json pins"
        )
    })
}

/// The serious and critical violations axe finds on the page as it is.
async fn violations(browser: &Browser, axe: &str) -> Vec<Value> {
    let loaded = browser.script("return typeof window.axe;", json!([])).await;
    if loaded != "object" {
        browser
            .script(&format!("{axe}\nreturn typeof window.axe;"), json!([]))
            .await;
    }
    browser
        .script(
            "window.__axe = null;
             axe.run(document, {runOnly: {type: 'tag', values:
                 ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
               .then(r => { window.__axe = r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => ({id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})); },
                     e => { window.__axe = [{id: 'axe-failed', help: String(e)}]; });
             return true;",
            json!([]),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = browser.script("return window.__axe;", json!([])).await;
        if let Value::Array(found) = result {
            return found;
        }
        assert!(Instant::now() < deadline, "axe did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seed(s: &TestServer) {
    let agent = json!({
        "id": "contoso-travel", "displayName": "Contoso Travel Planner", "ownerIds": [USER],
        "url": "https://agents.contoso.example/travel", "preferredTransport": "JSONRPC",
        "agentCardManifest": {
            "displayName": "Contoso Travel Planner", "description": "Plans business trips.",
            "protocolVersion": "0.3.0", "version": "2.1.0",
            "provider": {"organization": "Contoso", "url": "https://contoso.example"},
            "capabilities": {"streaming": true}, "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "book", "displayName": "Book a flight", "description": "Books flights",
                        "tags": ["booking"], "examples": ["Book me a flight to Oslo"]}]
        }
    });
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
    let manifest = json!({
        "id": "travel-card", "displayName": "Travel card", "description": "A card of its own.",
        "version": "1.0.0", "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "capabilities": {}, "skills": []
    });
    for (path, body) in [
        ("/agentRegistry/agentInstances", agent),
        ("/agentRegistry/agentCardManifests", manifest),
        ("/copilot/agentRegistrations", registration),
    ] {
        let r = s
            .req_as(DEFAULT_TENANT, Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
    }
    let r = s
        .control_as(DEFAULT_TENANT, Method::POST, "/copilot/packages")
        .json(&crate::packages::package(
            "P_1",
            "Travel agent",
            &["DeclarativeAgent"],
            &["Copilot"],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Each view's fragment and an element that shows once it has loaded.
const VIEWS: &[(&str, &str)] = &[
    ("#/agents", "#agent-count"),
    ("#/agents?health=unreachable", "#agent-count"),
    ("#/agents/contoso-travel", "#skills"),
    ("#/registrations", "#registration-count"),
    ("#/registrations/travel-registration", "#skills"),
    ("#/registrations?health=healthy", "#registration-count"),
    ("#/manifests", "#manifests-count"),
    ("#/manifests/travel-card", "#manifest-name"),
    ("#/collections", "#collections-count"),
    (
        "#/collections/00000000-0000-0000-0000-000000000002",
        "#collection-name",
    ),
    ("#/packages", "#packages-count"),
    ("#/packages/P_1", "#package-name"),
    ("#/copilot", "main h2"),
    ("#/activity", "#activity-count"),
    ("#/developer", "#journal-form"),
    ("#/developer/faults", "#fault-form"),
    ("#/developer/data", "#download-snapshot"),
];

#[tokio::test]
async fn in_chromium_no_view_of_the_console_has_a_serious_or_critical_accessibility_violation() {
    let axe = axe_source();
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    seed(&s).await;
    let browser = Browser::start(1280, 900).await;
    let mut found = Vec::new();

    // The pages before signing in: the console's and the identity provider's.
    browser.open(&format!("{}/", s.origin)).await;
    browser.wait_text("h1", |t| t.contains("Sign in")).await;
    for v in violations(&browser, &axe).await {
        found.push(json!({"view": "sign-in", "violation": v}));
    }
    browser
        .open(&format!(
            "{}/{DEFAULT_TENANT}/oauth2/v2.0/authorize?client_id={}&response_type=code\
             &redirect_uri={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&state=s\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            s.origin,
            agentry::auth::CONSOLE_CLIENT_ID,
            urlencoding(&format!("{}/console/", s.origin)),
        ))
        .await;
    browser.wait_text("h1", |t| !t.is_empty()).await;
    for v in violations(&browser, &axe).await {
        found.push(json!({"view": "authorize", "violation": v}));
    }

    browser.open(&format!("{}/", s.origin)).await;
    browser.wait_text("h1", |t| t.contains("Sign in")).await;
    browser.click("#dev-signin").await;
    browser.wait_text("#agent-count", |t| !t.is_empty()).await;
    for width in [None, Some(390)] {
        browser.emulate_width(width).await;
        for (hash, ready) in VIEWS {
            browser
                .script("location.hash = arguments[0];", json!([hash]))
                .await;
            browser.wait_text(ready, |t| !t.is_empty()).await;
            for v in violations(&browser, &axe).await {
                found.push(json!({"view": hash, "width": width, "violation": v}));
            }
        }
    }
    // The check itself works: a button without a name is found.
    browser
        .script(
            "document.querySelector('main').append(Object.assign(document.createElement('button'), {id: 'nameless'}));",
            json!([]),
        )
        .await;
    let planted = violations(&browser, &axe).await;
    assert!(
        planted.iter().any(|v| v["id"] == "button-name"),
        "axe finds a planted violation: {planted:?}"
    );
    browser.quit().await;
    assert!(
        found.is_empty(),
        "{}",
        serde_json::to_string_pretty(&found).unwrap()
    );
}

/// Percent-encodes a query value.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! The web console: its page and files as served (media types, the
//! Content-Security-Policy, revalidation, size), the loopback-only sign-in
//! switch, and the console itself driven in headless Chromium over
//! WebDriver against a real server.
//!
//! `AGENTRY_UPDATE_SCREENSHOTS=1 cargo test --test api console` rewrites
//! the screenshots in `docs/console/`.

use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::path::Path;

/// The files of the project's `console/` folder.
fn console_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the console folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    s.client
        .get(format!("{}{path}", s.origin))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_root_sends_browsers_to_the_console() {
    let s = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/", s.origin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()[header::LOCATION], "/console");
    let page = get(&s, "/").await;
    assert_eq!(page.url().path(), "/console");
    let text = page.text().await.unwrap();
    for needle in [
        concat!("Agentry ", env!("CARGO_PKG_VERSION")),
        "href=\"/openapi.json\"",
        "href=\"/beta/$metadata\"",
        "href=\"/healthz\"",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

#[tokio::test]
async fn every_console_file_is_served_with_its_media_type_a_strict_policy_and_revalidation() {
    let s = TestServer::start().await;
    let mut total = 0;
    let mut paths: Vec<String> = console_files()
        .iter()
        .filter(|f| *f != "index.html")
        .map(|f| format!("/console/{f}"))
        .collect();
    paths.push("/console".to_owned());
    for path in &paths {
        let r = get(&s, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path} is embedded and served");
        let h = r.headers().clone();
        let media = h[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "text/html",
        };
        assert!(media.starts_with(expected), "{path}: {media}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.contains_key("request-id"));
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let body = r.bytes().await.unwrap();
        total += body.len();
        let again = s
            .client
            .get(format!("{}{path}", s.origin))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // Well under the 300 KB the console may weigh compressed, even uncompressed.
    assert!(total < 120_000, "the console weighs {total} bytes");
    let r = get(&s, "/console/nothing.js").await;
    let body = assert_graph_error(r, 404, "NotFound").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing.js")
    );
}

#[tokio::test]
async fn the_console_page_has_no_inline_script_or_style_and_names_no_other_site() {
    let s = TestServer::start().await;
    for file in console_files() {
        let path = match file.as_str() {
            "index.html" => "/console".to_owned(),
            other => format!("/console/{other}"),
        };
        let text = get(&s, &path).await.text().await.unwrap();
        if file.ends_with(".html") {
            for script in text.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap_or_default();
                assert!(tag.contains("src=\"/console/"), "an inline script: {tag}");
            }
            assert!(!text.contains("<style"), "an inline style sheet");
            assert!(!text.contains(" style="), "an inline style");
            let handler = text.match_indices(" on").any(|(i, _)| {
                let rest = &text[i + 3..];
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!handler, "an inline event handler");
        }
        assert!(!text.contains("innerHTML"), "{file} parses markup");
        for url in ["http://", "https://", "//fonts.", "cdn"] {
            let named = text
                .match_indices(url)
                .any(|(i, _)| !text[i..].starts_with("http://www.w3.org/2000/svg"));
            assert!(!named, "{file} names another site ({url})");
        }
    }
}

#[tokio::test]
async fn the_permission_table_is_served_for_the_console() {
    let s = TestServer::start().await;
    let r = get(&s, "/console/permissions.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let table: Value = r.json().await.unwrap();
    let rule = table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "AddMember" && r["reserved"] == "Quarantined")
        .expect("the quarantine rule");
    assert_eq!(
        rule["delegated"],
        json!([
            ["AgentCollection.ReadWrite.Quarantined"],
            ["AgentInstance.Read.All", "AgentInstance.ReadWrite.All"]
        ])
    );
    assert_eq!(
        table["roleNames"]["6b942400-691f-4bf0-9d12-d8a254a2baf5"],
        "Agent Registry Administrator"
    );
}

async fn post_session(s: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = s.client.post(format!("{}/console/session", s.origin));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn signing_in_without_a_password_is_refused_unless_the_switch_is_on() {
    let s = TestServer::start().await;
    let r = post_session(&s, &[]).await;
    let body = assert_graph_error(r, 403, "Forbidden").await;
    assert_eq!(body["error"]["innerError"]["code"], "consoleDevSignInOff");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--console-dev-signin")
    );
}

#[tokio::test]
async fn the_switch_signs_the_console_in_as_the_builtin_admin_on_loopback() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    let r = post_session(&s, &[("origin", &s.origin.clone())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store, no-cache");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    // The token `agentry token` mints: the built-in admin of the default tenant.
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .json(&instance_body("made-in-the-console", "Made in the console"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["createdBy"], agentry::auth::DEFAULT_USER);
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/agentRegistry/agentInstances/made-in-the-console",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "in the default tenant");
}

#[tokio::test]
async fn the_switch_answers_neither_other_host_names_nor_other_sites() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    let port = s.origin.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("attacker.example:{port}");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("host", &rebound)], "consoleDevSignInForeignHost"),
        (
            &[("origin", "http://attacker.example")],
            "consoleDevSignInCrossOrigin",
        ),
        (
            &[("sec-fetch-site", "cross-site")],
            "consoleDevSignInCrossOrigin",
        ),
    ];
    for (headers, inner) in cases {
        let r = post_session(&s, headers).await;
        let body = assert_graph_error(r, 403, "Forbidden").await;
        assert_eq!(body["error"]["innerError"]["code"], inner, "{headers:?}");
    }
}

/// The agents the browser test finds, in the default tenant (the console's).
async fn seed(s: &TestServer) {
    let agents = [
        json!({
            "id": "contoso-travel",
            "displayName": "Contoso Travel Planner",
            "ownerIds": [USER],
            "originatingStore": "Copilot Studio",
            "url": "https://agents.contoso.example/travel",
            "preferredTransport": "JSONRPC",
            "agentCardManifest": {
                "displayName": "Contoso Travel Planner",
                "description": "Plans business trips and books travel within policy.",
                "protocolVersion": "0.3.0",
                "version": "2.1.0",
                "provider": {"organization": "Contoso", "url": "https://contoso.example"},
                "capabilities": {"streaming": true, "pushNotifications": false},
                "defaultInputModes": ["text/plain"],
                "defaultOutputModes": ["text/plain", "application/json"],
                "skills": [
                    {"id": "book-flight", "displayName": "Book a flight",
                     "description": "Finds and books flights that the travel policy allows.",
                     "tags": ["travel", "booking"],
                     "examples": ["Book me a flight to Oslo on Monday morning"]},
                    {"id": "hotel", "displayName": "Find a hotel", "tags": ["travel"]}
                ]
            }
        }),
        json!({"id": "fabrikam-invoices", "displayName": "Fabrikam Invoice Agent", "ownerIds": [USER]}),
        json!({"id": "northwind-support", "displayName": "Northwind Support Bot", "ownerIds": [USER]}),
        json!({"id": "expense-auditor", "displayName": "Travel Expense Auditor", "ownerIds": [USER],
               "agentCardManifest": {"displayName": "Travel Expense Auditor",
                                     "description": "Checks expense reports against the travel policy."}}),
        json!({"id": "woodgrove-sentinel", "displayName": "Woodgrove Security Sentinel", "ownerIds": [USER]}),
    ];
    for agent in agents {
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
        assert_eq!(r.status(), StatusCode::CREATED, "{agent}");
    }
}

/// Writes `docs/console/{name}.png` when `AGENTRY_UPDATE_SCREENSHOTS=1`.
pub(crate) async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var("AGENTRY_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = browser.screenshot().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Every field of the page has a label a screen reader reads out.
pub(crate) async fn assert_fields_are_labelled(browser: &Browser) {
    let unlabelled = browser
        .script(
            "return [...document.querySelectorAll('input, select, textarea, button')]
               .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                            && !(e.innerText || '').trim())
               .map(e => e.outerHTML.slice(0, 80));",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]), "fields without a label");
}

/// The request id of the journal's answer with `status` to `method`.
async fn journal_request_id(s: &TestServer, method: &str, status: u16) -> String {
    let admin = s.app_token_for(DEFAULT_TENANT, &["Agentry.Admin"]);
    let r = s
        .client
        .get(format!("{}/_agentry/requests", s.origin))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let journal: Value = r.json().await.unwrap();
    journal["value"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["method"] == method && e["status"] == status)
        .and_then(|e| e["requestId"].as_str())
        .unwrap_or_else(|| panic!("no {method} answered {status} in {journal}"))
        .to_owned()
}

#[tokio::test]
async fn in_chromium_the_console_signs_in_searches_quarantines_and_shows_an_edit_conflict() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    seed(&s).await;
    let browser = Browser::start(1280, 900).await;

    // `/` leads to the sign-in page; the loopback switch signs in.
    browser.open(&format!("{}/", s.origin)).await;
    browser.wait_text("h1", |t| t.contains("Sign in")).await;
    assert_fields_are_labelled(&browser).await;
    screenshot(&browser, "signin").await;
    browser.click("#dev-signin").await;
    browser.wait_text("#agent-count", |t| t == "5 agents").await;
    let signed_in = browser.text("#signed-in-as").await.unwrap_or_default();
    assert!(
        signed_in.contains(agentry::auth::DEFAULT_USER),
        "{signed_in}"
    );
    let stored = browser
        .script(
            "return Object.keys(sessionStorage).length + Object.keys(localStorage).length;",
            json!([]),
        )
        .await;
    assert_eq!(stored, 1, "the token is kept in sessionStorage only");
    assert_fields_are_labelled(&browser).await;
    screenshot(&browser, "agents").await;

    // Search ($search), with the total ($count).
    browser.type_into("#search", "travel").await;
    browser.click("#search-button").await;
    browser.wait_text("#agent-count", |t| t == "2 agents").await;
    let table = browser.text("#agents").await.unwrap();
    assert!(table.contains("Contoso Travel Planner"), "{table}");
    assert!(table.contains("Travel Expense Auditor"), "{table}");
    assert!(!table.contains("Fabrikam"), "{table}");

    // The agent, its card rendered for people.
    browser
        .click("#agents a[href=\"#/agents/contoso-travel\"]")
        .await;
    browser
        .wait_text("#agent-name", |t| t == "Contoso Travel Planner")
        .await;
    let skills = browser.text("#skills").await.unwrap();
    for needle in [
        "Book a flight",
        "booking",
        "Book me a flight to Oslo on Monday morning",
    ] {
        assert!(skills.contains(needle), "{needle} in {skills}");
    }
    let card = browser.text("#card").await.unwrap();
    assert!(card.contains("Contoso"), "{card}");

    // Quarantine: a member of the Quarantined collection.
    browser.click("#quarantine").await;
    browser
        .wait_text("#quarantined-badge", |t| t == "Quarantined")
        .await;
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            &format!("/agentRegistry/agentCollections/{QUARANTINED}/members/contoso-travel"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "quarantined on the server");
    screenshot(&browser, "agent").await;
    browser
        .script(
            "document.getElementById('card').scrollIntoView();",
            json!([]),
        )
        .await;
    screenshot(&browser, "agent-card").await;
    browser.script("window.scrollTo(0, 0);", json!([])).await;

    // At 390 px nothing is wider than the screen.
    browser.emulate_width(Some(390)).await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than 390 px by {overflow}"
    );
    screenshot(&browser, "agent-narrow").await;
    browser.emulate_width(None).await;

    // An edit after someone else's: 412, with Graph's message and request id.
    browser.click("#edit").await;
    browser
        .type_into("#edit-name", "Contoso Trip Planner")
        .await;
    assert_fields_are_labelled(&browser).await;
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::PATCH,
            "/agentRegistry/agentInstances/contoso-travel",
        )
        .json(&json!({"displayName": "Contoso Travel Planner (renamed elsewhere)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    browser.click("#save").await;
    let message = browser
        .wait_text("#edit-status .message", |t| !t.is_empty())
        .await;
    assert!(
        message.contains("has changed since the ETag in the If-Match header was issued"),
        "{message}"
    );
    let shown = browser.text("#edit-status .request-id").await.unwrap();
    assert_eq!(shown, journal_request_id(&s, "PATCH", 412).await);
    browser
        .script(
            "document.getElementById('edit-status').scrollIntoView({block: 'center'});",
            json!([]),
        )
        .await;
    screenshot(&browser, "conflict").await;

    // Reloaded, the other editor's name shows; delete asks first.
    browser.click("#reload").await;
    browser
        .wait_text("#agent-name", |t| t.ends_with("(renamed elsewhere)"))
        .await;
    browser.click("#delete").await;
    browser.click("#confirm-delete").await;
    browser
        .wait_text(".notice", |t| t.starts_with("Deleted"))
        .await;
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/agentRegistry/agentInstances/contoso-travel",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_a_token_without_rights_disables_the_buttons_and_names_what_they_need() {
    let s = TestServer::start().await;
    seed(&s).await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("{}/console", s.origin)).await;
    // The switch is off: the console says so, with Graph's request id.
    browser.click("#dev-signin").await;
    let refused = browser
        .wait_text("#dev-status .message", |t| !t.is_empty())
        .await;
    assert!(refused.contains("--console-dev-signin"), "{refused}");
    assert!(browser.text("#dev-status .request-id").await.is_some());
    // A reader's token, pasted.
    let mut request = token_request(DEFAULT_TENANT, 3600, 0);
    request.scopes = vec!["AgentInstance.Read.All".into()];
    let reader = s.keys.mint(&request).unwrap();
    browser.type_into("#token-input", &reader).await;
    browser.click("#token-form button[type=submit]").await;
    browser.wait_text("#agent-count", |t| t == "5 agents").await;
    browser
        .click("#agents a[href=\"#/agents/fabrikam-invoices\"]")
        .await;
    browser
        .wait_text("#agent-name", |t| t == "Fabrikam Invoice Agent")
        .await;
    for (button, permission) in [
        ("#edit", "AgentInstance.ReadWrite.All"),
        ("#delete", "AgentInstance.ReadWrite.All"),
        ("#quarantine", "AgentCollection.ReadWrite.Quarantined"),
    ] {
        let state = browser
            .script(
                "const b = document.querySelector(arguments[0]); return [b.disabled, b.title];",
                json!([button]),
            )
            .await;
        assert_eq!(state[0], true, "{button} is disabled");
        assert!(
            state[1].as_str().unwrap().contains(permission),
            "{button}: {state}"
        );
    }
    let listed = browser.text("#unavailable").await.unwrap();
    assert!(
        listed.contains("AgentCollection.ReadWrite.Quarantined"),
        "{listed}"
    );
    browser.quit().await;
}

//! The console's registry views in headless Chromium: manifests,
//! collections and packages, an agent's manifest link and collections, and
//! the agents view's skill, tag and owner filters.

use crate::console::{assert_fields_are_labelled, screenshot};
use crate::packages::package;
use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GLOBAL: &str = "00000000-0000-0000-0000-000000000001";

/// Goes to the console's `hash` (`#/…`).
async fn go(browser: &Browser, hash: &str) {
    browser
        .script("location.hash = arguments[0];", json!([hash]))
        .await;
}

/// Picks `value` in the menu `css`, as a person choosing it would.
async fn choose(browser: &Browser, css: &str, value: &str) {
    browser
        .script(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([css, value]),
        )
        .await;
}

/// At 390 px nothing is wider than the screen.
async fn assert_fits_a_phone(browser: &Browser) {
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
    browser.emulate_width(None).await;
}

/// A call to the default tenant's Graph API, as its admin user.
/// Deletes the entity on screen through the confirmation dialog, then waits
/// for the notice naming it and for the list's count to read `count`.
async fn delete_confirmed(browser: &Browser, name: &str, count_id: &str, count: &str) {
    browser.click("#delete").await;
    browser.click("#confirm-delete").await;
    let notice = format!("Deleted {name}.");
    browser.wait_text(".notice", |t| t == notice).await;
    browser.wait_text(count_id, |t| t == count).await;
}

async fn graph(
    s: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = s.req_as(DEFAULT_TENANT, method, path);
    if let Some(body) = body {
        r = r.json(&body);
    }
    r.send().await.unwrap()
}

async fn create(s: &TestServer, path: &str, body: Value) {
    let r = graph(s, Method::POST, path, Some(body.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
}

fn manifest(id: &str, name: &str) -> Value {
    json!({
        "id": id, "displayName": name, "description": format!("{name}: plans trips."),
        "version": "1.0.0",
        "skills": [{"id": "book-flight", "displayName": "Book a flight", "tags": ["travel", "booking"],
                    "examples": ["Book me a flight to Oslo"]}]
    })
}

#[tokio::test]
async fn in_chromium_the_manifests_view_renders_edits_and_deletes_a_manifest() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    create(
        &s,
        "/agentRegistry/agentCardManifests",
        manifest("travel-card", "Travel Card"),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentCardManifests",
        manifest("spare-card", "Spare Card"),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "travel-agent", "displayName": "Travel Agent", "ownerIds": [USER],
               "agentCardManifest@odata.bind": "agentCardManifests/travel-card"}),
    )
    .await;
    let browser = Browser::signed_in(&s.origin).await;

    go(&browser, "#/manifests").await;
    browser
        .wait_text("#manifests-count", |t| t == "2 manifests")
        .await;
    assert_fields_are_labelled(&browser).await;
    screenshot(&browser, "manifests").await;
    browser.type_into("#manifest-search", "spare").await;
    browser.click("#manifest-search-button").await;
    browser
        .wait_text("#manifests-count", |t| t == "1 manifest")
        .await;
    go(&browser, "#/manifests").await;
    browser
        .wait_text("#manifests-count", |t| t == "2 manifests")
        .await;

    // One manifest: its card for people, the agents linking it.
    browser
        .click("#manifests a[href=\"#/manifests/travel-card\"]")
        .await;
    browser
        .wait_text("#manifest-name", |t| t == "Travel Card")
        .await;
    let skills = browser.text("#skills").await.unwrap();
    assert!(
        skills.contains("Book a flight") && skills.contains("booking"),
        "{skills}"
    );
    let linked = browser.text("#linked-agents").await.unwrap();
    assert!(linked.contains("Travel Agent"), "{linked}");
    assert!(browser.text("#raw-json").await.is_some());
    screenshot(&browser, "manifest").await;
    assert_fits_a_phone(&browser).await;

    // An edit after someone else's: 412, with Graph's message and request id.
    browser.click("#edit").await;
    let r = graph(
        &s,
        Method::PATCH,
        "/agentRegistry/agentCardManifests/travel-card",
        Some(json!({"description": "Changed elsewhere."})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    browser.type_into("#edit-name", "Trip Card").await;
    browser.click("#save").await;
    let message = browser
        .wait_text("#edit-status .message", |t| !t.is_empty())
        .await;
    assert!(message.contains("If-Match"), "{message}");
    assert!(browser.text("#edit-status .request-id").await.is_some());
    browser.click("#reload").await;
    browser
        .wait_text("#card-description", |t| t == "Changed elsewhere.")
        .await;

    // Edit, with the manifest's ETag.
    browser.click("#edit").await;
    browser.type_into("#edit-name", "Trip Card").await;
    browser.type_into("#edit-version", "1.1.0").await;
    assert_fields_are_labelled(&browser).await;
    browser.click("#save").await;
    browser.wait_text("#notice", |t| t == "Saved.").await;
    browser
        .wait_text("#manifest-name", |t| t == "Trip Card")
        .await;
    let r = graph(
        &s,
        Method::GET,
        "/agentRegistry/agentCardManifests/travel-card",
        None,
    )
    .await;
    let saved: Value = r.json().await.unwrap();
    assert_eq!(saved["displayName"], "Trip Card");
    assert_eq!(saved["version"], "1.1.0");
    assert_eq!(
        saved["skills"][0]["id"], "book-flight",
        "the skills are kept"
    );

    // A linked manifest is not deleted: the dialog shows Graph's refusal.
    browser.click("#delete").await;
    browser.click("#confirm-delete").await;
    let refused = browser
        .wait_text("#delete-dialog .message", |t| !t.is_empty())
        .await;
    assert!(!refused.is_empty());
    assert!(browser.text("#delete-dialog .request-id").await.is_some());
    browser.click("#cancel-delete").await;

    // An unlinked one is, after the confirmation.
    go(&browser, "#/manifests/spare-card").await;
    browser
        .wait_text("#manifest-name", |t| t == "Spare Card")
        .await;
    delete_confirmed(&browser, "Spare Card", "#manifests-count", "1 manifest").await;
    let r = graph(
        &s,
        Method::GET,
        "/agentRegistry/agentCardManifests/spare-card",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A new one: the console goes to it.
    browser.click("#new-manifest").await;
    browser.type_into("#create-name", "Invoice Card").await;
    browser.type_into("#create-version", "0.1.0").await;
    assert_fields_are_labelled(&browser).await;
    browser.click("#create").await;
    browser
        .wait_text("#manifest-name", |t| t == "Invoice Card")
        .await;
    let id = browser.text("#manifest-id").await.unwrap();
    let r = graph(
        &s,
        Method::GET,
        &format!("/agentRegistry/agentCardManifests/{id}"),
        None,
    )
    .await;
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["version"], "0.1.0");
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_the_agent_view_links_a_manifest_and_changes_its_collections() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    create(
        &s,
        "/agentRegistry/agentCardManifests",
        manifest("travel-card", "Travel Card"),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "bare-agent", "displayName": "Bare Agent", "ownerIds": [USER]}),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentCollections",
        json!({"id": "finance", "displayName": "Finance", "ownerIds": [USER]}),
    )
    .await;
    let browser = Browser::signed_in(&s.origin).await;
    go(&browser, "#/agents/bare-agent").await;
    browser
        .wait_text("#linked-manifest", |t| t == "No manifest is linked.")
        .await;
    assert_fields_are_labelled(&browser).await;

    // Link a manifest by id (a bind, with the agent's ETag).
    browser.type_into("#link-manifest", "travel-card").await;
    browser.click("#link-button").await;
    browser
        .wait_text("#linked-manifest", |t| t == "Travel Card")
        .await;
    let skills = browser.text("#skills").await.unwrap();
    assert!(skills.contains("Book a flight"), "{skills}");
    let r = graph(
        &s,
        Method::GET,
        "/agentRegistry/agentInstances/bare-agent/agentCardManifest",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "linked on the server");

    // Unlink it: the manifest is kept.
    browser.click("#unlink-manifest").await;
    browser
        .wait_text("#linked-manifest", |t| t == "No manifest is linked.")
        .await;
    let r = graph(
        &s,
        Method::GET,
        "/agentRegistry/agentInstances/bare-agent/agentCardManifest",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = graph(
        &s,
        Method::GET,
        "/agentRegistry/agentCardManifests/travel-card",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Add to a collection, then remove from it.
    browser
        .find("#add-collection option[value=\"finance\"]")
        .await;
    choose(&browser, "#add-collection", "finance").await;
    browser.click("#add-to-collection").await;
    browser
        .wait_text("#collections", |t| t.contains("Finance"))
        .await;
    let members = "/agentRegistry/agentCollections/finance/members/bare-agent";
    let r = graph(&s, Method::GET, members, None).await;
    assert_eq!(r.status(), StatusCode::OK, "a member on the server");
    browser
        .click("#collections button[data-collection=\"finance\"]")
        .await;
    browser
        .wait_text("#notice", |t| t == "Removed from the collection Finance.")
        .await;
    let r = graph(&s, Method::GET, members, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_the_collections_view_creates_one_changes_its_members_and_keeps_the_reserved_ones()
 {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "payroll-bot", "displayName": "Payroll Bot", "ownerIds": [USER]}),
    )
    .await;
    let browser = Browser::signed_in(&s.origin).await;
    go(&browser, "#/collections").await;
    let table = browser
        .wait_text("#collections", |t| t.contains("Quarantined"))
        .await;
    assert!(table.contains("Global"), "{table}");
    assert_eq!(
        browser.text("#collections-count").await.unwrap(),
        "2 collections"
    );

    // Create one: the console goes to it.
    browser.click("#new-collection").await;
    browser.type_into("#create-name", "Finance").await;
    browser
        .type_into("#create-description", "Agents of the finance team")
        .await;
    assert_fields_are_labelled(&browser).await;
    browser.click("#create").await;
    browser
        .wait_text("#collection-name", |t| t == "Finance")
        .await;
    browser
        .wait_text("#member-table-count", |t| t == "0 members")
        .await;

    // Members: added and removed by reference.
    browser.type_into("#add-member", "payroll-bot").await;
    browser.click("#add-member-button").await;
    browser
        .wait_text("#member-table", |t| t.contains("Payroll Bot"))
        .await;
    let id = browser
        .text("#collection-id")
        .await
        .expect("the collection's id");
    let member = format!("/agentRegistry/agentCollections/{id}/members/payroll-bot");
    let r = graph(&s, Method::GET, &member, None).await;
    assert_eq!(r.status(), StatusCode::OK, "a member on the server");
    browser
        .script(
            "document.getElementById('members-heading').scrollIntoView();",
            json!([]),
        )
        .await;
    screenshot(&browser, "collection").await;
    assert_fits_a_phone(&browser).await;
    browser
        .click("#member-table button[data-member=\"payroll-bot\"]")
        .await;
    browser
        .wait_text("#member-table-count", |t| t == "0 members")
        .await;
    let r = graph(&s, Method::GET, &member, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Rename, then delete.
    browser.click("#edit").await;
    browser.type_into("#edit-name", "Finance team").await;
    browser.click("#save").await;
    browser
        .wait_text("#collection-name", |t| t == "Finance team")
        .await;
    delete_confirmed(
        &browser,
        "Finance team",
        "#collections-count",
        "2 collections",
    )
    .await;
    screenshot(&browser, "collections").await;

    // Global: its members change, but it is neither renamed nor deleted.
    browser
        .click(&format!("#collections a[href=\"#/collections/{GLOBAL}\"]"))
        .await;
    browser
        .wait_text("#collection-name", |t| t == "Global")
        .await;
    let state = browser
        .script(
            "const b = document.querySelector('#delete'); return [b.disabled, b.title];",
            json!([]),
        )
        .await;
    assert_eq!(state[0], true, "Global cannot be deleted");
    assert!(state[1].as_str().unwrap().contains("reserved"), "{state}");
    assert!(browser.text("#reserved-why").await.is_some());
    browser.type_into("#add-member", "payroll-bot").await;
    browser.click("#add-member-button").await;
    browser
        .wait_text("#member-table-count", |t| t == "1 member")
        .await;
    browser.quit().await;
}

/// Loads a package into the default tenant's catalog (the control plane).
async fn load_package(s: &TestServer, body: Value) {
    let r = s
        .control_as(DEFAULT_TENANT, Method::POST, "/copilot/packages")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn in_chromium_the_packages_view_filters_blocks_unblocks_and_reassigns_a_package() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    load_package(
        &s,
        package(
            "P_1",
            "Travel agent",
            &["DeclarativeAgent"],
            &["Copilot", "Teams"],
        ),
    )
    .await;
    load_package(&s, package("P_2", "Expense bot", &["Bots"], &["Teams"])).await;
    load_package(
        &s,
        package("P_3", "Word helper", &["TaskPaneAddIn"], &["Word"]),
    )
    .await;
    let browser = Browser::signed_in(&s.origin).await;

    // The default list holds agents only; "Every package" all three.
    go(&browser, "#/packages").await;
    browser
        .wait_text("#packages-count", |t| t == "2 packages")
        .await;
    assert_fields_are_labelled(&browser).await;
    screenshot(&browser, "packages").await;
    assert_fits_a_phone(&browser).await;
    choose(&browser, "#package-contents", "all").await;
    browser
        .wait_text("#packages-count", |t| t == "3 packages")
        .await;
    let hash = browser.script("return location.hash;", json!([])).await;
    assert_eq!(hash, "#/packages?contents=all", "the filter is in the URL");
    choose(&browser, "#package-host", "Copilot").await;
    browser
        .wait_text("#packages-count", |t| t == "1 package")
        .await;
    assert!(
        browser
            .text("#packages")
            .await
            .unwrap()
            .contains("Travel agent")
    );

    // Block, then unblock.
    browser.click("#packages a[href=\"#/packages/P_1\"]").await;
    browser
        .wait_text("#package-name", |t| t == "Travel agent")
        .await;
    browser.click("#block").await;
    browser
        .wait_text("#blocked-badge", |t| t == "Blocked")
        .await;
    let get = |s: &TestServer| {
        let r = s.req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/copilot/admin/catalog/packages/P_1",
        );
        async move { r.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(get(&s).await["isBlocked"], true);
    screenshot(&browser, "package").await;
    assert_fits_a_phone(&browser).await;
    go(&browser, "#/packages?blocked=yes").await;
    browser
        .wait_text("#packages-count", |t| t == "1 package")
        .await;
    go(&browser, "#/packages/P_1").await;
    browser.wait_text("#block", |t| t == "Unblock").await;
    browser.click("#block").await;
    browser
        .wait_text("#notice", |t| t.starts_with("Unblocked"))
        .await;
    assert_eq!(get(&s).await["isBlocked"], false);

    // Reassign to another owner.
    browser.type_into("#reassign-user", USER).await;
    browser.click("#reassign").await;
    browser.wait_text("#package-owner", |t| t == USER).await;
    assert_eq!(get(&s).await["ownerId"], USER);
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_a_reader_sees_the_package_and_collection_actions_disabled_with_what_they_need()
{
    let s = TestServer::start().await;
    load_package(
        &s,
        package("P_1", "Travel agent", &["DeclarativeAgent"], &["Copilot"]),
    )
    .await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("{}/console", s.origin)).await;
    let mut request = token_request(DEFAULT_TENANT, 3600, 0);
    request.scopes = vec![
        "AgentCollection.Read.All".into(),
        "CopilotPackages.Read.All".into(),
    ];
    let reader = s.keys.mint(&request).unwrap();
    browser.type_into("#token-input", &reader).await;
    browser.click("#token-form button[type=submit]").await;
    browser.wait_text("h1", |t| t == "Agents").await;
    go(&browser, "#/packages/P_1").await;
    browser
        .wait_text("#package-name", |t| t == "Travel agent")
        .await;
    for button in ["#block", "#reassign"] {
        let state = browser
            .script(
                "const b = document.querySelector(arguments[0]); return [b.disabled, b.title];",
                json!([button]),
            )
            .await;
        assert_eq!(state[0], true, "{button} is disabled");
        assert!(
            state[1]
                .as_str()
                .unwrap()
                .contains("CopilotPackages.ReadWrite.All"),
            "{button}: {state}"
        );
    }
    go(&browser, "#/collections").await;
    browser.wait_text("#collections-count", |_| true).await;
    let state = browser
        .script(
            "const b = document.querySelector('#new-collection'); return [b.disabled, b.title];",
            json!([]),
        )
        .await;
    assert_eq!(state[0], true);
    assert!(
        state[1]
            .as_str()
            .unwrap()
            .contains("AgentCollection.ReadWrite.All"),
        "{state}"
    );
    browser.quit().await;
}

#[tokio::test]
async fn in_chromium_the_agents_view_filters_by_skill_tag_and_owner_kept_in_the_url() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    const OTHER: &str = "22222222-0000-4000-8000-000000000002";
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "travel", "displayName": "Travel Planner", "ownerIds": [USER],
               "agentCardManifest": manifest("travel-card", "Travel Card")}),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "audit", "displayName": "Expense Auditor", "ownerIds": [OTHER],
               "agentCardManifest": {"displayName": "Auditor",
                 "skills": [{"id": "audit", "displayName": "Audit expenses", "tags": ["finance"]}]}}),
    )
    .await;
    create(
        &s,
        "/agentRegistry/agentInstances",
        json!({"id": "plain", "displayName": "Plain Agent", "ownerIds": [OTHER]}),
    )
    .await;
    let browser = Browser::signed_in(&s.origin).await;
    browser.wait_text("#agent-count", |t| t == "3 agents").await;

    browser.type_into("#tag", "finance").await;
    browser.click("#search-button").await;
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    assert!(
        browser
            .text("#agents")
            .await
            .unwrap()
            .contains("Expense Auditor")
    );
    let hash = browser.script("return location.hash;", json!([])).await;
    assert_eq!(hash, "#/agents?tag=finance");

    go(&browser, "#/agents?skill=flight").await;
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    assert!(
        browser
            .text("#agents")
            .await
            .unwrap()
            .contains("Travel Planner")
    );
    assert_eq!(
        browser
            .script("return document.querySelector('#skill').value;", json!([]))
            .await,
        "flight",
        "the field shows the filter of the URL"
    );

    go(&browser, &format!("#/agents?owner={OTHER}")).await;
    browser.wait_text("#agent-count", |t| t == "2 agents").await;
    go(&browser, &format!("#/agents?owner={OTHER}&tag=finance")).await;
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    browser.quit().await;
}

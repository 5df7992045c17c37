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

fn card_path(tenant: &str, id: &str) -> String {
    format!(
        "/a2a/{tenant}/agents/{}/.well-known/agent-card.json",
        key(id)
    )
}

async fn fetch_card(s: &TestServer, path: &str, version: Option<&str>) -> reqwest::Response {
    let mut r = s
        .client
        .get(format!("{}{path}", s.origin))
        .bearer_auth(s.token());
    if let Some(v) = version {
        r = r.header("A2A-Version", v);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn an_instance_card_is_served_to_a2a_clients_in_v1_or_v03_with_an_etag() {
    let s = TestServer::start().await;
    let mut body = instance_body("agent 1", "Travel");
    body["url"] = "https://travel.example/a2a".into();
    body["agentCardManifest"] = json!({
        "id": "m1", "displayName": "Travel", "description": "Books trips", "version": "1.0.0",
        "ownerIds": [USER], "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "capabilities": {"streaming": true},
        "skills": [{"id": "book", "displayName": "Book", "description": "Books", "tags": ["travel"]}],
    });
    s.create_instance(body).await;
    let path = card_path(TENANT_A, "agent 1");

    let r = fetch_card(&s, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["a2a-version"], "1.0");
    assert_eq!(r.headers()["cache-control"], "private, max-age=300");
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    let v1: Value = r.json().await.unwrap();
    assert_eq!(
        v1["supportedInterfaces"],
        json!([{"url": "https://travel.example/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "0.3.0"}])
    );
    assert_eq!(v1["skills"][0]["name"], "Book");
    let report = agentry::domain::a2a::validate(&v1);
    assert!(report.is_valid(), "{:?}", report.problems);

    let r = fetch_card(&s, &path, Some("0.3")).await;
    assert_eq!(r.headers()["a2a-version"], "0.3");
    let v03: Value = r.json().await.unwrap();
    assert_eq!(v03["url"], "https://travel.example/a2a");
    assert_eq!(v03["protocolVersion"], "0.3.0");
    assert!(v03.get("supportedInterfaces").is_none());

    let r = s
        .client
        .get(format!("{}{path}", s.origin))
        .bearer_auth(s.token())
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // A change to the card changes its tag.
    let r = s
        .patch(
            &format!("/agentRegistry/agentInstances/{}", key("agent 1")),
            json!({"url": "https://travel.example/v2"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = fetch_card(&s, &path, None).await;
    assert_ne!(r.headers()["etag"].to_str().unwrap(), tag);
}

#[tokio::test]
async fn a_registration_card_is_served_with_its_signatures() {
    let s = server(ValidationMode::Off).await;
    let mut c = card("https://travel.example/a2a");
    c["signatures"] = json!([{"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "c2ln"}]);
    let r = s.post(SET, registration("reg-1", c)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = fetch_card(&s, &card_path(TENANT_A, "reg-1"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let served: Value = r.json().await.unwrap();
    assert_eq!(
        served["supportedInterfaces"][0]["url"],
        "https://travel.example/a2a"
    );
    assert!(
        served.get("signatures").is_none(),
        "converted: the signatures cannot cover it"
    );
    let r = fetch_card(&s, &card_path(TENANT_A, "reg-1"), Some("0.3")).await;
    let served: Value = r.json().await.unwrap();
    assert_eq!(served["signatures"][0]["protected"], "eyJhbGciOiJFUzI1NiJ9");
}

#[tokio::test]
async fn cards_are_not_served_when_quarantined_cardless_foreign_or_without_a_token() {
    let s = TestServer::start().await;
    let mut body = instance_body("q1", "Quarantined");
    body["url"] = "https://q.example/a2a".into();
    s.create_instance(body).await;
    s.create_instance(instance_body("plain", "No card")).await;
    let path = card_path(TENANT_A, "q1");
    assert_eq!(fetch_card(&s, &path, None).await.status(), StatusCode::OK);
    let r = s
        .post(
            &format!("/agentRegistry/agentCollections/{QUARANTINED}/members/$ref"),
            json!({"@odata.id": s.url("/agentRegistry/agentInstances/q1")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_graph_error(fetch_card(&s, &path, None).await, 404, "AgentNotFound").await;
    let r = fetch_card(&s, &card_path(TENANT_A, "plain"), None).await;
    assert_graph_error(r, 404, "ResourceNotFound").await;
    let r = fetch_card(&s, &card_path(TENANT_B, "q1"), None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without a token only published cards are served: none here.
    let r = s
        .client
        .get(format!("{}{path}", s.origin))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = s
        .client
        .get(format!("{}{path}", s.origin))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
}

async fn signing_server(mode: agentry::domain::a2a::SignatureMode) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string("tests/a2a/keys/p256.pub.pem").unwrap();
    let store = dir.path().join("keys.json");
    std::fs::write(
        &store,
        json!({"keys": [{"kid": "p256", "pem": pem}]}).to_string(),
    )
    .unwrap();
    let s = TestServer::start_configured(|c| {
        c.card_signatures = mode;
        c.card_trust_store = Some(store.clone());
    })
    .await;
    drop(dir); // read at start
    s
}

fn signed(card: &Value) -> Value {
    use agentry::domain::a2a::signature::{Algorithm, sign};
    let key = std::fs::read_to_string("tests/a2a/keys/p256.pem").unwrap();
    sign(card, &key, "p256", Algorithm::Es256, None).unwrap()
}

#[tokio::test]
async fn with_signatures_required_only_cards_signed_by_a_trusted_key_are_registered() {
    use agentry::domain::a2a::SignatureMode;
    let s = signing_server(SignatureMode::Require).await;
    let good = signed(&card("https://travel.example/a2a"));
    let r = s.post(SET, registration("signed", good.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/signed")).await;
    assert_eq!(
        got["@agentry.cardSignature"],
        json!({"result": "verified", "kid": "p256", "form": "jcs"})
    );
    let r = s
        .post(
            SET,
            registration("unsigned", card("https://travel.example/a2a")),
        )
        .await;
    let e = assert_graph_error(r, 400, "ValidationError").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("unsigned"),
        "{e}"
    );
    let mut tampered = good.clone();
    tampered["description"] = "Changed after signing".into();
    let r = s.post(SET, registration("tampered", tampered)).await;
    let e = assert_graph_error(r, 400, "ValidationError").await;
    assert_eq!(
        e["error"]["innerError"]["code"], "invalidAgentCardSignature",
        "{e}"
    );
}

#[tokio::test]
async fn with_verify_if_present_unsigned_cards_pass_and_signed_ones_must_verify() {
    use agentry::domain::a2a::SignatureMode;
    let s = signing_server(SignatureMode::VerifyIfPresent).await;
    let r = s
        .post(
            SET,
            registration("plain", card("https://travel.example/a2a")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/plain")).await;
    assert_eq!(got["@agentry.cardSignature"], json!({"result": "unsigned"}));
    // Signed by a key the trust store does not hold: refused.
    let mut other = card("https://travel.example/a2a");
    let key = std::fs::read_to_string("tests/a2a/keys/p384.pem").unwrap();
    other = agentry::domain::a2a::signature::sign(
        &other,
        &key,
        "unknown-kid",
        agentry::domain::a2a::signature::Algorithm::Es384,
        None,
    )
    .unwrap();
    let r = s.post(SET, registration("stranger", other)).await;
    let e = assert_graph_error(r, 400, "ValidationError").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("untrusted key"),
        "{e}"
    );
    // A PATCH to a signed card that breaks its signature is refused too.
    let good = signed(&card("https://travel.example/a2a"));
    assert_eq!(
        s.post(SET, registration("later", good.clone()))
            .await
            .status(),
        StatusCode::CREATED
    );
    let mut broken = good;
    broken["name"] = "Renamed".into();
    let r = s
        .patch(&format!("{SET}/later"), json!({"agentCard": broken}))
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
}

// ---------------------------------------------------------------- per-tenant settings

async fn set_a2a(s: &TestServer, tenant: &str, body: Value) -> reqwest::Response {
    s.control_as(tenant, reqwest::Method::PATCH, "/a2a/settings")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn trusted_p256() -> Value {
    let pem = std::fs::read_to_string("tests/a2a/keys/p256.pub.pem").unwrap();
    json!({"keys": [{"kid": "p256", "pem": pem}]})
}

#[tokio::test]
async fn a_tenant_requiring_signatures_refuses_unsigned_cards_while_others_keep_the_configured_mode()
 {
    let s = server(ValidationMode::Off).await;
    let r = set_a2a(
        &s,
        TENANT_A,
        json!({"cardSignatures": "require", "trustedKeys": trusted_p256(), "cardValidation": "warn"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["cardSignatures"], "require");
    assert_eq!(shown["trustedKeyIds"], json!(["p256"]));
    assert_eq!(
        shown["fromConfiguration"],
        json!(["publishedCollections", "watch"])
    );

    let plain = registration("plain", card("https://travel.example/a2a"));
    let e = assert_graph_error(s.post(SET, plain.clone()).await, 400, "ValidationError").await;
    assert_eq!(
        e["error"]["innerError"]["code"],
        "invalidAgentCardSignature"
    );
    let good = signed(&card("https://travel.example/a2a"));
    let r = s.post(SET, registration("signed", good)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s.get_json(&format!("{SET}/signed")).await;
    assert_eq!(got["@agentry.cardSignature"]["result"], "verified");
    assert_eq!(got["@agentry.cardValidation"]["valid"], true, "{got}");

    // Tenant B follows the configuration: nothing is checked.
    let r = s
        .req_as(TENANT_B, reqwest::Method::POST, SET)
        .json(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Back to the configuration's mode.
    let r = set_a2a(&s, TENANT_A, json!({"cardSignatures": null})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.post(SET, plain).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a2a_settings_changes_are_validated_audited_and_kept_in_snapshots() {
    let s = server(ValidationMode::Off).await;
    for (body, part) in [
        (json!({"cardValidation": "loud"}), "'loud'"),
        (
            json!({"watch": {"intervalSeconds": 1}}),
            "watch/intervalSeconds",
        ),
        (
            json!({"trustedKeys": {"keys": [{"kid": "h", "kty": "oct", "k": "AA"}]}}),
            "trustedKeys",
        ),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let e = assert_graph_error(
            set_a2a(&s, TENANT_A, body.clone()).await,
            400,
            "ValidationError",
        )
        .await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains(part),
            "{body}: {e}"
        );
    }
    let r = set_a2a(&s, TENANT_A, json!({"publishedCollections": [GLOBAL]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let audits = s
        .get_json("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Update A2A settings'")
        .await;
    assert_eq!(audits["value"].as_array().unwrap().len(), 1, "{audits}");
    let snapshot = s.snapshot().await;
    assert_eq!(
        snapshot["tenants"][TENANT_A]["a2a"],
        json!({"publishedCollections": [GLOBAL]})
    );
}

// ---------------------------------------------------------------- publishing and discovery

/// An instance with a card: a URL and a manifest with one skill per tag.
async fn agent(s: &TestServer, id: &str, name: &str, skill: &str, tags: &[&str]) {
    let mut body = instance_body(id, name);
    body["url"] = format!("https://{id}.example/a2a").into();
    body["agentCardManifest"] = json!({
        "id": format!("m-{id}"), "displayName": name, "description": format!("{name} agent"),
        "version": "1.0.0", "ownerIds": [USER],
        "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"], "capabilities": {},
        "skills": [{"id": skill, "displayName": skill, "description": "does it", "tags": tags}],
    });
    s.create_instance(body).await;
}

async fn add_member(s: &TestServer, collection: &str, id: &str) {
    let r = s
        .post(
            &format!("/agentRegistry/agentCollections/{collection}/members/$ref"),
            json!({"@odata.id": s.url(&format!("/agentRegistry/agentInstances/{id}"))}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn anonymous(s: &TestServer, path: &str) -> reqwest::Response {
    s.client
        .get(format!("{}{path}", s.origin))
        .send()
        .await
        .unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn members_of_published_collections_are_served_and_listed_without_a_token() {
    let s = TestServer::start().await;
    let public = s.create_collection("Public").await;
    agent(&s, "a1", "Travel", "book", &["travel"]).await;
    agent(&s, "a2", "Private", "book", &["travel"]).await;
    agent(&s, "a3", "Held", "book", &["travel"]).await;
    add_member(&s, &public, "a1").await;
    add_member(&s, &public, "a3").await;
    add_member(&s, QUARANTINED, "a3").await;

    let before = anonymous(&s, &card_path(TENANT_A, "a1")).await;
    assert_graph_error(before, 404, "AgentNotFound").await;
    let r = set_a2a(&s, TENANT_A, json!({"publishedCollections": [public]})).await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = anonymous(&s, &card_path(TENANT_A, "a1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let card: Value = r.json().await.unwrap();
    assert_eq!(card["name"], "Travel");
    for hidden in ["a2", "a3"] {
        let r = anonymous(&s, &card_path(TENANT_A, hidden)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{hidden}");
    }
    // Another tenant's token is no better than none.
    let r = s
        .client
        .get(format!("{}{}", s.origin, card_path(TENANT_A, "a2")))
        .bearer_auth(s.token_for(TENANT_B))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = anonymous(&s, &format!("/a2a/{TENANT_A}/agents")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    assert_eq!(ids(&list), ["a1"]);
    assert_eq!(list["value"][0]["kind"], "agentInstance");
    assert_eq!(
        list["value"][0]["cardUrl"],
        s.url(&card_path(TENANT_A, "a1"))
            .replace("/beta/a2a", "/a2a")
    );
    // With a token, every card the caller may read, quarantined ones aside.
    let list = s
        .get_json_at(&format!("{}/a2a/{TENANT_A}/agents", s.origin))
        .await;
    assert_eq!(ids(&list), ["a1", "a2"]);
}

#[tokio::test]
async fn discovery_finds_cards_by_skill_tag_and_text_page_by_page() {
    let s = server(ValidationMode::Off).await;
    agent(&s, "b1", "Booker", "book", &["travel", "hotels"]).await;
    agent(&s, "b2", "Flyer", "fly", &["travel"]).await;
    agent(&s, "b3", "Cook", "cook", &["food"]).await;
    let r = s
        .post(SET, registration("r1", card("https://r1.example/a2a")))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let base = format!("{}/a2a/{TENANT_A}/agents", s.origin);
    let table: Vec<(&str, Vec<&str>)> = vec![
        ("tag=travel", vec!["b1", "b2", "r1"]),
        ("tag=hotels", vec!["b1"]),
        ("tag=Travel", vec![]),
        ("skill=cook", vec!["b3"]),
        ("skill=BOOK", vec!["b1", "r1"]),
        ("q=flyer", vec!["b2"]),
        ("q=books", vec!["r1"]),
        ("tag=travel&skill=fly", vec!["b2"]),
        ("", vec!["b1", "b2", "b3", "r1"]),
    ];
    for (q, expected) in table {
        let got = s.get_json_at(&format!("{base}?{q}")).await;
        assert_eq!(ids(&got), expected, "{q}");
    }
    // Pages of two follow the next links across both kinds.
    let mut seen = Vec::new();
    let mut url = format!("{base}?top=2");
    loop {
        let page = s.get_json_at(&url).await;
        seen.extend(ids(&page).into_iter().map(str::to_owned));
        match page["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["b1", "b2", "b3", "r1"]);
    for bad in ["top=0", "top=201", "cursor=zz", "colour=red", "tag=a&tag=b"] {
        let r = s
            .client
            .get(format!("{base}?{bad}"))
            .bearer_auth(s.token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["innerError"]["request-id"].is_string(), "{e}");
    }
}

#[tokio::test]
async fn an_instance_read_in_a_validating_tenant_carries_its_built_cards_validation() {
    let s = server(ValidationMode::Off).await;
    agent(&s, "v1", "Valid", "book", &["travel"]).await;
    let mut bad = instance_body("v2", "Bad URL");
    bad["url"] = "ftp://bad.example/a2a".into();
    bad["agentCardManifest"] = json!({
        "id": "m-v2", "displayName": "Bad", "description": "d", "version": "1.0.0", "ownerIds": [USER],
        "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"], "capabilities": {},
        "skills": [{"id": "s", "displayName": "S", "description": "d", "tags": ["t"]}],
    });
    s.create_instance(bad).await;
    let path = |id: &str| format!("/agentRegistry/agentInstances/{id}");
    let got = s.get_json(&path("v2")).await;
    assert!(got.get("@agentry.cardValidation").is_none(), "off: {got}");

    let r = set_a2a(&s, TENANT_A, json!({"cardValidation": "warn"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = s.get_json(&path("v1")).await;
    assert_eq!(got["@agentry.cardValidation"]["valid"], true, "{got}");
    for query in ["", "?$expand=agentCardManifest", "?$select=id"] {
        let got = s.get_json(&format!("{}{query}", path("v2"))).await;
        assert_eq!(
            got["@agentry.cardValidation"]["problems"],
            json!([{"pointer": "/url", "message": "'url' must be an absolute http or https URL"}]),
            "{query}"
        );
    }
    // An instance without the A2A fields has no card to validate.
    s.create_instance(instance_body("plain", "Plain")).await;
    let got = s.get_json(&path("plain")).await;
    assert!(got.get("@agentry.cardValidation").is_none(), "{got}");
}

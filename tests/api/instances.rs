//! Agent instances: create, read, the three update examples of the seed,
//! delete, and the instance → manifest navigation.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SEED_ID: &str = "Security Copilot Platform Agent: 00222";

fn seed_manifest() -> Value {
    json!({
        "ownerIds": ["0ef68a76-e247-41dd-947b-41282760a2ac"],
        "originatingStore": "Copilot Studio",
        "displayName": "Conditional Access Agent Card",
        "description": "Manages organizational conditional access policies",
        "iconUrl": "https://example.com/icon.png",
        "provider": {"organization": "Test Organization", "url": "https://test.com"},
        "protocolVersion": "1.0",
        "version": "1.0.0",
        "documentationUrl": "https://example.com/docs",
        "capabilities": {
            "streaming": false,
            "pushNotifications": false,
            "stateTransitionHistory": true,
            "extensions": [{
                "uri": "https://contoso.example.com/a2a/capabilities/secureMessaging",
                "description": null,
                "required": false,
                "params": {"useHttps": true}
            }]
        },
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json", "text/html"],
        "supportsAuthenticatedExtendedCard": true,
        "skills": [{
            "id": "threat-detection",
            "displayName": "Threat Detection",
            "description": "Detect security threats in real-time",
            "tags": ["security", "threat", "detection"],
            "examples": ["Analyze this log for threats", "Check for malware"],
            "inputModes": ["application/json", "text/plain"],
            "outputModes": ["application/json", "text/html"]
        }]
    })
}

fn full_instance() -> Value {
    json!({
        "id": SEED_ID,
        "ownerIds": ["daf58b0e-44e1-433c-b6b0-ca70cae320b8", "b9108c41-d2d2-4e78-b073-92f57b752bd0"],
        "managedBy": "719cc904-9700-4e08-9941-fd826cc84c60",
        "originatingStore": "Microsoft Security Copilot",
        "createdBy": "d47bffae-411a-4de9-8548-05e79bc01f0d",
        "displayName": "Conditional Access Agent",
        "sourceAgentId": "00222",
        "agentIdentityBlueprintId": "d0108c41-d2d2-4e78-b073-92f57b752bd0",
        "agentIdentityId": "dd108c41-d2d2-4e78-b073-92f57b752bd0",
        "agentUserId": "ee108c41-d2d2-4e78-b073-92f57b752bd0",
        "createdDateTime": "2025-01-01T00:00:00.1234567Z",
        "lastModifiedDateTime": "2025-01-01T00:00:00.1234567Z",
        "url": "https://conditional-access-agent.example.com/a2a/v1",
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [
            {"url": "https://conditional-access-agent.example.com/a2a/v1", "transport": "JSONRPC"},
            {"url": "https://conditional-access-agent.example.com/a2a/grpc", "transport": "GRPC"}
        ],
        "signatures": [{
            "protected": "eyJhbGciOiJFUzI1NiJ9",
            "signature": "xOSim9oMw_CdZM",
            "header": {"kidHint": "contoso-key-1", "nonce": "f1e9b6c3", "@odata.type": "#microsoft.graph.jwsHeader"}
        }]
    })
}

fn path(id: &str) -> String {
    format!("/agentRegistry/agentInstances/{}", key(id))
}

#[tokio::test]
async fn creating_an_instance_answers_201_with_every_property_and_a_location() {
    let s = TestServer::start().await;
    let r = s
        .post("/agentRegistry/agentInstances", full_instance())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&s.url("/agentRegistry/agentInstances/")),
        "{location}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        s.url("/$metadata#agentRegistry/agentInstances/$entity")
    );
    let sent = full_instance();
    for k in [
        "id",
        "ownerIds",
        "managedBy",
        "originatingStore",
        "displayName",
        "sourceAgentId",
        "agentIdentityBlueprintId",
        "agentIdentityId",
        "agentUserId",
        "url",
        "preferredTransport",
        "additionalInterfaces",
        "signatures",
    ] {
        assert_eq!(body[k], sent[k], "property {k}");
    }
    // Server-owned properties are the server's, whatever the client sent.
    assert_eq!(body["createdBy"], USER);
    assert_ne!(body["createdDateTime"], "2025-01-01T00:00:00.1234567Z");
    assert_eq!(body["createdDateTime"], body["lastModifiedDateTime"]);
    assert!(body.get("agentCardManifest").is_none());

    let got = s.get_json(&path(SEED_ID)).await;
    assert_eq!(got, body, "GET returns what POST returned");
    let located = s
        .client
        .get(&location)
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(located.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_instance_without_an_id_gets_a_guid() {
    let s = TestServer::start().await;
    let body = s
        .create_instance(json!({"displayName": "My Agent Instance", "ownerIds": [USER]}))
        .await;
    let id = body["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(body["additionalInterfaces"], json!([]));
    assert_eq!(body["url"], Value::Null);
}

#[tokio::test]
async fn a_second_instance_with_the_same_id_is_a_conflict() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("dup", "one")).await;
    let r = s
        .post("/agentRegistry/agentInstances", instance_body("dup", "two"))
        .await;
    assert_graph_error(r, 409, "AgentAlreadyExists").await;
    assert_eq!(s.get_json(&path("dup")).await["displayName"], "one");
}

#[tokio::test]
async fn a_create_without_required_or_with_bad_properties_is_a_400() {
    let s = TestServer::start().await;
    let table = [
        json!({"ownerIds": [USER]}),
        json!({"displayName": "x"}),
        json!({"displayName": null, "ownerIds": [USER]}),
        json!({"displayName": "x", "ownerIds": [USER], "colour": "red"}),
        json!({"displayName": 7, "ownerIds": [USER]}),
        json!({"displayName": "x", "ownerIds": "me"}),
        json!({"displayName": "x", "ownerIds": [USER], "additionalInterfaces": [{"url": 1}]}),
        json!({"displayName": "x", "ownerIds": [USER], "id": ""}),
        json!({"displayName": "x", "ownerIds": [USER], "collections": []}),
        json!([1, 2]),
    ];
    for body in table {
        let r = s.post("/agentRegistry/agentInstances", body.clone()).await;
        let e = assert_graph_error(r, 400, "ValidationError").await;
        assert!(
            !e["error"]["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
    }
    let list = s.get_json("/agentRegistry/agentInstances").await;
    assert_eq!(list["value"], json!([]), "nothing was created");
}

#[tokio::test]
async fn an_unknown_property_is_named_in_the_error() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/agentRegistry/agentInstances",
            json!({"displayName": "x", "ownerIds": [], "colour": "red"}),
        )
        .await;
    let e = assert_graph_error(r, 400, "ValidationError").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'colour'"),
        "{e}"
    );
}

#[tokio::test]
async fn keys_with_spaces_and_colons_work_in_both_key_syntaxes() {
    let s = TestServer::start().await;
    s.create_instance(instance_body(SEED_ID, "CA")).await;
    let odata = format!("/agentRegistry/agentInstances('{}')", key(SEED_ID));
    for p in [path(SEED_ID), odata] {
        assert_eq!(s.get_json(&p).await["id"], SEED_ID, "{p}");
    }
    let quoted = "it's";
    s.create_instance(instance_body(quoted, "quote")).await;
    let p = format!("/agentRegistry/agentInstances('{}')", key("it''s"));
    assert_eq!(s.get_json(&p).await["id"], quoted);
}

#[tokio::test]
async fn an_unknown_instance_is_a_404_agent_not_found() {
    let s = TestServer::start().await;
    assert_graph_error(s.get(&path("nope")).await, 404, "AgentNotFound").await;
    assert_graph_error(
        s.patch(&path("nope"), json!({"displayName": "x"})).await,
        404,
        "AgentNotFound",
    )
    .await;
    assert_graph_error(s.delete(&path("nope")).await, 404, "AgentNotFound").await;
}

/// Seed example 1: a nested manifest is created when the instance has none,
/// and updated (the same manifest) afterwards.
#[tokio::test]
async fn patching_a_nested_manifest_creates_it_then_updates_it() {
    let s = TestServer::start().await;
    s.create_instance(instance_body(SEED_ID, "CA")).await;
    let r = s
        .patch(
            &path(SEED_ID),
            json!({"agentCardManifest": seed_manifest()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());

    let manifest = s
        .get_json(&format!("{}/agentCardManifest", path(SEED_ID)))
        .await;
    assert_eq!(
        manifest["@odata.context"],
        s.url("/$metadata#agentRegistry/agentCardManifests/$entity")
    );
    let sent = seed_manifest();
    for (k, v) in sent.as_object().unwrap() {
        assert_eq!(&manifest[k], v, "manifest property {k}");
    }
    let manifest_id = manifest["id"].as_str().unwrap().to_owned();

    let r = s
        .patch(
            &path(SEED_ID),
            json!({"agentCardManifest": {"version": "2.0.0"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let updated = s
        .get_json(&format!("{}/agentCardManifest", path(SEED_ID)))
        .await;
    assert_eq!(
        updated["id"],
        manifest_id.as_str(),
        "the linked manifest was updated, not replaced"
    );
    assert_eq!(updated["version"], "2.0.0");
    assert_eq!(updated["displayName"], "Conditional Access Agent Card");
    let all = s.get_json("/agentRegistry/agentCardManifests").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 1);
}

/// Seed example 2: `agentCardManifest@odata.bind` points at an existing manifest.
#[tokio::test]
async fn patching_a_bind_links_an_existing_manifest() {
    let s = TestServer::start().await;
    let mut m = seed_manifest();
    m["id"] = json!("employee-assistant");
    assert_eq!(
        s.post("/agentRegistry/agentCardManifests", m)
            .await
            .status(),
        StatusCode::CREATED
    );
    s.create_instance(instance_body(SEED_ID, "CA")).await;

    let bind =
        "https://graph.microsoft.com/beta/agentRegistry/agentCardManifests('employee-assistant')";
    let r = s
        .patch(
            &path(SEED_ID),
            json!({"agentCardManifest@odata.bind": bind}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let linked = s
        .get_json(&format!("{}/agentCardManifest", path(SEED_ID)))
        .await;
    assert_eq!(linked["id"], "employee-assistant");

    let r = s
        .patch(
            &path(SEED_ID),
            json!({"agentCardManifest@odata.bind": "https://graph.microsoft.com/beta/users('x')"}),
        )
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let r = s
        .patch(
            &path(SEED_ID),
            json!({"agentCardManifest@odata.bind": "agentRegistry/agentCardManifests/missing"}),
        )
        .await;
    assert_graph_error(r, 404, "AgentCardNotFound").await;
    let r = s
        .patch(&path(SEED_ID), json!({"agentCardManifest@odata.bind": 5}))
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let still = s
        .get_json(&format!("{}/agentCardManifest", path(SEED_ID)))
        .await;
    assert_eq!(
        still["id"], "employee-assistant",
        "failed binds change nothing"
    );
}

#[tokio::test]
async fn creating_with_a_nested_manifest_or_a_bind_links_it() {
    let s = TestServer::start().await;
    let mut body = full_instance();
    body["agentCardManifest"] = seed_manifest();
    s.create_instance(body).await;
    let m = s
        .get_json(&format!("{}/agentCardManifest", path(SEED_ID)))
        .await;
    assert_eq!(m["displayName"], "Conditional Access Agent Card");

    let mut second = instance_body("second", "Second");
    second["agentCardManifest@odata.bind"] = json!(format!(
        "https://graph.microsoft.com/beta/agentRegistry/agentCardManifests('{}')",
        m["id"].as_str().unwrap()
    ));
    s.create_instance(second).await;
    let shared = s
        .get_json(&format!("{}/agentCardManifest", path("second")))
        .await;
    assert_eq!(shared["id"], m["id"], "two instances share one manifest");

    let mut third = instance_body("third", "Third");
    third["agentCardManifest@odata.bind"] = json!("agentCardManifests('missing')");
    let r = s.post("/agentRegistry/agentInstances", third).await;
    assert_graph_error(r, 404, "AgentCardNotFound").await;
    assert_graph_error(s.get(&path("third")).await, 404, "AgentNotFound").await;
}

#[tokio::test]
async fn a_nested_manifest_without_a_display_name_is_refused_and_nothing_is_written() {
    let s = TestServer::start().await;
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"description": "no name"});
    let r = s.post("/agentRegistry/agentInstances", body).await;
    assert_graph_error(r, 400, "ValidationError").await;
    assert_graph_error(s.get(&path("i")).await, 404, "AgentNotFound").await;
    assert_eq!(
        s.get_json("/agentRegistry/agentCardManifests").await["value"],
        json!([])
    );
}

/// Seed example 3: only the given property changes.
#[tokio::test]
async fn patching_display_name_changes_only_display_name() {
    let s = TestServer::start().await;
    let before = s.create_instance(full_instance()).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = s
        .patch(
            &path(SEED_ID),
            json!({"displayName": "Teams Meeting Scheduler Agent"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = s.get_json(&path(SEED_ID)).await;
    assert_eq!(after["displayName"], "Teams Meeting Scheduler Agent");
    for (k, v) in before.as_object().unwrap() {
        if k != "displayName" && k != "lastModifiedDateTime" && k != "@odata.etag" {
            assert_eq!(&after[k], v, "property {k} kept");
        }
    }
    assert!(after["lastModifiedDateTime"].as_str() > before["lastModifiedDateTime"].as_str());
}

#[tokio::test]
async fn a_patch_replaces_collections_whole_and_can_return_the_entity() {
    let s = TestServer::start().await;
    s.create_instance(full_instance()).await;
    let r = s
        .req(Method::PATCH, &path(SEED_ID))
        .header("Prefer", "return=representation")
        .json(&json!({"ownerIds": ["only-one"], "createdBy": "ignored", "url": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["preference-applied"], "return=representation");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ownerIds"], json!(["only-one"]));
    assert_eq!(body["url"], Value::Null);
    assert_eq!(body["createdBy"], USER);
    assert_eq!(
        body["additionalInterfaces"],
        full_instance()["additionalInterfaces"]
    );
}

#[tokio::test]
async fn deleting_an_instance_removes_it_and_its_memberships_but_not_its_manifest() {
    let s = TestServer::start().await;
    let mut body = instance_body("gone", "Gone");
    body["agentCardManifest"] = json!({"id": "kept-card", "displayName": "card"});
    s.create_instance(body).await;
    let cid = s.create_collection("Team").await;
    let r = s
        .post(
            &format!("/agentRegistry/agentCollections/{cid}/members/$ref"),
            json!({"@odata.id": "agentInstances('gone')"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        s.delete(&path("gone")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_graph_error(s.get(&path("gone")).await, 404, "AgentNotFound").await;
    let members = s
        .get_json(&format!("/agentRegistry/agentCollections/{cid}/members"))
        .await;
    assert_eq!(members["value"], json!([]));
    assert_eq!(
        s.get_json("/agentRegistry/agentCardManifests/kept-card")
            .await["id"],
        "kept-card"
    );
}

#[tokio::test]
async fn the_manifest_navigation_reads_updates_and_unlinks() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    let nav = format!("{}/agentCardManifest", path("i"));
    assert_graph_error(s.get(&nav).await, 404, "AgentCardNotFound").await;
    assert_graph_error(
        s.patch(&nav, json!({"version": "1"})).await,
        404,
        "AgentCardNotFound",
    )
    .await;
    assert_graph_error(s.delete(&nav).await, 404, "AgentCardNotFound").await;
    assert_graph_error(
        s.get(&format!("{}/agentCardManifest", path("none"))).await,
        404,
        "AgentNotFound",
    )
    .await;

    s.patch(
        &path("i"),
        json!({"agentCardManifest": {"id": "card", "displayName": "Card"}}),
    )
    .await;
    let r = s.patch(&nav, json!({"version": "3.0.0"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["version"], "3.0.0");
    assert_eq!(body["id"], "card");

    assert_eq!(s.delete(&nav).await.status(), StatusCode::NO_CONTENT);
    assert_graph_error(s.get(&nav).await, 404, "AgentCardNotFound").await;
    assert_eq!(
        s.get_json("/agentRegistry/agentCardManifests/card").await["version"],
        "3.0.0",
        "the manifest survives"
    );

    let r = s
        .patch(
            &path("i"),
            json!({"agentCardManifest": {"id": "card", "displayName": "Again"}}),
        )
        .await;
    assert_graph_error(r, 409, "AgentCardAlreadyExists").await;
}

#[tokio::test]
async fn nesting_and_binding_a_manifest_at_once_is_refused() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    let r = s
        .patch(&path("i"), json!({"agentCardManifest": {"displayName": "x"}, "agentCardManifest@odata.bind": "agentCardManifests('y')"}))
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
}

#[tokio::test]
async fn select_and_expand_shape_a_single_instance() {
    let s = TestServer::start().await;
    let mut body = full_instance();
    body["agentCardManifest"] = seed_manifest();
    s.create_instance(body).await;
    let got = s
        .get_json(&format!(
            "{}?$expand=agentCardManifest($select=id,skills)&$select=id,displayName,url",
            path(SEED_ID)
        ))
        .await;
    let keys: Vec<&str> = got
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.etag",
            "id",
            "displayName",
            "url",
            "agentCardManifest"
        ]
    );
    assert_eq!(
        got["@odata.context"],
        s.url("/$metadata#agentRegistry/agentInstances(id,displayName,url,agentCardManifest(id,skills))/$entity")
    );
    let m = got["agentCardManifest"].as_object().unwrap();
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        ["@odata.etag", "id", "skills"]
    );

    s.create_instance(instance_body("bare", "Bare")).await;
    let bare = s
        .get_json(&format!("{}?$expand=agentCardManifest", path("bare")))
        .await;
    assert_eq!(bare["agentCardManifest"], Value::Null);

    let r = s.get(&format!("{}?$select=colour", path("bare"))).await;
    assert_graph_error(r, 400, "BadRequest").await;
    let r = s.get(&format!("{}?$expand=members", path("bare"))).await;
    assert_graph_error(r, 400, "BadRequest").await;
}

#[tokio::test]
async fn an_instance_lists_the_collections_it_belongs_to() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    let cid = s.create_collection("Team").await;
    for c in [cid.as_str(), GLOBAL] {
        let r = s.post(&format!("/agentRegistry/agentCollections/{c}/members/$ref"), json!({"@odata.id": "https://graph.microsoft.com/beta/agentRegistry/agentInstances('i')"})).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let list = s
        .get_json(&format!("{}/collections?$select=id,displayName", path("i")))
        .await;
    assert_eq!(
        list["@odata.context"],
        s.url("/$metadata#agentRegistry/agentCollections(id,displayName)")
    );
    let mut ids: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![cid.as_str(), GLOBAL];
    expected.sort();
    assert_eq!(ids, expected);
    let one = s
        .get_json(&format!("{}/collections/{cid}", path("i")))
        .await;
    assert_eq!(one["displayName"], "Team");
    assert_graph_error(
        s.get(&format!("{}/collections/{QUARANTINED}", path("i")))
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    let count = s
        .get(&format!("{}/collections/$count", path("i")))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(count, "2");
    assert_graph_error(
        s.get(&format!("{}/collections", path("none"))).await,
        404,
        "AgentNotFound",
    )
    .await;
}

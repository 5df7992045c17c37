//! `/beta/copilot/agentRegistrations`: the Agent 365 successor of agent
//! instances, its documented answers, rules and permissions.

use crate::support::*;
use agentry::auth::permissions::{AGENT_REGISTRY_ADMINISTRATOR, GLOBAL_READER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SET: &str = "/copilot/agentRegistrations";
const READ: &str = "AgentRegistration.Read.All";
const WRITE: &str = "AgentRegistration.ReadWrite.All";

/// A valid create body: the documented required properties and an owner.
pub fn registration(id: &str, source: &str) -> Value {
    json!({
        "id": id,
        "displayName": format!("Agent {id}"),
        "ownerIds": [USER],
        "createdBy": USER,
        "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
        "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z",
        "sourceAgentId": source,
    })
}

fn path(id: &str) -> String {
    format!("{SET}/{}", key(id))
}

/// The documented example, with the properties it lists as required.
fn documented_example() -> Value {
    json!({
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "displayName": "Contoso Travel Booking Agent",
        "description": "Helps users search and book flights and hotels",
        "ownerIds": ["3fa85f64-5717-4562-b3fc-2c963f66afa6", "8b7e9c42-1234-5678-90ab-def123456789"],
        "createdBy": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
        "sourceLastModifiedDateTime": "2025-02-15T10:00:00.5+02:00",
        "sourceAgentId": "contoso-sales-assistant-v1",
        "originatingStore": "ContosoAgentStore",
        "managedByAppId": "7c3f8d45-e29b-41d4-a716-556677889900",
        "agentIdentityId": "identity-550e8400-e29b-41d4-a716-446655440000",
        "agentIdentityBlueprintId": "blueprint-550e8400-e29b-41d4-a716-446655440000",
        "a2aAuthorization": {"type": "oAuthPluginVault", "referenceId": "vault-1"},
        "agentCard": {
            "name": "Contoso Travel Booking Agent", "version": "1.0.0",
            "provider": "Contoso",
            "capabilities": {"streaming": false, "pushNotifications": false},
            "skills": [{"id": "book-flight", "name": "Book Flight", "weight": 1.50}],
            "@odata.type": "kept as sent"
        }
    })
}

#[tokio::test]
async fn a_registration_is_created_read_updated_and_deleted_as_documented() {
    let s = TestServer::start().await;
    let sent = documented_example();
    // Sent as text: the number's spelling (1.50) must survive too.
    let text = sent
        .to_string()
        .replace("\"weight\":1.5", "\"weight\":1.50");
    let r = s
        .req(Method::POST, SET)
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&s.url("/copilot/agentRegistrations/550e8400")),
        "{location}"
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        created["@odata.context"],
        s.url("/$metadata#copilot/agentRegistrations/$entity")
    );
    for k in [
        "displayName",
        "ownerIds",
        "createdBy",
        "sourceAgentId",
        "managedByAppId",
        "a2aAuthorization",
    ] {
        assert_eq!(created[k], sent[k], "{k}");
    }
    // Date-times are written as Graph writes them: UTC, seven fractional digits.
    assert_eq!(
        created["sourceCreatedDateTime"],
        "2025-02-15T10:00:00.0000000Z"
    );
    assert_eq!(
        created["sourceLastModifiedDateTime"],
        "2025-02-15T08:00:00.5000000Z"
    );
    // Unset properties are present and null; no server timestamps are added.
    assert_eq!(created["lastPublishedBy"], Value::Null);
    assert!(created.get("createdDateTime").is_none(), "{created}");

    let id_path = path("550e8400-e29b-41d4-a716-446655440000");
    let text = s.get(&id_path).await.text().await.unwrap();
    assert!(
        text.contains(r#""agentCard":{"name":"Contoso Travel Booking Agent","version":"1.0.0","provider":"Contoso","capabilities":{"streaming":false,"pushNotifications":false},"skills":[{"id":"book-flight","name":"Book Flight","weight":1.50}],"@odata.type":"kept as sent"}"#),
        "the card is kept exactly as sent: {text}"
    );

    let r = s
        .patch(&id_path, json!({"displayName": "Contoso Sales Assistant", "ownerIds": [USER], "agentCard": [1, "two"]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the documented 200");
    assert!(r.headers().get("etag").is_some());
    assert_eq!(r.text().await.unwrap(), "", "with an empty body");
    let got = s.get_json(&id_path).await;
    assert_eq!(got["displayName"], "Contoso Sales Assistant");
    assert_eq!(got["ownerIds"], json!([USER]));
    assert_eq!(got["agentCard"], json!([1, "two"]));
    assert_eq!(got["description"], sent["description"], "untouched");

    // A stale ETag is refused; the current one is taken.
    let tag = s.get(&id_path).await.headers()["etag"].clone();
    let r = s
        .req(Method::PATCH, &id_path)
        .header("if-match", "W/\"1-811c9dc5\"")
        .json(&json!({"description": null}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 412, "resourceModified").await;
    let r = s
        .req(Method::PATCH, &id_path)
        .header("if-match", tag)
        .json(&json!({"description": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.get_json(&id_path).await["description"], Value::Null);

    let r = s.delete(&id_path).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_graph_error(s.get(&id_path).await, 404, "AgentRegistrationNotFound").await;
    assert_graph_error(s.delete(&id_path).await, 404, "AgentRegistrationNotFound").await;
}

#[tokio::test]
async fn creates_missing_what_the_documentation_requires_are_400() {
    let s = TestServer::start().await;
    let valid = registration("r1", "s1");
    let mut cases: Vec<(String, Value)> = Vec::new();
    for required in [
        "displayName",
        "createdBy",
        "sourceCreatedDateTime",
        "sourceLastModifiedDateTime",
    ] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(required);
        cases.push((format!("without {required}"), body));
    }
    let mut unowned = valid.clone();
    unowned["ownerIds"] = json!([]);
    cases.push(("with neither owners nor a managing app".into(), unowned));
    let bad = [
        ("unknown property", json!({"managedBy": "x"})),
        ("wrong type", json!({"ownerIds": "x"})),
        (
            "bad enum value",
            json!({"a2aAuthorization": {"type": "password"}}),
        ),
        ("bad date", json!({"sourceCreatedDateTime": "yesterday"})),
        (
            "unknown nested property",
            json!({"a2aAuthorization": {"secret": "x"}}),
        ),
    ];
    for (what, change) in bad {
        let mut body = valid.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        cases.push((what.into(), body));
    }
    for (what, body) in cases {
        let r = s.post(SET, body).await;
        let err = assert_graph_error(r, 400, "ValidationError").await;
        assert!(
            !err["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    assert_eq!(
        s.get_json(SET).await["value"],
        json!([]),
        "nothing was stored"
    );
    // A managing application alone is enough.
    let mut managed = valid.clone();
    managed["ownerIds"] = json!([]);
    managed["managedByAppId"] = json!(APP);
    assert_eq!(s.post(SET, managed).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_update_leaving_a_registration_without_owner_or_manager_is_refused_and_changes_nothing()
{
    let s = TestServer::start().await;
    assert_eq!(
        s.post(SET, registration("r1", "s1")).await.status(),
        StatusCode::CREATED
    );
    let r = s
        .patch(
            &path("r1"),
            json!({"ownerIds": [], "displayName": "Renamed"}),
        )
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let got = s.get_json(&path("r1")).await;
    assert_eq!(got["displayName"], "Agent r1");
    assert_eq!(got["ownerIds"], json!([USER]));
}

#[tokio::test]
async fn a_source_agent_id_belongs_to_one_registration_of_a_tenant() {
    let s = TestServer::start().await;
    assert_eq!(
        s.post(SET, registration("r1", "contoso-1")).await.status(),
        StatusCode::CREATED
    );
    let err = assert_graph_error(
        s.post(SET, registration("r2", "contoso-1")).await,
        409,
        "Conflict",
    )
    .await;
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("contoso-1") && message.contains("'r1'"),
        "{message}"
    );
    // The same id is a conflict of its own.
    assert_graph_error(
        s.post(SET, registration("r1", "other")).await,
        409,
        "AgentRegistrationAlreadyExists",
    )
    .await;
    // Taking another's by update is refused; keeping one's own is not.
    assert_eq!(
        s.post(SET, registration("r2", "contoso-2")).await.status(),
        StatusCode::CREATED
    );
    assert_graph_error(
        s.patch(&path("r2"), json!({"sourceAgentId": "contoso-1"}))
            .await,
        409,
        "Conflict",
    )
    .await;
    assert_eq!(
        s.patch(&path("r1"), json!({"sourceAgentId": "contoso-1"}))
            .await
            .status(),
        StatusCode::OK
    );
    // Another tenant has its own namespace, and a deleted registration frees its id.
    let r = s
        .req_as(TENANT_B, Method::POST, SET)
        .json(&registration("r1", "contoso-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(s.delete(&path("r1")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.post(SET, registration("r3", "contoso-1")).await.status(),
        StatusCode::CREATED
    );
    // Registrations without one do not collide.
    for id in ["n1", "n2"] {
        let mut body = registration(id, "");
        body.as_object_mut().unwrap().remove("sourceAgentId");
        assert_eq!(s.post(SET, body).await.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_source_agent_id_create_exactly_one() {
    let s = TestServer::start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = s
            .req(Method::POST, SET)
            .json(&registration(&format!("r{i}"), "raced"));
        tasks.spawn(async move { request.send().await.expect("request").status().as_u16() });
    }
    let statuses: Vec<u16> = tasks.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    let r = s
        .get(&format!("{SET}/$count?$filter=sourceAgentId eq 'raced'"))
        .await;
    assert_eq!(r.text().await.unwrap(), "1");
}

#[tokio::test]
async fn lists_filter_on_the_properties_users_look_up_and_page() {
    let s = TestServer::start().await;
    for i in 0..5 {
        let mut body = registration(&format!("r{i}"), &format!("src-{i}"));
        body["displayName"] = json!(if i % 2 == 0 {
            format!("Travel {i}")
        } else {
            format!("Sales {i}")
        });
        body["description"] = json!(format!("books trips {i}"));
        body["managedByAppId"] = json!(if i < 2 { "app-a" } else { "app-b" });
        body["agentIdentityId"] = json!(format!("identity-{i}"));
        body["originatingStore"] = json!(if i == 4 { "Store" } else { "Other" });
        body["ownerIds"] = json!([format!("owner-{}", i % 2)]);
        assert_eq!(s.post(SET, body).await.status(), StatusCode::CREATED);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        ("$filter=sourceAgentId eq 'src-3'", vec!["r3"]),
        ("$filter=managedByAppId eq 'app-a'", vec!["r0", "r1"]),
        ("$filter=ownerIds/any(o: o eq 'owner-1')", vec!["r1", "r3"]),
        ("$filter=agentIdentityId eq 'identity-2'", vec!["r2"]),
        ("$filter=originatingStore eq 'Store'", vec!["r4"]),
        (
            "$filter=startswith(displayName, 'travel')",
            vec!["r0", "r2", "r4"],
        ),
        ("$filter=a2aAuthorization/type eq 'none'", vec![]),
        (
            "$orderby=displayName desc&$filter=managedByAppId eq 'app-b'",
            vec!["r4", "r2", "r3"],
        ),
    ];
    for (query, want) in cases {
        let got = s.get_json(&format!("{SET}?{query}")).await;
        assert_eq!(ids(&got), want, "{query}");
    }
    let r = s
        .req(Method::GET, &format!("{SET}?$search=\"trips 3\""))
        .header("consistencylevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&r.json().await.unwrap()), vec!["r3"]);
    let page = s
        .get_json(&format!("{SET}?$top=2&$count=true&$select=id,displayName"))
        .await;
    assert_eq!(page["@odata.count"], 5);
    assert_eq!(ids(&page), vec!["r0", "r1"]);
    assert_eq!(
        page["value"][0]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@'))
            .count(),
        2
    );
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#copilot/agentRegistrations(id,displayName)"),
        "{page}"
    );
    let next = page["@odata.nextLink"].as_str().unwrap();
    let r = s
        .client
        .get(next)
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    let rest: Value = r.json().await.unwrap();
    assert_eq!(ids(&rest), vec!["r2", "r3"]);
    let r = s
        .get(&format!("{SET}/$count?$filter=managedByAppId eq 'app-b'"))
        .await;
    assert_eq!(r.text().await.unwrap(), "3");
    assert_graph_error(
        s.get(&format!("{SET}?$filter=managedBy eq 'x'")).await,
        400,
        "BadRequest",
    )
    .await;
}

#[tokio::test]
async fn permissions_follow_the_registration_table_and_an_app_manages_only_for_itself() {
    let s = TestServer::start().await;
    let call = |token: String, method: Method, p: &str, body: Option<Value>| {
        let mut rb = s.client.request(method, s.url(p)).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    // Application permissions.
    let reader = s.app_token(APP, &[READ]);
    let writer = s.app_token(APP, &[WRITE]);
    let r = call(
        reader.clone(),
        Method::POST,
        SET,
        Some(registration("r1", "s1")),
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let mut foreign = registration("r1", "s1");
    foreign["managedByAppId"] = json!("7c3f8d45-e29b-41d4-a716-556677889900");
    let r = call(writer.clone(), Method::POST, SET, Some(foreign))
        .await
        .unwrap();
    let err = assert_graph_error(r, 424, "FailedDependency").await;
    assert_eq!(
        err["error"]["message"],
        "You do not have permission to create an agent registration managed by another AppId."
    );
    let mut own = registration("r1", "s1");
    own["managedByAppId"] = json!(APP);
    let r = call(writer.clone(), Method::POST, SET, Some(own))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = call(
        writer.clone(),
        Method::PATCH,
        &path("r1"),
        Some(json!({"managedByAppId": "someone-else"})),
    )
    .await
    .unwrap();
    assert_graph_error(r, 424, "FailedDependency").await;
    let r = call(reader.clone(), Method::GET, &path("r1"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(reader.clone(), Method::DELETE, &path("r1"), None)
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let r = call(
        s.app_token(APP, &["AgentInstance.ReadWrite.All"]),
        Method::GET,
        SET,
        None,
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    // Delegated: the scope and one of the roles; an administrator may name any app.
    let user = s.user_token(&[WRITE], &[AGENT_REGISTRY_ADMINISTRATOR]);
    let mut foreign = registration("r2", "s2");
    foreign["managedByAppId"] = json!("7c3f8d45-e29b-41d4-a716-556677889900");
    let r = call(user, Method::POST, SET, Some(foreign)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = call(
        s.user_token(&[WRITE], &[GLOBAL_READER]),
        Method::GET,
        SET,
        None,
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let r = call(
        s.user_token(&[READ], &[AGENT_REGISTRY_ADMINISTRATOR]),
        Method::PATCH,
        &path("r2"),
        Some(json!({"displayName": "x"})),
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn tenants_never_see_each_others_registrations() {
    let s = TestServer::start().await;
    assert_eq!(
        s.post(SET, registration("r1", "s1")).await.status(),
        StatusCode::CREATED
    );
    let r = s
        .req_as(TENANT_B, Method::GET, &path("r1"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentRegistrationNotFound").await;
    let r = s.req_as(TENANT_B, Method::GET, SET).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"], json!([]));
    let r = s
        .req_as(TENANT_B, Method::DELETE, &path("r1"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentRegistrationNotFound").await;
    assert_eq!(s.get(&path("r1")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_metadata_describes_registrations_under_the_copilot_singleton() {
    let s = TestServer::start().await;
    let text = s.get("/$metadata").await.text().await.unwrap();
    for needle in [
        "<EntityType Name=\"agentRegistration\" BaseType=\"graph.entity\">",
        "<Property Name=\"agentCard\" Type=\"Edm.Untyped\"/>",
        "<Property Name=\"a2aAuthorization\" Type=\"graph.a2aAuthorization\"/>",
        "<EnumType Name=\"a2aAuthorizationType\">",
        "<Member Name=\"connectionVault\" Value=\"4\"/>",
        "<NavigationProperty Name=\"agentRegistrations\" Type=\"Collection(graph.agentRegistration)\" ContainsTarget=\"true\"/>",
        "<Singleton Name=\"copilot\" Type=\"graph.copilotRoot\"/>",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
}

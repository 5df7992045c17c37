//! Agent card manifests: the Graph methods (list, get, update) and the
//! create and delete Agentry adds.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn open_typed_manifest() -> Value {
    json!({
        "id": "8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234",
        "displayName": "Conditional Access Agent",
        "capabilities": {"extensions": [{"uri": "u", "params": {"useHttps": true, "info": {"version": "1.0.0", "list": [1, "two", null]}}}]},
        "securitySchemes": {
            "google": {"@odata.type": "#microsoft.graph.apiKeySecurityScheme", "type": "apiKey", "description": "Use an api key", "name": "key", "in": "cookie"},
            "entra": {"@odata.type": "#microsoft.graph.oAuth2SecurityScheme", "type": "oauth2", "description": "Use oauth",
                "flows": {"clientCredentials": {"tokenUrl": "https://login.microsoftonline.com", "refreshUrl": null, "scopes": {"agent.run": "run the agent"}}}}
        },
        "security": [{"google": []}, {"entra": []}],
        "skills": [{"id": "analyze", "displayName": "CA Optimizer", "tags": ["security"], "security": [{"entra": ["agent.run"]}]}]
    })
}

#[tokio::test]
async fn open_types_round_trip_exactly_annotations_included() {
    let s = TestServer::start().await;
    let sent = open_typed_manifest();
    let r = s
        .post("/agentRegistry/agentCardManifests", sent.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = s
        .get_json("/agentRegistry/agentCardManifests/8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234")
        .await;
    for k in ["capabilities", "securitySchemes", "security", "skills"] {
        assert_eq!(got[k], sent[k], "{k}");
    }
    // Key order inside open types is kept too.
    let text = s
        .get("/agentRegistry/agentCardManifests/8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(r##"{"@odata.type":"#microsoft.graph.apiKeySecurityScheme","type":"apiKey","description":"Use an api key","name":"key","in":"cookie"}"##), "{text}");
}

#[tokio::test]
async fn a_manifest_update_answers_200_with_the_updated_manifest() {
    let s = TestServer::start().await;
    s.post("/agentRegistry/agentCardManifests", open_typed_manifest())
        .await;
    let p = "/agentRegistry/agentCardManifests/8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234";
    let schemes = json!({"openIdConnectAuth": {"@odata.type": "#microsoft.graph.openIdConnectSecurityScheme", "type": "openIdConnect",
        "description": "OIDC identity", "openIdConnectUrl": "https://login.microsoftonline.com/{tenantId}/v2.0/.well-known/openid-configuration"}});
    let r = s.patch(p, json!({"securitySchemes": schemes, "security": [{"apiKeyAuth": []}, {"openIdConnectAuth": []}], "version": "2.0.0"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        s.url("/$metadata#agentRegistry/agentCardManifests/$entity")
    );
    assert_eq!(body["securitySchemes"], schemes);
    assert_eq!(body["version"], "2.0.0");
    assert_eq!(body["displayName"], "Conditional Access Agent");
    assert_eq!(s.get_json(p).await["version"], "2.0.0");

    assert_graph_error(
        s.patch(p, json!({"skills": [{"name": "A2A name, not Graph's"}]}))
            .await,
        400,
        "ValidationError",
    )
    .await;
    assert_graph_error(
        s.patch(
            "/agentRegistry/agentCardManifests/none",
            json!({"version": "1"}),
        )
        .await,
        404,
        "AgentCardNotFound",
    )
    .await;
}

#[tokio::test]
async fn manifests_list_count_and_refuse_duplicates() {
    let s = TestServer::start().await;
    for i in 0..3 {
        let r = s
            .post(
                "/agentRegistry/agentCardManifests",
                json!({"id": format!("m{i}"), "displayName": format!("M{i}")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = s
        .post(
            "/agentRegistry/agentCardManifests",
            json!({"id": "m1", "displayName": "again"}),
        )
        .await;
    assert_graph_error(r, 409, "AgentCardAlreadyExists").await;
    let r = s
        .post(
            "/agentRegistry/agentCardManifests",
            json!({"description": "no name"}),
        )
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let list = s
        .get_json("/agentRegistry/agentCardManifests?$count=true&$select=id")
        .await;
    assert_eq!(list["@odata.count"], 3);
    assert_eq!(
        without_etags(&list["value"]),
        json!([{"id": "m0"}, {"id": "m1"}, {"id": "m2"}])
    );
    assert_eq!(
        s.get("/agentRegistry/agentCardManifests/$count")
            .await
            .text()
            .await
            .unwrap(),
        "3"
    );
}

#[tokio::test]
async fn a_linked_manifest_cannot_be_deleted_until_unlinked() {
    let s = TestServer::start().await;
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"id": "card", "displayName": "Card"});
    s.create_instance(body).await;
    assert_graph_error(
        s.delete("/agentRegistry/agentCardManifests/card").await,
        409,
        "Conflict",
    )
    .await;
    assert_eq!(
        s.delete("/agentRegistry/agentInstances/i/agentCardManifest")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete("/agentRegistry/agentCardManifests/card")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_graph_error(
        s.get("/agentRegistry/agentCardManifests/card").await,
        404,
        "AgentCardNotFound",
    )
    .await;
    assert_graph_error(
        s.delete("/agentRegistry/agentCardManifests/card").await,
        404,
        "AgentCardNotFound",
    )
    .await;
}

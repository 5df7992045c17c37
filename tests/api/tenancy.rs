//! Tenants never see or touch each other's objects.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn two_tenants_do_not_see_each_others_objects() {
    let s = TestServer::start().await;
    let r = s
        .req_as(TENANT_A, Method::POST, "/agentRegistry/agentInstances")
        .json(&instance_body("shared-id", "A's"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .req_as(TENANT_A, Method::POST, "/agentRegistry/agentCardManifests")
        .json(&json!({"id": "card", "displayName": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .req_as(
            TENANT_A,
            Method::POST,
            &format!("/agentRegistry/agentCollections/{GLOBAL}/members/$ref"),
        )
        .json(&json!({"@odata.id": "agentInstances('shared-id')"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let get_b = |path: &str| s.req_as(TENANT_B, Method::GET, path).send();
    let list: Value = get_b("/agentRegistry/agentInstances")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"], json!([]));
    let list: Value = get_b("/agentRegistry/agentCardManifests")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"], json!([]));
    let members: Value = get_b(&format!("/agentRegistry/agentCollections/{GLOBAL}/members"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["value"], json!([]));
    assert_graph_error(
        get_b("/agentRegistry/agentInstances/shared-id")
            .await
            .unwrap(),
        404,
        "AgentNotFound",
    )
    .await;
    assert_graph_error(
        get_b("/agentRegistry/agentCardManifests/card")
            .await
            .unwrap(),
        404,
        "AgentCardNotFound",
    )
    .await;
    let r = s
        .req_as(
            TENANT_B,
            Method::PATCH,
            "/agentRegistry/agentInstances/shared-id",
        )
        .json(&json!({"displayName": "B's"}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = s
        .req_as(
            TENANT_B,
            Method::DELETE,
            "/agentRegistry/agentInstances/shared-id",
        )
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = s
        .req_as(TENANT_B, Method::PATCH, "/agentRegistry/agentInstances/x")
        .json(&json!({"agentCardManifest@odata.bind": "agentCardManifests('card')"}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;

    // The same id is free in the other tenant, and stays distinct.
    let r = s
        .req_as(TENANT_B, Method::POST, "/agentRegistry/agentInstances")
        .json(&instance_body("shared-id", "B's"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let a: Value = s
        .req_as(
            TENANT_A,
            Method::GET,
            "/agentRegistry/agentInstances/shared-id",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["displayName"], "A's");
}

#[tokio::test]
async fn a_paging_token_from_one_tenant_is_refused_in_another() {
    let s = TestServer::start().await;
    for i in 0..3 {
        let r = s
            .req_as(TENANT_A, Method::POST, "/agentRegistry/agentInstances")
            .json(&instance_body(&format!("i{i}"), "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let page: Value = s
        .req_as(
            TENANT_A,
            Method::GET,
            "/agentRegistry/agentInstances?$top=1",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page["@odata.nextLink"].as_str().unwrap().to_owned();
    let r = s
        .client
        .get(&next)
        .bearer_auth(s.token_for(TENANT_B))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "BadRequest").await;
}

//! Agent collections, the reserved Global and Quarantined collections, and
//! membership on both documented path shapes.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn the_reserved_collections_exist_in_every_tenant() {
    let s = TestServer::start().await;
    let g = s
        .get_json(&format!("/agentRegistry/agentCollections/{GLOBAL}"))
        .await;
    assert_eq!(g["displayName"], "Global");
    let q = s
        .get_json(&format!("/agentRegistry/agentCollections('{QUARANTINED}')"))
        .await;
    assert_eq!(q["displayName"], "Quarantined");
    let list = s.get_json("/agentRegistry/agentCollections").await;
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Global", "Quarantined"]);
}

#[tokio::test]
async fn the_reserved_collections_cannot_be_changed_or_deleted() {
    let s = TestServer::start().await;
    for id in [GLOBAL, QUARANTINED] {
        let p = format!("/agentRegistry/agentCollections/{id}");
        let e = assert_graph_error(
            s.patch(&p, json!({"description": "mine"})).await,
            403,
            "Forbidden",
        )
        .await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("collectionImmutable")
        );
        assert_eq!(e["error"]["innerError"]["code"], "collectionImmutable");
        assert_graph_error(s.delete(&p).await, 403, "Forbidden").await;
    }
    assert_eq!(
        s.get_json(&format!("/agentRegistry/agentCollections/{GLOBAL}"))
            .await["displayName"],
        "Global"
    );
}

#[tokio::test]
async fn a_collection_named_like_a_reserved_one_is_a_conflict() {
    let s = TestServer::start().await;
    for name in ["Global", "quarantined", " GLOBAL "] {
        let r = s
            .post(
                "/agentRegistry/agentCollections",
                json!({"displayName": name, "ownerIds": [USER]}),
            )
            .await;
        assert_graph_error(r, 409, "Conflict").await;
    }
    let cid = s.create_collection("Team").await;
    let r = s
        .patch(
            &format!("/agentRegistry/agentCollections/{cid}"),
            json!({"displayName": "Global"}),
        )
        .await;
    assert_graph_error(r, 409, "Conflict").await;
}

#[tokio::test]
async fn collections_are_created_read_updated_and_deleted() {
    let s = TestServer::start().await;
    let body = json!({
        "id": "Security Copilot Platform Workspace: 001",
        "ownerIds": ["daf58b0e-44e1-433c-b6b0-ca70cae320b8"],
        "managedBy": "719cc904-9700-4e08-9941-fd826cc84c60",
        "originatingStore": "Microsoft Security Copilot",
        "createdBy": "d47bffae-411a-4de9-8548-05e79bc01f0d",
        "displayName": "Conditional Access Agents",
        "description": "A collection of agents to manage your organizations conditional access policies"
    });
    let r = s
        .post("/agentRegistry/agentCollections", body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        created["@odata.context"],
        s.url("/$metadata#agentRegistry/agentCollections/$entity")
    );
    assert_eq!(created["createdBy"], USER);
    let p = format!(
        "/agentRegistry/agentCollections/{}",
        key("Security Copilot Platform Workspace: 001")
    );

    let r = s
        .patch(&p, json!({"displayName": "New Display Name"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got = s.get_json(&p).await;
    assert_eq!(got["displayName"], "New Display Name");
    assert_eq!(got["description"], body["description"]);

    let r = s.post("/agentRegistry/agentCollections", body).await;
    assert_graph_error(r, 409, "AgentCollectionAlreadyExists").await;
    assert_eq!(s.delete(&p).await.status(), StatusCode::NO_CONTENT);
    assert_graph_error(s.get(&p).await, 404, "AgentCollectionNotFound").await;
    assert_graph_error(s.delete(&p).await, 404, "AgentCollectionNotFound").await;
    assert_eq!(
        s.get("/agentRegistry/agentCollections/$count")
            .await
            .text()
            .await
            .unwrap(),
        "2"
    );
}

#[tokio::test]
async fn members_are_added_listed_and_removed_on_the_canonical_paths() {
    let s = TestServer::start().await;
    for id in ["a: 1", "b: 2"] {
        s.create_instance(instance_body(id, id)).await;
    }
    let cid = s.create_collection("Team").await;
    let members = format!("/agentRegistry/agentCollections/{cid}/members");
    let r = s.post(&format!("{members}/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/beta/agentRegistry/agentInstances('{}')", key("a: 1"))})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.post(&members, json!({"id": "b: 2"})).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "the SDK's POST members form"
    );

    let list = s
        .get_json(&format!("{members}?$select=id,displayName&$count=true"))
        .await;
    assert_eq!(list["@odata.count"], 2);
    assert_eq!(
        without_etags(&list["value"]),
        json!([{"id": "a: 1", "displayName": "a: 1"}, {"id": "b: 2", "displayName": "b: 2"}])
    );
    assert_eq!(
        s.get(&format!("{members}/$count"))
            .await
            .text()
            .await
            .unwrap(),
        "2"
    );
    assert_eq!(
        s.get_json(&format!("{members}/{}", key("a: 1"))).await["id"],
        "a: 1"
    );

    let r = s
        .post(
            &format!("{members}/$ref"),
            json!({"@odata.id": "agentInstances('a: 1')"}),
        )
        .await;
    assert_graph_error(r, 400, "BadRequest").await;
    let r = s
        .post(
            &format!("{members}/$ref"),
            json!({"@odata.id": "agentInstances('nobody')"}),
        )
        .await;
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = s
        .post(
            &format!("{members}/$ref"),
            json!({"@odata.id": "https://graph.microsoft.com/beta/users/x"}),
        )
        .await;
    assert_graph_error(r, 400, "ValidationError").await;
    let r = s.post(&format!("{members}/$ref"), json!({})).await;
    assert_graph_error(r, 400, "ValidationError").await;
    let r = s
        .post(
            "/agentRegistry/agentCollections/nope/members/$ref",
            json!({"@odata.id": "agentInstances('a: 1')"}),
        )
        .await;
    assert_graph_error(r, 404, "AgentCollectionNotFound").await;

    assert_eq!(
        s.delete(&format!("{members}/{}/$ref", key("a: 1")))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("{members}/{}", key("b: 2")))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_graph_error(
        s.delete(&format!("{members}/{}/$ref", key("a: 1"))).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(s.get_json(&members).await["value"], json!([]));
    assert_eq!(
        s.get_json(&format!("/agentRegistry/agentInstances/{}", key("a: 1")))
            .await["id"],
        "a: 1",
        "the instance stays"
    );
}

#[tokio::test]
async fn members_work_on_the_documented_long_paths_and_in_reserved_collections() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    let long = format!("/agentRegistry/agentInstances/i/collections/{GLOBAL}/members");
    let r = s.post(&format!("{long}/$ref"), json!({"@odata.id": "https://graph.microsoft.com/beta/agentRegistry/agentInstances('i')"})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list = s.get_json(&long).await;
    assert_eq!(list["value"][0]["id"], "i");
    assert_eq!(s.get_json(&format!("{long}/i")).await["id"], "i");
    assert_eq!(
        s.delete(&format!("{long}/i/$ref")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get_json(&format!("/agentRegistry/agentCollections/{GLOBAL}/members"))
            .await["value"],
        json!([])
    );
    let missing = format!("/agentRegistry/agentInstances/none/collections/{GLOBAL}/members");
    assert_graph_error(s.get(&missing).await, 404, "AgentNotFound").await;
}

#[tokio::test]
async fn a_collection_expands_its_members() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    s.post(
        &format!("/agentRegistry/agentCollections/{GLOBAL}/members/$ref"),
        json!({"@odata.id": "agentInstances/i"}),
    )
    .await;
    let got = s
        .get_json(&format!(
            "/agentRegistry/agentCollections/{GLOBAL}?$expand=members($select=id,displayName)"
        ))
        .await;
    assert_eq!(got["displayName"], "Global");
    assert_eq!(
        without_etags(&got["members"]),
        json!([{"id": "i", "displayName": "I"}])
    );
    assert!(got["members"][0]["@odata.etag"].is_string(), "{got}");
    let list = s
        .get_json("/agentRegistry/agentCollections?$expand=members($select=id)&$select=id")
        .await;
    assert_eq!(
        without_etags(&list["value"][0]),
        json!({"id": GLOBAL, "members": [{"id": "i"}]})
    );
    let r = s
        .req(
            Method::GET,
            "/agentRegistry/agentCollections?$expand=agentCardManifest",
        )
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "BadRequest").await;
}

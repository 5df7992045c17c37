//! Reads that must be one snapshot while other clients write: a page, the
//! entities it expands and its count agree with each other.

use crate::support::{GLOBAL, TestServer, USER};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const INSTANCES: usize = 40;

/// Instances that each link a manifest and belong to the Global collection.
async fn linked_instances(s: &TestServer) {
    for n in 0..INSTANCES {
        s.create_instance(json!({
            "id": format!("i{n:02}"),
            "displayName": format!("instance {n}"),
            "ownerIds": [USER],
            "agentCardManifest": {"displayName": format!("card {n}")},
        }))
        .await;
        let r = s
            .post(
                &format!("/agentRegistry/agentCollections/{GLOBAL}/members/$ref"),
                json!({"@odata.id": format!("{}/agentRegistry/agentInstances('i{n:02}')", s.url(""))}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// Deletes every instance, one at a time, while `read` runs in a loop;
/// `read` answers whether to keep reading.
async fn while_deleting<F, Fut>(s: Arc<TestServer>, read: F)
where
    F: Fn(Arc<TestServer>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let deleter = {
        let s = s.clone();
        tokio::spawn(async move {
            for n in (0..INSTANCES).rev() {
                let r = s
                    .delete(&format!("/agentRegistry/agentInstances/i{n:02}"))
                    .await;
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        })
    };
    while !deleter.is_finished() {
        read(s.clone()).await;
    }
    deleter.await.expect("the deletes");
    read(s).await;
}

async fn page(s: &TestServer, query: &str) -> Value {
    let r = s
        .get(&format!("/agentRegistry/agentInstances?{query}"))
        .await;
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_expanding_manifests_and_collections_is_one_snapshot_while_instances_are_deleted() {
    let s = Arc::new(TestServer::start().await);
    linked_instances(&s).await;
    while_deleting(s.clone(), |s| async move {
        let body = page(
            &s,
            "$top=999&$count=true&$expand=agentCardManifest,collections($select=id)&$orderby=displayName",
        )
        .await;
        let items = body["value"].as_array().expect("value");
        assert_eq!(body["@odata.count"], items.len(), "the count of the same snapshot");
        for item in items {
            assert!(item["agentCardManifest"]["id"].is_string(), "{item}");
            assert_eq!(item["collections"], json!([{"@odata.etag": item["collections"][0]["@odata.etag"], "id": GLOBAL}]), "{item}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collections_expanding_their_members_are_one_snapshot_while_collections_are_deleted() {
    let s = Arc::new(TestServer::start().await);
    s.create_instance(crate::support::instance_body("member", "member"))
        .await;
    let mut ids = Vec::new();
    for n in 0..INSTANCES {
        let id = s.create_collection(&format!("collection {n}")).await;
        let r = s
            .post(
                &format!("/agentRegistry/agentCollections/{id}/members/$ref"),
                json!({"@odata.id": format!("{}/agentRegistry/agentInstances('member')", s.url(""))}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        ids.push(id);
    }
    let deleter = {
        let s = s.clone();
        tokio::spawn(async move {
            for id in ids.iter().rev() {
                let r = s
                    .delete(&format!("/agentRegistry/agentCollections/{id}"))
                    .await;
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
            }
        })
    };
    let mut reads = 0;
    while !deleter.is_finished() || reads == 0 {
        reads += 1;
        let r = s
            .get("/agentRegistry/agentCollections?$top=999&$count=true&$expand=members($select=id)")
            .await;
        let status = r.status();
        let body: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["value"].as_array().expect("value");
        assert_eq!(
            body["@odata.count"],
            items.len(),
            "the count of the same snapshot"
        );
        for item in items.iter().filter(|c| {
            c["displayName"]
                .as_str()
                .is_some_and(|n| n.starts_with("collection"))
        }) {
            assert_eq!(item["members"].as_array().map(Vec::len), Some(1), "{item}");
        }
    }
    deleter.await.expect("the deletes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_expanding_its_manifest_is_whole_or_absent_while_it_is_deleted() {
    let s = Arc::new(TestServer::start().await);
    linked_instances(&s).await;
    while_deleting(s.clone(), |s| async move {
        let single = s
            .get(&format!(
                "/agentRegistry/agentInstances/i{:02}?$expand=agentCardManifest,collections",
                INSTANCES / 2
            ))
            .await;
        match single.status() {
            StatusCode::OK => {
                let body: Value = single.json().await.expect("json");
                assert!(body["agentCardManifest"]["id"].is_string(), "{body}");
                assert_eq!(body["collections"][0]["id"], GLOBAL, "{body}");
            }
            StatusCode::NOT_FOUND => {}
            other => panic!("{other}"),
        }
    })
    .await;
}

//! Delta queries (`…/delta`) over the change log: the first round, delta
//! links, removals, `$select`, expired and foreign tokens, and the final
//! state reached under concurrent writes.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DELTA: &str = "/agentRegistry/agentInstances/delta";

/// Follows next links from `url` to the end of the round: every item, and
/// the delta link the round ends with.
async fn round(s: &TestServer, url: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = url.to_owned();
    loop {
        let page = s.get_json_at(&url).await;
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        match (
            page["@odata.nextLink"].as_str(),
            page["@odata.deltaLink"].as_str(),
        ) {
            (Some(next), None) => url = next.to_owned(),
            (None, Some(delta)) => return (items, delta.to_owned()),
            other => panic!("a page has one link, not {other:?}: {page}"),
        }
    }
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_first_round_pages_the_current_state_and_ends_with_a_delta_link() {
    let s = TestServer::start().await;
    for n in 0..130 {
        s.create_instance(instance_body(&format!("a{n:03}"), "Agent"))
            .await;
    }
    let first = s.get_json(DELTA).await;
    assert_eq!(first["value"].as_array().unwrap().len(), 100);
    assert!(first["@odata.deltaLink"].is_null());
    assert!(
        first["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Collection(microsoft.graph.agentInstance)"),
        "{first}"
    );
    let (items, delta) = round(&s, &s.url(DELTA)).await;
    let mut got: Vec<&str> = ids(&items);
    got.sort_unstable();
    let want: Vec<String> = (0..130).map(|n| format!("a{n:03}")).collect();
    assert_eq!(got, want);
    assert!(delta.contains("$deltatoken="), "{delta}");
    // Nothing changed since: an empty round and a new delta link.
    let (again, _) = round(&s, &delta).await;
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_delta_link_reports_what_was_created_changed_and_deleted_since() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("kept", "Kept")).await;
    s.create_instance(instance_body("changed", "Before")).await;
    s.create_instance(instance_body("gone", "Gone")).await;
    let (_, delta) = round(&s, &s.url(DELTA)).await;

    s.create_instance(instance_body("new", "New")).await;
    let r = s
        .patch(
            "/agentRegistry/agentInstances/changed",
            json!({"displayName": "After"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.delete("/agentRegistry/agentInstances/gone")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let (items, next) = round(&s, &delta).await;
    assert_eq!(ids(&items), ["new", "changed", "gone"]);
    assert_eq!(items[1]["displayName"], "After");
    assert_eq!(
        items[2],
        json!({"id": "gone", "@removed": {"reason": "deleted"}})
    );
    assert!(
        items[0]["@odata.etag"].is_string(),
        "a present entity is whole: {}",
        items[0]
    );
    // A created-then-deleted entity comes once, as removed.
    s.create_instance(instance_body("brief", "Brief")).await;
    s.delete("/agentRegistry/agentInstances/brief").await;
    let (items, _) = round(&s, &next).await;
    assert_eq!(
        items,
        [json!({"id": "brief", "@removed": {"reason": "deleted"}})]
    );
}

#[tokio::test]
async fn deltatoken_latest_starts_from_now_and_select_shapes_every_round() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("old", "Old")).await;
    let latest = s
        .get_json(&format!(
            "{DELTA}?$select=id,displayName&$deltatoken=latest"
        ))
        .await;
    assert_eq!(latest["value"], json!([]));
    let delta = latest["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(delta.contains("$select=id,displayName"), "{delta}");
    s.create_instance(instance_body("young", "Young")).await;
    let (items, _) = round(&s, &delta).await;
    assert_eq!(ids(&items), ["young"]);
    let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.etag", "id", "displayName"]);
}

#[tokio::test]
async fn altered_foreign_and_misplaced_tokens_are_refused() {
    let s = TestServer::start().await;
    let (_, delta) = round(&s, &s.url(DELTA)).await;
    let token = delta.split("$deltatoken=").nth(1).unwrap().to_owned();
    let cases = [
        // Altered.
        format!("{DELTA}?$deltatoken={}x", token),
        // Another entity set's.
        format!("/agentRegistry/agentCardManifests/delta?$deltatoken={token}"),
        // Another $select than the one it was issued for.
        format!("{DELTA}?$select=id&$deltatoken={token}"),
        // A delta link's state as a next link's.
        format!("{DELTA}?$skiptoken={token}"),
    ];
    for path in cases {
        let r = s.get(&path).await;
        assert_graph_error(r, 400, "BadRequest").await;
    }
    let other = s
        .client
        .get(format!("{}?$deltatoken={token}", s.url(DELTA)))
        .bearer_auth(s.token_for(TENANT_B))
        .send()
        .await
        .unwrap();
    assert_graph_error(other, 400, "BadRequest").await;
    // Options a delta query does not take.
    for option in [
        "$filter=displayName eq 'a'",
        "$top=5",
        "$orderby=id",
        "$count=true",
    ] {
        let r = s.get(&format!("{DELTA}?{option}")).await;
        assert_graph_error(r, 400, "BadRequest").await;
    }
    // $deltatoken belongs to delta queries.
    let r = s
        .get("/agentRegistry/agentInstances?$deltatoken=latest")
        .await;
    assert_graph_error(r, 400, "BadRequest").await;
}

#[tokio::test]
async fn a_reset_expires_the_delta_tokens_issued_before_it() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("a", "A")).await;
    let (_, delta) = round(&s, &s.url(DELTA)).await;
    let r = s
        .control_as(TENANT_A, Method::POST, "/reset")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .client
        .get(&delta)
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "syncStateNotFound").await;
    // A new first round works, and so do its links.
    let (items, delta) = round(&s, &s.url(DELTA)).await;
    assert!(items.is_empty(), "{items:?}");
    s.create_instance(instance_body("b", "B")).await;
    assert_eq!(ids(&round(&s, &delta).await.0), ["b"]);
}

#[tokio::test]
async fn the_other_sets_have_delta_queries_too() {
    let s = TestServer::start().await;
    for (set, create) in [
        (
            "/agentRegistry/agentCardManifests",
            json!({"id": "m1", "displayName": "Card"}),
        ),
        (
            "/agentRegistry/agentCollections",
            json!({"id": "c1", "displayName": "Team", "ownerIds": [USER]}),
        ),
        (
            "/copilot/agentRegistrations",
            json!({"id": "r1", "displayName": "R", "ownerIds": [USER], "createdBy": USER,
                   "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
                   "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z"}),
        ),
    ] {
        let (_, delta) = round(&s, &s.url(&format!("{set}/delta"))).await;
        let r = s.post(set, create).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{set}");
        let (items, _) = round(&s, &delta).await;
        assert_eq!(items.len(), 1, "{set}: {items:?}");
    }
}

/// Writers create, rename and delete instances while a reader follows
/// delta links and applies what they report to a copy; once the writers
/// stop, one more round makes the copy exactly the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_delta_links_under_concurrent_writes_yields_exactly_the_final_state() {
    let s = std::sync::Arc::new(TestServer::start().await);
    for n in 0..20 {
        s.create_instance(instance_body(&format!("i{n}"), "v0"))
            .await;
    }
    let mut copy: BTreeMap<String, Value> = BTreeMap::new();
    let apply = |copy: &mut BTreeMap<String, Value>, items: Vec<Value>| {
        for item in items {
            let id = item["id"].as_str().unwrap().to_owned();
            if item.get("@removed").is_some() {
                copy.remove(&id);
            } else {
                copy.insert(id, item["displayName"].clone());
            }
        }
    };
    let (items, mut delta) = round(&s, &s.url(DELTA)).await;
    apply(&mut copy, items);

    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                // A small linear congruential generator: the same writes every run.
                let mut x = w * 7919 + 17;
                for step in 0..60 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let id = format!("i{}", (x >> 33) % 30);
                    let path = format!("/agentRegistry/agentInstances/{id}");
                    match (x >> 20) % 3 {
                        0 => {
                            s.post("/agentRegistry/agentInstances", instance_body(&id, "new"))
                                .await;
                        }
                        1 => {
                            s.patch(&path, json!({"displayName": format!("w{w}s{step}")}))
                                .await;
                        }
                        _ => {
                            s.delete(&path).await;
                        }
                    }
                }
            })
        })
        .collect();
    while !writers.iter().all(|w| w.is_finished()) {
        let (items, next) = round(&s, &delta).await;
        apply(&mut copy, items);
        delta = next;
    }
    for w in writers {
        w.await.unwrap();
    }
    let (items, _) = round(&s, &delta).await;
    apply(&mut copy, items);

    let all = s.get_json("/agentRegistry/agentInstances?$top=999").await;
    let truth: BTreeMap<String, Value> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["displayName"].clone(),
            )
        })
        .collect();
    assert_eq!(copy, truth);
}

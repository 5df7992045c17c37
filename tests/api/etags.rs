//! ETags, `If-Match` and `If-None-Match`, and concurrent writers: no
//! update is lost without a precondition, and only one of two writers
//! holding the same ETag wins with one.

use crate::support::*;
use reqwest::header::{ETAG, IF_MATCH};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// A create body for an id.
type Body = fn(&str) -> Value;

/// The three entity types with an ETag: their set and a create body.
fn kinds() -> [(&'static str, Body); 3] {
    [
        ("agentInstances", |id| instance_body(id, id)),
        (
            "agentCardManifests",
            |id| json!({"id": id, "displayName": id}),
        ),
        (
            "agentCollections",
            |id| json!({"id": id, "displayName": format!("Team {id}"), "ownerIds": [USER]}),
        ),
    ]
}

fn entity(set: &str, id: &str) -> String {
    format!("/agentRegistry/{set}/{}", key(id))
}

fn etag_header(r: &Response) -> String {
    r.headers()
        .get(ETAG)
        .unwrap_or_else(|| panic!("an ETag header on {} {}", r.status(), r.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn send(s: &TestServer, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
    send_json(s, method, path, headers, None).await
}

async fn send_json(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    let mut rb = s.req(method, path);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.expect("request")
}

/// GET an entity: its body and its `ETag` header, which must agree.
async fn current(s: &TestServer, path: &str) -> (Value, String) {
    let r = s.get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    let tag = etag_header(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["@odata.etag"], tag.as_str(), "{body}");
    (body, tag)
}

#[tokio::test]
async fn every_entity_carries_an_etag_that_changes_on_every_write() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        let r = s.post(&format!("/agentRegistry/{set}"), body("e1")).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{set}");
        let created_tag = etag_header(&r);
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["@odata.etag"], created_tag.as_str(), "{set}");
        assert!(
            created_tag.starts_with("W/\"") && created_tag.ends_with('"'),
            "{created_tag}"
        );
        // Control information comes before the properties.
        let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
        assert_eq!(keys[..2], ["@odata.context", "@odata.etag"], "{set}");

        let path = entity(set, "e1");
        let (_, tag) = current(&s, &path).await;
        assert_eq!(tag, created_tag, "{set}: reading does not change the tag");

        let r = s.patch(&path, json!({"displayName": "renamed"})).await;
        assert!(r.status().is_success(), "{set}: {}", r.status());
        let patched_tag = etag_header(&r);
        assert_ne!(patched_tag, created_tag, "{set}: a write changes the tag");
        let (_, tag) = current(&s, &path).await;
        assert_eq!(
            tag, patched_tag,
            "{set}: the PATCH answer names the new tag"
        );

        let r = send_json(
            &s,
            Method::PATCH,
            &path,
            &[("prefer", "return=representation")],
            Some(json!({"displayName": "again"})),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{set}");
        let tag = etag_header(&r);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["@odata.etag"], tag.as_str(), "{set}");
        assert_ne!(tag, patched_tag, "{set}");

        // List items carry their tags too, with or without $select.
        for query in ["", "?$select=id"] {
            let list = s.get_json(&format!("/agentRegistry/{set}{query}")).await;
            let item = list["value"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["id"] == "e1")
                .unwrap_or_else(|| panic!("{set}: {list}"));
            assert_eq!(item["@odata.etag"], tag.as_str(), "{set}{query}");
        }
        let selected = s.get_json(&format!("{path}?$select=displayName")).await;
        assert_eq!(selected["@odata.etag"], tag.as_str(), "{set}");
    }
}

#[tokio::test]
async fn a_nested_manifest_write_changes_both_tags_and_expansions_carry_theirs() {
    let s = TestServer::start().await;
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"id": "m", "displayName": "M"});
    s.create_instance(body).await;
    let (_, instance_before) = current(&s, &entity("agentInstances", "i")).await;
    let (_, manifest_before) = current(&s, &entity("agentCardManifests", "m")).await;

    let r = s
        .patch(
            &entity("agentInstances", "i"),
            json!({"agentCardManifest": {"description": "d"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, instance_after) = current(&s, &entity("agentInstances", "i")).await;
    let (_, manifest_after) = current(&s, &entity("agentCardManifests", "m")).await;
    assert_ne!(instance_after, instance_before);
    assert_ne!(manifest_after, manifest_before);

    let expanded = s
        .get_json("/agentRegistry/agentInstances/i?$expand=agentCardManifest")
        .await;
    assert_eq!(
        expanded["agentCardManifest"]["@odata.etag"],
        manifest_after.as_str()
    );
    let (nav, nav_tag) = current(&s, "/agentRegistry/agentInstances/i/agentCardManifest").await;
    assert_eq!((nav["id"].as_str(), nav_tag), (Some("m"), manifest_after));
}

#[tokio::test]
async fn if_match_lets_a_write_through_only_while_the_tag_is_current() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        let r = s.post(&format!("/agentRegistry/{set}"), body("c1")).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{set}");
        let path = entity(set, "c1");
        let (_, first) = current(&s, &path).await;

        // The current tag, weak or not, alone or in a list.
        let mut tag = first.clone();
        for form in 0..3 {
            let sent = match form {
                0 => tag.clone(),
                1 => tag.trim_start_matches("W/").to_owned(),
                _ => format!("W/\"0-00000000\", {tag}"),
            };
            let r = send_json(
                &s,
                Method::PATCH,
                &path,
                &[("if-match", &sent)],
                Some(json!({"displayName": format!("v{form}")})),
            )
            .await;
            assert!(r.status().is_success(), "{set} {sent}: {}", r.status());
            tag = etag_header(&r);
        }
        let (kept, latest) = current(&s, &path).await;
        assert_eq!(latest, tag, "{set}");

        // A stale tag: 412 and nothing changes.
        let r = send_json(
            &s,
            Method::PATCH,
            &path,
            &[("if-match", &first)],
            Some(json!({"displayName": "stale"})),
        )
        .await;
        let err = assert_graph_error(r, 412, "resourceModified").await;
        assert_eq!(err["error"]["innerError"]["code"], "entityTagDoesNotMatch");
        let (after, tag_after) = current(&s, &path).await;
        assert_eq!((&after, &tag_after), (&kept, &latest), "{set}");

        // `*`: any existing entity.
        let r = send_json(
            &s,
            Method::PATCH,
            &path,
            &[("if-match", "*")],
            Some(json!({"displayName": "star"})),
        )
        .await;
        assert!(r.status().is_success(), "{set}: {}", r.status());
        let latest = etag_header(&r);

        // DELETE: a stale tag is refused, the current one deletes.
        let r = send(&s, Method::DELETE, &path, &[("if-match", &first)]).await;
        assert_graph_error(r, 412, "resourceModified").await;
        assert_eq!(s.get(&path).await.status(), StatusCode::OK, "{set}");
        let r = send(&s, Method::DELETE, &path, &[("if-match", &latest)]).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{set}");

        // A missing entity is 404, with or without a precondition.
        for h in [latest.as_str(), "*"] {
            let r = send(&s, Method::DELETE, &path, &[("if-match", h)]).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{set} {h}");
            let r = send_json(
                &s,
                Method::PATCH,
                &path,
                &[("if-match", h)],
                Some(json!({"displayName": "x"})),
            )
            .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{set} {h}");
        }
    }
}

#[tokio::test]
async fn a_malformed_precondition_is_a_400_and_never_a_server_error() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        assert_eq!(
            s.post(&format!("/agentRegistry/{set}"), body("bad"))
                .await
                .status(),
            StatusCode::CREATED
        );
        let path = entity(set, "bad");
        for value in ["abc", "W/abc", "\"open", "\"a\" \"b\"", "*, \"a\"", "", ","] {
            let r = send_json(
                &s,
                Method::PATCH,
                &path,
                &[("if-match", value)],
                Some(json!({"displayName": "x"})),
            )
            .await;
            let err = assert_graph_error(r, 400, "BadRequest").await;
            assert_eq!(
                err["error"]["innerError"]["code"], "malformedEntityTag",
                "{set} {value:?}"
            );
            let r = send(&s, Method::DELETE, &path, &[("if-match", value)]).await;
            assert_graph_error(r, 400, "BadRequest").await;
            let r = send(&s, Method::GET, &path, &[("if-none-match", value)]).await;
            assert_graph_error(r, 400, "BadRequest").await;
        }
        // Nothing was written or deleted.
        let (doc, _) = current(&s, &path).await;
        assert_ne!(doc["displayName"], "x");
    }
}

#[tokio::test]
async fn if_none_match_star_on_create_refuses_a_taken_id_with_412() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        let list = format!("/agentRegistry/{set}");
        let r = send_json(
            &s,
            Method::POST,
            &list,
            &[("if-none-match", "*")],
            Some(body("n1")),
        )
        .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{set}: a new id is created"
        );
        let r = send_json(
            &s,
            Method::POST,
            &list,
            &[("if-none-match", "*")],
            Some(body("n1")),
        )
        .await;
        assert_graph_error(r, 412, "PreconditionFailed").await;
        // Without the header, the usual conflict.
        let r = s.post(&list, body("n1")).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "{set}");
        // Only `*` is supported with If-None-Match on writes.
        let r = send_json(
            &s,
            Method::POST,
            &list,
            &[("if-none-match", "W/\"1-0\"")],
            Some(body("n2")),
        )
        .await;
        assert_graph_error(r, 400, "BadRequest").await;
        let path = entity(set, "n1");
        let r = send_json(
            &s,
            Method::PATCH,
            &path,
            &[("if-none-match", "*")],
            Some(json!({"displayName": "x"})),
        )
        .await;
        assert_graph_error(r, 412, "PreconditionFailed").await;
        let r = send(&s, Method::DELETE, &path, &[("if-none-match", "\"a\"")]).await;
        assert_graph_error(r, 400, "BadRequest").await;
        assert_eq!(s.get(&path).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_nested_manifest_id_taken_is_still_a_conflict_under_if_none_match() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/agentRegistry/agentCardManifests",
            json!({"id": "m", "displayName": "M"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"id": "m", "displayName": "M"});
    let r = send_json(
        &s,
        Method::POST,
        "/agentRegistry/agentInstances",
        &[("if-none-match", "*")],
        Some(body),
    )
    .await;
    assert_graph_error(r, 409, "AgentCardAlreadyExists").await;
}

#[tokio::test]
async fn a_recreated_entity_gets_a_new_etag_and_the_old_one_no_longer_matches() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        let list = format!("/agentRegistry/{set}");
        let path = entity(set, "again");
        assert_eq!(
            s.post(&list, body("again")).await.status(),
            StatusCode::CREATED
        );
        let (_, old) = current(&s, &path).await;
        assert_eq!(s.delete(&path).await.status(), StatusCode::NO_CONTENT);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        assert_eq!(
            s.post(&list, body("again")).await.status(),
            StatusCode::CREATED
        );
        let (_, new) = current(&s, &path).await;
        assert_ne!(old, new, "{set}");
        let r = send_json(
            &s,
            Method::PATCH,
            &path,
            &[("if-match", &old)],
            Some(json!({"displayName": "x"})),
        )
        .await;
        assert_graph_error(r, 412, "resourceModified").await;
    }
}

#[tokio::test]
async fn if_none_match_on_a_get_answers_304_while_the_tag_is_current() {
    let s = TestServer::start().await;
    for (set, body) in kinds() {
        assert_eq!(
            s.post(&format!("/agentRegistry/{set}"), body("g"))
                .await
                .status(),
            StatusCode::CREATED
        );
        let path = entity(set, "g");
        let (_, tag) = current(&s, &path).await;
        for sent in [tag.clone(), "*".to_owned(), format!("\"x\", {tag}")] {
            let r = send(&s, Method::GET, &path, &[("if-none-match", &sent)]).await;
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{set} {sent}");
            assert_eq!(etag_header(&r), tag);
            assert!(r.bytes().await.unwrap().is_empty());
        }
        s.patch(&path, json!({"displayName": "changed"})).await;
        let r = send(&s, Method::GET, &path, &[("if-none-match", &tag)]).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{set}: a changed entity is sent"
        );
        assert_ne!(etag_header(&r), tag);
    }
}

#[tokio::test]
async fn the_manifest_of_an_instance_takes_if_match_against_the_manifest() {
    let s = TestServer::start().await;
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"id": "m", "displayName": "M"});
    s.create_instance(body).await;
    // Created together, both are at their first version: move the instance on.
    s.patch(&entity("agentInstances", "i"), json!({"url": "u"}))
        .await;
    let nav = "/agentRegistry/agentInstances/i/agentCardManifest";
    let (_, instance_tag) = current(&s, &entity("agentInstances", "i")).await;
    let (_, manifest_tag) = current(&s, nav).await;
    assert_ne!(instance_tag, manifest_tag);

    let r = send_json(
        &s,
        Method::PATCH,
        nav,
        &[("if-match", &instance_tag)],
        Some(json!({"description": "d"})),
    )
    .await;
    // The instance's tag is not the manifest's.
    assert_graph_error(r, 412, "resourceModified").await;
    let r = send_json(
        &s,
        Method::PATCH,
        nav,
        &[("if-match", &manifest_tag)],
        Some(json!({"description": "e"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_tag = etag_header(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["@odata.etag"], new_tag.as_str());
    assert_eq!(body["description"], "e");

    // Unlinking checks the linked manifest's tag.
    let r = send(&s, Method::DELETE, nav, &[("if-match", &manifest_tag)]).await;
    assert_graph_error(r, 412, "resourceModified").await;
    let r = send(&s, Method::DELETE, nav, &[("if-match", &new_tag)]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Writers of the stress test: a property each, and how it is written.
#[derive(Clone, Copy)]
enum Via {
    /// PATCH of the instance.
    Instance,
    /// A nested manifest object in a PATCH of the instance.
    Nested,
    /// PATCH of `/agentInstances/{id}/agentCardManifest`.
    Navigation,
}

#[tokio::test]
async fn many_concurrent_writers_of_different_properties_lose_no_update() {
    let s = Arc::new(TestServer::start().await);
    let mut body = instance_body("hot", "start");
    body["agentCardManifest"] = json!({"id": "hot-card", "displayName": "card"});
    s.create_instance(body).await;
    let writers: [(&str, Via); 16] = [
        ("displayName", Via::Instance),
        ("url", Via::Instance),
        ("originatingStore", Via::Instance),
        ("sourceAgentId", Via::Instance),
        ("agentIdentityId", Via::Instance),
        ("agentIdentityBlueprintId", Via::Instance),
        ("agentUserId", Via::Instance),
        ("preferredTransport", Via::Instance),
        ("managedBy", Via::Instance),
        ("description", Via::Nested),
        ("iconUrl", Via::Nested),
        ("version", Via::Nested),
        ("documentationUrl", Via::Navigation),
        ("protocolVersion", Via::Navigation),
        ("displayName", Via::Navigation),
        ("originatingStore", Via::Navigation),
    ];
    const ROUNDS: usize = 6;
    let mut tasks = Vec::new();
    for (w, (prop, via)) in writers.into_iter().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let value = format!("w{w}-r{round}");
                let (path, body) = match via {
                    Via::Instance => ("/agentRegistry/agentInstances/hot", json!({ prop: value })),
                    Via::Nested => (
                        "/agentRegistry/agentInstances/hot",
                        json!({"agentCardManifest": { prop: value }}),
                    ),
                    Via::Navigation => (
                        "/agentRegistry/agentInstances/hot/agentCardManifest",
                        json!({ prop: value }),
                    ),
                };
                let r = s.patch(path, body).await;
                assert!(r.status().is_success(), "{prop}: {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let last = format!("-r{}", ROUNDS - 1);
    let instance = s.get_json("/agentRegistry/agentInstances/hot").await;
    let manifest = s
        .get_json("/agentRegistry/agentCardManifests/hot-card")
        .await;
    for (w, (prop, via)) in writers.into_iter().enumerate() {
        let doc = match via {
            Via::Instance => &instance,
            Via::Nested | Via::Navigation => &manifest,
        };
        assert_eq!(
            doc[prop],
            format!("w{w}{last}"),
            "writer {w} ({prop}) lost its last update: {doc}"
        );
    }
}

#[tokio::test]
async fn of_writers_racing_with_one_etag_exactly_one_wins() {
    let s = Arc::new(TestServer::start().await);
    s.create_instance(instance_body("race", "start")).await;
    for round in 0..5 {
        let (_, tag) = current(&s, "/agentRegistry/agentInstances/race").await;
        let mut tasks = Vec::new();
        for w in 0..8 {
            let s = s.clone();
            let tag = tag.clone();
            tasks.push(tokio::spawn(async move {
                s.req(Method::PATCH, "/agentRegistry/agentInstances/race")
                    .header(IF_MATCH, tag)
                    .json(&json!({"url": format!("r{round}-w{w}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        let won = statuses.iter().filter(|s| s.is_success()).count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count();
        assert_eq!((won, refused), (1, 7), "round {round}: {statuses:?}");
    }
    // The same race on DELETE: one deletes, the others are refused or find nothing.
    let (_, tag) = current(&s, "/agentRegistry/agentInstances/race").await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            s.req(Method::DELETE, "/agentRegistry/agentInstances/race")
                .header(IF_MATCH, tag)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut deleted = 0;
    for t in tasks {
        let status = t.await.unwrap();
        match status {
            StatusCode::NO_CONTENT => deleted += 1,
            StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(deleted, 1);
}

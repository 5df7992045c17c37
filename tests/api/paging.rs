//! `$top`, `$skip`, `$count` and next links that stay correct while others write.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn follow(s: &TestServer, first: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut url = s.url(first);
    loop {
        let r = s
            .client
            .get(&url)
            .bearer_auth(s.token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let body: Value = r.json().await.unwrap();
        pages += 1;
        ids.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    (ids, pages)
}

#[tokio::test]
async fn next_links_are_absolute_keep_the_options_and_end_on_the_last_page() {
    let s = TestServer::start().await;
    for i in 0..7 {
        s.create_instance(instance_body(&format!("i{i}"), "x"))
            .await;
    }
    let first = s
        .get_json("/agentRegistry/agentInstances?$top=3&$select=id&$count=true")
        .await;
    assert_eq!(first["@odata.count"], 7);
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&s.url("/agentRegistry/agentInstances?")),
        "{next}"
    );
    assert!(
        next.contains("$top=3") && next.contains("$select=id") && next.contains("$skiptoken="),
        "{next}"
    );
    let (ids, pages) = follow(&s, "/agentRegistry/agentInstances?$top=3&$select=id").await;
    assert_eq!(ids, (0..7).map(|i| format!("i{i}")).collect::<Vec<_>>());
    assert_eq!(pages, 3);

    let skipped = s.get_json("/agentRegistry/agentInstances?$skip=5").await;
    assert_eq!(skipped["value"].as_array().unwrap().len(), 2);
    let none = s.get_json("/agentRegistry/agentInstances?$top=0").await;
    assert_eq!(none["value"], json!([]));
}

#[tokio::test]
async fn the_default_page_holds_one_hundred() {
    let s = TestServer::start().await;
    for i in 0..101 {
        s.create_instance(instance_body(&format!("i{i:03}"), "x"))
            .await;
    }
    let page = s.get_json("/agentRegistry/agentInstances").await;
    assert_eq!(page["value"].as_array().unwrap().len(), 100);
    assert!(page["@odata.nextLink"].is_string());
    assert_eq!(
        s.get("/agentRegistry/agentInstances/$count")
            .await
            .text()
            .await
            .unwrap(),
        "101"
    );
}

/// Pages `set` four at a time while, between pages, others insert before
/// and after the cursor and delete rows not seen yet; every row that
/// existed throughout must be seen exactly once.
async fn every_survivor_exactly_once(s: &TestServer, set: &str, body: impl Fn(&str) -> Value) {
    for i in 0..30 {
        let r = s.post(set, body(&format!("k{i:02}"))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut url = s.url(&format!("{set}?$top=4"));
    let mut round = 0;
    loop {
        let page: Value = s
            .client
            .get(&url)
            .bearer_auth(s.token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        for id in [format!("a{round:02}"), format!("z{round:02}")] {
            let r = s.post(set, body(&id)).await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let doomed = format!("k{:02}", 29 - round);
        let _ = s.delete(&format!("{set}/{doomed}")).await;
        round += 1;
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice: {seen:?}");
    let deleted: BTreeSet<String> = (0..round).map(|r| format!("k{:02}", 29 - r)).collect();
    for i in 0..30 {
        let id = format!("k{i:02}");
        if !deleted.contains(&id) {
            assert!(
                unique.contains(&id),
                "{id} existed throughout and was missed: {seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn paging_returns_every_survivor_exactly_once_under_concurrent_writes() {
    let s = TestServer::start().await;
    every_survivor_exactly_once(&s, "/agentRegistry/agentInstances", |id| {
        instance_body(id, "x")
    })
    .await;
}

#[tokio::test]
async fn paging_registrations_returns_every_survivor_exactly_once_under_concurrent_writes() {
    let s = TestServer::start().await;
    every_survivor_exactly_once(&s, "/copilot/agentRegistrations", |id| {
        crate::registrations::registration(id, &format!("source {id}"))
    })
    .await;
}

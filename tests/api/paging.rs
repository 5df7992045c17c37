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

#[tokio::test]
async fn paging_returns_every_survivor_exactly_once_under_concurrent_writes() {
    let s = TestServer::start().await;
    for i in 0..30 {
        s.create_instance(instance_body(&format!("k{i:02}"), "x"))
            .await;
    }
    let mut seen = Vec::new();
    let mut url = s.url("/agentRegistry/agentInstances?$top=4");
    let mut round = 0;
    loop {
        let body: Value = s
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
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        // Between pages, others insert before and after the cursor and delete unseen rows.
        s.create_instance(instance_body(&format!("a{round:02}"), "new, sorts first"))
            .await;
        s.create_instance(instance_body(&format!("z{round:02}"), "new, sorts last"))
            .await;
        let doomed = format!("k{:02}", 29 - round);
        let _ = s
            .delete(&format!("/agentRegistry/agentInstances/{doomed}"))
            .await;
        round += 1;
        match body["@odata.nextLink"].as_str() {
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

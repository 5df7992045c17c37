//! Rehearsing the move to Agent 365: instances and their manifests copied
//! into agent registrations, through the control plane and the CLI.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::process::Command;

const INSTANCES: &str = "/agentRegistry/agentInstances";

/// An instance with a nested manifest and A2A fields, one without, and one
/// whose sourceAgentId another already has.
async fn registry(s: &TestServer) {
    let mut rich = instance_body("a1", "Travel");
    rich["sourceAgentId"] = json!("src-1");
    rich["managedBy"] = json!("app-1");
    rich["agentUserId"] = json!("user-9");
    rich["url"] = json!("https://travel.example/a2a");
    rich["preferredTransport"] = json!("JSONRPC");
    rich["agentCardManifest"] = json!({
        "displayName": "Travel card", "description": "Books trips", "version": "2.0.0",
        "skills": [{"id": "book", "displayName": "Book", "tags": ["travel"]}]
    });
    s.create_instance(rich).await;
    s.create_instance(instance_body("a2", "Plain")).await;
    let mut twin = instance_body("a3", "Twin");
    twin["sourceAgentId"] = json!("src-1");
    s.create_instance(twin).await;
}

async fn migrate(s: &TestServer, dry_run: bool) -> Value {
    let r = s
        .control_as(TENANT_A, Method::POST, "/registry/migrate")
        .json(&json!({"dryRun": dry_run}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn actions(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn migrating_copies_instances_into_registrations_once_and_updates_on_a_rerun() {
    let s = TestServer::start().await;
    registry(&s).await;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };

    let dry = migrate(&s, true).await;
    assert_eq!(dry["dryRun"], true);
    assert_eq!(
        actions(&dry),
        pairs(&[("a1", "create"), ("a2", "create"), ("a3", "skip")])
    );
    assert!(
        dry["steps"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("src-1"),
        "{dry}"
    );
    assert_eq!(dry["unmapped"]["agentUserId"], 1);
    assert_eq!(
        s.get_json("/copilot/agentRegistrations").await["value"],
        json!([]),
        "a dry run writes nothing"
    );

    let done = migrate(&s, false).await;
    assert_eq!(
        (done["created"].as_u64(), done["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{done}"
    );
    let reg = s.get_json("/copilot/agentRegistrations/a1").await;
    let instance = s.get_json(&format!("{INSTANCES}/a1")).await;
    assert_eq!(reg["displayName"], "Travel");
    assert_eq!(reg["managedByAppId"], "app-1");
    assert_eq!(reg["sourceAgentId"], "src-1");
    assert_eq!(reg["description"], "Books trips");
    assert_eq!(reg["sourceCreatedDateTime"], instance["createdDateTime"]);
    assert_eq!(reg["agentCard"]["name"], "Travel card");
    assert_eq!(reg["agentCard"]["url"], "https://travel.example/a2a");
    assert_eq!(
        reg["agentCard"]["skills"],
        json!([{"id": "book", "name": "Book", "tags": ["travel"]}])
    );
    assert!(s.get_json("/copilot/agentRegistrations/a2").await["agentCard"].is_null());

    let again = migrate(&s, false).await;
    assert_eq!(
        actions(&again),
        pairs(&[("a1", "unchanged"), ("a2", "unchanged"), ("a3", "skip")])
    );
    let r = s
        .patch(
            &format!("{INSTANCES}/a2"),
            json!({"displayName": "Plain, renamed"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let rerun = migrate(&s, false).await;
    assert_eq!(actions(&rerun)[1], ("a2".to_owned(), "update".to_owned()));
    assert_eq!(
        s.get_json("/copilot/agentRegistrations/a2").await["displayName"],
        "Plain, renamed"
    );
    let count = s
        .get("/copilot/agentRegistrations/$count")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(count, "2", "nothing duplicated");

    let r = s
        .control_as(TENANT_A, Method::POST, "/registry/migrate")
        .json(&json!({"dryRun": "yes"}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "ValidationError").await;
}

#[tokio::test]
async fn agentry_registry_migrate_rehearses_then_migrates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    registry(&s).await;
    let url = s.database_url.clone();
    s.stop().await;
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args([
                "registry",
                "migrate",
                "--tenant",
                TENANT_A,
                "--database-url",
                &url,
            ])
            .args(extra)
            .output()
            .expect("agentry runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = run(&["--dry-run"]);
    for line in [
        "would create a1",
        "would create a2",
        "skipped a3: sourceAgentId 'src-1'",
        "agentUserId: 1",
    ] {
        assert!(dry.contains(line), "{line} in:\n{dry}");
    }
    let done = run(&[]);
    assert!(
        done.contains("3 instances: 2 created, 0 updated, 0 unchanged, 1 skipped"),
        "{done}"
    );
    let again = run(&[]);
    assert!(
        again.contains("0 created, 0 updated, 2 unchanged, 1 skipped"),
        "{again}"
    );
    let s = TestServer::start_in(dir.path()).await;
    assert_eq!(
        s.get_json("/copilot/agentRegistrations/a1").await["agentCard"]["name"],
        "Travel card"
    );
}

//! `agentry export` and `agentry import`, run as the real binary: every
//! tenant moves from one database to another and reads back the same.

use crate::control::{EXACT_NUMBERS, create_exact_numbers, populate};
use crate::support::*;
use agentry::config::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn agentry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .output()
        .expect("agentry runs")
}

fn succeeded(args: &[&str]) -> String {
    let out = agentry(args);
    assert!(
        out.status.success(),
        "agentry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A SQLite file other than the data folder's own, so the target stays on
/// SQLite whichever backend the suite runs on.
fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("moved.db").display())
}

pub(crate) async fn tenant_snapshot(s: &TestServer, tenant: &str) -> Value {
    let r = s
        .control_as(tenant, Method::GET, "/snapshot")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_export_imported_into_another_database_reads_back_the_same() {
    let source = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(source.path()).await;
    populate(&s).await;
    create_exact_numbers(&s).await;
    let r = s
        .req_as(TENANT_B, Method::POST, "/agentRegistry/agentInstances")
        .json(&instance_body("b1", "In B"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let before = [
        tenant_snapshot(&s, TENANT_A).await,
        tenant_snapshot(&s, TENANT_B).await,
    ];
    // The source is the backend under test: SQLite, or PostgreSQL.
    let src = s.database_url.clone();
    s.stop().await;
    let added = String::from_utf8(
        agentry(&[
            "app",
            "add",
            "--name",
            "mover",
            "--tenant",
            TENANT_A,
            "--database-url",
            &src,
        ])
        .stdout,
    )
    .unwrap();
    let client_id = added
        .lines()
        .find_map(|l| l.strip_prefix("client id:"))
        .unwrap()
        .trim()
        .to_owned();

    let file = target.path().join("export.jsonl");
    let file = file.to_str().unwrap();
    let said = succeeded(&["export", "--database-url", &src, "--output", file]);
    assert!(said.contains("of 2 tenants"), "{said}");
    let exported = std::fs::read_to_string(file).unwrap();
    assert!(exported.contains(EXACT_NUMBERS), "{exported}");
    let into = sqlite_url(target.path());
    let said = succeeded(&["import", "--database-url", &into, "--input", file]);
    assert!(said.contains("0 kept"), "{said}");
    let again = succeeded(&["import", "--database-url", &into, "--input", file]);
    assert!(
        again.contains(" 0 created"),
        "a second import keeps everything: {again}"
    );

    let mut config = ServerConfig::with_data_dir(target.path());
    config.keys_dir = source.path().join("keys");
    config.database_url = into.clone();
    let t = TestServer::start_with(config).await;
    for (tenant, snapshot) in [TENANT_A, TENANT_B].into_iter().zip(&before) {
        assert_eq!(&tenant_snapshot(&t, tenant).await, snapshot, "{tenant}");
    }
    let text = t
        .get("/agentRegistry/agentCardManifests/numbers")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(EXACT_NUMBERS), "{text}");
    let app = agentry::store::open(&into)
        .await
        .unwrap()
        .get_app(&client_id)
        .await
        .unwrap();
    assert_eq!(app.map(|a| a.tenant_id).as_deref(), Some(TENANT_A));
    t.stop().await;
}

#[tokio::test]
async fn a_cut_short_or_foreign_stream_is_refused_with_the_reason() {
    let source = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(source.path()).await;
    populate(&s).await;
    let src = s.database_url.clone();
    s.stop().await;
    let whole = source.path().join("whole.jsonl");
    succeeded(&[
        "export",
        "--database-url",
        &src,
        "-o",
        whole.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("\"agentry-export\""), "{}", lines[0]);
    assert!(lines.last().unwrap().contains("\"trailer\""));

    let cases = [
        (lines[..lines.len() - 1].join("\n"), "cut short"),
        (lines[1..].join("\n"), "line 1"),
        (format!("{}\n{{\"type\":\"widget\"}}\n", lines[0]), "line 2"),
        (String::new(), "empty"),
    ];
    for (n, (input, reason)) in cases.into_iter().enumerate() {
        let target = tempfile::tempdir().unwrap();
        let path = target.path().join(format!("case{n}.jsonl"));
        std::fs::write(&path, input).unwrap();
        let out = agentry(&[
            "import",
            "--database-url",
            &sqlite_url(target.path()),
            "-i",
            path.to_str().unwrap(),
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {n} was accepted");
        assert!(said.contains(reason), "case {n}: {said}");
    }
}

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

/// Runs `agentry` with `stdin` as standard input; answers what it printed.
fn succeeded_with_input(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentry runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "agentry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn local_users_move_with_their_password_hash_and_roles_but_not_their_lock() {
    let source = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    // From SQLite into the backend under test (PostgreSQL with
    // AGENTRY_TEST_BACKEND=postgres): the migration users make.
    let src = sqlite_url(source.path());
    let password = "a password that never travels";
    let added = succeeded_with_input(
        &[
            "user",
            "add",
            "Admin@Contoso.example",
            "--password-stdin",
            "--role",
            "Agent Registry Administrator",
            "--database-url",
            &src,
        ],
        &format!("{password}\n"),
    );
    assert!(added.contains("object id:"), "{added}");
    succeeded_with_input(
        &[
            "user",
            "add",
            "reader",
            "--password-stdin",
            "--tenant",
            TENANT_B,
            "--database-url",
            &src,
        ],
        "another password\n",
    );
    let store = agentry::store::open(&src).await.unwrap();
    let before = store
        .get_user(agentry::auth::DEFAULT_TENANT, "admin@contoso.example")
        .await
        .unwrap()
        .unwrap();
    let failed = store
        .record_failed_sign_in(
            agentry::auth::DEFAULT_TENANT,
            "admin@contoso.example",
            1,
            "9999-01-01T00:00:00.0000000Z",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(failed.locked_until.is_some(), "locked in the source");
    store.close().await;

    let file = source.path().join("export.jsonl");
    let file = file.to_str().unwrap();
    let said = succeeded(&["export", "--database-url", &src, "--output", file]);
    assert!(
        said.contains("of 2 tenants"),
        "a tenant of users only: {said}"
    );
    let exported = std::fs::read_to_string(file).unwrap();
    assert!(!exported.contains(password), "{exported}");
    assert!(!exported.contains("another password"), "{exported}");
    let line: Value = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["type"] == "user" && r["data"]["userName"] == "Admin@Contoso.example")
        .expect("the user's line");
    assert_eq!(line["data"]["passwordHash"], before.password_hash.as_str());
    assert_eq!(line["data"]["id"], before.id.as_str());
    assert!(line["data"].get("lockedUntil").is_none(), "{line}");

    let into = database_url_for(target.path());
    let said = succeeded(&["import", "--database-url", &into, "--input", file]);
    assert!(said.contains("0 kept"), "{said}");
    let again = succeeded(&["import", "--database-url", &into, "--input", file]);
    assert!(
        again.contains(" 0 created"),
        "kept the second time: {again}"
    );

    let moved = agentry::store::open(&into).await.unwrap();
    let user = moved
        .get_user(agentry::auth::DEFAULT_TENANT, "ADMIN@contoso.example")
        .await
        .unwrap()
        .expect("the user moved");
    assert_eq!(user.id, before.id);
    assert_eq!(user.user_name, "Admin@Contoso.example");
    assert_eq!(user.roles, before.roles);
    assert!(user.accepts(password), "the same password signs in");
    assert_eq!((user.failed_sign_ins, user.locked_until), (0, None));
    let readers = moved.list_users(TENANT_B).await.unwrap();
    assert_eq!(readers.len(), 1);
    assert!(readers[0].accepts("another password"));
    moved.close().await;
}

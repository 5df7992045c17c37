//! Data outlives the process: a graceful restart, and a kill -9 right after
//! the write was acknowledged.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

#[tokio::test]
async fn data_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    let mut body = instance_body("persisted", "Before restart");
    body["agentCardManifest"] = json!({"id": "card", "displayName": "Card"});
    s.create_instance(body).await;
    let token = s.token();
    s.stop().await;

    let again = TestServer::start_in(dir.path()).await;
    let got = again
        .get_json("/agentRegistry/agentInstances/persisted?$expand=agentCardManifest")
        .await;
    assert_eq!(got["displayName"], "Before restart");
    assert_eq!(got["agentCardManifest"]["id"], "card");
    // The signing key persisted too: an earlier token still works.
    let r = again
        .client
        .get(again.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

pub(crate) struct Process(pub Child, pub String);

impl Process {
    pub(crate) fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .arg("--database-url")
            .arg(database_url_for(dir))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agentry binary starts");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let origin = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("the start line names the URL")
            .trim_end_matches("/beta")
            .to_owned();
        Process(child, origin)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let keys = agentry::auth::KeyRing::load_or_create(dir.path()).unwrap();
    let token = keys.mint(&token_request(TENANT_A, 3600, 0)).unwrap();
    let client = crate::support::client();

    let mut first = Process::start(dir.path());
    for i in 0..20 {
        let r = client
            .post(format!("{}/beta/agentRegistry/agentInstances", first.1))
            .bearer_auth(&token)
            .json(&instance_body(&format!("w{i:02}"), "durable"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    first.0.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    first.0.wait().unwrap();

    let second = Process::start(dir.path());
    let r = client
        .get(format!(
            "{}/beta/agentRegistry/agentInstances/$count",
            second.1
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "20");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let keys = agentry::auth::KeyRing::load_or_create(dir.path()).unwrap();
    let token = keys.mint(&token_request(TENANT_A, 3600, 0)).unwrap();
    let client = crate::support::client();

    let mut server = Process::start(dir.path());
    let r = client
        .post(format!("{}/beta/agentRegistry/agentInstances", server.1))
        .bearer_auth(&token)
        .json(&instance_body("kept", "before SIGTERM"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = server.0.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    // A clean close checkpoints SQLite's WAL into the database file (a
    // PostgreSQL server keeps its own files).
    if !on_postgres() {
        let wal = dir.path().join("agentry.db-wal");
        assert!(
            !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
            "the WAL was checkpointed"
        );
    }

    let again = Process::start(dir.path());
    let r = client
        .get(format!(
            "{}/beta/agentRegistry/agentInstances/kept",
            again.1
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_every_file_in_it_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let s = TestServer::start_configured(|c| {
        *c = agentry::config::ServerConfig {
            tls_self_signed: true,
            ..agentry::config::ServerConfig::with_data_dir(&dir)
        };
    })
    .await;
    let client = {
        agentry::tls::install_crypto();
        let pem = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .build()
            .unwrap()
    };
    let r = client
        .post(
            s.url("/agentRegistry/agentInstances")
                .replace("http://", "https://"),
        )
        .bearer_auth(s.token())
        .json(&instance_body("private", "Private"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let export = dir.join("export.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["export", "--database-url", &s.database_url, "--output"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut folders = vec![dir.clone(), dir.join("keys"), dir.join("tls")];
    let mut files = vec![
        dir.join("keys/signing-key.pem"),
        dir.join("keys/secret.bin"),
        dir.join("tls/key.pem"),
        dir.join("tls/cert.pem"),
        export,
    ];
    if !on_postgres() {
        files.extend(["agentry.db", "agentry.db-wal", "agentry.db-shm"].map(|f| dir.join(f)));
    }
    for folder in folders.drain(..) {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    s.stop().await;
}

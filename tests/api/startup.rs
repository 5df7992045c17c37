//! Starting `agentry serve` as a test harness in any language would: a free
//! port, a token and a ready file without a second command; a port in use
//! refused before the database is touched.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn serve(dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("AGENTRY_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentry starts")
}

/// Waits for the ready file, then stops the server and returns the file
/// and what it printed.
async fn ready_then_stop(mut child: Child, ready: &Path) -> (Value, String) {
    let began = Instant::now();
    while !ready.exists() {
        assert!(began.elapsed() < Duration::from_secs(20), "no ready file");
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "agentry exited with {status}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(ready).unwrap()).unwrap();
    let url = file["url"].as_str().unwrap().to_owned();
    let token = file["token"].as_str().unwrap().to_owned();
    let r = client()
        .get(format!("{url}/agentRegistry/agentInstances"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the ready file's token works at its url"
    );
    assert_eq!(file["pid"].as_u64(), Some(u64::from(child.id())));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    (file, String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn a_harness_starts_on_a_free_port_and_reads_url_and_token_from_the_ready_file() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let child = serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--print-token",
            "--ready-file",
            ready.to_str().unwrap(),
        ],
    );
    let (file, banner) = ready_then_stop(child, &ready).await;
    let url = file["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains(":0/"),
        "{url}"
    );
    assert!(
        banner.contains(&format!("serving Microsoft Graph beta at {url}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("token:       {}", file["token"].as_str().unwrap())),
        "{banner}"
    );
}

#[tokio::test]
async fn with_a_self_signed_certificate_the_banner_says_where_it_is_and_how_to_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-self-signed",
            "true",
            "--ready-file",
        ])
        .arg(&ready)
        .env_remove("AGENTRY_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !ready.exists() {
        assert!(began.elapsed() < Duration::from_secs(20), "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut child = child;
    child.kill().unwrap();
    let banner = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let cert = dir.path().join("tls").join("cert.pem");
    assert!(cert.exists());
    assert!(
        banner.contains(&format!("curl --cacert {}", cert.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("certificate: {}", cert.display())),
        "{banner}"
    );
    assert!(banner.contains("https://127.0.0.1:"), "{banner}");
}

#[tokio::test]
async fn a_server_that_cannot_listen_stops_before_touching_the_database_or_the_seed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.json");
    let out = serve(
        dir.path(),
        &["--listen", &addr, "--seed", seed.to_str().unwrap()],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        !dir.path().join("agentry.db").exists(),
        "no database was created or seeded"
    );
}

#[test]
fn agentry_token_warns_when_it_creates_a_key_and_refuses_lifetimes_it_would_cut() {
    let dir = tempfile::tempdir().unwrap();
    let token = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["token", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let first = token(&[]);
    assert!(first.status.success());
    let warning = String::from_utf8_lossy(&first.stderr);
    assert!(warning.contains("holds no signing key yet"), "{warning}");
    let again = token(&[]);
    assert!(
        again.status.success() && again.stderr.is_empty(),
        "no warning once the key exists"
    );
    let long = token(&["--expires-in", "100000"]);
    assert!(!long.status.success());
    let refusal = String::from_utf8_lossy(&long.stderr);
    assert!(
        refusal.contains("--expires-in must be between 1 and 86400 seconds"),
        "{refusal}"
    );
}

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
    let console = url.replace("/beta", "/console");
    assert!(
        banner.contains(&format!("console:     {console}\n")),
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

#[test]
fn applications_are_added_listed_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let app = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["app"])
            .args(args)
            .args(["--tenant", TENANT_A, "--data-dir"])
            .arg(dir.path())
            .env_remove("AGENTRY_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, added, _) = app(&[
        "add",
        "--name",
        "pipeline",
        "--roles",
        "AgentInstance.Read.All",
    ]);
    assert!(ok);
    let client_id = added
        .lines()
        .find_map(|l| l.strip_prefix("client id:"))
        .unwrap()
        .trim()
        .to_owned();
    let (ok, listed, _) = app(&["list"]);
    assert!(ok);
    assert_eq!(
        listed.trim(),
        format!("{client_id}  pipeline  AgentInstance.Read.All")
    );
    let (ok, _, _) = app(&["remove", &client_id]);
    assert!(ok);
    let (_, listed, _) = app(&["list"]);
    assert!(listed.contains("no applications"), "{listed}");
    let (ok, _, refusal) = app(&["remove", &client_id]);
    assert!(!ok);
    assert!(
        refusal.contains(&format!("has no application {client_id}")),
        "{refusal}"
    );
}

#[tokio::test]
async fn in_memory_mode_writes_nothing_into_the_data_folder_and_leaves_nothing_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let mut child = serve(
        &dir.path().join("unused"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--in-memory",
            "--ready-file",
            ready.to_str().unwrap(),
        ],
    );
    let began = Instant::now();
    while !ready.exists() {
        assert!(began.elapsed() < Duration::from_secs(20), "no ready file");
        assert!(child.try_wait().unwrap().is_none(), "agentry exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    let r = client()
        .post(format!(
            "{}/agentRegistry/agentInstances",
            file["url"].as_str().unwrap()
        ))
        .bearer_auth(file["token"].as_str().unwrap())
        .json(&instance_body("a", "Kept in memory"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // A normal stop (SIGTERM), as a harness ends it.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let banner = String::from_utf8(out.stdout).unwrap();
    assert!(banner.contains("in memory:"), "{banner}");
    assert!(
        !dir.path().join("unused").exists(),
        "the data folder is not used"
    );
    let database = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("database:"))
        .unwrap()
        .trim()
        .trim_start_matches("sqlite://")
        .to_owned();
    let folder = Path::new(&database).parent().unwrap().to_owned();
    assert!(
        folder.starts_with("/dev/shm") || folder.starts_with(std::env::temp_dir()),
        "{database}"
    );
    assert!(!folder.exists(), "{} is removed at exit", folder.display());
}

#[test]
fn database_urls_agentry_cannot_use_are_refused_at_start_naming_the_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["sqlite::memory:", "sqlite://:memory:", "mysql://x/y"] {
        let out = serve(
            dir.path(),
            &["--listen", "127.0.0.1:0", "--database-url", url],
        )
        .wait_with_output()
        .unwrap();
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("sqlite://PATH") && stderr.contains("postgres://"),
            "{url}: {stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "said once: {stderr}"
        );
    }
}

/// Starts a server with `extra`, makes one good and one refused request,
/// stops it and returns what it logged.
async fn logs_of_two_requests(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--ready-file",
        ready.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = serve(dir.path(), &args);
    let began = Instant::now();
    while !ready.exists() {
        assert!(began.elapsed() < Duration::from_secs(20), "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    let url = file["url"].as_str().unwrap();
    let ok = client()
        .get(format!("{url}/agentRegistry/agentInstances/a"))
        .bearer_auth(file["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 404);
    let refused = client()
        .get(format!("{url}/agentRegistry"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    logs
}

#[tokio::test]
async fn each_request_is_one_log_line_in_text_without_colour_or_in_json() {
    let text = logs_of_two_requests(&[]).await;
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a pipe: {text}"
    );
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" request ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("route=/beta/agentRegistry/agentInstances/{id}")
            && lines[0].contains("status=404"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("code=AgentNotFound"), "{}", lines[0]);
    assert!(
        lines[1].contains("code=InvalidAuthenticationToken"),
        "{}",
        lines[1]
    );

    let json = logs_of_two_requests(&["--log-format", "json"]).await;
    let requests: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{json}");
    let first = &requests[0]["fields"];
    assert_eq!(first["status"], 404);
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/beta/agentRegistry/agentInstances/{id}");
    assert!(
        first["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{first}"
    );
    assert_eq!(requests[1]["fields"]["status"], 401);
}

#[test]
fn a_data_folder_that_cannot_be_made_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = serve(&file.join("data"), &["--listen", "127.0.0.1:0"])
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} exists and is not a folder", file.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn agentry_healthcheck_exits_zero_only_when_a_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let child = serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            ready.to_str().unwrap(),
        ],
    );
    let began = Instant::now();
    while !ready.exists() {
        assert!(began.elapsed() < Duration::from_secs(20), "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    let addr = file["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches("/beta")
        .to_owned();
    let check = |addr: &str| {
        Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["healthcheck", "--addr", addr])
            .output()
            .unwrap()
    };
    assert!(check(&addr).status.success());
    let mut child = child;
    child.kill().unwrap();
    let _ = child.wait();
    let down = check(&addr);
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("nothing answers"),
        "{down:?}"
    );
}

#[test]
fn the_server_starts_where_the_system_has_no_certificates() {
    // A `FROM scratch` container has no CA certificates: the server must
    // still start (https notification receivers then fail their handshake).
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--database-url")
        .arg(database_url_for(dir.path()))
        .env("SSL_CERT_FILE", dir.path().join("no-such-file"))
        .env("SSL_CERT_DIR", dir.path().join("no-such-dir"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        line.contains("http://127.0.0.1:"),
        "no start line: {line:?}, stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

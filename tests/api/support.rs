//! A real server on a loopback port, a client, tokens, and assertions on
//! Graph's error envelope.

use agentry::app::Application;
use agentry::auth::permissions;
use agentry::auth::{CallerKind, KeyRing, TokenRequest};
use agentry::config::{ServerConfig, default_database_url};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TENANT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const TENANT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const USER: &str = "11111111-0000-4000-8000-000000000001";
pub const APP: &str = "22222222-0000-4000-8000-000000000002";
pub const GLOBAL: &str = "00000000-0000-0000-0000-000000000001";
pub const QUARANTINED: &str = "00000000-0000-0000-0000-000000000002";

pub struct TestServer {
    pub origin: String,
    pub keys: Arc<KeyRing>,
    pub client: reqwest::Client,
    pub data_dir: std::path::PathBuf,
    /// The database the server uses (SQLite's file, or a PostgreSQL database).
    pub database_url: String,
    /// What the handlers share; its journal is checked against
    /// `/openapi.json` when the server goes away.
    state: agentry::http::AppState,
    /// Whether its answers count as HTTP-test coverage (see `record_operations`).
    counted: bool,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server on a fresh data folder.
    pub async fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        let mut server = Self::start_with(ServerConfig::with_data_dir(&dir)).await;
        server._temp = Some(temp);
        server
    }

    /// A server on a fresh data folder, with configuration changes.
    pub async fn start_configured(change: impl FnOnce(&mut ServerConfig)) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::with_data_dir(temp.path());
        change(&mut config);
        let mut server = Self::start_with(config).await;
        server._temp = Some(temp);
        server
    }

    /// A server on an existing data folder (which outlives it).
    pub async fn start_in(dir: &Path) -> Self {
        Self::start_with(ServerConfig::with_data_dir(dir)).await
    }

    /// A server with this configuration; the database of its data folder is
    /// on the backend under test (see [`database_url_for`]) unless the
    /// configuration names another.
    pub async fn start_with(config: ServerConfig) -> Self {
        Self::start_with_clock(config, Arc::new(agentry::clock::SystemClock)).await
    }

    /// A server whose clock is `clock` (its data folder outlives it).
    pub async fn start_with_clock(
        mut config: ServerConfig,
        clock: agentry::clock::SharedClock,
    ) -> Self {
        if config.listen == agentry::config::DEFAULT_LISTEN {
            config.listen = "127.0.0.1:0".into();
        }
        if config.journal == agentry::config::JournalSettings::default() {
            // Every answer, whole, for the OpenAPI check (`crate::openapi`).
            config.journal = agentry::config::JournalSettings {
                capacity: 1_000_000,
                bodies: true,
                body_bytes: 64 << 20,
            };
        }
        if config.database_url == default_database_url(&config.data_dir) {
            config.database_url = database_url_for(&config.data_dir);
        }
        let app = Application::build_with_clock(&config, clock)
            .await
            .expect("server starts");
        let origin = format!("http://{}", app.local_addr());
        let keys = app.keys();
        let state = app.state();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            origin,
            keys,
            client: crate::support::client(),
            data_dir: config.data_dir.clone(),
            database_url: config.database_url.clone(),
            state,
            counted: true,
            _temp: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops gracefully and waits until the database is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }

    /// Checks the answers so far against `/openapi.json`.
    pub fn check_against_openapi(&self) {
        let violations = crate::openapi::violations(&self.state);
        assert!(
            violations.is_empty(),
            "answers that /openapi.json does not describe:\n{}",
            violations.join("\n")
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/beta{path}", self.origin)
    }

    pub fn token_for(&self, tenant: &str) -> String {
        self.keys
            .mint(&token_request(tenant, 3600, 0))
            .expect("mint")
    }

    /// An application (app-only) token with these application roles.
    pub fn app_token_for(&self, tenant: &str, roles: &[&str]) -> String {
        let mut request = token_request(tenant, 3600, 0);
        request.kind = CallerKind::Application;
        request.subject = APP.into();
        request.scopes = vec![];
        request.wids = vec![];
        request.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self.keys.mint(&request).expect("mint")
    }

    pub fn token(&self) -> String {
        self.token_for(TENANT_A)
    }

    /// A request in tenant A with a valid token.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.req_as(TENANT_A, method, path)
    }

    pub fn req_as(&self, tenant: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(self.token_for(tenant))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("request")
    }

    /// GETs an absolute URL (a next link, a delta link) with a valid token; asserts 200.
    pub async fn get_json_at(&self, url: &str) -> Value {
        let r = self
            .client
            .get(url)
            .bearer_auth(self.token())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK, "GET {url}");
        r.json().await.expect("json")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.req(Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path)
            .send()
            .await
            .expect("request")
    }

    /// Creates an instance and asserts 201.
    pub async fn create_instance(&self, body: Value) -> Value {
        let r = self.post("/agentRegistry/agentInstances", body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    pub async fn create_collection(&self, name: &str) -> String {
        let r = self
            .post(
                "/agentRegistry/agentCollections",
                serde_json::json!({"displayName": name, "ownerIds": [USER]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }
}

impl TestServer {
    /// A delegated token in tenant A with exactly these scopes and directory roles.
    pub fn user_token(&self, scopes: &[&str], wids: &[&str]) -> String {
        let mut r = token_request(TENANT_A, 3600, 0);
        r.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        r.wids = wids.iter().map(|s| (*s).to_owned()).collect();
        self.keys.mint(&r).expect("mint")
    }

    /// An application token in tenant A for app `app_id` with these roles.
    pub fn app_token(&self, app_id: &str, roles: &[&str]) -> String {
        let r = TokenRequest {
            kind: CallerKind::Application,
            subject: app_id.into(),
            scopes: vec![],
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            wids: vec![],
            ..token_request(TENANT_A, 3600, 0)
        };
        self.keys.mint(&r).expect("mint")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check_against_openapi();
            self.record_operations();
        }
    }
}

impl TestServer {
    /// For a test that calls operations without checking what they do (a
    /// sweep over every path): its calls are not coverage.
    pub fn not_counted_as_coverage(&mut self) {
        self.counted = false;
    }

    /// With `AGENTRY_RECORD_OPERATIONS=FILE` (set by `tests/run.sh` for a
    /// whole run), appends the Graph operations this server carried out (a
    /// success answer, below 400), one `METHOD /template` per line. `tests/run.sh` checks
    /// their union against `tests/fidelity/http.txt`, which
    /// `docs/fidelity.md` counts as covered by HTTP tests.
    fn record_operations(&self) {
        use std::io::Write;
        let Some(file) = std::env::var_os("AGENTRY_RECORD_OPERATIONS") else {
            return;
        };
        if !self.counted {
            return;
        }
        let mut lines = std::collections::BTreeSet::new();
        for entry in self.state.journal().all() {
            if entry.status >= 400 {
                continue;
            }
            if let Some(op) = agentry::http::routes::operation(entry.method.as_str(), entry.path())
                && (op.path.starts_with("/beta/") || op.path.starts_with("/v1.0/"))
            {
                lines.insert(format!("{} {}\n", op.method, op.path));
            }
        }
        // One write per server, appended: servers of concurrent tests do not interleave.
        let text: String = lines.into_iter().collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("record the operations answered");
    }
}

/// Whether the tests run on PostgreSQL (`AGENTRY_TEST_BACKEND=postgres`)
/// rather than on SQLite, the default.
pub fn on_postgres() -> bool {
    match std::env::var("AGENTRY_TEST_BACKEND") {
        Ok(v) if v == "postgres" || v == "postgresql" => true,
        Ok(v) if v.is_empty() || v == "sqlite" => false,
        Ok(v) => panic!("AGENTRY_TEST_BACKEND is 'sqlite' or 'postgres', not '{v}'"),
        Err(_) => false,
    }
}

/// The database of a data folder on the backend under test: the SQLite file
/// in it, or a fresh PostgreSQL database made for it on first use and
/// remembered in the folder, so a server restarted on the folder finds its data.
pub fn database_url_for(dir: &Path) -> String {
    if !on_postgres() {
        return default_database_url(dir);
    }
    let marker = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url.trim().to_owned();
    }
    let url = crate::pg::shared().create_database();
    // As Agentry itself would create it.
    agentry::files::create_private_dir(dir).expect("the data folder");
    std::fs::write(&marker, &url).expect("the database marker");
    url
}

/// An HTTP client (the TLS stack needs its cryptography chosen first).
pub fn client() -> reqwest::Client {
    agentry::tls::install_crypto();
    reqwest::Client::new()
}

pub fn token_request(tenant: &str, expires_in: i64, shift: i64) -> TokenRequest {
    TokenRequest {
        tenant_id: tenant.into(),
        kind: CallerKind::Delegated,
        subject: USER.into(),
        scopes: permissions::all_delegated_scopes()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        roles: vec![],
        wids: vec![
            permissions::AGENT_REGISTRY_ADMINISTRATOR.into(),
            permissions::GLOBAL_ADMINISTRATOR.into(),
        ],
        issued_at: agentry::clock::wall_now().unix_timestamp() + shift,
        expires_in,
    }
}

/// Percent-encodes a key for a path segment.
pub fn key(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn instance_body(id: &str, name: &str) -> Value {
    serde_json::json!({"id": id, "displayName": name, "ownerIds": [USER]})
}

/// The value with every `@odata.etag` annotation removed, at any depth, for
/// comparing shapes without the version-dependent tags.
pub fn without_etags(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "@odata.etag")
                .map(|(k, v)| (k.clone(), without_etags(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_etags).collect()),
        other => other.clone(),
    }
}

/// Asserts the Graph error envelope and returns it.
pub async fn assert_graph_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let request_id = r
        .headers()
        .get("request-id")
        .expect("request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let content_type = r
        .headers()
        .get("content-type")
        .expect("content type")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = r.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let inner = &error["innerError"];
    assert_eq!(inner["request-id"], request_id.as_str(), "{body}");
    assert!(inner["client-request-id"].is_string(), "{body}");
    let date = inner["date"].as_str().expect("date");
    assert_eq!(date.len(), 19, "yyyy-MM-ddTHH:mm:ss: {date}");
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only 'error' at the top: {body}"
    );
    body
}

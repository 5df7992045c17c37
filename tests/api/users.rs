//! Local user accounts (`agentry user add/list/remove`) and the built-in
//! identity provider's authorization-code flow with PKCE: the sign-in page,
//! codes redeemed once for a user's token, the OAuth errors of a code used
//! wrongly, the lockout after five failures (which tells no one whether a
//! name exists), and a local user signing in to the console in Chromium.

use crate::support::*;
use crate::webdriver::Browser;
use agentry::auth::{CONSOLE_CLIENT_ID, DEFAULT_TENANT, permissions};
use agentry::clock::Clock;
use agentry::config::ServerConfig;
use base64::Engine;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// RFC 7636's example verifier and its S256 challenge.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Runs `agentry` with `stdin` as standard input.
pub(crate) fn agentry(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
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
    child.wait_with_output().unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Adds a user of `tenant` to the server's database; answers its object id.
pub(crate) fn add_user(s: &TestServer, tenant: &str, name: &str, roles: &[&str]) -> String {
    let mut args = vec![
        "user",
        "add",
        name,
        "--password-stdin",
        "--tenant",
        tenant,
        "--database-url",
        &s.database_url,
    ];
    for role in roles {
        args.extend(["--role", role]);
    }
    let out = agentry(&args, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("object id:"))
        .expect("the object id")
        .trim()
        .to_owned()
}

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn redirect_uri(s: &TestServer) -> String {
    format!("{}/console/", s.origin)
}

fn authorize_url(s: &TestServer, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/authorize", s.origin)
}

/// The console's authorization request, with `changes` made to it.
fn request_params(s: &TestServer, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("client_id", CONSOLE_CLIENT_ID.to_owned()),
        ("response_type", "code".into()),
        ("redirect_uri", redirect_uri(s)),
        ("scope", "https://graph.microsoft.com/.default".into()),
        ("state", "state-42".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        params.push(((*name).to_owned(), (*value).to_owned()));
    }
    params
}

pub(crate) fn form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", key(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts the sign-in form; answers the 303's `Location`.
async fn sign_in(s: &TestServer, tenant: &str, name: &str, password: &str) -> String {
    let mut params = request_params(s, &[]);
    params.push(("username".into(), name.into()));
    params.push(("password".into(), password.into()));
    let r = no_redirects()
        .post(authorize_url(s, tenant))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// The code of a successful sign-in's redirect (which carries the state).
fn code_of(s: &TestServer, location: &str) -> String {
    let rest = location
        .strip_prefix(&format!("{}?", redirect_uri(s)))
        .unwrap_or_else(|| panic!("not to the console: {location}"));
    assert!(rest.ends_with("&state=state-42"), "{location}");
    rest.strip_prefix("code=")
        .and_then(|r| r.split('&').next())
        .expect("a code")
        .to_owned()
}

async fn redeem(s: &TestServer, tenant: &str, changes: &[(&str, &str)]) -> reqwest::Response {
    let mut params: Vec<(String, String)> = [
        ("grant_type", "authorization_code".to_owned()),
        ("client_id", CONSOLE_CLIENT_ID.to_owned()),
        ("redirect_uri", redirect_uri(s)),
        ("code_verifier", VERIFIER.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        params.push(((*name).to_owned(), (*value).to_owned()));
    }
    s.client
        .post(format!("{}/{tenant}/oauth2/v2.0/token", s.origin))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&params))
        .send()
        .await
        .unwrap()
}

/// Asserts Entra's OAuth error shape with `error` and AADSTS `code`.
pub(crate) async fn assert_oauth_error(r: reqwest::Response, status: u16, error: &str, code: u64) {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{body}"
    );
    assert!(body["trace_id"].is_string() && body["timestamp"].is_string());
}

pub(crate) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A clock the test moves forward.
struct Movable(Mutex<time::OffsetDateTime>);

impl Clock for Movable {
    fn now(&self) -> time::OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl Movable {
    fn new() -> Arc<Movable> {
        Arc::new(Movable(Mutex::new(agentry::clock::wall_now())))
    }

    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

#[tokio::test]
async fn a_local_user_signs_in_with_a_code_and_pkce_and_its_token_works_on_the_registry() {
    let s = TestServer::start().await;
    let oid = add_user(
        &s,
        TENANT_A,
        "Admin@Contoso.example",
        &["Agent Registry Administrator"],
    );

    let discovery: Value = s
        .client
        .get(format!(
            "{}/{TENANT_A}/v2.0/.well-known/openid-configuration",
            s.origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["grant_types_supported"],
        json!(["client_credentials", "authorization_code"])
    );
    assert_eq!(discovery["response_types_supported"], json!(["code"]));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        discovery["authorization_endpoint"],
        authorize_url(&s, TENANT_A)
    );

    // The page: a form, no script, posting to this server only.
    let r = s
        .client
        .get(format!(
            "{}?{}",
            authorize_url(&s, TENANT_A),
            form(&request_params(&s, &[]))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let policy = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("form-action 'self'"), "{policy}");
    assert!(!policy.contains("script-src"), "{policy}");
    let page = r.text().await.unwrap();
    assert!(page.contains("<form"), "{page}");
    assert!(page.contains("name=\"password\""), "{page}");
    assert!(!page.contains("<script"), "{page}");

    // The name in any case; the code goes back with the state.
    let location = sign_in(&s, TENANT_A, "admin@contoso.EXAMPLE", PASSWORD).await;
    let code = code_of(&s, &location);
    let r = redeem(&s, TENANT_A, &[("code", &code)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["oid"], oid.as_str());
    assert_eq!(c["tid"], TENANT_A);
    assert_eq!(c["upn"], "Admin@Contoso.example");
    assert_eq!(c["appid"], CONSOLE_CLIENT_ID);
    assert_eq!(
        c["wids"],
        json!([permissions::AGENT_REGISTRY_ADMINISTRATOR])
    );
    let scopes: Vec<&str> = c["scp"].as_str().unwrap().split(' ').collect();
    assert_eq!(scopes, permissions::all_delegated_scopes());

    let r = s
        .client
        .get(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .json(&instance_body("admin-agent", "The admin's agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the user's role allows it");

    // A reset wipes the tenant's objects, not its users; nor does a restore.
    let r = s
        .client
        .post(format!("{}/_agentry/reset", s.origin))
        .bearer_auth(s.app_token_for(TENANT_A, &["Agentry.Admin"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let location = sign_in(&s, TENANT_A, "admin@contoso.example", PASSWORD).await;
    code_of(&s, &location);
    // A snapshot holds no credentials, and its restore keeps the users.
    let admin = s.app_token_for(TENANT_A, &["Agentry.Admin"]);
    let snapshot = s
        .client
        .get(format!("{}/_agentry/snapshot", s.origin))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!snapshot.contains("admin@contoso.example"), "{snapshot}");
    assert!(!snapshot.contains("argon2"), "{snapshot}");
    let r = s
        .client
        .put(format!("{}/_agentry/snapshot", s.origin))
        .bearer_auth(&admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let location = sign_in(&s, TENANT_A, "admin@contoso.example", PASSWORD).await;
    code_of(&s, &location);
    // The user is of tenant A only.
    let location = sign_in(&s, TENANT_B, "admin@contoso.example", PASSWORD).await;
    assert!(location.contains("signin=failed"), "{location}");
}

#[tokio::test]
async fn codes_are_refused_with_another_verifier_a_second_time_or_for_another_redirect_uri() {
    let s = TestServer::start().await;
    add_user(&s, TENANT_A, "operator", &[]);
    let server = &s;
    let fresh = move || async move {
        code_of(
            server,
            &sign_in(server, TENANT_A, "operator", PASSWORD).await,
        )
    };

    // Another verifier: refused, and the code is spent.
    let code = fresh().await;
    let other = "A".repeat(43);
    let r = redeem(&s, TENANT_A, &[("code", &code), ("code_verifier", &other)]).await;
    assert_oauth_error(r, 400, "invalid_grant", 501481).await;
    let r = redeem(&s, TENANT_A, &[("code", &code)]).await;
    assert_oauth_error(r, 400, "invalid_grant", 54005).await;

    // Redeemed once, never twice.
    let code = fresh().await;
    assert_eq!(
        redeem(&s, TENANT_A, &[("code", &code)]).await.status(),
        StatusCode::OK
    );
    let r = redeem(&s, TENANT_A, &[("code", &code)]).await;
    assert_oauth_error(r, 400, "invalid_grant", 54005).await;

    // Bound to its redirect URI, its tenant and its client.
    let code = fresh().await;
    let elsewhere = format!("{}/elsewhere/", s.origin);
    let r = redeem(
        &s,
        TENANT_A,
        &[("code", &code), ("redirect_uri", &elsewhere)],
    )
    .await;
    assert_oauth_error(r, 400, "invalid_grant", 500112).await;
    let code = fresh().await;
    let r = redeem(&s, TENANT_B, &[("code", &code)]).await;
    assert_oauth_error(r, 400, "invalid_grant", 700005).await;
    let r = redeem(
        &s,
        TENANT_A,
        &[("client_id", APP), ("code", &fresh().await)],
    )
    .await;
    assert_oauth_error(r, 400, "unauthorized_client", 700016).await;
    let r = redeem(&s, TENANT_A, &[("code", "not-a-code")]).await;
    assert_oauth_error(r, 400, "invalid_grant", 70000).await;
    let r = redeem(&s, TENANT_A, &[]).await;
    assert_oauth_error(r, 400, "invalid_request", 900144).await;

    // The authorization request: the console's redirect URI, S256 only.
    for (change, status, error, code) in [
        (
            ("redirect_uri", "https://evil.example/console/"),
            400,
            "invalid_request",
            50011,
        ),
        (("client_id", APP), 400, "unauthorized_client", 700016),
        (
            ("code_challenge_method", "plain"),
            400,
            "invalid_request",
            501491,
        ),
        (
            ("response_type", "token"),
            400,
            "unsupported_response_type",
            700054,
        ),
        (("scope", "openid"), 400, "invalid_scope", 70011),
    ] {
        let r = s
            .client
            .get(format!(
                "{}?{}",
                authorize_url(&s, TENANT_A),
                form(&request_params(&s, &[change]))
            ))
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, status, error, code).await;
    }
    // A form posted from another site's page.
    let r = s
        .client
        .post(authorize_url(&s, TENANT_A))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(form(&request_params(
            &s,
            &[("username", "operator"), ("password", PASSWORD)],
        )))
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request", 90023).await;
}

#[tokio::test]
async fn a_code_is_refused_once_it_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::new();
    let s =
        TestServer::start_with_clock(ServerConfig::with_data_dir(dir.path()), clock.clone()).await;
    add_user(&s, TENANT_A, "operator", &[]);
    let code = code_of(&s, &sign_in(&s, TENANT_A, "operator", PASSWORD).await);
    clock.advance(time::Duration::seconds(61));
    let r = redeem(&s, TENANT_A, &[("code", &code)]).await;
    assert_oauth_error(r, 400, "invalid_grant", 70008).await;
    s.stop().await;
}

/// The page a failed sign-in's redirect leads to: its error's text.
async fn failure_shown(s: &TestServer, tenant: &str, location: &str) -> String {
    assert!(location.starts_with("authorize?"), "{location}");
    assert!(location.contains("signin=failed"), "{location}");
    let page = s
        .client
        .get(format!("{}/{tenant}/oauth2/v2.0/{location}", s.origin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page
        .find("id=\"signin-error\"")
        .expect("an error on the page");
    page[start..].split("</div>").next().unwrap().to_owned()
}

/// A failed sign-in's redirect without the name it carries back.
fn without_hint(location: &str) -> String {
    location
        .split('&')
        .filter(|p| !p.starts_with("login_hint="))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn five_failures_in_a_row_lock_a_user_for_15_minutes_and_unknown_names_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::new();
    let config = ServerConfig::with_data_dir(dir.path());
    let s = TestServer::start_with_clock(config.clone(), clock.clone()).await;
    add_user(&s, TENANT_A, "auditor", &[]);

    // A success in between starts the count again.
    for _ in 0..4 {
        sign_in(&s, TENANT_A, "auditor", "wrong").await;
    }
    code_of(&s, &sign_in(&s, TENANT_A, "auditor", PASSWORD).await);
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(sign_in(&s, TENANT_A, "auditor", "wrong").await);
    }
    // Locked: the right password is refused too, with the same answer as a
    // wrong one, and as any password of a name that has no account.
    let locked = sign_in(&s, TENANT_A, "auditor", PASSWORD).await;
    let unknown = sign_in(&s, TENANT_A, "nobody", PASSWORD).await;
    for _ in 0..6 {
        sign_in(&s, TENANT_A, "nobody", "wrong").await;
    }
    let unknown_later = sign_in(&s, TENANT_A, "nobody", PASSWORD).await;
    let first = without_hint(&answers[0]);
    for answer in answers.iter().chain([&locked, &unknown, &unknown_later]) {
        assert_eq!(without_hint(answer), first);
    }
    let shown = failure_shown(&s, TENANT_A, &answers[0]).await;
    assert!(shown.contains("incorrect"), "{shown}");
    assert_eq!(failure_shown(&s, TENANT_A, &locked).await, shown);
    assert_eq!(failure_shown(&s, TENANT_A, &unknown_later).await, shown);
    s.stop().await;

    // The lock is in the database: a restarted server (or another replica) keeps it.
    let s = TestServer::start_with_clock(config, clock.clone()).await;
    clock.advance(time::Duration::minutes(14));
    let still = sign_in(&s, TENANT_A, "auditor", PASSWORD).await;
    assert!(still.contains("signin=failed"), "{still}");
    clock.advance(time::Duration::minutes(1));
    code_of(&s, &sign_in(&s, TENANT_A, "auditor", PASSWORD).await);
    s.stop().await;
}

#[tokio::test]
async fn agentry_user_adds_lists_and_removes_users_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(dir.path());
    let run = |args: &[&str], stdin: &str| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        agentry(&all, stdin)
    };
    let out = run(
        &[
            "user",
            "add",
            "admin@contoso.example",
            "--password-stdin",
            "--role",
            "global administrator",
            "--role",
            permissions::AI_ADMINISTRATOR,
        ],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("roles:     Global Administrator, AI Administrator"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    let out = run(
        &[
            "user",
            "add",
            "reader",
            "--password-stdin",
            "--tenant",
            TENANT_B,
        ],
        "pw\n",
    );
    assert!(out.status.success(), "{}", text(&out));

    // Names are unique per tenant whatever the case; roles must be known.
    let out = run(
        &["user", "add", "ADMIN@contoso.example", "--password-stdin"],
        "x\n",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already has a user"), "{}", text(&out));
    let out = run(
        &[
            "user",
            "add",
            "newcomer",
            "--password-stdin",
            "--role",
            "Tea Maker",
        ],
        "x\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Global Administrator"),
        "{}",
        text(&out)
    );
    let out = run(&["user", "add", "newcomer", "--password-stdin"], "");
    assert!(!out.status.success(), "an empty password is refused");

    let out = run(&["user", "list"], "");
    let listed = text(&out);
    assert!(
        listed.contains("admin@contoso.example")
            && listed.contains("Global Administrator, AI Administrator"),
        "{listed}"
    );
    assert!(!listed.contains("reader"), "{listed}");
    assert!(!listed.contains("argon2"), "{listed}");

    let out = run(&["user", "remove", "Admin@Contoso.Example"], "");
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["user", "remove", "admin@contoso.example"], "");
    assert!(!out.status.success());
    assert!(text(&run(&["user", "list"], "")).contains("no users in tenant"));
    assert!(text(&run(&["user", "list", "--tenant", TENANT_B], "")).contains("reader"));
}

#[tokio::test]
async fn in_chromium_a_local_user_signs_in_to_the_console_and_out() {
    let s = TestServer::start().await;
    add_user(
        &s,
        DEFAULT_TENANT,
        "admin@contoso.example",
        &["Global Administrator"],
    );
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::POST,
            "/agentRegistry/agentInstances",
        )
        .json(&instance_body("contoso-travel", "Contoso Travel Planner"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("{}/console", s.origin)).await;
    browser.click("#signin").await;

    // The server's sign-in page: a wrong password first.
    browser
        .type_into("#username", "admin@contoso.example")
        .await;
    browser.type_into("#password", "wrong").await;
    browser.click("#signin-submit").await;
    browser
        .wait_text("#signin-error .message", |t| t.contains("incorrect"))
        .await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#signin-submit").await;

    // Back in the console, signed in as the user, the code gone from the URL.
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    let who = browser.text("#signed-in-as").await.unwrap_or_default();
    assert!(who.contains("admin@contoso.example"), "{who}");
    let url = browser
        .script("return location.pathname + location.search;", json!([]))
        .await;
    assert_eq!(url, "/console/");
    browser.click("#sign-out").await;
    browser.wait_text("h1", |t| t.contains("Sign in")).await;
    browser.quit().await;
}

//! The console signing in at an external OpenID Connect issuer, tested
//! with a second Agentry as that issuer: its built-in identity provider
//! signs a local user in for a registered single-page application (the
//! code flow with PKCE, the code redeemed by the browser across origins),
//! and the first server, configured with `--oidc-*` and the console's
//! client there, serves the console's sign-in configuration, lets it call
//! that token endpoint only, and accepts the tokens as its own callers'.

use crate::console::{assert_fields_are_labelled, screenshot};
use crate::support::*;
use crate::users::{
    CHALLENGE, PASSWORD, VERIFIER, add_user, agentry, assert_oauth_error, claims, form,
    no_redirects, text,
};
use crate::webdriver::Browser;
use agentry::auth::DEFAULT_TENANT;
use agentry::auth::oidc::{ConsoleClient, OidcConfig};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

/// `path` on the server, outside the Graph API.
fn at(s: &TestServer, path: &str) -> String {
    format!("{}{path}", s.origin)
}

/// Registers a single-page application on `s` answering at `redirect_uri`;
/// answers its client id.
fn add_spa(s: &TestServer, tenant: &str, redirect_uri: &str) -> String {
    let out = agentry(
        &[
            "app",
            "add",
            "--name",
            "Agentry console (other server)",
            "--tenant",
            tenant,
            "--redirect-uri",
            redirect_uri,
            "--database-url",
            &s.database_url,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.contains(&format!("redirect uri:  {redirect_uri}")),
        "{printed}"
    );
    printed
        .lines()
        .find_map(|l| l.strip_prefix("client id:"))
        .expect("the client id")
        .trim()
        .to_owned()
}

/// The application's authorization request at `s`, with `changes`.
fn spa_params(
    client_id: &str,
    redirect_uri: &str,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("scope", "https://graph.microsoft.com/.default"),
        ("state", "spa-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        params.push(((*name).to_owned(), (*value).to_owned()));
    }
    params
}

/// Signs the local user in for the application; answers the code.
async fn spa_code(s: &TestServer, client_id: &str, redirect_uri: &str) -> String {
    let mut params = spa_params(client_id, redirect_uri, &[]);
    params.push(("username".into(), "admin@contoso.example".into()));
    params.push(("password".into(), PASSWORD.into()));
    let r = no_redirects()
        .post(format!(
            "{}/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
            s.origin
        ))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let rest = location
        .strip_prefix(&format!("{redirect_uri}?code="))
        .unwrap_or_else(|| panic!("not to the application: {location}"));
    assert!(rest.ends_with("&state=spa-state"), "{location}");
    rest.split('&').next().unwrap().to_owned()
}

async fn redeem_spa(
    s: &TestServer,
    client_id: &str,
    redirect_uri: &str,
    code: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let params: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code", code),
        ("code_verifier", VERIFIER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut request = s
        .client
        .post(format!("{}/{DEFAULT_TENANT}/oauth2/v2.0/token", s.origin))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&params));
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_registered_single_page_application_signs_a_local_user_in_and_its_page_redeems_the_code()
{
    let idp = TestServer::start().await;
    add_user(
        &idp,
        DEFAULT_TENANT,
        "admin@contoso.example",
        &["Agent Registry Administrator"],
    );
    let redirect = "http://localhost:7999/console/";
    let client_id = add_spa(&idp, DEFAULT_TENANT, redirect);
    let page = |params: Vec<(String, String)>, tenant: &str| {
        no_redirects()
            .get(format!(
                "{}/{tenant}/oauth2/v2.0/authorize?{}",
                idp.origin,
                form(&params)
            ))
            .send()
    };

    let r = page(spa_params(&client_id, redirect, &[]), DEFAULT_TENANT)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let policy = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains(&format!("form-action 'self' {redirect};")),
        "the form's answer may go to the application: {policy}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Sign in to Agentry console (other server)"),
        "the page names the application: {html}"
    );
    assert!(html.contains(&client_id));

    // The discovery document says public clients redeem codes without a secret.
    let discovery = idp
        .get_json_at(&at(
            &idp,
            &format!("/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"),
        ))
        .await;
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none")),
        "{discovery}"
    );

    // Refused before anything is sent to a redirect URI.
    let other = "http://localhost:7999/elsewhere/";
    let r = page(spa_params(&client_id, other, &[]), DEFAULT_TENANT)
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request", 50011).await;
    let r = page(spa_params(&client_id, redirect, &[]), TENANT_B)
        .await
        .unwrap();
    assert_oauth_error(r, 400, "unauthorized_client", 700016).await;
    let unknown = "11111111-2222-3333-4444-555555555555";
    let r = page(spa_params(unknown, redirect, &[]), DEFAULT_TENANT)
        .await
        .unwrap();
    assert_oauth_error(r, 400, "unauthorized_client", 700016).await;

    // A code redeemed without Origin (not by a browser) is refused, and
    // not spent; a page of the redirect URI's origin may read the answer.
    let code = spa_code(&idp, &client_id, redirect).await;
    let r = redeem_spa(&idp, &client_id, redirect, &code, None).await;
    assert_oauth_error(r, 400, "invalid_request", 9002327).await;
    let r = redeem_spa(
        &idp,
        &client_id,
        redirect,
        &code,
        Some("http://localhost:7999"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:7999"
    );
    let body: Value = r.json().await.unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["appid"], client_id.as_str());
    assert_eq!(c["upn"], "admin@contoso.example");
    assert_eq!(c["tid"], DEFAULT_TENANT);
    assert_eq!(c["wids"], json!(["6b942400-691f-4bf0-9d12-d8a254a2baf5"]));
    assert!(
        c["scp"]
            .as_str()
            .unwrap()
            .contains("AgentInstance.ReadWrite.All"),
        "{c}"
    );

    // Another site's page learns nothing: no CORS header on its answer.
    let code = spa_code(&idp, &client_id, redirect).await;
    let r = redeem_spa(
        &idp,
        &client_id,
        redirect,
        &code,
        Some("http://evil.example"),
    )
    .await;
    assert!(
        r.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    idp.stop().await;
}

/// A free port on 127.0.0.1, for a server whose origin must be known before
/// it starts (the issuer's application names it as its redirect URI).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// The configuration of a server that trusts `idp`'s tokens and lets its
/// console sign in there as `client_id`.
fn trusting(idp: &TestServer, client_id: &str) -> OidcConfig {
    OidcConfig {
        issuer: "https://sts.windows.net/{tenantid}/".into(),
        audiences: vec!["https://graph.microsoft.com".into()],
        jwks: format!("{}/{DEFAULT_TENANT}/discovery/v2.0/keys", idp.origin),
        console: Some(ConsoleClient {
            client_id: client_id.to_owned(),
            tenant: Some(DEFAULT_TENANT.into()),
            discovery: Some(format!(
                "{}/{{tenantid}}/v2.0/.well-known/openid-configuration",
                idp.origin
            )),
            ..ConsoleClient::default()
        }),
    }
}

/// The external issuer, a user of it, and a server whose console signs in
/// there, on a port chosen first.
async fn two_servers() -> (TestServer, TestServer, String) {
    let idp = TestServer::start().await;
    add_user(
        &idp,
        DEFAULT_TENANT,
        "admin@contoso.example",
        &["Agent Registry Administrator"],
    );
    let port = free_port();
    let console = format!("http://127.0.0.1:{port}/console/");
    let client_id = add_spa(&idp, DEFAULT_TENANT, &console);
    let oidc = trusting(&idp, &client_id);
    let s = TestServer::start_configured(|c| {
        c.listen = format!("127.0.0.1:{port}");
        c.oidc = Some(oidc);
        c.console_dev_signin = true;
    })
    .await;
    (idp, s, client_id)
}

#[tokio::test]
async fn the_console_is_told_to_sign_in_at_the_external_issuer_and_may_call_its_token_endpoint_only()
 {
    let (idp, s, client_id) = two_servers().await;
    let config = s.get_json_at(&at(&s, "/console/config.json")).await;
    let token_endpoint = format!("{}/{DEFAULT_TENANT}/oauth2/v2.0/token", idp.origin);
    assert_eq!(
        config,
        json!({
            "external": {
                "clientId": client_id,
                "scope": "https://graph.microsoft.com/.default",
                "authorizationEndpoint": format!("{}/{DEFAULT_TENANT}/oauth2/v2.0/authorize", idp.origin),
                "tokenEndpoint": token_endpoint,
            },
            "localUsers": true,
            "devSignIn": true,
        })
    );
    let r = s.client.get(at(&s, "/console/")).send().await.unwrap();
    let policy = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains(&format!("connect-src 'self' {token_endpoint};")),
        "{policy}"
    );
    assert!(!policy.contains("/authorize"), "{policy}");

    // The issuer's token for its user works here, with the user's roles…
    let code = spa_code(&idp, &client_id, &format!("{}/console/", s.origin)).await;
    let r = redeem_spa(
        &idp,
        &client_id,
        &format!("{}/console/", s.origin),
        &code,
        Some(&s.origin),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&token)
        .json(&instance_body("from-idp", "Made by the issuer's user"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // …and this server's own tokens, with the same issuer, still work.
    let r = s
        .client
        .post(at(&s, "/console/session"))
        .send()
        .await
        .unwrap();
    let own = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for t in [&token, &own, &s.token_for(DEFAULT_TENANT)] {
        let r = s
            .client
            .get(s.url("/agentRegistry/agentInstances/from-idp"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Any token the issuer signs is accepted; one signed by another key is not.
    let minted = idp.token_for(DEFAULT_TENANT);
    let other =
        agentry::auth::KeyRing::open_dir(&tempfile::tempdir().unwrap().path().join("k"), 60)
            .unwrap();
    let mut request = token_request(DEFAULT_TENANT, 600, 0);
    request.scopes = vec!["AgentRegistry.ReadWrite.All".into()];
    let stranger = other.mint(&request).unwrap();
    for (t, status) in [
        (&minted, StatusCode::OK),
        (&stranger, StatusCode::UNAUTHORIZED),
    ] {
        let r = s
            .client
            .get(s.url("/agentRegistry/agentInstances/from-idp"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
    }

    // Without a console client, no external sign-in and the strict policy.
    let plain = TestServer::start().await;
    let config = plain.get_json_at(&at(&plain, "/console/config.json")).await;
    assert_eq!(config["external"], Value::Null);
    let r = plain
        .client
        .get(at(&plain, "/console"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("connect-src 'self';")
    );
    plain.stop().await;
    // Without its own tokens, the server offers the external issuer only.
    let oidc = trusting(&idp, &client_id);
    let external_only = TestServer::start_configured(|c| {
        c.builtin_tokens = false;
        c.console_dev_signin = true;
        c.oidc = Some(oidc);
    })
    .await;
    let config = external_only
        .get_json_at(&at(&external_only, "/console/config.json"))
        .await;
    assert_eq!(config["external"]["clientId"], client_id.as_str());
    assert_eq!(
        (&config["localUsers"], &config["devSignIn"]),
        (&json!(false), &json!(false))
    );
    external_only.stop().await;
    s.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn a_console_client_whose_issuer_cannot_be_discovered_stops_the_start() {
    let idp = TestServer::start().await;
    let mut oidc = trusting(&idp, "11111111-2222-3333-4444-555555555555");
    if let Some(c) = oidc.console.as_mut() {
        c.discovery = Some(format!("{}/nowhere/.well-known/nothing", idp.origin));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = agentry::config::ServerConfig::with_data_dir(dir.path());
    config.listen = "127.0.0.1:0".into();
    config.database_url = database_url_for(dir.path());
    config.oidc = Some(oidc);
    let error = match agentry::app::Application::build(&config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("OpenID configuration"), "{error}");
    idp.stop().await;
}

#[tokio::test]
async fn in_chromium_the_console_signs_in_at_the_external_issuer_and_lists_agents() {
    let (idp, s, _) = two_servers().await;
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
    let label = browser
        .wait_text("#signin-external", |t| t.starts_with("Sign in at"))
        .await;
    assert!(
        label.contains(idp.origin.trim_start_matches("http://")),
        "{label}"
    );
    assert_fields_are_labelled(&browser).await;
    let first = browser
        .script(
            "return document.querySelector('main .panel').id;",
            json!([]),
        )
        .await;
    assert_eq!(
        first, "signin-organization",
        "the external issuer comes first"
    );
    assert!(
        browser.text("#signin").await.is_some() && browser.text("#dev-signin").await.is_some(),
        "local users and the switch stay below it"
    );
    screenshot(&browser, "signin-external").await;
    browser.click("#signin-external").await;

    // The issuer's own sign-in page, on its origin.
    browser
        .wait_text("h1", |t| t.contains("Agentry console (other server)"))
        .await;
    let at = browser.script("return location.origin;", json!([])).await;
    assert_eq!(at, idp.origin.as_str());
    browser
        .type_into("#username", "admin@contoso.example")
        .await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#signin-submit").await;

    // Back at the console: the code redeemed at the issuer by the page,
    // the agents listed with the issuer's token.
    browser.wait_text("#agent-count", |t| t == "1 agent").await;
    let who = browser.text("#signed-in-as").await.unwrap_or_default();
    assert!(who.contains("admin@contoso.example"), "{who}");
    let url = browser
        .script(
            "return location.origin + location.pathname + location.search;",
            json!([]),
        )
        .await;
    assert_eq!(url, format!("{}/console/", s.origin).as_str());
    let issuer = browser
        .script(
            "const t = sessionStorage.getItem('agentry.console.token'); \
             return JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).appid;",
            json!([]),
        )
        .await;
    assert_ne!(
        issuer,
        agentry::auth::CONSOLE_CLIENT_ID,
        "a token of the issuer's application"
    );
    browser.quit().await;
    s.stop().await;
    idp.stop().await;
}

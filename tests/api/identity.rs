//! The built-in identity provider: discovery, JWKS, client credentials for
//! applications registered with `agentry app add`, and key rotation while
//! the server runs.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Command;

fn agentry(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .output()
        .expect("agentry runs");
    assert!(
        out.status.success(),
        "agentry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn line_value(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no '{label}' in {text}"))
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_token_endpoint_and_keys() {
    let s = TestServer::start().await;
    let d: Value = s
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
        d["token_endpoint"],
        format!("{}/{TENANT_A}/oauth2/v2.0/token", s.origin)
    );
    let jwks_uri = d["jwks_uri"].as_str().unwrap();
    let jwks: Value = s
        .client
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert_eq!(key["kid"], s.keys.kid());
}

#[tokio::test]
async fn a_registered_app_gets_a_token_by_client_credentials_and_uses_it() {
    let s = TestServer::start().await;
    let dir = s.data_dir.to_str().unwrap();
    let out = agentry(&[
        "app",
        "add",
        "--name",
        "ci",
        "--roles",
        "AgentInstance.Read.All",
        "--tenant",
        TENANT_A,
        "--data-dir",
        dir,
        "--database-url",
        &s.database_url,
    ]);
    let (client_id, secret) = (
        line_value(&out, "client id:"),
        line_value(&out, "client secret:"),
    );
    let endpoint = format!("{}/{TENANT_A}/oauth2/v2.0/token", s.origin);
    let request = |id: &str, secret: &str, scope: &str, grant: &str| {
        s.client
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type={grant}&client_id={id}&client_secret={}&scope={}",
                key(secret),
                key(scope)
            ))
            .send()
    };
    let r = request(
        &client_id,
        &secret,
        "https://graph.microsoft.com/.default",
        "client_credentials",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();

    let r = s
        .client
        .get(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the granted permission reads");
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .json(&instance_body("x", "X"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;

    let refusals = [
        (
            client_id.as_str(),
            "agentry~wrong",
            "https://graph.microsoft.com/.default",
            "client_credentials",
            401,
            "invalid_client",
        ),
        (
            "00000000-0000-4000-8000-000000000000",
            secret.as_str(),
            "https://graph.microsoft.com/.default",
            "client_credentials",
            400,
            "unauthorized_client",
        ),
        (
            client_id.as_str(),
            secret.as_str(),
            "https://graph.microsoft.com/User.Read",
            "client_credentials",
            400,
            "invalid_scope",
        ),
        (
            client_id.as_str(),
            secret.as_str(),
            "https://graph.microsoft.com/.default",
            "password",
            400,
            "unsupported_grant_type",
        ),
    ];
    for (id, secret, scope, grant, status, error) in refusals {
        let r = request(id, secret, scope, grant).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{error}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS"),
            "{body}"
        );
    }
    // Another tenant's URL does not issue this app's tokens.
    let r = s
        .client
        .post(format!("{}/{TENANT_B}/oauth2/v2.0/token", s.origin))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn servers_sharing_a_keys_folder_accept_each_others_tokens() {
    let keys = tempfile::tempdir().unwrap();
    let shared = keys.path().to_path_buf();
    let first = TestServer::start_configured(|c| c.keys_dir = shared.clone()).await;
    let second = TestServer::start_configured(|c| c.keys_dir = shared.clone()).await;
    assert_ne!(first.data_dir, second.data_dir);
    let from_cli = agentry(&[
        "token",
        "--keys-dir",
        keys.path().to_str().unwrap(),
        "--tenant",
        TENANT_A,
    ])
    .trim()
    .to_owned();
    for token in [first.token(), second.token(), from_cli] {
        for s in [&first, &second] {
            let r = s
                .client
                .get(s.url("/agentRegistry/agentInstances"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    assert!(
        !first.data_dir.join("keys").exists(),
        "no keys are made in the data folder when a keys folder is set"
    );
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_while_old_tokens_keep_working() {
    let s = TestServer::start().await;
    let dir = s.data_dir.to_str().unwrap();
    let old = s.token();
    agentry(&["keys", "rotate", "--data-dir", dir]);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let new = agentry(&["token", "--data-dir", dir, "--tenant", TENANT_A])
        .trim()
        .to_owned();
    for token in [&old, &new] {
        let r = s
            .client
            .get(s.url("/agentRegistry/agentInstances"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let jwks: Value = s
        .client
        .get(format!("{}/{TENANT_A}/discovery/v2.0/keys", s.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the new key and the retired one"
    );
}

#[tokio::test]
async fn https_with_a_self_signed_certificate_serves_the_same_api() {
    let s = TestServer::start_configured(|c| c.tls_self_signed = true).await;
    assert!(
        s.origin.starts_with("http://"),
        "the harness builds plain URLs"
    );
    let origin = s.origin.replace("http://", "https://");
    agentry::tls::install_crypto();
    let pem = std::fs::read(s.data_dir.join("tls/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let r = client
        .get(format!("{origin}/beta/agentRegistry/agentInstances"))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        format!("{origin}/beta/$metadata#agentRegistry/agentInstances")
    );
    let plain = s
        .client
        .get(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(s.token())
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served on a TLS port"
    );
}

/// An external identity provider: a P-256 key, its JWKS, and tokens it signs.
struct Provider {
    pem: String,
    kid: String,
}

impl Provider {
    fn new(kid: &str) -> Self {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        Provider {
            pem,
            kid: kid.to_owned(),
        }
    }

    fn jwk(&self) -> Value {
        use base64::Engine;
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePrivateKey;
        let point = p256::SecretKey::from_pkcs8_pem(&self.pem)
            .unwrap()
            .public_key()
            .to_encoded_point(false);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        serde_json::json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid, "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
    }

    fn token(&self, iss: &str, aud: &str) -> String {
        let now = agentry::clock::wall_now().unix_timestamp();
        let claims = serde_json::json!({
            "aud": aud, "iss": iss, "tid": TENANT_A, "oid": "external-user", "appid": "external-client",
            "scp": "AgentInstance.Read.All", "wids": [agentry::auth::permissions::AGENT_REGISTRY_ADMINISTRATOR],
            "exp": now + 600, "nbf": now - 10, "iat": now,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

const EXTERNAL_ISSUER: &str = "https://idp.example/{tenantid}/v2.0";

fn external_issuer() -> String {
    EXTERNAL_ISSUER.replace("{tenantid}", TENANT_A)
}

#[tokio::test]
async fn tokens_of_a_configured_external_issuer_are_accepted_beside_the_built_in_ones() {
    let jwks_dir = tempfile::tempdir().unwrap();
    let jwks_file = jwks_dir.path().join("jwks.json");
    let first = Provider::new("ext-1");
    std::fs::write(
        &jwks_file,
        serde_json::json!({"keys": [first.jwk()]}).to_string(),
    )
    .unwrap();
    let file = jwks_file.to_str().unwrap().to_owned();
    let s = TestServer::start_configured(|c| {
        c.oidc = Some(agentry::auth::oidc::OidcConfig {
            issuer: EXTERNAL_ISSUER.into(),
            audiences: vec!["api://agentry".into()],
            jwks: file,
            console: None,
        });
    })
    .await;
    let get = |token: String| {
        s.client
            .get(s.url("/agentRegistry/agentInstances"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get(first.token(&external_issuer(), "api://agentry"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get(s.token()).await.unwrap().status(),
        StatusCode::OK,
        "built-in tokens still work"
    );
    let e = assert_graph_error(
        get(first.token(&external_issuer(), "api://other"))
            .await
            .unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_eq!(
        e["error"]["message"],
        "Access token validation failure. Invalid audience."
    );
    let stranger = Provider::new("ext-1");
    assert_graph_error(
        get(stranger.token(&external_issuer(), "api://agentry"))
            .await
            .unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_graph_error(
        get(first.token("https://elsewhere.example/", "api://agentry"))
            .await
            .unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;

    // The provider rotates: a new kid makes Agentry read the JWKS again.
    let second = Provider::new("ext-2");
    std::fs::write(
        &jwks_file,
        serde_json::json!({"keys": [first.jwk(), second.jwk()]}).to_string(),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        get(second.token(&external_issuer(), "api://agentry"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_jwks_may_come_from_a_url_and_built_in_tokens_may_be_turned_off() {
    let provider = Provider::new("url-key");
    let jwks = serde_json::json!({"keys": [provider.jwk()]}).to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    let idp = axum::Router::new().route("/keys", axum::routing::get(move || async move { jwks }));
    tokio::spawn(async move { axum::serve(listener, idp).await.unwrap() });
    let s = TestServer::start_configured(|c| {
        c.builtin_tokens = false;
        c.oidc = Some(agentry::auth::oidc::OidcConfig {
            issuer: EXTERNAL_ISSUER.into(),
            audiences: vec!["api://agentry".into()],
            jwks: url,
            console: None,
        });
    })
    .await;
    let get = |token: String| {
        s.client
            .get(s.url("/agentRegistry/agentInstances"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get(provider.token(&external_issuer(), "api://agentry"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_graph_error(
        get(s.token()).await.unwrap(),
        401,
        "InvalidAuthenticationToken",
    )
    .await;
}

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

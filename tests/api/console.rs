//! The web console: its page and files as served (media types, the
//! Content-Security-Policy, revalidation, size) and the loopback-only
//! sign-in switch.

use crate::support::*;
use agentry::auth::DEFAULT_TENANT;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::path::Path;

/// The files of the project's `console/` folder.
fn console_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the console folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    s.client
        .get(format!("{}{path}", s.origin))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn the_root_sends_browsers_to_the_console() {
    let s = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/", s.origin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()[header::LOCATION], "/console");
    let page = get(&s, "/").await;
    assert_eq!(page.url().path(), "/console");
    let text = page.text().await.unwrap();
    for needle in [
        concat!("Agentry ", env!("CARGO_PKG_VERSION")),
        "href=\"/openapi.json\"",
        "href=\"/beta/$metadata\"",
        "href=\"/healthz\"",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

#[tokio::test]
async fn every_console_file_is_served_with_its_media_type_a_strict_policy_and_revalidation() {
    let s = TestServer::start().await;
    let mut total = 0;
    let mut paths: Vec<String> = console_files()
        .iter()
        .filter(|f| *f != "index.html")
        .map(|f| format!("/console/{f}"))
        .collect();
    paths.push("/console".to_owned());
    for path in &paths {
        let r = get(&s, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path} is embedded and served");
        let h = r.headers().clone();
        let media = h[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "text/html",
        };
        assert!(media.starts_with(expected), "{path}: {media}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.contains_key("request-id"));
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let body = r.bytes().await.unwrap();
        total += body.len();
        let again = s
            .client
            .get(format!("{}{path}", s.origin))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // Well under the 300 KB the console may weigh compressed, even uncompressed.
    assert!(total < 120_000, "the console weighs {total} bytes");
    let r = get(&s, "/console/nothing.js").await;
    let body = assert_graph_error(r, 404, "NotFound").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing.js")
    );
}

#[tokio::test]
async fn the_console_page_has_no_inline_script_or_style_and_names_no_other_site() {
    let s = TestServer::start().await;
    for file in console_files() {
        let path = match file.as_str() {
            "index.html" => "/console".to_owned(),
            other => format!("/console/{other}"),
        };
        let text = get(&s, &path).await.text().await.unwrap();
        if file.ends_with(".html") {
            for script in text.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap_or_default();
                assert!(tag.contains("src=\"/console/"), "an inline script: {tag}");
            }
            assert!(!text.contains("<style"), "an inline style sheet");
            assert!(!text.contains(" style="), "an inline style");
            let handler = text.match_indices(" on").any(|(i, _)| {
                let rest = &text[i + 3..];
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!handler, "an inline event handler");
        }
        assert!(!text.contains("innerHTML"), "{file} parses markup");
        for url in ["http://", "https://", "//fonts.", "cdn"] {
            let named = text
                .match_indices(url)
                .any(|(i, _)| !text[i..].starts_with("http://www.w3.org/2000/svg"));
            assert!(!named, "{file} names another site ({url})");
        }
    }
}

#[tokio::test]
async fn the_permission_table_is_served_for_the_console() {
    let s = TestServer::start().await;
    let r = get(&s, "/console/permissions.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let table: Value = r.json().await.unwrap();
    let rule = table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "AddMember" && r["reserved"] == "Quarantined")
        .expect("the quarantine rule");
    assert_eq!(
        rule["delegated"],
        json!([
            ["AgentCollection.ReadWrite.Quarantined"],
            ["AgentInstance.Read.All", "AgentInstance.ReadWrite.All"]
        ])
    );
    assert_eq!(
        table["roleNames"]["6b942400-691f-4bf0-9d12-d8a254a2baf5"],
        "Agent Registry Administrator"
    );
}

async fn post_session(s: &TestServer, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = s.client.post(format!("{}/console/session", s.origin));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn signing_in_without_a_password_is_refused_unless_the_switch_is_on() {
    let s = TestServer::start().await;
    let r = post_session(&s, &[]).await;
    let body = assert_graph_error(r, 403, "Forbidden").await;
    assert_eq!(body["error"]["innerError"]["code"], "consoleDevSignInOff");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--console-dev-signin")
    );
}

#[tokio::test]
async fn the_switch_signs_the_console_in_as_the_builtin_admin_on_loopback() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    let r = post_session(&s, &[("origin", &s.origin.clone())]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store, no-cache");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    // The token `agentry token` mints: the built-in admin of the default tenant.
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .json(&instance_body("made-in-the-console", "Made in the console"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["createdBy"], agentry::auth::DEFAULT_USER);
    let r = s
        .req_as(
            DEFAULT_TENANT,
            Method::GET,
            "/agentRegistry/agentInstances/made-in-the-console",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "in the default tenant");
}

#[tokio::test]
async fn the_switch_answers_neither_other_host_names_nor_other_sites() {
    let s = TestServer::start_configured(|c| c.console_dev_signin = true).await;
    let port = s.origin.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("attacker.example:{port}");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("host", &rebound)], "consoleDevSignInForeignHost"),
        (
            &[("origin", "http://attacker.example")],
            "consoleDevSignInCrossOrigin",
        ),
        (
            &[("sec-fetch-site", "cross-site")],
            "consoleDevSignInCrossOrigin",
        ),
    ];
    for (headers, inner) in cases {
        let r = post_session(&s, headers).await;
        let body = assert_graph_error(r, 403, "Forbidden").await;
        assert_eq!(body["error"]["innerError"]["code"], inner, "{headers:?}");
    }
}

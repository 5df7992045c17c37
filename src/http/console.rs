//! The web console: a page and its files (plain HTML, CSS and native ES
//! modules from the project's `console/` folder, embedded in the binary),
//! served at `/console` with a strict `Content-Security-Policy`; `/` sends
//! browsers there. The console calls the Graph API like any client, with a
//! bearer token; `/console/permissions.json` is the permission table, so
//! that it can show which actions the token allows.
//!
//! `/console/config.json` tells the console how it signs in: at the external
//! OpenID Connect issuer when a console client is configured there (the
//! console then runs the code flow with PKCE at that issuer's endpoints, and
//! its policy lets it call that token endpoint, and no other), with local
//! users of the built-in identity provider, with the development switch.
//!
//! `POST /console/session` is the development switch (`console_dev_signin`):
//! it mints the token `agentry token` mints by default (the built-in admin
//! user), and only when the server listens on loopback, for a request that
//! names a loopback host (no DNS rebinding) from the console's own origin.

use super::AppState;
use super::error::{ApiError, DevSignInRefusal};
use super::routes::Console;
use crate::auth::TokenRequest;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::json;
use std::sync::OnceLock;

/// Whether the console may sign in without a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevSignIn {
    /// Not asked for.
    #[default]
    Off,
    /// Asked for, but the server listens beyond loopback or trusts a proxy.
    Refused,
    On,
}

/// Lifetime of a token from `POST /console/session`, as `agentry token`'s default.
pub const SESSION_LIFETIME_SECONDS: i64 = 3600;

/// What every answer of the console carries: scripts and styles from this
/// server only (no inline script, no inline style sheet), calls to this
/// server only, no frames, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The console's policy: [`CONTENT_SECURITY_POLICY`], with calls allowed to
/// the external issuer's token endpoint too (that URL only) when the
/// console signs in there.
pub fn policy(external: Option<&crate::auth::oidc::ExternalSignIn>) -> HeaderValue {
    let source = external.map(|e| e.token_source()).unwrap_or_default();
    if source.is_empty() {
        return HeaderValue::from_static(CONTENT_SECURITY_POLICY);
    }
    let text = CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self';",
        &format!("connect-src 'self' {source};"),
    );
    // The endpoint was checked at start: no spaces, quotes, commas or semicolons.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY))
}

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Console, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Console::Root => on(method, root),
        Console::Frame => on(method, frame),
        Console::Asset => on(method, asset),
        Console::Permissions => on(method, permissions),
        Console::Session => on(method, session),
        Console::Config => on(method, config),
    }
}

/// One embedded file of `console/`.
struct File {
    name: &'static str,
    media: &'static str,
    bytes: &'static [u8],
}

macro_rules! file {
    ($name:literal, $media:literal) => {
        File {
            name: $name,
            media: $media,
            bytes: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

/// Every file of the console; `index.html` is the page at `/console`.
const FILES: &[File] = &[
    file!("index.html", "text/html; charset=utf-8"),
    file!("console.css", "text/css; charset=utf-8"),
    file!("icon.svg", "image/svg+xml"),
    file!("app.js", "text/javascript; charset=utf-8"),
    file!("dom.js", "text/javascript; charset=utf-8"),
    file!("graph.js", "text/javascript; charset=utf-8"),
    file!("session.js", "text/javascript; charset=utf-8"),
    file!("signin.js", "text/javascript; charset=utf-8"),
    file!("agents.js", "text/javascript; charset=utf-8"),
    file!("agent.js", "text/javascript; charset=utf-8"),
    file!("registrations.js", "text/javascript; charset=utf-8"),
    file!("activity.js", "text/javascript; charset=utf-8"),
    file!("copilot.js", "text/javascript; charset=utf-8"),
    file!("developer.js", "text/javascript; charset=utf-8"),
    file!("gate.js", "text/javascript; charset=utf-8"),
    file!("card.js", "text/javascript; charset=utf-8"),
    file!("lists.js", "text/javascript; charset=utf-8"),
    file!("agent-links.js", "text/javascript; charset=utf-8"),
    file!("registry.js", "text/javascript; charset=utf-8"),
    file!("manifests.js", "text/javascript; charset=utf-8"),
    file!("collections.js", "text/javascript; charset=utf-8"),
    file!("packages.js", "text/javascript; charset=utf-8"),
];

/// A file as served: its bytes (the page with the version filled in) and
/// its entity tag.
struct Served {
    name: &'static str,
    media: &'static str,
    bytes: Vec<u8>,
    etag: String,
}

fn served() -> &'static [Served] {
    static SERVED: OnceLock<Vec<Served>> = OnceLock::new();
    SERVED.get_or_init(|| {
        FILES
            .iter()
            .map(|f| {
                let bytes = match f.name {
                    "index.html" => String::from_utf8_lossy(f.bytes)
                        .replace("%VERSION%", env!("CARGO_PKG_VERSION"))
                        .into_bytes(),
                    _ => f.bytes.to_vec(),
                };
                Served {
                    name: f.name,
                    media: f.media,
                    etag: entity_tag(&bytes),
                    bytes,
                }
            })
            .collect()
    })
}

/// A strong tag from the content: a new build with the same file keeps it.
fn entity_tag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `/`: browsers go to the console.
async fn root() -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static("/console"))],
    )
        .into_response()
}

async fn frame(State(app): State<AppState>, headers: HeaderMap) -> Response {
    serve_file(&app, "index.html", &headers)
}

async fn asset(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_file(&app, &name, &headers)
}

fn serve_file(app: &AppState, name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = served().iter().find(|f| f.name == name) else {
        return ApiError::ConsoleFileNotFound(name.to_owned()).into_response();
    };
    let etag = HeaderValue::from_str(&file.etag).expect("a hex tag is a header value");
    let mut r = if matches_tag(headers, &file.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = file.bytes.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(file.media));
        r
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, etag);
    // Kept, but asked about again each time: a new binary brings new files
    // under the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    protect(h, app.console_policy().clone());
    r
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn matches_tag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// The headers that keep the console's pages (and the sign-in page of
/// `http::authorize`) to themselves, with `policy` as their
/// Content-Security-Policy.
pub(super) fn protect(h: &mut HeaderMap, policy: HeaderValue) {
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The permission table (`auth::permissions::RULES`) and the names of the
/// directory roles it names, for the console to tell which actions a token
/// allows and what a disabled one needs.
async fn permissions() -> Response {
    static BODY: OnceLock<String> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        use crate::auth::permissions::{RULES, role_name};
        let rules: Vec<serde_json::Value> = RULES
            .iter()
            .map(|r| {
                json!({
                    "action": format!("{:?}", r.action),
                    "reserved": format!("{:?}", r.reserved),
                    "delegated": r.delegated,
                    "application": r.application,
                    "roles": r.roles,
                })
            })
            .collect();
        let mut roles = serde_json::Map::new();
        for rule in RULES {
            for id in rule.roles {
                if let Some(name) = role_name(id) {
                    roles.insert((*id).to_owned(), name.into());
                }
            }
        }
        json!({"rules": rules, "roleNames": roles}).to_string()
    });
    let mut r = body.clone().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /console/config.json`: how the console signs in. `external` is the
/// issuer's client id, scope and endpoints when the console signs in there
/// (its primary way); `localUsers` whether this server's own tokens are
/// accepted (local users and pasted tokens of `agentry token`);
/// `devSignIn` whether the development switch answers here.
async fn config(State(app): State<AppState>) -> Response {
    let external = app.external_sign_in().map(|e| {
        json!({
            "clientId": e.client_id,
            "scope": e.scope,
            "authorizationEndpoint": e.authorization_endpoint,
            "tokenEndpoint": e.token_endpoint,
        })
    });
    let body = json!({
        "external": external,
        "localUsers": app.builtin_tokens(),
        "devSignIn": app.console_dev_signin() == DevSignIn::On && app.builtin_tokens(),
    });
    let mut r = body.to_string().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `POST /console/session`: a token of the built-in admin user, when the
/// switch is on and the request is the console's own, on a loopback host.
async fn session(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    match app.console_dev_signin() {
        DevSignIn::Off => return Err(ApiError::DevSignInRefused(DevSignInRefusal::Off)),
        DevSignIn::Refused => {
            return Err(ApiError::DevSignInRefused(DevSignInRefusal::NotLoopback));
        }
        DevSignIn::On => {}
    }
    check_local_request(&headers).map_err(ApiError::DevSignInRefused)?;
    let issued_at = crate::clock::wall_now().unix_timestamp();
    let request = TokenRequest::builtin_admin(issued_at, SESSION_LIFETIME_SECONDS);
    let token = app
        .keys()
        .mint(&request)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = json!({
        "token_type": "Bearer",
        "expires_in": SESSION_LIFETIME_SECONDS,
        "access_token": token,
    });
    let mut r = body.to_string().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    Ok(r)
}

/// The request names a loopback host (so a name of another site that
/// resolves to 127.0.0.1 does not reach here) and, when the browser says
/// where it comes from, comes from a page of that same host.
fn check_local_request(headers: &HeaderMap) -> Result<(), DevSignInRefusal> {
    static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    let text = |name: &HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    let host = text(&header::HOST).unwrap_or_default();
    if !loopback_host(host) {
        return Err(DevSignInRefusal::ForeignHost(host.to_owned()));
    }
    if let Some(origin) = text(&header::ORIGIN) {
        let same = ["http://", "https://"].iter().any(|scheme| {
            origin
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
        if !same {
            return Err(DevSignInRefusal::CrossOrigin(origin.to_owned()));
        }
    }
    match text(&SEC_FETCH_SITE) {
        None | Some("same-origin") => Ok(()),
        Some(_) => Err(DevSignInRefusal::CrossOrigin(
            text(&header::ORIGIN).unwrap_or("another site").to_owned(),
        )),
    }
}

/// `localhost`, an address of 127.0.0.0/8 or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn only_loopback_host_names_count_as_local() {
        for local in [
            "localhost",
            "localhost:7171",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:7171",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:7171",
        ] {
            assert!(loopback_host(local), "{local}");
        }
        for foreign in [
            "",
            "example.com",
            "localhost.example.com:7171",
            "127.0.0.1.nip.io",
            "10.0.0.1:7171",
            "[::]:7171",
            "0.0.0.0:7171",
        ] {
            assert!(!loopback_host(foreign), "{foreign}");
        }
    }

    #[test]
    fn the_session_is_answered_only_to_the_consoles_own_origin() {
        let ok = [
            headers(&[("host", "127.0.0.1:7171")]),
            headers(&[
                ("host", "127.0.0.1:7171"),
                ("origin", "http://127.0.0.1:7171"),
            ]),
            headers(&[
                ("host", "localhost:7171"),
                ("origin", "http://localhost:7171"),
                ("sec-fetch-site", "same-origin"),
            ]),
        ];
        for h in ok {
            assert_eq!(check_local_request(&h), Ok(()), "{h:?}");
        }
        let refused = [
            headers(&[("host", "rebound.example:7171")]),
            headers(&[
                ("host", "127.0.0.1:7171"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:7171"), ("origin", "null")]),
            headers(&[
                ("host", "127.0.0.1:7171"),
                ("origin", "http://127.0.0.1:9999"),
            ]),
            headers(&[("host", "127.0.0.1:7171"), ("sec-fetch-site", "cross-site")]),
            headers(&[]),
        ];
        for h in refused {
            assert!(check_local_request(&h).is_err(), "{h:?}");
        }
    }

    #[test]
    fn if_none_match_revalidates_by_tag() {
        let tag = entity_tag(b"x");
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 26);
        let with = |v: String| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&v).unwrap());
            h
        };
        assert!(matches_tag(&with(tag.clone()), &tag));
        assert!(matches_tag(&with(format!("\"other\", W/{tag}")), &tag));
        assert!(matches_tag(&with("*".into()), &tag));
        assert!(!matches_tag(&with("\"other\"".into()), &tag));
        assert!(!matches_tag(&HeaderMap::new(), &tag));
    }

    #[test]
    fn the_page_names_the_version_and_every_file_is_embedded_once() {
        let page = served().iter().find(|f| f.name == "index.html").unwrap();
        let text = String::from_utf8_lossy(&page.bytes);
        assert!(text.contains(env!("CARGO_PKG_VERSION")));
        assert!(!text.contains("%VERSION%"));
        let mut names: Vec<&str> = FILES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FILES.len());
    }
}

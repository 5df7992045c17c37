//! The built-in identity provider, enough for the OAuth 2.0 client-credentials
//! flow of Graph clients: OpenID discovery, the JWKS of the signing keys, and
//! a token endpoint for applications registered with `agentry app add`.
//! Errors here follow the OAuth 2.0 shape (`error`, `error_description`, …),
//! as Entra's token endpoint answers, not Graph's envelope.

use super::AppState;
use super::extract::Meta;
use super::request::RequestMeta;
use super::routes::Identity;
use crate::auth::{CallerKind, GRAPH_APP_ID, GRAPH_AUDIENCE, TokenRequest};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use base64::Engine;
use serde_json::json;

/// Lifetime of tokens from the token endpoint, as Entra's default.
const TOKEN_LIFETIME: i64 = 3599;

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Identity, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Identity::Discovery => on(method, discovery),
        Identity::Keys => on(method, jwks),
        Identity::Token => on(method, token),
    }
}

async fn discovery(Meta(meta): Meta, Path(tenant): Path<String>) -> Response {
    let base = format!("{}/{tenant}", meta.origin);
    let body = json!({
        "issuer": format!("{base}/v2.0"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": [format!("{GRAPH_AUDIENCE}/.default")],
        "tenant_region_scope": null,
        "cloud_instance_name": "agentry",
    });
    plain(StatusCode::OK, &body)
}

async fn jwks(State(app): State<AppState>) -> Response {
    plain(StatusCode::OK, &json!({ "keys": app.keys().jwks() }))
}

fn plain(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    r
}

/// Why the token endpoint refused, with Entra's error and AADSTS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OAuthError {
    NotForm,
    UnsupportedGrant,
    MissingClient,
    UnknownClient,
    BadSecret,
    WrongTenant,
    BadScope,
    Unavailable,
}

impl OAuthError {
    fn parts(self) -> (StatusCode, &'static str, u32, &'static str) {
        use StatusCode as S;
        match self {
            OAuthError::NotForm => (
                S::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must be application/x-www-form-urlencoded.",
            ),
            OAuthError::UnsupportedGrant => (
                S::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type; only client_credentials is supported.",
            ),
            OAuthError::MissingClient => (
                S::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the parameters 'client_id' and 'client_secret'.",
            ),
            OAuthError::UnknownClient => (
                S::BAD_REQUEST,
                "unauthorized_client",
                700016,
                "Application with the given identifier was not found in the directory.",
            ),
            OAuthError::BadSecret => (
                S::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            ),
            OAuthError::WrongTenant => (
                S::BAD_REQUEST,
                "unauthorized_client",
                700016,
                "Application was not found in the tenant named in the URL.",
            ),
            OAuthError::BadScope => (
                S::BAD_REQUEST,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (https://graph.microsoft.com/.default).",
            ),
            OAuthError::Unavailable => (
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                90033,
                "The service is temporarily unavailable.",
            ),
        }
    }

    fn response(self, meta: &RequestMeta, now: time::OffsetDateTime) -> Response {
        let (status, error, code, description) = self.parts();
        let body = json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {}", meta.request_id),
            "error_codes": [code],
            "timestamp": crate::clock::error_timestamp(now) + "Z",
            "trace_id": meta.request_id,
            "correlation_id": meta.client_request_id.clone().unwrap_or_else(|| meta.request_id.clone()),
        });
        let mut r = plain(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"agentry\""),
            );
        }
        r
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `client_secret_basic`: `Authorization: Basic base64(id:secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(id), decode(secret)))
}

fn graph_default_scope(scope: &str) -> bool {
    let resources = [GRAPH_AUDIENCE, GRAPH_APP_ID];
    scope.split_whitespace().any(|s| {
        s.strip_suffix("/.default").is_some_and(|r| {
            resources
                .iter()
                .any(|g| g.eq_ignore_ascii_case(r.trim_end_matches('/')))
        })
    })
}

async fn token(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match issue(&app, &tenant, &headers, &body).await {
        Ok(token) => {
            let body = json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            });
            plain(StatusCode::OK, &body)
        }
        Err(e) => e.response(&meta, app.time()),
    }
}

async fn issue(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type || body.len() > app.max_body_bytes() {
        return Err(OAuthError::NotForm);
    }
    let fields = form(body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if field("grant_type").as_deref() != Some("client_credentials") {
        return Err(OAuthError::UnsupportedGrant);
    }
    let (client_id, secret) = match (field("client_id"), field("client_secret")) {
        (Some(id), Some(secret)) => (id, secret),
        _ => basic_credentials(headers).ok_or(OAuthError::MissingClient)?,
    };
    if !field("scope").is_some_and(|s| graph_default_scope(&s)) {
        return Err(OAuthError::BadScope);
    }
    if client_id.contains('\0') {
        // No registration holds one, and PostgreSQL text cannot be asked for it.
        return Err(OAuthError::UnknownClient);
    }
    let registration = app
        .store()
        .get_app(&client_id)
        .await
        .map_err(|_| OAuthError::Unavailable)?
        .ok_or(OAuthError::UnknownClient)?;
    if !registration.accepts(&secret) {
        return Err(OAuthError::BadSecret);
    }
    if !tenant.eq_ignore_ascii_case(&registration.tenant_id) {
        return Err(OAuthError::WrongTenant);
    }
    let request = TokenRequest {
        tenant_id: registration.tenant_id.clone(),
        kind: CallerKind::Application,
        subject: registration.client_id.clone(),
        scopes: vec![],
        roles: registration.roles.clone(),
        wids: vec![],
        issued_at: crate::clock::wall_now().unix_timestamp(),
        expires_in: TOKEN_LIFETIME,
    };
    app.keys()
        .mint(&request)
        .map_err(|_| OAuthError::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_graph_default_scopes_are_accepted() {
        for ok in [
            "https://graph.microsoft.com/.default",
            "00000003-0000-0000-c000-000000000000/.default",
            "openid https://graph.microsoft.com//.default",
        ] {
            assert!(graph_default_scope(ok), "{ok}");
        }
        for bad in [
            "https://graph.microsoft.com/User.Read",
            "api://other/.default",
            "",
        ] {
            assert!(!graph_default_scope(bad), "{bad}");
        }
    }

    #[test]
    fn form_bodies_and_basic_credentials_decode() {
        let f = form(b"grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=a+b%2Bc");
        assert_eq!(f[1].1, "https://graph.microsoft.com/.default");
        assert_eq!(f[2].1, "a b+c");
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic aWQ6c2VjcmV0"),
        );
        assert_eq!(basic_credentials(&h), Some(("id".into(), "secret".into())));
    }
}

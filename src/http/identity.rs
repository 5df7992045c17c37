//! The built-in identity provider: OpenID discovery, the JWKS of the signing
//! keys, and the token endpoint, for the OAuth 2.0 client-credentials flow of
//! applications registered with `agentry app add` and for the
//! authorization-code flow with PKCE of the web console, whose sign-in page
//! is [`super::authorize`]. Errors here follow the OAuth 2.0 shape (`error`,
//! `error_description`, …), as Entra's token endpoint answers, not Graph's
//! envelope.

use super::AppState;
use super::extract::Meta;
use super::request::RequestMeta;
use super::routes::Identity;
use crate::auth::{CONSOLE_CLIENT_ID, CallerKind, GRAPH_APP_ID, GRAPH_AUDIENCE, TokenRequest};
use crate::domain::users::{Redeemed, code_key, verifier_matches};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use base64::Engine;
use serde_json::json;

/// Lifetime of tokens from the token endpoint, as Entra's default.
pub(super) const TOKEN_LIFETIME: i64 = 3599;

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Identity, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Identity::Discovery => on(method, discovery),
        Identity::Keys => on(method, jwks),
        Identity::Token => on(method, token),
        Identity::Authorize => on(method, super::authorize::page),
        Identity::SignIn => on(method, super::authorize::sign_in),
    }
}

async fn discovery(Meta(meta): Meta, Path(tenant): Path<String>) -> Response {
    let base = format!("{}/{tenant}", meta.origin);
    let body = json!({
        "issuer": format!("{base}/v2.0"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
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

pub(super) fn plain(status: StatusCode, body: &serde_json::Value) -> Response {
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

/// Why the identity provider refused, with Entra's error and AADSTS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OAuthError {
    NotForm,
    UnsupportedGrant,
    MissingClient,
    UnknownClient,
    BadSecret,
    WrongTenant,
    BadScope,
    Unavailable,
    /// A parameter the request must have.
    Missing(&'static str),
    /// Not a redirect URI of the client (the console's is `{origin}/console/`).
    BadRedirectUri,
    /// A single-page application's code redeemed without `Origin`: not by a browser.
    SpaWithoutOrigin,
    UnsupportedResponseType,
    /// The code flow without a PKCE challenge.
    MissingChallenge,
    /// A challenge method other than S256, or a challenge of another shape.
    BadChallenge,
    /// The code flow's scope names no Graph permission.
    BadUserScope,
    /// The sign-in form, sent from a page of another site.
    CrossSite,
    BadCode,
    ExpiredCode,
    CodeRedeemed,
    CodeOfAnotherClient,
    CodeOfAnotherTenant,
    RedirectMismatch,
    VerifierMismatch,
}

impl OAuthError {
    fn parts(self) -> (StatusCode, &'static str, u32, String) {
        use StatusCode as S;
        let (status, error, code, description) = match self {
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
                "The app requested an unsupported grant type; only client_credentials and authorization_code are supported.",
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
            OAuthError::Missing(name) => {
                return (
                    S::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    format!("The request must contain the following parameter: '{name}'."),
                );
            }
            OAuthError::BadRedirectUri => (
                S::BAD_REQUEST,
                "invalid_request",
                50011,
                "The redirect URI specified in the request does not match the redirect URIs configured for the application (the console's is this server's /console/).",
            ),
            OAuthError::SpaWithoutOrigin => (
                S::BAD_REQUEST,
                "invalid_request",
                9002327,
                "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
            ),
            OAuthError::UnsupportedResponseType => (
                S::BAD_REQUEST,
                "unsupported_response_type",
                700054,
                "The response_type must be 'code'.",
            ),
            OAuthError::MissingChallenge => (
                S::BAD_REQUEST,
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required: send code_challenge and code_challenge_method=S256.",
            ),
            OAuthError::BadChallenge => (
                S::BAD_REQUEST,
                "invalid_request",
                501491,
                "Only the S256 code_challenge_method is supported, with a code_challenge of 43 base64url characters.",
            ),
            OAuthError::BadUserScope => (
                S::BAD_REQUEST,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid: ask for https://graph.microsoft.com/.default.",
            ),
            OAuthError::CrossSite => (
                S::BAD_REQUEST,
                "invalid_request",
                90023,
                "The sign-in form must be sent from its own page.",
            ),
            OAuthError::BadCode => (
                S::BAD_REQUEST,
                "invalid_grant",
                70000,
                "The provided value for the 'code' parameter is not valid.",
            ),
            OAuthError::ExpiredCode => (
                S::BAD_REQUEST,
                "invalid_grant",
                70008,
                "The provided authorization code has expired.",
            ),
            OAuthError::CodeRedeemed => (
                S::BAD_REQUEST,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
            ),
            OAuthError::CodeOfAnotherClient => (
                S::BAD_REQUEST,
                "invalid_grant",
                70000,
                "The provided authorization code was issued to another client.",
            ),
            OAuthError::CodeOfAnotherTenant => (
                S::BAD_REQUEST,
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            ),
            OAuthError::RedirectMismatch => (
                S::BAD_REQUEST,
                "invalid_grant",
                500112,
                "The reply address does not match the reply address provided when requesting the authorization code.",
            ),
            OAuthError::VerifierMismatch => (
                S::BAD_REQUEST,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ),
        };
        (status, error, code, description.to_owned())
    }

    pub(super) fn response(self, meta: &RequestMeta, now: time::OffsetDateTime) -> Response {
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
pub(super) fn form(body: &[u8]) -> Vec<(String, String)> {
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

pub(super) fn graph_default_scope(scope: &str) -> bool {
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
    let mut r = answer(&app, &meta, &tenant, &headers, &body).await;
    if let Some(origin) = spa_origin(&app, &headers, &body).await {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The `Origin` of a browser page redeeming a code of a single-page
/// application, when it is the origin of one of the application's redirect
/// URIs: such a page may read the answer (CORS), as Entra lets it.
async fn spa_origin(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let fields = form(body);
    if field(&fields, "grant_type").as_deref() != Some("authorization_code") {
        return None;
    }
    let client_id = field(&fields, "client_id").filter(|id| !id.contains('\0'))?;
    let registration = app.store().get_app(&client_id).await.ok()??;
    registration
        .spa_origin(origin.to_str().ok()?)
        .then(|| origin.clone())
}

async fn answer(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match issue(app, tenant, headers, body).await {
        Ok(issued) => {
            let mut body = json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": issued.token,
            });
            if let Some(scope) = issued.scope {
                body["scope"] = scope.into();
            }
            plain(StatusCode::OK, &body)
        }
        Err(e) => e.response(meta, app.time()),
    }
}

/// A token and, for a user's, the permissions it grants (`scope`).
struct Issued {
    token: String,
    scope: Option<String>,
}

/// Whether the request's body is a form (of an acceptable size).
pub(super) fn is_form(app: &AppState, headers: &HeaderMap, body: &[u8]) -> bool {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    form_type && body.len() <= app.max_body_bytes()
}

/// The value of the first field `name` of a form.
pub(super) fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

async fn issue(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Issued, OAuthError> {
    if !is_form(app, headers, body) {
        return Err(OAuthError::NotForm);
    }
    let fields = form(body);
    match field(&fields, "grant_type").as_deref() {
        Some("client_credentials") => client_credentials(app, tenant, headers, &fields).await,
        Some("authorization_code") => authorization_code(app, tenant, headers, &fields).await,
        _ => Err(OAuthError::UnsupportedGrant),
    }
}

async fn client_credentials(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Result<Issued, OAuthError> {
    let field = |name: &str| field(fields, name);
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
    let token = app
        .keys()
        .mint(&request)
        .map_err(|_| OAuthError::Unavailable)?;
    Ok(Issued { token, scope: None })
}

/// Redeems a code of a sign-in (`authorize`) for a delegated token of its
/// user: the code once, before it expires, from the client and with the
/// redirect URI it was issued for, with the PKCE verifier of its challenge.
/// The client is the console, or a registered single-page application
/// (public: no secret), whose codes only a browser redeems (with `Origin`),
/// as Entra has it. The user's tokens carry every delegated permission
/// Agentry checks (as `agentry token`'s) and the user's directory roles.
async fn authorization_code(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Result<Issued, OAuthError> {
    let need = |name: &'static str| field(fields, name).ok_or(OAuthError::Missing(name));
    let client_id = need("client_id")?;
    if client_id != CONSOLE_CLIENT_ID {
        let known = !client_id.contains('\0')
            && app
                .store()
                .get_app(&client_id)
                .await
                .map_err(|_| OAuthError::Unavailable)?
                .is_some_and(|a| !a.redirect_uris.is_empty());
        if !known {
            return Err(OAuthError::UnknownClient);
        }
        if !headers.contains_key(header::ORIGIN) {
            return Err(OAuthError::SpaWithoutOrigin);
        }
    }
    let code = need("code")?;
    let redirect_uri = need("redirect_uri")?;
    let verifier = need("code_verifier")?;
    if code.contains('\0') || code.len() > 256 {
        return Err(OAuthError::BadCode);
    }
    let redeemed = app
        .store()
        .redeem_code(&code_key(&code))
        .await
        .map_err(|_| OAuthError::Unavailable)?;
    let issued = match redeemed {
        Redeemed::Fresh(c) => c,
        Redeemed::Again => return Err(OAuthError::CodeRedeemed),
        Redeemed::Unknown => return Err(OAuthError::BadCode),
    };
    if issued.expires_at <= app.now() {
        return Err(OAuthError::ExpiredCode);
    }
    if !issued.tenant_id.eq_ignore_ascii_case(tenant) {
        return Err(OAuthError::CodeOfAnotherTenant);
    }
    if issued.client_id != client_id {
        return Err(OAuthError::CodeOfAnotherClient);
    }
    if issued.redirect_uri != redirect_uri {
        return Err(OAuthError::RedirectMismatch);
    }
    if !verifier_matches(&verifier, &issued.code_challenge) {
        return Err(OAuthError::VerifierMismatch);
    }
    let scopes: Vec<String> = crate::auth::permissions::all_delegated_scopes()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let request = TokenRequest {
        tenant_id: issued.tenant_id.clone(),
        kind: CallerKind::Delegated,
        subject: issued.user_id.clone(),
        scopes: scopes.clone(),
        roles: vec![],
        wids: issued.roles.clone(),
        issued_at: crate::clock::wall_now().unix_timestamp(),
        expires_in: TOKEN_LIFETIME,
    };
    let token = app
        .keys()
        .mint_signed_in(&request, &issued.client_id, &issued.user_name)
        .map_err(|_| OAuthError::Unavailable)?;
    Ok(Issued {
        token,
        scope: Some(scopes.join(" ")),
    })
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

//! The sign-in page of the built-in identity provider's authorization-code
//! flow with PKCE (RFC 6749 §4.1, RFC 7636), for the web console and the
//! local users of `agentry user add`.
//!
//! `GET /{tenant}/oauth2/v2.0/authorize` checks the request (a known client
//! and one of its redirect URIs: the console's own id with `{origin}/console/`,
//! or an application registered in the tenant with `agentry app add
//! --redirect-uri`, a single-page application; `response_type=code`, a
//! Graph scope, an S256 challenge) and serves a small page rendered here: a
//! form, no script, under a policy that allows this server's style sheet
//! and posting to this server only. `POST` of the form checks the password
//! and answers 303: to the redirect URI with a `code` (single-use, 60 s,
//! bound to the client, the redirect URI and the challenge; see
//! `identity::authorization_code`) and the `state`, or back to the page.
//!
//! A failed sign-in looks the same whether the name is unknown, the
//! password wrong or the account locked (and takes as long: a password
//! check runs in each case); the 5th failure in a row locks the account for
//! 15 minutes, counted by the store so that replicas and restarts agree.
//! A request of an unknown client, or with a redirect URI its client did not
//! register, is refused in the OAuth error shape, as the token endpoint
//! refuses: nothing can be sent to a redirect URI not yet trusted.

use super::AppState;
use super::extract::Meta;
use super::identity::{OAuthError, field, form, graph_default_scope, is_form};
use super::request::RequestMeta;
use crate::auth::CONSOLE_CLIENT_ID;
use crate::domain::apps::AppRegistration;
use crate::domain::users::{
    self, AuthorizationCode, CODE_LIFETIME, LOCKOUT, MAX_FAILED_SIGN_INS, verify_nothing,
    well_formed_challenge,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The sign-in page's policy: this server's style sheet and icon, the form
/// posted to this server only, no script at all, no frames. For a
/// registered application, `form-action` names its redirect URI too, where
/// the form's answer sends the browser (browsers hold redirects of a form
/// to the policy).
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What a failed sign-in says, whatever the reason.
const FAILED: &str = "Your account or password is incorrect, or the account is locked \
     after 5 failed sign-ins in a row (for 15 minutes). Try again, or later.";

/// Characters kept as they are in a query value (RFC 3986's unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An authorization request of the console or of a registered single-page
/// application.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    client_id: String,
    /// The application's name, for the page; `None` for the console.
    client_name: Option<String>,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    login_hint: Option<String>,
}

impl Request {
    /// Checks the parameters (from the query or the form) in the order
    /// Entra does: the client and where to answer first, as nothing can be
    /// sent back to a redirect URI not yet trusted.
    /// `registered` is the application named by `client_id` in this tenant,
    /// if there is one (the console is no registration).
    fn parse(
        fields: &[(String, String)],
        origin: &str,
        registered: Option<&AppRegistration>,
    ) -> Result<Request, OAuthError> {
        let need = |name: &'static str| field(fields, name).ok_or(OAuthError::Missing(name));
        let client_id = need("client_id")?;
        let redirect_uri;
        let client_name;
        if client_id == CONSOLE_CLIENT_ID {
            redirect_uri = need("redirect_uri")?;
            if redirect_uri != format!("{origin}/console/") {
                return Err(OAuthError::BadRedirectUri);
            }
            client_name = None;
        } else {
            let app = registered
                .filter(|a| a.client_id == client_id && !a.redirect_uris.is_empty())
                .ok_or(OAuthError::UnknownClient)?;
            redirect_uri = need("redirect_uri")?;
            if !app.redirects_to(&redirect_uri) {
                return Err(OAuthError::BadRedirectUri);
            }
            client_name = Some(app.display_name.clone());
        }
        if need("response_type")? != "code" {
            return Err(OAuthError::UnsupportedResponseType);
        }
        let scope = need("scope")?;
        if !graph_default_scope(&scope) {
            return Err(OAuthError::BadUserScope);
        }
        let code_challenge = field(fields, "code_challenge").ok_or(OAuthError::MissingChallenge)?;
        let method = field(fields, "code_challenge_method");
        if method.as_deref() != Some("S256") || !well_formed_challenge(&code_challenge) {
            return Err(OAuthError::BadChallenge);
        }
        Ok(Request {
            client_id,
            client_name,
            redirect_uri,
            scope,
            state: field(fields, "state"),
            code_challenge,
            login_hint: field(fields, "login_hint")
                .filter(|h| h.chars().count() <= users::MAX_NAME_CHARS),
        })
    }

    /// The request's parameters as a query string (for the page again).
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", self.scope.as_str()),
            ("code_challenge", self.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.extend_from_slice(extra);
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in page.
pub(super) async fn page(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Path(tenant): Path<String>,
    uri: Uri,
) -> Response {
    let fields = form(uri.query().unwrap_or_default().as_bytes());
    match parse_request(&app, &meta, &tenant, &fields).await {
        Ok(request) => {
            let failed = field(&fields, "signin").as_deref() == Some("failed");
            html_page(&render(&tenant, &request, failed), page_policy(&request))
        }
        Err(e) => e.response(&meta, app.time()),
    }
}

/// The request, its client looked up when it is not the console: an
/// application of `tenant` with redirect URIs (a single-page application).
async fn parse_request(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    fields: &[(String, String)],
) -> Result<Request, OAuthError> {
    let registered = match field(fields, "client_id") {
        Some(id) if id != CONSOLE_CLIENT_ID && !id.contains('\0') => app
            .store()
            .get_app(&id)
            .await
            .map_err(|_| OAuthError::Unavailable)?
            .filter(|a| a.tenant_id.eq_ignore_ascii_case(tenant)),
        _ => None,
    };
    Request::parse(fields, &meta.origin, registered.as_ref())
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the form, signed in or not.
pub(super) async fn sign_in(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match check_sign_in(&app, &meta, &tenant, &headers, &body).await {
        Ok(location) => see_other(&location),
        Err(e) => e.response(&meta, app.time()),
    }
}

/// Where the browser goes next: the redirect URI with a code, or the page
/// again, saying the sign-in failed.
async fn check_sign_in(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, OAuthError> {
    static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    if headers
        .get(&SEC_FETCH_SITE)
        .is_some_and(|site| site != "same-origin")
    {
        return Err(OAuthError::CrossSite);
    }
    if !is_form(app, headers, body) {
        return Err(OAuthError::NotForm);
    }
    let fields = form(body);
    let request = parse_request(app, meta, tenant, &fields).await?;
    let name = field(&fields, "username").unwrap_or_default();
    let password = field(&fields, "password").unwrap_or_default();
    match authenticate(app, tenant, &name, password).await? {
        Some(user) => {
            let (code, key) = users::new_code();
            let now = app.time();
            let issued = AuthorizationCode {
                tenant_id: user.tenant_id,
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                user_id: user.id,
                user_name: user.user_name,
                roles: user.roles,
                expires_at: crate::clock::entity_timestamp(now + CODE_LIFETIME),
            };
            app.store()
                .save_code(&key, issued, &crate::clock::entity_timestamp(now))
                .await
                .map_err(|_| OAuthError::Unavailable)?;
            // A registered redirect URI may have a query of its own.
            let joint = if request.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            let mut location = format!(
                "{}{joint}code={}",
                request.redirect_uri,
                utf8_percent_encode(&code, QUERY_VALUE)
            );
            if let Some(state) = &request.state {
                location.push_str(&format!(
                    "&state={}",
                    utf8_percent_encode(state, QUERY_VALUE)
                ));
            }
            Ok(location)
        }
        None => {
            let hint = name.chars().take(users::MAX_NAME_CHARS).collect::<String>();
            Ok(format!(
                "authorize?{}",
                request.query(&[("login_hint", &hint), ("signin", "failed")])
            ))
        }
    }
}

/// The user, when `password` is theirs and the account is not locked;
/// `None` for any failure, each counted against an existing account.
async fn authenticate(
    app: &AppState,
    tenant: &str,
    name: &str,
    password: String,
) -> Result<Option<users::LocalUser>, OAuthError> {
    let unavailable = |_| OAuthError::Unavailable;
    let found = if name.is_empty() || name.contains('\0') {
        None
    } else {
        app.store()
            .get_user(tenant, name)
            .await
            .map_err(unavailable)?
    };
    let now = app.now();
    let Some(user) = found.filter(|u| !u.locked_at(&now)) else {
        // No account, or a locked one: the same work, the same answer.
        let _ = tokio::task::spawn_blocking(move || verify_nothing(&password)).await;
        return Ok(None);
    };
    let (checked, accepted) = tokio::task::spawn_blocking(move || {
        let ok = user.accepts(&password);
        (user, ok)
    })
    .await
    .map_err(|_| OAuthError::Unavailable)?;
    if accepted {
        app.store()
            .record_sign_in(tenant, name)
            .await
            .map_err(unavailable)?;
        return Ok(Some(checked));
    }
    let lock_until = crate::clock::entity_timestamp(app.time() + LOCKOUT);
    let after = app
        .store()
        .record_failed_sign_in(tenant, name, MAX_FAILED_SIGN_INS, &lock_until)
        .await
        .map_err(unavailable)?;
    if after.is_some_and(|u| u.locked_at(&now)) {
        tracing::warn!(
            tenant,
            user = %checked.id,
            until = %lock_until,
            "a local user is locked after {MAX_FAILED_SIGN_INS} failed sign-ins in a row"
        );
    }
    Ok(None)
}

/// A 303 to `location`, kept by no cache.
fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The page's policy for `request`.
fn page_policy(request: &Request) -> HeaderValue {
    if request.client_name.is_none() {
        return HeaderValue::from_static(PAGE_POLICY);
    }
    // A registered redirect URI holds no space, quote, comma or semicolon.
    let text = PAGE_POLICY.replace(
        "form-action 'self';",
        &format!("form-action 'self' {};", request.redirect_uri),
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(PAGE_POLICY))
}

fn html_page(html: &str, policy: HeaderValue) -> Response {
    let mut r = html.to_owned().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    super::console::protect(h, policy);
    r
}

/// Text for HTML, in an element or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page: the form, its hidden fields the request's parameters.
fn render(tenant: &str, request: &Request, failed: bool) -> String {
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape(value)
        )
    };
    let mut fields = String::new();
    fields.push_str(&hidden("response_type", "code"));
    fields.push_str(&hidden("client_id", &request.client_id));
    fields.push_str(&hidden("redirect_uri", &request.redirect_uri));
    fields.push_str(&hidden("scope", &request.scope));
    fields.push_str(&hidden("code_challenge", &request.code_challenge));
    fields.push_str(&hidden("code_challenge_method", "S256"));
    if let Some(state) = &request.state {
        fields.push_str(&hidden("state", state));
    }
    let hint = request.login_hint.as_deref().unwrap_or_default();
    let (name_focus, password_focus) = if hint.is_empty() {
        (" autofocus", "")
    } else {
        ("", " autofocus")
    };
    let alert = if failed {
        format!(
            "<div class=\"alert\" role=\"alert\" id=\"signin-error\"><p class=\"title\">Not signed in</p>\
             <p class=\"message\">{}</p></div>\n",
            escape(FAILED)
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<meta name=\"color-scheme\" content=\"light\">
<title>Sign in · Agentry</title>
<link rel=\"icon\" href=\"/console/icon.svg\" type=\"image/svg+xml\">
<link rel=\"stylesheet\" href=\"/console/console.css\">
</head>
<body>
<header class=\"bar\"><span class=\"brand\"><img src=\"/console/icon.svg\" alt=\"\" width=\"24\" height=\"24\"><span>Agentry</span></span></header>
<main id=\"main\">
<h1>Sign in to {client}</h1>
<p>With a local user of tenant <code>{tenant}</code> (added with <code>agentry user add</code>).</p>
{alert}<form class=\"panel\" id=\"signin-form\" method=\"post\" action=\"authorize\">
{fields}<div class=\"field\"><label for=\"username\">User name</label>
<input id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required value=\"{hint}\"{name_focus}></div>
<div class=\"field\"><label for=\"password\">Password</label>
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{password_focus}></div>
<div class=\"actions\"><button type=\"submit\" class=\"primary\" id=\"signin-submit\">Sign in</button>
<a class=\"button\" href=\"/console\">Cancel</a></div>
</form>
</main>
</body>
</html>
",
        tenant = escape(tenant),
        hint = escape(hint),
        client = escape(request.client_name.as_deref().unwrap_or("the Agentry console")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:7171";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn valid() -> Vec<(&'static str, &'static str)> {
        vec![
            ("client_id", CONSOLE_CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:7171/console/"),
            ("response_type", "code"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("state", "s t&a<te"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    }

    fn without(name: &str) -> Vec<(String, String)> {
        fields(
            &valid()
                .into_iter()
                .filter(|(k, _)| *k != name)
                .collect::<Vec<_>>(),
        )
    }

    fn with(name: &str, value: &str) -> Vec<(String, String)> {
        let mut f = without(name);
        f.push((name.to_owned(), value.to_owned()));
        f
    }

    #[test]
    fn only_the_consoles_code_requests_with_an_s256_challenge_are_accepted() {
        let r = Request::parse(&fields(&valid()), ORIGIN, None).unwrap();
        assert_eq!(r.state.as_deref(), Some("s t&a<te"));
        let refused = [
            (without("client_id"), OAuthError::Missing("client_id")),
            (with("client_id", "other"), OAuthError::UnknownClient),
            (
                with("redirect_uri", "http://evil.example/console/"),
                OAuthError::BadRedirectUri,
            ),
            (
                with("redirect_uri", "http://127.0.0.1:7171/console"),
                OAuthError::BadRedirectUri,
            ),
            (
                with("response_type", "token"),
                OAuthError::UnsupportedResponseType,
            ),
            (with("scope", "openid"), OAuthError::BadUserScope),
            (without("code_challenge"), OAuthError::MissingChallenge),
            (without("code_challenge_method"), OAuthError::BadChallenge),
            (
                with("code_challenge_method", "plain"),
                OAuthError::BadChallenge,
            ),
            (with("code_challenge", "short"), OAuthError::BadChallenge),
        ];
        for (f, error) in refused {
            assert_eq!(Request::parse(&f, ORIGIN, None), Err(error), "{f:?}");
        }
    }

    #[test]
    fn a_registered_application_is_answered_only_at_its_own_redirect_uris() {
        let mut spa =
            AppRegistration::create("t", "Contoso <portal>", vec![], "now".into()).registration;
        spa.redirect_uris = vec!["https://portal.contoso.example/signed-in".into()];
        let mine = |changes: &[(&str, &str)]| {
            let mut f = with("client_id", &spa.client_id);
            for (k, v) in changes {
                f.retain(|(name, _)| name != k);
                f.push(((*k).to_owned(), (*v).to_owned()));
            }
            f
        };
        let ok = mine(&[("redirect_uri", "https://portal.contoso.example/signed-in")]);
        let r = Request::parse(&ok, ORIGIN, Some(&spa)).unwrap();
        assert_eq!(r.client_id, spa.client_id);
        assert!(render("t", &r, false).contains("Sign in to Contoso &lt;portal&gt;"));
        assert_eq!(
            Request::parse(&mine(&[]), ORIGIN, Some(&spa)),
            Err(OAuthError::BadRedirectUri),
            "not the console's redirect URI either"
        );
        assert_eq!(
            Request::parse(&ok, ORIGIN, None),
            Err(OAuthError::UnknownClient),
            "no registration of that id in the tenant"
        );
        let mut confidential = spa.clone();
        confidential.redirect_uris.clear();
        assert_eq!(
            Request::parse(&ok, ORIGIN, Some(&confidential)),
            Err(OAuthError::UnknownClient),
            "an application without redirect URIs signs no one in"
        );
    }

    #[test]
    fn the_page_escapes_what_the_request_carries_and_keeps_it_for_the_form() {
        let mut r = Request::parse(&fields(&valid()), ORIGIN, None).unwrap();
        r.login_hint = Some("\"><script>".into());
        let html = render("t<1>", &r, true);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("value=\"s t&amp;a&lt;te\""), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<code>t&lt;1&gt;</code>"), "{html}");
        assert!(html.contains("id=\"signin-error\""));
        assert!(!render("t", &r, false).contains("signin-error"));
        let query = r.query(&[("signin", "failed")]);
        let back = form(query.as_bytes());
        assert_eq!(Request::parse(&back, ORIGIN, None).unwrap().state, r.state);
        assert_eq!(field(&back, "signin").as_deref(), Some("failed"));
    }
}

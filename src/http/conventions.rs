//! What every response gets, whatever the route: a `request-id`, the echoed
//! `client-request-id`, authentication of `/beta`, `/v1.0` and `/_agentry`
//! requests, errors rendered as the Graph envelope, and one log line.
//!
//! The same layer applies throttling and fault rules, rewrites OData key
//! segments and answers conditional reads: one layer rather than one each,
//! since axum boxes and clones a service per layer and request.

use super::AppState;
use super::error::{ApiError, ErrorReport, envelope};
use super::faults;
use super::journal;
use super::request::{RequestMeta, under_root};
use super::routes::route_label;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

pub async fn graph_conventions(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let meta = Arc::new(RequestMeta::new(
        req.headers(),
        req.uri().path(),
        app.trust_proxy(),
        app.scheme(),
    ));
    let method = req.method().clone();
    // As the client sent it, for the log line, the journal and fault rules;
    // cloning a parsed URI shares its bytes.
    let uri = req.uri().clone();
    let path = uri.path();
    if let Some(rewritten) = super::routes::rewrite_key_segments(&uri) {
        *req.uri_mut() = rewritten;
    }
    let route = route_label(req.uri().path());
    req.extensions_mut().insert(meta.clone());

    let needs_token = ["/beta", "/v1.0", "/_agentry", "/a2a"]
        .iter()
        .any(|root| under_root(path, root))
        && !PUBLIC_PATHS.contains(&path);
    // A2A clients may fetch published cards without a token: the handler
    // decides what an anonymous caller sees. A token that is sent is checked.
    let anonymous = under_root(path, "/a2a") && !req.headers().contains_key(header::AUTHORIZATION);
    let verdict = match needs_token && !anonymous {
        true => Some(authenticate(&app, req.headers()).await),
        false => None,
    };
    let mut capture = None;
    // The caller, for the audit of a refused write (not of a fault rule's answer).
    let mut caller = match &verdict {
        Some(Ok(principal)) => Some(principal.clone()),
        _ => None,
    };
    let mut response = match verdict {
        Some(Err(e)) => ApiError::Auth(e).into_response(),
        Some(Ok(principal)) => {
            capture = Capture::start(&app, &mut req, &uri, &principal);
            let client_request_id = meta.client_request_id.as_deref();
            match faults::intercept(&app, &principal, &method, path, client_request_id).await {
                Some(refused) => {
                    caller = None;
                    refused
                }
                None => {
                    req.extensions_mut().insert(principal);
                    super::request::serving(meta.clone(), route_request(req, next, route)).await
                }
            }
        }
        None => route_request(req, next, route).await,
    };

    // The code and message of an error answer, for its log line: why a
    // token was refused, which property was wrong.
    let mut refusal: Option<(Cow<'static, str>, String)> = None;
    if let Some(report) = response.extensions_mut().remove::<ErrorReport>() {
        if let Some(detail) = &report.detail {
            tracing::error!(request_id = %meta.request_id, %detail, status = report.status.as_u16(), "request failed");
        }
        response = render_error(&report, &meta, response.headers(), app.time());
        refusal = Some((report.code, report.message));
    }
    let not_allowed = response.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED;
    let headers = response.headers_mut();
    if not_allowed && !headers.contains_key(header::ALLOW) {
        // A path without methods (a container): an empty Allow says so.
        headers.insert(header::ALLOW, HeaderValue::from_static(""));
    }
    if let Ok(v) = HeaderValue::from_str(&meta.request_id) {
        headers.insert(REQUEST_ID, v.clone());
        let echo = meta
            .client_request_id
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
            .unwrap_or(v);
        headers.insert(CLIENT_REQUEST_ID, echo);
    }
    let elapsed = started.elapsed();
    app.metrics().observe(
        &method,
        route,
        response.status().as_u16(),
        elapsed.as_secs_f64(),
    );
    // One line per request: failures at `warn`, the rest at `info` (an
    // access log; `RUST_LOG=warn` turns it off where a line per request
    // costs too much).
    let status = response.status().as_u16();
    if method != axum::http::Method::GET && status < 300 {
        // A write (or a batch of them) may have grown the change log.
        app.notifier().wake();
    }
    macro_rules! request_line {
        ($level:ident $(, $field:ident = $value:expr)*) => {
            tracing::$level!(
                request_id = %meta.request_id,
                method = %method,
                route = %route,
                path = %path,
                status,
                micros = elapsed.as_micros() as u64,
                $($field = %$value,)*
                "request"
            )
        };
    }
    match (status, &refusal) {
        (500.., Some((code, message))) => request_line!(warn, code = code, error = message),
        (_, Some((code, message))) => request_line!(info, code = code, error = message),
        (500.., None) => request_line!(warn),
        (_, None) => request_line!(info),
    }
    if let (Some(caller), 403, Some((_, message))) = (&caller, status, &refusal) {
        audit_refusal(
            &app,
            caller,
            &meta,
            &method,
            req_route(route, path),
            message,
        )
        .await;
    }
    if let Some(capture) = capture {
        response = capture.finish(&app, &meta, response, elapsed).await;
    }
    response
}

/// The route a refused request names: its template, else its path.
fn req_route<'a>(route: &'a str, path: &'a str) -> &'a str {
    if route == super::routes::UNMATCHED {
        path
    } else {
        route
    }
}

/// Records a write the caller was not allowed to make in the audit log:
/// what it tried (the operation's summary), who, and why it was refused.
/// Reads are not recorded; a failure to record is logged, never answered.
async fn audit_refusal(
    app: &AppState,
    caller: &std::sync::Arc<crate::auth::Principal>,
    meta: &Arc<RequestMeta>,
    method: &axum::http::Method,
    route: &str,
    reason: &str,
) {
    use axum::http::Method;
    if ![Method::POST, Method::PATCH, Method::PUT, Method::DELETE].contains(method)
        || !["/beta/", "/v1.0/", "/_agentry/"]
            .iter()
            .any(|root| route.starts_with(root))
    {
        return;
    }
    let category = match route {
        r if r.contains("/agentRegistry") => "AgentRegistry",
        r if r.contains("/copilot/agentRegistrations") => "AgentRegistration",
        r if r.contains("/catalog/packages") => "CopilotCatalog",
        r if r.contains("/copilot") => crate::domain::audit::COPILOT,
        _ => crate::domain::audit::CONTROL,
    };
    let activity = super::routes::OPERATIONS
        .iter()
        .find(|o| o.path == route && o.method == method.as_str())
        .map_or_else(|| format!("{method} {route}"), |o| o.summary.to_owned());
    let event = crate::domain::audit::refused_event(category, &activity, method.as_str(), reason);
    let ctx = crate::domain::WriteContext {
        now: app.now(),
        initiator: Some(super::request::initiator_of(caller, Some(meta))),
        card_validation: Default::default(),
        card_signatures: Default::default(),
        ..Default::default()
    };
    if let Err(e) = app
        .store()
        .record_event(&caller.tenant_id, event, &ctx)
        .await
    {
        tracing::error!(request_id = %meta.request_id, error = %e, "the refused write could not be audited");
    }
}

/// Routes the request; conditional reads of the registry's entities are
/// answered here (`If-None-Match`), not by a layer around each route.
async fn route_request(req: Request, next: Next, route: &str) -> Response {
    if route.starts_with("/beta/agentRegistry/") {
        super::etag::not_modified(req, next).await
    } else {
        next.run(req).await
    }
}

/// Paths under the authenticated roots that need no token: Graph serves its
/// metadata document to anyone.
const PUBLIC_PATHS: &[&str] = &["/beta/$metadata"];

/// What the journal needs from a request before the handler takes it.
struct Capture {
    started: time::OffsetDateTime,
    method: axum::http::Method,
    /// Path and query as the client sent them (see `journal::Entry::target`).
    target: Box<str>,
    caller: Arc<crate::auth::Principal>,
    headers: Vec<(String, String)>,
    content_type: String,
    tee: Option<journal::Tee>,
}

impl Capture {
    /// Starts journalling a request, unless the journal is off or this is a
    /// read of the journal itself.
    fn start(
        app: &AppState,
        req: &mut Request,
        uri: &axum::http::Uri,
        principal: &Arc<crate::auth::Principal>,
    ) -> Option<Self> {
        let settings = app.journal().settings();
        if settings.capacity == 0 || uri.path().starts_with("/_agentry/requests") {
            return None;
        }
        let tee = settings.bodies.then(journal::Tee::default);
        if let Some(tee) = &tee {
            let body = std::mem::take(req.body_mut());
            *req.body_mut() = tee.wrap(body, settings.body_bytes);
        }
        Some(Capture {
            started: app.time(),
            method: req.method().clone(),
            target: journal::kept_target(uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())),
            caller: principal.clone(),
            // Headers are part of the optional detail, with the bodies: copying
            // them on every request costs more than the rest of the entry.
            headers: if settings.bodies {
                journal::kept_headers(req.headers())
            } else {
                Vec::new()
            },
            content_type: content_type(req.headers()),
            tee,
        })
    }

    async fn finish(
        self,
        app: &AppState,
        meta: &Arc<RequestMeta>,
        response: Response,
        elapsed: std::time::Duration,
    ) -> Response {
        let settings = app.journal().settings();
        let (parts, body) = response.into_parts();
        let (body, response_body) = match self.tee {
            Some(tee) => {
                let (body, bytes) = journal::buffer(body).await;
                let kept = bytes.map(|b| {
                    journal::keep_body(
                        &b,
                        b.len(),
                        &content_type(&parts.headers),
                        settings.body_bytes,
                    )
                });
                let (read, size) = tee.taken();
                let request_body = (size > 0).then(|| {
                    journal::keep_body(&read, size, &self.content_type, settings.body_bytes)
                });
                (body, Some((request_body, kept)))
            }
            None => (body, None),
        };
        let (request_body, response_body) = response_body.unwrap_or((None, None));
        app.journal().record(journal::Entry {
            seq: 0,
            started: self.started,
            method: self.method,
            target: self.target,
            status: parts.status.as_u16(),
            micros: elapsed.as_micros() as u64,
            meta: meta.clone(),
            caller: self.caller,
            request_headers: self.headers,
            response_headers: if settings.bodies {
                journal::kept_headers(&parts.headers)
            } else {
                Vec::new()
            },
            request_body,
            response_body,
        });
        Response::from_parts(parts, body)
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<crate::auth::Principal>, crate::auth::AuthError> {
    use crate::auth::AuthError;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ if value.is_empty() || value.eq_ignore_ascii_case("bearer") => "",
        _ => return Err(AuthError::Malformed),
    };
    app.authenticator().verify(token).await
}

/// Writes the Graph error envelope, keeping headers the error set.
fn render_error(
    report: &ErrorReport,
    meta: &RequestMeta,
    kept: &HeaderMap,
    date: time::OffsetDateTime,
) -> Response {
    let body = envelope(
        report,
        &meta.request_id,
        meta.client_request_id.as_deref(),
        date,
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = report.status;
    let headers = response.headers_mut();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = kept.get(&name) {
            headers.insert(name, v.clone());
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match report.status.as_u16() {
        401 => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"\", error=\"invalid_token\""),
            );
        }
        503 if !headers.contains_key(header::RETRY_AFTER) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

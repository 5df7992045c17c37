//! `POST /beta/$batch` (and `/v1.0/$batch`): Graph's JSON batching. Each
//! inner request goes through the whole service as a request of its own
//! (authentication, permissions, faults, throttling, the journal, metrics),
//! with the batch's token, so a batch can never do what its requests could
//! not. Requests run one at a time in the order given; one whose
//! `dependsOn` names a request that failed gets 424 without running.

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Meta};
use super::respond;
use super::routes::Batching;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tower::ServiceExt;

/// Graph's limit of requests in one batch.
pub const MAX_REQUESTS: usize = 20;

pub fn handler(op: Batching, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Batching::Batch => on(method, batch),
    }
}

/// Why a batch as a whole is refused (400), before any request runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch body must be an object with a 'requests' array")]
    NoRequests,
    #[error("a batch holds at most {MAX_REQUESTS} requests, this one {0}")]
    TooMany(usize),
    #[error("request {0} of the batch needs a non-empty string 'id'")]
    MissingId(usize),
    #[error("the id '{0}' is used by two requests of the batch")]
    DuplicateId(String),
    #[error("request '{id}' needs {what}")]
    Malformed { id: String, what: &'static str },
    #[error("request '{id}' depends on '{on}', which is not an earlier request of the batch")]
    UnknownDependency { id: String, on: String },
}

/// One inner request, checked.
#[derive(Debug)]
struct Inner {
    id: String,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn parse(body: Value) -> Result<Vec<Inner>, BatchError> {
    let Some(Value::Array(items)) = body.get("requests").cloned() else {
        return Err(BatchError::NoRequests);
    };
    if items.len() > MAX_REQUESTS {
        return Err(BatchError::TooMany(items.len()));
    }
    let mut out: Vec<Inner> = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        let id = match item.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(BatchError::MissingId(n + 1)),
        };
        if out.iter().any(|r| r.id == id) {
            return Err(BatchError::DuplicateId(id));
        }
        let malformed = |what| BatchError::Malformed {
            id: id.clone(),
            what,
        };
        let method = item
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| malformed("a 'method'"))?;
        let url = item
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a 'url'"))?
            .to_owned();
        let headers = match item.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            // A value is a string, or (as some SDKs write them) a list of strings.
            Some(Value::Object(h)) => h
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(Value::as_str)
                            .collect::<Option<Vec<_>>>()?
                            .join(", "),
                        _ => return None,
                    };
                    Some((k.clone(), value))
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("string header values"))?,
            Some(_) => return Err(malformed("'headers' as an object")),
        };
        // Graph's name, and the one Microsoft's Python core package writes.
        let depends_on = match item.get("dependsOn").or_else(|| item.get("depends_on")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed("'dependsOn' as an array of ids"))?,
            Some(_) => return Err(malformed("'dependsOn' as an array of ids")),
        };
        if let Some(on) = depends_on.iter().find(|d| !out.iter().any(|r| &r.id == *d)) {
            return Err(BatchError::UnknownDependency { id, on: on.clone() });
        }
        out.push(Inner {
            id,
            method,
            url,
            headers,
            body: item.get("body").cloned().filter(|b| !b.is_null()),
            depends_on,
        });
    }
    Ok(out)
}

/// An inner request's path below the batch's version root: a relative url
/// as Graph documents it, or an absolute one under the same version (as
/// Microsoft's Python core package sometimes writes them; the host does not
/// matter, the request is served here either way).
fn relative<'a>(url: &'a str, root: &str) -> Option<&'a str> {
    let Some((_, rest)) = url.split_once("://") else {
        return Some(url.trim_start_matches('/'));
    };
    let path = &rest[rest.find('/')?..];
    let below = path.strip_prefix(root)?;
    below
        .starts_with(['/', '?'])
        .then(|| below.trim_start_matches('/'))
}

/// The inner answer as the batch writes it.
#[derive(Serialize)]
struct InnerAnswer {
    id: String,
    status: u16,
    headers: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<InnerBody>,
}

/// A JSON body of an inner answer is copied as the inner request wrote it
/// (this server's own JSON, checked but not parsed into values and written
/// again); the batch's own errors and encoded bodies are values.
#[derive(Serialize)]
#[serde(untagged)]
enum InnerBody {
    Json(Box<RawValue>),
    Value(Value),
}

fn inner_answer(
    id: &str,
    status: StatusCode,
    headers: Map<String, Value>,
    body: Option<InnerBody>,
) -> InnerAnswer {
    InnerAnswer {
        id: id.to_owned(),
        status: status.as_u16(),
        headers,
        body,
    }
}

/// An error answered inside the batch, in the Graph envelope; its
/// `innerError` names the batch's request.
fn inner_error(
    id: &str,
    status: StatusCode,
    code: &str,
    message: &str,
    inner: &Value,
) -> InnerAnswer {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), "application/json".into());
    inner_answer(
        id,
        status,
        headers,
        Some(InnerBody::Value(
            json!({"error": {"code": code, "message": message, "innerError": inner}}),
        )),
    )
}

async fn batch(
    axum::extract::State(app): axum::extract::State<AppState>,
    Meta(meta): Meta,
    Caller(_caller): Caller,
    outer: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let requests = parse(body).map_err(ApiError::Batch)?;
    let service = super::service(app.clone());
    let inner_error_ids = json!({
        "date": crate::clock::error_timestamp(app.time()),
        "request-id": meta.request_id,
        "client-request-id": meta.client_request_id.as_deref().unwrap_or(&meta.request_id),
    });
    let mut statuses: HashMap<String, StatusCode> = HashMap::new();
    let mut responses = Vec::with_capacity(requests.len());
    for r in &requests {
        let failed = r
            .depends_on
            .iter()
            .any(|d| statuses.get(d).is_none_or(|s| !s.is_success()));
        if failed {
            statuses.insert(r.id.clone(), StatusCode::FAILED_DEPENDENCY);
            responses.push(inner_error(
                &r.id,
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                "A request this one depends on failed.",
                &inner_error_ids,
            ));
            continue;
        }
        let Some(path) =
            relative(&r.url, meta.root).filter(|p| !p.split(['/', '?']).any(|s| s == "$batch"))
        else {
            statuses.insert(r.id.clone(), StatusCode::BAD_REQUEST);
            responses.push(inner_error(
                &r.id,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "An inner request's url is relative to the batch's version (or absolute under it) and cannot be another $batch.",
                &inner_error_ids,
            ));
            continue;
        };
        let mut request = Request::builder()
            .method(r.method.clone())
            .uri(format!("{}/{path}", meta.root));
        for name in [header::AUTHORIZATION, header::HOST] {
            if let Some(v) = outer.get(&name) {
                request = request.header(name, v.clone());
            }
        }
        for (k, v) in &r.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v))
            {
                request = request.header(name, value);
            }
        }
        // A JSON body as JSON; a string body is base64, as Graph takes it.
        let body = match &r.body {
            Some(Value::String(encoded)) => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(encoded) {
                    Ok(bytes) => Body::from(bytes),
                    Err(_) => {
                        statuses.insert(r.id.clone(), StatusCode::BAD_REQUEST);
                        responses.push(inner_error(
                            &r.id,
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "A string body must be base64; send JSON bodies as JSON.",
                            &inner_error_ids,
                        ));
                        continue;
                    }
                }
            }
            Some(b) => {
                if !r
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                }
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let answer = match request.body(body) {
            Ok(req) => service
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|e| match e {}),
            Err(_) => {
                statuses.insert(r.id.clone(), StatusCode::BAD_REQUEST);
                responses.push(inner_error(
                    &r.id,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The inner request's url or headers are not valid HTTP.",
                    &inner_error_ids,
                ));
                continue;
            }
        };
        statuses.insert(r.id.clone(), answer.status());
        responses.push(collect(&r.id, answer).await);
    }
    #[derive(Serialize)]
    struct Answers {
        responses: Vec<InnerAnswer>,
    }
    let text = serde_json::to_string(&Answers { responses })
        .map_err(|e| ApiError::Internal(format!("cannot write the batch's answer: {e}")))?;
    Ok(respond::json_text(StatusCode::OK, text))
}

/// An inner answer with its headers and its body: JSON as JSON, anything
/// else (a `$count`'s text) base64-encoded in a string, as Graph answers it
/// and the SDKs' batch readers decode it.
async fn collect(id: &str, answer: Response) -> InnerAnswer {
    let (parts, body) = answer.into_parts();
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), Value::String(v.to_owned()));
        }
    }
    // Answers are this server's own, bounded by its page sizes.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let body = if bytes.is_empty() {
        None
    } else if json {
        serde_json::from_slice(&bytes).ok().map(InnerBody::Json)
    } else {
        use base64::Engine;
        Some(InnerBody::Value(Value::String(
            base64::engine::general_purpose::STANDARD.encode(&bytes),
        )))
    };
    inner_answer(id, parts.status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_urls_are_relative_or_absolute_under_the_batch_version() {
        let cases = [
            (
                "/agentRegistry/agentInstances",
                Some("agentRegistry/agentInstances"),
            ),
            ("agentRegistry?$top=1", Some("agentRegistry?$top=1")),
            ("http://h:1/beta/copilot/x", Some("copilot/x")),
            (
                "https://graph.microsoft.com/beta/agentRegistry",
                Some("agentRegistry"),
            ),
            ("http://h:1/v1.0/copilot/x", None),
            ("http://h:1/betamax/x", None),
            ("http://h:1", None),
        ];
        for (url, want) in cases {
            assert_eq!(relative(url, "/beta"), want, "{url}");
        }
    }

    #[test]
    fn a_batch_is_refused_whole_only_for_its_own_shape() {
        let req = |id: &str| json!({"id": id, "method": "GET", "url": "/agentRegistry"});
        let cases = [
            (json!({}), BatchError::NoRequests),
            (
                json!({"requests": (0..21).map(|i| req(&i.to_string())).collect::<Vec<_>>()}),
                BatchError::TooMany(21),
            ),
            (
                json!({"requests": [{"method": "GET", "url": "/x"}]}),
                BatchError::MissingId(1),
            ),
            (
                json!({"requests": [req("1"), req("1")]}),
                BatchError::DuplicateId("1".into()),
            ),
            (
                json!({"requests": [{"id": "1", "method": "GET", "url": "/x", "dependsOn": ["2"]}, req("2")]}),
                BatchError::UnknownDependency {
                    id: "1".into(),
                    on: "2".into(),
                },
            ),
            (
                json!({"requests": [{"id": "1", "url": "/x"}]}),
                BatchError::Malformed {
                    id: "1".into(),
                    what: "a 'method'",
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse(body).unwrap_err(), want);
        }
        let ok = parse(json!({"requests": [req("1"), {"id": "2", "method": "patch", "url": "x", "dependsOn": ["1"], "body": {"a": 1}}]})).unwrap();
        assert_eq!(ok[1].method, Method::PATCH);
        assert_eq!(ok[1].depends_on, ["1"]);
    }
}

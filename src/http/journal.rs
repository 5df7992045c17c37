//! The request journal (`/_agentry/requests`): the last N requests of each
//! tenant, in memory, with method, path, status, latency, ids and caller;
//! bodies only when configured, capped. Secrets are never kept: the
//! `Authorization` and cookie headers are dropped, the values of other
//! headers are kept only for the headers of [`PLAIN_HEADERS`], query
//! parameters whose names look secret ([`secret_parameter`]) have their
//! values replaced by `[redacted]`, and so do token-like values in JSON
//! bodies.

use super::error::ApiError;
use super::request::RequestMeta;
use crate::auth::Principal;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method};
use foldhash::HashMap;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const DEFAULT_CAPACITY: usize = 1000;
pub const DEFAULT_BODY_BYTES: usize = 16 * 1024;
/// Tenants whose journals are kept; the least recently active goes first.
const MAX_TENANTS: usize = 256;
const REDACTED: &str = "[redacted]";
/// Headers never stored.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
/// Headers whose values are kept (with bodies on); the values of others,
/// which may be credentials of any name (`X-Api-Key`, ...), are redacted.
const PLAIN_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "allow",
    "cache-control",
    "client-request-id",
    "connection",
    "consistencylevel",
    "content-length",
    "content-type",
    "date",
    "etag",
    "host",
    "if-match",
    "if-none-match",
    "location",
    "odata-maxversion",
    "odata-version",
    "prefer",
    "preference-applied",
    "request-id",
    "retry-after",
    "return-client-request-id",
    "sdkversion",
    "user-agent",
    "www-authenticate",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];
/// JSON properties whose values are never stored.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "password",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSettings {
    /// Requests kept per tenant; 0 turns the journal off.
    pub capacity: usize,
    /// Keep request and response bodies.
    pub bodies: bool,
    /// Bytes of each body kept.
    pub body_bytes: usize,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            bodies: false,
            body_bytes: DEFAULT_BODY_BYTES,
        }
    }
}

/// A kept body: its text (capped) and its full size.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptBody {
    pub text: String,
    pub size: usize,
    pub mime_type: String,
}

/// One journalled request.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// When the request came in; formatted only when the journal is read.
    pub started: time::OffsetDateTime,
    pub method: Method,
    /// Path and query as the client sent them, copied: a `Uri` clone would
    /// share, and keep alive, the buffer the whole request was read into.
    pub target: Box<str>,
    pub status: u16,
    pub micros: u64,
    /// The request and client request ids.
    pub meta: Arc<RequestMeta>,
    pub caller: Arc<Principal>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Option<KeptBody>,
    pub response_body: Option<KeptBody>,
}

impl Entry {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    fn caller_json(&self) -> Value {
        let c = &self.caller;
        json!({"tenantId": c.tenant_id, "appId": c.app_id, "objectId": c.object_id})
    }
}

pub struct Journal {
    settings: JournalSettings,
    inner: Mutex<Rings>,
}

#[derive(Default)]
struct Rings {
    seq: u64,
    tenants: HashMap<String, VecDeque<Entry>>,
}

/// Which entries a reader wants.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    pub method: Option<String>,
    pub status: Option<u16>,
    pub path_prefix: Option<String>,
    pub client_request_id: Option<String>,
    /// Only entries recorded after this `sequence` (to follow the journal).
    pub after: Option<u64>,
}

impl Filter {
    /// Reads `method`, `status`, `pathPrefix`, `clientRequestId`, `after` and `format`
    /// from a query string; returns the filter and the format asked for.
    pub fn parse(query: Option<&str>) -> Result<(Filter, Option<String>), ApiError> {
        let mut f = Filter::default();
        let mut format = None;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match k {
                "method" => f.method = Some(v.to_ascii_uppercase()),
                "status" => {
                    f.status = Some(v.parse().map_err(|_| {
                        ApiError::InvalidControlRequest("'status' must be a number".into())
                    })?);
                }
                "pathPrefix" => f.path_prefix = Some(v),
                "clientRequestId" => f.client_request_id = Some(v),
                "after" => {
                    f.after = Some(v.parse().map_err(|_| {
                        ApiError::InvalidControlRequest(
                            "'after' must be the sequence number of an entry".into(),
                        )
                    })?);
                }
                "format" => format = Some(v),
                other => {
                    return Err(ApiError::InvalidControlRequest(format!(
                        "unknown query parameter '{other}'; use method, status, pathPrefix, clientRequestId, after or format"
                    )));
                }
            }
        }
        Ok((f, format))
    }

    fn keeps(&self, e: &Entry) -> bool {
        self.after.is_none_or(|a| e.seq > a)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m == e.method.as_str())
            && self.status.is_none_or(|s| s == e.status)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| e.path().starts_with(p))
            && self
                .client_request_id
                .as_deref()
                .is_none_or(|c| e.meta.client_request_id.as_deref() == Some(c))
    }
}

impl Journal {
    pub fn new(settings: JournalSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Rings::default()),
        }
    }

    pub fn settings(&self) -> JournalSettings {
        self.settings
    }

    pub fn record(&self, mut entry: Entry) {
        if self.settings.capacity == 0 {
            return;
        }
        let mut rings = self.inner.lock().expect("journal poisoned");
        rings.seq += 1;
        entry.seq = rings.seq;
        // The tenant's ring is found by reference: its key is cloned only
        // when a tenant records its first entry.
        if let Some(ring) = rings.tenants.get_mut(&entry.caller.tenant_id) {
            if ring.len() >= self.settings.capacity {
                ring.pop_front();
            }
            ring.push_back(entry);
            return;
        }
        if rings.tenants.len() >= MAX_TENANTS {
            let stalest = rings
                .tenants
                .iter()
                .min_by_key(|(_, ring)| ring.back().map_or(0, |e| e.seq))
                .map(|(t, _)| t.clone());
            if let Some(t) = stalest {
                rings.tenants.remove(&t);
            }
        }
        let tenant = entry.caller.tenant_id.clone();
        rings.tenants.insert(tenant, VecDeque::from([entry]));
    }

    /// The tenant's entries, oldest first.
    pub fn entries(&self, tenant: &str, filter: &Filter) -> Vec<Entry> {
        let rings = self.inner.lock().expect("journal poisoned");
        rings
            .tenants
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|e| filter.keeps(e))
            .cloned()
            .collect()
    }

    /// Every tenant's entries, oldest first (for diagnostics and tests).
    pub fn all(&self) -> Vec<Entry> {
        let rings = self.inner.lock().expect("journal poisoned");
        let mut all: Vec<Entry> = rings.tenants.values().flatten().cloned().collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    pub fn clear(&self, tenant: &str) {
        self.inner
            .lock()
            .expect("journal poisoned")
            .tenants
            .remove(tenant);
    }
}

/// Headers worth keeping: credential headers dropped, the values of
/// headers not known to be plain redacted.
pub fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !SECRET_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = if PLAIN_HEADERS.contains(&name.as_str()) {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            } else {
                REDACTED.to_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// A request's path and query as the journal keeps them: the values of
/// query parameters whose names look secret replaced by `[redacted]`.
pub fn kept_target(path_and_query: &str) -> Box<str> {
    let Some(mark) = memchr::memchr(b'?', path_and_query.as_bytes()) else {
        return path_and_query.into();
    };
    let (path, query) = (&path_and_query[..mark], &path_and_query[mark + 1..]);
    let mut out = String::with_capacity(path_and_query.len());
    out.push_str(path);
    out.push('?');
    for (n, pair) in query.split('&').enumerate() {
        if n > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if secret_parameter(name) => {
                out.push_str(name);
                out.push_str("=%5Bredacted%5D");
            }
            _ => out.push_str(pair),
        }
    }
    out.into()
}

/// Whether a query parameter's name (percent-encoded as sent) looks like
/// it carries a credential: `access_token`, `client_secret`, `code`, `sig`,
/// `key`, `api-key`, `password` and their kin, in any case. OData's own
/// options (`$skiptoken` is a paging cursor, not a credential) are not.
fn secret_parameter(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "code", "sig", "key", "auth", "pwd", "pass", "session", "sid", "jwt", "otp",
    ];
    const PARTS: &[&str] = &[
        "token",
        "secret",
        "passw",
        "passphrase",
        "apikey",
        "api_key",
        "signature",
        "credential",
        "assertion",
        "private",
        "_key",
    ];
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    if decoded.starts_with('$') {
        return false;
    }
    let name = decoded.to_ascii_lowercase().replace('-', "_");
    EXACT.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p))
}

/// Replaces secrets in a JSON value: token properties and JWT-like strings.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if looks_like_jwt(s) => *s = REDACTED.into(),
        _ => {}
    }
}

fn looks_like_jwt(s: &str) -> bool {
    let s = s
        .trim_start_matches("Bearer ")
        .trim_start_matches("bearer ");
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// A body as the journal keeps it: redacted, then capped.
pub fn keep_body(bytes: &[u8], full_size: usize, mime_type: &str, cap: usize) -> KeptBody {
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(bytes)
            .split_whitespace()
            .map(|w| if looks_like_jwt(w) { REDACTED } else { w })
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut end = text.len().min(cap);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    KeptBody {
        text: text[..end].to_owned(),
        size: full_size,
        mime_type: mime_type.to_owned(),
    }
}

/// Copies the first bytes of a request body as the handler reads it.
#[derive(Clone, Default)]
pub struct Tee {
    buf: Arc<Mutex<(Vec<u8>, usize)>>,
}

impl Tee {
    /// Wraps `body`; the copy keeps at most `cap + 1` bytes (the extra byte
    /// tells a capped body from one that fit).
    pub fn wrap(&self, body: Body, cap: usize) -> Body {
        let buf = self.buf.clone();
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                let mut b = buf.lock().expect("tee poisoned");
                b.1 += data.len();
                let room = (cap + 1).saturating_sub(b.0.len());
                b.0.extend_from_slice(&data[..data.len().min(room)]);
            }
            frame
        }))
    }

    /// What was read, and the full size.
    pub fn taken(&self) -> (Vec<u8>, usize) {
        let b = self.buf.lock().expect("tee poisoned");
        (b.0.clone(), b.1)
    }
}

/// Reads a whole response body so it can be kept, and gives it back.
pub async fn buffer(body: Body) -> (Body, Option<Bytes>) {
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            (Body::from(bytes.clone()), Some(bytes))
        }
        Err(_) => (Body::empty(), None),
    }
}

/// The caller fields of an entry.
fn body_json(b: &KeptBody) -> Value {
    json!({"mimeType": b.mime_type, "size": b.size, "text": b.text})
}

fn headers_json(h: &[(String, String)]) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

/// The plain JSON listing.
pub fn to_json(entries: &[Entry]) -> Value {
    let value: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({
                "sequence": e.seq,
                "startedDateTime": crate::clock::entity_timestamp(e.started),
                "method": e.method.as_str(),
                "path": e.path(),
                "query": e.query(),
                "status": e.status,
                "latencyMs": e.micros as f64 / 1000.0,
                "requestId": e.meta.request_id,
                "clientRequestId": e.meta.client_request_id,
                "caller": e.caller_json(),
                "requestHeaders": headers_json(&e.request_headers),
                "responseHeaders": headers_json(&e.response_headers),
            });
            if let Some(b) = &e.request_body {
                v["requestBody"] = body_json(b);
            }
            if let Some(b) = &e.response_body {
                v["responseBody"] = body_json(b);
            }
            v
        })
        .collect();
    json!({ "value": value })
}

fn status_text(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The entries as an HTTP Archive (HAR 1.2) document.
pub fn to_har(entries: &[Entry], origin: &str) -> Value {
    let har_entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let url = match e.query() {
                Some(q) => format!("{origin}{}?{q}", e.path()),
                None => format!("{origin}{}", e.path()),
            };
            let query_string: Vec<Value> = e
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    let d = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                    json!({"name": d(n), "value": d(v)})
                })
                .collect();
            let ms = e.micros as f64 / 1000.0;
            let mut request = json!({
                "method": e.method.as_str(),
                "url": url,
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": headers_json(&e.request_headers),
                "queryString": query_string,
                "headersSize": -1,
                "bodySize": e.request_body.as_ref().map_or(-1, |b| b.size as i64),
            });
            if let Some(b) = &e.request_body {
                request["postData"] = json!({"mimeType": b.mime_type, "text": b.text});
            }
            let mut content = json!({
                "size": e.response_body.as_ref().map_or(-1, |b| b.size as i64),
                "mimeType": e.response_headers.iter().find(|(n, _)| n == "content-type").map_or("", |(_, v)| v.as_str()),
            });
            if let Some(b) = &e.response_body {
                content["text"] = b.text.clone().into();
            }
            json!({
                "startedDateTime": crate::clock::entity_timestamp(e.started),
                "time": ms,
                "request": request,
                "response": {
                    "status": e.status,
                    "statusText": status_text(e.status),
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": headers_json(&e.response_headers),
                    "content": content,
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": e.response_body.as_ref().map_or(-1, |b| b.size as i64),
                },
                "cache": {},
                "timings": {"send": 0, "wait": ms, "receive": 0},
                "_requestId": e.meta.request_id,
                "_clientRequestId": e.meta.client_request_id,
                "_caller": e.caller_json(),
            })
        })
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "Agentry", "version": env!("CARGO_PKG_VERSION")},
            "entries": har_entries,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tenant: &str, path: &str) -> Entry {
        Entry {
            seq: 0,
            started: time::macros::datetime!(2026-01-01 00:00 UTC),
            method: Method::GET,
            target: path.into(),
            status: 200,
            micros: 1500,
            meta: Arc::new(RequestMeta {
                request_id: "r".into(),
                client_request_id: None,
                origin: "http://localhost".into(),
                root: "/beta",
            }),
            caller: Arc::new(Principal {
                tenant_id: tenant.into(),
                kind: crate::auth::CallerKind::Application,
                object_id: None,
                app_id: None,
                scopes: vec![],
                roles: vec![],
                wids: vec![],
                scoped_roles: vec![],
                expires_at: 0,
                user_principal_name: None,
            }),
            request_headers: vec![],
            response_headers: vec![],
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn each_tenant_keeps_its_last_n_requests() {
        let j = Journal::new(JournalSettings {
            capacity: 3,
            ..JournalSettings::default()
        });
        for i in 0..5 {
            j.record(entry("a", &format!("/beta/{i}")));
        }
        j.record(entry("b", "/beta/b"));
        let paths: Vec<String> = j
            .entries("a", &Filter::default())
            .into_iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(paths, ["/beta/2", "/beta/3", "/beta/4"]);
        assert_eq!(j.entries("b", &Filter::default()).len(), 1);
    }

    #[test]
    fn secrets_are_redacted_from_headers_and_bodies() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer eyJa.b.c".parse().unwrap());
        h.insert("cookie", "s=1".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        assert_eq!(
            kept_headers(&h),
            [("accept".to_owned(), "application/json".to_owned())]
        );
        let body =
            br#"{"access_token":"x","nested":{"token":"eyJhbGciOi.e30.sig"},"displayName":"ok"}"#;
        let kept = keep_body(body, body.len(), "application/json", 1000);
        assert!(!kept.text.contains("eyJhbGciOi"), "{}", kept.text);
        assert!(!kept.text.contains("\"x\""), "{}", kept.text);
        assert!(kept.text.contains("\"ok\""));
    }

    #[test]
    fn bodies_are_capped_at_a_character_boundary() {
        let kept = keep_body("ééé".as_bytes(), 6, "text/plain", 3);
        assert_eq!(kept.text, "é");
        assert_eq!(kept.size, 6);
    }

    #[test]
    fn secret_looking_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            &*kept_target(
                "/beta/x?access_token=a&Client_Secret=b&sig=c&code=d&X-Api-Key=e&$top=1&$skiptoken=t&name=n&flag"
            ),
            "/beta/x?access_token=%5Bredacted%5D&Client_Secret=%5Bredacted%5D&sig=%5Bredacted%5D\
             &code=%5Bredacted%5D&X-Api-Key=%5Bredacted%5D&$top=1&$skiptoken=t&name=n&flag"
        );
        assert_eq!(&*kept_target("/beta/x"), "/beta/x");
        assert_eq!(
            &*kept_target("/beta/x?PASSWORD=p"),
            "/beta/x?PASSWORD=%5Bredacted%5D"
        );
        assert_eq!(
            &*kept_target("/beta/x?%74oken=p"),
            "/beta/x?%74oken=%5Bredacted%5D"
        );
        for plain in [
            "$filter",
            "$search",
            "format",
            "status",
            "pathPrefix",
            "keyword",
        ] {
            assert!(!secret_parameter(plain), "{plain}");
        }
    }

    #[test]
    fn only_plain_header_values_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("user-agent", "ua".parse().unwrap());
        h.insert("x-api-key", "k".parse().unwrap());
        h.insert("authorization", "Bearer t".parse().unwrap());
        let kept = kept_headers(&h);
        assert_eq!(
            kept,
            vec![
                ("user-agent".to_owned(), "ua".to_owned()),
                ("x-api-key".to_owned(), REDACTED.to_owned())
            ]
        );
    }

    #[test]
    fn filters_come_from_the_query_and_unknown_ones_are_refused() {
        let (f, format) =
            Filter::parse(Some("method=post&status=201&pathPrefix=%2Fbeta&format=har")).unwrap();
        assert_eq!(f.method.as_deref(), Some("POST"));
        assert_eq!(f.status, Some(201));
        assert_eq!(f.path_prefix.as_deref(), Some("/beta"));
        assert_eq!(format.as_deref(), Some("har"));
        assert_eq!(Filter::parse(Some("after=41")).unwrap().0.after, Some(41));
        assert!(Filter::parse(Some("status=abc")).is_err());
        assert!(Filter::parse(Some("after=-1")).is_err());
        assert!(Filter::parse(Some("colour=red")).is_err());
    }
}

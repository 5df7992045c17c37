//! What a request is known by once it arrives: its ids, the origin its
//! absolute URLs are built from, and which root it is under. A leaf of the
//! HTTP layer: every other part may use it, it uses none of them.

use axum::http::{HeaderMap, HeaderName, header};

/// Facts about the request that handlers and the envelope need.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_request_id: Option<String>,
    /// `scheme://host[:port]`, from which absolute URLs are built.
    pub origin: String,
    /// The Graph version the request is under: `/beta` or `/v1.0`.
    pub root: &'static str,
}

impl RequestMeta {
    /// A fresh request id, the client's request id if it sent a usable one,
    /// and the origin (`X-Forwarded-*` only from a trusted proxy).
    pub fn new(headers: &HeaderMap, path: &str, trust_proxy: bool, scheme: &str) -> Self {
        static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
        Self {
            request_id: request_id(),
            client_request_id: headers
                .get(&CLIENT_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_CLIENT_REQUEST_ID)
                .map(str::to_owned),
            origin: origin(headers, trust_proxy, scheme),
            root: if path.starts_with("/v1.0/") {
                "/v1.0"
            } else {
                "/beta"
            },
        }
    }

    /// The Graph root of absolute URLs: `http://host:port/beta` (or
    /// `/v1.0`, for a request under it).
    pub fn service_root(&self) -> String {
        format!("{}{}", self.origin, self.root)
    }
}

const MAX_CLIENT_REQUEST_ID: usize = 200;

/// A fresh request id: a version-4-shaped GUID from a per-process random
/// prefix and a counter. Unique without a system call per request.
pub fn request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        b
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(prefix);
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Whether `path` is `root` or below it.
pub fn under_root(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub fn origin(headers: &HeaderMap, trust_proxy: bool, scheme: &str) -> String {
    static FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    static FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    let get = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let forwarded = |name| {
        trust_proxy
            .then(|| get(name))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = forwarded(&FORWARDED_PROTO).unwrap_or(scheme);
    let host = forwarded(&FORWARDED_HOST)
        .or_else(|| get(&header::HOST))
        .filter(|h| {
            h.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']' | b'_')
            })
        })
        .unwrap_or("localhost");
    let proto = if proto.eq_ignore_ascii_case("https") {
        "https"
    } else {
        "http"
    };
    let mut out = String::with_capacity(proto.len() + 3 + host.len());
    out.push_str(proto);
    out.push_str("://");
    out.push_str(host);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn request_ids_are_distinct_guids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }

    #[test]
    fn the_origin_comes_from_host_unless_a_trusted_proxy_says_otherwise() {
        let h = headers(&[
            ("host", "127.0.0.1:7171"),
            ("x-forwarded-host", "graph.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(origin(&h, false, "http"), "http://127.0.0.1:7171");
        assert_eq!(origin(&h, false, "https"), "https://127.0.0.1:7171");
        assert_eq!(origin(&h, true, "http"), "https://graph.example");
        assert_eq!(
            origin(&headers(&[("host", "evil\"host")]), false, "http"),
            "http://localhost"
        );
    }
}

tokio::task_local! {
    /// The request being served, for what is recorded of it deep in a
    /// handler (the audit log's initiator) without every handler passing it.
    static CURRENT: std::sync::Arc<RequestMeta>;
}

/// Serves `f` as the request `meta` (see [`initiator`]).
pub async fn serving<F: std::future::Future>(meta: std::sync::Arc<RequestMeta>, f: F) -> F::Output {
    CURRENT.scope(meta, f).await
}

/// Who makes the writes of the request being served: the caller and the
/// request's ids, for the audit log.
pub fn initiator(
    caller: &crate::auth::Principal,
) -> std::sync::Arc<crate::domain::audit::Initiator> {
    let meta = CURRENT.try_with(|m| m.clone()).ok();
    initiator_of(caller, meta.as_ref())
}

/// Who makes the writes of the request `meta`.
pub fn initiator_of(
    caller: &crate::auth::Principal,
    meta: Option<&std::sync::Arc<RequestMeta>>,
) -> std::sync::Arc<crate::domain::audit::Initiator> {
    use crate::auth::CallerKind;
    let (user, app) = match caller.kind {
        CallerKind::Delegated => (
            caller
                .object_id
                .clone()
                .map(|id| (id, caller.user_principal_name.clone())),
            caller.app_id.clone().map(|a| (a, None)),
        ),
        CallerKind::Application => (
            None,
            caller.app_id.clone().map(|a| (a, caller.object_id.clone())),
        ),
    };
    std::sync::Arc::new(crate::domain::audit::Initiator {
        user,
        app,
        correlation_id: meta.and_then(|m| m.client_request_id.clone()),
        request_id: meta.map(|m| m.request_id.clone()),
    })
}

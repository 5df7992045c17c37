//! The HTTP layer: routes, extractors, Graph response and error conventions.
//!
//! - [`conventions`]: request ids, authentication, the error envelope.
//! - [`extract`]: extractors whose rejections are Graph errors.
//! - [`registry`]: the `/beta/agentRegistry` handlers.
//! - [`copilot`]: the `/beta/copilot` handlers (Copilot admin settings).
//! - [`control`]: the `/_agentry` control API (not Graph; plain JSON).
//! - [`faults`], [`throttle`]: fault rules and throttling, a layer after authentication.
//! - [`journal`]: the request journal; [`metrics`]: `/metrics`; [`health`]: probes.
//! - [`respond`]: entity and collection bodies, context URLs, next links.
//! - [`error`]: every error mapped to a status and a Graph code, once.
//! - [`serve`]: connections: the accept loop, TLS, limits and timeouts, and
//!   Graph envelopes for what hyper refuses before the service sees it.
//! - [`etag`]: ETags of registry entities and the conditional headers.

pub mod apidoc;
mod control;
pub mod conventions;
mod copilot;
pub mod error;
pub mod etag;
pub mod extract;
pub mod faults;
mod health;
mod identity;
pub mod journal;
pub mod metrics;
mod registry;
pub mod respond;
pub mod serve;
pub mod throttle;

use crate::auth::KeyRing;
use crate::auth::oidc::Authenticator;
use crate::clock::SharedClock;
use crate::domain::copilot::CopilotRules;
use crate::odata::PagingKeys;
use crate::store::Store;
use axum::Router;
use axum::http::Uri;
use axum::response::IntoResponse;
use error::ApiError;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    auth: Arc<Authenticator>,
    paging: PagingKeys,
    clock: SharedClock,
    max_body_bytes: usize,
    trust_proxy: bool,
    https: bool,
    copilot: CopilotRules,
    faults: faults::FaultRules,
    throttle: Option<throttle::Throttle>,
    journal: journal::Journal,
    metrics: metrics::Metrics,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub trust_proxy: bool,
    /// Served over TLS: absolute URLs use `https`.
    pub https: bool,
    pub copilot: CopilotRules,
    /// Throttling mode; `None` is off.
    pub throttle: Option<throttle::ThrottleSettings>,
    pub journal: journal::JournalSettings,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        auth: Arc<Authenticator>,
        clock: SharedClock,
        settings: HttpSettings,
    ) -> Self {
        let paging = PagingKeys::new(keys.derived_secret("agentry.skiptoken.v1"));
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                auth,
                paging,
                clock,
                max_body_bytes: settings.max_body_bytes,
                trust_proxy: settings.trust_proxy,
                https: settings.https,
                copilot: settings.copilot,
                faults: faults::FaultRules::default(),
                throttle: settings.throttle.map(throttle::Throttle::new),
                journal: journal::Journal::new(settings.journal),
                metrics: metrics::Metrics::default(),
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Verifies bearer tokens (Agentry's own, and an external issuer's when configured).
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub fn paging(&self) -> &PagingKeys {
        &self.inner.paging
    }

    pub fn now(&self) -> String {
        crate::clock::entity_timestamp(self.inner.clock.now())
    }

    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    pub fn trust_proxy(&self) -> bool {
        self.inner.trust_proxy
    }

    /// The scheme of absolute URLs when no trusted proxy says otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.inner.https { "https" } else { "http" }
    }

    pub fn copilot_rules(&self) -> CopilotRules {
        self.inner.copilot
    }

    pub fn faults(&self) -> &faults::FaultRules {
        &self.inner.faults
    }

    pub fn throttle(&self) -> Option<&throttle::Throttle> {
        self.inner.throttle.as_ref()
    }

    pub fn journal(&self) -> &journal::Journal {
        &self.inner.journal
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }
}

/// The complete service, outermost first: the Graph conventions layer (ids,
/// OData key rewriting, authentication, faults and throttling, conditional
/// reads, envelope, journal, metrics), panic catching, the router.
pub fn service(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let routes = Router::new()
        .merge(registry::routes())
        .route("/beta/agentRegistry", registry::singleton())
        .nest("/beta/copilot", copilot::routes())
        .route("/beta/copilot", copilot::container())
        .route(
            "/v1.0/copilot/admin/settings/limitedMode",
            copilot::limited_mode(),
        )
        .nest("/_agentry/copilot", control::routes())
        .nest("/_agentry", control::tenant_routes())
        .merge(health::routes())
        .merge(apidoc::routes())
        .merge(identity::routes())
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let inner = routes.layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::Internal("a handler panicked".into()).into_response()
    }));
    // One layer before the router (no boxed service per layer and request):
    // it also applies fault rules, rewrites OData key segments and answers
    // conditional reads (`conventions`).
    tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state,
            conventions::graph_conventions,
        ))
        .service(inner)
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Words the URL grammar knows; a segment after one of the set-like words is a key.
const KNOWN_SEGMENTS: &[&str] = &[
    "beta",
    "agentRegistry",
    "agentInstances",
    "agentCardManifests",
    "agentCollections",
    "agentCardManifest",
    "collections",
    "members",
    "$ref",
    "$count",
    "copilot",
    "admin",
    "settings",
    "policySettings",
    "limitedMode",
    "people",
    "enhancedPersonalization",
    "_agentry",
    "policies",
    "reset",
    "snapshot",
    "faults",
    "requests",
    "requests.har",
];
/// What `/v1.0` serves: only Copilot limited mode.
const KNOWN_SEGMENTS_V1: &[&str] = &["v1.0", "copilot", "admin", "settings", "limitedMode"];
const KEYED_SEGMENTS: &[&str] = &[
    "agentInstances",
    "agentCardManifests",
    "agentCollections",
    "collections",
    "members",
    "policySettings",
    "policies",
    "faults",
];

async fn unknown_path(uri: Uri) -> ApiError {
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let known = if segments.first().is_some_and(|s| s == "v1.0") {
        KNOWN_SEGMENTS_V1
    } else {
        KNOWN_SEGMENTS
    };
    let mut previous: Option<&str> = None;
    for seg in &segments {
        let is_key = previous.is_some_and(|p| KEYED_SEGMENTS.contains(&p));
        if !is_key && !known.contains(&seg.as_str()) {
            return ApiError::UnknownSegment(seg.clone());
        }
        previous = Some(seg);
    }
    ApiError::UnknownSegment(segments.last().cloned().unwrap_or_default())
}

/// Rewrites OData key segments, `agentInstances('a b')`, into path form,
/// `agentInstances/a%20b`, so one set of routes serves both spellings.
pub(super) fn rewrite_key_segments(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    // Searching for single bytes first: most paths have neither.
    let parenthesis = path.contains('(') || (path.contains('%') && path.contains("%28"));
    if !parenthesis {
        return None;
    }
    let mut changed = false;
    let mut out = String::with_capacity(path.len() + 8);
    for (i, raw) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        let rewritten = decoded.find("('").and_then(|open| {
            let name = &decoded[..open];
            let key = crate::domain::unquote_key(decoded[open + 1..].strip_suffix(')')?)?;
            let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
            valid_name.then(|| {
                let encoded = percent_encoding::utf8_percent_encode(&key, KEY_ENCODE);
                format!("{name}/{encoded}")
            })
        });
        match rewritten {
            Some(r) => {
                changed = true;
                out.push_str(&r);
            }
            None => out.push_str(raw),
        }
    }
    if !changed {
        return None;
    }
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    out.parse().ok()
}

/// Everything but unreserved characters is escaped in a rewritten key.
const KEY_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> Option<String> {
        rewrite_key_segments(&s.parse().unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn odata_key_segments_become_path_segments() {
        let table = [
            (
                "/beta/agentRegistry/agentInstances('a')",
                Some("/beta/agentRegistry/agentInstances/a"),
            ),
            (
                "/beta/agentRegistry/agentInstances('Agent%3A%2001')/collections?$top=1",
                Some("/beta/agentRegistry/agentInstances/Agent%3A%2001/collections?$top=1"),
            ),
            (
                "/beta/agentRegistry/agentInstances('it''s')",
                Some("/beta/agentRegistry/agentInstances/it%27s"),
            ),
            (
                "/beta/agentRegistry/agentInstances%28%27x%27%29",
                Some("/beta/agentRegistry/agentInstances/x"),
            ),
            ("/beta/agentRegistry/agentInstances/plain", None),
            ("/beta/agentRegistry/agentInstances('broken", None),
        ];
        for (input, expected) in table {
            assert_eq!(rewrite(input).as_deref(), expected, "{input}");
        }
    }
}

//! The HTTP layer: routes, extractors, Graph response and error conventions.
//!
//! - [`conventions`]: the one middleware: ids, authentication, the error envelope.
//! - [`request`]: what a request is known by (ids, origin); a leaf.
//! - [`extract`]: extractors whose rejections are Graph errors.
//! - [`registry`]: the `/beta/agentRegistry` handlers.
//! - [`copilot`]: the `/beta/copilot` handlers (Copilot admin settings).
//! - [`subscriptions`]: `/subscriptions`, change notification subscriptions.
//! - [`control`]: the `/_agentry` control API (not Graph; plain JSON).
//! - [`console`]: the web console at `/console`, its embedded files and its
//!   loopback-only sign-in switch.
//! - [`faults`], [`throttle`]: fault rules and throttling, a layer after authentication.
//! - [`journal`]: the request journal; [`metrics`]: `/metrics`; [`health`]: probes.
//! - [`respond`]: entity and collection bodies, context URLs, next links.
//! - [`routes`]: the URL grammar, once: every operation, route labels, unknown segments.
//! - [`error`]: every error mapped to a status and a Graph code, once.
//! - [`serve`]: connections: the accept loop, TLS, limits and timeouts, and
//!   Graph envelopes for what hyper refuses before the service sees it.
//! - [`etag`]: ETags of registry entities and the conditional headers.

mod a2a_admin;
pub mod apidoc;
mod authorize;
pub mod batch;
pub mod console;
mod control;
pub mod conventions;
mod copilot;
pub mod cors;
pub mod error;
pub mod etag;
pub mod extract;
pub mod faults;
#[cfg(test)]
mod fidelity;
mod health;
mod identity;
pub mod journal;
pub mod metrics;
mod registry;
pub mod request;
pub mod respond;
pub mod routes;
pub mod serve;
mod subscriptions;
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
use axum::routing::{MethodFilter, MethodRouter};
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
    cors_origins: Vec<String>,
    change_retention_days: u32,
    a2a: Arc<crate::domain::a2a::settings::Defaults>,
    notifier: crate::notify::Notifier,
    watcher: crate::watch::Watcher,
    console_dev_signin: console::DevSignIn,
    external_sign_in: Option<crate::auth::oidc::ExternalSignIn>,
    builtin_tokens: bool,
    console_policy: axum::http::HeaderValue,
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
    /// Origins browsers may call from; empty: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Days the audit log and the change log keep their rows (a delta
    /// token older than this has expired).
    pub change_retention_days: u32,
    /// The A2A settings of tenants that do not set their own: how
    /// registered cards and their signatures are checked, the trusted keys.
    pub a2a: Arc<crate::domain::a2a::settings::Defaults>,
    /// Change notifications: the handshake and the delivery worker.
    pub notifier: crate::notify::Notifier,
    /// The checker of watched agents.
    pub watcher: crate::watch::Watcher,
    /// Whether the console may sign in without a password (`POST /console/session`).
    pub console_dev_signin: console::DevSignIn,
    /// Where the console signs people in, when at an external issuer.
    pub external_sign_in: Option<crate::auth::oidc::ExternalSignIn>,
    /// Whether this server's own tokens are accepted (local users, the switch).
    pub builtin_tokens: bool,
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
                cors_origins: settings.cors_origins,
                change_retention_days: settings.change_retention_days,
                a2a: settings.a2a,
                notifier: settings.notifier,
                watcher: settings.watcher,
                console_dev_signin: settings.console_dev_signin,
                console_policy: console::policy(settings.external_sign_in.as_ref()),
                external_sign_in: settings.external_sign_in,
                builtin_tokens: settings.builtin_tokens,
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The configuration's A2A settings, for tenants that set none.
    pub fn a2a_defaults(&self) -> &crate::domain::a2a::settings::Defaults {
        &self.inner.a2a
    }

    /// A tenant's A2A settings in effect (its own over the configuration's).
    pub async fn a2a(
        &self,
        tenant: &str,
    ) -> Result<crate::domain::a2a::settings::Effective, crate::store::StoreError> {
        use crate::domain::copilot::TenantSetting;
        let doc = self
            .store()
            .get_tenant_setting(tenant, TenantSetting::A2a)
            .await?;
        Ok(crate::domain::a2a::settings::resolve(
            doc.as_ref(),
            &self.inner.a2a,
        ))
    }

    /// The checker of watched agents.
    pub fn watcher(&self) -> &crate::watch::Watcher {
        &self.inner.watcher
    }

    /// Change notifications: the handshake, and waking the delivery worker.
    pub fn notifier(&self) -> &crate::notify::Notifier {
        &self.inner.notifier
    }

    /// Whether the console may sign in without a password.
    pub fn console_dev_signin(&self) -> console::DevSignIn {
        self.inner.console_dev_signin
    }

    /// Where the console signs people in, when at an external issuer.
    pub fn external_sign_in(&self) -> Option<&crate::auth::oidc::ExternalSignIn> {
        self.inner.external_sign_in.as_ref()
    }

    /// Whether this server's own tokens are accepted.
    pub fn builtin_tokens(&self) -> bool {
        self.inner.builtin_tokens
    }

    /// The Content-Security-Policy of the console's files.
    pub fn console_policy(&self) -> &axum::http::HeaderValue {
        &self.inner.console_policy
    }

    /// Days the change log keeps its rows: the lifetime of a delta token.
    pub fn change_retention_days(&self) -> u32 {
        self.inner.change_retention_days
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

    /// The injected clock's now.
    pub fn time(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
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

/// The router, built from [`routes::OPERATIONS`]: each operation's path and
/// method, served by the handler its area maps it to. Copilot's paths
/// answer the methods they do not document with Graph's own 405, and so do
/// the Copilot containers, which have no operation.
fn router() -> Router<AppState> {
    use routes::Handler;
    let mut paths: Vec<(&str, MethodRouter<AppState>, bool)> = Vec::new();
    for o in routes::OPERATIONS {
        let method = method_filter(o.method);
        let handler = match o.handler {
            Handler::Reg(op) => registry::handler(op, method),
            Handler::Cop(op) => copilot::handler(op, method),
            Handler::Ctl(op) => control::handler(op, method),
            Handler::Svc(op) => health::handler(op, method),
            Handler::Doc(op) => apidoc::handler(op, method),
            Handler::Idp(op) => identity::handler(op, method),
            Handler::Bat(op) => batch::handler(op, method),
            Handler::Sub(op) => subscriptions::handler(op, method),
            Handler::Con(op) => console::handler(op, method),
        };
        let copilot = matches!(o.handler, Handler::Cop(_));
        match paths.iter_mut().find(|(path, ..)| *path == o.path) {
            Some((_, routes, _)) => *routes = std::mem::take(routes).merge(handler),
            None => paths.push((o.path, handler, copilot)),
        }
    }
    let mut router = Router::new();
    for (path, routes, copilot) in paths {
        let routes = if copilot {
            routes.fallback(copilot::method_not_allowed)
        } else {
            routes
        };
        router = router.route(path, routes);
    }
    for path in routes::CONTAINERS {
        router = router.route(path, copilot::container());
    }
    router
}

/// The method filter of an operation's method.
fn method_filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PATCH" => MethodFilter::PATCH,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        other => unreachable!("an operation with method {other}"),
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
    // The routes are the same for every server of the process: built once,
    // since a `$batch` builds this service again for its inner requests.
    static ROUTES: std::sync::OnceLock<Router<AppState>> = std::sync::OnceLock::new();
    let routes = ROUTES
        .get_or_init(|| {
            router()
                .fallback(unknown_path)
                .method_not_allowed_fallback(method_not_allowed)
        })
        .clone()
        .with_state(state.clone());
    let inner = routes.layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
        ApiError::Internal("a handler panicked".into()).into_response()
    }));
    // One layer before the router (no boxed service per layer and request):
    // it also applies fault rules, rewrites OData key segments and answers
    // conditional reads (`conventions`). CORS, when on, wraps it all, so a
    // browser's preflight is answered before authentication.
    let cors = cors::layer(&state.inner.cors_origins);
    tower::ServiceBuilder::new()
        .option_layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            state,
            conventions::graph_conventions,
        ))
        .service(inner)
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A path no route serves: 501 when it is a Graph operation Agentry does
/// not implement, else Graph's 400 for the first unknown segment.
async fn unknown_path(uri: Uri) -> ApiError {
    match routes::graph_operation(uri.path()) {
        Some((template, methods)) => ApiError::NotImplemented { template, methods },
        None => ApiError::UnknownSegment(routes::unknown_segment(uri.path())),
    }
}

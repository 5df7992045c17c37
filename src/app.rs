//! Wiring: configuration in, a bound listener and a running server out.

use crate::auth::oidc::Authenticator;
use crate::auth::{KeyError, KeyRing};
use crate::clock::{SharedClock, SystemClock};
use crate::config::ServerConfig;
use crate::http::console::DevSignIn;
use crate::http::{AppState, HttpSettings};
use crate::store::{self, Store, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Oidc(#[from] crate::auth::oidc::OidcError),
    #[error(transparent)]
    Cors(#[from] crate::http::cors::BadOrigin),
    #[error("cannot read the card trust store {path}: {reason}")]
    TrustStore { path: String, reason: String },
    #[error("cannot send change notifications: {0}")]
    Notify(#[from] crate::notify::NotifyError),
    #[error("the agent checker cannot start: {0}")]
    Watch(String),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// A server that has bound its port and opened its database, ready to run.
pub struct Application {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: crate::http::serve::ConnectionSettings,
    state: AppState,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    audit_retention_days: u32,
}

impl Application {
    pub async fn build(config: &ServerConfig) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: &ServerConfig,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        crate::http::cors::check(&config.cors_origins)?;
        // The port first: a server that cannot listen must not open, migrate
        // or seed the database on its way to failing.
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen.clone(),
                    source,
                })?;
        let keys = Arc::new(KeyRing::open_dir(
            &config.keys_dir,
            config.clock_skew_seconds,
        )?);
        let options = store::StoreOptions {
            pool_size: config.db_pool_size,
            read_cache_bytes: config.read_cache_mb.saturating_mul(1 << 20),
            clock: clock.clone(),
        };
        let store = store::open_with(&config.database_url, options).await?;
        if let Some(path) = &config.seed {
            let now = crate::clock::entity_timestamp(clock.now());
            let report = crate::seed::load(store.as_ref(), path, config.copilot, now).await;
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    store.close().await;
                    return Err(e.into());
                }
            };
            tracing::info!(
                seed = %path.display(),
                created = report.created,
                kept = report.kept,
                "seed file loaded"
            );
        }
        let files = match (&config.tls, config.tls_self_signed) {
            (Some(files), _) => Some(files.clone()),
            (None, true) => Some(crate::tls::self_signed(&config.data_dir)?),
            (None, false) => None,
        };
        let tls = files.as_ref().map(crate::tls::load).transpose()?;
        let connections = crate::http::serve::ConnectionSettings {
            max_connections: crate::http::serve::fit_to_descriptors(
                config.connections.max_connections,
            ),
            ..config.connections
        };
        let a2a = Arc::new(a2a_defaults(config)?);
        let settings = HttpSettings {
            max_body_bytes: config.max_body_bytes,
            trust_proxy: config.trust_proxy,
            https: tls.is_some(),
            copilot: config.copilot,
            throttle: config.throttle,
            journal: config.journal,
            cors_origins: config.cors_origins.clone(),
            change_retention_days: config.audit_retention_days,
            a2a: a2a.clone(),
            notifier: notifier(&config.notifications, &listener)?,
            watcher: watcher(&config.watch, &listener, a2a)?,
            console_dev_signin: console_dev_signin(config, &listener),
            external_sign_in: None,
            builtin_tokens: true,
        };
        let (external, external_sign_in) = match &config.oidc {
            Some(oidc) => (
                Some(crate::auth::oidc::OidcIssuer::new(oidc.clone()).await?),
                crate::auth::oidc::ExternalSignIn::resolve(oidc).await?,
            ),
            None => (None, None),
        };
        if let Some(e) = &external_sign_in {
            tracing::info!(
                client_id = %e.client_id,
                authorization_endpoint = %e.authorization_endpoint,
                "the console signs people in at the external issuer"
            );
        }
        let settings = HttpSettings {
            external_sign_in,
            builtin_tokens: config.builtin_tokens,
            ..settings
        };
        let builtin = config.builtin_tokens.then(|| keys.clone());
        let auth = Arc::new(
            Authenticator::new(builtin, external, config.clock_skew_seconds)
                .with_scoped_roles(config.scoped_roles.clone()),
        );
        let state = AppState::new(store.clone(), keys.clone(), auth, clock, settings);
        Ok(Self {
            listener,
            tls,
            connections,
            state,
            store,
            keys,
            audit_retention_days: config.audit_retention_days,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.clone()
    }

    /// What the handlers share (the store, the journal, the metrics).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then
    /// closes the database cleanly.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let clock = self.state.clock().clone();
        let pruner = tokio::spawn(prune_audit_log(
            self.store.clone(),
            clock.clone(),
            self.audit_retention_days,
        ));
        let notifier = tokio::spawn(
            self.state
                .notifier()
                .clone()
                .run(self.store.clone(), clock.clone()),
        );
        let watcher = tokio::spawn(
            self.state
                .watcher()
                .clone()
                .run(self.store.clone(), clock.clone()),
        );
        let service = crate::http::service(self.state);
        let served = crate::http::serve::serve(
            self.listener,
            self.tls,
            service,
            self.connections,
            clock,
            shutdown,
        )
        .await;
        pruner.abort();
        notifier.abort();
        watcher.abort();
        self.store.close().await;
        served.map_err(StartError::Serve)
    }
}

/// The A2A settings of tenants that set none, with the trust store read
/// once at start.
fn a2a_defaults(
    config: &ServerConfig,
) -> Result<crate::domain::a2a::settings::Defaults, StartError> {
    use crate::domain::a2a::{SignatureMode, signature::TrustStore};
    let trust = match &config.card_trust_store {
        Some(path) => {
            let fail = |reason: String| StartError::TrustStore {
                path: path.display().to_string(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
            TrustStore::from_jwks(&text).map_err(|e| fail(e.to_string()))?
        }
        None => {
            if config.card_signatures != SignatureMode::Off {
                tracing::warn!(
                    "card signatures are checked but no trust store is configured: no signature can verify"
                );
            }
            TrustStore::default()
        }
    };
    Ok(crate::domain::a2a::settings::Defaults {
        validation: config.card_validation,
        signatures: config.card_signatures,
        trust: Arc::new(trust),
        watch: Default::default(),
    })
}

/// The change notification sender: the configured allow-list, or public
/// addresses plus loopback when the server listens on loopback only.
fn notifier(
    config: &crate::config::NotificationConfig,
    listener: &TcpListener,
) -> Result<crate::notify::Notifier, StartError> {
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let allow = config
        .allow
        .clone()
        .unwrap_or_else(|| crate::outbound::AllowList::default_for(loopback));
    let mut settings = crate::notify::NotifySettings::new(allow);
    settings.max_minutes = config.max_minutes;
    settings.retry_for = std::time::Duration::from_secs(config.retry_seconds);
    Ok(crate::notify::Notifier::new(settings)?)
}

/// The agent checker: the configured allow-list, or public addresses plus
/// loopback when the server listens on loopback only.
fn watcher(
    config: &crate::config::WatchConfig,
    listener: &TcpListener,
    defaults: Arc<crate::domain::a2a::settings::Defaults>,
) -> Result<crate::watch::Watcher, StartError> {
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let allow = config
        .allow
        .clone()
        .unwrap_or_else(|| crate::outbound::AllowList::default_for(loopback));
    let settings = crate::watch::WatchSettings {
        allow,
        timeout: std::time::Duration::from_secs(config.timeout_seconds),
        checks_per_second: config.checks_per_second,
        per_host: config.per_host,
        poll: std::time::Duration::from_secs(1),
    };
    crate::watch::Watcher::new(settings, defaults).map_err(|e| StartError::Watch(e.to_string()))
}

/// Whether the console may sign in without a password: only when asked for,
/// on a loopback listener and without a trusted proxy (which would forward
/// other machines' requests); asked for elsewhere, it is refused and said so.
fn console_dev_signin(config: &ServerConfig, listener: &TcpListener) -> DevSignIn {
    let addr = listener.local_addr().ok();
    let mode = dev_signin_mode(config.console_dev_signin, addr, config.trust_proxy);
    if mode == DevSignIn::Refused {
        tracing::warn!(
            listen = %config.listen,
            trust_proxy = config.trust_proxy,
            "console_dev_signin is ignored: it works only on a loopback address without a trusted proxy"
        );
    }
    mode
}

fn dev_signin_mode(asked: bool, addr: Option<SocketAddr>, trust_proxy: bool) -> DevSignIn {
    match (asked, addr) {
        (false, _) => DevSignIn::Off,
        (true, Some(a)) if a.ip().is_loopback() && !trust_proxy => DevSignIn::On,
        (true, _) => DevSignIn::Refused,
    }
}

/// Every hour, from the start: deletes the audit records older than the
/// retention. A failure is logged and tried again an hour later.
async fn prune_audit_log(store: Arc<dyn Store>, clock: SharedClock, days: u32) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let cutoff = clock.now() - time::Duration::days(i64::from(days));
        let before = crate::clock::entity_timestamp(cutoff);
        if let Err(e) = store.prune_audit_log(&before).await {
            tracing::warn!(error = %e, "pruning the audit log failed");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_signin_is_on_only_when_asked_for_on_loopback_without_a_trusted_proxy() {
        let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        let cases = [
            (false, at("127.0.0.1:7171"), false, DevSignIn::Off),
            (true, at("127.0.0.1:7171"), false, DevSignIn::On),
            (true, at("127.0.0.2:7171"), false, DevSignIn::On),
            (true, at("[::1]:7171"), false, DevSignIn::On),
            (true, at("127.0.0.1:7171"), true, DevSignIn::Refused),
            (true, at("0.0.0.0:7171"), false, DevSignIn::Refused),
            (true, at("[::]:7171"), false, DevSignIn::Refused),
            (true, at("192.168.1.2:7171"), false, DevSignIn::Refused),
            (true, None, false, DevSignIn::Refused),
            (false, at("0.0.0.0:7171"), false, DevSignIn::Off),
        ];
        for (asked, addr, proxy, expected) in cases {
            assert_eq!(
                dev_signin_mode(asked, addr, proxy),
                expected,
                "{asked} {addr:?} {proxy}"
            );
        }
    }
}

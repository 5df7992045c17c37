//! Wiring: configuration in, a bound listener and a running server out.

use crate::auth::{KeyError, KeyRing};
use crate::clock::{SharedClock, SystemClock};
use crate::config::ServerConfig;
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
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// A server that has bound its port and opened its database, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
}

impl Application {
    pub async fn build(config: &ServerConfig) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: &ServerConfig,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let keys = Arc::new(KeyRing::load_with_skew(
            &config.data_dir,
            config.clock_skew_seconds,
        )?);
        let store = store::open(&config.database_url)?;
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
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen.clone(),
                    source,
                })?;
        let settings = HttpSettings {
            max_body_bytes: config.max_body_bytes,
            trust_proxy: config.trust_proxy,
            copilot: config.copilot,
        };
        let state = AppState::new(store.clone(), keys.clone(), clock, settings);
        Ok(Self {
            listener,
            state,
            store,
            keys,
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

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then
    /// closes the database cleanly.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let service = crate::http::service(self.state);
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        self.store.close().await;
        served.map_err(StartError::Serve)
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

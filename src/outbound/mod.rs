//! Requests the server makes of its own accord, to URLs its clients name:
//! change notifications to receivers, checks of registered agents' cards.
//! Every one goes through [`client`]: only to hosts and addresses on an
//! [`AllowList`] (checked on the resolved addresses, so a public name
//! cannot point the server at the operator's network), no redirects
//! followed, no proxies.

mod allow;

pub use allow::{AllowList, BadRule};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why an outbound request was not made or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL's host or addresses are not on the allow-list.
    #[error("'{0}' is not on the allow-list")]
    NotAllowed(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, TLS, DNS…: the text is for logs.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

/// Resolves names as the system does, then keeps the addresses the
/// allow-list permits (all of them for a listed host name).
struct Guarded(Arc<AllowList>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = allow.host_allowed(&host);
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| by_name || allow.ip_allowed(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(OutboundError::NotAllowed(host)) as _);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client that reaches only what `allow` permits, within `timeout`.
pub fn client(allow: Arc<AllowList>, timeout: Duration) -> Result<reqwest::Client, OutboundError> {
    crate::tls::install_crypto();
    let builder = || {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Guarded(allow.clone())))
            .user_agent(concat!("Agentry/", env!("CARGO_PKG_VERSION")))
    };
    match builder().build() {
        Ok(client) => Ok(client),
        Err(e) => {
            // No system certificates (a `FROM scratch` image): http URLs
            // still work; https ones fail their handshake.
            tracing::warn!(error = ?e, "no trusted certificates for outbound https requests");
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder()
                .tls_backend_preconfigured(tls)
                .build()
                .map_err(|e| OutboundError::Unreachable(format!("{e:?}")))
        }
    }
}

/// Parses a URL and refuses one whose host is an address off the
/// allow-list (names are checked when resolved).
pub fn parse_url(allow: &AllowList, url: &str) -> Result<reqwest::Url, OutboundError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::NotAllowed(url.to_owned()))?;
    let host = parsed.host_str().unwrap_or("");
    let allowed = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => allow.ip_allowed(ip),
        Err(_) => !host.is_empty(),
    };
    if allowed {
        Ok(parsed)
    } else {
        Err(OutboundError::NotAllowed(host.to_owned()))
    }
}

/// What a failed request comes to: a timeout, the allow-list's refusal
/// (wrapped by reqwest and hyper), or anything else.
pub fn failure(e: reqwest::Error, timeout: Duration) -> OutboundError {
    if e.is_timeout() {
        return OutboundError::Timeout(timeout);
    }
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        if let Some(OutboundError::NotAllowed(host)) = s.downcast_ref::<OutboundError>() {
            return OutboundError::NotAllowed(host.clone());
        }
        source = s.source();
    }
    OutboundError::Unreachable(format!("{e:?}"))
}

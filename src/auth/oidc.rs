//! Tokens from an external OpenID Connect provider (Entra ID or any other),
//! beside or instead of Agentry's own: the issuer, the accepted audiences
//! and the provider's keys (a JWKS file or URL, cached, and read again when
//! a token names a key id the cache does not have). With a console client
//! configured, the web console signs people in at that provider too
//! ([`ExternalSignIn`]): the authorization-code flow with PKCE, as a
//! single-page application registered there.

use super::keys::{Claims, principal_from};
use super::{AuthError, KeyRing, Principal};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A token with an unknown `kid` refreshes the keys at most this often.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// Keys fetched from a URL are refreshed after this long anyway.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What `--oidc-*` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The `iss` of its tokens; `{tenantid}` stands for the token's `tid`.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// A JWKS file, or an `http(s)://` URL serving one.
    pub jwks: String,
    /// The web console as a client of this issuer, when configured.
    pub console: Option<ConsoleClient>,
}

/// The console's registration at the external issuer (`--oidc-console-*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsoleClient {
    /// The console's application (client) id there: a single-page
    /// application whose redirect URI is this server's `/console/`.
    pub client_id: String,
    /// The scope to ask for; by default the first audience's `/.default`.
    pub scope: Option<String>,
    /// What `{tenantid}` stands for in the endpoints (a tenant id, or
    /// Entra's `organizations`).
    pub tenant: Option<String>,
    /// The OpenID configuration document; by default the issuer's
    /// `/.well-known/openid-configuration`.
    pub discovery: Option<String>,
    /// The endpoints, when given rather than discovered.
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// How the console signs in at the external issuer, resolved at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSignIn {
    pub client_id: String,
    pub scope: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

impl ExternalSignIn {
    /// Resolves the endpoints (from the discovery document unless both are
    /// given); `None` when no console client is configured. A document that
    /// cannot be read, or an endpoint that is not an https URL (http only
    /// on a loopback host), stops the start.
    pub async fn resolve(config: &OidcConfig) -> Result<Option<Self>, OidcError> {
        let Some(console) = &config.console else {
            return Ok(None);
        };
        let bad = |reason: String| OidcError::ConsoleClient(reason);
        let fill = |text: &str| -> Result<String, OidcError> {
            if !text.contains("{tenantid}") {
                return Ok(text.to_owned());
            }
            console
                .tenant
                .as_deref()
                .map(|t| text.replace("{tenantid}", t))
                .ok_or_else(|| {
                    bad(format!(
                        "'{text}' names {{tenantid}}: set --oidc-console-tenant (a tenant id, or \
                         Entra's 'organizations')"
                    ))
                })
        };
        let (mut authorization, mut token) = (
            console
                .authorization_endpoint
                .as_deref()
                .map(fill)
                .transpose()?,
            console.token_endpoint.as_deref().map(fill).transpose()?,
        );
        if authorization.is_none() || token.is_none() {
            let url = match &console.discovery {
                Some(d) => fill(d)?,
                None => format!(
                    "{}/.well-known/openid-configuration",
                    fill(&config.issuer)?.trim_end_matches('/')
                ),
            };
            let doc = discover(&url).await?;
            let pick = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            authorization = authorization.or_else(|| pick("authorization_endpoint"));
            token = token.or_else(|| pick("token_endpoint"));
            if authorization.is_none() || token.is_none() {
                return Err(bad(format!(
                    "the OpenID configuration {url} names no authorization_endpoint or token_endpoint"
                )));
            }
        }
        let authorization_endpoint = endpoint(authorization.unwrap_or_default())?;
        let token_endpoint = endpoint(token.unwrap_or_default())?;
        let scope = match (&console.scope, config.audiences.first()) {
            (Some(scope), _) => scope.clone(),
            (None, Some(aud)) => format!("{}/.default", aud.trim_end_matches('/')),
            (None, None) => {
                return Err(bad(
                    "no audience to ask a token for: set --oidc-console-scope".into(),
                ));
            }
        };
        if console.client_id.trim().is_empty() {
            return Err(bad("the console's client id is empty".into()));
        }
        Ok(Some(ExternalSignIn {
            client_id: console.client_id.clone(),
            scope,
            authorization_endpoint,
            token_endpoint,
        }))
    }

    /// The token endpoint as a `connect-src` source of the console's
    /// Content-Security-Policy: that URL's path only.
    pub fn token_source(&self) -> String {
        match reqwest::Url::parse(&self.token_endpoint) {
            Ok(url) => {
                let mut source = url.origin().ascii_serialization();
                source.push_str(url.path());
                source
            }
            Err(_) => String::new(),
        }
    }
}

/// An endpoint the browser goes to: https, or http on a loopback host,
/// and nothing that could break out of a policy or a header.
fn endpoint(text: String) -> Result<String, OidcError> {
    let bad = || {
        OidcError::ConsoleClient(format!(
            "'{text}' is not an endpoint the console can use: an https:// URL (http:// only on \
             localhost or a loopback address)"
        ))
    };
    let url = reqwest::Url::parse(&text).map_err(|_| bad())?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    let plain = !url.as_str().contains([';', ',', '\'', '"', ' ', '*'])
        && url.fragment().is_none()
        && url.username().is_empty();
    if !scheme_ok || !plain || host.is_empty() {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// The OpenID configuration document at `url`.
async fn discover(url: &str) -> Result<serde_json::Value, OidcError> {
    crate::tls::install_crypto();
    let fail = |reason: String| {
        OidcError::ConsoleClient(format!(
            "cannot read the OpenID configuration {url}: {reason}"
        ))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !r.status().is_success() {
        return Err(fail(format!("HTTP {}", r.status())));
    }
    let body = r.bytes().await.map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot read the JWKS {source_name}: {reason}")]
    Jwks { source_name: String, reason: String },
    #[error("the console's sign-in at the external issuer: {0}")]
    ConsoleClient(String),
}

enum Source {
    File(PathBuf),
    Url(String),
}

struct Cache {
    set: JwkSet,
    fetched: Instant,
}

/// One external issuer.
pub struct OidcIssuer {
    config: OidcConfig,
    source: Source,
    cache: RwLock<Cache>,
    client: reqwest::Client,
}

impl OidcIssuer {
    /// Reads the keys once, so a wrong configuration stops the start.
    pub async fn new(config: OidcConfig) -> Result<Self, OidcError> {
        crate::tls::install_crypto();
        let source = if config.jwks.starts_with("http://") || config.jwks.starts_with("https://") {
            Source::Url(config.jwks.clone())
        } else {
            Source::File(PathBuf::from(&config.jwks))
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Jwks {
                source_name: config.jwks.clone(),
                reason: e.to_string(),
            })?;
        let mut issuer = Self {
            config,
            source,
            cache: RwLock::new(Cache {
                set: JwkSet { keys: vec![] },
                fetched: Instant::now(),
            }),
            client,
        };
        let set = issuer.fetch().await?;
        issuer.cache = RwLock::new(Cache {
            set,
            fetched: Instant::now(),
        });
        Ok(issuer)
    }

    async fn fetch(&self) -> Result<JwkSet, OidcError> {
        let fail = |reason: String| OidcError::Jwks {
            source_name: self.config.jwks.clone(),
            reason,
        };
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| fail(e.to_string()))?,
            Source::Url(url) => {
                let r = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                if !r.status().is_success() {
                    return Err(fail(format!("HTTP {}", r.status())));
                }
                r.bytes().await.map_err(|e| fail(e.to_string()))?.to_vec()
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))
    }

    /// Whether this issuer signed a token claiming `iss` (for tenant `tid`).
    pub fn issued(&self, iss: &str, tid: Option<&str>) -> bool {
        let expected = self
            .config
            .issuer
            .replace("{tenantid}", tid.unwrap_or_default());
        iss == expected
    }

    fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Option<Algorithm>)> {
        let cache = self.cache.read().expect("jwks lock poisoned");
        let jwk = match kid {
            Some(kid) => cache.set.find(kid)?,
            None if cache.set.keys.len() == 1 => &cache.set.keys[0],
            None => return None,
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse().ok());
        DecodingKey::from_jwk(jwk).ok().map(|k| (k, alg))
    }

    fn stale(&self, unknown_kid: bool) -> bool {
        let fetched = self.cache.read().expect("jwks lock poisoned").fetched;
        (unknown_kid && fetched.elapsed() >= REFRESH_INTERVAL) || fetched.elapsed() >= MAX_AGE
    }

    async fn refresh(&self) {
        match self.fetch().await {
            Ok(set) => {
                *self.cache.write().expect("jwks lock poisoned") = Cache {
                    set,
                    fetched: Instant::now(),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the JWKS of the external issuer");
                self.cache.write().expect("jwks lock poisoned").fetched = Instant::now();
            }
        }
    }

    /// Verifies a token this issuer claims to have signed.
    pub async fn verify(&self, token: &str, clock_skew: u64) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::ES256
                | Algorithm::PS256
                | Algorithm::ES384
                | Algorithm::RS384
                | Algorithm::RS512
        ) {
            return Err(AuthError::InvalidSignature);
        }
        let mut key = self.key(header.kid.as_deref());
        if self.stale(key.is_none()) {
            self.refresh().await;
            key = self.key(header.kid.as_deref());
        }
        let (key, key_alg) = key.ok_or(AuthError::InvalidSignature)?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(AuthError::InvalidSignature);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = clock_skew;
        validation.validate_nbf = true;
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature | K::ImmatureSignature => AuthError::Expired,
                K::InvalidAudience => AuthError::InvalidAudience,
                K::InvalidSignature
                | K::InvalidAlgorithm
                | K::InvalidEcdsaKey
                | K::InvalidRsaKey(_) => AuthError::InvalidSignature,
                _ => AuthError::Malformed,
            }
        })?;
        if !self.issued(
            data.claims.iss.as_deref().unwrap_or_default(),
            data.claims.tid.as_deref(),
        ) {
            return Err(AuthError::InvalidIssuer);
        }
        principal_from(data.claims)
    }
}

/// Every way a bearer token can be valid here: Agentry's own keys and/or an
/// external issuer, chosen by the token's (still unverified) `iss`.
pub struct Authenticator {
    builtin: Option<Arc<KeyRing>>,
    external: Option<OidcIssuer>,
    clock_skew: u64,
    /// Template id → registry-scoped role name, as configured.
    scoped_roles: Vec<(String, &'static str)>,
    /// Verified tokens by their text: checking an ES256 or RS256 signature
    /// costs far more than a lookup. Keyed by the text itself rather than a
    /// digest of it: a lookup then hashes the token once with the map's
    /// hasher and compares it whole, with no cryptographic hash per request.
    cache: RwLock<TokenCache>,
}

/// Verified tokens and the bytes of their texts.
#[derive(Default)]
struct TokenCache {
    tokens: HashMap<Box<str>, Verified, TailHash>,
    bytes: usize,
}

/// Hashes a token by its length and last bytes only, with a keyed hasher:
/// the end of a JWT is its signature, so tokens differ there, and hashing
/// the whole text (often over a kilobyte) would cost more than the rest of
/// the lookup. Equal tokens hash alike; the map still compares whole texts.
#[derive(Default, Clone)]
struct TailHash(std::collections::hash_map::RandomState);

/// How many trailing bytes of a token [`TailHash`] reads.
const HASHED_TAIL: usize = 32;

impl std::hash::BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(std::collections::hash_map::DefaultHasher);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_usize(bytes.len());
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// A verified caller and when its token was verified.
type Verified = (Arc<Principal>, Instant);

/// A verified token is trusted again without its signature check for this
/// long (never past its `exp`).
const CACHE_TTL: Duration = Duration::from_secs(300);
/// The cache is emptied when it holds this many tokens…
const CACHE_MAX: usize = 10_000;
/// …or this many bytes of token text.
const CACHE_MAX_BYTES: usize = 4 << 20;

impl Authenticator {
    pub fn new(
        builtin: Option<Arc<KeyRing>>,
        external: Option<OidcIssuer>,
        clock_skew: u64,
    ) -> Self {
        Self {
            builtin,
            external,
            clock_skew,
            scoped_roles: Vec::new(),
            cache: RwLock::new(TokenCache::default()),
        }
    }

    /// Recognises these template ids (`wids`) as the registry-scoped roles named.
    pub fn with_scoped_roles(mut self, roles: Vec<(String, &'static str)>) -> Self {
        self.scoped_roles = roles;
        self
    }

    /// Verifies a bearer token and names the caller it describes.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        // Token lifetimes follow the wall clock, as the JWT library's checks do.
        let now = crate::clock::wall_now().unix_timestamp();
        if let Some((p, at)) = self
            .cache
            .read()
            .expect("token cache poisoned")
            .tokens
            .get(token)
            && at.elapsed() < CACHE_TTL
            && now < p.expires_at
        {
            return Ok(p.clone());
        }
        let p = Arc::new(self.verify_uncached(token).await?);
        let mut cache = self.cache.write().expect("token cache poisoned");
        if cache.tokens.len() >= CACHE_MAX || cache.bytes + token.len() > CACHE_MAX_BYTES {
            cache.tokens.clear();
            cache.bytes = 0;
        }
        if cache
            .tokens
            .insert(token.into(), (p.clone(), Instant::now()))
            .is_none()
        {
            cache.bytes += token.len();
        }
        Ok(p)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, AuthError> {
        let mut p = self.verify_signature(token).await?;
        p.scoped_roles = self
            .scoped_roles
            .iter()
            .filter(|(id, _)| p.wids.iter().any(|w| w.eq_ignore_ascii_case(id)))
            .map(|(_, name)| *name)
            .collect();
        Ok(p)
    }

    async fn verify_signature(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if let Some(external) = &self.external {
            // The issuer only routes the token; the chosen verifier checks it again, signed.
            let unverified = jsonwebtoken::dangerous::insecure_decode::<Claims>(token).ok();
            let claims = unverified.as_ref().map(|d| &d.claims);
            let iss = claims.and_then(|c| c.iss.as_deref()).unwrap_or_default();
            let tid = claims.and_then(|c| c.tid.as_deref());
            if external.issued(iss, tid) {
                // Entra's v1 tokens and Agentry's own share an issuer
                // (`https://sts.windows.net/{tid}/`): then the key id
                // tells them apart, and a key the external issuer does not
                // know may still be one of ours (rotated by another replica).
                let ours = self
                    .builtin
                    .as_ref()
                    .filter(|_| iss == super::keys::issuer(tid.unwrap_or_default()));
                let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
                if let Some(keys) = ours
                    && kid.is_some_and(|k| keys.key_ids().contains(&k))
                {
                    return keys.verify(token);
                }
                return match (external.verify(token, self.clock_skew).await, ours) {
                    (Err(AuthError::InvalidSignature), Some(keys)) => keys.verify(token),
                    (result, _) => result,
                };
            }
        }
        match &self.builtin {
            Some(keys) => keys.verify(token),
            None if jsonwebtoken::decode_header(token).is_err() => Err(AuthError::Malformed),
            None => Err(AuthError::InvalidIssuer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{CallerKind, TokenRequest};

    #[test]
    fn tokens_that_differ_only_before_their_tail_are_still_told_apart() {
        let mut cache: HashMap<Box<str>, u8, TailHash> = HashMap::default();
        let tail = "s".repeat(HASHED_TAIL);
        cache.insert(format!("a.{tail}").into(), 1);
        cache.insert(format!("b.{tail}").into(), 2);
        assert_eq!(cache.get(format!("a.{tail}").as_str()), Some(&1));
        assert_eq!(cache.get(format!("b.{tail}").as_str()), Some(&2));
        assert_eq!(cache.get(format!("c.{tail}").as_str()), None);
    }

    fn console_config(change: impl FnOnce(&mut ConsoleClient)) -> OidcConfig {
        let mut console = ConsoleClient {
            client_id: "spa".into(),
            tenant: Some("contoso".into()),
            authorization_endpoint: Some(
                "https://login.example/{tenantid}/oauth2/v2.0/authorize".into(),
            ),
            token_endpoint: Some("https://login.example/{tenantid}/oauth2/v2.0/token".into()),
            ..ConsoleClient::default()
        };
        change(&mut console);
        OidcConfig {
            issuer: "https://login.example/{tenantid}/v2.0".into(),
            audiences: vec!["api://agentry/".into()],
            jwks: "unused".into(),
            console: Some(console),
        }
    }

    #[tokio::test]
    async fn the_consoles_endpoints_fill_in_the_tenant_and_must_be_https_or_loopback() {
        let e = ExternalSignIn::resolve(&console_config(|_| {}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e.authorization_endpoint,
            "https://login.example/contoso/oauth2/v2.0/authorize"
        );
        assert_eq!(e.scope, "api://agentry/.default", "the first audience's");
        assert_eq!(
            e.token_source(),
            "https://login.example/contoso/oauth2/v2.0/token"
        );
        let loopback = console_config(|c| {
            c.token_endpoint = Some("http://127.0.0.1:9/t/oauth2/v2.0/token?x=1".into());
            c.scope = Some("https://graph.microsoft.com/.default".into());
        });
        let e = ExternalSignIn::resolve(&loopback).await.unwrap().unwrap();
        assert_eq!(e.token_source(), "http://127.0.0.1:9/t/oauth2/v2.0/token");
        assert_eq!(e.scope, "https://graph.microsoft.com/.default");

        let refused = [
            console_config(|c| c.tenant = None),
            console_config(|c| c.token_endpoint = Some("http://login.example/token".into())),
            console_config(|c| {
                c.authorization_endpoint = Some("https://login.example/a;script-src *".into())
            }),
            console_config(|c| c.client_id = " ".into()),
        ];
        for config in refused {
            let e = ExternalSignIn::resolve(&config).await;
            assert!(
                matches!(e, Err(OidcError::ConsoleClient(_))),
                "{config:?}: {e:?}"
            );
        }
        let mut none = console_config(|_| {});
        none.console = None;
        assert_eq!(ExternalSignIn::resolve(&none).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_cached_token_is_not_trusted_past_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::load_with_skew(dir.path(), 0).unwrap());
        let auth = Authenticator::new(Some(keys.clone()), None, 0);
        let now = crate::clock::wall_now().unix_timestamp();
        let token = keys
            .mint(&TokenRequest {
                tenant_id: "t".into(),
                kind: CallerKind::Delegated,
                subject: "u".into(),
                scopes: vec!["x".into()],
                roles: vec![],
                wids: vec![],
                issued_at: now,
                expires_in: 1,
            })
            .unwrap();
        assert!(auth.verify(&token).await.is_ok());
        assert!(auth.verify(&token).await.is_ok(), "served from the cache");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(auth.verify(&token).await, Err(AuthError::Expired));
        assert_eq!(
            auth.verify("garbage").await,
            Err(AuthError::Malformed),
            "failures are not cached as successes"
        );
    }
}

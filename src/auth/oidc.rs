//! Tokens from an external OpenID Connect provider (Entra ID or any other),
//! beside or instead of Agentry's own: the issuer, the accepted audiences
//! and the provider's keys (a JWKS file or URL, cached, and read again when
//! a token names a key id the cache does not have).

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
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot read the JWKS {source_name}: {reason}")]
    Jwks { source_name: String, reason: String },
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
            if external.issued(iss, claims.and_then(|c| c.tid.as_deref())) {
                return external.verify(token, self.clock_skew).await;
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

//! The signing key in `<data-dir>/keys/`, created on first start, and the
//! tokens it signs and verifies (ES256).

use super::{AuthError, CallerKind, GRAPH_APP_ID, GRAPH_AUDIENCE, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Accepted clock difference between the token issuer and this server, by default.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// The longest lifetime a minted token may have; a retired key keeps
/// validating for this long after its retirement.
pub const MAX_TOKEN_LIFETIME_SECONDS: i64 = 24 * 3600;
/// A token with an unknown `kid` makes the server look at the key folder
/// again, at most this often (a key may have been rotated meanwhile).
const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// The client id put in delegated tokens minted by `agentry token`.
pub const CLI_CLIENT_ID: &str = "a9e47a1c-6d1e-4d5e-9b5c-1d6f0a9e7c01";

const CURRENT: &str = "signing-key.pem";
const RETIRED: &str = "retired";
const SECRET: &str = "secret.bin";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use the key folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key {path} is not a PKCS#8 P-256 key")]
    BadKey { path: PathBuf },
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// One key: its id and what signs and verifies with it.
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public point's coordinates, base64url, for the JWKS document.
    x: String,
    y: String,
}

/// The keys of one moment: the current signer and the retired keys that
/// still verify.
struct Keys {
    current: Key,
    retired: Vec<Key>,
    loaded_at: std::time::Instant,
}

/// The keys this server signs with and accepts, read from `<data-dir>/keys/`:
/// `signing-key.pem` signs; `retired/<unix time>-<kid>.pem` still verify
/// for [`MAX_TOKEN_LIFETIME_SECONDS`] after their retirement.
pub struct KeyRing {
    dir: PathBuf,
    keys: std::sync::RwLock<Keys>,
    secret: [u8; 32],
    clock_skew: u64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A public key as a JSON Web Key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub x: String,
    pub y: String,
}

/// What `agentry token` asks for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub tenant_id: String,
    pub kind: CallerKind,
    /// The user's object id (delegated) or the application's client id.
    pub subject: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub wids: Vec<String>,
    pub issued_at: i64,
    pub expires_in: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) iss: Option<String>,
    #[serde(default)]
    pub(super) tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) idtyp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) wids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) preferred_username: Option<String>,
    pub(super) exp: i64,
    #[serde(default)]
    pub(super) nbf: Option<i64>,
    #[serde(default)]
    pub(super) iat: Option<i64>,
}

/// The issuer Agentry writes in a tenant's tokens, as Entra does for Graph.
pub fn issuer(tenant: &str) -> String {
    format!("https://sts.windows.net/{tenant}/")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn key_from_pem(pem: &str) -> Option<Key> {
    let secret = p256::SecretKey::from_pkcs8_pem(pem).ok()?;
    let point = secret.public_key().to_encoded_point(false);
    let (x, y) = (point.x()?, point.y()?);
    let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(point.as_bytes())[..16]);
    Some(Key {
        kid,
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).ok()?,
        decoding: DecodingKey::from_ec_der(point.as_bytes()),
        x: URL_SAFE_NO_PAD.encode(x),
        y: URL_SAFE_NO_PAD.encode(y),
    })
}

/// Writes `bytes` to `path` only if it does not exist yet: whoever links
/// first wins, so two processes starting at once agree.
fn create_once(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = dir.join(format!(".new.{}.tmp", uuid::Uuid::new_v4()));
    write_private(&tmp, bytes).map_err(io(&tmp))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(KeyError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

fn new_key_pem(path: &Path) -> Result<String, KeyError> {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|_| KeyError::BadKey {
            path: path.to_owned(),
        })
}

fn now_unix() -> i64 {
    crate::clock::wall_now().unix_timestamp()
}

/// Reads the current key and the retired keys still within their grace period.
fn read_keys(dir: &Path) -> Result<Keys, KeyError> {
    let path = dir.join(CURRENT);
    let pem = std::fs::read_to_string(&path).map_err(io(&path))?;
    let current = key_from_pem(&pem).ok_or(KeyError::BadKey { path })?;
    let mut retired = Vec::new();
    let retired_dir = dir.join(RETIRED);
    if let Ok(entries) = std::fs::read_dir(&retired_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(when) = name.split('-').next().and_then(|t| t.parse::<i64>().ok()) else {
                continue;
            };
            if when + MAX_TOKEN_LIFETIME_SECONDS < now_unix() {
                continue;
            }
            if let Some(key) = std::fs::read_to_string(entry.path())
                .ok()
                .as_deref()
                .and_then(key_from_pem)
            {
                retired.push(key);
            }
        }
    }
    Ok(Keys {
        current,
        retired,
        loaded_at: std::time::Instant::now(),
    })
}

impl KeyRing {
    /// Loads the keys from `<data_dir>/keys/`, creating the signing key and
    /// the server secret on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        Self::load_with_skew(data_dir, DEFAULT_CLOCK_SKEW_SECONDS)
    }

    /// As [`KeyRing::load_or_create`], accepting `clock_skew` seconds of difference.
    pub fn load_with_skew(data_dir: &Path, clock_skew: u64) -> Result<Self, KeyError> {
        Self::open_dir(&data_dir.join("keys"), clock_skew)
    }

    /// Loads the keys from the folder `dir` itself (`--keys-dir`), creating
    /// the signing key and the server secret on first use. Replicas that
    /// share this folder share their keys and paging secret.
    pub fn open_dir(dir: &Path, clock_skew: u64) -> Result<Self, KeyError> {
        let dir = dir.to_path_buf();
        crate::files::create_private_dir(&dir).map_err(io(&dir))?;
        let current = dir.join(CURRENT);
        if !current.exists() {
            create_once(&dir, &current, new_key_pem(&current)?.as_bytes())?;
        }
        let secret_path = dir.join(SECRET);
        if !secret_path.exists() {
            let mut fresh = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut fresh);
            create_once(&dir, &secret_path, &fresh)?;
        }
        let bytes = std::fs::read(&secret_path).map_err(io(&secret_path))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::BadKey { path: secret_path })?;
        let keys = read_keys(&dir)?;
        Ok(Self {
            dir,
            keys: std::sync::RwLock::new(keys),
            secret,
            clock_skew,
        })
    }

    /// Makes a new signing key current; the old one is retired and keeps
    /// validating the tokens it signed until they expire. Returns the new `kid`.
    pub fn rotate(data_dir: &Path) -> Result<String, KeyError> {
        Self::rotate_dir(&data_dir.join("keys"))
    }

    /// As [`KeyRing::rotate`], for the keys in the folder `dir` itself.
    pub fn rotate_dir(dir: &Path) -> Result<String, KeyError> {
        let ring = Self::open_dir(dir, DEFAULT_CLOCK_SKEW_SECONDS)?;
        let dir = ring.dir.clone();
        let retired_dir = dir.join(RETIRED);
        crate::files::create_private_dir(&retired_dir).map_err(io(&retired_dir))?;
        let current = dir.join(CURRENT);
        let old_kid = ring.kid();
        let old = std::fs::read(&current).map_err(io(&current))?;
        let keep = retired_dir.join(format!("{}-{old_kid}.pem", now_unix()));
        write_private(&keep, &old).map_err(io(&keep))?;
        let pem = new_key_pem(&current)?;
        let tmp = dir.join(format!(".rotate.{}.tmp", uuid::Uuid::new_v4()));
        write_private(&tmp, pem.as_bytes()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &current).map_err(io(&current))?;
        let key = key_from_pem(&pem).ok_or(KeyError::BadKey { path: current })?;
        Ok(key.kid)
    }

    /// The key id written in the `kid` header of minted tokens.
    pub fn kid(&self) -> String {
        self.keys
            .read()
            .expect("key lock poisoned")
            .current
            .kid
            .clone()
    }

    /// The public keys that verify tokens (current first), for the JWKS document.
    pub fn jwks(&self) -> Vec<Jwk> {
        let keys = self.keys.read().expect("key lock poisoned");
        std::iter::once(&keys.current)
            .chain(keys.retired.iter())
            .map(|k| Jwk {
                kty: "EC",
                crv: "P-256",
                use_: "sig",
                alg: "ES256",
                kid: k.kid.clone(),
                x: k.x.clone(),
                y: k.y.clone(),
            })
            .collect()
    }

    /// A secret derived from the server secret (`keys/secret.bin`), for other
    /// server-side MACs (paging tokens); replicas sharing the key folder share it.
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    /// Signs an access token with the claims Entra puts in Graph tokens.
    pub fn mint(&self, req: &TokenRequest) -> Result<String, KeyError> {
        let app_id = match req.kind {
            CallerKind::Delegated => CLI_CLIENT_ID,
            CallerKind::Application => req.subject.as_str(),
        };
        self.mint_as(req, app_id, None)
    }

    /// Signs a delegated token of a signed-in user: `appid` is the client
    /// that signed the user in, `upn` and `preferred_username` the user's
    /// sign-in name.
    pub fn mint_signed_in(
        &self,
        req: &TokenRequest,
        client_id: &str,
        user_name: &str,
    ) -> Result<String, KeyError> {
        self.mint_as(req, client_id, Some(user_name))
    }

    fn mint_as(
        &self,
        req: &TokenRequest,
        app_id: &str,
        user_name: Option<&str>,
    ) -> Result<String, KeyError> {
        let delegated = req.kind == CallerKind::Delegated;
        let lifetime = req.expires_in.clamp(1, MAX_TOKEN_LIFETIME_SECONDS);
        let claims = Claims {
            aud: Some(serde_json::Value::String(GRAPH_AUDIENCE.to_owned())),
            iss: Some(issuer(&req.tenant_id)),
            tid: Some(req.tenant_id.clone()),
            oid: Some(req.subject.clone()),
            sub: Some(req.subject.clone()),
            appid: Some(app_id.to_owned()),
            azp: Some(app_id.to_owned()),
            idtyp: Some(if delegated { "user" } else { "app" }.to_owned()),
            scp: delegated.then(|| req.scopes.join(" ")),
            roles: (!delegated).then(|| req.roles.clone()),
            wids: delegated.then(|| req.wids.clone()),
            ver: Some("1.0".to_owned()),
            upn: user_name.filter(|_| delegated).map(str::to_owned),
            preferred_username: user_name.filter(|_| delegated).map(str::to_owned),
            exp: req.issued_at + lifetime,
            nbf: Some(req.issued_at),
            iat: Some(req.issued_at),
        };
        let keys = self.keys.read().expect("key lock poisoned");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &keys.current.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// The verifying key for `kid` (the current key when absent), reading
    /// the key folder again when the id is unknown: it may have been rotated.
    fn decoding_key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let find = |keys: &Keys| -> Option<DecodingKey> {
            match kid {
                None => Some(keys.current.decoding.clone()),
                Some(kid) => std::iter::once(&keys.current)
                    .chain(keys.retired.iter())
                    .find(|k| k.kid == kid)
                    .map(|k| k.decoding.clone()),
            }
        };
        {
            let keys = self.keys.read().expect("key lock poisoned");
            if let Some(k) = find(&keys) {
                return Some(k);
            }
            if keys.loaded_at.elapsed() < RELOAD_INTERVAL {
                return None;
            }
        }
        let fresh = read_keys(&self.dir).ok()?;
        let found = find(&fresh);
        *self.keys.write().expect("key lock poisoned") = fresh;
        found
    }

    /// The ids of the keys this server accepts, the signing one first.
    pub fn key_ids(&self) -> Vec<String> {
        let keys = self.keys.read().expect("key lock poisoned");
        std::iter::once(&keys.current)
            .chain(keys.retired.iter())
            .map(|k| k.kid.clone())
            .collect()
    }

    /// Checks signature, algorithm, issuer, expiry, not-before and audience,
    /// and returns the caller the token describes.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthError::InvalidSignature);
        }
        let key =
            self.decoding_key(header.kid.as_deref())
                .ok_or_else(|| AuthError::UnknownKey {
                    kid: header.kid.clone().unwrap_or_default(),
                    known: self.key_ids(),
                })?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = self.clock_skew;
        validation.validate_nbf = true;
        validation.set_audience(&[GRAPH_AUDIENCE, GRAPH_APP_ID]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature | K::ImmatureSignature => AuthError::Expired,
                K::InvalidAudience => AuthError::InvalidAudience,
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidEcdsaKey => {
                    AuthError::InvalidSignature
                }
                _ => AuthError::Malformed,
            }
        })?;
        let claims = data.claims;
        let tenant = claims.tid.as_deref().unwrap_or_default();
        if claims.iss.as_deref() != Some(issuer(tenant).as_str()) {
            return Err(AuthError::InvalidIssuer);
        }
        principal_from(claims)
    }
}

pub(super) fn principal_from(c: Claims) -> Result<Principal, AuthError> {
    let tenant_id = c
        .tid
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Malformed)?;
    let split = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let kind = match (&c.scp, &c.roles) {
        (Some(_), _) => CallerKind::Delegated,
        (None, Some(_)) => CallerKind::Application,
        (None, None) => return Err(AuthError::NoPermissionClaims),
    };
    Ok(Principal {
        tenant_id,
        kind,
        object_id: c.oid,
        app_id: c.appid.or(c.azp),
        scopes: c.scp.as_deref().map(split).unwrap_or_default(),
        roles: c.roles.unwrap_or_default(),
        wids: c.wids.unwrap_or_default(),
        scoped_roles: Vec::new(),
        expires_at: c.exp,
        user_principal_name: c.upn.or(c.preferred_username),
    })
}

/// Writes a new file (never over an existing one) only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::files::create_new_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        crate::clock::wall_now().unix_timestamp()
    }

    fn request(kind: CallerKind) -> TokenRequest {
        TokenRequest {
            tenant_id: "tenant-1".into(),
            kind,
            subject: "subject-1".into(),
            scopes: vec!["AgentInstance.Read.All".into(), "User.Read".into()],
            roles: vec!["AgentInstance.ReadWrite.All".into()],
            wids: vec!["6b942400-691f-4bf0-9d12-d8a254a2baf5".into()],
            issued_at: now(),
            expires_in: 3600,
        }
    }

    #[test]
    fn a_minted_delegated_token_verifies_into_its_caller() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        let token = keys.mint(&request(CallerKind::Delegated)).unwrap();
        let p = keys.verify(&token).unwrap();
        assert_eq!(p.tenant_id, "tenant-1");
        assert_eq!(p.kind, CallerKind::Delegated);
        assert_eq!(p.object_id.as_deref(), Some("subject-1"));
        assert_eq!(p.scopes, ["AgentInstance.Read.All", "User.Read"]);
        assert!(p.roles.is_empty());
        assert_eq!(p.wids, ["6b942400-691f-4bf0-9d12-d8a254a2baf5"]);
    }

    #[test]
    fn a_minted_application_token_carries_roles_and_the_app_id() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        let p = keys
            .verify(&keys.mint(&request(CallerKind::Application)).unwrap())
            .unwrap();
        assert_eq!(p.kind, CallerKind::Application);
        assert_eq!(p.app_id.as_deref(), Some("subject-1"));
        assert_eq!(p.roles, ["AgentInstance.ReadWrite.All"]);
        assert!(p.scopes.is_empty());
    }

    #[test]
    fn the_key_survives_a_reload_and_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_create(dir.path()).unwrap();
        let again = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(first.kid(), again.kid());
        let token = first.mint(&request(CallerKind::Delegated)).unwrap();
        assert!(again.verify(&token).is_ok());

        let other_dir = tempfile::tempdir().unwrap();
        let other = KeyRing::load_or_create(other_dir.path()).unwrap();
        assert_eq!(
            other.verify(&token),
            Err(AuthError::UnknownKey {
                kid: first.kid(),
                known: vec![other.kid()],
            })
        );
    }

    #[test]
    fn expired_tampered_and_garbage_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        let mut old = request(CallerKind::Delegated);
        old.issued_at -= 7200;
        assert_eq!(
            keys.verify(&keys.mint(&old).unwrap()),
            Err(AuthError::Expired)
        );

        let token = keys.mint(&request(CallerKind::Delegated)).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            br#"{"aud":"https://graph.microsoft.com","tid":"other","scp":"x","exp":99999999999}"#,
        );
        parts[1] = &forged;
        assert_eq!(
            keys.verify(&parts.join(".")),
            Err(AuthError::InvalidSignature)
        );

        assert_eq!(keys.verify(""), Err(AuthError::Missing));
        assert_eq!(keys.verify("not-a-jwt"), Err(AuthError::Malformed));
        assert_eq!(
            keys.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            br#"{"aud":"https://graph.microsoft.com","tid":"t","scp":"x","exp":99999999999}"#,
        );
        let verdict = keys.verify(&format!("{header}.{body}."));
        assert!(matches!(
            verdict,
            Err(AuthError::Malformed | AuthError::InvalidSignature)
        ));
    }

    #[test]
    fn a_rotation_keeps_old_tokens_valid_and_a_running_server_learns_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let running = KeyRing::load_or_create(dir.path()).unwrap();
        let old_token = running.mint(&request(CallerKind::Delegated)).unwrap();
        let old_kid = running.kid();

        let new_kid = KeyRing::rotate(dir.path()).unwrap();
        assert_ne!(new_kid, old_kid);
        let cli = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(cli.kid(), new_kid);
        let new_token = cli.mint(&request(CallerKind::Delegated)).unwrap();
        assert!(
            cli.verify(&old_token).is_ok(),
            "the retired key still verifies"
        );
        let kids: Vec<String> = cli.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, [new_kid.clone(), old_kid]);

        std::thread::sleep(RELOAD_INTERVAL);
        assert!(
            running.verify(&new_token).is_ok(),
            "an unknown kid makes the server reread its keys"
        );
        assert_eq!(running.kid(), new_kid);
        assert_eq!(
            running.derived_secret("x"),
            cli.derived_secret("x"),
            "the server secret survives rotation"
        );
    }

    #[test]
    fn algorithm_confusion_and_foreign_issuers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        // An HMAC token keyed with the public key, the classic confusion attack.
        let jwk = &keys.jwks()[0];
        let public = [
            vec![4u8],
            URL_SAFE_NO_PAD.decode(&jwk.x).unwrap(),
            URL_SAFE_NO_PAD.decode(&jwk.y).unwrap(),
        ]
        .concat();
        let claims = serde_json::json!({"aud": GRAPH_AUDIENCE, "iss": issuer("t"), "tid": "t", "scp": "x", "exp": now() + 600});
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.kid());
        let forged =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap();
        assert_eq!(keys.verify(&forged), Err(AuthError::InvalidSignature));

        let wrong = serde_json::json!({"aud": GRAPH_AUDIENCE, "iss": "https://evil.example/", "tid": "t1", "scp": "x", "exp": now() + 600});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.kid());
        let keys_guard = keys.keys.read().unwrap();
        let signed = jsonwebtoken::encode(&header, &wrong, &keys_guard.current.encoding).unwrap();
        drop(keys_guard);
        assert_eq!(keys.verify(&signed), Err(AuthError::InvalidIssuer));
        let wrong_aud = serde_json::json!({"aud": "api://other", "iss": issuer("t1"), "tid": "t1", "scp": "x", "exp": now() + 600});
        let keys_guard = keys.keys.read().unwrap();
        let signed =
            jsonwebtoken::encode(&header, &wrong_aud, &keys_guard.current.encoding).unwrap();
        drop(keys_guard);
        assert_eq!(keys.verify(&signed), Err(AuthError::InvalidAudience));
    }

    #[test]
    fn the_clock_skew_is_configurable_and_lifetimes_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let strict = KeyRing::load_with_skew(dir.path(), 0).unwrap();
        let lenient = KeyRing::load_with_skew(dir.path(), 600).unwrap();
        let mut early = request(CallerKind::Delegated);
        early.issued_at = now() + 120;
        let token = strict.mint(&early).unwrap();
        assert_eq!(strict.verify(&token), Err(AuthError::Expired));
        assert!(lenient.verify(&token).is_ok());

        let mut long = request(CallerKind::Delegated);
        long.expires_in = 10 * MAX_TOKEN_LIFETIME_SECONDS;
        let token = strict.mint(&long).unwrap();
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            MAX_TOKEN_LIFETIME_SECONDS
        );
    }

    #[test]
    fn derived_secrets_differ_by_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        assert_ne!(keys.derived_secret("a"), keys.derived_secret("b"));
        assert_eq!(keys.derived_secret("a"), keys.derived_secret("a"));
    }
}

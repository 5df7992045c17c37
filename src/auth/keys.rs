//! The signing key in `<data-dir>/keys/`, created on first start, and the
//! tokens it signs and verifies (ES256).

use super::{AuthError, CallerKind, GRAPH_APP_ID, GRAPH_AUDIENCE, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Accepted clock difference between the token issuer and this server.
const CLOCK_SKEW_SECONDS: u64 = 60;
/// The client id put in delegated tokens minted by `agentry token`.
pub const CLI_CLIENT_ID: &str = "a9e47a1c-6d1e-4d5e-9b5c-1d6f0a9e7c01";

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

/// The keys this server signs with and accepts.
pub struct KeyRing {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    secret_digest: [u8; 32],
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
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
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idtyp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ver: Option<String>,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

impl KeyRing {
    /// Loads the signing key from `<data_dir>/keys/signing-key.pem`, creating
    /// it (and the folders) on first use. Two processes starting at once end
    /// up with the same key.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = data_dir.join("keys");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join("signing-key.pem");
        if !path.exists() {
            let key = p256::SecretKey::random(&mut rand_core::OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| KeyError::BadKey { path: path.clone() })?;
            let tmp = dir.join(format!(".signing-key.{}.tmp", uuid::Uuid::new_v4()));
            write_private(&tmp, pem.as_bytes()).map_err(io(&tmp))?;
            // A hard link never replaces an existing file: whoever links first wins.
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(KeyError::Io { path, source: e }),
            }
        }
        let pem = std::fs::read_to_string(&path).map_err(io(&path))?;
        Self::from_pkcs8_pem(&pem).ok_or(KeyError::BadKey { path })
    }

    fn from_pkcs8_pem(pem: &str) -> Option<Self> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem).ok()?;
        let der = secret.to_pkcs8_der().ok()?;
        let point = secret.public_key().to_sec1_bytes();
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&point)[..16]);
        let mut h = Sha256::new();
        h.update(b"agentry.key-derivation.v1");
        h.update(der.as_bytes());
        Some(Self {
            kid,
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).ok()?,
            decoding: DecodingKey::from_ec_der(&point),
            secret_digest: h.finalize().into(),
        })
    }

    /// The key id written in the `kid` header of minted tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A secret derived from the signing key, for other server-side MACs
    /// (paging tokens); replicas that share the key share it too.
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret_digest);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    /// Signs an access token with the claims Entra puts in Graph tokens.
    pub fn mint(&self, req: &TokenRequest) -> Result<String, KeyError> {
        let delegated = req.kind == CallerKind::Delegated;
        let app_id = if delegated {
            CLI_CLIENT_ID
        } else {
            req.subject.as_str()
        };
        let claims = Claims {
            aud: Some(serde_json::Value::String(GRAPH_AUDIENCE.to_owned())),
            iss: Some(format!("https://sts.windows.net/{}/", req.tenant_id)),
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
            exp: req.issued_at + req.expires_in,
            nbf: Some(req.issued_at),
            iat: Some(req.issued_at),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Checks signature, algorithm, expiry, not-before and audience, and
    /// returns the caller the token describes.
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
        if header.kid.as_deref().is_some_and(|kid| kid != self.kid) {
            return Err(AuthError::InvalidSignature);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[GRAPH_AUDIENCE, GRAPH_APP_ID]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
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
        principal_from(data.claims)
    }
}

fn principal_from(c: Claims) -> Result<Principal, AuthError> {
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
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
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
        assert_eq!(other.verify(&token), Err(AuthError::InvalidSignature));
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
    fn derived_secrets_differ_by_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::load_or_create(dir.path()).unwrap();
        assert_ne!(keys.derived_secret("a"), keys.derived_secret("b"));
        assert_eq!(keys.derived_secret("a"), keys.derived_secret("a"));
    }
}

//! Local user accounts of the built-in identity provider (`agentry user
//! add`): a sign-in name, an object id, directory roles and a password kept
//! only as an Argon2id hash; the lockout after repeated failures; and the
//! authorization codes of the code flow with PKCE, which the store keeps
//! (by the SHA-256 of the code) so that any replica can redeem them once.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: time::Duration = time::Duration::minutes(15);
/// How long an authorization code may be redeemed.
pub const CODE_LIFETIME: time::Duration = time::Duration::seconds(60);
/// The longest password accepted (Argon2 takes more, but nobody types it).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest sign-in name accepted.
pub const MAX_NAME_CHARS: usize = 256;

/// A local user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalUser {
    /// The object id (`oid` of the user's tokens).
    pub id: String,
    pub tenant_id: String,
    /// The sign-in name, as given (`upn` of the user's tokens); unique in
    /// its tenant whatever the case.
    pub user_name: String,
    /// Directory role template ids (`wids` of the user's tokens).
    pub roles: Vec<String>,
    /// The password's Argon2id hash, a PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
    pub created_date_time: String,
    /// Failed sign-ins since the last success or lock (kept by the store
    /// outside the document, so that replicas count together).
    #[serde(skip)]
    pub failed_sign_ins: u32,
    /// Until when the account refuses every sign-in, if it is locked.
    #[serde(skip)]
    pub locked_until: Option<String>,
}

/// Why a user cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("a user name is 1 to {MAX_NAME_CHARS} characters without spaces or control characters")]
    BadName,
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    LongPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// The key a name is unique by in its tenant: its lower-case form.
pub fn name_key(user_name: &str) -> String {
    user_name.to_lowercase()
}

impl LocalUser {
    /// A new user with a fresh object id and the password's hash.
    pub fn create(
        tenant_id: &str,
        user_name: &str,
        roles: Vec<String>,
        password: &str,
        now: String,
    ) -> Result<LocalUser, UserError> {
        let name_ok = !user_name.is_empty()
            && user_name.chars().count() <= MAX_NAME_CHARS
            && !user_name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !name_ok {
            return Err(UserError::BadName);
        }
        if password.is_empty() {
            return Err(UserError::EmptyPassword);
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(UserError::LongPassword);
        }
        Ok(LocalUser {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant_id.to_owned(),
            user_name: user_name.to_owned(),
            roles,
            password_hash: hash_password(password)?,
            created_date_time: now,
            failed_sign_ins: 0,
            locked_until: None,
        })
    }

    /// Whether `password` is this user's (Argon2's own constant-time check).
    pub fn accepts(&self, password: &str) -> bool {
        verify(&self.password_hash, password)
    }

    /// Whether the account is locked at `now` (an entity timestamp).
    pub fn locked_at(&self, now: &str) -> bool {
        self.locked_until
            .as_deref()
            .is_some_and(|until| until > now)
    }
}

/// Argon2id with the crate's defaults (RFC 9106's second recommended
/// setting: 19 MiB, 2 passes, 1 lane), as a PHC string with its salt.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn verify(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time a password check takes, for a name that has no account
/// (or a locked one), so that the answer's delay does not tell them apart.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("no account").unwrap_or_default());
    let _ = verify(phc, password);
}

/// What an authorization code stands for, as stored until it is redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationCode {
    pub tenant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// `BASE64URL(SHA256(code_verifier))` (S256, the only method accepted).
    pub code_challenge: String,
    pub user_id: String,
    pub user_name: String,
    pub roles: Vec<String>,
    /// Until when it may be redeemed (an entity timestamp).
    pub expires_at: String,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code, redeemed now (never again).
    Fresh(AuthorizationCode),
    /// A code redeemed before.
    Again,
    /// No such code (or one removed after it expired).
    Unknown,
}

/// A new code: its value for the client and the key the store keeps it by.
pub fn new_code() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let code = URL_SAFE_NO_PAD.encode(bytes);
    let key = code_key(&code);
    (code, key)
}

/// The key a code is stored by: the SHA-256 of the code, so that the
/// database never holds a code that could be redeemed.
pub fn code_key(code: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
}

/// PKCE's S256 check: `BASE64URL(SHA256(verifier)) == challenge`, with a
/// verifier of 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed
        && computed.len() == challenge.len()
        && computed
            .bytes()
            .zip(challenge.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether `challenge` can be an S256 challenge: 43 base64url characters.
pub fn well_formed_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_given_is_accepted_and_it_is_kept_as_an_argon2id_hash() {
        let u = LocalUser::create(
            "t",
            "admin@contoso.example",
            vec![],
            "s3cret pass",
            "now".into(),
        )
        .unwrap();
        assert!(u.password_hash.starts_with("$argon2id$v=19$"));
        assert!(!u.password_hash.contains("s3cret"));
        assert!(u.accepts("s3cret pass"));
        assert!(!u.accepts("s3cret"));
        assert!(!u.accepts(""));
        let again = LocalUser::create(
            "t",
            "admin@contoso.example",
            vec![],
            "s3cret pass",
            "now".into(),
        )
        .unwrap();
        assert_ne!(again.password_hash, u.password_hash, "a salt of its own");
        assert_ne!(again.id, u.id);
    }

    #[test]
    fn names_without_spaces_and_passwords_that_are_not_empty_are_required() {
        let create = |name: &str, password: &str| {
            LocalUser::create("t", name, vec![], password, "now".into()).map(|_| ())
        };
        assert_eq!(create("", "x"), Err(UserError::BadName));
        assert_eq!(create("a b", "x"), Err(UserError::BadName));
        assert_eq!(create("a\u{7}", "x"), Err(UserError::BadName));
        assert_eq!(create("admin", ""), Err(UserError::EmptyPassword));
        assert_eq!(
            create("admin", &"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(UserError::LongPassword)
        );
        assert_eq!(name_key("Admin@Contoso.Example"), "admin@contoso.example");
    }

    #[test]
    fn a_lock_holds_until_its_time() {
        let mut u = LocalUser::create("t", "admin", vec![], "pw", "now".into()).unwrap();
        assert!(!u.locked_at("2025-01-01T00:00:00.0000000Z"));
        u.locked_until = Some("2025-01-01T00:15:00.0000000Z".into());
        assert!(u.locked_at("2025-01-01T00:14:59.9999999Z"));
        assert!(!u.locked_at("2025-01-01T00:15:00.0000000Z"));
    }

    #[test]
    fn the_s256_check_follows_rfc_7636() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(well_formed_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
        assert!(!well_formed_challenge("plain-challenge"));
        let (code, key) = new_code();
        assert_eq!(code_key(&code), key);
        assert_ne!(code, key);
    }
}

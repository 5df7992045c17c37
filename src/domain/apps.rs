//! Application registrations of the built-in identity provider: a client id,
//! a secret shown once and kept only as a salted hash, and the application
//! permissions granted to the app.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A registered application, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRegistration {
    pub client_id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// Application permissions granted (the `roles` of its tokens).
    pub roles: Vec<String>,
    /// `base64url(salt)`.
    pub salt: String,
    /// `base64url(sha256(salt || secret))`.
    pub secret_hash: String,
    pub created_date_time: String,
}

/// A new registration and its secret, which is never stored.
pub struct NewApp {
    pub registration: AppRegistration,
    pub secret: String,
}

fn hash(salt: &[u8], secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
}

impl AppRegistration {
    /// Registers an application with a fresh client id and secret.
    pub fn create(tenant_id: &str, display_name: &str, roles: Vec<String>, now: String) -> NewApp {
        // 32 random bytes: guessing is hopeless, so one salted SHA-256 suffices.
        let secret = format!("agentry~{}", URL_SAFE_NO_PAD.encode(random::<32>()));
        let salt = random::<16>();
        NewApp {
            registration: AppRegistration {
                client_id: uuid::Uuid::new_v4().to_string(),
                tenant_id: tenant_id.to_owned(),
                display_name: display_name.to_owned(),
                roles,
                salt: URL_SAFE_NO_PAD.encode(salt),
                secret_hash: hash(&salt, &secret),
                created_date_time: now,
            },
            secret,
        }
    }

    /// Whether `secret` is this application's secret (compared in constant time).
    pub fn accepts(&self, secret: &str) -> bool {
        let Ok(salt) = URL_SAFE_NO_PAD.decode(&self.salt) else {
            return false;
        };
        let given = hash(&salt, secret);
        given.len() == self.secret_hash.len()
            && given
                .bytes()
                .zip(self.secret_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issued_secret_is_accepted_and_it_is_not_stored() {
        let new = AppRegistration::create(
            "t",
            "app",
            vec!["AgentInstance.Read.All".into()],
            "now".into(),
        );
        assert!(new.registration.accepts(&new.secret));
        assert!(!new.registration.accepts("agentry~guess"));
        assert!(!new.registration.accepts(""));
        let stored = serde_json::to_string(&new.registration).unwrap();
        assert!(!stored.contains(&new.secret));
        let other = AppRegistration::create("t", "app", vec![], "now".into());
        assert_ne!(other.registration.client_id, new.registration.client_id);
        assert!(!other.registration.accepts(&new.secret));
    }
}

//! Application registrations of the built-in identity provider: a client id,
//! a secret shown once and kept only as a salted hash, the application
//! permissions granted to the app, and the redirect URIs of a single-page
//! application that signs users in with the authorization-code flow and
//! PKCE (a public client: no secret, its tokens redeemed by the browser).

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
    /// Where the code flow may send a signed-in user back, as Entra's
    /// `spa.redirectUris`; none: the application cannot sign users in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
}

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a redirect URI: an absolute https:// URL, or http:// on localhost or a \
     loopback address, without a fragment"
)]
pub struct BadRedirectUri(pub String);

/// Checks a redirect URI as Entra does for single-page applications:
/// https, or http only on a loopback host; no fragment.
pub fn check_redirect_uri(uri: &str) -> Result<(), BadRedirectUri> {
    let bad = || BadRedirectUri(uri.to_owned());
    let url = reqwest::Url::parse(uri).map_err(|_| bad())?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    // Nothing that could break out of the sign-in page's policy, where it is named.
    let plain = !uri.contains(['#', ';', ',', '\'', '"', ' ', '*']);
    if !scheme_ok || !plain || !url.username().is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// The origin (`scheme://host[:port]`) of a URL, as a browser sends it in `Origin`.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = reqwest::Url::parse(uri).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
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
                redirect_uris: Vec::new(),
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

    /// Whether the code flow may answer at `uri` (compared exactly).
    pub fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether a browser page of `origin` redeemed this application's code:
    /// the origin of one of its redirect URIs.
    pub fn spa_origin(&self, origin: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| origin_of(r).as_deref() == Some(origin))
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

    #[test]
    fn redirect_uris_are_https_or_loopback_http_and_match_exactly() {
        for ok in [
            "https://agentry.example/console/",
            "http://127.0.0.1:7171/console/",
            "http://localhost:8080/console/",
            "http://[::1]:7171/console/",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://agentry.example/console/",
            "https://agentry.example/console/#x",
            "/console/",
            "javascript:alert(1)",
            "https://user@agentry.example/",
            "https://agentry.example/a;b",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
        let mut app = AppRegistration::create("t", "spa", vec![], "now".into()).registration;
        app.redirect_uris = vec!["http://127.0.0.1:7171/console/".into()];
        assert!(app.redirects_to("http://127.0.0.1:7171/console/"));
        assert!(!app.redirects_to("http://127.0.0.1:7171/console"));
        assert!(app.spa_origin("http://127.0.0.1:7171"));
        assert!(!app.spa_origin("http://127.0.0.1:7172"));
        let stored = serde_json::to_value(&app).unwrap();
        assert_eq!(stored["redirect_uris"][0], "http://127.0.0.1:7171/console/");
        let old: AppRegistration = serde_json::from_value(json_without_uris(stored)).unwrap();
        assert!(
            old.redirect_uris.is_empty(),
            "registrations stored before read back"
        );
    }

    fn json_without_uris(mut v: serde_json::Value) -> serde_json::Value {
        v.as_object_mut().unwrap().remove("redirect_uris");
        v
    }
}

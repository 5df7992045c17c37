//! `$skiptoken`: an opaque, authenticated cursor. It carries the last key of
//! the page served and the list it belongs to, so the next page starts
//! strictly after that key (keyset paging: rows inserted or deleted meanwhile
//! neither shift nor repeat the rest). The MAC stops a client from forging a
//! token for another tenant or another list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ODataError;

type HmacSha256 = Hmac<Sha256>;

/// A position in an ordered list: the sort values and the id of the last
/// row served. The next page starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "v", default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<serde_json::Value>,
    #[serde(rename = "i")]
    pub id: String,
}

/// What a `$skiptoken` stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipToken {
    /// Tenant, list and query the token was issued for.
    #[serde(rename = "s")]
    pub scope: String,
    /// Where the next page starts.
    #[serde(rename = "c")]
    pub cursor: Cursor,
}

/// Seals and opens skip tokens with a server secret.
#[derive(Clone)]
pub struct PagingKeys {
    secret: [u8; 32],
}

impl std::fmt::Debug for PagingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PagingKeys(..)")
    }
}

impl PagingKeys {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    pub fn seal(&self, token: &SkipToken) -> String {
        self.seal_any(token)
    }

    /// Seals any token (a skip token, a delta link's state).
    pub fn seal_any<T: Serialize>(&self, token: &T) -> String {
        let payload = serde_json::to_vec(token).expect("a token always serialises");
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    /// Opens a token, refusing one that was altered or issued for another scope.
    pub fn open(&self, raw: &str, scope: &str) -> Result<SkipToken, ODataError> {
        let token: SkipToken = self.open_any(raw).ok_or(ODataError::InvalidSkipToken)?;
        if token.scope != scope {
            return Err(ODataError::InvalidSkipToken);
        }
        Ok(token)
    }

    /// Opens a token sealed by [`Self::seal_any`]; `None` when it was
    /// altered, sealed with another secret, or is not a `T`.
    pub fn open_any<T: serde::de::DeserializeOwned>(&self, raw: &str) -> Option<T> {
        let open = || -> Result<T, ODataError> {
            let (payload, tag) = raw.split_once('.').ok_or(ODataError::InvalidSkipToken)?;
            let payload = URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| ODataError::InvalidSkipToken)?;
            let tag = URL_SAFE_NO_PAD
                .decode(tag)
                .map_err(|_| ODataError::InvalidSkipToken)?;
            // Check the length first: a truncated comparison accepts a short tag.
            if tag.len() != 16 {
                return Err(ODataError::InvalidSkipToken);
            }
            self.mac(&payload)
                .verify_truncated_left(&tag)
                .map_err(|_| ODataError::InvalidSkipToken)?;
            serde_json::from_slice(&payload).map_err(|_| ODataError::InvalidSkipToken)
        };
        open().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_in_its_own_scope() {
        let keys = PagingKeys::new([7; 32]);
        let t = SkipToken {
            scope: "t1:/agentInstances".into(),
            cursor: Cursor {
                values: vec![serde_json::json!("b"), serde_json::Value::Null],
                id: "id 5".into(),
            },
        };
        let raw = keys.seal(&t);
        assert_eq!(keys.open(&raw, "t1:/agentInstances"), Ok(t));
        assert_eq!(
            keys.open(&raw, "t2:/agentInstances"),
            Err(ODataError::InvalidSkipToken)
        );
    }

    #[test]
    fn altered_or_foreign_tokens_are_refused() {
        let keys = PagingKeys::new([7; 32]);
        let raw = keys.seal(&SkipToken {
            scope: "s".into(),
            cursor: Cursor {
                values: vec![],
                id: "a".into(),
            },
        });
        let (payload, tag) = raw.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"s":"s","c":{"i":"z"}}"#);
        for bad in [
            format!("{forged}.{tag}"),
            format!("{payload}.AAAA"),
            "garbage".into(),
            String::new(),
        ] {
            assert_eq!(
                keys.open(&bad, "s"),
                Err(ODataError::InvalidSkipToken),
                "{bad}"
            );
        }
        let other = PagingKeys::new([8; 32]);
        assert_eq!(other.open(&raw, "s"), Err(ODataError::InvalidSkipToken));
    }
}

//! Agent card signatures (A2A v1.0 §8.4): JWS with a detached payload, the
//! card canonicalized ([`canonical`](super::canonical)). Verifying checks a
//! card's `signatures` against a [`TrustStore`] of public keys; signing
//! appends one. Pure functions: no key is ever fetched (a `jku` is not
//! followed), and the time is the caller's.
//!
//! Each signature is `{"protected", "signature", "header"?}`: `protected` is
//! the base64url of a JSON header naming `alg` and `kid`, and the signature
//! covers `protected + "." + base64url(payload)`. The algorithms are
//! ES256, ES384, RS256, PS256 and EdDSA (Ed25519); `none` and HMAC are
//! always refused, since a key anyone can read would let anyone sign.

use super::canonical::{self, CanonicalForm};
use crate::domain::jcs;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What is wrong with a key, or with a card to be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a JWK set (`{"keys": [...]}`) nor one JWK.
    #[error("not a JWK set: {0}")]
    NotAKeySet(String),
    /// One key cannot be read; `key` is its kid or its place in the set.
    #[error("key {key}: {message}")]
    BadKey { key: String, message: String },
    #[error("two keys have the kid '{0}'")]
    DuplicateKid(String),
    /// The private key cannot sign with the algorithm asked for.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// The card cannot be signed (not an object, or no canonical form).
    #[error("the card cannot be signed: {0}")]
    Card(String),
}

/// The signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Es256,
    Es384,
    Rs256,
    Ps256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ];

    /// The JOSE name (`ES256`, ..., `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Es384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    /// Whether a key of this kind makes and checks this algorithm's
    /// signatures.
    pub fn fits(self, kind: KeyKind) -> bool {
        matches!(
            (self, kind),
            (Algorithm::Es256, KeyKind::P256)
                | (Algorithm::Es384, KeyKind::P384)
                | (Algorithm::Rs256 | Algorithm::Ps256, KeyKind::Rsa)
                | (Algorithm::EdDsa, KeyKind::Ed25519)
        )
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(alg) = Algorithm::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(alg);
        }
        if s == "none" || s.starts_with("HS") {
            Err(format!(
                "alg '{s}' is refused: a card's signature must be checked with a public key"
            ))
        } else {
            Err(format!(
                "alg '{s}' is not one of ES256, ES384, RS256, PS256, EdDSA"
            ))
        }
    }
}

/// The kinds of public key a trust store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Rsa,
    Ed25519,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::Rsa => "RSA",
            KeyKind::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm a key of this kind signs with unless told otherwise.
    pub fn default_algorithm(self) -> Algorithm {
        match self {
            KeyKind::P256 => Algorithm::Es256,
            KeyKind::P384 => Algorithm::Es384,
            KeyKind::Rsa => Algorithm::Rs256,
            KeyKind::Ed25519 => Algorithm::EdDsa,
        }
    }
}

/// A public key trusted to sign cards, under its `kid`.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    kid: String,
    kind: KeyKind,
    /// The `alg` its JWK was restricted to.
    alg: Option<Algorithm>,
    key: DecodingKey,
    /// From this instant on the key is not used.
    pub expires: Option<OffsetDateTime>,
    /// A revoked key is never used.
    pub revoked: bool,
}

impl TrustedKey {
    /// A key from a public JWK: `kty` `EC` (`crv` `P-256` or `P-384`), `RSA`
    /// or `OKP` (`crv` `Ed25519`), with a `kid`. Besides the JWK members,
    /// `expires` (RFC 3339) and `revoked` (boolean) are read; an entry
    /// `{"kid", "pem"}` holds a PEM public key instead of the JWK members.
    pub fn from_jwk(jwk: &Value) -> Result<TrustedKey, KeyError> {
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        let bad = |message: String| KeyError::BadKey {
            key: kid.map_or_else(|| "(no kid)".to_owned(), |k| format!("'{k}'")),
            message,
        };
        let Some(obj) = jwk.as_object() else {
            return Err(bad("must be a JSON object".into()));
        };
        let Some(kid) = kid else {
            return Err(bad("a trusted key needs a 'kid'".into()));
        };
        let mut key = match text(obj, "pem").map_err(bad)? {
            Some(pem) => TrustedKey::from_pem(kid, pem)?,
            None => jwk_key(kid, obj).map_err(bad)?,
        };
        key.expires = match text(obj, "expires").map_err(bad)? {
            None => None,
            Some(at) => Some(
                OffsetDateTime::parse(at, &Rfc3339)
                    .map_err(|_| bad(format!("'expires' '{at}' is not an RFC 3339 time")))?,
            ),
        };
        key.revoked = match obj.get("revoked") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("'revoked' must be true or false".into())),
        };
        Ok(key)
    }

    /// A key from a PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY`).
    pub fn from_pem(kid: &str, pem: &str) -> Result<TrustedKey, KeyError> {
        let bad = |message: &str| KeyError::BadKey {
            key: format!("'{kid}'"),
            message: message.to_owned(),
        };
        match pem_label(pem) {
            Some("PUBLIC KEY" | "RSA PUBLIC KEY") => {}
            Some(label) if label.ends_with("PRIVATE KEY") => {
                return Err(bad(
                    "is a private key; a trust store holds public keys (openssl pkey -pubout)",
                ));
            }
            Some("CERTIFICATE") => {
                return Err(bad(
                    "is a certificate; give its public key (openssl x509 -pubkey -noout)",
                ));
            }
            _ => return Err(bad("is not a PEM public key")),
        }
        let bytes = pem.as_bytes();
        let (kind, key) = if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
            match key.try_get_as_bytes().map(<[u8]>::len) {
                Ok(65) => (KeyKind::P256, key),
                Ok(97) => (KeyKind::P384, key),
                _ => return Err(bad("is an EC key on a curve other than P-256 and P-384")),
            }
        } else if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
            if key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
                return Err(bad("is not an Ed25519 key"));
            }
            (KeyKind::Ed25519, key)
        } else if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
            (KeyKind::Rsa, key)
        } else {
            return Err(bad(
                "is not an EC (P-256, P-384), RSA or Ed25519 public key",
            ));
        };
        TrustedKey::new(kid, kind, None, key).map_err(|m| bad(&m))
    }

    fn new(
        kid: &str,
        kind: KeyKind,
        alg: Option<Algorithm>,
        key: DecodingKey,
    ) -> Result<TrustedKey, String> {
        // Building a verifier parses the key: an EC point off its curve,
        // or an Ed25519 key that is no point, fails here, not at first use.
        let probe = jsonwebtoken::crypto::verify("AA", b"", &key, kind.default_algorithm().jwt());
        if probe.is_err() {
            return Err(format!("is not a valid {} public key", kind.as_str()));
        }
        Ok(TrustedKey {
            kid: kid.to_owned(),
            kind,
            alg,
            key,
            expires: None,
            revoked: false,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}

/// The label of a PEM text's first block (`PUBLIC KEY`, ...).
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &pem[start..];
    Some(&rest[..rest.find("-----")?])
}

/// A string member of a JWK, if there.
fn text<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("'{name}' must be a string")),
    }
}

/// The key of a JWK's members.
fn jwk_key(kid: &str, obj: &Map<String, Value>) -> Result<TrustedKey, String> {
    let member = |name: &str| text(obj, name)?.ok_or_else(|| format!("'{name}' is missing"));
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        B64.decode(member(name)?.trim_end_matches('='))
            .map_err(|_| format!("'{name}' is not base64url"))
    };
    if obj.contains_key("d") {
        return Err("holds a private key ('d'); a trust store holds public keys".into());
    }
    if let Some(usage) = text(obj, "use")?
        && usage != "sig"
    {
        return Err(format!("is for '{usage}', not for signatures"));
    }
    let alg = match text(obj, "alg")? {
        None => None,
        Some(alg) => Some(alg.parse::<Algorithm>()?),
    };
    let (kind, key) = match member("kty")? {
        "EC" => {
            let (kind, size) = match member("crv")? {
                "P-256" => (KeyKind::P256, 32),
                "P-384" => (KeyKind::P384, 48),
                other => return Err(format!("curve '{other}' is not P-256 or P-384")),
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != size || y.len() != size {
                return Err(format!("'x' and 'y' must be {size} bytes each"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            (kind, DecodingKey::from_ec_der(&point))
        }
        "RSA" => {
            let (n, e) = (bytes("n")?, bytes("e")?);
            if n.is_empty() || e.is_empty() {
                return Err("'n' and 'e' must not be empty".into());
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "OKP" => {
            if member("crv")? != "Ed25519" {
                return Err("an OKP key must be on Ed25519".into());
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("'x' must be 32 bytes".into());
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            return Err(
                "is a symmetric key: whoever can check with it can sign with it, so it is refused"
                    .into(),
            );
        }
        other => return Err(format!("kty '{other}' is not EC, RSA or OKP")),
    };
    if let Some(alg) = alg
        && !alg.fits(kind)
    {
        return Err(format!(
            "is an {} key, which {alg} cannot use",
            kind.as_str()
        ));
    }
    TrustedKey::new(kid, kind, alg, key)
}

/// The public keys trusted to sign agent cards, each under its `kid`.
///
/// Deserialises from a JWK set, `{"keys": [...]}`, each entry a public JWK
/// or `{"kid", "pem"}`, either with optional `expires` (RFC 3339) and
/// `revoked` (see [`TrustedKey::from_jwk`]); so a plain JWKS document is a
/// trust store, and so is a TOML table of `[[keys]]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(try_from = "KeySet")]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

#[derive(serde::Deserialize)]
struct KeySet {
    keys: Vec<Value>,
}

impl TryFrom<KeySet> for TrustStore {
    type Error = KeyError;
    fn try_from(set: KeySet) -> Result<Self, KeyError> {
        let mut store = TrustStore::default();
        for (n, jwk) in set.keys.iter().enumerate() {
            if jwk
                .get("kid")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(KeyError::BadKey {
                    key: format!("#{n}"),
                    message: "a trusted key needs a 'kid'".into(),
                });
            }
            store.insert(TrustedKey::from_jwk(jwk)?)?;
        }
        Ok(store)
    }
}

impl TrustStore {
    /// A store from JSON text: a JWK set, or one JWK.
    pub fn from_jwks(text: &str) -> Result<TrustStore, KeyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| KeyError::NotAKeySet(e.to_string()))?;
        match value {
            Value::Object(mut set) if set.contains_key("keys") => match set.remove("keys") {
                Some(Value::Array(keys)) => TrustStore::try_from(KeySet { keys }),
                _ => Err(KeyError::NotAKeySet("'keys' must be an array".into())),
            },
            jwk @ Value::Object(_) => TrustStore::try_from(KeySet { keys: vec![jwk] }),
            _ => Err(KeyError::NotAKeySet(
                "expected {\"keys\": [...]} or one JWK".into(),
            )),
        }
    }

    /// A store of one PEM public key.
    pub fn from_pem(kid: &str, pem: &str) -> Result<TrustStore, KeyError> {
        let mut store = TrustStore::default();
        store.insert(TrustedKey::from_pem(kid, pem)?)?;
        Ok(store)
    }

    /// Adds a key; its kid must be new to the store.
    pub fn insert(&mut self, key: TrustedKey) -> Result<(), KeyError> {
        if self.get(&key.kid).is_some() {
            return Err(KeyError::DuplicateKid(key.kid));
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What checking a card's signatures found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No `signatures`, or an empty list.
    Unsigned,
    /// A signature made with the trusted key `kid` matches the card in
    /// `form`.
    Verified { kid: String, form: CanonicalForm },
    /// No signature matches: the card changed after signing, a signature
    /// or its header is malformed, or its `alg` is refused or does not fit
    /// its key. The reason names the signature (`/signatures/N`).
    Invalid { reason: String },
    /// No trusted key has this kid (a `jku` is never followed).
    UntrustedKey { kid: String },
    /// The trusted key `kid` expired; it is not used.
    ExpiredKey { kid: String },
    /// The trusted key `kid` is revoked; it is not used.
    RevokedKey { kid: String },
}

impl SignatureCheck {
    pub fn is_verified(&self) -> bool {
        matches!(self, SignatureCheck::Verified { .. })
    }
}

impl std::fmt::Display for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureCheck::Unsigned => write!(f, "unsigned: the card has no signatures"),
            SignatureCheck::Verified { kid, form } => {
                let form = match form {
                    CanonicalForm::Jcs => "the specification's RFC 8785 form",
                    CanonicalForm::A2aPython => "the canonical form of A2A's Python SDK",
                };
                write!(f, "verified: signed by key '{kid}' over {form}")
            }
            SignatureCheck::Invalid { reason } => write!(f, "invalid: {reason}"),
            SignatureCheck::UntrustedKey { kid } => {
                write!(f, "untrusted key: no trusted key has the kid '{kid}'")
            }
            SignatureCheck::ExpiredKey { kid } => write!(f, "expired key: '{kid}' has expired"),
            SignatureCheck::RevokedKey { kid } => write!(f, "revoked key: '{kid}' is revoked"),
        }
    }
}

/// Why one signature failed, most telling last.
enum Failure {
    Untrusted(String),
    Malformed(String),
    Expired(String),
    Revoked(String),
    /// A trusted, usable key, and the signature does not match.
    Mismatch(String),
}

impl From<Failure> for SignatureCheck {
    fn from(f: Failure) -> SignatureCheck {
        match f {
            Failure::Untrusted(kid) => SignatureCheck::UntrustedKey { kid },
            Failure::Expired(kid) => SignatureCheck::ExpiredKey { kid },
            Failure::Revoked(kid) => SignatureCheck::RevokedKey { kid },
            Failure::Malformed(reason) | Failure::Mismatch(reason) => {
                SignatureCheck::Invalid { reason }
            }
        }
    }
}

impl Failure {
    fn rank(&self) -> u8 {
        match self {
            Failure::Untrusted(_) => 0,
            Failure::Malformed(_) => 1,
            Failure::Expired(_) => 2,
            Failure::Revoked(_) => 3,
            Failure::Mismatch(_) => 4,
        }
    }
}

/// Checks a card's signatures against the trusted keys at `now`: the first
/// signature that matches makes the card [`SignatureCheck::Verified`];
/// when none does, the most telling failure is reported (a trusted key's
/// signature that does not match, then a revoked key, an expired key, a
/// malformed signature, an unknown kid). Each signature is tried over the
/// specification's canonical form, then the card as it is, then the Python
/// SDK's forms ([`canonical::candidates`]).
pub fn verify(card: &Value, store: &TrustStore, now: OffsetDateTime) -> SignatureCheck {
    let Some(obj) = card.as_object() else {
        return SignatureCheck::Invalid {
            reason: "an agent card must be a JSON object".into(),
        };
    };
    let signatures = match obj.get("signatures") {
        None | Some(Value::Null) => return SignatureCheck::Unsigned,
        Some(Value::Array(list)) if list.is_empty() => return SignatureCheck::Unsigned,
        Some(Value::Array(list)) => list,
        Some(_) => {
            return SignatureCheck::Invalid {
                reason: "/signatures: must be an array".into(),
            };
        }
    };
    let payloads: Vec<(CanonicalForm, String)> = canonical::candidates(card)
        .into_iter()
        .map(|(form, text)| (form, B64.encode(text)))
        .collect();
    let mut worst: Option<Failure> = None;
    for (n, signature) in signatures.iter().enumerate() {
        match check_one(signature, store, now, &payloads) {
            Ok(verified) => return verified,
            Err(failure) => {
                let failure = match failure {
                    Failure::Malformed(m) => Failure::Malformed(format!("/signatures/{n}: {m}")),
                    Failure::Mismatch(m) => Failure::Mismatch(format!("/signatures/{n}: {m}")),
                    other => other,
                };
                if worst.as_ref().is_none_or(|w| failure.rank() > w.rank()) {
                    worst = Some(failure);
                }
            }
        }
    }
    worst.map_or(SignatureCheck::Unsigned, SignatureCheck::from)
}

fn check_one(
    signature: &Value,
    store: &TrustStore,
    now: OffsetDateTime,
    payloads: &[(CanonicalForm, String)],
) -> Result<SignatureCheck, Failure> {
    let malformed = |m: &str| Failure::Malformed(m.to_owned());
    let field = |name: &str| signature.get(name).and_then(Value::as_str);
    let (Some(protected), Some(sig)) = (field("protected"), field("signature")) else {
        return Err(malformed(
            "a signature needs 'protected' and 'signature' strings",
        ));
    };
    let header: Map<String, Value> = B64
        .decode(protected)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| malformed("'protected' is not a base64url JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.parse::<Algorithm>().map_err(|m| malformed(&m))?,
        _ => return Err(malformed("the protected header names no 'alg'")),
    };
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid,
        _ => return Err(malformed("the protected header names no 'kid'")),
    };
    if header.contains_key("crit") {
        return Err(malformed(
            "the protected header has 'crit' extensions, which are not understood",
        ));
    }
    if header.get("b64").is_some_and(|b| b != &Value::Bool(true)) {
        return Err(malformed(
            "an unencoded payload ('b64') is not how cards are signed",
        ));
    }
    let Some(key) = store.get(kid) else {
        return Err(Failure::Untrusted(kid.clone()));
    };
    if key.revoked {
        return Err(Failure::Revoked(kid.clone()));
    }
    if key.expires.is_some_and(|at| now >= at) {
        return Err(Failure::Expired(kid.clone()));
    }
    if !alg.fits(key.kind) || key.alg.is_some_and(|a| a != alg) {
        return Err(malformed(&format!(
            "key '{kid}' is an {} key, which cannot check {alg} signatures",
            key.kind.as_str()
        )));
    }
    if B64.decode(sig).is_err() {
        return Err(malformed("'signature' is not base64url"));
    }
    if payloads.is_empty() {
        return Err(malformed(
            "the card has no canonical form (a number beyond a double)",
        ));
    }
    for (form, payload) in payloads {
        let input = format!("{protected}.{payload}");
        if jsonwebtoken::crypto::verify(sig, input.as_bytes(), &key.key, alg.jwt()) == Ok(true) {
            return Ok(SignatureCheck::Verified {
                kid: kid.clone(),
                form: *form,
            });
        }
    }
    Err(Failure::Mismatch(format!(
        "the {alg} signature of key '{kid}' does not match the card: it changed after signing, \
         or was signed over another canonical form"
    )))
}

/// The algorithm a private key (PKCS#8 `PRIVATE KEY`, or PKCS#1
/// `RSA PRIVATE KEY`) signs with by default: ES256 for P-256, ES384 for
/// P-384, RS256 for RSA, EdDSA for Ed25519.
pub fn default_algorithm(key_pem: &str) -> Result<Algorithm, KeyError> {
    use p256::pkcs8::DecodePrivateKey;
    check_private_pem(key_pem)?;
    let bytes = key_pem.as_bytes();
    if EncodingKey::from_ec_pem(bytes).is_ok() {
        if p256::SecretKey::from_pkcs8_pem(key_pem).is_ok() {
            Ok(Algorithm::Es256)
        } else {
            Ok(Algorithm::Es384)
        }
    } else if EncodingKey::from_rsa_pem(bytes).is_ok() {
        Ok(Algorithm::Rs256)
    } else if EncodingKey::from_ed_pem(bytes).is_ok() {
        Ok(Algorithm::EdDsa)
    } else {
        Err(KeyError::SigningKey(
            "not an EC (P-256, P-384), RSA or Ed25519 private key".into(),
        ))
    }
}

fn check_private_pem(key_pem: &str) -> Result<(), KeyError> {
    match pem_label(key_pem) {
        Some("PRIVATE KEY" | "RSA PRIVATE KEY") => Ok(()),
        Some("EC PRIVATE KEY") => Err(KeyError::SigningKey(
            "an EC key must be PKCS#8 ('PRIVATE KEY'): openssl pkcs8 -topk8 -nocrypt".into(),
        )),
        _ => Err(KeyError::SigningKey("not a PEM private key".into())),
    }
}

/// Signs a card over the specification's canonical form: the card with one
/// more entry in `signatures`, whose protected header is
/// `{"alg", "jku"?, "kid", "typ": "JOSE"}`.
pub fn sign(
    card: &Value,
    key_pem: &str,
    kid: &str,
    alg: Algorithm,
    jku: Option<&str>,
) -> Result<Value, KeyError> {
    sign_as(card, key_pem, kid, alg, jku, CanonicalForm::Jcs)
}

/// [`sign`], over the canonical form given: [`CanonicalForm::A2aPython`]
/// makes a signature the Python SDK's verifier accepts (the 0.3 SDK's form
/// for a v0.3 card, the 1.x SDK's otherwise).
pub fn sign_as(
    card: &Value,
    key_pem: &str,
    kid: &str,
    alg: Algorithm,
    jku: Option<&str>,
    form: CanonicalForm,
) -> Result<Value, KeyError> {
    let Some(obj) = card.as_object() else {
        return Err(KeyError::Card("an agent card must be a JSON object".into()));
    };
    let mut signatures = match obj.get("signatures") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(KeyError::Card("'signatures' is not an array".into())),
    };
    if kid.is_empty() {
        return Err(KeyError::SigningKey("the kid must not be empty".into()));
    }
    check_private_pem(key_pem)?;
    let bytes = key_pem.as_bytes();
    let key = match alg {
        Algorithm::Es256 | Algorithm::Es384 => EncodingKey::from_ec_pem(bytes),
        Algorithm::Rs256 | Algorithm::Ps256 => EncodingKey::from_rsa_pem(bytes),
        Algorithm::EdDsa => EncodingKey::from_ed_pem(bytes),
    }
    .map_err(|_| KeyError::SigningKey(format!("{alg} needs {}", needs(alg))))?;
    let payload = canonical::payload(card, form).map_err(|e| KeyError::Card(e.to_string()))?;
    let mut header = json!({"alg": alg.as_str(), "kid": kid, "typ": "JOSE"});
    if let Some(jku) = jku {
        header["jku"] = Value::from(jku);
    }
    let header = jcs::canonicalize(&header).map_err(|e| KeyError::Card(e.to_string()))?;
    let protected = B64.encode(header);
    let input = format!("{protected}.{}", B64.encode(payload));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg.jwt())
        .map_err(|_| KeyError::SigningKey(format!("{alg} needs {}", needs(alg))))?;
    signatures.push(json!({"protected": protected, "signature": signature}));
    let mut signed = obj.clone();
    signed.insert("signatures".into(), Value::Array(signatures));
    Ok(Value::Object(signed))
}

fn needs(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Es256 => "an EC P-256 private key",
        Algorithm::Es384 => "an EC P-384 private key",
        Algorithm::Rs256 | Algorithm::Ps256 => "an RSA private key",
        Algorithm::EdDsa => "an Ed25519 private key",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const P256: &str = include_str!("../../../tests/a2a/keys/p256.pem");
    const P256_PUB: &str = include_str!("../../../tests/a2a/keys/p256.pub.pem");
    const P384: &str = include_str!("../../../tests/a2a/keys/p384.pem");
    const P384_PUB: &str = include_str!("../../../tests/a2a/keys/p384.pub.pem");
    const RSA: &str = include_str!("../../../tests/a2a/keys/rsa.pem");
    const RSA_PUB: &str = include_str!("../../../tests/a2a/keys/rsa.pub.pem");
    const ED: &str = include_str!("../../../tests/a2a/keys/ed.pem");
    const ED_PUB: &str = include_str!("../../../tests/a2a/keys/ed.pub.pem");

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn card() -> Value {
        json!({
            "name": "Travel", "description": "Books trips — vite", "version": "1.0.0",
            "supportedInterfaces": [{"url": "https://travel.example/a2a", "protocolBinding": "JSONRPC",
                                     "protocolVersion": "1.0"}],
            "capabilities": {"streaming": true},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "book", "name": "Book", "description": "Books", "tags": ["travel"]}]
        })
    }

    /// The public JWK of a private key, with a kid.
    fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Value {
        let key = match alg {
            Algorithm::Es256 | Algorithm::Es384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::Rs256 | Algorithm::Ps256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            Algorithm::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes()),
        }
        .unwrap();
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg.jwt()).unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["kid"] = json!(kid);
        jwk
    }

    fn store(keys: &[Value]) -> TrustStore {
        TrustStore::from_jwks(&json!({ "keys": keys }).to_string()).unwrap()
    }

    fn header(signed: &Value, n: usize) -> Value {
        let protected = signed["signatures"][n]["protected"].as_str().unwrap();
        serde_json::from_slice(&B64.decode(protected).unwrap()).unwrap()
    }

    #[test]
    fn a_card_signed_with_es256_verifies_against_its_jwk() {
        let signed = sign(&card(), P256, "key-1", Algorithm::Es256, None).unwrap();
        let keys = store(&[jwk(P256, Algorithm::Es256, "key-1")]);
        assert_eq!(
            verify(&signed, &keys, NOW),
            SignatureCheck::Verified {
                kid: "key-1".into(),
                form: CanonicalForm::Jcs
            }
        );
    }

    #[test]
    fn a_card_signed_with_each_algorithm_verifies_against_its_pem_public_key() {
        for (alg, private, public) in [
            (Algorithm::Es256, P256, P256_PUB),
            (Algorithm::Es384, P384, P384_PUB),
            (Algorithm::Rs256, RSA, RSA_PUB),
            (Algorithm::Ps256, RSA, RSA_PUB),
            (Algorithm::EdDsa, ED, ED_PUB),
        ] {
            let signed = sign(&card(), private, "k", alg, None).unwrap();
            let keys = TrustStore::from_pem("k", public).unwrap();
            assert!(verify(&signed, &keys, NOW).is_verified(), "{alg}");
            let jwks = store(&[jwk(private, alg, "k")]);
            assert!(verify(&signed, &jwks, NOW).is_verified(), "{alg} (JWK)");
        }
    }

    #[test]
    fn the_protected_header_names_alg_kid_typ_and_the_jku_given() {
        let signed = sign(
            &card(),
            P256,
            "key-1",
            Algorithm::Es256,
            Some("https://travel.example/jwks.json"),
        )
        .unwrap();
        assert_eq!(
            header(&signed, 0),
            json!({"alg": "ES256", "jku": "https://travel.example/jwks.json", "kid": "key-1", "typ": "JOSE"})
        );
        let again = sign(&signed, RSA, "key-2", Algorithm::Rs256, None).unwrap();
        assert_eq!(again["signatures"].as_array().unwrap().len(), 2);
        assert_eq!(again["signatures"][0], signed["signatures"][0]);
        assert_eq!(header(&again, 1)["kid"], "key-2");
    }

    #[test]
    fn a_changed_card_no_longer_verifies() {
        let signed = sign(&card(), P256, "key-1", Algorithm::Es256, None).unwrap();
        let keys = store(&[jwk(P256, Algorithm::Es256, "key-1")]);
        let mut changed = signed.clone();
        changed["skills"][0]["description"] = json!("Books and cancels");
        let check = verify(&changed, &keys, NOW);
        let SignatureCheck::Invalid { reason } = &check else {
            panic!("{check:?}");
        };
        assert!(reason.starts_with("/signatures/0: "), "{reason}");
        assert!(reason.contains("does not match"), "{reason}");
    }

    #[test]
    fn layout_member_order_and_number_spelling_do_not_change_what_is_signed() {
        let mut original = card();
        original["capabilities"]["extensions"] =
            json!([{"uri": "urn:x", "params": {"limit": 10, "ratio": 0.5}}]);
        let signed = sign(&original, P256, "key-1", Algorithm::Es256, None).unwrap();
        let keys = store(&[jwk(P256, Algorithm::Es256, "key-1")]);
        let text = serde_json::to_string_pretty(&signed)
            .unwrap()
            .replace("\"limit\": 10", "\"limit\": 1.0E1")
            .replace("0.5", "5e-1");
        let reread: Map<String, Value> = serde_json::from_str(&text).unwrap();
        let mut members: Vec<(String, Value)> = reread.into_iter().collect();
        members.reverse();
        assert_eq!(
            verify(&Value::Object(members.into_iter().collect()), &keys, NOW),
            SignatureCheck::Verified {
                kid: "key-1".into(),
                form: CanonicalForm::Jcs
            }
        );
    }

    #[test]
    fn an_unknown_kid_is_an_untrusted_key_even_with_a_jku() {
        let signed = sign(
            &card(),
            P256,
            "elsewhere",
            Algorithm::Es256,
            Some("https://attacker.example/jwks.json"),
        )
        .unwrap();
        let keys = store(&[jwk(P256, Algorithm::Es256, "key-1")]);
        assert_eq!(
            verify(&signed, &keys, NOW),
            SignatureCheck::UntrustedKey {
                kid: "elsewhere".into()
            }
        );
    }

    #[test]
    fn expired_and_revoked_keys_are_not_used() {
        let signed = sign(&card(), P256, "key-1", Algorithm::Es256, None).unwrap();
        let mut key = jwk(P256, Algorithm::Es256, "key-1");
        key["expires"] = json!("2026-06-01T12:00:00Z");
        assert_eq!(
            verify(&signed, &store(std::slice::from_ref(&key)), NOW),
            SignatureCheck::ExpiredKey {
                kid: "key-1".into()
            }
        );
        let earlier = NOW - time::Duration::seconds(1);
        assert!(verify(&signed, &store(std::slice::from_ref(&key)), earlier).is_verified());
        key["revoked"] = json!(true);
        assert_eq!(
            verify(&signed, &store(&[key]), earlier),
            SignatureCheck::RevokedKey {
                kid: "key-1".into()
            }
        );
    }

    /// `none`, and HMAC keyed with the public key's bytes (the classic
    /// algorithm confusion), are refused before any key is looked at.
    #[test]
    fn alg_none_and_hmac_are_always_refused() {
        let keys = TrustStore::from_pem("key-1", P256_PUB).unwrap();
        let payload = B64.encode(canonical::payload(&card(), CanonicalForm::Jcs).unwrap());
        for alg in ["none", "HS256"] {
            let protected = B64.encode(json!({"alg": alg, "kid": "key-1"}).to_string());
            let input = format!("{protected}.{payload}");
            let signature = match alg {
                "none" => String::new(),
                _ => jsonwebtoken::crypto::sign(
                    input.as_bytes(),
                    &EncodingKey::from_secret(P256_PUB.as_bytes()),
                    jsonwebtoken::Algorithm::HS256,
                )
                .unwrap(),
            };
            let mut forged = card();
            forged["signatures"] = json!([{"protected": protected, "signature": signature}]);
            let check = verify(&forged, &keys, NOW);
            let SignatureCheck::Invalid { reason } = &check else {
                panic!("{alg}: {check:?}");
            };
            assert!(reason.contains("is refused"), "{reason}");
        }
        assert!("HS256".parse::<Algorithm>().is_err());
        assert!("none".parse::<Algorithm>().is_err());
    }

    #[test]
    fn a_key_of_another_kind_than_the_alg_does_not_check_it() {
        let signed = sign(&card(), RSA, "key-1", Algorithm::Rs256, None).unwrap();
        let mut forged = signed.clone();
        let protected = B64.encode(json!({"alg": "ES256", "kid": "key-1"}).to_string());
        forged["signatures"][0]["protected"] = json!(protected);
        let keys = TrustStore::from_pem("key-1", RSA_PUB).unwrap();
        let check = verify(&forged, &keys, NOW);
        assert!(
            matches!(&check, SignatureCheck::Invalid { reason } if reason.contains("is an RSA key")),
            "{check:?}"
        );
        let restricted = store(&[jwk(RSA, Algorithm::Ps256, "key-1")]);
        assert!(!verify(&signed, &restricted, NOW).is_verified());
    }

    #[test]
    fn a_card_without_signatures_is_unsigned_and_malformed_ones_are_invalid() {
        let keys = TrustStore::default();
        assert_eq!(verify(&card(), &keys, NOW), SignatureCheck::Unsigned);
        let mut card = card();
        card["signatures"] = json!([]);
        assert_eq!(verify(&card, &keys, NOW), SignatureCheck::Unsigned);
        for (signatures, says) in [
            (json!({}), "must be an array"),
            (
                json!([{"protected": "x"}]),
                "needs 'protected' and 'signature'",
            ),
            (
                json!([{"protected": "!!", "signature": "x"}]),
                "not a base64url JSON",
            ),
            (
                json!([{"protected": B64.encode(r#"{"alg":"ES256"}"#), "signature": "x"}]),
                "no 'kid'",
            ),
            (
                json!([{"protected": B64.encode(r#"{"alg":"RS512","kid":"k"}"#), "signature": "x"}]),
                "not one of",
            ),
            (
                json!([{"protected": B64.encode(r#"{"alg":"ES256","kid":"k","crit":["exp"]}"#), "signature": "x"}]),
                "'crit'",
            ),
        ] {
            card["signatures"] = signatures;
            let check = verify(&card, &keys, NOW);
            assert!(
                matches!(&check, SignatureCheck::Invalid { reason } if reason.contains(says)),
                "{says}: {check:?}"
            );
        }
    }

    #[test]
    fn the_first_valid_signature_wins_and_otherwise_the_most_telling_failure_is_reported() {
        let by_unknown = sign(&card(), P384, "unknown", Algorithm::Es384, None).unwrap();
        let both = sign(&by_unknown, P256, "key-1", Algorithm::Es256, None).unwrap();
        let key = jwk(P256, Algorithm::Es256, "key-1");
        assert_eq!(
            verify(&both, &store(std::slice::from_ref(&key)), NOW),
            SignatureCheck::Verified {
                kid: "key-1".into(),
                form: CanonicalForm::Jcs
            }
        );
        let mut expired = key.clone();
        expired["expires"] = json!("2020-01-01T00:00:00Z");
        assert_eq!(
            verify(&both, &store(&[expired]), NOW),
            SignatureCheck::ExpiredKey {
                kid: "key-1".into()
            }
        );
        let mut changed = both.clone();
        changed["name"] = json!("Trips");
        let check = verify(&changed, &store(&[key]), NOW);
        assert!(
            matches!(&check, SignatureCheck::Invalid { reason } if reason.starts_with("/signatures/1:")),
            "{check:?}"
        );
    }

    #[test]
    fn a_v03_card_signed_in_the_python_sdk_form_verifies_as_that_form() {
        let card = json!({
            "protocolVersion": "0.3.0", "name": "Café", "description": "d", "version": "1",
            "url": "https://travel.example/a2a", "preferredTransport": "JSONRPC",
            "capabilities": {}, "defaultInputModes": ["text"], "defaultOutputModes": ["text"],
            "securitySchemes": {"k": {"type": "apiKey", "name": "X-Key", "in": "header"}},
            "skills": [{"id": "s", "name": "S", "description": "d", "tags": ["t"]}]
        });
        let keys = TrustStore::from_pem("k", P256_PUB).unwrap();
        let sdk = sign_as(
            &card,
            P256,
            "k",
            Algorithm::Es256,
            None,
            CanonicalForm::A2aPython,
        )
        .unwrap();
        assert_eq!(
            verify(&sdk, &keys, NOW),
            SignatureCheck::Verified {
                kid: "k".into(),
                form: CanonicalForm::A2aPython
            }
        );
        let spec = sign(&card, P256, "k", Algorithm::Es256, None).unwrap();
        assert_eq!(
            verify(&spec, &keys, NOW),
            SignatureCheck::Verified {
                kid: "k".into(),
                form: CanonicalForm::Jcs
            }
        );
    }

    #[test]
    fn a_trust_store_deserialises_from_a_jwk_set_in_json_or_toml() {
        let json = json!({"keys": [
            jwk(P256, Algorithm::Es256, "a"),
            {"kid": "b", "pem": RSA_PUB, "expires": "2027-01-01T00:00:00Z"},
            {"kid": "c", "pem": ED_PUB, "revoked": true},
        ]});
        let keys: TrustStore = serde_json::from_value(json).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys.get("a").unwrap().kind(), KeyKind::P256);
        assert_eq!(
            keys.get("b").unwrap().expires,
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        assert!(keys.get("c").unwrap().revoked);
        let toml = format!("[[keys]]\nkid = \"d\"\npem = '''\n{P384_PUB}'''\n");
        let keys: TrustStore = toml::from_str(&toml).unwrap();
        assert_eq!(keys.get("d").unwrap().kind(), KeyKind::P384);
    }

    #[test]
    fn a_trust_store_refuses_symmetric_private_duplicate_and_malformed_keys() {
        let good = jwk(P256, Algorithm::Es256, "k");
        let mut short = good.clone();
        short["x"] = json!("AAAA");
        let mut off_curve = good.clone();
        off_curve["y"] = good["x"].clone();
        let mut private = good.clone();
        private["d"] = json!("AAAA");
        let mut late = good.clone();
        late["expires"] = json!("next year");
        for (keys, says) in [
            (
                json!([{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]),
                "symmetric",
            ),
            (json!([private]), "private key"),
            (
                json!([good.clone(), good.clone()]),
                "two keys have the kid 'k'",
            ),
            (json!([short]), "32 bytes"),
            (json!([off_curve]), "not a valid"),
            (json!([late]), "RFC 3339"),
            (
                json!([{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]),
                "key #0: a trusted key needs a 'kid'",
            ),
            (
                json!([{"kty": "EC", "crv": "secp256k1", "kid": "k"}]),
                "curve",
            ),
            (json!([{"kid": "k", "pem": P256}]), "private key"),
        ] {
            let err = TrustStore::from_jwks(&json!({ "keys": keys }).to_string()).unwrap_err();
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
        assert!(TrustStore::from_jwks("[1]").is_err());
    }

    #[test]
    fn signing_refuses_a_key_that_does_not_fit_the_alg() {
        for (alg, key) in [
            (Algorithm::Es256, RSA),
            (Algorithm::Es256, P384),
            (Algorithm::Rs256, P256),
            (Algorithm::EdDsa, P256),
        ] {
            let err = sign(&card(), key, "k", alg, None).unwrap_err();
            assert!(matches!(err, KeyError::SigningKey(_)), "{alg}: {err}");
        }
        assert!(sign(&card(), P256_PUB, "k", Algorithm::Es256, None).is_err());
        assert!(sign(&json!([]), P256, "k", Algorithm::Es256, None).is_err());
    }

    #[test]
    fn the_default_algorithm_follows_the_key() {
        assert_eq!(default_algorithm(P256), Ok(Algorithm::Es256));
        assert_eq!(default_algorithm(P384), Ok(Algorithm::Es384));
        assert_eq!(default_algorithm(RSA), Ok(Algorithm::Rs256));
        assert_eq!(default_algorithm(ED), Ok(Algorithm::EdDsa));
        assert!(default_algorithm(ED_PUB).is_err());
    }
}

//! A tenant's A2A settings, managed through the control plane
//! (`/_agentry/a2a/settings`) and stored as the tenant setting `a2a`: how
//! the cards it registers are checked, the keys it trusts, the collections
//! whose cards are served without a token, and whether its agents are
//! watched. A member the tenant never set (or set back to `null`) follows
//! the server's configuration ([`Defaults`]).
//!
//! ```json
//! {"cardValidation": "warn", "cardSignatures": "verify-if-present",
//!  "trustedKeys": {"keys": [...]}, "publishedCollections": ["<collection id>"],
//!  "watch": {"enabled": true, "intervalSeconds": 300}}
//! ```

use super::signature::TrustStore;
use super::{SignatureMode, SignaturePolicy, ValidationMode};
use crate::domain::DomainError;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The name the settings are stored (and audited, and snapshotted) under.
pub const KEY: &str = "a2a";

/// How the type is named in errors.
const TYPE_NAME: &str = "agentry.a2aSettings";

/// The fewest and most seconds between two checks of one agent.
pub const WATCH_INTERVAL: std::ops::RangeInclusive<u64> = 10..=86_400;

/// How a tenant's agents are watched ([`crate::watch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub enabled: bool,
    /// Seconds between two checks of one agent.
    pub interval_seconds: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            enabled: false,
            interval_seconds: 300,
        }
    }
}

/// What the server's configuration sets, for the members a tenant leaves unset.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub validation: ValidationMode,
    pub signatures: SignatureMode,
    pub trust: Arc<TrustStore>,
    pub watch: Watch,
}

/// A tenant's settings in effect: its own members over the defaults.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub validation: ValidationMode,
    /// `None` when signatures are not checked.
    pub signatures: Option<Arc<SignaturePolicy>>,
    /// Collections whose members' cards are served without a token.
    pub published: Vec<String>,
    pub watch: Watch,
}

/// Validates a PATCH body into the members to change (`null`: back to the
/// configuration's value).
pub fn parse_patch(body: Value) -> Result<Map<String, Value>, DomainError> {
    let Value::Object(body) = body else {
        return Err(DomainError::NotAnObject);
    };
    for (key, value) in &body {
        let wrong = |expected: &'static str| DomainError::WrongType {
            property: key.clone(),
            expected,
        };
        if value.is_null() {
            if !MEMBERS.contains(&key.as_str()) {
                return Err(unknown(key));
            }
            continue;
        }
        match key.as_str() {
            "cardValidation" => {
                let text = value.as_str().ok_or_else(|| wrong("a string"))?;
                text.parse::<ValidationMode>()
                    .map_err(|_| not_a_member(key, text, "off, warn, require"))?;
            }
            "cardSignatures" => {
                let text = value.as_str().ok_or_else(|| wrong("a string"))?;
                text.parse::<SignatureMode>()
                    .map_err(|_| not_a_member(key, text, "off, verify-if-present, require"))?;
            }
            "trustedKeys" => {
                if !value.is_object() {
                    return Err(wrong("a JWK set ({\"keys\": [...]})"));
                }
                serde_json::from_value::<TrustStore>(value.clone())
                    .map_err(|e| DomainError::InvalidTrustStore(e.to_string()))?;
            }
            "publishedCollections" => {
                let ids = value.as_array().ok_or_else(|| wrong("an array of ids"))?;
                if ids.iter().any(|v| v.as_str().is_none_or(str::is_empty)) {
                    return Err(wrong("an array of collection ids"));
                }
            }
            "watch" => parse_watch(key, value)?,
            _ => return Err(unknown(key)),
        }
    }
    Ok(body)
}

const MEMBERS: [&str; 5] = [
    "cardValidation",
    "cardSignatures",
    "trustedKeys",
    "publishedCollections",
    "watch",
];

fn parse_watch(key: &str, value: &Value) -> Result<(), DomainError> {
    let Value::Object(watch) = value else {
        return Err(DomainError::WrongType {
            property: key.to_owned(),
            expected: "an object",
        });
    };
    for (k, v) in watch {
        let property = format!("watch/{k}");
        match k.as_str() {
            "enabled" if v.is_boolean() => {}
            "enabled" => {
                return Err(DomainError::WrongType {
                    property,
                    expected: "a boolean",
                });
            }
            "intervalSeconds" => {
                if !v.as_u64().is_some_and(|n| WATCH_INTERVAL.contains(&n)) {
                    return Err(DomainError::WrongType {
                        property,
                        expected: "a whole number of seconds from 10 to 86400",
                    });
                }
            }
            _ => return Err(unknown(&property)),
        }
    }
    Ok(())
}

fn unknown(key: &str) -> DomainError {
    DomainError::UnknownProperty {
        property: key.to_owned(),
        type_name: TYPE_NAME,
    }
}

fn not_a_member(key: &str, value: &str, members: &'static str) -> DomainError {
    DomainError::NotAMember {
        property: key.to_owned(),
        value: value.to_owned(),
        type_name: members,
    }
}

/// Merges a validated patch into the stored settings: `null` removes a
/// member, `watch` merges member by member.
pub fn apply(
    current: Option<Map<String, Value>>,
    patch: &Map<String, Value>,
) -> Map<String, Value> {
    let mut doc = current.unwrap_or_default();
    for (k, v) in patch {
        match (k.as_str(), v) {
            (_, Value::Null) => {
                doc.remove(k);
            }
            ("watch", Value::Object(changes)) => {
                let mut watch = match doc.remove(k) {
                    Some(Value::Object(w)) => w,
                    _ => Map::new(),
                };
                for (wk, wv) in changes {
                    watch.insert(wk.clone(), wv.clone());
                }
                doc.insert(k.clone(), Value::Object(watch));
            }
            _ => {
                doc.insert(k.clone(), v.clone());
            }
        }
    }
    doc
}

/// The settings in effect for a tenant whose stored settings are `doc`.
/// Stored members were validated when written; one that no longer parses
/// (never written by this version) falls back to the default.
pub fn resolve(doc: Option<&Map<String, Value>>, defaults: &Defaults) -> Effective {
    let member = |k: &str| doc.and_then(|d| d.get(k)).filter(|v| !v.is_null());
    let validation = member("cardValidation")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(defaults.validation);
    let mode = member("cardSignatures")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(defaults.signatures);
    let signatures = (mode != SignatureMode::Off).then(|| {
        let trust = member("trustedKeys")
            .and_then(|v| serde_json::from_value::<TrustStore>(v.clone()).ok())
            .map(Arc::new)
            .unwrap_or_else(|| defaults.trust.clone());
        Arc::new(SignaturePolicy { mode, trust })
    });
    let published = member("publishedCollections")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let watch = member("watch").and_then(Value::as_object);
    let watch = Watch {
        enabled: watch
            .and_then(|w| w.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(defaults.watch.enabled),
        interval_seconds: watch
            .and_then(|w| w.get("intervalSeconds"))
            .and_then(Value::as_u64)
            .filter(|n| WATCH_INTERVAL.contains(n))
            .unwrap_or(defaults.watch.interval_seconds),
    };
    Effective {
        validation,
        signatures,
        published,
        watch,
    }
}

/// What the control plane shows: every member in effect, the trusted key
/// ids in effect, and which members come from the configuration.
pub fn view(doc: Option<&Map<String, Value>>, defaults: &Defaults) -> Value {
    let effective = resolve(doc, defaults);
    let set = |k: &str| doc.and_then(|d| d.get(k)).is_some_and(|v| !v.is_null());
    let inherited: Vec<&str> = MEMBERS.iter().copied().filter(|k| !set(k)).collect();
    let trust = match &effective.signatures {
        Some(p) => p.trust.clone(),
        None => doc
            .and_then(|d| d.get("trustedKeys"))
            .and_then(|v| serde_json::from_value::<TrustStore>(v.clone()).ok())
            .map(Arc::new)
            .unwrap_or_else(|| defaults.trust.clone()),
    };
    let kids: Vec<&str> = trust.keys().map(|k| k.kid()).collect();
    let mode = effective
        .signatures
        .as_ref()
        .map_or(SignatureMode::Off, |p| p.mode);
    json!({
        "cardValidation": validation_name(effective.validation),
        "cardSignatures": signature_mode_name(mode),
        "trustedKeys": doc.and_then(|d| d.get("trustedKeys")).cloned().unwrap_or(Value::Null),
        "trustedKeyIds": kids,
        "publishedCollections": effective.published,
        "watch": {
            "enabled": effective.watch.enabled,
            "intervalSeconds": effective.watch.interval_seconds,
        },
        "fromConfiguration": inherited,
    })
}

fn validation_name(mode: ValidationMode) -> &'static str {
    match mode {
        ValidationMode::Off => "off",
        ValidationMode::Warn => "warn",
        ValidationMode::Require => "require",
    }
}

fn signature_mode_name(mode: SignatureMode) -> &'static str {
    match mode {
        SignatureMode::Off => "off",
        SignatureMode::VerifyIfPresent => "verify-if-present",
        SignatureMode::Require => "require",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "k1",
               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    #[test]
    fn patch_bodies_are_checked_member_by_member() {
        let table: Vec<(Value, Option<&str>)> = vec![
            (json!({"cardValidation": "warn"}), None),
            (
                json!({"cardValidation": "loud"}),
                Some("'loud' is not a member"),
            ),
            (json!({"cardValidation": 1}), Some("must be a string")),
            (json!({"cardSignatures": "verify-if-present"}), None),
            (json!({"cardSignatures": "sometimes"}), Some("not a member")),
            (json!({"trustedKeys": {"keys": [key()]}}), None),
            (
                json!({"trustedKeys": {"keys": [{"kty": "oct", "kid": "h", "k": "AA"}]}}),
                Some("trust store"),
            ),
            (json!({"trustedKeys": [1]}), Some("JWK set")),
            (json!({"publishedCollections": ["a", "b"]}), None),
            (
                json!({"publishedCollections": [""]}),
                Some("collection ids"),
            ),
            (
                json!({"watch": {"enabled": true, "intervalSeconds": 60}}),
                None,
            ),
            (
                json!({"watch": {"intervalSeconds": 5}}),
                Some("from 10 to 86400"),
            ),
            (
                json!({"watch": {"often": true}}),
                Some("'watch/often' does not exist"),
            ),
            (json!({"cardValidation": null, "watch": null}), None),
            (json!({"colour": "blue"}), Some("'colour' does not exist")),
            (json!({"colour": null}), Some("'colour' does not exist")),
            (json!([1]), Some("JSON object")),
        ];
        for (body, expected) in table {
            let got = parse_patch(body.clone()).map_err(|e| e.to_string());
            match (got, expected) {
                (Ok(_), None) => {}
                (Err(e), Some(part)) => assert!(e.contains(part), "{body}: {e}"),
                (got, expected) => panic!("{body}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn unset_members_follow_the_configuration_and_null_unsets() {
        let defaults = Defaults {
            validation: ValidationMode::Warn,
            signatures: SignatureMode::Off,
            ..Default::default()
        };
        let doc = apply(
            None,
            &parse_patch(json!({"cardSignatures": "require", "watch": {"enabled": true}})).unwrap(),
        );
        let e = resolve(Some(&doc), &defaults);
        assert_eq!(e.validation, ValidationMode::Warn);
        assert_eq!(e.signatures.as_ref().unwrap().mode, SignatureMode::Require);
        assert_eq!(
            e.watch,
            Watch {
                enabled: true,
                interval_seconds: 300
            }
        );
        let doc = apply(
            Some(doc),
            &parse_patch(json!({"cardSignatures": null, "watch": {"intervalSeconds": 60}}))
                .unwrap(),
        );
        let e = resolve(Some(&doc), &defaults);
        assert!(e.signatures.is_none());
        assert_eq!(
            e.watch,
            Watch {
                enabled: true,
                interval_seconds: 60
            }
        );
        let shown = view(Some(&doc), &defaults);
        assert_eq!(shown["cardSignatures"], "off");
        assert_eq!(
            shown["fromConfiguration"],
            json!([
                "cardValidation",
                "cardSignatures",
                "trustedKeys",
                "publishedCollections"
            ])
        );
    }

    #[test]
    fn a_tenant_key_set_replaces_the_configured_trust_store() {
        let defaults = Defaults::default();
        let doc = apply(
            None,
            &parse_patch(json!({"cardSignatures": "require", "trustedKeys": {"keys": [key()]}}))
                .unwrap(),
        );
        let e = resolve(Some(&doc), &defaults);
        let trust = &e.signatures.unwrap().trust;
        assert_eq!(trust.keys().map(|k| k.kid()).collect::<Vec<_>>(), ["k1"]);
        assert_eq!(view(Some(&doc), &defaults)["trustedKeyIds"], json!(["k1"]));
    }
}

//! Per-tenant Copilot settings that are plain objects, not policies:
//! `copilotAdminLimitedMode` and `enhancedPersonalizationSetting`.

use super::CopilotError;
use serde_json::{Map, Value};

/// Which per-tenant settings object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantSetting {
    /// `/copilot/admin/settings/limitedMode`
    LimitedMode,
    /// `/copilot/settings/people/enhancedPersonalization`
    EnhancedPersonalization,
    /// Not a Copilot setting: the tenant's A2A settings
    /// ([`crate::domain::a2a::settings`]), stored, audited and snapshotted
    /// as the others are. Its bodies are checked by that module.
    A2a,
}

#[derive(Clone, Copy)]
enum Kind {
    Boolean,
    NullableString,
}

struct Field {
    name: &'static str,
    kind: Kind,
    default: fn() -> Value,
}

const LIMITED_MODE: &[Field] = &[
    Field {
        name: "isEnabledForGroup",
        kind: Kind::Boolean,
        default: || Value::Bool(false),
    },
    Field {
        name: "groupId",
        kind: Kind::NullableString,
        default: || Value::Null,
    },
];

const ENHANCED_PERSONALIZATION: &[Field] = &[
    Field {
        name: "isEnabledInOrganization",
        kind: Kind::Boolean,
        default: || Value::Bool(true),
    },
    Field {
        name: "disabledForGroup",
        kind: Kind::NullableString,
        default: || Value::Null,
    },
];

impl TenantSetting {
    pub const ALL: [TenantSetting; 3] = [
        TenantSetting::LimitedMode,
        TenantSetting::EnhancedPersonalization,
        TenantSetting::A2a,
    ];

    /// The storage key, also the seed file's property name.
    pub fn key(self) -> &'static str {
        match self {
            TenantSetting::LimitedMode => "limitedMode",
            TenantSetting::EnhancedPersonalization => "enhancedPersonalization",
            TenantSetting::A2a => crate::domain::a2a::settings::KEY,
        }
    }

    /// `microsoft.graph.copilotAdminLimitedMode`, ...
    pub fn type_name(self) -> &'static str {
        match self {
            TenantSetting::LimitedMode => "microsoft.graph.copilotAdminLimitedMode",
            TenantSetting::EnhancedPersonalization => {
                "microsoft.graph.enhancedPersonalizationSetting"
            }
            TenantSetting::A2a => "agentry.a2aSettings",
        }
    }

    /// The path in the `@odata.context` URL, after `$metadata#`.
    pub fn context_path(self) -> &'static str {
        match self {
            TenantSetting::LimitedMode => "copilot/admin/settings/limitedMode",
            TenantSetting::EnhancedPersonalization => {
                "copilot/settings/people/enhancedPersonalization"
            }
            TenantSetting::A2a => "a2a/settings",
        }
    }

    fn fields(self) -> &'static [Field] {
        match self {
            TenantSetting::LimitedMode => LIMITED_MODE,
            TenantSetting::EnhancedPersonalization => ENHANCED_PERSONALIZATION,
            TenantSetting::A2a => &[],
        }
    }

    /// Properties a PATCH must carry.
    fn required(self) -> &'static [&'static str] {
        match self {
            TenantSetting::LimitedMode => &[],
            TenantSetting::EnhancedPersonalization => &["isEnabledInOrganization"],
            TenantSetting::A2a => &[],
        }
    }

    /// The object of a tenant that never changed it: limited mode off,
    /// enhanced personalization on (the service's defaults).
    pub fn defaults(self) -> Map<String, Value> {
        self.fields()
            .iter()
            .map(|f| (f.name.to_owned(), (f.default)()))
            .collect()
    }

    /// Validates a PATCH body into the properties to change.
    pub fn parse_patch(self, body: Value) -> Result<Map<String, Value>, CopilotError> {
        let Value::Object(body) = body else {
            return Err(CopilotError::NotAnObject);
        };
        let mut out = Map::new();
        for (key, value) in body {
            if key == "@odata.type" {
                let given = value.as_str().unwrap_or_default();
                if given.trim_start_matches('#') != self.type_name() {
                    return Err(CopilotError::TypeMismatch {
                        given: given.to_owned(),
                        expected: self.type_name(),
                    });
                }
                continue;
            }
            if key.contains('@') {
                continue;
            }
            let Some(field) = self.fields().iter().find(|f| f.name == key) else {
                return Err(CopilotError::UnknownProperty {
                    property: key,
                    type_name: self.type_name(),
                });
            };
            let fits = match field.kind {
                Kind::Boolean => value.is_boolean(),
                Kind::NullableString => value.is_string() || value.is_null(),
            };
            if !fits {
                return Err(CopilotError::WrongType {
                    property: key,
                    expected: match field.kind {
                        Kind::Boolean => "a boolean",
                        Kind::NullableString => "a string or null",
                    },
                });
            }
            out.insert(key, value);
        }
        if let Some(missing) = self.required().iter().find(|r| !out.contains_key(**r)) {
            return Err(CopilotError::MissingProperty(missing));
        }
        Ok(out)
    }

    /// Merges validated changes into the current object (or the defaults).
    pub fn apply(
        self,
        current: Option<Map<String, Value>>,
        patch: &Map<String, Value>,
    ) -> Map<String, Value> {
        if self == TenantSetting::A2a {
            return crate::domain::a2a::settings::apply(current, patch);
        }
        let mut doc = self.defaults();
        for (k, v) in current.into_iter().flatten() {
            if doc.contains_key(&k) {
                doc.insert(k, v);
            }
        }
        for (k, v) in patch {
            doc.insert(k.clone(), v.clone());
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_limited_mode_off_and_personalization_on() {
        assert_eq!(
            Value::Object(TenantSetting::LimitedMode.defaults()),
            json!({"isEnabledForGroup": false, "groupId": null})
        );
        assert_eq!(
            Value::Object(TenantSetting::EnhancedPersonalization.defaults()),
            json!({"isEnabledInOrganization": true, "disabledForGroup": null})
        );
    }

    #[test]
    fn patch_bodies_are_checked_per_property() {
        use TenantSetting::{EnhancedPersonalization as EP, LimitedMode as LM};
        let table: Vec<(TenantSetting, Value, Result<Value, &str>)> = vec![
            (
                LM,
                json!({"isEnabledForGroup": true, "groupId": "g"}),
                Ok(json!({"isEnabledForGroup": true, "groupId": "g"})),
            ),
            (
                LM,
                json!({"@odata.type": "#microsoft.graph.copilotAdminLimitedMode", "groupId": null}),
                Ok(json!({"groupId": null})),
            ),
            (LM, json!({}), Ok(json!({}))),
            (
                LM,
                json!({"isEnabledForGroup": "yes"}),
                Err("must be a boolean"),
            ),
            (
                LM,
                json!({"isEnabledForGroup": null}),
                Err("must be a boolean"),
            ),
            (LM, json!({"groupId": 5}), Err("a string or null")),
            (
                LM,
                json!({"mode": 1}),
                Err("Could not find a property named 'mode'"),
            ),
            (
                LM,
                json!({"@odata.type": "#microsoft.graph.user"}),
                Err("does not match"),
            ),
            (LM, json!(true), Err("JSON object")),
            (
                EP,
                json!({"isEnabledInOrganization": false}),
                Ok(json!({"isEnabledInOrganization": false})),
            ),
            (
                EP,
                json!({"disabledForGroup": "g"}),
                Err("'isEnabledInOrganization' is required"),
            ),
        ];
        for (kind, body, expected) in table {
            let got = kind.parse_patch(body.clone()).map(Value::Object);
            match expected {
                Ok(v) => assert_eq!(got, Ok(v), "{body}"),
                Err(text) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(text), "{body}: {e}");
                }
            }
        }
    }

    #[test]
    fn a_patch_merges_over_the_current_object() {
        let kind = TenantSetting::LimitedMode;
        let current = kind.apply(
            None,
            &kind
                .parse_patch(json!({"isEnabledForGroup": true, "groupId": "g"}))
                .unwrap(),
        );
        let next = kind.apply(
            Some(current),
            &kind
                .parse_patch(json!({"isEnabledForGroup": false}))
                .unwrap(),
        );
        assert_eq!(
            Value::Object(next),
            json!({"isEnabledForGroup": false, "groupId": "g"})
        );
    }
}

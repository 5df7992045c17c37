//! The Copilot policy settings this server knows, as data: one table holds
//! each setting's identifier, the policy service that owns it, its value
//! format and the values strict mode accepts.

use super::CopilotError;
use serde::{Deserialize, Serialize};

/// The service whose policies hold a setting. Callers never choose it: the
/// catalog says which service owns each setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyService {
    /// Cloud Policy service for Microsoft 365 (config.office.com).
    CloudPolicyService,
    /// Microsoft Intune.
    Intune,
}

impl PolicyService {
    /// The JSON spelling, as in the control API and the seed file.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyService::CloudPolicyService => "cloudPolicyService",
            PolicyService::Intune => "intune",
        }
    }

    /// The service's name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyService::CloudPolicyService => "Cloud Policy service",
            PolicyService::Intune => "Intune",
        }
    }

    /// How messages name the service inside a sentence.
    pub fn label(self) -> &'static str {
        match self {
            PolicyService::CloudPolicyService => "the Cloud Policy service",
            PolicyService::Intune => "Intune",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cloudPolicyService" => Some(PolicyService::CloudPolicyService),
            "intune" => Some(PolicyService::Intune),
            _ => None,
        }
    }
}

/// How a setting's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A digit naming a state: `"0"`, `"1"`, ...
    DigitState,
}

/// One supported setting.
#[derive(Debug)]
pub struct SettingDefinition {
    /// The friendly identifier, which is also the URL key (case-sensitive).
    pub id: &'static str,
    pub display_name: &'static str,
    /// The service whose tenant-level policy holds the value.
    pub service: PolicyService,
    pub format: ValueFormat,
    /// The values strict mode accepts.
    pub allowed_values: &'static [&'static str],
}

const TOGGLE: &[&str] = &["0", "1"];

/// The five settings supported at launch. Only `copilotchatpinning` and
/// `allowwebsearch` are documented as Cloud Policy settings; the owners of
/// the other three are not published, and the choice here is recorded in
/// `docs/graph-behaviour.md`.
pub const SETTINGS: &[SettingDefinition] = &[
    SettingDefinition {
        id: "microsoft.copilot.copilotchatpinning",
        display_name: "Pin Microsoft 365 Copilot Chat",
        service: PolicyService::CloudPolicyService,
        format: ValueFormat::DigitState,
        allowed_values: TOGGLE,
    },
    SettingDefinition {
        id: "microsoft.copilot.blockaccesstoopenfiles",
        display_name: "Block Copilot Access to Open Content",
        service: PolicyService::Intune,
        format: ValueFormat::DigitState,
        allowed_values: TOGGLE,
    },
    SettingDefinition {
        id: "microsoft.copilot.imagegeneration",
        display_name: "Control access to Designer Image Generation",
        service: PolicyService::CloudPolicyService,
        format: ValueFormat::DigitState,
        allowed_values: TOGGLE,
    },
    SettingDefinition {
        id: "microsoft.copilot.allowwebsearch",
        display_name: "Allow web search in Copilot",
        service: PolicyService::CloudPolicyService,
        format: ValueFormat::DigitState,
        allowed_values: &["0", "1", "2"],
    },
    SettingDefinition {
        id: "microsoft.copilot.allowinadmincenters",
        display_name: "Control Admin Copilot availability in Microsoft 365 Admin Center",
        service: PolicyService::Intune,
        format: ValueFormat::DigitState,
        allowed_values: TOGGLE,
    },
];

/// The supported setting with exactly this identifier.
pub fn setting(id: &str) -> Option<&'static SettingDefinition> {
    SETTINGS.iter().find(|s| s.id == id)
}

/// The supported setting with this identifier, or the documented 404.
pub fn supported(id: &str) -> Result<&'static SettingDefinition, CopilotError> {
    setting(id).ok_or_else(|| CopilotError::UnsupportedSetting(id.to_owned()))
}

impl SettingDefinition {
    /// Checks a value. Graph documents no validation, so by default any
    /// string is accepted; `strict` limits values to the allowed set.
    pub fn check_value(&self, value: &str, strict: bool) -> Result<(), CopilotError> {
        if !strict || self.allowed_values.contains(&value) {
            return Ok(());
        }
        Err(CopilotError::InvalidValue {
            setting_id: self.id,
            value: value.to_owned(),
            allowed: self.allowed_values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_holds_the_five_documented_settings_in_lower_case() {
        assert_eq!(SETTINGS.len(), 5);
        for s in SETTINGS {
            assert_eq!(s.id, s.id.to_ascii_lowercase());
            assert!(s.id.starts_with("microsoft.copilot."));
            assert_eq!(setting(s.id).map(|d| d.id), Some(s.id));
        }
    }

    #[test]
    fn lookups_are_exact_and_case_sensitive() {
        let table = [
            ("microsoft.copilot.copilotchatpinning", true),
            ("microsoft.copilot.allowwebsearch", true),
            ("Microsoft.Copilot.CopilotChatPinning", false),
            ("microsoft.copilot.pinning", false),
            ("", false),
        ];
        for (id, known) in table {
            assert_eq!(setting(id).is_some(), known, "{id}");
            assert_eq!(supported(id).is_ok(), known, "{id}");
        }
    }

    #[test]
    fn documented_owners_are_the_cloud_policy_service() {
        for id in [
            "microsoft.copilot.copilotchatpinning",
            "microsoft.copilot.allowwebsearch",
        ] {
            assert_eq!(
                setting(id).map(|s| s.service),
                Some(PolicyService::CloudPolicyService)
            );
        }
    }

    #[test]
    fn values_are_free_unless_strict() {
        let pin = setting("microsoft.copilot.copilotchatpinning").unwrap();
        let web = setting("microsoft.copilot.allowwebsearch").unwrap();
        let table = [
            (pin, "1", true, true),
            (pin, "0", true, true),
            (pin, "2", true, false),
            (pin, "2", false, true),
            (pin, "<xml/>", false, true),
            (web, "2", true, true),
            (web, "3", true, false),
            (web, "", true, false),
        ];
        for (s, value, strict, ok) in table {
            assert_eq!(
                s.check_value(value, strict).is_ok(),
                ok,
                "{} {value} {strict}",
                s.id
            );
        }
    }

    #[test]
    fn services_round_trip_through_their_json_names() {
        for s in [PolicyService::CloudPolicyService, PolicyService::Intune] {
            assert_eq!(PolicyService::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(PolicyService::parse("CPS"), None);
    }
}

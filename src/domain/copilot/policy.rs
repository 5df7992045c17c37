//! Policies of the underlying policy services: what the control API and the
//! seed file create and change, and what setting resolution reads.

use super::CopilotError;
use super::catalog::{self, PolicyService};
use crate::domain::WriteContext;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const MAX_ID_CHARS: usize = 1024;
const POLICY_TYPE: &str = "copilotPolicy";

/// Whom a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyScope {
    /// The whole tenant: the only scope the policySettings API reads and writes.
    Tenant,
    /// The members of `targetGroupIds`.
    Group,
    /// Individual users.
    User,
}

impl PolicyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyScope::Tenant => "tenant",
            PolicyScope::Group => "group",
            PolicyScope::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tenant" => Some(PolicyScope::Tenant),
            "group" => Some(PolicyScope::Group),
            "user" => Some(PolicyScope::User),
            _ => None,
        }
    }
}

/// One policy of a policy service, with the setting values it configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: String,
    pub display_name: String,
    pub service: PolicyService,
    pub scope: PolicyScope,
    /// The Entra groups of a group-level policy; empty for other scopes.
    pub target_group_ids: Vec<String>,
    /// Lower numbers come first when a tenant-level policy is picked.
    pub priority: u32,
    pub created_date_time: String,
    pub last_modified_date_time: String,
    /// Setting id to value, for the settings this policy configures.
    pub settings: BTreeMap<String, String>,
}

/// A validated partial update of a policy (JSON merge-patch semantics:
/// properties sent replace, `settings` merges, a `null` setting is removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyPatch {
    pub display_name: Option<String>,
    pub service: Option<PolicyService>,
    pub scope: Option<PolicyScope>,
    pub target_group_ids: Option<Vec<String>>,
    pub priority: Option<u32>,
    pub settings: Option<BTreeMap<String, Option<String>>>,
}

impl Policy {
    /// The tenant-level policy created when a setting is written in a tenant
    /// that has none for the owning service.
    pub fn new_tenant_level(service: PolicyService, ctx: &WriteContext) -> Self {
        Policy {
            id: crate::domain::new_id(),
            display_name: format!("Microsoft 365 Copilot settings ({})", service.name()),
            service,
            scope: PolicyScope::Tenant,
            target_group_ids: Vec::new(),
            priority: 0,
            created_date_time: ctx.now.clone(),
            last_modified_date_time: ctx.now.clone(),
            settings: BTreeMap::new(),
        }
    }

    /// The policy's JSON representation (what is stored and served).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a stored representation back.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Checks what every policy must satisfy, whatever wrote it.
    pub fn validate(&self, strict: bool) -> Result<(), CopilotError> {
        if self.display_name.trim().is_empty() {
            return Err(invalid("The property 'displayName' must not be empty."));
        }
        match (self.scope, self.target_group_ids.is_empty()) {
            (PolicyScope::Group, true) => {
                return Err(invalid(
                    "A group-level policy needs at least one id in 'targetGroupIds'.",
                ));
            }
            (PolicyScope::Tenant | PolicyScope::User, false) => {
                return Err(invalid(
                    "Only a group-level policy can have 'targetGroupIds'.",
                ));
            }
            _ => {}
        }
        for (id, value) in &self.settings {
            let Some(setting) = catalog::setting(id) else {
                return Err(invalid(format!(
                    "The setting '{id}' is not a supported Copilot setting."
                )));
            };
            if setting.service != self.service {
                return Err(invalid(format!(
                    "The setting '{id}' is managed by {}, not by {}.",
                    setting.service.label(),
                    self.service.label()
                )));
            }
            setting.check_value(value, strict)?;
        }
        Ok(())
    }

    /// Applies a validated patch; the caller validates the result.
    pub fn apply(&mut self, patch: &PolicyPatch, ctx: &WriteContext) {
        if let Some(v) = &patch.display_name {
            self.display_name.clone_from(v);
        }
        if let Some(v) = patch.service {
            self.service = v;
        }
        if let Some(v) = patch.scope {
            self.scope = v;
        }
        if let Some(v) = &patch.target_group_ids {
            self.target_group_ids.clone_from(v);
        }
        if let Some(v) = patch.priority {
            self.priority = v;
        }
        for (id, value) in patch.settings.iter().flatten() {
            match value {
                Some(v) => self.settings.insert(id.clone(), v.clone()),
                None => self.settings.remove(id),
            };
        }
        self.last_modified_date_time.clone_from(&ctx.now);
    }

    /// Writes one setting's value.
    pub fn set_value(&mut self, setting_id: &str, value: &str, ctx: &WriteContext) {
        self.settings
            .insert(setting_id.to_owned(), value.to_owned());
        self.last_modified_date_time.clone_from(&ctx.now);
    }
}

fn invalid(message: impl Into<String>) -> CopilotError {
    CopilotError::InvalidPolicy(message.into())
}

/// Validates a create body (control API or seed file). `id` is assigned when
/// absent; `createdDateTime` and `lastModifiedDateTime` are kept when given
/// (so a snapshot keeps its order), else stamped now.
pub fn parse_new_policy(
    body: Value,
    strict: bool,
    ctx: &WriteContext,
) -> Result<Policy, CopilotError> {
    let Value::Object(body) = body else {
        return Err(CopilotError::NotAnObject);
    };
    let mut id = None;
    let mut created = None;
    let mut modified = None;
    let mut rest = Map::new();
    for (key, value) in body {
        match key.as_str() {
            "id" => id = Some(parse_id(value)?),
            "createdDateTime" => created = Some(parse_time(&key, value)?),
            "lastModifiedDateTime" => modified = Some(parse_time(&key, value)?),
            _ => {
                rest.insert(key, value);
            }
        }
    }
    let patch = parse_fields(rest)?;
    let display_name = patch
        .display_name
        .clone()
        .ok_or(CopilotError::MissingProperty("displayName"))?;
    let service = patch
        .service
        .ok_or(CopilotError::MissingProperty("service"))?;
    let scope = patch.scope.ok_or(CopilotError::MissingProperty("scope"))?;
    let created = created.unwrap_or_else(|| ctx.now.clone());
    let mut policy = Policy {
        id: id.unwrap_or_else(crate::domain::new_id),
        display_name,
        service,
        scope,
        target_group_ids: Vec::new(),
        priority: 0,
        last_modified_date_time: modified.unwrap_or_else(|| created.clone()),
        created_date_time: created,
        settings: BTreeMap::new(),
    };
    let stamp = policy.last_modified_date_time.clone();
    policy.apply(
        &patch,
        &WriteContext {
            now: stamp,
            actor: None,
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        },
    );
    policy.validate(strict)?;
    Ok(policy)
}

/// Validates an update body. `id` may be repeated if unchanged; the
/// timestamps are the server's and are ignored.
pub fn parse_policy_patch(id: &str, body: Value) -> Result<PolicyPatch, CopilotError> {
    let Value::Object(body) = body else {
        return Err(CopilotError::NotAnObject);
    };
    let mut rest = Map::new();
    for (key, value) in body {
        match key.as_str() {
            "id" if value.as_str() == Some(id) => {}
            "id" => return Err(CopilotError::ReadOnlyProperty("id".into())),
            "createdDateTime" | "lastModifiedDateTime" => {}
            _ => {
                rest.insert(key, value);
            }
        }
    }
    parse_fields(rest)
}

fn parse_fields(body: Map<String, Value>) -> Result<PolicyPatch, CopilotError> {
    let mut patch = PolicyPatch::default();
    for (key, value) in body {
        if key.starts_with('@') || key.contains("@odata.") {
            continue;
        }
        match key.as_str() {
            "displayName" => patch.display_name = Some(string(&key, value)?),
            "service" => {
                let s = string(&key, value)?;
                patch.service = Some(PolicyService::parse(&s).ok_or_else(|| {
                    invalid(format!(
                        "'{s}' is not a policy service; use 'cloudPolicyService' or 'intune'."
                    ))
                })?);
            }
            "scope" => {
                let s = string(&key, value)?;
                patch.scope = Some(PolicyScope::parse(&s).ok_or_else(|| {
                    invalid(format!(
                        "'{s}' is not a policy scope; use 'tenant', 'group' or 'user'."
                    ))
                })?);
            }
            "targetGroupIds" => {
                let ids = match value {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) if !s.is_empty() => Ok(s),
                            _ => Err(wrong(&key, "an array of non-empty strings")),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(wrong(&key, "an array of non-empty strings")),
                };
                patch.target_group_ids = Some(ids);
            }
            "priority" => {
                let n = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| wrong(&key, "a non-negative integer"))?;
                patch.priority = Some(n);
            }
            "settings" => {
                let Value::Object(map) = value else {
                    return Err(wrong(&key, "an object of setting ids to string values"));
                };
                let mut settings = BTreeMap::new();
                for (id, v) in map {
                    let v = match v {
                        Value::String(s) => Some(s),
                        Value::Null => None,
                        _ => return Err(wrong(&format!("settings/{id}"), "a string or null")),
                    };
                    settings.insert(id, v);
                }
                patch.settings = Some(settings);
            }
            _ => {
                return Err(CopilotError::UnknownProperty {
                    property: key,
                    type_name: POLICY_TYPE,
                });
            }
        }
    }
    Ok(patch)
}

fn wrong(property: &str, expected: &'static str) -> CopilotError {
    CopilotError::WrongType {
        property: property.to_owned(),
        expected,
    }
}

fn string(property: &str, value: Value) -> Result<String, CopilotError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(wrong(property, "a string")),
    }
}

fn parse_id(value: Value) -> Result<String, CopilotError> {
    match value {
        Value::String(s) if !s.is_empty() && s.chars().count() <= MAX_ID_CHARS => Ok(s),
        _ => Err(wrong("id", "a non-empty string of at most 1024 characters")),
    }
}

/// Accepts any RFC 3339 time and writes it as Graph does (UTC, 7 digits).
fn parse_time(property: &str, value: Value) -> Result<String, CopilotError> {
    let text = string(property, value)?;
    let t = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| wrong(property, "an RFC 3339 date and time"))?;
    Ok(crate::clock::entity_timestamp(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> WriteContext {
        WriteContext {
            now: "2026-01-01T00:00:00.0000000Z".into(),
            actor: None,
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        }
    }

    #[test]
    fn a_create_body_becomes_a_policy_with_defaults() {
        let p = parse_new_policy(
            json!({"id": "p1", "displayName": "Tenant", "service": "cloudPolicyService",
                   "scope": "tenant", "settings": {"microsoft.copilot.copilotchatpinning": "1"}}),
            false,
            &ctx(),
        )
        .unwrap();
        assert_eq!(p.id, "p1");
        assert_eq!(p.priority, 0);
        assert_eq!(p.created_date_time, "2026-01-01T00:00:00.0000000Z");
        assert_eq!(p.last_modified_date_time, p.created_date_time);
        assert_eq!(p.settings["microsoft.copilot.copilotchatpinning"], "1");
        let json = p.to_json();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "id",
                "displayName",
                "service",
                "scope",
                "targetGroupIds",
                "priority",
                "createdDateTime",
                "lastModifiedDateTime",
                "settings"
            ]
        );
        assert_eq!(Policy::from_json(&json.to_string()), Some(p));
    }

    #[test]
    fn given_timestamps_are_kept_and_normalised() {
        let p = parse_new_policy(
            json!({"displayName": "T", "service": "intune", "scope": "tenant",
                   "createdDateTime": "2025-03-01T10:00:00+01:00"}),
            false,
            &ctx(),
        )
        .unwrap();
        assert_eq!(p.created_date_time, "2025-03-01T09:00:00.0000000Z");
        assert_eq!(p.last_modified_date_time, "2025-03-01T09:00:00.0000000Z");
        assert!(!p.id.is_empty());
    }

    #[test]
    fn invalid_create_bodies_are_refused_with_a_reason() {
        let base = || {
            json!({"displayName": "T", "service": "cloudPolicyService", "scope": "tenant"})
                .as_object()
                .unwrap()
                .clone()
        };
        let with = |k: &str, v: Value| {
            let mut m = base();
            m.insert(k.into(), v);
            Value::Object(m)
        };
        let without = |k: &str| {
            let mut m = base();
            m.remove(k);
            Value::Object(m)
        };
        let table: Vec<(Value, &str)> = vec![
            (json!([]), "object"),
            (without("displayName"), "'displayName' is required"),
            (without("service"), "'service' is required"),
            (without("scope"), "'scope' is required"),
            (with("displayName", json!(" ")), "must not be empty"),
            (with("displayName", json!(1)), "must be a string"),
            (with("service", json!("CPS")), "not a policy service"),
            (with("scope", json!("device")), "not a policy scope"),
            (with("scope", json!("group")), "needs at least one id"),
            (with("targetGroupIds", json!(["g"])), "Only a group-level"),
            (
                with("targetGroupIds", json!([1])),
                "array of non-empty strings",
            ),
            (with("priority", json!(-1)), "non-negative integer"),
            (with("priority", json!(1.5)), "non-negative integer"),
            (with("id", json!("")), "non-empty string"),
            (with("createdDateTime", json!("yesterday")), "RFC 3339"),
            (
                with("color", json!("red")),
                "Could not find a property named 'color'",
            ),
            (with("settings", json!([])), "object of setting ids"),
            (
                with("settings", json!({"microsoft.copilot.pinning": "1"})),
                "not a supported Copilot setting",
            ),
            (
                with(
                    "settings",
                    json!({"microsoft.copilot.copilotchatpinning": 1}),
                ),
                "a string or null",
            ),
            (
                with(
                    "settings",
                    json!({"microsoft.copilot.blockaccesstoopenfiles": "1"}),
                ),
                "managed by Intune, not by the Cloud Policy service",
            ),
        ];
        for (body, expected) in table {
            let err = parse_new_policy(body.clone(), false, &ctx()).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{body}: {err} (wanted {expected})"
            );
        }
    }

    #[test]
    fn strict_mode_checks_policy_values_too() {
        let body = json!({"displayName": "T", "service": "cloudPolicyService", "scope": "tenant",
                          "settings": {"microsoft.copilot.copilotchatpinning": "yes"}});
        assert!(parse_new_policy(body.clone(), false, &ctx()).is_ok());
        assert!(matches!(
            parse_new_policy(body, true, &ctx()),
            Err(CopilotError::InvalidValue { .. })
        ));
    }

    #[test]
    fn a_patch_replaces_properties_and_merges_settings() {
        let mut p = parse_new_policy(
            json!({"id": "p", "displayName": "T", "service": "cloudPolicyService", "scope": "tenant",
                   "settings": {"microsoft.copilot.copilotchatpinning": "1",
                                "microsoft.copilot.imagegeneration": "0"}}),
            false,
            &ctx(),
        )
        .unwrap();
        let patch = parse_policy_patch(
            "p",
            json!({"id": "p", "priority": 3, "createdDateTime": "ignored",
                   "settings": {"microsoft.copilot.imagegeneration": null,
                                "microsoft.copilot.allowwebsearch": "2"}}),
        )
        .unwrap();
        let later = WriteContext {
            now: "2026-02-01T00:00:00.0000000Z".into(),
            actor: None,
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        };
        p.apply(&patch, &later);
        p.validate(false).unwrap();
        assert_eq!(p.priority, 3);
        assert_eq!(p.display_name, "T");
        assert_eq!(
            p.settings.keys().collect::<Vec<_>>(),
            [
                "microsoft.copilot.allowwebsearch",
                "microsoft.copilot.copilotchatpinning"
            ]
        );
        assert_eq!(p.created_date_time, "2026-01-01T00:00:00.0000000Z");
        assert_eq!(p.last_modified_date_time, "2026-02-01T00:00:00.0000000Z");
    }

    #[test]
    fn a_patch_cannot_change_the_id() {
        assert_eq!(
            parse_policy_patch("p", json!({"id": "q"})),
            Err(CopilotError::ReadOnlyProperty("id".into()))
        );
    }

    #[test]
    fn a_created_tenant_policy_is_tenant_level_for_its_service() {
        let p = Policy::new_tenant_level(PolicyService::CloudPolicyService, &ctx());
        assert_eq!(p.scope, PolicyScope::Tenant);
        assert_eq!(p.service, PolicyService::CloudPolicyService);
        assert_eq!(
            p.display_name,
            "Microsoft 365 Copilot settings (Cloud Policy service)"
        );
        p.validate(true).unwrap();
    }
}

//! Copilot admin settings: the catalog of supported policy settings, the
//! policies of the underlying policy services (Cloud Policy service, Intune),
//! the resolution of a setting to the policy that holds it, and the plain
//! per-tenant settings objects. Pure rules; no I/O.

pub mod catalog;
pub mod policy;
pub mod resolve;
pub mod tenant;

pub use catalog::{PolicyService, SETTINGS, SettingDefinition};
pub use policy::{Policy, PolicyPatch, PolicyScope, parse_new_policy, parse_policy_patch};
pub use resolve::{
    SettingChange, SettingView, SettingWrite, parse_setting_patch, resolve_read, resolve_write,
    tenant_candidates,
};
pub use tenant::TenantSetting;

/// The preview limit of group-level policies per tenant. Microsoft does not
/// publish the number; this default is Agentry's choice.
pub const DEFAULT_MAX_GROUP_POLICIES: usize = 20;

/// The configurable parts of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopilotRules {
    /// More group-level policies than this in a tenant fail every
    /// policySettings call with 502 `tooManyGroupPolicies`.
    pub max_group_policies: usize,
    /// Refuse setting values outside each setting's allowed set (400).
    pub strict_values: bool,
}

impl Default for CopilotRules {
    fn default() -> Self {
        Self {
            max_group_policies: DEFAULT_MAX_GROUP_POLICIES,
            strict_values: false,
        }
    }
}

/// Why a Copilot settings request was refused. The texts are the messages
/// clients see; the documented ones follow Microsoft's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopilotError {
    #[error(
        "The setting '{0}' is not supported. Only supported Copilot settings can be accessed through this endpoint."
    )]
    UnsupportedSetting(String),
    #[error(
        "The operation could not be completed because the number of group-level policies exceeds the supported limit."
    )]
    TooManyGroupPolicies { count: usize, limit: usize },
    #[error(
        "The setting '{0}' is scoped to a group-level policy, which is not supported by this endpoint. Only tenant-level policy settings are supported."
    )]
    GroupScopedSetting(String),
    #[error(
        "The policy '{0}' is a user-level policy, which is not supported by this endpoint. Only tenant-level policy settings are supported."
    )]
    UserScopedPolicy(String),
    #[error("The policy '{0}' does not exist.")]
    PolicyNotFound(String),
    #[error("A policy with id '{0}' already exists.")]
    PolicyAlreadyExists(String),
    #[error(
        "The setting '{setting_id}' is managed by {}, but the policy '{policy_id}' belongs to {}.",
        owner.label(),
        policy_service.label()
    )]
    ServiceMismatch {
        setting_id: &'static str,
        owner: PolicyService,
        policy_id: String,
        policy_service: PolicyService,
    },
    #[error(
        "The value '{value}' is not valid for the setting '{setting_id}'. Allowed values: {}.",
        allowed.join(", ")
    )]
    InvalidValue {
        setting_id: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    #[error("The request body must be a JSON object.")]
    NotAnObject,
    #[error("The property '{0}' is required.")]
    MissingProperty(&'static str),
    #[error("The property '{property}' must be {expected}.")]
    WrongType {
        property: String,
        expected: &'static str,
    },
    #[error("The property '{0}' is read-only and cannot be changed.")]
    ReadOnlyProperty(String),
    #[error("Could not find a property named '{property}' on type '{type_name}'.")]
    UnknownProperty {
        property: String,
        type_name: &'static str,
    },
    #[error("The '@odata.type' '{given}' does not match the resource type '{expected}'.")]
    TypeMismatch {
        given: String,
        expected: &'static str,
    },
    #[error("{0}")]
    InvalidPolicy(String),
}

//! Who may do what: one declarative table of the permissions (scopes for
//! delegated tokens, app roles for application tokens) and directory roles
//! each action needs, and the decision that reads a [`Principal`] against it.
//!
//! A requirement is a list of groups; every group must be met by holding any
//! one of its permissions (higher-privileged ones are listed beside the least
//! privileged). `*.ReadWrite.ManagedBy` application permissions meet a group
//! only for objects whose `managedBy` is the caller's app id: the grant says
//! so, and handlers restrict what they touch.

use super::{CallerKind, Principal};
use crate::domain::Entity;

/// What a request does, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ListInstances,
    GetInstance,
    CreateInstance,
    UpdateInstance,
    DeleteInstance,
    /// Extra, when a create or update carries a nested manifest.
    WriteNestedManifest,
    /// Extra, when a create or update binds an existing manifest.
    BindManifest,
    GetInstanceManifest,
    UpdateInstanceManifest,
    UnlinkInstanceManifest,
    ListInstanceCollections,
    ListManifests,
    GetManifest,
    CreateManifest,
    UpdateManifest,
    DeleteManifest,
    ListCollections,
    GetCollection,
    CreateCollection,
    UpdateCollection,
    DeleteCollection,
    ListMembers,
    AddMember,
    RemoveMember,
    GetRegistry,
    UpdateRegistry,
    ListPackages,
    GetPackage,
    /// PATCH, block, unblock and reassign of a catalog package.
    UpdatePackage,
    ListRegistrations,
    GetRegistration,
    CreateRegistration,
    UpdateRegistration,
    DeleteRegistration,
    GetPolicySetting,
    UpdatePolicySetting,
    GetLimitedMode,
    UpdateLimitedMode,
    GetEnhancedPersonalization,
    UpdateEnhancedPersonalization,
    /// List, count and get of the audit log.
    ReadAuditLog,
    /// The `/_agentry` control plane.
    Control,
}

/// The reserved collection a collection action targets, if any: they have
/// permissions of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    No,
    Global,
    Quarantined,
}

// Agent Registry permissions.
const IR: &str = "AgentInstance.Read.All";
const IW: &str = "AgentInstance.ReadWrite.All";
const IM: &str = "AgentInstance.ReadWrite.ManagedBy";
const MR: &str = "AgentCardManifest.Read.All";
const MW: &str = "AgentCardManifest.ReadWrite.All";
const MM: &str = "AgentCardManifest.ReadWrite.ManagedBy";
const CR: &str = "AgentCollection.Read.All";
const CW: &str = "AgentCollection.ReadWrite.All";
const CM: &str = "AgentCollection.ReadWrite.ManagedBy";
const GR: &str = "AgentCollection.Read.Global";
const GW: &str = "AgentCollection.ReadWrite.Global";
const QR: &str = "AgentCollection.Read.Quarantined";
const QW: &str = "AgentCollection.ReadWrite.Quarantined";
// Agent 365 registration permissions.
const RGR: &str = "AgentRegistration.Read.All";
const RGW: &str = "AgentRegistration.ReadWrite.All";
// Agent 365 package catalog permissions.
const PKR: &str = "CopilotPackages.Read.All";
const PKW: &str = "CopilotPackages.ReadWrite.All";
// Copilot settings permissions.
const PSR: &str = "CopilotPolicySettings.Read";
const PSW: &str = "CopilotPolicySettings.ReadWrite";
const LMR: &str = "CopilotSettings-LimitedMode.Read";
const LMW: &str = "CopilotSettings-LimitedMode.ReadWrite";
const PPR: &str = "PeopleSettings.Read.All";
const PPW: &str = "PeopleSettings.ReadWrite.All";
/// The audit log (`/auditLogs/directoryAudits`).
const AUDIT: &str = "AuditLog.Read.All";
/// The application role of the Agentry control plane.
pub const AGENTRY_ADMIN: &str = "Agentry.Admin";

/// Directory roles (template ids) and their names, for messages.
pub const AGENT_REGISTRY_ADMINISTRATOR: &str = "6b942400-691f-4bf0-9d12-d8a254a2baf5";
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
pub const AI_ADMINISTRATOR: &str = "d2562ede-74db-457e-a7b6-544e236ebb61";
pub const AI_READER: &str = "1fe13547-53f6-408d-ac04-7f8eed167b38";
pub const PEOPLE_ADMINISTRATOR: &str = "024906de-61e5-49c8-8572-40335f1e0e10";
pub const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
pub const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
pub const SECURITY_OPERATOR: &str = "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f";
pub const SECURITY_ADMINISTRATOR: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";

const ROLE_NAMES: &[(&str, &str)] = &[
    (AGENT_REGISTRY_ADMINISTRATOR, "Agent Registry Administrator"),
    (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    (GLOBAL_READER, "Global Reader"),
    (AI_ADMINISTRATOR, "AI Administrator"),
    (AI_READER, "AI Reader"),
    (PEOPLE_ADMINISTRATOR, "People Administrator"),
    (REPORTS_READER, "Reports Reader"),
    (SECURITY_READER, "Security Reader"),
    (SECURITY_OPERATOR, "Security Operator"),
    (SECURITY_ADMINISTRATOR, "Security Administrator"),
];

const REGISTRY_ROLES: &[&str] = &[AGENT_REGISTRY_ADMINISTRATOR, GLOBAL_ADMINISTRATOR];
/// Who may view the Agent 365 inventory: its administrators and readers.
const PACKAGE_READERS: &[&str] = &[
    AI_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    AI_READER,
    GLOBAL_READER,
];

/// Who may read the audit log, as Graph has it for directory audits.
const AUDIT_READERS: &[&str] = &[
    REPORTS_READER,
    SECURITY_READER,
    SECURITY_OPERATOR,
    SECURITY_ADMINISTRATOR,
    GLOBAL_READER,
    GLOBAL_ADMINISTRATOR,
];

type Groups = &'static [&'static [&'static str]];

/// One row of the table.
#[derive(Debug)]
pub struct Rule {
    pub action: Action,
    pub reserved: Reserved,
    /// `None`: delegated tokens cannot call this.
    pub delegated: Option<Groups>,
    /// `None`: application tokens cannot call this.
    pub application: Option<Groups>,
    /// Directory roles a delegated caller needs one of (empty: none).
    pub roles: &'static [&'static str],
}

const fn rule(
    action: Action,
    delegated: Option<Groups>,
    application: Option<Groups>,
    roles: &'static [&'static str],
) -> Rule {
    Rule {
        action,
        reserved: Reserved::No,
        delegated,
        application,
        roles,
    }
}

const fn reserved(
    action: Action,
    reserved: Reserved,
    delegated: Option<Groups>,
    application: Option<Groups>,
) -> Rule {
    Rule {
        action,
        reserved,
        delegated,
        application,
        roles: REGISTRY_ROLES,
    }
}

use Action as A;

/// The table: Graph's documented permissions per method (least privileged
/// first, then the higher ones), plus Agentry's own endpoints.
pub static RULES: &[Rule] = &[
    rule(
        A::ListInstances,
        Some(&[&[IR, IW]]),
        Some(&[&[IR, IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::GetInstance,
        Some(&[&[IR, IW]]),
        Some(&[&[IR, IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::CreateInstance,
        Some(&[&[IW]]),
        Some(&[&[IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateInstance,
        Some(&[&[IW]]),
        Some(&[&[IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::DeleteInstance,
        Some(&[&[IW]]),
        Some(&[&[IM, IW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::WriteNestedManifest,
        Some(&[&[MW]]),
        Some(&[&[MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::BindManifest,
        Some(&[&[MR, MW]]),
        Some(&[&[MR, MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::GetInstanceManifest,
        Some(&[&[IR, IW], &[MR, MW]]),
        Some(&[&[IR, IW, IM], &[MR, MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateInstanceManifest,
        Some(&[&[IR, IW], &[MW]]),
        Some(&[&[IR, IW, IM], &[MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UnlinkInstanceManifest,
        Some(&[&[IW]]),
        Some(&[&[IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::ListInstanceCollections,
        Some(&[&[IR, IW]]),
        Some(&[&[IR, IW, IM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::ListManifests,
        Some(&[&[MR, MW]]),
        Some(&[&[MR, MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::GetManifest,
        Some(&[&[MR, MW]]),
        Some(&[&[MR, MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::CreateManifest,
        Some(&[&[MW]]),
        Some(&[&[MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateManifest,
        Some(&[&[MW]]),
        Some(&[&[MW, MM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::DeleteManifest,
        Some(&[&[MW]]),
        Some(&[&[MW, MM]]),
        REGISTRY_ROLES,
    ),
    // The list shows the reserved collections to holders of their own read permissions.
    rule(
        A::ListCollections,
        Some(&[&[CR, CW, GR, GW, QR, QW]]),
        Some(&[&[CR, CW, CM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::GetCollection,
        Some(&[&[CR, CW]]),
        Some(&[&[CR, CW, CM]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::GetCollection,
        Reserved::Global,
        Some(&[&[CR, CW, GR, GW]]),
        Some(&[&[CR, CW]]),
    ),
    reserved(
        A::GetCollection,
        Reserved::Quarantined,
        Some(&[&[CR, CW, QR, QW]]),
        Some(&[&[CR, CW]]),
    ),
    rule(
        A::CreateCollection,
        Some(&[&[CW]]),
        Some(&[&[CM, CW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateCollection,
        Some(&[&[CW]]),
        Some(&[&[CM, CW]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::UpdateCollection,
        Reserved::Global,
        Some(&[&[CW, GW]]),
        Some(&[&[CW]]),
    ),
    reserved(
        A::UpdateCollection,
        Reserved::Quarantined,
        Some(&[&[CW, QW]]),
        Some(&[&[CW]]),
    ),
    rule(
        A::DeleteCollection,
        Some(&[&[CW]]),
        Some(&[&[CM, CW]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::DeleteCollection,
        Reserved::Global,
        Some(&[&[CW, GW]]),
        Some(&[&[CW]]),
    ),
    reserved(
        A::DeleteCollection,
        Reserved::Quarantined,
        Some(&[&[CW, QW]]),
        Some(&[&[CW]]),
    ),
    rule(
        A::ListMembers,
        Some(&[&[CR, CW]]),
        Some(&[&[CR, CW, CM]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::ListMembers,
        Reserved::Global,
        Some(&[&[CR, CW, GR, GW]]),
        Some(&[&[CR, CW]]),
    ),
    reserved(
        A::ListMembers,
        Reserved::Quarantined,
        Some(&[&[CR, CW, QR, QW]]),
        Some(&[&[CR, CW]]),
    ),
    rule(
        A::AddMember,
        Some(&[&[CW], &[IR, IW]]),
        Some(&[&[CM, CW], &[IR, IW, IM]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::AddMember,
        Reserved::Global,
        Some(&[&[GW], &[IR, IW]]),
        Some(&[&[CW], &[IR, IW, IM]]),
    ),
    reserved(
        A::AddMember,
        Reserved::Quarantined,
        Some(&[&[QW], &[IR, IW]]),
        Some(&[&[CW], &[IR, IW, IM]]),
    ),
    rule(
        A::RemoveMember,
        Some(&[&[CW]]),
        Some(&[&[CM, CW]]),
        REGISTRY_ROLES,
    ),
    reserved(
        A::RemoveMember,
        Reserved::Global,
        Some(&[&[GW]]),
        Some(&[&[CW]]),
    ),
    reserved(
        A::RemoveMember,
        Reserved::Quarantined,
        Some(&[&[QW]]),
        Some(&[&[CW]]),
    ),
    rule(
        A::GetRegistry,
        Some(&[&[IR, IW, MR, MW, CR, CW, GR, GW, QR, QW]]),
        Some(&[&[IR, IW, IM, MR, MW, MM, CR, CW, CM]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateRegistry,
        Some(&[&[IW, MW, CW]]),
        Some(&[&[IW, MW, CW]]),
        REGISTRY_ROLES,
    ),
    // Agent 365 registrations: delegated (with the role Microsoft's tooling
    // points at) and application; no `.ManagedBy` variant (an application
    // may name only itself in `managedByAppId`).
    rule(
        A::ListRegistrations,
        Some(&[&[RGR, RGW]]),
        Some(&[&[RGR, RGW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::GetRegistration,
        Some(&[&[RGR, RGW]]),
        Some(&[&[RGR, RGW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::CreateRegistration,
        Some(&[&[RGW]]),
        Some(&[&[RGW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::UpdateRegistration,
        Some(&[&[RGW]]),
        Some(&[&[RGW]]),
        REGISTRY_ROLES,
    ),
    rule(
        A::DeleteRegistration,
        Some(&[&[RGW]]),
        Some(&[&[RGW]]),
        REGISTRY_ROLES,
    ),
    // The package catalog: reads for delegated and application callers;
    // writes delegated only (since 2026-06-30), by AI or Global Administrators.
    rule(
        A::ListPackages,
        Some(&[&[PKR, PKW]]),
        Some(&[&[PKR, PKW]]),
        PACKAGE_READERS,
    ),
    rule(
        A::GetPackage,
        Some(&[&[PKR, PKW]]),
        Some(&[&[PKR, PKW]]),
        PACKAGE_READERS,
    ),
    rule(
        A::UpdatePackage,
        Some(&[&[PKW]]),
        None,
        &[AI_ADMINISTRATOR, GLOBAL_ADMINISTRATOR],
    ),
    // The audit log: delegated and application, as for Graph's directory audits.
    rule(
        A::ReadAuditLog,
        Some(&[&[AUDIT]]),
        Some(&[&[AUDIT]]),
        AUDIT_READERS,
    ),
    // Copilot admin settings: delegated only, with the roles the reference recommends.
    rule(
        A::GetPolicySetting,
        Some(&[&[PSR, PSW]]),
        None,
        &[
            GLOBAL_ADMINISTRATOR,
            AI_ADMINISTRATOR,
            GLOBAL_READER,
            AI_READER,
        ],
    ),
    rule(
        A::UpdatePolicySetting,
        Some(&[&[PSW]]),
        None,
        &[GLOBAL_ADMINISTRATOR, AI_ADMINISTRATOR],
    ),
    rule(
        A::GetLimitedMode,
        Some(&[&[LMR, LMW]]),
        None,
        &[
            GLOBAL_READER,
            GLOBAL_ADMINISTRATOR,
            AI_ADMINISTRATOR,
            AI_READER,
        ],
    ),
    rule(
        A::UpdateLimitedMode,
        Some(&[&[LMW]]),
        None,
        &[GLOBAL_ADMINISTRATOR],
    ),
    rule(
        A::GetEnhancedPersonalization,
        Some(&[&[PPR, PPW]]),
        Some(&[&[PPR, PPW]]),
        &[],
    ),
    rule(
        A::UpdateEnhancedPersonalization,
        Some(&[&[PPW]]),
        Some(&[&[PPW]]),
        &[PEOPLE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR],
    ),
    // The control plane: an application with the `Agentry.Admin` role, or a
    // Global Administrator through a client granted the delegated scope of
    // the same name (the console's developer views).
    rule(
        A::Control,
        Some(&[&[AGENTRY_ADMIN]]),
        Some(&[&[AGENTRY_ADMIN]]),
        &[GLOBAL_ADMINISTRATOR],
    ),
];

/// Every delegated permission the table names (for default tokens).
pub fn all_delegated_scopes() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for perm in RULES
        .iter()
        .filter_map(|r| r.delegated)
        .flatten()
        .flat_map(|g| g.iter())
    {
        if !out.contains(perm) {
            out.push(perm);
        }
    }
    out
}

/// Every application permission the table names, except the `*.ManagedBy`
/// ones and the control-plane role (for default application tokens).
pub fn all_application_roles() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for perm in RULES
        .iter()
        .filter_map(|r| r.application)
        .flatten()
        .flat_map(|g| g.iter())
    {
        if !out.contains(perm) && managed_kind(perm).is_none() && *perm != AGENTRY_ADMIN {
            out.push(perm);
        }
    }
    out
}

/// The Agent Registry's registry-scoped roles and the actions each grants.
/// Their template ids are not published in the sources Agentry follows, so
/// an operator maps names to ids (`[scoped_roles]` in the configuration).
pub static SCOPED_ROLES: &[(&str, &[Action])] = &[
    (
        "Agent Card Manifest Administrator",
        &[
            A::ListManifests,
            A::GetManifest,
            A::CreateManifest,
            A::UpdateManifest,
            A::WriteNestedManifest,
            A::BindManifest,
            A::GetInstanceManifest,
            A::UpdateInstanceManifest,
        ],
    ),
    (
        "Agent Card Manifest Reader",
        &[
            A::ListManifests,
            A::GetManifest,
            A::BindManifest,
            A::GetInstanceManifest,
        ],
    ),
    (
        "Agent Card Manifest Creator",
        &[A::CreateManifest, A::WriteNestedManifest],
    ),
    (
        "Agent Instance Administrator",
        &[
            A::ListInstances,
            A::GetInstance,
            A::CreateInstance,
            A::UpdateInstance,
            A::DeleteInstance,
            A::UnlinkInstanceManifest,
            A::ListInstanceCollections,
        ],
    ),
    (
        "Agent Instance Reader",
        &[A::ListInstances, A::GetInstance, A::ListInstanceCollections],
    ),
    ("Agent Instance Creator", &[A::CreateInstance]),
    (
        "Agent Collection Administrator",
        &[
            A::ListCollections,
            A::GetCollection,
            A::CreateCollection,
            A::UpdateCollection,
            A::DeleteCollection,
            A::ListMembers,
            A::AddMember,
            A::RemoveMember,
        ],
    ),
    (
        "Agent Collection Reader",
        &[A::ListCollections, A::GetCollection, A::ListMembers],
    ),
    ("Agent Collection Creator", &[A::CreateCollection]),
];

/// Whether one of `p`'s registry-scoped roles grants `action` (on `reserved`:
/// the collection roles do not reach Global and Quarantined).
fn scoped_role_grants(p: &Principal, action: Action, reserved: Reserved) -> bool {
    p.scoped_roles.iter().any(|name| {
        SCOPED_ROLES.iter().any(|(role, actions)| {
            role == name
                && actions.contains(&action)
                && !(reserved != Reserved::No && role.starts_with("Agent Collection"))
        })
    })
}

/// The role name for a configured template id, if it is a scoped role.
pub fn scoped_role(name: &str) -> Option<&'static str> {
    SCOPED_ROLES
        .iter()
        .map(|(n, _)| *n)
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// The row that governs `action` on `reserved` (the plain row when the
/// reserved collection has no row of its own).
pub fn rule_for(action: Action, reserved: Reserved) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.action == action && r.reserved == reserved)
        .or_else(|| {
            RULES
                .iter()
                .find(|r| r.action == action && r.reserved == Reserved::No)
        })
        .expect("every action has a row")
}

/// Why a caller was refused; the message names what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("This operation does not support delegated (user) tokens; use an application token.")]
    DelegatedNotSupported,
    #[error(
        "This operation does not support application permissions; call it with a delegated (user) token."
    )]
    ApplicationNotSupported,
    #[error("The token's '{claim}' claim has none of the permissions this operation needs: {}.", .any_of.join(", "))]
    MissingPermission {
        claim: &'static str,
        any_of: Vec<&'static str>,
    },
    #[error("The signed-in user has none of the directory roles this operation needs in 'wids': {}.", .any_of.join(", "))]
    MissingRole { any_of: Vec<String> },
    #[error(
        "The application may only act on objects whose managedBy is its own app id, and this one is not."
    )]
    NotManagedByCaller,
}

/// What a caller was granted: everything, or for some kinds only the objects
/// they manage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The caller's app id when `*.ManagedBy` was what let them in.
    pub managed_by: Option<String>,
    instances: bool,
    manifests: bool,
    collections: bool,
}

impl Grant {
    /// The app id the objects of `kind` must name in `managedBy`, if restricted.
    pub fn restricted(&self, kind: Entity) -> Option<&str> {
        let on = match kind {
            Entity::Instance => self.instances,
            Entity::Manifest => self.manifests,
            Entity::Collection => self.collections,
            // Registrations, packages and audit records have no `*.ManagedBy` permission.
            Entity::Registration | Entity::Package | Entity::Audit => false,
        };
        if on { self.managed_by.as_deref() } else { None }
    }

    /// Refuses an object of `kind` whose `managedBy` is not the caller's (when restricted).
    pub fn check_object(&self, kind: Entity, managed_by: Option<&str>) -> Result<(), Denied> {
        match self.restricted(kind) {
            Some(app) if managed_by != Some(app) => Err(Denied::NotManagedByCaller),
            _ => Ok(()),
        }
    }

    /// The objects a write under this grant may touch (checked by the store
    /// inside the write).
    pub fn scope(&self) -> crate::domain::Scope {
        match &self.managed_by {
            Some(app) => crate::domain::Scope::managed_by(
                app.clone(),
                Entity::ALL
                    .into_iter()
                    .filter(|kind| self.restricted(*kind).is_some())
                    .collect(),
            ),
            None => crate::domain::Scope::default(),
        }
    }

    /// Merges another grant (for a request that needs several actions).
    pub fn and(mut self, other: Grant) -> Grant {
        self.instances |= other.instances;
        self.manifests |= other.manifests;
        self.collections |= other.collections;
        self.managed_by = self.managed_by.or(other.managed_by);
        self
    }
}

fn managed_kind(permission: &str) -> Option<Entity> {
    if !permission.ends_with(".ManagedBy") {
        return None;
    }
    match permission.split('.').next() {
        Some("AgentInstance") => Some(Entity::Instance),
        Some("AgentCardManifest") => Some(Entity::Manifest),
        Some("AgentCollection") => Some(Entity::Collection),
        _ => None,
    }
}

/// The name of a directory role Agentry knows, by template id.
pub fn role_name(id: &str) -> Option<&'static str> {
    ROLE_NAMES
        .iter()
        .find(|(rid, _)| rid.eq_ignore_ascii_case(id))
        .map(|(_, name)| *name)
}

/// The template id of a directory role given by its name (any case) or by
/// its template id, among the roles Agentry knows ([`role_name`]); a GUID
/// it does not know is taken as the template id of another role (a
/// registry-scoped role configured with `--scoped-role`, say), lower-cased.
pub fn role_template_id(name_or_id: &str) -> Option<String> {
    let given = name_or_id.trim();
    if let Some((id, _)) = ROLE_NAMES
        .iter()
        .find(|(id, name)| id.eq_ignore_ascii_case(given) || name.eq_ignore_ascii_case(given))
    {
        return Some((*id).to_owned());
    }
    uuid::Uuid::parse_str(given)
        .ok()
        .filter(|_| given.len() == 36)
        .map(|u| u.to_string())
}

/// The names of the directory roles Agentry knows, for messages.
pub fn role_names() -> Vec<&'static str> {
    ROLE_NAMES.iter().map(|(_, name)| *name).collect()
}

fn role_label(id: &str) -> String {
    match ROLE_NAMES.iter().find(|(rid, _)| *rid == id) {
        Some((_, name)) => format!("{name} ({id})"),
        None => id.to_owned(),
    }
}

/// Decides whether `p` may do `action`.
pub fn authorize(p: &Principal, action: Action) -> Result<Grant, Denied> {
    authorize_on(p, action, Reserved::No)
}

/// Decides whether `p` may do `action` on a collection that may be reserved.
pub fn authorize_on(p: &Principal, action: Action, reserved: Reserved) -> Result<Grant, Denied> {
    let rule = rule_for(action, reserved);
    match p.kind {
        CallerKind::Delegated => {
            let groups = rule.delegated.ok_or(Denied::DelegatedNotSupported)?;
            for group in groups {
                if !group.iter().any(|perm| p.scopes.iter().any(|s| s == perm)) {
                    return Err(Denied::MissingPermission {
                        claim: "scp",
                        any_of: group.to_vec(),
                    });
                }
            }
            let directory_role = rule
                .roles
                .iter()
                .any(|r| p.wids.iter().any(|w| w.eq_ignore_ascii_case(r)));
            let scoped = rule.roles == REGISTRY_ROLES && scoped_role_grants(p, action, reserved);
            if !rule.roles.is_empty() && !directory_role && !scoped {
                return Err(Denied::MissingRole {
                    any_of: rule.roles.iter().map(|r| role_label(r)).collect(),
                });
            }
            Ok(Grant::default())
        }
        CallerKind::Application => {
            let groups = rule.application.ok_or(Denied::ApplicationNotSupported)?;
            let mut grant = Grant {
                managed_by: p.app_id.clone(),
                ..Grant::default()
            };
            for group in groups {
                let held = |perm: &&str| p.roles.iter().any(|r| r == perm);
                if group
                    .iter()
                    .filter(|perm| managed_kind(perm).is_none())
                    .any(held)
                {
                    continue;
                }
                match group
                    .iter()
                    .find(|perm| managed_kind(perm).is_some() && held(perm))
                {
                    Some(perm) if p.app_id.is_some() => match managed_kind(perm) {
                        Some(Entity::Instance) => grant.instances = true,
                        Some(Entity::Manifest) => grant.manifests = true,
                        Some(Entity::Collection) => grant.collections = true,
                        Some(Entity::Registration | Entity::Package | Entity::Audit) | None => {}
                    },
                    _ => {
                        return Err(Denied::MissingPermission {
                            claim: "roles",
                            any_of: group.to_vec(),
                        });
                    }
                }
            }
            if !(grant.instances || grant.manifests || grant.collections) {
                grant.managed_by = None;
            }
            Ok(grant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_roles_are_named_by_name_in_any_case_or_by_template_id() {
        assert_eq!(
            role_template_id("Global Administrator").as_deref(),
            Some(GLOBAL_ADMINISTRATOR)
        );
        assert_eq!(
            role_template_id("ai administrator").as_deref(),
            Some(AI_ADMINISTRATOR)
        );
        assert_eq!(
            role_template_id(&AI_READER.to_uppercase()).as_deref(),
            Some(AI_READER)
        );
        assert_eq!(
            role_template_id("0A1B2C3D-0000-4000-8000-000000000001").as_deref(),
            Some("0a1b2c3d-0000-4000-8000-000000000001"),
            "a role configured elsewhere, by template id"
        );
        assert_eq!(role_template_id("Tea Maker"), None);
        assert_eq!(role_template_id("0a1b2c3d00004000800000000000001"), None);
    }

    fn delegated(scopes: &[&str], wids: &[&str]) -> Principal {
        Principal {
            tenant_id: "t".into(),
            kind: CallerKind::Delegated,
            object_id: Some("user".into()),
            app_id: Some("client".into()),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: vec![],
            wids: wids.iter().map(|s| (*s).to_owned()).collect(),
            scoped_roles: vec![],
            expires_at: 0,
            user_principal_name: None,
        }
    }

    fn application(roles: &[&str]) -> Principal {
        Principal {
            tenant_id: "t".into(),
            kind: CallerKind::Application,
            object_id: Some("sp".into()),
            app_id: Some("app-1".into()),
            scopes: vec![],
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            wids: vec![],
            scoped_roles: vec![],
            expires_at: 0,
            user_principal_name: None,
        }
    }

    /// Every row: each listed permission alone (with a needed role) meets its
    /// group; without the group's permissions, or without a role, the caller
    /// is refused and told what is missing.
    #[test]
    fn every_row_of_the_table_grants_and_refuses_as_written() {
        for rule in RULES {
            let ctx = format!("{:?} on {:?}", rule.action, rule.reserved);
            let role: Vec<&str> = rule.roles.first().into_iter().copied().collect();
            match rule.delegated {
                None => assert_eq!(
                    authorize_on(&delegated(&[], &role), rule.action, rule.reserved),
                    Err(Denied::DelegatedNotSupported),
                    "{ctx}"
                ),
                Some(groups) => {
                    for (g, group) in groups.iter().enumerate() {
                        for perm in *group {
                            // One permission from this group, the first of every other.
                            let scopes: Vec<&str> = groups
                                .iter()
                                .enumerate()
                                .map(|(k, other)| if k == g { *perm } else { other[0] })
                                .collect();
                            assert_eq!(
                                authorize_on(
                                    &delegated(&scopes, &role),
                                    rule.action,
                                    rule.reserved
                                ),
                                Ok(Grant::default()),
                                "{ctx}: {perm}"
                            );
                        }
                        let without: Vec<&str> = groups
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k != g)
                            .map(|(_, other)| other[0])
                            .collect();
                        match authorize_on(&delegated(&without, &role), rule.action, rule.reserved)
                        {
                            Err(Denied::MissingPermission {
                                claim: "scp",
                                any_of,
                            }) => assert_eq!(any_of, group.to_vec(), "{ctx}"),
                            other => panic!("{ctx}: group {g} missing gave {other:?}"),
                        }
                    }
                    if !rule.roles.is_empty() {
                        let all: Vec<&str> = groups.iter().map(|g| g[0]).collect();
                        let refused =
                            authorize_on(&delegated(&all, &[]), rule.action, rule.reserved);
                        assert!(
                            matches!(refused, Err(Denied::MissingRole { .. })),
                            "{ctx}: {refused:?}"
                        );
                        for r in rule.roles {
                            assert!(
                                authorize_on(&delegated(&all, &[r]), rule.action, rule.reserved)
                                    .is_ok(),
                                "{ctx}: role {r}"
                            );
                        }
                    }
                }
            }
            match rule.application {
                None => assert_eq!(
                    authorize_on(&application(&[]), rule.action, rule.reserved),
                    Err(Denied::ApplicationNotSupported),
                    "{ctx}"
                ),
                Some(groups) => {
                    for (g, group) in groups.iter().enumerate() {
                        for perm in *group {
                            let roles: Vec<&str> = groups
                                .iter()
                                .enumerate()
                                .map(|(k, other)| if k == g { *perm } else { other[0] })
                                .collect();
                            let grant =
                                authorize_on(&application(&roles), rule.action, rule.reserved)
                                    .unwrap_or_else(|e| panic!("{ctx}: {perm}: {e}"));
                            if let Some(kind) = managed_kind(perm) {
                                assert_eq!(
                                    grant.restricted(kind),
                                    Some("app-1"),
                                    "{ctx}: {perm} restricts"
                                );
                            }
                        }
                        let without: Vec<&str> = groups
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k != g)
                            .map(|(_, other)| other[0])
                            .collect();
                        assert!(
                            matches!(
                                authorize_on(&application(&without), rule.action, rule.reserved),
                                Err(Denied::MissingPermission { claim: "roles", .. })
                            ),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_action_has_a_plain_row() {
        let all = [
            A::ListInstances,
            A::GetInstance,
            A::CreateInstance,
            A::UpdateInstance,
            A::DeleteInstance,
            A::WriteNestedManifest,
            A::BindManifest,
            A::GetInstanceManifest,
            A::UpdateInstanceManifest,
            A::UnlinkInstanceManifest,
            A::ListInstanceCollections,
            A::ListManifests,
            A::GetManifest,
            A::CreateManifest,
            A::UpdateManifest,
            A::DeleteManifest,
            A::ListCollections,
            A::GetCollection,
            A::CreateCollection,
            A::UpdateCollection,
            A::DeleteCollection,
            A::ListMembers,
            A::AddMember,
            A::RemoveMember,
            A::GetRegistry,
            A::UpdateRegistry,
            A::GetPolicySetting,
            A::UpdatePolicySetting,
            A::GetLimitedMode,
            A::UpdateLimitedMode,
            A::GetEnhancedPersonalization,
            A::UpdateEnhancedPersonalization,
            A::Control,
        ];
        for a in all {
            assert!(
                RULES
                    .iter()
                    .any(|r| r.action == a && r.reserved == Reserved::No),
                "{a:?}"
            );
        }
    }

    #[test]
    fn a_full_permission_beats_managed_by_and_managed_by_restricts() {
        let both = authorize_on(&application(&[IM, IW]), A::UpdateInstance, Reserved::No).unwrap();
        assert_eq!(both.restricted(Entity::Instance), None);
        let managed = authorize_on(&application(&[IM]), A::UpdateInstance, Reserved::No).unwrap();
        assert_eq!(managed.restricted(Entity::Instance), Some("app-1"));
        assert_eq!(
            managed.check_object(Entity::Instance, Some("app-1")),
            Ok(())
        );
        assert_eq!(
            managed.check_object(Entity::Instance, Some("app-2")),
            Err(Denied::NotManagedByCaller)
        );
        assert_eq!(
            managed.check_object(Entity::Instance, None),
            Err(Denied::NotManagedByCaller)
        );
        assert_eq!(
            managed.check_object(Entity::Manifest, None),
            Ok(()),
            "other kinds are not restricted"
        );
    }

    #[test]
    fn the_reserved_collections_need_their_own_permissions_to_change_members() {
        let plain = delegated(&[CW, IR], &[AGENT_REGISTRY_ADMINISTRATOR]);
        assert!(authorize_on(&plain, A::AddMember, Reserved::No).is_ok());
        assert!(authorize_on(&plain, A::AddMember, Reserved::Global).is_err());
        let global = delegated(&[GW, IR], &[AGENT_REGISTRY_ADMINISTRATOR]);
        assert!(authorize_on(&global, A::AddMember, Reserved::Global).is_ok());
        assert!(authorize_on(&global, A::AddMember, Reserved::Quarantined).is_err());
        assert!(
            authorize_on(
                &delegated(&[GR], &[GLOBAL_ADMINISTRATOR]),
                A::ListMembers,
                Reserved::Global
            )
            .is_ok()
        );
    }

    #[test]
    fn registry_scoped_roles_grant_their_actions_only() {
        let mut reader = delegated(&[IR, IW, CR], &[]);
        reader.scoped_roles = vec!["Agent Instance Reader"];
        assert!(authorize_on(&reader, A::GetInstance, Reserved::No).is_ok());
        assert!(authorize_on(&reader, A::ListInstanceCollections, Reserved::No).is_ok());
        assert!(matches!(
            authorize_on(&reader, A::UpdateInstance, Reserved::No),
            Err(Denied::MissingRole { .. })
        ));
        assert!(matches!(
            authorize_on(&reader, A::ListCollections, Reserved::No),
            Err(Denied::MissingRole { .. })
        ));
        let mut collections = delegated(&[CR, CW, GR], &[]);
        collections.scoped_roles = vec!["Agent Collection Administrator"];
        assert!(authorize_on(&collections, A::UpdateCollection, Reserved::No).is_ok());
        assert!(
            authorize_on(&collections, A::GetCollection, Reserved::Global).is_err(),
            "not for the reserved collections"
        );
        assert_eq!(
            scoped_role("agent instance reader"),
            Some("Agent Instance Reader")
        );
        assert_eq!(scoped_role("Teams Administrator"), None);
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let e = authorize_on(
            &delegated(&["User.Read"], &[AGENT_REGISTRY_ADMINISTRATOR]),
            A::CreateInstance,
            Reserved::No,
        )
        .unwrap_err();
        assert!(e.to_string().contains("AgentInstance.ReadWrite.All"), "{e}");
        let e = authorize_on(&delegated(&[IW], &[]), A::CreateInstance, Reserved::No).unwrap_err();
        assert!(
            e.to_string()
                .contains("Agent Registry Administrator (6b942400-691f-4bf0-9d12-d8a254a2baf5)"),
            "{e}"
        );
        let e =
            authorize_on(&application(&[PSW]), A::UpdatePolicySetting, Reserved::No).unwrap_err();
        assert_eq!(e, Denied::ApplicationNotSupported);
    }
}

//! The Agent Registry's resources and the rules of each write: what a body may
//! hold, what the server fills in, how a partial update merges, which
//! collections are reserved. The Copilot admin settings model lives in
//! [`copilot`]. Pure functions over JSON documents; no I/O.

pub mod a2a;
pub mod apps;
pub mod audit;
pub mod copilot;
pub mod csdl;
pub mod jcs;
pub mod migration;
pub mod packages;
pub mod schema;
pub mod subscriptions;
pub mod users;
mod write;

pub use write::{
    EntityWrite, ManifestChange, Scope, WriteContext, apply_patch, ensure_required, new_document,
    parse_entity_reference, parse_write, unquote_key,
};

/// The Agent Registry's kinds of entity: one enum for the store's tables,
/// the permission table's `*.ManagedBy` scopes and the errors that name a
/// kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Instance,
    Manifest,
    Collection,
    /// `/copilot/agentRegistrations`, the Agent 365 successor of instances.
    Registration,
    /// `/copilot/admin/catalog/packages`, the Agent 365 package catalog.
    Package,
    /// `/auditLogs/directoryAudits`: a record of a write, made by the store
    /// in the write's transaction ([`audit`]).
    Audit,
}

impl Entity {
    pub const ALL: [Entity; 6] = [
        Entity::Instance,
        Entity::Manifest,
        Entity::Collection,
        Entity::Registration,
        Entity::Package,
        Entity::Audit,
    ];

    /// This kind's position in [`Entity::ALL`], for tables indexed by kind.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The entity type: properties, navigations, entity set.
    pub fn ty(self) -> &'static schema::EntityType {
        match self {
            Entity::Instance => &schema::AGENT_INSTANCE,
            Entity::Manifest => &schema::AGENT_CARD_MANIFEST,
            Entity::Collection => &schema::AGENT_COLLECTION,
            Entity::Registration => &schema::AGENT_REGISTRATION,
            Entity::Package => &schema::COPILOT_PACKAGE,
            Entity::Audit => &schema::DIRECTORY_AUDIT,
        }
    }

    /// The property naming the application that manages an object.
    pub fn managed_by_property(self) -> &'static str {
        match self {
            Entity::Registration => "managedByAppId",
            _ => "managedBy",
        }
    }

    /// The kind whose entity set is `set` (`agentInstances`, …).
    pub fn of_set(set: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.ty().entity_set == set)
    }
}

/// Why the domain refused a write. Every variant is the client's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A write under a `*.ManagedBy` permission would hand an object to
    /// another application (see [`Scope::claim`]).
    #[error("the object's managedBy may only name the calling application")]
    NotManagedByCaller,
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("property '{property}' does not exist on type '{type_name}'")]
    UnknownProperty {
        property: String,
        type_name: &'static str,
    },
    #[error("property '{property}' must be {expected}")]
    WrongType {
        property: String,
        expected: &'static str,
    },
    #[error("'{value}' is not a member of '{type_name}' (property '{property}')")]
    NotAMember {
        property: String,
        value: String,
        type_name: &'static str,
    },
    #[error("property '{property}' is required")]
    MissingRequired { property: &'static str },
    #[error("property '{property}' cannot be null")]
    NullNotAllowed { property: String },
    #[error("'@odata.type' is '{given}' but the resource is '{expected}'")]
    TypeMismatch {
        given: String,
        expected: &'static str,
    },
    #[error("the id must be a non-empty string of at most 1024 characters")]
    InvalidId,
    #[error("'{url}' is not a URL of an {expected} entity")]
    InvalidReference { url: String, expected: &'static str },
    #[error("navigation property '{property}' cannot be written in this request")]
    NavigationNotWritable { property: String },
    #[error("a request cannot both nest agentCardManifest and bind it with @odata.bind")]
    BindAndNested,
    #[error("property '{property}' cannot be changed; only {allowed} can")]
    NotUpdatable {
        property: String,
        allowed: &'static str,
    },
    #[error("an agent registration needs 'ownerIds' (at least one) or 'managedByAppId'")]
    RegistrationWithoutOwner,
    #[error("You do not have permission to create an agent registration managed by another AppId.")]
    ManagedByAnotherApp,
    #[error("the name '{0}' is reserved for a built-in collection")]
    ReservedCollectionName(String),
    #[error("the built-in collection '{0}' cannot be changed or deleted")]
    ReservedCollectionImmutable(&'static str),
    /// A trusted key set that is not one (the control plane's A2A settings).
    #[error("'trustedKeys' is not a usable trust store: {0}")]
    InvalidTrustStore(String),
    /// Checks were asked of a tenant that does not watch its agents.
    #[error("the tenant does not watch its agents: set watch.enabled in its A2A settings first")]
    NotWatching,
    /// A Copilot settings rule refused the request.
    #[error(transparent)]
    Copilot(#[from] copilot::CopilotError),
    /// The tenant requires valid A2A cards and this one is not (every problem listed).
    #[error("the agent card is not a valid A2A {version} card ({} problem(s))", problems.len())]
    InvalidAgentCard {
        version: &'static str,
        problems: Vec<a2a::Problem>,
    },
    /// The tenant requires verified card signatures and this card's do not
    /// verify (the outcome, in words).
    #[error("the agent card's signature is not accepted: {0}")]
    UntrustedAgentCard(String),
}

/// Refuses a registration document that names neither owners nor a
/// managing application (the documented rule, checked on create and on the
/// result of every update).
pub fn ensure_registration_owner(
    doc: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), DomainError> {
    let owners = doc
        .get("ownerIds")
        .and_then(|v| v.as_array())
        .is_some_and(|a| !a.is_empty());
    let managed = doc
        .get("managedByAppId")
        .and_then(|v| v.as_str())
        .is_some_and(|s| !s.is_empty());
    if owners || managed {
        Ok(())
    } else {
        Err(DomainError::RegistrationWithoutOwner)
    }
}

/// Refuses a registration an application would hand to another
/// application: an application caller may set `managedByAppId` only to its
/// own app id (delegated callers, administrators, may set any).
pub fn ensure_managed_by_caller(
    props: &serde_json::Map<String, serde_json::Value>,
    app_id: Option<&str>,
) -> Result<(), DomainError> {
    match props.get("managedByAppId").and_then(|v| v.as_str()) {
        Some(named) if Some(named) != app_id => Err(DomainError::ManagedByAnotherApp),
        _ => Ok(()),
    }
}

/// The collections every tenant has from the start.
#[derive(Debug, Clone, Copy)]
pub struct ReservedCollection {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
}

pub const RESERVED_COLLECTIONS: [ReservedCollection; 2] = [
    ReservedCollection {
        id: "00000000-0000-0000-0000-000000000001",
        display_name: "Global",
        description: "Agents discoverable by every agent in the tenant.",
    },
    ReservedCollection {
        id: "00000000-0000-0000-0000-000000000002",
        display_name: "Quarantined",
        description: "Agents that are blocked or awaiting review.",
    },
];

/// The reserved collection with this id, if it is one.
pub fn reserved_collection(id: &str) -> Option<&'static ReservedCollection> {
    RESERVED_COLLECTIONS.iter().find(|c| c.id == id)
}

/// Refuses a change to a reserved collection (403).
pub fn ensure_collection_mutable(id: &str) -> Result<(), DomainError> {
    match reserved_collection(id) {
        Some(c) => Err(DomainError::ReservedCollectionImmutable(c.display_name)),
        None => Ok(()),
    }
}

/// Refuses a collection name that a reserved collection holds, ignoring case (409).
pub fn ensure_collection_name_free(
    props: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), DomainError> {
    let Some(name) = props.get("displayName").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let trimmed = name.trim();
    if RESERVED_COLLECTIONS
        .iter()
        .any(|c| c.display_name.eq_ignore_ascii_case(trimmed))
    {
        return Err(DomainError::ReservedCollectionName(name.to_owned()));
    }
    Ok(())
}

/// A fresh server-assigned id: a GUID like Graph's, time-ordered (UUID
/// version 7) so that ids created together sit together in the primary key
/// and index b-trees: a batch of creates then rewrites a few pages at their
/// end rather than a page per id scattered over the whole tree.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The full document of a reserved collection as first stored for a tenant.
pub fn reserved_collection_document(
    c: &ReservedCollection,
    now: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut props = serde_json::Map::new();
    props.insert("displayName".into(), c.display_name.into());
    props.insert("description".into(), c.description.into());
    let ctx = WriteContext {
        now: now.to_owned(),
        actor: None,
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    };
    new_document(&schema::AGENT_COLLECTION, c.id, &props, &ctx)
}

#[cfg(test)]
mod tests {
    use super::{Entity, new_id};

    #[test]
    fn each_kind_sits_at_its_index_in_the_list_of_all_kinds() {
        for (i, kind) in Entity::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }

    #[test]
    fn server_assigned_ids_are_guids_that_sort_in_creation_order() {
        let ids: Vec<String> = (0..1_000).map(|_| new_id()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.to_string(), *id, "lower-case hyphenated GUID");
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in creation order");
    }
}

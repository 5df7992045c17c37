//! The shape of every Agent Registry type, as data: which properties exist,
//! their kinds, which the server owns. Body validation, `$select` checking and
//! the canonical stored document are all driven from these tables.

/// What a property holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    String,
    Boolean,
    DateTimeOffset,
    StringCollection,
    Complex(&'static ComplexType),
    ComplexCollection(&'static ComplexType),
    /// An open type: any JSON object, kept exactly as sent (annotations too).
    Open,
    OpenCollection,
}

impl Kind {
    pub fn is_collection(self) -> bool {
        matches!(
            self,
            Kind::StringCollection | Kind::ComplexCollection(_) | Kind::OpenCollection
        )
    }

    /// How the kind is named in error messages.
    pub fn edm_name(self) -> &'static str {
        match self {
            Kind::String => "Edm.String",
            Kind::Boolean => "Edm.Boolean",
            Kind::DateTimeOffset => "Edm.DateTimeOffset",
            Kind::StringCollection => "Collection(Edm.String)",
            Kind::Complex(t) => t.qualified,
            Kind::ComplexCollection(_) => "a collection of objects",
            Kind::Open => "an object",
            Kind::OpenCollection => "a collection of objects",
        }
    }
}

/// Who may write a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Maintained by the server; values sent by clients are ignored.
    ServerOwned,
}

#[derive(Debug)]
pub struct Property {
    pub name: &'static str,
    pub kind: Kind,
    pub access: Access,
}

const fn rw(name: &'static str, kind: Kind) -> Property {
    Property {
        name,
        kind,
        access: Access::ReadWrite,
    }
}

const fn ro(name: &'static str, kind: Kind) -> Property {
    Property {
        name,
        kind,
        access: Access::ServerOwned,
    }
}

#[derive(Debug)]
pub struct ComplexType {
    pub qualified: &'static str,
    pub properties: &'static [Property],
}

impl ComplexType {
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// A navigation property of an entity type.
#[derive(Debug)]
pub struct Navigation {
    pub name: &'static str,
    pub target: &'static EntityType,
    pub collection: bool,
}

#[derive(Debug)]
pub struct EntityType {
    /// `microsoft.graph.agentInstance`
    pub qualified: &'static str,
    /// `agentInstances`, the entity set under `/agentRegistry`.
    pub entity_set: &'static str,
    /// Properties in the order they are written, `id` first.
    pub properties: &'static [Property],
    pub navigations: &'static [Navigation],
    /// Properties a create must carry, with a non-null value.
    pub required_on_create: &'static [&'static str],
}

impl EntityType {
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn navigation(&self, name: &str) -> Option<&'static Navigation> {
        self.navigations.iter().find(|n| n.name == name)
    }

    /// `agentInstance`
    pub fn short_name(&self) -> &'static str {
        self.qualified.trim_start_matches("microsoft.graph.")
    }
}

pub static AGENT_INTERFACE: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentInterface",
    properties: &[rw("url", Kind::String), rw("transport", Kind::String)],
};

pub static AGENT_CARD_SIGNATURE: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentCardSignature",
    properties: &[
        rw("protected", Kind::String),
        rw("signature", Kind::String),
        rw("header", Kind::Open),
    ],
};

pub static AGENT_PROVIDER: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentProvider",
    properties: &[rw("organization", Kind::String), rw("url", Kind::String)],
};

pub static AGENT_EXTENSION: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentExtension",
    properties: &[
        rw("uri", Kind::String),
        rw("description", Kind::String),
        rw("required", Kind::Boolean),
        rw("params", Kind::Open),
    ],
};

pub static AGENT_CAPABILITIES: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentCapabilities",
    properties: &[
        rw("streaming", Kind::Boolean),
        rw("pushNotifications", Kind::Boolean),
        rw("stateTransitionHistory", Kind::Boolean),
        rw("extensions", Kind::ComplexCollection(&AGENT_EXTENSION)),
    ],
};

pub static AGENT_SKILL: ComplexType = ComplexType {
    qualified: "microsoft.graph.agentSkill",
    properties: &[
        rw("id", Kind::String),
        rw("displayName", Kind::String),
        rw("description", Kind::String),
        rw("tags", Kind::StringCollection),
        rw("examples", Kind::StringCollection),
        rw("inputModes", Kind::StringCollection),
        rw("outputModes", Kind::StringCollection),
        rw("security", Kind::OpenCollection),
    ],
};

pub static AGENT_INSTANCE: EntityType = EntityType {
    qualified: "microsoft.graph.agentInstance",
    entity_set: "agentInstances",
    properties: &[
        rw("id", Kind::String),
        rw("ownerIds", Kind::StringCollection),
        rw("managedBy", Kind::String),
        rw("originatingStore", Kind::String),
        ro("createdBy", Kind::String),
        rw("displayName", Kind::String),
        rw("sourceAgentId", Kind::String),
        rw("agentIdentityBlueprintId", Kind::String),
        rw("agentIdentityId", Kind::String),
        rw("agentUserId", Kind::String),
        ro("createdDateTime", Kind::DateTimeOffset),
        ro("lastModifiedDateTime", Kind::DateTimeOffset),
        rw("url", Kind::String),
        rw("preferredTransport", Kind::String),
        rw(
            "additionalInterfaces",
            Kind::ComplexCollection(&AGENT_INTERFACE),
        ),
        rw("signatures", Kind::ComplexCollection(&AGENT_CARD_SIGNATURE)),
    ],
    navigations: &[
        Navigation {
            name: "agentCardManifest",
            target: &AGENT_CARD_MANIFEST,
            collection: false,
        },
        Navigation {
            name: "collections",
            target: &AGENT_COLLECTION,
            collection: true,
        },
    ],
    required_on_create: &["displayName", "ownerIds"],
};

pub static AGENT_CARD_MANIFEST: EntityType = EntityType {
    qualified: "microsoft.graph.agentCardManifest",
    entity_set: "agentCardManifests",
    properties: &[
        rw("id", Kind::String),
        rw("ownerIds", Kind::StringCollection),
        rw("managedBy", Kind::String),
        rw("originatingStore", Kind::String),
        ro("createdBy", Kind::String),
        ro("createdDateTime", Kind::DateTimeOffset),
        ro("lastModifiedDateTime", Kind::DateTimeOffset),
        rw("protocolVersion", Kind::String),
        rw("displayName", Kind::String),
        rw("description", Kind::String),
        rw("iconUrl", Kind::String),
        rw("provider", Kind::Complex(&AGENT_PROVIDER)),
        rw("version", Kind::String),
        rw("documentationUrl", Kind::String),
        rw("capabilities", Kind::Complex(&AGENT_CAPABILITIES)),
        rw("securitySchemes", Kind::Open),
        rw("security", Kind::OpenCollection),
        rw("defaultInputModes", Kind::StringCollection),
        rw("defaultOutputModes", Kind::StringCollection),
        rw("skills", Kind::ComplexCollection(&AGENT_SKILL)),
        rw("supportsAuthenticatedExtendedCard", Kind::Boolean),
    ],
    navigations: &[],
    required_on_create: &["displayName"],
};

pub static AGENT_COLLECTION: EntityType = EntityType {
    qualified: "microsoft.graph.agentCollection",
    entity_set: "agentCollections",
    properties: &[
        rw("id", Kind::String),
        rw("ownerIds", Kind::StringCollection),
        rw("managedBy", Kind::String),
        rw("originatingStore", Kind::String),
        ro("createdBy", Kind::String),
        rw("displayName", Kind::String),
        rw("description", Kind::String),
        ro("createdDateTime", Kind::DateTimeOffset),
        ro("lastModifiedDateTime", Kind::DateTimeOffset),
    ],
    navigations: &[Navigation {
        name: "members",
        target: &AGENT_INSTANCE,
        collection: true,
    }],
    required_on_create: &["displayName", "ownerIds"],
};

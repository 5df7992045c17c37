//! The shape of every Agent Registry type, as data: which properties exist,
//! their kinds, which the server owns. Body validation, `$select` checking and
//! the canonical stored document are all driven from these tables.

pub use crate::odata::edm::{
    Access, ComplexType, EntityType, EnumType, Kind, Navigation, Property,
};

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
    container: "agentRegistry",
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
    container: "agentRegistry",
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
    container: "agentRegistry",
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

pub static A2A_AUTHORIZATION_TYPE: EnumType = EnumType {
    qualified: "microsoft.graph.a2aAuthorizationType",
    members: &[
        "none",
        "oAuthPluginVault",
        "apiKeyPluginVault",
        "dynamicClientRegistration",
        "connectionVault",
        "unknownFutureValue",
    ],
};

pub static A2A_AUTHORIZATION: ComplexType = ComplexType {
    qualified: "microsoft.graph.a2aAuthorization",
    properties: &[
        rw("type", Kind::Enum(&A2A_AUTHORIZATION_TYPE)),
        rw("referenceId", Kind::String),
    ],
};

/// The Agent 365 successor of an agent instance, under `/copilot`. Every
/// property is the client's: the registration mirrors a source system
/// (`createdBy` and the `source*DateTime` stamps come from it), so the server
/// stamps nothing.
pub static AGENT_REGISTRATION: EntityType = EntityType {
    qualified: "microsoft.graph.agentRegistration",
    entity_set: "agentRegistrations",
    container: "copilot",
    properties: &[
        rw("id", Kind::String),
        rw("displayName", Kind::String),
        rw("description", Kind::String),
        rw("ownerIds", Kind::StringCollection),
        rw("createdBy", Kind::String),
        rw("sourceCreatedDateTime", Kind::DateTimeOffset),
        rw("sourceLastModifiedDateTime", Kind::DateTimeOffset),
        rw("lastPublishedBy", Kind::String),
        rw("managedByAppId", Kind::String),
        rw("sourceAgentId", Kind::String),
        rw("originatingStore", Kind::String),
        rw("agentIdentityId", Kind::String),
        rw("agentIdentityBlueprintId", Kind::String),
        rw("agentCard", Kind::Untyped),
        rw("a2aAuthorization", Kind::Complex(&A2A_AUTHORIZATION)),
    ],
    navigations: &[],
    required_on_create: &[
        "displayName",
        "createdBy",
        "sourceCreatedDateTime",
        "sourceLastModifiedDateTime",
    ],
};

pub static PACKAGE_TYPE: EnumType = EnumType {
    qualified: "microsoft.graph.packageType",
    members: &[
        "microsoft",
        "external",
        "shared",
        "custom",
        "unknownFutureValue",
    ],
};

pub static PACKAGE_STATUS: EnumType = EnumType {
    qualified: "microsoft.graph.packageStatus",
    members: &["none", "some", "all", "unknownFutureValue"],
};

pub static PACKAGE_REQUEST_STATUS: EnumType = EnumType {
    qualified: "microsoft.graph.copilotPackageRequestStatus",
    members: &["pending", "approved", "rejected", "unknownFutureValue"],
};

pub static PACKAGE_REQUEST_TYPE: EnumType = EnumType {
    qualified: "microsoft.graph.copilotPackageRequestType",
    members: &[
        "publish",
        "activate",
        "access",
        "update",
        "unknownFutureValue",
    ],
};

pub static ACCESS_ENTITY_TYPE: EnumType = EnumType {
    qualified: "microsoft.graph.accessEntityType",
    members: &["user", "group", "unknownFutureValue"],
};

pub static PACKAGE_ACCESS_ENTITY: ComplexType = ComplexType {
    qualified: "microsoft.graph.packageAccessEntity",
    properties: &[
        rw("resourceId", Kind::String),
        rw("resourceType", Kind::Enum(&ACCESS_ENTITY_TYPE)),
    ],
};

pub static PACKAGE_ELEMENT: ComplexType = ComplexType {
    qualified: "microsoft.graph.packageElement",
    properties: &[rw("id", Kind::String), rw("definition", Kind::String)],
};

pub static PACKAGE_ELEMENT_DETAIL: ComplexType = ComplexType {
    qualified: "microsoft.graph.packageElementDetail",
    properties: &[
        rw("elementType", Kind::String),
        rw("elements", Kind::ComplexCollection(&PACKAGE_ELEMENT)),
    ],
};

/// The properties of a package as a list shows it (`copilotPackage`);
/// [`COPILOT_PACKAGE`] adds those of `copilotPackageDetail`, which a get
/// answers with.
pub const PACKAGE_SUMMARY: &[&str] = &[
    "id",
    "displayName",
    "type",
    "shortDescription",
    "isBlocked",
    "availableTo",
    "deployedTo",
    "lastModifiedDateTime",
    "supportedHosts",
    "elementTypes",
    "publisher",
    "platform",
    "version",
    "manifestVersion",
    "manifestId",
    "appId",
    "assetId",
    "createdDateTime",
    "ownerId",
    "agentIdentityId",
    "requestStatus",
    "requestType",
];

/// An Agent 365 catalog package (`/copilot/admin/catalog/packages`), with
/// the detail a get returns. Graph creates none: packages come from seed
/// files, snapshots and the control API, which write every property; Graph
/// writes change access, blocking and owner only.
pub static COPILOT_PACKAGE: EntityType = EntityType {
    qualified: "microsoft.graph.copilotPackageDetail",
    entity_set: "packages",
    container: "copilot/admin/catalog",
    properties: &[
        rw("id", Kind::String),
        rw("displayName", Kind::String),
        rw("type", Kind::Enum(&PACKAGE_TYPE)),
        rw("shortDescription", Kind::String),
        rw("isBlocked", Kind::Boolean),
        rw("availableTo", Kind::Enum(&PACKAGE_STATUS)),
        rw("deployedTo", Kind::Enum(&PACKAGE_STATUS)),
        rw("lastModifiedDateTime", Kind::DateTimeOffset),
        rw("supportedHosts", Kind::StringCollection),
        rw("elementTypes", Kind::StringCollection),
        rw("publisher", Kind::String),
        rw("platform", Kind::String),
        rw("version", Kind::String),
        rw("manifestVersion", Kind::String),
        rw("manifestId", Kind::String),
        rw("appId", Kind::String),
        rw("assetId", Kind::String),
        rw("createdDateTime", Kind::DateTimeOffset),
        rw("ownerId", Kind::String),
        rw("agentIdentityId", Kind::String),
        rw("requestStatus", Kind::Enum(&PACKAGE_REQUEST_STATUS)),
        rw("requestType", Kind::Enum(&PACKAGE_REQUEST_TYPE)),
        rw("longDescription", Kind::String),
        rw("categories", Kind::StringCollection),
        rw("sensitivity", Kind::String),
        rw("activeUsers", Kind::Int32),
        rw("exceptionRate", Kind::Double),
        rw("lastUsedDateTime", Kind::DateTimeOffset),
        rw("totalRunTimeInHours", Kind::Double),
        rw("totalSessions", Kind::Int32),
        rw(
            "allowedUsersAndGroups",
            Kind::ComplexCollection(&PACKAGE_ACCESS_ENTITY),
        ),
        rw(
            "acquireUsersAndGroups",
            Kind::ComplexCollection(&PACKAGE_ACCESS_ENTITY),
        ),
        rw(
            "sharedWithUsersAndGroups",
            Kind::ComplexCollection(&PACKAGE_ACCESS_ENTITY),
        ),
        rw(
            "elementDetails",
            Kind::ComplexCollection(&PACKAGE_ELEMENT_DETAIL),
        ),
    ],
    navigations: &[],
    required_on_create: &["displayName"],
};

pub static OPERATION_RESULT: EnumType = EnumType {
    qualified: "microsoft.graph.operationResult",
    members: &["success", "failure", "timeout", "unknownFutureValue"],
};

pub static AUDIT_USER_IDENTITY: ComplexType = ComplexType {
    qualified: "microsoft.graph.auditUserIdentity",
    properties: &[
        ro("id", Kind::String),
        ro("displayName", Kind::String),
        ro("userPrincipalName", Kind::String),
        ro("ipAddress", Kind::String),
    ],
};

pub static APP_IDENTITY: ComplexType = ComplexType {
    qualified: "microsoft.graph.appIdentity",
    properties: &[
        ro("appId", Kind::String),
        ro("displayName", Kind::String),
        ro("servicePrincipalId", Kind::String),
        ro("servicePrincipalName", Kind::String),
    ],
};

pub static AUDIT_ACTIVITY_INITIATOR: ComplexType = ComplexType {
    qualified: "microsoft.graph.auditActivityInitiator",
    properties: &[
        ro("user", Kind::Complex(&AUDIT_USER_IDENTITY)),
        ro("app", Kind::Complex(&APP_IDENTITY)),
    ],
};

pub static MODIFIED_PROPERTY: ComplexType = ComplexType {
    qualified: "microsoft.graph.modifiedProperty",
    properties: &[
        ro("displayName", Kind::String),
        ro("oldValue", Kind::String),
        ro("newValue", Kind::String),
    ],
};

pub static TARGET_RESOURCE: ComplexType = ComplexType {
    qualified: "microsoft.graph.targetResource",
    properties: &[
        ro("id", Kind::String),
        ro("displayName", Kind::String),
        ro("type", Kind::String),
        ro("userPrincipalName", Kind::String),
        ro("groupType", Kind::String),
        ro(
            "modifiedProperties",
            Kind::ComplexCollection(&MODIFIED_PROPERTY),
        ),
    ],
};

pub static KEY_VALUE: ComplexType = ComplexType {
    qualified: "microsoft.graph.keyValue",
    properties: &[ro("key", Kind::String), ro("value", Kind::String)],
};

/// `/auditLogs/directoryAudits`: written by the service, read-only to clients.
pub static DIRECTORY_AUDIT: EntityType = EntityType {
    qualified: "microsoft.graph.directoryAudit",
    entity_set: "directoryAudits",
    container: "auditLogs",
    properties: &[
        ro("id", Kind::String),
        ro("category", Kind::String),
        ro("correlationId", Kind::String),
        ro("result", Kind::Enum(&OPERATION_RESULT)),
        ro("resultReason", Kind::String),
        ro("activityDisplayName", Kind::String),
        ro("activityDateTime", Kind::DateTimeOffset),
        ro("loggedByService", Kind::String),
        ro("operationType", Kind::String),
        ro("initiatedBy", Kind::Complex(&AUDIT_ACTIVITY_INITIATOR)),
        ro("targetResources", Kind::ComplexCollection(&TARGET_RESOURCE)),
        ro("additionalDetails", Kind::ComplexCollection(&KEY_VALUE)),
        ro("userAgent", Kind::String),
    ],
    navigations: &[],
    required_on_create: &[],
};

//! Storage: one trait, one implementation per backend. SQL lives only in the
//! backend modules. Documents cross this boundary as JSON text (what is
//! stored is what is served) and writes as validated domain values.

mod engine;
pub mod postgres;
mod read;
mod sql;
pub mod sqlite;
mod statements;
mod tenant;
mod write;

use crate::domain::copilot::{
    CopilotError, CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
};
use crate::domain::{DomainError, EntityWrite, WriteContext};
use crate::odata::{Cursor, Expr, OrderKey, Search};
use async_trait::async_trait;
use serde_json::{Map, Value};

pub use crate::domain::Entity;

/// Why a storage call failed, in the terms the HTTP layer must tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind:?} '{id}' does not exist")]
    NotFound { kind: Entity, id: String },
    #[error("{kind:?} '{id}' already exists")]
    AlreadyExists { kind: Entity, id: String },
    /// The entity exists, but its version is not the one the write expected
    /// (`WriteContext::if_match` or a delete's `if_match`).
    #[error("{kind:?} '{id}' has changed since the version the write expected")]
    PreconditionFailed { kind: Entity, id: String },
    /// Another registration of the tenant has this `sourceAgentId`.
    #[error("sourceAgentId '{source_agent_id}' is registered as '{existing}'")]
    SourceAgentIdTaken {
        source_agent_id: String,
        existing: String,
    },
    #[error("manifest '{id}' is still linked from {instances} agent instance(s)")]
    ManifestInUse { id: String, instances: u64 },
    #[error("instance '{instance}' is already a member of collection '{collection}'")]
    AlreadyMember {
        collection: String,
        instance: String,
    },
    #[error("instance '{instance}' is not a member of collection '{collection}'")]
    NotMember {
        collection: String,
        instance: String,
    },
    /// A domain rule refused the write once the stored state was known.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The database cannot be reached or is shutting down; retrying may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the text is for logs, never for clients.
    #[error("storage failure: {0}")]
    Internal(String),
    /// A database URL Agentry cannot use (at start only).
    #[error("{0}")]
    UnusableUrl(String),
    /// A delta round's starting position is older than what the change log
    /// still holds in full (a reset, a restored snapshot, another backend).
    #[error("the change log no longer holds the changes after this position")]
    SyncStateExpired,
}

/// A delta round's window on a tenant's change log: the changes after the
/// position `from` up to the position `to` (each backend's own text: a
/// sequence number, a snapshot), past the sequence number `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeWindow {
    pub from: String,
    pub to: String,
    pub after: i64,
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub seq: i64,
    pub id: String,
    pub change: crate::domain::subscriptions::ChangeType,
}

impl From<CopilotError> for StoreError {
    fn from(e: CopilotError) -> Self {
        StoreError::Rejected(DomainError::Copilot(e))
    }
}

/// A stored entity: its document as JSON text, plus bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    /// The full representation, every property present.
    pub doc: String,
    /// Bumped on every change; the basis for ETags.
    pub version: i64,
}

impl Stored {
    pub fn parse(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.doc) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// Which rows a list or a count covers: the OData `$filter` and `$search`,
/// already checked against the entity's type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteria {
    pub filter: Option<Expr>,
    pub search: Option<Search>,
}

/// A page request: rows matching `criteria`, ordered by `order` then id,
/// strictly after `after`, `skip` more skipped, at most `limit` returned;
/// with each row, the entities along every navigation of `expand`, and with
/// `count` the number of rows matching `criteria`. A page is one snapshot:
/// its rows, their expansions and the count are read in one read
/// transaction, so no write lands between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub criteria: Criteria,
    pub order: Vec<OrderKey>,
    pub after: Option<Cursor>,
    pub skip: usize,
    pub limit: usize,
    pub expand: Vec<Navigation>,
    pub count: bool,
}

/// A navigation a list reads with its rows ([`ListQuery::expand`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Navigation {
    /// An instance's linked `agentCardManifest` (none or one).
    Manifest,
    /// The `collections` an instance belongs to.
    Collections,
    /// A collection's `members`.
    Members,
}

/// The entities along one expanded navigation are capped at this many.
pub const EXPANDED_LIMIT: usize = 100;

impl ListQuery {
    /// The first `limit` rows in id order.
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }
}

/// The side tables: collection-valued properties that discovery filters ask
/// about, kept per entity as rows keyed (tenant, value, entity id) by every
/// backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Instance owners: `ownerIds/any(o: o eq …)`.
    Owners,
    /// The skill tags of an instance's linked manifest:
    /// `agentCardManifest/skills/any(s: s/tags/any(t: t eq …))`.
    InstanceTags,
    /// A manifest's skill tags: `skills/any(s: s/tags/any(t: t eq …))`.
    ManifestTags,
    /// Registration owners: `ownerIds/any(o: o eq …)`.
    RegistrationOwners,
    /// A catalog package's element types: `elementTypes/any(t: t eq …)`.
    PackageElementTypes,
}

/// The side table that answers `collection/any(variable: body)` on `ty`, and
/// the values the term asks for (`eq` one, or `in` several).
pub fn side_values<'e>(
    ty: &crate::domain::schema::EntityType,
    collection: &[String],
    variable: &str,
    body: &'e Expr,
) -> Option<(Side, Vec<&'e str>)> {
    use crate::odata::filter::{Quantifier, equality_literals};
    let tags = || {
        let Expr::Lambda {
            quantifier: Quantifier::Any,
            collection: inner,
            variable: tv,
            body: Some(tb),
        } = body
        else {
            return None;
        };
        match inner.segments.as_slice() {
            [v, tags] if v == variable && tags == "tags" => equality_literals(tb, tv),
            _ => None,
        }
    };
    match (ty.entity_set, collection) {
        ("agentInstances", [p]) if p == "ownerIds" => {
            Some((Side::Owners, equality_literals(body, variable)?))
        }
        ("agentInstances", [n, s]) if n == "agentCardManifest" && s == "skills" => {
            Some((Side::InstanceTags, tags()?))
        }
        ("agentCardManifests", [s]) if s == "skills" => Some((Side::ManifestTags, tags()?)),
        ("agentRegistrations", [p]) if p == "ownerIds" => {
            Some((Side::RegistrationOwners, equality_literals(body, variable)?))
        }
        ("packages", [p]) if p == "elementTypes" => Some((
            Side::PackageElementTypes,
            equality_literals(body, variable)?,
        )),
        _ => None,
    }
}

/// A filter operand that a side table answers with one value, so that a
/// page of it can be read from that table in id order.
pub fn side_term(ty: &crate::domain::schema::EntityType, e: &Expr) -> Option<(Side, String)> {
    let Expr::Lambda {
        quantifier: crate::odata::filter::Quantifier::Any,
        collection,
        variable,
        body: Some(body),
    } = e
    else {
        return None;
    };
    match side_values(ty, &collection.segments, variable, body)? {
        // Most packages match an element type: their page is read in id
        // order, each row checked, rather than driven by the side table.
        (Side::PackageElementTypes, _) => None,
        (side, values) if values.len() == 1 => Some((side, values[0].to_owned())),
        _ => None,
    }
}

/// Whether `segments`, read from an entity of `ty` (not from a lambda
/// variable), is an entity's `displayName`: its own, or the linked one's
/// through a navigation (`agentCardManifest/displayName`). Names compare and
/// sort without ASCII case on every backend, as in Graph's directory, so that
/// one case-insensitive index per table serves equality, ranges, prefixes
/// and order.
pub fn is_name(ty: &crate::domain::schema::EntityType, segments: &[String]) -> bool {
    match segments {
        [p] => p == "displayName",
        [nav, p] => p == "displayName" && ty.navigation(nav).is_some(),
        _ => false,
    }
}

/// Whether a page is ordered by name rather than by id: a page without
/// `$orderby` of instances or manifests whose filter requires
/// `startswith(displayName, '…')` (a top-level `and` operand) and no
/// [`side_term`] (whose side table yields id order). Such a page is a range
/// of the case-insensitive name index, which yields its rows in name order;
/// paging in that order (name without ASCII case, then id) reads one page of
/// index entries however many names match, where id order would sort every
/// match first. Graph leaves the order of such pages unspecified. Every
/// backend follows this rule, so all answer in the same order.
pub fn pages_by_name(ty: &crate::domain::schema::EntityType, q: &ListQuery) -> bool {
    use crate::odata::filter::{Func, Literal, Operand};
    let name_prefix = |e: &Expr| match e {
        Expr::Call(
            Func::StartsWith,
            Operand::Property(p),
            Operand::Literal(Literal::String(_)),
        ) => p.segments.len() == 1 && p.segments[0] == "displayName",
        _ => false,
    };
    let Some(filter) = &q.criteria.filter else {
        return false;
    };
    let terms = filter.conjuncts();
    q.order.is_empty()
        && matches!(ty.entity_set, "agentInstances" | "agentCardManifests")
        && terms.iter().any(|e| name_prefix(e))
        && !terms.iter().any(|e| side_term(ty, e).is_some())
}

/// One page of results; `more` says whether rows follow the last one, and
/// `last` is where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Stored>,
    pub more: bool,
    pub last: Option<Cursor>,
    /// For each item, the entities along each navigation of the query's
    /// `expand`, in that order (empty when nothing is expanded).
    pub related: Vec<Vec<Vec<Stored>>>,
    /// The rows matching the criteria, when the query asked (`count`).
    pub count: Option<u64>,
}

/// Which rows a list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation<'a> {
    /// Every entity of the kind in the tenant.
    All,
    /// The members of a collection.
    MembersOf(&'a str),
    /// The collections an instance belongs to.
    CollectionsOf(&'a str),
}

/// A tenant's whole state, as snapshots and seed files carry it: documents
/// already validated and complete (server-owned fields included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantState {
    pub manifests: Vec<Map<String, Value>>,
    /// Each instance with the id of the manifest it links, if any.
    pub instances: Vec<(Map<String, Value>, Option<String>)>,
    /// Collections, the reserved ones included when known.
    pub collections: Vec<Map<String, Value>>,
    /// (collection id, instance id) pairs.
    pub members: Vec<(String, String)>,
    /// Agent registrations (`/copilot/agentRegistrations`).
    pub registrations: Vec<Map<String, Value>>,
    /// The package catalog (`/copilot/admin/catalog/packages`).
    pub packages: Vec<Map<String, Value>>,
    pub policies: Vec<Policy>,
    pub settings: Vec<(TenantSetting, Map<String, Value>)>,
}

/// The parts of a tenant, in the order `agentry export` writes them and an
/// import needs them (an instance's manifest and a membership's two ends
/// come before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Collections,
    Manifests,
    Instances,
    Members,
    Registrations,
    Packages,
    Policies,
    Settings,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Collections,
        Section::Manifests,
        Section::Instances,
        Section::Members,
        Section::Registrations,
        Section::Packages,
        Section::Policies,
        Section::Settings,
    ];
}

/// The key an export of the members section continues from: the collection
/// and instance ids, joined by a NUL (which no id holds).
pub fn member_key(collection: &str, instance: &str) -> String {
    format!("{collection}\u{0}{instance}")
}

/// The collection and instance ids of a [`member_key`].
pub fn split_member_key(key: &str) -> (&str, &str) {
    key.split_once('\u{0}').unwrap_or((key, ""))
}

/// Every table that holds a tenant's data, but the application
/// registrations (credentials, like the keys, survive a reset).
const TENANT_TABLES: &[&str] = &[
    "agent_instances",
    "agent_instance_owners",
    "agent_instance_skill_tags",
    "agent_card_manifests",
    "agent_card_manifest_skill_tags",
    "agent_collections",
    "agent_collection_members",
    "agent_registrations",
    "agent_registration_owners",
    "copilot_packages",
    "copilot_package_element_types",
    "copilot_policies",
    "copilot_tenant_settings",
    "agent_watch",
];

/// How [`TenantStore::import_tenant`] treats what the tenant already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Delete everything of the tenant first (reset and snapshot restore).
    Replace,
    /// Keep what exists; add only objects whose id is new (seed files).
    Merge,
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    /// Objects left alone because they already existed (merge only).
    pub kept: usize,
}

/// Figures of the backend for `/metrics`; zero where a backend has none.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Read connections idle in the pool.
    pub idle_readers: u64,
    /// Write jobs waiting for the writer.
    pub queued_writes: u64,
    /// Write transactions committed (or attempted).
    pub write_batches: u64,
    /// Write jobs run.
    pub write_jobs: u64,
    /// Batch sizes: (upper bound, batches of at most that many jobs), cumulative.
    pub batch_size_buckets: Vec<(u64, u64)>,
    /// PATCHes written as one statement guarded by the version read
    /// (PostgreSQL).
    pub guarded_writes: u64,
    /// PATCHes tried that way and run again in a transaction that locks
    /// the row: another writer changed it in between, or the PATCH needed
    /// more than one statement.
    pub guarded_fallbacks: u64,
}

/// The Agent Registry's objects: instances, card manifests, collections and
/// memberships. Every call is scoped to one tenant. Written once for every
/// backend (`engine`), over the row operations each implements.
///
/// Optimistic concurrency: an entity's `version` starts at 1 and grows on
/// every change. A write whose `ctx.if_match` names another version fails
/// with `PreconditionFailed`, checked inside the write transaction; a
/// missing entity, or one outside `ctx.scope` (the `*.ManagedBy`
/// permissions), is `NotFound` either way, checked in the same transaction.
/// A nested manifest change in an instance update is governed by the
/// instance's precondition alone. Updates without a precondition merge
/// their properties into the latest stored document, never into a stale
/// copy.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    // Any entity
    async fn get_entity(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError>;
    /// Several entities by id, in the order of `ids` (`None` for each one
    /// missing); PostgreSQL reads them in one statement.
    async fn get_entities(
        &self,
        kind: Entity,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<Stored>>, StoreError>;
    /// `ctx.if_match`: the version the entity must still have; `ctx.scope`:
    /// what the caller may delete (else `NotFound`). A manifest is refused
    /// while instances link it.
    async fn delete_entity(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError>;
    /// One page of `kind` along `relation` (`All`, or the members or
    /// collections of one object), as one snapshot.
    async fn list_entities(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        query: &ListQuery,
    ) -> Result<Page, StoreError>;
    async fn count_entities(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError>;

    // Agent instances
    async fn create_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    async fn update_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    /// The manifest linked from an instance; `NotFound` for a missing instance.
    async fn get_instance_manifest(
        &self,
        tenant: &str,
        instance_id: &str,
    ) -> Result<Option<Stored>, StoreError>;

    // Agent card manifests
    async fn create_manifest(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    async fn update_manifest(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;

    // Agent registrations (`/copilot/agentRegistrations`)
    /// `SourceAgentIdTaken` when another registration has its `sourceAgentId`.
    async fn create_registration(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    async fn update_registration(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;

    // The package catalog (`/copilot/admin/catalog/packages`)
    /// Stores a complete package document; `AlreadyExists` when its id is taken.
    async fn create_package(
        &self,
        tenant: &str,
        doc: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    /// Merges changes into a package (the Graph writes: access, block, owner).
    async fn update_package(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;

    // Agent collections
    async fn create_collection(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    async fn update_collection(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError>;
    /// `ctx.scope`: which collections and instances the caller may touch.
    async fn add_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError>;
    /// `ctx.scope`: which collections and instances the caller may touch.
    async fn remove_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError>;

    /// Deletes the audit records and the change log rows (of every tenant)
    /// made before `before`.
    async fn prune_audit_log(&self, before: &str) -> Result<(), StoreError>;

    // The change log, for delta queries.
    /// Where the tenant's change log stands now: the `to` of a delta round
    /// starting now, the `from` of the round after it.
    async fn change_position(&self, tenant: &str) -> Result<String, StoreError>;
    /// Up to `limit` changes of `kind` in `window`, in log order;
    /// `SyncStateExpired` when `window.from` is older than the tenant's
    /// last reset or restore.
    async fn changes(
        &self,
        kind: Entity,
        tenant: &str,
        window: &ChangeWindow,
        limit: usize,
    ) -> Result<Vec<LoggedChange>, StoreError>;

    // The audit log (`/auditLogs/directoryAudits`): registry writes record
    // themselves; this records anything else, in a transaction of its own.
    async fn record_event(
        &self,
        tenant: &str,
        event: crate::domain::audit::Event,
        ctx: &WriteContext,
    ) -> Result<(), StoreError>;
    async fn is_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError>;
}

/// The Copilot admin settings: policies and per-tenant settings.
/// Refusals come back as `Rejected(Copilot(..))`.
#[async_trait]
pub trait CopilotStore: Send + Sync {
    /// Every policy of the tenant, ordered by priority, creation time, id.
    async fn list_policies(&self, tenant: &str) -> Result<Vec<Policy>, StoreError>;
    async fn get_policy(&self, tenant: &str, id: &str) -> Result<Option<Policy>, StoreError>;
    /// Stores a validated policy; `PolicyAlreadyExists` when the id is taken.
    async fn create_policy(
        &self,
        tenant: &str,
        policy: Policy,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError>;
    /// Applies a patch and validates the result inside the write transaction.
    async fn update_policy(
        &self,
        tenant: &str,
        id: &str,
        patch: PolicyPatch,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError>;
    async fn delete_policy(
        &self,
        tenant: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError>;
    /// Resolves the policy that holds a setting and writes the value into it,
    /// atomically: concurrent writes of one setting end with one of the
    /// values and nothing else changed.
    async fn write_policy_setting(
        &self,
        tenant: &str,
        write: SettingWrite,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<SettingView, StoreError>;
    /// A per-tenant settings object; `None` if the tenant never wrote it.
    async fn get_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
    ) -> Result<Option<Map<String, Value>>, StoreError>;
    /// Merges validated changes into a per-tenant settings object (starting
    /// from its defaults) and returns the result.
    async fn patch_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
        patch: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Map<String, Value>, StoreError>;
}

/// A watch record's stored text, read back; `None` when there is none (or
/// it is not a JSON object, which this store never writes).
fn watch_doc(text: Option<String>) -> Option<Map<String, Value>> {
    match serde_json::from_str(text.as_deref()?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The entity kind of a watch row's entity set.
fn watched_entity(set: &str) -> Entity {
    Entity::of_set(set).unwrap_or(Entity::Instance)
}

/// An agent a process has leased for checking: which, and the outcome of
/// its last check, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchClaim {
    pub entity: Entity,
    pub id: String,
    pub last: Option<Map<String, Value>>,
}

/// One agent's watch record, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRecord {
    pub entity: Entity,
    pub id: String,
    pub doc: Map<String, Value>,
}

/// The state of watched agents (`crate::watch`): one row per agent of a
/// watching tenant, its last outcome, when it is due, and who checks it.
/// Times are entity timestamps, which sort as text.
#[async_trait]
pub trait WatchStore: Send + Sync {
    /// Every tenant's stored A2A settings (the worker keeps those that watch).
    async fn a2a_settings_of_tenants(
        &self,
    ) -> Result<Vec<(String, Map<String, Value>)>, StoreError>;
    /// Adds a row, due at `now`, for each agent instance and registration
    /// of the tenant that has none: how many.
    async fn enrol_agents(&self, tenant: &str, now: &str) -> Result<u64, StoreError>;
    /// Leases up to `limit` of the tenant's due agents to `owner` until
    /// `lease_until`.
    async fn claim_checks(
        &self,
        tenant: &str,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<WatchClaim>, StoreError>;
    /// Records a check's outcome (`state` `None`: nothing to check) and the
    /// next due time, and ends the lease; false when `owner` lost it.
    async fn save_check(
        &self,
        tenant: &str,
        claim: &WatchClaim,
        owner: &str,
        state: Option<&str>,
        doc: &Map<String, Value>,
        due_at: &str,
    ) -> Result<bool, StoreError>;
    /// Drops the row of an agent that no longer exists.
    async fn forget_agent(&self, tenant: &str, entity: Entity, id: &str) -> Result<(), StoreError>;
    /// Makes every agent of the tenant due at `now`.
    async fn check_all_now(&self, tenant: &str, now: &str) -> Result<(), StoreError>;
    /// An agent's last outcome, once checked.
    async fn get_health(
        &self,
        tenant: &str,
        entity: Entity,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError>;
    /// Checked agents in (entity set, id) order after `after`, of one
    /// `state` or all.
    async fn list_health(
        &self,
        tenant: &str,
        state: Option<&str>,
        after: Option<(Entity, &str)>,
        limit: usize,
    ) -> Result<Vec<WatchRecord>, StoreError>;
    /// How many agents are in each state, over every tenant (for `/metrics`).
    async fn health_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Where a subscription's delivery stands in its tenant's change log (its
/// outbox): the changes up to `from` are delivered; those after `after` up
/// to `to`, when set, are being delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub tenant: String,
    pub id: String,
    pub entity: Entity,
    /// The subscription as served.
    pub doc: Map<String, Value>,
    pub from: String,
    pub to: Option<String>,
    pub after: i64,
    /// Failed attempts in a row, and since when.
    pub failures: u32,
    pub failing_since: Option<String>,
}

/// Change notification subscriptions and their delivery state. Times are
/// entity timestamps (`clock::entity_timestamp`), which sort as text.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Stores a subscription of `entity`'s changes; its delivery starts at
    /// the tenant's change log position as the subscription commits.
    async fn create_subscription(
        &self,
        tenant: &str,
        entity: Entity,
        doc: &Map<String, Value>,
        expires_at: &str,
        now: &str,
    ) -> Result<(), StoreError>;
    async fn get_subscription(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError>;
    /// The tenant's subscriptions, by id.
    async fn list_subscriptions(&self, tenant: &str)
    -> Result<Vec<Map<String, Value>>, StoreError>;
    /// Replaces a subscription's document and expiry; false when it has none by that id.
    async fn update_subscription(
        &self,
        tenant: &str,
        id: &str,
        doc: &Map<String, Value>,
        expires_at: &str,
    ) -> Result<bool, StoreError>;
    async fn delete_subscription(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
    /// Sets the annotation `name` of a subscription's document to `value`
    /// (read and written in one transaction, so a renewal is never lost);
    /// false when it has none by that id.
    async fn annotate_subscription(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        value: Value,
    ) -> Result<bool, StoreError>;
    /// Deletes the subscriptions (of every tenant) expired at `now`.
    async fn delete_expired_subscriptions(&self, now: &str) -> Result<u64, StoreError>;
    /// Takes (or keeps) the lease on up to `limit` unexpired subscriptions
    /// due at `now` that no other `owner` holds, until `lease_until`.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Saves a delivery's progress and its next attempt, while `owner`
    /// holds its lease; false when it does not (or the subscription is gone).
    async fn save_delivery(
        &self,
        owner: &str,
        delivery: &Delivery,
        next_attempt_at: &str,
    ) -> Result<bool, StoreError>;
}

/// Application registrations of the built-in identity provider.
#[async_trait]
pub trait AppStore: Send + Sync {
    async fn create_app(&self, app: crate::domain::apps::AppRegistration)
    -> Result<(), StoreError>;
    async fn get_app(
        &self,
        client_id: &str,
    ) -> Result<Option<crate::domain::apps::AppRegistration>, StoreError>;
    /// The application registrations of a tenant, by client id.
    async fn list_apps(
        &self,
        tenant: &str,
    ) -> Result<Vec<crate::domain::apps::AppRegistration>, StoreError>;
    /// Removes an application registration of `tenant`; false when it has none by that id.
    async fn delete_app(&self, tenant: &str, client_id: &str) -> Result<bool, StoreError>;
}

/// Local user accounts of the built-in identity provider, their lockout,
/// and the authorization codes issued to them. Users are credentials, like
/// application registrations: a tenant's reset keeps them.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; false when its tenant has a user of that name
    /// (whatever the case), which is then left as it was.
    async fn create_user(&self, user: crate::domain::users::LocalUser) -> Result<bool, StoreError>;
    /// The user of `tenant` named `user_name` (whatever the case), with its
    /// failed sign-ins and lock.
    async fn get_user(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<crate::domain::users::LocalUser>, StoreError>;
    /// The users of a tenant, by name.
    async fn list_users(
        &self,
        tenant: &str,
    ) -> Result<Vec<crate::domain::users::LocalUser>, StoreError>;
    /// Removes a user; false when the tenant has none of that name.
    async fn delete_user(&self, tenant: &str, user_name: &str) -> Result<bool, StoreError>;
    /// Counts a failed sign-in, in one statement (replicas count together):
    /// the `limit`th in a row locks the user until `lock_until` and starts
    /// the count again. The user afterwards; `None` when there is no such user.
    async fn record_failed_sign_in(
        &self,
        tenant: &str,
        user_name: &str,
        limit: u32,
        lock_until: &str,
    ) -> Result<Option<crate::domain::users::LocalUser>, StoreError>;
    /// A successful sign-in: the count of failures starts again.
    async fn record_sign_in(&self, tenant: &str, user_name: &str) -> Result<(), StoreError>;
    /// Keeps an authorization code by `key` (see `domain::users::code_key`),
    /// removing the codes that expired before `now`.
    async fn save_code(
        &self,
        key: &str,
        code: crate::domain::users::AuthorizationCode,
        now: &str,
    ) -> Result<(), StoreError>;
    /// Redeems the code kept by `key`: the first call gets it, any later
    /// one learns that it was redeemed before.
    async fn redeem_code(&self, key: &str) -> Result<crate::domain::users::Redeemed, StoreError>;
}

/// Whole tenants (reset, snapshots, seed files) and whole databases
/// (`agentry export` and `agentry import`).
#[async_trait]
pub trait TenantStore: Send + Sync {
    // Whole tenants (reset, snapshots, seed files)
    /// Everything the tenant holds, in id order (the reserved collections included).
    async fn export_tenant(&self, tenant: &str) -> Result<TenantState, StoreError>;
    /// One batch of a bulk load (`agentry import`): merged into the tenant
    /// in one transaction, as [`TenantStore::import_tenant`] does with
    /// `Merge`, but possibly answered once committed and before it is
    /// durable, so that the next batch can be written meanwhile. The state
    /// comes back, for the caller to free where it was built.
    async fn import_batch(
        &self,
        tenant: &str,
        state: TenantState,
        now: &str,
    ) -> Result<(ImportReport, TenantState), StoreError>;
    /// Ends a bulk load: answers once every batch is durable (an error if
    /// one could not be made so) and, when the load `created` objects,
    /// refreshes the query planner's statistics, so that the next start has
    /// none left to gather.
    async fn finish_bulk_load(&self, created: bool) -> Result<(), StoreError>;
    /// Writes a whole state in one transaction: with `Replace` the tenant's
    /// registry objects, memberships, Copilot policies and settings are
    /// deleted first (application registrations stay); the reserved
    /// collections always exist afterwards. `now` stamps what the state lacks.
    async fn import_tenant(
        &self,
        tenant: &str,
        state: TenantState,
        mode: ImportMode,
        now: &str,
    ) -> Result<ImportReport, StoreError>;

    // Whole databases (`agentry export` and `agentry import`)
    /// Every tenant that holds objects, application registrations or local
    /// users, in order.
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` objects of one section of a tenant, in key order, after
    /// the key `after` (`None`: from the start), as a partial state; and the
    /// key to continue from, `None` once the section is done. Creates nothing
    /// (the reserved collections are exported only if they were stored).
    async fn export_section(
        &self,
        tenant: &str,
        section: Section,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(TenantState, Option<String>), StoreError>;
}

/// The storage of the Agent Registry and the Copilot settings, by area.
#[async_trait]
pub trait Store:
    RegistryStore
    + CopilotStore
    + AppStore
    + UserStore
    + TenantStore
    + SubscriptionStore
    + WatchStore
    + 'static
{
    /// Figures for `/metrics`.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// Whether the database answers (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes queued writes and closes the database cleanly.
    async fn close(&self);
}

/// How a backend is opened.
#[derive(Clone)]
pub struct StoreOptions {
    /// Connections in the pool of a server backend (PostgreSQL).
    pub pool_size: usize,
    /// Bytes of documents kept in memory for reads by id (SQLite only: with
    /// PostgreSQL other processes write too); 0 turns the cache off.
    pub read_cache_bytes: usize,
    /// Stamps what the store creates on its own (the reserved collections).
    pub clock: crate::clock::SharedClock,
}

/// The read cache's default size.
pub const DEFAULT_READ_CACHE_MB: usize = 64;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: postgres::DEFAULT_POOL_SIZE,
            read_cache_bytes: DEFAULT_READ_CACHE_MB << 20,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        }
    }
}

/// The backend a database URL names.
enum Location<'a> {
    Sqlite(&'a std::path::Path),
    Postgres(&'a str),
}

fn locate(database_url: &str) -> Result<Location<'_>, StoreError> {
    let sqlite = database_url
        .strip_prefix("sqlite://")
        .map(|p| (p.split('?').next().unwrap_or_default(), p))
        .or_else(|| database_url.strip_prefix("sqlite:").map(|p| (p, p)));
    if let Some((path, whole)) = sqlite {
        // An in-memory SQLite database is one per connection: the writer
        // and each reader would see databases of their own.
        if path.is_empty() || path.contains(":memory:") || whole.contains("mode=memory") {
            return Err(StoreError::UnusableUrl(format!(
                "'{database_url}' is a SQLite database in memory, one per connection, and Agentry \
                 reads and writes on several; use `agentry serve --in-memory` for data that is gone \
                 at exit, sqlite://PATH for a file, or postgres://USER@HOST/DB"
            )));
        }
        return Ok(Location::Sqlite(std::path::Path::new(path)));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(Location::Postgres(database_url));
    }
    Err(StoreError::UnusableUrl(format!(
        "unsupported database URL scheme in '{}'; use sqlite://PATH or postgres://USER@HOST/DB",
        database_url.split("://").next().unwrap_or(database_url)
    )))
}

/// A database URL fit for logs and banners: any password replaced by `***`.
pub fn redact_url(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => database_url.to_owned(),
        },
        None => database_url.to_owned(),
    }
}

/// Opens the backend a database URL names, with default options.
pub async fn open(database_url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(database_url, StoreOptions::default()).await
}

/// Opens the backend a database URL names and applies pending migrations.
pub async fn open_with(
    database_url: &str,
    options: StoreOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match locate(database_url)? {
        Location::Sqlite(path) => std::sync::Arc::new(
            sqlite::SqliteStore::open_with_cache(path, options.read_cache_bytes)?
                .with_clock(options.clock),
        ),
        Location::Postgres(url) => std::sync::Arc::new(
            postgres::PgStore::open(url, options.pool_size)
                .await?
                .with_clock(options.clock),
        ),
    })
}

/// Applies the migrations the database lacks and returns their names
/// (`agentry migrate`).
pub async fn migrate(database_url: &str) -> Result<Vec<String>, StoreError> {
    match locate(database_url)? {
        Location::Sqlite(path) => sqlite::migrate_file(path),
        Location::Postgres(url) => {
            let store = postgres::PgStore::connect(url, 1)?;
            let applied = store.migrate().await;
            store.close().await;
            applied
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://agentry:s3cr:et@db:5432/agentry?sslmode=disable"),
            "postgres://agentry:***@db:5432/agentry?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://agentry@db/agentry"),
            "postgres://agentry@db/agentry"
        );
        assert_eq!(
            redact_url("sqlite://./agentry-data/agentry.db"),
            "sqlite://./agentry-data/agentry.db"
        );
    }

    fn query(text: &str) -> ListQuery {
        let q = crate::odata::QueryOptions::parse(Some(text)).unwrap();
        ListQuery {
            criteria: Criteria {
                filter: q.filter,
                search: q.search,
            },
            order: q.orderby,
            ..ListQuery::first(10)
        }
    }

    #[test]
    fn a_name_prefix_without_orderby_or_a_side_term_pages_by_name() {
        use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
        let cases = [
            (
                &AGENT_INSTANCE,
                "$filter=startswith(displayName, 'a')",
                true,
            ),
            (
                &AGENT_CARD_MANIFEST,
                "$filter=startswith(displayName, 'a')",
                true,
            ),
            (
                &AGENT_INSTANCE,
                "$filter=url ne null and startswith(displayName, 'a')",
                true,
            ),
            (
                &AGENT_INSTANCE,
                "$filter=startswith(displayName, 'a') and ownerIds/any(o: o in ('x', 'y'))",
                true,
            ),
            (
                &AGENT_COLLECTION,
                "$filter=startswith(displayName, 'a')",
                false,
            ),
            (
                &AGENT_INSTANCE,
                "$filter=startswith(displayName, 'a')&$orderby=id",
                false,
            ),
            (
                &AGENT_INSTANCE,
                "$filter=startswith(displayName, 'a') or url eq null",
                false,
            ),
            (
                &AGENT_INSTANCE,
                "$filter=not startswith(displayName, 'a')",
                false,
            ),
            (&AGENT_INSTANCE, "$filter=startswith(url, 'a')", false),
            (
                &AGENT_INSTANCE,
                "$filter=startswith(displayName, 'a') and ownerIds/any(o: o eq 'x')",
                false,
            ),
            (
                &AGENT_CARD_MANIFEST,
                "$filter=startswith(displayName, 'a') and skills/any(s: s/tags/any(t: t eq 'x'))",
                false,
            ),
        ];
        for (ty, text, expected) in cases {
            assert_eq!(pages_by_name(ty, &query(text)), expected, "{text}");
        }
    }

    #[test]
    fn every_backend_translates_checked_queries_into_statements_it_accepts() {
        use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
        let queries = [
            "",
            "$filter=displayName eq 'a''b' and url ne null&$orderby=displayName desc,id",
            "$filter=ownerIds/any(o: o eq 'x') or ownerIds/all(o: startswith(o, 'y'))",
            "$filter=agentCardManifest/skills/any(s: s/tags/any(t: t in ('a', 'b')))&$orderby=agentCardManifest/displayName",
            "$filter=not (createdDateTime ge 2025-01-01T00:00:00Z) and contains(displayName, '%_')",
            "$filter=agentCardManifest/capabilities/streaming eq true&$search=\"displayName:x\"",
            "$filter=skills/any(s: s/id eq 'x') and version eq '1'&$orderby=version",
            "$filter=endswith(displayName, 'x') and managedBy in ('a', 'b')&$orderby=createdDateTime desc",
        ];
        let mut checked = 0;
        for ty in [&AGENT_INSTANCE, &AGENT_CARD_MANIFEST, &AGENT_COLLECTION] {
            for text in queries {
                let Ok(q) = crate::odata::QueryOptions::parse(Some(text)) else {
                    panic!("{text}");
                };
                if q.check_shape(ty, &[]).is_err() {
                    continue;
                }
                let lq = ListQuery {
                    criteria: Criteria {
                        filter: q.filter,
                        search: q.search,
                    },
                    order: q.orderby,
                    skip: 3,
                    ..ListQuery::first(10)
                };
                sqlite::check_translation(ty, &lq).unwrap_or_else(|e| panic!("{text}: {e}"));
                postgres::check_translation(ty, &lq).unwrap_or_else(|e| panic!("{text}: {e}"));
                checked += 1;
            }
        }
        assert!(checked >= 12, "{checked}");
    }

    #[test]
    fn side_terms_are_one_value_owner_and_tag_lambdas() {
        use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_INSTANCE};
        let term = |ty, text: &str| {
            let q = query(text);
            side_term(ty, q.criteria.filter.as_ref().unwrap())
        };
        let tag = "skills/any(s: s/tags/any(t: t eq 'x'))";
        assert_eq!(
            term(&AGENT_INSTANCE, "$filter=ownerIds/any(o: o eq 'x')"),
            Some((Side::Owners, "x".into()))
        );
        assert_eq!(
            term(&AGENT_INSTANCE, "$filter=ownerIds/any(o: 'x' eq o)"),
            Some((Side::Owners, "x".into()))
        );
        assert_eq!(
            term(&AGENT_INSTANCE, &format!("$filter=agentCardManifest/{tag}")),
            Some((Side::InstanceTags, "x".into()))
        );
        assert_eq!(
            term(&AGENT_CARD_MANIFEST, &format!("$filter={tag}")),
            Some((Side::ManifestTags, "x".into()))
        );
        for (ty, text) in [
            (&AGENT_INSTANCE, "$filter=ownerIds/any(o: o in ('x', 'y'))"),
            (&AGENT_INSTANCE, "$filter=ownerIds/any(o: o ne 'x')"),
            (&AGENT_INSTANCE, "$filter=ownerIds/all(o: o eq 'x')"),
            (&AGENT_INSTANCE, "$filter=ownerIds/any()"),
            (&AGENT_CARD_MANIFEST, "$filter=skills/any(s: s/id eq 'x')"),
            (
                &AGENT_CARD_MANIFEST,
                "$filter=skills/any(s: s/tags/any(t: startswith(t, 'x')))",
            ),
        ] {
            assert_eq!(term(ty, text), None, "{text}");
        }
    }
}

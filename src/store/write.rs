//! The registry's write path, written once for every backend: each write
//! loads the rows it needs, decides in plain code (with the domain's pure
//! functions) and persists, over [`Rows`], the few row operations a backend
//! implements inside one write transaction. SQLite runs these steps on its
//! writer thread, where they never wait ([`run_now`]); PostgreSQL awaits
//! them inside a transaction that locks what it reads.

use super::read::Reads;
use super::{Entity, StoreError, Stored};
use crate::domain::audit::{Action, Change, Event, Initiator, audit_document};
use crate::domain::schema::{
    AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, AGENT_REGISTRATION,
};
use crate::domain::subscriptions::ChangeType;
use crate::domain::{
    EntityWrite, ManifestChange, RESERVED_COLLECTIONS, WriteContext, apply_patch,
    ensure_registration_owner, ensure_required, new_document, new_id, reserved_collection_document,
};
use serde_json::{Map, Value};

/// The table of each kind of entity, its indexed columns and what its side
/// table mirrors. The entity tables share one shape: key, timestamps,
/// version, document, and the indexed columns of [`Entity::columns`].
impl Entity {
    pub(super) fn table(self) -> &'static str {
        match self {
            Entity::Instance => "agent_instances",
            Entity::Manifest => "agent_card_manifests",
            Entity::Collection => "agent_collections",
            Entity::Registration => "agent_registrations",
            Entity::Package => "copilot_packages",
            Entity::Audit => "directory_audits",
        }
    }

    /// The properties `created_at` and `modified_at` mirror.
    pub(super) fn timestamps(self) -> (&'static str, &'static str) {
        match self {
            Entity::Audit => ("activityDateTime", "activityDateTime"),
            _ => ("createdDateTime", "lastModifiedDateTime"),
        }
    }

    /// The property its side table mirrors (owners of instances and
    /// registrations, skill tags of manifests).
    pub(super) fn side_field(self) -> Option<&'static str> {
        match self {
            Entity::Instance | Entity::Registration => Some("ownerIds"),
            Entity::Manifest => Some("skills"),
            Entity::Package => Some("elementTypes"),
            Entity::Collection | Entity::Audit => None,
        }
    }

    /// Columns mirrored from the document that have indexes, and the
    /// document property each mirrors, in the order of [`Row::columns`].
    pub(super) fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Entity::Registration => &REGISTRATION_COLUMNS,
            Entity::Package => &PACKAGE_COLUMNS,
            Entity::Audit => &AUDIT_COLUMNS,
            _ => &REGISTRY_COLUMNS,
        }
    }

    /// `column = $n, …` or `column, …`: the indexed columns in a statement,
    /// numbered from `first` when `numbered`.
    pub(super) fn column_list(self, first: usize, numbered: bool) -> String {
        let mut out = String::new();
        for (n, (column, _)) in self.columns().iter().enumerate() {
            out.push_str(", ");
            out.push_str(column);
            if numbered {
                out.push_str(&format!(" = ${}", first + n));
            }
        }
        out
    }
}

const REGISTRY_COLUMNS: [(&str, &str); 3] = [
    ("display_name", "displayName"),
    ("managed_by", "managedBy"),
    ("originating_store", "originatingStore"),
];

const REGISTRATION_COLUMNS: [(&str, &str); 5] = [
    ("display_name", "displayName"),
    ("managed_by", "managedByAppId"),
    ("originating_store", "originatingStore"),
    ("source_agent_id", "sourceAgentId"),
    ("agent_identity_id", "agentIdentityId"),
];

/// None: an audit record's filters read its document (an index more would
/// cost every write).
const AUDIT_COLUMNS: [(&str, &str); 0] = [];

const PACKAGE_COLUMNS: [(&str, &str); 3] = [
    ("display_name", "displayName"),
    ("platform", "platform"),
    ("publisher", "publisher"),
];

/// The values of a document's indexed columns, in [`Entity::columns`] order.
pub(super) fn column_values(table: Entity, doc: &Map<String, Value>) -> Vec<Option<&str>> {
    table.columns().iter().map(|(_, p)| text(doc, p)).collect()
}

/// A row loaded for a read-modify-write.
pub(super) struct Row {
    pub doc: Map<String, Value>,
    pub version: i64,
    pub manifest_id: Option<String>,
    /// The link as loaded, so an update that keeps it leaves the instance's
    /// skill tags alone.
    pub loaded_manifest_id: Option<String>,
    /// The value the side table mirrors as loaded, so an update that leaves
    /// it alone does not rewrite the side table.
    pub side: Option<Value>,
    /// The indexed columns as loaded ([`Entity::columns`]), so an update
    /// can rewrite only the index entries of the columns that change.
    pub columns: Vec<Option<String>>,
    /// The document as loaded, for the audit log's old values.
    pub before: Map<String, Value>,
}

impl Row {
    /// A row as read: the stored document, its version, link and columns.
    pub(super) fn loaded(
        table: Entity,
        doc: &str,
        version: i64,
        manifest_id: Option<String>,
        columns: Vec<Option<String>>,
    ) -> Self {
        let doc = match serde_json::from_str(doc) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let side = table.side_field().and_then(|f| doc.get(f).cloned());
        Row {
            before: doc.clone(),
            doc,
            version,
            loaded_manifest_id: manifest_id.clone(),
            manifest_id,
            side,
            columns,
        }
    }
}

/// A string property of a document.
pub(super) fn text<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// The values a table's side table holds for a document: an instance's
/// owners, a manifest's skill tags.
pub(super) fn side_values(table: Entity, doc: &Map<String, Value>) -> Vec<&str> {
    let items = |key: &str| doc.get(key).and_then(Value::as_array).into_iter().flatten();
    match table {
        Entity::Instance | Entity::Registration => {
            items("ownerIds").filter_map(Value::as_str).collect()
        }
        Entity::Manifest => items("skills")
            .filter_map(|s| s.get("tags")?.as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
        Entity::Package => items("elementTypes").filter_map(Value::as_str).collect(),
        Entity::Collection | Entity::Audit => Vec::new(),
    }
}

/// The row operations a backend carries out inside the current write
/// transaction, besides the reads ([`Reads`]: `exists` holds what it finds).
pub(super) trait Rows: Reads {
    /// What the write has changed so far, written to the change log and the
    /// audit log when it is done ([`record_changes`]).
    fn changes(&mut self) -> &mut Vec<Change>;
    /// Appends an entity's change, made at `at`, to the change log (what
    /// delta queries read).
    async fn log_change(
        &mut self,
        tenant: &str,
        table: Entity,
        id: &str,
        change: ChangeType,
        at: &str,
    ) -> Result<(), Self::Error>;
    /// The row, held until the transaction ends (PostgreSQL locks it).
    async fn row(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Row>, Self::Error>;
    /// Inserts the row of a complete document at version 1 (and an
    /// instance's manifest link); `None` when the id is taken and `if_new`,
    /// else a taken id is `AlreadyExists`.
    async fn insert(
        &mut self,
        table: Entity,
        tenant: &str,
        doc: &Map<String, Value>,
        manifest_id: Option<&str>,
        if_new: bool,
    ) -> Result<Option<Stored>, Self::Error>;
    /// Writes the row's document, columns and link at the next version.
    async fn update(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        row: &Row,
    ) -> Result<Stored, Self::Error>;
    /// The id of a row whose indexed `column` holds `value`, if any.
    async fn id_where(
        &mut self,
        table: Entity,
        tenant: &str,
        column: &'static str,
        value: &str,
    ) -> Result<Option<String>, Self::Error>;
    /// Appends an audit record (`doc`, its JSON text) made at `at`.
    async fn insert_audit(
        &mut self,
        tenant: &str,
        id: &str,
        at: &str,
        doc: &str,
    ) -> Result<(), Self::Error>;
    /// Deletes the audit records and change log rows (of every tenant)
    /// made before `before`.
    async fn prune(&mut self, before: &str) -> Result<(), Self::Error>;
    /// Deletes the row; false when there was none.
    async fn delete(&mut self, table: Entity, tenant: &str, id: &str) -> Result<bool, Self::Error>;
    /// Deletes what hangs off a deleted row: side-table rows, memberships.
    async fn delete_dependents(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<(), Self::Error>;
    /// Replaces the side-table rows of an entity with `values`.
    async fn set_side_values(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        values: &[&str],
    ) -> Result<(), Self::Error>;
    /// Gives an instance the skill tags of the manifest it links (none if none).
    async fn link_instance_tags(
        &mut self,
        tenant: &str,
        instance: &str,
        manifest: Option<&str>,
    ) -> Result<(), Self::Error>;
    /// Gives every instance that links a manifest the manifest's skill tags.
    async fn relink_manifest_tags(
        &mut self,
        tenant: &str,
        manifest: &str,
    ) -> Result<(), Self::Error>;
    /// How many instances link a manifest.
    async fn instances_linking(&mut self, tenant: &str, manifest: &str)
    -> Result<u64, Self::Error>;
    /// Adds a membership; false when it existed.
    async fn insert_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, Self::Error>;
    /// Removes a membership; false when there was none.
    async fn delete_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, Self::Error>;
}

/// Runs steps that never wait (SQLite's, on the writer thread) to the end.
pub(super) fn run_now<T>(steps: impl std::future::Future<Output = T>) -> T {
    let mut steps = std::pin::pin!(steps);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match steps.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => unreachable!("a step that never waits waited"),
    }
}

pub(super) fn not_found(kind: Entity, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

/// Refuses a write whose expected version (`if_match`) is not `actual`.
pub(super) fn ensure_version(
    kind: Entity,
    id: &str,
    actual: i64,
    if_match: Option<i64>,
) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if expected != actual => Err(StoreError::PreconditionFailed {
            kind,
            id: id.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Inserts an entity with its side-table rows and, for an instance that
/// links a manifest, the manifest's skill tags.
pub(super) async fn insert_entity<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    doc: &Map<String, Value>,
    manifest_id: Option<&str>,
    if_new: bool,
) -> Result<Option<Stored>, R::Error> {
    let Some(stored) = r.insert(table, tenant, doc, manifest_id, if_new).await? else {
        return Ok(None);
    };
    r.changes().push(Change::created(table, doc));
    if table.side_field().is_some() {
        let values = side_values(table, doc);
        r.set_side_values(table, tenant, &stored.id, &values)
            .await?;
    }
    if manifest_id.is_some() {
        r.link_instance_tags(tenant, &stored.id, manifest_id)
            .await?;
    }
    Ok(Some(stored))
}

async fn insert_new<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    doc: &Map<String, Value>,
    manifest_id: Option<&str>,
) -> Result<Stored, R::Error> {
    match insert_entity(r, table, tenant, doc, manifest_id, false).await? {
        Some(stored) => Ok(stored),
        None => Err(StoreError::AlreadyExists {
            kind: table,
            id: text(doc, "id").unwrap_or_default().to_owned(),
        }
        .into()),
    }
}

/// Writes a changed row, and its side-table rows and skill tags when what
/// they mirror changed.
async fn update_entity<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    id: &str,
    row: &Row,
) -> Result<Stored, R::Error> {
    let stored = r.update(table, tenant, id, row).await?;
    let mut change = Change::updated(table, &row.before, &row.doc);
    if row.manifest_id != row.loaded_manifest_id {
        // The link is a column, not a property: recorded as its navigation.
        let id = |m: &Option<String>| m.clone().map(Value::String);
        change.modified.push((
            "agentCardManifest".into(),
            id(&row.loaded_manifest_id),
            id(&row.manifest_id),
        ));
    }
    r.changes().push(change);
    if table
        .side_field()
        .is_some_and(|f| row.doc.get(f) != row.side.as_ref())
    {
        let values = side_values(table, &row.doc);
        r.set_side_values(table, tenant, id, &values).await?;
        if table == Entity::Manifest {
            r.relink_manifest_tags(tenant, id).await?;
        }
    }
    if table == Entity::Instance && row.manifest_id != row.loaded_manifest_id {
        r.link_instance_tags(tenant, id, row.manifest_id.as_deref())
            .await?;
    }
    Ok(stored)
}

/// Deletes an entity and what hangs off it; `NotFound` when it is missing
/// or out of the write's scope, `PreconditionFailed` when its version is
/// not the expected one. The row goes first: its lock makes a concurrent
/// writer adding a dependent row finish before the dependents are deleted.
async fn delete_entity<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    if ctx.if_match.is_some() || ctx.scope.restricted(table).is_some() {
        row_to_write(r, table, tenant, id, ctx).await?;
    }
    if !r.delete(table, tenant, id).await? {
        return Err(not_found(table, id).into());
    }
    r.changes().push(Change::deleted(table, id));
    r.delete_dependents(table, tenant, id).await
}

/// Loads a row to write: one the write's scope may touch (else it is
/// absent), at the version the write expects.
async fn row_to_write<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<Row, R::Error> {
    let row = r
        .row(table, tenant, id)
        .await?
        .filter(|row| ctx.scope.allows(table, &row.doc))
        .ok_or_else(|| not_found(table, id))?;
    ensure_version(table, id, row.version, ctx.if_match)?;
    Ok(row)
}

/// Whether a row the write must not change exists and is in its scope;
/// held until the transaction ends either way.
async fn in_scope<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<bool, R::Error> {
    if ctx.scope.restricted(table).is_none() {
        return r.exists(table, tenant, id, true).await;
    }
    Ok(r.row(table, tenant, id)
        .await?
        .is_some_and(|row| ctx.scope.allows(table, &row.doc)))
}

/// Creates a manifest from a nested or direct create body.
async fn create_manifest_row<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    ensure_required(&AGENT_CARD_MANIFEST, &write.props).map_err(StoreError::from)?;
    let doc = new_document(&AGENT_CARD_MANIFEST, id, &write.props, ctx);
    insert_new(r, Entity::Manifest, tenant, &doc, None).await
}

/// Carries out an instance write's `agentCardManifest` part; returns the new link.
async fn apply_manifest_change<R: Rows>(
    r: &mut R,
    tenant: &str,
    current: Option<String>,
    change: &ManifestChange,
    ctx: &WriteContext,
) -> Result<Option<String>, R::Error> {
    match change {
        ManifestChange::Unlink => Ok(None),
        ManifestChange::Bind(id) => {
            // Held: the manifest cannot be deleted before this commits.
            if !in_scope(r, Entity::Manifest, tenant, id, ctx).await? {
                return Err(not_found(Entity::Manifest, id).into());
            }
            Ok(Some(id.clone()))
        }
        ManifestChange::Upsert(nested) => {
            if let Some(id) = current
                && let Some(mut row) = r.row(Entity::Manifest, tenant, &id).await?
            {
                if !ctx.scope.allows(Entity::Manifest, &row.doc) {
                    return Err(not_found(Entity::Manifest, &id).into());
                }
                let mut props = nested.props.clone();
                ctx.scope
                    .claim(Entity::Manifest, &mut props, false)
                    .map_err(StoreError::from)?;
                apply_patch(&mut row.doc, &props, ctx);
                update_entity(r, Entity::Manifest, tenant, &id, &row).await?;
                return Ok(Some(id));
            }
            let mut nested = nested.as_ref().clone();
            ctx.scope
                .claim(Entity::Manifest, &mut nested.props, true)
                .map_err(StoreError::from)?;
            let id = nested.id.clone().unwrap_or_else(new_id);
            create_manifest_row(r, tenant, &id, &nested, ctx).await?;
            Ok(Some(id))
        }
    }
}

pub(super) async fn create_instance<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    if r.exists(Entity::Instance, tenant, id, false).await? {
        return Err(StoreError::AlreadyExists {
            kind: Entity::Instance,
            id: id.to_owned(),
        }
        .into());
    }
    let link = match &write.manifest {
        Some(change) => apply_manifest_change(r, tenant, None, change, ctx).await?,
        None => None,
    };
    let doc = new_document(&AGENT_INSTANCE, id, &write.props, ctx);
    insert_new(r, Entity::Instance, tenant, &doc, link.as_deref()).await
}

pub(super) async fn update_instance<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    let mut row = row_to_write(r, Entity::Instance, tenant, id, ctx).await?;
    if let Some(change) = &write.manifest {
        row.manifest_id =
            apply_manifest_change(r, tenant, row.manifest_id.take(), change, ctx).await?;
    }
    apply_patch(&mut row.doc, &write.props, ctx);
    update_entity(r, Entity::Instance, tenant, id, &row).await
}

/// A PATCH of an entity without links: merged into the row as stored.
pub(super) async fn update_plain<R: Rows>(
    r: &mut R,
    table: Entity,
    tenant: &str,
    id: &str,
    props: &Map<String, Value>,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    let mut row = row_to_write(r, table, tenant, id, ctx).await?;
    apply_patch(&mut row.doc, props, ctx);
    if table == Entity::Registration {
        if props.contains_key("agentCard") {
            check_card(&mut row.doc, ctx).map_err(StoreError::from)?;
        }
        ensure_registration_owner(&row.doc).map_err(StoreError::from)?;
        ensure_source_agent_free(r, tenant, id, &row.doc).await?;
    }
    update_entity(r, table, tenant, id, &row).await
}

/// Checks a registration's A2A card and its signatures as the write's
/// context says (annotating the document, or refusing the card).
fn check_card(
    doc: &mut Map<String, Value>,
    ctx: &WriteContext,
) -> Result<(), crate::domain::DomainError> {
    use crate::domain::a2a;
    a2a::check_registration_card(doc, ctx.card_validation)?;
    a2a::check_registration_signatures(doc, ctx.card_signatures.as_deref(), &ctx.now)
}

/// Creates an agent registration, whose `sourceAgentId` no other
/// registration of the tenant may hold.
pub(super) async fn create_registration<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    let mut doc = new_document(&AGENT_REGISTRATION, id, &write.props, ctx);
    check_card(&mut doc, ctx).map_err(StoreError::from)?;
    ensure_registration_owner(&doc).map_err(StoreError::from)?;
    ensure_source_agent_free(r, tenant, id, &doc).await?;
    insert_new(r, Entity::Registration, tenant, &doc, None).await
}

/// Refuses a registration document whose `sourceAgentId` another
/// registration (not `id`) holds. The unique index behind the lookup keeps
/// it true under concurrent writers too.
pub(super) async fn ensure_source_agent_free<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    doc: &Map<String, Value>,
) -> Result<(), R::Error> {
    let Some(source) = text(doc, "sourceAgentId") else {
        return Ok(());
    };
    match r
        .id_where(Entity::Registration, tenant, "source_agent_id", source)
        .await?
    {
        Some(existing) if existing != id => Err(StoreError::SourceAgentIdTaken {
            source_agent_id: source.to_owned(),
            existing,
        }
        .into()),
        _ => Ok(()),
    }
}

pub(super) async fn delete_instance<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    delete_entity(r, Entity::Instance, tenant, id, ctx).await
}

pub(super) async fn create_manifest<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    create_manifest_row(r, tenant, id, write, ctx).await
}

/// Deletes a manifest no instance links.
pub(super) async fn delete_manifest<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    // Held first: an instance being linked to it commits before the count
    // below, which then sees it.
    row_to_write(r, Entity::Manifest, tenant, id, ctx).await?;
    let linked = r.instances_linking(tenant, id).await?;
    if linked > 0 {
        return Err(StoreError::ManifestInUse {
            id: id.to_owned(),
            instances: linked,
        }
        .into());
    }
    let unconditional = WriteContext {
        if_match: None,
        scope: Default::default(),
        ..ctx.clone()
    };
    delete_entity(r, Entity::Manifest, tenant, id, &unconditional).await
}

pub(super) async fn create_collection<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, R::Error> {
    let doc = new_document(&AGENT_COLLECTION, id, &write.props, ctx);
    insert_new(r, Entity::Collection, tenant, &doc, None).await
}

pub(super) async fn delete_collection<R: Rows>(
    r: &mut R,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    delete_entity(r, Entity::Collection, tenant, id, ctx).await
}

/// Adds an instance to a collection, both in the write's scope.
pub(super) async fn add_member<R: Rows>(
    r: &mut R,
    tenant: &str,
    collection: &str,
    instance: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    // Held: neither side can be deleted before this commits.
    if !in_scope(r, Entity::Collection, tenant, collection, ctx).await? {
        return Err(not_found(Entity::Collection, collection).into());
    }
    if !in_scope(r, Entity::Instance, tenant, instance, ctx).await? {
        return Err(not_found(Entity::Instance, instance).into());
    }
    if !r.insert_member(tenant, collection, instance).await? {
        return Err(StoreError::AlreadyMember {
            collection: collection.to_owned(),
            instance: instance.to_owned(),
        }
        .into());
    }
    r.changes()
        .push(Change::membership(collection, instance, true));
    Ok(())
}

/// Removes an instance from a collection in the write's scope.
pub(super) async fn remove_member<R: Rows>(
    r: &mut R,
    tenant: &str,
    collection: &str,
    instance: &str,
    ctx: &WriteContext,
) -> Result<(), R::Error> {
    if ctx.scope.restricted(Entity::Collection).is_some()
        && !in_scope(r, Entity::Collection, tenant, collection, ctx).await?
    {
        return Err(not_found(Entity::Collection, collection).into());
    }
    if r.delete_member(tenant, collection, instance).await? {
        r.changes()
            .push(Change::membership(collection, instance, false));
        return Ok(());
    }
    if !r
        .exists(Entity::Collection, tenant, collection, false)
        .await?
    {
        return Err(not_found(Entity::Collection, collection).into());
    }
    Err(StoreError::NotMember {
        collection: collection.to_owned(),
        instance: instance.to_owned(),
    }
    .into())
}

/// Stores the tenant's Global and Quarantined collections where missing
/// (another writer may store them meanwhile: an id taken is left alone).
pub(super) async fn ensure_reserved<R: Rows>(
    r: &mut R,
    tenant: &str,
    now: &str,
) -> Result<(), R::Error> {
    for c in &RESERVED_COLLECTIONS {
        if !r.exists(Entity::Collection, tenant, c.id, false).await? {
            let doc = reserved_collection_document(c, now);
            insert_entity(r, Entity::Collection, tenant, &doc, None, true).await?;
        }
    }
    Ok(())
}

/// One registry write as data: what the engine hands a backend to run as
/// one transaction (see [`apply`]).
#[derive(Debug, Clone)]
pub enum Write {
    CreateInstance {
        tenant: String,
        id: String,
        write: EntityWrite,
        ctx: WriteContext,
    },
    UpdateInstance {
        tenant: String,
        id: String,
        write: EntityWrite,
        ctx: WriteContext,
    },
    CreateManifest {
        tenant: String,
        id: String,
        write: EntityWrite,
        ctx: WriteContext,
    },
    CreateCollection {
        tenant: String,
        id: String,
        write: EntityWrite,
        ctx: WriteContext,
    },
    CreateRegistration {
        tenant: String,
        id: String,
        write: EntityWrite,
        ctx: WriteContext,
    },
    /// A package as the control plane loads it: a complete document.
    CreatePackage {
        tenant: String,
        doc: Map<String, Value>,
        ctx: WriteContext,
    },
    /// A PATCH of a manifest or a collection.
    UpdatePlain {
        table: Entity,
        tenant: String,
        id: String,
        props: Map<String, Value>,
        ctx: WriteContext,
    },
    Delete {
        table: Entity,
        tenant: String,
        id: String,
        ctx: WriteContext,
    },
    AddMember {
        tenant: String,
        collection: String,
        instance: String,
        ctx: WriteContext,
    },
    RemoveMember {
        tenant: String,
        collection: String,
        instance: String,
        ctx: WriteContext,
    },
    EnsureReserved {
        tenant: String,
        now: String,
    },
    /// An audit record of something that is not a registry write (a
    /// Copilot or control-plane action, a refused write).
    Record {
        tenant: String,
        event: Event,
        ctx: WriteContext,
    },
    /// Deletes the audit records made before `before` (every tenant's).
    PruneAuditLog {
        before: String,
    },
}

/// What a write gives back: the entity it wrote, or nothing.
#[derive(Debug)]
pub enum Written {
    Entity(Stored),
    Done,
}

impl Write {
    /// A PATCH that may change nothing but its own row (and append its
    /// audit record and change-log row): what a backend may carry out
    /// ahead of its write transaction, guarded by the version it read. Not
    /// one that links a manifest, or sets what a side table mirrors (an
    /// instance's owners, a manifest's skills), or a registration's, which
    /// checks its `sourceAgentId` is free.
    pub(super) fn is_row_patch(&self) -> bool {
        let (table, props) = match self {
            Write::UpdateInstance { write, .. } if write.manifest.is_none() => {
                (Entity::Instance, &write.props)
            }
            Write::UpdatePlain { table, props, .. } if *table != Entity::Registration => {
                (*table, props)
            }
            _ => return false,
        };
        table.side_field().is_none_or(|f| !props.contains_key(f))
    }

    fn tenant(&self) -> &str {
        match self {
            Write::CreateInstance { tenant, .. }
            | Write::UpdateInstance { tenant, .. }
            | Write::CreateManifest { tenant, .. }
            | Write::CreateCollection { tenant, .. }
            | Write::CreateRegistration { tenant, .. }
            | Write::CreatePackage { tenant, .. }
            | Write::UpdatePlain { tenant, .. }
            | Write::Delete { tenant, .. }
            | Write::AddMember { tenant, .. }
            | Write::RemoveMember { tenant, .. }
            | Write::EnsureReserved { tenant, .. }
            | Write::Record { tenant, .. } => tenant,
            Write::PruneAuditLog { .. } => "",
        }
    }

    /// When, and by whom (`None`: the service), the write is made.
    fn made(&self) -> (&str, Option<&Initiator>) {
        match self {
            Write::CreateInstance { ctx, .. }
            | Write::UpdateInstance { ctx, .. }
            | Write::CreateManifest { ctx, .. }
            | Write::CreateCollection { ctx, .. }
            | Write::CreateRegistration { ctx, .. }
            | Write::CreatePackage { ctx, .. }
            | Write::UpdatePlain { ctx, .. }
            | Write::Delete { ctx, .. }
            | Write::AddMember { ctx, .. }
            | Write::RemoveMember { ctx, .. }
            | Write::Record { ctx, .. } => (&ctx.now, ctx.initiator.as_deref()),
            Write::EnsureReserved { now, .. } | Write::PruneAuditLog { before: now } => (now, None),
        }
    }
}

/// Runs one write over a backend's rows, then records what it changed in
/// the change log and the audit log, in the same transaction.
pub(super) async fn apply<R: Rows>(r: &mut R, op: &Write) -> Result<Written, R::Error> {
    r.changes().clear();
    let written = carry_out(r, op).await?;
    let (now, initiator) = op.made();
    record_changes(r, op.tenant(), now, initiator, true).await?;
    Ok(written)
}

/// Writes the changes recorded since the last call: a change log row for
/// each entity changed (not for memberships, which no entity's properties
/// hold) and, when `audit`, an audit record for each.
pub(super) async fn record_changes<R: Rows>(
    r: &mut R,
    tenant: &str,
    now: &str,
    initiator: Option<&Initiator>,
    audit: bool,
) -> Result<(), R::Error> {
    let changes = std::mem::take(r.changes());
    for change in &changes {
        let logged = match change.action {
            Action::Create => Some(ChangeType::Created),
            Action::Update => Some(ChangeType::Updated),
            Action::Delete => Some(ChangeType::Deleted),
            Action::AddMember | Action::RemoveMember => None,
        };
        if let Some(logged) = logged {
            r.log_change(tenant, change.kind, &change.id, logged, now)
                .await?;
        }
        if audit {
            record_event(r, tenant, now, initiator, &change.event()).await?;
        }
    }
    Ok(())
}

/// Writes an audit record of `event`, made at `now` by `initiator` (`None`:
/// the service itself).
pub(super) async fn record_event<R: Rows>(
    r: &mut R,
    tenant: &str,
    now: &str,
    initiator: Option<&Initiator>,
    event: &Event,
) -> Result<(), R::Error> {
    let service = Initiator::default();
    let id = crate::domain::new_id();
    let doc = audit_document(&id, now, event, initiator.unwrap_or(&service));
    r.insert_audit(tenant, &id, now, &doc).await
}

async fn carry_out<R: Rows>(r: &mut R, op: &Write) -> Result<Written, R::Error> {
    use Written::{Done, Entity as Saved};
    Ok(match op {
        Write::CreateInstance {
            tenant,
            id,
            write,
            ctx,
        } => Saved(create_instance(r, tenant, id, write, ctx).await?),
        Write::UpdateInstance {
            tenant,
            id,
            write,
            ctx,
        } => Saved(update_instance(r, tenant, id, write, ctx).await?),
        Write::CreateManifest {
            tenant,
            id,
            write,
            ctx,
        } => Saved(create_manifest(r, tenant, id, write, ctx).await?),
        Write::CreateCollection {
            tenant,
            id,
            write,
            ctx,
        } => Saved(create_collection(r, tenant, id, write, ctx).await?),
        Write::CreateRegistration {
            tenant,
            id,
            write,
            ctx,
        } => Saved(create_registration(r, tenant, id, write, ctx).await?),
        Write::CreatePackage { tenant, doc, .. } => {
            Saved(insert_new(r, Entity::Package, tenant, doc, None).await?)
        }
        Write::UpdatePlain {
            table,
            tenant,
            id,
            props,
            ctx,
        } => Saved(update_plain(r, *table, tenant, id, props, ctx).await?),
        Write::Delete {
            table: Entity::Instance,
            tenant,
            id,
            ctx,
        } => {
            delete_instance(r, tenant, id, ctx).await?;
            Done
        }
        Write::Delete {
            table: Entity::Manifest,
            tenant,
            id,
            ctx,
        } => {
            delete_manifest(r, tenant, id, ctx).await?;
            Done
        }
        Write::Delete {
            table: Entity::Collection,
            tenant,
            id,
            ctx,
        } => {
            delete_collection(r, tenant, id, ctx).await?;
            Done
        }
        Write::Delete {
            table: table @ (Entity::Registration | Entity::Package | Entity::Audit),
            tenant,
            id,
            ctx,
        } => {
            delete_entity(r, *table, tenant, id, ctx).await?;
            Done
        }
        Write::AddMember {
            tenant,
            collection,
            instance,
            ctx,
        } => {
            add_member(r, tenant, collection, instance, ctx).await?;
            Done
        }
        Write::RemoveMember {
            tenant,
            collection,
            instance,
            ctx,
        } => {
            remove_member(r, tenant, collection, instance, ctx).await?;
            Done
        }
        Write::EnsureReserved { tenant, now } => {
            ensure_reserved(r, tenant, now).await?;
            Done
        }
        Write::Record { tenant, event, ctx } => {
            record_event(r, tenant, &ctx.now, ctx.initiator.as_deref(), event).await?;
            Done
        }
        Write::PruneAuditLog { before } => {
            r.prune(before).await?;
            Done
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Write;
    use crate::domain::{EntityWrite, ManifestChange, WriteContext};
    use crate::store::Entity;
    use serde_json::{Map, Value, json};

    fn props(body: Value) -> Map<String, Value> {
        match body {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        }
    }

    fn instance_patch(body: Value, manifest: Option<ManifestChange>) -> Write {
        Write::UpdateInstance {
            tenant: "t".into(),
            id: "i".into(),
            write: EntityWrite {
                id: None,
                props: props(body),
                manifest,
            },
            ctx: WriteContext::default(),
        }
    }

    fn plain_patch(table: Entity, body: Value) -> Write {
        Write::UpdatePlain {
            table,
            tenant: "t".into(),
            id: "x".into(),
            props: props(body),
            ctx: WriteContext::default(),
        }
    }

    #[test]
    fn only_patches_that_change_nothing_but_their_row_are_row_patches() {
        let cases = [
            (instance_patch(json!({"displayName": "n"}), None), true),
            (instance_patch(json!({"ownerIds": ["o"]}), None), false),
            (
                instance_patch(json!({"displayName": "n"}), Some(ManifestChange::Unlink)),
                false,
            ),
            (
                plain_patch(Entity::Manifest, json!({"description": "d"})),
                true,
            ),
            (plain_patch(Entity::Manifest, json!({"skills": []})), false),
            (
                plain_patch(Entity::Collection, json!({"displayName": "c"})),
                true,
            ),
            (
                plain_patch(Entity::Registration, json!({"displayName": "r"})),
                false,
            ),
            (
                Write::Delete {
                    table: Entity::Instance,
                    tenant: "t".into(),
                    id: "i".into(),
                    ctx: WriteContext::default(),
                },
                false,
            ),
        ];
        for (write, expected) in cases {
            assert_eq!(write.is_row_patch(), expected, "{write:?}");
        }
    }
}

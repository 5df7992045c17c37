//! `agentInstances`: create, read, update (nested manifest or bind), delete,
//! and the `agentCardManifest` and `collections` navigations.

use super::sets::Set;
use super::{
    ListRequest, Result, claim_managed_by, count_criteria, created, entity_response,
    expected_version, missing, require, single, updated, visible, write_context,
};
use crate::auth::Principal;
use crate::auth::permissions::{Action, Grant, authorize};
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use crate::domain::{self, EntityWrite, ManifestChange, WriteContext, parse_write};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta, ODataQuery, PreferRepresentation};
use crate::http::respond;
use crate::store::{Entity, Relation, Stored};
use axum::extract::State;
use serde_json::Map;

/// `agentInstances` for the shared handlers ([`super::sets`]).
pub(super) struct Instances;

impl Set for Instances {
    const ENTITY: Entity = Entity::Instance;
    const LIST: Action = Action::ListInstances;
    const GET: Action = Action::GetInstance;
    const DELETE: Action = Action::DeleteInstance;
}

/// Adds what a nested manifest or a bind needs to the grant. What a
/// restricted (`ManagedBy`) caller may do with the manifest is checked by
/// the store inside the write (`domain::Scope`).
fn authorize_manifest_part(p: &Principal, write: &EntityWrite, grant: Grant) -> Result<Grant> {
    Ok(match &write.manifest {
        Some(ManifestChange::Upsert(_)) => grant.and(authorize(p, Action::WriteNestedManifest)?),
        Some(ManifestChange::Bind(_)) => grant.and(authorize(p, Action::BindManifest)?),
        Some(ManifestChange::Unlink) | None => grant,
    })
}

pub(super) async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::CreateInstance)?;
    let mut write = parse_write(&AGENT_INSTANCE, body, true)?;
    claim_managed_by(&grant, Entity::Instance, &mut write.props, true)?;
    let grant = authorize_manifest_part(&p, &write, grant)?;
    let create_only = cond.create_only()?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let result = app
        .store()
        .create_instance(&p.tenant_id, &id, write, &write_context(&app, &p, &grant))
        .await;
    let stored = etag::refuse_existing(create_only, result, Entity::Instance, &id)?;
    created(&meta, &AGENT_INSTANCE, stored)
}

pub(super) async fn update(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    PreferRepresentation(prefer): PreferRepresentation,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdateInstance)?;
    let mut write = parse_write(&AGENT_INSTANCE, body, false)?;
    claim_managed_by(&grant, Entity::Instance, &mut write.props, false)?;
    let grant = authorize_manifest_part(&p, &write, grant)?;
    let current = require(&app, &p, &grant, Entity::Instance, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, Entity::Instance, current).await?,
        ..write_context(&app, &p, &grant)
    };
    let stored = app
        .store()
        .update_instance(&p.tenant_id, &id, write, &ctx)
        .await?;
    updated(&meta, &AGENT_INSTANCE, prefer, stored)
}

/// The linked manifest, both objects visible to the caller.
async fn linked_manifest(app: &AppState, p: &Principal, grant: &Grant, id: &str) -> Result<Stored> {
    if grant.restricted(Entity::Instance).is_some() {
        require(app, p, grant, Entity::Instance, id).await?;
    }
    let manifest = app
        .store()
        .get_instance_manifest(&p.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::ManifestNotLinked(id.to_owned()))?;
    let mid = manifest.id.clone();
    visible(grant, Entity::Manifest, Some(manifest), &mid)
}

pub(super) async fn get_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::GetInstanceManifest)?;
    single(&q, &AGENT_CARD_MANIFEST)?;
    let manifest = linked_manifest(&app, &p, &grant, &id).await?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_CARD_MANIFEST,
        &q.options,
        manifest,
    )
    .await
}

pub(super) async fn update_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdateInstanceManifest)?;
    let mut write = parse_write(&AGENT_CARD_MANIFEST, body, false)?;
    claim_managed_by(&grant, Entity::Manifest, &mut write.props, false)?;
    let manifest = linked_manifest(&app, &p, &grant, &id).await?;
    // The conditions name the manifest this path leads to.
    let ctx = WriteContext {
        if_match: cond.expected_version(&manifest, Entity::Manifest)?,
        ..write_context(&app, &p, &grant)
    };
    let stored = app
        .store()
        .update_manifest(&p.tenant_id, &manifest.id, write.props, &ctx)
        .await?;
    updated(&meta, &AGENT_CARD_MANIFEST, true, stored)
}

/// Unlinks the manifest; the manifest itself stays. Conditional headers are
/// checked against the linked manifest, which the unlink leaves unchanged.
pub(super) async fn unlink_manifest(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
) -> Result {
    let grant = authorize(&p, Action::UnlinkInstanceManifest)?;
    if grant.restricted(Entity::Instance).is_some() {
        require(&app, &p, &grant, Entity::Instance, &id).await?;
    }
    let Some(manifest) = app.store().get_instance_manifest(&p.tenant_id, &id).await? else {
        return Err(ApiError::ManifestNotLinked(id));
    };
    cond.expected_version(&manifest, Entity::Manifest)?;
    let write = EntityWrite {
        id: None,
        props: Map::new(),
        manifest: Some(ManifestChange::Unlink),
    };
    app.store()
        .update_instance(&p.tenant_id, &id, write, &write_context(&app, &p, &grant))
        .await?;
    Ok(respond::no_content())
}

pub(super) async fn list_collections(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::ListInstanceCollections)?;
    if grant.restricted(Entity::Instance).is_some() {
        require(&app, &p, &grant, Entity::Instance, &id).await?;
    }
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_COLLECTION,
        restrict: None,
        summary: None,
        newest_first: false,
    };
    list.run(Relation::CollectionsOf(&id)).await
}

pub(super) async fn count_collections(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::ListInstanceCollections)?;
    if grant.restricted(Entity::Instance).is_some() {
        require(&app, &p, &grant, Entity::Instance, &id).await?;
    }
    let criteria = count_criteria(&q, &AGENT_COLLECTION, None)?;
    Ok(respond::count(
        app.store()
            .count_entities(
                Entity::Collection,
                &p.tenant_id,
                Relation::CollectionsOf(&id),
                &criteria,
            )
            .await?,
    ))
}

pub(super) async fn get_collection(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::ListInstanceCollections)?;
    single(&q, &AGENT_COLLECTION)?;
    require(&app, &p, &grant, Entity::Instance, &id).await?;
    let collection = app
        .store()
        .get_entity(Entity::Collection, &p.tenant_id, &cid)
        .await?
        .ok_or_else(|| missing(Entity::Collection, &cid))?;
    if !app.store().is_member(&p.tenant_id, &cid, &id).await? {
        return Err(ApiError::NotInCollection {
            instance: id,
            collection: cid,
        });
    }
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_COLLECTION,
        &q.options,
        collection,
    )
    .await
}

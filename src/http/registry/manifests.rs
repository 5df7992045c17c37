//! `agentCardManifests`: Graph's list, get and update, plus the create and
//! delete Agentry adds (Graph creates manifests only through an instance).

use super::{
    ListRequest, Result, claim_managed_by, count_criteria, created, entity_response,
    expected_version, managed_filter, single, updated, visible, write_context,
};
use crate::auth::Principal;
use crate::auth::permissions::{Action, Grant, authorize};
use crate::domain::schema::AGENT_CARD_MANIFEST;
use crate::domain::{self, WriteContext, parse_write};
use crate::http::AppState;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta, ODataQuery};
use crate::http::respond;
use crate::store::{Entity, Relation, Stored};
use axum::extract::State;

async fn require(app: &AppState, p: &Principal, grant: &Grant, id: &str) -> Result<Stored> {
    let stored = app.store().get_manifest(&p.tenant_id, id).await?;
    visible(grant, Entity::Manifest, stored, id)
}

pub(super) async fn list(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::ListManifests)?;
    let restrict = managed_filter(&grant, Entity::Manifest);
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_CARD_MANIFEST,
        restrict,
    };
    list.run(Relation::All).await
}

pub(super) async fn count(State(app): State<AppState>, Caller(p): Caller, q: ODataQuery) -> Result {
    let grant = authorize(&p, Action::ListManifests)?;
    let criteria = count_criteria(
        &q,
        &AGENT_CARD_MANIFEST,
        managed_filter(&grant, Entity::Manifest),
    )?;
    Ok(respond::count(
        app.store().count_manifests(&p.tenant_id, &criteria).await?,
    ))
}

/// Beyond Graph (which creates manifests only through an instance).
pub(super) async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::CreateManifest)?;
    let mut write = parse_write(&AGENT_CARD_MANIFEST, body, true)?;
    claim_managed_by(&grant, Entity::Manifest, &mut write.props, true)?;
    let create_only = cond.create_only()?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let result = app
        .store()
        .create_manifest(&p.tenant_id, &id, write, &write_context(&app, &p, &grant))
        .await;
    let stored = etag::refuse_existing(create_only, result, Entity::Manifest, &id)?;
    created(&meta, &AGENT_CARD_MANIFEST, stored)
}

pub(super) async fn get_one(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let grant = authorize(&p, Action::GetManifest)?;
    single(&q, &AGENT_CARD_MANIFEST)?;
    let stored = require(&app, &p, &grant, &id).await?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_CARD_MANIFEST,
        &q.options,
        stored,
    )
    .await
}

/// Graph answers a manifest PATCH with 200 and the updated manifest.
pub(super) async fn update(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdateManifest)?;
    let mut write = parse_write(&AGENT_CARD_MANIFEST, body, false)?;
    claim_managed_by(&grant, Entity::Manifest, &mut write.props, false)?;
    let current = require(&app, &p, &grant, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, Entity::Manifest, current).await?,
        ..write_context(&app, &p, &grant)
    };
    let stored = app
        .store()
        .update_manifest(&p.tenant_id, &id, write.props, &ctx)
        .await?;
    updated(&meta, &AGENT_CARD_MANIFEST, true, stored)
}

/// Beyond Graph; refused while instances still link to the manifest.
pub(super) async fn remove(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
) -> Result {
    let grant = authorize(&p, Action::DeleteManifest)?;
    let current = require(&app, &p, &grant, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, Entity::Manifest, current).await?,
        ..write_context(&app, &p, &grant)
    };
    app.store().delete_manifest(&p.tenant_id, &id, &ctx).await?;
    Ok(respond::no_content())
}

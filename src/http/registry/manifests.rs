//! `agentCardManifests`: Graph's list, get and update, plus the create and
//! delete Agentry adds (Graph creates manifests only through an instance).

use super::sets::Set;
use super::{Result, claim_managed_by, created, expected_version, require, updated, write_context};
use crate::auth::permissions::{Action, authorize};
use crate::domain::schema::AGENT_CARD_MANIFEST;
use crate::domain::{self, WriteContext, parse_write};
use crate::http::AppState;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta};
use crate::store::Entity;
use axum::extract::State;

/// `agentCardManifests` for the shared handlers ([`super::sets`]). The
/// delete is beyond Graph, and refused while instances link the manifest.
pub(super) struct Manifests;

impl Set for Manifests {
    const ENTITY: Entity = Entity::Manifest;
    const LIST: Action = Action::ListManifests;
    const GET: Action = Action::GetManifest;
    const DELETE: Action = Action::DeleteManifest;
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
    let current = require(&app, &p, &grant, Entity::Manifest, &id);
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

//! `/beta/copilot/agentRegistrations`, the Agent 365 successor of agent
//! instances: Graph's create, get, update and delete, plus the list and
//! `$count` the SDKs describe. List, `$count`, get and delete are the shared
//! handlers ([`super::sets`]); the rules particular to registrations (owners
//! or a managing application, a unique `sourceAgentId`) are the domain's
//! and are checked by the store inside the write.

use super::sets::Set;
use super::{Result, card_write_context, created, expected_version, require};
use crate::auth::permissions::{Action, authorize};
use crate::auth::{CallerKind, Principal};
use crate::domain::schema::AGENT_REGISTRATION;
use crate::domain::{self, WriteContext, parse_write};
use crate::http::AppState;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta};
use crate::http::respond;
use crate::store::Entity;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// `agentRegistrations` for the shared handlers ([`super::sets`]).
pub(super) struct Registrations;

impl Set for Registrations {
    const ENTITY: Entity = Entity::Registration;
    const LIST: Action = Action::ListRegistrations;
    const GET: Action = Action::GetRegistration;
    const DELETE: Action = Action::DeleteRegistration;
}

/// An application may hand a registration only to itself (424 otherwise,
/// as the service answers); delegated callers are administrators.
fn check_managing_app(p: &Principal, props: &Map<String, Value>) -> Result<()> {
    if p.kind == CallerKind::Application {
        domain::ensure_managed_by_caller(props, p.app_id.as_deref())?;
    }
    Ok(())
}

/// 201 with the registration.
pub(super) async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::CreateRegistration)?;
    let write = parse_write(&AGENT_REGISTRATION, body, true)?;
    check_managing_app(&p, &write.props)?;
    let create_only = cond.create_only()?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let ctx = card_write_context(&app, &p, &grant).await?;
    let result = app
        .store()
        .create_registration(&p.tenant_id, &id, write, &ctx)
        .await;
    let stored = etag::refuse_existing(create_only, result, Entity::Registration, &id)?;
    created(&meta, &AGENT_REGISTRATION, stored)
}

/// The documented answer: 200 with an empty body (and the new `ETag`).
pub(super) async fn update(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::UpdateRegistration)?;
    let write = parse_write(&AGENT_REGISTRATION, body, false)?;
    check_managing_app(&p, &write.props)?;
    let current = require(&app, &p, &grant, Entity::Registration, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, Entity::Registration, current).await?,
        ..card_write_context(&app, &p, &grant).await?
    };
    let stored = app
        .store()
        .update_registration(&p.tenant_id, &id, write.props, &ctx)
        .await?;
    let mut response = respond::no_content();
    *response.status_mut() = StatusCode::OK;
    etag::set_header(&mut response, &stored);
    Ok(response)
}

//! `agentCollections` and membership, on the canonical
//! `/agentCollections/{cid}/members…` paths and the documented
//! `/agentInstances/{iid}/collections/{cid}/members…` ones. Global and
//! Quarantined have permissions of their own.

use super::sets::Set;
use super::{
    ListRequest, Result, claim_managed_by, count_criteria, created, entity_response,
    expected_version, managed_filter, missing, require, single, updated, write_context,
};
use crate::auth::permissions::{Action, Grant, Reserved, authorize, authorize_on};
use crate::auth::{CallerKind, Principal};
use crate::domain::schema::{AGENT_COLLECTION, AGENT_INSTANCE};
use crate::domain::{
    self, DomainError, RESERVED_COLLECTIONS, WriteContext, parse_entity_reference, parse_write,
};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::etag::{self, Conditions};
use crate::http::extract::{Caller, JsonBody, Keys, Meta, ODataQuery, PreferRepresentation};
use crate::http::request::RequestMeta;
use crate::http::respond;
use crate::odata::filter::{self, Expr};
use crate::store::{Entity, Relation};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

/// `agentCollections` for the shared handlers ([`super::sets`]).
pub(super) struct Collections;

impl Set for Collections {
    const ENTITY: Entity = Entity::Collection;
    const LIST: Action = Action::ListCollections;
    const GET: Action = Action::GetCollection;
    const DELETE: Action = Action::DeleteCollection;

    fn reserved(id: &str) -> Reserved {
        reserved(id)
    }

    fn list_restriction(p: &Principal, grant: &Grant, _filter: Option<&Expr>) -> Option<Expr> {
        list_restriction(p, grant)
    }

    fn deletable(id: &str) -> std::result::Result<(), DomainError> {
        domain::ensure_collection_mutable(id)
    }
}

/// Which reserved collection an id names.
fn reserved(id: &str) -> Reserved {
    match domain::reserved_collection(id).map(|c| c.display_name) {
        Some("Global") => Reserved::Global,
        Some("Quarantined") => Reserved::Quarantined,
        _ => Reserved::No,
    }
}

/// What a collection list shows: a restricted application its own
/// collections; a user holding only the Global or Quarantined read
/// permissions, those collections.
fn list_restriction(p: &Principal, grant: &Grant) -> Option<Expr> {
    if let Some(f) = managed_filter(grant, Entity::Collection) {
        return Some(f);
    }
    let has = |perm: &str| p.scopes.iter().any(|s| s == perm);
    if p.kind == CallerKind::Delegated
        && !has("AgentCollection.Read.All")
        && !has("AgentCollection.ReadWrite.All")
    {
        let readable: Vec<&str> = RESERVED_COLLECTIONS
            .iter()
            .filter(|c| {
                has(&format!("AgentCollection.Read.{}", c.display_name))
                    || has(&format!("AgentCollection.ReadWrite.{}", c.display_name))
            })
            .map(|c| c.id)
            .collect();
        return Some(filter::one_of("id", &readable));
    }
    None
}

pub(super) async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    cond: Conditions,
    JsonBody(body): JsonBody,
) -> Result {
    let grant = authorize(&p, Action::CreateCollection)?;
    let mut write = parse_write(&AGENT_COLLECTION, body, true)?;
    domain::ensure_collection_name_free(&write.props)?;
    claim_managed_by(&grant, Entity::Collection, &mut write.props, true)?;
    let create_only = cond.create_only()?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let result = app
        .store()
        .create_collection(&p.tenant_id, &id, write, &write_context(&app, &p, &grant))
        .await;
    let stored = etag::refuse_existing(create_only, result, Entity::Collection, &id)?;
    created(&meta, &AGENT_COLLECTION, stored)
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
    let grant = authorize_on(&p, Action::UpdateCollection, reserved(&id))?;
    domain::ensure_collection_mutable(&id)?;
    let mut write = parse_write(&AGENT_COLLECTION, body, false)?;
    domain::ensure_collection_name_free(&write.props)?;
    claim_managed_by(&grant, Entity::Collection, &mut write.props, false)?;
    let current = require(&app, &p, &grant, Entity::Collection, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, Entity::Collection, current).await?,
        ..write_context(&app, &p, &grant)
    };
    let stored = app
        .store()
        .update_collection(&p.tenant_id, &id, write.props, &ctx)
        .await?;
    updated(&meta, &AGENT_COLLECTION, prefer, stored)
}

// ---------------------------------------------------------------- membership

/// Authorizes a membership action on collection `cid` and checks a
/// restricted caller manages it.
async fn member_access(app: &AppState, p: &Principal, action: Action, cid: &str) -> Result<Grant> {
    let grant = authorize_on(p, action, reserved(cid))?;
    if grant.restricted(Entity::Collection).is_some() {
        require(app, p, &grant, Entity::Collection, cid).await?;
    }
    Ok(grant)
}

async fn members_page(
    app: &AppState,
    meta: &RequestMeta,
    p: &Principal,
    q: &ODataQuery,
    cid: &str,
) -> Result {
    member_access(app, p, Action::ListMembers, cid).await?;
    let list = ListRequest {
        app,
        meta,
        caller: p,
        query: q,
        ty: &AGENT_INSTANCE,
        restrict: None,
        summary: None,
        newest_first: false,
    };
    list.run(Relation::MembersOf(cid)).await
}

/// Adds instance `iid`; a restricted caller must manage both (the store
/// checks, inside the write).
async fn add(app: &AppState, p: &Principal, cid: &str, iid: &str) -> Result<()> {
    let grant = authorize_on(p, Action::AddMember, reserved(cid))?;
    let ctx = write_context(app, p, &grant);
    app.store().add_member(&p.tenant_id, cid, iid, &ctx).await?;
    Ok(())
}

/// `POST members/$ref` with `{"@odata.id": "<instance URL>"}`.
async fn add_ref(app: &AppState, p: &Principal, cid: &str, body: Value) -> Result {
    let reference = body
        .as_object()
        .ok_or(DomainError::NotAnObject)?
        .get("@odata.id")
        .ok_or(DomainError::MissingRequired {
            property: "@odata.id",
        })?
        .as_str()
        .ok_or_else(|| DomainError::WrongType {
            property: "@odata.id".into(),
            expected: "a URL string",
        })?;
    let iid = parse_entity_reference(reference, "agentInstances")?;
    add(app, p, cid, &iid).await?;
    Ok(respond::no_content())
}

/// `POST members` with an agentInstance body: adds the existing instance with that id.
async fn add_entity(
    app: &AppState,
    meta: &RequestMeta,
    p: &Principal,
    cid: &str,
    body: Value,
) -> Result {
    let iid = body
        .as_object()
        .ok_or(DomainError::NotAnObject)?
        .get("id")
        .and_then(Value::as_str)
        .ok_or(DomainError::MissingRequired { property: "id" })?
        .to_owned();
    add(app, p, cid, &iid).await?;
    let stored = app
        .store()
        .get_entity(Entity::Instance, &p.tenant_id, &iid)
        .await?
        .ok_or_else(|| missing(Entity::Instance, &iid))?;
    let context = respond::context_url(meta, &AGENT_INSTANCE, "/$entity");
    let body = respond::with_etag(&stored.doc, &etag::of(&stored));
    let mut response = respond::json(StatusCode::CREATED, respond::entity_body(&context, &body));
    etag::set_header(&mut response, &stored);
    Ok(response)
}

async fn member(
    app: &AppState,
    meta: &RequestMeta,
    p: &Principal,
    q: &ODataQuery,
    cid: &str,
    mid: &str,
) -> Result {
    member_access(app, p, Action::ListMembers, cid).await?;
    single(q, &AGENT_INSTANCE)?;
    if app
        .store()
        .get_entity(Entity::Collection, &p.tenant_id, cid)
        .await?
        .is_none()
    {
        return Err(missing(Entity::Collection, cid));
    }
    if !app.store().is_member(&p.tenant_id, cid, mid).await? {
        return Err(ApiError::NotInCollection {
            instance: mid.to_owned(),
            collection: cid.to_owned(),
        });
    }
    let stored = app
        .store()
        .get_entity(Entity::Instance, &p.tenant_id, mid)
        .await?
        .ok_or_else(|| missing(Entity::Instance, mid))?;
    entity_response(app, meta, &p.tenant_id, &AGENT_INSTANCE, &q.options, stored).await
}

/// Removes the reference only; the instance stays.
async fn remove_reference(app: &AppState, p: &Principal, cid: &str, mid: &str) -> Result {
    let grant = authorize_on(p, Action::RemoveMember, reserved(cid))?;
    let ctx = write_context(app, p, &grant);
    app.store()
        .remove_member(&p.tenant_id, cid, mid, &ctx)
        .await?;
    Ok(respond::no_content())
}

pub(super) async fn list_members(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    q: ODataQuery,
) -> Result {
    members_page(&app, &meta, &p, &q, &cid).await
}

pub(super) async fn count_members(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    q: ODataQuery,
) -> Result {
    member_access(&app, &p, Action::ListMembers, &cid).await?;
    let criteria = count_criteria(&q, &AGENT_INSTANCE, None)?;
    Ok(respond::count(
        app.store()
            .count_entities(
                Entity::Instance,
                &p.tenant_id,
                Relation::MembersOf(&cid),
                &criteria,
            )
            .await?,
    ))
}

pub(super) async fn add_member_ref(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    add_ref(&app, &p, &cid, body).await
}

pub(super) async fn add_member_entity(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    add_entity(&app, &meta, &p, &cid, body).await
}

pub(super) async fn get_member(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((cid, mid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    member(&app, &meta, &p, &q, &cid, &mid).await
}

pub(super) async fn remove_member(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((cid, mid)): Keys<(String, String)>,
) -> Result {
    remove_reference(&app, &p, &cid, &mid).await
}

// The documented long form, `/agentInstances/{id}/collections/{cid}/members…`,
// acts on collection `cid` once instance `id` is known to exist.

async fn require_anchor(app: &AppState, p: &Principal, id: &str) -> Result<()> {
    let grant = authorize(p, Action::ListInstanceCollections)?;
    super::require(app, p, &grant, Entity::Instance, id).await?;
    Ok(())
}

pub(super) async fn doc_list_members(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    require_anchor(&app, &p, &id).await?;
    members_page(&app, &meta, &p, &q, &cid).await
}

pub(super) async fn doc_add_member_ref(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result {
    require_anchor(&app, &p, &id).await?;
    add_ref(&app, &p, &cid, body).await
}

pub(super) async fn doc_add_member_entity(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result {
    require_anchor(&app, &p, &id).await?;
    add_entity(&app, &meta, &p, &cid, body).await
}

pub(super) async fn doc_get_member(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid, mid)): Keys<(String, String, String)>,
    q: ODataQuery,
) -> Result {
    require_anchor(&app, &p, &id).await?;
    member(&app, &meta, &p, &q, &cid, &mid).await
}

pub(super) async fn doc_remove_member(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((id, cid, mid)): Keys<(String, String, String)>,
) -> Result {
    require_anchor(&app, &p, &id).await?;
    remove_reference(&app, &p, &cid, &mid).await
}

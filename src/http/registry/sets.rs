//! What the three entity sets share, written once and generic over [`Set`]:
//! list, `$count`, get by id and delete. What differs between sets (the
//! permission of each operation, what a list shows a restricted caller,
//! which objects have permissions or rules of their own) is a constant or a
//! hook of the set; creates and updates, whose bodies differ, stay in each
//! set's module.

use super::{
    ListRequest, Result, count_criteria, entity_response_annotated, expected_version,
    managed_filter, require, single, write_context,
};
use crate::auth::Principal;
use crate::auth::permissions::{Action, Grant, Reserved, authorize_on};
use crate::domain::{DomainError, WriteContext};
use crate::http::AppState;
use crate::http::etag::Conditions;
use crate::http::extract::{Caller, Keys, Meta, ODataQuery};
use crate::http::respond;
use crate::odata::filter::Expr;
use crate::store::{Entity, Relation};
use axum::extract::State;

/// An entity set of the registry, as the shared handlers see it.
pub(super) trait Set: Send + Sync + 'static {
    const ENTITY: Entity;
    const LIST: Action;
    const GET: Action;
    const DELETE: Action;

    /// Whether `id` names an object with permissions of its own (the
    /// reserved collections).
    fn reserved(_id: &str) -> Reserved {
        Reserved::No
    }

    /// The condition the server adds to this caller's lists and counts
    /// (given the client's own `$filter`): a restricted (`*.ManagedBy`)
    /// caller sees only its own objects.
    fn list_restriction(_p: &Principal, grant: &Grant, _filter: Option<&Expr>) -> Option<Expr> {
        managed_filter(grant, Self::ENTITY)
    }

    /// The properties a list shows of each entity when the client does not
    /// `$select` (all of them by default).
    const SUMMARY: Option<&'static [&'static str]> = None;

    /// Whether lists without `$orderby` show the newest first.
    const NEWEST_FIRST: bool = false;

    /// Refuses the delete of an object the domain keeps.
    fn deletable(_id: &str) -> std::result::Result<(), DomainError> {
        Ok(())
    }
}

pub(super) async fn list<S: Set>(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let grant = authorize_on(&p, S::LIST, Reserved::No)?;
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: S::ENTITY.ty(),
        restrict: S::list_restriction(&p, &grant, q.options.filter.as_ref()),
        summary: S::SUMMARY,
        newest_first: S::NEWEST_FIRST,
    };
    list.run(Relation::All).await
}

pub(super) async fn count<S: Set>(
    State(app): State<AppState>,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let grant = authorize_on(&p, S::LIST, Reserved::No)?;
    let restrict = S::list_restriction(&p, &grant, q.options.filter.as_ref());
    let criteria = count_criteria(&q, S::ENTITY.ty(), restrict)?;
    let n = app
        .store()
        .count_entities(S::ENTITY, &p.tenant_id, Relation::All, &criteria)
        .await?;
    Ok(respond::count(n))
}

pub(super) async fn get_one<S: Set>(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let grant = authorize_on(&p, S::GET, S::reserved(&id))?;
    let ty = S::ENTITY.ty();
    single(&q, ty)?;
    let stored = require(&app, &p, &grant, S::ENTITY, &id).await?;
    let annotations = match S::ENTITY {
        Entity::Instance | Entity::Registration => {
            annotations(&app, &p.tenant_id, S::ENTITY, &stored).await?
        }
        _ => serde_json::Map::new(),
    };
    entity_response_annotated(
        &app,
        &meta,
        &p.tenant_id,
        ty,
        &q.options,
        stored,
        annotations,
    )
    .await
}

pub(super) async fn remove<S: Set>(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    cond: Conditions,
) -> Result {
    let grant = authorize_on(&p, S::DELETE, S::reserved(&id))?;
    S::deletable(&id)?;
    let current = require(&app, &p, &grant, S::ENTITY, &id);
    let ctx = WriteContext {
        if_match: expected_version(&cond, S::ENTITY, current).await?,
        ..write_context(&app, &p, &grant)
    };
    app.store()
        .delete_entity(S::ENTITY, &p.tenant_id, &id, &ctx)
        .await?;
    Ok(respond::no_content())
}

/// What Agentry knows of an agent's card, as instance annotations on a read
/// of one agent: its last check when its tenant watches it, and, for an
/// instance of a tenant that validates cards, the validation of the card
/// built from it and its manifest (computed as it is read, since the card
/// spans two entities; a registration's was recorded when it was written).
async fn annotations(
    app: &AppState,
    tenant: &str,
    kind: Entity,
    stored: &crate::store::Stored,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    use crate::domain::a2a::{self, ValidationMode};
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    if app.watcher().watches(tenant)
        && let Some(health) = app.store().get_health(tenant, kind, &stored.id).await?
    {
        out.insert(crate::watch::ANNOTATION.to_owned(), Value::Object(health));
    }
    if kind == Entity::Instance && app.watcher().validation_of(tenant) != ValidationMode::Off {
        let manifest = app
            .store()
            .get_instance_manifest(tenant, &stored.id)
            .await?;
        let manifest = manifest.map(|m| m.parse());
        if let Some(card) = crate::domain::migration::card_of(&stored.parse(), manifest.as_ref()) {
            out.insert(a2a::ANNOTATION.to_owned(), a2a::validate(&card).to_json());
        }
    }
    Ok(out)
}

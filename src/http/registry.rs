//! `/beta/agentRegistry`: agent instances, card manifests, collections and
//! membership. Each handler checks the request's shape, calls the domain to
//! validate the body and the store to do the work, and shapes the answer.

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Keys, Meta, ODataQuery, PreferRepresentation};
use super::respond;
use crate::auth::Principal;
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, EntityType};
use crate::domain::{
    self, DomainError, EntityWrite, ManifestChange, WriteContext, parse_entity_reference,
    parse_write,
};
use crate::odata::{DEFAULT_TOP, QueryOptions, SkipToken};
use crate::store::{Criteria, ListQuery, Page, Relation, Stored};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value};

/// Related entities expanded inline are capped at this many.
const MAX_EXPANDED: usize = 100;

pub fn singleton() -> MethodRouter<AppState> {
    get(get_registry).patch(patch_registry)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agentInstances", get(list_instances).post(create_instance))
        .route("/agentInstances/$count", get(count_instances))
        .route(
            "/agentInstances/{id}",
            get(get_instance)
                .patch(update_instance)
                .delete(delete_instance),
        )
        .route(
            "/agentInstances/{id}/agentCardManifest",
            get(get_instance_manifest)
                .patch(update_instance_manifest)
                .delete(unlink_instance_manifest),
        )
        .route(
            "/agentInstances/{id}/collections",
            get(list_instance_collections),
        )
        .route(
            "/agentInstances/{id}/collections/$count",
            get(count_instance_collections),
        )
        .route(
            "/agentInstances/{id}/collections/{cid}",
            get(get_instance_collection),
        )
        .route(
            "/agentInstances/{id}/collections/{cid}/members",
            get(doc_list_members).post(doc_add_member_entity),
        )
        .route(
            "/agentInstances/{id}/collections/{cid}/members/$ref",
            post(doc_add_member_ref),
        )
        .route(
            "/agentInstances/{id}/collections/{cid}/members/{mid}",
            get(doc_get_member).delete(doc_remove_member),
        )
        .route(
            "/agentInstances/{id}/collections/{cid}/members/{mid}/$ref",
            axum::routing::delete(doc_remove_member),
        )
        .route(
            "/agentCardManifests",
            get(list_manifests).post(create_manifest),
        )
        .route("/agentCardManifests/$count", get(count_manifests))
        .route(
            "/agentCardManifests/{id}",
            get(get_manifest)
                .patch(update_manifest)
                .delete(delete_manifest),
        )
        .route(
            "/agentCollections",
            get(list_collections).post(create_collection),
        )
        .route("/agentCollections/$count", get(count_collections))
        .route(
            "/agentCollections/{id}",
            get(get_collection)
                .patch(update_collection)
                .delete(delete_collection),
        )
        .route(
            "/agentCollections/{id}/members",
            get(list_members).post(add_member_entity),
        )
        .route("/agentCollections/{id}/members/$count", get(count_members))
        .route("/agentCollections/{id}/members/$ref", post(add_member_ref))
        .route(
            "/agentCollections/{id}/members/{mid}",
            get(get_member).delete(remove_member),
        )
        .route(
            "/agentCollections/{id}/members/{mid}/$ref",
            axum::routing::delete(remove_member),
        )
}

type Result<T = Response> = std::result::Result<T, ApiError>;

fn write_context(app: &AppState, caller: &Principal) -> WriteContext {
    WriteContext {
        now: app.now(),
        actor: caller.actor_id().map(str::to_owned),
    }
}

/// Navigation properties each entity type can expand.
fn expandable(ty: &EntityType) -> &'static [&'static str] {
    match ty.entity_set {
        "agentInstances" => &["agentCardManifest", "collections"],
        "agentCollections" => &["members"],
        _ => &[],
    }
}

// ---------------------------------------------------------------- shaping

/// The JSON text of one entity as the query asks for it: the stored text
/// untouched when nothing reshapes it, else projected and expanded.
async fn shape(
    app: &AppState,
    tenant: &str,
    ty: &'static EntityType,
    q: &QueryOptions,
    stored: Stored,
) -> Result<String> {
    if !q.reshapes() {
        return Ok(stored.doc);
    }
    let doc = stored.parse();
    let mut out = respond::project(doc, q.select.as_deref());
    for e in &q.expand {
        let nested = e.select.as_deref();
        let value = match (ty.entity_set, e.navigation.as_str()) {
            ("agentInstances", "agentCardManifest") => app
                .store()
                .get_instance_manifest(tenant, &stored.id)
                .await?
                .map_or(Value::Null, |m| {
                    Value::Object(respond::project(m.parse(), nested))
                }),
            ("agentInstances", "collections") => {
                let page = app
                    .store()
                    .list_collections(tenant, Relation::CollectionsOf(&stored.id), &expand_page())
                    .await?;
                projected_array(page, nested)
            }
            ("agentCollections", "members") => {
                let page = app
                    .store()
                    .list_instances(tenant, Relation::MembersOf(&stored.id), &expand_page())
                    .await?;
                projected_array(page, nested)
            }
            _ => continue,
        };
        out.insert(e.navigation.clone(), value);
    }
    Ok(Value::Object(out).to_string())
}

fn expand_page() -> ListQuery {
    ListQuery::first(MAX_EXPANDED)
}

fn projected_array(page: Page, select: Option<&[String]>) -> Value {
    Value::Array(
        page.items
            .into_iter()
            .map(|s| Value::Object(respond::project(s.parse(), select)))
            .collect(),
    )
}

async fn entity_response(
    app: &AppState,
    meta: &super::conventions::RequestMeta,
    tenant: &str,
    ty: &'static EntityType,
    q: &QueryOptions,
    status: StatusCode,
    stored: Stored,
) -> Result {
    let context = respond::context_url(
        meta,
        ty.entity_set,
        &format!("{}/$entity", q.context_projection()),
    );
    let text = shape(app, tenant, ty, q, stored).await?;
    Ok(respond::json(status, respond::entity_body(&context, &text)))
}

/// A collection answer: one page, its next link, and the count when asked.
struct ListRequest<'a> {
    app: &'a AppState,
    meta: &'a super::conventions::RequestMeta,
    caller: &'a Principal,
    query: &'a ODataQuery,
    ty: &'static EntityType,
}

impl ListRequest<'_> {
    fn page_query(&self) -> Result<ListQuery> {
        let q = &self.query.options;
        q.check_shape(self.ty, expandable(self.ty))?;
        if q.search.is_some() && !self.query.eventual {
            return Err(crate::odata::ODataError::SearchNeedsConsistencyLevel.into());
        }
        let after = match &q.skiptoken {
            Some(raw) => Some(self.app.paging().open(raw, &self.scope())?.cursor),
            None => None,
        };
        Ok(ListQuery {
            criteria: self.criteria(),
            order: q.orderby.clone(),
            after,
            skip: if q.skiptoken.is_some() {
                0
            } else {
                q.skip.unwrap_or(0)
            },
            limit: q.top.unwrap_or(DEFAULT_TOP),
        })
    }

    fn criteria(&self) -> Criteria {
        Criteria {
            filter: self.query.options.filter.clone(),
            search: self.query.options.search.clone(),
        }
    }

    /// Binds a paging token to the tenant, the list and the query.
    fn scope(&self) -> String {
        format!(
            "{}:{}:{}",
            self.caller.tenant_id, self.query.path, self.query.options.criteria_text
        )
    }

    async fn respond(&self, page: Page, count: Option<u64>) -> Result {
        let q = &self.query.options;
        let next = match (page.more, page.last) {
            (true, Some(cursor)) => {
                let token = self.app.paging().seal(&SkipToken {
                    scope: self.scope(),
                    cursor,
                });
                Some(respond::next_link(
                    self.meta,
                    &self.query.path,
                    self.query.raw.as_deref(),
                    &token,
                ))
            }
            _ => None,
        };
        let mut items = Vec::with_capacity(page.items.len());
        for stored in page.items {
            items.push(shape(self.app, &self.caller.tenant_id, self.ty, q, stored).await?);
        }
        let context = respond::context_url(self.meta, self.ty.entity_set, &q.context_projection());
        Ok(respond::json(
            StatusCode::OK,
            respond::collection_body(&context, count, next.as_deref(), &items),
        ))
    }
}

fn created(
    app: &AppState,
    meta: &super::conventions::RequestMeta,
    ty: &'static EntityType,
    stored: Stored,
) -> Result {
    let _ = app;
    let context = respond::context_url(meta, ty.entity_set, "/$entity");
    let mut response = respond::json(
        StatusCode::CREATED,
        respond::entity_body(&context, &stored.doc),
    );
    let key = percent_encoding::utf8_percent_encode(&stored.id, percent_encoding::NON_ALPHANUMERIC);
    let location = format!(
        "{}/agentRegistry/{}/{key}",
        meta.service_root(),
        ty.entity_set
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// 204, or 200 with the entity when the client prefers a representation.
fn updated(
    meta: &super::conventions::RequestMeta,
    ty: &'static EntityType,
    prefer: bool,
    stored: Stored,
) -> Result {
    if !prefer {
        return Ok(respond::no_content());
    }
    let context = respond::context_url(meta, ty.entity_set, "/$entity");
    let mut response = respond::json(StatusCode::OK, respond::entity_body(&context, &stored.doc));
    response.headers_mut().insert(
        "preference-applied",
        HeaderValue::from_static("return=representation"),
    );
    Ok(response)
}

fn single(q: &ODataQuery, ty: &'static EntityType) -> Result<()> {
    q.options.for_single_entity()?;
    q.options.check_shape(ty, expandable(ty))?;
    Ok(())
}

/// The rows a `/$count` segment counts: `$filter` and `$search` apply, other options do not.
fn count_criteria(q: &ODataQuery, ty: &'static EntityType) -> Result<Criteria> {
    let o = &q.options;
    let refused = [
        ("$top", o.top.is_some()),
        ("$skip", o.skip.is_some()),
        ("$skiptoken", o.skiptoken.is_some()),
        ("$count", o.count),
        ("$orderby", !o.orderby.is_empty()),
        ("$select", o.select.is_some()),
        ("$expand", !o.expand.is_empty()),
    ];
    if let Some((name, _)) = refused.iter().find(|(_, present)| *present) {
        return Err(crate::odata::ODataError::NotApplicable(name).into());
    }
    o.check_shape(ty, &[])?;
    if o.search.is_some() && !q.eventual {
        return Err(crate::odata::ODataError::SearchNeedsConsistencyLevel.into());
    }
    Ok(Criteria {
        filter: o.filter.clone(),
        search: o.search.clone(),
    })
}

// ---------------------------------------------------------------- singleton

async fn get_registry(Meta(meta): Meta, q: ODataQuery) -> Result {
    if q.options.reshapes() {
        return Err(crate::odata::ODataError::NotImplemented(
            "$select and $expand on agentRegistry",
        )
        .into());
    }
    q.options.for_single_entity()?;
    let context = format!("{}/$metadata#agentRegistry/$entity", meta.service_root());
    Ok(respond::json(
        StatusCode::OK,
        respond::entity_body(&context, "{}"),
    ))
}

/// The singleton has no writable property: an empty object is accepted.
async fn patch_registry(JsonBody(body): JsonBody) -> Result {
    let Value::Object(map) = body else {
        return Err(DomainError::NotAnObject.into());
    };
    if let Some(key) = map.keys().find(|k| !k.starts_with('@')) {
        return Err(DomainError::UnknownProperty {
            property: key.clone(),
            type_name: "microsoft.graph.agentRegistry",
        }
        .into());
    }
    Ok(respond::no_content())
}

// ---------------------------------------------------------------- instances

async fn list_instances(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_INSTANCE,
    };
    let page_query = list.page_query()?;
    let page = app
        .store()
        .list_instances(&p.tenant_id, Relation::All, &page_query)
        .await?;
    let count = match q.options.count {
        true => Some(
            app.store()
                .count_instances(&p.tenant_id, Relation::All, &list.criteria())
                .await?,
        ),
        false => None,
    };
    list.respond(page, count).await
}

async fn count_instances(State(app): State<AppState>, Caller(p): Caller, q: ODataQuery) -> Result {
    let criteria = count_criteria(&q, &AGENT_INSTANCE)?;
    Ok(respond::count(
        app.store()
            .count_instances(&p.tenant_id, Relation::All, &criteria)
            .await?,
    ))
}

async fn create_instance(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_INSTANCE, body, true)?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let stored = app
        .store()
        .create_instance(&p.tenant_id, &id, write, &write_context(&app, &p))
        .await?;
    created(&app, &meta, &AGENT_INSTANCE, stored)
}

async fn get_instance(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    single(&q, &AGENT_INSTANCE)?;
    let stored = app
        .store()
        .get_instance(&p.tenant_id, &id)
        .await?
        .ok_or_else(|| instance_missing(&id))?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_INSTANCE,
        &q.options,
        StatusCode::OK,
        stored,
    )
    .await
}

fn instance_missing(id: &str) -> ApiError {
    crate::store::StoreError::NotFound {
        kind: crate::store::EntityKind::Instance,
        id: id.to_owned(),
    }
    .into()
}

fn manifest_missing(id: &str) -> ApiError {
    crate::store::StoreError::NotFound {
        kind: crate::store::EntityKind::Manifest,
        id: id.to_owned(),
    }
    .into()
}

fn collection_missing(id: &str) -> ApiError {
    crate::store::StoreError::NotFound {
        kind: crate::store::EntityKind::Collection,
        id: id.to_owned(),
    }
    .into()
}

async fn update_instance(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    PreferRepresentation(prefer): PreferRepresentation,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_INSTANCE, body, false)?;
    let stored = app
        .store()
        .update_instance(&p.tenant_id, &id, write, &write_context(&app, &p))
        .await?;
    updated(&meta, &AGENT_INSTANCE, prefer, stored)
}

async fn delete_instance(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    app.store().delete_instance(&p.tenant_id, &id).await?;
    Ok(respond::no_content())
}

async fn get_instance_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    single(&q, &AGENT_CARD_MANIFEST)?;
    let manifest = app
        .store()
        .get_instance_manifest(&p.tenant_id, &id)
        .await?
        .ok_or(ApiError::ManifestNotLinked(id))?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_CARD_MANIFEST,
        &q.options,
        StatusCode::OK,
        manifest,
    )
    .await
}

async fn update_instance_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_CARD_MANIFEST, body, false)?;
    let manifest = app
        .store()
        .get_instance_manifest(&p.tenant_id, &id)
        .await?
        .ok_or(ApiError::ManifestNotLinked(id))?;
    let stored = app
        .store()
        .update_manifest(
            &p.tenant_id,
            &manifest.id,
            write.props,
            &write_context(&app, &p),
        )
        .await?;
    updated(&meta, &AGENT_CARD_MANIFEST, true, stored)
}

async fn unlink_instance_manifest(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    if app
        .store()
        .get_instance_manifest(&p.tenant_id, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::ManifestNotLinked(id));
    }
    let write = EntityWrite {
        id: None,
        props: Map::new(),
        manifest: Some(ManifestChange::Unlink),
    };
    app.store()
        .update_instance(&p.tenant_id, &id, write, &write_context(&app, &p))
        .await?;
    Ok(respond::no_content())
}

async fn list_instance_collections(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_COLLECTION,
    };
    let page_query = list.page_query()?;
    let relation = Relation::CollectionsOf(&id);
    let page = app
        .store()
        .list_collections(&p.tenant_id, relation, &page_query)
        .await?;
    let count = match q.options.count {
        true => Some(
            app.store()
                .count_collections(&p.tenant_id, relation, &list.criteria())
                .await?,
        ),
        false => None,
    };
    list.respond(page, count).await
}

async fn count_instance_collections(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    let criteria = count_criteria(&q, &AGENT_COLLECTION)?;
    Ok(respond::count(
        app.store()
            .count_collections(&p.tenant_id, Relation::CollectionsOf(&id), &criteria)
            .await?,
    ))
}

async fn get_instance_collection(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    single(&q, &AGENT_COLLECTION)?;
    require_instance(&app, &p, &id).await?;
    let collection = app
        .store()
        .get_collection(&p.tenant_id, &cid)
        .await?
        .ok_or_else(|| collection_missing(&cid))?;
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
        StatusCode::OK,
        collection,
    )
    .await
}

async fn require_instance(app: &AppState, p: &Principal, id: &str) -> Result<Stored> {
    app.store()
        .get_instance(&p.tenant_id, id)
        .await?
        .ok_or_else(|| instance_missing(id))
}

// ---------------------------------------------------------------- manifests

async fn list_manifests(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_CARD_MANIFEST,
    };
    let page_query = list.page_query()?;
    let page = app
        .store()
        .list_manifests(&p.tenant_id, &page_query)
        .await?;
    let count = match q.options.count {
        true => Some(
            app.store()
                .count_manifests(&p.tenant_id, &list.criteria())
                .await?,
        ),
        false => None,
    };
    list.respond(page, count).await
}

async fn count_manifests(State(app): State<AppState>, Caller(p): Caller, q: ODataQuery) -> Result {
    let criteria = count_criteria(&q, &AGENT_CARD_MANIFEST)?;
    Ok(respond::count(
        app.store().count_manifests(&p.tenant_id, &criteria).await?,
    ))
}

/// Beyond Graph (which creates manifests only through an instance).
async fn create_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_CARD_MANIFEST, body, true)?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let stored = app
        .store()
        .create_manifest(&p.tenant_id, &id, write, &write_context(&app, &p))
        .await?;
    created(&app, &meta, &AGENT_CARD_MANIFEST, stored)
}

async fn get_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    single(&q, &AGENT_CARD_MANIFEST)?;
    let stored = app
        .store()
        .get_manifest(&p.tenant_id, &id)
        .await?
        .ok_or_else(|| manifest_missing(&id))?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_CARD_MANIFEST,
        &q.options,
        StatusCode::OK,
        stored,
    )
    .await
}

/// Graph answers a manifest PATCH with 200 and the updated manifest.
async fn update_manifest(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_CARD_MANIFEST, body, false)?;
    let stored = app
        .store()
        .update_manifest(&p.tenant_id, &id, write.props, &write_context(&app, &p))
        .await?;
    updated(&meta, &AGENT_CARD_MANIFEST, true, stored)
}

/// Beyond Graph; refused while instances still link to the manifest.
async fn delete_manifest(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    app.store().delete_manifest(&p.tenant_id, &id).await?;
    Ok(respond::no_content())
}

// ---------------------------------------------------------------- collections

async fn list_collections(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let list = ListRequest {
        app: &app,
        meta: &meta,
        caller: &p,
        query: &q,
        ty: &AGENT_COLLECTION,
    };
    let page_query = list.page_query()?;
    let page = app
        .store()
        .list_collections(&p.tenant_id, Relation::All, &page_query)
        .await?;
    let count = match q.options.count {
        true => Some(
            app.store()
                .count_collections(&p.tenant_id, Relation::All, &list.criteria())
                .await?,
        ),
        false => None,
    };
    list.respond(page, count).await
}

async fn count_collections(
    State(app): State<AppState>,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let criteria = count_criteria(&q, &AGENT_COLLECTION)?;
    Ok(respond::count(
        app.store()
            .count_collections(&p.tenant_id, Relation::All, &criteria)
            .await?,
    ))
}

async fn create_collection(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    JsonBody(body): JsonBody,
) -> Result {
    let write = parse_write(&AGENT_COLLECTION, body, true)?;
    domain::ensure_collection_name_free(&write.props)?;
    let id = write.id.clone().unwrap_or_else(domain::new_id);
    let stored = app
        .store()
        .create_collection(&p.tenant_id, &id, write, &write_context(&app, &p))
        .await?;
    created(&app, &meta, &AGENT_COLLECTION, stored)
}

async fn get_collection(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    q: ODataQuery,
) -> Result {
    single(&q, &AGENT_COLLECTION)?;
    let stored = app
        .store()
        .get_collection(&p.tenant_id, &id)
        .await?
        .ok_or_else(|| collection_missing(&id))?;
    entity_response(
        &app,
        &meta,
        &p.tenant_id,
        &AGENT_COLLECTION,
        &q.options,
        StatusCode::OK,
        stored,
    )
    .await
}

async fn update_collection(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    PreferRepresentation(prefer): PreferRepresentation,
    JsonBody(body): JsonBody,
) -> Result {
    domain::ensure_collection_mutable(&id)?;
    let write = parse_write(&AGENT_COLLECTION, body, false)?;
    domain::ensure_collection_name_free(&write.props)?;
    let stored = app
        .store()
        .update_collection(&p.tenant_id, &id, write.props, &write_context(&app, &p))
        .await?;
    updated(&meta, &AGENT_COLLECTION, prefer, stored)
}

async fn delete_collection(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    domain::ensure_collection_mutable(&id)?;
    app.store().delete_collection(&p.tenant_id, &id).await?;
    Ok(respond::no_content())
}

// ---------------------------------------------------------------- membership

async fn members_page(
    app: &AppState,
    meta: &super::conventions::RequestMeta,
    p: &Principal,
    q: &ODataQuery,
    cid: &str,
) -> Result {
    let list = ListRequest {
        app,
        meta,
        caller: p,
        query: q,
        ty: &AGENT_INSTANCE,
    };
    let page_query = list.page_query()?;
    let relation = Relation::MembersOf(cid);
    let page = app
        .store()
        .list_instances(&p.tenant_id, relation, &page_query)
        .await?;
    let count = match q.options.count {
        true => Some(
            app.store()
                .count_instances(&p.tenant_id, relation, &list.criteria())
                .await?,
        ),
        false => None,
    };
    list.respond(page, count).await
}

async fn list_members(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    q: ODataQuery,
) -> Result {
    members_page(&app, &meta, &p, &q, &cid).await
}

async fn count_members(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    q: ODataQuery,
) -> Result {
    let criteria = count_criteria(&q, &AGENT_INSTANCE)?;
    Ok(respond::count(
        app.store()
            .count_instances(&p.tenant_id, Relation::MembersOf(&cid), &criteria)
            .await?,
    ))
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
    app.store().add_member(&p.tenant_id, cid, &iid).await?;
    Ok(respond::no_content())
}

/// `POST members` with an agentInstance body: adds the existing instance with that id.
async fn add_entity(
    app: &AppState,
    meta: &super::conventions::RequestMeta,
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
    app.store().add_member(&p.tenant_id, cid, &iid).await?;
    let stored = require_instance(app, p, &iid).await?;
    let context = respond::context_url(meta, AGENT_INSTANCE.entity_set, "/$entity");
    Ok(respond::json(
        StatusCode::CREATED,
        respond::entity_body(&context, &stored.doc),
    ))
}

async fn add_member_ref(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    add_ref(&app, &p, &cid, body).await
}

async fn add_member_entity(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(cid): Keys<String>,
    JsonBody(body): JsonBody,
) -> Result {
    add_entity(&app, &meta, &p, &cid, body).await
}

async fn member(
    app: &AppState,
    meta: &super::conventions::RequestMeta,
    p: &Principal,
    q: &ODataQuery,
    cid: &str,
    mid: &str,
) -> Result {
    single(q, &AGENT_INSTANCE)?;
    if app
        .store()
        .get_collection(&p.tenant_id, cid)
        .await?
        .is_none()
    {
        return Err(collection_missing(cid));
    }
    if !app.store().is_member(&p.tenant_id, cid, mid).await? {
        return Err(ApiError::NotInCollection {
            instance: mid.to_owned(),
            collection: cid.to_owned(),
        });
    }
    let stored = require_instance(app, p, mid).await?;
    entity_response(
        app,
        meta,
        &p.tenant_id,
        &AGENT_INSTANCE,
        &q.options,
        StatusCode::OK,
        stored,
    )
    .await
}

async fn get_member(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((cid, mid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    member(&app, &meta, &p, &q, &cid, &mid).await
}

/// Removes the reference only; the instance stays.
async fn remove_member(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((cid, mid)): Keys<(String, String)>,
) -> Result {
    app.store().remove_member(&p.tenant_id, &cid, &mid).await?;
    Ok(respond::no_content())
}

// The documented long form, `/agentInstances/{id}/collections/{cid}/members…`,
// acts on collection `cid` once instance `id` is known to exist.

async fn doc_list_members(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    q: ODataQuery,
) -> Result {
    require_instance(&app, &p, &id).await?;
    members_page(&app, &meta, &p, &q, &cid).await
}

async fn doc_add_member_ref(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result {
    require_instance(&app, &p, &id).await?;
    add_ref(&app, &p, &cid, body).await
}

async fn doc_add_member_entity(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid)): Keys<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result {
    require_instance(&app, &p, &id).await?;
    add_entity(&app, &meta, &p, &cid, body).await
}

async fn doc_get_member(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys((id, cid, mid)): Keys<(String, String, String)>,
    q: ODataQuery,
) -> Result {
    require_instance(&app, &p, &id).await?;
    member(&app, &meta, &p, &q, &cid, &mid).await
}

async fn doc_remove_member(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((id, cid, mid)): Keys<(String, String, String)>,
) -> Result {
    require_instance(&app, &p, &id).await?;
    app.store().remove_member(&p.tenant_id, &cid, &mid).await?;
    Ok(respond::no_content())
}

//! The registry's entity sets: `/beta/agentRegistry` (agent instances, card
//! manifests, collections and membership) and its Agent 365 successors,
//! registrations and the package catalog. Each handler checks the caller against the permission table,
//! checks the request's shape, asks the domain to validate the body and the
//! store to do the work, and shapes the answer.
//!
//! - [`sets`]: list, `$count`, get and delete, once for every entity set.
//! - [`instances`]: `agentInstances` and their manifest and collections navigations.
//! - [`manifests`]: the `agentCardManifests` set.
//! - [`collections`]: `agentCollections` and membership, on both documented paths.
//! - [`registrations`]: `/beta/copilot/agentRegistrations`, the Agent 365 successor.
//! - [`packages`]: `/copilot/admin/catalog/packages`, the Agent 365 package catalog.
//! - [`audits`]: `/auditLogs/directoryAudits`, the audit log the store writes.
//! - [`delta`]: `…/delta` on the entity sets, read from the change log.
//! - [`cards`]: `/a2a/{tenant}/agents/{id}/.well-known/agent-card.json`, cards for A2A clients.

mod audits;
mod cards;
mod collections;
mod delta;
mod instances;
mod manifests;
mod packages;
mod registrations;
mod sets;

use super::AppState;
use super::error::ApiError;
use super::etag;
use super::extract::{Caller, JsonBody, Meta, ODataQuery};
use super::request::RequestMeta;
use super::respond;
use super::routes::Registry;
use crate::auth::Principal;
use crate::auth::permissions::{Action, Grant, authorize};
use crate::domain::schema::EntityType;
use crate::domain::{DomainError, WriteContext};
use crate::odata::filter::{self, Expr};
use crate::odata::{DEFAULT_TOP, ODataError, QueryOptions, SkipToken};
use crate::store::{Criteria, Entity, ListQuery, Navigation, Page, Relation, StoreError, Stored};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Map, Value};

type Result<T = Response> = std::result::Result<T, ApiError>;

/// The handler of each operation of the registry, for `method`.
pub fn handler(op: Registry, method: MethodFilter) -> MethodRouter<AppState> {
    use Registry as R;
    use audits::Audits;
    use collections::{self as c, Collections};
    use instances::{self as i, Instances};
    use manifests::{self as m, Manifests};
    use packages::{self as k, Packages};
    use registrations::{self as r, Registrations};
    use sets::{count, get_one, list, remove};
    match op {
        R::GetRegistry => on(method, get_registry),
        R::UpdateRegistry => on(method, patch_registry),
        R::ListInstances => on(method, list::<Instances>),
        R::CreateInstance => on(method, i::create),
        R::CountInstances => on(method, count::<Instances>),
        R::GetInstance => on(method, get_one::<Instances>),
        R::UpdateInstance => on(method, i::update),
        R::DeleteInstance => on(method, remove::<Instances>),
        R::GetInstanceManifest => on(method, i::get_manifest),
        R::UpdateInstanceManifest => on(method, i::update_manifest),
        R::UnlinkInstanceManifest => on(method, i::unlink_manifest),
        R::ListInstanceCollections => on(method, i::list_collections),
        R::CountInstanceCollections => on(method, i::count_collections),
        R::GetInstanceCollection => on(method, i::get_collection),
        R::ListMembersViaInstance => on(method, c::doc_list_members),
        R::AddMemberViaInstance => on(method, c::doc_add_member_entity),
        R::AddMemberRefViaInstance => on(method, c::doc_add_member_ref),
        R::GetMemberViaInstance => on(method, c::doc_get_member),
        R::RemoveMemberViaInstance => on(method, c::doc_remove_member),
        R::ListManifests => on(method, list::<Manifests>),
        R::CreateManifest => on(method, m::create),
        R::CountManifests => on(method, count::<Manifests>),
        R::GetManifest => on(method, get_one::<Manifests>),
        R::UpdateManifest => on(method, m::update),
        R::DeleteManifest => on(method, remove::<Manifests>),
        R::ListCollections => on(method, list::<Collections>),
        R::CreateCollection => on(method, c::create),
        R::CountCollections => on(method, count::<Collections>),
        R::GetCollection => on(method, get_one::<Collections>),
        R::UpdateCollection => on(method, c::update),
        R::DeleteCollection => on(method, remove::<Collections>),
        R::ListMembers => on(method, c::list_members),
        R::AddMember => on(method, c::add_member_entity),
        R::CountMembers => on(method, c::count_members),
        R::AddMemberRef => on(method, c::add_member_ref),
        R::GetMember => on(method, c::get_member),
        R::RemoveMember => on(method, c::remove_member),
        R::ListPackages => on(method, list::<Packages>),
        R::CountPackages => on(method, count::<Packages>),
        R::GetPackage => on(method, get_one::<Packages>),
        R::UpdatePackage => on(method, k::update),
        R::BlockPackage => on(method, k::block),
        R::UnblockPackage => on(method, k::unblock),
        R::ReassignPackage => on(method, k::reassign),
        R::LoadPackage => on(method, k::load),
        R::RemovePackage => on(method, remove::<Packages>),
        R::ListRegistrations => on(method, list::<Registrations>),
        R::CreateRegistration => on(method, r::create),
        R::CountRegistrations => on(method, count::<Registrations>),
        R::GetRegistration => on(method, get_one::<Registrations>),
        R::UpdateRegistration => on(method, r::update),
        R::DeleteRegistration => on(method, remove::<Registrations>),
        R::InstancesDelta => on(method, delta::delta::<Instances>),
        R::ManifestsDelta => on(method, delta::delta::<Manifests>),
        R::CollectionsDelta => on(method, delta::delta::<Collections>),
        R::RegistrationsDelta => on(method, delta::delta::<Registrations>),
        R::ListAudits => on(method, list::<Audits>),
        R::CountAudits => on(method, count::<Audits>),
        R::GetAudit => on(method, get_one::<Audits>),
        R::GetAgentCard => on(method, cards::agent_card),
        R::ListAgentCards => on(method, cards::list_cards),
    }
}

/// Who writes, when, and what the grant lets them touch (checked by the
/// store inside the write).
fn write_context(app: &AppState, caller: &Principal, grant: &Grant) -> WriteContext {
    WriteContext {
        now: app.now(),
        actor: caller.actor_id().map(str::to_owned),
        if_match: None,
        scope: grant.scope(),
        initiator: Some(crate::http::request::initiator(caller)),
        card_validation: Default::default(),
        card_signatures: Default::default(),
    }
}

/// [`write_context`] for a write that stores an A2A card: with the
/// tenant's checks of cards and their signatures.
async fn card_write_context(
    app: &AppState,
    caller: &Principal,
    grant: &Grant,
) -> Result<WriteContext> {
    let a2a = app.a2a(&caller.tenant_id).await?;
    Ok(WriteContext {
        card_validation: a2a.validation,
        card_signatures: a2a.signatures,
        ..write_context(app, caller, grant)
    })
}

/// Navigation properties each entity type can expand.
fn expandable(ty: &EntityType) -> &'static [&'static str] {
    match ty.entity_set {
        "agentInstances" => &["agentCardManifest", "collections"],
        "agentCollections" => &["members"],
        _ => &[],
    }
}

/// The store's navigations for the query's `$expand` (checked against
/// [`expandable`] beforehand).
fn navigations(ty: &EntityType, q: &QueryOptions) -> Vec<Navigation> {
    q.expand
        .iter()
        .filter_map(|e| match (ty.entity_set, e.navigation.as_str()) {
            ("agentInstances", "agentCardManifest") => Some(Navigation::Manifest),
            ("agentInstances", "collections") => Some(Navigation::Collections),
            ("agentCollections", "members") => Some(Navigation::Members),
            _ => None,
        })
        .collect()
}

/// The kind of a registry entity type.
fn kind_of(ty: &'static EntityType) -> Entity {
    Entity::of_set(ty.entity_set).expect("a registry entity type")
}

/// One page of `ty`'s entities along `relation`.
async fn list_page(
    app: &AppState,
    tenant: &str,
    ty: &'static EntityType,
    relation: Relation<'_>,
    q: &ListQuery,
) -> Result<Page> {
    let page = app
        .store()
        .list_entities(kind_of(ty), tenant, relation, q)
        .await?;
    Ok(page)
}

/// Evaluates the conditional headers of a PATCH or DELETE: `None` when
/// there are none (and nothing is read), else the version the store must
/// still find when it writes. `current` loads the entity as the caller sees
/// it (404 when absent or hidden).
async fn expected_version(
    cond: &etag::Conditions,
    kind: Entity,
    current: impl std::future::Future<Output = Result<Stored>>,
) -> Result<Option<i64>> {
    if !cond.any() {
        return Ok(None);
    }
    let stored = current.await?;
    cond.expected_version(&stored, kind)
}

fn missing(kind: Entity, id: &str) -> ApiError {
    StoreError::NotFound {
        kind,
        id: id.to_owned(),
    }
    .into()
}

// ---------------------------------------------------------------- ManagedBy

/// `managedBy` of a stored document.
fn managed_by_of(stored: &Stored) -> Option<String> {
    stored
        .parse()
        .get("managedBy")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The object `id` of `kind` as the caller may see it (404 otherwise).
async fn require(
    app: &AppState,
    p: &Principal,
    grant: &Grant,
    kind: Entity,
    id: &str,
) -> Result<Stored> {
    let stored = app.store().get_entity(kind, &p.tenant_id, id).await?;
    visible(grant, kind, stored, id)
}

/// An object the caller may see: a caller restricted to the objects it
/// manages sees the others as absent (404 rather than 403, which would
/// disclose them).
fn visible(grant: &Grant, kind: Entity, stored: Option<Stored>, id: &str) -> Result<Stored> {
    let stored = stored.ok_or_else(|| missing(kind, id))?;
    if grant.restricted(kind).is_some()
        && grant
            .check_object(kind, managed_by_of(&stored).as_deref())
            .is_err()
    {
        return Err(missing(kind, id));
    }
    Ok(stored)
}

/// The condition a restricted caller's lists get: `managedBy eq '<app id>'`.
fn managed_filter(grant: &Grant, kind: Entity) -> Option<Expr> {
    grant
        .restricted(kind)
        .map(|app| filter::equals("managedBy", app))
}

/// Applies the grant's `*.ManagedBy` scope to a write body (see
/// [`crate::domain::Scope::claim`]).
fn claim_managed_by(
    grant: &Grant,
    kind: Entity,
    props: &mut Map<String, Value>,
    creating: bool,
) -> Result<()> {
    Ok(grant.scope().claim(kind, props, creating)?)
}

// ---------------------------------------------------------------- shaping

/// The JSON text of one entity as the query asks for it, `@odata.etag`
/// first: the stored text spliced when nothing reshapes it, else projected
/// and expanded. `related` holds the entities along each navigation of the
/// query's `$expand`, in order, read in the same snapshot as the entity.
fn shape(q: &QueryOptions, stored: Stored, related: Vec<Vec<Stored>>) -> String {
    let tag = etag::of(&stored);
    if q.expand.is_empty() {
        return respond::project_text(&stored.doc, &tag, q.select.as_deref());
    }
    let mut out = respond::project(stored.parse(), q.select.as_deref());
    for (e, entities) in q.expand.iter().zip(related) {
        let nested = e.select.as_deref();
        let value = if e.navigation == "agentCardManifest" {
            entities.into_iter().next().map_or(Value::Null, |m| {
                respond::object_with_etag(etag::of(&m), respond::project(m.parse(), nested))
            })
        } else {
            projected_array(entities, nested)
        };
        out.insert(e.navigation.clone(), value);
    }
    respond::object_with_etag(tag, out).to_string()
}

fn projected_array(entities: Vec<Stored>, select: Option<&[String]>) -> Value {
    Value::Array(
        entities
            .into_iter()
            .map(|s| respond::object_with_etag(etag::of(&s), respond::project(s.parse(), select)))
            .collect(),
    )
}

async fn entity_response(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    ty: &'static EntityType,
    q: &QueryOptions,
    stored: Stored,
) -> Result {
    entity_response_annotated(app, meta, tenant, ty, q, stored, Map::new()).await
}

/// A JSON object's text with `annotations` added (as it is when there are none).
fn with_annotations(text: String, annotations: Map<String, Value>) -> String {
    if annotations.is_empty() {
        return text;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut doc)) => {
            doc.extend(annotations);
            Value::Object(doc).to_string()
        }
        _ => text,
    }
}

/// [`entity_response`] with instance annotations added to the entity.
async fn entity_response_annotated(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    ty: &'static EntityType,
    q: &QueryOptions,
    stored: Stored,
    annotations: Map<String, Value>,
) -> Result {
    let (mut stored, related) = if q.expand.is_empty() {
        (stored, Vec::new())
    } else {
        // The entity again, with what it expands, as one snapshot.
        let id = stored.id.clone();
        let again = ListQuery {
            criteria: Criteria {
                filter: Some(filter::equals("id", &id)),
                search: None,
            },
            expand: navigations(ty, q),
            ..ListQuery::first(1)
        };
        let page = list_page(app, tenant, ty, Relation::All, &again).await?;
        match page.items.into_iter().zip(page.related).next() {
            Some(found) => found,
            None => return Err(missing(kind_of(ty), &id)),
        }
    };
    let tag = etag::of(&stored);
    let header = HeaderValue::from_str(&tag).ok();
    let body = if q.reshapes() {
        let context =
            respond::context_url(meta, ty, &format!("{}/$entity", q.context_projection()));
        // Annotations are kept whatever `$select` says, as `@odata.etag` is.
        let shaped = with_annotations(shape(q, stored, related), annotations);
        respond::entity_body(&context, &shaped)
    } else {
        stored.doc = with_annotations(std::mem::take(&mut stored.doc), annotations);
        respond::stored_entity_body(meta, ty, &tag, &stored.doc)
    };
    let mut response = respond::json(StatusCode::OK, body);
    if let Some(v) = header {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}

/// The body of a write's answer: the stored entity with its `@odata.context`
/// and `@odata.etag`.
fn written_body(meta: &RequestMeta, ty: &'static EntityType, stored: &Stored) -> String {
    respond::stored_entity_body(meta, ty, &etag::of(stored), &stored.doc)
}

fn created(meta: &RequestMeta, ty: &'static EntityType, stored: Stored) -> Result {
    let mut response = respond::json(StatusCode::CREATED, written_body(meta, ty, &stored));
    etag::set_header(&mut response, &stored);
    let key = percent_encoding::utf8_percent_encode(&stored.id, percent_encoding::NON_ALPHANUMERIC);
    let location = format!(
        "{}/{}/{}/{key}",
        meta.service_root(),
        ty.container,
        ty.entity_set
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// 204, or 200 with the entity when the client prefers a representation;
/// either way with the new `ETag`.
fn updated(meta: &RequestMeta, ty: &'static EntityType, prefer: bool, stored: Stored) -> Result {
    if !prefer {
        let mut response = respond::no_content();
        etag::set_header(&mut response, &stored);
        return Ok(response);
    }
    let mut response = respond::json(StatusCode::OK, written_body(meta, ty, &stored));
    response.headers_mut().insert(
        "preference-applied",
        HeaderValue::from_static("return=representation"),
    );
    etag::set_header(&mut response, &stored);
    Ok(response)
}

/// Checks the options of a single-entity request.
fn single(q: &ODataQuery, ty: &'static EntityType) -> Result<()> {
    q.options.for_single_entity()?;
    q.options.check_shape(ty, expandable(ty))?;
    Ok(())
}

/// The rows a `/$count` segment counts: `$filter` and `$search` apply (with
/// the server's own `restrict`), other options do not.
fn count_criteria(
    q: &ODataQuery,
    ty: &'static EntityType,
    restrict: Option<Expr>,
) -> Result<Criteria> {
    let o = &q.options;
    let refused = [
        ("$top", o.top.is_some()),
        ("$skip", o.skip.is_some()),
        ("$skiptoken", o.skiptoken.is_some()),
        ("$deltatoken", o.deltatoken.is_some()),
        ("$count", o.count),
        ("$orderby", !o.orderby.is_empty()),
        ("$select", o.select.is_some()),
        ("$expand", !o.expand.is_empty()),
    ];
    if let Some((name, _)) = refused.iter().find(|(_, present)| *present) {
        return Err(ODataError::NotApplicable(name).into());
    }
    o.check_shape(ty, &[])?;
    if o.search.is_some() && !q.eventual {
        return Err(ODataError::SearchNeedsConsistencyLevel.into());
    }
    Ok(Criteria {
        filter: filter::and(restrict, o.filter.clone()),
        search: o.search.clone(),
    })
}

/// A collection answer: one page, its next link, and the count when asked.
struct ListRequest<'a> {
    app: &'a AppState,
    meta: &'a RequestMeta,
    caller: &'a Principal,
    query: &'a ODataQuery,
    ty: &'static EntityType,
    /// A condition the server adds (what a restricted caller may see).
    restrict: Option<Expr>,
    /// The properties each item shows unless the client selects (all: `None`).
    summary: Option<&'static [&'static str]>,
    /// Without `$orderby`: newest first (by the property `created_at`
    /// mirrors) rather than by id.
    newest_first: bool,
}

impl ListRequest<'_> {
    fn page_query(&self) -> Result<ListQuery> {
        let q = &self.query.options;
        q.check_shape(self.ty, expandable(self.ty))?;
        if q.search.is_some() && !self.query.eventual {
            return Err(ODataError::SearchNeedsConsistencyLevel.into());
        }
        let after = match &q.skiptoken {
            Some(raw) => Some(self.app.paging().open(raw, &self.scope())?.cursor),
            None => None,
        };
        let order = match (q.orderby.is_empty(), self.newest_first) {
            (true, true) => vec![crate::odata::OrderKey {
                path: crate::odata::filter::Path {
                    segments: vec![self.created_property().to_owned()],
                    position: 0,
                },
                descending: true,
            }],
            _ => q.orderby.clone(),
        };
        Ok(ListQuery {
            criteria: self.criteria(),
            order,
            after,
            skip: if q.skiptoken.is_some() {
                0
            } else {
                q.skip.unwrap_or(0)
            },
            limit: q.top.unwrap_or(DEFAULT_TOP),
            expand: navigations(self.ty, q),
            count: q.count,
        })
    }

    fn created_property(&self) -> &'static str {
        match Entity::of_set(self.ty.entity_set) {
            Some(Entity::Audit) => "activityDateTime",
            _ => "createdDateTime",
        }
    }

    fn criteria(&self) -> Criteria {
        Criteria {
            filter: filter::and(self.restrict.clone(), self.query.options.filter.clone()),
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

    /// Pages `relation` with the request's options.
    async fn run(&self, relation: Relation<'_>) -> Result {
        let q = self.page_query()?;
        let page = list_page(self.app, &self.caller.tenant_id, self.ty, relation, &q).await?;
        self.respond(page)
    }

    fn respond(&self, page: Page) -> Result {
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
        let mut related = page.related.into_iter();
        let summary: Option<Vec<String>> = match (self.summary, &q.select) {
            (Some(props), None) => Some(props.iter().map(|p| (*p).to_owned()).collect()),
            _ => None,
        };
        let items: Vec<String> = page
            .items
            .into_iter()
            .map(|stored| match &summary {
                Some(props) => respond::project_text(&stored.doc, &etag::of(&stored), Some(props)),
                None => shape(q, stored, related.next().unwrap_or_default()),
            })
            .collect();
        let context = respond::context_url(self.meta, self.ty, &q.context_projection());
        Ok(respond::json(
            StatusCode::OK,
            respond::collection_body(&context, page.count, next.as_deref(), &items),
        ))
    }
}

// ---------------------------------------------------------------- singleton

async fn get_registry(Meta(meta): Meta, Caller(p): Caller, q: ODataQuery) -> Result {
    authorize(&p, Action::GetRegistry)?;
    if q.options.reshapes() {
        return Err(ODataError::NotImplemented("$select and $expand on agentRegistry").into());
    }
    q.options.for_single_entity()?;
    let context = format!("{}/$metadata#agentRegistry/$entity", meta.service_root());
    Ok(respond::json(
        StatusCode::OK,
        respond::entity_body(&context, "{}"),
    ))
}

/// The singleton has no writable property: an empty object is accepted.
async fn patch_registry(Caller(p): Caller, JsonBody(body): JsonBody) -> Result {
    authorize(&p, Action::UpdateRegistry)?;
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

//! `GET …/delta` on the registry's entity sets: Graph's delta query, read
//! from the change log every write appends to in its own transaction
//! (`RegistryStore::changes`).
//!
//! The first round pages the current state (`@odata.nextLink`) and ends
//! with an `@odata.deltaLink`; following it reports what changed since the
//! round began: each changed entity as it is now, each deleted one as
//! `{"id", "@removed": {"reason": "deleted"}}` (`"changed"` when it left
//! the caller's view), then a new delta link. `$deltatoken=latest` starts
//! from now. The state travels in the links, sealed like paging tokens and
//! bound to the tenant, the entity set and the `$select`.

use super::sets::Set;
use super::{Result, managed_by_of};
use crate::auth::permissions::{Reserved, authorize_on};
use crate::domain::subscriptions::ChangeType;
use crate::http::AppState;
use crate::http::etag;
use crate::http::extract::{Caller, Meta, ODataQuery};
use crate::http::request::RequestMeta;
use crate::http::respond;
use crate::odata::Cursor;
use crate::odata::{ODataError, QueryOptions};
use crate::store::{ChangeWindow, Criteria, ListQuery, Relation, StoreError, Stored};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Entities per page of the first round, changes per page of later ones.
const PAGE: usize = 100;

/// What a delta link or a delta round's next link stands for.
#[derive(Debug, Serialize, Deserialize)]
struct DeltaState {
    /// Tenant, entity set and `$select` the links were issued for.
    #[serde(rename = "s")]
    scope: String,
    /// When the position the round reports changes after was taken (Unix
    /// seconds): a state older than the change log's retention has expired.
    #[serde(rename = "i")]
    since: i64,
    #[serde(rename = "p")]
    phase: Phase,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k")]
enum Phase {
    /// Inside the first round, which pages the current state; `at` is the
    /// log's position when it began.
    #[serde(rename = "i")]
    Initial { at: String, after: Option<Cursor> },
    /// A delta link: the next round reports the changes after `from`.
    #[serde(rename = "d")]
    Since { from: String },
    /// Inside a round of changes (taken at `to_at`, Unix seconds).
    #[serde(rename = "c")]
    Changes {
        from: String,
        to: String,
        to_at: i64,
        after: i64,
    },
}

pub(super) async fn delta<S: Set>(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    q: ODataQuery,
) -> Result {
    let grant = authorize_on(&p, S::LIST, Reserved::No)?;
    let ty = S::ENTITY.ty();
    let o = &q.options;
    check_options(o, ty)?;
    let select = o.select.clone();
    let scope = format!(
        "{}:{}:{}",
        p.tenant_id,
        ty.entity_set,
        select.as_deref().unwrap_or_default().join(",")
    );
    let now = app.time().unix_timestamp();
    let store = app.store();
    let tenant = &p.tenant_id;
    let state = match (&o.skiptoken, &o.deltatoken) {
        (None, None) => DeltaState {
            scope: scope.clone(),
            since: now,
            phase: Phase::Initial {
                at: store.change_position(tenant).await?,
                after: None,
            },
        },
        (None, Some(latest)) if latest == "latest" => {
            let state = DeltaState {
                scope,
                since: now,
                phase: Phase::Since {
                    from: store.change_position(tenant).await?,
                },
            };
            return Ok(answer(&app, &meta, &q, Vec::new(), Link::Delta(&state)));
        }
        (Some(raw), None) | (None, Some(raw)) => {
            let state: DeltaState = app
                .paging()
                .open_any(raw)
                .filter(|s: &DeltaState| s.scope == scope)
                .ok_or(ODataError::InvalidDeltaToken)?;
            // A delta link's state comes back as $deltatoken, a next link's as $skiptoken.
            let is_delta_link = matches!(state.phase, Phase::Since { .. });
            if is_delta_link != o.deltatoken.is_some() {
                return Err(ODataError::InvalidDeltaToken.into());
            }
            state
        }
        (Some(_), Some(_)) => return Err(ODataError::InvalidDeltaToken.into()),
    };
    if now - state.since > i64::from(app.change_retention_days()) * 86_400 {
        return Err(StoreError::SyncStateExpired.into());
    }

    match state.phase {
        Phase::Initial { at, after } => {
            let restrict = S::list_restriction(&p, &grant, None);
            let page_query = ListQuery {
                criteria: Criteria {
                    filter: restrict,
                    search: None,
                },
                order: Vec::new(),
                after,
                skip: 0,
                limit: PAGE,
                expand: Vec::new(),
                count: false,
            };
            let page = store
                .list_entities(S::ENTITY, tenant, Relation::All, &page_query)
                .await?;
            let items = page
                .items
                .iter()
                .map(|stored| present(stored, select.as_deref()))
                .collect();
            let next = match (page.more, page.last) {
                (true, Some(cursor)) => DeltaState {
                    phase: Phase::Initial {
                        at,
                        after: Some(cursor),
                    },
                    ..state
                },
                _ => DeltaState {
                    phase: Phase::Since { from: at },
                    ..state
                },
            };
            Ok(answer(&app, &meta, &q, items, Link::for_state(&next)))
        }
        Phase::Since { from } => {
            let to = store.change_position(tenant).await?;
            let window = ChangeWindow { from, to, after: 0 };
            changes::<S>(
                &app,
                &meta,
                &q,
                &grant,
                tenant,
                state.scope,
                state.since,
                now,
                window,
            )
            .await
        }
        Phase::Changes {
            from,
            to,
            to_at,
            after,
        } => {
            let window = ChangeWindow { from, to, after };
            changes::<S>(
                &app,
                &meta,
                &q,
                &grant,
                tenant,
                state.scope,
                state.since,
                to_at,
                window,
            )
            .await
        }
    }
}

/// A page of a round of changes: each entity changed in `window` as it is
/// now (or removed), then a next link inside the round or a delta link
/// after it.
#[allow(clippy::too_many_arguments)]
async fn changes<S: Set>(
    app: &AppState,
    meta: &RequestMeta,
    q: &ODataQuery,
    grant: &crate::auth::permissions::Grant,
    tenant: &str,
    scope: String,
    since: i64,
    to_at: i64,
    window: ChangeWindow,
) -> Result {
    let store = app.store();
    let rows = store.changes(S::ENTITY, tenant, &window, PAGE).await?;
    let full = rows.len() == PAGE;
    let last = rows.last().map_or(window.after, |r| r.seq);
    // One item per entity, where its last change in the page stands.
    let mut order: Vec<&str> = Vec::new();
    for row in rows.iter().rev() {
        if !order.contains(&row.id.as_str()) {
            order.push(&row.id);
        }
    }
    order.reverse();
    let select = q.options.select.as_deref();
    let deleted: Vec<bool> = order
        .iter()
        .map(|&id| {
            rows.iter()
                .rev()
                .find(|r| r.id == id)
                .is_some_and(|r| r.change == ChangeType::Deleted)
        })
        .collect();
    // Those still there, read together (in one statement on PostgreSQL).
    let present_ids: Vec<&str> = order
        .iter()
        .zip(&deleted)
        .filter(|(_, gone)| !**gone)
        .map(|(id, _)| *id)
        .collect();
    let mut read = store
        .get_entities(S::ENTITY, tenant, &present_ids)
        .await?
        .into_iter();
    let mut items = Vec::with_capacity(order.len());
    for (id, gone) in order.into_iter().zip(deleted) {
        let stored = if gone { None } else { read.next().flatten() };
        items.push(match stored {
            // Deleted, or deleted after this change: its delete comes later too.
            None => removed(id, "deleted"),
            Some(stored)
                if grant.restricted(S::ENTITY).is_some()
                    && grant
                        .check_object(S::ENTITY, managed_by_of(&stored).as_deref())
                        .is_err() =>
            {
                removed(id, "changed")
            }
            Some(stored) => present(&stored, select),
        });
    }
    let next = if full {
        DeltaState {
            scope,
            since,
            phase: Phase::Changes {
                from: window.from,
                to: window.to,
                to_at,
                after: last,
            },
        }
    } else {
        DeltaState {
            scope,
            since: to_at,
            phase: Phase::Since { from: window.to },
        }
    };
    Ok(answer(app, meta, q, items, Link::for_state(&next)))
}

/// Only `$select` shapes a delta query (and the links' own tokens).
fn check_options(o: &QueryOptions, ty: &'static crate::domain::schema::EntityType) -> Result<()> {
    let refused = [
        ("$top", o.top.is_some()),
        ("$skip", o.skip.is_some()),
        ("$count", o.count),
        ("$filter", o.filter.is_some()),
        ("$orderby", !o.orderby.is_empty()),
        ("$search", o.search.is_some()),
        ("$expand", !o.expand.is_empty()),
    ];
    if let Some((name, _)) = refused.iter().find(|(_, present)| *present) {
        return Err(ODataError::NotApplicable(name).into());
    }
    let shape = QueryOptions {
        select: o.select.clone(),
        ..QueryOptions::default()
    };
    shape.check_shape(ty, &[])?;
    Ok(())
}

fn present(stored: &Stored, select: Option<&[String]>) -> Value {
    respond::object_with_etag(etag::of(stored), respond::project(stored.parse(), select))
}

fn removed(id: &str, reason: &str) -> Value {
    json!({ "id": id, "@removed": { "reason": reason } })
}

/// Where a page points the client next.
enum Link<'a> {
    Next(&'a DeltaState),
    Delta(&'a DeltaState),
}

impl<'a> Link<'a> {
    fn for_state(state: &'a DeltaState) -> Link<'a> {
        match state.phase {
            Phase::Since { .. } => Link::Delta(state),
            _ => Link::Next(state),
        }
    }
}

fn answer(
    app: &AppState,
    meta: &RequestMeta,
    q: &ODataQuery,
    items: Vec<Value>,
    link: Link<'_>,
) -> axum::response::Response {
    let (name, option, state) = match link {
        Link::Next(s) => ("@odata.nextLink", "$skiptoken", s),
        Link::Delta(s) => ("@odata.deltaLink", "$deltatoken", s),
    };
    let token = app.paging().seal_any(state);
    let mut url = format!("{}{}?", meta.origin, q.path);
    if let Some(select) = &q.options.select {
        url.push_str("$select=");
        url.push_str(&percent_encoding::utf8_percent_encode(&select.join(","), QUERY).to_string());
        url.push('&');
    }
    url.push_str(option);
    url.push('=');
    url.push_str(&token);
    let ty = q.path.rsplit('/').nth(1).unwrap_or_default();
    let mut body = serde_json::Map::new();
    body.insert(
        "@odata.context".into(),
        format!(
            "{}/$metadata#Collection({})",
            meta.service_root(),
            qualified(ty)
        )
        .into(),
    );
    body.insert("value".into(), Value::Array(items));
    body.insert(name.into(), url.into());
    respond::json(StatusCode::OK, Value::Object(body).to_string())
}

/// The entity type of an entity set's delta, for the context URL.
fn qualified(set: &str) -> &'static str {
    crate::store::Entity::of_set(set).map_or("microsoft.graph.entity", |e| e.ty().qualified)
}

/// What a `$select` value keeps unencoded in a link.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b',')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

//! `/subscriptions`: change notification subscriptions. Creating one needs
//! read permission on the resource it follows and a receiver that passes
//! Graph's validation handshake; an application sees the subscriptions it
//! created. Delivery is [`crate::notify`]'s.

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, Keys, Meta};
use super::request::RequestMeta;
use super::respond;
use super::routes::Subscriptions;
use crate::auth::Principal;
use crate::auth::permissions::{Action, authorize};
use crate::domain::audit::{self, Action as Audited};
use crate::domain::subscriptions::{self, Creator};
use crate::domain::{Entity, WriteContext};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Map, Value};

type Result<T = Response> = std::result::Result<T, ApiError>;

pub fn handler(op: Subscriptions, method: MethodFilter) -> MethodRouter<AppState> {
    match op {
        Subscriptions::List => on(method, list),
        Subscriptions::Create => on(method, create),
        Subscriptions::Get => on(method, get),
        Subscriptions::Update => on(method, update),
        Subscriptions::Delete => on(method, delete),
        Subscriptions::Reauthorize => on(method, reauthorize),
    }
}

/// The read permission a subscription to `entity`'s changes needs.
fn read_action(entity: Entity) -> Action {
    match entity {
        Entity::Manifest => Action::ListManifests,
        Entity::Collection => Action::ListCollections,
        Entity::Registration => Action::ListRegistrations,
        _ => Action::ListInstances,
    }
}

fn creator<'a>(app: &AppState, p: &'a Principal) -> Creator<'a> {
    Creator {
        application_id: p.app_id.as_deref(),
        creator_id: p.object_id.as_deref(),
        now: app.time(),
        max_minutes: app.notifier().settings().max_minutes,
    }
}

/// Whether the caller's application created the subscription.
fn owned_by(doc: &Map<String, Value>, p: &Principal) -> bool {
    doc.get("applicationId").and_then(Value::as_str) == p.app_id.as_deref()
}

fn entity_body(meta: &RequestMeta, status: StatusCode, doc: Map<String, Value>) -> Response {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{}/$metadata#subscriptions/$entity", meta.service_root()).into(),
    );
    body.extend(doc);
    respond::json(status, Value::Object(body).to_string())
}

/// Records a subscription write in the audit log.
async fn record(
    app: &AppState,
    p: &Principal,
    action: Audited,
    doc: &Map<String, Value>,
) -> Result<()> {
    let text = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or("");
    let event = audit::subscription_event(action, text("id"), text("resource"));
    let ctx = WriteContext {
        now: app.now(),
        actor: p.actor_id().map(str::to_owned),
        initiator: Some(super::request::initiator(p)),
        ..WriteContext::default()
    };
    app.store().record_event(&p.tenant_id, event, &ctx).await?;
    Ok(())
}

async fn owned(app: &AppState, p: &Principal, id: &str) -> Result<Map<String, Value>> {
    match app.store().get_subscription(&p.tenant_id, id).await? {
        Some(doc) if owned_by(&doc, p) => Ok(doc),
        _ => Err(ApiError::SubscriptionNotFound(id.to_owned())),
    }
}

async fn list(State(app): State<AppState>, Meta(meta): Meta, Caller(p): Caller) -> Result {
    let docs: Vec<Value> = app
        .store()
        .list_subscriptions(&p.tenant_id)
        .await?
        .into_iter()
        .filter(|d| owned_by(d, &p))
        .map(Value::Object)
        .collect();
    let body = serde_json::json!({
        "@odata.context": format!("{}/$metadata#subscriptions", meta.service_root()),
        "value": docs,
    });
    Ok(respond::json(StatusCode::OK, body.to_string()))
}

async fn create(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    body: std::result::Result<JsonBody, ApiError>,
) -> Result {
    let JsonBody(body) = body?;
    let sub = subscriptions::parse_create(body, &creator(&app, &p))?;
    authorize(&p, read_action(sub.entity))?;
    let notifier = app.notifier();
    for name in ["notificationUrl", "lifecycleNotificationUrl"] {
        if let Some(url) = sub.doc.get(name).and_then(Value::as_str) {
            notifier.validate(url).await?;
        }
    }
    let expires = crate::clock::entity_timestamp(sub.expires);
    app.store()
        .create_subscription(&p.tenant_id, sub.entity, &sub.doc, &expires, &app.now())
        .await?;
    record(&app, &p, Audited::Create, &sub.doc).await?;
    Ok(entity_body(&meta, StatusCode::CREATED, sub.doc))
}

async fn get(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    let doc = owned(&app, &p, &id).await?;
    Ok(entity_body(&meta, StatusCode::OK, doc))
}

/// Renews a subscription (`expirationDateTime`) or moves it to another
/// receiver (`notificationUrl`, which must pass the handshake).
async fn update(
    State(app): State<AppState>,
    Meta(meta): Meta,
    Caller(p): Caller,
    Keys(id): Keys<String>,
    body: std::result::Result<JsonBody, ApiError>,
) -> Result {
    let mut doc = owned(&app, &p, &id).await?;
    let JsonBody(body) = body?;
    let renewal = subscriptions::parse_renewal(body, &creator(&app, &p))?;
    if let Some(url) = &renewal.notification_url {
        app.notifier().validate(url).await?;
    }
    renewal.apply(&mut doc);
    let expires = doc
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !app
        .store()
        .update_subscription(&p.tenant_id, &id, &doc, &expires)
        .await?
    {
        return Err(ApiError::SubscriptionNotFound(id));
    }
    record(&app, &p, Audited::Update, &doc).await?;
    Ok(entity_body(&meta, StatusCode::OK, doc))
}

async fn delete(State(app): State<AppState>, Caller(p): Caller, Keys(id): Keys<String>) -> Result {
    let doc = owned(&app, &p, &id).await?;
    if !app.store().delete_subscription(&p.tenant_id, &id).await? {
        return Err(ApiError::SubscriptionNotFound(id));
    }
    record(&app, &p, Audited::Delete, &doc).await?;
    Ok(respond::no_content())
}

/// Graph's answer to a `reauthorizationRequired` lifecycle event; Agentry
/// never sends one (its subscriptions outlive tokens), so this only checks
/// the subscription is the caller's.
async fn reauthorize(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys(id): Keys<String>,
) -> Result {
    owned(&app, &p, &id).await?;
    Ok(respond::no_content())
}

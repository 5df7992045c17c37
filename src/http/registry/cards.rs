//! `/a2a/{tenantId}/agents/{id}/.well-known/agent-card.json`: the A2A card
//! of a registered agent, for A2A clients. An agent instance's card is
//! built from the instance and the manifest it links (as the migration to
//! registrations maps them); a registration's is its `agentCard`. Served in
//! the v1.0 shape, or in v0.3 when the client sends `A2A-Version: 0.3`,
//! with the card's signatures as stored (dropped from a card converted to
//! the other shape, which they do not cover), an `ETag` and `If-None-Match`.
//! Quarantined instances are not served.

use super::{Result, visible};
use crate::auth::permissions::{Action, authorize};
use crate::domain::{Entity, a2a, migration};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, Keys};
use crate::store::StoreError;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

/// The id of the built-in Quarantined collection.
const QUARANTINED: &str = "00000000-0000-0000-0000-000000000002";

/// Which A2A shape the client asked for.
fn wants_v03(headers: &HeaderMap) -> bool {
    headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("0."))
}

pub(super) async fn agent_card(
    State(app): State<AppState>,
    Caller(p): Caller,
    Keys((tenant, id)): Keys<(String, String)>,
    headers: HeaderMap,
) -> Result {
    // A card of another tenant is as absent as one that does not exist.
    let missing = || {
        ApiError::Store(StoreError::NotFound {
            kind: Entity::Instance,
            id: id.clone(),
        })
    };
    if tenant != p.tenant_id {
        return Err(missing());
    }
    let card = match instance_card(&app, &p, &id).await? {
        Some(card) => card,
        None => registration_card(&app, &p, &id)
            .await?
            .ok_or_else(missing)?,
    };
    let v03 = wants_v03(&headers);
    let stored_v03 = card
        .as_object()
        .and_then(a2a::detect)
        .is_some_and(|v| v == a2a::CardVersion::V03);
    let mut card = if v03 {
        a2a::to_v03(&card)
    } else {
        a2a::to_v1(&card)
    };
    if v03 != stored_v03
        && let Some(obj) = card.as_object_mut()
    {
        // Signatures cover the shape that was signed: a converted card
        // goes out unsigned rather than with signatures that cannot verify.
        obj.remove("signatures");
    }
    let body = card.to_string();
    let tag = entity_tag(&body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        crate::http::respond::json(StatusCode::OK, body)
    };
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, A2A-Version"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        "a2a-version",
        HeaderValue::from_static(if v03 { "0.3" } else { "1.0" }),
    );
    Ok(response)
}

/// The card of the instance `id`, if there is one the caller may read and
/// it is not quarantined; `None` when there is no such instance.
async fn instance_card(
    app: &AppState,
    p: &crate::auth::Principal,
    id: &str,
) -> Result<Option<Value>> {
    let Some(stored) = app
        .store()
        .get_entity(Entity::Instance, &p.tenant_id, id)
        .await?
    else {
        return Ok(None);
    };
    let grant = authorize(p, Action::GetInstance)?;
    let stored = visible(&grant, Entity::Instance, Some(stored), id)?;
    if app.store().is_member(&p.tenant_id, QUARANTINED, id).await? {
        return Err(ApiError::Store(StoreError::NotFound {
            kind: Entity::Instance,
            id: id.to_owned(),
        }));
    }
    let manifest = app.store().get_instance_manifest(&p.tenant_id, id).await?;
    let manifest = manifest.map(|m| m.parse());
    let card = migration::card_of(&stored.parse(), manifest.as_ref());
    card.map(Some).ok_or_else(|| no_card(id))
}

async fn registration_card(
    app: &AppState,
    p: &crate::auth::Principal,
    id: &str,
) -> Result<Option<Value>> {
    let Some(stored) = app
        .store()
        .get_entity(Entity::Registration, &p.tenant_id, id)
        .await?
    else {
        return Ok(None);
    };
    let grant = authorize(p, Action::GetRegistration)?;
    let doc = visible(&grant, Entity::Registration, Some(stored), id)?.parse();
    match doc.get("agentCard") {
        Some(card @ Value::Object(_)) => Ok(Some(card.clone())),
        _ => Err(no_card(id)),
    }
}

fn no_card(id: &str) -> ApiError {
    ApiError::AgentHasNoCard(id.to_owned())
}

/// A strong tag of the bytes served: equal bodies, equal tags, on every replica.
fn entity_tag(body: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = sha2::Sha256::digest(body.as_bytes());
    format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash[..18])
    )
}

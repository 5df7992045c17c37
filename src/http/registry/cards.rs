//! `/a2a/{tenantId}/agents/{id}/.well-known/agent-card.json`: the A2A card
//! of a registered agent, for A2A clients. An agent instance's card is
//! built from the instance and the manifest it links (as the migration to
//! registrations maps them); a registration's is its `agentCard`. Served in
//! the v1.0 shape, or in v0.3 when the client sends `A2A-Version: 0.3`,
//! with the card's signatures as stored (dropped from a card converted to
//! the other shape, which they do not cover), an `ETag` and `If-None-Match`.
//! Quarantined instances are not served.
//!
//! `/a2a/{tenantId}/agents` lists the cards a caller may fetch, filtered by
//! skill, tag or text, for discovery.
//!
//! A caller with a token of the tenant sees what its read permissions
//! allow; one without a token (or with another tenant's) sees the members
//! of the collections the tenant publishes (`publishedCollections` of its
//! A2A settings) and nothing else.

use super::{Result, managed_filter, visible};
use crate::auth::Principal;
use crate::auth::permissions::{Action, authorize};
use crate::domain::{Entity, a2a, migration};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Keys, MaybeCaller, Meta};
use crate::odata::{Cursor, filter};
use crate::store::{Criteria, ListQuery, Navigation, Relation, StoreError, Stored};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use std::sync::Arc;

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
    MaybeCaller(caller): MaybeCaller,
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
    let caller = caller.filter(|p| p.tenant_id == tenant);
    let card = match &caller {
        Some(p) => match instance_card(&app, p, &id).await? {
            Some(card) => card,
            None => registration_card(&app, p, &id).await?.ok_or_else(missing)?,
        },
        None => published_card(&app, &tenant, &id)
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
        HeaderValue::from_static(if caller.is_some() {
            "private, max-age=300"
        } else {
            "public, max-age=300"
        }),
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
async fn instance_card(app: &AppState, p: &Principal, id: &str) -> Result<Option<Value>> {
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
    built_card(app, &p.tenant_id, &stored).await.map(Some)
}

/// The card of an instance, built with the manifest it links.
async fn built_card(app: &AppState, tenant: &str, stored: &Stored) -> Result<Value> {
    let manifest = app
        .store()
        .get_instance_manifest(tenant, &stored.id)
        .await?;
    let manifest = manifest.map(|m| m.parse());
    migration::card_of(&stored.parse(), manifest.as_ref()).ok_or_else(|| no_card(&stored.id))
}

/// The card of the instance `id` if the tenant publishes it (a member of a
/// published collection, not quarantined); `None` otherwise.
async fn published_card(app: &AppState, tenant: &str, id: &str) -> Result<Option<Value>> {
    let published = app.a2a(tenant).await?.published;
    if published.is_empty() || app.store().is_member(tenant, QUARANTINED, id).await? {
        return Ok(None);
    }
    let mut member = false;
    for collection in &published {
        if app.store().is_member(tenant, collection, id).await? {
            member = true;
            break;
        }
    }
    if !member {
        return Ok(None);
    }
    let Some(stored) = app.store().get_entity(Entity::Instance, tenant, id).await? else {
        return Ok(None);
    };
    built_card(app, tenant, &stored).await.map(Some)
}

async fn registration_card(app: &AppState, p: &Principal, id: &str) -> Result<Option<Value>> {
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

// ---------------------------------------------------------------- discovery

/// The most cards one page lists, and the default.
const MAX_TOP: usize = 200;
const DEFAULT_TOP: usize = 50;
/// The most agents one request reads while looking for matches: a page
/// can come back short (with a next link) rather than scan a whole tenant.
const SCAN_BUDGET: usize = 2_000;
/// Agents read per store query while scanning.
const CHUNK: usize = 200;

/// What a discovery request asks for.
#[derive(Debug, Default)]
struct Discovery {
    skill: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    top: usize,
    /// Where the previous page stopped: the kind scanned and the last id.
    after: Option<(Entity, String)>,
}

impl Discovery {
    fn parse(raw: Option<&str>) -> std::result::Result<Discovery, crate::odata::ODataError> {
        use crate::odata::{ODataError, query_pairs};
        let mut d = Discovery {
            top: DEFAULT_TOP,
            ..Discovery::default()
        };
        for (name, value) in query_pairs(raw)? {
            let text = (!value.is_empty()).then(|| value.clone());
            match name.as_str() {
                "skill" => d.skill = text,
                "tag" => d.tag = text,
                "q" => d.q = text.map(|t| t.to_lowercase()),
                "top" => {
                    d.top = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or(ODataError::InvalidValue {
                            option: "top",
                            value,
                            reason: "expected a whole number from 1 to 200",
                        })?;
                }
                "cursor" => {
                    d.after = Some(decode_cursor(&value).ok_or(ODataError::InvalidValue {
                        option: "cursor",
                        value,
                        reason: "not a cursor this server issued",
                    })?);
                }
                _ => return Err(ODataError::UnknownOption(name)),
            }
        }
        Ok(d)
    }

    /// Whether a card matches: `skill` an id or (case-insensitively) a name
    /// of one of its skills, `tag` one of their tags exactly, `q` a piece
    /// of its name, description, or a skill's name, description or tags.
    fn matches(&self, card: &Value) -> bool {
        let skills: &[Value] = card
            .get("skills")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let text = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tags = |s: &Value| -> Vec<String> {
            s.get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(skill) = &self.skill
            && !skills
                .iter()
                .any(|s| text(s, "id") == *skill || text(s, "name").eq_ignore_ascii_case(skill))
        {
            return false;
        }
        if let Some(tag) = &self.tag
            && !skills.iter().any(|s| tags(s).contains(tag))
        {
            return false;
        }
        if let Some(q) = &self.q {
            let mut haystack = vec![text(card, "name"), text(card, "description")];
            for s in skills {
                haystack.push(text(s, "name"));
                haystack.push(text(s, "description"));
                haystack.extend(tags(s));
            }
            if !haystack
                .iter()
                .any(|h| h.to_lowercase().contains(q.as_str()))
            {
                return false;
            }
        }
        true
    }
}

fn encode_cursor(kind: Entity, id: &str) -> String {
    use base64::Engine;
    let prefix = if kind == Entity::Instance { "i:" } else { "r:" };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}{id}"))
}

fn decode_cursor(text: &str) -> Option<(Entity, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    match text.split_at_checked(2)? {
        ("i:", id) => Some((Entity::Instance, id.to_owned())),
        ("r:", id) => Some((Entity::Registration, id.to_owned())),
        _ => None,
    }
}

/// Who lists, and what of each kind they may see.
struct Audience {
    /// `None`: anonymous, the published collections' members only.
    caller: Option<Arc<Principal>>,
    published: Vec<String>,
}

impl Audience {
    /// Whether the audience sees `kind` at all, and the condition its
    /// entities must meet (a `*.ManagedBy` grant sees its own only).
    fn scope(&self, kind: Entity) -> Option<Option<crate::odata::Expr>> {
        match &self.caller {
            Some(p) => {
                let action = match kind {
                    Entity::Instance => Action::ListInstances,
                    _ => Action::ListRegistrations,
                };
                authorize(p, action)
                    .ok()
                    .map(|grant| managed_filter(&grant, kind))
            }
            None if kind == Entity::Instance && !self.published.is_empty() => Some(None),
            None => None,
        }
    }
}

/// `GET /a2a/{tenantId}/agents?skill=&tag=&q=&top=&cursor=`: the cards the
/// caller may fetch that match, instances first, each kind in id order.
pub(super) async fn list_cards(
    State(app): State<AppState>,
    Meta(meta): Meta,
    MaybeCaller(caller): MaybeCaller,
    Keys(tenant): Keys<String>,
    uri: axum::http::Uri,
) -> Result {
    let request = Discovery::parse(uri.query())?;
    let caller = caller.filter(|p| p.tenant_id == tenant);
    let audience = Audience {
        published: app.a2a(&tenant).await?.published,
        caller,
    };
    let (instances, registrations) = (
        audience.scope(Entity::Instance),
        audience.scope(Entity::Registration),
    );
    if audience.caller.is_some() && instances.is_none() && registrations.is_none() {
        // Neither read permission: refused as a list of instances would be.
        if let Some(p) = &audience.caller {
            authorize(p, Action::ListInstances)?;
        }
    }
    let mut found = Vec::new();
    let mut budget = SCAN_BUDGET;
    let mut next = None;
    let mut kinds = vec![
        (Entity::Instance, instances),
        (Entity::Registration, registrations),
    ];
    if let Some((Entity::Registration, _)) = &request.after {
        kinds.remove(0);
    }
    'kinds: for (kind, scope) in kinds {
        let Some(restriction) = scope else { continue };
        let mut after = match &request.after {
            Some((k, id)) if *k == kind => Some(id.clone()),
            _ => None,
        };
        loop {
            if budget == 0 {
                // Read enough: the next page goes on from here.
                next = Some((kind, after.unwrap_or_default()));
                break 'kinds;
            }
            let chunk = CHUNK.min(budget);
            let q = ListQuery {
                criteria: Criteria {
                    filter: filter::and(
                        restriction.clone(),
                        tag_filter(kind, request.tag.as_deref()),
                    ),
                    search: None,
                },
                after: after.clone().map(|id| Cursor {
                    values: Vec::new(),
                    id,
                }),
                expand: if kind == Entity::Instance {
                    vec![Navigation::Manifest, Navigation::Collections]
                } else {
                    Vec::new()
                },
                ..ListQuery::first(chunk)
            };
            let page = app
                .store()
                .list_entities(kind, &tenant, Relation::All, &q)
                .await?;
            budget -= page.items.len().min(budget);
            let related = page
                .related
                .into_iter()
                .chain(std::iter::repeat_with(Vec::new));
            for (stored, related) in page.items.into_iter().zip(related) {
                after = Some(stored.id.clone());
                let Some(card) = discoverable(
                    kind,
                    &stored,
                    related,
                    &audience.published,
                    audience.caller.is_none(),
                ) else {
                    continue;
                };
                if request.matches(&card) {
                    found.push(entry(&meta, &tenant, kind, &stored.id, card));
                    if found.len() == request.top {
                        next = Some((kind, stored.id.clone()));
                        break 'kinds;
                    }
                }
            }
            if !page.more {
                break;
            }
        }
    }
    let mut body = Map::new();
    body.insert("value".into(), Value::Array(found));
    if let Some((kind, id)) = next {
        let mut query: Vec<String> = Vec::new();
        for (name, value) in [
            ("skill", request.skill.as_deref()),
            ("tag", request.tag.as_deref()),
            ("q", request.q.as_deref()),
        ] {
            if let Some(v) = value {
                query.push(format!("{name}={}", encode(v)));
            }
        }
        if request.top != DEFAULT_TOP {
            query.push(format!("top={}", request.top));
        }
        query.push(format!("cursor={}", encode_cursor(kind, &id)));
        body.insert(
            "nextLink".into(),
            format!(
                "{}/a2a/{}/agents?{}",
                meta.origin,
                encode(&tenant),
                query.join("&")
            )
            .into(),
        );
    }
    let mut response = crate::http::respond::plain_json(StatusCode::OK, &Value::Object(body));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, crate::http::routes::KEY_ENCODE).to_string()
}

/// The store's condition for a tag, where an index answers it (the skill
/// tags of an instance's manifest); the match is checked on the card too.
fn tag_filter(kind: Entity, tag: Option<&str>) -> Option<crate::odata::Expr> {
    let tag = tag?;
    if kind != Entity::Instance {
        return None;
    }
    let text = format!(
        "agentCardManifest/skills/any(s: s/tags/any(t: t eq '{}'))",
        tag.replace('\'', "''")
    );
    filter::parse(&text).ok()
}

/// The card of a listed agent, if the audience may fetch it: instances not
/// quarantined (and, anonymously, in a published collection), registrations
/// with a card.
fn discoverable(
    kind: Entity,
    stored: &Stored,
    related: Vec<Vec<Stored>>,
    published: &[String],
    anonymous: bool,
) -> Option<Value> {
    if kind == Entity::Registration {
        return stored
            .parse()
            .get("agentCard")
            .filter(|c| c.is_object())
            .cloned();
    }
    let mut related = related.into_iter();
    let manifest = related.next().and_then(|m| m.into_iter().next());
    let collections: Vec<String> = related
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if collections.iter().any(|c| c == QUARANTINED) {
        return None;
    }
    if anonymous && !collections.iter().any(|c| published.contains(c)) {
        return None;
    }
    let manifest = manifest.map(|m| m.parse());
    migration::card_of(&stored.parse(), manifest.as_ref())
}

/// One entry of a discovery list: where to fetch the card, and the card.
fn entry(
    meta: &crate::http::request::RequestMeta,
    tenant: &str,
    kind: Entity,
    id: &str,
    card: Value,
) -> Value {
    json!({
        "id": id,
        "kind": if kind == Entity::Instance { "agentInstance" } else { "agentRegistration" },
        "cardUrl": format!(
            "{}/a2a/{}/agents/{}/.well-known/agent-card.json",
            meta.origin,
            encode(tenant),
            encode(id)
        ),
        "card": a2a::to_v1(&card),
    })
}

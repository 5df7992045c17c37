//! `GET /_agentry/a2a/agents`: the control plane's view of agents by what
//! Agentry knows of their cards: the health of watched agents (`health=`),
//! and the signature and validation outcomes recorded on registrations
//! (`signature=`, `validation=`), of one kind of agent (`kind=`). Paged
//! with `top` and `cursor`.

use super::AppState;
use super::error::ApiError;
use super::request::RequestMeta;
use crate::domain::a2a::{ANNOTATION, SIGNATURE_ANNOTATION};
use crate::odata::{Cursor, ODataError, query_pairs};
use crate::store::{Entity, ListQuery, Relation};
use crate::watch::Health;
use serde_json::{Map, Value, json};

const DEFAULT_TOP: usize = 50;
const MAX_TOP: usize = 200;
/// Registrations read per request while looking for matches.
const SCAN_BUDGET: usize = 2_000;

/// The signature outcomes `signature=` takes.
const SIGNATURE_RESULTS: [&str; 6] = [
    "verified",
    "unsigned",
    "invalid",
    "untrusted-key",
    "expired-key",
    "revoked-key",
];

#[derive(Debug, Default)]
pub(super) struct AgentQuery {
    health: Option<Health>,
    signature: Option<String>,
    /// `valid` or `invalid`.
    validation: Option<bool>,
    /// Only agent instances, or only registrations.
    kind: Option<Entity>,
    top: usize,
    after: Option<(Entity, String)>,
}

impl AgentQuery {
    pub(super) fn parse(raw: Option<&str>) -> Result<AgentQuery, ODataError> {
        let mut q = AgentQuery {
            top: DEFAULT_TOP,
            ..AgentQuery::default()
        };
        for (name, value) in query_pairs(raw)? {
            let invalid = |option: &'static str, reason: &'static str| ODataError::InvalidValue {
                option,
                value: value.clone(),
                reason,
            };
            match name.as_str() {
                "health" => {
                    q.health = Some(Health::parse(&value).ok_or_else(|| {
                        invalid("health", "expected healthy, drifted or unreachable")
                    })?);
                }
                "signature" => {
                    if !SIGNATURE_RESULTS.contains(&value.as_str()) {
                        return Err(invalid(
                            "signature",
                            "expected verified, unsigned, invalid, untrusted-key, expired-key or revoked-key",
                        ));
                    }
                    q.signature = Some(value);
                }
                "validation" => {
                    q.validation = Some(match value.as_str() {
                        "valid" => true,
                        "invalid" => false,
                        _ => return Err(invalid("validation", "expected valid or invalid")),
                    });
                }
                "kind" => {
                    q.kind = Some(match value.as_str() {
                        "agentInstance" => Entity::Instance,
                        "agentRegistration" => Entity::Registration,
                        _ => {
                            return Err(invalid(
                                "kind",
                                "expected agentInstance or agentRegistration",
                            ));
                        }
                    });
                }
                "top" => {
                    q.top = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| invalid("top", "expected a whole number from 1 to 200"))?;
                }
                "cursor" => {
                    q.after = Some(
                        decode_cursor(&value)
                            .ok_or_else(|| invalid("cursor", "not a cursor this server issued"))?,
                    );
                }
                _ => return Err(ODataError::UnknownOption(name)),
            }
        }
        Ok(q)
    }

    /// Whether a registration's (or instance's) document matches the
    /// signature and validation filters.
    fn matches(&self, doc: &Map<String, Value>) -> bool {
        if let Some(want) = &self.signature
            && doc
                .get(SIGNATURE_ANNOTATION)
                .and_then(|s| s.get("result"))
                .and_then(Value::as_str)
                != Some(want.as_str())
        {
            return false;
        }
        if let Some(valid) = self.validation
            && doc
                .get(ANNOTATION)
                .and_then(|v| v.get("valid"))
                .and_then(Value::as_bool)
                != Some(valid)
        {
            return false;
        }
        true
    }
}

fn encode_cursor(kind: Entity, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}\n{id}", kind.ty().entity_set))
}

fn decode_cursor(text: &str) -> Option<(Entity, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (set, id) = text.split_once('\n')?;
    Some((Entity::of_set(set)?, id.to_owned()))
}

fn entry(
    kind: Entity,
    id: &str,
    doc: Option<&Map<String, Value>>,
    health: Option<Map<String, Value>>,
) -> Value {
    let annotation = |name: &str| {
        doc.and_then(|d| d.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "id": id,
        "kind": if kind == Entity::Instance { "agentInstance" } else { "agentRegistration" },
        "cardValidation": annotation(ANNOTATION),
        "cardSignature": annotation(SIGNATURE_ANNOTATION),
        "health": health.map_or(Value::Null, Value::Object),
    })
}

pub(super) async fn list(
    app: &AppState,
    meta: &RequestMeta,
    tenant: &str,
    q: &AgentQuery,
) -> Result<Value, ApiError> {
    let store = app.store();
    let mut found = Vec::new();
    let mut next = None;
    if let Some(health) = q.health {
        // The watch records in that state, in (kind, id) order.
        let mut after = q.after.clone();
        let mut budget = SCAN_BUDGET;
        'scan: loop {
            let records = store
                .list_health(
                    tenant,
                    Some(health.as_str()),
                    after.as_ref().map(|(k, id)| (*k, id.as_str())),
                    100.min(budget),
                )
                .await?;
            let done = records.len() < 100.min(budget);
            budget -= records.len();
            for record in records {
                after = Some((record.entity, record.id.clone()));
                if q.kind.is_some_and(|k| k != record.entity) {
                    continue;
                }
                let doc = match (&q.signature, q.validation) {
                    (None, None) => None,
                    _ => store
                        .get_entity(record.entity, tenant, &record.id)
                        .await?
                        .map(|s| s.parse()),
                };
                if doc.as_ref().is_some_and(|d| !q.matches(d))
                    || (doc.is_none() && (q.signature.is_some() || q.validation.is_some()))
                {
                    continue;
                }
                found.push(entry(
                    record.entity,
                    &record.id,
                    doc.as_ref(),
                    Some(record.doc),
                ));
                if found.len() == q.top {
                    next = after.clone();
                    break 'scan;
                }
            }
            if done {
                break;
            }
            if budget == 0 {
                next = after;
                break;
            }
        }
    } else if q.kind != Some(Entity::Instance) {
        // Registrations, by the annotations their documents carry (an
        // instance's card is validated when read, and carries none).
        let mut after = match &q.after {
            Some((Entity::Registration, id)) => Some(id.clone()),
            _ => None,
        };
        let mut budget = SCAN_BUDGET;
        'pages: loop {
            let query = ListQuery {
                after: after.clone().map(|id| Cursor {
                    values: Vec::new(),
                    id,
                }),
                ..ListQuery::first(200.min(budget))
            };
            let page = store
                .list_entities(Entity::Registration, tenant, Relation::All, &query)
                .await?;
            budget -= page.items.len().min(budget);
            for stored in page.items {
                after = Some(stored.id.clone());
                let doc = stored.parse();
                if !q.matches(&doc) {
                    continue;
                }
                let health = store
                    .get_health(tenant, Entity::Registration, &stored.id)
                    .await?;
                found.push(entry(Entity::Registration, &stored.id, Some(&doc), health));
                if found.len() == q.top {
                    next = after.clone().map(|id| (Entity::Registration, id));
                    break 'pages;
                }
            }
            if !page.more {
                break;
            }
            if budget == 0 {
                next = after.map(|id| (Entity::Registration, id));
                break;
            }
        }
    }
    let mut body = Map::new();
    body.insert("value".into(), Value::Array(found));
    if let Some((kind, id)) = next {
        let mut query = Vec::new();
        if let Some(h) = q.health {
            query.push(format!("health={}", h.as_str()));
        }
        if let Some(s) = &q.signature {
            query.push(format!("signature={s}"));
        }
        if let Some(v) = q.validation {
            query.push(format!(
                "validation={}",
                if v { "valid" } else { "invalid" }
            ));
        }
        if let Some(k) = q.kind {
            query.push(format!(
                "kind={}",
                if k == Entity::Instance {
                    "agentInstance"
                } else {
                    "agentRegistration"
                }
            ));
        }
        if q.top != DEFAULT_TOP {
            query.push(format!("top={}", q.top));
        }
        query.push(format!("cursor={}", encode_cursor(kind, &id)));
        body.insert(
            "nextLink".into(),
            format!("{}/_agentry/a2a/agents?{}", meta.origin, query.join("&")).into(),
        );
    }
    Ok(Value::Object(body))
}

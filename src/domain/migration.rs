//! The mapping from the Graph Agent Registry's shape onto its Agent 365
//! successor: an agent instance and the card manifest it links become one
//! agent registration whose `agentCard` is an A2A (v0.3) card. Microsoft
//! publishes no mapping; this one matches properties by name and meaning
//! (`docs/graph-behaviour.md`, "Migrating to registrations"). Pure.

use super::schema::AGENT_REGISTRATION;
use super::{DomainError, EntityWrite, ensure_registration_owner, parse_write};
use serde_json::{Map, Value};

/// A registration as mapped from an instance, and the instance's (and its
/// manifest's) values that have no home in a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub write: EntityWrite,
    /// Names of the properties with a value that the registration drops,
    /// `agentCardManifest/…` for the manifest's.
    pub unmapped: Vec<&'static str>,
}

/// Instance properties copied under the same name.
const SAME_NAME: [&str; 7] = [
    "displayName",
    "ownerIds",
    "createdBy",
    "sourceAgentId",
    "originatingStore",
    "agentIdentityId",
    "agentIdentityBlueprintId",
];

/// Instance properties that belong to the A2A card (v0.3 names).
const CARD_FROM_INSTANCE: [&str; 4] = [
    "url",
    "preferredTransport",
    "additionalInterfaces",
    "signatures",
];

/// Manifest properties copied into the card under the same name.
const CARD_FROM_MANIFEST: [&str; 12] = [
    "description",
    "iconUrl",
    "version",
    "documentationUrl",
    "protocolVersion",
    "provider",
    "capabilities",
    "securitySchemes",
    "security",
    "defaultInputModes",
    "defaultOutputModes",
    "supportsAuthenticatedExtendedCard",
];

/// Manifest properties about the manifest object itself: no home.
const MANIFEST_ONLY: [&str; 7] = [
    "id",
    "ownerIds",
    "managedBy",
    "originatingStore",
    "createdBy",
    "createdDateTime",
    "lastModifiedDateTime",
];

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// The value without `@odata.*` annotations and without null members, at
/// every depth: Graph's annotations mean nothing in an A2A card.
fn plain(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with("@odata.") && !v.is_null())
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        other => other.clone(),
    }
}

/// An A2A skill from a manifest skill: `displayName` becomes `name`.
fn skill(s: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = plain(s) {
        for (k, v) in m {
            let key = if k == "displayName" {
                "name".to_owned()
            } else {
                k
            };
            out.insert(key, v);
        }
    }
    Value::Object(out)
}

/// The A2A (v0.3) card of an instance and the manifest it links, when
/// either has card data: what a registration migrated from them holds, and
/// what is served to A2A clients for the instance.
pub fn card_of(
    instance: &Map<String, Value>,
    manifest: Option<&Map<String, Value>>,
) -> Option<Value> {
    card(instance, manifest)
}

fn card(instance: &Map<String, Value>, manifest: Option<&Map<String, Value>>) -> Option<Value> {
    let has_card_data = CARD_FROM_INSTANCE.iter().any(|k| present(instance.get(*k)));
    if manifest.is_none() && !has_card_data {
        return None;
    }
    let mut out = Map::new();
    let name = manifest
        .and_then(|m| m.get("displayName"))
        .filter(|v| !v.is_null())
        .or_else(|| instance.get("displayName"));
    out.insert("name".into(), name.cloned().unwrap_or(Value::Null));
    if let Some(m) = manifest {
        for key in CARD_FROM_MANIFEST {
            if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), plain(v));
            }
        }
        if let Some(Value::Array(skills)) = m.get("skills") {
            out.insert("skills".into(), skills.iter().map(skill).collect());
        }
    }
    out.entry("protocolVersion")
        .or_insert_with(|| Value::String("0.3.0".into()));
    for key in CARD_FROM_INSTANCE {
        if let Some(v) = instance.get(key).filter(|v| present(Some(v))) {
            out.insert(key.into(), plain(v));
        }
    }
    Some(Value::Object(out))
}

/// The registration an instance (with the manifest it links) becomes;
/// refused when it would break a registration's rules (no owner and no
/// managing app, no `createdBy`).
pub fn registration_from(
    instance: &Map<String, Value>,
    manifest: Option<&Map<String, Value>>,
) -> Result<Mapped, DomainError> {
    let mut body = Map::new();
    if let Some(id) = instance.get("id") {
        body.insert("id".into(), id.clone());
    }
    for key in SAME_NAME {
        if let Some(v) = instance.get(key).filter(|v| !v.is_null()) {
            body.insert(key.into(), v.clone());
        }
    }
    for (from, to) in [
        ("managedBy", "managedByAppId"),
        ("createdDateTime", "sourceCreatedDateTime"),
        ("lastModifiedDateTime", "sourceLastModifiedDateTime"),
    ] {
        if let Some(v) = instance.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    if let Some(d) = manifest
        .and_then(|m| m.get("description"))
        .filter(|v| !v.is_null())
    {
        body.insert("description".into(), d.clone());
    }
    if let Some(card) = card(instance, manifest) {
        body.insert("agentCard".into(), card);
    }
    let mut unmapped = Vec::new();
    if present(instance.get("agentUserId")) {
        unmapped.push("agentUserId");
    }
    if let Some(m) = manifest {
        for key in MANIFEST_ONLY {
            if present(m.get(key)) {
                unmapped.push(match key {
                    "id" => "agentCardManifest/id",
                    "ownerIds" => "agentCardManifest/ownerIds",
                    "managedBy" => "agentCardManifest/managedBy",
                    "originatingStore" => "agentCardManifest/originatingStore",
                    "createdBy" => "agentCardManifest/createdBy",
                    "createdDateTime" => "agentCardManifest/createdDateTime",
                    _ => "agentCardManifest/lastModifiedDateTime",
                });
            }
        }
    }
    let write = parse_write(&AGENT_REGISTRATION, Value::Object(body), true)?;
    ensure_registration_owner(&write.props)?;
    Ok(Mapped { write, unmapped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_instance_and_its_manifest_become_a_registration_with_an_a2a_card() {
        let instance = obj(json!({
            "id": "a1", "displayName": "Travel", "ownerIds": ["u1"], "managedBy": "app-1",
            "originatingStore": "Store", "createdBy": "u1", "sourceAgentId": "src",
            "agentIdentityId": "ident", "agentIdentityBlueprintId": "bp", "agentUserId": "user-9",
            "createdDateTime": "2025-01-01T00:00:00.0000000Z",
            "lastModifiedDateTime": "2025-01-02T00:00:00.0000000Z",
            "url": "https://agent.example/a2a", "preferredTransport": "JSONRPC",
            "additionalInterfaces": [{"url": "https://agent.example/grpc", "transport": "GRPC"}],
            "signatures": []
        }));
        let manifest = obj(json!({
            "id": "m1", "displayName": "Travel card", "description": "Books trips",
            "version": "1.0.0", "provider": {"organization": "Contoso", "url": "https://contoso.example"},
            "capabilities": {"streaming": true, "pushNotifications": null},
            "securitySchemes": {"k": {"@odata.type": "#microsoft.graph.apiKeySecurityScheme", "type": "apiKey", "name": "key", "in": "header"}},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "s1", "displayName": "Book", "tags": ["travel"], "examples": []}],
            "ownerIds": ["u2"], "createdBy": "u2", "createdDateTime": "2025-01-01T00:00:00.0000000Z"
        }));
        let mapped = registration_from(&instance, Some(&manifest)).unwrap();
        let p = &mapped.write.props;
        assert_eq!(mapped.write.id.as_deref(), Some("a1"));
        assert_eq!(p["managedByAppId"], "app-1");
        assert_eq!(p["sourceCreatedDateTime"], "2025-01-01T00:00:00.0000000Z");
        assert_eq!(
            p["sourceLastModifiedDateTime"],
            "2025-01-02T00:00:00.0000000Z"
        );
        assert_eq!(p["description"], "Books trips");
        let card = &p["agentCard"];
        assert_eq!(card["name"], "Travel card");
        assert_eq!(card["protocolVersion"], "0.3.0");
        assert_eq!(card["url"], "https://agent.example/a2a");
        assert_eq!(
            card["skills"],
            json!([{"id": "s1", "name": "Book", "tags": ["travel"], "examples": []}])
        );
        assert_eq!(card["capabilities"], json!({"streaming": true}));
        assert_eq!(
            card["securitySchemes"]["k"],
            json!({"type": "apiKey", "name": "key", "in": "header"})
        );
        assert!(
            card.get("signatures").is_none(),
            "empty lists of the instance are left out"
        );
        assert_eq!(
            mapped.unmapped,
            vec![
                "agentUserId",
                "agentCardManifest/id",
                "agentCardManifest/ownerIds",
                "agentCardManifest/createdBy",
                "agentCardManifest/createdDateTime"
            ]
        );
    }

    #[test]
    fn an_instance_without_card_data_has_no_card_and_one_without_owner_or_manager_is_refused() {
        let plain = obj(
            json!({"id": "a", "displayName": "A", "ownerIds": ["u"], "createdBy": "u",
            "createdDateTime": "2025-01-01T00:00:00Z", "lastModifiedDateTime": "2025-01-01T00:00:00Z"}),
        );
        let mapped = registration_from(&plain, None).unwrap();
        assert!(!mapped.write.props.contains_key("agentCard"));
        let mut orphan = plain.clone();
        orphan.insert("ownerIds".into(), json!([]));
        assert_eq!(
            registration_from(&orphan, None),
            Err(DomainError::RegistrationWithoutOwner)
        );
        let mut unsigned = plain.clone();
        unsigned.remove("createdBy");
        assert!(registration_from(&unsigned, None).is_err());
    }
}

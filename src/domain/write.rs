//! Validating write bodies against the schema, and building or patching the
//! stored document.

use super::DomainError;
use super::schema::{Access, ComplexType, EntityType, Kind};
use serde_json::{Map, Value};

const MAX_ID_CHARS: usize = 1024;

/// Who writes and when; stamped into `createdBy` and the timestamps.
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    /// Formatted as Graph writes `DateTimeOffset`.
    pub now: String,
    pub actor: Option<String>,
    /// The version the caller expects the stored entity to have (from
    /// `If-Match`); `None` writes unconditionally. The store checks it in
    /// the same transaction as the write.
    pub if_match: Option<i64>,
    /// The objects the write may touch, checked by the store in the same
    /// transaction as the write.
    pub scope: Scope,
    /// Who makes the write, for the audit log; `None`: the service itself.
    pub initiator: Option<std::sync::Arc<super::audit::Initiator>>,
    /// How the A2A cards the write stores are checked.
    pub card_validation: super::a2a::ValidationMode,
    /// How their signatures are checked, and against which keys.
    pub card_signatures: Option<std::sync::Arc<super::a2a::SignaturePolicy>>,
}

/// Which objects a write may touch. A caller let in by a `*.ManagedBy`
/// permission may touch, of the kinds that permission covers, only the
/// objects whose `managedBy` is its application; the others are absent to
/// it (404, which discloses nothing). The default touches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The application, and the kinds restricted to its objects.
    managed_by: Option<(String, Vec<super::Entity>)>,
}

impl Scope {
    /// Objects of `kinds` only where `managedBy` is `app`.
    pub fn managed_by(app: impl Into<String>, kinds: Vec<super::Entity>) -> Self {
        Self {
            managed_by: Some((app.into(), kinds)),
        }
    }

    /// The application whose objects of `kind` alone may be touched.
    pub fn restricted(&self, kind: super::Entity) -> Option<&str> {
        match &self.managed_by {
            Some((app, kinds)) if kinds.contains(&kind) => Some(app),
            _ => None,
        }
    }

    /// Whether an object of `kind` with this stored document may be touched.
    pub fn allows(&self, kind: super::Entity, doc: &Map<String, Value>) -> bool {
        self.restricted(kind)
            .is_none_or(|app| doc.get("managedBy").and_then(Value::as_str) == Some(app))
    }

    /// Applies the scope to a write body of `kind`: on create, an absent (or
    /// null) `managedBy` becomes the restricting application's; a value
    /// naming another application is refused, on create and on update.
    pub fn claim(
        &self,
        kind: super::Entity,
        props: &mut Map<String, Value>,
        creating: bool,
    ) -> Result<(), DomainError> {
        let Some(app) = self.restricted(kind) else {
            return Ok(());
        };
        match props.get("managedBy") {
            None | Some(Value::Null) if creating => {
                props.insert("managedBy".into(), Value::String(app.to_owned()));
                Ok(())
            }
            None => Ok(()),
            Some(Value::String(v)) if v == app => Ok(()),
            Some(_) => Err(DomainError::NotManagedByCaller),
        }
    }
}

/// A validated create or update body.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityWrite {
    /// The client's id on create; always `None` on update (ids never change).
    pub id: Option<String>,
    /// Writable properties to set, with values checked and normalised.
    pub props: Map<String, Value>,
    /// What to do with an instance's manifest, when the body says.
    pub manifest: Option<ManifestChange>,
}

/// The `agentCardManifest` part of an instance write.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestChange {
    /// A nested object: create the manifest if the instance has none, else update it.
    Upsert(Box<EntityWrite>),
    /// `agentCardManifest@odata.bind`: link an existing manifest by id.
    Bind(String),
    /// `"agentCardManifest": null`: unlink.
    Unlink,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Validates a create (`creating = true`) or update body for `ty`.
///
/// Unknown properties and wrong types are refused; server-owned properties
/// and instance annotations are dropped; `@odata.type` must name `ty`.
pub fn parse_write(
    ty: &'static EntityType,
    body: Value,
    creating: bool,
) -> Result<EntityWrite, DomainError> {
    let Value::Object(body) = body else {
        return Err(DomainError::NotAnObject);
    };
    let mode = if creating { Mode::Create } else { Mode::Update };
    parse_object(ty, body, mode, "")
}

fn parse_object(
    ty: &'static EntityType,
    body: Map<String, Value>,
    mode: Mode,
    prefix: &str,
) -> Result<EntityWrite, DomainError> {
    let mut write = EntityWrite {
        id: None,
        props: Map::new(),
        manifest: None,
    };
    let mut bind: Option<String> = None;
    for (key, value) in body {
        let path = format!("{prefix}{key}");
        if key == "@odata.type" {
            check_type_annotation(&value, ty.qualified)?;
            continue;
        }
        if let Some(nav) = key.strip_suffix("@odata.bind") {
            if ty.navigation(nav).is_some_and(|n| !n.collection) && nav == "agentCardManifest" {
                let Value::String(url) = value else {
                    return Err(DomainError::WrongType {
                        property: path,
                        expected: "a URL string",
                    });
                };
                bind = Some(parse_entity_reference(&url, "agentCardManifests")?);
                continue;
            }
            return Err(DomainError::NavigationNotWritable { property: path });
        }
        if key.contains('@') {
            // Instance and property annotations carry nothing we store.
            continue;
        }
        if key == "id" {
            if mode == Mode::Create {
                write.id = parse_id(value)?;
            }
            continue;
        }
        if let Some(nav) = ty.navigation(&key) {
            if nav.name != "agentCardManifest" {
                return Err(DomainError::NavigationNotWritable { property: path });
            }
            write.manifest = Some(match value {
                Value::Null => ManifestChange::Unlink,
                Value::Object(obj) => ManifestChange::Upsert(Box::new(parse_object(
                    nav.target,
                    obj,
                    Mode::Create,
                    &format!("{path}/"),
                )?)),
                _ => {
                    return Err(DomainError::WrongType {
                        property: path,
                        expected: "an object",
                    });
                }
            });
            continue;
        }
        let Some(prop) = ty.property(&key) else {
            return Err(DomainError::UnknownProperty {
                property: path,
                type_name: ty.qualified,
            });
        };
        if prop.access == Access::ServerOwned {
            continue;
        }
        let value = check_value(&path, prop.kind, value)?;
        if value.is_null() && ty.required_on_create.contains(&prop.name) {
            return Err(DomainError::NullNotAllowed { property: path });
        }
        write.props.insert(key, value);
    }
    if let Some(id) = bind {
        if write.manifest.is_some() {
            return Err(DomainError::BindAndNested);
        }
        write.manifest = Some(ManifestChange::Bind(id));
    }
    if mode == Mode::Create && prefix.is_empty() {
        ensure_required(ty, &write.props)?;
    }
    Ok(write)
}

/// Checks the properties a create needs are present (and not null).
pub fn ensure_required(ty: &EntityType, props: &Map<String, Value>) -> Result<(), DomainError> {
    for &name in ty.required_on_create {
        if props.get(name).is_none_or(Value::is_null) {
            return Err(DomainError::MissingRequired { property: name });
        }
    }
    Ok(())
}

fn check_type_annotation(value: &Value, expected: &'static str) -> Result<(), DomainError> {
    let given = value.as_str().unwrap_or_default();
    if given.trim_start_matches('#') == expected {
        Ok(())
    } else {
        Err(DomainError::TypeMismatch {
            given: given.to_owned(),
            expected,
        })
    }
}

fn parse_id(value: Value) -> Result<Option<String>, DomainError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if !s.is_empty() && s.chars().count() <= MAX_ID_CHARS => Ok(Some(s)),
        _ => Err(DomainError::InvalidId),
    }
}

fn check_value(path: &str, kind: Kind, value: Value) -> Result<Value, DomainError> {
    let wrong = |expected| DomainError::WrongType {
        property: path.to_owned(),
        expected,
    };
    match (kind, value) {
        (k, Value::Null) if k.is_collection() => Ok(Value::Array(Vec::new())),
        (_, Value::Null) => Ok(Value::Null),
        (Kind::String, v @ Value::String(_)) => Ok(v),
        (Kind::String, _) => Err(wrong("a string")),
        (Kind::DateTimeOffset, Value::String(s)) => date_time(&s)
            .map(Value::String)
            .ok_or_else(|| wrong("a date and time with its offset, such as 2025-01-31T09:00:00Z")),
        (Kind::DateTimeOffset, _) => Err(wrong("a string")),
        (Kind::Enum(t), Value::String(s)) if t.members.contains(&s.as_str()) => {
            Ok(Value::String(s))
        }
        (Kind::Enum(t), v) => Err(DomainError::NotAMember {
            property: path.to_owned(),
            value: match v {
                Value::String(s) => s,
                other => other.to_string(),
            },
            type_name: t.qualified,
        }),
        (Kind::Untyped, v) => Ok(v),
        (Kind::Boolean, v @ Value::Bool(_)) => Ok(v),
        (Kind::Int32, Value::Number(n)) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {
            Ok(Value::Number(n))
        }
        (Kind::Int32, _) => Err(wrong("a 32-bit integer")),
        (Kind::Double, v @ Value::Number(_)) => Ok(v),
        (Kind::Double, _) => Err(wrong("a number")),
        (Kind::Boolean, _) => Err(wrong("a boolean")),
        (Kind::StringCollection, Value::Array(items)) => {
            if items.iter().all(Value::is_string) {
                Ok(Value::Array(items))
            } else {
                Err(wrong("an array of strings"))
            }
        }
        (Kind::StringCollection, _) => Err(wrong("an array of strings")),
        (Kind::Complex(t), Value::Object(obj)) => check_complex(path, t, obj),
        (Kind::Complex(_), _) => Err(wrong("an object")),
        (Kind::ComplexCollection(t), Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(obj) => check_complex(&format!("{path}[{i}]"), t, obj),
                _ => Err(DomainError::WrongType {
                    property: format!("{path}[{i}]"),
                    expected: "an object",
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Kind::ComplexCollection(_), _) => Err(wrong("an array of objects")),
        (Kind::Open, v @ Value::Object(_)) => Ok(v),
        (Kind::Open, _) => Err(wrong("an object")),
        (Kind::OpenCollection, Value::Array(items)) => {
            if items.iter().all(Value::is_object) {
                Ok(Value::Array(items))
            } else {
                Err(wrong("an array of objects"))
            }
        }
        (Kind::OpenCollection, _) => Err(wrong("an array of objects")),
    }
}

/// A client's `Edm.DateTimeOffset` (RFC 3339), in the form Graph writes
/// them: UTC with seven fractional digits.
fn date_time(text: &str) -> Option<String> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(crate::odata::edm::date_time_offset(t))
}

fn check_complex(
    path: &str,
    t: &'static ComplexType,
    obj: Map<String, Value>,
) -> Result<Value, DomainError> {
    let mut out = Map::new();
    for (key, value) in obj {
        if key.contains('@') {
            if key == "@odata.type" {
                check_type_annotation(&value, t.qualified)?;
            }
            continue;
        }
        let child = format!("{path}/{key}");
        let Some(prop) = t.property(&key) else {
            return Err(DomainError::UnknownProperty {
                property: child,
                type_name: t.qualified,
            });
        };
        let value = check_value(&child, prop.kind, value)?;
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

/// The complete stored document of a new entity: every property in schema
/// order, unset ones `null` (or `[]` for collections), server fields stamped.
pub fn new_document(
    ty: &EntityType,
    id: &str,
    props: &Map<String, Value>,
    ctx: &WriteContext,
) -> Map<String, Value> {
    let mut doc = Map::new();
    for p in ty.properties {
        let owned = p.access == Access::ServerOwned;
        let value = match p.name {
            "id" => Value::String(id.to_owned()),
            "createdBy" if owned => ctx.actor.clone().map_or(Value::Null, Value::String),
            "createdDateTime" | "lastModifiedDateTime" if owned => Value::String(ctx.now.clone()),
            name => props.get(name).cloned().unwrap_or_else(|| {
                if p.kind.is_collection() {
                    Value::Array(Vec::new())
                } else {
                    Value::Null
                }
            }),
        };
        doc.insert(p.name.to_owned(), value);
    }
    doc
}

/// Applies a partial update: supplied properties replace the stored ones
/// (collections and complex values whole); `lastModifiedDateTime` moves.
pub fn apply_patch(doc: &mut Map<String, Value>, props: &Map<String, Value>, ctx: &WriteContext) {
    for (k, v) in props {
        if let Some(slot) = doc.get_mut(k) {
            *slot = v.clone();
        } else {
            doc.insert(k.clone(), v.clone());
        }
    }
    if let Some(slot) = doc.get_mut("lastModifiedDateTime") {
        *slot = Value::String(ctx.now.clone());
    }
}

/// Extracts the key from a reference to an entity of `entity_set`, as used
/// by `@odata.bind` and `@odata.id`: an absolute Graph URL or a relative
/// path ending in `{entity_set}('{key}')` or `{entity_set}/{key}`.
pub fn parse_entity_reference(url: &str, entity_set: &'static str) -> Result<String, DomainError> {
    let invalid = || DomainError::InvalidReference {
        url: url.to_owned(),
        expected: entity_set,
    };
    let mut path = url.trim();
    if let Some(rest) = path
        .strip_prefix("https://")
        .or_else(|| path.strip_prefix("http://"))
    {
        path = rest.find('/').map_or("", |i| &rest[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let key = match segments.as_slice() {
        [.., set, key] if *set == entity_set => decode(key).ok_or_else(invalid)?,
        [.., last] => {
            let inner = last
                .strip_prefix(entity_set)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(invalid)?;
            let inner = decode(inner).ok_or_else(invalid)?;
            unquote_key(&inner).ok_or_else(invalid)?
        }
        [] => return Err(invalid()),
    };
    if key.is_empty() {
        return Err(invalid());
    }
    Ok(key)
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// `'it''s'` → `it's`; `None` unless the text is one quoted OData string.
pub fn unquote_key(s: &str) -> Option<String> {
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
    use super::*;
    use serde_json::json;

    fn ctx() -> WriteContext {
        WriteContext {
            now: "2025-01-01T00:00:00.0000000Z".into(),
            actor: Some("user-1".into()),
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        }
    }

    #[test]
    fn a_create_needs_display_name_and_owner_ids() {
        let err = parse_write(&AGENT_INSTANCE, json!({"displayName": "a"}), true).unwrap_err();
        assert_eq!(
            err,
            DomainError::MissingRequired {
                property: "ownerIds"
            }
        );
        let err = parse_write(&AGENT_INSTANCE, json!({"ownerIds": []}), true).unwrap_err();
        assert_eq!(
            err,
            DomainError::MissingRequired {
                property: "displayName"
            }
        );
        assert!(
            parse_write(
                &AGENT_INSTANCE,
                json!({"displayName": "a", "ownerIds": []}),
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn an_update_needs_nothing_but_refuses_null_for_required_properties() {
        let w = parse_write(&AGENT_INSTANCE, json!({"url": "https://x"}), false).unwrap();
        assert_eq!(
            w.props,
            json!({"url": "https://x"}).as_object().unwrap().clone()
        );
        let err = parse_write(&AGENT_INSTANCE, json!({"displayName": null}), false).unwrap_err();
        assert_eq!(
            err,
            DomainError::NullNotAllowed {
                property: "displayName".into()
            }
        );
    }

    #[test]
    fn unknown_and_mistyped_properties_are_refused_with_their_path() {
        let table = [
            (json!({"colour": "red"}), "colour"),
            (json!({"displayName": 5}), "displayName"),
            (json!({"ownerIds": "x"}), "ownerIds"),
            (json!({"ownerIds": ["x", 1]}), "ownerIds"),
            (
                json!({"additionalInterfaces": [{"url": "u", "speed": 1}]}),
                "additionalInterfaces[0]/speed",
            ),
            (
                json!({"additionalInterfaces": ["u"]}),
                "additionalInterfaces[0]",
            ),
            (
                json!({"agentCardManifest": {"provider": {"name": "x"}}}),
                "agentCardManifest/provider/name",
            ),
            (
                json!({"agentCardManifest": {"skills": [{"tags": [true]}]}}),
                "agentCardManifest/skills[0]/tags",
            ),
        ];
        for (body, path) in table {
            match parse_write(&AGENT_INSTANCE, body.clone(), false) {
                Err(
                    DomainError::UnknownProperty { property, .. }
                    | DomainError::WrongType { property, .. },
                ) => {
                    assert_eq!(property, path, "body {body}")
                }
                other => panic!("body {body} gave {other:?}"),
            }
        }
    }

    #[test]
    fn server_owned_properties_and_annotations_are_dropped() {
        let w = parse_write(
            &AGENT_INSTANCE,
            json!({
                "@odata.type": "#microsoft.graph.agentInstance",
                "@odata.etag": "W/\"1\"",
                "displayName": "a", "ownerIds": ["o"],
                "createdBy": "someone", "createdDateTime": "2025-01-01T00:00:00Z",
                "lastModifiedDateTime": 17
            }),
            true,
        )
        .unwrap();
        assert_eq!(
            w.props.keys().collect::<Vec<_>>(),
            ["displayName", "ownerIds"]
        );
    }

    #[test]
    fn a_foreign_odata_type_is_refused() {
        let err = parse_write(
            &AGENT_INSTANCE,
            json!({"@odata.type": "#microsoft.graph.user"}),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::TypeMismatch { .. }));
    }

    #[test]
    fn open_types_are_kept_exactly() {
        let schemes = json!({"entra": {"@odata.type": "#microsoft.graph.oAuth2SecurityScheme", "type": "oauth2", "flows": {"x": {"scopes": {"a": "b"}}}}});
        let w = parse_write(
            &AGENT_CARD_MANIFEST,
            json!({"securitySchemes": schemes.clone(), "security": [{"entra": []}]}),
            false,
        )
        .unwrap();
        assert_eq!(w.props["securitySchemes"], schemes);
        assert_eq!(w.props["security"], json!([{"entra": []}]));
    }

    #[test]
    fn a_nested_manifest_and_a_bind_are_understood_but_not_together() {
        let w = parse_write(
            &AGENT_INSTANCE,
            json!({"agentCardManifest": {"displayName": "card"}}),
            false,
        )
        .unwrap();
        assert!(
            matches!(w.manifest, Some(ManifestChange::Upsert(ref m)) if m.props["displayName"] == "card")
        );

        let w = parse_write(
            &AGENT_INSTANCE,
            json!({"agentCardManifest@odata.bind": "https://graph.microsoft.com/beta/agentRegistry/agentCardManifests('employee-assistant')"}),
            false,
        )
        .unwrap();
        assert_eq!(
            w.manifest,
            Some(ManifestChange::Bind("employee-assistant".into()))
        );

        let err = parse_write(
            &AGENT_INSTANCE,
            json!({"agentCardManifest": {}, "agentCardManifest@odata.bind": "agentCardManifests/x"}),
            false,
        )
        .unwrap_err();
        assert_eq!(err, DomainError::BindAndNested);

        let w = parse_write(&AGENT_INSTANCE, json!({"agentCardManifest": null}), false).unwrap();
        assert_eq!(w.manifest, Some(ManifestChange::Unlink));
    }

    #[test]
    fn other_navigation_properties_cannot_be_written() {
        for body in [
            json!({"collections": []}),
            json!({"collections@odata.bind": []}),
        ] {
            let err = parse_write(&AGENT_INSTANCE, body, false).unwrap_err();
            assert!(matches!(err, DomainError::NavigationNotWritable { .. }));
        }
        let err = parse_write(&AGENT_COLLECTION, json!({"members": []}), false).unwrap_err();
        assert!(matches!(err, DomainError::NavigationNotWritable { .. }));
    }

    #[test]
    fn references_are_read_in_every_documented_form() {
        let table = [
            (
                "https://graph.microsoft.com/beta/agentRegistry/agentCardManifests('employee-assistant')",
                "employee-assistant",
            ),
            (
                "https://canary.graph.microsoft.com/beta/agentRegistry/agentCardManifests/abc",
                "abc",
            ),
            ("/agentRegistry/agentCardManifests('it''s')", "it's"),
            ("agentCardManifests('Card%3A%2001')", "Card: 01"),
            ("agentRegistry/agentCardManifests/Card%20One", "Card One"),
        ];
        for (url, key) in table {
            assert_eq!(
                parse_entity_reference(url, "agentCardManifests").as_deref(),
                Ok(key),
                "{url}"
            );
        }
        for bad in [
            "",
            "https://graph.microsoft.com/beta/users/abc",
            "agentCardManifests('x",
            "agentCardManifests()",
            "agentCardManifests('a'b')",
        ] {
            assert!(
                parse_entity_reference(bad, "agentCardManifests").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_new_document_lists_every_property_in_schema_order() {
        let w = parse_write(
            &AGENT_INSTANCE,
            json!({"displayName": "a", "ownerIds": ["o"]}),
            true,
        )
        .unwrap();
        let doc = new_document(&AGENT_INSTANCE, "id-1", &w.props, &ctx());
        let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
        let expected: Vec<&str> = AGENT_INSTANCE.properties.iter().map(|p| p.name).collect();
        assert_eq!(keys, expected);
        assert_eq!(doc["createdBy"], "user-1");
        assert_eq!(doc["url"], Value::Null);
        assert_eq!(doc["additionalInterfaces"], json!([]));
    }

    #[test]
    fn a_patch_replaces_given_properties_and_moves_the_modified_time() {
        let w = parse_write(
            &AGENT_INSTANCE,
            json!({"displayName": "a", "ownerIds": ["o", "p"]}),
            true,
        )
        .unwrap();
        let mut doc = new_document(&AGENT_INSTANCE, "id-1", &w.props, &ctx());
        let later = WriteContext {
            now: "2026-01-01T00:00:00.0000000Z".into(),
            actor: Some("other".into()),
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        };
        let patch = parse_write(&AGENT_INSTANCE, json!({"ownerIds": ["q"]}), false).unwrap();
        apply_patch(&mut doc, &patch.props, &later);
        assert_eq!(doc["ownerIds"], json!(["q"]));
        assert_eq!(doc["displayName"], "a");
        assert_eq!(doc["createdBy"], "user-1");
        assert_eq!(doc["createdDateTime"], "2025-01-01T00:00:00.0000000Z");
        assert_eq!(doc["lastModifiedDateTime"], "2026-01-01T00:00:00.0000000Z");
    }
}

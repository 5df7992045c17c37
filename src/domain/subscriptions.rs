//! Change notifications: Graph's `subscription` resource (what a client
//! asks to be told about, where, until when) and the bodies Agentry posts
//! to its receivers (`changeNotification`, lifecycle notifications). Pure
//! functions over JSON; the delivery itself is [`crate::notify`]'s.

use super::Entity;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// What happened to an entity, as the change log and notifications say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    Updated,
    Deleted,
    Created,
}

impl ChangeType {
    pub const ALL: [ChangeType; 3] = [
        ChangeType::Created,
        ChangeType::Updated,
        ChangeType::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }

    /// The change log's column: 0 updated, 1 deleted (so the older
    /// "removed" flag reads the same), 2 created.
    pub fn code(self) -> i16 {
        match self {
            ChangeType::Updated => 0,
            ChangeType::Deleted => 1,
            ChangeType::Created => 2,
        }
    }

    pub fn from_code(code: i16) -> ChangeType {
        match code {
            1 => ChangeType::Deleted,
            2 => ChangeType::Created,
            _ => ChangeType::Updated,
        }
    }
}

/// Why a subscription request was refused. Graph answers all of these with
/// 400 `InvalidRequest` (except where the HTTP layer says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("property '{0}' is required")]
    Missing(&'static str),
    #[error("property '{0}' does not exist on type 'microsoft.graph.subscription'")]
    UnknownProperty(String),
    #[error("property '{0}' cannot be written")]
    ReadOnly(String),
    #[error("property '{property}' must be {expected}")]
    WrongType {
        property: String,
        expected: &'static str,
    },
    #[error("'{0}' is not a resource that supports change notifications here")]
    UnsupportedResource(String),
    #[error("changeType '{0}' is not one of created, updated, deleted")]
    UnknownChangeType(String),
    #[error("'{0}' is not an absolute http or https URL")]
    InvalidUrl(String),
    #[error("Subscription expiration can only be {0} minutes in the future.")]
    ExpirationTooFar(u32),
    #[error("Subscription expiration must be in the future.")]
    ExpirationInPast,
    #[error("clientState must be at most 128 characters")]
    ClientStateTooLong,
    #[error(
        "includeResourceData is not supported: notifications carry the id and type of what changed"
    )]
    ResourceDataNotSupported,
    #[error("Only expirationDateTime and notificationUrl can be updated.")]
    NotUpdatable(String),
}

/// The properties of `microsoft.graph.subscription`, in the order served.
const PROPERTIES: &[&str] = &[
    "id",
    "resource",
    "applicationId",
    "changeType",
    "clientState",
    "notificationUrl",
    "notificationQueryOptions",
    "lifecycleNotificationUrl",
    "expirationDateTime",
    "creatorId",
    "includeResourceData",
    "latestSupportedTlsVersion",
    "encryptionCertificate",
    "encryptionCertificateId",
    "notificationUrlAppId",
    "notificationContentType",
    // beta: web push subscriptions (stored, unused)
    "vapidPublicKey",
    "webPushEncryptionSecret",
];

/// Set by the service, never by the client.
const READ_ONLY: &[&str] = &["id", "applicationId", "creatorId"];

/// The resources Agentry can notify about, by the entity whose changes
/// they follow: `agentRegistry/agentInstances`, `copilot/agentRegistrations`…
pub const RESOURCES: [Entity; 4] = [
    Entity::Instance,
    Entity::Manifest,
    Entity::Collection,
    Entity::Registration,
];

/// The entity a subscription's `resource` follows: a collection path,
/// with or without a leading or trailing slash, in any case.
pub fn resource_entity(resource: &str) -> Option<Entity> {
    let path = resource.trim().trim_matches('/');
    RESOURCES.into_iter().find(|e| {
        let ty = e.ty();
        path.eq_ignore_ascii_case(&format!("{}/{}", ty.container, ty.entity_set))
    })
}

/// Who creates a subscription and when.
pub struct Creator<'a> {
    pub application_id: Option<&'a str>,
    pub creator_id: Option<&'a str>,
    pub now: OffsetDateTime,
    /// The longest lifetime a subscription may ask for.
    pub max_minutes: u32,
}

/// A checked `POST /subscriptions` body: the subscription as it will be
/// served (every property present), the entity it follows and when it
/// expires.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    pub doc: Map<String, Value>,
    pub entity: Entity,
    pub expires: OffsetDateTime,
}

impl NewSubscription {
    pub fn id(&self) -> &str {
        self.doc.get("id").and_then(Value::as_str).unwrap_or("")
    }
}

/// Checks a `POST /subscriptions` body.
pub fn parse_create(body: Value, who: &Creator<'_>) -> Result<NewSubscription, SubscriptionError> {
    let Value::Object(body) = body else {
        return Err(SubscriptionError::NotAnObject);
    };
    let mut doc = Map::new();
    for name in PROPERTIES {
        doc.insert((*name).to_owned(), Value::Null);
    }
    for (name, value) in body {
        if name.starts_with('@') {
            continue; // `@odata.type` and other annotations
        }
        if READ_ONLY.contains(&name.as_str()) {
            return Err(SubscriptionError::ReadOnly(name));
        }
        if !PROPERTIES.contains(&name.as_str()) {
            return Err(SubscriptionError::UnknownProperty(name));
        }
        doc.insert(name, value);
    }
    let resource = required_text(&doc, "resource")?.to_owned();
    let entity = resource_entity(&resource)
        .ok_or_else(|| SubscriptionError::UnsupportedResource(resource.clone()))?;
    change_types(required_text(&doc, "changeType")?)?;
    check_url(required_text(&doc, "notificationUrl")?)?;
    if let Some(url) = optional_text(&doc, "lifecycleNotificationUrl")? {
        check_url(url)?;
    }
    if optional_text(&doc, "clientState")?.is_some_and(|s| s.chars().count() > 128) {
        return Err(SubscriptionError::ClientStateTooLong);
    }
    for name in [
        "notificationQueryOptions",
        "latestSupportedTlsVersion",
        "encryptionCertificate",
        "encryptionCertificateId",
        "notificationUrlAppId",
        "notificationContentType",
        "vapidPublicKey",
        "webPushEncryptionSecret",
    ] {
        optional_text(&doc, name)?;
    }
    match doc.get("includeResourceData") {
        Some(Value::Bool(true)) => return Err(SubscriptionError::ResourceDataNotSupported),
        Some(Value::Bool(false) | Value::Null) | None => {}
        Some(_) => return Err(wrong_type("includeResourceData", "a boolean")),
    }
    doc.insert("includeResourceData".into(), false.into());
    let expires = expiration(required_text(&doc, "expirationDateTime")?, who)?;
    doc.insert(
        "expirationDateTime".into(),
        crate::odata::edm::date_time_offset(expires).into(),
    );
    doc.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    doc.insert("applicationId".into(), who.application_id.into());
    doc.insert("creatorId".into(), who.creator_id.into());
    Ok(NewSubscription {
        doc,
        entity,
        expires,
    })
}

/// What a `PATCH /subscriptions/{id}` changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Renewal {
    pub expires: Option<OffsetDateTime>,
    pub notification_url: Option<String>,
}

impl Renewal {
    /// Writes the change into a stored subscription document.
    pub fn apply(&self, doc: &mut Map<String, Value>) {
        if let Some(t) = self.expires {
            doc.insert(
                "expirationDateTime".into(),
                crate::odata::edm::date_time_offset(t).into(),
            );
        }
        if let Some(url) = &self.notification_url {
            doc.insert("notificationUrl".into(), url.clone().into());
        }
    }
}

/// Checks a `PATCH /subscriptions/{id}` body: `expirationDateTime` (a
/// renewal) and `notificationUrl`, nothing else.
pub fn parse_renewal(body: Value, who: &Creator<'_>) -> Result<Renewal, SubscriptionError> {
    let Value::Object(body) = body else {
        return Err(SubscriptionError::NotAnObject);
    };
    let mut renewal = Renewal::default();
    for (name, value) in &body {
        match name.as_str() {
            n if n.starts_with('@') => {}
            "expirationDateTime" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| wrong_type(name, "a DateTimeOffset"))?;
                renewal.expires = Some(expiration(text, who)?);
            }
            "notificationUrl" => {
                let url = value.as_str().ok_or_else(|| wrong_type(name, "a string"))?;
                check_url(url)?;
                renewal.notification_url = Some(url.to_owned());
            }
            other if PROPERTIES.contains(&other) => {
                return Err(SubscriptionError::NotUpdatable(other.to_owned()));
            }
            other => return Err(SubscriptionError::UnknownProperty(other.to_owned())),
        }
    }
    Ok(renewal)
}

/// The change types a subscription's `changeType` lists (comma-separated).
pub fn change_types(text: &str) -> Result<Vec<ChangeType>, SubscriptionError> {
    let mut types = Vec::new();
    for part in text.split(',').map(str::trim) {
        let ty = ChangeType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(part))
            .ok_or_else(|| SubscriptionError::UnknownChangeType(part.to_owned()))?;
        if !types.contains(&ty) {
            types.push(ty);
        }
    }
    Ok(types)
}

fn expiration(text: &str, who: &Creator<'_>) -> Result<OffsetDateTime, SubscriptionError> {
    let t = crate::odata::edm::parse_date_time_offset(text)
        .ok_or_else(|| wrong_type("expirationDateTime", "a DateTimeOffset"))?;
    if t <= who.now {
        return Err(SubscriptionError::ExpirationInPast);
    }
    if t > who.now + time::Duration::minutes(i64::from(who.max_minutes)) {
        return Err(SubscriptionError::ExpirationTooFar(who.max_minutes));
    }
    Ok(t)
}

fn check_url(url: &str) -> Result<(), SubscriptionError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) && !h.contains('@') => Ok(()),
        _ => Err(SubscriptionError::InvalidUrl(url.to_owned())),
    }
}

fn wrong_type(property: &str, expected: &'static str) -> SubscriptionError {
    SubscriptionError::WrongType {
        property: property.to_owned(),
        expected,
    }
}

fn required_text<'a>(
    doc: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, SubscriptionError> {
    optional_text(doc, name)?
        .filter(|s| !s.trim().is_empty())
        .ok_or(SubscriptionError::Missing(name))
}

fn optional_text<'a>(
    doc: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, SubscriptionError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(name, "a string")),
    }
}

fn text<'a>(doc: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str)
}

/// One `changeNotification` of `change` (made to the entity `id`, at the
/// change log's `seq`) for the subscription `sub` of `tenant`. Its `id` is
/// the same each time the same change is delivered to the same
/// subscription, so a receiver can drop duplicates.
pub fn notification(
    sub: &Map<String, Value>,
    entity: Entity,
    tenant: &str,
    id: &str,
    change: ChangeType,
    seq: i64,
) -> Value {
    let ty = entity.ty();
    let path = format!("{}/{}/{}", ty.container, ty.entity_set, id);
    let sub_id = text(sub, "id").unwrap_or("");
    json!({
        "id": notification_id(sub_id, seq),
        "subscriptionId": sub_id,
        "subscriptionExpirationDateTime": sub.get("expirationDateTime"),
        "changeType": change.as_str(),
        "resource": path,
        "resourceData": {
            "@odata.type": format!("#{}", ty.qualified),
            "@odata.id": path,
            "id": id,
        },
        "clientState": sub.get("clientState"),
        "tenantId": tenant,
    })
}

/// A lifecycle notification (`missed`, `subscriptionRemoved`) of `sub`.
pub fn lifecycle(sub: &Map<String, Value>, tenant: &str, event: &str) -> Value {
    json!({
        "subscriptionId": sub.get("id"),
        "subscriptionExpirationDateTime": sub.get("expirationDateTime"),
        "clientState": sub.get("clientState"),
        "tenantId": tenant,
        "lifecycleEvent": event,
    })
}

/// A UUID-shaped id derived from the subscription and the change's place
/// in the log.
fn notification_id(subscription: &str, seq: i64) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(format!("{subscription}/{seq}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn who() -> Creator<'static> {
        Creator {
            application_id: Some("app"),
            creator_id: Some("user"),
            now: datetime!(2026-12-06 12:00 UTC),
            max_minutes: 4230,
        }
    }

    fn body() -> Value {
        json!({
            "changeType": "created,updated",
            "notificationUrl": "https://hooks.example/agents",
            "resource": "agentRegistry/agentInstances",
            "expirationDateTime": "2026-12-07T12:00:00Z",
            "clientState": "secret",
        })
    }

    #[test]
    fn a_valid_subscription_is_served_with_every_property_and_ids_set_by_the_service() {
        let sub = parse_create(body(), &who()).unwrap();
        assert_eq!(sub.entity, Entity::Instance);
        assert_eq!(sub.doc.len(), PROPERTIES.len());
        assert_eq!(sub.doc["applicationId"], "app");
        assert_eq!(sub.doc["creatorId"], "user");
        assert_eq!(
            sub.doc["expirationDateTime"],
            "2026-12-07T12:00:00.0000000Z"
        );
        assert_eq!(sub.doc["includeResourceData"], false);
        assert_eq!(sub.id().len(), 36);
    }

    #[test]
    fn each_rule_of_a_subscription_body_refuses_what_breaks_it() {
        let cases: Vec<(Value, SubscriptionError)> = vec![
            (json!([]), SubscriptionError::NotAnObject),
            (
                json!({"resource": "users"}),
                SubscriptionError::UnsupportedResource("users".into()),
            ),
            (
                json!({"changeType": null}),
                SubscriptionError::Missing("changeType"),
            ),
            (
                json!({"changeType": "created,renamed"}),
                SubscriptionError::UnknownChangeType("renamed".into()),
            ),
            (
                json!({"notificationUrl": "ftp://x/"}),
                SubscriptionError::InvalidUrl("ftp://x/".into()),
            ),
            (
                json!({"expirationDateTime": "2026-12-06T11:00:00Z"}),
                SubscriptionError::ExpirationInPast,
            ),
            (
                json!({"expirationDateTime": "2026-12-12T12:00:00Z"}),
                SubscriptionError::ExpirationTooFar(4230),
            ),
            (
                json!({"clientState": "x".repeat(129)}),
                SubscriptionError::ClientStateTooLong,
            ),
            (
                json!({"includeResourceData": true}),
                SubscriptionError::ResourceDataNotSupported,
            ),
            (
                json!({"id": "mine"}),
                SubscriptionError::ReadOnly("id".into()),
            ),
            (
                json!({"colour": "red"}),
                SubscriptionError::UnknownProperty("colour".into()),
            ),
        ];
        for (change, expected) in cases {
            let mut b = body();
            match change {
                Value::Object(m) => b.as_object_mut().unwrap().extend(m),
                other => b = other,
            }
            assert_eq!(parse_create(b, &who()).unwrap_err(), expected);
        }
    }

    #[test]
    fn resources_are_matched_without_regard_to_case_or_slashes() {
        assert_eq!(
            resource_entity("/agentRegistry/agentCollections/"),
            Some(Entity::Collection)
        );
        assert_eq!(
            resource_entity("Copilot/AgentRegistrations"),
            Some(Entity::Registration)
        );
        assert_eq!(resource_entity("agentRegistry/agentInstances/x"), None);
        assert_eq!(resource_entity("auditLogs/directoryAudits"), None);
    }

    #[test]
    fn a_renewal_takes_only_the_expiration_and_the_notification_url() {
        let r = parse_renewal(
            json!({"expirationDateTime": "2026-12-08T00:00:00Z"}),
            &who(),
        )
        .unwrap();
        assert_eq!(r.expires, Some(datetime!(2026-12-08 00:00 UTC)));
        assert_eq!(
            parse_renewal(json!({"resource": "x"}), &who()).unwrap_err(),
            SubscriptionError::NotUpdatable("resource".into())
        );
    }

    #[test]
    fn a_notification_names_the_entity_and_keeps_its_id_across_deliveries() {
        let sub = parse_create(body(), &who()).unwrap();
        let n = notification(
            &sub.doc,
            Entity::Instance,
            "t1",
            "a1",
            ChangeType::Updated,
            7,
        );
        assert_eq!(n["resource"], "agentRegistry/agentInstances/a1");
        assert_eq!(
            n["resourceData"]["@odata.type"],
            "#microsoft.graph.agentInstance"
        );
        assert_eq!(n["clientState"], "secret");
        assert_eq!(n["tenantId"], "t1");
        let again = notification(
            &sub.doc,
            Entity::Instance,
            "t1",
            "a1",
            ChangeType::Updated,
            7,
        );
        assert_eq!(n["id"], again["id"]);
        let next = notification(
            &sub.doc,
            Entity::Instance,
            "t1",
            "a1",
            ChangeType::Updated,
            8,
        );
        assert_ne!(n["id"], next["id"]);
    }

    #[test]
    fn change_codes_read_back_as_the_same_change() {
        for t in ChangeType::ALL {
            assert_eq!(ChangeType::from_code(t.code()), t);
        }
    }
}

//! The audit log: what each write changed and who made it, as Graph's
//! `directoryAudit` documents (`/auditLogs/directoryAudits`). The store
//! records a [`Change`] for every row a write creates, updates or deletes,
//! in the same transaction; [`audit_document`] turns it into the document
//! clients read. Pure functions; no I/O.

use super::Entity;
use serde::Serialize;
use serde_json::{Map, Value};

/// Who made a write, as the request presented itself: the caller and the
/// request's ids (`client-request-id` is the record's `correlationId`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initiator {
    /// A delegated caller: the user's object id and sign-in name.
    pub user: Option<(String, Option<String>)>,
    /// The calling application's client id, and its service principal's
    /// object id when the caller is the application itself.
    pub app: Option<(String, Option<String>)>,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
}

/// `loggedByService` of every record.
pub const SERVICE: &str = "Agentry";

/// What a write did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    /// An instance added to a collection (the collection is the target).
    AddMember,
    RemoveMember,
}

impl Action {
    /// `operationType`.
    pub fn operation_type(self) -> &'static str {
        match self {
            Action::Create => "Add",
            Action::Update => "Update",
            Action::Delete => "Delete",
            Action::AddMember => "Assign",
            Action::RemoveMember => "Unassign",
        }
    }
}

/// One object a write changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: Entity,
    pub id: String,
    pub action: Action,
    /// The object's `displayName` after the write (before it, for a delete
    /// when known).
    pub display_name: Option<String>,
    /// `(property, old, new)`, values as JSON; absent values are `None`.
    pub modified: Vec<(String, Option<Value>, Option<Value>)>,
    /// For a membership change: the instance added or removed.
    pub member: Option<String>,
}

impl Change {
    /// A created object: every property it was given, as new values.
    pub fn created(kind: Entity, doc: &Map<String, Value>) -> Change {
        Change {
            kind,
            id: text(doc, "id"),
            action: Action::Create,
            display_name: doc
                .get("displayName")
                .and_then(Value::as_str)
                .map(Into::into),
            modified: doc
                .iter()
                .filter(|(k, v)| !v.is_null() && !is_bookkeeping(k))
                .map(|(k, v)| (k.clone(), None, Some(v.clone())))
                .collect(),
            member: None,
        }
    }

    /// An updated object: the properties whose value changed.
    pub fn updated(
        kind: Entity,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> Change {
        let modified = differences(before, after);
        Change {
            kind,
            id: text(after, "id"),
            action: Action::Update,
            display_name: after
                .get("displayName")
                .and_then(Value::as_str)
                .map(Into::into),
            modified,
            member: None,
        }
    }

    pub fn deleted(kind: Entity, id: &str) -> Change {
        Change {
            kind,
            id: id.to_owned(),
            action: Action::Delete,
            display_name: None,
            modified: Vec::new(),
            member: None,
        }
    }

    /// An instance added to (`added`) or removed from a collection.
    pub fn membership(collection: &str, instance: &str, added: bool) -> Change {
        Change {
            kind: Entity::Collection,
            id: collection.to_owned(),
            action: if added {
                Action::AddMember
            } else {
                Action::RemoveMember
            },
            display_name: None,
            modified: Vec::new(),
            member: Some(instance.to_owned()),
        }
    }

    /// `activityDisplayName`: "Update agent instance", "Add member to
    /// agent collection", …
    pub fn activity(&self) -> String {
        let noun = noun(self.kind);
        match self.action {
            Action::Create => format!("Add {noun}"),
            Action::Update => format!("Update {noun}"),
            Action::Delete => format!("Delete {noun}"),
            Action::AddMember => format!("Add member to {noun}"),
            Action::RemoveMember => format!("Remove member from {noun}"),
        }
    }

    /// The audit record of the change.
    pub fn event(&self) -> Event {
        let mut targets = vec![Target {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            kind: target_type(self.kind),
            modified: self.modified.clone(),
        }];
        if let Some(member) = &self.member {
            targets.push(Target {
                id: member.clone(),
                display_name: None,
                kind: target_type(Entity::Instance),
                modified: Vec::new(),
            });
        }
        Event {
            category: category(self.kind),
            activity: self.activity(),
            operation_type: self.action.operation_type(),
            failure: None,
            targets,
        }
    }
}

/// What an audit record says happened, whatever made it: a registry write
/// ([`Change::event`]), a Copilot settings write, a control-plane action,
/// a refused write.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub category: &'static str,
    pub activity: String,
    pub operation_type: &'static str,
    /// `None`: it succeeded; else why it failed (`resultReason`).
    pub failure: Option<String>,
    pub targets: Vec<Target>,
}

/// One of the objects an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub display_name: Option<String>,
    /// `type`: `AgentInstance`, `CopilotPolicy`, …
    pub kind: &'static str,
    /// `(property, old, new)`, values as JSON; absent values are `None`.
    pub modified: Vec<(String, Option<Value>, Option<Value>)>,
}

impl Target {
    /// A target whose changes are the differences between two documents.
    pub fn changed(
        id: &str,
        kind: &'static str,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> Target {
        Target {
            id: id.to_owned(),
            display_name: after
                .get("displayName")
                .and_then(Value::as_str)
                .map(Into::into),
            kind,
            modified: differences(before, after),
        }
    }
}

/// The properties whose values differ between two documents, in `after`'s
/// order, then those `after` lacks; bookkeeping properties left out.
pub fn differences(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<(String, Option<Value>, Option<Value>)> {
    let mut modified: Vec<_> = after
        .iter()
        .filter(|(k, v)| !is_bookkeeping(k) && before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), before.get(k).cloned(), Some(v.clone())))
        .collect();
    modified.extend(
        before
            .iter()
            .filter(|(k, _)| !is_bookkeeping(k) && !after.contains_key(*k))
            .map(|(k, v)| (k.clone(), Some(v.clone()), None)),
    );
    modified
}

/// A Copilot policy added, updated or deleted through the control plane:
/// `before` and `after` are its documents (`None` where it does not exist).
pub fn policy_event(
    id: &str,
    action: Action,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Event {
    let empty = Map::new();
    let object = |v: Option<&Value>| v.and_then(Value::as_object).unwrap_or(&empty).clone();
    Event {
        category: COPILOT,
        activity: match action {
            Action::Create => "Add Copilot policy",
            Action::Delete => "Delete Copilot policy",
            _ => "Update Copilot policy",
        }
        .to_owned(),
        operation_type: action.operation_type(),
        failure: None,
        targets: vec![Target::changed(
            id,
            "CopilotPolicy",
            &object(before),
            &object(after),
        )],
    }
}

/// A Copilot policy setting written through Graph (`policySettings/{id}`):
/// the setting, and the policy that holds it as it was and is.
pub fn policy_setting_event(
    setting_id: &str,
    policy_id: &str,
    before: Option<&Value>,
    after: &Value,
) -> Event {
    let empty = Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    Event {
        category: COPILOT,
        activity: "Update Copilot policy setting".to_owned(),
        operation_type: "Update",
        failure: None,
        targets: vec![
            Target {
                id: setting_id.to_owned(),
                display_name: None,
                kind: "CopilotPolicySetting",
                modified: Vec::new(),
            },
            Target::changed(policy_id, "CopilotPolicy", before, after),
        ],
    }
}

/// A tenant-wide Copilot setting (`limitedMode`, `enhancedPersonalization`)
/// changed from `before` to `after`.
pub fn tenant_setting_event(
    name: &str,
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Event {
    let empty = Map::new();
    // The tenant's A2A settings are stored as its Copilot settings are,
    // but are the control plane's.
    let a2a = name == crate::domain::a2a::settings::KEY;
    Event {
        category: if a2a { CONTROL } else { COPILOT },
        activity: if a2a {
            "Update A2A settings".to_owned()
        } else {
            format!("Update Copilot setting {name}")
        },
        operation_type: "Update",
        failure: None,
        targets: vec![Target::changed(
            name,
            if a2a { "A2aSettings" } else { "CopilotSetting" },
            before.unwrap_or(&empty),
            after,
        )],
    }
}

/// A write the caller was not allowed to make (403): what it tried, and why
/// it was refused.
pub fn refused_event(category: &'static str, activity: &str, method: &str, reason: &str) -> Event {
    Event {
        category,
        activity: activity.to_owned(),
        operation_type: match method {
            "POST" => "Add",
            "DELETE" => "Delete",
            _ => "Update",
        },
        failure: Some(reason.to_owned()),
        targets: Vec::new(),
    }
}

/// A control-plane action (`/_agentry`): a reset, a snapshot restored, fault rules.
pub fn control_event(activity: &str, operation_type: &'static str, target: Option<&str>) -> Event {
    Event {
        category: CONTROL,
        activity: activity.to_owned(),
        operation_type,
        failure: None,
        targets: target
            .map(|id| Target {
                id: id.to_owned(),
                display_name: None,
                kind: "Agentry",
                modified: Vec::new(),
            })
            .into_iter()
            .collect(),
    }
}

/// A change notification subscription created, renewed or deleted: the
/// subscription and the resource it follows.
pub fn subscription_event(action: Action, id: &str, resource: &str) -> Event {
    Event {
        category: NOTIFICATIONS,
        activity: match action {
            Action::Create => "Add subscription",
            Action::Delete => "Delete subscription",
            _ => "Update subscription",
        }
        .to_owned(),
        operation_type: action.operation_type(),
        failure: None,
        targets: vec![Target {
            id: id.to_owned(),
            display_name: Some(resource.to_owned()),
            kind: "Subscription",
            modified: Vec::new(),
        }],
    }
}

/// `category` of the change notification subscriptions' records.
pub const NOTIFICATIONS: &str = "ChangeNotifications";
/// `category` of the Copilot settings' records.
pub const COPILOT: &str = "CopilotSettings";
/// `category` of the control plane's records.
pub const CONTROL: &str = "Agentry";

/// Properties every write touches, left out of `modifiedProperties`.
fn is_bookkeeping(property: &str) -> bool {
    matches!(property, "lastModifiedDateTime" | "id")
}

fn text(doc: &Map<String, Value>, key: &str) -> String {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// How a kind is named in an activity.
fn noun(kind: Entity) -> &'static str {
    match kind {
        Entity::Instance => "agent instance",
        Entity::Manifest => "agent card manifest",
        Entity::Collection => "agent collection",
        Entity::Registration => "agent registration",
        Entity::Package => "Copilot package",
        Entity::Audit => "audit record",
    }
}

/// `category`: the area a record belongs to.
pub fn category(kind: Entity) -> &'static str {
    match kind {
        Entity::Instance | Entity::Manifest | Entity::Collection => "AgentRegistry",
        Entity::Registration => "AgentRegistration",
        Entity::Package => "CopilotCatalog",
        Entity::Audit => "AuditLog",
    }
}

/// `targetResources[].type`.
fn target_type(kind: Entity) -> &'static str {
    match kind {
        Entity::Instance => "AgentInstance",
        Entity::Manifest => "AgentCardManifest",
        Entity::Collection => "AgentCollection",
        Entity::Registration => "AgentRegistration",
        Entity::Package => "CopilotPackage",
        Entity::Audit => "DirectoryAudit",
    }
}

/// The `directoryAudit` document of an event at `at` (Graph's
/// `DateTimeOffset` text) by `initiator`, as JSON text; `id` is the
/// record's own id. Serialised straight from borrowed fields: building a
/// `serde_json::Value` first cost a PATCH a tenth more.
pub fn audit_document(id: &str, at: &str, event: &Event, initiator: &Initiator) -> String {
    let (user, app) = match (&initiator.user, &initiator.app) {
        (Some((id, upn)), _) => (
            Some(UserDoc {
                id,
                display_name: None,
                user_principal_name: upn.as_deref(),
                ip_address: None,
            }),
            None,
        ),
        (None, Some((app_id, sp))) => (
            None,
            Some(AppDoc {
                app_id: Some(app_id),
                display_name: None,
                service_principal_id: sp.as_deref(),
                service_principal_name: None,
            }),
        ),
        (None, None) => (
            None,
            Some(AppDoc {
                app_id: None,
                display_name: Some(SERVICE),
                service_principal_id: None,
                service_principal_name: None,
            }),
        ),
    };
    let doc = AuditDoc {
        id,
        category: event.category,
        correlation_id: initiator.correlation_id.as_deref(),
        result: if event.failure.is_some() {
            "failure"
        } else {
            "success"
        },
        result_reason: event.failure.as_deref().unwrap_or_default(),
        activity_display_name: &event.activity,
        activity_date_time: at,
        logged_by_service: SERVICE,
        operation_type: event.operation_type,
        initiated_by: InitiatedBy { user, app },
        target_resources: event
            .targets
            .iter()
            .map(|t| TargetDoc {
                id: &t.id,
                display_name: t.display_name.as_deref(),
                kind: t.kind,
                user_principal_name: None,
                group_type: None,
                modified_properties: t
                    .modified
                    .iter()
                    .map(|(name, old, new)| ModifiedDoc {
                        display_name: name,
                        old_value: old.as_ref().map(Value::to_string),
                        new_value: new.as_ref().map(Value::to_string),
                    })
                    .collect(),
            })
            .collect(),
        additional_details: initiator
            .request_id
            .iter()
            .map(|r| KeyValueDoc {
                key: "RequestId",
                value: r,
            })
            .collect(),
        user_agent: None,
    };
    serde_json::to_string(&doc).expect("an audit document always serialises")
}

// The document's shape, member order included; `None` is written `null`.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditDoc<'a> {
    id: &'a str,
    category: &'a str,
    correlation_id: Option<&'a str>,
    result: &'a str,
    result_reason: &'a str,
    activity_display_name: &'a str,
    activity_date_time: &'a str,
    logged_by_service: &'a str,
    operation_type: &'a str,
    initiated_by: InitiatedBy<'a>,
    target_resources: Vec<TargetDoc<'a>>,
    additional_details: Vec<KeyValueDoc<'a>>,
    user_agent: Option<&'a str>,
}

#[derive(Serialize)]
struct InitiatedBy<'a> {
    user: Option<UserDoc<'a>>,
    app: Option<AppDoc<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserDoc<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
    user_principal_name: Option<&'a str>,
    ip_address: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppDoc<'a> {
    app_id: Option<&'a str>,
    display_name: Option<&'a str>,
    service_principal_id: Option<&'a str>,
    service_principal_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetDoc<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    user_principal_name: Option<&'a str>,
    group_type: Option<&'a str>,
    modified_properties: Vec<ModifiedDoc<'a>>,
}

/// Values as JSON text (`"\"A\""`, `"[1]"`); an absent one is `null`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModifiedDoc<'a> {
    display_name: &'a str,
    old_value: Option<String>,
    new_value: Option<String>,
}

#[derive(Serialize)]
struct KeyValueDoc<'a> {
    key: &'a str,
    value: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn an_update_lists_only_the_properties_that_changed() {
        let before = doc(
            json!({"id": "a", "displayName": "A", "url": "u", "tags": ["x"],
            "lastModifiedDateTime": "t1"}),
        );
        let after = doc(json!({"id": "a", "displayName": "B", "tags": ["x"],
            "lastModifiedDateTime": "t2", "managedBy": "m"}));
        let change = Change::updated(Entity::Instance, &before, &after);
        assert_eq!(
            change.modified,
            vec![
                ("displayName".into(), Some(json!("A")), Some(json!("B"))),
                ("managedBy".into(), None, Some(json!("m"))),
                ("url".into(), Some(json!("u")), None),
            ]
        );
        assert_eq!(change.activity(), "Update agent instance");
        assert_eq!(change.display_name.as_deref(), Some("B"));
    }

    #[test]
    fn a_record_writes_values_as_json_text_and_names_the_user() {
        let change = Change::updated(
            Entity::Collection,
            &doc(json!({"id": "c", "displayName": "A"})),
            &doc(json!({"id": "c", "displayName": "B"})),
        );
        let initiator = Initiator {
            user: Some(("u1".into(), Some("admin@contoso.example".into()))),
            app: Some(("app".into(), None)),
            correlation_id: Some("corr".into()),
            request_id: Some("req".into()),
        };
        let d: Value = serde_json::from_str(&audit_document(
            "r1",
            "2026-01-01T00:00:00Z",
            &change.event(),
            &initiator,
        ))
        .unwrap();
        assert_eq!(d["category"], "AgentRegistry");
        assert_eq!(d["operationType"], "Update");
        assert_eq!(d["correlationId"], "corr");
        assert_eq!(
            d["initiatedBy"]["user"]["userPrincipalName"],
            "admin@contoso.example"
        );
        assert!(d["initiatedBy"]["app"].is_null());
        let modified = &d["targetResources"][0]["modifiedProperties"][0];
        assert_eq!(modified["oldValue"], "\"A\"");
        assert_eq!(modified["newValue"], "\"B\"");
        assert_eq!(d["targetResources"][0]["type"], "AgentCollection");
    }

    #[test]
    fn a_membership_change_targets_the_collection_and_the_instance() {
        let change = Change::membership("c", "i", true);
        let d: Value = serde_json::from_str(&audit_document(
            "r",
            "t",
            &change.event(),
            &Initiator::default(),
        ))
        .unwrap();
        assert_eq!(d["activityDisplayName"], "Add member to agent collection");
        assert_eq!(d["targetResources"][1]["id"], "i");
        assert_eq!(d["initiatedBy"]["app"]["displayName"], SERVICE);
    }
}

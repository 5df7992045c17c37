//! The Agent 365 package catalog's rules: what a loaded package holds, the
//! few changes Graph allows on one, and which packages a list shows by
//! default. Pure functions over JSON documents.

use super::schema::COPILOT_PACKAGE;
use super::{DomainError, WriteContext, new_document, parse_write};
use serde_json::{Map, Value};

/// The element types that make a package an agent: a list shows only
/// these packages unless the caller filters on `elementTypes`.
pub const AGENT_ELEMENT_TYPES: [&str; 3] = ["DeclarativeAgent", "CustomEngineAgent", "Bots"];

/// The properties a Graph PATCH may change.
const ACCESS_LISTS: [(&str, &str); 2] = [
    ("allowedUsersAndGroups", "availableTo"),
    ("acquireUsersAndGroups", "deployedTo"),
];

/// A complete package document from a control-plane or seed body: every
/// property of `copilotPackageDetail` may be given; `id` and
/// `displayName` are required; what is missing gets a default (not
/// blocked, available and deployed to none, created and modified `now`).
pub fn new_package(body: Value, now: &str) -> Result<Map<String, Value>, DomainError> {
    let write = parse_write(&COPILOT_PACKAGE, body, true)?;
    let id = write
        .id
        .clone()
        .ok_or(DomainError::MissingRequired { property: "id" })?;
    let ctx = WriteContext {
        now: now.to_owned(),
        ..WriteContext::default()
    };
    let mut doc = new_document(&COPILOT_PACKAGE, &id, &write.props, &ctx);
    let defaults = [
        ("isBlocked", Value::Bool(false)),
        ("availableTo", "none".into()),
        ("deployedTo", "none".into()),
        ("createdDateTime", now.into()),
        ("lastModifiedDateTime", now.into()),
        ("activeUsers", 0.into()),
    ];
    for (name, value) in defaults {
        if doc.get(name).is_none_or(Value::is_null) {
            doc.insert(name.to_owned(), value);
        }
    }
    Ok(doc)
}

/// The changes of a Graph PATCH: the two access lists only (any other
/// property is refused). Each list given also sets the status it governs:
/// `some` when it names anyone, `none` when it is empty.
pub fn access_patch(body: Value) -> Result<Map<String, Value>, DomainError> {
    let write = parse_write(&COPILOT_PACKAGE, body, false)?;
    let mut out = Map::new();
    for (key, value) in write.props {
        let Some((_, status)) = ACCESS_LISTS.iter().find(|(list, _)| *list == key) else {
            return Err(DomainError::NotUpdatable {
                property: key,
                allowed: "allowedUsersAndGroups and acquireUsersAndGroups",
            });
        };
        let named = value.as_array().is_some_and(|a| !a.is_empty());
        out.insert(
            (*status).to_owned(),
            Value::String(if named { "some" } else { "none" }.into()),
        );
        out.insert(key, value);
    }
    Ok(out)
}

/// The owner a `reassign` names: `{"userId": "…"}`, a non-empty string.
pub fn reassign_patch(body: Value) -> Result<Map<String, Value>, DomainError> {
    let Value::Object(mut body) = body else {
        return Err(DomainError::NotAnObject);
    };
    body.retain(|k, _| !k.starts_with('@'));
    if let Some(other) = body.keys().find(|k| *k != "userId") {
        return Err(DomainError::UnknownProperty {
            property: other.clone(),
            type_name: "the reassign action's parameters",
        });
    }
    match body.remove("userId") {
        Some(Value::String(user)) if !user.is_empty() => {
            let mut out = Map::new();
            out.insert("ownerId".into(), Value::String(user));
            Ok(out)
        }
        None | Some(Value::Null) => Err(DomainError::MissingRequired { property: "userId" }),
        Some(_) => Err(DomainError::WrongType {
            property: "userId".into(),
            expected: "a non-empty string",
        }),
    }
}

/// The change of a block (`true`) or unblock (`false`).
pub fn blocked_patch(blocked: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("isBlocked".into(), Value::Bool(blocked));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_loaded_package_gets_defaults_for_what_it_leaves_out() {
        let doc = new_package(json!({"id": "P_1", "displayName": "Travel"}), "now").unwrap();
        assert_eq!(doc["isBlocked"], false);
        assert_eq!(doc["availableTo"], "none");
        assert_eq!(doc["lastModifiedDateTime"], "now");
        assert_eq!(doc["elementTypes"], json!([]));
        assert_eq!(
            new_package(json!({"displayName": "Travel"}), "now"),
            Err(DomainError::MissingRequired { property: "id" })
        );
        assert!(
            new_package(
                json!({"id": "P", "displayName": "x", "type": "nope"}),
                "now"
            )
            .is_err()
        );
    }

    #[test]
    fn a_patch_changes_the_access_lists_and_the_status_each_governs() {
        let users = json!([{"resourceId": "u1", "resourceType": "user"}]);
        let patch =
            access_patch(json!({"allowedUsersAndGroups": users, "acquireUsersAndGroups": []}))
                .unwrap();
        assert_eq!(patch["availableTo"], "some");
        assert_eq!(patch["deployedTo"], "none");
        assert_eq!(patch["allowedUsersAndGroups"], users);
        assert!(matches!(
            access_patch(json!({"isBlocked": true})),
            Err(DomainError::NotUpdatable { .. })
        ));
        assert!(
            access_patch(json!({"allowedUsersAndGroups": [{"resourceType": "robot"}]})).is_err()
        );
    }

    #[test]
    fn a_reassign_needs_a_user_id_and_nothing_else() {
        assert_eq!(
            reassign_patch(json!({"userId": "u2"})).unwrap()["ownerId"],
            "u2"
        );
        for bad in [
            json!({}),
            json!({"userId": ""}),
            json!({"userId": 1}),
            json!({"userId": "u", "x": 1}),
            json!([]),
        ] {
            assert!(reassign_patch(bad.clone()).is_err(), "{bad}");
        }
    }
}

//! Which policy answers for a setting. The rules, in order:
//!
//! 1. an id outside the catalog is unsupported (404);
//! 2. more group-level policies in the tenant than the limit fail (502);
//! 3. a setting configured in any group-level policy is refused (422);
//! 4. otherwise the tenant-level policy of the owning service: on PATCH the
//!    explicit `policyId`, else the first in [`tenant_candidates`] order.

use super::catalog::{self, SettingDefinition};
use super::policy::{Policy, PolicyScope};
use super::{CopilotError, CopilotRules};
use crate::domain::WriteContext;
use serde_json::{Map, Value};

const SETTING_TYPE: &str = "microsoft.graph.copilotPolicySetting";

/// A `copilotPolicySetting` as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingView {
    pub id: String,
    /// `null` when the resolved policy does not configure the setting.
    pub value: Option<String>,
    /// `null` when no tenant-level policy exists for the setting.
    pub policy_id: Option<String>,
}

impl SettingView {
    /// `id`, `value`, `policyId`, in the documented order.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("value".into(), self.value.clone().into());
        m.insert("policyId".into(), self.policy_id.clone().into());
        m
    }
}

/// A validated PATCH of one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingWrite {
    pub setting_id: &'static str,
    pub value: String,
    /// The tenant-level policy to write into; `None` resolves one.
    pub policy_id: Option<String>,
}

/// The result of a write: the policy as it now is, whether it was created,
/// and the setting as the response shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    pub policy: Policy,
    pub created: bool,
    pub view: SettingView,
}

/// Validates a PATCH body for a supported setting: `value` must be a string,
/// `policyId` a string or null, `id` (read-only) may only repeat the key.
pub fn parse_setting_patch(
    setting_id: &str,
    body: Value,
    rules: &CopilotRules,
) -> Result<SettingWrite, CopilotError> {
    let setting = catalog::supported(setting_id)?;
    let Value::Object(body) = body else {
        return Err(CopilotError::NotAnObject);
    };
    let mut value = None;
    let mut policy_id = None;
    for (key, v) in body {
        match key.as_str() {
            "value" => match v {
                Value::String(s) => value = Some(s),
                _ => {
                    return Err(CopilotError::WrongType {
                        property: key,
                        expected: "a string",
                    });
                }
            },
            "policyId" => match v {
                Value::String(s) if !s.is_empty() => policy_id = Some(s),
                Value::Null => policy_id = None,
                _ => {
                    return Err(CopilotError::WrongType {
                        property: key,
                        expected: "a non-empty string or null",
                    });
                }
            },
            "id" if v.as_str() == Some(setting.id) => {}
            "id" => return Err(CopilotError::ReadOnlyProperty(key)),
            "@odata.type" => {
                let given = v.as_str().unwrap_or_default();
                if given.trim_start_matches('#') != SETTING_TYPE {
                    return Err(CopilotError::TypeMismatch {
                        given: given.to_owned(),
                        expected: SETTING_TYPE,
                    });
                }
            }
            _ if key.contains('@') => {}
            _ => {
                return Err(CopilotError::UnknownProperty {
                    property: key,
                    type_name: SETTING_TYPE,
                });
            }
        }
    }
    let value = value.ok_or(CopilotError::MissingProperty("value"))?;
    setting.check_value(&value, rules.strict_values)?;
    Ok(SettingWrite {
        setting_id: setting.id,
        value,
        policy_id,
    })
}

/// Rules 2 and 3, shared by reads and writes.
fn check_group_level(
    setting: &SettingDefinition,
    policies: &[Policy],
    rules: &CopilotRules,
) -> Result<(), CopilotError> {
    let groups = policies
        .iter()
        .filter(|p| p.scope == PolicyScope::Group)
        .count();
    if groups > rules.max_group_policies {
        return Err(CopilotError::TooManyGroupPolicies {
            count: groups,
            limit: rules.max_group_policies,
        });
    }
    let grouped = policies
        .iter()
        .any(|p| p.scope == PolicyScope::Group && p.settings.contains_key(setting.id));
    if grouped {
        return Err(CopilotError::GroupScopedSetting(setting.id.to_owned()));
    }
    Ok(())
}

/// The tenant-level policies of the setting's owning service, first first:
/// those that configure the setting before those that do not, then by
/// ascending `priority`, then oldest `createdDateTime`, then `id`.
pub fn tenant_candidates<'a>(
    setting: &SettingDefinition,
    policies: &'a [Policy],
) -> Vec<&'a Policy> {
    let mut out: Vec<&Policy> = policies
        .iter()
        .filter(|p| p.scope == PolicyScope::Tenant && p.service == setting.service)
        .collect();
    out.sort_by(|a, b| {
        let configured = |p: &Policy| !p.settings.contains_key(setting.id);
        (configured(a), a.priority, &a.created_date_time, &a.id).cmp(&(
            configured(b),
            b.priority,
            &b.created_date_time,
            &b.id,
        ))
    });
    out
}

fn view(setting: &SettingDefinition, policy: Option<&Policy>) -> SettingView {
    SettingView {
        id: setting.id.to_owned(),
        value: policy.and_then(|p| p.settings.get(setting.id).cloned()),
        policy_id: policy.map(|p| p.id.clone()),
    }
}

/// What GET answers for a setting, given every policy of the tenant.
pub fn resolve_read(
    setting_id: &str,
    policies: &[Policy],
    rules: &CopilotRules,
) -> Result<SettingView, CopilotError> {
    let setting = catalog::supported(setting_id)?;
    check_group_level(setting, policies, rules)?;
    Ok(view(
        setting,
        tenant_candidates(setting, policies).first().copied(),
    ))
}

/// Carries out a PATCH on the tenant's policies: picks the target policy,
/// writes the value into it, and returns it. When no tenant-level policy of
/// the owning service exists and no `policyId` was given, one is created.
pub fn resolve_write(
    write: &SettingWrite,
    policies: &[Policy],
    rules: &CopilotRules,
    ctx: &WriteContext,
) -> Result<SettingChange, CopilotError> {
    let setting = catalog::supported(write.setting_id)?;
    check_group_level(setting, policies, rules)?;
    let target = match &write.policy_id {
        Some(pid) => {
            let p = policies
                .iter()
                .find(|p| &p.id == pid)
                .ok_or_else(|| CopilotError::PolicyNotFound(pid.clone()))?;
            match p.scope {
                PolicyScope::Tenant => {}
                PolicyScope::Group => {
                    return Err(CopilotError::GroupScopedSetting(setting.id.to_owned()));
                }
                PolicyScope::User => {
                    return Err(CopilotError::UserScopedPolicy(pid.clone()));
                }
            }
            if p.service != setting.service {
                return Err(CopilotError::ServiceMismatch {
                    setting_id: setting.id,
                    owner: setting.service,
                    policy_id: pid.clone(),
                    policy_service: p.service,
                });
            }
            Some(p)
        }
        None => tenant_candidates(setting, policies).first().copied(),
    };
    let (mut policy, created) = match target {
        Some(p) => (p.clone(), false),
        None => (Policy::new_tenant_level(setting.service, ctx), true),
    };
    policy.set_value(setting.id, &write.value, ctx);
    let view = view(setting, Some(&policy));
    Ok(SettingChange {
        policy,
        created,
        view,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::copilot::catalog::PolicyService;
    use serde_json::json;
    use std::collections::BTreeMap;

    const PIN: &str = "microsoft.copilot.copilotchatpinning";
    const IMAGES: &str = "microsoft.copilot.imagegeneration";
    const WEB: &str = "microsoft.copilot.allowwebsearch";
    const OPEN: &str = "microsoft.copilot.blockaccesstoopenfiles";

    fn rules(limit: usize) -> CopilotRules {
        CopilotRules {
            max_group_policies: limit,
            strict_values: false,
        }
    }

    fn ctx() -> WriteContext {
        WriteContext {
            now: "2026-04-06T13:37:18.0000000Z".into(),
            actor: None,
            if_match: None,
            scope: Default::default(),
            initiator: None,
            card_validation: Default::default(),
            card_signatures: Default::default(),
        }
    }

    fn policy(
        id: &str,
        scope: PolicyScope,
        service: PolicyService,
        priority: u32,
        created: &str,
        settings: &[(&str, &str)],
    ) -> Policy {
        Policy {
            id: id.into(),
            display_name: id.into(),
            service,
            scope,
            target_group_ids: if scope == PolicyScope::Group {
                vec!["g".into()]
            } else {
                vec![]
            },
            priority,
            created_date_time: format!("2026-01-0{created}T00:00:00.0000000Z"),
            last_modified_date_time: String::new(),
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// name, setting id, the tenant's policies, group limit, expected view
    type ReadCase = (
        &'static str,
        &'static str,
        Vec<Policy>,
        usize,
        Result<SettingView, CopilotError>,
    );
    /// name, write, group limit, expected (policy id, created)
    type WriteCase = (
        &'static str,
        SettingWrite,
        usize,
        Result<(&'static str, bool), CopilotError>,
    );
    /// setting id, body, expected (value, policy id)
    type BodyCase = (
        &'static str,
        Value,
        Result<(&'static str, Option<&'static str>), CopilotError>,
    );

    const CPS: PolicyService = PolicyService::CloudPolicyService;
    const T: PolicyScope = PolicyScope::Tenant;
    const G: PolicyScope = PolicyScope::Group;
    const U: PolicyScope = PolicyScope::User;

    fn err(e: CopilotError) -> Result<SettingView, CopilotError> {
        Err(e)
    }

    fn ok(
        value: Option<&str>,
        policy: Option<&str>,
        id: &str,
    ) -> Result<SettingView, CopilotError> {
        Ok(SettingView {
            id: id.into(),
            value: value.map(str::to_owned),
            policy_id: policy.map(str::to_owned),
        })
    }

    #[test]
    fn reads_follow_the_rules_in_order() {
        let table: Vec<ReadCase> = vec![
            (
                "unknown id is unsupported, even over the group limit",
                "microsoft.copilot.pinning",
                vec![
                    policy("g1", G, CPS, 0, "1", &[]),
                    policy("g2", G, CPS, 0, "1", &[]),
                ],
                1,
                err(CopilotError::UnsupportedSetting(
                    "microsoft.copilot.pinning".into(),
                )),
            ),
            (
                "too many group policies wins over a group-scoped setting",
                PIN,
                vec![
                    policy("g1", G, CPS, 0, "1", &[(PIN, "1")]),
                    policy("g2", G, CPS, 0, "1", &[]),
                ],
                1,
                err(CopilotError::TooManyGroupPolicies { count: 2, limit: 1 }),
            ),
            (
                "as many group policies as the limit is fine",
                PIN,
                vec![
                    policy("g1", G, CPS, 0, "1", &[]),
                    policy("t", T, CPS, 0, "1", &[(PIN, "0")]),
                ],
                1,
                ok(Some("0"), Some("t"), PIN),
            ),
            (
                "a group policy configuring the setting blocks it, even beside a tenant policy",
                PIN,
                vec![
                    policy("t", T, CPS, 0, "1", &[(PIN, "1")]),
                    policy("g", G, CPS, 0, "1", &[(PIN, "0")]),
                ],
                5,
                err(CopilotError::GroupScopedSetting(PIN.into())),
            ),
            (
                "a group policy configuring another setting does not block",
                PIN,
                vec![
                    policy("g", G, CPS, 0, "1", &[(IMAGES, "0")]),
                    policy("t", T, CPS, 0, "1", &[(PIN, "1")]),
                ],
                5,
                ok(Some("1"), Some("t"), PIN),
            ),
            (
                "no policy at all: both null",
                WEB,
                vec![],
                5,
                ok(None, None, WEB),
            ),
            (
                "a tenant policy without the setting: value null",
                IMAGES,
                vec![policy("t", T, CPS, 0, "1", &[(PIN, "1")])],
                5,
                ok(None, Some("t"), IMAGES),
            ),
            (
                "user-level policies are ignored",
                PIN,
                vec![policy("u", U, CPS, 0, "1", &[(PIN, "1")])],
                5,
                ok(None, None, PIN),
            ),
            (
                "a tenant policy of another service does not hold the setting",
                OPEN,
                vec![policy("t", T, CPS, 0, "1", &[])],
                5,
                ok(None, None, OPEN),
            ),
            (
                "a policy configuring the setting comes before a higher-priority one that does not",
                PIN,
                vec![
                    policy("a", T, CPS, 0, "1", &[]),
                    policy("b", T, CPS, 9, "1", &[(PIN, "0")]),
                ],
                5,
                ok(Some("0"), Some("b"), PIN),
            ),
            (
                "lower priority number first",
                PIN,
                vec![
                    policy("a", T, CPS, 2, "1", &[(PIN, "a")]),
                    policy("b", T, CPS, 1, "2", &[(PIN, "b")]),
                ],
                5,
                ok(Some("b"), Some("b"), PIN),
            ),
            (
                "same priority: oldest first",
                PIN,
                vec![
                    policy("a", T, CPS, 1, "3", &[(PIN, "a")]),
                    policy("b", T, CPS, 1, "2", &[(PIN, "b")]),
                ],
                5,
                ok(Some("b"), Some("b"), PIN),
            ),
            (
                "same priority and age: lowest id first",
                IMAGES,
                vec![
                    policy("b", T, CPS, 1, "2", &[]),
                    policy("a", T, CPS, 1, "2", &[]),
                ],
                5,
                ok(None, Some("a"), IMAGES),
            ),
        ];
        for (name, id, policies, limit, expected) in table {
            assert_eq!(
                resolve_read(id, &policies, &rules(limit)),
                expected,
                "{name}"
            );
        }
    }

    fn write(id: &'static str, value: &str, policy_id: Option<&str>) -> SettingWrite {
        SettingWrite {
            setting_id: id,
            value: value.into(),
            policy_id: policy_id.map(str::to_owned),
        }
    }

    #[test]
    fn writes_follow_the_rules_and_name_their_target() {
        let tenant = || {
            vec![
                policy("t1", T, CPS, 0, "1", &[(PIN, "1"), (IMAGES, "1")]),
                policy("t2", T, CPS, 5, "2", &[]),
                policy("g", G, CPS, 0, "1", &[(WEB, "1")]),
                policy("u", U, CPS, 0, "1", &[]),
                policy("i", T, PolicyService::Intune, 0, "1", &[]),
            ]
        };
        let table: Vec<WriteCase> = vec![
            (
                "resolved: the first tenant policy",
                write(PIN, "0", None),
                5,
                Ok(("t1", false)),
            ),
            (
                "explicit tenant policy",
                write(PIN, "0", Some("t2")),
                5,
                Ok(("t2", false)),
            ),
            (
                "explicit missing policy",
                write(PIN, "0", Some("nope")),
                5,
                Err(CopilotError::PolicyNotFound("nope".into())),
            ),
            (
                "explicit group policy",
                write(PIN, "0", Some("g")),
                5,
                Err(CopilotError::GroupScopedSetting(PIN.into())),
            ),
            (
                "explicit user policy",
                write(PIN, "0", Some("u")),
                5,
                Err(CopilotError::UserScopedPolicy("u".into())),
            ),
            (
                "explicit policy of the other service",
                write(PIN, "0", Some("i")),
                5,
                Err(CopilotError::ServiceMismatch {
                    setting_id: PIN,
                    owner: CPS,
                    policy_id: "i".into(),
                    policy_service: PolicyService::Intune,
                }),
            ),
            (
                "group-scoped setting refused even with an explicit tenant policy",
                write(WEB, "0", Some("t1")),
                5,
                Err(CopilotError::GroupScopedSetting(WEB.into())),
            ),
            (
                "too many group policies",
                write(PIN, "0", Some("t1")),
                0,
                Err(CopilotError::TooManyGroupPolicies { count: 1, limit: 0 }),
            ),
            (
                "intune setting goes to the intune policy",
                write(OPEN, "1", None),
                5,
                Ok(("i", false)),
            ),
        ];
        for (name, w, limit, expected) in table {
            let got = resolve_write(&w, &tenant(), &rules(limit), &ctx());
            match (got, expected) {
                (Ok(change), Ok((pid, created))) => {
                    assert_eq!(
                        (change.policy.id.as_str(), change.created),
                        (pid, created),
                        "{name}"
                    );
                    assert_eq!(change.policy.settings[w.setting_id], w.value, "{name}");
                    assert_eq!(
                        change.view.value.as_deref(),
                        Some(w.value.as_str()),
                        "{name}"
                    );
                    assert_eq!(change.view.policy_id.as_deref(), Some(pid), "{name}");
                    assert_eq!(change.policy.last_modified_date_time, ctx().now, "{name}");
                }
                (got, expected) => assert_eq!(got.map(|_| ()), expected.map(|_| ()), "{name}"),
            }
        }
    }

    #[test]
    fn a_write_changes_only_its_setting() {
        let before = vec![policy("t", T, CPS, 0, "1", &[(PIN, "1"), (IMAGES, "1")])];
        let change = resolve_write(&write(PIN, "0", None), &before, &rules(5), &ctx()).unwrap();
        let mut expected = before[0].clone();
        expected.settings.insert(PIN.into(), "0".into());
        expected.last_modified_date_time = ctx().now;
        assert_eq!(change.policy, expected);
    }

    #[test]
    fn a_write_without_a_tenant_policy_creates_one_for_the_owning_service() {
        let policies = vec![policy("u", U, CPS, 0, "1", &[])];
        let change = resolve_write(&write(OPEN, "1", None), &policies, &rules(5), &ctx()).unwrap();
        assert!(change.created);
        assert_eq!(change.policy.scope, PolicyScope::Tenant);
        assert_eq!(change.policy.service, PolicyService::Intune);
        assert_eq!(change.policy.settings.len(), 1);
        assert_eq!(
            change.view.policy_id.as_deref(),
            Some(change.policy.id.as_str())
        );
    }

    #[test]
    fn patch_bodies_are_validated() {
        let table: Vec<BodyCase> = vec![
            (PIN, json!({"value": "0"}), Ok(("0", None))),
            (
                PIN,
                json!({"value": "0", "policyId": "p"}),
                Ok(("0", Some("p"))),
            ),
            (
                PIN,
                json!({"value": "0", "policyId": null}),
                Ok(("0", None)),
            ),
            (
                PIN,
                json!({"value": "x", "id": PIN, "@odata.type": "#microsoft.graph.copilotPolicySetting", "value@odata.type": "String"}),
                Ok(("x", None)),
            ),
            (
                "microsoft.copilot.pinning",
                json!({}),
                Err(CopilotError::UnsupportedSetting(
                    "microsoft.copilot.pinning".into(),
                )),
            ),
            (PIN, json!([]), Err(CopilotError::NotAnObject)),
            (PIN, json!({}), Err(CopilotError::MissingProperty("value"))),
            (
                PIN,
                json!({"policyId": "p"}),
                Err(CopilotError::MissingProperty("value")),
            ),
            (
                PIN,
                json!({"value": 1}),
                Err(CopilotError::WrongType {
                    property: "value".into(),
                    expected: "a string",
                }),
            ),
            (
                PIN,
                json!({"value": null}),
                Err(CopilotError::WrongType {
                    property: "value".into(),
                    expected: "a string",
                }),
            ),
            (
                PIN,
                json!({"value": "1", "policyId": 7}),
                Err(CopilotError::WrongType {
                    property: "policyId".into(),
                    expected: "a non-empty string or null",
                }),
            ),
            (
                PIN,
                json!({"value": "1", "id": "other"}),
                Err(CopilotError::ReadOnlyProperty("id".into())),
            ),
            (
                PIN,
                json!({"value": "1", "@odata.type": "#microsoft.graph.user"}),
                Err(CopilotError::TypeMismatch {
                    given: "#microsoft.graph.user".into(),
                    expected: SETTING_TYPE,
                }),
            ),
            (
                PIN,
                json!({"value": "1", "colour": "red"}),
                Err(CopilotError::UnknownProperty {
                    property: "colour".into(),
                    type_name: SETTING_TYPE,
                }),
            ),
        ];
        for (id, body, expected) in table {
            let got = parse_setting_patch(id, body.clone(), &rules(5));
            let got = got.map(|w| (w.value, w.policy_id));
            let expected = expected.map(|(v, p)| (v.to_owned(), p.map(str::to_owned)));
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn strict_mode_refuses_values_outside_the_allowed_set() {
        let strict = CopilotRules {
            max_group_policies: 5,
            strict_values: true,
        };
        assert!(parse_setting_patch(WEB, json!({"value": "2"}), &strict).is_ok());
        assert_eq!(
            parse_setting_patch(PIN, json!({"value": "2"}), &strict),
            Err(CopilotError::InvalidValue {
                setting_id: PIN,
                value: "2".into(),
                allowed: &["0", "1"],
            })
        );
        assert!(parse_setting_patch(PIN, json!({"value": "2"}), &rules(5)).is_ok());
    }
}

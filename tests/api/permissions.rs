//! Permissions as Graph enforces them: every endpoint against its row of the
//! permission table, `*.ManagedBy` isolation between applications, and the
//! reserved collections' own permissions.

use crate::support::*;
use agentry::auth::permissions::{AGENT_REGISTRY_ADMINISTRATOR, Action, Reserved, rule_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    action: Action,
    reserved: Reserved,
}

fn case(method: Method, path: &'static str, body: Option<Value>, action: Action) -> Case {
    Case {
        method,
        path,
        body,
        action,
        reserved: Reserved::No,
    }
}

/// The least-privileged scopes of a row: the first permission of each group.
fn least(action: Action, reserved: Reserved) -> Vec<&'static str> {
    rule_for(action, reserved)
        .delegated
        .expect("delegated row")
        .iter()
        .map(|g| g[0])
        .collect()
}

#[tokio::test]
async fn every_endpoint_needs_the_permissions_of_its_row() {
    let s = TestServer::start().await;
    let mut body = instance_body("i", "I");
    body["agentCardManifest"] = json!({"id": "m", "displayName": "M"});
    s.create_instance(body).await;
    s.create_instance(instance_body("j", "J")).await;
    let r = s
        .post(
            "/agentRegistry/agentCollections",
            json!({"id": "c", "displayName": "C", "ownerIds": [USER]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.post(
        "/agentRegistry/agentCollections/c/members/$ref",
        json!({"@odata.id": "agentInstances('i')"}),
    )
    .await;

    use Action as A;
    use Method as M;
    let mut cases = vec![
        case(M::GET, "/agentRegistry", None, A::GetRegistry),
        case(
            M::PATCH,
            "/agentRegistry",
            Some(json!({})),
            A::UpdateRegistry,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances",
            None,
            A::ListInstances,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/$count",
            None,
            A::ListInstances,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/i",
            None,
            A::GetInstance,
        ),
        case(
            M::POST,
            "/agentRegistry/agentInstances",
            Some(instance_body("new", "New")),
            A::CreateInstance,
        ),
        case(
            M::PATCH,
            "/agentRegistry/agentInstances/i",
            Some(json!({"displayName": "I2"})),
            A::UpdateInstance,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/i/agentCardManifest",
            None,
            A::GetInstanceManifest,
        ),
        case(
            M::PATCH,
            "/agentRegistry/agentInstances/i/agentCardManifest",
            Some(json!({"version": "2"})),
            A::UpdateInstanceManifest,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/i/collections",
            None,
            A::ListInstanceCollections,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/i/collections/$count",
            None,
            A::ListInstanceCollections,
        ),
        case(
            M::GET,
            "/agentRegistry/agentInstances/i/collections/c",
            None,
            A::ListInstanceCollections,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCardManifests",
            None,
            A::ListManifests,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCardManifests/$count",
            None,
            A::ListManifests,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCardManifests/m",
            None,
            A::GetManifest,
        ),
        case(
            M::POST,
            "/agentRegistry/agentCardManifests",
            Some(json!({"id": "m2", "displayName": "M2"})),
            A::CreateManifest,
        ),
        case(
            M::PATCH,
            "/agentRegistry/agentCardManifests/m",
            Some(json!({"version": "3"})),
            A::UpdateManifest,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections",
            None,
            A::ListCollections,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections/$count",
            None,
            A::ListCollections,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections/c",
            None,
            A::GetCollection,
        ),
        case(
            M::POST,
            "/agentRegistry/agentCollections",
            Some(json!({"displayName": "D", "ownerIds": []})),
            A::CreateCollection,
        ),
        case(
            M::PATCH,
            "/agentRegistry/agentCollections/c",
            Some(json!({"description": "x"})),
            A::UpdateCollection,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections/c/members",
            None,
            A::ListMembers,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections/c/members/$count",
            None,
            A::ListMembers,
        ),
        case(
            M::GET,
            "/agentRegistry/agentCollections/c/members/i",
            None,
            A::ListMembers,
        ),
        case(
            M::POST,
            "/agentRegistry/agentCollections/c/members/$ref",
            Some(json!({"@odata.id": "agentInstances('j')"})),
            A::AddMember,
        ),
        case(
            M::DELETE,
            "/agentRegistry/agentCollections/c/members/j/$ref",
            None,
            A::RemoveMember,
        ),
        case(
            M::GET,
            "/copilot/admin/policySettings/microsoft.copilot.copilotchatpinning",
            None,
            A::GetPolicySetting,
        ),
        case(
            M::PATCH,
            "/copilot/admin/policySettings/microsoft.copilot.copilotchatpinning",
            Some(json!({"value": "1"})),
            A::UpdatePolicySetting,
        ),
        case(
            M::GET,
            "/copilot/admin/settings/limitedMode",
            None,
            A::GetLimitedMode,
        ),
        case(
            M::PATCH,
            "/copilot/admin/settings/limitedMode",
            Some(json!({"isEnabledForGroup": false})),
            A::UpdateLimitedMode,
        ),
        case(
            M::GET,
            "/copilot/settings/people/enhancedPersonalization",
            None,
            A::GetEnhancedPersonalization,
        ),
        case(
            M::PATCH,
            "/copilot/settings/people/enhancedPersonalization",
            Some(json!({"isEnabledInOrganization": true})),
            A::UpdateEnhancedPersonalization,
        ),
        case(
            M::DELETE,
            "/agentRegistry/agentInstances/i/agentCardManifest",
            None,
            A::UnlinkInstanceManifest,
        ),
        case(
            M::DELETE,
            "/agentRegistry/agentCardManifests/m2",
            None,
            A::DeleteManifest,
        ),
        case(
            M::DELETE,
            "/agentRegistry/agentCollections/c",
            None,
            A::DeleteCollection,
        ),
        case(
            M::DELETE,
            "/agentRegistry/agentInstances/j",
            None,
            A::DeleteInstance,
        ),
    ];
    cases.push(Case {
        method: M::POST,
        path: "/agentRegistry/agentCollections/00000000-0000-0000-0000-000000000001/members/$ref",
        body: Some(json!({"@odata.id": "agentInstances('i')"})),
        action: A::AddMember,
        reserved: Reserved::Global,
    });
    for c in cases {
        let rule = rule_for(c.action, c.reserved);
        let role: Vec<&str> = rule.roles.first().into_iter().copied().collect();
        let send = |token: String| {
            let mut r = s
                .client
                .request(c.method.clone(), s.url(c.path))
                .bearer_auth(token);
            if let Some(b) = &c.body {
                r = r.json(b);
            }
            r.send()
        };
        let what = format!("{} {}", c.method, c.path);
        // Without any of the row's permissions: refused, and told which.
        let r = send(s.user_token(&["User.Read"], &role)).await.unwrap();
        let e = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
        let named = rule.delegated.unwrap()[0][0];
        assert!(
            e["error"]["message"].as_str().unwrap().contains(named),
            "{what}: {e}"
        );
        // With the permissions but without a directory role, when one is needed.
        if !rule.roles.is_empty() {
            let r = send(s.user_token(&least(c.action, c.reserved), &[]))
                .await
                .unwrap();
            let e = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("directory roles"),
                "{what}: {e}"
            );
        }
        // With the least-privileged permissions: allowed.
        let r = send(s.user_token(&least(c.action, c.reserved), &role))
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{what} with {:?}: {}",
            least(c.action, c.reserved),
            r.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn nested_manifests_and_binds_need_manifest_permissions_too() {
    let s = TestServer::start().await;
    s.post(
        "/agentRegistry/agentCardManifests",
        json!({"id": "m", "displayName": "M"}),
    )
    .await;
    let only_instances = s.user_token(
        &["AgentInstance.ReadWrite.All"],
        &[AGENT_REGISTRY_ADMINISTRATOR],
    );
    let mut nested = instance_body("a", "A");
    nested["agentCardManifest"] = json!({"displayName": "card"});
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&only_instances)
        .json(&nested)
        .send()
        .await
        .unwrap();
    let e = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AgentCardManifest.ReadWrite.All"),
        "{e}"
    );
    let mut bind = instance_body("b", "B");
    bind["agentCardManifest@odata.bind"] = json!("agentCardManifests('m')");
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&only_instances)
        .json(&bind)
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let with_read = s.user_token(
        &["AgentInstance.ReadWrite.All", "AgentCardManifest.Read.All"],
        &[AGENT_REGISTRY_ADMINISTRATOR],
    );
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&with_read)
        .json(&bind)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_graph_error(
        s.get("/agentRegistry/agentInstances/a").await,
        404,
        "AgentNotFound",
    )
    .await;
}

#[tokio::test]
async fn managed_by_applications_only_see_and_touch_their_own_objects() {
    let s = TestServer::start().await;
    let a = s.app_token("app-a", &["AgentInstance.ReadWrite.ManagedBy"]);
    let b = s.app_token("app-b", &["AgentInstance.ReadWrite.ManagedBy"]);
    let all = s.app_token("app-admin", &["AgentInstance.ReadWrite.All"]);
    let call = |token: &str, method: Method, path: &str, body: Option<Value>| {
        let mut r = s
            .client
            .request(method, s.url(path))
            .bearer_auth(token.to_owned());
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };

    // Create: managedBy defaults to the caller, and no other value is accepted.
    let r = call(
        &a,
        Method::POST,
        "/agentRegistry/agentInstances",
        Some(instance_body("of-a", "A's")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["managedBy"], "app-a");
    let mut foreign = instance_body("claimed", "B's");
    foreign["managedBy"] = json!("app-a");
    let r = call(
        &b,
        Method::POST,
        "/agentRegistry/agentInstances",
        Some(foreign),
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let r = call(
        &b,
        Method::POST,
        "/agentRegistry/agentInstances",
        Some(instance_body("of-b", "B's")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Lists and reads: each sees its own.
    for (token, own) in [(&a, "of-a"), (&b, "of-b")] {
        let list: Value = call(
            token,
            Method::GET,
            "/agentRegistry/agentInstances?$count=true",
            None,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(list["value"].as_array().unwrap().len(), 1);
        assert_eq!(list["value"][0]["id"], own);
        assert_eq!(list["@odata.count"], 1);
        let n = call(
            token,
            Method::GET,
            "/agentRegistry/agentInstances/$count",
            None,
        )
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        assert_eq!(n, "1");
    }
    let r = call(&b, Method::GET, "/agentRegistry/agentInstances/of-a", None)
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;

    // Updates and deletes of another app's object look like a missing object.
    let r = call(
        &b,
        Method::PATCH,
        "/agentRegistry/agentInstances/of-a",
        Some(json!({"displayName": "stolen"})),
    )
    .await
    .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = call(
        &b,
        Method::DELETE,
        "/agentRegistry/agentInstances/of-a",
        None,
    )
    .await
    .unwrap();
    assert_graph_error(r, 404, "AgentNotFound").await;
    let r = call(
        &a,
        Method::PATCH,
        "/agentRegistry/agentInstances/of-a",
        Some(json!({"managedBy": "app-b"})),
    )
    .await
    .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let r = call(
        &a,
        Method::PATCH,
        "/agentRegistry/agentInstances/of-a",
        Some(json!({"displayName": "mine"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A full permission sees everything.
    let list: Value = call(&all, Method::GET, "/agentRegistry/agentInstances", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 2);
    let r = call(
        &a,
        Method::DELETE,
        "/agentRegistry/agentInstances/of-a",
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn managed_by_applies_to_manifests_and_collections_too() {
    let s = TestServer::start().await;
    let a = s.app_token(
        "app-a",
        &[
            "AgentCardManifest.ReadWrite.ManagedBy",
            "AgentCollection.ReadWrite.ManagedBy",
        ],
    );
    s.post(
        "/agentRegistry/agentCardManifests",
        json!({"id": "other", "displayName": "Other", "managedBy": "app-z"}),
    )
    .await;
    let r = s
        .client
        .post(s.url("/agentRegistry/agentCardManifests"))
        .bearer_auth(&a)
        .json(&json!({"id": "mine", "displayName": "Mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let list: Value = s
        .client
        .get(s.url("/agentRegistry/agentCardManifests"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["mine"]
    );
    let r = s
        .client
        .patch(s.url("/agentRegistry/agentCardManifests/other"))
        .bearer_auth(&a)
        .json(&json!({"version": "9"}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentCardNotFound").await;

    let r = s
        .client
        .post(s.url("/agentRegistry/agentCollections"))
        .bearer_auth(&a)
        .json(&json!({"id": "team", "displayName": "Team", "ownerIds": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let list: Value = s
        .client
        .get(s.url("/agentRegistry/agentCollections"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["team"],
        "not the reserved ones, which nobody manages"
    );
}

#[tokio::test]
async fn the_reserved_collections_have_permissions_of_their_own() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("i", "I")).await;
    let team = s.create_collection("Team").await;
    let global_only = s.user_token(
        &["AgentCollection.ReadWrite.Global", "AgentInstance.Read.All"],
        &[AGENT_REGISTRY_ADMINISTRATOR],
    );
    let add = |cid: String| {
        s.client
            .post(s.url(&format!(
                "/agentRegistry/agentCollections/{cid}/members/$ref"
            )))
            .bearer_auth(global_only.clone())
            .json(&json!({"@odata.id": "agentInstances('i')"}))
            .send()
    };
    assert_eq!(
        add(GLOBAL.to_owned()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_graph_error(
        add(QUARANTINED.to_owned()).await.unwrap(),
        403,
        "Authorization_RequestDenied",
    )
    .await;
    assert_graph_error(add(team).await.unwrap(), 403, "Authorization_RequestDenied").await;

    let reader = s.user_token(
        &["AgentCollection.Read.Global"],
        &[AGENT_REGISTRY_ADMINISTRATOR],
    );
    let list: Value = s
        .client
        .get(s.url("/agentRegistry/agentCollections"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [GLOBAL]
    );
    let r = s
        .client
        .get(s.url(&format!("/agentRegistry/agentCollections/{QUARANTINED}")))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let members: Value = s
        .client
        .get(s.url(&format!("/agentRegistry/agentCollections/{GLOBAL}/members")))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["value"][0]["id"], "i");
}

#[tokio::test]
async fn a_token_without_scp_or_roles_is_refused() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(s.user_token(&[], &[AGENT_REGISTRY_ADMINISTRATOR]))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 403, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn a_configured_registry_scoped_role_grants_its_actions() {
    const READER_ID: &str = "5c0a0d6e-0000-4000-8000-00000000f00d";
    let s = TestServer::start_configured(|c| {
        c.scoped_roles = vec![(READER_ID.into(), "Agent Instance Reader")]
    })
    .await;
    s.create_instance(instance_body("i", "I")).await;
    let reader = s.user_token(&["AgentInstance.ReadWrite.All"], &[READER_ID]);
    let r = s
        .client
        .get(s.url("/agentRegistry/agentInstances/i"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .patch(s.url("/agentRegistry/agentInstances/i"))
        .bearer_auth(&reader)
        .json(&json!({"displayName": "x"}))
        .send()
        .await
        .unwrap();
    let e = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("directory roles"),
        "{e}"
    );
}

#[tokio::test]
async fn a_managed_by_app_nests_only_manifests_it_manages() {
    let s = TestServer::start().await;
    let roles = [
        "AgentInstance.ReadWrite.ManagedBy",
        "AgentCardManifest.ReadWrite.ManagedBy",
    ];
    let a = s.app_token("app-a", &roles);
    let mut body = instance_body("mine", "Mine");
    body["agentCardManifest"] = json!({"id": "my-card", "displayName": "Card"});
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&a)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.get_json("/agentRegistry/agentCardManifests/my-card")
            .await["managedBy"],
        "app-a",
        "the nested manifest is the caller's"
    );
    let r = s
        .client
        .patch(s.url("/agentRegistry/agentInstances/mine"))
        .bearer_auth(&a)
        .json(&json!({"agentCardManifest": {"version": "2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // An instance of app-a linked to a manifest app-a does not manage.
    s.post(
        "/agentRegistry/agentCardManifests",
        json!({"id": "foreign", "displayName": "F", "managedBy": "app-z"}),
    )
    .await;
    let mut linked = instance_body("linked", "Linked");
    linked["managedBy"] = json!("app-a");
    linked["agentCardManifest@odata.bind"] = json!("agentCardManifests('foreign')");
    s.create_instance(linked).await;
    let r = s
        .client
        .patch(s.url("/agentRegistry/agentInstances/linked"))
        .bearer_auth(&a)
        .json(&json!({"agentCardManifest": {"version": "9"}}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "AgentCardNotFound").await;
    assert_eq!(
        s.get_json("/agentRegistry/agentCardManifests/foreign")
            .await["version"],
        Value::Null
    );
}

/// The version in an `ETag` header, `W/"<version>-<fingerprint>"`.
fn version_of(r: &reqwest::Response) -> u64 {
    let tag = r.headers()["etag"].to_str().unwrap();
    tag.trim_start_matches("W/\"")
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_managed_by_change_racing_a_restricted_patch_never_lets_the_old_owner_write_after_it() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let a = s.app_token("app-a", &["AgentInstance.ReadWrite.ManagedBy"]);
    let admin = s.app_token("app-admin", &["AgentInstance.ReadWrite.All"]);
    let mut raced = 0;
    for n in 0..40 {
        let id = format!("race-{n}");
        let mut body = instance_body(&id, "start");
        body["managedBy"] = json!("app-a");
        let r = s
            .client
            .post(s.url("/agentRegistry/agentInstances"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let path = s.url(&format!("/agentRegistry/agentInstances/{id}"));
        let give_away = s
            .client
            .patch(&path)
            .bearer_auth(&admin)
            .json(&json!({"managedBy": "app-b"}))
            .send();
        let write = s
            .client
            .patch(&path)
            .bearer_auth(&a)
            .json(&json!({"displayName": "written by app-a"}))
            .send();
        let (given, written) = tokio::join!(give_away, write);
        let (given, written) = (given.unwrap(), written.unwrap());
        assert_eq!(given.status(), StatusCode::NO_CONTENT);
        match written.status() {
            // Its write came first: it must be ordered before the change.
            StatusCode::NO_CONTENT => {
                assert!(version_of(&written) < version_of(&given), "{id}");
            }
            // The change came first: the object is no longer its own.
            StatusCode::NOT_FOUND => raced += 1,
            other => panic!("{id}: {other}"),
        }
        let stored = s
            .get_json(&format!("/agentRegistry/agentInstances/{id}"))
            .await;
        assert_eq!(stored["managedBy"], "app-b");
    }
    // Both orders happen, so the check above was put to the test.
    assert!(raced < 40, "app-a never wrote first");
}

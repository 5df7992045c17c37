//! `/auditLogs/directoryAudits`: every write recorded, in the write's own
//! transaction, in Graph's `directoryAudit` shape; filters, paging and
//! permissions.

use crate::support::*;
use agentry::auth::permissions::{REPORTS_READER, SECURITY_READER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const AUDITS: &str = "/auditLogs/directoryAudits";

async fn records(s: &TestServer, query: &str) -> Vec<Value> {
    let body = s.get_json(&format!("{AUDITS}{query}")).await;
    body["value"].as_array().expect("value").clone()
}

/// The records about one object, newest first.
async fn about(s: &TestServer, id: &str) -> Vec<Value> {
    records(
        s,
        &format!("?$filter=targetResources/any(t:t/id eq '{id}')"),
    )
    .await
}

fn activities(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["activityDisplayName"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_write_is_recorded_newest_first_with_who_what_and_the_client_request_id() {
    let s = TestServer::start().await;
    let r = s
        .req(Method::POST, "/agentRegistry/agentInstances")
        .header("client-request-id", "7c1b2a3d-0000-4000-8000-00000000c0de")
        .json(&instance_body("a1", "First"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .patch(
            "/agentRegistry/agentInstances/a1",
            json!({"displayName": "Second", "url": "https://a1.example/a2a"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.delete("/agentRegistry/agentInstances/a1").await.status(),
        StatusCode::NO_CONTENT
    );

    let got = about(&s, "a1").await;
    assert_eq!(
        activities(&got),
        [
            "Delete agent instance",
            "Update agent instance",
            "Add agent instance"
        ]
    );
    let [deleted, updated, added] = got.as_slice() else {
        unreachable!()
    };
    for record in &got {
        assert_eq!(record["category"], "AgentRegistry");
        assert_eq!(record["result"], "success");
        assert_eq!(record["loggedByService"], "Agentry");
        assert_eq!(record["initiatedBy"]["user"]["id"], USER);
        assert!(record["initiatedBy"]["app"].is_null());
        assert_eq!(record["targetResources"][0]["type"], "AgentInstance");
    }
    assert_eq!(added["operationType"], "Add");
    assert_eq!(
        added["correlationId"],
        "7c1b2a3d-0000-4000-8000-00000000c0de"
    );
    assert_eq!(updated["operationType"], "Update");
    assert_eq!(deleted["operationType"], "Delete");
    assert!(
        updated["activityDateTime"].as_str() >= added["activityDateTime"].as_str(),
        "{got:?}"
    );
    // What changed, old and new values as JSON text; nothing else.
    let modified = &updated["targetResources"][0]["modifiedProperties"];
    assert_eq!(
        modified,
        &json!([
            {"displayName": "displayName", "oldValue": "\"First\"", "newValue": "\"Second\""},
            {"displayName": "url", "oldValue": "null", "newValue": "\"https://a1.example/a2a\""},
        ])
    );
    assert_eq!(updated["targetResources"][0]["displayName"], "Second");
}

#[tokio::test]
async fn a_refused_write_leaves_no_record() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("a1", "First")).await;
    let before = records(&s, "").await.len();
    // Invalid, conflicting, stale and out-of-scope writes.
    let r = s
        .post("/agentRegistry/agentInstances", json!({"displayName": 3}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .post(
            "/agentRegistry/agentInstances",
            instance_body("a1", "Again"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = s
        .req(Method::PATCH, "/agentRegistry/agentInstances/a1")
        .header("If-Match", "W/\"99-0\"")
        .json(&json!({"displayName": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = s.delete("/agentRegistry/agentInstances/missing").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(records(&s, "").await.len(), before);
}

#[tokio::test]
async fn a_nested_manifest_and_a_membership_are_recorded_as_their_own_changes() {
    let s = TestServer::start().await;
    let mut body = instance_body("a1", "Agent");
    body["agentCardManifest"] = json!({"id": "m1", "displayName": "Card"});
    s.create_instance(body).await;
    let collection = s.create_collection("Team").await;
    let r = s
        .post(
            &format!("/agentRegistry/agentCollections/{collection}/members"),
            json!({"id": "a1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    assert_eq!(
        activities(&about(&s, "m1").await),
        ["Add agent card manifest"]
    );
    let membership = about(&s, &collection).await;
    assert_eq!(
        activities(&membership),
        ["Add member to agent collection", "Add agent collection"]
    );
    assert_eq!(membership[0]["operationType"], "Assign");
    assert_eq!(membership[0]["targetResources"][1]["id"], "a1");
    assert_eq!(membership[0]["targetResources"][1]["type"], "AgentInstance");
    // The instance is a target of the membership record too.
    assert_eq!(
        activities(&about(&s, "a1").await),
        ["Add member to agent collection", "Add agent instance"]
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_date_category_activity_initiator_and_correlation() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("a1", "Agent")).await;
    let r = s
        .req(Method::POST, "/copilot/agentRegistrations")
        .header("client-request-id", "corr-1")
        .json(&json!({
            "id": "r1", "displayName": "R", "ownerIds": [USER], "createdBy": USER,
            "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
            "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let registration = records(&s, "?$filter=category eq 'AgentRegistration'").await;
    assert_eq!(activities(&registration), ["Add agent registration"]);
    assert_eq!(
        activities(&records(&s, "?$filter=correlationId eq 'corr-1'").await),
        ["Add agent registration"]
    );
    assert_eq!(
        activities(&records(&s, "?$filter=activityDisplayName eq 'Add agent instance'").await),
        ["Add agent instance"]
    );
    let by_user = records(&s, &format!("?$filter=initiatedBy/user/id eq '{USER}'")).await;
    assert!(by_user.len() >= 2, "{by_user:?}");
    assert!(
        records(&s, "?$filter=initiatedBy/app/appId eq 'nobody'")
            .await
            .is_empty()
    );
    let at = registration[0]["activityDateTime"].as_str().unwrap();
    let since = records(&s, &format!("?$filter=activityDateTime ge {at}")).await;
    assert_eq!(activities(&since), ["Add agent registration"]);
    let until = records(&s, &format!("?$filter=activityDateTime lt {at}")).await;
    assert!(
        until
            .iter()
            .all(|r| r["activityDisplayName"] != "Add agent registration")
    );
    // A property the type does not have is the usual OData 400.
    let r = s.get(&format!("{AUDITS}?$filter=nothing eq 1")).await;
    assert_graph_error(r, 400, "BadRequest").await;
}

#[tokio::test]
async fn an_audit_record_is_read_by_id_and_pages_follow_next_links() {
    let s = TestServer::start().await;
    for n in 0..5 {
        s.create_instance(instance_body(&format!("a{n}"), "Agent"))
            .await;
    }
    let all = records(&s, "?$filter=category eq 'AgentRegistry'").await;
    let first = &all[0];
    let id = first["id"].as_str().unwrap();
    let one = s.get_json(&format!("{AUDITS}/{id}")).await;
    assert_eq!(one["activityDisplayName"], first["activityDisplayName"]);
    assert!(
        one["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#auditLogs/directoryAudits/$entity"),
        "{one}"
    );
    let r = s.get(&format!("{AUDITS}/no-such-record")).await;
    assert_graph_error(r, 404, "NotFound").await;

    let mut seen = Vec::new();
    let mut url = s.url(&format!(
        "{AUDITS}?$filter=category eq 'AgentRegistry'&$top=2"
    ));
    loop {
        let page = s.get_json_at(&url).await;
        for r in page["value"].as_array().unwrap() {
            seen.push(r["id"].clone());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let ids: Vec<Value> = all.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(seen, ids, "pages hold every record once, in order");
    let count = s
        .get(&format!("{AUDITS}/$count"))
        .await
        .text()
        .await
        .unwrap();
    assert!(count.parse::<usize>().unwrap() >= 5, "{count}");
}

#[tokio::test]
async fn reading_the_audit_log_takes_audit_log_read_all_and_a_reader_role() {
    let s = TestServer::start().await;
    let list = |token: String| s.client.get(s.url(AUDITS)).bearer_auth(token).send();
    let cases = [
        (s.user_token(&["AuditLog.Read.All"], &[REPORTS_READER]), 200),
        (
            s.user_token(&["AuditLog.Read.All"], &[SECURITY_READER]),
            200,
        ),
        (s.user_token(&["AuditLog.Read.All"], &[]), 403),
        (
            s.user_token(&["AgentInstance.ReadWrite.All"], &[REPORTS_READER]),
            403,
        ),
        (s.app_token(APP, &["AuditLog.Read.All"]), 200),
        (s.app_token(APP, &["AgentInstance.Read.All"]), 403),
    ];
    for (n, (token, status)) in cases.into_iter().enumerate() {
        let r = list(token).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {n}");
        if status == 403 {
            assert_graph_error(r, 403, "Authorization_RequestDenied").await;
        }
    }
}

#[tokio::test]
async fn an_application_write_names_the_application_as_initiator() {
    let s = TestServer::start().await;
    let token = s.app_token(APP, &["AgentInstance.ReadWrite.All"]);
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(token)
        .json(&instance_body("by-app", "Agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = about(&s, "by-app").await;
    assert!(got[0]["initiatedBy"]["user"].is_null(), "{}", got[0]);
    assert_eq!(got[0]["initiatedBy"]["app"]["appId"], APP);
}

#[tokio::test]
async fn copilot_and_control_plane_writes_are_recorded_too() {
    let s = TestServer::start().await;
    let pin = "microsoft.copilot.copilotchatpinning";
    let r = s
        .patch(
            &format!("/copilot/admin/policySettings/{pin}"),
            json!({"value": "0"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .patch(
            "/copilot/admin/settings/limitedMode",
            json!({"isEnabledForGroup": true, "groupId": "g1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .control_as(TENANT_A, Method::POST, "/reset")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let copilot = records(&s, "?$filter=category eq 'CopilotSettings'").await;
    assert_eq!(
        activities(&copilot),
        [
            "Update Copilot setting limitedMode",
            "Update Copilot policy setting"
        ]
    );
    assert_eq!(copilot[1]["targetResources"][0]["id"], pin);
    assert_eq!(
        copilot[0]["targetResources"][0]["modifiedProperties"],
        json!([
            {"displayName": "isEnabledForGroup", "oldValue": null, "newValue": "true"},
            {"displayName": "groupId", "oldValue": null, "newValue": "\"g1\""},
        ])
    );
    let control = records(&s, "?$filter=category eq 'Agentry'").await;
    assert_eq!(activities(&control), ["Reset tenant"]);
    assert_eq!(control[0]["initiatedBy"]["app"]["appId"], APP);
    // The audit log outlives the reset it records.
    assert!(!copilot.is_empty());
}

#[tokio::test]
async fn a_refused_write_is_recorded_as_a_failure_and_a_refused_read_is_not() {
    let s = TestServer::start().await;
    let reader = s.user_token(&["AgentInstance.Read.All"], &[]);
    let r = s
        .client
        .post(s.url("/agentRegistry/agentInstances"))
        .bearer_auth(&reader)
        .json(&instance_body("nope", "Nope"))
        .send()
        .await
        .unwrap();
    let refused = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    let r = s
        .client
        .get(s.url("/copilot/admin/settings/limitedMode"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let failed = records(&s, "?$filter=result eq 'failure'").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let record = &failed[0];
    assert_eq!(record["activityDisplayName"], "Create an agent instance");
    assert_eq!(record["category"], "AgentRegistry");
    assert_eq!(record["operationType"], "Add");
    assert_eq!(record["resultReason"], refused["error"]["message"]);
    assert_eq!(record["initiatedBy"]["user"]["id"], USER);
    // The write did not happen.
    assert!(about(&s, "nope").await.is_empty());
}

#[tokio::test]
async fn records_older_than_the_retention_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    s.create_instance(instance_body("old", "Old")).await;
    assert_eq!(about(&s, "old").await.len(), 1);
    s.stop().await;

    // Started again 31 days later: the pruner's first round runs at start.
    let later = agentry::clock::wall_now() + time::Duration::days(31);
    let s = TestServer::start_with_clock(
        agentry::config::ServerConfig::with_data_dir(dir.path()),
        std::sync::Arc::new(agentry::clock::FixedClock(later)),
    )
    .await;
    s.create_instance(instance_body("new", "New")).await;
    let mut left = about(&s, "old").await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = about(&s, "old").await;
    }
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(activities(&about(&s, "new").await), ["Add agent instance"]);
}

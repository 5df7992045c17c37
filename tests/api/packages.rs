//! `/copilot/admin/catalog/packages`: the Agent 365 package catalog on
//! beta and v1.0, loaded through the control plane.

use crate::support::*;
use agentry::auth::permissions::{
    AGENT_REGISTRY_ADMINISTRATOR, AI_ADMINISTRATOR, AI_READER, GLOBAL_ADMINISTRATOR,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SET: &str = "/copilot/admin/catalog/packages";
const READ: &str = "CopilotPackages.Read.All";
const WRITE: &str = "CopilotPackages.ReadWrite.All";

/// A package as the control plane loads it.
pub fn package(id: &str, name: &str, element_types: &[&str], hosts: &[&str]) -> Value {
    json!({
        "id": id,
        "displayName": name,
        "type": "custom",
        "shortDescription": format!("{name}, briefly"),
        "longDescription": format!("{name}, at length"),
        "supportedHosts": hosts,
        "elementTypes": element_types,
        "platform": "Copilot Studio",
        "publisher": "Contoso",
        "version": "1.0.0",
        "lastModifiedDateTime": "2026-02-01T00:00:00Z",
        "activeUsers": 12,
        "elementDetails": [{"elementType": "declarativeAgent", "elements": [{"id": "e1", "definition": "{\"name\":\"x\"}"}]}],
    })
}

impl TestServer {
    pub(crate) async fn load_package(&self, body: Value) {
        let r = self
            .control_as(TENANT_A, Method::POST, "/copilot/packages")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{body}");
    }

    pub(crate) async fn remove_package(&self, id: &str) {
        let r = self
            .control_as(TENANT_A, Method::DELETE, &format!("/copilot/packages/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{id}");
    }

    fn as_admin(&self, method: Method, version: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/{version}{path}", self.origin))
            .bearer_auth(self.user_token(&[WRITE], &[AI_ADMINISTRATOR]))
    }
}

async fn catalog(s: &TestServer) {
    s.load_package(package(
        "P_1",
        "Travel agent",
        &["DeclarativeAgent"],
        &["Copilot", "Teams"],
    ))
    .await;
    s.load_package(package("P_2", "Expense bot", &["Bots"], &["Teams"]))
        .await;
    s.load_package(package(
        "P_3",
        "Mail add-in",
        &["OfficeAddIns"],
        &["Outlook"],
    ))
    .await;
    let mut old = package("P_4", "Old engine", &["CustomEngineAgent"], &["Copilot"]);
    old["lastModifiedDateTime"] = json!("2025-06-01T00:00:00Z");
    old["platform"] = json!("Microsoft 365 Copilot Agent Builder");
    s.load_package(old).await;
}

fn ids(v: &Value) -> Vec<&str> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_show_agents_unless_element_types_are_filtered_on_on_beta_and_v1() {
    let s = TestServer::start().await;
    catalog(&s).await;
    for version in ["beta", "v1.0"] {
        let get = |query: &str| {
            s.as_admin(Method::GET, version, &format!("{SET}{query}"))
                .send()
        };
        let cases = [
            ("", vec!["P_1", "P_2", "P_4"]),
            (
                "?$filter=supportedHosts/any(h:h eq 'Copilot')",
                vec!["P_1", "P_4"],
            ),
            (
                "?$filter=elementTypes/any(h:h eq 'OfficeAddIns')",
                vec!["P_3"],
            ),
            (
                "?$filter=lastModifiedDateTime gt 2026-01-01T00:00:00.0000000Z",
                vec!["P_1", "P_2"],
            ),
            (
                "?$filter=platform eq 'Microsoft 365 Copilot Agent Builder'",
                vec!["P_4"],
            ),
        ];
        for (query, want) in cases {
            let r = get(query).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{version}{query}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(ids(&body), want, "{version}{query}");
            assert_eq!(
                body["@odata.context"],
                format!(
                    "{}/{version}/$metadata#copilot/admin/catalog/packages",
                    s.origin
                )
            );
        }
        let r = get("/$count").await.unwrap();
        assert_eq!(r.text().await.unwrap(), "3", "{version}");
        // Items are the summary: no detail properties.
        let body: Value = get("").await.unwrap().json().await.unwrap();
        let first = &body["value"][0];
        assert_eq!(first["shortDescription"], "Travel agent, briefly");
        assert!(
            first.get("longDescription").is_none() && first.get("activeUsers").is_none(),
            "{first}"
        );
        // A get is the whole detail.
        let r = get("/P_1").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let detail: Value = r.json().await.unwrap();
        assert_eq!(
            detail["@odata.context"],
            format!(
                "{}/{version}/$metadata#copilot/admin/catalog/packages/$entity",
                s.origin
            )
        );
        assert_eq!(detail["activeUsers"], 12);
        assert_eq!(detail["longDescription"], "Travel agent, at length");
        assert_eq!(
            detail["elementDetails"][0]["elements"][0]["definition"],
            "{\"name\":\"x\"}"
        );
        assert_eq!(detail["isBlocked"], false);
        let r = get("/P_9").await.unwrap();
        assert_graph_error(r, 404, "NotFound").await;
    }
}

#[tokio::test]
async fn administrators_change_access_block_unblock_and_reassign_on_beta_only() {
    let s = TestServer::start().await;
    catalog(&s).await;
    let send = |method: Method, path: &str, body: Option<Value>| {
        let mut rb = s.as_admin(method, "beta", &format!("{SET}{path}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    let users = json!([{"resourceId": USER, "resourceType": "user"}]);
    let r = send(
        Method::PATCH,
        "/P_1",
        Some(json!({"allowedUsersAndGroups": users})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(Method::POST, "/P_1/block", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        Method::POST,
        "/P_1/reassign",
        Some(json!({"userId": "new-owner"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail: Value = send(Method::GET, "/P_1", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["allowedUsersAndGroups"], users);
    assert_eq!(detail["availableTo"], "some");
    assert_eq!(detail["deployedTo"], "none");
    assert_eq!(detail["isBlocked"], true);
    assert_eq!(detail["ownerId"], "new-owner");
    assert_ne!(
        detail["lastModifiedDateTime"], "2026-02-01T00:00:00.0000000Z",
        "a write moves it"
    );
    let r = send(Method::POST, "/P_1/unblock", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail: Value = send(Method::GET, "/P_1", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["isBlocked"], false);

    // Bad writes are 400 and change nothing; an unknown package is 404.
    let bad = [
        ("/P_1", json!({"isBlocked": true})),
        ("/P_1", json!({"displayName": "x"})),
        (
            "/P_1",
            json!({"allowedUsersAndGroups": [{"resourceId": "x", "resourceType": "robot"}]}),
        ),
    ];
    for (path, body) in bad {
        let r = send(Method::PATCH, path, Some(body.clone())).await.unwrap();
        assert_graph_error(r, 400, "ValidationError").await;
    }
    for body in [json!({}), json!({"userId": 7})] {
        let r = send(Method::POST, "/P_1/reassign", Some(body))
            .await
            .unwrap();
        assert_graph_error(r, 400, "ValidationError").await;
    }
    let r = send(Method::POST, "/P_9/block", None).await.unwrap();
    assert_graph_error(r, 404, "NotFound").await;
    let detail: Value = send(Method::GET, "/P_1", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["displayName"], "Travel agent");

    // v1.0 has list and get only: writes there are unknown.
    let r = s
        .as_admin(Method::PATCH, "v1.0", &format!("{SET}/P_1"))
        .json(&json!({"allowedUsersAndGroups": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = s
        .as_admin(Method::POST, "v1.0", &format!("{SET}/P_1/block"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "BadRequest").await;
}

#[tokio::test]
async fn package_permissions_follow_the_table_and_writes_are_delegated_only() {
    let s = TestServer::start().await;
    catalog(&s).await;
    let call = |token: String, method: Method, path: &str| {
        s.client
            .request(method, s.url(&format!("{SET}{path}")))
            .bearer_auth(token)
            .send()
    };
    let cases = [
        (s.app_token(APP, &[READ]), Method::GET, "/P_1", 200),
        (s.app_token(APP, &[WRITE]), Method::POST, "/P_1/block", 403),
        (
            s.app_token(APP, &["AgentRegistration.Read.All"]),
            Method::GET,
            "",
            403,
        ),
        (s.user_token(&[READ], &[AI_READER]), Method::GET, "", 200),
        (
            s.user_token(&[READ], &[AGENT_REGISTRY_ADMINISTRATOR]),
            Method::GET,
            "",
            403,
        ),
        (
            s.user_token(&[READ], &[AI_ADMINISTRATOR]),
            Method::POST,
            "/P_1/block",
            403,
        ),
        (
            s.user_token(&[WRITE], &[AI_READER]),
            Method::POST,
            "/P_1/block",
            403,
        ),
        (
            s.user_token(&[WRITE], &[GLOBAL_ADMINISTRATOR]),
            Method::POST,
            "/P_1/block",
            204,
        ),
    ];
    for (n, (token, method, path, status)) in cases.into_iter().enumerate() {
        let r = call(token, method, path).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {n}");
    }
    // Loading is the control plane's: a Graph token without `Agentry.Admin`
    // cannot.
    let r = s
        .client
        .post(format!("{}/_agentry/copilot/packages", s.origin))
        .bearer_auth(s.user_token(&[WRITE], &[GLOBAL_ADMINISTRATOR]))
        .json(&package("P_5", "x", &["Bots"], &[]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn the_control_plane_loads_and_removes_packages_and_snapshots_carry_them() {
    let s = TestServer::start().await;
    catalog(&s).await;
    let r = s
        .control_as(TENANT_A, Method::POST, "/copilot/packages")
        .json(&package("P_1", "again", &["Bots"], &[]))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 409, "Conflict").await;
    let r = s
        .control_as(TENANT_A, Method::POST, "/copilot/packages")
        .json(&json!({"displayName": "no id"}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 400, "ValidationError").await;
    let snapshot = s.snapshot().await;
    let packages = &snapshot["tenants"][TENANT_A]["copilot"]["packages"];
    assert_eq!(packages.as_array().unwrap().len(), 4, "{snapshot}");
    s.remove_package("P_2").await;
    let r = s
        .as_admin(Method::GET, "beta", &format!("{SET}/P_2"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "NotFound").await;
    // Another tenant sees none of them.
    let r = s.req_as(TENANT_B, Method::GET, SET).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"], json!([]));
}

#[tokio::test]
async fn a_package_loaded_again_under_a_removed_id_is_listed_by_its_new_element_types() {
    let s = TestServer::start().await;
    catalog(&s).await;
    let listed = |query: &'static str| {
        let s = &s;
        async move {
            let r = s
                .as_admin(Method::GET, "beta", &format!("{SET}{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{query}");
            let body: Value = r.json().await.unwrap();
            ids(&body)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    s.remove_package("P_2").await;
    // The same id again, now an add-in: listed by its new type only.
    s.load_package(package(
        "P_2",
        "Expense add-in",
        &["OfficeAddIns"],
        &["Outlook"],
    ))
    .await;
    assert_eq!(listed("").await, ["P_1", "P_4"]);
    assert!(
        listed("?$filter=elementTypes/any(t:t eq 'Bots')")
            .await
            .is_empty()
    );
    assert_eq!(
        listed("?$filter=elementTypes/any(t:t eq 'OfficeAddIns')").await,
        ["P_2", "P_3"]
    );
    assert_eq!(
        listed("?$filter=elementTypes/any(t:t eq 'OfficeAddIns' or t eq 'Bots')").await,
        ["P_2", "P_3"]
    );
}

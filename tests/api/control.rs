//! The control plane: health probes, reset and snapshots, fault rules,
//! throttling, the request journal, metrics and the API descriptions.

use crate::support::*;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "Agentry.Admin";
const PIN: &str = "microsoft.copilot.copilotchatpinning";

impl TestServer {
    /// A control-plane request as an `Agentry.Admin` application of `tenant`.
    pub(crate) fn control_as(&self, tenant: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}/_agentry{path}", self.origin))
            .bearer_auth(self.app_token_for(tenant, &[ADMIN]))
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.control_as(TENANT_A, method, path)
    }

    pub(crate) async fn snapshot(&self) -> Value {
        let r = self.admin(Method::GET, "/snapshot").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn add_fault(&self, rule: Value) -> Value {
        let r = self
            .admin(Method::POST, "/faults")
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{rule}");
        r.json().await.unwrap()
    }

    async fn journal(&self, query: &str) -> Value {
        let r = self
            .admin(Method::GET, &format!("/requests{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    fn plain(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.origin))
    }
}

const INSTANCES: &str = "/agentRegistry/agentInstances";

/// Fills tenant A with one object of every kind the snapshot carries.
pub(crate) async fn populate(s: &TestServer) {
    let r = s
        .post(
            "/agentRegistry/agentCardManifests",
            json!({"id": "card's", "displayName": "Card", "skills": [{"id": "s", "tags": ["t"]}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut body = instance_body("agent 1", "Agent");
    body["agentCardManifest@odata.bind"] = json!("agentCardManifests('card''s')");
    s.create_instance(body).await;
    s.create_instance(instance_body("agent 2", "Other")).await;
    let team = s.create_collection("Team").await;
    for collection in [team.as_str(), GLOBAL] {
        let r = s
            .post(
                &format!("/agentRegistry/agentCollections/{collection}/members/$ref"),
                json!({"@odata.id": format!("{}/agentRegistry/agentInstances('agent 1')", s.url(""))}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = s
        .post(
            "/copilot/agentRegistrations",
            crate::registrations::registration("reg's", "source 1"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.load_package(crate::packages::package(
        "P_1",
        "Travel",
        &["DeclarativeAgent"],
        &["Copilot"],
    ))
    .await;
    let r = s
        .admin(Method::POST, "/copilot/policies")
        .json(
            &json!({"id": "p1", "displayName": "Defaults", "service": "cloudPolicyService",
                      "scope": "tenant", "settings": {PIN: "1"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .patch(
            "/copilot/admin/settings/limitedMode",
            json!({"isEnabledForGroup": true, "groupId": "g"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
}

// ---------------------------------------------------------------- health

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let s = TestServer::start().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = s.plain(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"status": status}));
    }
}

// ---------------------------------------------------------------- access

#[tokio::test]
async fn every_control_endpoint_needs_the_agentry_admin_role() {
    let s = TestServer::start().await;
    let endpoints = [
        (Method::POST, "/reset"),
        (Method::GET, "/snapshot"),
        (Method::PUT, "/snapshot"),
        (Method::GET, "/faults"),
        (Method::POST, "/faults"),
        (Method::DELETE, "/faults"),
        (Method::DELETE, "/faults/x"),
        (Method::GET, "/requests"),
        (Method::DELETE, "/requests"),
        (Method::GET, "/requests.har"),
        (Method::GET, "/copilot/policies"),
        (Method::GET, "/a2a/settings"),
        (Method::PATCH, "/a2a/settings"),
        (Method::GET, "/a2a/agents"),
        (Method::POST, "/a2a/watch"),
    ];
    use agentry::auth::permissions::{AGENT_REGISTRY_ADMINISTRATOR, GLOBAL_ADMINISTRATOR};
    let tokens = [
        s.app_token(APP, &["AgentInstance.ReadWrite.All"]),
        // The scope without the Global Administrator role, and the role
        // without the scope.
        s.user_token(&["Agentry.Admin"], &[AGENT_REGISTRY_ADMINISTRATOR]),
        s.user_token(&["AgentInstance.ReadWrite.All"], &[GLOBAL_ADMINISTRATOR]),
    ];
    for (method, path) in endpoints {
        for token in &tokens {
            let r = s
                .client
                .request(method.clone(), format!("{}/_agentry{path}", s.origin))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_graph_error(r, 403, "Authorization_RequestDenied").await;
        }
        let r = s
            .client
            .request(method.clone(), format!("{}/_agentry{path}", s.origin))
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
    }
}

#[tokio::test]
async fn a_global_administrator_with_the_delegated_scope_uses_the_control_plane() {
    use agentry::auth::permissions::GLOBAL_ADMINISTRATOR;
    let s = TestServer::start().await;
    let user = s.user_token(&["Agentry.Admin"], &[GLOBAL_ADMINISTRATOR]);
    let r = s
        .client
        .get(format!("{}/_agentry/faults", s.origin))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The default token (the built-in admin user) carries both.
    let r = s
        .client
        .get(format!("{}/_agentry/snapshot", s.origin))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------- reset and snapshots

#[tokio::test]
async fn a_snapshot_round_trip_through_a_reset_is_exact() {
    let s = TestServer::start().await;
    populate(&s).await;
    let before = s.snapshot().await;
    let tenant = &before["tenants"][TENANT_A];
    assert_eq!(tenant["agentInstances"].as_array().unwrap().len(), 2);
    assert_eq!(
        tenant["agentInstances"][0]["agentCardManifest@odata.bind"],
        "agentCardManifests('card''s')"
    );
    assert_eq!(tenant["members"][GLOBAL], json!(["agent 1"]));
    assert_eq!(tenant["copilot"]["policies"][0]["id"], "p1");
    assert_eq!(tenant["copilot"]["limitedMode"]["groupId"], "g");
    assert!(tenant["agentInstances"][0]["createdBy"].is_string());
    assert_eq!(tenant["agentRegistrations"][0]["sourceAgentId"], "source 1");
    assert_eq!(tenant["copilot"]["packages"][0]["activeUsers"], 12);

    let r = s.admin(Method::POST, "/reset").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after_reset = s.get_json(INSTANCES).await;
    assert_eq!(after_reset["value"], json!([]));
    let collections = s.get_json("/agentRegistry/agentCollections").await;
    assert_eq!(
        collections["value"].as_array().unwrap().len(),
        2,
        "only the reserved collections remain: {collections}"
    );
    let policies = s.snapshot().await["tenants"][TENANT_A]["copilot"]["policies"].clone();
    assert_eq!(policies, json!([]));

    let r = s
        .admin(Method::PUT, "/snapshot")
        .json(&before)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.snapshot().await, before, "export, reset, restore, export");
    let manifest = s
        .get_json(&format!("{INSTANCES}/{}/agentCardManifest", key("agent 1")))
        .await;
    assert_eq!(manifest["id"], "card's");
    let setting = s
        .get_json(&format!("/copilot/admin/policySettings/{PIN}"))
        .await;
    assert_eq!(setting["value"], "1");
}

#[tokio::test]
async fn a_reset_leaves_other_tenants_alone() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("a", "A")).await;
    let r = s
        .req_as(TENANT_B, Method::POST, INSTANCES)
        .json(&instance_body("b", "B"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let b_before = s
        .control_as(TENANT_B, Method::GET, "/snapshot")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();

    let r = s.admin(Method::POST, "/reset").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(s.get_json(INSTANCES).await["value"], json!([]));
    let b_after = s
        .control_as(TENANT_B, Method::GET, "/snapshot")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(b_after, b_before);
    assert_eq!(b_after["tenants"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn a_snapshot_restores_into_the_callers_tenant_only() {
    let s = TestServer::start().await;
    populate(&s).await;
    let a = s.snapshot().await;
    let r = s
        .control_as(TENANT_B, Method::PUT, "/snapshot")
        .json(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b = s
        .req_as(TENANT_B, Method::GET, INSTANCES)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_invalid_snapshot_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    populate(&s).await;
    let before = s.snapshot().await;
    let cases = [
        json!({"tenants": {TENANT_A: {"agentInstances": [
            {"id": "x", "displayName": "X", "ownerIds": [USER],
             "agentCardManifest@odata.bind": "agentCardManifests('missing')"}]}}}),
        json!({"tenants": {TENANT_A: {"members": {"nope": ["x"]}}}}),
        json!({"tenants": {TENANT_A: {"agentInstances": [{"displayName": "no id", "ownerIds": []}]}}}),
        json!({"tenants": {TENANT_A: {"agentInstances": [
            {"id": "x", "displayName": "X", "ownerIds": []},
            {"id": "x", "displayName": "X", "ownerIds": []}]}}}),
        json!({"tenants": {TENANT_A: {"agentInstances": [
            {"id": "x", "displayName": "X", "ownerIds": [], "createdDateTime": "yesterday"}]}}}),
        json!({"tenants": {TENANT_A: {"agents": []}}}),
        json!({"tenants": {}}),
        json!({"tenants": {TENANT_A: {}, TENANT_B: {}}}),
        json!([1]),
    ];
    for body in cases {
        let r = s
            .admin(Method::PUT, "/snapshot")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 400, "BadRequest").await;
    }
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn a_seed_file_keeps_the_server_owned_fields_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.json");
    let seed = json!({"tenants": {TENANT_A: {"agentInstances": [{
        "id": "old", "displayName": "Old", "ownerIds": [USER], "createdBy": "someone",
        "createdDateTime": "2020-01-01T00:00:00Z", "lastModifiedDateTime": "2021-01-01T00:00:00Z"}]}}});
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let s = TestServer::start_configured(|c| c.seed = Some(seed_path)).await;
    let old = s.get_json(&format!("{INSTANCES}/old")).await;
    assert_eq!(old["createdBy"], "someone");
    assert_eq!(old["createdDateTime"], "2020-01-01T00:00:00Z");
    assert_eq!(old["lastModifiedDateTime"], "2021-01-01T00:00:00Z");
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn an_error_rule_answers_with_a_graph_error_and_expires_after_its_count() {
    let s = TestServer::start().await;
    let rule = s
        .add_fault(
            json!({"method": "GET", "path": "/beta/agentRegistry/agentInstances*",
                          "count": 2, "error": {"status": 429, "retryAfterSeconds": 7}}),
        )
        .await;
    assert_eq!(rule["remaining"], 2);
    for _ in 0..2 {
        let r = s.get(INSTANCES).await;
        assert_eq!(
            r.headers().get("retry-after").unwrap().to_str().unwrap(),
            "7"
        );
        assert_graph_error(r, 429, "TooManyRequests").await;
    }
    assert_eq!(s.get(INSTANCES).await.status(), StatusCode::OK);
    let listed = s
        .admin(Method::GET, "/faults")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]), "the used-up rule expired");
}

#[tokio::test]
async fn error_rules_answer_any_status_and_code_and_match_only_their_method_and_path() {
    let s = TestServer::start().await;
    s.add_fault(json!({"method": "POST", "path": "/beta/agentRegistry/agentCollections", "error": {"status": 503}}))
        .await;
    s.add_fault(json!({"path": "/beta/agentRegistry/agentCardManifests/*",
                       "error": {"status": 504, "code": "gatewayTimeout", "message": "slow"}}))
        .await;
    s.add_fault(json!({"path": "/beta/copilot/*", "error": {"status": 418, "code": "teapot"}}))
        .await;

    let r = s
        .post(
            "/agentRegistry/agentCollections",
            json!({"displayName": "x", "ownerIds": []}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_graph_error(r, 503, "serviceNotAvailable").await;
    assert_eq!(
        s.get("/agentRegistry/agentCollections").await.status(),
        StatusCode::OK,
        "another method passes"
    );
    let body = assert_graph_error(
        s.get("/agentRegistry/agentCardManifests/m").await,
        504,
        "gatewayTimeout",
    )
    .await;
    assert_eq!(body["error"]["message"], "slow");
    assert_eq!(
        s.get("/agentRegistry/agentCardManifests").await.status(),
        StatusCode::OK,
        "the glob needs the slash"
    );
    assert_graph_error(
        s.get(&format!("/copilot/admin/policySettings/{PIN}")).await,
        418,
        "teapot",
    )
    .await;
}

#[tokio::test]
async fn a_latency_rule_delays_without_changing_the_answer() {
    let s = TestServer::start().await;
    let rule = s
        .add_fault(json!({"path": "/beta/agentRegistry/agentInstances", "delayMs": 20}))
        .await;
    assert_eq!(s.get(INSTANCES).await.status(), StatusCode::OK);
    let listed = s
        .admin(Method::GET, "/faults")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["value"][0]["id"], rule["id"]);
    assert_eq!(listed["value"][0]["applied"], 1);
}

#[tokio::test]
async fn a_rule_can_target_one_client_request_id() {
    let s = TestServer::start().await;
    s.add_fault(json!({"path": "*", "clientRequestId": "break-me", "error": {"status": 500}}))
        .await;
    assert_eq!(s.get(INSTANCES).await.status(), StatusCode::OK);
    let r = s
        .req(Method::GET, INSTANCES)
        .header("client-request-id", "break-me")
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 500, "InternalServerError").await;
}

#[tokio::test]
async fn a_rule_with_probability_zero_never_applies() {
    let s = TestServer::start().await;
    s.add_fault(json!({"path": "*", "probability": 0.0, "error": {"status": 500}}))
        .await;
    for _ in 0..5 {
        assert_eq!(s.get(INSTANCES).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn rules_belong_to_their_tenant_and_never_touch_the_control_plane() {
    let s = TestServer::start().await;
    s.add_fault(json!({"path": "*", "error": {"status": 503}}))
        .await;
    let b = s
        .req_as(TENANT_B, Method::GET, INSTANCES)
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::OK, "tenant B is not affected");
    let listed = s
        .control_as(TENANT_B, Method::GET, "/faults")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]));
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(s.plain(path).send().await.unwrap().status(), StatusCode::OK);
    }
    let r = s.admin(Method::GET, "/faults").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn rules_can_be_removed_one_by_one_or_all_at_once() {
    let s = TestServer::start().await;
    let one = s
        .add_fault(json!({"path": "*", "error": {"status": 503}}))
        .await;
    s.add_fault(json!({"path": "/v1.0/*", "delayMs": 1})).await;
    let id = one["id"].as_str().unwrap();
    let r = s
        .admin(Method::DELETE, &format!("/faults/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get(INSTANCES).await.status(), StatusCode::OK);
    let r = s
        .admin(Method::DELETE, &format!("/faults/{id}"))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "Request_ResourceNotFound").await;
    let r = s.admin(Method::DELETE, "/faults").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let listed = s
        .admin(Method::GET, "/faults")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]));
}

#[tokio::test]
async fn an_invalid_rule_is_refused_with_a_graph_error() {
    let s = TestServer::start().await;
    for body in [
        json!({"path": "/beta/*"}),
        json!({"path": "/beta/*", "error": {"status": 99}}),
        json!({"path": "/beta/*", "delayMs": 1, "colour": "red"}),
        json!({"delayMs": 1}),
    ] {
        let r = s
            .admin(Method::POST, "/faults")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 400, "BadRequest").await;
    }
}

// ---------------------------------------------------------------- throttling

#[tokio::test]
async fn throttling_answers_429_with_retry_after_once_the_bucket_is_empty() {
    let s = TestServer::start_configured(|c| {
        c.throttle = Some(agentry::config::ThrottleSettings {
            rate: 0.01,
            burst: 2,
        });
    })
    .await;
    let token = s.app_token(APP, &["AgentInstance.Read.All"]);
    let get = || s.client.get(s.url(INSTANCES)).bearer_auth(&token).send();
    for _ in 0..2 {
        assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    }
    let r = get().await.unwrap();
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("an integer number of seconds");
    assert!(retry >= 1);
    assert_graph_error(r, 429, "TooManyRequests").await;
    let other = s.app_token(
        "33333333-0000-4000-8000-000000000003",
        &["AgentInstance.Read.All"],
    );
    let r = s
        .client
        .get(s.url(INSTANCES))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "another application has its own bucket"
    );
    let r = s.admin(Method::GET, "/faults").send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the control plane is not throttled"
    );
}

// ---------------------------------------------------------------- journal

#[tokio::test]
async fn the_journal_keeps_the_last_n_requests_of_the_tenant() {
    let s = TestServer::start_configured(|c| c.journal.capacity = 3).await;
    for i in 0..5 {
        s.get(&format!("{INSTANCES}/n{i}")).await;
    }
    let journal = s.journal("").await;
    let paths: Vec<&str> = journal["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/beta/agentRegistry/agentInstances/n2",
            "/beta/agentRegistry/agentInstances/n3",
            "/beta/agentRegistry/agentInstances/n4"
        ]
    );
    let e = &journal["value"][2];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["status"], 404);
    assert!(e["latencyMs"].is_number());
    assert!(e["requestId"].is_string());
    assert_eq!(e["caller"]["tenantId"], TENANT_A);
    assert_eq!(e["caller"]["objectId"], USER);
    let b = s
        .control_as(TENANT_B, Method::GET, "/requests")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(b["value"], json!([]), "tenant B sees none of A's requests");
}

#[tokio::test]
async fn the_journal_never_keeps_a_token_even_with_bodies() {
    let s = TestServer::start_configured(|c| c.journal.bodies = true).await;
    let token = s.token();
    let mut body = instance_body("t", "Token holder");
    body["url"] = json!(format!("Bearer {token}"));
    let r = s
        .client
        .post(s.url(INSTANCES))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for format in ["", "?format=har"] {
        let text = s
            .admin(Method::GET, &format!("/requests{format}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(&token), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains("\"authorization\""),
            "{text}"
        );
        assert!(text.contains("Token holder"), "bodies are kept: {text}");
    }
}

#[tokio::test]
async fn the_journal_keeps_no_secret_from_query_strings_or_custom_headers() {
    let s = TestServer::start_configured(|c| c.journal.bodies = true).await;
    let r = s
        .req(
            Method::GET,
            &format!("{INSTANCES}/x?access_token=s3cr1t-a&client_secret=s3cr1t-b&Sig=s3cr1t-c&code=s3cr1t-d&api-key=s3cr1t-e&$select=id&note=plain-value"),
        )
        .header("x-api-key", "s3cr1t-f")
        .header("x-custom-auth", "s3cr1t-g")
        .header("user-agent", "plain-agent")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for format in ["", "?format=har"] {
        let text = s
            .admin(Method::GET, &format!("/requests{format}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("s3cr1t"), "{text}");
        for kept in [
            "plain-value",
            "plain-agent",
            "$select",
            "x-api-key",
            "redacted",
        ] {
            assert!(text.contains(kept), "{kept} is kept: {text}");
        }
    }
}

#[tokio::test]
async fn the_journal_filters_by_method_status_path_and_client_request_id() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("f", "F")).await;
    s.get(&format!("{INSTANCES}/missing")).await;
    s.req(Method::GET, "/agentRegistry/agentCollections")
        .header("client-request-id", "mine")
        .send()
        .await
        .unwrap();
    let count = |v: Value| v["value"].as_array().unwrap().len();
    assert_eq!(count(s.journal("?method=POST").await), 1);
    assert_eq!(count(s.journal("?status=404").await), 1);
    assert_eq!(
        count(
            s.journal("?pathPrefix=%2Fbeta%2FagentRegistry%2FagentInstances")
                .await
        ),
        2
    );
    let mine = s.journal("?clientRequestId=mine").await;
    assert_eq!(count(mine.clone()), 1);
    assert_eq!(mine["value"][0]["clientRequestId"], "mine");
    // `after` follows the journal: only what came after a sequence number.
    let all = s.journal("").await;
    let first = all["value"][0]["sequence"].as_u64().unwrap();
    let later = s.journal(&format!("?after={first}")).await;
    assert_eq!(count(later.clone()), count(all.clone()) - 1);
    assert_eq!(later["value"][0]["sequence"], all["value"][1]["sequence"]);
    let last = all["value"][count(all.clone()) - 1]["sequence"]
        .as_u64()
        .unwrap();
    assert_eq!(count(s.journal(&format!("?after={last}")).await), 0);
    for bad in ["status=abc", "after=-1", "after=x"] {
        let r = s
            .admin(Method::GET, &format!("/requests?{bad}"))
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 400, "BadRequest").await;
    }
}

#[tokio::test]
async fn the_journal_exports_as_an_http_archive() {
    let s = TestServer::start().await;
    s.get(&format!("{INSTANCES}?$top=1")).await;
    for path in ["/requests?format=har", "/requests.har"] {
        let har: Value = s
            .admin(Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let log = &har["log"];
        assert_eq!(log["version"], "1.2");
        assert!(log["creator"]["name"].is_string());
        let entry = &log["entries"][0];
        for field in [
            "startedDateTime",
            "time",
            "request",
            "response",
            "cache",
            "timings",
        ] {
            assert!(!entry[field].is_null(), "{field}: {entry}");
        }
        assert_eq!(entry["request"]["method"], "GET");
        assert!(
            entry["request"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/beta/agentRegistry/agentInstances?$top=1")
        );
        assert_eq!(entry["request"]["queryString"][0]["name"], "$top");
        assert_eq!(entry["response"]["status"], 200);
        assert!(entry["request"]["headers"].is_array());
        assert!(entry["response"]["content"]["mimeType"].is_string());
    }
}

// ---------------------------------------------------------------- metrics

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_store() {
    let s = TestServer::start().await;
    s.create_instance(instance_body("m", "M")).await;
    s.get(&format!("{INSTANCES}/m")).await;
    s.get(&format!("{INSTANCES}('m')")).await;
    let r = s.plain("/metrics").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for expected in [
        "agentry_http_requests_total{method=\"GET\",route=\"/beta/agentRegistry/agentInstances/{id}\",status=\"200\"} 2",
        "agentry_http_requests_total{method=\"POST\",route=\"/beta/agentRegistry/agentInstances\",status=\"201\"} 1",
        "# TYPE agentry_http_request_duration_seconds histogram",
        "agentry_http_request_duration_seconds_count{method=\"GET\",route=\"/beta/agentRegistry/agentInstances/{id}\"} 2",
        "agentry_db_idle_read_connections ",
        "agentry_db_queued_writes ",
        "agentry_db_write_batch_size_bucket{le=\"+Inf\"} ",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    assert!(!text.contains(TENANT_A), "no tenant data in metrics");
}

// ---------------------------------------------------------------- API descriptions

#[tokio::test]
async fn the_metadata_document_is_csdl_xml_describing_the_registry() {
    let s = TestServer::start().await;
    let r = s.plain("/beta/$metadata").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "no token needed, as in Graph");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let text = r.text().await.unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Edmx");
    let named = |tag: &str, name: &str| {
        doc.descendants()
            .any(|n| n.tag_name().name() == tag && n.attribute("Name") == Some(name))
    };
    for ty in [
        "agentInstance",
        "agentCardManifest",
        "agentCollection",
        "agentRegistry",
    ] {
        assert!(named("EntityType", ty), "{ty}");
    }
    assert!(named("ComplexType", "agentSkill"));
    assert!(named("NavigationProperty", "agentCardManifest"));
    assert!(named("EntityContainer", "GraphService"));
    assert!(named("Singleton", "agentRegistry"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint_the_server_routes() {
    let s = TestServer::start().await;
    let r = s.plain("/openapi.json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/_agentry/faults/{id}"));
    assert!(paths.contains_key("/beta/agentRegistry/agentInstances/{id}"));
    let admin = s.app_token_for(TENANT_A, &[ADMIN]);
    let user = s.token();
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{tenant}", TENANT_A).replace(['{', '}'], "");
            let mut request = s.client.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", s.origin),
            );
            let scopes = op["security"][0]["bearer"].as_array();
            request = match scopes {
                Some(s) if !s.is_empty() => request.bearer_auth(&admin),
                Some(_) => request.bearer_auth(&user),
                None => request,
            };
            let r = request.send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("Resource not found for the segment"),
                "{method} {path} is not routed: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

/// Numbers that a float would change, as JSON text.
const SENT_NUMBERS: &str =
    "[123456789012345678901234567890,0.1000000000000000000001,1E400,-0.0,18446744073709551616]";
/// [`SENT_NUMBERS`] as kept: every digit, the exponent written `e+`.
pub(crate) const EXACT_NUMBERS: &str =
    "[123456789012345678901234567890,0.1000000000000000000001,1e+400,-0.0,18446744073709551616]";

/// Creates a manifest whose open-typed `securitySchemes` hold [`SENT_NUMBERS`].
pub(crate) async fn create_exact_numbers(s: &TestServer) {
    let body = format!(
        r#"{{"id":"numbers","displayName":"Numbers","securitySchemes":{{"k":{{"type":"apiKey","values":{SENT_NUMBERS}}}}}}}"#
    );
    let r = s
        .req(Method::POST, "/agentRegistry/agentCardManifests")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    assert!(text.contains(EXACT_NUMBERS), "{text}");
}

#[tokio::test]
async fn numbers_in_open_types_are_kept_digit_for_digit_through_a_snapshot() {
    let s = TestServer::start().await;
    create_exact_numbers(&s).await;
    let path = "/agentRegistry/agentCardManifests/numbers";
    let text = s.get(path).await.text().await.unwrap();
    assert!(text.contains(EXACT_NUMBERS), "{text}");
    let snapshot = s
        .admin(Method::GET, "/snapshot")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(snapshot.contains(EXACT_NUMBERS), "{snapshot}");
    let r = s.admin(Method::POST, "/reset").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .admin(Method::PUT, "/snapshot")
        .header("content-type", "application/json")
        .body(snapshot)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let text = s.get(path).await.text().await.unwrap();
    assert!(text.contains(EXACT_NUMBERS), "{text}");
}

//! Copilot admin settings over real HTTP: the five examples of the PATCH
//! documentation, the undocumented cases, concurrency, tokens, the control
//! API and the seed file.

use crate::support::*;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

const PIN: &str = "microsoft.copilot.copilotchatpinning";
const IMAGES: &str = "microsoft.copilot.imagegeneration";
const WEB: &str = "microsoft.copilot.allowwebsearch";
const OPEN: &str = "microsoft.copilot.blockaccesstoopenfiles";
const DOC_POLICY: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const ADMIN: &str = "Agentry.Admin";

fn setting(id: &str) -> String {
    format!("/copilot/admin/policySettings/{id}")
}

impl TestServer {
    fn control_url(&self, path: &str) -> String {
        format!("{}/_agentry/copilot/policies{path}", self.origin)
    }

    /// A control API request in tenant A with an `Agentry.Admin` app token.
    fn control(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.control_url(path))
            .bearer_auth(self.app_token_for(TENANT_A, &[ADMIN]))
    }

    async fn create_policy(&self, body: Value) -> Value {
        let r = self
            .control(Method::POST, "")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "create policy");
        r.json().await.unwrap()
    }

    async fn policies(&self) -> Vec<Value> {
        let r = self.control(Method::GET, "").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["value"].as_array().unwrap().clone()
    }

    async fn patch_setting(&self, id: &str, body: Value) -> Response {
        self.req(Method::PATCH, &setting(id))
            .header("client-request-id", "00000000-0000-0000-0000-000000000004")
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn tenant_policy(id: &str, priority: u32, settings: Value) -> Value {
    json!({"id": id, "displayName": format!("Tenant {id}"), "service": "cloudPolicyService",
           "scope": "tenant", "priority": priority, "settings": settings})
}

fn group_policy(id: &str, settings: Value) -> Value {
    json!({"id": id, "displayName": format!("Group {id}"), "service": "cloudPolicyService",
           "scope": "group", "targetGroupIds": ["6a1f0b52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"],
           "settings": settings})
}

/// The body without `@odata.*` annotations, as the documentation shows it.
fn documented(body: &Value) -> Value {
    Value::Object(
        body.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.starts_with("@odata."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

async fn ok_json(r: Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The documented error, exactly: status, code, message, inner code, and
/// an `innerError` with nothing but the code and the diagnostics.
async fn assert_documented_error(r: Response, status: u16, code: &str, inner: &str, message: &str) {
    let body = assert_graph_error(r, status, code).await;
    let error = &body["error"];
    assert_eq!(error["message"], message, "{body}");
    assert_eq!(error["innerError"]["code"], inner, "{body}");
    let mut keys: Vec<&String> = error["innerError"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["client-request-id", "code", "date", "request-id"]);
    let mut keys: Vec<&String> = error.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "innerError", "message"]);
}

// ---------------------------------------------------------------- the documented examples

#[tokio::test]
async fn example_1_a_patch_with_a_policy_id_writes_into_that_policy() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy("first", 0, json!({PIN: "1"})))
        .await;
    s.create_policy(tenant_policy(DOC_POLICY, 5, json!({PIN: "1"})))
        .await;

    let r = s
        .patch_setting(PIN, json!({"value": "0", "policyId": DOC_POLICY}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    let expected = json!({"id": PIN, "value": "0", "policyId": DOC_POLICY});
    assert_eq!(documented(&body), expected);
    assert_eq!(
        serde_json::to_string(&documented(&body)).unwrap(),
        serde_json::to_string(&expected).unwrap(),
        "properties in the documented order"
    );
    assert_eq!(body["@odata.type"], "#microsoft.graph.copilotPolicySetting");
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/beta/$metadata#copilot/admin/policySettings/$entity",
            s.origin
        )
    );
    let policies = s.policies().await;
    let by_id = |id: &str| policies.iter().find(|p| p["id"] == id).unwrap().clone();
    assert_eq!(by_id(DOC_POLICY)["settings"], json!({PIN: "0"}));
    assert_eq!(by_id("first")["settings"], json!({PIN: "1"}), "untouched");
}

#[tokio::test]
async fn example_2_a_patch_without_a_policy_id_resolves_the_first_tenant_policy() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy("later", 5, json!({}))).await;
    s.create_policy(tenant_policy(DOC_POLICY, 1, json!({})))
        .await;

    let body = ok_json(s.patch_setting(PIN, json!({"value": "1"})).await).await;
    assert_eq!(
        documented(&body),
        json!({"id": PIN, "value": "1", "policyId": DOC_POLICY})
    );
    let read = ok_json(s.get(&setting(PIN)).await).await;
    assert_eq!(read["value"], "1");
    assert_eq!(read["policyId"], DOC_POLICY);
}

#[tokio::test]
async fn example_3_a_setting_configured_in_a_group_policy_is_refused_with_422() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})))
        .await;
    s.create_policy(group_policy("designers", json!({PIN: "1"})))
        .await;

    let message = "The setting 'microsoft.copilot.copilotchatpinning' is scoped to a group-level policy, which is not supported by this endpoint. Only tenant-level policy settings are supported.";
    let r = s.patch_setting(PIN, json!({"value": "0"})).await;
    assert_eq!(
        r.headers()["client-request-id"],
        "00000000-0000-0000-0000-000000000004"
    );
    assert_documented_error(
        r,
        422,
        "unprocessableEntity",
        "groupScopedSettingNotSupported",
        message,
    )
    .await;
    let r = s.get(&setting(PIN)).await;
    assert_documented_error(
        r,
        422,
        "unprocessableEntity",
        "groupScopedSettingNotSupported",
        message,
    )
    .await;
    let tenant = s
        .policies()
        .await
        .into_iter()
        .find(|p| p["id"] == DOC_POLICY);
    assert_eq!(tenant.unwrap()["settings"][PIN], "1", "nothing written");
}

#[tokio::test]
async fn example_4_an_unsupported_setting_is_404_unsupported_setting() {
    let s = TestServer::start().await;
    let message = "The setting 'microsoft.copilot.pinning' is not supported. Only supported Copilot settings can be accessed through this endpoint.";
    let r = s
        .patch_setting("microsoft.copilot.pinning", json!({"value": "1"}))
        .await;
    assert_documented_error(r, 404, "notFound", "unsupportedSetting", message).await;
    let r = s.get(&setting("microsoft.copilot.pinning")).await;
    assert_documented_error(r, 404, "notFound", "unsupportedSetting", message).await;
    // Identifiers are case-sensitive.
    let r = s
        .get(&setting("Microsoft.Copilot.CopilotChatPinning"))
        .await;
    assert_graph_error(r, 404, "notFound").await;
}

#[tokio::test]
async fn example_5_too_many_group_policies_is_502_bad_gateway() {
    let s = TestServer::start_configured(|c| c.copilot.max_group_policies = 2).await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})))
        .await;
    s.create_policy(group_policy("g1", json!({IMAGES: "1"})))
        .await;
    s.create_policy(group_policy("g2", json!({}))).await;
    let at_limit = s.patch_setting(PIN, json!({"value": "0"})).await;
    assert_eq!(at_limit.status(), StatusCode::OK, "at the limit: allowed");

    s.create_policy(group_policy("g3", json!({}))).await;
    let message = "The operation could not be completed because the number of group-level policies exceeds the supported limit.";
    let r = s.patch_setting(PIN, json!({"value": "1"})).await;
    assert_documented_error(r, 502, "badGateway", "tooManyGroupPolicies", message).await;
    let r = s.get(&setting(PIN)).await;
    assert_documented_error(r, 502, "badGateway", "tooManyGroupPolicies", message).await;
}

// ---------------------------------------------------------------- GET

#[tokio::test]
async fn without_a_tenant_policy_a_setting_reads_as_null_value_and_null_policy() {
    let s = TestServer::start().await;
    s.create_policy(
        json!({"id": "u", "displayName": "User", "service": "cloudPolicyService",
                           "scope": "user", "settings": {WEB: "1"}}),
    )
    .await;
    let body = ok_json(s.get(&setting(WEB)).await).await;
    assert_eq!(
        documented(&body),
        json!({"id": WEB, "value": null, "policyId": null})
    );
}

#[tokio::test]
async fn a_tenant_policy_without_the_setting_reads_as_null_value_with_its_id() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})))
        .await;
    let body = ok_json(s.get(&setting(IMAGES)).await).await;
    assert_eq!(
        documented(&body),
        json!({"id": IMAGES, "value": null, "policyId": DOC_POLICY})
    );
}

#[tokio::test]
async fn a_setting_of_another_service_is_not_read_from_a_cloud_policy() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({})))
        .await;
    let body = ok_json(s.get(&setting(OPEN)).await).await;
    assert_eq!(body["policyId"], Value::Null, "{OPEN} belongs to Intune");
}

#[tokio::test]
async fn select_returns_only_the_chosen_properties_with_a_projected_context() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})))
        .await;
    let body = ok_json(s.get(&format!("{}?$select=value", setting(PIN))).await).await;
    assert_eq!(documented(&body), json!({"value": "1"}));
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/beta/$metadata#copilot/admin/policySettings(value)/$entity",
            s.origin
        )
    );
    let r = s.get(&format!("{}?$select=colour", setting(PIN))).await;
    assert_graph_error(r, 400, "BadRequest").await;
    let r = s.get(&format!("{}?$top=1", setting(PIN))).await;
    assert_graph_error(r, 400, "BadRequest").await;
}

#[tokio::test]
async fn the_odata_key_syntax_addresses_the_same_setting() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({WEB: "2"})))
        .await;
    let body = ok_json(
        s.get(&format!("/copilot/admin/policySettings('{WEB}')"))
            .await,
    )
    .await;
    assert_eq!(body["value"], "2");
}

// ---------------------------------------------------------------- PATCH, undocumented cases

#[tokio::test]
async fn a_patch_body_needs_a_string_value() {
    let s = TestServer::start().await;
    let cases = [
        (json!({}), "missingRequiredProperty"),
        (json!({"policyId": DOC_POLICY}), "missingRequiredProperty"),
        (json!({"value": 1}), "invalidPropertyValue"),
        (json!({"value": null}), "invalidPropertyValue"),
        (json!({"value": true}), "invalidPropertyValue"),
        (json!({"value": "1", "policyId": 5}), "invalidPropertyValue"),
        (json!({"value": "1", "id": IMAGES}), "readOnlyProperty"),
        (json!({"value": "1", "colour": "red"}), "unknownProperty"),
        (json!(["value"]), "invalidRequestBody"),
    ];
    for (body, inner) in cases {
        let r = s.patch_setting(PIN, body.clone()).await;
        let error = assert_graph_error(r, 400, "badRequest").await;
        assert_eq!(error["error"]["innerError"]["code"], inner, "{body}");
    }
    let r = s
        .req(Method::PATCH, &setting(PIN))
        .header("content-type", "application/json")
        .body("{\"value\":")
        .send()
        .await
        .unwrap();
    let error = assert_graph_error(r, 400, "BadRequest").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unable to read JSON request payload")
    );
    assert!(s.policies().await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn an_unsupported_setting_is_reported_before_a_bad_body() {
    let s = TestServer::start().await;
    let r = s
        .req(Method::PATCH, &setting("microsoft.copilot.pinning"))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "notFound").await;
}

#[tokio::test]
async fn an_explicit_policy_id_must_name_a_tenant_policy_of_the_owning_service() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({})))
        .await;
    s.create_policy(group_policy("g", json!({}))).await;
    s.create_policy(
        json!({"id": "u", "displayName": "U", "service": "cloudPolicyService", "scope": "user"}),
    )
    .await;
    s.create_policy(json!({"id": "i", "displayName": "I", "service": "intune", "scope": "tenant"}))
        .await;
    let cases = [
        ("missing", 404, "notFound", "policyNotFound"),
        (
            "g",
            422,
            "unprocessableEntity",
            "groupScopedSettingNotSupported",
        ),
        (
            "u",
            422,
            "unprocessableEntity",
            "userScopedPolicyNotSupported",
        ),
        ("i", 422, "unprocessableEntity", "policyServiceMismatch"),
    ];
    for (pid, status, code, inner) in cases {
        let r = s
            .patch_setting(PIN, json!({"value": "1", "policyId": pid}))
            .await;
        let body = assert_graph_error(r, status, code).await;
        assert_eq!(body["error"]["innerError"]["code"], inner, "{pid}");
    }
    let r = s
        .patch_setting(OPEN, json!({"value": "1", "policyId": "i"}))
        .await;
    assert_eq!(ok_json(r).await["policyId"], "i");
}

#[tokio::test]
async fn a_patch_without_any_tenant_policy_creates_one_for_the_owning_service() {
    let s = TestServer::start().await;
    let body = ok_json(s.patch_setting(OPEN, json!({"value": "1"})).await).await;
    let created = body["policyId"].as_str().unwrap().to_owned();
    let policies = s.policies().await;
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["id"], created.as_str());
    assert_eq!(policies[0]["scope"], "tenant");
    assert_eq!(policies[0]["service"], "intune");
    assert_eq!(policies[0]["settings"], json!({OPEN: "1"}));

    let again = ok_json(s.patch_setting(OPEN, json!({"value": "0"})).await).await;
    assert_eq!(
        again["policyId"],
        created.as_str(),
        "reused, not created again"
    );
    assert_eq!(s.policies().await.len(), 1);
}

#[tokio::test]
async fn any_string_value_is_accepted_unless_strict_mode_is_on() {
    let s = TestServer::start().await;
    let body = ok_json(s.patch_setting(PIN, json!({"value": "<xml/>"})).await).await;
    assert_eq!(body["value"], "<xml/>");

    let strict = TestServer::start_configured(|c| c.copilot.strict_values = true).await;
    let r = strict.patch_setting(PIN, json!({"value": "2"})).await;
    let error = assert_graph_error(r, 400, "badRequest").await;
    assert_eq!(error["error"]["innerError"]["code"], "invalidSettingValue");
    let body = ok_json(strict.patch_setting(WEB, json!({"value": "2"})).await).await;
    assert_eq!(body["value"], "2");
}

#[tokio::test]
async fn two_concurrent_patches_of_one_setting_end_with_one_of_the_values_and_nothing_else_changed()
{
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(
        DOC_POLICY,
        0,
        json!({PIN: "1", IMAGES: "1", WEB: "2"}),
    ))
    .await;
    s.create_policy(tenant_policy("other", 9, json!({PIN: "1"})))
        .await;
    for round in 0..5 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let (ra, rb) = tokio::join!(
            s.patch_setting(PIN, json!({"value": a})),
            s.patch_setting(PIN, json!({"value": b}))
        );
        assert_eq!(ra.status(), StatusCode::OK);
        assert_eq!(rb.status(), StatusCode::OK);
        let policies = s.policies().await;
        assert_eq!(policies.len(), 2);
        let first = policies.iter().find(|p| p["id"] == DOC_POLICY).unwrap();
        let value = first["settings"][PIN].as_str().unwrap();
        assert!(value == a || value == b, "{value}");
        assert_eq!(first["settings"][IMAGES], "1");
        assert_eq!(first["settings"][WEB], "2");
        let other = policies.iter().find(|p| p["id"] == "other").unwrap();
        assert_eq!(other["settings"], json!({PIN: "1"}));
        let read = ok_json(s.get(&setting(PIN)).await).await;
        assert_eq!(read["value"], value);
    }
}

#[tokio::test]
async fn concurrent_patches_in_an_empty_tenant_create_a_single_policy() {
    let s = TestServer::start().await;
    let (ra, rb) = tokio::join!(
        s.patch_setting(PIN, json!({"value": "0"})),
        s.patch_setting(PIN, json!({"value": "1"}))
    );
    let (a, b) = (ok_json(ra).await, ok_json(rb).await);
    assert_eq!(a["policyId"], b["policyId"]);
    let policies = s.policies().await;
    assert_eq!(policies.len(), 1);
    let value = policies[0]["settings"][PIN].as_str().unwrap();
    assert!(value == "0" || value == "1");
}

// ---------------------------------------------------------------- undocumented verbs and paths

#[tokio::test]
async fn undocumented_verbs_answer_405() {
    let s = TestServer::start().await;
    let cases = [
        (Method::GET, "/copilot/admin/policySettings".to_owned()),
        (Method::POST, "/copilot/admin/policySettings".to_owned()),
        (Method::DELETE, setting(PIN)),
        (Method::PUT, setting(PIN)),
        (Method::POST, setting(PIN)),
        (Method::GET, "/copilot".to_owned()),
        (Method::GET, "/copilot/admin".to_owned()),
        (Method::GET, "/copilot/admin/settings".to_owned()),
        (Method::GET, "/copilot/settings/people".to_owned()),
        (
            Method::DELETE,
            "/copilot/admin/settings/limitedMode".to_owned(),
        ),
        (
            Method::PUT,
            "/copilot/settings/people/enhancedPersonalization".to_owned(),
        ),
    ];
    for (method, path) in cases {
        let r = s.req(method.clone(), &path).send().await.unwrap();
        let allow = r.headers().get("allow").cloned();
        let body = assert_graph_error(r, 405, "methodNotAllowed").await;
        assert!(body["error"]["message"].is_string(), "{method} {path}");
        let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
        if path.contains("policySettings/") {
            assert_eq!(allow, "GET,HEAD,PATCH", "{method} {path}");
        } else if !path.contains("limitedMode") && !path.contains("enhancedPersonalization") {
            assert_eq!(allow, "", "a container allows no method: {method} {path}");
        }
    }
    let r = s.delete(&setting(PIN)).await;
    assert_eq!(r.headers()["allow"], "GET,HEAD,PATCH");
    let r = s
        .req(Method::DELETE, "/copilot/admin/settings/limitedMode")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET,HEAD,PATCH");
}

#[tokio::test]
async fn unknown_segments_answer_400_naming_the_segment() {
    let s = TestServer::start().await;
    let cases = [
        ("/beta/copilot/admin/foo", "foo"),
        ("/beta/copilot/admin/settings/fullMode", "fullMode"),
        ("/beta/copilot/settings/people/pronouns", "pronouns"),
        (
            "/v1.0/copilot/admin/policySettings/microsoft.copilot.copilotchatpinning",
            "policySettings",
        ),
    ];
    for (path, segment) in cases {
        let r = s
            .client
            .get(format!("{}{path}", s.origin))
            .bearer_auth(s.token())
            .send()
            .await
            .unwrap();
        let body = assert_graph_error(r, 400, "BadRequest").await;
        assert_eq!(
            body["error"]["message"],
            format!("Resource not found for the segment '{segment}'."),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn application_tokens_are_refused_by_the_delegated_only_apis() {
    let s = TestServer::start().await;
    let app = s.app_token_for(TENANT_A, &["CopilotPolicySettings.ReadWrite.All"]);
    let cases = [
        (Method::GET, setting(PIN)),
        (Method::PATCH, setting(PIN)),
        (
            Method::GET,
            "/copilot/admin/settings/limitedMode".to_owned(),
        ),
        (
            Method::PATCH,
            "/copilot/admin/settings/limitedMode".to_owned(),
        ),
    ];
    for (method, path) in cases {
        let r = s
            .client
            .request(method, s.url(&path))
            .bearer_auth(&app)
            .json(&json!({"value": "1"}))
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    }
    assert!(s.policies().await.is_empty());
    let people = s.app_token_for(TENANT_A, &["PeopleSettings.Read.All"]);
    let r = s
        .client
        .get(s.url("/copilot/settings/people/enhancedPersonalization"))
        .bearer_auth(&people)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "application permissions exist here"
    );
}

#[tokio::test]
async fn tenants_do_not_share_policies() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})))
        .await;
    let r = s
        .req_as(TENANT_B, Method::GET, &setting(PIN))
        .send()
        .await
        .unwrap();
    let body = ok_json(r).await;
    assert_eq!(body["policyId"], Value::Null);
    let r = s
        .req_as(TENANT_B, Method::PATCH, &setting(PIN))
        .json(&json!({"value": "0", "policyId": DOC_POLICY}))
        .send()
        .await
        .unwrap();
    assert_graph_error(r, 404, "notFound").await;
}

// ---------------------------------------------------------------- limitedMode, enhancedPersonalization

#[tokio::test]
async fn limited_mode_starts_off_and_keeps_what_a_patch_sets() {
    let s = TestServer::start().await;
    let path = "/copilot/admin/settings/limitedMode";
    let body = ok_json(s.get(path).await).await;
    assert_eq!(
        body,
        json!({
            "@odata.context": format!("{}/beta/$metadata#copilot/admin/settings/limitedMode/$entity", s.origin),
            "@odata.type": "#microsoft.graph.copilotAdminLimitedMode",
            "isEnabledForGroup": false,
            "groupId": null
        })
    );
    let r = s
        .patch(
            path,
            json!({"@odata.type": "#microsoft.graph.copilotAdminLimitedMode",
                   "isEnabledForGroup": true, "groupId": "g1"}),
        )
        .await;
    let body = ok_json(r).await;
    assert_eq!(body["isEnabledForGroup"], true);
    assert_eq!(body["groupId"], "g1");
    let body = ok_json(s.patch(path, json!({"isEnabledForGroup": false})).await).await;
    assert_eq!(body["groupId"], "g1", "a PATCH changes only what it sends");

    let v1 = s
        .client
        .get(format!("{}/v1.0{path}", s.origin))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    let body = ok_json(v1).await;
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#copilot/admin/settings/limitedMode/$entity",
            s.origin
        )
    );
    assert_eq!(body["isEnabledForGroup"], false);
    // One setting behind both versions: a v1.0 PATCH is what beta reads.
    let v1 = s
        .client
        .patch(format!("{}/v1.0{path}", s.origin))
        .bearer_auth(s.token())
        .json(&json!({"isEnabledForGroup": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(v1).await["isEnabledForGroup"], true);
    assert_eq!(ok_json(s.get(path).await).await["isEnabledForGroup"], true);

    for bad in [
        json!({"isEnabledForGroup": "yes"}),
        json!({"groupId": 7}),
        json!({"mode": "on"}),
    ] {
        assert_graph_error(s.patch(path, bad).await, 400, "badRequest").await;
    }
}

#[tokio::test]
async fn enhanced_personalization_starts_on_and_a_patch_needs_is_enabled_in_organization() {
    let s = TestServer::start().await;
    let path = "/copilot/settings/people/enhancedPersonalization";
    let body = ok_json(s.get(path).await).await;
    assert_eq!(
        documented(&body),
        json!({"isEnabledInOrganization": true, "disabledForGroup": null})
    );
    let r = s.patch(path, json!({"disabledForGroup": "g"})).await;
    let error = assert_graph_error(r, 400, "badRequest").await;
    assert_eq!(
        error["error"]["innerError"]["code"],
        "missingRequiredProperty"
    );
    let body = ok_json(
        s.patch(
            path,
            json!({"isEnabledInOrganization": false, "disabledForGroup": "g"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        documented(&body),
        json!({"isEnabledInOrganization": false, "disabledForGroup": "g"})
    );
    let read = ok_json(
        s.get(&format!("{path}?$select=isEnabledInOrganization"))
            .await,
    )
    .await;
    assert_eq!(documented(&read), json!({"isEnabledInOrganization": false}));
}

// ---------------------------------------------------------------- control API

#[tokio::test]
async fn the_control_api_needs_the_admin_role_or_scope() {
    use agentry::auth::permissions::AI_ADMINISTRATOR;
    let s = TestServer::start().await;
    let r = s.client.get(s.control_url("")).send().await.unwrap();
    assert_graph_error(r, 401, "InvalidAuthenticationToken").await;
    // A delegated token with the scope needs the Global Administrator role.
    let r = s
        .client
        .get(s.control_url(""))
        .bearer_auth(s.user_token(&["Agentry.Admin"], &[AI_ADMINISTRATOR]))
        .send()
        .await
        .unwrap();
    let body = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Global Administrator"),
        "{body}"
    );
    let r = s
        .client
        .post(s.control_url(""))
        .bearer_auth(s.app_token_for(TENANT_A, &["AgentInstance.ReadWrite.All"]))
        .json(&tenant_policy("p", 0, json!({})))
        .send()
        .await
        .unwrap();
    let body = assert_graph_error(r, 403, "Authorization_RequestDenied").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Agentry.Admin")
    );
    assert!(s.policies().await.is_empty());
}

#[tokio::test]
async fn the_control_api_creates_reads_updates_and_deletes_policies() {
    let s = TestServer::start().await;
    let r = s
        .control(Method::POST, "")
        .json(
            &json!({"id": "p 1", "displayName": "Tenant", "service": "cloudPolicyService",
                      "scope": "tenant", "createdDateTime": "2026-01-01T00:00:00Z",
                      "settings": {PIN: "1", IMAGES: "0"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["location"],
        format!("{}/_agentry/copilot/policies/p%201", s.origin).as_str()
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["createdDateTime"], "2026-01-01T00:00:00.0000000Z");
    assert_eq!(created["priority"], 0);
    assert_eq!(created["targetGroupIds"], json!([]));

    let got = ok_json(s.control(Method::GET, "/p%201").send().await.unwrap()).await;
    assert_eq!(got, created);

    let r = s
        .control(Method::PATCH, "/p%201")
        .json(&json!({"priority": 4, "settings": {IMAGES: null, WEB: "1"}}))
        .send()
        .await
        .unwrap();
    let updated = ok_json(r).await;
    assert_eq!(updated["priority"], 4);
    assert_eq!(updated["settings"], json!({WEB: "1", PIN: "1"}));
    assert_eq!(updated["createdDateTime"], created["createdDateTime"]);

    let r = s
        .control(Method::POST, "")
        .json(&tenant_policy("p 1", 0, json!({})))
        .send()
        .await
        .unwrap();
    let body = assert_graph_error(r, 409, "conflict").await;
    assert_eq!(body["error"]["innerError"]["code"], "policyAlreadyExists");

    let r = s.control(Method::DELETE, "/p%201").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let r = s
            .control(method, "/p%201")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let body = assert_graph_error(r, 404, "notFound").await;
        assert_eq!(body["error"]["innerError"]["code"], "policyNotFound");
    }
}

#[tokio::test]
async fn the_control_api_refuses_invalid_policies() {
    let s = TestServer::start().await;
    s.create_policy(tenant_policy("t", 0, json!({}))).await;
    let creates = [
        json!({"displayName": "No service", "scope": "tenant"}),
        json!({"displayName": "G", "service": "intune", "scope": "group"}),
        json!({"displayName": "T", "service": "intune", "scope": "tenant", "settings": {PIN: "1"}}),
        json!({"displayName": "T", "service": "cps", "scope": "tenant"}),
        json!({"displayName": "T", "service": "intune", "scope": "tenant", "priority": -1}),
        json!({"displayName": "T", "service": "intune", "scope": "tenant", "settings": {"microsoft.copilot.pinning": "1"}}),
    ];
    for body in creates {
        let r = s
            .control(Method::POST, "")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_graph_error(r, 400, "badRequest").await;
    }
    let r = s
        .control(Method::PATCH, "/t")
        .json(&json!({"scope": "group"}))
        .send()
        .await
        .unwrap();
    let body = assert_graph_error(r, 400, "badRequest").await;
    assert_eq!(body["error"]["innerError"]["code"], "invalidPolicy");
    let policies = s.policies().await;
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0]["scope"], "tenant",
        "the refused update left it alone"
    );
}

// ---------------------------------------------------------------- seed file

#[tokio::test]
async fn a_seed_file_loads_policies_settings_and_registry_objects_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.json");
    let seed = json!({"tenants": {
        TENANT_A: {
            "agentCardManifests": [{"id": "card", "displayName": "Card"}],
            "agentInstances": [{"id": "agent", "displayName": "Agent", "ownerIds": [USER],
                                "agentCardManifest@odata.bind": "agentCardManifests('card')"}],
            "agentCollections": [{"id": "team", "displayName": "Team", "ownerIds": [USER]}],
            "members": {"team": ["agent"], GLOBAL: ["agent"]},
            "copilot": {
                "policies": [tenant_policy(DOC_POLICY, 0, json!({PIN: "1"})),
                             group_policy("g", json!({IMAGES: "0"}))],
                "limitedMode": {"isEnabledForGroup": true, "groupId": "g1"},
                "enhancedPersonalization": {"isEnabledInOrganization": false}
            }
        },
        TENANT_B: {"copilot": {"policies": [tenant_policy("b", 0, json!({PIN: "0"}))]}}
    }});
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let data = dir.path().join("data");
    let config = || {
        let mut c = agentry::config::ServerConfig::with_data_dir(&data);
        c.seed = Some(seed_path.clone());
        c
    };

    let s = TestServer::start_with(config()).await;
    let body = ok_json(s.get(&setting(PIN)).await).await;
    assert_eq!(
        documented(&body),
        json!({"id": PIN, "value": "1", "policyId": DOC_POLICY})
    );
    assert_graph_error(s.get(&setting(IMAGES)).await, 422, "unprocessableEntity").await;
    let limited = ok_json(s.get("/copilot/admin/settings/limitedMode").await).await;
    assert_eq!(limited["groupId"], "g1");
    let people = ok_json(
        s.get("/copilot/settings/people/enhancedPersonalization")
            .await,
    )
    .await;
    assert_eq!(people["isEnabledInOrganization"], false);
    let manifest = s
        .get_json("/agentRegistry/agentInstances/agent/agentCardManifest")
        .await;
    assert_eq!(manifest["id"], "card");
    for collection in ["team", GLOBAL] {
        let members = s
            .get_json(&format!(
                "/agentRegistry/agentCollections/{collection}/members"
            ))
            .await;
        assert_eq!(members["value"][0]["id"], "agent", "{collection}");
    }
    let b = s
        .req_as(TENANT_B, Method::GET, &setting(PIN))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(b).await["policyId"], "b");
    // A change made after start survives a restart with the same seed.
    ok_json(s.patch_setting(PIN, json!({"value": "0"})).await).await;
    s.stop().await;

    let s = TestServer::start_with(config()).await;
    let body = ok_json(s.get(&setting(PIN)).await).await;
    assert_eq!(
        body["value"], "0",
        "existing objects are kept, not reloaded"
    );
    assert_eq!(s.policies().await.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn an_invalid_seed_file_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.json");
    let cases = [
        (
            json!({"tenants": {"t": {"agentInstances": [{"displayName": "x", "ownerIds": ["o"]}]}}}),
            "an 'id' is required",
        ),
        (
            json!({"tenants": {"t": {"copilot": {"policies": [{"id": "p", "displayName": "x", "service": "intune", "scope": "tenant", "settings": {PIN: "1"}}]}}}}),
            "copilot.policies[0]",
        ),
        (
            json!({"tenants": {"t": {"members": {"nope": ["x"]}}}}),
            "members['nope']",
        ),
        (json!({"tenant": {}}), "not valid"),
    ];
    for (seed, reason) in cases {
        std::fs::write(&seed_path, seed.to_string()).unwrap();
        let mut config = agentry::config::ServerConfig::with_data_dir(dir.path().join("data"));
        config.listen = "127.0.0.1:0".into();
        config.database_url = crate::support::database_url_for(&config.data_dir);
        config.seed = Some(seed_path.clone());
        let err = match agentry::app::Application::build(&config).await {
            Ok(_) => panic!("{seed} should not start"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(reason), "{err} (wanted {reason})");
    }
}

#[tokio::test]
async fn the_example_seed_file_loads() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.json");
    let s = TestServer::start_configured(|c| c.seed = Some(example)).await;
    let tenant = "c0ffee00-0000-4000-8000-000000000001";
    let r = s
        .req_as(tenant, Method::GET, &setting(PIN))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(r).await["policyId"], DOC_POLICY);
}

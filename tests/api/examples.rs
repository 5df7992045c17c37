//! The request and response examples of the reference pages, listed in
//! `tests/fidelity/examples.json`, replayed against a real server.
//!
//! Each example runs on a fresh server: its `setup` (a name matched in
//! [`setup`]) creates what the example assumes exists and supplies the
//! values of the placeholders in its path (`{agentInstanceId}`), then the
//! documented request is sent with a token allowed to make it. The answer
//! must have the documented status and, where a body is documented, the same
//! shape: every member of the documented body is present with the same JSON
//! type, at every depth, and every element of a documented array is matched
//! by an element of the answer's (see [`same_shape`] for `@odata.type`); a
//! documented `@odata.context` must come back exactly, on this server's
//! origin; an error must carry the documented `error.code`. Besides the
//! fields every example has, a response may list `exact` (JSON pointers whose
//! documented value must come back unchanged: identifiers the setup
//! controls) and `emptyBody` (the page documents a success with no body).

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// An entry of `tests/fidelity/examples.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    /// The page (relative to the shared folder) and the example's place in it.
    source: String,
    title: String,
    setup: Option<String>,
    request: Request,
    response: Expected,
    reproduced: bool,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    method: String,
    /// From the version on (`/beta/...`), placeholders in braces.
    path: String,
    body: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    status: u16,
    body: Option<Value>,
    /// `error.code`, for the error examples.
    code: Option<String>,
    #[serde(default)]
    exact: Vec<String>,
    #[serde(default, rename = "emptyBody")]
    empty_body: bool,
}

fn examples() -> Vec<Example> {
    serde_json::from_str(include_str!("../fidelity/examples.json"))
        .expect("tests/fidelity/examples.json lists examples")
}

impl Example {
    fn name(&self) -> String {
        format!("{} ({})", self.source, self.title)
    }
}

// ---------------------------------------------------------------- the checks without a server

#[test]
fn an_example_marked_not_reproduced_says_why() {
    let silent: Vec<String> = examples()
        .iter()
        .filter(|e| !e.reproduced && e.note.as_deref().is_none_or(|n| n.trim().is_empty()))
        .map(Example::name)
        .collect();
    assert!(
        silent.is_empty(),
        "examples marked \"reproduced\": false need a note saying why:\n{}",
        silent.join("\n")
    );
}

#[test]
fn every_example_names_its_page_a_known_setup_and_a_documented_response() {
    for e in examples() {
        let name = e.name();
        assert!(
            e.source.starts_with("spec/") || e.source.starts_with("seeds/"),
            "{name}: the source is a page of the shared folder, named relative to it"
        );
        assert!(!e.title.trim().is_empty(), "{name}: a title");
        // The fidelity document shows these in a Markdown table.
        for text in [&e.source, &e.title, &e.request.path]
            .into_iter()
            .chain(e.note.as_ref())
        {
            assert!(!text.contains(['|', '\n']), "{name}: no '|' or line break");
        }
        if let Some(setup) = &e.setup {
            assert!(SETUPS.contains(&setup.as_str()), "{name}: setup '{setup}'");
        }
        assert!(
            Method::from_bytes(e.request.method.as_bytes()).is_ok(),
            "{name}: method"
        );
        assert!(
            e.request.path.starts_with("/beta/") || e.request.path.starts_with("/v1.0/"),
            "{name}: the path starts at the version"
        );
        assert!(
            StatusCode::from_u16(e.response.status).is_ok(),
            "{name}: status"
        );
        let error = e.response.status >= 400;
        assert_eq!(
            e.response.code.is_some(),
            error,
            "{name}: an error example, and only one, documents error.code"
        );
        if let (Some(code), Some(body)) = (&e.response.code, &e.response.body) {
            assert_eq!(body["error"]["code"], code.as_str(), "{name}");
        }
        for pointer in &e.response.exact {
            let documented = e.response.body.as_ref().and_then(|b| b.pointer(pointer));
            assert!(documented.is_some(), "{name}: {pointer} is in the body");
        }
        assert!(
            !(e.response.empty_body && e.response.body.is_some()),
            "{name}: a body or none"
        );
    }
}

// ---------------------------------------------------------------- the replay

#[tokio::test]
async fn every_documented_example_is_reproduced() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for example in examples().into_iter().filter(|e| e.reproduced) {
        // Shown if a server-side check (the OpenAPI one) fails on the way.
        eprintln!("replaying {}", example.name());
        let s = TestServer::start().await;
        if let Err(why) = replay(&s, &example).await {
            failures.push(format!("{}:\n    {why}", example.name()));
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no example is marked reproduced");
    assert!(
        failures.is_empty(),
        "{} of {replayed} documented examples are not reproduced:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn replay(s: &TestServer, e: &Example) -> Result<(), String> {
    let values = match &e.setup {
        Some(name) => setup(s, name)
            .await
            .map_err(|why| format!("setup '{name}': {why}"))?,
        None => Vec::new(),
    };
    let mut path = e.request.path.clone();
    for (placeholder, value) in &values {
        path = path.replace(&format!("{{{placeholder}}}"), &key(value));
    }
    if path.contains('{') {
        return Err(format!(
            "a placeholder of {path} has no value from the setup"
        ));
    }
    let method = Method::from_bytes(e.request.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = s
        .client
        .request(method, format!("{}{path}", s.origin))
        .bearer_auth(s.token());
    if let Some(body) = &e.request.body {
        request = request.json(body);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let text = answer.text().await.map_err(|e| e.to_string())?;
    let expected = &e.response;
    if status != expected.status {
        return Err(format!(
            "{} {path}: status {status}, documented {}; body: {}",
            e.request.method,
            expected.status,
            excerpt(&text)
        ));
    }
    if (status == 204 || expected.empty_body) && !text.is_empty() {
        return Err(format!(
            "documented without a body, answered {}",
            excerpt(&text)
        ));
    }
    if expected.body.is_none() && expected.code.is_none() {
        return Ok(());
    }
    let got: Value = serde_json::from_str(&text)
        .map_err(|why| format!("the body is not JSON ({why}): {}", excerpt(&text)))?;
    let mut problems = Vec::new();
    if let Some(code) = &expected.code
        && got["error"]["code"] != code.as_str()
    {
        problems.push(format!(
            "error.code is {}, documented {code}",
            got["error"]["code"]
        ));
    }
    if let Some(documented) = &expected.body {
        same_shape(documented, &got, "", true, &mut problems);
        if let Some(context) = documented["@odata.context"].as_str() {
            // The documented origin is Graph's; the answer's is this server's.
            let want = context.replacen(GRAPH, &s.origin, 1);
            if got["@odata.context"] != want.as_str() {
                problems.push(format!(
                    "@odata.context is {}, documented {want}",
                    got["@odata.context"]
                ));
            }
        }
        for pointer in &expected.exact {
            let want = documented.pointer(pointer);
            let have = got.pointer(pointer);
            if want != have {
                problems.push(format!(
                    "{pointer} is {}, documented {}",
                    have.map_or("absent".into(), Value::to_string),
                    want.map_or("absent".into(), Value::to_string)
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    answer: {}",
            problems.join("\n    "),
            excerpt(&text)
        ))
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 1500;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None if text.is_empty() => "(empty)".into(),
        None => text.to_owned(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Appends to `problems` where `got` lacks a member of `documented` or has
/// it with another JSON type, at any depth. Every element of a documented
/// array must be matched by some element of the answer's.
///
/// `@odata.type` on an entity (the body, or an item of its `value`) is
/// control information, not a property: OData's minimal metadata leaves it
/// out where it names the declared type, so it may be absent, but when
/// present it must name the documented type. Anywhere else (inside an open
/// type, say) it is data like any other member.
fn same_shape(documented: &Value, got: &Value, at: &str, entity: bool, problems: &mut Vec<String>) {
    match (documented, got) {
        (Value::Object(want), Value::Object(have)) => {
            for (name, value) in want {
                let here = format!("{at}/{name}");
                match have.get(name) {
                    Some(v) if entity && name == "@odata.type" && v != value => {
                        problems.push(format!("{here} is {v}, documented {value}"));
                    }
                    Some(v) => {
                        let items = entity && at.is_empty() && name == "value";
                        same_shape(value, v, &here, items, problems);
                    }
                    None if entity && name == "@odata.type" => {}
                    None => problems.push(format!("{here} is missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            for (i, element) in want.iter().enumerate() {
                let matched = have.iter().any(|h| {
                    let mut found = Vec::new();
                    same_shape(element, h, at, entity, &mut found);
                    found.is_empty()
                });
                if matched {
                    continue;
                }
                match have.get(i).or(have.first()) {
                    // Report against the element in the same place.
                    Some(h) => same_shape(element, h, &format!("{at}/{i}"), entity, problems),
                    None => problems.push(format!("{at} is empty, documented element {i}")),
                }
            }
        }
        _ if kind(documented) == kind(got) => {}
        _ => problems.push(format!(
            "{} is {} ({}), documented {} ({})",
            if at.is_empty() { "the body" } else { at },
            kind(got),
            excerpt(&got.to_string()),
            kind(documented),
            documented
        )),
    }
}

// ---------------------------------------------------------------- setups

/// The setups examples may name.
const SETUPS: &[&str] = &[
    "an instance",
    "an instance and manifest employee-assistant",
    "conditional access agent",
    "conditional access agent with its card",
    "conditional access agent in a workspace",
    "conditional access agent in Global",
    "manifest employee-assistant",
    "manifest 8d4c5a5c",
    "workspace collection",
    "workspace collection and agent-instance-id",
    "two members",
    "pinning set in a tenant policy",
    "pinning set in a group policy",
    "too many group policies",
    "travel booking registration",
    "package catalog",
];

const AGENT: &str = "Security Copilot Platform Agent: 00222";
const CARD: &str = "Security Copilot Platform Agent Card Manifest: 00223";
const WORKSPACE: &str = "Security Copilot Platform Workspace: 001";
const OWNERS: [&str; 2] = [
    "daf58b0e-44e1-433c-b6b0-ca70cae320b8",
    "b9108c41-d2d2-4e78-b073-92f57b752bd0",
];
const MANAGER: &str = "719cc904-9700-4e08-9941-fd826cc84c60";
const STORE: &str = "Microsoft Security Copilot";
const DOC_POLICY: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const PIN: &str = "microsoft.copilot.copilotchatpinning";
const REGISTRATION: &str = "550e8400-e29b-41d4-a716-446655440000";
const PACKAGE: &str = "P_19ae1zz1-56bc-505a-3d42-156df75a4xxy";

type Placeholders = Vec<(&'static str, String)>;

/// Runs the named setup on `s` and returns the placeholders' values.
async fn setup(s: &TestServer, name: &str) -> Result<Placeholders, String> {
    let instance_id = |id: &str| vec![("agentInstanceId", id.to_owned())];
    match name {
        "an instance" => {
            create(s, INSTANCES, instance_body("agent-instance-id", "Agent")).await?;
            Ok(instance_id("agent-instance-id"))
        }
        "an instance and manifest employee-assistant" => {
            create(s, MANIFESTS, employee_assistant()).await?;
            create(s, INSTANCES, instance_body("agent-instance-id", "Agent")).await?;
            Ok(instance_id("agent-instance-id"))
        }
        "conditional access agent" => {
            create(s, INSTANCES, conditional_access_agent()).await?;
            Ok(instance_id(AGENT))
        }
        "conditional access agent with its card" => {
            let mut agent = conditional_access_agent();
            agent["agentCardManifest"] = conditional_access_card();
            create(s, INSTANCES, agent).await?;
            Ok(instance_id(AGENT))
        }
        "conditional access agent in a workspace" => {
            create(s, INSTANCES, conditional_access_agent()).await?;
            create(s, COLLECTIONS, workspace()).await?;
            add_member(s, WORKSPACE, AGENT).await?;
            Ok(vec![
                ("agentInstanceId", AGENT.to_owned()),
                ("agentCollectionId", WORKSPACE.to_owned()),
            ])
        }
        "conditional access agent in Global" => {
            create(s, INSTANCES, conditional_access_agent()).await?;
            add_member(s, GLOBAL, AGENT).await?;
            Ok(instance_id(AGENT))
        }
        "manifest employee-assistant" => {
            create(s, MANIFESTS, employee_assistant()).await?;
            Ok(vec![("agentCardManifestId", "employee-assistant".into())])
        }
        "manifest 8d4c5a5c" => {
            let id = "8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234";
            let manifest = json!({"id": id, "displayName": "Conditional Access Agent",
                                  "description": "AI assistant", "version": "1.0.0"});
            create(s, MANIFESTS, manifest).await?;
            Ok(vec![("agentCardManifestId", id.into())])
        }
        "workspace collection" => {
            create(s, COLLECTIONS, workspace()).await?;
            Ok(vec![("agentCollectionId", WORKSPACE.into())])
        }
        "workspace collection and agent-instance-id" => {
            create(s, COLLECTIONS, workspace()).await?;
            create(s, INSTANCES, instance_body("agent-instance-id", "Agent")).await?;
            Ok(vec![("agentCollectionId", WORKSPACE.into())])
        }
        "two members" => {
            create(s, COLLECTIONS, workspace()).await?;
            for (id, blueprint, identity) in [
                (
                    "Security Copilot Platform Agent: 00123",
                    "cc08c41-d2d2-4e78-b073-92f57b752bd0",
                    "cd108c41-d2d2-4e78-b073-92f57b752bd0",
                ),
                (
                    AGENT,
                    "ab108c41-d2d2-4e78-b073-92f57b752bd0",
                    "ac108c41-d2d2-4e78-b073-92f57b752bd0",
                ),
            ] {
                let member = json!({"id": id, "ownerIds": OWNERS, "managedBy": MANAGER,
                    "originatingStore": STORE, "displayName": "Conditional Access Agent",
                    "agentIdentityBlueprintId": blueprint, "agentIdentityId": identity});
                create(s, INSTANCES, member).await?;
                add_member(s, WORKSPACE, id).await?;
            }
            Ok(vec![("agentCollectionId", WORKSPACE.into())])
        }
        "pinning set in a tenant policy" => {
            create_policy(s, tenant_policy()).await?;
            Ok(Vec::new())
        }
        "pinning set in a group policy" => {
            create_policy(s, tenant_policy()).await?;
            create_policy(s, group_policy("designers", json!({PIN: "1"}))).await?;
            Ok(Vec::new())
        }
        "too many group policies" => {
            // One more than the default limit, none configuring the setting.
            create_policy(s, tenant_policy()).await?;
            let limit = agentry::domain::copilot::DEFAULT_MAX_GROUP_POLICIES;
            for i in 0..=limit {
                create_policy(s, group_policy(&format!("group-{i}"), json!({}))).await?;
            }
            Ok(Vec::new())
        }
        "travel booking registration" => {
            let registration = json!({
                "id": REGISTRATION,
                "displayName": "Contoso Travel Booking Agent",
                "description": "Helps users search and book flights and hotels",
                "ownerIds": ["3fa85f64-5717-4562-b3fc-2c963f66afa6", "8b7e9c42-1234-5678-90ab-def123456789"],
                "createdBy": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
                "sourceLastModifiedDateTime": "2025-02-15T10:00:00Z",
                "sourceAgentId": "contoso-sales-assistant-v1",
                "originatingStore": "ContosoAgentStore",
                "managedByAppId": "7c3f8d45-e29b-41d4-a716-556677889900",
                "agentCard": {"name": "Contoso Travel Booking Agent", "version": "1.0.0"}
            });
            create(s, "/copilot/agentRegistrations", registration).await?;
            Ok(vec![("agentRegistrationId", REGISTRATION.into())])
        }
        "package catalog" => {
            let packages = [
                crate::packages::package(
                    PACKAGE,
                    "Contoso travel agent",
                    &["DeclarativeAgent"],
                    &["Copilot", "Teams"],
                ),
                crate::packages::package("P_2", "Mail add-in", &["OfficeAddIns"], &["Outlook"]),
            ];
            for package in packages {
                let r = s
                    .control_as(TENANT_A, Method::POST, "/copilot/packages")
                    .json(&package)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                created(r, "load a package").await?;
            }
            Ok(Vec::new())
        }
        other => Err(format!("no setup is named '{other}' (see SETUPS)")),
    }
}

/// The origin of the documented URLs.
const GRAPH: &str = "https://graph.microsoft.com";
const INSTANCES: &str = "/agentRegistry/agentInstances";
const MANIFESTS: &str = "/agentRegistry/agentCardManifests";
const COLLECTIONS: &str = "/agentRegistry/agentCollections";

/// POSTs `body` to `set` (under `/beta`) and expects 201.
async fn create(s: &TestServer, set: &str, body: Value) -> Result<(), String> {
    let r = s
        .req(Method::POST, set)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    created(r, &format!("POST {set}")).await
}

async fn created(r: reqwest::Response, what: &str) -> Result<(), String> {
    match r.status() {
        StatusCode::CREATED => Ok(()),
        status => Err(format!(
            "{what}: {status} {}",
            excerpt(&r.text().await.unwrap_or_default())
        )),
    }
}

async fn add_member(s: &TestServer, collection: &str, instance: &str) -> Result<(), String> {
    let target = s.url(&format!("{INSTANCES}/{}", key(instance)));
    let r = s
        .req(
            Method::POST,
            &format!("{COLLECTIONS}/{}/members/$ref", key(collection)),
        )
        .json(&json!({"@odata.id": target}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match r.status() {
        StatusCode::NO_CONTENT => Ok(()),
        status => Err(format!("add {instance} to {collection}: {status}")),
    }
}

async fn create_policy(s: &TestServer, policy: Value) -> Result<(), String> {
    let r = s
        .control_as(TENANT_A, Method::POST, "/copilot/policies")
        .json(&policy)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    created(r, "create a policy").await
}

/// The Cloud Policy service's tenant-level policy of the documentation,
/// with the pinning setting on.
fn tenant_policy() -> Value {
    json!({"id": DOC_POLICY, "displayName": "Tenant policy", "service": "cloudPolicyService",
           "scope": "tenant", "priority": 0, "settings": {PIN: "1"}})
}

fn group_policy(id: &str, settings: Value) -> Value {
    json!({"id": id, "displayName": format!("Group {id}"), "service": "cloudPolicyService",
           "scope": "group", "targetGroupIds": ["6a1f0b52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"],
           "settings": settings})
}

fn employee_assistant() -> Value {
    json!({"id": "employee-assistant", "displayName": "Employee Assistant"})
}

/// The instance of the documented examples, every property set.
fn conditional_access_agent() -> Value {
    json!({
        "id": AGENT,
        "ownerIds": OWNERS,
        "managedBy": MANAGER,
        "originatingStore": STORE,
        "displayName": "Conditional Access Agent",
        "sourceAgentId": "00222",
        "agentIdentityBlueprintId": "d0108c41-d2d2-4e78-b073-92f57b752bd0",
        "agentIdentityId": "dd108c41-d2d2-4e78-b073-92f57b752bd0",
        "agentUserId": "ee108c41-d2d2-4e78-b073-92f57b752bd0",
        "url": "https://conditional-access-agent.example.com/a2a/v1",
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [
            {"url": "https://conditional-access-agent.example.com/a2a/v1", "transport": "JSONRPC"},
            {"url": "https://conditional-access-agent.example.com/a2a/grpc", "transport": "GRPC"},
            {"url": "https://conditional-access-agent.example.com/a2a/json", "transport": "HTTP+JSON"}
        ],
        "signatures": [{
            "protected": "eyJhbGciOiJFUzI1NiIsImtpZCI6ImRpZDp3ZWI6Y29udG9zby5leGFtcGxlI2tleS0xIiwidHlwIjoiYWdlbnRjYXJkK2p3cyJ9",
            "signature": "xOSim9oMw_CdZM-qDhmwpB5fJcBx5I30yh-FZULd1j9ruPEUBnJzmfCynNfH1KgmJ2B7ulAYc7D2iIb-4Ul-8w",
            "header": {"kidHint": "contoso-key-1", "nonce": "f1e9b6c3-2f3a-4a3a-b604-1f9af3f2a9c0"}
        }]
    })
}

/// The manifest of the documented instance → manifest example.
fn conditional_access_card() -> Value {
    json!({
        "id": CARD,
        "ownerIds": OWNERS,
        "managedBy": MANAGER,
        "originatingStore": STORE,
        "protocolVersion": "0.2.9",
        "displayName": "Conditional Access Agent",
        "description": "The Conditional Access optimization agent helps you ensure all users and applications are protected by Conditional Access policies.",
        "iconUrl": "https://conditional-access-agent.example.com/icon",
        "provider": {"organization": "Microsoft Inc.", "url": "https://www.microsoft.com"},
        "version": "1.2.0",
        "capabilities": {"streaming": true, "pushNotifications": true, "stateTransitionHistory": false},
        "securitySchemes": {
            "google": {"@odata.type": "#microsoft.graph.apiKeySecurityScheme", "type": "apiKey",
                       "description": "Use an api key", "name": "key", "in": "cookie"}
        },
        "security": [{"google": []}],
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json", "text/html"],
        "skills": [{
            "id": "analyze-conditional-access",
            "displayName": "CA Optimizer",
            "description": "The agent can recommend new policies and update existing conditional access policies.",
            "tags": ["security", "optimize", "conditional-access"]
        }],
        "supportsAuthenticatedExtendedCard": false
    })
}

fn workspace() -> Value {
    json!({
        "id": WORKSPACE,
        "ownerIds": OWNERS,
        "managedBy": MANAGER,
        "originatingStore": STORE,
        "displayName": "Conditional Access Agents",
        "description": "Agents to manage your organization's conditional access policy"
    })
}

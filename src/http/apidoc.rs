//! API descriptions: `GET /beta/$metadata` (CSDL, from `domain::schema`) and
//! `GET /openapi.json` (OpenAPI 3.1), generated from [`OPERATIONS`], the one
//! table of every method and path the router serves. A test reads the
//! router's source and checks that each route it declares is in the table,
//! and the API tests request every operation of the table.

use crate::domain::schema::{
    AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, ComplexType, EntityType, Kind,
};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A Graph token (delegated or application).
    Graph,
    /// An application token with the role `Agentry.Admin`.
    Admin,
    /// No token.
    None,
}

/// The body an operation takes or answers, by schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// `#/components/schemas/{name}`
    Schema(&'static str),
    /// Any JSON object.
    Object,
    Text(&'static str),
}

/// One method on one path.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// The route template, `{name}` for parameters.
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub auth: Auth,
    pub request: Body,
    /// The success status and its body.
    pub status: u16,
    pub response: Body,
}

#[allow(clippy::too_many_arguments)]
const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    auth: Auth,
    request: Body,
    status: u16,
    response: Body,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        tag,
        auth,
        request,
        status,
        response,
    }
}

use Auth::{Admin, Graph, None as Open};
use Body::{Empty, Object, Schema, Text};

const REG: &str = "Agent Registry";
const COP: &str = "Copilot settings";
const CTL: &str = "Control plane";
const OPS: &str = "Operations";
const IDP: &str = "Identity provider";
const I: &str = "agentInstance";
const M: &str = "agentCardManifest";
const C: &str = "agentCollection";
const LIST: Body = Schema("collection");
const REF: Body = Schema("reference");

/// Every operation Agentry serves.
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("GET", "/beta/agentRegistry", "Get the agent registry", REG, Graph, Empty, 200, Object),
    op("PATCH", "/beta/agentRegistry", "Update the agent registry", REG, Graph, Object, 204, Empty),
    op("GET", "/beta/agentRegistry/agentInstances", "List agent instances", REG, Graph, Empty, 200, LIST),
    op("POST", "/beta/agentRegistry/agentInstances", "Create an agent instance", REG, Graph, Schema(I), 201, Schema(I)),
    op("GET", "/beta/agentRegistry/agentInstances/$count", "Count agent instances", REG, Graph, Empty, 200, Text("text/plain")),
    op("GET", "/beta/agentRegistry/agentInstances/{id}", "Get an agent instance", REG, Graph, Empty, 200, Schema(I)),
    op("PATCH", "/beta/agentRegistry/agentInstances/{id}", "Update an agent instance", REG, Graph, Schema(I), 204, Empty),
    op("DELETE", "/beta/agentRegistry/agentInstances/{id}", "Delete an agent instance", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/agentCardManifest", "Get an instance's agent card manifest", REG, Graph, Empty, 200, Schema(M)),
    op("PATCH", "/beta/agentRegistry/agentInstances/{id}/agentCardManifest", "Update an instance's agent card manifest", REG, Graph, Schema(M), 200, Schema(M)),
    op("DELETE", "/beta/agentRegistry/agentInstances/{id}/agentCardManifest", "Unlink an instance's agent card manifest", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/collections", "List the collections of an instance", REG, Graph, Empty, 200, LIST),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/collections/$count", "Count the collections of an instance", REG, Graph, Empty, 200, Text("text/plain")),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}", "Get a collection of an instance", REG, Graph, Empty, 200, Schema(C)),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members", "List the members of a collection of an instance", REG, Graph, Empty, 200, LIST),
    op("POST", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members", "Add a member to a collection of an instance", REG, Graph, Schema(I), 201, Schema(I)),
    op("POST", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members/$ref", "Add a member by reference to a collection of an instance", REG, Graph, REF, 204, Empty),
    op("GET", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members/{mid}", "Get a member of a collection of an instance", REG, Graph, Empty, 200, Schema(I)),
    op("DELETE", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members/{mid}", "Remove a member of a collection of an instance", REG, Graph, Empty, 204, Empty),
    op("DELETE", "/beta/agentRegistry/agentInstances/{id}/collections/{cid}/members/{mid}/$ref", "Remove a member reference of a collection of an instance", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/agentRegistry/agentCardManifests", "List agent card manifests", REG, Graph, Empty, 200, LIST),
    op("POST", "/beta/agentRegistry/agentCardManifests", "Create an agent card manifest", REG, Graph, Schema(M), 201, Schema(M)),
    op("GET", "/beta/agentRegistry/agentCardManifests/$count", "Count agent card manifests", REG, Graph, Empty, 200, Text("text/plain")),
    op("GET", "/beta/agentRegistry/agentCardManifests/{id}", "Get an agent card manifest", REG, Graph, Empty, 200, Schema(M)),
    op("PATCH", "/beta/agentRegistry/agentCardManifests/{id}", "Update an agent card manifest", REG, Graph, Schema(M), 200, Schema(M)),
    op("DELETE", "/beta/agentRegistry/agentCardManifests/{id}", "Delete an agent card manifest", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/agentRegistry/agentCollections", "List agent collections", REG, Graph, Empty, 200, LIST),
    op("POST", "/beta/agentRegistry/agentCollections", "Create an agent collection", REG, Graph, Schema(C), 201, Schema(C)),
    op("GET", "/beta/agentRegistry/agentCollections/$count", "Count agent collections", REG, Graph, Empty, 200, Text("text/plain")),
    op("GET", "/beta/agentRegistry/agentCollections/{id}", "Get an agent collection", REG, Graph, Empty, 200, Schema(C)),
    op("PATCH", "/beta/agentRegistry/agentCollections/{id}", "Update an agent collection", REG, Graph, Schema(C), 204, Empty),
    op("DELETE", "/beta/agentRegistry/agentCollections/{id}", "Delete an agent collection", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/agentRegistry/agentCollections/{id}/members", "List the members of a collection", REG, Graph, Empty, 200, LIST),
    op("POST", "/beta/agentRegistry/agentCollections/{id}/members", "Add a member to a collection", REG, Graph, Schema(I), 201, Schema(I)),
    op("GET", "/beta/agentRegistry/agentCollections/{id}/members/$count", "Count the members of a collection", REG, Graph, Empty, 200, Text("text/plain")),
    op("POST", "/beta/agentRegistry/agentCollections/{id}/members/$ref", "Add a member by reference", REG, Graph, REF, 204, Empty),
    op("GET", "/beta/agentRegistry/agentCollections/{id}/members/{mid}", "Get a member of a collection", REG, Graph, Empty, 200, Schema(I)),
    op("DELETE", "/beta/agentRegistry/agentCollections/{id}/members/{mid}", "Remove a member of a collection", REG, Graph, Empty, 204, Empty),
    op("DELETE", "/beta/agentRegistry/agentCollections/{id}/members/{mid}/$ref", "Remove a member reference", REG, Graph, Empty, 204, Empty),
    op("GET", "/beta/copilot/admin/policySettings/{id}", "Get a Copilot policy setting", COP, Graph, Empty, 200, Object),
    op("PATCH", "/beta/copilot/admin/policySettings/{id}", "Update a Copilot policy setting", COP, Graph, Object, 200, Object),
    op("GET", "/beta/copilot/admin/settings/limitedMode", "Get Copilot limited mode", COP, Graph, Empty, 200, Object),
    op("PATCH", "/beta/copilot/admin/settings/limitedMode", "Update Copilot limited mode", COP, Graph, Object, 200, Object),
    op("GET", "/v1.0/copilot/admin/settings/limitedMode", "Get Copilot limited mode (v1.0)", COP, Graph, Empty, 200, Object),
    op("PATCH", "/v1.0/copilot/admin/settings/limitedMode", "Update Copilot limited mode (v1.0)", COP, Graph, Object, 200, Object),
    op("GET", "/beta/copilot/settings/people/enhancedPersonalization", "Get enhanced personalization", COP, Graph, Empty, 200, Object),
    op("PATCH", "/beta/copilot/settings/people/enhancedPersonalization", "Update enhanced personalization", COP, Graph, Object, 200, Object),
    op("GET", "/_agentry/copilot/policies", "List Copilot policies", CTL, Admin, Empty, 200, LIST),
    op("POST", "/_agentry/copilot/policies", "Create a Copilot policy", CTL, Admin, Object, 201, Object),
    op("GET", "/_agentry/copilot/policies/{id}", "Get a Copilot policy", CTL, Admin, Empty, 200, Object),
    op("PATCH", "/_agentry/copilot/policies/{id}", "Update a Copilot policy", CTL, Admin, Object, 200, Object),
    op("DELETE", "/_agentry/copilot/policies/{id}", "Delete a Copilot policy", CTL, Admin, Empty, 204, Empty),
    op("POST", "/_agentry/reset", "Wipe the caller's tenant", CTL, Admin, Empty, 204, Empty),
    op("GET", "/_agentry/snapshot", "Export the caller's tenant (seed format)", CTL, Admin, Empty, 200, Schema("snapshot")),
    op("PUT", "/_agentry/snapshot", "Replace the caller's tenant with a snapshot", CTL, Admin, Schema("snapshot"), 200, Object),
    op("GET", "/_agentry/faults", "List the tenant's fault rules", CTL, Admin, Empty, 200, LIST),
    op("POST", "/_agentry/faults", "Add a fault rule", CTL, Admin, Schema("faultRule"), 201, Schema("faultRule")),
    op("DELETE", "/_agentry/faults", "Remove every fault rule of the tenant", CTL, Admin, Empty, 204, Empty),
    op("DELETE", "/_agentry/faults/{id}", "Remove a fault rule", CTL, Admin, Empty, 204, Empty),
    op("GET", "/_agentry/requests", "Read the tenant's request journal (JSON or ?format=har)", CTL, Admin, Empty, 200, LIST),
    op("DELETE", "/_agentry/requests", "Clear the tenant's request journal", CTL, Admin, Empty, 204, Empty),
    op("GET", "/_agentry/requests.har", "The tenant's request journal as an HTTP Archive", CTL, Admin, Empty, 200, Object),
    op("GET", "/healthz", "Liveness", OPS, Open, Empty, 200, Object),
    op("GET", "/readyz", "Readiness (the database answers)", OPS, Open, Empty, 200, Object),
    op("GET", "/metrics", "Prometheus metrics", OPS, Open, Empty, 200, Text("text/plain")),
    op("GET", "/beta/$metadata", "OData CSDL of the Agent Registry", OPS, Open, Empty, 200, Text("application/xml")),
    op("GET", "/openapi.json", "This OpenAPI description", OPS, Open, Empty, 200, Object),
    op("GET", "/{tenant}/v2.0/.well-known/openid-configuration", "OpenID Connect discovery", IDP, Open, Empty, 200, Object),
    op("GET", "/{tenant}/discovery/v2.0/keys", "Signing keys (JWKS)", IDP, Open, Empty, 200, Object),
    op("POST", "/{tenant}/oauth2/v2.0/token", "Client-credentials token endpoint", IDP, Open, Text("application/x-www-form-urlencoded"), 200, Object),
];

/// The operation a request names: its method and its path, in either key
/// spelling (`agentInstances/a` or `agentInstances('a')`), query ignored.
pub fn operation(method: &str, path: &str) -> Option<&'static Operation> {
    let path = path.split('?').next().unwrap_or_default();
    let rewritten = path
        .parse::<axum::http::Uri>()
        .ok()
        .and_then(|uri| super::rewrite_key_segments(&uri));
    let path = rewritten.as_ref().map_or(path, |uri| uri.path());
    let template = super::metrics::route_label(path);
    OPERATIONS
        .iter()
        .find(|o| o.path == template && o.method.eq_ignore_ascii_case(method))
}

pub fn routes() -> Router<super::AppState> {
    Router::new()
        .route("/beta/$metadata", get(metadata))
        .route("/openapi.json", get(openapi))
}

async fn metadata() -> Response {
    let mut r = crate::domain::csdl::metadata_document().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r.headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    r
}

async fn openapi() -> Response {
    super::respond::plain_json(StatusCode::OK, &openapi_document())
}

fn kind_schema(kind: Kind) -> Value {
    match kind {
        Kind::String => json!({"type": ["string", "null"]}),
        Kind::Boolean => json!({"type": ["boolean", "null"]}),
        Kind::DateTimeOffset => json!({"type": ["string", "null"], "format": "date-time"}),
        Kind::StringCollection => json!({"type": "array", "items": {"type": "string"}}),
        Kind::Complex(t) => json!({"anyOf": [
            {"$ref": format!("#/components/schemas/{}", short(t.qualified))},
            {"type": "null"},
        ]}),
        Kind::ComplexCollection(t) => {
            json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{}", short(t.qualified))}})
        }
        Kind::Open => json!({"type": ["object", "null"]}),
        Kind::OpenCollection => json!({"type": "array", "items": {"type": "object"}}),
    }
}

fn short(qualified: &str) -> &str {
    qualified.trim_start_matches("microsoft.graph.")
}

fn object_schema(properties: &[crate::domain::schema::Property]) -> Value {
    let props: Map<String, Value> = properties
        .iter()
        .map(|p| (p.name.to_owned(), kind_schema(p.kind)))
        .collect();
    json!({"type": "object", "properties": props})
}

fn schemas() -> Map<String, Value> {
    let mut out = Map::new();
    let entities: [&EntityType; 3] = [&AGENT_INSTANCE, &AGENT_CARD_MANIFEST, &AGENT_COLLECTION];
    let mut complex: Vec<&ComplexType> = Vec::new();
    fn visit(kind: Kind, out: &mut Vec<&'static ComplexType>) {
        if let Kind::Complex(t) | Kind::ComplexCollection(t) = kind
            && !out.iter().any(|c| std::ptr::eq(*c, t))
        {
            out.push(t);
            t.properties.iter().for_each(|p| visit(p.kind, out));
        }
    }
    for ty in entities {
        ty.properties
            .iter()
            .for_each(|p| visit(p.kind, &mut complex));
        out.insert(ty.short_name().to_owned(), object_schema(ty.properties));
    }
    for t in complex {
        out.insert(short(t.qualified).to_owned(), object_schema(t.properties));
    }
    out.insert(
        "collection".into(),
        json!({"type": "object", "properties": {
            "value": {"type": "array", "items": {"type": "object"}},
            "@odata.nextLink": {"type": "string"}}}),
    );
    out.insert(
        "reference".into(),
        json!({"type": "object", "required": ["@odata.id"], "properties": {"@odata.id": {"type": "string"}}}),
    );
    out.insert(
        "snapshot".into(),
        json!({"type": "object", "required": ["tenants"], "properties": {
            "tenants": {"type": "object", "additionalProperties": {"type": "object"}}}}),
    );
    out.insert(
        "faultRule".into(),
        json!({"type": "object", "required": ["path"], "properties": {
            "method": {"type": ["string", "null"]}, "path": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "count": {"type": ["integer", "null"], "minimum": 1},
            "clientRequestId": {"type": ["string", "null"]},
            "delayMs": {"type": ["integer", "null"], "minimum": 0, "maximum": 60000},
            "error": {"type": ["object", "null"], "required": ["status"], "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "code": {"type": "string"}, "message": {"type": "string"},
                "retryAfterSeconds": {"type": "integer", "minimum": 0}}}}}),
    );
    out.insert(
        "oauthError".into(),
        json!({"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"}, "error_description": {"type": "string"},
            "error_codes": {"type": "array", "items": {"type": "integer"}},
            "timestamp": {"type": "string"}, "trace_id": {"type": "string"},
            "correlation_id": {"type": "string"}}}),
    );
    out.insert(
        "graphError".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "innerError": {"type": "object"}}}}}),
    );
    out
}

fn content(body: Body) -> Option<Value> {
    match body {
        Body::Empty => None,
        Body::Schema(name) => Some(
            json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}),
        ),
        Body::Object => Some(json!({"application/json": {"schema": {"type": "object"}}})),
        Body::Text(mime) => Some(json!({ mime: {"schema": {"type": "string"}} })),
    }
}

fn operation_id(o: &Operation) -> String {
    let mut id = o.method.to_ascii_lowercase();
    for seg in o.path.split('/').filter(|s| !s.is_empty()) {
        let seg: String = seg.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let mut chars = seg.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// How an operation takes part in ETag concurrency control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conditional {
    No,
    /// A single registry entity read: `ETag`, `If-None-Match`, 304.
    Read,
    /// A registry entity create: `ETag`, `If-None-Match: *`, 412.
    Create,
    /// A registry entity PATCH or DELETE: `If-Match`, `If-None-Match: *`, 412.
    Write,
}

/// The paths whose PATCH and DELETE take `If-Match`.
const CONDITIONAL_WRITES: [&str; 4] = [
    "/beta/agentRegistry/agentInstances/{id}",
    "/beta/agentRegistry/agentInstances/{id}/agentCardManifest",
    "/beta/agentRegistry/agentCardManifests/{id}",
    "/beta/agentRegistry/agentCollections/{id}",
];

fn conditional(o: &Operation) -> Conditional {
    let entity = matches!(o.response, Body::Schema(I | M | C));
    match o.method {
        "GET" if entity => Conditional::Read,
        "POST" if entity && o.status == 201 && o.path.matches('/').count() == 3 => {
            Conditional::Create
        }
        "PATCH" | "DELETE" if CONDITIONAL_WRITES.contains(&o.path) => Conditional::Write,
        _ => Conditional::No,
    }
}

fn header_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": false,
           "description": description, "schema": {"type": "string"}})
}

/// Adds the conditional headers and answers of an operation.
fn add_conditions(o: &Operation, parameters: &mut Vec<Value>, responses: &mut Map<String, Value>) {
    let kind = conditional(o);
    if kind == Conditional::No {
        return;
    }
    let etag = json!({"ETag": {"description": "The entity's ETag, W/\"<version>-<fingerprint>\"",
                                "schema": {"type": "string"}}});
    let error =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/graphError"}}});
    let precondition = json!({"description": "A precondition failed (the ETag changed, or the entity exists)",
                              "content": error});
    match kind {
        Conditional::Read => {
            parameters.push(header_parameter(
                "If-None-Match",
                "ETags (or *): answer 304 while the entity still has one of them",
            ));
            responses.insert(
                "304".into(),
                json!({"description": "Not modified", "headers": etag}),
            );
        }
        Conditional::Create => parameters.push(header_parameter(
            "If-None-Match",
            "*: create only if the id is new (412 otherwise)",
        )),
        Conditional::Write => {
            parameters.push(header_parameter(
                "If-Match",
                "ETags (or *): write only while the entity has one of them (412 otherwise)",
            ));
            parameters.push(header_parameter(
                "If-None-Match",
                "*: always 412, the entity exists (other values are refused)",
            ));
        }
        Conditional::No => {}
    }
    if kind != Conditional::Read {
        responses.insert("412".into(), precondition);
    }
    if o.method != "DELETE" {
        // The success answer, and the representation a PATCH may answer with.
        for status in [o.status.to_string(), "200".to_owned()] {
            if let Some(ok) = responses.get_mut(&status) {
                ok["headers"] = etag.clone();
            }
        }
    }
}

/// The OpenAPI 3.1 document.
pub fn openapi_document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for o in OPERATIONS {
        let mut parameters: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        let mut ok = json!({"description": "Success"});
        if let Some(c) = content(o.response) {
            ok["content"] = c;
        }
        responses.insert(o.status.to_string(), ok);
        if o.method == "PATCH"
            && o.status == 204
            && let Body::Schema(entity @ (I | C)) = o.request
        {
            responses.insert(
                "200".into(),
                json!({"description": "Success, with Prefer: return=representation",
                       "content": content(Schema(entity))}),
            );
        }
        add_conditions(o, &mut parameters, &mut responses);
        let (error, description) = match o.tag {
            IDP => ("oauthError", "An OAuth 2.0 error (AADSTS codes)"),
            _ => ("graphError", "A Graph error envelope"),
        };
        responses.insert(
            "default".into(),
            json!({"description": description,
                   "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{error}")}}}}),
        );
        let mut operation = json!({
            "operationId": operation_id(o),
            "summary": o.summary,
            "tags": [o.tag],
            "responses": responses,
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(c) = content(o.request) {
            operation["requestBody"] = json!({"required": true, "content": c});
        }
        operation["security"] = match o.auth {
            Auth::None => json!([]),
            Auth::Graph => json!([{"bearer": []}]),
            Auth::Admin => json!([{"bearer": ["Agentry.Admin"]}]),
        };
        let entry = paths
            .entry(o.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[o.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Agentry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Microsoft Graph beta Agent Registry and Copilot settings, and Agentry's control plane.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The routes the router's source declares: (method, full path). Container
    /// paths that only answer 405 are left out.
    fn declared_routes() -> BTreeSet<(String, String)> {
        type Prefix<'a> = &'a dyn Fn(&str) -> String;
        let sources: [(&str, Prefix); 7] = [
            (include_str!("mod.rs"), &|p| p.to_owned()),
            (include_str!("registry/mod.rs"), &|p| p.to_owned()),
            (include_str!("copilot.rs"), &|p| format!("/beta/copilot{p}")),
            (include_str!("control.rs"), &|p| {
                if p.starts_with("/policies") {
                    format!("/_agentry/copilot{p}")
                } else {
                    format!("/_agentry{p}")
                }
            }),
            (include_str!("health.rs"), &|p| p.to_owned()),
            (include_str!("identity.rs"), &|p| p.to_owned()),
            (include_str!("apidoc.rs"), &|p| p.to_owned()),
        ];
        let mut out = BTreeSet::new();
        for (source, prefix) in sources {
            // Skip the tests of this file, which name `.route(` too.
            let source = source.split("#[cfg(test)]").next().unwrap_or_default();
            for chunk in source.split(".route(").skip(1) {
                let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                    continue;
                };
                let Some((path, args)) = rest.split_once('"') else {
                    continue;
                };
                // The method router: up to the next route or the end of the chain.
                let args = args.split("\n        .").next().unwrap_or(args);
                let args = args.split(";\n").next().unwrap_or(args);
                let mut methods: Vec<&str> = Vec::new();
                for (m, call) in [
                    ("GET", "get("),
                    ("POST", "post("),
                    ("PATCH", "patch("),
                    ("PUT", "put("),
                    ("DELETE", "delete("),
                ] {
                    if args.contains(call) {
                        methods.push(m);
                    }
                }
                let path = prefix(path);
                if args.contains("singleton()") {
                    methods = vec!["GET", "PATCH"];
                }
                if args.contains("limited_mode()") {
                    methods = vec!["GET", "PATCH"];
                }
                for m in methods {
                    out.insert((m.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn entity_reads_and_writes_describe_their_conditional_headers() {
        let doc = openapi_document();
        let op = |method: &str, path: &str| doc["paths"][path][method].clone();
        let headers = |op: &Value| -> Vec<String> {
            op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "header")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        for set in ["agentInstances", "agentCardManifests", "agentCollections"] {
            let one = format!("/beta/agentRegistry/{set}/{{id}}");
            for method in ["patch", "delete"] {
                let o = op(method, &one);
                assert_eq!(headers(&o), ["If-Match", "If-None-Match"], "{method} {one}");
                assert!(o["responses"]["412"].is_object(), "{method} {one}");
            }
            let patched = op("patch", &one);
            assert!(patched["responses"]["200"]["headers"]["ETag"].is_object());
            assert_eq!(
                patched["responses"]["204"]["headers"]["ETag"].is_object(),
                set != "agentCardManifests",
                "a manifest PATCH answers 200 with the manifest; the others 204, or 200 when asked"
            );
            let get = op("get", &one);
            assert_eq!(headers(&get), ["If-None-Match"]);
            assert!(get["responses"]["304"].is_object());
            assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
            let create = op("post", &format!("/beta/agentRegistry/{set}"));
            assert_eq!(headers(&create), ["If-None-Match"]);
            assert!(create["responses"]["412"].is_object());
            let list = op("get", &format!("/beta/agentRegistry/{set}"));
            assert!(headers(&list).is_empty());
        }
        let nav = "/beta/agentRegistry/agentInstances/{id}/agentCardManifest";
        assert_eq!(headers(&op("patch", nav)), ["If-Match", "If-None-Match"]);
        let copilot = op("patch", "/beta/copilot/admin/policySettings/{id}");
        assert!(headers(&copilot).is_empty());
        assert!(copilot["responses"]["412"].is_null());
    }

    #[test]
    fn every_route_the_router_declares_is_described_and_nothing_else() {
        let declared = declared_routes();
        let described: BTreeSet<(String, String)> = OPERATIONS
            .iter()
            .map(|o| (o.method.to_owned(), o.path.to_owned()))
            .collect();
        let missing: Vec<_> = declared.difference(&described).collect();
        let extra: Vec<_> = described.difference(&declared).collect();
        assert!(missing.is_empty(), "routes not in OPERATIONS: {missing:?}");
        assert!(
            extra.is_empty(),
            "OPERATIONS the router does not declare: {extra:?}"
        );
        assert_eq!(
            described.len(),
            OPERATIONS.len(),
            "no operation is listed twice"
        );
    }

    #[test]
    fn the_document_has_the_required_openapi_3_1_fields_and_resolvable_refs() {
        let doc = openapi_document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                    "{method} {path}"
                );
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
                let declared: usize = path.matches('{').count();
                let params = op["parameters"]
                    .as_array()
                    .map_or(0, |p| p.iter().filter(|p| p["in"] == "path").count());
                assert_eq!(declared, params, "{method} {path}");
            }
        }
    }
}

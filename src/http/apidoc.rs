//! API descriptions: `GET /beta/$metadata` (CSDL, from `domain::schema`) and
//! `GET /openapi.json` (OpenAPI 3.1), generated from
//! [`OPERATIONS`](super::routes::OPERATIONS), the one table of every method
//! and path the router serves. The API tests check every answer they get
//! against the document.

use super::routes::{Auth, Body, C, Docs, I, IDP, M, OPERATIONS, Operation, P, R};
use crate::domain::Entity;
use crate::domain::schema::{ComplexType, Kind};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Map, Value, json};

/// The handler of each operation of this module, for `method`.
pub fn handler(op: Docs, method: MethodFilter) -> MethodRouter<super::AppState> {
    match op {
        Docs::Metadata => on(method, metadata),
        Docs::OpenApi => on(method, openapi),
    }
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
        Kind::Int32 => json!({"type": ["integer", "null"]}),
        Kind::Double => json!({"type": ["number", "null"]}),
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
        Kind::Untyped => json!({}),
        Kind::Enum(t) => {
            let mut members: Vec<Value> = t.members.iter().map(|m| json!(m)).collect();
            members.push(Value::Null);
            json!({"type": ["string", "null"], "enum": members})
        }
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
    let entities = Entity::ALL.map(Entity::ty);
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
        "deltaCollection".into(),
        json!({"type": "object", "required": ["value"], "properties": {
            "value": {"type": "array", "items": {"type": "object"}},
            "@odata.nextLink": {"type": "string"},
            "@odata.deltaLink": {"type": "string"}}}),
    );
    out.insert(
        "subscription".into(),
        json!({"type": "object", "properties": {
            "id": {"type": "string"}, "resource": {"type": "string"},
            "changeType": {"type": "string"}, "notificationUrl": {"type": "string"},
            "lifecycleNotificationUrl": {"type": ["string", "null"]},
            "expirationDateTime": {"type": "string", "format": "date-time"},
            "clientState": {"type": ["string", "null"]},
            "applicationId": {"type": ["string", "null"]}, "creatorId": {"type": ["string", "null"]},
            "includeResourceData": {"type": ["boolean", "null"]}}}),
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
        Body::Media(types) => Some(Value::Object(
            types
                .iter()
                .map(|mime| ((*mime).to_owned(), json!({"schema": {"type": "string"}})))
                .collect(),
        )),
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
    if o.path.len() > 1 && o.path.ends_with('/') {
        // `/console/` beside `/console`.
        id.push_str("Index");
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
const CONDITIONAL_WRITES: [&str; 6] = [
    "/beta/agentRegistry/agentInstances/{id}",
    "/beta/agentRegistry/agentInstances/{id}/agentCardManifest",
    "/beta/agentRegistry/agentCardManifests/{id}",
    "/beta/agentRegistry/agentCollections/{id}",
    "/beta/copilot/agentRegistrations/{id}",
    "/beta/copilot/admin/catalog/packages/{id}",
];

fn conditional(o: &Operation) -> Conditional {
    let entity = matches!(o.response, Body::Schema(I | M | C | R | P));
    match o.method {
        "GET" if entity || o.path.ends_with("/agent-card.json") => Conditional::Read,
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
                       "content": content(Body::Schema(entity))}),
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

//! Every response the suite receives is checked against `/openapi.json`:
//! each test server journals its traffic with bodies, and when the server
//! goes away its answers are compared with the documented status codes,
//! media types and schemas, so the document cannot drift from the server.

use agentry::http::AppState;
use agentry::http::apidoc::openapi_document;
use agentry::http::journal::Entry;
use agentry::http::routes;
use serde_json::Value;

/// What in the journal of `state` disagrees with the OpenAPI document.
pub fn violations(state: &AppState) -> Vec<String> {
    let doc = openapi_document();
    let schemas = &doc["components"]["schemas"];
    let mut out = Vec::new();
    // A test that turned the journal's bodies off leaves statuses alone to check.
    let bodies = state.journal().settings().bodies;
    for entry in state.journal().all() {
        let what = format!("{} {} → {}", entry.method, entry.target, entry.status);
        let responses = match routes::operation(entry.method.as_str(), &entry.target) {
            Some(op) => &doc["paths"][op.path][op.method.to_ascii_lowercase()]["responses"],
            // No such operation: the answer must be a documented error.
            None => &Value::Null,
        };
        let declared = &responses[entry.status.to_string()];
        let response = if !declared.is_null() {
            declared
        } else if entry.status >= 400 {
            &doc["paths"]["/beta/agentRegistry"]["get"]["responses"]["default"]
        } else {
            out.push(format!("{what}: the status is not documented"));
            continue;
        };
        if bodies {
            check_content(&what, &entry, response, schemas, &mut out);
        }
    }
    out
}

fn check_content(
    what: &str,
    entry: &Entry,
    response: &Value,
    schemas: &Value,
    out: &mut Vec<String>,
) {
    let body = entry.response_body.as_ref().filter(|b| b.size > 0);
    let content = response["content"].as_object();
    let (Some(content), Some(body)) = (content, body) else {
        if body.is_some() {
            out.push(format!("{what}: a body where none is documented"));
        } else if content.is_some() && entry.status != 304 {
            out.push(format!("{what}: no body where one is documented"));
        }
        return;
    };
    let media = entry
        .response_headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, v)| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let Some(documented) = content.get(&media) else {
        out.push(format!(
            "{what}: media type '{media}' is not among {:?}",
            content.keys().collect::<Vec<_>>()
        ));
        return;
    };
    if media != "application/json" {
        return;
    }
    match serde_json::from_str::<Value>(&body.text) {
        Ok(value) => validate(&documented["schema"], &value, schemas, "", what, out),
        Err(e) => out.push(format!("{what}: the body is not JSON: {e}")),
    }
}

/// The JSON Schema keywords the document uses: `$ref`, `anyOf`, `type`,
/// `required`, `properties`, `additionalProperties`, `items`, `enum`,
/// `minimum`, `maximum`.
fn validate(
    schema: &Value,
    v: &Value,
    schemas: &Value,
    at: &str,
    what: &str,
    out: &mut Vec<String>,
) {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        let target = &schemas[name];
        if target.is_null() {
            out.push(format!("{what}: unknown schema {name}"));
        }
        validate(target, v, schemas, at, what, out);
    }
    if let Some(any) = schema["anyOf"].as_array() {
        let fits = any.iter().any(|s| {
            let mut errors = Vec::new();
            validate(s, v, schemas, at, what, &mut errors);
            errors.is_empty()
        });
        if !fits {
            out.push(format!(
                "{what}: {at} = {v} fits none of {}",
                Value::Array(any.clone())
            ));
        }
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = |t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            out.push(format!("{what}: {at} = {v} is not of type {ty}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        out.push(format!(
            "{what}: {at} = {v} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(n) = v.as_f64()
        && (schema["minimum"].as_f64().is_some_and(|m| n < m)
            || schema["maximum"].as_f64().is_some_and(|m| n > m))
    {
        out.push(format!("{what}: {at} = {v} is out of range"));
    }
    if let Value::Object(map) = v {
        for key in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(key) {
                out.push(format!("{what}: {at}/{key} is required"));
            }
        }
        let properties = schema["properties"].as_object();
        for (key, value) in map {
            let at = format!("{at}/{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(s) => validate(s, value, schemas, &at, what, out),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => {
                        out.push(format!("{what}: {at} is not a documented property"))
                    }
                    s @ Value::Object(_) => validate(s, value, schemas, &at, what, out),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (n, item) in items.iter().enumerate() {
            validate(s, item, schemas, &format!("{at}/{n}"), what, out);
        }
    }
}

#[test]
fn the_validator_finds_wrong_types_missing_properties_and_nulls_where_none_are_allowed() {
    let schemas = serde_json::json!({
        "thing": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"},
            "n": {"type": "integer", "minimum": 1},
            "inner": {"$ref": "#/components/schemas/inner"},
            "maybe": {"anyOf": [{"$ref": "#/components/schemas/inner"}, {"type": "null"}]},
            "list": {"type": "array", "items": {"type": "string"}}}},
        "inner": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "additionalProperties": false}
    });
    let schema = serde_json::json!({"$ref": "#/components/schemas/thing"});
    let errors = |v: Value| {
        let mut out = Vec::new();
        validate(&schema, &v, &schemas, "", "t", &mut out);
        out.len()
    };
    assert_eq!(
        errors(
            serde_json::json!({"id": "x", "n": 2, "inner": {"a": null}, "maybe": null, "list": ["a"], "@odata.etag": "e"})
        ),
        0
    );
    assert_eq!(errors(serde_json::json!({"n": 2})), 1, "id is required");
    assert_eq!(errors(serde_json::json!({"id": 1})), 1);
    assert_eq!(errors(serde_json::json!({"id": "x", "n": 0})), 1);
    assert_eq!(errors(serde_json::json!({"id": "x", "inner": null})), 1);
    assert_eq!(errors(serde_json::json!({"id": "x", "inner": {"b": 1}})), 1);
    assert_eq!(errors(serde_json::json!({"id": "x", "maybe": 3})), 1);
    assert_eq!(
        errors(serde_json::json!({"id": "x", "list": [1, "a", 2]})),
        2
    );
}

//! Building Graph responses: `@odata.context`, entity and collection bodies,
//! `@odata.nextLink`, and the OData media type.

use super::request::RequestMeta;
use crate::domain::schema::EntityType;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};

/// The media type Graph answers JSON with.
pub const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A JSON response with the OData headers.
pub fn json(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    // Room for these, the ETag and the request ids without growing.
    *response.headers_mut() = axum::http::HeaderMap::with_capacity(8);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A plain JSON response (the control API: not OData).
pub fn plain_json(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

/// A JSON answer already written as text.
pub fn json_text(status: StatusCode, text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain-text count, as `/$count` answers.
pub fn count(n: u64) -> Response {
    let mut response = Response::new(Body::from(n.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    response
}

pub fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// `{root}/$metadata#{container}/{set}{projection}`
pub fn context_url(meta: &RequestMeta, ty: &EntityType, projection: &str) -> String {
    format!(
        "{}/$metadata#{}/{}{projection}",
        meta.service_root(),
        ty.container,
        ty.entity_set
    )
}

/// An entity body: the stored document with `@odata.context` put first.
/// The document is spliced as text, not parsed and written again.
pub fn entity_body(context: &str, doc: &str) -> String {
    let rest = doc
        .trim_start()
        .strip_prefix('{')
        .unwrap_or("}")
        .trim_start();
    let context = Value::String(context.to_owned()).to_string();
    let mut out = String::with_capacity(doc.len() + context.len() + 24);
    out.push_str("{\"@odata.context\":");
    out.push_str(&context);
    if !rest.starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    out
}

/// A stored entity's body as is: `@odata.context` (for `ty`'s set, no
/// projection), `@odata.etag`, then the document's members. Written into one
/// buffer, without parsing the document.
pub fn stored_entity_body(meta: &RequestMeta, ty: &EntityType, etag: &str, doc: &str) -> String {
    let set = ty.entity_set;
    let rest = doc
        .trim_start()
        .strip_prefix('{')
        .unwrap_or("}")
        .trim_start();
    let mut out = String::with_capacity(doc.len() + meta.origin.len() + set.len() + 96);
    out.push_str("{\"@odata.context\":\"");
    push_escaped(&mut out, &meta.origin);
    out.push_str(meta.root);
    out.push_str("/$metadata#");
    out.push_str(ty.container);
    out.push('/');
    push_escaped(&mut out, set);
    out.push_str("/$entity\",\"@odata.etag\":\"");
    push_escaped(&mut out, etag);
    out.push('"');
    if !rest.starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    out
}

/// Appends `s` escaped as the inside of a JSON string, as serde_json writes it.
fn push_escaped(out: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20) {
        // Control characters are rare here; serde_json knows their forms.
        let quoted = Value::String(s.to_owned()).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
        return;
    }
    let mut rest = s;
    while let Some(i) = rest.find(['"', '\\']) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..=i]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// An entity's JSON text with `@odata.etag` put first, spliced as text.
pub fn with_etag(doc: &str, etag: &str) -> String {
    let rest = doc
        .trim_start()
        .strip_prefix('{')
        .unwrap_or("}")
        .trim_start();
    let etag = Value::String(etag.to_owned()).to_string();
    let mut out = String::with_capacity(doc.len() + etag.len() + 16);
    out.push_str("{\"@odata.etag\":");
    out.push_str(&etag);
    if !rest.starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    out
}

/// An entity as a JSON object with `@odata.etag` first.
pub fn object_with_etag(etag: String, doc: Map<String, Value>) -> Value {
    let mut out = Map::with_capacity(doc.len() + 1);
    out.insert("@odata.etag".into(), Value::String(etag));
    out.extend(doc);
    Value::Object(out)
}

/// A collection body; `items` are JSON texts of entities.
pub fn collection_body(
    context: &str,
    count: Option<u64>,
    next_link: Option<&str>,
    items: &[String],
) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 256);
    out.push_str("{\"@odata.context\":");
    out.push_str(&Value::String(context.to_owned()).to_string());
    if let Some(n) = count {
        out.push_str(",\"@odata.count\":");
        out.push_str(&n.to_string());
    }
    if let Some(link) = next_link {
        out.push_str(",\"@odata.nextLink\":");
        out.push_str(&Value::String(link.to_owned()).to_string());
    }
    out.push_str(",\"value\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    out
}

/// The next page's absolute URL: the request's own options, minus `$skip`
/// and any old `$skiptoken`, plus the new token.
pub fn next_link(meta: &RequestMeta, path: &str, raw_query: Option<&str>, token: &str) -> String {
    let kept: Vec<&str> = raw_query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let name = percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .to_ascii_lowercase();
            let name = name.trim_start_matches('$');
            name != "skiptoken" && name != "skip"
        })
        .collect();
    let mut url = format!("{}{path}?", meta.origin);
    for pair in kept {
        url.push_str(pair);
        url.push('&');
    }
    url.push_str("$skiptoken=");
    url.push_str(token);
    url
}

/// A stored document's text cut down to the selected properties (all of
/// them for `*` or no `$select`), in document order, with `@odata.etag`
/// first: the text of `object_with_etag(etag, project(parse(doc), select))`,
/// without building the document's values (each kept property's stored text
/// is copied as it is). An empty object's, as [`crate::store::Stored::parse`]
/// gives, if the document is not a JSON object.
pub fn project_text(doc: &str, etag: &str, select: Option<&[String]>) -> String {
    let Some(names) = select.filter(|names| !names.iter().any(|n| n == "*")) else {
        return with_etag(doc, etag);
    };
    let Ok(Properties(properties)) = serde_json::from_str::<Properties>(doc) else {
        return with_etag("{}", etag);
    };
    let mut kept = String::with_capacity(doc.len());
    kept.push('{');
    for (name, value) in properties {
        if names.contains(&name) {
            if kept.len() > 1 {
                kept.push(',');
            }
            kept.push_str(&Value::String(name).to_string());
            kept.push(':');
            kept.push_str(value.get());
        }
    }
    kept.push('}');
    with_etag(&kept, etag)
}

/// A JSON object's properties in order, each value left as its text.
struct Properties<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for Properties<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Properties<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut properties = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry()? {
                    properties.push(entry);
                }
                Ok(Properties(properties))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Keeps the selected properties of a document (all of them for `*` or no `$select`).
pub fn project(doc: Map<String, Value>, select: Option<&[String]>) -> Map<String, Value> {
    match select {
        Some(names) if !names.iter().any(|n| n == "*") => doc
            .into_iter()
            .filter(|(k, _)| names.iter().any(|n| n == k))
            .collect(),
        _ => doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RequestMeta {
        RequestMeta {
            request_id: "r".into(),
            client_request_id: None,
            origin: "http://h:1".into(),
            root: "/beta",
        }
    }

    #[test]
    fn an_entity_body_puts_the_context_first_without_reparsing() {
        assert_eq!(
            entity_body("ctx", r#"{"id":"a","x":1}"#),
            r#"{"@odata.context":"ctx","id":"a","x":1}"#
        );
        assert_eq!(entity_body("ctx", "{}"), r#"{"@odata.context":"ctx"}"#);
        let parsed: Value = serde_json::from_str(&entity_body("c\"q", r#"{"id":"a"}"#)).unwrap();
        assert_eq!(parsed["@odata.context"], "c\"q");
    }

    #[test]
    fn the_etag_annotation_comes_first_and_the_context_before_it() {
        let doc = with_etag(r#"{"id":"a"}"#, r#"W/"1-x""#);
        assert_eq!(doc, r#"{"@odata.etag":"W/\"1-x\"","id":"a"}"#);
        assert_eq!(
            entity_body("ctx", &doc),
            r#"{"@odata.context":"ctx","@odata.etag":"W/\"1-x\"","id":"a"}"#
        );
        assert_eq!(with_etag("{}", "e"), r#"{"@odata.etag":"e"}"#);
        let doc: Map<String, Value> = serde_json::from_str(r#"{"id":"a","x":1}"#).unwrap();
        let v = object_with_etag("e".into(), doc);
        assert_eq!(v.to_string(), r#"{"@odata.etag":"e","id":"a","x":1}"#);
    }

    #[test]
    fn a_stored_entity_body_is_the_context_the_etag_and_the_document() {
        use crate::domain::schema::{AGENT_INSTANCE, AGENT_REGISTRATION};
        for ty in [&AGENT_INSTANCE, &AGENT_REGISTRATION] {
            let body = stored_entity_body(&meta(), ty, r#"W/"2-00ff""#, r#"{"id":"a"}"#);
            let context = context_url(&meta(), ty, "/$entity");
            assert!(context.ends_with(&format!("#{}/{}/$entity", ty.container, ty.entity_set)));
            assert_eq!(
                body,
                entity_body(&context, &with_etag(r#"{"id":"a"}"#, r#"W/"2-00ff""#))
            );
        }
        let mut escaped = String::new();
        push_escaped(&mut escaped, "a\"b\\c\nd");
        assert_eq!(escaped, r#"a\"b\\c\nd"#);
    }

    #[test]
    fn a_collection_body_orders_annotations_before_the_value() {
        let body = collection_body(
            "ctx",
            Some(2),
            Some("next"),
            &[r#"{"id":"a"}"#.into(), r#"{"id":"b"}"#.into()],
        );
        assert_eq!(
            body,
            r#"{"@odata.context":"ctx","@odata.count":2,"@odata.nextLink":"next","value":[{"id":"a"},{"id":"b"}]}"#
        );
    }

    #[test]
    fn the_next_link_keeps_the_options_and_replaces_paging_ones() {
        let link = next_link(
            &meta(),
            "/beta/agentRegistry/agentInstances",
            Some("$top=2&%24skip=4&$select=id&$skiptoken=old"),
            "new",
        );
        assert_eq!(
            link,
            "http://h:1/beta/agentRegistry/agentInstances?$top=2&$select=id&$skiptoken=new"
        );
    }

    #[test]
    fn a_projected_text_is_the_projected_document_with_its_etag() {
        let doc = r#"{"id":"a","displayName":"d \"q\" é","n":1.50,"tags":[{"x":[1,{"y":null}]}],"url":null}"#;
        let selects: [Option<&[&str]>; 6] = [
            None,
            Some(&["*"]),
            Some(&["url", "id"]),
            Some(&["tags", "n", "displayName"]),
            Some(&["missing"]),
            Some(&[]),
        ];
        for select in selects {
            let select: Option<Vec<String>> =
                select.map(|names| names.iter().map(|n| (*n).to_owned()).collect());
            let parsed: Map<String, Value> = serde_json::from_str(doc).unwrap();
            let expected = object_with_etag("W/\"1-x\"".into(), project(parsed, select.as_deref()));
            assert_eq!(
                project_text(doc, "W/\"1-x\"", select.as_deref()),
                expected.to_string(),
                "{select:?}"
            );
        }
        let some: &[String] = &["id".into()];
        assert_eq!(
            project_text("[1]", "e", Some(some)),
            r#"{"@odata.etag":"e"}"#
        );
    }

    #[test]
    fn projection_keeps_only_selected_properties_in_document_order() {
        let doc: Map<String, Value> =
            serde_json::from_str(r#"{"id":"a","displayName":"d","url":null}"#).unwrap();
        let p = project(doc.clone(), Some(&["url".into(), "id".into()]));
        assert_eq!(p.keys().collect::<Vec<_>>(), ["id", "url"]);
        assert_eq!(project(doc.clone(), Some(&["*".into()])), doc);
    }
}

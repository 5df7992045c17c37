//! What watching an agent compares: where its live card is published, and
//! how it differs from the registered one. Both cards are compared in the
//! v1.0 shape without `signatures` (a card re-signed or served in the other
//! shape has not drifted).

use serde_json::{Map, Value, json};

/// The most differences one comparison reports.
pub const MAX_DIFFERENCES: usize = 20;

/// The URL of the agent's own card: `/.well-known/agent-card.json` at the
/// origin of the card's (first) interface URL; `None` without an http(s) URL.
pub fn well_known_url(card: &Value) -> Option<String> {
    let v1 = super::to_v1(card);
    let url = v1
        .get("supportedInterfaces")
        .and_then(Value::as_array)
        .and_then(|i| i.first())
        .and_then(|i| i.get("url"))
        .and_then(Value::as_str)?;
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .filter(|a| !a.is_empty())?;
    Some(format!(
        "{}://{authority}/.well-known/agent-card.json",
        scheme.to_ascii_lowercase()
    ))
}

fn comparable(card: &Value) -> Value {
    let mut v1 = super::to_v1(card);
    if let Some(obj) = v1.as_object_mut() {
        obj.remove("signatures");
    }
    v1
}

/// The differences between the registered card and the live one, each
/// `{"pointer", "change": "added" | "removed" | "changed"}` (RFC 6901
/// pointers into the v1.0 shape), at most [`MAX_DIFFERENCES`]; empty when
/// they match.
pub fn differences(registered: &Value, live: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    walk(
        &comparable(registered),
        &comparable(live),
        String::new(),
        &mut out,
    );
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(a: &Value, b: &Value, at: String, out: &mut Vec<Value>) {
    if out.len() >= MAX_DIFFERENCES || a == b {
        return;
    }
    let mut note = |pointer: String, change: &str| {
        if out.len() < MAX_DIFFERENCES {
            out.push(json!({"pointer": pointer, "change": change}));
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => objects(x, y, &at, out),
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let here = format!("{at}/{i}");
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => walk(p, q, here, out),
                    (Some(_), None) => out.push(json!({"pointer": here, "change": "removed"})),
                    (None, Some(_)) => out.push(json!({"pointer": here, "change": "added"})),
                    (None, None) => {}
                }
                if out.len() >= MAX_DIFFERENCES {
                    out.truncate(MAX_DIFFERENCES);
                    return;
                }
            }
        }
        _ => note(at, "changed"),
    }
}

fn objects(x: &Map<String, Value>, y: &Map<String, Value>, at: &str, out: &mut Vec<Value>) {
    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let here = format!("{at}/{}", escape(k));
        match (x.get(k), y.get(k)) {
            (Some(p), Some(q)) => walk(p, q, here, out),
            (Some(_), None) => out.push(json!({"pointer": here, "change": "removed"})),
            (None, Some(_)) => out.push(json!({"pointer": here, "change": "added"})),
            (None, None) => {}
        }
        if out.len() >= MAX_DIFFERENCES {
            out.truncate(MAX_DIFFERENCES);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Value {
        json!({
            "protocolVersion": "0.3.0", "name": "Travel", "description": "Books trips",
            "version": "1.0.0", "url": "https://Travel.example:8443/a2a/v1?x=1",
            "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "book", "name": "Book", "description": "Books", "tags": ["travel"]}]
        })
    }

    #[test]
    fn the_live_card_is_looked_for_at_the_origin_of_the_first_interface() {
        assert_eq!(
            well_known_url(&card()).as_deref(),
            Some("https://Travel.example:8443/.well-known/agent-card.json")
        );
        let mut ftp = card();
        ftp["url"] = "ftp://travel.example/a2a".into();
        assert_eq!(well_known_url(&ftp), None);
        assert_eq!(well_known_url(&json!({"name": "no interface"})), None);
    }

    #[test]
    fn the_same_card_in_the_other_shape_or_re_signed_has_not_drifted() {
        let v1 = super::super::to_v1(&card());
        assert_eq!(differences(&card(), &v1), Vec::<Value>::new());
        let mut signed = card();
        signed["signatures"] = json!([{"protected": "e30", "signature": "AA"}]);
        assert_eq!(differences(&card(), &signed), Vec::<Value>::new());
    }

    #[test]
    fn each_difference_is_a_pointer_and_what_changed() {
        let mut live = card();
        live["description"] = "Books flights".into();
        live["skills"][0]["tags"] = json!(["travel", "flights"]);
        live["iconUrl"] = "https://travel.example/icon.png".into();
        live.as_object_mut().unwrap().remove("version");
        assert_eq!(
            differences(&card(), &live),
            vec![
                json!({"pointer": "/description", "change": "changed"}),
                json!({"pointer": "/iconUrl", "change": "added"}),
                json!({"pointer": "/skills/0/tags/1", "change": "added"}),
                json!({"pointer": "/version", "change": "removed"}),
            ]
        );
    }

    #[test]
    fn a_card_rewritten_from_scratch_reports_at_most_twenty_differences() {
        let mut a = Map::new();
        let mut b = Map::new();
        for i in 0..50 {
            a.insert(format!("k{i:02}"), json!(i));
            b.insert(format!("k{i:02}"), json!(i + 1));
        }
        assert_eq!(
            differences(&Value::Object(a), &Value::Object(b)).len(),
            MAX_DIFFERENCES
        );
    }
}

//! What an agent card's signature covers: the card without `signatures`,
//! canonicalized. Two forms are in use.
//!
//! - **The specification's** (A2A v1.0 §8.4): the members the v1.0 proto
//!   gives no field presence are dropped when at their default (`""`, `[]`,
//!   `{}`, `false`, `0`), as are `null` members; REQUIRED and `optional`
//!   members are kept even when empty; the rest is RFC 8785 ([`jcs`]). A
//!   v0.3 card (whose version defines no canonical form) is taken as it is.
//!   Members the proto does not know are kept, and nothing is added.
//! - **A2A's Python SDK's** (`a2a-sdk`, module `a2a.utils.signing`): empty
//!   strings, lists and objects and `null`s dropped at every depth, REQUIRED
//!   members included. The 1.x line then writes RFC 8785. The 0.3 line first
//!   drops the members equal to its pydantic models' defaults
//!   (`protocolVersion` `"0.3.0"`, `preferredTransport` `"JSONRPC"`, the
//!   `type` of each security scheme) and writes Python's
//!   `json.dumps(sort_keys=True, separators=(',', ':'))`: non-ASCII escaped
//!   as `\uXXXX`, members sorted by code point, numbers as Python reads and
//!   prints them (`1.0` stays `1.0`, `1e16` is `1e+16`). The pydantic models
//!   also drop the members they do not know; that is not reproduced here.

use super::{CardVersion, detect};
use crate::domain::jcs;
use serde_json::{Map, Value};
use std::fmt::Write;

/// Which canonical form a signature was made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanonicalForm {
    /// The A2A specification's: proto field presence, then RFC 8785.
    Jcs,
    /// The official Python SDK's (`a2a-sdk`, either line).
    A2aPython,
}

impl CanonicalForm {
    pub fn as_str(self) -> &'static str {
        match self {
            CanonicalForm::Jcs => "jcs",
            CanonicalForm::A2aPython => "a2a-python",
        }
    }
}

impl std::str::FromStr for CanonicalForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jcs" => Ok(CanonicalForm::Jcs),
            "a2a-python" => Ok(CanonicalForm::A2aPython),
            other => Err(format!("'{other}' is not jcs or a2a-python")),
        }
    }
}

/// The payload a signer of `form` signs for this card: for
/// [`CanonicalForm::A2aPython`], the 0.3 SDK's form for a v0.3 card and the
/// 1.x SDK's otherwise.
pub fn payload(card: &Value, form: CanonicalForm) -> Result<String, jcs::Error> {
    let v03 = is_v03(card);
    match form {
        CanonicalForm::Jcs => jcs::canonicalize(&specification_view(card, v03)),
        CanonicalForm::A2aPython if v03 => {
            let mut view = unsigned(card);
            drop_pydantic_defaults(&mut view);
            python_dumps(&clean_empty(view).unwrap_or(Value::Null))
        }
        CanonicalForm::A2aPython => {
            jcs::canonicalize(&clean_empty(unsigned(card)).unwrap_or(Value::Null))
        }
    }
}

/// Every payload a signature over this card may have been made over, the
/// specification's first, without repeats: the specification's form, the
/// card as it is (a signer that skipped the presence rules), the 1.x SDK's
/// form and the 0.3 SDK's form. A form the card has none of is left out.
pub fn candidates(card: &Value) -> Vec<(CanonicalForm, String)> {
    let v03 = is_v03(card);
    let cleaned = clean_empty(unsigned(card)).unwrap_or(Value::Null);
    let mut pydantic = unsigned(card);
    drop_pydantic_defaults(&mut pydantic);
    let forms = [
        (
            CanonicalForm::Jcs,
            jcs::canonicalize(&specification_view(card, v03)),
        ),
        (CanonicalForm::Jcs, jcs::canonicalize(&unsigned(card))),
        (CanonicalForm::A2aPython, jcs::canonicalize(&cleaned)),
        (
            CanonicalForm::A2aPython,
            python_dumps(&clean_empty(pydantic).unwrap_or(Value::Null)),
        ),
    ];
    let mut out: Vec<(CanonicalForm, String)> = Vec::new();
    for (form, text) in forms {
        if let Ok(text) = text
            && !out.iter().any(|(_, t)| *t == text)
        {
            out.push((form, text));
        }
    }
    out
}

fn is_v03(card: &Value) -> bool {
    card.as_object()
        .is_some_and(|c| detect(c) == Some(CardVersion::V03))
}

/// The card without its `signatures`.
fn unsigned(card: &Value) -> Value {
    let mut card = card.clone();
    if let Some(c) = card.as_object_mut() {
        c.remove("signatures");
    }
    card
}

/// The card as the specification canonicalizes it, before RFC 8785.
fn specification_view(card: &Value, v03: bool) -> Value {
    let mut view = unsigned(card);
    if !v03 && let Some(c) = view.as_object_mut() {
        apply_presence(Message::Card, c);
    }
    view
}

/// The v1.0 proto messages of a card (`lf.a2a.v1`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Message {
    Card,
    Interface,
    Provider,
    Capabilities,
    Extension,
    Scheme,
    ApiKey,
    HttpAuth,
    OAuth2,
    OpenIdConnect,
    MutualTls,
    Flows,
    AuthorizationCode,
    ClientCredentials,
    Implicit,
    Password,
    DeviceCode,
    Requirement,
    StringList,
    Skill,
}

/// How a member holds messages: one, a list, or a map's values.
enum Holds {
    Nothing,
    One(Message),
    List(Message),
    Map(Message),
}

/// Whether the member has no field presence in the v1.0 proto (neither
/// REQUIRED nor `optional`), so that it is omitted at its default.
fn implicit(message: Message, member: &str) -> bool {
    use Message::*;
    matches!(
        (message, member),
        (Card, "securitySchemes" | "securityRequirements")
            | (Interface, "tenant")
            | (Capabilities, "extensions")
            | (Extension, "uri" | "description" | "required")
            | (
                ApiKey | HttpAuth | OAuth2 | OpenIdConnect | MutualTls,
                "description"
            )
            | (HttpAuth, "bearerFormat")
            | (OAuth2, "oauth2MetadataUrl")
            | (
                AuthorizationCode | ClientCredentials | Implicit | Password | DeviceCode,
                "refreshUrl"
            )
            | (AuthorizationCode, "pkceRequired")
            | (Implicit, "authorizationUrl" | "scopes")
            | (Password, "tokenUrl" | "scopes")
            | (Requirement, "schemes")
            | (StringList, "list")
            | (
                Skill,
                "examples" | "inputModes" | "outputModes" | "securityRequirements"
            )
    )
}

/// The messages a member holds. `AgentExtension.params` is a
/// `google.protobuf.Struct`, kept as it is.
fn holds(message: Message, member: &str) -> Holds {
    use Message::*;
    match (message, member) {
        (Card, "supportedInterfaces") => Holds::List(Interface),
        (Card, "provider") => Holds::One(Provider),
        (Card, "capabilities") => Holds::One(Capabilities),
        (Card, "securitySchemes") => Holds::Map(Scheme),
        (Card | Skill, "securityRequirements") => Holds::List(Requirement),
        (Card, "skills") => Holds::List(Skill),
        (Capabilities, "extensions") => Holds::List(Extension),
        (Scheme, "apiKeySecurityScheme") => Holds::One(ApiKey),
        (Scheme, "httpAuthSecurityScheme") => Holds::One(HttpAuth),
        (Scheme, "oauth2SecurityScheme") => Holds::One(OAuth2),
        (Scheme, "openIdConnectSecurityScheme") => Holds::One(OpenIdConnect),
        (Scheme, "mtlsSecurityScheme") => Holds::One(MutualTls),
        (OAuth2, "flows") => Holds::One(Flows),
        (Flows, "authorizationCode") => Holds::One(AuthorizationCode),
        (Flows, "clientCredentials") => Holds::One(ClientCredentials),
        (Flows, "implicit") => Holds::One(Implicit),
        (Flows, "password") => Holds::One(Password),
        (Flows, "deviceCode") => Holds::One(DeviceCode),
        (Requirement, "schemes") => Holds::Map(StringList),
        _ => Holds::Nothing,
    }
}

fn is_default(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Drops what proto3 JSON would not write: `null` members, and members
/// without presence at their default.
fn apply_presence(message: Message, obj: &mut Map<String, Value>) {
    obj.retain(|member, value| {
        !(value.is_null() || (implicit(message, member) && is_default(value)))
    });
    for (member, value) in obj.iter_mut() {
        let each = |m: Message, v: &mut Value| {
            if let Some(o) = v.as_object_mut() {
                apply_presence(m, o);
            }
        };
        match (holds(message, member), value) {
            (Holds::One(m), v) => each(m, v),
            (Holds::List(m), Value::Array(items)) => items.iter_mut().for_each(|v| each(m, v)),
            (Holds::Map(m), Value::Object(entries)) => {
                entries.values_mut().for_each(|v| each(m, v))
            }
            _ => {}
        }
    }
}

/// The SDK's `_clean_empty`: empty strings, lists and objects and `null`s
/// removed, from the leaves up; `None` when nothing is left.
fn clean_empty(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(clean_empty).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(members) => {
            let members: Map<String, Value> = members
                .into_iter()
                .filter_map(|(k, v)| clean_empty(v).map(|v| (k, v)))
                .collect();
            (!members.is_empty()).then_some(Value::Object(members))
        }
        other => Some(other),
    }
}

/// What the 0.3 SDK's `model_dump(exclude_defaults=True)` leaves out: the
/// members of a v0.3 card equal to its pydantic models' defaults.
fn drop_pydantic_defaults(card: &mut Value) {
    let Some(c) = card.as_object_mut() else {
        return;
    };
    for (member, default) in [
        ("protocolVersion", "0.3.0"),
        ("preferredTransport", "JSONRPC"),
    ] {
        if c.get(member).and_then(Value::as_str) == Some(default) {
            c.remove(member);
        }
    }
    if let Some(Value::Object(schemes)) = c.get_mut("securitySchemes") {
        for scheme in schemes.values_mut().filter_map(Value::as_object_mut) {
            let literal = scheme.get("type").and_then(Value::as_str);
            if matches!(
                literal,
                Some("apiKey" | "http" | "oauth2" | "openIdConnect" | "mutualTLS")
            ) {
                scheme.remove("type");
            }
        }
    }
}

/// Python's `json.dumps(value, sort_keys=True, separators=(',', ':'))`
/// over what `json.loads` made of the card.
fn python_dumps(value: &Value) -> Result<String, jcs::Error> {
    let mut out = String::new();
    write_python(&mut out, value)?;
    Ok(out)
}

fn write_python(out: &mut String, value: &Value) -> Result<(), jcs::Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&python_number(n)?),
        Value::String(s) => write_python_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_python(out, item)?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            // Python compares strings by code point, as Rust does.
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_python_string(out, name);
                out.push(':');
                write_python(out, item)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A string as `json.dumps` writes it with `ensure_ascii`: everything
/// outside printable ASCII as `\uXXXX` (UTF-16, so a surrogate pair above
/// U+FFFF), with the five short escapes.
fn write_python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A JSON number as Python reads it (an `int` unless it has a fraction or
/// an exponent) and `repr` writes it: integers exactly, floats with their
/// shortest digits, `.0` when integral, exponents below 1e-4 and from 1e16.
fn python_number(n: &serde_json::Number) -> Result<String, jcs::Error> {
    let text = n.as_str();
    if !text.contains(['.', 'e', 'E']) {
        let digits = text.trim_start_matches('-');
        return Ok(if digits.chars().all(|c| c == '0') {
            "0".to_owned()
        } else {
            text.to_owned()
        });
    }
    let x = n
        .as_f64()
        .ok_or_else(|| jcs::Error::Number(text.to_owned()))?;
    Ok(python_float(x))
}

fn python_float(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    if x < 0.0 {
        return format!("-{}", python_float(-x));
    }
    let (digits, n) = jcs::shortest_digits(x);
    let k = digits.len() as i32;
    if n <= -4 || n > 16 {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{:02}", e.abs())
    } else if n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else if n >= k {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A2A v1.0 §8.4's example: `optional` members kept at their default,
    /// REQUIRED ones kept empty, the empty repeated `extensions` dropped.
    #[test]
    fn the_specification_example_canonicalizes_as_section_8_4_shows() {
        let card = json!({"name": "Example Agent", "description": "",
            "capabilities": {"streaming": false, "pushNotifications": false, "extensions": []},
            "skills": []});
        assert_eq!(
            payload(&card, CanonicalForm::Jcs).unwrap(),
            r#"{"capabilities":{"pushNotifications":false,"streaming":false},"description":"","name":"Example Agent","skills":[]}"#
        );
    }

    #[test]
    fn members_without_presence_are_dropped_at_their_default_at_every_depth() {
        let card = json!({
            "name": "A", "supportedInterfaces": [{"url": "https://a.example", "protocolBinding": "JSONRPC",
                                                  "protocolVersion": "1.0", "tenant": ""}],
            "iconUrl": "", "securityRequirements": [], "securitySchemes": {
                "o": {"oauth2SecurityScheme": {"description": "", "flows": {"authorizationCode": {
                    "authorizationUrl": "https://a.example/auth", "tokenUrl": "https://a.example/token",
                    "refreshUrl": "", "pkceRequired": false, "scopes": {}}}}}},
            "skills": [{"id": "s", "tags": [], "examples": [], "securityRequirements": [{"schemes": {"o": {"list": []}}}]}],
            "capabilities": {"extensions": [{"uri": "urn:x", "required": false, "params": {}}]},
            "signatures": [{"protected": "x", "signature": "y"}],
            "documentationUrl": null,
        });
        assert_eq!(
            specification_view(&card, false),
            json!({
                "name": "A", "supportedInterfaces": [{"url": "https://a.example", "protocolBinding": "JSONRPC",
                                                      "protocolVersion": "1.0"}],
                "iconUrl": "", "securitySchemes": {
                    "o": {"oauth2SecurityScheme": {"flows": {"authorizationCode": {
                        "authorizationUrl": "https://a.example/auth", "tokenUrl": "https://a.example/token",
                        "scopes": {}}}}}},
                "skills": [{"id": "s", "tags": [], "securityRequirements": [{"schemes": {"o": {}}}]}],
                "capabilities": {"extensions": [{"uri": "urn:x", "params": {}}]},
            })
        );
    }

    #[test]
    fn a_v03_card_is_canonicalized_as_it_is_written() {
        let card = json!({"protocolVersion": "0.3.0", "url": "https://a.example", "description": "",
                          "skills": [], "capabilities": {"extensions": []}});
        assert_eq!(
            payload(&card, CanonicalForm::Jcs).unwrap(),
            r#"{"capabilities":{"extensions":[]},"description":"","protocolVersion":"0.3.0","skills":[],"url":"https://a.example"}"#
        );
    }

    /// What a2a-sdk 0.3.26's `canonicalize_agent_card` printed for this
    /// card (run in the SDK's virtualenv).
    #[test]
    fn the_03_sdk_form_drops_defaults_and_empties_and_escapes_like_python() {
        let card: Value = serde_json::from_str(r#"{"protocolVersion":"0.3.0","name":"Café ☕ 😀","description":"",
            "version":"1","url":"https://x.example/a2a","preferredTransport":"JSONRPC",
            "capabilities":{"streaming":false,"extensions":[{"uri":"urn:x","params":{"a":1,"b":1.0,"c":1e16,
              "d":0.00001,"e":[],"f":"","g":null,"h":{"z":1,"ä":2,"Z":3},"i":12345678901234567890123}}]},
            "defaultInputModes":["text"],"defaultOutputModes":["text"],
            "securitySchemes":{"k":{"type":"apiKey","name":"X","in":"header"}},"security":[{"k":[]}],
            "skills":[{"id":"s","name":"S","description":"d","tags":["t"],"examples":[]}]}"#).unwrap();
        assert_eq!(
            payload(&card, CanonicalForm::A2aPython).unwrap(),
            r#"{"capabilities":{"extensions":[{"params":{"a":1,"b":1.0,"c":1e+16,"d":1e-05,"h":{"Z":3,"z":1,"\u00e4":2},"i":12345678901234567890123},"uri":"urn:x"}],"streaming":false},"defaultInputModes":["text"],"defaultOutputModes":["text"],"name":"Caf\u00e9 \u2615 \ud83d\ude00","securitySchemes":{"k":{"in":"header","name":"X"}},"skills":[{"description":"d","id":"s","name":"S","tags":["t"]}],"url":"https://x.example/a2a","version":"1"}"#
        );
    }

    /// What a2a-sdk 1.3.0's `_canonicalize_agent_card` printed for this
    /// card (its struct numbers are doubles, written as RFC 8785 does).
    #[test]
    fn the_1x_sdk_form_drops_empties_and_writes_rfc_8785() {
        let card: Value = serde_json::from_str(r#"{"name":"Café ☕ 😀","description":"","version":"1",
            "supportedInterfaces":[{"url":"https://x.example/a2a","protocolBinding":"JSONRPC","protocolVersion":"1.0","tenant":""}],
            "capabilities":{"streaming":false,"extensions":[{"uri":"urn:x","params":{"a":1,"b":1.0,"c":1e16,
              "d":0.00001,"e":[],"f":"","g":null,"h":{"z":1,"ä":2,"Z":3},"i":[null,1]}}]},
            "defaultInputModes":["text"],"defaultOutputModes":["text"],"iconUrl":"",
            "securitySchemes":{"k":{"apiKeySecurityScheme":{"name":"X","location":"header"}}},
            "securityRequirements":[{"schemes":{"k":{"list":[]}}}],
            "skills":[{"id":"s","name":"S","description":"d","tags":["t"],"examples":[]}]}"#).unwrap();
        assert_eq!(
            payload(&card, CanonicalForm::A2aPython).unwrap(),
            r#"{"capabilities":{"extensions":[{"params":{"a":1,"b":1,"c":10000000000000000,"d":0.00001,"h":{"Z":3,"z":1,"ä":2},"i":[1]},"uri":"urn:x"}],"streaming":false},"defaultInputModes":["text"],"defaultOutputModes":["text"],"name":"Café ☕ 😀","securitySchemes":{"k":{"apiKeySecurityScheme":{"location":"header","name":"X"}}},"skills":[{"description":"d","id":"s","name":"S","tags":["t"]}],"supportedInterfaces":[{"protocolBinding":"JSONRPC","protocolVersion":"1.0","url":"https://x.example/a2a"}],"version":"1"}"#
        );
    }

    #[test]
    fn python_floats_are_written_as_repr_writes_them() {
        for (x, expected) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (123.456, "123.456"),
            // 1424953923781206.25, a tie between two 17-digit candidates
            (f64::from_bits(0x43143ff3c1cb0959), "1424953923781206.2"),
        ] {
            assert_eq!(python_float(x), expected, "{x:e}");
        }
    }

    #[test]
    fn candidates_list_each_payload_once_the_specifications_first() {
        let plain = json!({"name": "A", "supportedInterfaces": [{"url": "https://a.example",
                           "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]});
        let forms: Vec<CanonicalForm> = candidates(&plain).into_iter().map(|(f, _)| f).collect();
        assert_eq!(forms, [CanonicalForm::Jcs]);
        let mut fancy = plain.clone();
        fancy["description"] = json!("Café");
        fancy["skills"] = json!([]);
        let forms: Vec<CanonicalForm> = candidates(&fancy).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            forms,
            [
                CanonicalForm::Jcs,
                CanonicalForm::A2aPython,
                CanonicalForm::A2aPython
            ]
        );
    }
}

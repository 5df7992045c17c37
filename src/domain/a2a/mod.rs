//! A2A agent cards, v0.3.0 and v1.0: which version a card is, what is wrong
//! with it (each problem a JSON pointer and a message), and the conversion
//! of a v0.3 card to the v1.0 shape. Pure functions over JSON.
//!
//! The rules follow the A2A specification of each version (v0.3.0's JSON
//! schema, v1.0's proto): required members, member types, URLs, security
//! schemes and requirements, skills, interfaces and transports.
//!
//! Signatures: what a card's signature covers ([`canonical`]), and checking
//! and making them against trusted keys ([`signature`]).

pub mod canonical;
pub mod drift;
pub mod settings;
pub mod signature;

use serde_json::{Map, Value, json};
use signature::{SignatureCheck, TrustStore};

/// How strictly the cards a tenant registers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationMode {
    /// Cards are kept as sent, unchecked (Graph's behaviour).
    #[default]
    Off,
    /// Cards are checked and kept; what is wrong is reported.
    Warn,
    /// A card with a problem is refused (400, every problem listed).
    Require,
}

impl std::str::FromStr for ValidationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ValidationMode::Off),
            "warn" => Ok(ValidationMode::Warn),
            "require" => Ok(ValidationMode::Require),
            other => Err(format!("'{other}' is not off, warn or require")),
        }
    }
}

/// The annotation a checked card's entity carries.
pub const ANNOTATION: &str = "@agentry.cardValidation";

/// The annotation of a card whose signatures were checked.
pub const SIGNATURE_ANNOTATION: &str = "@agentry.cardSignature";

/// Whether the signatures of the cards a tenant registers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMode {
    /// Not checked (Graph's behaviour).
    #[default]
    Off,
    /// A signed card must verify; an unsigned one is accepted.
    VerifyIfPresent,
    /// Every card must carry a signature that verifies.
    Require,
}

impl std::str::FromStr for SignatureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(SignatureMode::Off),
            "verify-if-present" => Ok(SignatureMode::VerifyIfPresent),
            "require" => Ok(SignatureMode::Require),
            other => Err(format!(
                "'{other}' is not off, verify-if-present or require"
            )),
        }
    }
}

/// How registered cards' signatures are checked: the mode and the keys
/// the operator trusts.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    pub mode: SignatureMode,
    pub trust: std::sync::Arc<TrustStore>,
}

/// Checks the signatures of a registration's `agentCard` as `policy` says:
/// records the outcome as [`SIGNATURE_ANNOTATION`], and refuses the card
/// when the mode requires a verified signature (`require`) or a signed
/// card fails to verify (`verify-if-present`, `require`).
pub fn check_registration_signatures(
    doc: &mut Map<String, Value>,
    policy: Option<&SignaturePolicy>,
    now: &str,
) -> Result<(), super::DomainError> {
    let card = doc.get("agentCard").filter(|c| c.is_object());
    let (policy, card) = match (policy, card) {
        (Some(p), Some(card)) if p.mode != SignatureMode::Off => (p, card),
        _ => {
            doc.remove(SIGNATURE_ANNOTATION);
            return Ok(());
        }
    };
    let now =
        crate::odata::edm::parse_date_time_offset(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let check = signature::verify(card, &policy.trust, now);
    let accepted = matches!(
        (&check, policy.mode),
        (SignatureCheck::Verified { .. }, _)
            | (SignatureCheck::Unsigned, SignatureMode::VerifyIfPresent)
    );
    let refused = !accepted;
    if refused {
        return Err(super::DomainError::UntrustedAgentCard(check.to_string()));
    }
    doc.insert(SIGNATURE_ANNOTATION.to_owned(), signature_json(&check));
    Ok(())
}

/// `{"result": "verified", "kid": …, "form": …}`, `{"result": "unsigned"}`.
fn signature_json(check: &SignatureCheck) -> Value {
    match check {
        SignatureCheck::Verified { kid, form } => {
            json!({"result": "verified", "kid": kid, "form": form.as_str()})
        }
        SignatureCheck::Unsigned => json!({"result": "unsigned"}),
        SignatureCheck::Invalid { reason } => json!({"result": "invalid", "reason": reason}),
        SignatureCheck::UntrustedKey { kid } => json!({"result": "untrusted-key", "kid": kid}),
        SignatureCheck::ExpiredKey { kid } => json!({"result": "expired-key", "kid": kid}),
        SignatureCheck::RevokedKey { kid } => json!({"result": "revoked-key", "kid": kid}),
    }
}

/// Checks the `agentCard` of a registration document being written, as
/// `mode` says: records the result as [`ANNOTATION`] (`warn`, `require`),
/// or refuses an invalid card (`require`). No card, or `off`: no annotation.
pub fn check_registration_card(
    doc: &mut Map<String, Value>,
    mode: ValidationMode,
) -> Result<(), super::DomainError> {
    let card = doc.get("agentCard").filter(|c| !c.is_null());
    let report = match (mode, card) {
        (ValidationMode::Off, _) | (_, None) => {
            doc.remove(ANNOTATION);
            return Ok(());
        }
        (_, Some(card)) => validate(card),
    };
    if mode == ValidationMode::Require && !report.is_valid() {
        return Err(super::DomainError::InvalidAgentCard {
            version: report.version.map_or("0.3 or 1.0", CardVersion::as_str),
            problems: report.problems,
        });
    }
    doc.insert(ANNOTATION.to_owned(), report.to_json());
    Ok(())
}

/// The A2A versions Agentry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardVersion {
    V03,
    V10,
}

impl CardVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CardVersion::V03 => "0.3",
            CardVersion::V10 => "1.0",
        }
    }
}

/// One thing wrong with a card: where (RFC 6901 pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

/// What validation found: the version (when the card says) and every problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardReport {
    pub version: Option<CardVersion>,
    pub problems: Vec<Problem>,
}

impl CardReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// The `@agentry.cardValidation` annotation.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version.map(CardVersion::as_str),
            "valid": self.is_valid(),
            "problems": self.problems.iter().map(|p| json!({"pointer": p.pointer, "message": p.message})).collect::<Vec<_>>(),
        })
    }
}

/// The version a card is written in: v1.0 cards list `supportedInterfaces`;
/// v0.3 cards carry `url` and `protocolVersion` at the top.
pub fn detect(card: &Map<String, Value>) -> Option<CardVersion> {
    if card.contains_key("supportedInterfaces") {
        Some(CardVersion::V10)
    } else if [
        "url",
        "protocolVersion",
        "preferredTransport",
        "additionalInterfaces",
    ]
    .iter()
    .any(|k| card.contains_key(*k))
    {
        Some(CardVersion::V03)
    } else {
        None
    }
}

/// Validates a card against the A2A version it is written in.
pub fn validate(card: &Value) -> CardReport {
    let mut v = Checker::default();
    let Some(card) = card.as_object() else {
        v.problem("", "an agent card must be a JSON object");
        return CardReport {
            version: None,
            problems: v.problems,
        };
    };
    let version = detect(card);
    match version {
        None => v.problem(
            "",
            "not an A2A agent card: it has neither 'supportedInterfaces' (1.0) nor 'url' and 'protocolVersion' (0.3)",
        ),
        Some(version) => v.card(card, version),
    }
    CardReport {
        version,
        problems: v.problems,
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Checker {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            pointer: pointer.to_owned(),
            message: message.into(),
        });
    }

    /// A member of an object, by kind; `required` members must be present.
    fn member<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        at: &str,
        key: &str,
        kind: Kind,
        required: bool,
    ) -> Option<&'a Value> {
        let pointer = format!("{at}/{}", escape(key));
        match obj.get(key) {
            None | Some(Value::Null) if required => {
                self.problem(&pointer, format!("'{key}' is required"));
                None
            }
            None | Some(Value::Null) => None,
            Some(value) => {
                if let Some(message) = kind.check(value) {
                    self.problem(&pointer, format!("'{key}' {message}"));
                    None
                } else {
                    Some(value)
                }
            }
        }
    }

    fn card(&mut self, card: &Map<String, Value>, version: CardVersion) {
        use Kind::*;
        self.member(card, "", "name", Text, true);
        self.member(card, "", "description", Text, true);
        self.member(card, "", "version", Text, true);
        self.member(card, "", "iconUrl", Url, false);
        self.member(card, "", "documentationUrl", Url, false);
        self.member(card, "", "defaultInputModes", Texts, true);
        self.member(card, "", "defaultOutputModes", Texts, true);
        if let Some(Value::Object(p)) = self.member(card, "", "provider", Object, false) {
            self.member(p, "/provider", "organization", Text, true);
            self.member(p, "/provider", "url", Url, true);
        }
        if let Some(Value::Object(c)) = self.member(card, "", "capabilities", Object, true) {
            self.capabilities(c, version);
        }
        let schemes: Vec<String> = match self.member(card, "", "securitySchemes", Object, false) {
            Some(Value::Object(s)) => {
                for (name, scheme) in s {
                    let at = format!("/securitySchemes/{}", escape(name));
                    self.scheme(scheme, &at, version);
                }
                s.keys().cloned().collect()
            }
            _ => Vec::new(),
        };
        let requirements = match version {
            CardVersion::V03 => "security",
            CardVersion::V10 => "securityRequirements",
        };
        self.requirements(card, "", requirements, version, &schemes);
        if let Some(Value::Array(skills)) = self.member(card, "", "skills", Array, true) {
            for (n, skill) in skills.iter().enumerate() {
                self.skill(skill, &format!("/skills/{n}"), version, &schemes);
            }
        }
        if let Some(Value::Array(signatures)) = self.member(card, "", "signatures", Array, false) {
            for (n, s) in signatures.iter().enumerate() {
                let at = format!("/signatures/{n}");
                let Some(s) = self.object(s, &at) else {
                    continue;
                };
                self.member(s, &at, "protected", Text, true);
                self.member(s, &at, "signature", Text, true);
                self.member(s, &at, "header", Object, false);
            }
        }
        match version {
            CardVersion::V03 => {
                self.member(card, "", "protocolVersion", Text, true);
                self.member(card, "", "url", Url, true);
                self.member(card, "", "preferredTransport", Text, false);
                self.member(card, "", "supportsAuthenticatedExtendedCard", Bool, false);
                if let Some(Value::Array(list)) =
                    self.member(card, "", "additionalInterfaces", Array, false)
                {
                    for (n, i) in list.iter().enumerate() {
                        let at = format!("/additionalInterfaces/{n}");
                        if let Some(i) = self.object(i, &at) {
                            self.member(i, &at, "url", Url, true);
                            self.member(i, &at, "transport", Text, true);
                        }
                    }
                }
            }
            CardVersion::V10 => {
                for old in [
                    "url",
                    "protocolVersion",
                    "preferredTransport",
                    "additionalInterfaces",
                    "supportsAuthenticatedExtendedCard",
                    "security",
                ] {
                    if card.contains_key(old) {
                        self.problem(
                            &format!("/{old}"),
                            format!("'{old}' is a v0.3 member; a v1.0 card does not have it"),
                        );
                    }
                }
                if let Some(Value::Array(list)) =
                    self.member(card, "", "supportedInterfaces", Array, true)
                {
                    if list.is_empty() {
                        self.problem("/supportedInterfaces", "at least one interface is required");
                    }
                    for (n, i) in list.iter().enumerate() {
                        let at = format!("/supportedInterfaces/{n}");
                        if let Some(i) = self.object(i, &at) {
                            self.member(i, &at, "url", Text, true);
                            self.member(i, &at, "protocolBinding", Text, true);
                            self.member(i, &at, "protocolVersion", Text, true);
                            self.member(i, &at, "tenant", Text, false);
                        }
                    }
                }
            }
        }
    }

    fn object<'a>(&mut self, value: &'a Value, at: &str) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m),
            _ => {
                self.problem(at, "must be an object");
                None
            }
        }
    }

    fn capabilities(&mut self, c: &Map<String, Value>, version: CardVersion) {
        use Kind::*;
        let at = "/capabilities";
        self.member(c, at, "streaming", Bool, false);
        self.member(c, at, "pushNotifications", Bool, false);
        match version {
            CardVersion::V03 => {
                self.member(c, at, "stateTransitionHistory", Bool, false);
            }
            CardVersion::V10 => {
                self.member(c, at, "extendedAgentCard", Bool, false);
                if c.contains_key("stateTransitionHistory") {
                    self.problem(
                        "/capabilities/stateTransitionHistory",
                        "'stateTransitionHistory' was removed in v1.0",
                    );
                }
            }
        }
        if let Some(Value::Array(list)) = self.member(c, at, "extensions", Array, false) {
            for (n, e) in list.iter().enumerate() {
                let at = format!("{at}/extensions/{n}");
                if let Some(e) = self.object(e, &at) {
                    self.member(e, &at, "uri", Text, true);
                    self.member(e, &at, "description", Text, false);
                    self.member(e, &at, "required", Bool, false);
                    self.member(e, &at, "params", Object, false);
                }
            }
        }
    }

    fn skill(&mut self, skill: &Value, at: &str, version: CardVersion, schemes: &[String]) {
        use Kind::*;
        let Some(s) = self.object(skill, at) else {
            return;
        };
        self.member(s, at, "id", Text, true);
        self.member(s, at, "name", Text, true);
        self.member(s, at, "description", Text, true);
        self.member(s, at, "tags", Texts, true);
        self.member(s, at, "examples", Texts, false);
        self.member(s, at, "inputModes", Texts, false);
        self.member(s, at, "outputModes", Texts, false);
        let requirements = match version {
            CardVersion::V03 => "security",
            CardVersion::V10 => "securityRequirements",
        };
        self.requirements(s, at, requirements, version, schemes);
    }

    /// Security requirements: each names declared schemes and lists scopes.
    fn requirements(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        key: &str,
        version: CardVersion,
        schemes: &[String],
    ) {
        let Some(Value::Array(list)) = self.member(obj, at, key, Kind::Array, false) else {
            return;
        };
        for (n, r) in list.iter().enumerate() {
            let at = format!("{at}/{key}/{n}");
            let Some(r) = self.object(r, &at) else {
                continue;
            };
            let (named, at) = match version {
                CardVersion::V03 => (Some(r), at),
                CardVersion::V10 => match self.member(r, &at, "schemes", Kind::Object, true) {
                    Some(Value::Object(m)) => (Some(m), format!("{at}/schemes")),
                    _ => (None, at),
                },
            };
            for (name, scopes) in named.into_iter().flatten() {
                let here = format!("{at}/{}", escape(name));
                if !schemes.contains(name) {
                    self.problem(
                        &here,
                        format!("'{name}' is not one of the card's securitySchemes"),
                    );
                }
                let scopes = match version {
                    CardVersion::V03 => Some(scopes),
                    CardVersion::V10 => scopes.as_object().and_then(|o| o.get("list")),
                };
                if scopes.is_none_or(|s| Kind::Texts.check(s).is_some()) {
                    let what = match version {
                        CardVersion::V03 => "must be a list of scopes (strings)",
                        CardVersion::V10 => "must be {\"list\": [scopes]}",
                    };
                    self.problem(&here, what);
                }
            }
        }
    }

    fn scheme(&mut self, scheme: &Value, at: &str, version: CardVersion) {
        use Kind::*;
        let Some(s) = self.object(scheme, at) else {
            return;
        };
        match version {
            CardVersion::V03 => {
                let kind = s.get("type").and_then(Value::as_str);
                self.member(s, at, "description", Text, false);
                match kind {
                    Some("apiKey") => {
                        self.member(s, at, "name", Text, true);
                        self.location(s, at, "in");
                    }
                    Some("http") => {
                        self.member(s, at, "scheme", Text, true);
                        self.member(s, at, "bearerFormat", Text, false);
                    }
                    Some("oauth2") => {
                        self.member(s, at, "oauth2MetadataUrl", Url, false);
                        if let Some(Value::Object(f)) = self.member(s, at, "flows", Object, true) {
                            self.flows(f, &format!("{at}/flows"), version);
                        }
                    }
                    Some("openIdConnect") => {
                        self.member(s, at, "openIdConnectUrl", Url, true);
                    }
                    Some("mutualTLS") => {}
                    Some(other) => self.problem(
                        &format!("{at}/type"),
                        format!("'{other}' is not a security scheme type (apiKey, http, oauth2, openIdConnect, mutualTLS)"),
                    ),
                    None => self.problem(&format!("{at}/type"), "'type' is required"),
                }
            }
            CardVersion::V10 => {
                const KINDS: [&str; 5] = [
                    "apiKeySecurityScheme",
                    "httpAuthSecurityScheme",
                    "oauth2SecurityScheme",
                    "openIdConnectSecurityScheme",
                    "mtlsSecurityScheme",
                ];
                let present: Vec<&str> = KINDS
                    .iter()
                    .copied()
                    .filter(|k| s.contains_key(*k))
                    .collect();
                if let Some(unknown) = s.keys().find(|k| !KINDS.contains(&k.as_str())) {
                    self.problem(
                        &format!("{at}/{}", escape(unknown)),
                        format!("'{unknown}' is not a security scheme member"),
                    );
                }
                let [kind] = present.as_slice() else {
                    self.problem(at, "a security scheme holds exactly one of apiKeySecurityScheme, httpAuthSecurityScheme, oauth2SecurityScheme, openIdConnectSecurityScheme, mtlsSecurityScheme");
                    return;
                };
                let Some(Value::Object(inner)) = self.member(s, at, kind, Object, true) else {
                    return;
                };
                let at = format!("{at}/{kind}");
                self.member(inner, &at, "description", Text, false);
                match *kind {
                    "apiKeySecurityScheme" => {
                        self.member(inner, &at, "name", Text, true);
                        self.location(inner, &at, "location");
                    }
                    "httpAuthSecurityScheme" => {
                        self.member(inner, &at, "scheme", Text, true);
                        self.member(inner, &at, "bearerFormat", Text, false);
                    }
                    "oauth2SecurityScheme" => {
                        self.member(inner, &at, "oauth2MetadataUrl", Url, false);
                        if let Some(Value::Object(f)) =
                            self.member(inner, &at, "flows", Object, true)
                        {
                            self.flows(f, &format!("{at}/flows"), version);
                        }
                    }
                    "openIdConnectSecurityScheme" => {
                        self.member(inner, &at, "openIdConnectUrl", Url, true);
                    }
                    _ => {}
                }
            }
        }
    }

    fn location(&mut self, s: &Map<String, Value>, at: &str, key: &str) {
        if let Some(Value::String(l)) = self.member(s, at, key, Kind::Text, true)
            && !["query", "header", "cookie"].contains(&l.as_str())
        {
            self.problem(
                &format!("{at}/{key}"),
                format!("'{l}' is not a location (query, header, cookie)"),
            );
        }
    }

    fn flows(&mut self, f: &Map<String, Value>, at: &str, version: CardVersion) {
        use Kind::*;
        let mut known = vec![
            "authorizationCode",
            "clientCredentials",
            "implicit",
            "password",
        ];
        if version == CardVersion::V10 {
            known.push("deviceCode");
        }
        let present: Vec<&str> = known
            .iter()
            .copied()
            .filter(|k| f.contains_key(*k))
            .collect();
        if let Some(unknown) = f.keys().find(|k| !known.contains(&k.as_str())) {
            self.problem(
                &format!("{at}/{}", escape(unknown)),
                format!("'{unknown}' is not an OAuth flow"),
            );
        }
        if present.is_empty() {
            self.problem(at, "at least one OAuth flow is required");
        }
        if version == CardVersion::V10 && present.len() > 1 {
            self.problem(at, "a v1.0 card names exactly one OAuth flow");
        }
        for flow in present {
            let Some(Value::Object(o)) = self.member(f, at, flow, Object, true) else {
                continue;
            };
            let at = format!("{at}/{flow}");
            let (auth, token, device) = match flow {
                "authorizationCode" => (true, true, false),
                "clientCredentials" | "password" => (false, true, false),
                "implicit" => (true, false, false),
                _ => (false, true, true),
            };
            self.member(o, &at, "authorizationUrl", Url, auth);
            self.member(o, &at, "tokenUrl", Url, token);
            self.member(o, &at, "deviceAuthorizationUrl", Url, device);
            self.member(o, &at, "refreshUrl", Url, false);
            if let Some(Value::Object(scopes)) = self.member(o, &at, "scopes", Object, true) {
                for (name, text) in scopes {
                    if !text.is_string() {
                        self.problem(
                            &format!("{at}/scopes/{}", escape(name)),
                            "a scope's description must be a string",
                        );
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// An absolute `http` or `https` URL.
    Url,
    Bool,
    Object,
    Array,
    /// An array of strings.
    Texts,
}

impl Kind {
    /// Why `value` is not of this kind, if it is not.
    fn check(self, value: &Value) -> Option<&'static str> {
        match self {
            Kind::Text => (!value.is_string()).then_some("must be a string"),
            Kind::Bool => (!value.is_boolean()).then_some("must be true or false"),
            Kind::Object => (!value.is_object()).then_some("must be an object"),
            Kind::Array => (!value.is_array()).then_some("must be an array"),
            Kind::Texts => match value {
                Value::Array(items) if items.iter().all(Value::is_string) => None,
                _ => Some("must be an array of strings"),
            },
            Kind::Url => match value.as_str() {
                None => Some("must be a string"),
                Some(u) if is_http_url(u) => None,
                Some(_) => Some("must be an absolute http or https URL"),
            },
        }
    }
}

fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// A v0.3 card in the v1.0 shape (the conversion A2A's own SDK applies):
/// the extended-card flag moves into `capabilities`, `url` and the
/// additional interfaces become `supportedInterfaces` (the preferred
/// first), `security` becomes `securityRequirements`, and each security
/// scheme's `type` becomes its wrapper member. A v1.0 card is returned as
/// it is.
pub fn to_v1(card: &Value) -> Value {
    let Some(obj) = card.as_object() else {
        return card.clone();
    };
    if detect(obj) != Some(CardVersion::V03) {
        return card.clone();
    }
    let mut out = obj.clone();
    let version = out
        .remove("protocolVersion")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "0.3.0".to_owned());
    if out.remove("supportsAuthenticatedExtendedCard") == Some(Value::Bool(true)) {
        let caps = out.entry("capabilities").or_insert_with(|| json!({}));
        if let Some(c) = caps.as_object_mut() {
            c.insert("extendedAgentCard".into(), Value::Bool(true));
        }
    }
    if let Some(c) = out.get_mut("capabilities").and_then(Value::as_object_mut) {
        c.remove("stateTransitionHistory");
    }
    let binding = out
        .remove("preferredTransport")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "JSONRPC".to_owned());
    let mut interfaces = Vec::new();
    if let Some(url) = out.remove("url") {
        interfaces
            .push(json!({"url": url, "protocolBinding": binding, "protocolVersion": version}));
    }
    if let Some(Value::Array(extra)) = out.remove("additionalInterfaces") {
        for i in extra {
            interfaces.push(json!({
                "url": i.get("url").cloned().unwrap_or(Value::Null),
                "protocolBinding": i.get("transport").cloned().unwrap_or(Value::Null),
                "protocolVersion": version,
            }));
        }
    }
    out.insert("supportedInterfaces".into(), Value::Array(interfaces));
    if let Some(security) = out.remove("security") {
        out.insert("securityRequirements".into(), requirements_to_v1(security));
    }
    if let Some(Value::Array(skills)) = out.get_mut("skills") {
        for skill in skills.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(security) = skill.remove("security") {
                skill.insert("securityRequirements".into(), requirements_to_v1(security));
            }
        }
    }
    if let Some(Value::Object(schemes)) = out.get_mut("securitySchemes") {
        for scheme in schemes.values_mut() {
            let Some(mut s) = scheme.as_object().cloned() else {
                continue;
            };
            let wrapper = match s.remove("type").as_ref().and_then(Value::as_str) {
                Some("apiKey") => "apiKeySecurityScheme",
                Some("http") => "httpAuthSecurityScheme",
                Some("oauth2") => "oauth2SecurityScheme",
                Some("openIdConnect") => "openIdConnectSecurityScheme",
                Some("mutualTLS") => "mtlsSecurityScheme",
                _ => continue,
            };
            if let Some(location) = s.remove("in") {
                s.insert("location".into(), location);
            }
            *scheme = json!({ wrapper: s });
        }
    }
    Value::Object(out)
}

/// A v1.0 card in the v0.3 shape, for clients that ask for it: the first
/// supported interface becomes `url`, `preferredTransport` and
/// `protocolVersion`, the others `additionalInterfaces`, and security
/// goes back as [`to_v1`] brought it. What v0.3 has no place for (an
/// interface's tenant, a later protocol version of the others) is
/// dropped. A v0.3 card is returned as it is.
pub fn to_v03(card: &Value) -> Value {
    let Some(obj) = card.as_object() else {
        return card.clone();
    };
    if detect(obj) != Some(CardVersion::V10) {
        return card.clone();
    }
    let mut out = obj.clone();
    let interfaces = match out.remove("supportedInterfaces") {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    let field = |i: &Value, name: &str| i.get(name).cloned().unwrap_or(Value::Null);
    let mut first = true;
    let mut additional = Vec::new();
    for i in &interfaces {
        if first {
            first = false;
            out.insert("url".into(), field(i, "url"));
            out.insert("preferredTransport".into(), field(i, "protocolBinding"));
            let version = i
                .get("protocolVersion")
                .filter(|v| v.as_str().is_some_and(|s| s.starts_with("0.3")))
                .cloned()
                .unwrap_or_else(|| "0.3.0".into());
            out.insert("protocolVersion".into(), version);
        } else {
            additional
                .push(json!({"url": field(i, "url"), "transport": field(i, "protocolBinding")}));
        }
    }
    out.entry("protocolVersion")
        .or_insert_with(|| "0.3.0".into());
    if !additional.is_empty() {
        out.insert("additionalInterfaces".into(), Value::Array(additional));
    }
    if let Some(caps) = out.get_mut("capabilities").and_then(Value::as_object_mut)
        && caps.remove("extendedAgentCard") == Some(Value::Bool(true))
    {
        out.insert(
            "supportsAuthenticatedExtendedCard".into(),
            Value::Bool(true),
        );
    }
    if let Some(requirements) = out.remove("securityRequirements") {
        out.insert("security".into(), requirements_to_v03(requirements));
    }
    if let Some(Value::Array(skills)) = out.get_mut("skills") {
        for skill in skills.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(requirements) = skill.remove("securityRequirements") {
                skill.insert("security".into(), requirements_to_v03(requirements));
            }
        }
    }
    if let Some(Value::Object(schemes)) = out.get_mut("securitySchemes") {
        for scheme in schemes.values_mut() {
            let Some((wrapper, Value::Object(inner))) = scheme
                .as_object()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.iter().next())
            else {
                continue;
            };
            let ty = match wrapper.as_str() {
                "apiKeySecurityScheme" => "apiKey",
                "httpAuthSecurityScheme" => "http",
                "oauth2SecurityScheme" => "oauth2",
                "openIdConnectSecurityScheme" => "openIdConnect",
                "mtlsSecurityScheme" => "mutualTLS",
                _ => continue,
            };
            let mut s = Map::new();
            s.insert("type".into(), ty.into());
            for (k, v) in inner {
                s.insert(
                    if k == "location" {
                        "in".into()
                    } else {
                        k.clone()
                    },
                    v.clone(),
                );
            }
            *scheme = Value::Object(s);
        }
    }
    Value::Object(out)
}

fn requirements_to_v03(requirements: Value) -> Value {
    let Value::Array(list) = requirements else {
        return requirements;
    };
    Value::Array(
        list.into_iter()
            .map(|r| match r.get("schemes") {
                Some(Value::Object(schemes)) => Value::Object(
                    schemes
                        .iter()
                        .map(|(name, s)| {
                            (name.clone(), s.get("list").cloned().unwrap_or(json!([])))
                        })
                        .collect(),
                ),
                _ => r,
            })
            .collect(),
    )
}

fn requirements_to_v1(security: Value) -> Value {
    let Value::Array(list) = security else {
        return security;
    };
    Value::Array(
        list.into_iter()
            .map(|r| match r {
                Value::Object(m) => {
                    let schemes: Map<String, Value> = m
                        .into_iter()
                        .map(|(name, scopes)| (name, json!({ "list": scopes })))
                        .collect();
                    json!({ "schemes": schemes })
                }
                other => other,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_card_converted_back_to_v03_is_the_v03_card_it_came_from() {
        let mut original = v03();
        // What v1.0 has no place for, and so cannot come back.
        original["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("stateTransitionHistory");
        let back = to_v03(&to_v1(&original));
        assert_eq!(back, original);
        assert_eq!(validate(&back).problems, Vec::new());
        assert_eq!(to_v03(&original), original, "a v0.3 card stays as it is");
    }

    fn v03() -> Value {
        json!({
            "protocolVersion": "0.3.0",
            "name": "Travel", "description": "Books trips", "version": "1.0.0",
            "url": "https://travel.example/a2a", "preferredTransport": "JSONRPC",
            "additionalInterfaces": [{"url": "https://travel.example/grpc", "transport": "GRPC"}],
            "capabilities": {"streaming": true, "stateTransitionHistory": false},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "supportsAuthenticatedExtendedCard": true,
            "securitySchemes": {
                "key": {"type": "apiKey", "name": "X-Key", "in": "header"},
                "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://id.example/.well-known/openid-configuration"}
            },
            "security": [{"oidc": ["openid"]}],
            "skills": [{"id": "book", "name": "Book", "description": "Books", "tags": ["travel"],
                        "security": [{"key": []}]}]
        })
    }

    fn pointers(report: &CardReport) -> Vec<&str> {
        report.problems.iter().map(|p| p.pointer.as_str()).collect()
    }

    #[test]
    fn a_complete_v03_card_is_valid_and_its_v1_form_is_valid_too() {
        let report = validate(&v03());
        assert_eq!(report.version, Some(CardVersion::V03));
        assert!(report.is_valid(), "{:?}", report.problems);
        let v1 = to_v1(&v03());
        let report = validate(&v1);
        assert_eq!(report.version, Some(CardVersion::V10));
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!(v1["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
        assert_eq!(v1["supportedInterfaces"][1]["protocolBinding"], "GRPC");
        assert_eq!(v1["supportedInterfaces"][1]["protocolVersion"], "0.3.0");
        assert_eq!(v1["capabilities"]["extendedAgentCard"], true);
        assert_eq!(
            v1["securitySchemes"]["key"]["apiKeySecurityScheme"]["location"],
            "header"
        );
        assert_eq!(
            v1["securityRequirements"][0]["schemes"]["oidc"]["list"][0],
            "openid"
        );
        assert_eq!(
            v1["skills"][0]["securityRequirements"][0]["schemes"]["key"]["list"],
            json!([])
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let mut card = v03();
        card.as_object_mut().unwrap().remove("name");
        card["url"] = json!("ftp://nope");
        card["skills"][0]["tags"] = json!("travel");
        card["securitySchemes"]["key"]["in"] = json!("body");
        card["security"] = json!([{"missing": []}]);
        let report = validate(&card);
        assert_eq!(
            pointers(&report),
            [
                "/name",
                "/securitySchemes/key/in",
                "/security/0/missing",
                "/skills/0/tags",
                "/url"
            ]
        );
    }

    #[test]
    fn a_v1_card_takes_no_v03_members_and_one_wrapper_per_scheme() {
        let mut card = to_v1(&v03());
        card["url"] = json!("https://x.example");
        card["securitySchemes"]["key"] = json!({"apiKeySecurityScheme": {"name": "k", "location": "header"},
                                                "httpAuthSecurityScheme": {"scheme": "bearer"}});
        card["supportedInterfaces"][0]
            .as_object_mut()
            .unwrap()
            .remove("protocolBinding");
        let report = validate(&card);
        assert_eq!(
            pointers(&report),
            [
                "/securitySchemes/key",
                "/url",
                "/supportedInterfaces/0/protocolBinding"
            ]
        );
    }

    #[test]
    fn json_that_is_no_card_says_so() {
        assert_eq!(pointers(&validate(&json!({"name": "x"}))), [""]);
        assert_eq!(validate(&json!([1])).version, None);
        assert_eq!(pointers(&validate(&json!("card"))), [""]);
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let mut card = v03();
        card["securitySchemes"]["a/b~c"] = json!({"type": "magic"});
        let report = validate(&card);
        assert_eq!(pointers(&report), ["/securitySchemes/a~1b~0c/type"]);
    }

    /// The corpus of `tests/a2a/`: each card's name says what the A2A
    /// specification makes of it (`v03-valid-…`, `v10-invalid-…`), and
    /// `expected.json` what A2A's Python SDK makes of it. Agentry agrees
    /// with the specification on every card, so it refuses everything the
    /// SDK refuses; where the SDK accepts an invalid card, `expected.json`
    /// says why (its models fill defaults and skip required checks).
    #[test]
    fn the_corpus_is_judged_as_the_specification_says_and_never_more_leniently_than_the_sdk() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a2a");
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let mut checked = 0;
        for entry in std::fs::read_dir(dir.join("cards")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let card: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let report = validate(&card);
            let spec_valid = name.contains("-valid-");
            assert_eq!(
                report.is_valid(),
                spec_valid,
                "{name}: {:?}",
                report.problems
            );
            if spec_valid {
                let version = if name.starts_with("v03") {
                    CardVersion::V03
                } else {
                    CardVersion::V10
                };
                assert_eq!(report.version, Some(version), "{name}");
            }
            let sdk = &expected[&name];
            assert!(sdk.is_object(), "{name} is not in expected.json");
            if sdk["sdk_valid"] == false {
                assert!(!report.is_valid(), "{name}: the SDK refuses it");
            } else if !spec_valid {
                assert!(
                    sdk["why"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("sdk lenient"),
                    "{name}: accepted by the SDK without a reason"
                );
            }
            checked += 1;
        }
        assert!(checked > 60, "{checked} cards");
    }
}

//! Fault rules of the control plane (`/_agentry/faults`) and the check that
//! applies them, with throttling, to authenticated Graph requests (called by
//! the conventions layer).
//!
//! Rules live in memory, per process, and belong to the tenant that added
//! them: a rule only ever matches requests of its own tenant. They never
//! apply to `/_agentry`, `/healthz`, `/readyz`, `/metrics` or the identity
//! provider.

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

/// Most rules a tenant may hold.
pub const MAX_RULES_PER_TENANT: usize = 100;
/// Longest latency a rule may add.
pub const MAX_DELAY_MS: u64 = 60_000;

/// What a rule answers with, instead of (or before) the real answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultError {
    /// Any HTTP status from 400 to 599.
    pub status: u16,
    /// The Graph error code; defaults by status (429 `TooManyRequests`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After` seconds; defaults to 1 for 429 and 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// A rule as clients send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewRule {
    /// An HTTP method, or absent (or `*`) for any.
    #[serde(default)]
    pub method: Option<String>,
    /// A path glob: `*` matches any run of characters (slashes too), `?` one.
    pub path: String,
    /// Chance of applying to a matching request, 0 to 1 (default 1).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Apply this many times, then expire (default: until removed).
    #[serde(default)]
    pub count: Option<u64>,
    /// Only requests carrying this `client-request-id`.
    #[serde(default)]
    pub client_request_id: Option<String>,
    /// Answer with this error.
    #[serde(default)]
    pub error: Option<FaultError>,
    /// Wait this long first (milliseconds).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// A stored rule, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    pub id: String,
    #[serde(skip)]
    pub tenant: String,
    pub method: Option<String>,
    pub path: String,
    pub probability: f64,
    /// Applications left before the rule expires; `None` for no limit.
    pub remaining: Option<u64>,
    pub client_request_id: Option<String>,
    pub error: Option<FaultError>,
    pub delay_ms: Option<u64>,
    /// How many requests the rule has applied to.
    pub applied: u64,
}

impl NewRule {
    /// Checks the body and makes it a rule of `tenant`.
    pub fn validate(self, tenant: &str) -> Result<FaultRule, ApiError> {
        let bad = |m: &str| Err(ApiError::InvalidControlRequest(m.to_owned()));
        let method = match self.method.as_deref().map(str::trim) {
            None | Some("*") | Some("") => None,
            Some(m) => match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m.as_str().to_owned()),
                Err(_) => return bad("'method' is not an HTTP method"),
            },
        };
        if !self.path.starts_with('/') && !self.path.starts_with('*') {
            return bad("'path' must start with '/' or '*'");
        }
        if self.path.len() > 1024 {
            return bad("'path' is longer than 1024 characters");
        }
        let probability = self.probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&probability) {
            return bad("'probability' must be between 0 and 1");
        }
        if self.count == Some(0) {
            return bad("'count' must be at least 1");
        }
        if self.error.is_none() && self.delay_ms.is_none() {
            return bad("a rule needs an 'error', a 'delayMs' or both");
        }
        if self.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
            return bad("'delayMs' must be at most 60000");
        }
        let error = match self.error {
            None => None,
            Some(e) => {
                if !(400..=599).contains(&e.status) {
                    return bad("'error.status' must be between 400 and 599");
                }
                if e.code
                    .as_deref()
                    .is_some_and(|c| c.is_empty() || c.len() > 100)
                {
                    return bad("'error.code' must be 1 to 100 characters");
                }
                let retry_after_seconds = e
                    .retry_after_seconds
                    .or(matches!(e.status, 429 | 503).then_some(1));
                Some(FaultError {
                    code: Some(e.code.unwrap_or_else(|| default_code(e.status).to_owned())),
                    retry_after_seconds,
                    ..e
                })
            }
        };
        Ok(FaultRule {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_owned(),
            method,
            path: self.path,
            probability,
            remaining: self.count,
            client_request_id: self.client_request_id,
            error,
            delay_ms: self.delay_ms,
            applied: 0,
        })
    }
}

/// The Graph code a status gets when a rule names none.
fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "serviceNotAvailable",
        504 => "gatewayTimeout",
        _ => "injectedFault",
    }
}

/// `*` matches any run (slashes included), `?` one character; the rest literally.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// What the layer must do for one request.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    pub delay_ms: u64,
    pub error: Option<FaultError>,
}

/// The rules of every tenant, in the order they were added.
#[derive(Default)]
pub struct FaultRules {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultRules {
    pub fn add(&self, rule: FaultRule) -> Result<FaultRule, ApiError> {
        let mut rules = self.rules.lock().expect("fault rules poisoned");
        if rules.iter().filter(|r| r.tenant == rule.tenant).count() >= MAX_RULES_PER_TENANT {
            return Err(ApiError::InvalidControlRequest(format!(
                "a tenant may hold at most {MAX_RULES_PER_TENANT} fault rules"
            )));
        }
        rules.push(rule.clone());
        Ok(rule)
    }

    pub fn list(&self, tenant: &str) -> Vec<FaultRule> {
        let rules = self.rules.lock().expect("fault rules poisoned");
        rules
            .iter()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect()
    }

    pub fn remove(&self, tenant: &str, id: &str) -> bool {
        let mut rules = self.rules.lock().expect("fault rules poisoned");
        let before = rules.len();
        rules.retain(|r| !(r.tenant == tenant && r.id == id));
        rules.len() != before
    }

    /// Removes every rule of the tenant; returns how many.
    pub fn clear(&self, tenant: &str) -> usize {
        let mut rules = self.rules.lock().expect("fault rules poisoned");
        let before = rules.len();
        rules.retain(|r| r.tenant != tenant);
        before - rules.len()
    }

    /// Applies the first matching rule with an error, and adds up the delays
    /// of matching rules; counted rules expire when used up.
    pub fn check(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        client_request_id: Option<&str>,
        roll: &mut dyn FnMut() -> f64,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let mut rules = self.rules.lock().expect("fault rules poisoned");
        for rule in rules.iter_mut().filter(|r| r.tenant == tenant) {
            if verdict.error.is_some() && rule.error.is_some() {
                continue;
            }
            let matches = rule.method.as_deref().is_none_or(|m| m == method)
                && glob_matches(&rule.path, path)
                && rule
                    .client_request_id
                    .as_deref()
                    .is_none_or(|c| Some(c) == client_request_id)
                && rule.remaining != Some(0);
            if !matches || (rule.probability < 1.0 && roll() >= rule.probability) {
                continue;
            }
            rule.applied += 1;
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            verdict.delay_ms = (verdict.delay_ms + rule.delay_ms.unwrap_or(0)).min(MAX_DELAY_MS);
            if verdict.error.is_none() {
                verdict.error.clone_from(&rule.error);
            }
        }
        rules.retain(|r| r.remaining != Some(0));
        verdict
    }
}

/// Paths faults and throttling apply to: the Graph APIs.
fn is_graph_path(path: &str) -> bool {
    ["/beta", "/v1.0"]
        .iter()
        .any(|root| super::request::under_root(path, root))
}

/// Throttling and fault rules, after authentication and before routing:
/// the answer to send instead of routing the request, if any. Throttling
/// comes first (a throttled request is not counted by fault rules). `path`
/// is the path as the client sent it.
pub async fn intercept(
    app: &AppState,
    principal: &Principal,
    method: &Method,
    path: &str,
    client_request_id: Option<&str>,
) -> Option<Response> {
    if !is_graph_path(path) {
        return None;
    }
    if let Some(throttle) = app.throttle()
        && let Err(retry_after) = throttle.take(
            &principal.tenant_id,
            principal.app_id.as_deref().unwrap_or_default(),
        )
    {
        app.metrics().throttled();
        return Some(ApiError::Throttled { retry_after }.into_response());
    }
    let verdict = app.faults().check(
        &principal.tenant_id,
        method.as_str(),
        path,
        client_request_id,
        &mut random_unit,
    );
    if verdict.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(verdict.delay_ms)).await;
    }
    let e = verdict.error?;
    app.metrics().fault_injected();
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(
        ApiError::Injected {
            status,
            code: e.code.unwrap_or_else(|| default_code(e.status).to_owned()),
            message: e
                .message
                .unwrap_or_else(|| format!("Fault injected by an Agentry fault rule ({status}).")),
            retry_after: e.retry_after_seconds,
        }
        .into_response(),
    )
}

/// A uniform number in [0, 1).
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

/// The rule list as answered by `GET /_agentry/faults`.
pub fn to_json(rules: &[FaultRule]) -> Value {
    serde_json::json!({ "value": rules })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(tenant: &str, body: Value) -> FaultRule {
        serde_json::from_value::<NewRule>(body)
            .unwrap()
            .validate(tenant)
            .unwrap()
    }

    #[test]
    fn globs_match_runs_and_single_characters_across_slashes() {
        let table = [
            (
                "/beta/agentRegistry/agentInstances*",
                "/beta/agentRegistry/agentInstances",
                true,
            ),
            (
                "/beta/agentRegistry/agentInstances*",
                "/beta/agentRegistry/agentInstances/a/b",
                true,
            ),
            (
                "/beta/*/agentInstances",
                "/beta/agentRegistry/agentInstances",
                true,
            ),
            (
                "/beta/agentRegistry/agentInstances",
                "/beta/agentRegistry/agentInstances/x",
                false,
            ),
            ("/beta/a?c", "/beta/abc", true),
            ("/beta/a?c", "/beta/ac", false),
            ("*", "/anything", true),
            ("/beta/**/x", "/beta/x", false),
            ("/beta/**/x", "/beta//x", true),
        ];
        for (pattern, path, expected) in table {
            assert_eq!(glob_matches(pattern, path), expected, "{pattern} {path}");
        }
    }

    #[test]
    fn a_rule_needs_an_answer_and_sane_numbers() {
        let bad = [
            json!({"path": "/beta/*"}),
            json!({"path": "beta", "delayMs": 1}),
            json!({"path": "/beta/*", "delayMs": 1, "probability": 2}),
            json!({"path": "/beta/*", "delayMs": 1, "count": 0}),
            json!({"path": "/beta/*", "error": {"status": 200}}),
            json!({"path": "/beta/*", "delayMs": 600000}),
            json!({"path": "/beta/*", "method": "GE T", "delayMs": 1}),
        ];
        for body in bad {
            let parsed: NewRule = serde_json::from_value(body.clone()).unwrap();
            assert!(parsed.validate("t").is_err(), "{body}");
        }
        assert!(serde_json::from_value::<NewRule>(json!({"path": "/", "colour": 1})).is_err());
    }

    #[test]
    fn errors_get_a_graph_code_and_retry_after_by_status() {
        let r = rule("t", json!({"path": "*", "error": {"status": 429}}));
        let e = r.error.unwrap();
        assert_eq!(e.code.as_deref(), Some("TooManyRequests"));
        assert_eq!(e.retry_after_seconds, Some(1));
        let r = rule("t", json!({"path": "*", "error": {"status": 504}}));
        assert_eq!(r.error.unwrap().retry_after_seconds, None);
    }

    #[test]
    fn counted_rules_expire_and_rules_stay_in_their_tenant() {
        let rules = FaultRules::default();
        rules
            .add(rule(
                "a",
                json!({"path": "/beta/*", "count": 2, "error": {"status": 503}}),
            ))
            .unwrap();
        let mut never = || 0.0;
        assert!(
            rules
                .check("b", "GET", "/beta/x", None, &mut never)
                .error
                .is_none()
        );
        for _ in 0..2 {
            assert!(
                rules
                    .check("a", "GET", "/beta/x", None, &mut never)
                    .error
                    .is_some()
            );
        }
        assert!(
            rules
                .check("a", "GET", "/beta/x", None, &mut never)
                .error
                .is_none()
        );
        assert!(rules.list("a").is_empty());
    }

    #[test]
    fn method_client_request_id_and_probability_narrow_a_rule() {
        let rules = FaultRules::default();
        rules
            .add(rule(
                "a",
                json!({"path": "*", "method": "post", "clientRequestId": "c1", "probability": 0.5, "error": {"status": 500}}),
            ))
            .unwrap();
        let mut low = || 0.1;
        let mut high = || 0.9;
        assert!(
            rules
                .check("a", "GET", "/beta", Some("c1"), &mut low)
                .error
                .is_none()
        );
        assert!(
            rules
                .check("a", "POST", "/beta", Some("c2"), &mut low)
                .error
                .is_none()
        );
        assert!(
            rules
                .check("a", "POST", "/beta", Some("c1"), &mut high)
                .error
                .is_none()
        );
        assert!(
            rules
                .check("a", "POST", "/beta", Some("c1"), &mut low)
                .error
                .is_some()
        );
    }

    #[test]
    fn random_numbers_stay_in_the_unit_interval() {
        for _ in 0..1000 {
            let x = random_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}

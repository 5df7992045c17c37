//! Extractors whose rejections are Graph errors, never axum's plain text.

use super::AppState;
use super::error::ApiError;
use super::request::RequestMeta;
use crate::auth::Principal;
use crate::odata::QueryOptions;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The caller, authenticated by the conventions middleware.
pub struct Caller(pub std::sync::Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<std::sync::Arc<Principal>>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::Internal("route reached without authentication".into()))
    }
}

/// The caller if the request carried a token (only the A2A routes let a
/// request without one through).
pub struct MaybeCaller(pub Option<std::sync::Arc<Principal>>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(MaybeCaller(
            parts.extensions.get::<std::sync::Arc<Principal>>().cloned(),
        ))
    }
}

/// Request ids and the origin for absolute URLs.
pub struct Meta(pub std::sync::Arc<RequestMeta>);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<std::sync::Arc<RequestMeta>>()
            .cloned()
            .map(Meta)
            .ok_or_else(|| ApiError::Internal("request metadata missing".into()))
    }
}

/// Parsed OData query options, with the raw query kept for next links.
pub struct ODataQuery {
    pub options: QueryOptions,
    pub raw: Option<String>,
    pub path: String,
    /// `ConsistencyLevel: eventual` was sent (Graph requires it for `$search`).
    pub eventual: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ODataQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // The path as the client wrote it (before nesting and key rewriting),
        // so next links repeat it.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let raw = uri.query().map(str::to_owned);
        Ok(ODataQuery {
            options: QueryOptions::parse(raw.as_deref())?,
            raw,
            path: uri.path().to_owned(),
            eventual: parts
                .headers
                .get("consistencylevel")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual")),
        })
    }
}

/// Path keys, percent-decoded.
pub struct Keys<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Keys<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A percent-encoded NUL is the only way a path can carry one.
        let path = parts.uri.path().as_bytes();
        if memchr::memchr_iter(b'%', path).any(|i| path.get(i + 1..i + 3) == Some(b"00")) {
            return Err(ApiError::NulCharacter("key in the request URL"));
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Keys(t))
            .map_err(|_| ApiError::InvalidKey)
    }
}

/// Whether the client asked for the entity back (`Prefer: return=representation`).
pub struct PreferRepresentation(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for PreferRepresentation {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let wanted = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("return=representation"));
        Ok(PreferRepresentation(wanted))
    }
}

/// A JSON object body: `application/json`, within the size limit, well formed.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let limit = app.max_body_bytes();
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::MalformedJson
                }
            })?;
        match content_type {
            None if bytes.iter().all(u8::is_ascii_whitespace) => return Err(ApiError::MissingBody),
            None => return Err(ApiError::UnsupportedMediaType),
            Some(ct) if !is_json(&ct) => return Err(ApiError::UnsupportedMediaType),
            Some(_) => {}
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MissingBody);
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::MalformedJson)?;
        if holds_nul(&body) {
            return Err(ApiError::NulCharacter("request body"));
        }
        Ok(JsonBody(body))
    }
}

/// Whether a string or a property name anywhere in `v` holds U+0000.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5]
                .to_ascii_lowercase()
                .starts_with("application/")
            && essence.to_ascii_lowercase().ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::{holds_nul, is_json};

    #[test]
    fn a_nul_is_found_in_strings_and_names_at_any_depth() {
        for (body, nul) in [
            (serde_json::json!({"a": ["b", {"c": "d"}], "n": 1}), false),
            (serde_json::json!({"a": "x\u{0}"}), true),
            (serde_json::json!({"a": [{"b": ["\u{0}"]}]}), true),
            (serde_json::json!({"a\u{0}": 1}), true),
            (serde_json::json!({"a": {"b\u{0}c": null}}), true),
        ] {
            assert_eq!(holds_nul(&body), nul, "{body}");
        }
    }

    #[test]
    fn json_media_types_are_recognised() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/json;odata.metadata=minimal",
            "application/merge-patch+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/xml",
            "multipart/form-data",
            "",
            "+json",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}

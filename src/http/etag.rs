//! Entity tags of registry entities and the conditional headers that carry
//! them (`If-Match`, `If-None-Match`).
//!
//! An ETag is derived from what is stored, so every replica computes the
//! same one with nothing shared: `W/"<version>-<fingerprint>"`, where the
//! version is the store's counter (1 on create, bumped by every change) and
//! the fingerprint is a hash of `createdDateTime`, which tells an entity from
//! one deleted and created again under the same id. The tag is weak because
//! one version has many representations (`$select`, `$expand`); conditional
//! headers compare tags weakly, as OData services do.

use super::error::{ApiError, Header};
use crate::store::{Entity, StoreError, Stored};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The ETag of a stored entity, as the `ETag` header and `@odata.etag` carry it.
pub fn of(stored: &Stored) -> String {
    let mut tag = String::with_capacity(32);
    tag.push_str("W/\"");
    push_opaque(&mut tag, stored);
    tag.push('"');
    tag
}

/// The quoted part of the tag, without `W/` and the quotes.
fn opaque(stored: &Stored) -> String {
    let mut tag = String::with_capacity(28);
    push_opaque(&mut tag, stored);
    tag
}

/// `<version>-<fingerprint as 8 hex digits>`, written without the
/// formatting machinery (this runs for every entity answered).
fn push_opaque(out: &mut String, stored: &Stored) {
    let mut digits = [0u8; 20];
    let mut n = stored.version.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if stored.version < 0 {
        out.push('-');
    }
    digits[at..].iter().for_each(|d| out.push(char::from(*d)));
    out.push('-');
    let print = fingerprint(created(&stored.doc).unwrap_or_default());
    for shift in (0..8).rev() {
        let nibble = (print >> (shift * 4)) & 0xf;
        out.push(char::from_digit(nibble, 16).unwrap_or('0'));
    }
}

/// `createdDateTime` of a stored document. Documents are written compactly
/// by the store, so the key is found as text rather than by parsing the
/// whole document (a list page computes a hundred tags). Only stability per
/// entity matters: the first occurrence is taken.
fn created(doc: &str) -> Option<&str> {
    const KEY: &str = "\"createdDateTime\":\"";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let start = FINDER.find(doc.as_bytes())? + KEY.len();
    let len = doc[start..].find('"')?;
    Some(&doc[start..start + len])
}

/// FNV-1a, 32 bits: stable across builds and machines (unlike std's hasher).
fn fingerprint(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The `ETag` header value of an entity.
pub fn header_value(stored: &Stored) -> Option<HeaderValue> {
    HeaderValue::from_str(&of(stored)).ok()
}

/// Sets the `ETag` header of a response to the entity's tag.
pub fn set_header(response: &mut Response, stored: &Stored) {
    if let Some(v) = header_value(stored) {
        response.headers_mut().insert(header::ETAG, v);
    }
}

/// What an `If-Match` or `If-None-Match` header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`: any current representation.
    Any,
    /// The opaque parts of the listed tags (weak or not).
    Tags(Vec<String>),
}

impl Condition {
    /// Whether the entity's current tag is one the condition names
    /// (weak comparison: `W/` is disregarded).
    pub fn matches(&self, stored: &Stored) -> bool {
        match self {
            Condition::Any => true,
            Condition::Tags(tags) => {
                let current = opaque(stored);
                tags.contains(&current)
            }
        }
    }
}

/// Parses every value of a header as `"*"` or a list of entity tags
/// (RFC 9110, section 8.8.3); `Ok(None)` when the header is absent.
fn parse(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<Condition>, ()> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    let mut any = false;
    for value in values {
        let bytes = value.as_bytes();
        let trimmed = trim(bytes);
        if trimmed == b"*" {
            any = true;
            continue;
        }
        parse_list(bytes, &mut tags)?;
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(Condition::Any)),
        (false, false) => Ok(Some(Condition::Tags(tags))),
        // `*` beside tags, or a list with no tag at all.
        _ => Err(()),
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// `#entity-tag`: tags separated by commas, empty elements allowed.
fn parse_list(mut b: &[u8], out: &mut Vec<String>) -> Result<(), ()> {
    loop {
        while let [b' ' | b'\t' | b',', rest @ ..] = b {
            b = rest;
        }
        if b.is_empty() {
            return Ok(());
        }
        if let [b'W', b'/', rest @ ..] = b {
            b = rest;
        }
        let [b'"', rest @ ..] = b else {
            return Err(());
        };
        let end = rest.iter().position(|c| *c == b'"').ok_or(())?;
        let (tag, after) = (&rest[..end], &rest[end + 1..]);
        // etagc: %x21 / %x23-7E / obs-text
        if tag.iter().any(|c| *c < 0x21 || *c == 0x7f) {
            return Err(());
        }
        out.push(String::from_utf8_lossy(tag).into_owned());
        b = trim(after);
        match b {
            [] => return Ok(()),
            [b',', ..] => {}
            _ => return Err(()),
        }
    }
}

/// The conditional headers of a request. A malformed value is a 400 before
/// anything else happens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<Condition>,
    pub if_none_match: Option<Condition>,
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        Ok(Self {
            if_match: parse(headers, header::IF_MATCH)
                .map_err(|_| ApiError::MalformedEntityTag(Header::IfMatch))?,
            if_none_match: parse(headers, header::IF_NONE_MATCH)
                .map_err(|_| ApiError::MalformedEntityTag(Header::IfNoneMatch))?,
        })
    }

    /// Whether a PATCH or DELETE must look at the entity before writing.
    pub fn any(&self) -> bool {
        self.if_match.is_some() || self.if_none_match.is_some()
    }

    /// Evaluates the headers of a PATCH or DELETE against `current`, the
    /// entity as the caller sees it, and returns the version the store must
    /// still find when it writes (`None`: no condition on the version).
    pub fn expected_version(
        &self,
        current: &Stored,
        kind: Entity,
    ) -> Result<Option<i64>, ApiError> {
        let expected = match &self.if_match {
            None | Some(Condition::Any) => None,
            Some(c) if c.matches(current) => Some(current.version),
            Some(_) => {
                return Err(StoreError::PreconditionFailed {
                    kind,
                    id: current.id.clone(),
                }
                .into());
            }
        };
        match &self.if_none_match {
            None => {}
            // The entity exists, and Agentry never creates by PATCH.
            Some(Condition::Any) => {
                return Err(ApiError::EntityExists {
                    kind,
                    id: current.id.clone(),
                });
            }
            Some(Condition::Tags(_)) => return Err(ApiError::IfNoneMatchNotStar),
        }
        Ok(expected)
    }

    /// For a create: whether `If-None-Match: *` asks that the id be new
    /// (412 rather than 409 when it is taken). `If-Match` on a create has
    /// no entity to compare with and is ignored.
    pub fn create_only(&self) -> Result<bool, ApiError> {
        match &self.if_none_match {
            None => Ok(false),
            Some(Condition::Any) => Ok(true),
            Some(Condition::Tags(_)) => Err(ApiError::IfNoneMatchNotStar),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Conditions::from_headers(&parts.headers)
    }
}

/// A create's refusal of a taken id becomes 412 under `If-None-Match: *`.
pub fn refuse_existing(
    create_only: bool,
    created: Result<Stored, StoreError>,
    kind: Entity,
    id: &str,
) -> Result<Stored, ApiError> {
    match created {
        Err(StoreError::AlreadyExists { kind: k, id: taken })
            if create_only && k == kind && taken == id =>
        {
            Err(ApiError::EntityExists { kind, id: taken })
        }
        other => Ok(other?),
    }
}

/// `If-None-Match` on a GET: 304 Not Modified (with the `ETag`, no body)
/// when the entity answered still has a tag the client names.
pub async fn not_modified(req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !req.headers().contains_key(header::IF_NONE_MATCH) {
        return next.run(req).await;
    }
    let condition = match parse(req.headers(), header::IF_NONE_MATCH) {
        Ok(c) => c,
        Err(()) => return ApiError::MalformedEntityTag(Header::IfNoneMatch).into_response(),
    };
    let response = next.run(req).await;
    let Some(condition) = condition else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    let Some(current) = response.headers().get(header::ETAG).cloned() else {
        return response;
    };
    let matched = match &condition {
        Condition::Any => true,
        Condition::Tags(tags) => {
            let mut current_tags = Vec::new();
            parse_list(current.as_bytes(), &mut current_tags).is_ok()
                && current_tags
                    .first()
                    .is_some_and(|c| tags.iter().any(|t| t == c))
        }
    };
    if !matched {
        return response;
    }
    let mut out = StatusCode::NOT_MODIFIED.into_response();
    let h = out.headers_mut();
    h.insert(header::ETAG, current);
    if let Some(v) = response.headers().get(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64, created: &str) -> Stored {
        Stored {
            id: "x".into(),
            doc: format!(r#"{{"id":"x","createdDateTime":"{created}","displayName":"d"}}"#),
            version,
        }
    }

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_etag_is_weak_follows_the_version_and_tells_a_recreated_entity_apart() {
        let a = of(&stored(1, "2025-01-01T00:00:00.0000000Z"));
        assert!(a.starts_with("W/\"1-") && a.ends_with('"'), "{a}");
        assert_eq!(a, of(&stored(1, "2025-01-01T00:00:00.0000000Z")));
        assert_ne!(a, of(&stored(2, "2025-01-01T00:00:00.0000000Z")));
        assert_ne!(a, of(&stored(1, "2025-01-01T00:00:00.0000001Z")));
        assert!(header_value(&stored(7, "t")).is_some());
    }

    #[test]
    fn the_tag_text_is_the_version_and_the_fingerprint_in_eight_hex_digits() {
        for (version, created) in [(1, "t"), (10, ""), (i64::MAX, "x"), (-3, "y"), (0, "z")] {
            let s = stored(version, created);
            let expected = format!("{version}-{:08x}", fingerprint(created));
            assert_eq!(opaque(&s), expected);
            assert_eq!(of(&s), format!("W/\"{expected}\""));
        }
    }

    #[test]
    fn if_match_lists_stars_and_weak_or_strong_tags_are_parsed() {
        let p = |values: &[&str]| parse(&headers(header::IF_MATCH, values), header::IF_MATCH);
        assert_eq!(p(&[]), Ok(None));
        assert_eq!(p(&["*"]), Ok(Some(Condition::Any)));
        assert_eq!(p(&[" * "]), Ok(Some(Condition::Any)));
        assert_eq!(
            p(&[r#"W/"1-a", "2-b""#, r#",W/"x,y""#]),
            Ok(Some(Condition::Tags(vec![
                "1-a".into(),
                "2-b".into(),
                "x,y".into()
            ])))
        );
        assert_eq!(
            p(&[r#""""#]),
            Ok(Some(Condition::Tags(vec![String::new()])))
        );
        for bad in [
            "",
            "abc",
            "W/abc",
            r#""unterminated"#,
            r#""a" "b""#,
            r#""a b""#,
            r#"w/"a""#,
            ",",
        ] {
            assert_eq!(p(&[bad]), Err(()), "{bad:?}");
        }
        assert_eq!(p(&["*", r#""a""#]), Err(()));
    }

    #[test]
    fn a_tag_matches_whether_or_not_it_is_marked_weak() {
        let s = stored(3, "2025-01-01T00:00:00.0000000Z");
        let tag = of(&s);
        let strong = tag.trim_start_matches("W/").to_owned();
        for sent in [tag.clone(), strong, format!(r#""0-0", {tag}"#)] {
            let c = Conditions::from_headers(&headers(header::IF_MATCH, &[&sent])).unwrap();
            assert_eq!(
                c.expected_version(&s, Entity::Instance).unwrap(),
                Some(3),
                "{sent}"
            );
        }
        let stale = of(&stored(2, "2025-01-01T00:00:00.0000000Z"));
        let c = Conditions::from_headers(&headers(header::IF_MATCH, &[&stale])).unwrap();
        assert!(matches!(
            c.expected_version(&s, Entity::Instance),
            Err(ApiError::Store(StoreError::PreconditionFailed { .. }))
        ));
        let any = Conditions::from_headers(&headers(header::IF_MATCH, &["*"])).unwrap();
        assert_eq!(any.expected_version(&s, Entity::Instance).unwrap(), None);
    }

    #[test]
    fn if_none_match_on_writes_takes_only_a_star() {
        let s = stored(1, "t");
        let star = Conditions::from_headers(&headers(header::IF_NONE_MATCH, &["*"])).unwrap();
        assert!(star.create_only().unwrap());
        assert!(matches!(
            star.expected_version(&s, Entity::Collection),
            Err(ApiError::EntityExists { .. })
        ));
        let tags = Conditions::from_headers(&headers(header::IF_NONE_MATCH, &[r#""a""#])).unwrap();
        assert!(matches!(
            tags.create_only(),
            Err(ApiError::IfNoneMatchNotStar)
        ));
        assert!(!Conditions::default().create_only().unwrap());
        assert!(matches!(
            Conditions::from_headers(&headers(header::IF_NONE_MATCH, &["nope"])),
            Err(ApiError::MalformedEntityTag(Header::IfNoneMatch))
        ));
    }
}

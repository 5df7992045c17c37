//! Cross-origin requests from browsers, off unless origins are configured
//! (`--cors-origin`): preflights are answered before authentication, and
//! every answer names the headers a browser script may read.

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// The answer headers a script may read: Graph's ids, the ETag, where a
/// create went, and the throttling and preference ones.
const EXPOSED: [&str; 6] = [
    "request-id",
    "client-request-id",
    "etag",
    "location",
    "retry-after",
    "preference-applied",
];

/// Why an origin cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an origin: give scheme://host[:port] without a path (for example http://localhost:3000), or * for any"
)]
pub struct BadOrigin(pub String);

/// Checks the configured origins: `*`, or `scheme://host[:port]` each.
pub fn check(origins: &[String]) -> Result<(), BadOrigin> {
    for o in origins {
        if o == "*" {
            continue;
        }
        let well_formed = o.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' '])
        }) && HeaderValue::from_str(o).is_ok();
        if !well_formed {
            return Err(BadOrigin(o.clone()));
        }
    }
    Ok(())
}

/// The CORS layer for these origins (checked by [`check`]); `None` when
/// there are none.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(EXPOSED.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_and_a_host_or_a_star() {
        for good in [
            "*",
            "http://localhost:3000",
            "https://console.contoso.example",
        ] {
            assert_eq!(check(&[good.to_owned()]), Ok(()), "{good}");
        }
        for bad in [
            "localhost:3000",
            "http://a/b",
            "ftp://x",
            "https://",
            "http://a b",
        ] {
            assert!(check(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}

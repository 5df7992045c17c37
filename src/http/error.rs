//! The one place where every layer's error becomes an HTTP status, a Graph
//! error code and a message. Handlers return [`ApiError`]; the envelope
//! middleware ([`super::conventions`]) writes the body, because only it knows
//! the request ids the envelope carries.

use crate::auth::AuthError;
use crate::auth::permissions::Denied;
use crate::clock::error_timestamp;
use crate::domain::DomainError;
use crate::domain::copilot::CopilotError;
use crate::odata::ODataError;
use crate::store::{Entity, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// Which conditional header a malformed value came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    IfMatch,
    IfNoneMatch,
}

impl Header {
    pub fn name(self) -> &'static str {
        match self {
            Header::IfMatch => "If-Match",
            Header::IfNoneMatch => "If-None-Match",
        }
    }
}

/// Why `POST /console/session` did not sign the console in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevSignInRefusal {
    /// `console_dev_signin` is not set.
    Off,
    /// It is set, but the server listens beyond loopback or trusts a proxy.
    NotLoopback,
    /// The request names a host that is not a loopback name (DNS rebinding).
    ForeignHost(String),
    /// The request comes from another origin's page.
    CrossOrigin(String),
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A `$batch` whose own shape is wrong (400 for the whole batch).
    #[error(transparent)]
    Batch(super::batch::BatchError),
    #[error(transparent)]
    OData(#[from] ODataError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("malformed JSON body")]
    MalformedJson,
    #[error("a JSON body is required")]
    MissingBody,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("body over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unknown segment {0}")]
    UnknownSegment(String),
    /// A Graph operation (its template and the methods Graph has for it)
    /// that Agentry does not serve.
    #[error("{template} is not implemented")]
    NotImplemented {
        template: &'static str,
        methods: Vec<&'static str>,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("invalid key in path")]
    InvalidKey,
    /// A request line or headers hyper could not parse.
    #[error("malformed request")]
    MalformedRequest,
    /// A URL longer than hyper reads (64 KiB).
    #[error("URL too long")]
    UriTooLong,
    /// More headers, or longer ones, than hyper reads.
    #[error("headers too large")]
    HeadersTooLarge,
    /// The character U+0000 in a key or a body string, which no backend
    /// stores alike (PostgreSQL text cannot hold it): `part` names where.
    #[error("U+0000 in {0}")]
    NulCharacter(&'static str),
    #[error("instance {0} has no manifest")]
    ManifestNotLinked(String),
    #[error("instance {instance} is not in collection {collection}")]
    NotInCollection {
        instance: String,
        collection: String,
    },
    /// An `If-Match` or `If-None-Match` value that is not `*` or a list of entity tags.
    #[error("malformed {}", .0.name())]
    MalformedEntityTag(Header),
    /// `If-None-Match` with entity tags on a write (only `*` is supported there).
    #[error("If-None-Match with entity tags on a write")]
    IfNoneMatchNotStar,
    /// `If-None-Match: *` on a write, and the entity exists.
    #[error("{kind:?} '{id}' exists despite If-None-Match: *")]
    EntityExists { kind: Entity, id: String },
    #[error("method not allowed on a Copilot path")]
    CopilotMethodNotAllowed,
    #[error(transparent)]
    Denied(#[from] Denied),
    /// An answer a fault rule of the control plane asked for.
    #[error("injected fault {status}")]
    Injected {
        status: StatusCode,
        code: String,
        message: String,
        retry_after: Option<u64>,
    },
    /// The caller's token bucket is empty (throttling mode).
    #[error("throttled for {retry_after} s")]
    Throttled { retry_after: u64 },
    /// A snapshot sent to `PUT /_agentry/snapshot` does not validate.
    #[error(transparent)]
    InvalidSnapshot(#[from] crate::seed::Invalid),
    /// A control-plane request body or query is not valid.
    #[error("invalid control request: {0}")]
    InvalidControlRequest(String),
    #[error("fault rule {0} does not exist")]
    FaultRuleNotFound(String),
    /// A subscription request Graph would refuse.
    #[error(transparent)]
    Subscription(#[from] crate::domain::subscriptions::SubscriptionError),
    /// A subscription's receiver failed the validation handshake.
    #[error("validation handshake failed: {0}")]
    Handshake(#[from] crate::notify::NotifyError),
    #[error("subscription {0} does not exist")]
    SubscriptionNotFound(String),
    /// The console's password-free sign-in was refused.
    #[error("console sign-in refused: {0:?}")]
    DevSignInRefused(DevSignInRefusal),
    /// A path under `/console/` that names no file of the console.
    #[error("the console has no file {0}")]
    ConsoleFileNotFound(String),
    /// An agent whose card is asked for has no card data.
    #[error("agent {0} has no A2A card")]
    AgentHasNoCard(String),
    /// The database does not answer (readiness probe).
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<CopilotError> for ApiError {
    fn from(e: CopilotError) -> Self {
        ApiError::Domain(DomainError::Copilot(e))
    }
}

/// What the client is told, before the request ids are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// A more specific code, written as `innerError.code`.
    pub inner_code: Option<&'static str>,
    /// For logs only: never sent to the client.
    pub detail: Option<String>,
    /// `error.details`: (code, message, target) of each part of the problem.
    pub details: Vec<(&'static str, String, String)>,
}

fn report(status: StatusCode, code: &'static str, message: impl Into<String>) -> ErrorReport {
    ErrorReport {
        status,
        code: Cow::Borrowed(code),
        message: message.into(),
        inner_code: None,
        detail: None,
        details: Vec::new(),
    }
}

fn entity_label(kind: Entity) -> &'static str {
    match kind {
        Entity::Instance => "agent instance",
        Entity::Manifest => "agent card manifest",
        Entity::Collection => "agent collection",
        Entity::Registration => "agent registration",
        Entity::Package => "package",
        Entity::Audit => "audit record",
    }
}

impl ApiError {
    /// Maps every variant to the response a Graph client expects.
    pub fn report(&self) -> ErrorReport {
        use StatusCode as S;
        match self {
            ApiError::Auth(e) => {
                let message = match e {
                    AuthError::Missing => "Access token is empty.",
                    AuthError::Malformed => "CompactToken parsing failed with error code: 80049217",
                    AuthError::InvalidSignature => "Access token validation failure.",
                    AuthError::UnknownKey { kid, known } => {
                        return report(
                            S::UNAUTHORIZED,
                            "InvalidAuthenticationToken",
                            format!(
                                "Access token validation failure. The token is signed with key '{kid}', which this server does not have (it has: {}); a token from 'agentry token' must come from the server's own data folder or --keys-dir.",
                                known.join(", ")
                            ),
                        );
                    }
                    AuthError::Expired => "Access token has expired or is not yet valid.",
                    AuthError::InvalidAudience => {
                        "Access token validation failure. Invalid audience."
                    }
                    AuthError::InvalidIssuer => "Access token validation failure. Invalid issuer.",
                    AuthError::NoPermissionClaims => {
                        return report(
                            S::FORBIDDEN,
                            "AccessDenied",
                            "Either scp or roles claim need to be present in the token.",
                        );
                    }
                };
                report(S::UNAUTHORIZED, "InvalidAuthenticationToken", message)
            }
            ApiError::Batch(e) => report(S::BAD_REQUEST, "BadRequest", sentence(e.to_string())),
            ApiError::OData(e @ ODataError::SearchNeedsConsistencyLevel) => {
                report(S::BAD_REQUEST, "Request_UnsupportedQuery", e.to_string())
            }
            ApiError::OData(e) => report(S::BAD_REQUEST, "BadRequest", e.to_string()),
            ApiError::Domain(e) => domain_report(e),
            ApiError::Store(e) => store_report(e),
            ApiError::MalformedJson => report(
                S::BAD_REQUEST,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            ),
            ApiError::MissingBody => report(
                S::BAD_REQUEST,
                "BadRequest",
                "A JSON request body is required for this request.",
            ),
            ApiError::UnsupportedMediaType => report(
                S::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "The request body must be sent with Content-Type: application/json.",
            ),
            ApiError::PayloadTooLarge { limit } => report(
                S::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("The request body is larger than the limit of {limit} bytes."),
            ),
            ApiError::UnknownSegment(seg) => report(
                S::BAD_REQUEST,
                "BadRequest",
                format!("Resource not found for the segment '{seg}'."),
            ),
            ApiError::NotImplemented { template, methods } => report(
                S::NOT_IMPLEMENTED,
                "NotImplemented",
                format!(
                    "{} {template} is part of Microsoft Graph, but Agentry does not implement it.",
                    methods.join("/")
                ),
            ),
            ApiError::MethodNotAllowed => report(
                S::METHOD_NOT_ALLOWED,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            ),
            ApiError::InvalidKey => report(
                S::BAD_REQUEST,
                "BadRequest",
                "The key in the request URL is not valid.",
            ),
            ApiError::MalformedRequest => report(
                S::BAD_REQUEST,
                "BadRequest",
                "The request line or its headers are not valid HTTP/1.1.",
            ),
            ApiError::UriTooLong => report(
                S::URI_TOO_LONG,
                "RequestUriTooLong",
                "The request URL is longer than the 65,534 bytes the server reads.",
            ),
            ApiError::HeadersTooLarge => report(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "RequestHeaderFieldsTooLarge",
                "The request has more than 100 headers, or more than 128 KiB of request line and headers.",
            ),
            ApiError::NulCharacter(part) => report(
                S::BAD_REQUEST,
                "BadRequest",
                format!(
                    "The {part} contains the character U+0000 (NUL), which no key or value may hold."
                ),
            ),
            ApiError::ManifestNotLinked(id) => report(
                S::NOT_FOUND,
                "AgentCardNotFound",
                format!("The agent instance '{id}' has no agent card manifest."),
            ),
            ApiError::NotInCollection {
                instance,
                collection,
            } => report(
                S::NOT_FOUND,
                "Request_ResourceNotFound",
                format!(
                    "The agent instance '{instance}' is not a member of the agent collection '{collection}'."
                ),
            ),
            ApiError::MalformedEntityTag(h) => ErrorReport {
                inner_code: Some("malformedEntityTag"),
                ..report(
                    S::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "The {} header must be '*' or a comma-separated list of quoted entity tags, such as W/\"1-0a1b2c3d\".",
                        h.name()
                    ),
                )
            },
            ApiError::IfNoneMatchNotStar => report(
                S::BAD_REQUEST,
                "BadRequest",
                "If-None-Match on a create, update or delete supports only '*'.",
            ),
            ApiError::EntityExists { kind, id } => report(
                S::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!(
                    "The {} '{id}' already exists, and If-None-Match: * asked that it not.",
                    entity_label(*kind)
                ),
            ),
            ApiError::CopilotMethodNotAllowed => report(
                S::METHOD_NOT_ALLOWED,
                "methodNotAllowed",
                "The HTTP method is not allowed for this resource.",
            ),
            ApiError::Denied(d) => report(
                S::FORBIDDEN,
                "Authorization_RequestDenied",
                format!("Insufficient privileges to complete the operation. {d}"),
            ),
            ApiError::Injected {
                status,
                code,
                message,
                ..
            } => ErrorReport {
                code: Cow::Owned(code.clone()),
                ..report(*status, "", message.clone())
            },
            ApiError::Throttled { retry_after } => ErrorReport {
                inner_code: Some("429"),
                ..report(
                    S::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    format!("Too many requests. Retry after {retry_after} seconds."),
                )
            },
            ApiError::InvalidSnapshot(e) => report(
                S::BAD_REQUEST,
                "BadRequest",
                format!("The snapshot is not valid: {e}."),
            ),
            ApiError::InvalidControlRequest(reason) => {
                report(S::BAD_REQUEST, "BadRequest", sentence(reason.clone()))
            }
            ApiError::Subscription(e) => {
                report(S::BAD_REQUEST, "InvalidRequest", sentence(e.to_string()))
            }
            ApiError::Handshake(e) => {
                use crate::notify::NotifyError as N;
                let message = match e {
                    N::NotAllowed(host) => format!(
                        "Subscription validation request failed. The notification URL's host '{host}' is not on this service's allow-list."
                    ),
                    N::Timeout(_) => "Subscription validation request timed out.".to_owned(),
                    N::WrongToken => "Subscription validation request failed. Response must exactly match validationToken query parameter.".to_owned(),
                    N::Status(_) | N::Unreachable(_) => "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.".to_owned(),
                };
                ErrorReport {
                    detail: Some(e.to_string()),
                    ..report(S::BAD_REQUEST, "InvalidRequest", message)
                }
            }
            ApiError::DevSignInRefused(why) => {
                let (inner, message) = match why {
                    DevSignInRefusal::Off => (
                        "consoleDevSignInOff",
                        "Signing in without a password is off. Start the server with --console-dev-signin (it works on a loopback address only), or sign in with a bearer token from 'agentry token'.".to_owned(),
                    ),
                    DevSignInRefusal::NotLoopback => (
                        "consoleDevSignInNotLoopback",
                        "Signing in without a password works only when the server listens on a loopback address and trusts no proxy; sign in with a bearer token from 'agentry token'.".to_owned(),
                    ),
                    DevSignInRefusal::ForeignHost(host) => (
                        "consoleDevSignInForeignHost",
                        format!(
                            "Signing in without a password is answered only to a loopback host name (localhost, 127.0.0.1 or [::1]), not to '{host}'."
                        ),
                    ),
                    DevSignInRefusal::CrossOrigin(origin) => (
                        "consoleDevSignInCrossOrigin",
                        format!(
                            "Signing in without a password is answered only to the console's own pages, not to a page of '{origin}'."
                        ),
                    ),
                };
                ErrorReport {
                    inner_code: Some(inner),
                    ..report(S::FORBIDDEN, "Forbidden", message)
                }
            }
            ApiError::ConsoleFileNotFound(name) => report(
                S::NOT_FOUND,
                "NotFound",
                format!("The console has no file '{name}'."),
            ),
            ApiError::AgentHasNoCard(id) => report(
                S::NOT_FOUND,
                "ResourceNotFound",
                format!("The agent '{id}' has no A2A card."),
            ),
            ApiError::SubscriptionNotFound(id) => report(
                S::NOT_FOUND,
                "ResourceNotFound",
                format!("The subscription '{id}' does not exist."),
            ),
            ApiError::FaultRuleNotFound(id) => report(
                S::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("The fault rule '{id}' does not exist."),
            ),
            ApiError::NotReady(detail) => ErrorReport {
                detail: Some(detail.clone()),
                ..report(
                    S::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The database is not reachable.",
                )
            },
            ApiError::Internal(detail) => internal(detail.clone()),
        }
    }

    /// The `Retry-After` seconds the answer carries, if any.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Injected { retry_after, .. } => *retry_after,
            ApiError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

fn internal(detail: String) -> ErrorReport {
    ErrorReport {
        detail: Some(detail),
        ..report(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The server met an unexpected error. Retry later; if it persists, report the request-id.",
        )
    }
}

fn domain_report(e: &DomainError) -> ErrorReport {
    use StatusCode as S;
    match e {
        DomainError::ReservedCollectionName(_) => report(S::CONFLICT, "Conflict", e.to_string()),
        DomainError::ReservedCollectionImmutable(name) => ErrorReport {
            inner_code: Some("collectionImmutable"),
            ..report(
                S::FORBIDDEN,
                "Forbidden",
                format!(
                    "collectionImmutable: the built-in collection '{name}' cannot be changed or deleted."
                ),
            )
        },
        DomainError::NotAnObject
        | DomainError::UnknownProperty { .. }
        | DomainError::WrongType { .. }
        | DomainError::MissingRequired { .. }
        | DomainError::NullNotAllowed { .. }
        | DomainError::TypeMismatch { .. }
        | DomainError::InvalidId
        | DomainError::InvalidReference { .. }
        | DomainError::NavigationNotWritable { .. }
        | DomainError::NotAMember { .. }
        | DomainError::RegistrationWithoutOwner
        | DomainError::NotUpdatable { .. }
        | DomainError::InvalidTrustStore(_)
        | DomainError::BindAndNested => {
            report(S::BAD_REQUEST, "ValidationError", sentence(e.to_string()))
        }
        DomainError::NotWatching => report(S::BAD_REQUEST, "BadRequest", sentence(e.to_string())),
        DomainError::Copilot(c) => copilot_report(c),
        DomainError::InvalidAgentCard { problems, .. } => ErrorReport {
            details: problems
                .iter()
                .map(|p| {
                    (
                        "invalidAgentCard",
                        p.message.clone(),
                        format!("agentCard{}", p.pointer),
                    )
                })
                .collect(),
            ..report(S::BAD_REQUEST, "ValidationError", sentence(e.to_string()))
        },
        DomainError::UntrustedAgentCard(_) => ErrorReport {
            inner_code: Some("invalidAgentCardSignature"),
            ..report(S::BAD_REQUEST, "ValidationError", sentence(e.to_string()))
        },
        DomainError::NotManagedByCaller => ApiError::Denied(Denied::NotManagedByCaller).report(),
        DomainError::ManagedByAnotherApp => {
            report(S::FAILED_DEPENDENCY, "FailedDependency", e.to_string())
        }
    }
}

/// Copilot errors use camelCase status names as the code and put the
/// specific reason in `innerError.code`, as the Copilot API does.
fn copilot_report(e: &CopilotError) -> ErrorReport {
    use StatusCode as S;
    let (status, code, inner) = match e {
        CopilotError::UnsupportedSetting(_) => (S::NOT_FOUND, "notFound", "unsupportedSetting"),
        CopilotError::TooManyGroupPolicies { .. } => {
            (S::BAD_GATEWAY, "badGateway", "tooManyGroupPolicies")
        }
        CopilotError::GroupScopedSetting(_) => (
            S::UNPROCESSABLE_ENTITY,
            "unprocessableEntity",
            "groupScopedSettingNotSupported",
        ),
        CopilotError::UserScopedPolicy(_) => (
            S::UNPROCESSABLE_ENTITY,
            "unprocessableEntity",
            "userScopedPolicyNotSupported",
        ),
        CopilotError::ServiceMismatch { .. } => (
            S::UNPROCESSABLE_ENTITY,
            "unprocessableEntity",
            "policyServiceMismatch",
        ),
        CopilotError::PolicyNotFound(_) => (S::NOT_FOUND, "notFound", "policyNotFound"),
        CopilotError::PolicyAlreadyExists(_) => (S::CONFLICT, "conflict", "policyAlreadyExists"),
        CopilotError::InvalidValue { .. } => (S::BAD_REQUEST, "badRequest", "invalidSettingValue"),
        CopilotError::NotAnObject => (S::BAD_REQUEST, "badRequest", "invalidRequestBody"),
        CopilotError::MissingProperty(_) => {
            (S::BAD_REQUEST, "badRequest", "missingRequiredProperty")
        }
        CopilotError::WrongType { .. } => (S::BAD_REQUEST, "badRequest", "invalidPropertyValue"),
        CopilotError::ReadOnlyProperty(_) => (S::BAD_REQUEST, "badRequest", "readOnlyProperty"),
        CopilotError::UnknownProperty { .. } => (S::BAD_REQUEST, "badRequest", "unknownProperty"),
        CopilotError::TypeMismatch { .. } => (S::BAD_REQUEST, "badRequest", "typeMismatch"),
        CopilotError::InvalidPolicy(_) => (S::BAD_REQUEST, "badRequest", "invalidPolicy"),
    };
    ErrorReport {
        inner_code: Some(inner),
        ..report(status, code, e.to_string())
    }
}

fn store_report(e: &StoreError) -> ErrorReport {
    use StatusCode as S;
    match e {
        StoreError::NotFound { kind, id } => {
            let code = match kind {
                Entity::Instance => "AgentNotFound",
                Entity::Manifest => "AgentCardNotFound",
                Entity::Collection => "AgentCollectionNotFound",
                Entity::Registration => "AgentRegistrationNotFound",
                Entity::Package | Entity::Audit => "NotFound",
            };
            report(
                S::NOT_FOUND,
                code,
                format!("The {} '{id}' does not exist.", entity_label(*kind)),
            )
        }
        StoreError::AlreadyExists { kind, id } => {
            let code = match kind {
                Entity::Instance => "AgentAlreadyExists",
                Entity::Manifest => "AgentCardAlreadyExists",
                Entity::Collection => "AgentCollectionAlreadyExists",
                Entity::Registration => "AgentRegistrationAlreadyExists",
                Entity::Package | Entity::Audit => "Conflict",
            };
            report(
                S::CONFLICT,
                code,
                format!("An {} with id '{id}' already exists.", entity_label(*kind)),
            )
        }
        StoreError::PreconditionFailed { kind, id } => ErrorReport {
            inner_code: Some("entityTagDoesNotMatch"),
            ..report(
                S::PRECONDITION_FAILED,
                "resourceModified",
                format!(
                    "The {} '{id}' has changed since the ETag in the If-Match header was issued; read it again and retry.",
                    entity_label(*kind)
                ),
            )
        },
        StoreError::SourceAgentIdTaken {
            source_agent_id,
            existing,
        } => report(
            S::CONFLICT,
            "Conflict",
            format!(
                "An agent registration with sourceAgentId '{source_agent_id}' already exists (id '{existing}'); sourceAgentId is unique in a tenant."
            ),
        ),
        StoreError::ManifestInUse { id, instances } => report(
            S::CONFLICT,
            "Conflict",
            format!(
                "The agent card manifest '{id}' is still linked from {instances} agent instance(s); unlink it first."
            ),
        ),
        StoreError::AlreadyMember { .. } => report(
            S::BAD_REQUEST,
            "BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
        ),
        StoreError::NotMember {
            instance,
            collection,
        } => ApiError::NotInCollection {
            instance: instance.clone(),
            collection: collection.clone(),
        }
        .report(),
        StoreError::Rejected(d) => domain_report(d),
        StoreError::Unavailable(detail) => ErrorReport {
            detail: Some(detail.clone()),
            ..report(
                S::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Retry after the delay in the Retry-After header.",
            )
        },
        StoreError::SyncStateExpired => report(
            S::BAD_REQUEST,
            "syncStateNotFound",
            "The delta token is older than the change log still holds (it expired, or the tenant was reset or restored); synchronize again from the start.",
        ),
        StoreError::Internal(detail) | StoreError::UnusableUrl(detail) => internal(detail.clone()),
    }
}

/// The Graph error envelope's text; without a client request id, the
/// request id stands in.
pub fn envelope(
    report: &ErrorReport,
    request_id: &str,
    client_request_id: Option<&str>,
    date: time::OffsetDateTime,
) -> String {
    let mut inner = serde_json::Map::new();
    if let Some(code) = report.inner_code {
        inner.insert("code".into(), code.into());
    }
    inner.insert("date".into(), error_timestamp(date).into());
    inner.insert("request-id".into(), request_id.into());
    inner.insert(
        "client-request-id".into(),
        client_request_id.unwrap_or(request_id).into(),
    );
    let mut error = serde_json::json!({
        "code": report.code,
        "message": report.message,
        "innerError": inner,
    });
    if !report.details.is_empty() {
        error["details"] = report
            .details
            .iter()
            .map(|(code, message, target)| {
                serde_json::json!({"code": code, "message": message, "target": target})
            })
            .collect();
    }
    serde_json::json!({ "error": error }).to_string()
}

/// Domain messages are fragments; the envelope wants sentences.
fn sentence(mut s: String) -> String {
    if let Some(first) = s.get(0..1) {
        let upper = first.to_ascii_uppercase();
        s.replace_range(0..1, &upper);
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(report);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_graph_code() {
        let d = |e: DomainError| ApiError::Domain(e);
        let s = |e: StoreError| ApiError::Store(e);
        let table: Vec<(ApiError, u16, &str)> = vec![
            (
                ApiError::Auth(AuthError::Missing),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::Malformed),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::InvalidSignature),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::Expired),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::UnknownKey {
                    kid: "k".into(),
                    known: vec!["a".into()],
                }),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::InvalidIssuer),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::InvalidAudience),
                401,
                "InvalidAuthenticationToken",
            ),
            (
                ApiError::Auth(AuthError::NoPermissionClaims),
                403,
                "AccessDenied",
            ),
            (
                ApiError::OData(ODataError::UnknownOption("$x".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::InvalidSkipToken),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::FilterSyntax {
                    position: 3,
                    message: "m".into(),
                }),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::FilterTooComplex("deep")),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::UnsupportedFunction("f".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::TypeMismatch("t".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::NotFilterable("p".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::NotSortable("p".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::SearchSyntax("s".into())),
                400,
                "BadRequest",
            ),
            (
                ApiError::OData(ODataError::SearchNeedsConsistencyLevel),
                400,
                "Request_UnsupportedQuery",
            ),
            (d(DomainError::NotAnObject), 400, "ValidationError"),
            (
                d(DomainError::UnknownProperty {
                    property: "x".into(),
                    type_name: "t",
                }),
                400,
                "ValidationError",
            ),
            (
                d(DomainError::WrongType {
                    property: "x".into(),
                    expected: "a string",
                }),
                400,
                "ValidationError",
            ),
            (
                d(DomainError::MissingRequired {
                    property: "displayName",
                }),
                400,
                "ValidationError",
            ),
            (
                d(DomainError::NullNotAllowed {
                    property: "x".into(),
                }),
                400,
                "ValidationError",
            ),
            (
                d(DomainError::TypeMismatch {
                    given: "x".into(),
                    expected: "y",
                }),
                400,
                "ValidationError",
            ),
            (d(DomainError::InvalidId), 400, "ValidationError"),
            (
                d(DomainError::InvalidReference {
                    url: "u".into(),
                    expected: "agentCardManifests",
                }),
                400,
                "ValidationError",
            ),
            (
                d(DomainError::NavigationNotWritable {
                    property: "collections".into(),
                }),
                400,
                "ValidationError",
            ),
            (d(DomainError::BindAndNested), 400, "ValidationError"),
            (
                d(DomainError::ReservedCollectionName("Global".into())),
                409,
                "Conflict",
            ),
            (
                d(DomainError::ReservedCollectionImmutable("Global")),
                403,
                "Forbidden",
            ),
            (
                s(StoreError::NotFound {
                    kind: Entity::Instance,
                    id: "i".into(),
                }),
                404,
                "AgentNotFound",
            ),
            (
                s(StoreError::NotFound {
                    kind: Entity::Manifest,
                    id: "m".into(),
                }),
                404,
                "AgentCardNotFound",
            ),
            (
                s(StoreError::NotFound {
                    kind: Entity::Collection,
                    id: "c".into(),
                }),
                404,
                "AgentCollectionNotFound",
            ),
            (
                s(StoreError::AlreadyExists {
                    kind: Entity::Instance,
                    id: "i".into(),
                }),
                409,
                "AgentAlreadyExists",
            ),
            (
                s(StoreError::AlreadyExists {
                    kind: Entity::Manifest,
                    id: "m".into(),
                }),
                409,
                "AgentCardAlreadyExists",
            ),
            (
                s(StoreError::AlreadyExists {
                    kind: Entity::Collection,
                    id: "c".into(),
                }),
                409,
                "AgentCollectionAlreadyExists",
            ),
            (
                s(StoreError::PreconditionFailed {
                    kind: Entity::Instance,
                    id: "i".into(),
                }),
                412,
                "resourceModified",
            ),
            (
                s(StoreError::ManifestInUse {
                    id: "m".into(),
                    instances: 2,
                }),
                409,
                "Conflict",
            ),
            (
                s(StoreError::AlreadyMember {
                    collection: "c".into(),
                    instance: "i".into(),
                }),
                400,
                "BadRequest",
            ),
            (
                s(StoreError::NotMember {
                    collection: "c".into(),
                    instance: "i".into(),
                }),
                404,
                "Request_ResourceNotFound",
            ),
            (
                s(StoreError::Rejected(DomainError::MissingRequired {
                    property: "displayName",
                })),
                400,
                "ValidationError",
            ),
            (
                s(StoreError::Unavailable("db down".into())),
                503,
                "serviceNotAvailable",
            ),
            (
                s(StoreError::Internal("disk I/O error".into())),
                500,
                "InternalServerError",
            ),
            (ApiError::MalformedJson, 400, "BadRequest"),
            (ApiError::MissingBody, 400, "BadRequest"),
            (ApiError::UnsupportedMediaType, 415, "UnsupportedMediaType"),
            (
                ApiError::PayloadTooLarge { limit: 10 },
                413,
                "RequestEntityTooLarge",
            ),
            (ApiError::UnknownSegment("x".into()), 400, "BadRequest"),
            (
                ApiError::NotImplemented {
                    template: "/beta/copilot/agents",
                    methods: vec!["GET"],
                },
                501,
                "NotImplemented",
            ),
            (ApiError::MethodNotAllowed, 405, "Request_BadRequest"),
            (ApiError::InvalidKey, 400, "BadRequest"),
            (ApiError::NulCharacter("request body"), 400, "BadRequest"),
            (ApiError::MalformedRequest, 400, "BadRequest"),
            (ApiError::UriTooLong, 414, "RequestUriTooLong"),
            (
                ApiError::HeadersTooLarge,
                431,
                "RequestHeaderFieldsTooLarge",
            ),
            (
                ApiError::OData(ODataError::NulCharacter("$filter")),
                400,
                "BadRequest",
            ),
            (
                ApiError::ManifestNotLinked("i".into()),
                404,
                "AgentCardNotFound",
            ),
            (
                ApiError::NotInCollection {
                    instance: "i".into(),
                    collection: "c".into(),
                },
                404,
                "Request_ResourceNotFound",
            ),
            (
                ApiError::Internal("boom".into()),
                500,
                "InternalServerError",
            ),
            (ApiError::CopilotMethodNotAllowed, 405, "methodNotAllowed"),
            (
                ApiError::MalformedEntityTag(Header::IfMatch),
                400,
                "BadRequest",
            ),
            (ApiError::IfNoneMatchNotStar, 400, "BadRequest"),
            (
                ApiError::EntityExists {
                    kind: Entity::Collection,
                    id: "c".into(),
                },
                412,
                "PreconditionFailed",
            ),
            (
                ApiError::Denied(Denied::ApplicationNotSupported),
                403,
                "Authorization_RequestDenied",
            ),
            (
                ApiError::Denied(Denied::DelegatedNotSupported),
                403,
                "Authorization_RequestDenied",
            ),
            (
                ApiError::Denied(Denied::MissingPermission {
                    claim: "scp",
                    any_of: vec!["A"],
                }),
                403,
                "Authorization_RequestDenied",
            ),
            (
                ApiError::Denied(Denied::MissingRole {
                    any_of: vec!["R".into()],
                }),
                403,
                "Authorization_RequestDenied",
            ),
            (
                ApiError::Denied(Denied::NotManagedByCaller),
                403,
                "Authorization_RequestDenied",
            ),
            (
                ApiError::Injected {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    code: "gatewayTimeout".into(),
                    message: "m".into(),
                    retry_after: None,
                },
                504,
                "gatewayTimeout",
            ),
            (
                ApiError::Throttled { retry_after: 3 },
                429,
                "TooManyRequests",
            ),
            (
                ApiError::InvalidSnapshot(crate::seed::Invalid {
                    item: "agentInstances[0]".into(),
                    reason: "r".into(),
                }),
                400,
                "BadRequest",
            ),
            (
                ApiError::InvalidControlRequest("bad".into()),
                400,
                "BadRequest",
            ),
            (
                ApiError::FaultRuleNotFound("x".into()),
                404,
                "Request_ResourceNotFound",
            ),
            (
                ApiError::Subscription(
                    crate::domain::subscriptions::SubscriptionError::ExpirationInPast,
                ),
                400,
                "InvalidRequest",
            ),
            (
                ApiError::Handshake(crate::notify::NotifyError::WrongToken),
                400,
                "InvalidRequest",
            ),
            (
                ApiError::Handshake(crate::notify::NotifyError::NotAllowed("10.0.0.1".into())),
                400,
                "InvalidRequest",
            ),
            (
                ApiError::SubscriptionNotFound("x".into()),
                404,
                "ResourceNotFound",
            ),
            (
                ApiError::AgentHasNoCard("x".into()),
                404,
                "ResourceNotFound",
            ),
            (ApiError::NotReady("x".into()), 503, "serviceNotAvailable"),
            (
                ApiError::DevSignInRefused(DevSignInRefusal::Off),
                403,
                "Forbidden",
            ),
            (
                ApiError::DevSignInRefused(DevSignInRefusal::NotLoopback),
                403,
                "Forbidden",
            ),
            (
                ApiError::DevSignInRefused(DevSignInRefusal::ForeignHost("x".into())),
                403,
                "Forbidden",
            ),
            (
                ApiError::DevSignInRefused(DevSignInRefusal::CrossOrigin("x".into())),
                403,
                "Forbidden",
            ),
            (ApiError::ConsoleFileNotFound("x".into()), 404, "NotFound"),
        ];
        for (error, status, code) in table {
            let r = error.report();
            assert_eq!(
                (r.status.as_u16(), r.code.as_ref()),
                (status, code),
                "{error:?}"
            );
            assert!(!r.message.is_empty(), "{error:?}");
        }
    }

    #[test]
    fn every_copilot_error_maps_to_its_status_code_and_inner_code() {
        use crate::domain::copilot::PolicyService;
        let c = |e: CopilotError| ApiError::from(e);
        let table: Vec<(ApiError, u16, &str, &str)> = vec![
            (
                c(CopilotError::UnsupportedSetting("x".into())),
                404,
                "notFound",
                "unsupportedSetting",
            ),
            (
                c(CopilotError::TooManyGroupPolicies { count: 3, limit: 2 }),
                502,
                "badGateway",
                "tooManyGroupPolicies",
            ),
            (
                c(CopilotError::GroupScopedSetting("x".into())),
                422,
                "unprocessableEntity",
                "groupScopedSettingNotSupported",
            ),
            (
                c(CopilotError::UserScopedPolicy("p".into())),
                422,
                "unprocessableEntity",
                "userScopedPolicyNotSupported",
            ),
            (
                c(CopilotError::ServiceMismatch {
                    setting_id: "x",
                    owner: PolicyService::CloudPolicyService,
                    policy_id: "p".into(),
                    policy_service: PolicyService::Intune,
                }),
                422,
                "unprocessableEntity",
                "policyServiceMismatch",
            ),
            (
                c(CopilotError::PolicyNotFound("p".into())),
                404,
                "notFound",
                "policyNotFound",
            ),
            (
                c(CopilotError::PolicyAlreadyExists("p".into())),
                409,
                "conflict",
                "policyAlreadyExists",
            ),
            (
                c(CopilotError::InvalidValue {
                    setting_id: "x",
                    value: "9".into(),
                    allowed: &["0", "1"],
                }),
                400,
                "badRequest",
                "invalidSettingValue",
            ),
            (
                c(CopilotError::NotAnObject),
                400,
                "badRequest",
                "invalidRequestBody",
            ),
            (
                c(CopilotError::MissingProperty("value")),
                400,
                "badRequest",
                "missingRequiredProperty",
            ),
            (
                c(CopilotError::WrongType {
                    property: "value".into(),
                    expected: "a string",
                }),
                400,
                "badRequest",
                "invalidPropertyValue",
            ),
            (
                c(CopilotError::ReadOnlyProperty("id".into())),
                400,
                "badRequest",
                "readOnlyProperty",
            ),
            (
                c(CopilotError::UnknownProperty {
                    property: "x".into(),
                    type_name: "t",
                }),
                400,
                "badRequest",
                "unknownProperty",
            ),
            (
                c(CopilotError::TypeMismatch {
                    given: "x".into(),
                    expected: "t",
                }),
                400,
                "badRequest",
                "typeMismatch",
            ),
            (
                c(CopilotError::InvalidPolicy("Bad.".into())),
                400,
                "badRequest",
                "invalidPolicy",
            ),
            (
                ApiError::Store(StoreError::Rejected(DomainError::Copilot(
                    CopilotError::PolicyNotFound("p".into()),
                ))),
                404,
                "notFound",
                "policyNotFound",
            ),
        ];
        for (error, status, code, inner) in table {
            let r = error.report();
            assert_eq!(
                (r.status.as_u16(), r.code.as_ref(), r.inner_code),
                (status, code, Some(inner)),
                "{error:?}"
            );
            assert!(r.message.ends_with('.'), "{error:?}");
            assert!(r.detail.is_none(), "{error:?}");
        }
    }

    #[test]
    fn copilot_messages_follow_the_documented_wording() {
        let r = ApiError::from(CopilotError::UnsupportedSetting(
            "microsoft.copilot.pinning".into(),
        ))
        .report();
        assert_eq!(
            r.message,
            "The setting 'microsoft.copilot.pinning' is not supported. Only supported Copilot settings can be accessed through this endpoint."
        );
        let r = ApiError::from(CopilotError::GroupScopedSetting(
            "microsoft.copilot.copilotchatpinning".into(),
        ))
        .report();
        assert_eq!(
            r.message,
            "The setting 'microsoft.copilot.copilotchatpinning' is scoped to a group-level policy, which is not supported by this endpoint. Only tenant-level policy settings are supported."
        );
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        for error in [
            ApiError::Internal("secret path /var/db".into()),
            ApiError::Store(StoreError::Internal("secret path /var/db".into())),
            ApiError::NotReady("secret path /var/db".into()),
            ApiError::Store(StoreError::Unavailable("secret path /var/db".into())),
        ] {
            let r = error.report();
            assert!(!r.message.contains("secret"), "{error:?}");
            assert_eq!(r.detail.as_deref(), Some("secret path /var/db"));
        }
    }

    #[test]
    fn a_reserved_collection_refusal_carries_the_documented_word() {
        let r = ApiError::Domain(DomainError::ReservedCollectionImmutable("Global")).report();
        assert!(r.message.starts_with("collectionImmutable"));
        assert_eq!(r.inner_code, Some("collectionImmutable"));
    }
}

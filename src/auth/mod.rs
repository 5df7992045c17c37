//! Access tokens: the signing keys in the data folder, minting tokens for
//! `agentry token`, and verifying the bearer tokens of incoming requests into a
//! [`Principal`] that the HTTP layer hands to every handler.

mod keys;
pub mod oidc;
pub mod permissions;

pub use keys::{
    DEFAULT_CLOCK_SKEW_SECONDS, Jwk, KeyError, KeyRing, MAX_TOKEN_LIFETIME_SECONDS, TokenRequest,
    issuer,
};

/// The audience Microsoft Graph tokens carry; Agentry accepts both spellings.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The tenant of tokens that name none (`agentry token`, the banner's token).
pub const DEFAULT_TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";
/// The built-in admin user: the signed-in user of default delegated tokens.
pub const DEFAULT_USER: &str = "c0ffee00-0000-4000-8000-0000000000a1";
/// The client id of the web console, the one public client of the built-in
/// identity provider's authorization-code flow (its redirect URI is the
/// server's own `/console/`).
pub const CONSOLE_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000c1";
/// The directory roles of a default delegated token.
pub const DEFAULT_WIDS: [&str; 2] = [
    permissions::AGENT_REGISTRY_ADMINISTRATOR,
    permissions::GLOBAL_ADMINISTRATOR,
];

impl TokenRequest {
    /// The default token of `agentry token`: the built-in admin user of the
    /// default tenant, with every delegated permission Agentry checks and
    /// the directory roles [`DEFAULT_WIDS`].
    pub fn builtin_admin(issued_at: i64, expires_in: i64) -> TokenRequest {
        TokenRequest {
            tenant_id: DEFAULT_TENANT.to_owned(),
            kind: CallerKind::Delegated,
            subject: DEFAULT_USER.to_owned(),
            scopes: permissions::all_delegated_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            roles: Vec::new(),
            wids: DEFAULT_WIDS.iter().map(|w| (*w).to_owned()).collect(),
            issued_at,
            expires_in,
        }
    }
}

/// Whether the caller acts for a signed-in user or as an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// A user's token: permissions in `scp`, directory roles in `wids`.
    Delegated,
    /// An application's own token: permissions in `roles`.
    Application,
}

/// Who is calling, as the verified token says. Permission checks read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub kind: CallerKind,
    /// `oid`: the user's object id, or the application's service principal.
    pub object_id: Option<String>,
    /// `appid` (or `azp`): the calling application's client id.
    pub app_id: Option<String>,
    /// Delegated permissions (`scp`).
    pub scopes: Vec<String>,
    /// Application permissions (`roles`).
    pub roles: Vec<String>,
    /// Directory role template ids (`wids`).
    pub wids: Vec<String>,
    /// Agent Registry roles scoped to the registry that `wids` holds (by
    /// name, from [`permissions::SCOPED_ROLES`]), as configured.
    pub scoped_roles: Vec<&'static str>,
    /// `exp`, in Unix seconds.
    pub expires_at: i64,
    /// `upn` (or `preferred_username`): a user's sign-in name, when the
    /// token carries one.
    pub user_principal_name: Option<String>,
}

impl Principal {
    /// The id recorded as `createdBy`: the user, else the application.
    pub fn actor_id(&self) -> Option<&str> {
        self.object_id.as_deref().or(self.app_id.as_deref())
    }
}

/// Why a request's token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token signature or algorithm is not acceptable")]
    InvalidSignature,
    /// Signed by a key this server does not have: most often a token from
    /// `agentry token` run on another data folder.
    #[error("the token is signed with key '{kid}', which this server does not have (it has: {})", .known.join(", "))]
    UnknownKey { kid: String, known: Vec<String> },
    #[error("the token has expired or is not yet valid")]
    Expired,
    #[error("the token is for another audience")]
    InvalidAudience,
    #[error("the token comes from another issuer")]
    InvalidIssuer,
    #[error("the token carries neither scp nor roles")]
    NoPermissionClaims,
}

//! Server configuration: compiled defaults, then an optional TOML file, then
//! `AGENTRY_*` environment variables, then command-line flags (the last wins).
//!
//! The flags and variables are declared in [`crate::cli`]; this module merges
//! them with the file and the defaults into one [`ServerConfig`].

use crate::domain::copilot::{CopilotRules, DEFAULT_MAX_GROUP_POLICIES};
pub use crate::http::journal::JournalSettings;
pub use crate::http::serve::ConnectionSettings;
pub use crate::http::throttle::ThrottleSettings;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7171";
pub const DEFAULT_DATA_DIR: &str = "./agentry-data";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything `agentry serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: String,
    /// Holds the SQLite file and the signing keys.
    pub data_dir: PathBuf,
    /// Holds the signing keys and the paging-token secret; replicas share it.
    pub keys_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Connections in the PostgreSQL pool (per process).
    pub db_pool_size: usize,
    /// Megabytes of documents kept in memory for reads by id (SQLite; 0: off).
    pub read_cache_mb: usize,
    /// Requests with larger bodies get 413.
    pub max_body_bytes: usize,
    /// Build absolute URLs from `X-Forwarded-Host` / `X-Forwarded-Proto`.
    pub trust_proxy: bool,
    /// The Copilot settings rules (group-policy limit, strict values).
    pub copilot: CopilotRules,
    /// A JSON file of objects to load at start (see `docs/seed.md`).
    pub seed: Option<PathBuf>,
    /// Seconds of clock difference tolerated on token `exp` and `nbf`.
    pub clock_skew_seconds: u64,
    /// Serve HTTPS with these files.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Serve HTTPS with a self-signed certificate kept in the data folder.
    pub tls_self_signed: bool,
    /// Accept tokens signed by Agentry's own keys (`agentry token`, the token endpoint).
    pub builtin_tokens: bool,
    /// Also accept tokens from this external OpenID Connect issuer.
    pub oidc: Option<crate::auth::oidc::OidcConfig>,
    /// Template ids of the registry-scoped roles: (id, role name).
    pub scoped_roles: Vec<(String, &'static str)>,
    /// Throttling mode (a token bucket per tenant and application); `None` is off.
    pub throttle: Option<ThrottleSettings>,
    /// The request journal of the control plane.
    pub journal: JournalSettings,
    /// The cap on connections and their timeouts.
    pub connections: ConnectionSettings,
    /// Origins browsers may call from (CORS); empty is off, `*` any.
    pub cors_origins: Vec<String>,
    /// Days the audit log keeps a record; older ones are pruned in the background.
    pub audit_retention_days: u32,
    /// How the A2A cards of registrations are checked (off, warn, require).
    pub card_validation: crate::domain::a2a::ValidationMode,
    /// Whether their signatures are checked (off, verify-if-present, require).
    pub card_signatures: crate::domain::a2a::SignatureMode,
    /// The keys card signatures are checked against: a JWK set (JSON).
    pub card_trust_store: Option<PathBuf>,
    /// Change notifications: where they may go, how long receivers are retried.
    pub notifications: NotificationConfig,
    /// Let the console sign in as the built-in admin user without a password
    /// (`POST /console/session`); honoured only on a loopback listener.
    pub console_dev_signin: bool,
    /// Watching registered agents: where checks may go, how fast.
    pub watch: WatchConfig,
}

/// How registered agents are checked (for tenants that watch them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Hosts and networks checks may go to; `None`: public addresses, and
    /// loopback when listening on loopback.
    pub allow: Option<crate::outbound::AllowList>,
    /// Seconds an agent has to answer.
    pub timeout_seconds: u64,
    /// Checks started per second, over every tenant.
    pub checks_per_second: u32,
    /// Checks of one host at once.
    pub per_host: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            allow: None,
            timeout_seconds: 5,
            checks_per_second: 10,
            per_host: 2,
        }
    }
}

/// Change notification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfig {
    /// Hosts and networks notifications may go to; `None`: public
    /// addresses, and loopback when listening on loopback.
    pub allow: Option<crate::outbound::AllowList>,
    /// The longest lifetime of a subscription, in minutes.
    pub max_minutes: u32,
    /// Seconds a failing receiver is retried before its changes are dropped.
    pub retry_seconds: u64,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        NotificationConfig {
            allow: None,
            max_minutes: 4230,
            retry_seconds: 4 * 3600,
        }
    }
}

/// Days an audit record is kept unless configured otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 30;

impl ServerConfig {
    /// A configuration with every default, rooted at `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            database_url: default_database_url(&data_dir),
            db_pool_size: crate::store::postgres::DEFAULT_POOL_SIZE,
            read_cache_mb: crate::store::DEFAULT_READ_CACHE_MB,
            keys_dir: default_keys_dir(&data_dir),
            data_dir,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            trust_proxy: false,
            copilot: CopilotRules::default(),
            seed: None,
            clock_skew_seconds: crate::auth::DEFAULT_CLOCK_SKEW_SECONDS,
            tls: None,
            tls_self_signed: false,
            builtin_tokens: true,
            oidc: None,
            scoped_roles: Vec::new(),
            throttle: None,
            journal: JournalSettings::default(),
            connections: ConnectionSettings::default(),
            cors_origins: Vec::new(),
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            card_validation: Default::default(),
            card_signatures: Default::default(),
            card_trust_store: None,
            notifications: NotificationConfig::default(),
            watch: WatchConfig::default(),
            console_dev_signin: false,
        }
    }
}

/// The database URL used when none is configured.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("agentry.db").display())
}

/// The keys folder used when none is configured.
pub fn default_keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// The keys a configuration file may hold; every one is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub db_pool_size: Option<usize>,
    pub read_cache_mb: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub trust_proxy: Option<bool>,
    pub seed: Option<PathBuf>,
    pub clock_skew_seconds: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub builtin_tokens: Option<bool>,
    pub audit_retention_days: Option<u32>,
    pub card_validation: Option<crate::domain::a2a::ValidationMode>,
    pub card_signatures: Option<crate::domain::a2a::SignatureMode>,
    pub card_trust_store: Option<PathBuf>,
    pub console_dev_signin: Option<bool>,
    pub oidc: Option<FileOidc>,
    /// Role name → template id.
    #[serde(default)]
    pub scoped_roles: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub copilot: FileCopilot,
    #[serde(default)]
    pub throttle: FileThrottle,
    #[serde(default)]
    pub journal: FileJournal,
    #[serde(default)]
    pub connections: FileConnections,
    #[serde(default)]
    pub notifications: FileNotifications,
    #[serde(default)]
    pub watch: FileWatch,
    /// Origins browsers may call from (CORS).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// The `[connections]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnections {
    pub max: Option<usize>,
    pub header_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
}

/// The `[throttle]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileThrottle {
    /// Requests a second per tenant and application; absent or 0 is off.
    pub rate: Option<f64>,
    /// Requests that may come at once after a quiet spell.
    pub burst: Option<u32>,
}

/// The `[journal]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJournal {
    pub size: Option<usize>,
    pub bodies: Option<bool>,
    pub body_bytes: Option<usize>,
}

/// The `[notifications]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNotifications {
    pub allow: Option<Vec<String>>,
    pub max_minutes: Option<u32>,
    pub retry_seconds: Option<u64>,
}

/// The `[watch]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWatch {
    pub allow: Option<Vec<String>>,
    pub timeout_seconds: Option<u64>,
    pub checks_per_second: Option<u32>,
    pub per_host: Option<usize>,
}

/// The `[oidc]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOidc {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks: String,
    /// The web console's client id at the issuer: the console signs in there.
    pub console_client_id: Option<String>,
    pub console_scope: Option<String>,
    pub console_tenant: Option<String>,
    pub discovery: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// `--oidc-console-*`, `--oidc-discovery` and the endpoints, as given.
#[derive(Debug, Default, Clone)]
pub struct OidcConsoleOverrides {
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub tenant: Option<String>,
    pub discovery: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// The `[copilot]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCopilot {
    pub max_group_policies: Option<usize>,
    pub strict_values: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("'{0}' is not a registry-scoped role; the names are: {names}", names = crate::auth::permissions::SCOPED_ROLES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    UnknownScopedRole(String),
    #[error("'{0}' is not NAME=TEMPLATE-ID")]
    BadScopedRole(String),
    #[error("notification allow-list: {0}")]
    BadAllowList(#[from] crate::outbound::BadRule),
    #[error("watch allow-list: {0}")]
    BadWatchAllowList(crate::outbound::BadRule),
}

/// Role names and template ids from the file and `--scoped-role NAME=ID`.
fn scoped_roles(
    file: &std::collections::BTreeMap<String, String>,
    flags: &[String],
) -> Result<Vec<(String, &'static str)>, ConfigError> {
    let mut pairs: Vec<(String, String)> =
        file.iter().map(|(n, id)| (n.clone(), id.clone())).collect();
    for flag in flags {
        let (name, id) = flag
            .split_once('=')
            .ok_or_else(|| ConfigError::BadScopedRole(flag.clone()))?;
        pairs.push((name.trim().to_owned(), id.trim().to_owned()));
    }
    pairs
        .into_iter()
        .map(|(name, id)| {
            let role = crate::auth::permissions::scoped_role(&name)
                .ok_or(ConfigError::UnknownScopedRole(name))?;
            Ok((id, role))
        })
        .collect()
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// Values given on the command line or in the environment (already merged by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    /// `--cors-origin` values; empty: the file's.
    pub cors_origins: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub db_pool_size: Option<usize>,
    pub read_cache_mb: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub trust_proxy: Option<bool>,
    pub seed: Option<PathBuf>,
    pub clock_skew_seconds: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub builtin_tokens: Option<bool>,
    pub audit_retention_days: Option<u32>,
    pub card_validation: Option<crate::domain::a2a::ValidationMode>,
    pub card_signatures: Option<crate::domain::a2a::SignatureMode>,
    pub card_trust_store: Option<PathBuf>,
    pub console_dev_signin: Option<bool>,
    /// `--notification-allow` values; empty: the file's.
    pub notification_allow: Vec<String>,
    pub notification_retry_seconds: Option<u64>,
    /// `--watch-allow` values; empty: the file's.
    pub watch_allow: Vec<String>,
    /// `NAME=ID` pairs.
    pub scoped_roles: Vec<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_audiences: Option<Vec<String>>,
    pub oidc_jwks: Option<String>,
    pub oidc_console: OidcConsoleOverrides,
    pub copilot_max_group_policies: Option<usize>,
    pub copilot_strict_values: Option<bool>,
    pub throttle_rate: Option<f64>,
    pub throttle_burst: Option<u32>,
    pub journal_size: Option<usize>,
    pub journal_bodies: Option<bool>,
    pub journal_body_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
}

/// Merges flags and environment over the file over the defaults.
pub fn resolve(file: FileConfig, over: Overrides) -> Result<ServerConfig, ConfigError> {
    let roles = scoped_roles(&file.scoped_roles, &over.scoped_roles)?;
    let allow = match (&over.notification_allow, &file.notifications.allow) {
        (flags, _) if !flags.is_empty() => Some(crate::outbound::AllowList::parse(flags)?),
        (_, Some(entries)) => Some(crate::outbound::AllowList::parse(entries)?),
        _ => None,
    };
    let watch_allow = match (&over.watch_allow, &file.watch.allow) {
        (flags, _) if !flags.is_empty() => Some(flags.as_slice()),
        (_, Some(entries)) => Some(entries.as_slice()),
        _ => None,
    }
    .map(crate::outbound::AllowList::parse)
    .transpose()
    .map_err(ConfigError::BadWatchAllowList)?;
    let mut config = merge(file, over);
    config.notifications.allow = allow;
    config.watch.allow = watch_allow;
    config.scoped_roles = roles;
    Ok(config)
}

/// Throttling is on when a positive rate is configured; the burst defaults
/// to one second's worth of requests.
fn throttle(file: &FileThrottle, over: &Overrides) -> Option<ThrottleSettings> {
    let rate = over.throttle_rate.or(file.rate).filter(|r| *r > 0.0)?;
    let burst = over
        .throttle_burst
        .or(file.burst)
        .unwrap_or(rate.ceil() as u32)
        .max(1);
    Some(ThrottleSettings { rate, burst })
}

fn merge(file: FileConfig, over: Overrides) -> ServerConfig {
    let throttle = throttle(&file.throttle, &over);
    let journal_defaults = JournalSettings::default();
    let journal = JournalSettings {
        capacity: over
            .journal_size
            .or(file.journal.size)
            .unwrap_or(journal_defaults.capacity),
        bodies: over
            .journal_bodies
            .or(file.journal.bodies)
            .unwrap_or(journal_defaults.bodies),
        body_bytes: over
            .journal_body_bytes
            .or(file.journal.body_bytes)
            .unwrap_or(journal_defaults.body_bytes),
    };
    let connection_defaults = ConnectionSettings::default();
    let seconds = |over: Option<u64>, file: Option<u64>, default: std::time::Duration| {
        over.or(file)
            .filter(|s| *s > 0)
            .map_or(default, std::time::Duration::from_secs)
    };
    let connections = ConnectionSettings {
        max_connections: over
            .max_connections
            .or(file.connections.max)
            .filter(|n| *n > 0)
            .unwrap_or(connection_defaults.max_connections),
        header_timeout: seconds(
            over.header_timeout_seconds,
            file.connections.header_timeout_seconds,
            connection_defaults.header_timeout,
        ),
        idle_timeout: seconds(
            over.idle_timeout_seconds,
            file.connections.idle_timeout_seconds,
            connection_defaults.idle_timeout,
        ),
    };
    let data_dir = over
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = over
        .database_url
        .or(file.database_url)
        .unwrap_or_else(|| default_database_url(&data_dir));
    let keys_dir = over
        .keys_dir
        .or(file.keys_dir)
        .unwrap_or_else(|| default_keys_dir(&data_dir));
    ServerConfig {
        keys_dir,
        listen: over
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        database_url,
        data_dir,
        db_pool_size: over
            .db_pool_size
            .or(file.db_pool_size)
            .filter(|n| *n > 0)
            .unwrap_or(crate::store::postgres::DEFAULT_POOL_SIZE),
        read_cache_mb: over
            .read_cache_mb
            .or(file.read_cache_mb)
            .unwrap_or(crate::store::DEFAULT_READ_CACHE_MB),
        max_body_bytes: over
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        trust_proxy: over.trust_proxy.or(file.trust_proxy).unwrap_or(false),
        audit_retention_days: over
            .audit_retention_days
            .or(file.audit_retention_days)
            .filter(|d| *d > 0)
            .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
        card_validation: over
            .card_validation
            .or(file.card_validation)
            .unwrap_or_default(),
        card_signatures: over
            .card_signatures
            .or(file.card_signatures)
            .unwrap_or_default(),
        card_trust_store: over.card_trust_store.or(file.card_trust_store),
        console_dev_signin: over
            .console_dev_signin
            .or(file.console_dev_signin)
            .unwrap_or(false),
        notifications: NotificationConfig {
            allow: None,
            max_minutes: file
                .notifications
                .max_minutes
                .filter(|m| *m > 0)
                .unwrap_or(NotificationConfig::default().max_minutes),
            retry_seconds: over
                .notification_retry_seconds
                .or(file.notifications.retry_seconds)
                .unwrap_or(NotificationConfig::default().retry_seconds),
        },
        watch: WatchConfig {
            allow: None,
            timeout_seconds: file
                .watch
                .timeout_seconds
                .filter(|s| *s > 0)
                .unwrap_or(WatchConfig::default().timeout_seconds),
            checks_per_second: file
                .watch
                .checks_per_second
                .filter(|n| *n > 0)
                .unwrap_or(WatchConfig::default().checks_per_second),
            per_host: file
                .watch
                .per_host
                .filter(|n| *n > 0)
                .unwrap_or(WatchConfig::default().per_host),
        },
        copilot: CopilotRules {
            max_group_policies: over
                .copilot_max_group_policies
                .or(file.copilot.max_group_policies)
                .unwrap_or(DEFAULT_MAX_GROUP_POLICIES),
            strict_values: over
                .copilot_strict_values
                .or(file.copilot.strict_values)
                .unwrap_or(false),
        },
        seed: over.seed.or(file.seed),
        clock_skew_seconds: over
            .clock_skew_seconds
            .or(file.clock_skew_seconds)
            .unwrap_or(crate::auth::DEFAULT_CLOCK_SKEW_SECONDS),
        tls: match (
            over.tls_cert.or(file.tls_cert),
            over.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
            _ => None,
        },
        tls_self_signed: over
            .tls_self_signed
            .or(file.tls_self_signed)
            .unwrap_or(false),
        builtin_tokens: over.builtin_tokens.or(file.builtin_tokens).unwrap_or(true),
        scoped_roles: Vec::new(),
        throttle,
        journal,
        connections,
        cors_origins: if over.cors_origins.is_empty() {
            file.cors_origins
        } else {
            over.cors_origins
        },
        oidc: {
            let f = file.oidc.unwrap_or_default();
            let issuer = over.oidc_issuer.unwrap_or(f.issuer);
            let jwks = over.oidc_jwks.unwrap_or(f.jwks);
            let audiences = over.oidc_audiences.unwrap_or(f.audiences);
            let c = over.oidc_console;
            let console = c.client_id.or(f.console_client_id).map(|client_id| {
                crate::auth::oidc::ConsoleClient {
                    client_id,
                    scope: c.scope.or(f.console_scope),
                    tenant: c.tenant.or(f.console_tenant),
                    discovery: c.discovery.or(f.discovery),
                    authorization_endpoint: c.authorization_endpoint.or(f.authorization_endpoint),
                    token_endpoint: c.token_endpoint.or(f.token_endpoint),
                }
            });
            (!issuer.is_empty() && !jwks.is_empty()).then_some(crate::auth::oidc::OidcConfig {
                issuer,
                audiences,
                jwks,
                console,
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `examples/agentry.toml` with its commented keys and tables turned on.
    fn every_example_key() -> String {
        include_str!("../examples/agentry.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.starts_with('"')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_example_file_names_every_key_and_parses_with_them_all_set() {
        // Destructured whole: a key added to FileConfig must be added here
        // and to the example.
        let FileConfig {
            listen,
            data_dir,
            keys_dir,
            database_url,
            db_pool_size,
            read_cache_mb,
            max_body_bytes,
            trust_proxy,
            seed,
            clock_skew_seconds,
            tls_cert,
            tls_key,
            tls_self_signed,
            builtin_tokens,
            audit_retention_days,
            card_validation,
            card_signatures,
            card_trust_store,
            console_dev_signin,
            oidc,
            scoped_roles,
            copilot,
            throttle,
            journal,
            connections,
            notifications,
            watch,
            cors_origins,
        } = FileConfig::parse(&every_example_key()).unwrap();
        let set = [
            listen.is_some(),
            data_dir.is_some(),
            keys_dir.is_some(),
            database_url.is_some(),
            db_pool_size.is_some(),
            read_cache_mb.is_some(),
            max_body_bytes.is_some(),
            trust_proxy.is_some(),
            seed.is_some(),
            clock_skew_seconds.is_some(),
            tls_cert.is_some() && tls_key.is_some(),
            tls_self_signed.is_some(),
            builtin_tokens.is_some(),
            audit_retention_days.is_some(),
            card_validation.is_some(),
            card_signatures.is_some() && card_trust_store.is_some(),
            console_dev_signin.is_some(),
            oidc.is_some(),
            !scoped_roles.is_empty(),
            !cors_origins.is_empty(),
            copilot.max_group_policies.is_some() && copilot.strict_values.is_some(),
            throttle.rate.is_some() && throttle.burst.is_some(),
            journal.size.is_some() && journal.bodies.is_some() && journal.body_bytes.is_some(),
            connections.max.is_some()
                && connections.header_timeout_seconds.is_some()
                && connections.idle_timeout_seconds.is_some(),
            notifications.allow.is_some()
                && notifications.max_minutes.is_some()
                && notifications.retry_seconds.is_some(),
            watch.allow.is_some()
                && watch.timeout_seconds.is_some()
                && watch.checks_per_second.is_some()
                && watch.per_host.is_some(),
        ];
        assert!(set.iter().all(|s| *s), "{set:?}");
        // And commented out, as shipped, it sets nothing.
        let shipped = FileConfig::parse(include_str!("../examples/agentry.toml")).unwrap();
        assert!(shipped.listen.is_none() && shipped.oidc.is_none());
    }

    #[test]
    fn defaults_apply_when_nothing_is_configured() {
        let c = resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7171");
        assert_eq!(c.data_dir, PathBuf::from("./agentry-data"));
        assert_eq!(c.database_url, "sqlite://./agentry-data/agentry.db");
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(!c.trust_proxy);
        assert_eq!(c.copilot.max_group_policies, 20);
        assert!(!c.copilot.strict_values);
        assert_eq!(c.seed, None);
        assert!(!c.console_dev_signin);
    }

    #[test]
    fn the_pool_size_comes_from_the_file_unless_overridden_and_zero_means_the_default() {
        let file = FileConfig::parse("db_pool_size = 4\n").unwrap();
        assert_eq!(resolve(file, Overrides::default()).unwrap().db_pool_size, 4);
        let file = FileConfig::parse("db_pool_size = 4\n").unwrap();
        let over = Overrides {
            db_pool_size: Some(32),
            ..Overrides::default()
        };
        assert_eq!(resolve(file, over).unwrap().db_pool_size, 32);
        let file = FileConfig::parse("db_pool_size = 0\n").unwrap();
        assert_eq!(
            resolve(file, Overrides::default()).unwrap().db_pool_size,
            crate::store::postgres::DEFAULT_POOL_SIZE
        );
    }

    #[test]
    fn the_read_cache_size_comes_from_the_file_unless_overridden_and_zero_turns_it_off() {
        let none = FileConfig::parse("").unwrap();
        assert_eq!(
            resolve(none, Overrides::default()).unwrap().read_cache_mb,
            crate::store::DEFAULT_READ_CACHE_MB
        );
        let file = FileConfig::parse("read_cache_mb = 0\n").unwrap();
        assert_eq!(
            resolve(file, Overrides::default()).unwrap().read_cache_mb,
            0
        );
        let file = FileConfig::parse("read_cache_mb = 0\n").unwrap();
        let over = Overrides {
            read_cache_mb: Some(256),
            ..Overrides::default()
        };
        assert_eq!(resolve(file, over).unwrap().read_cache_mb, 256);
    }

    #[test]
    fn the_copilot_table_and_seed_come_from_the_file_unless_overridden() {
        let file = FileConfig::parse(
            "seed = \"seed.json\"\n[copilot]\nmax_group_policies = 3\nstrict_values = true\n",
        )
        .unwrap();
        let over = Overrides {
            copilot_max_group_policies: Some(7),
            ..Overrides::default()
        };
        let c = resolve(file, over).unwrap();
        assert_eq!(c.copilot.max_group_policies, 7);
        assert!(c.copilot.strict_values);
        assert_eq!(c.seed, Some(PathBuf::from("seed.json")));
        assert!(FileConfig::parse("[copilot]\nmax_groups = 1").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = FileConfig::parse(
            "listen = \"0.0.0.0:8080\"\ndata_dir = \"/srv/agentry\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let over = Overrides {
            listen: Some("127.0.0.1:9".into()),
            ..Overrides::default()
        };
        let c = resolve(file, over).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9");
        assert_eq!(c.data_dir, PathBuf::from("/srv/agentry"));
        assert_eq!(c.database_url, "sqlite:///srv/agentry/agentry.db");
        assert_eq!(c.max_body_bytes, 10);
    }

    #[test]
    fn the_keys_folder_follows_the_data_folder_unless_set() {
        let file = FileConfig::parse("data_dir = \"/srv/agentry\"\n").unwrap();
        let c = resolve(file, Overrides::default()).unwrap();
        assert_eq!(c.keys_dir, PathBuf::from("/srv/agentry/keys"));
        let file = FileConfig::parse("keys_dir = \"/run/secrets/agentry\"\n").unwrap();
        let over = Overrides {
            keys_dir: Some("/mnt/keys".into()),
            ..Overrides::default()
        };
        assert_eq!(
            resolve(
                FileConfig::parse("keys_dir = \"/k\"\n").unwrap(),
                Overrides::default()
            )
            .unwrap()
            .keys_dir,
            PathBuf::from("/k")
        );
        assert_eq!(
            resolve(file, over).unwrap().keys_dir,
            PathBuf::from("/mnt/keys")
        );
    }

    #[test]
    fn scoped_roles_map_names_to_template_ids_and_refuse_unknown_names() {
        let file =
            FileConfig::parse("[scoped_roles]\n\"Agent Instance Reader\" = \"id-1\"\n").unwrap();
        let over = Overrides {
            scoped_roles: vec!["agent collection creator=id-2".into()],
            ..Overrides::default()
        };
        let c = resolve(file, over).unwrap();
        assert_eq!(
            c.scoped_roles,
            vec![
                ("id-1".to_owned(), "Agent Instance Reader"),
                ("id-2".to_owned(), "Agent Collection Creator")
            ]
        );
        let bad = Overrides {
            scoped_roles: vec!["Teams Administrator=x".into()],
            ..Overrides::default()
        };
        assert!(matches!(
            resolve(FileConfig::default(), bad),
            Err(ConfigError::UnknownScopedRole(_))
        ));
        let bad = Overrides {
            scoped_roles: vec!["no equals sign".into()],
            ..Overrides::default()
        };
        assert!(matches!(
            resolve(FileConfig::default(), bad),
            Err(ConfigError::BadScopedRole(_))
        ));
    }

    #[test]
    fn throttling_is_off_by_default_and_the_burst_defaults_to_the_rate() {
        let c = resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.throttle, None);
        assert_eq!(c.journal, JournalSettings::default());
        let file =
            FileConfig::parse("[throttle]\nrate = 2.5\n[journal]\nsize = 10\nbodies = true\n")
                .unwrap();
        let c = resolve(file, Overrides::default()).unwrap();
        assert_eq!(
            c.throttle,
            Some(ThrottleSettings {
                rate: 2.5,
                burst: 3
            })
        );
        assert_eq!(c.journal.capacity, 10);
        assert!(c.journal.bodies);
        let over = Overrides {
            throttle_rate: Some(1.0),
            throttle_burst: Some(7),
            ..Overrides::default()
        };
        let c = resolve(FileConfig::default(), over).unwrap();
        assert_eq!(c.throttle.map(|t| t.burst), Some(7));
    }

    #[test]
    fn connection_limits_come_from_the_file_unless_overridden_and_zero_means_the_default() {
        use std::time::Duration;
        let c = resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.connections, ConnectionSettings::default());
        let file = FileConfig::parse(
            "[connections]\nmax = 50\nheader_timeout_seconds = 3\nidle_timeout_seconds = 0\n",
        )
        .unwrap();
        let over = Overrides {
            idle_timeout_seconds: Some(7),
            max_connections: Some(0),
            ..Overrides::default()
        };
        let c = resolve(file, over).unwrap();
        assert_eq!(
            c.connections,
            ConnectionSettings {
                max_connections: ConnectionSettings::default().max_connections,
                header_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(7),
            }
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        assert!(FileConfig::parse("lisen = \"x\"").is_err());
    }
}

//! The `agentry` command line: `serve`, `token`, `migrate` and the admin commands.

mod logs;

use crate::app::{Application, shutdown_signal};
use crate::auth::permissions;
use crate::auth::{CallerKind, KeyRing, TokenRequest};
use crate::config::{self, FileConfig, Overrides};
use crate::domain::apps::AppRegistration;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::auth::DEFAULT_WIDS;
pub use crate::auth::{DEFAULT_TENANT, DEFAULT_USER};
#[derive(Debug, Parser)]
#[command(
    name = "agentry",
    version,
    about = "A self-hostable Microsoft Graph beta Agent Registry"
)]
pub struct Cli {
    /// A TOML configuration file: every `serve` setting has a key (docs/configuration.md; examples/agentry.toml lists them all).
    #[arg(long, global = true, env = "AGENTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Folder holding the SQLite database and the signing keys [default: ./agentry-data].
    #[arg(long, global = true, env = "AGENTRY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Folder holding the signing keys and the paging secret; replicas must share it [default: DATA_DIR/keys].
    #[arg(long, global = true, env = "AGENTRY_KEYS_DIR")]
    keys_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Print a signed access token for this server.
    Token(TokenArgs),
    /// Manage applications of the built-in identity provider.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage local user accounts of the built-in identity provider (console sign-in).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply pending database migrations and exit (`serve` also applies them at start).
    Migrate(MigrateArgs),
    /// Write every tenant of the database as JSON lines (to move data between backends).
    Export(ExportArgs),
    /// Read an export into the database; objects whose id exists are kept.
    Import(ImportArgs),
    /// Work on the registry's data.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Exit 0 when a server answers 200 on /healthz (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Work on A2A agent cards.
    #[command(subcommand)]
    Card(CardCommand),
}

#[derive(Debug, Subcommand)]
enum CardCommand {
    /// Check an agent card against the A2A version it is written in (0.3 or 1.0):
    /// prints each problem as a JSON pointer and a message; exits 1 when there is one.
    Validate(CardValidateArgs),
    /// Sign an agent card: prints it with one more entry in `signatures`, a JWS
    /// (payload detached) over the card's canonical form.
    Sign(CardSignArgs),
    /// Check an agent card's signatures against trusted keys: prints the outcome;
    /// exits 0 only when a signature verifies.
    Verify(CardVerifyArgs),
}

#[derive(Debug, Args)]
struct CardSignArgs {
    /// The card, a JSON file (`-` reads standard input).
    file: PathBuf,
    /// The private key, PEM: PKCS#8 (`PRIVATE KEY`), or PKCS#1 for RSA.
    #[arg(long)]
    key: PathBuf,
    /// The key id verifiers know the key by (the protected header's `kid`).
    #[arg(long)]
    kid: String,
    /// ES256, ES384, RS256, PS256 or EdDSA [default: ES256 for a P-256 key, ES384 for
    /// P-384, RS256 for RSA, EdDSA for Ed25519].
    #[arg(long)]
    alg: Option<crate::domain::a2a::signature::Algorithm>,
    /// A JWK set URL for the protected header's `jku`.
    #[arg(long)]
    jku: Option<String>,
    /// What is signed: `jcs` (the A2A specification's form) or `a2a-python` (the form
    /// the official Python SDK's verifier rebuilds).
    #[arg(long, default_value = "jcs")]
    form: crate::domain::a2a::canonical::CanonicalForm,
}

#[derive(Debug, Args)]
struct CardVerifyArgs {
    /// The card, a JSON file (`-` reads standard input).
    file: PathBuf,
    /// The trusted keys: a JWK set (JSON; an entry may add `expires` and `revoked`),
    /// one JWK, or a PEM public key (with --kid).
    #[arg(long)]
    keys: PathBuf,
    /// The kid of the PEM public key given as --keys.
    #[arg(long)]
    kid: Option<String>,
}

#[derive(Debug, Args)]
struct CardValidateArgs {
    /// The card, a JSON file (`-` reads standard input).
    file: PathBuf,
    /// Also print the card in the v1.0 shape (a v0.3 card converted).
    #[arg(long)]
    to_v1: bool,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7171")]
    addr: String,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Copy agent instances and their card manifests into Agent 365 agent registrations
    /// (same ids; running it again updates, never duplicates).
    Migrate(RegistryMigrateArgs),
}

#[derive(Debug, Args)]
struct RegistryMigrateArgs {
    /// Only this tenant [default: every tenant of the database].
    #[arg(long)]
    tenant: Option<String>,
    /// Print what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Database URL [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// Database URL [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Database to read [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
    /// File to write; `-` is standard output.
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Database to write [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
    /// File to read; `-` is standard input.
    #[arg(long, short, default_value = "-")]
    input: PathBuf,
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register an application for the client-credentials flow (and, with --redirect-uri, a
    /// single-page application that signs users in); prints its client id and secret (shown once).
    Add(AppAddArgs),
    /// List a tenant's applications: client id, name, roles.
    List(AppTenantArgs),
    /// Remove an application; tokens it already holds stay valid until they expire.
    Remove(AppRemoveArgs),
}

#[derive(Debug, Args)]
struct AppTenantArgs {
    /// Tenant id the applications belong to.
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Database URL [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct AppRemoveArgs {
    /// The application's client id.
    client_id: String,
    #[command(flatten)]
    tenant: AppTenantArgs,
}

#[derive(Debug, Args)]
struct AppAddArgs {
    /// A display name.
    #[arg(long)]
    name: String,
    /// Application permissions granted (space or comma separated) [default: every one but *.ManagedBy and Agentry.Admin].
    #[arg(long)]
    roles: Option<String>,
    /// Tenant id the application belongs to.
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// A redirect URI of a single-page application (repeatable): the application then signs
    /// local users in with the authorization-code flow and PKCE, as a public client, and its
    /// pages of that origin redeem codes at the token endpoint (CORS).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Database URL [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a local user who signs in with a password (the console's "Sign in"); the
    /// password is read from standard input and kept only as an Argon2id hash.
    Add(UserAddArgs),
    /// List a tenant's users: name, object id, directory roles, lock.
    List(AppTenantArgs),
    /// Remove a user; tokens already issued to it stay valid until they expire.
    Remove(UserRemoveArgs),
}

#[derive(Debug, Args)]
struct UserAddArgs {
    /// The sign-in name, e.g. admin@contoso.example (unique in its tenant, whatever the case).
    name: String,
    /// Read the password from standard input (its first line).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// A directory role, by name ("Global Administrator", "AI Administrator", …) or
    /// template id; repeatable. The user's tokens carry them as `wids`.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    #[command(flatten)]
    tenant: AppTenantArgs,
}

#[derive(Debug, Args)]
struct UserRemoveArgs {
    /// The user's sign-in name.
    name: String,
    #[command(flatten)]
    tenant: AppTenantArgs,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new signing key current; tokens signed by the old one stay valid until they expire.
    Rotate,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one, which the banner names [default: 127.0.0.1:7171].
    #[arg(long, env = "AGENTRY_LISTEN")]
    listen: Option<String>,
    /// Let browsers on this origin call the API (CORS); repeatable, `*` for any (development only).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Keep the database and keys in memory (a private folder in /dev/shm where there is one), deleted at exit.
    #[arg(long, conflicts_with = "database_url")]
    in_memory: bool,
    /// Log lines as human-readable text or as one JSON object each.
    #[arg(long, env = "AGENTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Print a token (the built-in admin user of the default tenant) in the banner.
    #[arg(long)]
    print_token: bool,
    /// Once listening, write {"url", "token", "pid"} as JSON to this file (for test harnesses).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB [default: sqlite://<data-dir>/agentry.db].
    #[arg(long, env = "AGENTRY_DATABASE_URL")]
    database_url: Option<String>,
    /// Connections in the PostgreSQL pool of this process [default: 10].
    #[arg(long, env = "AGENTRY_DB_POOL_SIZE")]
    db_pool_size: Option<usize>,
    /// Megabytes of documents kept in memory for reads by id, SQLite only; 0 turns it off [default: 64].
    #[arg(long, env = "AGENTRY_READ_CACHE_MB")]
    read_cache_mb: Option<usize>,
    /// Largest accepted request body, in bytes [default: 1048576].
    #[arg(long, env = "AGENTRY_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Build absolute URLs from X-Forwarded-Host and X-Forwarded-Proto.
    #[arg(long, env = "AGENTRY_TRUST_PROXY", num_args = 0..=1, default_missing_value = "true")]
    trust_proxy: Option<bool>,
    /// A JSON file of policies and registry objects to load at start (see docs/seed.md).
    #[arg(long, env = "AGENTRY_SEED")]
    seed: Option<PathBuf>,
    /// Group-level Copilot policies a tenant may hold before policySettings calls fail with 502 [default: 20].
    #[arg(long, env = "AGENTRY_COPILOT_MAX_GROUP_POLICIES")]
    copilot_max_group_policies: Option<usize>,
    /// Refuse Copilot setting values outside each setting's allowed set [default: false].
    #[arg(long, env = "AGENTRY_COPILOT_STRICT_VALUES", num_args = 0..=1, default_missing_value = "true")]
    copilot_strict_values: Option<bool>,
    /// Seconds of clock difference tolerated on token exp and nbf [default: 60].
    #[arg(long, env = "AGENTRY_CLOCK_SKEW_SECONDS")]
    clock_skew_seconds: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "AGENTRY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "AGENTRY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost, kept in <data-dir>/tls.
    #[arg(long, env = "AGENTRY_TLS_SELF_SIGNED", num_args = 0..=1, default_missing_value = "true")]
    tls_self_signed: Option<bool>,
    /// Recognise a registry-scoped role: NAME=TEMPLATE-ID (repeatable), e.g. "Agent Instance Reader=<guid>".
    #[arg(long = "scoped-role")]
    scoped_roles: Vec<String>,
    /// Accept tokens signed by Agentry's own keys [default: true].
    #[arg(long, env = "AGENTRY_BUILTIN_TOKENS", num_args = 0..=1, default_missing_value = "true")]
    builtin_tokens: Option<bool>,
    /// Days the audit log keeps a record; older ones are pruned in the background [default: 30].
    #[arg(long, env = "AGENTRY_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u32>,
    /// Check the A2A cards of agent registrations: off (kept as sent), warn (kept, problems
    /// reported as @agentry.cardValidation) or require (an invalid card is refused) [default: off].
    #[arg(long, env = "AGENTRY_CARD_VALIDATION")]
    card_validation: Option<crate::domain::a2a::ValidationMode>,
    /// Check the signatures of agent registrations' A2A cards: off, verify-if-present (a signed
    /// card must verify) or require (every card must be signed and verify) [default: off].
    #[arg(long, env = "AGENTRY_CARD_SIGNATURES")]
    card_signatures: Option<crate::domain::a2a::SignatureMode>,
    /// The keys card signatures are checked against: a JSON JWK set (entries may add
    /// `expires` and `revoked`, or give `{"kid", "pem"}`).
    #[arg(long, env = "AGENTRY_CARD_TRUST_STORE", value_name = "FILE")]
    card_trust_store: Option<PathBuf>,
    /// Send change notifications only to these hosts or networks: `public`, `loopback`,
    /// `10.0.0.0/8`, `hooks.example.com`, `*.example.com`; repeatable
    /// [default: public, and loopback when listening on loopback].
    #[arg(
        long = "notification-allow",
        env = "AGENTRY_NOTIFICATION_ALLOW",
        value_delimiter = ',',
        value_name = "HOST_OR_NETWORK"
    )]
    notification_allow: Vec<String>,
    /// Seconds a failing notification receiver is retried before its changes are dropped
    /// (and a `missed` lifecycle notification sent) [default: 14400].
    #[arg(long, env = "AGENTRY_NOTIFICATION_RETRY_SECONDS")]
    notification_retry_seconds: Option<u64>,
    /// Check watched agents only on these hosts or networks (same forms as
    /// --notification-allow) [default: public, plus loopback when listening on loopback].
    #[arg(
        long = "watch-allow",
        env = "AGENTRY_WATCH_ALLOW",
        value_delimiter = ',',
        value_name = "ENTRY"
    )]
    watch_allow: Vec<String>,
    /// Also accept tokens of this OpenID Connect issuer (`{tenantid}` matches the token's tid).
    #[arg(long, env = "AGENTRY_OIDC_ISSUER", requires = "oidc_jwks")]
    oidc_issuer: Option<String>,
    /// Audiences accepted from that issuer (space or comma separated).
    #[arg(long, env = "AGENTRY_OIDC_AUDIENCES")]
    oidc_audiences: Option<String>,
    /// The issuer's keys: a JWKS file, or an http(s) URL serving one.
    #[arg(long, env = "AGENTRY_OIDC_JWKS", requires = "oidc_issuer")]
    oidc_jwks: Option<String>,
    /// The web console's client id at that issuer (a single-page application whose redirect
    /// URI is this server's /console/): the console then signs people in there.
    #[arg(long, env = "AGENTRY_OIDC_CONSOLE_CLIENT_ID", requires = "oidc_issuer")]
    oidc_console_client_id: Option<String>,
    /// The scope the console asks for [default: the first audience's /.default].
    #[arg(long, env = "AGENTRY_OIDC_CONSOLE_SCOPE")]
    oidc_console_scope: Option<String>,
    /// What {tenantid} stands for in the issuer's endpoints (a tenant id, or `organizations`).
    #[arg(long, env = "AGENTRY_OIDC_CONSOLE_TENANT")]
    oidc_console_tenant: Option<String>,
    /// The issuer's OpenID configuration [default: ISSUER/.well-known/openid-configuration].
    #[arg(long, env = "AGENTRY_OIDC_DISCOVERY")]
    oidc_discovery: Option<String>,
    /// The issuer's authorization endpoint [default: from its OpenID configuration].
    #[arg(long, env = "AGENTRY_OIDC_AUTHORIZATION_ENDPOINT")]
    oidc_authorization_endpoint: Option<String>,
    /// The issuer's token endpoint [default: from its OpenID configuration].
    #[arg(long, env = "AGENTRY_OIDC_TOKEN_ENDPOINT")]
    oidc_token_endpoint: Option<String>,
    /// Throttling mode: requests a second per tenant and application (Graph-like 429s) [default: off].
    #[arg(long, env = "AGENTRY_THROTTLE_RATE")]
    throttle_rate: Option<f64>,
    /// Throttling mode: requests allowed at once [default: the rate, at least 1].
    #[arg(long, env = "AGENTRY_THROTTLE_BURST")]
    throttle_burst: Option<u32>,
    /// Requests the journal keeps per tenant; 0 turns it off [default: 1000].
    #[arg(long, env = "AGENTRY_JOURNAL_SIZE")]
    journal_size: Option<usize>,
    /// Keep request and response bodies in the journal [default: false].
    #[arg(long, env = "AGENTRY_JOURNAL_BODIES", num_args = 0..=1, default_missing_value = "true")]
    journal_bodies: Option<bool>,
    /// Bytes of each body the journal keeps [default: 16384].
    #[arg(long, env = "AGENTRY_JOURNAL_BODY_BYTES")]
    journal_body_bytes: Option<usize>,
    /// Let the web console (/console) sign in as the built-in admin user without a password;
    /// honoured only when listening on a loopback address, for local development [default: false].
    #[arg(long, env = "AGENTRY_CONSOLE_DEV_SIGNIN", num_args = 0..=1, default_missing_value = "true")]
    console_dev_signin: Option<bool>,
    /// Connections served at once; at the cap the idlest is closed for a new one [default: 10000].
    #[arg(long, env = "AGENTRY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a request's line and headers may take from its first byte [default: 10].
    #[arg(long, env = "AGENTRY_HEADER_TIMEOUT_SECONDS")]
    header_timeout_seconds: Option<u64>,
    /// Seconds a connection may wait for a request before it is closed [default: 60].
    #[arg(long, env = "AGENTRY_IDLE_TIMEOUT_SECONDS")]
    idle_timeout_seconds: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("caller").args(["user", "app"]))]
struct TokenArgs {
    /// A delegated token for this user object id (the default, with a built-in user).
    #[arg(long)]
    user: Option<String>,
    /// An application token for this application (client) id.
    #[arg(long)]
    app: Option<String>,
    /// Delegated permissions (space or comma separated) [default: every permission Agentry checks].
    #[arg(long)]
    scopes: Option<String>,
    /// Application permissions (space or comma separated) [default: every one but *.ManagedBy and Agentry.Admin].
    #[arg(long)]
    roles: Option<String>,
    /// Directory role template ids (space or comma separated) [default: Agent Registry Administrator and Global Administrator].
    #[arg(long)]
    wids: Option<String>,
    /// Tenant id (`tid`).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    expires_in: i64,
}

fn list(value: Option<&str>, default: &[&str]) -> Vec<String> {
    match value {
        Some(v) => v
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    match cli.command {
        Command::Serve(args) => {
            let memory = if args.in_memory {
                Some(crate::files::MemoryFolder::create().context("cannot set up --in-memory")?)
            } else {
                None
            };
            let (data_dir, keys_dir) = match &memory {
                Some(m) => (Some(m.path().to_owned()), None),
                None => (cli.data_dir, cli.keys_dir),
            };
            let over = Overrides {
                listen: args.listen,
                cors_origins: args.cors_origins,
                data_dir,
                keys_dir,
                database_url: args.database_url,
                db_pool_size: args.db_pool_size,
                read_cache_mb: args.read_cache_mb,
                max_body_bytes: args.max_body_bytes,
                trust_proxy: args.trust_proxy,
                seed: args.seed,
                copilot_max_group_policies: args.copilot_max_group_policies,
                copilot_strict_values: args.copilot_strict_values,
                clock_skew_seconds: args.clock_skew_seconds,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                tls_self_signed: args.tls_self_signed,
                builtin_tokens: args.builtin_tokens,
                audit_retention_days: args.audit_retention_days,
                card_validation: args.card_validation,
                card_signatures: args.card_signatures,
                card_trust_store: args.card_trust_store,
                console_dev_signin: args.console_dev_signin,
                notification_allow: args.notification_allow,
                notification_retry_seconds: args.notification_retry_seconds,
                watch_allow: args.watch_allow,
                scoped_roles: args.scoped_roles,
                oidc_issuer: args.oidc_issuer,
                oidc_audiences: args.oidc_audiences.as_deref().map(|a| list(Some(a), &[])),
                oidc_jwks: args.oidc_jwks,
                oidc_console: crate::config::OidcConsoleOverrides {
                    client_id: args.oidc_console_client_id,
                    scope: args.oidc_console_scope,
                    tenant: args.oidc_console_tenant,
                    discovery: args.oidc_discovery,
                    authorization_endpoint: args.oidc_authorization_endpoint,
                    token_endpoint: args.oidc_token_endpoint,
                },
                throttle_rate: args.throttle_rate,
                throttle_burst: args.throttle_burst,
                journal_size: args.journal_size,
                journal_bodies: args.journal_bodies,
                journal_body_bytes: args.journal_body_bytes,
                max_connections: args.max_connections,
                header_timeout_seconds: args.header_timeout_seconds,
                idle_timeout_seconds: args.idle_timeout_seconds,
            };
            let ready = Ready {
                print_token: args.print_token,
                file: args.ready_file,
                in_memory: memory.is_some(),
                log_format: args.log_format,
            };
            let config = config::resolve(file, over)?;
            // The folder goes when `memory` is dropped, after the server stops.
            let served = serve(config, ready);
            drop(memory);
            served
        }
        Command::App(AppCommand::Add(args)) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            let roles = list(args.roles.as_deref(), &permissions::all_application_roles());
            let now = crate::clock::entity_timestamp(crate::clock::wall_now());
            for uri in &args.redirect_uris {
                crate::domain::apps::check_redirect_uri(uri)?;
            }
            let mut new = AppRegistration::create(&args.tenant, &args.name, roles, now);
            new.registration.redirect_uris = args.redirect_uris;
            let registration = new.registration.clone();
            with_store(&url, |store| async move {
                Ok(store.create_app(registration).await?)
            })?;
            let r = &new.registration;
            println!("client id:     {}", r.client_id);
            println!("client secret: {}", new.secret);
            println!("tenant:        {}", r.tenant_id);
            println!("roles:         {}", r.roles.join(" "));
            for uri in &r.redirect_uris {
                println!("redirect uri:  {uri}");
            }
            println!("The secret is shown only now; Agentry keeps a salted hash of it.");
            Ok(())
        }
        Command::App(AppCommand::List(args)) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            let tenant = args.tenant;
            with_store(&url, |store| async move {
                let apps = store.list_apps(&tenant).await?;
                if apps.is_empty() {
                    println!("no applications in tenant {tenant}");
                }
                for a in apps {
                    println!("{}  {}  {}", a.client_id, a.display_name, a.roles.join(" "));
                    for uri in &a.redirect_uris {
                        println!("    redirect uri: {uri}");
                    }
                }
                Ok(())
            })
        }
        Command::App(AppCommand::Remove(args)) => {
            let url = database_url(file, cli.data_dir, args.tenant.database_url)?;
            let (tenant, client_id) = (args.tenant.tenant, args.client_id);
            with_store(&url, |store| async move {
                anyhow::ensure!(
                    store.delete_app(&tenant, &client_id).await?,
                    "tenant {tenant} has no application {client_id} (see agentry app list --tenant {tenant})"
                );
                println!(
                    "removed {client_id}; tokens it already holds stay valid until they expire"
                );
                Ok(())
            })
        }
        Command::User(command) => user_command(file, cli.data_dir, command),
        Command::Migrate(args) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let applied = runtime
                .block_on(crate::store::migrate(&url))
                .context("cannot migrate the database")?;
            if applied.is_empty() {
                println!("the database schema is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Export(args) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            with_store(&url, |store| async move {
                let stdout = std::io::stdout();
                let mut out: Box<dyn Write> = if args.output.as_os_str() == "-" {
                    Box::new(std::io::BufWriter::new(stdout.lock()))
                } else {
                    let f = crate::files::create_private_file(&args.output)
                        .with_context(|| format!("cannot create {}", args.output.display()))?;
                    Box::new(std::io::BufWriter::new(f))
                };
                let bar = progress_bar(None);
                let summary = crate::transfer::export(store.as_ref(), &mut out, &mut |n, _| {
                    bar.set_position(n)
                })
                .await?;
                bar.finish_and_clear();
                eprintln!(
                    "exported {} of {}",
                    count(summary.records, "record"),
                    count(summary.tenants, "tenant")
                );
                Ok(())
            })
        }
        Command::Import(args) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            with_store(&url, |store| async move {
                let (input, size): (Box<dyn BufRead + Send>, Option<u64>) =
                    if args.input.as_os_str() == "-" {
                        (Box::new(std::io::BufReader::new(std::io::stdin())), None)
                    } else {
                        let f = std::fs::File::open(&args.input)
                            .with_context(|| format!("cannot open {}", args.input.display()))?;
                        let size = f.metadata().ok().map(|m| m.len());
                        (Box::new(std::io::BufReader::new(f)), size)
                    };
                let bar = progress_bar(size);
                let now = crate::clock::entity_timestamp(crate::clock::wall_now());
                let summary =
                    crate::transfer::import(store.as_ref(), input, &now, &mut |n, bytes| {
                        if size.is_some() {
                            bar.set_position(bytes)
                        } else {
                            bar.set_position(n)
                        }
                    })
                    .await?;
                bar.finish_and_clear();
                eprintln!(
                    "imported {} of {}: {} created, {} kept (already there)",
                    count(summary.records, "record"),
                    count(summary.tenants, "tenant"),
                    summary.created,
                    summary.kept
                );
                Ok(())
            })
        }
        Command::Registry(RegistryCommand::Migrate(args)) => {
            let url = database_url(file, cli.data_dir, args.database_url)?;
            with_store(&url, |store| async move {
                let tenants = match args.tenant {
                    Some(t) => vec![t],
                    None => store.list_tenants().await?,
                };
                let now = crate::clock::entity_timestamp(crate::clock::wall_now());
                for tenant in tenants {
                    let report = crate::successor::migrate_tenant(
                        store.as_ref(),
                        &tenant,
                        &now,
                        args.dry_run,
                    )
                    .await?;
                    print_migration(&report);
                }
                Ok(())
            })
        }
        Command::Healthcheck(args) => healthcheck(&args.addr),
        Command::Card(CardCommand::Validate(args)) => validate_card(&args),
        Command::Card(CardCommand::Sign(args)) => sign_card(&args),
        Command::Card(CardCommand::Verify(args)) => verify_card(&args),
        Command::Keys(KeysCommand::Rotate) => {
            let kid = KeyRing::rotate_dir(&keys_dir(cli.data_dir, cli.keys_dir, &file))?;
            println!(
                "new signing key {kid}; the previous key keeps validating its tokens for 24 hours"
            );
            Ok(())
        }
        Command::Token(args) => {
            let dir = keys_dir(cli.data_dir, cli.keys_dir, &file);
            if !dir.join("signing-key.pem").exists() {
                eprintln!(
                    "warning: {} holds no signing key yet; creating one, which no server started \
                     on another folder knows: give `agentry token` the server's --data-dir (or --keys-dir)",
                    dir.display()
                );
            }
            let keys = KeyRing::open_dir(&dir, crate::auth::DEFAULT_CLOCK_SKEW_SECONDS)?;
            let (kind, subject) = match (args.user, args.app) {
                (_, Some(app)) => (CallerKind::Application, app),
                (Some(user), None) => (CallerKind::Delegated, user),
                (None, None) => (CallerKind::Delegated, DEFAULT_USER.to_owned()),
            };
            anyhow::ensure!(
                (1..=crate::auth::MAX_TOKEN_LIFETIME_SECONDS).contains(&args.expires_in),
                "--expires-in must be between 1 and {} seconds (24 hours), not {}",
                crate::auth::MAX_TOKEN_LIFETIME_SECONDS,
                args.expires_in
            );
            let request = TokenRequest {
                tenant_id: args.tenant,
                kind,
                subject,
                scopes: list(args.scopes.as_deref(), &permissions::all_delegated_scopes()),
                roles: list(args.roles.as_deref(), &permissions::all_application_roles()),
                wids: list(args.wids.as_deref(), &DEFAULT_WIDS),
                issued_at: crate::clock::wall_now().unix_timestamp(),
                expires_in: args.expires_in,
            };
            println!("{}", keys.mint(&request)?);
            Ok(())
        }
    }
}

/// `agentry user add/list/remove`.
fn user_command(
    file: FileConfig,
    data_dir: Option<PathBuf>,
    command: UserCommand,
) -> anyhow::Result<()> {
    use crate::domain::users::LocalUser;
    match command {
        UserCommand::Add(args) => {
            let url = database_url(file, data_dir, args.tenant.database_url)?;
            let roles = args
                .roles
                .iter()
                .map(|r| {
                    permissions::role_template_id(r).with_context(|| {
                        format!(
                            "'{r}' is no directory role Agentry knows; give a template id, or one of: {}",
                            permissions::role_names().join(", ")
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = read_password(args.password_stdin)?;
            let now = crate::clock::entity_timestamp(crate::clock::wall_now());
            let user = LocalUser::create(&args.tenant.tenant, &args.name, roles, &password, now)?;
            let shown = user.clone();
            with_store(&url, |store| async move {
                let tenant = user.tenant_id.clone();
                anyhow::ensure!(
                    store.create_user(user).await?,
                    "tenant {tenant} already has a user named '{}' (see agentry user list --tenant {tenant})",
                    args.name
                );
                Ok(())
            })?;
            println!("user:      {}", shown.user_name);
            println!("object id: {}", shown.id);
            println!("tenant:    {}", shown.tenant_id);
            println!("roles:     {}", role_list(&shown.roles));
            Ok(())
        }
        UserCommand::List(args) => {
            let url = database_url(file, data_dir, args.database_url)?;
            let tenant = args.tenant;
            with_store(&url, |store| async move {
                let users = store.list_users(&tenant).await?;
                if users.is_empty() {
                    println!("no users in tenant {tenant}");
                }
                let now = crate::clock::entity_timestamp(crate::clock::wall_now());
                for u in users {
                    let lock = match &u.locked_until {
                        Some(until) if u.locked_at(&now) => format!("  (locked until {until})"),
                        _ => String::new(),
                    };
                    println!("{}  {}  {}{lock}", u.user_name, u.id, role_list(&u.roles));
                }
                Ok(())
            })
        }
        UserCommand::Remove(args) => {
            let url = database_url(file, data_dir, args.tenant.database_url)?;
            let (tenant, name) = (args.tenant.tenant, args.name);
            with_store(&url, |store| async move {
                anyhow::ensure!(
                    store.delete_user(&tenant, &name).await?,
                    "tenant {tenant} has no user '{name}' (see agentry user list --tenant {tenant})"
                );
                println!("removed {name}; tokens it already holds stay valid until they expire");
                Ok(())
            })
        }
    }
}

/// The first line of standard input, without its line ending.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    anyhow::ensure!(
        from_stdin,
        "give the password on standard input, with --password-stdin"
    );
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

/// Directory roles by name (the template id of one Agentry does not name).
fn role_list(roles: &[String]) -> String {
    if roles.is_empty() {
        return "(no directory role)".to_owned();
    }
    roles
        .iter()
        .map(|id| permissions::role_name(id).map_or_else(|| id.clone(), str::to_owned))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The database of the commands that need no whole server configuration:
/// `--database-url`, else the file's, else the data folder's SQLite file.
fn database_url(
    file: FileConfig,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> anyhow::Result<String> {
    let over = Overrides {
        data_dir,
        database_url,
        ..Overrides::default()
    };
    Ok(config::resolve(file, over)?.database_url)
}

/// Runs `work` with the store a database URL names, on a small runtime, and
/// closes the store whatever the outcome.
/// A tenant's migration as lines: each instance's step, then the counts
/// and the properties that have no home in a registration.
fn print_migration(r: &crate::successor::Report) {
    use crate::successor::Action;
    let verb = |a: Action| match (a, r.dry_run) {
        (Action::Create, true) => "would create",
        (Action::Create, false) => "created",
        (Action::Update, true) => "would update",
        (Action::Update, false) => "updated",
        (Action::Unchanged, _) => "unchanged",
        (Action::Skip, _) => "skipped",
    };
    println!("tenant {}", r.tenant);
    for step in &r.steps {
        match &step.reason {
            Some(why) => println!("  {} {}: {why}", verb(step.action), step.id),
            None => println!("  {} {}", verb(step.action), step.id),
        }
    }
    println!(
        "  {} instances: {} {}, {} {}, {} unchanged, {} skipped",
        r.instances,
        r.created,
        verb(Action::Create),
        r.updated,
        verb(Action::Update),
        r.unchanged,
        r.skipped
    );
    if !r.unmapped.is_empty() {
        println!("  values with no home in a registration (instances having one):");
        for (field, n) in &r.unmapped {
            println!("    {field}: {n}");
        }
    }
}

fn with_store<F, Fut>(database_url: &str, work: F) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<dyn crate::store::Store>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = crate::store::open(database_url).await?;
        let result = work(store.clone()).await;
        store.close().await;
        result
    })
}

/// A progress bar on standard error: of bytes when the total is known, else
/// a count of records. Hidden when standard error is not a terminal.
fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
    // Whole records a second (indicatif's own key prints fractions).
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0}/s", state.per_sec());
    };
    let bar = match total {
        Some(bytes) => ProgressBar::new(bytes).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} records ({rate})")
                .expect("a valid template")
                .with_key("rate", rate),
        ),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// `1 record`, `2 records`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The keys folder of the commands that need no whole server configuration.
fn keys_dir(data_dir: Option<PathBuf>, keys_dir: Option<PathBuf>, file: &FileConfig) -> PathBuf {
    keys_dir
        .or_else(|| file.keys_dir.clone())
        .unwrap_or_else(|| {
            let data_dir = data_dir
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA_DIR));
            config::default_keys_dir(&data_dir)
        })
}

/// A card file's JSON (`-` is standard input).
fn read_card(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    use std::io::Read;
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

fn validate_card(args: &CardValidateArgs) -> anyhow::Result<()> {
    let card = read_card(&args.file)?;
    let report = crate::domain::a2a::validate(&card);
    let version = report.version.map_or("unknown", |v| v.as_str());
    for p in &report.problems {
        let at = if p.pointer.is_empty() {
            "(card)"
        } else {
            &p.pointer
        };
        println!("{at}: {}", p.message);
    }
    if args.to_v1 {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::domain::a2a::to_v1(&card))?
        );
    }
    if report.is_valid() {
        eprintln!("a valid A2A {version} agent card");
        Ok(())
    } else {
        eprintln!(
            "{} problem(s) in this A2A {version} agent card",
            report.problems.len()
        );
        std::process::exit(1)
    }
}

fn sign_card(args: &CardSignArgs) -> anyhow::Result<()> {
    use crate::domain::a2a::signature;
    let card = read_card(&args.file)?;
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let alg = match args.alg {
        Some(alg) => alg,
        None => signature::default_algorithm(&pem)?,
    };
    let signed = signature::sign_as(&card, &pem, &args.kid, alg, args.jku.as_deref(), args.form)?;
    println!("{}", serde_json::to_string_pretty(&signed)?);
    Ok(())
}

fn verify_card(args: &CardVerifyArgs) -> anyhow::Result<()> {
    use crate::domain::a2a::signature::{TrustStore, verify};
    let card = read_card(&args.file)?;
    let text = std::fs::read_to_string(&args.keys)
        .with_context(|| format!("cannot read {}", args.keys.display()))?;
    let store = if text.contains("-----BEGIN ") {
        let kid = args
            .kid
            .as_deref()
            .context("a PEM key needs --kid, the kid its signatures name")?;
        TrustStore::from_pem(kid, &text)?
    } else {
        anyhow::ensure!(
            args.kid.is_none(),
            "--kid is for a PEM key; a JWK set names its keys"
        );
        TrustStore::from_jwks(&text)?
    };
    let check = verify(&card, &store, crate::clock::wall_now());
    println!("{check}");
    if check.is_verified() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

/// `GET /healthz` over plain HTTP/1.1, with std alone (a container image
/// has no curl): Ok when the answer is 200.
fn healthcheck(addr: &str) -> anyhow::Result<()> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(3);
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("'{addr}' is not an address"))?
        .next()
        .with_context(|| format!("'{addr}' names no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("nothing answers on {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut answer = String::new();
    stream.take(4096).read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(status == "200", "{addr}/healthz answered {status:?}");
    Ok(())
}

/// An error as one line: its message, then each cause the message does
/// not already contain (errors that print their source would otherwise
/// say it twice). No backtrace: these are a user's mistakes, not bugs.
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// What `serve` tells a harness once it listens, and how it logs.
struct Ready {
    print_token: bool,
    file: Option<PathBuf>,
    in_memory: bool,
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A default token of the built-in admin user, as `agentry token` mints it.
fn default_token(keys: &KeyRing) -> anyhow::Result<String> {
    let issued_at = crate::clock::wall_now().unix_timestamp();
    Ok(keys.mint(&TokenRequest::builtin_admin(issued_at, 3600))?)
}

/// Writes `{url, token, pid}` to `path` whole: a reader never sees half of it.
fn write_ready_file(path: &std::path::Path, url: &str, token: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"url": url, "token": token, "pid": std::process::id()});
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{body}\n"))
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write the ready file {}", path.display()))
}

fn serve(config: config::ServerConfig, ready: Ready) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match ready.log_format {
        LogFormat::Json => logs.json().init(),
        // Colour only for a person at a terminal, never in a file or a pipe.
        LogFormat::Text if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
            logs.with_ansi(true).init()
        }
        LogFormat::Text => logs
            .with_ansi(false)
            .fmt_fields(logs::PlainFields)
            .with_timer(logs::LineTime)
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let app = Application::build(&config).await?;
        let addr = app.local_addr();
        let scheme = app.scheme();
        let data_dir = config.data_dir.display();
        let url = format!("{scheme}://{addr}/beta");
        let token = if ready.print_token || ready.file.is_some() {
            Some(default_token(&app.keys())?)
        } else {
            None
        };
        // A self-signed certificate is its own CA: clients trust it by file.
        let cacert = match (&config.tls, config.tls_self_signed) {
            (None, true) => Some(config.data_dir.join("tls").join("cert.pem")),
            _ => None,
        };
        let curl = match &cacert {
            Some(cert) => format!("curl --cacert {}", cert.display()),
            None => "curl".to_owned(),
        };
        // The banner is a courtesy: a closed stdout must not stop the server.
        let mut banner = format!(
            "Agentry is serving Microsoft Graph beta at {url}\n  \
             database:    {}\n  \
             get a token: agentry token --data-dir {data_dir}\n  \
             try:         {curl} -H \"Authorization: Bearer $(agentry token --data-dir {data_dir})\" {url}/agentRegistry/agentInstances\n",
            crate::store::redact_url(&config.database_url)
        );
        let console = match app.state().console_dev_signin() {
            crate::http::console::DevSignIn::On => " (signs in as the built-in admin: --console-dev-signin)",
            crate::http::console::DevSignIn::Refused => " (--console-dev-signin is ignored: not on loopback)",
            crate::http::console::DevSignIn::Off => "",
        };
        banner.push_str(&format!("  console:     {scheme}://{addr}/console{console}\n"));
        if ready.in_memory {
            banner.push_str("  in memory:   the database and keys are deleted when the server stops\n");
        }
        if let Some(cert) = &cacert {
            banner.push_str(&format!(
                "  certificate: {} (self-signed; trust it with curl --cacert, or add it to your trust store)\n",
                cert.display()
            ));
        }
        if let (true, Some(token)) = (ready.print_token, &token) {
            banner.push_str(&format!("  token:       {token}\n"));
        }
        if let (Some(path), Some(token)) = (&ready.file, &token) {
            write_ready_file(path, &url, token)?;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        drop(out);
        app.run_until(shutdown_signal()).await?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_error_is_told_once_with_each_cause_it_does_not_already_name() {
        let io = std::io::Error::other("permission denied");
        let wrapped = anyhow::Error::new(io).context("cannot write /data/agentry.db");
        assert_eq!(
            describe(&wrapped),
            "cannot write /data/agentry.db: permission denied"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the database: {0}")]
        struct Repeats(#[source] std::io::Error);
        let e = anyhow::Error::new(Repeats(std::io::Error::other("disk full")));
        assert_eq!(describe(&e), "cannot open the database: disk full");
    }

    #[test]
    fn counts_are_singular_for_one_and_plural_otherwise() {
        assert_eq!(count(1, "tenant"), "1 tenant");
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(2, "record"), "2 records");
    }

    #[test]
    fn a_boolean_flag_alone_means_true() {
        let serve = |args: &[&str]| {
            let cli = Cli::try_parse_from(["agentry", "serve"].iter().chain(args)).unwrap();
            match cli.command {
                Command::Serve(s) => (s.trust_proxy, s.tls_self_signed, s.listen),
                _ => unreachable!(),
            }
        };
        assert_eq!(serve(&["--trust-proxy"]), (Some(true), None, None));
        assert_eq!(
            serve(&["--trust-proxy", "false"]),
            (Some(false), None, None)
        );
        assert_eq!(
            serve(&["--tls-self-signed", "--listen", "0.0.0.0:1"]),
            (None, Some(true), Some("0.0.0.0:1".into()))
        );
        assert_eq!(serve(&[]), (None, None, None));
    }

    #[test]
    fn lists_split_on_spaces_and_commas_and_default_when_absent() {
        assert_eq!(list(Some("a b,c"), &[]), ["a", "b", "c"]);
        assert_eq!(list(None, &["x"]), ["x"]);
    }
}

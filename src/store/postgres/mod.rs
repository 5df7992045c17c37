//! The PostgreSQL backend, for several stateless Agentry processes in front
//! of one database.
//!
//! - The schema mirrors SQLite's (see `migrations/`); migrations are applied
//!   at start under an advisory lock, so replicas starting together do not race.
//! - Every read-modify-write is one transaction that locks the row it read
//!   (`SELECT … FOR UPDATE`), so concurrent PATCHes from any number of
//!   replicas never lose an update; serialization failures and deadlocks are
//!   retried a few times. A PATCH of one row alone is first tried as one
//!   statement guarded by the version it read (`guarded`).
//! - A connection pool with bounded waits: when the database is gone, calls
//!   fail fast with [`StoreError::Unavailable`], and broken connections are
//!   replaced once it is back, without restarting Agentry.

mod changes;
mod guarded;
mod migrate;
mod pipeline;
mod policies;
mod query;
mod shared;
mod tenant;

use super::read::{self, Reads};
use super::write::{self, Row, column_values, not_found, text};
use super::{
    AppStore, CopilotStore, Criteria, Entity, ImportMode, ImportReport, ListQuery, Page, Relation,
    Section, Store, StoreError, StoreStats, Stored, TenantState, TenantStore, engine, statements,
};
use crate::domain::apps::AppRegistration;
use crate::domain::copilot::{
    CopilotError, CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
};
use crate::domain::schema::EntityType;
use crate::domain::{DomainError, WriteContext};
use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use guarded::Guarded;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Connections kept by default; see `docs/postgresql.md`.
pub const DEFAULT_POOL_SIZE: usize = 10;
/// How long a call waits for a free connection before giving up.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One connection in this many of the pool (at least one, in a pool of 4 or
/// more) is set apart for point reads, shared by concurrent requests (see
/// `shared`).
const SHARED_SHARE: usize = 16;
/// Retries of a transaction that met a serialization failure or a deadlock.
const MAX_RETRIES: u32 = 4;

pub struct PgStore {
    pool: Pool,
    /// Connections that point reads share; none with a pool under 4.
    shared: Option<shared::SharedReads>,
    /// Tenants whose reserved collections are known to be stored.
    seeded: RwLock<HashSet<String>>,
    clock: crate::clock::SharedClock,
    /// PATCHes written as one guarded statement, and those run again with
    /// locks (see `guarded`).
    guarded_writes: AtomicU64,
    guarded_fallbacks: AtomicU64,
}

/// Why a step inside a transaction failed: a database error still to be
/// classified (it may call for a retry), or a decided answer.
#[derive(Debug)]
enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
    /// A write tried as one guarded statement (see `guarded`) needs the
    /// locking transaction instead: it does more than one statement can,
    /// or another writer changed its row since it was read.
    NeedsLock,
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<CopilotError> for Fail {
    fn from(e: CopilotError) -> Self {
        Fail::Store(e.into())
    }
}

impl From<DomainError> for Fail {
    fn from(e: DomainError) -> Self {
        Fail::Store(e.into())
    }
}

impl Fail {
    /// Serialization failures and deadlocks, and a concurrent registration
    /// of the same `sourceAgentId`: run again, the write then finds the
    /// other one committed and answers as it would have.
    fn retryable(&self) -> bool {
        matches!(self, Fail::Db(e) if matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        ) || is_source_agent_violation(e))
    }

    fn into_store(self) -> StoreError {
        match self {
            Fail::Db(e) => pg_error(e),
            Fail::Store(e) => e,
            Fail::NeedsLock => {
                StoreError::Internal("a guarded write was not run again with locks".into())
            }
        }
    }
}

type Step<T> = Result<T, Fail>;

/// Classifies a database error: the server gone, starting or shutting down,
/// or the connection lost, is `Unavailable`; anything else is internal.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        let c = code.code();
        let unavailable = c.starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::DATABASE_DROPPED;
        return if unavailable {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Internal(e.to_string())
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

/// The connections of a pool of `size`: those taken one request at a time,
/// and those point reads share.
fn split_pool(size: usize) -> (usize, usize) {
    let size = size.max(1);
    let shared = if size >= 4 {
        size.div_ceil(SHARED_SHARE)
    } else {
        0
    };
    (size - shared, shared)
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection became free in time".into())
        }
        PoolError::Closed => StoreError::Unavailable("the database is closed".into()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION) && !is_source_agent_violation(e)
}

/// The unique index of registrations' `sourceAgentId`, which the write path
/// checks first: a violation means a concurrent writer got there between.
fn is_source_agent_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint())
            == Some("agent_registrations_by_source_agent_id")
}

/// Runs `$body` inside a transaction `$tx` and commits it. `?` and `return`
/// in the body leave with a [`Fail`] (the transaction is rolled back);
/// serialization failures and deadlocks start the whole body again, so the
/// body only borrows what it uses.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        retrying!(async {
            let mut client = $store.client().await?;
            let $tx = client.transaction().await?;
            let value = $body;
            $tx.commit().await?;
            Ok(value)
        })
    };
}

/// Awaits `$attempt` (an expression made again for each attempt) until it
/// succeeds, fails for good, or has met a serialization failure or a
/// deadlock more than `MAX_RETRIES` times, waiting longer after each.
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut attempt = 0u32;
        loop {
            let outcome: Step<_> = $attempt.await;
            match outcome {
                Ok(v) => break Ok(v),
                Err(f) if f.retryable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Err(f) => break Err(f.into_store()),
            }
        }
    }};
}

/// Runs `$body` as one snapshot: inside a read-only `REPEATABLE READ`
/// transaction `$tx`, so that every statement sees the database as the first
/// one did.
macro_rules! snapshot {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let outcome: Step<_> = async {
                let mut client = $store.client().await?;
                let $tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Ok(v) => break Ok(v),
                Err(f) if f.retryable() && attempt < MAX_RETRIES => attempt += 1,
                Err(f) => break Err(f.into_store()),
            }
        }
    }};
}

/// Runs `$body`, one statement, with `$c` a connection that other point
/// reads may be using at the same time.
macro_rules! point {
    ($store:expr, |$c:ident| $body:expr) => {{
        let outcome: Step<_> = async {
            let held = $store.point_client().await?;
            let $c: &deadpool_postgres::Client = &held;
            Ok($body)
        }
        .await;
        outcome.map_err(Fail::into_store)
    }};
}

/// Runs `$body` with a pooled connection `$c`, outside a transaction.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let outcome: Step<_> = async {
            let $c = $store.client().await?;
            Ok($body)
        }
        .await;
        outcome.map_err(Fail::into_store)
    }};
}

impl PgStore {
    /// Connects (lazily, through a pool of at most `pool_size` connections)
    /// and applies pending migrations.
    pub async fn open(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let store = Self::connect(url, pool_size)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Stamps what the store creates on its own with `clock`.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// A store over a pool, without touching the database yet.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("the database URL is not valid: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("agentry");
        }
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let pool = |manager, size: usize| {
            Pool::builder(manager)
                .max_size(size)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .recycle_timeout(Some(CONNECT_TIMEOUT))
                .runtime(Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))
        };
        let (own_size, shared_size) = split_pool(pool_size);
        let shared = match shared_size {
            0 => None,
            n => {
                let manager =
                    Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config());
                Some(shared::SharedReads::new(pool(manager, n)?))
            }
        };
        let manager = Manager::from_config(config, tokio_postgres::NoTls, manager_config());
        Ok(Self {
            pool: pool(manager, own_size)?,
            shared,
            seeded: RwLock::new(HashSet::new()),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            guarded_writes: AtomicU64::new(0),
            guarded_fallbacks: AtomicU64::new(0),
        })
    }

    /// Applies the migrations this build knows and the database lacks;
    /// returns the names of those applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await.map_err(Fail::into_store)?;
        migrate::apply(&mut client).await
    }

    async fn client(&self) -> Step<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| Fail::Store(pool_error(e)))
    }

    /// A PATCH tried as one guarded statement (see `guarded`).
    /// `Fail::NeedsLock` when it must be run in a locking transaction.
    /// The row is read on a connection shared with point reads; the one
    /// statement goes out on a connection of its own, so that PostgreSQL
    /// can flush the commits of concurrent writers together.
    async fn guarded_write(&self, op: &write::Write) -> Step<write::Written> {
        let (written, queued) = {
            // Let go before taking the other: a pool too small to share
            // gives point reads connections of its own.
            let reader = self.point_client().await?;
            let mut rows = PgRows(&*reader, Vec::new(), Mode::Guarded(Guarded::default()));
            let written = write::apply(&mut rows, op).await?;
            let Mode::Guarded(queued) = rows.2 else {
                unreachable!("the rows stay guarded")
            };
            (written, queued)
        };
        queued.send(&self.client().await?).await?;
        Ok(written)
    }

    /// One attempt at a write, as one transaction whose statements are sent
    /// in as few round trips as their answers allow (see `pipeline`).
    async fn pipelined_write(&self, op: &write::Write) -> Step<write::Written> {
        let held = pipeline::InTransaction::new(self.client().await?);
        let outcome = async {
            let mut rows = PgRows::pipelined(held.client());
            let written = write::apply(&mut rows, op).await?;
            rows.commit().await?;
            Ok(written)
        }
        .await;
        match outcome {
            Ok(written) => {
                held.finish();
                Ok(written)
            }
            Err(f) => {
                held.rollback().await;
                Err(f)
            }
        }
    }

    /// A connection for one statement outside a transaction: shared with
    /// other point reads when the pool sets connections apart for them.
    async fn point_client(&self) -> Step<shared::PointClient> {
        match &self.shared {
            Some(shared) => shared
                .client()
                .await
                .map(shared::PointClient::Shared)
                .map_err(|e| Fail::Store(pool_error(e))),
            None => self
                .client()
                .await
                .map(|c| shared::PointClient::Own(Box::new(c))),
        }
    }
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The write path's row operations inside a transaction (see
/// [`write::Rows`]): rows read for a write are locked until it commits,
/// except in a guarded write, which holds no transaction ([`Mode`]).
/// The rows of one transaction (or read), and the changes its write has
/// made so far.
struct PgRows<'t, C>(&'t C, Vec<crate::domain::audit::Change>, Mode<'t>);

/// How the statements of a [`PgRows`] go out.
enum Mode<'t> {
    /// Every statement runs at once.
    Immediate,
    /// The statements whose answer is only success wait in a queue and go
    /// out ahead of the next one (see `pipeline`).
    Pipelined(Vec<pipeline::Pending<'t>>),
    /// The row is read without a lock and the rest is queued, to go out as
    /// one statement guarded by the version read (see `guarded`).
    Guarded(Guarded),
}

/// A parameter of a queued statement, owned by it.
type Param = Box<dyn ToSql + Send + Sync>;

fn param(value: impl ToSql + Send + Sync + 'static) -> Param {
    Box::new(value)
}

impl<'t, C: GenericClient + Sync> PgRows<'t, C> {
    fn new(client: &'t C) -> Self {
        PgRows(client, Vec::new(), Mode::Immediate)
    }

    /// The rows of a transaction this write opens itself: BEGIN waits in
    /// the queue for the first statement.
    fn pipelined(client: &'t C) -> Self {
        let begin: pipeline::Pending<'t> = Box::pin(client.batch_execute("BEGIN"));
        PgRows(client, Vec::new(), Mode::Pipelined(vec![begin]))
    }

    /// Runs `next` after the queued statements, sent together; a queued
    /// statement's failure is the outer error, `next`'s own answer the inner
    /// result. A guarded write reads nothing but its row: any other
    /// statement with an answer needs the locking transaction.
    async fn run<T>(
        &mut self,
        next: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Step<Result<T, tokio_postgres::Error>> {
        match &mut self.2 {
            Mode::Guarded(_) => Err(Fail::NeedsLock),
            Mode::Pipelined(queued) if !queued.is_empty() => {
                Ok(pipeline::settle(std::mem::take(queued), next).await?)
            }
            _ => Ok(next.await),
        }
    }

    /// A statement whose only answer is success: queued in a pipelined
    /// write, run at once otherwise.
    async fn defer(&mut self, sql: &str, params: Vec<Param>) -> Step<()> {
        if let Mode::Guarded(g) = &mut self.2 {
            g.parts.push((sql.to_owned(), params));
            return Ok(());
        }
        let c = self.0;
        let stmt = c.prepare_cached(sql).await?;
        let statement = async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            c.execute(&stmt, &refs).await.map(drop)
        };
        match &mut self.2 {
            Mode::Pipelined(queued) => queued.push(Box::pin(statement)),
            _ => statement.await?,
        }
        Ok(())
    }

    /// Sends what is queued with COMMIT, and waits for the commit.
    async fn commit(&mut self) -> Step<()> {
        let c = self.0;
        self.run(c.batch_execute("COMMIT")).await??;
        Ok(())
    }
}

/// Runs a statement taking `$1` tenant and `$2` id; the rows it changed.
async fn execute(c: &impl GenericClient, sql: &str, tenant: &str, id: &str) -> Step<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, &[&tenant, &id]).await?)
}

/// The owned `$1` tenant and `$2` id of a queued statement.
fn key(tenant: &str, id: &str) -> Vec<Param> {
    vec![param(tenant.to_owned()), param(id.to_owned())]
}

impl<C: GenericClient + Sync> read::Reads for PgRows<'_, C> {
    type Error = Fail;

    async fn exists(&mut self, table: Entity, tenant: &str, id: &str, hold: bool) -> Step<bool> {
        let c = self.0;
        self.run(async { Ok(exists(c, table, tenant, id, hold).await) })
            .await??
    }

    async fn linked_manifest(&mut self, tenant: &str, instance_id: &str) -> Step<Option<Stored>> {
        let stmt = self
                .0
            .prepare_cached(
                "SELECT i.manifest_id, m.doc::text, m.version
                 FROM agent_instances i
                 LEFT JOIN agent_card_manifests m ON m.tenant_id = i.tenant_id AND m.id = i.manifest_id
                 WHERE i.tenant_id = $1 AND i.id = $2",
            )
            .await?;
        let c = self.0;
        let Some(r) = self
            .run(c.query_opt(&stmt, &[&tenant, &instance_id]))
            .await??
        else {
            return Err(not_found(Entity::Instance, instance_id).into());
        };
        let id: Option<String> = r.try_get(0)?;
        let doc: Option<String> = r.try_get(1)?;
        Ok(match (id, doc) {
            (Some(id), Some(doc)) => Some(Stored {
                id,
                doc,
                version: r.try_get(2)?,
            }),
            _ => None,
        })
    }

    async fn rows(&mut self, page: &query::Compiled) -> Step<Vec<(Stored, Vec<Value>)>> {
        let stmt = self.0.prepare_cached(&page.sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = page
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        let c = self.0;
        let rows = self.run(c.query(&stmt, &params)).await??;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut values = Vec::with_capacity(page.sort_columns);
            for i in 0..page.sort_columns {
                let v: Option<Value> = r.try_get(3 + i)?;
                values.push(v.unwrap_or(Value::Null));
            }
            let stored = Stored {
                id: r.try_get(0)?,
                doc: r.try_get(1)?,
                version: r.try_get(2)?,
            };
            out.push((stored, values));
        }
        Ok(out)
    }

    async fn number(&mut self, count: &query::Compiled) -> Step<u64> {
        let stmt = self.0.prepare_cached(&count.sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = count
            .params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        let c = self.0;
        let n: i64 = self.run(c.query_one(&stmt, &params)).await??.try_get(0)?;
        Ok(n as u64)
    }

    fn page_statement(
        tenant: &str,
        ty: &'static EntityType,
        source: query::Source<'_>,
        q: &ListQuery,
    ) -> query::Compiled {
        query::list(tenant, ty, source, q)
    }

    type Dialect = query::Postgres;
}

impl<C: GenericClient + Sync> write::Rows for PgRows<'_, C> {
    fn changes(&mut self) -> &mut Vec<crate::domain::audit::Change> {
        &mut self.1
    }

    async fn insert_audit(&mut self, tenant: &str, id: &str, at: &str, doc: &str) -> Step<()> {
        const INSERT: &str = "INSERT INTO directory_audits
            (tenant_id, id, created_at, modified_at, version, doc)
            VALUES ($1, $2, $3, $3, 1, $4::text::json)";
        let mut params = key(tenant, id);
        params.push(param(at.to_owned()));
        params.push(param(doc.to_owned()));
        self.defer(INSERT, params).await
    }

    async fn prune(&mut self, before: &str) -> Step<()> {
        const PRUNE_AUDITS: &str = "DELETE FROM directory_audits WHERE created_at < $1";
        for sql in [statements::PRUNE_CHANGE_LOG, PRUNE_AUDITS] {
            self.defer(sql, vec![param(before.to_owned())]).await?;
        }
        Ok(())
    }

    async fn log_change(
        &mut self,
        tenant: &str,
        table: Entity,
        id: &str,
        change: crate::domain::subscriptions::ChangeType,
        at: &str,
    ) -> Step<()> {
        let params = vec![
            param(tenant.to_owned()),
            param(table.ty().entity_set),
            param(id.to_owned()),
            param(change.code()),
            param(at.to_owned()),
        ];
        self.defer(statements::LOG_CHANGE, params).await
    }

    async fn row(&mut self, table: Entity, tenant: &str, id: &str) -> Step<Option<Row>> {
        let link = if table == Entity::Instance {
            "manifest_id"
        } else {
            "NULL::text"
        };
        let guarded = matches!(self.2, Mode::Guarded(_));
        let sql = format!(
            "SELECT doc::text, version, {link}{} FROM {} WHERE tenant_id = $1 AND id = $2{}",
            table.column_list(0, false),
            table.table(),
            if guarded { "" } else { " FOR UPDATE" }
        );
        let stmt = self.0.prepare_cached(&sql).await?;
        let c = self.0;
        let found = match &mut self.2 {
            // The one row a guarded write reads, without a lock.
            Mode::Guarded(g) if g.read.is_none() => c.query_opt(&stmt, &[&tenant, &id]).await?,
            _ => self.run(c.query_opt(&stmt, &[&tenant, &id])).await??,
        };
        let Some(r) = found else {
            return Ok(None);
        };
        if let Mode::Guarded(g) = &mut self.2 {
            g.read = Some((table, tenant.to_owned(), id.to_owned(), r.try_get(1)?));
        }
        Ok(Some(Row::loaded(
            table,
            r.try_get::<_, &str>(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            (0..table.columns().len())
                .map(|n| r.try_get(3 + n))
                .collect::<Result<Vec<_>, _>>()?,
        )))
    }

    async fn insert(
        &mut self,
        table: Entity,
        tenant: &str,
        doc: &Map<String, Value>,
        manifest_id: Option<&str>,
        if_new: bool,
    ) -> Step<Option<Stored>> {
        let id = text(doc, "id").unwrap_or_default().to_owned();
        let body = Value::Object(doc.clone()).to_string();
        let linked = table == Entity::Instance;
        let columns = column_values(table, doc);
        let first = if linked { 8 } else { 7 };
        let values: String = (0..columns.len())
            .map(|n| format!(", ${}", first + n))
            .collect();
        let sql = format!(
            "INSERT INTO {} (tenant_id, id, created_at, modified_at, version, doc{}{})
             VALUES ($1, $2, $3, $4, $5, $6::text::json{}{values}){}",
            table.table(),
            if linked { ", manifest_id" } else { "" },
            table.column_list(0, false),
            if linked { ", $7" } else { "" },
            if if_new {
                " ON CONFLICT DO NOTHING"
            } else {
                ""
            }
        );
        let stmt = self.0.prepare_cached(&sql).await?;
        let version = 1i64;
        let created = text(doc, table.timestamps().0).unwrap_or_default();
        let modified = text(doc, table.timestamps().1).unwrap_or_default();
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&tenant, &id, &created, &modified, &version, &body];
        if linked {
            params.push(&manifest_id);
        }
        for c in &columns {
            params.push(c);
        }
        let c = self.0;
        match self.run(c.execute(&stmt, &params)).await? {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(Stored {
                id,
                doc: body,
                version,
            })),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists { kind: table, id }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update(&mut self, table: Entity, tenant: &str, id: &str, row: &Row) -> Step<Stored> {
        if let Mode::Guarded(g) = &self.2
            && (!g.parts.is_empty()
                || g.read.as_ref().is_none_or(|(t, te, i, _)| {
                    (*t, te.as_str(), i.as_str()) != (table, tenant, id)
                }))
        {
            // Only the row read can be guarded, and only as the first statement.
            return Err(Fail::NeedsLock);
        }
        let body = Value::Object(row.doc.clone()).to_string();
        let version = row.version + 1;
        let linked = table == Entity::Instance;
        let first = if linked { 7 } else { 6 };
        let sql = format!(
            "UPDATE {} SET modified_at = $3, version = $4, doc = $5::text::json{}{}
             WHERE tenant_id = $1 AND id = $2",
            table.table(),
            if linked { ", manifest_id = $6" } else { "" },
            table.column_list(first, true),
        );
        let modified = text(&row.doc, table.timestamps().1).unwrap_or_default();
        let mut params = key(tenant, id);
        params.push(param(modified.to_owned()));
        params.push(param(version));
        params.push(param(body.clone()));
        if linked {
            params.push(param(row.manifest_id.clone()));
        }
        for c in column_values(table, &row.doc) {
            params.push(param(c.map(str::to_owned)));
        }
        self.defer(&sql, params).await?;
        Ok(Stored {
            id: id.to_owned(),
            doc: body,
            version,
        })
    }

    async fn id_where(
        &mut self,
        table: Entity,
        tenant: &str,
        column: &'static str,
        value: &str,
    ) -> Step<Option<String>> {
        let stmt = self
            .0
            .prepare_cached(&statements::id_where(table, column))
            .await?;
        let c = self.0;
        let row = self.run(c.query_opt(&stmt, &[&tenant, &value])).await??;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn delete(&mut self, table: Entity, tenant: &str, id: &str) -> Step<bool> {
        let stmt = self
            .0
            .prepare_cached(&statements::delete_row(table))
            .await?;
        let c = self.0;
        Ok(self.run(c.execute(&stmt, &[&tenant, &id])).await?? > 0)
    }

    async fn delete_dependents(&mut self, table: Entity, tenant: &str, id: &str) -> Step<()> {
        for sql in statements::dependents(table) {
            self.defer(sql, key(tenant, id)).await?;
        }
        Ok(())
    }

    async fn set_side_values(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        values: &[&str],
    ) -> Step<()> {
        let Some((delete, side)) = statements::side_values(table) else {
            return Ok(());
        };
        self.defer(delete, key(tenant, id)).await?;
        if !values.is_empty() {
            let insert = format!(
                "INSERT INTO {} (tenant_id, {}, {})
                 SELECT $1, $2, v FROM unnest($3::text[]) AS v ON CONFLICT DO NOTHING",
                side.table, side.key, side.value
            );
            let mut params = key(tenant, id);
            params.push(param(
                values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            ));
            self.defer(&insert, params).await?;
        }
        Ok(())
    }

    async fn link_instance_tags(
        &mut self,
        tenant: &str,
        instance: &str,
        manifest: Option<&str>,
    ) -> Step<()> {
        self.defer(statements::DELETE_INSTANCE_TAGS, key(tenant, instance))
            .await?;
        if let Some(manifest) = manifest {
            let mut params = key(tenant, instance);
            params.push(param(manifest.to_owned()));
            self.defer(statements::COPY_MANIFEST_TAGS, params).await?;
        }
        Ok(())
    }

    async fn relink_manifest_tags(&mut self, tenant: &str, manifest: &str) -> Step<()> {
        for sql in statements::RELINK_MANIFEST_TAGS {
            self.defer(sql, key(tenant, manifest)).await?;
        }
        Ok(())
    }

    async fn instances_linking(&mut self, tenant: &str, manifest: &str) -> Step<u64> {
        let stmt = self.0.prepare_cached(statements::COUNT_LINKING).await?;
        let c = self.0;
        let n: i64 = self
            .run(c.query_one(&stmt, &[&tenant, &manifest]))
            .await??
            .try_get(0)?;
        Ok(n as u64)
    }

    async fn insert_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Step<bool> {
        let stmt = self.0.prepare_cached(statements::INSERT_MEMBER).await?;
        let c = self.0;
        Ok(self
            .run(c.execute(&stmt, &[&tenant, &collection, &instance]))
            .await??
            > 0)
    }

    async fn delete_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Step<bool> {
        let stmt = self.0.prepare_cached(statements::DELETE_MEMBER).await?;
        let c = self.0;
        Ok(self
            .run(c.execute(&stmt, &[&tenant, &collection, &instance]))
            .await??
            > 0)
    }
}

async fn get_stored(
    c: &impl GenericClient,
    table: Entity,
    tenant: &str,
    id: &str,
) -> Step<Option<Stored>> {
    let sql = format!(
        "SELECT doc::text, version FROM {} WHERE tenant_id = $1 AND id = $2",
        table.table()
    );
    let stmt = c.prepare_cached(&sql).await?;
    let row = c.query_opt(&stmt, &[&tenant, &id]).await?;
    Ok(match row {
        Some(r) => Some(Stored {
            id: id.to_owned(),
            doc: r.try_get(0)?,
            version: r.try_get(1)?,
        }),
        None => None,
    })
}

/// Whether a row exists; with `share`, it is also kept from being deleted or
/// changed until the transaction ends.
async fn exists(
    c: &impl GenericClient,
    table: Entity,
    tenant: &str,
    id: &str,
    share: bool,
) -> Step<bool> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE tenant_id = $1 AND id = $2{}",
        table.table(),
        if share { " FOR SHARE" } else { "" }
    );
    let stmt = c.prepare_cached(&sql).await?;
    Ok(c.query_opt(&stmt, &[&tenant, &id]).await?.is_some())
}

/// Compiles the page query and the count of `q` for `ty`, from the whole
/// table and from each relation that lists `ty`, and checks that the
/// placeholders of each statement (`$1` … outside quoted text) are exactly
/// its parameters: a mismatch would fail at run time. (Preparing needs a
/// server; the tests of `query` run the statements on one.) For the fuzz
/// targets and tests.
pub fn check_translation(ty: &'static EntityType, q: &ListQuery) -> Result<(), String> {
    let sources = match ty.entity_set {
        "agentInstances" => vec![
            query::Source::Table("agent_instances"),
            query::Source::MembersOf("c"),
        ],
        "agentCardManifests" => vec![query::Source::Table("agent_card_manifests")],
        _ => vec![
            query::Source::Table("agent_collections"),
            query::Source::CollectionsOf("i"),
        ],
    };
    for source in sources {
        for compiled in [
            query::list("t", ty, source, q),
            query::count("t", ty, source, &q.criteria),
        ] {
            let used = placeholders(&compiled.sql)?;
            let expected: std::collections::BTreeSet<usize> = (1..=compiled.params.len()).collect();
            if used != expected {
                return Err(format!(
                    "placeholders {used:?} for {} parameters: {}",
                    compiled.params.len(),
                    compiled.sql
                ));
            }
        }
    }
    Ok(())
}

/// The numbers of the `$n` placeholders of a statement, skipping quoted
/// literals and identifiers; an unterminated quote is an error.
fn placeholders(sql: &str) -> Result<std::collections::BTreeSet<usize>, String> {
    let mut used = std::collections::BTreeSet::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                // '' and "" inside are escapes: the scan resumes in the same state.
                loop {
                    match chars.next() {
                        Some((_, q)) if q == c => {
                            if chars.peek().is_some_and(|(_, n)| *n == c) {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(format!("an unterminated {c} in {sql}")),
                    }
                }
            }
            '$' => {
                let mut n = String::new();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                if let Ok(n) = n.parse() {
                    used.insert(n);
                }
            }
            _ => {}
        }
    }
    Ok(used)
}

/// A transaction-scoped advisory lock on one name: writers of the same
/// name (across every replica) queue behind each other until commit.
async fn lock_name(c: &impl GenericClient, namespace: &str, name: &str) -> Step<()> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(namespace.as_bytes())
        .chain_update([0u8])
        .chain_update(name.as_bytes())
        .finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    let key = i64::from_be_bytes(key);
    let stmt = c.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
    c.execute(&stmt, &[&key]).await?;
    Ok(())
}

impl engine::Backend for PgStore {
    async fn write(&self, op: write::Write) -> Result<write::Written, StoreError> {
        if op.is_row_patch() {
            match self.guarded_write(&op).await {
                Err(Fail::NeedsLock) => {}
                Err(f) if f.retryable() => {}
                outcome => {
                    if outcome.is_ok() {
                        self.guarded_writes.fetch_add(1, Ordering::Relaxed);
                    }
                    return outcome.map_err(Fail::into_store);
                }
            }
            self.guarded_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        retrying!(self.pipelined_write(&op))
    }

    async fn get(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        point!(self, |c| get_stored(c, kind, tenant, id).await?)
    }

    async fn get_many(
        &self,
        kind: Entity,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<Stored>>, StoreError> {
        let sql = format!(
            "SELECT id, doc::text, version FROM {} WHERE tenant_id = $1 AND id = ANY($2)",
            kind.table()
        );
        let mut found: std::collections::HashMap<String, Stored> = point!(self, |c| {
            let stmt = c.prepare_cached(&sql).await?;
            let mut found = std::collections::HashMap::with_capacity(ids.len());
            for r in c.query(&stmt, &[&tenant, &ids]).await? {
                let id: String = r.try_get(0)?;
                let stored = Stored {
                    id: id.clone(),
                    doc: r.try_get(1)?,
                    version: r.try_get(2)?,
                };
                found.insert(id, stored);
            }
            found
        })?;
        Ok(ids.iter().map(|id| found.remove(*id)).collect())
    }

    async fn linked_manifest(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Option<Stored>, StoreError> {
        point!(self, |c| PgRows::new(c)
            .linked_manifest(tenant, instance)
            .await?)
    }

    async fn is_member(
        &self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, StoreError> {
        point!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT 1 FROM agent_collection_members
                     WHERE tenant_id = $1 AND collection_id = $2 AND instance_id = $3",
                )
                .await?;
            c.query_opt(&stmt, &[&tenant, &collection, &instance])
                .await?
                .is_some()
        })
    }

    async fn list(
        &self,
        listing: Entity,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        if relation == Relation::All && q.expand.is_empty() && !q.count {
            // One statement needs no transaction to be a snapshot.
            return read!(self, |c| read::page(
                &mut PgRows::new(&c),
                tenant,
                listing,
                relation,
                q
            )
            .await?);
        }
        snapshot!(self, |tx| read::page(
            &mut PgRows::new(&tx),
            tenant,
            listing,
            relation,
            q
        )
        .await?)
    }

    async fn count(
        &self,
        listing: Entity,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        if relation == Relation::All {
            return read!(self, |c| read::count(
                &mut PgRows::new(&c),
                tenant,
                listing,
                relation,
                criteria
            )
            .await?);
        }
        snapshot!(self, |tx| read::count(
            &mut PgRows::new(&tx),
            tenant,
            listing,
            relation,
            criteria
        )
        .await?)
    }

    fn seeded(&self) -> &RwLock<HashSet<String>> {
        &self.seeded
    }

    fn clock(&self) -> &crate::clock::SharedClock {
        &self.clock
    }

    async fn change_position(&self, _tenant: &str) -> Result<String, StoreError> {
        read!(self, |c| changes::position(&c).await?)
    }

    async fn changes(
        &self,
        kind: Entity,
        tenant: &str,
        window: &super::ChangeWindow,
        limit: usize,
    ) -> Result<Vec<super::LoggedChange>, StoreError> {
        snapshot!(self, |tx| changes::changes(
            &tx, kind, tenant, window, limit
        )
        .await?)
    }
}

#[async_trait]
impl CopilotStore for PgStore {
    async fn list_policies(&self, tenant: &str) -> Result<Vec<Policy>, StoreError> {
        read!(self, |c| policies::list(&c, tenant).await?)
    }

    async fn get_policy(&self, tenant: &str, id: &str) -> Result<Option<Policy>, StoreError> {
        point!(self, |c| policies::get(c, tenant, id, false).await?)
    }

    async fn create_policy(
        &self,
        tenant: &str,
        policy: Policy,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError> {
        let event = crate::domain::audit::policy_event(
            &policy.id,
            crate::domain::audit::Action::Create,
            None,
            Some(&policy.to_json()),
        );
        transaction!(self, |tx| {
            policies::lock(&tx, tenant).await?;
            policies::insert(&tx, tenant, &policy).await?;
            policies::record(&tx, tenant, ctx, &event).await?;
        })?;
        Ok(policy)
    }

    async fn update_policy(
        &self,
        tenant: &str,
        id: &str,
        patch: PolicyPatch,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError> {
        transaction!(self, |tx| policies::update(
            &tx, tenant, id, &patch, &rules, ctx
        )
        .await?)
    }

    async fn delete_policy(
        &self,
        tenant: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        transaction!(self, |tx| policies::delete(&tx, tenant, id, ctx).await?)
    }

    async fn write_policy_setting(
        &self,
        tenant: &str,
        write: SettingWrite,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<SettingView, StoreError> {
        transaction!(self, |tx| policies::write_setting(
            &tx, tenant, &write, &rules, ctx
        )
        .await?)
    }

    async fn get_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        point!(self, |c| policies::get_tenant_setting(c, tenant, kind)
            .await?)
    }

    async fn patch_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
        patch: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Map<String, Value>, StoreError> {
        transaction!(self, |tx| policies::patch_tenant_setting(
            &tx, tenant, kind, &patch, ctx
        )
        .await?)
    }
}

#[async_trait]
impl AppStore for PgStore {
    async fn create_app(&self, app: AppRegistration) -> Result<(), StoreError> {
        let doc = serde_json::to_string(&app).map_err(|e| StoreError::Internal(e.to_string()))?;
        transaction!(self, |tx| {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO app_registrations (client_id, tenant_id, doc) VALUES ($1, $2, $3::text::json)",
                )
                .await?;
            tx.execute(&stmt, &[&app.client_id, &app.tenant_id, &doc])
                .await?;
        })
    }

    async fn delete_app(&self, tenant: &str, client_id: &str) -> Result<bool, StoreError> {
        let deleted = transaction!(self, |tx| {
            execute(&tx, statements::DELETE_APP, tenant, client_id).await? > 0
        })?;
        Ok(deleted)
    }

    async fn get_app(&self, client_id: &str) -> Result<Option<AppRegistration>, StoreError> {
        let doc: Option<String> = point!(self, |c| {
            let stmt = c
                .prepare_cached("SELECT doc::text FROM app_registrations WHERE client_id = $1")
                .await?;
            match c.query_opt(&stmt, &[&client_id]).await? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            }
        })?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Internal(e.to_string())))
            .transpose()
    }

    async fn list_apps(&self, tenant: &str) -> Result<Vec<AppRegistration>, StoreError> {
        let docs: Vec<String> = read!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT doc::text FROM app_registrations WHERE tenant_id = $1 ORDER BY client_id",
                )
                .await?;
            let mut docs = Vec::new();
            for r in c.query(&stmt, &[&tenant]).await? {
                docs.push(r.try_get(0)?);
            }
            docs
        })?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(|e| StoreError::Internal(e.to_string())))
            .collect()
    }
}

#[async_trait]
impl TenantStore for PgStore {
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        read!(self, |c| tenant::tenants(&c).await?)
    }

    async fn export_section(
        &self,
        tenant: &str,
        section: Section,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(TenantState, Option<String>), StoreError> {
        read!(self, |c| {
            let rows = &mut PgRows::new(&c);
            crate::store::tenant::export_section(rows, tenant, section, after, limit).await?
        })
    }

    async fn export_tenant(&self, tenant: &str) -> Result<TenantState, StoreError> {
        engine::ensure_reserved(self, tenant).await?;
        // One snapshot, so the parts agree with each other.
        snapshot!(self, |tx| crate::store::tenant::export(
            &mut PgRows::new(&tx),
            tenant
        )
        .await?)
    }

    async fn finish_bulk_load(&self, created: bool) -> Result<(), StoreError> {
        // Every batch was committed durably. Autovacuum would analyze the
        // tables too, later.
        if !created {
            return Ok(());
        }
        read!(self, |c| {
            c.batch_execute("ANALYZE").await?;
        })
    }

    async fn import_tenant(
        &self,
        tenant: &str,
        state: TenantState,
        mode: ImportMode,
        now: &str,
    ) -> Result<ImportReport, StoreError> {
        let report = self.import(tenant, &state, mode, now).await?;
        // Tens of thousands of parsed documents take a good part of a
        // batch's own time to free; the caller need not wait for that.
        tokio::task::spawn_blocking(move || drop(state));
        Ok(report)
    }

    async fn import_batch(
        &self,
        tenant: &str,
        state: TenantState,
        now: &str,
    ) -> Result<(ImportReport, TenantState), StoreError> {
        let report = self.import(tenant, &state, ImportMode::Merge, now).await?;
        Ok((report, state))
    }
}

impl PgStore {
    /// Writes `state` in one transaction, durable once it answers.
    async fn import(
        &self,
        tenant: &str,
        state: &TenantState,
        mode: ImportMode,
        now: &str,
    ) -> Result<ImportReport, StoreError> {
        let report = transaction!(self, |tx| {
            // Policy writers of this tenant wait for the import to finish.
            policies::lock(&tx, tenant).await?;
            let rows = &mut PgRows::new(&tx);
            crate::store::tenant::import(rows, tenant, state, mode, now).await?
        })?;
        // The import stored the reserved collections.
        self.seeded
            .write()
            .expect("seed set poisoned")
            .insert(tenant.to_owned());
        Ok(report)
    }
}

#[async_trait]
impl Store for PgStore {
    fn stats(&self) -> StoreStats {
        let status = self.pool.status();
        StoreStats {
            idle_readers: status.available as u64,
            guarded_writes: self.guarded_writes.load(Ordering::Relaxed),
            guarded_fallbacks: self.guarded_fallbacks.load(Ordering::Relaxed),
            ..StoreStats::default()
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        read!(self, |c| {
            c.simple_query("SELECT 1").await?;
        })
    }

    async fn close(&self) {
        if let Some(shared) = &self.shared {
            shared.close();
        }
        self.pool.close();
    }
}

mod subscriptions;
mod users;
mod watch;

#[cfg(test)]
mod tests {
    use super::{placeholders, split_pool};

    #[test]
    fn small_pools_share_no_connection_and_larger_ones_one_in_sixteen() {
        for (size, split) in [
            (0, (1, 0)),
            (1, (1, 0)),
            (3, (3, 0)),
            (4, (3, 1)),
            (10, (9, 1)),
            (16, (15, 1)),
            (17, (15, 2)),
            (64, (60, 4)),
        ] {
            assert_eq!(split_pool(size), split, "a pool of {size}");
        }
    }

    #[test]
    fn placeholders_in_quoted_text_do_not_count_and_open_quotes_are_errors() {
        let used =
            placeholders(r#"SELECT $1, '$2 it''s', "$3""x" FROM t WHERE a = $2 AND b = $10"#);
        assert_eq!(used.unwrap().into_iter().collect::<Vec<_>>(), [1, 2, 10]);
        assert!(placeholders("SELECT 'open $1").is_err());
    }
}

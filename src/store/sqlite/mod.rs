//! The embedded SQLite backend (the default).
//!
//! - Writes go through one writer thread that commits queued jobs together
//!   ([`writer`]); a write is acknowledged once its WAL frames are on disk
//!   ([`durability`]).
//! - Reads run on the calling task with a pooled read-only connection: WAL
//!   lets them proceed beside the writer, and a point read costs microseconds,
//!   less than a hop to another thread would. A pooled connection keeps its
//!   read transaction until a write is committed ([`readers`]).
//! - Reads by id are served from a bounded cache of documents ([`cache`]),
//!   which the writer keeps in step: it is the database's only writer.

mod cache;
mod changes;
mod durability;
mod policies;
mod query;
mod readers;
mod subscriptions;
mod tenant;
mod users;
mod watch;
mod writer;

use super::read::{self, Reads};
use super::write::{self, Row, column_values, not_found, text};
use super::{
    AppStore, CopilotStore, Criteria, Entity, ImportMode, ImportReport, ListQuery, Page, Relation,
    Section, Store, StoreError, StoreStats, Stored, TenantState, TenantStore, engine, statements,
};
use crate::domain::WriteContext;
use crate::domain::apps::AppRegistration;
use crate::domain::audit;
use crate::domain::copilot::{
    CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
};
use crate::domain::schema::EntityType;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use writer::Writer;

/// Schema changes, applied in order; `PRAGMA user_version` counts those done.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_registry",
        include_str!("migrations/0001_registry.sql"),
    ),
    (
        "0002_copilot_policies",
        include_str!("migrations/0002_copilot_policies.sql"),
    ),
    (
        "0003_app_registrations",
        include_str!("migrations/0003_app_registrations.sql"),
    ),
    (
        "0004_instance_skill_tags",
        include_str!("migrations/0004_instance_skill_tags.sql"),
    ),
    (
        "0005_one_name_index",
        include_str!("migrations/0005_one_name_index.sql"),
    ),
    (
        "0006_agent_registrations",
        include_str!("migrations/0006_agent_registrations.sql"),
    ),
    (
        "0007_copilot_packages",
        include_str!("migrations/0007_copilot_packages.sql"),
    ),
    (
        "0008_audit_and_change_log",
        include_str!("migrations/0008_audit_and_change_log.sql"),
    ),
    (
        "0009_subscriptions",
        include_str!("migrations/0009_subscriptions.sql"),
    ),
    (
        "0010_agent_watch",
        include_str!("migrations/0010_agent_watch.sql"),
    ),
    ("0011_users", include_str!("migrations/0011_users.sql")),
    (
        "0012_package_element_types",
        include_str!("migrations/0012_package_element_types.sql"),
    ),
];

pub struct SqliteStore {
    writer: Writer,
    readers: Arc<readers::Readers>,
    cache: Arc<cache::DocCache>,
    /// Tenants whose reserved collections are known to be stored.
    seeded: RwLock<HashSet<String>>,
    clock: crate::clock::SharedClock,
}

pub(super) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked | C::CannotOpen | C::DiskFull) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations,
    /// with the default read cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, super::DEFAULT_READ_CACHE_MB << 20)
    }

    /// Opens the database file with a read cache of `cache_bytes` (0: none).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        prepare_file(path)?;
        let conn = Connection::open(path).map_err(sql_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(sql_error)?;
        migrate(&conn)?;
        // Keeps ANALYZE cheaper on large tables (the writer refreshes the
        // statistics once started, see `writer::run`).
        conn.execute_batch("PRAGMA analysis_limit = 1000;")
            .map_err(sql_error)?;
        let cache = Arc::new(cache::DocCache::new(cache_bytes));
        let readers = Arc::new(readers::Readers::new(path.to_owned()));
        let writer = Writer::start(conn, path, cache.clone(), readers.clone())?;
        Ok(Self {
            writer,
            readers,
            cache,
            seeded: RwLock::new(HashSet::new()),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        })
    }

    /// Stamps what the store creates on its own with `clock`.
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs a read on a pooled connection, on the calling thread, in one
    /// snapshot (see [`readers`]).
    fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.readers.read(f)
    }

    /// Reads a document by id, from the cache when it holds it.
    fn read_stored(
        &self,
        table: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        if !self.cache.enabled() {
            return self.read(|conn| get_stored(conn, table, tenant, id));
        }
        if let Some(hit) = self.cache.get(table, tenant, id) {
            return Ok(Some(hit));
        }
        let ticket = self.cache.ticket();
        let found = self.read(|conn| get_stored(conn, table, tenant, id))?;
        if let Some(stored) = &found {
            self.cache.insert(ticket, table, tenant, stored);
        }
        Ok(found)
    }
}

/// Creates the database's folder and an empty database file, both its
/// owner's alone; SQLite gives the WAL and shared-memory files the mode of
/// the database file. An existing database loses group and other access.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    let failed = |e: std::io::Error, what: &Path| {
        StoreError::Unavailable(format!("cannot create {}: {e}", what.display()))
    };
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir(dir).map_err(|e| failed(e, dir))?;
    }
    if path.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            crate::files::make_private(Path::new(&name));
        }
    } else {
        match crate::files::create_new_private_file(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(e, path)),
        }
    }
    Ok(())
}

/// Opens (creating if needed) a database file, applies its pending
/// migrations and returns their names.
pub fn migrate_file(path: &Path) -> Result<Vec<String>, StoreError> {
    prepare_file(path)?;
    let conn = Connection::open(path).map_err(sql_error)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
        .map_err(sql_error)?;
    migrate(&conn)
}

/// Compiles the page query and the count of `q` for `ty`, from the whole
/// table and from each relation that lists `ty`, and has SQLite prepare
/// every statement against the real schema (in memory): a translation that
/// SQLite would refuse at run time, or whose parameters do not match its
/// placeholders, is an `Err` here. For the fuzz targets and tests.
pub fn check_translation(ty: &'static EntityType, q: &ListQuery) -> Result<(), String> {
    thread_local! {
        static SCHEMA: Connection = {
            let conn = Connection::open_in_memory().expect("an in-memory database");
            migrate(&conn).expect("the migrations apply");
            conn
        };
    }
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
    SCHEMA.with(|conn| {
        for source in sources {
            for compiled in [
                query::list("t", ty, source, q),
                query::count("t", ty, source, &q.criteria),
            ] {
                let stmt = conn
                    .prepare(&compiled.sql)
                    .map_err(|e| format!("{e}: {}", compiled.sql))?;
                if stmt.parameter_count() != compiled.params.len() {
                    return Err(format!(
                        "{} placeholders, {} parameters: {}",
                        stmt.parameter_count(),
                        compiled.params.len(),
                        compiled.sql
                    ));
                }
            }
        }
        Ok(())
    })
}

/// Applies pending migrations; returns the names of those applied.
pub(super) fn migrate(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let done: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(sql_error)? as usize;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "the database schema (version {done}) is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    let mut applied = Vec::new();
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(done) {
        let batch = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(sql_error(e));
        }
        applied.push((*name).to_owned());
    }
    Ok(applied)
}

/// The write path's row operations on the writer's connection (see
/// [`write::Rows`]): plain statements, which never wait.
/// The rows of one transaction on a connection, and the changes its
/// write has made so far.
struct SqliteRows<'c>(&'c Connection, Vec<crate::domain::audit::Change>);

/// Deletes the audit records made before `$1`. Records are appended in time
/// order: the ones below the first made since then, found in rowid order
/// from the oldest. `NOT INDEXED`: through the index on the time the planner
/// read every record made since (the whole index when none is old), and the
/// writer's page cache kept those pages: the prune that runs at each start
/// left a server idle at 48 MB instead of 16 MB after 440k audited writes.
const PRUNE_AUDITS: &str = "DELETE FROM directory_audits WHERE rowid < COALESCE(
    (SELECT rowid FROM directory_audits NOT INDEXED WHERE created_at >= $1 ORDER BY rowid LIMIT 1),
    (SELECT MAX(rowid) + 1 FROM directory_audits))";

impl<'c> SqliteRows<'c> {
    fn new(conn: &'c Connection) -> Self {
        SqliteRows(conn, Vec::new())
    }
}

impl read::Reads for SqliteRows<'_> {
    type Error = StoreError;

    async fn exists(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        _hold: bool,
    ) -> Result<bool, StoreError> {
        // The single writer holds every row it reads until it commits.
        exists(self.0, table, tenant, id)
    }

    async fn linked_manifest(
        &mut self,
        tenant: &str,
        instance: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT manifest_id FROM agent_instances WHERE tenant_id = ?1 AND id = ?2",
            )
            .map_err(sql_error)?;
        let link: Option<Option<String>> = stmt
            .query_row(params![tenant, instance], |r| r.get(0))
            .optional()
            .map_err(sql_error)?;
        match link {
            None => Err(not_found(Entity::Instance, instance)),
            Some(None) => Ok(None),
            Some(Some(mid)) => get_stored(self.0, Entity::Manifest, tenant, &mid),
        }
    }

    async fn rows(
        &mut self,
        page: &query::Compiled,
    ) -> Result<Vec<(Stored, Vec<Value>)>, StoreError> {
        let mut stmt = self.0.prepare_cached(&page.sql).map_err(sql_error)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(page.params.iter()))
            .map_err(sql_error)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_error)? {
            let mut values = Vec::with_capacity(page.sort_columns);
            for c in 0..page.sort_columns {
                values.push(query::to_json(r.get(3 + c).map_err(sql_error)?));
            }
            let stored = Stored {
                id: r.get(0).map_err(sql_error)?,
                doc: r.get(1).map_err(sql_error)?,
                version: r.get(2).map_err(sql_error)?,
            };
            out.push((stored, values));
        }
        Ok(out)
    }

    async fn number(&mut self, count: &query::Compiled) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&count.sql).map_err(sql_error)?;
        let n: i64 = stmt
            .query_row(rusqlite::params_from_iter(count.params.iter()), |r| {
                r.get(0)
            })
            .map_err(sql_error)?;
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

    type Dialect = query::Sqlite;
}

impl write::Rows for SqliteRows<'_> {
    fn changes(&mut self) -> &mut Vec<crate::domain::audit::Change> {
        &mut self.1
    }

    async fn insert_audit(
        &mut self,
        tenant: &str,
        id: &str,
        at: &str,
        doc: &str,
    ) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO directory_audits
            (tenant_id, id, created_at, modified_at, version, doc) VALUES (?1, ?2, ?3, ?3, 1, ?4)";
        self.0
            .prepare_cached(INSERT)
            .and_then(|mut s| s.execute(params![tenant, id, at, doc]))
            .map(drop)
            .map_err(sql_error)
    }

    async fn prune(&mut self, before: &str) -> Result<(), StoreError> {
        for sql in [statements::PRUNE_CHANGE_LOG, PRUNE_AUDITS] {
            self.0
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![before]))
                .map_err(sql_error)?;
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
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(statements::LOG_CHANGE)
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    table.ty().entity_set,
                    id,
                    change.code(),
                    at
                ])
            })
            .map(drop)
            .map_err(sql_error)
    }

    async fn row(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Row>, StoreError> {
        let link = if table == Entity::Instance {
            "manifest_id"
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT doc, version, {link}{} FROM {} WHERE tenant_id = ?1 AND id = ?2",
            table.column_list(0, false),
            table.table()
        );
        let mut stmt = self.0.prepare_cached(&sql).map_err(sql_error)?;
        let row = stmt
            .query_row(params![tenant, id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    (0..table.columns().len())
                        .map(|n| r.get(3 + n))
                        .collect::<Result<Vec<_>, _>>()?,
                ))
            })
            .optional()
            .map_err(sql_error)?;
        Ok(row
            .map(|(doc, version, link, columns)| Row::loaded(table, &doc, version, link, columns)))
    }

    async fn insert(
        &mut self,
        table: Entity,
        tenant: &str,
        doc: &Map<String, Value>,
        manifest_id: Option<&str>,
        if_new: bool,
    ) -> Result<Option<Stored>, StoreError> {
        let id = text(doc, "id").unwrap_or_default().to_owned();
        let body = document_text(doc)?;
        let linked = table == Entity::Instance;
        let columns = column_values(table, doc);
        let sql = insert_statement(table, if_new);
        let mut stmt = self.0.prepare_cached(sql).map_err(sql_error)?;
        let (created, modified) = table.timestamps();
        let created = text(doc, created).unwrap_or_default();
        let modified = text(doc, modified).unwrap_or_default();
        let mut all: Vec<&dyn rusqlite::ToSql> =
            vec![&tenant, &id, &created, &modified, &1i64, &body];
        if linked {
            all.push(&manifest_id);
        }
        for c in &columns {
            all.push(c);
        }
        let result = stmt.execute(all.as_slice());
        match result {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists { kind: table, id });
            }
            Err(e) => return Err(sql_error(e)),
        }
        cache::record(table, tenant, &id);
        Ok(Some(Stored {
            id,
            doc: body,
            version: 1,
        }))
    }

    async fn update(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        row: &Row,
    ) -> Result<Stored, StoreError> {
        let body = document_text(&row.doc)?;
        let version = row.version + 1;
        // Only the columns whose values change are set: SQLite rewrites the
        // entries of every index on a column the statement sets, changed or
        // not. The document is the last parameter, so every parameter is
        // counted whichever columns the statement names.
        let columns = column_values(table, &row.doc);
        let doc_param = 6 + columns.len();
        let mut sql = format!(
            "UPDATE {} SET modified_at = ?3, version = ?4, doc = ?{doc_param}",
            table.table()
        );
        for (n, ((column, _), loaded)) in table.columns().iter().zip(&row.columns).enumerate() {
            if columns[n] != loaded.as_deref() {
                sql.push_str(&format!(", {column} = ?{}", n + 6));
            }
        }
        if table == Entity::Instance && row.manifest_id != row.loaded_manifest_id {
            sql.push_str(", manifest_id = ?5");
        }
        sql.push_str(" WHERE tenant_id = ?1 AND id = ?2");
        let mut stmt = self.0.prepare_cached(&sql).map_err(sql_error)?;
        let modified = text(&row.doc, table.timestamps().1).unwrap_or_default();
        let mut all: Vec<&dyn rusqlite::ToSql> =
            vec![&tenant, &id, &modified, &version, &row.manifest_id];
        for c in &columns {
            all.push(c);
        }
        all.push(&body);
        stmt.execute(all.as_slice()).map_err(sql_error)?;
        cache::record(table, tenant, id);
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
    ) -> Result<Option<String>, StoreError> {
        self.0
            .prepare_cached(&statements::id_where(table, column))
            .and_then(|mut s| s.query_row(params![tenant, value], |r| r.get(0)).optional())
            .map_err(sql_error)
    }

    async fn delete(&mut self, table: Entity, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = execute(self.0, &statements::delete_row(table), tenant, id)? > 0;
        if deleted {
            cache::record(table, tenant, id);
        }
        Ok(deleted)
    }

    async fn delete_dependents(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        for sql in statements::dependents(table) {
            execute(self.0, sql, tenant, id)?;
        }
        Ok(())
    }

    async fn set_side_values(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        values: &[&str],
    ) -> Result<(), StoreError> {
        let Some((delete, side)) = statements::side_values(table) else {
            return Ok(());
        };
        execute(self.0, delete, tenant, id)?;
        let insert = format!(
            "INSERT OR IGNORE INTO {} (tenant_id, {}, {}) VALUES (?1, ?2, ?3)",
            side.table, side.key, side.value
        );
        let mut insert = self.0.prepare_cached(&insert).map_err(sql_error)?;
        for value in values {
            insert
                .execute(params![tenant, id, value])
                .map_err(sql_error)?;
        }
        Ok(())
    }

    async fn link_instance_tags(
        &mut self,
        tenant: &str,
        instance: &str,
        manifest: Option<&str>,
    ) -> Result<(), StoreError> {
        execute(self.0, statements::DELETE_INSTANCE_TAGS, tenant, instance)?;
        if let Some(manifest) = manifest {
            self.0
                .prepare_cached(statements::COPY_MANIFEST_TAGS)
                .and_then(|mut s| s.execute(params![tenant, instance, manifest]))
                .map_err(sql_error)?;
        }
        Ok(())
    }

    async fn relink_manifest_tags(
        &mut self,
        tenant: &str,
        manifest: &str,
    ) -> Result<(), StoreError> {
        for sql in statements::RELINK_MANIFEST_TAGS {
            execute(self.0, sql, tenant, manifest)?;
        }
        Ok(())
    }

    async fn instances_linking(&mut self, tenant: &str, manifest: &str) -> Result<u64, StoreError> {
        count_rows(self.0, statements::COUNT_LINKING, tenant, manifest)
    }

    async fn insert_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, StoreError> {
        self.0
            .prepare_cached(statements::INSERT_MEMBER)
            .and_then(|mut s| s.execute(params![tenant, collection, instance]))
            .map(|n| n > 0)
            .map_err(sql_error)
    }

    async fn delete_member(
        &mut self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, StoreError> {
        self.0
            .prepare_cached(statements::DELETE_MEMBER)
            .and_then(|mut s| s.execute(params![tenant, collection, instance]))
            .map(|n| n > 0)
            .map_err(sql_error)
    }
}

/// A document as stored: compact JSON, written into a buffer that holds a
/// typical document from the start rather than one grown (and copied) as
/// serializing goes.
fn document_text(doc: &Map<String, Value>) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, doc).map_err(|e| StoreError::Internal(e.to_string()))?;
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(|e| StoreError::Internal(e.to_string()))
}

/// A statement of `table`'s, built by `build` once per table and kept in
/// `cell`: point reads and bulk loads run theirs per object.
fn per_table(
    cell: &'static OnceLock<Vec<String>>,
    table: Entity,
    build: fn(Entity) -> String,
) -> &'static str {
    let all = cell.get_or_init(|| Entity::ALL.iter().map(|&t| build(t)).collect());
    &all[table.index()]
}

/// The INSERT of a row of `table`, ignored when its id is taken and `if_new`.
fn insert_statement(table: Entity, if_new: bool) -> &'static str {
    static INSERT: OnceLock<Vec<String>> = OnceLock::new();
    static INSERT_IF_NEW: OnceLock<Vec<String>> = OnceLock::new();
    match if_new {
        false => per_table(&INSERT, table, |t| build_insert(t, false)),
        true => per_table(&INSERT_IF_NEW, table, |t| build_insert(t, true)),
    }
}

fn build_insert(table: Entity, if_new: bool) -> String {
    let linked = table == Entity::Instance;
    let mut sql = format!(
        "INSERT {}INTO {} (tenant_id, id, created_at, modified_at, version, doc{}{}) VALUES (?1, ?2, ?3, ?4, ?5, ?6",
        if if_new { "OR IGNORE " } else { "" },
        table.table(),
        if linked { ", manifest_id" } else { "" },
        table.column_list(0, false),
    );
    let first = if linked { 8 } else { 7 };
    if linked {
        sql.push_str(", ?7");
    }
    for n in 0..table.columns().len() {
        sql.push_str(&format!(", ?{}", first + n));
    }
    sql.push(')');
    sql
}

fn get_stored(
    conn: &Connection,
    table: Entity,
    tenant: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    // Literal per table: a point read formats no SQL.
    let sql = match table {
        Entity::Instance => {
            "SELECT doc, version FROM agent_instances WHERE tenant_id = ?1 AND id = ?2"
        }
        Entity::Manifest => {
            "SELECT doc, version FROM agent_card_manifests WHERE tenant_id = ?1 AND id = ?2"
        }
        Entity::Collection => {
            "SELECT doc, version FROM agent_collections WHERE tenant_id = ?1 AND id = ?2"
        }
        Entity::Registration => {
            "SELECT doc, version FROM agent_registrations WHERE tenant_id = ?1 AND id = ?2"
        }
        Entity::Package => {
            "SELECT doc, version FROM copilot_packages WHERE tenant_id = ?1 AND id = ?2"
        }
        Entity::Audit => {
            "SELECT doc, version FROM directory_audits WHERE tenant_id = ?1 AND id = ?2"
        }
    };
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    stmt.query_row(params![tenant, id], |r| {
        Ok(Stored {
            id: id.to_owned(),
            doc: r.get(0)?,
            version: r.get(1)?,
        })
    })
    .optional()
    .map_err(sql_error)
}

fn exists(conn: &Connection, table: Entity, tenant: &str, id: &str) -> Result<bool, StoreError> {
    static EXISTS: OnceLock<Vec<String>> = OnceLock::new();
    let sql = per_table(&EXISTS, table, |t| {
        format!(
            "SELECT 1 FROM {} WHERE tenant_id = ?1 AND id = ?2",
            t.table()
        )
    });
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    stmt.exists(params![tenant, id]).map_err(sql_error)
}

/// Runs a statement taking `?1` tenant and `?2` id; the rows it changed.
fn execute(conn: &Connection, sql: &str, tenant: &str, id: &str) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![tenant, id]))
        .map_err(sql_error)
}

fn count_rows(conn: &Connection, sql: &str, tenant: &str, scope: &str) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let n: i64 = stmt
        .query_row(params![tenant, scope], |r| r.get(0))
        .map_err(sql_error)?;
    Ok(n as u64)
}

impl engine::Backend for SqliteStore {
    async fn write(&self, op: write::Write) -> Result<write::Written, StoreError> {
        self.writer
            .write(move |conn| write::run_now(write::apply(&mut SqliteRows::new(conn), &op)))
            .await
    }

    async fn get(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.read_stored(kind, tenant, id)
    }

    async fn linked_manifest(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.read(|conn| write::run_now(SqliteRows::new(conn).linked_manifest(tenant, instance)))
    }

    async fn is_member(
        &self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> Result<bool, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT 1 FROM agent_collection_members WHERE tenant_id = ?1 AND collection_id = ?2 AND instance_id = ?3")
                .map_err(sql_error)?;
            stmt.exists(params![tenant, collection, instance]).map_err(sql_error)
        })
    }

    async fn list(
        &self,
        listing: Entity,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        let run = |conn: &Connection| {
            write::run_now(read::page(
                &mut SqliteRows::new(conn),
                tenant,
                listing,
                relation,
                q,
            ))
        };
        // The page, its count and its expansions read one snapshot.
        self.read(run)
    }

    async fn count(
        &self,
        listing: Entity,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        let run = |conn: &Connection| {
            write::run_now(read::count(
                &mut SqliteRows::new(conn),
                tenant,
                listing,
                relation,
                criteria,
            ))
        };
        self.read(run)
    }

    fn seeded(&self) -> &RwLock<HashSet<String>> {
        &self.seeded
    }

    fn clock(&self) -> &crate::clock::SharedClock {
        &self.clock
    }

    async fn change_position(&self, _tenant: &str) -> Result<String, StoreError> {
        self.read(changes::position)
    }

    async fn changes(
        &self,
        kind: Entity,
        tenant: &str,
        window: &super::ChangeWindow,
        limit: usize,
    ) -> Result<Vec<super::LoggedChange>, StoreError> {
        self.read(|conn| changes::changes(conn, kind, tenant, window, limit))
    }
}

#[async_trait]
impl CopilotStore for SqliteStore {
    async fn list_policies(&self, tenant: &str) -> Result<Vec<Policy>, StoreError> {
        self.read(|conn| policies::list(conn, tenant))
    }

    async fn get_policy(&self, tenant: &str, id: &str) -> Result<Option<Policy>, StoreError> {
        self.read(|conn| policies::get(conn, tenant, id))
    }

    async fn create_policy(
        &self,
        tenant: &str,
        policy: Policy,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError> {
        let (tenant, ctx) = (tenant.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| {
                policies::insert(conn, &tenant, &policy)?;
                let event = audit::policy_event(
                    &policy.id,
                    audit::Action::Create,
                    None,
                    Some(&policy.to_json()),
                );
                policies::record(conn, &tenant, &ctx, &event)?;
                Ok(policy)
            })
            .await
    }

    async fn update_policy(
        &self,
        tenant: &str,
        id: &str,
        patch: PolicyPatch,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<Policy, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| policies::update(conn, &tenant, &id, &patch, &rules, &ctx))
            .await
    }

    async fn delete_policy(
        &self,
        tenant: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| policies::delete(conn, &tenant, &id, &ctx))
            .await
    }

    async fn write_policy_setting(
        &self,
        tenant: &str,
        write: SettingWrite,
        rules: CopilotRules,
        ctx: &WriteContext,
    ) -> Result<SettingView, StoreError> {
        let (tenant, ctx) = (tenant.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| policies::write_setting(conn, &tenant, &write, &rules, &ctx))
            .await
    }

    async fn get_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.read(|conn| policies::get_tenant_setting(conn, tenant, kind))
    }

    async fn patch_tenant_setting(
        &self,
        tenant: &str,
        kind: TenantSetting,
        patch: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Map<String, Value>, StoreError> {
        let (tenant, ctx) = (tenant.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| policies::patch_tenant_setting(conn, &tenant, kind, &patch, &ctx))
            .await
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: AppRegistration) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                let doc =
                    serde_json::to_string(&app).map_err(|e| StoreError::Internal(e.to_string()))?;
                conn.prepare_cached(
                    "INSERT INTO app_registrations (client_id, tenant_id, doc) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![app.client_id, app.tenant_id, doc]))
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn get_app(&self, client_id: &str) -> Result<Option<AppRegistration>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM app_registrations WHERE client_id = ?1")
                .map_err(sql_error)?;
            let doc: Option<String> = stmt
                .query_row(params![client_id], |r| r.get(0))
                .optional()
                .map_err(sql_error)?;
            doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Internal(e.to_string())))
                .transpose()
        })
    }

    async fn delete_app(&self, tenant: &str, client_id: &str) -> Result<bool, StoreError> {
        let (tenant, client_id) = (tenant.to_owned(), client_id.to_owned());
        self.writer
            .write(move |conn| Ok(execute(conn, statements::DELETE_APP, &tenant, &client_id)? > 0))
            .await
    }

    async fn list_apps(&self, tenant: &str) -> Result<Vec<AppRegistration>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc FROM app_registrations WHERE tenant_id = ?1 ORDER BY client_id",
                )
                .map_err(sql_error)?;
            let docs = stmt
                .query_map(params![tenant], |r| r.get::<_, String>(0))
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            docs.iter()
                .map(|d| serde_json::from_str(d).map_err(|e| StoreError::Internal(e.to_string())))
                .collect()
        })
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.read(tenant::tenants)
    }

    async fn export_section(
        &self,
        tenant: &str,
        section: Section,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(TenantState, Option<String>), StoreError> {
        self.read(|conn| {
            let rows = &mut SqliteRows::new(conn);
            write::run_now(crate::store::tenant::export_section(
                rows, tenant, section, after, limit,
            ))
        })
    }

    async fn export_tenant(&self, tenant: &str) -> Result<TenantState, StoreError> {
        engine::ensure_reserved(self, tenant).await?;
        self.read(|conn| {
            write::run_now(crate::store::tenant::export(
                &mut SqliteRows::new(conn),
                tenant,
            ))
        })
    }

    async fn finish_bulk_load(&self, created: bool) -> Result<(), StoreError> {
        self.writer.synced().await?;
        if !created {
            return Ok(());
        }
        // Tables without statistics or grown tenfold since, as at start.
        self.writer
            .write(|conn| {
                conn.execute_batch("PRAGMA optimize = 0x10002;")
                    .map_err(sql_error)
            })
            .await
    }

    async fn import_tenant(
        &self,
        tenant: &str,
        state: TenantState,
        mode: ImportMode,
        now: &str,
    ) -> Result<ImportReport, StoreError> {
        let (report, state) = self.import(tenant, state, mode, now, false).await?;
        // Freed here, not on the writer thread, which every write waits for.
        drop(state);
        Ok(report)
    }

    async fn import_batch(
        &self,
        tenant: &str,
        state: TenantState,
        now: &str,
    ) -> Result<(ImportReport, TenantState), StoreError> {
        self.import(tenant, state, ImportMode::Merge, now, true)
            .await
    }
}

impl SqliteStore {
    /// Writes `state` in one writer job, answered once durable or, for a
    /// batch of a bulk load, once committed; the state comes back to be
    /// freed off the writer thread.
    async fn import(
        &self,
        tenant: &str,
        state: TenantState,
        mode: ImportMode,
        now: &str,
        bulk: bool,
    ) -> Result<(ImportReport, TenantState), StoreError> {
        let (t, now) = (tenant.to_owned(), now.to_owned());
        let job = move |conn: &Connection| {
            let rows = &mut SqliteRows::new(conn);
            write::run_now(crate::store::tenant::import(rows, &t, &state, mode, &now))
                .map(|report| (report, state))
        };
        let done = match bulk {
            true => self.writer.write_committed(job).await?,
            false => self.writer.write(job).await?,
        };
        // The import stored the reserved collections.
        self.seeded
            .write()
            .expect("seed set poisoned")
            .insert(tenant.to_owned());
        Ok(done)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn stats(&self) -> StoreStats {
        let idle = self.readers.idle_count();
        let mut stats = self.writer.stats();
        stats.idle_readers = idle as u64;
        stats
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(sql_error)
        })
    }

    async fn close(&self) {
        self.writer.shutdown().await;
        self.readers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(["2026-01-01T00:00:00Z"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn pruning_the_audit_log_reads_from_the_oldest_record_not_through_the_time_index() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        // The statistics of a folder whose log grew by 190k audited writes
        // (as `PRAGMA optimize` with analysis_limit records them).
        conn.execute_batch(
            "ANALYZE sqlite_schema;
             INSERT INTO sqlite_stat1 VALUES
                 ('directory_audits', 'directory_audits_by_created_at', '190463 1001 1 1'),
                 ('directory_audits', 'directory_audits_by_id', '190463 1001 1');
             ANALYZE sqlite_schema;",
        )
        .unwrap();
        let pruning = plan(&conn, PRUNE_AUDITS);
        assert!(
            pruning
                .iter()
                .all(|l| !l.contains("directory_audits_by_created_at")),
            "{pruning:#?}"
        );
        assert!(
            pruning.iter().any(|l| l == "SCAN directory_audits"),
            "{pruning:#?}"
        );
        // What the hint is for: without it, these statistics send the
        // planner through the index on the time.
        let unhinted = PRUNE_AUDITS.replace(" NOT INDEXED", "");
        assert!(
            plan(&conn, &unhinted)
                .iter()
                .any(|l| l.contains("directory_audits_by_created_at")),
            "{:#?}",
            plan(&conn, &unhinted)
        );
    }

    /// Every (package, element type) row of tenant `t`, in order.
    fn element_type_rows(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare(
            "SELECT package_id, element_type FROM copilot_package_element_types
             WHERE tenant_id = 't' ORDER BY package_id, element_type",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_removed_package_takes_its_element_type_rows_with_it() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let run = |op: write::Write| {
            write::run_now(write::apply(&mut SqliteRows::new(&conn), &op)).unwrap();
        };
        for (id, types) in [
            ("P_1", serde_json::json!(["Bots", "DeclarativeAgent"])),
            ("P_2", serde_json::json!(["Bots"])),
        ] {
            let Value::Object(doc) = serde_json::json!({"id": id, "elementTypes": types}) else {
                unreachable!("an object")
            };
            run(write::Write::CreatePackage {
                tenant: "t".into(),
                doc,
                ctx: WriteContext::default(),
            });
        }
        let row = |p: &str, t: &str| (p.to_owned(), t.to_owned());
        assert_eq!(
            element_type_rows(&conn),
            [
                row("P_1", "Bots"),
                row("P_1", "DeclarativeAgent"),
                row("P_2", "Bots")
            ]
        );
        run(write::Write::Delete {
            table: Entity::Package,
            tenant: "t".into(),
            id: "P_1".into(),
            ctx: WriteContext::default(),
        });
        assert_eq!(element_type_rows(&conn), [row("P_2", "Bots")]);
    }

    #[test]
    fn packages_stored_before_their_element_types_table_get_their_rows() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO copilot_packages (tenant_id, id, created_at, modified_at, version, doc)
               VALUES ('t', 'P_1', 'x', 'x', 1, '{"elementTypes":["Bots","DeclarativeAgent",3]}'),
                      ('t', 'P_2', 'x', 'x', 1, '{"elementTypes":null}'),
                      ('t', 'P_3', 'x', 'x', 1, '{}'),
                      ('u', 'P_1', 'x', 'x', 1, '{"elementTypes":["OfficeAddIns"]}');"#,
        )
        .unwrap();
        let (_, sql) = MIGRATIONS
            .iter()
            .find(|(name, _)| *name == "0012_package_element_types")
            .unwrap();
        // The migration's backfill, as it ran on a folder holding packages.
        conn.execute_batch(&sql[sql.find("INSERT").unwrap()..])
            .unwrap();
        let rows: Vec<(String, String, String)> = conn
            .prepare(
                "SELECT tenant_id, package_id, element_type FROM copilot_package_element_types
                 ORDER BY tenant_id, package_id, element_type",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want = [
            ("t", "P_1", "Bots"),
            ("t", "P_1", "DeclarativeAgent"),
            ("u", "P_1", "OfficeAddIns"),
        ]
        .map(|(t, p, e)| (t.to_owned(), p.to_owned(), e.to_owned()));
        assert_eq!(rows, want);
    }
}

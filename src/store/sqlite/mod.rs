//! The embedded SQLite backend (the default).
//!
//! - Writes go through one writer thread that commits queued jobs together
//!   ([`writer`]); a write is acknowledged once its WAL frames are on disk
//!   ([`durability`]).
//! - Reads run on the calling task with a pooled read-only connection: WAL
//!   lets them proceed beside the writer, and a point read costs microseconds,
//!   less than a hop to another thread would.
//! - Reads by id are served from a bounded cache of documents ([`cache`]),
//!   which the writer keeps in step: it is the database's only writer.

mod cache;
mod durability;
mod policies;
mod query;
mod tenant;
mod writer;

use super::{
    Criteria, EXPANDED_LIMIT, EntityKind, ImportMode, ImportReport, ListQuery, Navigation, Page,
    Relation, Section, Store, StoreError, StoreStats, Stored, TenantState,
};
use crate::domain::apps::AppRegistration;
use crate::domain::copilot::{
    CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
};
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, EntityType};
use crate::domain::{
    EntityWrite, ManifestChange, RESERVED_COLLECTIONS, WriteContext, apply_patch, ensure_required,
    new_document, new_id, reserved_collection_document,
};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
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
];
/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 32;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
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
        let writer = Writer::start(conn, path, cache.clone())?;
        Ok(Self {
            path: path.to_owned(),
            writer,
            readers: Mutex::new(Vec::new()),
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

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
            .map_err(sql_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// Runs a read on a pooled connection, on the calling thread.
    fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// Reads a document by id, from the cache when it holds it.
    fn read_stored(
        &self,
        table: Table,
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

    /// Stores the tenant's Global and Quarantined collections if missing.
    async fn ensure_reserved(&self, tenant: &str) -> Result<(), StoreError> {
        if self
            .seeded
            .read()
            .expect("seed set poisoned")
            .contains(tenant)
        {
            return Ok(());
        }
        let t = tenant.to_owned();
        let now = crate::clock::entity_timestamp(self.clock.now());
        self.writer
            .write(move |conn| {
                for c in &RESERVED_COLLECTIONS {
                    let exists = get_row(conn, Table::Collections, &t, c.id)?.is_some();
                    if !exists {
                        let doc = reserved_collection_document(c, &now);
                        insert_entity(conn, Table::Collections, &t, &doc, None)?;
                    }
                }
                Ok(())
            })
            .await?;
        self.seeded
            .write()
            .expect("seed set poisoned")
            .insert(tenant.to_owned());
        Ok(())
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

/// The three entity tables share one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Instances,
    Manifests,
    Collections,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Instances => "agent_instances",
            Table::Manifests => "agent_card_manifests",
            Table::Collections => "agent_collections",
        }
    }

    fn kind(self) -> EntityKind {
        match self {
            Table::Instances => EntityKind::Instance,
            Table::Manifests => EntityKind::Manifest,
            Table::Collections => EntityKind::Collection,
        }
    }
}

/// A row loaded for a read-modify-write.
struct Row {
    doc: Map<String, Value>,
    version: i64,
    manifest_id: Option<String>,
    /// The link as loaded, so an update that keeps it leaves the instance's
    /// skill tags alone.
    loaded_manifest_id: Option<String>,
    /// The value the side table mirrors (see [`side_field`]) as loaded, so an
    /// update that leaves it alone does not rewrite the side table.
    side: Option<Value>,
    /// The indexed columns as loaded ([`INDEXED_COLUMNS`]), so an update
    /// rewrites only the index entries of the columns that change.
    columns: [Option<String>; 3],
}

/// Columns mirrored from the document that have indexes: each column, the
/// document property it mirrors, and its parameter in [`update_entity`].
const INDEXED_COLUMNS: [(&str, &str, usize); 3] = [
    ("display_name", "displayName", 3),
    ("managed_by", "managedBy", 4),
    ("originating_store", "originatingStore", 5),
];

/// The property a table's side table mirrors.
fn side_field(table: Table) -> Option<&'static str> {
    match table {
        Table::Instances => Some("ownerIds"),
        Table::Manifests => Some("skills"),
        Table::Collections => None,
    }
}

fn get_row(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
) -> Result<Option<Row>, StoreError> {
    let link = if table == Table::Instances {
        "manifest_id"
    } else {
        "NULL"
    };
    let sql = format!(
        "SELECT doc, version, {link}, display_name, managed_by, originating_store FROM {} WHERE tenant_id = ?1 AND id = ?2",
        table.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let row = stmt
        .query_row(params![tenant, id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                [r.get(3)?, r.get(4)?, r.get(5)?],
            ))
        })
        .optional()
        .map_err(sql_error)?;
    Ok(row.map(|(doc, version, manifest_id, columns)| {
        let doc = match serde_json::from_str(&doc) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let side = side_field(table).and_then(|f| doc.get(f).cloned());
        Row {
            doc,
            version,
            loaded_manifest_id: manifest_id.clone(),
            manifest_id,
            side,
            columns,
        }
    }))
}

fn get_stored(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    // Literal per table: a point read formats no SQL.
    let sql = match table {
        Table::Instances => {
            "SELECT doc, version FROM agent_instances WHERE tenant_id = ?1 AND id = ?2"
        }
        Table::Manifests => {
            "SELECT doc, version FROM agent_card_manifests WHERE tenant_id = ?1 AND id = ?2"
        }
        Table::Collections => {
            "SELECT doc, version FROM agent_collections WHERE tenant_id = ?1 AND id = ?2"
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

fn exists(conn: &Connection, table: Table, tenant: &str, id: &str) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE tenant_id = ?1 AND id = ?2",
        table.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    stmt.exists(params![tenant, id]).map_err(sql_error)
}

fn text<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

fn insert_entity(
    conn: &Connection,
    table: Table,
    tenant: &str,
    doc: &Map<String, Value>,
    manifest_id: Option<&str>,
) -> Result<Stored, StoreError> {
    let id = text(doc, "id").unwrap_or_default().to_owned();
    let body = serde_json::to_string(doc).map_err(|e| StoreError::Internal(e.to_string()))?;
    let (cols, vals) = if table == Table::Instances {
        (", manifest_id", ", ?10")
    } else {
        ("", "")
    };
    let sql = format!(
        "INSERT INTO {} (tenant_id, id, display_name, managed_by, originating_store, created_at, modified_at, version, doc{cols})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9{vals})",
        table.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let common = params![
        tenant,
        id,
        text(doc, "displayName"),
        text(doc, "managedBy"),
        text(doc, "originatingStore"),
        text(doc, "createdDateTime").unwrap_or_default(),
        text(doc, "lastModifiedDateTime").unwrap_or_default(),
        1i64,
        body,
    ];
    let result = if table == Table::Instances {
        let mut all: Vec<&dyn rusqlite::ToSql> = common.to_vec();
        all.push(&manifest_id);
        stmt.execute(all.as_slice())
    } else {
        stmt.execute(common)
    };
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::AlreadyExists {
                kind: table.kind(),
                id,
            });
        }
        Err(e) => return Err(sql_error(e)),
    }
    cache::record(table, tenant, &id);
    write_side_tables(conn, table, tenant, &id, doc)?;
    if manifest_id.is_some() {
        link_instance_tags(conn, tenant, &id, manifest_id)?;
    }
    Ok(Stored {
        id,
        doc: body,
        version: 1,
    })
}

fn update_entity(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
    row: &Row,
) -> Result<Stored, StoreError> {
    let body = serde_json::to_string(&row.doc).map_err(|e| StoreError::Internal(e.to_string()))?;
    let version = row.version + 1;
    // Only the columns whose values change are set: SQLite rewrites the
    // entries of every index on a column the statement sets, changed or not.
    let mut sql = format!(
        "UPDATE {} SET modified_at = ?6, version = ?7, doc = ?9",
        table.name()
    );
    for ((column, field, param), loaded) in INDEXED_COLUMNS.iter().zip(&row.columns) {
        if text(&row.doc, field) != loaded.as_deref() {
            sql.push_str(&format!(", {column} = ?{param}"));
        }
    }
    if table == Table::Instances && row.manifest_id != row.loaded_manifest_id {
        sql.push_str(", manifest_id = ?8");
    }
    sql.push_str(" WHERE tenant_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    stmt.execute(params![
        tenant,
        id,
        text(&row.doc, "displayName"),
        text(&row.doc, "managedBy"),
        text(&row.doc, "originatingStore"),
        text(&row.doc, "lastModifiedDateTime").unwrap_or_default(),
        version,
        row.manifest_id,
        body,
    ])
    .map_err(sql_error)?;
    cache::record(table, tenant, id);
    if side_field(table).is_some_and(|f| row.doc.get(f) != row.side.as_ref()) {
        write_side_tables(conn, table, tenant, id, &row.doc)?;
        if table == Table::Manifests {
            relink_manifest_tags(conn, tenant, id)?;
        }
    }
    if table == Table::Instances && row.manifest_id != row.loaded_manifest_id {
        link_instance_tags(conn, tenant, id, row.manifest_id.as_deref())?;
    }
    Ok(Stored {
        id: id.to_owned(),
        doc: body,
        version,
    })
}

/// Keeps the index tables for multi-valued properties in step with the document.
fn write_side_tables(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
    doc: &Map<String, Value>,
) -> Result<(), StoreError> {
    match table {
        Table::Instances => {
            conn.prepare_cached(
                "DELETE FROM agent_instance_owners WHERE tenant_id = ?1 AND instance_id = ?2",
            )
            .and_then(|mut s| s.execute(params![tenant, id]))
            .map_err(sql_error)?;
            let mut insert = conn
                .prepare_cached("INSERT OR IGNORE INTO agent_instance_owners (tenant_id, owner_id, instance_id) VALUES (?1, ?2, ?3)")
                .map_err(sql_error)?;
            for owner in doc
                .get("ownerIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(owner) = owner.as_str() {
                    insert
                        .execute(params![tenant, owner, id])
                        .map_err(sql_error)?;
                }
            }
        }
        Table::Manifests => {
            conn.prepare_cached("DELETE FROM agent_card_manifest_skill_tags WHERE tenant_id = ?1 AND manifest_id = ?2")
                .and_then(|mut s| s.execute(params![tenant, id]))
                .map_err(sql_error)?;
            let mut insert = conn
                .prepare_cached("INSERT OR IGNORE INTO agent_card_manifest_skill_tags (tenant_id, tag, manifest_id) VALUES (?1, ?2, ?3)")
                .map_err(sql_error)?;
            let skills = doc
                .get("skills")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for tag in skills.filter_map(|s| s.get("tags")?.as_array()).flatten() {
                if let Some(tag) = tag.as_str() {
                    insert
                        .execute(params![tenant, tag, id])
                        .map_err(sql_error)?;
                }
            }
        }
        Table::Collections => {}
    }
    Ok(())
}

/// Gives an instance the skill tags of the manifest it links (none if none).
fn link_instance_tags(
    conn: &Connection,
    tenant: &str,
    instance: &str,
    manifest: Option<&str>,
) -> Result<(), StoreError> {
    delete_side_rows(
        conn,
        "DELETE FROM agent_instance_skill_tags WHERE tenant_id = ?1 AND instance_id = ?2",
        tenant,
        instance,
    )?;
    if let Some(manifest) = manifest {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO agent_instance_skill_tags (tenant_id, tag, instance_id)
             SELECT tenant_id, tag, ?2 FROM agent_card_manifest_skill_tags
             WHERE tenant_id = ?1 AND manifest_id = ?3",
        )
        .and_then(|mut s| s.execute(params![tenant, instance, manifest]))
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Gives every instance that links a manifest its new skill tags.
fn relink_manifest_tags(conn: &Connection, tenant: &str, manifest: &str) -> Result<(), StoreError> {
    delete_side_rows(
        conn,
        "DELETE FROM agent_instance_skill_tags WHERE tenant_id = ?1 AND instance_id IN
         (SELECT id FROM agent_instances WHERE tenant_id = ?1 AND manifest_id = ?2)",
        tenant,
        manifest,
    )?;
    delete_side_rows(
        conn,
        "INSERT OR IGNORE INTO agent_instance_skill_tags (tenant_id, tag, instance_id)
         SELECT i.tenant_id, t.tag, i.id FROM agent_instances i
         JOIN agent_card_manifest_skill_tags t ON t.tenant_id = i.tenant_id AND t.manifest_id = i.manifest_id
         WHERE i.tenant_id = ?1 AND i.manifest_id = ?2",
        tenant,
        manifest,
    )?;
    Ok(())
}

fn delete_side_rows(
    conn: &Connection,
    sql: &str,
    tenant: &str,
    id: &str,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![tenant, id]))
        .map_err(sql_error)
}

/// Deletes an entity's row, then the rows that hang off it (`dependents`,
/// each taking `?1` tenant and `?2` id); `NotFound` when there was no row,
/// `PreconditionFailed` when its version is not `if_match`.
fn delete_entity(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
    if_match: Option<i64>,
    dependents: &[&str],
) -> Result<(), StoreError> {
    check_stored_version(conn, table, tenant, id, if_match)?;
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = ?1 AND id = ?2",
        table.name()
    );
    if delete_side_rows(conn, &sql, tenant, id)? == 0 {
        return Err(not_found(table.kind(), id));
    }
    cache::record(table, tenant, id);
    for sql in dependents {
        delete_side_rows(conn, sql, tenant, id)?;
    }
    Ok(())
}

/// Refuses a write whose expected version (`if_match`) is not `actual`.
fn ensure_version(
    kind: EntityKind,
    id: &str,
    actual: i64,
    if_match: Option<i64>,
) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if expected != actual => Err(StoreError::PreconditionFailed {
            kind,
            id: id.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks a delete's precondition against the stored version; `NotFound`
/// when the entity is missing and a version was expected.
fn check_stored_version(
    conn: &Connection,
    table: Table,
    tenant: &str,
    id: &str,
    if_match: Option<i64>,
) -> Result<(), StoreError> {
    if if_match.is_none() {
        return Ok(());
    }
    let sql = format!(
        "SELECT version FROM {} WHERE tenant_id = ?1 AND id = ?2",
        table.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let version: Option<i64> = stmt
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    let version = version.ok_or_else(|| not_found(table.kind(), id))?;
    ensure_version(table.kind(), id, version, if_match)
}

fn not_found(kind: EntityKind, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

/// Creates a manifest from a nested or direct create body.
fn create_manifest_row(
    conn: &Connection,
    tenant: &str,
    id: &str,
    write: &EntityWrite,
    ctx: &WriteContext,
) -> Result<Stored, StoreError> {
    ensure_required(&AGENT_CARD_MANIFEST, &write.props)?;
    let doc = new_document(&AGENT_CARD_MANIFEST, id, &write.props, ctx);
    insert_entity(conn, Table::Manifests, tenant, &doc, None)
}

/// Carries out an instance write's `agentCardManifest` part; returns the new link.
fn apply_manifest_change(
    conn: &Connection,
    tenant: &str,
    current: Option<String>,
    change: ManifestChange,
    ctx: &WriteContext,
) -> Result<Option<String>, StoreError> {
    match change {
        ManifestChange::Unlink => Ok(None),
        ManifestChange::Bind(id) => {
            if !exists(conn, Table::Manifests, tenant, &id)? {
                return Err(not_found(EntityKind::Manifest, &id));
            }
            Ok(Some(id))
        }
        ManifestChange::Upsert(nested) => {
            if let Some(id) = current
                && let Some(mut row) = get_row(conn, Table::Manifests, tenant, &id)?
            {
                apply_patch(&mut row.doc, &nested.props, ctx);
                update_entity(conn, Table::Manifests, tenant, &id, &row)?;
                return Ok(Some(id));
            }
            let id = nested.id.clone().unwrap_or_else(new_id);
            create_manifest_row(conn, tenant, &id, &nested, ctx)?;
            Ok(Some(id))
        }
    }
}

fn count_rows(conn: &Connection, sql: &str, tenant: &str, scope: &str) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let n: i64 = stmt
        .query_row(params![tenant, scope], |r| r.get(0))
        .map_err(sql_error)?;
    Ok(n as u64)
}

/// Runs a compiled page query and reads the next page's cursor off the last row.
fn run_list(
    conn: &Connection,
    compiled: &query::Compiled,
    q: &ListQuery,
) -> Result<Page, StoreError> {
    let mut stmt = conn.prepare_cached(&compiled.sql).map_err(sql_error)?;
    let sort_columns = compiled.sort_columns;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(compiled.params.iter()))
        .map_err(sql_error)?;
    let mut items = Vec::new();
    let mut cursors = Vec::new();
    while let Some(r) = rows.next().map_err(sql_error)? {
        let id: String = r.get(0).map_err(sql_error)?;
        let mut values = Vec::with_capacity(sort_columns);
        for c in 0..sort_columns {
            values.push(query::to_json(r.get(3 + c).map_err(sql_error)?));
        }
        cursors.push(crate::odata::Cursor {
            values,
            id: id.clone(),
        });
        items.push(Stored {
            id,
            doc: r.get(1).map_err(sql_error)?,
            version: r.get(2).map_err(sql_error)?,
        });
    }
    let more = items.len() > q.limit;
    items.truncate(q.limit);
    cursors.truncate(q.limit);
    Ok(Page {
        items,
        more,
        last: cursors.pop(),
        ..Page::default()
    })
}

/// Runs several statements as one snapshot: a read transaction, so that no
/// commit lands between them (outside one, each statement reads the
/// database as it is when the statement starts).
fn snapshot<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("BEGIN").map_err(sql_error)?;
    let result = f(conn);
    // A read transaction has nothing to keep: ending it either way is the
    // same, and a pooled connection must never keep an old snapshot.
    if conn.execute_batch("COMMIT").is_err() {
        conn.execute_batch("ROLLBACK").map_err(sql_error)?;
    }
    result
}

/// The manifest an instance links, `NotFound` for a missing instance.
fn linked_manifest(
    conn: &Connection,
    tenant: &str,
    instance_id: &str,
) -> Result<Option<Stored>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT manifest_id FROM agent_instances WHERE tenant_id = ?1 AND id = ?2")
        .map_err(sql_error)?;
    let link: Option<Option<String>> = stmt
        .query_row(params![tenant, instance_id], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    match link {
        None => Err(not_found(EntityKind::Instance, instance_id)),
        Some(None) => Ok(None),
        Some(Some(mid)) => get_stored(conn, Table::Manifests, tenant, &mid),
    }
}

/// The entities along each navigation of `expand` from each of `items`.
fn expand(
    conn: &Connection,
    tenant: &str,
    items: &[Stored],
    expand: &[Navigation],
) -> Result<Vec<Vec<Vec<Stored>>>, StoreError> {
    if expand.is_empty() {
        return Ok(Vec::new());
    }
    let first = ListQuery::first(EXPANDED_LIMIT);
    let along = |nav: Navigation, id: &str| -> Result<Vec<Stored>, StoreError> {
        let (ty, source) = match nav {
            Navigation::Manifest => {
                return Ok(linked_manifest(conn, tenant, id)?.into_iter().collect());
            }
            Navigation::Collections => (&AGENT_COLLECTION, query::Source::CollectionsOf(id)),
            Navigation::Members => (&AGENT_INSTANCE, query::Source::MembersOf(id)),
        };
        Ok(run_list(conn, &query::list(tenant, ty, source, &first), &first)?.items)
    };
    items
        .iter()
        .map(|item| expand.iter().map(|&nav| along(nav, &item.id)).collect())
        .collect()
}

fn run_count(conn: &Connection, compiled: &query::Compiled) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached(&compiled.sql).map_err(sql_error)?;
    let n: i64 = stmt
        .query_row(rusqlite::params_from_iter(compiled.params.iter()), |r| {
            r.get(0)
        })
        .map_err(sql_error)?;
    Ok(n as u64)
}

/// The source and type a relation lists, after checking its anchor exists.
fn relation_source<'a>(
    conn: &Connection,
    tenant: &str,
    listing: Table,
    relation: Relation<'a>,
) -> Result<(query::Source<'a>, &'static EntityType), StoreError> {
    let ty: &'static EntityType = match listing {
        Table::Instances => &AGENT_INSTANCE,
        Table::Manifests => &AGENT_CARD_MANIFEST,
        Table::Collections => &AGENT_COLLECTION,
    };
    let source = match relation {
        Relation::MembersOf(cid) if listing == Table::Instances => {
            if !exists(conn, Table::Collections, tenant, cid)? {
                return Err(not_found(EntityKind::Collection, cid));
            }
            query::Source::MembersOf(cid)
        }
        Relation::CollectionsOf(iid) if listing == Table::Collections => {
            if !exists(conn, Table::Instances, tenant, iid)? {
                return Err(not_found(EntityKind::Instance, iid));
            }
            query::Source::CollectionsOf(iid)
        }
        _ => query::Source::Table(listing.name()),
    };
    Ok((source, ty))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| {
                if exists(conn, Table::Instances, &tenant, &id)? {
                    return Err(StoreError::AlreadyExists {
                        kind: EntityKind::Instance,
                        id,
                    });
                }
                let link = match write.manifest {
                    Some(change) => apply_manifest_change(conn, &tenant, None, change, &ctx)?,
                    None => None,
                };
                let doc = new_document(&AGENT_INSTANCE, &id, &write.props, &ctx);
                insert_entity(conn, Table::Instances, &tenant, &doc, link.as_deref())
            })
            .await
    }

    async fn get_instance(&self, tenant: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        self.read_stored(Table::Instances, tenant, id)
    }

    async fn update_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| {
                let mut row = get_row(conn, Table::Instances, &tenant, &id)?
                    .ok_or_else(|| not_found(EntityKind::Instance, &id))?;
                ensure_version(EntityKind::Instance, &id, row.version, ctx.if_match)?;
                if let Some(change) = write.manifest {
                    row.manifest_id =
                        apply_manifest_change(conn, &tenant, row.manifest_id.take(), change, &ctx)?;
                }
                apply_patch(&mut row.doc, &write.props, &ctx);
                update_entity(conn, Table::Instances, &tenant, &id, &row)
            })
            .await
    }

    async fn delete_instance(
        &self,
        tenant: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| {
                let dependents = [
                    "DELETE FROM agent_instance_owners WHERE tenant_id = ?1 AND instance_id = ?2",
                    "DELETE FROM agent_collection_members WHERE tenant_id = ?1 AND instance_id = ?2",
                    "DELETE FROM agent_instance_skill_tags WHERE tenant_id = ?1 AND instance_id = ?2",
                ];
                delete_entity(conn, Table::Instances, &tenant, &id, if_match, &dependents)
            })
            .await
    }

    async fn get_instance_manifest(
        &self,
        tenant: &str,
        instance_id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.read(|conn| snapshot(conn, |conn| linked_manifest(conn, tenant, instance_id)))
    }

    async fn create_manifest(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| create_manifest_row(conn, &tenant, &id, &write, &ctx))
            .await
    }

    async fn get_manifest(&self, tenant: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        self.read_stored(Table::Manifests, tenant, id)
    }

    async fn update_manifest(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        self.update_plain(Table::Manifests, tenant, id, props, ctx)
            .await
    }

    async fn delete_manifest(
        &self,
        tenant: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| {
                let linked = count_rows(
                    conn,
                    "SELECT count(*) FROM agent_instances WHERE tenant_id = ?1 AND manifest_id = ?2",
                    &tenant,
                    &id,
                )?;
                if !exists(conn, Table::Manifests, &tenant, &id)? {
                    return Err(not_found(EntityKind::Manifest, &id));
                }
                check_stored_version(conn, Table::Manifests, &tenant, &id, if_match)?;
                if linked > 0 {
                    return Err(StoreError::ManifestInUse { id, instances: linked });
                }
                let dependents =
                    ["DELETE FROM agent_card_manifest_skill_tags WHERE tenant_id = ?1 AND manifest_id = ?2"];
                delete_entity(conn, Table::Manifests, &tenant, &id, None, &dependents)
            })
            .await
    }

    async fn create_collection(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        self.ensure_reserved(tenant).await?;
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| {
                let doc = new_document(&AGENT_COLLECTION, &id, &write.props, &ctx);
                insert_entity(conn, Table::Collections, &tenant, &doc, None)
            })
            .await
    }

    async fn get_collection(&self, tenant: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        self.ensure_reserved(tenant).await?;
        self.read_stored(Table::Collections, tenant, id)
    }

    async fn update_collection(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        self.update_plain(Table::Collections, tenant, id, props, ctx)
            .await
    }

    async fn delete_collection(
        &self,
        tenant: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| {
                let dependents =
                    ["DELETE FROM agent_collection_members WHERE tenant_id = ?1 AND collection_id = ?2"];
                delete_entity(conn, Table::Collections, &tenant, &id, if_match, &dependents)
            })
            .await
    }

    async fn add_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
    ) -> Result<(), StoreError> {
        self.ensure_reserved(tenant).await?;
        let (tenant, cid, iid) = (
            tenant.to_owned(),
            collection_id.to_owned(),
            instance_id.to_owned(),
        );
        self.writer
            .write(move |conn| {
                if !exists(conn, Table::Collections, &tenant, &cid)? {
                    return Err(not_found(EntityKind::Collection, &cid));
                }
                if !exists(conn, Table::Instances, &tenant, &iid)? {
                    return Err(not_found(EntityKind::Instance, &iid));
                }
                let mut stmt = conn
                    .prepare_cached("INSERT INTO agent_collection_members (tenant_id, collection_id, instance_id) VALUES (?1, ?2, ?3)")
                    .map_err(sql_error)?;
                match stmt.execute(params![tenant, cid, iid]) {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyMember { collection: cid, instance: iid }),
                    Err(e) => Err(sql_error(e)),
                }
            })
            .await
    }

    async fn remove_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
    ) -> Result<(), StoreError> {
        self.ensure_reserved(tenant).await?;
        let (tenant, cid, iid) = (
            tenant.to_owned(),
            collection_id.to_owned(),
            instance_id.to_owned(),
        );
        self.writer
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached("DELETE FROM agent_collection_members WHERE tenant_id = ?1 AND collection_id = ?2 AND instance_id = ?3")
                    .map_err(sql_error)?;
                if stmt.execute(params![tenant, cid, iid]).map_err(sql_error)? > 0 {
                    return Ok(());
                }
                if !exists(conn, Table::Collections, &tenant, &cid)? {
                    return Err(not_found(EntityKind::Collection, &cid));
                }
                Err(StoreError::NotMember { collection: cid, instance: iid })
            })
            .await
    }

    async fn is_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        self.ensure_reserved(tenant).await?;
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT 1 FROM agent_collection_members WHERE tenant_id = ?1 AND collection_id = ?2 AND instance_id = ?3")
                .map_err(sql_error)?;
            stmt.exists(params![tenant, collection_id, instance_id]).map_err(sql_error)
        })
    }

    async fn list_instances(
        &self,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        self.list(tenant, Table::Instances, relation, q).await
    }

    async fn count_instances(
        &self,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        self.count(tenant, Table::Instances, relation, criteria)
            .await
    }

    async fn list_manifests(&self, tenant: &str, q: &ListQuery) -> Result<Page, StoreError> {
        self.list(tenant, Table::Manifests, Relation::All, q).await
    }

    async fn count_manifests(&self, tenant: &str, criteria: &Criteria) -> Result<u64, StoreError> {
        self.count(tenant, Table::Manifests, Relation::All, criteria)
            .await
    }

    async fn list_collections(
        &self,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        self.list(tenant, Table::Collections, relation, q).await
    }

    async fn count_collections(
        &self,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        self.count(tenant, Table::Collections, relation, criteria)
            .await
    }

    async fn list_policies(&self, tenant: &str) -> Result<Vec<Policy>, StoreError> {
        self.read(|conn| policies::list(conn, tenant))
    }

    async fn get_policy(&self, tenant: &str, id: &str) -> Result<Option<Policy>, StoreError> {
        self.read(|conn| policies::get(conn, tenant, id))
    }

    async fn create_policy(&self, tenant: &str, policy: Policy) -> Result<Policy, StoreError> {
        let tenant = tenant.to_owned();
        self.writer
            .write(move |conn| {
                policies::insert(conn, &tenant, &policy)?;
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

    async fn delete_policy(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| policies::delete(conn, &tenant, &id))
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
        self.read(|conn| tenant::export_section(conn, tenant, section, after, limit))
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

    async fn export_tenant(&self, tenant: &str) -> Result<TenantState, StoreError> {
        self.ensure_reserved(tenant).await?;
        self.read(|conn| tenant::export(conn, tenant))
    }

    async fn import_tenant(
        &self,
        tenant: &str,
        state: TenantState,
        mode: ImportMode,
        now: &str,
    ) -> Result<ImportReport, StoreError> {
        let (t, now) = (tenant.to_owned(), now.to_owned());
        let report = self
            .writer
            .write(move |conn| tenant::import(conn, &t, &state, mode, &now))
            .await?;
        // The import stored the reserved collections.
        self.seeded
            .write()
            .expect("seed set poisoned")
            .insert(tenant.to_owned());
        Ok(report)
    }

    fn stats(&self) -> StoreStats {
        let idle = self.readers.lock().map(|p| p.len()).unwrap_or_default();
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
        self.readers.lock().expect("reader pool poisoned").clear();
    }
}

impl SqliteStore {
    async fn list(
        &self,
        tenant: &str,
        listing: Table,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        if listing == Table::Collections || matches!(relation, Relation::MembersOf(_)) {
            self.ensure_reserved(tenant).await?;
        }
        let run = |conn: &Connection| {
            let (source, ty) = relation_source(conn, tenant, listing, relation)?;
            let mut page = run_list(conn, &query::list(tenant, ty, source, q), q)?;
            if q.count {
                page.count = Some(run_count(
                    conn,
                    &query::count(tenant, ty, source, &q.criteria),
                )?);
            }
            page.related = expand(conn, tenant, &page.items, &q.expand)?;
            Ok(page)
        };
        // One statement needs no transaction to be a snapshot.
        let single = relation == Relation::All && q.expand.is_empty() && !q.count;
        self.read(|conn| {
            if single {
                run(conn)
            } else {
                snapshot(conn, run)
            }
        })
    }

    async fn count(
        &self,
        tenant: &str,
        listing: Table,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        if listing == Table::Collections || matches!(relation, Relation::MembersOf(_)) {
            self.ensure_reserved(tenant).await?;
        }
        let run = |conn: &Connection| {
            let (source, ty) = relation_source(conn, tenant, listing, relation)?;
            run_count(conn, &query::count(tenant, ty, source, criteria))
        };
        self.read(|conn| {
            if relation == Relation::All {
                run(conn)
            } else {
                snapshot(conn, run)
            }
        })
    }

    /// PATCH of an entity without links: merge inside the write transaction.
    async fn update_plain(
        &self,
        table: Table,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        if table == Table::Collections {
            self.ensure_reserved(tenant).await?;
        }
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        self.writer
            .write(move |conn| {
                let mut row = get_row(conn, table, &tenant, &id)?
                    .ok_or_else(|| not_found(table.kind(), &id))?;
                ensure_version(table.kind(), &id, row.version, ctx.if_match)?;
                apply_patch(&mut row.doc, &props, &ctx);
                update_entity(conn, table, &tenant, &id, &row)
            })
            .await
    }
}

//! Whole tenants in SQLite: the rows [`crate::store::tenant`] reads and
//! writes (an import is one writer job, so it commits or rolls back whole).

use super::{SqliteRows, policies, sql_error};
use crate::domain::copilot::Policy;
use crate::store::read::Reads;
use crate::store::tenant::{TenantRows, change_runs, noted};
use crate::store::write::{Rows, not_found, side_values};
use crate::store::{Entity, StoreError, TENANT_TABLES, statements};
use rusqlite::{Connection, params};
use serde_json::{Map, Value};

impl TenantRows for SqliteRows<'_> {
    async fn clear(&mut self, tenant: &str) -> Result<(), StoreError> {
        super::cache::record_everything();
        for table in TENANT_TABLES {
            self.0
                .prepare_cached(&statements::clear(table))
                .and_then(|mut s| s.execute(params![tenant]))
                .map_err(sql_error)?;
        }
        super::changes::clear(self.0, tenant)
    }

    async fn documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let link = if kind == Entity::Instance {
            "manifest_id"
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT doc, {link} FROM {} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            kind.table()
        );
        let mut stmt = self.0.prepare_cached(&sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(params![tenant, after, limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    async fn memberships(
        &mut self,
        tenant: &str,
        (collection, instance): (&str, &str),
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached(statements::MEMBERSHIPS_AFTER)
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![tenant, collection, instance, limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    async fn policies(&mut self, tenant: &str) -> Result<Vec<Policy>, StoreError> {
        policies::list(self.0, tenant)
    }

    async fn insert_policy(&mut self, tenant: &str, policy: &Policy) -> Result<bool, StoreError> {
        if policies::get(self.0, tenant, &policy.id)?.is_some() {
            return Ok(false);
        }
        policies::insert(self.0, tenant, policy)?;
        Ok(true)
    }

    async fn settings(&mut self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT name, doc FROM copilot_tenant_settings WHERE tenant_id = ?1 ORDER BY name",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    async fn insert_setting(
        &mut self,
        tenant: &str,
        name: &str,
        doc: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .0
            .prepare_cached(
                "INSERT OR IGNORE INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![tenant, name, now, doc]))
            .map_err(sql_error)?;
        Ok(n > 0)
    }

    /// Row by row (statements in process cost microseconds), without the
    /// deletes that clear an updated row's side rows: a row just inserted
    /// has none (deleting a row deletes them in the same transaction).
    async fn insert_documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        docs: &[(&Map<String, Value>, Option<&str>)],
    ) -> Result<Vec<bool>, StoreError> {
        let side = statements::side_values(kind).map(|(_, side)| {
            format!(
                "INSERT OR IGNORE INTO {} (tenant_id, {}, {}) VALUES (?1, ?2, ?3)",
                side.table, side.key, side.value
            )
        });
        let mut inserted = Vec::with_capacity(docs.len());
        for &(doc, link) in docs {
            if let Some(m) = link
                && !self.exists(Entity::Manifest, tenant, m, true).await?
            {
                return Err(not_found(Entity::Manifest, m));
            }
            let Some(stored) = self.insert(kind, tenant, doc, link, true).await? else {
                inserted.push(false);
                continue;
            };
            if let Some(sql) = &side {
                let mut stmt = self.0.prepare_cached(sql).map_err(sql_error)?;
                for value in side_values(kind, doc) {
                    stmt.execute(params![tenant, stored.id, value])
                        .map_err(sql_error)?;
                }
            }
            if let Some(m) = link {
                self.0
                    .prepare_cached(statements::COPY_MANIFEST_TAGS)
                    .and_then(|mut s| s.execute(params![tenant, stored.id, m]))
                    .map_err(sql_error)?;
            }
            self.changes().push(noted(kind, stored.id));
            inserted.push(true);
        }
        Ok(inserted)
    }

    /// One statement per run of changes of one kind and type, its ids
    /// passed as a JSON array: a bulk load's statements cost a writer
    /// thread that every write waits for.
    async fn log_changes(&mut self, tenant: &str, now: &str) -> Result<(), StoreError> {
        let changes = std::mem::take(self.changes());
        let mut stmt = self
            .0
            .prepare_cached(
                "INSERT INTO change_log (tenant_id, entity, id, change, at)
                 SELECT ?1, ?2, value, ?3, ?4 FROM json_each(?5) ORDER BY key",
            )
            .map_err(sql_error)?;
        for (kind, ty, ids) in change_runs(&changes) {
            let ids =
                serde_json::to_string(&ids).map_err(|e| StoreError::Internal(e.to_string()))?;
            stmt.execute(params![tenant, kind.ty().entity_set, ty.code(), now, ids])
                .map_err(sql_error)?;
        }
        Ok(())
    }
}

/// Every tenant with objects or application registrations.
pub(super) fn tenants(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&statements::tenants()).map_err(sql_error)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

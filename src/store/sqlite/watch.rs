//! The state of watched agents in SQLite. The one writer serialises every
//! write, so a lease only ever has this process as its owner.

use super::subscriptions::numbered;
use super::{SqliteStore, sql_error};
use crate::store::statements;
use crate::store::{Entity, StoreError, WatchClaim, WatchRecord, WatchStore};
use crate::store::{watch_doc as object, watched_entity as entity};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

#[async_trait]
impl WatchStore for SqliteStore {
    async fn a2a_settings_of_tenants(
        &self,
    ) -> Result<Vec<(String, Map<String, Value>)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(statements::A2A_SETTINGS)
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_error)?;
            let rows: Vec<(String, String)> = rows.collect::<Result<_, _>>().map_err(sql_error)?;
            Ok(rows
                .into_iter()
                .map(|(t, d)| (t, object(Some(d)).unwrap_or_default()))
                .collect())
        })
    }

    async fn enrol_agents(&self, tenant: &str, now: &str) -> Result<u64, StoreError> {
        let (tenant, now) = (tenant.to_owned(), now.to_owned());
        self.writer
            .write(move |conn| {
                let mut added = 0;
                for (kind, table) in [
                    (Entity::Instance, "agent_instances"),
                    (Entity::Registration, "agent_registrations"),
                ] {
                    added += conn
                        .prepare_cached(&numbered(&statements::enrol_agents(table)))
                        .and_then(|mut s| s.execute(params![tenant, now, kind.ty().entity_set]))
                        .map_err(sql_error)? as u64;
                }
                Ok(added)
            })
            .await
    }

    async fn claim_checks(
        &self,
        tenant: &str,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<WatchClaim>, StoreError> {
        // Nothing due, nothing to write: most passes end here.
        let due: bool = self.read(|conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM agent_watch WHERE tenant_id = ?1 AND due_at <= ?2)",
            )
            .and_then(|mut s| s.query_row(params![tenant, now], |r| r.get(0)))
            .map_err(sql_error)
        })?;
        if !due {
            return Ok(Vec::new());
        }
        let (tenant, owner, now, lease_until) = (
            tenant.to_owned(),
            owner.to_owned(),
            now.to_owned(),
            lease_until.to_owned(),
        );
        self.writer
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&numbered(&statements::claim_checks("")))
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(
                        params![owner, now, lease_until, limit as i64, tenant],
                        |r| {
                            Ok(WatchClaim {
                                entity: entity(&r.get::<_, String>(0)?),
                                id: r.get(1)?,
                                last: object(r.get(2)?),
                            })
                        },
                    )
                    .map_err(sql_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
            })
            .await
    }

    async fn save_check(
        &self,
        tenant: &str,
        claim: &WatchClaim,
        owner: &str,
        state: Option<&str>,
        doc: &Map<String, Value>,
        due_at: &str,
    ) -> Result<bool, StoreError> {
        let args = (
            tenant.to_owned(),
            claim.entity.ty().entity_set,
            claim.id.clone(),
            owner.to_owned(),
            state.map(str::to_owned),
            Value::Object(doc.clone()).to_string(),
            due_at.to_owned(),
        );
        self.writer
            .write(move |conn| {
                let (tenant, set, id, owner, state, doc, due) = args;
                conn.prepare_cached(&numbered(statements::SAVE_CHECK))
                    .and_then(|mut s| s.execute(params![tenant, set, id, owner, state, doc, due]))
                    .map(|n| n > 0)
                    .map_err(sql_error)
            })
            .await
    }

    async fn forget_agent(&self, tenant: &str, entity: Entity, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::FORGET_AGENT))
                    .and_then(|mut s| s.execute(params![tenant, entity.ty().entity_set, id]))
                    .map(|_| ())
                    .map_err(sql_error)
            })
            .await
    }

    async fn check_all_now(&self, tenant: &str, now: &str) -> Result<(), StoreError> {
        let (tenant, now) = (tenant.to_owned(), now.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::CHECK_ALL_NOW))
                    .and_then(|mut s| s.execute(params![tenant, now]))
                    .map(|_| ())
                    .map_err(sql_error)
            })
            .await
    }

    async fn get_health(
        &self,
        tenant: &str,
        entity: Entity,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.read(|conn| {
            let doc: Option<String> = conn
                .prepare_cached(&numbered(statements::GET_HEALTH))
                .and_then(|mut s| {
                    s.query_row(params![tenant, entity.ty().entity_set, id], |r| r.get(0))
                        .optional()
                })
                .map_err(sql_error)?;
            Ok(object(doc))
        })
    }

    async fn list_health(
        &self,
        tenant: &str,
        state: Option<&str>,
        after: Option<(Entity, &str)>,
        limit: usize,
    ) -> Result<Vec<WatchRecord>, StoreError> {
        let (set, id) = after.map_or(("", ""), |(e, id)| (e.ty().entity_set, id));
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&numbered(&statements::list_health(state.is_some())))
                .map_err(sql_error)?;
            let row = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            };
            let rows = match state {
                Some(state) => stmt.query_map(params![tenant, set, id, limit as i64, state], row),
                None => stmt.query_map(params![tenant, set, id, limit as i64], row),
            }
            .map_err(sql_error)?;
            let rows: Vec<_> = rows.collect::<Result<_, _>>().map_err(sql_error)?;
            Ok(rows
                .into_iter()
                .map(|(set, id, doc)| WatchRecord {
                    entity: entity(&set),
                    id,
                    doc: object(doc).unwrap_or_default(),
                })
                .collect())
        })
    }

    async fn health_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(statements::HEALTH_COUNTS)
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(sql_error)?;
            let rows: Vec<(String, i64)> = rows.collect::<Result<_, _>>().map_err(sql_error)?;
            Ok(rows
                .into_iter()
                .map(|(s, n)| (s, n.max(0) as u64))
                .collect())
        })
    }
}

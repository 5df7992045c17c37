//! The state of watched agents in PostgreSQL. Several replicas may check;
//! each agent is checked by the one holding its lease, taken with
//! `FOR UPDATE SKIP LOCKED` so replicas never wait on each other.

use super::{Fail, MAX_RETRIES, PgStore, Step};
use crate::store::statements;
use crate::store::{Entity, StoreError, WatchClaim, WatchRecord, WatchStore};
use crate::store::{watch_doc as object, watched_entity as entity};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;

#[async_trait]
impl WatchStore for PgStore {
    async fn a2a_settings_of_tenants(
        &self,
    ) -> Result<Vec<(String, Map<String, Value>)>, StoreError> {
        read!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT tenant_id, doc::text FROM copilot_tenant_settings
                     WHERE name = 'a2a' ORDER BY tenant_id",
                )
                .await?;
            let mut out = Vec::new();
            for r in c.query(&stmt, &[]).await? {
                let tenant: String = r.try_get(0)?;
                let doc: Option<String> = r.try_get(1)?;
                out.push((tenant, object(doc).unwrap_or_default()));
            }
            out
        })
    }

    async fn enrol_agents(&self, tenant: &str, now: &str) -> Result<u64, StoreError> {
        transaction!(self, |tx| {
            let mut added = 0;
            for (kind, table) in [
                (Entity::Instance, "agent_instances"),
                (Entity::Registration, "agent_registrations"),
            ] {
                let stmt = tx.prepare_cached(&statements::enrol_agents(table)).await?;
                added += tx
                    .execute(&stmt, &[&tenant, &now, &kind.ty().entity_set])
                    .await?;
            }
            added
        })
    }

    async fn claim_checks(
        &self,
        tenant: &str,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<WatchClaim>, StoreError> {
        let limit = limit as i64;
        transaction!(self, |tx| {
            let stmt = tx
                .prepare_cached(&statements::claim_checks("FOR UPDATE SKIP LOCKED"))
                .await?;
            let rows = tx
                .query(&stmt, &[&owner, &now, &lease_until, &limit, &tenant])
                .await?;
            let mut out = Vec::new();
            for r in rows {
                let set: String = r.try_get(0)?;
                out.push(WatchClaim {
                    entity: entity(&set),
                    id: r.try_get(1)?,
                    last: object(r.try_get(2)?),
                });
            }
            out
        })
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
        let doc = Value::Object(doc.clone()).to_string();
        let set = claim.entity.ty().entity_set;
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::SAVE_CHECK).await?;
            tx.execute(
                &stmt,
                &[&tenant, &set, &claim.id, &owner, &state, &doc, &due_at],
            )
            .await?
                > 0
        })
    }

    async fn forget_agent(&self, tenant: &str, entity: Entity, id: &str) -> Result<(), StoreError> {
        let set = entity.ty().entity_set;
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::FORGET_AGENT).await?;
            tx.execute(&stmt, &[&tenant, &set, &id]).await?;
        })
    }

    async fn check_all_now(&self, tenant: &str, now: &str) -> Result<(), StoreError> {
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::CHECK_ALL_NOW).await?;
            tx.execute(&stmt, &[&tenant, &now]).await?;
        })
    }

    async fn get_health(
        &self,
        tenant: &str,
        entity: Entity,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let set = entity.ty().entity_set;
        read!(self, |c| {
            let stmt = c.prepare_cached(statements::GET_HEALTH).await?;
            match c.query_opt(&stmt, &[&tenant, &set, &id]).await? {
                Some(r) => object(r.try_get(0)?),
                None => None,
            }
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
        let limit = limit as i64;
        read!(self, |c| {
            let stmt = c
                .prepare_cached(&statements::list_health(state.is_some()))
                .await?;
            let rows = match state {
                Some(state) => {
                    c.query(&stmt, &[&tenant, &set, &id, &limit, &state])
                        .await?
                }
                None => c.query(&stmt, &[&tenant, &set, &id, &limit]).await?,
            };
            let mut out = Vec::new();
            for r in rows {
                let set: String = r.try_get(0)?;
                out.push(WatchRecord {
                    entity: entity(&set),
                    id: r.try_get(1)?,
                    doc: object(r.try_get(2)?).unwrap_or_default(),
                });
            }
            out
        })
    }

    async fn health_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        read!(self, |c| {
            let stmt = c.prepare_cached(statements::HEALTH_COUNTS).await?;
            let mut out = Vec::new();
            for r in c.query(&stmt, &[]).await? {
                let n: i64 = r.try_get(1)?;
                out.push((r.try_get::<_, String>(0)?, n.max(0) as u64));
            }
            out
        })
    }
}

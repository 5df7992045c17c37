//! Change notification subscriptions in SQLite. The one writer serialises
//! every write, so a lease only ever has this process as its owner.

use super::{SqliteStore, changes, sql_error};
use crate::store::statements;
use crate::store::{Delivery, Entity, StoreError, SubscriptionStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

/// A shared statement with SQLite's numbered parameters (`?4` is the
/// fourth, wherever it first appears; `$4` would be the first seen).
pub(super) fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

fn to_json(doc: &Map<String, Value>) -> String {
    Value::Object(doc.clone()).to_string()
}

fn from_json(text: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(StoreError::Internal(
            "a stored subscription is not a JSON object".into(),
        )),
    }
}

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let entity: String = r.get(2)?;
    Ok((
        Delivery {
            tenant: r.get(0)?,
            id: r.get(1)?,
            entity: Entity::of_set(&entity).unwrap_or(Entity::Instance),
            doc: Map::new(),
            from: r.get(4)?,
            to: r.get(5)?,
            after: r.get(6)?,
            failures: r.get(7)?,
            failing_since: r.get(8)?,
        },
        r.get(3)?,
    ))
}

#[async_trait]
impl SubscriptionStore for SqliteStore {
    async fn create_subscription(
        &self,
        tenant: &str,
        entity: Entity,
        doc: &Map<String, Value>,
        expires_at: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let id = doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let (tenant, doc, expires_at, now) = (
            tenant.to_owned(),
            to_json(doc),
            expires_at.to_owned(),
            now.to_owned(),
        );
        self.writer
            .write(move |conn| {
                let position = changes::position(conn)?;
                conn.prepare_cached(&numbered(statements::CREATE_SUBSCRIPTION))
                    .and_then(|mut s| {
                        s.execute(params![
                            tenant,
                            id,
                            entity.ty().entity_set,
                            doc,
                            expires_at,
                            position,
                            now
                        ])
                    })
                    .map(drop)
                    .map_err(sql_error)
            })
            .await
    }

    async fn get_subscription(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let doc: Option<String> = self.read(|conn| {
            conn.prepare_cached("SELECT doc FROM subscriptions WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut s| s.query_row(params![tenant, id], |r| r.get(0)).optional())
                .map_err(sql_error)
        })?;
        doc.as_deref().map(from_json).transpose()
    }

    async fn list_subscriptions(
        &self,
        tenant: &str,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let docs: Vec<String> = self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM subscriptions WHERE tenant_id = ?1 ORDER BY id")
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![tenant], |r| r.get(0))
                .map_err(sql_error)?;
            rows.collect::<Result<_, _>>().map_err(sql_error)
        })?;
        docs.iter().map(|d| from_json(d)).collect()
    }

    async fn update_subscription(
        &self,
        tenant: &str,
        id: &str,
        doc: &Map<String, Value>,
        expires_at: &str,
    ) -> Result<bool, StoreError> {
        let (tenant, id, doc, expires_at) = (
            tenant.to_owned(),
            id.to_owned(),
            to_json(doc),
            expires_at.to_owned(),
        );
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::UPDATE_SUBSCRIPTION))
                    .and_then(|mut s| s.execute(params![tenant, id, doc, expires_at]))
                    .map(|n| n > 0)
                    .map_err(sql_error)
            })
            .await
    }

    async fn delete_subscription(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::DELETE_SUBSCRIPTION))
                    .and_then(|mut s| s.execute(params![tenant, id]))
                    .map(|n| n > 0)
                    .map_err(sql_error)
            })
            .await
    }

    async fn annotate_subscription(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        value: Value,
    ) -> Result<bool, StoreError> {
        let (tenant, id, name) = (tenant.to_owned(), id.to_owned(), name.to_owned());
        self.writer
            .write(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached(
                        "SELECT doc FROM subscriptions WHERE tenant_id = ?1 AND id = ?2",
                    )
                    .and_then(|mut s| s.query_row(params![tenant, id], |r| r.get(0)).optional())
                    .map_err(sql_error)?;
                let Some(doc) = doc else {
                    return Ok(false);
                };
                let mut doc = from_json(&doc)?;
                doc.insert(name, value);
                conn.prepare_cached(
                    "UPDATE subscriptions SET doc = ?3 WHERE tenant_id = ?1 AND id = ?2",
                )
                .and_then(|mut s| s.execute(params![tenant, id, to_json(&doc)]))
                .map(|n| n > 0)
                .map_err(sql_error)
            })
            .await
    }

    async fn delete_expired_subscriptions(&self, now: &str) -> Result<u64, StoreError> {
        let now = now.to_owned();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::DELETE_EXPIRED_SUBSCRIPTIONS))
                    .and_then(|mut s| s.execute(params![now]))
                    .map(|n| n as u64)
                    .map_err(sql_error)
            })
            .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        // Nothing due, nothing to write: most ticks end here.
        let due: bool = self.read(|conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM subscriptions
                 WHERE next_attempt_at <= ?1 AND expires_at > ?1)",
            )
            .and_then(|mut s| s.query_row(params![now], |r| r.get(0)))
            .map_err(sql_error)
        })?;
        if !due {
            return Ok(Vec::new());
        }
        let (owner, now, lease_until) = (owner.to_owned(), now.to_owned(), lease_until.to_owned());
        let rows = self
            .writer
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&numbered(&statements::claim_deliveries("")))
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(params![owner, now, lease_until, limit as i64], delivery)
                    .map_err(sql_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
            })
            .await?;
        rows.into_iter()
            .map(|(mut d, doc)| {
                d.doc = from_json(&doc)?;
                Ok(d)
            })
            .collect()
    }

    async fn save_delivery(
        &self,
        owner: &str,
        d: &Delivery,
        next_attempt_at: &str,
    ) -> Result<bool, StoreError> {
        let (owner, d, next) = (owner.to_owned(), d.clone(), next_attempt_at.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::SAVE_DELIVERY))
                    .and_then(|mut s| {
                        s.execute(params![
                            d.tenant,
                            d.id,
                            owner,
                            d.from,
                            d.to,
                            d.after,
                            d.failures,
                            d.failing_since,
                            next
                        ])
                    })
                    .map(|n| n > 0)
                    .map_err(sql_error)
            })
            .await
    }
}

//! Change notification subscriptions in PostgreSQL. Several replicas may
//! deliver; each subscription is delivered by the one holding its lease,
//! taken with `FOR UPDATE SKIP LOCKED` so replicas never wait on each other.

use super::{Fail, MAX_RETRIES, PgStore, Step, changes};
use crate::store::statements;
use crate::store::{Delivery, Entity, StoreError, SubscriptionStore};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;

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

fn delivery(r: &tokio_postgres::Row) -> Step<(Delivery, String)> {
    let entity: String = r.try_get(2)?;
    let failures: i32 = r.try_get(7)?;
    Ok((
        Delivery {
            tenant: r.try_get(0)?,
            id: r.try_get(1)?,
            entity: Entity::of_set(&entity).unwrap_or(Entity::Instance),
            doc: Map::new(),
            from: r.try_get(4)?,
            to: r.try_get(5)?,
            after: r.try_get(6)?,
            failures: failures.max(0) as u32,
            failing_since: r.try_get(8)?,
        },
        r.try_get(3)?,
    ))
}

fn with_docs(rows: Vec<(Delivery, String)>) -> Result<Vec<Delivery>, StoreError> {
    rows.into_iter()
        .map(|(mut d, doc)| {
            d.doc = from_json(&doc)?;
            Ok(d)
        })
        .collect()
}

#[async_trait]
impl SubscriptionStore for PgStore {
    async fn create_subscription(
        &self,
        tenant: &str,
        entity: Entity,
        doc: &Map<String, Value>,
        expires_at: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let id = doc.get("id").and_then(Value::as_str).unwrap_or("");
        let doc = to_json(doc);
        transaction!(self, |tx| {
            // Changes committed after this snapshot are the subscription's.
            let position = changes::position(&tx).await?;
            let stmt = tx.prepare_cached(statements::CREATE_SUBSCRIPTION).await?;
            tx.execute(
                &stmt,
                &[
                    &tenant,
                    &id,
                    &entity.ty().entity_set,
                    &doc,
                    &expires_at,
                    &position,
                    &now,
                ],
            )
            .await?;
        })
    }

    async fn get_subscription(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let doc: Option<String> = point!(self, |c| {
            let stmt = c
                .prepare_cached("SELECT doc FROM subscriptions WHERE tenant_id = $1 AND id = $2")
                .await?;
            match c.query_opt(&stmt, &[&tenant, &id]).await? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            }
        })?;
        doc.as_deref().map(from_json).transpose()
    }

    async fn list_subscriptions(
        &self,
        tenant: &str,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let docs: Vec<String> = read!(self, |c| {
            let stmt = c
                .prepare_cached("SELECT doc FROM subscriptions WHERE tenant_id = $1 ORDER BY id")
                .await?;
            let rows = c.query(&stmt, &[&tenant]).await?;
            rows.iter()
                .map(|r| r.try_get(0))
                .collect::<Result<Vec<String>, _>>()?
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
        let doc = to_json(doc);
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::UPDATE_SUBSCRIPTION).await?;
            tx.execute(&stmt, &[&tenant, &id, &doc, &expires_at])
                .await?
                > 0
        })
    }

    async fn delete_subscription(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::DELETE_SUBSCRIPTION).await?;
            tx.execute(&stmt, &[&tenant, &id]).await? > 0
        })
    }

    async fn annotate_subscription(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        value: Value,
    ) -> Result<bool, StoreError> {
        transaction!(self, |tx| {
            let row = tx
                .query_opt(
                    "SELECT doc FROM subscriptions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    &[&tenant, &id],
                )
                .await?;
            match row {
                None => false,
                Some(row) => {
                    let text: String = row.try_get(0)?;
                    let mut doc = from_json(&text).map_err(Fail::from)?;
                    doc.insert(name.to_owned(), value.clone());
                    tx.execute(
                        "UPDATE subscriptions SET doc = $3 WHERE tenant_id = $1 AND id = $2",
                        &[&tenant, &id, &to_json(&doc)],
                    )
                    .await?
                        > 0
                }
            }
        })
    }

    async fn delete_expired_subscriptions(&self, now: &str) -> Result<u64, StoreError> {
        transaction!(self, |tx| {
            let stmt = tx
                .prepare_cached(statements::DELETE_EXPIRED_SUBSCRIPTIONS)
                .await?;
            tx.execute(&stmt, &[&now]).await?
        })
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = limit as i64;
        let rows = transaction!(self, |tx| {
            let stmt = tx
                .prepare_cached(&statements::claim_deliveries("FOR UPDATE SKIP LOCKED"))
                .await?;
            let rows = tx
                .query(&stmt, &[&owner, &now, &lease_until, &limit])
                .await?;
            rows.iter().map(delivery).collect::<Step<Vec<_>>>()?
        })?;
        with_docs(rows)
    }

    async fn save_delivery(
        &self,
        owner: &str,
        d: &Delivery,
        next_attempt_at: &str,
    ) -> Result<bool, StoreError> {
        let failures = i32::try_from(d.failures).unwrap_or(i32::MAX);
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::SAVE_DELIVERY).await?;
            tx.execute(
                &stmt,
                &[
                    &d.tenant,
                    &d.id,
                    &owner,
                    &d.from,
                    &d.to,
                    &d.after,
                    &failures,
                    &d.failing_since,
                    &next_attempt_at,
                ],
            )
            .await?
                > 0
        })
    }
}

//! Local users and authorization codes in PostgreSQL. A failed sign-in is
//! counted by one `UPDATE`, and a code redeemed by one, so that replicas
//! signing the same user in at once lose no failure and redeem a code once.

use super::{Fail, MAX_RETRIES, PgStore, Step};
use crate::domain::users::{AuthorizationCode, LocalUser, Redeemed, name_key};
use crate::store::{StoreError, UserStore, statements};
use async_trait::async_trait;
use std::time::Duration;

fn internal(e: serde_json::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

type Columns = (String, i32, Option<String>);

/// `doc, failed_sign_ins, locked_until` of a row.
fn user_columns(r: &tokio_postgres::Row) -> Step<Columns> {
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
}

fn user((doc, failed, locked_until): Columns) -> Result<LocalUser, StoreError> {
    let mut user: LocalUser = serde_json::from_str(&doc).map_err(internal)?;
    user.failed_sign_ins = u32::try_from(failed).unwrap_or(0);
    user.locked_until = locked_until;
    Ok(user)
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, new: LocalUser) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(&new).map_err(internal)?;
        let key = name_key(&new.user_name);
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::INSERT_USER).await?;
            tx.execute(&stmt, &[&new.tenant_id, &key, &doc]).await? == 1
        })
    }

    async fn get_user(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<LocalUser>, StoreError> {
        let key = name_key(user_name);
        let row: Option<Columns> = point!(self, |c| {
            let stmt = c.prepare_cached(statements::GET_USER).await?;
            match c.query_opt(&stmt, &[&tenant, &key]).await? {
                Some(r) => Some(user_columns(&r)?),
                None => None,
            }
        })?;
        row.map(user).transpose()
    }

    async fn list_users(&self, tenant: &str) -> Result<Vec<LocalUser>, StoreError> {
        let rows: Vec<Columns> = read!(self, |c| {
            let stmt = c.prepare_cached(statements::LIST_USERS).await?;
            let mut out = Vec::new();
            for r in c.query(&stmt, &[&tenant]).await? {
                out.push(user_columns(&r)?);
            }
            out
        })?;
        rows.into_iter().map(user).collect()
    }

    async fn delete_user(&self, tenant: &str, user_name: &str) -> Result<bool, StoreError> {
        let key = name_key(user_name);
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::DELETE_USER).await?;
            tx.execute(&stmt, &[&tenant, &key]).await? > 0
        })
    }

    async fn record_failed_sign_in(
        &self,
        tenant: &str,
        user_name: &str,
        limit: u32,
        lock_until: &str,
    ) -> Result<Option<LocalUser>, StoreError> {
        let key = name_key(user_name);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let row: Option<Columns> = transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::FAIL_SIGN_IN).await?;
            match tx
                .query_opt(&stmt, &[&tenant, &key, &limit, &lock_until])
                .await?
            {
                Some(r) => Some(user_columns(&r)?),
                None => None,
            }
        })?;
        row.map(user).transpose()
    }

    async fn record_sign_in(&self, tenant: &str, user_name: &str) -> Result<(), StoreError> {
        let key = name_key(user_name);
        transaction!(self, |tx| {
            let stmt = tx.prepare_cached(statements::SIGNED_IN).await?;
            tx.execute(&stmt, &[&tenant, &key]).await?;
        })
    }

    async fn save_code(
        &self,
        key: &str,
        code: AuthorizationCode,
        now: &str,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(&code).map_err(internal)?;
        transaction!(self, |tx| {
            let prune = tx.prepare_cached(statements::PRUNE_CODES).await?;
            tx.execute(&prune, &[&now]).await?;
            let insert = tx.prepare_cached(statements::INSERT_CODE).await?;
            tx.execute(&insert, &[&key, &code.tenant_id, &doc, &code.expires_at])
                .await?;
        })
    }

    async fn redeem_code(&self, key: &str) -> Result<Redeemed, StoreError> {
        let (doc, kept): (Option<String>, bool) = transaction!(self, |tx| {
            let redeem = tx.prepare_cached(statements::REDEEM_CODE).await?;
            match tx.query_opt(&redeem, &[&key]).await? {
                Some(r) => (Some(r.try_get::<_, String>(0)?), true),
                None => {
                    let kept = tx.prepare_cached(statements::CODE_KEPT).await?;
                    (None, tx.query_opt(&kept, &[&key]).await?.is_some())
                }
            }
        })?;
        Ok(match (doc, kept) {
            (Some(doc), _) => Redeemed::Fresh(serde_json::from_str(&doc).map_err(internal)?),
            (None, true) => Redeemed::Again,
            (None, false) => Redeemed::Unknown,
        })
    }
}

//! Local users and authorization codes in SQLite. The one writer
//! serialises every write, so a failed sign-in is counted whole.

use super::subscriptions::numbered;
use super::{SqliteStore, sql_error};
use crate::domain::users::{AuthorizationCode, LocalUser, Redeemed, name_key};
use crate::store::{StoreError, UserStore, statements};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

fn internal(e: serde_json::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// `doc, failed_sign_ins, locked_until` as a user.
fn user_columns(r: &Row<'_>) -> rusqlite::Result<(String, i64, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn user(
    (doc, failed, locked_until): (String, i64, Option<String>),
) -> Result<LocalUser, StoreError> {
    let mut user: LocalUser = serde_json::from_str(&doc).map_err(internal)?;
    user.failed_sign_ins = u32::try_from(failed).unwrap_or(0);
    user.locked_until = locked_until;
    Ok(user)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: LocalUser) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(&new).map_err(internal)?;
        self.writer
            .write(move |conn| {
                let added = conn
                    .prepare_cached(&numbered(statements::INSERT_USER))
                    .and_then(|mut s| {
                        s.execute(params![new.tenant_id, name_key(&new.user_name), doc])
                    })
                    .map_err(sql_error)?;
                Ok(added == 1)
            })
            .await
    }

    async fn get_user(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<LocalUser>, StoreError> {
        let found = self.read(|conn| {
            conn.prepare_cached(&numbered(statements::GET_USER))
                .and_then(|mut s| {
                    s.query_row(params![tenant, name_key(user_name)], user_columns)
                        .optional()
                })
                .map_err(sql_error)
        })?;
        found.map(user).transpose()
    }

    async fn list_users(&self, tenant: &str) -> Result<Vec<LocalUser>, StoreError> {
        let rows = self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&numbered(statements::LIST_USERS))
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![tenant], user_columns)
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            Ok(rows)
        })?;
        rows.into_iter().map(user).collect()
    }

    async fn delete_user(&self, tenant: &str, user_name: &str) -> Result<bool, StoreError> {
        let (tenant, key) = (tenant.to_owned(), name_key(user_name));
        self.writer
            .write(move |conn| {
                let n = conn
                    .prepare_cached(&numbered(statements::DELETE_USER))
                    .and_then(|mut s| s.execute(params![tenant, key]))
                    .map_err(sql_error)?;
                Ok(n > 0)
            })
            .await
    }

    async fn record_failed_sign_in(
        &self,
        tenant: &str,
        user_name: &str,
        limit: u32,
        lock_until: &str,
    ) -> Result<Option<LocalUser>, StoreError> {
        let (tenant, key, lock_until) = (
            tenant.to_owned(),
            name_key(user_name),
            lock_until.to_owned(),
        );
        let row = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::FAIL_SIGN_IN))
                    .and_then(|mut s| {
                        s.query_row(params![tenant, key, limit, lock_until], user_columns)
                            .optional()
                    })
                    .map_err(sql_error)
            })
            .await?;
        row.map(user).transpose()
    }

    async fn record_sign_in(&self, tenant: &str, user_name: &str) -> Result<(), StoreError> {
        let (tenant, key) = (tenant.to_owned(), name_key(user_name));
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::SIGNED_IN))
                    .and_then(|mut s| s.execute(params![tenant, key]))
                    .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn save_code(
        &self,
        key: &str,
        code: AuthorizationCode,
        now: &str,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(&code).map_err(internal)?;
        let (key, now) = (key.to_owned(), now.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&numbered(statements::PRUNE_CODES))
                    .and_then(|mut s| s.execute(params![now]))
                    .map_err(sql_error)?;
                conn.prepare_cached(&numbered(statements::INSERT_CODE))
                    .and_then(|mut s| s.execute(params![key, code.tenant_id, doc, code.expires_at]))
                    .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn redeem_code(&self, key: &str) -> Result<Redeemed, StoreError> {
        let key = key.to_owned();
        let (doc, kept) = self
            .writer
            .write(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached(&numbered(statements::REDEEM_CODE))
                    .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                    .map_err(sql_error)?;
                if doc.is_some() {
                    return Ok((doc, true));
                }
                let kept = conn
                    .prepare_cached(&numbered(statements::CODE_KEPT))
                    .and_then(|mut s| s.exists(params![key]))
                    .map_err(sql_error)?;
                Ok((None, kept))
            })
            .await?;
        Ok(match (doc, kept) {
            (Some(doc), _) => Redeemed::Fresh(serde_json::from_str(&doc).map_err(internal)?),
            (None, true) => Redeemed::Again,
            (None, false) => Redeemed::Unknown,
        })
    }
}

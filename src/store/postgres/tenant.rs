//! Whole tenants in PostgreSQL: the rows [`crate::store::tenant`] reads and
//! writes (an import is one transaction, so it commits or rolls back whole).

use super::{PgRows, Step, policies};
use crate::domain::copilot::Policy;
use crate::store::tenant::TenantRows;
use crate::store::{Entity, TENANT_TABLES, statements};
use deadpool_postgres::GenericClient;

impl<C: GenericClient + Sync> TenantRows for PgRows<'_, C> {
    async fn clear(&mut self, tenant: &str) -> Step<()> {
        for table in TENANT_TABLES {
            self.0
                .execute(&statements::clear(table), &[&tenant])
                .await?;
        }
        super::changes::clear(self.0, tenant).await
    }

    async fn documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        after: &str,
        limit: i64,
    ) -> Step<Vec<(String, Option<String>)>> {
        let link = if kind == Entity::Instance {
            "manifest_id"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT doc::text, {link} FROM {} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            kind.table()
        );
        let stmt = self.0.prepare_cached(&sql).await?;
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &[&tenant, &after, &limit]).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn memberships(
        &mut self,
        tenant: &str,
        (collection, instance): (&str, &str),
        limit: i64,
    ) -> Step<Vec<(String, String)>> {
        let stmt = self.0.prepare_cached(statements::MEMBERSHIPS_AFTER).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&tenant, &collection, &instance, &limit];
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &params).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn policies(&mut self, tenant: &str) -> Step<Vec<Policy>> {
        policies::list(self.0, tenant).await
    }

    async fn insert_policy(&mut self, tenant: &str, policy: &Policy) -> Step<bool> {
        policies::insert_row(self.0, tenant, policy, true).await
    }

    async fn settings(&mut self, tenant: &str) -> Step<Vec<(String, String)>> {
        let stmt = self
            .0
            .prepare_cached(
                "SELECT name, doc::text FROM copilot_tenant_settings
                 WHERE tenant_id = $1 ORDER BY name",
            )
            .await?;
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &[&tenant]).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn insert_setting(
        &mut self,
        tenant: &str,
        name: &str,
        doc: &str,
        now: &str,
    ) -> Step<bool> {
        let stmt = self
            .0
            .prepare_cached(
                "INSERT INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
                 VALUES ($1, $2, $3, $4::text::json) ON CONFLICT DO NOTHING",
            )
            .await?;
        Ok(self.0.execute(&stmt, &[&tenant, &name, &now, &doc]).await? > 0)
    }
}

/// Every tenant with objects or application registrations.
pub(super) async fn tenants(c: &impl GenericClient) -> Step<Vec<String>> {
    let rows = c.query(&statements::tenants(), &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.try_get(0)?);
    }
    Ok(out)
}

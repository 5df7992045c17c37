//! Copilot policies and per-tenant settings objects in PostgreSQL. Every
//! write of a tenant's policies first takes that tenant's advisory lock, so
//! resolving which policy holds a setting and writing it is atomic across
//! replicas.

use super::{Step, lock_name};
use crate::domain::WriteContext;
use crate::domain::audit::{self, Action, Event};
use crate::domain::copilot::{
    CopilotError, CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
    resolve_write,
};
use crate::store::{StoreError, write};
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};

/// Serialises the writers of one tenant's policies until commit.
pub(super) async fn lock(c: &impl GenericClient, tenant: &str) -> Step<()> {
    lock_name(c, "copilot-policies", tenant).await
}

/// Every policy of a tenant, in resolution order (priority, age, id).
pub(super) async fn list(c: &impl GenericClient, tenant: &str) -> Step<Vec<Policy>> {
    let stmt = c
        .prepare_cached(
            "SELECT doc::text FROM copilot_policies WHERE tenant_id = $1
             ORDER BY priority, created_at, id",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&stmt, &[&tenant]).await? {
        out.push(decode(r.try_get(0)?)?);
    }
    Ok(out)
}

/// One policy; with `for_update` its row stays locked until commit.
pub(super) async fn get(
    c: &impl GenericClient,
    tenant: &str,
    id: &str,
    for_update: bool,
) -> Step<Option<Policy>> {
    let sql = if for_update {
        "SELECT doc::text FROM copilot_policies WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    } else {
        "SELECT doc::text FROM copilot_policies WHERE tenant_id = $1 AND id = $2"
    };
    let stmt = c.prepare_cached(sql).await?;
    match c.query_opt(&stmt, &[&tenant, &id]).await? {
        Some(r) => Ok(Some(decode(r.try_get(0)?)?)),
        None => Ok(None),
    }
}

fn decode(doc: &str) -> Step<Policy> {
    Policy::from_json(doc)
        .ok_or_else(|| StoreError::Internal("a stored Copilot policy does not parse".into()).into())
}

/// Inserts a policy; `PolicyAlreadyExists` when the id is taken, or with
/// `if_new` `Ok(false)`.
pub(super) async fn insert_row(
    c: &impl GenericClient,
    tenant: &str,
    policy: &Policy,
    if_new: bool,
) -> Step<bool> {
    let sql = if if_new {
        "INSERT INTO copilot_policies
           (tenant_id, id, service, scope, priority, created_at, modified_at, version, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8::text::json) ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO copilot_policies
           (tenant_id, id, service, scope, priority, created_at, modified_at, version, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8::text::json)"
    };
    let stmt = c.prepare_cached(sql).await?;
    let priority = i64::from(policy.priority);
    let doc = policy.to_json().to_string();
    let result = c
        .execute(
            &stmt,
            &[
                &tenant,
                &policy.id,
                &policy.service.as_str(),
                &policy.scope.as_str(),
                &priority,
                &policy.created_date_time,
                &policy.last_modified_date_time,
                &doc,
            ],
        )
        .await;
    match result {
        Ok(n) => Ok(n > 0),
        Err(e) if super::is_unique_violation(&e) => {
            Err(CopilotError::PolicyAlreadyExists(policy.id.clone()).into())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn insert(c: &impl GenericClient, tenant: &str, policy: &Policy) -> Step<()> {
    insert_row(c, tenant, policy, false).await.map(|_| ())
}

async fn replace(c: &impl GenericClient, tenant: &str, policy: &Policy) -> Step<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE copilot_policies
             SET service = $3, scope = $4, priority = $5, modified_at = $6,
                 version = version + 1, doc = $7::text::json
             WHERE tenant_id = $1 AND id = $2",
        )
        .await?;
    let priority = i64::from(policy.priority);
    let doc = policy.to_json().to_string();
    let n = c
        .execute(
            &stmt,
            &[
                &tenant,
                &policy.id,
                &policy.service.as_str(),
                &policy.scope.as_str(),
                &priority,
                &policy.last_modified_date_time,
                &doc,
            ],
        )
        .await?;
    if n == 0 {
        return Err(CopilotError::PolicyNotFound(policy.id.clone()).into());
    }
    Ok(())
}

/// Read, patch, validate and write one policy.
pub(super) async fn update(
    c: &impl GenericClient,
    tenant: &str,
    id: &str,
    patch: &PolicyPatch,
    rules: &CopilotRules,
    ctx: &WriteContext,
) -> Step<Policy> {
    lock(c, tenant).await?;
    let mut policy = get(c, tenant, id, true)
        .await?
        .ok_or_else(|| CopilotError::PolicyNotFound(id.to_owned()))?;
    let before = policy.to_json();
    policy.apply(patch, ctx);
    policy.validate(rules.strict_values)?;
    replace(c, tenant, &policy).await?;
    let event = audit::policy_event(id, Action::Update, Some(&before), Some(&policy.to_json()));
    record(c, tenant, ctx, &event).await?;
    Ok(policy)
}

pub(super) async fn delete(
    c: &impl GenericClient,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Step<()> {
    lock(c, tenant).await?;
    let before = get(c, tenant, id, true)
        .await?
        .ok_or_else(|| CopilotError::PolicyNotFound(id.to_owned()))?;
    let stmt = c
        .prepare_cached("DELETE FROM copilot_policies WHERE tenant_id = $1 AND id = $2")
        .await?;
    c.execute(&stmt, &[&tenant, &id]).await?;
    let event = audit::policy_event(id, Action::Delete, Some(&before.to_json()), None);
    record(c, tenant, ctx, &event).await
}

/// Writes the audit record of a Copilot write, in its transaction.
pub(super) async fn record(
    c: &impl GenericClient,
    tenant: &str,
    ctx: &WriteContext,
    event: &Event,
) -> Step<()> {
    write::record_event(
        &mut super::PgRows::new(c),
        tenant,
        &ctx.now,
        ctx.initiator.as_deref(),
        event,
    )
    .await
}

/// Resolves the target policy and writes the value under the tenant's lock:
/// concurrent writes of a setting, from any replica, each see the last.
pub(super) async fn write_setting(
    c: &impl GenericClient,
    tenant: &str,
    write: &SettingWrite,
    rules: &CopilotRules,
    ctx: &WriteContext,
) -> Step<SettingView> {
    lock(c, tenant).await?;
    let policies = list(c, tenant).await?;
    let change = resolve_write(write, &policies, rules, ctx)?;
    if change.created {
        insert(c, tenant, &change.policy).await?;
    } else {
        replace(c, tenant, &change.policy).await?;
    }
    let before = policies
        .iter()
        .find(|p| p.id == change.policy.id)
        .map(|p| p.to_json());
    let event = audit::policy_setting_event(
        write.setting_id,
        &change.policy.id,
        before.as_ref(),
        &change.policy.to_json(),
    );
    record(c, tenant, ctx, &event).await?;
    Ok(change.view)
}

pub(super) async fn get_tenant_setting(
    c: &impl GenericClient,
    tenant: &str,
    kind: TenantSetting,
) -> Step<Option<Map<String, Value>>> {
    let stmt = c
        .prepare_cached(
            "SELECT doc::text FROM copilot_tenant_settings WHERE tenant_id = $1 AND name = $2",
        )
        .await?;
    match c.query_opt(&stmt, &[&tenant, &kind.key()]).await? {
        Some(r) => Ok(Some(super::object(r.try_get(0)?))),
        None => Ok(None),
    }
}

/// Merges changes into a tenant's settings object. The lock is on the name,
/// not the row, because the first write of a setting has no row to lock.
pub(super) async fn patch_tenant_setting(
    c: &impl GenericClient,
    tenant: &str,
    kind: TenantSetting,
    patch: &Map<String, Value>,
    ctx: &WriteContext,
) -> Step<Map<String, Value>> {
    lock_name(c, kind.key(), tenant).await?;
    let current = get_tenant_setting(c, tenant, kind).await?;
    let event_before = current.clone();
    let doc = kind.apply(current, patch);
    let stmt = c
        .prepare_cached(
            "INSERT INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
             VALUES ($1, $2, $3, $4::text::json)
             ON CONFLICT (tenant_id, name) DO UPDATE SET modified_at = $3, doc = $4::text::json",
        )
        .await?;
    let body = Value::Object(doc.clone()).to_string();
    c.execute(&stmt, &[&tenant, &kind.key(), &ctx.now, &body])
        .await?;
    let event = audit::tenant_setting_event(kind.key(), event_before.as_ref(), &doc);
    record(c, tenant, ctx, &event).await?;
    Ok(doc)
}

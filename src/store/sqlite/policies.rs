//! Copilot policies and per-tenant settings objects in SQLite. Free
//! functions over a connection; the `Store` implementation runs reads on a
//! pooled connection and writes as jobs of the single writer.

use super::sql_error;
use crate::domain::WriteContext;
use crate::domain::audit::{self, Action, Event};
use crate::domain::copilot::{
    CopilotError, CopilotRules, Policy, PolicyPatch, SettingView, SettingWrite, TenantSetting,
    resolve_write,
};
use crate::store::{StoreError, write};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

/// Every policy of a tenant, in resolution order (priority, age, id).
pub(super) fn list(conn: &Connection, tenant: &str) -> Result<Vec<Policy>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM copilot_policies WHERE tenant_id = ?1
             ORDER BY priority, created_at, id",
        )
        .map_err(sql_error)?;
    let mut rows = stmt.query(params![tenant]).map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_error)? {
        let doc: String = r.get(0).map_err(sql_error)?;
        out.push(decode(&doc)?);
    }
    Ok(out)
}

pub(super) fn get(conn: &Connection, tenant: &str, id: &str) -> Result<Option<Policy>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM copilot_policies WHERE tenant_id = ?1 AND id = ?2")
        .map_err(sql_error)?;
    let doc: Option<String> = stmt
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    doc.as_deref().map(decode).transpose()
}

fn decode(doc: &str) -> Result<Policy, StoreError> {
    Policy::from_json(doc)
        .ok_or_else(|| StoreError::Internal("a stored Copilot policy does not parse".into()))
}

pub(super) fn insert(conn: &Connection, tenant: &str, policy: &Policy) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO copilot_policies
               (tenant_id, id, service, scope, priority, created_at, modified_at, version, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
        )
        .map_err(sql_error)?;
    let result = stmt.execute(params![
        tenant,
        policy.id,
        policy.service.as_str(),
        policy.scope.as_str(),
        policy.priority,
        policy.created_date_time,
        policy.last_modified_date_time,
        policy.to_json().to_string(),
    ]);
    match result {
        Ok(_) => Ok(()),
        Err(e) if super::is_unique_violation(&e) => {
            Err(CopilotError::PolicyAlreadyExists(policy.id.clone()).into())
        }
        Err(e) => Err(sql_error(e)),
    }
}

fn replace(conn: &Connection, tenant: &str, policy: &Policy) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE copilot_policies
             SET service = ?3, scope = ?4, priority = ?5, modified_at = ?6,
                 version = version + 1, doc = ?7
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .map_err(sql_error)?;
    let n = stmt
        .execute(params![
            tenant,
            policy.id,
            policy.service.as_str(),
            policy.scope.as_str(),
            policy.priority,
            policy.last_modified_date_time,
            policy.to_json().to_string(),
        ])
        .map_err(sql_error)?;
    if n == 0 {
        return Err(CopilotError::PolicyNotFound(policy.id.clone()).into());
    }
    Ok(())
}

/// Read, patch, validate and write one policy, inside one writer job.
pub(super) fn update(
    conn: &Connection,
    tenant: &str,
    id: &str,
    patch: &PolicyPatch,
    rules: &CopilotRules,
    ctx: &WriteContext,
) -> Result<Policy, StoreError> {
    let mut policy =
        get(conn, tenant, id)?.ok_or_else(|| CopilotError::PolicyNotFound(id.to_owned()))?;
    let before = policy.to_json();
    policy.apply(patch, ctx);
    policy.validate(rules.strict_values)?;
    replace(conn, tenant, &policy)?;
    let event = audit::policy_event(id, Action::Update, Some(&before), Some(&policy.to_json()));
    record(conn, tenant, ctx, &event)?;
    Ok(policy)
}

pub(super) fn delete(
    conn: &Connection,
    tenant: &str,
    id: &str,
    ctx: &WriteContext,
) -> Result<(), StoreError> {
    let before =
        get(conn, tenant, id)?.ok_or_else(|| CopilotError::PolicyNotFound(id.to_owned()))?;
    conn.prepare_cached("DELETE FROM copilot_policies WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![tenant, id]))
        .map_err(sql_error)?;
    let event = audit::policy_event(id, Action::Delete, Some(&before.to_json()), None);
    record(conn, tenant, ctx, &event)
}

/// Writes the audit record of a Copilot write, in its transaction.
pub(super) fn record(
    conn: &Connection,
    tenant: &str,
    ctx: &WriteContext,
    event: &Event,
) -> Result<(), StoreError> {
    write::run_now(write::record_event(
        &mut super::SqliteRows::new(conn),
        tenant,
        &ctx.now,
        ctx.initiator.as_deref(),
        event,
    ))
}

/// Resolves the target policy and writes the value, inside one writer job:
/// concurrent writes of a setting are serialised, each seeing the last.
pub(super) fn write_setting(
    conn: &Connection,
    tenant: &str,
    write: &SettingWrite,
    rules: &CopilotRules,
    ctx: &WriteContext,
) -> Result<SettingView, StoreError> {
    let policies = list(conn, tenant)?;
    let change = resolve_write(write, &policies, rules, ctx)?;
    if change.created {
        insert(conn, tenant, &change.policy)?;
    } else {
        replace(conn, tenant, &change.policy)?;
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
    record(conn, tenant, ctx, &event)?;
    Ok(change.view)
}

pub(super) fn get_tenant_setting(
    conn: &Connection,
    tenant: &str,
    kind: TenantSetting,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM copilot_tenant_settings WHERE tenant_id = ?1 AND name = ?2",
        )
        .map_err(sql_error)?;
    let doc: Option<String> = stmt
        .query_row(params![tenant, kind.key()], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    Ok(doc.map(|d| match serde_json::from_str(&d) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }))
}

/// Merges changes into a tenant's settings object inside one writer job.
pub(super) fn patch_tenant_setting(
    conn: &Connection,
    tenant: &str,
    kind: TenantSetting,
    patch: &Map<String, Value>,
    ctx: &WriteContext,
) -> Result<Map<String, Value>, StoreError> {
    let current = get_tenant_setting(conn, tenant, kind)?;
    let event_before = current.clone();
    let doc = kind.apply(current, patch);
    conn.prepare_cached(
        "INSERT INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, name) DO UPDATE SET modified_at = ?3, doc = ?4",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            kind.key(),
            ctx.now,
            Value::Object(doc.clone()).to_string()
        ])
    })
    .map_err(sql_error)?;
    let event = audit::tenant_setting_event(kind.key(), event_before.as_ref(), &doc);
    record(conn, tenant, ctx, &event)?;
    Ok(doc)
}

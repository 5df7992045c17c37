//! Whole tenants: export for snapshots, import for restores, resets and seed
//! files. An import is one writer job, so it commits or rolls back whole.

use super::{exists, insert_entity, policies, sql_error};
use crate::domain::copilot::{Policy, TenantSetting};
use crate::domain::{RESERVED_COLLECTIONS, reserved_collection_document};
use crate::store::{
    Entity, ImportMode, ImportReport, Section, StoreError, TENANT_TABLES, TenantState, member_key,
    split_member_key,
};
use rusqlite::{Connection, params};
use serde_json::{Map, Value};

fn docs(
    conn: &Connection,
    sql: &str,
    tenant: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let mut rows = stmt.query(params![tenant]).map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_error)? {
        out.push((r.get(0).map_err(sql_error)?, r.get(1).map_err(sql_error)?));
    }
    Ok(out)
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

pub(super) fn export(conn: &Connection, tenant: &str) -> Result<TenantState, StoreError> {
    let manifests = docs(
        conn,
        "SELECT doc, NULL FROM agent_card_manifests WHERE tenant_id = ?1 ORDER BY id",
        tenant,
    )?;
    let instances = docs(
        conn,
        "SELECT doc, manifest_id FROM agent_instances WHERE tenant_id = ?1 ORDER BY id",
        tenant,
    )?;
    let collections = docs(
        conn,
        "SELECT doc, NULL FROM agent_collections WHERE tenant_id = ?1 ORDER BY id",
        tenant,
    )?;
    let members = docs(
        conn,
        "SELECT collection_id, instance_id FROM agent_collection_members WHERE tenant_id = ?1
         ORDER BY collection_id, instance_id",
        tenant,
    )?;
    let settings = docs(
        conn,
        "SELECT name, doc FROM copilot_tenant_settings WHERE tenant_id = ?1 ORDER BY name",
        tenant,
    )?;
    Ok(TenantState {
        manifests: manifests.iter().map(|(d, _)| object(d)).collect(),
        instances: instances
            .into_iter()
            .map(|(d, link)| (object(&d), link))
            .collect(),
        collections: collections.iter().map(|(d, _)| object(d)).collect(),
        members: members
            .into_iter()
            .map(|(c, i)| (c, i.unwrap_or_default()))
            .collect(),
        policies: policies::list(conn, tenant)?,
        settings: settings
            .into_iter()
            .filter_map(|(name, doc)| {
                let kind = TenantSetting::ALL.into_iter().find(|k| k.key() == name)?;
                Some((kind, object(&doc.unwrap_or_default())))
            })
            .collect(),
    })
}

/// Every tenant with objects or application registrations.
pub(super) fn tenants(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let union = TENANT_TABLES
        .iter()
        .chain(&["app_registrations"])
        .map(|t| format!("SELECT DISTINCT tenant_id FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let mut stmt = conn
        .prepare(&format!("{union} ORDER BY tenant_id"))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// One chunk of a section of a tenant, in key order after `after`.
pub(super) fn export_section(
    conn: &Connection,
    tenant: &str,
    section: Section,
    after: Option<&str>,
    limit: usize,
) -> Result<(TenantState, Option<String>), StoreError> {
    let mut state = TenantState::default();
    let limit = limit.max(1);
    let page = |table: &str, link: &str| -> Result<Vec<(String, Option<String>)>, StoreError> {
        let sql = format!(
            "SELECT doc, {link} FROM {table} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
        let rows = stmt
            .query_map(params![tenant, after.unwrap_or(""), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    };
    let next = |n: usize, last: Option<String>| if n < limit { None } else { last };
    let cursor = match section {
        Section::Collections => {
            let rows = page("agent_collections", "NULL")?;
            state.collections = rows.iter().map(|(d, _)| object(d)).collect();
            next(
                rows.len(),
                state.collections.last().map(|d| id_of(d).to_owned()),
            )
        }
        Section::Manifests => {
            let rows = page("agent_card_manifests", "NULL")?;
            state.manifests = rows.iter().map(|(d, _)| object(d)).collect();
            next(
                rows.len(),
                state.manifests.last().map(|d| id_of(d).to_owned()),
            )
        }
        Section::Instances => {
            let rows = page("agent_instances", "manifest_id")?;
            state.instances = rows.into_iter().map(|(d, l)| (object(&d), l)).collect();
            let last = state.instances.last().map(|(d, _)| id_of(d).to_owned());
            next(state.instances.len(), last)
        }
        Section::Members => {
            let (c, i) = after.map(split_member_key).unwrap_or(("", ""));
            let mut stmt = conn
                .prepare_cached(
                    "SELECT collection_id, instance_id FROM agent_collection_members
                     WHERE tenant_id = ?1 AND (collection_id, instance_id) > (?2, ?3)
                     ORDER BY collection_id, instance_id LIMIT ?4",
                )
                .map_err(sql_error)?;
            let rows = stmt
                .query_map(params![tenant, c, i, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(sql_error)?;
            state.members = rows.collect::<Result<_, _>>().map_err(sql_error)?;
            let last = state.members.last().map(|(c, i)| member_key(c, i));
            next(state.members.len(), last)
        }
        // A tenant has a handful of these: one chunk each.
        Section::Policies => {
            if after.is_none() {
                state.policies = policies::list(conn, tenant)?;
            }
            None
        }
        Section::Settings => {
            if after.is_none() {
                state.settings = export(conn, tenant)?.settings;
            }
            None
        }
    };
    Ok((state, cursor))
}

fn id_of(doc: &Map<String, Value>) -> &str {
    doc.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// Writes a state into a tenant, inside the caller's transaction.
pub(super) fn import(
    conn: &Connection,
    tenant: &str,
    state: &TenantState,
    mode: ImportMode,
    now: &str,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    if mode == ImportMode::Replace {
        super::cache::record_everything();
        for table in TENANT_TABLES {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE tenant_id = ?1"))
                .and_then(|mut s| s.execute(params![tenant]))
                .map_err(sql_error)?;
        }
    }
    let mut count = |created: bool| {
        if created {
            report.created += 1;
        } else {
            report.kept += 1;
        }
    };
    for doc in &state.manifests {
        count(insert_new(conn, Entity::Manifest, tenant, doc, None)?);
    }
    for (doc, link) in &state.instances {
        if let Some(m) = link
            && !exists(conn, Entity::Manifest, tenant, m)?
        {
            return Err(StoreError::NotFound {
                kind: Entity::Manifest,
                id: m.clone(),
            });
        }
        count(insert_new(
            conn,
            Entity::Instance,
            tenant,
            doc,
            link.as_deref(),
        )?);
    }
    for doc in &state.collections {
        count(insert_new(conn, Entity::Collection, tenant, doc, None)?);
    }
    for c in &RESERVED_COLLECTIONS {
        if !exists(conn, Entity::Collection, tenant, c.id)? {
            let doc = reserved_collection_document(c, now);
            insert_entity(conn, Entity::Collection, tenant, &doc, None)?;
        }
    }
    for (collection, instance) in &state.members {
        for (table, id) in [
            (Entity::Collection, collection),
            (Entity::Instance, instance),
        ] {
            if !exists(conn, table, tenant, id)? {
                return Err(StoreError::NotFound {
                    kind: table,
                    id: id.clone(),
                });
            }
        }
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO agent_collection_members (tenant_id, collection_id, instance_id)
                 VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![tenant, collection, instance]))
            .map_err(sql_error)?;
        count(n > 0);
    }
    for policy in &state.policies {
        count(insert_policy(conn, tenant, policy)?);
    }
    for (kind, doc) in &state.settings {
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    kind.key(),
                    now,
                    Value::Object(doc.clone()).to_string()
                ])
            })
            .map_err(sql_error)?;
        count(n > 0);
    }
    Ok(report)
}

/// Inserts an entity unless its id exists; `Ok(false)` if it was kept.
fn insert_new(
    conn: &Connection,
    table: Entity,
    tenant: &str,
    doc: &Map<String, Value>,
    link: Option<&str>,
) -> Result<bool, StoreError> {
    if exists(conn, table, tenant, id_of(doc))? {
        return Ok(false);
    }
    insert_entity(conn, table, tenant, doc, link)?;
    Ok(true)
}

fn insert_policy(conn: &Connection, tenant: &str, policy: &Policy) -> Result<bool, StoreError> {
    if policies::get(conn, tenant, &policy.id)?.is_some() {
        return Ok(false);
    }
    policies::insert(conn, tenant, policy)?;
    Ok(true)
}

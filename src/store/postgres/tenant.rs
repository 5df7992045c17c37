//! Whole tenants: export for snapshots, import for restores, resets and seed
//! files. An import is one transaction, so it commits or rolls back whole.

use super::{Step, exists, insert_entity_row, object, policies};
use crate::domain::copilot::TenantSetting;
use crate::domain::{RESERVED_COLLECTIONS, reserved_collection_document};
use crate::store::{
    Entity, ImportMode, ImportReport, Section, StoreError, TENANT_TABLES, TenantState, member_key,
    split_member_key,
};
use deadpool_postgres::GenericClient;
use serde_json::Value;

async fn pairs(
    c: &impl GenericClient,
    sql: &str,
    tenant: &str,
) -> Step<Vec<(String, Option<String>)>> {
    let stmt = c.prepare_cached(sql).await?;
    let mut out = Vec::new();
    for r in c.query(&stmt, &[&tenant]).await? {
        out.push((r.try_get(0)?, r.try_get(1)?));
    }
    Ok(out)
}

pub(super) async fn export(c: &impl GenericClient, tenant: &str) -> Step<TenantState> {
    let manifests = pairs(
        c,
        "SELECT doc::text, NULL::text FROM agent_card_manifests WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    .await?;
    let instances = pairs(
        c,
        "SELECT doc::text, manifest_id FROM agent_instances WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    .await?;
    let collections = pairs(
        c,
        "SELECT doc::text, NULL::text FROM agent_collections WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    .await?;
    let members = pairs(
        c,
        "SELECT collection_id, instance_id FROM agent_collection_members WHERE tenant_id = $1
         ORDER BY collection_id, instance_id",
        tenant,
    )
    .await?;
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
        policies: policies::list(c, tenant).await?,
        settings: export_settings(c, tenant).await?,
    })
}

/// Every tenant with objects or application registrations.
pub(super) async fn tenants(c: &impl GenericClient) -> Step<Vec<String>> {
    let union = TENANT_TABLES
        .iter()
        .chain(&["app_registrations"])
        .map(|t| format!("SELECT DISTINCT tenant_id FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let rows = c.query(&format!("{union} ORDER BY tenant_id"), &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.try_get(0)?);
    }
    Ok(out)
}

fn id_of(doc: &serde_json::Map<String, Value>) -> &str {
    doc.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// One chunk of a section of a tenant, in key order after `after`; the key
/// to continue from, `None` once the section is done.
pub(super) async fn export_section(
    c: &impl GenericClient,
    tenant: &str,
    section: Section,
    after: Option<&str>,
    limit: usize,
) -> Step<(TenantState, Option<String>)> {
    let mut state = TenantState::default();
    let limit = limit.max(1);
    let n = limit as i64;
    let from = after.unwrap_or("");
    let page = async |table: &str, link: &str| -> Step<Vec<(String, Option<String>)>> {
        let sql = format!(
            "SELECT doc::text, {link} FROM {table} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let stmt = c.prepare_cached(&sql).await?;
        let mut out = Vec::new();
        for r in c.query(&stmt, &[&tenant, &from, &n]).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    };
    let next = |n: usize, last: Option<String>| if n < limit { None } else { last };
    let cursor = match section {
        Section::Collections => {
            let rows = page("agent_collections", "NULL::text").await?;
            state.collections = rows.iter().map(|(d, _)| object(d)).collect();
            next(
                rows.len(),
                state.collections.last().map(|d| id_of(d).to_owned()),
            )
        }
        Section::Manifests => {
            let rows = page("agent_card_manifests", "NULL::text").await?;
            state.manifests = rows.iter().map(|(d, _)| object(d)).collect();
            next(
                rows.len(),
                state.manifests.last().map(|d| id_of(d).to_owned()),
            )
        }
        Section::Instances => {
            let rows = page("agent_instances", "manifest_id").await?;
            state.instances = rows.into_iter().map(|(d, l)| (object(&d), l)).collect();
            let last = state.instances.last().map(|(d, _)| id_of(d).to_owned());
            next(state.instances.len(), last)
        }
        Section::Members => {
            let (col, inst) = after.map(split_member_key).unwrap_or(("", ""));
            let stmt = c
                .prepare_cached(
                    "SELECT collection_id, instance_id FROM agent_collection_members
                     WHERE tenant_id = $1 AND (collection_id, instance_id) > ($2, $3)
                     ORDER BY collection_id, instance_id LIMIT $4",
                )
                .await?;
            for r in c.query(&stmt, &[&tenant, &col, &inst, &n]).await? {
                state.members.push((r.try_get(0)?, r.try_get(1)?));
            }
            let last = state.members.last().map(|(c, i)| member_key(c, i));
            next(state.members.len(), last)
        }
        // A tenant has a handful of these: one chunk each.
        Section::Policies => {
            if after.is_none() {
                state.policies = policies::list(c, tenant).await?;
            }
            None
        }
        Section::Settings => {
            if after.is_none() {
                state.settings = export_settings(c, tenant).await?;
            }
            None
        }
    };
    Ok((state, cursor))
}

async fn export_settings(
    c: &impl GenericClient,
    tenant: &str,
) -> Step<Vec<(TenantSetting, serde_json::Map<String, Value>)>> {
    let settings = pairs(
        c,
        "SELECT name, doc::text FROM copilot_tenant_settings WHERE tenant_id = $1 ORDER BY name",
        tenant,
    )
    .await?;
    Ok(settings
        .into_iter()
        .filter_map(|(name, doc)| {
            let kind = TenantSetting::ALL.into_iter().find(|k| k.key() == name)?;
            Some((kind, object(&doc.unwrap_or_default())))
        })
        .collect())
}

/// Writes a state into a tenant, inside the caller's transaction.
pub(super) async fn import(
    c: &impl GenericClient,
    tenant: &str,
    state: &TenantState,
    mode: ImportMode,
    now: &str,
) -> Step<ImportReport> {
    let mut report = ImportReport::default();
    // Policy writers of this tenant wait for the import to finish.
    policies::lock(c, tenant).await?;
    if mode == ImportMode::Replace {
        for table in TENANT_TABLES {
            c.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = $1"),
                &[&tenant],
            )
            .await?;
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
        let created = insert_entity_row(c, Entity::Manifest, tenant, doc, None, true).await?;
        count(created.is_some());
    }
    for (doc, link) in &state.instances {
        if let Some(m) = link
            && !exists(c, Entity::Manifest, tenant, m, true).await?
        {
            return Err(StoreError::NotFound {
                kind: Entity::Manifest,
                id: m.clone(),
            }
            .into());
        }
        let created =
            insert_entity_row(c, Entity::Instance, tenant, doc, link.as_deref(), true).await?;
        count(created.is_some());
    }
    for doc in &state.collections {
        let created = insert_entity_row(c, Entity::Collection, tenant, doc, None, true).await?;
        count(created.is_some());
    }
    for r in &RESERVED_COLLECTIONS {
        let doc = reserved_collection_document(r, now);
        insert_entity_row(c, Entity::Collection, tenant, &doc, None, true).await?;
    }
    let member = c
        .prepare_cached(
            "INSERT INTO agent_collection_members (tenant_id, collection_id, instance_id)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await?;
    for (collection, instance) in &state.members {
        for (table, id) in [
            (Entity::Collection, collection),
            (Entity::Instance, instance),
        ] {
            if !exists(c, table, tenant, id, true).await? {
                return Err(StoreError::NotFound {
                    kind: table,
                    id: id.clone(),
                }
                .into());
            }
        }
        let n = c.execute(&member, &[&tenant, collection, instance]).await?;
        count(n > 0);
    }
    for policy in &state.policies {
        count(policies::insert_row(c, tenant, policy, true).await?);
    }
    let setting = c
        .prepare_cached(
            "INSERT INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
             VALUES ($1, $2, $3, $4::text::json) ON CONFLICT DO NOTHING",
        )
        .await?;
    for (kind, doc) in &state.settings {
        let body = Value::Object(doc.clone()).to_string();
        let n = c
            .execute(&setting, &[&tenant, &kind.key(), &now, &body])
            .await?;
        count(n > 0);
    }
    Ok(report)
}

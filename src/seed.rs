//! The per-tenant snapshot format of seed files and of the control API's
//! snapshots (`docs/seed.md`; `examples/seed.json` is one).
//!
//! - `agentry serve --seed FILE` loads a file at start, merging: objects whose
//!   id already exists are left as they are, so starting again with the same
//!   file changes nothing.
//! - `PUT /_agentry/snapshot` restores one tenant, replacing its state;
//!   `GET /_agentry/snapshot` exports it ([`export`]).
//!
//! Both validate every object as the API would ([`parse_tenant`]) before one
//! store transaction writes them; server-owned fields (`createdBy`, the
//! timestamps) are kept when given, so an export restores exactly.

use crate::domain::copilot::{CopilotRules, TenantSetting, parse_new_policy};
use crate::domain::packages::new_package;
use crate::domain::schema::{
    AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, AGENT_REGISTRATION, EntityType,
};
use crate::domain::{
    ManifestChange, WriteContext, ensure_collection_name_free, ensure_registration_owner,
    ensure_required, new_document, new_id, parse_write, reserved_collection,
    reserved_collection_document,
};
use crate::store::{Entity, ImportMode, ImportReport, Store, StoreError, TenantState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The whole file: one snapshot per tenant id.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub tenants: BTreeMap<String, TenantSeed>,
}

/// One tenant's objects. Every object needs an `id`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantSeed {
    /// Create bodies as `POST /agentRegistry/agentCardManifests` takes them.
    pub agent_card_manifests: Vec<Value>,
    /// Create bodies as `POST /agentRegistry/agentInstances` takes them; link
    /// a manifest with `"agentCardManifest@odata.bind": "agentCardManifests('id')"`.
    pub agent_instances: Vec<Value>,
    /// Create bodies as `POST /agentRegistry/agentCollections` takes them.
    pub agent_collections: Vec<Value>,
    /// Collection id to the ids of its member instances.
    pub members: BTreeMap<String, Vec<String>>,
    /// Create bodies as `POST /copilot/agentRegistrations` takes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agent_registrations: Vec<Value>,
    pub copilot: CopilotSeed,
    /// The tenant's A2A settings, as `PATCH /_agentry/a2a/settings` takes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a2a: Option<Value>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CopilotSeed {
    /// Policies as the control API takes them.
    pub policies: Vec<Value>,
    /// Catalog packages (`/copilot/admin/catalog/packages`) as the control
    /// API takes them: every property of `copilotPackageDetail`, `id` required.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Value>,
    /// Bodies as `PATCH /copilot/admin/settings/limitedMode` takes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited_mode: Option<Value>,
    /// Bodies as `PATCH /copilot/settings/people/enhancedPersonalization` takes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_personalization: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read the seed file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the seed file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("seed tenant '{tenant}', {item}: {reason}")]
    Invalid {
        tenant: String,
        item: String,
        reason: String,
    },
}

/// What a load did.
pub type SeedReport = ImportReport;

/// Why one object of a snapshot was refused: which one (`agentInstances[2]`,
/// `members['c']: 'i'`, ...) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item}: {reason}")]
pub struct Invalid {
    pub item: String,
    pub reason: String,
}

fn invalid(item: impl Into<String>, reason: impl ToString) -> Invalid {
    Invalid {
        item: item.into(),
        reason: reason.to_string(),
    }
}

impl SeedFile {
    pub fn read(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| SeedError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// Loads a seed file into the store, merging with what each tenant holds.
/// The whole file is checked before anything is written; each tenant is then
/// written in one transaction.
pub async fn load(
    store: &dyn Store,
    path: &Path,
    rules: CopilotRules,
    now: String,
) -> Result<SeedReport, SeedError> {
    let file = SeedFile::read(path)?;
    let mut parsed = Vec::new();
    for (tenant, seed) in &file.tenants {
        let fail = |e: Invalid| SeedError::Invalid {
            tenant: tenant.clone(),
            item: e.item,
            reason: e.reason,
        };
        if tenant.trim().is_empty() {
            return Err(fail(invalid("tenants", "a tenant id must not be empty")));
        }
        let tenant_state = parse_tenant(seed, rules, &now).map_err(fail)?;
        check_references(store, tenant, &tenant_state)
            .await
            .map_err(fail)?;
        parsed.push((tenant, tenant_state));
    }
    let mut report = SeedReport::default();
    for (tenant, parsed) in parsed {
        let r = store
            .import_tenant(tenant, parsed.state, ImportMode::Merge, &now)
            .await
            .map_err(|e| SeedError::Invalid {
                tenant: tenant.clone(),
                item: "tenant".into(),
                reason: store_reason(e),
            })?;
        report.created += r.created;
        report.kept += r.kept;
    }
    Ok(report)
}

/// Replaces a tenant's whole state with a snapshot, in one transaction.
/// Every reference must resolve inside the snapshot (or to a reserved
/// collection).
pub async fn restore(
    store: &dyn Store,
    tenant: &str,
    seed: &TenantSeed,
    rules: CopilotRules,
    now: &str,
) -> Result<ImportReport, RestoreError> {
    let parsed = parse_tenant(seed, rules, now)?;
    if let Some(r) = parsed.references.iter().find(|r| !r.local) {
        return Err(invalid(
            r.item.clone(),
            format!("{} '{}' is not in the snapshot", label(r.kind), r.id),
        )
        .into());
    }
    Ok(store
        .import_tenant(tenant, parsed.state, ImportMode::Replace, now)
        .await?)
}

/// Why a restore failed: the snapshot (the client's doing) or the store.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Exports a tenant's state in the snapshot format.
pub async fn export(store: &dyn Store, tenant: &str) -> Result<SeedFile, StoreError> {
    let state = store.export_tenant(tenant).await?;
    let mut tenants = BTreeMap::new();
    tenants.insert(tenant.to_owned(), to_seed(state));
    Ok(SeedFile { tenants })
}

/// The snapshot form of a stored state: documents as stored, instance links
/// as `agentCardManifest@odata.bind`.
pub fn to_seed(state: TenantState) -> TenantSeed {
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (collection, instance) in state.members {
        members.entry(collection).or_default().push(instance);
    }
    let mut limited_mode = None;
    let mut enhanced_personalization = None;
    let mut a2a = None;
    for (kind, doc) in state.settings {
        match kind {
            TenantSetting::LimitedMode => limited_mode = Some(Value::Object(doc)),
            TenantSetting::EnhancedPersonalization => {
                enhanced_personalization = Some(Value::Object(doc));
            }
            TenantSetting::A2a => a2a = Some(Value::Object(doc)),
        }
    }
    TenantSeed {
        agent_card_manifests: state.manifests.into_iter().map(Value::Object).collect(),
        agent_instances: state
            .instances
            .into_iter()
            .map(|(mut doc, link)| {
                if let Some(id) = link {
                    doc.insert(
                        "agentCardManifest@odata.bind".into(),
                        bind_reference(&id).into(),
                    );
                }
                Value::Object(doc)
            })
            .collect(),
        agent_collections: state.collections.into_iter().map(Value::Object).collect(),
        members,
        agent_registrations: state.registrations.into_iter().map(Value::Object).collect(),
        copilot: CopilotSeed {
            policies: state.policies.iter().map(|p| p.to_json()).collect(),
            packages: state.packages.into_iter().map(Value::Object).collect(),
            limited_mode,
            enhanced_personalization,
        },
        a2a,
    }
}

/// Characters escaped in a key of a bind reference (read back percent-decoded).
const BIND_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'#');

/// `agentCardManifests('it''s')`
fn bind_reference(id: &str) -> String {
    let quoted = id.replace('\'', "''");
    let encoded = percent_encoding::utf8_percent_encode(&quoted, BIND_ENCODE);
    format!("agentCardManifests('{encoded}')")
}

/// A link from one object of a snapshot to another.
#[derive(Debug, Clone)]
pub struct Reference {
    pub item: String,
    pub kind: Entity,
    pub id: String,
    /// Resolved inside the snapshot (or a reserved collection).
    pub local: bool,
}

/// A validated snapshot of one tenant and the links it holds.
#[derive(Debug, Clone, Default)]
pub struct ParsedTenant {
    pub state: TenantState,
    pub references: Vec<Reference>,
}

fn label(kind: Entity) -> &'static str {
    match kind {
        Entity::Instance => "agent instance",
        Entity::Manifest => "agent card manifest",
        Entity::Collection => "agent collection",
        Entity::Registration => "agent registration",
        Entity::Package => "package",
        Entity::Audit => "audit record",
    }
}

/// Validates one tenant's snapshot into complete documents. Pure: no store.
pub fn parse_tenant(
    seed: &TenantSeed,
    rules: CopilotRules,
    now: &str,
) -> Result<ParsedTenant, Invalid> {
    let mut out = ParsedTenant::default();
    let mut seen: HashSet<(&'static str, String)> = HashSet::new();
    for (i, body) in seed.agent_card_manifests.iter().enumerate() {
        let item = format!("agentCardManifests[{i}]");
        let (doc, _) = entity(&AGENT_CARD_MANIFEST, body, now).map_err(|r| invalid(&item, r))?;
        unique(&mut seen, "m", id_of(&doc), &item)?;
        out.state.manifests.push(doc);
    }
    let mut binds = Vec::new();
    for (i, body) in seed.agent_instances.iter().enumerate() {
        let item = format!("agentInstances[{i}]");
        let (doc, change) = entity(&AGENT_INSTANCE, body, now).map_err(|r| invalid(&item, r))?;
        unique(&mut seen, "i", id_of(&doc), &item)?;
        let link = match change {
            None | Some(ManifestChange::Unlink) => None,
            Some(ManifestChange::Bind(id)) => {
                binds.push((item.clone(), id.clone()));
                Some(id)
            }
            Some(ManifestChange::Upsert(nested)) => {
                ensure_required(&AGENT_CARD_MANIFEST, &nested.props)
                    .map_err(|e| invalid(&item, e))?;
                let id = nested.id.clone().unwrap_or_else(new_id);
                let ctx = WriteContext {
                    now: now.to_owned(),
                    actor: None,
                    if_match: None,
                    scope: Default::default(),
                    initiator: None,
                    card_validation: Default::default(),
                    card_signatures: Default::default(),
                };
                unique(&mut seen, "m", &id, &item)?;
                let doc = new_document(&AGENT_CARD_MANIFEST, &id, &nested.props, &ctx);
                out.state.manifests.push(doc);
                Some(id)
            }
        };
        out.state.instances.push((doc, link));
    }
    for (i, body) in seed.agent_collections.iter().enumerate() {
        let item = format!("agentCollections[{i}]");
        let doc = collection(body, now).map_err(|r| invalid(&item, r))?;
        unique(&mut seen, "c", id_of(&doc), &item)?;
        out.state.collections.push(doc);
    }
    for (item, id) in binds {
        let local = seen.contains(&("m", id.clone()));
        out.references.push(Reference {
            item,
            kind: Entity::Manifest,
            id,
            local,
        });
    }
    for (collection, instances) in &seed.members {
        for instance in instances {
            let item = format!("members['{collection}']: '{instance}'");
            for (set, kind, id) in [
                ("c", Entity::Collection, collection),
                ("i", Entity::Instance, instance),
            ] {
                let local = seen.contains(&(set, id.clone()))
                    || (set == "c" && reserved_collection(id).is_some());
                out.references.push(Reference {
                    item: item.clone(),
                    kind,
                    id: id.clone(),
                    local,
                });
            }
            out.state
                .members
                .push((collection.clone(), instance.clone()));
        }
    }
    let mut sources = HashSet::new();
    for (i, body) in seed.agent_registrations.iter().enumerate() {
        let item = format!("agentRegistrations[{i}]");
        let (doc, _) = entity(&AGENT_REGISTRATION, body, now).map_err(|r| invalid(&item, r))?;
        ensure_registration_owner(&doc).map_err(|e| invalid(&item, e))?;
        unique(&mut seen, "r", id_of(&doc), &item)?;
        if let Some(source) = doc.get("sourceAgentId").and_then(Value::as_str)
            && !sources.insert(source.to_owned())
        {
            return Err(invalid(
                item,
                format!("the sourceAgentId '{source}' appears twice"),
            ));
        }
        out.state.registrations.push(doc);
    }
    let ctx = WriteContext {
        now: now.to_owned(),
        actor: None,
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    };
    for (i, body) in seed.copilot.policies.iter().enumerate() {
        let item = format!("copilot.policies[{i}]");
        if !body.get("id").is_some_and(Value::is_string) {
            return Err(invalid(item, "an 'id' is required in a seed file"));
        }
        let policy = parse_new_policy(body.clone(), rules.strict_values, &ctx)
            .map_err(|e| invalid(&item, e))?;
        unique(&mut seen, "p", &policy.id, &item)?;
        out.state.policies.push(policy);
    }
    for (i, body) in seed.copilot.packages.iter().enumerate() {
        let item = format!("copilot.packages[{i}]");
        let doc = new_package(body.clone(), now).map_err(|e| invalid(&item, e))?;
        unique(&mut seen, "k", id_of(&doc), &item)?;
        out.state.packages.push(doc);
    }
    for (kind, body) in [
        (TenantSetting::LimitedMode, &seed.copilot.limited_mode),
        (
            TenantSetting::EnhancedPersonalization,
            &seed.copilot.enhanced_personalization,
        ),
    ] {
        let Some(body) = body else { continue };
        let item = format!("copilot.{}", kind.key());
        let patch = kind
            .parse_patch(body.clone())
            .map_err(|e| invalid(&item, e))?;
        out.state.settings.push((kind, kind.apply(None, &patch)));
    }
    if let Some(body) = &seed.a2a {
        let patch = crate::domain::a2a::settings::parse_patch(body.clone())
            .map_err(|e| invalid("a2a", e))?;
        let kind = TenantSetting::A2a;
        out.state.settings.push((kind, kind.apply(None, &patch)));
    }
    Ok(out)
}

fn unique(
    seen: &mut HashSet<(&'static str, String)>,
    set: &'static str,
    id: &str,
    item: &str,
) -> Result<(), Invalid> {
    if seen.insert((set, id.to_owned())) {
        Ok(())
    } else {
        Err(invalid(item, format!("the id '{id}' appears twice")))
    }
}

fn id_of(doc: &Map<String, Value>) -> &str {
    doc.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// A server-owned timestamp given in a snapshot, if any.
fn timestamp(body: &Value, name: &str) -> Result<Option<String>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .is_ok() =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(format!(
            "property '{name}' must be an ISO 8601 date and time"
        )),
    }
}

/// A registry object's complete document, server-owned fields kept when given.
fn entity(
    ty: &'static EntityType,
    body: &Value,
    now: &str,
) -> Result<(Map<String, Value>, Option<ManifestChange>), String> {
    let created_by = match body.get("createdBy") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("property 'createdBy' must be a string".into()),
    };
    let created = timestamp(body, "createdDateTime")?;
    let modified = timestamp(body, "lastModifiedDateTime")?;
    let write = parse_write(ty, body.clone(), true).map_err(|e| e.to_string())?;
    let Some(id) = write.id.clone() else {
        return Err("an 'id' is required in a seed file".into());
    };
    if ty.entity_set == AGENT_COLLECTION.entity_set {
        ensure_collection_name_free(&write.props).map_err(|e| e.to_string())?;
    }
    let ctx = WriteContext {
        now: created.unwrap_or_else(|| now.to_owned()),
        actor: created_by,
        if_match: None,
        scope: Default::default(),
        initiator: None,
        card_validation: Default::default(),
        card_signatures: Default::default(),
    };
    let mut doc = new_document(ty, &id, &write.props, &ctx);
    if let Some(m) = modified {
        doc.insert("lastModifiedDateTime".into(), m.into());
    }
    Ok((doc, write.manifest))
}

/// A collection's document; a reserved collection keeps its fixed properties
/// and takes only its timestamps from the snapshot.
fn collection(body: &Value, now: &str) -> Result<Map<String, Value>, String> {
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
    let Some(reserved) = reserved_collection(id) else {
        return entity(&AGENT_COLLECTION, body, now).map(|(doc, _)| doc);
    };
    let created = timestamp(body, "createdDateTime")?.unwrap_or_else(|| now.to_owned());
    let mut doc = reserved_collection_document(reserved, &created);
    if let Some(m) = timestamp(body, "lastModifiedDateTime")? {
        doc.insert("lastModifiedDateTime".into(), m.into());
    }
    Ok(doc)
}

/// Checks that links leaving the snapshot reach objects of the database.
async fn check_references(
    store: &dyn Store,
    tenant: &str,
    parsed: &ParsedTenant,
) -> Result<(), Invalid> {
    for r in parsed.references.iter().filter(|r| !r.local) {
        let found = store
            .get_entity(r.kind, tenant, &r.id)
            .await
            .map_err(|e| invalid(&r.item, store_reason(e)))?
            .is_some();
        if !found {
            return Err(invalid(
                &r.item,
                format!("{} '{}' does not exist", label(r.kind), r.id),
            ));
        }
    }
    Ok(())
}

fn store_reason(e: StoreError) -> String {
    match e {
        StoreError::Rejected(d) => d.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_seed_file_parses() {
        let text = include_str!("../examples/seed.json");
        let file: SeedFile = serde_json::from_str(text).unwrap();
        assert!(!file.tenants.is_empty());
        for seed in file.tenants.values() {
            assert!(!seed.copilot.policies.is_empty());
        }
    }

    #[test]
    fn unknown_sections_are_refused() {
        let bad = r#"{"tenants": {"t": {"agents": []}}}"#;
        assert!(serde_json::from_str::<SeedFile>(bad).is_err());
        let bad = r#"{"tenants": {"t": {"copilot": {"policy": []}}}}"#;
        assert!(serde_json::from_str::<SeedFile>(bad).is_err());
        let empty = r#"{"tenants": {"t": {}}}"#;
        assert!(serde_json::from_str::<SeedFile>(empty).is_ok());
    }
}

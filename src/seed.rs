//! `agentry serve --seed FILE`: loads registry objects and Copilot settings
//! from a JSON snapshot at start, through the same domain validation and
//! store calls as the API. Objects whose id already exists are left as they
//! are, so starting again with the same file changes nothing.
//!
//! The format is described in `docs/seed.md`; `examples/seed.json` is one.

use crate::domain::copilot::{CopilotRules, TenantSetting, parse_new_policy};
use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE, EntityType};
use crate::domain::{WriteContext, ensure_collection_name_free, parse_write};
use crate::store::{Store, StoreError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file: one snapshot per tenant id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub tenants: BTreeMap<String, TenantSeed>,
}

/// One tenant's objects. Every object needs an `id`.
#[derive(Debug, Default, Deserialize)]
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
    pub copilot: CopilotSeed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CopilotSeed {
    /// Policies as the control API takes them.
    pub policies: Vec<Value>,
    /// Bodies as `PATCH /copilot/admin/settings/limitedMode` takes them.
    pub limited_mode: Option<Value>,
    /// Bodies as `PATCH /copilot/settings/people/enhancedPersonalization` takes them.
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    /// Objects left alone because their id already existed.
    pub kept: usize,
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

/// Loads a seed file into the store.
pub async fn load(
    store: &dyn Store,
    path: &Path,
    rules: CopilotRules,
    now: String,
) -> Result<SeedReport, SeedError> {
    let file = SeedFile::read(path)?;
    let ctx = WriteContext { now, actor: None };
    let mut report = SeedReport::default();
    for (tenant, seed) in &file.tenants {
        let mut loader = Loader {
            store,
            tenant,
            ctx: &ctx,
            report: &mut report,
        };
        loader.load(seed, rules).await?;
    }
    Ok(report)
}

struct Loader<'a> {
    store: &'a dyn Store,
    tenant: &'a str,
    ctx: &'a WriteContext,
    report: &'a mut SeedReport,
}

impl Loader<'_> {
    fn invalid(&self, item: String, reason: impl ToString) -> SeedError {
        SeedError::Invalid {
            tenant: self.tenant.to_owned(),
            item,
            reason: reason.to_string(),
        }
    }

    fn count(&mut self, created: bool) {
        if created {
            self.report.created += 1;
        } else {
            self.report.kept += 1;
        }
    }

    async fn load(&mut self, seed: &TenantSeed, rules: CopilotRules) -> Result<(), SeedError> {
        if self.tenant.trim().is_empty() {
            return Err(self.invalid("tenants".into(), "a tenant id must not be empty"));
        }
        // Manifests first: instances may bind them.
        for (list, ty) in [
            (&seed.agent_card_manifests, &AGENT_CARD_MANIFEST),
            (&seed.agent_instances, &AGENT_INSTANCE),
            (&seed.agent_collections, &AGENT_COLLECTION),
        ] {
            for (i, body) in list.iter().enumerate() {
                let item = format!("{}[{i}]", ty.entity_set);
                let created = self
                    .registry_object(ty, body.clone())
                    .await
                    .map_err(|reason| self.invalid(item, reason))?;
                self.count(created);
            }
        }
        for (collection, instances) in &seed.members {
            for instance in instances {
                let item = format!("members['{collection}']: '{instance}'");
                let created = self
                    .member(collection, instance)
                    .await
                    .map_err(|e| self.invalid(item, e))?;
                self.count(created);
            }
        }
        for (i, body) in seed.copilot.policies.iter().enumerate() {
            let item = format!("copilot.policies[{i}]");
            let created = self
                .policy(body.clone(), rules)
                .await
                .map_err(|reason| self.invalid(item, reason))?;
            self.count(created);
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
            let created = self
                .tenant_setting(kind, body.clone())
                .await
                .map_err(|reason| self.invalid(item, reason))?;
            self.count(created);
        }
        Ok(())
    }

    /// Creates one registry object unless its id exists; `Ok(false)` if kept.
    async fn registry_object(&self, ty: &'static EntityType, body: Value) -> Result<bool, String> {
        let write = parse_write(ty, body, true).map_err(|e| e.to_string())?;
        let Some(id) = write.id.clone() else {
            return Err("an 'id' is required in a seed file".into());
        };
        let (t, s, c) = (self.tenant, self.store, self.ctx);
        let exists = match ty.entity_set {
            "agentCardManifests" => s.get_manifest(t, &id).await,
            "agentInstances" => s.get_instance(t, &id).await,
            _ => s.get_collection(t, &id).await,
        }
        .map_err(store_reason)?
        .is_some();
        if exists {
            return Ok(false);
        }
        match ty.entity_set {
            "agentCardManifests" => s.create_manifest(t, &id, write, c).await,
            "agentInstances" => s.create_instance(t, &id, write, c).await,
            _ => {
                ensure_collection_name_free(&write.props).map_err(|e| e.to_string())?;
                s.create_collection(t, &id, write, c).await
            }
        }
        .map_err(store_reason)?;
        Ok(true)
    }

    async fn member(&self, collection: &str, instance: &str) -> Result<bool, String> {
        if self
            .store
            .is_member(self.tenant, collection, instance)
            .await
            .map_err(store_reason)?
        {
            return Ok(false);
        }
        self.store
            .add_member(self.tenant, collection, instance)
            .await
            .map_err(store_reason)?;
        Ok(true)
    }

    async fn policy(&self, body: Value, rules: CopilotRules) -> Result<bool, String> {
        if !body.get("id").is_some_and(Value::is_string) {
            return Err("an 'id' is required in a seed file".into());
        }
        let policy =
            parse_new_policy(body, rules.strict_values, self.ctx).map_err(|e| e.to_string())?;
        if self
            .store
            .get_policy(self.tenant, &policy.id)
            .await
            .map_err(store_reason)?
            .is_some()
        {
            return Ok(false);
        }
        self.store
            .create_policy(self.tenant, policy)
            .await
            .map_err(store_reason)?;
        Ok(true)
    }

    async fn tenant_setting(&self, kind: TenantSetting, body: Value) -> Result<bool, String> {
        let patch = kind.parse_patch(body).map_err(|e| e.to_string())?;
        if self
            .store
            .get_tenant_setting(self.tenant, kind)
            .await
            .map_err(store_reason)?
            .is_some()
        {
            return Ok(false);
        }
        self.store
            .patch_tenant_setting(self.tenant, kind, patch, self.ctx)
            .await
            .map_err(store_reason)?;
        Ok(true)
    }
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

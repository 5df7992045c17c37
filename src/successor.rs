//! Rehearsing Microsoft's move to Agent 365: every agent instance of a
//! tenant (with the card manifest it links) copied into an agent
//! registration with the same id, through the domain's mapping
//! ([`crate::domain::migration`]) and the store's registration writes.
//! Running it again updates what changed and duplicates nothing.

use crate::domain::WriteContext;
use crate::domain::migration::registration_from;
use crate::odata::filter;
use crate::store::{Criteria, Entity, ListQuery, Relation, Section, Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Instances read at a time.
const CHUNK: usize = 500;

/// What happened (or, in a dry run, would happen) to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    pub action: Action,
    /// Why an instance is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A tenant's migration: counts, each instance's step, and how many
/// instances had a value in each property that has no home.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub tenant: String,
    pub dry_run: bool,
    pub instances: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub steps: Vec<Step>,
    pub unmapped: BTreeMap<&'static str, u64>,
}

impl Report {
    fn record(&mut self, id: &str, action: Action, reason: Option<String>) {
        match action {
            Action::Create => self.created += 1,
            Action::Update => self.updated += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Skip => self.skipped += 1,
        }
        self.steps.push(Step {
            id: id.to_owned(),
            action,
            reason,
        });
    }
}

/// Whether a stored registration already holds every mapped value.
fn holds(stored: &Map<String, Value>, props: &Map<String, Value>) -> bool {
    props
        .iter()
        .all(|(k, v)| stored.get(k).unwrap_or(&Value::Null) == v)
}

/// The registration (other than `id`) holding `source`, if any.
async fn source_holder(
    store: &dyn Store,
    tenant: &str,
    source: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let q = ListQuery {
        criteria: Criteria {
            filter: Some(filter::equals("sourceAgentId", source)),
            search: None,
        },
        ..ListQuery::first(2)
    };
    let page = store
        .list_entities(Entity::Registration, tenant, Relation::All, &q)
        .await?;
    Ok(page.items.into_iter().map(|s| s.id).find(|h| h != id))
}

/// Copies the instances of `tenant` into registrations (or, with
/// `dry_run`, only says what it would do).
pub async fn migrate_tenant(
    store: &dyn Store,
    tenant: &str,
    now: &str,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let mut report = Report {
        tenant: tenant.to_owned(),
        dry_run,
        ..Report::default()
    };
    let ctx = WriteContext {
        now: now.to_owned(),
        ..WriteContext::default()
    };
    let mut manifests: HashMap<String, Option<Map<String, Value>>> = HashMap::new();
    // In a dry run nothing is written, so the source ids planned so far stand
    // in for the registrations the run would have created.
    let mut planned: HashMap<String, String> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let (state, next) = store
            .export_section(tenant, Section::Instances, after.as_deref(), CHUNK)
            .await?;
        for (instance, link) in &state.instances {
            report.instances += 1;
            let id = instance
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let manifest = match link {
                Some(m) => {
                    if !manifests.contains_key(m) {
                        let doc = store
                            .get_entity(Entity::Manifest, tenant, m)
                            .await?
                            .map(|s| s.parse());
                        manifests.insert(m.clone(), doc);
                    }
                    manifests[m].as_ref()
                }
                None => None,
            };
            let mapped = match registration_from(instance, manifest) {
                Ok(m) => m,
                Err(e) => {
                    report.record(id, Action::Skip, Some(e.to_string()));
                    continue;
                }
            };
            for field in &mapped.unmapped {
                *report.unmapped.entry(field).or_default() += 1;
            }
            let existing = store.get_entity(Entity::Registration, tenant, id).await?;
            let action = match &existing {
                Some(s) if holds(&s.parse(), &mapped.write.props) => Action::Unchanged,
                Some(_) => Action::Update,
                None => Action::Create,
            };
            if action == Action::Unchanged {
                report.record(id, action, None);
                continue;
            }
            if dry_run {
                let source = mapped
                    .write
                    .props
                    .get("sourceAgentId")
                    .and_then(Value::as_str);
                let holder = match source {
                    Some(s) => match planned.get(s) {
                        Some(h) if h != id => Some(h.clone()),
                        _ => source_holder(store, tenant, s, id).await?,
                    },
                    None => None,
                };
                match (holder, source) {
                    (Some(h), Some(s)) => {
                        let reason = format!("sourceAgentId '{s}' is registered as '{h}'");
                        report.record(id, Action::Skip, Some(reason));
                    }
                    _ => {
                        if let Some(s) = source {
                            planned.insert(s.to_owned(), id.to_owned());
                        }
                        report.record(id, action, None);
                    }
                }
                continue;
            }
            let result = match action {
                Action::Update => store
                    .update_registration(tenant, id, mapped.write.props, &ctx)
                    .await
                    .map(|_| ()),
                _ => store
                    .create_registration(tenant, id, mapped.write, &ctx)
                    .await
                    .map(|_| ()),
            };
            match result {
                Ok(()) => report.record(id, action, None),
                Err(e @ (StoreError::SourceAgentIdTaken { .. } | StoreError::Rejected(_))) => {
                    report.record(id, Action::Skip, Some(e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        match next {
            Some(key) => after = Some(key),
            None => break,
        }
    }
    Ok(report)
}

//! Whole tenants, written once over [`TenantRows`]: read back for snapshots
//! and `agentry export` (whole, or a section a chunk at a time), and written
//! for restores, resets and seed files, inside the caller's transaction so
//! that an import commits or rolls back whole.

use super::write::{Rows, ensure_source_agent_free, insert_entity, not_found, record_changes};
use super::{Entity, ImportMode, ImportReport, Section, TenantState, member_key, split_member_key};
use crate::domain::audit::{Action, Change};
use crate::domain::copilot::{Policy, TenantSetting};
use crate::domain::subscriptions::ChangeType;
use crate::domain::{RESERVED_COLLECTIONS, reserved_collection_document};
use serde_json::{Map, Value};

/// The rows of whole tenants, besides the registry's ([`Rows`]).
pub(super) trait TenantRows: Rows {
    /// Deletes every row the tenant has in [`super::TENANT_TABLES`].
    async fn clear(&mut self, tenant: &str) -> Result<(), Self::Error>;
    /// Up to `limit` documents of `kind` in id order after `after`, as
    /// stored text, each with the manifest it links (instances only).
    async fn documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, Self::Error>;
    /// Up to `limit` (collection, instance) pairs in key order after `after`.
    async fn memberships(
        &mut self,
        tenant: &str,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<(String, String)>, Self::Error>;
    async fn policies(&mut self, tenant: &str) -> Result<Vec<Policy>, Self::Error>;
    /// Inserts a policy unless its id is taken: whether it did.
    async fn insert_policy(&mut self, tenant: &str, policy: &Policy) -> Result<bool, Self::Error>;
    /// The tenant's settings: each one's name and stored text.
    async fn settings(&mut self, tenant: &str) -> Result<Vec<(String, String)>, Self::Error>;
    /// Inserts a setting unless the tenant has it: whether it did.
    async fn insert_setting(
        &mut self,
        tenant: &str,
        name: &str,
        doc: &str,
        now: &str,
    ) -> Result<bool, Self::Error>;

    /// Inserts the documents of `kind` whose ids are free (each with the
    /// manifest it links, instances only), with their side-table rows and
    /// the linked manifests' skill tags, and notes each one inserted among
    /// the write's changes by kind and id alone ([`noted`]); which were
    /// inserted, in order. A link to a missing manifest is `NotFound`.
    async fn insert_documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        docs: &[(&Map<String, Value>, Option<&str>)],
    ) -> Result<Vec<bool>, Self::Error>;

    /// Writes a change log row, made at `now`, for each change the write
    /// has noted (an import's: no audit records).
    async fn log_changes(&mut self, tenant: &str, now: &str) -> Result<(), Self::Error>
    where
        Self: Sized,
    {
        record_changes(self, tenant, now, None, false).await
    }
}

/// An object an import created, as the change log needs it: its kind and
/// id (a bulk load is not audited, so its properties are not copied).
pub(super) fn noted(kind: Entity, id: String) -> Change {
    Change {
        kind,
        id,
        action: Action::Create,
        display_name: None,
        modified: Vec::new(),
        member: None,
    }
}

/// The logged changes among `changes` in runs of one kind and change type,
/// in order, each with its objects' ids: a backend writes the change log of
/// a bulk load one statement per run. Membership changes are not logged.
pub(super) fn change_runs(changes: &[Change]) -> Vec<(Entity, ChangeType, Vec<&str>)> {
    let mut runs: Vec<(Entity, ChangeType, Vec<&str>)> = Vec::new();
    for c in changes {
        let ty = match c.action {
            Action::Create => ChangeType::Created,
            Action::Update => ChangeType::Updated,
            Action::Delete => ChangeType::Deleted,
            Action::AddMember | Action::RemoveMember => continue,
        };
        match runs.last_mut() {
            Some((kind, t, ids)) if *kind == c.kind && *t == ty => ids.push(&c.id),
            _ => runs.push((c.kind, ty, vec![&c.id])),
        }
    }
    runs
}

/// A document as stored text; an unreadable one (never written by us) as empty.
fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn id_of(doc: &Map<String, Value>) -> &str {
    doc.get("id").and_then(Value::as_str).unwrap_or_default()
}

async fn settings<R: TenantRows>(
    r: &mut R,
    tenant: &str,
) -> Result<Vec<(TenantSetting, Map<String, Value>)>, R::Error> {
    Ok(r.settings(tenant)
        .await?
        .into_iter()
        .filter_map(|(name, doc)| {
            let kind = TenantSetting::ALL.into_iter().find(|k| k.key() == name)?;
            Some((kind, object(&doc)))
        })
        .collect())
}

async fn documents<R: TenantRows>(
    r: &mut R,
    kind: Entity,
    tenant: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(Map<String, Value>, Option<String>)>, R::Error> {
    let rows = r.documents(kind, tenant, after, limit).await?;
    Ok(rows
        .into_iter()
        .map(|(d, link)| (object(&d), link))
        .collect())
}

/// Everything the tenant holds (run it in one snapshot).
pub(super) async fn export<R: TenantRows>(
    r: &mut R,
    tenant: &str,
) -> Result<TenantState, R::Error> {
    let all = i64::MAX;
    let unlinked = |rows: Vec<(Map<String, Value>, Option<String>)>| {
        rows.into_iter().map(|(d, _)| d).collect::<Vec<_>>()
    };
    Ok(TenantState {
        manifests: unlinked(documents(r, Entity::Manifest, tenant, "", all).await?),
        instances: documents(r, Entity::Instance, tenant, "", all).await?,
        collections: unlinked(documents(r, Entity::Collection, tenant, "", all).await?),
        members: r.memberships(tenant, ("", ""), all).await?,
        registrations: unlinked(documents(r, Entity::Registration, tenant, "", all).await?),
        packages: unlinked(documents(r, Entity::Package, tenant, "", all).await?),
        policies: r.policies(tenant).await?,
        settings: settings(r, tenant).await?,
    })
}

/// One chunk of a section of a tenant, in key order after `after`; the key
/// to continue from, `None` once the section is done.
pub(super) async fn export_section<R: TenantRows>(
    r: &mut R,
    tenant: &str,
    section: Section,
    after: Option<&str>,
    limit: usize,
) -> Result<(TenantState, Option<String>), R::Error> {
    let mut state = TenantState::default();
    let limit = limit.max(1);
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let from = after.unwrap_or("");
    // The key of the last of `got` rows, when the chunk was full.
    let next = |got: usize, last: Option<String>| if got < limit { None } else { last };
    let cursor = match section {
        Section::Collections
        | Section::Manifests
        | Section::Instances
        | Section::Registrations
        | Section::Packages => {
            let kind = match section {
                Section::Collections => Entity::Collection,
                Section::Manifests => Entity::Manifest,
                Section::Registrations => Entity::Registration,
                Section::Packages => Entity::Package,
                _ => Entity::Instance,
            };
            let rows = documents(r, kind, tenant, from, n).await?;
            let last = rows.last().map(|(d, _)| id_of(d).to_owned());
            let got = rows.len();
            match kind {
                Entity::Instance => state.instances = rows,
                Entity::Manifest => state.manifests = rows.into_iter().map(|(d, _)| d).collect(),
                Entity::Collection => {
                    state.collections = rows.into_iter().map(|(d, _)| d).collect()
                }
                Entity::Registration => {
                    state.registrations = rows.into_iter().map(|(d, _)| d).collect()
                }
                Entity::Package => state.packages = rows.into_iter().map(|(d, _)| d).collect(),
                // The audit log is history, not state: never in a snapshot.
                Entity::Audit => {}
            }
            next(got, last)
        }
        Section::Members => {
            let after = after.map(split_member_key).unwrap_or(("", ""));
            state.members = r.memberships(tenant, after, n).await?;
            let last = state.members.last().map(|(c, i)| member_key(c, i));
            next(state.members.len(), last)
        }
        // A tenant has a handful of these: one chunk each.
        Section::Policies => {
            if after.is_none() {
                state.policies = r.policies(tenant).await?;
            }
            None
        }
        Section::Settings => {
            if after.is_none() {
                state.settings = settings(r, tenant).await?;
            }
            None
        }
    };
    Ok((state, cursor))
}

/// Writes a state into a tenant: replacing what it holds, or adding only
/// what it lacks (ids it has are kept as they are). The reserved
/// collections are stored if missing; a link to a missing object is
/// `NotFound`.
pub(super) async fn import<R: TenantRows>(
    r: &mut R,
    tenant: &str,
    state: &TenantState,
    mode: ImportMode,
    now: &str,
) -> Result<ImportReport, R::Error> {
    let mut report = ImportReport::default();
    if mode == ImportMode::Replace {
        r.clear(tenant).await?;
    }
    let mut count = |created: bool| {
        if created {
            report.created += 1;
        } else {
            report.kept += 1;
        }
    };
    fn unlinked(docs: &[Map<String, Value>]) -> Vec<(&Map<String, Value>, Option<&str>)> {
        docs.iter().map(|d| (d, None)).collect()
    }
    let instances: Vec<_> = state
        .instances
        .iter()
        .map(|(d, link)| (d, link.as_deref()))
        .collect();
    for (kind, docs) in [
        (Entity::Manifest, unlinked(&state.manifests)),
        (Entity::Instance, instances),
        (Entity::Collection, unlinked(&state.collections)),
    ] {
        if docs.is_empty() {
            continue;
        }
        for created in r.insert_documents(kind, tenant, &docs).await? {
            count(created);
        }
    }
    for c in &RESERVED_COLLECTIONS {
        let doc = reserved_collection_document(c, now);
        insert_entity(r, Entity::Collection, tenant, &doc, None, true).await?;
    }
    for (collection, instance) in &state.members {
        for (kind, id) in [
            (Entity::Collection, collection),
            (Entity::Instance, instance),
        ] {
            if !r.exists(kind, tenant, id, true).await? {
                return Err(not_found(kind, id).into());
            }
        }
        count(r.insert_member(tenant, collection, instance).await?);
    }
    for doc in &state.registrations {
        let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        ensure_source_agent_free(r, tenant, id, doc).await?;
        let created = insert_entity(r, Entity::Registration, tenant, doc, None, true).await?;
        count(created.is_some());
    }
    for doc in &state.packages {
        let created = insert_entity(r, Entity::Package, tenant, doc, None, true).await?;
        count(created.is_some());
    }
    for policy in &state.policies {
        count(r.insert_policy(tenant, policy).await?);
    }
    for (kind, doc) in &state.settings {
        let text = Value::Object(doc.clone()).to_string();
        count(r.insert_setting(tenant, kind.key(), &text, now).await?);
    }
    match mode {
        // What a merge adds, delta clients must see; a bulk load is not
        // audited object by object.
        ImportMode::Merge => r.log_changes(tenant, now).await?,
        // A replaced tenant starts a new horizon ([`TenantRows::clear`]):
        // every delta token from before must resync.
        ImportMode::Replace => r.changes().clear(),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_runs_split_where_the_kind_or_the_change_type_changes_and_skip_memberships() {
        let change = |kind, id: &str, action| Change {
            action,
            ..noted(kind, id.to_owned())
        };
        let changes = [
            change(Entity::Manifest, "m1", Action::Create),
            change(Entity::Manifest, "m2", Action::Create),
            change(Entity::Instance, "i1", Action::Create),
            change(Entity::Collection, "c", Action::AddMember),
            change(Entity::Instance, "i2", Action::Create),
            change(Entity::Instance, "i3", Action::Update),
            change(Entity::Instance, "i1", Action::Delete),
        ];
        let runs = change_runs(&changes);
        let expected = [
            (Entity::Manifest, ChangeType::Created, vec!["m1", "m2"]),
            (Entity::Instance, ChangeType::Created, vec!["i1", "i2"]),
            (Entity::Instance, ChangeType::Updated, vec!["i3"]),
            (Entity::Instance, ChangeType::Deleted, vec!["i1"]),
        ];
        assert_eq!(runs, expected);
    }
}

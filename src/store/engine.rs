//! The registry's storage, written once: [`RegistryStore`] for every
//! [`Backend`]. A backend provides transactions for [`Write`]s (which it
//! runs with [`super::write::apply`] over its own rows), reads by id and
//! pages; the rules of which call does what (the reserved collections, the
//! shape of each write) live here and in `write`.

use super::write::{Write, Written};
use super::{
    ChangeWindow, Criteria, Entity, ListQuery, LoggedChange, Page, RegistryStore, Relation,
    StoreError, Stored,
};
use crate::clock::SharedClock;
use crate::domain::{EntityWrite, WriteContext};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::future::Future;
use std::sync::RwLock;

/// What a storage backend does its own way. Public in a private module:
/// nothing outside the store can name it.
pub trait Backend: Send + Sync + 'static {
    /// Runs one registry write as one transaction.
    fn write(&self, op: Write) -> impl Future<Output = Result<Written, StoreError>> + Send;
    /// An entity by id.
    fn get(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;
    /// Entities by id, in the order of `ids`: one by one unless the backend
    /// has a better way.
    fn get_many(
        &self,
        kind: Entity,
        tenant: &str,
        ids: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<Stored>>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.get(kind, tenant, id).await?);
            }
            Ok(out)
        }
    }
    /// The manifest an instance links; `NotFound` for a missing instance.
    fn linked_manifest(
        &self,
        tenant: &str,
        instance: &str,
    ) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;
    fn is_member(
        &self,
        tenant: &str,
        collection: &str,
        instance: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// One page of `kind` along `relation`, as one snapshot (see [`ListQuery`]).
    fn list(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
    fn count(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Tenants whose reserved collections are known to be stored.
    fn seeded(&self) -> &RwLock<HashSet<String>>;
    /// Stamps what the store creates on its own.
    fn clock(&self) -> &SharedClock;
    /// See [`RegistryStore::change_position`].
    fn change_position(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// See [`RegistryStore::changes`].
    fn changes(
        &self,
        kind: Entity,
        tenant: &str,
        window: &ChangeWindow,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LoggedChange>, StoreError>> + Send;
}

/// Stores the tenant's Global and Quarantined collections if missing, once
/// per tenant and process.
pub(super) async fn ensure_reserved(b: &impl Backend, tenant: &str) -> Result<(), StoreError> {
    if b.seeded()
        .read()
        .expect("seed set poisoned")
        .contains(tenant)
    {
        return Ok(());
    }
    let now = crate::clock::entity_timestamp(b.clock().now());
    b.write(Write::EnsureReserved {
        tenant: tenant.to_owned(),
        now,
    })
    .await?;
    b.seeded()
        .write()
        .expect("seed set poisoned")
        .insert(tenant.to_owned());
    Ok(())
}

/// Whether a list or count along `relation` reads collections, which the
/// reserved ones must be among.
fn needs_reserved(kind: Entity, relation: Relation<'_>) -> bool {
    kind == Entity::Collection || matches!(relation, Relation::MembersOf(_))
}

/// A PATCH merged into the stored entity of `table` (every set without links).
async fn update_plain(
    backend: &impl Backend,
    table: Entity,
    tenant: &str,
    id: &str,
    props: Map<String, Value>,
    ctx: &WriteContext,
) -> Result<Stored, StoreError> {
    let op = Write::UpdatePlain {
        table,
        tenant: tenant.to_owned(),
        id: id.to_owned(),
        props,
        ctx: ctx.clone(),
    };
    entity(backend, op).await
}

async fn entity(b: &impl Backend, op: Write) -> Result<Stored, StoreError> {
    match b.write(op).await? {
        Written::Entity(stored) => Ok(stored),
        Written::Done => Err(StoreError::Internal(
            "a write that returns an entity returned none".into(),
        )),
    }
}

async fn done(b: &impl Backend, op: Write) -> Result<(), StoreError> {
    b.write(op).await.map(|_| ())
}

#[async_trait]
impl<B: Backend> RegistryStore for B {
    async fn get_entity(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        if kind == Entity::Collection {
            ensure_reserved(self, tenant).await?;
        }
        self.get(kind, tenant, id).await
    }

    async fn get_entities(
        &self,
        kind: Entity,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<Stored>>, StoreError> {
        if kind == Entity::Collection {
            ensure_reserved(self, tenant).await?;
        }
        self.get_many(kind, tenant, ids).await
    }

    async fn delete_entity(
        &self,
        kind: Entity,
        tenant: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        let op = Write::Delete {
            table: kind,
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            ctx: ctx.clone(),
        };
        done(self, op).await
    }

    async fn list_entities(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        q: &ListQuery,
    ) -> Result<Page, StoreError> {
        if needs_reserved(kind, relation) {
            ensure_reserved(self, tenant).await?;
        }
        self.list(kind, tenant, relation, q).await
    }

    async fn count_entities(
        &self,
        kind: Entity,
        tenant: &str,
        relation: Relation<'_>,
        criteria: &Criteria,
    ) -> Result<u64, StoreError> {
        if needs_reserved(kind, relation) {
            ensure_reserved(self, tenant).await?;
        }
        self.count(kind, tenant, relation, criteria).await
    }

    async fn create_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        entity(
            self,
            Write::CreateInstance {
                tenant,
                id,
                write,
                ctx,
            },
        )
        .await
    }

    async fn update_instance(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        entity(
            self,
            Write::UpdateInstance {
                tenant,
                id,
                write,
                ctx,
            },
        )
        .await
    }

    async fn get_instance_manifest(
        &self,
        tenant: &str,
        instance_id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.linked_manifest(tenant, instance_id).await
    }

    async fn create_manifest(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        entity(
            self,
            Write::CreateManifest {
                tenant,
                id,
                write,
                ctx,
            },
        )
        .await
    }

    async fn update_manifest(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        update_plain(self, Entity::Manifest, tenant, id, props, ctx).await
    }

    async fn create_registration(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        entity(
            self,
            Write::CreateRegistration {
                tenant,
                id,
                write,
                ctx,
            },
        )
        .await
    }

    async fn update_registration(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        update_plain(self, Entity::Registration, tenant, id, props, ctx).await
    }

    async fn create_package(
        &self,
        tenant: &str,
        doc: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        let tenant = tenant.to_owned();
        let ctx = ctx.clone();
        entity(self, Write::CreatePackage { tenant, doc, ctx }).await
    }

    async fn update_package(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        update_plain(self, Entity::Package, tenant, id, props, ctx).await
    }

    async fn create_collection(
        &self,
        tenant: &str,
        id: &str,
        write: EntityWrite,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        ensure_reserved(self, tenant).await?;
        let (tenant, id, ctx) = (tenant.to_owned(), id.to_owned(), ctx.clone());
        entity(
            self,
            Write::CreateCollection {
                tenant,
                id,
                write,
                ctx,
            },
        )
        .await
    }

    async fn update_collection(
        &self,
        tenant: &str,
        id: &str,
        props: Map<String, Value>,
        ctx: &WriteContext,
    ) -> Result<Stored, StoreError> {
        ensure_reserved(self, tenant).await?;
        update_plain(self, Entity::Collection, tenant, id, props, ctx).await
    }

    async fn add_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        ensure_reserved(self, tenant).await?;
        let op = Write::AddMember {
            tenant: tenant.to_owned(),
            collection: collection_id.to_owned(),
            instance: instance_id.to_owned(),
            ctx: ctx.clone(),
        };
        done(self, op).await
    }

    async fn change_position(&self, tenant: &str) -> Result<String, StoreError> {
        // The reserved collections exist before any position is handed out,
        // so a first round does not see them created again in the next.
        ensure_reserved(self, tenant).await?;
        Backend::change_position(self, tenant).await
    }

    async fn changes(
        &self,
        kind: Entity,
        tenant: &str,
        window: &ChangeWindow,
        limit: usize,
    ) -> Result<Vec<LoggedChange>, StoreError> {
        Backend::changes(self, kind, tenant, window, limit).await
    }

    async fn prune_audit_log(&self, before: &str) -> Result<(), StoreError> {
        let op = Write::PruneAuditLog {
            before: before.to_owned(),
        };
        done(self, op).await
    }

    async fn record_event(
        &self,
        tenant: &str,
        event: crate::domain::audit::Event,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        let op = Write::Record {
            tenant: tenant.to_owned(),
            event,
            ctx: ctx.clone(),
        };
        done(self, op).await
    }

    async fn remove_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        ensure_reserved(self, tenant).await?;
        let op = Write::RemoveMember {
            tenant: tenant.to_owned(),
            collection: collection_id.to_owned(),
            instance: instance_id.to_owned(),
            ctx: ctx.clone(),
        };
        done(self, op).await
    }

    async fn is_member(
        &self,
        tenant: &str,
        collection_id: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        ensure_reserved(self, tenant).await?;
        Backend::is_member(self, tenant, collection_id, instance_id).await
    }
}

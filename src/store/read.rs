//! The registry's pages and counts, written once over [`Reads`]: the
//! relation's anchor checked, the page read, counted and expanded, all in
//! the snapshot the backend runs them in.

use super::sql::{Compiled, Source};
use super::write::not_found;
use super::{Criteria, EXPANDED_LIMIT, Entity, ListQuery, Navigation, Page, Relation, Stored};
use crate::domain::schema::EntityType;
use crate::odata::Cursor;
use serde_json::Value;

/// The reads a backend runs on one connection (inside a snapshot when the
/// caller made one).
pub(super) trait Reads {
    /// What a step fails with (see [`super::write::Rows::Error`]).
    type Error: From<super::StoreError>;

    /// Whether the row exists; with `hold`, it cannot be deleted or changed
    /// by others until the transaction ends.
    async fn exists(
        &mut self,
        table: Entity,
        tenant: &str,
        id: &str,
        hold: bool,
    ) -> Result<bool, Self::Error>;
    /// The manifest an instance links; `NotFound` for a missing instance.
    async fn linked_manifest(
        &mut self,
        tenant: &str,
        instance: &str,
    ) -> Result<Option<Stored>, Self::Error>;
    /// The rows of a page statement: each entity and its sort values.
    async fn rows(&mut self, page: &Compiled) -> Result<Vec<(Stored, Vec<Value>)>, Self::Error>;
    /// The number a count statement answers.
    async fn number(&mut self, count: &Compiled) -> Result<u64, Self::Error>;
    /// The backend's page statement (its own: see its `query` module).
    fn page_statement(
        tenant: &str,
        ty: &'static EntityType,
        source: Source<'_>,
        q: &ListQuery,
    ) -> Compiled;
    /// The backend's SQL dialect.
    type Dialect: super::sql::Dialect;
}

/// The source a relation lists, after checking its anchor exists.
async fn source<'a, R: Reads>(
    r: &mut R,
    tenant: &str,
    listing: Entity,
    relation: Relation<'a>,
) -> Result<Source<'a>, R::Error> {
    Ok(match relation {
        Relation::MembersOf(cid) if listing == Entity::Instance => {
            if !r.exists(Entity::Collection, tenant, cid, false).await? {
                return Err(not_found(Entity::Collection, cid).into());
            }
            Source::MembersOf(cid)
        }
        Relation::CollectionsOf(iid) if listing == Entity::Collection => {
            if !r.exists(Entity::Instance, tenant, iid, false).await? {
                return Err(not_found(Entity::Instance, iid).into());
            }
            Source::CollectionsOf(iid)
        }
        _ => Source::Table(listing.table()),
    })
}

/// A page of rows read one more than `limit`: whether more follow, and the
/// cursor of the last one kept.
fn assemble(rows: Vec<(Stored, Vec<Value>)>, limit: usize) -> Page {
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for (stored, values) in rows.into_iter().take(limit) {
        last = Some(Cursor {
            values,
            id: stored.id.clone(),
        });
        items.push(stored);
    }
    Page {
        items,
        more,
        last,
        ..Page::default()
    }
}

/// One page of `listing` along `relation`, its count when asked, and the
/// entities along each navigation of `q.expand`.
pub(super) async fn page<R: Reads>(
    r: &mut R,
    tenant: &str,
    listing: Entity,
    relation: Relation<'_>,
    q: &ListQuery,
) -> Result<Page, R::Error> {
    let ty = listing.ty();
    let source = source(r, tenant, listing, relation).await?;
    let rows = r.rows(&R::page_statement(tenant, ty, source, q)).await?;
    let mut page = assemble(rows, q.limit);
    if q.count {
        let count = super::sql::count::<R::Dialect>(tenant, ty, source, &q.criteria);
        page.count = Some(r.number(&count).await?);
    }
    page.related = expand(r, tenant, &page.items, &q.expand).await?;
    Ok(page)
}

/// The number of `listing` along `relation` matching `criteria`.
pub(super) async fn count<R: Reads>(
    r: &mut R,
    tenant: &str,
    listing: Entity,
    relation: Relation<'_>,
    criteria: &Criteria,
) -> Result<u64, R::Error> {
    let source = source(r, tenant, listing, relation).await?;
    r.number(&super::sql::count::<R::Dialect>(
        tenant,
        listing.ty(),
        source,
        criteria,
    ))
    .await
}

/// The entities along each navigation of `expand` from each of `items`.
async fn expand<R: Reads>(
    r: &mut R,
    tenant: &str,
    items: &[Stored],
    expand: &[Navigation],
) -> Result<Vec<Vec<Vec<Stored>>>, R::Error> {
    if expand.is_empty() {
        return Ok(Vec::new());
    }
    let first = ListQuery::first(EXPANDED_LIMIT);
    let mut related = Vec::with_capacity(items.len());
    for item in items {
        let mut along = Vec::with_capacity(expand.len());
        for nav in expand {
            let (listing, source) = match nav {
                Navigation::Manifest => {
                    let manifest = r.linked_manifest(tenant, &item.id).await?;
                    along.push(manifest.into_iter().collect());
                    continue;
                }
                Navigation::Collections => (Entity::Collection, Source::CollectionsOf(&item.id)),
                Navigation::Members => (Entity::Instance, Source::MembersOf(&item.id)),
            };
            let statement = R::page_statement(tenant, listing.ty(), source, &first);
            let rows = r.rows(&statement).await?;
            along.push(assemble(rows, first.limit).items);
        }
        related.push(along);
    }
    Ok(related)
}

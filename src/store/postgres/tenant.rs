//! Whole tenants in PostgreSQL: the rows [`crate::store::tenant`] reads and
//! writes (an import is one transaction, so it commits or rolls back whole).

use super::{Fail, PgRows, Step, policies};
use crate::domain::copilot::Policy;
use crate::store::tenant::{TenantRows, change_runs, noted};
use crate::store::write::{Rows, column_values, not_found, side_values, text};
use crate::store::{Entity, TENANT_TABLES, statements};
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use std::collections::HashSet;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

impl<C: GenericClient + Sync> TenantRows for PgRows<'_, C> {
    async fn clear(&mut self, tenant: &str) -> Step<()> {
        for table in TENANT_TABLES {
            self.0
                .execute(&statements::clear(table), &[&tenant])
                .await?;
        }
        super::changes::clear(self.0, tenant).await
    }

    async fn documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        after: &str,
        limit: i64,
    ) -> Step<Vec<(String, Option<String>)>> {
        let link = if kind == Entity::Instance {
            "manifest_id"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT doc::text, {link} FROM {} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            kind.table()
        );
        let stmt = self.0.prepare_cached(&sql).await?;
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &[&tenant, &after, &limit]).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn memberships(
        &mut self,
        tenant: &str,
        (collection, instance): (&str, &str),
        limit: i64,
    ) -> Step<Vec<(String, String)>> {
        let stmt = self.0.prepare_cached(statements::MEMBERSHIPS_AFTER).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&tenant, &collection, &instance, &limit];
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &params).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn policies(&mut self, tenant: &str) -> Step<Vec<Policy>> {
        policies::list(self.0, tenant).await
    }

    async fn insert_policy(&mut self, tenant: &str, policy: &Policy) -> Step<bool> {
        policies::insert_row(self.0, tenant, policy, true).await
    }

    async fn settings(&mut self, tenant: &str) -> Step<Vec<(String, String)>> {
        let stmt = self
            .0
            .prepare_cached(
                "SELECT name, doc::text FROM copilot_tenant_settings
                 WHERE tenant_id = $1 ORDER BY name",
            )
            .await?;
        let mut out = Vec::new();
        for r in self.0.query(&stmt, &[&tenant]).await? {
            out.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(out)
    }

    async fn insert_setting(
        &mut self,
        tenant: &str,
        name: &str,
        doc: &str,
        now: &str,
    ) -> Step<bool> {
        let stmt = self
            .0
            .prepare_cached(
                "INSERT INTO copilot_tenant_settings (tenant_id, name, modified_at, doc)
                 VALUES ($1, $2, $3, $4::text::json) ON CONFLICT DO NOTHING",
            )
            .await?;
        Ok(self.0.execute(&stmt, &[&tenant, &name, &now, &doc]).await? > 0)
    }

    /// A few statements for the lot, whatever their number: each array
    /// parameter carries one column of every row (`unnest`), so a batch
    /// costs a handful of round trips instead of several per object.
    ///
    /// A load usually brings ids the database does not hold, so the rows go
    /// in first as plain INSERTs under a savepoint: `ON CONFLICT DO NOTHING`
    /// checks each key before inserting and confirms the row after, which
    /// made these statements about half as costly again. An id already
    /// stored, or given twice, fails them with a unique violation; the batch
    /// then goes back to the savepoint and runs again skipping the taken ids.
    async fn insert_documents(
        &mut self,
        kind: Entity,
        tenant: &str,
        docs: &[(&Map<String, Value>, Option<&str>)],
    ) -> Step<Vec<bool>> {
        let c = self.0;
        if kind == Entity::Instance {
            hold_manifests(c, tenant, docs).await?;
        }
        let batch = DocumentBatch::new(kind, docs);
        c.batch_execute("SAVEPOINT agentry_import").await?;
        let inserted = match batch.insert(c, tenant, false).await {
            Ok(inserted) => {
                c.batch_execute("RELEASE SAVEPOINT agentry_import").await?;
                inserted
            }
            Err(Fail::Db(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                c.batch_execute("ROLLBACK TO SAVEPOINT agentry_import")
                    .await?;
                batch.insert(c, tenant, true).await?
            }
            Err(e) => return Err(e),
        };
        for (id, _) in batch.ids.iter().zip(&inserted).filter(|(_, i)| **i) {
            self.1.push(noted(kind, (*id).to_owned()));
        }
        Ok(inserted)
    }

    /// One statement per run of changes of one kind and type.
    async fn log_changes(&mut self, tenant: &str, now: &str) -> Step<()> {
        let changes = std::mem::take(self.changes());
        let stmt = self
            .0
            .prepare_cached(
                "INSERT INTO change_log (tenant_id, entity, id, change, at)
                 SELECT $1, $2, i, $3, $4 FROM unnest($5::text[]) WITH ORDINALITY AS u(i, n)
                 ORDER BY n",
            )
            .await?;
        for (kind, ty, ids) in change_runs(&changes) {
            self.0
                .execute(
                    &stmt,
                    &[&tenant, &kind.ty().entity_set, &ty.code(), &now, &ids],
                )
                .await?;
        }
        Ok(())
    }
}

/// Locks the manifests the instances of `docs` link, as `exists(…, hold)`
/// does, so that none is deleted before the import commits; a missing one
/// is `NotFound`.
async fn hold_manifests(
    c: &impl GenericClient,
    tenant: &str,
    docs: &[(&Map<String, Value>, Option<&str>)],
) -> Step<()> {
    let mut wanted: Vec<&str> = docs.iter().filter_map(|(_, l)| *l).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(());
    }
    let stmt = c
        .prepare_cached(
            "SELECT id FROM agent_card_manifests
             WHERE tenant_id = $1 AND id = ANY($2::text[]) FOR SHARE",
        )
        .await?;
    let found: HashSet<String> = c
        .query(&stmt, &[&tenant, &wanted])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    match docs
        .iter()
        .filter_map(|(_, l)| *l)
        .find(|m| !found.contains(*m))
    {
        Some(m) => Err(not_found(Entity::Manifest, m).into()),
        None => Ok(()),
    }
}

/// The documents of one kind an import writes together, as the columns of
/// their rows.
struct DocumentBatch<'d> {
    kind: Entity,
    ids: Vec<&'d str>,
    created: Vec<&'d str>,
    modified: Vec<&'d str>,
    bodies: Vec<String>,
    links: Vec<Option<&'d str>>,
    /// The indexed columns of [`Entity::columns`], each over every row.
    columns: Vec<Vec<Option<&'d str>>>,
    /// The side-table values ([`side_values`]), each with its row.
    side: Vec<(usize, &'d str)>,
}

impl<'d> DocumentBatch<'d> {
    /// One pass over the documents, each read whole while it is in the
    /// processor's cache: one pass per column over tens of thousands of
    /// parsed documents made every property lookup a cache miss.
    fn new(kind: Entity, docs: &'d [(&'d Map<String, Value>, Option<&'d str>)]) -> Self {
        let (created_at, modified_at) = kind.timestamps();
        let n = docs.len();
        let mut batch = DocumentBatch {
            kind,
            ids: Vec::with_capacity(n),
            created: Vec::with_capacity(n),
            modified: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            links: Vec::with_capacity(n),
            columns: vec![Vec::with_capacity(n); kind.columns().len()],
            side: Vec::new(),
        };
        for (row, &(doc, link)) in docs.iter().enumerate() {
            batch
                .bodies
                .push(serde_json::to_string(doc).unwrap_or_else(|_| "{}".into()));
            batch.ids.push(text(doc, "id").unwrap_or_default());
            batch
                .created
                .push(text(doc, created_at).unwrap_or_default());
            batch
                .modified
                .push(text(doc, modified_at).unwrap_or_default());
            batch.links.push(link);
            for (column, value) in batch.columns.iter_mut().zip(column_values(kind, doc)) {
                column.push(value);
            }
            // A value listed twice (two skills with one tag) is one row.
            let first = batch.side.len();
            for v in side_values(kind, doc) {
                if !batch.side[first..].iter().any(|&(_, w)| w == v) {
                    batch.side.push((row, v));
                }
            }
        }
        batch
    }

    /// Inserts the rows, their side-table rows and the instances' copied
    /// skill tags: which rows were inserted, in order. Without `skip_taken`
    /// every row must be new (a taken key fails the statement); with it, a
    /// row whose id is taken is skipped, and an id given twice counts as
    /// inserted once.
    async fn insert(
        &self,
        c: &impl GenericClient,
        tenant: &str,
        skip_taken: bool,
    ) -> Step<Vec<bool>> {
        let kind = self.kind;
        let linked = kind == Entity::Instance;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &tenant,
            &self.ids,
            &self.created,
            &self.modified,
            &self.bodies,
        ];
        let mut arrays = String::from("$2::text[], $3::text[], $4::text[], $5::text[]");
        let mut names = String::from("id, c, m, doc");
        if linked {
            params.push(&self.links);
            arrays.push_str(", $6::text[]");
            names.push_str(", link");
        }
        for (n, values) in self.columns.iter().enumerate() {
            params.push(values);
            arrays.push_str(&format!(", ${}::text[]", params.len()));
            names.push_str(&format!(", c{n}"));
        }
        let picked: String = (0..self.columns.len())
            .map(|n| format!(", u.c{n}"))
            .collect();
        let sql = format!(
            "INSERT INTO {} (tenant_id, id, created_at, modified_at, version, doc{}{})
             SELECT $1, u.id, u.c, u.m, 1, u.doc::json{}{picked}
             FROM unnest({arrays}) AS u({names}){}",
            kind.table(),
            if linked { ", manifest_id" } else { "" },
            kind.column_list(0, false),
            if linked { ", u.link" } else { "" },
            if skip_taken {
                " ON CONFLICT DO NOTHING RETURNING id"
            } else {
                ""
            },
        );
        let stmt = c.prepare_cached(&sql).await?;
        let inserted: Vec<bool> = if skip_taken {
            let mut fresh: HashSet<String> = c
                .query(&stmt, &params)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            // In order; an id given twice counts as inserted once.
            self.ids.iter().map(|id| fresh.remove(*id)).collect()
        } else {
            c.execute(&stmt, &params).await?;
            vec![true; self.ids.len()]
        };
        let conflicts = if skip_taken {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        };
        let (keys, values): (Vec<&str>, Vec<&str>) = self
            .side
            .iter()
            .filter(|(row, _)| inserted[*row])
            .map(|&(row, v)| (self.ids[row], v))
            .unzip();
        let (tagged, tag_links): (Vec<&str>, Vec<&str>) = self
            .ids
            .iter()
            .zip(&self.links)
            .zip(&inserted)
            .filter_map(|((&id, link), &i)| Some((id, (*link).filter(|_| i)?)))
            .unzip();
        if let (false, Some((_, side))) = (keys.is_empty(), statements::side_values(kind)) {
            let sql = format!(
                "INSERT INTO {} (tenant_id, {}, {})
                 SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS u(k, v){conflicts}",
                side.table, side.key, side.value
            );
            let stmt = c.prepare_cached(&sql).await?;
            c.execute(&stmt, &[&tenant, &keys, &values]).await?;
        }
        if !tagged.is_empty() {
            let sql = format!(
                "INSERT INTO agent_instance_skill_tags (tenant_id, instance_id, tag)
                 SELECT $1, u.i, t.tag
                 FROM unnest($2::text[], $3::text[]) AS u(i, m)
                 JOIN agent_card_manifest_skill_tags t
                   ON t.tenant_id = $1 AND t.manifest_id = u.m{conflicts}"
            );
            let stmt = c.prepare_cached(&sql).await?;
            c.execute(&stmt, &[&tenant, &tagged, &tag_links]).await?;
        }
        Ok(inserted)
    }
}

/// Every tenant with objects or application registrations.
pub(super) async fn tenants(c: &impl GenericClient) -> Step<Vec<String>> {
    let rows = c.query(&statements::tenants(), &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.try_get(0)?);
    }
    Ok(out)
}

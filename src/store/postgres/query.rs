//! Page and count queries for PostgreSQL: a stand-in that answers unfiltered
//! lists in id order only, until the full OData translation lands in this
//! file with the same interface.

use crate::domain::schema::EntityType;
use crate::store::{Criteria, ListQuery};
use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// What a list reads from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    /// Every row of an entity table.
    Table(&'static str),
    /// The instances that are members of a collection.
    MembersOf(&'a str),
    /// The collections an instance belongs to.
    CollectionsOf(&'a str),
}

/// A statement and its parameters, in order (`$1`, `$2`, …).
#[derive(Debug)]
pub(super) struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

/// One statement parameter.
#[derive(Debug, Clone)]
pub(super) enum Param {
    Text(String),
    Int(i64),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(s) => s.to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// `FROM`, the scope of `WHERE`, and the parameters they use.
fn scope(tenant: &str, source: Source<'_>) -> (String, String, Vec<Param>) {
    let mut params = vec![Param::Text(tenant.to_owned())];
    let (from, scope) = match source {
        Source::Table(table) => (format!("{table} e"), "e.tenant_id = $1".to_owned()),
        Source::MembersOf(cid) => {
            params.push(Param::Text(cid.to_owned()));
            (
                "agent_collection_members r JOIN agent_instances e ON e.tenant_id = r.tenant_id AND e.id = r.instance_id".to_owned(),
                "r.tenant_id = $1 AND r.collection_id = $2".to_owned(),
            )
        }
        Source::CollectionsOf(iid) => {
            params.push(Param::Text(iid.to_owned()));
            (
                "agent_collection_members r JOIN agent_collections e ON e.tenant_id = r.tenant_id AND e.id = r.collection_id".to_owned(),
                "r.tenant_id = $1 AND r.instance_id = $2".to_owned(),
            )
        }
    };
    (from, scope, params)
}

/// The page query: `SELECT id, doc, version` in id order, one row past the page.
pub(super) fn list(
    tenant: &str,
    _ty: &'static EntityType,
    source: Source<'_>,
    q: &ListQuery,
) -> Compiled {
    let (from, mut clauses, mut params) = scope(tenant, source);
    if let Some(cursor) = &q.after {
        params.push(Param::Text(cursor.id.clone()));
        clauses.push_str(&format!(" AND e.id > ${}", params.len()));
    }
    let limit = q.limit.saturating_add(1).min(i64::MAX as usize) as i64;
    let skip = q.skip.min(i64::MAX as usize) as i64;
    params.push(Param::Int(limit));
    params.push(Param::Int(skip));
    let n = params.len();
    Compiled {
        sql: format!(
            "SELECT e.id, e.doc::text, e.version FROM {from} WHERE {clauses} ORDER BY e.id LIMIT ${} OFFSET ${n}",
            n - 1
        ),
        params,
    }
}

/// The count query for the same rows.
pub(super) fn count(
    tenant: &str,
    _ty: &'static EntityType,
    source: Source<'_>,
    _c: &Criteria,
) -> Compiled {
    let (from, clauses, params) = scope(tenant, source);
    Compiled {
        sql: format!("SELECT count(*) FROM {from} WHERE {clauses}"),
        params,
    }
}

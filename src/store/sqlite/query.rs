//! SQLite's dialect of the OData → SQL translation (`store::sql`), and its
//! page and count statements.
//!
//! Properties with their own column (`id`, `displayName`, `managedBy`,
//! `originatingStore`, the timestamps) are read from it, so their filters and
//! sorts use the indexes; any other path reads the JSON document with
//! `json_extract`. Names compare and sort with `COLLATE NOCASE`
//! ([`is_name`]). `ownerIds/any(o: o eq …)` on instances and
//! `skills/any(s: s/tags/any(t: t eq …))` on manifests (also through
//! `agentCardManifest/`) use the side tables. Other lambdas range over
//! `json_each`. Comparisons are written so that they are never SQL NULL:
//! OData's two-valued logic survives `not`. When such a side-table filter
//! holds one value and is one of the filter's top-level `and` operands, the
//! side table drives the page (see [`Driver`]). Every `EXISTS` is written
//! `+EXISTS`: the unary plus keeps SQLite's planner from turning the term
//! into a join, which returned wrong rows and counts where two such terms
//! meet (`ownerIds/any() and agentCardManifest/…/all(…)`).

use super::super::sql::{Builder, Dialect, Kind, Lit, Val, column, is_null, like_escape};
pub(super) use super::super::sql::{Compiled, Source, side_columns};
use crate::domain::schema::EntityType;
use crate::odata::filter::{Func, Literal, Operand};
use crate::odata::{Cursor, Expr};
use crate::store::{Criteria, ListQuery, pages_by_name, side_term};
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use std::borrow::Cow;

impl ToSql for Lit {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Lit::Text(s) => ToSqlOutput::from(s.as_str()),
            Lit::Int(i) => ToSqlOutput::from(*i),
            Lit::Float(f) => ToSqlOutput::from(*f),
            // SQLite keeps booleans as 0 and 1.
            Lit::Bool(b) => ToSqlOutput::from(i64::from(*b)),
        })
    }
}

/// A JSON path (`$."a"."b"`) of schema-checked property names.
fn json_path(segments: &[String]) -> String {
    let mut p = String::from("$");
    for s in segments {
        p.push_str(".\"");
        p.push_str(&s.replace('"', ""));
        p.push('"');
    }
    p.replace('\'', "''")
}

/// An operand as SQL text with no parameter: literals quoted in place.
fn inline(b: &mut Builder<Sqlite>, base: &str, ty: &'static EntityType, o: &Operand) -> String {
    match o {
        Operand::Property(p) => b.value(base, ty, &p.segments).sql,
        Operand::Literal(Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s)) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        Operand::Literal(Literal::Bool(v)) => i64::from(*v).to_string(),
        Operand::Literal(Literal::Number(n)) => format!("{n:?}"),
        Operand::Literal(Literal::Null) => "NULL".into(),
    }
}

/// SQLite: `?` placeholders, `json_extract` and `json_each`, names with
/// `COLLATE NOCASE` (the collation of either side of a comparison applies
/// to both), `LIKE`, which ignores ASCII case already.
pub(super) struct Sqlite;

impl Dialect for Sqlite {
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const EXISTS: &'static str = "+EXISTS";
    const REPEATS: bool = false;

    fn placeholder(_: usize, _: &Lit) -> String {
        "?".into()
    }

    fn doc(base: &str) -> String {
        format!("{base}.doc")
    }

    fn extract(src: &str, segments: &[String], kind: Kind) -> Val {
        let sql = if segments.is_empty() {
            src.to_owned()
        } else {
            format!("json_extract({src}, '{}')", json_path(segments))
        };
        Val { sql, kind }
    }

    fn elements(src: &str, segments: &[String], j: &str) -> String {
        format!("json_each({src}, '{}') AS {j}", json_path(segments))
    }

    fn fold_name(sql: &str) -> String {
        format!("{sql} COLLATE NOCASE")
    }

    fn same(x: &str, y: &str) -> String {
        format!("({x} IS {y})")
    }

    fn different(x: &str, y: &str) -> String {
        format!("({x} IS NOT {y})")
    }

    fn bytewise(sql: String) -> String {
        sql
    }

    fn truthy(x: &Val) -> String {
        format!("({} IS 1)", x.sql)
    }

    fn as_text(x: &Val) -> String {
        x.sql.clone()
    }

    /// Names with their collation; the other side needs none.
    fn compared(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        o: &Operand,
        _fold: bool,
    ) -> Val {
        match o {
            Operand::Property(p) => b.sort_value(base, ty, &p.segments),
            Operand::Literal(l) => b.literal(l),
        }
    }

    fn call(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        func: Func,
        a: &Operand,
        o: &Operand,
    ) -> String {
        if is_null(a) || is_null(o) {
            return "0".into();
        }
        if let (
            Operand::Property(p),
            Operand::Literal(Literal::String(text) | Literal::Guid(text)),
        ) = (a, o)
        {
            let x = b.value(base, ty, &p.segments).sql;
            let esc = like_escape(text);
            let pattern = match func {
                Func::StartsWith => format!("{esc}%"),
                Func::EndsWith => format!("%{esc}"),
                Func::Contains => format!("%{esc}%"),
            };
            let like = b.param(Lit::Text(pattern));
            let mut sql = format!("({x} IS NOT NULL AND {x} LIKE {like} ESCAPE '\\'");
            // A prefix on an indexed column also becomes a range, which the
            // case-insensitive index answers.
            if func == Func::StartsWith
                && p.segments.len() == 1
                && column(ty, &p.segments[0]).is_some()
                && !text.is_empty()
            {
                let lo = b.param(Lit::Text(text.clone()));
                let hi = b.param(Lit::Text(format!("{text}\u{10FFFF}")));
                sql.push_str(&format!(
                    " AND {x} COLLATE NOCASE >= {lo} AND {x} COLLATE NOCASE < {hi}"
                ));
            }
            sql.push(')');
            return sql;
        }
        // Each operand appears more than once below: literals are inlined, not bound.
        let x = inline(b, base, ty, a);
        let y = inline(b, base, ty, o);
        let test = match func {
            Func::StartsWith => format!("substr(lower({x}), 1, length({y})) = lower({y})"),
            Func::EndsWith => {
                format!("(length({y}) = 0 OR substr(lower({x}), -length({y})) = lower({y}))")
            }
            Func::Contains => format!("instr(lower({x}), lower({y})) > 0"),
        };
        format!("({x} IS NOT NULL AND {y} IS NOT NULL AND {test})")
    }

    fn search_subject(x: &Val) -> String {
        x.sql.clone()
    }

    fn search_text(text: &str) -> String {
        text.to_owned()
    }

    fn cursor(_: Kind, v: &serde_json::Value) -> Option<Lit> {
        use serde_json::Value;
        Some(match v {
            Value::Null => return None,
            Value::Bool(b) => Lit::Int(i64::from(*b)),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Lit::Float(n.as_f64().unwrap_or(0.0)), Lit::Int),
            Value::String(s) => Lit::Text(s.clone()),
            other => Lit::Text(other.to_string()),
        })
    }
}

pub(super) fn to_json(v: SqlValue) -> serde_json::Value {
    match v {
        SqlValue::Null => serde_json::Value::Null,
        SqlValue::Integer(i) => i.into(),
        SqlValue::Real(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        }
        SqlValue::Text(s) => s.into(),
        SqlValue::Blob(_) => serde_json::Value::Null,
    }
}

/// A side table that can drive a page: its primary key (tenant, value, id)
/// yields the matching ids already in id order, so a page reads as many rows
/// as it returns however many match, and needs no sort.
struct Driver {
    table: &'static str,
    /// The column holding the entity id.
    key: &'static str,
    /// The column holding the value filtered on.
    column: &'static str,
    value: String,
}

/// A one-value side-table term among the filter's top-level `and`
/// operands, as a [`Driver`], and the filter without it.
fn driver(ty: &'static EntityType, filter: &Expr) -> Option<(Driver, Option<Expr>)> {
    let all = filter.conjuncts();
    let (at, term) = all
        .iter()
        .enumerate()
        .find_map(|(i, e)| Some((i, side_term(ty, e)?)))?;
    let rest = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, e)| e.clone())
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    let (side, value) = term;
    let (table, key, column) = side_columns(side);
    let driver = Driver {
        table,
        key,
        column,
        value,
    };
    Some((driver, rest))
}

/// The page query: `SELECT id, doc, version, <sort values…>`.
pub(super) fn list(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    q: &ListQuery,
) -> Compiled {
    let mut b = Builder::<Sqlite>::new(tenant);
    let by_name = matches!(source, Source::Table(_)) && pages_by_name(ty, q);
    let driven = match source {
        Source::Table(table) if q.order.is_empty() => q
            .criteria
            .filter
            .as_ref()
            .and_then(|f| driver(ty, f))
            .map(|(d, rest)| (table, d, rest)),
        _ => None,
    };
    let (from, scope, id_column, criteria) = match driven {
        Some((table, d, rest)) => {
            let t = b.param(Lit::Text(tenant.to_owned()));
            let v = b.param(Lit::Text(d.value));
            (
                format!(
                    "{} d JOIN {table} e ON e.tenant_id = d.tenant_id AND e.id = d.{}",
                    d.table, d.key
                ),
                format!("d.tenant_id = {t} AND d.{} = {v}", d.column),
                format!("d.{}", d.key),
                Cow::Owned(Criteria {
                    filter: rest,
                    search: q.criteria.search.clone(),
                }),
            )
        }
        None => {
            let (from, scope) = b.source(source);
            (from, scope, "e.id".to_owned(), Cow::Borrowed(&q.criteria))
        }
    };
    let mut clauses = vec![scope];
    b.criteria(ty, &criteria, &mut clauses);
    // Name order is the case-insensitive index's own: no sort.
    let name_key = |base: &str| {
        let sql = format!("{base}.display_name COLLATE NOCASE");
        (
            Val {
                sql,
                kind: Kind::Text,
            },
            false,
        )
    };
    let keys: Vec<(Val, bool)> = if by_name {
        vec![name_key("e")]
    } else {
        q.order
            .iter()
            .map(|k| (b.sort_value("e", ty, &k.path.segments), k.descending))
            .collect()
    };
    if let Some(Cursor { values, id }) = &q.after {
        let after = b.after(&keys, values, id, &id_column);
        clauses.push(after);
    }
    let limit = Lit::Int(q.limit.saturating_add(1).min(i64::MAX as usize) as i64);
    let skip = Lit::Int(q.skip.min(i64::MAX as usize) as i64);
    let order_by = |keys: &[(Val, bool)], id: &str| {
        let mut order: Vec<String> = keys
            .iter()
            .map(|(x, descending)| format!("{}{}", x.sql, if *descending { " DESC" } else { "" }))
            .collect();
        order.push(id.to_owned());
        order.join(", ")
    };
    let filtered =
        q.criteria.filter.is_some() || q.criteria.search.is_some() || !q.order.is_empty();
    if !filtered {
        b.params.push(limit);
        b.params.push(skip);
        return Compiled {
            sql: format!(
                "SELECT e.id, e.doc, e.version FROM {from} WHERE {} ORDER BY e.id LIMIT ? OFFSET ?",
                clauses.join(" AND ")
            ),
            params: b.params,
            sort_columns: 0,
        };
    }
    // Two steps: the page's ids first, which an index can often answer without
    // reading a single document, then only those documents.
    let inner = format!(
        "SELECT e.id FROM {from} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        clauses.join(" AND "),
        order_by(&keys, &id_column)
    );
    let outer_keys: Vec<(Val, bool)> = if by_name {
        vec![name_key("o")]
    } else {
        q.order
            .iter()
            .map(|k| (b.sort_value("o", ty, &k.path.segments), k.descending))
            .collect()
    };
    let mut select = String::from("o.id, o.doc, o.version");
    for (x, _) in &outer_keys {
        select.push_str(", ");
        select.push_str(&x.sql);
    }
    let table = match source {
        Source::Table(t) => t,
        Source::MembersOf(_) => "agent_instances",
        Source::CollectionsOf(_) => "agent_collections",
    };
    let mut params = vec![Lit::Text(tenant.to_owned())];
    params.append(&mut b.params);
    params.push(limit);
    params.push(skip);
    Compiled {
        sql: format!(
            "SELECT {select} FROM {table} o WHERE o.tenant_id = ? AND o.id IN ({inner}) ORDER BY {}",
            order_by(&outer_keys, "o.id")
        ),
        params,
        sort_columns: outer_keys.len(),
    }
}

/// The count statement for the same rows.
pub(super) fn count(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    c: &Criteria,
) -> Compiled {
    super::super::sql::count::<Sqlite>(tenant, ty, source, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_INSTANCE};
    use crate::odata::QueryOptions;

    /// A database with enough rows for the planner's statistics to matter.
    fn analysed() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("plans.db")).unwrap();
        super::super::migrate(&conn).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO agent_instances SELECT 't', printf('i%06d', i), printf('Agent %d', i), printf('app%d', i % 50),
                 printf('store%d', i % 20), printf('m%d', i % 2000), 'x', 'x', 1, '{}' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO agent_card_manifests SELECT 't', printf('m%d', i), printf('Card %d', i), NULL, NULL, 'x', 'x', 1, '{}' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO agent_card_manifest_skill_tags SELECT 't', printf('tag%d', i % 100), printf('m%d', i) FROM n;
             INSERT INTO agent_instance_skill_tags SELECT i.tenant_id, t.tag, i.id FROM agent_instances i
                 JOIN agent_card_manifest_skill_tags t ON t.tenant_id = i.tenant_id AND t.manifest_id = i.manifest_id;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO agent_instance_owners SELECT 't', printf('o%d', i % 500), printf('i%06d', i) FROM n;
             ANALYZE;",
        )
        .unwrap();
        (dir, conn)
    }

    fn plan(
        conn: &rusqlite::Connection,
        ty: &'static EntityType,
        table: &'static str,
        query: &str,
    ) -> String {
        let q = QueryOptions::parse(Some(query)).unwrap();
        q.check_shape(ty, &[]).unwrap();
        let lq = ListQuery {
            criteria: Criteria {
                filter: q.filter.clone(),
                search: q.search.clone(),
            },
            order: q.orderby.clone(),
            limit: 100,
            ..ListQuery::default()
        };
        let c = list("t", ty, Source::Table(table), &lq);
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", c.sql))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(c.params.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .unwrap();
        // One line per node, indented by its depth in the plan tree.
        let mut depth = std::collections::HashMap::new();
        let mut lines = Vec::new();
        for (id, parent, detail) in rows.map(Result::unwrap) {
            let d = depth.get(&parent).map_or(0, |d| d + 1);
            depth.insert(id, d);
            lines.push(format!("{}{detail}", "  ".repeat(d)));
        }
        lines.join("\n")
    }

    /// The query plans of the discovery filters, as `EXPLAIN QUERY PLAN` shows them.
    #[test]
    fn discovery_filters_are_answered_from_indexes() {
        let (_dir, conn) = analysed();
        let table = [
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=id eq 'i000042'",
                "USING PRIMARY KEY (tenant_id=? AND id=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=displayName eq 'Agent 42'",
                "INDEX agent_instances_by_display_name_nocase (tenant_id=? AND display_name=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=displayName ge 'Agent 42' and displayName lt 'Agent 43'",
                "INDEX agent_instances_by_display_name_nocase (tenant_id=? AND display_name>? AND display_name<?)",
            ),
            (
                &AGENT_CARD_MANIFEST,
                "agent_card_manifests",
                "$filter=displayName in ('Card 1', 'card 2')",
                "INDEX agent_card_manifests_by_display_name_nocase (tenant_id=? AND display_name=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=startswith(displayName, 'Agent 1999')",
                "INDEX agent_instances_by_display_name_nocase (tenant_id=? AND display_name>? AND display_name<?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=managedBy eq 'app7'",
                "INDEX agent_instances_by_managed_by (tenant_id=? AND managed_by=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=originatingStore eq 'store3'",
                "INDEX agent_instances_by_originating_store (tenant_id=? AND originating_store=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=ownerIds/any(o: o eq 'o1')",
                "SEARCH d USING PRIMARY KEY (tenant_id=? AND owner_id=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=ownerIds/any(o: o in ('o1', 'o2'))",
                "SEARCH agent_instance_owners USING PRIMARY KEY (tenant_id=? AND owner_id=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=agentCardManifest/skills/any(s: s/tags/any(t: t eq 'tag1'))",
                "SEARCH d USING PRIMARY KEY (tenant_id=? AND tag=?)",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=agentCardManifest/skills/any(s: s/tags/any(t: t in ('tag1', 'tag2')))",
                "SEARCH agent_instance_skill_tags USING PRIMARY KEY (tenant_id=? AND tag=?)",
            ),
            (
                &AGENT_CARD_MANIFEST,
                "agent_card_manifests",
                "$filter=skills/any(s: s/tags/any(t: t eq 'tag1'))",
                "SEARCH d USING PRIMARY KEY (tenant_id=? AND tag=?)",
            ),
        ];
        for (ty, name, query, expected) in table {
            let p = plan(&conn, ty, name, query);
            assert!(p.contains(expected), "{query}:\n{p}");
            assert!(!p.contains("SCAN"), "{query} scans:\n{p}");
        }
        // One-value side-table filters drive the page from the side table's
        // primary key, in id order: no sort, however many rows match, also
        // with further conditions.
        for (ty, name, query) in [
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=ownerIds/any(o: o eq 'o1')",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=agentCardManifest/skills/any(s: s/tags/any(t: t eq 'tag1')) and startswith(displayName, 'Agent')",
            ),
            (
                &AGENT_CARD_MANIFEST,
                "agent_card_manifests",
                "$filter=displayName ne 'x' and skills/any(s: s/tags/any(t: t eq 'tag1'))",
            ),
        ] {
            let p = plan(&conn, ty, name, query);
            assert!(p.contains("SEARCH d USING PRIMARY KEY"), "{query}:\n{p}");
            assert!(
                p.contains("SEARCH e USING PRIMARY KEY (tenant_id=? AND id=?)"),
                "{query}:\n{p}"
            );
            assert!(!p.contains("TEMP B-TREE"), "{query} sorts:\n{p}");
        }
        // A name prefix pages in the case-insensitive index's own order, and
        // so does `$orderby=displayName` either way: the page's ids come off
        // the index unsorted (only the outer query orders the page's own rows;
        // descending, equal names are put in ascending id order as they come).
        for (ty, name, query) in [
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=startswith(displayName, 'Agent 1')",
            ),
            (
                &AGENT_INSTANCE,
                "agent_instances",
                "$filter=managedBy ne 'x'&$orderby=displayName",
            ),
            (
                &AGENT_CARD_MANIFEST,
                "agent_card_manifests",
                "$filter=displayName ne 'x'&$orderby=displayName desc",
            ),
        ] {
            let p = plan(&conn, ty, name, query);
            let inner: Vec<&str> = p
                .lines()
                .skip_while(|l| !l.contains("LIST SUBQUERY"))
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .collect();
            let index = format!("INDEX {name}_by_display_name_nocase");
            assert!(inner.iter().any(|l| l.contains(&index)), "{query}:\n{p}");
            assert!(
                !inner.iter().any(|l| l.contains("TEMP B-TREE FOR ORDER BY")),
                "{query} sorts:\n{p}"
            );
        }
    }

    fn filter_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let text_property = prop::sample::select(vec![
            "id",
            "displayName",
            "managedBy",
            "url",
            "agentCardManifest/displayName",
            "agentCardManifest/provider/organization",
        ]);
        let text = prop::sample::select(vec![
            "'a'",
            "'it''s'",
            "''",
            "'Agent 1'",
            "null",
            "8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234",
        ]);
        let op = prop::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le"]);
        let text_comparison = (text_property.clone(), op.clone(), text.clone())
            .prop_map(|(p, o, l)| format!("{p} {o} {l}"));
        let dates = (
            prop::sample::select(vec!["createdDateTime", "lastModifiedDateTime"]),
            op,
            prop::sample::select(vec!["2025-01-01T00:00:00Z", "2025-06-01", "null"]),
        )
            .prop_map(|(p, o, l)| format!("{p} {o} {l}"));
        let booleans = prop::sample::select(vec![
            "agentCardManifest/capabilities/streaming",
            "agentCardManifest/capabilities/streaming eq true",
            "agentCardManifest/supportsAuthenticatedExtendedCard ne false",
            "true",
            "false",
        ])
        .prop_map(str::to_owned);
        let membership = (
            text_property.clone(),
            prop::sample::select(vec!["('a', 'b')", "('a', null)", "(null)"]),
        )
            .prop_map(|(p, l)| format!("{p} in {l}"));
        let call = (
            prop::sample::select(vec!["startswith", "endswith", "contains"]),
            text_property.clone(),
            text,
        )
            .prop_map(|(f, p, l)| format!("{f}({p}, {l})"));
        let lambda = prop::sample::select(vec![
            "ownerIds/any(x: x eq 'a')",
            "ownerIds/all(x: startswith(x, 'o'))",
            "ownerIds/any()",
            "additionalInterfaces/any(x: x/transport eq 'GRPC')",
            "additionalInterfaces/all(x: x/url ne null)",
            "agentCardManifest/skills/any(x: x/tags/any(t: t eq 'security'))",
            "agentCardManifest/skills/all(x: x/tags/any(t: t in ('a', 'b')))",
            "agentCardManifest/skills/any(x: x/id eq 'a' and x/tags/all(t: t ne 'b'))",
        ])
        .prop_map(str::to_owned);
        let invalid = prop_oneof![
            (
                prop::sample::select(vec![
                    "colour",
                    "ownerIds",
                    "additionalInterfaces",
                    "securitySchemes/x"
                ]),
                prop::sample::select(vec!["eq", "has", "xx", "in"]),
                prop::sample::select(vec!["42", "'a'", "true", "(1"])
            )
                .prop_map(|(p, o, l)| format!("{p} {o} {l}")),
            "[a-zA-Z0-9 '()/,:.-]{0,40}",
        ];
        let leaf = prop_oneof![3 => text_comparison, 2 => dates, 2 => booleans, 2 => membership, 2 => call, 3 => lambda, 2 => invalid];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                4 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                4 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                4 => inner.clone().prop_map(|a| format!("not ({a})")),
                1 => inner.prop_map(|a| format!("({a}")),
            ]
        })
    }

    /// Any filter either parses, checks and runs, or is refused with a clean error.
    #[test]
    fn any_generated_filter_runs_or_is_refused_cleanly() {
        use proptest::test_runner::{Config, TestRunner};
        let (_dir, conn) = analysed();
        let ran = std::cell::Cell::new(0);
        let mut runner = TestRunner::new(Config {
            cases: 400,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&filter_strategy(), |text| {
            let Ok(expr) = crate::odata::filter::parse(&text) else {
                return Ok(());
            };
            if crate::odata::filter::check(&AGENT_INSTANCE, &expr).is_err() {
                return Ok(());
            }
            let lq = ListQuery {
                criteria: Criteria {
                    filter: Some(expr),
                    search: None,
                },
                limit: 10,
                ..ListQuery::default()
            };
            let c = list("t", &AGENT_INSTANCE, Source::Table("agent_instances"), &lq);
            let mut stmt = conn.prepare(&c.sql).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{text}: {e}\n{}", c.sql))
            })?;
            let rows = stmt.query_map(rusqlite::params_from_iter(c.params.iter()), |r| {
                r.get::<_, String>(0)
            });
            let rows = rows
                .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            for r in rows {
                r.map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            }
            ran.set(ran.get() + 1);
            Ok(())
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
        assert!(
            ran.get() >= 100,
            "only {} of 400 generated filters were valid: the generator needs tuning",
            ran.get()
        );
    }
}

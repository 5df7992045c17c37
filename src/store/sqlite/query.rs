//! OData syntax trees translated into SQLite SQL.
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

use crate::domain::schema::{AGENT_CARD_MANIFEST, EntityType};
use crate::odata::filter::{CmpOp, Func, Literal, Operand, Path, Quantifier};
use crate::odata::{Cursor, Expr, SEARCHABLE, Search};
use crate::store::{Criteria, ListQuery, Side, is_name, pages_by_name, side_term, side_values};
use rusqlite::types::Value as SqlValue;
use std::borrow::Cow;

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

/// The table of a side table, its entity id column and its value column.
fn side_columns(side: Side) -> (&'static str, &'static str, &'static str) {
    match side {
        Side::Owners => ("agent_instance_owners", "instance_id", "owner_id"),
        Side::InstanceTags => ("agent_instance_skill_tags", "instance_id", "tag"),
        Side::ManifestTags => ("agent_card_manifest_skill_tags", "manifest_id", "tag"),
    }
}

/// A statement and its parameters, in order.
#[derive(Debug)]
pub(super) struct Compiled {
    pub sql: String,
    pub params: Vec<SqlValue>,
    /// Sort values selected after id, doc and version (the paging cursor's).
    pub sort_columns: usize,
}

struct Builder<'a> {
    tenant: &'a str,
    params: Vec<SqlValue>,
    aliases: usize,
    /// Lambda variables in scope: name and the `json_each` alias holding it.
    vars: Vec<(String, String)>,
}

fn column(property: &str) -> Option<&'static str> {
    Some(match property {
        "id" => "id",
        "displayName" => "display_name",
        "managedBy" => "managed_by",
        "originatingStore" => "originating_store",
        "createdDateTime" => "created_at",
        "lastModifiedDateTime" => "modified_at",
        _ => return None,
    })
}

fn json_path(segments: &[String]) -> String {
    let mut p = String::from("$");
    for s in segments {
        p.push_str(".\"");
        p.push_str(&s.replace('"', ""));
        p.push('"');
    }
    p.replace('\'', "''")
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl<'a> Builder<'a> {
    fn new(tenant: &'a str) -> Self {
        Self {
            tenant,
            params: Vec::new(),
            aliases: 0,
            vars: Vec::new(),
        }
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    fn param(&mut self, v: SqlValue) -> &'static str {
        self.params.push(v);
        "?"
    }

    fn var(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .rev()
            .find(|(v, _)| v == name)
            .map(|(_, a)| a.clone())
    }

    /// The SQL value of a property path read from row `base` of type `ty`.
    fn value(&mut self, base: &str, ty: &'static EntityType, segments: &[String]) -> String {
        let Some(first) = segments.first() else {
            return "NULL".into();
        };
        if let Some(alias) = self.var(first) {
            return if segments.len() == 1 {
                format!("{alias}.value")
            } else {
                format!(
                    "json_extract({alias}.value, '{}')",
                    json_path(&segments[1..])
                )
            };
        }
        if ty.navigation(first).is_some() {
            let m = self.alias("m");
            let inner = self.value(&m, &AGENT_CARD_MANIFEST, &segments[1..]);
            return format!(
                "(SELECT {inner} FROM agent_card_manifests {m} WHERE {m}.tenant_id = {base}.tenant_id AND {m}.id = {base}.manifest_id)"
            );
        }
        if segments.len() == 1
            && let Some(col) = column(first)
        {
            return format!("{base}.{col}");
        }
        format!("json_extract({base}.doc, '{}')", json_path(segments))
    }

    fn literal(&mut self, l: &Literal) -> String {
        match l {
            Literal::Null => "NULL".into(),
            Literal::Bool(b) => self.param(SqlValue::Integer(i64::from(*b))).into(),
            Literal::Number(n) => self.param(SqlValue::Real(*n)).into(),
            Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s) => {
                self.param(SqlValue::Text(s.clone())).into()
            }
        }
    }

    fn operand(&mut self, base: &str, ty: &'static EntityType, o: &Operand) -> String {
        match o {
            Operand::Property(p) => self.value(base, ty, &p.segments),
            Operand::Literal(l) => self.literal(l),
        }
    }

    /// An operand of a comparison: a name compares without ASCII case (the
    /// collation of either side applies to both in SQLite).
    fn folded(&mut self, base: &str, ty: &'static EntityType, o: &Operand) -> String {
        match o {
            Operand::Property(p) => self.sort_value(base, ty, &p.segments),
            Operand::Literal(l) => self.literal(l),
        }
    }

    /// A property's value as it sorts and compares: names without ASCII case.
    fn sort_value(&mut self, base: &str, ty: &'static EntityType, segments: &[String]) -> String {
        let x = self.value(base, ty, segments);
        let is_var = segments.first().is_some_and(|s| self.var(s).is_some());
        if !is_var && is_name(ty, segments) {
            format!("{x} COLLATE NOCASE")
        } else {
            x
        }
    }

    /// An operand as SQL text with no parameter: literals quoted in place.
    fn inline(&mut self, base: &str, ty: &'static EntityType, o: &Operand) -> String {
        match o {
            Operand::Property(p) => self.value(base, ty, &p.segments),
            Operand::Literal(Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s)) => {
                format!("'{}'", s.replace('\'', "''"))
            }
            Operand::Literal(Literal::Bool(b)) => i64::from(*b).to_string(),
            Operand::Literal(Literal::Number(n)) => format!("{n:?}"),
            Operand::Literal(Literal::Null) => "NULL".into(),
        }
    }

    fn predicate(&mut self, base: &str, ty: &'static EntityType, e: &Expr) -> String {
        match e {
            Expr::And(a, b) => {
                let (a, b) = (self.predicate(base, ty, a), self.predicate(base, ty, b));
                format!("({a} AND {b})")
            }
            Expr::Or(a, b) => {
                let (a, b) = (self.predicate(base, ty, a), self.predicate(base, ty, b));
                format!("({a} OR {b})")
            }
            Expr::Not(a) => format!("(NOT {})", self.predicate(base, ty, a)),
            Expr::Compare(op, a, b) => self.compare(base, ty, *op, a, b),
            Expr::In(a, values) => {
                if let Operand::Literal(l) = a {
                    // Known on both sides: decide here.
                    return if values.contains(l) {
                        "1".into()
                    } else {
                        "0".into()
                    };
                }
                let x = self.folded(base, ty, a);
                let non_null: Vec<&Literal> =
                    values.iter().filter(|v| **v != Literal::Null).collect();
                let mut parts = Vec::new();
                if !non_null.is_empty() {
                    let list: Vec<String> = non_null.into_iter().map(|v| self.literal(v)).collect();
                    parts.push(format!(
                        "({x} IS NOT NULL AND {x} IN ({}))",
                        list.join(", ")
                    ));
                }
                if values.contains(&Literal::Null) {
                    parts.push(format!("({x} IS NULL)"));
                }
                if parts.is_empty() {
                    "0".into()
                } else {
                    format!("({})", parts.join(" OR "))
                }
            }
            Expr::Call(func, a, b) => self.call(base, ty, *func, a, b),
            Expr::Lambda {
                quantifier,
                collection,
                variable,
                body,
            } => self.lambda(base, ty, *quantifier, collection, variable, body.as_deref()),
            Expr::Truthy(o) => match o {
                Operand::Literal(Literal::Bool(true)) => "1".into(),
                Operand::Literal(_) => "0".into(),
                Operand::Property(_) => format!("({} IS 1)", self.operand(base, ty, o)),
            },
        }
    }

    fn compare(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        op: CmpOp,
        a: &Operand,
        b: &Operand,
    ) -> String {
        let is_null = |o: &Operand| matches!(o, Operand::Literal(Literal::Null));
        let is_literal = |o: &Operand| matches!(o, Operand::Literal(_));
        let (na, nb) = (is_null(a), is_null(b));
        let x = self.folded(base, ty, a);
        let y = self.folded(base, ty, b);
        match op {
            // Against a literal, plain `=` (which indexes serve) guarded so
            // that a missing value gives false, never NULL.
            CmpOp::Eq if is_literal(b) && !nb => format!("({x} IS NOT NULL AND {x} = {y})"),
            CmpOp::Ne if is_literal(b) && !nb => format!("({x} IS NULL OR {x} <> {y})"),
            CmpOp::Eq => format!("({x} IS {y})"),
            CmpOp::Ne => format!("({x} IS NOT {y})"),
            _ if na || nb => "0".into(),
            _ => {
                let sym = match op {
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                    CmpOp::Lt => "<",
                    _ => "<=",
                };
                let mut guards = Vec::new();
                if !is_literal(a) {
                    guards.push(format!("{x} IS NOT NULL"));
                }
                if !is_literal(b) {
                    guards.push(format!("{y} IS NOT NULL"));
                }
                guards.push(format!("{x} {sym} {y}"));
                format!("({})", guards.join(" AND "))
            }
        }
    }

    fn call(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        func: Func,
        a: &Operand,
        b: &Operand,
    ) -> String {
        let is_null = |o: &Operand| matches!(o, Operand::Literal(Literal::Null));
        if is_null(a) || is_null(b) {
            return "0".into();
        }
        if let (
            Operand::Property(p),
            Operand::Literal(Literal::String(text) | Literal::Guid(text)),
        ) = (a, b)
        {
            let x = self.value(base, ty, &p.segments);
            let esc = like_escape(text);
            let pattern = match func {
                Func::StartsWith => format!("{esc}%"),
                Func::EndsWith => format!("%{esc}"),
                Func::Contains => format!("%{esc}%"),
            };
            let like = self.param(SqlValue::Text(pattern));
            let mut sql = format!("({x} IS NOT NULL AND {x} LIKE {like} ESCAPE '\\'");
            // A prefix on an indexed column also becomes a range, which the
            // case-insensitive index answers.
            if func == Func::StartsWith
                && p.segments.len() == 1
                && column(&p.segments[0]).is_some()
                && !text.is_empty()
            {
                let lo = self.param(SqlValue::Text(text.clone()));
                let hi = self.param(SqlValue::Text(format!("{text}\u{10FFFF}")));
                sql.push_str(&format!(
                    " AND {x} COLLATE NOCASE >= {lo} AND {x} COLLATE NOCASE < {hi}"
                ));
            }
            sql.push(')');
            return sql;
        }
        // Each operand appears more than once below: literals are inlined, not bound.
        let x = self.inline(base, ty, a);
        let y = self.inline(base, ty, b);
        let test = match func {
            Func::StartsWith => format!("substr(lower({x}), 1, length({y})) = lower({y})"),
            Func::EndsWith => {
                format!("(length({y}) = 0 OR substr(lower({x}), -length({y})) = lower({y}))")
            }
            Func::Contains => format!("instr(lower({x}), lower({y})) > 0"),
        };
        format!("({x} IS NOT NULL AND {y} IS NOT NULL AND {test})")
    }

    fn in_list(&mut self, values: &[&str]) -> String {
        let list: Vec<&str> = values
            .iter()
            .map(|v| self.param(SqlValue::Text((*v).to_owned())))
            .collect();
        list.join(", ")
    }

    /// The side tables answer the common discovery filters:
    /// `ownerIds/any(o: o eq …)` and `skills/any(s: s/tags/any(t: t eq …))`.
    fn side_table(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        segs: &[String],
        variable: &str,
        body: &Expr,
    ) -> Option<String> {
        let (side, values) = side_values(ty, segs, variable, body)?;
        let (table, key, column) = side_columns(side);
        let t = self.param(SqlValue::Text(self.tenant.to_owned()));
        let list = self.in_list(&values);
        Some(format!(
            "({base}.id IN (SELECT {key} FROM {table} WHERE tenant_id = {t} AND {column} IN ({list})))"
        ))
    }

    fn lambda(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        quantifier: Quantifier,
        collection: &Path,
        variable: &str,
        body: Option<&Expr>,
    ) -> String {
        let segs = &collection.segments;
        let is_var = self.var(&segs[0]).is_some();
        if quantifier == Quantifier::Any
            && !is_var
            && let Some(body) = body
            && let Some(sql) = self.side_table(base, ty, segs, variable, body)
        {
            return sql;
        }
        // Through the manifest navigation the collection is read from the
        // linked manifest; the body's other paths still start at `base`.
        let (source, through) = match self.var(&segs[0]) {
            Some(alias) => (
                format!("json_each({alias}.value, '{}')", json_path(&segs[1..])),
                None,
            ),
            None if ty.navigation(&segs[0]).is_some() => {
                let m = self.alias("m");
                (
                    format!("json_each({m}.doc, '{}')", json_path(&segs[1..])),
                    Some(m),
                )
            }
            None => (
                format!("json_each({base}.doc, '{}')", json_path(segs)),
                None,
            ),
        };
        let j = self.alias("j");
        let inner = match body {
            None => format!("+EXISTS (SELECT 1 FROM {source} AS {j})"),
            Some(body) => {
                self.vars.push((variable.to_owned(), j.clone()));
                let test = self.predicate(base, ty, body);
                self.vars.pop();
                match quantifier {
                    Quantifier::Any => {
                        format!("+EXISTS (SELECT 1 FROM {source} AS {j} WHERE {test})")
                    }
                    Quantifier::All => {
                        format!("(NOT EXISTS (SELECT 1 FROM {source} AS {j} WHERE NOT {test}))")
                    }
                }
            }
        };
        match through {
            None => inner,
            Some(m) => format!(
                "+EXISTS (SELECT 1 FROM agent_card_manifests {m} WHERE {m}.tenant_id = {base}.tenant_id AND {m}.id = {base}.manifest_id AND {inner})"
            ),
        }
    }

    fn search(&mut self, base: &str, ty: &'static EntityType, s: &Search) -> String {
        let mut terms = Vec::new();
        for term in &s.terms {
            let props: Vec<&str> = match &term.property {
                Some(p) => vec![p.as_str()],
                None => SEARCHABLE
                    .iter()
                    .copied()
                    .filter(|p| ty.property(p).is_some())
                    .collect(),
            };
            let esc = like_escape(&term.text);
            let mut alternatives = Vec::new();
            for p in props {
                let x = self.value(base, ty, &[p.to_owned()]);
                let start = self.param(SqlValue::Text(format!("{esc}%")));
                let word = self.param(SqlValue::Text(format!("% {esc}%")));
                alternatives.push(format!(
                    "{x} LIKE {start} ESCAPE '\\' OR {x} LIKE {word} ESCAPE '\\'"
                ));
            }
            if alternatives.is_empty() {
                terms.push("0".to_owned());
            } else {
                terms.push(format!("({})", alternatives.join(" OR ")));
            }
        }
        format!("({})", terms.join(if s.any { " OR " } else { " AND " }))
    }

    /// `FROM` and the tenant/relation part of `WHERE`.
    fn source(&mut self, source: Source<'_>) -> (String, String) {
        let t = self.param(SqlValue::Text(self.tenant.to_owned()));
        match source {
            Source::Table(table) => (format!("{table} e"), format!("e.tenant_id = {t}")),
            Source::MembersOf(cid) => {
                let c = self.param(SqlValue::Text(cid.to_owned()));
                (
                    "agent_collection_members r JOIN agent_instances e ON e.tenant_id = r.tenant_id AND e.id = r.instance_id".into(),
                    format!("r.tenant_id = {t} AND r.collection_id = {c}"),
                )
            }
            Source::CollectionsOf(iid) => {
                let i = self.param(SqlValue::Text(iid.to_owned()));
                (
                    "agent_collection_members r JOIN agent_collections e ON e.tenant_id = r.tenant_id AND e.id = r.collection_id".into(),
                    format!("r.tenant_id = {t} AND r.instance_id = {i}"),
                )
            }
        }
    }

    fn criteria(&mut self, ty: &'static EntityType, c: &Criteria, clauses: &mut Vec<String>) {
        if let Some(f) = &c.filter {
            let p = self.predicate("e", ty, f);
            clauses.push(p);
        }
        if let Some(s) = &c.search {
            let p = self.search("e", ty, s);
            clauses.push(p);
        }
    }

    /// Rows strictly after `cursor` in the order of `keys` then id (read
    /// from the column `id_column`).
    fn after(
        &mut self,
        keys: &[(String, bool)],
        values: &[serde_json::Value],
        id: &str,
        id_column: &str,
    ) -> String {
        let Some(((x, descending), rest)) = keys.split_first() else {
            let p = self.param(SqlValue::Text(id.to_owned()));
            return format!("{id_column} > {p}");
        };
        let v = values.first().cloned().unwrap_or(serde_json::Value::Null);
        let values = values.get(1..).unwrap_or_default();
        if v.is_null() {
            let tail = self.after(rest, values, id, id_column);
            return if *descending {
                format!("({x} IS NULL AND {tail})")
            } else {
                format!("(({x} IS NULL AND {tail}) OR {x} IS NOT NULL)")
            };
        }
        let first = self.param(to_sql(&v));
        let equal = self.param(to_sql(&v));
        let tail = self.after(rest, values, id, id_column);
        if *descending {
            format!("({x} < {first} OR {x} IS NULL OR ({x} = {equal} AND {tail}))")
        } else {
            format!("({x} > {first} OR ({x} = {equal} AND {tail}))")
        }
    }
}

pub(super) fn to_sql(v: &serde_json::Value) -> SqlValue {
    match v {
        serde_json::Value::Null => SqlValue::Null,
        serde_json::Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => n.as_i64().map_or_else(
            || SqlValue::Real(n.as_f64().unwrap_or(0.0)),
            SqlValue::Integer,
        ),
        serde_json::Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
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
    let mut b = Builder::new(tenant);
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
            let t = b.param(SqlValue::Text(tenant.to_owned()));
            let v = b.param(SqlValue::Text(d.value));
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
    let name_key = |base: &str| (format!("{base}.display_name COLLATE NOCASE"), false);
    let keys: Vec<(String, bool)> = if by_name {
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
    let limit = SqlValue::Integer(q.limit.saturating_add(1).min(i64::MAX as usize) as i64);
    let skip = SqlValue::Integer(q.skip.min(i64::MAX as usize) as i64);
    let order_by = |keys: &[(String, bool)], id: &str| {
        let mut order: Vec<String> = keys
            .iter()
            .map(|(x, descending)| format!("{x}{}", if *descending { " DESC" } else { "" }))
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
    let outer_keys: Vec<(String, bool)> = if by_name {
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
        select.push_str(x);
    }
    let table = match source {
        Source::Table(t) => t,
        Source::MembersOf(_) => "agent_instances",
        Source::CollectionsOf(_) => "agent_collections",
    };
    let mut params = vec![SqlValue::Text(tenant.to_owned())];
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

/// The count query for the same rows.
pub(super) fn count(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    c: &Criteria,
) -> Compiled {
    let mut b = Builder::new(tenant);
    let (from, scope) = b.source(source);
    let mut clauses = vec![scope];
    b.criteria(ty, c, &mut clauses);
    Compiled {
        sql: format!(
            "SELECT count(*) FROM {from} WHERE {}",
            clauses.join(" AND ")
        ),
        params: b.params,
        sort_columns: 0,
    }
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

//! The OData → SQL translation, written once for every backend: a filter,
//! a `$search` and a page's cursor become `WHERE` terms over one entity
//! table. Each backend supplies a [`Dialect`]: placeholders, how JSON is
//! read, how names fold, and the string functions; its own `query` module
//! assembles the statements (SQLite's side-table-driven pages, PostgreSQL's
//! typed sort values) from these terms.
//!
//! Properties with their own column (`id`, `displayName`, `managedBy`,
//! `originatingStore`, the timestamps) are read from it, so filters and
//! sorts use the indexes; other paths read the JSON document. Names compare
//! and sort without ASCII case ([`super::is_name`]). The two common
//! discovery filters use the side tables. Every term is written so that it
//! is never SQL NULL: OData's two-valued logic survives `not`. Every value
//! from the request is a parameter; only schema-checked property names are
//! written into the statement.

use super::{Criteria, Side, side_values};
use crate::domain::schema::{AGENT_CARD_MANIFEST, EntityType};
use crate::odata::filter::{self, CmpOp, Func, Literal, Operand, Path, Quantifier, Ty};
use crate::odata::{Expr, SEARCHABLE, Search};
use std::marker::PhantomData;

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
pub(super) fn side_columns(side: Side) -> (&'static str, &'static str, &'static str) {
    match side {
        Side::Owners => ("agent_instance_owners", "instance_id", "owner_id"),
        Side::RegistrationOwners => ("agent_registration_owners", "registration_id", "owner_id"),
        Side::InstanceTags => ("agent_instance_skill_tags", "instance_id", "tag"),
        Side::ManifestTags => ("agent_card_manifest_skill_tags", "manifest_id", "tag"),
        Side::PackageElementTypes => (
            "copilot_package_element_types",
            "package_id",
            "element_type",
        ),
    }
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug)]
pub(super) struct Compiled {
    pub sql: String,
    pub params: Vec<Lit>,
    /// Sort values selected after id, doc and version (the paging cursor's).
    pub sort_columns: usize,
}

/// The SQL type of a value expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Bool,
    Number,
    /// The literal `null`, or a path that denotes nothing.
    Null,
}

/// A value expression and its SQL type; SQL NULL where OData has null.
#[derive(Debug, Clone)]
pub(super) struct Val {
    pub sql: String,
    pub kind: Kind,
}

impl Val {
    pub(super) fn null() -> Self {
        Val {
            sql: "NULL".into(),
            kind: Kind::Null,
        }
    }
}

/// What a backend's SQL says its own way.
pub(super) trait Dialect: Sized {
    /// Terms that are always true and always false.
    const TRUE: &'static str;
    const FALSE: &'static str;
    /// `EXISTS` as a term of a `WHERE`.
    const EXISTS: &'static str;
    /// Whether one placeholder may stand twice in a statement.
    const REPEATS: bool;

    /// The placeholder of parameter `n` (from 1), which holds `lit`.
    fn placeholder(n: usize, lit: &Lit) -> String;
    /// Row `base`'s document, as the JSON functions take it.
    fn doc(base: &str) -> String;
    /// The value at `segments` below the JSON `src` (`src` itself when
    /// none), of type `kind`.
    fn extract(src: &str, segments: &[String], kind: Kind) -> Val;
    /// The elements of the array at `segments` below `src`, as a `FROM`
    /// item aliased `j` whose column `value` holds each element.
    fn elements(src: &str, segments: &[String], j: &str) -> String;
    /// A name as it compares and sorts: the form its index holds.
    fn fold_name(sql: &str) -> String;
    /// Null-safe equality and difference.
    fn same(x: &str, y: &str) -> String;
    fn different(x: &str, y: &str) -> String;
    /// A string comparison between two literals, made bytewise.
    fn bytewise(sql: String) -> String;
    /// Whether a boolean-valued property is true.
    fn truthy(x: &Val) -> String;
    /// A value as text, where two operands' types differ.
    fn as_text(x: &Val) -> String;
    /// An operand of a comparison; `fold`: one side is a name.
    fn compared(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        o: &Operand,
        fold: bool,
    ) -> Val;
    /// `startswith`, `endswith` and `contains`, ignoring ASCII case.
    fn call(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        func: Func,
        a: &Operand,
        o: &Operand,
    ) -> String;
    /// What a `$search` pattern matches (a word's start, ignoring ASCII
    /// case), and the text of a term as the pattern holds it.
    fn search_subject(x: &Val) -> String;
    fn search_text(text: &str) -> String;
    /// A cursor's sort value as a parameter of the key's kind; `None` for
    /// null (and for a value of another type, which no issued token holds).
    fn cursor(kind: Kind, v: &serde_json::Value) -> Option<Lit>;
}

/// The column of a property of `ty` that has one.
pub(super) fn column(ty: &EntityType, property: &str) -> Option<&'static str> {
    let entity = super::Entity::of_set(ty.entity_set)?;
    let (created, modified) = entity.timestamps();
    match property {
        "id" => return Some("id"),
        p if p == created => return Some("created_at"),
        p if p == modified => return Some("modified_at"),
        _ => {}
    }
    entity
        .columns()
        .iter()
        .find(|(_, p)| *p == property)
        .map(|(c, _)| *c)
}

/// The entity a single-valued navigation of `ty` leads to, when storage can
/// follow it (an instance's manifest, through `manifest_id`).
fn linked(ty: &'static EntityType, name: &str) -> Option<&'static EntityType> {
    let nav = ty.navigation(name)?;
    (!nav.collection && std::ptr::eq(nav.target, &AGENT_CARD_MANIFEST)).then_some(nav.target)
}

pub(super) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn is_null(o: &Operand) -> bool {
    matches!(o, Operand::Literal(Literal::Null))
}

pub(super) fn is_literal(o: &Operand) -> bool {
    matches!(o, Operand::Literal(_))
}

/// A lambda variable in scope.
struct Var {
    name: String,
    /// The alias of the row holding the current element.
    alias: String,
    /// What each element is, for typing paths through the variable.
    element: Ty,
}

/// Builds the terms of one statement, collecting its parameters.
pub(super) struct Builder<D> {
    tenant: String,
    pub params: Vec<Lit>,
    aliases: usize,
    vars: Vec<Var>,
    dialect: PhantomData<D>,
}

impl<D: Dialect> Builder<D> {
    pub(super) fn new(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            params: Vec::new(),
            aliases: 0,
            vars: Vec::new(),
            dialect: PhantomData,
        }
    }

    pub(super) fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// Binds `lit` and returns its placeholder.
    pub(super) fn param(&mut self, lit: Lit) -> String {
        let placeholder = D::placeholder(self.params.len() + 1, &lit);
        self.params.push(lit);
        placeholder
    }

    /// Whether `name` is a lambda variable in scope.
    pub(super) fn is_var(&self, name: &str) -> bool {
        self.vars.iter().any(|v| v.name == name)
    }

    fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().rev().find(|v| v.name == name)
    }

    /// What a path from `ty` (or a lambda variable) denotes in the schema.
    fn resolve(&self, ty: &'static EntityType, segments: &[String]) -> Option<Ty> {
        let scope: filter::Scope<'_> = self
            .vars
            .iter()
            .map(|v| (v.name.as_str(), v.element))
            .collect();
        let path = Path {
            segments: segments.to_vec(),
            position: 0,
        };
        filter::resolve(ty, &scope, &path).ok()
    }

    fn kind_of(&self, ty: &'static EntityType, segments: &[String]) -> Kind {
        match self.resolve(ty, segments) {
            Some(Ty::Boolean) => Kind::Bool,
            Some(Ty::Number) => Kind::Number,
            _ => Kind::Text,
        }
    }

    /// The SQL value of a property path read from row `base` of type `ty`.
    pub(super) fn value(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        segments: &[String],
    ) -> Val {
        let Some(first) = segments.first() else {
            return Val::null();
        };
        if let Some(var) = self.var(first) {
            let src = format!("{}.value", var.alias);
            return D::extract(&src, &segments[1..], self.kind_of(ty, segments));
        }
        if ty.navigation(first).is_some() {
            let Some(target) = linked(ty, first) else {
                return Val::null();
            };
            let m = self.alias("m");
            let inner = self.value(&m, target, &segments[1..]);
            if inner.kind == Kind::Null {
                return Val::null();
            }
            return Val {
                sql: format!(
                    "(SELECT {} FROM agent_card_manifests {m} WHERE {m}.tenant_id = {base}.tenant_id AND {m}.id = {base}.manifest_id)",
                    inner.sql
                ),
                kind: inner.kind,
            };
        }
        if segments.len() == 1
            && let Some(col) = column(ty, first)
        {
            return Val {
                sql: format!("{base}.{col}"),
                kind: Kind::Text,
            };
        }
        let kind = self.kind_of(ty, segments);
        D::extract(&D::doc(base), segments, kind)
    }

    pub(super) fn literal(&mut self, l: &Literal) -> Val {
        match l {
            Literal::Null => Val::null(),
            Literal::Bool(b) => Val {
                sql: self.param(Lit::Bool(*b)),
                kind: Kind::Bool,
            },
            Literal::Number(n) => Val {
                sql: self.param(Lit::Float(*n)),
                kind: Kind::Number,
            },
            Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s) => Val {
                sql: self.param(Lit::Text(s.clone())),
                kind: Kind::Text,
            },
        }
    }

    pub(super) fn operand(&mut self, base: &str, ty: &'static EntityType, o: &Operand) -> Val {
        match o {
            Operand::Property(p) => self.value(base, ty, &p.segments),
            Operand::Literal(l) => self.literal(l),
        }
    }

    /// Whether `o` is an entity's name, which compares without ASCII case.
    pub(super) fn is_name(&self, ty: &'static EntityType, o: &Operand) -> bool {
        match o {
            Operand::Property(p) => {
                p.segments.first().is_some_and(|s| self.var(s).is_none())
                    && super::is_name(ty, &p.segments)
            }
            Operand::Literal(_) => false,
        }
    }

    /// A property's value as it sorts: names folded as their index holds them.
    pub(super) fn sort_value(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        segments: &[String],
    ) -> Val {
        let v = self.value(base, ty, segments);
        let is_var = segments.first().is_some_and(|s| self.var(s).is_some());
        if !is_var && super::is_name(ty, segments) && v.kind == Kind::Text {
            Val {
                sql: D::fold_name(&v.sql),
                kind: Kind::Text,
            }
        } else {
            v
        }
    }

    pub(super) fn predicate(&mut self, base: &str, ty: &'static EntityType, e: &Expr) -> String {
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
            Expr::In(a, values) => self.membership(base, ty, a, values),
            Expr::Call(func, a, b) => D::call(self, base, ty, *func, a, b),
            Expr::Lambda {
                quantifier,
                collection,
                variable,
                body,
            } => self.lambda(base, ty, *quantifier, collection, variable, body.as_deref()),
            Expr::Truthy(o) => match o {
                Operand::Literal(Literal::Bool(true)) => D::TRUE.into(),
                Operand::Literal(_) => D::FALSE.into(),
                Operand::Property(p) => {
                    let x = self.value(base, ty, &p.segments);
                    D::truthy(&x)
                }
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
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        let (na, nb) = (is_null(a), is_null(b));
        if ordering && (na || nb) {
            return D::FALSE.into();
        }
        let eq = op == CmpOp::Eq;
        match (na, nb) {
            (true, true) => return if eq { D::TRUE } else { D::FALSE }.into(),
            (true, false) | (false, true) => {
                let x = self.operand(base, ty, if na { b } else { a });
                let test = if eq { "IS NULL" } else { "IS NOT NULL" };
                return format!("({} {test})", x.sql);
            }
            (false, false) => {}
        }
        // Equality is symmetric: keep the property on the left, where an
        // index can serve `column = ?`.
        let (a, b) = if !ordering && is_literal(a) && !is_literal(b) {
            (b, a)
        } else {
            (a, b)
        };
        let fold = self.is_name(ty, a) || self.is_name(ty, b);
        let x = D::compared(self, base, ty, a, fold);
        let y = D::compared(self, base, ty, b, fold);
        let (xs, ys) = if x.kind == y.kind {
            (x.sql.clone(), y.sql)
        } else {
            (D::as_text(&x), D::as_text(&y))
        };
        match op {
            // Against a literal, plain `=` (which indexes serve) guarded so
            // that a missing value gives false, never NULL.
            CmpOp::Eq if is_literal(b) => format!("({xs} IS NOT NULL AND {xs} = {ys})"),
            CmpOp::Ne if is_literal(b) => format!("({xs} IS NULL OR {xs} <> {ys})"),
            CmpOp::Eq => D::same(&xs, &ys),
            CmpOp::Ne => D::different(&xs, &ys),
            _ => {
                let sym = match op {
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                    CmpOp::Lt => "<",
                    _ => "<=",
                };
                let mut guards = Vec::new();
                if !is_literal(a) {
                    guards.push(format!("{xs} IS NOT NULL"));
                }
                if !is_literal(b) {
                    guards.push(format!("{ys} IS NOT NULL"));
                }
                // Strings compare bytewise everywhere, two literals too.
                let both = is_literal(a) && is_literal(b) && x.kind == Kind::Text;
                let (xc, yc) = if both {
                    (D::bytewise(xs), D::bytewise(ys))
                } else {
                    (xs, ys)
                };
                guards.push(format!("{xc} {sym} {yc}"));
                format!("({})", guards.join(" AND "))
            }
        }
    }

    fn membership(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        a: &Operand,
        values: &[Literal],
    ) -> String {
        if let Operand::Literal(l) = a {
            // Known on both sides: decide here.
            return if values.contains(l) {
                D::TRUE
            } else {
                D::FALSE
            }
            .into();
        }
        let fold = self.is_name(ty, a);
        let x = D::compared(self, base, ty, a, fold);
        let list: Vec<Val> = values
            .iter()
            .filter(|v| **v != Literal::Null)
            .map(|v| D::compared(self, base, ty, &Operand::Literal(v.clone()), fold))
            .collect();
        let mut parts = Vec::new();
        if !list.is_empty() {
            let same = list.iter().all(|v| v.kind == x.kind);
            let xs = if same { x.sql.clone() } else { D::as_text(&x) };
            let items: Vec<String> = list
                .iter()
                .map(|v| if same { v.sql.clone() } else { D::as_text(v) })
                .collect();
            parts.push(format!(
                "({xs} IS NOT NULL AND {xs} IN ({}))",
                items.join(", ")
            ));
        }
        if values.contains(&Literal::Null) {
            parts.push(format!("({} IS NULL)", x.sql));
        }
        if parts.is_empty() {
            D::FALSE.into()
        } else {
            format!("({})", parts.join(" OR "))
        }
    }

    fn in_list(&mut self, values: &[&str]) -> String {
        let list: Vec<String> = values
            .iter()
            .map(|v| self.param(Lit::Text((*v).to_owned())))
            .collect();
        list.join(", ")
    }

    /// The side tables answer the common discovery filters:
    /// `ownerIds/any(o: o eq …)` and `skills/any(s: s/tags/any(t: t eq …))`,
    /// and the catalog's `elementTypes/any(t: t eq …)`. A package's element
    /// types are few and most packages match them, so that term is checked
    /// row by row (a page stops at its last row), not as the set of every
    /// match, which suits selective owners and tags.
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
        let t = self.param(Lit::Text(self.tenant.clone()));
        let list = self.in_list(&values);
        Some(match side {
            Side::PackageElementTypes => {
                let s = self.alias("s");
                format!(
                    "EXISTS (SELECT 1 FROM {table} {s} WHERE {s}.tenant_id = {t} AND {s}.{key} = {base}.id AND {s}.{column} IN ({list}))"
                )
            }
            _ => format!(
                "({base}.id IN (SELECT {key} FROM {table} WHERE tenant_id = {t} AND {column} IN ({list})))"
            ),
        })
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
        let Some(first) = segs.first() else {
            return D::FALSE.into();
        };
        let var = self.var(first).map(|v| v.alias.clone());
        if quantifier == Quantifier::Any
            && var.is_none()
            && let Some(body) = body
            && let Some(sql) = self.side_table(base, ty, segs, variable, body)
        {
            return sql;
        }
        let element = match self.resolve(ty, segs) {
            Some(Ty::ComplexCollection(c)) => Ty::Complex(c),
            _ => Ty::String,
        };
        // The array, and the linked manifest row it is read from, if any.
        let (src, path, through) = match var {
            Some(alias) => (format!("{alias}.value"), &segs[1..], None),
            None if ty.navigation(first).is_some() => {
                if linked(ty, first).is_none() {
                    return D::FALSE.into();
                }
                let m = self.alias("m");
                (D::doc(&m), &segs[1..], Some(m))
            }
            None => (D::doc(base), &segs[..], None),
        };
        let j = self.alias("j");
        let from = D::elements(&src, path, &j);
        let test = match body {
            Some(body) => {
                self.vars.push(Var {
                    name: variable.to_owned(),
                    alias: j,
                    element,
                });
                // Paths in the body that do not start with a variable are
                // read from the row being filtered, not from the manifest.
                let test = self.predicate(base, ty, body);
                self.vars.pop();
                Some(test)
            }
            None => None,
        };
        let exists = D::EXISTS;
        let inner = match (quantifier, test) {
            (Quantifier::All, Some(test)) => {
                format!("(NOT EXISTS (SELECT 1 FROM {from} WHERE NOT {test}))")
            }
            (_, Some(test)) => format!("{exists} (SELECT 1 FROM {from} WHERE {test})"),
            (_, None) => format!("{exists} (SELECT 1 FROM {from})"),
        };
        match through {
            None => inner,
            Some(m) => format!(
                "{exists} (SELECT 1 FROM agent_card_manifests {m} WHERE {m}.tenant_id = {base}.tenant_id AND {m}.id = {base}.manifest_id AND {inner})"
            ),
        }
    }

    /// `$search`: each term starts a word of one of the searchable
    /// properties, ignoring ASCII case.
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
            let esc = like_escape(&D::search_text(&term.text));
            let mut alternatives = Vec::new();
            for p in props {
                let value = self.value(base, ty, &[p.to_owned()]);
                let x = D::search_subject(&value);
                let start = self.param(Lit::Text(format!("{esc}%")));
                let word = self.param(Lit::Text(format!("% {esc}%")));
                alternatives.push(format!(
                    "{x} LIKE {start} ESCAPE '\\' OR {x} LIKE {word} ESCAPE '\\'"
                ));
            }
            if alternatives.is_empty() {
                terms.push(D::FALSE.to_owned());
            } else {
                terms.push(format!("({})", alternatives.join(" OR ")));
            }
        }
        format!("({})", terms.join(if s.any { " OR " } else { " AND " }))
    }

    /// `FROM` and the tenant/relation part of `WHERE`.
    pub(super) fn source(&mut self, source: Source<'_>) -> (String, String) {
        let t = self.param(Lit::Text(self.tenant.clone()));
        match source {
            Source::Table(table) => (format!("{table} e"), format!("e.tenant_id = {t}")),
            Source::MembersOf(cid) => {
                let c = self.param(Lit::Text(cid.to_owned()));
                (
                    "agent_collection_members r JOIN agent_instances e ON e.tenant_id = r.tenant_id AND e.id = r.instance_id".into(),
                    format!("r.tenant_id = {t} AND r.collection_id = {c}"),
                )
            }
            Source::CollectionsOf(iid) => {
                let i = self.param(Lit::Text(iid.to_owned()));
                (
                    "agent_collection_members r JOIN agent_collections e ON e.tenant_id = r.tenant_id AND e.id = r.collection_id".into(),
                    format!("r.tenant_id = {t} AND r.instance_id = {i}"),
                )
            }
        }
    }

    /// The filter's and the search's terms.
    pub(super) fn criteria(
        &mut self,
        ty: &'static EntityType,
        c: &Criteria,
        clauses: &mut Vec<String>,
    ) {
        if let Some(f) = &c.filter {
            let p = self.predicate("e", ty, f);
            clauses.push(p);
        }
        if let Some(s) = &c.search {
            let p = self.search("e", ty, s);
            clauses.push(p);
        }
    }

    /// Rows strictly after a cursor (`values`, then `id` read from
    /// `id_column`) in the order of `keys` then id: nulls sort first
    /// ascending and last descending.
    pub(super) fn after(
        &mut self,
        keys: &[(Val, bool)],
        values: &[serde_json::Value],
        id: &str,
        id_column: &str,
    ) -> String {
        let Some(((key, descending), rest)) = keys.split_first() else {
            let p = self.param(Lit::Text(id.to_owned()));
            return format!("{id_column} > {p}");
        };
        let v = values.first().cloned().unwrap_or(serde_json::Value::Null);
        let values = values.get(1..).unwrap_or_default();
        let x = &key.sql;
        let Some(lit) = D::cursor(key.kind, &v) else {
            let tail = self.after(rest, values, id, id_column);
            return if *descending {
                format!("({x} IS NULL AND {tail})")
            } else {
                format!("(({x} IS NULL AND {tail}) OR {x} IS NOT NULL)")
            };
        };
        let first = self.param(lit.clone());
        let equal = if D::REPEATS {
            first.clone()
        } else {
            self.param(lit)
        };
        let tail = self.after(rest, values, id, id_column);
        if *descending {
            format!("({x} < {first} OR {x} IS NULL OR ({x} = {equal} AND {tail}))")
        } else {
            format!("({x} > {first} OR ({x} = {equal} AND {tail}))")
        }
    }
}

/// The count statement of the rows a filter and a search select.
pub(super) fn count<D: Dialect>(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    c: &Criteria,
) -> Compiled {
    let mut b = Builder::<D>::new(tenant);
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

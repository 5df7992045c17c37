//! OData syntax trees translated into PostgreSQL SQL.
//!
//! The same rows as the SQLite translation, written for PostgreSQL:
//! properties with their own column (`id`, `displayName`, `managedBy`,
//! `originatingStore`, the timestamps) are read from it, so filters and sorts
//! use the indexes; any other path reads the document as `jsonb`, typed by the
//! schema (strings as `text` in the bytewise "C" collation, booleans as
//! `boolean` only where the JSON holds one, so no stored value can make a
//! cast fail); names compare and sort as `lower(…)` ([`store::is_name`]).
//! `ownerIds/any(o: o eq …)` on instances and
//! `skills/any(s: s/tags/any(t: t eq …))` on manifests (also through
//! `agentCardManifest/`) use the side tables; other lambdas range over
//! `jsonb_array_elements`. Every predicate is written so that it is never SQL
//! NULL: OData's two-valued logic survives `not`. Every value from the
//! request is a parameter; only schema-checked property names (reduced to
//! identifier characters) are written into the statement.

use crate::domain::schema::{AGENT_CARD_MANIFEST, EntityType};
use crate::odata::filter::{self, CmpOp, Func, Literal, Operand, Path, Quantifier, Ty};
use crate::odata::{Cursor, Expr, SEARCHABLE, Search};
use crate::store::{self, Criteria, ListQuery, Side, pages_by_name, side_values};
use bytes::BytesMut;
use std::error::Error;
use tokio_postgres::types::{IsNull, ToSql, Type, WrongType};

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

/// A statement and its parameters, `$1` first.
#[derive(Debug)]
pub(super) struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
    /// Sort values selected after id, doc and version (the paging cursor's).
    pub sort_columns: usize,
}

/// One statement parameter. The statement casts each placeholder to the
/// type of its variant (`$1::text`, `$2::boolean`, …), so the server always
/// asks for the type the value has.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Param {
    /// The SQL type the placeholder is cast to.
    fn sql_type(&self) -> &'static str {
        match self {
            Param::Text(_) => "text",
            Param::Int(_) => "bigint",
            Param::Float(_) => "float8",
            Param::Bool(_) => "boolean",
        }
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>>
    where
        Self: Sized,
    {
        match self {
            Param::Text(v) => v.to_sql(ty, out),
            Param::Int(v) => v.to_sql(ty, out),
            Param::Float(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool
    where
        Self: Sized,
    {
        <String as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
            || <f64 as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    /// Checks the variant, not just the enum, against the requested type.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        fn checked<T: ToSql>(
            v: &T,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
            if T::accepts(ty) {
                v.to_sql(ty, out)
            } else {
                Err(Box::new(WrongType::new::<T>(ty.clone())))
            }
        }
        match self {
            Param::Text(v) => checked(v, ty, out),
            Param::Int(v) => checked(v, ty, out),
            Param::Float(v) => checked(v, ty, out),
            Param::Bool(v) => checked(v, ty, out),
        }
    }
}

/// The SQL type of a value expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Number,
    /// The literal `null`, or a path that denotes nothing.
    Null,
}

/// A value expression and its SQL type; SQL NULL where OData has null.
#[derive(Debug, Clone)]
struct Val {
    sql: String,
    kind: Kind,
}

impl Val {
    fn null() -> Self {
        Val {
            sql: "NULL".into(),
            kind: Kind::Null,
        }
    }

    /// The value as `text`, whatever its type (for mismatched operands).
    fn text(&self) -> String {
        match self.kind {
            Kind::Text => self.sql.clone(),
            Kind::Null => "NULL::text".into(),
            Kind::Bool | Kind::Number => format!("(({})::text)", self.sql),
        }
    }
}

/// A lambda variable in scope.
struct Var {
    name: String,
    /// The alias of the `jsonb_array_elements` row holding it.
    alias: String,
    /// What each element is, for typing paths through the variable.
    element: Ty,
}

struct Builder<'a> {
    tenant: &'a str,
    params: Vec<Param>,
    aliases: usize,
    vars: Vec<Var>,
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

/// The entity a single-valued navigation of `ty` leads to, when storage can
/// follow it (an instance's manifest, through `manifest_id`).
fn linked(ty: &'static EntityType, name: &str) -> Option<&'static EntityType> {
    let nav = ty.navigation(name)?;
    (!nav.collection && std::ptr::eq(nav.target, &AGENT_CARD_MANIFEST)).then_some(nav.target)
}

/// A `text[]` path literal such as `'{"skills","tags"}'`. Segments are
/// property names the checker resolved; anything but identifier characters
/// is dropped, so nothing from the request can leave the literal.
fn json_path(segments: &[String]) -> String {
    let parts: Vec<String> = segments
        .iter()
        .map(|s| {
            let clean: String = s
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            format!("\"{clean}\"")
        })
        .collect();
    format!("'{{{}}}'", parts.join(","))
}

/// The JSON value at `segments` below the `jsonb` expression `src`.
fn json_at(src: &str, segments: &[String]) -> String {
    format!("({src} #> {})", json_path(segments))
}

/// The value at `segments` below `src`, typed as `kind`.
fn extract(src: &str, segments: &[String], kind: Kind) -> Val {
    let v = json_at(src, segments);
    let sql = match kind {
        Kind::Bool => {
            format!("(CASE WHEN jsonb_typeof({v}) = 'boolean' THEN ({v})::boolean END)")
        }
        Kind::Number => {
            format!("(CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::float8 END)")
        }
        Kind::Text | Kind::Null => {
            format!("(({src} #>> {}) COLLATE \"C\")", json_path(segments))
        }
    };
    Val {
        sql,
        kind: if kind == Kind::Null { Kind::Text } else { kind },
    }
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

/// The least string greater than every string starting with `prefix`
/// (bytewise, as the "C" collation compares), if there is one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn is_null(o: &Operand) -> bool {
    matches!(o, Operand::Literal(Literal::Null))
}

fn is_literal(o: &Operand) -> bool {
    matches!(o, Operand::Literal(_))
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

    /// Binds `p` and returns its placeholder, cast to its type.
    fn param(&mut self, p: Param) -> String {
        let ty = p.sql_type();
        self.params.push(p);
        format!("${}::{ty}", self.params.len())
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
    fn value(&mut self, base: &str, ty: &'static EntityType, segments: &[String]) -> Val {
        let Some(first) = segments.first() else {
            return Val::null();
        };
        if let Some(var) = self.var(first) {
            let src = format!("{}.value", var.alias);
            return extract(&src, &segments[1..], self.kind_of(ty, segments));
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
            && let Some(col) = column(first)
        {
            return Val {
                sql: format!("{base}.{col}"),
                kind: Kind::Text,
            };
        }
        let kind = self.kind_of(ty, segments);
        extract(&format!("({base}.doc::jsonb)"), segments, kind)
    }

    fn literal(&mut self, l: &Literal) -> Val {
        match l {
            Literal::Null => Val::null(),
            Literal::Bool(b) => Val {
                sql: self.param(Param::Bool(*b)),
                kind: Kind::Bool,
            },
            Literal::Number(n) => Val {
                sql: self.param(Param::Float(*n)),
                kind: Kind::Number,
            },
            Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s) => Val {
                sql: self.param(Param::Text(s.clone())),
                kind: Kind::Text,
            },
        }
    }

    fn operand(&mut self, base: &str, ty: &'static EntityType, o: &Operand) -> Val {
        match o {
            Operand::Property(p) => self.value(base, ty, &p.segments),
            Operand::Literal(l) => self.literal(l),
        }
    }

    /// Whether `o` is an entity's name, which compares without ASCII case.
    fn is_name(&self, ty: &'static EntityType, o: &Operand) -> bool {
        match o {
            Operand::Property(p) => {
                p.segments.first().is_some_and(|s| self.var(s).is_none())
                    && store::is_name(ty, &p.segments)
            }
            Operand::Literal(_) => false,
        }
    }

    /// A property's value as it sorts: names as `lower(…)`, the expression
    /// their index holds.
    fn sort_value(&mut self, base: &str, ty: &'static EntityType, segments: &[String]) -> Val {
        let v = self.value(base, ty, segments);
        let is_var = segments.first().is_some_and(|s| self.var(s).is_some());
        if !is_var && store::is_name(ty, segments) && v.kind == Kind::Text {
            Val {
                sql: format!("lower({})", v.sql),
                kind: Kind::Text,
            }
        } else {
            v
        }
    }

    /// An operand of a comparison; when `fold` (one side is a name), text
    /// compares without ASCII case: names as their index holds them, other
    /// text through `lower()` (property values are all in the "C" collation,
    /// where it folds ASCII only), string literals lowered here.
    fn compared(&mut self, base: &str, ty: &'static EntityType, o: &Operand, fold: bool) -> Val {
        if !fold {
            return self.operand(base, ty, o);
        }
        match o {
            Operand::Property(p) if self.is_name(ty, o) => self.sort_value(base, ty, &p.segments),
            Operand::Literal(Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s)) => Val {
                sql: self.param(Param::Text(s.to_ascii_lowercase())),
                kind: Kind::Text,
            },
            _ => {
                let v = self.operand(base, ty, o);
                if v.kind == Kind::Text {
                    Val {
                        sql: format!("lower({})", v.sql),
                        kind: Kind::Text,
                    }
                } else {
                    v
                }
            }
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
            Expr::In(a, values) => self.membership(base, ty, a, values),
            Expr::Call(func, a, b) => self.call(base, ty, *func, a, b),
            Expr::Lambda {
                quantifier,
                collection,
                variable,
                body,
            } => self.lambda(base, ty, *quantifier, collection, variable, body.as_deref()),
            Expr::Truthy(o) => match o {
                Operand::Literal(Literal::Bool(true)) => "TRUE".into(),
                Operand::Literal(_) => "FALSE".into(),
                Operand::Property(p) => {
                    let x = self.value(base, ty, &p.segments);
                    if x.kind == Kind::Bool {
                        format!("({} IS TRUE)", x.sql)
                    } else {
                        "FALSE".into()
                    }
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
            return "FALSE".into();
        }
        let eq = op == CmpOp::Eq;
        match (na, nb) {
            (true, true) => return if eq { "TRUE" } else { "FALSE" }.into(),
            (true, false) | (false, true) => {
                let x = self.operand(base, ty, if na { b } else { a });
                let test = if eq { "IS NULL" } else { "IS NOT NULL" };
                return format!("({} {test})", x.sql);
            }
            (false, false) => {}
        }
        // Equality is symmetric: keep the property on the left, where an
        // index can serve `column = $n`.
        let (a, b) = if !ordering && is_literal(a) && !is_literal(b) {
            (b, a)
        } else {
            (a, b)
        };
        let fold = self.is_name(ty, a) || self.is_name(ty, b);
        let x = self.compared(base, ty, a, fold);
        let y = self.compared(base, ty, b, fold);
        let (xs, ys) = if x.kind == y.kind {
            (x.sql, y.sql)
        } else {
            (x.text(), y.text())
        };
        match op {
            // Against a literal, plain `=` guarded so that a missing value
            // gives false, never NULL.
            CmpOp::Eq if is_literal(b) => format!("({xs} IS NOT NULL AND {xs} = {ys})"),
            CmpOp::Ne if is_literal(b) => format!("({xs} IS NULL OR {xs} <> {ys})"),
            CmpOp::Eq => format!("({xs} IS NOT DISTINCT FROM {ys})"),
            CmpOp::Ne => format!("({xs} IS DISTINCT FROM {ys})"),
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
                // Two literals alone would compare in the database's default
                // collation; strings compare bytewise everywhere else.
                let both = is_literal(a) && is_literal(b);
                let collate = |s: String, o: &Operand| {
                    if both && is_literal(o) && x.kind == Kind::Text {
                        format!("({s} COLLATE \"C\")")
                    } else {
                        s
                    }
                };
                let (xc, yc) = (collate(xs, a), collate(ys, b));
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
            return if values.contains(l) { "TRUE" } else { "FALSE" }.into();
        }
        let fold = self.is_name(ty, a);
        let x = self.compared(base, ty, a, fold);
        let list: Vec<Val> = values
            .iter()
            .filter(|v| **v != Literal::Null)
            .map(|v| self.compared(base, ty, &Operand::Literal(v.clone()), fold))
            .collect();
        let mut parts = Vec::new();
        if !list.is_empty() {
            let same = list.iter().all(|v| v.kind == x.kind);
            let xs = if same { x.sql.clone() } else { x.text() };
            let items: Vec<String> = list
                .iter()
                .map(|v| if same { v.sql.clone() } else { v.text() })
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
            "FALSE".into()
        } else {
            format!("({})", parts.join(" OR "))
        }
    }

    /// startswith, endswith and contains, ignoring ASCII case as SQLite's
    /// LIKE does (`lower()` in the "C" collation folds ASCII only).
    fn call(
        &mut self,
        base: &str,
        ty: &'static EntityType,
        func: Func,
        a: &Operand,
        b: &Operand,
    ) -> String {
        if is_null(a) || is_null(b) {
            return "FALSE".into();
        }
        if let (
            Operand::Property(p),
            Operand::Literal(Literal::String(text) | Literal::Guid(text)),
        ) = (a, b)
        {
            let x = self.value(base, ty, &p.segments).text();
            let lowered = text.to_ascii_lowercase();
            let esc = like_escape(&lowered);
            let pattern = match func {
                Func::StartsWith => format!("{esc}%"),
                Func::EndsWith => format!("%{esc}"),
                Func::Contains => format!("%{esc}%"),
            };
            let like = self.param(Param::Text(pattern));
            let mut sql = format!("({x} IS NOT NULL AND lower({x}) LIKE {like} ESCAPE '\\'");
            // A prefix of a name is also a range of `lower(display_name)`,
            // which its expression index answers even in a generic plan.
            let is_name = p.segments.len() == 1
                && self.var(&p.segments[0]).is_none()
                && column(&p.segments[0]) == Some("display_name");
            if func == Func::StartsWith && is_name && !lowered.is_empty() {
                let end = prefix_end(&lowered);
                let lo = self.param(Param::Text(lowered));
                sql.push_str(&format!(" AND lower({x}) >= {lo}"));
                if let Some(end) = end {
                    let hi = self.param(Param::Text(end));
                    sql.push_str(&format!(" AND lower({x}) < {hi}"));
                }
            }
            sql.push(')');
            return sql;
        }
        let x = self.operand(base, ty, a).text();
        let y = self.operand(base, ty, b).text();
        let (lx, ly) = (
            format!("lower(({x}) COLLATE \"C\")"),
            format!("lower(({y}) COLLATE \"C\")"),
        );
        let test = match func {
            Func::StartsWith => format!("starts_with({lx}, {ly})"),
            Func::EndsWith => format!("right({lx}, length({y})) = {ly}"),
            Func::Contains => format!("strpos({lx}, {ly}) > 0"),
        };
        format!("({x} IS NOT NULL AND {y} IS NOT NULL AND {test})")
    }

    fn in_list(&mut self, values: &[&str]) -> String {
        let list: Vec<String> = values
            .iter()
            .map(|v| self.param(Param::Text((*v).to_owned())))
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
        let t = self.param(Param::Text(self.tenant.to_owned()));
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
        let Some(first) = segs.first() else {
            return "FALSE".into();
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
        let (array, through) = match var {
            Some(alias) => (json_at(&format!("{alias}.value"), &segs[1..]), None),
            None if ty.navigation(first).is_some() => {
                if linked(ty, first).is_none() {
                    return "FALSE".into();
                }
                let m = self.alias("m");
                (json_at(&format!("({m}.doc::jsonb)"), &segs[1..]), Some(m))
            }
            None => (json_at(&format!("({base}.doc::jsonb)"), segs), None),
        };
        let j = self.alias("j");
        let from = format!(
            "jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} END) AS {j}(value)"
        );
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
        let inner = match (quantifier, test) {
            (Quantifier::All, Some(test)) => {
                format!("(NOT EXISTS (SELECT 1 FROM {from} WHERE NOT {test}))")
            }
            (_, Some(test)) => format!("EXISTS (SELECT 1 FROM {from} WHERE {test})"),
            (_, None) => format!("EXISTS (SELECT 1 FROM {from})"),
        };
        match through {
            None => inner,
            Some(m) => format!(
                "EXISTS (SELECT 1 FROM agent_card_manifests {m} WHERE {m}.tenant_id = {base}.tenant_id AND {m}.id = {base}.manifest_id AND {inner})"
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
            let esc = like_escape(&term.text.to_ascii_lowercase());
            let mut alternatives = Vec::new();
            for p in props {
                let x = self.value(base, ty, &[p.to_owned()]).text();
                let start = self.param(Param::Text(format!("{esc}%")));
                let word = self.param(Param::Text(format!("% {esc}%")));
                alternatives.push(format!(
                    "lower({x}) LIKE {start} ESCAPE '\\' OR lower({x}) LIKE {word} ESCAPE '\\'"
                ));
            }
            if alternatives.is_empty() {
                terms.push("FALSE".to_owned());
            } else {
                terms.push(format!("({})", alternatives.join(" OR ")));
            }
        }
        format!("({})", terms.join(if s.any { " OR " } else { " AND " }))
    }

    /// `FROM` and the tenant/relation part of `WHERE`.
    fn source(&mut self, source: Source<'_>) -> (String, String) {
        let t = self.param(Param::Text(self.tenant.to_owned()));
        match source {
            Source::Table(table) => (format!("{table} e"), format!("e.tenant_id = {t}")),
            Source::MembersOf(cid) => {
                let c = self.param(Param::Text(cid.to_owned()));
                (
                    "agent_collection_members r JOIN agent_instances e ON e.tenant_id = r.tenant_id AND e.id = r.instance_id".into(),
                    format!("r.tenant_id = {t} AND r.collection_id = {c}"),
                )
            }
            Source::CollectionsOf(iid) => {
                let i = self.param(Param::Text(iid.to_owned()));
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

    /// A cursor value as a parameter of the key's type; None for null (and
    /// for a value of another type, which no token issued here carries).
    fn cursor_param(kind: Kind, v: &serde_json::Value) -> Option<Param> {
        use serde_json::Value;
        match (kind, v) {
            (Kind::Text | Kind::Null, Value::String(s)) => Some(Param::Text(s.clone())),
            (Kind::Bool, Value::Bool(b)) => Some(Param::Bool(*b)),
            // SQLite keeps booleans as 0 and 1.
            (Kind::Bool, Value::Number(n)) => Some(Param::Bool(n.as_f64() != Some(0.0))),
            (Kind::Number, Value::Number(n)) => n.as_f64().map(Param::Float),
            _ => None,
        }
    }

    /// Rows strictly after `cursor` in the order of `keys` then id: nulls
    /// sort first ascending and last descending, as in SQLite.
    fn after(&mut self, keys: &[(Val, bool)], values: &[serde_json::Value], id: &str) -> String {
        let Some(((x, descending), rest)) = keys.split_first() else {
            let p = self.param(Param::Text(id.to_owned()));
            return format!("e.id > {p}");
        };
        let v = values.first().cloned().unwrap_or(serde_json::Value::Null);
        let values = values.get(1..).unwrap_or_default();
        let x = &x.sql;
        let Some(p) = Self::cursor_param(keys[0].0.kind, &v) else {
            let tail = self.after(rest, values, id);
            return if *descending {
                format!("({x} IS NULL AND {tail})")
            } else {
                format!("(({x} IS NULL AND {tail}) OR {x} IS NOT NULL)")
            };
        };
        let p = self.param(p);
        let tail = self.after(rest, values, id);
        if *descending {
            format!("({x} < {p} OR {x} IS NULL OR ({x} = {p} AND {tail}))")
        } else {
            format!("({x} > {p} OR ({x} = {p} AND {tail}))")
        }
    }
}

/// The page query: `SELECT id, doc, version, <sort values…>`, the sort values
/// as `jsonb` (JSON `null` for a missing value), one more row than `limit`.
pub(super) fn list(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    q: &ListQuery,
) -> Compiled {
    let mut b = Builder::new(tenant);
    let (from, scope) = b.source(source);
    let mut clauses = vec![scope];
    b.criteria(ty, &q.criteria, &mut clauses);
    // Name order is the `lower(display_name)` index's own: no sort.
    let by_name = matches!(source, Source::Table(_)) && pages_by_name(ty, q);
    let keys: Vec<(Val, bool)> = if by_name {
        vec![(b.sort_value("e", ty, &["displayName".to_owned()]), false)]
    } else {
        q.order
            .iter()
            .map(|k| (b.sort_value("e", ty, &k.path.segments), k.descending))
            .collect()
    };
    if let Some(Cursor { values, id }) = &q.after {
        let after = b.after(&keys, values, id);
        clauses.push(after);
    }
    let mut select = String::from("e.id, e.doc::text, e.version");
    let mut order = Vec::new();
    for (x, descending) in &keys {
        select.push_str(&format!(", COALESCE(to_jsonb({}), 'null'::jsonb)", x.sql));
        order.push(if *descending {
            format!("{} DESC NULLS LAST", x.sql)
        } else {
            format!("{} ASC NULLS FIRST", x.sql)
        });
    }
    order.push("e.id".into());
    let limit = b.param(Param::Int(
        i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let skip = b.param(Param::Int(i64::try_from(q.skip).unwrap_or(i64::MAX)));
    Compiled {
        sql: format!(
            "SELECT {select} FROM {from} WHERE {} ORDER BY {} LIMIT {limit} OFFSET {skip}",
            clauses.join(" AND "),
            order.join(", ")
        ),
        params: b.params,
        sort_columns: keys.len(),
    }
}

/// The count query for the same rows: one `bigint`.
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
mod tests;

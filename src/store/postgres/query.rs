//! PostgreSQL's dialect of the OData → SQL translation (`store::sql`), and
//! its page and count statements. The same rows as SQLite's, written for
//! PostgreSQL:
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

use super::super::sql::{Builder, Dialect, Kind, Lit, Val, column, is_null, like_escape};
pub(super) use super::super::sql::{Compiled, Source};
use crate::domain::schema::EntityType;
use crate::odata::Cursor;
use crate::odata::filter::{Func, Literal, Operand};
use crate::store::{Criteria, ListQuery, pages_by_name};
use bytes::BytesMut;
use std::error::Error;
use tokio_postgres::types::{IsNull, ToSql, Type, WrongType};

/// One statement parameter (the tests' name for it).
#[cfg(test)]
type Param = Lit;

/// The statement casts each placeholder to the type of its parameter
/// (`$1::text`, `$2::boolean`, …), so the server always asks for the type
/// the value has.
impl Lit {
    /// The SQL type the placeholder is cast to.
    fn sql_type(&self) -> &'static str {
        match self {
            Lit::Text(_) => "text",
            Lit::Int(_) => "bigint",
            Lit::Float(_) => "float8",
            Lit::Bool(_) => "boolean",
        }
    }
}

impl ToSql for Lit {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>>
    where
        Self: Sized,
    {
        match self {
            Lit::Text(v) => v.to_sql(ty, out),
            Lit::Int(v) => v.to_sql(ty, out),
            Lit::Float(v) => v.to_sql(ty, out),
            Lit::Bool(v) => v.to_sql(ty, out),
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
            Lit::Text(v) => checked(v, ty, out),
            Lit::Int(v) => checked(v, ty, out),
            Lit::Float(v) => checked(v, ty, out),
            Lit::Bool(v) => checked(v, ty, out),
        }
    }
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

/// The value as `text`, whatever its type (for mismatched operands).
fn text(v: &Val) -> String {
    match v.kind {
        Kind::Text => v.sql.clone(),
        Kind::Null => "NULL::text".into(),
        Kind::Bool | Kind::Number => format!("(({})::text)", v.sql),
    }
}

/// PostgreSQL: numbered, typed placeholders; `jsonb` read with typing guards
/// so no stored value can make a cast fail; text in the bytewise "C"
/// collation; names as `lower(…)`, the expression their index holds.
pub(super) struct Postgres;

impl Dialect for Postgres {
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";
    const EXISTS: &'static str = "EXISTS";
    const REPEATS: bool = true;

    fn placeholder(n: usize, lit: &Lit) -> String {
        format!("${n}::{}", lit.sql_type())
    }

    fn doc(base: &str) -> String {
        format!("({base}.doc::jsonb)")
    }

    fn extract(src: &str, segments: &[String], kind: Kind) -> Val {
        extract(src, segments, kind)
    }

    fn elements(src: &str, segments: &[String], j: &str) -> String {
        let array = json_at(src, segments);
        format!(
            "jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} END) AS {j}(value)"
        )
    }

    fn fold_name(sql: &str) -> String {
        format!("lower({sql})")
    }

    fn same(x: &str, y: &str) -> String {
        format!("({x} IS NOT DISTINCT FROM {y})")
    }

    fn different(x: &str, y: &str) -> String {
        format!("({x} IS DISTINCT FROM {y})")
    }

    /// Two literals alone would compare in the database's default collation.
    fn bytewise(sql: String) -> String {
        format!("({sql} COLLATE \"C\")")
    }

    fn truthy(x: &Val) -> String {
        if x.kind == Kind::Bool {
            format!("({} IS TRUE)", x.sql)
        } else {
            "FALSE".into()
        }
    }

    fn as_text(x: &Val) -> String {
        text(x)
    }

    /// When `fold` (one side is a name), text compares without ASCII case:
    /// names as their index holds them, other text through `lower()`
    /// (property values are all in the "C" collation, where it folds ASCII
    /// only), string literals lowered here.
    fn compared(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        o: &Operand,
        fold: bool,
    ) -> Val {
        if !fold {
            return b.operand(base, ty, o);
        }
        match o {
            Operand::Property(p) if b.is_name(ty, o) => b.sort_value(base, ty, &p.segments),
            Operand::Literal(Literal::String(s) | Literal::DateTime(s) | Literal::Guid(s)) => Val {
                sql: b.param(Lit::Text(s.to_ascii_lowercase())),
                kind: Kind::Text,
            },
            _ => {
                let v = b.operand(base, ty, o);
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

    /// Ignoring ASCII case as SQLite's LIKE does (`lower()` in the "C"
    /// collation folds ASCII only).
    fn call(
        b: &mut Builder<Self>,
        base: &str,
        ty: &'static EntityType,
        func: Func,
        a: &Operand,
        o: &Operand,
    ) -> String {
        if is_null(a) || is_null(o) {
            return "FALSE".into();
        }
        if let (
            Operand::Property(p),
            Operand::Literal(Literal::String(text) | Literal::Guid(text)),
        ) = (a, o)
        {
            let x = self::text(&b.value(base, ty, &p.segments));
            let lowered = text.to_ascii_lowercase();
            let esc = like_escape(&lowered);
            let pattern = match func {
                Func::StartsWith => format!("{esc}%"),
                Func::EndsWith => format!("%{esc}"),
                Func::Contains => format!("%{esc}%"),
            };
            let like = b.param(Lit::Text(pattern));
            let mut sql = format!("({x} IS NOT NULL AND lower({x}) LIKE {like} ESCAPE '\\'");
            // A prefix of a name is also a range of `lower(display_name)`,
            // which its expression index answers even in a generic plan.
            let is_name = p.segments.len() == 1
                && !b.is_var(&p.segments[0])
                && column(ty, &p.segments[0]) == Some("display_name");
            if func == Func::StartsWith && is_name && !lowered.is_empty() {
                let end = prefix_end(&lowered);
                let lo = b.param(Lit::Text(lowered));
                sql.push_str(&format!(" AND lower({x}) >= {lo}"));
                if let Some(end) = end {
                    let hi = b.param(Lit::Text(end));
                    sql.push_str(&format!(" AND lower({x}) < {hi}"));
                }
            }
            sql.push(')');
            return sql;
        }
        let x = text(&b.operand(base, ty, a));
        let y = text(&b.operand(base, ty, o));
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

    fn search_subject(x: &Val) -> String {
        format!("lower({})", text(x))
    }

    fn search_text(text: &str) -> String {
        text.to_ascii_lowercase()
    }

    fn cursor(kind: Kind, v: &serde_json::Value) -> Option<Lit> {
        use serde_json::Value;
        match (kind, v) {
            (Kind::Text | Kind::Null, Value::String(s)) => Some(Lit::Text(s.clone())),
            (Kind::Bool, Value::Bool(b)) => Some(Lit::Bool(*b)),
            // SQLite keeps booleans as 0 and 1.
            (Kind::Bool, Value::Number(n)) => Some(Lit::Bool(n.as_f64() != Some(0.0))),
            (Kind::Number, Value::Number(n)) => n.as_f64().map(Lit::Float),
            _ => None,
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
    let mut b = Builder::<Postgres>::new(tenant);
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
        let after = b.after(&keys, values, id, "e.id");
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
    let limit = b.param(Lit::Int(
        i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let skip = b.param(Lit::Int(i64::try_from(q.skip).unwrap_or(i64::MAX)));
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

/// The count statement for the same rows.
pub(super) fn count(
    tenant: &str,
    ty: &'static EntityType,
    source: Source<'_>,
    c: &Criteria,
) -> Compiled {
    super::super::sql::count::<Postgres>(tenant, ty, source, c)
}

#[cfg(test)]
mod tests;

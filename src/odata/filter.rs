//! `$filter`: a lexer and a recursive-descent parser into [`Expr`], and a
//! checker that resolves every property path against the entity's schema.
//! Bounded in length, depth and size so that no input costs more than a
//! parse of a few kilobytes.

use super::ODataError;
use super::edm::{ComplexType, EntityType, Kind};

/// The longest `$filter` accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// The deepest nesting accepted (parentheses, `not`, lambdas).
pub const MAX_DEPTH: usize = 32;
/// The most nodes (comparisons, calls, lambdas, logical operators) accepted.
pub const MAX_NODES: usize = 200;

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(CmpOp, Operand, Operand),
    In(Operand, Vec<Literal>),
    Call(Func, Operand, Operand),
    /// `path/any(v: body)`, `path/any()` (body `None`) or `path/all(v: body)`.
    Lambda {
        quantifier: Quantifier,
        collection: Path,
        variable: String,
        body: Option<Box<Expr>>,
    },
    /// A boolean operand used as a predicate: `capabilities/streaming`, `true`.
    Truthy(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Property(Path),
    Literal(Literal),
}

/// A property path; its first segment may be a lambda variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<String>,
    /// Byte offset in the `$filter` text, for messages.
    pub position: usize,
}

impl Path {
    pub fn text(&self) -> String {
        self.segments.join("/")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// Normalised to the stored form: UTC, seven fractional digits.
    DateTime(String),
    Guid(String),
}

/// `property eq 'value'`, for conditions the server adds itself.
pub fn equals(property: &str, value: &str) -> Expr {
    Expr::Compare(
        CmpOp::Eq,
        Operand::Property(Path {
            segments: vec![property.to_owned()],
            position: 0,
        }),
        Operand::Literal(Literal::String(value.to_owned())),
    )
}

/// `property in ('a', 'b')`, for conditions the server adds itself.
pub fn one_of(property: &str, values: &[&str]) -> Expr {
    Expr::In(
        Operand::Property(Path {
            segments: vec![property.to_owned()],
            position: 0,
        }),
        values
            .iter()
            .map(|v| Literal::String((*v).to_owned()))
            .collect(),
    )
}

/// `collection/any(v: v in ('a', 'b'))`, for conditions the server adds itself.
pub fn any_of(collection: &str, values: &[&str]) -> Expr {
    Expr::Lambda {
        quantifier: Quantifier::Any,
        collection: Path {
            segments: vec![collection.to_owned()],
            position: 0,
        },
        variable: "v".into(),
        body: Some(Box::new(one_of("v", values))),
    }
}

/// Both conditions (either may be absent).
pub fn and(a: Option<Expr>, b: Option<Expr>) -> Option<Expr> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Expr::And(Box::new(a), Box::new(b))),
        (a, b) => a.or(b),
    }
}

impl Expr {
    /// Whether a path of the entity starting with `property` appears
    /// anywhere in the expression (lambda variables are not the entity's).
    pub fn mentions(&self, property: &str) -> bool {
        let names = |o: &Operand| matches!(o, Operand::Property(p) if p.segments.first().is_some_and(|s| s == property));
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.mentions(property) || b.mentions(property),
            Expr::Not(e) => e.mentions(property),
            Expr::Compare(_, a, b) | Expr::Call(_, a, b) => names(a) || names(b),
            Expr::In(o, _) | Expr::Truthy(o) => names(o),
            Expr::Lambda {
                collection,
                variable,
                body,
                ..
            } => {
                collection.segments.first().is_some_and(|s| s == property)
                    || (variable != property && body.as_ref().is_some_and(|b| b.mentions(property)))
            }
        }
    }

    /// The operands of a top-level chain of `and`s; the expression itself
    /// when it is no `and`.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        fn collect<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
            match e {
                Expr::And(a, b) => {
                    collect(a, out);
                    collect(b, out);
                }
                other => out.push(other),
            }
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out
    }
}

/// The string literals a lambda body compares its variable `var` with:
/// `var eq 'x'` (either side) or `var in ('x', …)`; `None` for any other body.
pub fn equality_literals<'e>(body: &'e Expr, var: &str) -> Option<Vec<&'e str>> {
    let is_var = |o: &Operand| matches!(o, Operand::Property(p) if p.segments.len() == 1 && p.segments[0] == var);
    let text = |l: &'e Literal| match l {
        Literal::String(s) | Literal::Guid(s) => Some(s.as_str()),
        _ => None,
    };
    match body {
        Expr::Compare(CmpOp::Eq, a, Operand::Literal(l)) if is_var(a) => Some(vec![text(l)?]),
        Expr::Compare(CmpOp::Eq, Operand::Literal(l), b) if is_var(b) => Some(vec![text(l)?]),
        Expr::In(a, values) if is_var(a) && !values.is_empty() => values.iter().map(text).collect(),
        _ => None,
    }
}

// ------------------------------------------------------------------ lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    DateTime(String),
    Guid(String),
    Slash,
    Open,
    Close,
    Comma,
    Colon,
}

fn syntax(position: usize, message: impl Into<String>) -> ODataError {
    ODataError::FilterSyntax {
        position: position + 1,
        message: message.into(),
    }
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ODataError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'/' => (out.push((Tok::Slash, start)), i += 1).1,
            b'(' => (out.push((Tok::Open, start)), i += 1).1,
            b')' => (out.push((Tok::Close, start)), i += 1).1,
            b',' => (out.push((Tok::Comma, start)), i += 1).1,
            b':' => (out.push((Tok::Colon, start)), i += 1).1,
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(rest) = text.get(i..) else {
                        return Err(syntax(start, "unterminated string literal"));
                    };
                    let Some(q) = rest.find('\'') else {
                        return Err(syntax(start, "unterminated string literal"));
                    };
                    s.push_str(&rest[..q]);
                    i += q + 1;
                    if bytes.get(i) == Some(&b'\'') {
                        s.push('\'');
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Str(s), start));
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'$' => {
                let word_end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"_-.:+$".contains(b)))
                    .map_or(bytes.len(), |p| i + p);
                let candidate = &text[i..word_end];
                if let Some((tok, len)) = literal_word(candidate) {
                    out.push((tok, start));
                    i += len;
                    continue;
                }
                if c.is_ascii_digit() || c == b'-' {
                    let end = scan_number(bytes, i);
                    let num = &text[i..end];
                    let value: f64 = num
                        .parse()
                        .map_err(|_| syntax(start, format!("'{num}' is not a valid number")))?;
                    out.push((Tok::Num(value), start));
                    i = end;
                    continue;
                }
                let end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$'))
                    .map_or(bytes.len(), |p| i + p);
                if end == i {
                    return Err(syntax(
                        start,
                        format!("unexpected character '{}'", c as char),
                    ));
                }
                out.push((Tok::Ident(text[i..end].to_owned()), start));
                i = end;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(syntax(start, format!("unexpected character '{ch}'")));
            }
        }
    }
    Ok(out)
}

/// The end of a number starting at `i`: `-`? digits (`.` digits)? ([eE] [+-]? digits)?
fn scan_number(bytes: &[u8], mut i: usize) -> usize {
    let digits = |bytes: &[u8], mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    i = digits(bytes, i);
    if bytes.get(i) == Some(&b'.') {
        i = digits(bytes, i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(bytes, j);
        }
    }
    i
}

/// A GUID or a date/time at the start of `word`, with its length.
fn literal_word(word: &str) -> Option<(Tok, usize)> {
    if word.len() >= 36 {
        let g = &word[..36];
        let shape = g.char_indices().all(|(k, ch)| {
            if [8, 13, 18, 23].contains(&k) {
                ch == '-'
            } else {
                ch.is_ascii_hexdigit()
            }
        });
        if shape {
            return Some((Tok::Guid(g.to_ascii_lowercase()), 36));
        }
    }
    let b = word.as_bytes();
    let is_date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    if !is_date {
        return None;
    }
    // Longest prefix that parses as a date/time.
    let mut end = word.len();
    while end >= 10 {
        if let Some(normalised) = parse_datetime(&word[..end]) {
            return Some((Tok::DateTime(normalised), end));
        }
        end -= 1;
    }
    None
}

fn parse_datetime(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(super::edm::date_time_offset(t));
    }
    if s.len() == 10 {
        let date =
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
        return Some(super::edm::date_time_offset(date.midnight().assume_utc()));
    }
    None
}

// ------------------------------------------------------------------ parser

struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    at: usize,
    depth: usize,
    nodes: usize,
    end: usize,
    variables: Vec<String>,
}

/// A parsed term: a boolean expression or an operand awaiting an operator.
enum Term {
    Bool(Expr),
    Value(Operand),
}

/// Parses a `$filter` value.
pub fn parse(text: &str) -> Result<Expr, ODataError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(ODataError::FilterTooComplex(
            "the expression is longer than 4096 bytes",
        ));
    }
    let toks = lex(text)?;
    let mut p = Parser {
        toks: &toks,
        at: 0,
        depth: 0,
        nodes: 0,
        end: text.len(),
        variables: Vec::new(),
    };
    if toks.is_empty() {
        return Err(syntax(0, "the expression is empty"));
    }
    let e = p.or_expr()?;
    if let Some((_, pos)) = p.peek_pos() {
        return Err(syntax(pos, "unexpected text after the expression"));
    }
    Ok(e)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn peek_pos(&self) -> Option<(&Tok, usize)> {
        self.toks.get(self.at).map(|(t, p)| (t, *p))
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ODataError> {
        if self.peek() == Some(&tok) {
            self.at += 1;
            Ok(())
        } else {
            Err(syntax(self.pos(), format!("expected {what}")))
        }
    }

    fn node(&mut self) -> Result<(), ODataError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(ODataError::FilterTooComplex(
                "the expression has more than 200 terms",
            ));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ODataError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ODataError::FilterTooComplex(
                "the expression is nested more than 32 levels deep",
            ));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            self.at += 1;
            self.node()?;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            self.node()?;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ODataError> {
        if self.keyword("not") {
            self.at += 1;
            self.node()?;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ODataError> {
        let left = self.term()?;
        let op = match self.peek() {
            Some(Tok::Ident(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => Some(CmpOp::Eq),
                "ne" => Some(CmpOp::Ne),
                "gt" => Some(CmpOp::Gt),
                "ge" => Some(CmpOp::Ge),
                "lt" => Some(CmpOp::Lt),
                "le" => Some(CmpOp::Le),
                "in" => None,
                "has" => {
                    return Err(syntax(
                        self.pos(),
                        "the operator 'has' is not supported (there are no enum properties)",
                    ));
                }
                _ => return self.finish_term(left),
            },
            _ => return self.finish_term(left),
        };
        let op_pos = self.pos();
        self.at += 1;
        self.node()?;
        let Term::Value(left) = left else {
            return Err(syntax(
                op_pos,
                "the left side of a comparison must be a property or a literal",
            ));
        };
        match op {
            Some(op) => match self.term()? {
                Term::Value(right) => Ok(Expr::Compare(op, left, right)),
                Term::Bool(_) => Err(syntax(
                    op_pos,
                    "the right side of a comparison must be a property or a literal",
                )),
            },
            None => {
                self.expect(Tok::Open, "'(' after 'in'")?;
                let mut values = Vec::new();
                loop {
                    let pos = self.pos();
                    match self.term()? {
                        Term::Value(Operand::Literal(l)) => values.push(l),
                        _ => return Err(syntax(pos, "'in' takes a list of literals")),
                    }
                    if values.len() > MAX_NODES {
                        return Err(ODataError::FilterTooComplex(
                            "an 'in' list holds more than 200 values",
                        ));
                    }
                    if self.peek() == Some(&Tok::Comma) {
                        self.at += 1;
                        continue;
                    }
                    self.expect(Tok::Close, "',' or ')' in the 'in' list")?;
                    break;
                }
                Ok(Expr::In(left, values))
            }
        }
    }

    fn finish_term(&mut self, t: Term) -> Result<Expr, ODataError> {
        match t {
            Term::Bool(e) => Ok(e),
            Term::Value(v) => Ok(Expr::Truthy(v)),
        }
    }

    fn term(&mut self) -> Result<Term, ODataError> {
        let Some((tok, pos)) = self.peek_pos() else {
            return Err(syntax(self.end, "the expression ends too early"));
        };
        let tok = tok.clone();
        self.at += 1;
        match tok {
            Tok::Open => {
                self.enter()?;
                let e = self.or_expr()?;
                self.expect(Tok::Close, "')'")?;
                self.depth -= 1;
                Ok(Term::Bool(e))
            }
            Tok::Str(s) => Ok(Term::Value(Operand::Literal(Literal::String(s)))),
            Tok::Num(n) => Ok(Term::Value(Operand::Literal(Literal::Number(n)))),
            Tok::DateTime(d) => Ok(Term::Value(Operand::Literal(Literal::DateTime(d)))),
            Tok::Guid(g) => Ok(Term::Value(Operand::Literal(Literal::Guid(g)))),
            Tok::Ident(word) => {
                match word.as_str() {
                    "null" => return Ok(Term::Value(Operand::Literal(Literal::Null))),
                    "true" => return Ok(Term::Value(Operand::Literal(Literal::Bool(true)))),
                    "false" => return Ok(Term::Value(Operand::Literal(Literal::Bool(false)))),
                    _ => {}
                }
                if self.peek() == Some(&Tok::Open) {
                    return self.call(&word, pos).map(Term::Bool);
                }
                self.path(word, pos)
            }
            _ => Err(syntax(
                pos,
                "expected a property, a literal, a function or '('",
            )),
        }
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Expr, ODataError> {
        let func = match name.to_ascii_lowercase().as_str() {
            "startswith" => Func::StartsWith,
            "endswith" => Func::EndsWith,
            "contains" => Func::Contains,
            _ => return Err(ODataError::UnsupportedFunction(name.to_owned())),
        };
        self.node()?;
        self.expect(Tok::Open, "'('")?;
        let a = self.operand_arg(pos)?;
        self.expect(Tok::Comma, "',' between the arguments")?;
        let b = self.operand_arg(pos)?;
        self.expect(Tok::Close, "')' after the arguments")?;
        Ok(Expr::Call(func, a, b))
    }

    fn operand_arg(&mut self, pos: usize) -> Result<Operand, ODataError> {
        match self.term()? {
            Term::Value(v) => Ok(v),
            Term::Bool(_) => Err(syntax(
                pos,
                "function arguments must be properties or literals",
            )),
        }
    }

    fn path(&mut self, first: String, pos: usize) -> Result<Term, ODataError> {
        let mut segments = vec![first];
        while self.peek() == Some(&Tok::Slash) {
            self.at += 1;
            let seg_pos = self.pos();
            let Some(Tok::Ident(seg)) = self.peek().cloned() else {
                return Err(syntax(seg_pos, "expected a property name after '/'"));
            };
            self.at += 1;
            let quantifier = match seg.as_str() {
                "any" => Some(Quantifier::Any),
                "all" => Some(Quantifier::All),
                _ => None,
            };
            if let (Some(q), Some(Tok::Open)) = (quantifier, self.peek()) {
                let collection = Path {
                    segments,
                    position: pos,
                };
                return self.lambda(q, collection, seg_pos).map(Term::Bool);
            }
            segments.push(seg);
        }
        Ok(Term::Value(Operand::Property(Path {
            segments,
            position: pos,
        })))
    }

    fn lambda(
        &mut self,
        quantifier: Quantifier,
        collection: Path,
        pos: usize,
    ) -> Result<Expr, ODataError> {
        self.node()?;
        self.enter()?;
        self.expect(Tok::Open, "'('")?;
        if self.peek() == Some(&Tok::Close) {
            self.at += 1;
            self.depth -= 1;
            if quantifier == Quantifier::All {
                return Err(syntax(pos, "all() needs a lambda expression"));
            }
            return Ok(Expr::Lambda {
                quantifier,
                collection,
                variable: String::new(),
                body: None,
            });
        }
        let var_pos = self.pos();
        let Some(Tok::Ident(variable)) = self.peek().cloned() else {
            return Err(syntax(var_pos, "expected a lambda variable name"));
        };
        self.at += 1;
        self.expect(Tok::Colon, "':' after the lambda variable")?;
        if self.variables.contains(&variable) {
            return Err(syntax(
                var_pos,
                format!("the lambda variable '{variable}' is already in use"),
            ));
        }
        self.variables.push(variable.clone());
        let body = self.or_expr()?;
        self.variables.pop();
        self.expect(Tok::Close, "')' to close the lambda")?;
        self.depth -= 1;
        Ok(Expr::Lambda {
            quantifier,
            collection,
            variable,
            body: Some(Box::new(body)),
        })
    }
}

// ------------------------------------------------------------------ checking

/// What a path or literal denotes once resolved.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    String,
    Boolean,
    DateTime,
    Number,
    Null,
    StringCollection,
    Complex(&'static ComplexType),
    ComplexCollection(&'static ComplexType),
    Open,
    OpenCollection,
    Entity(&'static EntityType),
}

impl PartialEq for Ty {
    /// Types are equal when they are the same kind of the same schema entry.
    fn eq(&self, other: &Self) -> bool {
        use std::ptr::eq;
        match (self, other) {
            (Ty::Complex(a), Ty::Complex(b))
            | (Ty::ComplexCollection(a), Ty::ComplexCollection(b)) => eq(*a, *b),
            (Ty::Entity(a), Ty::Entity(b)) => eq(*a, *b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::String => "Edm.String",
            Ty::Boolean => "Edm.Boolean",
            Ty::DateTime => "Edm.DateTimeOffset",
            Ty::Number => "a number",
            Ty::Null => "null",
            Ty::StringCollection => "Collection(Edm.String)",
            Ty::Complex(t) => t.qualified,
            Ty::ComplexCollection(t) => t.qualified,
            Ty::Open => "an open type",
            Ty::OpenCollection => "a collection of open types",
            Ty::Entity(t) => t.qualified,
        }
    }

    fn primitive(self) -> bool {
        matches!(
            self,
            Ty::String | Ty::Boolean | Ty::DateTime | Ty::Number | Ty::Null
        )
    }
}

fn kind_ty(kind: Kind) -> Ty {
    match kind {
        Kind::String => Ty::String,
        Kind::Boolean => Ty::Boolean,
        Kind::Int32 | Kind::Double => Ty::Number,
        Kind::DateTimeOffset => Ty::DateTime,
        Kind::StringCollection => Ty::StringCollection,
        Kind::Complex(t) => Ty::Complex(t),
        Kind::ComplexCollection(t) => Ty::ComplexCollection(t),
        Kind::Open => Ty::Open,
        Kind::OpenCollection => Ty::OpenCollection,
        Kind::Untyped => Ty::Open,
        Kind::Enum(_) => Ty::String,
    }
}

/// Lambda variables in scope, with the element type each stands for.
pub type Scope<'a> = Vec<(&'a str, Ty)>;

/// Resolves a path from `ty` (or a lambda variable) to what it denotes.
pub fn resolve(ty: &'static EntityType, vars: &Scope<'_>, path: &Path) -> Result<Ty, ODataError> {
    let mut segments = path.segments.iter();
    let first = segments.next().map(String::as_str).unwrap_or_default();
    let mut current = match vars.iter().rev().find(|(v, _)| *v == first) {
        Some((_, t)) => *t,
        None => step(Ty::Entity(ty), first, path)?,
    };
    for seg in segments {
        current = step(current, seg, path)?;
    }
    Ok(current)
}

fn step(from: Ty, segment: &str, path: &Path) -> Result<Ty, ODataError> {
    let unknown = |type_name: &'static str| ODataError::UnknownProperty {
        property: path.text(),
        type_name,
    };
    match from {
        Ty::Entity(e) => {
            if let Some(p) = e.property(segment) {
                return Ok(kind_ty(p.kind));
            }
            match e.navigation(segment) {
                Some(n) if !n.collection => Ok(Ty::Entity(n.target)),
                Some(_) => Err(ODataError::NotFilterable(path.text())),
                None => Err(unknown(e.qualified)),
            }
        }
        Ty::Complex(c) => c
            .property(segment)
            .map(|p| kind_ty(p.kind))
            .ok_or_else(|| unknown(c.qualified)),
        Ty::Open | Ty::OpenCollection => Err(ODataError::NotFilterable(path.text())),
        other => Err(ODataError::TypeMismatch(format!(
            "'{}' goes through '{segment}', but {} has no properties",
            path.text(),
            other.name()
        ))),
    }
}

fn literal_ty(l: &Literal) -> Ty {
    match l {
        Literal::Null => Ty::Null,
        Literal::Bool(_) => Ty::Boolean,
        Literal::Number(_) => Ty::Number,
        Literal::String(_) | Literal::Guid(_) => Ty::String,
        Literal::DateTime(_) => Ty::DateTime,
    }
}

fn operand_ty(ty: &'static EntityType, vars: &Scope<'_>, o: &Operand) -> Result<Ty, ODataError> {
    match o {
        Operand::Literal(l) => Ok(literal_ty(l)),
        Operand::Property(p) => {
            let t = resolve(ty, vars, p)?;
            if t.primitive() {
                Ok(t)
            } else {
                Err(ODataError::TypeMismatch(format!(
                    "'{}' is {}; only primitive values can be compared here",
                    p.text(),
                    t.name()
                )))
            }
        }
    }
}

fn compatible(a: Ty, b: Ty) -> bool {
    a == b || a == Ty::Null || b == Ty::Null
}

fn describe(o: &Operand) -> String {
    match o {
        Operand::Property(p) => format!("'{}'", p.text()),
        Operand::Literal(Literal::Null) => "null".into(),
        Operand::Literal(Literal::Bool(b)) => b.to_string(),
        Operand::Literal(Literal::Number(n)) => n.to_string(),
        Operand::Literal(Literal::String(s)) => format!("the string '{s}'"),
        Operand::Literal(Literal::DateTime(d)) => d.clone(),
        Operand::Literal(Literal::Guid(g)) => g.clone(),
    }
}

/// Checks every path and type of `e` against `ty`.
pub fn check(ty: &'static EntityType, e: &Expr) -> Result<(), ODataError> {
    check_in(ty, &mut Vec::new(), e)
}

fn check_in<'a>(
    ty: &'static EntityType,
    vars: &mut Scope<'a>,
    e: &'a Expr,
) -> Result<(), ODataError> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_in(ty, vars, a)?;
            check_in(ty, vars, b)
        }
        Expr::Not(a) => check_in(ty, vars, a),
        Expr::Compare(op, a, b) => {
            let (ta, tb) = (operand_ty(ty, vars, a)?, operand_ty(ty, vars, b)?);
            if ta == Ty::Number || tb == Ty::Number {
                return Err(ODataError::TypeMismatch(format!(
                    "{} cannot be compared with {}: no property of this type is numeric",
                    describe(a),
                    describe(b)
                )));
            }
            if !compatible(ta, tb) {
                return Err(ODataError::TypeMismatch(format!(
                    "{} is {} but {} is {}",
                    describe(a),
                    ta.name(),
                    describe(b),
                    tb.name()
                )));
            }
            if ta == Ty::Boolean && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                return Err(ODataError::TypeMismatch(
                    "booleans can only be compared with eq and ne".into(),
                ));
            }
            Ok(())
        }
        Expr::In(a, values) => {
            let ta = operand_ty(ty, vars, a)?;
            for v in values {
                let tv = literal_ty(v);
                if !compatible(ta, tv) || tv == Ty::Number {
                    return Err(ODataError::TypeMismatch(format!(
                        "{} is {} but the 'in' list holds {}",
                        describe(a),
                        ta.name(),
                        tv.name()
                    )));
                }
            }
            Ok(())
        }
        Expr::Call(func, a, b) => {
            let (ta, tb) = (operand_ty(ty, vars, a)?, operand_ty(ty, vars, b)?);
            let string_like = |t: Ty| matches!(t, Ty::String | Ty::Null);
            if !string_like(ta) || !string_like(tb) {
                return Err(ODataError::TypeMismatch(format!(
                    "{func:?} takes two strings, not {} and {}",
                    ta.name(),
                    tb.name()
                )));
            }
            Ok(())
        }
        Expr::Lambda {
            collection,
            variable,
            body,
            ..
        } => {
            let element = match resolve(ty, vars, collection)? {
                Ty::StringCollection => Ty::String,
                Ty::ComplexCollection(c) => Ty::Complex(c),
                other => {
                    return Err(ODataError::TypeMismatch(format!(
                        "'{}' is {}, not a collection a lambda can range over",
                        collection.text(),
                        other.name()
                    )));
                }
            };
            if let Some(body) = body {
                vars.push((variable.as_str(), element));
                let r = check_in(ty, vars, body);
                vars.pop();
                r?;
            }
            Ok(())
        }
        Expr::Truthy(o) => match operand_ty(ty, vars, o)? {
            Ty::Boolean => Ok(()),
            other => Err(ODataError::TypeMismatch(format!(
                "{} is {}, not a boolean condition",
                describe(o),
                other.name()
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::{AGENT_CARD_MANIFEST, AGENT_INSTANCE};

    fn p(segments: &[&str]) -> Path {
        Path {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            position: 0,
        }
    }

    fn prop(segments: &[&str]) -> Operand {
        Operand::Property(p(segments))
    }

    #[test]
    fn an_expression_knows_which_properties_it_mentions() {
        let cases = [
            ("elementTypes/any(t: t eq 'Bots')", true),
            ("not (displayName eq 'x' or elementTypes/any())", true),
            (
                "supportedHosts/any(elementTypes: elementTypes eq 'x')",
                false,
            ),
            ("startswith(displayName, 'a') and isBlocked", false),
        ];
        for (text, mentioned) in cases {
            assert_eq!(
                parse(text).unwrap().mentions("elementTypes"),
                mentioned,
                "{text}"
            );
        }
    }

    fn s(v: &str) -> Operand {
        Operand::Literal(Literal::String(v.into()))
    }

    /// Positions do not matter when comparing trees.
    fn strip(e: Expr) -> Expr {
        let o = |o: Operand| match o {
            Operand::Property(mut path) => {
                path.position = 0;
                Operand::Property(path)
            }
            l => l,
        };
        match e {
            Expr::And(a, b) => Expr::And(Box::new(strip(*a)), Box::new(strip(*b))),
            Expr::Or(a, b) => Expr::Or(Box::new(strip(*a)), Box::new(strip(*b))),
            Expr::Not(a) => Expr::Not(Box::new(strip(*a))),
            Expr::Compare(op, a, b) => Expr::Compare(op, o(a), o(b)),
            Expr::In(a, v) => Expr::In(o(a), v),
            Expr::Call(f, a, b) => Expr::Call(f, o(a), o(b)),
            Expr::Lambda {
                quantifier,
                mut collection,
                variable,
                body,
            } => {
                collection.position = 0;
                Expr::Lambda {
                    quantifier,
                    collection,
                    variable,
                    body: body.map(|b| Box::new(strip(*b))),
                }
            }
            Expr::Truthy(a) => Expr::Truthy(o(a)),
        }
    }

    fn tree(text: &str) -> Expr {
        strip(parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn filters_parse_into_the_expected_trees() {
        let table: Vec<(&str, Expr)> = vec![
            (
                "displayName eq 'a'",
                Expr::Compare(CmpOp::Eq, prop(&["displayName"]), s("a")),
            ),
            (
                "displayName eq 'it''s'",
                Expr::Compare(CmpOp::Eq, prop(&["displayName"]), s("it's")),
            ),
            (
                "url ne null",
                Expr::Compare(CmpOp::Ne, prop(&["url"]), Operand::Literal(Literal::Null)),
            ),
            (
                "a eq 'x' and b eq 'y' or c eq 'z'",
                Expr::Or(
                    Box::new(Expr::And(
                        Box::new(Expr::Compare(CmpOp::Eq, prop(&["a"]), s("x"))),
                        Box::new(Expr::Compare(CmpOp::Eq, prop(&["b"]), s("y"))),
                    )),
                    Box::new(Expr::Compare(CmpOp::Eq, prop(&["c"]), s("z"))),
                ),
            ),
            (
                "a eq 'x' and (b eq 'y' or c eq 'z')",
                Expr::And(
                    Box::new(Expr::Compare(CmpOp::Eq, prop(&["a"]), s("x"))),
                    Box::new(Expr::Or(
                        Box::new(Expr::Compare(CmpOp::Eq, prop(&["b"]), s("y"))),
                        Box::new(Expr::Compare(CmpOp::Eq, prop(&["c"]), s("z"))),
                    )),
                ),
            ),
            (
                "not a eq 'x'",
                Expr::Not(Box::new(Expr::Compare(CmpOp::Eq, prop(&["a"]), s("x")))),
            ),
            (
                "NOT(a eq 'x')",
                Expr::Not(Box::new(Expr::Compare(CmpOp::Eq, prop(&["a"]), s("x")))),
            ),
            (
                "id in ('a', 'b')",
                Expr::In(
                    prop(&["id"]),
                    vec![Literal::String("a".into()), Literal::String("b".into())],
                ),
            ),
            (
                "startswith(displayName, 'Con')",
                Expr::Call(Func::StartsWith, prop(&["displayName"]), s("Con")),
            ),
            (
                "provider/organization eq 'x'",
                Expr::Compare(CmpOp::Eq, prop(&["provider", "organization"]), s("x")),
            ),
            (
                "createdDateTime ge 2025-01-01T00:00:00Z",
                Expr::Compare(
                    CmpOp::Ge,
                    prop(&["createdDateTime"]),
                    Operand::Literal(Literal::DateTime("2025-01-01T00:00:00.0000000Z".into())),
                ),
            ),
            (
                "createdDateTime lt 2025-06-01",
                Expr::Compare(
                    CmpOp::Lt,
                    prop(&["createdDateTime"]),
                    Operand::Literal(Literal::DateTime("2025-06-01T00:00:00.0000000Z".into())),
                ),
            ),
            (
                "managedBy eq 719CC904-9700-4e08-9941-fd826cc84c60",
                Expr::Compare(
                    CmpOp::Eq,
                    prop(&["managedBy"]),
                    Operand::Literal(Literal::Guid("719cc904-9700-4e08-9941-fd826cc84c60".into())),
                ),
            ),
            (
                "supportsAuthenticatedExtendedCard",
                Expr::Truthy(prop(&["supportsAuthenticatedExtendedCard"])),
            ),
            (
                "capabilities/streaming eq true",
                Expr::Compare(
                    CmpOp::Eq,
                    prop(&["capabilities", "streaming"]),
                    Operand::Literal(Literal::Bool(true)),
                ),
            ),
            (
                "ownerIds/any(o:o eq 'x')",
                Expr::Lambda {
                    quantifier: Quantifier::Any,
                    collection: p(&["ownerIds"]),
                    variable: "o".into(),
                    body: Some(Box::new(Expr::Compare(CmpOp::Eq, prop(&["o"]), s("x")))),
                },
            ),
            (
                "skills/any(s:s/tags/any(t:t eq 'security'))",
                Expr::Lambda {
                    quantifier: Quantifier::Any,
                    collection: p(&["skills"]),
                    variable: "s".into(),
                    body: Some(Box::new(Expr::Lambda {
                        quantifier: Quantifier::Any,
                        collection: p(&["s", "tags"]),
                        variable: "t".into(),
                        body: Some(Box::new(Expr::Compare(
                            CmpOp::Eq,
                            prop(&["t"]),
                            s("security"),
                        ))),
                    })),
                },
            ),
            (
                "ownerIds/any()",
                Expr::Lambda {
                    quantifier: Quantifier::Any,
                    collection: p(&["ownerIds"]),
                    variable: String::new(),
                    body: None,
                },
            ),
            (
                "ownerIds/all(o: startswith(o, 'a'))",
                Expr::Lambda {
                    quantifier: Quantifier::All,
                    collection: p(&["ownerIds"]),
                    variable: "o".into(),
                    body: Some(Box::new(Expr::Call(Func::StartsWith, prop(&["o"]), s("a")))),
                },
            ),
        ];
        for (text, expected) in table {
            assert_eq!(tree(text), expected, "{text}");
        }
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let table = [
            ("displayName eq", 15),
            ("displayName eq 'x", 16),
            ("(displayName eq 'x'", 20),
            ("displayName eq 'x' and", 23),
            ("displayName eq 'x' 'y'", 20),
            ("ownerIds/any(o o eq 'x')", 16),
            ("displayName # 'x'", 13),
        ];
        for (text, position) in table {
            match parse(text) {
                Err(ODataError::FilterSyntax { position: p, .. }) => {
                    assert_eq!(p, position, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            parse("substringof('a', displayName)"),
            Err(ODataError::UnsupportedFunction("substringof".into()))
        );
    }

    #[test]
    fn oversized_and_overdeep_filters_are_refused() {
        let long = format!("displayName eq '{}'", "x".repeat(MAX_FILTER_BYTES));
        assert!(matches!(parse(&long), Err(ODataError::FilterTooComplex(_))));
        let deep = format!("{}displayName eq 'x'{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(parse(&deep), Err(ODataError::FilterTooComplex(_))));
        let wide = vec!["id eq 'x'"; 250].join(" or ");
        assert!(matches!(parse(&wide), Err(ODataError::FilterTooComplex(_))));
    }

    #[test]
    fn checking_resolves_paths_and_types_against_the_schema() {
        let ok = [
            (
                &AGENT_INSTANCE,
                "displayName eq 'a' and ownerIds/any(o: o eq 'x')",
            ),
            (&AGENT_INSTANCE, "agentCardManifest/displayName eq 'card'"),
            (
                &AGENT_INSTANCE,
                "agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
            ),
            (
                &AGENT_INSTANCE,
                "additionalInterfaces/any(i: i/transport eq 'GRPC')",
            ),
            (&AGENT_INSTANCE, "createdDateTime gt 2025-01-01T00:00:00Z"),
            (&AGENT_CARD_MANIFEST, "provider/organization eq null"),
            (
                &AGENT_CARD_MANIFEST,
                "capabilities/streaming and not supportsAuthenticatedExtendedCard",
            ),
            (
                &AGENT_CARD_MANIFEST,
                "id eq 8d4c5a5c-7c6e-4b1d-8e3b-3f2c1a9d1234",
            ),
        ];
        for (ty, text) in ok {
            assert_eq!(check(ty, &parse(text).unwrap()), Ok(()), "{text}");
        }
        let unknown = [
            (&AGENT_INSTANCE, "colour eq 'red'", "colour"),
            (
                &AGENT_CARD_MANIFEST,
                "provider/name eq 'x'",
                "provider/name",
            ),
        ];
        for (ty, text, property) in unknown {
            match check(ty, &parse(text).unwrap()) {
                Err(ODataError::UnknownProperty { property: p, .. }) => {
                    assert_eq!(p, property, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let mismatched = [
            "displayName eq true",
            "displayName eq 5",
            "createdDateTime eq 'yesterday'",
            "ownerIds eq 'x'",
            "displayName/any(d: d eq 'x')",
            "startswith(ownerIds, 'x')",
            "displayName",
            "id in ('a', true)",
        ];
        for text in mismatched {
            assert!(
                matches!(
                    check(&AGENT_INSTANCE, &parse(text).unwrap()),
                    Err(ODataError::TypeMismatch(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            check(
                &AGENT_INSTANCE,
                &parse("collections/any(c: c/id eq 'x')").unwrap()
            ),
            Err(ODataError::NotFilterable(_))
        ));
        assert!(matches!(
            check(
                &AGENT_CARD_MANIFEST,
                &parse("securitySchemes/x eq 'y'").unwrap()
            ),
            Err(ODataError::NotFilterable(_))
        ));
    }
}

//! OData query options: the raw query string parsed into a syntax tree and
//! checked against the entity's schema. No SQL and no HTTP here; the HTTP
//! layer hands in the query string, storage receives the tree.

pub mod edm;
pub mod filter;
mod paging;

pub use filter::Expr;
pub use paging::{Cursor, PagingKeys, SkipToken};

use edm::EntityType;
use filter::{Path, Ty};

/// The largest page a client may ask for with `$top`; more is a 400.
pub const MAX_TOP: usize = 999;
/// The page size when `$top` is absent.
pub const DEFAULT_TOP: usize = 100;

/// Why a query string was refused (always the client's doing: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ODataError {
    #[error("The query parameter '{0}' is not supported.")]
    UnknownOption(String),
    #[error("The query parameter '{0}' is specified more than once.")]
    DuplicateOption(String),
    #[error("Invalid value '{value}' for query parameter '{option}': {reason}")]
    InvalidValue {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("Could not find a property named '{property}' on type '{type_name}'.")]
    UnknownProperty {
        property: String,
        type_name: &'static str,
    },
    #[error("Could not find a navigation property named '{property}' on type '{type_name}'.")]
    UnknownNavigation {
        property: String,
        type_name: &'static str,
    },
    #[error("The query parameter '{0}' is not supported on this request.")]
    NotApplicable(&'static str),
    #[error("The query parameter '{0}' is not supported yet.")]
    NotImplemented(&'static str),
    #[error("Invalid page size specified: '{0}'. Must be between 0 and 999.")]
    TopOutOfRange(String),
    #[error("The $skiptoken is not valid for this request.")]
    InvalidSkipToken,
    #[error("The $deltatoken is not valid for this request.")]
    InvalidDeltaToken,
    #[error("Syntax error at position {position} in $filter: {message}.")]
    FilterSyntax { position: usize, message: String },
    #[error("The $filter is too complex: {0}.")]
    FilterTooComplex(&'static str),
    #[error(
        "The function '{0}' is not supported in $filter; use startswith, endswith or contains."
    )]
    UnsupportedFunction(String),
    #[error("Type mismatch in $filter: {0}.")]
    TypeMismatch(String),
    #[error("The property '{0}' cannot be used in $filter.")]
    NotFilterable(String),
    #[error(
        "The property '{0}' cannot be used in $orderby; use a property with a single primitive value."
    )]
    NotSortable(String),
    #[error("Invalid $search: {0}.")]
    SearchSyntax(String),
    #[error(
        "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"
    )]
    SearchNeedsConsistencyLevel,
    #[error(
        "The query parameter '{0}' contains the character U+0000 (NUL), which no value may hold."
    )]
    NulCharacter(&'static str),
}

/// One `$expand` item, with its nested `$select`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    pub navigation: String,
    pub select: Option<Vec<String>>,
}

/// The system query options of one request, parsed but not yet checked
/// against a type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
    pub select: Option<Vec<String>>,
    pub expand: Vec<Expand>,
    pub top: Option<usize>,
    pub skip: Option<usize>,
    pub skiptoken: Option<String>,
    /// A delta link's state (delta queries only).
    pub deltatoken: Option<String>,
    pub count: bool,
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderKey>,
    pub search: Option<Search>,
    /// The raw `$filter`, `$orderby` and `$search` texts, which bind paging tokens.
    pub criteria_text: String,
}

/// One `$orderby` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub path: Path,
    pub descending: bool,
}

/// A parsed `$search`: quoted terms joined by one operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub terms: Vec<SearchTerm>,
    /// `OR` between the terms; otherwise `AND`.
    pub any: bool,
}

/// `"term"` (every searchable property) or `"displayName:term"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    pub property: Option<String>,
    pub text: String,
}

/// The properties `$search` looks in, where the type has them.
pub const SEARCHABLE: &[&str] = &["displayName", "description"];
/// The most `$orderby` keys accepted.
pub const MAX_ORDER_KEYS: usize = 8;

/// The options this server knows, by canonical name.
const OPTIONS: &[&str] = &[
    "$select",
    "$expand",
    "$top",
    "$skip",
    "$skiptoken",
    "$count",
    "$filter",
    "$orderby",
    "$search",
    "$format",
    "$deltatoken",
];

impl QueryOptions {
    /// Parses a raw (still percent-encoded) query string. Option names may be
    /// percent-encoded and, as on Graph beta, may omit the `$`. Unknown
    /// `$`-options are refused; other names are custom options and ignored.
    pub fn parse(raw: Option<&str>) -> Result<Self, ODataError> {
        let mut q = QueryOptions::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(name);
            let value = decode_component(value);
            let lower = name.to_ascii_lowercase();
            let canonical = if lower.starts_with('$') {
                lower.clone()
            } else {
                format!("${lower}")
            };
            let Some(&option) = OPTIONS.iter().find(|o| **o == canonical) else {
                if lower.starts_with('$') {
                    return Err(ODataError::UnknownOption(name));
                }
                continue;
            };
            if seen.contains(&option) {
                return Err(ODataError::DuplicateOption(option.to_owned()));
            }
            if value.contains('\0') {
                return Err(ODataError::NulCharacter(option));
            }
            seen.push(option);
            match option {
                "$select" => q.select = Some(parse_select(&value)?),
                "$expand" => q.expand = parse_expand(&value)?,
                "$top" => {
                    let top = parse_count(option, &value)?;
                    if top > MAX_TOP {
                        return Err(ODataError::TopOutOfRange(value));
                    }
                    q.top = Some(top);
                }
                "$skip" => q.skip = Some(parse_count(option, &value)?),
                "$skiptoken" => q.skiptoken = Some(value),
                "$deltatoken" => q.deltatoken = Some(value),
                "$count" => {
                    q.count = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ODataError::InvalidValue {
                                option,
                                value,
                                reason: "expected true or false",
                            });
                        }
                    }
                }
                "$filter" => {
                    q.filter = Some(filter::parse(&value)?);
                    q.criteria_text.push_str(&format!("f:{value};"));
                }
                "$orderby" => {
                    q.orderby = parse_orderby(&value)?;
                    q.criteria_text.push_str(&format!("o:{value};"));
                }
                "$search" => {
                    q.search = Some(parse_search(&value)?);
                    q.criteria_text.push_str(&format!("s:{value};"));
                }
                "$format" => {
                    if !matches!(value.as_str(), "json" | "application/json") {
                        return Err(ODataError::InvalidValue {
                            option,
                            value,
                            reason: "only json is supported",
                        });
                    }
                }
                _ => unreachable!("every known option is handled"),
            }
        }
        Ok(q)
    }

    /// Checks `$select` and `$expand` against `ty`; `expandable` lists the
    /// navigation properties this endpoint can expand.
    pub fn check_shape(
        &self,
        ty: &'static EntityType,
        expandable: &[&str],
    ) -> Result<(), ODataError> {
        if self.deltatoken.is_some() {
            return Err(ODataError::NotApplicable("$deltatoken"));
        }
        check_select(ty, self.select.as_deref())?;
        for e in &self.expand {
            let Some(nav) = ty.navigation(&e.navigation) else {
                return Err(ODataError::UnknownNavigation {
                    property: e.navigation.clone(),
                    type_name: ty.qualified,
                });
            };
            if !expandable.contains(&nav.name) {
                return Err(ODataError::NotApplicable("$expand"));
            }
            check_select(nav.target, e.select.as_deref())?;
        }
        if let Some(f) = &self.filter {
            filter::check(ty, f)?;
        }
        for key in &self.orderby {
            match filter::resolve(ty, &Vec::new(), &key.path) {
                Ok(Ty::String | Ty::Boolean | Ty::DateTime) => {}
                Ok(_) | Err(ODataError::NotFilterable(_)) => {
                    return Err(ODataError::NotSortable(key.path.text()));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(search) = &self.search {
            for term in &search.terms {
                if let Some(p) = &term.property
                    && !(SEARCHABLE.contains(&p.as_str()) && ty.property(p).is_some())
                {
                    return Err(ODataError::SearchSyntax(format!(
                        "'{p}' is not searchable on {}; search displayName or description",
                        ty.qualified
                    )));
                }
            }
        }
        Ok(())
    }

    /// Refuses the options a single-entity request cannot take.
    pub fn for_single_entity(&self) -> Result<(), ODataError> {
        let list_only = [
            ("$top", self.top.is_some()),
            ("$skip", self.skip.is_some()),
            ("$skiptoken", self.skiptoken.is_some()),
            ("$deltatoken", self.deltatoken.is_some()),
            ("$count", self.count),
            ("$filter", self.filter.is_some()),
            ("$orderby", !self.orderby.is_empty()),
            ("$search", self.search.is_some()),
        ];
        match list_only.iter().find(|(_, present)| *present) {
            Some((name, _)) => Err(ODataError::NotApplicable(name)),
            None => Ok(()),
        }
    }

    /// Whether the response must be reshaped (otherwise stored documents are
    /// served as they are).
    pub fn reshapes(&self) -> bool {
        self.select.is_some() || !self.expand.is_empty()
    }

    /// The select list of the `@odata.context` URL, e.g. `(id,displayName,agentCardManifest())`.
    pub fn context_projection(&self) -> String {
        if !self.reshapes() {
            return String::new();
        }
        let mut parts: Vec<String> = self.select.clone().unwrap_or_default();
        for e in &self.expand {
            let inner = e.select.as_ref().map(|s| s.join(",")).unwrap_or_default();
            parts.push(format!("{}({inner})", e.navigation));
        }
        format!("({})", parts.join(","))
    }
}

fn parse_orderby(value: &str) -> Result<Vec<OrderKey>, ODataError> {
    let invalid = |reason: &str| ODataError::InvalidValue {
        option: "$orderby",
        value: value.to_owned(),
        reason: if reason.is_empty() {
            "expected property paths with optional asc or desc"
        } else {
            "too many keys (at most 8)"
        },
    };
    let mut keys: Vec<OrderKey> = Vec::new();
    for item in value.split(',') {
        let mut words = item.split_whitespace();
        let path = words.next().ok_or_else(|| invalid(""))?;
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(invalid("")),
        };
        if words.next().is_some() {
            return Err(invalid(""));
        }
        let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
        if segments.iter().any(|s| !is_identifier(s) || s == "*") {
            return Err(invalid(""));
        }
        if keys.iter().any(|k| k.path.segments == segments) {
            return Err(invalid(""));
        }
        keys.push(OrderKey {
            path: Path {
                segments,
                position: 0,
            },
            descending,
        });
        if keys.len() > MAX_ORDER_KEYS {
            return Err(invalid("many"));
        }
    }
    Ok(keys)
}

fn parse_search(value: &str) -> Result<Search, ODataError> {
    let bad = |m: &str| ODataError::SearchSyntax(m.to_owned());
    if value.len() > filter::MAX_FILTER_BYTES {
        return Err(bad("the expression is longer than 4096 bytes"));
    }
    let mut terms = Vec::new();
    let mut op: Option<bool> = None;
    let mut rest = value.trim();
    loop {
        let inner = rest
            .strip_prefix('"')
            .ok_or_else(|| bad("each term must be in double quotes, as in \"agent\""))?;
        let close = inner
            .find('"')
            .ok_or_else(|| bad("a quoted term is not closed"))?;
        let raw = &inner[..close];
        let (property, text) = match raw.split_once(':') {
            Some((p, t)) if is_identifier(p.trim()) => (Some(p.trim().to_owned()), t.trim()),
            _ => (None, raw.trim()),
        };
        if text.is_empty() {
            return Err(bad("a term is empty"));
        }
        terms.push(SearchTerm {
            property,
            text: text.to_owned(),
        });
        if terms.len() > 16 {
            return Err(bad("at most 16 terms are accepted"));
        }
        rest = inner[close + 1..].trim_start();
        if rest.is_empty() {
            break;
        }
        let (word, after) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected AND or OR between terms"))?;
        let any = match word {
            "AND" | "and" => false,
            "OR" | "or" => true,
            _ => return Err(bad("expected AND or OR between terms")),
        };
        if op.is_some_and(|o| o != any) {
            return Err(bad("AND and OR cannot be mixed"));
        }
        op = Some(any);
        rest = after.trim_start();
    }
    Ok(Search {
        terms,
        any: op.unwrap_or(false),
    })
}

fn check_select(ty: &'static EntityType, select: Option<&[String]>) -> Result<(), ODataError> {
    for name in select.unwrap_or_default() {
        if name != "*" && ty.property(name).is_none() {
            return Err(ODataError::UnknownProperty {
                property: name.clone(),
                type_name: ty.qualified,
            });
        }
    }
    Ok(())
}

/// The parameters of a query string, decoded, each named once
/// (`DuplicateOption` otherwise): for the non-OData queries of the A2A routes.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ODataError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode_component(name), decode_component(value));
        if !seen.insert(name.clone()) {
            return Err(ODataError::DuplicateOption(name));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Percent-decodes a query component, reading `+` as a space.
fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_count(option: &'static str, value: &str) -> Result<usize, ODataError> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| ODataError::InvalidValue {
            option,
            value: value.to_owned(),
            reason: "expected a non-negative integer",
        })
}

fn is_identifier(s: &str) -> bool {
    s == "*"
        || (s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn parse_select(value: &str) -> Result<Vec<String>, ODataError> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if !is_identifier(item) {
            return Err(ODataError::InvalidValue {
                option: "$select",
                value: value.to_owned(),
                reason: "expected a comma-separated list of property names",
            });
        }
        if !out.iter().any(|s: &String| s == item) {
            out.push(item.to_owned());
        }
    }
    Ok(out)
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(value: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            c if c == sep && depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&value[start..]);
    Some(parts)
}

fn parse_expand(value: &str) -> Result<Vec<Expand>, ODataError> {
    let invalid = |reason| ODataError::InvalidValue {
        option: "$expand",
        value: value.to_owned(),
        reason,
    };
    let items = split_top_level(value, ',').ok_or_else(|| invalid("unbalanced parentheses"))?;
    let mut out: Vec<Expand> = Vec::new();
    for item in items {
        let item = item.trim();
        let (name, nested) = match item.find('(') {
            Some(i) => {
                let inner = item[i + 1..]
                    .strip_suffix(')')
                    .ok_or_else(|| invalid("expected ')' at the end of an item"))?;
                (item[..i].trim(), Some(inner))
            }
            None => (item, None),
        };
        if !is_identifier(name) || name == "*" {
            return Err(invalid("expected a navigation property name"));
        }
        let mut select = None;
        for option in nested
            .into_iter()
            .flat_map(|n| n.split(';'))
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            let (k, v) = option
                .split_once('=')
                .ok_or_else(|| invalid("expected name=value inside parentheses"))?;
            match k
                .trim()
                .trim_start_matches('$')
                .to_ascii_lowercase()
                .as_str()
            {
                "select" => select = Some(parse_select(v)?),
                _ => return Err(invalid("only $select may be nested in $expand")),
            }
        }
        if out.iter().any(|e| e.navigation == name) {
            return Err(invalid("a navigation property is expanded twice"));
        }
        out.push(Expand {
            navigation: name.to_owned(),
            select,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::{AGENT_COLLECTION, AGENT_INSTANCE};

    fn parse(s: &str) -> Result<QueryOptions, ODataError> {
        QueryOptions::parse(Some(s))
    }

    #[test]
    fn options_parse_with_or_without_dollar_and_percent_encoded() {
        let table = [
            "$select=id,displayName&$top=5",
            "select=id,displayName&top=5",
            "%24select=id%2CdisplayName&%24top=5",
            "$SELECT=id, displayName&$Top=5",
        ];
        for raw in table {
            let q = parse(raw).unwrap();
            assert_eq!(
                q.select,
                Some(vec!["id".to_owned(), "displayName".to_owned()]),
                "{raw}"
            );
            assert_eq!(q.top, Some(5), "{raw}");
        }
    }

    #[test]
    fn expand_takes_a_nested_select() {
        let q = parse("$expand=agentCardManifest($select=id,skills),collections").unwrap();
        assert_eq!(
            q.expand,
            vec![
                Expand {
                    navigation: "agentCardManifest".into(),
                    select: Some(vec!["id".into(), "skills".into()])
                },
                Expand {
                    navigation: "collections".into(),
                    select: None
                },
            ]
        );
        assert_eq!(
            q.context_projection(),
            "(agentCardManifest(id,skills),collections())"
        );
    }

    #[test]
    fn malformed_options_are_refused() {
        let table = [
            ("$foo=1", ODataError::UnknownOption("$foo".into())),
            ("$top=1&top=2", ODataError::DuplicateOption("$top".into())),
            (
                "$top=-1",
                ODataError::InvalidValue {
                    option: "$top",
                    value: "-1".into(),
                    reason: "expected a non-negative integer",
                },
            ),
            ("$top=1000", ODataError::TopOutOfRange("1000".into())),
            (
                "$count=yes",
                ODataError::InvalidValue {
                    option: "$count",
                    value: "yes".into(),
                    reason: "expected true or false",
                },
            ),
        ];
        for (raw, expected) in table {
            assert_eq!(parse(raw), Err(expected), "{raw}");
        }
        for raw in [
            "$select=id,,x",
            "$select=a b",
            "$expand=agentCardManifest(",
            "$expand=a($top=1)",
            "$expand=a,a",
            "$format=xml",
        ] {
            assert!(
                matches!(parse(raw), Err(ODataError::InvalidValue { .. })),
                "{raw}"
            );
        }
    }

    #[test]
    fn custom_options_without_a_dollar_are_ignored() {
        assert_eq!(parse("cachebuster=1&x").unwrap(), QueryOptions::default());
    }

    #[test]
    fn select_and_expand_are_checked_against_the_type() {
        let q = parse("$select=id,colour").unwrap();
        assert_eq!(
            q.check_shape(&AGENT_INSTANCE, &["agentCardManifest"]),
            Err(ODataError::UnknownProperty {
                property: "colour".into(),
                type_name: "microsoft.graph.agentInstance"
            })
        );
        let q = parse("$expand=agentCardManifest($select=nope)").unwrap();
        assert!(matches!(
            q.check_shape(&AGENT_INSTANCE, &["agentCardManifest"]),
            Err(ODataError::UnknownProperty { .. })
        ));
        let q = parse("$expand=owners").unwrap();
        assert!(matches!(
            q.check_shape(&AGENT_COLLECTION, &["members"]),
            Err(ODataError::UnknownNavigation { .. })
        ));
        let q = parse("$expand=members($select=id,displayName)").unwrap();
        assert_eq!(q.check_shape(&AGENT_COLLECTION, &["members"]), Ok(()));
    }

    #[test]
    fn orderby_and_search_parse_and_are_checked() {
        let q = parse("$orderby=displayName desc,provider/organization").unwrap();
        assert_eq!(q.orderby.len(), 2);
        assert!(q.orderby[0].descending && !q.orderby[1].descending);
        assert_eq!(q.orderby[1].path.segments, ["provider", "organization"]);
        assert!(
            q.check_shape(&crate::domain::schema::AGENT_CARD_MANIFEST, &[])
                .is_ok()
        );
        assert_eq!(
            parse("$orderby=ownerIds")
                .unwrap()
                .check_shape(&AGENT_INSTANCE, &[]),
            Err(ODataError::NotSortable("ownerIds".into()))
        );
        for bad in [
            "$orderby=a sideways",
            "$orderby=a,a",
            "$orderby=",
            "$orderby=a b c",
        ] {
            assert!(
                matches!(parse(bad), Err(ODataError::InvalidValue { .. })),
                "{bad}"
            );
        }
        let q = parse("$search=\"displayName:agent\" OR \"card\"").unwrap();
        let s = q.search.unwrap();
        assert!(s.any);
        assert_eq!(
            s.terms[0],
            SearchTerm {
                property: Some("displayName".into()),
                text: "agent".into()
            }
        );
        assert_eq!(
            s.terms[1],
            SearchTerm {
                property: None,
                text: "card".into()
            }
        );
        for bad in [
            "$search=agent",
            "$search=\"a",
            "$search=\"a\" \"b\"",
            "$search=\"a\" AND \"b\" OR \"c\"",
            "$search=\"\"",
        ] {
            assert!(
                matches!(parse(bad), Err(ODataError::SearchSyntax(_))),
                "{bad}"
            );
        }
        let long = format!("$search=\"{}\"", "x".repeat(5000));
        assert!(
            matches!(parse(&long), Err(ODataError::SearchSyntax(_))),
            "bounded like $filter"
        );
        let q = parse("$search=\"description:x\"").unwrap();
        assert!(
            matches!(
                q.check_shape(&AGENT_INSTANCE, &[]),
                Err(ODataError::SearchSyntax(_))
            ),
            "instances have no description"
        );
    }

    #[test]
    fn list_options_are_refused_on_a_single_entity() {
        assert_eq!(
            parse("$top=1").unwrap().for_single_entity(),
            Err(ODataError::NotApplicable("$top"))
        );
        assert_eq!(parse("$select=id").unwrap().for_single_entity(), Ok(()));
    }
}

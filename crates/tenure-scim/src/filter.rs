//! SCIM filters (RFC 7644 §3.4.2.2): parsing and evaluation over JSON resources.
//!
//! The grammar is the RFC's ABNF: attribute expressions (`pr`, and `eq ne co sw ew gt ge lt
//! le` against a JSON string, number, `true`, `false` or `null`), `and` binding tighter than
//! `or`, `not (...)`, parentheses, and value paths (`emails[type eq "work" and value co
//! "@example.com"]`). Operators and attribute names are case-insensitive; attribute paths may
//! carry a schema URN prefix and a sub-attribute. String literals are JSON strings, decoded by
//! `serde_json`, so every escape a client may send is understood exactly as JSON defines it.
//!
//! Parsing knows no schema. Evaluation resolves each attribute against the resource type
//! ([`crate::schema::ResourceType::resolve`]) and compares as the attribute's definition says:
//! `caseExact` decides case sensitivity, `dateTime` values compare as instants, numbers as
//! numbers, booleans only by equality. [`Filter::check`] rejects, before anything is read, a
//! filter naming an attribute the resource type does not have or ordering a boolean, so a typo
//! is a 400 `invalidFilter`, never an empty result that an IdP would read as "create it".
//!
//! Hostile input: the lexer and parser never index out of bounds and nest at most
//! [`MAX_DEPTH`] levels, so no filter makes them panic or overflow the stack (a property test
//! below feeds them arbitrary text).

use crate::error::ScimError;
use crate::schema::{AttrType, Attribute, Container, Resolved, ResourceType};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The deepest nesting of parentheses, `not` and value paths a filter may have.
pub const MAX_DEPTH: usize = 32;
/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 8 * 1024;

/// An attribute path as written: `[urn:]name[.sub]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[URN ":"] ATTRNAME ["." ATTRNAME]`. A URN is everything up to the last `:`;
    /// `urn:...:enterprise:2.0:User` alone parses with `User` as the name, and resolution
    /// recognises it as the extension itself.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        let (urn, rest) = match text.rfind(':') {
            Some(i) => (Some(text.get(..i).unwrap_or_default()), text.get(i + 1..).unwrap_or_default()),
            None => (None, text),
        };
        if let Some(u) = urn
            && (!u.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) || u.len() <= 4)
        {
            return Err(format!("`{}` is not an attribute path", clip(text)));
        }
        let mut parts = rest.splitn(3, '.');
        let name = parts.next().unwrap_or_default();
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(format!("`{}` has more than one sub-attribute", clip(text)));
        }
        if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
            return Err(format!("`{}` is not an attribute path", clip(text)));
        }
        Ok(AttrPath { urn: urn.map(str::to_string), name: name.to_string(), sub: sub.map(str::to_string) })
    }

    /// Resolves against `rt`.
    pub fn resolve(&self, rt: &ResourceType) -> Option<Resolved> {
        rt.resolve(self.urn.as_deref(), &self.name, self.sub.as_deref())
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`; `$ref` is the one name RFC 7643 spells otherwise.
fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some('$') => s == "$ref",
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        _ => false,
    }
}

/// Text echoed in an error, cut to a readable length.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn from_word(w: &str) -> Option<CompareOp> {
        Some(match w.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// A comparison value.
#[derive(Clone, Debug, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued complex `attr` matches `filter`, whose
    /// attribute names are `attr`'s sub-attributes.
    ValuePath(AttrPath, Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
    Num(f64),
}

/// Splits a filter or PATCH path into tokens.
pub(crate) fn lex(text: &str) -> Result<Vec<Tok>, ScimError> {
    if text.len() > MAX_LEN {
        return Err(ScimError::invalid_filter(format!("the filter is longer than {MAX_LEN} bytes")));
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match c {
            c if c.is_whitespace() => rest = rest.get(len..).unwrap_or_default(),
            '(' | ')' | '[' | ']' => {
                out.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    _ => Tok::RBracket,
                });
                rest = rest.get(1..).unwrap_or_default();
            }
            '"' => {
                let end =
                    string_end(rest).ok_or_else(|| ScimError::invalid_filter("a string value is not terminated"))?;
                let literal = rest.get(..end).unwrap_or_default();
                let value: String = serde_json::from_str(literal)
                    .map_err(|_| ScimError::invalid_filter(format!("`{}` is not a valid string", clip(literal))))?;
                out.push(Tok::Str(value));
                rest = rest.get(end..).unwrap_or_default();
            }
            c if c == '-' || c.is_ascii_digit() => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
                    .unwrap_or(rest.len());
                let literal = rest.get(..end).unwrap_or_default();
                let n: serde_json::Number = serde_json::from_str(literal)
                    .map_err(|_| ScimError::invalid_filter(format!("`{}` is not a valid number", clip(literal))))?;
                let n = n.as_f64().ok_or_else(|| ScimError::invalid_filter("a number is out of range"))?;
                out.push(Tok::Num(n));
                rest = rest.get(end..).unwrap_or_default();
            }
            c if is_word_char(c) => {
                let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
                out.push(Tok::Word(rest.get(..end).unwrap_or_default().to_string()));
                rest = rest.get(end..).unwrap_or_default();
            }
            other => {
                return Err(ScimError::invalid_filter(format!("unexpected character `{}`", other.escape_default())));
            }
        }
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$' | '%' | '+')
}

/// The byte offset just past the closing quote of the string starting at `s[0] == '"'`.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

pub(crate) struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    pub(crate) fn new(toks: Vec<Tok>) -> Parser {
        Parser { toks, pos: 0, depth: 0 }
    }

    pub(crate) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub(crate) fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!("the filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `FILTER = term *("or" term)`.
    pub(crate) fn parse_or(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.parse_and(in_value_path)?;
        while self.peek_keyword("or") {
            self.next();
            let right = self.parse_and(in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let mut left = self.parse_unary(in_value_path)?;
        while self.peek_keyword("and") {
            self.next();
            let right = self.parse_unary(in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        self.enter()?;
        let out = self.parse_unary_inner(in_value_path);
        self.depth -= 1;
        out
    }

    fn parse_unary_inner(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        if self.peek_keyword("not") && matches!(self.toks.get(self.pos + 1), Some(Tok::LParen)) {
            self.next();
            return Ok(Filter::Not(Box::new(self.parse_group(in_value_path)?)));
        }
        match self.peek() {
            Some(Tok::LParen) => self.parse_group(in_value_path),
            Some(Tok::Word(_)) => self.parse_attr_expr(in_value_path),
            Some(other) => Err(ScimError::invalid_filter(format!("expected an attribute, found {}", describe(other)))),
            None => Err(ScimError::invalid_filter("the filter ends where an expression was expected")),
        }
    }

    fn parse_group(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        self.expect(&Tok::LParen)?;
        let inner = self.parse_or(in_value_path)?;
        self.expect(&Tok::RParen)?;
        Ok(inner)
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), ScimError> {
        match self.next() {
            Some(t) if &t == tok => Ok(()),
            Some(t) => Err(ScimError::invalid_filter(format!("expected {}, found {}", describe(tok), describe(&t)))),
            None => Err(ScimError::invalid_filter(format!("expected {} at the end of the filter", describe(tok)))),
        }
    }

    pub(crate) fn parse_path_word(&mut self) -> Result<AttrPath, ScimError> {
        match self.next() {
            Some(Tok::Word(w)) => AttrPath::parse(&w).map_err(ScimError::invalid_filter),
            Some(t) => Err(ScimError::invalid_filter(format!("expected an attribute, found {}", describe(&t)))),
            None => Err(ScimError::invalid_filter("expected an attribute at the end of the filter")),
        }
    }

    /// The `[valFilter]` after a value path's attribute.
    pub(crate) fn parse_value_filter(&mut self) -> Result<Filter, ScimError> {
        self.expect(&Tok::LBracket)?;
        self.enter()?;
        let inner = self.parse_or(true);
        self.depth -= 1;
        let inner = inner?;
        self.expect(&Tok::RBracket)?;
        Ok(inner)
    }

    fn parse_attr_expr(&mut self, in_value_path: bool) -> Result<Filter, ScimError> {
        let path = self.parse_path_word()?;
        if matches!(self.peek(), Some(Tok::LBracket)) {
            if in_value_path {
                return Err(ScimError::invalid_filter("value paths do not nest"));
            }
            if path.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "`{path}` names a sub-attribute, not a multi-valued attribute"
                )));
            }
            let inner = self.parse_value_filter()?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op = match self.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => return Ok(Filter::Present(path)),
            Some(Tok::Word(w)) => CompareOp::from_word(&w)
                .ok_or_else(|| ScimError::invalid_filter(format!("`{}` is not a comparison operator", clip(&w))))?,
            Some(t) => {
                return Err(ScimError::invalid_filter(format!(
                    "expected an operator after `{path}`, found {}",
                    describe(&t)
                )));
            }
            None => return Err(ScimError::invalid_filter(format!("expected an operator after `{path}`"))),
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => CompValue::Str(s),
            Some(Tok::Num(n)) => CompValue::Num(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => CompValue::Null,
            Some(t) => {
                return Err(ScimError::invalid_filter(format!(
                    "expected a value after `{path}`, found {}",
                    describe(&t)
                )));
            }
            None => return Err(ScimError::invalid_filter(format!("expected a value after `{path}`"))),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Word(w) => format!("`{}`", clip(w)),
        Tok::Str(s) => format!("the string `{}`", clip(s)),
        Tok::Num(n) => format!("the number `{n}`"),
    }
}

/// Where attribute names in a filter are looked up: a resource type, or (inside a value path)
/// one multi-valued complex attribute's sub-attributes.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a ResourceType),
    Element(&'static Attribute),
}

/// A path resolved in a scope: where its values are, and the definition they compare by.
struct Target {
    container: Container,
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
}

impl Target {
    /// The definition the values compare by.
    fn leaf(&self) -> Option<&'static Attribute> {
        match self.sub {
            Some(s) => Some(s),
            None => self.attribute.comparable(),
        }
    }

    /// The leaf values the path designates in `obj`: every value of a multi-valued attribute,
    /// a complex attribute's `value`, the named sub-attribute.
    fn values<'v>(&self, obj: &'v Map<String, Value>) -> Vec<&'v Value> {
        let Some(v) = self.container.get(obj).and_then(|c| c.get(self.attribute.name)) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let key = match self.sub {
            Some(s) => Some(s.name),
            None if self.attribute.ty == AttrType::Complex => Some("value"),
            None => None,
        };
        match key {
            None => items,
            Some(k) => items.into_iter().filter_map(|i| i.as_object().and_then(|o| o.get(k))).collect(),
        }
    }
}

fn resolve_in(scope: Scope<'_>, path: &AttrPath) -> Option<Target> {
    match scope {
        Scope::Resource(rt) => match path.resolve(rt)? {
            Resolved::Attribute { container, attribute, sub } => Some(Target { container, attribute, sub }),
            Resolved::Extension(_) => None,
        },
        Scope::Element(parent) => {
            if path.urn.is_some() {
                return None;
            }
            // `emails[emails.type eq "work"]`: tolerate the parent's name repeated.
            let (name, sub) = match &path.sub {
                Some(sub) if path.name.eq_ignore_ascii_case(parent.name) => (sub.as_str(), None),
                other => (path.name.as_str(), other.as_deref()),
            };
            if sub.is_some() {
                return None;
            }
            let attribute = parent.sub_attribute(name)?;
            Some(Target { container: Container::Core, attribute, sub: None })
        }
    }
}

impl Filter {
    /// Parses a filter (`?filter=` or a SearchRequest's `filter`).
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let mut p = Parser::new(lex(text)?);
        let f = p.parse_or(false)?;
        match p.next() {
            None => Ok(f),
            Some(t) => {
                Err(ScimError::invalid_filter(format!("unexpected {} after a complete expression", describe(&t))))
            }
        }
    }

    /// Checks the filter against `rt`: every attribute exists, value paths name multi-valued
    /// complex attributes, and no boolean or binary attribute is ordered (RFC 7644 §3.4.2.2).
    pub fn check(&self, rt: &ResourceType) -> Result<(), ScimError> {
        self.check_in(Scope::Resource(rt), false)
    }

    /// [`Filter::check`] for a search across resource types (`POST /.search`): each attribute
    /// must exist in at least one of them, and is checked against those it exists in; where
    /// it does not exist it matches nothing.
    pub fn check_across(&self, rts: &[&ResourceType]) -> Result<(), ScimError> {
        for rt in rts {
            self.check_in(Scope::Resource(rt), true)?;
        }
        let mut paths = Vec::new();
        self.top_level_paths(&mut paths);
        match paths.into_iter().find(|p| rts.iter().all(|rt| p.resolve(rt).is_none())) {
            Some(p) => Err(unknown(p)),
            None => Ok(()),
        }
    }

    fn top_level_paths<'a>(&'a self, out: &mut Vec<&'a AttrPath>) {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.top_level_paths(out);
                b.top_level_paths(out);
            }
            Filter::Not(f) => f.top_level_paths(out),
            Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => out.push(p),
        }
    }

    /// `lenient`: an attribute the scope does not have is not an error (it matches nothing).
    fn check_in(&self, scope: Scope<'_>, lenient: bool) -> Result<(), ScimError> {
        let resolve = |path: &AttrPath| -> Result<Option<Target>, ScimError> {
            match resolve_in(scope, path) {
                Some(t) => Ok(Some(t)),
                None if lenient => Ok(None),
                None => Err(unknown(path)),
            }
        };
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check_in(scope, lenient)?;
                b.check_in(scope, lenient)
            }
            Filter::Not(f) => f.check_in(scope, lenient),
            Filter::Present(path) => resolve(path).map(|_| ()),
            Filter::Compare(path, op, value) => {
                let Some(target) = resolve(path)? else { return Ok(()) };
                let leaf = target.leaf().ok_or_else(|| {
                    ScimError::invalid_filter(format!("`{path}` is complex; name one of its sub-attributes"))
                })?;
                if leaf.ty == AttrType::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "`{path}` is complex; name one of its sub-attributes"
                    )));
                }
                let ordered_ok = !matches!(leaf.ty, AttrType::Boolean | AttrType::Binary);
                if op.is_ordering() && !ordered_ok {
                    return Err(ScimError::invalid_filter(format!(
                        "`{path}` is {}; it cannot be ordered",
                        type_name(leaf.ty)
                    )));
                }
                if op.is_substring() && !matches!(value, CompValue::Str(_)) {
                    return Err(ScimError::invalid_filter(format!(
                        "`{path}`: substring operators need a string value"
                    )));
                }
                if (op.is_ordering() || op.is_substring()) && matches!(value, CompValue::Null) {
                    return Err(ScimError::invalid_filter(format!("`{path}`: only `eq` and `ne` compare with null")));
                }
                Ok(())
            }
            Filter::ValuePath(path, inner) => {
                let Some(target) = resolve(path)? else { return Ok(()) };
                if target.attribute.ty != AttrType::Complex || !target.attribute.multi_valued || target.sub.is_some() {
                    return Err(ScimError::invalid_filter(format!("`{path}` is not a multi-valued complex attribute")));
                }
                inner.check_in(Scope::Element(target.attribute), false)
            }
        }
    }

    /// Whether `resource` (rendered, with `id` and `meta`) matches. Attributes that do not
    /// resolve match nothing; [`Filter::check`] is where they are refused.
    pub fn matches(&self, rt: &ResourceType, resource: &Map<String, Value>) -> bool {
        self.eval(Scope::Resource(rt), resource)
    }

    pub(crate) fn matches_element(&self, parent: &'static Attribute, element: &Map<String, Value>) -> bool {
        self.eval(Scope::Element(parent), element)
    }

    /// Checks a filter used inside a PATCH value path against `parent`'s sub-attributes.
    pub(crate) fn check_element(&self, parent: &'static Attribute) -> Result<(), ScimError> {
        self.check_in(Scope::Element(parent), false)
    }

    fn eval(&self, scope: Scope<'_>, obj: &Map<String, Value>) -> bool {
        match self {
            Filter::And(a, b) => a.eval(scope, obj) && b.eval(scope, obj),
            Filter::Or(a, b) => a.eval(scope, obj) || b.eval(scope, obj),
            Filter::Not(f) => !f.eval(scope, obj),
            Filter::Present(path) => resolve_in(scope, path).is_some_and(|t| t.values(obj).into_iter().any(is_present)),
            Filter::Compare(path, op, value) => {
                let Some(target) = resolve_in(scope, path) else { return false };
                let Some(leaf) = target.leaf() else { return false };
                let values = target.values(obj);
                match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => !values.into_iter().any(is_present),
                    (CompareOp::Ne, CompValue::Null) => values.into_iter().any(is_present),
                    (CompareOp::Ne, v) => !values.into_iter().any(|a| compare(CompareOp::Eq, a, v, leaf)),
                    (op, v) => values.into_iter().any(|a| compare(*op, a, v, leaf)),
                }
            }
            Filter::ValuePath(path, inner) => {
                let Some(target) = resolve_in(scope, path) else { return false };
                let Some(Value::Array(items)) = target.container.get(obj).and_then(|c| c.get(target.attribute.name))
                else {
                    return false;
                };
                items.iter().filter_map(Value::as_object).any(|e| inner.eval(Scope::Element(target.attribute), e))
            }
        }
    }

    /// The value of a top-level `attribute eq "value"` that every match must satisfy (a lone
    /// comparison, or one side of an `and`), for backends that can look it up in an index.
    /// `attribute` is matched case-insensitively, with or without the core schema URN.
    pub fn required_equality(&self, rt: &ResourceType, attribute: &str) -> Option<&str> {
        match self {
            Filter::Compare(path, CompareOp::Eq, CompValue::Str(s)) if path.sub.is_none() => match path.resolve(rt)? {
                Resolved::Attribute { container: Container::Core, attribute: a, sub: None }
                    if a.name.eq_ignore_ascii_case(attribute) =>
                {
                    Some(s)
                }
                _ => None,
            },
            Filter::And(a, b) => a.required_equality(rt, attribute).or_else(|| b.required_equality(rt, attribute)),
            _ => None,
        }
    }
}

fn unknown(path: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("unknown attribute `{}`", clip(&path.to_string())))
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::Boolean => "a boolean",
        AttrType::Binary => "binary",
        _ => "this type",
    }
}

/// RFC 7644 `pr`: a value that is not null, not an empty string, array or object.
pub(crate) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        _ => true,
    }
}

/// Lenient boolean reading: JSON booleans and the strings `true`/`false` in any case (Entra
/// sends `"False"`).
pub fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn parse_instant(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

/// Compares one attribute value with a filter value as `leaf`'s definition says.
fn compare(op: CompareOp, actual: &Value, expected: &CompValue, leaf: &Attribute) -> bool {
    match leaf.ty {
        AttrType::Boolean => {
            let want = match expected {
                CompValue::Bool(b) => Some(*b),
                CompValue::Str(s) => lenient_bool(&Value::String(s.clone())),
                _ => None,
            };
            match (lenient_bool(actual), want, op) {
                (Some(a), Some(b), CompareOp::Eq) => a == b,
                _ => false,
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            let (Some(a), CompValue::Num(b)) = (actual.as_f64(), expected) else { return false };
            a.partial_cmp(b).is_some_and(|o| ordering_matches(op, o))
        }
        _ => {
            let (Some(a), CompValue::Str(b)) = (actual.as_str(), expected) else { return false };
            if leaf.ty == AttrType::DateTime
                && !op.is_substring()
                && let (Some(x), Some(y)) = (parse_instant(a), parse_instant(b))
            {
                return ordering_matches(op, x.cmp(&y));
            }
            let (a, b) =
                if leaf.case_exact { (a.to_string(), b.clone()) } else { (a.to_lowercase(), b.to_lowercase()) };
            match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordering_matches(op, a.cmp(&b)),
            }
        }
    }
}

fn ordering_matches(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ResourceKind;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "E-1001",
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "title": "Tour Guide",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915"}
            },
            "meta": {"resourceType": "User", "created": "2011-08-01T18:29:49.793Z", "lastModified": "2011-08-01T21:32:44.882Z", "version": "W/\"3\""}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    /// One case: a filter and whether it matches [`user`], or the error it is.
    fn check(filter: &str, expect: Result<bool, &str>) {
        let rt = ResourceKind::User.resource_type();
        let got = Filter::parse(filter).and_then(|f| f.check(rt).map(|()| f.matches(rt, &user())));
        match (got, expect) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{filter}"),
            (Err(g), Err(e)) => {
                assert_eq!(g.scim_type(), Some(crate::error::ScimType::InvalidFilter), "{filter}");
                assert!(g.detail().contains(e), "{filter}: {} does not contain {e}", g.detail());
            }
            (g, e) => panic!("{filter}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn comparisons() {
        check(r#"userName eq "bjensen@example.com""#, Ok(true));
        check(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#, Ok(true));
        check(r#"userName ne "bjensen@example.com""#, Ok(false));
        check(r#"userName co "jensen""#, Ok(true));
        check(r#"userName sw "BJ""#, Ok(true));
        check(r#"userName ew ".com""#, Ok(true));
        check(r#"userName gt "a""#, Ok(true));
        check(r#"userName lt "a""#, Ok(false));
        check(r#"externalId eq "e-1001""#, Ok(false)); // caseExact
        check(r#"externalId eq "E-1001""#, Ok(true));
        check(r#"id eq "2819c223-7f76-453a-919d-413861904646""#, Ok(true));
        check(r#"name.givenName eq "barbara""#, Ok(true));
        check(r#"title pr"#, Ok(true));
        check(r#"nickName pr"#, Ok(false));
        check(r#"nickName eq null"#, Ok(true));
        check(r#"title ne null"#, Ok(true));
        check(r#"nickName ne "x""#, Ok(true));
        check(r#"active eq true"#, Ok(true));
        check(r#"active eq false"#, Ok(false));
        check(r#"active eq "True""#, Ok(true));
    }

    #[test]
    fn multi_valued_and_value_paths() {
        check(r#"emails co "example.com""#, Ok(true));
        check(r#"emails.value eq "babs@jensen.org""#, Ok(true));
        check(r#"emails.type eq "other""#, Ok(false));
        check(r#"emails[type eq "work" and value co "@example.com"]"#, Ok(true));
        check(r#"emails[type eq "home" and value co "@example.com"]"#, Ok(false));
        check(r#"emails[type eq "home"] and userName sw "b""#, Ok(true));
        check(r#"emails[not (type eq "work")]"#, Ok(true));
        check(r#"emails[primary eq true and value ew "example.com"]"#, Ok(true));
        check(r#"emails[emails.type eq "work"]"#, Ok(true));
    }

    #[test]
    fn logic_and_precedence() {
        check(r#"title pr and userType pr"#, Ok(false));
        check(r#"title pr or userType pr"#, Ok(true));
        // `and` binds tighter than `or`.
        check(r#"userType pr and nickName pr or title pr"#, Ok(true));
        check(r#"userType pr and (nickName pr or title pr)"#, Ok(false));
        check(r#"not (userType pr)"#, Ok(true));
        check(r#"NOT(title pr)"#, Ok(false));
        check(r#"((((title pr))))"#, Ok(true));
    }

    #[test]
    fn urns_meta_and_dates() {
        check(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#, Ok(true));
        check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#,
            Ok(true),
        );
        check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#, Ok(true));
        check(r#"meta.resourceType eq "User""#, Ok(true));
        check(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, Ok(true));
        check(r#"meta.lastModified gt "2011-08-01T23:32:44.882+02:00""#, Ok(false));
        check(r#"meta.created lt "2011-08-01T20:29:50+02:00""#, Ok(true));
        check(r#"meta.created lt "2011-08-01T20:29:49+02:00""#, Ok(false));
    }

    #[test]
    fn values_and_escapes() {
        check(r#"title eq "Tour\u0020Guide""#, Ok(true));
        check(r#"title eq "Tour \"Guide\"""#, Ok(false));
        check(r#"userName eq 5"#, Ok(false));
    }

    #[test]
    fn invalid_filters() {
        check("", Err("ends where an expression"));
        check("userName", Err("expected an operator"));
        check("userName eq", Err("expected a value"));
        check(r#"userName xx "a""#, Err("not a comparison operator"));
        check(r#"userName eq "a" junk"#, Err("unexpected"));
        check(r#"userName eq "a"#, Err("not terminated"));
        check(r#"(userName eq "a""#, Err("expected `)`"));
        check(r#"department eq "x""#, Err("unknown attribute `department`"));
        check(r#"emails[value[type eq "x"]]"#, Err("do not nest"));
        check(r#"emails[type eq "work"[value pr]]"#, Err("expected `]`"));
        check(r#"title[value pr]"#, Err("not a multi-valued complex"));
        check(r#"active gt true"#, Err("cannot be ordered"));
        check(r#"name eq "x""#, Err("complex"));
        check(r#"userName co 5"#, Err("substring"));
        check(r#"a.b.c eq "x""#, Err("more than one sub-attribute"));
        check(r#"userName eq "a" & x"#, Err("unexpected character"));
        check(&"(".repeat(100), Err("deeper"));
        check(&"not (".repeat(100), Err("deeper"));
    }

    #[test]
    fn across_types_an_attribute_needs_one_type_that_has_it() {
        let (user, group) = (ResourceKind::User.resource_type(), ResourceKind::Group.resource_type());
        let both = [user, group];
        let f = Filter::parse(r#"members pr or userName eq "b""#).unwrap();
        assert!(f.check(user).is_err());
        assert!(f.check_across(&both).is_ok());
        assert!(Filter::parse("nope pr or userName pr").unwrap().check_across(&both).is_err());
        // Where an attribute exists, its rules still apply.
        assert!(Filter::parse("active gt true or members pr").unwrap().check_across(&both).is_err());
    }

    #[test]
    fn required_equality_finds_indexable_lookups() {
        let rt = ResourceKind::User.resource_type();
        let f = Filter::parse(r#"title pr and USERNAME eq "bjensen""#).unwrap();
        assert_eq!(f.required_equality(rt, "userName"), Some("bjensen"));
        let f = Filter::parse(r#"userName eq "a" or title pr"#).unwrap();
        assert_eq!(f.required_equality(rt, "userName"), None);
        let f = Filter::parse(r#"externalId eq "E-1""#).unwrap();
        assert_eq!(f.required_equality(rt, "externalid"), Some("E-1"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            let rt = ResourceKind::User.resource_type();
            if let Ok(f) = Filter::parse(&text) {
                let _ = f.check(rt);
                let _ = f.matches(rt, &user());
            }
        }

        #[test]
        fn parsing_filter_like_text_never_panics(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "(", ")", "[", "]", " ", "not", "and", "or", "pr", "eq", "gt", "co", "\"x\"", "\"\\", "1e999",
                    "-", "true", "null", "emails", "type", "value", "name.givenName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", ".", ":",
                ]),
                0..40,
            )
        ) {
            let text = parts.join(" ");
            let rt = ResourceKind::User.resource_type();
            if let Ok(f) = Filter::parse(&text) {
                let _ = f.check(rt);
                let _ = f.matches(rt, &user());
            }
        }
    }
}

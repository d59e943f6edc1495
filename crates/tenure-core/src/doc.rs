//! A small owned TOML document model that keeps the byte span of every key and value.
//!
//! Config and policy are read through this model rather than straight into serde structs so that
//! every validation problem (an unknown key, a misspelt attribute, an undeclared entitlement)
//! can name the exact line it comes from.

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone)]
pub struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Table),
}

/// A table's entries in key order, each key with its own span.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub node: Node,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }
}

impl Node {
    pub fn start(&self) -> usize {
        self.span.start
    }

    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Datetime(_) => "datetime",
            Value::Array(_) => "array",
            Value::Table(_) => "table",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match &self.value {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Parses a TOML document. On a syntax error returns the byte offset and message.
pub fn parse(source: &str) -> Result<Node, (usize, String)> {
    match DeTable::parse(source) {
        Ok(table) => {
            let span = table.span();
            Ok(Node { span, value: Value::Table(convert_table(table.get_ref())) })
        }
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            Err((offset, e.message().trim().to_string()))
        }
    }
}

fn convert_table(t: &DeTable<'_>) -> Table {
    let entries =
        t.iter().map(|(k, v)| Entry { key: k.get_ref().to_string(), key_span: k.span(), node: convert(v) }).collect();
    Table { entries }
}

fn convert(v: &Spanned<DeValue<'_>>) -> Node {
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Str(i.as_str().to_string()),
        },
        DeValue::Float(f) => Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(convert).collect()),
        DeValue::Table(t) => Value::Table(convert_table(t)),
    };
    Node { span: v.span(), value }
}

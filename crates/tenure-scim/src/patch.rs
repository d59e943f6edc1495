//! PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove` over a stored resource body.
//!
//! Paths are `attrPath` (`title`, `name.familyName`, `urn:...:enterprise:2.0:User:department`,
//! a bare extension URN) or `valuePath [subAttr]` (`members[value eq "2819c223"]`,
//! `emails[type eq "work"].value`). Values are normalized against the attribute they land in
//! ([`crate::resource`]), so `"active": "False"` is the boolean `false`, and the whole result
//! is normalized again by the caller before it is stored.
//!
//! The RFC's rules, with the leniencies real IdPs need, each deliberate:
//! - `op` is case-insensitive (`"Replace"`, as Entra sends it).
//! - Without `path`, `add` and `replace` take an object whose keys may themselves be paths
//!   (`{"active": false}`, `{"name.givenName": "x"}`, fully qualified extension names); keys
//!   naming read-only or unknown attributes are ignored there, as in a POST, while an explicit
//!   `path` to a read-only attribute is a `mutability` error.
//! - `remove` without `path` is `noTarget` (RFC); `remove` of something absent is a no-op, so a
//!   repeated removal of a group member succeeds.
//! - `remove` of a multi-valued attribute with a `value` removes just those values
//!   (`{"op": "remove", "path": "members", "value": [{"value": "id"}]}`, as some IdPs send).
//! - `add` or `replace` through a value filter that matches nothing creates the element when
//!   the filter only says what it is (`emails[type eq "work"].value`, a conjunction of `eq`s:
//!   the new element gets `type: work` and the value), as Entra expects; any other filter that
//!   matches nothing is `noTarget`.
//! - Adding a value already present changes nothing; setting `primary: true` on one value
//!   sets it false on the others.

use crate::error::{ScimError, ScimType};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, Parser, Tok, clip, lex};
use crate::resource::normalize_value;
use crate::schema::{AttrType, Attribute, Container, Mutability, Resolved, ResourceType, Schema};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The PatchOp message's URN.
pub use crate::schema::PATCH_OP_URN;

/// The most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

/// A PATCH path as written.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`.value` in `emails[type eq "work"].value`).
    pub sub: Option<String>,
}

impl PatchPath {
    /// Parses a PATCH `path`; a malformed one is a 400 `invalidPath`.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let as_path = |e: ScimError| ScimError::invalid_path(e.detail().to_string());
        let mut p = Parser::new(lex(text).map_err(as_path)?);
        let attr = p.parse_path_word().map_err(as_path)?;
        let mut filter = None;
        let mut sub = None;
        if matches!(p.peek(), Some(Tok::LBracket)) {
            if attr.sub.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "`{}`: a value filter follows an attribute, not a sub-attribute",
                    clip(text)
                )));
            }
            filter = Some(p.parse_value_filter().map_err(as_path)?);
            if let Some(Tok::Word(w)) = p.peek() {
                let w = w.clone();
                let name = w.strip_prefix('.').filter(|s| !s.is_empty() && !s.contains(['.', ':']));
                match name {
                    Some(name) => sub = Some(name.to_string()),
                    None => return Err(ScimError::invalid_path(format!("`{}` is not a valid path", clip(text)))),
                }
                p.next();
            }
        }
        if !p.at_end() {
            return Err(ScimError::invalid_path(format!("`{}` is not a valid path", clip(text))));
        }
        Ok(PatchPath { attr, filter, sub })
    }
}

/// One operation of a PatchOp.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A parsed PatchOp message.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses a PatchOp body (RFC 7644 §3.5.2). `schemas` is not insisted on; `Operations`
    /// and `op` are read in any case.
    pub fn parse(body: &Value) -> Result<PatchRequest, ScimError> {
        let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("a PatchOp must be a JSON object"))?;
        let ops = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ScimError::invalid_syntax("a PatchOp needs an `Operations` array"))?;
        if ops.len() > MAX_OPERATIONS {
            return Err(ScimError::bad_request(
                ScimType::TooMany,
                format!("at most {MAX_OPERATIONS} operations per PATCH"),
            ));
        }
        let mut operations = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let o =
                op.as_object().ok_or_else(|| ScimError::invalid_syntax(format!("operation {i} is not an object")))?;
            let kind = match get_ci(o, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
                Some("add") => OpKind::Add,
                Some("replace") => OpKind::Replace,
                Some("remove") => OpKind::Remove,
                Some(other) => {
                    return Err(ScimError::invalid_syntax(format!(
                        "operation {i}: `{}` is not add, replace or remove",
                        clip(other)
                    )));
                }
                None => return Err(ScimError::invalid_syntax(format!("operation {i} has no `op`"))),
            };
            let path = match get_ci(o, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(PatchPath::parse(s.trim())?),
                Some(_) => return Err(ScimError::invalid_path(format!("operation {i}: `path` must be a string"))),
            };
            let value = get_ci(o, "value").cloned();
            if kind != OpKind::Remove && value.is_none() {
                return Err(ScimError::invalid_value(format!("operation {i}: `{}` needs a `value`", op_name(kind))));
            }
            operations.push(PatchOperation { op: kind, path, value });
        }
        Ok(PatchRequest { operations })
    }
}

fn op_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Add => "add",
        OpKind::Replace => "replace",
        OpKind::Remove => "remove",
    }
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// What a path designates in a resource type.
enum Target<'f> {
    Extension(&'static Schema),
    Attr {
        container: Container,
        attribute: &'static Attribute,
        sub: Option<&'static Attribute>,
        filter: Option<&'f Filter>,
    },
}

fn resolve<'f>(rt: &ResourceType, path: &'f PatchPath) -> Result<Target<'f>, ScimError> {
    let unknown = || ScimError::invalid_path(format!("unknown attribute `{}`", clip(&path.attr.to_string())));
    match path.attr.resolve(rt).ok_or_else(unknown)? {
        Resolved::Extension(schema) => {
            if path.filter.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "`{}` is a schema, not a multi-valued attribute",
                    schema.id
                )));
            }
            Ok(Target::Extension(schema))
        }
        Resolved::Attribute { container, attribute, sub } => {
            let sub = match (&path.sub, sub) {
                (Some(_), Some(_)) => return Err(ScimError::invalid_path("a path has at most one sub-attribute")),
                (Some(s), None) => Some(attribute.sub_attribute(s).ok_or_else(|| {
                    ScimError::invalid_path(format!("`{}` has no sub-attribute `{}`", attribute.name, clip(s)))
                })?),
                (None, s) => s,
            };
            if let Some(f) = &path.filter {
                if attribute.ty != AttrType::Complex || !attribute.multi_valued {
                    return Err(ScimError::invalid_path(format!(
                        "`{}` is not a multi-valued complex attribute",
                        attribute.name
                    )));
                }
                f.check_element(attribute).map_err(|e| ScimError::invalid_path(e.detail().to_string()))?;
            }
            Ok(Target::Attr { container, attribute, sub, filter: path.filter.as_ref() })
        }
    }
}

/// Applies every operation, in order, to `body` (a stored resource body). All or nothing: on
/// an error `body` may be partly changed, so callers apply to a copy.
pub fn apply(rt: &ResourceType, body: &mut Map<String, Value>, request: &PatchRequest) -> Result<(), ScimError> {
    for op in &request.operations {
        match &op.path {
            Some(path) => {
                let target = resolve(rt, path)?;
                apply_target(body, op.op, &target, op.value.as_ref(), true)?;
            }
            None => match op.op {
                OpKind::Remove => return Err(ScimError::no_target("`remove` needs a `path`")),
                kind => {
                    let Some(Value::Object(values)) = &op.value else {
                        return Err(ScimError::invalid_value(format!(
                            "`{}` without a `path` needs an object `value`",
                            op_name(kind)
                        )));
                    };
                    for (key, value) in values {
                        if key.eq_ignore_ascii_case("schemas") {
                            continue;
                        }
                        let Ok(path) = PatchPath::parse(key) else { continue };
                        let Ok(target) = resolve(rt, &path) else { continue };
                        apply_target(body, kind, &target, Some(value), false)?;
                    }
                }
            },
        }
    }
    Ok(())
}

fn apply_target(
    body: &mut Map<String, Value>,
    op: OpKind,
    target: &Target<'_>,
    value: Option<&Value>,
    explicit: bool,
) -> Result<(), ScimError> {
    match target {
        Target::Extension(schema) => match op {
            OpKind::Remove => {
                body.remove(schema.id);
                Ok(())
            }
            OpKind::Add | OpKind::Replace => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::invalid_value(format!("`{}` takes an object value", schema.id)));
                };
                for (k, v) in values {
                    let Some(attribute) = schema.attribute(k) else { continue };
                    let t =
                        Target::Attr { container: Container::Extension(schema.id), attribute, sub: None, filter: None };
                    apply_target(body, op, &t, Some(v), false)?;
                }
                Ok(())
            }
        },
        Target::Attr { container, attribute, sub, filter } => {
            let read_only = |a: &Attribute| a.mutability == Mutability::ReadOnly;
            if read_only(attribute) || sub.is_some_and(read_only) {
                if explicit {
                    return Err(ScimError::mutability(format!("`{}` is read-only", attribute.name)));
                }
                return Ok(());
            }
            let slot = container.get_mut(body).ok_or_else(ScimError::internal)?;
            match op {
                OpKind::Add => add(slot, attribute, *sub, *filter, value.unwrap_or(&Value::Null)),
                OpKind::Replace => replace(slot, attribute, *sub, *filter, value.unwrap_or(&Value::Null)),
                OpKind::Remove => {
                    remove(slot, attribute, *sub, *filter, value);
                    Ok(())
                }
            }
        }
    }
}

/// The elements of a multi-valued attribute, created empty when missing (a single value
/// there becomes a one-element array). `None` only if that fails, which it cannot.
fn items_mut<'a>(slot: &'a mut Map<String, Value>, attribute: &Attribute) -> Option<&'a mut Vec<Value>> {
    let entry = slot.entry(attribute.name.to_string()).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        let old = std::mem::take(entry);
        *entry = Value::Array(if old.is_null() { Vec::new() } else { vec![old] });
    }
    entry.as_array_mut()
}

/// A complex value's object, created empty when missing.
fn object_mut<'a>(slot: &'a mut Map<String, Value>, attribute: &Attribute) -> Option<&'a mut Map<String, Value>> {
    let entry = slot.entry(attribute.name.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

fn single(sub: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    // A sub-attribute is never multi-valued in our schemas; normalize it as a singular value.
    normalize_value(sub, value)
}

fn add(
    slot: &mut Map<String, Value>,
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
    filter: Option<&Filter>,
    value: &Value,
) -> Result<(), ScimError> {
    match (filter, sub) {
        (None, None) => {
            let Some(v) = normalize_value(attribute, value)? else { return Ok(()) };
            if attribute.multi_valued {
                let new = match v {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                let items = items_mut(slot, attribute).ok_or_else(ScimError::internal)?;
                let touched = merge_items(items, attribute, new);
                enforce_one_primary(items, &touched);
            } else if let (AttrType::Complex, Value::Object(new)) = (attribute.ty, &v) {
                let obj = object_mut(slot, attribute).ok_or_else(ScimError::internal)?;
                obj.extend(new.clone());
            } else {
                slot.insert(attribute.name.to_string(), v);
            }
            Ok(())
        }
        (None, Some(sub)) => set_sub_everywhere(slot, attribute, sub, value),
        (Some(f), sub) => update_matching(slot, attribute, sub, f, value, OpKind::Add),
    }
}

fn replace(
    slot: &mut Map<String, Value>,
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
    filter: Option<&Filter>,
    value: &Value,
) -> Result<(), ScimError> {
    match (filter, sub) {
        (None, None) => {
            match normalize_value(attribute, value)? {
                // Replacing with nothing unassigns.
                None => {
                    slot.remove(attribute.name);
                }
                // A complex value replaces the sub-attributes it names and keeps the others
                // (RFC 7644 §3.5.2.3).
                Some(Value::Object(new)) if !attribute.multi_valued => {
                    object_mut(slot, attribute).ok_or_else(ScimError::internal)?.extend(new);
                }
                Some(Value::Array(new)) => {
                    let touched: Vec<usize> = (0..new.len()).collect();
                    slot.insert(attribute.name.to_string(), Value::Array(new));
                    if let Some(items) = items_mut(slot, attribute) {
                        enforce_one_primary(items, &touched);
                    }
                }
                Some(v) => {
                    slot.insert(attribute.name.to_string(), v);
                }
            }
            Ok(())
        }
        (None, Some(sub)) => set_sub_everywhere(slot, attribute, sub, value),
        (Some(f), sub) => update_matching(slot, attribute, sub, f, value, OpKind::Replace),
    }
}

/// `name.givenName` (a singular complex attribute) or `emails.type` without a filter (every
/// value of a multi-valued one; one is created if there are none).
fn set_sub_everywhere(
    slot: &mut Map<String, Value>,
    attribute: &'static Attribute,
    sub: &'static Attribute,
    value: &Value,
) -> Result<(), ScimError> {
    let v = single(sub, value)?;
    if attribute.multi_valued {
        let items = items_mut(slot, attribute).ok_or_else(ScimError::internal)?;
        if items.is_empty() {
            items.push(Value::Object(Map::new()));
        }
        for item in items.iter_mut() {
            if let Some(o) = item.as_object_mut() {
                set_or_remove(o, sub.name, v.clone());
            }
        }
        if sub.name == "primary" && v == Some(Value::Bool(true)) && items.len() > 1 {
            enforce_one_primary(items, &[0]);
        }
    } else {
        let obj = object_mut(slot, attribute).ok_or_else(ScimError::internal)?;
        set_or_remove(obj, sub.name, v);
    }
    Ok(())
}

fn set_or_remove(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            obj.insert(key.to_string(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

/// `add` / `replace` through a value filter.
fn update_matching(
    slot: &mut Map<String, Value>,
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
    filter: &Filter,
    value: &Value,
    op: OpKind,
) -> Result<(), ScimError> {
    // The new content: one sub-attribute, or a whole element.
    let content: Option<Value> = match sub {
        Some(s) => single(s, value)?,
        None => {
            let element = match value {
                Value::Array(a) if a.len() == 1 => a.first().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            crate::resource::normalize_value(&as_singular(attribute), &element)?
        }
    };
    let items = items_mut(slot, attribute).ok_or_else(ScimError::internal)?;
    let matching: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| v.as_object().is_some_and(|o| filter.matches_element(attribute, o)))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        let Some(mut element) = selector(attribute, filter) else {
            return Err(ScimError::no_target(format!("no value of `{}` matches the filter", attribute.name)));
        };
        match (sub, content) {
            (Some(s), Some(v)) => {
                element.insert(s.name.to_string(), v);
            }
            (None, Some(Value::Object(o))) => element.extend(o),
            _ => {}
        }
        items.push(Value::Object(element));
        let last = items.len().saturating_sub(1);
        enforce_one_primary(items, &[last]);
        return Ok(());
    }
    for &i in &matching {
        let Some(Value::Object(o)) = items.get_mut(i) else { continue };
        match (sub, &content) {
            (Some(s), c) => set_or_remove(o, s.name, c.clone()),
            (None, Some(Value::Object(new))) if op == OpKind::Add => o.extend(new.clone()),
            (None, Some(Value::Object(new))) => *o = new.clone(),
            (None, _) => {}
        }
    }
    items.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
    enforce_one_primary(items, &matching);
    Ok(())
}

/// The attribute's definition as if it were singular, to normalize one element.
fn as_singular(attribute: &Attribute) -> Attribute {
    let mut a = attribute.clone();
    a.multi_valued = false;
    a
}

/// What a filter says a new element is, when it only says that: `type eq "work"` and
/// conjunctions of such `eq`s on the element's own sub-attributes.
fn selector(attribute: &'static Attribute, filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) if path.urn.is_none() && path.sub.is_none() => {
            let sub = attribute.sub_attribute(&path.name)?;
            let v = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Num(n) => serde_json::Number::from_f64(*n).map(Value::Number)?,
                CompValue::Null => return None,
            };
            let mut m = Map::new();
            m.insert(sub.name.to_string(), normalize_value(sub, &v).ok()??);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = selector(attribute, a)?;
            m.extend(selector(attribute, b)?);
            Some(m)
        }
        _ => None,
    }
}

fn remove(
    slot: &mut Map<String, Value>,
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
    filter: Option<&Filter>,
    value: Option<&Value>,
) {
    match (filter, sub) {
        (None, None) => match value.filter(|v| !v.is_null()) {
            Some(v) if attribute.multi_valued => {
                let doomed: Vec<Value> = match v {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                let keys: HashSet<String> = doomed.iter().filter_map(|d| value_key(attribute, d)).collect();
                let keyless: Vec<&Value> = doomed.iter().filter(|d| value_key(attribute, d).is_none()).collect();
                if let Some(Value::Array(items)) = slot.get_mut(attribute.name) {
                    items.retain(|item| match value_key(attribute, item) {
                        Some(k) => !keys.contains(&k),
                        None => !keyless.contains(&item),
                    });
                }
            }
            _ => {
                slot.remove(attribute.name);
            }
        },
        (None, Some(sub)) => match slot.get_mut(attribute.name) {
            Some(Value::Object(o)) => {
                o.remove(sub.name);
            }
            Some(Value::Array(items)) => {
                for o in items.iter_mut().filter_map(Value::as_object_mut) {
                    o.remove(sub.name);
                }
            }
            _ => {}
        },
        (Some(f), sub) => {
            if let Some(Value::Array(items)) = slot.get_mut(attribute.name) {
                match sub {
                    None => items.retain(|v| !v.as_object().is_some_and(|o| f.matches_element(attribute, o))),
                    Some(s) => {
                        for o in items.iter_mut().filter_map(Value::as_object_mut) {
                            if f.matches_element(attribute, o) {
                                o.remove(s.name);
                            }
                        }
                    }
                }
            }
        }
    }
    // Unassigned values leave no trace (RFC 7643 §2.5).
    let empty = match slot.get_mut(attribute.name) {
        Some(Value::Array(items)) => {
            items.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
            items.is_empty()
        }
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        slot.remove(attribute.name);
    }
}

/// The `value` of a complex value (or a bare string naming one), folded as the `value`
/// sub-attribute's `caseExact` says; for a simple attribute, the value's JSON.
fn value_key(attribute: &Attribute, v: &Value) -> Option<String> {
    if attribute.ty != AttrType::Complex {
        return Some(v.to_string());
    }
    let value = v.get("value").and_then(Value::as_str).or_else(|| v.as_str())?;
    let exact = attribute.sub_attribute("value").is_some_and(|d| d.case_exact);
    Some(if exact { value.to_string() } else { value.to_lowercase() })
}

/// [`value_key`] plus the `type`: two emails with one address but different types are two
/// values.
fn item_key(attribute: &Attribute, v: &Value) -> Option<String> {
    let mut key = value_key(attribute, v)?;
    if attribute.ty == AttrType::Complex {
        key.push('\0');
        key.push_str(&v.get("type").map(Value::to_string).unwrap_or_default());
    }
    Some(key)
}

/// Adds `new` to `items` without duplicates; returns the indices of the values added or
/// merged into. Linear in both (values are indexed by key), so a PATCH adding thousands of
/// members to a large group stays cheap.
fn merge_items(items: &mut Vec<Value>, attribute: &Attribute, new: Vec<Value>) -> Vec<usize> {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(k) = item_key(attribute, item) {
            index.entry(k).or_insert(i);
        }
    }
    let mut touched = Vec::new();
    for value in new {
        let key = item_key(attribute, &value);
        let existing = match &key {
            Some(k) => index.get(k).copied(),
            // A complex value without `value`: only an identical one is the same.
            None => items.iter().position(|item| item == &value),
        };
        match (existing, value) {
            (Some(i), Value::Object(more)) => {
                if let Some(Value::Object(have)) = items.get_mut(i) {
                    have.extend(more);
                }
                touched.push(i);
            }
            (Some(i), _) => touched.push(i),
            (None, value) => {
                items.push(value);
                let i = items.len().saturating_sub(1);
                if let Some(k) = key {
                    index.insert(k, i);
                }
                touched.push(i);
            }
        }
    }
    touched
}

/// RFC 7643 §2.4: `primary: true` appears at most once. A touched value that is primary wins;
/// the others become `false`.
fn enforce_one_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&winner) = touched.iter().rev().find(|&&i| items.get(i).is_some_and(is_primary)) else { return };
    for (i, item) in items.iter_mut().enumerate() {
        if i != winner
            && is_primary(item)
            && let Some(o) = item.as_object_mut()
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_URN, ResourceKind};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ]
        })
    }

    fn group() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Tour Guides",
            "members": [{"value": "2819c223", "display": "Babs"}, {"value": "902c246b"}]
        })
    }

    /// Applies `ops` to `before` (a User or Group body) and compares the normalized result,
    /// or the error's `scimType` and detail.
    fn check(kind: ResourceKind, before: Value, ops: Value, expect: Result<Value, (ScimType, &str)>) {
        let rt = kind.resource_type();
        let mut body = before.as_object().cloned().unwrap();
        let got = PatchRequest::parse(&json!({"schemas": [PATCH_OP_URN], "Operations": ops}))
            .and_then(|req| apply(rt, &mut body, &req))
            .and_then(|()| crate::resource::normalize(rt, &body));
        match (got, expect) {
            (Ok(got), Ok(mut want)) => {
                let mut full = want.as_object().cloned().unwrap();
                crate::resource::finish(rt, &mut full).unwrap();
                want = Value::Object(full);
                assert_eq!(Value::Object(got), want, "{ops}");
            }
            (Err(got), Err((t, detail))) => {
                assert_eq!(got.scim_type(), Some(t), "{ops}: {got:?}");
                assert!(got.detail().contains(detail), "{ops}: {}", got.detail());
            }
            (got, want) => panic!("{ops}: got {got:?}, expected {want:?}"),
        }
    }

    fn with(base: Value, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut m = base.as_object().cloned().unwrap();
        f(&mut m);
        Value::Object(m)
    }

    const U: ResourceKind = ResourceKind::User;
    const G: ResourceKind = ResourceKind::Group;

    #[test]
    fn replace() {
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "title", "value": "Guide"}]),
            Ok(with(user(), |m| {
                m.insert("title".into(), json!("Guide"));
            })),
        );
        // Entra: capitalised op, a string boolean, no path.
        check(
            U,
            user(),
            json!([{"op": "Replace", "value": {"active": "False"}}]),
            Ok(with(user(), |m| {
                m.insert("active".into(), json!(false));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "active", "value": "False"}]),
            Ok(with(user(), |m| {
                m.insert("active".into(), json!(false));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "NAME.FAMILYNAME", "value": "Smith"}]),
            Ok(with(user(), |m| {
                m.insert("name".into(), json!({"givenName": "Barbara", "familyName": "Smith"}));
            })),
        );
        // A complex value keeps the sub-attributes it does not name.
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Smith"}}]),
            Ok(with(user(), |m| {
                m.insert("name".into(), json!({"givenName": "Barbara", "familyName": "Smith"}));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@new.example"}]),
            Ok(with(user(), |m| {
                m.insert("emails".into(), json!([{"value": "b@new.example", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}]));
            })),
        );
        // Entra: a filtered path with no match creates the element it describes.
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "o@example.com"}]),
            Ok(with(user(), |m| {
                m.insert(
                    "emails".into(),
                    json!([
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "o@example.com", "type": "other"}]),
                );
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[value co \"nothing\"].type", "value": "x"}]),
            Err((ScimType::NoTarget, "matches the filter")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com"}]}]),
            Ok(with(user(), |m| {
                m.insert("emails".into(), json!([{"value": "only@example.com"}]));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "value": {"name.givenName": "Babs", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops", "id": "ignored"}}]),
            Ok(with(user(), |m| {
                m.insert("name".into(), json!({"givenName": "Babs", "familyName": "Jensen"}));
                m.insert(ENTERPRISE_USER_URN.into(), json!({"department": "Ops"}));
            })),
        );
        // Setting a new primary demotes the old one.
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
            Ok(with(user(), |m| {
                m.insert("emails".into(), json!([{"value": "bjensen@example.com", "type": "work", "primary": false}, {"value": "babs@jensen.org", "type": "home", "primary": true}]));
            })),
        );
        check(U, user(), json!([{"op": "replace", "path": "title", "value": null}]), Ok(user()));
    }

    #[test]
    fn add() {
        check(
            U,
            user(),
            json!([{"op": "add", "path": "nickName", "value": "Babs"}]),
            Ok(with(user(), |m| {
                m.insert("nickName".into(), json!("Babs"));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other"}]}]),
            Ok(with(user(), |m| {
                m.insert(
                    "emails".into(),
                    json!([
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "new@example.com", "type": "other"}]),
                );
            })),
        );
        // Adding what is there changes nothing.
        check(
            U,
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home"}]}]),
            Ok(user()),
        );
        check(
            U,
            user(),
            json!([{"op": "add", "value": {"title": "Guide", "name": {"middleName": "J"}}}]),
            Ok(with(user(), |m| {
                m.insert("title".into(), json!("Guide"));
                m.insert("name".into(), json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"}));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "add", "path": ENTERPRISE_USER_URN, "value": {"employeeNumber": "701984", "manager": {"value": "m-1"}}}]),
            Ok(with(user(), |m| {
                m.insert(ENTERPRISE_USER_URN.into(), json!({"employeeNumber": "701984", "manager": {"value": "m-1"}}));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m-2"}]),
            Ok(with(user(), |m| {
                m.insert(ENTERPRISE_USER_URN.into(), json!({"manager": {"value": "m-2"}}));
            })),
        );
        check(
            G,
            group(),
            json!([{"op": "add", "path": "members", "value": [{"value": "2819c223"}, {"value": "08e1d05d"}]}]),
            Ok(with(group(), |m| {
                m.insert(
                    "members".into(),
                    json!([{"value": "2819c223", "display": "Babs"}, {"value": "902c246b"}, {"value": "08e1d05d"}]),
                );
            })),
        );
        check(
            G,
            json!({"displayName": "Empty"}),
            json!([{"op": "add", "path": "members", "value": {"value": "2819c223"}}]),
            Ok(json!({"displayName": "Empty", "members": [{"value": "2819c223"}]})),
        );
    }

    #[test]
    fn remove() {
        check(
            G,
            group(),
            json!([{"op": "remove", "path": "members[value eq \"2819c223\"]"}]),
            Ok(with(group(), |m| {
                m.insert("members".into(), json!([{"value": "902c246b"}]));
            })),
        );
        // Removing what is not there is a no-op.
        check(G, group(), json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]), Ok(group()));
        check(
            G,
            group(),
            json!([{"op": "remove", "path": "members", "value": [{"value": "902c246b"}]}]),
            Ok(with(group(), |m| {
                m.insert("members".into(), json!([{"value": "2819c223", "display": "Babs"}]));
            })),
        );
        check(G, group(), json!([{"op": "remove", "path": "members"}]), Ok(json!({"displayName": "Tour Guides"})));
        check(
            U,
            user(),
            json!([{"op": "remove", "path": "name.givenName"}]),
            Ok(with(user(), |m| {
                m.insert("name".into(), json!({"familyName": "Jensen"}));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
            Ok(with(user(), |m| {
                m.insert("emails".into(), json!([{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@jensen.org", "type": "home"}]));
            })),
        );
        check(
            U,
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" or type eq \"home\"]"}]),
            Ok(with(user(), |m| {
                m.remove("emails");
            })),
        );
        check(
            U,
            with(user(), |m| {
                m.insert(ENTERPRISE_USER_URN.into(), json!({"department": "Ops"}));
            }),
            json!([{"op": "remove", "path": ENTERPRISE_USER_URN}]),
            Ok(user()),
        );
        check(U, user(), json!([{"op": "remove"}]), Err((ScimType::NoTarget, "needs a `path`")));
        check(
            U,
            user(),
            json!([{"op": "remove", "path": "userName"}]),
            Err((ScimType::InvalidValue, "`userName` is required")),
        );
    }

    #[test]
    fn errors() {
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            Err((ScimType::Mutability, "read-only")),
        );
        check(
            U,
            user(),
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            Err((ScimType::Mutability, "read-only")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "nope", "value": "x"}]),
            Err((ScimType::InvalidPath, "unknown attribute")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "x"}]),
            Err((ScimType::InvalidPath, "not a multi-valued complex")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[nope eq \"x\"].value", "value": "x"}]),
            Err((ScimType::InvalidPath, "unknown attribute")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].nope", "value": "x"}]),
            Err((ScimType::InvalidPath, "no sub-attribute")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}]),
            Err((ScimType::InvalidPath, "expected `]`")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]x", "value": "x"}]),
            Err((ScimType::InvalidPath, "not a valid path")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            Err((ScimType::InvalidValue, "must be a boolean")),
        );
        check(
            U,
            user(),
            json!([{"op": "replace", "path": "name", "value": "x"}]),
            Err((ScimType::InvalidValue, "must be an object")),
        );
        check(U, user(), json!([{"op": "add", "path": "title"}]), Err((ScimType::InvalidValue, "needs a `value`")));
        check(
            U,
            user(),
            json!([{"op": "move", "path": "title"}]),
            Err((ScimType::InvalidSyntax, "not add, replace or remove")),
        );
        check(U, user(), json!([{"op": "replace", "value": "x"}]), Err((ScimType::InvalidValue, "object `value`")));
    }

    #[test]
    fn large_member_lists_merge_and_remove_by_value() {
        let rt = G.resource_type();
        let mut body = json!({"displayName": "All", "members": []}).as_object().cloned().unwrap();
        let many: Vec<Value> = (0..20_000).map(|i| json!({"value": format!("u{i}")})).collect();
        let add =
            PatchRequest::parse(&json!({"Operations": [{"op": "add", "path": "members", "value": many.clone()}]}))
                .unwrap();
        apply(rt, &mut body, &add).unwrap();
        apply(rt, &mut body, &add).unwrap();
        assert_eq!(body["members"].as_array().unwrap().len(), 20_000);
        let doomed: Vec<Value> = many.iter().step_by(2).cloned().collect();
        let remove =
            PatchRequest::parse(&json!({"Operations": [{"op": "remove", "path": "members", "value": doomed}]}))
                .unwrap();
        apply(rt, &mut body, &remove).unwrap();
        assert_eq!(body["members"].as_array().unwrap().len(), 10_000);
        assert_eq!(body["members"][0], json!({"value": "u1"}));
    }

    proptest::proptest! {
        #[test]
        fn path_parsing_never_panics(text in "\\PC{0,120}") {
            let _ = PatchPath::parse(&text);
        }

        #[test]
        fn applying_arbitrary_operations_never_panics(
            op in proptest::sample::select(vec!["add", "replace", "remove", "Replace"]),
            path in proptest::sample::select(vec![
                "", "title", "emails", "emails.value", "emails[type eq \"work\"]", "emails[type eq \"work\"].value",
                "emails[value pr].primary", "name", "name.givenName", "members", "members[value eq \"x\"]",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "active", "x509Certificates",
            ]),
            value in proptest::sample::select(vec![
                json!(null), json!("x"), json!(true), json!("False"), json!(3), json!([]), json!({}), json!([{"value": "v", "primary": true}]),
                json!({"value": "v", "type": "work"}), json!([1, "a", null]), json!({"givenName": 5}),
            ]),
        ) {
            for kind in [U, G] {
                let rt = kind.resource_type();
                let mut body = if kind == U { user() } else { group() }.as_object().cloned().unwrap();
                let mut o = json!({"op": op, "value": value});
                if !path.is_empty() {
                    o["path"] = json!(path);
                }
                if let Ok(req) = PatchRequest::parse(&json!({"Operations": [o]})) {
                    let _ = apply(rt, &mut body, &req).and_then(|()| crate::resource::normalize(rt, &body));
                }
            }
        }
    }
}

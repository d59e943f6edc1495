//! Resources on the way in (normalization) and on the way out (rendering and projection).
//!
//! **In.** [`normalize`] turns what a client sent (POST, PUT, or the result of a PATCH) into the
//! canonical body a backend stores: attribute names in the schema's spelling, values of the
//! declared type (a boolean may arrive as `"True"`, as Entra sends it; a bare string where a
//! complex attribute with a `value` belongs is that `value`, as Entra sends `manager`; a single
//! value where an array belongs is a one-element array), `null`s and empty values
//! dropped (RFC 7643 §2.5: unassigned), read-only attributes (`id`, `meta`, `groups`) ignored
//! as RFC 7644 §3.3 says, unknown attributes ignored, `schemas` recomputed from the extensions
//! present, required attributes checked. `password` is accepted and dropped: Tenure is not a
//! credential store, so a password an IdP pushes never reaches the store, a log or the audit
//! trail (and the service provider configuration says `changePassword` is not supported).
//!
//! **Out.** [`render`] adds `id` and `meta` to a stored body; [`Projection`] applies the
//! `attributes` / `excludedAttributes` parameters and the `returned` rules (RFC 7644 §3.4.2.5).

use crate::error::ScimError;
use crate::filter::{AttrPath, clip, lenient_bool};
use crate::schema::{AttrType, Attribute, Container, Mutability, Resolved, ResourceType, Returned, Uniqueness};
use serde_json::{Map, Value, json};

/// A stored resource as the backend holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResource {
    /// The service provider's id; unique per resource type, never reused.
    pub id: String,
    /// An opaque version that changes on every write (the ETag is `W/"<version>"`).
    pub version: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
    /// The normalized body: what [`normalize`] produced, without `id` and `meta`.
    pub body: Map<String, Value>,
}

/// The ETag of a version: weak, quoted; characters that cannot stand in an entity tag are
/// dropped so a backend's version can never break the header.
pub fn etag(version: &str) -> String {
    let clean: String = version.chars().filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\').collect();
    format!("W/\"{clean}\"")
}

/// Normalizes a client's resource for `rt` (see the module doc).
pub fn normalize(rt: &ResourceType, input: &Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in input {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(schema) = rt.schema_by_urn(key)
            && schema.id != rt.schema.id
        {
            let Value::Object(ext) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(format!("`{}` must be an object", schema.id)));
            };
            for (k, v) in ext {
                if let Some(attribute) = schema.attribute(k) {
                    put(&mut out, Container::Extension(schema.id), attribute, v)?;
                }
            }
            continue;
        }
        // A fully qualified name at the top level (`urn:...:User:department`), as some
        // clients write extension attributes.
        let resolved = if key.contains(':') {
            AttrPath::parse(key).ok().and_then(|p| p.resolve(rt))
        } else {
            rt.core_attribute(key).map(|attribute| Resolved::Attribute {
                container: Container::Core,
                attribute,
                sub: None,
            })
        };
        match resolved {
            Some(Resolved::Attribute { container, attribute, sub: None }) => {
                put(&mut out, container, attribute, value)?
            }
            Some(Resolved::Attribute { container, attribute, sub: Some(sub) }) => {
                if attribute.multi_valued || is_ignored_on_input(attribute) || is_ignored_on_input(sub) {
                    continue;
                }
                if let Some(v) = normalize_value(sub, value)? {
                    let slot = container.get_mut(&mut out).ok_or_else(ScimError::internal)?;
                    let parent = slot.entry(attribute.name.to_string()).or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(p) = parent {
                        p.insert(sub.name.to_string(), v);
                    }
                }
            }
            Some(Resolved::Extension(_)) | None => {
                tracing::debug!(attribute = %clip(key), "ignoring an unknown attribute");
            }
        }
    }
    finish(rt, &mut out)?;
    Ok(out)
}

/// Puts a normalized value unless the attribute is ignored on input.
fn put(
    out: &mut Map<String, Value>,
    container: Container,
    attribute: &Attribute,
    value: &Value,
) -> Result<(), ScimError> {
    if is_ignored_on_input(attribute) {
        return Ok(());
    }
    if let Some(v) = normalize_value(attribute, value)? {
        container.get_mut(out).ok_or_else(ScimError::internal)?.insert(attribute.name.to_string(), v);
    }
    Ok(())
}

/// Read-only attributes are the server's; write-only ones (`password`) are never kept.
fn is_ignored_on_input(attribute: &Attribute) -> bool {
    matches!(attribute.mutability, Mutability::ReadOnly | Mutability::WriteOnly)
}

/// Drops empty extension objects, recomputes `schemas`, checks required attributes.
pub(crate) fn finish(rt: &ResourceType, out: &mut Map<String, Value>) -> Result<(), ScimError> {
    let mut schemas = vec![json!(rt.schema.id)];
    for ext in &rt.extensions {
        match out.get(ext.id) {
            Some(Value::Object(o)) if !o.is_empty() => schemas.push(json!(ext.id)),
            Some(_) => {
                out.remove(ext.id);
            }
            None => {}
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    for attribute in rt.schema.attributes.iter().filter(|a| a.required) {
        if !out.get(attribute.name).is_some_and(crate::filter::is_present) {
            return Err(ScimError::invalid_value(format!("`{}` is required", attribute.name)));
        }
    }
    Ok(())
}

/// One attribute's value in canonical form; `None` when it is unassigned.
pub(crate) fn normalize_value(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attribute.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            // A single value where an array belongs: the one-element array it means.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalize_single(attribute, item)? {
                out.push(v);
            }
        }
        return Ok(if out.is_empty() { None } else { Some(Value::Array(out)) });
    }
    normalize_single(attribute, value)
}

fn normalize_single(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    let name = attribute.name;
    Ok(match attribute.ty {
        _ if value.is_null() => None,
        // A bare string where a complex value with a `value` belongs is that `value`: Entra
        // sends the enterprise `manager` as the manager's id.
        AttrType::Complex if value.is_string() && attribute.sub_attribute("value").is_some() => {
            let mut obj = Map::new();
            obj.insert("value".into(), value.clone());
            normalize_single(attribute, &Value::Object(obj))?
        }
        AttrType::Complex => {
            let Value::Object(obj) = value else {
                return Err(ScimError::invalid_value(format!("`{name}` must be an object")));
            };
            let mut out = Map::new();
            for (k, v) in obj {
                let Some(sub) = attribute.sub_attribute(k) else { continue };
                if is_ignored_on_input(sub) {
                    continue;
                }
                if let Some(v) = normalize_single(sub, v)? {
                    out.insert(sub.name.to_string(), v);
                }
            }
            if out.is_empty() { None } else { Some(Value::Object(out)) }
        }
        AttrType::Boolean => Some(Value::Bool(
            lenient_bool(value).ok_or_else(|| ScimError::invalid_value(format!("`{name}` must be a boolean")))?,
        )),
        AttrType::Integer => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            Some(json!(n.ok_or_else(|| ScimError::invalid_value(format!("`{name}` must be an integer")))?))
        }
        AttrType::Decimal => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            Some(json!(n.ok_or_else(|| ScimError::invalid_value(format!("`{name}` must be a number")))?))
        }
        AttrType::DateTime => {
            let s = value
                .as_str()
                .ok_or_else(|| ScimError::invalid_value(format!("`{name}` must be a dateTime string")))?;
            if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                return Err(ScimError::invalid_value(format!("`{name}`: `{}` is not an RFC 3339 dateTime", clip(s))));
            }
            Some(Value::String(s.to_string()))
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(Value::String(s.clone())),
            _ => return Err(ScimError::invalid_value(format!("`{name}` must be a string"))),
        },
    })
}

/// The values that must be unique per resource type (`uniqueness: server`), keyed by
/// attribute name, compared case-insensitively unless the attribute is `caseExact`.
pub fn unique_keys(rt: &ResourceType, body: &Map<String, Value>) -> Vec<UniqueKey> {
    rt.schema
        .attributes
        .iter()
        .filter(|a| a.uniqueness != Uniqueness::None && !a.multi_valued && a.ty != AttrType::Complex)
        .filter_map(|a| {
            let v = body.get(a.name)?.as_str()?;
            Some(UniqueKey { attribute: a.name, value: if a.case_exact { v.to_string() } else { v.to_lowercase() } })
        })
        .collect()
}

/// A value that no other resource of the same type may hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UniqueKey {
    /// The attribute, as the schema spells it (`userName`).
    pub attribute: &'static str,
    /// The value, lowercased unless the attribute is `caseExact`.
    pub value: String,
}

/// The full representation: the stored body plus `id` and `meta`. `base` is the absolute URL
/// the SCIM endpoints are served under (no trailing `/`).
pub fn render(rt: &ResourceType, stored: &StoredResource, base: &str) -> Map<String, Value> {
    let mut out = stored.body.clone();
    if !out.contains_key("schemas") {
        out.insert("schemas".into(), json!([rt.schema.id]));
    }
    out.insert("id".into(), json!(stored.id));
    let fmt = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rt.name(),
            "created": fmt(&stored.created),
            "lastModified": fmt(&stored.last_modified),
            "location": format!("{base}/{}/{}", rt.kind.endpoint(), stored.id),
            "version": etag(&stored.version),
        }),
    );
    // Defensively: nothing `returned: never` leaves, whatever a backend stored.
    for a in rt.schema.attributes.iter().filter(|a| a.returned == Returned::Never) {
        out.remove(a.name);
    }
    out
}

/// The `attributes` / `excludedAttributes` request parameters.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

impl Projection {
    /// From the comma-separated query parameters (or a SearchRequest's arrays, joined).
    /// Names that are not attribute paths are a 400 `invalidValue`.
    pub fn parse(attributes: &[String], excluded: &[String]) -> Result<Projection, ScimError> {
        let parse = |list: &[String]| -> Result<Vec<AttrPath>, ScimError> {
            list.iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| AttrPath::parse(s).map_err(ScimError::invalid_value))
                .collect()
        };
        Ok(Projection { attributes: parse(attributes)?, excluded: parse(excluded)? })
    }

    /// Applies the parameters to a rendered resource.
    pub fn apply(&self, rt: &ResourceType, full: Map<String, Value>) -> Map<String, Value> {
        if !self.attributes.is_empty() {
            let mut out = Map::new();
            for key in ["schemas", "id"] {
                if let Some(v) = full.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            for path in &self.attributes {
                copy_path(rt, path, &full, &mut out);
            }
            return out;
        }
        let mut out = full;
        for path in &self.excluded {
            remove_path(rt, path, &mut out);
        }
        out
    }
}

fn copy_path(rt: &ResourceType, path: &AttrPath, from: &Map<String, Value>, to: &mut Map<String, Value>) {
    match path.resolve(rt) {
        Some(Resolved::Extension(schema)) => {
            if let Some(v) = from.get(schema.id) {
                to.insert(schema.id.to_string(), v.clone());
            }
        }
        Some(Resolved::Attribute { container, attribute, sub }) => {
            if attribute.returned == Returned::Never {
                return;
            }
            let Some(value) = container.get(from).and_then(|c| c.get(attribute.name)) else { return };
            let picked = match sub {
                None => Some(value.clone()),
                Some(sub) => pick_sub(value, sub.name),
            };
            if let (Some(picked), Some(slot)) = (picked, container.get_mut(to)) {
                match (slot.get_mut(attribute.name), picked) {
                    // Two sub-attributes of the same attribute: merge them.
                    (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
                    (Some(Value::Array(have)), Value::Array(more)) if have.len() == more.len() => {
                        for (h, m) in have.iter_mut().zip(more) {
                            if let (Value::Object(h), Value::Object(m)) = (h, m) {
                                h.extend(m);
                            }
                        }
                    }
                    (_, picked) => {
                        slot.insert(attribute.name.to_string(), picked);
                    }
                }
            }
        }
        None => {}
    }
}

/// The `sub` part of a complex value, or of each element of a multi-valued one.
fn pick_sub(value: &Value, sub: &str) -> Option<Value> {
    match value {
        Value::Object(o) => o.get(sub).map(|v| json!({ sub: v })),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| i.as_object().and_then(|o| o.get(sub)).map(|v| json!({ sub: v })).unwrap_or(json!({})))
                .collect(),
        )),
        _ => None,
    }
}

fn remove_path(rt: &ResourceType, path: &AttrPath, out: &mut Map<String, Value>) {
    match path.resolve(rt) {
        Some(Resolved::Extension(schema)) => {
            out.remove(schema.id);
        }
        Some(Resolved::Attribute { container, attribute, sub }) => {
            if attribute.returned == Returned::Always {
                return;
            }
            let Some(slot) = (match container {
                Container::Core => Some(&mut *out),
                Container::Extension(urn) => out.get_mut(urn).and_then(Value::as_object_mut),
            }) else {
                return;
            };
            match sub {
                None => {
                    slot.remove(attribute.name);
                }
                Some(sub) => match slot.get_mut(attribute.name) {
                    Some(Value::Object(o)) => {
                        o.remove(sub.name);
                    }
                    Some(Value::Array(items)) => {
                        for i in items.iter_mut().filter_map(Value::as_object_mut) {
                            i.remove(sub.name);
                        }
                    }
                    _ => {}
                },
            }
        }
        None => {}
    }
}

/// The value a resource sorts by for `sortBy` (RFC 7644 §3.4.2.3): a multi-valued attribute
/// sorts by its primary value, else its first.
pub fn sort_value<'a>(rt: &ResourceType, path: &AttrPath, resource: &'a Map<String, Value>) -> Option<SortValue> {
    let Resolved::Attribute { container, attribute, sub } = path.resolve(rt)? else { return None };
    let value: &'a Value = container.get(resource)?.get(attribute.name)?;
    let (leaf_def, leaf): (&Attribute, &Value) = match value {
        Value::Array(items) => {
            let item = items
                .iter()
                .find(|i| i.get("primary").and_then(lenient_bool) == Some(true))
                .or_else(|| items.first())?;
            let key = sub.map(|s| s.name).unwrap_or("value");
            if attribute.ty == AttrType::Complex {
                (sub.or_else(|| attribute.sub_attribute("value"))?, item.get(key)?)
            } else {
                (attribute, item)
            }
        }
        Value::Object(o) => {
            let s = sub.or_else(|| attribute.sub_attribute("value"))?;
            (s, o.get(s.name)?)
        }
        other => (attribute, other),
    };
    Some(match leaf {
        Value::Bool(b) => SortValue::Bool(*b),
        Value::Number(n) => SortValue::Num(n.as_f64().unwrap_or(0.0)),
        Value::String(s) if leaf_def.ty == AttrType::DateTime => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => SortValue::Time(t.timestamp_micros()),
            Err(_) => SortValue::Text(s.clone()),
        },
        Value::String(s) => SortValue::Text(if leaf_def.case_exact { s.clone() } else { s.to_lowercase() }),
        _ => return None,
    })
}

/// A comparable sort key.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum SortValue {
    Bool(bool),
    Num(f64),
    Time(i64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_URN, ResourceKind};

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn check(input: Value, expect: Result<Value, &str>) {
        let rt = ResourceKind::User.resource_type();
        match (normalize(rt, &obj(input.clone())), expect) {
            (Ok(got), Ok(want)) => assert_eq!(Value::Object(got), want, "{input}"),
            (Err(got), Err(want)) => assert!(got.detail().contains(want), "{input}: {}", got.detail()),
            (got, want) => panic!("{input}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn normalization() {
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        // Names take the schema's spelling; read-only, write-only, unknown and null go.
        check(
            json!({"USERNAME": "bjensen", "id": "x", "meta": {}, "password": "hunter2", "nope": 1, "title": null,
                   "Name": {"GivenName": "Barbara", "nope": 1}, "groups": [{"value": "g"}]}),
            Ok(json!({"schemas": [core], "userName": "bjensen", "name": {"givenName": "Barbara"}})),
        );
        // Lenient booleans; single values where arrays belong.
        check(
            json!({"userName": "b", "active": "False", "emails": {"value": "b@example.com", "primary": "True"}}),
            Ok(
                json!({"schemas": [core], "userName": "b", "active": false, "emails": [{"value": "b@example.com", "primary": true}]}),
            ),
        );
        // The extension, by its object or by fully qualified names; `schemas` follows.
        check(
            json!({"userName": "b", ENTERPRISE_USER_URN: {"Department": "Ops", "manager": {"value": "m1", "displayName": "x"}},
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "4130"}),
            Ok(json!({"schemas": [core, ENTERPRISE_USER_URN], "userName": "b",
                      ENTERPRISE_USER_URN: {"department": "Ops", "costCenter": "4130", "manager": {"value": "m1"}}})),
        );
        check(json!({"userName": "b", ENTERPRISE_USER_URN: {}}), Ok(json!({"schemas": [core], "userName": "b"})));
        check(json!({"name": {"givenName": "x"}}), Err("`userName` is required"));
        check(json!({"userName": ""}), Err("`userName` is required"));
        check(json!({"userName": 7}), Err("`userName` must be a string"));
        check(json!({"userName": "b", "active": "maybe"}), Err("`active` must be a boolean"));
        check(json!({"userName": "b", "name": "Barbara"}), Err("`name` must be an object"));
        // Entra's manager: the id alone.
        check(
            json!({"userName": "b", ENTERPRISE_USER_URN: {"manager": "m-7"}, "emails": ["b@example.com"]}),
            Ok(json!({"schemas": [core, ENTERPRISE_USER_URN], "userName": "b",
                      ENTERPRISE_USER_URN: {"manager": {"value": "m-7"}}, "emails": [{"value": "b@example.com"}]})),
        );
    }

    #[test]
    fn projection() {
        let rt = ResourceKind::User.resource_type();
        let full = obj(json!({
            "schemas": ["s"], "id": "1", "userName": "b", "title": "t",
            "name": {"givenName": "g", "familyName": "f"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x"}],
            ENTERPRISE_USER_URN: {"department": "d", "costCenter": "c"},
            "meta": {"version": "W/\"1\""}
        }));
        let check = |attrs: &[&str], excluded: &[&str], want: Value| {
            let p = Projection::parse(
                &attrs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &excluded.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .unwrap();
            assert_eq!(Value::Object(p.apply(rt, full.clone())), want, "{attrs:?} {excluded:?}");
        };
        check(&["userName"], &[], json!({"schemas": ["s"], "id": "1", "userName": "b"}));
        check(
            &["NAME.givenName,name.familyName"],
            &[],
            json!({"schemas": ["s"], "id": "1", "name": {"givenName": "g", "familyName": "f"}}),
        );
        check(
            &["emails.value"],
            &[],
            json!({"schemas": ["s"], "id": "1", "emails": [{"value": "a@x"}, {"value": "b@x"}]}),
        );
        check(
            &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"],
            &[],
            json!({"schemas": ["s"], "id": "1", ENTERPRISE_USER_URN: {"department": "d"}}),
        );
        check(
            &[ENTERPRISE_USER_URN],
            &[],
            json!({"schemas": ["s"], "id": "1", ENTERPRISE_USER_URN: {"department": "d", "costCenter": "c"}}),
        );
        let mut rest = full.clone();
        rest.remove("title");
        rest.remove("meta");
        if let Some(Value::Object(n)) = rest.get_mut("name") {
            n.remove("givenName");
        }
        check(&[], &["title", "meta", "id", "name.givenName"], Value::Object(rest));
    }

    #[test]
    fn unique_keys_fold_case() {
        let rt = ResourceKind::User.resource_type();
        let keys = unique_keys(rt, &obj(json!({"userName": "BJensen"})));
        assert_eq!(keys, vec![UniqueKey { attribute: "userName", value: "bjensen".into() }]);
    }

    #[test]
    fn etags_are_weak_and_safe() {
        assert_eq!(etag("3"), "W/\"3\"");
        assert_eq!(etag("a\"b\\c d"), "W/\"abcd\"");
    }
}

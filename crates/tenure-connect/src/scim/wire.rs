//! The few SCIM wire forms Tenure reads and writes (RFC 7643 resources, RFC 7644 messages).
//!
//! Reading is deliberately narrow and lenient: only the attributes Tenure uses are decoded, every
//! one is optional except `id`, `null` is the same as absent, and `active` accepts the
//! strings `"true"`/`"false"` some service providers send. A malformed attribute Tenure does not
//! use (a bad `meta.created`, an odd `addresses` entry) therefore never makes an account
//! unreadable, which would block verification for a reason that has nothing to do with access.
//!
//! Writing produces exactly the attributes of the connector's contract: `userName`, `externalId`,
//! `name`, `displayName`, one work email and `active` for users; `displayName` and `members` for
//! groups.

use super::filter;
use crate::AccountSpec;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use tenure_core::attributes::scim as attrs;
use tenure_core::config::{PatchOpCase, ScimDialect};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) user_name: String,
    #[serde(default)]
    pub(crate) external_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) active: Option<bool>,
    #[serde(default)]
    pub(crate) name: Option<Name>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) emails: Vec<Email>,
    /// The groups the server says the user is in (read-only, RFC 7643 §4.1.2); many servers,
    /// scim2-server among them, leave it out.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) groups: Vec<GroupRef>,
    #[serde(default)]
    pub(crate) meta: Option<Meta>,
}

impl User {
    /// The version to send as `If-Match`.
    pub(crate) fn version(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|m| m.version.as_deref())
    }

    /// RFC 7643 gives `active` no default; a user without it can usually sign in, so for
    /// revocation purposes it counts as enabled.
    pub(crate) fn enabled(&self) -> bool {
        self.active.unwrap_or(true)
    }

    /// The primary email, else the first one (RFC 7643 §4.1.2).
    pub(crate) fn email(&self) -> Option<String> {
        let has = |e: &&Email| e.value.as_deref().is_some_and(|v| !v.trim().is_empty());
        let primary = self.emails.iter().filter(has).find(|e| e.primary == Some(true));
        primary.or_else(|| self.emails.iter().find(has)).and_then(|e| e.value.clone())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Name {
    #[serde(default)]
    pub(crate) given_name: Option<String>,
    #[serde(default)]
    pub(crate) family_name: Option<String>,
    #[serde(default)]
    pub(crate) formatted: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Email {
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) primary: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GroupRef {
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) display: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Group {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) display_name: String,
    /// The members with a `value`; one without says nothing and is dropped while decoding.
    #[serde(default, deserialize_with = "members_with_value")]
    pub(crate) members: Members,
}

/// A group's members that name someone, and how many did not (`{}`, `{"display": ..}`), which
/// are never kept: a page of empty members must not cost memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Members {
    pub(crate) kept: Vec<Member>,
    pub(crate) dropped: usize,
}

impl std::ops::Deref for Members {
    type Target = [Member];
    fn deref(&self) -> &[Member] {
        &self.kept
    }
}

fn members_with_value<'de, D: Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Members;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of members")
        }
        fn visit_unit<E>(self) -> Result<Members, E> {
            Ok(Members::default())
        }
        fn visit_none<E>(self) -> Result<Members, E> {
            Ok(Members::default())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Members, A::Error> {
            let mut out = Members::default();
            while let Some(m) = seq.next_element::<Member>()? {
                match m.value {
                    Some(_) => out.kept.push(m),
                    None => out.dropped += 1,
                }
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visit)
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Member {
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
}

impl Member {
    /// Members without a `type` are taken to be users: RFC 7643 makes `type` optional and most
    /// servers omit it.
    pub(crate) fn user_id(&self) -> Option<&str> {
        match self.kind.as_deref() {
            Some(k) if !k.eq_ignore_ascii_case("user") => None,
            _ => self.value.as_deref(),
        }
    }
}

/// A resource with a server-assigned `id`, for telling a listing's pages apart.
pub(crate) trait Resource {
    fn id(&self) -> &str;
    /// How many of its entries said nothing and were dropped while decoding.
    fn dropped(&self) -> usize {
        0
    }
}

impl Resource for User {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Resource for Group {
    fn id(&self) -> &str {
        &self.id
    }
    fn dropped(&self) -> usize {
        self.members.dropped
    }
}

/// How many array elements `body` holds at any depth (resources, members, emails, groups, and
/// any other list), read without keeping anything, so a page can be counted against a
/// listing's cap before it is decoded. `Err` is a body that is not JSON.
pub(crate) fn count_values(body: &[u8]) -> Result<usize, serde_json::Error> {
    struct Count<'a>(&'a mut usize);
    impl<'de> serde::de::DeserializeSeed<'de> for Count<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Count<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let n = self.0;
            while seq.next_element_seed(Count(&mut *n))?.is_some() {
                *n = n.saturating_add(1);
            }
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let n = self.0;
            while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                map.next_value_seed(Count(&mut *n))?;
            }
            Ok(())
        }
    }
    let mut n = 0;
    let mut de = serde_json::Deserializer::from_slice(body);
    serde::de::DeserializeSeed::deserialize(Count(&mut n), &mut de)?;
    de.end()?;
    Ok(n)
}

/// A query answer (RFC 7644 §3.4.2).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct ListResponse<T> {
    #[serde(default)]
    pub(crate) total_results: Option<u64>,
    #[serde(default)]
    pub(crate) items_per_page: Option<u64>,
    #[serde(rename = "Resources", alias = "resources", default = "Vec::new", deserialize_with = "null_as_default")]
    pub(crate) resources: Vec<T>,
}

/// One change to a resource, sent as a PATCH operation or, where a server refuses PATCH, applied
/// to the resource for a PUT.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// Replace a top-level attribute.
    Replace(&'static str, Value),
    /// Remove a top-level attribute.
    Remove(&'static str),
    /// Add a user to a group's `members`.
    AddMember(String),
    /// Remove a user from a group's `members`.
    RemoveMember(String),
}

/// A `PatchOp` message (RFC 7644 §3.5.2), in the target's dialect: `op` lower-case or
/// capitalized, `active` as a boolean or as `"True"`/`"False"`, a member removed by a filtered
/// path or by value.
pub(crate) fn patch_body(changes: &[Change], dialect: &ScimDialect) -> Value {
    let op = |name: &str| match dialect.patch_op_case {
        PatchOpCase::Lower => name.to_string(),
        PatchOpCase::Capitalized => {
            let mut c = name.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        }
    };
    let ops: Vec<Value> = changes
        .iter()
        .map(|c| match c {
            Change::Replace(attr, value) => {
                json!({"op": op("replace"), "path": attr, "value": dialect_value(attr, value, dialect)})
            }
            Change::Remove(attr) => json!({"op": op("remove"), "path": attr}),
            Change::AddMember(id) => json!({"op": op("add"), "path": "members", "value": [{"value": id}]}),
            Change::RemoveMember(id) if dialect.filtered_patch_paths => {
                json!({"op": op("remove"), "path": format!("members[value eq {}]", filter::quote(id))})
            }
            Change::RemoveMember(id) => json!({"op": op("remove"), "path": "members", "value": [{"value": id}]}),
        })
        .collect();
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

/// `active` as the dialect wants it.
fn dialect_value(attr: &str, value: &Value, dialect: &ScimDialect) -> Value {
    match value {
        Value::Bool(b) if attr == "active" && dialect.active_as_string => json!(if *b { "True" } else { "False" }),
        other => other.clone(),
    }
}

/// Applies `changes` to a resource read with GET, for a PUT. Read-only attributes (`meta`,
/// `groups`) are dropped; servers must ignore them, but not all do.
pub(crate) fn apply_changes(resource: &mut Value, changes: &[Change], dialect: &ScimDialect) {
    let Some(obj) = resource.as_object_mut() else { return };
    obj.remove("meta");
    obj.remove("groups");
    for change in changes {
        match change {
            Change::Replace(attr, value) => {
                obj.insert((*attr).to_string(), dialect_value(attr, value, dialect));
            }
            Change::Remove(attr) => {
                obj.remove(*attr);
            }
            Change::AddMember(id) => {
                let members = obj.entry("members").or_insert_with(|| Value::Array(Vec::new()));
                if !members.is_array() {
                    *members = Value::Array(Vec::new());
                }
                if let Some(list) = members.as_array_mut()
                    && !list.iter().any(|m| m.get("value").and_then(Value::as_str) == Some(id))
                {
                    list.push(json!({"value": id}));
                }
            }
            Change::RemoveMember(id) => {
                if let Some(list) = obj.get_mut("members").and_then(Value::as_array_mut) {
                    list.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                }
            }
        }
    }
}

fn name_json(name: &Name) -> Value {
    let mut obj = Map::new();
    if let Some(g) = &name.given_name {
        obj.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &name.family_name {
        obj.insert("familyName".into(), json!(f));
    }
    if let Some(f) = &name.formatted {
        obj.insert("formatted".into(), json!(f));
    }
    Value::Object(obj)
}

fn emails_json(email: &str) -> Value {
    json!([{"value": email, "primary": true, "type": "work"}])
}

/// The account's mapped attributes (`tenure_core::attributes::desired` for SCIM), by name.
pub(crate) fn desired(spec: &AccountSpec) -> std::collections::BTreeMap<String, String> {
    let scim = tenure_core::config::TargetSettings::Scim(tenure_core::config::ScimSettings::default());
    tenure_core::attributes::desired(&scim, |name| spec.lookup(name)).into_iter().collect()
}

/// The mapped attributes of a user as read, by the names `desired` uses.
pub(crate) fn live_attributes(user: &User) -> tenure_core::attributes::Live {
    let one = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(|v| vec![v.to_string()]).unwrap_or_default();
    let name = user.name.clone().unwrap_or_default();
    [
        (attrs::DISPLAY_NAME, one(user.display_name.as_deref())),
        (attrs::GIVEN_NAME, one(name.given_name.as_deref())),
        (attrs::FAMILY_NAME, one(name.family_name.as_deref())),
        (attrs::EMAILS, one(user.email().as_deref())),
        (attrs::TITLE, one(user.title.as_deref())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The body of `POST /Users` for a spec: the identity's mapped attributes, the account name and
/// the correlation id.
pub(crate) fn new_user(spec: &AccountSpec) -> Value {
    let d = desired(spec);
    let get = |k: &str| d.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([USER_SCHEMA]));
    obj.insert("userName".into(), json!(spec.account));
    if !spec.identity_id.is_empty() {
        obj.insert("externalId".into(), json!(spec.identity_id));
    }
    let display = get(attrs::DISPLAY_NAME).unwrap_or(spec.account.as_str());
    if get(attrs::GIVEN_NAME).is_some() || get(attrs::FAMILY_NAME).is_some() {
        let name = Name {
            given_name: get(attrs::GIVEN_NAME).map(str::to_string),
            family_name: get(attrs::FAMILY_NAME).map(str::to_string),
            formatted: Some(display.to_string()),
        };
        obj.insert("name".into(), name_json(&name));
    }
    obj.insert("displayName".into(), json!(display));
    if let Some(email) = get(attrs::EMAILS) {
        obj.insert("emails".into(), emails_json(email));
    }
    if let Some(title) = get(attrs::TITLE) {
        obj.insert("title".into(), json!(title));
    }
    obj.insert("active".into(), json!(true));
    Value::Object(obj)
}

/// The changes that bring `user`'s mapped attributes to `spec`'s (`update_attributes`): one
/// top-level replace (or remove, when the value should be absent) per attribute that differs,
/// `name` as a whole when either of its parts does. Empty when nothing differs.
pub(crate) fn attribute_changes(user: &User, spec: &AccountSpec) -> Vec<Change> {
    let want = desired(spec);
    let want_list: Vec<(String, String)> = want.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let differ = tenure_core::attributes::changes(&want_list, &live_attributes(user));
    let differs = |k: &str| differ.iter().any(|c| c.attribute == k);
    let get = |k: &str| want.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    let simple = |out: &mut Vec<Change>, attr: &'static str, value: Option<Value>| {
        out.push(match value {
            Some(v) => Change::Replace(attr, v),
            None => Change::Remove(attr),
        });
    };
    if differs(attrs::DISPLAY_NAME) {
        simple(&mut out, "displayName", get(attrs::DISPLAY_NAME).map(|v| json!(v)));
    }
    if differs(attrs::GIVEN_NAME) || differs(attrs::FAMILY_NAME) {
        let (given, family) = (get(attrs::GIVEN_NAME), get(attrs::FAMILY_NAME));
        let name = (given.is_some() || family.is_some()).then(|| {
            name_json(&Name {
                given_name: given.map(str::to_string),
                family_name: family.map(str::to_string),
                formatted: get(attrs::DISPLAY_NAME).map(str::to_string),
            })
        });
        simple(&mut out, "name", name);
    }
    if differs(attrs::EMAILS) {
        simple(&mut out, "emails", get(attrs::EMAILS).map(emails_json));
    }
    if differs(attrs::TITLE) {
        simple(&mut out, "title", get(attrs::TITLE).map(|v| json!(v)));
    }
    out
}

/// The body of `POST /Groups` for a new group holding one member.
pub(crate) fn new_group(display_name: &str, member: &str) -> Value {
    json!({"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": [{"value": member}]})
}

/// What must change on an existing user so that it is what `POST /Users` for `spec` would have
/// made: used when a create finds the account already there.
pub(crate) fn changes_to_match(user: &User, spec: &AccountSpec) -> Vec<Change> {
    let mut changes = Vec::new();
    if !spec.identity_id.is_empty() && user.external_id.as_deref() != Some(spec.identity_id.as_str()) {
        changes.push(Change::Replace("externalId", json!(spec.identity_id)));
    }
    // The mapped attributes, exactly as `update_attributes` brings them.
    changes.extend(attribute_changes(user, spec));
    if !user.enabled() || user.active.is_none() {
        changes.push(Change::Replace("active", json!(true)));
    }
    changes
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A boolean, or the strings `"true"`/`"false"` in any case; anything else reads as absent.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue15_members_without_value_are_dropped_and_values_counted_before_decoding() {
        let g: Group =
            serde_json::from_value(json!({"id": "g", "members": [{}, {"value": "u1"}, {"display": "x"}, {}]})).unwrap();
        assert_eq!(g.members.iter().filter_map(|m| m.value.as_deref()).collect::<Vec<_>>(), ["u1"]);
        assert_eq!((g.members.dropped, g.dropped()), (3, 3));
        let g: Group = serde_json::from_value(json!({"id": "g", "members": null})).unwrap();
        assert!(g.members.is_empty());
        let body = br#"{"Resources": [{"id": "g", "members": [{}, {}, {"value": "u"}]}, {"id": "h", "x": [[1], 2]}]}"#;
        // Two resources, three members, two in `x` and one in its inner list.
        assert_eq!(count_values(body).unwrap(), 8);
        assert!(count_values(b"{\"a\": [1,").is_err());
        assert!(count_values(b"[1] [2]").is_err());
    }

    #[test]
    fn users_decode_leniently() {
        let user: User = serde_json::from_value(json!({
            "id": "1", "userName": "a", "active": "False", "emails": null,
            "meta": {"created": "not a date", "version": "W/\"3\""}, "addresses": "nonsense",
        }))
        .unwrap();
        assert_eq!(user.active, Some(false));
        assert!(user.emails.is_empty());
        assert_eq!(user.version(), Some("W/\"3\""));
        let user: User = serde_json::from_value(json!({"id": "2"})).unwrap();
        assert!(user.enabled());
    }

    #[test]
    fn list_responses_accept_either_spelling() {
        let a: ListResponse<Group> =
            serde_json::from_value(json!({"totalResults": 1, "Resources": [{"id": "g", "displayName": "x"}]})).unwrap();
        let b: ListResponse<Group> =
            serde_json::from_value(json!({"totalResults": 1, "resources": [{"id": "g", "displayName": "x"}]})).unwrap();
        let c: ListResponse<Group> = serde_json::from_value(json!({"totalResults": 0})).unwrap();
        assert_eq!(a.resources.len(), 1);
        assert_eq!(b.resources.len(), 1);
        assert!(c.resources.is_empty());
    }

    #[test]
    fn remove_member_path_quotes_the_id() {
        let body = patch_body(&[Change::RemoveMember("x\" or value pr \"".into())], &ScimDialect::STANDARD);
        assert_eq!(body["Operations"][0]["path"], json!(r#"members[value eq "x\" or value pr \""]"#));
    }

    #[test]
    fn the_entra_dialect_capitalizes_ops_sends_active_as_a_string_and_removes_members_by_value() {
        let changes = [
            Change::Replace("active", json!(false)),
            Change::AddMember("u1".into()),
            Change::RemoveMember("u2".into()),
        ];
        assert_eq!(
            patch_body(&changes, &ScimDialect::ENTRA),
            json!({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "members", "value": [{"value": "u1"}]},
                {"op": "Remove", "path": "members", "value": [{"value": "u2"}]},
            ]})
        );
        assert_eq!(
            patch_body(&changes, &ScimDialect::STANDARD),
            json!({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "replace", "path": "active", "value": false},
                {"op": "add", "path": "members", "value": [{"value": "u1"}]},
                {"op": "remove", "path": "members[value eq \"u2\"]"},
            ]})
        );
        let mut user = json!({"id": "u", "active": true});
        apply_changes(&mut user, &[Change::Replace("active", json!(true))], &ScimDialect::ENTRA);
        assert_eq!(user["active"], json!("True"));
    }

    #[test]
    fn changes_apply_to_a_resource_for_put() {
        let mut group = json!({"id": "g", "displayName": "x", "members": [{"value": "1"}], "meta": {}});
        apply_changes(
            &mut group,
            &[Change::AddMember("2".into()), Change::AddMember("1".into())],
            &ScimDialect::STANDARD,
        );
        assert_eq!(group["members"], json!([{"value": "1"}, {"value": "2"}]));
        apply_changes(&mut group, &[Change::RemoveMember("1".into())], &ScimDialect::STANDARD);
        assert_eq!(group["members"], json!([{"value": "2"}]));
        assert!(group.get("meta").is_none());
        let mut user = json!({"id": "u", "active": true});
        apply_changes(&mut user, &[Change::Replace("active", json!(false))], &ScimDialect::STANDARD);
        assert_eq!(user["active"], json!(false));
    }

    #[test]
    fn a_mover_gets_a_patch_of_only_the_attributes_that_differ_in_the_targets_dialect() {
        let spec = AccountSpec {
            identity_id: "e1".into(),
            account: "ann".into(),
            given_name: Some("Ann".into()),
            family_name: Some("Lee".into()),
            email: Some("ann@example.com".into()),
            attributes: [("title".to_string(), "Lead".to_string())].into(),
        };
        let made: User = serde_json::from_value({
            let mut v = new_user(&spec);
            v["id"] = json!("1");
            v
        })
        .unwrap();
        assert_eq!(made.title.as_deref(), Some("Lead"));
        assert_eq!(attribute_changes(&made, &spec), vec![]);
        let moved = AccountSpec {
            family_name: Some("Grey".into()),
            attributes: [("title".to_string(), String::new())].into(),
            ..spec.clone()
        };
        let changes = attribute_changes(&made, &moved);
        assert_eq!(
            patch_body(&changes, &ScimDialect::ENTRA),
            json!({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Ann Grey"},
                {"op": "Replace", "path": "name", "value": {"givenName": "Ann", "familyName": "Grey", "formatted": "Ann Grey"}},
                {"op": "Remove", "path": "title"},
            ]})
        );
        let mut put = new_user(&spec);
        apply_changes(&mut put, &changes, &ScimDialect::STANDARD);
        assert_eq!(put["displayName"], json!("Ann Grey"));
        assert!(put.get("title").is_none());
    }

    #[test]
    fn an_existing_user_is_brought_to_what_create_would_make() {
        let spec = AccountSpec {
            identity_id: "e1".into(),
            account: "ann".into(),
            given_name: Some("Ann".into()),
            family_name: Some("Lee".into()),
            email: Some("ann@example.com".into()),
            ..AccountSpec::default()
        };
        let made: User = serde_json::from_value({
            let mut v = new_user(&spec);
            v["id"] = json!("1");
            v
        })
        .unwrap();
        assert_eq!(changes_to_match(&made, &spec), vec![]);
        let bare: User = serde_json::from_value(json!({"id": "1", "userName": "ann", "active": false})).unwrap();
        let attrs: Vec<&str> = changes_to_match(&bare, &spec)
            .iter()
            .map(|c| match c {
                Change::Replace(a, _) => *a,
                _ => "",
            })
            .collect();
        assert_eq!(attrs, ["externalId", "displayName", "name", "emails", "active"]);
    }
}

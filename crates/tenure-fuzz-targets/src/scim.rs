//! `scim_filter` (filters, and the connector's quoting of filter values) and `scim_patch`
//! (PatchOp bodies and paths), through `tenure-scim`'s parsers.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use tenure_scim::ResourceKind;
use tenure_scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use tenure_scim::patch::{PatchPath, PatchRequest};

/// Rendered users (with `id` and `meta`, as filters see them) whose `userName`s differ in case
/// and in Unicode only.
fn users() -> &'static [Map<String, Value>] {
    static USERS: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
    USERS.get_or_init(|| {
        let names = ["alice", "Alice", "bob", "ünal", "ÜNAL", "a\"b\\c", ""];
        names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let user = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "id": format!("id-{i}"),
                    "externalId": format!("E{i}"),
                    "userName": name,
                    "active": i % 2 == 0,
                    "displayName": format!("User {i}"),
                    "name": { "givenName": "A", "familyName": name },
                    "emails": [
                        { "value": format!("{name}@example.com"), "type": "work", "primary": true },
                        { "value": format!("{i}@home.example"), "type": "home" }
                    ],
                    "title": if i % 3 == 0 { Value::Null } else { json!("DBA") },
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Engineering" },
                    "meta": { "resourceType": "User", "created": "2026-11-21T08:00:00Z", "lastModified": "2026-11-21T08:00:00Z", "version": "W/\"1\"" }
                });
                match user {
                    Value::Object(m) => Some(m),
                    _ => None,
                }
            })
            .collect()
    })
}

/// Parses `data` as a filter; an accepted one is checked against both resource types and
/// evaluated on the sample users. Where it names a `userName` every match must have
/// (`required_equality`, the value backends look up in an index), every matching user must
/// have it, compared as `userName` compares: case-insensitively. Then `data` is used as a value
/// the SCIM connector quotes into `userName eq VALUE`, which must parse back to exactly that
/// comparison, with that value.
pub fn scim_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let user = ResourceKind::User.resource_type();
    let group = ResourceKind::Group.resource_type();
    if let Ok(filter) = Filter::parse(text) {
        let _ = filter.check(user);
        let _ = filter.check(group);
        let _ = filter.check_across(&[user, group]);
        let required = filter.required_equality(user, "userName");
        for u in users() {
            if filter.matches(user, u)
                && let Some(want) = required
            {
                let have = u.get("userName").and_then(Value::as_str).unwrap_or_default();
                assert!(
                    have.to_lowercase() == want.to_lowercase(),
                    "`{text}` requires userName `{want}` but matches the user named `{have}`"
                );
            }
        }
    }
    let quoted = format!("userName eq {}", tenure_connect::scim::filter::quote(text));
    if quoted.len() > tenure_scim::filter::MAX_LEN {
        return;
    }
    let parsed = Filter::parse(&quoted);
    let want = AttrPath::parse("userName").map(|p| Filter::Compare(p, CompareOp::Eq, CompValue::Str(text.to_string())));
    match (parsed, want) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "the quoted filter `{quoted}` means something else"),
        (Err(e), _) => panic!("the quoted filter `{quoted}` does not parse: {e:?}"),
        (_, Err(e)) => panic!("`userName` is not an attribute path: {e}"),
    }
}

/// Parses `data` as a PatchOp body and applies it to each sample user, then normalizes the
/// result as the server does before storing it; normalizing that again must change nothing.
/// Text that is not JSON is parsed as a PATCH `path`.
pub fn scim_patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = PatchPath::parse(text);
        }
        return;
    };
    let Ok(request) = PatchRequest::parse(&body) else {
        return;
    };
    let user = ResourceKind::User.resource_type();
    for stored in users().iter().take(3) {
        let mut patched = stored.clone();
        if tenure_scim::patch::apply(user, &mut patched, &request).is_err() {
            continue;
        }
        let Ok(once) = tenure_scim::resource::normalize(user, &patched) else {
            continue;
        };
        let _ = tenure_scim::resource::unique_keys(user, &once);
        match tenure_scim::resource::normalize(user, &once) {
            Ok(twice) => assert_eq!(twice, once, "normalizing a patched user twice changed it"),
            Err(e) => panic!("a normalized user does not normalize again: {e:?}"),
        }
    }
}

//! The standard mapping: a SCIM User → the record Tenure's engine ingests.
//!
//! A pure function, so the server applies it to every User it stores and the mapping is
//! tested here with data. The record is what a webhook source would push: a key
//! and identity attributes by their Tenure names, plus the HR-style status.
//!
//! | Tenure | SCIM |
//! | --- | --- |
//! | key | `externalId`, else the enterprise `employeeNumber`, else the resource `id` |
//! | `username` | `userName` |
//! | `given_name`, `family_name` | `name.givenName`, `name.familyName` |
//! | `email` | the `primary` `emails` value, else the first |
//! | `title` | `title` |
//! | `department`, `cost_center` | enterprise `department`, `costCenter` |
//! | `manager_id` | enterprise `manager.value` |
//! | `employment_type` | `userType` |
//! | status | `active` (`true`/`false`, or those strings in any case): `active` / `terminated`; absent is `active` |
//!
//! `manager.value` is, in SCIM, the manager's resource `id`; it is passed on as written. A
//! server whose keys are not the SCIM ids (an IdP that sends `externalId`) translates it to the
//! manager's key before the engine sees it.

use crate::filter::lenient_bool;
use crate::schema::ENTERPRISE_USER_URN;
use serde_json::{Map, Value};

/// The lifecycle status a SCIM User's `active` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordStatus {
    Active,
    Terminated,
}

impl RecordStatus {
    /// The HR status value (`active`, `terminated`) the engine's status derivation reads.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::Terminated => "terminated",
        }
    }
}

/// What the engine ingests for one SCIM User.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub key: String,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub cost_center: Option<String>,
    pub manager_id: Option<String>,
    pub employment_type: Option<String>,
    pub status: RecordStatus,
}

impl UserRecord {
    /// The identity attributes that have values, by their Tenure names.
    pub fn attributes(&self) -> Vec<(&'static str, &str)> {
        [
            ("username", &self.username),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("email", &self.email),
            ("title", &self.title),
            ("department", &self.department),
            ("cost_center", &self.cost_center),
            ("manager_id", &self.manager_id),
            ("employment_type", &self.employment_type),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// Why a User cannot be mapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    #[error("`active` must be true or false, not `{0}`")]
    InvalidActive(String),
    #[error("the resource id is empty")]
    NoKey,
}

impl MappingError {
    /// A stable code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            MappingError::InvalidActive(_) => "scim_invalid_active",
            MappingError::NoKey => "scim_no_key",
        }
    }
}

/// Maps the User `user` whose resource id is `id`.
pub fn user_record(id: &str, user: &Map<String, Value>) -> Result<UserRecord, MappingError> {
    let enterprise = get(user, ENTERPRISE_USER_URN).and_then(Value::as_object);
    let ext = |name: &str| enterprise.and_then(|e| text(get(e, name)));
    let name = get(user, "name").and_then(Value::as_object);
    let key = text(get(user, "externalId"))
        .or_else(|| ext("employeeNumber"))
        .or_else(|| Some(id.to_string()).filter(|s| !s.trim().is_empty()))
        .ok_or(MappingError::NoKey)?;
    let status = match get(user, "active") {
        None | Some(Value::Null) => RecordStatus::Active,
        Some(v) => match lenient_bool(v) {
            Some(true) => RecordStatus::Active,
            Some(false) => RecordStatus::Terminated,
            None => return Err(MappingError::InvalidActive(crate::filter::clip(&v.to_string()))),
        },
    };
    Ok(UserRecord {
        key,
        username: text(get(user, "userName")),
        given_name: name.and_then(|n| text(get(n, "givenName"))),
        family_name: name.and_then(|n| text(get(n, "familyName"))),
        email: email(user),
        title: text(get(user, "title")),
        department: ext("department"),
        cost_center: ext("costCenter"),
        manager_id: enterprise.and_then(|e| get(e, "manager")).and_then(|m| text(get(m.as_object()?, "value"))),
        employment_type: text(get(user, "userType")),
        status,
    })
}

/// The primary email's value, else the first one's.
fn email(user: &Map<String, Value>) -> Option<String> {
    let emails: Vec<&Map<String, Value>> = match get(user, "emails")? {
        Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => return None,
    };
    let primary = emails.iter().find(|e| get(e, "primary").and_then(lenient_bool) == Some(true));
    primary.into_iter().chain(emails.iter()).find_map(|e| text(get(e, "value")))
}

/// A key in any case (the mapping reads raw JSON, not only normalized bodies).
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A non-blank string value.
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The key, the status and the attributes.
    type Expect<'a> = Result<(&'a str, &'a str, &'a [(&'a str, &'a str)]), MappingError>;

    /// Maps `user` (id `scim-id`) and compares the key, status and attributes.
    fn check(user: Value, expect: Expect<'_>) {
        let got = user_record("scim-id", user.as_object().unwrap());
        match (got, expect) {
            (Ok(r), Ok((key, status, attrs))) => {
                assert_eq!(r.key, key, "{user}");
                assert_eq!(r.status.as_str(), status, "{user}");
                assert_eq!(r.attributes(), attrs.to_vec(), "{user}");
            }
            (Err(g), Err(e)) => assert_eq!(g, e, "{user}"),
            (g, e) => panic!("{user}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn the_full_mapping() {
        check(
            json!({
                "externalId": "E-1001", "userName": "bjensen", "title": "Tour Guide", "userType": "Employee",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "home@jensen.org"}, {"value": "bjensen@example.com", "primary": true}],
                "active": true,
                ENTERPRISE_USER_URN: {"employeeNumber": "701984", "department": "Tours", "costCenter": "4130", "manager": {"value": "E-0007"}}
            }),
            Ok((
                "E-1001",
                "active",
                &[
                    ("username", "bjensen"),
                    ("given_name", "Barbara"),
                    ("family_name", "Jensen"),
                    ("email", "bjensen@example.com"),
                    ("title", "Tour Guide"),
                    ("department", "Tours"),
                    ("cost_center", "4130"),
                    ("manager_id", "E-0007"),
                    ("employment_type", "Employee"),
                ],
            )),
        );
    }

    #[test]
    fn the_key_falls_back_to_employee_number_then_id() {
        check(
            json!({"userName": "a", ENTERPRISE_USER_URN: {"employeeNumber": "701984"}}),
            Ok(("701984", "active", &[("username", "a")])),
        );
        check(
            json!({"userName": "a", "externalId": "  ", ENTERPRISE_USER_URN: {"employeeNumber": ""}}),
            Ok(("scim-id", "active", &[("username", "a")])),
        );
        check(json!({"userName": "a"}), Ok(("scim-id", "active", &[("username", "a")])));
        assert_eq!(user_record(" ", &Map::new()), Err(MappingError::NoKey));
    }

    #[test]
    fn active_is_read_leniently() {
        for (active, status) in [
            (json!(false), "terminated"),
            (json!("False"), "terminated"),
            (json!("TRUE"), "active"),
            (json!(null), "active"),
        ] {
            check(json!({"active": active}), Ok(("scim-id", status, &[])));
        }
        check(json!({"active": "maybe"}), Err(MappingError::InvalidActive("\"maybe\"".into())));
        check(json!({"active": 0}), Err(MappingError::InvalidActive("0".into())));
    }

    #[test]
    fn the_first_email_without_a_primary_and_raw_json_in_any_case() {
        check(
            json!({"EMAILS": [{"Value": "first@example.com"}, {"value": "second@example.com", "primary": false}], "Active": "false"}),
            Ok(("scim-id", "terminated", &[("email", "first@example.com")])),
        );
        check(
            json!({"emails": [{"type": "work"}, {"value": "v@example.com"}]}),
            Ok(("scim-id", "active", &[("email", "v@example.com")])),
        );
    }
}

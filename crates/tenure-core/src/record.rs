//! Pushed records: one identity's HR data at a time, from a signed webhook or a SCIM push,
//! instead of a whole snapshot.
//!
//! A record is an upsert: the fields it names replace the identity's values, the fields it
//! leaves out keep theirs, and an empty value (or JSON `null`) clears one. So an HR system can
//! send `{"employee_id": "E7", "status": "terminated"}` without repeating the rest of the row.
//! Every value passes exactly the checks a CSV cell passes (`snapshot::check_value`), and a
//! record that fails any of them is refused whole, with its index, field and reason: pushes are
//! all or nothing, so nothing of a request with a bad record is applied.
//!
//! Nothing here knows the wire format: the webhook endpoint turns JSON objects keyed by the
//! source's column names into [`Record`]s with [`from_columns`]; the SCIM endpoint maps a User
//! to attribute names itself and builds the same [`Record`].

use crate::config::SourceConfig;
use crate::date::parse_date;
use crate::model::{Identity, Kind, Status};
use crate::schema::{self, Schema, Slot};
use crate::snapshot::{self, hr_status};
use crate::text;
use chrono::NaiveDate;

/// What a record field sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// An identity attribute.
    Attr(Slot),
    /// The HR status (`active`, `leave`, `terminated`, ...), from which the lifecycle status is
    /// derived together with the dates.
    Status,
    /// The identity kind (`employee`, `contractor`, `service`, `bot`).
    Kind,
}

/// One field of a record, with the name the sender used (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordField {
    pub field: Field,
    pub name: String,
    /// `None` (or an empty string) clears the value.
    pub value: Option<String>,
}

/// One pushed record: the identity's key and either the fields to set or a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's position in the request (0-based), for messages.
    pub index: usize,
    pub key: String,
    /// The source removed the identity (`"deleted": true`): a leaver, like a row removed
    /// from a snapshot.
    pub deleted: bool,
    pub fields: Vec<RecordField>,
}

/// Why a record is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("record {index}{}: {reason}", field.as_deref().map(|f| format!(" field `{f}`")).unwrap_or_default())]
pub struct BadRecord {
    pub index: usize,
    pub field: Option<String>,
    pub reason: String,
}

impl BadRecord {
    pub fn new(index: usize, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self { index, field: field.map(text::quote), reason: reason.into() }
    }
}

/// The field name that marks a deletion.
pub const DELETED: &str = "deleted";

/// A JSON-like value as a record carries it: the endpoint refuses anything that is not a string
/// or null before it gets here (numbers and booleans in HR data are a mapping mistake more often
/// than not, and `"deleted": true` is the one boolean, handled by [`from_columns`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
}

/// Builds a record from fields named by the source's columns (a webhook record is keyed
/// exactly like a CSV row of that source). Unmapped columns are ignored, as they are in a CSV
/// file; the key column is required; `deleted` must be `true` or absent.
pub fn from_columns<'a>(
    source: &SourceConfig,
    index: usize,
    fields: impl IntoIterator<Item = (&'a str, Value<'a>)>,
) -> Result<Record, BadRecord> {
    let mut key = None;
    let mut deleted = false;
    let mut out = Vec::new();
    for (name, value) in fields {
        let field = if name == source.key {
            match value {
                Value::Str(k) => key = Some(k),
                _ => return Err(BadRecord::new(index, Some(name), "the key must be a string")),
            }
            continue;
        } else if name == DELETED {
            match value {
                Value::Bool(b) => deleted = b,
                Value::Null => {}
                Value::Str(_) => return Err(BadRecord::new(index, Some(name), "`deleted` must be true or false")),
            }
            continue;
        } else if source.status_column.as_deref() == Some(name) {
            Field::Status
        } else if let Some((slot, _)) = source.columns.iter().find(|(_, c)| c == name) {
            if *slot == schema::KIND { Field::Kind } else { Field::Attr(*slot) }
        } else {
            continue;
        };
        let value = match value {
            Value::Null => None,
            Value::Str(s) => Some(s.to_string()),
            Value::Bool(_) => return Err(BadRecord::new(index, Some(name), "must be a string or null")),
        };
        if out.iter().any(|f: &RecordField| f.field == field) {
            return Err(BadRecord::new(index, Some(name), "two fields map to the same attribute"));
        }
        out.push(RecordField { field, name: name.to_string(), value });
    }
    let key = check_key(index, &source.key, key)?;
    Ok(Record { index, key, deleted, fields: out })
}

/// Checks a record's key the way a CSV key is checked: present, printable ASCII, within the
/// field limit.
pub fn check_key(index: usize, key_name: &str, key: Option<&str>) -> Result<String, BadRecord> {
    let bad = |why: String| BadRecord::new(index, Some(key_name), why);
    let Some(raw) = key else { return Err(bad("missing key".into())) };
    if raw.len() > text::FIELD_LIMIT {
        return Err(bad(format!("key is {} bytes; the limit is {}", raw.len(), text::FIELD_LIMIT)));
    }
    let k = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if k.is_empty() {
        return Err(bad("missing key".into()));
    }
    if !text::is_plain_key(k) {
        return Err(bad(format!(
            "key `{}` has characters other than printable ASCII (a space, a control, an invisible or look-alike character)",
            text::quote(k)
        )));
    }
    Ok(k.to_string())
}

/// The identity a record makes of `previous` (or of nothing, for a new key) on `today`: its
/// fields applied over the previous values, each value checked, the status derived from the
/// HR status and the dates. A deletion is not applied here (see [`deleted`]).
///
/// A record without a status keeps the previous HR standing: a suspended identity stays on
/// leave, a terminated one stays terminated (a rehire says `active`), anyone else is active.
pub fn apply(
    schema: &Schema,
    previous: Option<&Identity>,
    record: &Record,
    today: NaiveDate,
) -> Result<Identity, BadRecord> {
    let mut attrs = previous.map_or_else(|| crate::model::Attrs::new(schema), |p| p.attrs.clone());
    let mut hr = match previous.map(|p| p.status) {
        Some(Status::Terminated) => Status::Terminated,
        Some(Status::Suspended) => Status::Suspended,
        _ => Status::Active,
    };
    let mut kind = previous.map(|p| p.kind);
    for f in &record.fields {
        let raw = f.value.as_deref().unwrap_or("");
        if raw.len() > text::FIELD_LIMIT {
            return Err(BadRecord::new(
                record.index,
                Some(&f.name),
                format!("field is {} bytes; the limit is {}", raw.len(), text::FIELD_LIMIT),
            ));
        }
        let v = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        match f.field {
            Field::Attr(slot) => {
                let checked = snapshot::check_value(schema, slot, v)
                    .map_err(|why| BadRecord::new(record.index, Some(&f.name), why))?;
                attrs.set(slot, Some(&checked).filter(|c| !c.is_empty()).map(String::as_str));
            }
            Field::Status => {
                hr = hr_status(v).filter(|_| !v.is_empty()).ok_or_else(|| {
                    BadRecord::new(
                        record.index,
                        Some(&f.name),
                        format!("unknown status `{}`; expected active, leave or terminated", text::quote(v)),
                    )
                })?;
            }
            Field::Kind => {
                kind = if v.is_empty() {
                    None
                } else {
                    Some(v.to_ascii_lowercase().parse::<Kind>().map_err(|_| {
                        BadRecord::new(
                            record.index,
                            Some(&f.name),
                            format!("unknown kind `{}`; expected employee, contractor, service or bot", text::quote(v)),
                        )
                    })?)
                };
            }
        }
    }
    let kind = kind.unwrap_or_else(|| {
        let contractor =
            attrs.get(schema.slot_of("employment_type")).is_some_and(|t| t.eq_ignore_ascii_case("contractor"));
        if contractor { Kind::Contractor } else { Kind::Employee }
    });
    let date = |name: &str| attrs.get(schema.slot_of(name)).and_then(parse_date);
    let status = snapshot::derive_status(hr, date("start_date"), date("end_date"), today);
    Ok(Identity::new(&record.key, kind, status, attrs))
}

/// The identity a deletion leaves: the previous one, terminated.
pub fn deleted(previous: &Identity) -> Identity {
    let mut gone = previous.clone();
    gone.set_status(Status::Terminated);
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SecretRef, SourceKind};

    fn source(schema: &Schema) -> SourceConfig {
        SourceConfig {
            name: "hr".into(),
            kind: SourceKind::Webhook,
            key: "employee_id".into(),
            columns: vec![
                (schema.slot_of("email"), "work_email".into()),
                (schema.slot_of("username"), "login".into()),
                (schema.slot_of("department"), "dept".into()),
                (schema.slot_of("end_date"), "end".into()),
                (schema.slot_of("start_date"), "start".into()),
                (schema::KIND, "kind".into()),
            ],
            status_column: Some("employment_status".into()),
            delimiter: b',',
            secret: SecretRef::Env("S".into()),
            timezone: chrono_tz::UTC,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default()
    }

    fn record(fields: &[(&str, Value<'_>)]) -> Result<Record, BadRecord> {
        let schema = Schema::default();
        from_columns(&source(&schema), 3, fields.iter().cloned())
    }

    /// Applies `fields` over `previous` and returns the status and the named attributes, or the
    /// refusal as `field: reason`.
    fn check(previous: Option<&Identity>, fields: &[(&str, Value<'_>)], expect: &str) {
        let schema = Schema::default();
        let got = record(fields).and_then(|r| apply(&schema, previous, &r, today())).map_or_else(
            |e| format!("{}: {}", e.field.unwrap_or_default(), e.reason),
            |i| {
                let attrs: Vec<String> = ["email", "username", "department", "end_date"]
                    .iter()
                    .map(|a| i.attr(&schema, a).unwrap_or("-").to_string())
                    .collect();
                format!("{} {} {} {}", i.id, i.kind, i.status, attrs.join(" "))
            },
        );
        assert_eq!(got, expect, "{fields:?}");
    }

    #[test]
    fn a_record_is_an_upsert_over_the_previous_values() {
        use Value::*;
        let key = ("employee_id", Str("E1"));
        check(
            None,
            &[key.clone(), ("work_email", Str("a@x.com")), ("login", Str("ada"))],
            "E1 employee active a@x.com ada - -",
        );
        let schema = Schema::default();
        let prev =
            record(&[key.clone(), ("work_email", Str("a@x.com")), ("login", Str("ada")), ("dept", Str("Sales"))])
                .and_then(|r| apply(&schema, None, &r, today()))
                .ok();
        let prev = prev.as_ref();
        // Only the status: everything else is kept.
        check(
            prev,
            &[key.clone(), ("employment_status", Str("terminated"))],
            "E1 employee terminated a@x.com ada Sales -",
        );
        // Null and empty clear; unmapped columns are ignored, as in a CSV file.
        check(
            prev,
            &[key.clone(), ("dept", Null), ("favourite_colour", Str("red"))],
            "E1 employee active a@x.com ada - -",
        );
        check(prev, &[key.clone(), ("dept", Str("  "))], "E1 employee active a@x.com ada - -");
        // A passed end date makes a leaver; the kind column and employment type decide the kind.
        check(prev, &[key.clone(), ("end", Str("2026-11-30"))], "E1 employee terminated a@x.com ada Sales 2026-11-30");
        check(prev, &[key.clone(), ("kind", Str("Service"))], "E1 service active a@x.com ada Sales -");
        check(prev, &[key.clone(), ("start", Str("2027-01-04"))], "E1 employee prehire a@x.com ada Sales -");
    }

    #[test]
    fn a_record_without_status_keeps_the_previous_standing() {
        let schema = Schema::default();
        let base = record(&[("employee_id", Value::Str("E1")), ("employment_status", Value::Str("leave"))])
            .and_then(|r| apply(&schema, None, &r, today()));
        let on_leave = base.ok();
        check(
            on_leave.as_ref(),
            &[("employee_id", Value::Str("E1")), ("dept", Value::Str("Ops"))],
            "E1 employee suspended - - Ops -",
        );
        let gone = on_leave.as_ref().map(deleted);
        check(
            gone.as_ref(),
            &[("employee_id", Value::Str("E1")), ("dept", Value::Str("Ops"))],
            "E1 employee terminated - - Ops -",
        );
        let back = [("employee_id", Value::Str("E1")), ("employment_status", Value::Str("active"))];
        check(gone.as_ref(), &back, "E1 employee active - - - -");
    }

    #[test]
    fn bad_records_name_the_field_and_reason() {
        use Value::*;
        let key = ("employee_id", Str("E1"));
        check(None, &[("work_email", Str("a@x.com"))], "employee_id: missing key");
        check(None, &[("employee_id", Str(" "))], "employee_id: missing key");
        check(
            None,
            &[("employee_id", Str("E\u{202e}1"))],
            "employee_id: key `E\\u{202e}1` has characters other than printable ASCII (a space, a control, an invisible or look-alike character)",
        );
        check(None, &[("employee_id", Bool(true))], "employee_id: the key must be a string");
        check(None, &[key.clone(), ("work_email", Str("nobody"))], "work_email: `nobody` is not an email address");
        check(None, &[key.clone(), ("end", Str("2026-02-30"))], "end: bad date `2026-02-30`: no such calendar date");
        check(
            None,
            &[key.clone(), ("login", Str("ada\u{1b}[31m"))],
            "login: value `ada\\u{1b}[31m` contains control characters",
        );
        check(
            None,
            &[key.clone(), ("employment_status", Str("fired"))],
            "employment_status: unknown status `fired`; expected active, leave or terminated",
        );
        check(
            None,
            &[key.clone(), ("employment_status", Str(""))],
            "employment_status: unknown status ``; expected active, leave or terminated",
        );
        check(
            None,
            &[key.clone(), ("kind", Str("robot"))],
            "kind: unknown kind `robot`; expected employee, contractor, service or bot",
        );
        check(None, &[key.clone(), ("dept", Bool(false))], "dept: must be a string or null");
        check(None, &[key.clone(), ("deleted", Str("yes"))], "deleted: `deleted` must be true or false");
        let long = "x".repeat(text::FIELD_LIMIT + 1);
        check(
            None,
            &[key.clone(), ("dept", Str(&long))],
            &format!("dept: field is {} bytes; the limit is {}", long.len(), text::FIELD_LIMIT),
        );
    }

    #[test]
    fn deleted_is_a_flag_beside_the_key() {
        let r = record(&[("employee_id", Value::Str("E1")), ("deleted", Value::Bool(true))]);
        assert_eq!(r.map(|r| (r.key, r.deleted, r.fields.len())), Ok(("E1".to_string(), true, 0)));
        let e = BadRecord::new(2, Some("dept"), "too long");
        assert_eq!(e.to_string(), "record 2 field `dept`: too long");
    }
}

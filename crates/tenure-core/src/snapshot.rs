//! HR snapshots: parse a CSV extract, validate each row, derive lifecycle status, and diff the
//! result against the last accepted state to produce lifecycle events.
//!
//! A rejected row never counts as a removal: an identity whose row is rejected keeps its
//! previous state, so a malformed line can never terminate anyone.

use crate::config::SourceConfig;
use crate::date::parse_date;
use crate::model::{Attrs, Change, Event, EventKind, Identity, Kind, Status};
use crate::schema::{self, AttrType, Schema, Slot};
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};

/// A row that was not accepted, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub line: u64,
    pub key: Option<String>,
    pub field: Option<String>,
    pub reason: String,
}

/// The accepted identities of a snapshot and the rows that were rejected.
#[derive(Debug, Default)]
pub struct Parsed {
    pub identities: Vec<Identity>,
    pub rejected: Vec<Rejected>,
    /// Keys of rejected rows: these identities are left exactly as they were.
    pub rejected_keys: HashSet<String>,
    /// Rejected rows whose key could not be read: they may belong to anyone, so identities
    /// missing from the file cannot be trusted to be leavers.
    pub unattributed: usize,
    pub rows: usize,
}

/// A problem with the file as a whole (it cannot be read as this source's snapshot).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("the file has no header row")]
    Empty,
    #[error("the header has no column `{column}` (mapped to `{attribute}`)")]
    MissingColumn { column: String, attribute: String },
    #[error("line {line}: the file is not valid CSV: {reason}")]
    Csv { line: u64, reason: String },
}

/// The note on a leaver whose row disappeared from the snapshot.
pub const ROW_REMOVED: &str = "row removed from snapshot";

/// Maps an HR status value to a lifecycle status. Unknown values are rejected, never guessed.
pub fn hr_status(value: &str) -> Option<Status> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "active" | "employed" | "current" => Some(Status::Active),
        "leave" | "on leave" | "loa" | "suspended" | "inactive-leave" => Some(Status::Suspended),
        "terminated" | "inactive" | "termed" | "separated" => Some(Status::Terminated),
        _ => None,
    }
}

/// Derives the lifecycle status from the HR status and the dates. A passed `end_date`
/// terminates (the end date itself is the last working day); a future `start_date` gives
/// `prehire`.
pub fn derive_status(hr: Status, start: Option<NaiveDate>, end: Option<NaiveDate>, today: NaiveDate) -> Status {
    if hr == Status::Terminated || end.is_some_and(|e| e < today) {
        return Status::Terminated;
    }
    if start.is_some_and(|s| s > today) {
        return Status::Prehire;
    }
    hr
}

struct Columns {
    key: usize,
    status: Option<usize>,
    kind: Option<usize>,
    attrs: Vec<(Slot, usize, String)>,
}

fn locate(source: &SourceConfig, schema: &Schema, header: &csv::ByteRecord) -> Result<Columns, SnapshotError> {
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            let h = if i == 0 { h.trim_start_matches('\u{feff}').to_string() } else { h.to_string() };
            h.trim().to_string()
        })
        .collect();
    let find = |col: &str, attribute: &str| {
        names
            .iter()
            .position(|n| n == col)
            .ok_or_else(|| SnapshotError::MissingColumn { column: col.to_string(), attribute: attribute.to_string() })
    };
    let key = find(&source.key, "id")?;
    let status = source.status_column.as_deref().map(|c| find(c, "status")).transpose()?;
    let mut attrs = Vec::new();
    let mut kind = None;
    for (slot, col) in &source.columns {
        let idx = find(col, schema.name(*slot))?;
        if *slot == schema::KIND {
            kind = Some(idx);
        } else {
            attrs.push((*slot, idx, schema.name(*slot).to_string()));
        }
    }
    Ok(Columns { key, status, kind, attrs })
}

/// Parses and validates a snapshot.
pub fn parse_csv(
    source: &SourceConfig,
    schema: &Schema,
    bytes: &[u8],
    today: NaiveDate,
) -> Result<Parsed, SnapshotError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(source.delimiter).has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(SnapshotError::Empty),
        Some(Err(e)) => {
            return Err(SnapshotError::Csv { line: 1, reason: e.to_string() });
        }
        Some(Ok(h)) => h,
    };
    let cols = locate(source, schema, &header)?;
    let width = header.len();
    let manager_slot = schema.slot_of("manager_id");
    let owner_slot = schema.slot_of("owner_id");
    let start_slot = schema.slot_of("start_date");
    let end_slot = schema.slot_of("end_date");
    let email_slot = schema.slot_of("email");
    let etype_slot = schema.slot_of("employment_type");

    let mut out = Parsed::default();
    let mut candidates: Vec<(u64, Identity)> = Vec::new();
    let mut key_lines: HashMap<String, Vec<u64>> = HashMap::new();
    let mut line_no: u64 = 1;
    let mut counted: usize = 0;

    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(SnapshotError::Csv { line, reason: e.to_string() });
            }
        };
        // Physical line numbers, as an editor shows them: the csv crate's own counter skips
        // newlines inside quoted fields.
        let mut offset = record.position().map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        // With CRLF the reported start can sit on the `\n` of the previous terminator.
        while bytes.get(offset).is_some_and(|c| *c == b'\n' || *c == b'\r') {
            offset += 1;
        }
        line_no += bytes.get(counted..offset).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count() as u64);
        counted = counted.max(offset);
        let line = line_no;
        // Blank lines carry no data; skip them rather than reporting a missing key.
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        out.rows += 1;
        let reject = |field: Option<&str>, key: Option<&str>, reason: String| Rejected {
            line,
            key: key.map(str::to_string),
            field: field.map(str::to_string),
            reason,
        };
        if record.len() != width {
            // Keep the key when it can be read, so the identity is held as it was rather than
            // looking removed.
            let key =
                record.get(cols.key).and_then(|k| std::str::from_utf8(k).ok()).map(str::trim).filter(|k| !k.is_empty());
            out.rejected.push(reject(
                Some(source.key.as_str()).filter(|_| key.is_none()),
                key,
                format!("has {} fields; the header has {width}", record.len()),
            ));
            continue;
        }
        let text = |i: usize| -> Result<&str, ()> {
            std::str::from_utf8(record.get(i).unwrap_or_default()).map(str::trim).map_err(|_| ())
        };
        let key = match text(cols.key) {
            Ok("") => {
                out.rejected.push(reject(Some(&source.key), None, "missing key".to_string()));
                continue;
            }
            Ok(k) => k.to_string(),
            Err(()) => {
                out.rejected.push(reject(Some(&source.key), None, "key is not valid UTF-8".to_string()));
                continue;
            }
        };
        key_lines.entry(key.clone()).or_default().push(line);
        if key.chars().any(char::is_control) {
            out.rejected.push(reject(Some(&source.key), Some(&key), "key contains control characters".to_string()));
            continue;
        }
        let mut attrs = Attrs::new(schema);
        let mut bad = None;
        for (slot, idx, name) in &cols.attrs {
            let Ok(value) = text(*idx) else {
                bad = Some(reject(Some(name), Some(&key), "value is not valid UTF-8".to_string()));
                break;
            };
            if value.chars().any(|c| c.is_control() && c != '\n') {
                bad = Some(reject(Some(name), Some(&key), "value contains control characters".to_string()));
                break;
            }
            let value = if schema.ty(*slot) == AttrType::Date && !value.is_empty() {
                match parse_date(value) {
                    Some(d) => d.to_string(),
                    None => {
                        bad = Some(reject(Some(name), Some(&key), format!("bad date `{value}`; expected YYYY-MM-DD")));
                        break;
                    }
                }
            } else {
                value.to_string()
            };
            if *slot == email_slot && !value.is_empty() && !value.contains('@') {
                bad = Some(reject(Some(name), Some(&key), format!("`{value}` is not an email address")));
                break;
            }
            attrs.set(*slot, Some(&value));
        }
        if let Some(b) = bad {
            out.rejected.push(b);
            continue;
        }
        let hr_value = match cols.status.map(text) {
            None => "",
            Some(Ok(v)) => v,
            Some(Err(())) => "\u{fffd}",
        };
        if cols.status.is_some() && hr_value.is_empty() {
            let field = source.status_column.as_deref();
            out.rejected.push(reject(field, Some(&key), "missing status; expected active, leave or terminated".into()));
            continue;
        }
        let Some(hr) = hr_status(hr_value) else {
            let field = source.status_column.as_deref();
            out.rejected.push(reject(
                field,
                Some(&key),
                format!("unknown status `{hr_value}`; expected active, leave or terminated"),
            ));
            continue;
        };
        let kind = match cols.kind.map(text) {
            None | Some(Ok("")) => {
                if attrs.get(etype_slot).is_some_and(|t| t.eq_ignore_ascii_case("contractor")) {
                    Kind::Contractor
                } else {
                    Kind::Employee
                }
            }
            Some(Ok(k)) => match k.to_ascii_lowercase().parse() {
                Ok(kind) => kind,
                Err(e) => {
                    out.rejected.push(reject(Some("kind"), Some(&key), e));
                    continue;
                }
            },
            Some(Err(())) => {
                out.rejected.push(reject(Some("kind"), Some(&key), "value is not valid UTF-8".to_string()));
                continue;
            }
        };
        let date = |slot| attrs.get(slot).and_then(parse_date);
        let status = derive_status(hr, date(start_slot), date(end_slot), today);
        candidates.push((line, Identity::new(&key, kind, status, attrs)));
    }

    // Duplicate keys: every occurrence is rejected, because nothing says which one is right.
    let dupes: HashSet<&String> = key_lines.iter().filter(|(_, l)| l.len() > 1).map(|(k, _)| k).collect();
    let all_keys: HashSet<&str> = key_lines.keys().map(String::as_str).collect();
    let mut accepted: Vec<(u64, Identity)> = Vec::with_capacity(candidates.len());
    for (line, ident) in candidates {
        let key = ident.id.to_string();
        if dupes.contains(&key) {
            let others: Vec<String> =
                key_lines.get(&key).into_iter().flatten().filter(|l| **l != line).map(ToString::to_string).collect();
            out.rejected.push(Rejected {
                line,
                key: Some(key),
                field: Some(source.key.clone()),
                reason: format!("duplicate key (also on line {})", others.join(", ")),
            });
            continue;
        }
        let reference = |slot: Slot, what: &str| -> Option<String> {
            let v = ident.attrs.get(slot)?;
            (!all_keys.contains(v)).then(|| format!("unknown {what} `{v}`: no row has that key"))
        };
        if let Some(reason) = reference(manager_slot, "manager") {
            out.rejected.push(Rejected { line, key: Some(key), field: Some("manager_id".into()), reason });
            continue;
        }
        if let Some(reason) = reference(owner_slot, "owner") {
            out.rejected.push(Rejected { line, key: Some(key), field: Some("owner_id".into()), reason });
            continue;
        }
        accepted.push((line, ident));
    }

    // Duplicate usernames: two identities must never share an account name.
    let username_slot = schema.slot_of("username");
    let mut by_username: HashMap<String, Vec<String>> = HashMap::new();
    for (_, i) in &accepted {
        if let Some(u) = i.attrs.get(username_slot) {
            by_username.entry(u.to_lowercase()).or_default().push(i.id.to_string());
        }
    }
    let (kept, clashing): (Vec<_>, Vec<_>) = accepted.into_iter().partition(|(_, i)| {
        i.attrs.get(username_slot).is_none_or(|u| by_username.get(&u.to_lowercase()).is_none_or(|v| v.len() < 2))
    });
    let mut accepted = kept;
    for (line, i) in clashing {
        let u = i.attrs.get(username_slot).unwrap_or_default().to_string();
        let others: Vec<String> = by_username
            .get(&u.to_lowercase())
            .into_iter()
            .flatten()
            .filter(|k| **k != *i.id)
            .map(|k| format!("`{k}`"))
            .collect();
        out.rejected.push(Rejected {
            line,
            key: Some(i.id.to_string()),
            field: Some("username".into()),
            reason: format!("duplicate username `{u}` (also {})", others.join(", ")),
        });
    }
    accepted.sort_by_key(|(line, _)| *line);

    // Manager cycles: every row on a cycle is rejected.
    let manager_of: HashMap<&str, &str> =
        accepted.iter().filter_map(|(_, i)| i.attrs.get(manager_slot).map(|m| (&*i.id, m))).collect();
    let mut on_cycle: HashSet<String> = HashSet::new();
    let mut done: HashSet<&str> = HashSet::new();
    for start in manager_of.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut pos: HashMap<&str, usize> = HashMap::new();
        let mut cur = *start;
        loop {
            if done.contains(cur) {
                break;
            }
            if let Some(&at) = pos.get(cur) {
                on_cycle.extend(path.iter().skip(at).map(|s| (*s).to_string()));
                break;
            }
            pos.insert(cur, path.len());
            path.push(cur);
            match manager_of.get(cur) {
                Some(next) => cur = next,
                None => break,
            }
        }
        done.extend(path);
    }
    for (line, ident) in accepted {
        if on_cycle.contains(&*ident.id) {
            let m = ident.attrs.get(manager_slot).unwrap_or_default().to_string();
            out.rejected.push(Rejected {
                line,
                key: Some(ident.id.to_string()),
                field: Some("manager_id".into()),
                reason: format!("manager cycle through `{m}`"),
            });
        } else {
            out.identities.push(ident);
        }
    }
    out.rejected.sort_by_key(|r| r.line);
    out.rejected_keys = out.rejected.iter().filter_map(|r| r.key.clone()).collect();
    out.unattributed = out.rejected.iter().filter(|r| r.key.is_none()).count();
    Ok(out)
}

/// Diffs accepted identities against the previous state of the same source.
///
/// `previous` holds every identity Tenure knows from this source, terminated ones included.
/// `significant` names the attributes whose change makes a mover security-significant.
pub fn diff(
    schema: &Schema,
    previous: &HashMap<Box<str>, Identity>,
    parsed: &Parsed,
    significant: &[Slot],
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut seen: HashSet<&str> = HashSet::with_capacity(parsed.identities.len());
    for ident in &parsed.identities {
        seen.insert(&ident.id);
        match previous.get(&ident.id) {
            None => {
                // Someone we never knew who is already terminated: nothing to grant or revoke.
                if ident.status != Status::Terminated {
                    events.push(event(EventKind::Joiner, ident.clone(), None, Vec::new(), false, None));
                }
            }
            Some(prev) => {
                if let Some(e) = transition(schema, prev, ident, significant) {
                    events.push(e);
                }
            }
        }
    }
    for (id, prev) in previous {
        if seen.contains(&**id) || parsed.rejected_keys.contains(&**id) || prev.status == Status::Terminated {
            continue;
        }
        let mut gone = prev.clone();
        gone.set_status(Status::Terminated);
        let changes = vec![status_change(prev.status, Status::Terminated)];
        events.push(event(EventKind::Leaver, gone, Some(prev.clone()), changes, false, Some(ROW_REMOVED)));
    }
    events.sort_by(|a, b| a.identity.id.cmp(&b.identity.id));
    events
}

fn status_change(from: Status, to: Status) -> Change {
    Change { attribute: "status".into(), from: Some(from.to_string()), to: Some(to.to_string()) }
}

fn event(
    kind: EventKind,
    identity: Identity,
    previous: Option<Identity>,
    changes: Vec<Change>,
    significant: bool,
    note: Option<&str>,
) -> Event {
    Event { kind, identity, previous, changes, significant, note: note.map(str::to_string) }
}

fn transition(schema: &Schema, prev: &Identity, next: &Identity, significant: &[Slot]) -> Option<Event> {
    let slots = prev.attrs.changed_slots(&next.attrs);
    let mut changes: Vec<Change> = slots
        .iter()
        .map(|&s| Change {
            attribute: schema.name(s).to_string(),
            from: prev.attrs.get(s).map(str::to_string),
            to: next.attrs.get(s).map(str::to_string),
        })
        .collect();
    let status_changed = prev.status != next.status;
    if status_changed {
        changes.insert(0, status_change(prev.status, next.status));
    }
    if changes.is_empty() {
        return None;
    }
    let sig = slots.iter().any(|s| significant.contains(s));
    let (kind, note) = match (prev.status, next.status) {
        (Status::Terminated, Status::Terminated) => (EventKind::Update, None),
        (Status::Terminated, _) => (EventKind::Rehire, None),
        (_, Status::Terminated) => (EventKind::Leaver, Some("status terminated or end_date passed")),
        (Status::Active, Status::Suspended) | (Status::Prehire, Status::Suspended) => (EventKind::Suspend, None),
        (Status::Suspended, Status::Active) => (EventKind::Resume, None),
        _ if !slots.is_empty() => (EventKind::Mover, None),
        _ => (EventKind::Update, None),
    };
    Some(event(kind, next.clone(), Some(prev.clone()), changes, kind == EventKind::Mover && sig, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;

    fn source(schema: &Schema) -> SourceConfig {
        SourceConfig {
            name: "hr".into(),
            kind: SourceKind::Csv,
            key: "id".into(),
            columns: vec![(schema.slot_of("family_name"), "name".into())],
            status_column: None,
            delimiter: b',',
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let schema = Schema::default();
            let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
            let mut text = b"id,name\n".to_vec();
            text.extend(bytes);
            let _ = parse_csv(&source(&schema), &schema, &text, today);
        }
    }

    #[test]
    fn rejected_rows_carry_physical_line_numbers() {
        let schema = Schema::default();
        let text = "id,name\r\n1,\"two\nlines\"\r\n,missing\r\n3,ok\r\n";
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let parsed = parse_csv(&source(&schema), &schema, text.as_bytes(), today).map_err(|e| e.to_string());
        let parsed = parsed.unwrap_or_default();
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4]);
        assert_eq!(parsed.identities.len(), 2);
    }
}

//! HR snapshots: parse a CSV extract, validate each row, derive lifecycle status, and diff the
//! result against the last accepted state to produce lifecycle events.
//!
//! A rejected row never counts as a removal: an identity whose row is rejected keeps its
//! previous state, so a malformed line can never terminate anyone.

use crate::config::SourceConfig;
use crate::date::{check_date, parse_date};
use crate::model::{Attrs, Change, Event, EventKind, Identity, Kind, Status};
use crate::schema::{self, AttrType, Schema, Slot};
use crate::text;
use chrono::NaiveDate;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{HashMap, HashSet};

/// A row that was not accepted, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub line: u64,
    /// The row's key, when it could be read. A key that carries hidden characters or is too
    /// long is not trusted and is left out (the reason shows it escaped).
    pub key: Option<String>,
    pub field: Option<String>,
    pub reason: String,
    /// Whether the row can be attributed to `key` with certainty. A row whose key is missing or
    /// corrupted, or whose fields do not line up with the header (so the key column may hold
    /// another column's value), may stand for anyone: removals next to it are held.
    pub attributed: bool,
    /// The row's username and email as written (lowercased), when readable: a rejected row may
    /// be a removed identity's row with a mistyped key.
    #[serde(skip)]
    pub names: Vec<String>,
}

/// The accepted identities of a snapshot and the rows that were rejected.
#[derive(Debug, Default)]
pub struct Parsed {
    pub identities: Vec<Identity>,
    /// The physical line of each accepted identity (same index as `identities`).
    pub lines: Vec<u64>,
    pub rejected: Vec<Rejected>,
    /// Keys of rejected rows: these identities are left exactly as they were.
    pub rejected_keys: HashSet<String>,
    /// Rejected rows that cannot be attributed to a key with certainty: they may belong to
    /// anyone, so identities missing from the file cannot be trusted to be leavers.
    pub unattributed: usize,
    /// Why the file looks cut off (its last record is incomplete), if it does. Identities
    /// missing from a truncated file cannot be trusted to be leavers, however few they are.
    pub truncated: Option<String>,
    pub rows: usize,
}

impl Parsed {
    /// Rejects accepted rows after parsing (for reasons only the caller knows, such as a key that
    /// belongs to another source). `refuse` names the field and reason for each row to reject.
    pub fn reject_accepted(&mut self, schema: &Schema, mut refuse: impl FnMut(&Identity) -> Option<(String, String)>) {
        let identities = std::mem::take(&mut self.identities);
        let lines = std::mem::take(&mut self.lines);
        for (identity, line) in identities.into_iter().zip(lines) {
            match refuse(&identity) {
                None => {
                    self.identities.push(identity);
                    self.lines.push(line);
                }
                Some((field, reason)) => {
                    self.rejected_keys.insert(identity.id.to_string());
                    let names = identity_names(schema, &identity);
                    self.rejected.push(Rejected {
                        line,
                        key: Some(identity.id.to_string()),
                        field: Some(field),
                        reason,
                        attributed: true,
                        names,
                    });
                }
            }
        }
        self.rejected.sort_by_key(|r| r.line);
    }

    /// The rejected rows that could stand for `identity`: their key, username or email is the
    /// identity's.
    pub fn could_be<'a>(&'a self, schema: &Schema, identity: &Identity) -> Option<&'a Rejected> {
        let mut names: Vec<String> = Vec::new();
        for attr in ["username", "email"] {
            if let Some(v) = identity.attr(schema, attr) {
                names.push(text::fold(v.trim()));
            }
        }
        self.rejected
            .iter()
            .find(|r| r.key.as_deref() == Some(&*identity.id) || r.names.iter().any(|n| names.iter().any(|m| m == n)))
    }
}

/// A problem with the file as a whole (it cannot be read as this source's snapshot).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("the file has no header row")]
    Empty,
    #[error("the header has no column `{column}` (mapped to `{attribute}`)")]
    MissingColumn { column: String, attribute: String },
    #[error(
        "the header names column `{column}` (mapped to `{attribute}`) {count} times; \
         Tenure cannot tell which one is right"
    )]
    DuplicateColumn { column: String, attribute: String, count: usize },
    #[error("line {line}: the file is not valid CSV: {reason}")]
    Csv { line: u64, reason: String },
}

/// The note on a leaver whose row disappeared from the snapshot.
pub const ROW_REMOVED: &str = "row removed from snapshot";

/// The note on an identity that was already terminated the first time a snapshot named it.
pub const FIRST_SEEN_TERMINATED: &str = "already terminated when first seen: recorded, nothing granted";

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
    /// Header names, for messages about unmapped columns.
    names: Vec<String>,
    username: Option<usize>,
    email: Option<usize>,
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
        let mut at = names.iter().enumerate().filter(|(_, n)| *n == col).map(|(i, _)| i);
        let first = at.next().ok_or_else(|| SnapshotError::MissingColumn {
            column: text::quote(col),
            attribute: attribute.to_string(),
        })?;
        // A mapped column named twice (a duplicated status column, say) has no right answer:
        // taking the first silently once made 26 leavers.
        let count = 1 + at.count();
        if count > 1 {
            return Err(SnapshotError::DuplicateColumn {
                column: text::quote(col),
                attribute: attribute.to_string(),
                count,
            });
        }
        Ok(first)
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
    let column_of = |name: &str| attrs.iter().find(|(s, _, _)| Some(*s) == schema.slot(name)).map(|(_, i, _)| *i);
    let (username, email) = (column_of("username"), column_of("email"));
    Ok(Columns { key, status, kind, attrs, names, username, email })
}

/// Why a file's last record looks incomplete: it ends inside a quoted field, or without the
/// line break that ends every complete record. Scans the bytes the way RFC 4180 reads them.
pub fn truncation(bytes: &[u8], delimiter: u8) -> Option<&'static str> {
    #[derive(PartialEq)]
    enum S {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = S::FieldStart;
    for &c in bytes {
        let boundary = c == delimiter || c == b'\n' || c == b'\r';
        state = match state {
            S::FieldStart | S::Unquoted if boundary => S::FieldStart,
            S::FieldStart if c == b'"' => S::Quoted,
            S::FieldStart | S::Unquoted => S::Unquoted,
            S::Quoted if c == b'"' => S::QuoteInQuoted,
            S::Quoted => S::Quoted,
            // `""` inside quotes is an escaped quote.
            S::QuoteInQuoted if c == b'"' => S::Quoted,
            S::QuoteInQuoted if boundary => S::FieldStart,
            S::QuoteInQuoted => S::Unquoted,
        };
    }
    if state == S::Quoted {
        return Some("the file ends inside a quoted field");
    }
    match bytes.last() {
        Some(b'\n' | b'\r') | None => None,
        Some(_) => Some("the file does not end with a line break, so its last record may be cut off"),
    }
}

/// The lines a key occurs on.
enum Lines {
    One(u64),
    Many(Vec<u64>),
}

impl Lines {
    fn push(&mut self, line: u64) {
        match self {
            Lines::One(first) => *self = Lines::Many(vec![*first, line]),
            Lines::Many(all) => all.push(line),
        }
    }
}

/// An identity's username and email as a rejected row remembers them.
fn identity_names(schema: &Schema, i: &Identity) -> Vec<String> {
    ["username", "email"].iter().filter_map(|a| i.attr(schema, a)).map(|v| text::fold(v.trim())).collect()
}

/// A key as read from a row: trusted, or the reason it cannot be.
enum Key {
    Trusted(String),
    Untrusted(String),
}

fn read_key(raw: Option<&[u8]>) -> Key {
    let Some(raw) = raw else { return Key::Untrusted("missing key".into()) };
    if raw.len() > text::FIELD_LIMIT {
        return Key::Untrusted(format!("key is {} bytes; the limit is {}", raw.len(), text::FIELD_LIMIT));
    }
    // Only ASCII padding is trimmed: `str::trim` would also strip Unicode spaces such as NEL
    // (U+0085), a C1 control, and make a corrupted key look clean.
    match std::str::from_utf8(raw).map(|k| k.trim_matches(|c: char| c.is_ascii_whitespace())) {
        Err(_) => Key::Untrusted("key is not valid UTF-8".into()),
        Ok("") => Key::Untrusted("missing key".into()),
        // A corrupted key (NUL, ESC, any C0/C1 control, a bidi override, an invisible or
        // look-alike character) is not the key of any identity: taking it at face value would
        // make the real one look removed.
        Ok(k) if text::has_hidden(k, false) => {
            Key::Untrusted(format!("key `{}` contains control characters", text::quote(k)))
        }
        Ok(k) if !text::is_plain_key(k) => Key::Untrusted(format!(
            "key `{}` has characters other than printable ASCII (a space, an invisible or look-alike character)",
            text::quote(k)
        )),
        Ok(k) => Key::Trusted(k.to_string()),
    }
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
    let etype_slot = schema.slot_of("employment_type");

    let mut out = Parsed { truncated: truncation(bytes, source.delimiter).map(str::to_string), ..Parsed::default() };
    let mut candidates: Vec<(u64, Identity)> = Vec::new();
    // Every key's lines; almost every key has one.
    let mut key_lines: FxHashMap<Box<str>, Lines> = FxHashMap::default();
    // The first line of each readable key on a row out of line with the header: another row
    // with that key is a duplicate too, so the identity is held as it was.
    let mut misaligned: FxHashMap<Box<str>, u64> = FxHashMap::default();
    let mut line_no: u64 = 1;
    let mut counted: usize = 0;
    let mut last_line: Option<u64> = None;

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
        last_line = Some(line);
        // What the row says its username and email are, even if the row is rejected: a row with
        // a mistyped key may still be a removed identity's row.
        // (Read only when the row is rejected.)
        let names = || -> Vec<String> {
            [cols.username, cols.email]
                .into_iter()
                .flatten()
                .filter_map(|i| record.get(i))
                .filter(|v| v.len() <= text::FIELD_LIMIT)
                .filter_map(|v| std::str::from_utf8(v).ok())
                .map(|v| text::fold(v.trim()))
                .filter(|v| !v.is_empty())
                .collect()
        };
        let (key, untrusted) = match read_key(record.get(cols.key)) {
            Key::Trusted(k) => (Some(k), None),
            Key::Untrusted(why) => (None, Some(why)),
        };
        let reject = |field: Option<&str>, reason: String, attributed: bool| Rejected {
            line,
            key: key.clone(),
            field: field.map(str::to_string),
            reason,
            attributed: attributed && key.is_some(),
            names: names(),
        };
        if record.len() != width {
            // The key is kept when it can be read, so that identity is held as it was; but with
            // the fields out of line the key column may hold another column's value, so the row
            // is not attributed with certainty.
            if let Some(k) = &key {
                misaligned.entry(k.as_str().into()).or_insert(line);
            }
            out.rejected.push(reject(
                Some(source.key.as_str()).filter(|_| key.is_none()),
                format!("has {} fields; the header has {width}", record.len()),
                false,
            ));
            continue;
        }
        if let Some(why) = untrusted {
            out.rejected.push(reject(Some(&source.key), why, false));
            continue;
        }
        let Some(key) = key.clone() else { continue };
        match key_lines.entry(key.as_str().into()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Lines::One(line));
            }
            std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().push(line),
        }
        if let Some((i, v)) = record.iter().enumerate().find(|(_, v)| v.len() > text::FIELD_LIMIT) {
            let name = cols.names.get(i).map_or_else(|| format!("column {}", i + 1), |n| text::quote(n));
            out.rejected.push(reject(
                Some(&name),
                format!("field `{name}` is {} bytes; the limit is {}", v.len(), text::FIELD_LIMIT),
                true,
            ));
            continue;
        }
        let cell = |i: usize| -> Result<&str, ()> {
            std::str::from_utf8(record.get(i).unwrap_or_default())
                .map(|v| v.trim_matches(|c: char| c.is_ascii_whitespace()))
                .map_err(|_| ())
        };
        let mut attrs = Attrs::new(schema);
        let mut bad = None;
        for (slot, idx, name) in &cols.attrs {
            let Ok(value) = cell(*idx) else {
                bad = Some(reject(Some(name), "value is not valid UTF-8".to_string(), true));
                break;
            };
            let value = match check_value(schema, *slot, value) {
                Ok(v) => v,
                Err(why) => {
                    bad = Some(reject(Some(name), why, true));
                    break;
                }
            };
            attrs.set(*slot, Some(&value));
        }
        if let Some(b) = bad {
            out.rejected.push(b);
            continue;
        }
        let hr_value = match cols.status.map(cell) {
            None => "",
            Some(Ok(v)) => v,
            Some(Err(())) => "\u{fffd}",
        };
        let status_field = source.status_column.as_deref();
        if cols.status.is_some() && hr_value.is_empty() {
            out.rejected.push(reject(
                status_field,
                "missing status; expected active, leave or terminated".into(),
                true,
            ));
            continue;
        }
        let Some(hr) = hr_status(hr_value) else {
            out.rejected.push(reject(
                status_field,
                format!("unknown status `{}`; expected active, leave or terminated", text::quote(hr_value)),
                true,
            ));
            continue;
        };
        let kind = match cols.kind.map(cell) {
            None | Some(Ok("")) => {
                if attrs.get(etype_slot).is_some_and(|t| t.eq_ignore_ascii_case("contractor")) {
                    Kind::Contractor
                } else {
                    Kind::Employee
                }
            }
            Some(Ok(k)) => match k.to_ascii_lowercase().parse::<Kind>() {
                Ok(kind) => kind,
                Err(_) => {
                    out.rejected.push(reject(
                        Some("kind"),
                        format!("unknown kind `{}`; expected employee, contractor, service or bot", text::quote(k)),
                        true,
                    ));
                    continue;
                }
            },
            Some(Err(())) => {
                out.rejected.push(reject(Some("kind"), "value is not valid UTF-8".to_string(), true));
                continue;
            }
        };
        let date = |slot| attrs.get(slot).and_then(parse_date);
        let status = derive_status(hr, date(start_slot), date(end_slot), today);
        candidates.push((line, Identity::new(&key, kind, status, attrs)));
    }

    // The last record of a cut-off file may be cut off itself, with every field it kept looking
    // valid (`Engineering` cut to `Eng`): it is never applied, and never attributed.
    if let Some(why) = &out.truncated {
        let last = candidates.last().map(|(line, _)| *line).filter(|l| Some(*l) == last_line);
        if let Some(line) = last
            && let Some((_, ident)) = candidates.pop()
        {
            out.rejected.push(Rejected {
                line,
                key: Some(ident.id.to_string()),
                field: None,
                reason: format!("{why}: this record may be incomplete"),
                attributed: false,
                names: identity_names(schema, &ident),
            });
        }
    }

    // Duplicate keys: every occurrence is rejected, because nothing says which one is right.
    let mut accepted: Vec<(u64, Identity)> = Vec::with_capacity(candidates.len());
    for (line, ident) in candidates {
        let rejected = |field: &str, reason: String| Rejected {
            line,
            key: Some(ident.id.to_string()),
            field: Some(field.to_string()),
            reason,
            attributed: true,
            names: identity_names(schema, &ident),
        };
        if let Some(other) = misaligned.get(&*ident.id) {
            let reason = format!("duplicate key (also on line {other}, which has the wrong number of fields)");
            out.rejected.push(rejected(&source.key, reason));
            continue;
        }
        if let Some(Lines::Many(all)) = key_lines.get(&*ident.id) {
            let others: Vec<String> = all.iter().filter(|l| **l != line).map(ToString::to_string).collect();
            out.rejected.push(rejected(&source.key, format!("duplicate key (also on line {})", others.join(", "))));
            continue;
        }
        let reference = |slot: Slot, what: &str| -> Option<String> {
            let v = ident.attrs.get(slot)?;
            (!key_lines.contains_key(v)).then(|| format!("unknown {what} `{}`: no row has that key", text::quote(v)))
        };
        if let Some(reason) = reference(manager_slot, "manager") {
            out.rejected.push(rejected("manager_id", reason));
            continue;
        }
        if let Some(reason) = reference(owner_slot, "owner") {
            out.rejected.push(rejected("owner_id", reason));
            continue;
        }
        accepted.push((line, ident));
    }

    // Duplicate usernames: two identities must never share an account name.
    let username_slot = schema.slot_of("username");
    let mut by_username: FxHashMap<String, Vec<Box<str>>> = FxHashMap::default();
    for (_, i) in &accepted {
        if let Some(u) = i.attrs.get(username_slot) {
            by_username.entry(text::fold(u)).or_default().push(i.id.clone());
        }
    }
    by_username.retain(|_, ids| ids.len() > 1);
    let (kept, clashing): (Vec<_>, Vec<_>) = accepted
        .into_iter()
        .partition(|(_, i)| i.attrs.get(username_slot).is_none_or(|u| !by_username.contains_key(&text::fold(u))));
    let mut accepted = kept;
    for (line, i) in clashing {
        let u = i.attrs.get(username_slot).unwrap_or_default().to_string();
        let others: Vec<String> = by_username
            .get(&text::fold(&u))
            .into_iter()
            .flatten()
            .filter(|k| ***k != *i.id)
            .map(|k| format!("`{k}`"))
            .collect();
        out.rejected.push(Rejected {
            line,
            key: Some(i.id.to_string()),
            field: Some("username".into()),
            reason: format!("duplicate username `{}` (also {})", text::quote(&u), others.join(", ")),
            attributed: true,
            names: identity_names(schema, &i),
        });
    }
    accepted.sort_by_key(|(line, _)| *line);

    // Manager cycles: every row on a cycle is rejected. Each walk follows managers until it
    // meets a row already known to be off any cycle, the top of the tree, or itself.
    let manager_of: FxHashMap<&str, &str> =
        accepted.iter().filter_map(|(_, i)| i.attrs.get(manager_slot).map(|m| (&*i.id, m))).collect();
    let mut on_cycle: FxHashSet<String> = FxHashSet::default();
    let mut done: FxHashSet<&str> = FxHashSet::default();
    let mut path: Vec<&str> = Vec::new();
    for start in manager_of.keys() {
        path.clear();
        let mut cur = *start;
        loop {
            if done.contains(cur) {
                break;
            }
            if let Some(at) = path.iter().position(|p| *p == cur) {
                on_cycle.extend(path.iter().skip(at).map(|s| (*s).to_string()));
                break;
            }
            path.push(cur);
            match manager_of.get(cur) {
                Some(next) => cur = next,
                None => break,
            }
        }
        done.extend(path.iter().copied());
    }
    for (line, ident) in accepted {
        if on_cycle.contains(&*ident.id) {
            let m = ident.attrs.get(manager_slot).unwrap_or_default().to_string();
            out.rejected.push(Rejected {
                line,
                key: Some(ident.id.to_string()),
                field: Some("manager_id".into()),
                reason: format!("manager cycle through `{}`", text::quote(&m)),
                attributed: true,
                names: identity_names(schema, &ident),
            });
        } else {
            out.identities.push(ident);
            out.lines.push(line);
        }
    }
    out.rejected.sort_by_key(|r| r.line);
    out.rejected_keys = out.rejected.iter().filter_map(|r| r.key.clone()).collect();
    out.unattributed = out.rejected.iter().filter(|r| !r.attributed).count();
    Ok(out)
}

/// Checks one attribute value as every source must (a CSV cell, a webhook or SCIM field): no
/// hidden or control characters, a date in a valid form (returned normalised to
/// `YYYY-MM-DD`), an email with an `@`. The value is already trimmed; an empty one clears.
pub fn check_value(schema: &Schema, slot: Slot, value: &str) -> Result<String, String> {
    if text::has_hidden(value, true) {
        return Err(format!("value `{}` contains control characters", text::quote(value)));
    }
    if value.is_empty() {
        return Ok(String::new());
    }
    let value = if schema.ty(slot) == AttrType::Date {
        check_date(value).map_err(|why| format!("bad date `{}`: {why}", text::quote(value)))?.to_string()
    } else {
        value.to_string()
    };
    if slot == schema.slot_of("email") && !value.contains('@') {
        return Err(format!("`{}` is not an email address", text::quote(&value)));
    }
    Ok(value)
}

/// Diffs accepted identities against the previous state of the same source.
///
/// `previous` holds every identity Tenure knows from this source, terminated ones included.
/// `significant` names the attributes whose change makes a mover security-significant.
pub fn diff<S: std::hash::BuildHasher>(
    schema: &Schema,
    previous: &HashMap<Box<str>, Identity, S>,
    parsed: &Parsed,
    significant: &[Slot],
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    seen.reserve(parsed.identities.len());
    for ident in &parsed.identities {
        seen.insert(&ident.id);
        match previous.get(&ident.id) {
            // Someone we never knew who is already terminated (a contractor whose end date
            // passed before the first import): nothing to grant or revoke, but the identity is
            // recorded, so reconciliation names its still-active accounts as a leaver's rather
            // than as anonymous orphans.
            None if ident.status == Status::Terminated => {
                events.push(event(
                    EventKind::Update,
                    ident.clone(),
                    None,
                    Vec::new(),
                    false,
                    Some(FIRST_SEEN_TERMINATED),
                ));
            }
            None => events.push(event(EventKind::Joiner, ident.clone(), None, Vec::new(), false, None)),
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
            secret: crate::config::SecretRef::None,
            timezone: chrono_tz::UTC,
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

    fn parse(text: &str) -> Parsed {
        let schema = Schema::default();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        parse_csv(&source(&schema), &schema, text.as_bytes(), today).unwrap_or_default()
    }

    #[test]
    fn issue6_a_key_with_a_control_character_is_unattributed() {
        for bad in ["E2\u{0}", "E2\u{1b}[0m", "E\u{85}2", "E2\u{202e}"] {
            let p = parse(&format!("id,name\n1,a\n{bad},b\n"));
            let r = p.rejected.first().map(|r| (r.key.clone(), r.attributed, r.reason.clone()));
            let (key, attributed, reason) = r.unwrap_or_default();
            assert_eq!((key, attributed), (None, false), "{bad:?}");
            assert!(reason.contains("control characters") && !reason.chars().any(char::is_control), "{reason:?}");
            assert_eq!(p.unattributed, 1);
        }
    }

    #[test]
    fn issue6_rows_out_of_line_with_the_header_are_unattributed_but_keep_their_identity() {
        let p = parse("id,name\n1,a\n2,b,extra\n");
        assert_eq!(p.unattributed, 1);
        assert!(p.rejected_keys.contains("2"));
    }

    /// Found by the `snapshot_csv` fuzz target (`fuzz/corpus/snapshot_csv/misaligned-duplicate-key.csv`):
    /// a key on a good row and on a row out of line with the header was both accepted and
    /// rejected, so the good row was applied although the file says two things about the key.
    #[test]
    fn issue15_a_key_also_on_a_misaligned_row_is_a_duplicate() {
        for text in ["id,name\n1,a\n1,b,extra\n2,c\n", "id,name\n1,b,extra\n1,a\n2,c\n"] {
            let p = parse(text);
            let ids: Vec<&str> = p.identities.iter().map(|i| &*i.id).collect();
            assert_eq!(ids, ["2"], "{text:?}");
            assert!(p.rejected_keys.contains("1"), "{text:?}");
            assert!(
                p.rejected.iter().any(|r| r.key.as_deref() == Some("1") && r.reason.starts_with("duplicate key")),
                "{:?}",
                p.rejected
            );
        }
    }

    #[test]
    fn issue6_an_incomplete_last_record_marks_the_file_truncated() {
        let check = |text: &str, want: Option<&str>| {
            assert_eq!(truncation(text.as_bytes(), b','), want, "{text:?}");
        };
        check("id,name\n1,a\n", None);
        check("id,name\r\n1,a\r\n", None);
        check("id,name\n1,\"a \"\"quoted\"\" name\"\n", None);
        check("id,name\n1,\"two\nlines\"\n", None);
        check("id,name\n1,a\n2,b", Some("the file does not end with a line break, so its last record may be cut off"));
        check("id,name\n1,\"open\n", Some("the file ends inside a quoted field"));
        check("id,name\n1,\"a\"\"\n", Some("the file ends inside a quoted field"));
        let p = parse("id,name\n1,a\n2,b");
        assert!(p.truncated.is_some());
        // The cut-off last record is rejected, unattributed, and its identity kept as it was.
        assert_eq!(p.identities.len(), 1);
        assert_eq!(p.rejected.first().map(|r| (r.line, r.attributed)), Some((3, false)));
        assert!(p.rejected_keys.contains("2"));
    }

    #[test]
    fn issue6_a_mapped_column_named_twice_is_a_file_error() {
        let schema = Schema::default();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let err = parse_csv(&source(&schema), &schema, b"id,name,name\n1,a,b\n", today).err();
        assert!(matches!(err, Some(SnapshotError::DuplicateColumn { count: 2, .. })), "{err:?}");
        // An unmapped column named twice is not Tenure's concern.
        assert!(parse_csv(&source(&schema), &schema, b"id,name,x,x\n1,a,b,c\n", today).is_ok());
    }

    #[test]
    fn issue6_oversized_fields_are_rejected_with_a_short_message() {
        let huge = "x".repeat(5 * 1024 * 1024);
        let p = parse(&format!("id,name\n1,{huge}\n2,ok\n"));
        let r = p.rejected.first().map(|r| r.reason.clone()).unwrap_or_default();
        assert_eq!(r, format!("field `name` is {} bytes; the limit is 4096", huge.len()));
        assert_eq!(p.identities.len(), 1);
        let p = parse(&format!("id,name\n{huge},a\n"));
        assert_eq!(p.unattributed, 1, "an oversized key is not trusted");
        assert!(p.rejected.iter().all(|r| r.reason.len() < 200));
    }

    #[test]
    fn issue6_a_rejected_row_names_the_identity_it_could_be() {
        let schema = Schema::default();
        let mut src = source(&schema);
        src.columns.push((schema.slot_of("username"), "login".into()));
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let p = parse_csv(&src, &schema, b"id,name,login\nE1,a,ada\nE1,b,bo\n", today).unwrap_or_default();
        let mut bo = Attrs::new(&schema);
        bo.set(schema.slot_of("username"), Some("Bo"));
        let bo = Identity::new("E2", Kind::Employee, Status::Active, bo);
        assert_eq!(p.could_be(&schema, &bo).map(|r| r.line), Some(3));
        let other = Identity::new("E3", Kind::Employee, Status::Active, Attrs::new(&schema));
        assert!(p.could_be(&schema, &other).is_none());
    }

    /// A source with the columns the diff cases use: id, department, title, status, end.
    fn hr(schema: &Schema) -> SourceConfig {
        SourceConfig {
            name: "hr".into(),
            kind: SourceKind::Csv,
            key: "id".into(),
            columns: vec![
                (schema.slot_of("department"), "dept".into()),
                (schema.slot_of("title"), "title".into()),
                (schema.slot_of("end_date"), "end".into()),
                (schema.slot_of("start_date"), "start".into()),
            ],
            status_column: Some("status".into()),
            delimiter: b',',
            secret: crate::config::SecretRef::None,
            timezone: chrono_tz::UTC,
        }
    }

    /// Diffs the snapshot `after` against the state `before` left and compares the events,
    /// rendered `kind id [significant] (changes)`, with `expect`. Rows are `id,dept,title,status,end,start`.
    fn check(before: &[&str], after: &[&str], expect: &[&str]) {
        let schema = Schema::default();
        let src = hr(&schema);
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
        let csv = |rows: &[&str]| format!("id,dept,title,status,end,start\n{}\n", rows.join("\n"));
        let prev = parse_csv(&src, &schema, csv(before).as_bytes(), today).unwrap_or_default();
        let previous: HashMap<Box<str>, Identity> = prev.identities.into_iter().map(|i| (i.id.clone(), i)).collect();
        let next = parse_csv(&src, &schema, csv(after).as_bytes(), today).unwrap_or_default();
        let significant = [schema.slot_of("department")];
        let got: Vec<String> = diff(&schema, &previous, &next, &significant)
            .iter()
            .map(|e| {
                let changes: Vec<String> =
                    e.changes.iter().map(|c| format!("{}={}", c.attribute, c.to.as_deref().unwrap_or(""))).collect();
                format!(
                    "{} {}{}{}",
                    e.kind,
                    e.identity.id,
                    if e.significant { " significant" } else { "" },
                    if changes.is_empty() { String::new() } else { format!(" ({})", changes.join(" ")) }
                )
            })
            .collect();
        assert_eq!(got, expect, "before {before:?}\nafter {after:?}");
    }

    #[test]
    fn the_diff_names_each_lifecycle_transition() {
        let ada = "E1,Eng,Lead,active,,";
        check(&[], &[ada], &["joiner E1"]);
        check(&[ada], &[ada], &[]);
        check(&[ada], &[], &["leaver E1 (status=terminated)"]);
        check(&[ada], &["E1,Eng,Lead,terminated,,"], &["leaver E1 (status=terminated)"]);
        check(&[ada], &["E1,Eng,Lead,active,2026-05-31,"], &["leaver E1 (status=terminated end_date=2026-05-31)"]);
        check(&[ada], &["E1,Eng,Lead,active,2026-06-01,"], &["mover E1 (end_date=2026-06-01)"]);
        check(&[ada], &["E1,Sales,Lead,active,,"], &["mover E1 significant (department=Sales)"]);
        check(&[ada], &["E1,Eng,Director,active,,"], &["mover E1 (title=Director)"]);
        check(&[ada], &["E1,Eng,Lead,leave,,"], &["suspend E1 (status=suspended)"]);
        check(&["E1,Eng,Lead,leave,,"], &[ada], &["resume E1 (status=active)"]);
        check(&["E1,Eng,Lead,terminated,,"], &[ada], &["rehire E1 (status=active)"]);
        check(&["E1,Eng,Lead,terminated,,"], &["E1,Eng,Boss,terminated,,"], &["update E1 (title=Boss)"]);
        check(&[], &["E1,Eng,Lead,active,,2026-07-01"], &["joiner E1"]);
        check(
            &["E1,Eng,Lead,active,,2026-07-01"],
            &["E1,Eng,Lead,active,,2026-05-01"],
            &["mover E1 (status=active start_date=2026-05-01)"],
        );
        // Issue 7: a row terminated at first sight is recorded, not dropped.
        check(&[], &["E1,Eng,Lead,terminated,,"], &["update E1"]);
        check(&[], &["E1,Eng,Lead,active,2026-01-31,"], &["update E1"]);
        // A rejected row never makes a leaver.
        check(&[ada], &["E1,Eng,Lead,retired,,"], &[]);
        check(&[ada, "E2,Eng,Lead,active,,"], &["E1,Eng,Lead,active,2026-13-01,", "E2,Eng,Lead,active,,"], &[]);
    }

    fn arb_rows() -> impl proptest::strategy::Strategy<Value = std::collections::BTreeMap<u8, (u8, u8)>> {
        proptest::collection::btree_map(0u8..12, (0u8..3, 0u8..3), 0..10)
    }

    proptest::proptest! {
        /// Against any previous state: ids only in the new file are joiners (unless terminated),
        /// ids gone from it are leavers (unless already terminated), unchanged rows make no
        /// event, every event names a distinct identity, and re-diffing the result is empty.
        #[test]
        fn the_diff_is_exact_and_idempotent(before in arb_rows(), after in arb_rows()) {
            let status = ["active", "leave", "terminated"];
            let dept = ["Eng", "Sales", "Ops"];
            let rows = |m: &std::collections::BTreeMap<u8, (u8, u8)>| -> Vec<String> {
                m.iter().map(|(id, (d, s))| format!("E{id},{},Lead,{},,", dept[*d as usize], status[*s as usize])).collect()
            };
            let schema = Schema::default();
            let src = hr(&schema);
            let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
            let csv = |rows: &[String]| format!("id,dept,title,status,end,start\n{}\n", rows.join("\n"));
            let prev = parse_csv(&src, &schema, csv(&rows(&before)).as_bytes(), today).unwrap_or_default();
            let previous: HashMap<Box<str>, Identity> = prev.identities.into_iter().map(|i| (i.id.clone(), i)).collect();
            let next = parse_csv(&src, &schema, csv(&rows(&after)).as_bytes(), today).unwrap_or_default();
            let events = diff(&schema, &previous, &next, &[]);
            let ids: HashSet<&str> = events.iter().map(|e| &*e.identity.id).collect();
            proptest::prop_assert_eq!(ids.len(), events.len());
            for (id, (d, s)) in &after {
                let key = format!("E{id}");
                let e = events.iter().find(|e| *e.identity.id == key);
                match before.get(id) {
                    None if *s == 2 => proptest::prop_assert_eq!(e.map(|e| e.kind), Some(EventKind::Update)),
                    None => proptest::prop_assert_eq!(e.map(|e| e.kind), Some(EventKind::Joiner)),
                    Some(b) if b == &(*d, *s) => proptest::prop_assert!(e.is_none()),
                    Some(_) => proptest::prop_assert!(e.is_some()),
                }
            }
            for (id, (_, s)) in &before {
                if !after.contains_key(id) {
                    let e = events.iter().find(|e| *e.identity.id == *format!("E{id}"));
                    let want = if *s == 2 { None } else { Some(EventKind::Leaver) };
                    proptest::prop_assert_eq!(e.map(|e| e.kind), want);
                }
            }
            // The state after the events, diffed against the same file again, is unchanged.
            let mut state = previous.clone();
            for e in &events {
                state.insert(e.identity.id.clone(), e.identity.clone());
            }
            let again = diff(&schema, &state, &next, &[]);
            proptest::prop_assert!(again.is_empty(), "{:?}", again);
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

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

/// How many rejected rows a result keeps in detail (line, key, field, reason), the lowest lines
/// first. The others are counted ([`Parsed::rejected_more`]) and still hold their identity as it
/// was, so a file that repeats one row a million times costs memory in proportion to the file,
/// never to its square.
pub const REJECTED_DETAIL_LIMIT: usize = 1_000;

/// How many other lines a "duplicate" message names before it counts the rest.
const OTHERS_SHOWN: usize = 5;

/// The accepted identities of a snapshot and the rows that were rejected.
#[derive(Debug, Default)]
pub struct Parsed {
    pub identities: Vec<Identity>,
    /// The physical line of each accepted identity (same index as `identities`).
    pub lines: Vec<u64>,
    /// The rejected rows in detail, by line: at most [`REJECTED_DETAIL_LIMIT`] once parsing is
    /// done (add them with [`Parsed::reject`]).
    pub rejected: Vec<Rejected>,
    /// Rejected rows beyond the detail kept in `rejected`: counted, not listed.
    pub rejected_more: usize,
    /// Keys of rejected rows: these identities are left exactly as they were.
    pub rejected_keys: HashSet<String>,
    /// The first line of a rejected row with this key, username or email (folded), for
    /// [`Parsed::could_be`]: kept for every rejected row, listed in detail or not.
    pub rejected_names: FxHashMap<String, u64>,
    /// Rejected rows that cannot be attributed to a key with certainty: they may belong to
    /// anyone, so identities missing from the file cannot be trusted to be leavers.
    pub unattributed: usize,
    /// Why the file looks cut off (its last record is incomplete), if it does. Identities
    /// missing from a truncated file cannot be trusted to be leavers, however few they are.
    pub truncated: Option<String>,
    pub rows: usize,
    /// The SHA-256 of the file as read (hex), for the import record; empty for a push.
    pub sha256: String,
}

impl Parsed {
    /// How many rows were rejected in all, listed in detail or not.
    pub fn rejected_count(&self) -> usize {
        self.rejected.len() + self.rejected_more
    }

    /// Records a rejected row: its key is held as it was, its key and names are remembered for
    /// [`Parsed::could_be`], and its detail is kept while it is among the first
    /// [`REJECTED_DETAIL_LIMIT`] by line.
    pub fn reject(&mut self, mut r: Rejected) {
        if let Some(k) = &r.key {
            if !self.rejected_keys.contains(k) {
                self.rejected_keys.insert(k.clone());
            }
            let at = self.rejected_names.entry(format!("key:{k}")).or_insert(r.line);
            *at = (*at).min(r.line);
        }
        for n in std::mem::take(&mut r.names) {
            let at = self.rejected_names.entry(format!("name:{n}")).or_insert(r.line);
            *at = (*at).min(r.line);
        }
        if !r.attributed {
            self.unattributed += 1;
        }
        self.rejected.push(r);
        if self.rejected.len() >= 2 * REJECTED_DETAIL_LIMIT {
            self.trim_rejected();
        }
    }

    /// Sorts the detail by line and keeps the first [`REJECTED_DETAIL_LIMIT`], counting the rest.
    pub fn trim_rejected(&mut self) {
        self.rejected.sort_by_key(|r| r.line);
        if self.rejected.len() > REJECTED_DETAIL_LIMIT {
            self.rejected_more += self.rejected.len() - REJECTED_DETAIL_LIMIT;
            self.rejected.truncate(REJECTED_DETAIL_LIMIT);
        }
    }

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
                    let names = identity_names(schema, &identity);
                    self.reject(Rejected {
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
        self.trim_rejected();
    }

    /// The first line of a rejected row that could stand for `identity`: its key, username or
    /// email is the identity's.
    pub fn could_be(&self, schema: &Schema, identity: &Identity) -> Option<u64> {
        let mut lines = vec![self.rejected_names.get(&format!("key:{}", identity.id)).copied()];
        for attr in ["username", "email"] {
            if let Some(v) = identity.attr(schema, attr) {
                lines.push(self.rejected_names.get(&format!("name:{}", text::fold(v.trim()))).copied());
            }
        }
        lines.into_iter().flatten().min()
    }
}

/// `lines` for a message: the first few, then how many more.
fn lines_shown(lines: impl Iterator<Item = u64>, total: usize) -> String {
    let shown: Vec<String> = lines.take(OTHERS_SHOWN).map(|l| l.to_string()).collect();
    let more = total.saturating_sub(shown.len());
    if more == 0 { shown.join(", ") } else { format!("{} and {more} more", shown.join(", ")) }
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
    #[error("line {line}: the record starting here is over {limit} bytes; no row of an HR file is that long")]
    RecordTooLong { line: u64, limit: u64 },
    #[error("the file cannot be read: {reason}")]
    Read { reason: String },
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
    let mut t = Truncation::new(delimiter);
    t.feed(bytes);
    t.verdict()
}

#[derive(PartialEq, Clone, Copy)]
enum Field {
    Start,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// [`truncation`] over a file read in pieces.
struct Truncation {
    delimiter: u8,
    state: Field,
    last: Option<u8>,
}

impl Truncation {
    fn new(delimiter: u8) -> Self {
        Self { delimiter, state: Field::Start, last: None }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut state = self.state;
        for &c in bytes {
            let boundary = c == self.delimiter || c == b'\n' || c == b'\r';
            state = match state {
                Field::Start | Field::Unquoted if boundary => Field::Start,
                Field::Start if c == b'"' => Field::Quoted,
                Field::Start | Field::Unquoted => Field::Unquoted,
                Field::Quoted if c == b'"' => Field::QuoteInQuoted,
                Field::Quoted => Field::Quoted,
                // `""` inside quotes is an escaped quote.
                Field::QuoteInQuoted if c == b'"' => Field::Quoted,
                Field::QuoteInQuoted if boundary => Field::Start,
                Field::QuoteInQuoted => Field::Unquoted,
            };
        }
        self.state = state;
        if let Some(c) = bytes.last() {
            self.last = Some(*c);
        }
    }

    fn verdict(&self) -> Option<&'static str> {
        if self.state == Field::Quoted {
            return Some("the file ends inside a quoted field");
        }
        match self.last {
            Some(b'\n' | b'\r') | None => None,
            Some(_) => Some("the file does not end with a line break, so its last record may be cut off"),
        }
    }
}

/// The longest record (one row, its quoted line breaks included) a snapshot may hold: 1 MiB. A
/// longer one refuses the file with its line, before more of it is read, so a file that is one
/// 500 MB line costs no more memory than a normal one. A field over the 4 KiB field limit, in a
/// record under this one, rejects only its row.
pub const RECORD_LIMIT: u64 = 1024 * 1024;

/// The reader under the CSV parser: counts what it reads, hashes it, watches for a cut-off
/// last record, remembers where line breaks are until the records they precede have been
/// numbered, and refuses to read on once the record being read is over [`RECORD_LIMIT`].
struct Tracked<R> {
    inner: R,
    /// Bytes read so far.
    read: u64,
    /// Where the record being read starts (the end of the last one returned).
    boundary: u64,
    limit: u64,
    over: bool,
    /// Runs of line-break bytes not counted yet: (offset, length, how many are `\n`).
    breaks: std::collections::VecDeque<(u64, u64, u64)>,
    /// The physical line of the last offset asked about.
    line: u64,
    sha: sha2::Sha256,
    truncation: Truncation,
}

impl<R: std::io::Read> Tracked<R> {
    fn new(inner: R, delimiter: u8, limit: u64) -> Self {
        use sha2::Digest as _;
        Self {
            inner,
            read: 0,
            boundary: 0,
            limit,
            over: false,
            breaks: std::collections::VecDeque::new(),
            line: 1,
            sha: sha2::Sha256::new(),
            truncation: Truncation::new(delimiter),
        }
    }

    /// The physical line (as an editor shows it) of the record that starts at byte `start`:
    /// the csv crate's own counter skips newlines inside quoted fields. Offsets are asked about
    /// in order. With CRLF the reported start can sit on the `\n` of the previous terminator,
    /// so a run of line breaks that `start` falls in counts whole.
    fn line_at(&mut self, start: u64) -> u64 {
        while let Some(&(at, _, newlines)) = self.breaks.front() {
            if at > start {
                break;
            }
            self.line += newlines;
            self.breaks.pop_front();
        }
        self.line
    }
}

impl<R: std::io::Read> std::io::Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        // Everything read since the boundary belongs to the record not finished yet: the parser
        // asks for more only when its buffer holds no complete record.
        if self.read.saturating_sub(self.boundary) > self.limit {
            self.over = true;
            return Err(std::io::Error::other(format!("a record is over {} bytes", self.limit)));
        }
        let n = self.inner.read(buf)?;
        let got = buf.get(..n).unwrap_or_default();
        self.sha.update(got);
        self.truncation.feed(got);
        for (i, &c) in got.iter().enumerate() {
            if c == b'\n' || c == b'\r' {
                let at = self.read + i as u64;
                let nl = u64::from(c == b'\n');
                match self.breaks.back_mut() {
                    Some((start, len, newlines)) if *start + *len == at => {
                        *len += 1;
                        *newlines += nl;
                    }
                    _ => self.breaks.push_back((at, 1, nl)),
                }
            }
        }
        self.read += n as u64;
        Ok(n)
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

/// Parses and validates a snapshot held in memory.
pub fn parse_csv(
    source: &SourceConfig,
    schema: &Schema,
    bytes: &[u8],
    today: NaiveDate,
) -> Result<Parsed, SnapshotError> {
    parse_reader(source, schema, bytes, today)
}

/// Parses and validates a snapshot as it is read: memory grows with the rows kept, never with
/// one record (a record over [`RECORD_LIMIT`] refuses the file with its line). The file's
/// SHA-256 is computed on the way ([`Parsed::sha256`]).
pub fn parse_reader(
    source: &SourceConfig,
    schema: &Schema,
    input: impl std::io::Read,
    today: NaiveDate,
) -> Result<Parsed, SnapshotError> {
    parse_limited(source, schema, input, today, RECORD_LIMIT)
}

fn parse_limited(
    source: &SourceConfig,
    schema: &Schema,
    input: impl std::io::Read,
    today: NaiveDate,
    limit: u64,
) -> Result<Parsed, SnapshotError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(source.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(Tracked::new(input, source.delimiter, limit));
    // A read error, or a record past the limit (the line it starts on, read before the error).
    let failed = |reader: &mut csv::Reader<Tracked<_>>, e: csv::Error| {
        let tracked = reader.get_mut();
        if tracked.over {
            let at = tracked.boundary;
            return SnapshotError::RecordTooLong { line: tracked.line_at(at), limit };
        }
        match e.kind() {
            csv::ErrorKind::Io(io) => SnapshotError::Read { reason: io.to_string() },
            _ => SnapshotError::Csv { line: e.position().map_or(0, csv::Position::line), reason: e.to_string() },
        }
    };
    // A record returned whole can still be over the limit (the check while reading is per
    // buffer): it is refused the same way.
    let too_long = |reader: &mut csv::Reader<Tracked<_>>, record: &csv::ByteRecord| {
        let start = record.position().map_or(0, csv::Position::byte);
        let end = reader.position().byte();
        let tracked = reader.get_mut();
        tracked.boundary = end;
        (end.saturating_sub(start) > limit)
            .then(|| SnapshotError::RecordTooLong { line: tracked.line_at(start), limit })
    };
    let mut header = csv::ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(false) => return Err(SnapshotError::Empty),
        Err(e) => {
            return Err(match failed(&mut reader, e) {
                SnapshotError::Csv { reason, .. } => SnapshotError::Csv { line: 1, reason },
                other => other,
            });
        }
        Ok(true) => {}
    }
    if let Some(e) = too_long(&mut reader, &header) {
        return Err(e);
    }
    let cols = locate(source, schema, &header)?;
    let width = header.len();
    let manager_slot = schema.slot_of("manager_id");
    let start_slot = schema.slot_of("start_date");
    let end_slot = schema.slot_of("end_date");
    let etype_slot = schema.slot_of("employment_type");

    let mut out = Parsed::default();
    let mut candidates: Vec<(u64, Identity)> = Vec::new();
    // Every key's lines; almost every key has one.
    let mut key_lines: FxHashMap<Box<str>, Lines> = FxHashMap::default();
    // The first line of each readable key on a row out of line with the header: another row
    // with that key is a duplicate too, so the identity is held as it was.
    let mut misaligned: FxHashMap<Box<str>, u64> = FxHashMap::default();
    let mut last_line: Option<u64> = None;

    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(failed(&mut reader, e)),
        }
        if let Some(e) = too_long(&mut reader, &record) {
            return Err(e);
        }
        let start = record.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().line_at(start);
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
            out.reject(reject(
                Some(source.key.as_str()).filter(|_| key.is_none()),
                format!("has {} fields; the header has {width}", record.len()),
                false,
            ));
            continue;
        }
        if let Some(why) = untrusted {
            out.reject(reject(Some(&source.key), why, false));
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
            out.reject(reject(
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
            out.reject(b);
            continue;
        }
        let hr_value = match cols.status.map(cell) {
            None => "",
            Some(Ok(v)) => v,
            Some(Err(())) => "\u{fffd}",
        };
        let status_field = source.status_column.as_deref();
        if cols.status.is_some() && hr_value.is_empty() {
            out.reject(reject(status_field, "missing status; expected active, leave or terminated".into(), true));
            continue;
        }
        let Some(hr) = hr_status(hr_value) else {
            out.reject(reject(
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
                    out.reject(reject(
                        Some("kind"),
                        format!("unknown kind `{}`; expected employee, contractor, service or bot", text::quote(k)),
                        true,
                    ));
                    continue;
                }
            },
            Some(Err(())) => {
                out.reject(reject(Some("kind"), "value is not valid UTF-8".to_string(), true));
                continue;
            }
        };
        let date = |slot| attrs.get(slot).and_then(parse_date);
        let status = derive_status(hr, date(start_slot), date(end_slot), today);
        candidates.push((line, Identity::new(&key, kind, status, attrs)));
    }

    {
        use sha2::Digest as _;
        let tracked = reader.into_inner();
        out.truncated = tracked.truncation.verdict().map(str::to_string);
        out.sha256 = hex::encode(tracked.sha.finalize());
    }
    // The last record of a cut-off file may be cut off itself, with every field it kept looking
    // valid (`Engineering` cut to `Eng`): it is never applied, and never attributed.
    if let Some(why) = &out.truncated {
        let last = candidates.last().map(|(line, _)| *line).filter(|l| Some(*l) == last_line);
        if let Some(line) = last
            && let Some((_, ident)) = candidates.pop()
        {
            out.reject(Rejected {
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
            out.reject(rejected(&source.key, reason));
            continue;
        }
        if let Some(Lines::Many(all)) = key_lines.get(&*ident.id) {
            // The other lines, the first few named: a message naming every one would make a file
            // that repeats a row cost memory in the square of its length.
            let others = lines_shown(all.iter().copied().filter(|l| *l != line), all.len() - 1);
            out.reject(rejected(&source.key, format!("duplicate key (also on line {others})")));
            continue;
        }
        // The references every source checks; cycles through the whole file are found below.
        let here = |k: &str| {
            if key_lines.contains_key(k) { Referent::Here { manager: None } } else { Referent::Nobody }
        };
        if let Some((field, reason)) = check_references(schema, &ident, here) {
            out.reject(rejected(field, reason));
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
        let holders = by_username.get(&text::fold(&u)).map_or(&[][..], Vec::as_slice);
        let others: Vec<String> =
            holders.iter().filter(|k| ***k != *i.id).take(OTHERS_SHOWN).map(|k| format!("`{k}`")).collect();
        let more = holders.len().saturating_sub(1 + others.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        out.reject(Rejected {
            line,
            key: Some(i.id.to_string()),
            field: Some("username".into()),
            reason: format!("duplicate username `{}` (also {}{more})", text::quote(&u), others.join(", ")),
            attributed: true,
            names: identity_names(schema, &i),
        });
    }
    // Look-alike usernames and emails within the file.
    for (attr, what) in [("username", "username"), ("email", "email")] {
        let slot = schema.slot_of(attr);
        let names: Vec<(&str, &str)> =
            accepted.iter().filter_map(|(_, i)| i.attrs.get(slot).map(|v| (&*i.id, v))).collect();
        let found = look_alikes(&names, names.iter().copied());
        if found.is_empty() {
            continue;
        }
        let refused: FxHashMap<String, String> = found
            .into_iter()
            .filter_map(|(i, k, v)| names.get(i).map(|(ck, cv)| (ck.to_string(), look_alike_reason(what, cv, &k, &v))))
            .collect();
        let (kept, alike): (Vec<_>, Vec<_>) = accepted.into_iter().partition(|(_, i)| !refused.contains_key(&*i.id));
        accepted = kept;
        for (line, i) in alike {
            let reason = refused.get(&*i.id).cloned().unwrap_or_default();
            let names = identity_names(schema, &i);
            out.reject(Rejected {
                line,
                key: Some(i.id.to_string()),
                field: Some(attr.to_string()),
                reason,
                attributed: true,
                names,
            });
        }
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
            out.reject(Rejected {
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
    out.trim_rejected();
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
    // Names are kept in compatibility form, so a fullwidth or otherwise decorated look-alike of
    // a name is that name (and a duplicate of it), whichever source sends it.
    let value = if slot == schema.slot_of("email") || slot == schema.slot_of("username") {
        text::nfkc(&value).into_owned()
    } else {
        value
    };
    if slot == schema.slot_of("email") && !value.contains('@') {
        return Err(format!("`{}` is not an email address", text::quote(&value)));
    }
    Ok(value)
}

/// The names among `candidates` (key, username or email) that are not plain ASCII and look like
/// another identity's name in `others` without being it (the TR39 skeletons agree, the folded
/// texts differ): `(index in candidates, the other's key, the other's name)`, the first found
/// for each. Every source refuses such a row: an account name that looks like someone else's is
/// how a look-alike takes over their access in a person's eyes.
pub fn look_alikes<'a>(
    candidates: &[(&str, &str)],
    others: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(usize, String, String)> {
    let mut wanted: FxHashMap<String, Vec<usize>> = FxHashMap::default();
    for (i, (_, v)) in candidates.iter().enumerate() {
        if let Some(sk) = text::looks_like(v) {
            wanted.entry(sk).or_default().push(i);
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut found: FxHashMap<usize, (String, String)> = FxHashMap::default();
    for (key, v) in others {
        let Some(at) = wanted.get(&text::skeleton(v)) else { continue };
        for &i in at {
            let Some((ck, cv)) = candidates.get(i) else { continue };
            if *ck != key && text::fold(cv) != text::fold(v) {
                found.entry(i).or_insert_with(|| (key.to_string(), v.to_string()));
            }
        }
    }
    let mut out: Vec<(usize, String, String)> = found.into_iter().map(|(i, (k, v))| (i, k, v)).collect();
    out.sort();
    out
}

/// The reason a look-alike name is refused.
pub fn look_alike_reason(what: &str, name: &str, other_key: &str, other: &str) -> String {
    format!(
        "{what} `{}` looks like `{}` of identity `{other_key}` (look-alike characters)",
        text::quote(name),
        text::quote(other)
    )
}

/// Where a key a row refers to stands, for [`check_references`].
pub enum Referent {
    /// An identity of the row's own source (stored, or in the same file or push), with its
    /// manager when the caller knows it.
    Here { manager: Option<String> },
    /// An identity of another source.
    Source(String),
    /// No identity has that key.
    Nobody,
}

/// How many managers up a push's manager chain is followed looking for a cycle.
const CHAIN_LIMIT: usize = 256;

/// The checks of a row's references that every source makes (a CSV row, a webhook record, a
/// SCIM User): its `manager_id` and `owner_id` name an identity of the same source that is not
/// the row itself, and the managers above it never lead back to it. `referent` says where a key
/// stands. The field (attribute name) and the reason of the first problem.
pub fn check_references(
    schema: &Schema,
    identity: &Identity,
    mut referent: impl FnMut(&str) -> Referent,
) -> Option<(&'static str, String)> {
    for (attr, what) in [("manager_id", "manager"), ("owner_id", "owner")] {
        let Some(v) = schema.slot(attr).and_then(|slot| identity.attrs.get(slot)) else { continue };
        if v == &*identity.id {
            return Some((attr, format!("`{}` names itself as its {what}", text::quote(v))));
        }
        match referent(v) {
            Referent::Nobody => {
                return Some((attr, format!("unknown {what} `{}`: no row has that key", text::quote(v))));
            }
            Referent::Source(other) => {
                return Some((
                    attr,
                    format!(
                        "{what} `{}` belongs to source `{}`; it must be an identity of this source",
                        text::quote(v),
                        text::quote(&other)
                    ),
                ));
            }
            Referent::Here { manager } if attr == "manager_id" => {
                let mut next = manager;
                for _ in 0..CHAIN_LIMIT {
                    let Some(m) = next else { break };
                    if m == *identity.id {
                        return Some((attr, format!("manager cycle through `{}`", text::quote(v))));
                    }
                    next = match referent(&m) {
                        Referent::Here { manager } => manager,
                        _ => None,
                    };
                }
            }
            Referent::Here { .. } => {}
        }
    }
    None
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
        let huge = "x".repeat(512 * 1024);
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
        assert_eq!(p.could_be(&schema, &bo), Some(3));
        let other = Identity::new("E3", Kind::Employee, Status::Active, Attrs::new(&schema));
        assert!(p.could_be(&schema, &other).is_none());
    }

    #[test]
    fn issue15_a_record_over_the_limit_refuses_the_file_with_its_line_before_it_is_read_whole() {
        let schema = Schema::default();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let src = source(&schema);
        // An endless line: refused once the record is past the limit, not read to the end.
        use std::io::Read as _;
        let endless = b"id,name\r\n1,\"a\nb\"\r\n2,".chain(std::io::repeat(b'x'));
        let err = parse_reader(&src, &schema, endless, today).err();
        assert_eq!(err, Some(SnapshotError::RecordTooLong { line: 4, limit: RECORD_LIMIT }));
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "line 4: the record starting here is over 1048576 bytes; no row of an HR file is that long"
        );
        // A record just over the limit, returned whole by the parser, is refused the same way;
        // one at the limit is a row like any other.
        let row = |n: usize| format!("id,name\n1,a\n2,{}\n", "y".repeat(n));
        let at = |n: usize| parse_limited(&src, &schema, row(n).as_bytes(), today, 64).map(|p| p.rows);
        assert_eq!(at(61), Ok(2), "`2,` + 61 bytes + newline is 64 bytes");
        assert_eq!(at(62), Err(SnapshotError::RecordTooLong { line: 3, limit: 64 }));
        // The header too.
        let err = parse_limited(&src, &schema, format!("id,{}\n", "n".repeat(100)).as_bytes(), today, 64).err();
        assert_eq!(err, Some(SnapshotError::RecordTooLong { line: 1, limit: 64 }));
        // The hash is the file's.
        use sha2::Digest as _;
        let text = b"id,name\n1,a\n";
        let p = parse_csv(&src, &schema, text, today).unwrap_or_default();
        assert_eq!(p.sha256, hex::encode(sha2::Sha256::digest(text)));
    }

    #[test]
    fn issue15_a_repeated_row_is_rejected_in_memory_linear_in_the_file() {
        let n = 3_000;
        let text = format!("id,name\n{}", "E1,Ada\n".repeat(n));
        let p = parse(&text);
        assert_eq!(p.rejected_count(), n, "every copy is counted");
        assert_eq!(p.rejected.len(), REJECTED_DETAIL_LIMIT, "the detail is capped");
        assert_eq!(p.rejected_more, n - REJECTED_DETAIL_LIMIT);
        let lines: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines.first().copied(), Some(2), "the first lines are the ones kept");
        assert_eq!(lines.last().copied(), Some(REJECTED_DETAIL_LIMIT as u64 + 1));
        assert_eq!(
            p.rejected.first().map(|r| r.reason.as_str()),
            Some(format!("duplicate key (also on line 3, 4, 5, 6, 7 and {} more)", n - 6).as_str())
        );
        assert!(p.rejected.iter().all(|r| r.reason.len() < 100), "no message names every other line");
        assert_eq!(p.rejected_keys.len(), 1);
        assert!(p.identities.is_empty() && p.unattributed == 0);

        // Distinct keys sharing one username: each message names a few of the others.
        let schema = Schema::default();
        let mut src = source(&schema);
        src.columns.push((schema.slot_of("username"), "login".into()));
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let rows: String = (0..n).map(|i| format!("E{i},a,ada\n")).collect();
        let p = parse_csv(&src, &schema, format!("id,name,login\n{rows}").as_bytes(), today).unwrap_or_default();
        assert_eq!(p.rejected_count(), n);
        let first = p.rejected.first().map(|r| r.reason.clone()).unwrap_or_default();
        assert_eq!(first, format!("duplicate username `ada` (also `E1`, `E2`, `E3`, `E4`, `E5` and {} more)", n - 6));
        // A row past the detail still stands for the identity it could be.
        let mut ada = Attrs::new(&schema);
        ada.set(schema.slot_of("username"), Some("ADA"));
        let ada = Identity::new("E999999", Kind::Employee, Status::Active, ada);
        assert_eq!(p.could_be(&schema, &ada), Some(2));
        let last = Identity::new(&format!("E{}", n - 1), Kind::Employee, Status::Active, Attrs::new(&schema));
        assert_eq!(p.could_be(&schema, &last), Some(n as u64 + 1), "a key past the detail is remembered");
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

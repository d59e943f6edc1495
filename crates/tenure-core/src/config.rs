//! `tenure.toml`: typed, validated, every problem reported with file, line and reason.
//!
//! Secrets never live in the config: a key that looks like one (`password`, `token`) is a load
//! error that points at `*_env` / `*_file`, and so is a configured URL that carries one (a
//! userinfo password, or a query key such as `access_token`). URLs are parsed with the `url`
//! crate, never split by hand, and a problem never repeats the URL it is about.

use crate::diag::{Problem, Problems};
use crate::doc::{self, Node, Table, Value};
use crate::schema::{AttrType, Schema, Slot};
use std::collections::HashSet;

mod correlation;
mod nhi;
mod schedule;
mod target;
pub use nhi::{NHI_KEYS, NhiConfig, max_age_secs};
pub use schedule::{SCHEDULE_KEYS, ScheduleConfig};
pub use target::*;

#[derive(Debug, Clone)]
pub struct Config {
    pub store_url: String,
    /// `[store] allow_symlink`: accept a store file or directory that is a symbolic link.
    pub store_allow_symlink: bool,
    pub audit: AuditConfig,
    pub server_listen: String,
    /// `[server] max_import_bytes`: the largest snapshot `POST /api/v1/imports` accepts
    /// ([`DEFAULT_MAX_IMPORT_BYTES`] unless set).
    pub server_max_import_bytes: u64,
    pub policy_path: String,
    pub guard: GuardConfig,
    /// `[schedule]`: how often the server's scheduled jobs run.
    pub schedule: ScheduleConfig,
    /// `[nhi]`: the secret sink and the default credential age (issue 10).
    pub nhi: NhiConfig,
    pub schema: Schema,
    pub sources: Vec<SourceConfig>,
    pub targets: Vec<TargetConfig>,
}

/// The default `[server] max_import_bytes`: 64 MiB, about 400,000 HR rows.
pub const DEFAULT_MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The Ed25519 key that signs checkpoints, relative to the config file; its public key is
    /// `<signing_key_file>.pub`.
    pub signing_key_file: String,
}

/// The default `[audit] signing_key_file`.
pub const DEFAULT_SIGNING_KEY_FILE: &str = "tenure-data/audit-signing.key";

impl Default for AuditConfig {
    fn default() -> Self {
        Self { signing_key_file: DEFAULT_SIGNING_KEY_FILE.to_string() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardConfig {
    pub max_leavers: u64,
    pub max_leaver_fraction: f64,
    /// Identities losing any access in one batch (leavers, suspensions, movers who lose a
    /// grant): a broken column mapping must not strip everyone.
    pub max_access_losses: u64,
    pub max_access_loss_fraction: f64,
    /// Identities gaining a privileged entitlement (one a `privileged` role grants) in one batch:
    /// a policy edit or a poisoned feed must not hand admin rights to many at once.
    pub max_privileged_grants: u64,
    /// `window`, in seconds: pushed records (webhooks, SCIM) arrive one at a time, so the
    /// limits above apply to everything pushed by one source within this sliding window.
    pub window_secs: u64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_leavers: 25,
            max_leaver_fraction: 0.05,
            max_access_losses: 100,
            max_access_loss_fraction: 0.10,
            max_privileged_grants: 5,
            window_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Snapshots, `tenure import` or `POST /api/v1/imports`.
    Csv,
    /// Signed pushes to `POST /hooks/{source}`.
    Webhook,
    /// An IdP or HR system pushing Users to `/scim/v2`.
    Scim,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Webhook => "webhook",
            SourceKind::Scim => "scim",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// The column (CSV header, webhook record field) holding the identity id. For a SCIM
    /// source without columns, the standard mapping's key (`externalId`).
    pub key: String,
    /// `(attribute slot, CSV column)`. The special slot for the HR status is included.
    pub columns: Vec<(Slot, String)>,
    /// The column with the HR status (active, leave, terminated), if mapped.
    pub status_column: Option<String>,
    /// The CSV delimiter, default `,`.
    pub delimiter: u8,
    /// The webhook signing secret (`secret_env` / `secret_file`, `whsec_...`); required for
    /// `kind = "webhook"`, refused for the other kinds.
    pub secret: SecretRef,
    /// The zone the source's dates are in (`timezone`, IANA name, default UTC): an `end_date`
    /// passes at the end of that day there, a `start_date` begins at its start.
    pub timezone: chrono_tz::Tz,
}

impl SourceConfig {
    /// Today's date in the source's timezone at `now`.
    pub fn today_at(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        now.with_timezone(&self.timezone).date_naive()
    }
}

impl Config {
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The secret sink directory for `target` as written (relative to the config file): the
    /// target's own `secret_sink`, else `[nhi] secret_sink`.
    pub fn secret_sink(&self, target: &str) -> Option<&str> {
        self.target(target).and_then(|t| t.secret_sink.as_deref()).or(self.nhi.secret_sink.as_deref())
    }

    /// What is insecure in the configuration (TLS verification turned off, a token sent in the
    /// clear), for commands to print on stderr each run.
    pub fn warnings(&self) -> Vec<String> {
        self.targets.iter().flat_map(TargetConfig::warnings).collect()
    }
}

/// Walks one table, checking its keys and reading typed values, reporting problems.
struct Reader<'a, 'p, 's> {
    table: &'a Table,
    what: String,
    p: &'p mut Problems<'s>,
}

impl<'a, 'p, 's> Reader<'a, 'p, 's> {
    fn new(table: &'a Table, what: impl Into<String>, p: &'p mut Problems<'s>, allowed: &[&str]) -> Self {
        let what = what.into();
        for e in &table.entries {
            if !allowed.contains(&e.key.as_str()) {
                let hint = if looks_secret(&e.key) {
                    format!("; secrets never go in the config: use `{}_env` or `{}_file`", e.key, e.key)
                } else {
                    format!("; expected one of: {}", allowed.join(", "))
                };
                p.at(e.key_span.start, format!("unknown key `{}` in {what}{hint}", e.key));
            }
        }
        Self { table, what, p }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        let node = self.table.get(key)?;
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.p.at(node.start(), format!("`{key}` in {} must be a string, not {}", self.what, node.type_name()));
                None
            }
        }
    }

    fn required(&mut self, key: &str, at: usize) -> String {
        match self.string(key) {
            Some(s) if !s.trim().is_empty() => s,
            Some(_) => {
                if let Some(n) = self.table.get(key) {
                    self.p.at(n.start(), format!("`{key}` in {} must not be empty", self.what));
                }
                String::new()
            }
            None => {
                if self.table.get(key).is_none() {
                    self.p.at(at, format!("{} is missing `{key}`", self.what));
                }
                String::new()
            }
        }
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let node = self.table.get(key)?;
        match node.value {
            Value::Int(n) if (min..=max).contains(&n) => Some(n),
            Value::Int(n) => {
                self.p.at(node.start(), format!("`{key}` in {} is {n}; expected {min} to {max}", self.what));
                None
            }
            _ => {
                self.p
                    .at(node.start(), format!("`{key}` in {} must be an integer, not {}", self.what, node.type_name()));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let node = self.table.get(key)?;
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.p.at(
                    node.start(),
                    format!("`{key}` in {} must be true or false, not {}", self.what, node.type_name()),
                );
                None
            }
        }
    }

    fn float(&mut self, key: &str) -> Option<f64> {
        let node = self.table.get(key)?;
        match node.value {
            Value::Float(f) => Some(f),
            Value::Int(n) => Some(n as f64),
            _ => {
                self.p.at(node.start(), format!("`{key}` in {} must be a number, not {}", self.what, node.type_name()));
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<(usize, String)>> {
        let node = self.table.get(key)?;
        let Some(items) = node.as_array() else {
            self.p.at(node.start(), format!("`{key}` in {} must be an array of strings", self.what));
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_str() {
                Some(s) => out.push((item.start(), s.to_string())),
                None => self.p.at(item.start(), format!("`{key}` in {} must hold only strings", self.what)),
            }
        }
        Some(out)
    }

    /// Reports a problem on the line of `url` when the (non-empty) URL does not parse, has
    /// another scheme than `schemes`, or carries a secret; `fix` says what to do instead.
    fn check_url(&mut self, url: &str, schemes: &[&str], fix: &str) {
        if url.is_empty() {
            return;
        }
        if let Some(why) = url_problem(url, schemes, fix) {
            let at = self.table.get("url").map_or(0, Node::start);
            self.p.at(at, format!("`url` of {} {why}", self.what));
        }
    }

    fn secret(&mut self, base: &str) -> SecretRef {
        let env = self.string(&format!("{base}_env"));
        let file = self.string(&format!("{base}_file"));
        match (env, file) {
            (Some(e), None) => SecretRef::Env(e),
            (None, Some(f)) => SecretRef::File(f),
            (None, None) => SecretRef::None,
            (Some(_), Some(_)) => {
                let at = self.table.get(&format!("{base}_file")).map_or(0, Node::start);
                self.p.at(at, format!("{} sets both `{base}_env` and `{base}_file`; choose one", self.what));
                SecretRef::None
            }
        }
    }
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "api_key", "apikey", "credential", "client_secret"]
        .iter()
        .any(|s| k == *s)
}

/// Words that make a query (or fragment) key name a secret. Keys are compared with case, `-`
/// and `_` ignored and as substrings (`accessToken`, `private_token`, `clientSecret`,
/// `X-Amz-Signature` all match): a bearer token or password in a URL ends up in logs, errors
/// and the audit trail, and a false alarm costs only moving a value into `*_env`/`*_file`.
const SECRET_QUERY_WORDS: &[&str] =
    &["token", "secret", "password", "passwd", "pwd", "apikey", "accesskey", "credential", "signature", "auth"];

fn secret_query_key(key: &str) -> bool {
    let k: String = key.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
    SECRET_QUERY_WORDS.iter().any(|w| k.contains(w)) || k == "sig" || k == "key"
}

/// Why a configured URL cannot be used, if it cannot, for a message that says what to do
/// instead (`fix`). The reason never repeats the URL: a URL is where credentials hide.
///
/// The URL is parsed with the `url` crate (WHATWG URL parsing, as the connectors' clients do), so
/// a password holding `/`, `?` or `#` cannot slip past a hand-written split: unencoded, such a
/// URL does not parse at all, which is a problem too.
fn url_problem(url: &str, schemes: &[&str], fix: &str) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            let hint = if url.contains('@') {
                format!("; if it holds credentials, remove them and {fix}")
            } else {
                String::new()
            };
            return Some(format!("is not a valid URL ({e}){hint}"));
        }
    };
    if !schemes.contains(&parsed.scheme()) {
        let expected: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        return Some(format!("must start with {}, not `{}:`", expected.join(" or "), parsed.scheme().escape_default()));
    }
    if parsed.password().is_some() {
        return Some(format!("carries a password; {fix}"));
    }
    // `https://TOKEN@host`: a user name alone can be the credential (a database URL's user name
    // is only the role, and is allowed).
    if !parsed.username().is_empty() && !parsed.scheme().starts_with("postgres") {
        return Some(format!("carries credentials before `@`; {fix}"));
    }
    let fragment = url::form_urlencoded::parse(parsed.fragment().unwrap_or_default().as_bytes());
    if let Some((key, _)) = parsed.query_pairs().chain(fragment).find(|(k, _)| secret_query_key(k)) {
        return Some(format!("carries a secret in its query (`{}`); {fix}", key.escape_default()));
    }
    None
}

/// The problem with `[store] url`, if any. A `sqlite://` URL holds a file path (which may
/// contain spaces a URL cannot), and SQLite has no credentials, so only a URL that parses and
/// carries a password is refused there; a `postgres://` URL is checked like any other.
fn store_url_problem(url: &str) -> Option<String> {
    const FIX: &str = "put the whole URL in `TENURE_STORE_URL` instead";
    if url.starts_with("sqlite://") {
        return match url::Url::parse(url) {
            Ok(u) if u.password().is_some() => Some(format!("carries a password; {FIX}")),
            _ => None,
        };
    }
    url_problem(url, &["sqlite", "postgres", "postgresql"], FIX)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Parses and validates a config. `file` is the name used in problems.
pub fn parse(file: &str, source: &str) -> Result<Config, Vec<Problem>> {
    let mut p = Problems::new(file, source);
    let root = match doc::parse(source) {
        Ok(n) => n,
        Err((offset, msg)) => {
            p.at(offset, format!("invalid TOML: {msg}"));
            return Err(p.into_vec());
        }
    };
    let Some(root) = root.as_table() else {
        return Err(p.into_vec());
    };
    let _ = Reader::new(
        root,
        "the config",
        &mut p,
        &["store", "server", "policy", "guard", "attributes", "source", "target", "audit", "schedule", "nhi"],
    );

    let mut store_url = "sqlite://tenure-data/tenure.db".to_string();
    let mut server_listen = "127.0.0.1:8080".to_string();
    let mut server_max_import_bytes = DEFAULT_MAX_IMPORT_BYTES;
    let mut policy_path = "policy.toml".to_string();
    let mut guard = GuardConfig::default();
    let mut store_allow_symlink = false;
    let mut audit = AuditConfig::default();
    let mut schedule = ScheduleConfig::default();
    let mut nhi = NhiConfig::default();

    if let Some(t) = section(root, "store", &mut p) {
        let mut r = Reader::new(t, "[store]", &mut p, &["url", "allow_symlink"]);
        if let Some(b) = r.boolean("allow_symlink") {
            store_allow_symlink = b;
        }
        if let Some(u) = r.string("url") {
            if let Some(why) = store_url_problem(&u) {
                let at = t.get("url").map_or(0, Node::start);
                r.p.at(at, format!("`url` in [store] {why}"));
            }
            store_url = u;
        }
    }
    if let Some(t) = section(root, "audit", &mut p) {
        let mut r = Reader::new(t, "[audit]", &mut p, &["signing_key_file"]);
        if let Some(f) = r.string("signing_key_file") {
            if f.trim().is_empty() {
                let at = t.get("signing_key_file").map_or(0, Node::start);
                r.p.at(at, "`signing_key_file` in [audit] must not be empty");
            } else {
                audit.signing_key_file = f;
            }
        }
    }
    if let Some(t) = section(root, "schedule", &mut p) {
        schedule = schedule::parse(t, &mut p);
    }
    if let Some(t) = section(root, "nhi", &mut p) {
        nhi = nhi::parse(t, &mut p);
    }
    if let Some(t) = section(root, "server", &mut p) {
        let mut r = Reader::new(t, "[server]", &mut p, &["listen", "max_import_bytes"]);
        if let Some(l) = r.string("listen") {
            server_listen = l;
        }
        if let Some(n) = r.int("max_import_bytes", 1, i64::MAX) {
            server_max_import_bytes = n.unsigned_abs();
        }
    }
    if let Some(t) = section(root, "policy", &mut p) {
        let mut r = Reader::new(t, "[policy]", &mut p, &["path"]);
        if let Some(l) = r.string("path") {
            policy_path = l;
        }
    }
    if let Some(t) = section(root, "guard", &mut p) {
        let mut r = Reader::new(
            t,
            "[guard]",
            &mut p,
            &[
                "max_leavers",
                "max_leaver_fraction",
                "max_access_losses",
                "max_access_loss_fraction",
                "max_privileged_grants",
                "window",
            ],
        );
        if let Some(w) = r.string("window") {
            match crate::date::parse_duration(&w) {
                Some(secs) => guard.window_secs = secs,
                None => {
                    let at = t.get("window").map_or(0, Node::start);
                    r.p.at(at, format!("`window` in [guard] `{w}` is not a duration like `1h`, `30m` or `1d`"));
                }
            }
        }
        if let Some(n) = r.int("max_privileged_grants", 0, i64::MAX) {
            guard.max_privileged_grants = n.unsigned_abs();
        }
        if let Some(n) = r.int("max_leavers", 0, i64::MAX) {
            guard.max_leavers = n.unsigned_abs();
        }
        if let Some(n) = r.int("max_access_losses", 0, i64::MAX) {
            guard.max_access_losses = n.unsigned_abs();
        }
        if let Some(f) = r.float("max_access_loss_fraction") {
            if (0.0..=1.0).contains(&f) {
                guard.max_access_loss_fraction = f;
            } else {
                let at = t.get("max_access_loss_fraction").map_or(0, Node::start);
                r.p.at(at, format!("`max_access_loss_fraction` in [guard] is {f}; expected 0.0 to 1.0"));
            }
        }
        if let Some(f) = r.float("max_leaver_fraction") {
            if (0.0..=1.0).contains(&f) {
                guard.max_leaver_fraction = f;
            } else {
                let at = t.get("max_leaver_fraction").map_or(0, Node::start);
                r.p.at(at, format!("`max_leaver_fraction` in [guard] is {f}; expected 0.0 to 1.0"));
            }
        }
    }

    let mut schema = Schema::default();
    if let Some(t) = section(root, "attributes", &mut p) {
        for e in &t.entries {
            let ty = match e.node.as_str() {
                Some("string") => AttrType::String,
                Some("date") => AttrType::Date,
                _ => {
                    p.at(e.node.start(), format!("attribute `{}` must have type \"string\" or \"date\"", e.key));
                    continue;
                }
            };
            if !valid_name(&e.key) {
                p.at(e.key_span.start, format!("attribute name `{}` must be letters, digits, `-` or `_`", e.key));
            } else if ["any", "all", "not"].contains(&e.key.as_str()) || !schema.declare(&e.key, ty) {
                p.at(e.key_span.start, format!("attribute `{}` is already defined", e.key));
            }
        }
    }

    let sources = array_of_tables(root, "source", &mut p)
        .into_iter()
        .filter_map(|(at, t)| parse_source(at, t, &schema, &mut p))
        .collect::<Vec<_>>();
    let targets = array_of_tables(root, "target", &mut p)
        .into_iter()
        .filter_map(|(at, t)| parse_target(at, t, &schema, &mut p))
        .collect::<Vec<_>>();

    let mut seen = HashSet::new();
    for s in &sources {
        if !seen.insert(s.name.clone()) {
            p.at(0, format!("source `{}` is defined twice", s.name));
        }
    }
    let mut seen = HashSet::new();
    for t in &targets {
        if !seen.insert(t.name.clone()) {
            p.at(0, format!("target `{}` is defined twice", t.name));
        }
    }

    if !p.is_empty() {
        return Err(p.into_vec());
    }
    Ok(Config {
        store_url,
        store_allow_symlink,
        audit,
        server_listen,
        server_max_import_bytes,
        policy_path,
        guard,
        schedule,
        nhi,
        schema,
        sources,
        targets,
    })
}

fn section<'a>(root: &'a Table, key: &str, p: &mut Problems<'_>) -> Option<&'a Table> {
    let node = root.get(key)?;
    match node.as_table() {
        Some(t) => Some(t),
        None => {
            p.at(node.start(), format!("`{key}` must be a table ([{key}])"));
            None
        }
    }
}

fn array_of_tables<'a>(root: &'a Table, key: &str, p: &mut Problems<'_>) -> Vec<(usize, &'a Table)> {
    let Some(node) = root.get(key) else {
        return Vec::new();
    };
    let Some(items) = node.as_array() else {
        p.at(node.start(), format!("`{key}` must be an array of tables ([[{key}]])"));
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|n| match n.as_table() {
            Some(t) => Some((n.start(), t)),
            None => {
                p.at(n.start(), format!("each `{key}` must be a table ([[{key}]])"));
                None
            }
        })
        .collect()
}

fn parse_source(at: usize, t: &Table, schema: &Schema, p: &mut Problems<'_>) -> Option<SourceConfig> {
    let mut r = Reader::new(
        t,
        "[[source]]",
        p,
        &["name", "kind", "key", "columns", "delimiter", "secret_env", "secret_file", "timezone"],
    );
    let name = r.required("name", at);
    if !name.is_empty() && !valid_name(&name) {
        r.p.at(at, format!("source name `{name}` must be letters, digits, `-` or `_`"));
    }
    r.what = format!("[[source]] `{name}`");
    let kind = match r.string("kind").as_deref() {
        None | Some("csv") => SourceKind::Csv,
        Some("webhook") => SourceKind::Webhook,
        Some("scim") => SourceKind::Scim,
        Some(other) => {
            let at = t.get("kind").map_or(at, Node::start);
            r.p.at(at, format!("unknown source kind `{other}`; expected csv, webhook or scim"));
            SourceKind::Csv
        }
    };
    // A SCIM source without columns uses the standard mapping, whose key is `externalId`.
    let key = if kind == SourceKind::Scim && t.get("key").is_none() {
        "externalId".to_string()
    } else {
        r.required("key", at)
    };
    let secret = r.secret("secret");
    match (kind, &secret) {
        (SourceKind::Webhook, SecretRef::None) => r.p.at(
            at,
            format!("{} is a webhook source and needs `secret_env` or `secret_file` (the signing secret)", r.what),
        ),
        (SourceKind::Csv | SourceKind::Scim, SecretRef::Env(_) | SecretRef::File(_)) => {
            let at = t.get("secret_env").or_else(|| t.get("secret_file")).map_or(at, Node::start);
            r.p.at(
                at,
                format!(
                    "{} is a {} source; only webhook sources have a signing secret (SCIM sources authenticate with `tenure token create --scope source`)",
                    r.what,
                    kind.as_str()
                ),
            );
        }
        _ => {}
    }
    let timezone = match r.string("timezone") {
        None => chrono_tz::UTC,
        Some(z) => z.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
            let at = t.get("timezone").map_or(at, Node::start);
            r.p.at(at, format!("unknown timezone `{z}`; expected an IANA name such as `Europe/Berlin` or `UTC`"));
            chrono_tz::UTC
        }),
    };
    let delimiter = match r.string("delimiter") {
        None => b',',
        Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes().first().copied().unwrap_or(b','),
        Some(d) => {
            let at = t.get("delimiter").map_or(at, Node::start);
            r.p.at(at, format!("`delimiter` must be one ASCII character, not `{d}`"));
            b','
        }
    };
    let mut columns = Vec::new();
    let mut status_column = None;
    if let Some(node) = t.get("columns") {
        match node.as_table() {
            None => r.p.at(node.start(), "`columns` must be a table of attribute = \"CSV column\""),
            Some(ct) => {
                for e in &ct.entries {
                    let Some(col) = e.node.as_str() else {
                        r.p.at(e.node.start(), format!("column for `{}` must be a string", e.key));
                        continue;
                    };
                    if e.key == "status" {
                        status_column = Some(col.to_string());
                        continue;
                    }
                    if e.key == "id" {
                        r.p.at(e.key_span.start, "`id` comes from the source's `key`, not from `columns`");
                        continue;
                    }
                    match schema.slot(&e.key) {
                        Some(slot) => columns.push((slot, col.to_string())),
                        None => r.p.at(
                            e.key_span.start,
                            format!(
                                "unknown attribute `{}`; declare it under [attributes] or use one of: {}",
                                e.key,
                                schema.names().collect::<Vec<_>>().join(", ")
                            ),
                        ),
                    }
                }
            }
        }
    }
    Some(SourceConfig { name, kind, key, columns, status_column, delimiter, secret, timezone })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RevocationClass;

    const GOOD: &str = r#"
[store]
url = "sqlite://data/t.db"

[guard]
max_leavers = 10
max_leaver_fraction = 0.1

[attributes]
team = "string"
review_date = "date"

[[source]]
name = "hr"
key = "employee_id"
[source.columns]
email = "work_email"
username = "login"
team = "team"
status = "employment_status"

[[target]]
name = "directory"
kind = "ldap"
url = "ldap://127.0.0.1:3389"
bind_dn = "cn=admin,dc=example,dc=com"
password_env = "DIRECTORY_PASSWORD"
users_dn = "ou=people,dc=example,dc=com"
groups_dn = "ou=groups,dc=example,dc=com"
disabled_dn = "ou=disabled,dc=example,dc=com"

[[target]]
name = "payroll"
kind = "manual"
owner = "payroll-admins"
"#;

    #[test]
    fn a_good_config_loads_with_defaults() {
        let c = parse("tenure.toml", GOOD).unwrap_or_else(|p| unreachable_problems(&p));
        assert_eq!(c.guard, GuardConfig { max_leavers: 10, max_leaver_fraction: 0.1, ..GuardConfig::default() });
        assert_eq!(c.policy_path, "policy.toml");
        assert_eq!(c.audit.signing_key_file, DEFAULT_SIGNING_KEY_FILE);
        assert_eq!(c.schedule, ScheduleConfig::default());
        assert!(!c.store_allow_symlink);
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.sources.first().and_then(|s| s.status_column.clone()).as_deref(), Some("employment_status"));
        assert!(c.schema.slot("team").is_some());
        let payroll = c.target("payroll");
        assert_eq!(payroll.map(|t| t.class), Some(RevocationClass::Manual));
        assert!(matches!(payroll.map(|t| &t.settings), Some(TargetSettings::Manual(m)) if m.sla_hours == 24));
    }

    fn unreachable_problems(p: &[Problem]) -> Config {
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(p.is_empty(), "unexpected problems: {text:#?}");
        parse("x", "").unwrap_or_else(|_| Config {
            store_url: String::new(),
            store_allow_symlink: false,
            audit: AuditConfig::default(),
            server_listen: String::new(),
            server_max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            policy_path: String::new(),
            guard: GuardConfig::default(),
            schedule: ScheduleConfig::default(),
            nhi: NhiConfig::default(),
            schema: Schema::default(),
            sources: vec![],
            targets: vec![],
        })
    }

    /// Applies `edit` to the good config and expects a problem containing `want` on the line
    /// where `anchor` appears in the edited text.
    fn check(edit: (&str, &str), anchor: &str, want: &str) {
        let text = GOOD.replacen(edit.0, edit.1, 1);
        let offset = text.find(anchor).unwrap_or(usize::MAX);
        let want_line = crate::diag::line_of(&text, offset);
        let problems = parse("tenure.toml", &text).err().unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.line == want_line && p.message.contains(want)),
            "wanted line {want_line} `{want}`, got {problems:#?}"
        );
    }

    /// Expects `url` as the LDAP target's URL to be refused on its line with `want`, and the
    /// problem not to repeat `secret`.
    fn check_url(url: &str, want: &str, secret: &str) {
        let text = GOOD.replacen("url = \"ldap://127.0.0.1:3389\"", &format!("url = \"{url}\""), 1);
        let line = crate::diag::line_of(&text, text.find(&format!("\"{url}\"")).unwrap_or(usize::MAX));
        let problems = parse("tenure.toml", &text).err().unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.line == line && p.message.contains(want)),
            "{url}: wanted line {line} `{want}`, got {problems:#?}"
        );
        for p in &problems {
            assert!(!p.message.contains(secret), "{url}: the problem repeats the secret: {p}");
        }
    }

    #[test]
    fn issue6_urls_carrying_secrets_are_refused_with_line_and_reason() {
        // A password with `/` once slipped past a split at the first `/`.
        check_url("ldap://admin:pa/ss@127.0.0.1:3389", "is not a valid URL", "pa/ss");
        check_url("ldap://admin:pa/ss@127.0.0.1:3389", "remove them and use `password_env`", "pa/ss");
        check_url("ldap://admin:pa%2Fss@127.0.0.1:3389", "carries a password", "pa%2Fss");
        check_url("ldap://:hunter2@127.0.0.1:3389", "carries a password", "hunter2");
        check_url("ldaps://cn=x:p?w#d@h:636", "not a valid URL", "p?w#d");
        check_url("ldap://127.0.0.1:3389/?Access_Token=tok3n", "secret in its query (`Access_Token`)", "tok3n");
        check_url("ldap://127.0.0.1:3389/?x=1&API-KEY=k3y", "secret in its query (`API-KEY`)", "k3y");
        check_url("ldap://127.0.0.1:3389/#password=pw9", "secret in its query (`password`)", "pw9");
        check_url("ftp://127.0.0.1", "must start with ldap:// or ldaps:// or ldapi://, not `ftp:`", "\u{0}");
        check_url("127.0.0.1:3389", "is not a valid URL (relative URL without a base)", "\u{0}");

        let scim = |url: &str| {
            format!("{GOOD}\n[[target]]\nname = \"chat\"\nkind = \"scim\"\nurl = \"{url}\"\ntoken_env = \"T\"\n")
        };
        for (url, want) in [
            ("https://u:pa/ss@scim.example.com/v2", "is not a valid URL"),
            ("https://scim.example.com/v2?token=abc123", "secret in its query (`token`)"),
            ("https://scim.example.com/v2?SECRET=abc123", "secret in its query (`SECRET`)"),
            ("https://u:abc123@scim.example.com/v2", "carries a password; use `token_env`"),
            ("https://abc123@scim.example.com/v2", "carries credentials before `@`"),
            ("https://scim.example.com/v2?accessToken=abc123", "secret in its query (`accessToken`)"),
            ("https://scim.example.com/v2?private_token=abc123", "secret in its query"),
            ("https://scim.example.com/v2?clientSecret=abc123", "secret in its query"),
            ("https://scim.example.com/v2?X-Amz-Signature=abc123", "secret in its query"),
            ("ldap://scim.example.com/v2", "must start with http:// or https://"),
        ] {
            let problems = parse("tenure.toml", &scim(url)).err().unwrap_or_default();
            assert!(problems.iter().any(|p| p.message.contains(want) && p.line > 30), "{url}: {problems:#?}");
            assert!(problems.iter().all(|p| !p.message.contains("abc123") && !p.message.contains("pa/ss")));
        }

        let store = |url: &str| GOOD.replacen("url = \"sqlite://data/t.db\"", &format!("url = \"{url}\""), 1);
        for (url, want) in [
            ("postgres://tenure:s3cr/t@db.example.com/tenure", Some("is not a valid URL")),
            ("postgres://tenure:s3cret@db.example.com/tenure", Some("carries a password; put the whole URL")),
            ("postgres://tenure@db.example.com/tenure?password=s3cret", Some("secret in its query (`password`)")),
            ("sqlite://admin:s3cret@host/t.db", Some("carries a password")),
            ("mysql://db.example.com/tenure", Some("must start with sqlite:// or postgres://")),
            ("postgres://tenure@db.example.com/tenure", None),
            ("sqlite://data dir/with spaces/t.db", None),
            ("sqlite:///var/lib/tenure/t.db", None),
        ] {
            let result = parse("tenure.toml", &store(url));
            match want {
                Some(want) => {
                    let problems = result.err().unwrap_or_default();
                    assert!(problems.iter().any(|p| p.message.contains(want) && p.line == 3), "{url}: {problems:#?}");
                    assert!(problems.iter().all(|p| !p.message.contains("s3cr")), "{problems:#?}");
                }
                None => assert!(result.is_ok(), "{url}: {:#?}", result.err()),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            let _ = parse("tenure.toml", &text);
        }

        #[test]
        fn edits_of_a_good_config_never_panic(at in 0usize..900, junk in "[\\[\\]=\"a-z0-9 \n.,{}]{0,12}") {
            let mut text = GOOD.to_string();
            let at = at.min(text.len());
            if text.is_char_boundary(at) {
                text.insert_str(at, &junk);
                let _ = parse("tenure.toml", &text);
            }
        }
    }

    #[test]
    fn problems_name_the_line_and_reason() {
        check(("email = \"work_email\"", "emial = \"work_email\""), "emial", "unknown attribute `emial`");
        check(
            ("password_env = \"DIRECTORY_PASSWORD\"", "password = \"hunter2\""),
            "password =",
            "secrets never go in the config",
        );
        check(("kind = \"manual\"", "kind = \"ftp\""), "\"ftp\"", "unknown kind `ftp`");
        check(("max_leavers = 10", "max_leavers = \"ten\""), "\"ten\"", "must be an integer");
        check(("max_leaver_fraction = 0.1", "max_leaver_fraction = 1.5"), "1.5", "expected 0.0 to 1.0");
        check(("owner = \"payroll-admins\"", ""), "[[target]]\nname = \"payroll\"", "missing `owner`");
        check(("[guard]", "[guard\n"), "[guard", "invalid TOML");
        check(("[guard]", "[audit]\nsigning_key_file = 3\n[guard]"), "= 3", "must be a string");
        check(("[guard]", "[audit]\nsigning_key = \"k\"\n[guard]"), "signing_key =", "unknown key `signing_key`");
        check(
            ("url = \"sqlite://data/t.db\"", "url = \"sqlite://x\"\nallow_symlink = \"yes\""),
            "\"yes\"",
            "true or false",
        );
        check(
            ("url = \"ldap://127.0.0.1:3389\"", "url = \"ldap://admin:pw@127.0.0.1\""),
            "ldap://admin:pw@",
            "carries a password",
        );
        let hook = ("key = \"employee_id\"", "key = \"employee_id\"\nkind = \"webhook\"");
        check(hook, "[[source]]", "needs `secret_env` or `secret_file`");
        check(
            ("key = \"employee_id\"", "key = \"employee_id\"\nsecret_env = \"S\""),
            "secret_env",
            "only webhook sources",
        );
        check(
            ("key = \"employee_id\"", "key = \"employee_id\"\ntimezone = \"Mars/Olympus\""),
            "\"Mars",
            "unknown timezone",
        );
        check(("max_leavers = 10", "max_leavers = 10\nwindow = \"soon\""), "\"soon\"", "not a duration");
        check(
            ("key = \"employee_id\"", "key = \"employee_id\"\nkind = \"ftp\""),
            "\"ftp\"",
            "expected csv, webhook or scim",
        );
    }

    #[test]
    fn issue10_nhi_sink_and_credential_age_load_and_bad_ones_name_their_line() {
        let text = GOOD
            .replace("[guard]", "[nhi]\nsecret_sink = \"secrets\"\ncredential_max_age = \"90d\"\n[guard]")
            .replace("name = \"payroll\"", "name = \"payroll\"\nsecret_sink = \"payroll-secrets\"");
        let c = parse("tenure.toml", &text).unwrap_or_else(|p| unreachable_problems(&p));
        assert_eq!(
            c.nhi,
            NhiConfig { secret_sink: Some("secrets".into()), credential_max_age_secs: Some(90 * 86_400) }
        );
        assert_eq!(c.secret_sink("payroll"), Some("payroll-secrets"), "a target's own sink wins");
        assert_eq!(c.secret_sink("directory"), Some("secrets"));
        let plain = parse("tenure.toml", GOOD).unwrap_or_else(|p| unreachable_problems(&p));
        assert_eq!(
            (plain.nhi.clone(), plain.secret_sink("directory")),
            (NhiConfig::default(), None),
            "no sink by default"
        );

        let nhi = |body: &str| ("[guard]", format!("[nhi]\n{body}\n[guard]"));
        for (body, anchor, want) in [
            ("secret_sink = \"\"", "= \"\"", "`secret_sink` in [nhi] must not be empty"),
            ("secret_sink = 3", "= 3", "`secret_sink` in [nhi] must be a string"),
            ("credential_max_age = \"often\"", "\"often\"", "`credential_max_age` in [nhi] `often` is not a duration"),
            ("sink = \"x\"", "sink", "unknown key `sink` in [nhi]"),
        ] {
            let (from, to) = nhi(body);
            check((from, &to), anchor, want);
        }
    }

    #[test]
    fn issue8_schedule_intervals_load_and_bad_ones_name_their_line() {
        let text = GOOD.replace(
            "[guard]",
            "[schedule]\ntick = \"5s\"\nreconcile = \"2h\"\nrecheck_after_days = 3\ncheckpoint = \"30m\"\nretention = \"2d\"\noverdue = \"15m\"\n[guard]",
        );
        let c = parse("tenure.toml", &text).unwrap_or_else(|p| unreachable_problems(&p));
        let want = ScheduleConfig {
            tick_secs: 5,
            reconcile_secs: 7200,
            recheck_after_days: 3,
            checkpoint_secs: 1800,
            retention_secs: 172_800,
            overdue_secs: 900,
            credentials_secs: 3600,
        };
        assert_eq!(c.schedule, want);
        let d = ScheduleConfig::default();
        assert_eq!((d.tick_secs, d.reconcile_secs, d.recheck_after_days), (30, 3600, 7));
        assert_eq!((d.checkpoint_secs, d.retention_secs, d.overdue_secs), (3600, 86_400, 3600));

        let sched = |body: &str| ("[guard]", format!("[schedule]\n{body}\n[guard]"));
        for (body, anchor, want) in [
            ("tick = \"soon\"", "\"soon\"", "`tick` in [schedule] `soon` is not a duration"),
            ("reconcile = \"0h\"", "\"0h\"", "greater than zero"),
            ("checkpoint = 60", "= 60", "`checkpoint` in [schedule] must be a string"),
            ("retention = \"400d\"", "\"400d\"", "longer than a year"),
            ("recheck_after_days = 0", "= 0", "`recheck_after_days` in [schedule] is 0; expected 1 to 3650"),
            ("recheck_after_days = \"7\"", "\"7\"", "must be an integer"),
            ("overdue = \"1x\"", "\"1x\"", "`overdue` in [schedule] `1x` is not a duration"),
            ("every = \"1h\"", "every", "unknown key `every` in [schedule]"),
        ] {
            let (from, to) = sched(body);
            check((from, &to), anchor, want);
        }
        check(("[store]", "schedule = 3\n[store]"), "schedule = 3", "`schedule` must be a table");
    }

    #[test]
    fn push_sources_have_their_secret_timezone_and_window() {
        let text = GOOD.replace("max_leavers = 10", "max_leavers = 10\nwindow = \"30m\"").replace(
            "key = \"employee_id\"",
            "key = \"employee_id\"\nkind = \"webhook\"\nsecret_file = \"hr.whsec\"\ntimezone = \"America/Los_Angeles\"",
        ) + "\n[[source]]\nname = \"idp\"\nkind = \"scim\"\n";
        let c = parse("tenure.toml", &text).unwrap_or_else(|p| unreachable_problems(&p));
        assert_eq!(c.guard.window_secs, 1800);
        let hr = c.source("hr").map(|s| (s.kind, s.secret.clone(), s.timezone));
        assert_eq!(
            hr,
            Some((SourceKind::Webhook, SecretRef::File("hr.whsec".into()), chrono_tz::America::Los_Angeles))
        );
        let idp = c.source("idp").map(|s| (s.kind, s.key.clone(), s.timezone));
        assert_eq!(idp, Some((SourceKind::Scim, "externalId".to_string(), chrono_tz::UTC)));
        // 2027-01-01 07:30 UTC is still 2026-12-31 in Los Angeles.
        let now = chrono::DateTime::parse_from_rfc3339("2027-01-01T07:30:00Z").map(|d| d.to_utc());
        let today = now.map(|n| c.source("hr").map(|s| s.today_at(n)));
        assert_eq!(today.ok().flatten(), chrono::NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(GuardConfig::default().window_secs, 3600);
    }
}

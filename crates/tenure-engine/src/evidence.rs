//! Evidence IO: the audit signing key on disk, signed checkpoints, JSONL and CSV exports,
//! evidence bundles, and the verification of the store, of an export file and of a bundle.
//!
//! The canonical messages, signatures and verifiers are pure and live in
//! `tenure_core::evidence`; this module reads and writes the files and the store around them,
//! so the CLI and the server serve the same reports.
//!
//! A bundle directory holds `records.jsonl` (every record, byte for byte the lines of
//! `audit export --format jsonl`), `checkpoints.jsonl` (the signed checkpoints up to the
//! bundle's head) and `manifest.json` (the files' SHA-256, the record count, first and last
//! `seq`, the head hash and the key id, signed). Exporting a bundle first makes a checkpoint, so
//! the bundle's head is always signed.
//!
//! The private key never leaves [`AuditSigner`]: no error, report or audit record here contains
//! it.

use sha2::{Digest, Sha256};
use std::io::{BufRead as _, Write};
use std::path::{Path, PathBuf};
use tenure_core::audit::{AuditEntry, ChainBreak, Verifier};
use tenure_core::evidence::{
    self, AuditPublicKey, AuditSigner, BUNDLE_FORMAT, BundleReport, BundleVerifier, Checkpoint, CheckpointReport,
    ExportHeader, ExportReport, ExportVerifier, KeyError, Manifest,
};
use tenure_core::spreadsheet::safe_cell;
use tenure_store::{AuditFilter, Store, StoreError};

/// The files of a bundle.
pub const RECORDS_FILE: &str = "records.jsonl";
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    // The io error is the source: `{:#}` prints it after the message, so it is not repeated here.
    #[error("cannot read `{path}`")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write `{path}`")]
    Write { path: String, source: std::io::Error },
    #[error("the audit chain is broken at seq {seq} ({reason}); a checkpoint would sign it as intact")]
    BrokenChain { seq: i64, reason: String },
    /// Writing an export to its output failed (a closed pipe, say).
    #[error("cannot write the export")]
    Output(#[source] std::io::Error),
    #[error("`{path}`: {error}")]
    Key { path: String, error: KeyError },
    #[error("signing key `{path}` can be read or written by other users (mode {mode:04o}); run `chmod 600 {path}`")]
    KeyMode { path: String, mode: u32 },
    #[error("`{path}` already exists; export a bundle into a new or empty directory")]
    BundleExists { path: String },
    #[error("cannot generate a signing key: the operating system's random number generator failed: {0}")]
    Random(String),
}

pub type Result<T> = std::result::Result<T, EvidenceError>;

impl tenure_core::error::HasCode for EvidenceError {
    fn code(&self) -> tenure_core::error::Code {
        match self {
            EvidenceError::Store(e) => crate::store_code(e),
            EvidenceError::BundleExists { .. } => tenure_core::error::Code::Conflict,
            _ => tenure_core::error::Code::EvidenceUnavailable,
        }
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Read { path: path.display().to_string(), source }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Write { path: path.display().to_string(), source }
}

/// The public key file beside a signing key: `<signing_key_file>.pub`.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    let mut p = signing_key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Creates a new file with `mode`, failing if it exists.
fn create_new(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(write_err(dir))
}

/// Reads the signing key at `path`. A key other users can read or write is refused.
pub fn load_signing_key(path: &Path) -> Result<AuditSigner> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(read_err(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(EvidenceError::KeyMode { path: path.display().to_string(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(read_err(path))?;
    AuditSigner::parse(&text).map_err(|error| EvidenceError::Key { path: path.display().to_string(), error })
}

/// What [`ensure_signing_key`] did.
#[derive(Debug)]
pub struct KeyFiles {
    pub signer: AuditSigner,
    /// A new key was generated.
    pub created: bool,
    /// The public key file was (re)written because it was missing.
    pub wrote_public: bool,
    pub public_path: PathBuf,
}

/// Loads the signing key at `path`, creating it (0600, its directory 0700) with a fresh
/// random seed from the operating system if it does not exist, and writes the public key
/// beside it as `<path>.pub` if that is missing. An existing key is never replaced.
pub fn ensure_signing_key(path: &Path) -> Result<KeyFiles> {
    use rand::TryRngCore as _;
    let mut created = false;
    if !path.exists() {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut seed).map_err(|e| EvidenceError::Random(e.to_string()))?;
        let signer = AuditSigner::from_seed(&seed);
        seed.fill(0);
        match create_new(path, 0o600) {
            Ok(mut f) => {
                f.write_all(signer.to_file_text().as_bytes()).and_then(|()| f.sync_all()).map_err(write_err(path))?;
                created = true;
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_err(path)(e)),
        }
    }
    let signer = load_signing_key(path)?;
    let public_path = public_key_path(path);
    let wrote_public = !public_path.exists();
    if wrote_public {
        std::fs::write(&public_path, signer.public().to_file_text()).map_err(write_err(&public_path))?;
    }
    Ok(KeyFiles { signer, created, wrote_public, public_path })
}

/// Reads a public key file (the `.pub` auditors are given).
pub fn read_public_key(path: &Path) -> Result<AuditPublicKey> {
    let text = std::fs::read_to_string(path).map_err(read_err(path))?;
    AuditPublicKey::parse(&text).map_err(|error| EvidenceError::Key { path: path.display().to_string(), error })
}

/// Signs the chain's head: appends an `audit.checkpoint` record and signs the chain up to and
/// including it.
pub fn checkpoint(store: &dyn Store, signer: &AuditSigner, actor: &str) -> Result<Checkpoint> {
    // A signature says "this chain was intact when I signed": never give one to a broken chain.
    // The store verifies again inside the transaction that appends the checkpoint's record only
    // up to what it reads here, so a tamper between the two is caught by the next verify.
    let report = store.verify_audit()?;
    if let Some(b) = report.first_bad {
        return Err(EvidenceError::BrokenChain { seq: b.seq, reason: b.reason });
    }
    let entry = AuditEntry::new(actor, "audit.checkpoint", "signed")
        .reason(format!("the chain up to and including this record is signed with key {}", signer.key_id()));
    Ok(store.append_checkpoint(&entry, &|head| signer.checkpoint(head.seq, &head.hash, &head.at))?)
}

/// The header a filtered export starts with; `None` for a full export.
pub fn export_header(filter: &AuditFilter) -> Option<ExportHeader> {
    (filter.identity.is_some() || filter.since.is_some()).then(|| ExportHeader {
        filtered: true,
        identity: filter.identity.clone(),
        since: filter.since.clone(),
    })
}

/// Runs a store scan whose visitor writes to `out`, keeping the first write error.
fn scan_to(
    store: &dyn Store,
    filter: &AuditFilter,
    mut write: impl FnMut(&tenure_core::audit::AuditRecord) -> std::io::Result<bool>,
) -> Result<()> {
    let mut err = None;
    store.scan_audit(filter, &mut |r| match write(&r) {
        Ok(go_on) => go_on,
        Err(e) => {
            err = Some(e);
            false
        }
    })?;
    err.map_or(Ok(()), |e| Err(EvidenceError::Output(e)))
}

/// One JSONL line of a record: the line format of exports and bundles.
fn jsonl(r: &tenure_core::audit::AuditRecord) -> std::io::Result<String> {
    serde_json::to_string(r).map_err(std::io::Error::other)
}

/// Writes the records `filter` selects as JSONL, one record per line; a filtered export starts
/// with the [`ExportHeader`] line. Returns the number of records.
pub fn write_jsonl(store: &dyn Store, filter: &AuditFilter, out: &mut dyn Write) -> Result<u64> {
    if let Some(h) = export_header(filter) {
        writeln!(out, "{}", h.line()).map_err(EvidenceError::Output)?;
    }
    let mut n = 0;
    scan_to(store, filter, |r| {
        writeln!(out, "{}", jsonl(r)?)?;
        n += 1;
        Ok(true)
    })?;
    out.flush().map_err(EvidenceError::Output)?;
    Ok(n)
}

/// The columns of the CSV export.
pub const CSV_COLUMNS: [&str; 12] = [
    "seq",
    "at",
    "actor",
    "action",
    "identity",
    "target",
    "entitlement",
    "reason",
    "approver",
    "outcome",
    "prev_hash",
    "hash",
];

/// Writes the records `filter` selects as CSV for spreadsheets: every cell passes
/// [`safe_cell`], so a value that would start a formula is shown as text. Not for hashing: use
/// the JSONL export or a bundle for that. Returns the number of records.
pub fn write_csv(store: &dyn Store, filter: &AuditFilter, out: &mut dyn Write) -> Result<u64> {
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => EvidenceError::Output(e),
        other => EvidenceError::Output(std::io::Error::other(format!("{other:?}"))),
    };
    w.write_record(CSV_COLUMNS).map_err(io)?;
    let mut n = 0;
    let mut failed = None;
    store.scan_audit(filter, &mut |r| {
        let e = &r.entry;
        let seq = r.seq.to_string();
        let cells = [
            seq.as_str(),
            &r.at,
            &e.actor,
            &e.action,
            e.identity.as_deref().unwrap_or(""),
            e.target.as_deref().unwrap_or(""),
            e.entitlement.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.approver.as_deref().unwrap_or(""),
            &e.outcome,
            &r.prev_hash,
            &r.hash,
        ];
        match w.write_record(cells.iter().map(|c| safe_cell(c).into_owned())) {
            Ok(()) => {
                n += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(io(e));
    }
    w.flush().map_err(EvidenceError::Output)?;
    Ok(n)
}

/// What [`write_bundle`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleSummary {
    pub dir: String,
    pub records: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub head_hash: String,
    pub checkpoints: u64,
    pub key_id: String,
}

/// A file writer that hashes what it writes.
struct Hashing {
    file: std::io::BufWriter<std::fs::File>,
    sha: Sha256,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Hashing {
    fn create(path: &Path) -> Result<Self> {
        let file = create_new(path, 0o600).map_err(write_err(path))?;
        Ok(Self { file: std::io::BufWriter::new(file), sha: Sha256::new() })
    }

    fn finish(self, path: &Path) -> Result<String> {
        let file = self.file.into_inner().map_err(|e| write_err(path)(e.into_error()))?;
        file.sync_all().map_err(write_err(path))?;
        Ok(hex::encode(self.sha.finalize()))
    }
}

/// Exports an evidence bundle into `dir` (created 0700 if missing; the files are created 0600
/// and never overwrite an earlier bundle). A fresh checkpoint is made first, so the bundle
/// ends at a signed head; records appended after it are left out.
pub fn write_bundle(store: &dyn Store, signer: &AuditSigner, dir: &Path, actor: &str) -> Result<BundleSummary> {
    create_private_dir(dir)?;
    let paths = [RECORDS_FILE, CHECKPOINTS_FILE, MANIFEST_FILE].map(|f| dir.join(f));
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Err(EvidenceError::BundleExists { path: p.display().to_string() });
    }
    let [records_path, checkpoints_path, manifest_path] = paths;
    let head = checkpoint(store, signer, actor)?;

    let mut records = Hashing::create(&records_path)?;
    let (mut count, mut first, mut last) = (0u64, None, None);
    let mut err = None;
    store.scan_audit(&AuditFilter::default(), &mut |r| {
        if r.seq > head.seq {
            return false;
        }
        match jsonl(&r).and_then(|line| writeln!(records, "{line}")) {
            Ok(()) => {
                count += 1;
                first.get_or_insert(r.seq);
                last = Some((r.seq, r.hash));
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = err {
        return Err(write_err(&records_path)(e));
    }
    let records_sha256 = records.finish(&records_path)?;

    let mut cps = Hashing::create(&checkpoints_path)?;
    let mut checkpoint_count = 0u64;
    for c in store.checkpoints()?.iter().filter(|c| c.seq <= head.seq) {
        let line = serde_json::to_string(c).map_err(|e| write_err(&checkpoints_path)(std::io::Error::other(e)))?;
        writeln!(cps, "{line}").map_err(write_err(&checkpoints_path))?;
        checkpoint_count += 1;
    }
    let checkpoints_sha256 = cps.finish(&checkpoints_path)?;

    let (last_seq, head_hash) = last.unwrap_or((0, String::new()));
    let mut manifest = Manifest {
        format: BUNDLE_FORMAT.to_string(),
        created_at: head.at.clone(),
        records_sha256,
        record_count: count,
        first_seq: first.unwrap_or(0),
        last_seq,
        head_hash: head_hash.clone(),
        checkpoints_sha256,
        checkpoint_count,
        key_id: String::new(),
        signature: String::new(),
    };
    signer.sign_manifest(&mut manifest);
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| write_err(&manifest_path)(std::io::Error::other(e)))?;
    text.push('\n');
    let mut f = Hashing::create(&manifest_path)?;
    f.write_all(text.as_bytes()).map_err(write_err(&manifest_path))?;
    f.finish(&manifest_path)?;
    Ok(BundleSummary {
        dir: dir.display().to_string(),
        records: count,
        first_seq: manifest.first_seq,
        last_seq,
        head_hash,
        checkpoints: checkpoint_count,
        key_id: signer.key_id().to_string(),
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_err(path)(e)),
    }
}

/// Verifies the bundle in `dir` offline with `key`; see [`BundleVerifier`].
pub fn verify_bundle(dir: &Path, key: &AuditPublicKey) -> Result<BundleReport> {
    let manifest = read_optional(&dir.join(MANIFEST_FILE))?;
    let checkpoints = read_optional(&dir.join(CHECKPOINTS_FILE))?;
    let mut v = BundleVerifier::new(key, manifest.as_deref(), checkpoints.as_deref());
    let records_path = dir.join(RECORDS_FILE);
    match std::fs::File::open(&records_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => v.problem(format!("{RECORDS_FILE} is missing")),
        Err(e) => return Err(read_err(&records_path)(e)),
        Ok(f) => {
            let mut r = std::io::BufReader::new(f);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if r.read_until(b'\n', &mut buf).map_err(read_err(&records_path))? == 0 {
                    break;
                }
                v.push_line(&buf);
            }
        }
    }
    Ok(v.finish())
}

/// Verifies a JSONL export file offline; see [`ExportVerifier`].
pub fn verify_export(path: &Path, expect_head: Option<(i64, String)>) -> Result<ExportReport> {
    let f = std::fs::File::open(path).map_err(read_err(path))?;
    let mut v = ExportVerifier::new(expect_head);
    for line in std::io::BufReader::new(f).lines() {
        v.push_line(&line.map_err(read_err(path))?);
    }
    Ok(v.finish())
}

/// What verifying the store's chain and checkpoints found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreReport {
    pub ok: bool,
    /// Records verified before the first bad one (all of them on a good chain).
    pub records: u64,
    pub first_bad: Option<ChainBreak>,
    /// The last verified record's `(seq, hash)`.
    pub head: Option<(i64, String)>,
    /// The result of `--expect-head`: whether it holds, and why.
    pub expected_head: Option<(bool, String)>,
    pub checkpoints: CheckpointReport,
    /// The id of the public key the checkpoints were checked with.
    pub key_id: Option<String>,
}

/// Verifies the whole chain, every stored checkpoint (its signature with `key`, and that the
/// record at its `seq` still has the signed hash), and `expect_head` if given. Without a key,
/// stored checkpoints are reported as unverifiable.
pub fn verify_store(
    store: &dyn Store,
    key: Option<&AuditPublicKey>,
    expect_head: Option<(i64, String)>,
) -> Result<StoreReport> {
    let checkpoints = store.checkpoints()?;
    let mut wanted: std::collections::HashMap<i64, Option<String>> =
        checkpoints.iter().map(|c| (c.seq, None)).collect();
    if let Some((seq, _)) = &expect_head {
        wanted.insert(*seq, None);
    }
    let mut v = Verifier::default();
    let (mut first_bad, mut head, mut last_seq) = (None, None, None);
    store.scan_audit(&AuditFilter::default(), &mut |r| {
        if first_bad.is_none() {
            match v.push(&r) {
                Ok(()) => head = Some((r.seq, r.hash.clone())),
                Err(b) => first_bad = Some(b),
            }
        }
        if let Some(slot) = wanted.get_mut(&r.seq) {
            *slot = Some(r.hash.clone());
        }
        last_seq = Some(r.seq);
        true
    })?;
    let hash_at = |seq: i64| wanted.get(&seq).cloned().flatten();
    let expected_head = expect_head.map(|(seq, hash)| match hash_at(seq) {
        Some(h) if h == hash => (true, format!("record {seq} still has the recorded hash")),
        Some(_) => (false, format!("record {seq} has a different hash: the chain was rewritten")),
        None => (false, format!("record {seq} is gone: the chain was truncated")),
    });
    let report = match key {
        Some(k) => evidence::check_checkpoints(k, &checkpoints, &hash_at, last_seq),
        None => CheckpointReport {
            total: checkpoints.len() as u64,
            unsigned_records: last_seq.unwrap_or(0).max(0).unsigned_abs(),
            problems: if checkpoints.is_empty() {
                Vec::new()
            } else {
                vec![format!("{} checkpoint(s) cannot be verified without the public key", checkpoints.len())]
            },
            ..CheckpointReport::default()
        },
    };
    let ok = first_bad.is_none() && expected_head.as_ref().is_none_or(|(ok, _)| *ok) && report.problems.is_empty();
    Ok(StoreReport {
        ok,
        records: v.count,
        first_bad,
        head,
        expected_head,
        checkpoints: report,
        key_id: key.map(|k| k.key_id().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_store::SqliteStore;

    fn store_with(n: usize) -> SqliteStore {
        let store = SqliteStore::memory(std::sync::Arc::new(tenure_store::SystemClock)).unwrap();
        let entries: Vec<AuditEntry> =
            (0..n).map(|i| AuditEntry::new("system", "import", "ok").identity(&format!("E{i}"))).collect();
        store.audit(&entries).unwrap();
        store
    }

    #[test]
    fn a_key_is_created_private_once_and_its_public_half_written_beside_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("keys/audit.key");
        let first = ensure_signing_key(&path).unwrap();
        assert!(first.created && first.wrote_public);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let again = ensure_signing_key(&path).unwrap();
        assert!(!again.created);
        assert_eq!(again.signer.key_id(), first.signer.key_id());
        assert_eq!(read_public_key(&public_key_path(&path)).unwrap().key_id(), first.signer.key_id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_signing_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(first.signer.to_file_text().split_whitespace().last().unwrap()));
    }

    #[test]
    fn a_checkpoint_covers_its_own_record_and_verifies() {
        let dir = tempfile::TempDir::new().unwrap();
        let key = ensure_signing_key(&dir.path().join("k")).unwrap().signer;
        let store = store_with(5);
        let c = checkpoint(&store, &key, "user:alice").unwrap();
        assert_eq!(c.seq, 6);
        let r = verify_store(&store, Some(key.public()), None).unwrap();
        assert!(r.ok, "{r:#?}");
        assert_eq!((r.checkpoints.verified, r.checkpoints.unsigned_records), (1, 0));
        store.audit(&[AuditEntry::new("system", "import", "ok")]).unwrap();
        let r = verify_store(&store, Some(key.public()), None).unwrap();
        assert_eq!(r.checkpoints.unsigned_records, 1);
        let r = verify_store(&store, None, None).unwrap();
        assert!(!r.ok && r.checkpoints.problems.len() == 1);
    }

    #[test]
    fn a_bundle_round_trips_and_refuses_to_overwrite() {
        let dir = tempfile::TempDir::new().unwrap();
        let key = ensure_signing_key(&dir.path().join("k")).unwrap().signer;
        let store = store_with(7);
        checkpoint(&store, &key, "system").unwrap();
        let out = dir.path().join("bundle");
        let s = write_bundle(&store, &key, &out, "user:alice").unwrap();
        assert_eq!((s.records, s.last_seq, s.checkpoints), (9, 9, 2));
        let r = verify_bundle(&out, key.public()).unwrap();
        assert!(r.ok, "{r:#?}");
        // records.jsonl is byte for byte the JSONL export of the same records.
        let mut export = Vec::new();
        write_jsonl(&store, &AuditFilter::default(), &mut export).unwrap();
        assert_eq!(std::fs::read(out.join(RECORDS_FILE)).unwrap(), export);
        assert!(matches!(write_bundle(&store, &key, &out, "x"), Err(EvidenceError::BundleExists { .. })));
    }
}

//! Signed evidence: Ed25519 checkpoints of the audit chain head, the manifest of an evidence
//! bundle, and the offline verifiers for JSONL exports and bundles.
//!
//! The hash chain (see [`crate::audit`]) proves that records fit together; anyone who can write
//! the database can still rewrite a stretch of history and recompute every hash after it. A
//! checkpoint closes that gap for everything up to the head it signs: it is an Ed25519 signature
//! over `(seq, head hash, at, key id)` under a domain-separated message, so rewriting any record
//! at or before `seq` needs the private key. Records after the last checkpoint are protected by
//! the hash chain only.
//!
//! Everything here is pure: keys come in as text or bytes, records as lines, and the callers in
//! `tenure-engine::evidence` do the file and store IO. Messages and errors never contain the
//! private key or any part of it, and quote what they echo from a file through `text::quote`.

use crate::audit::{self, AuditRecord, GENESIS};
use crate::text;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The domain of a checkpoint signature; a signature made for anything else never verifies as
/// one.
pub const CHECKPOINT_DOMAIN: &[u8] = b"tenure-audit-checkpoint-v1";
/// The domain of a bundle manifest signature.
pub const MANIFEST_DOMAIN: &[u8] = b"tenure-audit-bundle-manifest-v1";
/// The `format` of a bundle manifest.
pub const BUNDLE_FORMAT: &str = "tenure-audit-bundle-v1";
/// The key of the header object that marks a filtered JSONL export.
pub const EXPORT_HEADER_KEY: &str = "tenure_audit_export";

const SECRET_LABEL: &str = "tenure-audit-signing-key-v1";
const PUBLIC_LABEL: &str = "tenure-audit-public-key-v1";
const ALGORITHM: &str = "ed25519";

/// Why key text was refused. Never carries the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a tenure audit signing key (expected one line `{SECRET_LABEL} {ALGORITHM} BASE64`)")]
    NotASigningKey,
    #[error("not a tenure audit public key (expected one line `{PUBLIC_LABEL} {ALGORITHM} BASE64`)")]
    NotAPublicKey,
    #[error("the public key is not a valid Ed25519 key")]
    InvalidPublicKey,
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignatureProblem {
    #[error("signed by key `{key_id}`, not by the given public key `{expected}`")]
    OtherKey { key_id: String, expected: String },
    #[error("the signature is not valid base64 Ed25519")]
    Malformed,
    #[error("the signature does not verify (the signed fields were changed)")]
    Invalid,
}

/// The short id of a public key: the first 16 hex digits of SHA-256 over its 32 bytes.
fn key_id_of(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes())).chars().take(16).collect()
}

/// The key that signs checkpoints and manifests. `Debug` shows only the key id.
pub struct AuditSigner {
    key: SigningKey,
    public: AuditPublicKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.public.id).finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// The key for a 32-byte seed. The seed must come from a CSPRNG.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let verifying = key.verifying_key();
        let public = AuditPublicKey { id: key_id_of(&verifying), key: verifying };
        Self { key, public }
    }

    /// Parses the text of a signing key file.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let b64 = parse_key_line(text, SECRET_LABEL).ok_or(KeyError::NotASigningKey)?;
        let bytes = B64.decode(b64).map_err(|_| KeyError::NotASigningKey)?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::NotASigningKey)?;
        Ok(Self::from_seed(&seed))
    }

    /// The text of the signing key file. Holds the secret: write it only to a 0600 file.
    pub fn to_file_text(&self) -> String {
        format!("{SECRET_LABEL} {ALGORITHM} {}\n", B64.encode(self.key.as_bytes()))
    }

    pub fn public(&self) -> &AuditPublicKey {
        &self.public
    }

    pub fn key_id(&self) -> &str {
        &self.public.id
    }

    /// Signs the head `(seq, head)` as of `at`.
    pub fn checkpoint(&self, seq: i64, head: &str, at: &str) -> Checkpoint {
        let key_id = self.public.id.clone();
        let sig = self.key.sign(&checkpoint_message(seq, head, at, &key_id));
        Checkpoint { seq, head: head.to_string(), at: at.to_string(), key_id, signature: B64.encode(sig.to_bytes()) }
    }

    /// Sets the manifest's `key_id` and signs its canonical encoding.
    pub fn sign_manifest(&self, m: &mut Manifest) {
        m.key_id = self.public.id.clone();
        m.signature = B64.encode(self.key.sign(&m.canonical()).to_bytes());
    }
}

/// A public key that verifies checkpoints and manifests: the `.pub` file auditors are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey {
    key: VerifyingKey,
    id: String,
}

impl AuditPublicKey {
    /// Parses the text of a public key file.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let b64 = parse_key_line(text, PUBLIC_LABEL).ok_or(KeyError::NotAPublicKey)?;
        let bytes = B64.decode(b64).map_err(|_| KeyError::NotAPublicKey)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::NotAPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self { id: key_id_of(&key), key })
    }

    pub fn to_file_text(&self) -> String {
        format!("{PUBLIC_LABEL} {ALGORITHM} {}\n", B64.encode(self.key.as_bytes()))
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    fn verify(&self, key_id: &str, message: &[u8], signature: &str) -> Result<(), SignatureProblem> {
        if key_id != self.id {
            return Err(SignatureProblem::OtherKey { key_id: text::quote(key_id), expected: self.id.clone() });
        }
        let bytes = B64.decode(signature).map_err(|_| SignatureProblem::Malformed)?;
        let sig = Signature::from_slice(&bytes).map_err(|_| SignatureProblem::Malformed)?;
        self.key.verify_strict(message, &sig).map_err(|_| SignatureProblem::Invalid)
    }

    pub fn verify_checkpoint(&self, c: &Checkpoint) -> Result<(), SignatureProblem> {
        self.verify(&c.key_id, &checkpoint_message(c.seq, &c.head, &c.at, &c.key_id), &c.signature)
    }

    pub fn verify_manifest(&self, m: &Manifest) -> Result<(), SignatureProblem> {
        self.verify(&m.key_id, &m.canonical(), &m.signature)
    }
}

/// `LABEL ed25519 BASE64` on one line (surrounding whitespace allowed).
fn parse_key_line<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(l), Some(ALGORITHM), Some(b64), None) if l == label => Some(b64),
        _ => None,
    }
}

/// A signed statement that the chain's record `seq` has hash `head`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    pub head: String,
    /// When it was signed (RFC 3339 UTC), also the `at` of the checkpoint's own audit record.
    pub at: String,
    pub key_id: String,
    /// Base64 Ed25519 signature over [`checkpoint_message`].
    pub signature: String,
}

/// The signed message of a checkpoint: the domain, then every field length-prefixed.
pub fn checkpoint_message(seq: i64, head: &str, at: &str, key_id: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(160);
    buf.extend_from_slice(CHECKPOINT_DOMAIN);
    buf.extend_from_slice(&seq.to_be_bytes());
    audit::put(&mut buf, Some(head));
    audit::put(&mut buf, Some(at));
    audit::put(&mut buf, Some(key_id));
    buf
}

/// `manifest.json` of an evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    /// SHA-256 (hex) of `records.jsonl`, byte for byte.
    pub records_sha256: String,
    pub record_count: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The hash of record `last_seq`: the signed head of the bundle.
    pub head_hash: String,
    /// SHA-256 (hex) of `checkpoints.jsonl`.
    pub checkpoints_sha256: String,
    pub checkpoint_count: u64,
    pub key_id: String,
    /// Base64 Ed25519 signature over [`Manifest::canonical`].
    pub signature: String,
}

impl Manifest {
    /// The signed encoding: the domain, then every field but `signature` in a fixed order,
    /// strings length-prefixed and numbers as big-endian bytes.
    pub fn canonical(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(320);
        buf.extend_from_slice(MANIFEST_DOMAIN);
        audit::put(&mut buf, Some(&self.format));
        audit::put(&mut buf, Some(&self.created_at));
        audit::put(&mut buf, Some(&self.records_sha256));
        buf.extend_from_slice(&self.record_count.to_be_bytes());
        buf.extend_from_slice(&self.first_seq.to_be_bytes());
        buf.extend_from_slice(&self.last_seq.to_be_bytes());
        audit::put(&mut buf, Some(&self.head_hash));
        audit::put(&mut buf, Some(&self.checkpoints_sha256));
        buf.extend_from_slice(&self.checkpoint_count.to_be_bytes());
        audit::put(&mut buf, Some(&self.key_id));
        buf
    }
}

/// A record that does not verify, by `seq` (its position in the chain) and, for files, the line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRecord {
    pub seq: i64,
    pub line: Option<u64>,
    pub reason: String,
}

fn hash32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok().map(|()| out)
}

const GENESIS32: [u8; 32] = [0u8; 32];

/// What checking the stored checkpoints against the chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointReport {
    pub total: u64,
    pub verified: u64,
    /// The highest `seq` covered by a checkpoint that verified and still matches the chain.
    pub last_verified: Option<i64>,
    /// Records after `last_verified` (or all records, without one): hash chain only.
    pub unsigned_records: u64,
    /// One line per checkpoint that failed.
    pub problems: Vec<String>,
    /// The earliest checkpoint the chain no longer matches.
    pub first_bad: Option<BadRecord>,
}

/// Checks each checkpoint's signature and that the chain still has its hash at its `seq`.
/// `hash_at(seq)` gives the stored record's hash; `head` is the chain's last record.
pub fn check_checkpoints(
    key: &AuditPublicKey,
    checkpoints: &[Checkpoint],
    hash_at: &dyn Fn(i64) -> Option<String>,
    head: Option<i64>,
) -> CheckpointReport {
    let mut r = CheckpointReport { total: checkpoints.len() as u64, ..CheckpointReport::default() };
    let mut sorted: Vec<&Checkpoint> = checkpoints.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    for c in sorted {
        if let Err(e) = key.verify_checkpoint(c) {
            r.problems.push(format!("checkpoint of seq {} at {}: {e}", c.seq, text::quote(&c.at)));
            continue;
        }
        r.verified += 1;
        let holds = match hash_at(c.seq) {
            Some(h) if h == c.head => {
                r.last_verified = Some(r.last_verified.map_or(c.seq, |s| s.max(c.seq)));
                continue;
            }
            Some(h) => {
                let since = r.last_verified.map_or_else(
                    || "from the start".to_string(),
                    |s| format!("after seq {s} (the last signed record that still holds)"),
                );
                let reason = format!(
                    "record {} has hash {h}, but the checkpoint signed {}: the chain was rewritten and re-chained {since}",
                    c.seq, c.head
                );
                (c.seq, reason)
            }
            None => {
                let last = head.unwrap_or(0);
                let reason = format!(
                    "record {} is gone, but a checkpoint signed it: records {}..={} were removed (truncation)",
                    c.seq,
                    last + 1,
                    c.seq
                );
                (last + 1, reason)
            }
        };
        r.problems.push(format!("checkpoint of seq {} at {}: {}", c.seq, text::quote(&c.at), holds.1));
        if r.first_bad.is_none() {
            r.first_bad = Some(BadRecord { seq: holds.0, line: None, reason: holds.1 });
        }
    }
    let head = head.unwrap_or(0);
    r.unsigned_records = (head - r.last_verified.unwrap_or(0)).max(0).unsigned_abs();
    r
}

/// The header line of a filtered JSONL export: `{"tenure_audit_export":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportHeader {
    pub filtered: bool,
    pub identity: Option<String>,
    /// The normalised `--since` bound (RFC 3339 UTC).
    pub since: Option<String>,
}

impl ExportHeader {
    pub fn line(&self) -> String {
        serde_json::json!({ EXPORT_HEADER_KEY: self }).to_string()
    }

    fn parse(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        serde_json::from_value(v.get(EXPORT_HEADER_KEY)?.clone()).ok()
    }
}

/// A run of missing `seq` values in a full export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    pub from: i64,
    pub to: i64,
}

/// What verifying a JSONL export found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    pub ok: bool,
    /// `Some` for a filtered export: its completeness cannot be proven.
    pub filter: Option<ExportHeader>,
    pub records: u64,
    /// Links between consecutive records that were checked.
    pub links: u64,
    /// Every run of missing records (full exports only).
    pub gaps: Vec<Gap>,
    /// Records that do not verify, in file order (the first [`MAX_LISTED`]).
    pub bad: Vec<BadRecord>,
    /// Bad records beyond those listed.
    pub more_bad: u64,
    /// The last record's `(seq, hash)`.
    pub head: Option<(i64, String)>,
    /// The result of `--expect-head`, if given: whether it holds, and why.
    pub expected_head: Option<(bool, String)>,
}

/// How many bad records a report lists (gaps are always all listed).
pub const MAX_LISTED: usize = 100;

/// Verifies a JSONL export line by line. Without a header the export claims to be the whole
/// chain: it must start at seq 1 and every gap is reported. With the filtered header, every
/// record must match its hash and the filter, and consecutive records their link; what the
/// filter left out cannot be checked.
#[derive(Debug, Default)]
pub struct ExportVerifier {
    header: Option<ExportHeader>,
    lines: u64,
    prev: Option<(i64, String)>,
    records: u64,
    links: u64,
    gaps: Vec<Gap>,
    bad: Vec<BadRecord>,
    more_bad: u64,
    expect: Option<(i64, String)>,
    expect_found: Option<String>,
}

impl ExportVerifier {
    /// `expect_head`: a `(seq, hash)` kept from an earlier verification that must be present.
    pub fn new(expect_head: Option<(i64, String)>) -> Self {
        Self { expect: expect_head, ..Self::default() }
    }

    fn bad(&mut self, seq: i64, line: u64, reason: String) {
        if self.bad.len() < MAX_LISTED {
            self.bad.push(BadRecord { seq, line: Some(line), reason });
        } else {
            self.more_bad += 1;
        }
    }

    /// Feeds one line (without its line break).
    pub fn push_line(&mut self, line: &str) {
        self.lines += 1;
        let n = self.lines;
        let next = self.prev.as_ref().map_or(1, |(s, _)| s.saturating_add(1));
        if line.trim().is_empty() {
            return;
        }
        if n == 1
            && let Some(h) = ExportHeader::parse(line)
        {
            self.header = Some(h);
            return;
        }
        let r: AuditRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) => {
                let what = if ExportHeader::parse(line).is_some() {
                    "an export header that is not the first line"
                } else {
                    "not an audit record"
                };
                self.bad(next, n, format!("line {n} is {what}"));
                return;
            }
        };
        self.records += 1;
        if audit::hash(r.seq, &r.at, &r.entry, &r.prev_hash) != r.hash {
            self.bad(r.seq, n, format!("record {} does not match its hash (edited)", r.seq));
        }
        if let Some(h) = self.header.clone() {
            if h.identity.as_ref().is_some_and(|id| r.entry.identity.as_ref() != Some(id)) {
                self.bad(r.seq, n, format!("record {} is not about the exported identity", r.seq));
            }
            if h.since.as_ref().is_some_and(|s| r.at.as_str() < s.as_str()) {
                self.bad(r.seq, n, format!("record {} is older than the export's `since`", r.seq));
            }
        }
        // The header is not signed, so it can only ever relax what it must: an export filtered
        // by identity is sparse; one filtered by time only is a contiguous run of the chain (no
        // gaps after its first record); anything else (no header, `filtered: false`, a header
        // naming no filter) is the whole chain, from seq 1, without gaps.
        let by_identity = self.header.as_ref().is_some_and(|h| h.identity.is_some());
        let from_start = self.header.as_ref().is_none_or(|h| h.identity.is_none() && h.since.is_none());
        match self.prev.clone() {
            Some((ps, _)) if r.seq <= ps => {
                self.bad(r.seq, n, format!("record {} comes after record {ps}: out of order or repeated", r.seq));
                return;
            }
            Some((ps, ph)) if r.seq == ps.saturating_add(1) => {
                self.links += 1;
                if r.prev_hash != ph {
                    self.bad(r.seq, n, format!("record {}'s prev_hash does not match record {ps}'s hash", r.seq));
                }
            }
            Some((ps, _)) if !by_identity => self.gaps.push(Gap { from: ps + 1, to: r.seq - 1 }),
            None if r.seq > 1 && from_start => self.gaps.push(Gap { from: 1, to: r.seq - 1 }),
            None if r.seq == 1 && r.prev_hash != GENESIS => {
                self.bad(1, n, "record 1 does not start the chain (its prev_hash is not the genesis hash)".into());
            }
            _ => {}
        }
        if self.expect.as_ref().is_some_and(|(s, _)| *s == r.seq) {
            self.expect_found = Some(r.hash.clone());
        }
        self.prev = Some((r.seq, r.hash));
    }

    pub fn finish(self) -> ExportReport {
        let expected_head = self.expect.map(|(seq, hash)| match &self.expect_found {
            Some(h) if *h == hash => (true, format!("record {seq} has the recorded hash")),
            Some(_) => (false, format!("record {seq} has a different hash: the chain was rewritten")),
            None if self.header.is_some() => (false, format!("record {seq} is not in this filtered export")),
            None => (false, format!("record {seq} is not in the export: it was truncated")),
        });
        let ok = self.bad.is_empty() && self.gaps.is_empty() && expected_head.as_ref().is_none_or(|(ok, _)| *ok);
        ExportReport {
            ok,
            filter: self.header,
            records: self.records,
            links: self.links,
            gaps: self.gaps,
            bad: self.bad,
            more_bad: self.more_bad,
            head: self.prev,
            expected_head,
        }
    }
}

/// One line of `records.jsonl` as the bundle verifier keeps it: a few dozen bytes, so a large
/// bundle stays small in memory.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// `None`: the line is not an audit record.
    seq: Option<i64>,
    hash: [u8; 32],
    prev: [u8; 32],
    /// The record's contents, with its own `seq`, hash to its `hash`.
    hashes: bool,
}

/// A `(seq, hash)` vouched for by a valid signature.
#[derive(Debug, Clone)]
struct Anchor {
    seq: i64,
    hash: [u8; 32],
    hex: String,
}

/// What verifying a bundle found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleReport {
    pub ok: bool,
    pub records: u64,
    /// The last record in `records.jsonl`.
    pub head: Option<(i64, String)>,
    /// The id of the public key used.
    pub key_id: String,
    pub checkpoints: u64,
    pub checkpoints_verified: u64,
    pub manifest_verified: bool,
    /// The highest `seq` a valid signature covers.
    pub signed_head: Option<i64>,
    /// The first record that does not verify, by its position in the chain.
    pub first_bad: Option<BadRecord>,
    /// Problems with the bundle's files (signatures, digests, counts).
    pub problems: Vec<String>,
}

/// Verifies a bundle offline: the manifest's signature and digests, each checkpoint's
/// signature, and `records.jsonl` against the chain rules and the signed heads.
///
/// Every signed `(seq, hash)` is walked backwards through the `prev_hash` links of records
/// whose contents hash correctly, which fixes the authentic hash of every record it reaches.
/// Then the records are read in order; the first one that is unparsable, out of place, does
/// not hash, does not link, differs from the authentic hash at its `seq`, lies after the
/// highest signed record, or is missing below it, is named. A stretch rewritten and re-chained
/// before a checkpoint can only be located to "after the previous checkpoint that holds".
pub struct BundleVerifier<'k> {
    key: &'k AuditPublicKey,
    manifest: Option<Manifest>,
    manifest_ok: bool,
    anchors: Vec<Anchor>,
    checkpoints: u64,
    checkpoints_verified: u64,
    problems: Vec<String>,
    lines: Vec<Line>,
    by_hash: HashMap<[u8; 32], u32>,
    by_seq: HashMap<i64, u32>,
    sha: Sha256,
    last: Option<(i64, String)>,
}

impl<'k> BundleVerifier<'k> {
    /// `manifest` and `checkpoints` are the files' bytes, `None` when a file is missing.
    pub fn new(key: &'k AuditPublicKey, manifest: Option<&[u8]>, checkpoints: Option<&[u8]>) -> Self {
        let mut v = Self {
            key,
            manifest: None,
            manifest_ok: false,
            anchors: Vec::new(),
            checkpoints: 0,
            checkpoints_verified: 0,
            problems: Vec::new(),
            lines: Vec::new(),
            by_hash: HashMap::new(),
            by_seq: HashMap::new(),
            sha: Sha256::new(),
            last: None,
        };
        match manifest.map(serde_json::from_slice::<Manifest>) {
            None => v.problems.push("manifest.json is missing".into()),
            Some(Err(e)) => {
                v.problems.push(format!("manifest.json is not a bundle manifest: {}", text::quote(&e.to_string())));
            }
            Some(Ok(m)) => {
                if m.format != BUNDLE_FORMAT {
                    let format = text::quote(&m.format);
                    v.problems.push(format!("manifest.json has format `{format}`, expected `{BUNDLE_FORMAT}`"));
                }
                match key.verify_manifest(&m) {
                    Ok(()) => {
                        v.manifest_ok = true;
                        match hash32(&m.head_hash) {
                            Some(hash) => v.anchors.push(Anchor { seq: m.last_seq, hash, hex: m.head_hash.clone() }),
                            None => v.problems.push("manifest.json: `head_hash` is not a SHA-256 hash".into()),
                        }
                    }
                    Err(e) => v.problems.push(format!("manifest.json: {e}")),
                }
                v.manifest = Some(m);
            }
        }
        match checkpoints {
            None => v.problems.push("checkpoints.jsonl is missing".into()),
            Some(bytes) => {
                if let Some(m) = v.manifest.as_ref().filter(|_| v.manifest_ok) {
                    let sum = hex::encode(Sha256::digest(bytes));
                    if sum != m.checkpoints_sha256 {
                        v.problems.push(format!(
                            "checkpoints.jsonl has sha256 {sum}, the manifest signed {}: the file was changed",
                            m.checkpoints_sha256
                        ));
                    }
                }
                v.read_checkpoints(bytes);
            }
        }
        v
    }

    /// Records a problem found outside the files' contents (a missing `records.jsonl`, say).
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn read_checkpoints(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            self.checkpoints += 1;
            let n = i + 1;
            let c: Checkpoint = match serde_json::from_str(line) {
                Ok(c) => c,
                Err(_) => {
                    self.problems.push(format!("checkpoints.jsonl line {n} is not a checkpoint"));
                    continue;
                }
            };
            match (self.key.verify_checkpoint(&c), hash32(&c.head)) {
                (Ok(()), Some(hash)) => {
                    self.checkpoints_verified += 1;
                    self.anchors.push(Anchor { seq: c.seq, hash, hex: c.head });
                }
                (Ok(()), None) => self.problems.push(format!("checkpoints.jsonl line {n}: `head` is not a hash")),
                (Err(e), _) => self.problems.push(format!("checkpoints.jsonl line {n} (seq {}): {e}", c.seq)),
            }
        }
        if let Some(m) = self.manifest.as_ref().filter(|_| self.manifest_ok)
            && m.checkpoint_count != self.checkpoints
        {
            self.problems.push(format!(
                "checkpoints.jsonl has {} checkpoints, the manifest signed {}",
                self.checkpoints, m.checkpoint_count
            ));
        }
    }

    /// Feeds one raw line of `records.jsonl`, with its line break if it has one.
    pub fn push_line(&mut self, raw: &[u8]) {
        self.sha.update(raw);
        let text = String::from_utf8_lossy(raw);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let idx = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
        let line = match serde_json::from_str::<AuditRecord>(text) {
            Err(_) => Line { seq: None, hash: GENESIS32, prev: GENESIS32, hashes: false },
            Ok(r) => {
                let hashes = audit::hash(r.seq, &r.at, &r.entry, &r.prev_hash) == r.hash;
                let (hash, prev) = (hash32(&r.hash), hash32(&r.prev_hash));
                let line = Line {
                    seq: Some(r.seq),
                    hash: hash.unwrap_or(GENESIS32),
                    prev: prev.unwrap_or(GENESIS32),
                    hashes: hashes && hash.is_some() && prev.is_some(),
                };
                if line.hashes {
                    self.by_hash.entry(line.hash).or_insert(idx);
                }
                self.by_seq.entry(r.seq).or_insert(idx);
                self.last = Some((r.seq, r.hash));
                line
            }
        };
        self.lines.push(line);
    }

    pub fn finish(mut self) -> BundleReport {
        let n = self.lines.len() as i64;
        let records_sha = hex::encode(std::mem::take(&mut self.sha).finalize());
        if let Some(m) = self.manifest.as_ref().filter(|_| self.manifest_ok) {
            if m.records_sha256 != records_sha {
                self.problems.push(format!(
                    "records.jsonl has sha256 {records_sha}, the manifest signed {}: the file was changed",
                    m.records_sha256
                ));
            }
            if m.record_count != self.lines.len() as u64 {
                self.problems.push(format!(
                    "records.jsonl has {} lines, the manifest signed {} records",
                    self.lines.len(),
                    m.record_count
                ));
            }
            if m.first_seq != 1 {
                self.problems.push(format!("the manifest's first_seq is {}, a bundle starts at 1", m.first_seq));
            }
        }
        let expected = self.authentic_hashes();
        let first_bad = self.first_bad(&expected);
        let signed_head = self.anchors.iter().map(|a| a.seq).max();
        BundleReport {
            ok: first_bad.is_none() && self.problems.is_empty(),
            records: self.lines.len() as u64,
            head: self.last.clone().filter(|_| n > 0),
            key_id: self.key.key_id().to_string(),
            checkpoints: self.checkpoints,
            checkpoints_verified: self.checkpoints_verified,
            manifest_verified: self.manifest_ok,
            signed_head,
            first_bad,
            problems: self.problems,
        }
    }

    /// The authentic hash of each `seq` reachable from a signed anchor, with the anchor's seq.
    fn authentic_hashes(&mut self) -> HashMap<i64, ([u8; 32], i64)> {
        let mut expected: HashMap<i64, ([u8; 32], i64)> = HashMap::new();
        let mut anchors = self.anchors.clone();
        anchors.sort_by_key(|a| std::cmp::Reverse(a.seq));
        for a in &anchors {
            let (mut seq, mut hash) = (a.seq, a.hash);
            while seq > 0 {
                if let Some((known, from)) = expected.get(&seq) {
                    if *known != hash {
                        self.problems.push(format!(
                            "the signatures at seq {from} and seq {} disagree about record {seq}: the key signed two histories",
                            a.seq
                        ));
                    }
                    break;
                }
                expected.insert(seq, (hash, a.seq));
                let found = self.by_hash.get(&hash).and_then(|&i| self.lines.get(i as usize));
                match found {
                    Some(l) if l.seq == Some(seq) => {
                        hash = l.prev;
                        seq -= 1;
                    }
                    _ => break,
                }
            }
        }
        expected
    }

    fn first_bad(&self, expected: &HashMap<i64, ([u8; 32], i64)>) -> Option<BadRecord> {
        let signed_head = self.anchors.iter().map(|a| a.seq).max();
        let bad = |seq: i64, reason: String| {
            Some(BadRecord { seq, line: u64::try_from(seq).ok().filter(|_| seq > 0), reason })
        };
        let mut prev = GENESIS32;
        for (i, l) in self.lines.iter().enumerate() {
            let seq = i as i64 + 1;
            let Some(s) = l.seq else {
                return bad(seq, format!("line {seq} is not an audit record"));
            };
            if s != seq {
                let reason = match self.by_seq.get(&seq) {
                    Some(&j) => format!(
                        "line {seq} holds record {s} where record {seq} belongs (record {seq} is at line {}): records were reordered or inserted",
                        j + 1
                    ),
                    None if s > seq => format!("record {seq} is missing (line {seq} holds record {s}): deleted"),
                    None => format!("line {seq} holds record {s} again where record {seq} belongs: inserted"),
                };
                return bad(seq, reason);
            }
            if !l.hashes {
                return bad(seq, format!("record {seq} does not match its hash (edited)"));
            }
            if l.prev != prev {
                return bad(
                    seq,
                    format!(
                        "record {seq}'s prev_hash does not match record {}'s hash: a record before it was removed, inserted or reordered",
                        seq - 1
                    ),
                );
            }
            if let Some((want, from)) = expected.get(&seq)
                && *want != l.hash
            {
                let reason = if *from == seq {
                    let since = self
                        .anchors
                        .iter()
                        .filter(|a| {
                            a.seq < seq
                                && a.seq
                                    .checked_sub(1)
                                    .and_then(|k| usize::try_from(k).ok())
                                    .and_then(|k| self.lines.get(k))
                                    .is_some_and(|l| l.hash == a.hash)
                        })
                        .map(|a| a.seq)
                        .max()
                        .map_or_else(
                            || "from the start".to_string(),
                            |c| format!("after seq {c} (the last signed record that holds)"),
                        );
                    let signed = self.anchors.iter().find(|a| a.seq == seq).map_or(String::new(), |a| a.hex.clone());
                    format!(
                        "record {seq} does not have the hash signed for seq {seq} ({signed}): the records re-chain, so the history was rewritten {since}"
                    )
                } else {
                    format!(
                        "record {seq} is not the record the signed chain (up to seq {from}) links to: it was altered, replaced or inserted"
                    )
                };
                return bad(seq, reason);
            }
            match signed_head {
                Some(h) if seq > h => {
                    return bad(
                        seq,
                        format!(
                            "record {seq} comes after the signed head (seq {h}): no signature covers it (appended)"
                        ),
                    );
                }
                None => return bad(seq, format!("no valid signature covers record {seq}")),
                _ => {}
            }
            prev = l.hash;
        }
        match signed_head {
            Some(h) if h > n_of(&self.lines) => Some(BadRecord {
                seq: n_of(&self.lines) + 1,
                line: None,
                reason: format!(
                    "records {}..={h} are missing: records.jsonl ends at seq {}, but seq {h} is signed (truncated)",
                    n_of(&self.lines) + 1,
                    n_of(&self.lines)
                ),
            }),
            _ => None,
        }
    }
}

fn n_of(lines: &[Line]) -> i64 {
    lines.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, hash};

    fn chain(n: i64) -> Vec<AuditRecord> {
        chain_of(n, |seq| format!("E{seq}"))
    }

    fn chain_of(n: i64, identity: impl Fn(i64) -> String) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry::new("system", "import", "ok").identity(&identity(seq));
                let at = format!("2026-11-21T00:00:{seq:02}.000000Z");
                let h = hash(seq, &at, &entry, &prev);
                let r = AuditRecord { seq, at, entry, prev_hash: prev.clone(), hash: h.clone() };
                prev = h;
                r
            })
            .collect()
    }

    fn signer() -> AuditSigner {
        AuditSigner::from_seed(&[7u8; 32])
    }

    #[test]
    fn keys_round_trip_through_their_files_and_never_show_the_secret() {
        let s = signer();
        let again = AuditSigner::parse(&s.to_file_text()).unwrap();
        assert_eq!(again.key_id(), s.key_id());
        let public = AuditPublicKey::parse(&s.public().to_file_text()).unwrap();
        assert_eq!(&public, s.public());
        let secret_b64 = B64.encode([7u8; 32]);
        assert!(!format!("{s:?}").contains(&secret_b64));
        assert!(!s.public().to_file_text().contains(&secret_b64));
        assert_eq!(AuditSigner::parse("garbage").unwrap_err(), KeyError::NotASigningKey);
        assert_eq!(AuditPublicKey::parse(&s.to_file_text()).unwrap_err(), KeyError::NotAPublicKey);
        assert!(!KeyError::NotASigningKey.to_string().contains(&secret_b64));
    }

    #[test]
    fn a_checkpoint_verifies_and_any_changed_field_does_not() {
        let s = signer();
        let c = s.checkpoint(12, &"ab".repeat(32), "2026-11-21T00:00:00.000000Z");
        assert_eq!(s.public().verify_checkpoint(&c), Ok(()));
        let edits: [fn(&mut Checkpoint); 3] =
            [|c| c.seq += 1, |c| c.head = "cd".repeat(32), |c| c.at = "2026-11-22T00:00:00.000000Z".into()];
        for edit in edits {
            let mut bad = c.clone();
            edit(&mut bad);
            assert_eq!(s.public().verify_checkpoint(&bad), Err(SignatureProblem::Invalid));
        }
        let other = AuditSigner::from_seed(&[8u8; 32]);
        assert!(matches!(other.public().verify_checkpoint(&c), Err(SignatureProblem::OtherKey { .. })));
        // A manifest signature is never accepted as a checkpoint signature (domain separation).
        let mut m = manifest_for(&chain(1));
        s.sign_manifest(&mut m);
        let forged = Checkpoint { signature: m.signature.clone(), ..c };
        assert_eq!(s.public().verify_checkpoint(&forged), Err(SignatureProblem::Invalid));
    }

    fn manifest_for(records: &[AuditRecord]) -> Manifest {
        Manifest {
            format: BUNDLE_FORMAT.into(),
            created_at: "2026-11-21T00:00:00.000000Z".into(),
            records_sha256: String::new(),
            record_count: records.len() as u64,
            first_seq: 1,
            last_seq: records.last().map_or(0, |r| r.seq),
            head_hash: records.last().map_or_else(String::new, |r| r.hash.clone()),
            checkpoints_sha256: String::new(),
            checkpoint_count: 0,
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn checkpoints_catch_a_rechained_rewrite_and_truncation() {
        let s = signer();
        let good = chain(10);
        let cps = vec![s.checkpoint(4, &good[3].hash, &good[3].at), s.checkpoint(8, &good[7].hash, &good[7].at)];
        let lookup = |records: &[AuditRecord]| {
            let m: HashMap<i64, String> = records.iter().map(|r| (r.seq, r.hash.clone())).collect();
            move |seq: i64| m.get(&seq).cloned()
        };
        let r = check_checkpoints(s.public(), &cps, &lookup(&good), Some(10));
        assert_eq!((r.verified, r.last_verified, r.unsigned_records, r.first_bad), (2, Some(8), 2, None));

        // Record 6 rewritten and everything after it re-chained: the chain alone verifies.
        let mut rewritten = good.clone();
        rewritten[5].entry.outcome = "approved".into();
        let mut prev = rewritten[4].hash.clone();
        for r in rewritten.iter_mut().skip(5) {
            r.prev_hash = prev.clone();
            r.hash = hash(r.seq, &r.at, &r.entry, &r.prev_hash);
            prev = r.hash.clone();
        }
        let mut v = audit::Verifier::default();
        assert!(rewritten.iter().all(|r| v.push(r).is_ok()));
        let r = check_checkpoints(s.public(), &cps, &lookup(&rewritten), Some(10));
        let bad = r.first_bad.unwrap();
        assert_eq!(bad.seq, 8);
        assert!(bad.reason.contains("after seq 4"), "{}", bad.reason);

        let r = check_checkpoints(s.public(), &cps, &lookup(&good[..6]), Some(6));
        assert_eq!(r.first_bad.map(|b| b.seq), Some(7));
    }

    fn lines(records: &[AuditRecord]) -> Vec<String> {
        records.iter().map(|r| serde_json::to_string(r).unwrap()).collect()
    }

    /// A bundle of `records` signed at its last record, as `(manifest, checkpoints, lines)`.
    fn bundle(records: &[AuditRecord]) -> (Vec<u8>, Vec<u8>, Vec<String>) {
        let s = signer();
        let last = records.last().unwrap();
        let cps = format!(
            "{}\n{}\n",
            serde_json::to_string(&s.checkpoint(3, &records[2].hash, &records[2].at)).unwrap(),
            serde_json::to_string(&s.checkpoint(last.seq, &last.hash, &last.at)).unwrap()
        );
        let lines = lines(records);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut m = manifest_for(records);
        m.records_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        m.checkpoints_sha256 = hex::encode(Sha256::digest(cps.as_bytes()));
        m.checkpoint_count = 2;
        s.sign_manifest(&mut m);
        (serde_json::to_vec(&m).unwrap(), cps.into_bytes(), lines)
    }

    fn verify(manifest: &[u8], cps: &[u8], lines: &[String]) -> BundleReport {
        let s = signer();
        let mut v = BundleVerifier::new(s.public(), Some(manifest), Some(cps));
        for l in lines {
            v.push_line(format!("{l}\n").as_bytes());
        }
        v.finish()
    }

    /// Tampers with the record lines of a good bundle and expects the first bad `seq`.
    fn check(tamper: impl Fn(&mut Vec<AuditRecord>) -> Vec<String>, seq: i64) {
        let good = chain(8);
        let (m, c, _) = bundle(&good);
        let mut records = good.clone();
        let tampered = tamper(&mut records);
        let r = verify(&m, &c, &tampered);
        assert!(!r.ok);
        assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(seq), "{r:#?}");
    }

    #[test]
    fn a_good_bundle_verifies() {
        let (m, c, l) = bundle(&chain(8));
        let r = verify(&m, &c, &l);
        assert!(r.ok, "{r:#?}");
        assert_eq!((r.records, r.checkpoints_verified, r.signed_head), (8, 2, Some(8)));
    }

    #[test]
    fn bundle_tampering_names_the_first_bad_record() {
        // Edited in place.
        check(
            |r| {
                r[4].entry.outcome = "approved".into();
                lines(r)
            },
            5,
        );
        // Edited and re-hashed (the next record's link is then what breaks, but 5 is named).
        check(
            |r| {
                r[4].entry.outcome = "approved".into();
                r[4].hash = hash(5, &r[4].at, &r[4].entry, &r[4].prev_hash);
                lines(r)
            },
            5,
        );
        // Deleted.
        check(
            |r| {
                r.remove(3);
                lines(r)
            },
            4,
        );
        // Reordered.
        check(
            |r| {
                r.swap(2, 5);
                lines(r)
            },
            3,
        );
        // A forged, correctly chained record inserted before record 4.
        check(
            |r| {
                let mut f = r[3].clone();
                f.entry.actor = "user:mallory".into();
                f.hash = hash(4, &f.at, &f.entry, &f.prev_hash);
                r.insert(3, f);
                lines(r)
            },
            4,
        );
        // A correctly chained record appended after the signed head.
        check(
            |r| {
                let last = r[7].clone();
                let entry = AuditEntry::new("user:mallory", "approval.approved", "approved");
                let h = hash(9, &last.at, &entry, &last.hash);
                r.push(AuditRecord { seq: 9, at: last.at, entry, prev_hash: last.hash, hash: h });
                lines(r)
            },
            9,
        );
        // Truncated.
        check(
            |r| {
                r.truncate(6);
                lines(r)
            },
            7,
        );
    }

    #[test]
    fn a_truncated_bundle_with_a_rewritten_manifest_fails_its_signature() {
        let good = chain(8);
        let (m, c, l) = bundle(&good);
        let mut manifest: Manifest = serde_json::from_slice(&m).unwrap();
        let kept = &l[..6];
        let text: String = kept.iter().map(|l| format!("{l}\n")).collect();
        manifest.records_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        manifest.record_count = 6;
        manifest.last_seq = 6;
        manifest.head_hash = good[5].hash.clone();
        let r = verify(&serde_json::to_vec(&manifest).unwrap(), &c, kept);
        assert!(!r.ok);
        assert!(r.problems.iter().any(|p| p.contains("manifest.json: the signature does not verify")), "{r:#?}");
        assert_eq!(r.first_bad.map(|b| b.seq), Some(7));
    }

    #[test]
    fn export_verification_reports_every_gap() {
        let good = lines(&chain(9));
        let check = |keep: &[usize], header: Option<ExportHeader>| {
            let mut v = ExportVerifier::new(None);
            if let Some(h) = header {
                v.push_line(&h.line());
            }
            for &i in keep {
                v.push_line(&good[i]);
            }
            v.finish()
        };
        let all: Vec<usize> = (0..9).collect();
        assert!(check(&all, None).ok);
        let r = check(&[0, 1, 4, 5, 8], None);
        assert!(!r.ok);
        assert_eq!(r.gaps, vec![Gap { from: 3, to: 4 }, Gap { from: 7, to: 8 }]);
        let r = check(&[2, 3], None);
        assert_eq!(r.gaps, vec![Gap { from: 1, to: 2 }]);
        // A header cannot switch off the completeness checks it does not explain: one naming no
        // filter (or `filtered: false`) still means the whole chain.
        let unexplained = ExportHeader { filtered: true, identity: None, since: None };
        assert_eq!(check(&[0, 1, 4, 5, 8], Some(unexplained)).gaps.len(), 2);
        let since = ExportHeader { filtered: true, identity: None, since: Some("2026-01-01T00:00:00.000000Z".into()) };
        let r = check(&[3, 4, 5], Some(since.clone()));
        assert!(r.gaps.is_empty(), "a time-filtered export may start anywhere: {r:?}");
        assert_eq!(check(&[3, 4, 6], Some(since)).gaps, [Gap { from: 6, to: 6 }], "but has no holes");
        // An export filtered by identity cannot prove completeness, but each record still verifies.
        let same = lines(&chain_of(9, |_| "E1".to_string()));
        let sparse = |keep: &[usize]| {
            let mut v = ExportVerifier::new(None);
            v.push_line(&ExportHeader { filtered: true, identity: Some("E1".into()), since: None }.line());
            for &i in keep {
                v.push_line(&same[i]);
            }
            v.finish()
        };
        let r = sparse(&[0, 1, 4, 5, 8]);
        assert!(r.ok && r.gaps.is_empty() && r.filter.is_some() && r.links == 2, "{r:#?}");
        let r = sparse(&[0, 4, 1]);
        assert_eq!(r.bad.first().map(|b| b.seq), Some(2));
    }

    #[test]
    fn a_rechained_rewrite_in_a_bundle_is_located_between_checkpoints() {
        let good = chain(8);
        let (m, c, _) = bundle(&good);
        let mut r = good.clone();
        r[4].entry.outcome = "approved".into();
        let mut prev = r[3].hash.clone();
        for x in r.iter_mut().skip(4) {
            x.prev_hash = prev.clone();
            x.hash = hash(x.seq, &x.at, &x.entry, &x.prev_hash);
            prev = x.hash.clone();
        }
        let report = verify(&m, &c, &lines(&r));
        let bad = report.first_bad.unwrap();
        assert_eq!(bad.seq, 8);
        assert!(bad.reason.contains("rewritten after seq 3"), "{}", bad.reason);
    }

    proptest::proptest! {
        #[test]
        fn the_verifiers_never_panic(junk in proptest::collection::vec("\\PC{0,120}", 0..6), at in 0usize..8) {
            let good = chain(6);
            let (m, c, mut l) = bundle(&good);
            let at = at.min(l.len());
            for (i, j) in junk.iter().enumerate() {
                l.insert((at + i).min(l.len()), j.clone());
            }
            let _ = verify(&m, &c, &l);
            let _ = verify(junk.concat().as_bytes(), junk.join("\n").as_bytes(), &l);
            let mut v = ExportVerifier::new(None);
            for line in &l {
                v.push_line(line);
            }
            let _ = v.finish();
        }
    }

    #[test]
    fn what_a_report_echoes_from_a_file_is_escaped() {
        let good = chain(3);
        let (m, c, l) = bundle(&good);
        let mut manifest: serde_json::Value = serde_json::from_slice(&m).unwrap();
        manifest["format"] = "\u{1b}[2J".into();
        manifest["key_id"] = "\u{1b}]0;owned\u{7}".into();
        let r = verify(&serde_json::to_vec(&manifest).unwrap(), &c, &l);
        let text = r.problems.join("\n");
        assert!(!text.contains('\u{1b}') && text.contains("\\u{1b}"), "{text}");
        manifest["extra\u{1b}"] = 1.into();
        let r = verify(&serde_json::to_vec(&manifest).unwrap(), &c, &l);
        assert!(r.problems.iter().all(|p| !p.contains('\u{1b}')), "{r:#?}");
    }

    #[test]
    fn hostile_seq_values_never_panic() {
        let mut records = chain(2);
        records[0].seq = i64::MAX;
        records[1].seq = i64::MIN;
        let text = lines(&records);
        let mut v = ExportVerifier::new(Some((i64::MAX, String::new())));
        for l in &text {
            v.push_line(l);
        }
        v.push_line(&text[0]);
        assert!(!v.finish().ok);
        let (m, c, _) = bundle(&chain(4));
        assert!(!verify(&m, &c, &text).ok);
    }
}

//! `tenure audit`: verify, checkpoint, export. Flags and printing only; the work, and the
//! reports, are in `tenure_engine::evidence`.

use crate::output::{Format, key_notes, print_json};
use crate::support::UsageError;
use anyhow::{Context as _, Result};
use std::path::Path;
use std::process::ExitCode;
use tenure_core::evidence::{AuditPublicKey, BadRecord};
use tenure_engine::app::App;
use tenure_engine::evidence::{self, EvidenceError};
use tenure_store::AuditFilter;

/// How many problems the text output lists before summarising the rest.
const SHOWN: usize = 20;

/// `SEQ:HASH` as printed by `audit verify`.
pub fn parse_head(head: &str) -> Result<(i64, String)> {
    let Some((seq, hash)) = head.split_once(':') else {
        return Err(UsageError(format!("--expect-head `{head}` is not SEQ:HASH")).into());
    };
    let seq: i64 = seq.parse().map_err(|_| UsageError(format!("--expect-head `{head}`: `{seq}` is not a number")))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(UsageError(format!("--expect-head `{head}`: the hash is not 64 hex digits")).into());
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// `--since`: a date is its midnight UTC; a time is normalised to the stored form.
pub fn normalize_since(s: &str) -> Result<String> {
    if let Some(d) = tenure_core::date::parse_date(s).filter(|_| s.len() == 10) {
        return Ok(format!("{d}T00:00:00.000000Z"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .map_err(|_| UsageError(format!("--since `{s}` is not YYYY-MM-DD or an RFC 3339 time")).into())
}

/// A public key given on the command line: unreadable or malformed is a usage error.
fn given_public_key(path: &Path) -> Result<AuditPublicKey> {
    evidence::read_public_key(path).map_err(|e| UsageError(format!("--public-key: {e}")).into())
}

fn bad_line(b: &BadRecord) -> String {
    match b.line {
        Some(l) => format!("seq {} (line {l}): {}", b.seq, b.reason),
        None => format!("seq {}: {}", b.seq, b.reason),
    }
}

/// The store's chain and checkpoints, with the public key given or the one beside the signing
/// key. `app` is opened read-only.
pub fn verify_store(app: &App, head: Option<(i64, String)>, public_key: Option<&Path>, f: Format) -> Result<ExitCode> {
    let loaded = app.loaded();
    let key = match public_key {
        Some(p) => Some(given_public_key(p)?),
        None => {
            let p = evidence::public_key_path(&loaded.signing_key_path());
            if p.exists() { Some(evidence::read_public_key(&p)?) } else { None }
        }
    };
    let r = evidence::verify_store(app.store_ref(), key.as_ref(), head)?;
    if f == Format::Json {
        print_json(&serde_json::json!({
            "ok": r.ok,
            "records": r.records,
            "first_bad": r.first_bad,
            "head": r.head,
            "expected_head": r.expected_head.as_ref().map(|(ok, why)| serde_json::json!({"ok": ok, "detail": why})),
            "checkpoints": r.checkpoints,
            "key_id": r.key_id,
        }))?;
    } else {
        match &r.first_bad {
            None => outln!("audit chain verified: {} records, each hash-chained to the one before", r.records),
            Some(b) => {
                outln!("audit chain BROKEN at seq {}: {} ({} records verified before it)", b.seq, b.reason, r.records)
            }
        }
        // A head is something to keep and compare later; a broken chain has none worth keeping.
        match (&r.head, &r.first_bad) {
            (Some((seq, hash)), None) => outln!("head: {seq}:{hash}"),
            (Some((seq, hash)), Some(_)) => outln!("last record (not trustworthy: the chain is broken): {seq}:{hash}"),
            (None, _) => {}
        }
        let c = &r.checkpoints;
        if let Some(b) = &c.first_bad {
            outln!("history REWRITTEN at seq {}: {}", b.seq, b.reason);
        }
        for p in c.problems.iter().take(SHOWN) {
            outln!("checkpoint FAILED: {p}");
        }
        if c.problems.len() > SHOWN {
            outln!("... and {} more failed checkpoints (`--format json` lists them all)", c.problems.len() - SHOWN);
        }
        match (c.total, &r.key_id, c.last_verified) {
            (0, _, _) => outln!(
                "checkpoints: none; the whole chain is protected by its hashes only (`tenure audit checkpoint` signs the head)"
            ),
            (_, None, _) => outln!(
                "checkpoints: {} stored, none checked: no public key at `{}` (pass --public-key FILE)",
                c.total,
                evidence::public_key_path(&loaded.signing_key_path()).display()
            ),
            (_, Some(k), Some(last)) => outln!(
                "checkpoints: {} of {} verified with key {k}; the last signs seq {last}; {}",
                c.verified,
                c.total,
                match c.unsigned_records {
                    0 => "no record after it".to_string(),
                    n => format!("{n} record(s) after it are protected by the hash chain only"),
                }
            ),
            (_, Some(k), None) => {
                outln!("checkpoints: none of {} holds with key {k}; nothing is signed", c.total)
            }
        }
        if let Some((ok, why)) = &r.expected_head {
            outln!("expected head: {} ({why})", if *ok { "present" } else { "MISSING" });
        }
    }
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn verify_export(file: &Path, head: Option<(i64, String)>, f: Format) -> Result<ExitCode> {
    if !file.is_file() {
        return Err(UsageError(format!("--export `{}` is not a file", file.display())).into());
    }
    let r = evidence::verify_export(file, head)?;
    if f == Format::Json {
        print_json(&r)?;
        return Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    for g in r.gaps.iter().take(SHOWN) {
        if g.from == g.to {
            outln!("export GAP: record {} is missing", g.from);
        } else {
            outln!("export GAP: records {}..={} are missing", g.from, g.to);
        }
    }
    if r.gaps.len() > SHOWN {
        outln!("... and {} more gaps (`--format json` lists them all)", r.gaps.len() - SHOWN);
    }
    for b in r.bad.iter().take(SHOWN) {
        outln!("export BROKEN at {}", bad_line(b));
    }
    let more = (r.bad.len().saturating_sub(SHOWN) as u64) + r.more_bad;
    if more > 0 {
        outln!("... and {more} more bad records");
    }
    let what = match &r.filter {
        None => "full export".to_string(),
        Some(h) => {
            let mut by = Vec::new();
            if let Some(i) = &h.identity {
                by.push(format!("identity `{}`", tenure_core::text::quote(i)));
            }
            if let Some(s) = &h.since {
                by.push(format!("since {}", tenure_core::text::quote(s)));
            }
            format!("filtered export ({})", by.join(", "))
        }
    };
    if r.ok {
        outln!(
            "export verified: {what}, {} records, each matching its hash; {} consecutive links checked",
            r.records,
            r.links
        );
    } else {
        outln!("export FAILED: {what}, {} records read, {} gap(s), {} bad record(s)", r.records, r.gaps.len(), {
            r.bad.len() as u64 + r.more_bad
        });
    }
    if r.filter.is_some() {
        outln!("completeness cannot be proven for a filtered export: records it leaves out are not checked");
    }
    match &r.head {
        Some((seq, hash)) if r.ok => outln!("head: {seq}:{hash}"),
        Some((seq, hash)) => outln!("last record (not trustworthy: the export failed): {seq}:{hash}"),
        None => {}
    }
    if let Some((ok, why)) = &r.expected_head {
        outln!("expected head: {} ({why})", if *ok { "present" } else { "MISSING" });
    }
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn verify_bundle(dir: &Path, public_key: Option<&Path>, f: Format) -> Result<ExitCode> {
    if !dir.is_dir() {
        return Err(UsageError(format!("--bundle `{}` is not a directory", dir.display())).into());
    }
    let Some(key_path) = public_key else {
        return Err(UsageError("--bundle needs --public-key FILE".into()).into());
    };
    let key = given_public_key(key_path)?;
    let r = evidence::verify_bundle(dir, &key)?;
    if f == Format::Json {
        print_json(&r)?;
    } else {
        if let Some(b) = &r.first_bad {
            outln!("bundle BROKEN at {}", bad_line(b));
        }
        for p in r.problems.iter().take(SHOWN) {
            outln!("bundle FAILED: {p}");
        }
        if r.problems.len() > SHOWN {
            outln!("... and {} more problems (`--format json` lists them all)", r.problems.len() - SHOWN);
        }
        if r.ok {
            outln!(
                "bundle verified with key {}: {} records, signed up to seq {}; manifest and {} checkpoint(s) signed",
                r.key_id,
                r.records,
                r.signed_head.unwrap_or(0),
                r.checkpoints_verified
            );
        } else {
            outln!(
                "bundle FAILED with key {}: {} records read; manifest signature {}; {} of {} checkpoint(s) verified",
                r.key_id,
                r.records,
                if r.manifest_verified { "verified" } else { "NOT verified" },
                r.checkpoints_verified,
                r.checkpoints
            );
        }
        match &r.head {
            Some((seq, hash)) if r.ok => outln!("head: {seq}:{hash}"),
            Some((seq, hash)) => outln!("last record (not trustworthy: the bundle failed): {seq}:{hash}"),
            None => {}
        }
    }
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Signs the chain's head as `who`, creating the signing key on first use.
pub fn checkpoint(app: &App, who: &str, f: Format) -> Result<ExitCode> {
    let path = app.loaded().signing_key_path();
    let keys = evidence::ensure_signing_key(&path)?;
    let c = evidence::checkpoint(app.store_ref(), &keys.signer, &format!("user:{who}"))?;
    if f == Format::Json {
        print_json(&c)?;
    } else {
        key_notes(&keys, &path);
        outln!("checkpoint: seq {} ({}) signed with key {} at {}", c.seq, c.head, c.key_id, c.at);
        outln!("head: {}:{}", c.seq, c.head);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes an evidence bundle into `dir` after signing a fresh checkpoint as `who`.
pub fn export_bundle(app: &App, dir: &Path, who: &str, f: Format) -> Result<ExitCode> {
    let path = app.loaded().signing_key_path();
    let keys = evidence::ensure_signing_key(&path)?;
    let s = evidence::write_bundle(app.store_ref(), &keys.signer, dir, &format!("user:{who}"))
        .with_context(|| format!("cannot export a bundle into `{}`", dir.display()))?;
    if f == Format::Json {
        print_json(&s)?;
    } else {
        key_notes(&keys, &path);
        outln!(
            "bundle written to `{}`: {} records (seq {}..={}), {} checkpoint(s), signed with key {}",
            s.dir,
            s.records,
            s.first_seq,
            s.last_seq,
            s.checkpoints,
            s.key_id
        );
        outln!("head: {}:{}", s.last_seq, s.head_hash);
        outln!(
            "verify with: tenure audit verify --bundle {} --public-key {}",
            s.dir,
            evidence::public_key_path(&path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams the records `filter` selects to stdout as JSONL or CSV. `app` is opened read-only.
pub fn export(app: &App, filter: &AuditFilter, f: Format) -> Result<ExitCode> {
    let store = app.store_ref();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let res = match f {
        Format::Csv => evidence::write_csv(store, filter, &mut out),
        _ => evidence::write_jsonl(store, filter, &mut out),
    };
    match res {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // `tenure audit export | head`: the reader went away; that is not a failure.
        Err(EvidenceError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

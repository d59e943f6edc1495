//! `audit_export` and `audit_bundle`: the offline verifiers of JSONL exports and evidence
//! bundles (`tenure_core::evidence`).

use arbitrary::{Result, Unstructured};
use sha2::Digest as _;
use tenure_core::audit::{self, AuditEntry, AuditRecord};
use tenure_core::evidence::{AuditSigner, BUNDLE_FORMAT, BundleVerifier, Checkpoint, ExportVerifier, Manifest};

/// A chain of records built from fuzz data, hashed and linked as the store does.
fn chain(u: &mut Unstructured<'_>) -> Result<Vec<AuditRecord>> {
    let n = u.int_in_range(1..=12)?;
    let mut prev = audit::GENESIS.to_string();
    let mut out = Vec::new();
    for seq in 1..=n {
        let opt = |u: &mut Unstructured<'_>| -> Result<Option<String>> {
            Ok(if u.arbitrary()? { Some(u.arbitrary::<&str>()?.to_string()) } else { None })
        };
        let entry = AuditEntry {
            actor: u.arbitrary::<&str>()?.to_string(),
            action: u.arbitrary::<&str>()?.to_string(),
            identity: opt(u)?,
            target: opt(u)?,
            entitlement: opt(u)?,
            reason: opt(u)?,
            approver: opt(u)?,
            outcome: u.arbitrary::<&str>()?.to_string(),
        };
        let at = format!("2026-11-21T08:00:{:02}.000000Z", seq % 60);
        let hash = audit::hash(seq, &at, &entry, &prev);
        out.push(AuditRecord { seq, at, entry, prev_hash: prev, hash: hash.clone() });
        prev = hash;
    }
    Ok(out)
}

fn lines(records: &[AuditRecord]) -> Vec<String> {
    records.iter().filter_map(|r| serde_json::to_string(r).ok()).collect()
}

/// Damages `records` in one of the ways a verifier must notice — a field edited without
/// recomputing the hash, a record other than the last deleted, two neighbours swapped — and
/// says which, or leaves them alone (`None`).
fn damage(u: &mut Unstructured<'_>, records: &mut Vec<AuditRecord>) -> Result<Option<String>> {
    let n = records.len();
    Ok(match u.int_in_range(0..=2)? {
        0 => {
            let i = u.choose_index(n)?;
            if let Some(r) = records.get_mut(i) {
                r.entry.actor.push('x');
            }
            Some(format!("record {} edited", i + 1))
        }
        1 if n >= 2 => {
            let i = u.choose_index(n - 1)?;
            records.remove(i);
            Some(format!("record {} deleted", i + 1))
        }
        2 if n >= 2 => {
            let i = u.choose_index(n - 1)?;
            records.swap(i, i + 1);
            Some(format!("records {} and {} swapped", i + 1, i + 2))
        }
        _ => None,
    })
}

/// Mode 0: `data` is an export, line by line; the verifier must not panic and reports `ok`
/// only with nothing bad in it. Mode 1: a chain made from `data` verifies, with its head
/// expected; damaged (an edit, a deletion, a swap), it never verifies.
pub fn audit_export(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let mut v = ExportVerifier::new(None);
        for line in String::from_utf8_lossy(rest).lines() {
            v.push_line(line);
        }
        let report = v.finish();
        assert!(!report.ok || (report.bad.is_empty() && report.gaps.is_empty()), "ok with problems: {report:?}");
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok(mut records) = chain(&mut u) else {
        return;
    };
    let head = records.last().map(|r| (r.seq, r.hash.clone()));
    let verify = |records: &[AuditRecord]| {
        let mut v = ExportVerifier::new(head.clone());
        for line in lines(records) {
            v.push_line(&line);
        }
        v.finish()
    };
    let report = verify(&records);
    assert!(report.ok, "a sound chain does not verify: {report:?}");
    assert_eq!(report.records, records.len() as u64);
    if let Ok(Some(d)) = damage(&mut u, &mut records) {
        let report = verify(&records);
        assert!(!report.ok, "a chain with {d} verifies: {report:?}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn signer() -> AuditSigner {
    AuditSigner::from_seed(&[7; 32])
}

/// Mode 0: `data` is a bundle's three files (manifest, checkpoints, records), and whatever
/// manifest and checkpoints parse are signed again with the verifier's key, so the fuzzer
/// reaches everything behind the signatures. A bundle reported `ok` must hold a whole chain
/// from record 1 that the JSONL export verifier accepts too. Mode 1: a bundle made from a
/// chain made from `data`, with checkpoints, verifies; any damaged record makes it fail.
pub fn audit_bundle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signer = signer();
    let mut u = Unstructured::new(rest);
    let (manifest, checkpoints, records) = if mode % 2 == 0 {
        let (Ok(m), Ok(c)) = (u.arbitrary::<&[u8]>(), u.arbitrary::<&[u8]>()) else {
            return;
        };
        let records = u.take_rest().to_vec();
        (resign_manifest(&signer, m), resign_checkpoints(&signer, c), records)
    } else {
        let Ok(mut chain) = chain(&mut u) else {
            return;
        };
        let damaged = damage(&mut u, &mut chain).unwrap_or_default();
        let (m, c, r) = bundle(&signer, &chain, &mut u);
        let report = verify(&signer, &m, &c, &r);
        match damaged {
            None => assert!(report.ok, "a sound bundle does not verify: {report:?}"),
            Some(d) => assert!(!report.ok, "a bundle with {d} verifies: {report:?}"),
        }
        return;
    };
    let report = verify(&signer, &manifest, &checkpoints, &records);
    if report.ok {
        let mut v = ExportVerifier::new(None);
        for line in String::from_utf8_lossy(&records).lines() {
            v.push_line(line);
        }
        let export = v.finish();
        assert!(export.ok, "a bundle verifies but its records do not: {report:?} {export:?}");
    }
}

fn verify(
    signer: &AuditSigner,
    manifest: &[u8],
    checkpoints: &[u8],
    records: &[u8],
) -> tenure_core::evidence::BundleReport {
    let mut v = BundleVerifier::new(signer.public(), Some(manifest), Some(checkpoints));
    for line in records.split_inclusive(|&b| b == b'\n') {
        v.push_line(line);
    }
    v.finish()
}

fn resign_manifest(signer: &AuditSigner, bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Manifest>(bytes) {
        Ok(mut m) => {
            signer.sign_manifest(&mut m);
            serde_json::to_vec(&m).unwrap_or_default()
        }
        Err(_) => bytes.to_vec(),
    }
}

fn resign_checkpoints(signer: &AuditSigner, bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for line in text.lines() {
        match serde_json::from_str::<Checkpoint>(line) {
            Ok(c) => {
                out.push_str(&serde_json::to_string(&signer.checkpoint(c.seq, &c.head, &c.at)).unwrap_or_default())
            }
            Err(_) => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// A bundle of `chain` as `tenure audit bundle` writes one, with checkpoints at seqs chosen
/// from `u`, signed by `signer`.
fn bundle(signer: &AuditSigner, chain: &[AuditRecord], u: &mut Unstructured<'_>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let records: String = lines(chain).iter().map(|l| format!("{l}\n")).collect();
    let mut checkpoints = String::new();
    let mut count = 0;
    for r in chain {
        if u.ratio(1, 3).unwrap_or(false) {
            let c = signer.checkpoint(r.seq, &r.hash, &r.at);
            checkpoints.push_str(&serde_json::to_string(&c).unwrap_or_default());
            checkpoints.push('\n');
            count += 1;
        }
    }
    let last = chain.last();
    let mut m = Manifest {
        format: BUNDLE_FORMAT.to_string(),
        created_at: "2026-11-21T09:00:00Z".to_string(),
        records_sha256: sha256_hex(records.as_bytes()),
        record_count: chain.len() as u64,
        first_seq: 1,
        last_seq: last.map_or(0, |r| r.seq),
        head_hash: last.map_or_else(|| audit::GENESIS.to_string(), |r| r.hash.clone()),
        checkpoints_sha256: sha256_hex(checkpoints.as_bytes()),
        checkpoint_count: count,
        key_id: String::new(),
        signature: String::new(),
    };
    signer.sign_manifest(&mut m);
    (serde_json::to_vec(&m).unwrap_or_default(), checkpoints.into_bytes(), records.into_bytes())
}

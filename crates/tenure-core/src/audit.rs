//! The audit record and its hash chain.
//!
//! `hash = SHA-256(prev_hash || canonical(record))`, where the canonical encoding is every field,
//! `seq` included, as a length-prefixed byte string in a fixed order. Including `seq` means a
//! record moved to another position no longer verifies; chaining `prev_hash` means an edit,
//! deletion or insertion breaks the link of the record after it.

use sha2::{Digest, Sha256};

/// The hash that precedes the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is appended, before the store assigns `seq`, `at` and the hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub identity: Option<String>,
    pub target: Option<String>,
    pub entitlement: Option<String>,
    pub reason: Option<String>,
    pub approver: Option<String>,
    pub outcome: String,
}

impl AuditEntry {
    pub fn new(actor: &str, action: &str, outcome: &str) -> Self {
        Self { actor: actor.into(), action: action.into(), outcome: outcome.into(), ..Self::default() }
    }

    pub fn identity(mut self, id: &str) -> Self {
        self.identity = Some(id.into());
        self
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    pub fn entitlement(mut self, e: Option<&str>) -> Self {
        self.entitlement = e.map(Into::into);
        self
    }

    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }

    pub fn approver(mut self, a: &str) -> Self {
        self.approver = Some(a.into());
        self
    }
}

/// The longest `reason` a record keeps; a longer one is cut (with its size noted), so no input
/// can make the chain carry megabytes.
pub const REASON_LIMIT: usize = 8 * 1024;

impl AuditEntry {
    /// The entry as the chain stores it: every hidden character in every field escaped
    /// (operator names, reasons, file names, target data all pass through here) and the reason
    /// capped at [`REASON_LIMIT`]. Every store implementation appends this, never the raw entry.
    pub fn sanitized(&self) -> std::borrow::Cow<'_, AuditEntry> {
        use crate::text::{escape, is_hidden};
        let dirty = |s: &str| s.chars().any(is_hidden);
        let fields = [Some(&self.actor), Some(&self.action), self.identity.as_ref(), self.target.as_ref()]
            .into_iter()
            .chain([self.entitlement.as_ref(), self.reason.as_ref(), self.approver.as_ref(), Some(&self.outcome)])
            .flatten();
        let long = self.reason.as_ref().is_some_and(|r| r.len() > REASON_LIMIT);
        if !long && !fields.clone().any(|f| dirty(f)) {
            return std::borrow::Cow::Borrowed(self);
        }
        let clean = |s: &str| escape(s).into_owned();
        let opt = |s: &Option<String>| s.as_deref().map(clean);
        let reason = self.reason.as_deref().map(|r| {
            let r = clean(r);
            if r.len() <= REASON_LIMIT {
                return r;
            }
            let mut cut = REASON_LIMIT;
            while !r.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}… ({} bytes)", r.get(..cut).unwrap_or_default(), r.len())
        });
        std::borrow::Cow::Owned(AuditEntry {
            actor: clean(&self.actor),
            action: clean(&self.action),
            identity: opt(&self.identity),
            target: opt(&self.target),
            entitlement: opt(&self.entitlement),
            reason,
            approver: opt(&self.approver),
            outcome: clean(&self.outcome),
        })
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    /// RFC 3339 UTC with microseconds.
    pub at: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) fn put(buf: &mut Vec<u8>, field: Option<&str>) {
    match field {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
    }
}

/// The hash of a record with the given `seq`, `at` and `prev_hash`.
pub fn hash(seq: i64, at: &str, e: &AuditEntry, prev_hash: &str) -> String {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"tenure-audit-v1");
    buf.extend_from_slice(&seq.to_be_bytes());
    put(&mut buf, Some(at));
    put(&mut buf, Some(&e.actor));
    put(&mut buf, Some(&e.action));
    put(&mut buf, e.identity.as_deref());
    put(&mut buf, e.target.as_deref());
    put(&mut buf, e.entitlement.as_deref());
    put(&mut buf, e.reason.as_deref());
    put(&mut buf, e.approver.as_deref());
    put(&mut buf, Some(&e.outcome));
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(&buf);
    hex::encode(h.finalize())
}

/// Why a chain does not verify, naming the first bad `seq`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Verifies records in storage order. Records must be numbered 1, 2, 3, … with each one's
/// `prev_hash` equal to the previous record's `hash` and its own `hash` recomputable.
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
    pub count: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS.to_string(), count: 0 }
    }
}

impl Verifier {
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let bad = |reason: String| Err(ChainBreak { seq: r.seq, reason });
        if r.seq != self.expected_seq {
            let seq = self.expected_seq;
            return Err(ChainBreak {
                seq,
                reason: if r.seq > seq {
                    format!("record {seq} is missing (next stored record is {})", r.seq)
                } else {
                    format!("record {} appears where {seq} was expected", r.seq)
                },
            });
        }
        if r.prev_hash != self.prev_hash {
            return bad("prev_hash does not match the previous record's hash (a record before it was removed, inserted or reordered)".into());
        }
        if hash(r.seq, &r.at, &r.entry, &r.prev_hash) != r.hash {
            return bad("hash does not match the record's contents (the record was edited)".into());
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&r.hash);
        self.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry::new("system", "import", "ok").identity(&format!("E{seq}"));
                let at = format!("2026-11-21T00:00:{seq:02}.000000Z");
                let h = hash(seq, &at, &entry, &prev);
                let r = AuditRecord { seq, at, entry, prev_hash: prev.clone(), hash: h.clone() };
                prev = h;
                r
            })
            .collect()
    }

    fn first_break(records: &[AuditRecord]) -> Option<i64> {
        let mut v = Verifier::default();
        records.iter().find_map(|r| v.push(r).err()).map(|b| b.seq)
    }

    #[test]
    fn entries_are_stored_escaped_and_capped() {
        let e = AuditEntry::new("user:mal\u{1b}[1mlory", "approval.rejected", "rejected")
            .reason(format!("bad\u{1b}[2J\u{202e} {}", "x".repeat(20_000)))
            .approver("mal\u{1b}lory");
        let s = e.sanitized();
        assert_eq!(s.actor, "user:mal\\u{1b}[1mlory");
        assert_eq!(s.approver.as_deref(), Some("mal\\u{1b}lory"));
        let reason = s.reason.clone().unwrap_or_default();
        assert!(reason.starts_with("bad\\u{1b}[2J\\u{202e} ") && reason.ends_with(" bytes)"), "{}", &reason[..40]);
        assert!(reason.len() < REASON_LIMIT + 40);
        let plain = AuditEntry::new("planner", "plan.grant", "pending").reason("event 7");
        assert!(matches!(plain.sanitized(), std::borrow::Cow::Borrowed(_)), "clean entries are not copied");
    }

    #[test]
    fn tampering_names_the_first_bad_seq() {
        let good = chain(6);
        assert_eq!(first_break(&good), None);

        let mut edited = good.clone();
        if let Some(r) = edited.get_mut(2) {
            r.entry.outcome = "denied".into();
        }
        assert_eq!(first_break(&edited), Some(3));

        let mut deleted = good.clone();
        deleted.remove(3);
        assert_eq!(first_break(&deleted), Some(4));

        let mut reordered = good.clone();
        reordered.swap(1, 4);
        assert_eq!(first_break(&reordered), Some(2));

        // A forged record inserted with a renumbered tail: the forged one is named.
        let mut inserted = good.clone();
        let mut forged = good.get(2).cloned().unwrap_or_else(|| chain(1).remove(0));
        forged.entry.identity = Some("intruder".into());
        inserted.insert(3, forged);
        for (i, r) in inserted.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(first_break(&inserted), Some(4));
    }
}

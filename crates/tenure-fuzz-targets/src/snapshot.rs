//! `snapshot_csv`: an HR snapshot through `tenure_core::snapshot::parse_csv`.

use crate::fixtures;
use std::collections::HashSet;

/// Parses `data` as a snapshot of the starter CSV source. Besides not panicking, an accepted
/// snapshot must be consistent: one line per accepted identity, each key accepted at most once
/// and never also rejected (a rejected key keeps its identity exactly as it was, so accepting
/// it too would change an identity the file did not describe reliably).
pub fn snapshot_csv(data: &[u8]) {
    let config = fixtures::config();
    let source = fixtures::source(fixtures::CSV_SOURCE);
    let _ = tenure_core::snapshot::truncation(data, source.delimiter);
    let Ok(parsed) = tenure_core::snapshot::parse_csv(source, &config.schema, data, fixtures::today()) else {
        return;
    };
    assert_eq!(parsed.identities.len(), parsed.lines.len(), "one line per accepted identity");
    let mut keys = HashSet::new();
    for identity in &parsed.identities {
        assert!(keys.insert(identity.id.as_ref()), "key `{}` accepted twice", identity.id);
        assert!(
            !parsed.rejected_keys.contains(identity.id.as_ref()),
            "key `{}` both accepted and rejected",
            identity.id
        );
    }
    assert!(parsed.unattributed <= parsed.rejected.len(), "more unattributed rows than rejected ones");
}

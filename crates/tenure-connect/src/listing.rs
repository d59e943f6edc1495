//! What one listing of a target may hold in all (`max_listing_items`, `max_listing_bytes`).
//!
//! A page cap (`max_response_bytes`, `page_size`) bounds one answer, not a listing: a server
//! that keeps answering pages under the cap (a `totalResults` of a billion, a directory that
//! streams entries forever) would otherwise grow the listing until the process runs out of
//! memory. Every listing counts what it keeps against one [`Budget`] and fails, naming the key
//! to raise, once either cap is passed: a listing is complete or it fails, never partial.

use std::sync::atomic::{AtomicUsize, Ordering};
use tenure_core::config::ListingLimits;

/// The running totals of one listing (shared by the searches it makes at once).
pub(crate) struct Budget {
    limits: ListingLimits,
    items: AtomicUsize,
    bytes: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limits: ListingLimits) -> Self {
        Self { limits, items: AtomicUsize::new(0), bytes: AtomicUsize::new(0) }
    }

    /// Counts `items` more entries and `bytes` more bytes read. `Err` is why the listing must
    /// stop: a cap was passed.
    pub(crate) fn take(&self, items: usize, bytes: usize) -> Result<(), String> {
        let held = self.items.fetch_add(items, Ordering::Relaxed).saturating_add(items);
        let read = self.bytes.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        if held > self.limits.max_items {
            return Err(format!(
                "the listing holds more than {} entries (`max_listing_items` = {}); raise `max_listing_items` \
                 in the target's settings if it really holds more",
                self.limits.max_items, self.limits.max_items
            ));
        }
        if read > self.limits.max_bytes {
            return Err(format!(
                "the listing read more than {} bytes (`max_listing_bytes` = {}); raise `max_listing_bytes` \
                 in the target's settings if it really holds more",
                self.limits.max_bytes, self.limits.max_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_cap_stops_a_listing_and_names_its_key() {
        let b = Budget::new(ListingLimits { max_items: 3, max_bytes: 100 });
        assert!(b.take(2, 50).is_ok());
        assert!(b.take(1, 50).is_ok());
        let e = b.take(1, 0).unwrap_err();
        assert!(e.contains("more than 3 entries (`max_listing_items` = 3)"), "{e}");
        let b = Budget::new(ListingLimits { max_items: 3, max_bytes: 100 });
        let e = b.take(1, 101).unwrap_err();
        assert!(e.contains("raise `max_listing_bytes`"), "{e}");
    }
}

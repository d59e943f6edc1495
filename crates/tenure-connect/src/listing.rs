//! What one listing of a target may hold in all (`max_listing_items`, `max_listing_bytes`) and
//! how long it may take (`max_listing_seconds`).
//!
//! A page cap (`max_response_bytes`, `page_size`) bounds one answer, not a listing: a server
//! that keeps answering pages under the cap (a `totalResults` of a billion, a directory that
//! streams entries forever) would otherwise grow the listing until the process runs out of
//! memory. Every listing counts what it keeps against one [`Budget`] and fails, naming the key
//! to raise, once either cap is passed: a listing is complete or it fails, never partial.
//!
//! Bytes are what is held, not only what was read: every value a listing holds (a group's
//! member, an email, an attribute value) costs [`PER_VALUE_BYTES`] on top of its text, so a
//! page of empty members (`{}`, three bytes on the wire) cannot decode to gigabytes under a cap
//! meant for megabytes. The reads a connector makes for one account at a time (the groups of one
//! user) share one [`Pool`], so running many at once does not multiply the cap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tenure_core::config::ListingLimits;

/// What one listed value costs once decoded, on top of its text (a `Vec` slot, a `String` or
/// `Option` header, allocator overhead), for counting against `max_listing_bytes`.
pub(crate) const PER_VALUE_BYTES: usize = 64;

/// The totals of the reads in flight at once that share one cap.
#[derive(Default)]
pub(crate) struct Pool {
    items: AtomicUsize,
    bytes: AtomicUsize,
}

/// The running totals of one listing (shared by the searches it makes at once).
pub(crate) struct Budget<'a> {
    limits: ListingLimits,
    items: AtomicUsize,
    bytes: AtomicUsize,
    /// Where this listing's totals also count while it runs; given back when it ends.
    pool: Option<&'a Pool>,
    /// When `max_listing_seconds` from the listing's start runs out.
    deadline: tokio::time::Instant,
}

impl Drop for Budget<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            pool.items.fetch_sub(*self.items.get_mut(), Ordering::Relaxed);
            pool.bytes.fetch_sub(*self.bytes.get_mut(), Ordering::Relaxed);
        }
    }
}

impl<'a> Budget<'a> {
    pub(crate) fn new(limits: ListingLimits) -> Self {
        Self::with_pool(limits, None)
    }

    fn with_pool(limits: ListingLimits, pool: Option<&'a Pool>) -> Self {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(limits.max_seconds);
        Self { limits, items: AtomicUsize::new(0), bytes: AtomicUsize::new(0), pool, deadline }
    }

    /// A listing whose totals count, while it runs, in `pool` too: the caps bound every
    /// listing of the pool in flight together.
    pub(crate) fn pooled(limits: ListingLimits, pool: &'a Pool) -> Self {
        Self::with_pool(limits, Some(pool))
    }

    /// Counts `items` more entries and `bytes` more bytes held. `Err` is why the listing must
    /// stop: a cap was passed.
    pub(crate) fn take(&self, items: usize, bytes: usize) -> Result<(), String> {
        let mut held = self.items.fetch_add(items, Ordering::Relaxed).saturating_add(items);
        let mut read = self.bytes.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        if let Some(pool) = self.pool {
            held = pool.items.fetch_add(items, Ordering::Relaxed).saturating_add(items);
            read = pool.bytes.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        }
        if held > self.limits.max_items {
            return Err(format!(
                "the listing holds more than {} entries (`max_listing_items` = {}); raise `max_listing_items` \
                 in the target's settings if it really holds more",
                self.limits.max_items, self.limits.max_items
            ));
        }
        if read > self.limits.max_bytes {
            return Err(format!(
                "the listing holds more than {} bytes, counting {PER_VALUE_BYTES} bytes for every value \
                 it lists (`max_listing_bytes` = {}); raise `max_listing_bytes` in the target's settings \
                 if it really holds more",
                self.limits.max_bytes, self.limits.max_bytes
            ));
        }
        Ok(())
    }
}

impl Budget<'_> {
    /// Runs `step` of the listing until `max_listing_seconds` after the listing began: `Err`
    /// says the time ran out (the step is dropped where it was, so nothing partial is returned).
    pub(crate) async fn within<T>(&self, step: impl Future<Output = T>) -> Result<T, String> {
        tokio::time::timeout_at(self.deadline, step).await.map_err(|_| {
            format!(
                "the listing took more than {} seconds (`max_listing_seconds` = {}); raise \
                 `max_listing_seconds` in the target's settings if it really takes longer",
                self.limits.max_seconds, self.limits.max_seconds
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_cap_stops_a_listing_and_names_its_key() {
        let limits = ListingLimits { max_items: 3, max_bytes: 100, ..ListingLimits::default() };
        let b = Budget::new(limits);
        assert!(b.take(2, 50).is_ok());
        assert!(b.take(1, 50).is_ok());
        let e = b.take(1, 0).unwrap_err();
        assert!(e.contains("more than 3 entries (`max_listing_items` = 3)"), "{e}");
        let b = Budget::new(limits);
        let e = b.take(1, 101).unwrap_err();
        assert!(e.contains("raise `max_listing_bytes`"), "{e}");
    }

    #[test]
    fn issue15_pooled_listings_in_flight_share_one_cap_and_give_it_back() {
        let limits = ListingLimits { max_items: 10, max_bytes: 100, ..ListingLimits::default() };
        let pool = Pool::default();
        let a = Budget::pooled(limits, &pool);
        let b = Budget::pooled(limits, &pool);
        assert!(a.take(1, 60).is_ok());
        // Each alone is under the cap; together they are not.
        let e = b.take(1, 60).unwrap_err();
        assert!(e.contains("(`max_listing_bytes` = 100)"), "{e}");
        drop((a, b));
        let c = Budget::pooled(limits, &pool);
        assert!(c.take(1, 90).is_ok(), "finished listings give their share back");
    }

    #[tokio::test]
    async fn issue15_a_listing_past_max_listing_seconds_fails_naming_the_key() {
        let b = Budget::new(ListingLimits { max_seconds: 1, ..ListingLimits::default() });
        let e = b.within(std::future::pending::<()>()).await.unwrap_err();
        assert!(e.contains("more than 1 seconds (`max_listing_seconds` = 1); raise `max_listing_seconds`"), "{e}");
        let b = Budget::new(ListingLimits::default());
        assert_eq!(b.within(async { 7 }).await, Ok(7));
    }
}

//! Time, injected. Everything that stamps, schedules or compares with "now" asks a [`Clock`], so
//! a test can step time itself and `TENURE_NOW` can start a run at any instant (the wall-clock
//! implementations live in `tenure-engine`; this crate never reads the clock).

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Mutex;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// The date lifecycle rules compare with (start and end dates, relative policy dates).
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// The date lifecycle rules compare with for dates kept in zone `tz` (a source's
    /// `timezone`): today there. A clock whose date is pinned (`TENURE_TODAY`) answers its pinned
    /// date in every zone.
    fn today_in(&self, tz: chrono_tz::Tz) -> NaiveDate {
        self.now().with_timezone(&tz).date_naive()
    }
}

/// The format every stored timestamp has: RFC 3339 UTC with microseconds, sortable as text.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses a stored timestamp (or any RFC 3339 time).
pub fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<DateTime<Utc>>,
}

impl FakeClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(now) }
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_clock_moves_only_when_told() {
        let t = parse_stamp("2026-11-30T23:59:55Z").unwrap_or_default();
        let c = FakeClock::at(t);
        assert_eq!(c.now(), t);
        assert_eq!(c.today().to_string(), "2026-11-30");
        c.advance(chrono::Duration::seconds(10));
        assert_eq!(c.today().to_string(), "2026-12-01");
        assert_eq!(stamp(c.now()), "2026-12-01T00:00:05.000000Z");
    }
}

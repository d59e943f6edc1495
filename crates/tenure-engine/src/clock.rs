//! The clocks a run uses, chosen from the environment (the design's section 10):
//!
//! - `TENURE_NOW=RFC3339` starts the clock at that instant and lets it advance in real time from
//!   there, so a demo or a test can start at 23:59:55 on someone's last day and watch the schedule
//!   act;
//! - `TENURE_TODAY=YYYY-MM-DD` pins the date lifecycle rules compare with (start and end dates,
//!   relative policy dates), in every source's timezone, for reproducible CLI runs; timestamps
//!   keep moving;
//! - neither: the wall clock.
//!
//! Tests that step time themselves use `tenure_core::clock::FakeClock`.

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use std::time::Instant;
pub use tenure_core::clock::{Clock, FakeClock, parse_stamp, stamp};
pub use tenure_store::SystemClock;

/// A clock that starts at a given instant and advances in real time.
#[derive(Debug)]
pub struct StartedAt {
    start: DateTime<Utc>,
    since: Instant,
}

impl StartedAt {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { start, since: Instant::now() }
    }
}

impl Clock for StartedAt {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.since.elapsed()).unwrap_or_default()
    }
}

/// A clock whose date is pinned while its time keeps running.
#[derive(Debug)]
pub struct PinnedToday {
    date: NaiveDate,
    inner: Arc<dyn Clock>,
}

impl Clock for PinnedToday {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn today(&self) -> NaiveDate {
        self.date
    }

    fn today_in(&self, _tz: chrono_tz::Tz) -> NaiveDate {
        self.date
    }
}

/// Why the clock variables cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("TENURE_NOW `{0}` is not an RFC 3339 time (e.g. 2026-11-30T23:59:55Z)")]
    Now(String),
    #[error("TENURE_TODAY `{0}` is not a YYYY-MM-DD date")]
    Today(String),
}

/// The clock `TENURE_NOW` and `TENURE_TODAY` describe (see the module doc).
pub fn from_env() -> Result<Arc<dyn Clock>, ClockError> {
    from_vars(std::env::var("TENURE_NOW").ok().as_deref(), std::env::var("TENURE_TODAY").ok().as_deref())
}

/// [`from_env`] over given values, for tests.
pub fn from_vars(now: Option<&str>, today: Option<&str>) -> Result<Arc<dyn Clock>, ClockError> {
    let base: Arc<dyn Clock> = match now.filter(|s| !s.trim().is_empty()) {
        Some(s) => Arc::new(StartedAt::new(parse_stamp(s.trim()).ok_or_else(|| ClockError::Now(s.to_string()))?)),
        None => Arc::new(SystemClock),
    };
    Ok(match today.filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            let date = tenure_core::date::parse_date(s).filter(|_| s.trim().len() == 10);
            Arc::new(PinnedToday { date: date.ok_or_else(|| ClockError::Today(s.to_string()))?, inner: base })
        }
        None => base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenure_now_starts_the_clock_and_it_advances() {
        let c = from_vars(Some("2026-11-30T23:59:55Z"), None).unwrap_or_else(|_| Arc::new(SystemClock));
        let first = c.now();
        assert!(first >= parse_stamp("2026-11-30T23:59:55Z").unwrap_or_default());
        assert!(first < parse_stamp("2026-11-30T23:59:58Z").unwrap_or_default(), "{first}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.now() > first, "it advances in real time");
        assert_eq!(c.today().to_string(), "2026-11-30");
    }

    #[test]
    fn tenure_today_pins_the_date_only() {
        let c = from_vars(Some("2026-11-30T12:00:00Z"), Some("2027-01-05")).unwrap_or_else(|_| Arc::new(SystemClock));
        assert_eq!(c.today().to_string(), "2027-01-05");
        assert_eq!(c.now().date_naive().to_string(), "2026-11-30");
        assert_eq!(from_vars(Some("tomorrow"), None).err(), Some(ClockError::Now("tomorrow".into())));
        assert_eq!(from_vars(None, Some("2027-1-5")).err(), Some(ClockError::Today("2027-1-5".into())));
    }
}

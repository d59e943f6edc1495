//! `[schedule]`: how often the server's scheduled jobs run. Every key has a default, so a config without the section schedules everything;
//! each value is checked like the rest of `tenure check`, with file, line and reason.
//!
//! | key | default | what |
//! | --- | --- | --- |
//! | `tick` | `30s` | how often the scheduler looks for due work (start and end dates, grant expiry, the post-offboarding re-check) |
//! | `reconcile` | `1h` | reconciliation of every target (findings only; `tenure reconcile --remediate` fixes) |
//! | `recheck_after_days` | `7` | days after a leaver case closes until every target is read again |
//! | `checkpoint` | `1h` | signed audit checkpoints |
//! | `retention` | `1d` | the retention sweep (`delete_after_days` of each target) |
//! | `overdue` | `1h` | overdue manual tickets become exceptions |
//! | `credentials` | `1h` | non-human identities' credentials older than their `credential_max_age` are rotated |

use super::Reader;
use crate::diag::Problems;
use crate::doc::{Node, Table};

/// `[schedule]`, every interval in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    pub tick_secs: u64,
    pub reconcile_secs: u64,
    pub recheck_after_days: u32,
    pub checkpoint_secs: u64,
    pub retention_secs: u64,
    pub overdue_secs: u64,
    /// Issue 10: stale NHI credentials rotated.
    pub credentials_secs: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            tick_secs: 30,
            reconcile_secs: 3600,
            recheck_after_days: 7,
            checkpoint_secs: 3600,
            retention_secs: 86_400,
            overdue_secs: 3600,
            credentials_secs: 3600,
        }
    }
}

/// The keys of `[schedule]`.
pub const SCHEDULE_KEYS: &[&str] =
    &["tick", "reconcile", "recheck_after_days", "checkpoint", "retention", "overdue", "credentials"];

/// The longest interval accepted: a year. Anything longer is a typo (`1000d`), not a schedule.
const MAX_SECS: u64 = 366 * 86_400;

pub(super) fn parse(t: &Table, p: &mut Problems<'_>) -> ScheduleConfig {
    let mut r = Reader::new(t, "[schedule]", p, SCHEDULE_KEYS);
    let mut out = ScheduleConfig::default();
    for (key, slot) in [
        ("tick", &mut out.tick_secs),
        ("reconcile", &mut out.reconcile_secs),
        ("checkpoint", &mut out.checkpoint_secs),
        ("retention", &mut out.retention_secs),
        ("overdue", &mut out.overdue_secs),
        ("credentials", &mut out.credentials_secs),
    ] {
        if let Some(secs) = duration(&mut r, t, key) {
            *slot = secs;
        }
    }
    if let Some(n) = r.int("recheck_after_days", 1, 3650) {
        out.recheck_after_days = u32::try_from(n).unwrap_or(out.recheck_after_days);
    }
    out
}

/// A duration key such as `"1h"`, reported on its line when it is not one or out of range.
fn duration(r: &mut Reader<'_, '_, '_>, t: &Table, key: &str) -> Option<u64> {
    let value = r.string(key)?;
    let at = t.get(key).map_or(0, Node::start);
    match crate::date::parse_duration(&value) {
        Some(secs) if secs <= MAX_SECS => Some(secs),
        Some(_) => {
            r.p.at(at, format!("`{key}` in [schedule] `{value}` is longer than a year"));
            None
        }
        None => {
            r.p.at(
                at,
                format!(
                    "`{key}` in [schedule] `{value}` is not a duration like `30s`, `1h` or `1d` (greater than zero)"
                ),
            );
            None
        }
    }
}

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_core::OpState;

/// Revocation coverage of leaver cases per target class, with time-to-revoke
/// (`tenure cases --coverage`; the server's coverage metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    /// One row per target class (`api`, `manual`, `scim`, ...), sorted by class.
    pub classes: Vec<ClassCoverage>,
    pub leaver_cases: usize,
    pub open_leaver_cases: usize,
    pub time_to_revoke_ms: RevokeTimes,
}

impl Coverage {
    /// Leaver cases still open need action.
    pub fn needs_action(&self) -> bool {
        self.open_leaver_cases > 0
    }
}

/// Leaver operations of one target class. Cancelled operations were never needed and are not
/// counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassCoverage {
    pub class: String,
    /// Verified and excepted over all operations; 1.0 when there are none.
    pub coverage: f64,
    pub excepted: i64,
    pub failed: i64,
    /// Neither verified, excepted nor failed.
    pub open: i64,
    pub operations: i64,
    pub verified: i64,
}

/// Time-to-revoke of closed cases, in milliseconds (nearest-rank percentiles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeTimes {
    /// Cases with a time-to-revoke.
    pub closed: usize,
    pub max: Option<i64>,
    pub p50: Option<i64>,
    pub p99: Option<i64>,
}

/// `tenure check`: the config and policy problems, what could not be checked offline, and with
/// `--online` what the live targets said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckReport {
    pub ok: bool,
    /// Problems the live targets showed (`--online`).
    pub online: Vec<String>,
    pub problems: Vec<Problem>,
    /// What was loaded; absent when the config or the policy did not load.
    pub summary: Option<CheckSummary>,
    /// Targets whose granted entitlements only the live target can confirm (no `entitlements`
    /// list declared), when not checked online.
    pub unchecked_targets: Vec<String>,
    /// Insecure settings that load but weaken a target (`tls_verify = false`, a token over
    /// plain http to another host): warned about, not problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A problem in a user-written file; `line` is 1-based, 0 for the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// How much a valid config and policy hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckSummary {
    pub entitlements: usize,
    pub roles: usize,
    pub sod_rules: usize,
    pub sources: usize,
    pub targets: usize,
}

/// `tenure apply`: the executor's run, the tickets left open, and how many failed operations
/// were queued again first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplyReport {
    /// Access requests whose expiry had come, ended and their revocation planned before the
    /// run (`tenure apply` runs the `grant_expiry` check first, for CLI-only deployments).
    #[serde(default)]
    pub expired_requests: usize,
    pub open_tickets: usize,
    pub report: ExecReport,
    pub retried: usize,
}

impl ApplyReport {
    /// Operations in `state` when the run ended.
    pub fn remaining(&self, state: OpState) -> i64 {
        self.report.remaining.get(&state).copied().unwrap_or(0)
    }
}

/// One executor run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecReport {
    pub attempts: usize,
    pub verified: usize,
    pub retries: usize,
    pub failed: usize,
    pub tickets: usize,
    /// Operation counts by state when the run ended.
    pub remaining: BTreeMap<OpState, i64>,
    /// Targets whose connector could not be set up, with the reason their operations failed.
    pub unusable: BTreeMap<String, String>,
    /// What the connectors noticed about their targets during the run, by target (a SCIM
    /// server that refused removing a member by value, say).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, Vec<String>>,
}

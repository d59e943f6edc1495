use serde::{Deserialize, Serialize};
use tenure_core::FindingKind;

/// A difference between a target and what Tenure expects (`tenure reconcile`,
/// `GET /api/v1/findings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub kind: FindingKind,
    pub target: String,
    pub account: Option<String>,
    pub identity: Option<String>,
    pub entitlement: Option<String>,
    pub detail: String,
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconReport {
    pub targets: Vec<TargetReport>,
    /// Separation-of-duties conflicts across targets.
    pub sod: Vec<Finding>,
    pub remediation: Option<RemediationReport>,
    /// Targets that were not reconciled: their connector could not be set up or reading them
    /// failed. Their findings are unknown, not absent.
    pub skipped: Vec<SkippedTarget>,
}

impl ReconReport {
    pub fn finding_count(&self) -> usize {
        self.targets.iter().map(|t| t.findings.len()).sum::<usize>() + self.sod.len()
    }
}

/// One target read back and compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetReport {
    pub target: String,
    pub run_id: i64,
    pub accounts: usize,
    pub grants: usize,
    pub millis: u64,
    pub findings: Vec<Finding>,
    /// Memberships of the accounts Tenure manages in entitlements it does not (no role grants
    /// them and the target does not declare them), by entitlement: left alone, never a finding.
    #[serde(default)]
    pub unmanaged: Vec<UnmanagedGrant>,
    /// What the connector noticed about the target while reading it (a SCIM server whose
    /// `itemsPerPage` differs from what its pages hold, one that refused removing a member by
    /// value): worth a person's look, not a finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An entitlement Tenure does not manage, and how many of the accounts it manages hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmanagedGrant {
    pub entitlement: String,
    pub accounts: usize,
}

/// A target reconciliation could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedTarget {
    pub target: String,
    pub reason: String,
}

/// The fixes `--remediate` planned, applied now or held for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemediationReport {
    pub operations: usize,
    pub held: Option<String>,
    pub approval_id: Option<i64>,
}

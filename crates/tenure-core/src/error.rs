//! The one registry of stable error codes.
//!
//! Every library error in Tenure says which [`Code`] it is (`fn code(&self) -> Code`). A code is a
//! contract: scripts match on it, the REST API returns it as `{"code": "...", "message": "..."}`
//! and the CLI maps it to an exit status. This enum is where codes are documented, and the only
//! place that maps them to exit and HTTP statuses; add codes, never rename or reuse one.

use std::fmt;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal, exit $exit:literal, http $http:literal;)+) => {
        /// A stable error code. The text (`as_str`) is what users and clients see.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum Code {
            $($(#[doc = $doc])* #[serde(rename = $text)] $variant,)+
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),+ }
            }

            /// The CLI's exit status for a command that failed with this code: 2 for a usage
            /// error, 1 for everything else.
            pub fn exit_status(self) -> u8 {
                match self { $(Code::$variant => $exit),+ }
            }

            /// The HTTP status the API answers with.
            pub fn http_status(self) -> u16 {
                match self { $(Code::$variant => $http),+ }
            }

            /// What the code means, for documentation and `--help`.
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => concat!($($doc),+).trim_start()),+ }
            }
        }
    };
}

codes! {
    /// The command line or the request is malformed: an unknown flag or format, a missing
    /// argument, a config file that is not there.
    Usage = "usage", exit 2, http 400;
    /// The named source is not in the config.
    UnknownSource = "unknown_source", exit 2, http 404;
    /// The named target is not in the config.
    UnknownTarget = "unknown_target", exit 2, http 404;
    /// The source exists but does not take this kind of input (a CSV file for a webhook source).
    WrongSourceKind = "wrong_source_kind", exit 2, http 400;
    /// The config has problems (each with file, line and reason).
    ConfigInvalid = "config_invalid", exit 1, http 500;
    /// The policy has problems (each with file, line and reason).
    PolicyInvalid = "policy_invalid", exit 1, http 422;
    /// The snapshot cannot be read as this source's file (no header, a missing or duplicated
    /// mapped column, not CSV). Bad rows are not errors: they are rejected with line and reason.
    SnapshotInvalid = "snapshot_invalid", exit 1, http 422;
    /// A value in the request is not acceptable.
    InvalidInput = "invalid_input", exit 1, http 400;
    /// The thing named does not exist (an approval, a ticket, an identity).
    NotFound = "not_found", exit 1, http 404;
    /// The change conflicts with the current state: the approval is no longer pending, another
    /// import landed meanwhile, the identity belongs to another source. Retrying may succeed.
    Conflict = "conflict", exit 1, http 409;
    /// The store cannot be opened or answered with an error.
    StoreUnavailable = "store_unavailable", exit 1, http 503;
    /// The store holds data Tenure cannot read back, or a migration was edited after it ran.
    StoreCorrupt = "store_corrupt", exit 1, http 500;
    /// A target could not be reached or timed out; retrying may help.
    TargetUnavailable = "target_unavailable", exit 1, http 502;
    /// A target refused the request; retrying will not help.
    TargetRefused = "target_refused", exit 1, http 502;
    /// The audit signing key or an evidence file cannot be read, written or trusted.
    EvidenceUnavailable = "evidence_unavailable", exit 1, http 500;
    /// No credentials, or unknown ones.
    Unauthorized = "unauthorized", exit 1, http 401;
    /// The credentials do not allow this.
    Forbidden = "forbidden", exit 1, http 403;
    /// Too many failed attempts from this address; wait and retry.
    Throttled = "throttled", exit 1, http 429;
    /// Every connection the server may hold has a request under way; retry in a moment.
    Overloaded = "overloaded", exit 1, http 503;
    /// The request body is larger than allowed.
    PayloadTooLarge = "payload_too_large", exit 1, http 413;
    /// Something Tenure did not expect; the detail is logged, never returned.
    Internal = "internal", exit 1, http 500;
    // Access requests (issue 10).
    /// An access request or its decision was refused by policy and changed nothing: the role is
    /// not requestable, the duration is longer than its `max_duration`, the identity is
    /// terminated, or no approver can be found.
    RequestRefused = "request_refused", exit 1, http 422;
    /// Granting would violate a separation-of-duties rule that blocks; the rule is named.
    SodConflict = "sod_conflict", exit 1, http 409;
    /// Who decides is not the approver the request's stage resolved to.
    NotApprover = "not_approver", exit 1, http 403;
    /// The identity asked for, or whoever asked for it, tried to approve its own request.
    SelfApproval = "self_approval", exit 1, http 403;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every API error, and of `--format json` errors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code: code.as_str().to_string(), message: message.into() }
    }
}

/// The code of a core error type.
pub trait HasCode {
    fn code(&self) -> Code;
}

impl HasCode for crate::snapshot::SnapshotError {
    fn code(&self) -> Code {
        Code::SnapshotInvalid
    }
}

impl HasCode for crate::evidence::KeyError {
    fn code(&self) -> Code {
        Code::EvidenceUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_documented_and_mapped() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert!(!c.description().is_empty(), "{c} is undocumented");
            assert!(c.as_str().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'), "{c}");
            assert!((1..=2).contains(&c.exit_status()));
            assert!((400..600).contains(&c.http_status()));
        }
        assert_eq!(Code::Usage.exit_status(), 2);
        assert_eq!(Code::NotFound.http_status(), 404);
        assert_eq!(
            serde_json::to_value(ErrorBody::new(Code::Conflict, "x")).ok(),
            Some(serde_json::json!({"code": "conflict", "message": "x"}))
        );
    }
}

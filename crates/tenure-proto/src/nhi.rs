use serde::{Deserialize, Serialize};

/// One account whose credential rotation was asked for (`tenure rotate`): the operation that
/// will set, hand to the secret sink and verify a new secret. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rotation {
    pub identity: String,
    pub target: String,
    pub account: Option<String>,
    /// The `rotate_credential` operation.
    pub operation: i64,
    /// `false` when one was already pending for the account, and no second one was added.
    pub queued: bool,
}

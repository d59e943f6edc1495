use serde::{Deserialize, Serialize};
use tenure_core::Scope;

/// An API token as `tenure token list` prints it: never its text, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    /// The one source a `source` token may push for.
    pub source: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

/// A token just created (`tenure token create`): the one time its text is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The secret: `tnr_` and 43 base64url characters. Shown once; only its hash is stored.
    pub secret: String,
}

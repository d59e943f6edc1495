//! API tokens for `tenure serve`: what is kept about each (never the token itself) and the
//! [`Tokens`] trait every store implements.
//!
//! The server hashes a presented `Authorization: Bearer` token and looks the hash up here; the
//! CLI creates, lists and revokes tokens (`tenure token ...`). Creating and revoking are audited
//! in the same transaction as the change, with the token's name and scope and never its text or
//! its hash, so neither the audit trail nor any listing can hand out a credential.

use crate::Result;
use tenure_core::Scope;

/// A token to store. `hash` is the hex SHA-256 of the token text; the text never reaches the
/// store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub scope: Scope,
    /// The one source a `source` token may push for; `None` for every other scope.
    pub source: Option<&'a str>,
    /// Who created it, for the audit trail.
    pub created_by: &'a str,
}

/// What the store tells about a token: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub source: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

/// The token table. Implementations are safe to share between threads.
pub trait Tokens: Send + Sync {
    /// Stores a token, audited as `token.create`. Fails with `Conflict` when a live token
    /// already has that name, or the hash is already stored.
    fn create_token(&self, token: &NewToken<'_>) -> Result<TokenRecord>;
    /// Tokens by name, live ones only or revoked ones too.
    fn tokens(&self, include_revoked: bool) -> Result<Vec<TokenRecord>>;
    /// The live (not revoked) token with this hash.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;
    /// Records that token `id` was used now (by the store's clock).
    fn touch_token(&self, id: i64) -> Result<()>;
    /// Revokes the live token named `name`, audited as `token.revoke` with who did it. Fails
    /// with `NotFound` when no live token has that name.
    fn revoke_token(&self, name: &str, by: &str) -> Result<TokenRecord>;
}

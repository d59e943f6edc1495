//! API tokens (the design's section 10): their text, their hash, and creating, listing and
//! revoking them, for `tenure token ...` and the server's authentication.
//!
//! A token is `tnr_` followed by 32 random bytes in base64url; it is shown once at creation and
//! only its SHA-256 is stored. Tokens carry 256 bits of entropy, so a fast hash is enough: there
//! is nothing to brute-force, and a lookup by hash reveals nothing about other tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use tenure_core::Scope;
use tenure_core::config::Config;
use tenure_proto as proto;
use tenure_store::{NewToken, TokenRecord, Tokens};

/// A new token's secret text, shown once.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    format!("tnr_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored for a token: the hex SHA-256 of its text.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether text has a token's shape, so that obviously malformed credentials are refused
/// before any lookup.
pub fn looks_like(s: &str) -> bool {
    s.strip_prefix("tnr_")
        .is_some_and(|b| b.len() == 43 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
}

pub fn view(t: &TokenRecord) -> proto::Token {
    proto::Token {
        name: t.name.clone(),
        scope: t.scope,
        source: t.source.clone(),
        created_at: t.created_at.clone(),
        created_by: t.created_by.clone(),
        last_used_at: t.last_used_at.clone(),
        revoked_at: t.revoked_at.clone(),
        revoked_by: t.revoked_by.clone(),
    }
}

/// A token name: 1 to 64 of letters, digits, `.`, `_`, `-` (it appears in audit records as the
/// actor and approver, so it stays plain).
fn check_name(name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(crate::EngineError::Invalid(format!(
            "token name `{}` must be 1 to 64 letters, digits, `.`, `_` or `-`",
            tenure_core::text::escape(name)
        )))
    }
}

/// Creates a token named `name` with `scope` (a `source` token bound to `source`, which must be
/// a source in the config), audited with `by`. The result holds the secret: print it once.
pub fn create(
    config: &Config,
    store: &dyn Tokens,
    name: &str,
    scope: Scope,
    source: Option<&str>,
    by: &str,
) -> crate::Result<proto::CreatedToken> {
    check_name(name)?;
    match (scope, source) {
        (Scope::Source, None) => {
            return Err(crate::EngineError::Invalid(
                "a token with scope source needs the source it pushes for (`--source NAME`)".into(),
            ));
        }
        (Scope::Source, Some(s)) if config.source(s).is_none() => {
            let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(crate::EngineError::UnknownSource(s.to_string(), names.join(", ")));
        }
        (Scope::Source, Some(_)) => {}
        (_, Some(_)) => {
            return Err(crate::EngineError::Invalid(format!(
                "only a token with scope source is bound to a source; scope {scope} is not"
            )));
        }
        (_, None) => {}
    }
    let secret = generate();
    let digest = hash(&secret);
    let rec = store.create_token(&NewToken { name, hash: &digest, scope, source, created_by: by })?;
    Ok(proto::CreatedToken { token: view(&rec), secret })
}

/// Tokens by name: live ones, or revoked ones too.
pub fn list(store: &dyn Tokens, include_revoked: bool) -> crate::Result<Vec<proto::Token>> {
    Ok(store.tokens(include_revoked)?.iter().map(view).collect())
}

/// Revokes the live token named `name`, audited with `by`.
pub fn revoke(store: &dyn Tokens, name: &str, by: &str) -> crate::Result<proto::Token> {
    Ok(view(&store.revoke_token(name, by)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_like(&a), "{a}");
        assert!(!looks_like("tnr_short"));
        assert!(!looks_like("Bearer x"));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[4..]));
    }

    #[test]
    fn names_are_plain() {
        for ok in ["ci", "hr-push", "a.b_c", &"x".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "tab\t", "émile", &"x".repeat(65), "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}

//! Webhook signing secrets (`whsec_` followed by the base64 key bytes, as Standard Webhooks
//! writes them): the one rule that both `tenure check` and the server apply to a secret.
//!
//! A key must be at least [`MIN_WEBHOOK_SECRET_BYTES`] bytes (192 bits, what the Standard
//! Webhooks libraries generate at the least) and look random: a short key (`whsec_AA==`) or a
//! key of one repeated byte can be guessed and every push forged with it. So can a typed
//! passphrase base64-encoded: a key whose bytes are all printable ASCII is refused (24 random
//! bytes are all printable with a probability of about 5·10⁻¹¹).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The fewest key bytes a webhook secret may have.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 24;

/// The fewest distinct byte values a key may hold. Twenty-four random bytes hold fewer than
/// eight distinct values with a probability below 10⁻²⁵; a typed or padded key often does.
const MIN_DISTINCT_BYTES: usize = 8;

/// The key bytes of one `whsec_BASE64` secret (surrounding whitespace ignored), or why it cannot
/// be used. The reason never repeats the secret.
pub fn webhook_secret_key(text: &str) -> Result<Vec<u8>, String> {
    let Some(b64) = text.trim().strip_prefix("whsec_") else {
        return Err("the webhook secret is not `whsec_` followed by base64 key bytes".into());
    };
    let key = STANDARD.decode(b64).map_err(|_| "the webhook secret is not `whsec_` followed by base64 key bytes")?;
    if key.len() < MIN_WEBHOOK_SECRET_BYTES {
        return Err(format!(
            "the webhook secret has {} key bytes; at least {MIN_WEBHOOK_SECRET_BYTES} random bytes are required \
             (`whsec_` followed by the output of `openssl rand -base64 32` is one)",
            key.len()
        ));
    }
    let mut seen = [false; 256];
    for b in &key {
        if let Some(s) = seen.get_mut(usize::from(*b)) {
            *s = true;
        }
    }
    if seen.iter().filter(|s| **s).count() < MIN_DISTINCT_BYTES {
        return Err("the webhook secret's key bytes are not random (too few distinct values)".into());
    }
    if key.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err("the webhook secret's key bytes are all printable text (a passphrase), not random bytes; \
             use `whsec_` followed by the output of `openssl rand -base64 32`"
            .into());
    }
    Ok(key)
}

/// Every secret in a secret file or variable: `whsec_...` values separated by whitespace (two
/// during a rotation), each checked; an empty text is a problem too.
pub fn webhook_secret_keys(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let keys = text.split_whitespace().map(webhook_secret_key).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("the webhook secret is empty".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_random_keys_are_webhook_secrets() {
        // The Standard Webhooks specification's example: 24 bytes.
        assert_eq!(webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").map(|k| k.len()), Ok(24));
        let refused = |s: &str, why: &str| {
            let e = webhook_secret_key(s).err().unwrap_or_default();
            assert!(e.contains(why), "{s}: {e}");
            assert!(!e.contains(s.trim_start_matches("whsec_")) || s.len() < 8, "the secret is not repeated: {e}");
        };
        refused("whsec_AA==", "has 1 key bytes; at least 24");
        refused("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La", "has 21 key bytes");
        refused("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not random");
        refused("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "not `whsec_`");
        // `Password123!Password123!`, base64-encoded: long and varied, but typed.
        refused("whsec_UGFzc3dvcmQxMjMhUGFzc3dvcmQxMjMh", "all printable text (a passphrase)");
        refused("whsec_!!!", "not `whsec_`");
        refused("whsec_", "has 0 key bytes");
        assert_eq!(webhook_secret_keys("  \n").err().as_deref(), Some("the webhook secret is empty"));
        let two = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_AA==";
        assert!(webhook_secret_keys(two).is_err(), "a short one beside a good one is refused");
    }
}

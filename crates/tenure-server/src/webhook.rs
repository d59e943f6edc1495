//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), as the design (section 11) fixes them.
//!
//! A push carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (space-separated `v1,BASE64` values). The signature is HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` with the source's secret (`whsec_` followed by the
//! base64 key bytes). Any one valid `v1` signature passes, so a secret can be rotated by signing
//! with both for a while. A timestamp more than five minutes away from now is refused, so a
//! captured request cannot be replayed later (a replay inside the window is caught by the
//! journal's `webhook-id`).
//!
//! Verification is pure: the caller passes the headers, the body and the current time. Errors
//! never echo the secret or a signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How far a `webhook-timestamp` may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The longest `webhook-id` accepted: the journal keeps every id for its retention, so an id is
/// bounded like any other field.
pub const MAX_ID_BYTES: usize = 256;

/// A source's webhook secret: the key bytes behind `whsec_...`. `Debug` never shows them.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a push was refused. Messages are safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Why the secret cannot be used (never the secret itself).
    #[error("{0}")]
    BadSecret(String),
    #[error("`webhook-id` is {0} bytes; at most 256 are allowed")]
    LongId(usize),
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    #[error("`webhook-timestamp` is not a Unix time in seconds")]
    BadTimestamp,
    #[error("`webhook-timestamp` is {0} seconds away from now; at most 300 are allowed")]
    Stale(i64),
    #[error("no valid `v1` signature")]
    BadSignature,
}

impl Secret {
    /// Parses `whsec_BASE64` (surrounding whitespace, a trailing newline in a secret file, is
    /// ignored): at least 24 random key bytes ([`tenure_core::config::webhook_secret_key`]).
    pub fn parse(text: &str) -> Result<Self, Refused> {
        tenure_core::config::webhook_secret_key(text).map(Self).map_err(Refused::BadSecret)
    }

    /// A secret from key bytes already checked by [`tenure_core::config::webhook_secret_key`].
    pub(crate) fn from_key(key: &[u8]) -> Option<Self> {
        (key.len() >= tenure_core::config::MIN_WEBHOOK_SECRET_BYTES).then(|| Self(key.to_vec()))
    }

    /// A fresh random secret in its `whsec_` form, for `tenure` to hand to an HR system.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key);
        format!("whsec_{}", STANDARD.encode(key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        // INVARIANT: HMAC takes keys of any length, so `new_from_slice` cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for a push (`v1,BASE64`), for tests and senders.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, &timestamp.to_string(), body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

/// The headers of a push, as received.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies a push against any of `secrets` at time `now` (Unix seconds). Returns the
/// `webhook-id` on success.
pub fn verify<'a>(secrets: &[Secret], h: Headers<'a>, body: &[u8], now: i64) -> Result<&'a str, Refused> {
    let id = h.id.filter(|v| !v.is_empty()).ok_or(Refused::MissingHeader("webhook-id"))?;
    if id.len() > MAX_ID_BYTES {
        return Err(Refused::LongId(id.len()));
    }
    let ts_text = h.timestamp.ok_or(Refused::MissingHeader("webhook-timestamp"))?;
    let sigs = h.signature.ok_or(Refused::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| Refused::BadTimestamp)?;
    let skew = now.saturating_sub(ts);
    if skew.saturating_abs() > TOLERANCE_SECONDS {
        return Err(Refused::Stale(skew));
    }
    for candidate in sigs.split_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else { continue };
        let Ok(tag) = STANDARD.decode(b64) else { continue };
        for secret in secrets {
            // `verify_slice` compares in constant time.
            if secret.mac(id, ts_text.trim(), body).verify_slice(&tag).is_ok() {
                return Ok(id);
            }
        }
    }
    Err(Refused::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_547_200;

    fn secret() -> Secret {
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_else(|_| Secret(vec![1]))
    }

    fn check(sig: Option<String>, ts: i64, body: &[u8], want: Result<(), Refused>) {
        let ts = ts.to_string();
        let h = Headers { id: Some("msg_1"), timestamp: Some(&ts), signature: sig.as_deref() };
        assert_eq!(verify(&[secret()], h, body, NOW).map(|_| ()), want);
    }

    #[test]
    fn a_delivery_replayed_once_its_journal_entry_may_be_pruned_is_stale() {
        // The furthest-ahead timestamp accepted on arrival, replayed at the earliest moment the
        // retention schedule may delete its journal entry (and a second on, the clock's
        // fraction): the journal no longer refuses it, so the timestamp must.
        let retention = i64::try_from(tenure_core::config::MIN_JOURNAL_RETENTION_SECS).unwrap();
        let ts = NOW + TOLERANCE_SECONDS;
        let sig = secret().sign("msg_1", ts, b"{}");
        let ts_text = ts.to_string();
        let h = Headers { id: Some("msg_1"), timestamp: Some(&ts_text), signature: Some(&sig) };
        assert_eq!(verify(&[secret()], h, b"{}", NOW).map(|_| ()), Ok(()), "accepted on arrival");
        for late in [retention, retention + 1] {
            let h = Headers { id: Some("msg_1"), timestamp: Some(&ts_text), signature: Some(&sig) };
            assert!(
                matches!(verify(&[secret()], h, b"{}", NOW + late), Err(Refused::Stale(_))),
                "a replay {late} s after arrival, once pruned, is refused as stale"
            );
        }
    }

    #[test]
    fn signatures_are_checked_as_the_standard_says() {
        let good = secret().sign("msg_1", NOW, b"{}");
        check(Some(good.clone()), NOW, b"{}", Ok(()));
        // Any one valid signature among several passes (secret rotation).
        check(Some(format!("v1,AAAA {good} v2,zzz")), NOW, b"{}", Ok(()));
        check(Some(good.clone()), NOW, b"{ }", Err(Refused::BadSignature));
        check(Some(good.replace("v1,", "v2,")), NOW, b"{}", Err(Refused::BadSignature));
        check(None, NOW, b"{}", Err(Refused::MissingHeader("webhook-signature")));
        let late = secret().sign("msg_1", NOW - 301, b"{}");
        check(Some(late), NOW - 301, b"{}", Err(Refused::Stale(301)));
        let early = secret().sign("msg_1", NOW + 400, b"{}");
        check(Some(early), NOW + 400, b"{}", Err(Refused::Stale(-400)));
        let edge = secret().sign("msg_1", NOW - 300, b"{}");
        check(Some(edge), NOW - 300, b"{}", Ok(()));
        let h = Headers { id: Some("msg_1"), timestamp: Some("soon"), signature: Some("v1,x") };
        assert_eq!(verify(&[secret()], h, b"", NOW), Err(Refused::BadTimestamp));
        // The id is signed: a signature for another id does not pass.
        let other = secret().sign("msg_2", NOW, b"{}");
        check(Some(other), NOW, b"{}", Err(Refused::BadSignature));
        // An id is at most 256 bytes, refused before any signature is computed.
        let ts = NOW.to_string();
        let long = "m".repeat(257);
        let h = Headers { id: Some(&long), timestamp: Some(&ts), signature: Some("v1,x") };
        assert_eq!(verify(&[secret()], h, b"{}", NOW), Err(Refused::LongId(257)));
    }

    #[test]
    fn secrets_parse_from_their_whsec_form_only() {
        assert!(Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").is_ok());
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_", "whsec_AA=="] {
            assert!(matches!(Secret::parse(bad), Err(Refused::BadSecret(_))), "{bad}");
        }
        let fresh = Secret::generate();
        assert!(Secret::parse(&fresh).is_ok());
        assert_eq!(format!("{:?}", secret()), "Secret(..)");
    }

    #[test]
    fn a_known_vector_from_the_standard_webhooks_reference() {
        // The example in the Standard Webhooks specification.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_else(|_| Secret(vec![]));
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            s.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}

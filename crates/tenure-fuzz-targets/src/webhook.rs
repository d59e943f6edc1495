//! `webhook_records` (a push body's records, as `POST /hooks/{source}` decodes them) and
//! `webhook_signature` (the Standard Webhooks headers).

use crate::fixtures;
use arbitrary::Unstructured;
use tenure_server::webhook::{self, Headers, Refused, Secret};

/// Decodes `data` as the webhook handler does: JSON, then one record or `{"records": [...]}`
/// checked against the starter webhook source. Accepted records are numbered in order.
pub fn webhook_records(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = fixtures::config();
    let source = fixtures::source(fixtures::WEBHOOK_SOURCE);
    if let Ok(records) = tenure_engine::ingest::records_from_json(source, &config.schema, &json) {
        assert!(!records.is_empty(), "a push was accepted with no records");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.index, i, "record {i} reports index {}", r.index);
        }
    }
}

const NOW: i64 = 1_764_547_200;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Builds a secret text and the three headers from `data` and verifies a push. Besides not
/// panicking: a delivery is accepted only with a `webhook-id`, a timestamp inside the window,
/// and a signature made with the secret; and one made with it, placed among the fuzzer's
/// other signatures, is always accepted when the id and timestamp are.
pub fn webhook_signature(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(secret_text), Ok(id), Ok(ts), Ok(sigs), Ok(body), Ok(insert)) = (
        u.arbitrary::<&str>(),
        u.arbitrary::<&str>(),
        u.arbitrary::<&str>(),
        u.arbitrary::<&str>(),
        u.arbitrary::<&[u8]>(),
        u.arbitrary::<bool>(),
    ) else {
        return;
    };
    let _ = Secret::parse(secret_text);
    let Ok(secret) = Secret::parse(SECRET) else {
        panic!("the fixture secret does not parse");
    };
    let h = Headers { id: Some(id), timestamp: Some(ts), signature: Some(sigs) };
    let fuzzed = webhook::verify(std::slice::from_ref(&secret), h, body, NOW);
    let in_window =
        ts.trim().parse::<i64>().is_ok_and(|t| NOW.saturating_sub(t).saturating_abs() <= webhook::TOLERANCE_SECONDS);
    if let Ok(got) = fuzzed {
        assert!(!id.is_empty() && in_window, "accepted id `{id:?}` at `{ts:?}`");
        assert!(id.len() <= webhook::MAX_ID_BYTES, "accepted an id of {} bytes", id.len());
        assert_eq!(got, id);
    }
    if !insert {
        return;
    }
    // A valid signature among the fuzzer's: the timestamp as written (trimmed) is what is signed.
    let Ok(t) = ts.trim().parse::<i64>() else {
        return;
    };
    let good = secret.sign(id, t, body);
    if ts.trim() != t.to_string() {
        return;
    }
    let header = format!("{sigs} {good}");
    let h = Headers { id: Some(id), timestamp: Some(ts), signature: Some(&header) };
    match webhook::verify(std::slice::from_ref(&secret), h, body, NOW) {
        Ok(got) => assert_eq!(got, id),
        Err(Refused::MissingHeader(_)) => assert!(id.is_empty(), "refused a present header"),
        Err(Refused::Stale(_)) => assert!(!in_window, "refused a timestamp inside the window"),
        Err(Refused::LongId(n)) => assert!(n > webhook::MAX_ID_BYTES, "refused an id of {n} bytes as too long"),
        Err(e) => panic!("refused a correctly signed push: {e}"),
    }
}

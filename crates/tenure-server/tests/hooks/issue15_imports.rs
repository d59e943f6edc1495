//! `POST /api/v1/imports` streams its body: it is parsed as it arrives under
//! `[server] max_import_bytes`, a body over the cap is 413 and changes nothing, and a body that
//! stops before its end is never imported as a shorter snapshot.

use super::World;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use tenure_sample::company::{Company, Options};

const LIMIT: u64 = 64 * 1024;

fn world() -> World {
    World::with_config(|c| c.server.max_import_bytes = LIMIT)
}

fn csv() -> String {
    Company::generate(&Options::new(30, chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())).to_csv()
}

/// Nothing was imported: no import of `hr`, no identity.
fn untouched(w: &World) {
    let store = w.state.app.store();
    assert_eq!(store.last_import("hr").unwrap(), None);
    assert!(store.identities(&w.state.app.config().schema, None).unwrap().is_empty());
}

/// A body of `pieces`, streamed without a declared length.
fn streamed(pieces: Vec<Result<Bytes, std::io::Error>>) -> Body {
    Body::from_stream(futures_util::stream::iter(pieces))
}

#[tokio::test]
async fn issue15_an_import_over_max_import_bytes_is_413_and_changes_nothing() {
    let w = world();
    let text = csv();
    assert!(text.len() < LIMIT as usize);
    // Declared over the cap: refused before it is read.
    let big = format!("{text}{}", "E9,x\n".repeat(LIMIT as usize / 4));
    let (st, body) = w.post("/api/v1/imports?source=hr", &w.operator, &big).await;
    let body: serde_json::Value = body;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(body["message"], format!("the snapshot is over {LIMIT} bytes, the server's `max_import_bytes`"));
    untouched(&w);
    // Streamed with no length: refused once the cap is passed.
    let pieces = big.as_bytes().chunks(4096).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let (st, raw) = w.raw("POST", "/api/v1/imports?source=hr", &w.operator, streamed(pieces)).await;
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!((st, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{body}");
    untouched(&w);
    // Under the cap, streamed in pieces that split rows: imported as a file is.
    let pieces = text.as_bytes().chunks(777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let (st, raw) = w.raw("POST", "/api/v1/imports?source=hr", &w.operator, streamed(pieces)).await;
    let report: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["counts"]["accepted"], 30);
    use sha2::Digest as _;
    assert_eq!(report["sha256"], hex::encode(sha2::Sha256::digest(text.as_bytes())));
}

#[tokio::test]
async fn issue15_an_upload_cut_off_between_rows_is_not_a_shorter_snapshot() {
    let w = world();
    let text = csv();
    // Whole rows, then the body fails: the rows missing would otherwise be leavers.
    let cut = text.match_indices('\n').nth(10).map(|(i, _)| i + 1).unwrap();
    let pieces = vec![Ok(Bytes::copy_from_slice(&text.as_bytes()[..cut])), Err(std::io::Error::other("reset"))];
    let (st, raw) = w.raw("POST", "/api/v1/imports?source=hr", &w.operator, streamed(pieces)).await;
    assert_ne!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&raw));
    untouched(&w);
}

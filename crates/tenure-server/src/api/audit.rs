//! `GET /api/v1/audit/verify` (the whole chain and every signed checkpoint, as
//! `tenure audit verify` checks them) and `GET /api/v1/audit/export` (the records as JSONL,
//! streamed: byte for byte what `tenure audit export` writes, so `tenure audit verify --export`
//! checks a download offline).

use super::{Q, St, blocking};
use crate::ServerState;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tenure_engine::evidence;
use tenure_store::AuditFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Records read per store call while streaming, so no export holds the store for its length.
const CHUNK: usize = 2000;

pub fn router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(verify)).routes(routes!(export))
}

/// Verifies the whole chain and the signed checkpoints (with the public key beside the signing
/// key, when there is one). The response is what `tenure audit verify --format json` reports.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The verification report; `ok` says whether it holds", body = Object)))]
async fn verify(State(state): St) -> ApiResult<Json<evidence::StoreReport>> {
    let report = blocking(&state, |app| {
        let p = evidence::public_key_path(&app.loaded().signing_key_path());
        let key = if p.exists() { Some(evidence::read_public_key(&p)?) } else { None };
        Ok(evidence::verify_store(app.store_ref(), key.as_ref(), None)?)
    })
    .await?;
    Ok(Json(report))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only records about this identity.
    pub identity: Option<String>,
    /// Records at or after this date (YYYY-MM-DD) or time (RFC 3339).
    pub since: Option<String>,
}

fn normalize_since(s: &str) -> ApiResult<String> {
    if let Some(d) = tenure_core::date::parse_date(s).filter(|_| s.len() == 10) {
        return Ok(format!("{d}T00:00:00.000000Z"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .map_err(|_| {
            ApiError::invalid(format!(
                "`since` `{}` is not YYYY-MM-DD or an RFC 3339 time",
                tenure_core::text::escape(s)
            ))
        })
}

/// The audit records as JSONL, one record per line, streamed; a filtered export starts with
/// its header line, as the CLI's does.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportParams),
    responses((status = 200, description = "JSON lines", content_type = "application/jsonl", body = String),
        (status = 400, body = tenure_proto::ErrorBody)))]
async fn export(State(state): St, Q(params): Q<ExportParams>) -> ApiResult<Response> {
    let since = params.since.as_deref().map(normalize_since).transpose()?;
    let filter = AuditFilter { identity: params.identity, since };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let header_line = evidence::export_header(&filter).map(|h| format!("{}\n", h.line()));
    let app = state.app.clone();
    tokio::spawn(async move {
        if let Some(h) = header_line
            && tx.send(Ok(h.into_bytes())).await.is_err()
        {
            return;
        }
        let mut after = 0;
        loop {
            let f = filter.clone();
            let chunk = tenure_engine::blocking::app(&app, move |app| {
                let store: &dyn tenure_store::Browse = app.store().as_ref();
                tenure_engine::views::audit_page(store, &f, after, CHUNK)
            })
            .await;
            let records = match chunk {
                Ok(r) => r,
                Err(e) => {
                    // The status line is gone: the stream ends early, and the log says why.
                    tracing::error!(error = %e, "audit export failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("audit export failed"))).await;
                    return;
                }
            };
            let Some(last) = records.last().map(|r| r.seq) else { return };
            let mut buf = Vec::with_capacity(records.len() * 400);
            for r in &records {
                if serde_json::to_writer(&mut buf, r).is_err() {
                    let _ = tx.send(Err(std::io::Error::other("audit export failed"))).await;
                    return;
                }
                buf.push(b'\n');
            }
            if tx.send(Ok(buf)).await.is_err() {
                return;
            }
            if records.len() < CHUNK {
                return;
            }
            after = last;
        }
    });
    let stream = tokio_stream_from(rx);
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], Body::from_stream(stream)).into_response())
}

/// The receiving end of the channel as a stream of body chunks.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

//! `POST /api/v1/imports?source=NAME` (a CSV snapshot as the body, diffed, planned and
//! committed or held exactly as `tenure import` does) and `POST /api/v1/simulate` (a policy as
//! the body: the whole population's plan under it; changes nothing).

use super::{Q, St, blocking};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use tenure_core::error::Code;
use tenure_engine::app::AppError;
use tenure_engine::import::{self, ImportOptions};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest policy accepted.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// How many pieces of an upload wait for the parser at most: the body is read as fast as it
/// is parsed, so an upload in flight holds a few pieces in memory, never the file.
const PIECES_IN_FLIGHT: usize = 16;

pub fn router() -> OpenApiRouter<ServerState> {
    // The snapshot's size is capped by `[server] max_import_bytes` while it streams in.
    OpenApiRouter::new().routes(routes!(import_snapshot)).merge(
        OpenApiRouter::new().routes(routes!(simulate)).layer(axum::extract::DefaultBodyLimit::max(MAX_POLICY_BYTES)),
    )
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The source name from the config (a `kind = "csv"` source).
    pub source: String,
    /// Show what would happen; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Imports a CSV snapshot of a source. Rejected rows are reported with line and reason (and do
/// not fail the request); a batch past the guard is held for approval. The response is the
/// report `tenure import --format json` prints. The body is parsed as it arrives, never held
/// whole; one over `[server] max_import_bytes` is 413 and changes nothing.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The snapshot, as the source's CSV file"),
    responses((status = 200, description = "The import report", body = Object),
        (status = 404, description = "Unknown source", body = tenure_proto::ErrorBody),
        (status = 413, description = "Over `[server] max_import_bytes`", body = tenure_proto::ErrorBody),
        (status = 422, description = "Not this source's CSV", body = tenure_proto::ErrorBody)))]
async fn import_snapshot(
    State(state): St,
    p: Principal,
    Q(params): Q<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<import::ImportReport>> {
    let limit = state.app.config().server.max_import_bytes;
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the snapshot is over {limit} bytes, the server's `max_import_bytes`"),
        )
    };
    // A declared length over the cap is refused before anything is read.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let actor = p.actor();
    // As `tenure import` does: the targets not correlated yet are read first.
    let pending =
        blocking(&state, |app| Ok(tenure_engine::correlation::pending_targets(app.config(), app.store().as_ref())?))
            .await?;
    let correlation = if pending.is_empty() {
        None
    } else {
        let conns = tenure_engine::executor::connectors(state.app.config()).await;
        let (inventory, unread) = tenure_engine::correlation::read_inventory(&conns, &pending).await;
        Some(import::Correlate { inventory, unread })
    };
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let import = blocking(&state, move |app| {
        let opts = ImportOptions { dry_run: params.dry_run, actor: Some(actor), correlation };
        let file = format!("api upload for `{}`", params.source);
        Ok(import::import_reader(&app.engine()?, &params.source, &file, Upload { rx, piece: Bytes::new() }, &opts)?)
    });
    let (over, report) = tokio::join!(forward(body, tx, limit), import);
    if over {
        return Err(too_large());
    }
    Ok(Json(report?))
}

/// A piece of an upload on its way to the parser.
enum Piece {
    Data(Bytes),
    /// The body ended where the client ended it.
    End,
    /// The body could not be read whole (the client went away, or it is over the cap).
    Failed(String),
}

/// Sends the body to the parser piece by piece, counting it; whether it went over `limit`.
async fn forward(body: Body, tx: tokio::sync::mpsc::Sender<Piece>, limit: u64) -> bool {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut read: u64 = 0;
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Piece::Failed(format!("the upload was cut off: {e}"))).await;
                return false;
            }
        };
        read += piece.len() as u64;
        if read > limit {
            let _ = tx.send(Piece::Failed(format!("the upload is over {limit} bytes"))).await;
            return true;
        }
        if tx.send(Piece::Data(piece)).await.is_err() {
            // The parser stopped reading (it refused the file): the rest is not needed.
            return false;
        }
    }
    let _ = tx.send(Piece::End).await;
    false
}

/// The upload as the parser reads it. Only an explicit end is the end of the file: an upload
/// that stops without one (the request was dropped) is an error, never a shorter snapshot
/// whose missing rows would look like leavers.
struct Upload {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    piece: Bytes,
}

impl std::io::Read for Upload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.rx.blocking_recv() {
                Some(Piece::Data(b)) => self.piece = b,
                Some(Piece::End) => return Ok(0),
                Some(Piece::Failed(why)) => return Err(std::io::Error::other(why)),
                None => return Err(std::io::Error::other("the upload stopped before its end")),
            }
        }
        let n = buf.len().min(self.piece.len());
        let head = self.piece.split_to(n);
        if let Some(dst) = buf.get_mut(..n) {
            dst.copy_from_slice(&head);
        }
        Ok(n)
    }
}

/// The whole population's plan under the policy in the body (TOML, as `policy.toml`).
/// Changes nothing. The response is what `tenure simulate --format json` prints.
#[utoipa::path(post, path = "/api/v1/simulate", tag = "imports",
    request_body(content = String, content_type = "application/toml", description = "A policy"),
    responses((status = 200, description = "The simulation", body = Object),
        (status = 400, body = tenure_proto::ErrorBody),
        (status = 422, description = "The policy has problems (each with line and reason)", body = tenure_proto::ErrorBody)))]
async fn simulate(State(state): St, body: Bytes) -> ApiResult<Json<import::Simulation>> {
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::invalid("the policy is not UTF-8 text"))?;
    let sim = blocking(&state, move |app| {
        let policy = tenure_policy::parse("policy", &text, app.config(), app.today()).map_err(AppError::Policy)?;
        let candidate = app.with_policy(policy);
        Ok(import::simulate(&candidate.engine()?)?)
    })
    .await?;
    Ok(Json(sim))
}

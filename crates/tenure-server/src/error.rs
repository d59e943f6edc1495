//! The one place errors become HTTP responses: `{"code", "message"}` with the status
//! `tenure_core::error::Code::http_status` gives the code.
//!
//! What a client may read and what only the log may hold are decided here. A code that means
//! "something is wrong on our side" (the store, the config, the evidence files, anything
//! unexpected) is answered with a fixed message naming the code; the detail goes to the log with
//! a request-independent `error_id` the answer repeats, so an operator can find it. Every other
//! error (not found, conflict, invalid input, a bad snapshot or policy) is about the request and
//! its message is returned as the engine wrote it: lowercase, user input in backticks, escaped.
//! No error built here carries a token or a secret: the authentication layer never puts the
//! presented credential in any message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tenure_core::error::{Code, ErrorBody, HasCode};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidInput, message)
    }

    /// An error whose text may hold internal detail: logged in full, answered with the code
    /// and a fixed message only.
    pub fn internal(code: Code, detail: &dyn std::fmt::Display) -> Self {
        let error_id = error_id();
        tracing::error!(code = code.as_str(), error_id, detail = %detail, "request failed");
        Self::new(code, format!("{}; the server log has the detail under error id {error_id}", public_text(code)))
    }

    /// Converts any error that knows its code: the message is returned when the code is about
    /// the request, logged and replaced when it is about the server.
    pub fn from_coded<E: HasCode + std::fmt::Display>(e: &E) -> Self {
        let code = e.code();
        if is_internal(code) { Self::internal(code, e) } else { Self::new(code, e.to_string()) }
    }
}

/// Whether a code is about the server rather than the request: its message stays in the log.
pub fn is_internal(code: Code) -> bool {
    matches!(
        code,
        Code::StoreUnavailable
            | Code::StoreCorrupt
            | Code::ConfigInvalid
            | Code::EvidenceUnavailable
            | Code::TargetUnavailable
            | Code::TargetRefused
            | Code::Internal
    )
}

fn public_text(code: Code) -> &'static str {
    match code {
        Code::StoreUnavailable => "the store is unavailable",
        Code::StoreCorrupt => "the store holds data that cannot be read back",
        Code::ConfigInvalid => "the server's configuration has a problem",
        Code::EvidenceUnavailable => "the audit evidence files cannot be used",
        Code::TargetUnavailable | Code::TargetRefused => "a target failed",
        _ => "internal error",
    }
}

/// A short random id tying an answer to its log line.
fn error_id() -> String {
    let mut b = [0u8; 6];
    rand::Rng::fill(&mut rand::rng(), &mut b);
    hex::encode(b)
}

impl From<tenure_engine::EngineError> for ApiError {
    fn from(e: tenure_engine::EngineError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<tenure_store::StoreError> for ApiError {
    fn from(e: tenure_store::StoreError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<tenure_engine::app::AppError> for ApiError {
    fn from(e: tenure_engine::app::AppError) -> Self {
        Self::from_coded(&e)
    }
}

impl From<tenure_engine::evidence::EvidenceError> for ApiError {
    fn from(e: tenure_engine::evidence::EvidenceError) -> Self {
        Self::from_coded(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, axum::Json(ErrorBody::new(self.code, self.message))).into_response();
        if self.code == Code::Unauthorized {
            res.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The answer for a path no route serves (after authentication, so an unauthenticated caller
/// learns nothing about which paths exist).
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(Code::NotFound, format!("no route for `{}`", tenure_core::text::escape(uri.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_codes_answer_without_their_detail() {
        let e = ApiError::from_coded(&tenure_store::StoreError::Corrupt("row 7 of table secret_stuff".into()));
        assert_eq!(e.code, Code::StoreCorrupt);
        assert!(!e.message.contains("secret_stuff"), "{}", e.message);
        assert!(e.message.contains("error id"), "{}", e.message);
        let e = ApiError::from_coded(&tenure_store::StoreError::NotFound("approval 7".into()));
        assert_eq!((e.code, e.message.as_str()), (Code::NotFound, "approval 7 not found"));
    }
}

//! SCIM errors (RFC 7644 §3.12) and the one place that turns them into HTTP responses.
//!
//! Every failure a client can cause is a [`ScimError`] with an HTTP status and, for 400s, a
//! `scimType`; its `detail` is written for the client and never carries internal text. A
//! backend failure that is not the client's doing ([`BackendError::Internal`]) is logged with
//! its detail and answered with a bare 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The SCIM content type, on every response with a body.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
/// The URN of the Error message schema.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` detail error keywords of RFC 7644 §3.12, table 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// An error answered to the client as a SCIM Error resource.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<ScimType>,
    detail: String,
}

impl ScimError {
    /// A 400 with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError { status: StatusCode::BAD_REQUEST, scim_type: Some(scim_type), detail: detail.into() }
    }

    pub fn invalid_filter(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::InvalidPath, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::NoTarget, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::Mutability, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ScimError {
        ScimError { status: StatusCode::NOT_FOUND, scim_type: None, detail: detail.into() }
    }

    pub fn method_not_allowed() -> ScimError {
        ScimError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            scim_type: None,
            detail: String::from("method not allowed on this endpoint"),
        }
    }

    /// A 401 for a request the server's authentication did not vouch for.
    pub fn unauthorized() -> ScimError {
        ScimError { status: StatusCode::UNAUTHORIZED, scim_type: None, detail: String::from("authentication required") }
    }

    /// An error with any status and no `scimType`, for a refusal made in front of the router
    /// (the server's authentication: 401, 429) that must still reach a SCIM client as a SCIM
    /// Error; `detail` is written for the client.
    pub fn with_status(status: StatusCode, detail: impl Into<String>) -> ScimError {
        ScimError { status, scim_type: None, detail: detail.into() }
    }

    /// A 403 for an authenticated caller that may not use this endpoint; `detail` says why,
    /// written for the client.
    pub fn forbidden(detail: impl Into<String>) -> ScimError {
        ScimError { status: StatusCode::FORBIDDEN, scim_type: None, detail: detail.into() }
    }

    pub fn precondition_failed() -> ScimError {
        ScimError {
            status: StatusCode::PRECONDITION_FAILED,
            scim_type: None,
            detail: String::from("the resource changed: its version does not match `If-Match`"),
        }
    }

    /// A 409 for a value that another resource already holds.
    pub fn uniqueness(detail: impl Into<String>) -> ScimError {
        ScimError { status: StatusCode::CONFLICT, scim_type: Some(ScimType::Uniqueness), detail: detail.into() }
    }

    pub fn payload_too_large() -> ScimError {
        ScimError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            scim_type: None,
            detail: String::from("the request body is too large"),
        }
    }

    /// A 500 whose cause has already been logged; nothing of it is returned.
    pub fn internal() -> ScimError {
        ScimError { status: StatusCode::INTERNAL_SERVER_ERROR, scim_type: None, detail: String::from("internal error") }
    }

    /// A 503 for a backend that cannot serve now; the client may retry.
    pub fn unavailable() -> ScimError {
        ScimError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            scim_type: None,
            detail: String::from("the service is unavailable; retry later"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn scim_type(&self) -> Option<ScimType> {
        self.scim_type
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The Error resource body.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert(String::from("scimType"), json!(t.as_str()));
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let body = self.to_json().to_string();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        response
    }
}

/// What a [`crate::ScimBackend`] reports when an operation cannot be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No resource of that type has that id.
    #[error("resource not found")]
    NotFound,
    /// The resource's current version is not the expected one (a concurrent write won).
    #[error("version mismatch")]
    VersionMismatch,
    /// Another resource already holds a value that must be unique; `attribute` names it in
    /// SCIM terms (`userName`, or a server-side key such as `externalId`).
    #[error("`{attribute}` is already taken")]
    Conflict { attribute: String },
    /// The backend refuses the resource; `detail` is shown to the client, so it must be
    /// written for it (lowercase, user input in backticks, no internal text).
    #[error("{detail}")]
    Invalid { detail: String },
    /// The backend cannot serve now (store busy, shutting down); answered 503.
    #[error("backend unavailable: {detail}")]
    Unavailable { detail: String },
    /// Anything else. `detail` is logged and never returned to the client.
    #[error("backend failure: {detail}")]
    Internal { detail: String },
}

impl From<BackendError> for ScimError {
    fn from(e: BackendError) -> ScimError {
        match e {
            BackendError::NotFound => ScimError::not_found("resource not found"),
            BackendError::VersionMismatch => ScimError::precondition_failed(),
            BackendError::Conflict { attribute } => {
                ScimError::uniqueness(format!("another resource already has this `{attribute}`"))
            }
            BackendError::Invalid { detail } => ScimError::invalid_value(detail),
            BackendError::Unavailable { detail } => {
                tracing::warn!(%detail, "scim backend unavailable");
                ScimError::unavailable()
            }
            BackendError::Internal { detail } => {
                tracing::error!(%detail, "scim backend failure");
                ScimError::internal()
            }
        }
    }
}

//! JSON errors for every route: `{"success": false, "error": "...", "code": "..."}` with a
//! status that fits (docs/reference.md §3).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use orfeas_core::OrfeasError;
use serde_json::json;

/// An error answered to a client. `code` is a stable machine-readable string: the core's
/// `ERR_…` codes where the core produced the error, server codes otherwise.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields merged into the body (e.g. the `rejected` list of an upload).
    pub extra: Option<serde_json::Value>,
    /// Answer with `Connection: close`: the request body was not read to its end, so the
    /// connection cannot carry another request (and a client must not pool it).
    pub close_connection: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
            close_connection: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ERR_BAD_REQUEST", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ERR_NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ERR_CONFLICT", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "ERR_TOO_LARGE", message)
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ERR_UNSUPPORTED_MEDIA_TYPE",
            message,
        )
    }

    /// 429: the queue is full; the client should retry later.
    pub fn queue_full(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "ERR_QUEUE_FULL", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ERR_NOT_READY", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_INTERNAL", message)
    }

    /// Marks the connection for closing after the answer.
    pub fn closing(mut self) -> Self {
        self.close_connection = true;
        self
    }

    /// Adds fields to the JSON body.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
}

impl From<OrfeasError> for ApiError {
    fn from(e: OrfeasError) -> Self {
        let status = match &e {
            OrfeasError::InvalidInput(_)
            | OrfeasError::EmptyInput { .. }
            | OrfeasError::ImageDecode { .. } => StatusCode::BAD_REQUEST,
            OrfeasError::UnsupportedFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OrfeasError::ImageTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            OrfeasError::Cancelled => StatusCode::CONFLICT,
            // The server cannot do this (yet): its weights are missing or unusable.
            OrfeasError::WeightsNotFound(_)
            | OrfeasError::WeightsInvalid { .. }
            | OrfeasError::Device(_)
            | OrfeasError::FeatureDisabled(_) => StatusCode::SERVICE_UNAVAILABLE,
            // A valid image that holds nothing to reconstruct, or whose depth the model
            // could not estimate (mostly non-finite values).
            OrfeasError::NoForeground { .. } | OrfeasError::Depth { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "{}", self.message);
        }
        let mut body = json!({ "success": false, "error": self.message, "code": self.code });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
            (self.extra, body.as_object_mut())
        {
            for (k, v) in extra {
                obj.entry(k).or_insert(v);
            }
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.close_connection {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Result type of route handlers.
pub type ApiResult<T> = Result<T, ApiError>;

//! The Batch Studio page: `orfeas-server/static/` embedded in the binary at build time.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::{ApiError, ApiResult};

/// The files of `orfeas-server/static/` (build.rs re-runs the build when they change).
#[derive(RustEmbed, Debug)]
#[folder = "static/"]
pub struct StudioAssets;

/// `GET /`: `index.html`.
pub async fn index() -> ApiResult<Response> {
    serve("index.html").ok_or_else(|| {
        ApiError::unavailable(
            "the Batch Studio page is not built into this binary (orfeas-server/static/index.html)",
        )
    })
}

/// `GET /static/{*path}`: any other embedded file, with its Content-Type.
pub async fn asset(Path(path): Path<String>) -> ApiResult<Response> {
    serve(&path).ok_or_else(|| ApiError::not_found(format!("no asset {path:?}")))
}

/// Embedded names are exact keys; a path with `..` or a leading `/` simply matches nothing.
/// Hidden files (`.gitkeep`) are not served.
fn serve(path: &str) -> Option<Response> {
    if path.split('/').any(|part| part.starts_with('.')) {
        return None;
    }
    let file = StudioAssets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = (StatusCode::OK, Body::from(file.data)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

//! The HTTP routes of docs/reference.md §3, one module per concern.

pub mod batch;
pub mod download;
pub mod gpu;
pub mod health;
pub mod jobs;
pub mod studio;
pub mod ws;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with the upload body limit on the upload route and request tracing.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config().limits.max_request_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(studio::index))
        .route("/static/{*path}", get(studio::asset))
        .route("/api/health", get(health::health))
        .route(
            "/api/batch-generate",
            post(batch::batch_generate).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/jobs", get(jobs::list))
        .route(
            "/api/jobs/{job_id}",
            get(jobs::get_job).delete(jobs::cancel_job),
        )
        .route(
            "/api/batches/{batch_id}",
            get(jobs::get_batch).delete(jobs::cancel_batch),
        )
        .route("/api/batches/{batch_id}/zip", get(download::batch_zip))
        .route("/api/download/{job_id}/{filename}", get(download::download))
        .route("/api/gpu-stats", get(gpu::gpu_stats))
        .route("/ws", get(ws::upgrade))
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

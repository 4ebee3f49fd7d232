//! `GET /api/health`: liveness plus what this server runs with.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let processor = state.processor();
    Json(json!({
        "status": if state.is_shutting_down() { "shutting_down" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "device": processor.device().to_string(),
        "slots": processor.slots(),
        // The default method (`depth` is its old name, kept for 2.5D-only clients).
        "method": processor.config().method.as_str(),
        "depth": processor.config().method.as_str(),
        // What a request may ask for: the methods whose weights this server loaded.
        "methods": processor
            .available_methods()
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>(),
        // The backgrounds a request may ask for (`birefnet` when its weights are loaded).
        "backgrounds": processor
            .available_backgrounds()
            .iter()
            .map(|b| b.as_str())
            .collect::<Vec<_>>(),
        "limits": {
            "max_file_bytes": state.config().limits.max_file_bytes,
            "max_request_bytes": state.config().limits.max_request_bytes,
            "max_files": state.config().limits.max_files,
        },
    }))
}

//! `GET /api/health`: liveness plus what this server runs with.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let processor = state.processor();
    let config = state.config();
    let (queued, running) = state.store().active_counts();
    let mut health = json!({
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
        "jobs_queued": queued,
        "jobs_running": running,
        // Uploads and outputs of the jobs the server keeps (`--max-data-size` bounds it).
        "data_bytes": state.store().data_bytes(),
        "limits": {
            "max_file_bytes": config.limits.max_file_bytes,
            "max_request_bytes": config.limits.max_request_bytes,
            "max_files": config.limits.max_files,
            "max_queue": config.max_queue,
            "max_megapixels": processor.config().limits.max_pixels as f64 / 1e6,
            "max_data_bytes": config.max_data_bytes,
            "keep_results_seconds": config.keep_results.as_secs(),
        },
        "on_restart": config.on_restart.as_str(),
    });
    if let (Some(front), Some(fields)) = (state.front(), health.as_object_mut()) {
        // A front end: whether it reaches the queue, and how many workers it hears from.
        // Finished results stay downloadable from the store while the queue is connected;
        // uploads are accepted while it is away and submitted when it is back.
        fields.insert(
            "queue".into(),
            json!(if front.is_connected() {
                "connected"
            } else {
                "disconnected"
            }),
        );
        let workers = front.workers();
        fields.insert("workers".into(), json!(workers.len()));
        // What requests may ask for is what the live workers can run.
        if let Some((methods, backgrounds)) = front.capabilities() {
            fields.insert("methods".into(), json!(methods));
            fields.insert("backgrounds".into(), json!(backgrounds));
        }
        fields.insert("slots".into(), json!(front.slots()));
    }
    Json(health)
}

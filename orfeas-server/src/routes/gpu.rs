//! `GET /api/gpu-stats` and the object the `gpu_stats` event carries.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// NVML telemetry (or `available: false` with the reason) plus slot use and queue length.
/// NVML calls may block briefly, so they run on a blocking thread.
pub async fn stats_value(state: &AppState) -> Value {
    let gpu = tokio::task::spawn_blocking(orfeas_core::gpu_stats)
        .await
        .unwrap_or_default();
    let (queued, _) = state.store().active_counts();
    let processor = state.processor();
    let mut value =
        serde_json::to_value(&gpu).unwrap_or_else(|_| json!({ "available": false, "gpus": [] }));
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "slots".into(),
            json!({ "total": processor.slots(), "busy": processor.busy_slots() }),
        );
        obj.insert("queue".into(), json!(queued));
        obj.insert("device".into(), json!(processor.device().to_string()));
        if let Some(front) = state.front() {
            add_workers(obj, &front.workers(), front.is_connected());
        }
    }
    value
}

pub async fn gpu_stats(State(state): State<AppState>) -> Json<Value> {
    Json(stats_value(&state).await)
}

/// A front end's view: every live worker (CONTRACT §10; its own `--slots` announce themselves
/// as one), and slots summed over them, so the studio's slot meter shows the cluster.
fn add_workers(
    obj: &mut serde_json::Map<String, Value>,
    workers: &[crate::cluster::WorkerPresence],
    connected: bool,
) {
    let (mut total, mut busy) = (0, 0);
    for w in workers {
        total += w.slots.total;
        busy += w.slots.busy;
    }
    obj.insert("slots".into(), json!({ "total": total, "busy": busy }));
    obj.insert(
        "workers".into(),
        json!(workers
            .iter()
            .map(|w| json!({ "id": w.id, "host": w.host, "slots": w.slots, "gpus": w.gpus }))
            .collect::<Vec<_>>()),
    );
    obj.insert(
        "queue_state".into(),
        json!(if connected {
            "connected"
        } else {
            "disconnected"
        }),
    );
}

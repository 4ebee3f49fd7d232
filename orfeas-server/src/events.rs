//! WebSocket events: `{"event": name, "data": {...}, "ts": ms}` text frames (docs/reference.md §3).
//!
//! Every event is serialised once and shared by all clients (reference-counted bytes in a broadcast
//! channel). `ts` is the server's wall clock in milliseconds when the event was sent, so a
//! client can measure delivery latency.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::json;

use crate::clock::now_ms;
use crate::jobs::{BatchCounts, JobRecord};

/// A serialised event, shared by every subscriber (reference-counted bytes: cloning it
/// for each client copies nothing).
pub type EventText = Utf8Bytes;

/// Builds an event frame from a name and a serialisable payload.
pub fn frame(event: &str, data: &impl Serialize) -> EventText {
    let value = json!({ "event": event, "data": data, "ts": now_ms() });
    Utf8Bytes::from(value.to_string())
}

/// A job event's frame; a job that a cluster worker runs also says which worker and which
/// attempt (CONTRACT §10), so a client can tell a redelivered job from a stuck one.
fn job_frame(event: &str, job: &JobRecord, mut data: serde_json::Value) -> EventText {
    if let (Some(worker), Some(fields)) = (&job.worker, data.as_object_mut()) {
        fields.insert("worker".into(), json!(worker));
        fields.insert("attempt".into(), json!(job.attempts));
    }
    frame(event, &data)
}

/// `generation_progress`: stage changes and the periodic re-send while a stage runs.
pub fn progress(job: &JobRecord) -> EventText {
    job_frame(
        "generation_progress",
        job,
        json!({
            "job_id": job.job_id,
            "batch_id": job.batch_id,
            "filename": job.filename,
            "status": job.status,
            "progress": job.progress,
            "stage": job.stage,
        }),
    )
}

/// `generation_complete`: the outputs as download URLs (never server paths).
pub fn complete(job: &JobRecord) -> EventText {
    let view = job.view();
    job_frame(
        "generation_complete",
        job,
        json!({
            "job_id": view.job_id,
            "batch_id": view.batch_id,
            "filename": view.filename,
            "success": true,
            "output_file": view.output_file,
            "outputs": view.outputs,
            "triangles": view.triangles,
            "depth": view.depth,
            "method": view.method,
            "mask": view.mask,
            "watertight": view.watertight,
            "warnings": view.warnings,
            "seconds": view.seconds,
        }),
    )
}

/// `generation_error`: the message names the file; `code` is the stable error code.
pub fn error(job: &JobRecord) -> EventText {
    job_frame(
        "generation_error",
        job,
        json!({
            "job_id": job.job_id,
            "batch_id": job.batch_id,
            "filename": job.filename,
            "success": false,
            "error": job.error,
            "code": job.code,
        }),
    )
}

/// `generation_cancelled`: the job stopped on request; nothing partial is left.
pub fn cancelled(job: &JobRecord) -> EventText {
    job_frame(
        "generation_cancelled",
        job,
        json!({
            "job_id": job.job_id,
            "batch_id": job.batch_id,
            "filename": job.filename,
            "success": false,
            "status": "cancelled",
            "error": job.error,
        }),
    )
}

/// `batch_progress`: the batch's counts by state.
pub fn batch_progress(counts: &BatchCounts) -> EventText {
    frame("batch_progress", counts)
}

/// The event that announces a job's terminal state.
pub fn terminal(job: &JobRecord) -> EventText {
    match job.status {
        crate::jobs::JobState::Complete => complete(job),
        crate::jobs::JobState::Cancelled => cancelled(job),
        _ => error(job),
    }
}

//! Job and batch state: list, inspect, cancel.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::jobs::{CancelOutcome, JobState, JobView};
use crate::state::AppState;

/// Jobs in one page of `GET /api/jobs` when the request names no `limit`.
pub const DEFAULT_PAGE: usize = 100;
/// The largest `limit`.
pub const MAX_PAGE: usize = 1000;

/// `GET /api/jobs?limit=&offset=`: a page of jobs, newest first (an array, as before the
/// pagination, so old clients keep working); `X-Total-Count` says how many there are.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<(HeaderMap, Json<Vec<JobView>>)> {
    let number = |name: &str, default: usize, max: usize| -> ApiResult<usize> {
        match query.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name} must be a whole number from 0 to {max}, not {v:?}"
                    ))
                }),
        }
    };
    let limit = number("limit", DEFAULT_PAGE, MAX_PAGE)?;
    let offset = number("offset", 0, usize::MAX)?;
    let (total, page) = state.store().page(offset, limit);
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok((headers, Json(page)))
}

/// `GET /api/jobs/{job_id}`.
pub async fn get_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<Json<JobView>> {
    state
        .store()
        .get(&job_id)
        .map(|job| Json(job.view()))
        .ok_or_else(|| ApiError::not_found(format!("no job {job_id:?}")))
}

/// `DELETE /api/jobs/{job_id}`: a waiting job is cancelled at once; a running one is asked
/// to stop and the answer waits (bounded) until it has, so `cancelled` means its partial
/// files are gone. 409 when the job had already finished (or finished before it could be
/// stopped), 202 `cancelling` when it is still winding down after the wait.
pub async fn cancel_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let store = state.store();
    let outcome = match state.front() {
        Some(front) => front
            .cancel(store, &job_id, "cancelled by request")
            .await
            .map_err(|e| queue_error(&e))?,
        None => store.cancel(&job_id, "cancelled by request"),
    };
    match outcome {
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no job {job_id:?}"))),
        CancelOutcome::Finished(status) => Err(already_finished(&job_id, status)),
        CancelOutcome::Cancelled => Ok((
            StatusCode::OK,
            Json(json!({ "job_id": job_id, "status": "cancelled", "success": true })),
        )),
        CancelOutcome::Running => match store
            .wait_finished(&job_id, state.config().cancel_wait)
            .await
        {
            Some(JobState::Cancelled) => Ok((
                StatusCode::OK,
                Json(json!({ "job_id": job_id, "status": "cancelled", "success": true })),
            )),
            Some(status) => Err(already_finished(&job_id, status)),
            None => Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "job_id": job_id, "status": "cancelling", "success": true })),
            )),
        },
    }
}

/// 503 when the queue could not be asked (it is away); the job is unchanged.
fn queue_error(e: &crate::cluster::ClusterError) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        e.code(),
        format!("the queue cannot be reached, nothing was cancelled: {e}"),
    )
}

fn already_finished(job_id: &str, status: JobState) -> ApiError {
    ApiError::conflict(format!(
        "job {job_id:?} already finished ({})",
        status.as_str()
    ))
    .with_extra(json!({ "job_id": job_id, "status": status }))
}

/// `GET /api/batches/{batch_id}`: counts by state and the job ids (and jobs) of a batch.
pub async fn get_batch(
    State(state): State<AppState>,
    Path(batch_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (counts, jobs) = state
        .store()
        .batch(&batch_id)
        .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id:?}")))?;
    let job_ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    let views: Vec<JobView> = jobs.iter().map(|j| j.view()).collect();
    Ok(Json(json!({
        "batch_id": counts.batch_id,
        "total": counts.total,
        "queued": counts.queued,
        "processing": counts.processing,
        "complete": counts.complete,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "finished": counts.finished(),
        "job_ids": job_ids,
        "jobs": views,
        "zip_url": format!("/api/batches/{}/zip", counts.batch_id),
    })))
}

/// `DELETE /api/batches/{batch_id}`: cancels every unfinished job of the batch.
pub async fn cancel_batch(
    State(state): State<AppState>,
    Path(batch_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let reason = "cancelled by request";
    let cancelled = match state.front() {
        Some(front) => {
            let (_, jobs) = state
                .store()
                .batch(&batch_id)
                .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id:?}")))?;
            let mut cancelled = Vec::new();
            for job in jobs.iter().filter(|j| !j.status.is_terminal()) {
                match front.cancel(state.store(), &job.job_id, reason).await {
                    Ok(CancelOutcome::Cancelled | CancelOutcome::Running) => {
                        cancelled.push(job.job_id.clone());
                    }
                    Ok(_) => {}
                    Err(e) => return Err(queue_error(&e)),
                }
            }
            cancelled
        }
        None => state
            .store()
            .cancel_batch(&batch_id, reason)
            .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id:?}")))?,
    };
    Ok(Json(
        json!({ "batch_id": batch_id, "cancelled": cancelled, "success": true }),
    ))
}

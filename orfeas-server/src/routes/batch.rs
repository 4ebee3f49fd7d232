//! `POST /api/batch-generate`: receive images, create one job per valid image, start them.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use orfeas_core::batch::sanitize_stem;
use serde_json::{json, Value};

use crate::clock::now_rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{JobRecord, JobSpec, NewJob, SettingsSpec};
use crate::runner::{spawn_batch, ReadyJob};
use crate::state::AppState;
use crate::upload::{self, StagingDir};

pub async fn batch_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if state.is_shutting_down() {
        return Err(ApiError::unavailable("the server is shutting down").closing());
    }
    let limits = state.config().limits;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_bytes) {
        return Err(ApiError::too_large(format!(
            "request body too large: over the limit of {} bytes",
            limits.max_request_bytes
        ))
        .closing());
    }
    let max_queue = state.config().max_queue;
    let (queued, _) = state.store().active_counts();
    if queued >= max_queue {
        return Err(queue_full(queued, max_queue, None).closing());
    }
    let multipart = multipart.map_err(|e| {
        ApiError::unsupported_media(format!(
            "expected a multipart/form-data body with image files: {e}"
        ))
        .closing()
    })?;

    let batch_id = new_id();
    let staging = StagingDir::create(state.uploads_dir().join(&batch_id))
        .map_err(|e| ApiError::internal(format!("cannot stage uploads: {e}")))?;
    let received = upload::receive(multipart, staging.path(), &limits).await?;
    let processor = state.processor();
    let request = crate::form::parse(
        &received.fields,
        &state.config().defaults,
        processor.config().method,
        processor.slots(),
    )?;
    // A batch asking only for masks makes no shape: its method needs no weights.
    let needs_method = !request.settings.formats.iter().all(|f| f.is_mask());
    match state.front() {
        // Behind a queue, the workers' models decide, not this front end's.
        Some(front) => check_workers_can_run(front, &request, needs_method)?,
        None => {
            if needs_method {
                processor
                    .check_available(request.method)
                    .map_err(ApiError::from)?;
            }
            processor
                .check_background(request.settings.background)
                .map_err(ApiError::from)?;
        }
    }

    let image_limits = processor.config().limits;
    let staged = received.files;
    let (valid, checked_out) =
        tokio::task::spawn_blocking(move || upload::validate(staged, &image_limits))
            .await
            .map_err(|e| ApiError::internal(format!("upload check failed: {e}")))?;
    let mut rejected = received.rejected;
    rejected.extend(checked_out);
    if valid.is_empty() {
        let message = if rejected.is_empty() {
            "no image files in the request (field `files`)".to_owned()
        } else {
            "no valid image in the request".to_owned()
        };
        let error = if received.oversize && rejected.iter().all(|r| r.code == "ERR_FILE_TOO_LARGE")
        {
            ApiError::too_large(format!(
                "{message}: every file is over the limit of {} bytes",
                limits.max_file_bytes
            ))
        } else {
            ApiError::bad_request(message)
        };
        return Err(error.with_extra(json!({ "rejected": rejected })));
    }

    let (queued, _) = state.store().active_counts();
    if queued + valid.len() > max_queue {
        return Err(queue_full(queued, max_queue, Some(valid.len())));
    }

    let settings = request.settings;
    let settings_spec = SettingsSpec::new(&settings, request.method);
    let formats: Vec<String> = settings
        .formats
        .iter()
        .map(|f| f.as_str().to_owned())
        .collect();
    let created_at = now_rfc3339();
    let mut new_jobs = Vec::with_capacity(valid.len());
    let mut ready = Vec::with_capacity(valid.len());
    for file in valid {
        let job_id = new_id();
        let stem = sanitize_stem(&file.filename);
        let input_dir = state.input_dir(&job_id);
        let out_dir = state.out_dir(&job_id);
        let input_name = format!("{stem}.{}", file.extension);
        let input = input_dir.join(&input_name);
        std::fs::create_dir_all(&input_dir)
            .and_then(|()| std::fs::create_dir_all(&out_dir))
            .and_then(|()| std::fs::rename(&file.path, &input))
            .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
        let input_bytes = std::fs::metadata(&input).map_or(0, |m| m.len());
        let cancel = state.job_token();
        new_jobs.push(NewJob {
            record: JobRecord {
                method: Some(request.method.as_str().to_owned()),
                formats: formats.clone(),
                quality: settings.quality.as_str().into(),
                spec: Some(JobSpec {
                    input: input_name,
                    stem: stem.clone(),
                    batch_size: request.batch_size,
                    settings: settings_spec.clone(),
                }),
                input_bytes,
                ..JobRecord::queued(&job_id, &batch_id, &file.filename, &created_at)
            },
            cancel: cancel.clone(),
        });
        ready.push(ReadyJob {
            job_id,
            filename: file.filename,
            input,
            out_dir,
            stem,
            cancel,
        });
    }
    drop(staging);

    let job_ids: Vec<String> = ready.iter().map(|j| j.job_id.clone()).collect();
    let total = job_ids.len();
    // Behind a queue the jobs run on the workers' slots, not this front end's one.
    let slots = state
        .front()
        .map_or(processor.slots(), |front| front.slots());
    let parallel = request.batch_size.min(slots).max(1);
    let per_job = state
        .store()
        .mean_seconds(settings.quality.as_str())
        .unwrap_or(match settings.quality {
            orfeas_core::Quality::Low => 1.0,
            orfeas_core::Quality::Medium => 3.0,
            orfeas_core::Quality::High => 10.0,
        });
    let estimated = (total.div_ceil(parallel) as f64 * per_job * 10.0).round() / 10.0;

    state.store().add(new_jobs);
    // Answer 202 only once the jobs are in the journal: an accepted job survives a crash.
    if let Err(e) = state.store().flush().await {
        tracing::error!(batch_id = %batch_id, "accepted jobs not yet saved: {e}");
    }
    match state.front() {
        Some(front) => front.submit(job_ids.iter().cloned()),
        None => spawn_batch(&state, &batch_id, ready, settings, request.batch_size),
    }
    tracing::info!(batch_id = %batch_id, jobs = total, rejected = rejected.len(), "batch accepted");

    let message = if rejected.is_empty() {
        format!("{total} job(s) queued")
    } else {
        format!("{total} job(s) queued, {} file(s) rejected", rejected.len())
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "batch_id": batch_id,
            "job_ids": job_ids,
            "total_jobs": total,
            "estimated_time_seconds": estimated,
            "message": message,
            "rejected": rejected,
        })),
    ))
}

/// 429 with what the queue holds; `adding` is the size of a batch that does not fit.
fn queue_full(queued: usize, max_queue: usize, adding: Option<usize>) -> ApiError {
    let message = match adding {
        Some(n) => format!(
            "the queue is full: {queued} job(s) waiting, {n} more would pass the limit of \
             {max_queue}; retry when some have finished"
        ),
        None => format!(
            "the queue is full: {queued} job(s) waiting (limit {max_queue}); retry when some \
             have finished"
        ),
    };
    ApiError::queue_full(message).with_extra(json!({ "queued": queued, "max_queue": max_queue }))
}

/// A random id (UUID v4, 32 hex digits with dashes): never derived from client input.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A request a cluster's live workers cannot run is refused now, naming what they can run;
/// with no worker live it is accepted and waits in the queue for one.
fn check_workers_can_run(
    front: &crate::cluster::Front,
    request: &crate::form::BatchRequest,
    needs_method: bool,
) -> ApiResult<()> {
    let Some((methods, backgrounds)) = front.capabilities() else {
        return Ok(());
    };
    let method = request.method.as_str();
    if needs_method && !methods.iter().any(|m| m == method) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_WEIGHTS_NOT_FOUND",
            format!(
                "no worker of this cluster can run method {method:?}: they run {}; start a \
                 worker with its weights",
                methods.join(", ")
            ),
        ));
    }
    let background = request.settings.background.as_str();
    if !backgrounds.iter().any(|b| b == background) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_WEIGHTS_NOT_FOUND",
            format!(
                "no worker of this cluster can remove backgrounds with {background:?}: they \
                 offer {}; start a worker with --segmenter-weights",
                backgrounds.join(", ")
            ),
        ));
    }
    Ok(())
}

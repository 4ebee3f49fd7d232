//! Downloads: one output file, or a batch's outputs as one ZIP.

use std::collections::HashSet;
use std::io::{Seek, SeekFrom, Write};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use crate::error::{ApiError, ApiResult};
use crate::files::{attachment, content_type, open_output};
use crate::jobs::{JobRecord, JobState, OutputRecord};
use crate::state::AppState;

/// `GET /api/download/{job_id}/{filename}`: the name is looked up among the outputs the
/// server recorded for that job; it is never joined to a path as given.
pub async fn download(
    State(state): State<AppState>,
    Path((job_id, filename)): Path<(String, String)>,
) -> ApiResult<Response> {
    let job = state
        .store()
        .get(&job_id)
        .ok_or_else(|| ApiError::not_found(format!("no job {job_id:?}")))?;
    let output = job
        .outputs
        .iter()
        .find(|o| o.file == filename)
        .ok_or_else(|| ApiError::not_found(format!("job {job_id:?} has no output {filename:?}")))?
        .clone();
    if let Some(key) = &output.key {
        let front = state.front().ok_or_else(|| {
            ApiError::unavailable(format!(
                "{filename:?} is in the cluster's store, and this server was started without --queue"
            ))
        })?;
        let (_, reader) = front
            .broker()
            .files()
            .reader(key)
            .await
            .map_err(|e| store_error(&filename, &e))?;
        return Ok(file_response(
            Body::from_stream(ReaderStream::new(reader)),
            output.bytes,
            content_type(&output.format, &output.file),
            &attachment(&output.file),
        ));
    }
    let opened = {
        let state = state.clone();
        let output = output.clone();
        tokio::task::spawn_blocking(move || open_output(&state, &job, &output))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    let body = Body::from_stream(ReaderStream::new(tokio::fs::File::from_std(opened.file)));
    Ok(file_response(
        body,
        opened.len,
        content_type(&output.format, &output.file),
        &attachment(&output.file),
    ))
}

/// 503: a result the queue's store holds cannot be read now (the queue is away).
fn store_error(file: &str, e: &crate::cluster::ClusterError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        e.code(),
        format!("{file:?} cannot be read from the cluster's store now; retry later: {e}"),
    )
}

fn file_response(body: Body, len: u64, content_type: &str, disposition: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/batches/{batch_id}/zip`: every output of the batch's complete jobs. The archive
/// is built on a blocking thread into an unlinked temporary file (the `zip` writer needs
/// `Seek`), then streamed; memory use does not grow with the archive.
pub async fn batch_zip(
    State(state): State<AppState>,
    Path(batch_id): Path<String>,
) -> ApiResult<Response> {
    let (_, jobs) = state
        .store()
        .batch(&batch_id)
        .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id:?}")))?;
    let complete: Vec<JobRecord> = jobs
        .into_iter()
        .filter(|j| j.status == JobState::Complete && !j.outputs.is_empty())
        .collect();
    if complete.is_empty() {
        return Err(ApiError::conflict(format!(
            "batch {batch_id:?} has no finished outputs yet"
        )));
    }
    let (file, len) = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || build_zip(&state, &complete))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    let body = Body::from_stream(ReaderStream::new(tokio::fs::File::from_std(file)));
    Ok(file_response(
        body,
        len,
        "application/zip",
        &attachment(&format!("orfeas-{batch_id}.zip")),
    ))
}

fn build_zip(state: &AppState, jobs: &[JobRecord]) -> Result<(std::fs::File, u64), ApiError> {
    let zip_error =
        |e: zip::result::ZipError| ApiError::internal(format!("cannot build the archive: {e}"));
    let io_error = |e: std::io::Error| ApiError::internal(format!("cannot build the archive: {e}"));
    let tmp = tempfile::tempfile_in(state.tmp_dir()).map_err(io_error)?;
    let mut writer = zip::ZipWriter::new(tmp);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let mut names = HashSet::new();
    for job in jobs {
        for output in &job.outputs {
            let mut source = match open_source(state, job, output) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(job_id = %job.job_id, file = %output.file, "left out of the archive: {}", e.message);
                    continue;
                }
            };
            let name = unique_name(&mut names, &output.file);
            writer.start_file(name, options).map_err(zip_error)?;
            std::io::copy(&mut source, &mut writer).map_err(io_error)?;
        }
    }
    let mut file = writer.finish().map_err(zip_error)?;
    file.flush().map_err(io_error)?;
    let len = file.seek(SeekFrom::End(0)).map_err(io_error)?;
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    Ok((file, len))
}

/// An output to copy into the archive: the job's own file, or a reader of the cluster's
/// store bridged to this blocking thread.
fn open_source(
    state: &AppState,
    job: &JobRecord,
    output: &OutputRecord,
) -> Result<Box<dyn std::io::Read>, ApiError> {
    let Some(key) = &output.key else {
        return Ok(Box::new(open_output(state, job, output)?.file));
    };
    let front = state
        .front()
        .ok_or_else(|| ApiError::unavailable("this server was started without --queue"))?;
    let runtime = tokio::runtime::Handle::current();
    let (_, reader) = runtime
        .block_on(front.broker().files().reader(key))
        .map_err(|e| store_error(&output.file, &e))?;
    Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
        reader, runtime,
    )))
}

/// `cat.stl`, then `cat (2).stl`, ... when two jobs of a batch had the same upload name.
fn unique_name(taken: &mut HashSet<String>, file: &str) -> String {
    let lower = |s: &str| s.to_lowercase();
    if taken.insert(lower(file)) {
        return file.to_owned();
    }
    let (stem, ext) = match file.find('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    (2..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| taken.insert(lower(candidate)))
        .unwrap_or_else(|| file.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_never_collide() {
        let mut taken = HashSet::new();
        let names: Vec<_> = [
            "cat.stl",
            "cat.stl",
            "CAT.stl",
            "cat.depth.npy",
            "cat.depth.npy",
        ]
        .iter()
        .map(|f| unique_name(&mut taken, f))
        .collect();
        assert_eq!(
            names,
            [
                "cat.stl",
                "cat (2).stl",
                "CAT (3).stl",
                "cat.depth.npy",
                "cat (2).depth.npy"
            ]
        );
    }
}

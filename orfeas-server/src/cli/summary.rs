//! The `--json` summary document (docs/reference.md §2).

use orfeas_core::{JobResult, JobStatus};
use serde_json::{json, Value};

/// One JSON document describing every job, in input order.
/// `requested` (the method asked for) stands in for `method` and `depth` of jobs that stopped
/// before the shape was made.
pub fn to_json(results: &[JobResult], requested: &str, seconds: f64) -> Value {
    let jobs: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "input": r.input,
                "outputs": r.outputs.iter().map(|o| o.path.display().to_string()).collect::<Vec<_>>(),
                "status": r.status,
                "error": r.error,
                "code": r.code,
                "depth": r.depth.unwrap_or(requested),
                "method": r.method.unwrap_or(requested),
                "mask": r.mask,
                "resolution": r.resolution,
                "warnings": r.warnings,
                "triangles": r.triangles,
                "watertight": r.watertight,
                "seconds": r.seconds,
            })
        })
        .collect();
    json!({
        "jobs": jobs,
        "total": results.len(),
        "complete": count(results, JobStatus::Complete),
        "failed": count(results, JobStatus::Error),
        "cancelled": count(results, JobStatus::Cancelled),
        "seconds": seconds,
    })
}

pub fn count(results: &[JobResult], status: JobStatus) -> usize {
    results.iter().filter(|r| r.status == status).count()
}

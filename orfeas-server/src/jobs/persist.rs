//! `jobs.json` in the data directory: written atomically (temporary file in the same
//! directory, fsync, rename), read once at start-up.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{is_safe_id, JobRecord, JobState};

/// The error text of jobs that were queued or running when the server stopped without
/// finishing them (a crash or a kill): they are reported as failed, never silently lost.
pub const INTERRUPTED: &str = "interrupted by server restart";
pub const INTERRUPTED_CODE: &str = "ERR_INTERRUPTED";

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    jobs: Vec<JobRecord>,
}

/// Writes the records to `path` atomically: a reader (or a crash) sees the old or the new
/// file, never half of one.
pub fn save(path: &Path, jobs: &[JobRecord]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".jobs-")
        .suffix(".json.tmp")
        .tempfile_in(dir)?;
    let doc = StoreFile {
        version: FORMAT_VERSION,
        jobs: jobs.to_vec(),
    };
    serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), &doc)?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Reads the records saved by a previous run. Jobs that were not finished come back as
/// `error` ("interrupted by server restart"); records with ids the server could not have
/// generated are dropped with a warning. A missing file is an empty store; an unreadable
/// one is an error (the server refuses to start rather than forget every job).
pub fn load(path: &Path, now: &str) -> std::io::Result<Vec<JobRecord>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let doc: StoreFile = serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let mut jobs = Vec::with_capacity(doc.jobs.len());
    for mut job in doc.jobs {
        if !is_safe_id(&job.job_id)
            || !is_safe_id(&job.batch_id)
            || job.outputs.iter().any(|o| !is_plain_file_name(&o.file))
        {
            tracing::warn!(job_id = %job.job_id, "dropping a persisted job with an unsafe id or file name");
            continue;
        }
        if !job.status.is_terminal() {
            job.status = JobState::Error;
            job.stage = "error".into();
            job.error = Some(INTERRUPTED.into());
            job.code = Some(INTERRUPTED_CODE.into());
            job.finished_at = Some(now.to_owned());
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// A single path component that is not `.`/`..` and holds no separator.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: JobState) -> JobRecord {
        JobRecord {
            job_id: id.into(),
            batch_id: "b1".into(),
            filename: "a.png".into(),
            status,
            progress: 0.0,
            stage: status.as_str().into(),
            outputs: vec![],
            error: None,
            code: None,
            triangles: 0,
            depth: None,
            method: None,
            mask: None,
            watertight: false,
            warnings: vec![],
            seconds: None,
            formats: vec!["stl".into()],
            quality: "low".into(),
            created_at: "t0".into(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn round_trip_marks_unfinished_jobs_interrupted_and_drops_unsafe_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jobs.json");
        let jobs = vec![
            record("done", JobState::Complete),
            record("running", JobState::Processing),
            record("waiting", JobState::Queued),
            record("../evil", JobState::Complete),
        ];
        save(&path, &jobs).expect("save");
        let back = load(&path, "t1").expect("load");
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], jobs[0]);
        for job in &back[1..] {
            assert_eq!(job.status, JobState::Error);
            assert_eq!(job.error.as_deref(), Some(INTERRUPTED));
            assert_eq!(job.finished_at.as_deref(), Some("t1"));
        }
        // no temporary file left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("jobs.json")]);
    }

    #[test]
    fn plain_names_only() {
        assert!(is_plain_file_name("cat.stl"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "/etc/passwd"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}

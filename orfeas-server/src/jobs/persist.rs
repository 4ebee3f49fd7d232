//! `jobs.json`, the store file of versions before the journal: read once to migrate it,
//! then renamed to `jobs.json.migrated` (kept, never read again).

use std::path::Path;

use serde::Deserialize;

use super::record::{is_safe_id, JobRecord};

/// The error text and code of jobs that were queued or running when the server stopped
/// without finishing them and are not re-queued (`--on-restart fail`, or no way to rerun).
pub const INTERRUPTED: &str = "interrupted by server restart";
pub const INTERRUPTED_CODE: &str = "ERR_INTERRUPTED";

/// File name of the old store inside the data directory.
pub const LEGACY_FILE: &str = "jobs.json";

#[derive(Deserialize)]
struct StoreFile {
    jobs: Vec<JobRecord>,
}

/// The records of an old `jobs.json`, `None` when there is none. Unsafe ids are dropped as
/// the journal's loader drops them; an unreadable file is an error (the server refuses to
/// start rather than forget every job).
pub fn load_legacy(path: &Path) -> std::io::Result<Option<Vec<JobRecord>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let doc: StoreFile = serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    Ok(Some(
        doc.jobs
            .into_iter()
            .filter(|job| {
                let safe = is_safe_id(&job.job_id)
                    && is_safe_id(&job.batch_id)
                    && job.outputs.iter().all(|o| is_plain_file_name(&o.file));
                if !safe {
                    tracing::warn!(job_id = %job.job_id, "dropping a persisted job with an unsafe id or file name");
                }
                safe
            })
            .collect(),
    ))
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
    use crate::jobs::record::tests::record;
    use crate::jobs::JobState;

    #[test]
    fn an_old_store_file_is_read_with_unsafe_records_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LEGACY_FILE);
        assert!(load_legacy(&path).expect("absent").is_none());
        let jobs = vec![
            record("done", JobState::Complete),
            record("../evil", JobState::Complete),
        ];
        std::fs::write(
            &path,
            serde_json::json!({ "version": 1, "jobs": jobs }).to_string(),
        )
        .expect("write");
        let back = load_legacy(&path).expect("load").expect("present");
        assert_eq!(back, vec![jobs[0].clone()]);
        std::fs::write(&path, b"{ not json").expect("write");
        assert!(load_legacy(&path).is_err());
    }

    #[test]
    fn plain_names_only() {
        assert!(is_plain_file_name("cat.stl"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "/etc/passwd"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}

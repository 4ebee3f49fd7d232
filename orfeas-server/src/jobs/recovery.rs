//! Start-up after an unclean stop: the fate of jobs the previous process left unfinished
//! (`--on-restart`), and the sweep of files no record accounts for.

use std::path::Path;
use std::str::FromStr;

use orfeas_core::CancelToken;

use super::persist::{INTERRUPTED, INTERRUPTED_CODE};
use super::record::JobRecord;
use super::store::{back_to_queue, set_error, JobStore, Live};
use crate::clock::now_rfc3339;

/// Starts a job may take before a restart stops re-queueing it: a job that keeps taking the
/// server down fails instead of crashing every start.
pub const MAX_ATTEMPTS: u32 = 3;

/// `--on-restart`: what happens to jobs that were queued or running when the previous
/// process died (crash, SIGKILL, power loss) or was stopped before it could finish them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnRestart {
    /// Run them again from the start, in their original order (the default).
    #[default]
    Requeue,
    /// Mark them failed with `ERR_INTERRUPTED`.
    Fail,
}

impl OnRestart {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requeue => "requeue",
            Self::Fail => "fail",
        }
    }
}

impl FromStr for OnRestart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "requeue" => Ok(Self::Requeue),
            "fail" => Ok(Self::Fail),
            other => Err(format!(
                "unknown --on-restart {other:?}; expected requeue or fail"
            )),
        }
    }
}

impl std::fmt::Display for OnRestart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobStore {
    /// Settles every unfinished job of the previous run: re-queued (its partial outputs
    /// removed, a fresh token from `token`) or failed with `ERR_INTERRUPTED`, by `policy`.
    /// A job that cannot run again (no stored settings, input gone, too many attempts)
    /// fails with the reason whatever the policy. Returns the re-queued jobs, oldest first,
    /// for the runner. Nothing stays queued or processing without a runner behind it.
    pub fn recover(
        &self,
        policy: OnRestart,
        mut token: impl FnMut() -> CancelToken,
    ) -> Vec<JobRecord> {
        let mut inner = self.lock();
        let mut requeued = Vec::new();
        let mut failed = 0usize;
        for idx in 0..inner.jobs.len() {
            if inner.jobs[idx].status.is_terminal() {
                continue;
            }
            let job_dir = self.data_dir.join("jobs").join(&inner.jobs[idx].job_id);
            let job = &mut inner.jobs[idx];
            let verdict = match policy {
                OnRestart::Fail => Err(INTERRUPTED.to_owned()),
                OnRestart::Requeue => can_rerun(job, &job_dir),
            };
            match verdict {
                Ok(()) => {
                    back_to_queue(job);
                    empty_dir(&job_dir.join("out"));
                    self.writer.put(job);
                    requeued.push(job.clone());
                    let id = job.job_id.clone();
                    inner.live.insert(id, Live::new(token()));
                }
                Err(reason) => {
                    let bytes_before = job.data_bytes();
                    job.outputs.clear();
                    set_error(job, INTERRUPTED_CODE, reason, now_rfc3339());
                    empty_dir(&job_dir.join("out"));
                    self.writer.put(job);
                    inner.data_bytes -= bytes_before - inner.jobs[idx].data_bytes();
                    failed += 1;
                }
            }
        }
        if !requeued.is_empty() || failed > 0 {
            tracing::warn!(
                requeued = requeued.len(),
                failed,
                policy = policy.as_str(),
                "jobs left unfinished by the previous run"
            );
        }
        requeued
    }

    /// Removes what no record accounts for: job folders of unknown ids (an upload whose
    /// record never reached the journal), and files in a finished job's `out/` that are not
    /// among its outputs (temporary files of an interrupted write). Returns how many
    /// entries were removed.
    pub fn sweep_unlisted(&self) -> usize {
        let inner = self.lock();
        let mut removed = 0;
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("jobs")) else {
            return 0;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(&idx) = name.to_str().and_then(|n| inner.index.get(n)) else {
                if remove_any(&path) {
                    removed += 1;
                }
                continue;
            };
            let job = &inner.jobs[idx];
            if !job.status.is_terminal() {
                continue;
            }
            if let Ok(files) = std::fs::read_dir(path.join("out")) {
                for file in files.flatten() {
                    let listed = file
                        .file_name()
                        .to_str()
                        .is_some_and(|f| job.outputs.iter().any(|o| o.file == f));
                    if !listed && remove_any(&file.path()) {
                        removed += 1;
                    }
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "swept files and folders no job record lists");
        }
        removed
    }
}

/// Why `job` cannot run again, if it cannot.
fn can_rerun(job: &JobRecord, job_dir: &Path) -> Result<(), String> {
    let Some(spec) = &job.spec else {
        return Err(format!(
            "{INTERRUPTED}; it was submitted to an older server version that did not store \
             its settings, so it cannot be re-queued"
        ));
    };
    if job.attempts >= MAX_ATTEMPTS {
        return Err(format!(
            "{INTERRUPTED}; it was started {} times and the server stopped each time, so it is \
             not re-queued again",
            job.attempts
        ));
    }
    if !job_dir.join("input").join(&spec.input).is_file() {
        return Err(format!(
            "{INTERRUPTED}; its uploaded image is gone, so it cannot be re-queued"
        ));
    }
    spec.settings
        .settings()
        .map(|_| ())
        .map_err(|e| format!("{INTERRUPTED}; its stored settings are not valid any more: {e}"))
}

/// Empties `dir` (a job's outputs, the staging folders at start), keeping the folder; a
/// symlink is removed, never followed.
pub(crate) fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            remove_any(&entry.path());
        }
    }
}

fn remove_any(path: &Path) -> bool {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return false,
    };
    let result = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot remove a leftover: {e}");
            false
        }
    }
}

//! A job's state in the state bucket (`job.<id>`), JSON. Every change is a compare-and-swap
//! on the entry's revision: two deliveries of one job (a worker presumed dead that wakes up,
//! a broker redelivering after a lost ack) race for the same revision, and only one wins.

use serde::{Deserialize, Serialize};

/// Where a job stands. `Complete`, `Failed` and `Cancelled` are final: nothing moves a job
/// out of them, and a delivery that finds one is acknowledged and skipped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobState {
    Queued {
        batch_id: String,
        filename: String,
        /// The job's message in the jobs stream, to delete it when a queued job is cancelled.
        sequence: u64,
    },
    Running {
        batch_id: String,
        filename: String,
        worker: String,
        attempt: u64,
        /// Why the previous attempt did not finish, when one did not.
        last_error: Option<String>,
    },
    Complete {
        batch_id: String,
        filename: String,
        worker: String,
        attempt: u64,
        outputs: Vec<StoredOutput>,
        /// The core's `generation_complete` data (triangles, method, warnings...), with the
        /// outputs' paths replaced by the store keys above.
        report: serde_json::Value,
    },
    Failed {
        batch_id: String,
        filename: String,
        code: String,
        error: String,
        attempts: u64,
    },
    Cancelled {
        batch_id: String,
        filename: String,
    },
}

/// One result file in the files bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutput {
    /// The format name (`stl`, `obj`, `mtl`, `png`...).
    pub format: String,
    /// The file's name as users download it (`cat.stl`).
    pub name: String,
    /// Its key in the files bucket.
    pub key: String,
    pub bytes: u64,
}

impl JobState {
    /// Whether the job is over (nothing will change it again).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Complete { .. } | Self::Failed { .. } | Self::Cancelled { .. }
        )
    }

    /// The batch the job belongs to.
    pub fn batch_id(&self) -> &str {
        match self {
            Self::Queued { batch_id, .. }
            | Self::Running { batch_id, .. }
            | Self::Complete { batch_id, .. }
            | Self::Failed { batch_id, .. }
            | Self::Cancelled { batch_id, .. } => batch_id,
        }
    }

    /// The job's upload name.
    pub fn filename(&self) -> &str {
        match self {
            Self::Queued { filename, .. }
            | Self::Running { filename, .. }
            | Self::Complete { filename, .. }
            | Self::Failed { filename, .. }
            | Self::Cancelled { filename, .. } => filename,
        }
    }

    /// The status name, as in the JSON.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::Running { .. } => "running",
            Self::Complete { .. } => "complete",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable job state: {e}"))
    }

    pub(crate) fn to_bytes(&self) -> bytes::Bytes {
        // A plain enum of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// The state bucket's key of the queue's store (`--store` of its first front end), which
/// workers open when they join.
pub const STORE_KEY: &str = "config.store";

/// The state bucket's key of a job.
pub fn state_key(job_id: &str) -> String {
    format!("job.{job_id}")
}

/// The state bucket's key that asks a running job to stop.
pub fn cancel_key(job_id: &str) -> String {
    format!("cancel.{job_id}")
}

/// The files bucket's key of a job's input.
pub fn input_key(job_id: &str) -> String {
    format!("inputs/{job_id}")
}

/// The files bucket's key of one result of one attempt: each attempt writes under its own
/// prefix, and only the attempt whose `Complete` won the compare-and-swap is kept.
pub fn result_key(job_id: &str, attempt: u64, name: &str) -> String {
    format!("results/{job_id}/{attempt}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_say_whether_they_are_final() {
        let states = [
            JobState::Queued {
                batch_id: "b".into(),
                filename: "a.png".into(),
                sequence: 7,
            },
            JobState::Failed {
                batch_id: "b".into(),
                filename: "a.png".into(),
                code: "ERR_DECODE".into(),
                error: "bad".into(),
                attempts: 1,
            },
        ];
        for state in states {
            let back = JobState::parse(&state.to_bytes()).expect("parses");
            assert_eq!(back.is_final(), state.status() == "failed");
            assert_eq!(back, state);
        }
    }
}

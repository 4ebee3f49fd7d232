//! What the server remembers about one job, and the JSON clients see of it.

use serde::{Deserialize, Serialize};

use super::spec::JobSpec;

/// A job's state. `processing` covers every pipeline stage; the stage itself is in
/// [`JobRecord::stage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Processing,
    Complete,
    Error,
    Cancelled,
}

impl JobState {
    /// Complete, error and cancelled never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Error | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One file the server wrote for a job. Only the bare file name is kept: downloads look the
/// name up here and join it to the job's own output directory, never a client-given path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub format: String,
    pub file: String,
    pub bytes: u64,
    /// Where a cluster worker stored the file (its key in the shared files store); absent for
    /// files this server wrote itself under the job's own folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The server's record of one job; persisted in the journal as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub batch_id: String,
    /// The uploaded file's name, sanitised (what the user recognises on the card).
    pub filename: String,
    pub status: JobState,
    /// 0-100 for the whole job.
    pub progress: f32,
    /// The pipeline stage (`queued`, `loading`, ..., `complete`, `error`, `cancelled`).
    pub stage: String,
    pub outputs: Vec<OutputRecord>,
    pub error: Option<String>,
    /// Stable code of the error (`ERR_…`).
    pub code: Option<String>,
    pub triangles: usize,
    /// The depth estimator that ran (`triposr` for objects).
    pub depth: Option<String>,
    /// How the shape is made: the method asked for until the job completes, then the one that
    /// ran (`auto` becomes the estimator it chose). Absent in job lists of older servers.
    #[serde(default)]
    pub method: Option<String>,
    /// Where the foreground came from (`alpha`, `border`, `none`), once known.
    #[serde(default)]
    pub mask: Option<String>,
    pub watertight: bool,
    /// What the user should know about the result (e.g. an object cut off by the frame).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Seconds the job spent in a slot.
    pub seconds: Option<f64>,
    /// Requested output formats and quality, for display.
    pub formats: Vec<String>,
    pub quality: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How to run the job again (input and full settings); absent in records of servers
    /// before the journal, whose unfinished jobs therefore cannot be re-queued.
    #[serde(default)]
    pub spec: Option<JobSpec>,
    /// Size of the stored upload, for the data-size limit.
    #[serde(default)]
    pub input_bytes: u64,
    /// How many times a slot started the job (a job that keeps taking the server down is
    /// not re-queued for ever).
    #[serde(default)]
    pub attempts: u32,
    /// The cluster worker that runs or ran the job (`orfeas serve --queue`); absent when this
    /// server runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// An output as clients see it: with its download URL.
#[derive(Clone, Debug, Serialize)]
pub struct OutputView {
    pub format: String,
    pub filename: String,
    pub url: String,
    pub bytes: u64,
}

impl OutputRecord {
    pub fn view(&self, job_id: &str) -> OutputView {
        OutputView {
            format: self.format.clone(),
            filename: self.file.clone(),
            url: download_url(job_id, &self.file),
            bytes: self.bytes,
        }
    }
}

/// `/api/download/{job}/{file}` with the file name percent-encoded.
pub fn download_url(job_id: &str, file: &str) -> String {
    format!(
        "/api/download/{}/{}",
        percent_encode(job_id),
        percent_encode(file)
    )
}

/// Encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A job as the API and the WebSocket `snapshot` show it (docs/reference.md §3).
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub job_id: String,
    pub batch_id: String,
    pub filename: String,
    pub status: JobState,
    pub progress: f32,
    pub stage: String,
    pub outputs: Vec<OutputView>,
    /// Download URL of the first output, when there is one.
    pub output_file: Option<String>,
    pub error: Option<String>,
    pub code: Option<String>,
    pub triangles: usize,
    pub depth: Option<String>,
    pub method: Option<String>,
    pub mask: Option<String>,
    pub watertight: bool,
    pub warnings: Vec<String>,
    pub seconds: Option<f64>,
    pub formats: Vec<String>,
    pub quality: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// What a finished job reports besides its files. The same whether it ran in this process
/// (the core's `generation_complete` event) or on a worker (the report in its queue state,
/// where a field an older worker did not send stays empty).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CompletionReport {
    pub triangles: usize,
    pub depth: Option<String>,
    pub method: Option<String>,
    pub mask: Option<String>,
    pub watertight: bool,
    pub warnings: Vec<String>,
    pub seconds: Option<f64>,
}

impl JobRecord {
    /// Marks the job complete with its files and report.
    pub fn complete(
        &mut self,
        outputs: Vec<OutputRecord>,
        report: CompletionReport,
        finished_at: String,
    ) {
        self.status = JobState::Complete;
        self.progress = 100.0;
        self.stage = JobState::Complete.as_str().into();
        self.outputs = outputs;
        self.triangles = report.triangles;
        self.depth = report.depth;
        self.method = report.method.or(self.method.take());
        self.mask = report.mask;
        self.watertight = report.watertight;
        self.warnings = report.warnings;
        self.seconds = report.seconds;
        self.finished_at = Some(finished_at);
    }

    /// A job just accepted: queued, nothing run, nothing known of its result yet.
    pub fn queued(job_id: &str, batch_id: &str, filename: &str, created_at: &str) -> Self {
        Self {
            job_id: job_id.to_owned(),
            batch_id: batch_id.to_owned(),
            filename: filename.to_owned(),
            status: JobState::Queued,
            progress: 0.0,
            stage: JobState::Queued.as_str().into(),
            outputs: Vec::new(),
            error: None,
            code: None,
            triangles: 0,
            depth: None,
            method: None,
            mask: None,
            watertight: false,
            warnings: Vec::new(),
            seconds: None,
            formats: Vec::new(),
            quality: String::new(),
            created_at: created_at.to_owned(),
            started_at: None,
            finished_at: None,
            spec: None,
            input_bytes: 0,
            attempts: 0,
            worker: None,
        }
    }

    /// Bytes this job keeps on disk: its upload and its outputs.
    pub fn data_bytes(&self) -> u64 {
        self.input_bytes + self.outputs.iter().map(|o| o.bytes).sum::<u64>()
    }

    pub fn view(&self) -> JobView {
        let outputs: Vec<OutputView> = self.outputs.iter().map(|o| o.view(&self.job_id)).collect();
        JobView {
            job_id: self.job_id.clone(),
            batch_id: self.batch_id.clone(),
            filename: self.filename.clone(),
            status: self.status,
            progress: self.progress,
            stage: self.stage.clone(),
            output_file: outputs.first().map(|o| o.url.clone()),
            outputs,
            error: self.error.clone(),
            code: self.code.clone(),
            triangles: self.triangles,
            depth: self.depth.clone(),
            method: self.method.clone(),
            mask: self.mask.clone(),
            watertight: self.watertight,
            warnings: self.warnings.clone(),
            seconds: self.seconds,
            formats: self.formats.clone(),
            quality: self.quality.clone(),
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            attempts: self.attempts,
            worker: self.worker.clone(),
        }
    }
}

/// Counts of one batch's jobs by state (the `batch_progress` event and `GET /api/batches/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub batch_id: String,
    pub total: usize,
    pub queued: usize,
    pub processing: usize,
    pub complete: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl BatchCounts {
    pub fn add(&mut self, state: JobState) {
        self.total += 1;
        match state {
            JobState::Queued => self.queued += 1,
            JobState::Processing => self.processing += 1,
            JobState::Complete => self.complete += 1,
            JobState::Error => self.failed += 1,
            JobState::Cancelled => self.cancelled += 1,
        }
    }

    /// Every job of the batch reached a terminal state.
    pub fn finished(&self) -> bool {
        self.queued == 0 && self.processing == 0
    }
}

/// Job ids are generated by the server (UUIDs); anything else found in a persisted file is
/// refused so that no record can ever name a path outside its directory.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record with every optional part empty, for the store's unit tests.
    pub(crate) fn record(id: &str, status: JobState) -> JobRecord {
        JobRecord {
            status,
            stage: status.as_str().into(),
            formats: vec!["stl".into()],
            quality: "low".into(),
            ..JobRecord::queued(id, "b1", "a.png", "t0")
        }
    }

    #[test]
    fn urls_encode_every_reserved_character() {
        assert_eq!(
            download_url("ab-1", "cat photo#1.stl"),
            "/api/download/ab-1/cat%20photo%231.stl"
        );
        assert_eq!(download_url("x", "é.glb"), "/api/download/x/%C3%A9.glb");
    }

    #[test]
    fn only_generated_ids_are_safe() {
        assert!(is_safe_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_safe_id("../etc"));
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id(""));
    }
}

//! Runs submitted jobs on the processor and feeds their events into the job store.
//!
//! `BatchProcessor::run_batch` blocks until its jobs are done, so each job runs as a
//! one-job batch on a blocking thread. Two semaphores bound the work: the batch's own
//! (`batch_size`, at most the slot count) and the server's (`slots × 2` jobs handed to the
//! processor at once). Jobs beyond that wait as async tasks that hold no thread, so a
//! thousand queued jobs cost a thousand small futures, not a thousand threads.

use std::path::PathBuf;
use std::sync::Arc;

use orfeas_core::{CancelToken, GenerateSettings, ImageSource, Job, ProgressEvent, ProgressSink};
use tokio::sync::Semaphore;

use crate::jobs::JobStore;
use crate::state::AppState;

/// One accepted upload, ready to run.
#[derive(Debug)]
pub struct ReadyJob {
    pub job_id: String,
    /// The sanitised upload name (shown to users in place of server paths).
    pub filename: String,
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub stem: String,
    pub cancel: CancelToken,
}

/// Starts a batch; returns at once. One dispatcher task per batch takes the jobs in
/// submission order, waits for a permit of the batch (`batch_size`) and one of the server
/// (`slots × 2`), then starts the job with both permits; so jobs start in the order they
/// were uploaded, and batches share the server fairly (the semaphores are FIFO).
pub fn spawn_batch(
    state: &AppState,
    batch_id: &str,
    jobs: Vec<ReadyJob>,
    settings: GenerateSettings,
    batch_size: usize,
) {
    let gate = Arc::new(Semaphore::new(batch_size.max(1)));
    let settings = Arc::new(settings);
    let batch_id = batch_id.to_owned();
    let dispatcher_state = state.clone();
    state.tasks().spawn(async move {
        let state = dispatcher_state;
        let store = Arc::clone(state.store());
        for job in jobs {
            let Ok(batch_permit) = Arc::clone(&gate).acquire_owned().await else {
                return;
            };
            let Ok(slot_permit) = Arc::clone(state.in_flight()).acquire_owned().await else {
                return;
            };
            if store.is_cancel_requested(&job.job_id) {
                // Cancelled while waiting; `cancel` already recorded it unless shutdown set
                // the token first, in which case this records it.
                store.cancel(&job.job_id, "cancelled: server shut down");
                continue;
            }
            let (state2, settings, batch_id) =
                (state.clone(), Arc::clone(&settings), batch_id.clone());
            state.tasks().spawn(async move {
                run_job(state2, batch_id, job, settings).await;
                drop((batch_permit, slot_permit));
            });
        }
    });
}

/// Runs one job on a blocking thread and makes sure the store ends with its final state.
async fn run_job(
    state: AppState,
    batch_id: String,
    job: ReadyJob,
    settings: Arc<GenerateSettings>,
) {
    let store = Arc::clone(state.store());
    let job_id = job.job_id.clone();
    let sink = Arc::new(JobSink {
        store: Arc::clone(&store),
        redactions: vec![
            (job.input.display().to_string(), job.filename.clone()),
            (format!("{}/", state.data_dir().display()), String::new()),
        ],
    });
    let processor = Arc::clone(state.processor());
    let core_job = Job {
        id: job.job_id.clone().into(),
        input: ImageSource::Path(job.input),
        out_dir: job.out_dir,
        stem: Some(job.stem),
        cancel: Some(job.cancel),
    };
    let outcome = tokio::task::spawn_blocking(move || {
        processor.run_batch(
            &batch_id,
            vec![core_job],
            &settings,
            sink,
            &CancelToken::new(),
        )
    })
    .await;
    match outcome {
        Ok(Ok(results)) => {
            for result in &results {
                store.reconcile(&result.id.0, Ok(result));
            }
        }
        Ok(Err(e)) => store.reconcile(&job_id, Err((e.code(), e.to_string()))),
        Err(join) => store.reconcile(
            &job_id,
            Err((
                "ERR_INTERNAL",
                format!("internal error: the job task failed: {join}"),
            )),
        ),
    }
}

/// Forwards one job's core events to the store, with server paths in error messages
/// replaced by the upload's name (clients never learn where the data directory is).
struct JobSink {
    store: Arc<JobStore>,
    redactions: Vec<(String, String)>,
}

impl ProgressSink for JobSink {
    fn emit(&self, event: &ProgressEvent) {
        if let ProgressEvent::GenerationError { .. } = event {
            let mut event = event.clone();
            if let ProgressEvent::GenerationError { error, .. } = &mut event {
                for (from, to) in &self.redactions {
                    *error = error.replace(from.as_str(), to);
                }
            }
            self.store.apply(&event);
        } else {
            self.store.apply(event);
        }
    }
}

//! Runs submitted jobs on the processor and feeds their events into the job store.
//!
//! `BatchProcessor::run_batch` blocks until its jobs are done, so each job runs as a
//! one-job batch on a blocking thread. Two semaphores bound the work: the batch's own
//! (`batch_size`, at most the slot count) and the server's (`slots × 2` jobs handed to the
//! processor at once). Jobs beyond that wait as async tasks that hold no thread, so a
//! thousand queued jobs cost a thousand small futures, not a thousand threads.
//!
//! At shutdown the dispatchers stop: jobs not yet started stay queued (in the journal) for
//! the next start. Jobs re-queued from a previous run go through the same path ([`resume`]).

use std::path::PathBuf;
use std::sync::Arc;

use orfeas_core::{
    CancelToken, GenerateSettings, ImageSource, Job, ProgressEvent, ProgressSink, Stage,
};
use tokio::sync::Semaphore;

use crate::jobs::{JobRecord, JobStore, INTERRUPTED_CODE};
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
        let shutdown = state.shutdown_token().clone();
        for job in jobs {
            let permits = async {
                let batch = Arc::clone(&gate).acquire_owned().await.ok()?;
                let slot = Arc::clone(state.in_flight()).acquire_owned().await.ok()?;
                Some((batch, slot))
            };
            let (batch_permit, slot_permit) = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                permits = permits => match permits {
                    Some(p) => p,
                    None => return,
                },
            };
            if shutdown.is_cancelled() {
                // Draining: this job and the rest stay queued for the next start.
                return;
            }
            if store.is_cancel_requested(&job.job_id) {
                // Cancelled while waiting; `cancel` recorded it.
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

/// Starts the jobs a previous run left unfinished (already re-queued in the store), batch
/// by batch in their original order, with the settings each was submitted with.
pub fn resume(state: &AppState, jobs: Vec<JobRecord>) {
    let store = Arc::clone(state.store());
    let mut groups: Vec<(String, GenerateSettings, usize, Vec<ReadyJob>)> = Vec::new();
    for record in jobs {
        let Some(spec) = &record.spec else { continue };
        let (settings, cancel) = match (spec.settings.settings(), store.token(&record.job_id)) {
            (Ok(settings), Some(cancel)) => (settings, cancel),
            (Err(e), _) => {
                store.reconcile(&record.job_id, Err((INTERRUPTED_CODE, e.to_string())));
                continue;
            }
            (_, None) => continue,
        };
        let ready = ReadyJob {
            job_id: record.job_id.clone(),
            filename: record.filename.clone(),
            input: state.input_dir(&record.job_id).join(&spec.input),
            out_dir: state.out_dir(&record.job_id),
            stem: spec.stem.clone(),
            cancel,
        };
        match groups.last_mut() {
            Some((batch, s, _, list)) if *batch == record.batch_id && *s == settings => {
                list.push(ready);
            }
            _ => groups.push((
                record.batch_id.clone(),
                settings,
                spec.batch_size,
                vec![ready],
            )),
        }
    }
    for (batch_id, settings, batch_size, ready) in groups {
        tracing::info!(batch_id = %batch_id, jobs = ready.len(), "resuming re-queued jobs");
        spawn_batch(state, &batch_id, ready, settings, batch_size);
    }
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
        hold: state
            .config()
            .hold_jobs_at
            .map(|stage| (stage, state.clone())),
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
    /// `hold_jobs_at`: the stage where the job waits for a cancel or a release.
    hold: Option<(Stage, AppState)>,
    redactions: Vec<(String, String)>,
}

impl JobSink {
    /// Blocks the job's own thread (never an async worker: the core emits from its slot)
    /// while the job sits at the hold stage.
    fn hold_if_asked(&self, event: &ProgressEvent) {
        let Some((hold, state)) = &self.hold else {
            return;
        };
        if let ProgressEvent::GenerationProgress { job_id, stage, .. } = event {
            if stage == hold {
                while !state.is_held_released() && !self.store.is_cancel_requested(&job_id.0) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

impl ProgressSink for JobSink {
    fn emit(&self, event: &ProgressEvent) {
        self.forward(event);
        self.hold_if_asked(event);
    }
}

impl JobSink {
    fn forward(&self, event: &ProgressEvent) {
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

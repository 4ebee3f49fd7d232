//! The slot scheduler: a bounded queue feeding N slot threads.
//!
//! Slots bound how many jobs are in flight (and, with CUDA, how many model streams exist).
//! Each job runs on its slot's thread, so its serial stages and its file writes overlap with
//! other jobs' work; only data-parallel sections enter the process's one CPU pool
//! (`crate::threads`), which every slot, every processor and every single-image call share.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use super::commit::commit;
use super::tally::{Phase, Tally};
use super::{assign_stems, Job, JobResult, JobStatus};
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::export::OutputFile;
use crate::foreground::Background;
use crate::image::ImageLimits;
use crate::options::{Device, GenerateSettings, Method};
use crate::pipeline::{export_files, image_to_model, stage_plan, ModelReport, ShapeSetup};
use crate::progress::{ProgressEvent, ProgressSink, Stage};

/// How a [`BatchProcessor`] is set up; shared by all batches it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchConfig {
    /// Jobs processed at once; [`AUTO_SLOTS`] (the default) follows the device: four per GPU
    /// (model streams overlap there), one per core on the CPU (capped at
    /// [`MAX_AUTO_CPU_SLOTS`]), where more slots than cores only add memory.
    pub slots: usize,
    /// Jobs waiting beyond the running ones before `run` blocks its caller (default 64).
    pub queue_capacity: usize,
    /// The method of batches whose settings name none; its weights must load (when it needs
    /// any) before the processor starts.
    pub method: Method,
    /// Also load the other methods' models when their weights are in the Hugging Face cache,
    /// so that batches may ask for any method (the server). Off: only `method`'s.
    pub all_methods: bool,
    pub device: Device,
    /// Model weights (file or directory) for `method`.
    pub weights: Option<std::path::PathBuf>,
    /// The background of batches whose settings name none is the settings' own; this says
    /// which remover to load: `auto` (and `all_methods`) loads BiRefNet when its weights are
    /// cached, `birefnet` requires them.
    pub background: Background,
    /// BiRefNet's `model.safetensors` (file or directory), `--segmenter-weights`.
    pub segmenter_weights: Option<std::path::PathBuf>,
    pub limits: ImageLimits,
    /// Threads of the process's CPU pool for data-parallel work (default: every core). The
    /// pool is made once per process: this sizes it only when this processor is the first
    /// user of it (see `threads::ensure_pool`).
    pub threads: Option<usize>,
    /// Sync each job's files and their directory to the disk before it completes, so that a
    /// job reported complete survives a power cut (on for `orfeas serve`). Off, files are
    /// still published atomically by rename, which survives a crash of the process.
    pub durable: bool,
}

/// `slots` value asking for the device's default (see [`BatchConfig::slots`]).
pub const AUTO_SLOTS: usize = 0;

/// The most slots [`AUTO_SLOTS`] gives on the CPU: each slot holds one job's buffers (about
/// 150 MB at `high`), and the data-parallel stages already spread one job over the cores.
pub const MAX_AUTO_CPU_SLOTS: usize = 16;

/// Slots on a GPU when the caller names none.
const GPU_SLOTS: usize = 4;

/// The number of slots `slots` means on `device` (already resolved).
fn resolve_slots(slots: usize, device: Device) -> usize {
    match (slots, device) {
        (AUTO_SLOTS, Device::Cuda(_)) => GPU_SLOTS,
        (AUTO_SLOTS, _) => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_AUTO_CPU_SLOTS),
        (n, _) => n,
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            slots: AUTO_SLOTS,
            queue_capacity: 64,
            method: Method::Auto,
            all_methods: false,
            device: Device::Auto,
            weights: None,
            background: Background::Auto,
            segmenter_weights: None,
            limits: ImageLimits::default(),
            threads: None,
            durable: false,
        }
    }
}

/// Runs jobs on a fixed number of slots. Cheap to share (`&self` everywhere); dropping it
/// lets the running jobs finish and stops the slot threads.
pub struct BatchProcessor {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for BatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("slots", &self.workers.len())
            .field("device", &self.shared.device)
            .field("busy", &self.busy_slots())
            .finish()
    }
}

struct Shared {
    config: BatchConfig,
    device: Device,
    /// The methods with their models loaded once, shared by every slot.
    setup: ShapeSetup,
    queue: Mutex<Queue>,
    task_ready: Condvar,
    space_ready: Condvar,
    busy: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    shutdown: bool,
}

/// Everything one job needs, owned, so slots share nothing but the batch's `Arc`.
struct Task {
    index: usize,
    job: Job,
    cancel: CancelToken,
    batch: Arc<BatchRun>,
}

struct BatchRun {
    id: String,
    settings: GenerateSettings,
    sink: Arc<dyn ProgressSink>,
    tally: Tally,
    results: Mutex<mpsc::Sender<(usize, JobResult)>>,
}

impl BatchRun {
    /// A sink that panics is logged and ignored: progress must never take a batch down.
    fn emit(&self, event: ProgressEvent) {
        if catch_unwind(AssertUnwindSafe(|| self.sink.emit(&event))).is_err() {
            tracing::warn!(
                event = event.name(),
                "progress sink panicked; event dropped"
            );
        }
    }
}

static BATCH_COUNTER: AtomicU64 = AtomicU64::new(1);

impl BatchProcessor {
    /// Starts the slot threads. Fails on a bad configuration or an unusable device.
    pub fn new(mut config: BatchConfig) -> Result<Self> {
        if config.slots > 256 {
            return Err(OrfeasError::InvalidInput(format!(
                "slots must be between 1 and 256 (or 0 for the device's default), got {}",
                config.slots
            )));
        }
        // Before anything (loading weights included) can use rayon and fix the pool's size.
        crate::threads::ensure_pool(config.threads);
        let device = config.device.resolve()?;
        config.slots = resolve_slots(config.slots, device);
        let setup = ShapeSetup::resolve_on(
            config.method,
            config.weights.as_deref(),
            config.all_methods,
            device,
            config.slots,
        )?
        .with_segmenter(
            // A server takes any background per request: it loads what is cached, unless its
            // default is `birefnet`, whose weights must then be there before it starts.
            if config.all_methods && config.background != Background::Birefnet {
                Background::Auto
            } else {
                config.background
            },
            config.segmenter_weights.as_deref(),
            device,
        )?;
        let shared = Arc::new(Shared {
            config,
            device,
            setup,
            queue: Mutex::new(Queue::default()),
            task_ready: Condvar::new(),
            space_ready: Condvar::new(),
            busy: AtomicUsize::new(0),
        });
        let workers = (0..shared.config.slots)
            .map(|slot| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("orfeas-slot-{slot}"))
                    .spawn(move || slot_loop(&shared))
                    .map_err(|e| OrfeasError::Internal(format!("cannot start slot thread: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { shared, workers })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.workers.len()
    }

    /// Slots running a job right now.
    pub fn busy_slots(&self) -> usize {
        self.shared.busy.load(Ordering::Relaxed)
    }

    /// Jobs waiting for a slot.
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).tasks.len()
    }

    /// The device jobs run on (`auto` already resolved where it can be).
    pub fn device(&self) -> Device {
        self.shared.device
    }

    /// The processor's configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.shared.config
    }

    /// The methods batches can run with the models this processor loaded.
    pub fn available_methods(&self) -> Vec<Method> {
        self.shared.setup.available_methods()
    }

    /// Whether a batch may ask for `method`: `Ok`, or the error its jobs would fail with
    /// (`ERR_WEIGHTS_NOT_FOUND` saying how to get the weights).
    pub fn check_available(&self, method: Method) -> Result<()> {
        self.shared.setup.generator(method).map(|_| ())
    }

    /// Whether a batch may ask for `background` (only `birefnet` needs a loaded model).
    pub fn check_background(&self, background: Background) -> Result<()> {
        self.shared.setup.masking.check(background)
    }

    /// The backgrounds batches can ask for with what is loaded.
    pub fn available_backgrounds(&self) -> Vec<Background> {
        Background::ALL
            .into_iter()
            .filter(|&b| self.check_background(b).is_ok())
            .collect()
    }

    /// Runs `jobs` and returns their results in input order. One job's failure, panic or
    /// cancellation stays in that job. Errors only for settings that no job could use.
    pub fn run(
        &self,
        jobs: Vec<Job>,
        settings: &GenerateSettings,
        sink: Arc<dyn ProgressSink>,
        cancel: &CancelToken,
    ) -> Result<Vec<JobResult>> {
        let id = format!("batch-{}", BATCH_COUNTER.fetch_add(1, Ordering::Relaxed));
        self.run_batch(&id, jobs, settings, sink, cancel)
    }

    /// [`run`](Self::run) with a batch id chosen by the caller (used in every event).
    pub fn run_batch(
        &self,
        batch_id: &str,
        mut jobs: Vec<Job>,
        settings: &GenerateSettings,
        sink: Arc<dyn ProgressSink>,
        cancel: &CancelToken,
    ) -> Result<Vec<JobResult>> {
        settings.validate()?;
        settings.check_method(settings.method_or(self.shared.config.method))?;
        self.check_background(settings.background)?;
        assign_stems(&mut jobs, &settings.formats);
        let total = jobs.len();
        let (tx, rx) = mpsc::channel();
        let batch = Arc::new(BatchRun {
            id: batch_id.to_owned(),
            settings: settings.clone(),
            sink,
            tally: Tally::new(batch_id.to_owned(), total),
            results: Mutex::new(tx),
        });
        for job in &jobs {
            batch.emit(ProgressEvent::GenerationProgress {
                job_id: job.id.clone(),
                batch_id: batch.id.clone(),
                input: job.input.name(),
                progress: 0.0,
                stage: Stage::Queued,
            });
        }
        batch.emit(batch.tally.snapshot());

        for (index, job) in jobs.into_iter().enumerate() {
            let job_cancel = job.cancel.clone().unwrap_or_else(|| cancel.child());
            let task = Task {
                index,
                job,
                cancel: job_cancel,
                batch: Arc::clone(&batch),
            };
            self.enqueue(task);
        }
        drop(batch);

        let mut results: Vec<Option<JobResult>> = vec![None; total];
        for (index, result) in rx.iter().take(total) {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| OrfeasError::Internal("a job finished without a result".into()))
            })
            .collect()
    }

    /// Waits for room in the bounded queue, then hands the task to the slots.
    fn enqueue(&self, task: Task) {
        let mut queue = lock(&self.shared.queue);
        while queue.tasks.len() >= self.shared.config.queue_capacity.max(1) {
            queue = self
                .shared
                .space_ready
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
        queue.tasks.push_back(task);
        self.shared.task_ready.notify_one();
    }
}

impl Drop for BatchProcessor {
    fn drop(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.task_ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn slot_loop(shared: &Shared) {
    loop {
        let task = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(task) = queue.tasks.pop_front() {
                    shared.space_ready.notify_one();
                    break Some(task);
                }
                if queue.shutdown {
                    break None;
                }
                queue = shared
                    .task_ready
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        match task {
            Some(task) => process(shared, task),
            None => return,
        }
    }
}

/// Runs one task to its end and reports it; never panics, never returns early. The job's
/// files are committed (`commit`) only here, right before the completion event.
fn process(shared: &Shared, task: Task) {
    let Task {
        index,
        job,
        cancel,
        batch,
    } = task;
    let input = job.input.name();
    let started = Instant::now();
    let mut report: Option<ModelReport> = None;

    let (outcome, from) = if cancel.is_cancelled() {
        (Err(OrfeasError::Cancelled), Phase::Queued)
    } else {
        batch.emit(batch.tally.shift(Phase::Queued, Phase::Processing));
        shared.busy.fetch_add(1, Ordering::Relaxed);
        // On this slot's thread: only data-parallel sections enter the shared pool.
        let out = catch_unwind(AssertUnwindSafe(|| {
            run_one(shared, &batch, &job, &cancel, &mut report)
        }))
        .unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(input = %input, "job panicked: {msg}");
            Err(OrfeasError::Internal(format!("{input}: {msg}")))
        });
        shared.busy.fetch_sub(1, Ordering::Relaxed);
        // The commit point, as late as it can be: nothing but the report comes after it.
        (
            out.and_then(|outputs| commit(outputs, &cancel)),
            Phase::Processing,
        )
    };
    let seconds = started.elapsed().as_secs_f64();
    let depth_used = report.as_ref().map(|r| r.depth);
    let method_used = report.as_ref().map(|r| r.method);
    let mask = report.as_ref().map(|r| r.mask);
    let warnings = report
        .as_ref()
        .map(|r| r.warnings.clone())
        .unwrap_or_default();
    let resolution = report
        .as_ref()
        .and_then(|r| r.object())
        .map(|o| o.resolution);

    let result = match outcome {
        Ok(outputs) => {
            let (triangles, watertight) = report
                .as_ref()
                .map_or((0, false), |r| (r.triangles, r.watertight));
            batch.emit(ProgressEvent::GenerationComplete {
                job_id: job.id.clone(),
                batch_id: batch.id.clone(),
                input: input.clone(),
                success: true,
                outputs: outputs.clone(),
                triangles,
                depth: depth_used.unwrap_or_default().to_owned(),
                method: method_used.unwrap_or_default().to_owned(),
                mask,
                watertight,
                warnings: warnings.clone(),
                seconds,
            });
            batch.emit(batch.tally.shift(from, Phase::Complete));
            JobResult {
                id: job.id,
                input,
                outputs,
                status: JobStatus::Complete,
                error: None,
                code: None,
                depth: depth_used,
                method: method_used,
                mask,
                resolution,
                warnings,
                triangles,
                watertight,
                seconds,
            }
        }
        Err(OrfeasError::Cancelled) => {
            batch.emit(ProgressEvent::GenerationCancelled {
                job_id: job.id.clone(),
                batch_id: batch.id.clone(),
                input: input.clone(),
            });
            batch.emit(batch.tally.shift(from, Phase::Cancelled));
            let e = OrfeasError::Cancelled;
            JobResult {
                id: job.id,
                input,
                outputs: vec![],
                status: JobStatus::Cancelled,
                error: Some(e.to_string()),
                code: Some(e.code()),
                depth: depth_used,
                method: method_used,
                mask,
                resolution,
                warnings: warnings.clone(),
                triangles: 0,
                watertight: false,
                seconds,
            }
        }
        Err(e) => {
            tracing::warn!(input = %input, code = e.code(), "job failed: {e}");
            batch.emit(ProgressEvent::GenerationError {
                job_id: job.id.clone(),
                batch_id: batch.id.clone(),
                input: input.clone(),
                success: false,
                error: e.to_string(),
                code: e.code(),
            });
            batch.emit(batch.tally.shift(from, Phase::Failed));
            JobResult {
                id: job.id,
                input,
                outputs: vec![],
                status: JobStatus::Error,
                error: Some(e.to_string()),
                code: Some(e.code()),
                depth: depth_used,
                method: method_used,
                mask,
                resolution,
                warnings: warnings.clone(),
                triangles: 0,
                watertight: false,
                seconds,
            }
        }
    };
    let _ = lock(&batch.results).send((index, result));
}

/// Runs every stage of one job up to its files on disk (not yet committed); `report` is
/// filled as soon as the model exists, so a job that fails while exporting still reports which
/// estimator and mask it used.
fn run_one(
    shared: &Shared,
    batch: &BatchRun,
    job: &Job,
    cancel: &CancelToken,
    report: &mut Option<ModelReport>,
) -> Result<Vec<OutputFile>> {
    let input = job.input.name();
    let mut on_stage = |stage: Stage, progress: f32| {
        batch.emit(ProgressEvent::GenerationProgress {
            job_id: job.id.clone(),
            batch_id: batch.id.clone(),
            input: input.clone(),
            progress,
            stage,
        });
    };
    let model = image_to_model(
        &job.input,
        &batch.settings,
        &shared.setup,
        &shared.config.limits,
        cancel,
        &mut on_stage,
    )?;
    *report = Some(model.report.clone());
    let plan = stage_plan(
        &batch.settings,
        batch.settings.method_or(shared.config.method),
    );
    on_stage(Stage::Exporting, plan.start(Stage::Exporting));
    std::fs::create_dir_all(&job.out_dir).map_err(|e| OrfeasError::io(&job.out_dir, e))?;
    let stem = job
        .stem
        .clone()
        .unwrap_or_else(|| super::sanitize_stem(&input));
    let outputs = export_files(
        &model,
        &batch.settings.formats,
        &job.out_dir,
        &stem,
        cancel,
        &mut |done, total| {
            on_stage(
                Stage::Exporting,
                plan.within(Stage::Exporting, done as f32 / total as f32),
            )
        },
    )?;
    // Once per job, on the slot's thread: the files, then their directory.
    if shared.config.durable {
        if let Err(e) = crate::export::sync_outputs(&outputs) {
            crate::export::remove_outputs(&outputs);
            return Err(e);
        }
    }
    Ok(outputs)
}

//! `BatchProcessor`: many images on a fixed number of slots, with progress and cancellation.

use std::sync::Arc;

use napi::bindgen_prelude::{Either, Null, Object, Unknown};
use napi::Env;
use napi_derive::napi;
use orfeas_core::{CancelToken, Job, JobStatus, NoProgress, ProgressSink};

use crate::errors::{from_core, invalid_argument, parse_arg, parse_object, CodedResult};
use crate::gpu::{GpuStats, SlotCounts};
use crate::input::to_source;
use crate::options::{ProcessorOptions, RunOptions};
use crate::progress::JsProgress;
use crate::promise;

/// One file written for a job.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone)]
pub struct OutputFile {
    /// `stl`, `obj`, `mtl`, `png`, `glb`, `ply`, `3mf`, `depth16`, `depth.npy`, ...
    pub format: String,
    pub path: String,
    /// Size of the file in bytes.
    pub bytes: f64,
}

/// The outcome of one job; the fields of a job entry of the CLI's `--json` summary.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct JobResult {
    /// The id used in this job's progress events.
    pub job_id: String,
    /// The input's path, or the name given to a buffer (`buffer-N`).
    pub input: String,
    /// Paths of every file written (empty unless complete).
    pub outputs: Vec<String>,
    /// The same files with their format and size.
    pub files: Vec<OutputFile>,
    #[napi(ts_type = "'complete' | 'error' | 'cancelled'")]
    pub status: String,
    /// The error message, `null` when complete.
    pub error: Either<String, Null>,
    /// The stable error code (`ERR_…`), `null` when complete.
    pub code: Either<String, Null>,
    /// The depth estimator that ran (`relief`, `inflate`, `depth-anything`; `triposr` for an
    /// object), or the requested method when the job stopped before choosing.
    pub depth: String,
    /// How the shape was made, or the requested method when the job stopped before.
    pub method: String,
    /// Where the foreground mask came from (`alpha`, `border`, `birefnet` or `none`), `null`
    /// when the job stopped before masking.
    pub mask: Either<String, Null>,
    /// The marching-cubes grid of an object, `null` for a relief.
    pub resolution: Either<u32, Null>,
    /// What the user should know about the result (e.g. an object cut off by the frame).
    pub warnings: Vec<String>,
    pub triangles: u32,
    /// Closed, consistently wound, positive volume, manifold.
    pub watertight: bool,
    pub seconds: f64,
}

impl JobResult {
    fn from_core(r: orfeas_core::JobResult, requested: &str) -> Self {
        let status = match r.status {
            JobStatus::Complete => "complete",
            JobStatus::Error => "error",
            JobStatus::Cancelled => "cancelled",
        };
        let or_null = |s: Option<String>| s.map_or(Either::B(Null), Either::A);
        let mask = r
            .mask
            .and_then(|m| serde_json::to_value(m).ok())
            .and_then(|v| v.as_str().map(str::to_owned));
        let files: Vec<OutputFile> = r
            .outputs
            .iter()
            .map(|o| OutputFile {
                format: o.format.clone(),
                path: o.path.display().to_string(),
                bytes: o.bytes as f64,
            })
            .collect();
        Self {
            job_id: r.id.0,
            input: r.input,
            outputs: files.iter().map(|f| f.path.clone()).collect(),
            files,
            status: status.to_owned(),
            error: or_null(r.error),
            code: or_null(r.code.map(str::to_owned)),
            depth: r.depth.unwrap_or(requested).to_owned(),
            method: r.method.unwrap_or(requested).to_owned(),
            mask: or_null(mask),
            resolution: r.resolution.map_or(Either::B(Null), |n| {
                Either::A(u32::try_from(n).unwrap_or(u32::MAX))
            }),
            warnings: r.warnings,
            triangles: u32::try_from(r.triangles).unwrap_or(u32::MAX),
            watertight: r.watertight,
            seconds: r.seconds,
        }
    }
}

/// Runs batches of images on a fixed number of slots (default: one per core on the CPU, four
/// per GPU). Jobs run on native threads; the JS thread only receives progress events and results.
#[napi]
#[derive(Debug)]
pub struct BatchProcessor {
    inner: Arc<orfeas_core::BatchProcessor>,
}

#[napi]
impl BatchProcessor {
    /// Starts the slot threads. Throws `ERR_INVALID_INPUT` for bad options, `ERR_DEVICE` or
    /// `ERR_FEATURE_DISABLED` for an unusable device, `ERR_WEIGHTS_NOT_FOUND` when the method
    /// (`depth-anything`, `triposr`) has no weights (or `segmenterWeights` holds none),
    /// `ERR_WEIGHTS_INVALID` when they cannot be used. Loading model weights happens here,
    /// once: BiRefNet too, from `segmenterWeights` or the Hugging Face cache.
    #[napi(constructor, ts_args_type = "options?: ProcessorOptions")]
    pub fn new(options: Option<Unknown<'_>>) -> napi::Result<Self, String> {
        let options: ProcessorOptions = match &options {
            Some(value) => parse_object::<ProcessorOptions>(value, "options")?,
            None => ProcessorOptions::default(),
        };
        let config = options.to_config()?;
        let inner = orfeas_core::BatchProcessor::new(config).map_err(|e| from_core(&e))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Number of slots.
    #[napi(getter)]
    pub fn slots(&self) -> u32 {
        u32::try_from(self.inner.slots()).unwrap_or(u32::MAX)
    }

    /// Slots running a job right now.
    #[napi(getter)]
    pub fn busy_slots(&self) -> u32 {
        u32::try_from(self.inner.busy_slots()).unwrap_or(u32::MAX)
    }

    /// Jobs waiting for a slot.
    #[napi(getter)]
    pub fn queued(&self) -> u32 {
        u32::try_from(self.inner.queued()).unwrap_or(u32::MAX)
    }

    /// The device jobs run on (`cpu`, `cuda:0`, ...).
    #[napi(getter)]
    pub fn device(&self) -> String {
        self.inner.device().to_string()
    }

    /// The requested method (`auto`, `relief`, `inflate`, `depth-anything`, `triposr`).
    #[napi(getter)]
    pub fn method(&self) -> String {
        self.inner.config().method.as_str().to_owned()
    }

    /// The `background` values `run` can use with what is loaded (`birefnet` only when BiRefNet
    /// is loaded).
    #[napi(getter)]
    pub fn backgrounds(&self) -> Vec<String> {
        self.inner
            .available_backgrounds()
            .into_iter()
            .map(|b| b.as_str().to_owned())
            .collect()
    }

    /// GPU telemetry plus this processor's slots and queue, like the server's `/api/gpu-stats`.
    #[napi]
    pub fn gpu_stats(&self) -> GpuStats {
        let mut stats = GpuStats::from(orfeas_core::gpu_stats());
        stats.slots = Some(SlotCounts {
            total: self.slots(),
            busy: self.busy_slots(),
        });
        stats.queue = Some(self.queued());
        stats
    }

    /// Converts every input and resolves with one result per input, in input order. A job
    /// that fails (or is cancelled) is reported in its result; the promise rejects only for
    /// bad arguments (`ERR_WEIGHTS_NOT_FOUND` for `background: 'birefnet'` without BiRefNet),
    /// or with `ERR_CANCELLED` when `signal` is already aborted.
    #[napi(
        ts_args_type = "inputs: Array<string | Uint8Array>, options: RunOptions",
        ts_return_type = "Promise<JobResult[]>"
    )]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        inputs: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<Object<'env>> {
        match self.start(env, &inputs, &options) {
            Ok(promise) => Ok(promise),
            Err(e) => promise::rejected::<Vec<JobResult>>(env, e),
        }
    }
}

impl BatchProcessor {
    fn start<'env>(
        &self,
        env: &'env Env,
        inputs: &Unknown<'env>,
        options: &Unknown<'env>,
    ) -> CodedResult<Object<'env>> {
        let options: RunOptions<'_> = parse_object(options, "options")?;
        let settings = options.settings()?;
        // A background no job could use rejects the call, before any job (as a bad format does).
        self.inner
            .check_background(settings.background)
            .map_err(|e| from_core(&e))?;
        if options.out_dir.is_empty() {
            return Err(invalid_argument(
                "options.outDir",
                "must be a directory path",
            ));
        }
        let values: Vec<Unknown<'_>> = parse_arg(inputs, "inputs").map_err(|_| {
            invalid_argument("inputs", "expected an array of file paths or image buffers")
        })?;
        let jobs = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let source =
                    to_source(value, &format!("inputs[{i}]"), &format!("buffer-{}", i + 1))?;
                Ok(Job::new(format!("job-{}", i + 1), source, &options.out_dir))
            })
            .collect::<CodedResult<Vec<_>>>()?;

        let cancel = CancelToken::new();
        crate::abort::link(env, options.signal.as_ref(), &cancel)?;
        // The callback's thread-safe function is created before the promise (see progress.rs).
        let progress = match &options.on_progress {
            Some(callback) => {
                Some(Arc::new(JsProgress::new(callback).map_err(|e| {
                    invalid_argument("options.onProgress", e.reason)
                })?))
            }
            None => None,
        };
        let (deferred, promise) = promise::pending::<Vec<JobResult>>(env)
            .map_err(|e| crate::errors::coded("ERR_INTERNAL", e.reason))?;
        let processor = Arc::clone(&self.inner);
        let requested = processor.config().method.as_str();
        let work = move || {
            let sink: Arc<dyn ProgressSink> = match &progress {
                Some(p) => p.clone(),
                None => Arc::new(NoProgress),
            };
            let outcome = processor
                .run(jobs, &settings, sink, &cancel)
                .map_err(|e| from_core(&e));
            let settle = move || {
                promise::settle(
                    deferred,
                    outcome,
                    move |_env, results: Vec<orfeas_core::JobResult>| {
                        Ok(results
                            .into_iter()
                            .map(|r| JobResult::from_core(r, requested))
                            .collect())
                    },
                )
            };
            match progress {
                Some(p) => p.finish(settle),
                None => settle(),
            }
        };
        std::thread::Builder::new()
            .name("orfeas-node-batch".into())
            .spawn(work)
            .map_err(|e| {
                crate::errors::coded(
                    "ERR_INTERNAL",
                    format!("internal error: cannot start a worker thread: {e}"),
                )
            })?;
        Ok(promise)
    }
}

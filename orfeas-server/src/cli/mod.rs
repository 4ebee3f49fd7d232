//! Argument definitions (docs/reference.md §2) and the subcommands.

pub mod fetch_model;
pub mod generate;
pub mod gpu;
mod inputs;
mod progress_view;
pub mod serve;
mod summary;
pub mod worker;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use orfeas_core::{Background, DepthMethod, Device, GenerateSettings, MeshFormat, Method, Quality};
use orfeas_server::jobs::OnRestart;

#[derive(Debug, Parser)]
#[command(
    name = "orfeas",
    version,
    about = "Turn batches of images into printable 3D models (STL, OBJ, GLB, PLY)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert images (files or directories) into mesh files.
    Generate(GenerateArgs),
    /// Download model weights (Depth Anything V2, TripoSR, BiRefNet) into the Hugging Face cache.
    FetchModel {
        /// depth-anything-v2-small (Apache-2.0), -base or -large (CC-BY-NC-4.0), or triposr
        /// (MIT, about 1.7 GB).
        #[arg(long, default_value = "depth-anything-v2-small")]
        model: String,
    },
    /// Run the HTTP server and the Batch Studio page.
    Serve(ServeArgs),
    /// Pull jobs from a NATS JetStream queue and run them (one of several machines behind
    /// `orfeas serve --queue`).
    Worker(WorkerArgs),
    /// Show NVIDIA GPU telemetry (JSON), or say plainly that there is none. Always exits 0.
    Gpu {
        /// Print JSON even when no GPU is present (`{"available": false, ...}`).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Image files or directories of images.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(short = 'o', long = "out", value_name = "OUT_DIR")]
    pub out_dir: PathBuf,
    /// Comma-separated formats: stl, stl-ascii, obj, glb, ply, 3mf, depth16, depth.npy,
    /// field.npy, mask.png, mask.npy (only mask formats: a batch background remover).
    #[arg(short, long, default_value = "stl", value_delimiter = ',', value_parser = parse_from_str::<MeshFormat>)]
    pub format: Vec<MeshFormat>,
    /// Quality preset: working resolution, tolerance and triangle budget.
    #[arg(short, long, default_value = "medium", value_parser = parse_from_str::<Quality>)]
    pub quality: Quality,
    /// Jobs processed at once (default: one per core on the CPU, at most 16; four per GPU).
    #[arg(long, value_parser = parse_slots)]
    pub slots: Option<usize>,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Where the model runs: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_from_str::<Device>)]
    pub device: Device,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Descend into subdirectories of directory inputs.
    #[arg(short, long)]
    pub recursive: bool,
    /// Print one JSON summary on stdout at the end (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Sync each job's files and the output directory to the disk before reporting it done
    /// (survives a power cut; costs a few milliseconds per job). Files are always published
    /// atomically by rename.
    #[arg(long)]
    pub durable: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Uploads, outputs and the job journal (jobs.journal) live here.
    #[arg(long, default_value = "orfeas-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Jobs processed at once (default: one per core on the CPU, at most 16; four per GPU).
    #[arg(long, value_parser = parse_slots)]
    pub slots: Option<usize>,
    /// The method of requests that name none (any method whose weights are found can be
    /// asked for per request).
    #[command(flatten)]
    pub method: MethodArgs,
    /// Where the models run: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_from_str::<Device>)]
    pub device: Device,
    /// Default formats when a request names none.
    #[arg(short, long, default_value = "stl", value_delimiter = ',', value_parser = parse_from_str::<MeshFormat>)]
    pub format: Vec<MeshFormat>,
    /// Default quality when a request names none.
    #[arg(short, long, default_value = "medium", value_parser = parse_from_str::<Quality>)]
    pub quality: Quality,
    /// Defaults for requests that leave these out.
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Largest uploaded file, megabytes (10^6 bytes).
    #[arg(long, default_value_t = 50.0, value_name = "MB")]
    pub max_file_mb: f64,
    /// Largest upload request, megabytes (10^6 bytes).
    #[arg(long, default_value_t = 200.0, value_name = "MB")]
    pub max_request_mb: f64,
    /// Most files in one batch.
    #[arg(long, default_value_t = 100)]
    pub max_files: usize,
    /// Largest image accepted, in megapixels (width × height / 10^6), checked from the
    /// header before anything is decoded.
    #[arg(long, default_value_t = 64.0, value_name = "N")]
    pub max_megapixels: f64,
    /// Most jobs waiting at once; uploads beyond it get 429 (retry later).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_queue: usize,
    /// Sync each job's files and folder to the disk before it is reported complete, so a
    /// power cut cannot lose a finished job (`--durable false` trades that for speed).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub durable: bool,
    /// Finished jobs older than this are removed with their upload and outputs (e.g. 12h,
    /// 7d, 4w).
    #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = orfeas_server::units::parse_duration)]
    pub keep_results: std::time::Duration,
    /// Beyond this much upload and output data the oldest finished jobs are removed first
    /// (e.g. 500MB, 20GB, 1TiB).
    #[arg(long, default_value = "20GB", value_name = "SIZE", value_parser = orfeas_server::units::parse_size)]
    pub max_data_size: u64,
    /// Jobs left queued or running by a previous process: requeue runs them again, fail
    /// marks them ERR_INTERRUPTED.
    #[arg(long, default_value = "requeue", value_parser = parse_on_restart)]
    pub on_restart: OnRestart,
    /// On SIGTERM / Ctrl-C, how long running jobs may take to finish; then they are stopped
    /// and re-queued for the next start.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = orfeas_server::units::parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Front a cluster: jobs go to this NATS JetStream queue (nats://HOST:PORT) and run on
    /// `orfeas worker` processes; this server runs none itself unless --slots is given.
    #[arg(long, value_name = "URL")]
    pub queue: Option<String>,
    /// With --queue: how long a job may go without progress before another worker gets it
    /// (when this is the first process to use the queue; the queue keeps its first lease).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = orfeas_server::units::parse_duration)]
    pub lease: std::time::Duration,
    /// With --queue: where inputs and results are kept: `nats` (the default: the queue's own
    /// object store, so machines need no shared disk), `file:///DIR` (a directory every
    /// machine mounts at the same path) or `s3://BUCKET/PREFIX` (credentials and endpoint from
    /// the AWS_* environment of each machine). Every machine of a queue uses the same store.
    #[arg(long, value_name = "STORE", requires = "queue", value_parser = parse_store)]
    pub store: Option<orfeas_server::cluster::StoreLocation>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The queue: nats://HOST:PORT (a nats-server with JetStream, `-js`).
    #[arg(long, value_name = "URL")]
    pub queue: String,
    /// Jobs run at once (default: one per core on the CPU, at most 16; four per GPU).
    #[arg(long, value_parser = parse_slots)]
    pub slots: Option<usize>,
    /// Where the models run: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_from_str::<Device>)]
    pub device: Device,
    /// The models to load (jobs name their own method; these weights are loaded once).
    #[command(flatten)]
    pub method: MethodArgs,
    /// BiRefNet's model.safetensors (or its directory); default: the Hugging Face cache.
    #[arg(long, value_name = "PATH")]
    pub segmenter_weights: Option<PathBuf>,
    /// How long a job may go without progress before another worker gets it, when this
    /// worker is the first to use the queue (the queue keeps the first lease it was given).
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = orfeas_server::units::parse_duration)]
    pub lease: std::time::Duration,
    /// The worker's name in the studio and in events (default: host-pid).
    #[arg(long)]
    pub id: Option<String>,
    /// On SIGTERM / Ctrl-C, how long running jobs may take to finish; then they are stopped
    /// and handed back to the queue.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = orfeas_server::units::parse_duration)]
    pub drain_timeout: std::time::Duration,
}

/// How the shape is made, and where that method's weights are.
#[derive(Debug, Clone, Args)]
pub struct MethodArgs {
    /// auto, relief, inflate, depth-anything (2.5D reliefs) or triposr (a full 3D object).
    #[arg(long, value_parser = parse_from_str::<Method>)]
    pub method: Option<Method>,
    /// Alias of --method for the 2.5D estimators: auto, relief, inflate or depth-anything.
    #[arg(long, value_parser = parse_from_str::<DepthMethod>)]
    pub depth: Option<DepthMethod>,
    /// Weights for the chosen method: for depth-anything (and auto) a transformers directory or
    /// the authors' .pth; for triposr a directory with config.yaml + model.ckpt (or
    /// model.safetensors).
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
}

impl MethodArgs {
    /// `--method`, or `--depth`, or both when they agree; `auto` when neither is given.
    pub fn method(&self) -> Result<Method, orfeas_core::OrfeasError> {
        Method::from_pair(self.method, self.depth)
    }
}

fn parse_on_restart(s: &str) -> Result<OnRestart, String> {
    s.parse()
}

fn parse_from_str<T: std::str::FromStr<Err = orfeas_core::OrfeasError>>(
    s: &str,
) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

/// Exit status of a command that failed while running.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status of a command refused before it started (bad flags, unusable weights).
pub(crate) const EXIT_USAGE: u8 = 2;

/// The async runtime of the long-running commands, or the exit status after saying why it
/// could not start.
pub(crate) fn runtime(
    thread_name: &str,
) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::from(EXIT_FAILED)
        })
}

/// Logs go to stderr; stdout is reserved for `--json`. A server (`quiet_default = false`)
/// logs warnings by default: refused downloads and failed saves must be visible.
pub fn init_logging(verbose: u8, quiet_default: bool) {
    let default = match verbose {
        0 if quiet_default => "error",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Size and meshing flags shared by `generate` and `serve` (for `serve`: request defaults).
#[derive(Debug, Clone, Args)]
pub struct ShapeArgs {
    /// Model width in millimetres (height follows the aspect ratio).
    #[arg(long, default_value_t = 100.0)]
    pub width_mm: f32,
    /// Relief height above the base, millimetres.
    #[arg(long, default_value_t = 20.0)]
    pub depth_mm: f32,
    /// Base thickness, millimetres.
    #[arg(long, default_value_t = 2.0)]
    pub base_mm: f32,
    /// Write the open front surface instead of a closed solid.
    #[arg(long)]
    pub surface: bool,
    /// Meshing tolerance as a fraction of the relief height (overrides the preset).
    #[arg(long)]
    pub max_error: Option<f32>,
    /// Triangle budget (overrides the preset).
    #[arg(long)]
    pub max_triangles: Option<usize>,
    /// Marching-cubes grid of full 3D objects (triposr; overrides the preset: low 128,
    /// medium 192, high 256).
    #[arg(long, value_name = "N")]
    pub resolution: Option<usize>,
    /// Keep only the largest connected part of an object (triposr), dropping floating bits.
    #[arg(long)]
    pub keep_largest: bool,
    /// Where the foreground mask comes from: auto (the alpha channel when real, else BiRefNet
    /// when its weights are found, else the border estimate), alpha, border, birefnet or none.
    #[arg(long, default_value = "auto", value_parser = parse_from_str::<Background>)]
    pub background: Background,
    /// BiRefNet's model.safetensors (or its directory); default: the Hugging Face cache
    /// (BiRefNet_lite first on the CPU).
    #[arg(long, value_name = "PATH")]
    pub segmenter_weights: Option<PathBuf>,
}

impl ShapeArgs {
    /// The settings for `formats` (repeats dropped, order kept) at `quality`.
    pub fn settings(&self, formats: &[MeshFormat], quality: Quality) -> GenerateSettings {
        let mut seen = std::collections::HashSet::new();
        GenerateSettings {
            formats: formats
                .iter()
                .copied()
                .filter(|f| seen.insert(*f))
                .collect(),
            quality,
            max_error: self.max_error,
            max_triangles: self.max_triangles,
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            base_mm: self.base_mm,
            solid: !self.surface,
            method: None,
            resolution: self.resolution,
            keep_largest: self.keep_largest,
            background: self.background,
        }
    }
}

/// `--slots N`: 1 to 256 (leaving the flag out asks for the device's default).
fn parse_slots(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a slot count from 1 to 256 (leave --slots out for the default)"
        )),
    }
}

fn parse_store(text: &str) -> Result<orfeas_server::cluster::StoreLocation, String> {
    orfeas_server::cluster::StoreLocation::parse(text)
}

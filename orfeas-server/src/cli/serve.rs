//! `orfeas serve`: the HTTP server and Batch Studio page (docs/reference.md §2-3).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use orfeas_core::BatchConfig;
use orfeas_server::cluster::{run_worker, Broker, BrokerSettings, WorkerSettings};
use orfeas_server::{AppState, ServerConfig, UploadLimits};

use super::ServeArgs;

use super::{EXIT_FAILED, EXIT_USAGE};

pub fn run(args: ServeArgs) -> ExitCode {
    let method = match args.method.method() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let defaults = args.shape.settings(&args.format, args.quality);
    if let Err(e) = defaults
        .validate()
        .and_then(|()| defaults.check_method(method))
    {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let mut config = ServerConfig::new(&args.data_dir);
    config.defaults = defaults;
    config.batch = BatchConfig {
        slots: args.slots.unwrap_or(orfeas_core::batch::AUTO_SLOTS),
        method,
        all_methods: true,
        device: args.device,
        weights: args.method.weights.clone(),
        background: args.shape.background,
        segmenter_weights: args.shape.segmenter_weights.clone(),
        durable: args.durable,
        ..BatchConfig::default()
    };
    config.limits = UploadLimits {
        max_file_bytes: mb_to_bytes(args.max_file_mb),
        max_request_bytes: mb_to_bytes(args.max_request_mb),
        max_files: args.max_files,
    };
    if !(args.max_megapixels.is_finite() && args.max_megapixels > 0.0) {
        eprintln!("error: --max-megapixels must be a positive number");
        return ExitCode::from(EXIT_USAGE);
    }
    config.batch.limits.max_pixels = (args.max_megapixels * 1e6).round() as u64;
    config.max_queue = args.max_queue;
    config.keep_results = args.keep_results;
    config.max_data_bytes = args.max_data_size;
    config.on_restart = args.on_restart;
    config.drain_timeout = args.drain_timeout;
    if config.max_queue == 0 || config.max_data_bytes == 0 {
        eprintln!("error: --max-queue and --max-data-size must be positive");
        return ExitCode::from(EXIT_USAGE);
    }
    if config.limits.max_files == 0
        || config.limits.max_file_bytes == 0
        || config.limits.max_request_bytes == 0
    {
        eprintln!("error: upload limits must be positive");
        return ExitCode::from(EXIT_USAGE);
    }

    if args.queue.is_some() {
        config.queue = true;
        if args.slots.is_none() {
            // A front end alone runs no jobs: its processor only checks requests.
            config.batch.slots = 1;
        }
    }
    let runtime = match super::runtime("orfeas-http") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let state = match tokio::task::spawn_blocking(move || AppState::new(config)).await {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        let mut local_worker = None;
        if let Some(queue) = &args.queue {
            let mut settings = BrokerSettings::new(queue);
            settings.lease = args.lease;
            settings.store = Some(args.store.clone().unwrap_or_default());
            let broker = match Broker::connect(&settings).await {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error [{}]: {e}", e.code());
                    return ExitCode::from(super::worker::EXIT_QUEUE);
                }
            };
            let shown = format!(
                "lease {:?}, files in {}",
                broker.lease(),
                broker.files().location()
            );
            orfeas_server::cluster::start_front(&state, broker.clone());
            if args.slots.is_some() {
                // `--slots` with `--queue`: this machine is also a worker of its own queue.
                let stop = state.shutdown_token().clone();
                let mut worker = WorkerSettings::on_this_host();
                worker.drain_timeout = args.drain_timeout;
                local_worker = Some(tokio::spawn(run_worker(
                    broker,
                    Arc::clone(state.processor()),
                    worker,
                    async move { stop.cancelled().await },
                )));
            }
            eprintln!(
                "orfeas serve: front end of {queue} ({shown}; {})",
                if local_worker.is_some() {
                    "runs jobs here too"
                } else {
                    "jobs run on orfeas worker processes"
                }
            );
        }
        let addr = format!("{}:{}", args.host, args.port);
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let local: Option<SocketAddr> = listener.local_addr().ok();
        let shown = local.map_or(addr.clone(), |a| a.to_string());
        eprintln!(
            "orfeas serve: http://{shown}/ (data in {}, {} slots, device {}, method {}; can run {})",
            state.data_dir().display(),
            state.processor().slots(),
            state.processor().device(),
            state.processor().config().method,
            state
                .processor()
                .available_methods()
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let served = orfeas_server::serve(listener, state, shutdown_signal()).await;
        if let Some(worker) = local_worker {
            if let Ok(Err(e)) = worker.await {
                eprintln!("error [{}]: {e}", e.code());
            }
        }
        match served {
            Ok(()) => {
                eprintln!("orfeas serve: stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}

fn mb_to_bytes(mb: f64) -> u64 {
    if mb.is_finite() && mb > 0.0 {
        (mb * 1_000_000.0) as u64
    } else {
        0
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, after saying the server drains.
async fn shutdown_signal() {
    stop_signal().await;
    eprintln!(
        "orfeas serve: draining (no new jobs; running ones may finish, the rest resume at the next start)"
    );
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub(super) async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

//! `orfeas worker`: one machine's slots behind a NATS JetStream queue (docs/cluster.md).
//!
//! The models load before the worker joins: a worker that cannot run jobs refuses to start
//! (exit 2) rather than taking jobs and failing every one.

use std::process::ExitCode;
use std::sync::Arc;

use orfeas_core::{BatchConfig, BatchProcessor};
use orfeas_server::cluster::{run_worker, Broker, BrokerSettings, WorkerSettings};

use super::WorkerArgs;

use super::{EXIT_FAILED, EXIT_USAGE};

/// The queue could not be reached or used at start.
pub(super) const EXIT_QUEUE: u8 = 3;

pub fn run(args: WorkerArgs) -> ExitCode {
    let method = match args.method.method() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = BatchConfig {
        slots: args.slots.unwrap_or(orfeas_core::batch::AUTO_SLOTS),
        method,
        all_methods: true,
        device: args.device,
        weights: args.method.weights.clone(),
        background: orfeas_core::Background::Auto,
        segmenter_weights: args.segmenter_weights.clone(),
        // Results leave the machine through the store; local files are scratch.
        durable: false,
        ..BatchConfig::default()
    };
    let processor = match BatchProcessor::new(config) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("error: this worker cannot run jobs, so it does not join: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match super::runtime("orfeas-worker") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut broker_settings = BrokerSettings::new(&args.queue);
    broker_settings.lease = args.lease;
    let mut settings = WorkerSettings::on_this_host();
    if let Some(id) = args.id {
        settings.id = id;
    }
    settings.drain_timeout = args.drain_timeout;
    runtime.block_on(async move {
        let broker = match Broker::connect(&broker_settings).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error [{}]: {e}", e.code());
                return ExitCode::from(EXIT_QUEUE);
            }
        };
        eprintln!(
            "orfeas worker {}: pulling from {} ({} slots, device {}, lease {:?}, files in {}; \
             can run {})",
            settings.id,
            args.queue,
            processor.slots(),
            processor.device(),
            broker.lease(),
            broker.files().location(),
            processor
                .available_methods()
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let drain_timeout = settings.drain_timeout;
        let shutdown = async move {
            super::serve::stop_signal().await;
            eprintln!(
                "orfeas worker: draining (no new jobs; running ones may finish for {drain_timeout:?}, \
                 then go back to the queue)"
            );
        };
        match run_worker(broker, processor, settings, shutdown).await {
            Ok(()) => {
                eprintln!("orfeas worker: stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error [{}]: {e}", e.code());
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}

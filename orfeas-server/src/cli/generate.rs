//! `orfeas generate`: the batch conversion command.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use orfeas_core::{BatchConfig, BatchProcessor, CancelToken, ImageSource, Job, JobStatus};

use super::{inputs, progress_view::View, summary, GenerateArgs};

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

pub fn run(args: GenerateArgs) -> ExitCode {
    let started = Instant::now();
    let method = match args.method.method() {
        Ok(m) => m,
        Err(e) => return usage_error(e),
    };
    let mut settings = args.shape.settings(&args.format, args.quality);
    settings.method = Some(method);
    if let Err(e) = settings.validate() {
        return usage_error(e);
    }
    let inputs = match inputs::collect(&args.inputs, args.recursive) {
        Ok(v) if v.is_empty() => return usage_error("no images found in the given inputs"),
        Ok(v) => v,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out_dir) {
        return usage_error(format!(
            "cannot create output directory {}: {e}",
            args.out_dir.display()
        ));
    }
    let config = BatchConfig {
        slots: args.slots.unwrap_or(orfeas_core::batch::AUTO_SLOTS),
        method,
        device: args.device,
        weights: args.method.weights.clone(),
        background: args.shape.background,
        segmenter_weights: args.shape.segmenter_weights.clone(),
        durable: args.durable,
        ..BatchConfig::default()
    };
    let processor = match BatchProcessor::new(config) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };

    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if on_interrupt.is_cancelled() {
            std::process::exit(130);
        }
        eprintln!("interrupted: cancelling (press Ctrl-C again to quit at once)");
        on_interrupt.cancel();
    });

    let jobs: Vec<Job> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            Job::new(
                format!("job-{}", i + 1),
                ImageSource::Path(path),
                &args.out_dir,
            )
        })
        .collect();
    let view = Arc::new(View::new(jobs.len(), processor.slots()));
    let results = match processor.run(jobs, &settings, view.clone(), &cancel) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    view.finish();
    let seconds = started.elapsed().as_secs_f64();

    let complete = summary::count(&results, JobStatus::Complete);
    if args.json {
        let doc = summary::to_json(&results, method.as_str(), seconds);
        #[allow(clippy::print_stdout)] // stdout carries exactly this document
        {
            println!("{doc}");
        }
    }
    eprintln!(
        "{} of {} images converted in {seconds:.2} s ({} failed, {} cancelled) -> {}",
        complete,
        results.len(),
        summary::count(&results, JobStatus::Error),
        summary::count(&results, JobStatus::Cancelled),
        args.out_dir.display()
    );
    if complete == results.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

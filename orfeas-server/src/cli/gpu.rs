//! `orfeas gpu`: GPU telemetry as JSON, or one clear line when there is no GPU.

use std::process::ExitCode;

pub fn run(json: bool) -> ExitCode {
    let stats = orfeas_core::gpu_stats();
    if json || stats.available {
        #[allow(clippy::print_stdout)] // the command's output
        {
            println!(
                "{}",
                serde_json::to_string_pretty(&stats).unwrap_or_else(|_| "{}".into())
            );
        }
    } else {
        #[allow(clippy::print_stdout)]
        {
            // The reason says what is missing (driver, GPU, or the `nvml` feature).
            println!(
                "no GPU telemetry: {}",
                stats.reason.as_deref().unwrap_or("unknown reason")
            );
        }
    }
    ExitCode::SUCCESS
}

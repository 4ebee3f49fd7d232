//! `orfeas`: turn batches of images into 3D models from the command line.

mod allocator;
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::keep_freed_pages();
    let args = cli::Cli::parse();
    cli::init_logging(
        args.verbose,
        !matches!(
            args.command,
            cli::Command::Serve(_) | cli::Command::Worker(_)
        ),
    );
    match args.command {
        cli::Command::Generate(generate) => cli::generate::run(generate),
        cli::Command::Serve(serve) => cli::serve::run(serve),
        cli::Command::Worker(worker) => cli::worker::run(worker),
        cli::Command::Gpu { json } => cli::gpu::run(json),
        cli::Command::FetchModel { model } => cli::fetch_model::run(&model),
    }
}

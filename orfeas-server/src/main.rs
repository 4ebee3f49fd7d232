//! `orfeas`: turn batches of images into 3D models from the command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match args.command {
        cli::Command::Generate(generate) => cli::generate::run(generate),
        cli::Command::Gpu { json } => cli::gpu::run(json),
        cli::Command::FetchModel { model } => cli::fetch_model::run(&model),
    }
}

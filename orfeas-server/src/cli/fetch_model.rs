//! `orfeas fetch-model`: download model weights into the Hugging Face cache.

use std::process::ExitCode;

use orfeas_core::models;

pub fn run(model: &str) -> ExitCode {
    let spec = match models::model_spec(model) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "fetching {} ({}, licence {})",
        spec.name, spec.repo_id, spec.license
    );
    match download(&spec) {
        Ok(snapshot) => {
            #[allow(clippy::print_stdout)] // where the weights are, for scripts
            {
                println!("{}", snapshot.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e} [{}]", e.code());
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "hub")]
fn download(spec: &models::ModelSpec) -> orfeas_core::Result<std::path::PathBuf> {
    use std::io::IsTerminal;
    models::fetch_model(spec, std::io::stderr().is_terminal())
}

#[cfg(not(feature = "hub"))]
fn download(_spec: &models::ModelSpec) -> orfeas_core::Result<std::path::PathBuf> {
    Err(orfeas_core::OrfeasError::FeatureDisabled("hub"))
}

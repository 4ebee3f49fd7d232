//! The retention task: at start and every `retention_interval`, finished jobs past
//! `--keep-results`, and the oldest finished ones while the data is over `--max-data-size`,
//! leave the store; their folders (upload and outputs) are deleted on a blocking thread.

use std::sync::Arc;

use crate::state::AppState;

/// Runs until shutdown starts.
pub async fn run(state: AppState) {
    let config = state.config().clone();
    let mut interval = tokio::time::interval(config.retention_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = state.shutdown_token().clone();
    // Expired jobs a cluster's queue could not be told about yet (it was away): tried again
    // at every pass until it is.
    let mut unforgotten: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let store = Arc::clone(state.store());
        let jobs_dir = state.data_dir().join("jobs");
        let swept = tokio::task::spawn_blocking(move || {
            let expired = store.expire(config.keep_results, config.max_data_bytes);
            for id in &expired {
                let dir = jobs_dir.join(id);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %dir.display(), "cannot remove an expired job: {e}");
                    }
                }
            }
            expired
        })
        .await;
        if let Ok(expired) = swept {
            if let Some(front) = state.front() {
                // Results kept in the cluster's store go with the records.
                unforgotten.extend(expired.iter().cloned());
                if !unforgotten.is_empty() {
                    match front.broker().forget(&unforgotten).await {
                        Ok(()) => unforgotten.clear(),
                        Err(e) => tracing::warn!(
                            jobs = unforgotten.len(),
                            "expired jobs stay in the queue and its store until it answers: {e}"
                        ),
                    }
                }
            }
            if !expired.is_empty() {
                tracing::info!(
                    jobs = expired.len(),
                    "expired finished jobs removed with their files"
                );
            }
        }
    }
}

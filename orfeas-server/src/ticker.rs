//! The background ticker: while any job is queued or running it sends `gpu_stats` every
//! `gpu_interval` (2 s) and re-sends the last progress of running jobs whose core has been
//! silent for `progress_interval`, so every client hears from every running job at least
//! every 2 s. When work stops it sends one last `gpu_stats` (slots idle, queue empty). A front
//! end of a cluster also sends one whenever a worker joins or leaves or the queue comes or goes,
//! busy or not, so an idle studio's monitor does not show a dead worker or a lost queue.

use std::time::Instant;

use crate::events;
use crate::routes::gpu::stats_value;
use crate::state::AppState;

/// Runs until shutdown starts.
pub async fn run(state: AppState) {
    let config = state.config().clone();
    let tick = config.progress_interval.min(config.gpu_interval) / 3;
    let mut interval = tokio::time::interval(tick.max(std::time::Duration::from_millis(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_gpu: Option<Instant> = None;
    let mut was_active = false;
    let mut last_cluster: Option<(Vec<String>, bool)> = None;
    let shutdown = state.shutdown_token().clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let (queued, running) = state.store().active_counts();
        let active = queued + running > 0;
        if active {
            state
                .store()
                .resend_stale_progress(config.progress_interval);
        }
        let gpu_due = last_gpu.is_none_or(|t| t.elapsed() >= config.gpu_interval);
        let cluster = state.front().map(|front| {
            let ids = front
                .workers()
                .into_iter()
                .map(|w| w.id)
                .collect::<Vec<_>>();
            (ids, front.is_connected())
        });
        let cluster_changed = cluster.is_some() && cluster != last_cluster;
        last_cluster = cluster;
        if (active && gpu_due) || (was_active && !active) || cluster_changed {
            let stats = stats_value(&state).await;
            state.store().broadcast(events::frame("gpu_stats", &stats));
            last_gpu = Some(Instant::now());
        }
        was_active = active;
    }
}

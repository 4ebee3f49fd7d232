//! # orfeas-server
//!
//! The HTTP and WebSocket server behind `orfeas serve` (docs/reference.md §3) and the Batch
//! Studio page. [`app`] builds the router so tests drive the real thing; [`serve`] runs it
//! on a listener with the background ticker and a graceful shutdown.
//!
//! Shape: uploads are streamed to disk ([`upload`]), each valid image becomes a job with its
//! own directory under the data dir and its own cancel token, jobs run on the shared
//! `orfeas_core::BatchProcessor` ([`runner`]), and the [`jobs::JobStore`] owns every job's
//! state, journals it (`jobs.journal`, written by its own thread) and broadcasts each change
//! to WebSocket clients. [`retention`] bounds the data kept; a restart re-queues what the
//! previous process left unfinished.

pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod form;
pub mod jobs;
pub mod retention;
pub mod routes;
pub mod runner;
pub mod state;
pub mod ticker;
pub mod units;
pub mod upload;

use std::future::Future;
use std::time::Duration;

use std::future::IntoFuture;

use axum::Router;

pub use config::{ServerConfig, UploadLimits};
pub use state::AppState;

/// The whole HTTP application on `state`.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// How long open connections (downloads, WebSockets) get to finish after shutdown starts
/// before the server stops waiting for them.
const CONNECTION_GRACE: Duration = Duration::from_secs(10);

/// Serves `state` on `listener` until `shutdown` resolves, then drains: new connections are
/// refused, uploads get 503 and no further job starts; running jobs get the drain timeout to
/// finish, then are stopped and go back to the queue (as do waiting ones) for the next
/// start; WebSocket clients receive the last events and then a Close frame, and the job
/// journal is written. Jobs re-queued from a previous run are started first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if state.front().is_none() {
        runner::resume(&state, state.take_requeued());
    }
    let ticker = tokio::spawn(ticker::run(state.clone()));
    let retention = tokio::spawn(retention::run(state.clone()));
    let on_signal = {
        let state = state.clone();
        async move {
            shutdown.await;
            state.begin_shutdown();
        }
    };
    let server = axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(on_signal)
        .into_future();
    let wind_down = {
        let state = state.clone();
        async move {
            state.shutdown_token().cancelled().await;
            state.wind_down().await;
            tokio::time::sleep(CONNECTION_GRACE).await;
        }
    };
    let result = tokio::select! {
        r = server => r,
        () = wind_down => {
            tracing::warn!("connections still open after the grace period; closing them");
            Ok(())
        }
    };
    state.finish_shutdown().await;
    let _ = ticker.await;
    let _ = retention.await;
    result
}

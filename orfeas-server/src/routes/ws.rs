//! `GET /ws`: one broadcast feeding every client.
//!
//! A client first gets a `snapshot` (every job and the GPU object), then every event as a
//! text frame. A client that falls further behind than the broadcast buffer is not dropped
//! and does not make the server buffer more: it gets a fresh `snapshot` and continues from
//! there. The loop ends when the client closes, or at shutdown once the jobs' last events are
//! delivered (then with a Close frame).

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::SinkExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use crate::events::{self, EventText};
use crate::routes::gpu::stats_value;
use crate::state::AppState;

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| client_loop(socket, state))
}

/// Subscribes and builds the `snapshot` frame, atomically with respect to job changes.
async fn subscribe(state: &AppState) -> (Receiver<EventText>, EventText) {
    let gpu = stats_value(state).await;
    let (rx, jobs) = state.store().subscribe_with_snapshot();
    let frame = events::frame("snapshot", &json!({ "jobs": jobs, "gpu": gpu }));
    (rx, frame)
}

async fn client_loop(mut socket: WebSocket, state: AppState) {
    let closing = state.clients_token().clone();
    let (mut rx, snapshot) = subscribe(&state).await;
    if send(&mut socket, snapshot).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = closing.cancelled() => {
                // Jobs have wound down: deliver their last events, then say goodbye.
                while let Ok(text) = rx.try_recv() {
                    if send(&mut socket, text).await.is_err() {
                        return;
                    }
                }
                let close = CloseFrame { code: axum::extract::ws::close_code::AWAY, reason: Utf8Bytes::from_static("server shutting down") };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
            event = rx.recv() => match event {
                Ok(text) => {
                    if send_burst(&mut socket, &mut rx, text).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "slow WebSocket client resynchronised with a snapshot");
                    let (fresh, snapshot) = subscribe(&state).await;
                    rx = fresh;
                    if send(&mut socket, snapshot).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // Clients have nothing to say; pings are answered by axum, text is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Most frames written before one flush: a burst of events (a batch finishing) goes out in
/// a few writes instead of one system call per frame, which keeps latency low with many
/// clients.
const MAX_BURST: usize = 64;

/// Sends `first` and whatever else is already waiting (up to [`MAX_BURST`]), then flushes.
/// A lag noticed here is handled by the next `recv`.
async fn send_burst(
    socket: &mut WebSocket,
    rx: &mut Receiver<EventText>,
    first: EventText,
) -> Result<(), axum::Error> {
    socket.feed(Message::Text(first)).await?;
    for _ in 1..MAX_BURST {
        match rx.try_recv() {
            Ok(text) => socket.feed(Message::Text(text)).await?,
            Err(_) => break,
        }
    }
    socket.flush().await
}

async fn send(socket: &mut WebSocket, text: EventText) -> Result<(), axum::Error> {
    socket.send(Message::Text(text)).await
}

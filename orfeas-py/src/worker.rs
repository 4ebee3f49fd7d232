//! Runs blocking core work off the calling thread and waits for it without holding the GIL.
//!
//! The worker thread (and the core's slot threads) never touch Python: progress events travel
//! through a channel to the calling thread, which wakes every [`POLL`] to deliver them to the
//! callback (with the GIL, so callbacks run on the thread that called `run`) and to check for
//! signals. Ctrl-C (a `KeyboardInterrupt` from `check_signals`, or raised by the callback)
//! cancels the call's token; the call then waits for the jobs to stop — they check the token
//! between and inside stages, so this takes well under a second — and re-raises it. An
//! ordinary exception in the callback is logged on the `orfeas` logger and the work goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use orfeas_core::{CancelToken, NoProgress, OrfeasError, ProgressEvent, ProgressSink};
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py_err;
use crate::events::event_to_dict;

/// How often the waiting thread wakes to check for signals when no event arrives.
const POLL: Duration = Duration::from_millis(50);

enum Message<T> {
    Event(ProgressEvent),
    Done(Result<T, String>),
}

/// Forwards events to the waiting thread; never blocks (the channel is unbounded).
struct ChannelSink<T>(Sender<Message<T>>);

impl<T: Send> ProgressSink for ChannelSink<T> {
    fn emit(&self, event: &ProgressEvent) {
        // The receiver only disappears once the call has returned; nothing to do then.
        let _ = self.0.send(Message::Event(event.clone()));
    }
}

/// Runs `work` on a new thread with a sink feeding `on_progress` (or none), while this thread
/// waits without the GIL, delivering events and watching for Ctrl-C as described above.
pub(crate) fn run_on_worker<T, F>(
    py: Python<'_>,
    cancel: &CancelToken,
    on_progress: Option<&Bound<'_, PyAny>>,
    work: F,
) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<dyn ProgressSink>) -> T + Send + 'static,
{
    if let Some(callback) = on_progress {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(
                "on_progress must be callable (it receives one dict per event) or None",
            ));
        }
    }
    let (tx, rx) = mpsc::channel::<Message<T>>();
    let sink: Arc<dyn ProgressSink> = match on_progress {
        Some(_) => Arc::new(ChannelSink(tx.clone())),
        None => Arc::new(NoProgress),
    };
    std::thread::Builder::new()
        .name("orfeas-py-call".into())
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(move || work(sink))).map_err(panic_message);
            let _ = tx.send(Message::Done(outcome));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;

    let mut rx = rx;
    let mut stop: Option<PyErr> = None;
    let mut callback_failures = 0usize;
    loop {
        let (back, messages) = py.detach(move || receive(rx));
        rx = back;
        let Some(messages) = messages else {
            return Err(stop.unwrap_or_else(|| {
                to_py_err(OrfeasError::Internal(
                    "the worker thread ended without a result".into(),
                ))
            }));
        };
        for message in messages {
            match message {
                Message::Event(event) => {
                    if let (Some(callback), None) = (on_progress, &stop) {
                        if let Err(err) = deliver(py, callback, &event) {
                            if is_interrupt(py, &err) {
                                cancel.cancel();
                                stop = Some(err);
                            } else {
                                callback_failures += 1;
                                log_callback_error(py, err, callback_failures);
                            }
                        }
                    }
                }
                Message::Done(outcome) => {
                    return match (stop, outcome) {
                        (Some(interrupt), _) => Err(interrupt),
                        (None, Ok(value)) => Ok(value),
                        (None, Err(panic)) => Err(to_py_err(OrfeasError::Internal(panic))),
                    };
                }
            }
        }
        if stop.is_none() {
            if let Err(err) = py.check_signals() {
                cancel.cancel();
                stop = Some(err);
            }
        }
    }
}

/// Waits up to [`POLL`] for a message, then takes whatever else is queued. `None` when the
/// worker is gone without sending its result (it always sends one; this is defensive).
fn receive<T>(rx: Receiver<Message<T>>) -> (Receiver<Message<T>>, Option<Vec<Message<T>>>) {
    let messages = match rx.recv_timeout(POLL) {
        Ok(first) => {
            let mut all = vec![first];
            all.extend(rx.try_iter());
            Some(all)
        }
        Err(RecvTimeoutError::Timeout) => Some(Vec::new()),
        Err(RecvTimeoutError::Disconnected) => None,
    };
    (rx, messages)
}

fn deliver(py: Python<'_>, callback: &Bound<'_, PyAny>, event: &ProgressEvent) -> PyResult<()> {
    let dict: Bound<'_, PyDict> = event_to_dict(py, event)?;
    callback.call1((dict,))?;
    Ok(())
}

/// `KeyboardInterrupt`, `SystemExit` and other non-`Exception`s stop the call; the rest is logged.
fn is_interrupt(py: Python<'_>, err: &PyErr) -> bool {
    !err.is_instance_of::<PyException>(py)
}

/// Logs on the `orfeas` logger: the first failure with its traceback, later ones in one line.
fn log_callback_error(py: Python<'_>, err: PyErr, count: usize) {
    let logged = (|| -> PyResult<()> {
        let logger = py
            .import("logging")?
            .call_method1("getLogger", ("orfeas",))?;
        let kwargs = PyDict::new(py);
        if count == 1 {
            kwargs.set_item("exc_info", err.value(py))?;
        }
        let message = format!(
            "on_progress callback raised {} (failure {count}); the work goes on",
            err.value(py).repr()?
        );
        logger.call_method("error", (message,), Some(&kwargs))?;
        Ok(())
    })();
    if let Err(e) = logged {
        e.write_unraisable(py, None);
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker thread panicked".into())
}

//! Progress events delivered to a JS callback through a thread-safe function.
//!
//! Slot threads call [`JsProgress::emit`]; each event is serialised with the core's serde shape
//! (`{event, data}`, docs/reference.md §3) and queued non-blocking, so a slow callback never stalls the
//! pipeline. A callback that throws is reported with `process.emitWarning`, never fatal.
//!
//! Ordering: the promise of `run` must settle after the last event was delivered. Two
//! thread-safe functions (the callback's and the promise's) have no mutual ordering, so the
//! sink holds back the newest event and [`JsProgress::finish`] sends it with a completion hook
//! that settles the promise from the JS thread, after the callback ran.

use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, Unknown};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, Status};
use orfeas_core::{ProgressEvent, ProgressSink};

/// The JS callback type of `onProgress`.
pub type ProgressCallback<'a> = Function<'a, serde_json::Value, UnknownReturnValue>;

type Tsfn =
    ThreadsafeFunction<serde_json::Value, UnknownReturnValue, serde_json::Value, Status, false>;

/// A [`ProgressSink`] that forwards events to a JS function.
pub struct JsProgress {
    tsfn: Tsfn,
    /// The newest event, not sent yet (see the module docs).
    held: Mutex<Option<serde_json::Value>>,
}

impl std::fmt::Debug for JsProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsProgress")
    }
}

impl JsProgress {
    /// Wraps `callback`; must run on the JS thread.
    pub fn new(callback: &ProgressCallback<'_>) -> napi::Result<Self> {
        let tsfn = callback
            .build_threadsafe_function::<serde_json::Value>()
            .callee_handled::<false>()
            .build()?;
        Ok(Self {
            tsfn,
            held: Mutex::new(None),
        })
    }

    /// Sends the held event, then runs `then` on the JS thread once the callback has seen it.
    /// `then` runs exactly once, also when nothing is held or the function is closing.
    pub fn finish(&self, then: impl FnOnce() + Send + 'static) {
        let last = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(last) = last else { return then() };
        let slot = Arc::new(Mutex::new(Some(then)));
        let in_callback = Arc::clone(&slot);
        let status = self.tsfn.call_with_return_value(
            last,
            ThreadsafeFunctionCallMode::Blocking,
            move |ret, env| {
                warn_if_thrown(&env, ret);
                if let Some(then) = in_callback
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                {
                    then();
                }
                Ok(())
            },
        );
        if status != Status::Ok {
            if let Some(then) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                then();
            }
        }
    }

    fn send(&self, value: serde_json::Value) {
        // Non-blocking on an unbounded queue: never waits for the JS thread.
        let _ = self.tsfn.call_with_return_value(
            value,
            ThreadsafeFunctionCallMode::NonBlocking,
            |ret, env| {
                warn_if_thrown(&env, ret);
                Ok(())
            },
        );
    }
}

impl ProgressSink for JsProgress {
    fn emit(&self, event: &ProgressEvent) {
        let Ok(value) = serde_json::to_value(event) else {
            return;
        };
        // Held under the lock so events leave in the order they were emitted.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = held.replace(value) {
            self.send(previous);
        }
    }
}

/// A throwing `onProgress` must not take the batch (or the process) down: report it as a
/// process warning (`process.on('warning')`, printed on stderr by default).
fn warn_if_thrown(env: &Env, ret: napi::Result<UnknownReturnValue>) {
    if let Err(e) = ret {
        let _ = emit_warning(
            env,
            &format!("orfeas: onProgress callback threw: {}", e.reason),
        );
    }
}

fn emit_warning(env: &Env, message: &str) -> napi::Result<()> {
    let global = env.get_global()?;
    let process: Object<'_> = global.get_named_property("process")?;
    let emit: Function<'_, FnArgs<(&str, &str)>, Unknown<'_>> =
        process.get_named_property("emitWarning")?;
    emit.apply(process, FnArgs::from((message, "OrfeasProgressWarning")))?;
    Ok(())
}

//! Promises settled from worker threads.
//!
//! Work runs on a dedicated thread rather than the libuv pool: a batch can take minutes and
//! would otherwise hold one of libuv's four pool threads (shared with `fs`, `dns`, `zlib`) for
//! all that time. The promise keeps the event loop alive until it settles.

use napi::bindgen_prelude::Object;
use napi::bindgen_prelude::ToNapiValue;
use napi::{Env, JsDeferred};

use crate::errors::{coded, into_rejection, CodedError, CodedResult};

/// Settles a promise on the JS thread: builds the value, or rejects with the coded error.
pub type Settle<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

/// A pending promise and the handle that settles it.
pub type Deferred<T> = JsDeferred<T, Settle<T>>;

/// A new pending promise.
pub fn pending<T: ToNapiValue + 'static>(env: &Env) -> napi::Result<(Deferred<T>, Object<'_>)> {
    env.create_deferred::<T, Settle<T>>()
}

/// A promise already rejected with `err` (arguments are checked before any thread starts, and
/// a Promise-returning function reports even those through its promise).
pub fn rejected<'env, T: ToNapiValue + 'static>(
    env: &'env Env,
    err: CodedError,
) -> napi::Result<Object<'env>> {
    let (deferred, promise) = pending::<T>(env)?;
    deferred.reject(into_rejection(env, err));
    Ok(promise)
}

/// Settles `deferred` with `outcome`, converting the value with `to_js` on the JS thread.
pub fn settle<T, V>(
    deferred: Deferred<T>,
    outcome: CodedResult<V>,
    to_js: impl FnOnce(Env, V) -> napi::Result<T> + Send + 'static,
) where
    T: ToNapiValue + 'static,
    V: Send + 'static,
{
    deferred.resolve(Box::new(move |env| match outcome {
        Ok(value) => to_js(env, value),
        Err(e) => Err(into_rejection(&env, e)),
    }));
}

/// Runs `work` on a new thread and settles the returned promise with its outcome.
pub fn spawn<'env, T, V>(
    env: &'env Env,
    name: &str,
    work: impl FnOnce() -> CodedResult<V> + Send + 'static,
    to_js: impl FnOnce(Env, V) -> napi::Result<T> + Send + 'static,
) -> napi::Result<Object<'env>>
where
    T: ToNapiValue + 'static,
    V: Send + 'static,
{
    let (deferred, promise) = pending::<T>(env)?;
    let started = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || settle(deferred, work(), to_js));
    if let Err(e) = started {
        return rejected::<T>(
            env,
            coded(
                "ERR_INTERNAL",
                format!("internal error: cannot start a worker thread: {e}"),
            ),
        );
    }
    Ok(promise)
}

//! `AbortSignal` support: an aborted signal cancels the work's `CancelToken`.
//!
//! The signal is read on the JS thread when the call starts: already aborted means the call
//! fails at once with `ERR_CANCELLED` and no work starts; otherwise a one-shot `abort` listener
//! is added that cancels the token (the workers check it between and inside stages).

use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, Unknown};
use napi::Env;
use orfeas_core::{CancelToken, OrfeasError};

use crate::errors::{from_core, invalid_argument, CodedResult};

/// `signal.addEventListener(type, listener, options)`.
type AddEventListener<'a> =
    Function<'a, FnArgs<(&'a str, Function<'a, (), ()>, Object<'a>)>, Unknown<'a>>;

/// Links `signal` (if any) to `token`.
pub fn link(env: &Env, signal: Option<&Object<'_>>, token: &CancelToken) -> CodedResult<()> {
    let Some(signal) = signal else { return Ok(()) };
    let bad =
        |detail: String| invalid_argument("signal", format!("expected an AbortSignal ({detail})"));
    let aborted: bool = signal
        .get_named_property("aborted")
        .map_err(|e| bad(e.reason))?;
    if aborted {
        return Err(from_core(&OrfeasError::Cancelled));
    }
    let add: AddEventListener<'_> = signal
        .get_named_property("addEventListener")
        .map_err(|e| bad(e.reason))?;
    let cancel = token.clone();
    let listener = env
        .create_function_from_closure("orfeasAbort", move |_ctx| {
            cancel.cancel();
            Ok(())
        })
        .map_err(|e| bad(e.reason))?;
    let mut once = Object::new(env).map_err(|e| bad(e.reason))?;
    once.set_named_property("once", true)
        .map_err(|e| bad(e.reason))?;
    add.apply(signal, FnArgs::from(("abort", listener, once)))
        .map_err(|e| bad(e.reason))?;
    Ok(())
}

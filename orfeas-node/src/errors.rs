//! Errors as JavaScript sees them: `Error` objects whose `code` is the core's stable code.
//!
//! napi-rs sets an error's `code` property from its status string, so an
//! `napi::Error<String>` whose status is `ERR_…` becomes exactly the object users catch.
//! Argument conversion failures get `ERR_INVALID_INPUT` too, never napi-rs's own statuses.

use napi::bindgen_prelude::{FromNapiValue, JsError, Unknown};
use napi::{Env, ValueType};
use orfeas_core::OrfeasError;

/// What a binding function fails with: the status string becomes the JS error's `code`.
pub type CodedError = napi::Error<String>;

/// Result of a binding function; `Err` is thrown (or rejects the promise) with its code.
pub type CodedResult<T> = napi::Result<T, String>;

/// The code for bad arguments, the same as the core uses for bad options.
pub const INVALID_INPUT: &str = "ERR_INVALID_INPUT";

/// An error with the given stable code and message.
pub fn coded(code: &str, message: impl Into<String>) -> CodedError {
    napi::Error::new(code.to_owned(), message.into())
}

/// The core's error with its own code and message.
pub fn from_core(e: &OrfeasError) -> CodedError {
    coded(e.code(), e.to_string())
}

/// An argument that is missing, of the wrong type or out of range.
pub fn invalid_argument(what: &str, detail: impl std::fmt::Display) -> CodedError {
    coded(INVALID_INPUT, format!("invalid input: {what}: {detail}"))
}

/// Turns a coded error into the `napi::Error` a promise rejects with, keeping the code: the
/// JS `Error` object is built here (on the JS thread) and carried by reference.
pub fn into_rejection(env: &Env, err: CodedError) -> napi::Error {
    let object: Unknown<'_> = JsError::from(err).into_unknown(*env);
    napi::Error::from(object)
}

/// Converts a JS value into `T`, reporting a mismatch as `ERR_INVALID_INPUT` naming `what`.
pub fn parse_arg<T: FromNapiValue>(value: &Unknown<'_>, what: &str) -> CodedResult<T> {
    // SAFETY: `value` is a live handle of the current call's scope (it borrows the env), and
    // `T::from_napi_value` validates the value's type before reading it.
    unsafe { value.cast::<T>() }.map_err(|e| invalid_argument(what, e.reason))
}

/// Converts an options object into `T`. Anything but an object is refused first: reading
/// fields of `undefined` would throw a `TypeError` instead, and a number would pass as `{}`.
pub fn parse_object<T: FromNapiValue>(value: &Unknown<'_>, what: &str) -> CodedResult<T> {
    match value.get_type() {
        Ok(ValueType::Object) => parse_arg(value, what),
        Ok(other) => Err(invalid_argument(
            what,
            format!("expected an object, got {}", type_name(other)),
        )),
        Err(e) => Err(invalid_argument(what, e.reason)),
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Function => "a function",
        ValueType::BigInt => "a bigint",
        _ => "a value of another type",
    }
}

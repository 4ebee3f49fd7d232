//! Image inputs: a file path or the bytes of an image (`Buffer`/`Uint8Array`).

use std::sync::Arc;

use napi::bindgen_prelude::{Either, Uint8Array, Unknown};
use orfeas_core::ImageSource;

use crate::errors::{invalid_argument, CodedResult};

/// Reads one input argument. Bytes are copied once here, so the JS buffer may be reused as soon
/// as the call returns; they are named `name` in messages and output file names.
pub fn to_source(value: &Unknown<'_>, what: &str, name: &str) -> CodedResult<ImageSource> {
    let parsed: Either<String, Uint8Array> =
        crate::errors::parse_arg(value, what).map_err(|_| {
            invalid_argument(
                what,
                "expected a file path (string) or image bytes (Buffer or Uint8Array)",
            )
        })?;
    Ok(match parsed {
        Either::A(path) if path.is_empty() => {
            return Err(invalid_argument(what, "the path is empty"))
        }
        Either::A(path) => ImageSource::Path(path.into()),
        Either::B(bytes) => ImageSource::Bytes {
            name: name.to_owned(),
            bytes: Arc::from(&bytes[..]),
        },
    })
}

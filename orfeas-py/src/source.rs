//! Python inputs → `ImageSource`: paths (`str`, `os.PathLike`), encoded bytes (`bytes`,
//! `bytearray`), numpy pixel arrays, or `(name, bytes | array)` to name an in-memory input.
//!
//! numpy arrays are copied out while the GIL is held (a plain copy, in C order whatever their
//! strides) and encoded as PNG later on the worker thread, so the core sees one input type.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageBuffer};
use numpy::{PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use orfeas_core::{ImageSource, OrfeasError};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyTuple};

use crate::errors::invalid_input;

/// An input taken from Python, owned, ready to cross to the worker thread.
#[derive(Debug)]
pub(crate) enum PendingSource {
    Ready(ImageSource),
    Pixels { name: String, pixels: Pixels },
}

/// Raw pixels from a numpy array, row-major.
#[derive(Debug)]
pub(crate) enum Pixels {
    Eight {
        width: u32,
        height: u32,
        channels: u8,
        data: Vec<u8>,
    },
    Sixteen {
        width: u32,
        height: u32,
        channels: u8,
        data: Vec<u16>,
    },
}

impl PendingSource {
    /// The core's input; encodes pixel arrays as an in-memory PNG (fast compression).
    pub(crate) fn into_source(self) -> Result<ImageSource, OrfeasError> {
        match self {
            Self::Ready(source) => Ok(source),
            Self::Pixels { name, pixels } => {
                let bytes = encode_png(pixels).map_err(|e| {
                    OrfeasError::Internal(format!("{name}: cannot encode the array as PNG: {e}"))
                })?;
                Ok(ImageSource::Bytes {
                    name,
                    bytes: Arc::from(bytes),
                })
            }
        }
    }
}

/// Reads one input; `index` (0-based) names unnamed in-memory inputs `input-<index+1>`.
pub(crate) fn extract(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<PendingSource> {
    if let Ok(pair) = obj.cast::<PyTuple>() {
        if pair.len() != 2 {
            return Err(invalid_input(format!(
                "input {}: a tuple input must be (name, bytes or array)",
                index + 1
            )));
        }
        let name: String = pair.get_item(0)?.extract().map_err(|_| {
            invalid_input(format!(
                "input {}: the name of a (name, data) input must be a str",
                index + 1
            ))
        })?;
        return extract_in_memory(&pair.get_item(1)?, name, index)?.ok_or_else(|| {
            invalid_input(format!(
                "input {}: the data of a (name, data) input must be bytes or a numpy array",
                index + 1
            ))
        });
    }
    if let Some(source) = extract_in_memory(obj, format!("input-{}", index + 1), index)? {
        return Ok(source);
    }
    if let Ok(path) = obj.extract::<PathBuf>() {
        return Ok(PendingSource::Ready(ImageSource::Path(path)));
    }
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    Err(PyTypeError::new_err(format!(
        "input {}: expected a path (str or os.PathLike), bytes, a numpy uint8 array or a PIL image, got {type_name}",
        index + 1
    )))
}

/// `bytes`, `bytearray` or a numpy array; `None` for anything else.
fn extract_in_memory(
    obj: &Bound<'_, PyAny>,
    name: String,
    index: usize,
) -> PyResult<Option<PendingSource>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(Some(PendingSource::Ready(ImageSource::Bytes {
            name,
            bytes: Arc::from(bytes.as_bytes()),
        })));
    }
    if let Ok(bytes) = obj.cast::<PyByteArray>() {
        return Ok(Some(PendingSource::Ready(ImageSource::Bytes {
            name,
            bytes: Arc::from(bytes.to_vec()),
        })));
    }
    if obj.cast::<PyUntypedArray>().is_ok() {
        let pixels = pixels_from_array(obj)
            .map_err(|msg| invalid_input(format!("input {} ({name}): {msg}", index + 1)))?;
        return Ok(Some(PendingSource::Pixels { name, pixels }));
    }
    Ok(None)
}

/// H×W (gray), H×W×1, H×W×2 (gray+alpha), H×W×3 (RGB) or H×W×4 (RGBA); uint8 or uint16.
fn pixels_from_array(obj: &Bound<'_, PyAny>) -> Result<Pixels, String> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|e| e.to_string())?;
    let shape = untyped.shape().to_vec();
    let (height, width, channels) = match shape.as_slice() {
        [h, w] => (*h, *w, 1usize),
        [h, w, c] if (1..=4).contains(c) => (*h, *w, *c),
        _ => {
            return Err(format!(
                "an image array must be H×W or H×W×C with C in 1..=4, got shape {shape:?}"
            ))
        }
    };
    if width == 0 || height == 0 {
        return Err(format!("the image array is empty (shape {shape:?})"));
    }
    let dims = |n: usize| {
        u32::try_from(n).map_err(|_| format!("the image array is too large (shape {shape:?})"))
    };
    let (width, height, channels) = (dims(width)?, dims(height)?, channels as u8);
    if let Ok(array) = obj.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        let data = array.as_array().iter().copied().collect();
        return Ok(Pixels::Eight {
            width,
            height,
            channels,
            data,
        });
    }
    if let Ok(array) = obj.extract::<PyReadonlyArrayDyn<'_, u16>>() {
        let data = array.as_array().iter().copied().collect();
        return Ok(Pixels::Sixteen {
            width,
            height,
            channels,
            data,
        });
    }
    Err(format!(
        "an image array must have dtype uint8 (or uint16), got {}",
        untyped.dtype()
    ))
}

fn encode_png(pixels: Pixels) -> Result<Vec<u8>, String> {
    let image = match pixels {
        Pixels::Eight {
            width,
            height,
            channels,
            data,
        } => match channels {
            1 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageLuma8),
            2 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageLumaA8),
            3 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgb8),
            _ => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgba8),
        },
        Pixels::Sixteen {
            width,
            height,
            channels,
            data,
        } => match channels {
            1 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageLuma16),
            2 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageLumaA16),
            3 => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgb16),
            _ => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgba16),
        },
    }
    .ok_or("pixel buffer does not match its dimensions")?;
    let mut out = Cursor::new(Vec::new());
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter);
    image
        .write_with_encoder(encoder)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

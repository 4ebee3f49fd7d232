//! The one error type of orfeas.
//!
//! Every front end (CLI, HTTP server, Python, Node) maps [`OrfeasError::code`] once, so the
//! codes are part of the public contract: never rename one, only add.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = OrfeasError> = std::result::Result<T, E>;

/// Everything that can go wrong while turning an image into a mesh.
///
/// Messages name the input (file name or `<bytes>`), so a user with a batch of a thousand
/// files can tell which one failed without reading logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrfeasError {
    /// An argument or option is out of range or inconsistent.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The input holds no bytes at all.
    #[error("{name}: the file is empty")]
    EmptyInput { name: String },

    /// The bytes are not an image format orfeas reads (text, PDF, unknown signature).
    #[error(
        "{name}: not a supported image ({detail}); supported: PNG, JPEG, WebP, BMP, TIFF, GIF"
    )]
    UnsupportedFormat { name: String, detail: String },

    /// The image claims dimensions or a size beyond the configured limits; refused before decoding.
    #[error("{name}: image too large ({detail})")]
    ImageTooLarge { name: String, detail: String },

    /// The image is of a known format but its data is corrupt or truncated.
    #[error("{name}: cannot decode image: {detail}")]
    ImageDecode { name: String, detail: String },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Meshing produced nothing usable (e.g. an empty foreground).
    #[error("{name}: meshing failed: {detail}")]
    Meshing { name: String, detail: String },

    /// A writer failed for a reason other than I/O (e.g. a texture could not be encoded).
    #[error("export to {format} failed: {detail}")]
    Export { format: String, detail: String },

    /// Model weights were asked for but are not available.
    #[error("model weights not found: {0}")]
    WeightsNotFound(String),

    /// Model weights were found but cannot be used: unreadable, truncated, or not matching the
    /// configuration. `detail` names the first missing, misshaped or unexpected tensor.
    #[error("{}: invalid model weights: {detail}", path.display())]
    WeightsInvalid { path: PathBuf, detail: String },

    /// The image holds no foreground object to reconstruct (fully transparent, or no
    /// background could be told apart from the object).
    #[error("{name}: no foreground object found: {detail}")]
    NoForeground { name: String, detail: String },

    /// The depth estimator's output cannot be trusted: too many of its values are not
    /// finite (NaN or infinite), as from a model with broken weights or a numeric fault.
    #[error("{name}: depth estimation failed: {detail}")]
    Depth { name: String, detail: String },

    /// A device (e.g. `cuda:1`) is unknown or unusable.
    #[error("device error: {0}")]
    Device(String),

    /// The build does not include an optional feature (e.g. `cuda`).
    #[error("orfeas was built without the `{0}` feature")]
    FeatureDisabled(&'static str),

    /// The job or batch was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// A bug: a panic inside a job, caught so that the rest of the batch goes on.
    #[error("internal error: {0}")]
    Internal(String),
}

impl OrfeasError {
    /// Stable machine-readable code, shared by every front end.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "ERR_INVALID_INPUT",
            Self::EmptyInput { .. } => "ERR_EMPTY_INPUT",
            Self::UnsupportedFormat { .. } => "ERR_UNSUPPORTED_FORMAT",
            Self::ImageTooLarge { .. } => "ERR_IMAGE_TOO_LARGE",
            Self::ImageDecode { .. } => "ERR_IMAGE_DECODE",
            Self::Io { .. } => "ERR_IO",
            Self::Meshing { .. } => "ERR_MESHING",
            Self::Export { .. } => "ERR_EXPORT",
            Self::WeightsNotFound(_) => "ERR_WEIGHTS_NOT_FOUND",
            Self::WeightsInvalid { .. } => "ERR_WEIGHTS_INVALID",
            Self::NoForeground { .. } => "ERR_NO_FOREGROUND",
            Self::Depth { .. } => "ERR_DEPTH",
            Self::Device(_) => "ERR_DEVICE",
            Self::FeatureDisabled(_) => "ERR_FEATURE_DISABLED",
            Self::Cancelled => "ERR_CANCELLED",
            Self::Internal(_) => "ERR_INTERNAL",
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            OrfeasError::InvalidInput(String::new()),
            OrfeasError::EmptyInput {
                name: String::new(),
            },
            OrfeasError::UnsupportedFormat {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::ImageTooLarge {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::ImageDecode {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::io("x", std::io::Error::other("x")),
            OrfeasError::Meshing {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::Export {
                format: String::new(),
                detail: String::new(),
            },
            OrfeasError::WeightsNotFound(String::new()),
            OrfeasError::WeightsInvalid {
                path: PathBuf::new(),
                detail: String::new(),
            },
            OrfeasError::NoForeground {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::Depth {
                name: String::new(),
                detail: String::new(),
            },
            OrfeasError::Device(String::new()),
            OrfeasError::FeatureDisabled("cuda"),
            OrfeasError::Cancelled,
            OrfeasError::Internal(String::new()),
        ];
        let mut codes: Vec<_> = all.iter().map(OrfeasError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| c.starts_with("ERR_")));
    }
}

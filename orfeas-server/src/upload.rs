//! Receiving a multipart upload: files streamed to disk chunk by chunk under the limits,
//! then checked by their bytes (signature and header), never by their names.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::Multipart;
use axum::http::StatusCode;
use image::ImageFormat;
use orfeas_core::ImageLimits;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::error::ApiError;

/// Longest accepted text field (settings are short).
const MAX_TEXT_FIELD: usize = 4096;

/// Field names that carry images.
fn is_file_field(name: &str) -> bool {
    matches!(name, "files" | "files[]" | "file")
}

/// A file refused with the reason, listed in the response's `rejected`.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub filename: String,
    pub error: String,
    pub code: &'static str,
}

/// A file written to the staging directory, not yet checked.
#[derive(Debug)]
pub struct StagedFile {
    /// Sanitised display name.
    pub filename: String,
    pub path: PathBuf,
}

/// A staged file whose bytes are a supported image.
#[derive(Debug)]
pub struct ValidFile {
    pub filename: String,
    pub path: PathBuf,
    /// Extension for the detected format (`png`, `jpg`, ...).
    pub extension: &'static str,
}

/// What a multipart body held.
#[derive(Debug, Default)]
pub struct Received {
    pub files: Vec<StagedFile>,
    pub rejected: Vec<Rejected>,
    pub fields: HashMap<String, String>,
    /// At least one file was over the per-file limit.
    pub oversize: bool,
}

/// A directory removed with everything in it when dropped (the staging area of one request).
#[derive(Debug)]
pub struct StagingDir(PathBuf);

impl StagingDir {
    pub fn create(path: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), "cannot remove an upload staging directory: {e}");
            }
        }
    }
}

/// Reads every field: files go to `staging` as `0`, `1`, ... (never under a client-given
/// name), text fields are collected. Errors: 413 when the body or the file count is over
/// the limit, 400 for a malformed body or an overlong text field. A request refused for its
/// content is still read to its end (within the body limit) before the answer, so that the
/// client, still sending, receives the answer instead of a reset connection.
pub async fn receive(
    mut multipart: Multipart,
    staging: &Path,
    limits: &UploadLimits,
) -> Result<Received, ApiError> {
    let mut received = Received::default();
    let mut file_fields = 0usize;
    let mut refusal: Option<ApiError> = None;
    while let Some(field) = multipart.next_field().await.map_err(body_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if refusal.is_some() {
            drain(field).await?;
            continue;
        }
        if is_file_field(&name) {
            file_fields += 1;
            if file_fields > limits.max_files {
                refusal = Some(ApiError::too_large(format!(
                    "too many files: at most {} per batch",
                    limits.max_files
                )));
                drain(field).await?;
                continue;
            }
            let filename = display_name(field.file_name().unwrap_or("image"));
            let path = staging.join(file_fields.to_string());
            match write_field(field, &path, limits.max_file_bytes).await? {
                Written::Complete(0) => {
                    remove_quietly(&path);
                    received.rejected.push(Rejected {
                        filename,
                        error: "the file is empty".into(),
                        code: "ERR_EMPTY_INPUT",
                    });
                }
                Written::Complete(_) => received.files.push(StagedFile { filename, path }),
                Written::TooLarge => {
                    remove_quietly(&path);
                    received.oversize = true;
                    received.rejected.push(Rejected {
                        filename,
                        error: format!(
                            "file too large: over the limit of {} bytes",
                            limits.max_file_bytes
                        ),
                        code: "ERR_FILE_TOO_LARGE",
                    });
                }
            }
        } else {
            match read_text(field).await? {
                Ok(text) => {
                    received.fields.insert(name, text);
                }
                Err(e) => refusal = Some(e),
            }
        }
    }
    match refusal {
        Some(e) => Err(e),
        None => Ok(received),
    }
}

/// Reads a field to its end, keeping nothing.
async fn drain(mut field: Field<'_>) -> Result<(), ApiError> {
    while field.chunk().await.map_err(body_error)?.is_some() {}
    Ok(())
}

enum Written {
    Complete(u64),
    TooLarge,
}

/// Streams one field to `path`. Past the per-file limit the rest of the field is read and
/// dropped (the request may hold further valid files) and `TooLarge` is returned.
async fn write_field(
    mut field: Field<'_>,
    path: &Path,
    max_bytes: u64,
) -> Result<Written, ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot stage an upload: {e}")))?;
    let mut written: u64 = 0;
    let mut too_large = false;
    while let Some(chunk) = field.chunk().await.map_err(body_error)? {
        if too_large {
            continue;
        }
        written += chunk.len() as u64;
        if written > max_bytes {
            too_large = true;
            continue;
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("cannot stage an upload: {e}")))?;
    }
    if too_large {
        return Ok(Written::TooLarge);
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(format!("cannot stage an upload: {e}")))?;
    Ok(Written::Complete(written))
}

/// A text field: `Ok(Err(..))` when it is too long or not UTF-8 (the rest of it is read).
async fn read_text(mut field: Field<'_>) -> Result<Result<String, ApiError>, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut bytes = Vec::new();
    let mut too_long = false;
    while let Some(chunk) = field.chunk().await.map_err(body_error)? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
            too_long = true;
        } else {
            bytes.extend_from_slice(&chunk);
        }
    }
    if too_long {
        return Ok(Err(ApiError::bad_request(format!(
            "field {name:?} is longer than {MAX_TEXT_FIELD} bytes"
        ))));
    }
    Ok(String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request(format!("field {name:?} is not UTF-8 text"))))
}

/// The body could not be read on: the rest of it stays unread, so the connection closes.
fn body_error(e: MultipartError) -> ApiError {
    let error = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("request body too large: {}", e.body_text()))
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    };
    error.closing()
}

fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The last component of a client-given file name, with control characters and path
/// separators replaced and its length bounded; shown to users, never used as a path.
pub fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let mut out: String = trimmed.chars().take(200).collect();
    if out.is_empty() {
        out.push_str("image");
    }
    out
}

/// Checks each staged file by its bytes: a known image signature of a format orfeas reads,
/// a header that parses, dimensions within `limits`. Runs on a blocking thread.
pub fn validate(files: Vec<StagedFile>, limits: &ImageLimits) -> (Vec<ValidFile>, Vec<Rejected>) {
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    for file in files {
        match check_image(&file.path, limits) {
            Ok(extension) => valid.push(ValidFile {
                filename: file.filename,
                path: file.path,
                extension,
            }),
            Err((code, error)) => {
                remove_quietly(&file.path);
                rejected.push(Rejected {
                    filename: file.filename,
                    error,
                    code,
                });
            }
        }
    }
    (valid, rejected)
}

fn check_image(path: &Path, limits: &ImageLimits) -> Result<&'static str, (&'static str, String)> {
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ("ERR_IO", format!("cannot read the upload: {e}")))?;
    let unsupported = || {
        (
            "ERR_UNSUPPORTED_FORMAT",
            "not a supported image (PNG, JPEG, WebP, BMP, TIFF, GIF)".to_owned(),
        )
    };
    let format = image::guess_format(&head[..n]).map_err(|_| unsupported())?;
    let extension = match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpg",
        ImageFormat::WebP => "webp",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        ImageFormat::Gif => "gif",
        _ => return Err(unsupported()),
    };
    let (width, height) = image::ImageReader::with_format(
        std::io::BufReader::new(std::fs::File::open(path).map_err(|e| ("ERR_IO", e.to_string()))?),
        format,
    )
    .into_dimensions()
    .map_err(|e| ("ERR_IMAGE_DECODE", format!("cannot decode image: {e}")))?;
    if width == 0 || height == 0 {
        return Err(("ERR_IMAGE_DECODE", "the image has no pixels".into()));
    }
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err((
            "ERR_IMAGE_TOO_LARGE",
            format!("image too large ({width}×{height} pixels)"),
        ));
    }
    Ok(extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_paths_and_controls() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Users\\x\\cat.png"), "cat.png");
        assert_eq!(display_name("a\u{0}b\nc.png"), "a_b_c.png");
        assert_eq!(display_name(".."), "image");
        assert_eq!(display_name(""), "image");
        assert_eq!(display_name(&"x".repeat(1000)).len(), 200);
    }

    #[test]
    fn bytes_decide_not_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let png = dir.path().join("fake.txt");
        image::RgbImage::new(4, 3)
            .save_with_format(&png, ImageFormat::Png)
            .expect("png");
        let text = dir.path().join("photo.png");
        std::fs::write(&text, b"hello, I am not an image").expect("write");
        let truncated = dir.path().join("t.png");
        std::fs::write(&truncated, &std::fs::read(&png).expect("read")[..12]).expect("write");
        let files = [("fake.txt", png), ("photo.png", text), ("t.png", truncated)]
            .into_iter()
            .map(|(n, p)| StagedFile {
                filename: n.into(),
                path: p,
            })
            .collect();
        let (valid, rejected) = validate(files, &ImageLimits::default());
        assert_eq!(valid.len(), 1);
        assert_eq!(
            (valid[0].filename.as_str(), valid[0].extension),
            ("fake.txt", "png")
        );
        let codes: Vec<_> = rejected
            .iter()
            .map(|r| (r.filename.as_str(), r.code))
            .collect();
        assert_eq!(
            codes,
            [
                ("photo.png", "ERR_UNSUPPORTED_FORMAT"),
                ("t.png", "ERR_IMAGE_DECODE")
            ]
        );
    }
}

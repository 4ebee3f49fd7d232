//! The text fields of `POST /api/batch-generate` turned into generation settings.

use std::collections::HashMap;

use orfeas_core::{DepthMethod, GenerateSettings, MeshFormat, Method, Quality};

use crate::error::ApiError;

/// Settings for one batch plus how many of its jobs may run at once.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRequest {
    pub settings: GenerateSettings,
    /// The method the batch runs (also in `settings.method`).
    pub method: Method,
    pub batch_size: usize,
}

/// Reads `format_type`, `quality`, `method` (or its 2.5D alias `depth`), `width_mm`,
/// `depth_mm`, `base_mm`, `solid`, `max_error`, `max_triangles`, `resolution`, `keep_largest`,
/// `background` and `batch_size`; absent fields take the server defaults (`server_method`
/// for the method).
/// Whether the server has the method's weights is the caller's check.
pub fn parse(
    fields: &HashMap<String, String>,
    defaults: &GenerateSettings,
    server_method: Method,
    slots: usize,
) -> Result<BatchRequest, ApiError> {
    let get = |name: &str| fields.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
    let mut settings = defaults.clone();
    if let Some(list) = get("format_type")
        .or_else(|| get("format"))
        .or_else(|| get("formats"))
    {
        let mut formats = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let format: MeshFormat = name
                .parse()
                .map_err(|e: orfeas_core::OrfeasError| ApiError::from(e).status_to_bad_request())?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        settings.formats = formats;
    }
    if let Some(q) = get("quality") {
        settings.quality = q
            .parse::<Quality>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let method = get("method")
        .map(str::parse::<Method>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let depth = get("depth")
        .map(str::parse::<DepthMethod>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let method = match (method, depth) {
        (None, None) => server_method,
        pair => {
            Method::from_pair(pair.0, pair.1).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    settings.method = Some(method);
    let number = |name: &str| -> Result<Option<f32>, ApiError> {
        get(name)
            .map(|v| {
                v.parse::<f32>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a number, got {v:?}"))
                })
            })
            .transpose()
    };
    if let Some(v) = number("width_mm")? {
        settings.width_mm = v;
    }
    if let Some(v) = number("depth_mm")? {
        settings.depth_mm = v;
    }
    if let Some(v) = number("base_mm")? {
        settings.base_mm = v;
    }
    if let Some(v) = number("max_error")? {
        settings.max_error = Some(v);
    }
    if let Some(v) = get("max_triangles") {
        settings.max_triangles = Some(v.parse().map_err(|_| {
            ApiError::bad_request(format!("max_triangles must be a whole number, got {v:?}"))
        })?);
    }
    if let Some(v) = get("resolution") {
        settings.resolution = Some(v.parse().map_err(|_| {
            ApiError::bad_request(format!("resolution must be a whole number, got {v:?}"))
        })?);
    }
    if let Some(v) = get("solid") {
        settings.solid = boolean("solid", v)?;
    }
    if let Some(v) = get("keep_largest") {
        settings.keep_largest = boolean("keep_largest", v)?;
    }
    if let Some(v) = get("background") {
        settings.background = v
            .parse()
            .map_err(|e: orfeas_core::OrfeasError| ApiError::bad_request(e.to_string()))?;
    }
    settings
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let batch_size = match get("batch_size") {
        None => slots,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=slots).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "batch_size must be between 1 and {slots} (the server's slots), got {v:?}"
                )))
            }
        },
    };
    Ok(BatchRequest {
        settings,
        method,
        batch_size,
    })
}

fn boolean(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be true or false, got {v:?}"
        ))),
    }
}

impl ApiError {
    /// Parse errors of settings are the client's fault whatever the core's mapping says.
    fn status_to_bad_request(mut self) -> Self {
        self.status = axum::http::StatusCode::BAD_REQUEST;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_every_field_and_keeps_defaults() {
        let d = GenerateSettings::default();
        let r = parse(
            &fields(&[
                ("format_type", "stl, glb,stl"),
                ("quality", "low"),
                ("width_mm", "50"),
                ("batch_size", "2"),
            ]),
            &d,
            Method::Relief,
            4,
        )
        .expect("valid");
        assert_eq!(r.method, Method::Relief, "the server's method by default");
        assert_eq!(r.settings.method, Some(Method::Relief));
        assert_eq!(r.settings.formats, [MeshFormat::Stl, MeshFormat::Glb]);
        assert_eq!(r.settings.quality, Quality::Low);
        assert_eq!(r.settings.width_mm, 50.0);
        assert_eq!(r.settings.depth_mm, d.depth_mm);
        assert_eq!(r.batch_size, 2);
        assert_eq!(
            parse(&fields(&[]), &d, Method::Relief, 4)
                .expect("defaults")
                .batch_size,
            4
        );
    }

    #[test]
    fn refuses_bad_values_with_400() {
        let d = GenerateSettings::default();
        for bad in [
            ("format_type", "docx"),
            ("quality", "ultra"),
            ("width_mm", "wide"),
            ("width_mm", "-1"),
            ("batch_size", "9"),
            ("batch_size", "0"),
            ("depth", "sculpt"),
            ("method", "nerf"),
            ("depth", "triposr"),
            ("solid", "maybe"),
            ("keep_largest", "maybe"),
            ("resolution", "high"),
            ("resolution", "4"),
        ] {
            let e = parse(&fields(&[bad]), &d, Method::Relief, 4).expect_err(bad.0);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
        assert!(parse(&fields(&[("depth", "relief")]), &d, Method::Relief, 4).is_ok());
    }

    #[test]
    fn method_and_its_depth_alias() {
        let d = GenerateSettings::default();
        let method = |pairs: &[(&str, &str)]| {
            parse(&fields(pairs), &d, Method::Auto, 4).map(|r| (r.method, r.settings.method))
        };
        assert_eq!(
            method(&[("depth", "inflate")]).ok(),
            Some((Method::Inflate, Some(Method::Inflate)))
        );
        assert_eq!(
            method(&[("method", "triposr")]).ok(),
            Some((Method::TripoSr, Some(Method::TripoSr)))
        );
        assert!(method(&[("method", "relief"), ("depth", "relief")]).is_ok());
        let e = method(&[("method", "triposr"), ("depth", "relief")]).expect_err("conflict");
        assert!(e.message.contains("disagree"), "{}", e.message);
        // What an object cannot be is refused before any upload is stored.
        for bad in [
            [("method", "triposr"), ("format_type", "depth16")],
            [("method", "triposr"), ("solid", "false")],
            [("method", "relief"), ("format_type", "field.npy")],
        ] {
            let e = method(&bad).expect_err("combination");
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
        let r = parse(
            &fields(&[
                ("method", "triposr"),
                ("resolution", "64"),
                ("keep_largest", "on"),
                ("format_type", "glb,field.npy"),
            ]),
            &d,
            Method::Auto,
            4,
        )
        .expect("object settings");
        assert_eq!(r.settings.resolution, Some(64));
        assert!(r.settings.keep_largest);
        assert_eq!(r.settings.formats, [MeshFormat::Glb, MeshFormat::FieldNpy]);
    }
}

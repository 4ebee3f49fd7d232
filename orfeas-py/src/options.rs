//! Python keyword arguments → core settings, with the core's own parsers and validation.

use std::str::FromStr;

use orfeas_core::{Background, DepthMethod, GenerateSettings, MeshFormat, Method, OrfeasError};
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// Parses a name (`"medium"`, `"depth-anything"`, `"cuda:1"`) with the core's `FromStr`;
/// an unknown name raises `InvalidInputError` listing the valid ones.
pub(crate) fn parse<T: FromStr<Err = OrfeasError>>(name: &str) -> PyResult<T> {
    name.parse().py_err()
}

/// Format names (each may itself be a comma list), deduplicated in order.
pub(crate) fn parse_formats(names: &[String]) -> PyResult<Vec<MeshFormat>> {
    MeshFormat::parse_list(&names.join(",")).py_err()
}

/// The keyword arguments shared by `run` and `image_to_mesh`.
#[derive(Clone, Debug)]
pub(crate) struct ShapeArgs {
    pub quality: String,
    pub width_mm: f32,
    pub depth_mm: f32,
    pub base_mm: f32,
    pub solid: bool,
    pub max_error: Option<f32>,
    pub max_triangles: Option<usize>,
    pub resolution: Option<usize>,
    pub keep_largest: bool,
    /// `auto`, `alpha`, `border`, `birefnet` or `none`.
    pub background: String,
}

impl ShapeArgs {
    /// Validated settings; errors name the offending argument.
    pub(crate) fn settings(&self, formats: Vec<MeshFormat>) -> PyResult<GenerateSettings> {
        let settings = GenerateSettings {
            formats,
            quality: parse(&self.quality)?,
            max_error: self.max_error,
            max_triangles: self.max_triangles,
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            base_mm: self.base_mm,
            solid: self.solid,
            method: None,
            resolution: self.resolution,
            keep_largest: self.keep_largest,
            background: parse::<Background>(&self.background)?,
        };
        settings.validate().py_err()?;
        Ok(settings)
    }
}

/// `method=` and its 2.5D alias `depth=`: either, or both when they agree (else
/// `InvalidInputError`); `auto` when neither is given.
pub(crate) fn parse_method(method: Option<&str>, depth: Option<&str>) -> PyResult<Method> {
    let method = method.map(parse::<Method>).transpose()?;
    let depth = depth.map(parse::<DepthMethod>).transpose()?;
    Method::from_pair(method, depth).py_err()
}

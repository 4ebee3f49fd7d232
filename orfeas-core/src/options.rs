//! User-facing settings: quality presets, physical size, how the shape is made.
//!
//! The preset table below is the single source of the numbers; docs/pipeline.md mirrors it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::OrfeasError;

/// Quality preset: working resolution, meshing tolerance and triangle budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Low,
    #[default]
    Medium,
    High,
}

/// The numbers behind a [`Quality`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// Longest side of the working image in pixels (larger inputs are downscaled; smaller
    /// inputs are used as they are). Powers of two keep the meshing grid free of padding.
    pub working_size: u32,
    /// Largest allowed vertical distance between mesh and height map, as a fraction of the
    /// relief height (`depth_mm`).
    pub max_error: f32,
    /// Hard cap on top-surface triangles; the tolerance is raised until the mesh fits.
    pub max_triangles: usize,
    /// Smoothing radius (Gaussian sigma, in working pixels) for luminance-derived heights.
    pub smoothing_sigma: f32,
    /// Depth Anything input size (the processor's `size`; a multiple of the 14-pixel patch).
    pub model_size: u32,
    /// Marching-cubes grid of the object path (`triposr`): the density field is sampled at
    /// `resolution³` points over the model's cube.
    pub resolution: usize,
}

impl Quality {
    /// The preset table.
    pub const fn preset(self) -> Preset {
        match self {
            Self::Low => Preset {
                working_size: 256,
                max_error: 0.004,
                max_triangles: 60_000,
                smoothing_sigma: 0.8,
                model_size: 252,
                resolution: 128,
            },
            Self::Medium => Preset {
                working_size: 512,
                max_error: 0.002,
                max_triangles: 250_000,
                smoothing_sigma: 1.0,
                model_size: 364,
                resolution: 192,
            },
            Self::High => Preset {
                working_size: 1024,
                max_error: 0.001,
                max_triangles: 1_000_000,
                smoothing_sigma: 1.2,
                model_size: 518,
                resolution: 256,
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl FromStr for Quality {
    type Err = OrfeasError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            other => Err(OrfeasError::InvalidInput(format!(
                "unknown quality {other:?}; expected low, medium or high"
            ))),
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which depth estimator to use (`--depth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepthMethod {
    /// `depth-anything` when weights are available, else `inflate` for images with a real
    /// foreground mask, else `relief`. The choice is reported in the job result.
    #[default]
    Auto,
    Relief,
    Inflate,
    DepthAnything,
}

impl DepthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Relief => "relief",
            Self::Inflate => "inflate",
            Self::DepthAnything => "depth-anything",
        }
    }
}

impl FromStr for DepthMethod {
    type Err = OrfeasError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Self::Auto),
            "relief" => Ok(Self::Relief),
            "inflate" => Ok(Self::Inflate),
            "depth-anything" | "depthanything" => Ok(Self::DepthAnything),
            other => Err(OrfeasError::InvalidInput(format!(
                "unknown depth method {other:?}; expected auto, relief, inflate or depth-anything"
            ))),
        }
    }
}

impl fmt::Display for DepthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the shape is made (`--method`, `method=`, the HTTP `method` field): one of the 2.5D
/// depth estimators (a relief with a flat back, the values of [`DepthMethod`]) or `triposr`,
/// a full 3D object. `auto` is the 2.5D `auto` and never picks `triposr`: an object is only
/// made when asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    #[default]
    Auto,
    Relief,
    Inflate,
    DepthAnything,
    /// TripoSR: image → triplanes → density field → closed, vertex-coloured mesh.
    #[serde(rename = "triposr")]
    TripoSr,
}

impl Method {
    /// Every method, in the order they are listed to users.
    pub const ALL: [Method; 5] = [
        Self::Auto,
        Self::Relief,
        Self::Inflate,
        Self::DepthAnything,
        Self::TripoSr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TripoSr => "triposr",
            other => other.depth().map_or("auto", DepthMethod::as_str),
        }
    }

    /// The 2.5D estimator this method is; `None` for `triposr`.
    pub fn depth(self) -> Option<DepthMethod> {
        match self {
            Self::Auto => Some(DepthMethod::Auto),
            Self::Relief => Some(DepthMethod::Relief),
            Self::Inflate => Some(DepthMethod::Inflate),
            Self::DepthAnything => Some(DepthMethod::DepthAnything),
            Self::TripoSr => None,
        }
    }

    /// Whether the method makes a full 3D object (field + surface) rather than a relief.
    pub fn is_object(self) -> bool {
        self.depth().is_none()
    }

    /// Combines `--method` and its alias `--depth`: either alone, or both naming the same
    /// method. A conflicting pair is `ERR_INVALID_INPUT` saying which two were given.
    pub fn from_pair(
        method: Option<Method>,
        depth: Option<DepthMethod>,
    ) -> Result<Method, OrfeasError> {
        match (method, depth) {
            (Some(m), Some(d)) if m != Method::from(d) => Err(OrfeasError::InvalidInput(format!(
                "method {m} and depth {d} disagree; depth is an alias of method for the 2.5D \
                 estimators, so give one of them"
            ))),
            (Some(m), _) => Ok(m),
            (None, Some(d)) => Ok(d.into()),
            (None, None) => Ok(Method::Auto),
        }
    }
}

impl From<DepthMethod> for Method {
    fn from(depth: DepthMethod) -> Self {
        match depth {
            DepthMethod::Auto => Self::Auto,
            DepthMethod::Relief => Self::Relief,
            DepthMethod::Inflate => Self::Inflate,
            DepthMethod::DepthAnything => Self::DepthAnything,
        }
    }
}

impl FromStr for Method {
    type Err = OrfeasError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        if matches!(name.as_str(), "triposr" | "tripo-sr") {
            return Ok(Self::TripoSr);
        }
        match name.parse::<DepthMethod>() {
            Ok(depth) => Ok(depth.into()),
            Err(_) => Err(OrfeasError::InvalidInput(format!(
                "unknown method {:?}; expected auto, relief, inflate, depth-anything or triposr",
                s.trim()
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The smallest marching-cubes grid accepted (`--resolution`).
pub const MIN_RESOLUTION: usize = 8;
/// The largest: a 512³ field is 512 MiB of f32 per job in flight.
pub const MAX_RESOLUTION: usize = 512;

/// Everything that shapes one job's output, shared by all jobs of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSettings {
    pub formats: Vec<crate::export::MeshFormat>,
    pub quality: Quality,
    /// Overrides the preset's `max_error` (fraction of the relief height).
    pub max_error: Option<f32>,
    /// Overrides the preset's `max_triangles`.
    pub max_triangles: Option<usize>,
    /// Width of the model in millimetres; the other side follows the aspect ratio.
    pub width_mm: f32,
    /// Height of the relief above the base, millimetres.
    pub depth_mm: f32,
    /// Thickness of the flat base under the relief, millimetres.
    pub base_mm: f32,
    /// Closed printable solid (`true`) or open front surface (`false`). Objects are always
    /// closed: `false` with `triposr` is refused.
    pub solid: bool,
    /// How the shape is made; `None`: the method the processor (or setup) was started with.
    pub method: Option<Method>,
    /// Overrides the preset's marching-cubes grid (`triposr` only; the 2.5D methods ignore it).
    pub resolution: Option<usize>,
    /// Keep only the largest connected part of an object's surface, dropping small floating
    /// fragments (`triposr` only). Off by default: everything is kept, as the reference does.
    pub keep_largest: bool,
    /// Where the foreground mask comes from (`--background`).
    pub background: crate::foreground::Background,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        Self {
            formats: vec![crate::export::MeshFormat::Stl],
            quality: Quality::Medium,
            max_error: None,
            max_triangles: None,
            width_mm: 100.0,
            depth_mm: 20.0,
            base_mm: 2.0,
            solid: true,
            method: None,
            resolution: None,
            keep_largest: false,
            background: crate::foreground::Background::Auto,
        }
    }
}

impl GenerateSettings {
    /// The preset with the explicit overrides applied.
    pub fn effective_preset(&self) -> Preset {
        let mut p = self.quality.preset();
        if let Some(e) = self.max_error {
            p.max_error = e;
        }
        if let Some(t) = self.max_triangles {
            p.max_triangles = t;
        }
        if let Some(r) = self.resolution {
            p.resolution = r;
        }
        p
    }

    /// The method jobs run: the settings' own, else `default` (the processor's).
    pub fn method_or(&self, default: Method) -> Method {
        self.method.unwrap_or(default)
    }

    /// Rejects what `method` cannot make, before any job runs: the depth formats need a depth
    /// map (2.5D methods), `field.npy` a density field (`triposr`), and an object is always a
    /// closed solid.
    pub fn check_method(&self, method: Method) -> Result<(), OrfeasError> {
        let bad = |m: String| Err(OrfeasError::InvalidInput(m));
        if method.is_object() {
            if let Some(f) = self.formats.iter().find(|f| f.is_depth()) {
                return bad(format!(
                    "format {f} is a depth map, which method {method} does not make (it makes a \
                     full 3D object); use field.npy for its density field, or a 2.5D method"
                ));
            }
            if !self.solid {
                return bad(format!(
                    "method {method} makes a closed object; an open surface (--surface, \
                     solid = false) is only for the 2.5D methods"
                ));
            }
        } else if let Some(f) = self.formats.iter().find(|f| f.is_field()) {
            return bad(format!(
                "format {f} is the density field of a full 3D object; method {method} makes a \
                 2.5D relief (use --method triposr, or depth16/depth.npy for its depth map)"
            ));
        }
        Ok(())
    }

    /// Rejects settings that cannot produce a valid model, before any work starts.
    pub fn validate(&self) -> Result<(), OrfeasError> {
        let bad = |m: String| Err(OrfeasError::InvalidInput(m));
        if self.formats.is_empty() {
            return bad("no output format requested".into());
        }
        if !(self.width_mm.is_finite() && self.width_mm > 0.0 && self.width_mm <= 100_000.0) {
            return bad(format!(
                "width_mm must be in (0, 100000], got {}",
                self.width_mm
            ));
        }
        if !(self.depth_mm.is_finite() && self.depth_mm >= 0.0 && self.depth_mm <= 100_000.0) {
            return bad(format!(
                "depth_mm must be in [0, 100000], got {}",
                self.depth_mm
            ));
        }
        if !(self.base_mm.is_finite() && self.base_mm >= 0.0 && self.base_mm <= 100_000.0) {
            return bad(format!(
                "base_mm must be in [0, 100000], got {}",
                self.base_mm
            ));
        }
        if self.solid && self.base_mm <= 0.0 {
            return bad(
                "a solid needs base_mm > 0 (use a surface for a zero-thickness base)".into(),
            );
        }
        if let Some(e) = self.max_error {
            if !(e.is_finite() && e > 0.0 && e <= 1.0) {
                return bad(format!("max_error must be in (0, 1], got {e}"));
            }
        }
        if let Some(t) = self.max_triangles {
            if t < 2 {
                return bad(format!("max_triangles must be at least 2, got {t}"));
            }
        }
        if let Some(r) = self.resolution {
            if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&r) {
                return bad(format!(
                    "resolution must be between {MIN_RESOLUTION} and {MAX_RESOLUTION}, got {r}"
                ));
            }
        }
        if let Some(method) = self.method {
            self.check_method(method)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate() {
        assert_eq!("HIGH".parse::<Quality>().ok(), Some(Quality::High));
        assert!("ultra".parse::<Quality>().is_err());
        assert_eq!(
            "depth_anything".parse::<DepthMethod>().ok(),
            Some(DepthMethod::DepthAnything)
        );
        let mut s = GenerateSettings::default();
        assert!(s.validate().is_ok());
        s.base_mm = 0.0;
        assert!(s.validate().is_err());
        s.solid = false;
        assert!(s.validate().is_ok());
        s.width_mm = f32::NAN;
        assert!(s.validate().is_err());
    }

    #[test]
    fn methods_parse_print_and_alias_the_depth_values() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>().ok(), Some(m));
            assert_eq!(
                serde_json::to_value(m).ok(),
                Some(serde_json::json!(m.as_str()))
            );
        }
        assert_eq!(" TripoSR ".parse::<Method>().ok(), Some(Method::TripoSr));
        assert_eq!(
            "depth_anything".parse::<Method>().ok(),
            Some(Method::DepthAnything)
        );
        let e = "nerf".parse::<Method>().expect_err("unknown");
        assert!(e.to_string().contains("triposr"), "{e}");
        assert_eq!(Method::TripoSr.depth(), None);
        assert!(Method::TripoSr.is_object() && !Method::Auto.is_object());
        assert_eq!(Method::from(DepthMethod::Inflate), Method::Inflate);
        assert_eq!(Method::from_pair(None, None).ok(), Some(Method::Auto));
        assert_eq!(
            Method::from_pair(None, Some(DepthMethod::Relief)).ok(),
            Some(Method::Relief)
        );
        assert_eq!(
            Method::from_pair(Some(Method::Relief), Some(DepthMethod::Relief)).ok(),
            Some(Method::Relief)
        );
        let e = Method::from_pair(Some(Method::TripoSr), Some(DepthMethod::Relief))
            .expect_err("conflict");
        assert_eq!(e.code(), "ERR_INVALID_INPUT");
        assert!(e.to_string().contains("triposr") && e.to_string().contains("relief"));
    }

    #[test]
    fn formats_and_shapes_a_method_cannot_make_are_refused() {
        use crate::export::MeshFormat;
        let with = |formats: &[MeshFormat]| GenerateSettings {
            formats: formats.to_vec(),
            ..Default::default()
        };
        let object = with(&[MeshFormat::Glb, MeshFormat::FieldNpy]);
        assert!(object.check_method(Method::TripoSr).is_ok());
        let e = object
            .check_method(Method::Auto)
            .expect_err("field of a relief");
        assert!(e.to_string().contains("field.npy"), "{e}");
        for depth in [MeshFormat::Depth16, MeshFormat::DepthNpy] {
            let e = with(&[MeshFormat::Stl, depth])
                .check_method(Method::TripoSr)
                .expect_err("depth of an object");
            assert_eq!(e.code(), "ERR_INVALID_INPUT");
            assert!(e.to_string().contains(depth.as_str()), "{e}");
        }
        let surface = GenerateSettings {
            solid: false,
            ..Default::default()
        };
        assert!(surface.check_method(Method::Relief).is_ok());
        assert!(surface.check_method(Method::TripoSr).is_err());
        // validate() applies the settings' own method.
        let mut s = with(&[MeshFormat::DepthNpy]);
        assert!(s.validate().is_ok());
        s.method = Some(Method::TripoSr);
        assert!(s.validate().is_err());
    }

    #[test]
    fn resolution_comes_from_the_preset_unless_given() {
        let mut s = GenerateSettings::default();
        assert_eq!(s.effective_preset().resolution, 192);
        s.quality = Quality::Low;
        assert_eq!(s.effective_preset().resolution, 128);
        s.quality = Quality::High;
        assert_eq!(s.effective_preset().resolution, 256);
        s.resolution = Some(64);
        assert_eq!(s.effective_preset().resolution, 64);
        assert!(s.validate().is_ok());
        for bad in [0, MIN_RESOLUTION - 1, MAX_RESOLUTION + 1] {
            s.resolution = Some(bad);
            assert!(s.validate().is_err(), "{bad}");
        }
        assert!(!GenerateSettings::default().keep_largest);
    }

    #[test]
    fn overrides_win_over_preset() {
        let s = GenerateSettings {
            max_error: Some(0.01),
            max_triangles: Some(99),
            ..Default::default()
        };
        let p = s.effective_preset();
        assert_eq!(p.max_error, 0.01);
        assert_eq!(p.max_triangles, 99);
        assert_eq!(p.working_size, Quality::Medium.preset().working_size);
    }
}

/// Where the model runs (`--device`). Only the depth model uses it; every other stage runs
/// on the CPU slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The first CUDA device when this build has the `cuda` feature and a GPU answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl Device {
    /// The device jobs will actually use. An explicit CUDA request is refused
    /// (`ERR_FEATURE_DISABLED` in builds without the `cuda` feature, `ERR_DEVICE` when the GPU
    /// cannot be opened) rather than silently running on the CPU; `auto` falls back and says so.
    pub fn resolve(self) -> Result<Device, OrfeasError> {
        match self {
            Self::Cpu => Ok(Self::Cpu),
            Self::Auto if !cfg!(feature = "cuda") => Ok(Self::Cpu),
            Self::Auto => match Self::Cuda(0).candle_device() {
                Ok(_) => Ok(Self::Cuda(0)),
                Err(e) => {
                    tracing::info!("no usable CUDA device ({e}); the model runs on the CPU");
                    Ok(Self::Cpu)
                }
            },
            Self::Cuda(_) => self.candle_device().map(|_| self),
        }
    }

    /// Opens the device for candle. Each call on CUDA gets its own stream, so the slots that
    /// hold one each run their forwards concurrently on the GPU.
    pub(crate) fn candle_device(self) -> Result<candle_core::Device, OrfeasError> {
        match self {
            Self::Cpu | Self::Auto => Ok(candle_core::Device::Cpu),
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(OrfeasError::FeatureDisabled("cuda")),
            Self::Cuda(n) => candle_core::Device::new_cuda_with_stream(n).map_err(|e| {
                OrfeasError::Device(format!(
                    "cannot open cuda:{n}: {}",
                    crate::depth::depth_anything::root(&e)
                ))
            }),
        }
    }
}

impl FromStr for Device {
    type Err = OrfeasError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    OrfeasError::InvalidInput(format!(
                        "unknown device {s:?}; expected auto, cpu, cuda or cuda:N"
                    ))
                }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;

    #[test]
    fn devices_parse_and_cuda_is_refused_when_unusable() {
        assert_eq!("cuda:1".parse::<Device>().ok(), Some(Device::Cuda(1)));
        assert_eq!("CPU".parse::<Device>().ok(), Some(Device::Cpu));
        assert!("tpu".parse::<Device>().is_err());
        if cfg!(feature = "cuda") {
            // With the feature, a machine without a GPU refuses an explicit request clearly.
            if Device::Cuda(0).resolve().is_err() {
                assert_eq!(
                    Device::Cuda(0).resolve().map_err(|e| e.code()),
                    Err("ERR_DEVICE")
                );
                assert_eq!(Device::Auto.resolve().ok(), Some(Device::Cpu));
            }
        } else {
            assert_eq!(
                Device::Cuda(0).resolve().map_err(|e| e.code()),
                Err("ERR_FEATURE_DISABLED")
            );
            assert_eq!(
                Device::Cuda(3).candle_device().map_err(|e| e.code()).err(),
                Some("ERR_FEATURE_DISABLED")
            );
            assert_eq!(Device::Auto.resolve().ok(), Some(Device::Cpu));
        }
    }
}

//! Option objects accepted by the API and their conversion into core settings.
//!
//! Every field is optional and defaults to the core's defaults (docs/reference.md §1); names are the
//! camelCase forms of the CLI's flags. Strings are parsed by the core, so an unknown quality or
//! format is refused with the same message and code as on the command line.

use napi::bindgen_prelude::Object;
use napi_derive::napi;
use orfeas_core::{
    Background, BatchConfig, DepthMethod, Device, GenerateSettings, MeshFormat, Method, Quality,
};

use crate::errors::{from_core, invalid_argument, CodedResult};

/// How a `BatchProcessor` is set up; shared by every batch it runs.
#[napi(object, object_to_js = false)]
#[derive(Debug, Default)]
pub struct ProcessorOptions {
    /// Jobs processed at once (default: one per core on the CPU, at most 16; four per GPU).
    pub slots: Option<u32>,
    /// `auto` (default), `cpu`, `cuda` or `cuda:N`.
    pub device: Option<String>,
    /// How the shape is made: `auto` (default), `relief`, `inflate`, `depth-anything` (2.5D
    /// reliefs) or `triposr` (a full 3D object).
    pub method: Option<String>,
    /// Alias of `method` for the 2.5D values (`auto`, `relief`, `inflate`, `depth-anything`).
    pub depth: Option<String>,
    /// The method's weights (file or directory; TripoSR: `config.yaml` + `model.ckpt`);
    /// default: the Hugging Face cache.
    pub weights: Option<String>,
    /// Threads of the process's CPU pool for data-parallel work (default: every core); it is
    /// made once per process, so only the first processor's value counts.
    pub threads: Option<u32>,
    /// BiRefNet's `model.safetensors` (the file or its directory), for `background: 'birefnet'`
    /// (and `auto`); default: the Hugging Face cache (`orfeas fetch-model --model birefnet-lite`).
    pub segmenter_weights: Option<String>,
    /// Sync each job's files and folder to the disk before it completes, so that a finished
    /// job survives a power cut (default `false`: files are still published atomically).
    pub durable: Option<bool>,
}

impl ProcessorOptions {
    pub fn to_config(&self) -> CodedResult<BatchConfig> {
        let mut config = BatchConfig::default();
        if let Some(slots) = self.slots {
            // Leaving it out asks for the device's default; 0 is a mistake, not a request.
            if slots == 0 {
                return Err(invalid_argument(
                    "slots",
                    "must be at least 1 (leave it out for the default)",
                ));
            }
            config.slots = slots as usize;
        }
        config.durable = self.durable.unwrap_or(false);
        if let Some(device) = &self.device {
            config.device = device.parse::<Device>().map_err(|e| from_core(&e))?;
        }
        config.method = parse_method(self.method.as_deref(), self.depth.as_deref())?;
        config.weights = self.weights.as_ref().map(Into::into);
        config.segmenter_weights = self.segmenter_weights.as_ref().map(Into::into);
        if let Some(threads) = self.threads {
            if threads == 0 {
                return Err(invalid_argument("threads", "must be at least 1"));
            }
            config.threads = Some(threads as usize);
        }
        Ok(config)
    }
}

/// Options of `BatchProcessor.run`.
#[napi(object, object_to_js = false)]
pub struct RunOptions<'a> {
    /// Where the files go (created if missing). Required.
    pub out_dir: String,
    /// Output formats: `stl` (default), `stl-ascii`, `obj`, `glb`, `ply`, `3mf`, `depth16`,
    /// `depth.npy` (reliefs), `field.npy` (objects), `mask.png`, `mask.npy` (the foreground
    /// mask; asked for alone, only the masking stage runs).
    pub formats: Option<Vec<String>>,
    /// `low`, `medium` (default) or `high`.
    pub quality: Option<String>,
    /// Model width in millimetres (default 100); the other side follows the aspect ratio.
    pub width_mm: Option<f64>,
    /// Relief height above the base in millimetres (default 20).
    pub depth_mm: Option<f64>,
    /// Base thickness in millimetres (default 2).
    pub base_mm: Option<f64>,
    /// Closed printable solid (default `true`) or the open front surface.
    pub solid: Option<bool>,
    /// Meshing tolerance as a fraction of the relief height (overrides the preset).
    pub max_error: Option<f64>,
    /// Triangle budget (overrides the preset).
    pub max_triangles: Option<u32>,
    /// Marching-cubes grid of objects (default from `quality`: low 128, medium 192, high 256).
    pub resolution: Option<u32>,
    /// Keep only an object's largest connected part (default `false`: keep everything).
    pub keep_largest: Option<bool>,
    /// Where the foreground mask comes from: `auto` (default: the alpha channel when real,
    /// else BiRefNet when loaded, else the border estimate), `alpha`, `border`, `birefnet`
    /// (`ERR_WEIGHTS_NOT_FOUND` unless BiRefNet is loaded) or `none`. Results say which ran
    /// (`mask`).
    pub background: Option<String>,
    /// Called on the main thread with every progress event (never blocks the workers).
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<crate::progress::ProgressCallback<'a>>,
    /// Cancels the batch: queued jobs are skipped, running jobs stop at their next check.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'a>>,
}

impl RunOptions<'_> {
    pub fn settings(&self) -> CodedResult<GenerateSettings> {
        let shape = ShapeOptions {
            quality: self.quality.clone(),
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            base_mm: self.base_mm,
            solid: self.solid,
            max_error: self.max_error,
            max_triangles: self.max_triangles,
            resolution: self.resolution,
            keep_largest: self.keep_largest,
            background: self.background.clone(),
        };
        let mut settings = shape.settings()?;
        if let Some(formats) = &self.formats {
            settings.formats = parse_formats(formats)?;
        }
        settings.validate().map_err(|e| from_core(&e))?;
        Ok(settings)
    }
}

/// Options of `imageToMesh` and `estimateDepth`.
#[napi(object, object_to_js = false)]
pub struct MeshOptions<'a> {
    /// `low`, `medium` (default) or `high`.
    pub quality: Option<String>,
    /// How the shape is made: `auto` (default), `relief`, `inflate`, `depth-anything` or
    /// `triposr` (a full 3D object; not for `estimateDepth`).
    pub method: Option<String>,
    /// Alias of `method` for the 2.5D values.
    pub depth: Option<String>,
    /// The method's weights (file or directory); default: the Hugging Face cache.
    pub weights: Option<String>,
    /// Model width in millimetres (default 100).
    pub width_mm: Option<f64>,
    /// Relief height above the base in millimetres (default 20).
    pub depth_mm: Option<f64>,
    /// Base thickness in millimetres (default 2).
    pub base_mm: Option<f64>,
    /// Closed printable solid (default `true`) or the open front surface.
    pub solid: Option<bool>,
    /// Meshing tolerance as a fraction of the relief height (overrides the preset).
    pub max_error: Option<f64>,
    /// Triangle budget (overrides the preset).
    pub max_triangles: Option<u32>,
    /// Marching-cubes grid of objects (default from `quality`).
    pub resolution: Option<u32>,
    /// Keep only an object's largest connected part (default `false`).
    pub keep_largest: Option<bool>,
    /// Where the foreground mask comes from, as in `RunOptions.background` (default `auto`).
    /// `estimateDepth` never loads BiRefNet: there `birefnet` is `ERR_WEIGHTS_NOT_FOUND`.
    pub background: Option<String>,
    /// BiRefNet's weights (file or directory) for `background`; default: the Hugging Face
    /// cache.
    pub segmenter_weights: Option<String>,
    /// Cancels the work at its next check; the promise rejects with `ERR_CANCELLED`.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'a>>,
}

impl MeshOptions<'_> {
    pub fn settings(&self) -> CodedResult<GenerateSettings> {
        let shape = ShapeOptions {
            quality: self.quality.clone(),
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            base_mm: self.base_mm,
            solid: self.solid,
            max_error: self.max_error,
            max_triangles: self.max_triangles,
            resolution: self.resolution,
            keep_largest: self.keep_largest,
            background: self.background.clone(),
        };
        let settings = shape.settings()?;
        settings.validate().map_err(|e| from_core(&e))?;
        Ok(settings)
    }

    pub fn method(&self) -> CodedResult<Method> {
        parse_method(self.method.as_deref(), self.depth.as_deref())
    }
}

/// The fields `RunOptions` and `MeshOptions` share.
struct ShapeOptions {
    quality: Option<String>,
    width_mm: Option<f64>,
    depth_mm: Option<f64>,
    base_mm: Option<f64>,
    solid: Option<bool>,
    max_error: Option<f64>,
    max_triangles: Option<u32>,
    resolution: Option<u32>,
    keep_largest: Option<bool>,
    background: Option<String>,
}

impl ShapeOptions {
    fn settings(&self) -> CodedResult<GenerateSettings> {
        let mut s = GenerateSettings::default();
        if let Some(q) = &self.quality {
            s.quality = q.parse::<Quality>().map_err(|e| from_core(&e))?;
        }
        if let Some(v) = self.width_mm {
            s.width_mm = v as f32;
        }
        if let Some(v) = self.depth_mm {
            s.depth_mm = v as f32;
        }
        if let Some(v) = self.base_mm {
            s.base_mm = v as f32;
        }
        if let Some(v) = self.solid {
            s.solid = v;
        }
        s.max_error = self.max_error.map(|v| v as f32);
        s.max_triangles = self.max_triangles.map(|v| v as usize);
        s.resolution = self.resolution.map(|v| v as usize);
        s.keep_largest = self.keep_largest.unwrap_or(false);
        if let Some(b) = &self.background {
            s.background = b.parse::<Background>().map_err(|e| from_core(&e))?;
        }
        Ok(s)
    }
}

/// `method` and its 2.5D alias `depth`: either, or both agreeing; `auto` when neither is given.
pub fn parse_method(method: Option<&str>, depth: Option<&str>) -> CodedResult<Method> {
    let method = method
        .map(str::parse::<Method>)
        .transpose()
        .map_err(|e| from_core(&e))?;
    let depth = depth
        .map(str::parse::<DepthMethod>)
        .transpose()
        .map_err(|e| from_core(&e))?;
    Method::from_pair(method, depth).map_err(|e| from_core(&e))
}

/// Formats in the order given, duplicates dropped (as the CLI does).
pub fn parse_formats(names: &[String]) -> CodedResult<Vec<MeshFormat>> {
    let mut formats: Vec<MeshFormat> = Vec::with_capacity(names.len());
    for name in names {
        let format = name.parse::<MeshFormat>().map_err(|e| from_core(&e))?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    Ok(formats)
}

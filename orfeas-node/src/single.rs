//! What `imageToMesh` and `estimateDepth` share: one image, its options parsed and checked on
//! the calling thread (so bad arguments reject at once), the AbortSignal linked, and the work
//! run on a worker thread with the depth estimator loaded there.

use napi::bindgen_prelude::{ToNapiValue, Unknown};
use napi::Env;
use orfeas_core::{
    CancelToken, DepthSetup, GenerateSettings, ImageLimits, ImageSource, MeshFormat, Method,
    OrfeasError, ShapeSetup,
};

use crate::errors::{from_core, parse_object, CodedResult};
use crate::input::to_source;
use crate::options::MeshOptions;
use crate::promise;

/// Everything one single-image call needs, owned, ready to move to a worker thread.
pub struct SingleImage {
    pub source: ImageSource,
    pub settings: GenerateSettings,
    method: Method,
    weights: Option<String>,
    segmenter_weights: Option<String>,
    pub cancel: CancelToken,
    pub limits: ImageLimits,
}

impl SingleImage {
    /// Parses `input` (a path or bytes) and `options`, and links `options.signal` to the
    /// call's cancel token.
    pub fn parse(
        env: &Env,
        input: &Unknown<'_>,
        options: Option<&Unknown<'_>>,
    ) -> CodedResult<Self> {
        let options: Option<MeshOptions<'_>> = match options {
            Some(value) => Some(parse_object(value, "options")?),
            None => None,
        };
        let source = to_source(input, "input", "buffer")?;
        let (mut settings, method, weights, segmenter_weights) = match &options {
            Some(o) => (
                o.settings()?,
                o.method()?,
                o.weights.clone(),
                o.segmenter_weights.clone(),
            ),
            None => (GenerateSettings::default(), Method::default(), None, None),
        };
        // The model keeps its mask, so that `toBuffer('mask.png')` / `'mask.npy'` work, and an
        // object its density field, for `toBuffer('field.npy')`.
        settings
            .formats
            .extend([MeshFormat::MaskPng, MeshFormat::MaskNpy]);
        if method.is_object() {
            settings.formats.push(MeshFormat::FieldNpy);
        }
        settings.method = Some(method);
        settings.validate().map_err(|e| from_core(&e))?;
        let cancel = CancelToken::new();
        crate::abort::link(
            env,
            options.as_ref().and_then(|o| o.signal.as_ref()),
            &cancel,
        )?;
        Ok(Self {
            source,
            settings,
            method,
            weights,
            segmenter_weights,
            cancel,
            limits: ImageLimits::default(),
        })
    }

    /// Loads the method's model (its weights when asked for or found) and BiRefNet as
    /// `background` needs it (`birefnet` without weights fails here, before the image is
    /// read), on the worker thread: it can take seconds.
    pub fn shape_setup(&self) -> CodedResult<ShapeSetup> {
        ShapeSetup::resolve_on(
            self.method,
            self.weights.as_deref().map(std::path::Path::new),
            false,
            orfeas_core::Device::Cpu,
            1,
        )
        .and_then(|setup| {
            setup.with_segmenter(
                self.settings.background,
                self.segmenter_weights.as_deref().map(std::path::Path::new),
                orfeas_core::Device::Cpu,
            )
        })
        .map_err(|e| from_core(&e))
    }

    /// Loads the depth estimator for `estimateDepth`; an object method has no depth map.
    pub fn depth_setup(&self) -> CodedResult<DepthSetup> {
        let depth = self.method.depth().ok_or_else(|| {
            from_core(&OrfeasError::InvalidInput(format!(
                "method {} makes a full 3D object, not a depth map; estimateDepth takes the 2.5D \
                 methods",
                self.method
            )))
        })?;
        DepthSetup::resolve(depth, self.weights.as_deref().map(std::path::Path::new))
            .map_err(|e| from_core(&e))
    }

    /// Runs `work` on a new thread named `name` and settles the returned promise with
    /// `to_js` of its result.
    pub fn spawn<'env, T, V>(
        self,
        env: &'env Env,
        name: &str,
        work: impl FnOnce(&SingleImage) -> CodedResult<V> + Send + 'static,
        to_js: impl FnOnce(Env, V) -> napi::Result<T> + Send + 'static,
    ) -> CodedResult<napi::bindgen_prelude::Object<'env>>
    where
        T: ToNapiValue + 'static,
        V: Send + 'static,
    {
        promise::spawn(env, name, move || work(&self), to_js)
            .map_err(|e| crate::errors::coded("ERR_INTERNAL", e.reason))
    }
}

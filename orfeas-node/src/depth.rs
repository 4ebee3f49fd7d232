//! `estimateDepth`: the raw depth estimator output of one image, at the image's size.

use napi::bindgen_prelude::{Float32Array, Object, Unknown};
use napi::Env;
use napi_derive::napi;
use orfeas_core::estimate_depth as core_estimate_depth;

use crate::errors::{from_core, CodedResult};
use crate::promise;
use crate::single::SingleImage;

/// A depth (height) map: `width * height` values, row-major, larger is nearer/higher.
#[napi(object, object_from_js = false)]
pub struct DepthMap {
    pub width: u32,
    pub height: u32,
    pub data: Float32Array,
    /// The estimator that ran (`relief`, `inflate` or `depth-anything`; never `auto`).
    pub depth: String,
}

/// Estimates depth for one image (a path or its bytes) on a worker thread. Uses `quality`,
/// `depth`, `weights` and `signal` of the options; rejects with the core's error codes.
#[napi(
    ts_args_type = "input: string | Uint8Array, options?: MeshOptions",
    ts_return_type = "Promise<DepthMap>"
)]
pub fn estimate_depth<'env>(
    env: &'env Env,
    input: Unknown<'env>,
    options: Option<Unknown<'env>>,
) -> napi::Result<Object<'env>> {
    match start(env, &input, options.as_ref()) {
        Ok(promise) => Ok(promise),
        Err(e) => promise::rejected::<DepthMap>(env, e),
    }
}

fn start<'env>(
    env: &'env Env,
    input: &Unknown<'env>,
    options: Option<&Unknown<'env>>,
) -> CodedResult<Object<'env>> {
    let request = SingleImage::parse(env, input, options)?;
    let work = |r: &SingleImage| {
        let depth = r.depth_setup()?;
        core_estimate_depth(&r.source, &r.settings, &depth, &r.limits, &r.cancel)
            .map_err(|e| from_core(&e))
    };
    request.spawn(
        env,
        "orfeas-node-depth",
        work,
        |_env, map: orfeas_core::DepthMap| {
            Ok(DepthMap {
                width: map.width,
                height: map.height,
                data: Float32Array::new(map.values),
                depth: map.depth.to_owned(),
            })
        },
    )
}

//! `imageToMesh`: one image into an in-memory mesh, serialised on demand with `toBuffer`.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Float32Array, Object, Uint32Array, Unknown};
use napi::Env;
use napi_derive::napi;
use orfeas_core::export;
use orfeas_core::{image_to_model, MeshFormat, Model};

use crate::errors::{from_core, CodedResult};
use crate::promise;
use crate::single::SingleImage;

/// A generated model: an indexed triangle mesh in millimetres (+z up, counter-clockwise
/// seen from outside); a relief carries the image as its colour texture, an object vertex
/// colours; both keep the foreground mask (`toBuffer('mask.png')`).
#[napi]
#[derive(Debug)]
pub struct Mesh {
    model: Arc<Model>,
}

#[napi]
impl Mesh {
    /// Vertex positions, `x, y, z` per vertex (a new copy on every read).
    #[napi(getter)]
    pub fn vertices(&self) -> Float32Array {
        Float32Array::new(
            self.model
                .mesh
                .positions
                .iter()
                .flatten()
                .copied()
                .collect(),
        )
    }

    /// Triangle vertex indices, three per triangle (a new copy on every read).
    #[napi(getter)]
    pub fn faces(&self) -> Uint32Array {
        Uint32Array::new(
            self.model
                .mesh
                .triangles
                .iter()
                .flatten()
                .copied()
                .collect(),
        )
    }

    #[napi(getter)]
    pub fn vertex_count(&self) -> u32 {
        u32::try_from(self.model.mesh.positions.len()).unwrap_or(u32::MAX)
    }

    #[napi(getter)]
    pub fn triangle_count(&self) -> u32 {
        u32::try_from(self.model.mesh.triangles.len()).unwrap_or(u32::MAX)
    }

    /// The depth estimator that ran (`relief`, `inflate`, `depth-anything`, or `triposr` for
    /// an object; never `auto`).
    #[napi(getter)]
    pub fn depth(&self) -> String {
        self.model.report.depth.to_owned()
    }

    /// How the shape was made (`relief`, `inflate`, `depth-anything` or `triposr`).
    #[napi(getter)]
    pub fn method(&self) -> String {
        self.model.report.method.to_owned()
    }

    /// Where the foreground came from (`alpha`, `border`, `birefnet` or `none`).
    #[napi(getter)]
    pub fn mask(&self) -> String {
        serde_json::to_value(self.model.report.mask)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The marching-cubes grid of an object; `null` for a relief.
    #[napi(getter)]
    pub fn resolution(&self) -> Option<u32> {
        self.model
            .report
            .object()
            .map(|o| u32::try_from(o.resolution).unwrap_or(u32::MAX))
    }

    /// What the user should know about this model (e.g. an object cut off by the frame).
    #[napi(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.model.report.warnings.clone()
    }

    /// Per-vertex colours, `r, g, b` bytes per vertex (empty when the mesh has none).
    #[napi(getter)]
    pub fn colors(&self) -> Buffer {
        Buffer::from(self.model.mesh.colors.as_flattened().to_vec())
    }

    /// Closed, consistently wound, positive volume, manifold (always false for a surface).
    #[napi(getter)]
    pub fn watertight(&self) -> bool {
        self.model.report.watertight
    }

    /// The file bytes of `format` (`stl`, `stl-ascii`, `obj`, `glb`, `ply`, `3mf`, and
    /// `depth16`, `depth.npy` for a relief or `field.npy` for an object; `mask.png`, `mask.npy`
    /// for either). Runs on the calling thread: a medium-quality mesh takes milliseconds. OBJ
    /// gives the `.obj` part only (no material or texture files).
    #[napi]
    pub fn to_buffer(&self, format: String) -> napi::Result<Buffer, String> {
        let format = format.parse::<MeshFormat>().map_err(|e| from_core(&e))?;
        let data = self.model.export_data(&[format]);
        let bytes = export::to_bytes(format, &data.input()).map_err(|e| from_core(&e))?;
        Ok(Buffer::from(bytes))
    }
}

/// Turns one image (a path or its bytes) into a mesh on a worker thread. Rejects with the
/// core's code (`ERR_IMAGE_DECODE`, `ERR_UNSUPPORTED_FORMAT`, `ERR_IO`, `ERR_INVALID_INPUT`, ...).
#[napi(
    ts_args_type = "input: string | Uint8Array, options?: MeshOptions",
    ts_return_type = "Promise<Mesh>"
)]
pub fn image_to_mesh<'env>(
    env: &'env Env,
    input: Unknown<'env>,
    options: Option<Unknown<'env>>,
) -> napi::Result<Object<'env>> {
    match start(env, &input, options.as_ref()) {
        Ok(promise) => Ok(promise),
        Err(e) => promise::rejected::<Mesh>(env, e),
    }
}

fn start<'env>(
    env: &'env Env,
    input: &Unknown<'env>,
    options: Option<&Unknown<'env>>,
) -> CodedResult<Object<'env>> {
    let request = SingleImage::parse(env, input, options)?;
    let work = |r: &SingleImage| {
        let setup = r.shape_setup()?;
        image_to_model(
            &r.source,
            &r.settings,
            setup,
            &r.limits,
            &r.cancel,
            &mut |_, _| {},
        )
        .map_err(|e| from_core(&e))
    };
    request.spawn(env, "orfeas-node-mesh", work, |_env, model| {
        Ok(Mesh {
            model: Arc::new(model),
        })
    })
}

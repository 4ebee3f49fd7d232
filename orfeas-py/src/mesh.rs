//! `orfeas.Mesh` and `orfeas.image_to_mesh`: one image to an in-memory model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use orfeas_core::export;
use orfeas_core::{
    image_to_model, Device, ImageLimits, JobId, MeshFormat, Model, OrfeasError, ProgressEvent,
    ShapeSetup, Stage,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use crate::cancel::{token_of, PyCancelToken};
use crate::errors::{invalid_input, IntoPyResult};
use crate::options::{parse, parse_method, ShapeArgs};
use crate::source::extract;
use crate::worker::run_on_worker;

/// An `(x, y, z)` tuple for Python.
type Point = (f32, f32, f32);

/// A generated model: a triangle mesh in millimetres (+z up, counter-clockwise outside); a
/// relief carries the working image as its texture and the estimator's height map, an object
/// its vertex colours and density field; both keep the foreground mask (`mask.png`, `mask.npy`).
///
/// `vertices`, `faces`, `uvs` and `colors` are read-only numpy arrays, copied from the Rust
/// mesh once on first access and then shared.
#[pyclass(module = "orfeas._orfeas", name = "Mesh", frozen)]
pub(crate) struct PyMesh {
    model: Arc<Model>,
    vertices: PyOnceLock<Py<PyArray2<f32>>>,
    faces: PyOnceLock<Py<PyArray2<u32>>>,
    uvs: PyOnceLock<Py<PyArray2<f32>>>,
    colors: PyOnceLock<Py<PyArray2<u8>>>,
}

impl PyMesh {
    fn new(model: Model) -> Self {
        Self {
            model: Arc::new(model),
            vertices: PyOnceLock::new(),
            faces: PyOnceLock::new(),
            uvs: PyOnceLock::new(),
            colors: PyOnceLock::new(),
        }
    }
}

/// A read-only `rows × N` numpy array from flat row-major data.
fn frozen_array<'py, T: numpy::Element>(
    py: Python<'py>,
    flat: Vec<T>,
    columns: usize,
) -> PyResult<Py<PyArray2<T>>> {
    let rows = flat.len() / columns.max(1);
    let array = PyArray1::from_vec(py, flat).reshape([rows, columns])?;
    array.getattr("flags")?.setattr("writeable", false)?;
    Ok(array.unbind())
}

#[pymethods]
impl PyMesh {
    /// Vertex positions, float32 `[N, 3]`, millimetres.
    #[getter]
    fn vertices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let array = self.vertices.get_or_try_init(py, || {
            frozen_array(py, self.model.mesh.positions.as_flattened().to_vec(), 3)
        })?;
        Ok(array.bind(py).clone())
    }

    /// Triangles as vertex indices, uint32 `[M, 3]`.
    #[getter]
    fn faces<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let array = self.faces.get_or_try_init(py, || {
            frozen_array(py, self.model.mesh.triangles.as_flattened().to_vec(), 3)
        })?;
        Ok(array.bind(py).clone())
    }

    /// Texture coordinates, float32 `[N, 2]` (origin top-left, as in glTF).
    #[getter]
    fn uvs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let array = self.uvs.get_or_try_init(py, || {
            frozen_array(py, self.model.mesh.uvs.as_flattened().to_vec(), 2)
        })?;
        Ok(array.bind(py).clone())
    }

    /// Vertex colours sampled from the image, uint8 `[N, 3]`.
    #[getter]
    fn colors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let array = self.colors.get_or_try_init(py, || {
            frozen_array(py, self.model.mesh.colors.as_flattened().to_vec(), 3)
        })?;
        Ok(array.bind(py).clone())
    }

    /// Number of triangles.
    #[getter]
    fn triangle_count(&self) -> usize {
        self.model.mesh.triangles.len()
    }

    /// Closed, consistently wound, positive volume (always `False` for a surface).
    #[getter]
    fn watertight(&self) -> bool {
        self.model.report.watertight
    }

    /// The estimator that ran (`relief`, `inflate`, `depth-anything`, or `triposr` for an
    /// object; never `auto`).
    #[getter]
    fn depth(&self) -> &'static str {
        self.model.report.depth
    }

    /// How the shape was made (`relief`, `inflate`, `depth-anything` or `triposr`).
    #[getter]
    fn method(&self) -> &'static str {
        self.model.report.method
    }

    /// The marching-cubes grid of an object; `None` for a relief.
    #[getter]
    fn resolution(&self) -> Option<usize> {
        self.model.report.object().map(|o| o.resolution)
    }

    /// What the user should know about this model (e.g. an object cut off by the frame).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.model.report.warnings.clone()
    }

    /// Where the foreground mask came from (`alpha`, `border`, `birefnet` or `none`).
    #[getter]
    fn mask(&self) -> String {
        serde_json::to_value(self.model.report.mask)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The meshing tolerance met, as a fraction of the relief height; `None` for an object.
    #[getter]
    fn max_error(&self) -> Option<f32> {
        self.model.report.relief().map(|r| r.max_error)
    }

    /// `(min, max)` corners of the axis-aligned bounding box, millimetres.
    #[getter]
    fn bounds(&self) -> Option<(Point, Point)> {
        self.model
            .mesh
            .bounds()
            .map(|(lo, hi)| ((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])))
    }

    /// The file in `format` (`stl`, `stl-ascii`, `obj`, `glb`, `ply`, `3mf`, `depth16`,
    /// `depth.npy` for a relief, `field.npy` for an object, `mask.png` / `mask.npy` for either)
    /// as bytes. OBJ gives the `.obj` part only (use `save` for `.mtl` + texture).
    #[pyo3(signature = (format="stl"))]
    fn to_bytes<'py>(&self, py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyBytes>> {
        let format: MeshFormat = parse(format)?;
        let model = Arc::clone(&self.model);
        let bytes = py
            .detach(move || export::to_bytes(format, &model.export_data(&[format]).input()))
            .py_err()?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Writes the model to `path`, in `format` or the one its extension names (`x.glb`,
    /// `x.depth16.png`, ...). Returns every written path (OBJ adds `.mtl` and `.png`). Files
    /// appear atomically; an existing file is an `IoError` unless `overwrite=True`.
    #[pyo3(signature = (path, format=None, overwrite=false))]
    fn save(
        &self,
        py: Python<'_>,
        path: PathBuf,
        format: Option<&str>,
        overwrite: bool,
    ) -> PyResult<Vec<String>> {
        let (dir, stem, format) = split_target(&path, format)?;
        let model = Arc::clone(&self.model);
        let written = py
            .detach(move || {
                let data = model.export_data(&[format]);
                let input = data.input();
                if overwrite {
                    for name in export::output_names(format, &input, &stem) {
                        match std::fs::remove_file(dir.join(&name)) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                                return Err(OrfeasError::io(dir.join(name), e))
                            }
                            _ => {}
                        }
                    }
                }
                export::save(format, &input, &dir, &stem)
            })
            .py_err()?;
        Ok(written
            .into_iter()
            .map(|f| f.path.display().to_string())
            .collect())
    }

    fn __len__(&self) -> usize {
        self.model.mesh.triangles.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Mesh(vertices={}, faces={}, watertight={}, method={:?})",
            self.model.mesh.positions.len(),
            self.model.mesh.triangles.len(),
            if self.model.report.watertight {
                "True"
            } else {
                "False"
            },
            self.model.report.method
        )
    }
}

/// `dir/stem.ext` → (dir, stem, format), the format from `format` or else the extension.
fn split_target(path: &Path, format: Option<&str>) -> PyResult<(PathBuf, String, MeshFormat)> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| invalid_input(format!("{}: not a file path", path.display())))?;
    let format: MeshFormat = match format {
        Some(name) => parse(name)?,
        None => MeshFormat::ALL
            .into_iter()
            .filter(|f| {
                file_name
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", f.extension()))
            })
            .max_by_key(|f| f.extension().len())
            .ok_or_else(|| {
                invalid_input(format!(
                    "{file_name}: cannot tell the format from the extension; pass format="
                ))
            })?,
    };
    let suffix = format!(".{}", format.extension());
    let stem = file_name
        .strip_suffix(&suffix)
        .or_else(|| {
            (file_name.len() > suffix.len() && file_name.to_ascii_lowercase().ends_with(&suffix))
                .then(|| &file_name[..file_name.len() - suffix.len()])
        })
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            invalid_input(format!(
                "{file_name}: a {} file must be named <name>{suffix}",
                format.as_str()
            ))
        })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok((dir, stem.to_owned(), format))
}

/// Turns one image (path, bytes, numpy array) into a `Mesh` without writing files. The GIL is
/// released while it runs; Ctrl-C or `cancel` stops it (`CancelledError` / `KeyboardInterrupt`).
#[pyfunction]
#[pyo3(signature = (image, quality="medium", depth=None, weights=None, device="auto", width_mm=100.0, depth_mm=20.0, base_mm=2.0, solid=true, max_error=None, max_triangles=None, on_progress=None, cancel=None, method=None, resolution=None, keep_largest=false, background="auto", segmenter_weights=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn image_to_mesh(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    quality: &str,
    depth: Option<&str>,
    weights: Option<PathBuf>,
    device: &str,
    width_mm: f32,
    depth_mm: f32,
    base_mm: f32,
    solid: bool,
    max_error: Option<f32>,
    max_triangles: Option<usize>,
    on_progress: Option<Bound<'_, PyAny>>,
    cancel: Option<PyRef<'_, PyCancelToken>>,
    method: Option<&str>,
    resolution: Option<usize>,
    keep_largest: bool,
    background: &str,
    segmenter_weights: Option<PathBuf>,
) -> PyResult<PyMesh> {
    let shape = ShapeArgs {
        quality: quality.to_owned(),
        width_mm,
        depth_mm,
        base_mm,
        solid,
        max_error,
        max_triangles,
        resolution,
        keep_largest,
        background: background.to_owned(),
    };
    let method = parse_method(method, depth)?;
    // The model keeps its mask (and an object its density field), so that `to_bytes("mask.png")`
    // (and `to_bytes("field.npy")`) work on the Mesh.
    let mut formats = vec![MeshFormat::Stl, MeshFormat::MaskPng, MeshFormat::MaskNpy];
    if method.is_object() {
        formats.push(MeshFormat::FieldNpy);
    }
    let mut settings = shape.settings(formats)?;
    settings.method = Some(method);
    settings.validate().py_err()?;
    let device: Device = parse(device)?;
    let source = extract(&image, 0)?;
    let token = token_of(cancel.as_deref());
    let worker_token = token.clone();
    let model = run_on_worker(py, &token, on_progress.as_ref(), move |sink| {
        let source = source.into_source()?;
        // The device is opened (and the weights loaded) on the worker: both can take seconds.
        // BiRefNet is loaded as `background` needs it: `birefnet` without weights fails here,
        // before the image is read.
        let device = device.resolve()?;
        let setup = ShapeSetup::resolve_on(method, weights.as_deref(), false, device, 1)?
            .with_segmenter(settings.background, segmenter_weights.as_deref(), device)?;
        let input = source.name();
        let mut on_stage = |stage: Stage, progress: f32| {
            sink.emit(&ProgressEvent::GenerationProgress {
                job_id: JobId::from("mesh"),
                batch_id: String::new(),
                input: input.clone(),
                progress,
                stage,
            });
        };
        image_to_model(
            &source,
            &settings,
            &setup,
            &ImageLimits::default(),
            &worker_token,
            &mut on_stage,
        )
    })?
    .py_err()?;
    Ok(PyMesh::new(model))
}

/// Every output format name, in the order they are listed to users.
#[pyfunction]
pub(crate) fn formats() -> Vec<&'static str> {
    MeshFormat::ALL.iter().map(|f| f.as_str()).collect()
}

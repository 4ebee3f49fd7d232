//! The object path (`triposr`): the image's foreground → run.py's conditioning image →
//! TripoSR's triplanes → the dense density field on the reference grid → a closed
//! marching-cubes surface at the reference's iso level → colours from the decoder at the
//! vertices → the print frame and size.
//!
//! Frames: TripoSR's own is z up with the conditioning camera on +x looking at −x and the
//! image's right on +y. Print meshes are +Z up in millimetres facing −Y (as a relief faces the
//! viewer), so `(x, y, z)_print = (y, −x, z)_native`, a rotation (determinant +1: winding and
//! outward normals are kept), then scaled so that the largest extent is `width_mm`, centred on
//! x = y = 0 and standing on z = 0. The GLB writer's (x, z, −y) then gives glTF's Y-up object
//! facing +Z, towards a default viewer.

use std::sync::Arc;
use std::time::Instant;

use super::{Progress, ShapeGenerator};
use crate::cancel::CancelToken;
use crate::depth::screen_non_finite;
use crate::error::{OrfeasError, Result};
use crate::export::MeshFormat;
use crate::foreground::{self, Background, Foreground, MaskingSetup};
use crate::image::LoadedImage;
use crate::mask::MaskSource;
use crate::mesh::{check_solid, keep_largest_component, marching_cubes, Mesh};
use crate::models::triposr::{
    conditioning_image, DensityGrid, SceneCode, TripoSr, FOREGROUND_RATIO, ISO_LEVEL,
};
use crate::options::GenerateSettings;
use crate::pipeline::{Model, ModelReport, ObjectReport, ShapeReport};
use crate::progress::Stage;

/// The documented warning for a foreground that reaches the frame (results, docs).
pub const BORDER_WARNING: &str = "foreground touches the image border: the object may be cut off";

/// How far through `meshing` each part ends: the field is nearly all of it.
const FIELD_END: f32 = 0.85;
const SURFACE_END: f32 = 0.9;

/// Vertices coloured per decoder call: bounded memory, and a cancel check between calls.
const COLOR_CHUNK: usize = 1 << 15;

/// TripoSR, shared by every slot (one copy of the weights).
#[derive(Clone, Debug)]
pub struct ObjectGenerator {
    model: Arc<TripoSr>,
    masking: MaskingSetup,
}

impl ObjectGenerator {
    pub fn new(model: Arc<TripoSr>, masking: &MaskingSetup) -> Self {
        Self {
            model,
            masking: masking.clone(),
        }
    }
}

impl ShapeGenerator for ObjectGenerator {
    fn name(&self) -> &'static str {
        "triposr"
    }

    fn generate(
        &self,
        image: LoadedImage,
        settings: &GenerateSettings,
        cancel: &CancelToken,
        progress: &mut Progress<'_>,
    ) -> Result<Model> {
        let name = image.name.clone();
        let (width, height) = (image.width, image.height);

        progress.stage(Stage::Masking);
        let fg = subject(&image, settings.background, &self.masking, cancel)?;
        let mask = fg.source;
        let mut warnings = Vec::new();
        if touches_border(&fg.alpha, width as usize, height as usize) {
            warnings.push(BORDER_WARNING.to_owned());
        }
        cancel.check()?;
        let cond = conditioning_image(
            &image.rgba,
            width,
            height,
            &fg.alpha,
            FOREGROUND_RATIO,
            self.model.cond_image_size(),
        )
        .map_err(|e| named(e, &name))?;
        drop(image);
        let kept_mask = settings.formats.iter().any(|f| f.is_mask()).then_some(fg);
        tracing::info!(input = %name, mask = ?mask, "generating an object");

        progress.stage(Stage::ShapeGeneration);
        let clock = Instant::now();
        let code = self.model.scene_code(&cond, cancel, &mut |f| {
            progress.within(Stage::ShapeGeneration, f)
        })?;

        let model_s = clock.elapsed().as_secs_f64();
        progress.stage(Stage::Meshing);
        let resolution = settings.effective_preset().resolution;
        let clock = Instant::now();
        let mut field = self
            .model
            .density_grid(&code, resolution, cancel, &mut |f| {
                progress.within(Stage::Meshing, f * FIELD_END)
            })?;
        warnings.extend(screen_field(&mut field, &name)?);
        let field_s = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let surface = self.surface(&field, settings.keep_largest, &name, cancel)?;
        let surface_s = clock.elapsed().as_secs_f64();
        progress.within(Stage::Meshing, SURFACE_END);
        let clock = Instant::now();
        let colors = self.colors(&code, &field, &surface, cancel, progress)?;
        // Where an object's time goes, for users tuning --resolution and for the benchmark.
        tracing::debug!(
            input = %name,
            model_s,
            field_s,
            surface_s,
            color_s = clock.elapsed().as_secs_f64(),
            resolution,
            "object stages"
        );
        let mesh = Mesh {
            positions: to_print_frame(&surface.positions, &field, settings.width_mm),
            triangles: surface.triangles,
            uvs: Vec::new(),
            colors,
        };
        let check = check_solid(&mesh);
        if !check.is_printable() {
            // Closed by construction: a failure here is a bug, not a property of the input.
            return Err(OrfeasError::Internal(format!(
                "{name}: the object's surface failed the printability check: {check:?}"
            )));
        }
        let report = ModelReport {
            method: self.name(),
            depth: self.name(),
            mask,
            triangles: mesh.triangles.len(),
            watertight: true,
            warnings,
            shape: ShapeReport::Object(ObjectReport {
                resolution,
                components: check.components,
            }),
        };
        let keep_field = settings.formats.contains(&MeshFormat::FieldNpy);
        Ok(Model {
            mesh,
            texture: None,
            depth: None,
            raw_depth: None,
            field: keep_field.then_some(field),
            mask: kept_mask,
            original_width: width,
            original_height: height,
            report,
        })
    }
}

impl ObjectGenerator {
    /// The closed surface `density = ISO_LEVEL` of the field padded with zeros (outside), in
    /// grid-index units; optionally only its largest part.
    fn surface(
        &self,
        field: &DensityGrid,
        keep_largest: bool,
        name: &str,
        cancel: &CancelToken,
    ) -> Result<Mesh> {
        let r = field.resolution;
        let surface = marching_cubes(&field.values, [r, r, r], ISO_LEVEL, 0.0, cancel)
            .map_err(|e| named(e, name))?;
        if surface.triangles.is_empty() {
            let peak = field
                .values
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            return Err(OrfeasError::Meshing {
                name: name.to_owned(),
                detail: format!(
                    "the model found no surface: its density never reaches {ISO_LEVEL} on the \
                     {r}³ grid (highest {peak}); try a photo with a clearer object"
                ),
            });
        }
        Ok(if keep_largest {
            keep_largest_component(&surface)
        } else {
            surface
        })
    }

    /// The decoder's colour at every vertex (in TripoSR's frame), in chunks.
    fn colors(
        &self,
        code: &SceneCode,
        field: &DensityGrid,
        surface: &Mesh,
        cancel: &CancelToken,
        progress: &mut Progress<'_>,
    ) -> Result<Vec<[u8; 3]>> {
        let total = surface.positions.len().max(1) as f32;
        let mut colors = Vec::with_capacity(surface.positions.len());
        for chunk in surface.positions.chunks(COLOR_CHUNK) {
            cancel.check()?;
            let points: Vec<[f32; 3]> = chunk
                .iter()
                .map(|p| p.map(|c| field.coordinate(c)))
                .collect();
            colors.extend(
                self.model
                    .color(code, &points)?
                    .into_iter()
                    .map(|rgb| rgb.map(to_u8)),
            );
            let done = colors.len() as f32 / total;
            progress.within(Stage::Meshing, SURFACE_END + (1.0 - SURFACE_END) * done);
        }
        Ok(colors)
    }
}

/// The field's non-finite values, by the depth maps' rule (`depth::finite`): more than
/// `MAX_NON_FINITE_SHARE` of the `R³` points is `ERR_DEPTH`; fewer become zero density (empty
/// space: at worst a pin-prick cavity) and a warning.
fn screen_field(field: &mut DensityGrid, name: &str) -> Result<Option<String>> {
    screen_non_finite(
        &mut field.values,
        None,
        name,
        "values of the model's density field",
        "set to zero density (empty space)",
        |_| 0.0,
    )
}

/// The foreground as one alpha byte per pixel and where it came from (the masking stage,
/// `--background`). `none` gives the whole frame, as asked; any other source that separates
/// nothing is ERR_NO_FOREGROUND: TripoSR would model the backdrop as the object.
fn subject(
    image: &LoadedImage,
    background: Background,
    masking: &MaskingSetup,
    cancel: &CancelToken,
) -> Result<Foreground> {
    let fg = foreground::separate(image, background, masking, cancel)?;
    if fg.source != MaskSource::None || background == Background::None {
        return Ok(fg);
    }
    let detail = match fg.missing {
        Some(why) => format!(
            "{why}; an object needs its subject cut out (a PNG with a transparent background, \
             or --background birefnet)"
        ),
        None => "the image has no transparency and its background could not be told apart \
                 from the object (no plain backdrop at the border, and BiRefNet is not loaded); \
                 cut the object out (a PNG with a transparent background), or get the \
                 background remover with `orfeas fetch-model --model birefnet-lite`"
            .to_owned(),
    };
    Err(OrfeasError::NoForeground {
        name: image.name.clone(),
        detail,
    })
}

/// Whether any foreground pixel (alpha > 0, the reference's test) lies on the image's edge.
fn touches_border(alpha: &[u8], width: usize, height: usize) -> bool {
    if width == 0 || height == 0 || alpha.len() != width * height {
        return false;
    }
    let row = |y: usize| alpha[y * width..(y + 1) * width].iter().any(|&a| a > 0);
    let column = |x: usize| (0..height).any(|y| alpha[y * width + x] > 0);
    row(0) || row(height - 1) || column(0) || column(width - 1)
}

/// Grid-index positions → TripoSR's frame → the print frame, scaled and placed.
fn to_print_frame(positions: &[[f32; 3]], field: &DensityGrid, width_mm: f32) -> Vec<[f32; 3]> {
    let print: Vec<[f32; 3]> = positions
        .iter()
        .map(|p| {
            let [x, y, z] = p.map(|c| field.coordinate(c));
            [y, -x, z]
        })
        .collect();
    let Some((lo, hi)) = bounds(&print) else {
        return print;
    };
    let extent = (0..3).map(|k| hi[k] - lo[k]).fold(0.0f32, f32::max);
    let scale = if extent > 0.0 { width_mm / extent } else { 1.0 };
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    print
        .into_iter()
        .map(|[x, y, z]| {
            [
                (x - centre[0]) * scale,
                (y - centre[1]) * scale,
                (z - lo[2]) * scale,
            ]
        })
        .collect()
}

fn bounds(points: &[[f32; 3]]) -> Option<([f32; 3], [f32; 3])> {
    let first = *points.first()?;
    Some(points.iter().fold((first, first), |(mut lo, mut hi), p| {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
        (lo, hi)
    }))
}

/// A colour channel in [0, 1] as a byte (rounded; out-of-range values clamped).
fn to_u8(c: f32) -> u8 {
    (c * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Errors of the model's helpers name `image`; the job knows the file.
fn named(e: OrfeasError, name: &str) -> OrfeasError {
    match e {
        OrfeasError::NoForeground { detail, .. } => OrfeasError::NoForeground {
            name: name.to_owned(),
            detail,
        },
        OrfeasError::Meshing { detail, .. } => OrfeasError::Meshing {
            name: name.to_owned(),
            detail,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(resolution: usize) -> DensityGrid {
        DensityGrid {
            resolution,
            radius: 0.87,
            values: vec![0.0; resolution.pow(3)],
        }
    }

    #[test]
    fn the_print_frame_turns_the_camera_axis_into_depth_and_sizes_the_largest_side() {
        let field = grid(11);
        // Index 0 and 10 are ∓radius; a box 2 deep (x), 4 wide (y), 8 tall (z) in index units.
        let positions = [[4.0, 3.0, 1.0], [6.0, 7.0, 9.0]];
        let print = to_print_frame(&positions, &field, 100.0);
        let (lo, hi) = bounds(&print).expect("points");
        let size: Vec<f32> = (0..3).map(|k| hi[k] - lo[k]).collect();
        // Image right (+y) becomes print x, the camera axis (x) print depth, up stays up.
        assert!((size[0] - 50.0).abs() < 1e-3, "{size:?}");
        assert!((size[1] - 25.0).abs() < 1e-3, "{size:?}");
        assert!((size[2] - 100.0).abs() < 1e-3, "{size:?}");
        assert!(lo[2].abs() < 1e-6 && (lo[0] + hi[0]).abs() < 1e-3 && (lo[1] + hi[1]).abs() < 1e-3);
        // The camera side (+x native, towards the viewer) ends up at −y: the front faces −Y.
        assert!(print[1][1] < print[0][1]);
    }

    #[test]
    fn border_contact_is_any_visible_pixel_on_the_edge() {
        let mut alpha = vec![0u8; 5 * 4];
        alpha[5 + 2] = 255;
        assert!(!touches_border(&alpha, 5, 4));
        alpha[3 * 5 + 1] = 1;
        assert!(touches_border(&alpha, 5, 4));
        let mut side = vec![0u8; 5 * 4];
        side[2 * 5 + 4] = 9;
        assert!(touches_border(&side, 5, 4));
    }

    #[test]
    fn a_few_bad_field_values_are_emptied_and_many_fail_with_err_depth() {
        let mut field = grid(10);
        field.values[17] = f32::NAN;
        field.values[400] = f32::INFINITY;
        let warning = screen_field(&mut field, "cup.png")
            .expect("2 of 1000 is tolerated")
            .expect("a warning");
        assert!(warning.starts_with("2 of 1000 values"), "{warning}");
        assert!(field.values.iter().all(|&v| v == 0.0));
        let mut broken = grid(10);
        broken.values[..500].fill(f32::NAN);
        let e = screen_field(&mut broken, "cup.png").expect_err("half the field");
        assert_eq!(e.code(), "ERR_DEPTH");
        assert!(e.to_string().starts_with("cup.png: "), "{e}");
    }

    #[test]
    fn colours_round_and_clamp() {
        assert_eq!([0.0, 0.5, 1.0, -0.2, 1.3].map(to_u8), [0, 128, 255, 0, 255]);
    }
}

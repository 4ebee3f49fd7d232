//! Full 3D objects (`triposr`) through the batch processor, on the tiny random TripoSR of
//! `tests/fixtures/triposr`: every format written and read back by independent readers, the
//! field as the model computes it, sizing, masks and warnings, bad inputs, bad weights, a job
//! failing or being cancelled in the middle of a batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use orfeas_core::mesh::{check_solid, Mesh};
use orfeas_core::models::triposr::{conditioning_image, TripoSr, FOREGROUND_RATIO};
use orfeas_core::models::triposr_weights_at;
use orfeas_core::progress::FnProgress;
use orfeas_core::{
    BatchConfig, BatchProcessor, CancelToken, Device, GenerateSettings, ImageSource, Job,
    JobResult, JobStatus, MeshFormat, Method, ProgressEvent, Stage,
};

/// A small grid keeps the tests fast; the path is the same at 256.
const R: usize = 32;
const BORDER_WARNING: &str = "foreground touches the image border: the object may be cut off";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triposr")
}

fn tiny() -> PathBuf {
    fixture().join("tiny")
}

fn processor(slots: usize) -> BatchProcessor {
    BatchProcessor::new(BatchConfig {
        slots,
        method: Method::TripoSr,
        weights: Some(tiny()),
        device: Device::Cpu,
        threads: Some(2),
        ..BatchConfig::default()
    })
    .expect("processor with the tiny TripoSR")
}

fn settings(formats: &[MeshFormat]) -> GenerateSettings {
    GenerateSettings {
        formats: formats.to_vec(),
        resolution: Some(R),
        width_mm: 80.0,
        ..GenerateSettings::default()
    }
}

type Recorded = Arc<Mutex<Vec<ProgressEvent>>>;

fn recorder() -> (
    Recorded,
    Arc<FnProgress<impl Fn(&ProgressEvent) + Send + Sync>>,
) {
    let events: Recorded = Arc::default();
    let sink = Arc::clone(&events);
    (
        events,
        Arc::new(FnProgress(move |e: &ProgressEvent| {
            sink.lock().expect("events").push(e.clone())
        })),
    )
}

fn run(
    proc: &BatchProcessor,
    inputs: &[PathBuf],
    out: &Path,
    s: &GenerateSettings,
) -> Vec<JobResult> {
    let jobs = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| Job::new(format!("j{i}"), ImageSource::Path(p.clone()), out))
        .collect();
    proc.run(
        jobs,
        s,
        Arc::new(orfeas_core::NoProgress),
        &CancelToken::new(),
    )
    .expect("batch")
}

fn png(path: &Path, image: image::DynamicImage) -> PathBuf {
    image.save(path).expect("write png");
    path.to_path_buf()
}

/// An opaque product shot: a coloured disc on a plain white backdrop (no alpha).
fn disc_on_white(dir: &Path) -> PathBuf {
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as f32 - 32.0, y as f32 - 30.0);
        if dx * dx + dy * dy < 20.0f32.powi(2) {
            image::Rgb([200, (x * 3) as u8, 60 + y as u8])
        } else {
            image::Rgb([250, 250, 250])
        }
    });
    png(&dir.join("disc.png"), image::DynamicImage::ImageRgb8(img))
}

fn output(result: &JobResult, format: &str) -> PathBuf {
    result
        .outputs
        .iter()
        .find(|o| o.format == format)
        .unwrap_or_else(|| panic!("no {format} in {:?}", result.outputs))
        .path
        .clone()
}

fn stl_mesh(path: &Path) -> Mesh {
    let mut file = std::fs::File::open(path).expect("open stl");
    let stl = stl_io::read_stl(&mut file).expect("stl_io reads it");
    Mesh {
        positions: stl.vertices.iter().map(|v| [v[0], v[1], v[2]]).collect(),
        triangles: stl
            .faces
            .iter()
            .map(|f| f.vertices.map(|i| i as u32))
            .collect(),
        ..Mesh::default()
    }
}

fn read_npy_f32(path: &Path) -> (String, Vec<f32>) {
    let bytes = std::fs::read(path).expect("read npy");
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]).into_owned();
    let values = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (header, values)
}

/// The field the model itself computes for `input.png` (its real alpha as the mask).
fn reference_field(resolution: usize) -> Vec<f32> {
    let model =
        TripoSr::load(&triposr_weights_at(&tiny()).expect("tiny"), Device::Cpu).expect("load tiny");
    let img = image::open(fixture().join("input.png"))
        .expect("fixture")
        .to_rgba8();
    let (w, h) = img.dimensions();
    let rgba = img.into_raw();
    let alpha: Vec<u8> = rgba.chunks_exact(4).map(|p| p[3]).collect();
    let cond = conditioning_image(
        &rgba,
        w,
        h,
        &alpha,
        FOREGROUND_RATIO,
        model.cond_image_size(),
    )
    .expect("cond");
    let cancel = CancelToken::new();
    let code = model.scene_code(&cond, &cancel, &mut |_| {}).expect("code");
    model
        .density_grid(&code, resolution, &cancel, &mut |_| {})
        .expect("field")
        .values
}

#[test]
fn an_object_batch_writes_every_format_closed_coloured_and_sized() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let inputs = [fixture().join("input.png"), disc_on_white(dir.path())];
    let formats = [
        MeshFormat::Stl,
        MeshFormat::Obj,
        MeshFormat::Glb,
        MeshFormat::Ply,
        MeshFormat::ThreeMf,
        MeshFormat::FieldNpy,
    ];
    let proc = processor(2);
    assert!(proc.available_methods().contains(&Method::TripoSr));
    let (events, sink) = recorder();
    let jobs = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| Job::new(format!("j{i}"), ImageSource::Path(p.clone()), &out))
        .collect();
    let results = proc
        .run(jobs, &settings(&formats), sink, &CancelToken::new())
        .expect("batch");
    for r in &results {
        assert_eq!(r.status, JobStatus::Complete, "{r:?}");
        assert_eq!((r.method, r.depth), (Some("triposr"), Some("triposr")));
        assert_eq!(r.resolution, Some(R));
        assert!(r.watertight && r.triangles > 0, "{r:?}");
        assert_eq!(r.warnings, Vec::<String>::new(), "{r:?}");
        let names: Vec<&str> = r.outputs.iter().map(|o| o.format.as_str()).collect();
        assert_eq!(
            names,
            ["stl", "obj", "glb", "ply", "3mf", "field.npy"],
            "no texture files"
        );
    }
    assert_eq!(results[0].mask, Some(orfeas_core::MaskSource::Alpha));
    assert_eq!(
        results[1].mask,
        Some(orfeas_core::MaskSource::Border),
        "an opaque image on a plain backdrop uses the estimated mask"
    );

    let first = &results[0];
    // STL: read back by stl_io, closed and outward (the checker on what was written).
    let stl = stl_mesh(&output(first, "stl"));
    assert_eq!(stl.triangles.len(), first.triangles);
    let check = check_solid(&stl);
    assert!(check.is_printable(), "{check:?}");
    // Sizing: largest extent = width_mm, standing on z = 0, centred on x = y = 0.
    let (lo, hi) = stl.bounds().expect("bounds");
    let extent: Vec<f32> = (0..3).map(|k| hi[k] - lo[k]).collect();
    let largest = extent.iter().copied().fold(0.0, f32::max);
    assert!((largest - 80.0).abs() < 1e-3, "{extent:?}");
    assert!(lo[2].abs() < 1e-4, "min z {}", lo[2]);
    assert!((lo[0] + hi[0]).abs() < 1e-3 && (lo[1] + hi[1]).abs() < 1e-3);

    // GLB: COLOR_0 on the one primitive, no texture.
    let (doc, buffers, images) = gltf::import(output(first, "glb")).expect("gltf imports it");
    assert!(images.is_empty());
    let prim = doc
        .meshes()
        .next()
        .and_then(|m| m.primitives().next())
        .expect("primitive");
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    let colors: Vec<[u8; 3]> = reader
        .read_colors(0)
        .expect("COLOR_0")
        .into_rgb_u8()
        .collect();
    assert!(!colors.is_empty());
    assert!(
        colors.iter().collect::<HashSet<_>>().len() > 1,
        "colours vary over the object"
    );
    assert!(prim
        .material()
        .pbr_metallic_roughness()
        .base_color_texture()
        .is_none());

    // OBJ: `v x y z r g b` for every vertex, no material.
    let (models, materials) =
        tobj::load_obj(output(first, "obj"), &tobj::LoadOptions::default()).expect("tobj");
    assert!(materials.map(|m| m.is_empty()).unwrap_or(true));
    let m = &models[0].mesh;
    assert_eq!(m.vertex_color.len(), m.positions.len());
    assert!(m.vertex_color.iter().all(|c| (0.0..=1.0).contains(c)));
    assert_eq!(m.indices.len(), first.triangles * 3);

    // PLY: colours in the header.
    let ply = std::fs::read(output(first, "ply")).expect("ply");
    let header = String::from_utf8_lossy(&ply[..ply.len().min(400)]).into_owned();
    assert!(header.contains("property uchar red"), "{header}");

    // field.npy: [R, R, R] float32, exactly the model's dense field.
    let (header, values) = read_npy_f32(&output(first, "field.npy"));
    assert!(
        header.contains(&format!("'shape': ({R}, {R}, {R})")),
        "{header}"
    );
    assert_eq!(values, reference_field(R));

    // Progress: the object stages in order, with real in-stage steps.
    let events = events.lock().expect("events");
    let mine: Vec<(Stage, f32)> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::GenerationProgress {
                job_id,
                stage,
                progress,
                ..
            } if job_id.0 == "j0" => Some((*stage, *progress)),
            _ => None,
        })
        .collect();
    let mut stages: Vec<Stage> = mine.iter().map(|&(s, _)| s).collect();
    stages.dedup();
    assert_eq!(
        stages,
        [
            Stage::Queued,
            Stage::Loading,
            Stage::Masking,
            Stage::ShapeGeneration,
            Stage::Meshing,
            Stage::Exporting
        ]
    );
    let count = |stage| mine.iter().filter(|&&(s, _)| s == stage).count();
    assert!(count(Stage::ShapeGeneration) >= 3, "per layer: {mine:?}");
    assert!(count(Stage::Meshing) >= 3, "per field chunk: {mine:?}");
    assert!(mine.windows(2).all(|w| w[0].1 <= w[1].1), "{mine:?}");
    let complete = events
        .iter()
        .find_map(|e| match e {
            ProgressEvent::GenerationComplete {
                job_id,
                method,
                mask,
                ..
            } if job_id.0 == "j0" => Some((method.clone(), *mask)),
            _ => None,
        })
        .expect("complete event");
    assert_eq!(
        complete,
        ("triposr".to_owned(), Some(orfeas_core::MaskSource::Alpha))
    );
}

#[test]
fn keep_largest_leaves_one_part_and_the_default_keeps_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = [fixture().join("input.png")];
    let proc = processor(1);
    let all = run(
        &proc,
        &input,
        &dir.path().join("all"),
        &settings(&[MeshFormat::Stl]),
    );
    let one = run(
        &proc,
        &input,
        &dir.path().join("one"),
        &GenerateSettings {
            keep_largest: true,
            ..settings(&[MeshFormat::Stl])
        },
    );
    let parts = |r: &JobResult| check_solid(&stl_mesh(&output(r, "stl"))).components;
    assert_eq!(parts(&one[0]), 1);
    assert!(parts(&all[0]) >= 1);
    assert!(one[0].triangles <= all[0].triangles);
    assert!(check_solid(&stl_mesh(&output(&one[0], "stl"))).is_printable());
}

#[test]
fn bad_inputs_fail_alone_with_their_own_error_and_the_border_case_warns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one_pixel = png(
        &dir.path().join("pixel.png"),
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]))),
    );
    let transparent = png(
        &dir.path().join("clear.png"),
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            32,
            24,
            image::Rgba([120, 30, 40, 0]),
        )),
    );
    let busy = png(
        &dir.path().join("busy.png"),
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(48, 48, |x, y| {
            image::Rgb([
                (x * 37 % 256) as u8,
                (y * 53 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        })),
    );
    let not_an_image = dir.path().join("notes.png");
    std::fs::write(&not_an_image, b"plain text").expect("write");
    let inputs = [
        one_pixel,
        transparent,
        busy,
        not_an_image,
        fixture().join("input_border.png"),
        fixture().join("input.png"),
    ];
    let out = dir.path().join("out");
    let results = run(&processor(2), &inputs, &out, &settings(&[MeshFormat::Stl]));
    let codes: Vec<Option<&str>> = results.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            Some("ERR_NO_FOREGROUND"),
            Some("ERR_NO_FOREGROUND"),
            Some("ERR_NO_FOREGROUND"),
            Some("ERR_UNSUPPORTED_FORMAT"),
            None,
            None
        ],
        "{results:#?}"
    );
    for r in &results[..3] {
        let message = r.error.as_deref().unwrap_or("");
        assert!(
            message.contains(&r.input[r.input.rfind('/').map_or(0, |i| i + 1)..]),
            "{message}"
        );
        assert!(r.outputs.is_empty());
    }
    assert!(results[1]
        .error
        .as_deref()
        .is_some_and(|m| m.contains("transparent")));
    assert_eq!(results[4].warnings, [BORDER_WARNING]);
    assert!(results[5].warnings.is_empty());
    // Only the two finished jobs wrote files.
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    written.sort();
    assert_eq!(written, ["input.stl", "input_border.stl"]);
}

#[test]
fn cancelling_in_the_middle_of_the_field_leaves_no_files_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let proc = processor(1);
    let victim = CancelToken::new();
    let trigger = victim.clone();
    let field_steps: Arc<Mutex<Vec<f32>>> = Arc::default();
    let steps = Arc::clone(&field_steps);
    let sink = Arc::new(FnProgress(move |e: &ProgressEvent| {
        if let ProgressEvent::GenerationProgress {
            job_id,
            stage: Stage::Meshing,
            progress,
            ..
        } = e
        {
            if job_id.0 == "next" {
                steps.lock().expect("steps").push(*progress);
            }
        }
        // The first report from inside the field (past the stage's start): cancel there.
        if let ProgressEvent::GenerationProgress {
            job_id,
            stage: Stage::Meshing,
            progress,
            ..
        } = e
        {
            if job_id.0 == "victim" && *progress > 50.0 {
                trigger.cancel();
            }
        }
    }));
    let mut cancelled = Job::new(
        "victim",
        ImageSource::Path(fixture().join("input.png")),
        &out,
    );
    cancelled.cancel = Some(victim);
    let survivor = Job::new("next", ImageSource::Path(fixture().join("input.png")), &out);
    // A larger grid: many field chunks, so the cancel lands between two of them.
    let s = GenerateSettings {
        resolution: Some(96),
        ..settings(&[MeshFormat::Stl, MeshFormat::FieldNpy])
    };
    let results = proc
        .run(vec![cancelled, survivor], &s, sink, &CancelToken::new())
        .expect("batch");
    assert_eq!(results[0].status, JobStatus::Cancelled, "{:?}", results[0]);
    assert_eq!(results[0].code, Some("ERR_CANCELLED"));
    assert!(results[0].outputs.is_empty());
    assert_eq!(results[1].status, JobStatus::Complete, "{:?}", results[1]);
    // 96³ points are several chunks of the field: progress moved inside it, chunk by chunk.
    let steps = field_steps.lock().expect("steps");
    let inside_field = steps.iter().filter(|&&p| p > 50.0 && p < 90.0).count();
    assert!(inside_field >= 3, "meshing progress {steps:?}");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    written.sort();
    // The stems were assigned up front (input, input_1); only the survivor's files exist.
    assert_eq!(written, ["input_1.field.npy", "input_1.stl"]);
}

#[test]
fn weights_are_checked_once_before_any_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::copy(tiny().join("config.yaml"), broken.join("config.yaml")).expect("copy");
    copy_dir(&tiny().join("vit"), &broken.join("vit"));
    let ckpt = std::fs::read(tiny().join("model.ckpt")).expect("ckpt");
    std::fs::write(broken.join("model.ckpt"), &ckpt[..ckpt.len() / 2]).expect("truncated");
    let err = BatchProcessor::new(BatchConfig {
        method: Method::TripoSr,
        weights: Some(broken.clone()),
        device: Device::Cpu,
        ..BatchConfig::default()
    })
    .expect_err("a half-written checkpoint");
    assert_eq!(err.code(), "ERR_WEIGHTS_INVALID", "{err}");
    assert!(err.to_string().contains("model.ckpt"), "{err}");

    let err = BatchProcessor::new(BatchConfig {
        method: Method::TripoSr,
        weights: Some(dir.path().join("nothing-here")),
        ..BatchConfig::default()
    })
    .expect_err("no weights");
    assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
    assert!(
        err.to_string().contains("fetch-model --model triposr"),
        "{err}"
    );

    // A relief processor does not load TripoSR and says how to get it when an object is asked.
    let relief = BatchProcessor::new(BatchConfig {
        method: Method::Relief,
        ..BatchConfig::default()
    })
    .expect("relief");
    assert!(!relief.available_methods().contains(&Method::TripoSr));
    let err = relief
        .check_available(Method::TripoSr)
        .expect_err("no TripoSR");
    assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
    // And an object processor refuses the relief-only formats before any job runs.
    let err = processor(1)
        .run(
            vec![Job::new(
                "j",
                ImageSource::Path(fixture().join("input.png")),
                dir.path(),
            )],
            &settings(&[MeshFormat::Glb, MeshFormat::Depth16]),
            Arc::new(orfeas_core::NoProgress),
            &CancelToken::new(),
        )
        .expect_err("depth16 of an object");
    assert_eq!(err.code(), "ERR_INVALID_INPUT");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn the_relief_path_still_runs_beside_objects_in_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc = processor(2);
    let relief = GenerateSettings {
        method: Some(Method::Inflate),
        ..settings(&[MeshFormat::Stl, MeshFormat::DepthNpy])
    };
    let input = [disc_on_white(dir.path())];
    let r = run(&proc, &input, &dir.path().join("relief"), &relief);
    assert_eq!(r[0].status, JobStatus::Complete, "{:?}", r[0]);
    assert_eq!(r[0].method, Some("inflate"));
    assert_eq!(r[0].resolution, None);
    let o = run(
        &proc,
        &input,
        &dir.path().join("object"),
        &settings(&[MeshFormat::Stl]),
    );
    assert_eq!(o[0].method, Some("triposr"));
}

/// TripoSR whose density output is NaN everywhere (its last bias poisoned): the field is
/// screened like a depth map, and a field that is all NaN is ERR_DEPTH, with no files.
#[test]
fn a_density_field_of_nan_fails_with_err_depth_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let poisoned = dir.path().join("poisoned");
    std::fs::create_dir_all(&poisoned).expect("mkdir");
    std::fs::copy(tiny().join("config.yaml"), poisoned.join("config.yaml")).expect("copy");
    copy_dir(&tiny().join("vit"), &poisoned.join("vit"));
    let cpu = candle_core::Device::Cpu;
    let mut tensors =
        candle_core::safetensors::load(tiny().join("model.safetensors"), &cpu).expect("tensors");
    let bias = "decoder.layers.6.bias";
    let mut values: Vec<f32> = tensors[bias].to_vec1().expect("bias");
    values[0] = f32::NAN; // the density channel
    let n = values.len();
    tensors.insert(
        bias.to_owned(),
        candle_core::Tensor::from_vec(values, n, &cpu).expect("tensor"),
    );
    candle_core::safetensors::save(&tensors, poisoned.join("model.safetensors")).expect("save");
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        method: Method::TripoSr,
        weights: Some(poisoned),
        device: Device::Cpu,
        threads: Some(2),
        ..BatchConfig::default()
    })
    .expect("the weights load: NaN is a value, not a shape");
    let out = dir.path().join("out");
    let results = run(
        &proc,
        &[fixture().join("input.png")],
        &out,
        &settings(&[MeshFormat::Stl]),
    );
    assert_eq!(results[0].status, JobStatus::Error);
    assert_eq!(results[0].code, Some("ERR_DEPTH"), "{:?}", results[0].error);
    let error = results[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "{} of {} values of the model's density field",
            R * R * R,
            R * R * R
        )),
        "{error}"
    );
    assert!(std::fs::read_dir(&out).map_or(true, |mut d| d.next().is_none()));
}

//! The depth map itself: `estimate_depth` and `depth.npy` hold the estimator's raw output at the
//! input's original size — for Depth Anything the model's unnormalised prediction, resampled as
//! transformers' post-processing does it from the full-resolution input.

use std::path::PathBuf;

use orfeas_core::depth::depth_anything::DepthAnythingEstimator;
use orfeas_core::image::load_image;
use orfeas_core::pipeline::{estimate_depth, export_model, image_to_model};
use orfeas_core::{
    CancelToken, DepthMethod, DepthSetup, GenerateSettings, ImageLimits, ImageSource, MeshFormat,
    Quality,
};

fn tiny_weights() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything/tiny")
}

fn photo() -> ImageSource {
    // 451×300 real photo: larger than the low preset's working size (256), so the model's
    // full-resolution input and the mesher's working copy differ.
    ImageSource::Path(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything/photo.png"),
    )
}

fn settings(formats: Vec<MeshFormat>) -> GenerateSettings {
    GenerateSettings {
        quality: Quality::Low,
        formats,
        ..Default::default()
    }
}

/// Reads a float32 C-order `.npy` written by the exporter (header parsed, not assumed).
fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).expect("npy file");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("ascii header");
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, data)
}

#[test]
fn depth_anything_raw_map_is_the_models_prediction_at_the_original_size() {
    let setup = DepthSetup::resolve(DepthMethod::DepthAnything, Some(&tiny_weights()))
        .expect("tiny weights load");
    let cancel = CancelToken::new();
    let s = settings(vec![MeshFormat::Stl, MeshFormat::DepthNpy]);
    let map =
        estimate_depth(&photo(), &s, &setup, &ImageLimits::default(), &cancel).expect("estimate");
    assert_eq!(
        (map.width, map.height, map.depth),
        (451, 300, "depth-anything")
    );

    // The same prediction made by hand from the decoded full-size photo.
    let model = DepthAnythingEstimator::load_cpu(&tiny_weights())
        .expect("load")
        .with_target(s.effective_preset().model_size);
    let original = load_image(&photo(), &ImageLimits::default()).expect("photo");
    let direct = model
        .predict(&original, &cancel)
        .expect("predict")
        .at_size(451, 300)
        .expect("resample");
    assert_eq!(map.values, direct.values());
    // Raw means unnormalised: the relief's [0, 1] normalisation is not applied.
    let (lo, hi) = map
        .values
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(
        hi > lo && (lo < 0.0 || hi > 1.0),
        "range {lo}..{hi} looks normalised"
    );

    // depth.npy from a full generation holds exactly that map.
    let model = image_to_model(
        &photo(),
        &s,
        &setup,
        &ImageLimits::default(),
        &cancel,
        &mut |_, _| {},
    )
    .expect("model");
    assert_eq!(model.report.depth, "depth-anything");
    assert!(model.report.watertight);
    assert_eq!(model.report.method, "depth-anything");
    assert_eq!(model.report.relief().map(|r| r.working_width), Some(256));
    assert!(model.report.object().is_none() && model.field.is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let files = export_model(&model, &s.formats, dir.path(), "photo", &cancel).expect("export");
    let npy = files
        .iter()
        .find(|f| f.path.to_string_lossy().ends_with(".depth.npy"))
        .expect("npy written");
    let (shape, values) = read_npy(&npy.path);
    assert_eq!(shape, vec![300, 451]);
    assert_eq!(values, map.values);
}

#[test]
fn weight_free_raw_map_is_the_height_map_at_the_original_size() {
    let s = settings(vec![MeshFormat::DepthNpy]);
    let map = estimate_depth(
        &photo(),
        &s,
        DepthMethod::Relief,
        &ImageLimits::default(),
        &CancelToken::new(),
    )
    .expect("estimate");
    assert_eq!(
        (map.width, map.height, map.depth, map.values.len()),
        (451, 300, "relief", 451 * 300)
    );
    assert!(map.values.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        map.values.iter().any(|&v| v > 0.5) && map.values.iter().any(|&v| v < 0.5),
        "uses the range"
    );
}

#[test]
fn estimate_depth_reports_bad_input_and_cancellation() {
    let s = settings(vec![MeshFormat::DepthNpy]);
    let junk = ImageSource::Bytes {
        name: "junk.png".into(),
        bytes: b"not an image".to_vec().into(),
    };
    let err = estimate_depth(
        &junk,
        &s,
        DepthMethod::Relief,
        &ImageLimits::default(),
        &CancelToken::new(),
    )
    .expect_err("junk");
    assert_eq!(err.code(), "ERR_UNSUPPORTED_FORMAT");
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = estimate_depth(
        &photo(),
        &s,
        DepthMethod::Relief,
        &ImageLimits::default(),
        &cancel,
    )
    .expect_err("cancelled");
    assert_eq!(err.code(), "ERR_CANCELLED");
}

//! The model against the authors' code on the tiny fixture (`tests/fixtures/birefnet`).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};

use super::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/birefnet")
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
        .expect("reference.safetensors")
}

/// max |a − b| / max |b|.
fn relative_error(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims());
    let g: Vec<f32> = got.flatten_all().and_then(|t| t.to_vec1()).expect("got");
    let w: Vec<f32> = want.flatten_all().and_then(|t| t.to_vec1()).expect("want");
    let scale = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    g.iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / scale
}

fn model() -> BiRefNet {
    BiRefNet::load(&fixture().join("model.safetensors"), &Device::Cpu).expect("tiny model")
}

#[test]
fn the_backbone_matches_the_authors_swin() {
    let (m, r) = (model(), reference());
    assert_eq!(m.size(), BiRefNetSize::Other);
    assert_eq!(m.swin.config.window, 7);
    let x = &r["pixels"];
    let (_, _, h, w) = x.dims4().expect("dims");
    let half = resize_align_corners(x, h / 2, w / 2).expect("half");
    for (name, input) in [("swin_full", x), ("swin_half", &half)] {
        let outs = m.swin.forward(input).expect("swin");
        for (i, out) in outs.iter().enumerate() {
            let err = relative_error(out, &r[&format!("{name}.{i}")]);
            eprintln!("{name}.{i}: relative error {err:.2e}");
            assert!(err <= 1e-4, "{name}.{i}: {err}");
        }
    }
}

#[test]
fn the_encoder_and_the_logits_match_the_authors_code() {
    let (m, r) = (model(), reference());
    let cancel = CancelToken::new();
    let levels = m.encode(&r["pixels"], &cancel).expect("encode");
    for (i, level) in levels.iter().enumerate() {
        let err = relative_error(level, &r[&format!("encoder.{i}")]);
        eprintln!("encoder.{i}: relative error {err:.2e}");
        assert!(err <= 1e-4, "encoder.{i}: {err}");
    }
    let logits = m.forward(&r["pixels"], &cancel).expect("forward");
    let err = relative_error(&logits, &r["logits"]);
    eprintln!("logits: relative error {err:.2e}");
    assert!(err <= 1e-4, "logits: {err}");
    // The tensor-op path (CUDA, half precision) computes the same function.
    let generic = crate::kernels::with_kernels_disabled(|| m.forward(&r["pixels"], &cancel))
        .expect("generic");
    let err = relative_error(&generic, &r["logits"]);
    eprintln!("logits, generic path: relative error {err:.2e}");
    assert!(err <= 1e-4, "generic logits: {err}");
}

#[test]
fn a_checkpoint_missing_a_tensor_is_weights_invalid_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tensors =
        candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu)
            .expect("load");
    let gone = "decoder.decoder_block2.dec_att.aspp_deforms.1.atrous_conv.offset_conv.weight";
    assert!(tensors.remove(gone).is_some());
    let file = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &file).expect("save");
    let err = BiRefNet::load(&file, &Device::Cpu).expect_err("refused");
    assert_eq!(err.code(), "ERR_WEIGHTS_INVALID");
    let text = err.to_string();
    assert!(
        text.contains(gone) && text.contains("model.safetensors"),
        "{text}"
    );
    // Not a safetensors file at all.
    std::fs::write(&file, b"not a checkpoint").expect("write");
    let err = BiRefNet::load(&file, &Device::Cpu).expect_err("refused");
    assert_eq!(err.code(), "ERR_WEIGHTS_INVALID");
}

#[test]
fn one_deformable_aspp_matches_the_authors_code() {
    let w =
        weights::Weights::open(&fixture().join("model.safetensors"), &Device::Cpu).expect("open");
    let r = reference();
    let aspp = decoder::Aspp::load(&w, "decoder.decoder_block2.dec_att").expect("aspp");
    let x = &r["decoder.aspp_input"];
    let seven = &aspp.branches[3];
    for (name, got) in [
        (
            "decoder.deform7_offset",
            seven.offset.forward(x, false).expect("offset"),
        ),
        (
            "decoder.deform7_modulator_logits",
            seven.modulator.forward(x, false).expect("modulator"),
        ),
    ] {
        let err = relative_error(&got, &r[name]);
        eprintln!("{name}: relative error {err:.2e}");
        assert!(err <= 1e-4, "{name}: {err}");
    }
    let err = relative_error(&aspp.forward(x).expect("aspp"), &r["decoder.aspp_output"]);
    eprintln!("decoder.aspp_output: relative error {err:.2e}");
    assert!(err <= 1e-4, "aspp: {err}");
}

#[test]
fn the_decoder_levels_match_the_authors_code() {
    let (m, r) = (model(), reference());
    let image = &r["pixels"];
    let d = &m.decoder;
    let squeezed = d.squeeze.forward(&r["encoder.3"]).expect("squeeze");
    let check = |name: &str, got: &Tensor| {
        let err = relative_error(got, &r[name]);
        eprintln!("{name}: relative error {err:.2e}");
        err
    };
    let mut worst = check("squeezed", &squeezed);
    // Each level from the authors' previous level, so errors do not compound here.
    let with_patches = |p: &Tensor, k: usize| {
        let (_, _, ph, pw) = p.dims4().expect("dims");
        Tensor::cat(
            &[
                p.clone(),
                d.patches[k].forward(image, ph, pw).expect("patches"),
            ],
            1,
        )
        .expect("cat")
    };
    let block4 = d.blocks[0]
        .forward(&with_patches(&r["squeezed"], 0))
        .expect("block4");
    worst = worst.max(check("decoder.block4", &block4));
    let skips = ["encoder.2", "encoder.1", "encoder.0"];
    let names = [
        ("decoder.p4", "decoder.block3"),
        ("decoder.p3", "decoder.block2"),
        ("decoder.p2", "decoder.block1"),
    ];
    let blocks = ["decoder.block4", "decoder.block3", "decoder.block2"];
    for level in 0..3 {
        let p = d.attention[level]
            .forward(&r[blocks[level]])
            .expect("attention");
        worst = worst.max(check(names[level].0, &p));
        let skip = &r[skips[level]];
        let (_, _, sh, sw) = skip.dims4().expect("dims");
        let up = resize_align_corners(&r[names[level].0], sh, sw).expect("up");
        let merged = (up + d.laterals[level].forward(skip, false).expect("lateral")).expect("add");
        let next = d.blocks[level + 1]
            .forward(&with_patches(&merged, level + 1))
            .expect("block");
        worst = worst.max(check(names[level].1, &next));
    }
    assert!(worst <= 1e-4, "worst level error {worst}");
}

//! Each failure the properties found, minimised, as a plain test (and, marked, the cases of
//! the same bug the minimised input stood for). Named after what must hold.

use image::ImageFormat;
use orfeas_core::image::{load_image, ImageLimits, ImageSource};
use serde_json::Value;

use crate::alloc_cap::{assert_no_huge_allocation, peak_growth};
use crate::images::{apply, JunkKind, Mutation, Seed};
use crate::weights::{bytes, run_birefnet, run_depth_anything, run_triposr, Broken, StMutation};

/// The tiny TripoSR `config.yaml` with `key: value` lines replaced (`key` as written,
/// indentation included) and `extra` appended.
fn triposr_yaml(replace: &[(&str, &str)], extra: &str) -> String {
    let text = std::str::from_utf8(bytes("triposr/tiny/config.yaml")).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .map(|line| {
            for (key, value) in replace {
                if line.starts_with(&format!("{key}:")) {
                    return format!("{key}: {value}");
                }
            }
            line.to_owned()
        })
        .collect();
    out.push(extra.to_owned());
    out.join("\n")
}

/// The tiny Depth Anything `config.json` with `backbone_config.<key>` set.
fn depth_anything_config(key: &str, value: Value) -> String {
    let mut doc: Value = serde_json::from_slice(bytes("depth_anything/tiny/config.json")).unwrap();
    doc["backbone_config"][key] = value;
    doc.to_string()
}

fn expect(run: &crate::weights::Run, code: &str, needles: &[&str]) -> (&'static str, String) {
    let (got, message) = run.failure().expect("the broken checkpoint loaded");
    assert_eq!(got, code, "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    (got, message)
}

/// Found by `mutated_images_decode_or_fail_cleanly`: the limits were checked on the stored
/// size only, so a 2×19 JPEG whose EXIF orientation turns it a quarter (5: transpose, 6: 90°,
/// 7, 8: 270°) came out 19×2, past a `max_width` of 2.
#[test]
fn exif_quarter_turns_are_checked_against_the_limits() {
    let seed = Seed {
        format: ImageFormat::Jpeg,
        width: 2,
        height: 19,
        layout: 0,
        salt: 0,
    };
    let limits = ImageLimits {
        max_width: 2,
        max_height: 19,
        max_pixels: 38,
        max_file_bytes: 1 << 20,
    };
    for orientation in 1u8..=8 {
        let mut bytes = seed.encode();
        apply(
            &mut bytes,
            seed.format,
            &Mutation::Junk(JunkKind::Exif, vec![orientation]),
        );
        let source = ImageSource::Bytes {
            name: "turned.jpg".into(),
            bytes: bytes.into(),
        };
        let result = load_image(&source, &limits);
        if orientation >= 5 {
            let e = result.err();
            assert_eq!(
                e.as_ref().map(|e| e.code()),
                Some("ERR_IMAGE_TOO_LARGE"),
                "orientation {orientation}: {e:?}"
            );
        } else {
            let img = result.unwrap_or_else(|e| panic!("orientation {orientation}: {e}"));
            assert_eq!(
                (img.width, img.height),
                (2, 19),
                "orientation {orientation}"
            );
        }
    }
}

/// Found by `depth_anything_refuses_broken_checkpoints`: a tensor of the wrong shape was
/// reported as "checkpoint incomplete or not matching its config" without naming the files.
#[test]
fn depth_anything_mismatch_names_the_checkpoint_and_its_config() {
    let run = run_depth_anything(&Broken::Weights(vec![StMutation::Entry(
        "backbone.embeddings.cls_token",
        "F32",
        vec![1, 1, 16],
    )]));
    let weights = run.broken.display().to_string();
    let config = run.broken.with_file_name("config.json");
    expect(
        &run,
        "ERR_WEIGHTS_NOT_FOUND",
        &[&weights, &config.display().to_string(), "cls_token"],
    );
}

/// Found by `birefnet_refuses_broken_checkpoints`: a relative position bias table with no
/// columns (zero heads, no bytes, so a well-formed file) divided by zero in `SwinConfig::detect`.
#[test]
fn birefnet_zero_attention_heads_are_an_error() {
    let run = run_birefnet(&[StMutation::Entry(
        "bb.layers.0.blocks.0.attn.relative_position_bias_table",
        "F32",
        vec![169, 0],
    )]);
    let file = run.broken.display().to_string();
    expect(
        &run,
        "ERR_WEIGHTS_INVALID",
        &[&file, "relative_position_bias_table"],
    );
}

/// Found by both safetensors properties: a tensor of shape `[0, 2^62, 49]` holds no bytes, so
/// the format's own checks pass it, and candle's stride computation then overflowed (a panic
/// in debug builds, wrapped strides in release).
#[test]
fn empty_tensors_beside_huge_dimensions_are_refused() {
    let shape = vec![0, 1 << 62, 49];
    let run = run_depth_anything(&Broken::Weights(vec![StMutation::Entry(
        "backbone.embeddings.cls_token",
        "F32",
        shape.clone(),
    )]));
    let file = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_NOT_FOUND", &[&file, "no elements"]);
    let run = run_birefnet(&[StMutation::Entry("bb.patch_embed.proj.bias", "F32", shape)]);
    let file = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_INVALID", &[&file, "no elements"]);
    // A convolution weight with no input channels and 2^40 outputs: its bias (absent from the
    // checkpoint) would have been zeros of that length.
    let run = run_birefnet(&[StMutation::Entry(
        "decoder.decoder_block1.dec_att.aspp1.atrous_conv.regular_conv.weight",
        "F32",
        vec![1 << 40, 0, 1, 1],
    )]);
    expect(&run, "ERR_WEIGHTS_INVALID", &["no elements"]);
    assert_no_huge_allocation("empty tensors");
}

/// Found by review of the above: the Swin window is read off the bias table's rows, and the
/// relative position index and biases grow with its fourth power (window 64: over 256 MB from
/// a 2 MB file).
#[test]
fn birefnet_huge_windows_are_refused() {
    let rows = (2 * 64 - 1) * (2 * 64 - 1);
    // Every block's table, with its own number of heads: a well-formed checkpoint of window 64.
    let seed = bytes("birefnet/model.safetensors");
    let n = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&seed[8..8 + n]).unwrap();
    let tables: Vec<StMutation> = header
        .iter()
        .filter(|(name, _)| name.ends_with("relative_position_bias_table"))
        .map(|(name, v)| {
            let heads = v["shape"][1].as_u64().unwrap();
            let name: &'static str = name.clone().leak();
            StMutation::Entry(name, "F16", vec![rows, heads])
        })
        .collect();
    assert!(tables.len() >= 4);
    let run = run_birefnet(&tables);
    assert_no_huge_allocation("huge window");
    expect(&run, "ERR_WEIGHTS_INVALID", &["window 64"]);
}

/// Found by `triposr_refuses_broken_checkpoints`: a ViT `config.json` that is not UTF-8 was
/// ERR_IO ("stream did not contain valid UTF-8"), not ERR_WEIGHTS_INVALID.
#[test]
fn triposr_vit_config_that_is_not_text_is_invalid_weights() {
    let run = run_triposr(&Broken::VitText(b"\xff{\"hidden_size\": 32}".to_vec()));
    let file = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_INVALID", &[&file, "UTF-8"]);
}

/// Found by `triposr_refuses_broken_checkpoints`: `pretrained_model_name_or_path: False`
/// (no such ViT) was ERR_WEIGHTS_NOT_FOUND without naming the config.yaml that asked for it.
#[test]
fn triposr_missing_vit_names_the_config_yaml() {
    let run = run_triposr(&Broken::ConfigText(triposr_yaml(
        &[("  pretrained_model_name_or_path", "False")],
        "",
    )));
    let file = run.broken.display().to_string();
    expect(
        &run,
        "ERR_WEIGHTS_NOT_FOUND",
        &[&file, "pretrained_model_name_or_path"],
    );
}

/// Found by review while widening the config mutations: sizes multiply (`heads × head_dim`,
/// `4 × inner`, `grid²`), which overflowed (a panic in debug builds), and layer counts size
/// the table of expected tensors (2^40 layers: a table that never fits in memory).
#[test]
fn triposr_absurd_sizes_are_refused() {
    for (key, value, needle) in [
        (
            "  attention_head_dim",
            "4611686018427387904",
            "attention_head_dim",
        ),
        ("  num_layers", "1099511627776", "num_layers"),
        ("  n_hidden_layers", "1099511627776", "n_hidden_layers"),
        ("  plane_size", "4294967296", "plane_size"),
        ("cond_image_size", "1099511627776", "cond_image_size"),
    ] {
        let run = run_triposr(&Broken::ConfigText(triposr_yaml(&[(key, value)], "")));
        let file = run.broken.display().to_string();
        expect(&run, "ERR_WEIGHTS_INVALID", &[&file, needle]);
    }
    let mut vit: Value = serde_json::from_slice(bytes("triposr/tiny/vit/config.json")).unwrap();
    vit["image_size"] = Value::from(1u64 << 40);
    vit["patch_size"] = Value::from(1);
    let run = run_triposr(&Broken::VitText(vit.to_string().into_bytes()));
    let file = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_INVALID", &[&file, "image_size"]);
    assert_no_huge_allocation("triposr sizes");
}

/// Found by review while widening the config mutations: `(image_size / patch_size)² + 1`
/// overflowed for an image_size of 2^40 (a panic in debug builds).
#[test]
fn depth_anything_absurd_sizes_are_refused() {
    for (key, value) in [
        ("image_size", Value::from(1u64 << 40)),
        ("hidden_size", Value::from(1u64 << 40)),
    ] {
        let run = run_depth_anything(&Broken::ConfigText(depth_anything_config(key, value)));
        let file = run.broken.display().to_string();
        expect(&run, "ERR_WEIGHTS_NOT_FOUND", &[&file, key]);
    }
    assert_no_huge_allocation("depth anything sizes");
}

/// Found by review of the YAML path: yaml-rust2's loader expands aliases by copying, so a
/// few hundred bytes of nested aliases ("billion laughs") grew into gigabytes before the
/// converter could refuse them. Ten levels of ten would be 10^10 copies; seven already need
/// a gigabyte.
#[test]
fn triposr_yaml_alias_bombs_are_refused_before_they_expand() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..7 {
        let prev = format!("*a{}", level - 1);
        let items = [prev.as_str(); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let (run, grew) = peak_growth(|| run_triposr(&Broken::ConfigText(triposr_yaml(&[], &bomb))));
    assert!(grew < 64 << 20, "the bomb expanded: {grew} bytes in use");
    let file = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_INVALID", &[&file, "alias"]);
}

/// Found by `triposr_refuses_broken_checkpoints`: an empty tensor at offsets
/// `[u64::MAX, u64::MAX]` (consistent with its zero bytes) overflowed the end-of-data check
/// (`data_start + end`, a panic in debug builds).
#[test]
fn triposr_offsets_at_the_end_of_u64_are_refused() {
    let mut header: Value = serde_json::from_slice(&{
        let seed = bytes("triposr/tiny/model.safetensors");
        let n = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
        seed[8..8 + n].to_vec()
    })
    .unwrap();
    header["backbone.norm.bias"] =
        serde_json::json!({"dtype": "F32", "shape": [0], "data_offsets": [u64::MAX, u64::MAX]});
    let seed = bytes("triposr/tiny/model.safetensors");
    let n = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    let json = header.to_string();
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(json.as_bytes());
    file.extend_from_slice(&seed[8 + n..]);
    let run = run_triposr(&Broken::WeightsBytes(file));
    let name = run.broken.display().to_string();
    expect(&run, "ERR_WEIGHTS_INVALID", &[&name, "backbone.norm.bias"]);
}

/// Found by `solids`: two pixels touching only at a corner. The pinch removal rightly drops
/// the shared corner (it would be a non-manifold vertex), which leaves nothing; the error used
/// to say "the foreground mask is empty" of a mask that was not.
#[test]
fn diagonal_pixels_only_say_why_nothing_is_left() {
    use orfeas_core::mask::{Mask, MaskSource};
    use orfeas_core::mesh::{triangulate_heightfield, CornerGrid, MeshingLimits};
    use orfeas_core::{CancelToken, HeightMap};

    let mask = Mask {
        width: 2,
        height: 2,
        data: vec![true, false, false, true],
        source: MaskSource::Alpha,
    };
    let map = HeightMap::new(2, 2, vec![0.0; 4]).expect("map");
    let grid = CornerGrid::from_height_map(&map, &mask).expect("grid");
    let limits = MeshingLimits {
        max_error: 0.01,
        max_triangles: 100,
    };
    let err =
        triangulate_heightfield(&grid, &limits, &CancelToken::new()).expect_err("nothing left");
    assert_eq!(err.code(), "ERR_MESHING");
    assert!(err.to_string().contains("touch at corners"), "{err}");
}

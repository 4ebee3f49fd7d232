//! The authors' checkpoint layout (the Depth-Anything-V2 repository's
//! `depth_anything_v2_vits.pth`, `…_vitb`, `…_vitl`, and the same keys as `.safetensors`),
//! renamed to the transformers names the model is built from.
//!
//! The names are the inverse of transformers' `convert_depth_anything_to_hf.py`: `pretrained.…`
//! is the DINOv2 backbone (with one fused `attn.qkv` per block), `depth_head.…` the DPT neck and
//! head, whose `refinenet1..4` are transformers' fusion layers in reverse order.
//!
//! These files carry no config. The encoder size follows from the weights; what the weights
//! cannot tell follows the authors' file names, as their own scripts do: `depth_anything_vits14`
//! is V1 (the last four layers feed the neck, V2 takes evenly spaced ones), and
//! `…_metric_hypersim_…`/`…_metric_vkitti_…` are the metric models (sigmoid head × 20 m / 80 m).
//! A transformers `config.json` beside the file overrides all of this (and is how sizes other
//! than the published ones load).

use std::collections::HashMap;

use candle_core::Tensor;

use super::config::{DepthAnythingConfig, DepthEstimationType};

/// The tensor only the authors' layout has; its presence decides the layout.
const MARKER: &str = "pretrained.cls_token";

/// True for a checkpoint in the authors' layout (else it is the transformers layout).
pub(crate) fn is_original_layout<V>(tensors: &HashMap<String, V>) -> bool {
    tensors.contains_key(MARKER)
}

/// The architecture of an authors'-layout checkpoint from its tensor shapes and file name.
pub(crate) fn config_for(
    shape: impl Fn(&str) -> Option<Vec<usize>>,
    file_name: &str,
) -> Result<DepthAnythingConfig, String> {
    let hidden = shape(MARKER)
        .and_then(|s| s.last().copied())
        .ok_or("pretrained.cls_token has no shape")?;
    let (encoder, mut config) = match hidden {
        384 => ("vits", DepthAnythingConfig::small()),
        768 => ("vitb", DepthAnythingConfig::base()),
        1024 => ("vitl", DepthAnythingConfig::large()),
        other => {
            return Err(format!(
                "hidden width {other} is none of the published encoders (vits 384, vitb 768, vitl 1024); \
                 put the model's transformers config.json beside the file"
            ))
        }
    };
    let layers = (0usize..)
        .take_while(|i| shape(&format!("pretrained.blocks.{i}.norm1.weight")).is_some())
        .count();
    let neck: Vec<usize> = (0..4)
        .filter_map(|i| shape(&format!("depth_head.projects.{i}.weight")).map(|s| s[0]))
        .collect();
    let fusion = shape("depth_head.scratch.layer1_rn.weight").map(|s| s[0]);
    let b = &mut config.backbone_config;
    if layers != b.num_hidden_layers
        || neck != config.neck_hidden_sizes
        || fusion != Some(config.fusion_hidden_size)
    {
        return Err(format!(
            "the weights ({layers} blocks, neck {neck:?}, fusion {fusion:?}) are not the authors' {encoder} \
             architecture ({} blocks, neck {:?}, fusion {}); put the model's transformers config.json beside the file",
            b.num_hidden_layers, config.neck_hidden_sizes, config.fusion_hidden_size
        ));
    }
    let name = file_name.to_ascii_lowercase();
    if name.starts_with("depth_anything_vit") {
        b.out_indices = Some((layers - 3..=layers).collect());
    }
    if name.contains("metric") {
        let max_depth = if name.contains("hypersim") {
            20.0
        } else if name.contains("vkitti") {
            80.0
        } else {
            return Err(format!(
                "{file_name} looks like a metric checkpoint, but its name does not say which (hypersim: \
                 20 m, vkitti: 80 m); put the model's transformers config.json beside the file"
            ));
        };
        config.depth_estimation_type = DepthEstimationType::Metric;
        config.max_depth = Some(max_depth);
    }
    Ok(config)
}

/// Renames every tensor to its transformers name, splitting each fused `qkv` into query, key
/// and value. A tensor with no transformers counterpart is an error rather than dropped: it
/// means an architecture this loader does not know.
pub(crate) fn to_transformers_layout(
    tensors: HashMap<String, Tensor>,
    hidden: usize,
) -> Result<HashMap<String, Tensor>, String> {
    let mut out = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        if let Some((block, param)) = fused_qkv(&name) {
            if tensor.dim(0).ok() != Some(3 * hidden) {
                return Err(format!(
                    "{name} has shape {:?}, expected {} rows (query, key, value)",
                    tensor.dims(),
                    3 * hidden
                ));
            }
            for (i, part) in ["query", "key", "value"].into_iter().enumerate() {
                let slice = tensor
                    .narrow(0, i * hidden, hidden)
                    .map_err(|e| e.to_string())?;
                out.insert(
                    format!("backbone.encoder.layer.{block}.attention.attention.{part}.{param}"),
                    slice,
                );
            }
        } else {
            let renamed = transformers_name(&name).ok_or_else(|| {
                format!("unexpected tensor {name:?} for the Depth Anything layout")
            })?;
            out.insert(renamed, tensor);
        }
    }
    Ok(out)
}

/// `pretrained.blocks.{i}.attn.qkv.{weight|bias}` → `(i, weight|bias)`.
fn fused_qkv(name: &str) -> Option<(usize, &str)> {
    let (block, param) = name
        .strip_prefix("pretrained.blocks.")?
        .split_once(".attn.qkv.")?;
    Some((block.parse().ok()?, param))
}

/// The transformers name of every other tensor of the authors' layout.
fn transformers_name(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("pretrained.") {
        return backbone_name(rest).map(|n| format!("backbone.{n}"));
    }
    let rest = name.strip_prefix("depth_head.")?;
    if let Some(rest) = rest.strip_prefix("projects.") {
        let (i, param) = rest.split_once('.')?;
        return Some(format!(
            "neck.reassemble_stage.layers.{}.projection.{param}",
            index(i)?
        ));
    }
    if let Some(rest) = rest.strip_prefix("resize_layers.") {
        let (i, param) = rest.split_once('.')?;
        return Some(format!(
            "neck.reassemble_stage.layers.{}.resize.{param}",
            index(i)?
        ));
    }
    let rest = rest.strip_prefix("scratch.")?;
    if let Some(rest) = rest.strip_prefix("refinenet") {
        // refinenet4 takes the deepest features: transformers' fusion layer 0.
        let (i, leaf) = rest.split_once('.')?;
        let layer = 4usize.checked_sub(index(i).filter(|&i| (1..=4).contains(&i))?)?;
        return Some(format!(
            "neck.fusion_stage.layers.{layer}.{}",
            fusion_leaf(leaf)?
        ));
    }
    if let Some(rest) = rest.strip_prefix("layer") {
        let (i, param) = rest.split_once("_rn.")?;
        let i = index(i).filter(|&i| i >= 1)?;
        return (param == "weight").then(|| format!("neck.convs.{}.weight", i - 1));
    }
    let (conv, param) = [
        ("output_conv1.", "conv1"),
        ("output_conv2.0.", "conv2"),
        ("output_conv2.2.", "conv3"),
    ]
    .into_iter()
    .find_map(|(prefix, conv)| rest.strip_prefix(prefix).map(|param| (conv, param)))?;
    Some(format!("head.{conv}.{param}"))
}

fn backbone_name(rest: &str) -> Option<String> {
    const FIXED: [(&str, &str); 7] = [
        ("cls_token", "embeddings.cls_token"),
        ("mask_token", "embeddings.mask_token"),
        ("pos_embed", "embeddings.position_embeddings"),
        (
            "patch_embed.proj.weight",
            "embeddings.patch_embeddings.projection.weight",
        ),
        (
            "patch_embed.proj.bias",
            "embeddings.patch_embeddings.projection.bias",
        ),
        ("norm.weight", "layernorm.weight"),
        ("norm.bias", "layernorm.bias"),
    ];
    const BLOCK: [(&str, &str); 5] = [
        ("ls1.gamma", "layer_scale1.lambda1"),
        ("ls2.gamma", "layer_scale2.lambda1"),
        ("attn.proj.", "attention.output.dense."),
        // DINOv2's fused SwiGLU (giant encoders).
        ("mlp.w12.", "mlp.weights_in."),
        ("mlp.w3.", "mlp.weights_out."),
    ];
    if let Some((_, hf)) = FIXED.iter().find(|(orig, _)| *orig == rest) {
        return Some((*hf).to_owned());
    }
    let (i, leaf) = rest.strip_prefix("blocks.")?.split_once('.')?;
    let i = index(i)?;
    let renamed = BLOCK
        .iter()
        .find_map(|(orig, hf)| leaf.strip_prefix(orig).map(|param| format!("{hf}{param}")));
    let kept = ["norm1.", "norm2.", "mlp.fc1.", "mlp.fc2."]
        .iter()
        .any(|p| leaf.starts_with(p))
        .then(|| leaf.to_owned());
    Some(format!("encoder.layer.{i}.{}", renamed.or(kept)?))
}

/// `out_conv.*` and `resConfUnit{1,2}.conv{1,2}.*` of a refinenet.
fn fusion_leaf(leaf: &str) -> Option<String> {
    if let Some(param) = leaf.strip_prefix("out_conv.") {
        return Some(format!("projection.{param}"));
    }
    let (unit, rest) = leaf.strip_prefix("resConfUnit")?.split_once(".conv")?;
    let (conv, param) = rest.split_once('.')?;
    Some(format!(
        "residual_layer{}.convolution{}.{param}",
        index(unit)?,
        index(conv)?
    ))
}

fn index(digits: &str) -> Option<usize> {
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes of the authors' vits checkpoint, enough for `config_for`.
    fn vits_shapes(name: &str) -> Option<Vec<usize>> {
        let block = name
            .strip_prefix("pretrained.blocks.")
            .and_then(|r| r.split_once('.'));
        if let Some((i, "norm1.weight")) = block {
            return (i.parse::<usize>().ok()? < 12).then(|| vec![384]);
        }
        match name {
            "pretrained.cls_token" => Some(vec![1, 1, 384]),
            "depth_head.scratch.layer1_rn.weight" => Some(vec![64, 48, 3, 3]),
            n => {
                let i: usize = n
                    .strip_prefix("depth_head.projects.")?
                    .strip_suffix(".weight")?
                    .parse()
                    .ok()?;
                Some(vec![[48, 96, 192, 384][i], 384, 1, 1])
            }
        }
    }

    #[test]
    fn the_published_file_names_decide_what_the_weights_cannot() {
        let v2 = config_for(vits_shapes, "depth_anything_v2_vits.pth").expect("v2");
        assert_eq!(v2, DepthAnythingConfig::small());
        let v1 = config_for(vits_shapes, "depth_anything_vits14.pth").expect("v1");
        assert_eq!(
            v1.backbone_config.out_indices,
            Some(vec![9, 10, 11, 12]),
            "V1 feeds the last four layers"
        );
        let indoor =
            config_for(vits_shapes, "depth_anything_v2_metric_hypersim_vits.pth").expect("metric");
        assert_eq!(
            (indoor.depth_estimation_type, indoor.max_depth()),
            (DepthEstimationType::Metric, 20.0)
        );
        let outdoor = config_for(
            vits_shapes,
            "depth_anything_v2_metric_vkitti_vits.safetensors",
        )
        .expect("metric");
        assert_eq!(outdoor.max_depth(), 80.0);
        let err = config_for(vits_shapes, "depth_anything_v2_metric_vits.pth")
            .expect_err("which metric?");
        assert!(err.contains("config.json"), "{err}");
    }

    #[test]
    fn unknown_sizes_ask_for_a_config() {
        let tiny = |n: &str| (n == MARKER).then(|| vec![1, 1, 32]);
        assert!(config_for(tiny, "x.pth")
            .expect_err("tiny")
            .contains("config.json"));
        let too_shallow = |n: &str| match n {
            "pretrained.blocks.0.norm1.weight" => Some(vec![384]),
            n => vits_shapes(n).filter(|_| !n.starts_with("pretrained.blocks.")),
        };
        assert!(config_for(too_shallow, "depth_anything_v2_vits.pth")
            .expect_err("1 block")
            .contains("1 blocks"));
    }

    #[test]
    fn every_original_name_maps_to_its_transformers_name() {
        for (orig, hf) in [
            (
                "pretrained.pos_embed",
                "backbone.embeddings.position_embeddings",
            ),
            (
                "pretrained.blocks.11.ls2.gamma",
                "backbone.encoder.layer.11.layer_scale2.lambda1",
            ),
            (
                "pretrained.blocks.3.attn.proj.bias",
                "backbone.encoder.layer.3.attention.output.dense.bias",
            ),
            (
                "pretrained.blocks.0.mlp.fc2.weight",
                "backbone.encoder.layer.0.mlp.fc2.weight",
            ),
            (
                "pretrained.blocks.2.mlp.w12.weight",
                "backbone.encoder.layer.2.mlp.weights_in.weight",
            ),
            ("pretrained.norm.bias", "backbone.layernorm.bias"),
            (
                "depth_head.projects.3.weight",
                "neck.reassemble_stage.layers.3.projection.weight",
            ),
            (
                "depth_head.resize_layers.0.bias",
                "neck.reassemble_stage.layers.0.resize.bias",
            ),
            ("depth_head.scratch.layer4_rn.weight", "neck.convs.3.weight"),
            (
                "depth_head.scratch.refinenet4.out_conv.weight",
                "neck.fusion_stage.layers.0.projection.weight",
            ),
            (
                "depth_head.scratch.refinenet1.resConfUnit2.conv1.bias",
                "neck.fusion_stage.layers.3.residual_layer2.convolution1.bias",
            ),
            (
                "depth_head.scratch.output_conv2.2.weight",
                "head.conv3.weight",
            ),
        ] {
            assert_eq!(transformers_name(orig).as_deref(), Some(hf), "{orig}");
        }
        for stray in [
            "pretrained.blocks.0.attn.q_norm.weight",
            "pretrained.register_tokens",
            "depth_head.scratch.refinenet5.out_conv.weight",
            "depth_head.scratch.layer0_rn.weight",
            "depth_head.readout_projects.0.0.weight",
            "pretrained.blocks.x.norm1.weight",
        ] {
            assert_eq!(transformers_name(stray), None, "{stray}");
        }
    }

    #[test]
    fn the_fused_projection_is_split_in_query_key_value_order() {
        let qkv = Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
            .expect("t")
            .reshape((6, 1))
            .expect("r");
        let tensors = HashMap::from([("pretrained.blocks.0.attn.qkv.weight".to_owned(), qkv)]);
        let out = to_transformers_layout(tensors, 2).expect("split");
        let rows = |part: &str| {
            out[&format!("backbone.encoder.layer.0.attention.attention.{part}.weight")]
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("v")
        };
        assert_eq!(
            (rows("query"), rows("key"), rows("value")),
            (vec![0., 1.], vec![2., 3.], vec![4., 5.])
        );
        let odd = HashMap::from([(
            "pretrained.blocks.0.attn.qkv.bias".to_owned(),
            Tensor::zeros(5, candle_core::DType::F32, &candle_core::Device::Cpu).expect("z"),
        )]);
        assert!(to_transformers_layout(odd, 2)
            .expect_err("5 rows")
            .contains("expected 6 rows"));
        let stray = HashMap::from([(
            "pretrained.blocks.0.attn.q_norm.weight".to_owned(),
            Tensor::zeros(1, candle_core::DType::F32, &candle_core::Device::Cpu).expect("z"),
        )]);
        assert!(to_transformers_layout(stray, 2)
            .expect_err("stray")
            .contains("q_norm"));
    }
}

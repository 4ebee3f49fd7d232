//! Configuration, read from the transformers `config.json` of a `DepthAnythingForDepthEstimation`
//! checkpoint (a depth-anything config with a nested DINOv2 `backbone_config`).
//!
//! Every default below is the default of the matching transformers config class, because the
//! published `config.json` files only list the values that differ from those defaults (the
//! Depth-Anything-V2-Small-hf backbone config, for example, has no `layer_norm_eps` and relies
//! on DINOv2's 1e-6).

use serde::{Deserialize, Serialize};

/// The DINOv2 backbone configuration (`Dinov2Config` in transformers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dinov2Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub mlp_ratio: f64,
    /// `gelu` is the exact (erf) GELU in transformers; `gelu_new`/`gelu_pytorch_tanh` are the
    /// tanh approximation.
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    /// The pre-training resolution: it fixes the size of the position-embedding grid
    /// (`image_size / patch_size` per side), which is interpolated for other inputs.
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub qkv_bias: bool,
    pub layerscale_value: f64,
    pub use_swiglu_ffn: bool,
    /// Layer-normalise the feature maps handed to the neck (true for Depth Anything).
    pub apply_layernorm: bool,
    /// Depth Anything needs `false`: its neck drops the CLS token itself.
    pub reshape_hidden_states: bool,
    /// Indices into the hidden states, 0 being the embeddings (`stem`), `i` the output of
    /// layer `i`.
    pub out_indices: Option<Vec<usize>>,
    /// `["stage3", "stage6", ...]`: used when `out_indices` is absent.
    pub out_features: Option<Vec<String>>,
}

impl Default for Dinov2Config {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            mlp_ratio: 4.0,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-6,
            image_size: 224,
            patch_size: 14,
            num_channels: 3,
            qkv_bias: true,
            layerscale_value: 1.0,
            use_swiglu_ffn: false,
            apply_layernorm: true,
            reshape_hidden_states: true,
            out_indices: None,
            out_features: None,
        }
    }
}

impl Dinov2Config {
    /// The hidden-state indices handed to the neck, from `out_indices` or else `out_features`
    /// (`stemN`/`stageN` names), as transformers' `BackboneMixin` resolves them. Without either,
    /// transformers uses the last stage only.
    pub fn resolved_out_indices(&self) -> Result<Vec<usize>, String> {
        if let Some(ix) = &self.out_indices {
            return Ok(ix.clone());
        }
        if let Some(names) = &self.out_features {
            return names
                .iter()
                .map(|n| match n.as_str() {
                    "stem" => Ok(0),
                    s => s
                        .strip_prefix("stage")
                        .and_then(|d| d.parse().ok())
                        .ok_or_else(|| format!("unknown backbone out_feature {s:?}")),
                })
                .collect();
        }
        Ok(vec![self.num_hidden_layers])
    }
}

/// The largest size a configuration may give (ViT-L's largest is 4096, its MLP): products of
/// sizes this large (the position grid, `(image_size / patch_size)²`) still fit in a `usize`.
const MAX_SIZE: usize = 1 << 16;

/// Relative (inverse depth, ReLU head) or metric (sigmoid head × `max_depth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepthEstimationType {
    Relative,
    Metric,
}

/// The full Depth Anything configuration (`DepthAnythingConfig` in transformers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DepthAnythingConfig {
    pub backbone_config: Dinov2Config,
    pub patch_size: usize,
    pub reassemble_hidden_size: usize,
    /// Up/down-sampling factor of each reassemble layer: >1 transposed conv, 1 identity,
    /// <1 strided 3×3 conv.
    pub reassemble_factors: Vec<f64>,
    pub neck_hidden_sizes: Vec<usize>,
    pub fusion_hidden_size: usize,
    pub head_in_index: i64,
    pub head_hidden_size: usize,
    pub depth_estimation_type: DepthEstimationType,
    /// `null` in the relative checkpoints, which transformers turns into 1.
    pub max_depth: Option<f64>,
}

impl Default for DepthAnythingConfig {
    fn default() -> Self {
        Self {
            backbone_config: Dinov2Config {
                image_size: 518,
                hidden_size: 384,
                num_attention_heads: 6,
                out_indices: Some(vec![9, 10, 11, 12]),
                apply_layernorm: true,
                reshape_hidden_states: false,
                ..Dinov2Config::default()
            },
            patch_size: 14,
            reassemble_hidden_size: 384,
            reassemble_factors: vec![4.0, 2.0, 1.0, 0.5],
            neck_hidden_sizes: vec![48, 96, 192, 384],
            fusion_hidden_size: 64,
            head_in_index: -1,
            head_hidden_size: 32,
            depth_estimation_type: DepthEstimationType::Relative,
            max_depth: None,
        }
    }
}

impl DepthAnythingConfig {
    /// Depth-Anything-V2-Small (ViT-S/14, 24.8 M parameters, Apache-2.0 weights).
    pub fn small() -> Self {
        Self::v2(384, 12, 6, vec![3, 6, 9, 12], vec![48, 96, 192, 384], 64)
    }

    /// Depth-Anything-V2-Base (ViT-B/14; CC-BY-NC-4.0 weights).
    pub fn base() -> Self {
        Self::v2(768, 12, 12, vec![3, 6, 9, 12], vec![96, 192, 384, 768], 128)
    }

    /// Depth-Anything-V2-Large (ViT-L/14; CC-BY-NC-4.0 weights).
    pub fn large() -> Self {
        Self::v2(
            1024,
            24,
            16,
            vec![5, 12, 18, 24],
            vec![256, 512, 1024, 1024],
            256,
        )
    }

    fn v2(
        hidden: usize,
        layers: usize,
        heads: usize,
        out_indices: Vec<usize>,
        neck: Vec<usize>,
        fusion: usize,
    ) -> Self {
        Self {
            backbone_config: Dinov2Config {
                hidden_size: hidden,
                num_hidden_layers: layers,
                num_attention_heads: heads,
                image_size: 518,
                out_indices: Some(out_indices),
                reshape_hidden_states: false,
                ..Dinov2Config::default()
            },
            reassemble_hidden_size: hidden,
            neck_hidden_sizes: neck,
            fusion_hidden_size: fusion,
            ..Self::default()
        }
    }

    /// Parses a transformers `config.json`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The scale applied after the head's final activation (1 for relative depth).
    pub fn max_depth(&self) -> f64 {
        match self.max_depth {
            Some(d) if d != 0.0 => d,
            _ => 1.0,
        }
    }

    /// Rejects configurations this implementation does not run, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        let b = &self.backbone_config;
        let sizes = [
            ("backbone_config.hidden_size", b.hidden_size),
            ("backbone_config.num_hidden_layers", b.num_hidden_layers),
            ("backbone_config.num_attention_heads", b.num_attention_heads),
            ("backbone_config.image_size", b.image_size),
            ("backbone_config.patch_size", b.patch_size),
            ("backbone_config.num_channels", b.num_channels),
            ("reassemble_hidden_size", self.reassemble_hidden_size),
            ("fusion_hidden_size", self.fusion_hidden_size),
            ("head_hidden_size", self.head_hidden_size),
        ];
        let neck = self
            .neck_hidden_sizes
            .iter()
            .map(|&c| ("neck_hidden_sizes", c));
        if let Some((name, v)) = sizes.into_iter().chain(neck).find(|(_, v)| *v > MAX_SIZE) {
            return Err(format!(
                "{name} is {v}, more than {MAX_SIZE}: not a Depth Anything size"
            ));
        }
        let n = self.neck_hidden_sizes.len();
        let out = b.resolved_out_indices()?;
        if n == 0 || self.reassemble_factors.len() != n || out.len() != n {
            return Err(format!(
                "neck_hidden_sizes ({n}), reassemble_factors ({}) and backbone out_indices ({}) \
                 must have the same non-zero length",
                self.reassemble_factors.len(),
                out.len()
            ));
        }
        if let Some(&i) = out.iter().find(|&&i| i > b.num_hidden_layers) {
            return Err(format!(
                "out index {i} beyond {} layers",
                b.num_hidden_layers
            ));
        }
        if b.reshape_hidden_states {
            return Err(
                "backbone reshape_hidden_states = true is not a Depth Anything layout".into(),
            );
        }
        if b.num_attention_heads == 0 || !b.hidden_size.is_multiple_of(b.num_attention_heads) {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        if b.patch_size == 0 || b.image_size < b.patch_size || self.patch_size != b.patch_size {
            return Err(
                "patch_size must be positive, equal in both configs, and ≤ image_size".into(),
            );
        }
        if self.reassemble_hidden_size != b.hidden_size {
            return Err("reassemble_hidden_size must equal the backbone hidden_size".into());
        }
        if let Some(f) = self.reassemble_factors.iter().find(|&&f| {
            !(f > 0.0 && (f >= 1.0 && f.fract() == 0.0 || f < 1.0 && (1.0 / f).fract() == 0.0))
        }) {
            return Err(format!(
                "reassemble factor {f} is neither an integer nor 1/integer"
            ));
        }
        let head = self.head_in_index;
        if head >= n as i64 || head < -(n as i64) {
            return Err(format!(
                "head_in_index {head} out of range for {n} fusion outputs"
            ));
        }
        if self.fusion_hidden_size < 2 {
            return Err("fusion_hidden_size must be at least 2".into());
        }
        match b.hidden_act.as_str() {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" => Ok(()),
            a => Err(format!("unsupported hidden_act {a:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_small_matches_the_published_config() {
        for c in [
            DepthAnythingConfig::small(),
            DepthAnythingConfig::base(),
            DepthAnythingConfig::large(),
        ] {
            assert_eq!(c.validate(), Ok(()));
        }
        // The Depth-Anything-V2-Small-hf config.json, abridged to the keys that matter.
        let json = r#"{"backbone_config": {"hidden_size": 384, "image_size": 518,
            "model_type": "dinov2", "num_attention_heads": 6,
            "out_features": ["stage3", "stage6", "stage9", "stage12"],
            "out_indices": [3, 6, 9, 12], "patch_size": 14, "reshape_hidden_states": false},
            "depth_estimation_type": "relative", "fusion_hidden_size": 64, "head_hidden_size": 32,
            "head_in_index": -1, "max_depth": null, "model_type": "depth_anything",
            "neck_hidden_sizes": [48, 96, 192, 384], "patch_size": 14,
            "reassemble_factors": [4, 2, 1, 0.5], "reassemble_hidden_size": 384}"#;
        let mut parsed = DepthAnythingConfig::from_json(json).expect("parses");
        parsed.backbone_config.out_features = None;
        assert_eq!(parsed, DepthAnythingConfig::small());
        assert_eq!(parsed.backbone_config.layer_norm_eps, 1e-6);
        assert_eq!(parsed.max_depth(), 1.0);
    }

    #[test]
    fn out_features_stand_in_for_out_indices() {
        let mut b = DepthAnythingConfig::small().backbone_config;
        b.out_indices = None;
        b.out_features = Some(vec!["stem".into(), "stage12".into()]);
        assert_eq!(b.resolved_out_indices(), Ok(vec![0, 12]));
    }
}

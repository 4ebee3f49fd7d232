//! The model's configuration, as the published `config.yaml` describes it.
//!
//! Every default is the default of the matching dataclass in the authors' code (`BaseModule.Config`
//! subclasses), because a config file only lists what differs from them.

/// The whole model: `TSR.Config` with each part's configuration resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct TripoSrConfig {
    /// Side of the square conditioning image (`cond_image_size`, 512 published).
    pub cond_image_size: usize,
    /// `image_tokenizer`: the DINO ViT configuration (from `pretrained_model_name_or_path`).
    pub vit: VitConfig,
    /// `tokenizer`: `Triplane1DTokenizer`.
    pub tokenizer: TriplaneTokenizerConfig,
    /// `backbone`: `Transformer1D`.
    pub backbone: BackboneConfig,
    /// `post_processor`: `TriplaneUpsampleNetwork`.
    pub post_processor: UpsampleConfig,
    /// `decoder`: `NeRFMLP`.
    pub decoder: DecoderConfig,
    /// `renderer`: `TriplaneNeRFRenderer` (only what querying the field needs).
    pub renderer: RendererConfig,
}

/// transformers' `ViTConfig`, the fields `ViTModel` reads (defaults: transformers 4.35).
#[derive(Clone, Debug, PartialEq)]
pub struct VitConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    /// `gelu` (exact erf) in DINO; also `gelu_new`/`gelu_pytorch_tanh` (tanh), `relu`.
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    /// The pre-training size: fixes the position-embedding grid (`image_size / patch_size`).
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub qkv_bias: bool,
}

impl VitConfig {
    /// `facebook/dino-vitb16`, the published tokenizer: known offline, so loading the published
    /// weights never needs the network.
    pub fn dino_vitb16() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
            qkv_bias: true,
        }
    }
}

/// `Triplane1DTokenizer.Config`: learned `3 × num_channels × plane_size²` embeddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriplaneTokenizerConfig {
    pub plane_size: usize,
    pub num_channels: usize,
}

/// The feed-forward of a transformer block (`activation_fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedForwardKind {
    /// `geglu` (published): `proj` to 2×inner, `hidden * gelu_erf(gate)` (hidden first).
    Geglu,
    /// `gelu`: `proj` to inner, exact GELU.
    Gelu,
    /// `gelu-approximate`: `proj` to inner, tanh GELU.
    GeluApproximate,
    /// `geglu-approximate`: `proj` to inner, `x * sigmoid(1.702 x)`.
    GegluApproximate,
}

/// `Transformer1D.Config` (only `norm_type = layer_norm`, neither `only_cross_attention` nor
/// `double_self_attention`: the authors' block asserts or never uses the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackboneConfig {
    pub in_channels: usize,
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub num_layers: usize,
    pub norm_num_groups: usize,
    /// `None`: no cross-attention block (the published model has 768, the ViT width).
    pub cross_attention_dim: Option<usize>,
    /// Biases on `to_q`/`to_k`/`to_v` (`to_out` always has one).
    pub attention_bias: bool,
    pub activation_fn: FeedForwardKind,
    /// LayerNorms with weight and bias (`norm_elementwise_affine`).
    pub norm_elementwise_affine: bool,
}

impl BackboneConfig {
    /// `num_attention_heads * attention_head_dim`.
    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }
}

/// `TriplaneUpsampleNetwork.Config`: `ConvTranspose2d(in, out, kernel 2, stride 2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsampleConfig {
    pub in_channels: usize,
    pub out_channels: usize,
}

/// The hidden activation of the NeRF MLP (`activation`, default `relu`; `silu` published).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpActivation {
    Relu,
    Silu,
}

/// `NeRFMLP.Config`: `in → n_neurons`, `n_hidden_layers - 1` × `n_neurons → n_neurons`, `→ 4`
/// (density, then three colour features), every linear with a bias when `bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    pub in_channels: usize,
    pub n_neurons: usize,
    pub n_hidden_layers: usize,
    pub activation: MlpActivation,
    pub bias: bool,
}

/// `feature_reduction`: how the three planes' features are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureReduction {
    /// `concat` (published): plane-major, `3 × C` features.
    Concat,
    /// `mean`: `C` features.
    Mean,
}

/// An output activation as `tsr.utils.get_activation` resolves its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldActivation {
    /// `none` (or absent).
    Identity,
    /// `exp` (published density) and `trunc_exp` (the dataclass default; exp in the forward pass).
    Exp,
    Sigmoid,
    Tanh,
    Softplus,
    Relu,
}

/// `TriplaneNeRFRenderer.Config`, the part that querying the field uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RendererConfig {
    /// Half the side of the cube the triplanes span (0.87 published).
    pub radius: f32,
    pub feature_reduction: FeatureReduction,
    pub density_activation: FieldActivation,
    pub density_bias: f32,
    pub color_activation: FieldActivation,
}

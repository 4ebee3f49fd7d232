//! The model's configuration, as the published `config.yaml` describes it.
//!
//! Every default is the default of the matching dataclass in the authors' code (`BaseModule.Config`
//! subclasses), because a config file only lists what differs from them.

use std::path::Path;

use super::omegaconf::{self, Node};
use crate::error::{OrfeasError, Result};

/// The largest size (width, resolution, count) a configuration may give: the published
/// model's largest is 3072, and products of sizes this large still fit in a `usize`.
const MAX_SIZE: usize = 1 << 16;

/// The most layers one stack may have (the published model has 16): each adds its tensors to
/// the table the checkpoint is checked against.
const MAX_LAYERS: usize = 1024;

/// The largest conditioning image (each job's image is resized to it; 512 published).
const MAX_COND_IMAGE_SIZE: usize = 4096;

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

/// The authors' class for each part: any other name would make `find_class` load code this
/// port does not have.
const CLASSES: [(&str, &str); 6] = [
    (
        "image_tokenizer_cls",
        "tsr.models.tokenizers.image.DINOSingleImageTokenizer",
    ),
    (
        "tokenizer_cls",
        "tsr.models.tokenizers.triplane.Triplane1DTokenizer",
    ),
    (
        "backbone_cls",
        "tsr.models.transformer.transformer_1d.Transformer1D",
    ),
    (
        "post_processor_cls",
        "tsr.models.network_utils.TriplaneUpsampleNetwork",
    ),
    ("decoder_cls", "tsr.models.network_utils.NeRFMLP"),
    (
        "renderer_cls",
        "tsr.models.nerf_renderer.TriplaneNeRFRenderer",
    ),
];

/// The published tokenizer, whose configuration is known without the network.
pub const DINO_VITB16: &str = "facebook/dino-vitb16";

/// The published `stabilityai/TripoSR` `config.yaml`, byte for byte.
const PUBLISHED_CONFIG_YAML: &str = include_str!("published_config.yaml");

impl TripoSrConfig {
    /// The published configuration, known without the network (its ViT is
    /// `facebook/dino-vitb16`): the shapes benchmarks and full-size checks build.
    pub fn published() -> Self {
        Self::from_yaml(PUBLISHED_CONFIG_YAML, Path::new("."))
            .unwrap_or_else(|_| unreachable!("the published config.yaml is valid"))
    }

    /// Reads `config.yaml` (the published file or one in its layout), resolves its OmegaConf
    /// interpolations, checks the class names and applies the dataclass defaults.
    ///
    /// ERR_WEIGHTS_NOT_FOUND when the file (or the ViT configuration it names) is absent;
    /// ERR_WEIGHTS_INVALID, naming the file and the offending key, when it is not a TripoSR
    /// configuration this port can run.
    pub fn from_file(config_yaml: &Path) -> Result<Self> {
        let text = match std::fs::read(config_yaml) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OrfeasError::WeightsNotFound(format!(
                    "{} does not exist: a TripoSR checkpoint is config.yaml beside model.ckpt \
                     (or model.safetensors); {}",
                    config_yaml.display(),
                    crate::models::how_to_get_triposr()
                )))
            }
            Err(source) => return Err(OrfeasError::io(config_yaml, source)),
        };
        let invalid = |detail: String| OrfeasError::WeightsInvalid {
            path: config_yaml.to_path_buf(),
            detail,
        };
        let text = String::from_utf8(text).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
        let dir = config_yaml.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, dir).map_err(|e| match e {
            Problem::Invalid(detail) => invalid(detail),
            // The ViT configuration config.yaml names is missing: say which file named it.
            Problem::External(OrfeasError::WeightsNotFound(detail)) => {
                OrfeasError::WeightsNotFound(format!("{}: {detail}", config_yaml.display()))
            }
            Problem::External(err) => err,
        })
    }

    /// [`Self::from_file`] on the text of a `config.yaml` in `dir` (where a relative ViT
    /// directory is looked for).
    fn from_yaml(text: &str, dir: &Path) -> Result<Self, Problem> {
        let root = omegaconf::parse(text).map_err(Problem::Invalid)?;
        let root = omegaconf::resolve(&root).map_err(Problem::Invalid)?;
        let top = Section::new("", &root)?;
        for (key, class) in CLASSES {
            let name = top.string(key, None)?;
            if name != class {
                return Err(Problem::Invalid(format!(
                    "{key} is {name:?}, not the authors' {class}: only TripoSR's own classes are \
                     implemented"
                )));
            }
        }
        let cond_image_size = top.usize(("cond_image_size", None))?;
        let image = top.section("image_tokenizer")?;
        let vit_name = image.string("pretrained_model_name_or_path", Some(DINO_VITB16))?;
        image.bool("enable_gradient_checkpointing", Some(false))?;
        image.finish()?;
        let vit = vit_config(&vit_name, dir)?;

        let t = top.section("tokenizer")?;
        let tokenizer = TriplaneTokenizerConfig {
            plane_size: t.usize(("plane_size", None))?,
            num_channels: t.usize(("num_channels", None))?,
        };
        t.finish()?;
        let backbone = backbone(&top.section("backbone")?)?;

        let p = top.section("post_processor")?;
        let post_processor = UpsampleConfig {
            in_channels: p.usize(("in_channels", None))?,
            out_channels: p.usize(("out_channels", None))?,
        };
        p.finish()?;
        let decoder = decoder(&top.section("decoder")?)?;
        let renderer = renderer(&top.section("renderer")?)?;
        top.finish()?;
        let config = Self {
            cond_image_size,
            vit,
            tokenizer,
            backbone,
            post_processor,
            decoder,
            renderer,
        };
        config.check_consistency().map_err(Problem::Invalid)?;
        Ok(config)
    }

    /// The sizes one part hands the next must agree, or the reference fails at run time.
    fn check_consistency(&self) -> Result<(), String> {
        let (t, b, p, d) = (
            &self.tokenizer,
            &self.backbone,
            &self.post_processor,
            &self.decoder,
        );
        let positive = [
            ("cond_image_size", self.cond_image_size),
            ("tokenizer.plane_size", t.plane_size),
            ("tokenizer.num_channels", t.num_channels),
            ("backbone.num_attention_heads", b.num_attention_heads),
            ("backbone.attention_head_dim", b.attention_head_dim),
            ("backbone.norm_num_groups", b.norm_num_groups),
            ("post_processor.out_channels", p.out_channels),
            ("decoder.n_neurons", d.n_neurons),
            ("decoder.n_hidden_layers", d.n_hidden_layers),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        let layers = [
            ("backbone.num_layers", b.num_layers),
            ("decoder.n_hidden_layers", d.n_hidden_layers),
        ];
        if let Some((name, n)) = layers.iter().find(|(_, n)| *n > MAX_LAYERS) {
            return Err(format!("{name} is {n}, more than {MAX_LAYERS} layers"));
        }
        // Every job's conditioning image is this size (512 published).
        if self.cond_image_size > MAX_COND_IMAGE_SIZE {
            return Err(format!(
                "cond_image_size {} is more than {MAX_COND_IMAGE_SIZE}",
                self.cond_image_size
            ));
        }
        if b.in_channels != t.num_channels {
            return Err(format!(
                "backbone.in_channels {} differs from tokenizer.num_channels {}",
                b.in_channels, t.num_channels
            ));
        }
        if !b.in_channels.is_multiple_of(b.norm_num_groups) {
            return Err(format!(
                "backbone.in_channels {} is not a multiple of norm_num_groups {}",
                b.in_channels, b.norm_num_groups
            ));
        }
        if let Some(c) = b.cross_attention_dim.filter(|&c| c != self.vit.hidden_size) {
            return Err(format!(
                "backbone.cross_attention_dim {c} differs from the image tokenizer's hidden size {}",
                self.vit.hidden_size
            ));
        }
        if p.in_channels != t.num_channels {
            return Err(format!(
                "post_processor.in_channels {} differs from tokenizer.num_channels {}",
                p.in_channels, t.num_channels
            ));
        }
        let features = match self.renderer.feature_reduction {
            FeatureReduction::Concat => 3 * p.out_channels,
            FeatureReduction::Mean => p.out_channels,
        };
        if d.in_channels != features {
            return Err(format!(
                "decoder.in_channels {} differs from the {features} triplane features the renderer \
                 hands it ({:?} of post_processor.out_channels {})",
                d.in_channels, self.renderer.feature_reduction, p.out_channels
            ));
        }
        if self.cond_image_size < self.vit.patch_size {
            return Err(format!(
                "cond_image_size {} is smaller than one ViT patch ({})",
                self.cond_image_size, self.vit.patch_size
            ));
        }
        Ok(())
    }
}

fn backbone(s: &Section) -> Result<BackboneConfig, Problem> {
    let norm_type = s.string("norm_type", Some("layer_norm"))?;
    if norm_type != "layer_norm" {
        return Err(s.unsupported("norm_type", &norm_type, "only layer_norm"));
    }
    for flag in ["only_cross_attention", "double_self_attention"] {
        if s.bool(flag, Some(false))? {
            return Err(s.unsupported(flag, "true", "TripoSR's blocks use neither"));
        }
    }
    let activation = s.string("activation_fn", Some("geglu"))?;
    let activation_fn = match activation.as_str() {
        "geglu" => FeedForwardKind::Geglu,
        "gelu" => FeedForwardKind::Gelu,
        "gelu-approximate" => FeedForwardKind::GeluApproximate,
        "geglu-approximate" => FeedForwardKind::GegluApproximate,
        other => {
            return Err(s.unsupported(
                "activation_fn",
                other,
                "geglu, gelu, gelu-approximate or geglu-approximate",
            ))
        }
    };
    let in_channels = s.optional_usize("in_channels")?.ok_or_else(|| {
        Problem::Invalid("backbone.in_channels is required (GroupNorm needs it)".to_owned())
    })?;
    // Dropout is the identity at inference; `out_channels` is never used by the authors'
    // forward (proj_out maps back to in_channels); the others only affect training.
    s.float("dropout", Some(0.0))?;
    s.optional_usize("out_channels")?;
    s.bool("upcast_attention", Some(false))?;
    s.bool("gradient_checkpointing", Some(false))?;
    let config = BackboneConfig {
        in_channels,
        num_attention_heads: s.usize(("num_attention_heads", Some(16)))?,
        attention_head_dim: s.usize(("attention_head_dim", Some(88)))?,
        num_layers: s.usize(("num_layers", Some(1)))?,
        norm_num_groups: s.usize(("norm_num_groups", Some(32)))?,
        cross_attention_dim: s.optional_usize("cross_attention_dim")?,
        attention_bias: s.bool("attention_bias", Some(false))?,
        activation_fn,
        norm_elementwise_affine: s.bool("norm_elementwise_affine", Some(true))?,
    };
    s.finish()?;
    Ok(config)
}

fn decoder(s: &Section) -> Result<DecoderConfig, Problem> {
    let activation = match s.string("activation", Some("relu"))?.as_str() {
        "relu" => MlpActivation::Relu,
        "silu" => MlpActivation::Silu,
        other => return Err(s.unsupported("activation", other, "relu or silu")),
    };
    // Initialisers only matter for training.
    s.optional_string("weight_init")?;
    s.optional_string("bias_init")?;
    let config = DecoderConfig {
        in_channels: s.usize(("in_channels", None))?,
        n_neurons: s.usize(("n_neurons", None))?,
        n_hidden_layers: s.usize(("n_hidden_layers", None))?,
        activation,
        bias: s.bool("bias", Some(true))?,
    };
    s.finish()?;
    Ok(config)
}

fn renderer(s: &Section) -> Result<RendererConfig, Problem> {
    let feature_reduction = match s.string("feature_reduction", Some("concat"))?.as_str() {
        "concat" => FeatureReduction::Concat,
        "mean" => FeatureReduction::Mean,
        other => return Err(s.unsupported("feature_reduction", other, "concat or mean")),
    };
    let activation = |key: &str, default: &str| -> Result<FieldActivation, Problem> {
        let Some(name) = s.optional_string_or(key, default)? else {
            return Ok(FieldActivation::Identity);
        };
        field_activation(&name).ok_or_else(|| {
            s.unsupported(
                key,
                &name,
                "none, exp, trunc_exp, sigmoid, tanh, softplus or relu",
            )
        })
    };
    let config = RendererConfig {
        radius: s.float("radius", None)? as f32,
        feature_reduction,
        density_activation: activation("density_activation", "trunc_exp")?,
        density_bias: s.float("density_bias", Some(-1.0))? as f32,
        color_activation: activation("color_activation", "sigmoid")?,
    };
    // Volume rendering only (orfeas extracts meshes, it does not render views).
    s.usize(("num_samples_per_ray", Some(128)))?;
    s.bool("randomized", Some(false))?;
    s.finish()?;
    if !(config.radius.is_finite() && config.radius > 0.0) {
        return Err(Problem::Invalid(format!(
            "renderer.radius {} is not a positive number",
            config.radius
        )));
    }
    Ok(config)
}

/// `tsr.utils.get_activation` (names lower-cased there too). `trunc_exp`, the dataclass
/// default, is not in that function (it would raise at the first query); its forward pass is
/// `exp` (threestudio's definition, which the default comes from), so it is accepted as such.
fn field_activation(name: &str) -> Option<FieldActivation> {
    Some(match name.to_ascii_lowercase().as_str() {
        "none" => FieldActivation::Identity,
        "exp" | "trunc_exp" => FieldActivation::Exp,
        "sigmoid" => FieldActivation::Sigmoid,
        "tanh" => FieldActivation::Tanh,
        "softplus" => FieldActivation::Softplus,
        "relu" => FieldActivation::Relu,
        _ => return None,
    })
}

/// Where [`TripoSrConfig::from_yaml`] failed: the YAML itself (reported against config.yaml),
/// or a file it points to (reported as is).
#[derive(Debug)]
enum Problem {
    Invalid(String),
    External(OrfeasError),
}

/// A mapping of the config with the keys read so far, so unknown keys can be refused as
/// OmegaConf's structured (struct-mode) merge refuses them.
struct Section<'a> {
    name: &'static str,
    entries: &'a [(String, Node)],
    read: std::cell::RefCell<Vec<String>>,
}

impl<'a> Section<'a> {
    fn new(name: &'static str, node: &'a Node) -> Result<Self, Problem> {
        match node {
            Node::Map(entries) => Ok(Self {
                name,
                entries,
                read: Default::default(),
            }),
            other => Err(Problem::Invalid(format!(
                "{} is {}, not a mapping",
                if name.is_empty() { "the file" } else { name },
                other.kind()
            ))),
        }
    }

    fn full(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn unsupported(&self, key: &str, value: &str, supported: &str) -> Problem {
        Problem::Invalid(format!(
            "{} = {value:?} is not supported ({supported})",
            self.full(key)
        ))
    }

    /// The value of `key`, `None` when absent; `???` (OmegaConf's MISSING) is an error.
    fn get(&self, key: &str) -> Result<Option<&'a Node>, Problem> {
        self.read.borrow_mut().push(key.to_owned());
        match self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
            Some(Node::Str(s)) if s == "???" => Err(Problem::Invalid(format!(
                "{} is ??? (a mandatory value left missing)",
                self.full(key)
            ))),
            other => Ok(other),
        }
    }

    fn required(&self, key: &str) -> Problem {
        Problem::Invalid(format!("{} is required", self.full(key)))
    }

    fn wrong(&self, key: &str, node: &Node, want: &str) -> Problem {
        Problem::Invalid(format!(
            "{} is {} ({node:?}), expected {want}",
            self.full(key),
            node.kind()
        ))
    }

    fn section(&self, key: &'static str) -> Result<Section<'a>, Problem> {
        let node = self.get(key)?.ok_or_else(|| self.required(key))?;
        Section::new(key, node)
    }

    /// An `int` field (OmegaConf's IntegerNode takes ints and integer strings, not floats or
    /// booleans), non-negative here.
    fn usize(&self, (key, default): (&str, Option<usize>)) -> Result<usize, Problem> {
        match self.get(key)? {
            None => default.ok_or_else(|| self.required(key)),
            Some(node) => self.to_usize(key, node),
        }
    }

    fn optional_usize(&self, key: &str) -> Result<Option<usize>, Problem> {
        match self.get(key)? {
            None | Some(Node::Null) => Ok(None),
            Some(node) => self.to_usize(key, node).map(Some),
        }
    }

    fn to_usize(&self, key: &str, node: &Node) -> Result<usize, Problem> {
        let value = match node {
            Node::Int(i) => Some(*i),
            Node::Str(s) => s.trim().parse().ok(),
            _ => None,
        };
        let value = value
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.wrong(key, node, "a non-negative integer"))?;
        if value > MAX_SIZE {
            return Err(Problem::Invalid(format!(
                "{} is {value}, more than {MAX_SIZE}: not a TripoSR size",
                self.full(key)
            )));
        }
        Ok(value)
    }

    /// A `float` field (ints and numeric strings convert).
    fn float(&self, key: &str, default: Option<f64>) -> Result<f64, Problem> {
        match self.get(key)? {
            None => default.ok_or_else(|| self.required(key)),
            Some(Node::Float(f)) => Ok(*f),
            Some(Node::Int(i)) => Ok(*i as f64),
            Some(node @ Node::Str(s)) => s
                .trim()
                .parse()
                .map_err(|_| self.wrong(key, node, "a number")),
            Some(node) => Err(self.wrong(key, node, "a number")),
        }
    }

    /// A `bool` field (OmegaConf's BooleanNode also takes yes/no/on/off/y/n strings and ints).
    fn bool(&self, key: &str, default: Option<bool>) -> Result<bool, Problem> {
        let node = match self.get(key)? {
            None => return default.ok_or_else(|| self.required(key)),
            Some(node) => node,
        };
        match node {
            Node::Bool(b) => Ok(*b),
            Node::Int(i) => Ok(*i != 0),
            Node::Str(s) => match s.to_ascii_lowercase().as_str() {
                "y" | "yes" | "on" | "true" => Ok(true),
                "n" | "no" | "off" | "false" => Ok(false),
                _ => Err(self.wrong(key, node, "a boolean")),
            },
            _ => Err(self.wrong(key, node, "a boolean")),
        }
    }

    /// A `str` field: scalars convert to their text.
    fn string(&self, key: &str, default: Option<&str>) -> Result<String, Problem> {
        match self.get(key)? {
            None => default.map(str::to_owned).ok_or_else(|| self.required(key)),
            Some(node) => self.to_string(key, node),
        }
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, Problem> {
        match self.get(key)? {
            None | Some(Node::Null) => Ok(None),
            Some(node) => self.to_string(key, node).map(Some),
        }
    }

    /// `Optional[str]` with a default: absent → `default`, null → `None`.
    fn optional_string_or(&self, key: &str, default: &str) -> Result<Option<String>, Problem> {
        match self.get(key)? {
            None => Ok(Some(default.to_owned())),
            Some(Node::Null) => Ok(None),
            Some(node) => self.to_string(key, node).map(Some),
        }
    }

    fn to_string(&self, key: &str, node: &Node) -> Result<String, Problem> {
        match node {
            Node::Str(s) => Ok(s.clone()),
            Node::Int(i) => Ok(i.to_string()),
            Node::Float(f) => Ok(format!("{f:?}")),
            Node::Bool(b) => Ok(if *b { "True" } else { "False" }.to_owned()),
            other => Err(self.wrong(key, other, "a string")),
        }
    }

    /// Every key present was read: an unknown one is an error, as in OmegaConf.
    fn finish(&self) -> Result<(), Problem> {
        let read = self.read.borrow();
        match self.entries.iter().find(|(k, _)| !read.contains(k)) {
            Some((k, _)) => Err(Problem::Invalid(format!(
                "unknown key {} (not a field of the authors' configuration)",
                self.full(k)
            ))),
            None => Ok(()),
        }
    }
}

/// The ViT configuration `pretrained_model_name_or_path` names: the published DINO offline, a
/// directory holding a transformers `config.json` (relative to config.yaml or absolute), else
/// that repository's snapshot in the Hugging Face cache.
fn vit_config(name: &str, dir: &Path) -> Result<VitConfig, Problem> {
    if name == DINO_VITB16 {
        return Ok(VitConfig::dino_vitb16());
    }
    let local = dir.join(name);
    let file = if local.join("config.json").is_file() {
        Some(local.join("config.json"))
    } else {
        crate::models::hf_cache_dir().and_then(|cache| {
            let repo = cache.join(format!("models--{}", name.replace('/', "--")));
            let revision = std::fs::read_to_string(repo.join("refs").join("main")).ok()?;
            let file = repo
                .join("snapshots")
                .join(revision.trim())
                .join("config.json");
            file.is_file().then_some(file)
        })
    };
    let file = file.ok_or_else(|| {
        Problem::External(OrfeasError::WeightsNotFound(format!(
            "image_tokenizer.pretrained_model_name_or_path is {name:?}: neither {} nor the Hugging \
             Face cache's {name} snapshot holds a config.json (only {DINO_VITB16} is known \
             without one)",
            local.join("config.json").display()
        )))
    })?;
    let invalid = |detail: String| {
        Problem::External(OrfeasError::WeightsInvalid {
            path: file.clone(),
            detail,
        })
    };
    let bytes =
        std::fs::read(&file).map_err(|source| Problem::External(OrfeasError::io(&file, source)))?;
    let text = String::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
    VitConfig::from_json(&text).map_err(invalid)
}

impl VitConfig {
    /// A transformers `ViTConfig` `config.json`; absent fields take 4.35's defaults.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| "not a JSON object".to_owned())?;
        let d = Self::transformers_defaults();
        let int = |key: &str, default: usize| -> Result<usize, String> {
            match obj.get(key) {
                None => Ok(default),
                Some(v) => match v.as_u64() {
                    Some(n) if n <= MAX_SIZE as u64 => Ok(n as usize),
                    Some(n) => Err(format!(
                        "{key} is {n}, more than {MAX_SIZE}: not a ViT size"
                    )),
                    None => Err(format!("{key} is {v}, expected a non-negative integer")),
                },
            }
        };
        let config = Self {
            hidden_size: int("hidden_size", d.hidden_size)?,
            num_hidden_layers: int("num_hidden_layers", d.num_hidden_layers)?,
            num_attention_heads: int("num_attention_heads", d.num_attention_heads)?,
            intermediate_size: int("intermediate_size", d.intermediate_size)?,
            hidden_act: match obj.get("hidden_act") {
                None => d.hidden_act,
                Some(v) => v
                    .as_str()
                    .ok_or_else(|| format!("hidden_act is {v}, expected a string"))?
                    .to_owned(),
            },
            layer_norm_eps: match obj.get("layer_norm_eps") {
                None => d.layer_norm_eps,
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("layer_norm_eps is {v}, expected a number"))?,
            },
            image_size: int("image_size", d.image_size)?,
            patch_size: int("patch_size", d.patch_size)?,
            num_channels: int("num_channels", d.num_channels)?,
            qkv_bias: match obj.get("qkv_bias") {
                None => d.qkv_bias,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("qkv_bias is {v}, expected a boolean"))?,
            },
        };
        config.check()?;
        Ok(config)
    }

    /// `ViTConfig()` in transformers 4.35: ViT-B/16 at 224², the same numbers as DINO's.
    fn transformers_defaults() -> Self {
        Self::dino_vitb16()
    }

    fn check(&self) -> Result<(), String> {
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu"
        ) {
            return Err(format!(
                "hidden_act {:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh or relu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_size == 0 || self.intermediate_size == 0 {
            return Err(format!(
                "hidden_size {} and intermediate_size {} must be positive",
                self.hidden_size, self.intermediate_size
            ));
        }
        if self.num_hidden_layers > MAX_LAYERS {
            return Err(format!(
                "num_hidden_layers is {}, more than {MAX_LAYERS} layers",
                self.num_hidden_layers
            ));
        }
        if self.patch_size == 0 || self.image_size < self.patch_size || self.num_channels == 0 {
            return Err(format!(
                "image_size {}, patch_size {}, num_channels {} do not make a patch grid",
                self.image_size, self.patch_size, self.num_channels
            ));
        }
        Ok(())
    }

    /// Side of the pre-training position grid (`image_size / patch_size`).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

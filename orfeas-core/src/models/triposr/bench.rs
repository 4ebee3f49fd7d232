//! The model's parts at the published size on random weights, for the speed benchmark
//! (`benches/src/bin/triposr_bench.rs`): the cost of a forward pass does not depend on the
//! weights' values, and the real ones (1.7 GB) cannot be downloaded where the benchmark runs.
//! Not part of the supported API.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::backbone::Transformer1D;
use super::config::TripoSrConfig;
use super::decoder::{internal, FieldDecoder};
use super::scene::{DensityGrid, SceneCode};
use super::triplane::{TriplaneTokenizer, TriplaneUpsample};
use crate::cancel::CancelToken;

/// `facebook/dino-vitb16` at the published 512² input: 1 + 32² tokens of width 768.
const IMAGE_TOKENS: (usize, usize) = (1025, 768);

/// Tokenizer, backbone, post-processor and decoder of the published `config.yaml`.
#[derive(Debug)]
pub struct RandomParts {
    /// Absent when only the field was asked for.
    model: Option<SceneModel>,
    decoder: FieldDecoder,
}

/// What makes the scene code.
#[derive(Debug)]
struct SceneModel {
    tokenizer: TriplaneTokenizer,
    backbone: Transformer1D,
    upsample: TriplaneUpsample,
    image_tokens: Tensor,
}

impl RandomParts {
    /// Random weights in the published shapes, on the CPU; the decoder alone unless
    /// `with_backbone` (building the 0.3 G backbone weights takes seconds).
    pub fn published(with_backbone: bool) -> crate::Result<Self> {
        let dev = Device::Cpu;
        let vb = VarBuilder::from_backend(Box::new(Random), DType::F32, dev.clone());
        let TripoSrConfig {
            tokenizer,
            backbone,
            post_processor: upsample,
            decoder,
            renderer,
            ..
        } = TripoSrConfig::published();
        let build = || -> candle_core::Result<Self> {
            let model = if with_backbone {
                Some(SceneModel {
                    tokenizer: TriplaneTokenizer::new(&tokenizer, vb.pp("tokenizer"))?,
                    backbone: Transformer1D::new(&backbone, vb.pp("backbone"))?,
                    upsample: TriplaneUpsample::new(&upsample, vb.pp("post_processor"))?,
                    image_tokens: Tensor::randn(
                        0f32,
                        1.0,
                        (1, IMAGE_TOKENS.0, IMAGE_TOKENS.1),
                        &dev,
                    )?,
                })
            } else {
                None
            };
            Ok(Self {
                model,
                decoder: FieldDecoder::new(&decoder, &renderer, vb.pp("decoder"), &dev)?,
            })
        };
        build().map_err(internal)
    }

    /// The backbone's blocks (0 without it).
    pub fn num_layers(&self) -> usize {
        self.model.as_ref().map_or(0, |m| m.backbone.num_layers())
    }

    /// Triplane tokens → backbone (against random image tokens) → post-processor, as the
    /// model runs them; `on_stage(name)` after the tokenizer's projection, every block and the
    /// upsampling, so the caller can time each.
    pub fn scene_code(&self, on_stage: &mut dyn FnMut(&str)) -> crate::Result<SceneCode> {
        let Some(m) = &self.model else {
            return Err(crate::error::OrfeasError::InvalidInput(
                "random parts built without the backbone".into(),
            ));
        };
        let mut run = || -> candle_core::Result<SceneCode> {
            let tokens = m.tokenizer.tokens(1)?;
            let mut hidden = m.backbone.project_in(&tokens)?;
            on_stage("project_in");
            for i in 0..m.backbone.num_layers() {
                hidden = m.backbone.block(i, &hidden, &m.image_tokens)?;
                on_stage("block");
            }
            let tokens = m.backbone.project_out(&hidden, &tokens)?;
            let planes = m.upsample.forward(&m.tokenizer.detokenize(&tokens)?)?;
            on_stage("upsample");
            let (_, _, channels, resolution, _) = planes.dims5()?;
            Ok(SceneCode {
                channels,
                resolution,
                values: planes.flatten_all()?.to_vec1()?,
            })
        };
        run().map_err(internal)
    }

    /// Random triplanes of the published size (`3 × 40 × 64²`), for timing the field alone.
    pub fn random_scene_code(&self) -> SceneCode {
        let (channels, resolution) = (40, 64);
        let values = (0..3 * channels * resolution * resolution)
            .map(|i: usize| ((i.wrapping_mul(2_654_435_761) >> 7) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        SceneCode {
            channels,
            resolution,
            values,
        }
    }

    /// The dense field, as the model's `density_grid`.
    pub fn density_grid(
        &self,
        code: &SceneCode,
        resolution: usize,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> crate::Result<DensityGrid> {
        self.decoder
            .density_grid(code, resolution, cancel, on_progress)
    }

    /// The activated colour at `points` (the vertex colours of a mesh).
    pub fn color(&self, code: &SceneCode, points: &[[f32; 3]]) -> crate::Result<Vec<[f32; 3]>> {
        self.decoder.color(code, points)
    }

    /// The activated density at `points`.
    pub fn density(&self, code: &SceneCode, points: &[[f32; 3]]) -> crate::Result<Vec<f32>> {
        self.decoder.density(code, points)
    }
}

/// Random values of the scale each tensor has after PyTorch's initialisation: matrices
/// uniform in ±1/√fan_in, norm weights near 1, biases and embeddings small.
struct Random;

impl SimpleBackend for Random {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let t = if name.ends_with("embeddings") {
            (Tensor::randn(0f32, 1.0, shape.clone(), dev)? / (dims[1] as f64).sqrt())?
        } else if dims.len() >= 2 {
            let bound = 1.0 / (dims[1..].iter().product::<usize>() as f32).sqrt();
            Tensor::rand(-bound, bound, shape.clone(), dev)?
        } else if name.ends_with("weight") {
            Tensor::rand(0.9f32, 1.1, shape.clone(), dev)?
        } else {
            Tensor::rand(-0.1f32, 0.1, shape.clone(), dev)?
        };
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights: {name} needs a shape")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// Full-size checks against the authors' code on published-size weights, run by hand:
/// `ORFEAS_TRIPOSR_FULL=DIR cargo test --release -p orfeas-core --lib full_size -- --ignored`,
/// where `DIR` holds `model.ckpt` (scripts/triposr_random_weights.py) and a
/// `reference.safetensors` of the same tensors as the tiny fixture's (`image_tokens`,
/// `backbone_tokens`, `scene_codes`, `points`, `density_act`, `color`, `field`) computed by the
/// authors' code from those weights (`scripts/triposr_full_size_reference.py` writes both).
#[cfg(test)]
mod full_size {
    use std::path::PathBuf;

    use super::super::fixture::relative_error;
    use super::*;
    use crate::kernels::with_kernels_disabled;

    fn inputs() -> (
        VarBuilder<'static>,
        std::collections::HashMap<String, Tensor>,
    ) {
        let dir = PathBuf::from(
            std::env::var_os("ORFEAS_TRIPOSR_FULL").expect("ORFEAS_TRIPOSR_FULL=DIR is needed"),
        );
        let dev = Device::Cpu;
        let vb =
            VarBuilder::from_pth(dir.join("model.ckpt"), DType::F32, &dev).expect("model.ckpt");
        let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), &dev)
            .expect("reference.safetensors");
        (vb, reference)
    }

    #[test]
    #[ignore]
    fn full_size_model_and_field_match_the_authors_code() {
        let (vb, reference) = inputs();
        let cfg = TripoSrConfig::published();
        let dev = Device::Cpu;
        let tokenizer =
            TriplaneTokenizer::new(&cfg.tokenizer, vb.pp("tokenizer")).expect("tokenizer");
        let backbone = Transformer1D::new(&cfg.backbone, vb.pp("backbone")).expect("backbone");
        let upsample =
            TriplaneUpsample::new(&cfg.post_processor, vb.pp("post_processor")).expect("upsample");
        let decoder = FieldDecoder::new(&cfg.decoder, &cfg.renderer, vb.pp("decoder"), &dev)
            .expect("decoder");
        let image_tokens = &reference["image_tokens"];
        let scene = || {
            let tokens = tokenizer.tokens(1).expect("tokens");
            let mut hidden = backbone.project_in(&tokens).expect("in");
            for i in 0..backbone.num_layers() {
                hidden = backbone.block(i, &hidden, image_tokens).expect("block");
            }
            let out = backbone.project_out(&hidden, &tokens).expect("out");
            let planes = upsample
                .forward(&tokenizer.detokenize(&out).expect("detokenize"))
                .expect("upsample");
            (out, planes)
        };
        let code = |planes: &Tensor| SceneCode {
            channels: 40,
            resolution: 64,
            values: planes
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .expect("values"),
        };
        let reference_code = code(&reference["scene_codes"]);
        let points: Vec<[f32; 3]> = reference["points"]
            .to_vec2::<f32>()
            .expect("points")
            .into_iter()
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        let r = reference["field"].dim(0).expect("R");
        let field = || {
            let grid = decoder
                .density_grid(&reference_code, r, &CancelToken::new(), &mut |_| {})
                .expect("grid");
            let density = decoder.density(&reference_code, &points).expect("density");
            let color = decoder.color(&reference_code, &points).expect("color");
            let n = points.len();
            (
                Tensor::from_vec(grid.values, (r, r, r), &dev).expect("t"),
                Tensor::from_vec(density, n, &dev).expect("t"),
                Tensor::from_vec(color.concat(), (n, 3), &dev).expect("t"),
            )
        };
        for (path, ((tokens, planes), (grid, density, color))) in [
            ("kernels", (scene(), field())),
            ("generic", with_kernels_disabled(|| (scene(), field()))),
        ] {
            for (name, got) in [
                ("backbone_tokens", tokens),
                ("scene_codes", planes),
                ("field", grid),
                ("density_act", density),
                ("color", color),
            ] {
                let err = relative_error(&got, &reference[name]);
                eprintln!("full size {name} ({path}): relative error {err:.2e}");
                assert!(err <= 1e-4, "{name} ({path}): {err}");
            }
        }
    }

    /// The whole model through its public API, from the PNG: run.py's conditioning image and the
    /// scene code (the ViT included, which the test above takes from the reference).
    #[test]
    #[ignore]
    fn full_size_conditioning_and_scene_code_match_the_authors_code() {
        let (_, reference) = inputs();
        let dir = PathBuf::from(std::env::var_os("ORFEAS_TRIPOSR_FULL").expect("DIR"));
        let png = image::open(dir.join("test_image.png"))
            .expect("test_image.png")
            .to_rgba8();
        let (w, h) = png.dimensions();
        let alpha: Vec<u8> = png.pixels().map(|p| p[3]).collect();
        let cond = super::super::conditioning_image(
            png.as_raw(),
            w,
            h,
            &alpha,
            super::super::FOREGROUND_RATIO,
            512,
        )
        .expect("conditioning image");
        let want = reference["cond_image"]
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("cond_image");
        let worst = cond
            .rgb
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("full size cond_image: max abs error {worst:.2e}");
        assert!(worst <= 1e-6, "cond_image: {worst}");

        let model = super::super::TripoSr::load(
            &crate::models::TripoSrWeights {
                config: dir.join("config.yaml"),
                weights: dir.join("model.ckpt"),
            },
            crate::Device::Cpu,
        )
        .expect("load");
        let code = model
            .scene_code(&cond, &CancelToken::new(), &mut |_| {})
            .expect("scene code");
        let got = Tensor::from_vec(code.values, reference["scene_codes"].shape(), &Device::Cpu)
            .expect("code");
        let err = relative_error(&got, &reference["scene_codes"]);
        eprintln!("full size scene_codes (from the PNG): relative error {err:.2e}");
        assert!(err <= 1e-4, "scene_codes: {err}");
    }
}

#!/usr/bin/env python3
"""Write randomly initialised TripoSR weights with the full published architecture, for benchmarks
and full-size exactness checks where the real weights (stabilityai/TripoSR) cannot be downloaded.
The cost of a forward pass does not depend on the weight values.

    PYTHONPATH=/path/to/transformers-4.35 python scripts/triposr_random_weights.py OUT_DIR \
        --triposr-repo /path/to/TripoSR [--seed N]

Writes into OUT_DIR:
    config.yaml               the published config.yaml, byte for byte
    model.ckpt                torch.save of the model's state dict (about 1.68 GB of float32), keys
                              as the published checkpoint's (transformers 4.35 ViT names)
    dino-vitb16/config.json   facebook/dino-vitb16's ViT configuration, which the authors' image
                              tokenizer downloads from the hub: here it is served from this file
    test_image.png            a 512x512 RGBA test object with a soft alpha edge: the benchmark
                              input, and the image the density bias is set on

The model is the authors' `TSR(cfg)` built from the checkout given by --triposr-repo (imported
from there, nothing copied; stand-ins replace rembg, imageio and torchmcubes, which `tsr` imports
but this script never calls), with the authors' initialisation, except that:
  - every parameter initialised to all ones or all zeros (norm affines, the ViT's biases) is
    given random values, so that a port that swaps or drops one of them shows it;
  - the field is made smooth, as a trained model's is: the learned triplane tokens are a smooth
    random pattern (4x4 random values per channel, bicubic-upsampled to 32x32, at the authors'
    scale) and the post processor's four 2x2 transposed-convolution taps are tied. With the
    authors' white-noise initialisation the R = 256 surface is noise: about 8.5 million
    triangles in thousands of pieces, which would make the colour query, not the field, the
    slowest stage. (The tiny test fixture keeps untied taps, so tap order is tested there.);
  - the decoder's density output is scaled by DENSITY_GAIN, so that the density spans orders of
    magnitude across the surface as a trained model's does (unscaled, it stays between 10 and 40
    over the whole cube, and a coarse-to-fine search for the surface would see no empty space);
  - the decoder's final density bias is set so that DENSITY_SHARE of the R = 256 extract_mesh
    grid for test_image.png is above the iso level 25, as for a real object.
Needs torch, numpy, pillow, omegaconf, einops and transformers 4.35.0.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image

from tsr_authors import CHUNK_SIZE, ISO_LEVEL, grid_density, import_tsr, run_py_preprocess, serve_local_vit_config

GRID_RESOLUTION = 256  # run.py's default --mc-resolution
DENSITY_SHARE = 0.10  # the share of the grid above ISO_LEVEL that the density bias aims at
DENSITY_GAIN = 8.0  # the scale of the decoder's density row (see the module docstring)

# The published config.yaml, byte for byte (the Rust benchmark and tests read the same file).
PUBLISHED_CONFIG_YAML = (
    Path(__file__).resolve().parent.parent / "orfeas-core/src/models/triposr/published_config.yaml"
).read_text()

# facebook/dino-vitb16's config.json (the values TripoSR's image tokenizer reads).
DINO_VITB16_CONFIG = {
    "architectures": ["ViTModel"],
    "attention_probs_dropout_prob": 0.0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 768,
    "image_size": 224,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "model_type": "vit",
    "num_attention_heads": 12,
    "num_channels": 3,
    "num_hidden_layers": 12,
    "patch_size": 16,
    "qkv_bias": True,
    "torch_dtype": "float32",
}




def test_image(size: int = 512) -> Image.Image:
    """A vase-like object with a handle: smooth colour bands, soft alpha edge, transparent margin."""
    y, x = (np.mgrid[0:size, 0:size].astype(np.float64) + 0.5) / size
    body_half_width = 0.20 + 0.09 * np.sin(np.pi * (y - 0.18) / 0.7) - 0.05 * np.exp(-((y - 0.22) / 0.05) ** 2)
    body = np.clip((body_half_width - np.abs(x - 0.47)) * size / 3.0, 0, 1)
    body *= np.clip((y - 0.16) * size / 3.0, 0, 1) * np.clip((0.88 - y) * size / 3.0, 0, 1)
    handle_ring = np.abs(np.hypot((x - 0.70) / 0.13, (y - 0.48) / 0.17) - 1.0)
    handle = np.clip((0.18 - handle_ring) * size * 0.13 / 3.0, 0, 1) * (x > 0.62)
    alpha = np.maximum(body, handle)
    shade = 0.55 + 0.45 * np.cos(np.pi * (x - 0.40) / 0.5)
    rgb = np.stack(
        [
            shade * (0.75 + 0.25 * np.sin(18 * y)),
            shade * (0.45 + 0.35 * (y > 0.5)),
            shade * (0.30 + 0.50 * np.clip(1.0 - 1.6 * np.abs(y - 0.35), 0, 1)),
        ],
        axis=-1,
    )
    rgba = np.concatenate([np.clip(rgb, 0, 1), alpha[..., None]], axis=-1)
    return Image.fromarray(np.round(rgba * 255).astype(np.uint8), mode="RGBA")




def perturb_constant_parameters(model, generator: torch.Generator) -> None:
    """Random values for every parameter initialised to all ones or all zeros."""
    with torch.no_grad():
        for parameter in model.parameters():
            if torch.all(parameter == 1):
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
            elif torch.all(parameter == 0):
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))


def smooth_field(model, generator: torch.Generator) -> None:
    """Smooth triplane tokens and tied upsampling taps (see the module docstring)."""
    with torch.no_grad():
        embeddings = model.tokenizer.embeddings  # [3, C, P, P]
        planes, channels, size, _ = embeddings.shape
        coarse = torch.randn(planes, channels, 4, 4, generator=generator)
        smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
        embeddings.copy_(smooth / smooth.std() / math.sqrt(channels))
        weight = model.post_processor.upsample.weight  # [C_in, C_out, 2, 2]
        # The mean of four taps has half their spread: doubling it keeps the authors' scale.
        weight.copy_(2 * weight.mean(dim=(2, 3), keepdim=True).expand_as(weight))


def grid_log_density(model, tsr, scene_code: torch.Tensor) -> torch.Tensor:
    """log(density_act) on extract_mesh's R^3 grid, queried in run.py's chunks."""
    return torch.log(grid_density(model, tsr, scene_code, GRID_RESOLUTION)).flatten()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--triposr-repo", type=Path, required=True, help="a checkout of VAST-AI-Research/TripoSR")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    tsr = import_tsr(args.triposr_repo.resolve())
    out = args.out_dir
    (out / "dino-vitb16").mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(PUBLISHED_CONFIG_YAML)
    (out / "dino-vitb16" / "config.json").write_text(json.dumps(DINO_VITB16_CONFIG, indent=2) + "\n")
    serve_local_vit_config(tsr, out)
    test_image().save(out / "test_image.png")

    cfg = OmegaConf.load(out / "config.yaml")
    OmegaConf.resolve(cfg)
    model = tsr.TSR(cfg).eval()
    model.renderer.set_chunk_size(CHUNK_SIZE)
    generator = torch.Generator().manual_seed(args.seed)
    perturb_constant_parameters(model, generator)
    smooth_field(model, generator)

    final_layer = model.decoder.layers[-1]
    with torch.no_grad():
        final_layer.weight[0].mul_(DENSITY_GAIN)
        # Place the level at the (1 - DENSITY_SHARE) quantile of the field: the final bias adds to
        # the density before `exp`, so it shifts log(density_act) by exactly its change.
        final_layer.bias[0] = 0.0
        image = run_py_preprocess(tsr, Image.open(out / "test_image.png"))
        scene_code = model([image], device="cpu")[0]
        log_density = grid_log_density(model, tsr, scene_code)
        rank = int(round(log_density.numel() * (1 - DENSITY_SHARE)))
        level_without_bias = float(torch.kthvalue(log_density, rank).values)
        final_layer.bias[0] = math.log(ISO_LEVEL) - level_without_bias
        share = float((log_density > level_without_bias).double().mean())

    state_dict = model.state_dict()
    torch.save(state_dict, out / "model.ckpt")
    names = list(state_dict)
    values = sum(tensor.numel() for tensor in state_dict.values())
    print(f"wrote {out}: {len(names)} tensors, {values / 1e6:.1f} M values ({4 * values / 1e9:.2f} GB float32)")
    print(f"final density bias {final_layer.bias[0].item():.6f}: {100 * share:.2f}% of the "
          f"{GRID_RESOLUTION}^3 grid for test_image.png is above {ISO_LEVEL:g} (from the field without "
          f"the bias, shifted; benches/triposr_reference.py measures it)")
    print("first keys: " + ", ".join(names[:10]))


if __name__ == "__main__":
    main()

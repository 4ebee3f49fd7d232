"""Writes a randomly initialised Depth Anything V2 model of the Small (or Base/Large)
architecture in the transformers layout (config.json + model.safetensors), for benchmarks and
end-to-end checks where the real weights cannot be downloaded. The cost of a forward does not
depend on the weight values.

    python da_make_weights.py OUT_DIR [small|base|large]
"""

import sys

import torch
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

SIZES = {  # hidden size, layers, heads, neck sizes, fusion size (as the -hf checkpoints)
    "small": (384, 12, 6, [48, 96, 192, 384], 64),
    "base": (768, 12, 12, [96, 192, 384, 768], 128),
    "large": (1024, 24, 16, [256, 512, 1024, 1024], 256),
}


def main() -> None:
    out = sys.argv[1]
    hidden, layers, heads, neck, fusion = SIZES[sys.argv[2] if len(sys.argv) > 2 else "small"]
    step = layers // 4
    backbone = Dinov2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, mlp_ratio=4,
        image_size=518, patch_size=14, layerscale_value=1.0,
        out_indices=[step, 2 * step, 3 * step, 4 * step], apply_layernorm=True, reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=hidden, reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=neck, fusion_hidden_size=fusion, head_hidden_size=32, depth_estimation_type="relative",
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    print(f"wrote {out} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write the reference tensors of the by-hand full-size check (orfeas-core, module
`models::triposr::bench`, test `full_size_model_and_field_match_the_authors_code`): what the
authors' code computes from published-size weights, in the tiny fixture's names.

    PYTHONPATH=/path/to/transformers-4.35 python scripts/triposr_full_size_reference.py \
        WEIGHTS_DIR OUT_DIR --triposr-repo /path/to/TripoSR [--field-resolution 40]
    ORFEAS_TRIPOSR_FULL=OUT_DIR cargo test --release -p orfeas-core --lib full_size -- --ignored

WEIGHTS_DIR is what scripts/triposr_random_weights.py writes (config.yaml, model.ckpt,
dino-vitb16/config.json, test_image.png). OUT_DIR receives reference.safetensors and a link to
WEIGHTS_DIR's config.yaml, model.ckpt and test_image.png:
    cond_image       [512, 512, 3]    the image processor's output (run.py's preprocessing)
    image_tokens     [1, 1025, 768]   the ViT's last hidden state of the conditioning image
    backbone_tokens  [1, 1024, 3072]  Transformer1D's output
    scene_codes      [1, 3, 40, 64, 64]
    points           [N, 3]           seeded points inside and around the renderer's cube
    density_act, color                query_triplane at those points
    field            [R, R, R]        density_act on extract_mesh's grid
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from tsr_authors import CHUNK_SIZE, forward_steps, grid_density, import_tsr, run_py_preprocess, serve_local_vit_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--triposr-repo", type=Path, required=True, help="a checkout of VAST-AI-Research/TripoSR")
    parser.add_argument("--field-resolution", type=int, default=40)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()

    tsr = import_tsr(args.triposr_repo.resolve())
    weights_dir = args.weights_dir.resolve()
    serve_local_vit_config(tsr, weights_dir)
    model = tsr.TSR.from_pretrained(str(weights_dir), config_name="config.yaml", weight_name="model.ckpt").eval()
    model.renderer.set_chunk_size(CHUNK_SIZE)

    image = run_py_preprocess(tsr, Image.open(weights_dir / "test_image.png"))
    radius = model.renderer.cfg.radius
    rng = np.random.default_rng(args.seed)
    # Mostly inside the cube; a tenth just outside it, where grid_sample blends in its zero padding.
    points = rng.uniform(-radius, radius, size=(args.points, 3))
    points[: args.points // 10] *= 1.08
    points = torch.from_numpy(points.astype(np.float32))
    with torch.no_grad():
        rgb_cond = model.image_processor(image, model.cfg.cond_image_size)
        references = {"cond_image": rgb_cond[0]}
        references.update(forward_steps(model, rgb_cond))
        scene_code = references["scene_codes"][0]
        queried = model.renderer.query_triplane(model.decoder, points, scene_code)
        references["points"] = points
        references["density_act"] = queried["density_act"][:, 0]
        references["color"] = queried["color"]
        references["field"] = grid_density(model, tsr, scene_code, args.field_resolution)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float32).contiguous() for k, v in references.items()}, args.out_dir / "reference.safetensors")
    for name in ("config.yaml", "model.ckpt", "test_image.png"):
        link = args.out_dir / name
        if not link.exists():
            link.symlink_to(weights_dir / name)
    for name, tensor in references.items():
        print(f"  {name:16} {list(tensor.shape)}")


if __name__ == "__main__":
    main()

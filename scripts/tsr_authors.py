"""What orfeas's TripoSR scripts share: the authors' package imported from a checkout, and the
steps of their run.py / extract_mesh that the fixture, the random full-size weights and the
reference benchmark all repeat. Nothing of the TripoSR repository is copied here.

Used by scripts/triposr_random_weights.py, benches/triposr_reference.py and
orfeas-core/tests/fixtures/triposr/make_fixtures.py (each puts this folder on sys.path).
"""

import sys
import types
from pathlib import Path

import numpy as np
from einops import rearrange
from PIL import Image

ISO_LEVEL = 25.0  # extract_mesh's threshold
CHUNK_SIZE = 8192  # run.py's default --chunk-size
FOREGROUND_RATIO = 0.85  # run.py's default --foreground-ratio


def import_tsr(repo: Path) -> types.SimpleNamespace:
    """Import the authors' package from a checkout, with stand-ins for the imports it cannot use
    (rembg, imageio, torchmcubes: `tsr` imports them, these scripts never call them)."""

    def not_available(*_args, **_kwargs):
        raise RuntimeError("a stand-in module was called: the script must not depend on it")

    def stand_in_attribute(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return not_available

    for name in ("rembg", "imageio", "torchmcubes"):
        stand_in = types.ModuleType(name)
        stand_in.__getattr__ = stand_in_attribute
        sys.modules[name] = stand_in
    sys.path.insert(0, str(repo))
    import tsr.models.tokenizers.image as image_tokenizer_module
    import tsr.system
    import tsr.utils

    return types.SimpleNamespace(TSR=tsr.system.TSR, utils=tsr.utils, image_tokenizer_module=image_tokenizer_module)


def run_py_preprocess(tsr, image: Image.Image) -> Image.Image:
    """run.py's preprocessing of an image with real alpha (its rembg step passes it through)."""
    image = tsr.utils.remove_background(image, None)
    image = tsr.utils.resize_foreground(image, FOREGROUND_RATIO)
    pixels = np.array(image).astype(np.float32) / 255.0
    pixels = pixels[:, :, :3] * pixels[:, :, 3:4] + (1 - pixels[:, :, 3:4]) * 0.5
    return Image.fromarray((pixels * 255.0).astype(np.uint8))


def grid_density(model, tsr, scene_code, resolution: int):
    """density_act on extract_mesh's R^3 grid, as [R, R, R] indexed [x][y][z]."""
    model.set_marching_cubes_resolution(resolution)
    helper = model.isosurface_helper
    radius = model.renderer.cfg.radius
    positions = tsr.utils.scale_tensor(helper.grid_vertices, helper.points_range, (-radius, radius))
    density = model.renderer.query_triplane(model.decoder, positions, scene_code)["density_act"]
    return density.reshape(resolution, resolution, resolution)


def forward_steps(model, rgb_cond) -> dict:
    """TSR.forward after its image processor, one step at a time (rgb_cond: [B, S, S, 3])."""
    images = rearrange(rgb_cond[:, None], "B Nv H W C -> B Nv C H W", Nv=1)
    image_tokens = rearrange(model.image_tokenizer(images), "B Nv C Nt -> B (Nv Nt) C", Nv=1)
    backbone_tokens = model.backbone(model.tokenizer(rgb_cond.shape[0]), encoder_hidden_states=image_tokens)
    scene_codes = model.post_processor(model.tokenizer.detokenize(backbone_tokens))
    return {"image_tokens": image_tokens, "backbone_tokens": backbone_tokens, "scene_codes": scene_codes}


def serve_local_vit_config(tsr, config_dir: Path) -> None:
    """Make DINOSingleImageTokenizer read `<config_dir>/<name>/config.json` instead of the hub,
    where `<name>` is the last part of its `pretrained_model_name_or_path` (`facebook/dino-vitb16`
    is read from `<config_dir>/dino-vitb16/`)."""

    def local_download(repo_id: str, filename: str, **_kwargs) -> str:
        return str(config_dir / repo_id.split("/")[-1] / filename)

    tsr.image_tokenizer_module.hf_hub_download = local_download

#!/usr/bin/env python3
"""The TripoSR reference pipeline in PyTorch on the CPU, timed stage by stage, for comparison
with orfeas on the same machine and the same number of threads.

    PYTHONPATH=/path/to/transformers-4.35 python benches/triposr_reference.py WEIGHTS_DIR IMAGE \
        --triposr-repo /path/to/TripoSR --threads N --resolution R [--dump DIR] [--json]

WEIGHTS_DIR holds config.yaml and model.ckpt (scripts/triposr_random_weights.py writes random ones
with the published architecture, and a 512x512 test_image.png) and, for the image tokenizer's
configuration, a folder named after the last part of
`image_tokenizer.pretrained_model_name_or_path` (`dino-vitb16/config.json`, or `vit/config.json`
for the tiny test fixture): the authors' tokenizer would fetch it from the hub. IMAGE must have a
real alpha channel (run.py removes the background of other images with rembg, which is not used
here).

Stages, as run.py and TSR.extract_mesh run them (the renderer's chunk size is 8192, run.py's
default):
    load        TSR.from_pretrained (not part of the total), then one einops call, whose first
                call imports torch._dynamo (several seconds) and would otherwise land in "model"
    preprocess  run.py's preprocessing: remove_background (passes images with alpha through),
                resize_foreground(0.85), composite on grey 0.5, 8-bit
    model       model([image], device="cpu"): image processor, ViT, backbone, triplanes
    field       density_act on the R^3 extract_mesh grid
    surface     marching cubes of (density - 25) at level 0. Upstream uses torchmcubes, which is
                not on PyPI: this uses scikit-image's marching_cubes on the same field and level
                (its default method, no padding, as upstream), then scales the vertices to the
                cube as extract_mesh does
    color       the colour query at the vertices
    mesh        trimesh.Trimesh(vertices, faces, vertex_colors), as extract_mesh builds it
    total       preprocess + model + field + surface + color + mesh

--dump DIR writes cond_image.npy (float32 [S, S, 3]: the image processor's output),
scene_codes.npy (float32 [1, 3, C, H, W]) and field.npy (float32 [R, R, R], density_act indexed
[x][y][z]), for exactness checks against orfeas at full size; the dumps are made outside the timed
stages. Prints a readable summary, or one JSON document with --json. Each stage has its wall-clock
and CPU seconds; the load average before and after the run is part of the output: wall-clock
timings on a busy machine are noisy.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import einops
import numpy as np
import skimage
import skimage.measure
import torch
import trimesh
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from tsr_authors import CHUNK_SIZE, ISO_LEVEL, grid_density, import_tsr, run_py_preprocess, serve_local_vit_config  # noqa: E402






class Stopwatch:
    """Wall-clock seconds per stage, and the process's CPU seconds (all threads): on a busy
    machine CPU seconds / threads estimates what the wall clock would read on an idle one."""

    def __init__(self):
        self.seconds = {}
        self.cpu_seconds = {}

    def time(self, stage: str, work):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = work()
        self.seconds[stage] = time.perf_counter() - start
        self.cpu_seconds[stage] = time.process_time() - cpu_start
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights_dir", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("--triposr-repo", type=Path, required=True, help="a checkout of VAST-AI-Research/TripoSR")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--resolution", type=int, default=256, help="marching-cubes grid (run.py: 256)")
    parser.add_argument("--dump", type=Path, help="write cond_image.npy, scene_codes.npy, field.npy here")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    load_before = os.getloadavg()
    tsr = import_tsr(args.triposr_repo.resolve())
    weights_dir = args.weights_dir.resolve()
    serve_local_vit_config(tsr, weights_dir)
    clock = Stopwatch()

    def load():
        model = tsr.TSR.from_pretrained(str(weights_dir), config_name="config.yaml", weight_name="model.ckpt")
        model.renderer.set_chunk_size(CHUNK_SIZE)
        return model.to("cpu").eval()

    model = clock.time("load", load)
    # einops imports torch._dynamo (seconds) on its first call: a one-time import, not model work.
    einops.rearrange(torch.zeros(1, 1), "a b -> b a")
    radius = model.renderer.cfg.radius
    resolution = args.resolution

    image = clock.time("preprocess", lambda: run_py_preprocess(tsr, Image.open(args.image)))
    with torch.no_grad():
        scene_codes = clock.time("model", lambda: model([image], device="cpu"))
        scene_code = scene_codes[0]

        density = clock.time("field", lambda: grid_density(model, tsr, scene_code, resolution))

        def surface():
            level = density - ISO_LEVEL
            vertices, faces, _normals, _values = skimage.measure.marching_cubes(level.numpy(), 0.0)
            v_pos = torch.from_numpy(vertices.astype(np.float32)) / (resolution - 1.0)
            v_pos = tsr.utils.scale_tensor(v_pos, model.isosurface_helper.points_range, (-radius, radius))
            return v_pos, torch.from_numpy(faces.astype(np.int64))

        v_pos, t_pos_idx = clock.time("surface", surface)
        color = clock.time("color", lambda: model.renderer.query_triplane(model.decoder, v_pos, scene_code)["color"])
    mesh = clock.time(
        "mesh",
        lambda: trimesh.Trimesh(vertices=v_pos.numpy(), faces=t_pos_idx.numpy(), vertex_colors=color.numpy()),
    )
    for totals in (clock.seconds, clock.cpu_seconds):
        totals["total"] = sum(totals[s] for s in ("preprocess", "model", "field", "surface", "color", "mesh"))
    load_after = os.getloadavg()

    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        cond_image = model.image_processor(image, model.cfg.cond_image_size)[0]
        np.save(args.dump / "cond_image.npy", cond_image.numpy().astype(np.float32))
        np.save(args.dump / "scene_codes.npy", scene_codes.numpy().astype(np.float32))
        field_values = density.numpy().astype(np.float32)
        np.save(args.dump / "field.npy", field_values)

    report = {
        "pipeline": "TripoSR reference (PyTorch, CPU)",
        "weights_dir": str(weights_dir),
        "image": str(args.image),
        "threads": args.threads,
        "interop_threads": 1,
        "resolution": resolution,
        "chunk_size": CHUNK_SIZE,
        "seconds": {stage: round(value, 3) for stage, value in clock.seconds.items()},
        "cpu_seconds": {stage: round(value, 3) for stage, value in clock.cpu_seconds.items()},
        "triangles": int(len(mesh.faces)),
        "vertices": int(len(mesh.vertices)),
        "marching_cubes_triangles": int(t_pos_idx.shape[0]),
        "field_share_above_level": float((density > ISO_LEVEL).double().mean()),
        "surface_implementation": f"skimage.measure.marching_cubes {skimage.__version__} (torchmcubes is not on PyPI)",
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'stage':>10}  {'wall s':>8}  {'CPU s':>8}")
    for stage, value in report["seconds"].items():
        print(f"{stage:>10}  {value:8.3f}  {report['cpu_seconds'][stage]:8.3f}")
    print(f"triangles {report['triangles']} (marching cubes: {report['marching_cubes_triangles']}), "
          f"vertices {report['vertices']}, field above {ISO_LEVEL:g}: {100 * report['field_share_above_level']:.2f}%")
    print(f"threads {args.threads}, R = {resolution}, load average {report['load_average_before']} -> "
          f"{report['load_average_after']} on {report['cpu_count']} CPUs")


if __name__ == "__main__":
    main()

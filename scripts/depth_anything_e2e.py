"""End-to-end check of the Depth Anything path against the reference, as a new user would run it.

With a transformers-layout weights directory of the Small architecture (random weights, made by
benches/da_make_weights.py when WEIGHTS_DIR does not exist), runs

    orfeas generate PHOTO --depth depth-anything --weights WEIGHTS_DIR --format depth.npy,stl --quality high

and compares `<stem>.depth.npy` with transformers on the same file:
`DPTImageProcessor` → `DepthAnythingForDepthEstimation` → `post_process_depth_estimation`
(target size = the photo's size). `high` runs the model at 518, the processor's default.
Reports the max abs error relative to the reference's range; fails above 1e-3. Needs a Python with
torch + transformers (never run in CI: torch is 3 GB):

    python scripts/depth_anything_e2e.py ORFEAS_BIN PHOTO [WEIGHTS_DIR]
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation, DPTImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = 1e-3


def main() -> int:
    orfeas, photo = sys.argv[1], sys.argv[2]
    weights = sys.argv[3] if len(sys.argv) > 3 else os.path.join(tempfile.gettempdir(), "orfeas-da-small-random")
    if not os.path.exists(os.path.join(weights, "model.safetensors")):
        subprocess.run([sys.executable, os.path.join(HERE, "..", "benches", "da_make_weights.py"), weights, "small"], check=True)
    out = tempfile.mkdtemp(prefix="orfeas-da-e2e-")
    cmd = [orfeas, "generate", photo, "-o", out, "--depth", "depth-anything", "--weights", weights,
           "--format", "depth.npy,stl", "--quality", "high", "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout, run.stderr, file=sys.stderr)
        return 1
    summary = json.loads(run.stdout)
    job = summary["jobs"][0]
    assert job["status"] == "complete" and job["depth"] == "depth-anything" and job["watertight"], job
    npy = next(p for p in job["outputs"] if p.endswith(".depth.npy"))
    stl = next(p for p in job["outputs"] if p.endswith(".stl"))
    ours = np.load(npy)

    image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
    processor = DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=Image.BICUBIC, do_pad=False,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    try:  # the processor shipped with the weights, when there is one, must agree with the above
        processor = AutoImageProcessor.from_pretrained(weights)
    except (OSError, ValueError):
        pass
    model = DepthAnythingForDepthEstimation.from_pretrained(weights).eval()
    with torch.inference_mode():
        inputs = processor(images=image, return_tensors="pt")
        outputs = model(**inputs)
        post = processor.post_process_depth_estimation(outputs, target_sizes=[(image.height, image.width)])
    reference = post[0]["predicted_depth"].float().numpy()

    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    span = float(reference.max() - reference.min())
    err = float(np.abs(ours - reference).max()) / span
    mean_err = float(np.abs(ours - reference).mean()) / span
    print(json.dumps({"photo": photo, "shape": list(ours.shape), "model_input": list(inputs["pixel_values"].shape),
                      "max_abs_error_relative": err, "mean_abs_error_relative": mean_err,
                      "reference_range": [float(reference.min()), float(reference.max())],
                      "triangles": job["triangles"], "stl": stl, "seconds": job["seconds"]}))
    return 0 if err <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

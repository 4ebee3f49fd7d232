"""PyTorch (transformers) side of benches/depth_anything_compare.sh: the same weights directory,
the same input shape and thread count as `da_forward`, timed the same way (median of RUNS after
one warm-up, inference mode). Prints one JSON line.

    python da_torch.py WEIGHTS_DIR [SIZE [RUNS [THREADS]]]
"""

import json
import statistics
import sys
import time

import torch
from transformers import DepthAnythingForDepthEstimation


def main() -> None:
    weights = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 518
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    if len(sys.argv) > 4:
        torch.set_num_threads(int(sys.argv[4]))
    model = DepthAnythingForDepthEstimation.from_pretrained(weights).eval()
    values = (torch.arange(3 * size * size) * 7919 % 1000).float() / 500.0 - 1.0
    x = values.reshape(1, 3, size, size)
    with torch.inference_mode():
        t = time.perf_counter()
        out = model(pixel_values=x).predicted_depth
        warm = time.perf_counter() - t
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            model(pixel_values=x)
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"impl": "pytorch", "size": size, "threads": torch.get_num_threads(), "warmup_s": round(warm, 3),
                      "median_s": round(med, 3), "images_per_s": round(1 / med, 3), "out_shape": list(out.shape),
                      "runs": runs, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

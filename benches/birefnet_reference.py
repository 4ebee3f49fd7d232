#!/usr/bin/env python3
"""The authors' BiRefNet inference in PyTorch on the CPU, timed, for comparison with orfeas on the
same machine and the same number of threads.

    python benches/birefnet_reference.py --birefnet-src /path/to/BiRefNet --weights DIR \
        --image PNG [--size lite|general] [--threads 2] [--runs 3] [--resolution 1024]

--birefnet-src is a checkout of https://github.com/ZhengPeng7/BiRefNet at 25cb930 (imported from a
temporary copy, see scripts/birefnet_random_weights.py, whose loader this uses). DIR holds
model.safetensors in the published layout (the real ZhengPeng7/BiRefNet_lite file, or random
weights from scripts/birefnet_random_weights.py); it is loaded strictly. As in the authors'
tutorials/BiRefNet_inference.ipynb, in float32 (the notebook's autocast is CUDA-only):

    load         build BiRefNet(bb_pretrained=False) (imports included), read model.safetensors,
                 load_state_dict(strict=True), eval()
    preprocess   Image.open + convert('RGB'), Resize((1024, 1024)), ToTensor, Normalize(ImageNet)
    forward      model(x)[-1].sigmoid() under torch.no_grad()
    postprocess  ToPILImage()(pred) and .resize(image.size) (PIL's default BICUBIC for mode L)

Each per-photo stage is timed over --runs runs after one warm-up run (the warm-up's times are
reported separately); the medians are the headline numbers. Prints one line of JSON: the times
(seconds), the process's peak RSS (MiB, ru_maxrss), threads, torch version, and the load average
before and after (wall-clock timings on a busy machine are noisy; cpu_s/threads estimates an
idle machine's wall clock).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'scripts'))


def timed(work):
    t, c = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - t, time.process_time() - c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--birefnet-src', required=True, type=Path)
    ap.add_argument('--weights', required=True, type=Path)
    ap.add_argument('--image', required=True, type=Path)
    ap.add_argument('--size', choices=['lite', 'general'], default='lite')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--resolution', type=int, default=1024)
    args = ap.parse_args()
    weights = args.weights.resolve() / 'model.safetensors'
    image_path = args.image.resolve()
    load_before = os.getloadavg()

    t0, c0 = time.perf_counter(), time.process_time()
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from PIL import Image
    from safetensors.torch import load_file
    from torchvision import transforms
    from birefnet_random_weights import build_model
    model = build_model(args.birefnet_src, args.size)
    sd = load_file(str(weights))
    model.load_state_dict(sd, strict=True)
    del sd
    model.eval()
    load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    transform_image = transforms.Compose([
        transforms.Resize((args.resolution, args.resolution)),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])

    def preprocess():
        image = Image.open(image_path)
        image = image.convert('RGB') if image.mode != 'RGB' else image
        return image, transform_image(image).unsqueeze(0)

    def forward(x):
        with torch.no_grad():
            return model(x)[-1].sigmoid()

    def postprocess(pred, size):
        return transforms.ToPILImage()(pred[0].squeeze()).resize(size)

    stages = {'preprocess': [], 'forward': [], 'postprocess': []}
    cpu = {'forward': []}
    warmup = {}
    for run in range(args.runs + 1):
        (image, x), pre_s, _ = timed(preprocess)
        pred, fwd_s, fwd_cpu = timed(lambda: forward(x))
        _mask, post_s, _ = timed(lambda: postprocess(pred, image.size))
        if run == 0:
            warmup = {'preprocess_s': pre_s, 'forward_s': fwd_s, 'postprocess_s': post_s}
            continue
        stages['preprocess'].append(pre_s)
        stages['forward'].append(fwd_s)
        stages['postprocess'].append(post_s)
        cpu['forward'].append(fwd_cpu)

    med = {k: statistics.median(v) for k, v in stages.items()}
    summary = {
        'bench': 'birefnet_reference', 'size': args.size, 'bb': model.config.bb,
        'resolution': args.resolution, 'image': image_path.name, 'image_size': list(image.size),
        'threads': args.threads, 'runs': args.runs,
        'load_s': round(load_s, 3), 'load_cpu_s': round(load_cpu_s, 3),
        'preprocess_s': round(med['preprocess'], 3),
        'forward_s': round(med['forward'], 3),
        'forward_cpu_s': round(statistics.median(cpu['forward']), 3),
        'postprocess_s': round(med['postprocess'], 3),
        'per_photo_s': round(med['preprocess'] + med['forward'] + med['postprocess'], 3),
        'forward_runs_s': [round(v, 3) for v in stages['forward']],
        'warmup': {k: round(v, 3) for k, v in warmup.items()},
        'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        'torch': torch.__version__, 'cpu': platform.processor() or platform.machine(),
        'loadavg_before': [round(v, 2) for v in load_before],
        'loadavg_after': [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary))


if __name__ == '__main__':
    main()

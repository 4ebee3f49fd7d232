#!/usr/bin/env python3
"""Batch throughput from Python against the Rust CLI, side by side, on the same inputs.

    python benches/python_throughput.py --cli target/release/orfeas [--images 24] [--repeat 5]

Needs the `orfeas` package installed in the running interpreter (same cargo profile as the
CLI binary for a fair comparison) plus numpy and Pillow. Makes IMAGES deterministic 1024x768
photo-like PNGs (smooth shapes + texture + noise, a dark border so `auto` picks `inflate`),
then, alternating the three so load drifts hit all of them alike, REPEAT times each:

  cli        `orfeas generate DIR -o OUT --format stl --quality Q --slots S --json` (process wall time)
  py-api     `orfeas.BatchProcessor(slots=S).run([DIR], OUT, ...)` in this process (wall time,
             processor creation included, interpreter start excluded)
  py-module  `python -m orfeas generate ...` with the same flags as `cli` (process wall time)

and prints medians, images/s and the ratios (Python time / CLI time) as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
from PIL import Image

import orfeas


def make_inputs(directory: Path, count: int) -> None:
    h, w = 768, 1024
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        rng = np.random.default_rng(i)
        img = np.full((h, w, 3), 18.0, np.float32)
        cx, cy, r = w * (0.4 + 0.2 * rng.random()), h * (0.4 + 0.2 * rng.random()), min(h, w) * (0.3 + 0.08 * rng.random())
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        shade = 120 + 80 * np.sin(x / (25 + 10 * rng.random())) * np.cos(y / (30 + 10 * rng.random()))
        for c in range(3):
            img[..., c] = np.where(inside, shade * (0.7 + 0.15 * c) + rng.normal(0, 12, (h, w)), img[..., c])
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(directory / f"img{i:03d}.png", compress_level=1)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True, help="path of the orfeas binary")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quality", default="medium")
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--format", default="stl")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="orfeas-pybench-"))
    try:
        inputs = work / "inputs"
        inputs.mkdir()
        make_inputs(inputs, args.images)
        flags = ["--format", args.format, "--quality", args.quality, "--slots", str(args.slots)]

        def fresh(name: str) -> Path:
            out = work / name
            shutil.rmtree(out, ignore_errors=True)
            return out

        def cli() -> None:
            out = fresh("cli")
            proc = subprocess.run([args.cli, "generate", str(inputs), "-o", str(out), *flags, "--json"], capture_output=True, text=True, check=True)
            assert json.loads(proc.stdout)["complete"] == args.images

        def py_api() -> None:
            out = fresh("api")
            results = orfeas.BatchProcessor(slots=args.slots).run([inputs], out, formats=args.format, quality=args.quality)
            assert sum(r.ok for r in results) == args.images

        def py_module() -> None:
            out = fresh("module")
            proc = subprocess.run([sys.executable, "-m", "orfeas", "generate", str(inputs), "-o", str(out), *flags, "--json"], capture_output=True, text=True, check=True)
            assert json.loads(proc.stdout)["complete"] == args.images

        runners: Dict[str, Callable[[], None]] = {"cli": cli, "py-api": py_api, "py-module": py_module}
        for fn in runners.values():  # warm-up: page cache, lazy initialisation
            fn()
        times: Dict[str, List[float]] = {name: [] for name in runners}
        for _ in range(args.repeat):
            for name, fn in runners.items():
                times[name].append(timed(fn))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cli_median = statistics.median(times["cli"])
    print(f"{args.images} images 1024x768, --quality {args.quality}, --slots {args.slots}, --format {args.format}, "
          f"{args.repeat} runs each (medians), {os.cpu_count()} CPUs, orfeas {orfeas.__version__}")
    print()
    print("| runner | median s | min s | max s | images/s | time / cli |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} | {min(values):.3f} | {max(values):.3f} | {args.images / med:.2f} | {med / cli_median:.3f} |")


if __name__ == "__main__":
    main()

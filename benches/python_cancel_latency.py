#!/usr/bin/env python3
"""How promptly Ctrl-C stops a running batch from Python.

    python benches/python_cancel_latency.py [--runs 5] [--quality high] [--slots 4]

Runs a batch of 32 noisy 1024x1024 images; once every slot is busy, a helper thread waits a
random 0.2-1.0 s and delivers SIGINT to the main thread (`_thread.interrupt_main`, what Ctrl-C
does). Reports the time from the signal to `KeyboardInterrupt` reaching the caller — by then
every slot has stopped (checked) — as min / median / max over the runs.
"""

from __future__ import annotations

import _thread
import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

import orfeas


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quality", default="high")
    ap.add_argument("--slots", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "noise.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(image)
        proc = orfeas.BatchProcessor(slots=args.slots)
        latencies = []
        for run in range(args.runs):
            sent = [0.0]

            def interrupt() -> None:
                while proc.busy_slots < args.slots:
                    time.sleep(0.005)
                time.sleep(random.uniform(0.2, 1.0))
                sent[0] = time.perf_counter()
                _thread.interrupt_main()

            threading.Thread(target=interrupt, daemon=True).start()
            try:
                proc.run([image] * 32, Path(tmp) / f"out{run}", quality=args.quality)
                raise SystemExit("the batch finished before the interrupt; use more or larger images")
            except KeyboardInterrupt:
                latencies.append(time.perf_counter() - sent[0])
            assert proc.busy_slots == 0 and proc.queued == 0
    print(f"Ctrl-C to KeyboardInterrupt (slots stopped), {args.runs} runs, quality {args.quality}, {args.slots} slots: "
          f"min {min(latencies):.3f} s, median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s")


if __name__ == "__main__":
    main()

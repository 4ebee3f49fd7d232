"""scikit-image's marching_cubes on the R = 256 field that orfeas-core's ignored
`timing_r256` test meshes (tests/marching_cubes.rs, fn `blobs`), padded as orfeas pads it.

    /work/venvs/tsr/bin/python benches/marching_cubes_skimage.py [R]

Prints the best of 5 wall times for lewiner and lorensen, face counts and areas, to set
beside `cargo test --release -p orfeas-core --test marching_cubes -- --ignored --nocapture`.
scikit-image's marching cubes is single-threaded; the Rust one uses every rayon thread.
"""

import sys
import time

import numpy as np
import skimage
from skimage.measure import marching_cubes, mesh_surface_area


def blobs(n: int) -> np.ndarray:
    c = np.arange(n, dtype=np.float32) / np.float32(n - 1) * np.float32(2.0) - np.float32(1.0)
    x, y, z = np.meshgrid(c, c, c, indexing="ij")

    def g(cx, cy, cz, s, a):
        return a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * s * s))

    ring = np.sqrt((y - 0.1) ** 2 + (z + 0.2) ** 2) - 0.4
    f = 50.0 * (
        g(-0.3, -0.2, 0.1, 0.25, 1.0)
        + g(0.35, 0.3, -0.1, 0.2, 0.9)
        + g(0.1, -0.4, 0.5, 0.15, 1.0)
        + np.exp(-(ring * ring + (x - 0.2) ** 2) / (2 * 0.08 * 0.08))
    ) + 3.0 * np.sin(7.0 * x) * np.cos(5.0 * y) * np.sin(6.0 * z + 1.0)
    return f.astype(np.float32)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    padded = np.pad(blobs(n), 1, constant_values=0.0)
    print(f"scikit-image {skimage.__version__}, numpy {np.__version__}, R = {n}")
    for method in ("lewiner", "lorensen"):
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            verts, faces, _, _ = marching_cubes(padded, level=25.0, method=method)
            best = min(best, time.perf_counter() - t)
        area = mesh_surface_area(verts, faces)
        print(f"{method}: {best * 1e3:.1f} ms, {len(faces)} faces, {len(verts)} vertices, area {area:.1f}")


if __name__ == "__main__":
    main()

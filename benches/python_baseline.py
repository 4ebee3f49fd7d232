#!/usr/bin/env python3
"""The Python path a user would otherwise take: image -> closed heightfield solid -> binary STL.

Same relief as `orfeas --depth relief`: Rec. 709 luminance of the stored values, bright = high,
Gaussian smoothing with the preset's sigma, robust normalisation between the 0.5th and 99.5th
percentiles, width 100 mm, relief depth 20 mm, base 2 mm, working size = the preset's
(low 256, medium 512, high 1024; the image is downscaled to fit, LANCZOS).

The solid is a full regular grid (one vertex per working pixel, 2 triangles per cell), one
vertical wall quad (2 triangles) per boundary edge down to z = 0, and a flat base that is a fan
from the base's centre to every bottom boundary vertex (the outline is a rectangle, so the fan
is valid and shares every wall edge: the solid is watertight). Built with numpy, written with
numpy-stl (`--writer numpy-stl`, default) or trimesh (`--writer trimesh`).

    python_baseline.py IMAGE --quality high [--writer trimesh] [--runs 5] [--check] [--out F]
    python_baseline.py --check-only MODEL.stl

Prints one JSON line: quality, writer, triangles, median seconds (in-process, after imports),
all run times. `--check` loads the written STL with trimesh and verifies watertight, winding
and positive volume.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

PRESETS = {  # working_size, smoothing sigma (orfeas-core/src/options.rs)
    "low": (256, 0.8),
    "medium": (512, 1.0),
    "high": (1024, 1.2),
}
WIDTH_MM, DEPTH_MM, BASE_MM = 100.0, 20.0, 2.0


def heights(path: str, quality: str) -> np.ndarray:
    size, sigma = PRESETS[quality]
    img = Image.open(path).convert("RGB")
    if max(img.size) > size:
        s = size / max(img.size)
        img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))), Image.LANCZOS)
    rgb = np.asarray(img, dtype=np.float32) / 255.0
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    try:
        from scipy.ndimage import gaussian_filter

        luma = gaussian_filter(luma, sigma, mode="nearest")
    except ImportError:  # Pillow's blur works on 8 bits, good enough as a fallback
        from PIL import ImageFilter

        luma = np.asarray(Image.fromarray(luma * 255).convert("L").filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255
    lo, hi = np.quantile(luma, [0.005, 0.995])
    return np.clip((luma - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def solid(h: np.ndarray):
    """Vertices (n, 3) float32 and triangles (m, 3) int64 of the closed solid, outward-wound."""
    rows, cols = h.shape
    step = WIDTH_MM / (cols - 1)
    ys, xs = np.mgrid[0:rows, 0:cols]
    top = np.stack([xs * step, (rows - 1 - ys) * step, BASE_MM + h * DEPTH_MM], axis=-1).reshape(-1, 3)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # y points down in the image and up in the model: (a, c, b) is counter-clockwise from +z.
    top_tris = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    # Boundary loop, counter-clockwise seen from +z (model coordinates): bottom row left to
    # right, right column bottom to top, top row right to left, left column top to bottom.
    loop = np.concatenate([idx[-1, :-1], idx[::-1, -1][:-1], idx[0, ::-1][:-1], idx[:, 0][:-1]])
    n = len(top)
    bottom = top[loop].copy()
    bottom[:, 2] = 0.0
    bot = n + np.arange(len(loop))
    nxt = np.roll(np.arange(len(loop)), -1)
    p, q = loop, loop[nxt]
    walls = np.concatenate([np.stack([p, bot, q], 1), np.stack([q, bot, bot[nxt]], 1)])
    centre = n + len(loop)
    base = np.stack([np.full(len(loop), centre), bot[nxt], bot], 1)
    centre_v = np.array([[WIDTH_MM / 2, (rows - 1) * step / 2, 0.0]])
    verts = np.concatenate([top, bottom, centre_v]).astype(np.float32)
    tris = np.concatenate([top_tris, walls, base])
    return verts, tris


def write(verts, tris, out: str, writer: str) -> None:
    if writer == "trimesh":
        import trimesh

        trimesh.Trimesh(vertices=verts, faces=tris).export(out, file_type="stl")
    else:
        from stl import mesh, Mode

        m = mesh.Mesh(np.zeros(len(tris), dtype=mesh.Mesh.dtype))
        m.vectors[:] = verts[tris]
        m.save(out, mode=Mode.BINARY)


def check(out: str) -> dict:
    import trimesh

    m = trimesh.load(out, file_type="stl")
    return {
        "watertight": bool(m.is_watertight),
        "winding_consistent": bool(m.is_winding_consistent),
        "volume_mm3": float(m.volume),
        "euler": int(m.euler_number),
        "faces": int(len(m.faces)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("image", nargs="?")
    ap.add_argument("--check-only", metavar="STL", help="only check an existing STL; prints 'watertight, V=... mm3' or 'FAILED ...'")
    ap.add_argument("--quality", choices=PRESETS, default="medium")
    ap.add_argument("--writer", choices=["numpy-stl", "trimesh"], default="numpy-stl")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check_only:
        c = check(args.check_only)
        ok = c["watertight"] and c["winding_consistent"] and c["volume_mm3"] > 0
        print(f"watertight, V={c['volume_mm3']:.0f} mm3" if ok else f"FAILED {c}")
        sys.exit(0 if ok else 1)
    if not args.image:
        ap.error("an image is required")
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="pybaseline-"), "model.stl")
    times, ntri = [], 0
    for _ in range(max(1, args.runs)):
        t0 = time.perf_counter()
        verts, tris = solid(heights(args.image, args.quality))
        write(verts, tris, out, args.writer)
        times.append(time.perf_counter() - t0)
        ntri = len(tris)
    res = {
        "quality": args.quality,
        "writer": args.writer,
        "triangles": ntri,
        "seconds": float(np.median(times)),
        "runs": [round(t, 4) for t in times],
        "bytes": os.path.getsize(out),
    }
    if args.check:
        res["check"] = check(out)
    print(json.dumps(res))
    if args.check and not (res["check"]["watertight"] and res["check"]["winding_consistent"] and res["check"]["volume_mm3"] > 0):
        sys.exit(1)


if __name__ == "__main__":
    main()

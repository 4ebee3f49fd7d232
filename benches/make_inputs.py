#!/usr/bin/env python3
"""Make the benchmark inputs, deterministically, under OUT_DIR (default target/bench-inputs/).

    photo1024.png   a real photograph (scikit-image's bundled `astronaut`, 512x512 RGB,
                    resized to 1024x1024 with Pillow LANCZOS), 8-bit RGB
    smooth1024.png  a smooth 16-bit gray depth-like map: a few wide Gaussians on gentle slopes
    noisy1024.png   the photo's luminance (Rec. 709 on the stored values), 8-bit gray: a
                    noisy real image, used unsmoothed by the mesher-only comparison
    batch8/         eight 1024-pixel-wide photographs (scikit-image's bundled astronaut,
                    coffee, chelsea and rocket, each as is and mirrored), 8-bit RGB: the batch
                    of benches/slots.sh

Needs numpy, pillow and scikit-image (the photo is bundled with scikit-image, no download).
The generated images are not committed; re-run this script to make them.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image
import skimage.data

N = 1024


def photo() -> Image.Image:
    img = Image.fromarray(skimage.data.astronaut()).convert("RGB")
    return img.resize((N, N), Image.LANCZOS)


def smooth_map() -> np.ndarray:
    """A depth-like scene: ground plane tilted away, a few wide blobs (objects), a ridge."""
    y, x = np.mgrid[0:N, 0:N].astype(np.float64) / (N - 1)
    z = 0.35 * (1.0 - y) + 0.08 * x  # gentle slopes (floor receding, slight tilt)
    blobs = [  # (cx, cy, sigma, amplitude)
        (0.30, 0.35, 0.12, 0.45),
        (0.70, 0.30, 0.08, 0.30),
        (0.55, 0.70, 0.18, 0.35),
        (0.15, 0.80, 0.06, 0.20),
        (0.85, 0.75, 0.10, -0.15),
    ]
    for cx, cy, s, a in blobs:
        z += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    z += 0.05 * np.sin(2 * np.pi * (1.5 * x + 0.5 * y))  # a long, soft wave
    z = (z - z.min()) / (z.max() - z.min())
    return np.round(z * 65535).astype(np.uint16)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench-inputs")
    out.mkdir(parents=True, exist_ok=True)
    p = photo()
    p.save(out / "photo1024.png", optimize=False)
    Image.fromarray(smooth_map()).save(out / "smooth1024.png")  # uint16 -> mode I;16
    rgb = np.asarray(p, dtype=np.float64)
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722])
    Image.fromarray(np.clip(np.round(luma), 0, 255).astype(np.uint8), mode="L").save(out / "noisy1024.png")
    batch = out / "batch8"
    batch.mkdir(exist_ok=True)
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket"]):
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        img = img.resize((N, round(img.height * N / img.width)), Image.LANCZOS)
        img.save(batch / f"{i * 2 + 1}-{name}.png", optimize=False)
        img.transpose(Image.FLIP_LEFT_RIGHT).save(batch / f"{i * 2 + 2}-{name}-mirrored.png", optimize=False)
    print(f"{batch}: {len(list(batch.glob('*.png')))} photos")
    for name in ("photo1024.png", "smooth1024.png", "noisy1024.png"):
        im = Image.open(out / name)
        print(f"{out / name}: {im.size[0]}x{im.size[1]} {im.mode}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the example images in examples/ procedurally (our own making, no third-party art).

Each file exercises a different path of the pipeline: border masking on a plain backdrop,
alpha masking, palette PNGs, 16-bit height maps, gray JPEGs, WebP, BMP and extreme aspect
ratios. Deterministic: fixed seeds, no clock, no network.

    python3 -m venv /tmp/ex && /tmp/ex/bin/pip install numpy pillow
    /tmp/ex/bin/python scripts/make_examples.py        # or python3 with numpy + Pillow installed
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "examples"
MAX_FILE = 150 * 1024
MAX_TOTAL = 700 * 1024


def grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, x to the right and y down."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x + 0.5, y + 0.5


def smoothstep(edge0: float, edge1: float, v: np.ndarray) -> np.ndarray:
    t = np.clip((v - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (edges clamped), numpy only."""
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(a, ((0, 0), (r, r)), mode="edge")
    a = sum(k[i] * p[:, i : i + a.shape[1]] for i in range(2 * r + 1))
    p = np.pad(a, ((r, r), (0, 0)), mode="edge")
    return sum(k[i] * p[i : i + a.shape[0], :] for i in range(2 * r + 1))


def to_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def product_on_backdrop(rng: np.random.Generator) -> Image.Image:
    """A shaded rounded 'bottle' with a soft contact shadow on a plain light backdrop (JPEG)."""
    w, h = 512, 384
    x, y = grid(w, h)
    backdrop = np.full((h, w), 238.0) - 10.0 * (y / h)  # gentle studio falloff
    # Soft shadow: a blurred ellipse under the object.
    shadow = ((x - 270) / 150) ** 2 + ((y - 330) / 22) ** 2 < 1.0
    backdrop -= 55.0 * blur(shadow.astype(np.float64), 9.0)
    # Superellipse body with a rounded cap; shading from a lambertian "cylinder" normal.
    cx, top, bottom, half = 256.0, 70.0, 330.0, 95.0
    nx = (x - cx) / half
    inside = (np.abs(nx) ** 4 + (np.maximum(0, top + half * 0.6 - y) / (half * 0.6)) ** 4 <= 1.0) & (y < bottom)
    inside &= y > top
    nz = np.sqrt(np.clip(1.0 - nx**2, 0.0, 1.0))
    light = np.clip(0.25 + 0.75 * (0.55 * nz - 0.45 * nx + 0.2), 0.0, 1.0)
    highlight = np.exp(-(((nx + 0.45) / 0.08) ** 2)) * 0.6
    base = np.array([40.0, 110.0, 170.0])
    img = np.repeat(backdrop[..., None], 3, axis=2)
    body = base[None, None, :] * light[..., None] + 255.0 * highlight[..., None]
    # A label band.
    band = (y > 170) & (y < 240)
    body = np.where(band[..., None], np.array([235.0, 225.0, 200.0]) * light[..., None], body)
    img = np.where(inside[..., None], body, img)
    img += rng.normal(0.0, 2.0, img.shape)  # sensor noise
    return Image.fromarray(to_u8(img), "RGB")


def logo_rgba() -> Image.Image:
    """A star inside a ring on a transparent background (RGBA PNG), anti-aliased edges."""
    s = 384
    x, y = grid(s, s)
    dx, dy = x - s / 2, y - s / 2
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx) + np.pi / 2
    star_r = 95 + 45 * np.cos(5 * theta)  # five-pointed "soft" star
    star = smoothstep(1.0, -1.0, r - star_r)
    ring = smoothstep(1.0, -1.0, np.abs(r - 165) - 14)
    alpha = np.clip(star + ring, 0.0, 1.0)
    rgb = np.zeros((s, s, 3))
    rgb[...] = np.array([220.0, 60.0, 40.0])
    rgb = np.where((ring > star)[..., None], np.array([30.0, 60.0, 140.0]), rgb)
    shade = 0.75 + 0.25 * np.clip(1 - r / 200, 0, 1)
    rgba = np.dstack([rgb * shade[..., None], 255.0 * alpha])
    return Image.fromarray(to_u8(rgba), "RGBA")


def animal_palette() -> Image.Image:
    """A cat-like silhouette (body, head, ears, tail) as a two-colour palette PNG."""
    w, h = 512, 384
    x, y = grid(w, h)
    body = ((x - 250) / 130) ** 2 + ((y - 250) / 75) ** 2 < 1
    head = (x - 365) ** 2 + (y - 150) ** 2 < 58**2
    ear1 = (y > 80) & (y < 120) & (np.abs(x - 335) < (y - 80) * 0.55)
    ear2 = (y > 80) & (y < 120) & (np.abs(x - 395) < (y - 80) * 0.55)
    t = np.linspace(0, 1, 400)
    tail = np.zeros((h, w), bool)
    for tx, ty in zip(120 - 70 * t, 260 - 170 * t + 60 * np.sin(3 * t)):
        tail |= (x - tx) ** 2 + (y - ty) ** 2 < (14 - 6 * (ty < 150)) ** 2
    legs = np.zeros((h, w), bool)
    for lx in (170, 215, 290, 335):
        legs |= (np.abs(x - lx) < 14) & (y > 280) & (y < 352)
    shape = body | head | ear1 | ear2 | tail | legs
    idx = np.where(shape, 1, 0).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([245, 240, 228, 35, 30, 40] + [0, 0, 0] * 254)
    return img


def terrain16(rng: np.random.Generator) -> Image.Image:
    """A smooth 16-bit gray height map: a sum of Gaussian hills and one valley."""
    s = 256
    x, y = grid(s, s)
    z = np.zeros((s, s))
    for _ in range(14):
        cx, cy = rng.uniform(0, s, 2)
        sig = rng.uniform(12, 55)
        amp = rng.uniform(0.3, 1.0)
        z += amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sig**2))
    z -= 0.6 * np.exp(-((x - 0.6 * s) ** 2 / (2 * 30**2) + (y - 0.3 * s) ** 2 / (2 * 80**2)))
    z = (z - z.min()) / (z.max() - z.min())
    # Quantise to 12 significant bits so the PNG stays small; still far beyond 8-bit.
    z16 = (np.round(z * 4095) * 16).astype(np.uint16)
    return Image.fromarray(z16)  # uint16 → mode "I;16": a 16-bit gray PNG


def coin_gray() -> Image.Image:
    """An embossed coin: raised rim, a star and dots, lit from the top-left (gray JPEG)."""
    s = 384
    x, y = grid(s, s)
    dx, dy = x - s / 2, y - s / 2
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    height = np.zeros((s, s))
    height += smoothstep(150, 146, r) * 0.4  # disc
    height += (smoothstep(132, 136, r) * smoothstep(150, 146, r)) * 0.6  # rim
    star_r = 55 + 25 * np.cos(5 * (theta + np.pi / 2))
    height += smoothstep(1.5, -1.5, r - star_r) * 0.5
    for k in range(16):
        a = 2 * np.pi * k / 16
        height += 0.3 * smoothstep(6, 4, np.hypot(dx - 110 * np.cos(a), dy - 110 * np.sin(a)))
    height = blur(height, 1.2)
    gy, gx = np.gradient(height)
    shade = 0.55 - 6.0 * (gx * 0.7 + gy * 0.7)
    coin = np.clip(shade, 0, 1) * 200 + 30
    img = np.where(r < 151, coin, 245.0)
    return Image.fromarray(to_u8(img), "L")


def pebble_rgb(rng: np.random.Generator) -> Image.Image:
    """A speckled, shaded pebble on a plain warm backdrop (lossy WebP)."""
    w, h = 384, 288
    x, y = grid(w, h)
    nx, ny = (x - 192) / 140, (y - 150) / 90
    d = nx**2 + ny**2
    inside = d < 1
    nz = np.sqrt(np.clip(1 - d, 0, 1))
    light = np.clip(0.2 + 0.8 * (0.6 * nz - 0.4 * nx - 0.4 * ny), 0, 1)
    speckle = blur(rng.normal(0, 1, (h, w)), 1.5) * 18
    stone = np.array([150.0, 140.0, 128.0])[None, None, :] * light[..., None] + speckle[..., None]
    back = np.broadcast_to(np.array([226.0, 218.0, 204.0]), (h, w, 3))
    img = np.where(inside[..., None], stone, back)
    return Image.fromarray(to_u8(img), "RGB")


def heart_rgb() -> Image.Image:
    """A red heart on white, uncompressed 24-bit BMP (kept small)."""
    w, h = 160, 140
    x, y = grid(w, h)
    u, v = (x - 80) / 60, -(y - 75) / 60
    heart = (u**2 + v**2 - 1) ** 3 - u**2 * v**3 < 0
    img = np.where(heart[..., None], np.array([200.0, 30.0, 50.0]), np.array([255.0, 255.0, 255.0]))
    return Image.fromarray(to_u8(img), "RGB")


def strip_gray() -> Image.Image:
    """A long thin 8-bit strip (1024×40) with a wave pattern: extreme aspect ratio."""
    w, h = 1024, 40
    x, y = grid(w, h)
    v = 128 + 90 * np.sin(x / 23.0) * np.cos((y - 20) / 14.0)
    return Image.fromarray(to_u8(v), "L")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(20240611)
    items = [
        ("product_bottle.jpg", product_on_backdrop(rng), dict(quality=85, optimize=True)),
        ("logo_star.png", logo_rgba(), dict(optimize=True)),
        ("cat_silhouette.png", animal_palette(), dict(optimize=True)),
        ("terrain_height16.png", terrain16(rng), dict(optimize=True)),
        ("coin_emboss.jpg", coin_gray(), dict(quality=88, optimize=True)),
        ("pebble.webp", pebble_rgb(rng), dict(quality=82, method=6)),
        ("heart.bmp", heart_rgb(), {}),
        ("strip_wave.png", strip_gray(), dict(optimize=True)),
    ]
    total = 0
    for name, img, opts in items:
        path = OUT / name
        img.save(path, **opts)
        size = path.stat().st_size
        total += size
        print(f"{name:24s} {img.mode:5s} {img.size[0]:5d}x{img.size[1]:<5d} {size / 1024:7.1f} KB")
        if size > MAX_FILE:
            print(f"error: {name} is over {MAX_FILE // 1024} KB", file=sys.stderr)
            return 1
    print(f"{'total':24s} {total / 1024:31.1f} KB")
    if total > MAX_TOTAL:
        print(f"error: examples total over {MAX_TOTAL // 1024} KB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Build the acceptance-test input set from REAL images shipped inside PyPI packages.

    python3 -m venv /tmp/acc-venv
    /tmp/acc-venv/bin/pip install scikit-image scikit-learn pillow numpy
    /tmp/acc-venv/bin/python scripts/acceptance_inputs.py OUT_DIR

Sources (all bundled in the wheels, no download):
  scikit-image `skimage/data/`: astronaut.png (person, busy background), chelsea.png (cat,
  busy background), coffee.png (cup), rocket.jpg, camera.png (gray), horse.png (black
  silhouette on white, RGBA with a few non-opaque pixels), logo.png (RGBA, fully opaque),
  coins.png (gray), hubble_deep_field.jpg, retina.jpg (dark round backdrop),
  motorcycle_left.png, no_time_for_that_tiny.gif (animated), multipage.tif;
  scikit-learn `sklearn/datasets/images/`: china.jpg, flower.jpg.
Variants are derived with Pillow (gray, 16-bit, palette with and without transparency,
EXIF-rotated JPEG, WebP, BMP, TIFF, animated GIF, 1x1, 2000x20 strip, 12 MP photo).

Deterministic: no randomness, no clock; the same Pillow/libjpeg/libwebp gives the same bytes.
Writes OUT_DIR.sources.tsv beside OUT_DIR (file, mode, size, where it came from): OUT_DIR itself
holds only images, so it can be given to `orfeas generate` as a directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import skimage
import sklearn.datasets

SK = Path(skimage.__file__).parent / "data"
SL = Path(sklearn.datasets.__file__).parent / "images"

# EXIF tag numbers.
ORIENTATION = 0x0112


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []

    def save(img: Image.Image, name: str, origin: str, **kw) -> None:
        img.save(out / name, **kw)
        rows.append((name, origin))

    sk = lambda n: Image.open(SK / n)  # noqa: E731
    sl = lambda n: Image.open(SL / n)  # noqa: E731

    # --- real photos / drawings, lightly re-encoded -------------------------------------------
    save(sk("astronaut.png").convert("RGB"), "astronaut_person.png", "skimage astronaut.png (RGB PNG)")
    save(sk("chelsea.png").convert("RGB"), "chelsea_cat.jpg", "skimage chelsea.png -> JPEG q90", quality=90)
    save(sk("coffee.png").convert("RGB"), "coffee_cup.webp", "skimage coffee.png -> lossy WebP q85", quality=85, method=4)
    save(sk("rocket.jpg").convert("RGB"), "rocket.bmp", "skimage rocket.jpg -> 24-bit BMP")
    save(sk("camera.png").convert("L"), "camera_gray.png", "skimage camera.png (8-bit gray PNG)")
    cam16 = (np.asarray(sk("camera.png").convert("L"), dtype=np.uint32) * 257).astype(np.uint16)
    save(Image.fromarray(cam16), "camera_16bit.png", "skimage camera.png x257 -> 16-bit gray PNG (I;16)")
    save(sk("coins.png").convert("L"), "coins.tiff", "skimage coins.png -> gray TIFF (LZW)", compression="tiff_lzw")
    save(sk("hubble_deep_field.jpg").convert("RGB"), "hubble.jpg", "skimage hubble_deep_field.jpg (as is, re-encoded q92)", quality=92)
    save(sk("retina.jpg").convert("RGB"), "retina.jpg", "skimage retina.jpg (dark round backdrop), q92", quality=92)
    save(sk("motorcycle_left.png").convert("RGB"), "motorcycle.png", "skimage motorcycle_left.png")
    save(sl("china.jpg").convert("RGB"), "china.jpg", "sklearn china.jpg, q92", quality=92)
    save(sl("flower.jpg").convert("RGB"), "flower.tif", "sklearn flower.jpg -> RGB TIFF (uncompressed)")

    # --- silhouettes / logos --------------------------------------------------------------------
    horse = sk("horse.png")
    save(horse, "horse_as_shipped.png", "skimage horse.png unchanged: RGBA, black horse on white, "
         "alpha 255 except a few pixels (near-opaque alpha)")
    h = np.asarray(horse.convert("L"))
    fg = h < 128
    rgba = np.zeros(h.shape + (4,), np.uint8)
    rgba[..., :3] = np.where(fg[..., None], [90, 60, 30], [0, 0, 0])
    rgba[..., 3] = np.where(fg, 255, 0)
    save(Image.fromarray(rgba), "horse_transparent.png", "skimage horse.png: black -> brown opaque, white -> transparent (RGBA)")
    la = np.stack([np.where(fg, 40, 0).astype(np.uint8), np.where(fg, 255, 0).astype(np.uint8)], -1)
    save(Image.fromarray(la), "horse_gray_alpha.png", "skimage horse.png -> gray+alpha PNG (LA)")
    save(horse.convert("RGB"), "horse_on_white.jpg", "skimage horse.png flattened -> JPEG q85 (silhouette on plain white)", quality=85)

    logo = sk("logo.png").convert("RGBA")
    save(logo.convert("RGB"), "logo_on_white.jpg", "skimage logo.png -> JPEG q90 (logo on white)", quality=90)
    la_ = np.asarray(logo).copy()
    white = (la_[..., :3].astype(int).min(-1) > 235)
    la_[..., 3] = np.where(white, 0, 255)
    save(Image.fromarray(la_), "logo_transparent.png", "skimage logo.png with near-white -> transparent (RGBA)")
    # Palette PNG with transparency: quantise the transparent logo, index 0 transparent.
    pal = Image.fromarray(la_).quantize(colors=32, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    save(pal, "logo_palette_transparent.png", "logo_transparent.png quantised to 32 colours (P + tRNS)")
    save(sk("astronaut.png").convert("RGB").quantize(colors=64, dither=Image.Dither.NONE), "astronaut_palette.png",
         "skimage astronaut.png quantised to 64 colours (P, no transparency)")

    # --- EXIF-rotated JPEG: pixels stored rotated, Orientation says how to show them upright -----
    cat = sk("chelsea.png").convert("RGB")
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 CW to display": store the upright image rotated 90 CCW
    save(cat.transpose(Image.Transpose.ROTATE_90), "chelsea_exif6.jpg",
         "skimage chelsea.png stored rotated 90 CCW with EXIF Orientation=6 (upright = 451x300 landscape)",
         quality=90, exif=exif.tobytes())
    exif8 = Image.Exif()
    exif8[ORIENTATION] = 8  # "rotate 90 CCW to display": store rotated 90 CW
    save(sk("coffee.png").convert("RGB").transpose(Image.Transpose.ROTATE_270), "coffee_exif8.jpg",
         "skimage coffee.png stored rotated 90 CW with EXIF Orientation=8 (upright = 600x400 landscape)",
         quality=90, exif=exif8.tobytes())

    # --- animated GIF (2 frames): the first frame is the one to mesh ----------------------------
    f1 = logo.convert("RGB").quantize(colors=64, dither=Image.Dither.NONE)
    f2 = logo.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).quantize(colors=64, dither=Image.Dither.NONE)
    f1.save(out / "logo_animated.gif", save_all=True, append_images=[f2], duration=200, loop=0)
    rows.append(("logo_animated.gif", "skimage logo.png, 2-frame animated GIF (frame 2 mirrored)"))

    # Real animated GIF and multi-page TIFF exactly as shipped (byte copies).
    for src, name, origin in [
        ("no_time_for_that_tiny.gif", "no_time_tiny.gif", "skimage no_time_for_that_tiny.gif unchanged (14x25, 24 frames)"),
        ("multipage.tif", "multipage.tif", "skimage multipage.tif unchanged (10x15 gray, 2 pages)"),
    ]:
        (out / name).write_bytes((SK / src).read_bytes())
        rows.append((name, origin))

    # --- degenerate sizes -------------------------------------------------------------------------
    save(Image.new("RGB", (1, 1), (200, 120, 40)), "one_pixel.png", "1x1 RGB PNG (orange)")
    china = sl("china.jpg").convert("RGB")
    strip = china.crop((0, 200, 640, 206)).resize((2000, 20), Image.Resampling.BICUBIC)
    save(strip, "china_strip_2000x20.png", "sklearn china.jpg rows 200-206 resized to 2000x20")

    # --- a 12 MP photo ----------------------------------------------------------------------------
    big = sl("flower.jpg").convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS)
    save(big, "flower_12mp.jpg", "sklearn flower.jpg upscaled to 4000x3000 (12 MP) JPEG q90", quality=90)

    with open(out.parent / (out.name + ".sources.tsv"), "w") as f:
        f.write("file\tmode\tsize\tsource\n")
        for name, origin in rows:
            im = Image.open(out / name)
            f.write(f"{name}\t{im.mode}\t{im.size[0]}x{im.size[1]}\t{origin}\n")
    for name, origin in rows:
        print(f"{name:32s} {origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

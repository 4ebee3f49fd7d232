"""Shared fixtures: the repository's example images and small generated images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def examples() -> Path:
    assert EXAMPLES.is_dir(), f"examples/ not found at {EXAMPLES}"
    return EXAMPLES


@pytest.fixture(scope="session")
def photo_array() -> np.ndarray:
    """A 96×128 RGB image with a bright disc on a dark border: a real foreground to mesh."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    disc = ((x - 64) ** 2 + (y - 48) ** 2) < 38**2
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[..., 0] = np.where(disc, 200 + (x % 40), 10).astype(np.uint8)
    rgb[..., 1] = np.where(disc, 120 + (y % 50), 12).astype(np.uint8)
    rgb[..., 2] = np.where(disc, 90, 15).astype(np.uint8)
    return rgb


@pytest.fixture(scope="session")
def png_bytes(photo_array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(photo_array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def heavy_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1024² noisy photo-like image: slow enough at quality=high that a batch of copies is
    still running when a test cancels it."""
    from PIL import Image

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, size=(1024, 1024, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("heavy") / "heavy.png"
    Image.fromarray(noise).save(path)
    return path

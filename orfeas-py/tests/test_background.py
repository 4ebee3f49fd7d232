"""background= (where the foreground mask comes from), segmenter_weights= and the mask formats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import orfeas

H, W = 96, 128


@pytest.fixture(autouse=True)
def no_cached_birefnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hugging Face cache: `auto` means the border estimate, `birefnet` has no weights."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def dark_disc() -> np.ndarray:
    """A dark disc on a white backdrop, 96×128 RGB: what the border estimate separates."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    disc = ((x - 64) ** 2 + (y - 48) ** 2) < 30**2
    rgb = np.full((H, W, 3), 255, np.uint8)
    rgb[disc] = (40, 30, 60)
    return rgb


@pytest.fixture
def disc_png(tmp_path: Path, dark_disc: np.ndarray) -> Path:
    path = tmp_path / "disc.png"
    Image.fromarray(dark_disc).save(path)
    return path


def assert_disc_mask(png: bytes) -> None:
    """8-bit gray at the input's size, the disc at 255 and the backdrop at 0."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L" and image.size == (W, H)
    mask = np.asarray(image)
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    assert mask[48, 64] == 255 and mask[0, 0] == 0 and mask[H - 1, W - 1] == 0


def test_an_unknown_background_is_refused_listing_the_valid_ones(tmp_path: Path, dark_disc: np.ndarray) -> None:
    with pytest.raises(orfeas.InvalidInputError, match="rembg.*auto, alpha, border, birefnet or none") as info:
        orfeas.image_to_mesh(dark_disc, quality="low", background="rembg")
    assert info.value.code == "ERR_INVALID_INPUT"
    with pytest.raises(orfeas.InvalidInputError, match="auto, alpha, border, birefnet or none"):
        orfeas.BatchProcessor(slots=1).run([dark_disc], tmp_path / "out", formats=["stl"], background="rembg")
    assert not (tmp_path / "out").exists()


def test_none_and_border_give_the_mask_they_name(tmp_path: Path, dark_disc: np.ndarray) -> None:
    whole = orfeas.image_to_mesh(dark_disc, quality="low", background="none")
    cut = orfeas.image_to_mesh(dark_disc, quality="low", background="border")
    assert whole.mask == "none" and cut.mask == "border"
    assert orfeas.image_to_mesh(dark_disc, quality="low").mask == "border"  # auto, no BiRefNet
    # The whole image makes a full-frame relief, the border mask one of the disc only.
    (lo_whole, hi_whole), (lo_cut, hi_cut) = whole.bounds, cut.bounds
    assert hi_cut[1] - lo_cut[1] < 0.9 * (hi_whole[1] - lo_whole[1])
    # The mask is kept: mask.png and mask.npy from the Mesh.
    assert_disc_mask(cut.to_bytes("mask.png"))
    probability = np.load(io.BytesIO(cut.to_bytes("mask.npy")))
    # At the model's 1024² input whatever made the mask, so a batch's files share one shape.
    assert probability.dtype == np.float32 and probability.shape == (1024, 1024)
    assert probability[512, 512] == 1.0 and probability[0, 0] == 0.0
    assert np.asarray(Image.open(io.BytesIO(whole.to_bytes("mask.png")))).min() == 255
    saved = cut.save(tmp_path / "m.mask.png")
    assert saved == [str(tmp_path / "m.mask.png")]
    assert_disc_mask((tmp_path / "m.mask.png").read_bytes())
    # The batch path reports the same sources.
    proc = orfeas.BatchProcessor(slots=2)
    results = proc.run([dark_disc, dark_disc], tmp_path / "batch", formats=["stl"], quality="low", background="none")
    assert [r.mask for r in results] == ["none", "none"]
    [result] = proc.run([dark_disc], tmp_path / "batch", formats=["stl"], quality="low", background="border")
    assert result.ok and result.mask == "border" and result.to_dict()["mask"] == "border"


def test_mask_png_alone_writes_the_cutout_and_makes_no_mesh(tmp_path: Path, disc_png: Path) -> None:
    proc = orfeas.BatchProcessor(slots=1)
    assert proc.backgrounds == ["auto", "alpha", "border", "none"]
    [result] = proc.run([disc_png], tmp_path / "out", formats=["mask.png", "mask.npy"], background="border")
    assert result.ok, result.error
    assert result.method == "cutout" and result.mask == "border" and result.triangles == 0
    assert result.outputs == [str(tmp_path / "out" / "disc.mask.png"), str(tmp_path / "out" / "disc.mask.npy")]
    assert result.output_formats == ["mask.png", "mask.npy"]
    assert_disc_mask((tmp_path / "out" / "disc.mask.png").read_bytes())
    probability = np.load(tmp_path / "out" / "disc.mask.npy")
    assert probability.shape == (1024, 1024) and probability[512, 512] == 1.0 and probability[0, 0] == 0.0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["disc.mask.npy", "disc.mask.png"]


def test_birefnet_without_weights_says_how_to_get_them(tmp_path: Path, dark_disc: np.ndarray) -> None:
    proc = orfeas.BatchProcessor(slots=1)
    assert "birefnet" not in proc.backgrounds
    with pytest.raises(orfeas.WeightsNotFoundError, match="fetch-model --model birefnet-lite") as info:
        proc.run([dark_disc], tmp_path / "out", formats=["mask.png"], background="birefnet")
    assert info.value.code == "ERR_WEIGHTS_NOT_FOUND" and isinstance(info.value, OSError)
    assert not (tmp_path / "out").exists()
    with pytest.raises(orfeas.WeightsNotFoundError, match="fetch-model --model birefnet-lite"):
        orfeas.image_to_mesh(dark_disc, quality="low", background="birefnet")
    # Weights named explicitly must be there, whatever the background.
    with pytest.raises(orfeas.WeightsNotFoundError, match="no-birefnet"):
        orfeas.BatchProcessor(slots=1, segmenter_weights=tmp_path / "no-birefnet")
    with pytest.raises(orfeas.WeightsNotFoundError, match="no-birefnet"):
        orfeas.image_to_mesh(dark_disc, quality="low", background="birefnet", segmenter_weights=tmp_path / "no-birefnet")


def test_the_cli_takes_background_and_mask_formats(tmp_path: Path, disc_png: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orfeas", "generate", str(disc_png), "-o", str(tmp_path / "cli"),
         "--format", "mask.png", "--background", "border", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    (job,) = json.loads(proc.stdout)["jobs"]
    assert job["mask"] == "border" and job["method"] == "cutout"
    assert_disc_mask((tmp_path / "cli" / "disc.mask.png").read_bytes())

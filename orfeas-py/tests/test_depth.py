"""estimate_depth: a float32 array at the original size, equal to what depth.npy holds;
Depth Anything through the repository's tiny random-weight fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import orfeas

TINY_WEIGHTS = Path(__file__).resolve().parents[2] / "orfeas-core" / "tests" / "fixtures" / "depth_anything" / "tiny"


@pytest.mark.parametrize("method", ["relief", "inflate"])
def test_weight_free_depth_is_float32_at_the_original_size(photo_array: np.ndarray, method: str) -> None:
    depth = orfeas.estimate_depth(photo_array, depth=method, quality="low")
    assert depth.dtype == np.float32 and depth.shape == photo_array.shape[:2]
    assert np.isfinite(depth).all() and depth.max() > depth.min()


def test_estimate_depth_matches_the_depth_npy_of_a_batch(tmp_path: Path, photo_array: np.ndarray) -> None:
    (result,) = orfeas.BatchProcessor(slots=1, depth="relief").run(
        [("p", photo_array)], tmp_path, formats=["depth.npy"], quality="low"
    )
    written = np.load(result.outputs[0])
    assert np.array_equal(written, orfeas.estimate_depth(photo_array, depth="relief", quality="low"))


def test_depth_anything_runs_with_explicit_weights(tmp_path: Path, photo_array: np.ndarray) -> None:
    assert (TINY_WEIGHTS / "model.safetensors").is_file()
    depth = orfeas.estimate_depth(photo_array, depth="depth-anything", weights=TINY_WEIGHTS, quality="low")
    assert depth.dtype == np.float32 and depth.shape == photo_array.shape[:2] and np.isfinite(depth).all()
    proc = orfeas.BatchProcessor(slots=1, depth="depth-anything", weights=TINY_WEIGHTS)
    (result,) = proc.run([photo_array], tmp_path, formats=["stl"], quality="low")
    assert result.status == "complete" and result.depth == "depth-anything"
    mesh = orfeas.image_to_mesh(photo_array, depth="depth-anything", weights=TINY_WEIGHTS, quality="low")
    assert mesh.depth == "depth-anything" and mesh.watertight


def test_the_authors_checkpoint_gives_the_same_depth(photo_array: np.ndarray) -> None:
    """`depth_anything_v2_*.pth` (the authors' layout of the same tiny weights) loads from Python."""
    pth = TINY_WEIGHTS / "depth_anything_v2_tiny.pth"
    from_pth = orfeas.estimate_depth(photo_array, depth="depth-anything", weights=pth, quality="low")
    from_dir = orfeas.estimate_depth(photo_array, depth="depth-anything", weights=TINY_WEIGHTS, quality="low")
    assert np.array_equal(from_pth, from_dir)


def test_depth_anything_without_weights_names_the_way_to_get_them(tmp_path: Path, photo_array: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(orfeas.WeightsNotFoundError) as info:
        orfeas.estimate_depth(photo_array, depth="depth-anything")
    assert "fetch-model" in str(info.value)

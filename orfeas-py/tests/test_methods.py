"""method= (and its 2.5D alias depth=): what each method reports and what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import orfeas


def test_method_and_depth_name_the_same_choice(tmp_path: Path, photo_array: np.ndarray) -> None:
    proc = orfeas.BatchProcessor(slots=1, method="inflate")
    assert proc.method == "inflate" and proc.depth == "inflate"
    assert orfeas.BatchProcessor(slots=1, depth="relief", method="relief").method == "relief"
    [result] = proc.run([photo_array], tmp_path, formats=["stl"], quality="low")
    assert result.ok and result.method == "inflate" and result.depth == "inflate"
    assert result.resolution is None and result.warnings == []
    d = result.to_dict()
    assert d["method"] == "inflate" and d["warnings"] == [] and d["resolution"] is None


def test_a_relief_mesh_reports_its_method_and_meshing_figures(photo_array: np.ndarray) -> None:
    mesh = orfeas.image_to_mesh(photo_array, quality="low", method="relief")
    assert mesh.method == "relief" and mesh.depth == "relief"
    assert mesh.resolution is None and mesh.warnings == []
    assert mesh.max_error is not None and 0 < mesh.max_error <= 1
    with pytest.raises(orfeas.ExportError, match="density field"):
        mesh.to_bytes("field.npy")


def test_formats_the_method_cannot_make_are_refused_before_any_job(tmp_path: Path, photo_array: np.ndarray) -> None:
    with pytest.raises(orfeas.InvalidInputError, match="field.npy"):
        orfeas.BatchProcessor(slots=1).run([photo_array], tmp_path / "out", formats=["stl", "field.npy"])
    assert not (tmp_path / "out").exists()
    with pytest.raises(orfeas.InvalidInputError, match="resolution"):
        orfeas.BatchProcessor(slots=1).run([photo_array], tmp_path / "out", resolution=2)


def test_an_object_without_weights_says_how_to_get_them(tmp_path: Path, photo_array: np.ndarray) -> None:
    with pytest.raises(orfeas.WeightsNotFoundError, match="fetch-model --model triposr") as info:
        orfeas.BatchProcessor(slots=1, method="triposr", weights=tmp_path / "no-weights")
    assert info.value.code == "ERR_WEIGHTS_NOT_FOUND"

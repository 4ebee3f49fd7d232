"""method="triposr": full 3D objects with the tiny random TripoSR of the Rust test fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import orfeas

from conftest import REPO

FIXTURE = REPO / "orfeas-core" / "tests" / "fixtures" / "triposr"
TINY = FIXTURE / "tiny"
BORDER_WARNING = "foreground touches the image border: the object may be cut off"


def test_a_batch_of_objects_writes_closed_coloured_files(tmp_path: Path) -> None:
    proc = orfeas.BatchProcessor(slots=2, method="triposr", weights=TINY)
    assert proc.method == "triposr"
    results = proc.run(
        [FIXTURE / "input.png", FIXTURE / "input_border.png"],
        tmp_path,
        formats=["stl", "glb", "field.npy"],
        resolution=32,
        width_mm=60.0,
    )
    for r in results:
        assert r.ok, r.error
        assert r.method == "triposr" and r.depth == "triposr" and r.mask == "alpha"
        assert r.resolution == 32 and r.watertight and r.triangles > 0
        assert r.output_formats == ["stl", "glb", "field.npy"]
    assert results[0].warnings == [] and results[1].warnings == [BORDER_WARNING]
    field = np.load(results[0].outputs[2])
    assert field.shape == (32, 32, 32) and field.dtype == np.float32
    assert float(field.max()) > 25.0, "the surface is where the density crosses 25"
    import trimesh

    stl = trimesh.load(results[0].outputs[0])
    assert stl.is_watertight and stl.volume > 0
    assert max(stl.extents) == pytest.approx(60.0, abs=1e-3)
    assert stl.bounds[0][2] == pytest.approx(0.0, abs=1e-4)


def test_image_to_mesh_gives_an_object_with_vertex_colours_and_its_field() -> None:
    events = []
    mesh = orfeas.image_to_mesh(
        FIXTURE / "input.png", method="triposr", weights=TINY, resolution=24, keep_largest=True, on_progress=events.append
    )
    assert mesh.method == "triposr" and mesh.resolution == 24 and mesh.max_error is None
    assert mesh.watertight and len(mesh) > 0
    assert mesh.colors.shape == mesh.vertices.shape and mesh.uvs.shape[0] == 0
    npy = mesh.to_bytes("field.npy")
    assert npy.startswith(b"\x93NUMPY") and len(npy) == 128 + 24**3 * 4
    stages = {e["stage"] for e in events if e["event"] == "generation_progress"}
    assert {"loading", "masking", "shape_generation", "meshing"} <= stages
    with pytest.raises(orfeas.ExportError):
        mesh.to_bytes("depth.npy")


def test_an_image_without_foreground_raises_no_foreground() -> None:
    clear = np.zeros((20, 20, 4), np.uint8)
    with pytest.raises(orfeas.NoForegroundError) as info:
        orfeas.image_to_mesh(clear, method="triposr", weights=TINY, resolution=16)
    assert isinstance(info.value, ValueError) and info.value.code == "ERR_NO_FOREGROUND"


def test_broken_weights_are_refused_when_the_processor_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "vit").mkdir(parents=True)
    for name in ("config.yaml", "vit/config.json"):
        (broken / name).write_bytes((TINY / name).read_bytes())
    ckpt = (TINY / "model.ckpt").read_bytes()
    (broken / "model.ckpt").write_bytes(ckpt[: len(ckpt) // 3])
    with pytest.raises(orfeas.WeightsInvalidError) as info:
        orfeas.BatchProcessor(method="triposr", weights=broken)
    assert isinstance(info.value, ValueError) and "model.ckpt" in str(info.value)

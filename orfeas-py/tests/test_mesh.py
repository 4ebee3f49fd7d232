"""Mesh: numpy arrays of the real mesh, bytes and files in every format, read back."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

import orfeas


@pytest.fixture(scope="module")
def mesh(photo_array: np.ndarray) -> orfeas.Mesh:
    return orfeas.image_to_mesh(photo_array, quality="low", width_mm=80.0, depth_mm=10.0, base_mm=2.0)


def test_arrays_have_the_contract_dtypes_and_shapes(mesh: orfeas.Mesh) -> None:
    v, f = mesh.vertices, mesh.faces
    assert v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 3
    assert f.dtype == np.uint32 and f.shape == (mesh.triangle_count, 3) and len(mesh) == mesh.triangle_count
    assert int(f.max()) < len(v)
    assert mesh.uvs.shape == (len(v), 2) and mesh.colors.shape == (len(v), 3) and mesh.colors.dtype == np.uint8
    lo, hi = mesh.bounds
    assert np.allclose(v.min(axis=0), lo) and np.allclose(v.max(axis=0), hi)
    # The model spans at most width_mm (the solid covers the foreground: here a disc).
    assert 30.0 < hi[0] - lo[0] <= 80.0 + 1e-3
    assert hi[2] - lo[2] <= 12.0 + 1e-3


def test_arrays_are_read_only_and_shared(mesh: orfeas.Mesh) -> None:
    assert mesh.vertices is mesh.vertices
    with pytest.raises(ValueError):
        mesh.vertices[0, 0] = 1.0


def test_binary_stl_bytes_hold_exactly_the_mesh(mesh: orfeas.Mesh) -> None:
    data = mesh.to_bytes("stl")
    (count,) = struct.unpack_from("<I", data, 80)
    assert count == mesh.triangle_count and len(data) == 84 + 50 * count
    records = np.frombuffer(data, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")]), offset=84)
    assert np.array_equal(records["v"], mesh.vertices[mesh.faces])


def test_stl_round_trip_is_a_watertight_solid(mesh: orfeas.Mesh, tmp_path: Path) -> None:
    written = mesh.save(tmp_path / "model.stl")
    assert written == [str(tmp_path / "model.stl")]
    loaded = trimesh.load(written[0])
    assert loaded.is_watertight and loaded.volume > 0
    assert len(loaded.faces) == mesh.triangle_count


def test_glb_round_trip(mesh: orfeas.Mesh, tmp_path: Path) -> None:
    path = tmp_path / "model.glb"
    mesh.save(path)
    data = path.read_bytes()
    assert data[:4] == b"glTF" and data == mesh.to_bytes("glb")
    scene = trimesh.load(path)
    loaded = scene.to_geometry() if hasattr(scene, "to_geometry") else scene.dump(concatenate=True)
    assert len(loaded.faces) == mesh.triangle_count


def test_obj_save_writes_material_and_texture(mesh: orfeas.Mesh, tmp_path: Path) -> None:
    written = [Path(p).name for p in mesh.save(tmp_path / "m.obj")]
    assert written == ["m.obj", "m.mtl", "m.png"]


@pytest.mark.parametrize("fmt", ["ply", "3mf", "stl-ascii", "depth16", "depth.npy"])
def test_every_format_serialises(mesh: orfeas.Mesh, fmt: str) -> None:
    assert len(mesh.to_bytes(fmt)) > 100


def test_depth_npy_is_the_original_size(photo_array: np.ndarray, mesh: orfeas.Mesh, tmp_path: Path) -> None:
    (path,) = mesh.save(tmp_path / "m.depth.npy")
    depth = np.load(path)
    assert depth.dtype == np.float32 and depth.shape == photo_array.shape[:2]


def test_save_never_overwrites_unless_asked(mesh: orfeas.Mesh, tmp_path: Path) -> None:
    target = tmp_path / "x.ply"
    target.write_bytes(b"keep me")
    with pytest.raises(orfeas.IoError) as info:
        mesh.save(target)
    assert info.value.code == "ERR_IO" and target.read_bytes() == b"keep me"
    mesh.save(target, overwrite=True)
    assert target.read_bytes().startswith(b"ply")


def test_save_refuses_names_that_do_not_match_the_format(mesh: orfeas.Mesh, tmp_path: Path) -> None:
    with pytest.raises(orfeas.InvalidInputError):
        mesh.save(tmp_path / "model.unknown")
    with pytest.raises(orfeas.InvalidInputError):
        mesh.save(tmp_path / "model.stl", format="glb")


def test_surface_is_open(photo_array: np.ndarray) -> None:
    surface = orfeas.image_to_mesh(photo_array, quality="low", solid=False)
    assert not surface.watertight and surface.triangle_count > 0


def test_depth_method_is_reported(photo_array: np.ndarray) -> None:
    assert orfeas.image_to_mesh(photo_array, quality="low", depth="relief").depth == "relief"
    assert orfeas.image_to_mesh(photo_array, quality="low", depth="inflate").depth == "inflate"

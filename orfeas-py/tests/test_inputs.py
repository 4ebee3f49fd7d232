"""Every kind of image input: numpy (gray, RGB, RGBA, uint16, strided), PIL, bytes, paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import orfeas


def test_numpy_rgb_rgba_gray_and_uint16(photo_array: np.ndarray) -> None:
    gray = photo_array.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([photo_array, np.full(photo_array.shape[:2], 255, np.uint8)])
    for image in (photo_array, rgba, gray, gray[..., None], gray.astype(np.uint16) * 257):
        mesh = orfeas.image_to_mesh(image, quality="low")
        assert mesh.triangle_count > 0 and mesh.watertight


def test_alpha_channel_becomes_the_mask(photo_array: np.ndarray) -> None:
    alpha = np.zeros(photo_array.shape[:2], np.uint8)
    alpha[20:70, 30:100] = 255
    mesh = orfeas.image_to_mesh(np.dstack([photo_array, alpha]), quality="low")
    assert mesh.mask == "alpha"


def test_non_contiguous_array_is_read_in_logical_order(photo_array: np.ndarray) -> None:
    flipped = photo_array[:, ::-1]
    assert not flipped.flags["C_CONTIGUOUS"]
    a = orfeas.image_to_mesh(flipped, quality="low", depth="relief")
    b = orfeas.image_to_mesh(np.ascontiguousarray(flipped), quality="low", depth="relief")
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)


def test_numpy_and_png_bytes_of_the_same_pixels_give_the_same_mesh(photo_array: np.ndarray, png_bytes: bytes) -> None:
    a = orfeas.image_to_mesh(photo_array, quality="low")
    b = orfeas.image_to_mesh(png_bytes, quality="low")
    c = orfeas.image_to_mesh(bytearray(png_bytes), quality="low")
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(b.vertices, c.vertices)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.float32), np.zeros((10, 10, 5), np.uint8), np.zeros((0, 10), np.uint8), np.zeros(10, np.uint8)],
)
def test_unusable_arrays_raise_invalid_input(bad: np.ndarray) -> None:
    with pytest.raises(orfeas.InvalidInputError) as info:
        orfeas.image_to_mesh(bad)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "1"])
def test_pil_images_in_any_mode(photo_array: np.ndarray, mode: str) -> None:
    image = Image.fromarray(photo_array).convert(mode)
    mesh = orfeas.image_to_mesh(image, quality="low")
    assert mesh.triangle_count > 0


def test_pil_image_equals_its_numpy_array(photo_array: np.ndarray) -> None:
    a = orfeas.image_to_mesh(Image.fromarray(photo_array), quality="low")
    b = orfeas.image_to_mesh(photo_array, quality="low")
    assert np.array_equal(a.vertices, b.vertices)


def test_paths_as_str_and_pathlib(examples: Path) -> None:
    path = examples / "heart.bmp"
    a = orfeas.image_to_mesh(path, quality="low")
    b = orfeas.image_to_mesh(str(path), quality="low")
    assert a.triangle_count == b.triangle_count > 0


def test_batch_mixes_every_input_kind_and_names_them(tmp_path: Path, examples: Path, photo_array: np.ndarray, png_bytes: bytes) -> None:
    proc = orfeas.BatchProcessor(slots=2)
    inputs = [
        examples / "heart.bmp",
        png_bytes,
        photo_array,
        Image.fromarray(photo_array),
        ("named-array", photo_array),
        ("named-bytes.png", png_bytes),
        ("named-pil", Image.fromarray(photo_array).convert("P")),
    ]
    results = proc.run(inputs, tmp_path, formats=["stl"], quality="low")
    assert [r.status for r in results] == ["complete"] * len(inputs)
    names = sorted(Path(r.outputs[0]).name for r in results)
    assert names == sorted(["heart.stl", "input-2.stl", "input-3.stl", "input-4.stl", "named-array.stl", "named-bytes.stl", "named-pil.stl"])


def test_directories_expand_like_the_cli(tmp_path: Path, examples: Path) -> None:
    expected = sorted(p.name for p in examples.iterdir() if p.suffix.lower() in {".png", ".jpg", ".bmp", ".webp"})
    found = [p.name for p in orfeas.collect_paths([examples])]
    assert found == expected
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "x.png").write_bytes(b"")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_bytes(b"")
    assert orfeas.collect_paths([tmp_path / "a"]) == []
    assert orfeas.collect_paths([tmp_path / "a"], recursive=True) == [nested / "x.png"]

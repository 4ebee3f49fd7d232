"""Errors: one class per core code, rooted at OrfeasError, ValueError/OSError where natural."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import orfeas
from orfeas import errors

EXPECTED = {
    "ERR_INVALID_INPUT": (orfeas.InvalidInputError, ValueError),
    "ERR_EMPTY_INPUT": (orfeas.EmptyInputError, ValueError),
    "ERR_UNSUPPORTED_FORMAT": (orfeas.UnsupportedFormatError, ValueError),
    "ERR_IMAGE_TOO_LARGE": (orfeas.ImageTooLargeError, ValueError),
    "ERR_IMAGE_DECODE": (orfeas.ImageDecodeError, ValueError),
    "ERR_IO": (orfeas.IoError, OSError),
    "ERR_MESHING": (orfeas.MeshingError, orfeas.OrfeasError),
    "ERR_EXPORT": (orfeas.ExportError, orfeas.OrfeasError),
    "ERR_WEIGHTS_NOT_FOUND": (orfeas.WeightsNotFoundError, OSError),
    "ERR_WEIGHTS_INVALID": (orfeas.WeightsInvalidError, ValueError),
    "ERR_NO_FOREGROUND": (orfeas.NoForegroundError, ValueError),
    "ERR_DEPTH": (orfeas.DepthError, orfeas.OrfeasError),
    "ERR_DEVICE": (orfeas.DeviceError, orfeas.OrfeasError),
    "ERR_FEATURE_DISABLED": (orfeas.FeatureDisabledError, orfeas.OrfeasError),
    "ERR_CANCELLED": (orfeas.CancelledError, orfeas.OrfeasError),
    "ERR_INTERNAL": (orfeas.InternalError, orfeas.OrfeasError),
}


def test_every_core_code_has_its_class() -> None:
    assert set(errors.ERRORS_BY_CODE) == set(EXPECTED)
    for code, (cls, also) in EXPECTED.items():
        assert issubclass(cls, orfeas.OrfeasError) and issubclass(cls, also)
        err = errors.error_from_code(code, "message")
        assert type(err) is cls and err.code == code and str(err) == "message"


def test_unknown_code_gives_root_class_with_the_code() -> None:
    err = errors.error_from_code("ERR_SOMETHING_NEW", "m")
    assert type(err) is orfeas.OrfeasError and err.code == "ERR_SOMETHING_NEW"


def test_not_an_image_raises_unsupported_format() -> None:
    with pytest.raises(orfeas.UnsupportedFormatError) as info:
        orfeas.image_to_mesh(b"this is plain text, not an image")
    assert isinstance(info.value, ValueError)
    assert info.value.code == "ERR_UNSUPPORTED_FORMAT"
    assert "input-1" in str(info.value)


def test_empty_bytes_raise_empty_input() -> None:
    with pytest.raises(orfeas.EmptyInputError) as info:
        orfeas.image_to_mesh(b"")
    assert info.value.code == "ERR_EMPTY_INPUT"


def test_truncated_png_raises_decode_error(png_bytes: bytes) -> None:
    with pytest.raises(orfeas.ImageDecodeError) as info:
        orfeas.image_to_mesh(png_bytes[: len(png_bytes) // 2])
    assert info.value.code == "ERR_IMAGE_DECODE"


def test_missing_file_raises_io_error(tmp_path: Path) -> None:
    with pytest.raises(orfeas.IoError) as info:
        orfeas.image_to_mesh(tmp_path / "missing.png")
    assert isinstance(info.value, OSError) and info.value.code == "ERR_IO"
    assert "missing.png" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"slots": 0}, {"depth": "magic"}, {"device": "tpu"}, {"method": "nerf"}, {"depth": "triposr"}, {"method": "triposr", "depth": "relief"}],
)
def test_bad_processor_arguments_raise_invalid_input(kwargs: dict) -> None:
    with pytest.raises(orfeas.InvalidInputError) as info:
        orfeas.BatchProcessor(**kwargs)
    assert isinstance(info.value, ValueError) and info.value.code == "ERR_INVALID_INPUT"


def test_cuda_without_the_feature_is_refused() -> None:
    with pytest.raises(orfeas.FeatureDisabledError) as info:
        orfeas.BatchProcessor(device="cuda")
    assert info.value.code == "ERR_FEATURE_DISABLED"


def test_missing_weights_raise_weights_not_found(tmp_path: Path) -> None:
    with pytest.raises(orfeas.WeightsNotFoundError) as info:
        orfeas.BatchProcessor(depth="depth-anything", weights=tmp_path / "no-such-weights")
    assert isinstance(info.value, OSError) and info.value.code == "ERR_WEIGHTS_NOT_FOUND"


@pytest.mark.parametrize(
    "kwargs",
    [{"quality": "ultra"}, {"formats": ["stl", "xyz"]}, {"formats": []}, {"width_mm": -1.0}, {"base_mm": 0.0}, {"max_error": 2.0}],
)
def test_bad_run_arguments_raise_before_any_job(tmp_path: Path, photo_array: np.ndarray, kwargs: dict) -> None:
    proc = orfeas.BatchProcessor(slots=1)
    with pytest.raises(orfeas.InvalidInputError):
        proc.run([photo_array], tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_wrong_input_type_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="input 1"):
        orfeas.BatchProcessor(slots=1).run([12345], tmp_path)

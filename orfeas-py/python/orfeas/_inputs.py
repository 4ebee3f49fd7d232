"""Normalising what users pass as images: PIL images become numpy arrays, directories expand
to the images inside them (the same rules as ``orfeas generate``), everything else is handed
to the native module as it is (paths, bytes, numpy arrays, ``(name, data)`` pairs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, List, Sequence, Union

#: Extensions picked up when scanning a directory; files named explicitly are always used
#: (the decoder judges them by content, not by name).
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "jpe", "webp", "bmp", "tif", "tiff", "gif"})

#: PIL modes numpy turns into arrays the native module reads (uint8 gray/RGB/RGBA, uint16 gray).
_DIRECT_PIL_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16"})


def is_pil_image(obj: object) -> bool:
    """Duck-typed, so Pillow is never imported unless the user already did."""
    return all(hasattr(obj, attr) for attr in ("mode", "size", "tobytes", "convert")) and not isinstance(obj, (str, bytes))


def pil_to_array(image: Any) -> Any:
    """A PIL image as an H×W[×C] uint8 (or uint16 gray) numpy array; palette, CMYK, 1-bit and
    other modes are converted to RGBA (palette with transparency) or RGB first."""
    import numpy as np

    mode = image.mode
    if mode not in _DIRECT_PIL_MODES:
        has_alpha = "A" in mode or "transparency" in getattr(image, "info", {})
        image = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(image)


def normalise_image(obj: Any) -> Any:
    """One image argument as the native module takes it."""
    if isinstance(obj, tuple) and len(obj) == 2 and is_pil_image(obj[1]):
        return (obj[0], pil_to_array(obj[1]))
    if is_pil_image(obj):
        return pil_to_array(obj)
    return obj


def collect_paths(paths: Iterable[Union[str, "os.PathLike[str]"]], recursive: bool = False) -> List[Path]:
    """Files as given; directories expanded (sorted, hidden entries skipped, image extensions
    only, subdirectories with ``recursive``). A missing path is kept, so it is reported as a
    failed job instead of disappearing."""
    out: List[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _scan_dir(path, recursive, out)
        else:
            out.append(path)
    return out


def _scan_dir(directory: Path, recursive: bool, out: List[Path]) -> None:
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if recursive:
                _scan_dir(entry, recursive, out)
        elif entry.suffix[1:].lower() in IMAGE_EXTENSIONS:
            out.append(entry)


def normalise_inputs(inputs: Any, recursive: bool = False) -> List[Any]:
    """The ``inputs`` of ``BatchProcessor.run``: one item or a sequence of items, where each
    directory path expands to its images."""
    if isinstance(inputs, (str, bytes, bytearray, os.PathLike, tuple)) or is_pil_image(inputs) or _is_ndarray(inputs):
        items: Sequence[Any] = [inputs]
    else:
        items = list(inputs)
    out: List[Any] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            out.extend(str(p) for p in collect_paths([item], recursive))
        else:
            out.append(normalise_image(item))
    return out


def _is_ndarray(obj: object) -> bool:
    return type(obj).__name__ == "ndarray" and hasattr(obj, "dtype")

"""Exceptions raised by orfeas, one class per stable core error code.

Every class derives from :class:`OrfeasError` and carries ``.code`` (``"ERR_..."``), the same
code the CLI's ``--json`` report, the HTTP server and the Node package use. Classes for bad
input (including an image without a foreground and unusable weight files) also derive from
:class:`ValueError`; those for files and missing weights from :class:`OSError`.
"""

from __future__ import annotations

from typing import Dict, Type


class OrfeasError(Exception):
    """Root of every orfeas error. ``code`` is the stable machine-readable code."""

    code: str = "ERR_INTERNAL"


class InvalidInputError(OrfeasError, ValueError):
    """An argument or option is out of range or inconsistent."""

    code = "ERR_INVALID_INPUT"


class EmptyInputError(OrfeasError, ValueError):
    """The input holds no bytes at all."""

    code = "ERR_EMPTY_INPUT"


class UnsupportedFormatError(OrfeasError, ValueError):
    """The bytes are not an image format orfeas reads."""

    code = "ERR_UNSUPPORTED_FORMAT"


class ImageTooLargeError(OrfeasError, ValueError):
    """The image is beyond the size limits; refused before decoding."""

    code = "ERR_IMAGE_TOO_LARGE"


class ImageDecodeError(OrfeasError, ValueError):
    """The image is of a known format but corrupt or truncated."""

    code = "ERR_IMAGE_DECODE"


class IoError(OrfeasError, OSError):
    """A file could not be read or written (also: the target file already exists)."""

    code = "ERR_IO"


class MeshingError(OrfeasError):
    """Meshing produced nothing usable (e.g. an empty foreground)."""

    code = "ERR_MESHING"


class ExportError(OrfeasError):
    """A writer failed for a reason other than I/O."""

    code = "ERR_EXPORT"


class WeightsNotFoundError(OrfeasError, OSError):
    """Model weights (Depth Anything, TripoSR) were asked for but are not available; the
    message says how to get them."""

    code = "ERR_WEIGHTS_NOT_FOUND"


class WeightsInvalidError(OrfeasError, ValueError):
    """Model weights were found but cannot be used (unreadable, truncated, or not matching
    their configuration); the message names the file and the first bad tensor."""

    code = "ERR_WEIGHTS_INVALID"


class NoForegroundError(OrfeasError, ValueError):
    """The image holds no object to reconstruct (fully transparent, or nothing could be told
    apart from the background)."""

    code = "ERR_NO_FOREGROUND"


class DepthError(OrfeasError):
    """The estimated depth (a relief's depth map, an object's density field) is more than 1 %
    NaN or infinite: damaged weights or an overflowing device."""

    code = "ERR_DEPTH"


class DeviceError(OrfeasError):
    """A device (e.g. ``cuda:1``) is unknown or unusable."""

    code = "ERR_DEVICE"


class FeatureDisabledError(OrfeasError):
    """This build lacks an optional feature (e.g. ``cuda``)."""

    code = "ERR_FEATURE_DISABLED"


class CancelledError(OrfeasError):
    """The work was cancelled (through a :class:`orfeas.CancelToken`)."""

    code = "ERR_CANCELLED"


class InternalError(OrfeasError):
    """A bug in orfeas; the message says where."""

    code = "ERR_INTERNAL"


ERRORS_BY_CODE: Dict[str, Type[OrfeasError]] = {
    cls.code: cls
    for cls in (
        InvalidInputError,
        EmptyInputError,
        UnsupportedFormatError,
        ImageTooLargeError,
        ImageDecodeError,
        IoError,
        MeshingError,
        ExportError,
        WeightsNotFoundError,
        WeightsInvalidError,
        NoForegroundError,
        DepthError,
        DeviceError,
        FeatureDisabledError,
        CancelledError,
        InternalError,
    )
}


def error_from_code(code: str, message: str) -> OrfeasError:
    """The exception for a core error code; an unknown (newer) code gives a plain OrfeasError."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    error = OrfeasError(message)
    error.code = code
    return error


__all__ = [
    "ERRORS_BY_CODE",
    "CancelledError",
    "DepthError",
    "DeviceError",
    "EmptyInputError",
    "ExportError",
    "FeatureDisabledError",
    "ImageDecodeError",
    "ImageTooLargeError",
    "InternalError",
    "InvalidInputError",
    "IoError",
    "MeshingError",
    "NoForegroundError",
    "OrfeasError",
    "UnsupportedFormatError",
    "WeightsInvalidError",
    "WeightsNotFoundError",
    "error_from_code",
]

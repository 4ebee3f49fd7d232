"""orfeas: turn batches of images into printable 3D models (STL, OBJ, GLB, PLY, 3MF).

A thin binding over the Rust engine ``orfeas-core``. The GIL is released while work runs;
progress arrives as dicts (``{"event": name, **data}``, the WebSocket events' shapes); errors
are subclasses of :class:`OrfeasError` carrying a stable ``.code``.

>>> proc = orfeas.BatchProcessor()
>>> results = proc.run(["photos/"], "out", formats=["stl", "glb"], on_progress=print)
>>> mesh = orfeas.image_to_mesh("photo.jpg")
>>> mesh.vertices.shape, mesh.faces.shape
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from . import _orfeas

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
from ._inputs import collect_paths, normalise_image, normalise_inputs
from ._orfeas import CancelToken, JobResult, Mesh, __version__, formats, gpu_stats
from .errors import (
    CancelledError,
    DepthError,
    DeviceError,
    EmptyInputError,
    ExportError,
    FeatureDisabledError,
    ImageDecodeError,
    ImageTooLargeError,
    InternalError,
    InvalidInputError,
    IoError,
    MeshingError,
    NoForegroundError,
    OrfeasError,
    UnsupportedFormatError,
    WeightsInvalidError,
    WeightsNotFoundError,
)

#: A progress callback: receives one dict per event.
ProgressCallback = Callable[[Dict[str, Any]], Any]
#: One image: a path, encoded bytes, a numpy array, a PIL image or ``(name, bytes/array/PIL)``.
ImageInput = Any
PathLike = Union[str, "os.PathLike[str]"]


def _format_list(formats: Union[str, Sequence[str]]) -> List[str]:
    return [formats] if isinstance(formats, str) else list(formats)


class BatchProcessor:
    """Runs batches on ``slots`` concurrent slots; the method's model (Depth Anything or
    TripoSR, when used) is loaded once here and shared by every batch. Safe to use from several
    threads at once.

    ``method``: ``auto``, ``relief``, ``inflate``, ``depth-anything`` (2.5D reliefs) or
    ``triposr`` (a full 3D object); ``depth`` is its alias for the 2.5D values (give one, or
    both agreeing). ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``weights``: the
    method's weights, a file or directory (Depth Anything: transformers layout or the authors'
    ``.pth``; TripoSR: ``config.yaml`` + ``model.ckpt``); else the Hugging Face cache is
    searched. ``slots``: jobs at once (default: one per core on the CPU, at most 16; four per
    GPU). ``threads``: the process's CPU pool for data-parallel work (default: every core; the
    pool is made once per process, so only the first processor's value counts).
    ``segmenter_weights``: BiRefNet's ``model.safetensors`` (the file or its directory) for
    ``background="birefnet"`` (and ``"auto"``); else the Hugging Face cache is searched
    (``orfeas fetch-model --model birefnet-lite``). :attr:`backgrounds` says what can run.
    ``durable``: sync each job's files and folder to the disk before it completes (default
    off; files are always published atomically by rename).
    """

    def __init__(
        self,
        slots: Optional[int] = None,
        device: str = "auto",
        depth: Optional[str] = None,
        weights: Optional[PathLike] = None,
        threads: Optional[int] = None,
        method: Optional[str] = None,
        segmenter_weights: Optional[PathLike] = None,
        durable: bool = False,
    ) -> None:
        self._native = _orfeas.BatchProcessor(
            slots=slots,
            device=device,
            depth=depth,
            weights=None if weights is None else os.fspath(weights),
            threads=threads,
            method=method,
            segmenter_weights=None if segmenter_weights is None else os.fspath(segmenter_weights),
            durable=durable,
        )

    @property
    def slots(self) -> int:
        """Number of slots."""
        return self._native.slots

    @property
    def device(self) -> str:
        """The device the depth model runs on (``cpu`` or ``cuda:N``)."""
        return self._native.device

    @property
    def method(self) -> str:
        """The requested method (``auto``, ..., ``triposr``)."""
        return self._native.method

    @property
    def depth(self) -> str:
        """The requested method under its 2.5D name (the same value as :attr:`method`)."""
        return self._native.depth

    @property
    def backgrounds(self) -> List[str]:
        """The ``background=`` values :meth:`run` can use here (``birefnet`` only when BiRefNet
        is loaded)."""
        return self._native.backgrounds

    @property
    def busy_slots(self) -> int:
        """Slots running a job right now."""
        return self._native.busy_slots

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return self._native.queued

    def gpu_stats(self) -> Dict[str, Any]:
        """:func:`gpu_stats` plus ``slots`` ``{total, busy}`` and ``queue``."""
        return self._native.gpu_stats()

    def run(
        self,
        inputs: Any,
        out_dir: PathLike,
        formats: Union[str, Sequence[str]] = ("stl",),
        quality: str = "medium",
        on_progress: Optional[ProgressCallback] = None,
        width_mm: float = 100.0,
        depth_mm: float = 20.0,
        base_mm: float = 2.0,
        solid: bool = True,
        max_error: Optional[float] = None,
        max_triangles: Optional[int] = None,
        recursive: bool = False,
        cancel: Optional[CancelToken] = None,
        resolution: Optional[int] = None,
        keep_largest: bool = False,
        background: str = "auto",
    ) -> List[JobResult]:
        """Converts every input into ``<out_dir>/<stem>.<ext>`` files; one :class:`JobResult` per
        image, in input order. A bad image fails its own job only.

        ``inputs``: paths (directories expand to the images inside, into subdirectories with
        ``recursive``), bytes, numpy arrays (H×W, H×W×3, H×W×4 uint8), PIL images, or
        ``(name, data)`` pairs naming in-memory images (else ``input-1``, ``input-2``, ...).
        ``on_progress`` is called on this thread with one dict per event; an exception in it is
        logged on the ``orfeas`` logger and the batch goes on. Ctrl-C cancels the batch and
        raises ``KeyboardInterrupt`` once the slots stopped; ``cancel`` does the same from
        another thread (cancelled jobs come back with status ``"cancelled"``).
        ``resolution`` (objects): the marching-cubes grid, default from ``quality`` (low 128,
        medium 192, high 256); ``keep_largest`` keeps only an object's largest part.
        Raises :class:`InvalidInputError` for arguments no job could use (also formats the
        method cannot make: ``depth16``/``depth.npy`` of an object, ``field.npy`` of a relief).
        ``background``: where the foreground mask comes from: ``auto`` (the alpha channel when
        real, else BiRefNet when loaded, else the border estimate), ``alpha``, ``border``,
        ``birefnet`` (:class:`WeightsNotFoundError` when BiRefNet is not loaded) or ``none``;
        each result's ``mask`` says which ran. ``formats=["mask.png"]`` (and/or ``mask.npy``)
        alone only runs the masking stage: ``<stem>.mask.png`` is 8-bit gray at the image's
        size, 255 = subject.
        """
        return self._native.run(
            normalise_inputs(inputs, recursive),
            os.fspath(out_dir),
            _format_list(formats),
            quality=quality,
            on_progress=on_progress,
            width_mm=width_mm,
            depth_mm=depth_mm,
            base_mm=base_mm,
            solid=solid,
            max_error=max_error,
            max_triangles=max_triangles,
            cancel=cancel,
            resolution=resolution,
            keep_largest=keep_largest,
            background=background,
        )

    async def run_async(
        self,
        inputs: Any,
        out_dir: PathLike,
        formats: Union[str, Sequence[str]] = ("stl",),
        quality: str = "medium",
        on_progress: Optional[ProgressCallback] = None,
        width_mm: float = 100.0,
        depth_mm: float = 20.0,
        base_mm: float = 2.0,
        solid: bool = True,
        max_error: Optional[float] = None,
        max_triangles: Optional[int] = None,
        recursive: bool = False,
        cancel: Optional[CancelToken] = None,
        resolution: Optional[int] = None,
        keep_largest: bool = False,
        background: str = "auto",
    ) -> List[JobResult]:
        """:meth:`run` for asyncio: runs in the loop's default executor, delivers ``on_progress``
        on the event loop (``loop.call_soon_threadsafe``), and cancelling the awaiting task
        cancels the batch (the task ends with ``asyncio.CancelledError`` once the slots stopped)."""
        loop = asyncio.get_running_loop()
        token = cancel if cancel is not None else CancelToken()
        forward: Optional[ProgressCallback] = None
        if on_progress is not None:
            callback = on_progress

            def forward(event: Dict[str, Any]) -> None:
                loop.call_soon_threadsafe(callback, event)

        items = normalise_inputs(inputs, recursive)
        future = loop.run_in_executor(
            None,
            lambda: self._native.run(
                items,
                os.fspath(out_dir),
                _format_list(formats),
                quality=quality,
                on_progress=forward,
                width_mm=width_mm,
                depth_mm=depth_mm,
                base_mm=base_mm,
                solid=solid,
                max_error=max_error,
                max_triangles=max_triangles,
                cancel=token,
                resolution=resolution,
                keep_largest=keep_largest,
                background=background,
            ),
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            token.cancel()
            # Wait for the slots to stop, so no job keeps writing after the task is gone.
            await asyncio.wait([future])
            raise

    def __repr__(self) -> str:
        return repr(self._native)


def image_to_mesh(
    image: ImageInput,
    quality: str = "medium",
    depth: Optional[str] = None,
    weights: Optional[PathLike] = None,
    device: str = "auto",
    width_mm: float = 100.0,
    depth_mm: float = 20.0,
    base_mm: float = 2.0,
    solid: bool = True,
    max_error: Optional[float] = None,
    max_triangles: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    method: Optional[str] = None,
    resolution: Optional[int] = None,
    keep_largest: bool = False,
    background: str = "auto",
    segmenter_weights: Optional[PathLike] = None,
) -> Mesh:
    """One image (path, bytes, numpy array, PIL image) to a :class:`Mesh`, without writing files.

    ``method`` (or its 2.5D alias ``depth``) as for :class:`BatchProcessor`; ``weights`` are the
    method's. An object (``method="triposr"``) keeps its density field for
    ``mesh.to_bytes("field.npy")``; ``resolution`` and ``keep_largest`` as for
    :meth:`BatchProcessor.run`. :class:`NoForegroundError` when the image holds no object.
    ``background`` as for :meth:`BatchProcessor.run` (``mesh.mask`` says which source ran),
    ``segmenter_weights`` as for :class:`BatchProcessor`; ``birefnet`` without BiRefNet's
    weights raises :class:`WeightsNotFoundError` before the image is read. The mesh keeps its
    mask: ``mesh.to_bytes("mask.png")`` / ``"mask.npy"``.

    Raises the matching :class:`OrfeasError` subclass when the image cannot be used (e.g.
    :class:`UnsupportedFormatError`, a ``ValueError``), :class:`CancelledError` when ``cancel``
    was cancelled, ``KeyboardInterrupt`` on Ctrl-C.
    """
    return _orfeas.image_to_mesh(
        normalise_image(image),
        quality=quality,
        depth=depth,
        weights=None if weights is None else os.fspath(weights),
        device=device,
        width_mm=width_mm,
        depth_mm=depth_mm,
        base_mm=base_mm,
        solid=solid,
        max_error=max_error,
        max_triangles=max_triangles,
        on_progress=on_progress,
        cancel=cancel,
        method=method,
        resolution=resolution,
        keep_largest=keep_largest,
        background=background,
        segmenter_weights=None if segmenter_weights is None else os.fspath(segmenter_weights),
    )


def estimate_depth(
    image: ImageInput,
    depth: str = "auto",
    quality: str = "medium",
    weights: Optional[PathLike] = None,
    device: str = "auto",
    cancel: Optional[CancelToken] = None,
) -> "npt.NDArray[np.float32]":
    """The depth map of one image at its original size, float32 ``[H, W]`` (what ``depth.npy``
    holds): Depth Anything's relative inverse depth (larger = closer), or the weight-free
    estimators' heights in [0, 1]. ``quality`` sets the working and model resolution."""
    return _orfeas.estimate_depth(
        normalise_image(image),
        depth=depth,
        quality=quality,
        weights=None if weights is None else os.fspath(weights),
        device=device,
        cancel=cancel,
    )


__all__ = [
    "BatchProcessor",
    "CancelToken",
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
    "JobResult",
    "Mesh",
    "MeshingError",
    "NoForegroundError",
    "OrfeasError",
    "UnsupportedFormatError",
    "WeightsInvalidError",
    "WeightsNotFoundError",
    "__version__",
    "collect_paths",
    "estimate_depth",
    "formats",
    "gpu_stats",
    "image_to_mesh",
]

"""Type stubs of the native module ``orfeas._orfeas`` (checked with ``mypy.stubtest``)."""

import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt
from typing_extensions import final

__all__ = [
    "BatchProcessor",
    "__version__",
    "CancelToken",
    "JobResult",
    "Mesh",
    "estimate_depth",
    "formats",
    "gpu_stats",
    "image_to_mesh",
]

__version__: str

@final
class CancelToken:
    def __new__(cls) -> CancelToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@final
class JobResult:
    @property
    def job_id(self) -> str: ...
    @property
    def input(self) -> str: ...
    @property
    def outputs(self) -> List[str]: ...
    @property
    def output_formats(self) -> List[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def code(self) -> Optional[str]: ...
    @property
    def depth(self) -> Optional[str]: ...
    @property
    def method(self) -> Optional[str]: ...
    @property
    def mask(self) -> Optional[str]: ...
    @property
    def resolution(self) -> Optional[int]: ...
    @property
    def warnings(self) -> List[str]: ...
    @property
    def triangles(self) -> int: ...
    @property
    def watertight(self) -> bool: ...
    @property
    def seconds(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Mesh:
    @property
    def vertices(self) -> npt.NDArray[np.float32]: ...
    @property
    def faces(self) -> npt.NDArray[np.uint32]: ...
    @property
    def uvs(self) -> npt.NDArray[np.float32]: ...
    @property
    def colors(self) -> npt.NDArray[np.uint8]: ...
    @property
    def triangle_count(self) -> int: ...
    @property
    def watertight(self) -> bool: ...
    @property
    def depth(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def resolution(self) -> Optional[int]: ...
    @property
    def warnings(self) -> List[str]: ...
    @property
    def mask(self) -> str: ...
    @property
    def max_error(self) -> Optional[float]: ...
    @property
    def bounds(self) -> Optional[Tuple[Tuple[float, float, float], Tuple[float, float, float]]]: ...
    def to_bytes(self, format: str = "stl") -> bytes: ...
    def save(self, path: Union[str, os.PathLike[str]], format: Optional[str] = None, overwrite: bool = False) -> List[str]: ...
    def __len__(self) -> int: ...

@final
class BatchProcessor:
    def __new__(
        cls,
        slots: Optional[int] = None,
        device: str = "auto",
        depth: Optional[str] = None,
        weights: Optional[Union[str, os.PathLike[str]]] = None,
        threads: Optional[int] = None,
        method: Optional[str] = None,
        segmenter_weights: Optional[Union[str, os.PathLike[str]]] = None,
        durable: bool = False,
    ) -> BatchProcessor: ...
    @property
    def slots(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def depth(self) -> str: ...
    @property
    def backgrounds(self) -> List[str]: ...
    @property
    def busy_slots(self) -> int: ...
    @property
    def queued(self) -> int: ...
    def gpu_stats(self) -> Dict[str, Any]: ...
    def run(
        self,
        inputs: List[Any],
        out_dir: Union[str, os.PathLike[str]],
        formats: List[str],
        quality: str = "medium",
        on_progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
        width_mm: float = 100.0,
        depth_mm: float = 20.0,
        base_mm: float = 2.0,
        solid: bool = True,
        max_error: Optional[float] = None,
        max_triangles: Optional[int] = None,
        cancel: Optional[CancelToken] = None,
        resolution: Optional[int] = None,
        keep_largest: bool = False,
        background: str = "auto",
    ) -> List[JobResult]: ...

def image_to_mesh(
    image: Any,
    quality: str = "medium",
    depth: Optional[str] = None,
    weights: Optional[str] = None,
    device: str = "auto",
    width_mm: float = 100.0,
    depth_mm: float = 20.0,
    base_mm: float = 2.0,
    solid: bool = True,
    max_error: Optional[float] = None,
    max_triangles: Optional[int] = None,
    on_progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
    cancel: Optional[CancelToken] = None,
    method: Optional[str] = None,
    resolution: Optional[int] = None,
    keep_largest: bool = False,
    background: str = "auto",
    segmenter_weights: Optional[str] = None,
) -> Mesh: ...
def estimate_depth(
    image: Any,
    depth: str = "auto",
    quality: str = "medium",
    weights: Optional[str] = None,
    device: str = "auto",
    cancel: Optional[CancelToken] = None,
) -> npt.NDArray[np.float32]: ...
def gpu_stats() -> Dict[str, Any]: ...
def formats() -> List[str]: ...

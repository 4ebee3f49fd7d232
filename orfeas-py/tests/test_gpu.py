"""gpu_stats: a dict like /api/gpu-stats; available=False (with a reason) on a machine without a GPU."""

from __future__ import annotations

import shutil

import pytest

import orfeas


def test_gpu_stats_shape() -> None:
    stats = orfeas.gpu_stats()
    assert isinstance(stats["available"], bool) and isinstance(stats["gpus"], list)
    if stats["available"]:
        for gpu in stats["gpus"]:
            assert {"index", "name", "memory_used_mb", "memory_total_mb", "utilization_percent", "temperature_c"} <= set(gpu)
    else:
        assert stats["gpus"] == [] and stats["reason"]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_no_gpu_here_means_available_false() -> None:
    assert orfeas.gpu_stats()["available"] is False


def test_processor_gpu_stats_adds_slots_and_queue() -> None:
    proc = orfeas.BatchProcessor(slots=3)
    stats = proc.gpu_stats()
    assert stats["slots"] == {"total": 3, "busy": 0} and stats["queue"] == 0
    assert "available" in stats


def test_version_and_formats() -> None:
    assert orfeas.__version__.count(".") == 2
    assert orfeas.formats() == ["stl", "stl-ascii", "obj", "glb", "ply", "3mf", "depth16", "depth.npy", "field.npy", "mask.png", "mask.npy"]

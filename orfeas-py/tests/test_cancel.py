"""Cancellation: a CancelToken, KeyboardInterrupt from the callback, and Ctrl-C (SIGINT
delivered with _thread.interrupt_main while the call waits without the GIL)."""

from __future__ import annotations

import _thread
import signal
import threading
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest

import orfeas

COPIES = 24


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C as an interactive Python gets it. A process started in the background by a
    non-interactive shell inherits SIGINT ignored, and `_thread.interrupt_main()` then does
    nothing; these tests are about what happens when it does arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_token_cancelled_before_the_run_cancels_every_job(tmp_path: Path, photo_array: np.ndarray) -> None:
    token = orfeas.CancelToken()
    token.cancel()
    assert token.cancelled
    results = orfeas.BatchProcessor(slots=2).run([photo_array] * 3, tmp_path, cancel=token)
    assert [(r.status, r.code) for r in results] == [("cancelled", "ERR_CANCELLED")] * 3
    assert list(tmp_path.iterdir()) == []


def test_cancelling_from_the_callback_stops_the_rest(tmp_path: Path, heavy_png: Path) -> None:
    token = orfeas.CancelToken()

    def on_progress(event: Dict[str, Any]) -> None:
        if event["event"] == "generation_progress" and event["stage"] == "masking":
            token.cancel()

    proc = orfeas.BatchProcessor(slots=2)
    results = proc.run([heavy_png] * COPIES, tmp_path, quality="high", on_progress=on_progress, cancel=token)
    statuses = [r.status for r in results]
    assert statuses.count("cancelled") >= COPIES - 2, statuses
    written = [p for p in tmp_path.iterdir()]
    assert all(not p.name.startswith(".") for p in written), "no temporary files are left behind"
    assert proc.busy_slots == 0


def test_keyboard_interrupt_in_the_callback_cancels_and_propagates(tmp_path: Path, heavy_png: Path) -> None:
    def on_progress(event: Dict[str, Any]) -> None:
        if event.get("stage") == "loading":
            raise KeyboardInterrupt

    proc = orfeas.BatchProcessor(slots=2)
    with pytest.raises(KeyboardInterrupt):
        proc.run([heavy_png] * COPIES, tmp_path, quality="high", on_progress=on_progress)
    assert proc.busy_slots == 0 and proc.queued == 0
    assert len(list(tmp_path.glob("*.stl"))) < COPIES


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_while_waiting_cancels_the_batch(tmp_path: Path, heavy_png: Path) -> None:
    proc = orfeas.BatchProcessor(slots=2)
    started = threading.Event()

    def interrupt_once_running() -> None:
        started.wait(60)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_running, daemon=True).start()

    def on_progress(event: Dict[str, Any]) -> None:
        if event.get("stage") == "loading":
            started.set()

    with pytest.raises(KeyboardInterrupt):
        proc.run([heavy_png] * COPIES, tmp_path, quality="high", on_progress=on_progress)
    assert proc.busy_slots == 0 and proc.queued == 0
    assert len(list(tmp_path.glob("*.stl"))) < COPIES


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_without_a_callback_cancels_too(tmp_path: Path, heavy_png: Path) -> None:
    proc = orfeas.BatchProcessor(slots=2)

    def interrupt_when_busy() -> None:
        for _ in range(6000):
            if proc.busy_slots > 0:
                break
            threading.Event().wait(0.01)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_busy, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        proc.run([heavy_png] * COPIES, tmp_path, quality="high")
    assert proc.busy_slots == 0
    assert len(list(tmp_path.glob("*.stl"))) < COPIES


def test_image_to_mesh_honours_a_cancelled_token(photo_array: np.ndarray) -> None:
    token = orfeas.CancelToken()
    token.cancel()
    with pytest.raises(orfeas.CancelledError) as info:
        orfeas.image_to_mesh(photo_array, cancel=token)
    assert info.value.code == "ERR_CANCELLED"

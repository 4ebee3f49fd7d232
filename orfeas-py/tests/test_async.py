"""run_async: same results, progress on the event loop, task cancellation cancels the batch."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import orfeas


def test_run_async_returns_results_and_delivers_progress_on_the_loop(tmp_path: Path, photo_array: np.ndarray) -> None:
    events: List[Dict[str, Any]] = []
    threads = set()

    async def main() -> List[orfeas.JobResult]:
        proc = orfeas.BatchProcessor(slots=2)

        def on_progress(event: Dict[str, Any]) -> None:
            threads.add(threading.get_ident())
            events.append(event)

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.ensure_future(ticker())
        results = await proc.run_async([photo_array] * 3, tmp_path, formats=["glb"], quality="low", on_progress=on_progress)
        await asyncio.sleep(0)  # let the last call_soon_threadsafe callbacks run
        tick_task.cancel()
        assert ticks > 0, "the event loop kept running while the batch worked"
        return results

    results = asyncio.run(main())
    assert [r.status for r in results] == ["complete"] * 3
    assert threads == {threading.get_ident()}
    assert sum(e["event"] == "generation_complete" for e in events) == 3


def test_cancelling_the_task_cancels_the_batch(tmp_path: Path, heavy_png: Path) -> None:
    proc = orfeas.BatchProcessor(slots=2)
    copies = 24

    async def main() -> None:
        running = asyncio.Event()

        def on_progress(event: Dict[str, Any]) -> None:
            if event.get("stage") == "loading":
                running.set()

        task = asyncio.ensure_future(proc.run_async([heavy_png] * copies, tmp_path, quality="high", on_progress=on_progress))
        await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert proc.busy_slots == 0 and proc.queued == 0
    assert len(list(tmp_path.glob("*.stl"))) < copies

"""BatchProcessor.run: results, progress dicts on the calling thread, failing callbacks."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import orfeas


def test_batch_of_examples_writes_every_format(tmp_path: Path, examples: Path) -> None:
    proc = orfeas.BatchProcessor(slots=2)
    assert proc.slots == 2 and proc.device == "cpu" and proc.depth == "auto"
    results = proc.run([examples], tmp_path, formats="stl,glb", quality="low")
    inputs = orfeas.collect_paths([examples])
    assert [Path(r.input).name for r in results] == [p.name for p in inputs]
    for r in results:
        assert r.ok and r.status == "complete" and r.error is None and r.code is None
        assert r.depth in {"relief", "inflate"} and r.triangles > 0 and r.watertight and r.seconds > 0
        assert r.output_formats == ["stl", "glb"]
        for out in r.outputs:
            assert Path(out).is_file() and Path(out).parent == tmp_path
    assert proc.busy_slots == 0 and proc.queued == 0


def test_bad_input_fails_only_its_own_job(tmp_path: Path, photo_array: np.ndarray) -> None:
    results = orfeas.BatchProcessor(slots=2).run(
        [photo_array, b"not an image", tmp_path / "missing.png", photo_array], tmp_path / "out", quality="low"
    )
    assert [r.status for r in results] == ["complete", "error", "error", "complete"]
    assert [r.code for r in results] == [None, "ERR_UNSUPPORTED_FORMAT", "ERR_IO", None]
    assert results[1].outputs == [] and "input-2" in (results[1].error or "")
    assert results[1].to_dict()["code"] == "ERR_UNSUPPORTED_FORMAT"


def test_progress_events_are_dicts_on_the_calling_thread(tmp_path: Path, photo_array: np.ndarray) -> None:
    events: List[Dict[str, Any]] = []
    threads = set()

    def on_progress(event: Dict[str, Any]) -> None:
        threads.add(threading.get_ident())
        events.append(event)

    results = orfeas.BatchProcessor(slots=2).run(
        [photo_array, b"junk", photo_array], tmp_path, formats=["stl"], quality="low", on_progress=on_progress
    )
    assert threads == {threading.get_ident()}
    names = {e["event"] for e in events}
    assert {"generation_progress", "generation_complete", "generation_error", "batch_progress"} <= names
    progress = [e for e in events if e["event"] == "generation_progress"]
    stages = {e["stage"] for e in progress}
    assert {"queued", "loading", "masking", "depth_estimation", "meshing", "exporting"} <= stages
    for e in progress:
        assert set(e) >= {"job_id", "batch_id", "progress", "stage", "input"} and 0 <= e["progress"] <= 100
    complete = [e for e in events if e["event"] == "generation_complete"]
    assert len(complete) == 2 and all(e["success"] is True and e["triangles"] > 0 for e in complete)
    assert all(o["format"] == "stl" and o["bytes"] > 0 for e in complete for o in e["outputs"])
    (error,) = [e for e in events if e["event"] == "generation_error"]
    assert error["success"] is False and error["code"] == "ERR_UNSUPPORTED_FORMAT" and error["job_id"] == results[1].job_id
    last_batch = [e for e in events if e["event"] == "batch_progress"][-1]
    assert (last_batch["total"], last_batch["complete"], last_batch["failed"], last_batch["queued"]) == (3, 2, 1, 0)
    assert len({e["batch_id"] for e in events}) == 1


def test_an_exception_in_the_callback_is_logged_and_the_batch_goes_on(
    tmp_path: Path, photo_array: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def broken(event: Dict[str, Any]) -> None:
        calls.append(event["event"])
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="orfeas"):
        results = orfeas.BatchProcessor(slots=2).run([photo_array] * 3, tmp_path, quality="low", on_progress=broken)
    assert [r.status for r in results] == ["complete"] * 3
    assert len(calls) > 3, "the callback kept being called after it failed"
    records = [r for r in caplog.records if r.name == "orfeas"]
    assert len(records) == len(calls)
    assert "callback bug" in records[0].getMessage() and records[0].exc_info is not None


def test_processor_runs_batches_from_several_threads(tmp_path: Path, photo_array: np.ndarray) -> None:
    proc = orfeas.BatchProcessor(slots=2)
    outcomes: Dict[int, List[str]] = {}

    def worker(i: int) -> None:
        outcomes[i] = [r.status for r in proc.run([photo_array] * 2, tmp_path / str(i), quality="low")]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == {i: ["complete", "complete"] for i in range(3)}


def test_name_collisions_get_suffixes_never_overwrite(tmp_path: Path, photo_array: np.ndarray) -> None:
    proc = orfeas.BatchProcessor(slots=1)
    first = proc.run([("same", photo_array)], tmp_path, quality="low")
    second = proc.run([("same", photo_array), ("same", photo_array)], tmp_path, quality="low")
    names = [Path(r.outputs[0]).name for r in first + second]
    assert len(set(names)) == 3 and names[0] == "same.stl"


def test_the_gil_is_released_while_work_runs(tmp_path: Path, photo_array: np.ndarray) -> None:
    """A pure-Python thread can only count while the calling thread does not hold the GIL."""
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    proc = orfeas.BatchProcessor(slots=2)
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        before = counter[0]
        proc.run([photo_array] * 4, tmp_path, quality="low")
        during_run = counter[0] - before
        before = counter[0]
        orfeas.image_to_mesh(photo_array, quality="medium")
        during_mesh = counter[0] - before
    finally:
        stop.set()
        spinner.join()
    assert during_run > 10_000 and during_mesh > 10_000, (during_run, during_mesh)


def test_a_callback_that_is_not_callable_is_refused_before_any_work(tmp_path: Path, photo_array: np.ndarray) -> None:
    with pytest.raises(TypeError, match="on_progress"):
        orfeas.BatchProcessor(slots=1).run([photo_array], tmp_path, on_progress="print")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_slots_default_to_the_cores_and_zero_is_refused():
    # One slot per core on the CPU (at most 16); an explicit 0 is a mistake, not "auto".
    proc = orfeas.BatchProcessor(device="cpu", depth="relief")
    # At most the CPUs this process may use (a CPU quota can make it fewer).
    assert 1 <= proc.slots <= min(len(os.sched_getaffinity(0)), 16)
    with pytest.raises(orfeas.InvalidInputError, match="at least 1"):
        orfeas.BatchProcessor(slots=0)


def test_a_durable_batch_completes_with_its_files(tmp_path: Path, photo_array: np.ndarray):
    proc = orfeas.BatchProcessor(slots=1, device="cpu", depth="relief", durable=True)
    [result] = proc.run([photo_array], tmp_path, quality="low", formats=["stl"])
    assert result.status == "complete"
    assert all(Path(p).stat().st_size > 0 for p in result.outputs)

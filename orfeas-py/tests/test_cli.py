"""python -m orfeas generate: the CLI's flags, --json document and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

import orfeas


def run_cli(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orfeas", *args], capture_output=True, text=True, timeout=600)


def test_generate_a_folder_to_stl_and_glb_with_json(tmp_path: Path, examples: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(["generate", str(examples), "-o", str(out), "--format", "stl,glb", "--quality", "low", "--slots", "2", "--json"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    n = len(orfeas.collect_paths([examples]))
    assert doc["total"] == doc["complete"] == n and doc["failed"] == 0 and doc["seconds"] > 0
    for job in doc["jobs"]:
        assert job["status"] == "complete" and job["error"] is None and job["watertight"] and job["triangles"] > 0
        assert [Path(o).suffix for o in job["outputs"]] == [".stl", ".glb"]
        assert all(Path(o).is_file() for o in job["outputs"])
    assert "done" in proc.stderr and f"{n} of {n} images converted" in proc.stderr


def test_every_generate_flag_is_accepted(tmp_path: Path, examples: Path) -> None:
    proc = run_cli([
        "generate", str(examples / "heart.bmp"), "-o", str(tmp_path), "--format", "ply", "--quality", "low",
        "--slots", "1", "--depth", "relief", "--device", "cpu", "--width-mm", "50", "--depth-mm", "5",
        "--base-mm", "1", "--surface", "--max-error", "0.01", "--max-triangles", "5000", "--recursive", "--json",
    ])
    assert proc.returncode == 0, proc.stderr
    (job,) = json.loads(proc.stdout)["jobs"]
    assert job["depth"] == "relief" and not job["watertight"] and 0 < job["triangles"] <= 5000


def test_a_failed_job_exits_1_and_the_others_are_written(tmp_path: Path, examples: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    proc = run_cli(["generate", str(examples / "heart.bmp"), str(bad), "-o", str(tmp_path / "out"), "--quality", "low", "--json"])
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert (doc["complete"], doc["failed"]) == (1, 1)
    assert doc["jobs"][1]["code"] == "ERR_UNSUPPORTED_FORMAT"
    assert (tmp_path / "out" / "heart.stl").is_file()


def test_usage_errors_exit_2(tmp_path: Path, examples: Path) -> None:
    assert run_cli(["generate", str(examples), "-o", str(tmp_path), "--quality", "ultra"]).returncode == 2
    assert run_cli(["generate", str(examples), "-o", str(tmp_path), "--format", "xyz"]).returncode == 2
    assert run_cli(["generate", str(examples), "-o", str(tmp_path), "--slots", "zero"]).returncode == 2
    assert run_cli(["generate", str(examples)]).returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli(["generate", str(empty), "-o", str(tmp_path / "o")])
    assert proc.returncode == 2 and "no images found" in proc.stderr


def test_objects_with_the_tiny_triposr_and_the_method_flags(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[2] / "orfeas-core" / "tests" / "fixtures" / "triposr"
    proc = run_cli([
        "generate", str(fixture / "input_border.png"), "-o", str(tmp_path), "--method", "triposr",
        "--weights", str(fixture / "tiny"), "--resolution", "24", "--keep-largest", "--format", "stl,field.npy", "--json",
    ])
    assert proc.returncode == 0, proc.stderr
    (job,) = json.loads(proc.stdout)["jobs"]
    assert job["method"] == job["depth"] == "triposr" and job["resolution"] == 24 and job["watertight"]
    assert job["warnings"] == ["foreground touches the image border: the object may be cut off"]
    assert "warning" in proc.stderr
    conflict = run_cli(["generate", str(fixture / "input.png"), "-o", str(tmp_path), "--method", "triposr", "--depth", "relief"])
    assert conflict.returncode == 2 and "disagree" in conflict.stderr

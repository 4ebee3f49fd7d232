"""Judges mesh files with trimesh and (for GLB) the Khronos glTF validator.

Usage: check_meshes.py FILE...  (run through validate-meshes, which installs both readers).
Prints one line per file ("ok ..." or "BAD ... why") and a last line "meshes: N ok, M bad";
exits 1 when any file is bad or none was given.
"""

import json
import os
import subprocess
import sys

import numpy as np
import trimesh

# Formats that orfeas writes as closed solids by default; their topology is judged too.
SOLID_FORMATS = {"stl", "3mf"}


def judge(path: str) -> list[str]:
    """Returns what is wrong with one file (empty when it is good)."""
    ext = path.rsplit(".", 1)[-1].lower()
    raw = trimesh.load(path, force="mesh", process=False)
    problems = []
    if len(raw.faces) == 0:
        problems.append("no triangles")
    if not np.isfinite(raw.vertices).all():
        problems.append("non-finite vertex coordinates")
    if ext in SOLID_FORMATS and not problems:
        # Merged vertices: STL stores each triangle's corners separately.
        merged = trimesh.load(path, force="mesh")
        if not merged.is_watertight:
            problems.append("not watertight")
        if not merged.is_winding_consistent:
            problems.append("inconsistent winding")
        if not merged.volume > 0:
            problems.append(f"volume {merged.volume:.4g} is not positive")
    return problems


def main(paths: list[str]) -> int:
    ok = bad = 0
    verdicts = {}
    for path in paths:
        name = os.path.basename(path)
        try:
            mesh = trimesh.load(path, force="mesh", process=False)
            problems = judge(path)
            line = f"{name}: {len(mesh.faces)} triangles, extents {np.round(mesh.extents, 2).tolist()}"
            verdicts[path] = (problems, line)
        except Exception as err:  # an independent reader that cannot read the file is the verdict
            verdicts[path] = ([f"unreadable: {str(err)[:200]}"], name)
    glbs = [p for p in paths if p.lower().endswith(".glb") and not verdicts[p][0]]
    if glbs:
        here = os.path.dirname(os.path.abspath(__file__))
        run = subprocess.run(["node", os.path.join(here, "validate_gltf.mjs"), *glbs],
                             capture_output=True, text=True)
        seen = set()
        for out in run.stdout.splitlines():
            report = json.loads(out)
            seen.add(report["file"])
            problems, line = verdicts[report["file"]]
            if report["errors"]:
                problems.append(f"glTF validator: {report['errors']} errors {report['first']}")
            else:
                verdicts[report["file"]] = (problems, f"{line}; glTF validator: 0 errors, {report['warnings']} warnings")
        for path in glbs:
            if path not in seen:
                verdicts[path][0].append(f"glTF validator did not run: {run.stderr.strip()[:300]}")
    for path in paths:
        problems, line = verdicts[path]
        if problems:
            bad += 1
            print("BAD", line, "--", "; ".join(problems))
        else:
            ok += 1
            print("ok ", line)
    print(f"meshes: {ok} ok, {bad} bad")
    return 1 if bad or not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

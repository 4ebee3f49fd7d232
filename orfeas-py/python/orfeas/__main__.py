"""``python -m orfeas generate ...``: the ``orfeas generate`` command line, on the binding.

Same flags, same output names, same ``--json`` document and the same exit codes: 0 when every
job completed, 1 when at least one failed (the others are still written), 2 for usage errors.
Progress goes to stderr (one line per finished job); stdout carries only the ``--json`` report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from . import BatchProcessor, JobResult, OrfeasError, __version__, collect_paths

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orfeas",
        description="Turn batches of images into printable 3D models (STL, OBJ, GLB, PLY, 3MF).",
    )
    parser.add_argument("--version", action="version", version=f"orfeas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = commands.add_parser("generate", help="convert images (files or directories) into mesh files")
    gen.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or directories of images")
    gen.add_argument("-o", "--out", dest="out_dir", required=True, metavar="OUT_DIR", help="output directory (created if missing)")
    gen.add_argument("-f", "--format", default="stl", help="comma-separated: stl, stl-ascii, obj, glb, ply, 3mf, depth16, depth.npy, field.npy, mask.png, mask.npy")
    gen.add_argument("-q", "--quality", default="medium", help="low, medium or high")
    gen.add_argument("--slots", type=int, default=4, help="jobs processed at once")
    gen.add_argument("--method", default=None, help="auto, relief, inflate, depth-anything (2.5D reliefs) or triposr (a full 3D object)")
    gen.add_argument("--depth", default=None, help="alias of --method for auto, relief, inflate or depth-anything")
    gen.add_argument("--weights", default=None, metavar="PATH", help="weights (file or directory) for the chosen method")
    gen.add_argument("--background", default="auto", help="foreground mask: auto, alpha, border, birefnet or none")
    gen.add_argument("--segmenter-weights", default=None, metavar="DIR", help="BiRefNet weights (model.safetensors or its directory) for --background")
    gen.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    gen.add_argument("--width-mm", type=float, default=100.0, help="model width in millimetres")
    gen.add_argument("--depth-mm", type=float, default=20.0, help="relief height above the base, millimetres")
    gen.add_argument("--base-mm", type=float, default=2.0, help="base thickness, millimetres")
    gen.add_argument("--surface", action="store_true", help="write the open front surface instead of a closed solid")
    gen.add_argument("--max-error", type=float, default=None, help="meshing tolerance, fraction of the relief height")
    gen.add_argument("--max-triangles", type=int, default=None, help="triangle budget")
    gen.add_argument("--resolution", type=int, default=None, metavar="N", help="marching-cubes grid of objects (low 128, medium 192, high 256)")
    gen.add_argument("--keep-largest", action="store_true", help="keep only an object's largest connected part")
    gen.add_argument("-r", "--recursive", action="store_true", help="descend into subdirectories")
    gen.add_argument("--json", action="store_true", help="print one JSON summary on stdout at the end")
    return parser


def summary(results: Sequence[JobResult], requested: str, seconds: float) -> Dict[str, Any]:
    """The ``--json`` document of ``orfeas generate``; ``requested`` (the method asked for) stands
    in for ``method`` and ``depth`` of jobs that stopped before the shape was made."""
    jobs: List[Dict[str, Any]] = []
    for r in results:
        job = r.to_dict()
        del job["job_id"]
        job["depth"] = r.depth or requested
        job["method"] = r.method or requested
        jobs.append(job)
    return {
        "jobs": jobs,
        "total": len(results),
        "complete": sum(r.status == "complete" for r in results),
        "failed": sum(r.status == "error" for r in results),
        "cancelled": sum(r.status == "cancelled" for r in results),
        "seconds": seconds,
    }


def _progress_line(event: Dict[str, Any]) -> None:
    name = event["event"]
    if name == "generation_complete":
        print(f"done  {event['input']}: {event['triangles']} triangles, {event['seconds']:.2f} s", file=sys.stderr)
        for warning in event.get("warnings", []):
            print(f"      warning: {event['input']}: {warning}", file=sys.stderr)
    elif name == "generation_error":
        print(f"error {event['input']}: {event['error']}", file=sys.stderr)
    elif name == "generation_cancelled":
        print(f"cancelled {event['input']}", file=sys.stderr)


def generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    inputs = collect_paths(args.inputs, args.recursive)
    if not inputs:
        print("error: no images found in the given inputs", file=sys.stderr)
        return EXIT_USAGE
    try:
        processor = BatchProcessor(
            slots=args.slots, device=args.device, method=args.method, depth=args.depth, weights=args.weights,
            segmenter_weights=args.segmenter_weights,
        )
        results = processor.run(
            [str(p) for p in inputs],
            args.out_dir,
            formats=args.format,
            quality=args.quality,
            on_progress=_progress_line,
            width_mm=args.width_mm,
            depth_mm=args.depth_mm,
            base_mm=args.base_mm,
            solid=not args.surface,
            max_error=args.max_error,
            max_triangles=args.max_triangles,
            resolution=args.resolution,
            keep_largest=args.keep_largest,
            background=args.background,
        )
    except OrfeasError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    seconds = time.perf_counter() - started
    doc = summary(results, processor.method, seconds)
    if args.json:
        print(json.dumps(doc))
    print(
        f"{doc['complete']} of {doc['total']} images converted in {seconds:.2f} s "
        f"({doc['failed']} failed, {doc['cancelled']} cancelled) -> {args.out_dir}",
        file=sys.stderr,
    )
    return EXIT_OK if doc["complete"] == doc["total"] else EXIT_FAILED


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return generate(args)
    except KeyboardInterrupt:
        print("interrupted: batch cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

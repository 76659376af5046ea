"""``python -m benchmarks.adbench``: run the ADBench protocol and write results.json/results.md."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.adbench.data import ADBENCH_MAX_ROWS, AdbenchDataError
from benchmarks.adbench.runner import (
    CURVES_FILE,
    DEFAULT_SEEDS,
    load_curves,
    merge_results,
    run_adbench,
)
from benchmarks.results import progress_enabled


def merge(paths: Sequence[str], out: str | None) -> str:
    """Merge the ``results.json`` files at ``paths`` into ``out``; the markdown report.

    Raises ``ValueError`` when a file is named twice or two files share a set (their runs
    would count twice, as extra seeds), ``OSError`` when one cannot be read.
    """
    resolved = [Path(path).resolve() for path in paths]
    repeated = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if repeated:
        raise ValueError(f"cannot merge a file with itself: {', '.join(repeated)}")
    parts = []
    for path in resolved:
        try:
            parts.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    curves = load_curves([path.parent / CURVES_FILE for path in resolved])
    return merge_results(parts, out, curves)[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run, print the markdown report; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adbench", description=__doc__)
    parser.add_argument("--data-dir", help="folder of the .npz sets or its parent")
    parser.add_argument("--out", default="bench-out/adbench", help="output folder")
    parser.add_argument("--detector", action="append", help="repeatable; default: all batch")
    parser.add_argument("--dataset", action="append", help="repeatable; default: all eight")
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    parser.add_argument(
        "--max-rows",
        type=int,
        default=ADBENCH_MAX_ROWS,
        help="subsample larger sets (ADBench: 10000); 0 = every row",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        help="instead of running, merge earlier results.json files (disjoint sets) into --out",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.merge:
        try:
            print(merge(args.merge, args.out))
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Per-entity detectors warn on every fit that they have no entities here: expected.
    logging.getLogger("models.batch.baselines").setLevel(logging.ERROR)
    try:
        _, markdown = run_adbench(
            args.data_dir,
            args.out,
            args.detector,
            [int(s) for s in args.seeds.split(",")],
            datasets=args.dataset,
            max_rows=args.max_rows or None,
            progress=progress_enabled(args.quiet),
        )
    except AdbenchDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

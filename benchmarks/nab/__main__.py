"""``python -m benchmarks.nab``: score official NAB results with our scorer, against the board.

Prints, per detector and profile, our normalised score, the official one, the difference and
the threshold, then the time taken. Exits 1 if any score is more than ``--tolerance`` away.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.nab.corpus import NabDataError, load_final_results, load_nab
from benchmarks.nab.scoring import score_official_results

DEFAULT_DETECTORS = ("numenta", "ARTime", "windowedGaussian", "null")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__)
    parser.add_argument("--data-dir", help="NAB root or its parent (default: $BASELINER_DATA)")
    parser.add_argument("--detector", action="append", help="repeatable; default: all four")
    parser.add_argument(
        "--official-thresholds",
        action="store_true",
        help="use NAB's stored thresholds (config/thresholds.json) instead of our optimum",
    )
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        corpus = load_nab(args.data_dir)
        official = load_final_results(corpus)
    except NabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loaded = time.perf_counter() - started

    rows: list[dict[str, Any]] = []
    for detector in args.detector or DEFAULT_DETECTORS:
        t0 = time.perf_counter()
        results = score_official_results(corpus, detector, args.official_thresholds)
        seconds = time.perf_counter() - t0
        for profile, result in results.items():
            expected = official.get(detector, {}).get(profile)
            rows.append(
                {
                    "detector": detector,
                    "profile": profile,
                    "ours": result.score,
                    "official": expected,
                    "diff": None if expected is None else result.score - expected,
                    "threshold": result.threshold,
                    "detected_windows": result.detected_windows,
                    "false_positives": result.false_positives,
                    "seconds": seconds,
                }
            )
    if args.json:
        print(json.dumps({"load_seconds": loaded, "rows": rows}, indent=2))
    else:
        print(f"NAB corpus: {len(corpus)} series, {corpus.n_windows} windows ({loaded:.2f}s)")
        header = f"{'detector':<17} {'profile':<19} {'ours':>8} {'official':>8} {'diff':>8}"
        print(f"{header} {'threshold':>10} {'windows':>7} {'FP':>6}")
        for row in rows:
            official_text = "-" if row["official"] is None else f"{row['official']:8.2f}"
            diff_text = "-" if row["diff"] is None else f"{row['diff']:+8.3f}"
            print(
                f"{row['detector']:<17} {row['profile']:<19} {row['ours']:8.2f} "
                f"{official_text:>8} {diff_text:>8} {row['threshold']:10.6g} "
                f"{row['detected_windows']:7d} {row['false_positives']:6d}"
            )
        print(f"total {time.perf_counter() - started:.2f}s")
    off = [r for r in rows if r["diff"] is not None and abs(r["diff"]) > args.tolerance]
    return 1 if off else 0


if __name__ == "__main__":
    sys.exit(main())

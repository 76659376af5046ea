"""``python -m benchmarks.nab``: score official NAB results with our scorer, against the board.

Prints, per detector and profile, our normalised score, the official one, the difference and
the threshold, then the time taken. Exits 1 if any score is more than ``--tolerance`` away.
With ``--out`` (``baseliner bench nab --check-scorer`` always gives one) the comparison is
also written as ``results.json``, ``results.md`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.nab.corpus import NabDataError, load_final_results, load_nab
from benchmarks.nab.scoring import score_official_results

DEFAULT_DETECTORS = ("numenta", "ARTime", "windowedGaussian", "null")
DEFAULT_TOLERANCE = 0.1
BOARD_SOURCE = "NAB v1.1 scoreboard (results/final_results.json of the corpus)"


def comparison_markdown(
    rows: Sequence[dict[str, Any]], n_series: int, tolerance: float, environment: str = ""
) -> str:
    """The comparison as a markdown table, the scoreboard named as its source.

    ``environment`` (:func:`benchmarks.results.environment_line`) closes it when given.

    Examples
    --------
    >>> row = {"detector": "null", "profile": "standard", "ours": 0.0, "official": 0.0,
    ...        "diff": 0.0, "threshold": 0.5, "detected_windows": 0, "false_positives": 0}
    >>> print(comparison_markdown([row], 58, 0.1).splitlines()[4])
    | null | standard | 0.00 | 0.00 | +0.000 | 0.5 | 0 | 0 |
    """
    lines = [
        f"# NAB v1.1 scorer check: official raw results, {n_series} series",
        "",
        "| detector | profile | ours | official | diff | threshold | windows | FP |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        official = "-" if row["official"] is None else f"{row['official']:.2f}"
        diff = "-" if row["diff"] is None else f"{row['diff']:+.3f}"
        lines.append(
            f"| {row['detector']} | {row['profile']} | {row['ours']:.2f} | {official} | {diff} "
            f"| {row['threshold']:.6g} | {row['detected_windows']} | {row['false_positives']} |"
        )
    lines += [
        "",
        f"Official: {BOARD_SOURCE}. Ours: the same detectors' published raw scores "
        f"(official_results/) through our scorer, each profile's threshold our own optimum; "
        f"a difference above {tolerance:g} counts as a mismatch.",
    ]
    if environment:
        lines += ["", environment]
    return "\n".join(lines) + "\n"


def check_scorer(
    data_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
    detectors: Sequence[str] = DEFAULT_DETECTORS,
    *,
    official_thresholds: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[bool, str, list[dict[str, Any]]]:
    """Score the official raw results of ``detectors`` and compare with the scoreboard.

    Returns whether every score is within ``tolerance`` of the board, the printed table and
    the rows (detector, profile, ours, official, diff, threshold, windows, FP, seconds).
    With ``out``, writes ``results.json`` (every row, the environment), ``results.md`` and
    ``report.html`` there.

    Raises
    ------
    NabDataError
        If the corpus, the scoreboard or a detector's raw results are missing or malformed.
    """
    from benchmarks.report import write_bench_outputs
    from benchmarks.results import environment, environment_line

    started = time.perf_counter()
    corpus = load_nab(data_dir)
    try:
        official = load_final_results(corpus)
    except (OSError, ValueError) as exc:
        raise NabDataError(f"the NAB scoreboard could not be read: {exc}") from None
    loaded = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for detector in detectors:
        t0 = time.perf_counter()
        try:
            results = score_official_results(corpus, detector, official_thresholds)
        except (OSError, ValueError) as exc:
            if isinstance(exc, NabDataError):
                raise
            raise NabDataError(f"official results of {detector}: {exc}") from None
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
    off = [r for r in rows if r["diff"] is not None and abs(r["diff"]) > tolerance]
    lines = [f"NAB corpus: {len(corpus)} series, {corpus.n_windows} windows ({loaded:.2f}s)"]
    header = f"{'detector':<17} {'profile':<19} {'ours':>8} {'official':>8} {'diff':>8}"
    lines.append(f"{header} {'threshold':>10} {'windows':>7} {'FP':>6}")
    for row in rows:
        official_text = "-" if row["official"] is None else f"{row['official']:8.2f}"
        diff_text = "-" if row["diff"] is None else f"{row['diff']:+8.3f}"
        lines.append(
            f"{row['detector']:<17} {row['profile']:<19} {row['ours']:8.2f} "
            f"{official_text:>8} {diff_text:>8} {row['threshold']:10.6g} "
            f"{row['detected_windows']:7d} {row['false_positives']:6d}"
        )
    total = time.perf_counter() - started
    lines.append(f"total {total:.2f}s")
    if out is not None:
        payload = {
            "benchmark": "nab",
            "mode": "check-scorer",
            "config": {
                "detectors": list(detectors),
                "official_thresholds": official_thresholds,
                "tolerance": tolerance,
            },
            "n_series": len(corpus),
            "n_windows": corpus.n_windows,
            "rows": rows,
            "mismatches": len(off),
            "official_source": BOARD_SOURCE,
            "seconds": total,
            **environment(),
        }
        markdown = comparison_markdown(rows, len(corpus), tolerance, environment_line(payload))
        write_bench_outputs(out, "NAB v1.1 scorer check", payload, markdown)
        lines.append(f"results: {Path(out) / 'results.json'} (and results.md, report.html)")
    return not off, "\n".join(lines), rows


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
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", help="also write results.json, results.md and report.html")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        ok, table, rows = check_scorer(
            args.data_dir,
            args.out,
            args.detector or DEFAULT_DETECTORS,
            official_thresholds=args.official_thresholds,
            tolerance=args.tolerance,
        )
    except NabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}, indent=2))
    else:
        print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

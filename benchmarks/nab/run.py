"""Run our online detectors over the NAB corpus and score them with our NAB scorer.

One configuration for all series (no label peeking). Each series is streamed row by row:
feature vector, ``score_one``, then ``learn_one``. Detectors learn during the probationary
period (the first 15 %); the scorer ignores their scores there.

The feature vector is generic, the same kind the daemon builds for an entity's count series:
the value, its change since the previous step, and the window time under the reserved key
``"__ts"`` (read by the seasonal baseline).

``python -m benchmarks.nab.run --data-dir DIR --out DIR [--detector NAME] [--limit N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nab.corpus import NabCorpus, NabSeries, load_final_results, load_nab
from benchmarks.nab.scoring import probation_rows, score_all_profiles
from benchmarks.results import write_results
from models.base import OnlineDetector
from models.registry import ONLINE_DETECTORS, resolve

log = logging.getLogger(__name__)

DEFAULT_DETECTOR = "likelihood"
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "likelihood": {
        "member": "seasonal",
        "member_params": {
            "two_sided": True,
            "alpha": 0.01,
            "min_std": 1e-6,
            "relative_min_std": 0.05,
        },
        "history": 8640,
        "short_window": 10,
        "min_history": 300,
        "suppress_steps": 600,
        "suppress_level": 3.0,
    },
}
"""The one configuration per detector used for all 58 series."""

BOARD_ROWS = ("ARTime", "numenta", "htmjava", "windowedGaussian", "null")


def nab_feature_vectors(series: NabSeries) -> Iterator[dict[str, float]]:
    """One feature dict per row: ``value``, ``delta`` (change since the previous row), ``__ts``.

    Examples
    --------
    >>> s = NabSeries.from_rows("toy.csv", 3)
    >>> [sorted(v) for v in nab_feature_vectors(s)][0]
    ['__ts', 'delta', 'value']
    """
    epoch_seconds = series.timestamps.astype("datetime64[s]").astype(np.int64)
    previous: float | None = None
    for ts, raw in zip(epoch_seconds.tolist(), series.values.tolist(), strict=True):
        value = float(raw)
        delta = 0.0 if previous is None else value - previous
        previous = value
        yield {"value": value, "delta": delta, "__ts": float(ts)}


def build_detector(name: str, params: Mapping[str, Any], seed: int) -> OnlineDetector:
    """An online detector from the registry (``seed`` overrides any seed in ``params``)."""
    if name not in ONLINE_DETECTORS:
        raise ValueError(f"{name!r} is not an online detector; valid: {sorted(ONLINE_DETECTORS)}")
    detector: OnlineDetector = resolve(name)(**{**params, "seed": seed})
    return detector


def score_series_online(
    series: NabSeries, detector_name: str, params: Mapping[str, Any], seed: int = 0
) -> np.ndarray:
    """Stream one series through a fresh detector: score each row, then learn it.

    Scores in the probationary period are set to 0 (they are not counted; zeroing keeps the
    written files honest about what was scored).
    """
    detector = build_detector(detector_name, params, seed)
    scores = np.empty(series.n_rows, dtype=np.float64)
    for row, x in enumerate(nab_feature_vectors(series)):
        scores[row] = detector.score_one(x)
        detector.learn_one(x)
    scores[: probation_rows(series.n_rows)] = 0.0
    return np.nan_to_num(scores, nan=0.0, posinf=1e300, neginf=0.0)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": version("scipy"),
        "river": version("river"),
        "polars": version("polars"),
    }


def _markdown(
    detector: str,
    ours: Mapping[str, Mapping[str, float]],
    board: Mapping[str, Mapping[str, float]],
    seconds: float,
    n_series: int,
) -> str:
    lines = [
        f"# NAB v1.1: `{detector}` ({n_series} series, {seconds:.1f} s)",
        "",
        "| detector | standard | reward_low_FP_rate | reward_low_FN_rate |",
        "|---|---:|---:|---:|",
    ]
    for name, scores in ours.items():
        lines.append(
            f"| **{name}** (ours) | {scores['standard']:.2f} | "
            f"{scores['reward_low_FP_rate']:.2f} | {scores['reward_low_FN_rate']:.2f} |"
        )
    for name in BOARD_ROWS:
        if name in board:
            row = board[name]
            lines.append(
                f"| {name} (official) | {row['standard']:.2f} | "
                f"{row['reward_low_FP_rate']:.2f} | {row['reward_low_FN_rate']:.2f} |"
            )
    if n_series != 58:
        lines += ["", f"Only {n_series} of 58 series: not comparable with the scoreboard."]
    return "\n".join(lines) + "\n"


def run_nab(
    data_dir: str | Path | None,
    out: str | Path,
    detector: str = DEFAULT_DETECTOR,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    limit: int | None = None,
    corpus: NabCorpus | None = None,
    only: Sequence[str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run ``detector`` over NAB, score all profiles, write ``results.json`` and ``results.md``.

    Parameters
    ----------
    data_dir
        NAB root or its parent (``None``: ``$BASELINER_DATA``); ignored when ``corpus`` given.
    out
        Output folder; also receives ``scores.npz`` (the raw scores, one array per series).
    detector
        An online detector name.
    seed
        Seed of the detector.
    params
        Hyper-parameters; default :data:`DEFAULT_PARAMS` for that detector (or none).
    limit
        Run only the first ``limit`` series (sorted by name), for quick checks.
    corpus
        An already loaded corpus.
    only
        Run only these series (names under ``data/``), for the reduced CI run.

    Returns
    -------
    tuple[dict, str]
        The results (as written to ``results.json``) and the markdown table.
    """
    started = time.perf_counter()
    full = corpus if corpus is not None else load_nab(data_dir)
    names = sorted(only) if only is not None else sorted(full.series)
    if limit is not None:
        names = names[:limit]
    subset = NabCorpus({n: full.series[n] for n in names}, full.profiles, full.root)
    config = dict(params if params is not None else DEFAULT_PARAMS.get(detector, {}))
    raw_scores: dict[str, np.ndarray] = {}
    per_series_seconds: dict[str, float] = {}
    run_started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        raw_scores[name] = score_series_online(subset.series[name], detector, config, seed)
        per_series_seconds[name] = time.perf_counter() - t0
        log.info("%s: %d rows in %.2fs", name, subset.series[name].n_rows, per_series_seconds[name])
    run_seconds = time.perf_counter() - run_started
    profiles = score_all_profiles(subset, raw_scores)
    n_rows = sum(s.n_rows for s in subset.series.values())
    try:
        board = load_final_results(full)
    except (OSError, ValueError):
        board = {}
    ours = {p: r.score for p, r in profiles.items()}
    results: dict[str, Any] = {
        "detector": detector,
        "config": config,
        "seed": seed,
        "features": ["value", "delta", "__ts"],
        "n_series": len(names),
        "n_rows": n_rows,
        "scores": ours,
        "profiles": {
            p: {
                "score": r.score,
                "threshold": r.threshold,
                "detected_windows": r.detected_windows,
                "false_positives": r.false_positives,
            }
            for p, r in profiles.items()
        },
        "raw_scores": {
            name: {
                "min": float(values.min()),
                "max": float(values.max()),
                "mean": float(values.mean()),
                "p99": float(np.quantile(values, 0.99)),
            }
            for name, values in raw_scores.items()
        },
        "official": {name: board[name] for name in BOARD_ROWS if name in board},
        "timing": {
            "run_seconds": run_seconds,
            "rows_per_second": n_rows / run_seconds if run_seconds > 0 else None,
            "total_seconds": time.perf_counter() - started,
            "per_series_seconds": per_series_seconds,
        },
        "versions": _versions(),
    }
    markdown = _markdown(detector, {detector: ours}, board, run_seconds, len(names))
    out_dir = write_results(out, results, markdown).parent
    arrays: dict[str, Any] = {n.replace("/", "__"): v for n, v in raw_scores.items()}
    np.savez_compressed(out_dir / "scores.npz", **arrays)
    return results, markdown


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints the markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nab.run", description=__doc__)
    parser.add_argument("--data-dir", help="NAB root or its parent (default: $BASELINER_DATA)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(ONLINE_DETECTORS))
    parser.add_argument("--params", help="JSON hyper-parameters (default: the stored config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="only the first N series")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    params = json.loads(args.params) if args.params else None
    _, markdown = run_nab(args.data_dir, args.out, args.detector, args.seed, params, args.limit)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

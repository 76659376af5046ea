"""Run registered batch detectors on the ADBench sets: AUCROC and AUCPR over seeds.

For every (set, seed) the split of :func:`benchmarks.adbench.data.split_adbench` is made once
and every detector is fitted on the training part without labels, then scores the test part.
``results.json`` keeps every number (each run, the summaries, versions, machine, config) and
``results.md`` puts our rows beside the published anchors of ``benchmarks/anchors.json``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.adbench.data import (
    ADBENCH_MAX_ROWS,
    ADBENCH_SETS,
    load_adbench_set,
    split_adbench,
)
from benchmarks.results import write_results
from models.registry import BATCH_DETECTORS, create_batch

log = logging.getLogger(__name__)

ANCHORS_FILE = Path(__file__).resolve().parent.parent / "anchors.json"
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
TABULAR_DEFAULT = "tabular"
"""Our default ensemble for tabular data (its row is highlighted in the report)."""


@dataclass(frozen=True)
class RunResult:
    """One detector fitted and scored on one seeded split of one set.

    Examples
    --------
    >>> RunResult("38_thyroid", "ecod", 0, 0.97, 0.5, 0.01, 0.002, 2640, 1132, 28).aucroc
    0.97
    """

    dataset: str
    detector: str
    seed: int
    aucroc: float
    aucpr: float
    fit_seconds: float
    score_seconds: float
    n_train: int
    n_test: int
    n_test_anomalies: int


def load_anchors(benchmark: str, path: Path = ANCHORS_FILE) -> list[dict[str, Any]]:
    """The published numbers of one benchmark from ``benchmarks/anchors.json``.

    Examples
    --------
    >>> any(a["dataset"] == "16_http" for a in load_anchors("adbench"))
    True
    """
    if not path.is_file():
        return []
    anchors: list[dict[str, Any]] = json.loads(path.read_text())["anchors"]
    return [a for a in anchors if a.get("benchmark") == benchmark]


def environment() -> dict[str, Any]:
    """Library versions and machine facts recorded beside every result."""
    versions: dict[str, str | None] = {}
    for package in ("numpy", "scikit-learn", "pyod", "polars", "scipy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }


def _binary_metrics(y: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def run_one(
    detector_name: str,
    dataset: str,
    seed: int,
    X_train: np.ndarray[Any, Any],
    X_test: np.ndarray[Any, Any],
    y_test: np.ndarray[Any, Any],
    params: Mapping[str, Any] | None = None,
) -> RunResult:
    """Fit ``detector_name`` on ``X_train`` (no labels), score ``X_test``, measure both."""
    detector = create_batch(detector_name, **{"seed": seed, **dict(params or {})})
    started = time.perf_counter()
    detector.fit(X_train)
    fitted = time.perf_counter()
    scores = detector.decision_function(X_test)
    scored = time.perf_counter()
    aucroc, aucpr = _binary_metrics(y_test, scores)
    return RunResult(
        dataset=dataset,
        detector=detector_name,
        seed=seed,
        aucroc=aucroc,
        aucpr=aucpr,
        fit_seconds=fitted - started,
        score_seconds=scored - fitted,
        n_train=int(X_train.shape[0]),
        n_test=int(X_test.shape[0]),
        n_test_anomalies=int(y_test.sum()),
    )


def summarise(runs: Sequence[RunResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Per set and detector: mean and (population) std over seeds, and rows/s.

    Examples
    --------
    >>> runs = [RunResult("s", "d", k, 0.8 + 0.1 * k, 0.5, 1.0, 0.5, 100, 50, 5) for k in (0, 1)]
    >>> row = summarise(runs)["s"]["d"]
    >>> round(row["aucroc_mean"], 3), round(row["aucroc_std"], 3), row["fit_rows_per_s"]
    (0.85, 0.05, 100.0)
    """
    grouped: dict[tuple[str, str], list[RunResult]] = {}
    for run in runs:
        grouped.setdefault((run.dataset, run.detector), []).append(run)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for (dataset, detector), group in grouped.items():
        roc = np.array([r.aucroc for r in group])
        pr = np.array([r.aucpr for r in group])
        fit_s = sum(r.fit_seconds for r in group)
        score_s = sum(r.score_seconds for r in group)
        summary.setdefault(dataset, {})[detector] = {
            "aucroc_mean": float(roc.mean()),
            "aucroc_std": float(roc.std()),
            "aucpr_mean": float(pr.mean()),
            "aucpr_std": float(pr.std()),
            "n_seeds": float(len(group)),
            "fit_rows_per_s": sum(r.n_train for r in group) / max(fit_s, 1e-12),
            "score_rows_per_s": sum(r.n_test for r in group) / max(score_s, 1e-12),
        }
    return summary


def run_adbench(
    data_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
    detectors: Sequence[str] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    *,
    datasets: Sequence[str] | None = None,
    max_rows: int | None = ADBENCH_MAX_ROWS,
    detector_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run the ADBench protocol; write ``results.json`` and ``results.md`` under ``out``.

    Parameters
    ----------
    data_dir : path or None
        Folder of the ``.npz`` sets or its parent; ``None`` reads ``$BASELINER_DATA``.
    out : path or None
        Output folder (created); ``None`` writes nothing.
    detectors : sequence of str, optional
        Registry names; default every registered batch detector.
    seeds : sequence of int
        One split (and detector seed) per value; ADBench reports means over seeds.
    datasets : sequence of str, optional
        Set stems or short names; default all eight.
    max_rows : int or None
        ADBench subsamples sets above 10,000 rows (comparable with the published numbers);
        ``None`` runs on every row (the throughput setting).
    detector_params : mapping, optional
        Extra hyper-parameters per detector name.

    Returns
    -------
    (dict, str)
        Every number (see ``results.json``) and the markdown report.
    """
    names = list(detectors) if detectors else sorted(BATCH_DETECTORS)
    sets = list(datasets) if datasets else list(ADBENCH_SETS)
    runs: list[RunResult] = []
    started = time.perf_counter()
    _warm_up(names, detector_params)
    for dataset in sets:
        X, y = load_adbench_set(data_dir, dataset)
        stem = next((s for s in ADBENCH_SETS if dataset in (s, s.split("_", 1)[1])), dataset)
        for seed in seeds:
            split = split_adbench(X, y, seed=seed, max_rows=max_rows)
            for name in names:
                params = (detector_params or {}).get(name)
                run = run_one(name, stem, seed, split.X_train, split.X_test, split.y_test, params)
                log.info(
                    "%s seed %d %s: AUCROC %.4f AUCPR %.4f (fit %.2fs, score %.2fs)",
                    stem,
                    seed,
                    name,
                    run.aucroc,
                    run.aucpr,
                    run.fit_seconds,
                    run.score_seconds,
                )
                runs.append(run)
    summary = summarise(runs)
    results: dict[str, Any] = {
        "benchmark": "adbench",
        "protocol": {
            "reference": "Han et al., ADBench, NeurIPS 2022 (DataGenerator)",
            "split": "stratified 70/30, seeded",
            "max_rows": max_rows,
            "minmax_on_train": True,
            "fit": "unsupervised, training part without labels",
            "metrics": ["AUCROC", "AUCPR (average precision)"],
        },
        "seeds": list(seeds),
        "datasets": [r for r in dict.fromkeys(run.dataset for run in runs)],
        "detectors": names,
        "config": {"detector_params": {k: dict(v) for k, v in (detector_params or {}).items()}},
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "average": _averages(summary, names),
        "anchors": load_anchors("adbench"),
        "seconds": time.perf_counter() - started,
        **environment(),
    }
    results["targets"] = _targets(results)
    markdown = render_markdown(results)
    if out is not None:
        log.info("wrote %s", write_results(out, results, markdown))
    return results, markdown


def merge_results(
    parts: Sequence[Mapping[str, Any]], out: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], str]:
    """Combine runs over disjoint sets (same detectors, seeds and protocol) into one report.

    Lets the heavy sets run apart from the light ones; summaries, averages and targets are
    recomputed from the combined runs.
    """
    first = parts[0]
    for part in parts[1:]:
        for key in ("detectors", "seeds", "protocol"):
            if part[key] != first[key]:
                raise ValueError(f"cannot merge results with different {key}")
    runs = [RunResult(**run) for part in parts for run in part["runs"]]
    summary = summarise(runs)
    results: dict[str, Any] = {
        **{k: v for k, v in first.items() if k not in ("runs", "summary", "average", "targets")},
        "datasets": [d for part in parts for d in part["datasets"]],
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "average": _averages(summary, first["detectors"]),
        "seconds": sum(float(part["seconds"]) for part in parts),
    }
    results["targets"] = _targets(results)
    markdown = render_markdown(results)
    if out is not None:
        write_results(out, results, markdown)
    return results, markdown


def _warm_up(names: Sequence[str], detector_params: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Fit each detector once on a tiny matrix so import costs stay out of the timings."""
    rows = np.random.default_rng(0).normal(size=(64, 3))
    for name in names:
        params = dict((detector_params or {}).get(name, {}))
        create_batch(name, **params).fit(rows).decision_function(rows[:2])


def _averages(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]], names: Sequence[str]
) -> dict[str, dict[str, float]]:
    averages = {}
    for name in names:
        rows = [per_set[name] for per_set in summary.values() if name in per_set]
        averages[name] = {
            "aucroc_mean": float(np.mean([r["aucroc_mean"] for r in rows])),
            "aucpr_mean": float(np.mean([r["aucpr_mean"] for r in rows])),
            "n_datasets": float(len(rows)),
        }
    return averages


def _targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The brief's targets: the tabular ensemble vs the anchors, and vs IForest on average."""
    summary = results["summary"]
    checks: list[dict[str, Any]] = []
    if TABULAR_DEFAULT not in results["detectors"]:
        return checks
    for anchor in results["anchors"]:
        dataset = anchor["dataset"]
        if anchor["metric"] != "aucroc" or dataset not in summary:
            continue
        ours = summary[dataset][TABULAR_DEFAULT]["aucroc_mean"] * 100.0
        checks.append(
            {
                "target": f"{TABULAR_DEFAULT} AUCROC >= published {anchor['value']} on {dataset}",
                "ours": ours,
                "met": ours >= float(anchor["value"]),
            }
        )
    average = results["average"]
    if "iforest" in average and len(results["datasets"]) > 1:
        ours, theirs = average[TABULAR_DEFAULT]["aucroc_mean"], average["iforest"]["aucroc_mean"]
        checks.append(
            {
                "target": f"{TABULAR_DEFAULT} mean AUCROC over the sets > iforest's ({theirs:.4f})",
                "ours": ours,
                "met": ours > theirs,
            }
        )
    return checks


def _cell(row: Mapping[str, float] | None, metric: str) -> str:
    if row is None:
        return "-"
    return f"{100 * row[f'{metric}_mean']:.2f} ± {100 * row[f'{metric}_std']:.2f}"


def render_markdown(results: Mapping[str, Any]) -> str:
    """The report: one table per metric (detectors x sets, mean ± std in %), anchors, speed."""
    summary = results["summary"]
    datasets: list[str] = results["datasets"]
    names: list[str] = results["detectors"]
    lines = [
        "# ADBench (Classical tabular sets), unsupervised",
        "",
        f"Seeds {results['seeds']}; split stratified 70/30; "
        f"subsample to {results['protocol']['max_rows']} rows (None = all rows); "
        "min-max on the training part; fitted without labels; scores on the test part.",
        "",
    ]
    short = [d.split("_", 1)[-1] for d in datasets]
    for metric, title in (("aucroc", "AUCROC"), ("aucpr", "AUCPR")):
        lines += [f"## {title} (%, mean ± std over seeds)", ""]
        lines.append("| detector | " + " | ".join(short) + " | mean |")
        lines.append("|---" * (len(datasets) + 2) + "|")
        for name in names:
            cells = [_cell(summary[d].get(name), metric) for d in datasets]
            mean = 100 * results["average"][name][f"{metric}_mean"]
            label = f"**{name}**" if name == TABULAR_DEFAULT else name
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean:.2f} |")
        anchors = {a["dataset"]: a for a in results["anchors"] if a["metric"] == metric}
        if any(d in anchors for d in datasets):
            cells = [f"{anchors[d]['value']:.2f}" if d in anchors else "-" for d in datasets]
            lines.append("| *published best single* | " + " | ".join(cells) + " | - |")
        lines.append("")
    if results["targets"]:
        lines += ["## Targets", ""]
        for check in results["targets"]:
            mark = "met" if check["met"] else "NOT met"
            lines.append(f"- {check['target']}: ours {check['ours']:.4f} -> {mark}")
        lines.append("")
    lines += ["## Speed (rows/s, summed over seeds)", "", "| set | detector | fit | score |"]
    lines.append("|---|---|---|---|")
    for dataset in datasets:
        for name in names:
            row = summary[dataset][name]
            lines.append(
                f"| {dataset} | {name} | {row['fit_rows_per_s']:,.0f} "
                f"| {row['score_rows_per_s']:,.0f} |"
            )
    lines += ["", "## Anchors", ""]
    for anchor in results["anchors"]:
        lines.append(
            f"- {anchor['dataset']} {anchor['metric']} {anchor['value']} "
            f"({anchor['setting']}; {anchor['source']})"
        )
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines += ["", f"Python {results['python']}; {versions}; {results['machine']}", ""]
    return "\n".join(lines)

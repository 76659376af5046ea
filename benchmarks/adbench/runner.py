"""Run registered batch detectors on the ADBench sets: AUCROC and AUCPR over seeds.

For every (set, seed) the split of :func:`benchmarks.adbench.data.split_adbench` is made once
and every detector is fitted on the training part without labels, then scores the test part.
``results.json`` keeps every number (each run, the summaries, versions, machine, config) and
``results.md`` puts our rows beside the published anchors of ``benchmarks/anchors.json``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.adbench.data import (
    ADBENCH_MAX_ROWS,
    ADBENCH_SETS,
    load_adbench_set,
    resolve_adbench_dir,
    split_adbench,
)
from benchmarks.report import Figure, Section, write_bench_outputs
from benchmarks.results import (
    PeakMemory,
    Throughput,
    environment,
    environment_line,
    load_anchors,
    progress_bar,
    reset_peak_memory,
)
from models.registry import BATCH_DETECTORS, create_batch

log = logging.getLogger(__name__)

CURVES_FILE = "curves.npz"
"""The first seed's test labels and scores, per set and detector (for the ROC/PR plots)."""
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
    peak_memory_mb: float | None = None
    """Peak resident memory while this detector was fitted and scored (see ``PeakMemory``)."""


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
    return _fit_and_score(detector_name, dataset, seed, X_train, X_test, y_test, params)[0]


def _fit_and_score(
    detector_name: str,
    dataset: str,
    seed: int,
    X_train: np.ndarray[Any, Any],
    X_test: np.ndarray[Any, Any],
    y_test: np.ndarray[Any, Any],
    params: Mapping[str, Any] | None = None,
) -> tuple[RunResult, np.ndarray[Any, Any]]:
    """:func:`run_one` and the test scores (kept for the ROC and PR curves)."""
    with PeakMemory() as peak:
        detector = create_batch(detector_name, **{"seed": seed, **dict(params or {})})
        started = time.perf_counter()
        detector.fit(X_train)
        fitted = time.perf_counter()
        scores = np.asarray(detector.decision_function(X_test), dtype=np.float64)
        scored = time.perf_counter()
    aucroc, aucpr = _binary_metrics(y_test, scores)
    run = RunResult(
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
        peak_memory_mb=peak.mb,
    )
    return run, scores


def throughput(runs: Sequence[RunResult], memory_scope: str = "block") -> list[dict[str, Any]]:
    """Per detector over every set and seed: rows fitted and scored per second, peak memory.

    Examples
    --------
    >>> runs = [RunResult("s", "d", k, 0.9, 0.5, 1.0, 0.5, 100, 50, 5, 80.0 + k) for k in (0, 1)]
    >>> row = throughput(runs)[0]
    >>> row["fit_per_s"], row["score_per_s"], row["peak_memory_mb"]
    (100.0, 100.0, 81.0)
    """
    grouped: dict[str, list[RunResult]] = {}
    for run in runs:
        grouped.setdefault(run.detector, []).append(run)
    entries = []
    for name, group in grouped.items():
        peaks = [r.peak_memory_mb for r in group if r.peak_memory_mb is not None]
        entries.append(
            Throughput(
                name=name,
                unit="rows",
                fit_items=sum(r.n_train for r in group),
                fit_seconds=sum(r.fit_seconds for r in group),
                score_items=sum(r.n_test for r in group),
                score_seconds=sum(r.score_seconds for r in group),
                peak_memory_mb=max(peaks) if peaks else None,
                memory_scope=memory_scope,
            ).to_dict()
        )
    return entries


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
    progress: bool = False,
) -> tuple[dict[str, Any], str]:
    """Run the ADBench protocol; write ``results.json``, ``results.md``, ``report.html``.

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
    progress : bool
        Show a progress bar (fits done, with the time left) on stderr.

    Returns
    -------
    (dict, str)
        Every number (see ``results.json``) and the markdown report.
    """
    names = list(detectors) if detectors else sorted(BATCH_DETECTORS)
    sets = list(datasets) if datasets else list(ADBENCH_SETS)
    runs: list[RunResult] = []
    curves: dict[str, np.ndarray[Any, Any]] = {}
    started = time.perf_counter()
    memory_scope = "block" if reset_peak_memory() else "process"
    resolve_adbench_dir(data_dir)  # a wrong folder fails before the warm-up's fits
    _warm_up(names, detector_params)
    with progress_bar(len(sets) * len(seeds) * len(names), "adbench", "fits", progress) as bar:
        for dataset in sets:
            X, y = load_adbench_set(data_dir, dataset)
            stem = next((s for s in ADBENCH_SETS if dataset in (s, s.split("_", 1)[1])), dataset)
            for seed in seeds:
                split = split_adbench(X, y, seed=seed, max_rows=max_rows)
                if seed == seeds[0]:
                    curves[f"{stem}|labels"] = split.y_test.astype(np.int8)
                for name in names:
                    bar.set_postfix_str(f"{stem} seed {seed} {name}", refresh=False)
                    params = (detector_params or {}).get(name)
                    run, scores = _fit_and_score(
                        name, stem, seed, split.X_train, split.X_test, split.y_test, params
                    )
                    if seed == seeds[0]:
                        curves[f"{stem}|{name}"] = scores.astype(np.float32)
                    bar.update(1)
                    _log_run(run)
                    runs.append(run)
    summary = summarise(runs)
    results: dict[str, Any] = {
        "benchmark": "adbench",
        "protocol": {
            "reference": "Han et al., ADBench, NeurIPS 2022 (DataGenerator)",
            "split": "stratified 70/30, seeded",
            "max_rows": max_rows,
            "subsample": "uniform, seeded; redrawn while a class has fewer than 2 rows",
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
        "throughput": throughput(runs, memory_scope),
        **environment(),
    }
    results["targets"] = _targets(results)
    markdown = render_markdown(results)
    if out is not None:
        markdown = write_adbench_report(out, results, markdown, curves)
        _save_curves(out, curves)
        log.info("wrote %s", Path(out) / "results.json")
    return results, markdown


def merge_results(
    parts: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str] | None = None,
    curves: Mapping[str, np.ndarray[Any, Any]] | None = None,
) -> tuple[dict[str, Any], str]:
    """Combine runs over disjoint sets (same detectors, seeds and protocol) into one report.

    Lets the heavy sets run apart from the light ones; summaries, averages, targets and
    throughput are recomputed from the combined runs. ``curves`` (the parts' ``curves.npz``
    merged, see :func:`load_curves`) gives the merged report its ROC and PR plots.
    """
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for part in parts[1:]:
        for key in ("detectors", "seeds", "protocol"):
            if part[key] != first[key]:
                raise ValueError(f"cannot merge results with different {key}")
    seen: set[str] = set()
    for part in parts:
        overlap = sorted(seen & set(part["datasets"]))
        if overlap:
            raise ValueError(
                f"cannot merge: {', '.join(overlap)} appear(s) in more than one part "
                "(the parts must hold disjoint sets)"
            )
        seen.update(part["datasets"])
    runs = [RunResult(**run) for part in parts for run in part["runs"]]
    summary = summarise(runs)
    results: dict[str, Any] = {
        **{k: v for k, v in first.items() if k not in ("runs", "summary", "average", "targets")},
        "datasets": [d for part in parts for d in part["datasets"]],
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "average": _averages(summary, first["detectors"]),
        "seconds": sum(float(part["seconds"]) for part in parts),
        "throughput": throughput(
            runs, str((first.get("throughput") or [{}])[0].get("memory_scope", "block"))
        ),
    }
    results["targets"] = _targets(results)
    markdown = render_markdown(results)
    if out is not None:
        markdown = write_adbench_report(out, results, markdown, curves or {})
        if curves:
            _save_curves(out, curves)
    return results, markdown


def load_curves(paths: Sequence[str | os.PathLike[str]]) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of several ``curves.npz`` files in one mapping (missing files are skipped)."""
    merged: dict[str, np.ndarray[Any, Any]] = {}
    for path in paths:
        if Path(path).is_file():
            with np.load(path) as arrays:
                merged.update({key: arrays[key] for key in arrays.files})
    return merged


def _save_curves(out: str | os.PathLike[str], curves: Mapping[str, np.ndarray[Any, Any]]) -> None:
    arrays: dict[str, Any] = dict(curves)
    np.savez_compressed(Path(out) / CURVES_FILE, **arrays)


def _log_run(run: RunResult) -> None:
    log.info(
        "%s seed %d %s: AUCROC %.4f AUCPR %.4f (fit %.2fs, score %.2fs)",
        run.dataset,
        run.seed,
        run.detector,
        run.aucroc,
        run.aucpr,
        run.fit_seconds,
        run.score_seconds,
    )


def write_adbench_report(
    out: str | os.PathLike[str],
    results: Mapping[str, Any],
    markdown: str,
    curves: Mapping[str, np.ndarray[Any, Any]],
) -> str:
    """results.json, results.md and report.html with per-set bar charts and ROC/PR curves.

    One bar chart per set (AUCROC and AUCPR, mean ± std over seeds, beside the set's
    anchors); one ROC/PR chart per set with one curve per detector on the first seed.
    Returns the markdown as written (with the throughput section).
    """
    from benchmarks.plots import Bar, BarPanel, Curve, bar_chart, roc_pr_chart

    plots = Path(out) / "plots"
    bars: list[Figure] = []
    rocs: list[Figure] = []
    first_seed = results["seeds"][0]
    for dataset in results["datasets"]:
        panels = []
        for metric, label in (("aucroc", "AUCROC (%)"), ("aucpr", "AUCPR (%)")):
            ours = [
                Bar(name, 100 * row[f"{metric}_mean"], 100 * row[f"{metric}_std"])
                for name in results["detectors"]
                if (row := results["summary"][dataset].get(name))
            ]
            anchors = [
                Bar("published", float(a["value"]), kind="anchor", source=a["source"])
                for a in results["anchors"]
                if a["dataset"] == dataset and a["metric"] == metric
            ]
            panels.append(BarPanel(label, ours + anchors))
        path = bar_chart(plots / f"bars_{dataset}.png", f"ADBench {dataset}", panels)
        bars.append(Figure(path, f"{dataset}: ours (mean ± std over seeds) beside the anchors"))
        labels = curves.get(f"{dataset}|labels")
        if labels is None:
            continue
        lines = [
            Curve(name, labels, curves[f"{dataset}|{name}"])
            for name in results["detectors"]
            if f"{dataset}|{name}" in curves
        ]
        path = roc_pr_chart(plots / f"roc_pr_{dataset}.png", f"ADBench {dataset}", lines)
        rocs.append(
            Figure(path, f"{dataset}: test part of seed {first_seed}, one curve per detector")
        )
    sections = [Section("Ours beside the published anchors", figures=bars)]
    if rocs:
        sections.append(
            Section(f"ROC and precision-recall curves (seed {first_seed})", figures=rocs)
        )
    return write_bench_outputs(out, "ADBench", results, markdown, sections)


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
    max_rows = results["protocol"].get("max_rows")
    # The anchors were measured on 10k-row subsamples: a run on another protocol is no match.
    mismatch = "" if max_rows == ADBENCH_MAX_ROWS else f" (protocol differs: max_rows {max_rows})"
    for anchor in results["anchors"]:
        dataset = anchor["dataset"]
        if anchor["metric"] != "aucroc" or dataset not in summary:
            continue
        ours = summary[dataset][TABULAR_DEFAULT]["aucroc_mean"] * 100.0
        checks.append(
            {
                "target": f"{TABULAR_DEFAULT} AUCROC >= published {anchor['value']} on {dataset}"
                + mismatch,
                "ours": ours,
                "met": ours >= float(anchor["value"]),
            }
        )
    average = results["average"]
    if "iforest" in average and len(results["datasets"]) > 1:
        # In percent, as the per-set targets and the anchors are.
        ours = 100.0 * average[TABULAR_DEFAULT]["aucroc_mean"]
        theirs = 100.0 * average["iforest"]["aucroc_mean"]
        checks.append(
            {
                "target": f"{TABULAR_DEFAULT} mean AUCROC over the sets > iforest's ({theirs:.2f})",
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
        f"subsample to {results['protocol']['max_rows']} rows (None = all rows; "
        f"{results['protocol'].get('subsample', 'label-stratified draw')}); "
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
            unverified = any(
                anchors[d]["source"].startswith("UNVERIFIED") for d in datasets if d in anchors
            )
            label = "published best single" + (" (unverified)" if unverified else "")
            lines.append(f"| *{label}* | " + " | ".join(cells) + " | - |")
        lines.append("")
    if results["targets"]:
        lines += ["## Targets", ""]
        for check in results["targets"]:
            mark = "met" if check["met"] else "NOT met"
            lines.append(f"- {check['target']}: ours {check['ours']:.2f} -> {mark}")
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
    lines += ["", environment_line(results), ""]
    return "\n".join(lines)

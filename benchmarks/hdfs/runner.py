"""HDFS log-anomaly benchmark: session detectors on HDFS_100k, the next-key model on DeepLog's data.

HDFS_100k (deep-loglizer's train/test split): each detector is fitted on the training sessions
(by default only the normal ones, the semi-supervised setting of DeepLog and loglizer; the
labels of the training part pick them, test labels are never used to fit or to threshold),
decides with its own rule (Q-statistic, broken invariants, training-score quantile, top-g
misses) and is scored by precision, recall and F1 on the test part.

Because the sessions are cut at line 100k while the labels come from the full log, many
anomalous test sessions are identical to normal training sessions. :func:`f1_ceiling` computes
the best F1 any detector could reach if its decision depends only on the session's key sequence
(or its count vector): an oracle bound that uses the test labels, reported beside the detectors
and never used by them.

DeepLog's files: the next-key model is fitted on ``hdfs_train`` and its recall measured on
``hdfs_test_abnormal``. DeepLog's normal test sessions (about 553k) are not public: the only
normal sessions are ``hdfs_train`` itself, so the false-positive rate of the model fitted on all
of them can be measured only on its own training sessions (in-sample, a lower bound). The
out-of-sample rate comes from :data:`DEEPLOG_FOLDS`-fold cross-validation over ``hdfs_train``:
each fold's model is fitted on the other folds, its false positives counted on the held-out
fold and its recall measured on ``hdfs_test_abnormal``, so recall and false-positive rate come
from the same models. Both are set beside DeepLog's published counts (833 false positives,
619 false negatives), with the precision our rates would give on DeepLog's test mix.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.hdfs.data import HdfsSessions, Sequences, load_deeplog, load_hdfs_100k
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
from models.sequence import (
    InvariantsMiningDetector,
    NextKeyDetector,
    PCASessionDetector,
    SessionIForestDetector,
    count_vectors,
)

log = logging.getLogger(__name__)

SESSION_DETECTORS: dict[str, Callable[[int], Any]] = {
    "pca": lambda seed: PCASessionDetector(seed=seed),
    "pca_tfidf": lambda seed: PCASessionDetector(use_tf_idf=True, seed=seed),
    "invariants": lambda seed: InvariantsMiningDetector(seed=seed),
    "iforest": lambda seed: SessionIForestDetector(seed=seed),
    "nextkey": lambda seed: NextKeyDetector(seed=seed),
}
"""Benchmark names of the session detectors, with their default configuration."""

SEQUENCE_INPUT = frozenset({"nextkey"})

DEEPLOG_FOLDS = 5
"""Folds of the cross-validated false-positive rate on DeepLog's normal sessions."""

DEEPLOG_TEST_NORMAL_SESSIONS = 558_223 - 4_855
"""DeepLog's normal test sessions: HDFS_v1's 558,223 normal blocks minus the 4,855 trained on
(not public; used only to project our rates onto DeepLog's test mix)."""


def precision_recall_f1(
    y_true: np.ndarray[Any, Any], flagged: np.ndarray[Any, Any]
) -> dict[str, float]:
    """Precision, recall and F1 of boolean decisions against 0/1 labels (0 when undefined).

    Examples
    --------
    >>> import numpy as np
    >>> precision_recall_f1(np.array([1, 1, 0, 0]), np.array([True, False, True, False]))
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'tp': 1, 'fp': 1, 'fn': 1}
    """
    truth = np.asarray(y_true) == 1
    flagged = np.asarray(flagged, dtype=bool)
    tp = int(np.sum(truth & flagged))
    fp = int(np.sum(~truth & flagged))
    fn = int(np.sum(truth & ~flagged))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def f1_ceiling(keys: Sequence[Hashable], y_true: np.ndarray[Any, Any]) -> dict[str, float]:
    """Best F1 of any decision that gives every row with the same key the same answer.

    An oracle bound (it reads the labels): rows are grouped by key, groups flagged in order of
    their share of anomalies, and the best F1 over those prefixes is returned (optimal, since
    F1 rises with any group whose anomaly share exceeds F1 / 2).

    Examples
    --------
    >>> import numpy as np
    >>> f1_ceiling(["a", "a", "b", "c"], np.array([1, 0, 1, 0]))["f1"]
    0.8
    """
    groups: dict[Hashable, list[int]] = {}
    for key, label in zip(keys, np.asarray(y_true), strict=True):
        groups.setdefault(key, [0, 0])[int(label)] += 1
    total = int(np.sum(y_true))
    best = {"f1": 0.0, "tp": 0, "fp": 0}
    tp = fp = 0
    for normal, anomalous in sorted(groups.values(), key=lambda g: -g[1] / (g[0] + g[1])):
        tp, fp = tp + anomalous, fp + normal
        f1 = 2 * tp / (2 * tp + fp + (total - tp)) if tp else 0.0
        if f1 > best["f1"]:
            best = {"f1": f1, "tp": tp, "fp": fp}
    return {**best, "recall": best["tp"] / total if total else 0.0}


def _auc(y: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores)) if 0 < int(np.sum(y)) < y.size else None


def run_hdfs_100k(
    data_dir: str | os.PathLike[str] | None,
    detectors: Sequence[str] | None = None,
    seed: int = 0,
    *,
    train_on: str = "normal",
    scores_out: dict[str, np.ndarray[Any, Any]] | None = None,
    on_detector_done: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit each session detector on HDFS_100k's training part, decide on its test part.

    ``scores_out``, when given, receives each detector's test scores and, under
    ``"__labels__"``, the test labels (for the ROC and PR curves); ``on_detector_done`` is
    called with each detector's name once it has been scored (the progress bar).
    """
    return run_session_detectors(
        load_hdfs_100k(data_dir),
        "hdfs_100k",
        detectors,
        seed,
        train_on=train_on,
        scores_out=scores_out,
        on_detector_done=on_detector_done,
    )


def run_session_detectors(
    sessions: HdfsSessions,
    dataset: str,
    detectors: Sequence[str] | None = None,
    seed: int = 0,
    *,
    train_on: str = "normal",
    scores_out: dict[str, np.ndarray[Any, Any]] | None = None,
    on_detector_done: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit each session detector on the ``train`` part of ``sessions``, decide on ``test``.

    The detector loop of every HDFS session benchmark (HDFS_100k, full HDFS_v1); ``dataset``
    names the sessions in the result. See :func:`run_hdfs_100k` for the two callbacks.
    """
    if train_on not in ("normal", "all"):
        raise ValueError(f"train_on must be 'normal' or 'all', got {train_on!r}")
    unknown = sorted(set(detectors or ()) - set(SESSION_DETECTORS))
    if unknown:
        raise ValueError(f"unknown session detectors {unknown}; choose {sorted(SESSION_DETECTORS)}")
    train, _ = sessions.part("train", normal_only=train_on == "normal")
    test, y_test = sessions.part("test")
    n_keys = len(sessions.templates)
    train_counts, test_counts = count_vectors(train, n_keys), count_vectors(test, n_keys)
    rows = []
    for name in detectors or list(SESSION_DETECTORS):
        detector = SESSION_DETECTORS[name](seed)
        fit_input, test_input = (
            (train, test) if name in SEQUENCE_INPUT else (train_counts, test_counts)
        )
        with PeakMemory() as peak:
            started = time.perf_counter()
            detector.fit(fit_input)
            fitted = time.perf_counter()
            scores = detector.decision_function(test_input)
            flagged = scores > detector.threshold_
            scored = time.perf_counter()
        if scores_out is not None:
            scores_out[name] = np.asarray(scores, dtype=np.float64)
            scores_out["__labels__"] = np.asarray(y_test)
        row = {
            "detector": name,
            "params": detector.get_params(),
            **precision_recall_f1(y_test, flagged),
            "aucroc": _auc(y_test, scores),
            "threshold": float(detector.threshold_),
            "flagged": int(flagged.sum()),
            "fit_seconds": fitted - started,
            "score_seconds": scored - fitted,
            "peak_memory_mb": peak.mb,
        }
        log.info(
            "%s %s: P %.3f R %.3f F1 %.3f",
            dataset,
            name,
            row["precision"],
            row["recall"],
            row["f1"],
        )
        rows.append(row)
        if on_detector_done is not None:
            on_detector_done(name)
    return {
        "dataset": dataset,
        "train_on": train_on,
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "n_test_anomalies": int(y_test.sum()),
        "n_templates": n_keys,
        "rows": rows,
        "ceiling": {
            "exact_sequence": f1_ceiling([tuple(s) for s in test], y_test),
            "count_vector": f1_ceiling([tuple(r) for r in test_counts], y_test),
        },
    }


def run_deeplog(
    data_dir: str | os.PathLike[str] | None,
    seed: int = 0,
    *,
    folds: int = DEEPLOG_FOLDS,
    **params: Any,
) -> dict[str, Any]:
    """Next-key model on DeepLog's HDFS files: recall and false-positive rate, side by side.

    The model fitted on all of ``hdfs_train`` gives the recall on ``hdfs_test_abnormal`` and
    its false-positive rate on its own training sessions (in-sample: no other normal session
    is public). ``folds``-fold cross-validation over ``hdfs_train`` (seeded) gives the
    out-of-sample false-positive rate with the recall of the same fold models; see
    :func:`deeplog_projection` for the precision on DeepLog's test mix.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    train, abnormal = load_deeplog(data_dir)
    with PeakMemory() as peak:
        started = time.perf_counter()
        model = NextKeyDetector(seed=seed, **params).fit(train)
        fitted = time.perf_counter()
        recall = float(np.mean(model.predict(abnormal)))
        scored = time.perf_counter()
    in_sample_fp = _flagged_count(model, train)
    order = np.random.default_rng(seed).permutation(len(train))
    false_positives = 0
    fold_recalls = []
    fold_sizes = []
    for held_out_rows in np.array_split(order, folds):
        held_out = set(held_out_rows.tolist())
        fit_part: Sequences = [s for i, s in enumerate(train) if i not in held_out]
        fold_model = NextKeyDetector(seed=seed, **params).fit(fit_part)
        false_positives += _flagged_count(fold_model, [train[i] for i in held_out_rows])
        fold_recalls.append(_flagged_count(fold_model, abnormal) / len(abnormal))
        fold_sizes.append(len(fit_part))
    cv_fpr = false_positives / len(train)
    cv_recall = float(np.mean(fold_recalls))
    return {
        "params": model.get_params(),
        "n_train": len(train),
        "n_abnormal": len(abnormal),
        "recall_abnormal": recall,
        "missed_abnormal": round((1.0 - recall) * len(abnormal)),
        "in_sample_false_positives": in_sample_fp,
        "in_sample_false_positive_rate": in_sample_fp / len(train),
        "fit_seconds": fitted - started,
        "score_seconds": scored - fitted,
        "sessions_per_s": len(abnormal) / max(scored - fitted, 1e-12),
        "peak_memory_mb": peak.mb,
        "cross_validated": {
            "folds": folds,
            "n_fit_min": min(fold_sizes),
            "false_positives": false_positives,
            "n_normal": len(train),
            "false_positive_rate": cv_fpr,
            "recall_abnormal_mean": cv_recall,
            "recall_abnormal_min": min(fold_recalls),
            "recall_abnormal_max": max(fold_recalls),
            "projected": deeplog_projection(cv_recall, cv_fpr, len(abnormal)),
        },
    }


def _flagged_count(model: NextKeyDetector, sessions: Sequences) -> int:
    """How many of ``sessions`` the model flags, each distinct sequence scored once.

    DeepLog's files repeat sequences (4,123 distinct among 16,838 abnormal sessions), and a
    sequence's decision does not depend on the others, so the count is the same.
    """
    counts = Counter(tuple(session) for session in sessions)
    flags = model.predict([list(sequence) for sequence in counts])
    return int(sum(n for n, flagged in zip(counts.values(), flags, strict=True) if flagged))


def deeplog_projection(
    recall: float,
    false_positive_rate: float,
    n_abnormal: int,
    n_normal: int = DEEPLOG_TEST_NORMAL_SESSIONS,
) -> dict[str, float]:
    """False positives and precision that our rates would give on DeepLog's test mix.

    A projection, not a measurement: DeepLog's ``n_normal`` normal test sessions are not
    public, so our false-positive rate (measured on other normal sessions) is applied to them.

    Examples
    --------
    >>> deeplog_projection(0.5, 0.01, 100, n_normal=5000)
    {'n_normal': 5000, 'false_positives': 50.0, 'precision': 0.5}
    """
    true_positives = recall * n_abnormal
    false_positives = false_positive_rate * n_normal
    flagged = true_positives + false_positives
    return {
        "n_normal": n_normal,
        "false_positives": false_positives,
        "precision": true_positives / flagged if flagged else 0.0,
    }


def run_hdfs(
    data_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
    detectors: Sequence[str] | None = None,
    seed: int = 0,
    *,
    train_on: str = "normal",
    deeplog: bool = True,
    progress: bool = False,
) -> tuple[dict[str, Any], str]:
    """Run both HDFS benchmarks; write ``results.json``, ``results.md``, ``report.html``.

    Parameters
    ----------
    data_dir : path or None
        Folder holding ``hdfs_100k_sessions.csv`` (or its parent); ``None`` = ``$BASELINER_DATA``.
    out : path or None
        Output folder (created); ``None`` writes nothing.
    detectors : sequence of str, optional
        Names from :data:`SESSION_DETECTORS`; default all.
    seed : int
        Seeds the detectors and DeepLog's held-out half.
    train_on : {"normal", "all"}
        Fit on the normal training sessions (DeepLog/loglizer setting) or on all of them.
    deeplog : bool
        Also run the next-key model on DeepLog's files.
    progress : bool
        Show a progress bar (detectors done, with the time left) on stderr.

    Returns
    -------
    (dict, str)
        Every number and the markdown report.
    """
    started = time.perf_counter()
    names = list(detectors or SESSION_DETECTORS)
    memory_scope = "block" if reset_peak_memory() else "process"
    scores: dict[str, np.ndarray[Any, Any]] = {}
    with progress_bar(len(names) + int(deeplog), "hdfs", "detectors", progress) as bar:
        part = run_hdfs_100k(
            data_dir,
            names,
            seed,
            train_on=train_on,
            scores_out=scores,
            on_detector_done=lambda _: bar.update(1),
        )
        deeplog_part = run_deeplog(data_dir, seed) if deeplog else None
        bar.update(int(deeplog))
    results: dict[str, Any] = {
        "benchmark": "hdfs",
        "seed": seed,
        "config": {"train_on": train_on, "detectors": names, "deeplog": deeplog},
        "hdfs_100k": part,
        "deeplog": deeplog_part,
        "anchors": load_anchors("hdfs"),
        "throughput": _throughput(part, deeplog_part, memory_scope),
        **environment(),
    }
    results["seconds"] = time.perf_counter() - started
    markdown = render_markdown(results)
    if out is not None:
        markdown = _write_report(out, results, markdown, scores)
    return results, markdown


def _throughput(
    part: Mapping[str, Any], deeplog: Mapping[str, Any] | None, memory_scope: str
) -> list[dict[str, Any]]:
    entries = [
        Throughput(
            name=row["detector"],
            unit="sessions",
            fit_items=int(part["n_train"]),
            fit_seconds=float(row["fit_seconds"]),
            score_items=int(part["n_test"]),
            score_seconds=float(row["score_seconds"]),
            peak_memory_mb=row.get("peak_memory_mb"),
            memory_scope=memory_scope,
        ).to_dict()
        for row in part["rows"]
    ]
    if deeplog:
        entries.append(
            Throughput(
                name="nextkey (DeepLog files)",
                unit="sessions",
                fit_items=int(deeplog["n_train"]),
                fit_seconds=float(deeplog["fit_seconds"]),
                score_items=int(deeplog["n_abnormal"]),
                score_seconds=float(deeplog["score_seconds"]),
                peak_memory_mb=deeplog.get("peak_memory_mb"),
                memory_scope=memory_scope,
            ).to_dict()
        )
    return entries


def _write_report(
    out: str | os.PathLike[str],
    results: Mapping[str, Any],
    markdown: str,
    scores: Mapping[str, np.ndarray[Any, Any]],
) -> str:
    """results.json, results.md and report.html: F1 and recall beside the anchors, ROC/PR."""
    from benchmarks.plots import Bar, BarPanel, Curve, bar_chart, roc_pr_chart

    plots = Path(out) / "plots"
    dataset = "hdfs_v1" if "hdfs_v1" in results else "hdfs_100k"
    label = {"hdfs_v1": "HDFS_v1", "hdfs_100k": "HDFS_100k"}[dataset]
    part = results[dataset]
    f1_bars = [Bar(row["detector"], row["f1"]) for row in part["rows"]]
    f1_bars += [
        Bar(f"ceiling ({kind.replace('_', ' ')})", bound["f1"], kind="reference")
        for kind, bound in part["ceiling"].items()
    ]
    f1_bars += [
        Bar("published", float(a["value"]), kind="anchor", source=a["source"])
        for a in results["anchors"]
        if a["dataset"] == dataset and a["metric"] == "f1"
    ]
    panels = [BarPanel(f"{label} test F1", f1_bars)]
    deeplog = results.get("deeplog")
    caption = "grey: oracle ceilings (bounds that read the test labels)"
    if deeplog:
        panels += _deeplog_panels(deeplog, results["anchors"])
        caption += (
            "; DeepLog files: recall, false-positive rate and precision side by side (ours: "
            f"{deeplog['cross_validated']['folds']}-fold models on hdfs_train; the precision is "
            "projected onto DeepLog's non-public normal test sessions; grey: the all-data "
            "model, its false-positive rate in-sample)"
        )
    bars = bar_chart(plots / "bars_hdfs.png", "HDFS: ours beside the anchors", panels)
    figures = [Section("Ours beside the published anchors", figures=[Figure(bars, caption)])]
    labels = scores.get("__labels__")
    if labels is not None:
        curves = [Curve(name, labels, scores[name]) for name in scores if name != "__labels__"]
        path = roc_pr_chart(plots / f"roc_pr_{dataset}.png", f"{label} test part", curves)
        caption = f"one curve per detector, seed {results['seed']}"
        figures.append(Section("ROC and precision-recall curves", figures=[Figure(path, caption)]))
    return write_bench_outputs(out, "HDFS log-sequence anomalies", results, markdown, figures)


def _deeplog_panels(deeplog: Mapping[str, Any], anchors: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Recall, false-positive rate (%) and precision of ours beside DeepLog's published ones."""
    from benchmarks.plots import Bar, BarPanel

    cv = deeplog["cross_validated"]
    ours = {
        "recall": [
            Bar(f"nextkey {cv['folds']}-fold", cv["recall_abnormal_mean"]),
            Bar("nextkey all data", deeplog["recall_abnormal"], kind="reference"),
        ],
        "false_positive_rate": [
            Bar(f"nextkey {cv['folds']}-fold", 100.0 * cv["false_positive_rate"]),
            Bar(
                "nextkey all data, in-sample",
                100.0 * deeplog["in_sample_false_positive_rate"],
                kind="reference",
            ),
        ],
        "precision": [Bar("nextkey projected", cv["projected"]["precision"])],
    }
    titles = {
        "recall": "DeepLog files: recall on abnormal",
        "false_positive_rate": "DeepLog files: false-positive rate (%)",
        "precision": "DeepLog files: precision",
    }
    panels = []
    for metric, bars in ours.items():
        scale = 100.0 if metric == "false_positive_rate" else 1.0
        bars += [
            Bar("published", scale * float(a["value"]), kind="anchor", source=a["source"])
            for a in anchors
            if a["dataset"] == "deeplog_hdfs" and a["metric"] == metric
        ]
        panels.append(BarPanel(titles[metric], bars))
    return panels


def deeplog_lines(deeplog: Mapping[str, Any], anchors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown of the DeepLog-files part: recall, false-positive rate, precision side by side."""
    cv = deeplog["cross_validated"]
    projected = cv["projected"]
    published = {a["metric"]: a for a in anchors if a["dataset"] == "deeplog_hdfs"}
    pub = {
        metric: published.get(metric, {}).get("value", "-")
        for metric in ("recall", "false_positive_rate", "precision")
    }
    ratio = ""
    if isinstance(pub["false_positive_rate"], float) and pub["false_positive_rate"] > 0:
        times = cv["false_positive_rate"] / pub["false_positive_rate"]
        ratio = f" Our out-of-sample false-positive rate is {times:.0f}x DeepLog's."
    return [
        "## DeepLog's HDFS files (next-key model, "
        + ", ".join(f"{k}={v}" for k, v in deeplog["params"].items())
        + ")",
        "",
        "| model | recall on hdfs_test_abnormal | false-positive rate on normal sessions | "
        "precision |",
        "|---|---|---|---|",
        f"| nextkey fitted on all of hdfs_train ({deeplog['n_train']} normal sessions) | "
        f"{deeplog['recall_abnormal']:.4f} ({deeplog['missed_abnormal']} of "
        f"{deeplog['n_abnormal']} missed) | {deeplog['in_sample_false_positive_rate']:.4f} "
        f"({deeplog['in_sample_false_positives']} of {deeplog['n_train']}), in-sample: its "
        "own training sessions, the only normal ones there are | - |",
        f"| nextkey, {cv['folds']}-fold on hdfs_train (each fitted on >= {cv['n_fit_min']}, "
        "false positives counted on the held-out fold) | "
        f"{cv['recall_abnormal_mean']:.4f} mean ({cv['recall_abnormal_min']:.4f}-"
        f"{cv['recall_abnormal_max']:.4f}) | **{cv['false_positive_rate']:.4f}** "
        f"({cv['false_positives']} of {cv['n_normal']}) | "
        f"{projected['precision']:.3f} projected (about {projected['false_positives']:,.0f} "
        f"false positives on DeepLog's {projected['n_normal']:,} normal test sessions) |",
        f"| *published: DeepLog LSTM* | {pub['recall']} (619 missed) | "
        f"{pub['false_positive_rate']} (833 of about 553k) | {pub['precision']} |",
        "",
        "DeepLog's normal test sessions are not public (the folder holds `hdfs_train` and "
        "`hdfs_test_abnormal` only), so its 833 false positives cannot be matched on our data: "
        "our out-of-sample false-positive rate comes from normal sessions held out of "
        "hdfs_train, and our precision is projected by applying that rate to DeepLog's normal "
        f"count.{ratio}",
        "",
        *(
            f"- published {a['metric']} {a['value']}: {a['setting']} ({a['source']})"
            for a in anchors
            if a["dataset"] == "deeplog_hdfs"
        ),
    ]


def render_markdown(results: Mapping[str, Any]) -> str:
    """HDFS_100k table (P/R/F1 per detector, ceilings, anchors) and the DeepLog-data rows."""
    lines = [
        "# HDFS log-sequence anomalies",
        "",
        *session_table(
            results["hdfs_100k"],
            results["anchors"],
            "HDFS_100k (deep-loglizer split",
        ),
    ]
    deeplog = results.get("deeplog")
    if deeplog:
        lines += ["", *deeplog_lines(deeplog, results["anchors"])]
    lines += ["", environment_line(results), ""]
    return "\n".join(lines)


def session_table(
    part: Mapping[str, Any], anchors: Sequence[Mapping[str, Any]], title: str
) -> list[str]:
    """Markdown lines of one session benchmark: P/R/F1 per detector, ceilings, its anchors.

    ``title`` opens the heading; the training setting and sizes are appended to it.
    """
    lines = [
        f"## {title}; fitted on {part['train_on']} training sessions, "
        f"n={part['n_train']}; test n={part['n_test']}, {part['n_test_anomalies']} anomalous; "
        f"seed {part['seed']})",
        "",
        "| detector | precision | recall | F1 | AUCROC | flagged | threshold | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in part["rows"]:
        auc = "-" if row["aucroc"] is None else f"{row['aucroc']:.3f}"
        lines.append(
            f"| {row['detector']} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"**{row['f1']:.3f}** | {auc} | {row['flagged']} | {row['threshold']:.4g} | "
            f"{row['fit_seconds']:.2f} |"
        )
    for kind, bound in part["ceiling"].items():
        lines.append(
            f"| *oracle ceiling ({kind.replace('_', ' ')})* | - | {bound['recall']:.3f} | "
            f"{bound['f1']:.3f} | - | {bound['tp'] + bound['fp']} | - | - |"
        )
    for anchor in anchors:
        if anchor["dataset"] == part["dataset"]:
            unverified = " (unverified)" if anchor["source"].startswith("UNVERIFIED") else ""
            lines.append(
                f"| *published{unverified}: {anchor['setting']}* | - | - | {anchor['value']} "
                "| - | - | - | - |"
            )
    return lines


def run_hdfs_v1(
    log_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    detectors: Sequence[str] | None = None,
    seed: int = 0,
    *,
    train_on: str = "normal",
    progress: bool = False,
    parser_options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """Full HDFS_v1 by path: mine ``HDFS.log`` with our drain parser, run the session detectors.

    The sessions and their split come from :func:`benchmarks.hdfs.hdfs_v1.read_hdfs_v1`
    (deep-loglizer's seeded 80/20 split); the detectors, their decisions and the report are
    those of the HDFS_100k benchmark. Writes ``results.json``, ``results.md`` and
    ``report.html`` into ``out`` (unless ``None``); returns every number and the markdown.
    """
    from benchmarks.hdfs.hdfs_v1 import read_hdfs_v1

    started = time.perf_counter()
    names = list(detectors or SESSION_DETECTORS)
    unknown = sorted(set(names) - set(SESSION_DETECTORS))
    if unknown:
        raise ValueError(f"unknown session detectors {unknown}; choose {sorted(SESSION_DETECTORS)}")
    memory_scope = "block" if reset_peak_memory() else "process"
    read = read_hdfs_v1(log_path, label_path, progress=progress, parser_options=parser_options)
    scores: dict[str, np.ndarray[Any, Any]] = {}
    with progress_bar(len(names), "hdfs_v1", "detectors", progress) as bar:
        part = run_session_detectors(
            read.sessions,
            "hdfs_v1",
            names,
            seed,
            train_on=train_on,
            scores_out=scores,
            on_detector_done=lambda _: bar.update(1),
        )
    stats = read.stats()
    throughput = _throughput(part, None, memory_scope)
    for entry in throughput:
        entry.update(
            read_items=stats["lines"],
            read_seconds=stats["parse_seconds"],
            read_unit="lines",
            read_per_s=stats["lines_per_s"],
        )
    results: dict[str, Any] = {
        "benchmark": "hdfs",
        "seed": seed,
        "config": {
            "dataset": "hdfs_v1",
            "log": str(log_path),
            "labels": str(label_path),
            "train_on": train_on,
            "detectors": names,
            "parser_options": dict(parser_options) if parser_options is not None else None,
        },
        "parsing": stats,
        "hdfs_v1": part,
        "anchors": load_anchors("hdfs"),
        "throughput": throughput,
        **environment(),
    }
    results["seconds"] = time.perf_counter() - started
    markdown = render_hdfs_v1_markdown(results)
    if out is not None:
        markdown = _write_report(out, results, markdown, scores)
    return results, markdown


def render_hdfs_v1_markdown(results: Mapping[str, Any]) -> str:
    """The parse of ``HDFS.log`` (lines, sessions, templates, dead letters) and the detectors."""
    stats = results["parsing"]
    rate = "-" if stats["lines_per_s"] is None else f"{stats['lines_per_s']:,.0f}"
    lines = [
        "# HDFS log-sequence anomalies: full HDFS_v1",
        "",
        f"- `{results['config']['log']}`: {stats['lines']:,} lines mined by our drain parser "
        f"in {stats['parse_seconds']:.1f} s ({rate} lines/s) into {stats['templates']} "
        f"templates and {stats['sessions']:,} labelled block sessions",
        f"- dead letters {stats['dead_letters']} "
        + (
            "(" + ", ".join(f"{k}: {v}" for k, v in stats["dead_letter_reasons"].items()) + ")"
            if stats["dead_letters"]
            else ""
        ),
        f"- lines naming no block {stats['lines_without_block']:,}; blocks without a label "
        f"(dropped) {stats['unlabeled_blocks']:,}",
        "",
        *session_table(
            results["hdfs_v1"],
            results["anchors"],
            "HDFS_v1 (deep-loglizer's seeded 80/20 session split",
        ),
    ]
    lines += ["", environment_line(results), ""]
    return "\n".join(lines)

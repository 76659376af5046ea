"""The benchmark plots: ours beside the published anchors, ROC and PR curves, NAB by category.

Every function renders one PNG with matplotlib's Agg backend (no display) and returns its
path; :mod:`benchmarks.report` embeds them in ``report.html``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here: render straight to PNG
import matplotlib.pyplot as plt
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DPI = 80
# Enough points to draw a smooth curve; a 500k-row test part would otherwise draw every row.
_MAX_CURVE_POINTS = 2000
_COLOURS = {"ours": "#3465a4", "anchor": "#cc0000", "reference": "#888a85"}
_PROFILE_COLOURS = ("#3465a4", "#f57900", "#73d216")


@dataclass(frozen=True)
class Bar:
    """One bar: our number (``kind="ours"``), a published anchor, or a reference (a bound).

    Examples
    --------
    >>> Bar("published", 99.96, kind="anchor", source="Han et al. 2022").kind
    'anchor'
    """

    label: str
    value: float
    error: float | None = None
    kind: str = "ours"
    source: str | None = None


@dataclass(frozen=True)
class BarPanel:
    """One metric's bars in a bar chart (one panel per metric).

    Examples
    --------
    >>> BarPanel("AUCROC (%)", [Bar("iforest", 93.2)]).metric
    'AUCROC (%)'
    """

    metric: str
    bars: Sequence[Bar]


@dataclass(frozen=True, eq=False)
class Curve:
    """Scores and 0/1 labels of one detector on one test part, for ROC and PR curves.

    Examples
    --------
    >>> Curve("ecod", np.array([0, 1]), np.array([0.1, 0.9])).label
    'ecod'
    """

    label: str
    labels: np.ndarray[Any, Any]
    scores: np.ndarray[Any, Any]


def is_png(path: Path) -> bool:
    """Whether ``path`` starts with the PNG signature.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.png"
    >>> _ = p.write_bytes(PNG_SIGNATURE + b"rest")
    >>> is_png(p)
    True
    """
    with path.open("rb") as data:
        return data.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _save(fig: Any, path: Path, bottom: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # ``bottom`` keeps a footnote clear of the axes.
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(path, dpi=_DPI, format="png")
    plt.close(fig)
    return path


def bar_chart(path: Path, title: str, panels: Sequence[BarPanel]) -> Path:
    """Ours beside the anchors: one panel per metric, anchors numbered with their source.

    Anchor bars are hatched red and labelled ``published [k]``; the footnote under the chart
    gives source ``k``. Reference bars (bounds, not published results) are grey.

    Examples
    --------
    >>> import tempfile
    >>> panel = BarPanel("F1", [Bar("pca", 0.69), Bar("published", 0.66, kind="anchor",
    ...                                                source="deep-loglizer")])
    >>> is_png(bar_chart(Path(tempfile.mkdtemp()) / "bars.png", "HDFS_100k", [panel]))
    True
    """
    sources: list[str] = []
    for panel in panels:
        for bar in panel.bars:
            if bar.kind == "anchor" and bar.source and bar.source not in sources:
                sources.append(bar.source)
    widths = [max(len(panel.bars), 2) for panel in panels]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(4.0, sum(0.55 * w + 1.2 for w in widths)), 3.6),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        labels = []
        for x, bar in enumerate(panel.bars):
            label = bar.label
            if bar.kind == "anchor" and bar.source:
                label = f"{bar.label} [{sources.index(bar.source) + 1}]"
            labels.append(label)
            ax.bar(
                x,
                bar.value,
                yerr=bar.error,
                color=_COLOURS.get(bar.kind, _COLOURS["ours"]),
                hatch="//" if bar.kind == "anchor" else None,
                edgecolor="black" if bar.kind == "anchor" else None,
                capsize=3,
            )
            if math.isfinite(bar.value):
                ax.annotate(
                    f"{bar.value:.4g}",
                    (x, bar.value + (bar.error or 0.0)),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=7)
        ax.set_ylabel(panel.metric, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.15)
    fig.suptitle(title, fontsize=9)
    if sources:
        notes = "\n".join(f"[{k}] {source}" for k, source in enumerate(sources, start=1))
        fig.text(0.01, 0.01, notes, fontsize=6, va="bottom", wrap=True)
        return _save(fig, path, bottom=0.01 + 0.04 * len(sources))
    return _save(fig, path)


def _thin(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    if len(x) <= _MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, _MAX_CURVE_POINTS).astype(np.int64))
    return x[keep], y[keep]


def roc_pr_chart(path: Path, title: str, curves: Sequence[Curve]) -> Path:
    """ROC (left) and precision-recall (right) curves, one line per :class:`Curve`.

    The legend gives each curve's AUC-ROC and average precision; a curve whose labels hold
    a single class has neither and is listed as such.

    Examples
    --------
    >>> import tempfile
    >>> curve = Curve("toy", np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> is_png(roc_pr_chart(Path(tempfile.mkdtemp()) / "roc.png", "toy set", [curve]))
    True
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(9, 3.8))
    roc_ax.plot([0, 1], [0, 1], color="#cccccc", lw=1, ls="--")
    for curve in curves:
        y = np.asarray(curve.labels).astype(np.int64)
        s = np.nan_to_num(np.asarray(curve.scores, dtype=np.float64), posinf=1e300, neginf=-1e300)
        positives = int(y.sum())
        if not 0 < positives < len(y):
            roc_ax.plot([], [], label=f"{curve.label} (one class only)")
            continue
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        auc = roc_auc_score(y, s)
        ap = average_precision_score(y, s)
        (line,) = roc_ax.plot(*_thin(fpr, tpr), lw=1.2, label=f"{curve.label} ({auc:.3f})")
        pr_ax.plot(
            *_thin(recall, precision),
            lw=1.2,
            color=line.get_color(),
            label=f"{curve.label} ({ap:.3f})",
        )
    roc_ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC (AUC)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (AP)")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.title.set_fontsize(8)
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="lower right" if ax is roc_ax else "upper right")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def nab_category_chart(
    path: Path, title: str, per_category: Mapping[str, Mapping[str, float | None]]
) -> Path:
    """Grouped bars: each NAB category's normalised score under each profile.

    A category without a scored window (``artificialNoAnomaly``) has no normalised score
    (``None``): it gets no bar and a note.

    Examples
    --------
    >>> import tempfile
    >>> scores = {"realTraffic": {"standard": 50.0, "reward_low_FP_rate": 40.0},
    ...           "artificialNoAnomaly": {"standard": None, "reward_low_FP_rate": None}}
    >>> is_png(nab_category_chart(Path(tempfile.mkdtemp()) / "nab.png", "NAB", scores))
    True
    """
    categories = list(per_category)
    profiles = list(dict.fromkeys(p for scores in per_category.values() for p in scores))
    width = 0.8 / max(len(profiles), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(categories) + 1.5), 3.8))
    for k, profile in enumerate(profiles):
        xs, values = [], []
        for x, category in enumerate(categories):
            value = per_category[category].get(profile)
            if value is not None:
                xs.append(x + (k - (len(profiles) - 1) / 2) * width)
                values.append(value)
        ax.bar(xs, values, width, label=profile, color=_PROFILE_COLOURS[k % 3])
    for x, category in enumerate(categories):
        if all(v is None for v in per_category[category].values()):
            ax.text(
                x, 0.03, "no windows", ha="center", fontsize=7, transform=ax.get_xaxis_transform()
            )
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("normalised NAB score", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if profiles:
        # Outside the axes, to the right: inside, "best" placement still covered a category.
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)

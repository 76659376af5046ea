"""``baseliner bench lanl``: LANL 2015 ``auth.txt`` by path, scored against ``redteam.txt``.

The scan runs with its default configuration on the authentication log alone (user-day
windows; fit on the first third, score the rest). ``redteam.txt`` is read only to score: a
user-day is malicious when the red team used that account that day. Event-level metrics give
every authentication its user-day's score, so a red-team login counts as found when its window
is flagged: AUC over events (windows weighted by their red-team and other events) and recall of
red-team events at alert budgets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from benchmarks.report import Figure, Section, write_bench_outputs
from benchmarks.results import (
    PeakMemory,
    environment,
    environment_line,
    scan_config,
    scan_throughput,
)
from detector.errors import UsageError
from detector.scan import ScanOptions, run_scan
from streams.errors import ParseError
from streams.parsers.lanl import read_redteam

BUDGETS = (0.001, 0.005, 0.01)


def run_lanl_bench(
    data_dir: Path,
    out: Path,
    *,
    epoch: datetime | None = None,
    seed: int = 7,
    progress: bool = False,
) -> str:
    """Scan ``data_dir/auth.txt``, score it against ``data_dir/redteam.txt``.

    Writes results.json, results.md and report.html (user-day ROC/PR curves, throughput);
    ``progress`` shows the scan's reading bar.
    """
    auth, redteam = data_dir / "auth.txt", data_dir / "redteam.txt"
    for path in (auth, redteam):
        if not path.is_file():
            raise UsageError(f"no {path.name} in {data_dir}")
    epoch = epoch or datetime(1970, 1, 1, tzinfo=UTC)
    try:
        records = read_redteam(redteam, epoch)
    except ParseError as exc:
        raise UsageError(f"{redteam}: {exc}") from None
    red = (
        pl.DataFrame(
            {"entity": [r.user for r in records], "day": [r.ts.date() for r in records]},
            schema={"entity": pl.String, "day": pl.Date},
        )
        .group_by("entity", "day")
        .len("red_events")
    )
    options = ScanOptions(
        inputs=(("lanl", auth),), out=out / "scan", lanl_epoch=epoch, seed=seed, progress=progress
    )
    with PeakMemory() as peak:
        result = run_scan(options)
    windows = (
        result.scored.windows.with_columns(pl.col("window_start").dt.date().alias("day"))
        .join(red, on=["entity", "day"], how="left")
        .with_columns(pl.col("red_events").fill_null(0).cast(pl.Int64))
    )
    s = windows["score"].to_numpy()
    red_n = windows["red_events"].to_numpy()
    other_n = np.maximum(windows["n_events"].to_numpy() - red_n, 0)
    y_day = (red_n > 0).astype(int)
    order = np.argsort(-s, kind="stable")
    total_red = int(red_n.sum())
    metrics: dict[str, Any] = {
        "user_days": len(s),
        "malicious_user_days": int(y_day.sum()),
        "redteam_events_in_scored_period": total_red,
        "redteam_events_total": len(records),
        "user_day_auc_roc": float(roc_auc_score(y_day, s)) if 0 < y_day.sum() < len(s) else None,
        "event_auc_roc": float(
            roc_auc_score(
                np.r_[np.ones(len(s)), np.zeros(len(s))],
                np.r_[s, s],
                sample_weight=np.r_[red_n, other_n].astype(float),
            )
        )
        if total_red and other_n.sum()
        else None,
        "user_day_recall_at_budget": {},
        "event_recall_at_budget": {},
    }
    for budget in BUDGETS:
        top = order[: max(round(budget * len(s)), 1)]
        key = f"{budget:.1%}"
        metrics["user_day_recall_at_budget"][key] = (
            float(y_day[top].sum() / y_day.sum()) if y_day.sum() else None
        )
        metrics["event_recall_at_budget"][key] = (
            float(red_n[top].sum() / total_red) if total_red else None
        )
    payload = {
        "benchmark": "lanl",
        "seed": seed,
        "config": {
            "scan": scan_config(result),
            "train": "first third",
            "lanl_epoch": epoch.isoformat(),
        },
        "events": result.events,
        "detector": result.pipeline.config.detector,
        **metrics,
        "throughput": [scan_throughput(result.pipeline.config.detector, result, peak)],
        **environment(),
    }

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        f"# LANL auth: {result.events:,} events, detector {payload['detector']}, seed {seed}",
        "",
        f"- red-team events in the scored period: {total_red} of {len(records)}; "
        f"malicious user-days: {metrics['malicious_user_days']} of {len(s)}",
        f"- user-day AUC-ROC {fmt(metrics['user_day_auc_roc'])}, "
        f"event AUC-ROC {fmt(metrics['event_auc_roc'])}",
        "",
        "| budget (share of user-days) | user-day recall | red-team event recall |",
        "|---|---:|---:|",
        *[
            f"| {k} | {fmt(metrics['user_day_recall_at_budget'][k])} | "
            f"{fmt(metrics['event_recall_at_budget'][k])} |"
            for k in metrics["user_day_recall_at_budget"]
        ],
    ]
    text = "\n".join(lines) + f"\n\nSeed {seed}; {environment_line(payload)}\n"
    from benchmarks.plots import Curve, roc_pr_chart

    path = roc_pr_chart(
        out / "plots" / "roc_pr_lanl.png",
        "LANL scored user-days (label: the red team used the account that day)",
        [Curve(str(payload["detector"]), y_day, s)],
    )
    caption = f"scored user-days (after the training third), seed {seed}; no published anchor"
    section = Section("ROC and precision-recall curves", figures=[Figure(path, caption)])
    text = write_bench_outputs(out, "LANL authentication benchmark", payload, text, [section])
    return text + f"\nresults: {out / 'results.json'} (and report.html)"

"""``baseliner bench cert``: a full CERT Insider Threat release, given by path, against its key.

The release's ``answers/`` define the malicious user-days (``insiders.csv`` and, per insider,
the details file of their malicious rows). The scan runs with its default configuration on the
whole release (fit on the first third, score the rest); the answers are read only to score.
Metrics: user-day AUC-ROC and AUC-PR, recall at alert budgets of 0.1% / 0.5% / 1% of scored
user-days, and per insider the days from the first malicious act to the first alert.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.report import Figure, Section, write_bench_outputs
from benchmarks.results import (
    PeakMemory,
    environment,
    environment_line,
    load_anchors,
    scan_config,
    scan_throughput,
)
from detector.errors import UsageError
from detector.scan import ScanOptions, ScanResult, run_scan

BUDGETS = (0.001, 0.005, 0.01)


def _answers_dir(data_dir: Path) -> Path:
    for candidate in (data_dir / "answers", data_dir.parent / "answers"):
        if (candidate / "insiders.csv").is_file():
            return candidate
    raise UsageError(f"no CERT answer key: expected answers/insiders.csv in {data_dir} or above")


def read_answers(data_dir: Path, release: str) -> pl.DataFrame:
    """Malicious user-days of ``release`` (``"r6.2"`` or ``"6.2"``): entity, day, scenario.

    Each insider's details file gives the days of their malicious rows (the third field of each
    line is the CERT date). When a details file is missing, every day from ``start`` to ``end``
    of the insider's row counts.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "answers" / "r4.2-1").mkdir(parents=True)
    >>> _ = (root / "answers" / "insiders.csv").write_text(
    ...     "dataset,scenario,details,user,start,end\\n"
    ...     "4.2,1,r4.2-1-AAM0658.csv,AAM0658,10/23/2010 03:14:25,10/30/2010 07:24:14\\n")
    >>> _ = (root / "answers" / "r4.2-1" / "r4.2-1-AAM0658.csv").write_text(
    ...     "logon,{X1},10/23/2010 03:14:25,AAM0658,PC-1,Logon\\n"
    ...     "device,{X2},10/25/2010 01:02:03,AAM0658,PC-1,Connect\\n")
    >>> read_answers(root, "r4.2")["day"].to_list()
    [datetime.date(2010, 10, 23), datetime.date(2010, 10, 25)]
    """
    answers = _answers_dir(data_dir)
    number = release.removeprefix("r")
    insiders = pl.read_csv(answers / "insiders.csv", infer_schema=False)
    missing = {"dataset", "scenario", "user"} - set(insiders.columns)
    if missing:
        raise UsageError(f"{answers / 'insiders.csv'}: missing columns {sorted(missing)}")
    mine = insiders.filter(pl.col("dataset").str.strip_chars() == number)
    if mine.height == 0:
        raise UsageError(f"{answers / 'insiders.csv'}: no insider of release {release}")
    rows: list[tuple[str, date, str]] = []
    for record in mine.iter_rows(named=True):
        user, scenario = record["user"].strip(), record["scenario"].strip()
        details = answers / f"r{number}-{scenario}" / str(record.get("details") or "")
        if record.get("details") and details.is_file():
            for line in details.read_text(errors="replace").splitlines():
                parts = line.split(",", 4)
                if len(parts) >= 4:
                    try:
                        when = datetime.strptime(parts[2].strip(), "%m/%d/%Y %H:%M:%S")
                    except ValueError:
                        continue
                    rows.append((user, when.date(), scenario))
        else:
            start = datetime.strptime(record["start"].strip(), "%m/%d/%Y %H:%M:%S").date()
            end = datetime.strptime(record["end"].strip(), "%m/%d/%Y %H:%M:%S").date()
            rows += [(user, day, scenario) for day in pl.date_range(start, end, eager=True)]
    return (
        pl.DataFrame(
            rows, schema={"entity": pl.String, "day": pl.Date, "scenario": pl.String}, orient="row"
        )
        .unique(["entity", "day"], keep="first")
        .sort("entity", "day")
    )


def label_user_days(result: ScanResult, truth: pl.DataFrame) -> pl.DataFrame:
    """The scan's scored windows with ``day`` and ``label`` (1 if ``truth`` lists entity-day).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from datetime import datetime, UTC
    >>> windows = pl.DataFrame({"entity": ["a", "b"], "score": [0.9, 0.1],
    ...     "window_start": [datetime(2010, 1, 4, tzinfo=UTC)] * 2})
    >>> scan = SimpleNamespace(scored=SimpleNamespace(windows=windows))
    >>> truth = pl.DataFrame({"entity": ["a", "a"], "day": [date(2010, 1, 4)] * 2})
    >>> label_user_days(scan, truth)["label"].to_list()
    [1, 0]
    """
    windows = result.scored.windows.with_columns(pl.col("window_start").dt.date().alias("day"))
    return windows.join(
        truth.select("entity", "day").unique().with_columns(pl.lit(1).alias("label")),
        on=["entity", "day"],
        how="left",
    ).with_columns(pl.col("label").fill_null(0))


def score_cert(result: ScanResult, truth: pl.DataFrame) -> dict[str, Any]:
    """User-day metrics of a scan against malicious user-days."""
    labelled = label_user_days(result, truth)
    y = labelled["label"].to_numpy()
    s = labelled["score"].to_numpy()
    positives = int(y.sum())
    order = np.argsort(-s, kind="stable")
    recall = {
        f"{b:.1%}": (
            float(y[order[: max(round(b * len(s)), 1)]].sum() / positives)
            if positives
            else float("nan")
        )
        for b in BUDGETS
    }
    ranks = labelled.with_columns((pl.col("score").rank("average") / pl.len() * 100).alias("pct"))
    mean_pct = ranks.filter(pl.col("label") == 1)["pct"].mean()
    alerts = pl.DataFrame(
        {
            "entity": [a.entity for a in result.scored.alerts],
            "alert_day": [a.window_start.date() for a in result.scored.alerts],
        },
        schema={"entity": pl.String, "alert_day": pl.Date},
    )
    scored_from = labelled["day"].min()
    delays: list[dict[str, Any]] = []
    for (entity,), days in truth.filter(pl.col("day") >= scored_from).group_by(
        ["entity"], maintain_order=True
    ):
        first_act = days["day"].min()
        hits = alerts.filter((pl.col("entity") == entity) & (pl.col("alert_day") >= first_act))
        first_alert = hits["alert_day"].min()
        delay: int | None = None
        if isinstance(first_alert, date) and isinstance(first_act, date):
            delay = (first_alert - first_act).days
        delays.append(
            {
                "entity": entity,
                "first_malicious_day": str(first_act),
                "first_alert_day": None if delay is None else str(first_alert),
                "days_to_first_alert": delay,
            }
        )
    return {
        "auc_roc": float(roc_auc_score(y, s)) if 0 < positives < len(y) else float("nan"),
        "auc_pr": float(average_precision_score(y, s)) if positives else float("nan"),
        "recall_at_budget": recall,
        "mean_percentile_of_malicious_user_days": (
            float(mean_pct) if isinstance(mean_pct, int | float) else None
        ),
        "positives": positives,
        "scored_user_days": len(y),
        "insiders_scored": len(delays),
        "insiders_alerted": sum(1 for d in delays if d["first_alert_day"] is not None),
        "days_to_first_alert": delays,
    }


def run_cert_bench(
    data_dir: Path, release: str, out: Path, *, seed: int = 7, progress: bool = False
) -> str:
    """Scan a CERT release and score it against its answers.

    Writes results.json, results.md and report.html (the percentile beside the anchor, the
    user-day ROC/PR curves, throughput); ``progress`` shows the scan's reading bar.
    """
    if not data_dir.is_dir():
        raise UsageError(f"no such directory: {data_dir}")
    truth = read_answers(data_dir, release)
    options = ScanOptions(
        inputs=(("cert", data_dir),), out=out / "scan", seed=seed, progress=progress
    )
    with PeakMemory() as peak:
        result = run_scan(options)
    metrics = score_cert(result, truth)
    anchors = load_anchors("cert")
    anchor = next((a for a in anchors if a["metric"] == "mean_percentile_of_malicious"), None)
    payload = {
        "benchmark": "cert",
        "release": release,
        "seed": seed,
        "detector": result.pipeline.config.detector,
        "config": {"scan": scan_config(result), "train": "first third"},
        "events": result.events,
        "anchors": anchors,
        **metrics,
        "throughput": [scan_throughput(result.pipeline.config.detector, result, peak)],
        **environment(),
    }
    lines = [
        f"# CERT {release}: {result.events:,} events, detector {payload['detector']}, seed {seed}",
        "",
        "| metric | ours | anchor |",
        "|---|---:|---:|",
        f"| user-day AUC-ROC | {metrics['auc_roc']:.4f} | |",
        f"| user-day AUC-PR | {metrics['auc_pr']:.4f} | |",
        *[
            f"| recall at {k} of user-days | {v:.3f} | |"
            for k, v in metrics["recall_at_budget"].items()
        ],
        f"| mean percentile of malicious user-days | "
        f"{metrics['mean_percentile_of_malicious_user_days'] or float('nan'):.1f} | "
        + (
            "-"
            if anchor is None
            else f"{anchor['value']} ({anchor['source']}; {anchor['setting']})"
        )
        + " |",
        "",
        f"insiders alerted: {metrics['insiders_alerted']} of {metrics['insiders_scored']}",
        "",
        "| insider | first malicious day | first alert | days |",
        "|---|---|---|---:|",
        *[
            f"| {d['entity']} | {d['first_malicious_day']} | {d['first_alert_day'] or '-'} | "
            f"{'-' if d['days_to_first_alert'] is None else d['days_to_first_alert']} |"
            for d in metrics["days_to_first_alert"]
        ],
    ]
    text = "\n".join(lines) + f"\n\nSeed {seed}; {environment_line(payload)}\n"
    labelled = label_user_days(result, truth)
    text = _write_report(out, payload, text, labelled, anchor)
    return text + f"\nresults: {out / 'results.json'} (and report.html)"


def _write_report(
    out: Path,
    payload: dict[str, Any],
    markdown: str,
    labelled: pl.DataFrame,
    anchor: dict[str, Any] | None,
) -> str:
    from benchmarks.plots import Bar, BarPanel, Curve, bar_chart, roc_pr_chart

    figures: list[Section] = []
    ours = payload["mean_percentile_of_malicious_user_days"]
    if ours is not None:
        bars = [Bar("ours (user-days)", float(ours))]
        if anchor is not None:
            bars.append(
                Bar("published (events)", anchor["value"], kind="anchor", source=anchor["source"])
            )
        path = bar_chart(
            out / "plots" / "bars_cert.png",
            f"CERT {payload['release']}: mean percentile of malicious activity",
            [BarPanel("mean percentile", bars)],
        )
        figures.append(Section("Ours beside the published anchor", figures=[Figure(path)]))
    curve = Curve(
        str(payload["detector"]), labelled["label"].to_numpy(), labelled["score"].to_numpy()
    )
    path = roc_pr_chart(out / "plots" / "roc_pr_cert.png", "CERT scored user-days", [curve])
    caption = f"scored user-days (after the training third), seed {payload['seed']}"
    figures.append(Section("ROC and precision-recall curves", figures=[Figure(path, caption)]))
    title = f"CERT {payload['release']} insider-threat benchmark"
    return write_bench_outputs(out, title, payload, markdown, figures)

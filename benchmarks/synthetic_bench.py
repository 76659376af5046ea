"""``baseliner bench synthetic``: detection quality on a generated organisation.

One configuration (the scan defaults), seeded; the ground truth is read only to score the
result, never to fit or tune anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.cert_bench import label_user_days
from benchmarks.orgcache import ensure_org
from benchmarks.report import Figure, Section, write_bench_outputs
from benchmarks.results import (
    PeakMemory,
    environment,
    environment_line,
    scan_config,
    scan_throughput,
)
from detector.pipeline import Budget
from detector.scan import ScanOptions, ScanResult, run_scan


@dataclass
class SyntheticQuality:
    """The quality table of one synthetic benchmark run."""

    auc_roc: float
    auc_pr: float
    recall_at_budget: float
    budget_fraction: float
    positives: int
    scored_windows: int
    entities: int
    scenario_ranks: list[dict[str, Any]]
    decoys_in_top: int
    decoy_entities: int
    decoys_above_planted: list[str]
    top_fraction: float = 0.01
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _truth(directory: Path, name: str, column: str) -> pl.DataFrame:
    frame = pl.read_csv(directory / name, schema_overrides={"entity": pl.String, "day": pl.String})
    return frame.with_columns(pl.col("day").str.to_date().alias("day")).select(
        "entity", "day", column
    )


def evaluate(result: ScanResult, org: Path, *, budget_fraction: float = 0.005) -> SyntheticQuality:
    """Score a scan of a generated organisation against its ground truth."""
    truth = _truth(org, "ground_truth.csv", "scenario")
    decoys = _truth(org, "decoys.csv", "kind")
    labelled = label_user_days(result, truth)
    y = labelled["label"].to_numpy()
    s = labelled["score"].to_numpy()
    positives = int(y.sum())
    auc_roc = float(roc_auc_score(y, s)) if 0 < positives < len(y) else float("nan")
    auc_pr = float(average_precision_score(y, s)) if positives else float("nan")
    k = max(round(budget_fraction * len(s)), 1)
    top = np.argsort(-s, kind="stable")[:k]
    recall = float(y[top].sum() / positives) if positives else float("nan")

    # Ranked among user accounts: machine accounts (``C123$``, from auth logs) are entities
    # too, but counting them would inflate the "top 1%" an analyst reviews.
    entities = result.scored.entities.filter(~pl.col("entity").str.ends_with("$"))
    n_entities = entities.height
    top_n = max(int(np.ceil(0.01 * n_entities)), 1)
    rank_of = dict(zip(entities["entity"].to_list(), range(1, n_entities + 1), strict=True))
    scenario_ranks: list[dict[str, Any]] = []
    for (scenario, entity), _ in truth.group_by(["scenario", "entity"], maintain_order=True):
        rank = rank_of.get(str(entity))
        scenario_ranks.append(
            {
                "scenario": str(scenario),
                "entity": str(entity),
                "rank": rank,
                "in_top_1pct": rank is not None and rank <= top_n,
            }
        )
    scenario_ranks.sort(key=lambda r: (r["scenario"], r["rank"] or 10**9))
    planted = {r["entity"] for r in scenario_ranks}
    worst_planted = max((r["rank"] or 10**9) for r in scenario_ranks) if scenario_ranks else 0
    decoy_entities = sorted(set(decoys["entity"].to_list()) - planted)
    decoy_ranks = {e: rank_of.get(e) for e in decoy_entities}
    decoys_in_top = sum(1 for r in decoy_ranks.values() if r is not None and r <= top_n)
    above = sorted(e for e, r in decoy_ranks.items() if r is not None and r < worst_planted)
    return SyntheticQuality(
        auc_roc=auc_roc,
        auc_pr=auc_pr,
        recall_at_budget=recall,
        budget_fraction=budget_fraction,
        positives=positives,
        scored_windows=len(s),
        entities=n_entities,
        scenario_ranks=scenario_ranks,
        decoys_in_top=decoys_in_top,
        decoy_entities=len(decoy_entities),
        decoys_above_planted=above,
        timings=dict(result.timings),
    )


def org_inputs(org: Path, manifest: dict[str, Any]) -> tuple[list[tuple[str, Path]], datetime]:
    """A generated organisation's inputs (``format, path``) and the instant of LANL time 0.

    Examples
    --------
    >>> import tempfile
    >>> org = Path(tempfile.mkdtemp())
    >>> inputs, epoch = org_inputs(org, {"lanl_epoch": "2024-01-01T00:00:00Z"})
    >>> [fmt for fmt, _ in inputs], epoch.isoformat()
    (['cert'], '2024-01-01T00:00:00+00:00')
    """
    epoch = datetime.fromisoformat(str(manifest["lanl_epoch"]).replace("Z", "+00:00"))
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    inputs: list[tuple[str, Path]] = [("cert", org)]
    if (org / "auth.txt").is_file():
        inputs.append(("lanl", org / "auth.txt"))
    return inputs, epoch


def scan_org(
    org: Path,
    out: Path,
    manifest: dict[str, Any],
    *,
    detector: str = "tail",
    seed: int = 7,
    budget: Budget | None = None,
    progress: bool = False,
) -> ScanResult:
    """Scan a generated organisation: its CERT files and its LANL-style auth.txt."""
    inputs, epoch = org_inputs(org, manifest)
    return run_scan(
        ScanOptions(
            inputs=tuple(inputs),
            out=out,
            detector=detector,
            seed=seed,
            budget=budget or Budget(),
            lanl_epoch=epoch,
            progress=progress,
        )
    )


def format_quality(q: SyntheticQuality, header: str) -> str:
    lines = [
        header,
        "",
        f"user-day AUC-ROC   {q.auc_roc:.4f}",
        f"user-day AUC-PR    {q.auc_pr:.4f}",
        f"recall of planted user-days at a budget of {q.budget_fraction:.1%} of user-days: "
        f"{q.recall_at_budget:.3f} ({q.positives} planted user-days in {q.scored_windows} scored)",
        "",
        f"entity risk ranks among user accounts (top 1% = rank <= "
        f"{max(int(np.ceil(0.01 * q.entities)), 1)} of {q.entities}):",
    ]
    for r in q.scenario_ranks:
        mark = "yes" if r["in_top_1pct"] else "NO"
        lines.append(
            f"  scenario {r['scenario']}: {r['entity']:<10} rank {r['rank']}  top 1%: {mark}"
        )
    lines += [
        f"decoys (benign rare) in the top 1%: {q.decoys_in_top} of {q.decoy_entities} decoy users",
        "decoys ranked above the lowest planted user: "
        + (", ".join(q.decoys_above_planted) if q.decoys_above_planted else "none"),
        "timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in q.timings.items()),
    ]
    return "\n".join(lines)


def run_synthetic_bench(
    out: Path,
    *,
    users: int,
    days: int,
    seed: int,
    detector: str = "tail",
    progress: bool = False,
) -> str:
    """Generate (or reuse) the organisation, scan it, score it.

    Writes results.json, results.md and report.html (user-day ROC/PR curves, throughput);
    ``progress`` shows the scan's reading bar.
    """
    t0 = time.perf_counter()
    org = out / f"org-u{users}-d{days}-s{seed}"
    manifest = ensure_org(org, users=users, days=days, seed=seed)
    t_gen = time.perf_counter() - t0
    with PeakMemory() as peak:
        result = scan_org(
            org, out / "scan", manifest, detector=detector, seed=seed, progress=progress
        )
    quality = evaluate(result, org)
    quality.timings["generate_or_reuse_s"] = t_gen
    payload = {
        "benchmark": "synthetic",
        "users": users,
        "days": days,
        "seed": seed,
        "detector": detector,
        "budget": str(result.pipeline.config.budget),
        "config": {"users": users, "days": days, "scan": scan_config(result)},
        **quality.to_dict(),
        "throughput": [scan_throughput(detector, result, peak)],
        **environment(),
    }
    header = (
        f"synthetic benchmark: {users} users x {days} days, seed {seed}, detector {detector}, "
        f"{result.events:,} events"
    )
    text = format_quality(quality, header)
    from benchmarks.plots import Curve, roc_pr_chart

    labelled = label_user_days(result, _truth(org, "ground_truth.csv", "scenario"))
    path = roc_pr_chart(
        out / "plots" / "roc_pr_synthetic.png",
        "synthetic organisation: scored user-days (label: a planted scenario's day)",
        [Curve(detector, labelled["label"].to_numpy(), labelled["score"].to_numpy())],
    )
    caption = f"scored user-days (after the training third), seed {seed}; no published anchor"
    section = Section("ROC and precision-recall curves", figures=[Figure(path, caption)])
    markdown = f"# {header}\n\n```\n{text.split(chr(10), 1)[1].strip()}\n```\n"
    markdown += f"\nSeed {seed}; {environment_line(payload)}\n"
    write_bench_outputs(out, "Synthetic organisation benchmark", payload, markdown, [section])
    return text + f"\nresults: {out / 'results.json'} (and results.md, report.html)"

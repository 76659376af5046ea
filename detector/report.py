"""report.md and report.html: the top entities, why they stand out, and their features over time."""

from __future__ import annotations

import base64
import html
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")  # no display here: render straight to PNG
import matplotlib.pyplot as plt
import polars as pl

from detector.alerts import Alert
from detector.pipeline import Pipeline, ScoredWindows
from detector.risk import entity_reason


def _top_features(alerts: list[Alert], limit: int = 3) -> list[str]:
    counts: Counter[str] = Counter()
    for alert in alerts:
        for rank, dev in enumerate(alert.deviations):
            counts[dev.feature] += 10 - rank
    return [name for name, _ in counts.most_common(limit)]


#: Alerts listed per entity in the report; the rest are counted in a note.
ALERTS_PER_ENTITY = 8


def strongest_alerts(alerts: list[Alert], limit: int = ALERTS_PER_ENTITY) -> list[Alert]:
    """The ``limit`` highest-scoring alerts, in date order (equal scores: the earlier first).

    A list cut at the first ``limit`` alerts by date would leave out an entity's peak when it
    comes late (an exfiltration after days of reconnaissance).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> def alert(day, score):
    ...     start = datetime(2010, 2, day, tzinfo=UTC)
    ...     return Alert.build(entity="u", window_start=start, window_end=start,
    ...         detector="tail", score=score, threshold=1.0, severity="low",
    ...         schema_hash="h", deviations=())
    >>> picked = strongest_alerts([alert(1, 3.0), alert(2, 2.0), alert(3, 9.0), alert(4, 2.0)], 2)
    >>> [(a.window_start.day, a.score) for a in picked]
    [(1, 3.0), (3, 9.0)]
    """
    by_strength = sorted(alerts, key=lambda a: (-a.score, a.window_start))[:limit]
    return sorted(by_strength, key=lambda a: a.window_start)


def _more_note(alerts: list[Alert], shown: list[Alert]) -> str:
    """ "N more alerts in alerts.jsonl" when the report lists only some of them, else ""."""
    hidden = len(alerts) - len(shown)
    if hidden <= 0:
        return ""
    return f"{hidden} more alert{'s' if hidden != 1 else ''} in alerts.jsonl"


#: Plots of windows between these years get the axis' usual margin (a twentieth of the time
#: range at each end); outside them the axis ends at the first and last window.
_PADDED_YEARS: Final = (1000, 9000)


def _plot_entity(
    entity: str,
    vectors: pl.DataFrame,
    features: list[str],
    flagged: list[object],
    path: Path,
    scored_from: object | None = None,
) -> None:
    rows = vectors.filter(pl.col("entity") == entity).sort("window_start")
    fig, axes = plt.subplots(len(features), 1, figsize=(8, 1.8 * len(features) + 0.6), sharex=True)
    axes_list = list(axes) if len(features) > 1 else [axes]
    x = rows["window_start"].to_list()
    for ax, name in zip(axes_list, features, strict=True):
        ax.plot(x, rows[name].to_list(), lw=1, color="#3465a4")
        for day in flagged:
            ax.axvline(day, color="#cc0000", alpha=0.35, lw=3)  # type: ignore[arg-type]
        if scored_from is not None:
            ax.axvline(scored_from, color="#555555", ls="--", lw=1)  # type: ignore[arg-type]
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right")
        ax.tick_params(labelsize=7)
    if x and (x[0].year < _PADDED_YEARS[0] or x[-1].year > _PADDED_YEARS[1]):
        # Near year 1 or 9999, the axis' usual margin (or two years each side of a single
        # window) would reach dates matplotlib refuses.
        first, last = x[0], x[-1]
        if first == last:
            first, last = first - timedelta(days=1), last + timedelta(days=1)
        axes_list[0].set_xlim(first, last)
    axes_list[0].set_title(
        f"{entity}: features over time (red = flagged windows, dashed = scoring starts)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_reports(
    out: Path, scored: ScoredWindows, vectors: pl.DataFrame, pipeline: Pipeline, *, top: int = 10
) -> dict[str, Path]:
    """Write report.md, report.html and one PNG per top entity into ``out``."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    # An earlier run's top entities (into the same folder) are not this report's.
    for stale in plots.glob("*.png"):
        stale.unlink()
    by_entity: dict[str, list[Alert]] = {}
    for alert in scored.alerts:
        by_entity.setdefault(alert.entity, []).append(alert)
    top_rows = scored.entities.head(top).to_dicts()
    scored_from = scored.windows["window_start"].min() if scored.windows.height else None

    md = [
        "# baseliner scan report",
        "",
        f"- windows scored: {scored.windows.height}, alerts: {len(scored.alerts)} "
        f"(budget {pipeline.config.budget}, threshold {scored.threshold:.4g}, "
        f"detector `{pipeline.config.detector}`, seed {pipeline.config.seed})",
        "",
        "## Top entities by risk",
        "",
        "| rank | entity | risk | alerts | peak window | top reason |",
        "|---:|---|---:|---:|---|---|",
    ]
    sections_md: list[str] = []
    sections_html: list[str] = []
    for row in top_rows:
        entity = str(row["entity"])
        alerts = sorted(by_entity.get(entity, []), key=lambda a: a.window_start)
        strongest = max(alerts, key=lambda a: a.score) if alerts else None
        reason = entity_reason(strongest, row["risk"])
        peak = row["peak_window"].date().isoformat() if row["peak_window"] else ""
        md.append(
            f"| {row['rank']} | {entity} | {row['risk']:.2f} | {row['alerts']} | {peak} | "
            f"{reason} |"
        )
        features = _top_features(alerts) or pipeline.features[:3]
        png = plots / f"{_safe(entity)}.png"
        _plot_entity(entity, vectors, features, [a.window_start for a in alerts], png, scored_from)
        lines = [f"### {row['rank']}. {entity} (risk {row['risk']:.2f})", ""]
        if alerts:
            lines.append(f"Baseline: {alerts[0].baseline}.")
        shown = strongest_alerts(alerts)
        for alert in shown:
            tech = f" [{', '.join(alert.techniques)}]" if alert.techniques else ""
            lines.append(
                f"- **{alert.window_start.date()}** {alert.severity}, score {alert.score:.3f}"
                f"{tech}: {alert.summary}"
            )
        if more := _more_note(alerts, shown):
            lines.append(f"- ({more})")
        lines += ["", f"![{entity}](plots/{png.name})", ""]
        sections_md += lines
        b64 = base64.b64encode(png.read_bytes()).decode()
        items = "".join(
            f"<li><b>{a.window_start.date()}</b> {html.escape(a.severity)}, score "
            f"{a.score:.3f} {html.escape(', '.join(a.techniques))}: {html.escape(a.summary)}</li>"
            for a in shown
        )
        if more := _more_note(alerts, shown):
            items += f"<li>({html.escape(more)})</li>"
        sections_html.append(
            f"<h3>{row['rank']}. {html.escape(entity)} (risk {row['risk']:.2f})</h3>"
            f"<ul>{items}</ul><img alt='{html.escape(entity)}' src='data:image/png;base64,{b64}'>"
        )
    md += ["", "## Entities", "", *sections_md]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")

    table_rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{html.escape(str(r['entity']))}</td>"
        f"<td>{r['risk']:.2f}</td><td>{r['alerts']}</td></tr>"
        for r in top_rows
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>baseliner report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{padding:2px 8px}img{max-width:100%}</style></head><body>"
        "<h1>baseliner scan report</h1>"
        f"<p>{scored.windows.height} windows scored, {len(scored.alerts)} alerts, budget "
        f"{html.escape(str(pipeline.config.budget))}, threshold {scored.threshold:.4g}, detector "
        f"{html.escape(pipeline.config.detector)}.</p>"
        "<h2>Top entities by risk</h2><table><tr><th>rank</th><th>entity</th><th>risk</th>"
        f"<th>alerts</th></tr>{table_rows}</table><h2>Entities</h2>"
        + "".join(sections_html)
        + "</body></html>"
    )
    html_path = out / "report.html"
    html_path.write_text(page)
    return {"report_md": md_path, "report_html": html_path}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

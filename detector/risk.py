"""Entity risk: evidence from many windows accumulates, with exponential decay.

A window's evidence is how surprising its score is against the training score distribution,
above a floor: ``max(0, -log10(1 - p) - floor)`` where ``p`` is the score's percentile among
training scores. Evidence decays with a half-life, so several weak signals on one entity over a
few days rise above one loud benign blip, and old evidence fades.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

STREAM_SURPRISE_FLOOR = 5.0
"""Default surprise floor (nines) of entity risk: the daemon's and the stream bench's.

A window counts as evidence only beyond 5 nines of the ordinary score distribution, as in the
batch scan (``detector.pipeline.BATCH_SURPRISE_FLOOR``). With 2 nines the many mildly unusual
days of busy benign users outweighed an insider's one extreme day; measured on the dev
organisations (seeds 11 and 13) with ``baseliner bench synthetic --mode stream``. Fewer ordinary
scores than 10^5 resolve fewer nines, so then only windows beyond the largest ordinary score
count (the scorer extrapolates the surprise there).
"""


@dataclass(frozen=True)
class RiskConfig:
    """How evidence turns into entity risk.

    Parameters
    ----------
    half_life_days
        Risk halves after this many days without new evidence.
    surprise_floor
        Evidence starts above this many "nines" of surprise (2.0 = beyond the 99th
        percentile of training scores). The default, :data:`STREAM_SURPRISE_FLOOR`, is the
        online scorer's (the daemon's); the batch scan sets its own.

    Examples
    --------
    >>> RiskConfig().half_life_days, RiskConfig().surprise_floor
    (7.0, 5.0)
    """

    half_life_days: float = 7.0
    surprise_floor: float = STREAM_SURPRISE_FLOOR


def surprise(percentile: NDArray[np.float64], n_reference: int) -> NDArray[np.float64]:
    """``-log10(1 - p)``, capped by what ``n_reference`` training scores can resolve.

    Examples
    --------
    >>> surprise(np.array([0.0, 0.9, 0.999, 1.0]), n_reference=999).round(2).tolist()
    [0.0, 1.0, 3.0, 3.0]
    """
    tail = np.maximum(1.0 - percentile, 1.0 / (n_reference + 1))
    return np.asarray(np.abs(np.log10(tail)), dtype=np.float64)


def entity_risk(windows: pl.DataFrame, config: RiskConfig = RiskConfig()) -> pl.DataFrame:
    """Accumulate per-window evidence into per-entity risk.

    Parameters
    ----------
    windows
        Columns ``entity``, ``window_start`` (datetime), ``evidence`` (float >= 0) and
        ``alert`` (bool).

    Returns
    -------
    polars.DataFrame
        One row per entity: ``risk`` (peak decayed risk over the period: the ranking key),
        ``risk_now`` (at the end of the period), ``peak_day``, ``alerts``, ``windows``,
        ``evidence_windows``, sorted by risk descending (ties by entity).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> w = pl.DataFrame({"entity": ["a", "a", "b"],
    ...     "window_start": [datetime(2010, 1, d, tzinfo=UTC) for d in (1, 8, 1)],
    ...     "evidence": [2.0, 2.0, 3.0], "alert": [True, True, True]})
    >>> entity_risk(w)["risk"].to_list()  # 2 decays to 1 in 7 days, plus 2
    [3.0, 3.0]
    """
    end = windows["window_start"].max()
    decay_per_day = np.log(2.0) / config.half_life_days
    ordered = windows.sort("entity", "window_start")
    entities = ordered["entity"].to_numpy()
    days = ordered["window_start"].dt.epoch("s").to_numpy().astype(np.float64) / 86_400.0
    evidence = ordered["evidence"].to_numpy().astype(np.float64)
    end_day = 0.0 if end is None else float(pl.Series([end]).dt.epoch("s")[0]) / 86_400.0

    rows: list[tuple[str, float, float, int]] = []
    start = 0
    n = len(entities)
    while start < n:
        stop = start
        while stop < n and entities[stop] == entities[start]:
            stop += 1
        risk = 0.0
        peak = 0.0
        peak_at = start
        for k in range(start, stop):
            if k > start:
                risk *= float(np.exp(-decay_per_day * (days[k] - days[k - 1])))
            risk += evidence[k]
            if risk > peak:
                peak, peak_at = risk, k
        now = risk * float(np.exp(-decay_per_day * max(end_day - days[stop - 1], 0.0)))
        rows.append((str(entities[start]), peak, now, peak_at))
        start = stop

    peak_days = ordered["window_start"].gather([r[3] for r in rows]) if rows else None
    counts = ordered.group_by("entity", maintain_order=True).agg(
        pl.col("alert").sum().cast(pl.Int64).alias("alerts"),
        pl.len().cast(pl.Int64).alias("windows"),
        (pl.col("evidence") > 0).sum().cast(pl.Int64).alias("evidence_windows"),
    )
    result = pl.DataFrame(
        {
            "entity": [r[0] for r in rows],
            "risk": [round(r[1], 6) for r in rows],
            "risk_now": [round(r[2], 6) for r in rows],
        },
        schema={"entity": pl.String, "risk": pl.Float64, "risk_now": pl.Float64},
    )
    if peak_days is not None:
        result = result.with_columns(peak_days.alias("peak_window"))
    else:
        result = result.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("peak_window"))
    return (
        result.join(counts, on="entity", how="left")
        .sort(["risk", "entity"], descending=[True, False])
        .with_row_index("rank", offset=1)
    )

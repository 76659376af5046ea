"""Entity risk: evidence from many windows accumulates, with exponential decay.

A window's evidence is how surprising its score is against the training score distribution,
above a floor: ``max(0, -log10(1 - p) - floor)`` where ``p`` is the score's percentile among
training scores. Evidence decays with a half-life, so several weak signals on one entity over a
few days rise above one loud benign blip, and old evidence fades.

An alert of the daemon counts at least the nines its alert budget makes it rare
(:func:`alert_evidence`). The daemon adds one more term for windows judged against their own history
(:class:`FeatureEvidence`): how far its single most surprising feature lies beyond what the
population ever showed on that feature. A window's score sums its two largest feature surprises,
so correlated pairs (weekend and off-hours logons) lift ordinary busy days as high as an
insider's day with one behaviour never seen before (a keylogger download, a mail to sixty new
recipients); the strongest single feature tells them apart.

Counting each behaviour group once in the score (``FeatureSpec.group``, :mod:`models.combine`;
``PipelineConfig.behaviour_groups`` and the scorer's ``behaviour_groups``) takes such pairs
out of the score itself, but is off by default: on the dev organisations it took as much from
insiders whose one act shows in several features of a group (a mass email: recipients, new
recipients, the largest message's recipients) and left benign decoys above them: admin
maintenance nights, whose night shows in two groups (time of activity, remote access), and
new hires.

The daemon's risk lasts as long as the entity's state: an entity the features evict (the
``max_entities`` cap) or expire (``idle_expiry``) loses its risk record with its baseline
(:meth:`detector.online_scoring.OnlineScorer.forget`), so memory follows the cap. Its past
alerts stay in the sinks, carrying the risk they had; if it returns, it starts with risk 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detector.alerts import Alert

STREAM_SURPRISE_FLOOR = 5.0
"""Default surprise floor (nines) of entity risk: the daemon's and the stream bench's.

A window counts as evidence only beyond 5 nines of the ordinary score distribution, as in the
batch scan (``detector.pipeline.BATCH_SURPRISE_FLOOR``). With 2 nines the many mildly unusual
days of busy benign users outweighed an insider's one extreme day; measured on the dev
organisations (seeds 11 and 13) with ``baseliner bench synthetic --mode stream``. Fewer ordinary
scores than 10^5 resolve fewer nines, so then only windows beyond the largest ordinary score
count (the scorer extrapolates the surprise there).
"""

STREAM_FEATURE_FLOOR_SHARE = 0.8
"""Default :attr:`FeatureEvidence.floor_share`: a feature counts beyond 80% of its surprise cap.

The cap, ``2 * log10(n + 1)`` nines for ``n`` reference deviations, is what
:func:`detector.online_scoring.tail_surprise` gives a deviation far beyond every one the
population showed (7.52 of 9.40 nines with the scorer's 50,000 reference windows). Tied to the
cap rather than a fixed number of nines so that a small deployment, whose reference resolves
fewer nines, keeps the same rule.
"""

STREAM_FEATURE_WEIGHT = 3.0
"""Default :attr:`FeatureEvidence.weight`: nines of risk per nine of feature surprise beyond
the floor.

Chosen with the floor share on the dev organisations (seeds 11 and 13, 1000 users x 180 days,
``baseliner bench synthetic --mode stream``) from a plateau: floor shares 0.75-0.85 with weights
3-4 rank every planted account within the top 12 on both (weight 2: 13; without the term, 20);
0.8 and 3 are its middle.
"""


@dataclass(frozen=True)
class FeatureEvidence:
    """Risk evidence of a window's strongest feature, for windows judged on their own history.

    ``weight * max(0, strongest - floor_share * 2 * log10(n_reference + 1))``, where
    ``strongest`` is the largest per-feature surprise of the window (nines, as
    :func:`detector.online_scoring.tail_surprise` measures it against ``n_reference``
    own-history deviations of the population) and ``2 * log10(n_reference + 1)`` is that
    surprise's cap. It is added to the window's evidence (:class:`RiskConfig`); cold-start
    windows earn none (their per-feature surprises are measured against the whole population,
    whose spread fits a new account poorly). ``weight=0`` turns it off.

    Parameters
    ----------
    floor_share
        Share of the surprise cap a feature must exceed (default
        :data:`STREAM_FEATURE_FLOOR_SHARE`).
    weight
        Evidence per nine beyond that floor (default :data:`STREAM_FEATURE_WEIGHT`).

    Examples
    --------
    >>> rule = FeatureEvidence()
    >>> # 99,999 reference rows: cap 10 nines, floor 8; 9 nines beyond it earn 3 x 1
    >>> float(rule.floor(99_999))
    8.0
    >>> rule.evidence(np.array([9.0, 7.0, 9.0]), np.array([True, True, False]), 99_999).tolist()
    [3.0, 0.0, 0.0]
    """

    floor_share: float = STREAM_FEATURE_FLOOR_SHARE
    weight: float = STREAM_FEATURE_WEIGHT

    def floor(self, n_reference: int | NDArray[np.int64]) -> NDArray[np.float64]:
        """Nines a feature must exceed against ``n_reference`` reference deviations."""
        n = np.asarray(n_reference, dtype=np.float64)
        return np.asarray(self.floor_share * 2.0 * np.log10(n + 1.0), dtype=np.float64)

    def evidence(
        self,
        strongest: NDArray[np.float64],
        own: NDArray[np.bool_],
        n_reference: int | NDArray[np.int64],
    ) -> NDArray[np.float64]:
        """Each window's feature evidence (0 for cold-start windows and empty references).

        Parameters
        ----------
        strongest
            Per window, the largest per-feature surprise (nines).
        own
            Per window, whether it was judged against the entity's own history.
        n_reference
            Reference deviations behind the surprises (one number, or one per window).
        """
        strongest = np.asarray(strongest, dtype=np.float64)
        n = np.broadcast_to(np.asarray(n_reference), strongest.shape)
        beyond = np.maximum(strongest - self.floor(n), 0.0) * self.weight
        return np.asarray(np.where(np.asarray(own) & (n > 0), beyond, 0.0), dtype=np.float64)


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


def alert_evidence(alert_rate: float) -> float:
    """Least risk evidence of a window that alerts: the nines its alert budget makes it rare.

    The online threshold is the ``1 - alert_rate`` quantile of recent scores (``alert_rate``:
    budget per day over windows per day), so a window that alerts lies beyond at least
    ``-log10(alert_rate)`` nines of them. The surprise floor (:data:`STREAM_SURPRISE_FLOOR`)
    keeps the many mildly unusual windows that do not alert from adding up; an alert was
    already singled out by the threshold and the daily cap, and counts at least this much
    (a cold-start alert at the scorer's cold-start weight, as any of its evidence). Without it
    a deployment with fewer than ``10^5`` ordinary scores, which cannot resolve 5 nines,
    showed ``critical`` alerts with risk 0, ranked below entities without any alert.

    Examples
    --------
    >>> round(alert_evidence(5 / 1000), 3)  # 5 alerts a day over 1000 users
    2.301
    """
    if not 0.0 < alert_rate < 1.0:
        raise ValueError(f"alert_rate must be in (0, 1), got {alert_rate}")
    return -math.log10(alert_rate)


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
        ``alert`` (bool); optionally ``score`` (the detector's, for breaking ties).

    Returns
    -------
    polars.DataFrame
        One row per entity: ``risk`` (peak decayed risk over the period: the ranking key),
        ``risk_now`` (at the end of the period), ``peak_day``, ``alerts``, ``windows``,
        ``evidence_windows``, sorted by risk descending. Equal risks (often 0 for everyone:
        a short training period resolves few nines) are ranked by alerts, then by the
        entity's highest score, both descending, then by entity, so the ranking never
        falls back to alphabetical order while alerts tell entities apart.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> w = pl.DataFrame({"entity": ["a", "a", "b"],
    ...     "window_start": [datetime(2010, 1, d, tzinfo=UTC) for d in (1, 8, 1)],
    ...     "evidence": [2.0, 2.0, 3.0], "alert": [True, True, True]})
    >>> ranked = entity_risk(w)  # 2 decays to 1 in 7 days, plus 2: a tie, a's 2 alerts lead
    >>> ranked["entity"].to_list(), ranked["risk"].to_list()
    (['a', 'b'], [3.0, 3.0])
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
    peak_score = pl.col("score").max() if "score" in ordered.columns else pl.lit(0.0, pl.Float64)
    counts = ordered.group_by("entity", maintain_order=True).agg(
        pl.col("alert").sum().cast(pl.Int64).alias("alerts"),
        pl.len().cast(pl.Int64).alias("windows"),
        (pl.col("evidence") > 0).sum().cast(pl.Int64).alias("evidence_windows"),
        peak_score.alias("__peak_score"),
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
        .sort(
            ["risk", "alerts", "__peak_score", "entity"],
            descending=[True, True, True, False],
            nulls_last=True,
        )
        .drop("__peak_score")
        .with_row_index("rank", offset=1)
    )


def without_muted(
    windows: pl.DataFrame, alerts: Sequence[Alert], kept: Sequence[Alert]
) -> pl.DataFrame:
    """``windows`` with the findings an allow-list muted neither alerting nor adding risk.

    A muted finding was reviewed and accepted: its window must not rank its entity above the
    entities whose findings stand. Muted findings remain counted where the scan reports
    suppression; only their risk evidence and alert flag are withdrawn here.

    Parameters
    ----------
    windows
        The scored windows (columns ``entity``, ``window_start``, ``evidence``, ``alert``).
    alerts, kept
        The alerts before the allow-list and those it kept.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from detector.alerts import Alert
    >>> day = datetime(2010, 1, 4, tzinfo=UTC)
    >>> def alert(entity):
    ...     return Alert.build(entity=entity, window_start=day, window_end=day, detector="tail",
    ...         score=9.0, threshold=5.0, severity="high", schema_hash="h", deviations=())
    >>> w = pl.DataFrame({"entity": ["a", "b"], "window_start": [day, day],
    ...     "evidence": [4.0, 1.0], "alert": [True, True]})
    >>> muted = without_muted(w, [alert("a"), alert("b")], kept=[alert("b")])
    >>> muted["evidence"].to_list(), muted["alert"].to_list()
    ([0.0, 1.0], [False, True])
    >>> without_muted(w.with_columns(pl.lit("high").alias("severity")), [alert("a")], kept=[]
    ...     )["severity"].to_list()
    [None, 'high']
    """
    kept_ids = {a.id for a in kept}
    muted = [a for a in alerts if a.id not in kept_ids]
    if not muted:
        return windows
    keys = pl.DataFrame(
        {
            "entity": [a.entity for a in muted],
            "window_start": [a.window_start for a in muted],
        },
        schema={"entity": windows.schema["entity"], "window_start": windows.schema["window_start"]},
    ).with_columns(pl.lit(True).alias("__muted"))
    flagged = windows.join(keys, on=["entity", "window_start"], how="left", maintain_order="left")
    is_muted = pl.col("__muted").fill_null(False)
    withdrawn = [
        pl.when(is_muted).then(0.0).otherwise(pl.col("evidence")).alias("evidence"),
        (pl.col("alert") & ~is_muted).alias("alert"),
    ]
    if "severity" in windows.columns:  # a window that does not alert has no severity
        withdrawn.append(
            pl.when(is_muted).then(None).otherwise(pl.col("severity")).alias("severity")
        )
    return flagged.with_columns(withdrawn).drop("__muted")


def entity_reason(strongest: Alert | None, risk: float) -> str:
    """Why an entity is in a top list: its strongest alert's summary, else what its risk says.

    Examples
    --------
    >>> entity_reason(None, 2.5), entity_reason(None, 0.0)
    ('accumulated weak evidence, no single alert', 'no alert and no accumulated risk')
    """
    if strongest is not None:
        return strongest.summary
    if risk > 0:
        return "accumulated weak evidence, no single alert"
    return "no alert and no accumulated risk"

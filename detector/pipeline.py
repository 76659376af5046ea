"""The Pipeline: feature vectors in, scores, calibrated decisions and explained alerts out.

It is the one path shared by the scan, the benchmarks and (later) the daemon, so they cannot
drift apart. It sees feature vectors (one row per entity per window), never raw events.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detector.alerts import Alert
from detector.errors import UsageError
from detector.explain import BaselineProfile
from detector.risk import RiskConfig, alert_evidence, entity_risk, surprise
from detector.scaling import scale_matrix
from features.batch import spec_schema_hash
from features.spec import FeatureSpec, group_ids
from models import create
from models.calibration import BudgetCalibrator, severity_beyond

logger = logging.getLogger(__name__)

KEY_COLUMNS = ("entity", "window_start", "n_events")


@dataclass(frozen=True)
class Budget:
    """An alert budget: alerts per day, or a fraction of all windows.

    Examples
    --------
    >>> Budget.parse("5/day").per_day, Budget.parse("0.5%").fraction
    (5.0, 0.005)
    >>> Budget.parse("5/day").alerts_for(windows=3000, days=30)
    150
    >>> Budget.parse("0/day")
    Traceback (most recent call last):
    ...
    detector.errors.UsageError: budget '0/day' must be above 0 (e.g. 5/day, 0.5%)
    """

    per_day: float | None = 5.0
    fraction: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"N/day"`` (N > 0) or ``"P%"`` (0 < P <= 100) into a budget; else a UsageError."""
        text = text.strip()
        # A sign is accepted by the pattern so that "-5/day" is refused for its value, not
        # as an unreadable text.
        number = r"([+-]?\d+(?:\.\d+)?)"
        if m := re.fullmatch(number + r"\s*(?:/\s*day)?", text):
            per_day = float(m.group(1))
            if per_day <= 0:
                raise UsageError(f"budget {text!r} must be above 0 (e.g. 5/day, 0.5%)")
            return cls(per_day=per_day, fraction=None)
        if m := re.fullmatch(number + r"\s*%", text):
            percent = float(m.group(1))
            if not 0 < percent <= 100:
                raise UsageError(f"budget {text!r} must be above 0% and at most 100% of windows")
            return cls(per_day=None, fraction=percent / 100.0)
        raise UsageError(f"budget {text!r} is not 'N/day' or 'P%' (e.g. 5/day, 0.5%)")

    def wanted(self, *, windows: int, days: float) -> float:
        """Alerts the budget asks for over ``windows`` windows spread over ``days`` days,
        before rounding (:meth:`alerts_for` rounds and caps it)."""
        if self.fraction is not None:
            return self.fraction * windows
        return (self.per_day or 0.0) * max(days, 1.0)

    def alerts_for(self, *, windows: int, days: float) -> int:
        """How many of ``windows`` windows spread over ``days`` days may alert.

        A budget that covers every window is allowed (a 100% budget asks for it) but logged
        as a warning: every window above the detector's floor then alerts.
        """
        wanted = self.wanted(windows=windows, days=days)
        if windows and wanted >= windows:
            logger.warning(
                "a budget of %s allows all %d windows to alert (%.4g wanted): give a smaller one",
                self,
                windows,
                wanted,
            )
        return int(min(max(round(wanted), 0), windows))

    def __str__(self) -> str:
        if self.fraction is not None:
            return f"{self.fraction * 100:g}% of windows"
        return f"{self.per_day:g}/day"


#: Nines of surprise a window's score must exceed before it counts as entity risk evidence
#: in the batch pipeline: beyond one in 100,000 training windows. The window surprise resolves
#: ``log10(n_train + 1)`` nines (4.85 with 60 training days of 1000 users) and is extrapolated
#: beyond the largest training score, so below 100,000 training windows only scores past
#: everything training saw earn evidence. A lower floor lets two or three merely rare windows
#: (one night's work split by midnight into two user-days) outweigh one window far beyond
#: anything in training, such as a mass email from a manager's account.
BATCH_SURPRISE_FLOOR = 5.0


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides how vectors become alerts.

    Examples
    --------
    >>> PipelineConfig().detector, PipelineConfig().risk.surprise_floor
    ('tail', 5.0)
    """

    detector: str = "tail"
    detector_params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 7
    budget: Budget = field(default_factory=Budget)
    risk: RiskConfig = field(
        default_factory=lambda: RiskConfig(surprise_floor=BATCH_SURPRISE_FLOOR)
    )
    z_min: float = 2.0
    min_history: int = 5
    entity_type: str = "user"
    window: timedelta = timedelta(days=1)
    behaviour_groups: bool = False
    """Count the features of one behaviour group (:attr:`FeatureSpec.group
    <features.spec.FeatureSpec>`) once in the detector's score (:mod:`models.combine`; the
    ``tail`` detector reads it). Off by default: on the dev organisations (seeds 11 and 13)
    it raised user-day AUC-PR but moved planted accounts whose one act shows in several
    features of a group (a mass email) below benign decoys (admin maintenance nights, new
    hires)."""


@dataclass
class ScoredWindows:
    """The outcome of scoring a set of windows."""

    windows: pl.DataFrame
    """Key columns plus ``score``, ``percentile``, ``evidence``, ``alert``, ``severity``
    (null where no alert was raised; else from the nines of rarity the score lies beyond the
    threshold against the training scores, :func:`models.calibration.severity_beyond`)."""
    alerts: list[Alert]
    threshold: float
    entities: pl.DataFrame
    """Entity risk (see :func:`detector.risk.entity_risk`)."""


class Pipeline:
    """Fit a detector and a behavioural baseline on training windows; score and explain others.

    Parameters
    ----------
    specs
        The feature specs whose columns the vectors hold, in order.
    config
        Detector, seed, alert budget, risk and explanation settings.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, timedelta, UTC
    >>> from features.spec import FeatureSpec
    >>> specs = [FeatureSpec(name="logons", kind="count"), FeatureSpec(name="usb", kind="count")]
    >>> day0 = datetime(2010, 1, 1, tzinfo=UTC)
    >>> rng = np.random.default_rng(0)
    >>> rows = [{"entity": f"u{u}", "window_start": day0 + timedelta(days=d), "n_events": 10,
    ...          "logons": float(rng.integers(1, 4)), "usb": 0.0}
    ...         for u in range(20) for d in range(20)]
    >>> frame = pl.DataFrame(rows)
    >>> frame = frame.with_columns(pl.when((pl.col("entity") == "u3") & (pl.col("window_start")
    ...     == day0 + timedelta(days=18))).then(40.0).otherwise(pl.col("usb")).alias("usb"))
    >>> train = frame.filter(pl.col("window_start") < day0 + timedelta(days=10))
    >>> test = frame.filter(pl.col("window_start") >= day0 + timedelta(days=10))
    >>> pipe = Pipeline(specs, PipelineConfig(detector="robust", budget=Budget(per_day=1)))
    >>> result = pipe.fit(train).process(test)
    >>> top = result.alerts[0]
    >>> top.entity, top.deviations[0].feature, top.deviations[0].observed
    ('u3', 'usb', 40.0)
    """

    def __init__(self, specs: Sequence[FeatureSpec], config: PipelineConfig | None = None) -> None:
        self.specs = tuple(specs)
        self.config = config or PipelineConfig()
        self.features = [s.name for s in self.specs]
        self.schema_hash = spec_schema_hash(self.specs)
        self.detector_: Any = None
        self.profile_: BaselineProfile | None = None
        self.reference_: NDArray[np.float64] | None = None
        self.groups_: dict[str, str] = {}

    # -- matrices -------------------------------------------------------------------------
    def _matrix(self, frame: pl.DataFrame) -> NDArray[np.float64]:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"feature vectors lack columns {missing}")
        X = frame.select(self.features).to_numpy().astype(np.float64)
        return scale_matrix(self.specs, X)

    def _context(self, frame: pl.DataFrame) -> dict[str, Any]:
        entities = frame["entity"].cast(pl.String).to_numpy()
        # times: a newcomer's own earlier windows become its baseline (models/batch/baselines).
        context: dict[str, Any] = {"entities": entities, "times": frame["window_start"].to_numpy()}
        # The behaviour each column measures, so that one act seen in several correlated
        # features counts once (models/combine). Read from the specs and config the pipeline
        # holds: a model saved before groups existed scores as it was fitted, ungrouped.
        behaviours = group_ids(self.specs)
        if self.config.behaviour_groups and len(set(behaviours)) < len(behaviours):
            context["feature_groups"] = np.array(behaviours, dtype=np.int64)
        if self.groups_:
            context["groups"] = np.array(
                [self.groups_.get(str(e), "(unknown)") for e in entities], dtype=object
            )
        else:
            context["groups"] = None
        return context

    # -- fit / score ----------------------------------------------------------------------
    def fit(self, train: pl.DataFrame, groups: Mapping[str, str] | None = None) -> Self:
        """Learn the detector and the per-entity baseline from training windows."""
        if train.height == 0:
            raise UsageError("no training windows: the training period holds no events")
        self.groups_ = dict(groups or {})
        X = self._matrix(train)
        params = {"seed": self.config.seed, **dict(self.config.detector_params)}
        self.detector_ = create(self.config.detector, **params)
        self.detector_.fit(X, **self._context(train))
        self.reference_ = np.sort(self.detector_.decision_function(X, **self._context(train)))
        self.profile_ = BaselineProfile(
            self.specs,
            train,
            groups=self.groups_ or None,
            min_rows=self.config.min_history,
            z_min=self.config.z_min,
        )
        return self

    def score(self, frame: pl.DataFrame) -> NDArray[np.float64]:
        """Raw detector scores, higher = more anomalous."""
        if self.detector_ is None:
            raise RuntimeError("Pipeline.score called before fit")
        if frame.height == 0:
            return np.zeros(0, dtype=np.float64)
        scores = self.detector_.decision_function(self._matrix(frame), **self._context(frame))
        return np.asarray(scores, dtype=np.float64)

    def percentile(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fraction of training scores strictly below each score."""
        assert self.reference_ is not None
        ref = self.reference_
        return np.searchsorted(ref, scores, side="left") / max(len(ref), 1)

    def surprise(
        self, scores: NDArray[np.float64], percentile: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """How many "nines" of the training score distribution each score lies beyond.

        ``-log10(1 - p)`` with ``p`` the training percentile. Beyond the largest training
        score the percentile saturates, so the surprise is extrapolated along the slope of
        the training tail (from its 99th percentile to its maximum): a window far beyond
        anything seen in training keeps more weight than one just past it. When the top 1%
        of training scores tie at the maximum (a small training set: a few hundred windows
        of a detector whose scores are sums of a few discrete surprises), the tail is
        measured from the largest score below the tie instead, at the nines of the share of
        training scores above it. Without that, no window could pass ``log10(n + 1)``
        nines, and every entity's risk stayed 0. Pass ``percentile`` when it is already
        computed for these scores.

        Examples
        --------
        >>> pipe = Pipeline([FeatureSpec(name="n", kind="count")])
        >>> # 999 training scores (3 nines), the top 20 tied at 3.0: q99 is the maximum.
        >>> pipe.reference_ = np.array([1.0] * 979 + [3.0] * 20)
        >>> # slope from (1.0, -log10(20/999) = 1.70 nines) to (3.0, 3 nines): 0.65 per unit
        >>> pipe.surprise(np.array([3.0, 5.0])).round(3).tolist()
        [1.699, 4.301]
        """
        assert self.reference_ is not None
        ref = self.reference_
        n = len(ref)
        pct = self.percentile(scores) if percentile is None else percentile
        base = surprise(pct, n)
        cap = float(np.log10(n + 1))
        top, q99 = float(ref[-1]), float(np.quantile(ref, 0.99))
        if cap <= 2.0:
            return base
        if top > q99:
            anchor, anchor_nines = q99, 2.0
        else:
            below = int(np.searchsorted(ref, top, side="left"))
            if below == 0:
                return base
            anchor = float(ref[below - 1])
            anchor_nines = float(-np.log10((n - below) / n))
        slope = (cap - anchor_nines) / (top - anchor)
        beyond = scores > top
        base[beyond] = cap + (scores[beyond] - top) * slope
        return base

    def evidence(
        self, scores: NDArray[np.float64], percentile: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """Entity-risk evidence of each score: its surprise above the risk floor, else 0.

        Examples
        --------
        >>> pipe = Pipeline([FeatureSpec(name="n", kind="count")])
        >>> pipe.reference_ = np.arange(1.0, 100_000.0)  # resolves 5 nines
        >>> # 9 of 99,999 training scores lie above 99,990.5: 4.05 nines, under the floor;
        >>> # 1000 beyond the largest, along the tail's slope: 8 nines, 3 above the floor
        >>> pipe.evidence(np.array([99_990.5, 100_999.0])).round(2).tolist()
        [0.0, 3.0]
        """
        floor = self.config.risk.surprise_floor
        return np.maximum(self.surprise(scores, percentile) - floor, 0.0)

    def process(self, frame: pl.DataFrame) -> ScoredWindows:
        """Score windows, calibrate to the budget, explain the alerts, accumulate risk.

        Alerts: the threshold is the budget's quantile of the scores judged, and only scores
        strictly above it alert (as :class:`models.calibration.BudgetCalibrator` and the
        daemon decide), so windows tied at the threshold never fill the budget, and fewer
        windows than the budget alert when fewer stand out (see :func:`select_alerts`).

        Severity is absolute: the nines of rarity by which a window's score lies beyond the
        threshold's, both measured against the training scores (:meth:`surprise`; see
        :func:`models.calibration.severity_beyond`), not a rank among this run's alerts.

        Risk: a window's evidence is its surprise above the risk floor. When no window of
        the run passes the floor (bounded scores, such as every registered detector's but
        ``tail``), each alert counts the nines its budget makes it rare
        (:func:`detector.risk.alert_evidence` of alerts over windows), as the daemon's alerts
        do; else every entity had risk 0 and the ranking fell to alert counts. When the
        floor is passed, the alerts below it add nothing: with ``tail`` on the 200-user
        organisation, counting them moved busy benign accounts with 11 to 17 moderate
        alerts above four of the six planted ones.
        """
        assert self.profile_ is not None and self.reference_ is not None
        scores = self.score(frame)
        pct = self.percentile(scores)
        nines = self.surprise(scores, pct)
        evidence = np.maximum(nines - self.config.risk.surprise_floor, 0.0)
        span_days = _span_days(frame, self.config.window)
        n_alerts = self.config.budget.alerts_for(windows=frame.height, days=span_days)
        if frame.height and n_alerts:
            calibrator = BudgetCalibrator().fit(
                scores,
                n_windows_per_period=frame.height / max(span_days, 1.0),
                budget_per_period=n_alerts / max(span_days, 1.0),
            )
            threshold = float(calibrator.threshold_)
        elif frame.height:
            # A budget that rounds to no alert: no score lies above the highest one.
            threshold = float(scores.max())
        else:
            threshold = float("inf")
        alert_mask = select_alerts(scores, threshold, n_alerts)
        threshold_nines = 0.0
        if alert_mask.any():
            if not evidence.any() and n_alerts < frame.height:
                # Scores that never pass the risk floor (bounded ones) give evidence to no
                # window: the alerts then carry the rarity their budget gives them.
                least = alert_evidence(n_alerts / frame.height)
                evidence[alert_mask] = np.maximum(evidence[alert_mask], least)
            threshold_nines = float(self.surprise(np.array([threshold]))[0])
        severities = [
            severity_beyond(float(n) - threshold_nines) if flagged else ""
            for n, flagged in zip(nines, alert_mask, strict=True)
        ]

        windows = frame.select(KEY_COLUMNS).with_columns(
            pl.Series("score", scores),
            pl.Series("percentile", pct),
            pl.Series("evidence", evidence),
            pl.Series("alert", alert_mask),
            # Null, not "", where no alert was raised: a window without an alert has none.
            pl.Series("severity", [s or None for s in severities], dtype=pl.String),
        )
        alerts = self._alerts(frame, scores, alert_mask, threshold, severities)
        entities = entity_risk(windows, self.config.risk) if frame.height else _empty_risk()
        return ScoredWindows(windows=windows, alerts=alerts, threshold=threshold, entities=entities)

    def _alerts(
        self,
        frame: pl.DataFrame,
        scores: NDArray[np.float64],
        mask: NDArray[np.bool_],
        threshold: float,
        severities: list[str],
    ) -> list[Alert]:
        assert self.profile_ is not None
        window = self.config.window
        flagged = np.flatnonzero(mask)
        flagged = flagged[np.argsort(-scores[flagged], kind="stable")]
        rows = frame[flagged.tolist()].to_dicts() if len(flagged) else []
        alerts: list[Alert] = []
        profile = self.profile_.with_history(frame)  # newcomers' own earlier windows
        for i, row in zip(flagged, rows, strict=True):
            entity = str(row["entity"])
            deviations, basis = profile.explain(entity, row)
            context: dict[str, str | int | float] = {}
            if row.get("n_events") is not None:
                context["events"] = int(row["n_events"])
            if entity in self.groups_:
                context["peer_group"] = self.groups_[entity]
            alerts.append(
                Alert.build(
                    entity=entity,
                    window_start=row["window_start"],
                    window_end=row["window_start"] + window,
                    detector=self.config.detector,
                    score=float(scores[i]),
                    threshold=threshold,
                    severity=severities[i],
                    schema_hash=self.schema_hash,
                    deviations=deviations,
                    entity_type=self.config.entity_type,
                    baseline=basis,
                    context=context,
                )
            )
        return alerts


def select_alerts(scores: NDArray[np.float64], threshold: float, budget: int) -> NDArray[np.bool_]:
    """Which scores alert: those strictly above ``threshold``, at most ``budget`` of them.

    A score equal to the threshold never alerts: the threshold is a quantile of the scores
    judged, so a flat stretch of equal scores there would otherwise fill the budget. When more
    than ``budget`` scores lie above it (the quantile's rounding), the highest alert, and a
    group of equal scores that the budget would cut is left out whole: windows with equal
    scores are equally anomalous to the detector, and picking some by input (name) order would
    give the slots to the alphabetically first entities. Fewer alerts than the budget is the
    honest answer when fewer windows stand out.

    Examples
    --------
    >>> scores = np.array([1.0, 3.0, 3.0, 3.0, 7.0, 9.0])
    >>> select_alerts(scores, threshold=3.0, budget=4).tolist()  # the ties at 3 do not alert
    [False, False, False, False, True, True]
    >>> select_alerts(scores, threshold=1.0, budget=4).tolist()  # the budget would split 3s
    [False, False, False, False, True, True]
    >>> int(select_alerts(scores, threshold=0.5, budget=6).sum())
    6
    """
    mask = np.asarray(scores > threshold, dtype=np.bool_)
    if int(mask.sum()) <= budget:
        return mask
    if budget <= 0:
        return np.zeros_like(mask)
    # The highest score left out by the budget: it and every score equal to it stay out.
    first_left_out = float(np.sort(scores[mask])[::-1][budget])
    return np.asarray(scores > first_left_out, dtype=np.bool_)


def _span_days(frame: pl.DataFrame, window: timedelta) -> float:
    """Days covered by the windows of ``frame``, last window included.

    At most the days that hold a window (each window's start date, counted once, times the
    window's length in days when it is longer than a day): a stray event years away (a
    mistyped clock) must not stretch a per-day budget over the empty years in between and
    let every window alert. Data without gaps of whole days keeps its first-to-last span.

    Examples
    --------
    >>> from datetime import UTC
    >>> days = [datetime(2010, 1, d, tzinfo=UTC) for d in (4, 5, 6)]
    >>> _span_days(pl.DataFrame({"window_start": days}), timedelta(days=1))
    3.0
    >>> stray = days + [datetime(2030, 1, 5, tzinfo=UTC)]
    >>> _span_days(pl.DataFrame({"window_start": stray}), timedelta(days=1))
    4.0
    """
    if frame.height == 0:
        return 0.0
    starts = frame["window_start"]
    lo, hi = starts.min(), starts.max()
    if not isinstance(lo, datetime) or not isinstance(hi, datetime):
        return 0.0
    span = ((hi - lo) + window).total_seconds() / 86_400.0
    active = starts.dt.date().n_unique() * max(window / timedelta(days=1), 1.0)
    return min(span, float(active))


def _empty_risk() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "rank": pl.UInt32,
            "entity": pl.String,
            "risk": pl.Float64,
            "risk_now": pl.Float64,
            "peak_window": pl.Datetime("us", "UTC"),
            "alerts": pl.Int64,
            "windows": pl.Int64,
            "evidence_windows": pl.Int64,
        }
    )

"""The NAB score: windowed, early-rewarding, cost-weighted, normalised between null and perfect.

Our own implementation of the method of Lavin & Ahmad (2015) and Ahmad et al. (2017), as
NAB v1.1 applies it:

* Each row of a series gets a *reward* for being flagged. Inside an anomaly window of width
  ``w`` (rows), the row ``i`` sits at relative position ``p = -(last - i + 1) / w`` in
  ``[-1, 0)``; its reward is ``tp_weight * σ(p) / σ(-1)``, with the scaled sigmoid
  ``σ(p) = 2 / (1 + exp(5 p)) - 1``, so a flag on the first row of a window earns exactly
  ``tp_weight`` and later flags earn less. Only the best (earliest) flag of a window counts;
  a window with no flag costs ``fn_weight``.
* A flag outside every window is a false positive costing ``fp_weight * σ(p)`` with
  ``p = (i - last) / (w - 1)`` measured from the end of the preceding window (a flag just after
  a window costs little, one far after it, ``p >= 3``, costs the full ``fp_weight``), or the full
  ``fp_weight`` if no window precedes it.
* The first 15 % of each series (at most 750 rows) is the probationary period: not scored.
* A detector gives raw anomaly scores; a row is flagged when its score is ``>= threshold``.
  One threshold per detector and profile, for all series, is chosen to maximise the summed raw
  score: we sweep every distinct score value in one pass over the sorted scores.
* ``score = 100 * (raw - null) / (perfect - null)`` where ``null`` is the raw score of flagging
  nothing (every scored window missed) and ``perfect`` is ``tp_weight`` times the number of
  windows (every window flagged on its first row, nothing else flagged).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from benchmarks.nab.corpus import (
    CostProfile,
    NabCorpus,
    NabSeries,
    load_official_scores,
    load_official_thresholds,
)

log = logging.getLogger(__name__)

PROBATION_FRACTION = 0.15
# NAB caps the probationary period at 15 % of 5000 rows.
PROBATION_CAP_ROWS = 5000
# Relative distance past a window beyond which a false positive costs the full fp weight.
_FAR_PAST_WINDOW = 3.0
NO_DETECTION = math.inf
"""The threshold that flags nothing (no finite score reaches it)."""


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's reward curve: ``2 / (1 + exp(5 x)) - 1``, and exactly ``-1`` from ``x >= 3`` on.

    Examples
    --------
    >>> scaled_sigmoid(np.array([-1.0, 0.0, 1.0, 3.0])).round(5).tolist()
    [0.98661, 0.0, -0.98661, -1.0]
    """
    position = np.asarray(position, dtype=np.float64)
    curve = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position >= _FAR_PAST_WINDOW, -1.0, curve)


_MAX_TP_REWARD = float(scaled_sigmoid(np.array(-1.0)))


def probation_rows(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Number of leading rows that are not scored: ``min(floor(f n), f 5000)``, rounded up.

    Examples
    --------
    >>> probation_rows(100), probation_rows(4032), probation_rows(22695)
    (15, 604, 750)
    """
    limit = min(math.floor(fraction * n_rows), fraction * PROBATION_CAP_ROWS)
    return math.ceil(limit)


@dataclass(frozen=True, eq=False)
class PointRewards:
    """What flagging each scored row of one series would earn under one profile.

    ``rows`` are the scored row indices (after probation); ``reward[k]`` is the weighted reward
    of flagging ``rows[k]``; ``window[k]`` is the index of the window holding it, or ``-1``.
    ``scored_windows`` counts the windows with at least one scored row.
    """

    rows: np.ndarray
    reward: np.ndarray
    window: np.ndarray
    scored_windows: int


def point_rewards(series: NabSeries, profile: CostProfile) -> PointRewards:
    """The reward of flagging each scored row of ``series`` under ``profile``.

    Examples
    --------
    >>> s = NabSeries.from_rows("toy.csv", 20, [(10, 14)])
    >>> r = point_rewards(s, CostProfile("p", 1.0, 0.11, 1.0))
    >>> int(r.rows[0]), float(r.reward[10 - 3]), float(r.reward[0])
    (3, 1.0, -0.11)
    """
    n_rows = series.n_rows
    rows = np.arange(probation_rows(n_rows), n_rows, dtype=np.int64)
    reward = np.empty(len(rows), dtype=np.float64)
    window = np.full(len(rows), -1, dtype=np.int64)
    if series.windows:
        firsts = np.array([first for first, _ in series.windows], dtype=np.int64)
        lasts = np.array([last for _, last in series.windows], dtype=np.int64)
    else:
        firsts = lasts = np.empty(0, dtype=np.int64)
    widths = (lasts - firsts + 1).astype(np.float64)

    # Index of the last window starting at or before each row: the row is inside it if it is
    # not past its end, otherwise that window is the one preceding the row.
    candidate = np.searchsorted(firsts, rows, side="right") - 1
    has_candidate = candidate >= 0
    safe = np.where(has_candidate, candidate, 0)
    inside = has_candidate & (rows <= lasts[safe] if len(lasts) else False)
    after = has_candidate & ~inside
    before_all = ~has_candidate

    window[inside] = candidate[inside]
    k = candidate[inside]
    position = -(lasts[k] - rows[inside] + 1) / widths[k]
    reward[inside] = scaled_sigmoid(position) * profile.tp_weight / _MAX_TP_REWARD

    k = candidate[after]
    # A one-row window has no width to scale by; any flag after it counts as far away.
    span = np.maximum(widths[k] - 1.0, 1.0)
    position = (rows[after] - lasts[k]) / span
    reward[after] = scaled_sigmoid(position) * profile.fp_weight
    reward[before_all] = -profile.fp_weight

    scored_windows = int(np.count_nonzero(lasts >= (rows[0] if len(rows) else n_rows)))
    return PointRewards(rows, reward, window, scored_windows)


@dataclass(frozen=True)
class SeriesScore:
    """The raw NAB score of one series at one threshold, with what made it.

    Examples
    --------
    >>> SeriesScore(raw=0.89, detected_windows=1, missed_windows=0, false_positives=1).raw
    0.89
    """

    raw: float
    detected_windows: int
    missed_windows: int
    false_positives: int


def _check_scores(name: str, series: NabSeries, scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (series.n_rows,):
        raise ValueError(f"{name}: {values.shape} scores for {series.n_rows} rows")
    if np.isnan(values).any():
        raise ValueError(f"{name}: anomaly scores contain NaN")
    return values


def score_series(
    series: NabSeries, scores: np.ndarray, profile: CostProfile, threshold: float
) -> SeriesScore:
    """Raw NAB score of one series when rows with ``score >= threshold`` are flagged.

    Examples
    --------
    >>> s = NabSeries.from_rows("toy.csv", 20, [(10, 14)])
    >>> flags = np.zeros(20)
    >>> flags[10] = 1.0
    >>> score_series(s, flags, CostProfile("p", 1.0, 0.11, 1.0), 0.5).raw
    1.0
    """
    values = _check_scores(series.name, series, scores)
    rewards = point_rewards(series, profile)
    flagged = values[rewards.rows] >= threshold
    outside = rewards.window < 0
    false_positives = flagged & outside
    raw = float(rewards.reward[false_positives].sum())
    detected = 0
    for w in np.unique(rewards.window[~outside]):
        hits = flagged & (rewards.window == w)
        if hits.any():
            raw += float(rewards.reward[hits].max())
            detected += 1
        else:
            raw -= profile.fn_weight
    return SeriesScore(
        raw=raw,
        detected_windows=detected,
        missed_windows=rewards.scored_windows - detected,
        false_positives=int(np.count_nonzero(false_positives)),
    )


@dataclass(frozen=True, eq=False)
class ThresholdCurve:
    """The corpus raw score at every distinct threshold, highest threshold first.

    ``thresholds[0]`` is :data:`NO_DETECTION` (nothing flagged); each following entry is a
    distinct anomaly score ``t`` and ``raw_scores`` the summed raw score when every scored row
    with ``score >= t`` is flagged.

    Examples
    --------
    >>> curve = ThresholdCurve(np.array([np.inf, 0.9, 0.2]), np.array([-1.0, 1.0, -3.0]))
    >>> curve.best()
    (0.9, 1.0)
    """

    thresholds: np.ndarray
    raw_scores: np.ndarray

    def best(self) -> tuple[float, float]:
        """The threshold with the highest raw score (the highest such threshold on ties)."""
        i = int(np.argmax(self.raw_scores))
        return float(self.thresholds[i]), float(self.raw_scores[i])


def threshold_curve(
    corpus: NabCorpus, scores: Mapping[str, np.ndarray], profile: CostProfile
) -> ThresholdCurve:
    """Sweep every distinct score of every series at once (one sort, one cumulative sum)."""
    all_scores: list[np.ndarray] = []
    all_rewards: list[np.ndarray] = []
    all_windows: list[np.ndarray] = []
    window_offset = 0
    scored_windows = 0
    for name, series in corpus.series.items():
        if name not in scores:
            raise KeyError(f"no anomaly scores for series {name!r}")
        values = _check_scores(name, series, scores[name])
        rewards = point_rewards(series, profile)
        all_scores.append(values[rewards.rows])
        all_rewards.append(rewards.reward)
        all_windows.append(np.where(rewards.window >= 0, rewards.window + window_offset, -1))
        window_offset += len(series.windows)
        scored_windows += rewards.scored_windows

    flat_scores = np.concatenate(all_scores) if all_scores else np.empty(0)
    order = np.argsort(-flat_scores, kind="stable")
    sorted_scores = flat_scores[order]
    reward = np.concatenate(all_rewards)[order] if all_rewards else np.empty(0)
    window = np.concatenate(all_windows)[order] if all_windows else np.empty(0, np.int64)

    # The change in total score as each row, in falling score order, becomes flagged: a false
    # positive adds its (negative) reward; a row in a window raises that window's contribution
    # from its best reward so far (initially the miss cost) to the new best, if it is better.
    delta = np.where(window < 0, reward, 0.0)
    in_window = np.flatnonzero(window >= 0)
    by_window = in_window[np.argsort(window[in_window], kind="stable")]
    bounds = np.flatnonzero(np.diff(window[by_window])) + 1
    for positions in np.split(by_window, bounds):
        if len(positions) == 0:
            continue
        best = np.maximum.accumulate(np.concatenate(([-profile.fn_weight], reward[positions])))
        delta[positions] = np.diff(best)

    null_raw = -profile.fn_weight * scored_windows
    totals = null_raw + np.cumsum(delta)
    # The score at threshold t counts every row with score >= t: the last row of each run of
    # equal scores.
    run_ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    if len(sorted_scores) == 0:
        run_ends = np.empty(0, dtype=np.int64)
    return ThresholdCurve(
        thresholds=np.concatenate(([NO_DETECTION], sorted_scores[run_ends])),
        raw_scores=np.concatenate(([null_raw], totals[run_ends])),
    )


def optimise_threshold(
    corpus: NabCorpus, scores: Mapping[str, np.ndarray], profile: CostProfile
) -> tuple[float, float]:
    """The one threshold for all series that maximises the summed raw score.

    Returns
    -------
    tuple[float, float]
        ``(threshold, raw_score)``; the threshold is :data:`NO_DETECTION` when flagging
        nothing is best.

    Examples
    --------
    >>> corpus = NabCorpus({"a.csv": NabSeries.from_rows("a.csv", 20, [(10, 14)])})
    >>> scores = np.zeros(20)
    >>> scores[[6, 10]] = [0.9, 0.7]
    >>> threshold, raw = optimise_threshold(corpus, {"a.csv": scores}, CostProfile("p", 1, 0.11, 1))
    >>> threshold, round(raw, 2)
    (0.7, 0.89)
    """
    return threshold_curve(corpus, scores, profile).best()


@dataclass(frozen=True)
class ProfileResult:
    """A detector's NAB result under one profile.

    ``score`` is normalised: 0 for the null detector, 100 for the perfect one.

    Examples
    --------
    >>> r = ProfileResult("standard", 0.5, raw=-1.0, null_raw=-4.0, perfect_raw=4.0)
    >>> r.score
    37.5
    """

    profile: str
    threshold: float
    raw: float
    null_raw: float
    perfect_raw: float
    per_series: Mapping[str, SeriesScore] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """``100 * (raw - null) / (perfect - null)``."""
        return normalise(self.raw, self.null_raw, self.perfect_raw)

    @property
    def detected_windows(self) -> int:
        """Windows flagged at least once (summed over series)."""
        return sum(s.detected_windows for s in self.per_series.values())

    @property
    def false_positives(self) -> int:
        """Flagged rows outside every window (summed over series)."""
        return sum(s.false_positives for s in self.per_series.values())


def normalise(raw: float, null_raw: float, perfect_raw: float) -> float:
    """``100 * (raw - null) / (perfect - null)``.

    Examples
    --------
    >>> normalise(0.0, -2.0, 2.0)
    50.0
    """
    if perfect_raw == null_raw:
        raise ValueError("perfect and null scores are equal: the corpus has no scored window")
    return 100.0 * (raw - null_raw) / (perfect_raw - null_raw)


def _profile(corpus: NabCorpus, profile: CostProfile | str) -> CostProfile:
    if isinstance(profile, CostProfile):
        return profile
    try:
        return corpus.profiles[profile]
    except KeyError:
        raise KeyError(f"unknown NAB profile {profile!r}; have {sorted(corpus.profiles)}") from None


def score_detector(
    corpus: NabCorpus,
    scores: Mapping[str, np.ndarray],
    profile: CostProfile | str,
    threshold: float | None = None,
) -> ProfileResult:
    """Score a detector's raw anomaly scores (series name -> one score per row).

    Parameters
    ----------
    corpus
        The series and their windows.
    scores
        One array per series of ``corpus``, as long as the series; higher = more anomalous.
    profile
        A :class:`CostProfile` or the name of one of ``corpus.profiles``.
    threshold
        Flag rows with ``score >= threshold``; ``None`` chooses the best one for the corpus.

    Examples
    --------
    >>> corpus = NabCorpus({"a.csv": NabSeries.from_rows("a.csv", 20, [(10, 14)])})
    >>> scores = np.zeros(20)
    >>> scores[10] = 1.0
    >>> r = score_detector(corpus, {"a.csv": scores}, "standard")
    >>> r.threshold, r.raw, r.null_raw, r.perfect_raw, r.score
    (1.0, 1.0, -1.0, 1.0, 100.0)
    """
    started = time.perf_counter()
    cost = _profile(corpus, profile)
    if threshold is None:
        threshold, _ = optimise_threshold(corpus, scores, cost)
    per_series = {
        name: score_series(series, scores[name], cost, threshold)
        for name, series in corpus.series.items()
    }
    scored_windows = sum(s.detected_windows + s.missed_windows for s in per_series.values())
    return ProfileResult(
        profile=cost.name,
        threshold=threshold,
        raw=math.fsum(s.raw for s in per_series.values()),
        null_raw=-cost.fn_weight * scored_windows,
        perfect_raw=cost.tp_weight * corpus.n_windows,
        per_series=per_series,
        seconds=time.perf_counter() - started,
    )


def score_all_profiles(
    corpus: NabCorpus,
    scores: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, ProfileResult]:
    """:func:`score_detector` under each of ``corpus.profiles``.

    ``thresholds`` (profile -> threshold) fixes the threshold of the profiles it names; the
    others get their optimised threshold.
    """
    fixed = thresholds or {}
    return {name: score_detector(corpus, scores, name, fixed.get(name)) for name in corpus.profiles}


def nab_scores(corpus: NabCorpus, raw_scores: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Normalised NAB score per profile, each at its own optimised threshold.

    Examples
    --------
    >>> corpus = NabCorpus({"a.csv": NabSeries.from_rows("a.csv", 200, [(150, 154)])})
    >>> scores = np.zeros(200)
    >>> nab_scores(corpus, {"a.csv": scores})["standard"]
    0.0
    >>> scores[150] = 1.0
    >>> nab_scores(corpus, {"a.csv": scores})["standard"]
    100.0
    """
    return {name: result.score for name, result in score_all_profiles(corpus, raw_scores).items()}


def score_official_results(
    corpus: NabCorpus, detector: str, official_thresholds: bool = False
) -> dict[str, ProfileResult]:
    """Score the published raw scores of ``detector`` (under ``official_results/``).

    By default each profile's threshold is our own optimum. With ``official_thresholds`` the
    thresholds NAB's optimiser stored in ``config/thresholds.json`` are used instead, which
    isolates the scoring rule from the threshold search when comparing with the scoreboard.
    """
    started = time.perf_counter()
    scores = load_official_scores(corpus, detector)
    loaded = time.perf_counter()
    thresholds = load_official_thresholds(corpus, detector) if official_thresholds else None
    results = score_all_profiles(corpus, scores, thresholds)
    log.info(
        "scored official %s: load %.2fs, score %.2fs",
        detector,
        loaded - started,
        time.perf_counter() - loaded,
    )
    return results


def series_category(name: str) -> str:
    """The NAB category of a series: the folder under ``data/`` that holds it.

    Examples
    --------
    >>> series_category("realKnownCause/nyc_taxi.csv")
    'realKnownCause'
    """
    return name.split("/", 1)[0] if "/" in name else ""


def category_scores(
    corpus: NabCorpus,
    scores: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float | None]]:
    """Normalised NAB score per category and profile: our scorer on that category's files.

    Parameters
    ----------
    corpus
        The scored series; their names' first folder is the category.
    scores
        Raw anomaly scores per series, as for :func:`score_detector`.
    thresholds
        Profile -> threshold: pass the corpus-wide thresholds of the run to score every
        category at the detector's one operating point; ``None`` optimises per category.

    Returns
    -------
    dict
        Category -> profile -> score; ``None`` for a category without anomaly windows
        (``artificialNoAnomaly``), whose normalised score is undefined.

    Examples
    --------
    >>> a = NabSeries.from_rows("catA/a.csv", 20, [(10, 14)])
    >>> b = NabSeries.from_rows("catB/b.csv", 20)
    >>> corpus = NabCorpus({"catA/a.csv": a, "catB/b.csv": b})
    >>> hit = np.zeros(20)
    >>> hit[10] = 1.0
    >>> category_scores(corpus, {"catA/a.csv": hit, "catB/b.csv": np.zeros(20)})["catA"]
    {'standard': 100.0, 'reward_low_FP_rate': 100.0, 'reward_low_FN_rate': 100.0}
    >>> category_scores(corpus, {"catA/a.csv": hit, "catB/b.csv": np.zeros(20)})["catB"]
    {'standard': None, 'reward_low_FP_rate': None, 'reward_low_FN_rate': None}
    """
    names_by_category: dict[str, list[str]] = {}
    for name in sorted(corpus.series):
        names_by_category.setdefault(series_category(name), []).append(name)
    fixed = thresholds or {}
    result: dict[str, dict[str, float | None]] = {}
    for category, names in names_by_category.items():
        subset = NabCorpus({n: corpus.series[n] for n in names}, corpus.profiles, corpus.root)
        if subset.n_windows == 0:
            result[category] = {profile: None for profile in corpus.profiles}
            continue
        result[category] = {
            profile: score_detector(subset, scores, profile, fixed.get(profile)).score
            for profile in corpus.profiles
        }
    return result

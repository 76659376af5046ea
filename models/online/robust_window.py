"""A per-series robust baseline over a sliding window: median and MAD of the last windows.

Each feature's recent values (the last ``window`` vectors learnt) sit in a fixed-size ring
buffer, so the median and the median absolute deviation are exact over that window,
deterministic, and forget old behaviour at a known pace. A value is scored by its robust
z-score ``(x - median) / max(1.4826 * MAD, min_scale)`` (on ``log1p`` of the value by default:
counts are heavy-tailed), and a vector by the root mean square of its ``top_k`` largest
positive z's, like the batch :class:`~models.batch.baselines.RobustBaselineDetector`.

Memory is ``window x n_features`` float32 per series (60 x 40 features: under 10 kB; a pickle
holds only the rows learnt), and the median and scale are recomputed once per ``learn_one`` so
that ``score_one`` only reads them. Many series learning at once (the daemon's scorer, one
series per entity) push their vectors with :meth:`RobustWindowDetector.push_array` and refresh
together with :func:`refresh_all`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.online._common import feature_items
from models.params import ParamsMixin

MAD_TO_SIGMA = 1.4826
"""Scales the median absolute deviation to a standard deviation under normality."""

Float32Array = NDArray[np.float32]
Float64Array = NDArray[np.float64]


class RobustWindowDetector(ParamsMixin):
    """Robust z-scores of each feature against the median and MAD of its last ``window`` values.

    Parameters
    ----------
    window : int
        Number of most recent vectors kept (the baseline's memory).
    min_history : int
        Vectors needed before anything scores above 0.
    top_k : int
        How many of the largest positive z's the score combines (root mean square).
    min_scale : float
        Floor on each feature's scale, so a feature that never moved still needs a real jump
        (and a first non-zero value scores large but finite).
    log1p : bool
        Compare ``log1p(max(x, 0))`` rather than ``x`` (counts and volumes are heavy-tailed).
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Attributes
    ----------
    features_ : list of str
        Feature names in column order (first seen first).
    columns_ : dict of str to int
        Column of each feature name.
    median_, scale_ : ndarray of shape (n_features,)
        Median and ``1.4826 * MAD`` of the kept values (unfloored), on the compared scale.
    n_learnt_ : int
        Vectors learnt so far (the buffer holds the last ``min(n_learnt_, window)``).
    stale_ : bool
        Vectors were pushed since ``median_`` and ``scale_`` were last computed.

    Examples
    --------
    >>> detector = RobustWindowDetector(window=10, min_history=3)
    >>> for n in (3.0, 4.0, 3.0, 5.0, 3.0):
    ...     detector.learn_one({"logons": n})
    >>> round(float(detector.typical()["logons"]), 3)
    3.0
    >>> detector.score_one({"logons": 3.0}), detector.score_one({"logons": 40.0}) > 5
    (0.0, True)
    """

    stale_: bool = False
    """Class default: a detector restored from before ``stale_`` existed is fresh."""

    def __init__(
        self,
        *,
        window: int = 60,
        min_history: int = 5,
        top_k: int = 2,
        min_scale: float = 0.1,
        log1p: bool = True,
        seed: int | None = 0,
    ) -> None:
        if window < 1 or min_history < 1 or top_k < 1:
            raise ValueError("window, min_history and top_k must be >= 1")
        self.window = window
        self.min_history = min_history
        self.top_k = top_k
        self.min_scale = min_scale
        self.log1p = log1p
        self.seed = seed
        self.features_: list[str] = []
        self.columns_: dict[str, int] = {}
        self.buffer_: Float32Array = np.zeros((window, 0), dtype=np.float32)
        self.median_: Float64Array = np.zeros(0)
        self.scale_: Float64Array = np.zeros(0)
        self.n_learnt_ = 0
        self.stale_ = False

    def __getstate__(self) -> dict[str, Any]:
        # A young entity's unused rows are zeros: leave them out of checkpoints.
        kept = min(self.n_learnt_, self.window)
        return {**self.__dict__, "buffer_": self.buffer_[:kept].copy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        missing = self.window - self.buffer_.shape[0]
        if missing > 0:
            self.buffer_ = np.pad(self.buffer_, ((0, missing), (0, 0)))

    # -- array interface (the daemon's scorer feeds whole vectors in a fixed column order) --

    def _compare(self, values: Float64Array) -> Float64Array:
        if not self.log1p:
            return values
        return np.log1p(np.maximum(values, 0.0))

    def history(self) -> Float32Array:
        """The kept vectors (rows, on the compared scale), in no particular order."""
        return self.buffer_[: min(self.n_learnt_, self.window)]

    def learn_array(self, row: Sequence[float] | Float64Array, names: Sequence[str]) -> None:
        """Learn one vector given as values aligned with ``names``."""
        self.push_array(row, names)
        self.refresh()

    def push_array(self, row: Sequence[float] | Float64Array, names: Sequence[str]) -> None:
        """Put one vector into the window without refreshing the median and scale yet.

        The baseline is refreshed by :meth:`refresh` (or :func:`refresh_all`, many detectors in
        one vectorised call) and, if that was not called, before anything reads it here.
        """
        if names is not self.features_ and list(names) != self.features_:
            missing = [name for name in dict.fromkeys(names) if name not in self.columns_]
            if missing:
                self._add_columns(missing)
            if len(names) != len(self.features_) or any(
                self.columns_[name] != j for j, name in enumerate(names)
            ):
                self._push(self._aligned(row, names))
                return
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (len(self.features_),):
            raise ValueError(f"{values.size} values for {len(self.features_)} features")
        self._push(np.where(np.isfinite(values), values, 0.0))

    def _aligned(self, row: Sequence[float] | Float64Array, names: Sequence[str]) -> Float64Array:
        values = np.zeros(len(self.features_))
        for name, value in zip(names, row, strict=True):
            number = float(value)
            values[self.columns_[name]] = number if math.isfinite(number) else 0.0
        return values

    def _push(self, values: Float64Array) -> None:
        self.buffer_[self.n_learnt_ % self.window] = self._compare(values)
        self.n_learnt_ += 1
        self.stale_ = True

    def refresh(self) -> None:
        """Recompute the median and scale over the kept vectors (after :meth:`push_array`)."""
        kept = self.history().astype(np.float64)
        median = np.median(kept, axis=0)
        scale = MAD_TO_SIGMA * np.median(np.abs(kept - median), axis=0)
        self._set_baseline(median, scale)

    def _set_baseline(self, median: Float64Array, scale: Float64Array) -> None:
        if self.median_.shape == median.shape and self.scale_.shape == scale.shape:
            # In place: the arrays may be views into a store shared by many series (the
            # daemon's scorer keeps every entity's median in one array).
            self.median_[...] = median
            self.scale_[...] = scale
        else:
            self.median_, self.scale_ = median.copy(), scale.copy()
        self.stale_ = False

    def _fresh(self) -> None:
        if self.stale_:
            self.refresh()

    def set_columns(self, names: Sequence[str]) -> None:
        """Give a detector that learnt nothing yet its columns (what its first push would).

        Examples
        --------
        >>> detector = RobustWindowDetector(window=4)
        >>> detector.set_columns(["logons", "usb"])
        >>> detector.buffer_.shape, detector.columns_["usb"]
        ((4, 2), 1)
        """
        if self.features_:
            raise ValueError("the detector has columns already")
        self.features_ = list(names)
        self.columns_ = {name: j for j, name in enumerate(self.features_)}
        self.buffer_ = np.zeros((self.window, len(self.features_)), dtype=np.float32)
        self.median_ = np.zeros(len(self.features_))
        self.scale_ = np.zeros(len(self.features_))

    def _add_columns(self, names: Sequence[str]) -> None:
        # A feature that appears late was 0 in every earlier vector.
        for name in names:
            self.columns_[name] = len(self.features_)
            self.features_.append(name)
        self.buffer_ = np.pad(self.buffer_, ((0, 0), (0, len(names))))
        self.median_ = np.append(self.median_, np.zeros(len(names)))
        self.scale_ = np.append(self.scale_, np.zeros(len(names)))

    def deviations(self, x: Mapping[str, float]) -> dict[str, float]:
        """Signed robust z of each known feature of ``x`` (all 0 before ``min_history``)."""
        features = feature_items(x)
        if self.n_learnt_ < self.min_history:
            return dict.fromkeys(self.features_, 0.0)
        self._fresh()
        values = np.array([features.get(name, 0.0) for name in self.features_])
        z = (self._compare(values) - self.median_) / np.maximum(self.scale_, self.min_scale)
        return dict(zip(self.features_, z.tolist(), strict=True))

    def typical(self) -> dict[str, float]:
        """Each feature's median, back on the scale of the values given."""
        self._fresh()
        median = np.expm1(self.median_) if self.log1p else self.median_
        return dict(zip(self.features_, median.tolist(), strict=True))

    # -- the OnlineDetector contract ------------------------------------------------------

    def score_one(self, x: Mapping[str, float]) -> float:
        """RMS of the ``top_k`` largest positive z's (0 before ``min_history``)."""
        z = [v for v in self.deviations(x).values() if v > 0.0]
        if not z:
            return 0.0
        # Negative z's count as 0 among the top k, as in the batch detector's RMS.
        k = min(self.top_k, len(self.features_))
        largest = sorted(z)[-k:]
        return float(math.sqrt(sum(v * v for v in largest) / k))

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Push the vector into the window (reserved keys dropped) and refresh the baseline."""
        features = feature_items(x)
        if not features and not self.features_:
            return
        names = list(dict.fromkeys([*self.features_, *features]))
        self.learn_array([features.get(name, 0.0) for name in names], names)


def refresh_all(detectors: Sequence[RobustWindowDetector]) -> None:
    """Refresh every stale detector's median and scale, one vectorised call per history shape.

    The same numbers as :meth:`RobustWindowDetector.refresh` on each (a median over one axis
    of a stack is the median of each slice), at a fraction of the per-call overhead when
    thousands of entities learn a window at once.

    Examples
    --------
    >>> detectors = [RobustWindowDetector(window=3, log1p=False) for _ in range(2)]
    >>> for detector, values in zip(detectors, ([1.0, 2.0, 9.0], [4.0, 4.0, 5.0])):
    ...     for value in values:
    ...         detector.push_array([value], ["x"])
    >>> refresh_all(detectors)
    >>> [float(d.median_[0]) for d in detectors], [d.stale_ for d in detectors]
    ([2.0, 4.0], [False, False])
    """
    groups: dict[tuple[int, int], dict[int, RobustWindowDetector]] = {}
    for detector in detectors:
        if detector.stale_:
            shape = (min(detector.n_learnt_, detector.window), len(detector.features_))
            # Keyed by identity: a series that learnt twice since is refreshed once.
            groups.setdefault(shape, {})[id(detector)] = detector
    for group in groups.values():
        members = list(group.values())
        if len(members) == 1:
            members[0].refresh()
            continue
        median, scale = _median_and_scale(np.stack([d.history() for d in members]))
        for detector, m, sc in zip(members, median, scale, strict=True):
            # Written into the detector's own arrays (or copied), never views of the stack:
            # a view would keep the whole stack alive (pinned by any one member).
            detector._set_baseline(m, sc)


def _median_and_scale(kept: Float32Array) -> tuple[Float64Array, Float64Array]:
    """Median and ``1.4826 * MAD`` over axis 1 of a stack of histories (float32 values).

    The numbers of ``np.median`` on the float64 values, sooner: the float32 values sort in
    the same order, so one sort in float32 (each series contiguous) gives the middle values;
    and the absolute deviations from the median are two sorted runs (below it, read
    backwards, and above it), so their middle is found by a binary search over how many of
    the smallest come from each run (a few look-ups per series, no second sort).

    Examples
    --------
    >>> kept = np.array([[[1.0], [9.0], [2.0], [4.0]]], dtype=np.float32)
    >>> median, scale = _median_and_scale(kept)
    >>> float(median[0, 0]), float(scale[0, 0]) == MAD_TO_SIGMA * 1.5
    (3.0, True)
    """
    count, length, width = kept.shape
    series = np.ascontiguousarray(np.swapaxes(kept, 1, 2)).reshape(count * width, length)
    series.sort(axis=1)
    median, mad = median_and_mad_of_sorted(series)
    return median.reshape(count, width), (MAD_TO_SIGMA * mad).reshape(count, width)


def median_and_mad_of_sorted(ordered: Float32Array) -> tuple[Float64Array, Float64Array]:
    """Median and MAD (unscaled) of each row of ``ordered`` (rows sorted ascending).

    Examples
    --------
    >>> ordered = np.array([[1.0, 2.0, 4.0, 9.0], [0.0, 0.0, 5.0, 6.0]], dtype=np.float32)
    >>> median, mad = median_and_mad_of_sorted(ordered)
    >>> median.tolist(), mad.tolist()
    ([3.0, 2.5], [1.5, 2.5])
    """
    rows, length = ordered.shape
    half = length // 2
    if length % 2:
        median = ordered[:, half].astype(np.float64)
    else:
        median = (ordered[:, half - 1].astype(np.float64) + ordered[:, half]) / 2.0
    # Deviations: below[j] = median - ordered[half - 1 - j] (j < half) and
    # above[j] = ordered[half + j] - median (j < length - half), each ascending in j, and
    # exactly np.abs(ordered - median) in float64 (rounding is symmetric in sign).
    below_size, above_size = half, length - half
    rank = (length - 1) // 2  # the (lower) middle of the sorted deviations, 0-based
    taken = rank + 1
    flat = np.ascontiguousarray(ordered).ravel()
    # Look-ups by flat position (np.take, clipped at the ends: a probe out of a row's range
    # reads another row's value and is masked out): much cheaper than two-axis fancy indexing.
    # The float32 values widen exactly in the subtraction.
    first_below = np.arange(rows, dtype=np.intp) * length + (half - 1)
    first_above = first_below + 1

    def below(j: NDArray[np.intp]) -> Float64Array:
        return np.asarray(median - flat.take(first_below - j, mode="clip"), dtype=np.float64)

    def above(j: NDArray[np.intp]) -> Float64Array:
        return np.asarray(flat.take(first_above + j, mode="clip") - median, dtype=np.float64)

    # The smallest count `low` taken from `below` (the rest, taken - low, from `above`) such
    # that the last one taken from `above` is no larger than the next one of `below`: the
    # first count in [first, last_count] that passes (every count past it passes too;
    # `last_count` always does). Found by steps of halving powers of two, the same for every
    # row: each step moves a row past the counts it proves fail, so no row needs bounds.
    first, last_count = max(0, taken - above_size), min(taken, below_size)
    low = np.full(rows, first, dtype=np.intp)
    span = last_count - first
    step = 1 << (span.bit_length() - 1) if span > 0 else 0
    while step:
        probe = low + (step - 1)
        # A probe before `last_count` takes at least one from each run: no bounds to test.
        fails = ~(above(taken - 1 - probe) <= below(probe))
        fails &= probe < last_count
        low += step * fails
        step >>= 1
    from_above = taken - low
    last = np.maximum(
        np.where(low > 0, below(low - 1), -np.inf),
        np.where(from_above > 0, above(from_above - 1), -np.inf),
    )
    if length % 2:
        return median, last
    following = np.minimum(
        np.where(low < below_size, below(low), np.inf),
        np.where(from_above < above_size, above(from_above), np.inf),
    )
    return median, (last + following) / 2.0


def median_and_scale_of_series(
    series: Float32Array, ids: NDArray[np.intp], kept: NDArray[np.intp]
) -> tuple[Float64Array, Float64Array, NDArray[np.intp]]:
    """Median, ``1.4826 * MAD`` and median ties of many series of ring buffers at once.

    ``series`` holds one series per row (float32, slots contiguous); series ``ids[i]``'s
    history is its first ``kept[i]`` slots (slots fill in order; at least one). The numbers of
    :meth:`RobustWindowDetector.refresh` on each: one float32 sort per history length, then
    the median and MAD of each sorted row (a constant one, such as a feature an entity never
    used, has its value and a MAD of 0). Ties: for a series whose MAD is 0, how many of its
    kept values equal its median (more than half of them, as a MAD of 0 means); 0 for the
    others. A caller can tell from it whether a new value leaves the median and MAD as they
    are (the median still holds more than half of the slots).

    Examples
    --------
    >>> series = np.array([[5.0, 1.0, 2.0], [3.0, 3.0, 0.0]], dtype=np.float32)
    >>> median, scale, ties = median_and_scale_of_series(
    ...     series, np.array([0, 1]), np.array([3, 2]))
    >>> median.tolist(), (scale / MAD_TO_SIGMA).tolist(), ties.tolist()
    ([2.0, 3.0], [1.0, 0.0], [0, 2])
    """
    median = np.zeros(len(ids))
    scale = np.zeros(len(ids))
    ties = np.zeros(len(ids), dtype=np.intp)
    for length in np.flatnonzero(np.bincount(kept)).tolist():
        members = np.flatnonzero(kept == length)
        ordered = series[ids[members], :length]
        ordered.sort(axis=1)
        # A constant row comes out of the general case with its value and a MAD of 0 (the
        # deviations are all 0): no subset is copied to leave the constant rows out.
        series_median, series_mad = median_and_mad_of_sorted(ordered)
        median[members] = series_median
        scale[members] = MAD_TO_SIGMA * series_mad
        flat = np.flatnonzero(series_mad == 0.0)
        if flat.size:
            ties[members[flat]] = (ordered[flat] == series_median[flat, None]).sum(axis=1)
    return median, scale, ties

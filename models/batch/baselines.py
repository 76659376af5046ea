"""Robust z-score baselines: each row compared with what is typical for its entity or its peers.

Both detectors score a row by per-feature robust z-scores

    z_j = (x_j - median_j) / scale_j,   scale_j = max(1.4826 * MAD_j, floor_j)

against a baseline (median and scale vectors) picked for the row, then combine them into one
number: the root mean square of the ``top_k`` largest positive z's (or largest |z| when
``two_sided``). The RMS of a few top z's lets both one huge deviation and several moderate
ones score, while a single noisy feature among many cannot dominate by count.

The floor matters because features are mostly zeros: a user who never used USB has MAD 0 on
that column, and the first USB copy must give a large but finite z, not a division by zero.
``floor_j = max(alpha * spread_j, min_scale)`` where ``spread_j`` is the population's robust
scale of feature j over all training rows (1.4826 * MAD), or its standard deviation when that
MAD is 0 (the usual case for a sparse column).

Fallback order for a row's baseline: its entity (if fitted on at least ``min_rows`` rows),
then its peer group (the ``groups`` context, or the group the entity had in training), then the
whole population. An entity first seen after training (a new hire) is compared with its peers
only until it has a history of its own: given the rows' ``times`` context, a row of an entity
without a fitted baseline that has at least ``min_rows`` earlier rows in the same batch is
compared with those earlier rows (causally: never with later ones), as a fitted entity is.

With ``combine="tail"`` the per-feature deviations become surprises (nines of rarity) and a
row scores the sum of its ``top_k`` largest; given the ``feature_groups`` context (an integer
behaviour id per feature column), features measuring one behaviour count once, by their
largest surprise (:func:`models.combine.top_k_group_sum`). The RMS combination ignores it.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray
from models.batch._common import LabelArray, as_labels, as_matrix, require_fitted
from models.combine import top_k_group_sum
from models.params import ParamsMixin

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]

MAD_TO_SIGMA = 1.4826
"""Scales the median absolute deviation to a standard deviation under normality."""

EXACT_HISTORY = 64
"""Earlier windows up to which a newcomer's own baseline is refitted at every window."""

# Where a row's baseline came from: its group or the population, its entity's fitted
# baseline, or its entity's earlier rows in the batch (an entity first seen after training).
_COLD, _FITTED, _EARLIER_ROWS = 0, 1, 2


def robust_location_scale(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Column medians and 1.4826 * MAD of ``rows`` (shape (n_rows, n_features)).

    Examples
    --------
    >>> import numpy as np
    >>> median, scale = robust_location_scale(np.array([[0.0], [0.0], [1.0], [0.0], [0.0]]))
    >>> median.tolist(), scale.tolist()
    ([0.0], [0.0])
    """
    median = np.median(rows, axis=0)
    mad = np.median(np.abs(rows - median), axis=0)
    scale: FloatArray = MAD_TO_SIGMA * mad
    return median, scale


def top_k_rms(deviations: FloatArray, top_k: int, *, two_sided: bool) -> FloatArray:
    """Combine a z matrix into one score per row: RMS of the ``top_k`` largest deviations.

    One-sided keeps only positive z (negative ones count as 0); two-sided uses |z|.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[4.0, -9.0, 0.0], [3.0, 3.0, 3.0]])
    >>> top_k_rms(z, 2, two_sided=False).round(4).tolist()
    [2.8284, 3.0]
    >>> top_k_rms(z, 1, two_sided=True).tolist()
    [9.0, 3.0]
    """
    magnitude = np.abs(deviations) if two_sided else np.maximum(deviations, 0.0)
    k = max(1, min(top_k, magnitude.shape[1]))
    largest = np.sort(magnitude, axis=1)[:, -k:]
    scores: FloatArray = np.sqrt(np.mean(largest**2, axis=1))
    return scores


def _lookup(labels: LabelArray, index: dict[str, int]) -> IntArray:
    """Map each label to its row in a fitted table, -1 where the label was not fitted."""
    unique, inverse = np.unique(labels, return_inverse=True)
    codes = np.array([index.get(str(label), -1) for label in unique], dtype=np.int64)
    found: IntArray = codes[inverse.reshape(-1)]
    return found


def as_times(values: Any, n_rows: int) -> NDArray[Any] | None:
    """Return the ``times`` context (any sortable values, one per row) as a 1-D array.

    Examples
    --------
    >>> as_times([3, 1], 2).tolist()
    [3, 1]
    >>> as_times(None, 2) is None
    True
    """
    if values is None:
        return None
    times = np.asarray(values)
    if times.shape != (n_rows,):
        raise ValueError(f"times must be 1-D with one value per row ({n_rows}), got {times.shape}")
    return times


def history_prefix(n_earlier: int, min_rows: int) -> int:
    """How many of a newcomer's ``n_earlier`` earlier windows its own baseline is fitted on.

    All of them up to :data:`EXACT_HISTORY` (a daily scan's newcomer, in practice); beyond,
    the largest checkpoint at most ``n_earlier``, checkpoints growing by an eighth
    (``ceil(9 c / 8)``), so an hourly newcomer's thousands of windows cost a few dozen
    medians rather than one per window. 0 below ``min_rows``: no baseline of its own yet.

    Examples
    --------
    >>> [history_prefix(n, 5) for n in (4, 5, 6, 64, 65, 72, 80, 81, 100)]
    [0, 5, 6, 64, 64, 72, 72, 81, 92]
    """
    if n_earlier < min_rows:
        return 0
    if n_earlier <= EXACT_HISTORY:
        return n_earlier
    prefix = max(min_rows, EXACT_HISTORY)
    while (following := max(prefix + 1, -(-9 * prefix // 8))) <= n_earlier:
        prefix = following
    return prefix


def _segments(labels: LabelArray) -> list[tuple[str, NDArray[np.intp]]]:
    """Row indices of each distinct label, labels in sorted order."""
    unique, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.cumsum(np.bincount(inverse.reshape(-1), minlength=unique.size))[:-1]
    return [(str(label), rows) for label, rows in zip(unique, np.split(order, bounds), strict=True)]


class _ZScoreBaseline(ParamsMixin):
    """Population and group baselines plus the z-score scoring shared by both detectors."""

    n_features_in_: int
    population_median_: FloatArray
    population_scale_: FloatArray
    floor_: FloatArray
    group_index_: dict[str, int]
    group_medians_: FloatArray
    group_scales_: FloatArray
    entity_group_: dict[str, str]

    alpha: float
    min_scale: float
    min_rows: int
    top_k: int
    two_sided: bool
    combine: str
    tail_reference_: FloatArray | None = None
    cold_reference_: FloatArray | None = None

    def _fit_tails(self, matrix: FloatArray, entities: Any, groups: Any) -> None:
        """Keep each feature's sorted training deviations, for ``combine="tail"``."""
        if self.combine == "rms":
            self.tail_reference_ = None
            return
        if self.combine != "tail":
            raise ValueError(f"combine must be 'rms' or 'tail', got {self.combine!r}")
        z = self.deviations(matrix, entities, groups)
        magnitude = np.abs(z) if self.two_sided else np.maximum(z, 0.0)
        self.tail_reference_ = np.sort(magnitude, axis=0)

    def _tail_surprise(self, z: FloatArray, reference: FloatArray | None = None) -> FloatArray:
        """Per feature, ``-log10`` of the share of training rows deviating at least as much.

        A deviation that many entities show on ordinary days (one USB connect by a user who
        rarely uses USB) earns little; one that no training window ever showed earns at least
        what the training size can resolve, ``log10(n + 1)``. Beyond the largest training
        deviation the tail is extrapolated exponentially (the slope of surprise against z
        between the feature's 99th-percentile and largest training deviation), capped at twice
        the resolvable surprise, so 60 recipients against a usual 4 outweighs 8. A feature on
        which no training window ever rose above typical earns that maximum at once. Rows at
        or below typical earn 0.
        """
        if reference is None:
            assert self.tail_reference_ is not None
            reference = self.tail_reference_
        n = reference.shape[0]
        cap = math.log10(n + 1.0)
        magnitude = np.abs(z) if self.two_sided else np.maximum(z, 0.0)
        surprise = np.zeros_like(magnitude)
        q99_row = min(n - 1, max(0, math.ceil(0.99 * n) - 1))
        for j in range(magnitude.shape[1]):
            column = reference[:, j]
            at_least = n - np.searchsorted(column, magnitude[:, j], side="left")
            surprise[:, j] = -np.log10((at_least + 1.0) / (n + 1.0))
            top, q99 = float(column[-1]), float(column[q99_row])
            beyond = magnitude[:, j] > top
            if top <= 0.0:
                # No training window ever rose above typical on this feature (the first
                # hacking tool, the first beacon): the most novel thing there is.
                surprise[beyond, j] = 2.0 * cap
            elif cap > 2.0 and top > q99 and beyond.any():
                slope = (cap - 2.0) / (top - q99)
                extra = (magnitude[beyond, j] - top) * slope
                surprise[beyond, j] = np.minimum(cap + extra, 2.0 * cap)
        surprise[magnitude <= 0.0] = 0.0
        return surprise

    def _fit_population(self, matrix: FloatArray) -> None:
        median, robust_scale = robust_location_scale(matrix)
        spread = np.where(robust_scale > 0.0, robust_scale, matrix.std(axis=0))
        self.floor_ = np.maximum(self.alpha * spread, self.min_scale)
        self.population_median_ = median
        self.population_scale_ = np.maximum(spread, self.floor_)
        self.n_features_in_ = matrix.shape[1]

    def _fit_table(
        self, matrix: FloatArray, labels: LabelArray
    ) -> tuple[dict[str, int], FloatArray, FloatArray]:
        """Median/scale per label with at least ``min_rows`` rows; thinner labels are left out."""
        names: list[str] = []
        medians: list[FloatArray] = []
        scales: list[FloatArray] = []
        for label, rows in _segments(labels):
            if rows.size < self.min_rows:
                continue
            median, robust_scale = robust_location_scale(matrix[rows])
            names.append(label)
            medians.append(median)
            scales.append(np.maximum(robust_scale, self.floor_))
        width = matrix.shape[1]
        return (
            {name: position for position, name in enumerate(names)},
            np.array(medians, dtype=np.float64).reshape(len(names), width),
            np.array(scales, dtype=np.float64).reshape(len(names), width),
        )

    def _fit_groups(
        self, matrix: FloatArray, groups: LabelArray | None, entities: LabelArray | None
    ) -> None:
        if groups is None:
            self.group_index_ = {}
            self.group_medians_ = np.empty((0, matrix.shape[1]))
            self.group_scales_ = np.empty((0, matrix.shape[1]))
            self.entity_group_ = {}
            return
        self.group_index_, self.group_medians_, self.group_scales_ = self._fit_table(matrix, groups)
        self.entity_group_ = {}
        if entities is not None:
            for entity, rows in _segments(entities):
                # An entity listed in several groups keeps its most frequent one.
                names, counts = np.unique(groups[rows], return_counts=True)
                self.entity_group_[entity] = str(names[int(np.argmax(counts))])

    def _group_baseline(
        self,
        n_rows: int,
        groups: LabelArray | None,
        entities: LabelArray | None,
    ) -> tuple[FloatArray, FloatArray]:
        """Group baseline of each row where one is known, else the population's."""
        median = np.tile(self.population_median_, (n_rows, 1))
        scale = np.tile(self.population_scale_, (n_rows, 1))
        if groups is None and entities is not None and self.entity_group_:
            unique, inverse = np.unique(entities, return_inverse=True)
            mapped = np.array([self.entity_group_.get(str(e), "") for e in unique], dtype=np.str_)
            groups = mapped[inverse.reshape(-1)]
        if groups is not None and self.group_index_:
            codes = _lookup(groups, self.group_index_)
            known = codes >= 0
            median[known] = self.group_medians_[codes[known]]
            scale[known] = self.group_scales_[codes[known]]
        return median, scale

    def _baseline(
        self,
        matrix: FloatArray,
        entities: LabelArray | None,
        groups: LabelArray | None,
        times: NDArray[Any] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError

    def deviations(
        self, X: FloatArray, entities: Any = None, groups: Any = None, times: Any = None
    ) -> FloatArray:
        """Signed robust z-score of every feature of every row against the row's baseline.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to compare.
        entities, groups : array of str, optional
            Entity and peer group of each row.
        times : array, optional
            When each row's window starts (any sortable values); lets an entity without a
            fitted baseline be compared with its own earlier rows (see the module doc).

        Returns
        -------
        ndarray of shape (n_rows, n_features)
            ``(x - median) / scale``; positive = above typical.
        """
        require_fitted(self, "population_median_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        entity_labels = as_labels(entities, matrix.shape[0], "entities")
        group_labels = as_labels(groups, matrix.shape[0], "groups")
        row_times = as_times(times, matrix.shape[0])
        median, scale = self._baseline(matrix, entity_labels, group_labels, row_times)
        z: FloatArray = (matrix - median) / scale
        return z

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Score rows: RMS of the ``top_k`` largest (positive, unless two-sided) z-scores, or
        with ``combine="tail"`` the sum of the ``top_k`` largest behaviour surprises.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to score.
        **context
            ``entities``, ``groups`` (arrays of str aligned with the rows), ``times`` (when
            each row's window starts) and ``feature_groups`` (a behaviour id per feature
            column, for ``combine="tail"``: see :func:`models.combine.top_k_group_sum`), all
            optional.

        Returns
        -------
        ndarray of shape (n_rows,)
            float64 scores, >= 0; higher = more anomalous.
        """
        z = self.deviations(X, context.get("entities"), context.get("groups"), context.get("times"))
        if self.tail_reference_ is None:
            return top_k_rms(z, self.top_k, two_sided=self.two_sided)
        surprise = self._tail_surprise(z)
        return top_k_group_sum(surprise, self.top_k, context.get("feature_groups"))

    def typical(self, entity: str, group: str | None = None) -> tuple[FloatArray, FloatArray]:
        """The (median vector, scale vector) a row of ``entity`` is compared with.

        Parameters
        ----------
        entity : str
            Entity name; an unknown one gets its group's or the population's baseline.
        group : str, optional
            Its peer group, used when the entity has no baseline of its own.
        """
        require_fitted(self, "population_median_")
        row = np.zeros((1, self.n_features_in_))
        groups = None if group is None else np.array([group], dtype=np.str_)
        median, scale = self._baseline(row, np.array([entity], dtype=np.str_), groups)
        return median[0].copy(), scale[0].copy()


class RobustBaselineDetector(_ZScoreBaseline):
    """Per-entity robust baseline: each row against its own entity's median and MAD.

    See the module documentation for the z-score, the floor and the fallback order.

    Parameters
    ----------
    alpha : float
        Floor of a feature's scale as a fraction of the population's spread of that feature.
    min_scale : float
        Absolute minimum scale (on the log1p scale of the features).
    min_rows : int
        Training rows an entity needs for its own baseline; fewer -> group/population.
    top_k : int
        How many of the largest z's the score averages (RMS).
    two_sided : bool
        Score drops below typical too (default: only rises count).
    seed : int | None
        Accepted for a uniform interface; the detector is deterministic.

    Attributes
    ----------
    entity_index_ : dict[str, int]
        Row of each fitted entity in ``medians_``/``scales_``.
    medians_, scales_ : ndarray of shape (n_entities, n_features)
        Each entity's median and (floored) robust scale.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.0], [1.0], [0.0], [0.0]])
    >>> detector = RobustBaselineDetector().fit(X, entities=["alice"] * 5)
    >>> detector.typical("alice")  # floor = max(0.5 * std 0.4, 0.1) = 0.2
    (array([0.]), array([0.2]))
    >>> scores = detector.decision_function(np.array([[5.0], [0.0]]), entities=["alice"] * 2)
    >>> scores.round(6).tolist()  # z = (5 - 0) / 0.2
    [25.0, 0.0]
    """

    entity_index_: dict[str, int]
    medians_: FloatArray
    scales_: FloatArray

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        min_scale: float = 0.1,
        min_rows: int = 5,
        top_k: int = 3,
        two_sided: bool = False,
        combine: str = "rms",
        seed: int | None = 0,
    ) -> None:
        self.alpha = alpha
        self.min_scale = min_scale
        self.min_rows = min_rows
        self.top_k = top_k
        self.two_sided = two_sided
        self.combine = combine
        self.seed = seed

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit population, group (if ``groups``) and per-entity baselines.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Training rows.
        **context
            ``entities`` (needed for per-entity baselines; without it every row is compared
            with the population) and optionally ``groups``.

        Returns
        -------
        Self
            The fitted detector.
        """
        matrix = as_matrix(X)
        entities = as_labels(context.get("entities"), matrix.shape[0], "entities")
        groups = as_labels(context.get("groups"), matrix.shape[0], "groups")
        self._fit_population(matrix)
        self._fit_groups(matrix, groups, entities)
        if entities is None:
            logger.warning("robust baseline fitted without entities: population baseline only")
            self.entity_index_ = {}
            self.medians_ = np.empty((0, matrix.shape[1]))
            self.scales_ = np.empty((0, matrix.shape[1]))
        else:
            self.entity_index_, self.medians_, self.scales_ = self._fit_table(matrix, entities)
        self._fit_tails(matrix, entities, groups)
        self._fit_cold_tails(matrix, entities, groups)
        return self

    def _fit_cold_tails(self, matrix: FloatArray, entities: Any, groups: Any) -> None:
        """Training deviations from the group (or population) baseline, for cold entities.

        An entity without a baseline of its own is compared with its peer group's, and a
        row deviates more from a group than from its own history: judged against the tail of
        own-history deviations, a new hire's ordinary days would all look surprising. So its
        deviations are weighed against how far training rows deviate from their group.
        """
        if self.tail_reference_ is None:
            self.cold_reference_ = None
            return
        median, scale = self._group_baseline(matrix.shape[0], groups, entities)
        z = (matrix - median) / scale
        magnitude = np.abs(z) if self.two_sided else np.maximum(z, 0.0)
        self.cold_reference_ = np.sort(magnitude, axis=0)

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Score rows, as the base class does; cold entities' rows use the cold reference.

        With ``combine="tail"``, rows of entities without a baseline of their own are weighed
        against the training rows' deviations from their groups (see ``_fit_cold_tails``); a
        row compared with its entity's own earlier rows (``times`` given, see the module doc)
        is weighed as a fitted entity's row is.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to score.
        **context
            ``entities``, ``groups`` (arrays of str aligned with the rows), ``times`` (when
            each row's window starts) and ``feature_groups`` (a behaviour id per feature
            column), all optional.

        Returns
        -------
        ndarray of shape (n_rows,)
            float64 scores, >= 0; higher = more anomalous.
        """
        cold_reference = self.cold_reference_
        if self.tail_reference_ is None or cold_reference is None:
            return super().decision_function(X, **context)
        require_fitted(self, "population_median_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        labels = as_labels(context.get("entities"), matrix.shape[0], "entities")
        groups = as_labels(context.get("groups"), matrix.shape[0], "groups")
        times = as_times(context.get("times"), matrix.shape[0])
        median, scale, basis = self._baselines(matrix, labels, groups, times)
        z: FloatArray = (matrix - median) / scale
        surprise = self._tail_surprise(z)
        cold = basis == _COLD
        if cold.any():
            surprise[cold] = self._tail_surprise(z[cold], cold_reference)
        return top_k_group_sum(surprise, self.top_k, context.get("feature_groups"))

    def _baseline(
        self,
        matrix: FloatArray,
        entities: LabelArray | None,
        groups: LabelArray | None,
        times: NDArray[Any] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        median, scale, _ = self._baselines(matrix, entities, groups, times)
        return median, scale

    def _baselines(
        self,
        matrix: FloatArray,
        entities: LabelArray | None,
        groups: LabelArray | None,
        times: NDArray[Any] | None,
    ) -> tuple[FloatArray, FloatArray, NDArray[np.int8]]:
        """Median and scale of each row's baseline, and where it came from (``_COLD`` ...)."""
        median, scale = self._group_baseline(matrix.shape[0], groups, entities)
        basis = np.full(matrix.shape[0], _COLD, dtype=np.int8)
        if entities is None:
            return median, scale, basis
        codes = _lookup(entities, self.entity_index_)
        known = codes >= 0
        median[known] = self.medians_[codes[known]]
        scale[known] = self.scales_[codes[known]]
        basis[known] = _FITTED
        if times is not None and not known.all():
            rows, own_median, own_scale = self._earlier_rows_baselines(
                matrix, entities, times, np.flatnonzero(~known)
            )
            median[rows] = own_median
            scale[rows] = own_scale
            basis[rows] = _EARLIER_ROWS
        return median, scale, basis

    def _earlier_rows_baselines(
        self,
        matrix: FloatArray,
        entities: LabelArray,
        times: NDArray[Any],
        cold_rows: NDArray[np.intp],
    ) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
        """Baselines of cold rows from their entity's own strictly earlier rows in the batch.

        Only rows with at least ``min_rows`` earlier rows get one, fitted on the first
        :func:`history_prefix` of them; scales are floored as a fitted entity's are.
        """
        found: list[int] = []
        medians: list[FloatArray] = []
        scales: list[FloatArray] = []
        for _, segment in _segments(entities[cold_rows]):
            if segment.size <= self.min_rows:
                continue
            rows = cold_rows[segment]
            rows = rows[np.argsort(times[rows], kind="stable")]
            ordered = times[rows]
            # Rows of the same time are not each other's history.
            n_earlier = np.searchsorted(ordered, ordered, side="left")
            fitted: dict[int, tuple[FloatArray, FloatArray]] = {}
            for position in np.flatnonzero(n_earlier >= self.min_rows):
                prefix = history_prefix(int(n_earlier[position]), self.min_rows)
                if prefix not in fitted:
                    median, robust_scale = robust_location_scale(matrix[rows[:prefix]])
                    fitted[prefix] = (median, np.maximum(robust_scale, self.floor_))
                found.append(int(rows[position]))
                medians.append(fitted[prefix][0])
                scales.append(fitted[prefix][1])
        width = matrix.shape[1]
        return (
            np.array(found, dtype=np.intp),
            np.array(medians, dtype=np.float64).reshape(len(found), width),
            np.array(scales, dtype=np.float64).reshape(len(found), width),
        )


class TailBaselineDetector(RobustBaselineDetector):
    """Per-entity baseline whose deviations are weighed by how rare they are in the population.

    The default detector of the scan. Each feature's deviation from the entity's own history
    (the robust z of :class:`RobustBaselineDetector`) becomes a surprise: ``-log10`` of the
    share of training windows that deviated at least as much on that feature. A row scores the
    sum of its ``top_k`` largest surprises. So a deviation that many users show on ordinary
    days (a first USB connect by someone who rarely uses USB) weighs little, and one that no
    training window ever showed (a beacon's regularity, a keylogger on disk) weighs the most.
    Given the ``feature_groups`` context (a behaviour id per feature column), the row sums its
    ``top_k`` largest behaviour surprises instead, each its features' largest: one act seen in
    three correlated features counts once (:mod:`models.combine`).
    A row of an entity without its own baseline (a new hire) is compared with its peer group,
    and its deviations are weighed against how far training rows deviate from their groups, so
    a cold start is not surprising merely for being measured against a wider baseline. Once
    it has ``min_rows`` earlier rows in the scored batch (``times`` context given), its own
    earlier rows are its baseline, as a fitted entity's training rows are.

    Parameters are those of :class:`RobustBaselineDetector`, with ``combine="tail"`` and
    ``top_k=2`` by default.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.poisson(3, 400), np.zeros(400)]).astype(float)
    >>> entities = np.repeat(["a", "b", "c", "d"], 100)
    >>> detector = TailBaselineDetector().fit(np.log1p(X), entities=entities)
    >>> rows = np.log1p(np.array([[3.0, 0.0], [3.0, 5.0]]))
    >>> ordinary, novel = detector.decision_function(rows, entities=np.array(["a", "a"]))
    >>> float(ordinary), bool(novel > 5.0)
    (0.0, True)
    """

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        min_scale: float = 0.1,
        min_rows: int = 5,
        top_k: int = 2,
        two_sided: bool = False,
        combine: str = "tail",
        seed: int | None = 0,
    ) -> None:
        super().__init__(
            alpha=alpha,
            min_scale=min_scale,
            min_rows=min_rows,
            top_k=top_k,
            two_sided=two_sided,
            combine=combine,
            seed=seed,
        )


class PeerGroupDetector(_ZScoreBaseline):
    """Peer-group baseline: each row against the median and MAD of its peer group.

    Peers come from the ``groups`` context at ``fit`` (department, role). Without it, entities
    are clustered: KMeans (seeded) on each entity's mean training vector; at scoring an unseen
    entity joins the cluster whose centre is nearest to the mean of its rows in the batch.

    Parameters
    ----------
    n_clusters : int | None
        Clusters when no groups are given; ``None`` = round(sqrt(n_entities / 2)) capped at 20.
    alpha, min_scale, min_rows, top_k, two_sided
        As in :class:`RobustBaselineDetector` (``min_rows`` applies to groups).
    seed : int | None
        Random state of KMeans.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features) or None
        KMeans centres, ``None`` when fitted with explicit groups.
    entity_group_ : dict[str, str]
        The peer group of every training entity.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0]] * 5 + [[3.0]] * 5)
    >>> groups = ["sales"] * 5 + ["admins"] * 5
    >>> detector = PeerGroupDetector().fit(X, groups=groups)
    >>> # for sales: (3 - 0) / floor, floor = 0.5 * population scale 1.4826 * 1.5
    >>> scores = detector.decision_function(np.array([[3.0], [3.0]]), groups=["admins", "sales"])
    >>> scores.round(3).tolist()
    [0.0, 2.698]
    """

    cluster_centers_: FloatArray | None

    def __init__(
        self,
        *,
        n_clusters: int | None = None,
        alpha: float = 0.5,
        min_scale: float = 0.1,
        min_rows: int = 5,
        top_k: int = 3,
        two_sided: bool = False,
        combine: str = "rms",
        seed: int | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.min_scale = min_scale
        self.min_rows = min_rows
        self.top_k = top_k
        self.two_sided = two_sided
        self.combine = combine
        self.seed = seed

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit the population baseline, then the peer groups' baselines.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Training rows.
        **context
            ``groups`` (explicit peers) and/or ``entities`` (clustered into peers when no
            groups are given; without either, rows themselves are clustered).

        Returns
        -------
        Self
            The fitted detector.
        """
        matrix = as_matrix(X)
        entities = as_labels(context.get("entities"), matrix.shape[0], "entities")
        groups = as_labels(context.get("groups"), matrix.shape[0], "groups")
        self._fit_population(matrix)
        if groups is not None:
            self.cluster_centers_ = None
            self._fit_groups(matrix, groups, entities)
            self._fit_tails(matrix, entities, groups)
            return self
        if entities is None:
            profiles = matrix
            row_cluster_of: NDArray[np.intp] = np.arange(matrix.shape[0])
            names: list[str] = []
        else:
            segments = _segments(entities)
            names = [name for name, _ in segments]
            profiles = np.array([matrix[rows].mean(axis=0) for _, rows in segments])
            row_cluster_of = np.unique(entities, return_inverse=True)[1].reshape(-1)
        centers, profile_labels = self._cluster(profiles)
        self.cluster_centers_ = centers
        cluster_names = np.array([f"cluster-{c}" for c in profile_labels], dtype=np.str_)
        self._fit_groups(matrix, cluster_names[row_cluster_of], None)
        self.entity_group_ = (
            {} if entities is None else dict(zip(names, map(str, cluster_names), strict=True))
        )
        self._fit_tails(matrix, entities, None)
        return self

    def _cluster(self, profiles: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
        from sklearn.cluster import KMeans

        distinct = np.unique(profiles, axis=0).shape[0]
        wanted = self.n_clusters
        if wanted is None:
            wanted = min(20, max(1, round(math.sqrt(profiles.shape[0] / 2))))
        k = max(1, min(wanted, distinct))
        model = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(profiles)
        centers: FloatArray = np.asarray(model.cluster_centers_, dtype=np.float64)
        labels: NDArray[np.intp] = np.asarray(model.labels_, dtype=np.intp)
        return centers, labels

    def _nearest_cluster(self, profiles: FloatArray) -> LabelArray:
        assert self.cluster_centers_ is not None
        distances = ((profiles[:, None, :] - self.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        nearest = np.argmin(distances, axis=1)
        return np.array([f"cluster-{c}" for c in nearest], dtype=np.str_)

    def _baseline(
        self,
        matrix: FloatArray,
        entities: LabelArray | None,
        groups: LabelArray | None,
        times: NDArray[Any] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        # Peers only: an entity's own earlier rows (``times``) play no part here.
        if self.cluster_centers_ is None:
            return self._group_baseline(matrix.shape[0], groups, entities)
        # Clustered peers: the fitted assignment is authoritative, the groups context is not.
        if entities is None:
            return self._group_baseline(matrix.shape[0], self._nearest_cluster(matrix), None)
        unique, inverse = np.unique(entities, return_inverse=True)
        inverse = inverse.reshape(-1)
        cluster_of_entity = np.array(
            [self.entity_group_.get(str(entity), "") for entity in unique], dtype=object
        )
        unseen = np.flatnonzero(cluster_of_entity == "")
        if unseen.size:
            sums = np.zeros((unique.size, matrix.shape[1]))
            np.add.at(sums, inverse, matrix)
            counts = np.bincount(inverse, minlength=unique.size).astype(np.float64)
            profiles = sums[unseen] / counts[unseen, None]
            cluster_of_entity[unseen] = self._nearest_cluster(profiles)
        row_groups = cluster_of_entity[inverse].astype(np.str_)
        return self._group_baseline(matrix.shape[0], row_groups, None)

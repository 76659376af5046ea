"""Four classic log-anomaly detectors on sessions (sequences of log keys / template ids).

- :class:`PCASessionDetector` -- Xu et al. (SOSP 2009): tf-idf weighted event-count vectors,
  principal subspace of the training sessions; the score is the squared prediction error
  (SPE, the squared norm of the residual outside that subspace), the decision rule the
  Jackson-Mudholkar Q-statistic at significance ``alpha``.
- :class:`InvariantsMiningDetector` -- Lou et al. (USENIX ATC 2010), simplified: sparse
  integer linear relations among template counts (``2 * count(T01) == count(T03)``) that hold
  on at least ``support`` of the training sessions; the score is the number of relations a
  session breaks, the rule "breaks at least one".
- :class:`SessionIForestDetector` -- an isolation forest on (tf-idf) count vectors; the rule is
  a quantile of the training scores.
- :class:`NextKeyDetector` -- in the spirit of DeepLog (Du et al., CCS 2017) without a neural
  network: a back-off n-gram model of the next key given the previous ``history`` keys; a key
  outside the ``top_g`` most likely candidates of its context is a miss; the score is the
  number of misses, the rule "at least one miss" (DeepLog's own).

Count-based detectors take a count matrix (see :func:`models.sequence.counts.count_vectors`);
the sequence detector takes the key sequences themselves. All are pure at scoring time.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray
from models.batch._common import as_matrix, require_fitted
from models.params import ParamsMixin
from models.sequence.counts import tf_idf

log = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]


class _ThresholdMixin:
    """``predict`` from ``decision_function`` and the fitted ``threshold_``."""

    threshold_: float

    def decision_function(self, X: Any, **context: Any) -> FloatArray:
        raise NotImplementedError

    def predict(self, X: Any) -> BoolArray:
        """True where the score exceeds the threshold fixed at fit time (no labels needed)."""
        require_fitted(self, "threshold_")
        flagged: BoolArray = self.decision_function(X) > self.threshold_
        return flagged


def q_statistic(residual_eigenvalues: FloatArray, alpha: float) -> float:
    """Jackson-Mudholkar upper limit of the SPE at significance ``alpha``.

    Parameters
    ----------
    residual_eigenvalues : ndarray
        Covariance eigenvalues of the components left out of the model.
    alpha : float
        False-alarm probability under the normal model (0.001 in Xu et al.).

    Examples
    --------
    >>> import numpy as np
    >>> round(q_statistic(np.array([1.0, 1.0]), 0.05), 3)  # chi-square(2) 95%: 5.991
    5.937
    """
    theta = [float(np.sum(residual_eigenvalues**power)) for power in (1, 2, 3)]
    if theta[0] <= 0.0:
        return 0.0
    h0 = 1.0 - 2.0 * theta[0] * theta[2] / (3.0 * theta[1] ** 2)
    c_alpha = NormalDist().inv_cdf(1.0 - alpha)
    inner = (
        c_alpha * math.sqrt(2.0 * theta[1] * h0**2) / theta[0]
        + 1.0
        + theta[1] * h0 * (h0 - 1.0) / theta[0] ** 2
    )
    return float(theta[0] * max(inner, 0.0) ** (1.0 / h0))


class PCASessionDetector(_ThresholdMixin, ParamsMixin):
    """Squared prediction error of (tf-idf) count vectors outside their principal subspace.

    Parameters
    ----------
    variance : float
        Keep the fewest principal components explaining at least this share of variance.
    use_tf_idf : bool
        Weight counts by inverse document frequency before the PCA (Xu et al.). Off by
        default: idf is 0 for a template present in every session, so tf-idf cannot see a
        session that has it too few or too many times (a block written once instead of three
        times), the commonest HDFS anomaly.
    alpha : float
        Significance of the Q-statistic threshold.
    seed : int | None
        Accepted for a uniform interface; the PCA is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> level = rng.uniform(1.0, 5.0, size=(200, 1))
    >>> X = np.hstack([level, level, np.zeros((200, 1))]) + rng.normal(0.0, 0.05, (200, 3))
    >>> detector = PCASessionDetector(variance=0.9, use_tf_idf=False).fit(X)
    >>> detector.predict(np.array([[5.0, 5.0, 0.0], [2.0, 0.0, 0.0]])).tolist()
    [False, True]
    """

    idf_: FloatArray | None
    mean_: FloatArray
    components_: FloatArray
    threshold_: float
    n_features_in_: int

    def __init__(
        self,
        *,
        variance: float = 0.95,
        use_tf_idf: bool = False,
        alpha: float = 0.001,
        seed: int | None = 0,
    ) -> None:
        self.variance = variance
        self.use_tf_idf = use_tf_idf
        self.alpha = alpha
        self.seed = seed

    def _weighted(self, matrix: FloatArray) -> FloatArray:
        if self.idf_ is None:
            return matrix
        weighted, _ = tf_idf(matrix, self.idf_)
        return weighted

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit the principal subspace and the Q-statistic threshold on training sessions."""
        matrix = as_matrix(X)
        self.idf_ = tf_idf(matrix)[1] if self.use_tf_idf else None
        weighted = self._weighted(matrix)
        self.mean_ = weighted.mean(axis=0)
        centred = weighted - self.mean_
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        eigenvalues = singular**2 / max(matrix.shape[0] - 1, 1)
        total = float(eigenvalues.sum())
        if total <= 0.0:
            k = 0
        else:
            explained = np.cumsum(eigenvalues) / total
            k = int(np.searchsorted(explained, self.variance - 1e-12) + 1)
        self.components_ = vt[:k]
        self.threshold_ = q_statistic(eigenvalues[k:], self.alpha)
        self.n_features_in_ = matrix.shape[1]
        log.info("PCA: %d of %d components, SPE threshold %.4g", k, vt.shape[0], self.threshold_)
        return self

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Squared prediction error of each session (>= 0; higher = more anomalous)."""
        require_fitted(self, "components_")
        centred = self._weighted(as_matrix(X, n_features=self.n_features_in_)) - self.mean_
        residual = centred - (centred @ self.components_.T) @ self.components_
        spe: FloatArray = np.sum(residual**2, axis=1)
        return spe


class InvariantsMiningDetector(_ThresholdMixin, ParamsMixin):
    """Count of mined linear invariants (among template counts) that a session breaks.

    Invariants are searched over single columns (``count(T) == 0``), pairs and triples of
    columns: for each candidate set, the right singular vector of its (uncentred) count
    columns with the smallest singular value is scaled to small integers and kept if the
    relation holds exactly on at least ``support`` of the training sessions.

    Parameters
    ----------
    support : float
        Share of training sessions an invariant must hold on (0.98 in Lou et al.).
    max_size : int
        Largest number of templates in one invariant (1 to 3).
    max_coefficient : int
        Largest absolute integer coefficient.
    seed : int | None
        Accepted for a uniform interface; mining is deterministic.

    Attributes
    ----------
    invariants_ : ndarray of shape (n_invariants, n_features)
        One integer coefficient row per invariant.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [3.0, 6.0, 0.0]] * 10)
    >>> detector = InvariantsMiningDetector().fit(X)
    >>> detector.decision_function(np.array([[1.0, 2.0, 0.0], [1.0, 3.0, 1.0]])).tolist()
    [0.0, 2.0]
    """

    invariants_: FloatArray
    threshold_: float
    n_features_in_: int

    def __init__(
        self,
        *,
        support: float = 0.98,
        max_size: int = 3,
        max_coefficient: int = 3,
        seed: int | None = 0,
    ) -> None:
        self.support = support
        self.max_size = max_size
        self.max_coefficient = max_coefficient
        self.seed = seed

    def _holds(self, matrix: FloatArray, coefficients: FloatArray) -> float:
        return float(np.mean(np.abs(matrix @ coefficients) < 1e-9))

    def _integer_relation(self, columns: FloatArray) -> FloatArray | None:
        """Small-integer null vector of ``columns`` (n_rows, size) with no zero entry, or None."""
        _, singular, vt = np.linalg.svd(columns, full_matrices=False)
        if singular.size < columns.shape[1]:
            return None
        vector = vt[-1]
        if np.min(np.abs(vector)) < 1e-6:
            return None  # a smaller invariant explains it
        scaled = vector / np.min(np.abs(vector))
        rounded = np.round(scaled)
        if np.max(np.abs(rounded)) > self.max_coefficient or np.max(np.abs(scaled - rounded)) > 0.1:
            return None
        if rounded[np.flatnonzero(rounded)[0]] < 0:
            rounded = -rounded
        relation: FloatArray = rounded
        return relation

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Mine the invariants on training sessions (normal ones, ideally)."""
        matrix = as_matrix(X)
        width = matrix.shape[1]
        found: list[FloatArray] = []
        zero_share = np.mean(matrix == 0.0, axis=0)
        for column in np.flatnonzero(zero_share >= self.support):
            unit = np.zeros(width)
            unit[column] = 1.0
            found.append(unit)
        active = [int(c) for c in np.flatnonzero(zero_share < self.support)]
        for size in range(2, min(self.max_size, 3) + 1):
            for subset in itertools.combinations(active, size):
                relation = self._integer_relation(matrix[:, subset])
                if relation is None:
                    continue
                full = np.zeros(width)
                full[list(subset)] = relation
                if self._holds(matrix, full) >= self.support:
                    found.append(full)
        self.invariants_ = np.array(found, dtype=np.float64).reshape(len(found), width)
        self.threshold_ = 0.5
        self.n_features_in_ = width
        log.info("invariants mining: %d invariants over %d templates", len(found), width)
        return self

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Number of invariants each session breaks (0 = consistent with every invariant)."""
        require_fitted(self, "invariants_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        broken = np.abs(matrix @ self.invariants_.T) > 1e-9
        scores: FloatArray = broken.sum(axis=1).astype(np.float64)
        return scores


class SessionIForestDetector(_ThresholdMixin, ParamsMixin):
    """Isolation forest on (tf-idf weighted) template-count vectors.

    Parameters
    ----------
    n_estimators : int
        Number of trees.
    use_tf_idf : bool
        Weight counts by inverse document frequency first.
    threshold_quantile : float
        The decision threshold is this quantile of the training scores.
    seed : int | None
        Random state of the forest.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).poisson(3.0, size=(200, 4)).astype(float)
    >>> detector = SessionIForestDetector(n_estimators=50, use_tf_idf=False, seed=0).fit(X)
    >>> detector.predict(np.array([[3.0, 3.0, 3.0, 3.0], [30.0, 30.0, 30.0, 40.0]])).tolist()
    [False, True]
    """

    forest_: Any
    idf_: FloatArray | None
    threshold_: float
    n_features_in_: int

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        use_tf_idf: bool = True,
        threshold_quantile: float = 0.99,
        seed: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.use_tf_idf = use_tf_idf
        self.threshold_quantile = threshold_quantile
        self.seed = seed

    def _weighted(self, matrix: FloatArray) -> FloatArray:
        return matrix if self.idf_ is None else tf_idf(matrix, self.idf_)[0]

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit the forest and set the threshold from the training scores."""
        from sklearn.ensemble import IsolationForest

        matrix = as_matrix(X)
        self.idf_ = tf_idf(matrix)[1] if self.use_tf_idf else None
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1
        ).fit(self._weighted(matrix))
        self.n_features_in_ = matrix.shape[1]
        self.threshold_ = float(
            np.quantile(self.decision_function(matrix), self.threshold_quantile)
        )
        return self

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Isolation score of each session (higher = more anomalous)."""
        require_fitted(self, "forest_")
        matrix = self._weighted(as_matrix(X, n_features=self.n_features_in_))
        scores: FloatArray = -np.asarray(self.forest_.score_samples(matrix), dtype=np.float64)
        return scores


START = -1
"""Padding key before a session's first key, so the first keys are predicted too."""
END = -2
"""Key appended after a session's last key when ``end_marker``: an early end is a miss."""


class NextKeyDetector(_ThresholdMixin, ParamsMixin):
    """Back-off n-gram next-key model with DeepLog's top-g rule.

    For every position of a session, the context is the previous ``history`` keys (padded with
    a start marker). The candidates are the ``top_g`` keys that most often followed that context
    in training (the longest context seen in training is used, backing off to shorter ones). A
    key outside its candidates is a miss; the score of a session is its number of misses.

    Parameters
    ----------
    history : int
        Keys of context (DeepLog's window h).
    top_g : int
        Candidates accepted at each position (DeepLog's g).
    min_count : int
        A context must have been seen this many times in training to be used; rarer ones
        back off to a shorter context. A context seen once offers one candidate only and makes
        every unseen interleaving of concurrent writers a miss: on normal HDFS sessions held
        out of training, min_count 1 flags 11% and 10 flags 4.5%.
    end_marker : bool
        Predict an end-of-session key too, so a session that stops where training sessions
        never stop is a miss (DeepLog's reference code gets the same effect by padding short
        sessions with a key of its own).
    seed : int | None
        Accepted for a uniform interface; the model is deterministic.

    Examples
    --------
    >>> detector = NextKeyDetector(history=2, top_g=1, min_count=1).fit([[1, 2, 3]] * 3)
    >>> detector.decision_function([[1, 2, 3], [1, 3, 2], [1, 2]]).tolist()
    [0.0, 3.0, 1.0]
    >>> detector.predict([[1, 2, 3], [1, 3, 2], [1, 2]]).tolist()
    [False, True, True]
    """

    candidates_: dict[tuple[int, ...], frozenset[int]]
    threshold_: float

    def __init__(
        self,
        *,
        history: int = 10,
        top_g: int = 9,
        min_count: int = 10,
        end_marker: bool = True,
        seed: int | None = 0,
    ) -> None:
        self.history = history
        self.top_g = top_g
        self.min_count = min_count
        self.end_marker = end_marker
        self.seed = seed

    def _padded(self, sequence: Sequence[int]) -> list[int]:
        tail = [END] if self.end_marker else []
        return [START] * self.history + [int(key) for key in sequence] + tail

    def _contexts(self, padded: Sequence[int], position: int) -> list[tuple[int, ...]]:
        """The contexts of ``position``, longest first, down to the empty one."""
        window = tuple(padded[position - self.history : position])
        return [window[cut:] for cut in range(len(window) + 1)]

    def fit(self, X: Sequence[Sequence[int]], **context: Any) -> Self:
        """Count next keys per context on training sessions (normal ones, as in DeepLog)."""
        if self.history < 0 or self.top_g < 1:
            raise ValueError("history must be >= 0 and top_g >= 1")
        followers: dict[tuple[int, ...], Counter[int]] = {}
        for sequence in X:
            padded = self._padded(sequence)
            for position in range(self.history, len(padded)):
                key = padded[position]
                for ctx in self._contexts(padded, position):
                    followers.setdefault(ctx, Counter())[key] += 1
        candidates = {}
        for ctx, counts in followers.items():
            if sum(counts.values()) < self.min_count and ctx:
                continue
            # Ties broken by key so the model does not depend on the training order.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            candidates[ctx] = frozenset(key for key, _ in ranked[: self.top_g])
        self.candidates_ = candidates
        self.threshold_ = 0.5
        return self

    def misses(self, sequence: Sequence[int]) -> list[int]:
        """Positions (0-based) of the keys of ``sequence`` outside their top-g candidates."""
        require_fitted(self, "candidates_")
        padded = self._padded(sequence)
        missed = []
        for position in range(self.history, len(padded)):
            allowed = next(
                (
                    self.candidates_[ctx]
                    for ctx in self._contexts(padded, position)
                    if ctx in self.candidates_
                ),
                frozenset(),
            )
            if padded[position] not in allowed:
                missed.append(position - self.history)
        return missed

    def decision_function(self, X: Sequence[Sequence[int]], **context: Any) -> FloatArray:
        """Number of missed keys per session (0 = every key was among its candidates)."""
        scores: FloatArray = np.array([len(self.misses(s)) for s in X], dtype=np.float64)
        return scores

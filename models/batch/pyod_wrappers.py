"""Population detectors from pyod behind the baseliner contract.

Every detector here ignores the ``entities``/``groups`` context: it learns one distribution over
all training rows. Scores follow pyod's convention, which is already ours: higher = more
anomalous.

``IForestDetector`` and ``HBOSDetector`` delegate scoring to the fitted pyod estimator. ECOD and
COPOD are different: pyod's ``decision_function`` re-estimates the empirical CDFs on the training
rows *concatenated with the rows being scored* (so a row's score depends on which other rows
share its batch), stores intermediate matrices on the estimator (scoring mutates state) and
yields NaN on a column that is constant in training (its skewness is undefined). Here the
per-column ECDFs are frozen at ``fit`` and each row is scored as pyod would score it in a batch
of one: identical numbers for a single row, but batch-independent, pure and finite.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal, Self

import numpy as np

from models.base import FloatArray
from models.batch._common import as_matrix, require_fitted
from models.params import ParamsMixin

logger = logging.getLogger(__name__)


class _PyODDelegate(ParamsMixin):
    """Fit a pyod estimator with its warnings silenced and score through it."""

    estimator_: Any
    n_features_in_: int

    def _make_estimator(self) -> Any:
        raise NotImplementedError

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit on the training rows; ``entities``/``groups`` context is accepted and ignored.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Training feature vectors (float64, finite).
        **context
            Ignored.

        Returns
        -------
        Self
            The fitted detector.
        """
        matrix = as_matrix(X)
        estimator = self._make_estimator()
        # pyod and scikit-learn warn about contamination, feature names and small samples;
        # none of it is actionable for the caller.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(matrix)
        self.estimator_ = estimator
        self.n_features_in_ = matrix.shape[1]
        return self

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Score rows; higher = more anomalous. Pure: the detector is not modified.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to score.
        **context
            Ignored.

        Returns
        -------
        ndarray of shape (n_rows,)
            float64 anomaly scores.
        """
        require_fitted(self, "estimator_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = self.estimator_.decision_function(matrix)
        return np.asarray(scores, dtype=np.float64).reshape(-1)


class IForestDetector(_PyODDelegate):
    """Isolation forest (pyod ``IForest``): rows isolated by few random splits are anomalous.

    Parameters
    ----------
    n_estimators : int
        Number of trees.
    max_samples : int | float | str
        Rows drawn per tree (``"auto"`` = min(256, n_rows)).
    max_features : float
        Fraction of features drawn per tree.
    contamination : float
        pyod's expected outlier fraction (only sets pyod's own threshold; scores ignore it).
    seed : int | None
        Random state of the forest; the same seed gives the same scores.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.log1p(np.random.default_rng(0).poisson(2.0, size=(200, 3)).astype(float))
    >>> detector = IForestDetector(n_estimators=50, seed=1).fit(X)
    >>> outlier = np.log1p([[40.0, 40.0, 40.0]])
    >>> bool(detector.decision_function(outlier)[0] > detector.decision_function(X).max())
    True
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        max_features: float = 1.0,
        contamination: float = 0.1,
        seed: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.contamination = contamination
        self.seed = seed

    def _make_estimator(self) -> Any:
        from pyod.models.iforest import IForest

        return IForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            contamination=self.contamination,
            n_jobs=1,
            random_state=self.seed,
        )


class HBOSDetector(_PyODDelegate):
    """Histogram-based outlier score (pyod ``HBOS``): sum of per-feature negative log densities.

    Parameters
    ----------
    n_bins : int | str
        Bins per feature histogram (or ``"auto"``).
    alpha : float
        Density regulariser of empty bins.
    tol : float
        How far outside the training range (in bins) a value still uses the edge bin.
    contamination : float
        pyod's expected outlier fraction (only sets pyod's own threshold).
    seed : int | None
        Accepted for a uniform interface; HBOS is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.log1p(np.random.default_rng(0).poisson(2.0, size=(200, 3)).astype(float))
    >>> detector = HBOSDetector().fit(X)
    >>> outlier = np.log1p([[40.0, 40.0, 40.0]])
    >>> bool(detector.decision_function(outlier)[0] > detector.decision_function(X).max())
    True
    """

    def __init__(
        self,
        *,
        n_bins: int | str = 10,
        alpha: float = 0.1,
        tol: float = 0.5,
        contamination: float = 0.1,
        seed: int | None = 0,
    ) -> None:
        self.n_bins = n_bins
        self.alpha = alpha
        self.tol = tol
        self.contamination = contamination
        self.seed = seed

    def _make_estimator(self) -> Any:
        from pyod.models.hbos import HBOS

        return HBOS(
            n_bins=self.n_bins, alpha=self.alpha, tol=self.tol, contamination=self.contamination
        )


class _TailProbabilityDetector(ParamsMixin):
    """ECOD/COPOD scoring against per-column ECDFs frozen at fit time (see the module doc)."""

    _aggregation: Literal["ecod", "copod"]
    sorted_columns_: FloatArray
    skew_sign_: FloatArray
    n_features_in_: int

    def __init__(self, *, seed: int | None = 0) -> None:
        self.seed = seed

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit the per-column empirical distributions; context is accepted and ignored.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Training feature vectors.
        **context
            Ignored.

        Returns
        -------
        Self
            The fitted detector.
        """
        matrix = as_matrix(X)
        self.sorted_columns_ = np.sort(matrix, axis=0)
        self.skew_sign_ = _skewness_sign(matrix)
        self.n_features_in_ = matrix.shape[1]
        return self

    def tail_scores(self, X: FloatArray) -> FloatArray:
        """Per-feature outlier scores (the matrix pyod calls ``O``), shape (n_rows, n_features).

        These sum to :meth:`decision_function`; explanations can rank features by them.
        """
        require_fitted(self, "sorted_columns_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        n_train = self.sorted_columns_.shape[0]
        at_most = np.empty_like(matrix)
        at_least = np.empty_like(matrix)
        for column in range(matrix.shape[1]):
            ordered = self.sorted_columns_[:, column]
            at_most[:, column] = np.searchsorted(ordered, matrix[:, column], side="right")
            at_least[:, column] = n_train - np.searchsorted(ordered, matrix[:, column], side="left")
        # The scored row counts itself, as in pyod's batch of one: a value beyond every
        # training value gets tail probability 1/(n+1), large but finite.
        left = -np.log((at_most + 1.0) / (n_train + 1.0))
        right = -np.log((at_least + 1.0) / (n_train + 1.0))
        skew = self.skew_sign_
        skew_corrected = left * -np.sign(skew - 1.0) + right * np.sign(skew + 1.0)
        if self._aggregation == "ecod":
            outlier = np.maximum(np.maximum(left, right), skew_corrected)
        else:
            outlier = np.maximum(skew_corrected, (left + right) / 2.0)
        result: FloatArray = outlier
        return result

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Score rows; higher = more anomalous. Pure and batch-independent.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to score.
        **context
            Ignored.

        Returns
        -------
        ndarray of shape (n_rows,)
            float64 anomaly scores (sum of per-feature negative log tail probabilities).
        """
        scores: FloatArray = self.tail_scores(X).sum(axis=1)
        return scores


class ECODDetector(_TailProbabilityDetector):
    """ECOD (pyod): empirical-CDF outlier detection, sum over features of the rarer tail.

    Parameters
    ----------
    seed : int | None
        Accepted for a uniform interface; ECOD is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((100, 2))
    >>> X[:50, 0] = 1.0  # column 1 is constant in training: still finite scores
    >>> detector = ECODDetector().fit(X)
    >>> detector.decision_function(np.array([[1.0, 0.0], [1.0, 3.0]])).round(3).tolist()
    [0.683, 5.298]
    """

    _aggregation = "ecod"


class COPODDetector(_TailProbabilityDetector):
    """COPOD (pyod): copula-based outlier detection from per-feature empirical tail probabilities.

    Parameters
    ----------
    seed : int | None
        Accepted for a uniform interface; COPOD is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.log1p(np.random.default_rng(0).poisson(2.0, size=(200, 3)).astype(float))
    >>> detector = COPODDetector().fit(X)
    >>> outlier = np.log1p([[40.0, 40.0, 40.0]])
    >>> bool(detector.decision_function(outlier)[0] > detector.decision_function(X).max())
    True
    """

    _aggregation = "copod"


def _skewness_sign(matrix: FloatArray) -> FloatArray:
    """Sign of each column's (biased) sample skewness; 0 where the column is constant."""
    centered = matrix - matrix.mean(axis=0)
    second = (centered**2).mean(axis=0)
    third = (centered**3).mean(axis=0)
    signs = np.zeros(matrix.shape[1], dtype=np.float64)
    varying = second > 1e-24
    signs[varying] = np.sign(third[varying] / second[varying] ** 1.5)
    return signs

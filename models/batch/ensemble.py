"""Rank ensemble: several registry detectors, each score mapped to its training percentile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from models.base import BatchDetector, FloatArray
from models.batch._common import as_matrix, require_fitted
from models.params import ParamsMixin

COMBINERS = ("mean", "max")


class RankEnsembleDetector(ParamsMixin):
    """Fit several detectors on the same rows and combine their calibrated ranks.

    Raw scores of different detectors live on unrelated scales, so each member's score is
    replaced by the fraction of that member's *training* scores strictly below it (an empirical
    CDF frozen at fit time, in [0, 1]; a score above every training score maps to 1). Scoring
    stays pure and works on a single row. The ranks are then averaged (``combine="mean"``) or
    the largest is taken (``combine="max"``: any one member's strong opinion is enough).

    Parameters
    ----------
    members : sequence of str
        Registry names of the member detectors.
    member_params : mapping of str to mapping, optional
        Hyper-parameters per member name, e.g. ``{"iforest": {"n_estimators": 200}}``.
    combine : {"mean", "max"}
        How the members' ranks are combined.
    seed : int | None
        Passed to every member that has no ``seed`` of its own in ``member_params``.

    Attributes
    ----------
    members_ : list of BatchDetector
        The fitted members, in the order of ``members``.
    training_scores_ : list of ndarray
        Each member's sorted scores on the training rows.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.log1p(np.random.default_rng(0).poisson(2.0, size=(200, 3)).astype(float))
    >>> ensemble = RankEnsembleDetector(members=("ecod", "hbos")).fit(X)
    >>> float(ensemble.decision_function(np.log1p([[40.0, 40.0, 40.0]]))[0])
    1.0
    """

    members_: list[BatchDetector]
    training_scores_: list[FloatArray]
    n_features_in_: int

    def __init__(
        self,
        *,
        members: Sequence[str] = ("robust", "peer", "iforest", "ecod"),
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        combine: str = "mean",
        seed: int | None = 0,
    ) -> None:
        self.members = members
        self.member_params = member_params
        self.combine = combine
        self.seed = seed

    def _build_members(self) -> list[BatchDetector]:
        from models.registry import create_batch

        if self.combine not in COMBINERS:
            raise ValueError(f"combine must be one of {COMBINERS}, got {self.combine!r}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if "ensemble" in self.members:
            raise ValueError("an ensemble cannot contain an ensemble")
        unknown = set(self.member_params or {}) - set(self.members)
        if unknown:
            raise ValueError(f"member_params names detectors not in members: {sorted(unknown)}")
        built = []
        for name in self.members:
            params = {"seed": self.seed, **dict((self.member_params or {}).get(name, {}))}
            built.append(create_batch(name, **params))
        return built

    def fit(self, X: FloatArray, **context: Any) -> Self:
        """Fit every member on ``X`` (with the same context) and keep its training scores.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Training rows.
        **context
            ``entities``/``groups``, handed to every member.

        Returns
        -------
        Self
            The fitted ensemble.
        """
        matrix = as_matrix(X)
        members = self._build_members()
        training_scores = []
        for member in members:
            member.fit(matrix, **context)
            training_scores.append(np.sort(member.decision_function(matrix, **context)))
        self.members_ = members
        self.training_scores_ = training_scores
        self.n_features_in_ = matrix.shape[1]
        return self

    def member_ranks(self, X: FloatArray, **context: Any) -> FloatArray:
        """Each member's rank of each row, shape (n_rows, n_members), values in [0, 1]."""
        require_fitted(self, "members_")
        matrix = as_matrix(X, n_features=self.n_features_in_)
        ranks = np.empty((matrix.shape[0], len(self.members_)))
        for column, (member, reference) in enumerate(
            zip(self.members_, self.training_scores_, strict=True)
        ):
            scores = member.decision_function(matrix, **context)
            ranks[:, column] = np.searchsorted(reference, scores, side="left") / reference.size
        return ranks

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray:
        """Combined rank of each row in [0, 1]; higher = more anomalous.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Rows to score.
        **context
            ``entities``/``groups``, handed to every member.

        Returns
        -------
        ndarray of shape (n_rows,)
            float64 scores.
        """
        ranks = self.member_ranks(X, **context)
        combined: FloatArray = ranks.max(axis=1) if self.combine == "max" else ranks.mean(axis=1)
        return combined

"""The detector contracts shared by every model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@runtime_checkable
class BatchDetector(Protocol):
    """Fit on a matrix of feature vectors, score rows; higher = more anomalous.

    Some detectors need to know which entity (and which peer group) each row belongs to:
    they accept the optional keyword arguments ``entities`` and ``groups`` (arrays of strings
    aligned with the rows) in both ``fit`` and ``decision_function``; the others ignore them.
    """

    def fit(self, X: FloatArray, **context: Any) -> Self: ...

    def decision_function(self, X: FloatArray, **context: Any) -> FloatArray: ...


@runtime_checkable
class OnlineDetector(Protocol):
    """Score one feature vector, then learn from it; higher = more anomalous."""

    def score_one(self, x: Mapping[str, float]) -> float: ...

    def learn_one(self, x: Mapping[str, float]) -> None: ...

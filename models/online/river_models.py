"""River's online anomaly detectors behind the baseliner contract (scaling in front).

River models take a feature dict; reserved keys (``"__ts"``) are dropped first. Scoring only
reads the scaler and the model, so ``score_one`` is pure; ``learn_one`` updates the scaler, then
the model on the freshly scaled vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from river import anomaly, preprocessing

from models.online._common import feature_items
from models.params import ParamsMixin


class HSTDetector(ParamsMixin):
    """Half-space trees (Tan et al. 2011) on min-max scaled features.

    Parameters
    ----------
    n_trees, height, window_size : int
        River ``HalfSpaceTrees`` hyper-parameters.
    seed : int | None
        Seeds the random trees.

    Examples
    --------
    >>> detector = HSTDetector(n_trees=5, height=4, window_size=10, seed=1)
    >>> for i in range(40):
    ...     detector.learn_one({"x": float(i % 5)})
    >>> detector.score_one({"x": 2.0}) < detector.score_one({"x": 50.0})
    True
    """

    def __init__(
        self, *, n_trees: int = 25, height: int = 15, window_size: int = 250, seed: int | None = 0
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.scaler_: Any = preprocessing.MinMaxScaler()
        self.model_: Any = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def score_one(self, x: Mapping[str, float]) -> float:
        """Anomaly score in [0, 1] (1 - normalised mass); higher = more anomalous."""
        features = feature_items(x)
        if not features:
            return 0.0
        # Values beyond the range seen so far are clipped into [0, 1], where the trees live.
        scaled = {k: min(max(v, 0.0), 1.0) for k, v in self.scaler_.transform_one(features).items()}
        return float(self.model_.score_one(scaled))

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Update the scaler, then the trees."""
        features = feature_items(x)
        if not features:
            return
        self.scaler_.learn_one(features)
        scaled = {k: min(max(v, 0.0), 1.0) for k, v in self.scaler_.transform_one(features).items()}
        self.model_.learn_one(scaled)


class OneClassSVMDetector(ParamsMixin):
    """River's online one-class SVM (SGD) on standard-scaled features.

    Parameters
    ----------
    nu : float
        Upper bound on the fraction of training vectors treated as outliers.
    seed : int | None
        Accepted for the contract; the model is deterministic given the stream.

    Examples
    --------
    >>> detector = OneClassSVMDetector(nu=0.2)
    >>> for i in range(200):
    ...     detector.learn_one({"x": float(i % 5), "y": float(i % 3)})
    >>> detector.score_one({"x": 2.0, "y": 1.0}) < detector.score_one({"x": 40.0, "y": 30.0})
    True
    """

    def __init__(self, *, nu: float = 0.1, seed: int | None = 0) -> None:
        self.nu = nu
        self.seed = seed
        self.scaler_: Any = preprocessing.StandardScaler()
        self.model_: Any = anomaly.OneClassSVM(nu=nu)

    def score_one(self, x: Mapping[str, float]) -> float:
        """Signed distance from the learnt boundary; higher = more anomalous."""
        features = feature_items(x)
        if not features:
            return 0.0
        return float(self.model_.score_one(self.scaler_.transform_one(features)))

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Update the scaler, then the SVM."""
        features = feature_items(x)
        if not features:
            return
        self.scaler_.learn_one(features)
        self.model_.learn_one(self.scaler_.transform_one(features))

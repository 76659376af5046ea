"""Online detectors: ``learn_one``/``score_one`` on feature dicts, one vector per window.

Keys starting with ``"__"`` are reserved context, not features: ``"__ts"`` is the window time
in epoch seconds (UTC), read by the seasonal baseline.
"""

from models.online._common import RESERVED_PREFIX, TIMESTAMP_KEY, WindowedECDF, feature_items
from models.online.count_tail import CountTailDetector
from models.online.ensemble import OnlineRankEnsemble
from models.online.likelihood import AnomalyLikelihoodDetector
from models.online.river_models import HSTDetector, OneClassSVMDetector
from models.online.seasonal import SeasonalBaselineDetector

__all__ = [
    "RESERVED_PREFIX",
    "TIMESTAMP_KEY",
    "AnomalyLikelihoodDetector",
    "CountTailDetector",
    "HSTDetector",
    "OneClassSVMDetector",
    "OnlineRankEnsemble",
    "SeasonalBaselineDetector",
    "WindowedECDF",
    "feature_items",
]

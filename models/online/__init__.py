"""Online detectors: ``learn_one``/``score_one`` on feature dicts, one vector per window.

Keys starting with ``"__"`` are reserved context, not features: ``"__ts"`` is the window time
in epoch seconds (UTC), read by the seasonal baseline.

The detector classes are imported on first use: river and scipy.stats take seconds to import,
and the daemon should not pay for detectors its configuration does not name.

Examples
--------
>>> from models.online import RobustWindowDetector
>>> RobustWindowDetector.__name__
'RobustWindowDetector'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.online._common import RESERVED_PREFIX, TIMESTAMP_KEY, WindowedECDF, feature_items

if TYPE_CHECKING:
    from models.online.cad import ContextualAnomalyDetector
    from models.online.context import ContextSequenceDetector
    from models.online.count_tail import CountTailDetector
    from models.online.dual_scale import DualScaleCAD
    from models.online.ensemble import OnlineRankEnsemble
    from models.online.likelihood import AnomalyLikelihoodDetector
    from models.online.refractory import RefractoryDetector
    from models.online.river_models import HSTDetector, OneClassSVMDetector
    from models.online.robust_window import RobustWindowDetector
    from models.online.seasonal import SeasonalBaselineDetector

_LAZY = {
    "AnomalyLikelihoodDetector": "models.online.likelihood",
    "ContextSequenceDetector": "models.online.context",
    "ContextualAnomalyDetector": "models.online.cad",
    "CountTailDetector": "models.online.count_tail",
    "DualScaleCAD": "models.online.dual_scale",
    "HSTDetector": "models.online.river_models",
    "OneClassSVMDetector": "models.online.river_models",
    "OnlineRankEnsemble": "models.online.ensemble",
    "RefractoryDetector": "models.online.refractory",
    "RobustWindowDetector": "models.online.robust_window",
    "SeasonalBaselineDetector": "models.online.seasonal",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "RESERVED_PREFIX",
    "TIMESTAMP_KEY",
    "AnomalyLikelihoodDetector",
    "ContextSequenceDetector",
    "ContextualAnomalyDetector",
    "CountTailDetector",
    "DualScaleCAD",
    "HSTDetector",
    "OneClassSVMDetector",
    "OnlineRankEnsemble",
    "RefractoryDetector",
    "RobustWindowDetector",
    "SeasonalBaselineDetector",
    "WindowedECDF",
    "feature_items",
]

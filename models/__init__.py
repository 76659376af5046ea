"""How we learn: batch and online detectors, calibration, persistence.

``models`` sees only numbers (feature matrices and vectors), never events; it imports none of
the other baseliner packages. Everywhere, a higher score means more anomalous.
"""

from models.base import BatchDetector, OnlineDetector
from models.calibration import BudgetCalibrator
from models.registry import (
    BATCH_DETECTORS,
    ONLINE_DETECTORS,
    UnknownDetectorError,
    available,
    create,
    create_batch,
)
from models.store import CorruptModelError, IncompatibleModelError, load_model, save_model

__all__ = [
    "BATCH_DETECTORS",
    "ONLINE_DETECTORS",
    "BatchDetector",
    "BudgetCalibrator",
    "CorruptModelError",
    "IncompatibleModelError",
    "OnlineDetector",
    "UnknownDetectorError",
    "available",
    "create",
    "create_batch",
    "load_model",
    "save_model",
]

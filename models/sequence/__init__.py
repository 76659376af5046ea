"""Session and log-sequence detectors: numbers in (key sequences or count vectors), scores out.

Higher score = more anomalous, as everywhere in ``models``. Each detector also carries its
own decision rule (``threshold_`` and ``predict``) fixed from the training data alone, so a
benchmark never needs test labels to turn scores into alerts.
"""

from models.sequence.counts import count_vectors, tf_idf
from models.sequence.detectors import (
    InvariantsMiningDetector,
    NextKeyDetector,
    PCASessionDetector,
    SessionIForestDetector,
)

__all__ = [
    "InvariantsMiningDetector",
    "NextKeyDetector",
    "PCASessionDetector",
    "SessionIForestDetector",
    "count_vectors",
    "tf_idf",
]

"""What we measure: declarative feature specs, evaluated in batch (polars) and online.

``features`` imports only ``streams``. One :class:`FeatureSpec` defines a feature; the batch
evaluator here and the online evaluator must give the same numbers from the same spec.
"""

from features.batch import evaluate_batch, spec_schema_hash
from features.catalog import DEFAULT_SPECS, default_specs
from features.online import OnlineFeatures, WindowVector
from features.spec import FeatureSpec, WindowConfig

__all__ = [
    "DEFAULT_SPECS",
    "FeatureSpec",
    "OnlineFeatures",
    "WindowConfig",
    "WindowVector",
    "default_specs",
    "evaluate_batch",
    "spec_schema_hash",
]

"""What we measure: declarative feature specs and their batch (polars) evaluation.

``features`` imports only ``streams``. One :class:`FeatureSpec` defines a feature; the batch
evaluator here and the online evaluator must give the same numbers from the same spec.
"""

from features.batch import evaluate_batch, spec_schema_hash
from features.catalog import DEFAULT_SPECS, default_specs
from features.spec import FeatureSpec, WindowConfig

__all__ = [
    "DEFAULT_SPECS",
    "FeatureSpec",
    "WindowConfig",
    "default_specs",
    "evaluate_batch",
    "spec_schema_hash",
]

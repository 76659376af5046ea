"""What we measure: declarative feature specs, evaluated in batch (polars) and online.

``features`` imports only ``streams``. One :class:`FeatureSpec` defines a feature; the batch
evaluator here and the online evaluator must give the same numbers from the same spec;
:class:`SlicedFeatures` runs the batch evaluator one time slice at a time with a compact
carried history (flat memory for long scans, whole closed windows for the daemon).
"""

from features.batch import evaluate_batch, spec_schema_hash
from features.catalog import DEFAULT_SPECS, default_specs
from features.columnar import ColumnarOnline
from features.online import OnlineFeatures, WindowVector
from features.sliced import SlicedFeatures
from features.spec import FeatureSpec, WindowConfig

__all__ = [
    "DEFAULT_SPECS",
    "ColumnarOnline",
    "FeatureSpec",
    "OnlineFeatures",
    "SlicedFeatures",
    "WindowConfig",
    "WindowVector",
    "default_specs",
    "evaluate_batch",
    "spec_schema_hash",
]

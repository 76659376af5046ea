"""Detector names mapped to the dotted paths of their classes, imported lazily.

Adding an algorithm is one line here plus its module: nothing is imported until a detector is
created, so listing names is cheap and a heavy optional dependency costs nothing unless used.
"""

from __future__ import annotations

import importlib
from typing import Any

from models.base import BatchDetector, OnlineDetector

BATCH_DETECTORS: dict[str, str] = {
    "iforest": "models.batch.pyod_wrappers:IForestDetector",
    "ecod": "models.batch.pyod_wrappers:ECODDetector",
    "copod": "models.batch.pyod_wrappers:COPODDetector",
    "hbos": "models.batch.pyod_wrappers:HBOSDetector",
    "robust": "models.batch.baselines:RobustBaselineDetector",
    "tail": "models.batch.baselines:TailBaselineDetector",
    "peer": "models.batch.baselines:PeerGroupDetector",
    "ensemble": "models.batch.ensemble:RankEnsembleDetector",
    "tabular": "models.batch.tabular:TabularEnsembleDetector",
}
"""Batch detectors: ``fit(X, **context)`` then ``decision_function(X, **context)``."""

ONLINE_DETECTORS: dict[str, str] = {
    "hst": "models.online.river_models:HSTDetector",
    "oneclass_svm": "models.online.river_models:OneClassSVMDetector",
    "seasonal": "models.online.seasonal:SeasonalBaselineDetector",
    "count_tail": "models.online.count_tail:CountTailDetector",
    "online_ensemble": "models.online.ensemble:OnlineRankEnsemble",
    "likelihood": "models.online.likelihood:AnomalyLikelihoodDetector",
    "context": "models.online.context:ContextSequenceDetector",
    "refractory": "models.online.refractory:RefractoryDetector",
    "robust_window": "models.online.robust_window:RobustWindowDetector",
    "cad": "models.online.cad:ContextualAnomalyDetector",
    "cad_dual": "models.online.dual_scale:DualScaleCAD",
}
"""Online detectors (``learn_one``/``score_one`` on feature dicts; ``"__ts"`` is reserved)."""


class UnknownDetectorError(KeyError):
    """A detector name that is in neither registry.

    Examples
    --------
    >>> try:
    ...     create("nope")
    ... except UnknownDetectorError as error:
    ...     print(error)
    unknown detector 'nope'; valid names: cad, cad_dual, context, copod, count_tail, ecod, ...,
    tabular, tail
    """

    def __str__(self) -> str:
        # KeyError.__str__ wraps the message in quotes; show it as written.
        return str(self.args[0]) if self.args else ""


def available() -> list[str]:
    """Return every registered detector name (batch and online), sorted.

    Examples
    --------
    >>> "iforest" in available() and "robust" in available()
    True
    """
    return sorted({*BATCH_DETECTORS, *ONLINE_DETECTORS})


def resolve(name: str) -> type[Any]:
    """Import and return the class registered under ``name``.

    Raises
    ------
    UnknownDetectorError
        If ``name`` is not registered.
    """
    path = BATCH_DETECTORS.get(name) or ONLINE_DETECTORS.get(name)
    if path is None:
        raise UnknownDetectorError(
            f"unknown detector {name!r}; valid names: {', '.join(available())}"
        )
    module_name, _, attribute = path.partition(":")
    detector_class: type[Any] = getattr(importlib.import_module(module_name), attribute)
    return detector_class


def create(name: str, **params: Any) -> BatchDetector | OnlineDetector:
    """Build the detector registered under ``name`` with the given hyper-parameters.

    Parameters
    ----------
    name : str
        A name from :func:`available`.
    **params
        Keyword hyper-parameters of that detector (``seed`` makes any of them deterministic).

    Returns
    -------
    BatchDetector | OnlineDetector
        An unfitted detector.

    Raises
    ------
    UnknownDetectorError
        If ``name`` is not registered (a ``KeyError``; the message lists the valid names).

    Examples
    --------
    >>> create("robust", top_k=2)
    RobustBaselineDetector(alpha=0.5, min_scale=0.1, min_rows=5, top_k=2, two_sided=False,
    combine='rms', seed=0)
    """
    detector: BatchDetector | OnlineDetector = resolve(name)(**params)
    return detector


def create_batch(name: str, **params: Any) -> BatchDetector:
    """Like :func:`create`, but only for batch detectors (typed as ``BatchDetector``).

    Raises
    ------
    UnknownDetectorError
        If ``name`` is not a registered batch detector.
    """
    if name not in BATCH_DETECTORS:
        raise UnknownDetectorError(
            f"unknown batch detector {name!r}; valid names: {', '.join(sorted(BATCH_DETECTORS))}"
        )
    detector: BatchDetector = resolve(name)(**params)
    return detector

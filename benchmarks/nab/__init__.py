"""The Numenta Anomaly Benchmark (NAB v1.1): corpus loader and our own NAB scorer.

``load_nab`` reads the corpus from a data directory (``--data-dir`` or ``BASELINER_DATA``);
``score_detector`` / ``nab_scores`` score any detector's raw anomaly scores with the NAB
method; ``score_official_results`` scores the published raw scores of a scoreboard detector,
which is how we check our scorer against the official scoreboard.
"""

from benchmarks.nab.corpus import (
    STANDARD_PROFILES,
    CostProfile,
    NabCorpus,
    NabDataError,
    NabSeries,
    load_final_results,
    load_nab,
    load_official_scores,
    load_official_thresholds,
    resolve_nab_dir,
)
from benchmarks.nab.scoring import (
    NO_DETECTION,
    ProfileResult,
    SeriesScore,
    ThresholdCurve,
    nab_scores,
    normalise,
    optimise_threshold,
    score_all_profiles,
    score_detector,
    score_official_results,
    score_series,
    threshold_curve,
)

__all__ = [
    "NO_DETECTION",
    "STANDARD_PROFILES",
    "CostProfile",
    "NabCorpus",
    "NabDataError",
    "NabSeries",
    "ProfileResult",
    "SeriesScore",
    "ThresholdCurve",
    "load_final_results",
    "load_nab",
    "load_official_scores",
    "load_official_thresholds",
    "nab_scores",
    "normalise",
    "optimise_threshold",
    "resolve_nab_dir",
    "score_all_profiles",
    "score_detector",
    "score_official_results",
    "score_series",
    "threshold_curve",
]

"""ADBench (Han et al., NeurIPS 2022): the eight Classical tabular sets and the runner."""

from benchmarks.adbench.data import (
    ADBENCH_MAX_ROWS,
    ADBENCH_SETS,
    AdbenchDataError,
    AdbenchSplit,
    load_adbench_set,
    resolve_adbench_dir,
    split_adbench,
)
from benchmarks.adbench.runner import (
    RunResult,
    load_curves,
    merge_results,
    render_markdown,
    run_adbench,
)
from benchmarks.results import load_anchors

__all__ = [
    "ADBENCH_MAX_ROWS",
    "ADBENCH_SETS",
    "AdbenchDataError",
    "AdbenchSplit",
    "RunResult",
    "load_adbench_set",
    "load_anchors",
    "load_curves",
    "merge_results",
    "render_markdown",
    "resolve_adbench_dir",
    "run_adbench",
    "split_adbench",
]

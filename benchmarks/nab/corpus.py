"""The NAB corpus on disk: series, anomaly windows, cost profiles, official results.

The Numenta Anomaly Benchmark (NAB v1.1) is 58 univariate series, each a CSV of
``timestamp,value``, with labelled anomaly windows in ``labels/combined_windows.json`` and
three cost profiles in ``config/profiles.json``. This module reads them into numpy arrays;
:mod:`benchmarks.nab.scoring` scores detections against them.

The data directory is either the NAB root itself (the folder holding ``labels/`` and
``data/``) or a parent holding it as ``nab/`` (the ``BASELINER_DATA`` layout). It is never a
hard-coded path: callers pass ``--data-dir`` or set ``BASELINER_DATA``.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.datadir import resolve_dataset_dir

log = logging.getLogger(__name__)

WINDOWS_FILE = Path("labels") / "combined_windows.json"
PROFILES_FILE = Path("config") / "profiles.json"
FINAL_RESULTS_FILE = Path("results") / "final_results.json"
THRESHOLDS_FILE = Path("config") / "thresholds.json"
OFFICIAL_RESULTS_DIR = "official_results"
# The timestamp format of NAB's data files; windows carry microseconds as well.
_TS_FORMAT = "%Y-%m-%d %H:%M:%S"


class NabDataError(ValueError):
    """The NAB files are missing or do not agree with each other (names the file)."""


@dataclass(frozen=True)
class CostProfile:
    """One NAB application profile: the weights of true positives, false positives, misses.

    Examples
    --------
    >>> CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0).fp_weight
    0.11
    """

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD_PROFILES: tuple[CostProfile, ...] = (
    CostProfile("standard", 1.0, 0.11, 1.0),
    CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)
"""The three profiles of NAB v1.1's ``config/profiles.json``, for use without the files."""


@dataclass(frozen=True, eq=False)
class NabSeries:
    """One NAB data file: its timestamps, values and anomaly windows as row indices.

    Parameters
    ----------
    name
        The path relative to ``data/``, e.g. ``"realKnownCause/nyc_taxi.csv"``.
    timestamps
        ``datetime64[us]`` array, one per row, in file order (a few NAB files repeat a
        timestamp or step back an hour; scoring uses row indices, never time).
    values
        ``float64`` array, one per row.
    windows
        ``(first_row, last_row)`` pairs, both inclusive, in time order and disjoint.

    Examples
    --------
    >>> s = NabSeries.from_rows("toy.csv", n_rows=10, windows=[(4, 6)])
    >>> s.n_rows, s.windows, s.window_widths().tolist()
    (10, ((4, 6),), [3])
    """

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise NabDataError(
                f"{self.name}: {len(self.timestamps)} timestamps but {len(self.values)} values"
            )
        previous_last = -1
        for first, last in self.windows:
            if not previous_last < first <= last < len(self.values):
                raise NabDataError(
                    f"{self.name}: window rows ({first}, {last}) are not increasing, "
                    f"disjoint and inside 0..{len(self.values) - 1}"
                )
            previous_last = last

    @property
    def n_rows(self) -> int:
        """Number of rows (points) in the series."""
        return len(self.values)

    def window_widths(self) -> np.ndarray:
        """Number of rows in each window (``last - first + 1``)."""
        return np.array([last - first + 1 for first, last in self.windows], dtype=np.int64)

    @classmethod
    def from_rows(
        cls, name: str, n_rows: int, windows: list[tuple[int, int]] | None = None
    ) -> NabSeries:
        """A series of ``n_rows`` zero values at one-minute steps, for tests and examples."""
        start = np.datetime64("2020-01-01T00:00:00", "us")
        timestamps = start + np.arange(n_rows) * np.timedelta64(60, "s").astype("timedelta64[us]")
        return cls(name, timestamps, np.zeros(n_rows), tuple(windows or ()))


@dataclass(frozen=True, eq=False)
class NabCorpus:
    """The NAB series (by name) and cost profiles (by name).

    Examples
    --------
    >>> corpus = NabCorpus({"toy.csv": NabSeries.from_rows("toy.csv", 10, [(4, 6)])})
    >>> corpus.n_windows, sorted(corpus.profiles)[0]
    (1, 'reward_low_FN_rate')
    """

    series: Mapping[str, NabSeries]
    profiles: Mapping[str, CostProfile] = field(
        default_factory=lambda: {p.name: p for p in STANDARD_PROFILES}
    )
    root: Path | None = None

    @property
    def n_windows(self) -> int:
        """Number of labelled anomaly windows over all series."""
        return sum(len(s.windows) for s in self.series.values())

    def __len__(self) -> int:
        return len(self.series)


def resolve_nab_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the NAB root from ``data_dir`` or, if that is ``None``, ``$BASELINER_DATA``.

    Accepts the NAB root itself or a folder holding it as ``nab/``.

    Raises
    ------
    NabDataError
        If neither is given, or neither folder holds ``labels/combined_windows.json``.
    """
    return resolve_dataset_dir(
        data_dir,
        "nab",
        lambda folder: (folder / WINDOWS_FILE).is_file(),
        NabDataError,
        "NAB corpus",
    )


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """Read NAB's ``config/profiles.json`` (the ``tnWeight`` is unused by NAB's score)."""
    raw = json.loads(path.read_text())
    profiles: dict[str, CostProfile] = {}
    for name, body in raw.items():
        try:
            cost = body["CostMatrix"]
            profiles[name] = CostProfile(
                name, float(cost["tpWeight"]), float(cost["fpWeight"]), float(cost["fnWeight"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NabDataError(f"{path}: profile {name!r} has no valid CostMatrix") from exc
    return profiles


def _read_timestamp_csv(source: Path | io.BytesIO, value_column: str, label: str) -> pl.DataFrame:
    try:
        frame = pl.read_csv(source, schema_overrides={value_column: pl.Float64})
        return frame.select(
            pl.col("timestamp").str.strptime(pl.Datetime("us"), _TS_FORMAT, strict=True),
            pl.col(value_column),
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise NabDataError(f"{label}: cannot read timestamp,{value_column}: {exc}") from exc


def _window_rows(
    name: str, timestamps: np.ndarray, limits: list[list[str]]
) -> tuple[tuple[int, int], ...]:
    """Map window limits (timestamps) to row indices: the first row carrying each limit.

    NAB scores by row index, and a few series repeat a timestamp (clock changes, duplicated
    samples), so a limit is matched to its first occurrence, as NAB does. A limit that is not
    the timestamp of some row is an error: NAB would silently never open that window.
    """
    rows = []
    for first_ts, last_ts in limits:
        pair = []
        for bound in (np.datetime64(first_ts, "us"), np.datetime64(last_ts, "us")):
            hits = np.flatnonzero(timestamps == bound)
            if len(hits) == 0:
                raise NabDataError(f"{name}: window limit {bound} is not a timestamp of the series")
            pair.append(int(hits[0]))
        rows.append((pair[0], pair[1]))
    return tuple(rows)


def load_nab(data_dir: str | os.PathLike[str] | None = None) -> NabCorpus:
    """Load the NAB corpus: every series named in ``labels/combined_windows.json``.

    Parameters
    ----------
    data_dir
        The NAB root or its parent; ``None`` reads ``$BASELINER_DATA``.

    Returns
    -------
    NabCorpus
        Series keyed by their path under ``data/`` (``"realTweets/Twitter_volume_FB.csv"``),
        windows as row indices, profiles from ``config/profiles.json``.
    """
    root = resolve_nab_dir(data_dir)
    limits_by_name: dict[str, list[list[str]]] = json.loads((root / WINDOWS_FILE).read_text())
    profiles_path = root / PROFILES_FILE
    profiles = (
        load_profiles(profiles_path)
        if profiles_path.is_file()
        else {p.name: p for p in STANDARD_PROFILES}
    )
    series: dict[str, NabSeries] = {}
    for name in sorted(limits_by_name):
        path = root / "data" / name
        frame = _read_timestamp_csv(path, "value", str(path))
        timestamps = frame["timestamp"].to_numpy()
        windows = _window_rows(name, timestamps, limits_by_name[name])
        series[name] = NabSeries(name, timestamps, frame["value"].to_numpy(), windows)
    log.info(
        "loaded NAB: %d series, %d windows from %s",
        len(series),
        sum(len(s.windows) for s in series.values()),
        root,
    )
    return NabCorpus(series, profiles, root)


def official_results_path(corpus: NabCorpus, detector: str, name: str) -> Path:
    """Where the official raw scores of ``detector`` on series ``name`` are stored."""
    if corpus.root is None:
        raise NabDataError("this corpus was not loaded from disk: no official results")
    folder, file_name = name.rsplit("/", 1)
    return corpus.root / OFFICIAL_RESULTS_DIR / detector / folder / f"{detector}_{file_name}.gz"


def load_official_scores(corpus: NabCorpus, detector: str) -> dict[str, np.ndarray]:
    """Read the published raw anomaly scores of ``detector`` for every series of ``corpus``.

    Each file must have exactly the timestamps of its data file, row for row.
    """
    scores: dict[str, np.ndarray] = {}
    for name, series in corpus.series.items():
        path = official_results_path(corpus, detector, name)
        if not path.is_file():
            raise NabDataError(f"{path}: missing official results of {detector!r} for {name}")
        with gzip.open(path, "rb") as handle:
            frame = _read_timestamp_csv(io.BytesIO(handle.read()), "anomaly_score", str(path))
        if not np.array_equal(frame["timestamp"].to_numpy(), series.timestamps):
            raise NabDataError(f"{path}: timestamps differ from data/{name}")
        values = frame["anomaly_score"].to_numpy()
        if np.isnan(values).any():
            raise NabDataError(f"{path}: missing anomaly_score values")
        scores[name] = values
    return scores


def load_final_results(corpus: NabCorpus) -> dict[str, dict[str, float]]:
    """The official normalised scoreboard: detector -> profile -> score."""
    if corpus.root is None:
        raise NabDataError("this corpus was not loaded from disk: no final results")
    raw: dict[str, dict[str, float]] = json.loads((corpus.root / FINAL_RESULTS_FILE).read_text())
    return raw


def load_official_thresholds(corpus: NabCorpus, detector: str) -> dict[str, float]:
    """The thresholds NAB's own optimiser chose for ``detector``: profile -> threshold."""
    if corpus.root is None:
        raise NabDataError("this corpus was not loaded from disk: no official thresholds")
    path = corpus.root / THRESHOLDS_FILE
    raw: dict[str, dict[str, dict[str, float]]] = json.loads(path.read_text())
    if detector not in raw:
        raise NabDataError(f"{path}: no thresholds for detector {detector!r}")
    return {profile: float(entry["threshold"]) for profile, entry in raw[detector].items()}

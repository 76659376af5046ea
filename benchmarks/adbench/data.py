"""The eight ADBench "Classical" tabular sets on disk, and the ADBench split protocol.

Each set is an ``.npz`` holding ``X`` (rows, features) and ``y`` (1 = anomaly). The data
directory is either the folder holding the ``.npz`` files or a parent holding it as
``adbench/`` (the ``BASELINER_DATA`` layout); it is never hard-coded.

The protocol follows ADBench's ``DataGenerator`` (Han et al., NeurIPS 2022): a set larger than
``max_rows`` (10,000 in ADBench) is first subsampled uniformly at random, then split 70/30
stratified on the label, and both parts are min-max scaled with the training part's ranges.
Labels are used only to stratify the split and to score the test part, never to fit. One
difference: where ADBench's uniform draw leaves fewer than 2 rows of a class (smtp: 30
anomalies in 95,156 rows, about 3 expected in 10,000), its stratified split fails; ours draws
again (see :func:`uniform_subsample`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks.datadir import resolve_dataset_dir
from models.base import FloatArray

log = logging.getLogger(__name__)

ADBENCH_SETS: tuple[str, ...] = (
    "16_http",
    "34_smtp",
    "32_shuttle",
    "6_cardio",
    "38_thyroid",
    "23_mammography",
    "30_satellite",
    "28_pendigits",
)
"""The eight sets held under ``adbench/``, by file stem."""

ADBENCH_MAX_ROWS = 10_000
"""ADBench subsamples any set larger than this before splitting (its ``DataGenerator``)."""

LabelVector = NDArray[np.int64]


class AdbenchDataError(ValueError):
    """A set is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class AdbenchSplit:
    """One seeded train/test split of one set, min-max scaled on the training part.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20, dtype=float).reshape(10, 2)
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> split = split_adbench(X, y, seed=0, test_size=0.5)
    >>> split.X_train.shape, int(split.y_test.sum())
    ((5, 2), 1)
    """

    X_train: FloatArray
    X_test: FloatArray
    y_train: LabelVector
    y_test: LabelVector


def resolve_adbench_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the folder of ``.npz`` sets from ``data_dir`` or ``$BASELINER_DATA``.

    Raises
    ------
    AdbenchDataError
        If neither is given, or neither the folder nor its ``adbench/`` holds a known set.
    """
    return resolve_dataset_dir(
        data_dir,
        "adbench",
        lambda folder: any((folder / f"{name}.npz").is_file() for name in ADBENCH_SETS),
        AdbenchDataError,
        "ADBench .npz sets",
    )


def load_adbench_set(
    data_dir: str | os.PathLike[str] | None, name: str
) -> tuple[FloatArray, LabelVector]:
    """Load one set as (float64 X, int64 y with 1 = anomaly).

    Parameters
    ----------
    data_dir : path or None
        The folder of ``.npz`` files or its parent; ``None`` reads ``$BASELINER_DATA``.
    name : str
        A file stem such as ``"38_thyroid"`` (a short name such as ``"thyroid"`` also works).
    """
    folder = resolve_adbench_dir(data_dir)
    stem = next((s for s in ADBENCH_SETS if name in (s, s.split("_", 1)[1])), name)
    path = folder / f"{stem}.npz"
    if not path.is_file():
        raise AdbenchDataError(f"{path}: no such ADBench set")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive or "y" not in archive:
                keys = list(archive.keys())
                raise AdbenchDataError(f"{path}: expected arrays X and y, got {keys}")
            X = np.asarray(archive["X"], dtype=np.float64)
            y = np.asarray(archive["y"]).astype(np.int64).reshape(-1)
    except AdbenchDataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, TypeError) as exc:
        # A truncated or damaged download: numpy/zipfile say so in several ways.
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AdbenchDataError(f"{path}: not a readable .npz ({reason[:200]})") from None
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise AdbenchDataError(f"{path}: X {X.shape} and y {y.shape} do not align")
    if not np.all(np.isfinite(X)):
        raise AdbenchDataError(f"{path}: X has NaN or infinite values")
    return X, y


def stratified_subsample(y: LabelVector, size: int, *, seed: int) -> NDArray[np.intp]:
    """Sorted indices of ``size`` rows drawn at random per class, each class keeping its share.

    Not ADBench's draw (uniform, :func:`uniform_subsample`, which the benchmark uses since
    session 7): it reads the labels to fix each class's count (at least 2 rows of every class
    present), so the anomaly share of the sample does not vary. Kept for comparison.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 990 + [1] * 10)
    >>> keep = stratified_subsample(y, 100, seed=0)
    >>> keep.size, int(y[keep].sum())
    (100, 2)
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    wanted = np.maximum(np.round(counts * size / y.size).astype(np.int64), 2)
    wanted = np.minimum(wanted, counts)
    # Rounding and the floor of 2 can overshoot; the largest class absorbs the difference.
    wanted[np.argmax(counts)] -= int(wanted.sum()) - size
    chosen = [
        rng.choice(np.flatnonzero(y == label), size=int(n), replace=False)
        for label, n in zip(classes, wanted, strict=True)
    ]
    keep: NDArray[np.intp] = np.sort(np.concatenate(chosen))
    return keep


SUBSAMPLE_MAX_DRAWS = 100
"""Draws :func:`uniform_subsample` tries before giving up on a set."""


def uniform_subsample(y: LabelVector, size: int, *, seed: int) -> NDArray[np.intp]:
    """Sorted indices of ``size`` rows drawn uniformly at random, as ADBench draws them.

    The labels are used only to reject a draw that leaves fewer than 2 rows of a class
    present in ``y`` (no stratified split exists then; ADBench's own run fails there): the
    next draw of the same seeded generator is taken instead, so the draw is uniform
    conditioned on every class having 2 rows.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 990 + [1] * 10)
    >>> keep = uniform_subsample(y, 500, seed=0)
    >>> keep.size, bool(np.all(np.diff(keep) > 0)), int(y[keep].sum()) >= 2
    (500, True, True)
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    floor = np.minimum(counts, 2)
    for draw in range(SUBSAMPLE_MAX_DRAWS):
        keep: NDArray[np.intp] = np.sort(rng.choice(y.size, size=size, replace=False))
        kept = np.array([int(np.sum(y[keep] == label)) for label in classes])
        if np.all(kept >= floor):
            if draw:
                log.info("subsample seed %d: %d draw(s) left a class under 2 rows", seed, draw)
            return keep
    raise AdbenchDataError(
        f"{SUBSAMPLE_MAX_DRAWS} uniform draws of {size} rows all left a class with fewer than"
        " 2 rows; raise --max-rows"
    )


def split_adbench(
    X: FloatArray,
    y: LabelVector,
    *,
    seed: int,
    test_size: float = 0.3,
    max_rows: int | None = ADBENCH_MAX_ROWS,
    minmax: bool = True,
) -> AdbenchSplit:
    """ADBench's split: optional seeded subsample, stratified split, train-fitted min-max.

    Parameters
    ----------
    X, y : arrays
        The whole set.
    seed : int
        Seeds both the subsample and the split.
    test_size : float
        Share of rows in the test part (0.3 in ADBench).
    max_rows : int or None
        Subsample larger sets to this many rows first, uniformly as ADBench does (10,000
        there; see :func:`uniform_subsample`); ``None`` keeps all.
    minmax : bool
        Scale each feature to [0, 1] with the training part's min and max.
    """
    from sklearn.model_selection import train_test_split

    if max_rows is not None and X.shape[0] > max_rows:
        keep = uniform_subsample(y, max_rows, seed=seed)
        X, y = X[keep], y[keep]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, shuffle=True, stratify=y, random_state=seed
    )
    if minmax:
        low = X_train.min(axis=0)
        span = X_train.max(axis=0) - low
        span[span == 0.0] = 1.0
        X_train = (X_train - low) / span
        X_test = (X_test - low) / span
    return AdbenchSplit(
        X_train=np.ascontiguousarray(X_train, dtype=np.float64),
        X_test=np.ascontiguousarray(X_test, dtype=np.float64),
        y_train=np.asarray(y_train, dtype=np.int64),
        y_test=np.asarray(y_test, dtype=np.int64),
    )

"""Input checks shared by the batch detectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray

LabelArray = NDArray[np.str_]


class NotFittedError(RuntimeError):
    """``decision_function`` (or a fitted-state accessor) called before ``fit``."""


def as_matrix(X: Any, *, n_features: int | None = None) -> FloatArray:
    """Return ``X`` as a 2-D finite float64 array, checking its width if ``n_features`` is set.

    Examples
    --------
    >>> as_matrix([[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> as_matrix([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN or infinite values; features must be finite
    """
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, features), got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("X has no rows")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("X contains NaN or infinite values; features must be finite")
    if n_features is not None and matrix.shape[1] != n_features:
        raise ValueError(
            f"X has {matrix.shape[1]} features, the detector was fitted on {n_features}"
        )
    return matrix


def as_labels(values: Any, n_rows: int, name: str) -> LabelArray | None:
    """Return a context array (``entities``/``groups``) as strings aligned with the rows.

    Examples
    --------
    >>> as_labels([1, 2], 2, "entities").tolist()
    ['1', '2']
    >>> as_labels(None, 2, "groups") is None
    True
    """
    if values is None:
        return None
    labels = np.asarray(values).astype(np.str_)
    if labels.shape != (n_rows,):
        raise ValueError(
            f"{name} must be 1-D with one label per row ({n_rows}), got {labels.shape}"
        )
    return labels


def require_fitted(detector: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``detector`` has the fitted ``attribute``."""
    if not hasattr(detector, attribute):
        raise NotFittedError(f"{type(detector).__name__} is not fitted; call fit(X) first")

"""How a window's per-feature surprises become one score: the largest behaviours, each once.

The ``tail`` detectors (the scan's :class:`models.batch.baselines.TailBaselineDetector` and the
daemon's :class:`detector.online_scoring.OnlineScorer`) weigh each feature's deviation as a
surprise (nines of rarity) and score a window by the sum of its ``top_k`` largest. One act
often shows in several correlated features: an admin's night of work raises off-hours
authentications, the logon-hour deviation and off-hours events together. Summed feature by
feature, that one act is counted twice and outranks an insider whose act shows in one feature.

So features may be tagged with the behaviour they measure (a *group*: integer ids, one per
feature column, as :func:`features.spec.group_ids` gives them from the specs; this package
sees numbers only). A group's surprise is the largest of its members'; the score sums the
``top_k`` largest group surprises. Without groups (``None``), or when every feature is a group
of its own, the score is the sum of the ``top_k`` largest feature surprises, as before.

Both the batch and the online path call :func:`top_k_group_sum`, so they cannot drift apart.

Examples
--------
>>> import numpy as np
>>> surprise = np.array([[3.0, 2.5, 2.0, 1.0]])  # one act in columns 0-2, another in 3
>>> top_k_group_sum(surprise, 2).tolist()
[5.5]
>>> top_k_group_sum(surprise, 2, [0, 0, 0, 1]).tolist()
[4.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatMatrix = NDArray[np.float64]


def group_codes(
    feature_groups: Sequence[int] | NDArray[Any] | None, width: int
) -> NDArray[np.intp] | None:
    """Validated group ids of ``width`` feature columns, or ``None`` when nothing is grouped.

    ``None`` also when every column is a group of its own: the combination is then the plain
    sum of the largest feature surprises, and skipping the group maxima keeps it exactly so.

    Examples
    --------
    >>> group_codes([0, 1, 1], 3).tolist()
    [0, 1, 1]
    >>> group_codes([4, 2, 9], 3) is None, group_codes(None, 3) is None
    (True, True)
    >>> group_codes([0, 1], 3)
    Traceback (most recent call last):
    ...
    ValueError: feature_groups must hold one integer id per feature (3), got shape (2,)
    """
    if feature_groups is None:
        return None
    codes = np.asarray(feature_groups)
    if codes.shape != (width,) or (codes.size and codes.dtype.kind not in "iu"):
        raise ValueError(
            f"feature_groups must hold one integer id per feature ({width}), got shape "
            f"{codes.shape}"
        )
    if np.unique(codes).size == width:
        return None
    return codes.astype(np.intp, copy=False)


def group_maxima(values: FloatMatrix, codes: NDArray[np.intp]) -> FloatMatrix:
    """Per row, the largest value of each group's columns (groups in ascending id order).

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]])
    >>> group_maxima(values, np.array([7, 3, 7])).tolist()
    [[5.0, 2.0], [0.0, 4.0]]
    """
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    maxima: FloatMatrix = np.maximum.reduceat(values[:, order], starts, axis=1)
    return maxima


def sum_of_largest(
    values: FloatMatrix, k: int, strongest: FloatMatrix | None = None
) -> FloatMatrix:
    """The sum of each row's ``k`` largest values, added in ascending order (as summing them
    after a full sort does); ``strongest``, each row's largest, when the caller has it.

    ``k`` of 2 (the default ``top_k``) is the largest plus the largest of the rest, without a
    partition of every row (the same sum, but a signed zero: a sum starts from 0).

    Examples
    --------
    >>> import numpy as np
    >>> surprise = np.array([[0.5, 3.0, 1.0], [2.0, 2.0, -0.0], [-0.0, -0.0, -0.0]])
    >>> sum_of_largest(surprise, 2).tolist()
    [4.0, 4.0, 0.0]
    >>> sum_of_largest(surprise, 3).tolist()
    [4.5, 4.0, 0.0]
    """
    count, width = values.shape
    if not width:
        return np.zeros(count)
    if k == 2 and width >= 2:
        if strongest is None:
            strongest = values.max(axis=1)
        rest = values.copy()
        rest[np.arange(count), values.argmax(axis=1)] = -np.inf
        return np.asarray((rest.max(axis=1) + 0.0) + strongest, dtype=np.float64)
    largest = np.partition(values, width - k, axis=1)[:, width - k :]
    largest.sort(axis=1)
    return np.asarray(largest.sum(axis=1), dtype=np.float64)


def top_k_group_sum(
    surprise: FloatMatrix,
    top_k: int,
    feature_groups: Sequence[int] | NDArray[Any] | None = None,
    *,
    strongest: FloatMatrix | None = None,
) -> FloatMatrix:
    """Score rows of per-feature surprises: the sum of the ``top_k`` largest group surprises.

    Parameters
    ----------
    surprise : ndarray of shape (n_rows, n_features)
        Per-feature surprises (>= 0).
    top_k : int
        Groups summed per row (at least 1, at most the number of groups).
    feature_groups : sequence of int, optional
        The group id of each feature column; ``None``: every feature is its own group.
    strongest : ndarray of shape (n_rows,), optional
        Each row's largest surprise, when the caller has it (the largest group surprise is
        the same number).

    Returns
    -------
    ndarray of shape (n_rows,)
        float64 scores.

    Examples
    --------
    >>> import numpy as np
    >>> surprise = np.array([[4.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    >>> top_k_group_sum(surprise, 2, [0, 0, 1]).tolist()  # max(4, 3) + 1, max(0, 2) + 2
    [5.0, 4.0]
    >>> top_k_group_sum(surprise, 5, [0, 0, 1]).tolist()  # two groups only
    [5.0, 4.0]
    """
    codes = group_codes(feature_groups, surprise.shape[1])
    if codes is not None:
        surprise = group_maxima(surprise, codes)
    k = max(1, min(top_k, surprise.shape[1]))
    return sum_of_largest(surprise, k, strongest)

"""Helpers shared by the online detectors: reserved keys and a windowed empirical CDF."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping

RESERVED_PREFIX = "__"
"""Keys starting with it carry context (e.g. ``"__ts"``), never a feature to model."""

TIMESTAMP_KEY = "__ts"
"""The reserved key holding the window time, in epoch seconds (UTC)."""


def feature_items(x: Mapping[str, float]) -> dict[str, float]:
    """The modelled features of ``x``: reserved keys dropped, values as finite floats.

    Non-finite values become 0.0 so one bad number cannot poison a running statistic.

    Examples
    --------
    >>> feature_items({"logons": 3, "__ts": 1.7e9, "bad": float("nan")})
    {'logons': 3.0, 'bad': 0.0}
    """
    features: dict[str, float] = {}
    for key, value in x.items():
        if key.startswith(RESERVED_PREFIX):
            continue
        number = float(value)
        features[key] = number if math.isfinite(number) else 0.0
    return features


class WindowedECDF:
    """The empirical CDF of the last ``size`` values pushed, exact and deterministic.

    A sorted copy of the window is kept beside the arrival order, so ``rank`` is a binary search
    and ``push`` is a list insertion (O(size) memory moves, fast for sizes up to a few thousand).

    Parameters
    ----------
    size : int
        Number of most recent values kept.

    Examples
    --------
    >>> ecdf = WindowedECDF(size=4)
    >>> for value in (1.0, 2.0, 3.0, 4.0, 5.0):
    ...     ecdf.push(value)
    >>> ecdf.rank(3.0), ecdf.rank(10.0), ecdf.quantile(0.5)
    (0.5, 1.0, 3.5)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def push(self, value: float) -> None:
        """Add ``value``; the oldest value leaves once the window is full."""
        if len(self._order) == self.size:
            oldest = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._order.append(value)
        bisect.insort(self._sorted, value)

    def rank(self, value: float) -> float:
        """Fraction of the window at or below ``value`` (0.5 when the window is empty)."""
        if not self._sorted:
            return 0.5
        return bisect.bisect_right(self._sorted, value) / len(self._sorted)

    def quantile(self, level: float) -> float:
        """The ``level`` quantile of the window (linear interpolation); NaN when empty."""
        if not self._sorted:
            return math.nan
        position = min(max(level, 0.0), 1.0) * (len(self._sorted) - 1)
        low = math.floor(position)
        high = min(low + 1, len(self._sorted) - 1)
        weight = position - low
        return self._sorted[low] * (1.0 - weight) + self._sorted[high] * weight

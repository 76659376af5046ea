"""Columnar event tables built from integer codes, and the CSV writer.

Every string column is an array of integer codes into a :class:`Vocab` (``-1`` = null), so
millions of rows stay cheap numpy arrays until the single gather at write time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

Array = npt.NDArray[Any]

CERT_DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
_UNIX = datetime(1970, 1, 1)
_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


class Vocab:
    """An append-only list of distinct strings addressed by integer codes.

    Examples
    --------
    >>> v = Vocab(["Logon", "Logoff"])
    >>> v.code("Logoff"), v.code("Connect"), len(v)
    (1, 2, 3)
    """

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._codes: dict[str, int] = {}
        self.items: list[str] = []
        for item in items:
            self.code(item)

    def code(self, item: str) -> int:
        """The code of ``item``, adding it if new."""
        found = self._codes.get(item)
        if found is None:
            found = len(self.items)
            self._codes[item] = found
            self.items.append(item)
        return found

    def codes(self, items: Sequence[str]) -> Array:
        """Codes of several items, as an int64 array."""
        return np.array([self.code(item) for item in items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)


class Table:
    """Rows accumulated as parts of parallel arrays, sorted and decoded once at the end.

    ``columns`` maps each column to its vocabulary, or to ``None`` for a plain integer column.
    ``add`` takes the event time in seconds since the period start and one array (or scalar,
    broadcast) per column.

    Examples
    --------
    >>> users = Vocab(["ACM2278", "BBX1001"])
    >>> t = Table({"user": users, "size": None})
    >>> t.add(np.array([30, 10]), user=np.array([0, 1]), size=np.array([5, 7]))
    >>> t.add(np.array([20]), user=0, size=3)
    >>> frame = t.frame()
    >>> frame["ts"].to_list(), frame["user"].to_list(), frame["size"].to_list()
    ([10, 20, 30], ['BBX1001', 'ACM2278', 'ACM2278'], [7, 3, 5])
    """

    def __init__(self, columns: dict[str, Vocab | None]) -> None:
        self.columns = columns
        self._parts: list[dict[str, Array]] = []

    def add(self, ts: Array, **values: Array | int) -> None:
        """Append rows; every column must be given (arrays of ``len(ts)`` or scalars)."""
        missing = set(self.columns) - set(values)
        if missing:
            raise KeyError(f"missing columns {sorted(missing)}")
        n = len(ts)
        part: dict[str, Array] = {"ts": np.asarray(ts, dtype=np.int64)}
        for name, value in values.items():
            if name not in self.columns:
                raise KeyError(f"unknown column {name!r}")
            array = np.asarray(value, dtype=np.int64)
            part[name] = np.broadcast_to(array, (n,)) if array.ndim == 0 else array
            if len(part[name]) != n:
                raise ValueError(f"column {name!r} has {len(part[name])} rows, expected {n}")
        self._parts.append(part)

    def __len__(self) -> int:
        return sum(len(part["ts"]) for part in self._parts)

    def timestamps(self) -> Array:
        """All event times (unsorted), for checks and ground truth."""
        if not self._parts:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([part["ts"] for part in self._parts])

    def frame(self, horizon: int | None = None) -> pl.DataFrame:
        """Sorted (stable, by time) rows with strings decoded; rows at or past ``horizon``
        seconds and before 0 are dropped (sessions running past the period end)."""
        names = ["ts", *self.columns]
        if self._parts:
            merged = {name: np.concatenate([p[name] for p in self._parts]) for name in names}
        else:
            merged = {name: np.empty(0, dtype=np.int64) for name in names}
        ts = merged["ts"]
        keep = ts >= 0
        if horizon is not None:
            keep &= ts < horizon
        order = np.flatnonzero(keep)
        order = order[np.argsort(ts[order], kind="stable")]
        series: list[pl.Series] = [pl.Series("ts", ts[order])]
        for name, vocab in self.columns.items():
            codes = merged[name][order]
            if vocab is None:
                series.append(pl.Series(name, codes))
                continue
            indices = pl.from_arrow(pa.array(codes.astype(np.uint32), mask=codes < 0))
            assert isinstance(indices, pl.Series)
            series.append(pl.Series(name, vocab.items, dtype=pl.String).gather(indices))
        return pl.DataFrame(series)


def _mix64(x: Array) -> Array:
    """SplitMix64 finaliser: a bijection on uint64, so distinct inputs give distinct outputs."""
    z = x ^ (x >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return np.asarray(z ^ (z >> np.uint64(31)))


def cert_ids(n: int, salt: int) -> pl.Series:
    """``n`` distinct CERT-shaped ids ``{XXXX-XXXXXXXX-XXXXXXXX}``, deterministic in ``salt``.

    The first 13 base-36 characters encode a bijective hash of ``(salt, row)``, which makes
    ids unique within a file and across files with different salts.

    Examples
    --------
    >>> ids = cert_ids(3, salt=1)
    >>> len(set(ids.to_list())), len(ids[0]), ids[0][0], ids[0][5], ids[0][-1]
    (3, 24, '{', '-', '}')
    >>> ids.to_list() == cert_ids(3, salt=1).to_list()
    True
    """
    with np.errstate(over="ignore"):
        value = _mix64(np.arange(n, dtype=np.uint64) + np.uint64(salt << 40))
        tail = _mix64(value ^ np.uint64(0x9E3779B97F4A7C15))
    chars = np.empty((n, 20), dtype=np.uint8)
    for position in range(13):
        chars[:, position] = _ALPHABET[(value % np.uint64(36)).astype(np.intp)]
        value = value // np.uint64(36)
    for position in range(13, 20):
        chars[:, position] = _ALPHABET[(tail % np.uint64(36)).astype(np.intp)]
        tail = tail // np.uint64(36)
    text = np.empty((n, 24), dtype=np.uint8)
    text[:, 0] = ord("{")
    text[:, 1:5] = chars[:, 0:4]
    text[:, 5] = ord("-")
    text[:, 6:14] = chars[:, 4:12]
    text[:, 14] = ord("-")
    text[:, 15:23] = chars[:, 12:20]
    text[:, 23] = ord("}")
    offsets = np.arange(0, 24 * n + 1, 24, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text.tobytes())
    )
    result = pl.from_arrow(strings)
    assert isinstance(result, pl.Series)
    return result.cast(pl.String).alias("id")


def write_cert_csv(
    frame: pl.DataFrame, path: Path, columns: Sequence[str], *, salt: int, start: date
) -> int:
    """Write a sorted event frame as a CERT CSV (``id,date,...``); returns the row count.

    ``frame`` has ``ts`` (seconds since ``start`` 00:00) and the other ``columns``.
    """
    epoch = int((datetime(start.year, start.month, start.day) - _UNIX).total_seconds())
    out = frame.select(
        cert_ids(frame.height, salt),
        pl.from_epoch(pl.col("ts") + epoch, time_unit="s").alias("date"),
        *[pl.col(c) for c in columns if c not in ("id", "date")],
    )
    out.write_csv(path, datetime_format=CERT_DATE_FORMAT)
    return out.height

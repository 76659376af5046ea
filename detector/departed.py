"""Entities the daemon let go, kept for the analyst: the "departed" rows of ``entities.csv``.

The daemon's features forget an entity evicted by ``max_entities`` or idle for ``idle_expiry``,
and the scorer drops its risk record with it (:meth:`OnlineScorer.forget
<detector.online_scoring.OnlineScorer.forget>`), so that memory stays bounded. A departed
insider (the user who leaves) would then vanish from ``entities.csv`` though its alerts stay in
the sinks. :class:`DepartedEntities` keeps a small row for each departed entity that had risk
or alerts: its risk record at departure, its strongest alert's id, why it left (``evicted`` or
``expired``). The table is capped (``daemon.departed_entities``); past the cap the least risky
rows are dropped first (lowest peak risk, then fewest alerts, then lowest peak score, then the
longest gone) and counted. It is checkpointed as plain data (:meth:`DepartedEntities.state`),
so a checkpoint holding it still loads in a build without it.

:func:`write_entities` writes the daemon's ``entities.csv``: the active entities and the
departed ones ranked together, with a ``status`` column (``active``, ``evicted``,
``expired``). A departed entity's risk keeps decaying by the half-life at write time, as an
active one's does.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detector.online_scoring import EntityRisk

#: Why an entity left: the features' cap evicted it, or it was idle past ``idle_expiry``.
DEPARTURE_REASONS = ("evicted", "expired")
#: Departed rows kept by default (``daemon.departed_entities``).
DEFAULT_DEPARTED_ROWS = 10_000
#: The columns of the daemon's ``entities.csv`` (the scorer's seven, then the new three).
ENTITY_COLUMNS = (
    "rank",
    "entity",
    "risk",
    "risk_now",
    "peak_window",
    "alerts",
    "windows",
    "status",
    "last_seen",
    "strongest_alert",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StrongestAlert:
    """An entity's highest-scoring alert emitted so far: its score and id.

    Examples
    --------
    >>> StrongestAlert(12.5, "3f2a").id
    '3f2a'
    """

    score: float
    id: str


@dataclass(frozen=True)
class Departed:
    """One departed entity: its risk record when it left, why, and its strongest alert.

    Examples
    --------
    >>> row = Departed(EntityRisk("ann", risk=1.0, peak=2.0, alerts=1), "expired")
    >>> row.rank_key()
    (-2.0, -1, inf, 'ann')
    """

    record: EntityRisk
    reason: str
    strongest: StrongestAlert | None = None

    def rank_key(self) -> tuple[float, int, float, str]:
        """The order of ``entities.csv`` (riskiest first), as the scorer ranks entities."""
        return _rank_key(self.record)


def _rank_key(record: EntityRisk) -> tuple[float, int, float, str]:
    """Riskiest first: highest peak risk, then most alerts, highest peak score, name."""
    return (-record.peak, -record.alerts, -record.peak_score, record.entity)


def _merged(earlier: Departed, later: Departed, half_life_days: float) -> Departed:
    """One row for an entity that departed, came back and departed again.

    Its risk is what it would be had it never been forgotten: the earlier risk decayed to
    the later departure, plus the later one. Alerts and windows add up, the peak is the
    higher (or that risk, if higher still), the strongest alert the higher-scoring one.
    """
    old, new = earlier.record, later.record
    peak, peak_window = (
        (old.peak, old.peak_window) if old.peak > new.peak else (new.peak, new.peak_window)
    )
    risk = old.now(new.day, half_life_days) + new.risk
    if risk > peak:  # the two stays together rose higher than either: at the last window
        peak, peak_window = risk, _EPOCH + timedelta(days=new.day)
    record = replace(
        new,
        risk=risk,
        peak=peak,
        peak_window=peak_window,
        alerts=old.alerts + new.alerts,
        windows=old.windows + new.windows,
        evidence_windows=old.evidence_windows + new.evidence_windows,
        peak_score=max(old.peak_score, new.peak_score),
    )
    strongest = later.strongest
    if earlier.strongest is not None and (
        strongest is None or earlier.strongest.score > strongest.score
    ):
        strongest = earlier.strongest
    return Departed(record, later.reason, strongest)


class DepartedEntities:
    """The bounded table of departed entities (see the module documentation).

    Parameters
    ----------
    max_rows
        Rows kept; past it the least risky are dropped (counted in :attr:`dropped`). 0 keeps
        none.

    Examples
    --------
    >>> table = DepartedEntities(max_rows=1)
    >>> table.add(EntityRisk("ann", risk=2.0, peak=3.0, alerts=1), "expired", half_life_days=7)
    True
    >>> table.add(EntityRisk("bob", risk=0.5, peak=0.5), "evicted", half_life_days=7)
    True
    >>> table.trim()
    1
    >>> [(row.record.entity, row.reason) for row in table.rows()], table.dropped
    ([('ann', 'expired')], 1)
    >>> table.add(EntityRisk("cy"), "evicted", half_life_days=7)  # no risk, no alert
    False
    """

    def __init__(self, max_rows: int = DEFAULT_DEPARTED_ROWS) -> None:
        self.dropped = 0
        """Rows dropped by the cap since the table began (checkpointed)."""
        self._rows: dict[str, Departed] = {}
        self.set_max_rows(max_rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, entity: object) -> bool:
        return entity in self._rows

    def add(
        self,
        record: EntityRisk,
        reason: str,
        *,
        half_life_days: float,
        strongest: StrongestAlert | None = None,
    ) -> bool:
        """Keep the row of an entity that left, if it had risk or alerts; whether it was kept.

        An entity already in the table (it came back and left again) keeps one row, merged
        (its risk as if it had never been forgotten). Call :meth:`trim` after a batch of adds.
        """
        if reason not in DEPARTURE_REASONS:
            raise ValueError(f"reason must be one of {DEPARTURE_REASONS}, got {reason!r}")
        if not (record.risk > 0.0 or record.alerts > 0):
            return False
        row = Departed(record, reason, strongest)
        earlier = self._rows.get(record.entity)
        self._rows[record.entity] = (
            row if earlier is None else _merged(earlier, row, half_life_days)
        )
        return True

    def trim(self) -> int:
        """Drop the least risky rows beyond :attr:`max_rows`; the rows dropped."""
        excess = len(self._rows) - self.max_rows
        if excess <= 0:
            return 0
        # Least risky first: lowest peak, fewest alerts, lowest peak score, longest gone.
        ordered = sorted(
            self._rows.values(),
            key=lambda row: (
                row.record.peak,
                row.record.alerts,
                row.record.peak_score,
                row.record.day,
                row.record.entity,
            ),
        )
        for row in ordered[:excess]:
            del self._rows[row.record.entity]
        self.dropped += excess
        return excess

    def set_max_rows(self, max_rows: int) -> None:
        """Adopt another cap (a restored table given a changed config); trims at once."""
        if max_rows < 0:
            raise ValueError(f"max_rows must be >= 0, got {max_rows}")
        self.max_rows = max_rows
        self.trim()

    def rows(self) -> list[Departed]:
        """The rows, riskiest first (the order of ``entities.csv``)."""
        return sorted(self._rows.values(), key=Departed.rank_key)

    def state(self) -> dict[str, Any]:
        """The table as plain data (builtin types only) for a checkpoint.

        Examples
        --------
        >>> table = DepartedEntities(max_rows=5)
        >>> _ = table.add(EntityRisk("ann", risk=1.0, peak=1.0), "evicted", half_life_days=7,
        ...               strongest=StrongestAlert(9.5, "a1"))
        >>> again = DepartedEntities.from_state(table.state(), max_rows=5)
        >>> again.rows() == table.rows()
        True
        """
        rows = []
        for row in self._rows.values():
            record = row.record
            peak_us = (
                None
                if record.peak_window is None
                else (record.peak_window - _EPOCH) // timedelta(microseconds=1)
            )
            strongest = None if row.strongest is None else (row.strongest.score, row.strongest.id)
            rows.append(
                (
                    record.entity,
                    record.risk,
                    record.day,
                    record.peak,
                    peak_us,
                    record.alerts,
                    record.windows,
                    record.evidence_windows,
                    record.peak_score,
                    row.reason,
                    strongest,
                )
            )
        return {"version": 1, "dropped": self.dropped, "rows": rows}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, max_rows: int) -> DepartedEntities:
        """The table of :meth:`state` (``None``: a checkpoint written before it, empty)."""
        table = cls(max_rows)
        if not state:
            return table
        table.dropped = int(state.get("dropped", 0))
        for item in state.get("rows", ()):
            entity, risk, day, peak, peak_us, alerts, windows, evidence, peak_score = item[:9]
            reason, strongest = item[9], item[10]
            record = EntityRisk(
                entity,
                risk=risk,
                day=day,
                peak=peak,
                peak_window=None if peak_us is None else _EPOCH + timedelta(microseconds=peak_us),
                alerts=alerts,
                windows=windows,
                evidence_windows=evidence,
                peak_score=peak_score,
            )
            table._rows[entity] = Departed(
                record, reason, None if strongest is None else StrongestAlert(*strongest)
            )
        table.trim()
        return table


def _day_text(day: float) -> str:
    """A day (days since the epoch, a window start) as its ISO date."""
    if not math.isfinite(day):
        return ""
    return (_EPOCH + timedelta(days=day)).date().isoformat()


def write_entities(
    path: Path,
    active: Iterable[EntityRisk],
    departed: DepartedEntities,
    *,
    strongest: Mapping[str, StrongestAlert],
    last_day: float,
    half_life_days: float,
) -> int:
    """Write the daemon's ``entities.csv`` atomically (:data:`ENTITY_COLUMNS`); rows written.

    ``active``: the scorer's risk records; ``strongest``: the strongest alert of each active
    entity that has one; ``last_day``: the newest window start (days since the epoch), the
    "now" every risk is decayed to. Active and departed rows are ranked together by peak
    risk, then alerts, peak score and name (an entity that came back after leaving can have
    one row of each).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "entities.csv"
    >>> table = DepartedEntities()
    >>> ann = EntityRisk("ann", risk=4.0, day=0.0, peak=4.0, alerts=2, windows=5)
    >>> _ = table.add(ann, "expired", half_life_days=7.0, strongest=StrongestAlert(12.0, "ab12"))
    >>> write_entities(path, [EntityRisk("bob", risk=1.0, day=7.0, peak=1.0, windows=3)],
    ...                table, strongest={}, last_day=7.0, half_life_days=7.0)
    2
    >>> print(path.read_text().replace("\\r", ""), end="")
    rank,entity,risk,risk_now,peak_window,alerts,windows,status,last_seen,strongest_alert
    1,ann,4.0,2.0,,2,5,expired,1970-01-01,ab12
    2,bob,1.0,1.0,,0,3,active,1970-01-08,
    """
    rows: list[tuple[tuple[float, int, float, str, int], EntityRisk, str, str]] = []
    for record in active:
        best = strongest.get(record.entity)
        key = (*_rank_key(record), 0)
        rows.append((key, record, "active", "" if best is None else best.id))
    for row in departed.rows():
        key = (*row.rank_key(), 1)
        best_id = "" if row.strongest is None else row.strongest.id
        rows.append((key, row.record, row.reason, best_id))
    rows.sort(key=lambda item: item[0])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ENTITY_COLUMNS)
        for rank, (_, record, status, best_id) in enumerate(rows, start=1):
            peak_window = (
                "" if record.peak_window is None else record.peak_window.date().isoformat()
            )
            writer.writerow(
                [
                    rank,
                    record.entity,
                    round(record.peak, 6),
                    round(record.now(last_day, half_life_days), 6),
                    peak_window,
                    record.alerts,
                    record.windows,
                    status,
                    _day_text(record.day) if record.windows else "",
                    best_id,
                ]
            )
    os.replace(tmp, path)
    return len(rows)

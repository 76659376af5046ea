"""The daemon's watermark over several sources: the slowest active source decides.

Each source moves through event time at its own pace: a file read to its end in one poll, a
backlog read after a restart, a live listener. Windows may close only when every source has
passed them, so the event time the watermark may reach is the *minimum* over the sources of
each one's newest event time (the allowed lateness is taken off by the windowing stage), the
rule of stream processors such as Flink:

- A source *holds* the watermark at the newest event time it has handed on. One that has
  handed on no event yet (since the start) holds it where it is: nothing more closes.
- A source that has handed on no event for ``source_idle`` wall seconds stops holding; it
  holds again from its next event. The wait starts at the source's first read, not at the
  start: a source the first poll has not reached yet (the sources before it have long
  backlogs) may be full of events. A stream that has ended (stdin) never holds.
- When no source holds, the watermark is the newest event time of all (with a single
  source, always the case outside its own batch: nothing changes for one source).
- When no source has handed on an event for ``close_idle_after`` wall seconds, the
  watermark advances with the wall clock: the newest event time plus the wall time since
  the last event, so that a quiet stream still has its last windows scored.

Activity is counted in events (parsed lines dated no further than ``max_future`` ahead), not
in lines: a source whose lines are all dead letters or not modelled would otherwise hold
every window open for as long as it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

#: Below every event time: a hold that lets nothing more close.
NOTHING_CLOSES: Final = -(2**62)


class SourceWatermarks:
    """Per source, the newest event time and when it last handed on an event (wall clock).

    Parameters
    ----------
    names
        The sources.
    source_idle
        Seconds without an event after which a source stops holding the watermark.
    close_idle_after
        Seconds without an event from any source after which the watermark advances with
        the wall clock; ``None``: never.
    now
        The wall time (monotonic seconds) of the start, from which ``close_idle_after`` is
        counted.

    Examples
    --------
    >>> marks = SourceWatermarks(["vpn", "proxy"], source_idle=60, close_idle_after=300, now=0)
    >>> marks.polled("vpn", now=0.5)
    >>> marks.saw("vpn", 5_000, now=1)  # vpn read to its end; proxy has sent nothing yet
    >>> marks.hold_for("vpn", now=1) == marks.bound(5_000, now=1) == NOTHING_CLOSES
    True
    >>> marks.saw("proxy", 2_000, now=2)
    >>> marks.hold_for("proxy", now=2), marks.bound(5_000, now=2)  # proxy is behind
    (5000, 2000)
    >>> marks.bound(5_000, now=61.5)  # vpn idle (since 1): proxy alone holds
    2000
    >>> marks.bound(5_000, now=63)  # both idle: the newest time
    5000
    >>> marks.bound(5_000, now=302)  # quiet for 300 s: 300 s past the newest time
    300005000
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        source_idle: float,
        close_idle_after: float | None,
        now: float,
    ) -> None:
        self.source_idle = source_idle
        self.close_idle_after = close_idle_after
        self._newest: dict[str, int | None] = dict.fromkeys(names)
        # When each source last handed on an event (None: not read yet, it holds).
        self._active_at: dict[str, float | None] = dict.fromkeys(self._newest)
        self._ended: set[str] = set()
        self._last_event_at = now

    def saw(self, name: str, newest_us: int | None, *, now: float) -> None:
        """Record that ``name`` handed on events, the newest at ``newest_us`` (``None``: it
        handed on none, which changes nothing)."""
        if newest_us is None:
            return
        known = self._newest[name]
        self._newest[name] = newest_us if known is None else max(known, newest_us)
        self._active_at[name] = now
        self._last_event_at = now

    def polled(self, name: str, *, now: float) -> None:
        """``name`` was read (with or without records): the first read starts its idle wait."""
        if self._active_at[name] is None:
            self._active_at[name] = now

    def end(self, name: str) -> None:
        """``name`` has ended (stdin at its end): it never holds again."""
        self._ended.add(name)

    def holding(self, now: float) -> list[str]:
        """The sources that hold the watermark at wall time ``now``."""
        return [
            name
            for name, active_at in self._active_at.items()
            if name not in self._ended and (active_at is None or now - active_at < self.source_idle)
        ]

    def newest(self, name: str) -> int | None:
        """The newest event time ``name`` handed on since the start (``None``: none)."""
        return self._newest[name]

    def hold_for(self, name: str, *, now: float) -> int | None:
        """The cap on the event time a batch of ``name`` may move the watermark to: the
        newest time of the slowest other holding source (:data:`NOTHING_CLOSES` if one has
        handed on nothing yet); ``None`` when no other source holds."""
        return self._minimum(other for other in self.holding(now) if other != name)

    def bound(self, newest_us: int | None, *, now: float) -> int | None:
        """The event time the watermark may reach now, between batches.

        ``newest_us`` is the newest event time of all sources so far, checkpoints included
        (``None``: none yet, and nothing is returned).
        """
        if newest_us is None:
            return None
        quiet = now - self._last_event_at
        if self.close_idle_after is not None and quiet >= self.close_idle_after:
            return newest_us + int(quiet * 1_000_000)
        held = self._minimum(self.holding(now))
        return newest_us if held is None else held

    def _minimum(self, names: Iterable[str]) -> int | None:
        times = [self._newest[name] for name in names]
        if not times:
            return None
        return min(NOTHING_CLOSES if t is None else t for t in times)


def newest_event_us(frame: pl.DataFrame, entity: str) -> int | None:
    """The newest ``ts`` (microseconds since the epoch) of the rows with an entity (the rows
    the windowing stage takes); ``None`` if there is none.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> frame = pl.DataFrame({"ts": [datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC),
    ...                              datetime(1970, 1, 1, 0, 0, 9, tzinfo=UTC)],
    ...                       "user": ["ann", None]})
    >>> newest_event_us(frame, "user")
    2000000
    """
    newest = frame.select(
        pl.col("ts").filter(pl.col(entity).is_not_null()).max().dt.epoch("us")
    ).item()
    return None if newest is None else int(newest)

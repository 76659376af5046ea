"""ColumnarOnline's hold and advance_to: a cap on the watermark from a batch, lifted later.

The daemon merges sources: a batch of one source may move the watermark no further than the
newest time of the slowest other source (``hold_us``), and the windows so held back close
when the cap rises (:meth:`ColumnarOnline.advance_to`). Without a hold nothing changes.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import polars as pl

from features import FeatureSpec, WindowConfig
from features.columnar import ColumnarOnline
from streams.batch import events_to_frame
from streams.event import Event

LOGONS = FeatureSpec(name="logons", kind="count", where={"action": "logon"})


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def logons(*moments: tuple[datetime, str]) -> pl.DataFrame:
    return events_to_frame([Event(ts, "x", "logon", user=user) for ts, user in moments])


def clock() -> ColumnarOnline:
    return ColumnarOnline(
        [LOGONS], WindowConfig(window="1h"), allowed_lateness=timedelta(minutes=5)
    )


def cells(vectors: pl.DataFrame) -> list[tuple[int, int, str, float]]:
    return [
        (start.day, start.hour, entity, value)
        for entity, start, value in vectors.select("entity", "window_start", "logons").rows()
    ]


def test_a_hold_keeps_windows_open_and_their_events_on_time() -> None:
    # Without a hold, 12:00 closes 09:00-10:00 and 10:00-11:00: the 10:30 row after it is late.
    batch = logons((at(1, 9, 10), "ann"), (at(1, 12, 0), "ann"), (at(1, 10, 30), "bob"))
    free = clock()
    late: list[int] = []
    assert cells(free.update_columns(batch, late_rows=late)) == [(1, 9, "ann", 1.0)]
    assert late == [2]

    # Held at 10:20 (another source's newest time), the batch closes up to 10:15 only: 09:00.
    held = clock()
    late = []
    closed = held.update_columns(batch, late_rows=late, hold_us=us(at(1, 10, 20)))
    assert cells(closed) == [(1, 9, "ann", 1.0)] and late == []
    assert held.watermark == at(1, 11, 55)  # still the newest time less the lateness
    assert held.closing_watermark == at(1, 10, 15)
    assert held.open_cells == 2  # bob's 10:00 and ann's 12:00

    # The cap rises to 11:30: 10:00 closes, with bob's event in it.
    seen: list[pl.DataFrame] = []
    assert cells(held.advance_to(us(at(1, 11, 30)), on_close=seen.append)) == [(1, 10, "bob", 1.0)]
    assert [cells(v) for v in seen] == [[(1, 10, "bob", 1.0)]]
    assert held.closing_watermark == at(1, 11, 25)
    # A row for the closed window is late now; one for 11:00 is not.
    late = []
    held.update_columns(logons((at(1, 10, 59), "bob"), (at(1, 11, 40), "bob")), late_rows=late)
    assert late == [0] and held.late_events == 1


def test_a_hold_below_the_time_reached_closes_nothing_more() -> None:
    online = clock()
    online.update_columns(logons((at(1, 9, 0), "ann"), (at(1, 10, 30), "ann")))
    assert online.closing_watermark == at(1, 10, 25)
    # Another source has sent nothing yet: it holds where the watermark is.
    never = -(2**62)
    closed = online.update_columns(logons((at(1, 14, 0), "ann")), hold_us=never)
    assert closed.height == 0 and online.closing_watermark == at(1, 10, 25)
    late: list[int] = []
    online.update_columns(logons((at(1, 10, 10), "bob")), late_rows=late, hold_us=never)
    assert late == [] and online.open_cells == 3


def test_advance_to_moves_the_clock_only_forwards_and_only_when_a_window_closes() -> None:
    online = clock()
    assert online.advance_to(us(at(1, 9, 0))).height == 0  # no event yet: nothing to close
    online.update_columns(logons((at(1, 9, 10), "ann")))
    assert online.advance_to(us(at(1, 9, 50))).height == 0
    assert online.closing_watermark == at(1, 9, 45)
    assert online.advance_to(us(at(1, 9, 20))).height == 0  # backwards: ignored
    assert online.closing_watermark == at(1, 9, 45)
    # Past the newest event (the input went quiet): 09:00 closes at 10:05.
    assert cells(online.advance_to(us(at(1, 10, 5)))) == [(1, 9, "ann", 1.0)]
    assert online.watermark == at(1, 9, 5) and online.newest_us == us(at(1, 9, 10))
    late: list[int] = []
    online.update_columns(logons((at(1, 9, 40), "ann")), late_rows=late)
    assert late == [0]


def test_a_state_saved_before_holds_resumes_at_its_newest_time() -> None:
    online = clock()
    online.update_columns(logons((at(1, 9, 10), "ann"), (at(1, 10, 30), "ann")))
    state = online.__getstate__()
    del state["_reached_us"]  # what a checkpoint of the previous build holds
    old = pickle.loads(pickle.dumps(online))
    old.__setstate__(state)
    assert old.closing_watermark == old.watermark == at(1, 10, 25)
    late: list[int] = []
    closed = old.update_columns(logons((at(1, 10, 40), "bob"), (at(1, 11, 10), "ann")))
    assert late == [] and cells(closed) == [(1, 10, "ann", 1.0), (1, 10, "bob", 1.0)]

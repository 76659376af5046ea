"""ColumnarOnline's entity recency, victims checked by name.

A restored state that did not track recency starts to (a cap or an expiry added on resume):
entities in the order of their last event, then evicted and expired from it. A cap and an
expiry with ties in event time and moves within the lateness pick what per-event
:class:`OnlineFeatures` picks. Checkpoints keep the ordered-dict layout, both ways."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features import FeatureSpec, WindowConfig
from features.columnar import ColumnarOnline
from features.online import OnlineFeatures
from streams.batch import events_from_frame, events_to_frame
from streams.event import Event

LOGONS = FeatureSpec(name="logons", kind="count", where={"action": "logon"})


def logons(*moments: tuple[int, str]) -> pl.DataFrame:
    return events_to_frame(
        [Event(datetime(2024, 1, 1, hour, tzinfo=UTC), "x", "logon", user=u) for hour, u in moments]
    )


def us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def names(features: ColumnarOnline) -> list[str]:
    return [entity for entity, _ in features.recency()]


def untracked() -> ColumnarOnline:
    """bob, ann and cyd seen first in that order, last at 3h, 5h and 4h; dan's 7h window is
    still open."""
    features = ColumnarOnline([LOGONS], WindowConfig(window="1h"))
    features.update_columns(logons((1, "bob"), (2, "ann"), (3, "cyd"), (3, "bob"), (4, "cyd")))
    features.update_columns(logons((5, "ann"), (7, "dan")))
    assert not features.tracks_recency
    return features


def test_tracking_orders_the_entities_by_their_last_event() -> None:
    features = untracked()
    features.track_recency()
    assert features.tracks_recency
    assert names(features) == ["bob", "cyd", "ann"]
    features.set_limits(timedelta(0), max_entities=2)
    features.update_columns(logons((9, "eve")))  # closes dan's 7h window: a fourth entity
    assert features.evicted == ["bob", "cyd"] and features.evictions == 2
    assert names(features) == ["ann", "dan"]


def test_an_idle_expiry_set_on_resume_expires_from_the_oldest() -> None:
    features = untracked()
    with pytest.raises(ValueError, match="needs entity recency tracking"):
        features.set_idle_expiry(timedelta(hours=3))
    features.track_recency()
    with pytest.raises(ValueError, match="shorter than a window"):
        features.set_idle_expiry(timedelta(minutes=30))
    features.set_idle_expiry(timedelta(hours=3))
    features.update_columns(logons((8, "dan")))  # closes 7h: horizon 8h, limit 5h
    assert features.evicted == ["bob", "cyd"] and features.expirations == 2
    assert names(features) == ["ann", "dan"]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, 1, hour, minute, tzinfo=UTC)


def batch(*moments: tuple[datetime, str]) -> pl.DataFrame:
    return events_to_frame([Event(ts, "x", "logon", user=user) for ts, user in moments])


def test_the_cap_evicts_by_recency_with_ties_as_per_event_updates_do() -> None:
    """Ties in event time: a window's new entities are appended by name; an entity seen
    again after its window closed moves behind them."""
    batches = [
        batch((at(9), "cyd"), (at(9), "bob"), (at(9), "ann"), (at(10), "dan")),
        batch((at(10), "bob"), (at(11), "eve")),
    ]
    features = ColumnarOnline([LOGONS], WindowConfig(window="1h"), max_entities=2)
    reference = OnlineFeatures([LOGONS], WindowConfig(window="1h"), max_entities=2)
    evicted: list[list[str]] = []
    for frame in batches:
        features.update_columns(frame)
        evicted.append(features.evicted[:])
        features.evicted.clear()
        for event in events_from_frame(frame):
            reference.update(event)
    # dan's 10:00 closes 9:00: ann, bob, cyd appended (by name), ann first out. bob's 10:00
    # moves bob behind cyd; 11:00 closes 10:00 and appends dan: cyd out.
    assert evicted == [["ann"], ["cyd"]]
    assert reference.evicted == ["ann", "cyd"] and features.evictions == 2
    assert features.recency() == [("bob", us(at(10))), ("dan", us(at(10)))]
    assert names(features) == list(reference._history)


def expiring() -> ColumnarOnline:
    return ColumnarOnline(
        [LOGONS],
        WindowConfig(window="1h"),
        allowed_lateness=timedelta(hours=1),
        idle_expiry=timedelta(hours=2),
    )


EXPIRING_BATCHES = [
    # dan's 11:05 takes the watermark to 10:05: 9:00 closes, ann, bob, cyd appended.
    batch((at(9), "ann"), (at(9, 10), "bob"), (at(9, 20), "cyd"), (at(11, 5), "dan")),
    # Within the lateness: cyd then ann move to the end, ann with the older time.
    batch((at(10, 30), "cyd"), (at(10, 20), "ann")),
    # Watermark 11:40: 10:00 closes; limit 9:40: bob (9:10) expires, cyd (10:30) stops it.
    batch((at(12, 40), "eve")),
    # Watermark 12:25: 11:00 closes, dan appended; limit 10:25: cyd (10:30) is in front,
    # so ann (10:20, behind it) stays.
    batch((at(13, 25), "eve")),
    # Watermark 13:31: 12:00 closes, eve appended; limit 11:31: cyd, ann, dan expire.
    batch((at(14, 31), "fay")),
]


def test_expiry_takes_the_idle_prefix_of_the_recency_order() -> None:
    features = expiring()
    reference = OnlineFeatures(
        [LOGONS],
        WindowConfig(window="1h"),
        allowed_lateness=timedelta(hours=1),
        idle_expiry=timedelta(hours=2),
    )
    expired: list[list[str]] = []
    for frame in EXPIRING_BATCHES:
        features.update_columns(frame)
        expired.append(features.evicted[:])
        features.evicted.clear()
        for event in events_from_frame(frame):
            reference.update(event)
    assert expired == [[], [], ["bob"], [], ["cyd", "ann", "dan"]]
    assert reference.evicted == ["bob", "cyd", "ann", "dan"] and features.expirations == 4
    # eve's 13:25 came before its first window closed: only that window's 12:40 counts.
    assert features.recency() == [("eve", us(at(12, 40)))]


def test_a_checkpoint_keeps_the_moves_of_open_windows_in_the_old_layout() -> None:
    """The pickled state is the layout of the ordered-dict days (entity -> time of last
    event, least recent first; buffered rows without ticks), and what it restores expires
    the same entities as the state that was not pickled."""
    features = expiring()
    for frame in EXPIRING_BATCHES[:2]:
        features.update_columns(frame)
    state = features.__getstate__()
    # cyd and ann were seen in the open 10:00 window: they moved behind bob.
    assert state["_history"] == OrderedDict(
        [("bob", us(at(9, 10))), ("cyd", us(at(10, 30))), ("ann", us(at(10, 20)))]
    )
    assert list(state["_history"]) == ["bob", "cyd", "ann"]
    assert all("__tick" not in frame.columns for frame in state["_buffer"])
    restored: ColumnarOnline = pickle.loads(pickle.dumps(features))
    for online in (features, restored):
        for frame in EXPIRING_BATCHES[2:]:
            online.update_columns(frame)
    assert restored.evicted == features.evicted == ["bob", "cyd", "ann", "dan"]
    assert restored.recency() == features.recency()


def test_a_checkpoint_of_the_ordered_dict_layout_loads() -> None:
    """A state written by the ordered-dict version (``_history`` entity -> last time, the
    buffer without ticks) loads, and its buffered rows do not move the order again."""
    features = expiring()
    for frame in EXPIRING_BATCHES[:2]:
        features.update_columns(frame)
    state = features.__getstate__()
    written = [("cyd", us(at(10, 30))), ("bob", us(at(9, 10))), ("ann", us(at(10, 20)))]
    state["_history"] = OrderedDict(written)
    old = ColumnarOnline.__new__(ColumnarOnline)
    old.__setstate__(state)
    assert old.recency() == written
    old.update_columns(EXPIRING_BATCHES[2])  # limit 9:40: cyd (10:30) in front, none
    assert old.evicted == [] and names(old) == ["cyd", "bob", "ann"]

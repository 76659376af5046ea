"""A restored ColumnarOnline that did not track recency starts to (a cap or an expiry added on
resume): entities in the order of their last event, then evicted and expired from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features import FeatureSpec, WindowConfig
from features.columnar import ColumnarOnline
from streams.batch import events_to_frame
from streams.event import Event

LOGONS = FeatureSpec(name="logons", kind="count", where={"action": "logon"})


def logons(*moments: tuple[int, str]) -> pl.DataFrame:
    return events_to_frame(
        [Event(datetime(2024, 1, 1, hour, tzinfo=UTC), "x", "logon", user=u) for hour, u in moments]
    )


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
    assert list(features._history) == ["bob", "cyd", "ann"]
    features.set_limits(timedelta(0), max_entities=2)
    features.update_columns(logons((9, "eve")))  # closes dan's 7h window: a fourth entity
    assert features.evicted == ["bob", "cyd"] and features.evictions == 2
    assert list(features._history) == ["ann", "dan"]


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
    assert list(features._history) == ["ann", "dan"]

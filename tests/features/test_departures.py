"""Why each entity left: ``drain_departed`` labels every eviction (the cap) and expiry (idle)
of ``ColumnarOnline`` and ``OnlineFeatures`` alike, in the order of ``evicted``."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features import FeatureSpec, WindowConfig
from features.columnar import ColumnarOnline
from features.online import EVICTED, EXPIRED, OnlineFeatures
from streams.batch import events_to_frame
from streams.event import Event

LOGONS = FeatureSpec(name="logons", kind="count", where={"action": "logon"})


def logons(*moments: tuple[int, str]) -> pl.DataFrame:
    return events_to_frame(
        [Event(datetime(2024, 1, 1, hour, tzinfo=UTC), "x", "logon", user=u) for hour, u in moments]
    )


def capped(kind: type[ColumnarOnline] | type[OnlineFeatures]) -> ColumnarOnline | OnlineFeatures:
    return kind(
        [LOGONS],
        WindowConfig(window="1h"),
        max_entities=2,
        idle_expiry=timedelta(hours=3),
    )


def take(features: ColumnarOnline | OnlineFeatures, frame: pl.DataFrame) -> None:
    if isinstance(features, ColumnarOnline):
        features.update_columns(frame)
    else:
        features.update_frame(frame)


KINDS = [ColumnarOnline, OnlineFeatures]


@pytest.mark.parametrize("kind", KINDS)
def test_each_departure_carries_its_reason_in_the_order_of_evicted(
    kind: type[ColumnarOnline] | type[OnlineFeatures],
) -> None:
    features = capped(kind)
    features.track_departures()
    # 4h closes 3h: cyd is the third entity, bob (last seen 1h) is evicted.
    take(features, logons((1, "bob"), (2, "ann"), (3, "cyd"), (4, "dan")))
    assert features.drain_departed() == [("bob", EVICTED)]
    assert features.drain_departed() == []
    # 8h closes 4h: dan is the third entity, ann (2h) is evicted; then, 3h idle before 8h,
    # cyd (3h) and dan (4h) expire.
    take(features, logons((8, "eve")))
    assert features.drain_departed() == [("ann", EVICTED), ("cyd", EXPIRED), ("dan", EXPIRED)]
    assert features.evicted == ["bob", "ann", "cyd", "dan"]
    assert (features.evictions, features.expirations) == (2, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_departures_are_kept_apart_from_the_evicted_hook(
    kind: type[ColumnarOnline] | type[OnlineFeatures],
) -> None:
    features = capped(kind)
    features.track_departures()
    take(features, logons((1, "bob"), (2, "ann"), (3, "cyd"), (4, "dan")))
    features.evicted.clear()  # as the daemon does once it has dropped their state
    assert features.drain_departed() == [("bob", EVICTED)]


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_recorded_until_tracking_is_asked_for(
    kind: type[ColumnarOnline] | type[OnlineFeatures],
) -> None:
    features = capped(kind)
    take(features, logons((1, "bob"), (2, "ann"), (3, "cyd"), (4, "dan")))
    assert features.evicted == ["bob"]
    assert features.departed is None and features.drain_departed() == []
    features.track_departures()
    take(features, logons((8, "eve")))
    assert features.drain_departed() == [("ann", EVICTED), ("cyd", EXPIRED), ("dan", EXPIRED)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_checkpoint_keeps_the_tracking_and_what_was_not_drained(
    kind: type[ColumnarOnline] | type[OnlineFeatures],
) -> None:
    features = capped(kind)
    features.track_departures()
    take(features, logons((1, "bob"), (2, "ann"), (3, "cyd"), (4, "dan")))
    restored = pickle.loads(pickle.dumps(features))
    assert restored.drain_departed() == [("bob", EVICTED)]
    take(restored, logons((8, "eve")))
    assert restored.drain_departed() == [("ann", EVICTED), ("cyd", EXPIRED), ("dan", EXPIRED)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_state_saved_before_departures_restores_untracked(
    kind: type[ColumnarOnline] | type[OnlineFeatures],
) -> None:
    features = capped(kind)
    take(features, logons((1, "bob"), (2, "ann"), (3, "cyd"), (4, "dan")))
    state = features.__getstate__()
    del state["departed"]
    restored = kind.__new__(kind)
    restored.__setstate__(state)
    assert restored.departed is None
    restored.track_departures()
    take(restored, logons((8, "eve")))
    assert restored.drain_departed() == [("ann", EVICTED), ("cyd", EXPIRED), ("dan", EXPIRED)]

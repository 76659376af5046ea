"""OnlineFeatures.update_frame: micro-batches give what update() gives event by event.

Parity is checked against the batch evaluator (the definition) and against per-event
``update`` (vectors, late events, evictions, recency order) on a synthetic organisation fed
in batches of several sizes, in time order and shuffled within the allowed lateness.
"""

from __future__ import annotations

import json
import pickle
import random
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from benchmarks.synthetic import generate
from features import FeatureSpec, WindowConfig, default_specs
from features.online import OnlineFeatures, WindowVector
from streams.batch import events_from_frame, events_to_frame, scan_events
from streams.event import Event
from tests.features._events import at
from tests.features.test_online import assert_parity

VISITS = FeatureSpec(name="visits", kind="count", where={"action": "http_visit"})


def visit(ts: datetime, user: str | None = "a", target: str | None = "x.com") -> Event:
    return Event(ts, "test", "http_visit", user=user, target=target)


@pytest.fixture(scope="module")
def org_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    out: Path = tmp_path_factory.mktemp("org")
    generate(out, users=30, days=14, seed=3)
    manifest = json.loads((out / "manifest.json").read_text())
    epoch = datetime.fromisoformat(str(manifest["lanl_epoch"]).replace("Z", "+00:00"))
    frames = [
        scan_events([out], "cert").events.collect(),
        scan_events([out / "auth.txt"], "lanl", lanl_epoch=epoch).events.collect(),
    ]
    return events_from_frame(pl.concat(frames).sort("ts", maintain_order=True))


def per_event(online: OnlineFeatures, events: list[Event]) -> list[WindowVector]:
    vectors: list[WindowVector] = []
    for event in events:
        vectors.extend(online.update(event))
    return vectors + online.flush()


def in_batches(online: OnlineFeatures, frame: pl.DataFrame, size: int) -> list[WindowVector]:
    vectors: list[WindowVector] = []
    for start in range(0, frame.height, size):
        vectors.extend(online.update_frame(frame.slice(start, size)))
    return vectors + online.flush()


def assert_same_vectors(got: list[WindowVector], expected: list[WindowVector]) -> None:
    assert [(v.entity, v.window_start, v.n_events) for v in got] == [
        (v.entity, v.window_start, v.n_events) for v in expected
    ]
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine.values) == list(theirs.values)
        for name, value in theirs.values.items():
            # Sums of floats may be added in another order.
            assert mine.values[name] == pytest.approx(value, abs=1e-9), (mine.entity, name)


@pytest.mark.parametrize(
    ("entity", "window", "size"),
    [("user", "1d", 251), ("user", "1d", 100_000), ("host", "1d", 1000), ("user", "1h", 2500)],
)
def test_batches_in_time_order_equal_batch(
    org_events: list[Event], entity: str, window: str, size: int
) -> None:
    config = WindowConfig(entity=entity, window=window)
    specs = default_specs(entity)
    frame = events_to_frame(org_events)
    vectors = in_batches(OnlineFeatures(specs, config), frame, size)
    batch = assert_parity(frame, vectors, specs, config)
    assert batch.height > 100
    # The vectors come in the order update() closes them.
    assert_same_vectors(vectors, per_event(OnlineFeatures(specs, config), org_events))


def test_batches_of_one_equal_update(org_events: list[Event]) -> None:
    specs = default_specs("user")
    config = WindowConfig(window="1h")
    prefix = org_events[:150]
    expected = per_event(OnlineFeatures(specs, config), prefix)
    got = in_batches(OnlineFeatures(specs, config), events_to_frame(prefix), 1)
    assert len(expected) > 10
    assert_same_vectors(got, expected)


@pytest.mark.parametrize("size", [3, 700, 100_000])
def test_shuffled_within_lateness_with_a_cap_equals_update(
    org_events: list[Event], size: int
) -> None:
    rng = random.Random(5)
    jitter = timedelta(minutes=40)
    # Arrival order: each event delayed by up to 40 min; a third of the lateness allowed,
    # so some events are late, and a cap that evicts.
    shuffled = sorted(org_events, key=lambda e: e.ts + rng.random() * jitter)
    if size == 3:
        shuffled = shuffled[:600]

    def make() -> OnlineFeatures:
        return OnlineFeatures(
            default_specs("user"),
            WindowConfig(window="1h"),
            allowed_lateness=jitter / 3,
            max_entities=12,
        )

    reference, batched = make(), make()
    expected = per_event(reference, shuffled)
    late_rows: list[int] = []
    frame = events_to_frame(shuffled)
    vectors: list[WindowVector] = []
    for start in range(0, frame.height, size):
        rows: list[int] = []
        vectors.extend(batched.update_frame(frame.slice(start, size), late_rows=rows))
        late_rows.extend(start + row for row in rows)
    vectors.extend(batched.flush())
    assert_same_vectors(vectors, expected)
    assert reference.late_events > 0 and batched.late_events == reference.late_events
    assert [shuffled[row] for row in late_rows] == reference.late
    assert batched.late == []
    assert reference.evictions > 0 and batched.evictions == reference.evictions
    assert list(batched._history) == list(reference._history)  # the same recency order


def test_late_rows_become_events_without_a_list() -> None:
    online = OnlineFeatures([VISITS], WindowConfig(), allowed_lateness=timedelta(hours=1))
    events = [visit(at(1, 12)), visit(at(2, 1)), visit(at(1, 23), "b"), visit(at(2, 2), None)]
    [closed] = online.update_frame(events_to_frame(events))
    assert (closed.window_start, closed.values) == (at(1, 0), {"visits": 1.0})
    assert online.late == [events[2]] and online.late_events == 1
    # The row without an entity neither counts nor moves the watermark.
    assert online.watermark == at(2, 0)


def test_a_window_closed_mid_batch_makes_later_rows_late() -> None:
    online = OnlineFeatures([VISITS], WindowConfig(window="1h"))
    events = [visit(at(1, 9, 10)), visit(at(1, 10, 0)), visit(at(1, 9, 59)), visit(at(1, 10, 5))]
    late: list[int] = []
    vectors = online.update_frame(events_to_frame(events), late_rows=late)
    assert [(v.window_start, v.n_events) for v in vectors] == [(at(1, 9), 1)]
    assert late == [2] and online.late_events == 1
    assert [(v.window_start, v.n_events) for v in online.flush()] == [(at(1, 10), 2)]


def test_mixing_update_and_update_frame_and_pickling(org_events: list[Event]) -> None:
    specs = default_specs("user")
    config = WindowConfig(window="1h")
    third = len(org_events) // 3
    expected = per_event(OnlineFeatures(specs, config), org_events)
    online = OnlineFeatures(specs, config)
    vectors: list[WindowVector] = []
    for event in org_events[:third]:
        vectors.extend(online.update(event))
    vectors.extend(online.update_frame(events_to_frame(org_events[third : 2 * third])))
    restored = pickle.loads(pickle.dumps(online))
    vectors.extend(restored.update_frame(events_to_frame(org_events[2 * third :])))
    assert_same_vectors(vectors + restored.flush(), expected)


def test_empty_and_entityless_frames_change_nothing() -> None:
    online = OnlineFeatures([VISITS], WindowConfig())
    assert online.update_frame(events_to_frame([])) == []
    assert online.update_frame(events_to_frame([visit(at(1, 9), None)])) == []
    assert online.watermark is None and online.open_cells == 0

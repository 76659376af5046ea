"""ColumnarOnline: the same vectors, late rows, evictions and recency as OnlineFeatures.

The expected side is always :class:`OnlineFeatures` fed event by event (``update``), which
its own tests tie to the batch evaluator. The organisation is the one of
``test_online_frame`` (30 users x 14 days of CERT and LANL events).
"""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from features import FeatureSpec, WindowConfig, default_specs
from features.columnar import (
    ColumnarOnline,
    EvaluatorFactory,
    OnlineEvaluator,
    ReferenceEvaluator,
)
from features.online import OnlineFeatures, WindowVector
from features.sliced import SlicedFeatures
from streams.batch import events_to_frame
from streams.event import Event
from tests.features._events import at
from tests.features.test_online_frame import assert_same_vectors, org_events, per_event, visit

__all__ = ["org_events"]  # the module-scoped fixture, shared

WEB = {"action": "http_visit"}
VISITS = FeatureSpec(name="visits", kind="count", where=WEB)
NEW_DOMAINS = FeatureSpec(name="new_domains", kind="first_seen", field="target", where=WEB)
RARE = FeatureSpec(
    name="rare", kind="rare_count", field="target", where=WEB, params={"max_entities": 0}
)

# Every evaluator on a few cases; the default (SlicedFeatures) on all of them.
REFERENCE = (ReferenceEvaluator,)
ALL = (ReferenceEvaluator, OnlineEvaluator)

_expected: dict[tuple[object, ...], tuple[OnlineFeatures, list[WindowVector]]] = {}


def expected_of(
    events: list[Event], config: WindowConfig, key: tuple[object, ...], **settings: object
) -> tuple[OnlineFeatures, list[WindowVector]]:
    """OnlineFeatures fed ``events`` one by one, then flushed (memoised under ``key``)."""
    if key not in _expected:
        online = OnlineFeatures(default_specs(config.entity), config, **settings)  # type: ignore[arg-type]
        _expected[key] = online, per_event(online, events)
    return _expected[key]


def in_batches(
    online: ColumnarOnline, frame: pl.DataFrame, size: int
) -> tuple[list[WindowVector], list[int]]:
    """Vectors (flushed at the end) and late row numbers of ``frame`` fed ``size`` rows a call."""
    vectors: list[WindowVector] = []
    late_rows: list[int] = []
    for start in range(0, frame.height, size):
        rows: list[int] = []
        vectors.extend(online.update_frame(frame.slice(start, size), late_rows=rows))
        late_rows.extend(start + row for row in rows)
    return vectors + online.flush(), late_rows


def _cases(cases: list[tuple[tuple[object, ...], tuple[EvaluatorFactory, ...]]]) -> list[Any]:
    """The cases with the default evaluator and ``others``; those over the whole org slow."""
    return [
        pytest.param(*case, factory, marks=[pytest.mark.slow] if None in case[-1:] else [])
        for case, others in cases
        for factory in (SlicedFeatures, *others)
    ]


@pytest.mark.parametrize(
    ("entity", "window", "size", "prefix", "evaluator"),
    _cases(
        [
            (("user", "1h", 1, 120), REFERENCE),
            (("user", "1h", 7, 1500), ()),
            (("user", "1d", 1000, None), ALL),
            (("host", "1d", None, None), ()),
        ]
    ),
)
def test_batches_in_time_order_equal_update(
    org_events: list[Event],
    evaluator: EvaluatorFactory,
    entity: str,
    window: str,
    size: int | None,
    prefix: int | None,
) -> None:
    events = org_events[:prefix]
    config = WindowConfig(entity=entity, window=window)
    _, expected = expected_of(events, config, ("in order", entity, window, prefix))
    frame = events_to_frame(events)
    online = ColumnarOnline(default_specs(entity), config, evaluator=evaluator)
    vectors, late = in_batches(online, frame, size or frame.height)
    assert len(expected) > 10 and late == []
    assert_same_vectors(vectors, expected)
    assert online.entities == len({v.entity for v in expected})


@pytest.mark.parametrize(
    ("size", "prefix", "evaluator"),
    _cases([((7, 2500), ()), ((1000, None), REFERENCE), ((None, None), ())]),
)
def test_shuffled_within_lateness_with_a_cap_equals_update(
    org_events: list[Event], evaluator: EvaluatorFactory, size: int | None, prefix: int | None
) -> None:
    rng = random.Random(5)
    jitter = timedelta(hours=30)
    # Arrival order: each event delayed by up to 30 hours; a third of that allowed, so some
    # events are late; and a cap that evicts.
    shuffled = sorted(org_events, key=lambda e: e.ts + rng.random() * jitter)[:prefix]
    settings: dict[str, object] = {"allowed_lateness": jitter / 3, "max_entities": 12}
    config = WindowConfig(window="1d")
    reference, expected = expected_of(shuffled, config, ("shuffled", prefix), **settings)
    online = ColumnarOnline(
        default_specs("user"),
        config,
        evaluator=evaluator,
        **settings,  # type: ignore[arg-type]
    )
    frame = events_to_frame(shuffled)
    vectors, late_rows = in_batches(online, frame, size or frame.height)
    assert_same_vectors(vectors, expected)
    assert reference.late_events > 0 and online.late_events == reference.late_events
    assert [shuffled[row] for row in late_rows] == reference.late
    assert online.late == []
    assert reference.evictions > 0 and online.evictions == reference.evictions
    assert online.evicted == reference.evicted
    # The same recency order, and the same time of each entity's last event.
    assert online.recency() == [(e, h.last_us) for e, h in reference._history.items()]


def test_each_closing_step_is_handed_over_with_what_it_evicted(
    org_events: list[Event],
) -> None:
    """on_close sees what OnlineFeatures.update_frame's on_close sees, step by step."""
    config = WindowConfig(window="1h")
    expected_online = OnlineFeatures(default_specs("user"), config, max_entities=5)
    online = ColumnarOnline(default_specs("user"), config, max_entities=5)
    expected: list[tuple[list[WindowVector], list[str]]] = []
    got: list[tuple[list[WindowVector], list[str]]] = []

    def expected_hook(vectors: list[WindowVector]) -> None:
        expected.append((vectors, list(expected_online.evicted)))
        expected_online.evicted.clear()

    def hook(vectors: list[WindowVector]) -> None:
        got.append((vectors, list(online.evicted)))
        online.evicted.clear()

    frame = events_to_frame(org_events[:1600])
    for start in range(0, frame.height, 400):
        part = frame.slice(start, 400)
        expected_online.update_frame(part, on_close=expected_hook)
        online.update_frame(part, on_close=hook)
    assert len(expected) > 5 and sum(bool(evicted) for _, evicted in expected) > 3
    assert [evicted for _, evicted in got] == [evicted for _, evicted in expected]
    for (mine, _), (theirs, _) in zip(got, expected, strict=True):
        assert_same_vectors(mine, theirs)


@pytest.mark.slow
def test_pickle_mid_stream_continues_identically(org_events: list[Event]) -> None:
    specs = default_specs("user")
    config = WindowConfig()

    def make() -> ColumnarOnline:
        return ColumnarOnline(specs, config, allowed_lateness=timedelta(hours=2), max_entities=20)

    half = len(org_events) // 2
    frame = events_to_frame(org_events)
    online = make()
    online.update_frame(frame.head(half))
    online.update(
        visit(datetime(2000, 1, 1, tzinfo=UTC))
    )  # a late event with default attrs, kept as an Event
    restored = pickle.loads(pickle.dumps(online))
    assert restored.late == online.late and restored.late_events == 1
    assert restored.entities == online.entities > 0
    assert restored.open_cells == online.open_cells > 0
    assert restored.watermark == online.watermark
    rest = frame.slice(half)
    expected = online.update_frame(rest) + online.flush()
    assert len(expected) > 50
    assert_same_vectors(restored.update_frame(rest) + restored.flush(), expected)
    assert (restored.evictions, restored.entities) == (online.evictions, online.entities)


# -- hand-built streams ----------------------------------------------------------------------


def run(online: ColumnarOnline, events: list[Event]) -> list[WindowVector]:
    return online.update_frame(events_to_frame(events))


def cells(vectors: list[WindowVector]) -> dict[tuple[str, int], dict[str, float]]:
    """{(entity, day of month): values} for daily vectors."""
    return {(v.entity, v.window_start.day): v.values for v in vectors}


def test_a_window_closed_mid_batch_makes_later_rows_late() -> None:
    online = ColumnarOnline([VISITS], WindowConfig(window="1h"))
    events = [visit(at(1, 9, 10)), visit(at(1, 10, 0)), visit(at(1, 9, 59)), visit(at(1, 10, 5))]
    late: list[int] = []
    vectors = online.update_columns(events_to_frame(events), late_rows=late)
    assert vectors.select("entity", "n_events", "visits").rows() == [("a", 1, 1.0)]
    assert vectors["window_start"].to_list() == [at(1, 9)]
    assert late == [2] and online.late_events == 1 and online.late == []
    assert online.open_cells == 1 and online.watermark == at(1, 10, 5)
    assert [(v.window_start, v.n_events) for v in online.flush()] == [(at(1, 10), 2)]
    assert online.open_cells == 0 and online.entities == 1


def test_late_rows_become_events_without_a_list() -> None:
    online = ColumnarOnline([VISITS], WindowConfig(), allowed_lateness=timedelta(hours=1))
    events = [visit(at(1, 12)), visit(at(2, 1)), visit(at(1, 23), "b"), visit(at(2, 2), None)]
    [closed] = online.update_frame(events_to_frame(events))
    assert (closed.window_start, closed.values) == (at(1, 0), {"visits": 1.0})
    assert online.late == [events[2]] and online.late_events == 1
    assert online.drain_late() == [events[2]] and online.late == []
    # The row without an entity neither counts nor moves the watermark.
    assert online.watermark == at(2, 0)


def test_cap_evicts_least_recently_seen_and_forgets_its_history() -> None:
    day1 = [visit(at(1, 9), "a", "z.com"), visit(at(1, 10), "b", "y.com")]
    day2 = [visit(at(2, 9), "b", "z.com"), visit(at(2, 10), "a", "w.com")]
    capped = ColumnarOnline([NEW_DOMAINS, RARE], WindowConfig(), max_entities=1)
    values = cells(run(capped, day1) + run(capped, day2) + capped.flush())
    # Day 1 folds a then b; a, the least recently seen, is evicted. On day 2 a is a new
    # entity again: its first window, so nothing is "new" for it. Its history left the
    # population tables, so z.com is rare again for b.
    assert values[("a", 2)] == {"new_domains": 0.0, "rare": 1.0}
    assert values[("b", 2)] == {"new_domains": 1.0, "rare": 1.0}
    # Day 2 folds b (seen since day 1) and a (new): b is now the least recently seen.
    assert capped.evictions == 2 and capped.entities == 1 and capped.evicted == ["a", "b"]


def test_idle_entities_expire() -> None:
    online = ColumnarOnline([NEW_DOMAINS], WindowConfig(), idle_expiry=timedelta(days=2))
    run(online, [visit(at(1, 9), "a", "x.com"), visit(at(2, 9), "b"), visit(at(3, 9), "b")])
    assert (online.entities, online.expirations) == (2, 0)  # a idle for 2 days, not more
    run(online, [visit(at(4, 9), "b")])  # watermark the 4th 09:00: a idle since the 1st 09:00
    assert (online.entities, online.expirations, online.evicted) == (1, 1, ["a"])
    vectors = run(online, [visit(at(5, 10), "a", "y.com"), visit(at(6, 9), "b")])
    assert cells(vectors)[("a", 5)] == {"new_domains": 0.0}  # a is new again: first window
    assert online.entities == 2


def test_empty_and_entityless_frames_change_nothing() -> None:
    online = ColumnarOnline([VISITS], WindowConfig())
    assert online.update_frame(events_to_frame([])) == []
    assert online.update_frame(events_to_frame([visit(at(1, 9), None)])) == []
    assert online.watermark is None and online.open_cells == 0 and online.flush() == []
    assert online.update_columns(events_to_frame([])).columns == [
        "entity",
        "window_start",
        "n_events",
        "visits",
    ]


def test_state_bytes_grow_with_state() -> None:
    online = ColumnarOnline(default_specs("user"), WindowConfig())
    empty = online.state_bytes()
    run(online, [visit(at(1, 9), f"u{i}", f"site{i}.com") for i in range(50)])
    open_only = online.state_bytes()
    assert online.entities == 0 and online.open_cells == 50 and open_only > empty
    online.flush()
    assert online.entities == 50 and online.open_cells == 0
    assert online.state_bytes() > empty + 50 * 30


def test_missing_columns_and_invalid_settings_are_rejected() -> None:
    online = ColumnarOnline([NEW_DOMAINS], WindowConfig())
    with pytest.raises(ValueError, match=r"lack the columns \['target'\]"):
        online.update_frame(events_to_frame([visit(at(1, 9))]).drop("target"))
    with pytest.raises(ValueError, match="duplicate"):
        ColumnarOnline([VISITS, VISITS])
    with pytest.raises(ValueError, match="idle_expiry"):
        ColumnarOnline([VISITS], WindowConfig(), idle_expiry=timedelta(hours=2))
    with pytest.raises(ValueError, match="allowed_lateness"):
        ColumnarOnline([VISITS], allowed_lateness=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="max_entities"):
        ColumnarOnline([VISITS], max_entities=0)

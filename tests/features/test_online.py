"""OnlineFeatures: parity with the batch evaluator, watermarks, lateness, memory bounds, pickle.

Calendar: 2024-01-01 is a Monday. Hand-built events use :func:`at` from ``_events``.
"""

from __future__ import annotations

import json
import pickle
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synthetic import generate
from features import FeatureSpec, WindowConfig, default_specs, evaluate_batch
from features.online import OnlineFeatures, WindowVector, replay
from streams.batch import events_from_frame, events_to_frame, scan_events
from streams.event import Event
from tests.features._events import at

WEB = {"action": "http_visit"}
NEW_DOMAINS = FeatureSpec(name="new_domains", kind="first_seen", field="target", where=WEB)
VISITS = FeatureSpec(name="visits", kind="count", where=WEB)


def visit(ts: datetime, user: str | None = "a", target: str | None = "x.com") -> Event:
    return Event(ts, "test", "http_visit", user=user, target=target)


def run(online: OnlineFeatures, events: list[Event]) -> list[WindowVector]:
    vectors: list[WindowVector] = []
    for event in events:
        vectors.extend(online.update(event))
    return vectors


def cells(vectors: list[WindowVector]) -> dict[tuple[str, int], dict[str, float]]:
    """{(entity, day of month): values} for daily vectors."""
    return {(v.entity, v.window_start.day): v.values for v in vectors}


# -- parity with evaluate_batch on a synthetic organisation ---------------------------------


@pytest.fixture(scope="module")
def org_frame(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("org")
    generate(out, users=40, days=20, seed=1)
    manifest = json.loads((out / "manifest.json").read_text())
    epoch = datetime.fromisoformat(str(manifest["lanl_epoch"]).replace("Z", "+00:00"))
    frames = [
        scan_events([out], "cert").events.collect(),
        scan_events([out / "auth.txt"], "lanl", lanl_epoch=epoch).events.collect(),
    ]
    return pl.concat(frames).sort("ts", maintain_order=True)


@pytest.fixture(scope="module")
def org_events(org_frame: pl.DataFrame) -> list[Event]:
    return events_from_frame(org_frame)


def assert_parity(
    frame: pl.DataFrame,
    vectors: list[WindowVector],
    specs: tuple[FeatureSpec, ...],
    config: WindowConfig,
) -> pl.DataFrame:
    batch = evaluate_batch(specs, frame.lazy(), config).collect()
    online = {(v.entity, v.window_start): v for v in vectors}
    assert len(online) == len(vectors) == batch.height
    for row in batch.iter_rows(named=True):
        vector = online[(row["entity"], row["window_start"])]
        assert vector.n_events == row["n_events"]
        assert list(vector.values) == [s.name for s in specs]
        for spec in specs:
            assert vector.values[spec.name] == pytest.approx(row[spec.name], abs=1e-9), (
                row["entity"],
                row["window_start"],
                spec.name,
            )
    return batch


@pytest.mark.parametrize(("entity", "window"), [("user", "1d"), ("host", "1d"), ("user", "1h")])
def test_replay_in_time_order_equals_batch(
    org_frame: pl.DataFrame, org_events: list[Event], entity: str, window: str
) -> None:
    config = WindowConfig(entity=entity, window=window)
    specs = default_specs(entity)
    batch = assert_parity(org_frame, replay(specs, org_events, config), specs, config)
    # The comparison is only worth something if the stateful kinds are exercised.
    exercised = {
        spec.kind for spec in specs if batch.get_column(spec.name).fill_nan(1.0).abs().sum() > 0
    }
    assert {"first_seen", "rarity", "rare_count", "periodicity", "hour_deviation"} <= exercised


def test_out_of_order_within_lateness_equals_batch(
    org_frame: pl.DataFrame, org_events: list[Event]
) -> None:
    rng = random.Random(7)
    jitter = timedelta(minutes=30)
    # Arrival order: each event delayed by up to 30 min, so neighbours swap places.
    shuffled = sorted(org_events, key=lambda e: e.ts + rng.random() * jitter)
    assert shuffled != org_events
    config = WindowConfig()
    specs = default_specs("user")
    vectors = replay(specs, shuffled, config, allowed_lateness=jitter)
    assert_parity(org_frame, vectors, specs, config)


def test_pickle_mid_stream_continues_identically(org_events: list[Event]) -> None:
    specs = default_specs("user")
    online = OnlineFeatures(
        specs, WindowConfig(), allowed_lateness=timedelta(hours=2), max_entities=30
    )
    half = len(org_events) // 2
    run(online, org_events[:half])
    online.update(visit(datetime(2000, 1, 1, tzinfo=UTC)))  # a late event with default attrs
    restored = pickle.loads(pickle.dumps(online))
    assert restored.late == online.late and restored.late_events == 1
    assert restored.entities == online.entities > 0
    rest = org_events[half:]
    expected = run(online, rest) + online.flush()
    assert expected and run(restored, rest) + restored.flush() == expected
    assert (restored.evictions, restored.entities) == (online.evictions, online.entities)


# -- watermark and lateness ------------------------------------------------------------------


def test_window_closes_when_the_watermark_reaches_its_end() -> None:
    online = OnlineFeatures(
        [VISITS], WindowConfig(window="1h"), allowed_lateness=timedelta(minutes=10)
    )
    assert online.watermark is None
    assert online.update(visit(at(1, 9, 0))) == []
    assert online.update(visit(at(1, 10, 9, 59), "b")) == []  # watermark 09:59:59
    assert online.watermark == at(1, 9, 59, 59)
    assert online.update(visit(at(1, 9, 59))) == []  # 09:00 still open: counted
    closed = online.update(visit(at(1, 10, 10), "b"))  # watermark 10:00 = end of 09:00
    assert closed == [WindowVector("a", at(1, 9), 2, {"visits": 2.0})]
    assert online.open_cells == 1
    # An older event does not move the watermark back.
    assert online.update(visit(at(1, 10, 5))) == []
    assert online.watermark == at(1, 10)
    assert online.flush() == [
        WindowVector("a", at(1, 10), 1, {"visits": 1.0}),
        WindowVector("b", at(1, 10), 2, {"visits": 2.0}),
    ]


def test_late_event_is_counted_and_kept_not_applied() -> None:
    online = OnlineFeatures([VISITS], WindowConfig(), allowed_lateness=timedelta(hours=1))
    run(online, [visit(at(1, 12)), visit(at(2, 0, 30))])
    [closed] = online.update(visit(at(2, 1)))  # watermark 00:00 on the 2nd closes the 1st
    assert (closed.window_start, closed.values) == (at(1, 0), {"visits": 1.0})
    late = visit(at(1, 23), "b")
    assert online.update(late) == [] and online.late_events == 1
    assert online.late == [late]
    assert online.drain_late() == [late] and online.late == [] and online.late_events == 1
    # After a flush every flushed window is closed too.
    assert [v.values for v in online.flush()] == [{"visits": 2.0}]
    assert online.update(visit(at(2, 5))) == [] and online.late_events == 2


def test_events_without_entity_are_ignored() -> None:
    online = OnlineFeatures([VISITS], WindowConfig())
    assert online.update(visit(at(5, 9), user=None)) == []
    assert online.watermark is None and online.flush() == []


# -- per-entity state -----------------------------------------------------------------------


def test_first_seen_counts_nothing_in_the_entity_first_window() -> None:
    events = [
        visit(at(1, 9), target="x.com"),
        visit(at(2, 9), target="x.com"),
        visit(at(2, 10), target="y.com"),
        visit(at(2, 11), target="y.com"),
        visit(at(3, 9), target="y.com"),
        visit(at(3, 9), target="z.com"),
    ]
    vectors = replay([NEW_DOMAINS], events)
    assert [v.values["new_domains"] for v in vectors] == [0.0, 1.0, 1.0]


def test_periodicity_and_pattern_filters() -> None:
    beacon = FeatureSpec(name="beacon", kind="periodicity", field="target", where=WEB)
    tools = FeatureSpec(name="tools", kind="count", where={"target~": "mimikatz|keylog"})
    every_minute = [visit(at(1, 9, m), target="c2.net") for m in range(12)]
    uneven = [visit(at(2, 9, m), target="c2.net") for m in (*range(11), 13)]
    hits = [Event(at(2, 9), "t", "file_open", user="a", target="C:\\KeyLogger.EXE")]
    vectors = replay([beacon, tools], every_minute + hits + uneven)
    gaps = [60.0] * 10 + [180.0]
    mean = sum(gaps) / 11
    sd = (sum((g - mean) ** 2 for g in gaps) / 11) ** 0.5
    assert [v.values for v in vectors] == [
        {"beacon": 1.0, "tools": 0.0},
        {"beacon": pytest.approx(1 - sd / mean), "tools": 1.0},
    ]


# -- bounded memory -------------------------------------------------------------------------


def test_cap_evicts_least_recently_seen_and_forgets_its_history() -> None:
    rare = FeatureSpec(
        name="rare", kind="rare_count", field="target", where=WEB, params={"max_entities": 0}
    )
    day1 = [visit(at(1, 9), "a", "z.com"), visit(at(1, 10), "b", "y.com")]
    day2 = [visit(at(2, 9), "b", "z.com"), visit(at(2, 10), "a", "w.com")]
    uncapped = OnlineFeatures([NEW_DOMAINS, rare], WindowConfig())
    values = cells(run(uncapped, day1 + day2) + uncapped.flush())
    assert values[("a", 2)] == {"new_domains": 1.0, "rare": 1.0}  # w.com
    assert values[("b", 2)] == {"new_domains": 1.0, "rare": 0.0}  # z.com: a had it
    assert uncapped.evictions == 0 and uncapped.entities == 2

    capped = OnlineFeatures([NEW_DOMAINS, rare], WindowConfig(), max_entities=1)
    values = cells(run(capped, day1 + day2) + capped.flush())
    # Day 1 folds a then b; a, the least recently seen, is evicted. On day 2 a is a new
    # entity again: its first window, so nothing is "new" for it. Its history left the
    # population tables, so z.com is rare again for b.
    assert values[("a", 2)] == {"new_domains": 0.0, "rare": 1.0}
    assert values[("b", 2)] == {"new_domains": 1.0, "rare": 1.0}
    # Day 2 folds b (seen since day 1) and a (new): b is now the least recently seen.
    assert capped.evictions == 2 and capped.entities == 1


def test_idle_entities_expire() -> None:
    online = OnlineFeatures([NEW_DOMAINS], WindowConfig(), idle_expiry=timedelta(days=2))
    run(online, [visit(at(1, 9), "a", "x.com"), visit(at(2, 9), "b"), visit(at(3, 9), "b")])
    assert (online.entities, online.expirations) == (2, 0)  # a idle for 2 days, not more
    run(online, [visit(at(4, 9), "b")])  # watermark the 4th 09:00: a idle since the 1st 09:00
    assert (online.entities, online.expirations) == (1, 1)
    vectors = run(online, [visit(at(5, 10), "a", "y.com"), visit(at(6, 9), "b")])
    assert cells(vectors)[("a", 5)] == {"new_domains": 0.0}  # a is new again: first window
    assert online.entities == 2


def test_state_bytes_and_entities_grow_with_state() -> None:
    online = OnlineFeatures(default_specs("user"), WindowConfig())
    empty = online.state_bytes()
    run(online, [visit(at(1, 9), f"u{i}", f"site{i}.com") for i in range(50)])
    open_only = online.state_bytes()
    assert online.entities == 0 and online.open_cells == 50 and open_only > empty
    online.flush()
    assert online.entities == 50 and online.open_cells == 0
    assert online.state_bytes() > empty + 50 * 100


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        OnlineFeatures([VISITS, VISITS])
    with pytest.raises(ValueError, match="idle_expiry"):
        OnlineFeatures([VISITS], WindowConfig(), idle_expiry=timedelta(hours=2))
    with pytest.raises(ValueError, match="allowed_lateness"):
        OnlineFeatures([VISITS], allowed_lateness=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="max_entities"):
        OnlineFeatures([VISITS], max_entities=0)


def test_attrs_fields_and_numbers_read_like_the_batch_path() -> None:
    specs = [
        FeatureSpec(
            name="attachments", kind="sum", field="attrs.n", where={"action": "email_send"}
        ),
        FeatureSpec(name="big", kind="count", where={"bytes": ("10", "20")}),
        FeatureSpec(name="rcpt", kind="max_split", field="target", params={"split": ";"}),
        FeatureSpec(name="tags", kind="distinct", field="attrs.tag", where={"attrs.kind": "x"}),
    ]
    rows = [
        Event(
            at(1, 9),
            "t",
            "email_send",
            user="a",
            target="p; q;;",
            bytes=10,
            attrs={"n": "3", "kind": "x", "tag": "t1"},
        ),
        Event(
            at(1, 9),
            "t",
            "email_send",
            user="a",
            target=" r ",
            bytes=11,
            attrs={"n": " 4", "kind": "x", "tag": "t1"},
        ),
        Event(
            at(1, 9),
            "t",
            "email_send",
            user="a",
            target="\x1c;t;u",
            bytes=20,
            attrs={"n": "1_0", "kind": "y", "tag": "t2"},
        ),
        Event(at(1, 9), "t", "email_send", user="a", attrs={"n": "2.5", "kind": "x", "tag": "t3"}),
    ]
    [vector] = replay(specs, rows)
    # " 4" and "1_0" are not numbers to polars; "\x1c" is not Unicode white space, so it
    # is one recipient (Python's str.strip() would drop it).
    assert vector.values == {"attachments": 5.5, "big": 2.0, "rcpt": 3.0, "tags": 2.0}
    batch = evaluate_batch(specs, events_to_frame(rows).lazy()).collect()
    assert batch.row(0)[3:] == tuple(vector.values.values())


def test_vectors_of_a_window_come_in_entity_order() -> None:
    events = [visit(at(1, 9), user) for user in ("c", "a", "b")]
    assert [v.entity for v in replay([VISITS], events)] == ["a", "b", "c"]


# -- property: any small stream in time order gives the batch numbers -----------------------

_ACTIONS = (
    "logon",
    "http_visit",
    "http_upload",
    "http_download",
    "email_send",
    "auth",
    "connect",
    "usb_connect",
    "file_open",
    "file_copy_removable",
)
_TARGETS = ("x.com", "dice.com", " a; b ;", "a;;c", "", " ", "C:\\KeyLogger.exe", "PC-1")


@st.composite
def _streams(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(min_value=1, max_value=40))
    minutes = sorted(draw(st.lists(st.integers(0, 4 * 24 * 60), min_size=n, max_size=n)))
    return [
        Event(
            at(1, 0) + timedelta(minutes=m),
            "prop",
            draw(st.sampled_from(_ACTIONS)),
            user=draw(st.sampled_from(("a", "b", "c", None))),
            host=draw(st.sampled_from(("h1", "h2", "", None))),
            target=draw(st.sampled_from((*_TARGETS, None))),
            bytes=draw(st.sampled_from((None, 0, 10))),
            outcome=draw(st.sampled_from((None, "failure", "success"))),
            attrs=draw(st.sampled_from(({}, {"attachments": "2"}, {"attachments": "x"}))),
        )
        for m in minutes
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_streams(), entity=st.sampled_from(("user", "host")))
def test_any_stream_in_time_order_equals_batch(events: list[Event], entity: str) -> None:
    config = WindowConfig(entity=entity, window="1d" if len(events) % 2 else "1h")
    specs = default_specs(entity)
    frame = events_to_frame(events)
    assert_parity(frame, replay(specs, events, config), specs, config)

"""SlicedFeatures: slice by slice equals evaluate_batch over everything, value for value.

Calendar: 2024-01-01 is a Monday. Hand-built events use :func:`at` and :func:`ev`.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from benchmarks.synthetic import generate
from features import FeatureSpec, WindowConfig, default_specs, evaluate_batch
from features import sliced as sliced_module
from features.online import replay, stable_hash
from features.sliced import SlicedFeatures
from streams.batch import events_from_frame, scan_events
from streams.event import POLARS_EVENT_SCHEMA
from tests.features._events import at, ev

WEB = {"action": "http_visit"}


@pytest.fixture(scope="module")
def org_frame(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("org")
    generate(out, users=30, days=20, seed=1)
    manifest = json.loads((out / "manifest.json").read_text())
    epoch = datetime.fromisoformat(str(manifest["lanl_epoch"]).replace("Z", "+00:00"))
    frames = [
        scan_events([out], "cert").events.collect(),
        scan_events([out / "auth.txt"], "lanl", lanl_epoch=epoch).events.collect(),
    ]
    return pl.concat(frames).sort("ts", maintain_order=True)


def window_ids(frame: pl.DataFrame, config: WindowConfig) -> pl.Series:
    """0, 1, 2... for the frame's windows in time order."""
    windows = frame.get_column("ts").dt.truncate(config.window)
    return windows.rank("dense").cast(pl.Int64) - 1


def in_slices(
    sliced: SlicedFeatures, frame: pl.DataFrame, config: WindowConfig, per: int, start: int = 0
) -> list[pl.DataFrame]:
    """Evaluate the windows from ``start`` on, ``per`` windows a slice."""
    ids = window_ids(frame, config)
    last = int(ids.to_numpy().max())
    return [
        sliced.evaluate(frame.filter((ids >= i) & (ids < i + per)))
        for i in range(start, last + 1, per)
    ]


def joined(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts).sort("entity", "window_start")


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=POLARS_EVENT_SCHEMA)


# -- parity on a generated organisation, full default catalogue ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entity", "per"),
    [("user", 1), ("user", 3), ("user", 7), ("user", 1000), ("host", 3), ("host", 1000)],
)
def test_daily_slices_equal_the_whole_range(org_frame: pl.DataFrame, entity: str, per: int) -> None:
    config = WindowConfig(entity=entity, window="1d")
    specs = default_specs(entity)
    expected = evaluate_batch(specs, org_frame.lazy(), config).collect()
    parts = in_slices(SlicedFeatures(specs, config), org_frame, config, per)
    assert all(part.height for part in parts)
    assert_frame_equal(joined(parts), expected, check_exact=True)
    # Worth something only if the stateful kinds are exercised.
    exercised = {
        spec.kind for spec in specs if expected.get_column(spec.name).fill_nan(1.0).abs().sum() > 0
    }
    stateful = {"first_seen", "rarity", "rare_count", "periodicity"}
    hours = {"unusual_hour", "hour_deviation"} if entity == "user" else set()
    assert stateful | hours <= exercised


@pytest.mark.slow
def test_merging_the_recent_pairs_changes_no_value_and_no_state(
    org_frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = WindowConfig(entity="user", window="1d")
    specs = default_specs("user")
    expected = evaluate_batch(specs, org_frame.lazy(), config).collect()
    states = []
    # Merged as soon as the recent run is an eighth of the large one, then never merged.
    for merge_at, merged in ((1, True), (1 << 40, False)):
        monkeypatch.setattr(sliced_module, "_MERGE_AT", merge_at)
        sliced = SlicedFeatures(specs, config)
        parts = in_slices(sliced, org_frame, config, 2)
        assert_frame_equal(joined(parts), expected, check_exact=True)
        assert any(seen.pair.size > 0 for seen in sliced._seen) is merged
        assert any(seen.recent_pair.size > 0 for seen in sliced._seen)
        states.append(sliced.state())
    assert states[0] == states[1]


@pytest.mark.slow
@pytest.mark.parametrize("entity", ["user", "host"])
def test_hourly_slices_equal_the_whole_range(org_frame: pl.DataFrame, entity: str) -> None:
    config = WindowConfig(entity=entity, window="1h")
    specs = default_specs(entity)
    expected = evaluate_batch(specs, org_frame.lazy(), config).collect()
    assert_frame_equal(
        SlicedFeatures(specs, config).evaluate(org_frame), expected, check_exact=True
    )
    # Most of the range in three big slices, then slices of 7, 3 and 1 hourly windows.
    ids = window_ids(org_frame, config)
    end = int(ids.to_numpy().max()) + 1
    cuts = [*range(0, end - 48, (end - 48) // 3 + 1), *range(end - 48, end - 20, 7)]
    cuts += [*range(end - 20, end - 8, 3), *range(end - 8, end + 1)]
    sliced = SlicedFeatures(specs, config)
    parts = [
        sliced.evaluate(org_frame.filter((ids >= lo) & (ids < hi)))
        for lo, hi in itertools.pairwise(cuts)
    ]
    assert_frame_equal(joined(parts), expected, check_exact=True)
    assert sliced.entities() == sorted(expected.get_column("entity").unique().to_list())


@pytest.mark.parametrize("window", ["1d", "1h"])
def test_hour_kinds_equal_the_online_evaluator_bit_for_bit(
    org_frame: pl.DataFrame, window: str
) -> None:
    # Exact parity across slicings needs floats that do not depend on how rows are grouped:
    # hour sums run in hour order from 0, as the online evaluator's do.
    config = WindowConfig(window=window)
    specs = [s for s in default_specs("user") if s.kind in ("unusual_hour", "hour_deviation")]
    vectors = replay(specs, events_from_frame(org_frame), config)
    online = pl.DataFrame(
        [{"entity": v.entity, "window_start": v.window_start, **v.values} for v in vectors]
    ).sort("entity", "window_start")
    batch = evaluate_batch(specs, org_frame.lazy(), config).collect().drop("n_events")
    assert_frame_equal(batch, online, check_exact=True, check_dtypes=False)
    assert batch.get_column("logon_hour_deviation").max() > 0  # type: ignore[operator]


def test_one_window_slices_give_the_batch_hour_values_bit_for_bit(
    org_frame: pl.DataFrame,
) -> None:
    # The daemon's case: every slice one hourly window, the hour kinds computed in numpy.
    config = WindowConfig(window="1h")
    specs = [s for s in default_specs("user") if s.kind in ("unusual_hour", "hour_deviation")]
    # A stricter share, so some logons of the last windows count as unusual.
    specs.append(
        FeatureSpec(name="odd_logons", kind="unusual_hour", where={"action": "logon"},
                    params={"min_events": 1, "min_share": 0.6})
    )  # fmt: skip
    expected = evaluate_batch(specs, org_frame.lazy(), config).collect()
    ids = window_ids(org_frame, config)
    end = int(ids.to_numpy().max()) + 1
    sliced = SlicedFeatures(specs, config)
    parts = [sliced.evaluate(org_frame.filter(ids < end - 40))]
    parts += [sliced.evaluate(org_frame.filter(ids == i)) for i in range(end - 40, end)]
    assert_frame_equal(joined(parts), expected, check_exact=True)
    last = pl.concat(parts[1:])
    assert last.get_column("logon_hour_deviation").max() > 0  # type: ignore[operator]
    assert last.get_column("odd_logons").max() > 0  # type: ignore[operator]


def test_restore_in_the_middle_continues_identically(org_frame: pl.DataFrame) -> None:
    config = WindowConfig()
    specs = default_specs("user")
    ids = window_ids(org_frame, config)
    first = SlicedFeatures(specs, config)
    head = in_slices(first, org_frame.filter(ids < 10), config, 5)
    state = first.state()
    restored = SlicedFeatures(specs, config)
    restored.restore(state)
    assert restored.state() == state  # deterministic, and nothing lost
    users = org_frame.filter(ids < 10).get_column("user").drop_nulls().unique().sort()
    assert restored.entities() == first.entities() == users.to_list()
    assert restored.state_bytes() == first.state_bytes() > 0
    assert restored.last_window == first.last_window
    tail = in_slices(restored, org_frame, config, 5, start=10)
    expected = evaluate_batch(specs, org_frame.lazy(), config).collect()
    assert_frame_equal(joined(head + tail), expected, check_exact=True)
    # The original carries on the same way.
    assert_frame_equal(joined(in_slices(first, org_frame, config, 5, start=10)), joined(tail))


def test_forget_makes_the_next_window_a_first_window(org_frame: pl.DataFrame) -> None:
    config = WindowConfig()
    specs = default_specs("user")
    ids = window_ids(org_frame, config)
    users = org_frame.filter(ids < 8).get_column("user").drop_nulls().unique().sort().to_list()
    gone = users[:3]
    sliced = SlicedFeatures(specs, config)
    in_slices(sliced, org_frame.filter(ids < 8), config, 4)
    sliced.forget([*gone, "nobody"])
    assert sorted(set(users) - set(gone)) == sliced.entities()
    got = joined(in_slices(sliced, org_frame, config, 4, start=8))
    # As if their earlier events had never been seen.
    without = org_frame.filter(~((ids < 8) & pl.col("user").is_in(gone)))
    expected = evaluate_batch(specs, without.lazy(), config).collect()
    expected = expected.filter(pl.col("window_start") >= got.get_column("window_start").min())
    assert_frame_equal(got, expected, check_exact=True)
    # Each forgotten user's next window counts nothing as new, yet values were new to it.
    firsts = got.filter(pl.col("entity").is_in(gone)).group_by("entity").first()
    assert firsts.height == 3
    assert firsts.get_column("new_web_domains").to_list() == [0.0, 0.0, 0.0]
    assert firsts.get_column("web_domains").min() > 0  # type: ignore[operator]


# -- hand-computed values across a slice boundary --------------------------------------------


def test_first_seen_across_a_slice_boundary() -> None:
    spec = FeatureSpec(name="new", kind="first_seen", field="target", where=WEB)
    sliced = SlicedFeatures([spec])
    day1 = frame([ev(at(1, 9), "http_visit", "a", target="x"), ev(at(1, 9), "logon", "b")])
    day2 = frame(
        [
            ev(at(2, 9), "http_visit", "a", target="x"),
            ev(at(2, 10), "http_visit", "a", target="y"),
            ev(at(2, 11), "http_visit", "b", target="x"),  # b's second window: x is new
            ev(at(2, 12), "http_visit", "c", target="x"),  # c's first window: counts 0
        ]
    )
    day3 = frame([ev(at(3, 9), "http_visit", "c", target=t) for t in ("x", "y", "z")])
    assert sliced.evaluate(day1).rows() == [("a", at(1, 0), 1, 0.0), ("b", at(1, 0), 1, 0.0)]
    assert sliced.evaluate(day2).select("entity", "new").rows() == [
        ("a", 1.0),
        ("b", 1.0),
        ("c", 0.0),
    ]
    assert sliced.evaluate(day3).select("entity", "new").rows() == [("c", 2.0)]


def test_known_and_new_entities_keep_their_names_and_null_entities_are_dropped() -> None:
    spec = FeatureSpec(name="logons", kind="count", where={"action": "logon"})
    sliced = SlicedFeatures([spec])
    assert sliced.evaluate(frame([ev(at(1, 9), "logon", "ann")])).rows() == [
        ("ann", at(1, 0), 1, 1.0)
    ]
    # Day 2: ann known, bob new, and an event without a user, which counts for no one.
    day2 = frame(
        [
            ev(at(2, 8), "logon", None),
            ev(at(2, 9), "logon", "bob"),
            ev(at(2, 10), "logon", "ann"),
            ev(at(2, 11), "http_visit", "ann"),
        ]
    )
    assert sliced.evaluate(day2).rows() == [
        ("ann", at(2, 0), 2, 1.0),
        ("bob", at(2, 0), 1, 1.0),
    ]
    assert sliced.entities() == ["ann", "bob"]
    assert sliced.evaluate(frame([ev(at(3, 9), "logon", "bob")])).rows() == [
        ("bob", at(3, 0), 1, 1.0)
    ]


def test_rarity_and_rare_count_across_a_slice_boundary() -> None:
    specs = [
        FeatureSpec(name="bits", kind="rarity", field="target", where=WEB),
        FeatureSpec(name="mean_bits", kind="rarity", field="target", where=WEB,
                    params={"agg": "mean"}),
        FeatureSpec(name="rare", kind="rare_count", field="target", where=WEB,
                    params={"max_entities": 0}),
    ]  # fmt: skip
    sliced = SlicedFeatures(specs)
    day1 = frame([ev(at(1, 9), "http_visit", u, target=t) for u, t in ("ax", "bx", "cw")])
    sliced.evaluate(day1)
    day2 = frame(
        [ev(at(2, 9), "http_visit", "a", target=t) for t in ("x", "y")]
        + [ev(at(2, 9), "http_visit", "d", target="w")]
    )
    # N = 3 entities before day 2. a: x had by 1 other (b), y by none; d: w had by c.
    got = {row[0]: row[3:] for row in sliced.evaluate(day2).rows()}
    x_bits, y_bits = math.log2(4) - math.log2(2), math.log2(4)
    assert got["a"] == (y_bits, (x_bits + y_bits) / 2, 1.0)
    assert got["d"] == (x_bits, x_bits, 0.0)
    # Day 3: a and d joined the population, y is now a's own value only.
    day3 = frame([ev(at(3, 9), "http_visit", "b", target="y")])
    assert sliced.evaluate(day3).row(0)[3:] == (math.log2(5) - math.log2(2),) * 2 + (0.0,)


#: An unusual-hour and an hour-deviation feature of logons (the hour-count features).
HOUR_SPECS = [
    FeatureSpec(name="odd", kind="unusual_hour", where={"action": "logon"},
                params={"min_events": 3, "min_share": 0.3}),
    FeatureSpec(name="drift", kind="hour_deviation", where={"action": "logon"},
                params={"min_events": 3}),
]  # fmt: skip


def test_unusual_hour_uses_the_carried_hour_counts() -> None:
    specs = HOUR_SPECS
    sliced = SlicedFeatures(specs)
    day1 = frame([ev(at(1, h), "logon") for h in (9, 9, 9, 10)])
    assert sliced.evaluate(day1).row(0)[3:] == (0.0, 0.0)  # no history yet
    day2 = frame([ev(at(2, 9), "logon"), ev(at(2, 3), "logon"), ev(at(2, 4), "http_visit")])
    # H[9] = 3 >= 0.3 * 4, H[3] = 0: one unusual logon. Mean hour of 9, 9, 9, 10:
    angle = 2 * math.pi / 24
    s = 3 * math.sin(9 * angle) + math.sin(10 * angle)
    c = 3 * math.cos(9 * angle) + math.cos(10 * angle)
    mean = math.atan2(s, c) / angle
    assert sliced.evaluate(day2).row(0)[2:] == (
        3,
        1.0,
        pytest.approx((abs(9 - mean) + abs(3 - mean)) / 2),
    )
    # Both slices together give the same numbers.
    expected = evaluate_batch(specs, pl.concat([day1, day2]).lazy()).collect()
    again = SlicedFeatures(specs)
    assert_frame_equal(
        pl.concat([again.evaluate(day1), again.evaluate(day2.lazy())]), expected, check_exact=True
    )


def test_a_slice_of_several_windows_counts_its_earlier_windows_and_the_carried_hours() -> None:
    specs = HOUR_SPECS
    day1 = frame([*(ev(at(1, h), "logon") for h in (9, 9, 9, 10)), ev(at(1, 9), "logon", "b")])
    # One slice of three windows: b's first logons come after a window without any.
    days2to4 = frame(
        [
            *(ev(at(2, 3), "logon"), ev(at(3, 3), "logon"), ev(at(3, 9), "logon")),
            *(ev(at(4, 9), "logon", "b"), ev(at(4, 2), "logon", "b"), ev(at(4, 8), "http_visit")),
        ]
    )
    sliced = SlicedFeatures(specs)
    parts = [sliced.evaluate(day1), sliced.evaluate(days2to4)]
    expected = evaluate_batch(specs, pl.concat([day1, days2to4]).lazy()).collect()
    assert_frame_equal(joined(parts), expected, check_exact=True)
    # a, day 2: H[3] = 0 < 0.3 * 4, unusual. Day 3: history 9, 9, 9, 10 and day 2's 3:00,
    # H[3] = 1 < 0.3 * 5, unusual; H[9] = 3, not. Day 4: no logon. b, day 4: one logon
    # before, fewer than min_events.
    assert parts[1].select("entity", "n_events", "odd").rows() == [
        ("a", 1, 1.0),
        ("a", 2, 1.0),
        ("a", 1, 0.0),
        ("b", 2, 0.0),
    ]
    assert [row[0] > 0 for row in parts[1].select("drift").rows()] == [True, True, False, False]


def test_hour_cells_hold_each_entitys_earlier_windows_and_its_sums() -> None:
    day = 86_400_000_000
    cells = sliced_module._HourCells.of(
        np.array([7, 5, 7, 7, 5, 7], dtype=np.uint64),
        np.array([0, 0, day, day, 2 * day, day], dtype=np.int64),
        np.array([9, 3, 9, 10, 4, 9], dtype=np.int64),
    )

    def nonzero(rows: np.ndarray) -> list[dict[int, int]]:
        return [{hour: int(n) for hour, n in enumerate(row) if n} for row in rows]

    assert cells.entities.tolist() == [5, 7]
    assert cells.windows.tolist() == [0, day, 2 * day]
    # Entity, then window order: (5, day 0), (5, day 2), (7, day 0), (7, day 1).
    assert list(zip(cells.entity.tolist(), cells.window.tolist(), strict=True)) == [
        (0, 0),
        (0, 2),
        (1, 0),
        (1, 1),
    ]
    assert nonzero(cells.counts) == [{3: 1}, {4: 1}, {9: 1}, {9: 2, 10: 1}]
    assert nonzero(cells.earlier_in_slice()) == [{}, {3: 1}, {}, {9: 1}]
    assert nonzero(cells.entity_sums()) == [{3: 1, 4: 1}, {9: 3, 10: 1}]
    empty = sliced_module._HourCells.of(
        np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    )
    assert empty.earlier_in_slice().shape == empty.entity_sums().shape == (0, 24)


# -- contract ----------------------------------------------------------------------------------


def test_an_event_in_an_evaluated_window_is_refused_and_changes_nothing() -> None:
    spec = FeatureSpec(name="new", kind="first_seen", field="target", where=WEB)
    sliced = SlicedFeatures([spec], WindowConfig(window="1h"))
    sliced.evaluate(frame([ev(at(1, 9), "http_visit", target="x")]))
    state = sliced.state()
    late = frame([ev(at(1, 10), "http_visit", target="y"), ev(at(1, 9, 59), "http_visit")])
    with pytest.raises(ValueError, match=r"window 2024-01-01T09:00:00\+00:00"):
        sliced.evaluate(late)
    assert sliced.state() == state
    # Events without an entity are ignored, wherever they fall.
    ignored = frame([ev(at(1, 8), "http_visit", None), ev(at(1, 10), "http_visit", target="y")])
    assert sliced.evaluate(ignored).rows() == [("a", at(1, 10), 1, 1.0)]
    assert sliced.evaluate(frame([])).height == 0


def test_restore_refuses_other_specs_and_other_bytes() -> None:
    spec = FeatureSpec(name="new", kind="first_seen", field="target", where=WEB)
    state = SlicedFeatures([spec]).state()
    with pytest.raises(ValueError, match="other feature specs"):
        SlicedFeatures([spec], WindowConfig(window="1h")).restore(state)
    with pytest.raises(ValueError, match="not the state"):
        SlicedFeatures([spec]).restore(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="duplicate feature names"):
        SlicedFeatures([spec, spec])


def test_state_grows_with_history_and_shrinks_with_forget() -> None:
    spec = FeatureSpec(name="new", kind="first_seen", field="target", where=WEB)
    sliced = SlicedFeatures([spec])
    empty = sliced.state_bytes()
    sliced.evaluate(
        frame([ev(at(1, 9), "http_visit", u, target=f"{u}{i}") for u in "ab" for i in range(50)])
    )
    both = sliced.state_bytes()
    assert both > empty + 100 * 16  # at least the 100 (entity, value) pairs
    sliced.forget(["a"])
    assert sliced.entities() == ["b"] and empty < sliced.state_bytes() < both


# -- the stable hashes' memo --------------------------------------------------------------------


def test_the_memo_gives_the_blake2b_hashes_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = sliced_module._StableMemo()
    first = pl.Series(["a.com", None, "b.com", "a.com", "é"])
    expected = [stable_hash("a.com"), None, stable_hash("b.com"), stable_hash("a.com")]
    expected.append(stable_hash("é"))
    assert memo.hashes(first).to_list() == expected
    assert memo.quick.size == 3 and np.all(np.diff(memo.quick.astype(np.float64)) >= 0)
    # Known strings come from the memo, new ones join it.
    assert memo.hashes(pl.Series(["c.com", "b.com"])).to_list() == [
        stable_hash("c.com"),
        stable_hash("b.com"),
    ]
    assert memo.quick.size == 4
    assert memo.hashes(pl.Series([None], dtype=pl.String)).to_list() == [None]
    # Full: it starts again from the strings at hand.
    monkeypatch.setattr(sliced_module, "_MAX_MEMO", 5)
    again = memo.hashes(pl.Series(["d.com", "e.com", "a.com"]))
    assert again.to_list() == [stable_hash("d.com"), stable_hash("e.com"), stable_hash("a.com")]
    assert memo.quick.size == 3
    assert sorted(memo.stable.tolist()) == sorted(again.to_list())

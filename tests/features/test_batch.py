"""evaluate_batch on tiny hand-built frames; every expected value is computed by hand.

Calendar: 2024-01-01 is a Monday, 2024-01-06 a Saturday, 2024-01-07 a Sunday.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features import FeatureSpec, WindowConfig, batch, evaluate_batch, spec_schema_hash
from features.batch import attrs_keys, hour_feature_values, mask_expr, required_columns
from tests.features._events import at, ev, feature, frame, table

LOGON = {"action": "logon"}


def test_output_schema_order_and_null_entities() -> None:
    rows = [
        ev(at(2, 9), "logon", "b"),
        ev(at(1, 9), "logon", "b"),
        ev(at(1, 10), "http_visit", "a"),
        ev(at(1, 11), "logon", None),  # no user: dropped
        ev(at(1, 23, 59, 59), "logon", "a"),
    ]
    specs = [
        FeatureSpec(name="z_logons", kind="count", where=LOGON),
        FeatureSpec(name="a_visits", kind="count", where={"action": "http_visit"}),
    ]
    out = evaluate_batch(specs, frame(rows)).collect()
    assert out.schema == pl.Schema(
        {
            "entity": pl.String(),
            "window_start": pl.Datetime("us", "UTC"),
            "n_events": pl.Int64(),
            "z_logons": pl.Float64(),
            "a_visits": pl.Float64(),
        }
    )
    assert out.rows() == [
        ("a", datetime(2024, 1, 1, tzinfo=UTC), 2, 1.0, 1.0),
        ("b", datetime(2024, 1, 1, tzinfo=UTC), 1, 1.0, 0.0),
        ("b", datetime(2024, 1, 2, tzinfo=UTC), 1, 1.0, 0.0),
    ]


def test_no_specs_and_no_events() -> None:
    assert evaluate_batch([], frame([ev(at(1, 9), "logon")])).collect().rows() == [
        ("a", datetime(2024, 1, 1, tzinfo=UTC), 1)
    ]
    spec = FeatureSpec(name="logons", kind="count", where=LOGON)
    assert evaluate_batch([spec], frame([])).collect().height == 0


def test_duplicate_names_and_missing_columns_are_errors() -> None:
    spec = FeatureSpec(name="logons", kind="count", where=LOGON)
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_batch([spec, spec], frame([]))
    with pytest.raises(ValueError, match=r"\['action'\]"):
        evaluate_batch([spec], frame([]).drop("action"))


def test_count_off_hours_weekend_boundaries() -> None:
    rows = [
        ev(at(1, 6, 59, 59), "logon"),  # Monday before 07:00: off hours
        ev(at(1, 7), "logon"),  # first in-hours second
        ev(at(1, 18, 59, 59), "logon"),  # last in-hours second
        ev(at(1, 19), "logon"),  # end of work hours: off hours
        ev(at(1, 20), "http_visit"),  # off hours but not a logon
        ev(at(6, 12), "logon"),  # Saturday noon
        ev(at(7, 23, 59), "logon"),  # Sunday
        ev(at(8, 0, 0), "logon"),  # Monday midnight
    ]
    specs = [
        FeatureSpec(name="logons", kind="count", where=LOGON),
        FeatureSpec(name="off", kind="off_hours", where=LOGON),
        FeatureSpec(name="weekend", kind="weekend", where=LOGON),
        FeatureSpec(name="all_off", kind="off_hours"),
    ]
    got = table(rows, specs)
    day = {k[1].day: v for k, v in got.items()}
    assert day[1] == {"n_events": 5, "logons": 4.0, "off": 2.0, "weekend": 0.0, "all_off": 3.0}
    assert day[6] == {"n_events": 1, "logons": 1.0, "off": 1.0, "weekend": 1.0, "all_off": 1.0}
    assert day[7] == {"n_events": 1, "logons": 1.0, "off": 1.0, "weekend": 1.0, "all_off": 1.0}
    assert day[8] == {"n_events": 1, "logons": 1.0, "off": 1.0, "weekend": 0.0, "all_off": 1.0}


def test_off_hours_night_shift_and_custom_weekend() -> None:
    rows = [
        ev(at(1, 23), "logon"),  # in a 22-06 shift
        ev(at(1, 5, 59), "logon"),  # in
        ev(at(1, 6), "logon"),  # off
        ev(at(1, 12), "logon"),  # off
        ev(at(5, 23), "logon"),  # Friday: the weekend here
    ]
    config = WindowConfig(work_hours=(22, 6), weekend_days=(5,))
    spec = FeatureSpec(name="off", kind="off_hours", where=LOGON)
    assert feature(rows, spec, config) == {("a", 1): 2.0, ("a", 5): 1.0}


def test_sum_failure_count_max_split_and_attrs() -> None:
    rows = [
        ev(at(1, 9), "email_send", target="x@a; y@a;z@a", nbytes=100, attrs='{"attachments": "2"}'),
        ev(at(1, 10), "email_send", target="x@a", nbytes=None, attrs=None),
        ev(at(1, 11), "email_send", target=None, nbytes=50, attrs='{"attachments": 1}'),
        ev(at(1, 12), "email_view", target="a;b;c;d;e", nbytes=999),  # not sent: ignored
        ev(at(1, 13), "auth", target="h1", outcome="failure"),
        ev(at(1, 14), "auth", target="h1", outcome="failure"),
        ev(at(1, 15), "auth", target="h1", outcome="success"),
        ev(at(1, 16), "logon", outcome="failure"),  # not an auth
        ev(at(2, 9), "email_send", target=";;", nbytes=7),
    ]
    send = {"action": "email_send"}
    specs = [
        FeatureSpec(name="bytes", kind="sum", field="bytes", where=send),
        FeatureSpec(name="attachments", kind="sum", field="attrs.attachments", where=send),
        FeatureSpec(name="failed", kind="failure_count", where={"action": "auth"}),
        FeatureSpec(name="max_rcpt", kind="max_split", field="target", where=send),
        FeatureSpec(
            name="ones", kind="max_split", field="target", where=send, params={"split": ""}
        ),
    ]
    got = table(rows, specs)
    day1, day2 = (got[("a", at(d, 0))] for d in (1, 2))
    assert day1 == {
        "n_events": 8,
        "bytes": 150.0,
        "attachments": 3.0,
        "failed": 2.0,
        "max_rcpt": 3.0,
        "ones": 1.0,
    }
    assert day2 == {
        "n_events": 1,
        "bytes": 7.0,
        "attachments": 0.0,
        "failed": 0.0,
        "max_rcpt": 0.0,
        "ones": 1.0,
    }


def test_where_membership_and_attrs_filter() -> None:
    rows = [
        ev(at(1, 9), "usb_connect", attrs='{"activity": "Connect"}'),
        ev(at(1, 10), "usb_disconnect", attrs='{"activity": "Disconnect"}'),
        ev(at(1, 11), "logon"),
        ev(at(1, 12), "logoff"),
    ]
    spec_in = FeatureSpec(name="n", kind="count", where={"action": ("logon", "usb_connect")})
    spec_attr = FeatureSpec(name="n", kind="count", where={"attrs.activity": "Disconnect"})
    assert feature(rows, spec_in) == {("a", 1): 2.0}
    assert feature(rows, spec_attr) == {("a", 1): 1.0}


def test_distinct_plain_and_split() -> None:
    rows = [
        ev(at(1, 9), "email_send", target="b@x;c@x"),
        ev(at(1, 10), "email_send", target="c@x; d@x"),
        ev(at(1, 11), "email_send", target=""),
        ev(at(1, 12), "email_send", target=None),
        ev(at(1, 13), "email_view", target="e@x"),
    ]
    send = {"action": "email_send"}
    split = FeatureSpec(
        name="n", kind="distinct", field="target", where=send, params={"split": ";"}
    )
    whole = FeatureSpec(name="n", kind="distinct", field="target", where=send)
    assert feature(rows, split) == {("a", 1): 3.0}  # b, c, d
    assert feature(rows, whole) == {("a", 1): 2.0}  # the two non-empty strings


def test_first_seen_across_days() -> None:
    rows = [
        # a: day 1 is its first window, so nothing is new there
        ev(at(1, 9), "logon", host="h1"),
        ev(at(1, 10), "logon", host="h2"),
        ev(at(2, 9), "logon", host="h2"),
        ev(at(2, 10), "logon", host="h3"),  # new
        ev(at(2, 11), "logon", host="h3"),  # same new host, counted once
        ev(at(3, 9), "logon", host="h1"),
        ev(at(3, 10), "logon", host="h4"),  # new
        ev(at(3, 11), "http_visit", host="h5"),  # not a logon
        ev(at(4, 9), "logon", host="h5"),  # new: the visit on day 3 is not logon history
        # b: first window on day 2; a's history is not b's
        ev(at(2, 9), "logon", "b", host="h1"),
        ev(at(3, 9), "logon", "b", host="h1"),
        ev(at(3, 10), "logon", "b", host="h2"),
        # c: first window (day 1) has no logon; its day-2 logon host is new
        ev(at(1, 9), "http_visit", "c", host="h9"),
        ev(at(2, 9), "logon", "c", host="h9"),
    ]
    spec = FeatureSpec(name="new_hosts", kind="first_seen", field="host", where=LOGON)
    assert feature(rows, spec) == {
        ("a", 1): 0.0,
        ("a", 2): 1.0,
        ("a", 3): 1.0,
        ("a", 4): 1.0,
        ("b", 2): 0.0,
        ("b", 3): 1.0,
        ("c", 1): 0.0,
        ("c", 2): 1.0,
    }


def test_first_seen_split_recipients() -> None:
    rows = [
        ev(at(1, 9), "email_send", target="x@a;y@a"),
        ev(at(2, 9), "email_send", target="y@a;z@a"),
        ev(at(2, 10), "email_send", target="z@a; w@a"),
        ev(at(3, 9), "email_send", target="w@a;x@a"),
    ]
    spec = FeatureSpec(
        name="new_rcpt",
        kind="first_seen",
        field="target",
        where={"action": "email_send"},
        params={"split": ";"},
    )
    assert feature(rows, spec) == {("a", 1): 0.0, ("a", 2): 2.0, ("a", 3): 0.0}


def _unusual_rows() -> list[dict[str, object]]:
    return [
        # day 1 history: 3 logons at 09h, 1 at 10h
        ev(at(1, 9), "logon"),
        ev(at(1, 9, 30), "logon"),
        ev(at(1, 9, 45), "logon"),
        ev(at(1, 10), "logon"),
        # day 2: history T = 4; shares 09h 0.75, 10h 0.25, 03h 0
        ev(at(2, 9), "logon"),
        ev(at(2, 10), "logon"),
        ev(at(2, 3), "logon"),
        # day 3: history T = 7; 09h 4/7, 10h 2/7 = 0.286, 03h 1/7 = 0.143
        ev(at(3, 3), "logon"),
        ev(at(3, 9), "logon"),
        ev(at(3, 10), "logon"),
        ev(at(3, 14), "http_visit"),  # not a logon
        # b has logons at 03h only: its history does not leak into a's
        *[ev(at(d, 3), "logon", "b") for d in (1, 1, 1, 1, 2)],
    ]


def test_unusual_hour_with_enough_history() -> None:
    spec = FeatureSpec(
        name="unusual",
        kind="unusual_hour",
        where=LOGON,
        params={"min_events": 4, "min_share": 0.3},
    )
    assert feature(_unusual_rows(), spec) == {
        ("a", 1): 0.0,  # no history
        ("a", 2): 2.0,  # 10h (0.25 < 0.3) and 03h (0)
        ("a", 3): 2.0,  # 03h and 10h; 09h at 4/7 is usual
        ("b", 1): 0.0,
        ("b", 2): 0.0,  # 03h is all of b's history
    }


def test_unusual_hour_without_enough_history() -> None:
    spec = FeatureSpec(
        name="unusual",
        kind="unusual_hour",
        where=LOGON,
        params={"min_events": 5, "min_share": 0.3},
    )
    got = feature(_unusual_rows(), spec)
    assert got[("a", 2)] == 0.0  # T = 4 < 5
    assert got[("a", 3)] == 2.0  # T = 7
    default = FeatureSpec(name="unusual", kind="unusual_hour", where=LOGON)
    assert set(feature(_unusual_rows(), default).values()) == {0.0}  # T < 20 everywhere


def test_hour_deviation_circular_mean() -> None:
    rows = [
        ev(at(1, 9), "logon"),
        ev(at(1, 11), "logon"),  # history mean: 10h
        ev(at(2, 10), "logon"),  # 0 h away
        ev(at(2, 22), "logon"),  # 12 h away
        ev(at(1, 23), "logon", "b"),
        ev(at(1, 1), "logon", "b"),  # history mean across midnight: 0h
        ev(at(2, 2), "logon", "b"),  # 2 h away
        ev(at(2, 22, 59), "logon", "b"),  # hour 22: 2 h away
    ]
    spec = FeatureSpec(name="dev", kind="hour_deviation", where=LOGON, params={"min_events": 2})
    got = feature(rows, spec)
    assert got == pytest.approx({("a", 1): 0.0, ("a", 2): 6.0, ("b", 1): 0.0, ("b", 2): 2.0})
    strict = FeatureSpec(name="dev", kind="hour_deviation", where=LOGON, params={"min_events": 3})
    assert set(feature(rows, strict).values()) == {0.0}


def _rarity_rows() -> list[dict[str, object]]:
    web = "http_visit"
    return [
        ev(at(1, 9), web, "a", target="d1"),
        ev(at(1, 9), web, "b", target="d1"),
        ev(at(1, 9), web, "c", target="d2"),
        ev(at(1, 9), "logon", "e"),  # e never browses: not in the population
        ev(at(2, 9), web, "a", target="d2"),  # k = 1 (c), N = 3
        ev(at(2, 9), web, "a", target="d3"),  # k = 0
        ev(at(2, 10), web, "a", target="d3"),
        ev(at(2, 9), web, "b", target="d1"),  # k = 1 (a; b itself excluded)
        ev(at(2, 9), web, "c", target="d1"),  # k = 2 (a, b)
        ev(at(3, 9), web, "d", target="d1"),  # k = 3 (a, b, c), N = 3
        ev(at(3, 9), web, "a", target="d3"),  # k = 0: only a had d3
        ev(at(3, 9), web, "b", target="d2"),  # k = 2 (a, c)
    ]


def test_rarity_max_and_mean() -> None:
    where = {"action": "http_visit"}
    max_spec = FeatureSpec(name="rarity", kind="rarity", field="target", where=where)
    mean_spec = FeatureSpec(
        name="rarity", kind="rarity", field="target", where=where, params={"agg": "mean"}
    )
    log2_3 = 1.584962500721156
    expected_max = {
        # day 1: N = 0, so every value scores log2(1) - log2(1) = 0
        ("a", 1): 0.0,
        ("b", 1): 0.0,
        ("c", 1): 0.0,
        ("e", 1): 0.0,
        # day 2: N = 3; score = log2(4) - log2(k + 1)
        ("a", 2): 2.0,  # d3: k = 0
        ("b", 2): 1.0,  # d1: k = 1
        ("c", 2): 2.0 - log2_3,  # d1: k = 2
        # day 3: N = 3 (d joins only now)
        ("d", 3): 0.0,  # d1: k = 3
        ("a", 3): 2.0,  # d3: k = 0
        ("b", 3): 2.0 - log2_3,  # d2: k = 2
    }
    assert feature(_rarity_rows(), max_spec) == pytest.approx(expected_max)
    expected_mean = dict(expected_max)
    expected_mean[("a", 2)] = 1.5  # (1 + 2) / 2 over d2, d3
    assert feature(_rarity_rows(), mean_spec) == pytest.approx(expected_mean)


def test_rare_count() -> None:
    where = {"action": "http_visit"}
    spec = FeatureSpec(name="rare", kind="rare_count", field="target", where=where)
    assert feature(_rarity_rows(), spec) == {
        ("a", 1): 1.0,
        ("b", 1): 1.0,
        ("c", 1): 1.0,
        ("e", 1): 0.0,
        ("a", 2): 2.0,  # d2 (k = 1), d3 (k = 0)
        ("b", 2): 1.0,  # d1 (k = 1)
        ("c", 2): 0.0,  # d1 (k = 2)
        ("d", 3): 0.0,
        ("a", 3): 1.0,
        ("b", 3): 0.0,
    }
    strict = FeatureSpec(
        name="rare", kind="rare_count", field="target", where=where, params={"max_entities": 0}
    )
    got = feature(_rarity_rows(), strict)
    assert (got[("a", 2)], got[("b", 2)], got[("a", 3)]) == (1.0, 0.0, 1.0)


def _beacon(user: str, target: str, start: datetime, gaps: list[int]) -> list[dict[str, object]]:
    times = [start.timestamp()]
    for gap in gaps:
        times.append(times[-1] + gap)
    return [ev(datetime.fromtimestamp(t, tz=UTC), "http_visit", user, target=target) for t in times]


def test_value_kinds_sharing_one_source_match_each_alone() -> None:
    # All value kinds over one (field, filter) share a cell table and its history tables;
    # together they must give what each gives alone, and the hand values below.
    rows = [*_rarity_rows(), *_beacon("a", "d4", at(3, 12), [60] * 11)]  # new d4, 12 events
    where = {"action": "http_visit"}
    kinds = ["distinct", "first_seen", "rarity", "rare_count", "periodicity", "max_per_target"]
    specs = [FeatureSpec(name=k, kind=k, field="target", where=where) for k in kinds]
    together = table(rows, specs)
    for spec in specs:
        alone = feature(rows, spec)
        assert {(e, w.day): v[spec.name] for (e, w), v in together.items()} == alone
    # a on day 3: d3 (k = 0, seen by a on day 2) and d4 (new, k = 0, a 60 s beacon); N = 3.
    assert together[("a", at(3, 0))] == {
        "n_events": 13,
        "distinct": 2.0,
        "first_seen": 1.0,
        "rarity": 2.0,
        "rare_count": 2.0,
        "periodicity": 1.0,
        "max_per_target": 12.0,
    }


def _periodicity_rows() -> list[dict[str, object]]:
    return [
        # a: an exact 300 s beacon, 13 events, listed out of order
        *reversed(_beacon("a", "c2.example", at(1, 2), [300] * 12)),
        *_beacon("a", "news.example", at(1, 9), [5, 500, 60, 7]),  # too few events
        # b: 13 events, gaps six 200 s and six 400 s: mean 300, sd 100, cv 1/3
        *_beacon("b", "mail.example", at(1, 9), [200, 400] * 6),
        # c: exact beacon, 12 events qualifies (default min_events 12); d: 11 do not
        *_beacon("c", "c2.example", at(1, 2), [60] * 11),
        *_beacon("d", "c2.example", at(1, 2), [60] * 10),
        # e: 12 events in the same second: no inter-arrival time, regularity 0
        *_beacon("e", "c2.example", at(1, 2), [0] * 11),
        # f: very irregular: gaps ten 100 s and one 1200 s, cv > 1
        *_beacon("f", "x.example", at(1, 2), [100] * 10 + [1200]),
    ]


_BEACON = FeatureSpec(
    name="beacon", kind="periodicity", field="target", where={"action": "http_visit"}
)


def test_periodicity_beacon_vs_irregular() -> None:
    rows = _periodicity_rows()
    spec = _BEACON
    got = feature(rows, spec)
    assert got == pytest.approx(
        {
            ("a", 1): 1.0,
            ("b", 1): 2.0 / 3.0,
            ("c", 1): 1.0,
            ("d", 1): 0.0,
            ("e", 1): 0.0,
            ("f", 1): 0.0,
        }
    )


def test_periodicity_gaps_computed_ahead_of_the_features_give_the_same_values() -> None:
    # features.sliced computes a source's gaps from its cells before their history is known.
    events, config = frame(_periodicity_rows()), WindowConfig()
    plan = batch._make_plan([_BEACON])
    (source,) = plan.value_sources
    values = batch._source_values(events, plan, config, source, with_ts=True)
    cells = values.group_by(batch._KEY, batch.WINDOW, batch._VALUE).agg(pl.len().alias("__n"))
    busy = batch._busy_cells(cells, [_BEACON]).collect()
    # The cells of 12 events or more (min_events): a's, b's, c's, e's and f's beacons.
    assert busy.height == 5
    gaps = batch._gap_stats(values, busy.lazy())
    ahead = batch._value_features(events, plan, config, source, [_BEACON], gaps=gaps)
    default = batch._value_features(events, plan, config, source, [_BEACON])
    got, expected = ahead.collect().sort(batch._KEY), default.collect().sort(batch._KEY)
    assert_frame_equal(got, expected, check_exact=True)
    assert sorted(got.get_column("beacon").to_list()) == pytest.approx(
        [0.0, 0.0, 0.0, 2.0 / 3.0, 1.0, 1.0]
    )


def test_max_per_target() -> None:
    rows = [
        ev(at(1, 9), "auth", target="x"),
        ev(at(1, 10), "auth", target="x"),
        ev(at(1, 11), "auth", target="y"),
        ev(at(1, 12), "auth", target="x"),
        ev(at(1, 13), "connect", target="y"),
        ev(at(2, 13), "connect", target="y"),
    ]
    spec = FeatureSpec(name="m", kind="max_per_target", field="target", where={"action": "auth"})
    assert feature(rows, spec) == {("a", 1): 3.0, ("a", 2): 0.0}


def test_host_entity_and_hourly_windows() -> None:
    rows = [
        ev(at(1, 9, 5), "auth", "u1", host="srv", target="dc"),
        ev(at(1, 9, 55), "auth", "u2", host="srv", target="db"),
        ev(at(1, 10, 0), "auth", None, host="srv", target="fs"),  # no user: still a host event
        ev(at(1, 10, 30), "auth", "u1", host="srv", target="dc"),
        ev(at(1, 10, 40), "auth", "u1", host=None, target="dc"),  # no host: dropped
        ev(at(1, 9, 0), "logon", "u1", host="ws1"),
    ]
    config = WindowConfig(entity="host", window="1h")
    specs = [
        FeatureSpec(name="dests", kind="distinct", field="target", where={"action": "auth"}),
        FeatureSpec(name="new_dests", kind="first_seen", field="target", where={"action": "auth"}),
        FeatureSpec(name="users", kind="distinct", field="user"),
    ]
    got = table(rows, specs, config)
    assert got == {
        ("srv", at(1, 9)): {"n_events": 2, "dests": 2.0, "new_dests": 0.0, "users": 2.0},
        ("srv", at(1, 10)): {"n_events": 2, "dests": 2.0, "new_dests": 1.0, "users": 1.0},
        ("ws1", at(1, 9)): {"n_events": 1, "dests": 0.0, "new_dests": 0.0, "users": 1.0},
    }


def test_schema_hash_tracks_definitions() -> None:
    base = FeatureSpec(name="logons", kind="count", where=LOGON, doc="Logons.")
    other = FeatureSpec(name="visits", kind="count", where={"action": "http_visit"})
    h = spec_schema_hash([base, other])
    assert h == spec_schema_hash([base, other])
    assert len(h) == 64
    assert h == spec_schema_hash(
        [FeatureSpec(name="logons", kind="count", where=LOGON, doc="Reworded."), other]
    )
    assert h != spec_schema_hash([other, base])
    assert h != spec_schema_hash([base])
    assert h != spec_schema_hash(
        [FeatureSpec(name="logons", kind="count", where={"action": "logoff"}), other]
    )
    rare = FeatureSpec(name="r", kind="rare_count", field="target")
    assert spec_schema_hash([rare]) == spec_schema_hash(
        [FeatureSpec(name="r", kind="rare_count", field="target", params={"max_entities": 1})]
    )
    assert spec_schema_hash([rare]) != spec_schema_hash(
        [FeatureSpec(name="r", kind="rare_count", field="target", params={"max_entities": 2})]
    )
    assert spec_schema_hash([base], WindowConfig()) != spec_schema_hash(
        [base], WindowConfig(window="1h")
    )


def test_attrs_as_a_struct_reads_like_attrs_as_json() -> None:
    rows = [
        ev(at(1, 9), "email_send", attrs='{"attachments": "2", "from": "x"}'),
        ev(at(1, 10), "email_send", attrs='{"from": "y"}'),
        ev(at(1, 11), "usb_connect", attrs='{"activity": "Connect"}'),
        ev(at(2, 9), "email_send", attrs='{"attachments": "5"}'),
    ]
    specs = [
        FeatureSpec(
            name="attachments",
            kind="sum",
            field="attrs.attachments",
            where={"action": "email_send"},
        ),
        FeatureSpec(name="connects", kind="count", where={"attrs.activity": "Connect"}),
    ]
    assert attrs_keys(specs) == {"attachments", "activity"}
    assert required_columns(specs, WindowConfig()) == {"ts", "user", "action", "attrs"}
    struct = pl.Struct({"activity": pl.String, "attachments": pl.String})
    events = frame(rows)
    as_struct = events.with_columns(pl.col("attrs").str.json_decode(struct))
    expected = evaluate_batch(specs, events).collect()
    got = evaluate_batch(specs, as_struct).collect(engine="streaming")
    assert_frame_equal(got, expected)
    assert got.select("attachments", "connects").rows() == [(2.0, 1.0), (5.0, 0.0)]


def test_a_pattern_matching_the_empty_string_only_counts_rows_the_exact_conditions_keep() -> None:
    # "x?" matches any text, the empty string included: only the rows of the named actions
    # with a non-null target may count, whatever the other rows hold.
    frame = pl.DataFrame(
        {
            "action": ["file_open", "file_open", "logon", None, "file_open"],
            "target": ["a.txt", None, "b.txt", "c.txt", ""],
        }
    )
    mask = mask_expr([("action", ("file_open",)), ("target~", ("x?",))])
    assert frame.select(mask).to_series().to_list() == [True, False, False, False, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hour_feature_values_equal_the_polars_expressions_bit_for_bit(seed: int) -> None:
    # Counts shaped like the daemon's (one hour in the window) and like daily windows (many
    # hours), with empty and tiny histories: the numpy path must give the very same floats.
    rng = np.random.default_rng(seed)
    cells = 3000
    now = rng.poisson(0.4, (cells, 24)).astype(np.int64)
    now[:1000] = 0
    now[np.arange(1000), rng.integers(0, 24, 1000)] = rng.integers(1, 9, 1000)
    now[now.sum(axis=1) == 0, 5] = 1  # a cell has at least one matching event
    before = rng.poisson(rng.choice([0.0, 0.05, 2.0, 40.0], (cells, 1)), (cells, 24))
    before = before.astype(np.int64)
    before[:50] = 0
    before[50:100, 13] = 3  # all history at one hour (sine of hour 13 is negative)
    specs = [
        FeatureSpec(name="odd", kind="unusual_hour", where={"action": "logon"}),
        FeatureSpec(name="odd_strict", kind="unusual_hour", where={"action": "logon"},
                    params={"min_events": 1, "min_share": 0.3}),
        FeatureSpec(name="drift", kind="hour_deviation", where={"action": "logon"}),
        FeatureSpec(name="drift_early", kind="hour_deviation", where={"action": "logon"},
                    params={"min_events": 1}),
    ]  # fmt: skip
    hours = pl.DataFrame(
        {
            batch._KEY: pl.Series(np.arange(cells, dtype=np.uint64)),
            batch.WINDOW: [datetime(2024, 1, 1, tzinfo=UTC)] * cells,
            **{f"__c{h}": now[:, h] for h in range(24)},
            **{f"__b{h}": before[:, h] for h in range(24)},
        }
    )
    expected = batch._hour_features(
        pl.LazyFrame(), batch._Plan(), WindowConfig(), (), specs, hours.lazy()
    ).collect()
    values = hour_feature_values(specs, now, before)
    for spec in specs:
        want = expected.get_column(spec.name).to_numpy()
        assert values[spec.name].dtype == np.float64
        assert values[spec.name].view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert expected.get_column("drift").max() > 0  # type: ignore[operator]
    assert expected.get_column("odd").max() > 0  # type: ignore[operator]


def test_the_hour_of_utc_microseconds_is_that_of_dt_hour() -> None:
    # Before 1970 too: the floor division must not round towards zero.
    rng = np.random.default_rng(3)
    micros = rng.integers(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6, 20_000)
    edges = [-1, 0, 1, -3_600_000_000, -3_600_000_001, -86_400_000_000, 86_399_999_999]
    ts = pl.Series(np.concatenate([micros, edges])).cast(pl.Datetime("us", "UTC"))
    plan = batch._Plan(ts_utc_micros=True)
    hours = pl.DataFrame({"ts": ts}).select(
        batch._hour_of_day(plan).alias("fast"), pl.col("ts").dt.hour().cast(pl.Int32).alias("dt")
    )
    assert hours.get_column("fast").to_list() == hours.get_column("dt").to_list()
    assert hours.get_column("fast").tail(7).to_list() == [23, 0, 0, 23, 22, 0, 23]


def test_gap_stats_take_each_cells_gaps_in_time_order_and_none_across_cells() -> None:
    def rows(key: int, seconds: list[int]) -> list[dict[str, object]]:
        return [
            {
                batch._KEY: key,
                batch.WINDOW: datetime(2024, 1, 1, tzinfo=UTC),
                batch._VALUE: 7,
                "ts": datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC),
            }
            for s in seconds
        ]

    # Cells 1 and 2 interleaved and out of time order; cell 3 is not busy.
    values = pl.DataFrame(
        [
            *rows(1, [30]),
            *rows(2, [50]),
            *rows(1, [0]),
            *rows(3, [1, 2]),
            *rows(2, [5]),
            *rows(1, [10]),
        ],
        schema={
            batch._KEY: pl.UInt64,
            batch.WINDOW: pl.Datetime("us", "UTC"),
            batch._VALUE: pl.UInt64,
            "ts": pl.Datetime("us", "UTC"),
        },
    )
    cells = values.select(pl.struct(batch._KEY, batch.WINDOW, batch._VALUE).hash().alias("h"))
    cell_of = dict(
        zip(values.get_column(batch._KEY).to_list(), cells.get_column("h"), strict=False)
    )
    busy = pl.DataFrame({batch._CELL: [cell_of[1], cell_of[2]]}, schema={batch._CELL: pl.UInt64})
    got = batch._gap_stats(values.lazy(), busy.lazy()).collect()
    by_cell = {cell: (mean, sd) for cell, mean, sd in got.iter_rows()}
    # Cell 1 at 0, 10, 30 s: gaps 10 and 20 s. Cell 2 at 5, 50 s: one gap of 45 s.
    assert by_cell == {cell_of[1]: (15e6, 5e6), cell_of[2]: (45e6, 0.0)}


def test_the_window_table_takes_entity_names_by_key_when_given() -> None:
    rows = [
        ev(at(1, 9), "logon", "a"),
        ev(at(1, 22), "logon", "a"),
        ev(at(2, 9), "logon", "b"),
    ]
    specs = [FeatureSpec(name="logons", kind="count", where=LOGON)]
    events = frame(rows).with_columns(
        pl.col("user").replace_strict({"a": 11, "b": 12}, return_dtype=pl.UInt64).alias("__k")
    )
    plan = batch._checked_plan(specs, events, WindowConfig())
    plan.key_column = "__k"
    plan.entity_not_null = True
    # Names the events do not hold: the table must take them from ``names``, by key.
    names = pl.LazyFrame(
        {batch._KEY: [12, 11], batch.ENTITY: ["bob", "ann"]},
        schema={batch._KEY: pl.UInt64, batch.ENTITY: pl.String},
    )
    by_name = batch._window_table(specs, events, WindowConfig(), plan, names=names).collect()
    assert by_name.sort(batch.ENTITY).select(batch.ENTITY, batch.N_EVENTS, "logons").rows() == [
        ("ann", 2, 2.0),
        ("bob", 1, 1.0),
    ]
    by_first = batch._window_table(specs, events, WindowConfig(), plan).collect()
    assert by_first.sort(batch.ENTITY).get_column(batch.ENTITY).to_list() == ["a", "b"]

"""Filter masks search patterns only where the exact conditions hold; sliced evaluation names
the entities new in a slice from their first row."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import polars as pl
import pytest

from features.batch import mask_expr
from features.sliced import SlicedFeatures
from features.spec import FeatureSpec, WindowConfig
from streams.event import POLARS_EVENT_SCHEMA

_ACTIONS = ["file_open", "file_write", "logon", None, "file_open", "file_open", "file_open"]
# "\u212a" (KELVIN SIGN) is a "k" to a case-insensitive pattern.
_TARGETS = ["C:\\MIMIKATZ.exe", None, "mimikatz", "mimikatz", "", "\u212aeylog.txt", "notes.txt"]


def _expected(actions: set[str], pattern: str) -> list[bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return [
        action in actions and target is not None and regex.search(target) is not None
        for action, target in zip(_ACTIONS, _TARGETS, strict=True)
    ]


@pytest.mark.parametrize("n_values", [1, 2, 3, 4, 5, 6])
def test_a_filter_keeps_exactly_the_rows_holding_one_of_its_values_however_many(
    n_values: int,
) -> None:
    # A few values are compared one by one and more with is_in: the rows kept are the same.
    actions = ["a", "b", "c", "d", "e", "f", None, "g", "a"]
    outcomes = ["ok", None, "ok", "no", "ok", "ok", "ok", "ok", "no"]
    frame = pl.DataFrame({"action": actions, "outcome": outcomes})
    wanted = ("a", "b", "c", "d", "e", "f")[:n_values]
    alone = frame.select(mask_expr([("action", wanted)])).to_series().to_list()
    assert alone == [action in wanted for action in actions]
    both = frame.select(mask_expr([("action", wanted), ("outcome", ("ok",))])).to_series()
    expected = [a in wanted and o == "ok" for a, o in zip(actions, outcomes, strict=True)]
    assert both.to_list() == expected


def test_a_pattern_counts_only_on_rows_of_the_actions_and_matches_case_insensitively() -> None:
    frame = pl.DataFrame({"action": _ACTIONS, "target": _TARGETS})
    mask = mask_expr([("action", ("file_open", "file_write")), ("target~", ("keylog|mimikatz",))])
    got = frame.select(mask).to_series().to_list()
    assert got == [True, False, False, False, False, True, False]
    assert got == _expected({"file_open", "file_write"}, "keylog|mimikatz")


def test_a_pattern_without_exact_conditions_searches_every_row_and_a_null_never_matches() -> None:
    frame = pl.DataFrame({"target": _TARGETS})
    got = frame.select(mask_expr([("target~", ("x?",))])).to_series().to_list()
    assert got == [True, False, True, True, True, True, True]


def test_two_patterns_both_hold_where_the_exact_condition_does() -> None:
    frame = pl.DataFrame(
        {
            "action": ["http_visit", "http_visit", "http_visit", "logon"],
            "target": ["a.com", "b.com", "a.com", "a.com"],
            "host": ["pc-1", "pc-1", "srv", "pc-1"],
        }
    )
    key = [("action", ("http_visit",)), ("host~", ("^PC-",)), ("target~", ("^a\\.",))]
    assert frame.select(mask_expr(key)).to_series().to_list() == [True, False, False, False]


def _events(day: int, users: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [datetime(2024, 1, day, 9 + i, tzinfo=UTC) for i in range(len(users))],
            "source": "x",
            "action": "logon",
            "user": users,
            "host": [f"pc-{user}" for user in users],
            "target": None,
            "bytes": None,
            "outcome": None,
            "attrs": None,
        },
        schema=POLARS_EVENT_SCHEMA,
    )


def test_entities_new_in_a_later_slice_keep_their_names_beside_the_known_ones() -> None:
    spec = FeatureSpec(name="new_hosts", kind="first_seen", field="host")
    sliced = SlicedFeatures([spec], WindowConfig())
    first = sliced.evaluate(_events(1, ["ann", "bob", "ann"]))
    # Day 2: a known entity first, then two new ones (one of them twice).
    second = sliced.evaluate(_events(2, ["bob", "eve", "cyd", "eve"]))
    assert first.select("entity", "n_events").rows() == [("ann", 2), ("bob", 1)]
    assert second.select("entity", "n_events", "new_hosts").rows() == [
        ("bob", 1, 0.0),
        ("cyd", 1, 0.0),
        ("eve", 2, 0.0),
    ]
    assert sliced.entities() == ["ann", "bob", "cyd", "eve"]

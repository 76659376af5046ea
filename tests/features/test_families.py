"""Feature families (``templates``, ``windows``): the catalogue API, hand-computed values,
and batch / online / columnar parity.

Calendar: 2024-01-01 is a Monday; working hours 7-19 UTC, weekend Saturday and Sunday.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from features import DEFAULT_SPECS, WindowConfig, default_specs, evaluate_batch, spec_schema_hash
from features.catalog import (
    ERROR_WORDS_PATTERN,
    FAMILY_NAMES,
    FEATURE_FAMILIES,
    TEMPLATE_ACTIONS_PATTERN,
    check_families,
    family_specs,
)
from features.columnar import ColumnarOnline
from features.online import OnlineFeatures, WindowVector
from streams.batch import events_from_frame
from streams.event import POLARS_EVENT_SCHEMA, Event
from tests.features._events import at, ev, frame, table
from tests.features.test_online_frame import assert_same_vectors, in_batches, per_event

TEMPLATE_NAMES = [s.name for s in FEATURE_FAMILIES["templates"]]
WINDOWS_NAMES = [s.name for s in FEATURE_FAMILIES["windows"]]


def tpl(ts: datetime, user: str, cluster: int, text: str) -> dict[str, object]:
    """A drain event: action ``template:<cluster>``, the template text in attrs."""
    return ev(ts, f"template:{cluster}", user, attrs=json.dumps({"template": text}))


ACCEPTED, REFUSED = "Accepted connection from <IP>", "Connection refused by <IP>"
OPENED, FATAL, DISK = "Session opened for user <*>", "FATAL Error in <*>", "Disk check ok"
# A syslog line says "error" in its message: the error feature reads templates only.
SYSLOG_ATTRS = json.dumps({"app": "CRON", "message": "error: job failed"})

TEMPLATE_ROWS = [
    # day 1
    tpl(at(1, 9), "a", 1, ACCEPTED),
    tpl(at(1, 10), "a", 1, ACCEPTED),
    tpl(at(1, 11), "a", 2, REFUSED),
    ev(at(1, 9), "logon", "a", host="pc1"),  # no template: in no template feature
    tpl(at(1, 9, 30), "b", 1, ACCEPTED),
    ev(at(1, 12), "syslog.CRON", "c", attrs=SYSLOG_ATTRS),
    tpl(at(1, 9), "d", 1, ACCEPTED),
    # day 2
    tpl(at(2, 9), "a", 1, ACCEPTED),
    tpl(at(2, 10), "a", 3, OPENED),
    ev(at(2, 11), "syslog.sshd", "a"),
    ev(at(2, 12), "syslog", "a"),  # a syslog line naming no program
    ev(at(2, 13), "syslogd_restart", "a"),  # not a syslog.<app> action
    tpl(at(2, 9), "b", 2, REFUSED),
    tpl(at(2, 9, 30), "b", 3, OPENED),
    ev(at(2, 12), "syslog.CRON", "c", attrs=SYSLOG_ATTRS),
    tpl(at(2, 9), "d", 1, ACCEPTED),
    # day 3
    tpl(at(3, 23), "a", 4, FATAL),
    tpl(at(3, 9), "a", 1, ACCEPTED),
    tpl(at(3, 9), "b", 4, FATAL),
    tpl(at(3, 9), "c", 9, DISK),
    tpl(at(3, 9), "d", 1, ACCEPTED),
]

WINDOWS_ROWS = [
    # day 1 (Monday)
    ev(at(1, 9), "logon_network", "a", host="srv1"),
    ev(at(1, 10), "logon_network", "a", host="srv2"),
    ev(at(1, 20), "logon_network", "a", host="srv1"),  # off hours
    ev(at(1, 9), "logon", "a", host="pc1"),  # a person at a machine: in no windows feature
    ev(at(1, 3), "logon_batch", "a", host="pc1"),
    ev(at(1, 9), "logon_network", "b", host="srv1"),
    # day 2
    ev(at(2, 9), "logon_network", "a", host="srv1"),
    ev(at(2, 6), "logon_network", "a", host="srv3"),  # new, off hours
    ev(at(2, 12), "logon_network", "a", host="srv4"),  # new
    ev(at(2, 12), "logon_service", "a", host="srv3"),
    ev(at(2, 13), "logon_batch", "a", host="srv3"),
    ev(at(2, 14), "logon_new_credentials", "a", host="pc1"),
    ev(at(2, 14), "explicit_credentials", "a", host="pc1", target="srv9"),
    ev(at(2, 9), "logon_network", "b", host="srv2"),  # new for b
    # day 6 (Saturday)
    ev(at(6, 10), "logon_network", "a", host="srv1"),
]


# -- the catalogue API --------------------------------------------------------------------------


def test_families_are_named_documented_and_disjoint_from_the_default() -> None:
    assert FAMILY_NAMES == ("templates", "windows")
    names = [s.name for e in ("user", "host") for s in default_specs(e, FAMILY_NAMES)]
    for entity in ("user", "host"):
        specs = default_specs(entity, FAMILY_NAMES)
        assert len({s.name for s in specs}) == len(specs)
    assert len(names) == 2 * len(DEFAULT_SPECS) + 2 * (len(TEMPLATE_NAMES) + len(WINDOWS_NAMES))
    for family in FAMILY_NAMES:
        assert 3 <= len(FEATURE_FAMILIES[family]) <= 5
        for spec in family_specs(family, "user") + family_specs(family, "host"):
            assert spec.doc.endswith("."), spec.name
            assert spec.explain.format(observed=3.0, typical="0–1", name=spec.name)
            assert spec.technique is None or re.fullmatch(r"T\d{4}(\.\d{3})?", spec.technique)
    techniques = {s.name: s.technique for s in default_specs("host", ["windows"])}
    assert techniques["new_network_logon_users"] == "T1021"
    assert techniques["new_credentials_logons"] == "T1550.002"
    assert techniques["unattended_logons"] == "T1053"


def test_default_specs_adds_families_in_a_fixed_order() -> None:
    assert default_specs("user", ()) is DEFAULT_SPECS
    both = default_specs("user", ["windows", "templates", "windows"])
    assert both == default_specs("user", FAMILY_NAMES)
    assert [s.name for s in both[len(DEFAULT_SPECS) :]] == TEMPLATE_NAMES + WINDOWS_NAMES
    assert default_specs("user", "templates") == default_specs("user", ["templates"])
    host = [s.name for s in default_specs("host", ["windows"])]
    assert "network_logon_users" in host and "network_logon_hosts" not in host
    hashes = {
        spec_schema_hash(default_specs("user", families))
        for families in ((), ("templates",), ("windows",), FAMILY_NAMES)
    }
    assert len(hashes) == 4


def test_unknown_family_is_named_with_the_known_ones() -> None:
    message = "unknown feature family 'drain' (known: templates, windows)"
    with pytest.raises(ValueError, match=re.escape(message)):
        default_specs("user", ["templates", "drain"])
    with pytest.raises(ValueError, match="unknown feature family 'Windows'"):
        check_families(["Windows"])
    with pytest.raises(ValueError, match="entity must be"):
        family_specs("windows", "process")


def test_patterns_match_the_actions_and_words_meant() -> None:
    actions = re.compile(TEMPLATE_ACTIONS_PATTERN, re.I)
    matched = ["template:1", "template:1234", "syslog", "syslog.CRON", "syslog.sshd"]
    missed = ["syslogd", "logon", "my_template:1", "sys.log", "template"]
    assert [bool(actions.search(a)) for a in matched + missed] == [True] * 5 + [False] * 5
    words = re.compile(ERROR_WORDS_PATTERN, re.I)
    errors = ["Connection refused", "FAILED to open", "timed out", "Permission denied", "Timeout"]
    fine = ["Accepted publickey for <*>", "Session opened", "Disk check ok"]
    assert [bool(words.search(t)) for t in errors + fine] == [True] * 5 + [False] * 3


# -- hand-computed values -----------------------------------------------------------------------


def _by_day(rows: list[dict[str, object]], specs: str, entity: str = "user") -> dict[str, object]:
    config = WindowConfig(entity=entity)
    got = table(rows, family_specs(specs, entity), config)
    return {f"{key[0]}{key[1].day}": values for key, values in got.items()}


def test_template_features_by_hand() -> None:
    got = _by_day(TEMPLATE_ROWS, "templates")
    columns = TEMPLATE_NAMES
    expected = {
        # template_events, new_templates, rare_templates, template_rarity, error_template_events
        "a1": (3, 0, 2, 0.0, 1),  # the first window has no history: nothing new, all rare
        "b1": (1, 0, 1, 0.0, 0),
        "c1": (1, 0, 1, 0.0, 0),
        "d1": (1, 0, 1, 0.0, 0),
        # day 2, population of 4: template 1 had 3 entities, 2 had a, CRON had c
        "a2": (4, 3, 3, 2.321928, 0),  # new: 3, syslog.sshd, syslog; t1 is had by b, d
        "b2": (2, 2, 2, 2.321928, 1),  # new: 2, 3; t2 had by a alone: still rare
        "c2": (1, 0, 1, 2.321928, 0),  # CRON is c's own: nobody else had it
        "d2": (1, 0, 0, 0.736966, 0),  # t1: 2 others of 4: log2(5 / 3)
        "a3": (2, 1, 1, 2.321928, 1),
        "b3": (1, 1, 1, 2.321928, 1),
        "c3": (1, 1, 1, 2.321928, 0),
        "d3": (1, 0, 0, 0.736966, 0),
    }
    assert sorted(got) == sorted(expected)
    for cell, values in expected.items():
        observed = got[cell]
        assert isinstance(observed, dict)
        assert [observed[c] for c in columns] == pytest.approx(values, abs=1e-6), cell
    assert got["a2"]["n_events"] == 5  # type: ignore[index]  # syslogd_restart is an event


def test_windows_features_by_hand_per_user() -> None:
    got = _by_day(WINDOWS_ROWS, "windows")
    expected = {
        # hosts, new hosts, off-hours network, unattended, new credentials
        "a1": (2, 0, 1, 1, 0),
        "b1": (1, 0, 0, 0, 0),
        "a2": (3, 2, 1, 2, 1),
        "b2": (1, 1, 0, 0, 0),
        "a6": (1, 0, 1, 0, 0),  # Saturday: off hours all day
    }
    assert sorted(got) == sorted(expected)
    for cell, values in expected.items():
        observed = got[cell]
        assert isinstance(observed, dict)
        assert tuple(observed[c] for c in WINDOWS_NAMES) == values, cell


def test_windows_features_by_hand_per_host() -> None:
    got = _by_day(WINDOWS_ROWS, "windows", entity="host")
    names = [s.name for s in family_specs("windows", "host")]
    expected = {
        # users, new users, off-hours network, unattended, new credentials
        "srv11": (2, 0, 1, 0, 0),
        "srv21": (1, 0, 0, 0, 0),
        "pc11": (0, 0, 0, 1, 0),
        "srv12": (1, 0, 0, 0, 0),  # a again
        "srv22": (1, 1, 0, 0, 0),  # b is new to srv2
        "srv32": (1, 0, 1, 2, 0),  # srv3's first window: nothing is new
        "srv42": (1, 0, 0, 0, 0),
        "pc12": (0, 0, 0, 0, 1),
        "srv16": (1, 0, 1, 0, 0),
    }
    assert sorted(got) == sorted(expected)
    for cell, values in expected.items():
        observed = got[cell]
        assert isinstance(observed, dict)
        assert tuple(observed[c] for c in names) == values, cell


# -- batch, online and columnar agree value for value -------------------------------------------


def _random_rows(seed: int, n: int, days: int) -> list[dict[str, object]]:
    """Template, syslog and Windows events of 8 users on 6 hosts over ``days``, in time order."""
    rng = random.Random(seed)
    texts = [ACCEPTED, REFUSED, OPENED, FATAL, DISK, "Job <*> timed out", "Worker <*> started"]
    actions = ["logon_network"] * 4 + ["logon_batch", "logon_service", "logon_new_credentials"]
    start = at(1, 0)
    rows = []
    for _ in range(n):
        ts = start + timedelta(seconds=rng.randrange(days * 86400))
        user = f"u{rng.randrange(8)}" if rng.random() < 0.95 else None
        host = f"h{rng.randrange(6)}"
        pick = rng.random()
        if pick < 0.45:
            # Users favour a few templates (so some are rare and some new late on).
            cluster = min(int(rng.expovariate(0.6)), len(texts) - 1)
            row = tpl(ts, user or "", cluster, texts[cluster])
            row["user"], row["host"] = user, host
        elif pick < 0.6:
            row = ev(ts, rng.choice(["syslog.CRON", "syslog.sshd", "syslog"]), user, host=host)
        elif pick < 0.95:
            row = ev(ts, rng.choice(actions), user, host=host)
        else:
            row = ev(ts, "logon", user, host=host)
        rows.append(row)
    rows.sort(key=lambda r: r["ts"])  # type: ignore[arg-type, return-value]
    return rows


def _assert_batch_equals(
    batch: pl.DataFrame, vectors: list[WindowVector], names: list[str]
) -> None:
    by_cell = {(v.entity, v.window_start): v for v in vectors}
    assert len(by_cell) == len(vectors) == batch.height
    for row in batch.iter_rows(named=True):
        vector = by_cell[(row["entity"], row["window_start"])]
        assert vector.n_events == row["n_events"]
        for name in names:
            assert vector.values[name] == pytest.approx(row[name], abs=1e-9), (row, name)


@pytest.mark.parametrize(
    ("entity", "window", "days"), [("user", "1d", 10), ("host", "1d", 10), ("user", "1h", 1)]
)
def test_batch_online_and_columnar_agree(entity: str, window: str, days: int) -> None:
    rows = _random_rows(seed=7, n=1500, days=days)
    config = WindowConfig(entity=entity, window=window)
    specs = default_specs(entity, FAMILY_NAMES)
    names = [s.name for s in specs]
    family_names = names[len(default_specs(entity)) :]
    batch = evaluate_batch(specs, frame(rows), config).collect()
    events: list[Event] = events_from_frame(pl.DataFrame(rows, schema=POLARS_EVENT_SCHEMA))
    expected = per_event(OnlineFeatures(specs, config), events)
    _assert_batch_equals(batch, expected, names)
    events_frame = pl.DataFrame(rows, schema=POLARS_EVENT_SCHEMA)
    assert_same_vectors(in_batches(OnlineFeatures(specs, config), events_frame, 97), expected)
    columnar = ColumnarOnline(specs, config)
    got: list[WindowVector] = []
    for begin in range(0, events_frame.height, 211):
        got.extend(columnar.update_frame(events_frame.slice(begin, 211)))
    assert_same_vectors(got + columnar.flush(), expected)
    # Worth something only if every family feature is exercised, new and rare ones included.
    exercised = {name for name in family_names if batch.get_column(name).sum() > 0}
    assert exercised == set(family_names)


def test_host_windows_read_unusual_hours_for_the_host_not_an_account() -> None:
    (user,) = [s for s in default_specs("user") if s.name == "unusual_hour_logons"]
    (host,) = [s for s in default_specs("host") if s.name == "unusual_hour_logons"]
    assert "this account" in user.explain and "this account" not in host.explain
    assert host.explain.format(observed=3.0, typical="0") == (
        "3 logon(s) at hours unusual for this host (typical 0)"
    )

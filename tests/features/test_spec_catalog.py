"""FeatureSpec / WindowConfig validation and the default catalogue."""

from __future__ import annotations

import re

import pytest

from features import DEFAULT_SPECS, FeatureSpec, WindowConfig, default_specs
from features.online import replay
from features.spec import KIND_PARAMS
from streams.batch import events_from_frame
from tests.features._events import at, ev, frame, table


def test_spec_is_frozen_hashable_and_copies_its_mappings() -> None:
    where: dict[str, str | tuple[str, ...]] = {"action": "logon"}
    spec = FeatureSpec(name="logons", kind="count", where=where)
    where["action"] = "logoff"
    assert spec.where == {"action": "logon"}
    assert spec == FeatureSpec(name="logons", kind="count", where={"action": "logon"})
    assert len({spec, FeatureSpec(name="logons", kind="count", where={"action": "logon"})}) == 1
    with pytest.raises(TypeError):
        spec.where["action"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "median"}, "unknown kind"),
        ({"kind": "sum"}, "needs a field"),
        ({"kind": "count", "field": "nope"}, "not an Event field"),
        ({"kind": "count", "where": {"attrs.": "x"}}, "not an Event field"),
        ({"kind": "count", "params": {"split": ";"}}, "unknown params"),
        ({"kind": "rarity", "field": "target", "params": {"agg": "min"}}, "agg"),
        ({"kind": "rare_count", "field": "target", "params": {"max_entities": "1"}}, "number"),
        ({"kind": "count", "direction": "down"}, "direction"),
        ({"kind": "count", "name": "entity"}, "reserved"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"name": "f", **kwargs}
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**arguments)  # type: ignore[arg-type]


def test_param_defaults() -> None:
    spec = FeatureSpec(name="u", kind="unusual_hour", params={"min_events": 5})
    assert (spec.param("min_events"), spec.param("min_share")) == (5, 0.02)
    assert spec.number("min_share") == 0.02
    assert FeatureSpec(name="m", kind="max_split", field="target").param("split") == ";"


def test_window_config_validation() -> None:
    with pytest.raises(ValueError):
        WindowConfig(entity="process")
    with pytest.raises(ValueError):
        WindowConfig(window="15m")
    with pytest.raises(ValueError):
        WindowConfig(weekend_days=(0,))
    assert WindowConfig(weekend_days=(7, 6, 7)).weekend_days == (6, 7)


def test_catalogue_is_complete_and_documented() -> None:
    names = [s.name for s in DEFAULT_SPECS]
    assert len(names) == len(set(names))
    kinds = {s.kind for s in DEFAULT_SPECS}
    assert kinds == set(KIND_PARAMS) - {"max_per_target"}
    for spec in DEFAULT_SPECS:
        assert spec.doc.endswith("."), spec.name
        assert spec.explain.format(observed=3.0, typical="0–1", name=spec.name), spec.name
        assert spec.technique is None or re.fullmatch(r"T\d{4}(\.\d{3})?", spec.technique)
    techniques = {s.name: s.technique for s in DEFAULT_SPECS}
    assert techniques["usb_file_copies"] == "T1052.001"
    assert techniques["new_auth_destinations"] == "T1021"
    assert techniques["failed_auths"] == "T1110"
    assert techniques["max_email_recipients"] == "T1534"
    assert techniques["hacking_tool_downloads"] == "T1105"
    assert techniques["new_usb_hosts"] == "T1052.001"


def test_host_catalogue_swaps_logon_hosts_for_users() -> None:
    host_names = [s.name for s in default_specs("host")]
    assert "logon_hosts" not in host_names
    assert "new_logon_users" in host_names
    assert default_specs() is DEFAULT_SPECS
    with pytest.raises(ValueError):
        default_specs("process")


def test_default_catalogue_on_a_small_day() -> None:
    rows = [
        ev(at(1, 9), "logon", host="pc1"),
        ev(at(1, 9, 5), "usb_connect", host="pc1"),
        ev(at(1, 9, 6), "file_copy_removable", host="pc1", target="a.doc"),
        ev(at(1, 9, 7), "file_copy_removable", host="pc1", target="a.doc"),
        ev(at(1, 9, 8), "file_copy_removable", host="pc1", target="b.doc"),
        ev(at(1, 10), "email_send", target="x@a;y@a;z@a", nbytes=1000, attrs='{"attachments":"2"}'),
        ev(at(1, 11), "http_upload", target="drop.example"),
        ev(at(1, 22), "auth", target="srv1", outcome="failure"),
        ev(at(2, 8), "logon", host="pc2"),
        ev(at(2, 8, 30), "auth", target="srv2"),
    ]
    got = table(rows, DEFAULT_SPECS)
    day1, day2 = got[("a", at(1, 0))], got[("a", at(2, 0))]
    assert day1["n_events"] == 8
    assert (day1["usb_connects"], day1["usb_file_copies"], day1["usb_distinct_files"]) == (
        1.0,
        3.0,
        2.0,
    )
    assert (day1["max_email_recipients"], day1["email_recipients"]) == (3.0, 3.0)
    assert (day1["email_bytes_sent"], day1["email_attachments"]) == (1000.0, 2.0)
    assert (day1["http_uploads"], day1["web_domains"], day1["failed_auths"]) == (1.0, 1.0, 1.0)
    assert (day1["off_hours_auths"], day1["off_hours_events"]) == (1.0, 1.0)
    assert (day2["new_logon_hosts"], day2["new_auth_destinations"], day2["logons"]) == (
        1.0,
        1.0,
        1.0,
    )


def test_host_logon_and_privilege_features_on_a_small_day() -> None:
    rows = [
        ev(at(1, 9), "logon_failure", host="srv", outcome="failure"),
        ev(at(1, 9, 1), "logon_failure", host="srv", outcome="failure"),
        ev(at(1, 9, 2), "logon", host="srv"),
        ev(at(1, 9, 3), "run_as", host="srv", target="root"),
        ev(at(1, 9, 4), "process_start", host="ws1", target="C:\\Windows\\cmd.exe"),
        ev(at(1, 9, 5), "explicit_credentials", host="ws1", target="dc1"),
        ev(at(1, 9, 6), "explicit_credentials", host="ws1", target="dc1"),
        ev(at(1, 9, 7), "explicit_credentials", host="ws1", target="fs1"),
        ev(at(2, 9), "switch_user", host="srv", target="root"),
        ev(at(2, 9, 1), "switch_user", host="srv", target="postgres"),
        ev(at(2, 9, 2), "process_start", host="ws1", target="C:\\Windows\\cmd.exe"),
        ev(at(2, 9, 3), "process_start", host="ws1", target="C:\\Temp\\mimikatz.exe"),
        ev(at(2, 9, 4), "account_created", host="dc1", target="backdoor"),
        ev(at(2, 9, 5), "group_member_added", host="dc1", target="Administrators"),
    ]
    got = table(rows, DEFAULT_SPECS)
    day1, day2 = got[("a", at(1, 0))], got[("a", at(2, 0))]
    names = (
        "failed_logons",
        "privileged_commands",
        "new_privileged_targets",
        "new_programs",
        "account_changes",
        "explicit_credential_targets",
    )
    # First-seen counts nothing in an entity's first window: there is no history to be new to.
    assert [day1[n] for n in names] == [2.0, 1.0, 0.0, 0.0, 0.0, 2.0]
    # Day 2: root was used before (sudo on day 1), postgres is new; cmd.exe ran before.
    assert [day2[n] for n in names] == [0.0, 2.0, 1.0, 1.0, 2.0, 0.0]


def test_keylogger_story_features_batch_and_online() -> None:
    """CERT scenario 3: a tool fetched from the web, then a USB stick in someone else's PC."""
    tool_url = '{"url": "http://tail-site.example/download/KeyLogger_setup.exe"}'
    rows = [
        ev(at(1, 9), "usb_connect", host="pc-own"),
        ev(at(1, 10), "http_visit", target="tail-site.example", attrs='{"url": "x/tools"}'),
        ev(at(2, 9), "http_download", target="tail-site.example", attrs=tool_url),
        ev(at(2, 9, 1), "http_download", target="tail-site.example", attrs=tool_url),
        ev(at(2, 9, 5), "http_visit", target="news.example", attrs='{"url": "news/today"}'),
        ev(at(2, 9, 30), "usb_connect", host="pc-own"),
        ev(at(3, 18), "usb_connect", host="pc-boss"),
        ev(at(3, 18, 5), "usb_connect", host="pc-own"),
        ev(at(4, 9), "usb_connect", host="pc-boss"),
    ]
    names = ("hacking_tool_downloads", "new_usb_hosts")
    got = table(rows, DEFAULT_SPECS)
    # Day 1 is the account's first window: nothing in it is new. Day 2: the two keylogger
    # downloads match by URL (case-insensitive), the news visit does not; pc-own is known.
    # Day 3: pc-boss is a new USB host, pc-own is not. Day 4: pc-boss is known by now.
    expected = {1: [0.0, 0.0], 2: [2.0, 0.0], 3: [0.0, 1.0], 4: [0.0, 0.0]}
    assert {d: [got[("a", at(d, 0))][n] for n in names] for d in expected} == expected

    events = events_from_frame(frame(rows).collect())
    online = {v.window_start.day: v.values for v in replay(DEFAULT_SPECS, events, WindowConfig())}
    assert {d: [online[d][n] for n in names] for d in expected} == expected


def test_no_plain_count_of_auth_destinations() -> None:
    # Known servers touched in bulk (an admin's night of maintenance) are not lateral movement;
    # the catalogue measures new destinations instead.
    names = {s.name for s in DEFAULT_SPECS}
    assert "auth_destinations" not in names
    assert "new_auth_destinations" in names

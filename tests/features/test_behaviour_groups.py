"""Behaviour groups of feature specs: defaults, persistence, and the catalogue's tags."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from features.batch import spec_schema_hash
from features.catalog import BEHAVIOURS, FAMILY_NAMES, default_specs
from features.spec import FeatureSpec, group_ids


def test_a_spec_without_a_group_is_its_own() -> None:
    assert FeatureSpec(name="usb", kind="count").group == "usb"
    assert FeatureSpec(name="usb", kind="count", group="  ").group == "usb"
    assert FeatureSpec(name="usb", kind="count", group="media").group == "media"
    with pytest.raises(ValueError, match="group must be a string"):
        FeatureSpec(name="usb", kind="count", group=3)  # type: ignore[arg-type]


def test_group_ids_number_groups_by_first_appearance() -> None:
    specs = [
        FeatureSpec(name="a", kind="count", group="time"),
        FeatureSpec(name="b", kind="count"),
        FeatureSpec(name="c", kind="count", group="time"),
        FeatureSpec(name="d", kind="count", group="b"),  # shares the default group of "b"
    ]
    assert group_ids(specs) == (0, 1, 0, 1)
    assert group_ids([]) == ()


def test_the_group_survives_pickling_and_older_pickles_load_ungrouped() -> None:
    spec = FeatureSpec(name="night", kind="off_hours", group="activity_time")
    restored = pickle.loads(pickle.dumps(spec))
    assert restored == spec and restored.group == "activity_time"
    # A spec pickled before groups existed rebuilds from nine arguments: its own group.
    nine: tuple[Any, ...] = (spec.name, spec.kind, None, {}, {}, "", "", None, "up")
    assert FeatureSpec(*nine).group == "night"


def test_the_group_is_not_part_of_the_schema_hash() -> None:
    # It decides how scores combine, not what a feature's value is: saved models and
    # checkpoints keyed by the hash stay usable (and keep the groups they were saved with).
    plain = FeatureSpec(name="night", kind="off_hours")
    tagged = FeatureSpec(name="night", kind="off_hours", group="activity_time")
    assert spec_schema_hash([plain]) == spec_schema_hash([tagged])
    assert plain != tagged


@pytest.mark.parametrize("entity", ["user", "host"])
def test_every_catalogue_spec_names_a_known_nonempty_behaviour(entity: str) -> None:
    specs = default_specs(entity, FAMILY_NAMES)
    unknown = {spec.name: spec.group for spec in specs if spec.group not in BEHAVIOURS}
    assert unknown == {}
    assert all(description.strip() for description in BEHAVIOURS.values())
    # Groups do merge features: fewer behaviours than features.
    assert len(set(group_ids(specs))) < len(specs)


def test_catalogue_groups_hold_the_features_of_one_act() -> None:
    by_name = {spec.name: spec.group for spec in default_specs("user", FAMILY_NAMES)}
    # When the account works: logon timing and off-hours activity of every family.
    assert {
        by_name[name]
        for name in (
            "off_hours_logons",
            "unusual_hour_logons",
            "logon_hour_deviation",
            "weekend_logons",
            "off_hours_auths",
            "off_hours_events",
        )
    } == {"activity_time"}
    # One copy session: connects, copies and distinct files.
    assert by_name["usb_file_copies"] == by_name["usb_distinct_files"] == by_name["usb_connects"]
    # One mass email: its recipients, new recipients and the largest message's recipients.
    assert by_name["max_email_recipients"] == by_name["new_email_recipients"] == "email"
    # Different acts stay apart.
    assert by_name["hacking_tool_files"] != by_name["hacking_tool_downloads"]
    assert by_name["http_uploads"] != by_name["http_downloads"] != by_name["job_site_visits"]
    assert by_name["auths"] != by_name["off_hours_auths"]
    # The same behaviour per host: accounts logging on over the network.
    host = {spec.name: spec.group for spec in default_specs("host", FAMILY_NAMES)}
    assert host["new_network_logon_users"] == host["new_auth_destinations"] == "remote_access"

"""Explanations never come back empty: a window no single feature explains names the features
that deviated most, as a combination, in the scan's baseline and in the daemon's scorer."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from detector.alerts import Alert, Deviation
from detector.explain import BaselineProfile, combination_deviations
from detector.online_scoring import OnlineScorer
from detector.risk import RiskConfig
from features.online import WindowVector
from features.spec import FeatureSpec

SPECS = (
    FeatureSpec(name="logons", kind="count", explain="{observed:g} logons"),
    FeatureSpec(name="hosts", kind="count", technique="T1021", explain="{observed:g} hosts"),
    FeatureSpec(
        name="usb", kind="count", technique="T1052.001", explain="{observed:g} USB connects"
    ),
)


def _training() -> pl.DataFrame:
    # On the log1p scale logons 3, 7, 15 are 2, 3, 4 x ln 2 and hosts 1, 3, 7 are 1, 2, 3 x ln 2:
    # medians 7 and 3, and both MADs are ln 2 (six of the eleven windows lie one ln 2 away).
    return pl.DataFrame(
        {
            "entity": ["a"] * 11,
            "logons": [3.0, 3, 3, 7, 7, 7, 7, 7, 15, 15, 15],
            "hosts": [1.0, 1, 1, 1, 3, 3, 3, 3, 3, 7, 7],
            "usb": [0.0] * 11,
        }
    )


def test_a_window_no_feature_explains_alone_names_its_largest_deviations() -> None:
    profile = BaselineProfile(SPECS, _training(), groups=None)
    # 31 logons = 5 ln 2: two MADs above the median, z = 2 / 1.4826 = 1.349 (< z_min 2);
    # 7 hosts = 3 ln 2: one MAD, z = 0.6745; no USB, as always: z 0, not a deviation.
    deviations, basis = profile.explain("a", {"logons": 31.0, "hosts": 7.0, "usb": 0.0})

    assert basis == "own history"
    assert [d.feature for d in deviations] == ["logons", "hosts"]
    logons, hosts = deviations
    assert logons.z == pytest.approx(2 / 1.4826)
    assert hosts.z == pytest.approx(1 / 1.4826)
    assert (logons.observed, logons.typical, logons.typical_low, logons.typical_high) == (
        31.0,
        7.0,
        3.0,
        15.0,
    )
    assert (hosts.observed, hosts.typical, hosts.typical_low, hosts.typical_high) == (
        7.0,
        3.0,
        1.0,
        7.0,
    )
    # No training window reached logons' z: share 1 / (11 + 1).
    assert logons.share == pytest.approx(1 / 12)
    assert all(d.combination for d in deviations)
    assert [d.text for d in deviations] == ["31 logons (typical 3–15)", "7 hosts (typical 1–7)"]


def test_a_feature_past_the_threshold_is_explained_alone_as_before() -> None:
    profile = BaselineProfile(SPECS, _training(), groups=None)
    # 127 logons = 7 ln 2: z = 4 / 1.4826 = 2.698, beyond the usual 3-15.
    deviations, _ = profile.explain("a", {"logons": 127.0, "hosts": 7.0, "usb": 0.0})
    assert [(d.feature, d.combination) for d in deviations] == [("logons", False)]
    assert deviations[0].z == pytest.approx(4 / 1.4826)


def test_the_combination_alert_says_so_and_claims_no_technique() -> None:
    profile = BaselineProfile(SPECS, _training(), groups=None)
    # hosts (technique T1021) leads: 15 hosts = 4 ln 2, z = 2 / 1.4826 = 1.35;
    # 15 logons = 4 ln 2, z = 1 / 1.4826 = 0.67.
    deviations, _ = profile.explain("a", {"logons": 15.0, "hosts": 15.0, "usb": 0.0})
    assert [d.feature for d in deviations] == ["hosts", "logons"]
    start = datetime(2010, 1, 5, tzinfo=UTC)
    alert = Alert.build(
        entity="a",
        window_start=start,
        window_end=start + timedelta(days=1),
        detector="tail",
        score=5.83,
        threshold=3.66,
        severity="medium",
        schema_hash="h",
        deviations=deviations,
    )
    assert alert.summary == (
        "unusual combination: 15 hosts (typical 1–7), 15 logons (typical 3–15)"
    )
    assert alert.techniques == ()
    listed = alert.to_dict()["explanation"]
    assert [(e["feature"], e["z"], e["combination"]) for e in listed] == [
        ("hosts", 1.35, True),
        ("logons", 0.67, True),
    ]


def test_ordinary_deviations_keep_their_dict_shape() -> None:
    dev = Deviation("usb", 30.0, 0.0, 0.0, 1.0, 12.0, "30 USB connects", "T1052.001")
    assert "combination" not in dev.to_dict()


def test_when_nothing_deviates_upwards_the_largest_deviations_either_way_are_named() -> None:
    # Every feature at or below typical: the largest |z| are named rather than nothing.
    devs = combination_deviations(
        SPECS,
        observed=np.array([1.0, 3.0, 0.0]),
        z=np.array([-1.5, 0.0, -0.2]),
        median=np.array([7.0, 3.0, 0.0]),
        low=np.array([3.0, 1.0, 0.0]),
        high=np.array([15.0, 7.0, 0.0]),
    )
    assert [(d.feature, d.z) for d in devs] == [("logons", -1.5), ("usb", -0.2), ("hosts", 0.0)]
    assert devs[0].text == "1 logons (typical 3–15)"


def test_the_daemon_explains_a_window_below_every_threshold_as_a_combination() -> None:
    # z_min so high that no feature passes: the alert must still name what deviated.
    scorer = OnlineScorer(
        SPECS,
        budget_per_day=1,
        windows_per_day=20,
        warmup_windows=60,
        refresh_every=20,
        risk=RiskConfig(surprise_floor=2.0),
        z_min=1e9,
    )
    day0 = datetime(2024, 1, 1, tzinfo=UTC)

    def day(d: int, usb_user: str | None = None) -> list[WindowVector]:
        return [
            WindowVector(
                f"u{u}",
                day0 + timedelta(days=d),
                5,
                {
                    "logons": 3.0 + u % 3,
                    "hosts": 1.0,
                    "usb": 30.0 if f"u{u}" == usb_user else 0.0,
                },
            )
            for u in range(20)
        ]

    for d in range(10):
        assert scorer.score(day(d)) == []
    [alert] = scorer.score(day(10, usb_user="u7"))
    # u7's logons and hosts are its usual ones (z 0: not named). USB was 0 for everyone, so its
    # scale is the floor min_scale = 0.1: z = log1p(30) / 0.1.
    assert [d.feature for d in alert.deviations] == ["usb"]
    [usb] = alert.deviations
    assert usb.combination
    assert usb.z == pytest.approx(math.log(31.0) / 0.1)
    assert (usb.observed, usb.typical) == (30.0, 0.0)
    assert alert.summary == "unusual combination: 30 USB connects (typical 0)"
    assert alert.techniques == ()

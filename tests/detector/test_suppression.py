"""Allow-lists mute reviewed findings, count them, and refuse malformed files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from detector.alerts import Alert, Deviation
from detector.cli import main
from detector.errors import UsageError
from detector.suppression import AllowEntry, Allowlist


def alert(entity: str, day: int, *features: str, detector: str = "tail") -> Alert:
    start = datetime(2010, 3, day, tzinfo=UTC)
    devs = tuple(
        Deviation(f, 10, 0, 0, 1, 5.0, f"{f} high", technique=f"T{i}")
        for i, f in enumerate(features)
    )
    return Alert.build(
        entity=entity,
        window_start=start,
        window_end=start + timedelta(days=1),
        detector=detector,
        score=7.0,
        threshold=5.0,
        severity="high",
        schema_hash="h",
        deviations=devs,
    )


def test_entity_feature_detector_and_expiry_rules() -> None:
    allow = Allowlist(
        (
            AllowEntry(entity="svc-*", reason="service accounts"),
            AllowEntry(
                entity="ADM1",
                feature="off_hours_auths",
                reason="change window",
                expires=date(2010, 3, 10),
            ),
            AllowEntry(entity="ADM2", reason="only for another detector", detector="iforest"),
        )
    )
    alerts = [
        alert("svc-backup", 1, "auths"),  # muted: whole entity
        alert("ADM1", 5, "off_hours_auths"),  # muted: its only feature is allowed
        alert("ADM1", 6, "off_hours_auths", "new_auth_destinations"),  # kept, trimmed
        alert("ADM1", 20, "off_hours_auths"),  # kept: the entry expired on the 10th
        alert("ADM2", 5, "auths"),  # kept: the entry is for another detector
    ]
    kept, muted = allow.apply(alerts)
    assert muted == 2
    assert [(a.entity, a.window_start.day) for a in kept] == [
        ("ADM1", 6),
        ("ADM1", 20),
        ("ADM2", 5),
    ]
    trimmed = kept[0]
    assert [d.feature for d in trimmed.deviations] == ["new_auth_destinations"]
    assert trimmed.techniques == ("T1",)
    assert trimmed.id == alerts[2].id  # muting part of a finding keeps its identity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[allow]]\nentity = 'x'\n", "'reason' is required"),
        ("[[allow]]\nentity = 'x'\nreason = 'r'\nuntil = 2026-01-01\n", "unknown key 'until'"),
        ("[[allow]]\nentity = 'x'\nreason = 'r'\nexpires = 'soon'\n", "'expires' must be a date"),
        ("[allowed]\n", "unknown table 'allowed'"),
        ("[[allow]\n", "cannot read allow-list"),
    ],
)
def test_malformed_allowlists_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "allow.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        Allowlist.load(path)


def test_scan_counts_muted_alerts(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    assert main(["scan", f"cert:{small_org}", "--out", str(base), "--no-progress"]) == 0
    first = json.loads((base / "alerts.jsonl").read_text().splitlines()[0])
    allow = tmp_path / "allow.toml"
    allow.write_text(f"[[allow]]\nentity = '{first['entity']}'\nreason = 'reviewed'\n")
    out = tmp_path / "muted"
    assert (
        main(
            [
                "scan",
                f"cert:{small_org}",
                "--out",
                str(out),
                "--no-progress",
                "--allowlist",
                str(allow),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    before = json.loads((base / "summary.json").read_text())
    assert summary["suppressed_alerts"] > 0
    assert summary["alerts"] == before["alerts"] - summary["suppressed_alerts"]
    assert "muted by the allow-list" in capsys.readouterr().out
    entities = {json.loads(x)["entity"] for x in (out / "alerts.jsonl").read_text().splitlines()}
    assert first["entity"] not in entities
    assert (
        main(
            [
                "scan",
                f"cert:{small_org}",
                "--out",
                str(out),
                "--allowlist",
                str(tmp_path / "missing.toml"),
            ]
        )
        == 2
    )

"""The scan end to end on a small generated organisation, through the real CLI entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from detector.cli import main
from detector.scan import ScanOptions, read_vectors


@pytest.fixture(scope="module")
def scanned(
    small_org: Path, small_org_manifest: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("scan")
    code = main(
        [
            "scan",
            f"cert:{small_org}",
            f"lanl:{small_org / 'auth.txt'}",
            "--lanl-epoch",
            small_org_manifest["lanl_epoch"],
            "--out",
            str(out),
            "--budget",
            "2/day",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_scan_writes_every_output(scanned: Path) -> None:
    for name in (
        "alerts.jsonl",
        "entities.csv",
        "report.html",
        "report.md",
        "windows.parquet",
        "dead_letters.jsonl",
        "summary.json",
    ):
        assert (scanned / name).is_file(), name
    summary = json.loads((scanned / "summary.json").read_text())
    assert summary["events"] > 10_000
    assert summary["dead_letters"] == 0
    assert summary["budget"] == "2/day"


def test_alerts_explain_themselves_within_budget(scanned: Path) -> None:
    alerts = [json.loads(line) for line in (scanned / "alerts.jsonl").read_text().splitlines()]
    windows = pl.read_parquet(scanned / "windows.parquet")
    days = windows["window_start"].n_unique()
    assert 0 < len(alerts) <= 2 * days
    assert len({a["id"] for a in alerts}) == len(alerts)
    explained = [a for a in alerts if a["explanation"]]
    assert len(explained) >= 0.8 * len(alerts)
    first = explained[0]["explanation"][0]
    assert set(first) == {
        "feature",
        "observed",
        "typical",
        "typical_range",
        "z",
        "technique",
        "population_share",
        "text",
    }
    assert first["observed"] > first["typical"]
    for alert in alerts:
        assert alert["score"] >= alert["threshold"]
        assert alert["severity"] in {"low", "medium", "high", "critical"}


def test_planted_users_rank_high(scanned: Path, small_org: Path) -> None:
    truth = pl.read_csv(small_org / "ground_truth.csv")
    planted = set(truth["entity"].to_list())
    entities = pl.read_csv(scanned / "entities.csv")
    assert entities.height >= 100
    top = set(entities.head(10)["entity"].to_list())
    # Six planted accounts among 100+: a random ranking puts 0.6 of them in the top 10.
    assert len(planted & top) >= 4


def test_usb_theft_is_explained_by_usb_copies(scanned: Path, small_org: Path) -> None:
    truth = pl.read_csv(small_org / "ground_truth.csv")
    thieves = set(truth.filter(pl.col("scenario") == 2)["entity"].to_list())
    alerts = [json.loads(line) for line in (scanned / "alerts.jsonl").read_text().splitlines()]
    reasons = {d["feature"] for a in alerts if a["entity"] in thieves for d in a["explanation"]}
    assert {"usb_file_copies", "usb_distinct_files"} & reasons


def test_rescan_gives_the_same_alert_ids(
    scanned: Path, small_org: Path, small_org_manifest: dict[str, Any], tmp_path: Path
) -> None:
    code = main(
        [
            "scan",
            f"cert:{small_org}",
            f"lanl:{small_org / 'auth.txt'}",
            "--lanl-epoch",
            small_org_manifest["lanl_epoch"],
            "--out",
            str(tmp_path),
            "--budget",
            "2/day",
            "--no-progress",
        ]
    )
    assert code == 0
    ids = [json.loads(x)["id"] for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    before = [json.loads(x)["id"] for x in (scanned / "alerts.jsonl").read_text().splitlines()]
    assert ids == before


def test_malformed_lines_become_dead_letters(small_org: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(small_org / "logon.csv", logs / "logon.csv")
    shutil.copy(small_org / "device.csv", logs / "device.csv")
    with (logs / "logon.csv").open("a") as fh:
        fh.write("{BAD-1},13/45/2010 99:00:00,XYZ0001,PC-1,Logon\n")
        fh.write("{BAD-2},02/01/2010 10:00:00,XYZ0001,PC-1,Teleport\n")
    n_lines = sum(1 for _ in (logs / "logon.csv").open())
    out = tmp_path / "out"
    assert main(["scan", str(logs), "--format", "cert", "--out", str(out), "--no-progress"]) == 0
    dead = [json.loads(x) for x in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert [d["line"] for d in dead] == [n_lines - 1, n_lines]
    assert all(d["file"].endswith("logon.csv") for d in dead)
    assert "13/45/2010" in dead[0]["raw"]
    assert (
        main(
            ["scan", str(logs), "--format", "cert", "--out", str(out), "--strict", "--no-progress"]
        )
        == 1
    )


def test_read_vectors_counts_events_and_keeps_rejects_of_every_file(
    small_org: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("logon.csv", "device.csv"):
        shutil.copy(small_org / name, logs / name)
    lines = {name: sum(1 for _ in (logs / name).open()) for name in ("logon.csv", "device.csv")}
    with (logs / "logon.csv").open("a") as fh:
        fh.write("{BAD-1},02/01/2010 10:00:00,XYZ0001,PC-1,Teleport\n")
    with (logs / "device.csv").open("a") as fh:
        fh.write("{BAD-2},02/01/2010 10:00:00,XYZ0001\n")
    opts = ScanOptions(inputs=(("cert", logs),), out=tmp_path / "out", progress=False)
    vectors, n_events, rejects, _ = read_vectors(opts, tmp_path / "spool")
    # Every original line but the two headers is an event; the appended ones are rejects.
    assert n_events == lines["logon.csv"] + lines["device.csv"] - 2
    assert vectors["n_events"].sum() == n_events
    assert [(Path(f).name, n, r) for f, n, r, _ in rejects.iter_rows()] == [
        ("logon.csv", lines["logon.csv"] + 1, "unknown_value"),
        ("device.csv", lines["device.csv"] + 1, "wrong_field_count"),
    ]
    assert rejects["raw"].to_list()[1] == "{BAD-2},02/01/2010 10:00:00,XYZ0001"


def test_saved_model_scores_new_logs(
    scanned: Path, small_org: Path, small_org_manifest: dict[str, Any], tmp_path: Path
) -> None:
    model = tmp_path / "model"
    assert (
        main(
            [
                "scan",
                f"cert:{small_org}",
                "--out",
                str(tmp_path / "fit"),
                "--save-model",
                str(model),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (model / "model.bin").is_file()
    assert (
        main(
            [
                "scan",
                f"cert:{small_org}",
                "--out",
                str(tmp_path / "again"),
                "--model",
                str(model),
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["train_until"] is None
    assert summary["scored_windows"] == summary["windows"]
    # A budget asked for with --model replaces the saved one (5/day): the same windows, fewer
    # alerts.
    tighter = ["--budget", "1/day", "--out", str(tmp_path / "tighter"), "--no-progress"]
    assert main(["scan", f"cert:{small_org}", "--model", str(model), *tighter]) == 0
    tight = json.loads((tmp_path / "tighter" / "summary.json").read_text())
    assert (summary["budget"], tight["budget"]) == ("5/day", "1/day")
    alerts = [
        len((tmp_path / out / "alerts.jsonl").read_text().splitlines())
        for out in ("again", "tighter")
    ]
    assert 0 < alerts[1] < alerts[0]
    (model / "model.bin").write_bytes(b"garbage")
    assert (
        main(
            [
                "scan",
                f"cert:{small_org}",
                "--out",
                str(tmp_path / "bad"),
                "--model",
                str(model),
                "--no-progress",
            ]
        )
        == 2
    )

"""A scan whose allow-list mutes the strongest entity: its muted findings rank it nowhere."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from detector.cli import main


@pytest.mark.slow
def test_an_entity_muted_entirely_is_not_ranked_by_its_muted_alerts(
    small_org: Path,
    small_org_manifest: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The USB thief of scenario 2 leads this organisation's ranking by far when nothing is muted.
    thief = small_org_manifest["planted"]["2"][0]
    allow = tmp_path / "allow.toml"
    allow.write_text(f"[[allow]]\nentity = '{thief}'\nreason = 'reviewed'\n")
    out = tmp_path / "scan"
    # A plot left by an earlier run into the same folder is not this report's.
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "EARLIER0.png").write_bytes(b"an earlier run's plot")
    code = main(
        ["scan", f"cert:{small_org}", "--out", str(out), "--no-progress", "--allowlist", str(allow)]
    )
    assert code == 0

    windows = pl.read_parquet(out / "windows.parquet").filter(pl.col("entity") == thief)
    alerted = windows.filter(pl.col("alert"))
    assert alerted.height > 0  # the detector did flag the thief: the allow-list muted it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suppressed_alerts"] == alerted.height  # muted findings stay counted

    rows = {r["entity"]: r for r in csv.DictReader((out / "entities.csv").open())}
    muted = rows[thief]
    assert int(muted["alerts"]) == 0
    # Its risk can only come from its windows that did not alert (decayed, so at most their sum).
    quiet_evidence = float(windows.filter(~pl.col("alert"))["evidence"].sum())
    assert float(muted["risk"]) <= quiet_evidence + 1e-6
    strongest_muted = alerted["evidence"].max()
    assert isinstance(strongest_muted, float)
    assert float(muted["risk"]) < strongest_muted
    leader = min(rows.values(), key=lambda r: int(r["rank"]))
    assert leader["entity"] != thief and int(leader["alerts"]) > 0

    printed = capsys.readouterr().out
    assert f"1. {leader['entity']}" in printed
    report = (out / "report.md").read_text()
    assert f"| 1 | {leader['entity']} |" in report
    plots = {png.name for png in (out / "plots").glob("*.png")}
    assert "EARLIER0.png" not in plots and f"{leader['entity']}.png" in plots

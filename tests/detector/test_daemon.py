"""The daemon loop in-process: scoring, explanations, late events, crash replay."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from detector.config import DaemonConfig, parse_config
from detector.daemon import Daemon

START = datetime(2010, 1, 4, 8, 0)


def _logons(first_day: int, days: int, burst_day: int = 12) -> list[str]:
    lines = []
    for day in range(first_day, first_day + days):
        for user in ("U1", "U2", "U3"):
            count = 30 if (user == "U3" and day == burst_day) else 3
            for k in range(count):
                stamp = (START + timedelta(days=day, minutes=10 * k)).strftime("%m/%d/%Y %H:%M:%S")
                lines.append(f"{{{user}-{day}-{k}}},{stamp},{user},PC-{user},Logon")
    return lines


def _config(folder: Path) -> DaemonConfig:
    return parse_config(
        {
            "daemon": {
                "state_dir": "state",
                "budget": "1/day",
                "expected_entities": 3,
                "warmup_windows": 5,
                "allowed_lateness": "1h",
            },
            "source": [
                {"name": "logon", "type": "file", "path": "logon.csv", "parser": "cert.logon"}
            ],
            "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
        },
        folder,
    )


def _write(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.writelines(line + "\n" for line in lines)


def _drain(daemon: Daemon) -> None:
    for _ in range(100):
        if not daemon.poll_once():
            return


def test_burst_alerts_with_an_explanation(tmp_path: Path) -> None:
    _write(tmp_path / "logon.csv", _logons(0, 15))
    run = Daemon(_config(tmp_path))
    _drain(run)
    run.close()
    assert run.totals.events["logon"] == 15 * 9 + 27
    assert run.totals.windows_closed == 14 * 3
    alerts = [orjson.loads(x) for x in (tmp_path / "alerts.jsonl").open("rb")]
    burst = [
        a for a in alerts if a["entity"] == "U3" and a["window_start"].startswith("2010-01-16")
    ]
    assert len(burst) == 1
    logons = next(d for d in burst[0]["explanation"] if d["feature"] == "logons")
    # U3 logged on 3 times on each of the 12 earlier days: typical exactly 3, observed 30.
    assert (logons["observed"], logons["typical"]) == (30, 3)
    assert logons["text"] == "30 logons (typical 3)"
    assert burst[0]["severity"] in {"low", "medium", "high", "critical"}


def test_late_event_is_dead_lettered(tmp_path: Path) -> None:
    lines = _logons(0, 3)
    late = "{late},01/04/2010 09:00:00,U1,PC-U1,Logon"  # day 0, two days behind
    _write(tmp_path / "logon.csv", [*lines, late])
    run = Daemon(_config(tmp_path))
    _drain(run)
    run.close()
    assert run.totals.late_events == 1
    assert dict(run.totals.dead_letters) == {("logon", "late"): 1}
    dead = orjson.loads((tmp_path / "state/dead_letters.jsonl").read_bytes())
    assert (dead["line"], dead["reason"], dead["raw"]) == (len(lines) + 1, "late", late)


def test_replay_after_a_crash_neither_duplicates_alerts_nor_loses_events(tmp_path: Path) -> None:
    log = tmp_path / "logon.csv"
    _write(log, _logons(0, 8))
    first = Daemon(_config(tmp_path))
    _drain(first)
    first.checkpoint()
    saved = tmp_path / "checkpoint.saved"
    shutil.copy(tmp_path / "state/checkpoint.bin", saved)
    _write(log, _logons(8, 8))
    _drain(first)  # the burst alert is written, then the process "crashes": no checkpoint
    first.close()
    before = (tmp_path / "alerts.jsonl").read_bytes()
    assert b'"entity":"U3"' in before
    shutil.copy(saved, tmp_path / "state/checkpoint.bin")

    replay = Daemon(_config(tmp_path))
    assert replay.totals.events["logon"] == 8 * 9
    _drain(replay)
    replay.close()
    assert replay.totals.events["logon"] == 16 * 9 + 27
    assert (tmp_path / "alerts.jsonl").read_bytes() == before

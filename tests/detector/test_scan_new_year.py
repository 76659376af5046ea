"""``baseliner scan --year``: an archived auth.log that runs from December into January is
read into the right days, the January lines after the December ones."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from detector.cli import main

FIRST_DAY = date(2024, 12, 10)
DAYS = 42  # to 20 January 2025
ATTACK_DAY = date(2025, 1, 8)
INTRUDER = "user03"


def bsd(at: datetime) -> str:
    """``Mmm dd hh:mm:ss``, as auth.log writes it: no year."""
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S}"


def auth_log() -> str:
    """Six users log on to the bastion each morning; on ATTACK_DAY at 2 a.m. someone tries
    the intruder's password thirty times and gets in."""
    rng = random.Random(5)
    lines = []
    for offset in range(DAYS):
        day = datetime.combine(FIRST_DAY + timedelta(days=offset), datetime.min.time())
        if day.date() == ATTACK_DAY:
            for attempt in range(30):
                at = day + timedelta(hours=2, seconds=10 * attempt)
                lines.append(
                    f"{bsd(at)} bastion sshd[{900 + attempt}]: Failed password for {INTRUDER} "
                    f"from 203.0.113.9 port {40000 + attempt} ssh2"
                )
            at = day + timedelta(hours=2, minutes=6)
            lines.append(
                f"{bsd(at)} bastion sshd[950]: Accepted password for {INTRUDER} from "
                "203.0.113.9 port 41000 ssh2"
            )
        for number in range(6):
            at = day + timedelta(hours=8, minutes=rng.randrange(50), seconds=rng.randrange(60))
            lines.append(
                f"{bsd(at)} bastion sshd[{1000 + number}]: Accepted publickey for "
                f"user{number:02d} from 10.0.0.{number + 5} port 5{number}000 ssh2"
            )
    return "\n".join(lines) + "\n"


def test_a_scan_over_new_year_puts_january_after_december(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(auth_log())
    out = tmp_path / "out"
    args = ["--format", "authlog", "--year", "2024", "--tz", "UTC", "--budget", "1/day"]
    code = main(["scan", str(path), *args, "--out", str(out), "--no-progress", "--top", "2"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["events"], summary["dead_letters"]) == (DAYS * 6 + 31, 0)
    # The scored days (those after the training days) run on from December 2024 to the
    # file's last day, 20 January 2025, with no gap: without the rollover, the January
    # lines would be January 2024's, eleven months before the December ones.
    windows = pl.read_parquet(out / "windows.parquet")
    days = sorted({ts.date() for ts in windows.get_column("window_start")})
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
    assert (days[0].year, days[0].month, days[-1]) == (2024, 12, date(2025, 1, 20))
    assert summary["train_until"].startswith("2024-12-")
    # The night of failed logons is the intruder's 8 January 2025: 30 failures, the logon
    # they led to and the morning's.
    night = windows.filter(pl.col("entity") == INTRUDER, pl.col("alert"))
    assert night.select("window_start", "n_events").rows() == [
        (datetime(2025, 1, 8, tzinfo=UTC), 32)
    ]
    (alert,) = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    observed = {item["feature"]: item["observed"] for item in alert["explanation"]}
    assert (alert["entity"], alert["window_start"], observed["failed_logons"]) == (
        INTRUDER,
        "2025-01-08T00:00:00+00:00",
        30,
    )

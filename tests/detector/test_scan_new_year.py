"""``baseliner scan --year``: an archived auth.log that runs from December into January is
read into the right days, the January lines after the December ones."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

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


def cron_log(days: list[date]) -> str:
    """Three hosts' cron lines, four a day, on each of ``days`` (BSD stamps: no year)."""
    lines = []
    for day in days:
        for hour in range(8, 12):
            at = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)
            for host in ("web1", "web2", "web3"):
                lines.append(f"{bsd(at)} {host} cron[{hour}]: job {day.day} done in {hour} s")
    return "\n".join(lines) + "\n"


def test_year_9999_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its lines after a New Year would be in 10000, which no timestamp holds.
    path = tmp_path / "syslog"
    path.write_text(cron_log([date(2023, 12, 31), date(2024, 1, 1)]))
    args = ["--format", "syslog", "--entity", "host", "--year", "9999"]
    assert main(["scan", str(path), *args, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        "baseliner: error: scan: argument --year: '9999' leaves no year for the lines after a "
        "New Year in a file (1..9998)\n"
    )
    assert not (tmp_path / "out").exists()


def test_lines_past_9999_are_dead_letters_that_say_so(tmp_path: Path) -> None:
    # From --year 9998, two New Years: December 9998, January to July 9999, then January of
    # year 10000, which does not exist.
    def days(first: date, count: int) -> list[date]:
        return [first + timedelta(days=n) for n in range(count)]

    late = days(date(2025, 1, 1), 5)
    path = tmp_path / "syslog"
    path.write_text(
        cron_log(
            days(date(2024, 12, 20), 12)
            + days(date(2025, 1, 1), 10)
            + days(date(2025, 7, 1), 4)
            + late
        )
    )
    out = tmp_path / "out"
    args = ["--format", "syslog", "--entity", "host", "--year", "9998", "--budget", "1/day"]
    assert main(["scan", str(path), *args, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    overflowed = len(late) * 4 * 3
    assert (summary["events"], summary["dead_letter_reasons"]) == (
        26 * 4 * 3,
        {"year_overflow": overflowed},
    )
    letters = [json.loads(line) for line in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert {(letter["reason"], letter["raw"][:3]) for letter in letters} == {
        ("year_overflow", "Jan")
    }
    # The last day dated is 4 July 9999.
    windows = pl.read_parquet(out / "windows.parquet")
    assert windows.get_column("window_start").max() == datetime(9999, 7, 4, tzinfo=UTC)

"""``baseliner scan`` over events dated at the ends of what a timestamp holds: a sentinel date
(``9999-12-31``, ``0001-01-01``) stops the scan with one line naming the file, and events near
those ends that a scan can place are scanned, reported and plotted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from detector.cli import main
from detector.report import _plot_entity


def office_lines(year: int, month: int) -> list[str]:
    """Three users log on at 9, 10 and 11 on each of 28 days of a month."""
    return [
        json.dumps(
            {
                "@timestamp": f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:00:00Z",
                "user": {"name": user},
                "host": {"name": "pc1"},
                "event": {"action": "logon"},
            }
        )
        for day in range(1, 29)
        for user in ("alice", "carol", "dave")
        for hour in (9, 10, 11)
    ]


def logon(stamp: str, user: str = "bob") -> str:
    return json.dumps(
        {
            "@timestamp": stamp,
            "user": {"name": user},
            "host": {"name": "pc2"},
            "event": {"action": "logon"},
        }
    )


@pytest.mark.parametrize(
    "stamp, shown",
    [
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
    ],
)
def test_a_sentinel_date_stops_the_scan_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp: str, shown: str
) -> None:
    # Before: 9999-12-31 ended in an OverflowError traceback, a window or slice past it.
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*office_lines(2024, 2), logon(stamp)]) + "\n")
    out = tmp_path / "out"
    assert main(["scan", str(path), "--format", "jsonl", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"baseliner: error: {path}: an event is dated {shown}; a scan holds events from "
        "0001-02-01 to 9999-11-30 (fix or drop the lines with that date)\n"
    )
    assert not (out / "alerts.jsonl").exists()


@pytest.mark.parametrize(
    "lines, plotted",
    [
        # One account's windows in late 9999, far from the bulk in 2024: the training split
        # leaves them out, its plot ends at the last datetime's month.
        ([*office_lines(2024, 2), *(logon(f"9999-11-30T0{h}:00:00Z") for h in range(6))], "bob"),
        # A whole log in the first year, one account on its last day only.
        ([*office_lines(1, 2), *(logon(f"0001-02-28T0{h}:00:00Z") for h in range(6))], "bob"),
    ],
    ids=["late-9999", "year-1"],
)
def test_events_near_the_ends_are_scanned_and_plotted(
    tmp_path: Path, lines: list[str], plotted: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["scan", str(path), "--format", "jsonl", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == len(lines)
    alerted = {json.loads(line)["entity"] for line in (out / "alerts.jsonl").open()}
    assert plotted in alerted
    assert (out / "plots" / f"{plotted}.png").stat().st_size > 0


@pytest.mark.parametrize(
    "start", [datetime(9999, 11, 30, tzinfo=UTC), datetime(1, 2, 1, tzinfo=UTC)]
)
def test_a_plot_of_one_window_near_the_ends_stays_inside_them(
    tmp_path: Path, start: datetime
) -> None:
    # matplotlib widens the axis of a single point by two years each side, past year 9999
    # or before year 1, which it then refuses to draw.
    vectors = pl.DataFrame({"entity": ["bob"], "window_start": [start], "logons": [6.0]})
    png = tmp_path / "bob.png"
    _plot_entity("bob", vectors, ["logons"], [start], png)
    assert png.stat().st_size > 0

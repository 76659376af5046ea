"""The daemon's watermark over several sources, and windows that close when input goes quiet.

Windows close when the slowest active source has passed them (a file read to its end in one
poll must not make the other sources' events late), a source that sends nothing stops
holding after ``source_idle``, and when no source has sent an event for ``close_idle_after``
the watermark moves on with the wall clock.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from detector.config import DaemonConfig, parse_config
from detector.daemon import Daemon
from detector.errors import UsageError
from detector.watermark import NOTHING_CLOSES, SourceWatermarks
from tests.detector._support import append_lines

START = datetime(2010, 1, 4, 8, 0)
USERS = [f"U{i}" for i in range(8)]


def _logon(user: str, moment: datetime, key: str) -> str:
    return f"{{{key}}},{moment.strftime('%m/%d/%Y %H:%M:%S')},{user},PC-{user},Logon"


def _logons(first_day: int, days: int) -> list[str]:
    """Eight users, 2 to 6 logons a day each (varied, so the scores do not tie)."""
    lines = []
    for day in range(first_day, first_day + days):
        for i, user in enumerate(USERS):
            for k in range(2 + (day * 7 + i * 3) % 5):
                moment = START + timedelta(days=day, minutes=7 * k)
                lines.append(_logon(user, moment, f"{user}-{day}-{k}"))
    return lines


def _config(folder: Path, files: list[str], **daemon: Any) -> DaemonConfig:
    doc = {
        "daemon": {
            "state_dir": "state",
            "budget": "3/day",
            "expected_entities": 8,
            "warmup_windows": 8,
            "metrics_address": "127.0.0.1:0",
            **daemon,
        },
        "source": [
            {"name": Path(name).stem, "type": "file", "path": name, "parser": "cert.logon"}
            for name in files
        ],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }
    return parse_config(doc, folder)


class Recorder:
    """A daemon whose closed windows are recorded (then scored as usual)."""

    def __init__(self, config: DaemonConfig) -> None:
        self.daemon = Daemon(config)
        self.vectors: list[pl.DataFrame] = []
        score = self.daemon._score

        def record(vectors: pl.DataFrame) -> None:
            self.vectors.append(vectors)
            score(vectors)

        self.daemon._score = record  # type: ignore[method-assign]

    def drain(self) -> None:
        for _ in range(100):
            if not self.daemon.poll_once():
                return

    def closed(self) -> pl.DataFrame:
        return pl.concat(self.vectors).sort("window_start", "entity")

    def close(self) -> None:
        self.daemon.checkpoint()
        self.daemon.close()


def _alerts(folder: Path) -> list[tuple[str, str, float]]:
    rows = [orjson.loads(line) for line in (folder / "alerts.jsonl").open("rb")]
    return sorted((a["entity"], a["window_start"], a["score"]) for a in rows)


def _late_letters(folder: Path) -> list[str]:
    path = folder / "state/dead_letters.jsonl"
    rows = [orjson.loads(line) for line in path.open("rb")] if path.exists() else []
    return [row["raw"] for row in rows if row["reason"] == "late"]


def _merged_reference(folder: Path, lines: list[str]) -> Recorder:
    """One daemon reading every line from one file, in the order given."""
    folder.mkdir()
    append_lines(folder / "all.csv", lines)
    reference = Recorder(_config(folder, ["all.csv"]))
    reference.drain()
    reference.close()
    return reference


# -- several sources -----------------------------------------------------------------------------


def test_a_file_read_to_its_end_first_makes_no_other_source_late(tmp_path: Path) -> None:
    lines = _logons(0, 6)
    merged = _merged_reference(tmp_path / "merged", lines)
    assert merged.daemon.totals.windows_closed == 40  # days 0-4 of 8 users; day 5 open

    two = tmp_path / "two"
    two.mkdir()
    # Alternate lines: every user's windows have events from both files.
    append_lines(two / "a.csv", lines[0::2])
    append_lines(two / "b.csv", lines[1::2])
    run = Recorder(_config(two, ["a.csv", "b.csv"]))
    run.daemon.poll_once()  # a.csv is read to its end before b.csv's first line
    assert run.daemon.totals.events["a"] == len(lines[0::2])
    run.drain()
    run.close()
    assert run.daemon.totals.late_events == 0 and _late_letters(two) == []
    assert run.daemon.totals.windows_closed == 40
    assert run.closed().equals(merged.closed())
    assert _alerts(two) == _alerts(tmp_path / "merged") != []


def test_a_restart_with_backlogs_in_two_sources_loses_no_event(tmp_path: Path) -> None:
    lines = _logons(0, 6)
    first, backlog = _logons(0, 3), _logons(3, 3)
    merged = _merged_reference(tmp_path / "merged", lines)

    folder = tmp_path / "two"
    folder.mkdir()
    append_lines(folder / "a.csv", first[0::2])
    append_lines(folder / "b.csv", first[1::2])
    before = Recorder(_config(folder, ["a.csv", "b.csv"]))
    before.drain()
    before.close()
    assert before.daemon.totals.windows_closed == 16  # days 0 and 1; day 2 open
    # Both files grow while the daemon is down.
    append_lines(folder / "a.csv", backlog[0::2])
    append_lines(folder / "b.csv", backlog[1::2])
    after = Recorder(_config(folder, ["a.csv", "b.csv"]))
    after.drain()
    after.close()
    assert after.daemon.totals.late_events == 0 and _late_letters(folder) == []
    assert after.daemon.totals.windows_closed == 40
    both = pl.concat([before.closed(), after.closed()])
    assert both.equals(merged.closed())
    assert _alerts(folder) == _alerts(tmp_path / "merged")


def test_a_source_that_never_sends_stops_holding_after_source_idle(tmp_path: Path) -> None:
    lines = _logons(0, 3)
    append_lines(tmp_path / "a.csv", lines)
    (tmp_path / "b.csv").touch()
    config = replace(_config(tmp_path, ["a.csv", "b.csv"]), source_idle=timedelta(seconds=0.3))
    run = Recorder(config)
    run.drain()
    assert run.daemon.totals.windows_closed == 0  # b has sent nothing: it may still
    time.sleep(0.35)
    # a goes on (it holds at its newest time); b, silent for 0.35 s, no longer holds.
    append_lines(tmp_path / "a.csv", [_logon("U0", START + timedelta(days=2, hours=3), "more")])
    run.daemon.poll_once()
    assert run.daemon.watermarks.holding(time.monotonic()) == ["a"]
    assert run.daemon.totals.windows_closed == 16
    run.close()
    assert run.daemon.totals.late_events == 0


def test_an_idle_source_that_wakes_up_holds_again(tmp_path: Path) -> None:
    append_lines(tmp_path / "a.csv", _logons(0, 3))
    (tmp_path / "b.csv").touch()
    config = replace(_config(tmp_path, ["a.csv", "b.csv"]), source_idle=timedelta(seconds=0.3))
    run = Recorder(config)
    run.drain()
    time.sleep(0.35)
    run.daemon.poll_once()  # neither holds: days 0 and 1 close
    assert run.daemon.totals.windows_closed == 16
    # b wakes up: a day-2 logon (its window is open) and a day-1 one (closed: late).
    day1 = _logon("U7", START + timedelta(days=1, hours=2), "b-old")
    day2 = _logon("U7", START + timedelta(days=2, hours=1), "b-2")
    append_lines(tmp_path / "b.csv", [day2, day1])
    run.daemon.poll_once()
    assert run.daemon.totals.late_events == 1
    # a moves on to day 4; b holds the watermark at its day-2 09:00.
    append_lines(tmp_path / "a.csv", _logons(3, 2))
    run.daemon.poll_once()
    assert run.daemon.totals.windows_closed == 16
    # b moves to day 4: days 2 and 3 close, b's day-2 logon in U7's window.
    append_lines(tmp_path / "b.csv", [_logon("U7", START + timedelta(days=4, hours=1), "b-4")])
    run.daemon.poll_once()
    assert run.daemon.totals.windows_closed == 32
    run.close()
    assert _late_letters(tmp_path) == [day1]
    closed = run.closed()
    day2 = closed.filter(pl.col("window_start").dt.day() == START.day + 2)
    n_events = dict(day2.select("entity", "n_events").rows())
    assert n_events["U7"] == 2 + (2 * 7 + 7 * 3) % 5 + 1


# -- windows close when every source has gone quiet ----------------------------------------------


def test_windows_close_when_the_input_has_gone_quiet(tmp_path: Path) -> None:
    # The newest event is one second before midnight; no lateness.
    last = datetime(2010, 1, 5, 23, 59, 59)
    append_lines(tmp_path / "a.csv", [*_logons(0, 2), _logon("U0", last, "last")])
    config = replace(
        _config(tmp_path, ["a.csv"], allowed_lateness="0s"),
        close_idle_after=timedelta(seconds=0.2),
    )
    run = Recorder(config)
    run.drain()
    assert run.daemon.totals.windows_closed == 8  # day 0; day 1 (the 5th) waits for an event
    time.sleep(1.1)  # quiet: the watermark passes midnight with the wall clock
    run.daemon.poll_once()
    assert run.daemon.totals.windows_closed == 16
    assert run.closed().get_column("window_start").dt.day().to_list()[-1] == 5
    # An event for the closed day is late, as usual; one of the next day is not.
    late_line = _logon("U1", datetime(2010, 1, 5, 23, 0), "late")
    append_lines(tmp_path / "a.csv", [late_line, _logon("U1", datetime(2010, 1, 6, 9, 0), "next")])
    run.daemon.poll_once()
    run.close()
    assert run.daemon.totals.late_events == 1 and _late_letters(tmp_path) == [late_line]
    assert run.daemon.features.open_cells == 1


def test_close_idle_after_off_keeps_the_last_window_open(tmp_path: Path) -> None:
    last = datetime(2010, 1, 5, 23, 59, 59)
    append_lines(tmp_path / "a.csv", [*_logons(0, 2), _logon("U0", last, "last")])
    config = _config(tmp_path, ["a.csv"], allowed_lateness="0s", close_idle_after="off")
    assert config.close_idle_after is None
    run = Recorder(config)
    run.drain()
    time.sleep(0.3)
    run.daemon.poll_once()
    run.close()
    assert run.daemon.totals.windows_closed == 8


# -- the rule itself, on a given clock -----------------------------------------------------------


def test_the_slowest_holding_source_decides() -> None:
    marks = SourceWatermarks(["a", "b", "c"], source_idle=10, close_idle_after=None, now=0)
    assert marks.bound(None, now=0) is None  # no event at all
    marks.saw("a", 500, now=1)
    marks.saw("b", 300, now=1)
    assert marks.hold_for("a", now=1) == NOTHING_CLOSES  # c has sent nothing yet
    assert marks.bound(500, now=1) == NOTHING_CLOSES
    assert marks.hold_for("c", now=1) == 300
    marks.saw("c", 400, now=2)
    assert marks.bound(500, now=2) == 300 and marks.hold_for("b", now=2) == 400
    marks.saw("b", None, now=5)  # a batch without events is no sign of life
    assert marks.holding(11.5) == ["c"] and marks.bound(500, now=11.5) == 400
    assert marks.bound(500, now=12) == 500  # none holds: the newest time
    marks.saw("b", 200, now=13)  # b wakes up with an old event: it holds at its newest
    assert marks.newest("b") == 300 and marks.bound(500, now=13) == 300
    marks.end("b")
    assert marks.bound(500, now=13) == 500


def test_the_quiet_clock_starts_only_when_every_source_is_quiet() -> None:
    marks = SourceWatermarks(["a", "b"], source_idle=60, close_idle_after=5, now=0)
    # A replay that keeps reading: an event every second, from one source or the other.
    for second in range(1, 30):
        marks.saw("ab"[second % 2], 1_000 * second, now=second)
        held = NOTHING_CLOSES if second == 1 else 1_000 * (second - 1)
        assert marks.bound(1_000 * second, now=second + 0.9) == held
    # Quiet for 5 s: the newest time plus the quiet seconds.
    assert marks.bound(29_000, now=33.9) == 28_000
    assert marks.bound(29_000, now=34) == 29_000 + 5_000_000
    assert marks.bound(29_000, now=40) == 29_000 + 11_000_000


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("source_idle", "30s", timedelta(seconds=30)),
        ("source_idle", "0s", timedelta(0)),
        ("close_idle_after", "10m", timedelta(minutes=10)),
        ("close_idle_after", "off", None),
        ("close_idle_after", "0", None),
        ("close_idle_after", "0s", None),
    ],
)
def test_the_keys_take_durations(tmp_path: Path, key: str, text: str, expected: object) -> None:
    config = _config(tmp_path, ["a.csv"], **{key: text})
    assert getattr(config, key) == expected


def test_the_defaults_and_a_bad_value(tmp_path: Path) -> None:
    config = _config(tmp_path, ["a.csv"])
    assert (config.source_idle, config.close_idle_after) == (
        timedelta(seconds=60),
        timedelta(minutes=5),
    )
    with pytest.raises(UsageError, match=r"^daemon\.close_idle_after: 'soon' is not a duration"):
        _config(tmp_path, ["a.csv"], close_idle_after="soon")
    with pytest.raises(UsageError, match=r"^daemon\.source_idle: "):
        _config(tmp_path, ["a.csv"], source_idle="-1s")

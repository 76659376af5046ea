"""``baseliner scan`` over events dated at the ends of what a timestamp holds: a line whose time
is a sentinel (``9999-12-31``, ``0001-01-01``) is a dead letter in every format, the rest of the
log is scanned; events near those ends that a scan can place are scanned, reported and
plotted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from detector.cli import main
from detector.report import _plot_entity
from streams.batch import BATCH_TIME_RANGE, OUT_OF_RANGE

START = datetime(2024, 2, 1, tzinfo=UTC)
LATE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
EARLY = datetime(1, 1, 1, tzinfo=UTC)


def office_times(year: int = 2024, month: int = 2) -> list[tuple[datetime, str]]:
    """Three users at 9, 10 and 11 on each of 28 days of a month."""
    return [
        (datetime(year, month, day, hour, tzinfo=UTC), user)
        for day in range(1, 29)
        for user in ("alice", "carol", "dave")
        for hour in (9, 10, 11)
    ]


def jsonl_line(at: datetime, user: str) -> str:
    return json.dumps(
        {
            "@timestamp": at.isoformat().replace("+00:00", "Z"),
            "user": {"name": user},
            "host": {"name": f"pc-{user}"},
            "event": {"action": "logon"},
        }
    )


def write_jsonl(path: Path, times: list[tuple[datetime, str]]) -> Path:
    file = path / "events.jsonl"
    file.write_text("".join(jsonl_line(at, user) + "\n" for at, user in times))
    return file


def write_cert(path: Path, times: list[tuple[datetime, str]]) -> Path:
    lines = ["id,date,user,pc,activity"] + [
        f"{{L{n}}},{at:%m/%d/}{at.year:04d} {at:%H:%M:%S},{user},PC-{user},Logon"
        for n, (at, user) in enumerate(times)
    ]
    (path / "logon.csv").write_text("\n".join(lines) + "\n")
    return path / "logon.csv"


#: LANL times are seconds (at most 11 digits) from ``--lanl-epoch``: from the default 1970 epoch
#: none reaches 9999 (a longer one is a ``bad_timestamp``), so the LANL log is one of 9999.
LANL_EPOCH = datetime(9999, 1, 1, tzinfo=UTC)


def write_lanl(path: Path, times: list[tuple[datetime, str]]) -> Path:
    epoch = LANL_EPOCH
    lines = [
        f"{int((at - epoch).total_seconds())},{user}@DOM1,{user}@DOM1,C{n % 5},C9,Kerberos,"
        "Network,LogOn,Success"
        for n, (at, user) in enumerate(times)
    ]
    (path / "auth.txt").write_text("\n".join(lines) + "\n")
    return path / "auth.txt"


def write_syslog(path: Path, times: list[tuple[datetime, str]]) -> Path:
    lines = [
        f"{at.isoformat()} pc-{user} sshd[42]: Accepted password for {user} from 10.0.0.1"
        for at, user in times
    ]
    (path / "syslog").write_text("\n".join(lines) + "\n")
    return path / "syslog"


def write_parquet(path: Path, times: list[tuple[datetime, str]]) -> Path:
    frame = pl.DataFrame(
        {
            "ts": [at for at, _ in times],
            "source": ["export"] * len(times),
            "action": ["logon"] * len(times),
            "user": [user for _, user in times],
        },
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "source": pl.String,
            "action": pl.String,
            "user": pl.String,
        },
    )
    frame.write_parquet(path / "events.parquet")
    return path / "events.parquet"


WRITERS: dict[str, tuple[Callable[[Path, list[tuple[datetime, str]]], Path], list[str]]] = {
    "jsonl": (write_jsonl, []),
    "cert": (write_cert, []),
    "lanl": (write_lanl, ["--lanl-epoch", LANL_EPOCH.isoformat()]),
    "syslog": (write_syslog, ["--entity", "host"]),
    "parquet": (write_parquet, []),
}


# LANL times count seconds on from an epoch: none is before it, so no 0001-01-01 there.
@pytest.mark.parametrize(
    "fmt, sentinel",
    [(fmt, LATE) for fmt in WRITERS] + [(fmt, EARLY) for fmt in WRITERS if fmt != "lanl"],
    ids=[f"{fmt}-9999-12-31" for fmt in WRITERS]
    + [f"{fmt}-0001-01-01" for fmt in WRITERS if fmt != "lanl"],
)
def test_a_sentinel_date_is_a_dead_letter_and_the_rest_is_scanned(
    tmp_path: Path, fmt: str, sentinel: datetime
) -> None:
    # Before: one such line ended the whole scan in an OverflowError traceback (a window,
    # slice or training margin past the last datetime).
    write, args = WRITERS[fmt]
    times = office_times(9999) if fmt == "lanl" else office_times()
    times.insert(40, (sentinel, "bob"))
    path = write(tmp_path, times)
    out = tmp_path / "out"
    code = main(["scan", str(path), "--format", fmt, *args, "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["events"], summary["dead_letter_reasons"]) == (
        len(times) - 1,
        {OUT_OF_RANGE: 1},
    )
    letters = [json.loads(line) for line in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == OUT_OF_RANGE
    # Its position: the 41st event's line (after CERT's header), the 41st row of Parquet.
    assert letter["line"] == 41 + (fmt == "cert")
    assert "bob" in letter["raw"]


def test_the_range_is_a_month_inside_what_a_datetime_holds() -> None:
    lo, hi = BATCH_TIME_RANGE
    assert (lo, hi) == (datetime(1, 2, 1, tzinfo=UTC), datetime(9999, 12, 1, tzinfo=UTC))
    assert datetime.min.replace(tzinfo=UTC) + timedelta(days=31) == lo


@pytest.mark.parametrize(
    "times",
    [
        # One account's windows in late 9999, far from the bulk in 2024: the training split
        # leaves them out, its plot ends at the last datetime's month.
        office_times() + [(datetime(9999, 11, 30, h, tzinfo=UTC), "bob") for h in range(6)],
        # A whole log in the first year, one account on its last day only.
        office_times(1, 2) + [(datetime(1, 2, 28, h, tzinfo=UTC), "bob") for h in range(6)],
    ],
    ids=["late-9999", "year-1"],
)
def test_events_near_the_ends_are_scanned_and_plotted(
    tmp_path: Path, times: list[tuple[datetime, str]]
) -> None:
    path = write_jsonl(tmp_path, times)
    out = tmp_path / "out"
    assert main(["scan", str(path), "--format", "jsonl", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["events"], summary["dead_letter_reasons"]) == (len(times), {})
    alerted = {json.loads(line)["entity"] for line in (out / "alerts.jsonl").open()}
    assert "bob" in alerted
    assert (out / "plots" / "bob.png").stat().st_size > 0


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

"""``cat logs | baseliner run``: a daemon whose only source is stdin stops when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]


def _logons() -> bytes:
    """Three users logging on three times a day for 14 days; U3 30 times on day 12."""
    start = datetime(2010, 1, 4, 8, 0)
    lines = []
    for day in range(14):
        for user in ("U1", "U2", "U3"):
            for k in range(30 if (user == "U3" and day == 12) else 3):
                stamp = (start + timedelta(days=day, minutes=10 * k)).strftime("%m/%d/%Y %H:%M:%S")
                lines.append(f"{{{user}-{day}-{k}}},{stamp},{user},PC-{user},Logon\n")
    return "".join(lines).encode()


def _run(config: Path, stdin: bytes | int) -> subprocess.CompletedProcess[bytes]:
    """``baseliner run`` reading ``stdin``: bytes piped in, or a file descriptor."""
    return subprocess.run(
        [sys.executable, "-m", "detector", "run", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=None if isinstance(stdin, bytes) else stdin,
        capture_output=True,
        timeout=90,
    )


@pytest.mark.slow
def test_the_daemon_stops_at_the_end_of_stdin_and_a_rerun_continues(tmp_path: Path) -> None:
    config = tmp_path / "baseliner.toml"
    config.write_text(
        """
[daemon]
state_dir = "state"
poll_seconds = 0.05
metrics_address = "127.0.0.1:0"
budget = "1/day"
expected_entities = 3
warmup_windows = 5

[[source]]
type = "stdin"
parser = "cert.logon"

[[sink]]
type = "jsonl"
path = "alerts.jsonl"
"""
    )
    logons = _logons()
    first = _run(config, logons + b"not,a,logon\n")
    assert first.returncode == 0, first.stderr
    events = logons.count(b"\n")
    # 14 days x 3 users; the last day's windows stay open until later events close them.
    assert f"input ended after {events:,} event(s), 39 window(s) closed".encode() in first.stderr, (
        first.stderr
    )
    assert b"3 entity window(s) still open" in first.stderr
    alerts = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert ("U3", "2010-01-16") in [(a["entity"], a["window_start"][:10]) for a in alerts]
    dead = (tmp_path / "state" / "dead_letters.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["line"] for line in dead] == [events + 1]
    assert (tmp_path / "state").is_dir() and any((tmp_path / "state").glob("checkpoint*"))

    # The next day's logons through a second run close the held windows of the first.
    nextday = b"{U1-x},01/18/2010 09:00:00,U1,PC-U1,Logon\n"
    second = _run(config, nextday)
    assert second.returncode == 0, second.stderr
    assert f"after {events + 1:,} event(s), 42 window(s) closed".encode() in second.stderr
    again = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert again[: len(alerts)] == alerts
    assert len({alert["id"] for alert in again}) == len(again)  # nothing emitted twice


@pytest.mark.slow
def test_a_stdin_that_cannot_be_read_stops_the_daemon_with_exit_code_1(tmp_path: Path) -> None:
    config = tmp_path / "baseliner.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\npoll_seconds = 0.05\nmetrics_address = "127.0.0.1:0"\n'
        '[[source]]\ntype = "stdin"\nparser = "cert.logon"\n'
        '[[sink]]\ntype = "jsonl"\npath = "alerts.jsonl"\n'
    )
    # A write-only descriptor as standard input: the first read fails (EBADF), as a broken
    # device's would.
    unreadable = os.open(tmp_path / "write-only", os.O_WRONLY | os.O_CREAT)
    try:
        result = _run(config, unreadable)
    finally:
        os.close(unreadable)
    assert result.returncode == 1, result.stderr
    assert (
        b"baseliner run: input ended on a read error (source source1: read failed after line 0:"
        b" [Errno 9] Bad file descriptor) after 0 event(s)"
    ) in result.stderr

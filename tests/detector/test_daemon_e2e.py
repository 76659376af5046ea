"""End to end: ``python -m detector run`` as a real process, stopped and restarted."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
START = datetime(2010, 1, 4, 8, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _logons(first_day: int, days: int) -> list[str]:
    """Three users logging on a few times a day; ``u3`` logs on 30 times on day 12."""
    lines = []
    for day in range(first_day, first_day + days):
        for user in ("U1", "U2", "U3"):
            count = 30 if (user == "U3" and day == 12) else 3
            for k in range(count):
                ts = START + timedelta(days=day, minutes=10 * k)
                stamp = ts.strftime("%m/%d/%Y %H:%M:%S")
                lines.append(f"{{{user}-{day}-{k}}},{stamp},{user},PC-{user},Logon")
    return lines


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.writelines(line + "\n" for line in lines)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{name}{{?{re.escape(labels)}}}? ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _start(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "detector", "run", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        raise


@pytest.mark.slow
def test_run_counts_each_line_once_across_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "logon.csv"
    config = tmp_path / "baseliner.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "state"
checkpoint_seconds = 60
poll_seconds = 0.05
metrics_address = "127.0.0.1:{port}"
allowed_lateness = "1h"
budget = "1/day"
expected_entities = 3
warmup_windows = 5

[[source]]
name = "logon"
type = "file"
path = "logon.csv"
parser = "cert.logon"

[[sink]]
type = "jsonl"
path = "alerts.jsonl"
"""
    )
    first = _logons(0, 10)
    _append(log, [*first[:10], "this,is,not,a,logon,line", *first[10:]])

    process = _start(config)
    try:
        assert _wait(lambda: _get(f"{base}/healthz") == "ok\n", 15), "no /healthz"

        def events() -> float:
            return _metric(
                _get(f"{base}/metrics") or "", "baseliner_events_total", 'source="logon"'
            )

        assert _wait(lambda: events() == len(first), 10), events()
        text = _get(f"{base}/metrics") or ""
        labels = 'reason="wrong_field_count",source="logon"'
        assert _metric(text, "baseliner_dead_letters_total", labels) == 1.0
        assert _metric(text, "baseliner_windows_closed_total") == 27.0  # 9 days closed x 3
    finally:
        code = _stop(process)
    assert code == 0, process.stderr.read() if process.stderr else ""
    assert (tmp_path / "state" / "checkpoint.bin").exists()
    dead = [orjson.loads(line) for line in (tmp_path / "state/dead_letters.jsonl").open("rb")]
    assert [(d["line"], d["reason"]) for d in dead] == [(11, "wrong_field_count")]

    second = _logons(10, 6)
    _append(log, second)
    process = _start(config)
    try:
        assert _wait(lambda: _get(f"{base}/healthz") == "ok\n", 15), "no /healthz after restart"

        def total() -> float:
            return _metric(
                _get(f"{base}/metrics") or "", "baseliner_events_total", 'source="logon"'
            )

        assert _wait(lambda: total() == len(first) + len(second), 10), total()
        text = _get(f"{base}/metrics") or ""
        assert _metric(text, "baseliner_windows_closed_total") == 45.0  # 15 days closed x 3
        labels = 'reason="wrong_field_count",source="logon"'
        assert _metric(text, "baseliner_dead_letters_total", labels) == 1.0
    finally:
        code = _stop(process)
    assert code == 0
    alerts = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").open("rb")]
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids))
    assert any(a["entity"] == "U3" and a["window_start"].startswith("2010-01-16") for a in alerts)

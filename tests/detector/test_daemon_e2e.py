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

from tests.detector._support import WebhookReceiver, append_lines

REPO = Path(__file__).resolve().parents[2]
START = datetime(2010, 1, 4, 8, 0)


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
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
        # A file, not a pipe: a daemon logging more than a pipe holds must not block.
        stderr=(config.parent / f"{config.stem}.stderr").open("ab"),
    )


def _stderr(config: Path) -> str:
    path = config.parent / f"{config.stem}.stderr"
    return path.read_text() if path.exists() else ""


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
    append_lines(log, [*first[:10], "this,is,not,a,logon,line", *first[10:]])

    process = _start(config)
    try:
        assert _wait(lambda: '"status": "ok"' in (_get(f"{base}/healthz") or ""), 15), "no /healthz"

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
    assert code == 0, _stderr(config)
    assert (tmp_path / "state" / "checkpoint.bin").exists()
    dead = [orjson.loads(line) for line in (tmp_path / "state/dead_letters.jsonl").open("rb")]
    assert [(d["line"], d["reason"]) for d in dead] == [(11, "wrong_field_count")]

    second = _logons(10, 6)
    append_lines(log, second)
    process = _start(config)
    try:
        assert _wait(lambda: '"status": "ok"' in (_get(f"{base}/healthz") or ""), 15), (
            "no /healthz after restart"
        )

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


# -- helpers of the tests below -------------------------------------------------------------

_DAEMON = """
[daemon]
state_dir = "state"
checkpoint_seconds = {checkpoint_seconds}
poll_seconds = 0.05
metrics_address = "127.0.0.1:{port}"
allowed_lateness = "1h"
source_idle = "1s"
budget = "1/day"
expected_entities = 3
warmup_windows = 5
"""

_LOGON_SOURCE = """
[[source]]
name = "logon"
type = "file"
path = "logon.csv"
parser = "cert.logon"
"""


class _Run:
    """One ``baseliner run`` process: its config, metrics and a bounded stop."""

    def __init__(
        self, folder: Path, tables: str, *, checkpoint_seconds: float = 60, daemon_keys: str = ""
    ) -> None:
        self.port = _free_port()
        self.config = folder / "baseliner.toml"
        daemon = _DAEMON.format(checkpoint_seconds=checkpoint_seconds, port=self.port)
        self.config.write_text(daemon + daemon_keys + tables)
        self.process = _start(self.config)
        if not _wait(lambda: '"status": "ok"' in (self.get("/healthz") or ""), 30):
            self.kill()
            raise AssertionError(f"no /healthz: {_stderr(self.config)}")

    def get(self, path: str) -> str | None:
        return _get(f"http://127.0.0.1:{self.port}{path}")

    def metric(self, name: str, labels: str = "") -> float:
        return _metric(self.get("/metrics") or "", name, labels)

    def wait_metric(self, name: str, labels: str, value: float, seconds: float = 15) -> None:
        assert _wait(lambda: self.metric(name, labels) == value, seconds), (
            f"{name}{{{labels}}} = {self.metric(name, labels)}, expected {value}"
        )

    def stop(self) -> None:
        code = _stop(self.process)
        assert code == 0, _stderr(self.config)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def _events(run: _Run, total: int, source: str = "logon") -> None:
    run.wait_metric("baseliner_events_total", f'source="{source}"', total)


def _alert_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


# -- (a) file tail across rotation -----------------------------------------------------------


@pytest.mark.slow
def test_file_source_follows_rename_rotation_and_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "logon.csv"
    append_lines(log, _logons(0, 3))
    run = _Run(tmp_path, _LOGON_SOURCE)
    try:
        _events(run, 27)
        # logrotate's default: the last lines land just before the rename, unread.
        append_lines(log, _logons(3, 1))
        log.rename(tmp_path / "logon.csv.1")
        append_lines(log, _logons(4, 2))
        _events(run, 27 + 9 + 18)
        # copytruncate: copied, truncated, then written again (less than was read before).
        (tmp_path / "logon.csv.2").write_bytes(log.read_bytes())
        log.write_bytes(b"")
        append_lines(log, _logons(6, 1))
        _events(run, 27 + 9 + 18 + 9)
        # 7 days seen, the last one still open: 6 closed windows of 3 users.
        run.wait_metric("baseliner_windows_closed_total", "", 18)
        assert run.metric("baseliner_source_lag_bytes", 'source="logon"') == 0
        # Caught up: nothing read ahead is waiting to be handled (the gauge is there, at 0).
        in_flight = re.compile(r"^baseliner_polls_in_flight 0\.0$", re.M)
        assert _wait(lambda: in_flight.search(run.get("/metrics") or "") is not None, 15)
    finally:
        run.stop()


@pytest.mark.slow
def test_the_allowlist_is_reread_when_it_changes_and_on_sighup(tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    entry = '[[allow]]\nentity = "{}"\nreason = "reviewed"\n'
    allow.write_text(entry.format("U3"))
    append_lines(tmp_path / "logon.csv", _logons(0, 3))
    run = _Run(tmp_path, _LOGON_SOURCE, daemon_keys='allowlist = "allow.toml"\n')
    try:
        run.wait_metric("baseliner_allowlist_entries", "", 1)
        # Edited: reread without a signal.
        allow.write_text(entry.format("U3") + entry.format("U1"))
        run.wait_metric("baseliner_allowlist_reloads_total", "", 1)
        run.wait_metric("baseliner_allowlist_entries", "", 2)
        # Broken mid-edit: refused, the two entries stay in force.
        allow.write_text('[[allow]]\nentity = "U3"\n')
        run.wait_metric("baseliner_allowlist_reload_failures_total", "", 1)
        assert run.metric("baseliner_allowlist_entries") == 2
        allow.write_text(entry.format("U2"))
        run.wait_metric("baseliner_allowlist_reloads_total", "", 2)
        # SIGHUP rereads the unchanged file, and the daemon goes on.
        run.process.send_signal(signal.SIGHUP)
        run.wait_metric("baseliner_allowlist_reloads_total", "", 3)
        run.wait_metric("baseliner_allowlist_entries", "", 1)
        assert run.process.poll() is None
    finally:
        run.stop()
    log = _stderr(run.config)
    # The refusal is logged at the default level (a reread put in force is info).
    assert "'reason' is required (a non-empty string); the allow-list in force stays" in log


# -- (b, c) syslog over UDP and TCP, HTTP ingest ---------------------------------------------


def _auth_lines(first_day: int, days: int) -> list[str]:
    """RFC 5424 sshd logons of alice and bob, three a day each."""
    lines = []
    for day in range(first_day, first_day + days):
        for user in ("alice", "bob"):
            for k in range(3):
                ts = (START + timedelta(days=day, minutes=10 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
                lines.append(
                    f"<38>1 {ts} web1 sshd 42 - -"
                    f" Accepted password for {user} from 10.0.0.5 port {5000 + k} ssh2"
                )
    return lines


def _ecs_lines(first_day: int, days: int) -> list[str]:
    """The same logons as Elastic Common Schema JSON lines (what Vector or Fluent Bit send)."""
    lines = []
    for day in range(first_day, first_day + days):
        for user in ("alice", "bob"):
            for k in range(3):
                ts = (START + timedelta(days=day, minutes=10 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
                record = {
                    "@timestamp": ts,
                    "event": {"action": "logon"},
                    "user": {"name": user},
                    "host": {"name": "web1"},
                }
                lines.append(orjson.dumps(record).decode())
    return lines


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_syslog_udp_tcp_and_http_ingest_feed_the_same_features(tmp_path: Path) -> None:
    udp_port = _free_port(socket.SOCK_DGRAM)
    tcp_port, http_port = _free_port(), _free_port()
    tables = f"""
[[source]]
name = "udp"
type = "syslog_udp"
listen = "127.0.0.1:{udp_port}"
parser = "linux.auth"

[[source]]
name = "tcp"
type = "syslog_tcp"
listen = "127.0.0.1:{tcp_port}"
parser = "linux.auth"

[[source]]
name = "http"
type = "http"
listen = "127.0.0.1:{http_port}"
parser = "jsonl"
max_body = 4096
"""
    run = _Run(tmp_path, tables)
    try:
        # Each source carries two days, in turn, so no event is late for another's.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for line in _auth_lines(0, 2):
                udp.sendto(line.encode(), ("127.0.0.1", udp_port))
        _events(run, 12, "udp")
        framed = b"".join(b"%d %s" % (len(x.encode()), x.encode()) for x in _auth_lines(2, 2))
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as tcp:
            # Octet-counted frames, split mid-frame across two sends.
            tcp.sendall(framed[:100])
            time.sleep(0.05)
            tcp.sendall(framed[100:])
            _events(run, 12, "tcp")
        url = f"http://127.0.0.1:{http_port}/ingest"
        body = "\n".join(_ecs_lines(4, 2)).encode() + b"\n"
        assert len(body) <= 4096
        assert _post(url, body) == 200
        _events(run, 12, "http")
        assert _post(url, b"\n" * 5000) == 413
        run.wait_metric("baseliner_source_rejected_total", 'reason="too_large",source="http"', 1)
        # Six days of two users, the last still open: five closed windows each.
        run.wait_metric("baseliner_windows_closed_total", "", 10)
        for source in ("udp", "tcp"):
            assert run.metric("baseliner_source_received_total", f'source="{source}"') == 12
            assert run.metric("baseliner_source_dropped_total", f'source="{source}"') == 0
            assert run.metric("baseliner_source_queue_depth", f'source="{source}"') == 0
        assert run.metric("baseliner_source_framing_errors_total", 'source="tcp"') == 0
    finally:
        run.stop()


# -- (d) webhook sinks: a flaky receiver and a dead one --------------------------------------


@pytest.mark.slow
def test_webhook_delivers_every_alert_once_and_dead_letters_when_it_cannot(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver([500, 500])
    dead_url = f"http://127.0.0.1:{_free_port()}/alerts"
    tables = (
        _LOGON_SOURCE
        + f"""
[[sink]]
type = "jsonl"
path = "alerts.jsonl"

[[sink]]
type = "webhook"
url = "{receiver.url}"
backoff = 0.05

[[sink]]
type = "webhook"
url = "{dead_url}"
max_attempts = 2
backoff = 0.05
dead_letter = "dead-webhook.jsonl"
"""
    )
    lines = _logons(0, 16)
    append_lines(tmp_path / "logon.csv", lines)
    try:
        run = _Run(tmp_path, tables)
        try:
            _events(run, len(lines))
            written = _alert_ids(tmp_path / "alerts.jsonl")
            assert written, "the burst of U3 raises at least one alert"
            labels = 'sink="sink2",type="webhook"'
            run.wait_metric("baseliner_sink_delivered_total", labels, len(written))
            assert run.metric("baseliner_sink_retries_total", labels) == 2
            labels = 'sink="sink3",type="webhook"'
            run.wait_metric("baseliner_sink_dead_lettered_total", labels, len(written))
            assert run.metric("baseliner_alert_latency_seconds_count") == len(written)
        finally:
            run.stop()
        assert [a["id"] for a in receiver.delivered] == written
        assert receiver.requests == len(written) + 2
        dead = [orjson.loads(x) for x in (tmp_path / "dead-webhook.jsonl").open("rb")]
        assert [d["alert"]["id"] for d in dead] == written
        assert {d["attempts"] for d in dead} == {2}
        assert all("ConnectionRefusedError" in d["error"] for d in dead)
    finally:
        receiver.close()


# -- (e) SIGKILL in the middle of a stream ----------------------------------------------------


def _reference_run(folder: Path, lines: list[str]) -> tuple[int, list[str]]:
    """Windows closed and alert ids of an uninterrupted in-process run over ``lines``."""
    from detector.config import parse_config
    from detector.daemon import Daemon

    folder.mkdir()
    append_lines(folder / "logon.csv", lines)
    config = parse_config(
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
    daemon = Daemon(config)
    while daemon.poll_once():
        pass
    daemon.close()
    return daemon.totals.windows_closed, _alert_ids(folder / "alerts.jsonl")


@pytest.mark.slow
def test_sigkill_then_restart_counts_every_event_once_and_loses_no_alert(tmp_path: Path) -> None:
    lines = _logons(0, 16)
    windows, reference = _reference_run(tmp_path / "reference", lines)
    assert reference
    work = tmp_path / "work"
    work.mkdir()
    log = work / "logon.csv"
    tables = _LOGON_SOURCE + '\n[[sink]]\ntype = "jsonl"\npath = "alerts.jsonl"\n'
    first_part = _logons(0, 9)
    append_lines(log, first_part)
    # A clean stop leaves a checkpoint after the first part.
    run = _Run(work, tables, checkpoint_seconds=4)
    try:
        _events(run, len(first_part))
    finally:
        run.stop()
    # Then no periodic checkpoint can come before the kill: the burst and its alert are after
    # the last checkpoint whatever the machine's load, so the restart must replay them.
    run = _Run(work, tables, checkpoint_seconds=3600)
    try:
        second_part = _logons(9, 5)
        append_lines(log, second_part)
        _events(run, len(first_part) + len(second_part))
    finally:
        run.kill()
    assert run.process.returncode == -signal.SIGKILL
    append_lines(log, _logons(14, 2))
    run = _Run(work, tables, checkpoint_seconds=4)
    try:
        _events(run, len(lines))
        run.wait_metric("baseliner_windows_closed_total", "", windows)
        # The alerts written between the checkpoint and the kill were replayed, and skipped.
        replayed = run.metric(
            "baseliner_sink_duplicates_skipped_total", 'sink="sink1",type="jsonl"'
        )
        assert replayed > 0, "no replay: a checkpoint came between the burst and the kill"
    finally:
        run.stop()
    assert _alert_ids(work / "alerts.jsonl") == reference

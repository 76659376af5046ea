"""Sources say whether they are alive (``Source.alive``), and ``/healthz`` reads that, not a
source's private thread."""

from __future__ import annotations

import io
import logging
import socket
import time
from pathlib import Path

import pytest

from detector.config import parse_config
from detector.daemon import Daemon
from streams.sources import (
    FileTailSource,
    GlobTailSource,
    HttpIngestSource,
    StdinSource,
    SyslogTcpSource,
    SyslogUdpSource,
)
from tests.detector.test_daemon_guards import _doc
from tests.detector.test_daemon_ops import _healthz
from tests.streams.test_stdin_source import FailingReader

DEADLINE = 5.0


def _wait_until_dead(source: SyslogUdpSource) -> None:
    deadline = time.monotonic() + DEADLINE
    while source.alive and time.monotonic() < deadline:
        time.sleep(0.01)


def test_file_sources_are_always_alive(tmp_path: Path) -> None:
    tail = FileTailSource(tmp_path / "missing.log")
    pattern = GlobTailSource(str(tmp_path / "*.log"))
    assert tail.alive and pattern.alive
    tail.close()
    pattern.close()


def test_stdin_is_alive_while_reading_and_after_its_end() -> None:
    source = StdinSource(io.BytesIO(b"a\nb\n"))
    assert source.alive
    deadline = time.monotonic() + DEADLINE
    while not source.ended and time.monotonic() < deadline:
        list(source.read())
        time.sleep(0.01)
    assert source.ended and source.alive  # an ended stream is finished, not broken


@pytest.mark.parametrize("kind", [SyslogUdpSource, SyslogTcpSource, HttpIngestSource])
def test_a_listener_is_alive_until_closed(
    kind: type[SyslogUdpSource | SyslogTcpSource | HttpIngestSource],
) -> None:
    source = kind("127.0.0.1", 0)
    assert source.alive
    source.close()
    assert not source.alive


def test_healthz_reports_a_listener_whose_thread_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doc = _doc()
    doc["source"] = [
        {"name": "udp", "type": "syslog_udp", "listen": "127.0.0.1:0", "parser": "linux.auth"}
    ]
    run = Daemon(parse_config(doc, tmp_path))
    run._heartbeat = time.monotonic()
    listener = run.sources["udp"]
    assert isinstance(listener, SyslogUdpSource)
    assert _healthz(run) == (
        200,
        {
            "status": "ok",
            "checks": {
                "loop_seconds_ago": pytest.approx(0, abs=5),
                "checkpoint_seconds_ago": pytest.approx(0, abs=5),
                "last_checkpoint_failed": False,
                "listeners_alive": {"udp": True},
            },
            "problems": [],
        },
    )

    def broken() -> None:
        raise RuntimeError("socket gone")

    # The next datagram makes the listener's receive fail: its thread logs and ends.
    monkeypatch.setattr(listener, "_receive_all", broken)
    with caplog.at_level(logging.ERROR, logger="streams.sources.syslog"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<13>Jan  1 00:00:00 host sshd[1]: hello", listener.address)
        _wait_until_dead(listener)
    assert not listener.alive
    assert "listener thread failed" in caplog.text
    status, body = _healthz(run)
    assert status == 503 and body["status"] == "unhealthy"
    assert body["checks"]["listeners_alive"] == {"udp": False}
    assert body["problems"] == ["source udp: listener thread has died"]
    # Stopping closes the listeners: a dead thread then is no problem of its own.
    run.stopping.set()
    assert run.health()[1]["problems"] == ["stopping"]
    run.close()


def test_a_stdin_read_error_stops_the_daemon_saying_why_and_keeps_what_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(poll_seconds=0.01)
    doc["source"] = [{"name": "in", "type": "stdin", "parser": "cert.logon"}]
    run = Daemon(parse_config(doc, tmp_path))
    lines = [
        b"{a},01/04/2010 08:00:00,U1,PC-U1,Logon\n",
        b"{b},01/04/2010 09:00:00,U2,PC-U2,Logon\n",
    ]
    run.sources["in"] = StdinSource(FailingReader(lines))
    run.run()
    assert run.input_errors() == {"in": "read failed after line 2: [Errno 5] Input/output error"}
    err = capsys.readouterr().err
    assert (
        "baseliner run: input ended on a read error (source in: read failed after line 2:"
        " [Errno 5] Input/output error) after 2 event(s)"
    ) in err


def test_a_clean_stdin_end_is_no_input_error(tmp_path: Path) -> None:
    doc = _doc(poll_seconds=0.01)
    doc["source"] = [{"name": "in", "type": "stdin", "parser": "cert.logon"}]
    run = Daemon(parse_config(doc, tmp_path))
    run.sources["in"] = StdinSource(io.BytesIO(b"{a},01/04/2010 08:00:00,U1,PC-U1,Logon\n"))
    run.run()
    assert run.input_errors() == {}

"""Syslog sources: bounded connections, idle timeouts, record numbering across restarts."""

from __future__ import annotations

import socket
import time

import pytest

from streams.sources import SyslogTcpSource, SyslogUdpSource
from tests.streams.test_syslog_source import (
    assert_closed_by_peer,
    collect,
    connect,
    wait_until,
)


def test_tcp_connections_beyond_max_connections_are_closed_and_counted() -> None:
    source = SyslogTcpSource("127.0.0.1", 0, max_connections=2)
    try:
        first, second = connect(source), connect(source)
        wait_until(lambda: source.open_connections == 2)
        third = connect(source)  # the kernel completes the handshake; the thread closes it
        assert_closed_by_peer(third)
        third.close()
        wait_until(lambda: source.connections_refused == 1)
        assert (source.connections_refused, source.connections, source.open_connections) == (
            1,
            2,
            2,
        )
        first.sendall(b"<13>one\n")
        second.sendall(b"<13>two\n")
        assert sorted(r.text for r in collect(source, 2)) == ["<13>one", "<13>two"]
        first.close()
        wait_until(lambda: source.open_connections == 1)
        with connect(source) as fourth:  # a slot is free again
            fourth.sendall(b"<13>four\n")
            assert [r.text for r in collect(source, 1)] == ["<13>four"]
        second.close()
        assert source.connections_refused == 1
    finally:
        source.close()


def test_tcp_idle_connection_is_closed_and_its_last_line_handed_on() -> None:
    source = SyslogTcpSource("127.0.0.1", 0, idle_timeout=0.3)
    try:
        with connect(source) as idle:
            idle.sendall(b"<13>done\n<13>unterminated")
            assert_closed_by_peer(idle)  # bounded by the socket's 5 s timeout
        assert [r.text for r in collect(source, 2)] == ["<13>done", "<13>unterminated"]
        assert (source.idle_timeouts, source.framing_errors, source.open_connections) == (1, 0, 0)
    finally:
        source.close()


def test_tcp_connection_that_keeps_sending_is_not_idle() -> None:
    source = SyslogTcpSource("127.0.0.1", 0, idle_timeout=0.5)
    try:
        with connect(source) as busy:
            for n in range(15):  # 0.75 s in all, never 0.5 s of silence
                busy.sendall(b"<13>m%d\n" % n)
                time.sleep(0.05)
            assert [r.text for r in collect(source, 15)] == [f"<13>m{n}" for n in range(15)]
            assert (source.idle_timeouts, source.open_connections) == (0, 1)
    finally:
        source.close()


def test_tcp_waiting_for_the_reader_is_not_idleness() -> None:
    """The thread stops reading while the queue is full: the sender is not to blame."""
    source = SyslogTcpSource("127.0.0.1", 0, max_queue=3, idle_timeout=0.3)
    try:
        with connect(source) as sender:
            sender.sendall(b"".join(b"<13>m%d\n" % n for n in range(5)))
            wait_until(lambda: source.queued == 3)
            time.sleep(0.6)  # two idle timeouts with a full queue and two messages held back
            texts = [r.text for r in source.read()]
            texts += [r.text for r in collect(source, 2)]
            # Silent since it sent, but the wait was ours: the connection is still open.
            assert (source.idle_timeouts, source.open_connections) == (0, 1)
            assert texts == [f"<13>m{n}" for n in range(5)]
            assert_closed_by_peer(sender)  # now that it is really silent, it goes
        assert source.idle_timeouts == 1
    finally:
        source.close()


def test_tcp_records_are_numbered_after_the_resumed_count() -> None:
    first = SyslogTcpSource("127.0.0.1", 0)
    try:
        with connect(first) as sender:
            sender.sendall(b"<13>a\n<13>b\n")
            assert [r.line for r in collect(first, 2)] == [1, 2]
    finally:
        first.close()
    assert first.snapshot() == 2
    restarted = SyslogTcpSource("127.0.0.1", 0, resume_state=first.snapshot())
    try:
        with connect(restarted) as sender:
            sender.sendall(b"<13>c\n")
            assert [(r.text, r.line) for r in collect(restarted, 1)] == [("<13>c", 3)]
        assert restarted.snapshot() == 3
    finally:
        restarted.close()


def test_udp_records_are_numbered_after_the_resumed_count() -> None:
    source = SyslogUdpSource("127.0.0.1", 0, resume_state=41)
    try:
        assert source.snapshot() == 41
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<13>x\n<13>y", source.address)
            assert [(r.text, r.line) for r in collect(source, 2)] == [("<13>x", 42), ("<13>y", 43)]
        assert source.snapshot() == 43
    finally:
        source.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"resume_state": -1}, ValueError, "resume_state must be at least 0"),
        ({"resume_state": "7"}, TypeError, "resume_state must be a count"),
        ({"resume_state": True}, TypeError, "resume_state must be a count"),
        ({"max_connections": 0}, ValueError, "max_connections must be at least 1"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be > 0"),
    ],
)
def test_tcp_bad_arguments_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SyslogTcpSource("127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]

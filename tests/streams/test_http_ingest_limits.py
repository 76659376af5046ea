"""HTTP ingest: bounded connections (503), slow requests (408), idle keep-alive, resume."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import orjson
import pytest

from streams.sources import HttpIngestSource
from tests.streams.test_http_ingest import DEADLINE, connect, post, texts


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        time.sleep(0.005)


def raw_connection(source: HttpIngestSource) -> socket.socket:
    return socket.create_connection(source.address, timeout=DEADLINE)


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def test_connections_beyond_max_connections_get_503_without_a_thread() -> None:
    source = HttpIngestSource("127.0.0.1", 0, max_connections=2)
    held = [raw_connection(source), raw_connection(source)]
    try:
        wait_until(lambda: source.open_connections == 2)
        threads_before = threading.active_count()
        for _ in range(5):
            status, body, reply = post(source, b'{"n": 1}\n')
            assert (status, reply.getheader("Retry-After")) == (503, "1")
            assert orjson.loads(body) == {"error": "2 connections open, retry later"}
        assert threading.active_count() <= threads_before  # no thread per refused connection
        assert (source.rejected_overloaded, source.requests, source.queued) == (5, 0, 0)
        # The held connections are served as usual.
        held[0].sendall(b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n{}\n")
        assert held[0].recv(4096).startswith(b"HTTP/1.1 200 ")
        for sock in held:
            sock.close()
        wait_until(lambda: source.open_connections == 0)
        assert post(source, b'{"n": 2}\n')[0] == 200  # room again
        assert texts(source) == ["{}", '{"n": 2}']
        assert source.rejected_overloaded == 5
    finally:
        for sock in held:
            sock.close()
        source.close()


def test_a_body_trickling_in_past_request_timeout_gets_408_and_nothing_is_queued() -> None:
    source = HttpIngestSource("127.0.0.1", 0, request_timeout=0.3)
    try:
        with raw_connection(source) as sock:
            sock.sendall(b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n{}\n")
            started = time.monotonic()
            reply = read_reply(sock)
            assert time.monotonic() - started < DEADLINE
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in head
        assert orjson.loads(body) == {"error": "request not received within 0.3 s"}
        assert (source.rejected_timeout, source.received, source.queued) == (1, 0, 0)
    finally:
        source.close()


def test_headers_sent_a_byte_at_a_time_hit_the_deadline_not_a_read_timeout() -> None:
    """Slowloris: each read is quick, the request as a whole is not."""
    source = HttpIngestSource("127.0.0.1", 0, request_timeout=0.3)
    try:
        with raw_connection(source) as sock:
            sock.sendall(b"POST /ingest HTTP/1.1\r\n")
            reply = b""
            for _ in range(100):  # 5 s at most; each byte is 50 ms after the last
                try:
                    sock.sendall(b"X")
                except OSError:
                    break  # closed after the 408
                time.sleep(0.05)
                sock.setblocking(False)
                try:
                    reply += sock.recv(4096)
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
                if reply:
                    break
            sock.settimeout(DEADLINE)
            reply += read_reply(sock)
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:40]
        assert source.rejected_timeout == 1
    finally:
        source.close()


def test_each_keep_alive_request_gets_its_own_deadline() -> None:
    source = HttpIngestSource("127.0.0.1", 0, request_timeout=0.3)
    try:
        connection = connect(source)
        try:
            for n in range(3):  # keep-alive: each request gets its own deadline
                time.sleep(0.2)
                connection.request("POST", "/ingest", body=b'{"n": %d}\n' % n)
                assert connection.getresponse().read() == b'{"accepted":1}'
        finally:
            connection.close()
        assert source.rejected_timeout == 0
        assert len(texts(source)) == 3
    finally:
        source.close()


def test_an_idle_keep_alive_connection_is_closed_and_counted() -> None:
    source = HttpIngestSource("127.0.0.1", 0, idle_timeout=0.3)
    try:
        with raw_connection(source) as sock:
            sock.sendall(b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n{}\n")
            reply = read_reply(sock)  # 200, then the close after 0.3 s of silence
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b'{"accepted":1}')
        wait_until(lambda: source.open_connections == 0)
        assert (source.idle_timeouts, source.rejected_timeout) == (1, 0)
    finally:
        source.close()


def test_close_does_not_wait_for_idle_keep_alive_connections() -> None:
    source = HttpIngestSource("127.0.0.1", 0)  # 30 s idle timeout
    connection = connect(source)
    try:
        connection.request("POST", "/ingest", body=b"{}\n")
        assert connection.getresponse().read() == b'{"accepted":1}'
        started = time.monotonic()
        source.close()
        assert time.monotonic() - started < 2.0
        assert connection.sock is not None
        assert connection.sock.recv(16) == b""  # the server side is gone
    finally:
        connection.close()
        source.close()


def test_lines_are_numbered_after_the_resumed_count() -> None:
    source = HttpIngestSource("127.0.0.1", 0, resume_state=5)
    try:
        assert post(source, b"a\nb\n")[0] == 200
        assert [(r.text, r.line) for r in source.read()] == [("a", 6), ("b", 7)]
        assert source.snapshot() == 7
    finally:
        source.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_connections": 0}, "max_connections must be at least 1"),
        ({"request_timeout": 0}, "request_timeout must be > 0"),
        ({"idle_timeout": -1.0}, "idle_timeout must be > 0"),
        ({"resume_state": -3}, "resume_state must be at least 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpIngestSource("127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]

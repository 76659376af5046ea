"""HTTP ingest: NDJSON, gzip and JSON-array bodies; every refusal; all-or-nothing queueing."""

from __future__ import annotations

import gzip
import http.client
import socket
import time
from collections.abc import Iterable, Iterator

import orjson
import pytest

from streams.sources import HttpIngestSource, RawRecord

DEADLINE = 5.0


@pytest.fixture
def source() -> Iterator[HttpIngestSource]:
    ingest = HttpIngestSource("127.0.0.1", 0, max_body=1000)
    yield ingest
    ingest.close()


def connect(source: HttpIngestSource) -> http.client.HTTPConnection:
    host, port = source.address
    return http.client.HTTPConnection(host, port, timeout=DEADLINE)


def post(
    source: HttpIngestSource,
    body: bytes | Iterable[bytes],
    headers: dict[str, str] | None = None,
    path: str = "/ingest",
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """Status, body and response of one POST; an iterable body is sent chunked."""
    connection = connect(source)
    try:
        chunked = not isinstance(body, bytes)
        connection.request("POST", path, body=body, headers=headers or {}, encode_chunked=chunked)
        reply = connection.getresponse()
        return reply.status, reply.read(), reply
    finally:
        connection.close()


def request(source: HttpIngestSource, method: str, path: str) -> tuple[int, bytes]:
    connection = connect(source)
    try:
        connection.request(method, path)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def texts(source: HttpIngestSource) -> list[str]:
    # 200 is sent after the lines are queued, so they are there already: no wait needed.
    return [r.text for r in source.read()]


def test_ndjson_post_is_queued_line_by_line(source: HttpIngestSource) -> None:
    body = b'{"user": "ann", "action": "logon"}\r\n\n{"user": "bob"}\n  \n{"x": "caf\xc3\xa9\xff"}'
    status, reply, _ = post(source, body, {"Content-Type": "application/x-ndjson"})
    assert (status, orjson.loads(reply)) == (200, {"accepted": 3})
    records = list(source.read())
    host, port = source.address
    assert records == [
        RawRecord('{"user": "ann", "action": "logon"}', f"http://{host}:{port}/ingest", 1, 0),
        RawRecord('{"user": "bob"}', f"http://{host}:{port}/ingest", 2, 0),
        RawRecord('{"x": "caf\u00e9\ufffd"}', f"http://{host}:{port}/ingest", 3, 0),
    ]
    assert (source.requests, source.received, source.snapshot(), source.lag_bytes) == (1, 3, 3, 0)


def test_gzip_body_is_decompressed(source: HttpIngestSource) -> None:
    body = gzip.compress(b'{"n": 1}\n{"n": 2}\n')
    status, reply, _ = post(source, body, {"Content-Encoding": "gzip"})
    assert (status, reply) == (200, b'{"accepted":2}')
    assert texts(source) == ['{"n": 1}', '{"n": 2}']


def test_gzip_bomb_and_broken_gzip_are_refused(source: HttpIngestSource) -> None:
    bomb = gzip.compress(b"\n" * 5000)  # 5000 bytes out of a few dozen in; max_body is 1000
    status, reply, _ = post(source, bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and b"larger than 1000" in reply
    status, reply, _ = post(source, b"not gzip", {"Content-Encoding": "gzip"})
    assert status == 400 and b"not valid compressed data" in reply
    status, _, _ = post(source, b"{}", {"Content-Encoding": "br"})
    assert status == 415
    assert (source.rejected_too_large, source.received, texts(source)) == (1, 0, [])


def test_json_array_body_is_reemitted_one_record_per_line(source: HttpIngestSource) -> None:
    body = b' [{"date": 1.5, "log": "a"}, {"log": "b", "k": [1, null]}, "plain"]'
    status, reply, _ = post(source, body)
    assert (status, reply) == (200, b'{"accepted":3}')
    assert texts(source) == ['{"date":1.5,"log":"a"}', '{"log":"b","k":[1,null]}', '"plain"']


def test_invalid_json_array_is_refused_with_the_reason(source: HttpIngestSource) -> None:
    status, reply, _ = post(source, b'[{"log": "a"}, {"log": ')
    assert status == 400
    assert orjson.loads(reply)["error"].startswith("body is not a valid JSON array: ")
    assert texts(source) == []


def test_too_large_by_content_length_is_refused_without_reading_the_body(
    source: HttpIngestSource,
) -> None:
    connection = connect(source)
    try:
        connection.putrequest("POST", "/ingest")
        connection.putheader("Content-Length", "1001")
        connection.endheaders()  # the body is never sent: the server must not wait for it
        reply = connection.getresponse()
        assert (reply.status, reply.getheader("Connection")) == (413, "close")
        assert b"1001 bytes is larger than 1000" in reply.read()
    finally:
        connection.close()
    assert (source.rejected_too_large, source.requests) == (1, 1)


def test_expect_100_continue_gets_the_413_instead_of_the_100(source: HttpIngestSource) -> None:
    with socket.create_connection(source.address, timeout=DEADLINE) as sock:
        sock.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 413 ")
    with socket.create_connection(source.address, timeout=DEADLINE) as sock:
        sock.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"{}\n")
        reply = b""
        while not reply.endswith(b'{"accepted":1}') and (chunk := sock.recv(1024)):
            reply += chunk  # headers and body may come in two segments
        assert reply.startswith(b"HTTP/1.1 200 ")


def test_chunked_body_is_read_up_to_max_body(source: HttpIngestSource) -> None:
    status, reply, _ = post(source, [b'{"c": 1}\n', b'{"c": ', b"2}\n"])
    assert (status, reply) == (200, b'{"accepted":2}')
    status, reply, _ = post(source, [b"x" * 600, b"y" * 600, b"z" * 600])
    assert status == 413 and b"chunked body is larger than 1000" in reply
    assert texts(source) == ['{"c": 1}', '{"c": 2}']


def test_missing_length_is_411(source: HttpIngestSource) -> None:
    connection = connect(source)
    try:
        connection.putrequest("POST", "/ingest")
        connection.endheaders()
        reply = connection.getresponse()
        assert (reply.status, orjson.loads(reply.read())["error"]) == (
            411,
            "Content-Length or chunked transfer encoding required",
        )
    finally:
        connection.close()


def test_other_paths_and_methods(source: HttpIngestSource) -> None:
    assert request(source, "GET", "/healthz") == (200, b"ok")
    assert request(source, "GET", "/ingest")[0] == 405
    assert request(source, "PUT", "/ingest")[0] == 405
    assert request(source, "DELETE", "/healthz")[0] == 405
    assert post(source, b"{}\n", path="/elsewhere")[0] == 404
    assert request(source, "GET", "/elsewhere")[0] == 404
    assert post(source, b"{}\n", path="/ingest?source=vector")[0] == 200  # query ignored
    assert (source.requests, texts(source)) == (1, ["{}"])


def test_full_queue_is_503_and_queues_nothing_of_that_body() -> None:
    ingest = HttpIngestSource("127.0.0.1", 0, max_queue=3)
    try:
        assert post(ingest, b"a\nb\n")[0] == 200
        status, _, reply = post(ingest, b"c\nd\n")  # 2 more do not fit in 3
        assert (status, reply.getheader("Retry-After")) == (503, "1")
        assert (ingest.rejected_busy, ingest.received, ingest.queued) == (1, 2, 2)
        assert post(ingest, b"e\n")[0] == 200  # one still fits
        assert texts(ingest) == ["a", "b", "e"]
        assert post(ingest, b"c\nd\n")[0] == 200  # the sender's retry, now there is room
        assert texts(ingest) == ["c", "d"]
        status, reply_body, _ = post(ingest, b"1\n2\n3\n4\n")  # can never fit: no endless retry
        assert status == 413 and b"4 lines in one body; the queue holds 3" in reply_body
    finally:
        ingest.close()


def test_keep_alive_connection_serves_several_posts(source: HttpIngestSource) -> None:
    connection = connect(source)
    try:
        for n in range(3):
            connection.request("POST", "/ingest", body=b'{"n": %d}\n' % n)
            reply = connection.getresponse()
            assert (reply.status, reply.read()) == (200, b'{"accepted":1}')
    finally:
        connection.close()
    assert texts(source) == ['{"n": 0}', '{"n": 1}', '{"n": 2}']


def test_close_stops_the_server_and_is_idempotent() -> None:
    ingest = HttpIngestSource("127.0.0.1", 0)
    assert request(ingest, "GET", "/healthz") == (200, b"ok")
    started = time.monotonic()
    ingest.close()
    ingest.close()
    assert time.monotonic() - started < DEADLINE
    assert not ingest._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        request(ingest, "GET", "/healthz")

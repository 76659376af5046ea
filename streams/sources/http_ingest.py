"""HTTP ingest: log collectors POST newline-delimited JSON, the daemon reads it line by line.

What Vector's ``http`` sink (``encoding.codec = "json"``, ``framing.method =
"newline_delimited"``, optionally gzip-compressed) and Fluent Bit's ``http`` output
(``format json_lines``, or ``format json``: one JSON array) send. A stdlib
``ThreadingHTTPServer`` runs in a background thread and queues the lines; the daemon's loop
thread takes them with :meth:`~streams.sources.syslog.QueuedSource.read`.

Delivery is at least once: a body is queued whole or not at all, and 200 is sent only once it
is queued; on any other status the sender keeps the batch and retries. Like every network
source it is not resumable by position: ``snapshot()`` is the count of lines handed on (a
source built with it as ``resume_state`` numbers its records after it), and after a restart
the senders' retries resend what was not acknowledged.

Resources are bounded: one thread per connection, at most ``max_connections`` of them (a
connection beyond is answered 503 by the server thread itself, without a thread); a request
whose line, headers and body take longer than ``request_timeout`` seconds is answered 408
and closed (slowloris), and a keep-alive connection idle for ``idle_timeout`` is closed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import socket
import socketserver
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from streams.sources.queued import QueuedSource, format_hostport

logger = logging.getLogger(__name__)

#: After refusing a body without reading it, how much of it is read and thrown away (and
#: for how long) before closing, so the refusal reaches the sender instead of a reset.
_LINGER_BYTES = 1 << 20
_LINGER_SECONDS = 1.0
_JOIN_TIMEOUT = 5.0
#: Most refused connections the server thread drains at once; more are closed at once.
_MAX_LINGERING = 1024
#: Seconds between the server thread's looks at request deadlines and refused connections.
_HOUSEKEEPING_EVERY = 0.05
#: Slack on the per-read socket timeout during a request: the deadline check fires first.
_READ_TIMEOUT_SLACK = 1.0
#: Seconds between two warnings about refused connections or failing accepts.
_WARN_EVERY = 60.0
#: accept() errors that mean "out of descriptors or memory": pause instead of spinning.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_HEALTH_PATH = "/healthz"
_ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


class _RefusalError(Exception):
    """A request answered with an error status (and a one-line reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Decompress ``data`` (every gzip member), refusing more than ``limit`` bytes out."""
    out = bytearray()
    while data:
        decompressor = zlib.decompressobj(wbits)
        try:
            out += decompressor.decompress(data, limit - len(out) + 1)
        except zlib.error as error:
            raise _RefusalError(400, f"body is not valid compressed data: {error}") from None
        if len(out) > limit:
            raise _RefusalError(413, f"decompressed body is larger than {limit} bytes")
        if not decompressor.eof:
            raise _RefusalError(400, "compressed body is truncated")
        data = decompressor.unused_data
    return bytes(out)


def split_body(body: bytes) -> list[bytes]:
    """The records of a request body, one JSON document per item.

    A body whose first non-blank byte is ``[`` is one JSON array (Fluent Bit's
    ``format json``): each element is re-encoded on one line. Anything else is newline
    delimited: one record per non-blank line (a trailing CR is removed), not validated here
    (a bad line is the parser's to dead-letter).

    Examples
    --------
    >>> split_body(b'{"a": 1}\\r\\n\\n{"a": 2}\\n')
    [b'{"a": 1}', b'{"a": 2}']
    >>> split_body(b' [{"a": 1}, {"b": [2]}]')
    [b'{"a":1}', b'{"b":[2]}']
    """
    if body.lstrip()[:1] == b"[":
        try:
            records = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise _RefusalError(400, f"body is not a valid JSON array: {error}") from None
        return [orjson.dumps(record) for record in records]
    lines = []
    for line in body.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            lines.append(line)
    return lines


class _IngestServer(ThreadingHTTPServer):
    """One thread per connection, at most ``source.max_connections`` of them.

    The serving thread also keeps house (:meth:`service_actions`): it times out requests past
    their deadline and drains the connections it refused before closing them.
    """

    daemon_threads = True
    # close() shuts the open connections down itself rather than waiting on their threads.
    block_on_close = False
    source: HttpIngestSource

    def __init__(self, address: tuple[str, int], source: HttpIngestSource) -> None:
        self.source = source
        self._busy_reply = _busy_reply(source.max_connections)
        # Guards the bookkeeping below, shared by the serving thread and the handler threads.
        self._books = threading.Lock()
        self._open: set[socket.socket] = set()
        self._deadlines: dict[_IngestHandler, float] = {}
        self._lingering: dict[socket.socket, tuple[float, int]] = {}
        self._housekept_at = 0.0
        self._warned_at = -_WARN_EVERY
        super().__init__(address, _IngestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also resolves the host's FQDN: a DNS lookup we never use.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A peer resetting the connection is routine; never print tracebacks to stderr.
        logger.debug("http ingest: error with %s", client_address, exc_info=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in _EXHAUSTED:
                # The connection stays in the kernel's backlog and the listener readable:
                # pause, or the serving loop would spin.
                self._warn("http ingest %s: accept failed: %s", self.server_address, error)
                time.sleep(0.1)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._books:
            admitted = len(self._open) < self.source.max_connections
            if admitted:
                self._open.add(request)
        if not admitted:
            self._refuse_busy(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            # No thread (e.g. none can be started): the caller closes the socket.
            with self._books:
                self._open.discard(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._books:
                self._open.discard(request)

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning(message, *args)

    def _refuse_busy(self, request: socket.socket, client_address: Any) -> None:
        """503 a connection beyond ``max_connections`` from this thread, without reading it.

        The reply goes out at once (a few hundred bytes fit in the socket's send buffer);
        what the sender sends meanwhile is drained for a moment before closing, so that it
        reads the 503 rather than a reset.
        """
        source = self.source
        with source._lock:
            source.rejected_overloaded += 1
        self._warn(
            "http ingest %s: %d connections open (max_connections); 503 to %s (%d refused so far)",
            source.origin,
            source.max_connections,
            client_address[0],
            source.rejected_overloaded,
        )
        try:
            request.setblocking(False)
            request.send(self._busy_reply)
            request.shutdown(socket.SHUT_WR)
        except OSError:
            request.close()
            return
        if len(self._lingering) >= _MAX_LINGERING:
            request.close()
            return
        self._lingering[request] = (time.monotonic() + _LINGER_SECONDS, 0)

    def service_actions(self) -> None:
        # Called by serve_forever after every accept and every poll interval.
        now = time.monotonic()
        if now - self._housekept_at < _HOUSEKEEPING_EVERY:
            return
        self._housekept_at = now
        self._expire_requests(now)
        self._drain_lingering(now)

    def _expire_requests(self, now: float) -> None:
        """Stop reading the requests past their deadline: their handlers answer 408."""
        with self._books:
            expired = [handler for handler, due in self._deadlines.items() if due <= now]
            for handler in expired:
                del self._deadlines[handler]
                handler.timed_out = True
        for handler in expired:
            with self.source._lock:
                self.source.rejected_timeout += 1
            logger.info(
                "http ingest: request from %s not received within %g s; answering 408",
                handler.client_address[0],
                self.source.request_timeout,
            )
            # The blocked read returns end-of-stream; writing the 408 still works.
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RD)

    def _drain_lingering(self, now: float) -> None:
        for sock, (due, drained) in list(self._lingering.items()):
            done = now >= due or drained >= _LINGER_BYTES
            while not done:
                try:
                    chunk = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    chunk = b""
                drained += len(chunk)
                done = not chunk or drained >= _LINGER_BYTES
            if done:
                del self._lingering[sock]
                sock.close()
            else:
                self._lingering[sock] = (due, drained)

    def arm(self, handler: _IngestHandler, seconds: float) -> None:
        """Give the handler's request ``seconds`` to arrive whole."""
        with self._books:
            self._deadlines[handler] = time.monotonic() + seconds

    def disarm(self, handler: _IngestHandler) -> None:
        with self._books:
            self._deadlines.pop(handler, None)

    def close_connections(self) -> None:
        """Wake every handler thread (their reads end) and close the refused connections."""
        with self._books:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for sock in self._lingering:
            sock.close()
        self._lingering.clear()

    @property
    def open_connections(self) -> int:
        return len(self._open)


def _busy_reply(max_connections: int) -> bytes:
    body = orjson.dumps({"error": f"{max_connections} connections open, retry later"})
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _IngestServer6(_IngestServer):
    address_family = socket.AF_INET6


class _IngestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Status line + headers and the body go out in two writes: without TCP_NODELAY the
    # second waits for the client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True
    server: _IngestServer
    #: Set by the serving thread when the request missed its deadline.
    timed_out = False

    def handle_one_request(self) -> None:
        source = self.server.source
        # Between requests the connection is idle; a request has request_timeout from its
        # first byte to the end of its body, however slowly it trickles in.
        self.connection.settimeout(source.idle_timeout)
        try:
            waiting = cast(io.BufferedReader, self.rfile).peek(1)
        except TimeoutError:
            with source._lock:
                source.idle_timeouts += 1
            self.close_connection = True
            return
        except OSError:
            self.close_connection = True
            return
        if not waiting:
            self.close_connection = True
            return
        self.connection.settimeout(source.request_timeout + _READ_TIMEOUT_SLACK)
        self.server.arm(self, source.request_timeout)
        try:
            super().handle_one_request()
        finally:
            self.server.disarm(self)
        if self.timed_out:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A request cut short by its deadline fails to parse: say why, not "bad request".
        if self.timed_out:
            code, message, explain = 408, None, self._timeout_reason()
        super().send_error(code, message, explain)

    def _timeout_reason(self) -> str:
        return f"request not received within {self.server.source.request_timeout:g} s"

    def __getattr__(self, name: str) -> Any:
        # Every other HTTP method lands here (the base class answers 501 otherwise).
        if name.startswith("do_"):
            return self._other_method
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http ingest %s: " + format, self.client_address[0], *args)

    def handle_expect_100(self) -> bool:
        # A sender asking before it sends a body too large gets the 413 instead of the 100.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.source.max_body:
            return True
        return super().handle_expect_100()

    def _route(self) -> str:
        return urlsplit(self.path).path

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length")
        return "Transfer-Encoding" in self.headers or (length is not None and length != "0")

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        *,
        body_read: bool = True,
    ) -> None:
        if self.timed_out and status >= 400:
            status, body = 408, orjson.dumps({"error": self._timeout_reason()})
            content_type, headers, body_read = "application/json", None, True
            self.close_connection = True
        # An unread body would be taken for the next request: close that connection instead.
        unread = not body_read and self._has_body()
        if unread:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if unread:
            self._linger()

    def _refuse(self, refusal: _RefusalError, *, body_read: bool) -> None:
        headers = {"Retry-After": "1"} if refusal.status == 503 else None
        body = orjson.dumps({"error": refusal.reason})
        self._reply(refusal.status, body, headers=headers, body_read=body_read)

    def _linger(self) -> None:
        """Read a bounded part of an unread body, so closing does not reset the connection.

        A close with unread bytes in the receive buffer sends a TCP reset, which can reach the
        sender before it has read our status, and it would then retry instead of giving up.
        """
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(_LINGER_SECONDS)
            drained = 0
            while drained < _LINGER_BYTES and (chunk := self.connection.recv(65536)):
                drained += len(chunk)
        except OSError:
            pass

    def do_GET(self) -> None:
        route = self._route()
        if route == _HEALTH_PATH:
            self._reply(200, b"ok", "text/plain; charset=utf-8", body_read=False)
        elif route == self.server.source.path:
            self._reply(405, b'{"error": "use POST"}', headers={"Allow": "POST"}, body_read=False)
        else:
            self._reply(404, b'{"error": "not found"}', body_read=False)

    def _other_method(self) -> None:
        route = self._route()
        if route == _HEALTH_PATH:
            self._reply(405, b'{"error": "use GET"}', headers={"Allow": "GET"}, body_read=False)
        elif route == self.server.source.path:
            self._reply(405, b'{"error": "use POST"}', headers={"Allow": "POST"}, body_read=False)
        else:
            self._reply(404, b'{"error": "not found"}', body_read=False)

    def do_POST(self) -> None:
        source = self.server.source
        if self._route() != source.path:
            self._other_method()
            return
        with source._lock:
            source.requests += 1
        try:
            body = self._read_body(source.max_body)
        except _RefusalError as refusal:
            if refusal.status == 413:
                with source._lock:
                    source.rejected_too_large += 1
            self._refuse(refusal, body_read=False)
            return
        finally:
            self.server.disarm(self)
        try:
            accepted = source._accept(self._decode(body, source.max_body))
        except _RefusalError as refusal:
            if refusal.status == 413:
                with source._lock:
                    source.rejected_too_large += 1
            self._refuse(refusal, body_read=True)
            return
        self._reply(200, orjson.dumps({"accepted": accepted}))

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower().strip() == "chunked":
            return self._read_chunked(limit)
        if "Transfer-Encoding" in self.headers:
            raise _RefusalError(501, "only the chunked transfer encoding is supported")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _RefusalError(411, "Content-Length or chunked transfer encoding required")
        try:
            length = int(length_header)
        except ValueError:
            raise _RefusalError(400, f"bad Content-Length {length_header!r}") from None
        if length < 0:
            raise _RefusalError(400, f"bad Content-Length {length_header!r}")
        if length > limit:
            raise _RefusalError(413, f"body of {length} bytes is larger than {limit}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise _RefusalError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _RefusalError(400, f"bad chunk size line {size_line[:40]!r}") from None
            if size == 0:
                break
            if len(body) + size > limit:
                raise _RefusalError(413, f"chunked body is larger than {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self.close_connection = True
                raise _RefusalError(400, "chunked body is truncated or malformed")
            body += chunk
        # Trailer fields, up to the blank line that ends the message.
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        return bytes(body)

    def _decode(self, body: bytes, limit: int) -> list[bytes]:
        encoding = self.headers.get("Content-Encoding", "identity").lower().strip()
        if encoding in _ENCODINGS:
            body = _inflate(body, _ENCODINGS[encoding], limit)
        elif encoding not in ("identity", ""):
            raise _RefusalError(415, f"unsupported Content-Encoding {encoding!r} (use gzip)")
        return split_body(body)


class HttpIngestSource(QueuedSource):
    """Lines POSTed by log collectors (Vector, Fluent Bit) as newline-delimited JSON.

    ``POST <path>`` with NDJSON (or one JSON array), optionally ``Content-Encoding: gzip``
    (or ``deflate``), is answered 200 ``{"accepted": n}`` once all ``n`` lines are queued.
    Refusals (a JSON ``{"error": reason}`` body): 413 for a body above ``max_body`` (by its
    Content-Length without reading it, or once a chunked or decompressed body passes it, or
    a body with more lines than the whole queue holds), 411 without Content-Length or
    chunked encoding, 400 for a malformed body, 415 for another content encoding, 503 with
    ``Retry-After: 1`` when the queue cannot take the whole body (nothing of it is queued),
    404 for other paths, 405 for other methods. ``GET /healthz`` answers 200 ``ok``.

    Each connection has a thread, at most ``max_connections`` at once: a connection beyond
    is answered 503 with ``Retry-After: 1`` and closed without a thread (counted in
    ``rejected_overloaded``). A request has ``request_timeout`` seconds from its first byte
    to the end of its body: a slower one (slowloris) is answered 408 and closed (counted in
    ``rejected_timeout``); nothing of it is queued. A keep-alive connection that starts no
    request for ``idle_timeout`` seconds is closed (counted in ``idle_timeouts``).

    Each line becomes a record with origin ``"http://host:port<path>"``. Not resumable by
    position: ``snapshot()`` is the count of lines handed on (``RawRecord.line`` is the
    record sequence of this source, continued across restarts through ``resume_state``);
    the senders retry whatever was not answered 200.

    Parameters
    ----------
    host, port
        Where to listen; port 0 picks a free port (see :attr:`address`). Bound at once.
    path
        The ingest path.
    max_body
        Largest body accepted, in bytes (after decompression too).
    max_queue
        Most lines queued between the server threads and :meth:`read`.
    max_connections
        Most connections served at once (one thread each).
    request_timeout
        Seconds a request may take to arrive, from its first byte to the end of its body.
    idle_timeout
        Seconds a connection may wait between requests before it is closed.
    resume_state
        A previous run's :meth:`snapshot`: records are numbered after it.

    Attributes
    ----------
    requests, rejected_too_large, rejected_busy, received
        Ingest requests, bodies refused as too large, bodies refused as the queue was full,
        lines queued (ints).
    rejected_overloaded, rejected_timeout, idle_timeouts
        Connections answered 503 as ``max_connections`` were open, requests answered 408 as
        too slow, keep-alive connections closed as idle (ints).

    Examples
    --------
    >>> import urllib.request
    >>> source = HttpIngestSource("127.0.0.1", 0)
    >>> url = "http://%s:%d/ingest" % source.address
    >>> body = b'{"msg": "one"}\\n{"msg": "two"}\\n'
    >>> with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as reply:
    ...     reply.status, reply.read()
    (200, b'{"accepted":2}')
    >>> [(r.text, r.line) for r in source.read()]
    [('{"msg": "one"}', 1), ('{"msg": "two"}', 2)]
    >>> source.close()
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        path: str = "/ingest",
        max_body: int = 10 * 1024 * 1024,
        max_queue: int = 100_000,
        max_connections: int = 64,
        request_timeout: float = 30.0,
        idle_timeout: float = 30.0,
        resume_state: int | None = None,
    ) -> None:
        super().__init__(max_queue, resume_state=resume_state)
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        if max_body < 1:
            raise ValueError(f"max_body must be at least 1, not {max_body}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        for name, seconds in (("request_timeout", request_timeout), ("idle_timeout", idle_timeout)):
            if not seconds > 0:
                raise ValueError(f"{name} must be > 0 seconds, not {seconds}")
        self.path = path
        self.max_body = max_body
        self.max_connections = max_connections
        self.request_timeout = float(request_timeout)
        self.idle_timeout = float(idle_timeout)
        self.requests = 0
        self.rejected_too_large = 0
        self.rejected_busy = 0
        self.rejected_overloaded = 0
        self.rejected_timeout = 0
        self.idle_timeouts = 0
        server_class = _IngestServer6 if ":" in host else _IngestServer
        self._server = server_class((host, port), self)
        bound_host, bound_port = self._server.server_address[:2]
        self._address = (str(bound_host), int(bound_port))
        self.origin = f"http://{format_hostport(*self._address)}{path}"
        self._closed = False
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"http-ingest {format_hostport(*self._address)}",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self._address

    @property
    def alive(self) -> bool:
        """Whether the server thread runs (False once it has died, or after :meth:`close`)."""
        return self._thread.is_alive()

    @property
    def open_connections(self) -> int:
        """Connections being served now (each has a thread)."""
        return self._server.open_connections

    def _accept(self, lines: list[bytes]) -> int:
        """Queue every line of one body, or none of them (raises a 503 or 413 refusal)."""
        texts = [line.decode("utf-8", errors="replace") for line in lines]
        sizes = [len(line) for line in lines]
        with self._lock:
            if len(texts) > self.max_queue:
                raise _RefusalError(
                    413, f"{len(texts)} lines in one body; the queue holds {self.max_queue}"
                )
            if len(texts) > self._room():
                self.rejected_busy += 1
                raise _RefusalError(503, "queue full, retry later")
            self._bytes_in += sum(sizes)
            self._queue.extend(zip(texts, [self.origin] * len(texts), sizes, strict=True))
            self.received += len(texts)
        return len(texts)

    def close(self) -> None:
        """Stop the server and close its socket; lines already queued stay readable."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_JOIN_TIMEOUT)
        self._server.close_connections()

    def __enter__(self) -> HttpIngestSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Syslog over the network: UDP datagrams and TCP streams (RFC 6587 framing), queued for the daemon.

A background thread listens from construction on; the daemon's loop thread takes what has
arrived with :meth:`~QueuedSource.read`, exactly like a file tail. These sources only frame:
each message is handed on whole, ``<PRI>`` header included, for the syslog parsers to read.

Network sources are not resumable by position: nothing can be re-read from a socket after a
restart. ``snapshot()`` is the count of messages handed on, and a source built with it as
``resume_state`` numbers its records after it (``RawRecord.line`` is the record sequence of
the source, across restarts); recovery is the sender's retry (TCP senders such as rsyslog
and syslog-ng resend what was not acknowledged by the transport; UDP loses what arrives while
nobody listens).

The TCP source bounds what senders can hold: at most ``max_connections`` connections at once
(more are accepted and closed at once, counted in ``connections_refused``), and a connection
silent for ``idle_timeout`` seconds is closed (counted in ``idle_timeouts``).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from typing import Self

from streams.sources.queued import QueuedSource, format_hostport

logger = logging.getLogger(__name__)

_DATAGRAM_MAX = 65535
_RECV_CHUNK = 1 << 16
#: Kernel receive buffer asked for on the UDP socket (capped by net.core.rmem_max): bursts
#: wait there instead of being dropped by the kernel while the thread is busy.
_UDP_RCVBUF = 4 << 20
#: How long the TCP thread sleeps while the queue is full before looking again.
_FULL_WAIT = 0.005
#: An octet count longer than this many digits (>= 1 GB) is a broken frame, not a message.
_MAX_COUNT_DIGITS = 9
_JOIN_TIMEOUT = 5.0
#: Most seconds between two looks for idle TCP connections (less for a short idle timeout).
_IDLE_CHECK_EVERY = 1.0
#: Seconds between two warnings about refused connections (each one is counted).
_REFUSAL_LOG_EVERY = 60.0
_DIGITS = frozenset(b"0123456789")
_SPACE = 0x20
_LF = 0x0A
_CR = 0x0D
_ZERO = 0x30
#: Bytes skipped between frames: the empty messages of a sender that doubles terminators.
_BLANK = frozenset(b"\n\r\0")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _text(raw: bytes | bytearray, start: int, end: int) -> str:
    """``raw[start:end]`` as text, without one trailing LF and CR, invalid UTF-8 replaced."""
    if end > start and raw[end - 1] == _LF:
        end -= 1
    if end > start and raw[end - 1] == _CR:
        end -= 1
    return raw[start:end].decode("utf-8", errors="replace")


class _Listener(QueuedSource):
    """A selector loop in a background thread, woken up by a socket pair to stop."""

    def __init__(self, max_queue: int, name: str, resume_state: int | None) -> None:
        super().__init__(max_queue, resume_state=resume_state)
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._stopping = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run_guarded, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the listener thread runs (False once it has failed, or after
        :meth:`close`): a dead listener receives nothing more."""
        return self._thread.is_alive()

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception:
            logger.exception("%s: listener thread failed; no more messages", self._thread.name)

    def _run(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close what only the subclass knows about (after the thread has stopped)."""

    def close(self) -> None:
        """Stop the thread and close every socket; messages already queued stay readable."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        if self._thread.is_alive():
            self._thread.join(_JOIN_TIMEOUT)
        self._release()
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyslogUdpSource(_Listener):
    """Syslog messages from UDP datagrams (RFC 5426): one datagram, one message.

    One trailing newline is removed; a datagram holding several newline-separated lines (some
    relays batch them) gives one message per non-empty line. Nothing pushes back on a UDP
    sender: when the queue is full, new messages are dropped and counted in ``dropped``.

    Not resumable by position: ``snapshot()`` is the count of messages handed on, and what
    arrives while the daemon is down is lost (use TCP or HTTP where that matters).

    Parameters
    ----------
    host, port
        Where to listen; port 0 picks a free port (see :attr:`address`). Bound at once.
    max_queue
        Most messages queued between the network thread and :meth:`read`.
    resume_state
        A previous run's :meth:`snapshot`: records are numbered after it
        (``RawRecord.line`` is the record sequence of this source, across restarts).

    Attributes
    ----------
    origin
        ``"syslog-udp://host:port"`` of the listening socket, the origin of every record.

    Examples
    --------
    >>> import socket, time
    >>> source = SyslogUdpSource("127.0.0.1", 0)
    >>> sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    >>> _ = sender.sendto(b"<13>Oct 11 22:14:15 web1 sshd[42]: hello\\n", source.address)
    >>> records, deadline = [], time.monotonic() + 5
    >>> while not records and time.monotonic() < deadline:
    ...     records += source.read()
    ...     time.sleep(0.01)
    >>> [(r.text, r.line) for r in records]
    [('<13>Oct 11 22:14:15 web1 sshd[42]: hello', 1)]
    >>> sender.close(); source.close()
    """

    def __init__(
        self, host: str, port: int, *, max_queue: int = 100_000, resume_state: int | None = None
    ) -> None:
        super().__init__(max_queue, f"syslog-udp {format_hostport(host, port)}", resume_state)
        self._socket = socket.socket(_family(host), socket.SOCK_DGRAM)
        try:
            # A smaller buffer than asked for only means earlier kernel drops under bursts.
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
            self._socket.bind((host, port))
            self._socket.setblocking(False)
        except OSError:
            self._socket.close()
            super().close()
            raise
        bound_host, bound_port = self._socket.getsockname()[:2]
        self._address = (str(bound_host), int(bound_port))
        self.origin = f"syslog-udp://{format_hostport(*self._address)}"
        self._selector.register(self._socket, selectors.EVENT_READ, self._socket)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self._address

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select():
                if key.data is None:
                    return  # woken up by close()
                self._receive_all()

    def _receive_all(self) -> None:
        while True:
            try:
                datagram = self._socket.recv(_DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # e.g. ECONNREFUSED reported for an earlier send: not fatal for a listener.
                logger.debug("%s: %s", self.origin, error)
                return
            self._datagram(datagram)

    def _datagram(self, datagram: bytes) -> None:
        if b"\n" not in datagram:
            if datagram.rstrip(b"\r"):
                self._offer(_text(datagram, 0, len(datagram)), self.origin, len(datagram))
            return
        for line in datagram.split(b"\n"):  # also drops the empty rest after a last newline
            if line.rstrip(b"\r"):
                self._offer(_text(line, 0, len(line)), self.origin, len(line))

    def _release(self) -> None:
        self._socket.close()


class _Framer:
    """RFC 6587 framing of one TCP stream, detected per frame.

    A frame starting with a digit run followed by a space is octet-counted (``<len> <msg>``);
    anything else is non-transparent, terminated by LF (or NUL, which some senders use).
    Bytes arrive in :attr:`buffer`; :meth:`take` hands on the complete messages as queue
    items ``(text, origin, size)``.
    """

    def __init__(self, origin: str, max_message: int) -> None:
        self.origin = origin
        self.max_message = max_message
        self.buffer = bytearray()
        self.skip = 0  # octets still to discard of an over-long counted message
        self.discarding = False  # inside an over-long LF-framed message: drop to its end
        self.cut = 0  # messages cut at max_message since the owner last collected them
        self.error: str | None = None  # why the stream cannot be framed any more

    def take(self, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` complete messages, oldest first.

        Fewer than ``limit`` means nothing complete is left: more bytes are needed, or the
        stream is broken (:attr:`error` says why: an octet count with a leading zero or more
        than 9 digits; the messages before it are still returned).
        """
        buf = self.buffer
        find = buf.find
        size = len(buf)
        max_message = self.max_message
        origin = self.origin
        found: list[tuple[str, str, int]] = []
        pos = 0
        # One pass with an index and a single deletion at the end: a busy connection brings
        # hundreds of messages per read, and this loop is the TCP source's hot path.
        while len(found) < limit:
            if self.skip:
                skipped = min(self.skip, size - pos)
                pos += skipped
                self.skip -= skipped
                if self.skip:
                    break
            if self.discarding:
                end = find(b"\n", pos)
                nul = find(b"\0", pos, size if end < 0 else end)
                end = nul if nul >= 0 else end
                if end < 0:
                    pos = size
                    break
                pos = end + 1
                self.discarding = False
            while pos < size and buf[pos] in _BLANK:
                pos += 1
            if pos == size:
                break
            if buf[pos] in _DIGITS:
                digits_end = pos + 1
                while digits_end < size and buf[digits_end] in _DIGITS:
                    digits_end += 1
                if digits_end == size and size - pos <= max_message:
                    break  # the count (or a line of digits) is not complete yet
                if digits_end < size and buf[digits_end] == _SPACE:
                    digits = digits_end - pos
                    if buf[pos] == _ZERO or digits > _MAX_COUNT_DIGITS:
                        shown = bytes(buf[pos : pos + min(digits, 12)])
                        self.error = f"bad octet count {shown!r}"
                        break
                    length = int(buf[pos:digits_end])
                    kept = min(length, max_message)
                    start = digits_end + 1
                    if size < start + kept:
                        break
                    pos = start + kept
                    if length > kept:
                        self.skip = length - kept
                        self.cut += 1
                    # Inlined _text (this is per message): senders may end a counted one
                    # with LF or CRLF too.
                    end = pos
                    if end > start and buf[end - 1] == _LF:
                        end -= 1
                    if end > start and buf[end - 1] == _CR:
                        end -= 1
                    found.append((buf[start:end].decode("utf-8", "replace"), origin, kept))
                    continue
            stop = pos + max_message + 1
            if stop > size:
                stop = size
            end = find(b"\n", pos, stop)
            nul = find(b"\0", pos, stop if end < 0 else end)
            if nul >= 0:
                end = nul
            if end >= 0:
                text_end = end - 1 if end > pos and buf[end - 1] == _CR else end
                found.append((buf[pos:text_end].decode("utf-8", "replace"), origin, end - pos))
                pos = end + 1
            elif size - pos > max_message:
                found.append((_text(buf, pos, pos + max_message), origin, max_message))
                pos += max_message
                self.discarding = True
                self.cut += 1
            else:
                break
        del buf[:pos]
        return found

    def finish(self) -> tuple[str, str, int] | None:
        """What is left when the sender closes: a last unterminated line, or None.

        A stream ending inside an octet-counted frame sets :attr:`error` instead.
        """
        buf = self.buffer
        if self.error or self.skip or self.discarding or not buf.strip(b"\n\r\0"):
            return None
        digits = 0
        while digits < len(buf) and buf[digits] in _DIGITS:
            digits += 1
        if 0 < digits < len(buf) and buf[digits] == _SPACE:
            self.error = f"connection closed inside a {bytes(buf[:digits])!r}-octet frame"
            return None
        item = (_text(buf, 0, len(buf)), self.origin, len(buf))
        buf.clear()
        return item


class _Connection:
    __slots__ = ("eof", "framer", "last_active", "origin", "sock")

    def __init__(self, sock: socket.socket, origin: str, max_message: int) -> None:
        self.sock = sock
        self.origin = origin
        self.framer = _Framer(origin, max_message)
        self.eof = False
        self.last_active = time.monotonic()


class SyslogTcpSource(_Listener):
    """Syslog messages from TCP connections, both RFC 6587 framings, many senders at once.

    Framing is detected per frame: ``<len> <msg>`` (octet counting: a digit run then a
    space) or a message ended by LF (non-transparent framing; a NUL ends one too, a trailing
    CR is removed). A message longer than ``max_message`` is cut there and counted in
    ``oversize`` (the rest of it is skipped, so framing stays in step). A bad octet count
    (leading zero, more than 9 digits) or a connection closed inside a counted frame is a
    broken stream: counted in ``framing_errors``, that connection is closed, others go on.
    A last unterminated line before the sender closes is handed on.

    When the queue is full the thread stops reading from the sockets (nothing is dropped):
    the kernel buffers fill and TCP flow control slows the senders down.

    Resources are bounded: beyond ``max_connections`` open at once, a new connection is
    accepted and closed at once (counted in ``connections_refused``; a sender retries later),
    and a connection that sends nothing for ``idle_timeout`` seconds is closed (counted in
    ``idle_timeouts``; a last unterminated line it sent is handed on, as when the sender
    closes). Time the thread spends holding back because the queue is full does not count
    as idle.

    Not resumable by position: ``snapshot()`` is the count of messages handed on. Senders'
    own queues and retries (rsyslog, syslog-ng, Vector) cover a restart.

    Parameters
    ----------
    host, port
        Where to listen; port 0 picks a free port (see :attr:`address`). Bound at once.
    max_queue
        Most messages queued between the network thread and :meth:`read`.
    max_message
        Longest message kept, in bytes.
    max_connections
        Most connections open at once.
    idle_timeout
        Seconds a connection may send nothing before it is closed.
    resume_state
        A previous run's :meth:`snapshot`: records are numbered after it
        (``RawRecord.line`` is the record sequence of this source, across restarts).

    Attributes
    ----------
    connections
        Connections accepted and kept so far (int).
    oversize, framing_errors
        Messages cut, streams broken (ints).
    connections_refused, idle_timeouts
        Connections closed at once as ``max_connections`` were open, connections closed
        as idle (ints).

    Examples
    --------
    >>> import socket, time
    >>> source = SyslogTcpSource("127.0.0.1", 0)
    >>> sender = socket.create_connection(source.address, timeout=5)
    >>> sender.sendall(b"11 <13>counted<13>lf-framed\\n")
    >>> records, deadline = [], time.monotonic() + 5
    >>> while len(records) < 2 and time.monotonic() < deadline:
    ...     records += source.read()
    ...     time.sleep(0.01)
    >>> [r.text for r in records], records[0].origin.startswith("syslog-tcp://127.0.0.1:")
    (['<13>counted', '<13>lf-framed'], True)
    >>> sender.close(); source.close()
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_queue: int = 100_000,
        max_message: int = 65536,
        max_connections: int = 256,
        idle_timeout: float = 300.0,
        resume_state: int | None = None,
    ) -> None:
        if max_message < 1:
            raise ValueError(f"max_message must be at least 1, not {max_message}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
        super().__init__(max_queue, f"syslog-tcp {format_hostport(host, port)}", resume_state)
        self.max_message = max_message
        self.max_connections = max_connections
        self.idle_timeout = float(idle_timeout)
        self.oversize = 0
        self.framing_errors = 0
        self.connections = 0
        self.connections_refused = 0
        self.idle_timeouts = 0
        self._idle_check_every = min(_IDLE_CHECK_EVERY, self.idle_timeout / 4)
        self._next_idle_check = 0.0
        # Set while the queue is full: the thread reads no socket then, so nobody is idle.
        self._stalled = False
        self._refusal_logged_at = -_REFUSAL_LOG_EVERY
        self._connections: dict[socket.socket, _Connection] = {}
        # Connections holding complete frames that did not fit in the queue.
        self._backlog: dict[_Connection, None] = {}
        self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(128)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            super().close()
            raise
        bound_host, bound_port = self._listener.getsockname()[:2]
        self._address = (str(bound_host), int(bound_port))
        self._selector.register(self._listener, selectors.EVENT_READ, self._listener)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self._address

    @property
    def open_connections(self) -> int:
        """Connections open now."""
        return len(self._connections)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._room() <= 0:
                self._stalled = True
                self._stopping.wait(_FULL_WAIT)
                continue
            for connection in list(self._backlog):
                self._frame(connection)
            if self._room() <= 0:
                continue
            timeout: float | None = None
            if self._connections:
                now = time.monotonic()
                if now >= self._next_idle_check:
                    self._close_idle(now)
                timeout = max(0.0, self._next_idle_check - now)
            if self._backlog:
                timeout = 0  # frames left (the reader made room meanwhile): a quick look
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    return  # woken up by close()
                if key.data is self._listener:
                    self._accept_all()
                else:
                    self._receive(key.data)

    def _accept_all(self) -> None:
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # e.g. EMFILE: the connection waits in the kernel's backlog; pause so that a
                # listener that stays readable does not spin.
                logger.warning("syslog-tcp %s: accept failed: %s", self._address, error)
                self._stopping.wait(0.1)
                return
            if len(self._connections) >= self.max_connections:
                self._refuse(sock, peer)
                continue
            sock.setblocking(False)
            origin = f"syslog-tcp://{format_hostport(str(peer[0]), int(peer[1]))}"
            connection = _Connection(sock, origin, self.max_message)
            self.connections += 1
            self._connections[sock] = connection
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _refuse(self, sock: socket.socket, peer: tuple[object, ...]) -> None:
        """Close a connection beyond ``max_connections`` at once (counted, warned now and then)."""
        self.connections_refused += 1  # before the close, which the sender can see at once
        sock.close()
        now = time.monotonic()
        if now - self._refusal_logged_at >= _REFUSAL_LOG_EVERY:
            self._refusal_logged_at = now
            logger.warning(
                "syslog-tcp %s: %d connections open (max_connections); closed one from %s"
                " (%d refused so far)",
                format_hostport(*self._address),
                len(self._connections),
                peer[0],
                self.connections_refused,
            )

    def _close_idle(self, now: float) -> None:
        """Close the connections that sent nothing for ``idle_timeout`` seconds."""
        self._next_idle_check = now + self._idle_check_every
        if self._stalled:
            # The sockets were not read while the queue was full: silence proves nothing.
            self._stalled = False
            for connection in self._connections.values():
                connection.last_active = now
            return
        cutoff = now - self.idle_timeout
        idle = [
            connection
            for connection in self._connections.values()
            if connection.last_active <= cutoff and not connection.eof
        ]
        for connection in idle:
            # Bytes waiting in the socket mean this thread was late, not the sender silent.
            self._receive(connection)
            if connection.eof or connection.last_active > cutoff:
                continue
            self.idle_timeouts += 1
            logger.info(
                "%s: nothing received for %g s; closing the connection",
                connection.origin,
                self.idle_timeout,
            )
            # As if the sender had closed: a last unterminated line is handed on.
            connection.eof = True
            self._selector.unregister(connection.sock)
            self._frame(connection)

    def _receive(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(_RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.info("%s: %s", connection.origin, error)
            data = b""
        connection.last_active = time.monotonic()
        if data:
            connection.framer.buffer += data
        else:
            connection.eof = True
            self._selector.unregister(connection.sock)
        self._frame(connection)

    def _frame(self, connection: _Connection) -> None:
        """Queue the connection's complete messages while there is room."""
        framer = connection.framer
        while (room := self._room()) > 0:
            messages = framer.take(room)
            if messages:
                self._put_all(messages)
            if framer.cut:
                self.oversize += framer.cut
                framer.cut = 0
            if len(messages) == room:
                continue  # the queue is full now, or the reader has made room meanwhile
            if framer.error is None and connection.eof:
                last = framer.finish()
                if last is not None:
                    self._put_all([last])
            if framer.error is not None:
                self.framing_errors += 1
                logger.warning("%s: %s; closing the connection", framer.origin, framer.error)
                self._drop(connection)
            elif connection.eof:
                self._drop(connection)
            else:
                self._backlog.pop(connection, None)
            return
        self._backlog[connection] = None

    def _drop(self, connection: _Connection) -> None:
        self._backlog.pop(connection, None)
        if self._connections.pop(connection.sock, None) is not None and not connection.eof:
            self._selector.unregister(connection.sock)
        connection.sock.close()

    def _release(self) -> None:
        for connection in list(self._connections.values()):
            connection.sock.close()
        self._connections.clear()
        self._backlog.clear()
        self._listener.close()

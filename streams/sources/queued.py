"""The bounded queue between a network listener thread and the daemon's loop thread.

Shared by the syslog (UDP, TCP) and HTTP ingest sources.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from streams.sources.base import RawRecord


def format_hostport(host: str, port: int) -> str:
    """``host:port``, with IPv6 addresses in brackets.

    Examples
    --------
    >>> format_hostport("127.0.0.1", 514), format_hostport("::1", 514)
    ('127.0.0.1:514', '[::1]:514')
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class QueuedSource:
    """The bounded queue between a listener thread and the daemon's loop thread.

    Listener threads put messages in; :meth:`read` takes out what is there now. Counters are
    plain ints the daemon exports as metrics: ``received`` (messages taken off the network,
    dropped ones included) and ``dropped`` (not queued because the queue was full), and
    the read-only ``lag_bytes`` (message bytes queued, not yet read) and ``queued``.

    Positions are the record sequence of this source: the n-th message handed on by
    :meth:`read` is ``RawRecord.line == n`` (``offset`` is always 0: a socket has none), and
    :meth:`snapshot` is the count handed on so far. Built with that count as
    ``resume_state``, a restarted source goes on numbering after it, so dead letters'
    positions never repeat across restarts. A socket cannot be re-read: what was queued but
    not handed on when the process stopped is the senders' to resend.

    Parameters
    ----------
    max_queue
        Most messages held at once.
    resume_state
        The :meth:`snapshot` of a previous run (messages it handed on), or None to start at 0.

    Examples
    --------
    >>> source = QueuedSource(max_queue=2)
    >>> [source._offer(text, "test") for text in ("a", "b", "c")]
    [True, True, False]
    >>> source.received, source.dropped, source.lag_bytes
    (3, 1, 2)
    >>> [(r.text, r.line) for r in source.read()], source.snapshot(), source.lag_bytes
    ([('a', 1), ('b', 2)], 2, 0)
    >>> restarted = QueuedSource(max_queue=2, resume_state=source.snapshot())
    >>> restarted._offer("d", "test")
    True
    >>> [(r.text, r.line) for r in restarted.read()], restarted.snapshot()
    ([('d', 3)], 3)
    """

    def __init__(self, max_queue: int, *, resume_state: int | None = None) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}")
        if resume_state is not None and (
            isinstance(resume_state, bool) or not isinstance(resume_state, int)
        ):
            raise TypeError(f"resume_state must be a count of records, not {resume_state!r}")
        if resume_state is not None and resume_state < 0:
            raise ValueError(f"resume_state must be at least 0, not {resume_state}")
        self.max_queue = max_queue
        self.received = 0
        self.dropped = 0
        self._queue: deque[tuple[str, str, int]] = deque()
        # Guards producers against each other (several HTTP handler threads); the single
        # consumer needs no lock: deque.append/popleft are atomic, and each byte counter
        # below has one writer.
        self._lock = threading.Lock()
        self._bytes_in = 0
        self._bytes_out = 0
        self._line = resume_state or 0

    @property
    def alive(self) -> bool:
        """Whether records can still arrive: True here (a listener reports its thread)."""
        return True

    @property
    def lag_bytes(self) -> int:
        """Bytes of the messages queued and not yet read (approximate while threads run)."""
        return max(0, self._bytes_in - self._bytes_out)

    @property
    def queued(self) -> int:
        """Messages queued and not yet read."""
        return len(self._queue)

    def _room(self) -> int:
        return self.max_queue - len(self._queue)

    def _offer(self, text: str, origin: str, size: int | None = None) -> bool:
        """Queue one message, or drop and count it when the queue is full (producer side)."""
        self.received += 1
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            return False
        # Counted before the append, so the reader never sees more bytes out than in.
        self._bytes_in += len(text) if size is None else size
        self._queue.append((text, origin, len(text) if size is None else size))
        return True

    def _put_all(self, items: list[tuple[str, str, int]]) -> None:
        """Queue messages the caller has made room for: ``(text, origin, size)`` each."""
        self.received += len(items)
        self._bytes_in += sum(item[2] for item in items)
        self._queue.extend(items)

    def read(self) -> Iterator[RawRecord]:
        """The messages queued now (not those arriving meanwhile), oldest first."""
        popleft = self._queue.popleft
        for _ in range(len(self._queue)):
            try:
                text, origin, size = popleft()
            except IndexError:
                return
            self._bytes_out += size
            self._line += 1
            yield RawRecord(text, origin, self._line, 0)

    def snapshot(self) -> int:
        """The count of messages handed on, this run and the runs it resumed, for ``resume_state``.

        The line number of the last record handed on; a socket cannot be re-read, so it
        numbers records rather than locating them.
        """
        return self._line

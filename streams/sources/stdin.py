"""Lines from standard input (``[[source]] type = "stdin"``): a pipe, so not resumable."""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from streams.sources.base import RawRecord

logger = logging.getLogger(__name__)


class StdinSource:
    """Lines from standard input, read by a background thread (not resumable: a pipe).

    ``snapshot()`` is the count of lines handed on; a restart cannot rewind a pipe, so it
    only continues the numbering of dead letters. :attr:`ended` turns true once the stream
    has reached its end and every line has been handed on: the one source that finishes
    (files and sockets always may receive more). A read that fails (``EIO``, a closed
    descriptor) ends the stream too, but is not a clean end: :attr:`error` says why, it is
    logged, :attr:`alive` turns false, and the lines read before it are still handed on.

    Parameters
    ----------
    stream
        The stream to read: bytes (default ``sys.stdin.buffer``), split at ``\\n`` and
        decoded as UTF-8 with invalid bytes replaced, as the file sources do; or text.

    Examples
    --------
    >>> import io
    >>> source = StdinSource(io.StringIO("a\\nb\\n"))
    >>> source._thread.join(5)
    >>> [r.text for r in source.read()], source.snapshot(), source.ended
    (['a', 'b'], 2, True)
    """

    def __init__(self, stream: BinaryIO | TextIO | None = None) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._line = 0
        self.lag_bytes = 0
        self._at_end = threading.Event()
        self.error: str | None = None  # why reading stopped before the stream's end
        self._thread = threading.Thread(
            target=self._pump, args=(stream or sys.stdin.buffer,), name="stdin", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: BinaryIO | TextIO) -> None:
        # Bytes, not sys.stdin's text layer: its strict decoding would end the thread (and
        # the input) at the first byte that is not UTF-8, and it splits at a lone "\r" too.
        read = 0
        try:
            for line in stream:
                text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
                self._queue.put(text.removesuffix("\n").removesuffix("\r"))
                read += 1
        except (OSError, ValueError) as exc:
            # ValueError: the stream was closed under the reader ("I/O operation on closed
            # file"). Either way nothing more can come: say so rather than end silently.
            self.error = f"read failed after line {read}: {exc}"
            logger.error("stdin: %s; no more input from stdin", self.error)
        finally:
            self._at_end.set()

    @property
    def alive(self) -> bool:
        """Whether lines can still come or have come to their end: the reader thread runs,
        or it has finished the stream (an ended stdin is done, not broken; one whose read
        failed is broken)."""
        if self.error is not None:
            return False
        return self._thread.is_alive() or self._at_end.is_set()

    @property
    def ended(self) -> bool:
        """Whether the stream has ended and every line read from it has been handed on."""
        # The end is set after the last line is queued: an empty queue then means no more.
        return self._at_end.is_set() and self._queue.empty()

    def read(self) -> Iterator[RawRecord]:
        """Every line read so far and not yet handed on."""
        while True:
            try:
                text = self._queue.get_nowait()
            except queue.Empty:
                return
            self._line += 1
            yield RawRecord(text, "stdin", self._line, 0)

    def snapshot(self) -> int:
        """Lines handed on so far."""
        return self._line

    def close(self) -> None:
        """Nothing to release: the reader thread ends with the stream (it is a daemon thread)."""

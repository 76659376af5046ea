"""Lines from standard input (``[[source]] type = "stdin"``): a pipe, so not resumable."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from streams.sources.base import RawRecord


class StdinSource:
    """Lines from standard input, read by a background thread (not resumable: a pipe).

    ``snapshot()`` is the count of lines handed on; a restart cannot rewind a pipe, so it
    only continues the numbering of dead letters.

    Parameters
    ----------
    stream
        The text stream to read (default ``sys.stdin``).

    Examples
    --------
    >>> import io
    >>> source = StdinSource(io.StringIO("a\\nb\\n"))
    >>> source._thread.join(5)
    >>> [r.text for r in source.read()], source.snapshot()
    (['a', 'b'], 2)
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._line = 0
        self.lag_bytes = 0
        self._thread = threading.Thread(
            target=self._pump, args=(stream or sys.stdin,), name="stdin", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: TextIO) -> None:
        for text in stream:
            self._queue.put(text.rstrip("\r\n"))

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

"""Where alerts go: standard output, a rotating JSON-lines file, a webhook.

Every sink follows :class:`AlertSink`. The daemon writes each alert to every sink once
(alerts it has emitted before its last checkpoint are skipped), flushes them before a
checkpoint and stores their :meth:`~AlertSink.pending` alerts in it; a restart gives those
back through :meth:`~AlertSink.restore`.

Delivery guarantees after a crash (SIGKILL, power loss): the daemon replays the lines read
since its last checkpoint, so the alerts of that stretch are written again with the same
ids. :class:`JsonlFileSink` skips the ids already in its files (exactly once);
:class:`StdoutSink` and :class:`WebhookSink` deliver them again (at least once: a receiver
deduplicates on the alert's stable ``id``). A clean stop (SIGTERM) duplicates nothing, and
loses nothing: the webhook's alerts not delivered within its ``drain_seconds`` stay pending,
are kept in the last checkpoint and are sent after the restart. Only alerts that used up
their attempts, got a status not worth retrying, or found the queue full are dead-lettered.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import random
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO
from urllib.parse import urlsplit

import orjson

from detector.alerts import Alert
from detector.config import SinkConfig

logger = logging.getLogger(__name__)

#: Statuses worth another attempt besides 5xx: the server timed out or asked us to slow down.
_RETRY_STATUSES = frozenset({408, 429})


class AlertSink(Protocol):
    """What the daemon needs from a sink.

    ``write`` must not block on the network (queue instead); ``pending`` and ``restore``
    carry undelivered alerts (as ``Alert.to_dict()`` mappings) across a restart; ``stats``
    feeds the Prometheus metrics (keys ``delivered``, ``retries``, ``dead_lettered``,
    ``queue_depth``, ``duplicates_skipped``, ``rotations``, each optional).
    """

    def write(self, alert: Alert) -> None:
        """Hand on one alert."""
        ...

    def flush(self) -> None:
        """Make what was written durable (called before every checkpoint)."""
        ...

    def close(self) -> None:
        """Deliver what is queued for a bounded time and release files and threads
        (idempotent); what is left stays in :meth:`pending`, for the last checkpoint."""
        ...

    def pending(self) -> list[dict[str, Any]]:
        """Alerts accepted but not yet delivered (stored in the checkpoint)."""
        ...

    def restore(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Queue again the :meth:`pending` alerts of a previous run."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the metrics."""
        ...


class StdoutSink:
    """One alert per line (JSON) on standard output, for a collector reading the pipe.

    Parameters
    ----------
    stream
        Where to write (default ``sys.stdout``, looked up at each write).

    Examples
    --------
    >>> import io
    >>> from datetime import datetime, UTC
    >>> alert = Alert.build(entity="ann", window_start=datetime(2024, 1, 1, tzinfo=UTC),
    ...     window_end=datetime(2024, 1, 2, tzinfo=UTC), detector="count_tail", score=9.0,
    ...     threshold=3.0, severity="critical", schema_hash="h", deviations=())
    >>> out = io.StringIO()
    >>> sink = StdoutSink(out)
    >>> sink.write(alert)
    >>> out.getvalue().startswith('{"id":"'), sink.stats()
    (True, {'delivered': 1, 'failed': 0})
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.delivered = 0
        # The reader of the pipe went away: the other sinks still get every alert, so this
        # one stops writing (and counts what it could not write) instead of stopping the daemon.
        self.broken = False
        self.failed = 0

    def _put(self, line: str) -> bool:
        if self.broken:
            self.failed += 1
            return False
        stream = self._stream or sys.stdout
        try:
            stream.write(line)
            stream.flush()
        except BrokenPipeError:
            self.broken = True
            self.failed += 1
            logger.warning("stdout sink: the reading end of the pipe closed; stdout alerts stop")
            return False
        return True

    def write(self, alert: Alert) -> None:
        if self._put(orjson.dumps(alert.to_dict()).decode() + "\n"):
            self.delivered += 1

    def flush(self) -> None:
        if not self.broken:
            self._put("")

    def close(self) -> None:
        return

    def pending(self) -> list[dict[str, Any]]:
        return []

    def restore(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        for alert in alerts:
            self._put(orjson.dumps(alert).decode() + "\n")

    def stats(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed}


def redacted_url(url: str) -> str:
    """``scheme://host[:port]`` of a URL, for logs: its user, path or query may carry a token.

    Examples
    --------
    >>> redacted_url("https://bot:pw@hooks.example.org:8443/T0/B1?token=s3cret")
    'https://hooks.example.org:8443'
    >>> redacted_url("http://[::1]/hook")
    'http://[::1]'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def rotated_paths(path: Path, keep: int) -> list[Path]:
    """``path`` and its rotated copies ``path.1`` ... ``path.keep``, newest first.

    Examples
    --------
    >>> [p.name for p in rotated_paths(Path("alerts.jsonl"), 2)]
    ['alerts.jsonl', 'alerts.jsonl.1', 'alerts.jsonl.2']
    """
    return [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, keep + 1))]


class JsonlFileSink:
    """Append alerts as JSON lines, rotating by size, skipping ids already written.

    Parameters
    ----------
    path
        The live file (``alerts.jsonl``); its folder is created.
    max_bytes
        Rotate before a line would take the file past this size (``None``: never). Rotation
        renames ``alerts.jsonl`` to ``alerts.jsonl.1``, ``.1`` to ``.2`` and so on; the copy
        past ``keep`` is deleted.
    keep
        Rotated copies kept (0: the live file is simply started over).

    The ids in the live file and in the rotated copies are read at start, so a replay after
    a crash never writes an alert twice (within what is kept). Each line is handed to the
    operating system at once (a killed process loses nothing); :meth:`flush` fsyncs.

    Examples
    --------
    >>> import tempfile
    >>> from datetime import datetime, UTC
    >>> path = Path(tempfile.mkdtemp()) / "alerts.jsonl"
    >>> alert = Alert.build(entity="ann", window_start=datetime(2024, 1, 1, tzinfo=UTC),
    ...     window_end=datetime(2024, 1, 2, tzinfo=UTC), detector="count_tail", score=9.0,
    ...     threshold=3.0, severity="critical", schema_hash="h", deviations=())
    >>> first = JsonlFileSink(path)
    >>> first.write(alert); first.close()
    >>> again = JsonlFileSink(path)
    >>> again.write(alert); again.close()
    >>> len(path.read_text().splitlines()), again.stats()["duplicates_skipped"]
    (1, 1)
    """

    def __init__(self, path: Path, *, max_bytes: int | None = None, keep: int = 5) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.written: set[str] = set()
        for existing in reversed(rotated_paths(self.path, keep)):
            self._read_ids(existing)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO | None = self.path.open("ab")
        self._size = self._handle.tell()
        self.delivered = 0
        self.duplicates_skipped = 0
        self.rotations = 0

    def _read_ids(self, path: Path) -> None:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    self.written.add(str(orjson.loads(raw)["id"]))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    logger.warning("%s:%d: skipping an unreadable alert line", path, number)

    def write(self, alert: Alert) -> None:
        if alert.id in self.written:
            self.duplicates_skipped += 1
            return
        self._append(orjson.dumps(alert.to_dict()) + b"\n")
        self.written.add(alert.id)

    def _append(self, line: bytes) -> None:
        if self._handle is None:
            raise ValueError(f"{self.path}: sink is closed")
        if self.max_bytes is not None and self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        assert self._handle is not None
        self._handle.write(line)
        self._handle.flush()
        self._size += len(line)
        self.delivered += 1

    def _rotate(self) -> None:
        assert self._handle is not None
        self.flush()
        self._handle.close()
        paths = rotated_paths(self.path, self.keep)
        paths[-1].unlink(missing_ok=True)
        for older, newer in zip(reversed(paths[1:]), reversed(paths[:-1]), strict=True):
            if newer.exists():
                os.replace(newer, older)
        self._handle = self.path.open("ab")
        self._size = 0
        self.rotations += 1
        logger.info("rotated %s (%d copies kept)", self.path, self.keep)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self.flush()
            self._handle.close()
            self._handle = None

    def pending(self) -> list[dict[str, Any]]:
        return []

    def restore(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        for alert in alerts:
            if str(alert.get("id")) not in self.written:
                self._append(orjson.dumps(alert) + b"\n")
                self.written.add(str(alert.get("id")))

    def stats(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "duplicates_skipped": self.duplicates_skipped,
            "rotations": self.rotations,
        }


def _retry_after(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WebhookSink:
    """POST alerts as JSON to an HTTP(S) endpoint from a background thread, with retries.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` endpoint.
    headers
        Extra request headers (e.g. ``Authorization``).
    timeout
        Seconds for one request (connect and response).
    max_attempts
        Attempts per alert (or batch) before it goes to the dead-letter file.
    backoff, max_backoff
        The wait before attempt ``n + 1`` is ``backoff * 2 ** (n - 1)`` seconds, capped at
        ``max_backoff``, times a random jitter in [0.5, 1]; a ``Retry-After`` header (on 429 or
        503) replaces it (still capped).
    max_queue
        Alerts waiting for delivery; an alert that finds the queue full is dead-lettered.
    batch_size
        1: the body is one alert (a JSON object). More: up to that many queued alerts per
        request, the body a JSON array.
    dead_letter_path
        JSON lines ``{"alert", "error", "attempts", "time"}`` of the alerts not delivered.
    drain_seconds
        How long :meth:`close` keeps delivering what is queued; what is left stays in
        :meth:`pending` (the daemon's last checkpoint keeps it for the next run).
    seed
        Seed of the jitter (tests).

    Connection errors, timeouts, 408, 429 and 5xx are retried; any other status outside
    2xx (400, 401, 404, a redirect ...) is not: the alert is dead-lettered at once. No alert is
    dropped: it is delivered, queued (and checkpointed through :meth:`pending`, also after
    :meth:`close`), or in the dead-letter file. Logs name the endpoint by scheme, host and
    port only (:func:`redacted_url`).

    Examples
    --------
    >>> import tempfile
    >>> dead = Path(tempfile.mkdtemp()) / "webhook-dead.jsonl"
    >>> sink = WebhookSink("http://127.0.0.1:9/alerts", dead_letter_path=dead, max_queue=10)
    >>> sink.stats()
    {'delivered': 0, 'retries': 0, 'dead_lettered': 0, 'queue_depth': 0}
    >>> sink.close()
    >>> WebhookSink("ftp://example.org/", dead_letter_path=dead)
    Traceback (most recent call last):
    ...
    ValueError: webhook url 'ftp://example.org/' must start with http:// or https://
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_queue: int = 10_000,
        batch_size: int = 1,
        dead_letter_path: Path,
        drain_seconds: float = 10.0,
        seed: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url {url!r} must start with http:// or https://")
        for name, value in (("max_attempts", max_attempts), ("max_queue", max_queue)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.url = url
        self._where = redacted_url(url)
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.dead_letter_path = Path(dead_letter_path)
        self.drain_seconds = drain_seconds
        self._random = random.Random(seed)
        self._queue: deque[dict[str, Any]] = deque()
        self._inflight: list[dict[str, Any]] = []
        self._inflight_attempts = 0
        self._inflight_error = ""
        self._condition = threading.Condition()
        self._closing = False
        self._closed = False
        self._abort = threading.Event()
        self._dead_lock = threading.Lock()
        self.delivered = 0
        self.retries = 0
        self.dead_lettered = 0
        self._thread = threading.Thread(target=self._run, name="webhook-sink", daemon=True)
        self._thread.start()

    # -- the daemon's side -------------------------------------------------------------------

    def write(self, alert: Alert) -> None:
        self._enqueue(alert.to_dict())

    def restore(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        for alert in alerts:
            self._enqueue(dict(alert))

    def _enqueue(self, payload: dict[str, Any]) -> None:
        with self._condition:
            if self._closing:
                reason = "sink closed"
            elif len(self._queue) >= self.max_queue:
                reason = f"queue full ({self.max_queue} alerts waiting)"
            else:
                self._queue.append(payload)
                self._condition.notify()
                return
        self._dead_letter([payload], reason, 0)

    def pending(self) -> list[dict[str, Any]]:
        with self._condition:
            return [*self._inflight, *self._queue]

    @property
    def queue_depth(self) -> int:
        """Alerts accepted and not yet delivered (including the request in flight)."""
        with self._condition:
            return len(self._inflight) + len(self._queue)

    def stats(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "retries": self.retries,
            "dead_lettered": self.dead_lettered,
            "queue_depth": self.queue_depth,
        }

    def flush(self) -> None:
        """Sync the dead-letter file (delivery itself never blocks the daemon)."""
        with self._dead_lock:
            if self.dead_letter_path.exists():
                with self.dead_letter_path.open("ab") as handle:
                    os.fsync(handle.fileno())

    def close(self) -> None:
        """Keep delivering for up to ``drain_seconds``; what is left stays in :meth:`pending`.

        A stop is not a failed delivery: those alerts were not tried ``max_attempts`` times,
        so they are not dead-lettered; the daemon's last checkpoint keeps them and the next
        run sends them.
        """
        with self._condition:
            if self._closed:
                return
            self._closing = True
            self._condition.notify_all()
        self._thread.join(self.drain_seconds)
        if self._thread.is_alive():
            self._abort.set()
            self._thread.join(self.timeout + 1.0)
        with self._condition:
            self._closed = True
            left, error = len(self._inflight) + len(self._queue), self._inflight_error
        if left:
            logger.warning(
                "webhook %s: %d alert(s) not delivered before shutdown (last error: %s) stay"
                " pending: the checkpoint keeps them for the next run",
                self._where,
                left,
                error or "none",
            )
        self.flush()

    # -- the delivery thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closing:
                    self._condition.wait()
                if not self._queue or self._abort.is_set():
                    return
                count = min(self.batch_size, len(self._queue))
                self._inflight = [self._queue.popleft() for _ in range(count)]
                self._inflight_attempts, self._inflight_error = 0, ""
                batch = self._inflight
            if not self._deliver(batch):
                return  # aborted by close(): the batch stays in flight for close() to dead-letter
            with self._condition:
                self._inflight = []

    def _deliver(self, batch: list[dict[str, Any]]) -> bool:
        """Try ``batch`` until delivered or dead-lettered (True) or aborted by close (False)."""
        body = orjson.dumps(batch[0] if self.batch_size == 1 else batch)
        while True:
            status, retry_after, error = self._post(body)
            with self._condition:
                self._inflight_attempts += 1
                self._inflight_error = error
                attempts = self._inflight_attempts
            if 200 <= status < 300:
                self.delivered += len(batch)
                return True
            retryable = status == 0 or status in _RETRY_STATUSES or 500 <= status < 600
            if not retryable or attempts >= self.max_attempts:
                self._dead_letter(batch, error, attempts)
                return True
            delay = self.backoff * 2.0 ** (attempts - 1) * self._random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = retry_after
            delay = min(delay, self.max_backoff)
            logger.info(
                "webhook %s: %s; attempt %d in %.2fs", self._where, error, attempts + 1, delay
            )
            if self._abort.wait(delay):
                return False
            self.retries += 1

    def _post(self, body: bytes) -> tuple[int, float | None, str]:
        """One POST: (status or 0 on a connection error, Retry-After seconds, error text)."""
        connection: http.client.HTTPConnection
        if self._scheme == "https":
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.request("POST", self._target, body=body, headers=self.headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            retry_after = _retry_after(response.getheader("Retry-After"))
            return status, retry_after, f"HTTP {status} {response.reason}".strip()
        except (OSError, http.client.HTTPException) as exc:
            return 0, None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    def _dead_letter(self, batch: Sequence[Mapping[str, Any]], error: str, attempts: int) -> None:
        stamp = datetime.now(UTC).isoformat()
        lines = b"".join(
            orjson.dumps({"alert": alert, "error": error, "attempts": attempts, "time": stamp})
            + b"\n"
            for alert in batch
        )
        with self._dead_lock:
            self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter_path.open("ab") as handle:
                handle.write(lines)
            self.dead_lettered += len(batch)
        logger.warning(
            "webhook %s: %d alert(s) dead-lettered to %s: %s",
            self._where,
            len(batch),
            self.dead_letter_path,
            error,
        )


def sink_from_config(config: SinkConfig) -> AlertSink:
    """Build the sink a validated ``[[sink]]`` table describes.

    Examples
    --------
    >>> sink_from_config(SinkConfig(type="stdout", path=None)).stats()
    {'delivered': 0, 'failed': 0}
    """
    if config.type == "jsonl":
        assert config.path is not None
        return JsonlFileSink(config.path, max_bytes=config.max_bytes, keep=config.keep)
    if config.type == "webhook":
        assert config.url is not None and config.dead_letter is not None
        return WebhookSink(
            config.url,
            headers=config.headers,
            timeout=config.timeout,
            max_attempts=config.max_attempts,
            backoff=config.backoff,
            max_backoff=config.max_backoff,
            max_queue=config.max_queue,
            batch_size=config.batch_size,
            dead_letter_path=config.dead_letter,
            drain_seconds=config.drain_seconds,
        )
    return StdoutSink()

"""Shared pieces of the detector tests: a scripted webhook receiver, a minimal alert,
appending log lines / polling a daemon until it has nothing left, and the stream bench's
generated lines with bad and late ones mixed in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from detector.alerts import Alert

if TYPE_CHECKING:
    from detector.daemon import Daemon


def mixed_stream_lines(
    folder: Path, *, users: int, days: int, rate: int, seed: int, at: int
) -> tuple[Path, int]:
    """The stream bench's generated ECS lines with, before line ``at``, bad JSON, an empty
    line, a line missing its user and a line a day late, and that late line again at the end:
    the file, and its number of lines."""
    from benchmarks.stream_bench import generate_lines, input_path

    source = input_path(folder, users, days, rate, seed)
    generate_lines(source, users=users, days=days, rate=rate, seed=seed)
    lines = source.read_text().splitlines()
    late = lines[10].replace('"2024-03-04T', '"2024-03-03T')  # a day before: late
    lines[at:at] = ["{not json", "", '{"event.action": "logon"}', late]
    lines.append(late)
    mixed = folder / "mixed.jsonl"
    mixed.write_text("\n".join(lines) + "\n")
    return mixed, len(lines)


def append_lines(path: Path, lines: list[str]) -> None:
    """Append ``lines`` to ``path``, each with its newline (a log writer's appends)."""
    with path.open("a") as handle:
        handle.writelines(line + "\n" for line in lines)


def drain(daemon: Daemon) -> None:
    """Poll ``daemon`` until a poll handles nothing (at most 100 polls)."""
    for _ in range(100):
        if not daemon.poll_once():
            return


def make_alert(n: int, severity: str = "critical") -> Alert:
    """An alert for ``user<n>`` on day ``n`` of 2024 (distinct ids for distinct ``n``)."""
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
    return Alert.build(
        entity=f"user{n}",
        window_start=start,
        window_end=start + timedelta(days=1),
        detector="count_tail",
        score=9.0,
        threshold=3.0,
        severity=severity,
        schema_hash="h",
        deviations=(),
    )


class WebhookReceiver:
    """A local HTTP endpoint answering from a script of statuses (then 200), recording bodies."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests = 0
        self.delivered: list[Any] = []
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                receiver.arrived.set()
                receiver.release.wait(10)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.delivered.append(orjson.loads(body))
                self.send_response(status)
                for key, value in receiver.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

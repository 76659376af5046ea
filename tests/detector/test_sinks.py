"""Alert sinks: the rotating JSON-lines file and the webhook with retries and dead letters."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.sinks import JsonlFileSink, StdoutSink, WebhookSink, _retry_after, rotated_paths
from tests.detector._support import WebhookReceiver, make_alert


def _ids(path: Path) -> list[str]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


def _wait(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# -- JSON lines ------------------------------------------------------------------------------


def test_jsonl_rotates_by_size_and_deletes_past_keep(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    alerts = [make_alert(n) for n in range(7)]
    line = len(orjson.dumps(alerts[0].to_dict())) + 1
    assert all(len(orjson.dumps(a.to_dict())) + 1 == line for a in alerts)
    # Two lines fit, a third would pass max_bytes: files of 2 lines, 7 alerts -> 4 files,
    # the oldest of which is past keep=2 and deleted.
    sink = JsonlFileSink(path, max_bytes=2 * line, keep=2)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    assert [p.exists() for p in rotated_paths(path, 3)] == [True, True, True, False]
    assert _ids(path) == [alerts[6].id]
    assert _ids(tmp_path / "alerts.jsonl.1") == [alerts[4].id, alerts[5].id]
    assert _ids(tmp_path / "alerts.jsonl.2") == [alerts[2].id, alerts[3].id]
    assert sink.stats() == {"delivered": 7, "duplicates_skipped": 0, "rotations": 3}


def test_jsonl_skips_ids_in_the_live_and_the_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    line = len(orjson.dumps(make_alert(0).to_dict())) + 1
    first = JsonlFileSink(path, max_bytes=line, keep=3)
    for n in range(3):
        first.write(make_alert(n))
    first.close()
    assert _ids(tmp_path / "alerts.jsonl.2") == [make_alert(0).id]
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    replay = JsonlFileSink(path, max_bytes=line, keep=3)
    for n in range(4):  # a replay: 0..2 were written before, 3 is new
        replay.write(make_alert(n))
    replay.close()
    assert replay.stats()["duplicates_skipped"] == 3
    lines = [x for p in rotated_paths(path, 3) if p.exists() for x in p.read_bytes().splitlines()]
    assert b"not json" in lines
    every = [orjson.loads(x)["id"] for x in lines if x != b"not json"]
    assert sorted(every) == sorted(make_alert(n).id for n in range(4))


def test_jsonl_flush_after_close_is_harmless_and_write_after_close_fails(tmp_path: Path) -> None:
    sink = JsonlFileSink(tmp_path / "a" / "alerts.jsonl")
    sink.close()
    sink.flush()
    sink.close()
    with pytest.raises(ValueError, match="sink is closed"):
        sink.write(make_alert(1))


def test_stdout_sink_writes_one_json_line_permake_alert(capsys: pytest.CaptureFixture[str]) -> None:
    sink = StdoutSink()
    sink.write(make_alert(1))
    sink.write(make_alert(2))
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(x)["entity"] for x in lines] == ["user1", "user2"]


# -- webhook ---------------------------------------------------------------------------------


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(statuses: list[int], headers: dict[str, str] | None = None) -> WebhookReceiver:
        made.append(WebhookReceiver(statuses, headers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _dead(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def test_webhook_retries_5xx_then_delivers_once(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    receiver = receiver_factory([500, 503])
    sink = WebhookSink(receiver.url, backoff=0.01, dead_letter_path=tmp_path / "dead.jsonl", seed=1)
    sink.write(make_alert(1))
    assert _wait(lambda: sink.stats()["delivered"] == 1)
    sink.close()
    assert [a["id"] for a in receiver.delivered] == [make_alert(1).id]
    assert receiver.requests == 3
    assert sink.stats() == {"delivered": 1, "retries": 2, "dead_lettered": 0, "queue_depth": 0}
    assert not (tmp_path / "dead.jsonl").exists()


def test_webhook_honours_retry_after_over_its_own_backoff(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    # backoff=20 s would make the retry wait 10-20 s; the server's Retry-After: 0 wins.
    receiver = receiver_factory([429], {"Retry-After": "0"})
    sink = WebhookSink(receiver.url, backoff=20.0, dead_letter_path=tmp_path / "dead.jsonl")
    started = time.monotonic()
    sink.write(make_alert(1))
    assert _wait(lambda: sink.stats()["delivered"] == 1, 5.0)
    assert time.monotonic() - started < 5.0
    sink.close()
    assert receiver.requests == 2


def test_webhook_does_not_retry_a_client_error(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    receiver = receiver_factory([400])
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(receiver.url, backoff=0.01, dead_letter_path=dead)
    sink.write(make_alert(1))
    assert _wait(lambda: sink.stats()["dead_lettered"] == 1)
    sink.close()
    assert receiver.requests == 1
    [letter] = _dead(dead)
    assert (letter["alert"]["id"], letter["attempts"]) == (make_alert(1).id, 1)
    assert letter["error"].startswith("HTTP 400")


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused


def test_webhook_dead_letters_after_max_attempts(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    url = f"http://127.0.0.1:{_dead_port()}/alerts"
    sink = WebhookSink(url, max_attempts=3, backoff=0.01, dead_letter_path=dead)
    sink.write(make_alert(1))
    sink.write(make_alert(2))
    assert _wait(lambda: sink.stats()["dead_lettered"] == 2)
    sink.close()
    letters = _dead(dead)
    assert [(x["alert"]["id"], x["attempts"]) for x in letters] == [
        (make_alert(1).id, 3),
        (make_alert(2).id, 3),
    ]
    assert "ConnectionRefusedError" in letters[0]["error"]
    assert sink.stats() == {"delivered": 0, "retries": 4, "dead_lettered": 2, "queue_depth": 0}


def test_webhook_queue_full_dead_letters_and_pending_lists_what_waits(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    receiver = receiver_factory([])
    receiver.release.clear()  # hold the first request
    dead = tmp_path / "dead.jsonl"
    sink = WebhookSink(receiver.url, max_queue=1, dead_letter_path=dead)
    sink.write(make_alert(1))
    assert receiver.arrived.wait(5)
    sink.write(make_alert(2))  # queued: the queue is now full
    sink.write(make_alert(3))  # dead-lettered at once
    assert [a["id"] for a in sink.pending()] == [make_alert(1).id, make_alert(2).id]
    assert sink.queue_depth == 2
    [letter] = _dead(dead)
    assert (letter["alert"]["id"], letter["attempts"]) == (make_alert(3).id, 0)
    assert letter["error"] == "queue full (1 alerts waiting)"
    receiver.release.set()
    assert _wait(lambda: sink.stats()["delivered"] == 2)
    sink.close()
    assert [a["id"] for a in receiver.delivered] == [make_alert(1).id, make_alert(2).id]
    assert sink.pending() == []


def test_webhook_batches_are_json_arrays(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    receiver = receiver_factory([])
    receiver.release.clear()
    sink = WebhookSink(receiver.url, batch_size=3, dead_letter_path=tmp_path / "dead.jsonl")
    sink.write(make_alert(0))
    assert receiver.arrived.wait(5)
    for n in range(1, 5):
        sink.write(make_alert(n))
    receiver.release.set()
    assert _wait(lambda: sink.stats()["delivered"] == 5)
    sink.close()
    assert [[a["entity"] for a in body] for body in receiver.delivered] == [
        ["user0"],
        ["user1", "user2", "user3"],
        ["user4"],
    ]


def test_webhook_close_waits_a_bounded_time_and_keeps_the_rest_pending(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    url = f"http://127.0.0.1:{_dead_port()}/alerts"
    sink = WebhookSink(
        url, backoff=30.0, max_backoff=30.0, drain_seconds=0.3, dead_letter_path=dead
    )
    sink.write(make_alert(1))
    sink.write(make_alert(2))
    assert _wait(lambda: len(sink.pending()) == 2 and sink._inflight_attempts == 1)
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 3.0
    # Not tried max_attempts times: kept for the daemon's last checkpoint, not dead-lettered.
    assert [a["id"] for a in sink.pending()] == [make_alert(1).id, make_alert(2).id]
    assert _dead(dead) == []
    sink.write(make_alert(3))  # after close: straight to the dead letters, never lost
    assert [x["alert"]["id"] for x in _dead(dead)][-1] == make_alert(3).id


def test_webhook_restore_requeues_a_previous_runs_pending(
    tmp_path: Path, receiver_factory: Callable[..., WebhookReceiver]
) -> None:
    receiver = receiver_factory([])
    sink = WebhookSink(receiver.url, dead_letter_path=tmp_path / "dead.jsonl")
    sink.restore([make_alert(1).to_dict(), make_alert(2).to_dict()])
    assert _wait(lambda: sink.stats()["delivered"] == 2)
    sink.close()
    assert [a["id"] for a in receiver.delivered] == [make_alert(1).id, make_alert(2).id]


def test_retry_after_header_forms() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    past = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert _retry_after(past) == 0.0
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (_retry_after(future) or 0) <= 120


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_stdout_sink_survives_a_closed_pipe_and_counts_what_it_could_not_write() -> None:
    sink = StdoutSink(_ClosedPipe())
    sink.write(make_alert(1))
    sink.write(make_alert(2))
    sink.flush()
    assert sink.broken
    assert sink.stats() == {"delivered": 0, "failed": 2}

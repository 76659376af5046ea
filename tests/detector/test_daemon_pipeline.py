"""The daemon's two-stage loop (PollPipeline): the same outcome as polling one poll at a time,
failures raised, nothing in flight at a checkpoint."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import detector.daemon as daemon_module
from benchmarks.stream_bench import _config
from detector.config import MAX_READ_AHEAD, parse_config
from detector.daemon import DEAD_LETTER_NAME, Daemon, PollPipeline
from detector.errors import UsageError
from features.online import WindowVector
from tests.detector._support import mixed_stream_lines


def _mixed_lines(tmp_path: Path) -> Path:
    """Generated ECS lines (40 users, 2 days) with bad JSON, a missing field and late lines."""
    return mixed_stream_lines(tmp_path, users=40, days=2, rate=4, seed=11, at=300)[0]


@pytest.fixture
def small_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Daemon:
    """A daemon over the mixed lines reading polls of 100 records (~28 for the file)."""
    monkeypatch.setattr(daemon_module, "_BATCH", 25)
    return Daemon(_config(tmp_path / "work", _mixed_lines(tmp_path)))


def _run(
    work: Path, lines: Path, depth: int | None
) -> tuple[Daemon, list[WindowVector], list[dict[str, Any]], list[dict[str, Any]]]:
    """Consume ``lines``: one poll at a time (``depth`` None) or through a pipeline."""
    daemon = Daemon(_config(work, lines))
    if depth is None:
        while daemon.poll_once():
            pass
    else:
        with PollPipeline(daemon, depth=depth) as pipeline:
            assert pipeline.depth == depth
            while pipeline.advance():
                pass
    daemon.close()
    alerts = [json.loads(line) for line in (work / "alerts.jsonl").read_text().splitlines()]
    dead = [
        json.loads(line) for line in (work / "state" / DEAD_LETTER_NAME).read_text().splitlines()
    ]
    return daemon, daemon.features.flush(), alerts, dead


@pytest.mark.parametrize("depth", [0, 1, 8])
def test_the_pipeline_gives_what_polling_one_at_a_time_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    lines = _mixed_lines(tmp_path)
    # Polls of 100 records: the file takes ~28, so polls queue behind the closing ones.
    monkeypatch.setattr(daemon_module, "_BATCH", 25)
    serial, serial_rest, serial_alerts, serial_dead = _run(tmp_path / "serial", lines, None)
    piped, piped_rest, piped_alerts, piped_dead = _run(tmp_path / "piped", lines, depth)
    assert serial.totals.records["bench"] > 20 * 100
    assert piped.totals.records == serial.totals.records
    assert piped.totals.events == serial.totals.events
    assert (
        dict(piped.totals.dead_letters)
        == dict(serial.totals.dead_letters)
        == {
            ("bench", "bad_json"): 1,
            ("bench", "missing_field"): 1,
            ("bench", "late"): 2,
        }
    )
    assert piped.totals.windows_closed == serial.totals.windows_closed > 40
    assert piped_rest == serial_rest
    # The same alerts with the same ids, in the same order; the dead letters too.
    assert serial_alerts and piped_alerts == serial_alerts
    assert piped_dead == serial_dead


def test_the_handler_runs_on_its_own_thread_and_reading_goes_on_meanwhile(
    small_polls: Daemon,
) -> None:
    daemon = small_polls
    release = threading.Event()
    handled: list[tuple[str, int]] = []
    handle = daemon.handle_poll

    def held_handle(poll: Any) -> None:
        release.wait(timeout=30)
        handled.append((threading.current_thread().name, poll.records))
        handle(poll)

    daemon.handle_poll = held_handle  # type: ignore[method-assign]
    with PollPipeline(daemon, depth=3) as pipeline:
        # Three polls are read while the first is held in the handler.
        read = [pipeline.advance() for _ in range(3)]
        assert all(read) and handled == []
        sample = daemon.registry.get_sample_value
        assert daemon.gauges.polls_in_flight == 3
        release.set()
        pipeline.settle()
        assert sample("baseliner_polls_in_flight") == 0
        assert [records for _, records in handled] == read
        assert {name for name, _ in handled} != {threading.current_thread().name}
        assert all(name.startswith("baseliner-handle") for name, _ in handled)
        assert daemon.totals.records["bench"] == sum(read)
    daemon.close()


def test_a_failed_handling_is_raised_and_the_polls_behind_it_are_not_handled(
    small_polls: Daemon,
) -> None:
    daemon = small_polls
    release = threading.Event()
    handle = daemon.handle_poll
    calls = []

    def failing(poll: Any) -> None:
        calls.append(poll.records)
        if len(calls) == 1:
            release.wait(timeout=30)
            raise OSError("disk gone")
        handle(poll)

    daemon.handle_poll = failing  # type: ignore[method-assign]
    pipeline = PollPipeline(daemon, depth=4)
    for _ in range(3):
        pipeline.advance()
    release.set()
    with pytest.raises(OSError, match="disk gone"):
        pipeline.settle()
    # The two polls queued behind the failed one were dropped, not handled on a broken state.
    assert calls == calls[:1] and daemon.totals.records["bench"] == 0
    # Raised once: nothing is left in flight, and a poll read now is refused in its turn.
    pipeline.settle()
    pipeline.advance()
    with pytest.raises(RuntimeError, match="earlier poll"):
        pipeline.settle()
    assert calls == calls[:1] and daemon.totals.records["bench"] == 0
    pipeline.close()
    daemon.close()


def test_depth_follows_the_cores_the_process_may_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _mixed_lines(tmp_path)
    daemon = Daemon(_config(tmp_path / "work", lines))
    monkeypatch.setattr(daemon_module, "usable_cores", lambda: 1)
    with PollPipeline(daemon) as one_core:
        # One core: each poll handled at once on this thread, nothing left in flight.
        assert one_core.depth == 0
        records = one_core.advance()
        assert daemon.totals.records["bench"] == records > 0
    monkeypatch.setattr(daemon_module, "usable_cores", lambda: 4)
    with PollPipeline(daemon) as four_cores:
        assert four_cores.depth == daemon_module.POLLS_IN_FLIGHT
    with pytest.raises(ValueError, match="0 or more"):
        PollPipeline(daemon, depth=-1)
    daemon.close()


def test_checkpoints_in_run_hold_no_poll_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` settles before each checkpoint: a restart from any of its checkpoints counts
    every line once (the positions saved are those of the events the state holds)."""
    lines = _mixed_lines(tmp_path)
    monkeypatch.setattr(daemon_module, "_BATCH", 25)
    monkeypatch.setattr(daemon_module, "usable_cores", lambda: 2)
    config = replace(_config(tmp_path / "work", lines), checkpoint_seconds=0.0)
    daemon = Daemon(config)
    seen: list[tuple[int, int]] = []
    checkpoint = daemon.checkpoint

    def checked() -> bool:
        # The events the state holds against the lines the saved position has passed.
        source = daemon.sources["bench"]
        seen.append((daemon.totals.records["bench"], source.snapshot().offset))
        if len(seen) == 3:
            daemon.stopping.set()
        return checkpoint()

    daemon.checkpoint = checked  # type: ignore[method-assign]
    daemon.run()
    text = lines.read_bytes()
    for records, offset in seen:
        assert text[:offset].count(b"\n") == records
    assert len(seen) >= 3 and 0 < seen[0][0] < seen[-2][0]


@pytest.mark.parametrize(
    ("value", "depth"), [(None, None), ("auto", None), (0, 0), (3, 3), (MAX_READ_AHEAD, 64)]
)
def test_read_ahead_is_a_number_of_polls_or_auto(
    tmp_path: Path, value: object, depth: int | None
) -> None:
    doc = {
        "daemon": {"state_dir": "state"},
        "source": [{"type": "stdin", "parser": "jsonl"}],
        "sink": [{"type": "stdout"}],
    }
    if value is not None:
        doc["daemon"]["read_ahead"] = value  # type: ignore[index]
    assert parse_config(doc, tmp_path).read_ahead == depth


@pytest.mark.parametrize("value", [-1, 65, True, 2.0, "8", "off"])
def test_read_ahead_refuses_anything_else_with_one_line(tmp_path: Path, value: object) -> None:
    doc = {
        "daemon": {"state_dir": "state", "read_ahead": value},
        "source": [{"type": "stdin", "parser": "jsonl"}],
        "sink": [{"type": "stdout"}],
    }
    with pytest.raises(UsageError) as refused:
        parse_config(doc, tmp_path)
    assert str(refused.value) == (
        f'daemon.read_ahead: {value!r} is not "auto" or a number of polls from 0 to 64'
    )


@pytest.mark.parametrize(("read_ahead", "cores", "depth"), [(None, 2, 8), (None, 1, 0), (0, 2, 0)])
def test_run_reads_ahead_as_configured(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    read_ahead: int | None,
    cores: int,
    depth: int,
) -> None:
    monkeypatch.setattr(daemon_module, "usable_cores", lambda: cores)
    depths: list[int] = []

    class Recorded(PollPipeline):
        def __init__(self, daemon: Daemon, depth: int | None = None) -> None:
            super().__init__(daemon, depth)
            depths.append(self.depth)

    monkeypatch.setattr(daemon_module, "PollPipeline", Recorded)
    config = replace(_config(tmp_path / "work", _mixed_lines(tmp_path)), read_ahead=read_ahead)
    daemon = Daemon(config)
    daemon.stopping.set()  # a stop asked at once: the loop is built, then it ends
    daemon.run()
    assert depths == [depth]

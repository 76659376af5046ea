"""``bench throughput --mode stream`` on a tiny input: it runs and reports every number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.stream_bench import (
    _config,
    _PerRecordParser,
    generate_lines,
    input_path,
    run_stream_throughput_bench,
)
from detector.daemon import DEAD_LETTER_NAME, Daemon
from features.online import WindowVector
from streams.parsers.jsonl import JsonLinesParser
from tests.detector._support import mixed_stream_lines


def test_generated_lines_parse_and_are_cached(tmp_path: Path) -> None:
    path = input_path(tmp_path, 20, 1, 6, 3)
    n = generate_lines(path, users=20, days=1, rate=6, seed=3)
    lines = path.read_text().splitlines()
    assert len(lines) == n > 100
    parser = JsonLinesParser()
    events = [parser.parse(line) for line in lines]
    assert all(e is not None and e.user and e.action for e in events)
    times = [e.ts for e in events if e is not None]
    assert times == sorted(times)
    # Cached: a second call reads the count and leaves the file alone.
    before = path.stat().st_mtime_ns
    assert generate_lines(path, users=20, days=1, rate=6, seed=3) == n
    assert path.stat().st_mtime_ns == before


@pytest.mark.slow
def test_stream_bench_reports_every_number(tmp_path: Path) -> None:
    table = run_stream_throughput_bench(
        tmp_path, users=30, days=1, rate=4, per_record_prefix=300, naive_prefix=300, repeats=1
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert (results["benchmark"], results["mode"]) == ("throughput", "stream")
    daemon = results["daemon"]
    assert daemon["events"] == results["events"] > 500
    assert daemon["windows_closed"] > 0 and daemon["entities"] == 30
    for key in (
        "events_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "feature_state_bytes_per_entity",
        "checkpoint_bytes_per_entity",
        "peak_rss_mb",
        "features_evaluator_seconds",
    ):
        assert key in daemon
    assert daemon["feature_state_bytes_per_entity"] > 0
    assert daemon["cpu_seconds"] > 0 and daemon["events_per_cpu_s"] > 0
    stages = daemon["seconds_by_stage"]
    assert set(stages) == {"read", "parse", "features", "scoring", "sinks", "other"}
    cpu_stages = daemon["cpu_seconds_by_stage"]
    assert set(cpu_stages) == set(stages) and cpu_stages["read"] > 0 and cpu_stages["parse"] > 0
    assert all(seconds >= 0 for name, seconds in stages.items() if name != "other")
    assert 0 < daemon["features_evaluator_seconds"] <= stages["features"]
    assert results["daemon_per_record_prefix"]["events"] >= 300
    assert results["naive_river_hst_prefix"]["events"] == 300
    assert results["ratio_to_naive"] > 0 and results["gain_over_per_record"] > 0
    assert results["cpu_ratio_to_naive"] > 0
    assert "events/s" in table and (tmp_path / "results.md").is_file()


def test_the_daemon_batch_path_gives_what_the_record_path_gives(tmp_path: Path) -> None:
    mixed, n_lines = mixed_stream_lines(tmp_path, users=30, days=2, rate=4, seed=5, at=200)

    def run(work: Path, per_record: bool) -> tuple[Daemon, list[WindowVector]]:
        daemon = Daemon(_config(work, mixed))
        if per_record:
            daemon.parsers["bench"] = _PerRecordParser(daemon.parsers["bench"])  # type: ignore[assignment]
        while daemon.poll_once():
            pass
        daemon.close()
        return daemon, daemon.features.flush()

    batched, batched_rest = run(tmp_path / "batched", per_record=False)
    single, single_rest = run(tmp_path / "single", per_record=True)
    assert batched.totals.events == single.totals.events
    assert batched.totals.dead_letters == single.totals.dead_letters
    assert dict(batched.totals.dead_letters) == {
        ("bench", "bad_json"): 1,
        ("bench", "missing_field"): 1,
        ("bench", "late"): 2,
    }
    assert batched.totals.windows_closed == single.totals.windows_closed > 30
    assert batched_rest == single_rest

    def read(path: Path) -> list[dict[str, object]]:
        return sorted((json.loads(line) for line in path.read_text().splitlines()), key=str)

    assert read(tmp_path / "batched" / "alerts.jsonl") == read(tmp_path / "single" / "alerts.jsonl")
    dead = read(tmp_path / "batched" / "state" / DEAD_LETTER_NAME)
    assert dead == read(tmp_path / "single" / "state" / DEAD_LETTER_NAME)
    assert sorted(int(str(d["line"])) for d in dead) == [201, 203, 204, n_lines]

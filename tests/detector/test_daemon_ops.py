"""Operating the daemon: entity-state limits, a clean stop with a webhook down, counters,
``/healthz``, secrets kept out of the logs, stale checkpoint temporaries."""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import DaemonConfig, parse_config
from detector.daemon import Daemon
from detector.errors import UsageError
from detector.metrics import DaemonTotals, serve_metrics
from detector.sinks import WebhookSink
from tests.detector._support import WebhookReceiver, append_lines, drain, make_alert
from tests.detector.test_daemon_guards import _config, _doc, _logons


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused


def _wait(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


# -- entity state: a default cap and idle expiry -----------------------------------------------


def test_entity_state_is_bounded_by_default() -> None:
    config = DaemonConfig(state_dir=Path("state"))
    assert (config.max_entities, config.idle_expiry) == (100_000, timedelta(days=30))


def test_idle_expiry_and_the_cap_can_be_set_or_switched_off(tmp_path: Path) -> None:
    config = _config(tmp_path, idle_expiry="3d", max_entities=50)
    assert (config.idle_expiry, config.max_entities) == (timedelta(days=3), 50)
    config = _config(tmp_path, idle_expiry="off", max_entities=0)
    assert (config.idle_expiry, config.max_entities) == (None, None)
    run = Daemon(_config(tmp_path, idle_expiry="3d"))
    assert run.features.idle_expiry == timedelta(days=3)
    assert run.features.max_entities == 100_000
    run.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12h", "daemon.idle_expiry: '12h' is shorter than a window (1d)"),
        ("soon", "daemon.idle_expiry: 'soon' is not a duration"),
    ],
)
def test_a_bad_idle_expiry_is_refused_by_name(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        _config(tmp_path, idle_expiry=value)


def test_an_idle_entity_is_forgotten_by_the_features_and_the_scorer(tmp_path: Path) -> None:
    log = tmp_path / "logon.csv"
    append_lines(log, _logons(0, 2))  # U0 is seen on days 0 and 1 only
    later = [line for line in _logons(2, 6) if ",U0," not in line]
    append_lines(log, later[:10])  # day 2 starts: days 0 and 1 close
    run = Daemon(_config(tmp_path, idle_expiry="2d"))
    drain(run)
    assert run.scorer.learnt_windows("U0") > 0
    assert run.features.expirations == 0
    append_lines(log, later[10:])  # up to day 7: U0 idle for more than two days
    drain(run)
    assert run.features.expirations == 1
    assert run.features.entities == 7
    assert run.scorer.learnt_windows("U0") == 0  # forgotten, as an evicted entity is
    assert run.scorer.learnt_windows("U1") > 0
    assert run.registry.get_sample_value("baseliner_expirations_total") == 1
    run.close()


def test_a_checkpoint_without_a_cap_takes_the_default_one_on_resume(tmp_path: Path) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 4))
    first = Daemon(_config(tmp_path, max_entities=0, idle_expiry="off"))
    drain(first)
    assert not first.features.tracks_recency
    first.checkpoint()
    first.close()
    resumed = Daemon(_config(tmp_path, max_entities=3, idle_expiry="20d"))
    assert resumed.features.tracks_recency
    assert (resumed.features.max_entities, resumed.features.idle_expiry) == (3, timedelta(days=20))
    append_lines(tmp_path / "logon.csv", _logons(4, 2))
    drain(resumed)
    # Eight users under a cap of three: five histories evicted when a day closes.
    assert resumed.features.entities == 3
    assert resumed.features.evictions >= 5
    resumed.close()


# -- a clean stop with the webhook down ---------------------------------------------------------


def _webhook_doc(url: str) -> dict[str, Any]:
    doc = _doc(checkpoint_seconds=60, poll_seconds=0.05)
    doc["sink"] = [{"type": "webhook", "url": url, "backoff": 30.0, "drain_seconds": 0.2}]
    return doc


def _run_until_stopped(run: Daemon, after: float) -> None:
    timer = threading.Timer(after, run.stopping.set)
    timer.start()
    try:
        run.run()
    finally:
        timer.cancel()


def test_sigterm_keeps_undelivered_webhook_alerts_for_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logon.csv").touch()
    run = Daemon(parse_config(_webhook_doc(f"http://127.0.0.1:{_dead_port()}/hook"), tmp_path))
    alerts = [make_alert(n, "high") for n in range(3)]
    for alert in alerts:
        run._emit(alert)
    _run_until_stopped(run, 0.3)  # the webhook refuses: nothing delivered in the drain
    assert not (tmp_path / "state/sink1-dead-letters.jsonl").exists()
    receiver = WebhookReceiver([])
    try:
        again = Daemon(parse_config(_webhook_doc(receiver.url), tmp_path))
        assert _wait(lambda: len(receiver.delivered) == 3)
        again.close()
    finally:
        receiver.close()
    assert [a["id"] for a in receiver.delivered] == [a.id for a in alerts]
    capsys.readouterr()


def test_an_alert_that_used_up_its_attempts_is_still_dead_lettered(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    url = f"http://127.0.0.1:{_dead_port()}/hook"
    sink = WebhookSink(url, max_attempts=2, backoff=0.01, dead_letter_path=dead)
    sink.write(make_alert(1))
    assert _wait(lambda: sink.stats()["dead_lettered"] == 1)
    sink.close()
    assert [orjson.loads(x)["attempts"] for x in dead.read_bytes().splitlines()] == [2]
    assert sink.pending() == []


# -- counters -----------------------------------------------------------------------------------

AUTH_LINES = [
    "2024-01-05T10:00:00Z web1 sshd[42]: Accepted password for alice from 10.0.0.5 port 5000 ssh2",
    "2024-01-05T10:01:00Z web1 CRON[7]: pam_unix(cron:session): session opened for user root",
    "2024-01-05T10:02:00Z web1 CRON[7]: pam_unix(cron:session): session closed for user root",
    "garbage line",
]


def test_records_read_and_records_not_modelled_are_counted_per_source(tmp_path: Path) -> None:
    append_lines(tmp_path / "auth.log", AUTH_LINES)
    doc = _doc()
    doc["source"] = [{"name": "auth", "type": "file", "path": "auth.log", "parser": "linux.auth"}]
    run = Daemon(parse_config(doc, tmp_path))
    drain(run)
    sample = run.registry.get_sample_value
    assert sample("baseliner_records_total", {"source": "auth"}) == 4
    assert sample("baseliner_events_total", {"source": "auth"}) == 1
    assert sample("baseliner_dead_letters_total", {"source": "auth", "reason": "bad_header"}) == 1
    assert sample("baseliner_records_skipped_total", {"source": "auth"}) == 2
    run.close()


def test_batch_parsers_count_records_and_late_events_are_not_skipped(tmp_path: Path) -> None:
    lines = _logons(0, 2)
    late = lines[0].replace("{U0-0-0}", "{late}")  # day 0 again once day 1 closed day 0
    append_lines(tmp_path / "logon.csv", [*lines, late, "not,a,logon"])
    run = Daemon(_config(tmp_path))
    drain(run)
    assert run.totals.records["logon"] == len(lines) + 2
    assert run.totals.dead_letters["logon", "late"] == 1
    assert run.totals.dead_letters["logon", "wrong_field_count"] == 1
    assert run.totals.skipped["logon"] == 0
    run.close()


def test_alerts_are_counted_by_detector_and_severity(tmp_path: Path) -> None:
    (tmp_path / "logon.csv").touch()
    run = Daemon(_config(tmp_path))
    run._emit(make_alert(1, "high"))
    run._emit(make_alert(2, "high"))
    run._emit(make_alert(3, "critical"))
    sample = run.registry.get_sample_value
    assert sample("baseliner_alerts_total", {"detector": "count_tail", "severity": "high"}) == 2
    assert sample("baseliner_alerts_total", {"detector": "count_tail", "severity": "critical"}) == 1
    run.close()


def test_totals_of_an_earlier_checkpoint_gain_the_new_counters() -> None:
    old = DaemonTotals()
    del old.__dict__["records"], old.__dict__["skipped"]
    old.alerts = Counter({"high": 2})  # type: ignore[dict-item]  # keyed by severity alone
    restored = pickle.loads(pickle.dumps(old))  # as a checkpoint of an earlier run holds it
    restored.adopt_detector("robust_window")
    assert restored.records == Counter() and restored.skipped == Counter()
    assert restored.alerts == Counter({("robust_window", "high"): 2})


# -- /healthz -----------------------------------------------------------------------------------


def _healthz(run: Daemon) -> tuple[int, dict[str, Any]]:
    server = serve_metrics(run.registry, "127.0.0.1", 0, run.health)
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())
    finally:
        server.shutdown()
        server.server_close()


def test_healthz_says_what_it_checked(tmp_path: Path) -> None:
    (tmp_path / "logon.csv").touch()
    run = Daemon(_config(tmp_path))
    run._heartbeat = time.monotonic()
    status, body = _healthz(run)
    assert status == 200
    assert body["status"] == "ok" and body["problems"] == []
    assert set(body["checks"]) == {
        "loop_seconds_ago",
        "checkpoint_seconds_ago",
        "last_checkpoint_failed",
    }
    run.close()


def test_healthz_is_unhealthy_when_the_loop_is_stuck(tmp_path: Path) -> None:
    (tmp_path / "logon.csv").touch()
    run = Daemon(_config(tmp_path, poll_seconds=0.5))
    run.health_margin = 1.0
    run._heartbeat = time.monotonic() - 10.0  # limit: 3 x 0.5 + 1 = 2.5 s
    status, body = _healthz(run)
    assert status == 503 and body["status"] == "unhealthy"
    assert body["problems"] == ["main loop has not turned for 10s (limit 2s)"]
    run.close()


def test_healthz_is_unhealthy_after_a_failed_or_a_late_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logon.csv").touch()
    run = Daemon(_config(tmp_path, checkpoint_seconds=1))
    run.health_margin = 1.0
    run._heartbeat = time.monotonic()

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("detector.daemon.write_atomically", disk_full)
    assert run.checkpoint() is False
    assert run.health() == (
        False,
        {
            "checks": {
                "loop_seconds_ago": pytest.approx(0, abs=1),
                "checkpoint_seconds_ago": pytest.approx(0, abs=1),
                "last_checkpoint_failed": True,
            },
            "problems": ["the last checkpoint failed (see the log)"],
        },
    )
    monkeypatch.undo()
    assert run.checkpoint() is True
    assert run.health()[0] is True
    run.gauges.last_checkpoint -= 10  # limit: 3 x 1 + 1 = 4 s
    healthy, detail = run.health()
    assert not healthy
    assert detail["problems"] == ["no checkpoint for 10s (limit 4s)"]
    run.close()


def test_healthz_is_unhealthy_when_a_listener_thread_has_died(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [
        {"name": "udp", "type": "syslog_udp", "listen": "127.0.0.1:0", "parser": "linux.auth"}
    ]
    run = Daemon(parse_config(doc, tmp_path))
    run._heartbeat = time.monotonic()
    assert run.health()[1]["checks"]["listeners_alive"] == {"udp": True}
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join(5)
    listener = run.sources["udp"]
    alive, listener._thread = listener._thread, dead  # type: ignore[attr-defined]
    status, body = _healthz(run)
    assert status == 503
    assert body["problems"] == ["source udp: listener thread has died"]
    listener._thread = alive  # type: ignore[attr-defined]
    run.close()


# -- secrets in the logs ------------------------------------------------------------------------


def test_the_webhook_url_token_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _dead_port()
    url = f"http://user:pw@127.0.0.1:{port}/hook?token=SECRET"
    sink = WebhookSink(url, max_attempts=2, backoff=0.01, dead_letter_path=tmp_path / "d.jsonl")
    with caplog.at_level(logging.INFO, logger="detector.sinks"):
        sink.write(make_alert(1))
        assert _wait(lambda: sink.stats()["dead_lettered"] == 1)
        sink.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("attempt 2" in m for m in messages)
    assert any("dead-lettered" in m for m in messages)
    for message in messages:
        assert "SECRET" not in message and "pw" not in message and "/hook" not in message
        assert f"http://127.0.0.1:{port}" in message


# -- temporary files of interrupted checkpoint writes ------------------------------------------


def test_temporaries_of_interrupted_checkpoint_writes_are_removed_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "logon.csv").touch()
    for name in (".checkpoint.bin.jrp3xnio", ".checkpoint.bin.yrxa447l", ".checkpoint.bin.mine"):
        (state / name).write_bytes(b"half a checkpoint")
    run = Daemon(_config(tmp_path))
    assert sorted(os.listdir(state)) == [".checkpoint.bin.mine", "dead_letters.jsonl"]
    run.close()


def test_the_retry_log_line_gives_the_wait_actually_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{_dead_port()}/hook"
    sink = WebhookSink(
        url, max_attempts=2, backoff=30.0, max_backoff=0.05, dead_letter_path=tmp_path / "d"
    )
    with caplog.at_level(logging.INFO, logger="detector.sinks"):
        sink.write(make_alert(1))
        assert _wait(lambda: sink.stats()["dead_lettered"] == 1)
        sink.close()
    assert any(r.getMessage().endswith("attempt 2 in 0.05s") for r in caplog.records)

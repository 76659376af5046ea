"""The daemon loop in-process: scoring, explanations, late events, crash replay."""

from __future__ import annotations

import errno
import shutil
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector import __version__
from detector.cli import main
from detector.config import DaemonConfig, load_config, parse_config
from detector.daemon import Daemon
from features.batch import spec_schema_hash
from features.catalog import default_specs
from features.spec import WindowConfig
from models.store import read_header, save_model
from tests.detector._support import append_lines, drain, make_alert

START = datetime(2010, 1, 4, 8, 0)


def _logons(first_day: int, days: int, burst_day: int = 12) -> list[str]:
    lines = []
    for day in range(first_day, first_day + days):
        for user in ("U1", "U2", "U3"):
            count = 30 if (user == "U3" and day == burst_day) else 3
            for k in range(count):
                stamp = (START + timedelta(days=day, minutes=10 * k)).strftime("%m/%d/%Y %H:%M:%S")
                lines.append(f"{{{user}-{day}-{k}}},{stamp},{user},PC-{user},Logon")
    return lines


def _config(folder: Path) -> DaemonConfig:
    return parse_config(
        {
            "daemon": {
                "state_dir": "state",
                "budget": "1/day",
                "expected_entities": 3,
                "warmup_windows": 5,
                "allowed_lateness": "1h",
            },
            "source": [
                {"name": "logon", "type": "file", "path": "logon.csv", "parser": "cert.logon"}
            ],
            "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
        },
        folder,
    )


def test_burst_alerts_with_an_explanation(tmp_path: Path) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 15))
    run = Daemon(_config(tmp_path))
    drain(run)
    run.close()
    assert run.totals.events["logon"] == 15 * 9 + 27
    assert run.totals.windows_closed == 14 * 3
    alerts = [orjson.loads(x) for x in (tmp_path / "alerts.jsonl").open("rb")]
    burst = [
        a for a in alerts if a["entity"] == "U3" and a["window_start"].startswith("2010-01-16")
    ]
    assert len(burst) == 1
    logons = next(d for d in burst[0]["explanation"] if d["feature"] == "logons")
    # U3 logged on 3 times on each of the 12 earlier days: typical exactly 3, observed 30.
    assert (logons["observed"], logons["typical"]) == (30, 3)
    assert logons["text"] == "30 logons (typical 3)"
    assert burst[0]["severity"] in {"low", "medium", "high", "critical"}


def test_late_event_is_dead_lettered(tmp_path: Path) -> None:
    lines = _logons(0, 3)
    late = "{late},01/04/2010 09:00:00,U1,PC-U1,Logon"  # day 0, two days behind
    append_lines(tmp_path / "logon.csv", [*lines, late])
    run = Daemon(_config(tmp_path))
    drain(run)
    run.close()
    assert run.totals.late_events == 1
    assert dict(run.totals.dead_letters) == {("logon", "late"): 1}
    dead = orjson.loads((tmp_path / "state/dead_letters.jsonl").read_bytes())
    assert (dead["line"], dead["reason"], dead["raw"]) == (len(lines) + 1, "late", late)


def test_replay_after_a_crash_neither_duplicates_alerts_nor_loses_events(tmp_path: Path) -> None:
    log = tmp_path / "logon.csv"
    append_lines(log, _logons(0, 8))
    first = Daemon(_config(tmp_path))
    drain(first)
    first.checkpoint()
    saved = tmp_path / "checkpoint.saved"
    shutil.copy(tmp_path / "state/checkpoint.bin", saved)
    append_lines(log, _logons(8, 8))
    drain(first)  # the burst alert is written, then the process "crashes": no checkpoint
    first.close()
    before = (tmp_path / "alerts.jsonl").read_bytes()
    assert b'"entity":"U3"' in before
    shutil.copy(saved, tmp_path / "state/checkpoint.bin")

    replay = Daemon(_config(tmp_path))
    assert replay.totals.events["logon"] == 8 * 9
    drain(replay)
    replay.close()
    assert replay.totals.events["logon"] == 16 * 9 + 27
    assert (tmp_path / "alerts.jsonl").read_bytes() == before


# -- checkpoints, sinks, metrics ------------------------------------------------------------


def test_a_failed_checkpoint_is_counted_and_the_daemon_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 2))
    run = Daemon(_config(tmp_path))
    drain(run)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("detector.daemon.write_atomically", disk_full)
    assert run.checkpoint() is False
    assert not (tmp_path / "state/checkpoint.bin").exists()
    append_lines(tmp_path / "logon.csv", _logons(2, 1))
    drain(run)  # still processing
    assert run.totals.events["logon"] == 27
    monkeypatch.undo()
    assert run.checkpoint() is True
    sample = run.registry.get_sample_value
    assert sample("baseliner_checkpoint_failures_total") == 1
    assert sample("baseliner_checkpoints_total") == 1
    size = (tmp_path / "state/checkpoint.bin").stat().st_size
    assert sample("baseliner_checkpoint_bytes") == size
    run.close()


def test_parsers_with_learnt_state_are_restored_from_the_checkpoint(tmp_path: Path) -> None:
    lines = [f"2024-01-0{d}T10:00:00Z disk {d} of host{d} is full" for d in range(1, 4)]
    append_lines(tmp_path / "app.log", lines)
    doc: dict[str, Any] = {
        "daemon": {"state_dir": "state"},
        "source": [{"name": "app", "type": "file", "path": "app.log", "parser": "drain"}],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }
    first = Daemon(parse_config(doc, tmp_path))
    drain(first)
    learnt = first.parsers["app"].templates()  # type: ignore[attr-defined]
    assert learnt == {1: "disk <NUM> of <*> is full"}
    first.checkpoint()
    first.close()
    restored = Daemon(parse_config(doc, tmp_path))
    assert restored.parsers["app"].templates() == learnt  # type: ignore[attr-defined]
    restored.close()
    # Other parser options: the saved parser does not fit them, a new one is built.
    doc["source"][0]["parser_options"] = {"sim_th": 0.9}
    changed = Daemon(parse_config(doc, tmp_path))
    assert changed.parsers["app"].templates() == {}  # type: ignore[attr-defined]
    changed.close()


def test_webhook_pending_alerts_survive_a_crash_through_the_checkpoint(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    doc: dict[str, Any] = {
        "daemon": {"state_dir": "state"},
        "source": [{"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
        "sink": [
            {
                "type": "webhook",
                "url": f"http://127.0.0.1:{dead_port}/hook",
                "backoff": 30.0,
                "drain_seconds": 0.2,
            }
        ],
    }
    first = Daemon(parse_config(doc, tmp_path))
    for n in range(3):
        first._emit(make_alert(n, "high"))
    first.checkpoint()
    first.sinks["sink1"]._abort.set()  # type: ignore[attr-defined]  # the process dies
    restored = Daemon(parse_config(doc, tmp_path))
    waiting = [a["id"] for a in restored.sinks["sink1"].pending()]
    assert waiting == [make_alert(n, "high").id for n in range(3)]
    restored.close()  # cannot deliver: still pending (for a last checkpoint), not dead-lettered
    assert [a["id"] for a in restored.sinks["sink1"].pending()] == waiting
    assert not (tmp_path / "state/sink1-dead-letters.jsonl").exists()


def test_metrics_of_a_network_source_the_sinks_latency_and_state(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "daemon": {"state_dir": "state"},
        "source": [
            {"name": "udp", "type": "syslog_udp", "listen": "127.0.0.1:0", "parser": "linux.auth"}
        ],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }
    run = Daemon(parse_config(doc, tmp_path))
    address = run.sources["udp"].address  # type: ignore[attr-defined]
    line = (
        "<38>1 2024-01-05T10:00:00Z web1 sshd 42 - -"
        " Accepted password for alice from 10.0.0.5 port 5000 ssh2"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(line.encode(), address)
        sender.sendto(b"<38>not an auth line at all", address)
    deadline = time.monotonic() + 5
    while run.totals.events["udp"] + sum(run.totals.dead_letters.values()) < 2:
        run.poll_once()
        assert time.monotonic() < deadline, "datagrams not received"
        time.sleep(0.01)
    sample = run.registry.get_sample_value
    assert sample("baseliner_source_received_total", {"source": "udp"}) == 2
    assert sample("baseliner_source_dropped_total", {"source": "udp"}) == 0
    assert sample("baseliner_source_queue_depth", {"source": "udp"}) == 0
    assert sample("baseliner_source_lag_bytes", {"source": "udp"}) == 0
    assert sample("baseliner_events_total", {"source": "udp"}) == 1
    assert sample("baseliner_state_bytes", {"part": "features"}) > 0
    # An alert written 0.3 s after its batch was read: in the 0.5 s bucket, not the 0.25 one.
    run._batch_arrival = time.monotonic() - 0.3
    run._emit(make_alert(1, "high"))
    run._emit(make_alert(1, "high"))  # already emitted: not written nor counted again
    assert sample("baseliner_alerts_total", {"detector": "count_tail", "severity": "high"}) == 1
    assert sample("baseliner_sink_delivered_total", {"sink": "sink1", "type": "jsonl"}) == 1
    assert sample("baseliner_alert_latency_seconds_count") == 1
    assert sample("baseliner_alert_latency_seconds_bucket", {"le": "0.25"}) == 0
    assert sample("baseliner_alert_latency_seconds_bucket", {"le": "0.5"}) == 1
    p50 = sample("baseliner_alert_latency_quantile_seconds", {"quantile": "0.5"})
    assert 0.3 <= p50 < 0.5
    assert run.alert_latency()["p99"] == p50
    run.close()


def _cli_config(folder: Path, window: str) -> Path:
    path = folder / "baseliner.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "state"\nwindow = "{window}"\nmetrics_address = "127.0.0.1:0"\n'
        '[[source]]\ntype = "file"\npath = "logon.csv"\nparser = "cert.logon"\n'
    )
    return path


def _run_cli(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["run", "--config", str(config)])
    return code, capsys.readouterr().err.splitlines()


def test_a_checkpoint_of_another_schema_stops_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cli_config(tmp_path, "1d")
    daily = Daemon(load_config(config))
    daily.checkpoint()
    daily.close()
    path = tmp_path / "state/checkpoint.bin"
    saved = read_header(path.read_bytes())["schema_hash"]
    hourly = spec_schema_hash(default_specs("user"), WindowConfig(entity="user", window="1h"))
    assert saved != hourly
    code, err = _run_cli(_cli_config(tmp_path, "1h"), capsys)
    assert code == 2
    assert err == [
        f"baseliner: error: checkpoint {path} was written with feature schema {saved[:12]}.."
        f" but the config gives {hourly[:12]}..; move it away or start with a new state_dir"
    ]


def test_a_checkpoint_of_another_major_version_stops_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cli_config(tmp_path, "1d")
    schema = spec_schema_hash(default_specs("user"), WindowConfig(entity="user", window="1d"))
    path = tmp_path / "state/checkpoint.bin"
    path.parent.mkdir()
    metadata = {"kind": "daemon-checkpoint", "baseliner_version": "7.2.0"}
    save_model(path, {}, schema_hash=schema, metadata=metadata)
    code, err = _run_cli(config, capsys)
    assert code == 2
    assert err == [
        f"baseliner: error: checkpoint {path} was written by baseliner 7.2.0 but this is"
        f" baseliner {__version__} (another major version);"
        " move it away or start with a new state_dir"
    ]


def test_a_checkpoint_of_the_per_cell_feature_state_stops_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints before the columnar features carry no state layout: layout 1."""
    config = _cli_config(tmp_path, "1d")
    schema = spec_schema_hash(default_specs("user"), WindowConfig(entity="user", window="1d"))
    path = tmp_path / "state/checkpoint.bin"
    path.parent.mkdir()
    metadata = {"kind": "daemon-checkpoint", "baseliner_version": __version__}
    save_model(path, {}, schema_hash=schema, metadata=metadata)
    code, err = _run_cli(config, capsys)
    assert code == 2
    assert err == [
        f"baseliner: error: checkpoint {path} holds daemon state layout 1 (baseliner"
        f" {__version__}) but this build reads layout 2;"
        " move it away or start with a new state_dir"
    ]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"\x00\x01garbage", "is corrupt (no baseliner envelope header)"),
        (lambda data: data[:-10], "is unusable (payload is"),
        (lambda data: data[:-10] + b"X" * 10, "is unusable (payload SHA-256"),
    ],
)
def test_a_corrupt_checkpoint_stops_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, reason: str
) -> None:
    config = _cli_config(tmp_path, "1d")
    first = Daemon(load_config(config))
    first.checkpoint()
    first.close()
    path = tmp_path / "state/checkpoint.bin"
    path.write_bytes(damage(path.read_bytes()))
    code, err = _run_cli(config, capsys)
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"baseliner: error: checkpoint {path} {reason}"), err[0]
    assert err[0].endswith("; move it away or start with a new state_dir")


def test_a_model_file_in_place_of_the_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cli_config(tmp_path, "1d")
    path = tmp_path / "state/checkpoint.bin"
    path.parent.mkdir()
    save_model(path, [1], schema_hash="x", metadata={"detector": "iforest"})
    code, err = _run_cli(config, capsys)
    assert code == 2
    assert err == [
        f"baseliner: error: checkpoint {path} is a model file, not a daemon checkpoint;"
        " move it away or start with a new state_dir"
    ]


def test_ports_already_taken_stop_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "baseliner.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "state"\nmetrics_address = "127.0.0.1:{port}"\n'
            '[[source]]\nname = "tcp"\ntype = "syslog_tcp"\nlisten = "127.0.0.1:0"\n'
            'parser = "linux.auth"\n'
        )
        code, err = _run_cli(config, capsys)
        assert code == 2
        assert len(err) == 1
        assert err[0].startswith(
            f"baseliner: error: daemon.metrics_address: cannot serve on 127.0.0.1:{port}:"
        )
        config.write_text(
            '[daemon]\nstate_dir = "state"\nmetrics_address = "127.0.0.1:0"\n'
            f'[[source]]\nname = "tcp"\ntype = "syslog_tcp"\nlisten = "127.0.0.1:{port}"\n'
            'parser = "linux.auth"\n'
        )
        code, err = _run_cli(config, capsys)
        assert code == 2
        assert err == [
            f"baseliner: error: source tcp: cannot listen on 127.0.0.1:{port}:"
            " Address already in use"
        ]

"""The network sources' record numbers continue across a daemon restart (dead-letter positions)."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from detector.config import parse_config
from detector.daemon import DEAD_LETTER_NAME, Daemon


def _config_doc() -> dict[str, Any]:
    return {
        "daemon": {"state_dir": "state", "metrics_address": "127.0.0.1:0"},
        "source": [
            {
                "name": "tcp",
                "type": "syslog_tcp",
                "listen": "127.0.0.1:0",
                "parser": "linux.auth",
            },
            {"name": "http", "type": "http", "listen": "127.0.0.1:0", "parser": "jsonl"},
        ],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }


def _feed(daemon: Daemon, tcp_payload: bytes, letters_expected: int) -> None:
    """Send syslog lines no parser accepts and one bad JSON body; poll until all are letters."""
    with socket.create_connection(daemon.sources["tcp"].address, timeout=5) as conn:  # type: ignore[attr-defined]
        conn.sendall(tcp_payload)
    host, port = daemon.sources["http"].address  # type: ignore[attr-defined]
    request = urllib.request.Request(f"http://{host}:{port}/ingest", data=b"not json\n")
    urllib.request.urlopen(request, timeout=5).read()
    deadline = time.monotonic() + 20
    while sum(daemon.totals.dead_letters.values()) < letters_expected:
        daemon.poll_once()
        assert time.monotonic() < deadline, daemon.totals.dead_letters
        time.sleep(0.01)


def test_dead_letter_positions_continue_after_a_restart(tmp_path: Path) -> None:
    config = parse_config(_config_doc(), tmp_path)
    daemon = Daemon(config)
    _feed(daemon, b"<38>not auth\n<38>not auth either\n", 3)
    daemon.checkpoint()
    daemon.close()

    daemon = Daemon(config)
    # The totals are restored from the checkpoint: 3 before, 2 more now.
    _feed(daemon, b"<38>third\n", 5)
    sample = daemon.registry.get_sample_value
    # The new source counters are exported (zero here: nothing was refused or timed out).
    assert sample("baseliner_source_connections_refused_total", {"source": "tcp"}) == 0
    assert sample("baseliner_source_idle_timeouts_total", {"source": "tcp"}) == 0
    assert sample("baseliner_source_rejected_total", {"source": "http", "reason": "timeout"}) == 0
    daemon.close()

    lines = (tmp_path / "state" / DEAD_LETTER_NAME).read_bytes().splitlines()
    positions = sorted((letter["source"], letter["line"]) for letter in map(orjson.loads, lines))
    assert positions == [("http", 1), ("http", 2), ("tcp", 1), ("tcp", 2), ("tcp", 3)]

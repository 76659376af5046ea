"""``baseliner run --check-config`` refuses what would fail or misbehave at run time, by key."""

from __future__ import annotations

import re
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import parse_config
from detector.daemon import Daemon
from detector.errors import UsageError
from detector.metrics import serve_metrics
from tests.detector.test_daemon_guards import _doc


def _refused(folder: Path, doc: dict[str, Any]) -> str:
    with pytest.raises(UsageError) as caught:
        parse_config(doc, folder)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- an IPv6 metrics address -------------------------------------------------------------------


def test_an_ipv6_metrics_address_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logon.csv").touch()
    config = parse_config(_doc(metrics_address="[::1]:0"), tmp_path)
    assert config.metrics_host_port == ("[::1]", 0)
    server = serve_metrics(Daemon(config).registry, *config.metrics_host_port, lambda: True)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as response:
            assert b"baseliner_events_total" in response.read()
    finally:
        server.shutdown()
        server.server_close()
    run = Daemon(config)
    timer = threading.Timer(0.3, run.stopping.set)
    timer.start()
    run.run()
    timer.cancel()
    line = capsys.readouterr().err.splitlines()[0]
    assert re.search(r"metrics on http://\[::1\]:\d+/metrics$", line), line


def test_a_malformed_ipv6_metrics_address_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, _doc(metrics_address="[::zz]:9108"))
    assert message == "daemon.metrics_address: '[::zz]:9108' is not HOST:PORT (IPv6: [::1]:9108)"


def test_an_ipv6_listener_is_bracketed_in_the_start_up_line(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [{"type": "syslog_udp", "listen": "[::1]:0", "parser": "linux.auth"}]
    run = Daemon(parse_config(doc, tmp_path))
    assert re.search(r"\(syslog_udp on \[::1\]:\d+, linux\.auth\)", run.describe("m"))
    run.close()


# -- one file read or written twice -------------------------------------------------------------


def test_one_file_as_two_sources_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [
        {"type": "file", "path": "a.log", "parser": "linux.auth"},
        {"type": "file", "path": "./a.log", "parser": "linux.auth"},
    ]
    assert _refused(tmp_path, doc) == (
        f"source[2].path: {tmp_path / 'a.log'} is the same file as source[1].path"
        " (each line would be counted twice)"
    )


def test_a_file_source_inside_a_glob_source_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [
        {"type": "glob", "path": "logs/*.log", "parser": "linux.auth"},
        {"type": "file", "path": "logs/a.log", "parser": "linux.auth"},
    ]
    assert _refused(tmp_path, doc).startswith("source[2].path: ")
    assert "is also matched by source[1].path" in _refused(tmp_path, doc)
    doc["source"][1]["path"] = "logs/sub/a.log"  # not matched: * stops at a slash
    parse_config(doc, tmp_path)


def test_two_sinks_on_one_file_are_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["sink"] = [
        {"type": "jsonl", "path": "alerts.jsonl"},
        {"type": "jsonl", "path": "out/../alerts.jsonl"},
    ]
    (tmp_path / "out").mkdir()
    assert _refused(tmp_path, doc) == (
        f"sink[2].path: {tmp_path / 'out/../alerts.jsonl'} is the same file as sink[1].path"
    )


# -- the allow-list, detector parameters, peers -------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            'feature = "new_web_domain"',
            "unknown feature 'new_web_domain' (did you mean new_web_domains",
        ),
        ('detector = "nope"', "unknown detector 'nope' (one of cad, cad_dual, context, copod,"),
    ],
)
def test_an_allow_list_entry_naming_nothing_is_refused(
    tmp_path: Path, entry: str, message: str
) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text(
        '[[allow]]\nentity = "ann"\nreason = "ok"\n\n'
        f'[[allow]]\nentity = "bob"\nreason = "typo"\n{entry}\n'
    )
    refused = _refused(tmp_path, _doc(allowlist="allow.toml"))
    assert refused.startswith(f"daemon.allowlist: {allow}: entry 2: {message}")


def test_known_features_and_detectors_pass(tmp_path: Path) -> None:
    (tmp_path / "allow.toml").write_text(
        '[[allow]]\nentity = "ann"\nreason = "ok"\nfeature = "new_web_domains"\ndetector = "tail"\n'
    )
    parse_config(_doc(allowlist="allow.toml"), tmp_path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "x"}, "daemon.detector_params.window: must be an int, got 'x'"),
        ({"min_scale": True}, "daemon.detector_params.min_scale: must be a float, got True"),
        (
            {"top_k": 2, "window": 0},
            "daemon.detector_params.window: window, min_history and top_k must be >= 1",
        ),
        (
            {"nope": 1},
            "daemon.detector_params.nope: not a parameter of detector 'robust_window'"
            " (parameters: window, min_history, top_k, min_scale, log1p, seed)",
        ),
    ],
)
def test_a_bad_detector_parameter_is_named(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    assert _refused(tmp_path, _doc(detector_params=params)) == message


def test_a_missing_peers_file_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "baseliner.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\npeers = "nope.csv"\n\n'
        '[[source]]\ntype = "file"\npath = "a.log"\nparser = "linux.auth"\n'
    )
    assert main(["run", "--config", str(config), "--check-config"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"baseliner: error: config {config}: daemon.peers: peers not found: {tmp_path / 'nope.csv'}"
    ]

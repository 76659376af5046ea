"""The daemon rereads its allow-list (SIGHUP, or the file changed) without a restart."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from detector.config import DaemonConfig, parse_config
from detector.daemon import Daemon
from tests.detector._support import append_lines, drain
from tests.detector.test_daemon import _config as logon_config
from tests.detector.test_daemon import _logons

MUTE_U3 = '[[allow]]\nentity = "U3"\nreason = "load test"\n'


def _config(folder: Path) -> DaemonConfig:
    """test_daemon's config (3 users, budget 1/day) with ``allow.toml`` as its allow-list."""
    return replace(logon_config(folder), allowlist=folder / "allow.toml")


def _alerted(folder: Path, entity: str) -> list[str]:
    path = folder / "alerts.jsonl"
    alerts = [orjson.loads(x) for x in path.open("rb")] if path.exists() else []
    return [a["window_start"][:10] for a in alerts if a["entity"] == entity]


def test_a_reread_allow_list_mutes_from_then_on(tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text(MUTE_U3)
    append_lines(tmp_path / "logon.csv", _logons(0, 15))  # U3's burst on day 12
    run = Daemon(_config(tmp_path))
    drain(run)
    # Muted: counted, not written (without the entry it alerts, test_daemon's first test).
    assert _alerted(tmp_path, "U3") == [] and run.totals.suppressed >= 1
    sample = run.registry.get_sample_value
    assert sample("baseliner_allowlist_entries") == 1

    allow.write_text("")  # the review is over
    assert run.reload_allowlist()
    assert run.allowlist.entries == () and sample("baseliner_allowlist_entries") == 0
    assert sample("baseliner_allowlist_reloads_total") == 1
    muted = run.totals.suppressed
    append_lines(tmp_path / "logon.csv", _logons(15, 15, burst_day=27))
    drain(run)
    run.close()
    # U3's findings are alerts now, day 27's burst among them; none of before the reread.
    alerted = _alerted(tmp_path, "U3")
    assert "2010-01-31" in alerted and min(alerted) >= "2010-01-18"
    assert run.totals.suppressed == muted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[allow]]\nentity = 'U3'\n", "entry 1: 'reason' is required"),
        ("[[allow]\n", "cannot read allow-list"),
        ("[[allow]]\nentity = 'U3'\nfeature = 'logonz'\nreason = 'r'\n", "unknown feature"),
        ("[[allow]]\nentity = 'U3'\ndetector = 'nope'\nreason = 'r'\n", "unknown detector"),
        (None, "allow-list not found"),
    ],
)
def test_a_bad_allow_list_is_refused_and_the_one_in_force_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str | None, message: str
) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text(MUTE_U3)
    run = Daemon(_config(tmp_path))
    in_force = run.allowlist
    if text is None:
        allow.unlink()
    else:
        allow.write_text(text)
    with caplog.at_level(logging.ERROR, logger="detector.daemon"):
        assert not run.reload_allowlist()
    run.close()
    assert run.allowlist is in_force and run.scorer._allowlist is in_force
    sample = run.registry.get_sample_value
    assert sample("baseliner_allowlist_reload_failures_total") == 1
    assert sample("baseliner_allowlist_reloads_total") == 0
    assert sample("baseliner_allowlist_entries") == 1
    [record] = caplog.records
    assert record.getMessage().startswith("daemon.allowlist: ")
    assert message in record.getMessage()
    assert record.getMessage().endswith("the allow-list in force stays (1 entries)")


def test_the_loop_rereads_on_sighup_and_when_the_file_changes(tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text(MUTE_U3)
    append_lines(tmp_path / "logon.csv", _logons(0, 1))
    run = Daemon(_config(tmp_path))
    assert not run._allowlist_due()
    run.reload_requested.set()  # what SIGHUP does
    assert run._allowlist_due() and not run._allowlist_due()
    allow.write_text(MUTE_U3 + '\n[[allow]]\nentity = "U1"\nreason = "r"\n')
    assert run._allowlist_due()
    assert run.reload_allowlist() and len(run.allowlist.entries) == 2
    assert not run._allowlist_due()
    # A refused file is not retried until it changes again.
    allow.write_text("[[allow]\n")
    assert run._allowlist_due() and not run.reload_allowlist()
    assert not run._allowlist_due()
    run.close()


def test_without_an_allow_list_a_reload_changes_nothing(tmp_path: Path) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 1))
    config = parse_config(
        {
            "daemon": {"state_dir": "state"},
            "source": [{"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
            "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
        },
        tmp_path,
    )
    run = Daemon(config)
    run.reload_requested.set()
    assert run._allowlist_due()
    assert not run.reload_allowlist()
    assert not run._allowlist_due()
    run.close()
    assert run.registry.get_sample_value("baseliner_allowlist_reload_failures_total") == 0

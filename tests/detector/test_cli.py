"""Bad usage stops with one line naming the problem and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detector", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--bogus", "x"], "unrecognized arguments: --bogus"),
        (["scan", "/nonexistent/logs", "--format", "cert"], "no such file or directory"),
        (["scan", "x", "--format", "syslogz"], "invalid choice: 'syslogz'"),
        (["scan", "x"], "no format for 'x'"),
        (["scan", "x", "--format", "cert", "--budget", "lots"], "budget 'lots'"),
        (["scan", "x", "--format", "cert", "--train-until", "yesterday"], "is not a date"),
        (["scan", "x", "--format", "cert", "--slice-days", "0"], "'0' must be positive"),
        (["scan", "x", "--format", "cert", "--slice-days", "week"], "'week' is not an integer"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["generate", "--users", "-3", "--out", "o"], "must be positive"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1
    assert err.startswith("baseliner: error: ")


def test_unreadable_config_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    bad = tmp_path / "scan.toml"
    bad.write_text("[scan]\nbudgit = '5/day'\n")
    assert main(["scan", str(logs), "--format", "cert", "--config", str(bad)]) == 2
    assert "unknown key scan.budgit" in capsys.readouterr().err

    broken = tmp_path / "broken.toml"
    broken.write_text("[scan\n")
    assert main(["scan", str(logs), "--format", "cert", "--config", str(broken)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err

    missing = tmp_path / "missing.toml"
    assert main(["scan", str(logs), "--format", "cert", "--config", str(missing)]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_unknown_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path), "--format", "cert", "--detector", "magic"]) == 2
    assert "unknown detector 'magic'" in capsys.readouterr().err


def test_process_exit_code_and_no_traceback() -> None:
    done = run_cli("scan", "/nonexistent", "--format", "cert")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "baseliner: error: no such file or directory: /nonexistent"


def test_version_and_help() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip().startswith("baseliner 0.")
    helped = run_cli("--help")
    assert helped.returncode == 0
    for command in ("scan", "generate", "demo", "bench"):
        assert command in helped.stdout


def test_slice_days_reaches_the_scan_from_the_flag_or_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector.errors import UsageError

    seen: list[int | None] = []

    def fake_run_scan(opts: Any) -> None:
        seen.append(opts.slice_days)
        raise UsageError("stopped before reading")

    monkeypatch.setattr("detector.scan.run_scan", fake_run_scan)
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "scan.toml"
    config.write_text("[scan]\nslice_days = 2\n")
    assert main(["scan", str(logs), "--format", "cert"]) == 2
    assert main(["scan", str(logs), "--format", "cert", "--slice-days", "30"]) == 2
    assert main(["scan", str(logs), "--format", "cert", "--config", str(config)]) == 2
    assert (
        main(["scan", str(logs), "--format", "cert", "--config", str(config), "--slice-days", "5"])
        == 2
    )
    assert seen == [7, 30, 2, 5]
    assert capsys.readouterr().err.count("stopped before reading") == 4
    help_text = run_cli("scan", "--help").stdout
    assert "--slice-days N" in help_text

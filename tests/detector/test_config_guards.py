"""Config checks added after the review: what used to pass --check-config and fail at run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import parse_config
from detector.errors import UsageError


def _doc(source: dict[str, Any] | None = None, **daemon: Any) -> dict[str, Any]:
    return {
        "daemon": {"state_dir": "state", **daemon},
        "source": [source or {"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
        "sink": [{"type": "stdout"}],
    }


def test_a_file_source_naming_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    source = {"type": "file", "path": "logs", "parser": "cert.logon"}
    with pytest.raises(UsageError) as error:
        parse_config(_doc(source), tmp_path)
    assert str(error.value) == (
        f"source[1].path: {tmp_path / 'logs'} is a directory; name a file, or use"
        f' type = "glob" with a pattern such as {tmp_path / "logs/*.log"}'
    )
    # A glob without a wildcard is the same mistake; with one, directories among the
    # matches are skipped.
    with pytest.raises(UsageError, match=r"^source\[1\]\.path: .* is a directory"):
        parse_config(_doc({**source, "type": "glob"}), tmp_path)
    config = parse_config(_doc({**source, "type": "glob", "path": "logs/*"}), tmp_path)
    assert config.sources[0].path == tmp_path / "logs/*"
    # A file that does not exist yet is fine: the tail waits for it.
    assert parse_config(_doc(), tmp_path).sources[0].path == tmp_path / "logon.csv"


def test_the_allowlist_is_read_when_the_config_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as error:
        parse_config(_doc(allowlist="allow.toml"), tmp_path)
    assert str(error.value) == f"daemon.allowlist: allow-list not found: {tmp_path / 'allow.toml'}"
    (tmp_path / "allow.toml").write_text('[[allow]]\nentity = "MSM*"\n')
    with pytest.raises(UsageError, match=r"^daemon\.allowlist: .*'reason' is required"):
        parse_config(_doc(allowlist="allow.toml"), tmp_path)
    (tmp_path / "allow.toml").write_text('[[allow]]\nentity = "MSM*"\nreason = "reviewed"\n')
    assert parse_config(_doc(allowlist="allow.toml"), tmp_path).allowlist == (
        tmp_path / "allow.toml"
    )


def test_max_future_is_a_duration(tmp_path: Path) -> None:
    assert parse_config(_doc(), tmp_path).max_future == timedelta(hours=1)
    assert parse_config(_doc(max_future="2d"), tmp_path).max_future == timedelta(days=2)
    with pytest.raises(UsageError, match=r"^daemon\.max_future: '1y' is not a duration"):
        parse_config(_doc(max_future="1y"), tmp_path)
    with pytest.raises(UsageError, match=r"^daemon\.max_future: must be a str, got 3600"):
        parse_config(_doc(max_future=3600), tmp_path)


def test_cold_start_windows_cannot_exceed_the_history_kept(tmp_path: Path) -> None:
    assert parse_config(_doc(cold_start_windows=60), tmp_path).cold_start_windows == 60
    with pytest.raises(UsageError, match=r"^daemon\.cold_start_windows: must be at most 60 "):
        parse_config(_doc(cold_start_windows=61), tmp_path)


@pytest.mark.parametrize(
    ("daemon_lines", "source_path", "message"),
    [
        ('allowlist = "allow.toml"', "logon.csv", "daemon.allowlist: allow-list not found: "),
        ("", "logs", "source[1].path: "),
    ],
)
def test_check_config_names_the_key_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    daemon_lines: str,
    source_path: str,
    message: str,
) -> None:
    (tmp_path / "logs").mkdir()
    config = tmp_path / "baseliner.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "state"\n{daemon_lines}\n'
        f'[[source]]\ntype = "file"\npath = "{source_path}"\nparser = "cert.logon"\n'
    )
    assert main(["run", "--config", str(config), "--check-config"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"baseliner: error: config {config}: {message}")

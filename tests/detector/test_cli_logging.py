"""The console's log lines: warnings as ``baseliner: warning: ...``, progress unchanged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.cli import ConsoleFormatter, _OnceEach, configure_console_logging, main


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger, restored after the test; :func:`_bare` empties it as a fresh CLI's."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers = saved
        root.setLevel(level)


def _bare(root: logging.Logger) -> None:
    # In the test's body: pytest adds its capture handlers to the root at each phase.
    root.handlers = []


def test_warnings_read_as_the_cli_s_messages_and_progress_as_before(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    configure_console_logging(verbose=True)
    scan = logging.getLogger("detector.scan")
    scan.info("read %d events", 10)
    scan.warning("training covers %d day(s)", 1)
    logging.getLogger("detector.daemon").error("checkpoint %s failed", "c.bin")
    assert capsys.readouterr().err.splitlines() == [
        "INFO detector.scan: read 10 events",
        "baseliner: warning: training covers 1 day(s)",
        "baseliner: error: checkpoint c.bin failed",
    ]


def test_without_verbose_only_warnings_show(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    configure_console_logging(verbose=False)
    logging.getLogger("detector.scan").info("progress")
    logging.getLogger("detector.scan").warning("thin baseline")
    assert capsys.readouterr().err == "baseliner: warning: thin baseline\n"


def test_an_exception_keeps_its_traceback_after_the_line(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    configure_console_logging(verbose=False)
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        logging.getLogger("detector.daemon").exception("checkpoint failed; still running")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "baseliner: error: checkpoint failed; still running"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "OSError: [Errno 28] No space left on device"


def test_each_distinct_warning_still_shows_once_in_a_bench(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    configure_console_logging(verbose=False)
    [console] = bare_root.handlers
    console.addFilter(_OnceEach())
    for _ in range(3):
        logging.getLogger("models.batch").warning("fitted without %s", "x")
    logging.getLogger("models.batch").warning("fitted without %s", "y")
    assert capsys.readouterr().err.splitlines() == [
        "baseliner: warning: fitted without x",
        "baseliner: warning: fitted without y",
    ]


def test_a_record_seen_by_another_handler_keeps_its_level_name(
    bare_root: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    _bare(bare_root)
    configure_console_logging(verbose=False)
    bare_root.addHandler(caplog.handler)
    logging.getLogger("detector.scan").warning("thin")
    assert [record.levelname for record in caplog.records] == ["WARNING"]


def test_the_cli_sets_the_console_format(
    bare_root: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _bare(bare_root)
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    [console] = bare_root.handlers
    assert isinstance(console.formatter, ConsoleFormatter)
    assert capsys.readouterr().err.startswith("baseliner: error: ")

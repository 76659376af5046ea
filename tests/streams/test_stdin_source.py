"""The stdin source: lines as the file sources cut and decode them, and its end."""

from __future__ import annotations

import io
import logging
import os

import pytest

from streams.sources.stdin import StdinSource


def _all(source: StdinSource) -> list[str]:
    source._thread.join(5)
    return [record.text for record in source.read()]


def test_bytes_are_split_at_newlines_and_decoded_as_the_file_sources_do() -> None:
    source = StdinSource(io.BytesIO(b"a\r\nb\xff c\nd\re\nlast"))
    assert _all(source) == ["a", "b\ufffd c", "d\re", "last"]
    assert source.snapshot() == 4


def test_a_byte_that_is_not_utf8_does_not_end_the_input() -> None:
    source = StdinSource(io.BytesIO(b"\xfe\xff\n" + b"ok\n" * 3))
    assert _all(source) == ["\ufffd\ufffd", "ok", "ok", "ok"]
    assert source.ended


def test_ended_only_once_the_stream_is_closed_and_every_line_handed_on() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader:
        source = StdinSource(reader)
        os.write(write_end, b"one\n")
        assert not source.ended
        os.close(write_end)
        source._thread.join(5)
        assert not source.ended  # "one" is still queued
        assert [record.text for record in source.read()] == ["one"]
        assert source.ended


class FailingReader(io.RawIOBase):
    """Some lines, then the read fails as a broken terminal or device does (EIO)."""

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = list(lines)

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        if self._lines:
            return self._lines.pop(0)
        raise OSError(5, "Input/output error")


def test_a_read_error_ends_the_input_with_its_reason_and_keeps_what_was_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="streams.sources.stdin"):
        source = StdinSource(FailingReader([b"one\n", b"two\n"]))
        assert _all(source) == ["one", "two"]
    assert source.ended
    assert not source.alive  # broken, not finished
    assert source.error == "read failed after line 2: [Errno 5] Input/output error"
    assert "stdin: read failed after line 2" in caplog.text


def test_a_clean_end_has_no_error() -> None:
    source = StdinSource(io.BytesIO(b"a\n"))
    assert _all(source) == ["a"]
    assert source.error is None and source.alive

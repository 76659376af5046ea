"""A file line that is not UTF-8 is a dead letter ``invalid_utf8`` in the daemon, as in the
scan, for per-line and batch parsers alike; the other lines of its block go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.config import parse_config
from detector.daemon import Daemon

LOGONS = (
    b"{A},01/04/2010 08:00:00,ANN0001,PC-1,Logon\n"
    b"{B},01/04/2010 08:05:00,BOB\xe9\xff,PC-2,Logon\n"
    b"{C},01/04/2010 08:10:00,CAF\xc3\xa9,PC-3,Logon\r\n"
)
JSON_LINES = (
    b'{"@timestamp":"2010-01-04T08:00:00Z","user":{"name":"ann"},"event":{"action":"logon"}}\n'
    b'{"@timestamp":"2010-01-04T08:01:00Z","user":{"name":"b\xff"},"event":{"action":"logon"}}\n'
    b'{"@timestamp":"2010-01-04T08:02:00Z","user":{"name":"caf\xc3\xa9"},"event":{"action":"x"}}\n'
)


@pytest.mark.parametrize(("parser", "content"), [("cert.logon", LOGONS), ("jsonl", JSON_LINES)])
def test_a_line_that_is_not_utf8_is_a_dead_letter_and_the_rest_of_its_block_goes_on(
    tmp_path: Path, parser: str, content: bytes
) -> None:
    (tmp_path / "events.log").write_bytes(content)
    config = parse_config(
        {
            "daemon": {"state_dir": "state", "metrics_address": "127.0.0.1:0"},
            "source": [{"type": "file", "path": "events.log", "parser": parser}],
            "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
        },
        tmp_path,
    )
    daemon = Daemon(config)
    try:
        assert daemon.poll_once() == 3
        assert daemon.totals.events["source1"] == 2  # valid UTF-8 beyond ASCII is kept
        assert dict(daemon.totals.dead_letters) == {("source1", "invalid_utf8"): 1}
        assert daemon.totals.records["source1"] == 3
        assert daemon.totals.skipped["source1"] == 0
    finally:
        daemon.close()
    (letter,) = [orjson.loads(x) for x in (tmp_path / "state" / "dead_letters.jsonl").open("rb")]
    assert letter["line"] == 2 and letter["reason"] == "invalid_utf8"
    assert "\ufffd" in letter["raw"] and letter["detail"].startswith("bytes that are not UTF-8")


UTF8_LINES = b"".join(JSON_LINES.splitlines(keepends=True)[::2])  # beyond ASCII, all UTF-8


@pytest.mark.parametrize(("content", "checked"), [(JSON_LINES, False), (UTF8_LINES, True)])
def test_the_parser_is_told_when_a_block_was_found_to_be_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, checked: bool
) -> None:
    from streams.parsers.jsonl import JsonLinesParser

    told: list[bool] = []
    parse_batch = JsonLinesParser.parse_batch

    def spy(self: JsonLinesParser, records: Any, **options: Any) -> Any:
        told.append(options["utf8_checked"])
        return parse_batch(self, records, **options)

    monkeypatch.setattr(JsonLinesParser, "parse_batch", spy)
    (tmp_path / "events.log").write_bytes(content)
    config = parse_config(
        {
            "daemon": {"state_dir": "state", "metrics_address": "127.0.0.1:0"},
            "source": [{"type": "file", "path": "events.log", "parser": "jsonl"}],
            "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
        },
        tmp_path,
    )
    daemon = Daemon(config)
    try:
        assert daemon.poll_once() == content.count(b"\n")
    finally:
        daemon.close()
    # The block with a line that is not UTF-8 reaches the parser as its other lines only.
    assert told == [checked]

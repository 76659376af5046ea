"""The drain3 template parser: timestamps, templates, parameters, entities, learned state."""

from __future__ import annotations

import pickle
import zlib
from datetime import UTC, datetime

import orjson
import pytest

from streams import Event, ParseError, read_lines
from streams.event import occurrences
from streams.parsers import PARSERS, DrainTemplateParser

from .conftest import FIXTURES

RECEIVING = "<NUM> INFO dfs.DataNode$DataXceiver: Receiving block <BLK> src: /<IP> dest: /<IP>"
TERMINATING = (
    "<NUM> INFO dfs.DataNode$PacketResponder: PacketResponder <NUM> for block <BLK> terminating"
)
BLOCK = "blk_-1608999687919862906"


def hdfs_parser() -> DrainTemplateParser:
    parser = DrainTemplateParser()
    events, dead = read_lines(FIXTURES / "drain" / "hdfs.log", parser)
    assert len(events) == 8 and dead == []
    return parser


def test_hdfs_golden() -> None:
    events, dead = read_lines(FIXTURES / "drain" / "hdfs.log", DrainTemplateParser())
    assert dead == []
    assert [e.action for e in events] == [f"template:{n}" for n in (1, 2, 1, 3, 4, 3, 1, 5)]
    assert events[0] == Event(
        datetime(2008, 11, 9, 20, 35, 18, tzinfo=UTC),
        "drain",
        "template:1",
        attrs={
            "template": RECEIVING,
            "param_0": "143",
            "param_1": BLOCK,
            "param_2": "10.250.19.102:54106",
            "param_3": "10.250.19.102:50010",
        },
    )
    assert events[1].attrs == {
        "template": "<NUM> INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: "
        "/mnt/hadoop/mapred/system/job_<NUM>_<NUM>/job.jar. <BLK>",
        "param_0": "35",
        "param_1": "200811092030",
        "param_2": "0001",
        "param_3": BLOCK,
    }
    assert events[5] == Event(
        datetime(2008, 11, 9, 20, 35, 19, tzinfo=UTC),
        "drain",
        "template:3",
        attrs={"template": TERMINATING, "param_0": "147", "param_1": "2", "param_2": BLOCK},
    )
    assert events[7].attrs["param_1"] == "10.251.73.220:50010"
    assert events[7].attrs["param_3"] == "67108864"


def test_wildcards_become_parameters_in_line_order() -> None:
    parser = DrainTemplateParser()
    first = parser.parse("2026-11-27T10:00:00Z user alice opened file report.pdf size 3")
    second = parser.parse("2026-11-27T10:00:01.5+01:00 user bob opened file notes.txt size 40")
    assert first is not None and second is not None
    assert first.action == second.action == "template:1"
    assert second.ts == datetime(2026, 11, 27, 9, 0, 1, 500000, tzinfo=UTC)
    assert second.attrs == {
        "template": "user <*> opened file <*> size <NUM>",
        "param_0": "bob",
        "param_1": "notes.txt",
        "param_2": "40",
    }


def test_syslog_lines_take_host_from_the_header() -> None:
    parser = PARSERS["drain"](tz="Europe/Berlin")
    event = parser.parse("<38>Nov 27 10:00:00 web1 nginx[12]: upstream timed out after 30 s")
    assert event is not None
    assert (event.host, event.user, event.ts.hour) == ("web1", None, 9)
    assert event.attrs["template"] == "nginx: upstream timed out after <NUM> s"
    # An ISO line without a program tag is not syslog: no host, the whole rest is mined.
    event = parser.parse("2026-11-27T10:00:00Z WARN disk full")
    assert event is not None and event.host is None
    assert event.attrs["template"] == "WARN disk full"


def test_a_line_folding_repeats_mines_its_message_and_counts_as_that_many() -> None:
    parser = PARSERS["drain"]()
    first = parser.parse("Nov 27 10:00:00 web1 nginx[12]: upstream timed out after 30 s")
    folded = parser.parse(
        "Nov 27 10:00:40 web1 nginx[12]: message repeated 3 times: [ upstream timed out after 30 s]"
    )
    assert first is not None and folded is not None
    # The same template as the message it repeats, not one of its own.
    assert folded.action == first.action == "template:1"
    assert folded.attrs["template"] == "nginx: upstream timed out after <NUM> s"
    assert (folded.attrs["repeated"], "repeated" in first.attrs) == ("3", False)
    assert (occurrences(first), occurrences(folded)) == (1, 3)


def test_custom_timestamp_and_entity() -> None:
    parser = DrainTemplateParser(
        timestamp_regex=r"\[(?P<ts>[^\]]+)\]\s*",
        timestamp_format="%d/%b/%Y:%H:%M:%S %z",
        entity_regex=r"user=(?P<user>\w+)(?: host=(?P<host>\S+))?",
    )
    event = parser.parse("[27/Nov/2026:10:00:00 +0100] login ok user=ann host=pc7")
    assert event == Event(
        datetime(2026, 11, 27, 9, tzinfo=UTC),
        "drain",
        "template:1",
        "ann",
        "pc7",
        attrs={"template": "login ok user=ann host=pc7"},
    )
    with pytest.raises(ParseError) as caught:
        parser.parse("27/Nov/2026:10:00:00 login")
    assert caught.value.reason == "bad_timestamp"
    with pytest.raises(ParseError, match="bad_timestamp"):
        parser.parse("[27/Nov/2026 10:00] login")


def test_bounded_parameters_and_no_masks() -> None:
    parser = DrainTemplateParser(max_params=2)
    event = parser.parse("2026-11-27T10:00:00Z a 1 b 2 c 3 d " + "9" * 100)
    assert event is not None
    assert event.attrs == {
        "template": "a <NUM> b <NUM> c <NUM> d <NUM>",
        "param_0": "1",
        "param_1": "2",
        "params_dropped": "2",
    }
    plain = DrainTemplateParser(masking=[])
    event = plain.parse("2026-11-27T10:00:00Z a 1 b")
    assert event is not None and event.attrs == {"template": "a 1 b"}


def test_skips_blank_and_rejects_lines_without_timestamp() -> None:
    parser = DrainTemplateParser()
    assert parser.parse(" \r\n") is None
    for line in ("no time here", "Nov 27 10:00:00", "081109 2036 x", "2026-11-27T25:00:00Z x"):
        with pytest.raises(ParseError) as caught:
            parser.parse(line)
        assert caught.value.reason == "bad_timestamp"


def test_pickle_keeps_learned_templates() -> None:
    parser = hdfs_parser()
    restored = pickle.loads(pickle.dumps(parser))
    assert restored.templates() == parser.templates()
    line = (
        "081110 101010 99 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block "
        "blk_42 terminating"
    )
    event = restored.parse(line)
    assert event is not None and event.action == "template:3"
    assert event.attrs["template"] == TERMINATING
    # Both go on learning identically: a new template gets the next id in each.
    new = "081110 101011 99 WARN dfs.DataNode: disk /data/3 failing"
    assert parser.parse(line) == event
    assert (restored.parse(new) or event).action == (parser.parse(new) or event).action


def test_state_round_trip_and_lru_order() -> None:
    parser = DrainTemplateParser(max_clusters=2)
    for line in ("T0Z alpha one", "T0Z beta two three", "T0Z alpha one"):
        parser.parse(line.replace("T0Z", "2026-11-27T10:00:00Z"))
    restored = DrainTemplateParser(max_clusters=2)
    restored.restore(parser.state())
    # A third template evicts the least recently used one ("beta", since "alpha" was seen
    # last) in both, so the learned sets stay equal.
    for p in (parser, restored):
        p.parse("2026-11-27T10:00:01Z gamma four five six")
    assert (
        parser.templates()
        == restored.templates()
        == {
            1: "alpha one",
            3: "gamma four five six",
        }
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "not a drain parser state"),
        (zlib.compress(b"[1]"), "format"),
        (
            zlib.compress(orjson.dumps({"format": "baseliner.drain/1", "config": {}})),
            "was mined with",
        ),
    ],
)
def test_restore_rejects_foreign_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DrainTemplateParser().restore(data)


def test_restore_rejects_other_configuration_and_malformed_tree() -> None:
    state = hdfs_parser().state()
    with pytest.raises(ValueError, match="was mined with"):
        DrainTemplateParser(sim_th=0.5).restore(state)
    document = orjson.loads(zlib.decompress(state))
    document["tree"] = {"children": {"x": []}, "ids": []}
    with pytest.raises(ValueError, match="malformed"):
        DrainTemplateParser().restore(zlib.compress(orjson.dumps(document)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sim_th": 1.5}, "sim_th"),
        ({"depth": 2}, "depth"),
        ({"max_clusters": 0}, "max_clusters"),
        ({"max_params": -1}, "max_params"),
        ({"timestamp_regex": "("}, "timestamp_regex"),
        ({"timestamp_format": "%Y"}, "timestamp_format needs"),
        ({"entity_regex": r"user=(\w+)"}, "named group"),
        ({"masking": [["\\d+"]]}, "pair"),
        ({"masking": [["\\d+", "not a word"]]}, "word"),
        ({"tz": "Atlantis/Capital"}, "time zone"),
    ],
)
def test_rejects_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DrainTemplateParser(**options)  # type: ignore[arg-type]


def test_an_rfc5424_line_without_a_timestamp_is_dated_when_read_and_marked() -> None:
    parser = DrainTemplateParser(source="app")
    before = datetime.now(UTC)
    event = parser.parse("<38>1 - bastion sshd 1 - - Accepted password for ann from 10.0.0.1")
    assert event is not None and event.host == "bastion"
    assert before <= event.ts <= datetime.now(UTC)
    assert event.attrs["ts_source"] == "received"
    dated = parser.parse("<38>1 2024-03-04T10:00:00Z bastion sshd 1 - - Accepted password for bob")
    assert dated is not None and "ts_source" not in dated.attrs

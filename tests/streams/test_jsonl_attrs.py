"""The JSON-lines mapping's ``attrs`` table: attributes the catalogue reads, from JSON paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from features.batch import attrs_keys, evaluate_batch
from features.catalog import default_specs
from features.spec import WindowConfig
from streams.batch import scan_events
from streams.parsers.jsonl import ECS_ATTR_PATHS, JsonLinesParser
from streams.sources.base import RawRecord

MAPPING: dict[str, Any] = {
    "attrs": {"attachments": "email.attachments", "recipients": "email.to.address"}
}


def line(minute: int, action: str, **fields: Any) -> str:
    return json.dumps(
        {
            "@timestamp": f"2024-03-04T10:{minute:02d}:00Z",
            "user": {"name": "ann"},
            "event": {"action": action},
            **fields,
        }
    )


LINES = [
    line(0, "http_download", url={"original": "http://tools.example/mimikatz_trunk.zip"}),
    line(1, "http_visit", url={"original": "http://news.example/"}),
    line(2, "email_send", email={"attachments": [{"file": {"name": "a.xlsx"}}, {"file": {}}]}),
    line(3, "email_send", email={"attachments": [{"file": {"name": "b.pdf"}}]}),
    line(4, "email_send", email={"to": {"address": ["x@corp", "y@corp"]}}),
    line(5, "http_visit", **{"url.original": "http://flat.example/psexec.exe"}),
]


def test_the_ecs_url_is_an_attribute_by_default() -> None:
    assert ECS_ATTR_PATHS["url"] == "url.original"
    event = JsonLinesParser().parse(LINES[0])
    assert event is not None
    assert dict(event.attrs) == {"url": "http://tools.example/mimikatz_trunk.zip"}


def test_the_attrs_table_adds_attributes_and_counts_arrays_of_objects() -> None:
    parser = JsonLinesParser(MAPPING)
    attrs = [dict(e.attrs) for text in LINES if (e := parser.parse(text)) is not None]
    assert attrs == [
        {"url": "http://tools.example/mimikatz_trunk.zip"},
        {"url": "http://news.example/"},
        {"attachments": "2"},
        {"attachments": "1"},
        {"recipients": "x@corp,y@corp"},  # an array of text is joined, as for other fields
        {"url": "http://flat.example/psexec.exe"},
    ]


def test_the_attrs_table_overrides_a_default_path() -> None:
    parser = JsonLinesParser({"attrs": {"url": "http.request.referrer"}})
    event = parser.parse(line(0, "http_visit", http={"request": {"referrer": "http://r/"}}))
    assert event is not None and dict(event.attrs) == {"url": "http://r/"}
    assert JsonLinesParser().attr_paths == tuple(ECS_ATTR_PATHS.items())


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("email.attachments", "a table of attribute -> JSON path"),
        ({"attachments": ["a", "b"]}, "'attachments' -> \\['a', 'b'\\]: give one JSON path"),
        ({"": "a.b"}, "'' -> 'a.b': give one JSON path"),
    ],
)
def test_a_bad_attrs_table_is_refused(table: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JsonLinesParser({"attrs": table})


@pytest.mark.parametrize("copies", [1, 40])  # row-wise, and columnar (>= 32 lines)
def test_the_batch_parse_gives_the_line_parse(copies: int) -> None:
    parser = JsonLinesParser(MAPPING)
    texts = LINES * copies
    records = [RawRecord(text, "a.json", i + 1, 0) for i, text in enumerate(texts)]
    frame, dead = parser.parse_batch(records, attrs_keys=["url", "attachments"])
    assert dead == []
    expected = []
    for text in texts:
        event = parser.parse(text)
        assert event is not None
        kept = {k: v for k, v in event.attrs.items() if k in ("url", "attachments")}
        expected.append(json.dumps(kept, separators=(",", ":")) if kept else None)
    assert frame.get_column("attrs").to_list() == expected


def test_jsonl_attributes_feed_the_hacking_tool_and_attachment_features(tmp_path: Path) -> None:
    path = tmp_path / "proxy_mail.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    specs = default_specs()
    keys = attrs_keys(specs)
    assert {"url", "attachments"} <= keys
    scan = scan_events([path], "jsonl", jsonl_mapping=MAPPING, attrs_keys=keys)
    events = scan.events.collect()
    assert events.get_column("attrs").struct.field("attachments").to_list() == [
        None,
        None,
        "2",
        "1",
        None,
        None,
    ]
    vectors = evaluate_batch(specs, events.lazy(), WindowConfig()).collect()
    assert vectors.select("hacking_tool_downloads", "email_attachments").rows() == [(2.0, 3.0)]
    # Without the table's attachments path the attachments are not seen; the URL still is.
    plain = scan_events([path], "jsonl", attrs_keys=keys).events
    vectors = evaluate_batch(specs, plain, WindowConfig()).collect()
    assert vectors.select("hacking_tool_downloads", "email_attachments").rows() == [(2.0, 0.0)]


def test_the_scan_cli_refuses_a_bad_attrs_table(tmp_path: Path, capsys: Any) -> None:
    from detector.cli import main

    logs = tmp_path / "a.jsonl"
    logs.write_text(LINES[0] + "\n")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"attrs": {"url": 3}}))
    out = tmp_path / "out"
    code = main(
        ["scan", str(logs), "--format", "jsonl", "--mapping", str(mapping), "--out", str(out)]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "baseliner: error: mapping: JSON mapping attrs: 'url' -> 3: give one JSON path"
    ]

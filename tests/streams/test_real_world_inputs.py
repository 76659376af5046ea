"""Real-world inputs of the batch readers: shippers' action names, arrays where one value
belongs and gzip files."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from streams.batch import batch_files, line_pieces, scan_events
from streams.errors import ParseError
from streams.parsers import JsonLinesParser
from streams.sources.base import RawRecord


def ecs(
    action: str,
    user: object = "ann",
    outcome: str | None = None,
    category: list[str] | None = None,
    **extra: object,
) -> str:
    event: dict[str, object] = {"action": action}
    if outcome is not None:
        event["outcome"] = outcome
    if category is not None:
        event["category"] = category
    return json.dumps(
        {"@timestamp": "2024-03-04T09:00:00Z", "event": event, "user": {"name": user}, **extra}
    )


def records(lines: list[str]) -> list[RawRecord]:
    return [RawRecord(line, "in.jsonl", n, 0) for n, line in enumerate(lines, start=1)]


def batch_both_ways(parser: JsonLinesParser, lines: list[str]) -> list[pl.DataFrame]:
    """parse_batch columnar (from one line on) and row-wise."""
    frames = []
    for min_lines in (1, 10**9):
        parser.columnar_min_lines = min_lines
        frames.append(parser.parse_batch(records(lines))[0])
    return frames


SHIPPED = [
    ("logged-in", None, "logon"),
    ("logon-failed", "failure", "logon_failure"),
    ("logged-out", None, "logoff"),
    ("logged-in-explicit", None, "explicit_credentials"),
    ("logged-in-special", None, "special_privileges"),
    ("created-process", None, "process_start"),
    ("added-user-account", None, "account_created"),
    ("added-member-to-group", None, "group_member_added"),
    ("ssh_login", "success", "logon"),
    ("ssh_login", "failure", "logon_failure"),
    ("user_login", "failure", "logon_failure"),
    ("user_logout", None, "logoff"),
    # baseliner's own names, and names no table holds, pass as they are.
    ("logon", "failure", "logon"),
    ("http_visit", None, "http_visit"),
    ("door-opened", None, "door-opened"),
]


def test_winlogbeat_and_filebeat_actions_become_baseliners() -> None:
    lines = [ecs(action, outcome=outcome) for action, outcome, _ in SHIPPED]
    expected = [want for _, _, want in SHIPPED]
    parser = JsonLinesParser()
    assert [parser.parse(line).action for line in lines] == expected  # type: ignore[union-attr]
    for frame in batch_both_ways(parser, lines):
        assert frame.get_column("action").to_list() == expected
        # Only the action changes: the outcome stays as the log gave it.
        assert frame.get_column("outcome").to_list() == [o for _, o, _ in SHIPPED]


def test_the_mapping_table_adds_overrides_and_keeps_actions() -> None:
    parser = JsonLinesParser(
        {
            "actions": {"signin": "logon", "logged-in": "logged-in", "logged-out": "logon"},
            "action": ["event.action"],
        }
    )
    lines = [ecs("signin"), ecs("signin", outcome="failure"), ecs("logged-in"), ecs("logged-out")]
    expected = ["logon", "logon_failure", "logged-in", "logon"]
    assert [parser.parse(line).action for line in lines] == expected  # type: ignore[union-attr]
    for frame in batch_both_ways(parser, lines):
        assert frame.get_column("action").to_list() == expected


@pytest.mark.parametrize(
    "table", [["logon"], {"x": ""}, {"": "logon"}, {"x": 1}], ids=["list", "empty", "key", "num"]
)
def test_a_bad_action_table_is_refused(table: object) -> None:
    with pytest.raises(ValueError, match="JSON mapping actions"):
        JsonLinesParser({"actions": table})  # type: ignore[dict-item]


def test_an_array_naming_several_users_hosts_or_actions_is_a_dead_letter() -> None:
    lines = [
        ecs("logon", user=["alice", "bob"]),
        ecs(["logon", "logoff"]),  # type: ignore[arg-type]
        ecs("logon", host={"name": ["ws1", "ws2"]}),
        # One element is that element; ECS's array fields (event.category) stay joined.
        ecs(["logged-in"], user=["carol"]),  # type: ignore[arg-type]
        ecs("logon", user="dave", category=["authentication", "session"]),
    ]
    parser = JsonLinesParser()
    for number, line in enumerate(lines[:3], start=1):
        with pytest.raises(ParseError) as caught:
            parser.parse(line)
        assert caught.value.reason == "bad_value", number
        assert "an array of 2 values, not one" in caught.value.detail
    for min_lines in (1, 10**9):
        parser.columnar_min_lines = min_lines
        frame, dead = parser.parse_batch(records(lines))
        assert [(d.line, d.reason) for d in dead] == [(n, "bad_value") for n in (1, 2, 3)]
        assert frame.select("user", "action").rows() == [("carol", "logon"), ("dave", "logon")]
        assert json.loads(frame.get_column("attrs")[1]) == {
            "event.category": "authentication,session"
        }


LANL_LINES = [
    "1,ANONYMOUS LOGON@C586,ANONYMOUS LOGON@C586,C1250,C586,NTLM,Network,LogOn,Success",
    "2,C625$@DOM1,U147@DOM1,C625,C625,Negotiate,Batch,LogOn,Success",
    "3,U22@DOM1,U22@DOM1,C1065,C1065,?,?,TGS,Fail",
    "4,LOCAL SERVICE@C9,LOCAL SERVICE@C9,C9,C9,Negotiate,Service,LogOn,Success",
    "5,dwm-2@C9,dwm-2@C9,C9,C9,Negotiate,Interactive,LogOn,Success",
    "6,U9@NT AUTHORITY,U9@DOM1,C9,C9,?,?,TGS,Success",
]


def test_gzip_logs_are_read_decompressed_whatever_their_name(tmp_path: Path) -> None:
    lines = [ecs("logon", user=f"u{i}") for i in range(50)]
    plain = tmp_path / "plain" / "a.jsonl"
    plain.parent.mkdir()
    plain.write_text("\n".join(lines) + "\n")
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "a.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    # Gzip under a plain name: known by its first bytes.
    (packed / "b.jsonl").write_bytes(gzip.compress(plain.read_bytes()))
    assert [p.name for p in batch_files([packed], "jsonl")] == ["a.jsonl.gz", "b.jsonl"]
    assert [(p.data, p.first_line) for p in line_pieces(packed / "b.jsonl", 1000)] == [
        (p.data, p.first_line) for p in line_pieces(plain, 1000)
    ]
    want = scan_events([plain], "jsonl", piece=next(line_pieces(plain, 1 << 20)))
    for name in ("a.jsonl.gz", "b.jsonl"):
        path = packed / name
        got = scan_events([path], "jsonl", piece=next(line_pieces(path, 1 << 20)))
        assert got.events.collect().equals(want.events.collect())
        assert got.rejects.collect().height == 0
    # CSV too: a gzip LANL auth.txt read in pieces.
    auth = tmp_path / "auth.txt"
    auth.write_bytes(gzip.compress("\n".join(LANL_LINES).encode() + b"\n"))
    (piece,) = line_pieces(auth, 1 << 20)
    users = scan_events([auth], "lanl", piece=piece).events.collect().get_column("user")
    assert users.to_list() == ["ANONYMOUS LOGON", "C625$", "U22", "LOCAL SERVICE", "dwm-2", "U9"]


def test_a_corrupt_gzip_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n' * 10_000)[:200])
    with pytest.raises(ValueError, match=r"cut\.jsonl\.gz: the gzip data is corrupt or truncated"):
        list(line_pieces(path, 1 << 20))


def test_translated_events_keep_their_time() -> None:
    event = JsonLinesParser().parse(ecs("ssh_login", outcome="failure"))
    assert event is not None
    assert (event.ts, event.action, event.outcome) == (
        datetime(2024, 3, 4, 9, tzinfo=UTC),
        "logon_failure",
        "failure",
    )

"""The scan's line-by-line reader: Windows Security, auth.log and syslog files to event frames."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from streams.batch import (
    LinePiece,
    attrs_dtype,
    batch_files,
    events_from_frame,
    line_pieces,
    scan_events,
)
from streams.event import POLARS_EVENT_SCHEMA
from streams.linebatch import line_files, line_parser, parse_piece, scan_line_events
from streams.lines import read_lines

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scan_lines"
SECURITY = FIXTURES / "security.jsonl"
AUTH_LOG = FIXTURES / "auth.log"
SYSLOG = FIXTURES / "syslog"


def at(hour: int, minute: int, second: int = 0, micros: int = 0, year: int = 2024) -> datetime:
    return datetime(year, 3, 4, hour, minute, second, micros, tzinfo=UTC)


def test_windows_events_and_dead_letters_are_golden() -> None:
    scan = scan_line_events(SECURITY, line_parser("windows"), attrs_keys=["logon_type", "src_ip"])
    events = scan.events.collect()
    assert events.schema == {**POLARS_EVENT_SCHEMA, "attrs": attrs_dtype(["logon_type", "src_ip"])}
    # Line 6 is a machine account's logon (no user), line 7 an unmodelled event id (4663,
    # skipped), line 8 blank (skipped).
    assert events.rows() == [
        (at(8, 1, 12, 345000), "windows.security", "logon", "alice", "ws01", "ws01", None,
         "success", {"logon_type": "2", "src_ip": None}),
        (at(8, 3), "windows.security", "logon_failure", "alice", "ws01", "ws01", None, "failure",
         {"logon_type": "2", "src_ip": None}),
        (at(9, 15), "windows.security", "logon_network", "bob", "fs01", "fs01", None, "success",
         {"logon_type": "3", "src_ip": "10.0.0.8"}),
        (at(9, 20), "windows.security", "explicit_credentials", "bob", "ws02", "dc01", None,
         "success", {"logon_type": None, "src_ip": None}),
        (at(9, 30), "windows.security", "logon_network", None, "ws02", "ws02", None, "success",
         {"logon_type": "3", "src_ip": None}),
        (at(9, 40), "windows.security", "logon", "carol", "ws03", "ws03", None, "success",
         {"logon_type": "10", "src_ip": None}),
    ]  # fmt: skip
    assert scan.rejects.collect().rows() == [
        (
            str(SECURITY),
            4,
            "bad_json",
            '{"@timestamp":"2024-03-04T09:16:00Z","event":{"code":"4624"',
        )
    ]
    judged = scan.judged.collect() if scan.judged is not None else pl.DataFrame()
    assert judged.get_column("line").to_list() == [1, 2, 3, 5, 6, 9, 4]
    assert judged.get_column("reason").to_list() == [None] * 6 + ["bad_json"]


def test_authlog_events_and_dead_letters_are_golden() -> None:
    scan = scan_line_events(AUTH_LOG, line_parser("authlog", year=2024), attrs_keys=["src_ip"])
    rows = scan.events.select("ts", "action", "user", "host", "target", "outcome", "attrs")
    # systemd-logind (line 2) is not modelled; events keep the file's order (line 6 is earlier).
    assert rows.collect().rows() == [
        (at(8, 1, 12), "logon", "alice", "bastion", "bastion", "success", {"src_ip": "10.0.0.5"}),
        (at(8, 2, 40), "run_as", "alice", "bastion", "root", "success", {"src_ip": None}),
        (at(8, 10, 6), "logon_failure", "admin", "bastion", "bastion", "failure",
         {"src_ip": "203.0.113.9"}),
        (at(8, 6, 55), "switch_user", "bob", "bastion", "postgres", "failure", {"src_ip": None}),
    ]  # fmt: skip
    assert scan.rejects.collect().rows() == [
        (str(AUTH_LOG), 4, "bad_header", "Mar  4 08:05 bastion sshd[21002]: truncated header")
    ]


def test_authlog_zone_converts_local_times_to_utc() -> None:
    scan = scan_line_events(AUTH_LOG, line_parser("authlog", year=2024, tz="Europe/Berlin"))
    # 08:01:12 in Berlin in March (CET, UTC+1) is 07:01:12 UTC.
    assert scan.events.select("ts").collect().item(0, 0) == at(7, 1, 12)


def test_syslog_lines_become_templates_learnt_across_pieces() -> None:
    parser = line_parser("syslog")
    data = SYSLOG.read_bytes()
    first_end = data.index(b"\n", data.index(b"\n") + 1) + 1  # two lines, then the rest
    pieces = [LinePiece(data[:first_end], 1, 0), LinePiece(data[first_end:], 3, first_end)]
    frames = [parse_piece(str(SYSLOG), parser, piece, ["template"]) for piece in pieces]
    events = pl.concat([events for events, _ in frames])
    assert events.select("action", "host", "line").rows() == [
        ("template:1", "web1", 1),
        ("template:2", "web1", 2),
        ("template:2", "web2", 3),  # the second piece knows the first piece's templates
        ("template:1", "web2", 5),
    ]
    assert events.get_column("attrs").struct.field("template").to_list()[1] == (
        "nginx: upstream timed out after <NUM> seconds"
    )
    assert frames[1][1].select("line", "reason").rows() == [(4, "bad_timestamp")]


def test_reader_gives_what_the_daemon_parser_gives_line_by_line(tmp_path: Path) -> None:
    # CRLF line ends, invalid UTF-8 and a gzip file read in small pieces: the same events and
    # dead letters as the daemon's line reader over the plain file.
    text = AUTH_LOG.read_bytes().replace(b"\n", b"\r\n").replace(b"alice", b"al\xffice", 1)
    plain = tmp_path / "auth.log"
    plain.write_bytes(text)
    packed = tmp_path / "auth.log.1.gz"
    packed.write_bytes(gzip.compress(text))
    expected, dead = read_lines(plain, line_parser("authlog", year=2024))
    parser = line_parser("authlog", year=2024)
    frames = [parse_piece(str(packed), parser, p, None) for p in line_pieces(packed, 200)]
    events = pl.concat([events for events, _ in frames]).drop("line")
    rejects = pl.concat([rejects for _, rejects in frames])
    assert events_from_frame(events) == expected
    assert expected[0].user == "al\ufffdice"
    assert rejects.select("line", "reason", "raw").rows() == [
        (d.line, d.reason, d.raw) for d in dead
    ]


def test_attrs_as_json_text_and_as_no_column() -> None:
    parser = line_parser("windows")
    piece = LinePiece(SECURITY.read_bytes(), 1)
    as_text, _ = parse_piece(str(SECURITY), parser, piece, None)
    assert as_text.schema["attrs"] == pl.String()
    assert as_text.item(2, "attrs").startswith('{"event_id":"4624","machine_account":"false"')
    none, _ = parse_piece(str(SECURITY), parser, piece, [])
    assert none.schema["attrs"] == pl.String() and none.get_column("attrs").null_count() == 6


def test_an_empty_file_and_a_file_of_rejects_give_empty_frames(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    scan = scan_line_events(empty, line_parser("windows"), attrs_keys=["url"])
    assert scan.events.collect().height == 0 and scan.rejects.collect().height == 0
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[]\n{}\n")
    scan = scan_line_events(bad, line_parser("windows"), attrs_keys=["url"])
    assert scan.events.collect().schema["attrs"] == attrs_dtype(["url"])
    assert scan.rejects.collect().select("line", "reason").rows() == [
        (1, "bad_json"),
        (2, "missing_field"),
    ]


def test_directories_list_rotated_logs_oldest_first(tmp_path: Path) -> None:
    for name in ("secure", "secure-20240301", "secure-20240215", "auth.log", "auth.log.1",
                 "auth.log.2.gz", "syslog", "syslog.1", "messages", "kern.log", "a.json",
                 "b.ndjson.gz", "notes.txt"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    names = {fmt: [p.name for p in line_files(tmp_path, fmt)] for fmt in ("authlog", "syslog")}
    assert names == {
        "authlog": ["auth.log.2.gz", "auth.log.1", "auth.log", "secure-20240215",
                    "secure-20240301", "secure"],
        "syslog": ["messages", "syslog.1", "syslog"],
    }  # fmt: skip
    assert [p.name for p in batch_files([tmp_path], "windows")] == ["a.json", "b.ndjson.gz"]
    assert batch_files([tmp_path / "kern.log"], "syslog") == [tmp_path / "kern.log"]


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        line_parser("authlog", tz="Mars/Olympus")
    with pytest.raises(ValueError, match="year must be a whole number"):
        line_parser("authlog", year=0)
    with pytest.raises(ValueError, match="unknown batch format 'evtx'"):
        batch_files([FIXTURES], "evtx")
    with pytest.raises(ValueError, match=r"windows logs are read by streams\.linebatch"):
        scan_events([SECURITY], "windows")  # type: ignore[arg-type]


def test_shared_fixture_copies_read_the_same(tmp_path: Path) -> None:
    # A directory given as input: its security log is found and read like the file itself.
    shutil.copy(SECURITY, tmp_path / "security.json")
    (found,) = batch_files([tmp_path], "windows")
    one = scan_line_events(found, line_parser("windows")).events.collect()
    assert one.equals(scan_line_events(SECURITY, line_parser("windows")).events.collect())


def test_syslog_year_dates_bsd_lines_and_changes_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    extra = [
        "<30>Mar 14 09:00:00 web3 kernel: eth1 link up at 10 Mbps",  # with <PRI>
        "Mar  4 08:00:09 web1 a line without a program tag",  # refused either way
        "Feb 30 08:00:00 web1 kernel: no such day",  # refused either way
        "2024-03-05T10:00:00Z web4 kernel: eth0 link up at 10 Mbps",  # has its own year
    ]
    path.write_text(SYSLOG.read_text() + "\n".join(extra) + "\n")
    dated = scan_line_events(path, line_parser("syslog", year=2024))
    inferred = scan_line_events(path, line_parser("syslog"))
    events = dated.events.collect()
    assert events.get_column("ts").to_list() == [
        at(8, 0, 1),
        at(8, 0, 2),
        at(8, 0, 3),
        at(8, 0, 4),
        datetime(2024, 3, 14, 9, tzinfo=UTC),
        datetime(2024, 3, 5, 10, tzinfo=UTC),
    ]
    # The same events but for the BSD lines' year, which is otherwise inferred from today.
    assert events.drop("ts").equals(inferred.events.collect().drop("ts"))
    rejects = dated.rejects.collect()
    assert rejects.equals(inferred.rejects.collect())
    assert rejects.select("line", "reason").rows() == [
        (4, "bad_timestamp"),
        (7, "bad_timestamp"),
        (8, "bad_timestamp"),
    ]


def test_a_line_folding_repeats_counts_as_that_many_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auth.log"
    failed = "Failed password for root from 203.0.113.9 port 40210 ssh2"
    path.write_text(
        f"Mar  4 08:10:06 bastion sshd[21433]: {failed}\n"
        f"Mar  4 08:10:40 bastion sshd[21433]: message repeated 3 times: [ {failed}]\n"
        f"Mar  4 08:11:00 bastion sshd[21433]: message repeated 99 times: [ {failed}]\n"
    )
    # A forged count is capped, not trusted: here at 5 rather than 10,000.
    monkeypatch.setattr("streams.event.MAX_REPEATS", 5)
    piece = LinePiece(path.read_bytes(), 1, 0)
    events, _ = parse_piece(str(path), line_parser("authlog", year=2024), piece, None)
    assert events.select("ts", "action", "user", "line").rows() == (
        [(at(8, 10, 6), "logon_failure", "root", 1)]
        + [(at(8, 10, 40), "logon_failure", "root", 2)] * 3
        + [(at(8, 11), "logon_failure", "root", 3)] * 5
    )

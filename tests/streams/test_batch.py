"""The batch readers give the same events and rejects as the line parsers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import POLARS_EVENT_SCHEMA, Event, events_from_frame, read_lines, scan_events
from streams.batch import _HEADER_ID_PATTERN, REJECT_SCHEMA, _with_url_host
from streams.parsers import PARSERS, JsonLinesParser, LanlAuthParser
from streams.parsers.cert import URL_HOST_PATTERN

from .conftest import FIXTURES

KINDS = ("logon", "device", "file", "email", "http")


def key(e: Event) -> tuple[str, datetime, str]:
    return (e.source, e.ts, repr(e))


@pytest.mark.parametrize("release", ["cert_r42", "cert_r62"])
def test_cert_batch_equals_line_parsers(release: str) -> None:
    folder = FIXTURES / release
    scan = scan_events([folder], "cert")
    assert scan.files == [folder / f"{k}.csv" for k in KINDS]
    frame = scan.events.collect(engine="streaming")
    assert frame.schema == pl.Schema(POLARS_EVENT_SCHEMA)
    expected: list[Event] = []
    for kind in KINDS:
        events, dead = read_lines(folder / f"{kind}.csv", PARSERS[f"cert.{kind}"]())
        assert dead == []
        expected += events
    assert len(expected) >= 9
    assert sorted(events_from_frame(frame), key=key) == sorted(expected, key=key)
    assert scan.rejects.collect().height == 0


BAD_CERT = {
    "logon.csv": (
        "id,date,user,pc,activity\n"
        "{A},01/02/2010 06:49:00,U1,PC-1,Logon\n"
        "{B},01/32/2010 06:49:00,U1,PC-1,Logon\n"
        "\n"
        "{C},01/02/2010 06:49:00,U1,PC-1\n"
        "{D},01/02/2010 06:49:00,U1,PC-1,Logon,extra\n"
        "{E},,U1,PC-1,Logon\n"
        "{F},01/02/2010 06:49:00,,PC-1,Logon\n"
        "{G},01/02/2010 06:49:00,U1,,Logon\n"
        "{H},01/02/2010 06:49:00,U1,PC-1,Reboot\n"
        "{I},1/2/2010 6:49:00,U1,PC-1,Logon\n"
        "{J},01/02/2010 07:08:60,U1,PC-1,Logoff\r\n"
        "id,date,user,pc,activity\n"
        "{K},01/02/2010 08:00:00,U3,PC-3,Logon\n"
    ),
    "email.csv": (
        "id,date,user,pc,to,cc,bcc,from,activity,size,attachments,content\n"
        "{E1},01/02/2010 06:49:00,U1,PC-1,a@b.com;;c@d.com,,e@f.com,U1@x.com,Send,12,"
        "C:\\x.doc(7);C:\\y.pdf,hi, there\n"
        "{E2},01/02/2010 06:49:00,U1,PC-1,a@b.com,,,U1@x.com,Send,12kB,,hi\n"
        "{E3},01/02/2010 06:49:00,U1,PC-1,,,,U1@x.com,View,,,\n"
        "{E4},01/02/2010 06:49:00,U1,PC-1,a@b.com,,,U1@x.com,Sent,1,,x\n"
    ),
    "file.csv": (
        "id,date,user,pc,filename,activity,to_removable_media,from_removable_media,content\n"
        "{F1},01/02/2010 06:49:00,U1,PC-1,R:\\a.doc,File Copy,True,False,x\n"
        "{F2},01/02/2010 06:49:00,U1,PC-1,R:\\a.doc,File Copy,yes,False,x\n"
        "{F3},01/02/2010 06:49:00,U1,PC-1,,File Copy,False,False,x\n"
        "{F4},01/02/2010 06:49:00,U1,PC-1,C:\\a.doc,File Move,False,False,x\n"
    ),
    "http.csv": (
        "id,date,user,pc,url,content\n"
        "{H1},01/02/2010 06:49:00,U1,PC-1,http://www.Example.com:8080/a?b=c,x\n"
        "{H2},01/02/2010 06:49:00,U1,PC-1,,x\n"
        "{H3},01/02/2010 06:49:00,U1,PC-1,/relative/path,x\n"
        "{H4},01/02/2010 06:49:00,U1,PC-1\n"
    ),
    "device.csv": (
        "id,date,user,pc,activity\n"
        "{D1},01/02/2010 06:49:00,U1,PC-1,Connect\n"
        "{D2},01/02/2010 06:49:00,U1,PC-1,Plugged\n"
    ),
}


def line_reference(folder: Path) -> tuple[list[Event], set[tuple[str, int, str, str]]]:
    events: list[Event] = []
    rejects: set[tuple[str, int, str, str]] = set()
    for name in BAD_CERT:
        got, dead = read_lines(folder / name, PARSERS[f"cert.{Path(name).stem}"]())
        events += got
        rejects |= {(d.file, d.line, d.reason, d.raw) for d in dead}
    return events, rejects


def test_cert_batch_rejects_match_dead_letters(tmp_path: Path) -> None:
    for name, text in BAD_CERT.items():
        (tmp_path / name).write_text(text)
    scan = scan_events([tmp_path / n for n in BAD_CERT], "cert")
    events, rejects = line_reference(tmp_path)
    frame = scan.events.collect(engine="streaming")
    assert sorted(events_from_frame(frame), key=key) == sorted(events, key=key)
    reject_frame = scan.rejects.collect(engine="streaming")
    assert reject_frame.schema == pl.Schema(REJECT_SCHEMA)
    assert set(reject_frame.iter_rows()) == rejects
    logon = str(tmp_path / "logon.csv")
    assert sorted((line, reason) for f, line, reason, _ in rejects if f == logon) == [
        (3, "bad_timestamp"),
        (5, "wrong_field_count"),
        (6, "wrong_field_count"),
        (7, "missing_field"),
        (8, "missing_field"),
        (9, "missing_field"),
        (10, "unknown_value"),
        (11, "bad_timestamp"),
    ]
    assert sorted(e.user or "" for e in events if e.source == "cert.logon") == ["U1", "U1", "U3"]
    email = {e.attrs["id"]: e for e in events if e.source == "cert.email"}
    assert email["{E1}"].target == "a@b.com;c@d.com;e@f.com"
    assert dict(email["{E1}"].attrs) == {
        "id": "{E1}",
        "attachments": "2",
        "attachment_bytes": "7",
        "from": "U1@x.com",
    }
    assert (email["{E3}"].target, email["{E3}"].bytes, email["{E3}"].action) == (
        None,
        None,
        "email_view",
    )
    hosts = {e.attrs["id"]: e.target for e in events if e.source == "cert.http"}
    assert hosts == {"{H1}": "example.com", "{H3}": None}


def test_unknown_cert_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "answers.csv"
    other.write_text("x\n")
    with pytest.raises(ValueError, match=r"answers\.csv"):
        scan_events([other], "cert")


def test_directory_ignores_side_tables_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "logon.csv").write_text(
        "id,date,user,pc,activity\n{A},01/02/2010 06:49:00,U1,PC-1,Logon\n"
    )
    (tmp_path / "psychometric.csv").write_text("employee_name,user_id,O,C,E,A,N\n")
    (tmp_path / "device.csv").write_text("")
    scan = scan_events([tmp_path], "cert")
    assert scan.files == [tmp_path / "logon.csv", tmp_path / "device.csv"]
    assert scan.events.collect().height == 1


def test_lanl_batch_equals_line_parser(tmp_path: Path) -> None:
    epoch = datetime(2015, 1, 1, tzinfo=UTC)
    auth = tmp_path / "auth.txt"
    auth.write_text(
        (FIXTURES / "lanl" / "auth.txt").read_text()
        + "x,U1@D,U1@D,C1,C2,?,?,TGS,Success\n"
        + "7,U1@D,U1@D,C1,C2,?,?,TGS\n"
        + "8,U1@D,U1@D,C1,C2,?,?,TGS,Success,extra\n"
        + "9,U1@D,U1@D,C1,C2,?,?,TGS,Maybe\n"
        + ",U1@D,U1@D,C1,C2,?,?,TGS,Success\n"
    )
    scan = scan_events([auth], "lanl", lanl_epoch=epoch)
    events, dead = read_lines(auth, LanlAuthParser(epoch))
    assert len(events) == 4
    assert events_from_frame(scan.events.collect(engine="streaming")) == events
    assert sorted(scan.rejects.collect().iter_rows()) == sorted(
        (d.file, d.line, d.reason, d.raw) for d in dead
    )
    assert [(d.line, d.reason) for d in dead] == [
        (5, "bad_timestamp"),
        (6, "wrong_field_count"),
        (7, "wrong_field_count"),
        (8, "unknown_value"),
        (9, "missing_field"),
    ]


def test_jsonl_batch_equals_line_parser(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        (FIXTURES / "jsonl" / "ecs.jsonl").read_text()
        + "{not json\n\n"
        + '{"@timestamp":"2024-05-01T10:00:00Z"}\n'
        + '{"@timestamp":"2024-05-01T10:00:00Z","event.action":"x","source.bytes":-1}\n'
    )
    scan = scan_events([tmp_path], "jsonl")
    assert scan.files == [path]
    events, dead = read_lines(path, JsonLinesParser())
    assert len(events) == 3
    assert events_from_frame(scan.events.collect()) == events
    assert [(line, reason) for _, line, reason, _ in scan.rejects.collect().iter_rows()] == [
        (4, "bad_json"),
        (6, "missing_field"),
        (7, "bad_number"),
    ]
    assert [(d.line, d.reason) for d in dead] == [
        (4, "bad_json"),
        (6, "missing_field"),
        (7, "bad_number"),
    ]


def test_lossy_utf8_reads_invalid_bytes(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(
        b"id,date,user,pc,activity\n{A},01/02/2010 06:49:00,U\xff1,PC-1,Logon\n"
        b"{B},01/02/2010 06:50:00,U2,PC-2,Logoff\n"
    )
    events = scan_events([path], "cert", lossy_utf8=True).events.collect()
    assert events.get_column("user").to_list() == ["U\ufffd1", "U2"]
    assert [e.user for e in read_lines(path, PARSERS["cert.logon"]())[0]] == ["U\ufffd1", "U2"]


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        scan_events([tmp_path], "csv")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        scan_events([tmp_path / "nope.csv"], "cert")


def test_attrs_keys_give_a_struct_of_only_those_keys(tmp_path: Path) -> None:
    for name, text in BAD_CERT.items():
        (tmp_path / name).write_text(text)
    paths = [tmp_path / n for n in BAD_CERT]
    full = scan_events(paths, "cert").events.collect()
    keyed = scan_events(paths, "cert", attrs_keys={"attachments", "url"}).events.collect()
    assert keyed.schema["attrs"] == pl.Struct({"attachments": pl.String, "url": pl.String})
    assert keyed.drop("attrs").equals(full.drop("attrs"))
    by_id = {
        e.attrs["id"]: (e.attrs.get("attachments"), e.attrs.get("url"))
        for e in events_from_frame(full)
    }
    ids = [e.attrs["id"] for e in events_from_frame(full)]
    assert dict(zip(ids, keyed["attrs"].struct.unnest().rows(), strict=True)) == by_id
    assert by_id["{E1}"] == ("2", None)
    assert by_id["{H1}"] == (None, "http://www.Example.com:8080/a?b=c")
    no_attrs = scan_events(paths, "cert", attrs_keys=()).events.collect()
    assert no_attrs["attrs"].dtype == pl.String
    assert no_attrs["attrs"].null_count() == no_attrs.height == full.height


def test_judged_frame_holds_events_and_rejects_of_one_pass(tmp_path: Path) -> None:
    for name, text in BAD_CERT.items():
        (tmp_path / name).write_text(text)
    scan = scan_events([tmp_path / n for n in BAD_CERT], "cert")
    assert scan.judged is not None
    judged = scan.judged.collect(engine="streaming")
    is_event = pl.col("reason").is_null()
    events = judged.filter(is_event)
    assert events.select(list(POLARS_EVENT_SCHEMA)).equals(scan.events.collect())
    # Valid lines carry neither their text nor their file name.
    assert events["raw"].null_count() == events["file"].null_count() == events.height
    rejects = judged.filter(~is_event).select(list(REJECT_SCHEMA))
    assert set(rejects.iter_rows()) == set(scan.rejects.collect().iter_rows())
    # Blank lines and the repeated header are neither events nor rejects.
    assert judged.height == events.height + rejects.height == 12 + 13


@given(st.text(alphabet=" \t\ufeffiIdDx\u00a0\u2003", max_size=8))
def test_repeated_header_test_matches_its_definition(value: str) -> None:
    frame = pl.DataFrame({"id": [value]})
    definition = (
        pl.col("id").str.replace_all("\ufeff", "").str.strip_chars().str.to_lowercase() == "id"
    )
    pattern = pl.col("id").str.contains(_HEADER_ID_PATTERN)
    assert frame.select(definition).item() == frame.select(pattern).item()


def _hosts(urls: list[str | None]) -> tuple[list[str | None], list[str | None]]:
    frame = pl.LazyFrame({"url": urls}, schema={"url": pl.String})
    url = pl.col("url")
    fast = _with_url_host(frame, url, "host").collect()["host"].to_list()
    host = url.str.extract(URL_HOST_PATTERN, 1).str.to_lowercase().str.strip_prefix("www.")
    regex = frame.select(host).collect().to_series().to_list()
    return fast, regex


def test_url_host_takes_the_fast_path_only_where_it_equals_the_pattern() -> None:
    urls = [
        "http://a.com/x",
        "https://b.org",
        "http://",
        "http://u:p@h.com/x",
        "http://h.com:80/x",
        "http://h.com?q=1",
        "HTTP://X.com/a",
        "ftp://f.net/x",
        "h.com/x",
        "http://https://x",
        "http://www.a.com/b@c",
        "http://é.com/ü",
        "http://www.",
        "http://www/x",
        "https://www.www.a.com",
        "http://www.A.com/",
        None,
    ]
    fast, regex = _hosts(urls)
    assert fast == regex
    assert fast == [
        "a.com",
        "b.org",
        "",
        "h.com",
        "h.com",
        "h.com",
        "x.com",
        "f.net",
        "h.com",
        "https",
        "a.com",
        "é.com",
        "",
        "www",
        "www.a.com",
        "a.com",
        None,
    ]


_SCHEMES = st.sampled_from(
    ["http://", "https://", "http://www.", "https://www.", "HTTP://", "ftp://", "http:/", ""]
)


@given(st.lists(st.tuples(_SCHEMES, st.text(alphabet="htps:/@?#.aBéw", max_size=12)), max_size=20))
def test_url_host_matches_the_pattern(parts: list[tuple[str, str]]) -> None:
    fast, regex = _hosts([scheme + rest for scheme, rest in parts])
    assert fast == regex

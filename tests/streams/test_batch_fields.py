"""Field-level shortcuts of the CERT batch reader: exactly what the line parsers give."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import read_lines, scan_events
from streams.parsers import PARSERS

_HTTP_HEADER = "id,date,user,pc,url,activity,content\n"
_EMAIL_HEADER = "id,date,user,pc,to,cc,bcc,from,activity,size,attachments,content\n"


def _judged(path: Path) -> list[tuple[object, ...]]:
    scan = scan_events([path], "cert", attrs_keys=())
    assert scan.judged is not None
    return scan.judged.select("line", "target", "reason").collect().rows()


def test_the_content_field_is_counted_but_never_split(tmp_path: Path) -> None:
    path = tmp_path / "http.csv"
    path.write_text(
        _HTTP_HEADER
        + "{A},01/02/2010 06:49:00,U1,PC-1,http://a.com/x,WWW Visit,words\n"
        + "{B},01/02/2010 06:49:01,U1,PC-1,http://b.com/x,WWW Visit,\n"
        + "{C},01/02/2010 06:49:02,U1,PC-1,http://c.com/x,WWW Visit,a,b,,c\n"
        + "{D},01/02/2010 06:49:03,U1,PC-1,http://d.com/x,WWW Visit\n"
        + "{E},01/02/2010 06:49:04,U1,PC-1,http://e.com/x\n"
        + "{F},01/02/2010 06:49:05,U1,PC-1,,WWW Visit,\n"
    )
    # A missing content field is a wrong field count; an empty one, or one with commas, is not.
    assert _judged(path) == [
        (2, "a.com", None),
        (3, "b.com", None),
        (4, "c.com", None),
        (5, "d.com", "wrong_field_count"),
        (6, "e.com", "wrong_field_count"),
        (7, None, "missing_field"),
    ]
    _, dead = read_lines(path, PARSERS["cert.http"]())
    assert [(d.line, d.reason) for d in dead] == [
        (5, "wrong_field_count"),
        (6, "wrong_field_count"),
        (7, "missing_field"),
    ]


def test_recipients_drop_empty_addresses_wherever_they_are(tmp_path: Path) -> None:
    path = tmp_path / "email.csv"
    rows = [
        ("a@x", "", ""),
        ("a@x", "b@x", "c@x"),
        ("", "", "c@x"),
        ("a@x;;b@x;", "", ";c@x"),
        (";", ";;", ""),
        ("", "", ""),
    ]
    path.write_text(
        _EMAIL_HEADER
        + "".join(
            f"{{{i}}},01/02/2010 06:49:00,U1,PC-1,{to},{cc},{bcc},f@x,Send,1,,text\n"
            for i, (to, cc, bcc) in enumerate(rows)
        )
        + "{X},01/02/2010 06:49:00,U1,PC-1,a@x\n"
    )
    assert _judged(path) == [
        (2, "a@x", None),
        (3, "a@x;b@x;c@x", None),
        (4, "c@x", None),
        (5, "a@x;b@x;c@x", None),
        (6, None, None),
        (7, None, None),
        # Too few fields: no recipients at all, as before the shortcut.
        (8, None, "wrong_field_count"),
    ]


_ADDRESSES = st.text(alphabet="a;,", max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_ADDRESSES, _ADDRESSES, _ADDRESSES), min_size=1, max_size=8))
def test_email_lines_give_the_line_parser_s_targets_and_dead_letters(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str]]
) -> None:
    path = tmp_path_factory.mktemp("email") / "email.csv"
    path.write_text(
        _EMAIL_HEADER
        + "".join(
            f"{{{i}}},01/02/2010 06:49:00,U1,PC-1,{to},{cc},{bcc},f@x,Send,1,,text\n"
            for i, (to, cc, bcc) in enumerate(rows)
        )
    )
    events, dead = read_lines(path, PARSERS["cert.email"]())
    # Commas in the generated addresses shift fields: some lines fail, some still parse.
    expected = {e.attrs["id"]: e.target for e in events}
    scan = scan_events([path], "cert")
    got = scan.events.select("attrs", "target").collect()
    ids = [pl.Series([a]).str.json_path_match("$.id").item() for a in got["attrs"]]
    assert dict(zip(ids, got["target"], strict=True)) == expected
    rejects = scan.rejects.collect()
    assert {(r["line"], r["reason"], r["raw"]) for r in rejects.iter_rows(named=True)} == {
        (d.line, d.reason, d.raw) for d in dead
    }

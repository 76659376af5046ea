"""Golden rows for the CERT line parsers, both releases, and their rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams import Event, ParseError, read_lines
from streams.batch import scan_events
from streams.parsers import (
    CertDeviceParser,
    CertEmailParser,
    CertFileParser,
    CertHttpParser,
    CertLayout,
    CertLogonParser,
)
from streams.parsers.cert import attachment_summary, parse_cert_date, url_host

from .conftest import FIXTURES


def ts(day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(2010, 1, day, hour, minute, second, tzinfo=UTC)


R42_GOLDEN: dict[str, list[Event]] = {
    "logon": [
        Event(
            ts(2, 6, 49, 0),
            "cert.logon",
            "logon",
            "NGF0157",
            "PC-6056",
            "PC-6056",
            attrs={"id": "{X1D9-S0ES98JV-5357PWMI}"},
        ),
        Event(
            ts(2, 17, 32, 57),
            "cert.logon",
            "logoff",
            "NGF0157",
            "PC-6056",
            "PC-6056",
            attrs={"id": "{G2B3-L6EJ61GT-2222RKSO}"},
        ),
    ],
    "device": [
        Event(
            ts(2, 7, 21, 6),
            "cert.device",
            "usb_connect",
            "MOH0273",
            "PC-6699",
            "PC-6699",
            attrs={"id": "{J1S3-L9UU75BQ-7790ATPL}"},
        ),
        Event(
            ts(2, 7, 29, 46),
            "cert.device",
            "usb_disconnect",
            "MOH0273",
            "PC-6699",
            "PC-6699",
            attrs={"id": "{N7B5-Y7BB27SI-2946PUJK}"},
        ),
    ],
    "file": [
        Event(
            ts(2, 7, 23, 14),
            "cert.file",
            "file_copy_removable",
            "MOH0273",
            "PC-6699",
            "EYPC9Y08.doc",
            attrs={"id": "{L9G8-J9QE34VM-2834VDPB}"},
        ),
    ],
    "email": [
        Event(
            ts(2, 7, 11, 45),
            "cert.email",
            "email_send",
            "LAP0338",
            "PC-5758",
            "Dean.Flynn.Hines@dtaa.com;Wade_Harrison@lockheedmartin.com;"
            "Nathaniel.Hunter.Heath@dtaa.com",
            25830,
            attrs={
                "id": "{R3I7-S4TX96FG-8219JWFF}",
                "attachments": "0",
                "from": "Lynn.Adena.Pratt@dtaa.com",
            },
        ),
        Event(
            ts(2, 7, 12, 16),
            "cert.email",
            "email_send",
            "MOH0273",
            "PC-6699",
            "Odonnell-Gage@bellsouth.net",
            29942,
            attrs={
                "id": "{R0R9-E4GL59IK-2907OSWJ}",
                "attachments": "2",
                "from": "MOH68@optonline.net",
            },
        ),
    ],
    "http": [
        Event(
            ts(2, 6, 55, 16),
            "cert.http",
            "http_visit",
            "LRR0148",
            "PC-4275",
            "msn.com",
            attrs={
                "id": "{V1Y4-S2IR20QU-6154HFXJ}",
                "url": "http://msn.com/The_Human_Centipede_First_Sequence/katsuro.htm",
            },
        ),
        Event(
            ts(2, 7, 0, 13),
            "cert.http",
            "http_visit",
            "NGF0157",
            "PC-6056",
            "wikileaks.org",
            attrs={
                "id": "{Q5R1-T3EF87UE-2395RWZS}",
                "url": "http://WWW.WikiLeaks.org/Julian_Assange/assange.php",
            },
        ),
    ],
}

R62_GOLDEN: dict[str, list[Event]] = {
    "logon": [
        Event(
            ts(2, 2, 24, 51),
            "cert.logon",
            "logon",
            "JBI1134",
            "PC-0168",
            "PC-0168",
            attrs={"id": "{Q4D5-W4HH44UC-5188LWZK}"},
        ),
        Event(
            ts(2, 2, 38, 28),
            "cert.logon",
            "logoff",
            "JBI1134",
            "PC-0168",
            "PC-0168",
            attrs={"id": "{G7V0-S4TP95SA-9203AOGR}"},
        ),
    ],
    "device": [
        Event(
            ts(2, 7, 12, 35),
            "cert.device",
            "usb_connect",
            "HPH0075",
            "PC-2417",
            "PC-2417",
            attrs={
                "id": "{Q6L2-U1MB71HC-3658UZPP}",
                "file_tree": "R:\\;R:\\HPH0075;R:\\41aHPH0075",
            },
        ),
        Event(
            ts(2, 7, 53, 32),
            "cert.device",
            "usb_disconnect",
            "HPH0075",
            "PC-2417",
            "PC-2417",
            attrs={"id": "{E6B4-O4QP53TX-2862CRXF}"},
        ),
    ],
    "file": [
        Event(
            ts(2, 7, 23, 14),
            "cert.file",
            "file_copy_removable",
            "HPH0075",
            "PC-2417",
            "R:\\41aHPH0075\\V0LZ5GUW.doc",
            attrs={
                "id": "{Z8C1-A3PV62XR-3442RYEB}",
                "activity": "File Write",
                "to_removable_media": "True",
                "from_removable_media": "False",
            },
        ),
        Event(
            ts(2, 7, 25, 0),
            "cert.file",
            "file_open",
            "HPH0075",
            "PC-2417",
            "C:\\9BRSHM7P\\GDJ53T0L.pdf",
            attrs={
                "id": "{A2B3-C4DE56FG-7890HIJK}",
                "activity": "File Open",
                "to_removable_media": "False",
                "from_removable_media": "True",
            },
        ),
        Event(
            ts(2, 7, 26, 0),
            "cert.file",
            "file_delete",
            "HPH0075",
            "PC-2417",
            "C:\\9BRSHM7P\\GDJ53T0L.pdf",
            attrs={
                "id": "{B2B3-C4DE56FG-7890HIJK}",
                "activity": "File Delete",
                "to_removable_media": "False",
                "from_removable_media": "False",
            },
        ),
    ],
    "email": [
        Event(
            ts(2, 7, 36, 48),
            "cert.email",
            "email_send",
            "BJC0569",
            "PC-5866",
            "Odonnell-Gage@bellsouth.net;Leila.Hill@dtaa.com;Leila.Hill@dtaa.com",
            24052,
            attrs={
                "id": "{A3H7-W8QE25NX-1306WHKH}",
                "attachments": "2",
                "attachment_bytes": str(38424 + 120111),
                "from": "Brennan.Jakeem.Calderon@dtaa.com",
            },
        ),
        Event(
            ts(2, 8, 1, 2),
            "cert.email",
            "email_view",
            "BJC0569",
            "PC-5866",
            "Brennan.Jakeem.Calderon@dtaa.com",
            11830,
            attrs={
                "id": "{B3H7-W8QE25NX-1306WHKH}",
                "attachments": "0",
                "attachment_bytes": "0",
                "from": "Leila.Hill@dtaa.com",
            },
        ),
    ],
    "http": [
        Event(
            ts(2, 6, 50, 37),
            "cert.http",
            "http_upload",
            "ACM2278",
            "PC-1459",
            "dropbox.com",
            attrs={
                "id": "{N4G0-D4EP29TA-4547VGLC}",
                "url": "http://www.dropbox.com/files/upload.php",
            },
        ),
        Event(
            ts(2, 6, 51, 0),
            "cert.http",
            "http_download",
            "ACM2278",
            "PC-1459",
            "intranet.dtaa.com",
            attrs={
                "id": "{P4G0-D4EP29TA-4547VGLC}",
                "url": "https://user@intranet.dtaa.com:8443/hr?id=1",
            },
        ),
        Event(
            ts(2, 6, 52, 0),
            "cert.http",
            "http_visit",
            "ACM2278",
            "PC-1459",
            "wikipedia.org",
            attrs={"id": "{R4G0-D4EP29TA-4547VGLC}", "url": "http://wikipedia.org/wiki/Insider"},
        ),
    ],
}

PARSER_OF = {
    "logon": CertLogonParser,
    "device": CertDeviceParser,
    "file": CertFileParser,
    "email": CertEmailParser,
    "http": CertHttpParser,
}


@pytest.mark.parametrize(
    ("release", "kind"),
    [(r, k) for r in ("cert_r42", "cert_r62") for k in PARSER_OF],
)
def test_golden_rows(release: str, kind: str) -> None:
    golden = (R42_GOLDEN if release == "cert_r42" else R62_GOLDEN)[kind]
    events, dead = read_lines(FIXTURES / release / f"{kind}.csv", PARSER_OF[kind]())
    assert dead == []
    assert events == golden


def test_parser_built_with_header_needs_no_header_line() -> None:
    parser = CertFileParser(header=["id", "date", "user", "pc", "filename", "content"])
    event = parser.parse("{L9},01/02/2010 07:23:14,MOH0273,PC-6699,EYPC9Y08.doc,a, b")
    assert event == Event(
        ts(2, 7, 23, 14),
        "cert.file",
        "file_copy_removable",
        "MOH0273",
        "PC-6699",
        "EYPC9Y08.doc",
        attrs={"id": "{L9}"},
    )


def test_parser_without_header_expects_r62_layout() -> None:
    parser = CertHttpParser()
    with pytest.raises(ParseError) as info:
        parser.parse("{V1},01/02/2010 06:55:16,LRR0148,PC-4275,http://msn.com/x")
    assert info.value.reason == "wrong_field_count"


def test_header_line_switches_layout_and_is_skipped() -> None:
    parser = CertEmailParser()
    assert parser.layout.release == "r6.2"
    assert parser.parse("id,date,user,pc,to,cc,bcc,from,size,attachments,content") is None
    assert parser.layout.release == "r4.2"
    event = parser.parse("{E},01/02/2010 07:12:16,MOH0273,PC-6699,a@x.com,,,b@y.com,10,3,hi")
    assert event is not None
    assert (event.action, event.bytes, dict(event.attrs)) == (
        "email_send",
        10,
        {"id": "{E}", "attachments": "3", "from": "b@y.com"},
    )


def test_header_missing_a_column_is_refused() -> None:
    with pytest.raises(ValueError, match="pc"):
        CertLayout.from_header("logon", ["id", "date", "user", "activity"])
    with pytest.raises(ParseError) as info:
        CertLogonParser().parse("id,date,user,activity")
    assert info.value.reason == "bad_header"


def test_columns_are_found_by_name_in_any_order() -> None:
    parser = CertLogonParser(header=["date", "activity", "pc", "user", "id"])
    event = parser.parse("01/02/2010 06:49:00,Logoff,PC-1,U1,{I}")
    assert event == Event(
        ts(2, 6, 49, 0), "cert.logon", "logoff", "U1", "PC-1", "PC-1", attrs={"id": "{I}"}
    )


@pytest.mark.parametrize(
    ("parser", "line", "reason", "field"),
    [
        (CertLogonParser(), "{A},01/02/2010 06:49:00,U1,PC-1", "wrong_field_count", ""),
        (CertLogonParser(), "{A},01/02/2010 06:49:00,U1,PC-1,Logon,x", "wrong_field_count", ""),
        (CertLogonParser(), "{A},,U1,PC-1,Logon", "missing_field", "date"),
        (CertLogonParser(), "{A},13/02/2010 06:49:00,U1,PC-1,Logon", "bad_timestamp", "date"),
        (CertLogonParser(), "{A},02/30/2010 06:49:00,U1,PC-1,Logon", "bad_timestamp", "date"),
        (CertLogonParser(), "{A},2010-01-02 06:49:00,U1,PC-1,Logon", "bad_timestamp", "date"),
        (CertLogonParser(), "{A},01/02/2010 06:49:00,,PC-1,Logon", "missing_field", "user"),
        (CertLogonParser(), "{A},01/02/2010 06:49:00,U1,,Logon", "missing_field", "pc"),
        (CertLogonParser(), "{A},01/02/2010 06:49:00,U1,PC-1,Reboot", "unknown_value", "activity"),
        (CertLogonParser(), "{A},01/02/2010 06:49:00,U1,PC-1,", "missing_field", "activity"),
        (
            CertFileParser(),
            "{F},01/02/2010 06:49:00,U1,PC-1,a.doc,File Copy,Yes,False,c",
            "unknown_value",
            "to_removable_media",
        ),
        (
            CertFileParser(),
            "{F},01/02/2010 06:49:00,U1,PC-1,,File Copy,True,False,c",
            "missing_field",
            "filename",
        ),
        (
            CertEmailParser(),
            "{E},01/02/2010 06:49:00,U1,PC-1,a@b,,,c@d,Send,12kB,,c",
            "bad_number",
            "size",
        ),
        (
            CertEmailParser(),
            "{E},01/02/2010 06:49:00,U1,PC-1,a@b,,,c@d,Sent,12,,c",
            "unknown_value",
            "activity",
        ),
        (CertHttpParser(), "{H},01/02/2010 06:49:00,U1,PC-1,,WWW Visit,c", "missing_field", "url"),
    ],
)
def test_malformed_lines_raise_with_reason_and_field(
    parser: CertLogonParser, line: str, reason: str, field: str
) -> None:
    with pytest.raises(ParseError) as info:
        parser.parse(line)
    assert info.value.reason == reason
    assert field in info.value.detail


def test_blank_lines_are_skipped() -> None:
    assert CertLogonParser().parse("") is None
    assert CertLogonParser().parse("  \r") is None


def test_dead_letters_keep_line_numbers_and_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "logon.csv"
    path.write_text(
        "id,date,user,pc,activity\n"
        "{A},01/02/2010 06:49:00,U1,PC-1,Logon\n"
        "{B},01/32/2010 06:49:00,U1,PC-1,Logon\n"
        "\n"
        "{C},01/02/2010 06:49:00,U1,PC-1\n"
        "{D},01/02/2010 07:00:00,U2,PC-2,Logoff\r\n"
    )
    events, dead = read_lines(path, CertLogonParser())
    assert [(e.user, e.action, e.attrs["id"]) for e in events] == [
        ("U1", "logon", "{A}"),
        ("U2", "logoff", "{D}"),
    ]
    assert [(d.line, d.reason, d.raw) for d in dead] == [
        (3, "bad_timestamp", "{B},01/32/2010 06:49:00,U1,PC-1,Logon"),
        (5, "wrong_field_count", "{C},01/02/2010 06:49:00,U1,PC-1"),
    ]
    assert all(d.file == str(path) for d in dead)
    with pytest.raises(ParseError, match=r"logon.csv:3: "):
        read_lines(path, CertLogonParser(), strict=True)


def test_a_lone_carriage_return_stays_inside_its_line_as_the_batch_reader_keeps_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logon.csv"
    path.write_bytes(
        b"id,date,user,pc,activity\n"
        b"{A},01/02/2010 06:49:00,U1,PC-1,Logon\n"
        b"{E},01/02/2010 08:00:00,U3,PC\r-3,Logon\r\n"
        b"{F},01/02/2010 09:00:00,U4,PC-4,Logoff\n"
        b"{G},01/02/2010 09:00:00,U4\n"
    )
    events, dead = read_lines(path, CertLogonParser())
    # One line, one event (its CRLF's CR is the line end's); the lines after keep their numbers.
    assert [(e.user, e.host) for e in events] == [("U1", "PC-1"), ("U3", "PC\r-3"), ("U4", "PC-4")]
    assert [(d.line, d.reason) for d in dead] == [(5, "wrong_field_count")]
    batch = scan_events([path], "cert")
    assert batch.events.collect().select("user", "host").rows() == [
        (e.user, e.host) for e in events
    ]
    assert batch.rejects.collect().select("line", "reason").rows() == [(5, "wrong_field_count")]


def test_date_rule() -> None:
    assert parse_cert_date("12/31/2010 23:59:59") == datetime(2010, 12, 31, 23, 59, 59, tzinfo=UTC)
    # Polars reads second 60 as a leap second into the next minute; the line parser agrees.
    assert parse_cert_date("01/02/2010 07:08:60") == datetime(2010, 1, 2, 7, 9, tzinfo=UTC)
    with pytest.raises(ParseError):
        parse_cert_date("1/2/2010 07:08:09")


def test_url_host_and_attachment_helpers() -> None:
    assert url_host("HTTP://WWW.Example.COM:80/a") == "example.com"
    assert url_host("ftp://a:b@files.example.net/x") == "files.example.net"
    assert url_host("wwwhost.org/x") == "wwwhost.org"
    assert url_host("") is None
    assert attachment_summary(r"C:\a.doc(10);C:\b.zip;C:\c.txt(5)") == (3, 15)

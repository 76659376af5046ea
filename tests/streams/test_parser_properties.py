"""Property tests: every parser survives format-shaped garbage; valid lines of each new format
round-trip their fields (syslog headers, auth.log, Winlogbeat, drain templates)."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams import Event, ParseError
from streams.parsers import (
    PARSERS,
    AuthLogParser,
    DrainTemplateParser,
    WindowsSecurityParser,
    parse_syslog_header,
)
from streams.parsers.windows import is_system_account

FUZZ = settings(max_examples=200, deadline=None)
# The garbage tests run for every registered parser (and test_contract.py adds plain text and
# bytes for each): 100 examples each keeps the whole file near 15 s of CPU.
EVERY_PARSER = settings(max_examples=100, deadline=None)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# -- every parser, format-shaped garbage -------------------------------------------------------

HEADER_PARTS = st.sampled_from(
    [
        "<34>",
        "<191>",
        "<0>",
        "<999>",
        "<",
        "1 ",
        "2026-11-27T10:00:00.123Z ",
        "2026-11-27T10:00:00+01:00 ",
        "Nov 27 10:00:00 ",
        "Feb 29 23:59:59 ",
        "Nov  7 10:00:00 ",
        "host ",
        "- ",
        "sshd[1]: ",
        "sudo: ",
        "su[2]: ",
        '[a@1 x="y\\"]"] ',
        "[",
        "\ufeff",
        "Accepted password for ",
        "Failed password for invalid user ",
        "Invalid user ",
        "Connection closed by invalid user ",
        "from 10.0.0.1 port 22 ssh2",
        "pam_unix(su:session): session opened for user root by ",
        "alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id",
        " ; ",
        "(to root) ",
        "FAILED SU ",
        "message repeated 3 times: [ ",
        "081109 203615 148 INFO ",
        "blk_-42 ",
        "0x1f ",
        "10.0.0.1:50010 ",
        "\r\n",
    ]
)
SHAPED_SYSLOG = st.lists(HEADER_PARTS | st.text(max_size=8), min_size=1, max_size=12).map("".join)
WINDOWS_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.sampled_from(["4624", "4688", "-", "", "2026-11-27T10:00:00Z", "x$", " 10 "])
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "@timestamp",
                    "event",
                    "code",
                    "event.code",
                    "winlog",
                    "event_id",
                    "event_data",
                    "TargetUserName",
                    "LogonType",
                    "PrivilegeList",
                    "Status",
                    "host",
                    "name",
                    "user",
                    "source",
                    "ip",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)
SHAPED_JSON = WINDOWS_VALUES.map(json.dumps)


def outcome(parser_name: str, line: str) -> Event | None:
    """Parse with a fresh parser: an Event, None, or a ParseError with a reason."""
    try:
        result = PARSERS[parser_name]().parse(line)
    except ParseError as exc:
        assert exc.reason
        return None
    assert result is None or isinstance(result, Event)
    if result is not None:
        assert result.ts.tzinfo is not None and result.ts.utcoffset() == timedelta(0)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.attrs.items())
    return result


@pytest.mark.parametrize("name", sorted(PARSERS))
@EVERY_PARSER
@given(line=st.text() | SHAPED_SYSLOG | SHAPED_JSON)
def test_any_text_is_an_event_none_or_parse_error(name: str, line: str) -> None:
    outcome(name, line)


@pytest.mark.parametrize("name", sorted(PARSERS))
@EVERY_PARSER
@given(data=st.binary() | SHAPED_SYSLOG.map(lambda s: s.encode("utf-8", "replace")))
def test_any_bytes_decoded_are_an_event_none_or_parse_error(name: str, data: bytes) -> None:
    outcome(name, data.decode("utf-8", errors="replace"))


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(SHAPED_SYSLOG | st.text(max_size=40), max_size=30))
def test_drain_keeps_learning_without_crashing(lines: list[str]) -> None:
    """One drain parser over many lines (its state grows): still only Events/None/ParseError."""
    parser = DrainTemplateParser(max_clusters=5)
    for line in lines:
        try:
            event = parser.parse(line)
        except ParseError:
            continue
        assert event is None or event.action.startswith("template:")
    copy = DrainTemplateParser(max_clusters=5)
    copy.restore(parser.state())
    assert copy.templates() == parser.templates()


# -- syslog headers round-trip ---------------------------------------------------------------

TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=20)
HOST = TOKEN.filter(lambda t: t != "-")
APP = st.text(alphabet=string.ascii_letters + string.digits + "_-./", min_size=1, max_size=20)
PID = st.integers(0, 10**7).map(str)
# Messages: anything but line breaks and a leading byte-order mark.
MESSAGE = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\ufeff"), max_size=60
)
TIMES = st.datetimes(
    min_value=datetime(1971, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
PRI = st.none() | st.integers(0, 191)
SD_VALUE = st.text(alphabet='ab "]\\=', max_size=8).map(
    lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
)
SD_ELEMENT = st.tuples(TOKEN.filter(lambda t: t != "-"), SD_VALUE).map(
    lambda p: f'[{p[0]} k="{p[1]}"]'
)


def pri_text(pri: int | None) -> str:
    return "" if pri is None else f"<{pri}>"


@FUZZ
@given(
    pri=st.integers(0, 191),
    ts=TIMES,
    offset=OFFSETS,
    host=st.none() | HOST,
    app=st.none() | APP.filter(lambda a: a != "-"),
    pid=st.none() | PID,
    msgid=st.none() | TOKEN.filter(lambda t: t != "-"),
    sd=st.none() | st.lists(SD_ELEMENT, min_size=1, max_size=3).map("".join),
    message=MESSAGE,
    bom=st.booleans(),
)
def test_rfc5424_round_trip(
    pri: int,
    ts: datetime,
    offset: timezone,
    host: str | None,
    app: str | None,
    pid: str | None,
    msgid: str | None,
    sd: str | None,
    message: str,
    bom: bool,
) -> None:
    fields = " ".join(v or "-" for v in (host, app, pid, msgid, sd))
    stamp = ts.astimezone(offset).isoformat(timespec="microseconds")
    line = f"<{pri}>1 {stamp} {fields} {chr(0xFEFF) if bom else ''}{message}"
    msg = parse_syslog_header(line)
    assert (msg.ts, msg.host, msg.app, msg.pid, msg.msgid, msg.structured_data) == (
        ts,
        host,
        app,
        pid,
        msgid,
        sd,
    )
    assert (msg.facility, msg.severity, msg.message) == (pri // 8, pri % 8, message)


@FUZZ
@given(
    pri=PRI,
    ts=TIMES.map(lambda t: t.replace(microsecond=0)),
    host=HOST,
    app=APP,
    pid=st.none() | PID,
    message=MESSAGE,
    iso=st.booleans(),
)
def test_rfc3164_round_trip(
    pri: int | None,
    ts: datetime,
    host: str,
    app: str,
    pid: str | None,
    message: str,
    iso: bool,
) -> None:
    tag = f"{app}[{pid}]:" if pid is not None else f"{app}:"
    bsd = f"{MONTHS[ts.month - 1]} {ts.day:2d} {ts:%H:%M:%S}"
    stamp = ts.isoformat() if iso else bsd
    msg = parse_syslog_header(f"{pri_text(pri)}{stamp} {host} {tag} {message}", year=ts.year)
    assert (msg.ts, msg.host, msg.app, msg.pid, msg.message) == (ts, host, app, pid, message)
    assert msg.facility == (None if pri is None else pri // 8)


# -- auth.log round-trip ---------------------------------------------------------------------

USER = st.text(alphabet=string.ascii_lowercase + string.digits + "_.-", min_size=1, max_size=16)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda o: ".".join(map(str, o)))
PORT = st.integers(1, 65535).map(str)
TTY = st.sampled_from(["pts/0", "pts/17", "tty1", "console"])


@FUZZ
@given(
    kind=st.sampled_from(["accepted", "failed", "invalid", "closed", "sudo", "su", "pam"]),
    user=USER,
    target=USER,
    ip=IPV4,
    port=PORT,
    tty=TTY,
    invalid=st.booleans(),
    failed=st.booleans(),
    method=st.sampled_from(["password", "publickey", "keyboard-interactive/pam"]),
    command=MESSAGE.filter(lambda c: c.strip() == c and c != ""),
    host=HOST,
    pri=PRI,
)
def test_authlog_round_trip(
    kind: str,
    user: str,
    target: str,
    ip: str,
    port: str,
    tty: str,
    invalid: bool,
    failed: bool,
    method: str,
    command: str,
    host: str,
    pri: int | None,
) -> None:
    messages: dict[str, tuple[str, str | None]] = {
        "accepted": (f"sshd[9]: Accepted {method} for {user} from {ip} port {port} ssh2", "logon"),
        "failed": (
            f"sshd[9]: Failed {method} for {'invalid user ' if invalid else ''}{user} "
            f"from {ip} port {port} ssh2",
            "logon_failure",
        ),
        "invalid": (f"sshd[9]: Invalid user {user} from {ip} port {port}", "invalid_user"),
        # The end of an attempt already counted by its Failed line: no event.
        "closed": (
            f"sshd[9]: Connection closed by {'invalid' if invalid else 'authenticating'} user "
            f"{user} {ip} port {port} [preauth]",
            None,
        ),
        "sudo": (
            f"sudo: {user} : {'3 incorrect password attempts ; ' if failed else ''}TTY={tty} ; "
            f"PWD=/home/{user} ; USER={target} ; COMMAND={command}",
            "run_as",
        ),
        "su": (
            f"su[9]: {'FAILED SU ' if failed else ''}(to {target}) {user} on {tty}",
            "switch_user",
        ),
        "pam": (
            f"su[9]: pam_unix(su:session): session opened for user {target}(uid=0) by "
            f"{user}(uid=1000)",
            "session_open",
        ),
    }
    message, action = messages[kind]
    event = AuthLogParser(year=2026).parse(f"{pri_text(pri)}Nov 27 10:00:00 {host} {message}")
    if action is None:
        assert event is None
        return
    assert event is not None
    assert (event.action, event.user, event.host) == (action, user, host)
    if kind in ("accepted", "failed", "invalid"):
        assert (event.target, event.attrs["src_ip"], event.attrs["port"]) == (host, ip, port)
        assert event.outcome == ("success" if kind == "accepted" else "failure")
    else:
        assert event.target == target
    if kind == "sudo":
        assert (event.attrs["command"], event.attrs["tty"]) == (command[:512], tty)
    if kind in ("sudo", "su"):
        assert event.outcome == ("failure" if failed else "success")


# -- Winlogbeat round-trip -------------------------------------------------------------------

ACCOUNT = st.text(
    alphabet=string.ascii_letters + string.digits + " ._-$", min_size=1, max_size=20
).filter(lambda a: a.strip() == a and a not in ("", "-"))


@FUZZ
@given(
    event_id=st.sampled_from([4624, 4625, 4634, 4648, 4672, 4688, 4720, 4732]),
    ts=TIMES,
    account=ACCOUNT | st.sampled_from(["SYSTEM", "ANONYMOUS LOGON", "DWM-2", "UMFD-0", "WS02$"]),
    other=ACCOUNT,
    host=HOST,
    logon_type=st.sampled_from(["2", "3", "10", "99"]),
    ip=IPV4,
    numeric_id=st.booleans(),
    flat=st.booleans(),
)
def test_windows_round_trip(
    event_id: int,
    ts: datetime,
    account: str,
    other: str,
    host: str,
    logon_type: str,
    ip: str,
    numeric_id: bool,
    flat: bool,
) -> None:
    actor = "TargetUserName" if event_id in (4624, 4625, 4634) else "SubjectUserName"
    data = {actor: account, "LogonType": logon_type, "IpAddress": ip}
    if actor == "SubjectUserName":
        data["TargetUserName"] = other
    data["TargetServerName"] = data["NewProcessName"] = other
    winlog = {"event_id": event_id if numeric_id else str(event_id), "event_data": data}
    stamp = ts.isoformat().replace("+00:00", "Z")
    obj: dict[str, object] = (
        {"@timestamp": stamp, "host.name": host, **{f"winlog.{k}": v for k, v in winlog.items()}}
        if flat
        else {"@timestamp": stamp, "host": {"name": host}, "winlog": winlog}
    )
    event = WindowsSecurityParser().parse(json.dumps(obj))
    assert event is not None
    # Machine accounts and system principals are no user; their name stays in attrs.
    machine = account.endswith("$")
    system = not machine and is_system_account(account)
    person = not (machine or system)
    assert (event.ts, event.user, event.host) == (ts, account if person else None, host)
    assert event.attrs.get("account") == (None if person else account)
    assert event.attrs["event_id"] == str(event_id)
    assert event.attrs["machine_account"] == ("true" if machine else "false")
    assert event.attrs["system_account"] == ("true" if system else "false")
    if event_id == 4624:
        interactive = "logon" if person else "logon_service"
        assert event.action == ("logon_network" if logon_type == "3" else interactive)
    assert event.attrs["logon_type"] == logon_type and event.attrs["src_ip"] == ip
    expected_target = host if event_id in (4624, 4625, 4634, 4672) else other
    assert event.target == expected_target
    assert event.outcome == ("failure" if event_id == 4625 else "success")


# -- drain round-trip ------------------------------------------------------------------------

WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(TIMES.map(lambda t: t.replace(microsecond=0)), st.integers(0, 10**9), IPV4),
        min_size=1,
        max_size=5,
    ),
    verb=WORD,
    hdfs=st.booleans(),
)
@example(rows=[(datetime(2024, 2, 29, 12, 0, tzinfo=UTC), 7, "10.0.0.1")], verb="ran", hdfs=True)
def test_drain_round_trip(rows: list[tuple[datetime, int, str]], verb: str, hdfs: bool) -> None:
    """Lines of one template with random values: one action, values back as parameters."""
    parser = DrainTemplateParser()
    actions = set()
    for ts, number, ip in rows:
        if hdfs:
            # %y reads 69..99 as 19xx; a step of 68 keeps the year's remainder by 4, so a
            # 29 February lands in a leap year (2000-2067 follow the plain 4-year rule).
            ts = ts.replace(year=2000 + ts.year % 68)
            stamp = f"{ts:%y%m%d %H%M%S}"
        else:
            stamp = ts.isoformat()
        event = parser.parse(f"{stamp} job {number} {verb} from {ip} ok")
        assert event is not None
        assert event.ts == ts
        assert event.attrs["template"] == f"job <NUM> {verb} from <IP> ok"
        assert (event.attrs["param_0"], event.attrs["param_1"]) == (str(number), ip)
        actions.add(event.action)
    assert actions == {"template:1"}

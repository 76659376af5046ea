"""Golden rows for the Linux ``auth.log`` parser (sshd, sudo, su)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from streams import Event, ParseError, read_lines
from streams.parsers import PARSERS, AuthLogParser

from .conftest import FIXTURES

SRC = "linux.auth"


def at(hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(2026, 11, 27, hour, minute, second, micro, tzinfo=UTC)


def test_auth_log_file_golden() -> None:
    events, dead = read_lines(FIXTURES / "authlog" / "auth.log", AuthLogParser(year=2026))
    assert dead == []
    # Skipped: CRON's session, systemd-logind, sudo's PAM session, sshd's "Connection closed
    # by ... [preauth]" and "Received disconnect".
    assert events == [
        Event(
            at(8, 1, 12),
            SRC,
            "logon",
            "alice",
            "bastion",
            "bastion",
            None,
            "success",
            {
                "event": "accepted",
                "method": "publickey",
                "src_ip": "10.0.0.5",
                "port": "51234",
                "key": "ED25519 SHA256:Qm9vR2V0c0FsbEtleXM",
                "program": "sshd",
                "pid": "21001",
            },
        ),
        Event(
            at(8, 1, 12),
            SRC,
            "session_open",
            "alice",
            "bastion",
            "alice",
            None,
            "success",
            {
                "event": "session_opened",
                "service": "sshd",
                "by_uid": "0",
                "program": "sshd",
                "pid": "21001",
            },
        ),
        Event(
            at(8, 2, 40),
            SRC,
            "run_as",
            "alice",
            "bastion",
            "root",
            None,
            "success",
            {
                "event": "sudo",
                "tty": "pts/0",
                "pwd": "/home/alice",
                "command": "/usr/bin/id",
                "program": "sudo",
            },
        ),
        Event(
            at(8, 5, 2),
            SRC,
            "run_as",
            "bob",
            "bastion",
            "root",
            None,
            "failure",
            {
                "event": "sudo",
                "tty": "pts/1",
                "pwd": "/home/bob",
                "command": "/usr/bin/apt update",
                "reason": "3 incorrect password attempts",
                "failed_attempts": "3",
                "program": "sudo",
            },
        ),
        Event(
            at(8, 6, 10),
            SRC,
            "switch_user",
            "alice",
            "bastion",
            "root",
            None,
            "success",
            {"event": "su", "tty": "pts/0", "program": "su", "pid": "21302"},
        ),
        Event(
            at(8, 6, 10),
            SRC,
            "session_open",
            "alice",
            "bastion",
            "root",
            None,
            "success",
            {
                "event": "session_opened",
                "service": "su",
                "by_uid": "1001",
                "program": "su",
                "pid": "21302",
            },
        ),
        Event(
            at(8, 6, 55),
            SRC,
            "switch_user",
            "bob",
            "bastion",
            "postgres",
            None,
            "failure",
            {"event": "su", "tty": "pts/1", "program": "su", "pid": "21330"},
        ),
        Event(
            at(8, 7, 30),
            SRC,
            "session_close",
            "root",
            "bastion",
            "root",
            None,
            "success",
            {"event": "session_closed", "service": "su", "program": "su", "pid": "21302"},
        ),
        # One refused attempt on three lines: Invalid user (no failure of its own), Failed
        # password (the one logon_failure), Connection closed [preauth] (no event).
        Event(
            at(8, 10, 4),
            SRC,
            "invalid_user",
            "admin",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "invalid_user",
                "src_ip": "203.0.113.9",
                "port": "40112",
                "invalid_user": "true",
                "program": "sshd",
                "pid": "21410",
            },
        ),
        Event(
            at(8, 10, 6),
            SRC,
            "logon_failure",
            "admin",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "failed",
                "method": "password",
                "src_ip": "203.0.113.9",
                "port": "40112",
                "invalid_user": "true",
                "program": "sshd",
                "pid": "21410",
            },
        ),
        Event(
            at(8, 11, 20),
            SRC,
            "logon_failure",
            "root",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "failed",
                "method": "password",
                "src_ip": "203.0.113.9",
                "port": "40210",
                "invalid_user": "false",
                "program": "sshd",
                "pid": "21433",
            },
        ),
        Event(
            at(8, 11, 24),
            SRC,
            "logon_failure",
            "root",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "failed",
                "method": "password",
                "src_ip": "203.0.113.9",
                "port": "40210",
                "invalid_user": "false",
                "program": "sshd",
                "pid": "21433",
                "repeated": "2",
            },
        ),
        Event(
            at(9, 15, 45),
            SRC,
            "logon",
            "carol",
            "bastion",
            "bastion",
            None,
            "success",
            {
                "event": "accepted",
                "method": "password",
                "src_ip": "192.168.1.20",
                "port": "60022",
                "program": "sshd",
                "pid": "21555",
            },
        ),
        Event(
            at(9, 20, 1),
            SRC,
            "logon",
            "dave",
            "bastion",
            "bastion",
            None,
            "success",
            {
                "event": "accepted",
                "method": "keyboard-interactive/pam",
                "src_ip": "192.168.1.21",
                "port": "60100",
                "program": "sshd",
                "pid": "21590",
            },
        ),
        Event(
            at(17, 30, 12),
            SRC,
            "session_close",
            "alice",
            "bastion",
            "alice",
            None,
            "success",
            {"event": "session_closed", "service": "sshd", "program": "sshd", "pid": "21001"},
        ),
    ]


def test_network_forms_golden() -> None:
    """<PRI> BSD, RFC 5424 (with offset, with SD), rsyslog ISO, host-less BSD, a bad header."""
    events, dead = read_lines(FIXTURES / "authlog" / "network.log", AuthLogParser(year=2026))
    assert [(e.ts, e.action, e.user, e.host, e.target, e.outcome) for e in events] == [
        (at(10, 0, 0), "logon", "erin", "web1", "web1", "success"),
        # 10:00:01.250+01:00
        (at(9, 0, 1, 250000), "logon_failure", "erin", "web1", "web1", "failure"),
        (at(10, 0, 2), "run_as", "erin", "web1", "www-data", "success"),
        (at(9, 0, 3, 123456), "switch_user", "erin", "web1", "root", "success"),
        (at(10, 0, 4), "invalid_user", "test", None, None, "failure"),
    ]
    # RFC 5424's PROCID, given or nil; the SD does not leak into the sudo fields.
    assert events[1].attrs["pid"] == "902" and "pid" not in events[2].attrs
    assert events[2].attrs["command"] == "/bin/systemctl restart nginx"
    assert [(d.line, d.reason) for d in dead] == [(6, "bad_header")]


@pytest.mark.parametrize(
    ("message", "action", "user", "target", "outcome", "attrs"),
    [
        (
            "sshd[5]: Failed publickey for git from 2001:db8::7 port 22 ssh2: RSA SHA256:x",
            "logon_failure",
            "git",
            "h",
            "failure",
            {"event": "failed", "method": "publickey", "src_ip": "2001:db8::7", "port": "22"},
        ),
        (
            # An empty user name (sshd logs two spaces) is no user.
            "sshd[5]: Failed none for invalid user  from 10.9.8.7 port 1 ssh2",
            "logon_failure",
            None,
            "h",
            "failure",
            {"event": "failed", "method": "none", "invalid_user": "true"},
        ),
        (
            # Older sshd: no port on "Invalid user".
            "sshd[5]: Invalid user oracle from 10.9.8.7",
            "invalid_user",
            "oracle",
            "h",
            "failure",
            {"event": "invalid_user", "src_ip": "10.9.8.7"},
        ),
        (
            # OpenSSH 9.8+ logs from sshd-session.
            "sshd-session[5]: Accepted password for ann from 10.0.0.1 port 9 ssh2",
            "logon",
            "ann",
            "h",
            "success",
            {"program": "sshd-session", "method": "password"},
        ),
        (
            # Older PAM: no uid after the user names.
            "su[5]: pam_unix(su-l:session): session opened for user root by ann(uid=1000)",
            "session_open",
            "ann",
            "root",
            "success",
            {"service": "su-l", "by_uid": "1000"},
        ),
        (
            "sudo: ann : user NOT in sudoers ; TTY=pts/3 ; PWD=/tmp ; USER=root ; "
            "COMMAND=/bin/sh -c 'a ; b'",
            "run_as",
            "ann",
            "root",
            "failure",
            {"reason": "user NOT in sudoers", "command": "/bin/sh -c 'a ; b'", "tty": "pts/3"},
        ),
        (
            "sudo: ann : 1 incorrect password attempt ; TTY=pts/3 ; PWD=/ ; USER=postgres ; "
            "COMMAND=/usr/bin/psql",
            "run_as",
            "ann",
            "postgres",
            "failure",
            {"failed_attempts": "1"},
        ),
    ],
)
def test_message_variants(
    message: str,
    action: str,
    user: str | None,
    target: str,
    outcome: str,
    attrs: dict[str, str],
) -> None:
    event = AuthLogParser(year=2026).parse(f"Nov 27 10:00:00 h {message}")
    assert event is not None
    assert (event.action, event.user, event.host, event.target, event.outcome) == (
        action,
        user,
        "h",
        target,
        outcome,
    )
    assert {key: event.attrs.get(key) for key in attrs} == attrs


@pytest.mark.parametrize(
    "message",
    [
        "sshd[5]: Server listening on 0.0.0.0 port 22.",
        "sshd[5]: Disconnected from user ann 10.0.0.1 port 9",
        "sshd[5]: Connection closed by 10.0.0.1 port 9 [preauth]",
        # The end of a refused attempt whose Failed line was the logon failure.
        "sshd[5]: Connection closed by invalid user eve 10.0.0.1 port 9 [preauth]",
        "sshd[5]: Connection closed by authenticating user root 10.0.0.1 port 9 [preauth]",
        "sshd[5]: pam_unix(sshd:auth): authentication failure; logname= uid=0 rhost=1.2.3.4",
        "sudo: pam_unix(sudo:session): session closed for user root",
        "sudo:   ann : unable to resolve host h: Name or service not known",
        "su[5]: pam_unix(su:auth): authentication failure; logname=ann uid=1000 user=root",
        "kernel: [  1.0] Linux version 6.1",
        "CRON[5]: pam_unix(cron:session): session opened for user root by (uid=0)",
        "-- MARK --",
    ],
)
def test_not_modelled_is_none(message: str) -> None:
    assert AuthLogParser(year=2026).parse(f"Nov 27 10:00:00 h {message}") is None


def test_blank_and_broken_lines() -> None:
    parser = AuthLogParser(year=2026)
    assert parser.parse("") is None
    assert parser.parse(" \t\r\n") is None
    for line in ("sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2", "<999>x", "Nov"):
        with pytest.raises(ParseError) as caught:
            parser.parse(line)
        assert caught.value.reason == "bad_header"


def test_zone_and_registry_options() -> None:
    parser = PARSERS["linux.auth"](year=2025, tz="Asia/Tokyo")
    event = parser.parse("Mar  3 09:00:00 h su: (to root) ann on tty1")
    assert event is not None and event.ts == datetime(2025, 3, 3, 0, tzinfo=UTC)
    restored = pickle.loads(pickle.dumps(parser))
    assert restored.parse("Mar  3 09:00:00 h su: (to root) ann on tty1") == event
    with pytest.raises(ValueError, match="unknown time zone"):
        AuthLogParser(tz="Nowhere/Town")

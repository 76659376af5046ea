"""One refused sshd attempt is one ``logon_failure``, whatever lines OpenSSH writes for it.

OpenSSH reports one attempt on up to three lines (``Invalid user``, ``Failed <method>``,
``Connection closed ... [preauth]``), and which appear depends on its version and LogLevel.
Only the ``Failed`` line is a logon failure; ``Invalid user`` is an event of its own that no
failure count takes; the ``[preauth]`` close is no event.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams import Event
from streams.parsers import AuthLogParser

SRC = "linux.auth"
IP = "203.0.113.9"


def at(second: int) -> datetime:
    return datetime(2026, 11, 27, 3, 0, second, tzinfo=UTC)


def parse_all(lines: list[str]) -> list[Event | None]:
    parser = AuthLogParser(year=2026)
    return [parser.parse(f"Nov 27 03:00:{n:02d} bastion {line}") for n, line in enumerate(lines)]


def test_invalid_user_attempt_golden() -> None:
    """The review's sequence: one password tried for an account that does not exist."""
    events = parse_all(
        [
            f"sshd[4100]: Invalid user eve from {IP} port 50022",
            f"sshd[4100]: Failed password for invalid user eve from {IP} port 50022 ssh2",
            f"sshd[4100]: Connection closed by invalid user eve {IP} port 50022 [preauth]",
        ]
    )
    assert events == [
        Event(
            at(0),
            SRC,
            "invalid_user",
            "eve",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "invalid_user",
                "src_ip": IP,
                "port": "50022",
                "invalid_user": "true",
                "program": "sshd",
                "pid": "4100",
            },
        ),
        Event(
            at(1),
            SRC,
            "logon_failure",
            "eve",
            "bastion",
            "bastion",
            None,
            "failure",
            {
                "event": "failed",
                "method": "password",
                "src_ip": IP,
                "port": "50022",
                "invalid_user": "true",
                "program": "sshd",
                "pid": "4100",
            },
        ),
        None,
    ]


@pytest.mark.parametrize(
    ("lines", "actions"),
    [
        # An existing account, two passwords tried in one connection: two attempts.
        (
            [
                f"sshd[7]: Failed password for root from {IP} port 4 ssh2",
                f"sshd[7]: Failed password for root from {IP} port 4 ssh2",
                f"sshd[7]: Connection closed by authenticating user root {IP} port 4 [preauth]",
            ],
            ["logon_failure", "logon_failure", None],
        ),
        # A user-name probe that tries no password: no failed logon at all.
        (
            [
                f"sshd-session[8]: Invalid user oracle from {IP} port 5",
                f"sshd-session[8]: Connection closed by invalid user oracle {IP} port 5 [preauth]",
            ],
            ["invalid_user", None],
        ),
        # Keys offered and refused, then the client gives up: the close alone is no failure.
        (
            [f"sshd[9]: Connection closed by authenticating user git {IP} port 6 [preauth]"],
            [None],
        ),
        # A refused key: one failure. sshd's summary lines add none.
        (
            [
                f"sshd[10]: Failed publickey for git from {IP} port 7 ssh2: RSA SHA256:x",
                f"sshd[10]: error: maximum authentication attempts exceeded for git from {IP} "
                "port 7 ssh2 [preauth]",
                f"sshd[10]: Disconnecting authenticating user git {IP} port 7: Too many "
                "authentication failures [preauth]",
                f"sshd[10]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh "
                f"ruser= rhost={IP}  user=git",
            ],
            ["logon_failure", None, None, None],
        ),
        # Older sshd without ports, and a success after a failure.
        (
            [
                f"sshd[11]: Invalid user test from {IP}",
                f"sshd[11]: Failed password for ann from {IP} port 8 ssh2",
                f"sshd[11]: Accepted password for ann from {IP} port 8 ssh2",
            ],
            ["invalid_user", "logon_failure", "logon"],
        ),
    ],
)
def test_one_failure_per_attempt(lines: list[str], actions: list[str | None]) -> None:
    events = parse_all(lines)
    assert [None if e is None else e.action for e in events] == actions


def test_failures_in_a_brute_force_burst() -> None:
    """50 attempts with invalid names as OpenSSH logs them: 50 failures, not 150."""
    lines: list[str] = []
    for n in range(50):
        port = 40000 + n
        lines += [
            f"sshd[{5000 + n}]: Invalid user u{n} from {IP} port {port}",
            f"sshd[{5000 + n}]: Failed password for invalid user u{n} from {IP} port {port} ssh2",
            f"sshd[{5000 + n}]: Connection closed by invalid user u{n} {IP} port {port} [preauth]",
        ]
    parser = AuthLogParser(year=2026)
    events = [parser.parse(f"Nov 27 03:00:00 bastion {line}") for line in lines]
    actions = [e.action for e in events if e is not None]
    assert actions.count("logon_failure") == 50
    assert actions.count("invalid_user") == 50
    assert len(actions) == 100

"""Linux ``auth.log`` / ``secure``: sshd logons, sudo and su, as security events.

Lines come as files store them (``Nov  7 10:00:00 host sshd[1]: msg``) or as network syslog
(``<PRI>`` BSD or RFC 5424): the header goes through
:func:`streams.parsers.syslog.parse_syslog_header`. What each message becomes:

- sshd ``Accepted <method> for U from IP port N``: ``logon`` of U, target the host;
- sshd ``Failed <method> for [invalid user] U from IP port N``: ``logon_failure`` of U,
  target the host;
- sshd ``Invalid user U from IP [port N]``: ``invalid_user`` of U (outcome failure), target
  the host;
- ``pam_unix(sshd|su|su-l:session): session opened for user U [by B]``: ``session_open`` by
  B (else U), target U; ``... session closed for user U``: ``session_close`` of U, target U;
- sudo ``U : [reason ;] TTY=t ; PWD=p ; USER=T ; COMMAND=c``: ``run_as`` by U, target T;
- su ``[FAILED SU ](to T) U on tty``: ``switch_user`` by U, target T.

``host`` is always the syslog host, ``attrs["src_ip"]`` the client address. sshd reports one
refused attempt on up to three lines (``Invalid user``, ``Failed password``, ``Connection
closed by invalid|authenticating user ... [preauth]``), and which of them appear depends on
its version and LogLevel: only the ``Failed`` line is a ``logon_failure``, so a feature
counts each attempt once; the ``[preauth]`` close repeats it and is no event. A sudo line
with a reason before ``TTY=`` (``3 incorrect password attempts``, ``user NOT in sudoers``)
is a failure. A line whose time is the time it was read (RFC 5424 nil TIMESTAMP) has
``attrs["ts_source"] = "received"``.
rsyslog's ``message repeated N times: [ msg ]`` is read as ``msg`` with
``attrs["repeated"] = N``; the daemon and the scan count it as N events
(:func:`streams.event.occurrences`). Other programs and other messages of these programs are not
modelled: ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import tzinfo

from streams import actions
from streams.event import Event
from streams.parsers.syslog import REPEATED_MESSAGE, SyslogMessage, SyslogParser

SSHD_PROGRAMS = frozenset({"sshd", "sshd-session"})
SU_PROGRAMS = frozenset({"su"})
SUDO_PROGRAMS = frozenset({"sudo"})
#: PAM services whose sessions are logons or user switches (sudo's duplicate its command line).
SESSION_SERVICES = frozenset({"sshd", "su", "su-l"})

_ACCEPTED_RE = re.compile(
    r"Accepted (\S+) for (.*?) from (\S+) port (\d+)(?: ssh2)?(?:: (.*))?",
)
_FAILED_RE = re.compile(
    r"Failed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)(?: ssh2)?(?:: .*)?",
)
_INVALID_RE = re.compile(r"Invalid user (.*?) from (\S+)(?: port (\d+))?")
_CLOSED_RE = re.compile(
    r"Connection closed by (invalid|authenticating) user (.*?) (\S+) port (\d+)(?: \[preauth\])?"
)
_PAM_SESSION_RE = re.compile(
    r"pam_unix\(([^:()\s]+):session\): session (opened|closed) for user ([^\s(]+)"
    r"(?:\(uid=\d+\))?(?: by ([^\s(]*)(?:\(uid=(\d+)\))?)?"
)
_SU_RE = re.compile(r"(FAILED SU )?\(to ([^)\s]+)\) (\S+) on (\S+)")
_SUDO_RE = re.compile(r"\s*(\S+) : (.*)")
_SUDO_KEY_RE = re.compile(r"([A-Z]+)=(.*)")
_SUDO_ATTEMPTS_RE = re.compile(r"(\d+) incorrect password attempts?")
#: sudo's ``KEY=value`` fields kept in ``attrs`` (lower-cased); USER is the target.
_SUDO_KEYS = {"TTY": "tty", "PWD": "pwd", "GROUP": "group", "CHROOT": "chroot", "CWD": "cwd"}
#: Longest command line kept in ``attrs["command"]``.
MAX_COMMAND_CHARS = 512


def _user(name: str) -> str | None:
    return name or None


class AuthLogParser(SyslogParser):
    """sshd, sudo and su lines of ``/var/log/auth.log`` as Events (see the module table).

    Parameters
    ----------
    year
        Year of the BSD timestamps of plain file lines; ``None`` infers it from the date in
        ``tz`` (the year that puts the line in the past or at most a day ahead).
    tz
        Zone of timestamps without an offset (an IANA name or ``tzinfo``): the machine's
        local zone for classic ``auth.log`` files.
    source
        The Event source.

    Examples
    --------
    >>> p = AuthLogParser(year=2026)
    >>> e = p.parse("Nov 27 10:00:00 bastion sshd[811]: Accepted publickey for alice from "
    ...             "10.0.0.5 port 51234 ssh2: ED25519 SHA256:abc")
    >>> e.action, e.user, e.host, e.target, e.outcome, e.attrs["src_ip"], e.attrs["method"]
    ('logon', 'alice', 'bastion', 'bastion', 'success', '10.0.0.5', 'publickey')
    >>> p.parse("Nov 27 10:00:01 bastion CRON[9]: pam_unix(cron:session): session opened") is None
    True
    """

    def __init__(
        self, year: int | None = None, tz: tzinfo | str = "UTC", source: str = "linux.auth"
    ) -> None:
        super().__init__(year, tz, source)

    def parse(self, line: str) -> Event | None:
        """Parse one line; ``None`` for programs and messages that are not modelled."""
        msg = self._header(line)
        if msg is None:
            return None
        handler = _HANDLERS.get(msg.app or "")
        if handler is None:
            return None
        repeated = REPEATED_MESSAGE.fullmatch(msg.message)
        if repeated is None:
            return handler(self, msg, msg.message, None)
        return handler(self, msg, repeated.group(2), repeated.group(1))

    def _event(
        self,
        msg: SyslogMessage,
        action: str,
        user: str | None,
        target: str | None,
        outcome: str,
        attrs: dict[str, str],
        repeated: str | None,
    ) -> Event:
        attrs["program"] = msg.app or ""
        if msg.pid is not None:
            attrs["pid"] = msg.pid
        if repeated is not None:
            attrs["repeated"] = repeated
        if msg.received_ts:
            attrs["ts_source"] = "received"
        return Event(msg.ts, self.source, action, user, msg.host, target, None, outcome, attrs)

    def _sshd(self, msg: SyslogMessage, text: str, repeated: str | None) -> Event | None:
        match = _ACCEPTED_RE.fullmatch(text)
        if match is not None:
            method, user, ip, port, key = match.groups()
            attrs = {"event": "accepted", "method": method, "src_ip": ip, "port": port}
            if key:
                attrs["key"] = key
            return self._event(
                msg, actions.LOGON, _user(user), msg.host, actions.SUCCESS, attrs, repeated
            )
        match = _FAILED_RE.fullmatch(text)
        if match is not None:
            method, invalid, user, ip, port = match.groups()
            attrs = {
                "event": "failed",
                "method": method,
                "src_ip": ip,
                "port": port,
                "invalid_user": "true" if invalid else "false",
            }
            return self._event(
                msg, actions.LOGON_FAILURE, _user(user), msg.host, actions.FAILURE, attrs, repeated
            )
        match = _INVALID_RE.fullmatch(text)
        if match is not None:
            user, ip, port = match.groups()
            attrs = {"event": "invalid_user", "src_ip": ip, "invalid_user": "true"}
            if port is not None:
                attrs["port"] = port
            return self._event(
                msg, actions.INVALID_USER, _user(user), msg.host, actions.FAILURE, attrs, repeated
            )
        if _CLOSED_RE.fullmatch(text) is not None:
            # The end of an attempt already reported by its Invalid user / Failed lines.
            return None
        return self._session(msg, text, repeated)

    def _session(self, msg: SyslogMessage, text: str, repeated: str | None) -> Event | None:
        match = _PAM_SESSION_RE.fullmatch(text)
        if match is None:
            return None
        service, what, account, by, by_uid = match.groups()
        if service not in SESSION_SERVICES:
            return None
        attrs = {"event": f"session_{what}", "service": service}
        if by_uid is not None:
            attrs["by_uid"] = by_uid
        if what == "opened":
            action, user = actions.SESSION_OPEN, by or account
        else:
            action, user = actions.SESSION_CLOSE, account
        return self._event(msg, action, user, account, actions.SUCCESS, attrs, repeated)

    def _su(self, msg: SyslogMessage, text: str, repeated: str | None) -> Event | None:
        match = _SU_RE.fullmatch(text)
        if match is None:
            return self._session(msg, text, repeated)
        failed, target, user, tty = match.groups()
        return self._event(
            msg,
            actions.SWITCH_USER,
            user,
            target,
            actions.FAILURE if failed else actions.SUCCESS,
            {"event": "su", "tty": tty},
            repeated,
        )

    def _sudo(self, msg: SyslogMessage, text: str, repeated: str | None) -> Event | None:
        match = _SUDO_RE.fullmatch(text)
        if match is None:
            return None
        user, rest = match.groups()
        head, has_command, command = rest.partition("COMMAND=")
        attrs: dict[str, str] = {"event": "sudo"}
        target: str | None = None
        reason: str | None = None
        for position, segment in enumerate(head.split(" ; ")):
            segment = segment.strip()
            if not segment:
                continue
            field = _SUDO_KEY_RE.fullmatch(segment)
            if field is None:
                if position != 0:
                    return None
                reason = segment
            elif field.group(1) == "USER":
                target = field.group(2) or None
            elif field.group(1) in _SUDO_KEYS:
                attrs[_SUDO_KEYS[field.group(1)]] = field.group(2)
        if "tty" not in attrs and target is None:
            # Not a command line (sudo's own notices, PAM messages).
            return None
        if has_command:
            attrs["command"] = command[:MAX_COMMAND_CHARS]
        outcome = actions.SUCCESS
        if reason is not None:
            outcome = actions.FAILURE
            attrs["reason"] = reason
            attempts = _SUDO_ATTEMPTS_RE.fullmatch(reason)
            if attempts is not None:
                attrs["failed_attempts"] = attempts.group(1)
        return self._event(msg, actions.RUN_AS, user, target, outcome, attrs, repeated)


_Handler = Callable[[AuthLogParser, SyslogMessage, str, str | None], Event | None]
_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(SSHD_PROGRAMS, AuthLogParser._sshd),
    **dict.fromkeys(SU_PROGRAMS, AuthLogParser._su),
    **dict.fromkeys(SUDO_PROGRAMS, AuthLogParser._sudo),
}

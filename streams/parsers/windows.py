"""Windows Security events as Winlogbeat 7/8 ships them: one ECS JSON object per line.

The event id comes from ``event.code`` (a string) or ``winlog.event_id`` (a number in
Winlogbeat 7, a string in 8); the fields from ``winlog.event_data``, falling back on the ECS
fields Winlogbeat fills in (``user.name``, ``source.ip``, ``process.executable``). Objects may
be nested or use flat dotted keys. What each id becomes:

=====  ======================  ======================  ==============================
id     action                  user                    target
=====  ======================  ======================  ==============================
4624   logon, logon_network,   TargetUserName          the computer
       logon_batch,
       logon_service,
       logon_new_credentials
       (by logon type)
4625   logon_failure           TargetUserName          the computer
4634   logoff                  TargetUserName          the computer
4648   explicit_credentials    SubjectUserName         TargetServerName
4672   special_privileges      SubjectUserName         the computer
4688   process_start           SubjectUserName         NewProcessName
4720   account_created         SubjectUserName         TargetUserName (new account)
4732   group_member_added      SubjectUserName         TargetUserName (the group)
=====  ======================  ======================  ==============================

A 4624 is a ``logon`` when a person sits down at the machine or connects to its desktop
(logon types 2, 7, 10, 11, 12, 13) or when it gives no type; the other types have actions of
their own (:data:`LOGON_TYPE_ACTIONS`: network 3 and 8, batch 4, service 5 and 0, new
credentials 9), so that logon counts, hours and hosts describe people and not file-share
access or services. A machine account's or system principal's logon (below) is never a
``logon``: of an interactive type (DWM-n, UMFD-n) it is ``logon_service``.

``host`` is ``host.name`` (else ``winlog.computer_name``). A UEBA keys behaviour on people:
the acting account is the event's ``user`` only when it is a person's account. Machine
accounts (``NAME$``) and the system's own principals (SYSTEM, LOCAL SERVICE, NETWORK
SERVICE, ANONYMOUS LOGON, DWM-n, UMFD-n, IUSR, virtual service accounts, known by name,
domain or well-known SID: :func:`is_system_account`) give ``user=None`` and keep their name
in ``attrs["account"]``; the event stays, with its host, for host-keyed features. Every
event has ``attrs["machine_account"]`` (``"true"`` for an account ending in ``$``) and
``attrs["system_account"]`` (``"true"`` for a system principal), each ``"false"`` for
another named account and ``"unknown"`` when the account is ``-`` or empty (then
``user=None`` too). Other event ids are ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from streams import actions
from streams.errors import ParseError
from streams.event import Event
from streams.parsers.base import is_blank
from streams.parsers.jsonl import resolve
from streams.parsers.syslog import parse_iso8601

#: Windows ``LogonType`` codes and their readable names.
LOGON_TYPES: Mapping[str, str] = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}
#: 4624 logon type -> action, for the types that are no person's own logon; the other
#: types (2, 7, 10, 11, 12, 13) and a missing type are :data:`streams.actions.LOGON`.
LOGON_TYPE_ACTIONS: Mapping[str, str] = {
    "0": actions.LOGON_SERVICE,
    "3": actions.LOGON_NETWORK,
    "4": actions.LOGON_BATCH,
    "5": actions.LOGON_SERVICE,
    "8": actions.LOGON_NETWORK,
    "9": actions.LOGON_NEW_CREDENTIALS,
}
#: Names (case-folded) of the system's own principals as Windows logs them in English.
SYSTEM_ACCOUNT_NAMES = frozenset(
    {"system", "local system", "local service", "network service", "anonymous logon", "iusr"}
)
#: Desktop Window Manager and font driver host sessions (one per session number).
_SYSTEM_NAME_RE = re.compile(r"(?:dwm|umfd)-\d+")
#: Domains (case-folded) that hold only system principals and virtual service accounts.
SYSTEM_ACCOUNT_DOMAINS = frozenset(
    {
        "nt authority",
        "nt service",
        "window manager",
        "font driver host",
        "iis apppool",
        "nt virtual machine",
    }
)
#: Well-known SIDs of system principals (names are localised, SIDs are not): anonymous,
#: IUSR, SYSTEM, LOCAL SERVICE, NETWORK SERVICE.
SYSTEM_SIDS = frozenset({"S-1-5-7", "S-1-5-17", "S-1-5-18", "S-1-5-19", "S-1-5-20"})
#: SID prefixes of virtual accounts: NT SERVICE, IIS APPPOOL, NT VIRTUAL MACHINE, Window
#: Manager (DWM-n), Font Driver Host (UMFD-n).
SYSTEM_SID_PREFIXES = ("S-1-5-80-", "S-1-5-82-", "S-1-5-83-", "S-1-5-90-", "S-1-5-96-")
#: 4625 ``Status`` / ``SubStatus`` NTSTATUS codes (lower-case hex) and what they mean.
LOGON_FAILURE_STATUS: Mapping[str, str] = {
    "0xc000005e": "no_logon_servers",
    "0xc0000064": "no_such_user",
    "0xc000006a": "wrong_password",
    "0xc000006d": "bad_credentials",
    "0xc000006e": "account_restriction",
    "0xc000006f": "outside_logon_hours",
    "0xc0000070": "workstation_restriction",
    "0xc0000071": "password_expired",
    "0xc0000072": "account_disabled",
    "0xc0000133": "clock_skew",
    "0xc000015b": "logon_type_not_granted",
    "0xc0000193": "account_expired",
    "0xc0000224": "password_must_change",
    "0xc0000234": "account_locked_out",
}
#: Event id -> (action, default outcome, event_data field of the acting account).
EVENT_IDS: Mapping[int, tuple[str, str | None, str]] = {
    4624: (actions.LOGON, actions.SUCCESS, "TargetUserName"),
    4625: (actions.LOGON_FAILURE, actions.FAILURE, "TargetUserName"),
    4634: (actions.LOGOFF, actions.SUCCESS, "TargetUserName"),
    4648: (actions.EXPLICIT_CREDENTIALS, actions.SUCCESS, "SubjectUserName"),
    4672: (actions.SPECIAL_PRIVILEGES, actions.SUCCESS, "SubjectUserName"),
    4688: (actions.PROCESS_START, actions.SUCCESS, "SubjectUserName"),
    4720: (actions.ACCOUNT_CREATED, actions.SUCCESS, "SubjectUserName"),
    4732: (actions.GROUP_MEMBER_ADDED, actions.SUCCESS, "SubjectUserName"),
}
#: attrs key <- event_data field, copied when present (and not ``-``) for every event id.
_COMMON_ATTRS: tuple[tuple[str, str], ...] = (
    ("logon_type", "LogonType"),
    ("workstation", "WorkstationName"),
    ("logon_process", "LogonProcessName"),
    ("auth_package", "AuthenticationPackageName"),
    ("status", "Status"),
    ("sub_status", "SubStatus"),
    ("privileges", "PrivilegeList"),
    ("parent_process", "ParentProcessName"),
    ("command_line", "CommandLine"),
    ("member", "MemberName"),
    ("member_sid", "MemberSid"),
    ("target_sid", "TargetSid"),
)
_ABSENT = frozenset({"", "-"})
_DATA_PREFIX = "winlog.event_data."
#: Longest text kept in one attribute (command lines can be huge).
MAX_ATTR_CHARS = 512


def _scalar(obj: Mapping[str, Any], path: str) -> str | None:
    """The text at a dotted path, ``None`` when absent, null, empty, ``-`` or not a scalar."""
    return _text(resolve(obj, path))


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        # Windows pads some values ("User32 "); "-" means none.
        value = value.strip()
        return value[:MAX_ATTR_CHARS] if value not in _ABSENT else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _event_id(obj: Mapping[str, Any]) -> int:
    for path in ("event.code", "winlog.event_id"):
        value = resolve(obj, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
            return int(value)
        if isinstance(value, str | float | bool | list | dict):
            raise ParseError("bad_value", f"field {path!r}: {str(value)[:40]!r} is not an id")
    raise ParseError("missing_field", "no event id at 'event.code' or 'winlog.event_id'")


def is_system_account(name: str, domain: str | None = None, sid: str | None = None) -> bool:
    """Whether an account is one of the system's own principals rather than a person's.

    Known by its SID (:data:`SYSTEM_SIDS`, :data:`SYSTEM_SID_PREFIXES`), its domain
    (:data:`SYSTEM_ACCOUNT_DOMAINS`) or its name (:data:`SYSTEM_ACCOUNT_NAMES`, ``DWM-n``,
    ``UMFD-n``). Machine accounts (``NAME$``) are not system principals here: they are
    ``attrs["machine_account"]``.

    Examples
    --------
    >>> is_system_account("ANONYMOUS LOGON"), is_system_account("DWM-3")
    (True, True)
    >>> is_system_account("Système", "AUTORITE NT", "S-1-5-18"), is_system_account("alice")
    (True, False)
    """
    if sid is not None and (
        sid.upper() in SYSTEM_SIDS or sid.upper().startswith(SYSTEM_SID_PREFIXES)
    ):
        return True
    if domain is not None and domain.casefold() in SYSTEM_ACCOUNT_DOMAINS:
        return True
    folded = name.casefold()
    return folded in SYSTEM_ACCOUNT_NAMES or _SYSTEM_NAME_RE.fullmatch(folded) is not None


def _timestamp(obj: Mapping[str, Any]) -> datetime:
    value = resolve(obj, "@timestamp")
    if not isinstance(value, str):
        if value is None or not isinstance(value, int | float | bool | list | dict):
            raise ParseError("missing_field", "no timestamp at '@timestamp'")
        raise ParseError("bad_timestamp", f"field '@timestamp': {str(value)[:40]!r} is not text")
    try:
        return parse_iso8601(value)
    except ValueError:
        raise ParseError(
            "bad_timestamp", f"field '@timestamp': {value[:40]!r} is not ISO 8601"
        ) from None


class WindowsSecurityParser:
    """Winlogbeat (ECS) JSON lines of the Windows Security log (see the module table).

    Parameters
    ----------
    source
        The Event source.

    Examples
    --------
    >>> p = WindowsSecurityParser()
    >>> e = p.parse('{"@timestamp": "2026-11-27T09:00:00.000Z", "event": {"code": "4624"},'
    ...             ' "host": {"name": "ws01"}, "winlog": {"event_id": 4624, "event_data":'
    ...             ' {"TargetUserName": "alice", "LogonType": "10", "IpAddress": "10.0.0.7"}}}')
    >>> e.action, e.user, e.host, e.target, e.outcome, e.attrs["logon_type_name"]
    ('logon', 'alice', 'ws01', 'ws01', 'success', 'RemoteInteractive')
    >>> e.attrs["src_ip"], e.attrs["machine_account"]
    ('10.0.0.7', 'false')
    """

    def __init__(self, source: str = "windows.security") -> None:
        self.source = source

    def parse(self, line: str) -> Event | None:
        """Parse one JSON line; ``None`` for event ids that are not modelled."""
        if is_blank(line):
            return None
        try:
            obj = orjson.loads(line.encode("utf-8", errors="replace"))
        except orjson.JSONDecodeError as exc:
            raise ParseError("bad_json", str(exc)[:120]) from None
        if not isinstance(obj, dict):
            raise ParseError("bad_json", f"a JSON {type(obj).__name__}, not an object")
        event_id = _event_id(obj)
        known = EVENT_IDS.get(event_id)
        if known is None:
            return None
        action, default_outcome, actor_field = known
        ts = _timestamp(obj)
        data = resolve(obj, "winlog.event_data")
        if isinstance(data, dict):
            fields: dict[str, Any] = data
        else:
            # Fully flattened objects ("winlog.event_data.TargetUserName": ...).
            fields = {
                key[len(_DATA_PREFIX) :]: value
                for key, value in obj.items()
                if key.startswith(_DATA_PREFIX)
            }
        host = _scalar(obj, "host.name") or _scalar(obj, "winlog.computer_name")
        account = _text(fields.get(actor_field)) or _scalar(obj, "user.name")
        attrs: dict[str, str] = {"event_id": str(event_id)}
        target: str | None = host
        if event_id in (4624, 4625, 4634):
            domain = _text(fields.get("TargetDomainName"))
            sid = _text(fields.get("TargetUserSid"))
            self._put(attrs, "logon_id", _text(fields.get("TargetLogonId")))
        else:
            domain = _text(fields.get("SubjectDomainName"))
            sid = _text(fields.get("SubjectUserSid"))
        user = account
        if account is None:
            attrs["machine_account"] = attrs["system_account"] = "unknown"
        else:
            machine = account.endswith("$")
            system = not machine and is_system_account(account, domain, sid)
            attrs["machine_account"] = "true" if machine else "false"
            attrs["system_account"] = "true" if system else "false"
            if machine or system:
                user = None
                attrs["account"] = account
        if event_id == 4648:
            target = _text(fields.get("TargetServerName"))
            self._put(attrs, "target_user", _text(fields.get("TargetUserName")))
            self._put(attrs, "target_domain", _text(fields.get("TargetDomainName")))
        elif event_id == 4688:
            target = _text(fields.get("NewProcessName")) or _scalar(obj, "process.executable")
            self._put(attrs, "new_process_user", _text(fields.get("TargetUserName")))
        elif event_id in (4720, 4732):
            target = _text(fields.get("TargetUserName"))
            self._put(attrs, "target_domain", _text(fields.get("TargetDomainName")))
        if event_id in (4648, 4625, 4624):
            process = _text(fields.get("ProcessName")) or _scalar(obj, "process.executable")
            self._put(attrs, "process", process)
        self._put(attrs, "domain", domain)
        for key, name in _COMMON_ATTRS:
            self._put(attrs, key, _text(fields.get(name)))
        privileges = attrs.get("privileges")
        if privileges is not None:
            # PrivilegeList separates names with newlines and tabs.
            attrs["privileges"] = ",".join(privileges.split())
        logon_type = attrs.get("logon_type")
        if logon_type is not None:
            self._put(attrs, "logon_type_name", LOGON_TYPES.get(logon_type))
            if event_id == 4624:
                action = LOGON_TYPE_ACTIONS.get(logon_type, action)
        if action == actions.LOGON and "account" in attrs:
            # DWM-n and UMFD-n log on interactively with every user session: the system's.
            action = actions.LOGON_SERVICE
        for key in ("sub_status", "status"):
            code = attrs.get(key)
            if code is not None and code.lower() in LOGON_FAILURE_STATUS:
                attrs.setdefault("failure", LOGON_FAILURE_STATUS[code.lower()])
        self._put(attrs, "src_ip", _text(fields.get("IpAddress")) or _scalar(obj, "source.ip"))
        self._put(attrs, "src_port", _text(fields.get("IpPort")))
        outcome = _scalar(obj, "event.outcome")
        if outcome not in (actions.SUCCESS, actions.FAILURE):
            outcome = default_outcome
        return Event(ts, self.source, action, user, host, target, None, outcome, attrs)

    @staticmethod
    def _put(attrs: dict[str, str], key: str, value: str | None) -> None:
        if value is not None:
            attrs[key] = value

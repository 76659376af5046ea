"""Windows Security: system principals and machine accounts are no user; logon types.

A UEBA keys behaviour on people: SYSTEM, LOCAL/NETWORK SERVICE, ANONYMOUS LOGON, DWM-n,
UMFD-n, virtual service accounts and machine accounts (``NAME$``) keep their name in
``attrs["account"]`` and give ``user=None``; the host stays. Only interactive logon types
are ``logon``; network, batch, service and new-credentials logons have actions of their own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streams import Event
from streams.parsers import WindowsSecurityParser
from streams.parsers.windows import is_system_account

SRC = "windows.security"
HOST = "ws01"
TS = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def winlogbeat(event_id: int, data: dict[str, str]) -> str:
    obj: dict[str, Any] = {
        "@timestamp": "2026-11-27T09:00:00Z",
        "event": {"code": str(event_id)},
        "host": {"name": HOST},
        "winlog": {"event_id": str(event_id), "event_data": data},
    }
    return json.dumps(obj)


def logon(name: str, domain: str, sid: str, logon_type: str) -> str:
    return winlogbeat(
        4624,
        {
            "TargetUserName": name,
            "TargetDomainName": domain,
            "TargetUserSid": sid,
            "LogonType": logon_type,
        },
    )


def system_attrs(name: str, domain: str, logon_type: str, type_name: str) -> dict[str, str]:
    return {
        "event_id": "4624",
        "machine_account": "false",
        "system_account": "true",
        "account": name,
        "domain": domain,
        "logon_type": logon_type,
        "logon_type_name": type_name,
    }


@pytest.mark.parametrize(
    ("line", "action", "attrs"),
    [
        (
            logon("SYSTEM", "NT AUTHORITY", "S-1-5-18", "5"),
            "logon_service",
            system_attrs("SYSTEM", "NT AUTHORITY", "5", "Service"),
        ),
        (
            logon("ANONYMOUS LOGON", "NT AUTHORITY", "S-1-5-7", "3"),
            "logon_network",
            system_attrs("ANONYMOUS LOGON", "NT AUTHORITY", "3", "Network"),
        ),
        (
            logon("LOCAL SERVICE", "NT AUTHORITY", "S-1-5-19", "5"),
            "logon_service",
            system_attrs("LOCAL SERVICE", "NT AUTHORITY", "5", "Service"),
        ),
        (
            logon("NETWORK SERVICE", "NT AUTHORITY", "S-1-5-20", "5"),
            "logon_service",
            system_attrs("NETWORK SERVICE", "NT AUTHORITY", "5", "Service"),
        ),
        # Desktop Window Manager and font driver sessions log on interactively with every
        # user session: the system's logons, not a person's.
        (
            logon("DWM-1", "Window Manager", "S-1-5-90-0-1", "2"),
            "logon_service",
            system_attrs("DWM-1", "Window Manager", "2", "Interactive"),
        ),
        (
            logon("UMFD-0", "Font Driver Host", "S-1-5-96-0-0", "2"),
            "logon_service",
            system_attrs("UMFD-0", "Font Driver Host", "2", "Interactive"),
        ),
        # A French Windows: the name and domain are localised, the SID is not.
        (
            logon("Système", "AUTORITE NT", "S-1-5-18", "5"),
            "logon_service",
            system_attrs("Système", "AUTORITE NT", "5", "Service"),
        ),
        # A virtual service account.
        (
            logon("MSSQLSERVER", "NT SERVICE", "S-1-5-80-3880718306-3832830129-1677859214", "5"),
            "logon_service",
            system_attrs("MSSQLSERVER", "NT SERVICE", "5", "Service"),
        ),
        # A machine account over the network (Kerberos from another computer).
        (
            logon("WS02$", "CORP", "S-1-5-21-1-2-3-1603", "3"),
            "logon_network",
            {
                "event_id": "4624",
                "machine_account": "true",
                "system_account": "false",
                "account": "WS02$",
                "domain": "CORP",
                "logon_type": "3",
                "logon_type_name": "Network",
            },
        ),
    ],
)
def test_system_and_machine_logons_are_no_user(
    line: str, action: str, attrs: dict[str, str]
) -> None:
    assert WindowsSecurityParser().parse(line) == Event(
        TS, SRC, action, None, HOST, HOST, None, "success", attrs
    )


def test_other_events_of_system_accounts() -> None:
    parser = WindowsSecurityParser()
    # Special privileges of SYSTEM, a process started in SYSTEM's context (logged by the
    # machine account), a logoff of a DWM session.
    privileges = winlogbeat(
        4672,
        {
            "SubjectUserName": "SYSTEM",
            "SubjectDomainName": "NT AUTHORITY",
            "SubjectUserSid": "S-1-5-18",
            "PrivilegeList": "SeTcbPrivilege",
        },
    )
    assert parser.parse(privileges) == Event(
        TS,
        SRC,
        "special_privileges",
        None,
        HOST,
        HOST,
        None,
        "success",
        {
            "event_id": "4672",
            "machine_account": "false",
            "system_account": "true",
            "account": "SYSTEM",
            "domain": "NT AUTHORITY",
            "privileges": "SeTcbPrivilege",
        },
    )
    process = winlogbeat(
        4688,
        {
            "SubjectUserName": "WS01$",
            "SubjectDomainName": "CORP",
            "SubjectUserSid": "S-1-5-18",
            "NewProcessName": "C:\\Windows\\System32\\svchost.exe",
        },
    )
    event = parser.parse(process)
    assert event is not None
    assert (event.action, event.user, event.host, event.target) == (
        "process_start",
        None,
        HOST,
        "C:\\Windows\\System32\\svchost.exe",
    )
    assert (
        event.attrs["account"],
        event.attrs["machine_account"],
        event.attrs["system_account"],
    ) == ("WS01$", "true", "false")
    logoff = winlogbeat(
        4634,
        {"TargetUserName": "DWM-1", "TargetDomainName": "Window Manager", "LogonType": "2"},
    )
    event = parser.parse(logoff)
    assert event is not None
    assert (event.action, event.user, event.attrs["account"]) == ("logoff", None, "DWM-1")


@pytest.mark.parametrize(
    ("logon_type", "action"),
    [
        ("2", "logon"),
        ("7", "logon"),
        ("10", "logon"),
        ("11", "logon"),
        ("12", "logon"),
        ("13", "logon"),
        ("3", "logon_network"),
        ("8", "logon_network"),
        ("4", "logon_batch"),
        ("5", "logon_service"),
        ("0", "logon_service"),
        ("9", "logon_new_credentials"),
        # A type Windows does not define, or none: as before, a logon.
        ("99", "logon"),
        (None, "logon"),
    ],
)
def test_logon_types_of_a_person(logon_type: str | None, action: str) -> None:
    data = {"TargetUserName": "alice", "TargetDomainName": "CORP"}
    if logon_type is not None:
        data["LogonType"] = logon_type
    event = WindowsSecurityParser().parse(winlogbeat(4624, data))
    assert event is not None
    assert (event.action, event.user, event.host, event.outcome) == (
        action,
        "alice",
        HOST,
        "success",
    )
    assert (event.attrs["machine_account"], event.attrs["system_account"]) == ("false", "false")
    assert "account" not in event.attrs


def test_failures_of_every_logon_type_stay_failures() -> None:
    """Password spraying over SMB (type 3) is a failed logon like an interactive one."""
    for logon_type in ("2", "3", "10"):
        line = winlogbeat(
            4625, {"TargetUserName": "bob", "LogonType": logon_type, "SubStatus": "0xC000006A"}
        )
        event = WindowsSecurityParser().parse(line)
        assert event is not None
        assert (event.action, event.user, event.outcome, event.attrs["failure"]) == (
            "logon_failure",
            "bob",
            "failure",
            "wrong_password",
        )


@pytest.mark.parametrize(
    ("name", "domain", "sid", "expected"),
    [
        ("SYSTEM", None, None, True),
        ("system", None, None, True),
        ("Anonymous Logon", None, None, True),
        ("DWM-12", None, None, True),
        ("umfd-3", None, None, True),
        ("IUSR", None, None, True),
        ("SYSTÈME", "NT-AUTORITÄT", "s-1-5-18", True),
        ("DefaultAppPool", "IIS APPPOOL", None, True),
        ("anything", None, "S-1-5-90-0-4", True),
        ("alice", "CORP", "S-1-5-21-1-2-3-1105", False),
        ("dwm-admin", "CORP", None, False),
        ("systemd", None, None, False),
        ("WS01$", "CORP", None, False),
    ],
)
def test_is_system_account(name: str, domain: str | None, sid: str | None, expected: bool) -> None:
    assert is_system_account(name, domain, sid) is expected

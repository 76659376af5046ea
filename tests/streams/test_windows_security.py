"""Golden rows for the Windows Security (Winlogbeat ECS) parser."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime

import pytest

from streams import Event, ParseError, read_lines
from streams.parsers import PARSERS, WindowsSecurityParser

from .conftest import FIXTURES

SRC = "windows.security"
HOST = "ws01.corp.example.com"


def at(hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(2026, 11, 27, hour, minute, second, micro, tzinfo=UTC)


def test_security_log_golden() -> None:
    events, dead = read_lines(FIXTURES / "windows" / "security.jsonl", WindowsSecurityParser())
    assert dead == []
    # The last line (5379, credential manager read) is not modelled.
    assert events == [
        Event(
            at(8, 1, 12, 345000),
            SRC,
            "logon",
            "alice",
            HOST,
            HOST,
            None,
            "success",
            {
                "event_id": "4624",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "logon_id": "0x8a3f1c",
                "logon_type": "10",
                "logon_type_name": "RemoteInteractive",
                "workstation": "WS01",
                "logon_process": "User32",
                "auth_package": "Negotiate",
                "process": "C:\\Windows\\System32\\svchost.exe",
                "src_ip": "10.0.0.5",
                "src_port": "0",
            },
        ),
        # Winlogbeat 7 (numeric winlog.event_id), a machine account over the network: no
        # person's logon (no user, its own action), the account's name kept in attrs.
        Event(
            at(8, 3, 0),
            SRC,
            "logon_network",
            None,
            HOST,
            HOST,
            None,
            "success",
            {
                "event_id": "4624",
                "machine_account": "true",
                "system_account": "false",
                "account": "FS01$",
                "domain": "CORP",
                "logon_id": "0x8a4000",
                "logon_type": "3",
                "logon_type_name": "Network",
                "logon_process": "Kerberos",
                "auth_package": "Kerberos",
                "src_ip": "10.0.0.20",
                "src_port": "49833",
            },
        ),
        Event(
            at(8, 10, 6, 500000),
            SRC,
            "logon_failure",
            "administrator",
            HOST,
            HOST,
            None,
            "failure",
            {
                "event_id": "4625",
                "machine_account": "false",
                "system_account": "false",
                "domain": "WS01",
                "logon_type": "3",
                "logon_type_name": "Network",
                "workstation": "KALI",
                "logon_process": "NtLmSsp",
                "auth_package": "NTLM",
                "status": "0xc000006d",
                "sub_status": "0xc000006a",
                "failure": "wrong_password",
                "src_ip": "203.0.113.9",
                "src_port": "40112",
            },
        ),
        Event(
            at(17, 30, 12),
            SRC,
            "logoff",
            "alice",
            HOST,
            HOST,
            None,
            "success",
            {
                "event_id": "4634",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "logon_id": "0x8a3f1c",
                "logon_type": "10",
                "logon_type_name": "RemoteInteractive",
            },
        ),
        Event(
            at(8, 20, 0),
            SRC,
            "explicit_credentials",
            "alice",
            HOST,
            "fs01.corp.example.com",
            None,
            "success",
            {
                "event_id": "4648",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "target_user": "svc_backup",
                "target_domain": "CORP",
                "process": "C:\\Windows\\System32\\runas.exe",
            },
        ),
        Event(
            at(8, 1, 12, 346000),
            SRC,
            "special_privileges",
            "Administrator",
            HOST,
            HOST,
            None,
            "success",
            {
                "event_id": "4672",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "privileges": "SeSecurityPrivilege,SeBackupPrivilege,SeDebugPrivilege",
            },
        ),
        Event(
            at(8, 25, 31, 900000),
            SRC,
            "process_start",
            "alice",
            HOST,
            "C:\\Windows\\System32\\whoami.exe",
            None,
            "success",
            {
                "event_id": "4688",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "parent_process": "C:\\Windows\\System32\\cmd.exe",
                "command_line": "whoami /priv",
            },
        ),
        Event(
            at(8, 30, 0),
            SRC,
            "account_created",
            "Administrator",
            HOST,
            "backdoor",
            None,
            "success",
            {
                "event_id": "4720",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "target_domain": "WS01",
                "target_sid": "S-1-5-21-3350160546-1433373632-2958612930-1010",
            },
        ),
        Event(
            at(8, 30, 5),
            SRC,
            "group_member_added",
            "Administrator",
            HOST,
            "Administrators",
            None,
            "success",
            {
                "event_id": "4732",
                "machine_account": "false",
                "system_account": "false",
                "domain": "CORP",
                "target_domain": "Builtin",
                "target_sid": "S-1-5-32-544",
                "member_sid": "S-1-5-21-3350160546-1433373632-2958612930-1010",
            },
        ),
    ]


def test_flat_keys_and_ecs_fallbacks() -> None:
    """Dotted flat keys, no event_data user: user.name, source.ip, process.executable."""
    line = json.dumps(
        {
            "@timestamp": "2026-11-27T10:00:00.123456789Z",
            "event.code": "4688",
            "winlog.computer_name": "DC01",
            "user.name": "svc_sql",
            "process.executable": "C:\\Tools\\psexec.exe",
            "winlog.event_data.CommandLine": "psexec \\\\fs01 cmd",
        }
    )
    assert WindowsSecurityParser().parse(line) == Event(
        at(10, 0, 0, 123456),
        SRC,
        "process_start",
        "svc_sql",
        "DC01",
        "C:\\Tools\\psexec.exe",
        None,
        "success",
        {
            "event_id": "4688",
            "machine_account": "false",
            "system_account": "false",
            "command_line": "psexec \\\\fs01 cmd",
        },
    )
    line = json.dumps(
        {
            "@timestamp": "2026-11-27T10:00:00+02:00",
            "winlog": {"event_id": 4625, "event_data": {"TargetUserName": "-", "SubStatus": "-"}},
            "source": {"ip": "198.51.100.1"},
            "event": {"outcome": "unknown"},
        }
    )
    assert WindowsSecurityParser().parse(line) == Event(
        at(8, 0, 0),
        SRC,
        "logon_failure",
        None,
        None,
        None,
        None,
        "failure",
        {
            "event_id": "4625",
            "machine_account": "unknown",
            "system_account": "unknown",
            "src_ip": "198.51.100.1",
        },
    )


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        ("not json", "bad_json", ""),
        ("[1, 2]", "bad_json", "a JSON list"),
        ('{"@timestamp": "2026-11-27T10:00:00Z"}', "missing_field", "no event id"),
        ('{"event": {"code": "4624"}}', "missing_field", "@timestamp"),
        ('{"event": {"code": "4624"}, "@timestamp": 12}', "bad_timestamp", "not text"),
        ('{"event": {"code": "4624"}, "@timestamp": "yesterday"}', "bad_timestamp", "ISO 8601"),
        ('{"event": {"code": "logon"}, "@timestamp": "2026-11-27T10:00:00Z"}', "bad_value", ""),
    ],
)
def test_malformed_lines(line: str, reason: str, detail: str) -> None:
    with pytest.raises(ParseError) as caught:
        WindowsSecurityParser().parse(line)
    assert caught.value.reason == reason
    assert detail in caught.value.detail


def test_other_ids_and_blank_lines_are_skipped() -> None:
    parser = PARSERS["windows.security"]()
    assert parser.parse('{"event": {"code": "4768"}}') is None
    assert parser.parse('{"winlog": {"event_id": 1102}, "@timestamp": "x"}') is None
    assert parser.parse("   ") is None
    assert pickle.loads(pickle.dumps(parser)).source == SRC

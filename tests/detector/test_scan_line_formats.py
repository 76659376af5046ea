"""``baseliner scan --format windows|authlog|syslog``: the daemon's line parsers in a scan, the
feature families the formats imply, and the families recorded with a saved model."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.scan import (
    TEMPLATES_FILE,
    ScanOptions,
    _warn_skipped_files,
    read_vectors,
    scan_families,
    scan_specs,
)
from features.batch import spec_schema_hash
from features.catalog import WINDOWS_SPECS
from streams.parsers import DrainTemplateParser

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scan_lines"
START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
ATTACK_DAY = 24
INTRUDER = "user03"
BAD_LINE = 500


def winlogbeat(at: datetime, code: int, host: str, data: dict[str, str]) -> str:
    return json.dumps(
        {
            "@timestamp": at.isoformat().replace("+00:00", "Z"),
            "event": {"code": str(code), "outcome": "success"},
            "host": {"name": host},
            "winlog": {"event_id": code, "event_data": data},
        }
    )


def intrusion(days: int = 28, users: int = 12) -> list[str]:
    """Users log on at their workstation each morning and to the file server over the network
    an hour later (their machines' accounts log on too); on ATTACK_DAY at 2 a.m. the intruder's
    account logs on over the network to 15 servers it never accessed before."""
    rng = random.Random(3)
    lines: list[tuple[datetime, str]] = []
    for day in range(days):
        for number in range(users):
            user, workstation = f"user{number:02d}", f"ws-{number:02d}"
            at = START + timedelta(days=day, hours=8, minutes=rng.randrange(50))
            lines.append(
                (at, winlogbeat(at, 4624, workstation, {"TargetUserName": user, "LogonType": "2"}))
            )
            at += timedelta(hours=1, minutes=rng.randrange(30))
            lines.append(
                (at, winlogbeat(at, 4624, "fs01", {"TargetUserName": user, "LogonType": "3"}))
            )
            if rng.random() < 0.1:
                failed = {"TargetUserName": user, "LogonType": "2", "SubStatus": "0xc000006a"}
                lines.append((at, winlogbeat(at, 4625, workstation, failed)))
            machine = {"TargetUserName": f"WS-{number:02d}$", "LogonType": "3"}
            lines.append((at, winlogbeat(at, 4624, workstation, machine)))
        if day == ATTACK_DAY:
            at = START + timedelta(days=day, hours=2)
            for server in range(15):
                data = {"TargetUserName": INTRUDER, "LogonType": "3", "IpAddress": "10.9.9.9"}
                when = at + timedelta(minutes=3 * server)
                lines.append((when, winlogbeat(when, 4624, f"srv-{server:02d}", data)))
    lines.sort(key=lambda pair: pair[0])
    return [text for _, text in lines]  # fmt: skip


@pytest.fixture(scope="module")
def security_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("windows") / "security.json"
    lines = intrusion()
    # Line BAD_LINE is cut short.
    lines.insert(BAD_LINE - 1, '{"@timestamp": "2024-03-18T10:00:00Z", "event": ')
    path.write_text("\n".join(lines) + "\n")
    return path


def scan(*args: str) -> int:
    # Two entities in the report: each one's plot costs about a second.
    return main(["scan", *args, "--no-progress", "--top", "2"])


def alerts(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_windows_scan_finds_the_night_of_network_logons(
    security_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="detector.scan")
    out, model = tmp_path / "out", tmp_path / "model"
    args = ["--format", "windows", "--out", str(out), "--budget", "1/day"]
    assert scan(str(security_log), *args, "--save-model", str(model)) == 0
    top = alerts(out)[0]
    assert (top["entity"], top["window_start"]) == (INTRUDER, "2024-03-28T00:00:00+00:00")
    features = {item["feature"]: item["observed"] for item in top["explanation"]}
    assert {
        name: features.get(name)
        for name in ("new_network_logon_hosts", "network_logon_hosts", "off_hours_network_logons")
    } == {"new_network_logon_hosts": 15, "network_logon_hosts": 16, "off_hours_network_logons": 15}
    assert "T1021" in top["techniques"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["dead_letters"], summary["dead_letter_reasons"]) == (1, {"bad_json": 1})
    (dead,) = [json.loads(line) for line in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert (dead["file"], dead["line"], dead["reason"]) == (str(security_log), BAD_LINE, "bad_json")
    # Machine accounts' logons are events without a user: 12 a day.
    assert summary["events_without_entity"] == 28 * 12
    printed = capsys.readouterr()
    assert printed.out.splitlines()[3].split()[:2] == ["1.", INTRUDER]
    # A third of the events are machine accounts': said with why, not warned about.
    assert "name no user" not in printed.err
    (said,) = [record for record in caplog.records if "name no user" in record.getMessage()]
    assert said.levelno == logging.INFO
    assert "(machine and system accounts are no users)" in said.getMessage()

    # The saved model records the family; scoring with it keeps it unless told otherwise.
    again = tmp_path / "again"
    assert (
        scan(str(security_log), "--format", "windows", "--out", str(again), "--model", str(model))
        == 0
    )
    assert alerts(again)[0]["entity"] == INTRUDER
    code = scan(str(security_log), "--format", "windows", "--out", str(again), "--model",
                str(model), "--families", "none")  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        f"baseliner: error: the model in {model} was fitted with --families windows; "
        "this scan asks for --families none\n"
    )


@pytest.mark.slow
def test_without_the_windows_family_the_network_logons_go_unseen(
    security_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["--format", "windows", "--out", str(out), "--budget", "1/day", "--families", "none"]
    assert scan(str(security_log), *args) == 0
    named = {item["feature"] for alert in alerts(out) for item in alert["explanation"]}
    assert named.isdisjoint(spec.name for spec in WINDOWS_SPECS)


def test_formats_imply_the_daemons_families() -> None:
    def families(*formats: str, given: tuple[str, ...] | None = None) -> tuple[str, ...]:
        inputs = tuple((fmt, Path("x")) for fmt in formats)
        return scan_families(ScanOptions(inputs=inputs, out=Path("o"), families=given))

    assert families("windows") == ("windows",)
    assert families("syslog") == ("templates",)
    assert families("authlog") == families("cert", "jsonl", "lanl", "parquet") == ()
    assert families("syslog", "windows", "cert") == ("templates", "windows")
    assert families("cert", given=("windows",)) == ("windows",)
    # The families are part of the feature schema a saved model is checked against.
    windows = ScanOptions(inputs=(("windows", Path("x")),), out=Path("o"))
    hashes = {
        spec_schema_hash(scan_specs(opts)) for opts in (windows, replace(windows, families=()))
    }
    assert len(hashes) == 2


def test_authlog_and_syslog_scans_read_their_events_and_families(tmp_path: Path) -> None:
    auth = ScanOptions(
        inputs=(("authlog", FIXTURES / "auth.log"),),
        out=tmp_path,
        year=2024,
        tz="Europe/Berlin",
        progress=False,
    )
    vectors, events, rejects, _ = read_vectors(auth, tmp_path / "spool-a")
    assert (events, rejects.select("line", "reason").rows()) == (4, [(4, "bad_header")])
    assert vectors.select("entity", "window_start", "logons", "failed_logons").rows() == [
        ("admin", datetime(2024, 3, 4, tzinfo=UTC), 0.0, 1.0),
        ("alice", datetime(2024, 3, 4, tzinfo=UTC), 1.0, 0.0),
        ("bob", datetime(2024, 3, 4, tzinfo=UTC), 0.0, 0.0),
    ]
    assert "template_events" not in vectors.columns
    syslog = ScanOptions(
        inputs=(("syslog", FIXTURES / "syslog"),),
        out=tmp_path,
        entity="host",
        year=2024,
        progress=False,
    )
    vectors, events, rejects, _ = read_vectors(syslog, tmp_path / "spool-s")
    assert (events, rejects.select("line", "reason").rows()) == (4, [(4, "bad_timestamp")])
    # One line of each host is an nginx time-out: a template that reads like an error.
    assert vectors.select("entity", "template_events", "error_template_events").rows() == [
        ("web1", 2.0, 1.0),
        ("web2", 2.0, 1.0),
    ]


def test_a_directory_scanned_as_one_format_names_the_syslog_files_it_leaves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    for name in ("auth.log", "syslog"):
        (logs / name).write_bytes((FIXTURES / name).read_bytes())
    auth_only = ScanOptions(inputs=(("authlog", logs),), out=tmp_path / "out", progress=False)
    assert _warn_skipped_files(auth_only) == [logs / "syslog"]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"not read: {logs / 'syslog'} (not authlog: add syslog:{logs / 'syslog'}"
            " to the inputs)",
        )
    ]
    both = replace(auth_only, inputs=(("authlog", logs), ("syslog", logs)))
    assert _warn_skipped_files(both) == []


def test_strict_stops_at_the_first_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / "security.jsonl"
    assert scan(str(path), "--format", "windows", "--out", str(tmp_path), "--strict") == 1
    assert capsys.readouterr().err.endswith(f"{path}:4: bad_json (--strict stops here)\n")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--families", "drain"], "--families: unknown feature family 'drain' "
         "(known: templates, windows)"),
        (["--families", ","], "--families: ',': give auto, none or family names "
         "(templates, windows)"),
        (["--year", "20x4"], "argument --year: '20x4' is not a year (1..9999)"),
        (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus' (an IANA name like "
         "'Europe/Berlin')"),
    ],
)  # fmt: skip
def test_bad_line_format_options_are_one_line_and_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / "auth.log"
    assert scan(str(path), "--format", "authlog", "--out", str(tmp_path), *flags) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"{message}\n") and err.count("\n") == 1, err


def test_config_families_year_and_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from detector.cli import _load_config

    config = tmp_path / "scan.toml"
    config.write_text('[scan]\nfamilies = ["windows"]\nyear = 2024\ntz = "UTC"\n')
    assert _load_config(config) == {"families": ["windows"], "year": 2024, "tz": "UTC"}
    config.write_text('[scan]\nfamilies = ["drain"]\n')
    assert scan(str(FIXTURES / "auth.log"), "--format", "authlog", "--config", str(config)) == 2
    assert capsys.readouterr().err == (
        f"baseliner: error: config {config}: scan.families: unknown feature family 'drain' "
        "(known: templates, windows)\n"
    )


def syslog_days(days: int, order: tuple[str, ...]) -> str:
    """Three hosts' syslog over ``days`` days, their messages each day in ``order``."""
    messages = {
        "link": "kernel: eth0 link up at {n}000 Mbps",
        "timeout": "nginx[77]: upstream timed out after {n} seconds",
        "closed": "sshd[5]: Connection closed by 10.0.0.{n} port 22",
    }
    lines = []
    for day in range(days):
        stamp = (START + timedelta(days=day)).strftime("%b %d")
        for host in ("web1", "web2", "web3"):
            for hour, name in enumerate(order, start=8):
                text = messages[name].format(n=day % 7 + 1)
                lines.append(f"{stamp} {hour:02d}:00:00 {host} {text}")
    return "\n".join(lines) + "\n"


def test_a_saved_model_keeps_the_syslog_templates_and_a_scan_with_it_reuses_their_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fitted, later = tmp_path / "fitted", tmp_path / "later"
    fitted.mkdir()
    later.mkdir()
    (fitted / "syslog").write_text(syslog_days(21, ("link", "timeout", "closed")))
    # Later logs meet the templates in another order: mined anew, ids would follow it.
    (later / "syslog").write_text(syslog_days(3, ("closed", "timeout", "link")))
    model = tmp_path / "model"
    args = ["--format", "syslog", "--entity", "host", "--year", "2024", "--budget", "1/day"]
    assert scan(str(fitted), *args, "--out", str(tmp_path / "o1"), "--save-model", str(model)) == 0
    saved = DrainTemplateParser()
    saved.restore((model / TEMPLATES_FILE).read_bytes())
    assert saved.templates() == {
        1: "kernel: eth0 link up at <NUM> Mbps",
        2: "nginx: upstream timed out after <NUM> seconds",
        3: "sshd: Connection closed by <IP> port <NUM>",
    }
    states: dict[str, bytes] = {}
    opts = ScanOptions(
        inputs=(("syslog", later),), out=tmp_path, entity="host", year=2024, model=model,
        progress=False,
    )  # fmt: skip
    read_vectors(opts, tmp_path / "spool", miner_states=states)
    continued = DrainTemplateParser()
    continued.restore(states["syslog"])
    assert continued.templates() == saved.templates()
    assert scan(str(later), *args, "--out", str(tmp_path / "o2"), "--model", str(model)) == 0

    # A model saved before the templates were kept: used, with a warning.
    (model / TEMPLATES_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        read_vectors(opts, tmp_path / "spool")
    assert "has no syslog templates" in caplog.text
    (model / TEMPLATES_FILE).write_bytes(b"not templates")
    assert scan(str(later), *args, "--out", str(tmp_path / "o2"), "--model", str(model)) == 2

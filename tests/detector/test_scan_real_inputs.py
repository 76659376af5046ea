"""The scan on real-world inputs: shippers' action names (translated, or warned about), files
a directory holds that its format does not read, gzip'd logs, and the mapping in the config."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detector.cli import _load_config, main
from detector.scan import ScanOptions, _warn_skipped_files, unread_actions
from features.catalog import default_specs

DAYS = 21


def winlogbeat_lines(action: str = "logged-in") -> list[str]:
    """Four users logging on to their own machine at 9:00 every day, and a night on 20 hosts."""
    start = datetime(2024, 3, 4, tzinfo=UTC)
    lines = []
    for day in range(DAYS):
        for user in range(4):
            at = start + timedelta(days=day, hours=9, minutes=user)
            lines.append(
                json.dumps(
                    {
                        "@timestamp": at.isoformat().replace("+00:00", "Z"),
                        "event": {"code": "4624", "action": action, "outcome": "success"},
                        "user": {"name": f"user{user}"},
                        "host": {"name": f"WS-{user}"},
                    }
                )
            )
    return lines


def scan(args: list[str]) -> int:
    return main(["scan", *args, "--no-progress"])


def test_unread_actions_are_not_baseliners_and_selected_by_no_feature() -> None:
    counts = {"logged-in": 30, "logon": 10, "logoff": 5, "door-opened": 30, "template:3": 2}
    # logoff is baseliner's own (no mapping problem), even though no feature reads it.
    assert unread_actions(counts, default_specs()) == {
        "door-opened": 30,
        "logged-in": 30,
        "template:3": 2,
    }


@pytest.mark.slow
def test_winlogbeat_actions_feed_the_logon_features(tmp_path: Path) -> None:
    logs = tmp_path / "wlb.jsonl"
    logs.write_text("\n".join(winlogbeat_lines()) + "\n")
    out = tmp_path / "out"
    assert scan([str(logs), "--format", "jsonl", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events_with_unread_actions"] == 0
    assert summary["unread_actions"] == {}


@pytest.mark.slow
def test_unmapped_actions_are_warned_about_with_the_remedy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "own.jsonl"
    lines = winlogbeat_lines("signin")
    logs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        assert scan([str(logs), "--format", "jsonl", "--out", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if "no feature reads" in r.getMessage()]
    assert warnings == [
        f"{len(lines)} of {len(lines)} events (100.0%) have actions that no feature reads "
        "('signin' 84): only the counts over every event see them; translate them in the "
        '--mapping file, e.g. "actions": {"signin": "logon"} (README: the action vocabulary)'
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["events_with_unread_actions"], summary["unread_actions"]) == (
        84,
        {"signin": 84},
    )
    # The remedy works, from a mapping file or the config's [scan.mapping] table.
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"actions": {"signin": "logon"}}))
    config = tmp_path / "scan.toml"
    config.write_text('[scan.mapping.actions]\nsignin = "logon"\n')
    for given in (["--mapping", str(mapping)], ["--config", str(config)]):
        caplog.clear()
        mapped = tmp_path / given[0].strip("-")
        with caplog.at_level(logging.WARNING, logger="detector.scan"):
            assert scan([str(logs), "--format", "jsonl", "--out", str(mapped), *given]) == 0
        assert not [r for r in caplog.records if "no feature reads" in r.getMessage()]
        assert json.loads((mapped / "summary.json").read_text())["unread_actions"] == {}


def test_a_bad_action_table_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "own.jsonl"
    logs.write_text("\n".join(winlogbeat_lines()) + "\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"actions": {"signin": ""}}))
    out = tmp_path / "out"
    assert scan([str(logs), "--format", "jsonl", "--out", str(out), "--mapping", str(mapping)]) == 2
    assert capsys.readouterr().err == (
        "baseliner: error: mapping: JSON mapping actions: 'signin' -> '': give an action name\n"
    )


def test_config_mapping_is_a_file_name_or_a_table(tmp_path: Path) -> None:
    config = tmp_path / "scan.toml"
    config.write_text("[scan]\nmapping = 3\n")
    with pytest.raises(Exception, match=r"scan.mapping must be a str or dict, got 3"):
        _load_config(config)
    config.write_text('[scan.mapping]\nuser = "actor.id"\n[scan.mapping.actions]\nx = "logon"\n')
    assert _load_config(config)["mapping"] == {"user": "actor.id", "actions": {"x": "logon"}}


@pytest.mark.slow
def test_gzip_jsonl_scans_as_the_plain_file(tmp_path: Path) -> None:
    text = "\n".join(winlogbeat_lines()) + "\n"
    plain = tmp_path / "wlb.jsonl"
    plain.write_text(text)
    packed = tmp_path / "wlb.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        assert (
            scan([str(path), "--format", "jsonl", "--out", str(tmp_path / f"o-{path.name}")]) == 0
        )
    for name in ("alerts.jsonl", "entities.csv"):
        assert (tmp_path / f"o-{plain.name}" / name).read_bytes() == (
            tmp_path / f"o-{packed.name}" / name
        ).read_bytes()
    summary = json.loads((tmp_path / f"o-{packed.name}" / "summary.json").read_text())
    assert (summary["events"], summary["dead_letters"]) == (DAYS * 4, 0)


def test_a_truncated_gzip_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = tmp_path / "cut.jsonl.gz"
    packed.write_bytes(gzip.compress(("\n".join(winlogbeat_lines()) + "\n").encode())[:300])
    assert scan([str(packed), "--format", "jsonl", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"baseliner: error: {packed}: the gzip data is corrupt or truncated (")
    assert err.count("\n") == 1


def test_files_another_format_reads_are_named_when_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    org = tmp_path / "org"
    org.mkdir()
    for name in ("logon.csv", "device.csv", "auth.txt", "events.jsonl", "manifest.json"):
        (org / name).write_text("")
    opts = ScanOptions(inputs=(("cert", org),), out=tmp_path / "out")
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        assert _warn_skipped_files(opts) == [org / "auth.txt", org / "events.jsonl"]
    assert [r.getMessage() for r in caplog.records] == [
        f"not read: {org / 'auth.txt'} (not cert: add lanl:{org / 'auth.txt'} to the inputs, "
        f"with --lanl-epoch); {org / 'events.jsonl'} (not cert: add jsonl:"
        f"{org / 'events.jsonl'} to the inputs)"
    ]
    # Named as an input of its own format, a file is read and not warned about.
    caplog.clear()
    both = ScanOptions(
        inputs=(("cert", org), ("lanl", org / "auth.txt"), ("jsonl", org)), out=tmp_path / "o"
    )
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        assert _warn_skipped_files(both) == []
    assert caplog.records == []

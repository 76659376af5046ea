"""The scan's CLI and outputs after the acceptance review: events without a user are counted,
a failed scan leaves no earlier result looking current, bad budgets and --out paths stop in
one line, a saved model's window is verified, and --top, --budget and --train-until do what
their help says."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from detector.cli import _budget, main
from detector.scan import ScanOptions, _check_entities

_DAY0 = datetime(2010, 1, 4, tzinfo=UTC)
_USERS = ("ann", "bob", "cat", "dan", "eve")


def _write_events(path: Path, *, days: int = 14, with_user: bool = True, orphans: int = 0) -> int:
    """Each user logs on to its own machine at 09:00, 10:00 and 11:00 every day (eve on
    day 10 to 8 machines at 02:00); ``orphans`` more events a day name no user. Returns the
    number of lines."""
    lines: list[str] = []
    for day in range(days):
        date0 = _DAY0 + timedelta(days=day)
        for n, user in enumerate(_USERS):
            hours = (2,) * 8 if user == "eve" and day == 10 else (9, 10, 11)
            for k, hour in enumerate(hours):
                host = f"pc-{n}-{k}" if hours[0] == 2 else f"pc-{n}"
                event: dict[str, object] = {
                    "@timestamp": (date0 + timedelta(hours=hour, minutes=k)).isoformat(),
                    "event": {"action": "logon"},
                    "host": {"name": host},
                    "destination": {"address": host},
                }
                if with_user:
                    event["user"] = {"name": user}
                lines.append(json.dumps(event))
        for k in range(orphans):
            stamp = (date0 + timedelta(hours=12, minutes=k)).isoformat()
            lines.append(json.dumps({"@timestamp": stamp, "event": {"action": "logon"}}))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _scan(logs: Path, out: Path, *extra: str) -> int:
    return main(
        ["scan", str(logs), "--format", "jsonl", "--out", str(out), "--no-progress", *extra]
    )


def _one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    assert err.startswith("baseliner: error: "), err
    return err


@pytest.mark.slow
def test_users_missing_top_and_a_one_day_training_show_on_screen_and_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "half.jsonl"
    total = _write_events(logs, orphans=2)
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        args = ("--top", "2", "--train-until", "2010-01-05")
        assert _scan(logs, tmp_path / "out", *args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # 14 days of 2 events without a user.
    assert (summary["events"], summary["events_without_entity"]) == (total, 28)
    assert summary["status"] == "ok"
    out = capsys.readouterr().out
    assert f"read {total:,} events (0 dead letters, 28 without a user" in out
    assert f"28 of {total:,} events" in caplog.text
    # --top 2: the console lists two entities, as the report does.
    listed = [line for line in out.splitlines() if " risk " in line]
    assert [line.split()[0] for line in listed] == ["1.", "2."]
    assert "training before 2010-01-05 covers 1 day(s), 1.0 windows per entity" in caplog.text


def test_no_event_with_a_user_stops_in_one_line_naming_the_cause_and_the_remedy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "nouser.jsonl"
    total = _write_events(logs, with_user=False)
    assert _scan(logs, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert f"none of the {total:,} events names a user" in err
    assert "--entity host" in err and "--mapping" in err


def test_a_failed_scan_leaves_no_earlier_result_looking_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    earlier = ["alerts.jsonl", "entities.csv", "windows.parquet", "report.md", "report.html"]
    for name in [*earlier, "summary.json", "dead_letters.jsonl", "plots/ann.png"]:
        (out / name).write_text("from an earlier run")
    bad = tmp_path / "nouser.jsonl"
    _write_events(bad, with_user=False)
    assert _scan(bad, out) == 2
    left = sorted(p.name for p in out.iterdir())
    assert left == ["plots", "summary.json"]
    assert list((out / "plots").iterdir()) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"].startswith("none of the")
    capsys.readouterr()


@pytest.mark.parametrize("budget", ["0.0001%", "0.001/day"])
def test_a_budget_that_rounds_to_no_alert_is_refused_in_one_line(
    budget: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "events.jsonl"
    _write_events(logs)
    assert _scan(logs, tmp_path / "out", "--budget", budget) == 2
    err = _one_line(capsys.readouterr().err)
    assert "allows no alert over the 50 windows (10 days) to score" in err


def test_an_out_that_cannot_be_created_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "events.jsonl"
    _write_events(logs, days=3)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub"
    assert _scan(logs, out) == 2
    assert f"--out {out}: cannot create it" in _one_line(capsys.readouterr().err)


def _edit_model_window(model: Path, window: str, *, drop_digest: bool) -> None:
    data = model.read_bytes()
    newline = data.index(b"\n")
    header = json.loads(data[:newline])
    header["metadata"]["window"] = window
    if drop_digest:
        del header["header_sha256"]
    model.write_bytes(json.dumps(header).encode() + data[newline:])


@pytest.mark.slow
def test_a_model_whose_window_was_edited_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "events.jsonl"
    _write_events(logs)
    models = tmp_path / "model"
    assert _scan(logs, tmp_path / "fit", "--save-model", str(models)) == 0
    _edit_model_window(models / "model.bin", "1h", drop_digest=False)
    capsys.readouterr()
    assert _scan(logs, tmp_path / "edited", "--model", str(models)) == 2
    assert "it was edited after saving" in _one_line(capsys.readouterr().err)
    # A model file from before the header's digest: its payload's own window decides.
    _edit_model_window(models / "model.bin", "1h", drop_digest=True)
    assert _scan(logs, tmp_path / "old", "--model", str(models)) == 2
    err = _one_line(capsys.readouterr().err)
    assert "was fitted with --window 1d; this scan asks for --window 1h" in err


def test_a_budget_with_an_exponent_is_a_number_of_alerts_a_day() -> None:
    assert _budget("1e9/day").per_day == 1e9
    assert _budget("2.5e-1").per_day == 0.25
    assert _budget("5/day").per_day == 5.0


@pytest.mark.slow
def test_train_until_takes_an_hour_with_hourly_windows_and_refuses_one_off_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "events.jsonl"
    _write_events(logs)
    until = "2010-01-12T10:00"
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        assert _scan(logs, tmp_path / "h", "--window", "1h", "--train-until", until) == 0
    # Eight days of three hourly windows per user: no short-training warning.
    assert "training before" not in caplog.text
    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert summary["train_until"] == "2010-01-12T10:00:00+00:00"
    capsys.readouterr()
    assert _scan(logs, tmp_path / "d", "--train-until", until) == 2
    assert "is not at midnight (UTC)" in _one_line(capsys.readouterr().err)


def test_a_few_events_without_a_user_are_counted_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = ScanOptions(inputs=(("jsonl", tmp_path / "e.jsonl"),), out=tmp_path / "out")
    vectors = pl.DataFrame({"entity": ["ann", "bob"], "n_events": [60, 36]})
    with caplog.at_level(logging.INFO, logger="detector.scan"):
        # 4 of 100 (4%): under the 5% that warns, as LANL machine accounts are expected.
        assert _check_entities(opts, vectors, 100) == 4
        assert [r.levelno for r in caplog.records] == [logging.INFO]
        caplog.clear()
        assert _check_entities(opts, vectors, 106) == 10
        assert [r.levelno for r in caplog.records] == [logging.WARNING]

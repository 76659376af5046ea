"""Scan and generator options from the acceptance review: bad values stop with one line and
exit 2, the config file takes the flags' names, and --model refuses what it cannot honour."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from detector.cli import MAX_USERS, MIN_DAYS, MIN_USERS, main
from detector.errors import UsageError
from detector.pipeline import Budget
from detector.scan import MODEL_FILE, ScanOptions, _check_options, _default_train_until
from models.store import save_model


def _one_line_usage_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1
    assert err.startswith("baseliner: error: ")


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ("0/day", "budget '0/day' must be above 0"),
        ("0", "budget '0' must be above 0"),
        ("0%", "budget '0%' must be above 0% and at most 100%"),
        ("200%", "budget '200%' must be above 0% and at most 100%"),
        ("-5/day", "budget '-5/day' must be above 0"),
    ],
)
def test_budgets_out_of_range_are_usage_errors(
    budget: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["scan", str(tmp_path), "--format", "cert", "--budget", budget])
    _one_line_usage_error(code, capsys.readouterr().err, needle)


def test_budget_bounds() -> None:
    assert Budget.parse("100%").fraction == 1.0
    assert Budget.parse("0.01/day").per_day == 0.01
    with pytest.raises(UsageError, match="at most 100%"):
        Budget.parse("100.5%")


def test_argparse_errors_name_the_program_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "x", "--format", "cert", "--budget"]) == 2
    err = capsys.readouterr().err
    assert err == "baseliner: error: scan: argument --budget: expected one argument\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        (
            '{"tsx": "time"}',
            "mapping: 'tsx' is not an Event field; map any of ts, source, action, user, host",
        ),
        ('{"ts": 5}', "mapping: 'ts' must map to a JSON path or a list of paths, got 5"),
        ('{"user": []}', "mapping: 'user' must map to a JSON path or a list of paths"),
    ],
)
def test_mapping_names_event_fields(
    mapping: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _write(tmp_path / "events.jsonl", "{}\n")
    path = _write(tmp_path / "map.json", mapping)
    code = main(["scan", str(events), "--format", "jsonl", "--mapping", str(path)])
    _one_line_usage_error(code, capsys.readouterr().err, needle)


@pytest.mark.parametrize("flag", ["--out", "--save-model"])
def test_output_directories_that_are_files(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = _write(tmp_path / "taken", "x")
    code = main(["scan", str(tmp_path), "--format", "cert", flag, str(a_file)])
    _one_line_usage_error(code, capsys.readouterr().err, f"{flag} {a_file} is a file")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "--users", "29"], "--users 29: an organisation has 30 to 8000 users"),
        (["generate", "--users", "8001"], "--users 8001: an organisation has 30 to 8000"),
        (["generate", "--days", "13"], "--days 13: give at least 14 days"),
        (["demo", "--users", "10"], "--users 10: an organisation has 30 to 8000 users"),
        (["demo", "--days", "7"], "--days 7: give at least 14 days"),
        (["bench", "synthetic", "--users", "12"], "--users 12: an organisation has 30"),
    ],
)
def test_generator_limits(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*args, "--out", str(tmp_path / "org")])
    _one_line_usage_error(code, capsys.readouterr().err, needle)
    assert not (tmp_path / "org").exists()


@pytest.mark.parametrize("command", ["generate", "demo"])
def test_generator_out_that_is_a_file(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = _write(tmp_path / "taken", "x")
    code = main([command, "--out", str(a_file)])
    _one_line_usage_error(code, capsys.readouterr().err, f"--out {a_file} is a file")


def test_generator_limits_match_the_generator_and_the_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import synthetic

    assert (MIN_USERS, MAX_USERS, MIN_DAYS) == (
        synthetic.MIN_USERS,
        synthetic.MAX_USERS,
        synthetic.MIN_DAYS,
    )
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "accounts in the organisation (30 to 8000; default 1000)" in help_text
    assert "days of logs (at least 14; default 180)" in help_text


def test_bench_without_a_subcommand_lists_every_bench(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    for name in ("synthetic", "throughput", "adbench", "hdfs", "nab", "cert", "lanl"):
        assert name in err


def test_scan_help_states_formats_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "(CERT, LANL, JSON lines, Parquet)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "output directory (default baseliner-out)" in help_text
    assert "default 1970-01-01T00:00:00Z" in help_text


def _capture_options(monkeypatch: pytest.MonkeyPatch) -> list[ScanOptions]:
    seen: list[ScanOptions] = []

    def fake_run_scan(opts: ScanOptions) -> None:
        seen.append(opts)
        raise UsageError("stopped before reading")

    monkeypatch.setattr("detector.scan.run_scan", fake_run_scan)
    return seen


def test_config_takes_the_flags_names_and_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_options(monkeypatch)
    mapping = _write(tmp_path / "map.json", '{"user": "who"}')
    config = _write(
        tmp_path / "scan.toml",
        "[scan]\n"
        f'out = "{tmp_path / "from-config"}"\n'
        "top = 3\n"
        f'mapping = "{mapping}"\n'
        f'save_model = "{tmp_path / "model"}"\n'
        "no_progress = true\n",
    )
    logs = str(tmp_path)
    assert main(["scan", logs, "--format", "cert", "--config", str(config)]) == 2
    by_config = seen[-1]
    assert by_config.out == tmp_path / "from-config"
    assert by_config.report_top == 3
    assert by_config.jsonl_mapping == {"user": "who"}
    assert by_config.save_model == tmp_path / "model"
    assert by_config.progress is False

    flags = ["--out", str(tmp_path / "flag"), "--top", "4"]
    assert main(["scan", logs, "--format", "cert", "--config", str(config), *flags]) == 2
    assert (seen[-1].out, seen[-1].report_top) == (tmp_path / "flag", 4)

    assert main(["scan", logs, "--format", "cert"]) == 2
    assert (seen[-1].out, seen[-1].report_top, seen[-1].save_model) == (
        Path("baseliner-out"),
        10,
        None,
    )


def _saved_model(directory: Path, window: str) -> Path:
    directory.mkdir()
    metadata = {"detector": "tail", "entity": "user", "window": window}
    save_model(directory / MODEL_FILE, {"stand-in": 1}, schema_hash="h", metadata=metadata)
    return directory


def test_model_window_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _saved_model(tmp_path / "model", "1d")
    code = main(
        ["scan", str(tmp_path), "--format", "cert", "--model", str(model), "--window", "1h"]
    )
    _one_line_usage_error(
        code,
        capsys.readouterr().err,
        f"the model in {model} was fitted with --window 1d; this scan asks for --window 1h",
    )
    with pytest.raises(UsageError, match="fitted with --entity user"):
        _check_options(
            ScanOptions(
                inputs=(("cert", tmp_path),), out=tmp_path / "o", model=model, entity="host"
            )
        )


def test_model_sets_the_window_and_warns_of_ignored_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen = _capture_options(monkeypatch)
    model = _saved_model(tmp_path / "model", "1h")
    args = ["scan", str(tmp_path), "--format", "cert", "--model", str(model)]
    with caplog.at_level(logging.WARNING, logger="baseliner"):
        assert main([*args, "--detector", "iforest", "--train-until", "2010-02-01"]) == 2
    assert seen[-1].window == "1h"
    ignored = [r.getMessage() for r in caplog.records if "ignored with --model" in r.getMessage()]
    assert [m.split()[0] for m in ignored] == ["--detector", "--train-until"]


def _days(first: date, n: int, per_day: int) -> list[datetime]:
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    return [start + timedelta(days=d) for d in range(n) for _ in range(per_day)]


def test_default_split_ignores_a_far_outlier(caplog: pytest.LogCaptureFixture) -> None:
    # 20 days of 20 users from 2010-01-04: a third of 20 days is 6.67, so the cut is
    # 2010-01-10; one window in 2030 would otherwise put the cut in 2016.
    starts = _days(date(2010, 1, 4), 20, 20)
    frame = pl.DataFrame({"window_start": starts})
    assert _default_train_until(frame, timedelta(days=1)) == datetime(2010, 1, 10, tzinfo=UTC)
    outlier = pl.DataFrame({"window_start": [*starts, datetime(2030, 1, 5, tzinfo=UTC)]})
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        cut = _default_train_until(outlier, timedelta(days=1))
    assert cut == datetime(2010, 1, 10, tzinfo=UTC)
    assert "1 of 401 windows lie far outside the bulk" in caplog.text


def test_default_split_of_data_without_outliers_is_the_thirds_of_its_range() -> None:
    # Five thin first days (one window each, below the 1% quantile) still belong to the
    # range: 60 days from 2010-01-01 cut at day 20, 2010-01-21 (from the 1% quantile, day 6,
    # the cut would be 2010-01-24).
    starts = _days(date(2010, 1, 1), 60, 100)
    thin = [s for i, s in enumerate(starts) if s.day > 5 or s.month > 1 or i % 100 == 0]
    frame = pl.DataFrame({"window_start": thin})
    assert frame["window_start"].quantile(0.01, interpolation="nearest") == datetime(
        2010, 1, 6, tzinfo=UTC
    )
    assert _default_train_until(frame, timedelta(days=1)) == datetime(2010, 1, 21, tzinfo=UTC)


def test_inputs_that_do_not_overlap_in_time_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from detector.scan import _warn_disjoint_formats

    files = [("cert", tmp_path / "org"), ("lanl", tmp_path / "auth.txt")]
    ranges: dict[Path, tuple[Any, Any]] = {
        tmp_path / "part-0000-00000.parquet": (
            datetime(2010, 1, 4, tzinfo=UTC),
            datetime(2010, 1, 23, tzinfo=UTC),
        ),
        tmp_path / "part-0001-00000.parquet": (
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(1970, 1, 20, tzinfo=UTC),
        ),
    }
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        _warn_disjoint_formats(files, ranges)
    assert "lanl events (1970-01-01 to 1970-01-20) and cert events (2010-01-04" in caplog.text
    assert "--lanl-epoch" in caplog.text
    caplog.clear()
    overlapping = dict(ranges)
    overlapping[tmp_path / "part-0001-00000.parquet"] = (
        datetime(2010, 1, 4, tzinfo=UTC),
        datetime(2010, 1, 20, tzinfo=UTC),
    )
    with caplog.at_level(logging.WARNING, logger="detector.scan"):
        _warn_disjoint_formats(files, overlapping)
    assert caplog.text == ""


def test_generate_prints_a_summary_for_people(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "org"
    assert (
        main(["generate", "--users", "30", "--days", "14", "--seed", "1", "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "GenerationSummary(" not in text
    assert text.startswith(f"wrote {out}: 30 users over 14 days, 2010-01-04 to 2010-01-17 (seed 1)")
    assert "planted: scenario 1: " in text


def test_a_budget_covering_every_window_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="detector.pipeline"):
        assert Budget.parse("5/day").alerts_for(windows=3000, days=30) == 150
        assert caplog.text == ""
        assert Budget.parse("100000/day").alerts_for(windows=3000, days=30) == 3000
    assert "a budget of 100000/day allows all 3000 windows to alert (3e+06 wanted)" in caplog.text

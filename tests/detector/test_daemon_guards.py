"""Review fixes of the daemon: future-dated events, settings changed on resume, start-up line."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector import __version__
from detector.cli import main
from detector.config import DaemonConfig, load_config, parse_config
from detector.daemon import CheckpointError, Daemon
from streams.batch import OUT_OF_RANGE
from tests.detector._support import append_lines, drain

START = datetime(2010, 1, 4, 8, 0)
USERS = [f"U{i}" for i in range(8)]


def _logons(first_day: int, days: int) -> list[str]:
    """Eight users, 2 to 6 logons a day each (varied, so the scores do not tie)."""
    lines = []
    for day in range(first_day, first_day + days):
        for i, user in enumerate(USERS):
            for k in range(2 + (day * 7 + i * 3) % 5):
                stamp = (START + timedelta(days=day, minutes=7 * k)).strftime("%m/%d/%Y %H:%M:%S")
                lines.append(f"{{{user}-{day}-{k}}},{stamp},{user},PC-{user},Logon")
    return lines


def _doc(**daemon: Any) -> dict[str, Any]:
    return {
        "daemon": {
            "state_dir": "state",
            "budget": "3/day",
            "expected_entities": 8,
            "warmup_windows": 8,
            "metrics_address": "127.0.0.1:0",
            **daemon,
        },
        "source": [{"name": "logon", "type": "file", "path": "logon.csv", "parser": "cert.logon"}],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }


def _config(folder: Path, **daemon: Any) -> DaemonConfig:
    return parse_config(_doc(**daemon), folder)


def _letters(folder: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (folder / "state/dead_letters.jsonl").open("rb")]


# -- events dated in the future ----------------------------------------------------------------

FUTURE = "{fut},01/05/2099 07:00:00,U0,PC-U0,Logon"


def test_a_far_future_event_is_dead_lettered_and_does_not_blind_the_daemon(
    tmp_path: Path,
) -> None:
    lines = _logons(0, 3)
    append_lines(tmp_path / "logon.csv", [lines[0], FUTURE, *lines[1:]])
    run = Daemon(_config(tmp_path))
    drain(run)
    run.checkpoint()
    run.close()
    assert run.totals.late_events == 0
    assert dict(run.totals.dead_letters) == {("logon", "future"): 1}
    [letter] = _letters(tmp_path)
    assert (letter["line"], letter["reason"], letter["raw"]) == (2, "future", FUTURE)
    assert letter["detail"].startswith("2099-01-05 07:00:00")
    # Days 0 and 1 closed (8 users each); the newest event is day 2, 08:00 + 7 * 5 minutes.
    assert run.totals.windows_closed == 16
    assert run.features.watermark == datetime(2010, 1, 6, 7, 35, tzinfo=UTC)
    sample = run.registry.get_sample_value
    assert sample("baseliner_dead_letters_total", {"source": "logon", "reason": "future"}) == 1
    assert sample("baseliner_late_events_total") == 0

    # The checkpoint holds the real watermark: the next day's events are on time.
    append_lines(tmp_path / "logon.csv", _logons(3, 1))
    again = Daemon(_config(tmp_path))
    drain(again)
    again.close()
    assert again.totals.late_events == 0
    assert again.totals.windows_closed == 24


ANCIENT = "{old},01/01/0001 00:00:00,U0,PC-U0,Logon"
EARLIEST = "{first},02/01/0001 00:00:00,U1,PC-U1,Logon"


def test_an_event_dated_before_the_time_range_is_a_dead_letter_even_first(tmp_path: Path) -> None:
    """A sentinel ``0001-01-01`` as the very first line (nothing is late yet) would open a
    window in year 1 for its entity: it is dead-lettered as the scan does, and what follows is
    windowed as if it were not there. The range's first instant itself is an event."""
    lines = _logons(0, 3)
    append_lines(tmp_path / "logon.csv", [ANCIENT, *lines])
    run = Daemon(_config(tmp_path))
    drain(run)
    run.close()
    assert run.totals.late_events == 0
    assert dict(run.totals.dead_letters) == {("logon", OUT_OF_RANGE): 1}
    [letter] = _letters(tmp_path)
    assert (letter["line"], letter["reason"], letter["raw"]) == (1, OUT_OF_RANGE, ANCIENT)
    assert letter["detail"].startswith("0001-01-01 00:00:00")
    # As without the line: days 0 and 1 closed, the watermark where day 2 leaves it.
    assert run.totals.windows_closed == 16
    assert run.features.watermark == datetime(2010, 1, 6, 7, 35, tzinfo=UTC)

    first = tmp_path / "first"
    first.mkdir()
    append_lines(first / "logon.csv", [EARLIEST])
    run = Daemon(_config(first))
    drain(run)
    run.close()
    assert run.totals.events["logon"] == 1 and not run.totals.dead_letters


def test_max_future_is_measured_from_the_wall_clock(tmp_path: Path) -> None:
    now = datetime(2010, 1, 4, 9, 0, tzinfo=UTC).timestamp()
    lines = [
        "{a},01/04/2010 08:00:00,U0,PC-U0,Logon",  # past
        "{b},01/04/2010 09:30:00,U0,PC-U0,Logon",  # now + 30 minutes: on time
        "{c},01/04/2010 09:30:01,U0,PC-U0,Logon",  # now + 30 minutes 1 second: future
    ]
    append_lines(tmp_path / "logon.csv", lines)
    run = Daemon(_config(tmp_path, max_future="30m"), clock=lambda: now)
    drain(run)
    run.close()
    assert run.totals.events["logon"] == 3
    assert dict(run.totals.dead_letters) == {("logon", "future"): 1}
    assert [x["raw"] for x in _letters(tmp_path)] == [lines[2]]
    assert run.features.watermark == datetime(2010, 1, 4, 8, 30, tzinfo=UTC)  # 09:30 - 1h


def test_http_ingest_of_a_2099_event_leaves_later_events_on_time(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [{"name": "ingest", "type": "http", "listen": "127.0.0.1:0", "parser": "jsonl"}]
    run = Daemon(parse_config(doc, tmp_path))

    def logon(stamp: str, user: str) -> dict[str, Any]:
        return {
            "@timestamp": stamp,
            "event": {"action": "logon"},
            "user": {"name": user},
            "host": {"name": "web1"},
        }

    records = [logon("2099-01-01T00:00:00Z", "U0")]
    for day in range(3):
        for user in ("U0", "U1"):
            records.append(logon(f"2010-01-{4 + day:02d}T08:00:00Z", user))
    host, port = run.sources["ingest"].address  # type: ignore[attr-defined]
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    urllib.request.urlopen(f"http://{host}:{port}/ingest", data=body, timeout=5).read()
    deadline = time.monotonic() + 20
    while run.totals.events["ingest"] < len(records):
        run.poll_once()
        assert time.monotonic() < deadline, run.totals
        time.sleep(0.01)
    run.close()
    assert run.totals.late_events == 0
    assert dict(run.totals.dead_letters) == {("ingest", "future"): 1}
    assert run.totals.windows_closed == 4  # days 0 and 1, two users


# -- settings changed between runs -------------------------------------------------------------


def test_a_changed_detector_is_refused_on_resume_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 2))
    first = Daemon(_config(tmp_path))
    drain(first)
    first.checkpoint()
    first.close()
    with pytest.raises(CheckpointError, match=r"daemon\.detector: .*'robust_window'.*'count_tail'"):
        Daemon(_config(tmp_path, detector="count_tail"))
    with pytest.raises(CheckpointError, match=r"daemon\.detector_params: .*\{\}.*\{'window': 30\}"):
        Daemon(_config(tmp_path, detector_params={"window": 30}))

    config = tmp_path / "baseliner.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\nbudget = "3/day"\nexpected_entities = 8\n'
        'warmup_windows = 8\nmetrics_address = "127.0.0.1:0"\ndetector = "count_tail"\n'
        '[[source]]\nname = "logon"\ntype = "file"\npath = "logon.csv"\nparser = "cert.logon"\n'
    )
    assert main(["run", "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    path = tmp_path / "state/checkpoint.bin"
    assert line == (
        f"baseliner: error: daemon.detector: the checkpoint {path} was written with detector"
        " 'robust_window' but the config gives 'count_tail'; restore the setting, or start"
        " with a new state_dir (the baselines are the detector's own)"
    )


def _alerts_per_day(folder: Path, since: str) -> Counter[str]:
    alerts = [orjson.loads(x) for x in (folder / "alerts.jsonl").open("rb")]
    return Counter(a["window_start"][:10] for a in alerts if a["window_start"][:10] >= since)


@pytest.mark.parametrize(("resumed_budget", "most_per_day"), [("1/day", 1), ("3/day", 3)])
def test_a_changed_budget_takes_effect_on_resume(
    tmp_path: Path, resumed_budget: str, most_per_day: int
) -> None:
    log = tmp_path / "logon.csv"
    append_lines(log, _logons(0, 10))
    first = Daemon(_config(tmp_path))
    drain(first)
    first.checkpoint()
    first.close()
    append_lines(log, _logons(10, 10))
    resumed = Daemon(_config(tmp_path, budget=resumed_budget))
    budget = float(resumed_budget.split("/")[0])
    # 8 entity-windows a day: the threshold is the 1 - budget/8 quantile of recent scores.
    assert resumed.scorer.calibrator.level_ == 1 - budget / 8
    assert resumed.scorer.daily_cap == most_per_day
    drain(resumed)
    resumed.close()
    # Windows from 2010-01-13 (day 9) on were closed by the resumed daemon.
    per_day = _alerts_per_day(tmp_path, "2010-01-13")
    assert max(per_day.values()) == most_per_day
    assert len(per_day) >= 2


# -- start-up ----------------------------------------------------------------------------------


def test_start_up_line_says_what_is_read_served_and_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    append_lines(tmp_path / "logon.csv", _logons(0, 1))
    doc = _doc()
    doc["source"].append(
        {"name": "ingest", "type": "http", "listen": "127.0.0.1:0", "parser": "jsonl"}
    )
    doc["sink"].append({"type": "webhook", "url": "https://soar.example.org/hook?token=secret"})
    run = Daemon(parse_config(doc, tmp_path))
    http_port = run.sources["ingest"].address[1]  # type: ignore[attr-defined]
    run.stopping.set()  # start, print, stop at once (the last checkpoint is still written)
    with caplog.at_level(logging.INFO):
        run.run()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"baseliner {__version__} running: reading"
        f" logon (file {tmp_path / 'logon.csv'}, cert.logon);"
        f" ingest (http on 127.0.0.1:{http_port}, jsonl);"
        f" alerts to jsonl {tmp_path / 'alerts.jsonl'}; webhook https://soar.example.org;"
        f" state in {tmp_path / 'state'}; metrics on http://127.0.0.1:"
    )
    assert line.endswith("/metrics") and "secret" not in line
    path = tmp_path / "state/checkpoint.bin"
    saved = [r.getMessage() for r in caplog.records if "saved" in r.getMessage()]
    assert saved == [f"checkpoint saved to {path} ({path.stat().st_size} bytes)"]


def test_a_glob_skips_directories_it_matches(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "archive").mkdir(parents=True)
    append_lines(logs / "logon.csv", _logons(0, 2))
    doc = _doc()
    doc["source"] = [{"name": "logon", "type": "glob", "path": "logs/*", "parser": "cert.logon"}]
    run = Daemon(parse_config(doc, tmp_path))
    drain(run)
    run.close()
    assert run.totals.events["logon"] == len(_logons(0, 2))


def test_the_example_config_documents_max_future() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "baseliner.example.toml")
    assert config.max_future == timedelta(hours=1)


# -- lines that fold repeats -------------------------------------------------------------------


def test_a_line_folding_repeats_is_counted_as_that_many_events(tmp_path: Path) -> None:
    failed = "Failed password for root from 203.0.113.9 port 40210 ssh2"
    (tmp_path / "auth.log").write_text(
        f"2026-11-27T08:10:06Z bastion sshd[21433]: {failed}\n"
        f"2026-11-27T08:10:40Z bastion sshd[21433]: message repeated 40 times: [ {failed}]\n"
    )
    doc = _doc()
    doc["source"] = [{"name": "auth", "type": "file", "path": "auth.log", "parser": "linux.auth"}]
    run = Daemon(parse_config(doc, tmp_path))
    try:
        assert run.poll_once() == 2  # lines read
        assert run.totals.records["auth"] == 2
        assert run.totals.events["auth"] == 41  # the first failure and its 40 repeats
        assert run.totals.skipped["auth"] == 0
    finally:
        run.close()

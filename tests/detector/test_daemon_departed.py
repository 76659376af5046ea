"""Departed entities stay in the daemon's entities.csv: evicted or expired entities that had
risk or alerts, with their status, bounded, checkpointed (issue 3)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.daemon import CHECKPOINT_NAME, Daemon
from detector.departed import DepartedEntities, StrongestAlert
from detector.errors import UsageError
from detector.online_scoring import EntityRisk
from models.store import decode_model, encode_model, read_header
from tests.detector._support import append_lines, drain
from tests.detector.test_daemon_guards import START, _config, _logons

# -- the table ----------------------------------------------------------------------------------


def test_an_entity_without_risk_or_alerts_is_not_kept() -> None:
    table = DepartedEntities()
    assert not table.add(EntityRisk("quiet", windows=30), "expired", half_life_days=7.0)
    assert table.add(EntityRisk("alerted", alerts=1), "evicted", half_life_days=7.0)
    assert table.add(EntityRisk("risky", risk=0.1, peak=0.1), "expired", half_life_days=7.0)
    assert [row.record.entity for row in table.rows()] == ["risky", "alerted"]


def test_an_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason must be one of"):
        DepartedEntities().add(EntityRisk("a", alerts=1), "left", half_life_days=7.0)


def test_the_cap_drops_the_least_risky_first_and_counts_them() -> None:
    table = DepartedEntities(max_rows=2)
    for entity, peak, alerts in (("a", 1.0, 0), ("b", 3.0, 0), ("c", 1.0, 2), ("d", 2.0, 0)):
        table.add(
            EntityRisk(entity, risk=peak, peak=peak, alerts=alerts), "expired", half_life_days=7
        )
    assert table.trim() == 2
    # Lowest peak first ("a" and "c" tie at 1.0: "a" has fewer alerts), then "c".
    assert [row.record.entity for row in table.rows()] == ["b", "d"]
    assert table.dropped == 2
    table.set_max_rows(0)
    assert (len(table), table.dropped) == (0, 4)


def test_an_entity_leaving_twice_keeps_one_merged_row() -> None:
    table = DepartedEntities()
    first = EntityRisk("ann", risk=4.0, day=0.0, peak=4.0, alerts=2, windows=10)
    table.add(first, "expired", half_life_days=7.0, strongest=StrongestAlert(9.0, "old"))
    second = EntityRisk("ann", risk=1.0, day=7.0, peak=1.5, alerts=1, windows=3, peak_score=5.0)
    table.add(second, "evicted", half_life_days=7.0, strongest=StrongestAlert(4.0, "new"))
    [row] = table.rows()
    # 4 halved over one half-life, plus the second stay's 1.
    assert (row.record.risk, row.record.peak, row.record.day) == (3.0, 4.0, 7.0)
    assert (row.record.alerts, row.record.windows, row.reason) == (3, 13, "evicted")
    assert row.strongest == StrongestAlert(9.0, "old")


def test_a_merged_risk_above_both_peaks_is_the_new_peak() -> None:
    table = DepartedEntities()
    table.add(EntityRisk("bo", risk=2.0, day=0.0, peak=2.0), "evicted", half_life_days=7.0)
    table.add(EntityRisk("bo", risk=2.0, day=7.0, peak=2.0), "evicted", half_life_days=7.0)
    [row] = table.rows()
    assert (row.record.risk, row.record.peak) == (3.0, 3.0)
    assert row.record.peak_window == datetime(1970, 1, 8, tzinfo=UTC)


def test_the_table_state_is_plain_data_and_round_trips() -> None:
    table = DepartedEntities(max_rows=3)
    peak_window = datetime(2024, 1, 5, tzinfo=UTC)
    record = EntityRisk("ann", risk=2.0, day=19727.0, peak=2.5, peak_window=peak_window, alerts=1)
    table.add(record, "expired", half_life_days=7.0, strongest=StrongestAlert(3.5, "x1"))
    table.dropped = 4
    state = table.state()
    assert orjson.loads(orjson.dumps(state)) == orjson.loads(orjson.dumps(state))  # JSON-able
    again = DepartedEntities.from_state(state, max_rows=3)
    assert again.rows() == table.rows() and again.dropped == 4
    assert again.rows()[0].record.peak_window == peak_window
    assert len(DepartedEntities.from_state(None, max_rows=3)) == 0


# -- the daemon ---------------------------------------------------------------------------------


def _burst(day: int, user: str, count: int) -> list[str]:
    """``count`` logons of ``user`` to as many new PCs on ``day`` (an anomalous day)."""
    return [
        f"{{b{user}-{day}-{k}}},"
        f"{(START + timedelta(days=day, minutes=k)).strftime('%m/%d/%Y %H:%M:%S')},"
        f"{user},PC-X{k},Logon"
        for k in range(count)
    ]


def _leaver_log(folder: Path) -> None:
    """Eight users for 19 days; U0 has an anomalous day 12 (an alert) and is not seen after;
    a newcomer, U8, arrives on day 14 (under a cap of 8 it evicts U0, the least recent)."""
    lines = _logons(0, 12) + _burst(12, "U0", 60) + _logons(12, 1)
    for day in range(13, 19):
        lines += [line for line in _logons(day, 1) if ",U0," not in line]
        if day >= 14:
            stamp = (START + timedelta(days=day, hours=9)).strftime("%m/%d/%Y %H:%M:%S")
            lines += [f"{{U8-{day}-{k}}},{stamp},U8,PC-U8,Logon" for k in range(3)]
    append_lines(folder / "logon.csv", lines)


def _entities(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "state" / "entities.csv").open(newline="") as handle:
        return {row["entity"]: row for row in csv.DictReader(handle)}


def _alerts_of(folder: Path, entity: str) -> list[dict[str, Any]]:
    alerts = [orjson.loads(line) for line in (folder / "alerts.jsonl").open("rb")]
    return [alert for alert in alerts if alert["entity"] == entity]


def _run(folder: Path, **daemon: Any) -> Daemon:
    run = Daemon(_config(folder, **daemon))
    drain(run)
    assert run.checkpoint()
    return run


@pytest.mark.parametrize(
    ("settings", "status"),
    [({"idle_expiry": "3d"}, "expired"), ({"idle_expiry": "off", "max_entities": 8}, "evicted")],
)
def test_a_departed_entity_stays_in_entities_csv(
    tmp_path: Path, settings: dict[str, Any], status: str
) -> None:
    _leaver_log(tmp_path)
    run = _run(tmp_path, **settings)
    assert run.scorer.learnt_windows("U0") == 0  # the scorer forgot it
    assert "U0" not in run.scorer.risks
    rows = _entities(tmp_path)
    assert len(rows) == 9
    assert {row["status"] for name, row in rows.items() if name != "U0"} == {"active"}
    leaver = rows["U0"]
    [alert] = _alerts_of(tmp_path, "U0")  # its day-12 burst (2010-01-16)
    assert leaver["status"] == status
    assert (leaver["alerts"], leaver["strongest_alert"]) == ("1", alert["id"])
    assert (leaver["last_seen"], leaver["peak_window"]) == ("2010-01-16", "2010-01-16")
    assert leaver["windows"] == "13"  # days 0 to 12
    # Its risk peaked with the alert, its last window; it decays to the newest window
    # (2010-01-21: five days later) with the 7-day half-life, as an active entity's does.
    assert float(leaver["risk_now"]) == pytest.approx(
        float(leaver["risk"]) * 0.5 ** (5 / 7), abs=1e-6
    )
    assert float(leaver["risk"]) == pytest.approx(alert["context"]["risk"], abs=1e-3)
    assert run.registry.get_sample_value("baseliner_departed_entities") == 1
    assert run.registry.get_sample_value("baseliner_departed_dropped_total") == 0
    # Another entity's strongest alert is its highest-scoring one.
    best = max(_alerts_of(tmp_path, "U1"), key=lambda alert: alert["score"])
    assert rows["U1"]["strongest_alert"] == best["id"]
    run.close()


def test_departed_rows_survive_a_restart_and_the_cap_is_read_again(tmp_path: Path) -> None:
    _leaver_log(tmp_path)
    _run(tmp_path, idle_expiry="3d").close()
    resumed = Daemon(_config(tmp_path, idle_expiry="3d"))
    assert resumed.write_entities() == 9
    assert _entities(tmp_path)["U0"]["status"] == "expired"
    resumed.close()
    shrunk = Daemon(_config(tmp_path, idle_expiry="3d", departed_entities=0))
    assert (len(shrunk.departed), shrunk.departed.dropped) == (0, 1)
    assert shrunk.write_entities() == 8
    assert shrunk.registry.get_sample_value("baseliner_departed_dropped_total") == 1
    shrunk.close()


def test_a_checkpoint_written_before_the_departed_table_still_loads(tmp_path: Path) -> None:
    _leaver_log(tmp_path)
    _run(tmp_path, idle_expiry="3d").close()
    path = tmp_path / "state" / CHECKPOINT_NAME
    data = path.read_bytes()
    header = read_header(data, str(path))
    state = decode_model(data, expected_schema_hash=header["schema_hash"], source=str(path))
    assert isinstance(state, dict)
    del state["departed"], state["strongest_alerts"]
    del state["scorer"].departures  # as pickled by builds before the hook
    path.write_bytes(
        encode_model(state, schema_hash=header["schema_hash"], metadata=header["metadata"])
    )
    old = Daemon(_config(tmp_path, idle_expiry="3d"))
    assert len(old.departed) == 0 and old.strongest_alerts == {}
    assert old.scorer.departures == []  # tracking again
    assert old.write_entities() == 8
    old.close()


def test_with_departed_entities_0_none_is_kept(tmp_path: Path) -> None:
    _leaver_log(tmp_path)
    run = _run(tmp_path, idle_expiry="3d", departed_entities=0)
    assert "U0" not in _entities(tmp_path)
    assert run.registry.get_sample_value("baseliner_departed_dropped_total") == 1
    run.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "daemon.departed_entities: must be >= 0, got -1"), ("many", "must be an int")],
)
def test_a_bad_departed_entities_is_refused_by_name(
    tmp_path: Path, value: object, message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        _config(tmp_path, departed_entities=value)


def test_departed_entities_defaults_to_ten_thousand(tmp_path: Path) -> None:
    assert _config(tmp_path).departed_entities == 10_000

"""Alert context values keep their types; windows without an alert have a null severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import polars as pl

from detector.alerts import Alert
from detector.pipeline import Budget, Pipeline, PipelineConfig
from features.spec import FeatureSpec
from tests.detector.test_online_scoring import _ordinary_day, _scorer, _vector, _warm

DAY0 = datetime(2010, 1, 1, tzinfo=UTC)


def _scan_result() -> tuple[pl.DataFrame, list[Alert]]:
    """20 users x 20 days, 4 to 13 events a day; u3 copies 40 files to USB on day 18."""
    specs = [FeatureSpec(name="logons", kind="count"), FeatureSpec(name="usb", kind="count")]
    rng = np.random.default_rng(0)
    rows = [
        {
            "entity": f"u{u}",
            "window_start": DAY0 + timedelta(days=d),
            "n_events": 4 + (u + d) % 10,
            "logons": float(rng.integers(1, 4)),
            "usb": 40.0 if (u, d) == (3, 18) else 0.0,
        }
        for u in range(20)
        for d in range(20)
    ]
    frame = pl.DataFrame(rows)
    train = frame.filter(pl.col("window_start") < DAY0 + timedelta(days=10))
    test = frame.filter(pl.col("window_start") >= DAY0 + timedelta(days=10))
    pipe = Pipeline(specs, PipelineConfig(detector="robust", budget=Budget(per_day=1)))
    result = pipe.fit(train).process(test)
    return result.windows, result.alerts


def test_scan_alert_context_counts_events_as_a_number() -> None:
    _, alerts = _scan_result()
    top = alerts[0]
    assert (top.entity, top.window_start.day) == ("u3", 19)
    line = orjson.loads(orjson.dumps(top.to_dict()))
    assert line["context"] == {"events": 4 + (3 + 18) % 10}  # 5, a number, not "5"


def test_daemon_alert_context_holds_numbers_and_the_id_ignores_it() -> None:
    scorer = _scorer()
    _warm(scorer)
    day = _ordinary_day(10)
    day[7] = _vector("u07", 10, logons=4.0, usb=30.0)
    [alert] = scorer.score(day)
    context = orjson.loads(orjson.dumps(alert.to_dict()))["context"]
    assert context["events"] == 10 and isinstance(context["events"], int)
    assert isinstance(context["risk"], float) and context["risk"] > 0.0
    assert context["risk"] == round(context["risk"], 3)
    # The id is the finding's (entity, window, detector, schema), whatever the context holds.
    assert alert.id == Alert.stable_id("u07", alert.window_start, alert.detector, "test")


def test_windows_without_an_alert_have_a_null_severity() -> None:
    windows, alerts = _scan_result()
    flagged = windows.filter(pl.col("alert"))
    assert flagged.height == len(alerts) >= 1
    assert flagged["severity"].null_count() == 0
    assert set(flagged["severity"].to_list()) <= {"low", "medium", "high", "critical"}
    quiet = windows.filter(~pl.col("alert"))
    assert quiet.height == 200 - len(alerts)
    assert quiet["severity"].null_count() == quiet.height

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detector.alerts import Alert, Deviation


def make(score: float, entity: str = "ACM2278", schema: str = "h1") -> Alert:
    start = datetime(2010, 7, 1, tzinfo=UTC)
    devs = (
        Deviation("usb_file_copies", 412, 1, 0, 3, 30.2, "412 files copied", "T1052.001"),
        Deviation("off_hours_logons", 3, 0, 0, 0, 9.0, "3 logons off hours", "T1078"),
        Deviation("usb_connects", 5, 0, 0, 1, 8.0, "5 USB connects", "T1052.001"),
    )
    return Alert.build(
        entity=entity,
        window_start=start,
        window_end=start + timedelta(days=1),
        detector="ensemble",
        score=score,
        threshold=0.9,
        severity="high",
        schema_hash=schema,
        deviations=devs,
    )


def test_ids_are_stable_and_distinguish_what_identifies_a_finding() -> None:
    a, b = make(0.95), make(0.99)
    assert a.id == b.id  # a replay with another score is the same finding
    assert make(0.95, entity="other").id != a.id
    assert make(0.95, schema="h2").id != a.id
    assert len(a.id) == 20


def test_alert_dict_carries_explanation_and_techniques() -> None:
    d = make(0.95).to_dict()
    assert d["techniques"] == ["T1052.001", "T1078"]
    assert d["explanation"][0] == {
        "feature": "usb_file_copies",
        "observed": 412,
        "typical": 1,
        "typical_range": [0, 3],
        "z": 30.2,
        "technique": "T1052.001",
        "population_share": None,
        "text": "412 files copied",
    }
    assert d["summary"] == "412 files copied; 3 logons off hours; 5 USB connects"
    assert d["window_start"] == "2010-07-01T00:00:00+00:00"

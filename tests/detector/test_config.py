"""The daemon config: every key validated, the wrong one named exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.config import load_config, parse_config, parse_duration
from detector.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def _doc(**daemon: Any) -> dict[str, Any]:
    return {
        "daemon": {"state_dir": "state", **daemon},
        "source": [{"type": "file", "path": "logon.csv", "parser": "cert.logon"}],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }


def test_example_config_in_repo_root_is_valid() -> None:
    config = load_config(REPO / "baseliner.example.toml")
    assert config.state_dir == REPO / "baseliner-state"
    assert [s.parser for s in config.sources] == ["cert.logon", "lanl.auth"]
    assert config.sources[1].parser_options == {"epoch": datetime(2024, 1, 1, tzinfo=UTC)}
    assert config.budget_per_day == 5.0
    assert config.allowed_lateness == timedelta(hours=1)


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = parse_config(_doc(), tmp_path)
    assert config.metrics_host_port == ("127.0.0.1", 9108)
    assert config.detector == "count_tail"
    assert config.sources[0].path == tmp_path / "logon.csv"
    assert config.sources[0].name == "source1"
    assert config.sinks[0].path == tmp_path / "alerts.jsonl"
    assert config.windows_per_day == 1000.0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["source"][0].update(parser="foo"), "source[1].parser: unknown parser 'foo'"),
        (lambda d: d["source"][0].update(colour="red"), "source[1].colour: unknown key"),
        (lambda d: d["source"][0].pop("path"), "source[1].path: required for a file source"),
        (lambda d: d["source"][0].update(type="kafka"), "source[1].type: unknown type 'kafka'"),
        (
            lambda d: d["source"][0].update(parser_options={"epok": "2024-01-01"}),
            "source[1].parser_options.epok: not an option of parser 'cert.logon'",
        ),
        (lambda d: d["sink"][0].pop("path"), "sink[1].path: required for a jsonl sink"),
        (lambda d: d["daemon"].update(window="1w"), "daemon.window: '1w' is not one of 1h, 1d"),
        (lambda d: d["daemon"].update(budget="5"), "daemon.budget: '5' is not 'N/day'"),
        (lambda d: d["daemon"].update(detector="iforest"), "daemon.detector: unknown online"),
        (lambda d: d["daemon"].update(checkpoint_seconds=0), "daemon.checkpoint_seconds: must"),
        (lambda d: d["daemon"].update(checkpoint_seconds=True), "daemon.checkpoint_seconds: must"),
        (lambda d: d["daemon"].update(metrics_address="9108"), "daemon.metrics_address: '9108'"),
        (lambda d: d["daemon"].update(allowed_lateness="1w"), "daemon.allowed_lateness: '1w'"),
        (lambda d: d["daemon"].update(detector_params={"nope": 1}), "daemon.detector_params:"),
        (lambda d: d["daemon"].update(speed=3), "daemon.speed: unknown key"),
        (lambda d: d["daemon"].pop("state_dir"), "daemon.state_dir: required"),
        (lambda d: d.update(extra={}), "extra: unknown table"),
        (lambda d: d.update(source=[]), "source: at least one [[source]]"),
    ],
)
def test_wrong_key_is_named(mutate: Any, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(UsageError) as caught:
        parse_config(doc)
    assert str(caught.value).startswith(message), str(caught.value)


def test_lanl_epoch_accepts_toml_datetime_and_string(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[daemon]\nstate_dir = "s"\n'
        '[[source]]\ntype = "stdin"\nparser = "lanl.auth"\n'
        "parser_options = { epoch = 2020-05-01T00:00:00Z }\n"
    )
    config = load_config(path)
    assert config.sources[0].parser_options["epoch"] == datetime(2020, 5, 1, tzinfo=UTC)
    assert config.sinks[0].type == "stdout"


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[daemon\n")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_config(path)
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1d2h") == timedelta(hours=26)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")

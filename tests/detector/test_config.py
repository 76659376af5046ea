"""The daemon config: every key validated, the wrong one named exactly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
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
    assert [s.parser for s in config.sources] == [
        "cert.logon",
        "lanl.auth",
        "linux.auth",
        "linux.auth",
        "jsonl",
    ]
    assert config.sources[1].parser_options == {"epoch": datetime(2024, 1, 1, tzinfo=UTC)}
    assert [(s.type, s.listen) for s in config.sources[2:]] == [
        ("syslog_udp", ("127.0.0.1", 5514)),
        ("syslog_tcp", ("127.0.0.1", 5514)),
        ("http", ("127.0.0.1", 8088)),
    ]
    assert [s.type for s in config.sinks] == ["jsonl", "stdout"]
    assert config.budget_per_day == 5.0
    assert config.allowed_lateness == timedelta(hours=1)


def test_every_commented_key_of_the_example_is_valid(tmp_path: Path) -> None:
    """The example documents optional keys as comments: uncommented, they must validate."""
    text = (REPO / "baseliner.example.toml").read_text()
    uncommented = re.sub(r"(?m)^# (\[\[|[a-z_]+ = )", r"\1", text)
    assert uncommented.count("\n[[sink]]") == 3
    path = tmp_path / "example.toml"
    path.write_text(uncommented)
    # The peer groups file the example names is read when the config is loaded.
    (tmp_path / "peers.csv").write_text("entity,group\nann,finance\n")
    # ... and so is the allow-list.
    (tmp_path / "allowlist.toml").write_text('[[allow]]\nentity = "svc-*"\nreason = "batch"\n')
    config = load_config(path)
    assert (config.peers, config.min_peers) == (tmp_path / "peers.csv", 5)
    assert config.allowlist == tmp_path / "allowlist.toml"
    http = config.sources[4]
    assert http.options == {
        "path": "/ingest",
        "max_body": 10485760,
        "max_queue": 100000,
        "max_connections": 64,
        "request_timeout": 30.0,
        "idle_timeout": 30.0,
    }
    assert config.sources[3].options == {
        "max_queue": 100000,
        "max_message": 65536,
        "max_connections": 256,
        "idle_timeout": 300.0,
    }
    jsonl, _, webhook = config.sinks
    assert (jsonl.max_bytes, jsonl.keep) == (104857600, 5)
    assert webhook.url == "https://soar.example.org/hooks/baseliner"
    assert webhook.headers == {"Authorization": "Bearer CHANGE-ME"}
    assert (webhook.timeout, webhook.max_attempts, webhook.backoff) == (5.0, 5, 0.5)
    assert (webhook.max_backoff, webhook.max_queue, webhook.batch_size) == (30.0, 10000, 1)
    assert webhook.dead_letter == tmp_path / "baseliner-state/webhook-dead-letters.jsonl"
    assert webhook.drain_seconds == 10.0


def test_network_sources_and_sinks(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [
        {"type": "syslog_udp", "listen": "127.0.0.1:0", "parser": "syslog", "max_queue": 10},
        {"type": "http", "listen": "[::1]:8088", "parser": "jsonl", "path": "/logs"},
    ]
    doc["sink"].append({"type": "webhook", "url": "http://127.0.0.1:9/hook", "batch_size": 20})
    config = parse_config(doc, tmp_path)
    udp, http = config.sources
    assert (udp.listen, udp.options, udp.path) == (("127.0.0.1", 0), {"max_queue": 10}, None)
    assert (http.listen, http.options) == (("::1", 8088), {"path": "/logs"})
    webhook = config.sinks[1]
    assert (webhook.batch_size, webhook.max_attempts) == (20, 5)
    # Without dead_letter the undeliverable alerts go next to the checkpoint.
    assert webhook.dead_letter == tmp_path / "state" / "sink2-dead-letters.jsonl"


def test_network_limits_reach_the_source_options(tmp_path: Path) -> None:
    doc = _doc()
    doc["source"] = [
        {
            "type": "syslog_tcp",
            "listen": "127.0.0.1:0",
            "parser": "syslog",
            "max_connections": 8,
            "idle_timeout": 2,
        },
        {
            "type": "http",
            "listen": "127.0.0.1:0",
            "parser": "jsonl",
            "max_connections": 4,
            "request_timeout": 1.5,
            "idle_timeout": 10,
        },
    ]
    tcp, http = parse_config(doc, tmp_path).sources
    assert tcp.options == {"max_connections": 8, "idle_timeout": 2.0}
    assert http.options == {"max_connections": 4, "request_timeout": 1.5, "idle_timeout": 10.0}
    assert isinstance(tcp.options["idle_timeout"], float)


def test_wrong_network_limit_is_one_line_and_exit_2_from_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "baseliner.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\n'
        '[[source]]\ntype = "http"\nlisten = "127.0.0.1:0"\nparser = "jsonl"\n'
        'max_connections = "many"\n'
    )
    assert main(["run", "--config", str(config), "--check-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert "source[1].max_connections: must be an int, got 'many'" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = parse_config(_doc(), tmp_path)
    assert config.metrics_host_port == ("127.0.0.1", 9108)
    assert config.detector == "robust_window"
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
        (lambda d: d["daemon"].update(detector_params={"nope": 1}), "daemon.detector_params.nope:"),
        (lambda d: d["daemon"].update(speed=3), "daemon.speed: unknown key"),
        (lambda d: d["daemon"].pop("state_dir"), "daemon.state_dir: required"),
        (lambda d: d.update(extra={}), "extra: unknown table"),
        (lambda d: d.update(source=[]), "source: at least one [[source]]"),
        (lambda d: d["source"][0].update(type="stdin"), "source[1].path: not a key of a stdin"),
        (lambda d: d["source"][0].update(listen="x"), "source[1].listen: not a key of a file"),
        (lambda d: d["source"].__setitem__(0, _udp()), None),
        (lambda d: d["source"].__setitem__(0, _udp(listen="5514")), "source[1].listen: '5514'"),
        (lambda d: d["source"].__setitem__(0, _udp(listen="h:70000")), "source[1].listen: 'h:7"),
        (lambda d: d["source"].__setitem__(0, _udp(listen=5514)), "source[1].listen: must be a"),
        (lambda d: d["source"][0].update(type="syslog_tcp"), "source[1].path: not a key of a"),
        (
            lambda d: d["source"].__setitem__(0, _udp(listen=None)),
            "source[1].listen: required for a syslog_udp source",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(max_message=10)),
            "source[1].max_message: not a key of a syslog_udp source",
        ),
        (lambda d: d["source"].__setitem__(0, _udp(max_queue=0)), "source[1].max_queue: must be"),
        (
            lambda d: d["source"].__setitem__(0, _udp(max_connections=5)),
            "source[1].max_connections: not a key of a syslog_udp source",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="syslog_tcp", request_timeout=5)),
            "source[1].request_timeout: not a key of a syslog_tcp source",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="syslog_tcp", max_connections="64")),
            "source[1].max_connections: must be an int, got '64'",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="syslog_tcp", max_connections=0)),
            "source[1].max_connections: must be >= 1, got 0",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="syslog_tcp", idle_timeout="5m")),
            "source[1].idle_timeout: must be an int or float, got '5m'",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="http", request_timeout=0)),
            "source[1].request_timeout: must be > 0 seconds, got 0.0",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="http", idle_timeout=True)),
            "source[1].idle_timeout: must be an int or float, got True",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="http", path="ingest")),
            "source[1].path: 'ingest' is not a URL path",
        ),
        (
            lambda d: d["source"].extend([_udp(), _udp()]),
            "source[3].listen: 127.0.0.1:5514 is already used by source[2].listen",
        ),
        (
            lambda d: d["source"].__setitem__(0, _udp(type="http", listen="127.0.0.1:9108")),
            "source[1].listen: 127.0.0.1:9108 is already used by daemon.metrics_address",
        ),
        (lambda d: d["sink"][0].update(keep=-1), "sink[1].keep: must be >= 0, got -1"),
        (lambda d: d["sink"][0].update(max_bytes="1MB"), "sink[1].max_bytes: must be an int"),
        (lambda d: d["sink"][0].update(url="http://x"), "sink[1].url: not a key of a jsonl sink"),
        (lambda d: d["sink"].append({"type": "webhook"}), "sink[2].url: required for a webhook"),
        (lambda d: d["sink"].append(_hook(url="ftp://x/")), "sink[2].url: 'ftp://x/' is not an"),
        (lambda d: d["sink"].append(_hook(url="http://h:99999/")), "sink[2].url: 'http://h:9"),
        (lambda d: d["sink"].append(_hook(timeout=0)), "sink[2].timeout: must be > 0"),
        (lambda d: d["sink"].append(_hook(max_attempts=0)), "sink[2].max_attempts: must be >= 1"),
        (lambda d: d["sink"].append(_hook(backoff=-1)), "sink[2].backoff: must be >= 0"),
        (lambda d: d["sink"].append(_hook(batch_size=1.5)), "sink[2].batch_size: must be an int"),
        (lambda d: d["sink"].append(_hook(headers={"X": 1})), "sink[2].headers.X: must be a str"),
        (lambda d: d["sink"].append(_hook(path="a")), "sink[2].path: not a key of a webhook"),
        (lambda d: d["sink"].append(_hook(colour=1)), "sink[2].colour: unknown key"),
        (lambda d: d["sink"].append({"type": "kafka"}), "sink[2].type: unknown type 'kafka'"),
    ],
)
def test_wrong_key_is_named(mutate: Any, message: str | None) -> None:
    doc = _doc()
    mutate(doc)
    if message is None:  # the valid variant the wrong ones are built from
        parse_config(doc)
        return
    with pytest.raises(UsageError) as caught:
        parse_config(doc)
    assert str(caught.value).startswith(message), str(caught.value)


def _udp(**changes: Any) -> dict[str, Any]:
    table = {"type": "syslog_udp", "listen": "127.0.0.1:5514", "parser": "syslog", **changes}
    return {key: value for key, value in table.items() if value is not None}


def _hook(**changes: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": "https://soar.example.org/hook", **changes}


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


def test_scoring_keys_reach_the_config_and_are_checked(tmp_path: Path) -> None:
    doc = _doc()
    doc["daemon"].update(cold_start_windows=3, learn_flagged=True, risk_half_life_days=2.5)
    config = parse_config(doc, tmp_path)
    assert (config.cold_start_windows, config.learn_flagged, config.risk_half_life_days) == (
        3,
        True,
        2.5,
    )
    assert parse_config(_doc(), tmp_path).learn_flagged is False
    for key, value, message in (
        ("learn_flagged", 1, "daemon.learn_flagged: must be a bool, got 1"),
        ("cold_start_windows", 0, "daemon.cold_start_windows: must be >= 1, got 0"),
        ("risk_half_life_days", 0, "daemon.risk_half_life_days: must be > 0, got 0.0"),
        ("warmup_windows", True, "daemon.warmup_windows: must be an int, got True"),
    ):
        bad = _doc()
        bad["daemon"][key] = value
        with pytest.raises(UsageError) as caught:
            parse_config(bad, tmp_path)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    ("parser", "options", "entity", "warned"),
    [
        ("syslog", "", "user", True),
        ("drain", "", "user", True),
        ("drain", "parser_options = { entity_regex = 'for (?P<user>\\\\w+)' }\n", "user", False),
        ("linux.auth", "", "user", False),
        ("syslog", "", "host", False),
    ],
)
def test_check_config_warns_of_a_parser_that_names_no_user_for_user_windows(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    parser: str,
    options: str,
    entity: str,
    warned: bool,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "s"\nentity = "{entity}"\n'
        f'[[source]]\nname = "logs"\ntype = "stdin"\nparser = "{parser}"\n{options}'
    )
    assert main(["run", "--config", str(config), "--check-config"]) == 0
    err = capsys.readouterr().err
    expected = f"baseliner: warning: logs: the {parser} parser gives events no user"
    assert err.startswith(expected) if warned else err == ""

"""Feature families in the daemon: ``[daemon] feature_families``, what ``"auto"`` implies,
``--check-config`` and start-up wording, the checkpoint's schema, and a drain-parsed log
where one user starts producing never-seen templates."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import PARSER_FAMILIES, DaemonConfig, SourceConfig, parse_config
from detector.daemon import CheckpointError, Daemon
from detector.errors import UsageError
from features import WindowConfig, default_specs, spec_schema_hash
from tests.detector._support import append_lines, drain

DRAIN_OPTIONS = {"entity_regex": r"user=(?P<user>\w+)"}


def _doc(parser: str = "drain", **daemon: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"name": "app", "type": "file", "path": "app.log", "parser": parser}
    if parser == "drain":
        source["parser_options"] = dict(DRAIN_OPTIONS)
    return {
        "daemon": {"state_dir": "state", **daemon},
        "source": [source],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }


def _source(parser: str) -> SourceConfig:
    return SourceConfig(name=parser, type="stdin", path=None, parser=parser)


# -- the configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parsers", "families"),
    [
        (["drain"], ("templates",)),
        (["syslog"], ("templates",)),
        (["windows.security"], ("windows",)),
        (["windows.security", "drain", "syslog"], ("templates", "windows")),
        (["cert.logon", "jsonl", "linux.auth", "lanl.auth"], ()),
    ],
)
def test_auto_families_follow_the_parsers(parsers: list[str], families: tuple[str, ...]) -> None:
    sources = tuple(_source(p) for p in parsers)
    config = DaemonConfig(state_dir=Path("s"), sources=sources)
    assert config.feature_families is None and config.families == families
    off = DaemonConfig(state_dir=Path("s"), sources=sources, feature_families=())
    assert off.families == ()


def test_every_family_a_parser_implies_exists() -> None:
    for parser, family in PARSER_FAMILIES.items():
        assert default_specs("user", [family]) != default_specs("user"), parser


def test_feature_families_key_is_parsed_and_checked(tmp_path: Path) -> None:
    assert parse_config(_doc(), tmp_path).families == ("templates",)
    assert parse_config(_doc(feature_families="auto"), tmp_path).feature_families is None
    assert parse_config(_doc(feature_families=[]), tmp_path).families == ()
    listed = parse_config(_doc("cert.logon", feature_families=["windows", "templates"]), tmp_path)
    assert listed.families == ("templates", "windows")
    for value, message in (
        (
            ["templates", "window"],
            "daemon.feature_families: unknown family 'window' (known: templates, windows);"
            " did you mean windows?",
        ),
        (
            "templates",
            'daemon.feature_families: must be "auto" or a list of family names'
            " (templates, windows), got 'templates'",
        ),
        (
            [1],
            'daemon.feature_families: must be "auto" or a list of family names'
            " (templates, windows), got [1]",
        ),
    ):
        with pytest.raises(UsageError) as caught:
            parse_config(_doc(feature_families=value), tmp_path)
        assert str(caught.value) == message


def test_check_config_names_the_families_or_the_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "baseliner.toml"
    head = '[daemon]\nstate_dir = "state"\n'
    source = '[[source]]\ntype = "stdin"\nparser = "windows.security"\n'
    config.write_text(head + source)
    assert main(["run", "--config", str(config), "--check-config"]) == 0
    assert capsys.readouterr().out == (
        f"config {config}: ok (1 source(s), 1 sink(s);"
        " feature families: windows (auto: parser windows.security))\n"
    )
    config.write_text(head + 'feature_families = ["templates"]\n' + source)
    assert main(["run", "--config", str(config), "--check-config"]) == 0
    assert 'feature families: templates (feature_families = ["templates"]))' in (
        capsys.readouterr().out
    )
    config.write_text(head + 'feature_families = ["drain"]\n' + source)
    assert main(["run", "--config", str(config), "--check-config"]) == 2
    assert capsys.readouterr().err == (
        f"baseliner: error: config {config}: daemon.feature_families: unknown family 'drain'"
        " (known: templates, windows)\n"
    )


def test_an_allow_list_may_name_a_feature_of_a_family_in_force(tmp_path: Path) -> None:
    (tmp_path / "allow.toml").write_text(
        '[[allow]]\nentity = "ann"\nfeature = "new_templates"\nreason = "release day"\n'
    )
    assert parse_config(_doc(allowlist="allow.toml"), tmp_path).families == ("templates",)
    with pytest.raises(UsageError, match=r"entry 1: unknown feature 'new_templates'"):
        parse_config(_doc(allowlist="allow.toml", feature_families=[]), tmp_path)


# -- the daemon ------------------------------------------------------------------------------------


def test_the_daemon_evaluates_the_families_in_force(tmp_path: Path) -> None:
    (tmp_path / "app.log").touch()
    window = WindowConfig(entity="user", window="1d")
    run = Daemon(parse_config(_doc(), tmp_path))
    assert run.specs == default_specs("user", ["templates"])
    assert run.schema_hash == spec_schema_hash(default_specs("user", ["templates"]), window)
    line = run.describe("m")
    assert "; feature families: templates (auto: parser drain); metrics on m" in line
    run.close()
    # A parser that implies no family: the default catalogue and its hash, as before.
    (tmp_path / "logon.csv").touch()
    doc = _doc("cert.logon", state_dir="other")
    doc["source"][0]["path"] = "logon.csv"
    plain = Daemon(parse_config(doc, tmp_path))
    assert plain.schema_hash == spec_schema_hash(default_specs("user"), window)
    assert "feature families" not in plain.describe("m")
    plain.close()


def test_a_checkpoint_of_other_families_is_refused_with_the_setting_that_resumes_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.log").touch()
    first = Daemon(parse_config(_doc(), tmp_path))
    assert first.checkpoint()
    first.close()
    path = tmp_path / "state/checkpoint.bin"
    with pytest.raises(CheckpointError) as caught:
        Daemon(parse_config(_doc(feature_families=[]), tmp_path))
    message = str(caught.value)
    assert message.startswith(f"checkpoint {path} was written with feature schema ")
    assert message.endswith(
        ' (written with daemon.feature_families = ["templates"], the config gives [])'
        "; move it away or start with a new state_dir"
    )
    # The setting the message gives resumes it.
    Daemon(parse_config(_doc(feature_families=["templates"]), tmp_path)).close()


# -- end to end: never-seen templates -------------------------------------------------------------

ROUTINE = (
    "opened report {n} user={u}",
    "saved document {n} to share user={u}",
    "searched catalogue for item {n} user={u}",
    "printed page {n} user={u}",
    "synced calendar with {n} entries user={u}",
)
NEVER_SEEN = (
    "exported mailbox archive of {n} messages to external storage user={u}",
    "disabled audit policy on server {n} user={u}",
    "created scheduled task updater{n} with system rights user={u}",
    "dumped credential cache of process {n} user={u}",
)
USERS = ("ann", "bob", "cat", "dan", "eve", "fay")


def _app_log(days: int, odd_day: int) -> list[str]:
    """Routine lines of six users on weekdays; ann's odd day adds templates nobody wrote."""
    rng = random.Random(5)
    start = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
    stamped: list[tuple[datetime, str]] = []
    for day in range(days):
        for index, user in enumerate(USERS):
            texts = ROUTINE[: 3 + index % 3]
            if user == "ann" and day == odd_day:
                texts = texts + NEVER_SEEN
            for text in texts:
                for _ in range(2):
                    ts = start + timedelta(days=day, hours=rng.uniform(8, 17))
                    stamped.append((ts, text.format(u=user, n=rng.randrange(10_000))))
    stamped.sort()
    return [f"{ts:%Y-%m-%dT%H:%M:%SZ} {text}" for ts, text in stamped]


def test_a_user_writing_never_seen_templates_alerts_on_new_templates(tmp_path: Path) -> None:
    append_lines(tmp_path / "app.log", _app_log(days=12, odd_day=10))
    settings: dict[str, Any] = {"budget": "1/day", "expected_entities": 6, "warmup_windows": 30}
    run = Daemon(parse_config(_doc(**settings), tmp_path))
    drain(run)
    run.close()
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    ann = [a for a in alerts if a["entity"] == "ann" and a["window_start"].startswith("2024-03-14")]
    assert len(ann) == 1, alerts
    first = ann[0]["explanation"][0]
    assert (first["feature"], first["observed"], first["typical"]) == ("new_templates", 4, 0)
    assert first["text"] == "4 log templates never seen from this entity before (typical 0)"
    assert ann[0]["score"] == max(a["score"] for a in alerts)

"""Peer groups: reading them (CSV, LDAP), and cold-start windows scored against them."""

from __future__ import annotations

import copy
import math
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detector.cli import main
from detector.config import parse_config
from detector.daemon import Daemon
from detector.errors import UsageError
from detector.online_scoring import COLD_BASIS, OWN_BASIS, OnlineScorer, ScoredWindow
from detector.peers import load_peers, peer_groups_beside
from features.online import WindowVector
from features.spec import FeatureSpec

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
LDAP_HEADER = (
    "employee_name,user_id,email,role,business_unit,functional_unit,department,team,supervisor\n"
)

# -- reading the groups -------------------------------------------------------------------


def test_a_csv_gives_each_entity_its_group(tmp_path: Path) -> None:
    path = tmp_path / "peers.csv"
    path.write_text("entity,group\nalice,Finance\n\nbob , IT\nalice,Finance\n")
    assert load_peers(path) == {"alice": "Finance", "bob": "IT"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file (expected the header 'entity,group')"),
        ("user,dept\nalice,Finance\n", "header must be 'entity,group', got 'user,dept'"),
        ("entity,group\n", "no entity listed"),
        ("entity,group\nalice\n", "line 2: expected 'entity,group', got ['alice']"),
        ("entity,group\nalice,\n", "line 2: expected 'entity,group', got ['alice', '']"),
        ("entity,group\nalice,IT\nalice,HR\n", "line 3: 'alice' is in 'IT' already"),
    ],
)
def test_a_bad_csv_is_one_usage_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "peers.csv"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_peers(path)
    assert str(caught.value) == f"peers {path}: {message}"


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_peers(tmp_path / "nowhere.csv")
    assert str(caught.value) == f"peers not found: {tmp_path / 'nowhere.csv'}"


def _ldap(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "2010-01.csv").write_text(
        LDAP_HEADER + "Ann Lee,ALE01,a@x,Clerk,1,2 - Sales,3 - Field,T1,\n"
        "Bo Ray,BRA02,b@x,Engineer,1,4 - Eng,5 - Build,T2,\n"
    )
    # The latest snapshot wins: Ann moved.
    (folder / "2010-02.csv").write_text(
        LDAP_HEADER + "Ann Lee,ALE01,a@x,Clerk,1,2 - Sales,6 - Desk,T1,\n"
        "Bo Ray,BRA02,b@x,Engineer,1,4 - Eng,5 - Build,T2,\n"
    )
    return folder


def test_an_ldap_folder_or_a_release_root_gives_the_departments(tmp_path: Path) -> None:
    ldap = _ldap(tmp_path / "release" / "LDAP")
    expected = {"ALE01": "6 - Desk", "BRA02": "5 - Build"}
    assert load_peers(ldap) == expected
    assert load_peers(ldap.parent) == expected
    # The scan reads the same groups beside its CERT logs, through the same code.
    assert peer_groups_beside([ldap.parent / "logon.csv"]) == expected
    assert peer_groups_beside([tmp_path / "logon.csv"]) == {}


def test_a_folder_without_snapshots_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_peers(tmp_path)
    assert str(caught.value) == f"peers: {tmp_path}: no YYYY-MM.csv LDAP snapshots"


# -- scoring against the group ------------------------------------------------------------

SPECS = [FeatureSpec(name="logons", kind="count", explain="{observed:g} logons")]
# Comparison scale of a count is log1p: these raw values are 1, 2, ... on it.
GROUP_A = {f"a{i}": float(i) for i in range(1, 6)}
LOW_USERS = {f"c{i}": i / 10 for i in range(6)}
GROUPS = {
    **dict.fromkeys(GROUP_A, "A"),
    "b1": "B",
    "b2": "B",
    "newcomer_a": "A",
    "newcomer_b": "B",
    # A newcomer to group A each day of a replay.
    **{f"new_a{day}": "A" for day in range(20)},
}


def _window(entity: str, day: int, scaled: float) -> WindowVector:
    return WindowVector(entity, DAY0 + timedelta(days=day), 3, {"logons": math.expm1(scaled)})


def _ordinary_day(day: int) -> list[WindowVector]:
    users = {**GROUP_A, **LOW_USERS}
    return [_window(entity, day, value) for entity, value in users.items()]


def _scorer(peers: dict[str, str] | None, min_peers: int = 5) -> OnlineScorer:
    return OnlineScorer(
        SPECS,
        budget_per_day=1.0,
        windows_per_day=11.0,
        warmup_windows=30,
        cold_start_windows=2,
        history=4,
        refresh_every=1,
        peers=peers,
        min_peers=min_peers,
    )


def _warm(scorer: OnlineScorer, days: int = 6) -> None:
    for day in range(days):
        scorer.score_windows(_ordinary_day(day))
    # Every user repeats its level, so every informed score is 0, and identical scores set
    # no threshold (models.calibration): a few ordinary scores of 1 give it a spread.
    for _ in range(10):
        scorer.calibrator.update(1.0)


def test_a_cold_start_window_is_scored_against_its_group_with_hand_computed_z() -> None:
    scorer = _scorer(GROUPS)
    _warm(scorer)
    groups = scorer._peer_groups
    assert groups is not None
    # Group A's kept windows: 1, 2, 3, 4, 5 four times each: median 3, MAD 1. Group B has
    # no member with its own baseline: not a comparison.
    assert groups.names == ["A"]
    assert groups.median[0].tolist() == [3.0]
    assert groups.scale[0].tolist() == pytest.approx([1.4826])
    # The population (the 11 users): median 0.5, MAD 0.5, so a floor of 0.5 x 0.7413.
    population = scorer._population
    assert population is not None
    assert population.median.tolist() == [0.5]
    assert population.floor.tolist() == pytest.approx([0.5 * 1.4826 * 0.5], rel=1e-6)

    scored, alerts = scorer.score_windows([*_ordinary_day(6), _window("newcomer_a", 6, 6.0)])
    basis = {w.entity: w.basis for w in scored}
    assert basis["newcomer_a"] == "peer group A (cold start)"
    assert basis["a1"] == OWN_BASIS
    [alert] = alerts
    assert (alert.entity, alert.baseline) == ("newcomer_a", "peer group A (cold start)")
    [deviation] = alert.deviations
    # z = (6 - 3) / max(1.4826, floor): against the population it would be 5.5 / 0.7413.
    assert deviation.z == pytest.approx(3.0 / 1.4826, rel=1e-6)
    # "Typical" is the group's median (3 on the comparison scale), its range the group's.
    assert deviation.typical == round(math.expm1(3.0), 2)
    assert (deviation.typical_low, deviation.typical_high) == (
        round(math.expm1(1.0), 2),
        round(math.expm1(5.0), 2),
    )


def test_a_group_narrower_than_the_population_is_judged_with_the_population_s_spread() -> None:
    scorer = _scorer({**GROUPS, **dict.fromkeys(LOW_USERS, "C"), "newcomer_c": "C"})
    _warm(scorer)
    groups = scorer._peer_groups
    assert groups is not None
    c = groups.names.index("C")
    # Group C's kept windows: 0, 0.1, ..., 0.5 four times each: median 0.25, MAD 0.15.
    assert groups.median[c].tolist() == pytest.approx([0.25])
    assert groups.scale[c].tolist() == pytest.approx([1.4826 * 0.15])
    _, alerts = scorer.score_windows([*_ordinary_day(6), _window("newcomer_c", 6, 3.0)])
    [alert] = alerts
    assert (alert.entity, alert.baseline) == ("newcomer_c", "peer group C (cold start)")
    # (3 - 0.25) over the population's spread 0.7413, not the group's 0.2224 nor the
    # population floor 0.3706 (with them z would be 12.4 or 7.4).
    assert alert.deviations[0].z == pytest.approx(2.75 / (1.4826 * 0.5), rel=1e-4)


def test_without_a_large_enough_group_the_population_is_the_baseline() -> None:
    scorer = _scorer(GROUPS)
    _warm(scorer)
    day = _ordinary_day(6)
    scored, alerts = scorer.score_windows([*day, _window("newcomer_b", 6, 6.0)])
    assert {w.entity: w.basis for w in scored}["newcomer_b"] == COLD_BASIS
    [alert] = alerts
    assert alert.baseline == COLD_BASIS
    # Against the population: (6 - 0.5) / 0.7413.
    assert alert.deviations[0].z == pytest.approx(5.5 / (1.4826 * 0.5), rel=1e-6)
    unlisted = _scorer(GROUPS)
    _warm(unlisted)
    scored, _ = unlisted.score_windows([*day, _window("stranger", 6, 6.0)])
    assert {w.entity: w.basis for w in scored}["stranger"] == COLD_BASIS


def _replay(scorer: OnlineScorer, days: range) -> list[ScoredWindow]:
    out: list[ScoredWindow] = []
    for day in days:
        extra = [_window(f"new_a{day}", day, 4.5 + day % 3), _window("newcomer_b", day, 2.0)]
        out += scorer.score_windows([*_ordinary_day(day), *extra])[0]
    return out


def test_groups_below_min_peers_score_exactly_as_without_peers() -> None:
    without = _replay(_scorer(None), range(10))
    assert _replay(_scorer(GROUPS, min_peers=6), range(10)) == without
    assert _replay(_scorer(GROUPS, min_peers=5), range(10)) != without


def test_a_restored_scorer_given_its_peers_again_scores_the_same() -> None:
    scorer = _scorer(GROUPS)
    _replay(scorer, range(5))
    saved = pickle.dumps(scorer)
    restored: OnlineScorer = pickle.loads(saved)
    # The mapping is configuration: not in the checkpoint.
    assert restored.peers == {} and scorer.peers == GROUPS
    restored.set_peers(GROUPS, 5)
    after = _replay(restored, range(5, 12))
    assert after == _replay(scorer, range(5, 12))
    assert sum(w.basis == "peer group A (cold start)" for w in after) == 7


def test_a_checkpoint_from_before_peer_groups_loads_and_scores_on_the_population() -> None:
    scorer = _scorer(None)
    _replay(scorer, range(5))
    state = copy.deepcopy(scorer.__getstate__())
    for key in ("min_peers", "_peer_groups"):
        del state[key]
    old = OnlineScorer.__new__(OnlineScorer)
    old.__setstate__(state)
    assert (old.peers, old.min_peers) == ({}, 5)
    assert _replay(old, range(5, 9)) == _replay(scorer, range(5, 9))


def test_min_peers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_peers must be >= 1"):
        _scorer(GROUPS, min_peers=0)


# -- the daemon ---------------------------------------------------------------------------


def _daemon_doc(peers: str, **extra: object) -> dict[str, object]:
    return {
        "daemon": {"state_dir": "state", "peers": peers, **extra},
        "source": [{"name": "logon", "type": "file", "path": "logon.csv", "parser": "cert.logon"}],
        "sink": [{"type": "jsonl", "path": "alerts.jsonl"}],
    }


def test_the_daemon_s_scorer_gets_the_groups_of_its_config_also_after_a_restore(
    tmp_path: Path,
) -> None:
    (tmp_path / "peers.csv").write_text("entity,group\nU1,Finance\nU2,Finance\n")
    config = parse_config(_daemon_doc("peers.csv", min_peers=2), tmp_path)
    assert (config.peers, config.min_peers) == (tmp_path / "peers.csv", 2)
    first = Daemon(config)
    assert first.scorer.peers == {"U1": "Finance", "U2": "Finance"}
    assert first.scorer.min_peers == 2
    assert first.checkpoint()
    first.close()
    (tmp_path / "peers.csv").write_text("entity,group\nU1,IT\n")
    restored = Daemon(parse_config(_daemon_doc("peers.csv"), tmp_path))
    try:
        assert restored.scorer.peers == {"U1": "IT"} and restored.scorer.min_peers == 5
    finally:
        restored.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "peers not found: {path}"),
        (
            "entity;group\nU1;IT\n",
            "peers {path}: header must be 'entity,group', got 'entity;group'",
        ),
        ("", "peers {path}: empty file (expected the header 'entity,group')"),
    ],
)
def test_a_bad_peers_file_stops_check_config_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    peers = tmp_path / "peers.csv"
    if content is not None:
        peers.write_text(content)
    config = tmp_path / "baseliner.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\npeers = "peers.csv"\n'
        '[[source]]\ntype = "file"\npath = "logon.csv"\nparser = "cert.logon"\n'
    )
    code = main(["run", "--config", str(config), "--check-config"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"baseliner: error: config {config}: daemon.peers: " + message.format(path=peers)
    ]


def test_a_large_group_is_represented_by_an_even_sample_of_its_members() -> None:
    members = {f"m{i:02d}": float(i) for i in range(1, 11)}
    scorer = OnlineScorer(
        SPECS,
        warmup_windows=1000,
        cold_start_windows=2,
        history=4,
        refresh_every=1,
        reference_size=8,
        peers=dict.fromkeys(members, "big"),
        min_peers=5,
    )
    for day in range(4):
        scorer.score_windows([_window(entity, day, value) for entity, value in members.items()])
    groups = scorer._peer_groups
    assert groups is not None
    # 8 windows of reference: max(min_peers, 8 // 4) = 5 members, evenly spread over the 10
    # (those holding 1, 3, 5, 7 and 10): median 5 where all ten give 5.5.
    assert groups.median[0].tolist() == [5.0]

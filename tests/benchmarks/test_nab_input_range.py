"""NAB's detector interface: each file's min/max and probationary period handed over up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.nab.corpus import NabCorpus, NabSeries
from benchmarks.nab.run import (
    DEFAULT_DETECTOR,
    DEFAULT_PARAMS,
    NAB_INTERFACE,
    check_interface,
    run_nab,
    score_series_online,
    with_input_range,
    with_probation,
)


def alternating(n_rows: int = 60) -> NabSeries:
    # 0, 4, 0, 4, ... with a 2 where a 0 was due at row 30.
    series = NabSeries.from_rows("toy/alt.csv", n_rows, [(28, 32)])
    series.values[:] = [4.0 * (row % 2) for row in range(n_rows)]
    series.values[30] = 2.0
    return series


def test_the_range_goes_to_the_detector_or_its_member() -> None:
    series = alternating()
    assert with_input_range({"resolutions": 2}, series) == {
        "resolutions": 2,
        "ranges": {"value": (0.0, 4.0)},
    }
    wrapped = with_input_range({"member": "cad", "member_params": {"n_bits": 2}}, series)
    assert wrapped["member_params"] == {"n_bits": 2, "ranges": {"value": (0.0, 4.0)}}
    # 15 % of 60 rows are probation.
    assert with_probation({"n_bits": 2}, series) == {"n_bits": 2, "probation": 9}


PARAMS = {"n_bits": 2, "max_active": 1, "features": ["value"]}


def test_with_the_range_the_detector_scores_before_its_warm_up_ends() -> None:
    series = alternating()
    params = {**PARAMS, "rest_steps": 0}
    # Without it, cad learns its range from the first 50 values: row 30 is still warm-up.
    assert score_series_online(series, "cad", params)[30] == 0.0
    # With it, levels are fixed from row 0 (0 -> 0, 2 -> 1, 4 -> 3); by row 30 the
    # alternation is learnt and the 2 where 0 was foreseen is wholly unforeseen: no selected
    # context is active and every potential context is new. The 0 that follows is a second
    # surprise (nothing foresaw a 0 after a 2).
    with_range = score_series_online(series, "cad", params, input_range=True)
    assert with_range[30] == 1.0 and with_range[31] == 1.0
    assert with_range[20:30].tolist() == [0.0] * 10


def test_the_probation_sets_the_rest_of_cad() -> None:
    # Probation 9 rows: cad rests int(9 / 5) = 1 step after a score of 0.75 or more.
    scores = score_series_online(alternating(), "cad", PARAMS, input_range=True, probation=True)
    assert scores[30] == 1.0 and scores[31] == 0.0


def test_the_default_detector_takes_both_and_hands_them_to_its_two_grids() -> None:
    assert DEFAULT_DETECTOR == "cad_dual"
    assert NAB_INTERFACE[DEFAULT_DETECTOR] == {"input_range": True, "probation": True}
    check_interface(DEFAULT_DETECTOR, DEFAULT_PARAMS[DEFAULT_DETECTOR], True, True)
    # As cad alone: the 2 at row 30 is wholly unforeseen, then a one-step rest (probation 9).
    scores = score_series_online(
        alternating(), "cad_dual", PARAMS, input_range=True, probation=True
    )
    assert scores[30] == 1.0 and scores[31] == 0.0
    assert scores[20:30].tolist() == [0.0] * 10


@pytest.mark.slow  # writes the full report (plots)
def test_run_nab_records_the_choice(tmp_path: Path) -> None:
    corpus = NabCorpus({"toy/alt.csv": alternating()})
    results, _ = run_nab(
        None,
        tmp_path,
        "cad",
        params=PARAMS,
        corpus=corpus,
    )
    # NAB's interface for cad (as for the default, cad_dual): the range and the probation.
    assert results["input_range"] is True and results["probation"] is True
    assert results["raw_scores"]["toy/alt.csv"]["max"] == 1.0


def test_a_detector_without_the_parameter_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.nab.run import main

    code = main(["--out", str(tmp_path), "--detector", "seasonal", "--probation", "--quiet"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "error: seasonal does not take 'probation' (NAB's probationaryPeriod); "
        "run without --probation"
    )

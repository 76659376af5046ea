"""The bench's optional input range: each file's min/max handed to the detector up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.nab.corpus import NabCorpus, NabSeries
from benchmarks.nab.run import run_nab, score_series_online, with_input_range


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
    wrapped = with_input_range({"member": "cad", "member_params": {"resolutions": 2}}, series)
    assert wrapped["member_params"] == {"resolutions": 2, "ranges": {"value": (0.0, 4.0)}}


def test_with_the_range_the_detector_scores_before_its_warm_up_ends() -> None:
    series = alternating()
    params = {"resolutions": 2, "max_active": 1, "features": ["value"]}
    # Without it, cad learns its grid from the first 50 values: row 30 is still warm-up.
    assert score_series_online(series, "cad", params)[30] == 0.0
    # With it, bins are fixed from row 0; by row 30 the alternation is learnt and the 2 (a
    # new bin where 0 was foreseen) is wholly unforeseen.
    with_range = score_series_online(series, "cad", params, input_range=True)
    assert with_range[30] == 1.0
    assert with_range[20:30].tolist() == [0.0] * 10


@pytest.mark.slow  # writes the full report (plots)
def test_run_nab_records_the_choice(tmp_path: Path) -> None:
    corpus = NabCorpus({"toy/alt.csv": alternating()})
    results, _ = run_nab(
        None,
        tmp_path,
        "cad",
        params={"resolutions": 2, "max_active": 1, "features": ["value"]},
        corpus=corpus,
        input_range=True,
    )
    assert results["input_range"] is True
    assert results["raw_scores"]["toy/alt.csv"]["max"] == 1.0

"""The peer groups' statistics: each group's median, scale and 10/90 % values over its members'
kept windows, the same numbers whichever way the windows are gathered."""

from __future__ import annotations

import numpy as np
import pytest

from detector.online_scoring import OnlineScorer
from features.spec import FeatureSpec
from models.online.robust_window import MAD_TO_SIGMA

SPECS = [FeatureSpec(name=f"f{j}", kind="count") for j in range(3)]


def _reference(values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Median, 1.4826 x MAD, 10 % (lower) and 90 % (higher) of each feature, the plain way.

    ``values``: (windows, features) float32.
    """
    wide = values.astype(np.float64)
    median = np.median(wide, axis=0)
    mad = np.median(np.abs(wide - median), axis=0)
    low = np.quantile(wide, 0.1, axis=0, method="lower")
    high = np.quantile(wide, 0.9, axis=0, method="higher")
    return median, MAD_TO_SIGMA * mad, low, high


@pytest.mark.parametrize("partial", [False, True], ids=["full rings", "young members"])
def test_each_group_s_statistics_are_those_of_its_members_kept_windows(partial: bool) -> None:
    rng = np.random.default_rng(7)
    peers = {f"u{i}": ("A" if i < 6 else "B") for i in range(11)}
    scorer = OnlineScorer(SPECS, history=8, cold_start_windows=3, peers=peers, min_peers=5)
    rings = scorer._rings
    rows = rings.rows_of(list(peers))
    rings.values[rows] = np.round(rng.gamma(0.5, 2.0, size=(11, 3, 8)), 1).astype(np.float32)
    learnt = np.full(11, 20)
    if partial:
        learnt[[0, 7]] = [4, 5]  # their first 4 and 5 slots only
        learnt[8] = 2  # below cold_start_windows: not a member
    rings.learnt[rows] = learnt
    groups = scorer._peer_statistics()
    assert groups is not None
    # Group B without u8 (young) has 4 members when partial: fewer than min_peers, left out.
    assert groups.names == (["A"] if partial else ["A", "B"])
    for g, name in enumerate(groups.names):
        kept = [
            rings.values[rows[i], :, : min(int(learnt[i]), 8)].T
            for i in range(11)
            if peers[f"u{i}"] == name and learnt[i] >= 3
        ]
        median, scale, low, high = _reference(np.concatenate(kept))
        np.testing.assert_array_equal(groups.median[g], median)
        np.testing.assert_array_equal(groups.scale[g], scale)
        np.testing.assert_array_equal(groups.low[g], low)
        np.testing.assert_array_equal(groups.high[g], high)


def test_a_group_of_known_values_gives_hand_computed_statistics() -> None:
    peers = {f"u{i}": "A" for i in range(5)}
    scorer = OnlineScorer(SPECS[:1], history=2, cold_start_windows=1, peers=peers, min_peers=5)
    rings = scorer._rings
    rows = rings.rows_of(list(peers))
    # Ten windows: 0, 1, ..., 9 (two per member).
    rings.values[rows, 0, :] = np.arange(10, dtype=np.float32).reshape(5, 2)
    rings.learnt[rows] = 2
    groups = scorer._peer_statistics()
    assert groups is not None
    # Median 4.5; deviations 0.5, 0.5, 1.5, 1.5, ..., 4.5, 4.5: MAD 2.5.
    assert groups.median.tolist() == [[4.5]]
    assert groups.scale.tolist() == [[pytest.approx(2.5 * MAD_TO_SIGMA)]]
    assert (groups.low.tolist(), groups.high.tolist()) == ([[0.0]], [[9.0]])

"""The scorer's entity rings: which series a window leaves untouched, and growing the table.

A series whose MAD is 0 is not refreshed while the value put in keeps its median in more than
half of its slots (counted by its ties); these tests check the rule by hand and, against
``np.median`` over every history, on a stream with many ties, full rings and repeats.
"""

from __future__ import annotations

import numpy as np

from detector.online_scoring import _QUADRUPLE_BELOW, _EntityRings, _Ring


def _learn_and_refresh(rings: _EntityRings, entities: list[str], values: list[float]) -> None:
    rows = rings.rows_of(entities)
    rings.learn(rows, np.array(values)[:, None])
    stale = np.unique(rows)
    rings.refresh(stale[rings.stale[stale]])


def test_a_flat_series_is_refreshed_only_once_its_median_loses_the_majority() -> None:
    rings = _EntityRings(window=4, width=1)
    for value in (0.0, 0.0, 0.0):
        _learn_and_refresh(rings, ["ann"], [value])
    assert int(rings.ties[0, 0]) == 3
    # [0, 0, 0, 5]: 0 still holds 3 of 4 slots, so the median stays 0 and the MAD 0.
    rows = rings.rows_of(["ann"])
    rings.learn(rows, np.array([[5.0]]))
    assert not rings.dirty[0, 0]
    assert int(rings.ties[0, 0]) == 3
    rings.refresh(rows)
    assert (float(rings.median[0, 0]), float(rings.scale[0, 0])) == (0.0, 0.0)
    # The ring is full: 5 overwrites a 0, leaving [5, 0, 0, 5] (median 2.5, MAD 2.5).
    rings.learn(rows, np.array([[5.0]]))
    assert rings.dirty[0, 0]
    rings.refresh(rows)
    assert float(rings.median[0, 0]) == 2.5
    assert float(rings.scale[0, 0]) == 1.4826 * 2.5
    assert int(rings.ties[0, 0]) == 0


def test_the_median_given_again_leaves_a_flat_series_untouched_even_in_a_full_ring() -> None:
    rings = _EntityRings(window=3, width=1)
    for value in (2.0, 2.0, 7.0, 2.0, 2.0):
        _learn_and_refresh(rings, ["bob"], [value])
        assert float(rings.median[0, 0]) == 2.0 and float(rings.scale[0, 0]) == 0.0
    assert not rings.dirty.any()


def test_rings_match_np_median_over_every_history_with_ties_full_rings_and_repeats() -> None:
    rng = np.random.default_rng(23)
    window, width, entities = 6, 3, 25
    rings = _EntityRings(window=window, width=width)
    names = [f"u{i}" for i in range(entities)]
    history: dict[str, list[np.ndarray]] = {name: [] for name in names}
    untouched_by_a_new_value = 0
    for call in range(60):
        chosen = rng.choice(entities, size=rng.integers(1, 12), replace=call % 5 == 0)
        called = [names[i] for i in chosen.tolist()]
        # Mostly zeros, with repeats of small counts: many ties and flat series.
        scaled = np.log1p(rng.poisson(0.4, size=(len(called), width))).astype(np.float32)
        rows = rings.rows_of(called)
        previous_median = rings.median[rows].copy()
        was_clean = ~rings.dirty[rows]
        rings.learn(rows, scaled.astype(np.float64))
        untouched_by_a_new_value += int(
            (was_clean & ~rings.dirty[rows] & (scaled != previous_median)).sum()
        )
        for name, values in zip(called, scaled, strict=True):
            history[name].append(values)
        unique = np.unique(rows)
        rings.refresh(unique[rings.stale[unique]])
        for name in set(called):
            kept = np.array(history[name][-window:], dtype=np.float64)
            row = int(rings.rows_of([name])[0])
            median = np.median(kept, axis=0)
            assert np.array_equal(rings.median[row], median)
            mad = np.median(np.abs(kept - median), axis=0)
            assert np.array_equal(rings.scale[row], 1.4826 * mad)
    # The rule was exercised: new values that left the median and MAD as they were.
    assert untouched_by_a_new_value > 0


def test_growing_the_table_keeps_every_history_and_fresh_rows_are_zeros() -> None:
    rings = _EntityRings(window=5, width=2)
    first = [f"a{i}" for i in range(70)]
    rows = rings.rows_of(first)
    for step in range(3):
        rings.learn(rows, np.full((70, 2), float(step + 1)) * (1.0 + np.arange(70))[:, None])
    capacity = rings.values.shape[0]
    grown_rows = rings.rows_of([f"b{i}" for i in range(capacity)])
    assert rings.values.shape[0] > capacity
    assert rings.history(int(rows[3])).tolist() == [[4.0, 4.0], [8.0, 8.0], [12.0, 12.0]]
    assert np.array_equal(
        rings.values[rows, :, :3][:, 0, :], np.outer(1.0 + np.arange(70), [1, 2, 3])
    )
    assert not rings.values[grown_rows].any() and not rings.ties[grown_rows].any()


def test_a_small_table_quadruples_when_full_and_a_large_one_doubles() -> None:
    rings = _EntityRings(window=1, width=1)
    rings.rows_of([f"a{i}" for i in range(100)])
    assert rings.values.shape[0] == 100  # sized for the first call's newcomers
    rings.rows_of(["b"])
    assert rings.values.shape[0] == 400
    rings.rows_of([f"c{i}" for i in range(_QUADRUPLE_BELOW - 101)])  # to the brim
    assert rings.values.shape[0] == _QUADRUPLE_BELOW
    rows = rings.rows_of(["d", "a7"])
    assert rings.values.shape[0] == 2 * _QUADRUPLE_BELOW
    assert rows.tolist() == [_QUADRUPLE_BELOW, 7]
    assert rings.median.shape == rings.dirty.shape == (2 * _QUADRUPLE_BELOW, 1)


def test_a_ring_s_column_std_is_kept_std_to_the_bit_for_one_some_or_all_columns() -> None:
    # The population's spread of an unspread feature: bit for bit what the std over every
    # column gives (a lone column is summed pairwise by numpy, so it must not be alone).
    rng = np.random.default_rng(3)
    ring = _Ring(size=5000, width=6)
    ring.push_many(np.log1p(rng.poisson(1.5, size=(7000, 6))) * rng.uniform(0.1, 9.0, 6))
    full = ring.kept().std(axis=0)
    for columns in ([0], [5], [2], [1, 4], [0, 2, 3], list(range(6))):
        chosen = np.array(columns, dtype=np.intp)
        assert np.array_equal(ring.column_std(chosen), full[chosen])

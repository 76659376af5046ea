"""The scorer's shortcuts give the numbers of the plain computations, bit for bit: float32
references searched without widening them, the sum of the two largest surprises, and the
windows' values read in one look-up."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from detector.online_scoring import (
    OnlineScorer,
    float32_at_least,
    tail_surprise,
)
from features.online import WindowVector
from features.spec import FeatureSpec
from models.combine import sum_of_largest

# Deviations as the scorer holds them: non-negative, many exact zeros (of either sign),
# ties, values at float32 boundaries and beyond its range.
_FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 3.0e38, 3.5e38, 1e-45, 1e-300]),
    st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
    st.floats(min_value=0.0, max_value=50.0, width=32),
)
_FLOATS32 = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 3.0e38, float("inf")]),
    st.floats(min_value=0.0, max_value=50.0, width=32),
)


@settings(max_examples=60, deadline=None)
@given(
    column=arrays(np.float32, st.integers(1, 40), elements=_FLOATS32),
    keys=arrays(np.float64, st.integers(1, 20), elements=_FLOATS),
)
def test_float32_bounds_find_the_positions_of_the_float64_keys(
    column: np.ndarray, keys: np.ndarray
) -> None:
    column.sort()
    widened = np.searchsorted(column.astype(np.float64), keys, side="left")
    assert np.searchsorted(column, float32_at_least(keys), side="left").tolist() == (
        widened.tolist()
    )


def test_float32_bounds_round_up_only_what_float32_cannot_hold() -> None:
    keys = np.array([0.7, 0.5, 1.0 + 2.0**-30, 3.5e38, np.inf])
    bounds = float32_at_least(keys)
    assert bounds.dtype == np.float32
    # 0.7's nearest float32 lies below it: the next float32 up is the bound.
    nearest = np.float32(0.7)
    assert float(nearest) < 0.7 < float(bounds[0])
    assert bounds[0] == np.nextafter(nearest, np.float32(1.0))
    assert bounds[1:].tolist() == [0.5, 1.0 + 2.0**-23, np.inf, np.inf]


@settings(max_examples=40, deadline=None)
@given(
    reference=arrays(
        np.float32, st.tuples(st.integers(1, 60), st.integers(1, 4)), elements=_FLOATS32
    ),
    magnitude=arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 4)), elements=_FLOATS),
)
def test_tail_surprise_reads_a_float32_reference_as_its_float64_copy(
    reference: np.ndarray, magnitude: np.ndarray
) -> None:
    width = min(reference.shape[1], magnitude.shape[1])
    narrow = np.sort(reference[:, :width], axis=0)
    magnitude = magnitude[:, :width]
    wide = tail_surprise(magnitude, narrow.astype(np.float64))
    assert tail_surprise(magnitude, narrow).tobytes() == wide.tobytes()


def _sorted_sum(surprise: np.ndarray, k: int) -> np.ndarray:
    width = surprise.shape[1]
    largest = np.partition(surprise, width - k, axis=1)[:, width - k :]
    largest.sort(axis=1)
    return np.asarray(largest.sum(axis=1))


@settings(max_examples=60, deadline=None)
@given(
    surprise=arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(2, 6)), elements=_FLOATS)
)
def test_the_two_largest_sum_as_after_a_sort(surprise: np.ndarray) -> None:
    found = sum_of_largest(surprise, 2, surprise.max(axis=1))
    assert found.tobytes() == _sorted_sum(surprise, 2).tobytes()


def test_the_two_largest_of_ties_and_signed_zeros() -> None:
    surprise = np.array([[-0.0, -0.0, -0.0], [2.0, 0.5, 2.0], [-0.0, 1.5, 0.0]])
    found = sum_of_largest(surprise, 2, surprise.max(axis=1))
    assert found.tolist() == [0.0, 4.0, 1.5]
    assert not np.signbit(found[0])  # a sum starts from +0, as the sorted sum does
    assert found.tobytes() == _sorted_sum(surprise, 2).tobytes()


def test_window_values_are_read_in_spec_order_with_missing_ones_zero() -> None:
    specs = [FeatureSpec(name=name, kind="count") for name in ("a", "b", "c")]
    scorer = OnlineScorer(specs)
    lazy: defaultdict[str, float] = defaultdict(lambda: 9.0, {"a": 1.0})
    day = datetime(2024, 1, 1, tzinfo=UTC)
    vectors = [
        WindowVector("ann", day, 1, {"c": 3.0, "b": 2, "a": 1.5}),  # all: in spec order
        WindowVector("bob", day, 1, {"a": 4.0, "c": 2**53 + 1}),  # "b" missing: 0
        WindowVector("cat", day, 1, lazy),  # a dict subclass: read with get, not grown
    ]
    found = scorer._values_matrix(vectors)
    assert found.tolist() == [[1.5, 2.0, 3.0], [4.0, 0.0, float(2**53 + 1)], [1.0, 0.0, 0.0]]
    assert dict(lazy) == {"a": 1.0}

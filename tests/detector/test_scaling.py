"""The comparison scale: log1p for counts, nines for regularities, NaN and infinities as 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector.scaling import scale_matrix
from features.spec import FeatureSpec

SPECS = [
    FeatureSpec(name="n", kind="count"),
    FeatureSpec(name="reg", kind="periodicity", field="target"),
]


def test_counts_are_log1p_of_their_positive_part_and_regularities_nines_capped() -> None:
    raw = np.array([[3.0, 0.9], [-2.0, 1.5], [0.0, -1.0]])
    scaled = scale_matrix(SPECS, raw)
    expected = [[math.log(4.0), math.log(10.0)], [0.0, math.log(1000.0)], [0.0, 0.0]]
    assert scaled.ravel().tolist() == pytest.approx(np.ravel(expected).tolist(), rel=1e-12)
    assert raw.tolist() == [[3.0, 0.9], [-2.0, 1.5], [0.0, -1.0]]  # the input is left as is


def test_nan_counts_as_0_and_infinities_as_the_largest_number_or_0() -> None:
    raw = np.array([[math.nan, math.nan], [math.inf, math.inf], [-math.inf, -math.inf]])
    scaled = scale_matrix(SPECS, raw)
    # NaN -> 0; +inf -> the largest float (log1p of it, or the regularity's cap).
    top = math.log1p(np.finfo(np.float64).max)
    assert scaled.ravel().tolist() == pytest.approx([0.0, 0.0, top, math.log(1000.0), 0.0, 0.0])


def test_finite_input_gives_the_same_numbers_to_the_bit_without_cleaning() -> None:
    rng = np.random.default_rng(5)
    raw = np.concatenate(
        [rng.exponential(40.0, size=(500, 1)), rng.uniform(-0.2, 1.2, size=(500, 1))], axis=1
    )
    raw[::7] *= -1.0
    given = raw.copy()
    default = scale_matrix(SPECS, raw)
    vouched = scale_matrix(SPECS, raw, finite=True)
    assert vouched.tobytes() == default.tobytes()
    assert raw.tobytes() == given.tobytes()  # scaled into a new array, not in place

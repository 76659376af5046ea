"""The scale on which detectors and explanations compare feature values.

Counts and volumes are heavy-tailed, so they are compared on ``log1p``: one huge day must not
flatten every other feature. Regularities (``periodicity`` features, in [0, 1]) matter near 1,
where a beacon lives, so they are compared in "nines": ``-ln(1 - x)``, which spreads 0.9, 0.99
and 0.999 apart instead of squeezing them together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from features.spec import FeatureSpec

#: Regularity is capped below 1 so that a perfectly regular beacon stays finite.
_MAX_REGULARITY = 0.999


def _is_regularity(spec: FeatureSpec) -> bool:
    return spec.kind == "periodicity"


def scale_expr(spec: FeatureSpec) -> pl.Expr:
    """The feature column of ``spec`` on its comparison scale, as a polars expression.

    Examples
    --------
    >>> beacon = FeatureSpec(name="reg", kind="periodicity", field="target")
    >>> pl.DataFrame({"reg": [0.0, 0.9]}).select(scale_expr(beacon)).to_series().round(3).to_list()
    [0.0, 2.303]
    """
    col = pl.col(spec.name).fill_nan(0.0).fill_null(0.0)
    if _is_regularity(spec):
        return (-(1.0 - col.clip(0.0, _MAX_REGULARITY)).log()).abs().alias(spec.name)
    return col.clip(lower_bound=0.0).log1p().alias(spec.name)


def scale_matrix(
    specs: Sequence[FeatureSpec], X: NDArray[np.float64], *, finite: bool = False
) -> NDArray[np.float64]:
    """Columns of ``X`` (one per spec, raw values) on their comparison scale.

    ``finite``: the caller vouches that ``X`` (float64) holds no NaN or infinity, so it is
    not cleaned (copied) again; the numbers are the same.

    Examples
    --------
    >>> specs = [FeatureSpec(name="n", kind="count"),
    ...          FeatureSpec(name="reg", kind="periodicity", field="target")]
    >>> scale_matrix(specs, np.array([[np.e - 1, 0.99]])).round(3).tolist()
    [[1.0, 4.605]]
    >>> scale_matrix(specs, np.array([[np.e - 1, 0.99]]), finite=True).round(3).tolist()
    [[1.0, 4.605]]
    """
    clean = X if finite else np.nan_to_num(np.asarray(X, dtype=np.float64))
    out = np.clip(clean, 0.0, None)
    # In place: one array for the whole matrix rather than one per step.
    np.log1p(out, out=out)
    for j, spec in enumerate(specs):
        if _is_regularity(spec):
            out[:, j] = np.abs(np.log1p(-np.clip(clean[:, j], 0.0, _MAX_REGULARITY)))
    return out

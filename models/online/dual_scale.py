"""CAD on two grids: the value's levels on a linear scale and on a log scale (``cad_dual``).

CAD OSE (:class:`~models.online.cad.ContextualAnomalyDetector`) cuts a feature's range into
``2**n_bits`` equal levels, so it only sees changes of at least a level (1/7 of the range for
3 bits). When a few huge values set the range, as in bursty counts (a tweet storm, a spike of
disk writes, a key held down), the usual values and the bursts a few times above them all sit
in level 0 and the linear grid cannot tell them apart. A second CAD, identical except that its
levels are cut on a log scale (each level spans the same *ratio* above the range's low end),
sees those relative changes; on the linear grid's own ground it is noisier (small values are
spread over more levels), so its score is discounted by ``log_weight`` and the two are combined
by their maximum: an alarm of either grid is an alarm.

Both members learn every step and rest on their own (the reference's rest after a high score);
the memory and cost are those of two CADs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.online.cad import ContextualAnomalyDetector
from models.params import ParamsMixin


class DualScaleCAD(ParamsMixin):
    """``max(linear CAD, log_weight * log-scale CAD)`` on the same features.

    Parameters
    ----------
    log_scale : float
        The log grid's unit as a share of the range: a value ``v`` is placed by
        ``log1p((v - low) / (log_scale * (high - low)))`` (see ``ContextualAnomalyDetector``).
    log_weight : float
        Factor on the log-scale member's score before the maximum (1: equal footing).
    n_bits, max_active, max_left_facts, rest_level, rest_steps, probation, ranges, warmup, \
features, max_contexts
        Passed to both members, as for ``ContextualAnomalyDetector``.
    seed : int | None
        Accepted for the contract; the detector is deterministic.

    Examples
    --------
    Usual values near 1, a range set by one value of 1000: a burst to 20 is level 0 on the
    linear grid (no alarm) but a new level on the log grid.

    >>> detector = DualScaleCAD(ranges={"x": (0.0, 1000.0)}, rest_steps=0)
    >>> for value in [1.0, 2.0] * 30:
    ...     detector.learn_one({"x": value})
    >>> detector.linear_.score_one({"x": 20.0}), detector.score_one({"x": 20.0}) > 0.5
    (0.0, True)
    """

    def __init__(
        self,
        *,
        log_scale: float = 0.001,
        log_weight: float = 0.9,
        n_bits: int = 3,
        max_active: int = 15,
        max_left_facts: int = 7,
        rest_level: float = 0.75,
        rest_steps: int | None = None,
        probation: int | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        warmup: int = 50,
        features: Sequence[str] | None = None,
        max_contexts: int = 2_000_000,
        seed: int | None = 0,
    ) -> None:
        if not log_weight >= 0.0:
            raise ValueError(f"log_weight must be >= 0, got {log_weight!r}")
        self.log_scale = log_scale
        self.log_weight = log_weight
        self.n_bits = n_bits
        self.max_active = max_active
        self.max_left_facts = max_left_facts
        self.rest_level = rest_level
        self.rest_steps = rest_steps
        self.probation = probation
        self.ranges = ranges
        self.warmup = warmup
        self.features = features
        self.max_contexts = max_contexts
        self.seed = seed
        self.linear_ = self._member(None)
        self.log_ = self._member(log_scale)

    def _member(self, log_scale: float | None) -> ContextualAnomalyDetector:
        # Every parameter but the two of the pair is a member's, under the same name.
        shared = self.get_params()
        del shared["log_scale"], shared["log_weight"]
        return ContextualAnomalyDetector(**shared, log_scale=log_scale)

    def score_one(self, x: Mapping[str, float]) -> float:
        """The larger of the linear member's score and the weighted log member's, in [0, 1]."""
        return max(self.linear_.score_one(x), self.log_weight * self.log_.score_one(x))

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Both members learn the step."""
        self.linear_.learn_one(x)
        self.log_.learn_one(x)

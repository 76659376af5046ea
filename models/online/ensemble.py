"""Rank-normalised combination of online detectors.

Raw scores of different detectors live on different scales (a z-score, a ``-log10 p``, a tree
mass). Each member's score is mapped to its rank among that member's own recent scores (a
windowed empirical CDF, learnt in ``learn_one``), and the ranks are combined by their mean or
maximum. Ranks are in [0, 1]; 1 means "above everything this member produced recently".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.base import OnlineDetector
from models.online._common import WindowedECDF
from models.params import ParamsMixin


def _create_online(name: str, params: Mapping[str, Any], seed: int | None) -> OnlineDetector:
    # Imported here: the registry lists this module, so a module-level import would be a cycle.
    from models.registry import ONLINE_DETECTORS, resolve

    if name not in ONLINE_DETECTORS:
        raise ValueError(f"{name!r} is not an online detector; valid: {sorted(ONLINE_DETECTORS)}")
    detector: OnlineDetector = resolve(name)(**{"seed": seed, **params})
    return detector


class OnlineRankEnsemble(ParamsMixin):
    """Mean (or max) of the members' ranks among their own recent scores.

    Parameters
    ----------
    members : sequence of str
        Online detector names from the registry.
    member_params : mapping of str to mapping, optional
        Hyper-parameters per member name.
    history : int
        Recent scores kept per member for the rank.
    combine : {"mean", "max"}
        How member ranks are combined.
    seed : int | None
        Passed to every member.

    Examples
    --------
    >>> ensemble = OnlineRankEnsemble(members=("seasonal", "count_tail"), history=50)
    >>> for i in range(60):
    ...     ensemble.learn_one({"x": float(i % 4)})
    >>> ensemble.score_one({"x": 2.0}) < ensemble.score_one({"x": 30.0}) == 1.0
    True
    """

    def __init__(
        self,
        *,
        members: Sequence[str] = ("seasonal", "count_tail", "hst"),
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        history: int = 1000,
        combine: str = "mean",
        seed: int | None = 0,
    ) -> None:
        if combine not in ("mean", "max"):
            raise ValueError(f"combine must be 'mean' or 'max', got {combine!r}")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self.member_params = member_params
        self.history = history
        self.combine = combine
        self.seed = seed
        params = member_params or {}
        self.members_: list[OnlineDetector] = [
            _create_online(name, params.get(name, {}), seed) for name in members
        ]
        self.ecdfs_: list[WindowedECDF] = [WindowedECDF(history) for _ in members]

    def member_ranks(self, x: Mapping[str, float]) -> list[float]:
        """Each member's rank of its score on ``x`` among its recent scores."""
        return [
            ecdf.rank(member.score_one(x))
            for member, ecdf in zip(self.members_, self.ecdfs_, strict=True)
        ]

    def score_one(self, x: Mapping[str, float]) -> float:
        """Combined rank in [0, 1]; higher = more anomalous."""
        ranks = self.member_ranks(x)
        return max(ranks) if self.combine == "max" else sum(ranks) / len(ranks)

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Record each member's score on ``x`` (score first), then let it learn."""
        for member, ecdf in zip(self.members_, self.ecdfs_, strict=True):
            ecdf.push(member.score_one(x))
            member.learn_one(x)

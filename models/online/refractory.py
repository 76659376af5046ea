"""Alert hygiene for any online detector: after a high score, stay quiet for a while.

One incident should give one alert, not fifty: once the member's score reaches ``level``, the
next ``steps`` scores are 0 (the member keeps learning throughout). The same parameter works on
every series of a deployment because it is counted in steps, not in the member's units. With
``escalation``, a score at least that many times the one that started the silence still gets
through (and starts a new silence): a far bigger event is not hidden behind a small one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.base import OnlineDetector
from models.online.ensemble import _create_online
from models.params import ParamsMixin


class RefractoryDetector(ParamsMixin):
    """A member detector whose scores are silenced for ``steps`` steps after one reaches ``level``.

    Parameters
    ----------
    member : str
        An online detector name from the registry.
    member_params : mapping, optional
        Its hyper-parameters.
    level : float
        A member score at or above it starts a silence.
    steps : int
        Steps silenced after such a score (0 disables).
    escalation : float
        During a silence, a score at least ``escalation`` times the one that started it is let
        through and restarts the silence (0 disables).
    seed : int | None
        Passed to the member.

    Examples
    --------
    >>> detector = RefractoryDetector(member="seasonal", level=5.0, steps=2)
    >>> scores = []
    >>> for value in [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 90.0, 90.0, 90.0, 90.0]:
    ...     scores.append(round(detector.score_one({"x": value}), 1))
    ...     detector.learn_one({"x": value})
    >>> scores[6] > 5.0, scores[7:9], scores[9] > 0.0
    (True, [0.0, 0.0], True)
    """

    def __init__(
        self,
        *,
        member: str = "context",
        member_params: Mapping[str, Any] | None = None,
        level: float = 1.0,
        steps: int = 0,
        escalation: float = 0.0,
        seed: int | None = 0,
    ) -> None:
        self.member = member
        self.member_params = member_params
        self.level = level
        self.steps = steps
        self.escalation = escalation
        self.seed = seed
        self.member_: OnlineDetector = _create_online(member, member_params or {}, seed)
        self.n_learnt_ = 0
        self.silent_until_ = 0
        self.trigger_score_ = 0.0
        self._last_score: tuple[int, tuple[tuple[str, float], ...], float] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_last_score"] = None  # a cache of the member's last score, not state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _member_score(self, x: Mapping[str, float]) -> float:
        # learn_one needs the score that score_one just computed for the same step: reuse it
        # rather than scoring the member twice (the member has not learnt in between).
        key = tuple(x.items())
        if self._last_score is not None and self._last_score[:2] == (self.n_learnt_, key):
            return self._last_score[2]
        score = self.member_.score_one(x)
        self._last_score = (self.n_learnt_, key, score)
        return score

    def _passes(self, score: float) -> bool:
        if self.n_learnt_ >= self.silent_until_:
            return True
        return (
            self.escalation > 0.0
            and score >= self.level
            and score >= self.escalation * self.trigger_score_
        )

    def score_one(self, x: Mapping[str, float]) -> float:
        """The member's score, or 0 while silenced; higher = more anomalous."""
        score = self._member_score(x)
        return score if self._passes(score) else 0.0

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Start a silence if this step's score gets through and reaches ``level``, then learn."""
        score = self._member_score(x)
        if self.steps > 0 and score >= self.level and self._passes(score):
            self.silent_until_ = self.n_learnt_ + 1 + self.steps
            self.trigger_score_ = score
        self.n_learnt_ += 1
        self.member_.learn_one(x)

"""Findings and alerts: what was flagged, how strongly, and why."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Deviation:
    """One feature that deviated from the entity's typical behaviour.

    Parameters
    ----------
    feature
        The feature spec's name.
    observed
        The value in the flagged window.
    typical
        The entity's typical value (median of its own history, or of its peers on cold start).
    typical_low, typical_high
        The entity's usual range (10th to 90th percentile of its history).
    z
        How many robust scales (on a log1p scale) above typical the observation lies.
    text
        The sentence an analyst reads.
    technique
        MITRE ATT&CK technique id the feature is evidence of, if any.
    share
        Fraction of training windows that deviated at least as much on this feature.
    combination
        True when no feature of the window deviated enough to explain it alone and this one
        is listed as one of the features that deviated most: together they are the reason.
        Its technique is then not claimed by the alert.

    Examples
    --------
    >>> d = Deviation("usb_file_copies", 412.0, 1.0, 0.0, 3.0, 38.5, "412 files copied to USB")
    >>> d.to_dict()["typical_range"]
    [0, 3]
    """

    feature: str
    observed: float
    typical: float
    typical_low: float
    typical_high: float
    z: float
    text: str
    technique: str | None = None
    share: float | None = None
    combination: bool = False

    def to_dict(self) -> dict[str, Any]:
        as_dict: dict[str, Any] = {
            "feature": self.feature,
            "observed": _num(self.observed),
            "typical": _num(self.typical),
            "typical_range": [_num(self.typical_low), _num(self.typical_high)],
            "z": round(self.z, 2),
            "technique": self.technique,
            "population_share": None if self.share is None else float(f"{self.share:.3g}"),
            "text": self.text,
        }
        if self.combination:
            # Only on combination entries, so that ordinary explanations keep their shape.
            as_dict["combination"] = True
        return as_dict


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


@dataclass(frozen=True, slots=True)
class Alert:
    """A scored window that crossed its calibrated threshold, with its explanation.

    The id is a digest of what identifies the finding (entity, window, detector, feature
    schema), so scoring the same input again yields the same id and a replay never
    duplicates an alert.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> a = Alert.build(entity="ACM2278", window_start=datetime(2010, 7, 1, tzinfo=UTC),
    ...     window_end=datetime(2010, 7, 2, tzinfo=UTC), detector="ensemble", score=0.99,
    ...     threshold=0.97, severity="high", schema_hash="abc", deviations=())
    >>> a.id == Alert.build(entity="ACM2278", window_start=a.window_start,
    ...     window_end=a.window_end, detector="ensemble", score=0.5, threshold=0.97,
    ...     severity="low", schema_hash="abc", deviations=()).id
    True
    """

    id: str
    entity: str
    entity_type: str
    window_start: datetime
    window_end: datetime
    detector: str
    score: float
    threshold: float
    severity: str
    techniques: tuple[str, ...]
    deviations: tuple[Deviation, ...]
    baseline: str = "own history"
    context: dict[str, str | int | float] = field(default_factory=dict)
    """What else describes the window: ``events`` (a count), the daemon's ``risk`` (a
    number), ``peer_group`` (a name). Not part of the id."""

    @staticmethod
    def stable_id(entity: str, window_start: datetime, detector: str, schema_hash: str) -> str:
        key = f"{entity}\x1f{window_start.isoformat()}\x1f{detector}\x1f{schema_hash}"
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    @classmethod
    def build(
        cls,
        *,
        entity: str,
        window_start: datetime,
        window_end: datetime,
        detector: str,
        score: float,
        threshold: float,
        severity: str,
        schema_hash: str,
        deviations: tuple[Deviation, ...],
        entity_type: str = "user",
        baseline: str = "own history",
        context: dict[str, str | int | float] | None = None,
    ) -> Alert:
        techniques = tuple(
            dict.fromkeys(d.technique for d in deviations if d.technique and not d.combination)
        )
        return cls(
            id=cls.stable_id(entity, window_start, detector, schema_hash),
            entity=entity,
            entity_type=entity_type,
            window_start=window_start,
            window_end=window_end,
            detector=detector,
            score=score,
            threshold=threshold,
            severity=severity,
            techniques=techniques,
            deviations=deviations,
            baseline=baseline,
            context=dict(context or {}),
        )

    @property
    def summary(self) -> str:
        """One line: the strongest reasons, most deviating first.

        When no feature stands out alone, the features that deviated most are named as an
        unusual combination.
        """
        if not self.deviations:
            return "unusual combination of features (no single feature stands out)"
        if all(d.combination for d in self.deviations):
            return "unusual combination: " + ", ".join(d.text for d in self.deviations[:3])
        return "; ".join(d.text for d in self.deviations[:3])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "entity_type": self.entity_type,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "detector": self.detector,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "severity": self.severity,
            "techniques": list(self.techniques),
            "baseline": self.baseline,
            "summary": self.summary,
            "explanation": [d.to_dict() for d in self.deviations],
            "context": self.context,
        }

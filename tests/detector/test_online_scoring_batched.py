"""The online scorer's results when one call holds several windows of an entity (to 1e-9).

The daemon hands the scorer every window a closing step closed: after a quiet spell or a
jump of the watermark that is several hours of the same entity in one call, and the rules for
that case are subtle (each window is scored against the baseline from before the call, an
alert's explanation sees the entity's windows learnt earlier in the call, the risk decays and
adds window by window). The fixture replays the hourly stream of
:mod:`tests.detector.test_online_scoring_hourly` in calls of one to ten hours, through both
``score_windows`` and ``score_frame``, with learning of flagged windows off and on, a ring
shorter than some calls (history 5), the stream default cold-start weight, forgetting and a
checkpoint half-way.

It was written by the scorer before its per-window work became array work over the call.
Regenerate it only for an intended change of results::

    .venv/bin/python -m tests.detector.test_online_scoring_batched
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from detector.online_scoring import OnlineScorer
from detector.risk import FeatureEvidence, RiskConfig
from features.online import WindowVector
from tests.detector.test_online_scoring_hourly import (
    ENTITIES,
    SPECS,
    hourly_batches,
    replay_record,
)
from tests.detector.test_online_scoring_parity import _assert_close

FIXTURE = Path(__file__).parents[1] / "fixtures" / "online_scoring" / "batched_e120_d8.json"
#: Hours per call, cycled: mostly several, once more than the short history holds.
CALL_HOURS = (3, 1, 2, 10, 4, 3, 2)


def _calls() -> list[list[WindowVector]]:
    """The hourly batches joined into calls, in the daemon's order (start, then entity)."""
    batches = hourly_batches()
    calls: list[list[WindowVector]] = []
    position = 0
    for size in CALL_HOURS * 20:
        if position >= len(batches):
            break
        joined = [v for batch in batches[position : position + size] for v in batch]
        calls.append(sorted(joined, key=lambda v: (v.window_start, v.entity)))
        position += size
    return calls


def _scorer(learn_flagged: bool) -> OnlineScorer:
    return OnlineScorer(
        SPECS,
        budget_per_day=10.0,
        windows_per_day=ENTITIES * 8,
        warmup_windows=300,
        cold_start_windows=3,
        history=5 if learn_flagged else 12,
        reference_size=1500,
        refresh_every=200,
        calibration_days=1.5,
        evidence_days=2.0,
        window=timedelta(hours=1),
        schema_hash="batched",
        learn_flagged=learn_flagged,
        risk=RiskConfig(surprise_floor=1.5, half_life_days=2.0),
        cold_start_evidence=0.5,
        # Written before the strongest feature earned risk evidence.
        feature_evidence=FeatureEvidence(weight=0.0),
    )


def replay_payload(*, learn_flagged: bool, frames: bool) -> dict[str, Any]:
    """Every scored window (vectors only), alert, threshold and entity risk (plain JSON)."""
    calls = _calls()
    scorer, record = replay_record(
        _scorer(learn_flagged),
        calls,
        restart_at=len(calls) // 2,
        forget_at=lambda step: f"e{(7 * step) % ENTITIES:03d}" if step % 4 == 3 else None,
        frames=frames,
    )
    return {
        **record,
        "risks": [
            [
                r.entity,
                r.peak,
                r.risk,
                r.alerts,
                r.windows,
                r.evidence_windows,
                None if r.peak_window is None else r.peak_window.isoformat(),
            ]
            for r in scorer.top_entities()
        ],
        "capped": scorer.capped,
        "scored": scorer.windows_scored,
        "raised": scorer.alerts_raised,
        "last_day": scorer.last_day,
    }


def fixture_payload() -> dict[str, Any]:
    """Both learning policies, through vectors and through frames."""
    return {
        f"{'learn_flagged' if learn else 'skip_flagged'}-{'frames' if frames else 'vectors'}": (
            replay_payload(learn_flagged=learn, frames=frames)
        )
        for learn in (False, True)
        for frames in (False, True)
    }


def test_batched_replay_matches_the_results_from_before_the_array_rewrite() -> None:
    expected = json.loads(FIXTURE.read_text())
    found = json.loads(json.dumps(fixture_payload()))
    for name, payload in expected.items():
        assert sum(w[3] for w in payload["windows"]) >= 10 or "frames" in name
        assert len(payload["alerts"]) >= 10, "the fixture must exercise alerts"
        assert payload["capped"] > 0, "and the daily cap"
        assert any(r[5] for r in payload["risks"]), "and risk evidence"
    _assert_close(found, expected, "replay")


def test_frames_and_vectors_raise_the_same_alerts() -> None:
    expected = json.loads(FIXTURE.read_text())
    for policy in ("skip_flagged", "learn_flagged"):
        by_frames, by_vectors = expected[f"{policy}-frames"], expected[f"{policy}-vectors"]
        assert by_frames["alerts"] == by_vectors["alerts"]
        assert by_frames["risks"] == by_vectors["risks"]


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(fixture_payload(), indent=0) + "\n")

"""The contextual sequence detector and the refractory wrapper, on hand-computed tiny series."""

from __future__ import annotations

import pickle

import pytest

from models.online.context import ContextSequenceDetector
from models.online.refractory import RefractoryDetector


def feed(
    detector: ContextSequenceDetector | RefractoryDetector, values: list[float]
) -> list[float]:
    scores = []
    for value in values:
        scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return scores


def test_scores_zero_until_the_grid_is_fixed() -> None:
    detector = ContextSequenceDetector(resolutions=2, order=1, warmup=4)
    assert feed(detector, [0.0, 5.0, 1.0, 3.0]) == [0.0, 0.0, 0.0, 0.0]
    state = detector.features_["x"]
    # The grid spans the warm-up range: origin 0, span 5.
    assert (state.origin, state.span) == (0.0, 5.0)


def test_fraction_of_unpredicted_resolutions_order_one() -> None:
    # Grid: origin 0, span 3. Bins (2 bins, 4 bins): 0 -> (0, 0), 1 -> (0, 1), 2 -> (1, 2),
    # 3 -> (2, 4). After "... 2, 3" the context is 3's bins (2, 4).
    detector = ContextSequenceDetector(resolutions=2, order=1, warmup=4)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    # 3 -> 0: seen at both resolutions.
    assert detector.score_one({"x": 0.0}) == 0.0
    # 3 -> 1 is (2 -> 0) at the coarse resolution, seen; (4 -> 1) at the fine one, never.
    assert detector.score_one({"x": 1.0}) == 0.5
    # 9 lands in bins (6, 12), never visited.
    assert detector.score_one({"x": 9.0}) == 1.0


def test_second_order_context_tells_apart_what_first_order_cannot() -> None:
    # One resolution, origin 0, span 2: bins 0 -> 0, 1 -> 1, 2 -> 2. The cycle 0, 1, 0, 2 has
    # first-order moves 0->1, 1->0, 0->2, 2->0 and second-order ones (0,1)->0, (1,0)->2,
    # (0,2)->0, (2,0)->1.
    detector = ContextSequenceDetector(resolutions=1, order=2, warmup=4)
    feed(detector, [0.0, 1.0, 0.0, 2.0] * 5 + [0.0])
    # Context (2, 0): 0->2 is a known first-order move, but (2,0)->2 never happened.
    assert detector.score_one({"x": 2.0}) == 0.5
    assert detector.score_one({"x": 1.0}) == 0.0
    # 0->0 is new at both orders.
    assert detector.score_one({"x": 0.0}) == 1.0


def test_the_grid_is_rebuilt_when_the_range_grows() -> None:
    detector = ContextSequenceDetector(
        resolutions=2, order=1, warmup=4, history=8, check_every=4, regrid_factor=4.0
    )
    feed(detector, [0.0, 1.0] * 4)
    assert detector.features_["x"].span == 1.0
    # The last 8 values then range over 0..100: 100x wider than the grid, so it is rebuilt
    # from them at the next check and the 0 <-> 100 alternation becomes familiar.
    feed(detector, [0.0, 100.0] * 4)
    state = detector.features_["x"]
    assert (state.origin, state.span) == (0.0, 100.0)
    assert detector.score_one({"x": 0.0}) == 0.0
    assert detector.score_one({"x": 50.0}) == 1.0


def test_features_are_averaged() -> None:
    detector = ContextSequenceDetector(resolutions=2, order=1, warmup=4)
    for value in [0.0, 1.0, 2.0, 3.0] * 5:
        detector.learn_one({"a": value, "b": value})
    assert detector.feature_scores({"a": 0.0, "b": 9.0}) == {"a": 0.0, "b": 1.0}
    assert detector.score_one({"a": 0.0, "b": 9.0}) == 0.5


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="history"):
        ContextSequenceDetector(warmup=100, history=10)
    with pytest.raises(ValueError, match=">= 1"):
        ContextSequenceDetector(order=0)


def test_refractory_silences_the_steps_after_a_high_score() -> None:
    params = {"resolutions": 2, "order": 1, "warmup": 4}
    quiet = RefractoryDetector(member="context", member_params=params, level=1.0, steps=2)
    loud = RefractoryDetector(member="context", member_params=params, level=1.0, steps=0)
    for detector in (quiet, loud):
        feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    # 9 is new (1.0); then 9 -> 0 is new at both resolutions (1.0); 0 -> 1 is familiar (0.0);
    # 1 -> 9 is new again (1.0). The silence covers exactly the two steps after the first 9.
    assert feed(loud, [9.0, 0.0, 1.0, 9.0]) == [1.0, 1.0, 0.0, 1.0]
    assert feed(quiet, [9.0, 0.0, 1.0, 9.0]) == [1.0, 0.0, 0.0, 1.0]


def test_refractory_state_survives_pickle_mid_silence() -> None:
    params = {"resolutions": 2, "order": 1, "warmup": 4}
    detector = RefractoryDetector(member="context", member_params=params, level=1.0, steps=2)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5 + [9.0])
    restored = pickle.loads(pickle.dumps(detector))
    assert feed(restored, [0.0, 1.0, 9.0]) == [0.0, 0.0, 1.0]


def test_time_slot_facts_flag_a_familiar_value_at_an_unusual_time() -> None:
    # Two one-hour slots: 0 at even hours, 2 at odd hours. Grid: origin 0, span 2, one bin
    # per unit; transitions 0 -> 2 and 2 -> 0 only.
    timed = ContextSequenceDetector(
        resolutions=1, order=1, warmup=4, period_seconds=7200.0, slot_seconds=3600.0
    )
    untimed = ContextSequenceDetector(resolutions=1, order=1, warmup=4)
    for hour in range(20):
        x = {"x": 0.0 if hour % 2 == 0 else 2.0, "__ts": 3600.0 * hour}
        timed.learn_one(x)
        untimed.learn_one(x)
    # The last value was 2 (hour 19). 0 at hour 20 (even): familiar move, familiar slot.
    assert timed.score_one({"x": 0.0, "__ts": 3600.0 * 20}) == 0.0
    # 0 at an odd hour: the move 2 -> 0 is familiar, 0 in the odd slot is not.
    assert timed.score_one({"x": 0.0, "__ts": 3600.0 * 21}) == 0.5
    assert untimed.score_one({"x": 0.0, "__ts": 3600.0 * 21}) == 0.0


def test_escalation_lets_a_much_higher_score_through_a_silence() -> None:
    params = {"resolutions": 2, "order": 1, "warmup": 4}
    escalating = RefractoryDetector(
        member="context", member_params=params, level=0.5, steps=3, escalation=2.0
    )
    plain = RefractoryDetector(member="context", member_params=params, level=0.5, steps=3)
    for detector in (escalating, plain):
        feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    # Member scores: 3 -> 1 is 0.5 (fine bin new); 1 -> 9 is 1.0; 9 -> 0 is 1.0; 0 -> 9 is 0.5
    # (the coarse move 0 -> 6 was just learnt). 1.0 >= 2 x 0.5 breaks the first silence and
    # starts a new one at 1.0, which the next 1.0 does not break.
    assert feed(escalating, [1.0, 9.0, 0.0, 9.0]) == [0.5, 1.0, 0.0, 0.0]
    assert feed(plain, [1.0, 9.0, 0.0, 9.0]) == [0.5, 0.0, 0.0, 0.0]

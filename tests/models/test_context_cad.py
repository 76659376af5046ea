"""CAD OSE (``cad``), on hand-traced tiny series.

Facts for one feature and one bit: A (value 0, bit 0 clear) and B (value 1, bit 0 set).
"""

from __future__ import annotations

import copy
import math
import pickle

import pytest

from models.online.cad import ContextualAnomalyDetector, _ClassicTable, classic_tuple_hash


def feed(detector: ContextualAnomalyDetector, values: list[float]) -> list[float]:
    scores = []
    for value in values:
        scores.append(detector.score_one({"x": value}))
        detector.learn_one({"x": value})
    return scores


def one_bit(**params: object) -> ContextualAnomalyDetector:
    config: dict[str, object] = {"n_bits": 1, "max_active": 1, "ranges": {"x": (0.0, 1.0)}}
    return ContextualAnomalyDetector(**{**config, **params})  # type: ignore[arg-type]


def test_alternation_is_learnt_step_by_step() -> None:
    # Step 0: no range fixed at scoring time, 0. Steps 1-2: nothing predicted, the zero-level
    # contexts A->B and B->A are new: (1 - 0 + 1) / 2. From step 3 on the predicted fact
    # comes: 0, while neuron facts make new left sides (A + context 1, B + context 0, ...).
    detector = one_bit(rest_steps=0)
    assert feed(detector, [0.0, 1.0] * 4) == [0.0, 1.0, 1.0] + [0.0] * 5
    assert detector.n_contexts == 4
    a_fact, b_fact = 1 << 16, (1 << 16) + 1
    assert detector.left_facts_ == [
        (a_fact,),
        (b_fact,),
        (a_fact, (1 << 31) + 1),
        (b_fact, 1 << 31),
    ]
    # The last step's left side is B + context 2 (A + context 1 -> B, active at step 7).
    assert detector.left_group_ == (b_fact, (1 << 31) + 2)
    assert detector.predicted_facts_ == {a_fact}
    # A repeat instead of the alternation: the only selected context (B -> A) is not active
    # (0 of 1) and the zero-level context is new (1 of 1): (1 - 0 + 1) / 2. A foreseen step: 0.
    assert detector.score_one({"x": 1.0}) == 1.0
    assert detector.score_one({"x": 0.0}) == 0.0


def test_context_zero_is_selected_only_when_the_zero_level_context_is_new() -> None:
    # The reference's "no new context" marker equals context 0: at step 7 (A + context 1 ->
    # B, known) context 0 (A -> B) is skipped; only context 2 is tallied.
    detector = one_bit(rest_steps=0)
    feed(detector, [0.0, 1.0] * 4)
    # Context 0 was tallied once (step 5, whose zero-level context was new), context 2 once.
    assert detector.context_predicted_[0] == 1 and detector.context_uses_[0] == 1
    assert detector.context_predicted_[2] == 1 and detector.context_uses_[2] == 1
    # Context 1 (B -> A) at steps 4 and 6.
    assert detector.context_uses_[1] == 2


def test_rest_silences_the_start_and_the_steps_after_a_high_score() -> None:
    detector = one_bit(rest_steps=2)
    # Raw scores 0.5?, 1, 1, 0, ...: the virtual high score before step 0 silences steps
    # 0-1, step 1's high score steps 2-3, step 2's steps 3-4.
    assert feed(detector, [0.0, 1.0] * 4) == [0.0] * 8
    assert detector.score_one({"x": 1.0}) == 1.0
    detector.learn_one({"x": 1.0})
    assert detector.score_one({"x": 1.0}) == 0.0  # resting after the surprise


def test_rest_defaults_to_a_fifth_of_the_probation() -> None:
    assert ContextualAnomalyDetector(probation=604).rest_length == 120
    assert ContextualAnomalyDetector(probation=604, rest_steps=7).rest_length == 7
    assert ContextualAnomalyDetector().rest_length == 0


def test_quantisation_matches_the_reference_levels() -> None:
    # Range 0..7 over 3 bits: step 1, level = int(value); 7.0 is the top level, 3.5 is 3.
    detector = ContextualAnomalyDetector(ranges={"x": (0.0, 7.0)})
    detector.learn_one({"x": 0.0})
    base = 1 << 16
    assert detector._sensor_facts({"x": 3.5}) == (base + 1, base + 3, base + 4)
    assert detector._sensor_facts({"x": 7.0}) == (base + 1, base + 3, base + 5)
    # Above the range, level 9 = 0b1001 has a fourth bit; below it, level 0.
    assert detector._sensor_facts({"x": 9.0}) == (base + 1, base + 2, base + 4, base + 7)
    assert detector._sensor_facts({"x": -5.0}) == (base, base + 2, base + 4)


def test_classic_tuple_hash_and_table_order() -> None:
    # CPython 2 on 64 bits: hash(()) == 3527539, hash((1, 2)) == 3713081631934410656.
    assert classic_tuple_hash(()) == 3527539
    assert classic_tuple_hash((1, 2)) == 3713081631934410656
    table = _ClassicTable()
    table.insert(3, 0)
    table.insert(1, 1)
    assert table.order == [1, 3]  # slot order, not insertion order
    table = _ClassicTable()
    table.insert(1, 0)
    table.insert(33, 1)  # collides with 1 in slot 1, probes to slot 7
    assert table.order == [1, 33]
    assert table.order_with(9) == [1, 9, 33]
    table = _ClassicTable()
    for key in (40, 8, 1, 2, 3):
        table.insert(key, key)
    # The sixth key fills 2/3 of the 8 slots: the table grows to 32 and the keys are placed
    # again in their old slot order (40, 8, 2, 3, 5, 1): 40 takes slot 8, so 8 probes to 17.
    assert table.order == [40, 8, 2, 3, 1]
    assert table.order_with(5) == [1, 2, 3, 5, 40, 8]


def test_warm_up_learns_the_range_then_replays_it() -> None:
    detector = ContextualAnomalyDetector(n_bits=1, max_active=1, rest_steps=0, warmup=4)
    scores = feed(detector, [0.0, 1.0] * 3)
    assert scores[:4] == [0.0] * 4
    assert detector.grids_ == {"x": (0.0, 1.0)}
    # The four warm-up values were replayed: the alternation is already foreseen.
    assert detector.n_learnt_ == 6 and scores[4:] == [0.0, 0.0]


def test_max_contexts_bounds_memory_but_not_novelty() -> None:
    detector = ContextualAnomalyDetector(ranges={"x": (0.0, 7.0)}, rest_steps=0, max_contexts=5)
    scores = feed(detector, [float(v % 8) for v in range(0, 60, 3)])
    assert detector.n_contexts == 5
    assert max(scores[10:]) > 0.5


def test_only_the_named_features_are_modelled() -> None:
    detector = one_bit(features=["x"])
    for step in range(10):
        detector.learn_one({"x": float(step % 2), "noise": float(step * 7)})
    assert detector.score_one({"x": 0.0, "noise": 1e9}) == detector.score_one({"x": 0.0})


def test_score_is_pure_and_pickle_drops_the_cache() -> None:
    detector = ContextualAnomalyDetector(rest_steps=0, warmup=4)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    before = pickle.dumps(detector)
    assert detector.score_one({"x": 9.0}) == detector.score_one({"x": 9.0})
    assert pickle.dumps(detector) == before
    restored = pickle.loads(before)
    assert feed(restored, [0.0, 1.0, 5.0]) == feed(detector, [0.0, 1.0, 5.0])


def test_state_pickled_before_the_left_sets_restores_them() -> None:
    # Sessions before the subset index pickled no ``left_sets_``: they are rebuilt on load.
    detector = ContextualAnomalyDetector(rest_steps=0, warmup=4)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    old_state = copy.deepcopy(detector.__getstate__())
    del old_state["left_sets_"]
    restored = ContextualAnomalyDetector.__new__(ContextualAnomalyDetector)
    restored.__setstate__(old_state)
    assert restored.left_sets_ == [frozenset(facts) for facts in detector.left_facts_]
    assert feed(restored, [0.0, 1.0, 5.0, 2.0]) == feed(detector, [0.0, 1.0, 5.0, 2.0])


def test_log_scale_levels_are_equal_ratios_above_the_low_end() -> None:
    # Range 0..1000, unit 1: levels over log1p(v) with step log1p(1000) / 7 = 0.987; the
    # level of v is int(log1p(v) / 0.987): 0 -> 0, 1 -> 0, 2 -> 1, 20 -> 3, 1000 -> 7.
    detector = ContextualAnomalyDetector(ranges={"x": (0.0, 1000.0)}, log_scale=0.001)
    linear = ContextualAnomalyDetector(ranges={"x": (0.0, 1000.0)})
    detector.learn_one({"x": 0.0})
    linear.learn_one({"x": 0.0})
    base = 1 << 16

    def level(facts: tuple[int, ...]) -> int:
        return sum(1 << ((f - base) // 2) for f in facts if (f - base) % 2)

    levels = [level(detector._sensor_facts({"x": v})) for v in (0.0, 1.0, 2.0, 20.0, 1000.0)]
    assert levels == [0, 0, 1, 3, 7]
    # On the linear grid (step 1000 / 7) all but the top are level 0.
    assert [level(linear._sensor_facts({"x": v})) for v in (1.0, 20.0, 1000.0)] == [0, 0, 7]
    # Below the range: level 0; above it: more bits, as on the linear grid.
    assert level(detector._sensor_facts({"x": -50.0})) == 0
    assert level(detector._sensor_facts({"x": 1e6})) == 13


def test_log_scale_sees_a_burst_the_linear_grid_cannot() -> None:
    # Usual values 1-2, the range set by one huge value: a burst to 20 is novel on the log grid.
    values = [1.0, 2.0] * 40
    for log_scale, burst_score in ((None, 0.0), (0.001, 1.0)):
        detector = ContextualAnomalyDetector(
            ranges={"x": (0.0, 1000.0)}, rest_steps=0, log_scale=log_scale
        )
        feed(detector, values)
        assert detector.score_one({"x": 20.0}) == burst_score


def test_log_scale_with_a_learnt_range() -> None:
    # Without a range, the warm-up's (0, 100) is fixed on the log scale, then replayed.
    detector = ContextualAnomalyDetector(n_bits=2, rest_steps=0, warmup=4, log_scale=0.01)
    feed(detector, [0.0, 100.0, 1.0, 100.0])
    assert detector.log_units_ == {"x": (0.0, 1.0)}
    low, step = detector.grids_["x"]
    assert low == 0.0 and step == pytest.approx(math.log1p(100.0) / 3)
    assert detector.n_learnt_ == 4


def test_state_pickled_before_log_levels_loads_as_linear() -> None:
    detector = ContextualAnomalyDetector(rest_steps=0, warmup=4)
    feed(detector, [0.0, 1.0, 2.0, 3.0] * 5)
    old_state = copy.deepcopy(detector.__getstate__())
    del old_state["log_scale"], old_state["log_units_"]
    restored = ContextualAnomalyDetector.__new__(ContextualAnomalyDetector)
    restored.__setstate__(old_state)
    assert restored.log_scale is None and restored.log_units_ == {}
    assert feed(restored, [0.0, 1.0, 5.0, 2.0]) == feed(detector, [0.0, 1.0, 5.0, 2.0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"log_scale": 0.0}, "log_scale"),
        ({"log_scale": float("inf")}, "log_scale"),
        ({"n_bits": 0}, "n_bits"),
        ({"warmup": 0}, "warmup"),
        ({"rest_steps": -1}, "rest_steps"),
        ({"ranges": {"x": (1.0, float("nan"))}}, "range of 'x'"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextualAnomalyDetector(**params)  # type: ignore[arg-type]

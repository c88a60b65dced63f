"""The confidence routing curve that `edgeagent eval --curve` prints and the model card reports."""

import numpy as np

from edgeagent.harness import ScenarioResult, confidence_curve, format_curve, threshold_for


def _result(ok: bool, *conf: float) -> ScenarioResult:
    return ScenarioResult("s", "fam", ok, "done" if ok else "max_steps", len(conf), [1.0] * len(conf), [],
                          confidences=list(conf))


def test_curve_counts_first_plan_and_every_plan_acceptance_and_their_success():
    results = [_result(True, 0.95, 0.9), _result(True, 0.9, 0.4), _result(False, 0.85, 0.99), _result(False, 0.2)]
    rows = {r["threshold"]: r for r in confidence_curve(results, [0.0, 0.5, 0.88])}
    assert rows[0.0]["accepted"] == 1.0 and rows[0.0]["success_if_accepted"] == 0.5
    # first plans >= 0.5: three episodes, two succeeded
    assert rows[0.5]["accepted"] == 0.75 and rows[0.5]["success_if_accepted"] == round(2 / 3, 4)
    # every plan >= 0.5: the first and the third
    assert rows[0.5]["all_plans_accepted"] == 0.5 and rows[0.5]["success_if_all_accepted"] == 0.5
    # >= 0.88: only successful episodes clear it first-plan-wise
    assert rows[0.88]["accepted"] == 0.5 and rows[0.88]["success_if_accepted"] == 1.0
    assert rows[0.88]["success_if_all_accepted"] == 1.0


def test_curve_without_any_accepted_episode_says_so_instead_of_dividing_by_zero():
    rows = confidence_curve([_result(True, 0.1)], [0.5])
    assert rows[0]["accepted"] == 0.0 and rows[0]["success_if_accepted"] is None
    assert "<- model default" in format_curve(rows, 0.5) and " - " in format_curve(rows, 0.5)


def test_episodes_without_plans_are_left_out_of_the_curve():
    rows = confidence_curve([_result(True), _result(False, 0.9)], [0.5])
    assert rows[0]["accepted"] == 1.0 and rows[0]["success_if_accepted"] == 0.0


def test_calibrated_threshold_is_the_lowest_that_reaches_the_asked_success():
    results = [_result(True, 0.99), _result(True, 0.9), _result(False, 0.8), _result(True, 0.7), _result(True, 0.6),
               _result(False, 0.5)]
    # >= 0.6: 4 of 5 succeed (80%); >= 0.7: 3 of 4 (75%); >= 0.9: 2 of 2.
    assert threshold_for(results, 0.8) == {"threshold": 0.6, "accepted": round(5 / 6, 4),
                                           "success_if_accepted": 0.8, "standard_error": 0.1789, "target": 0.8}
    assert threshold_for(results, 0.95)["threshold"] == 0.9
    assert threshold_for([_result(False, 0.9)], 0.5) is None


def test_calibration_never_splits_episodes_of_equal_confidence():
    # At 0.9 both episodes clear the threshold: 50%, so 0.9 cannot be the answer for 100%.
    assert threshold_for([_result(True, 0.9), _result(False, 0.9), _result(True, 0.95)], 1.0)["threshold"] == 0.95


def test_training_calibration_uses_the_same_rule_and_clips():
    from edgeagent.models.train import calibrate_threshold

    conf, right = np.array([0.99, 0.9, 0.8, 0.7]), np.array([True, True, False, True])
    assert calibrate_threshold(conf, right, 0.7) == 0.7  # 3 of 4
    assert calibrate_threshold(conf, right, 1.0) == 0.9
    assert calibrate_threshold(np.array([0.999]), np.array([True]), 1.0) == 0.95  # clipped
    assert calibrate_threshold(np.array([0.5]), np.array([False]), 0.5) == 0.9  # none reaches it

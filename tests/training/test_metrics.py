"""The final report's metrics: tie-aware average precision, one decision rule, positive weights."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from training.loop import positive_weights
from training.metrics import MultilabelF1, average_precision, multilabel_report


def step_curve_ap(scores, positives):
    """Reference: precision and recall at every distinct threshold t (predict score >= t),
    AP = sum over thresholds, descending, of (recall gain) x precision."""
    scores, positives = np.asarray(scores), np.asarray(positives, bool)
    ap, previous_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        recall = (chosen & positives).sum() / positives.sum()
        ap += (recall - previous_recall) * (chosen & positives).sum() / chosen.sum()
        previous_recall = recall
    return ap


def test_average_precision_with_ties_does_not_depend_on_row_order():
    # Three examples tie at 1.0 (saturated float32 sigmoids), one of them positive.
    scores = np.array([1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    positives = np.array([0, 0, 1, 0, 1, 0, 0, 1, 0, 0], bool)
    expected = step_curve_ap(scores, positives)
    # By hand: thresholds 1.0 (1/3 recall, 1/3 precision), 0.8 (2/3, 2/5), 0.5 (1, 3/8).
    assert expected == pytest.approx(1 / 3 * 1 / 3 + 1 / 3 * 2 / 5 + 1 / 3 * 3 / 8)
    rng = np.random.default_rng(0)
    results = set()
    for _ in range(20):
        order = rng.permutation(len(scores))
        results.add(round(average_precision(scores[order], positives[order]), 12))
    assert results == {round(expected, 12)}


def test_average_precision_matches_the_step_curve_reference_on_random_ties():
    rng = np.random.default_rng(1)
    for _ in range(50):
        scores = rng.integers(0, 5, size=30).astype(float)  # many ties
        positives = rng.random(30) < 0.4
        if positives.any():
            assert average_precision(scores, positives) == pytest.approx(
                step_curve_ap(scores, positives)
            )


def test_report_ranks_by_logits_that_saturated_probabilities_tie():
    logits = np.array([[20.0], [30.0], [17.0], [-3.0]], np.float32)
    probabilities = tf.sigmoid(logits).numpy()
    assert len(set(probabilities[:3, 0].tolist())) == 1, "float32 sigmoids tie at 1.0"
    targets = np.array([[0], [1], [0], [0]])
    report = multilabel_report(probabilities, targets, 0.5, logits)
    assert report["mAP"] == pytest.approx(1.0)  # the positive has the highest logit


@pytest.mark.parametrize("threshold", [0.5, 0.25])
def test_one_decision_rule_at_the_threshold_itself(threshold):
    """A probability exactly at the threshold is present: in the report and in the Keras F1."""
    probabilities = np.array([[threshold, 0.1], [0.9, threshold]], np.float32)
    targets = np.array([[1, 0], [1, 1]], np.float32)
    report = multilabel_report(probabilities, targets, threshold, probabilities)
    assert report["micro_f1"] == pytest.approx(1.0)
    metric = MultilabelF1(average="micro", threshold=threshold)
    metric.update_state(targets, probabilities)
    assert float(metric.result()) == pytest.approx(1.0)


def test_a_class_without_positives_is_left_out_of_map():
    targets = np.array([[1, 0], [0, 0], [1, 0]], np.float32)
    logits = np.array([[2.0, 1.0], [-1.0, 0.5], [1.0, -2.0]], np.float32)
    report = multilabel_report(1 / (1 + np.exp(-logits)), targets, 0.5, logits)
    assert np.isnan(average_precision(logits[:, 1], targets[:, 1].astype(bool)))
    assert report["average_precision"][0] == 1.0 and np.isnan(report["average_precision"][1])
    assert report["mAP"] == 1.0


def test_positive_weights_from_label_frequencies():
    targets = np.array(list(itertools.islice(itertools.cycle([[1, 0, 1], [0, 0, 1]]), 10)))
    targets[0, 1] = 1
    assert positive_weights("none", targets) is None
    assert positive_weights("2.5", targets) == [2.5, 2.5, 2.5]
    # negatives / positives: class 0 5/5 -> 1, class 1 9/1 -> 9, class 2 0/10 -> capped below at 1
    assert positive_weights("auto", targets) == [1.0, 9.0, 1.0]

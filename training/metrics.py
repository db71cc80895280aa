"""Metrics: Keras metrics tracked every epoch, and the final report computed on the test split.

Multiclass: accuracy and top-k accuracy. Multilabel: exact-match accuracy (every label right),
micro and macro F1 at the decision threshold, and mAP (mean over classes of average precision).
"""

import keras
import numpy as np
from keras import ops

from core.outputs import MULTICLASS, confusion_matrix, decide, labels_present

# MultilabelF1 hands Keras' F1Score decisions already made (0 or 1); any cut between them works.
DECIDED = 0.5


@keras.saving.register_keras_serializable(package="zoo")
class ExactMatch(keras.metrics.Mean):
    """Fraction of examples whose every label is predicted right at ``threshold``."""

    def __init__(self, threshold=0.5, from_logits=False, name="exact_match", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        probabilities = ops.sigmoid(y_pred) if self.from_logits else y_pred
        predicted = ops.cast(labels_present(probabilities, self.threshold), "float32")
        matches = ops.all(ops.equal(predicted, ops.cast(y_true, "float32")), axis=-1)
        return super().update_state(ops.cast(matches, "float32"), sample_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "from_logits": self.from_logits,
        }


@keras.saving.register_keras_serializable(package="zoo")
class MultilabelF1(keras.metrics.F1Score):
    """Keras' F1Score with the heads' decision rule (present when probability >= threshold;
    Keras' own uses >), also for models that output logits (the sigmoid is applied first)."""

    def __init__(self, from_logits=False, threshold=0.5, **kwargs):
        super().__init__(threshold=DECIDED, **kwargs)
        self.from_logits, self.decision_threshold = from_logits, threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        probabilities = ops.sigmoid(y_pred) if self.from_logits else y_pred
        decided = ops.cast(labels_present(probabilities, self.decision_threshold), "float32")
        return super().update_state(y_true, decided, sample_weight)

    def get_config(self):
        config = {**super().get_config(), "from_logits": self.from_logits}
        return {**config, "threshold": self.decision_threshold}


def top_k(num_classes: int) -> int:
    """The k of top-k accuracy: 5, or fewer for datasets with few classes."""
    return min(5, num_classes - 1)


def keras_metrics(
    task: str, label_format: str, num_classes: int, *, from_logits: bool, threshold: float
) -> list:
    """The metrics ``model.compile`` tracks each epoch for a dataset's task and label format."""
    if task == MULTICLASS:
        k = top_k(num_classes)
        if label_format == "sparse":
            return [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(k, name=f"top{k}_accuracy"),
            ]
        return [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k, name=f"top{k}_accuracy"),
        ]
    return [
        ExactMatch(threshold=threshold, from_logits=from_logits),
        MultilabelF1(from_logits, average="micro", threshold=threshold, name="micro_f1"),
        MultilabelF1(from_logits, average="macro", threshold=threshold, name="macro_f1"),
        keras.metrics.AUC(
            curve="PR",
            multi_label=True,
            num_labels=num_classes,
            from_logits=from_logits,
            name="pr_auc",
        ),
    ]


def multiclass_report(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, top-k accuracy and the confusion matrix (rows: truth, columns: prediction)."""
    num_classes = probabilities.shape[1]
    predictions = decide(probabilities, MULTICLASS)
    k = top_k(num_classes)
    top = np.argsort(-probabilities, axis=1)[:, :k]
    confusion = confusion_matrix(labels, predictions, num_classes)
    return {
        "accuracy": float((predictions == labels).mean()),
        f"top{k}_accuracy": float((top == labels[:, None]).any(axis=1).mean()),
        "confusion_matrix": confusion.tolist(),
    }


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the precision-recall step curve, ``sum_n (R_n - R_(n-1)) P_n`` over the
    distinct scores in descending order, as scikit-learn's ``average_precision_score``.

    Tied scores form one threshold, so the result does not depend on the order of the rows
    (ranking tied examples one by one would credit whichever came first). Without a positive
    the result is NaN (scikit-learn says 0 with a warning), and mAP leaves the class out. Rank by logits where
    you have them: float32 sigmoids are exactly 1.0 for every logit above about 16.6.
    """
    positives = np.asarray(positives, bool)
    if not positives.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    sorted_scores, hits = np.asarray(scores)[order], positives[order]
    # The last index of each run of equal scores: where a threshold admits the whole tie.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    true_positives = np.cumsum(hits)[ends]
    precision = true_positives / (ends + 1)
    recall_gain = np.diff(np.r_[0, true_positives]) / positives.sum()
    return float((recall_gain * precision).sum())


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def multilabel_report(
    probabilities: np.ndarray, targets: np.ndarray, threshold: float, logits: np.ndarray
) -> dict:
    """Exact-match accuracy, micro/macro F1 at ``threshold``, per-class AP and their mean (mAP).

    Decisions use the heads' one rule (present when probability >= threshold); AP ranks by the
    logits, which keep apart what saturated float32 probabilities tie.
    """
    predicted = np.asarray(labels_present(probabilities, threshold))
    truth = targets.astype(bool)
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    per_class_ap = [average_precision(logits[:, c], truth[:, c]) for c in range(truth.shape[1])]
    return {
        "exact_match": float((predicted == truth).all(axis=1).mean()),
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(_f1(tp, fp, fn).mean()),
        "mAP": float(np.nanmean(per_class_ap)),
        "average_precision": per_class_ap,
    }

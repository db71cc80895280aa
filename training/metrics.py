"""Metrics: Keras metrics tracked every epoch, and the final report computed on the test split.

Multiclass: accuracy and top-k accuracy. Multilabel: exact-match accuracy (every label right),
micro and macro F1 at the decision threshold, and mAP (mean over classes of average precision).
"""

import keras
import numpy as np
from keras import ops

MULTICLASS = "multiclass"


@keras.saving.register_keras_serializable(package="zoo")
class ExactMatch(keras.metrics.Mean):
    """Fraction of examples whose every label is predicted right at ``threshold``."""

    def __init__(self, threshold=0.5, from_logits=False, name="exact_match", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        probabilities = ops.sigmoid(y_pred) if self.from_logits else y_pred
        predicted = ops.cast(probabilities >= self.threshold, "float32")
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
    """Keras' F1Score, also for models that output logits (it then applies the sigmoid first)."""

    def __init__(self, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        probabilities = ops.sigmoid(y_pred) if self.from_logits else y_pred
        return super().update_state(y_true, probabilities, sample_weight)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


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
    predictions = probabilities.argmax(axis=1)
    k = top_k(num_classes)
    top = np.argsort(-probabilities, axis=1)[:, :k]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    return {
        "accuracy": float((predictions == labels).mean()),
        f"top{k}_accuracy": float((top == labels[:, None]).any(axis=1).mean()),
        "confusion_matrix": confusion.tolist(),
    }


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Mean of the precision at the rank of each positive, ranking by descending score."""
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(bool)
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_rank[hits].mean())


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def multilabel_report(probabilities: np.ndarray, targets: np.ndarray, threshold: float) -> dict:
    """Exact-match accuracy, micro/macro F1 at ``threshold``, per-class AP and their mean (mAP)."""
    predicted = probabilities >= threshold
    truth = targets.astype(bool)
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    per_class_ap = [
        average_precision(probabilities[:, c], truth[:, c]) for c in range(truth.shape[1])
    ]
    return {
        "exact_match": float((predicted == truth).all(axis=1).mean()),
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(_f1(tp, fp, fn).mean()),
        "mAP": float(np.nanmean(per_class_ap)),
        "average_precision": per_class_ap,
    }

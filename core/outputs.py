"""What a classifier's outputs mean, decided once for training, export, serving and the CLI.

Probabilities become decisions by one rule: multiclass takes the argmax; multilabel marks a class
present when its probability is *at least* the threshold (``labels_present``), which lies strictly
between 0 and 1. The functions work on numpy arrays and on TensorFlow or Keras tensors alike.
"""

import numpy as np

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
TASKS = (MULTICLASS, MULTILABEL)
DEFAULT_THRESHOLD = 0.5


def labels_present(probabilities, threshold: float = DEFAULT_THRESHOLD):
    """Boolean: which classes are present (probability >= ``threshold``)."""
    return probabilities >= threshold


def check_threshold(threshold: float, key: str = "threshold") -> float:
    """``threshold`` if it lies in (0, 1); ValueError naming ``key`` otherwise."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"{key} must be strictly between 0 and 1. Received: {key}={threshold}")
    return threshold


def decide(probabilities: np.ndarray, task: str, threshold: float = DEFAULT_THRESHOLD):
    """Class ids [N] (multiclass) or 0/1 indicators [N, K] (multilabel), as int64."""
    probabilities = np.asarray(probabilities)
    if task == MULTICLASS:
        return probabilities.argmax(axis=-1).astype(np.int64)
    return labels_present(probabilities, threshold).astype(np.int64)


def ranked(row: np.ndarray) -> np.ndarray:
    """Class indices by descending probability; ties keep class order."""
    return np.argsort(-np.asarray(row), kind="stable")


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts [K, K]: rows are the true classes, columns the predicted ones."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return confusion


def class_names_or_indices(names, num_classes: int) -> list[str]:
    """The class names, or "0", "1", ... when a model has none."""
    return list(names) if names else [str(i) for i in range(num_classes)]

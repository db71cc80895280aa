"""Temperature scaling: calibrated probabilities from a trained model's logits.

A network trained to low cross-entropy is usually over-confident: among the test images it gives
probability 0.99, fewer than 99 % are right. Temperature scaling (Guo et al., 2017) divides the
logits by one number ``T`` fitted on held-out data by minimising the negative log-likelihood;
argmax decisions do not change, the probabilities become honest. Multilabel heads get one
temperature per class, since each sigmoid is its own binary classifier.

The NLL is convex in ``b = 1 / T``, so a bracketing search on ``log b`` finds the optimum; it runs
in float64 on the validation logits, in milliseconds.
"""

import math

import numpy as np

from core.outputs import MULTICLASS

ECE_BINS = 15
SEARCH_RANGE = (-7.0, 7.0)  # log(1/T): T from about 1e-3 to 1e3
SEARCH_STEPS = 80


def _log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def multiclass_nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log softmax(z)_y`` over examples, in float64."""
    log_p = _log_softmax(np.asarray(logits, np.float64))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def binary_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-class mean binary cross-entropy ``softplus(z) - y z``, in float64: shape [K]."""
    z = np.asarray(logits, np.float64)
    return (_softplus(z) - targets * z).mean(axis=0)


def _minimise(nll_of_inverse_temperature) -> float:
    """The temperature minimising a function convex in ``b = 1/T`` (golden-section on log b)."""
    low, high = SEARCH_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll_of_inverse_temperature(math.exp(a)), nll_of_inverse_temperature(math.exp(b))
    for _ in range(SEARCH_STEPS):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll_of_inverse_temperature(math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll_of_inverse_temperature(math.exp(b))
    return 1.0 / math.exp((low + high) / 2)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, task: str) -> float | list[float]:
    """The temperature(s) minimising the NLL of ``labels`` under ``logits / T``.

    Args:
        logits: [N, K] validation logits.
        labels: [N] class ids (multiclass) or [N, K] 0/1 targets (multilabel).
        task: ``"multiclass"`` (one T) or ``"multilabel"`` (one T per class).
    """
    logits = np.asarray(logits, np.float64)
    if task == MULTICLASS:
        labels = np.asarray(labels, np.int64)
        return _minimise(lambda b: multiclass_nll(b * logits, labels))
    targets = np.asarray(labels, np.float64)
    return [
        _minimise(lambda b, c=c: float(binary_nll(b * logits[:, [c]], targets[:, [c]])[0]))
        for c in range(logits.shape[1])
    ]


def at_search_bound(temperature) -> bool:
    """Whether a fitted temperature (or any of a list) sits at the end of the search range:
    the optimum lies beyond it, as it does for constant or all-wrong logits."""
    largest, smallest = (math.exp(-bound) for bound in SEARCH_RANGE)  # T = 1 / exp(bound)
    values = temperature if isinstance(temperature, list) else [temperature]
    return any(not smallest * 1.01 < t < largest * 0.99 for t in values)


def scale(logits: np.ndarray, temperature) -> np.ndarray:
    """``logits / T`` (T one number, or one per class)."""
    return np.asarray(logits, np.float64) / np.asarray(temperature, np.float64)


def probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    if task == MULTICLASS:
        return np.exp(_log_softmax(z))
    return np.exp(-_softplus(-z))


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """``sum_b |B|/N |accuracy(B) - confidence(B)|`` over equal-width confidence bins."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            total += members.mean() * gap
    return float(total)


def reliability(confidence, correct, bins: int = ECE_BINS) -> dict:
    """Per-bin mean confidence, accuracy and count: the points of a reliability diagram."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    safe = np.maximum(counts, 1)
    return {
        "confidence": (np.bincount(index, confidence, bins) / safe).tolist(),
        "accuracy": (np.bincount(index, correct, bins) / safe).tolist(),
        "count": counts.tolist(),
    }


def confidence_and_correctness(logits, labels, task: str) -> tuple[np.ndarray, np.ndarray]:
    """What a reliability diagram plots. Multiclass: the top probability and whether the top
    class is right. Multilabel: every (example, class) probability and whether it is present."""
    p = probabilities(logits, task)
    if task == MULTICLASS:
        return p.max(axis=1), (p.argmax(axis=1) == np.asarray(labels)).astype(float)
    return p.ravel(), np.asarray(labels, np.float64).ravel()


def calibration_metrics(logits: np.ndarray, labels: np.ndarray, task: str) -> dict:
    """NLL, Brier score and expected calibration error of ``logits`` (already scaled)."""
    p = probabilities(logits, task)
    if task == MULTICLASS:
        labels = np.asarray(labels, np.int64)
        one_hot = np.eye(p.shape[1])[labels]
        nll = multiclass_nll(logits, labels)
        brier = float(((p - one_hot) ** 2).sum(axis=1).mean())
    else:
        targets = np.asarray(labels, np.float64)
        nll = float(binary_nll(logits, targets).mean())
        brier = float(((p - targets) ** 2).mean())
    confidence, correct = confidence_and_correctness(logits, labels, task)
    return {"nll": nll, "brier": brier, "ece": expected_calibration_error(confidence, correct)}


def calibrate(validation: tuple, test: tuple, task: str) -> dict:
    """Fits the temperature on ``validation`` (logits, labels) and reports NLL, Brier and ECE
    before and after on both splits, with the reliability-diagram points of the test split."""
    temperature = fit_temperature(*validation, task)
    report = {"method": "temperature scaling", "temperature": temperature}
    for split, (logits, labels) in (("validation", validation), ("test", test)):
        report[split] = {
            "examples": len(labels),
            "before": calibration_metrics(logits, labels, task),
            "after": calibration_metrics(scale(logits, temperature), labels, task),
        }
    test_logits, test_labels = test
    report["reliability"] = {
        "before": reliability(*confidence_and_correctness(test_logits, test_labels, task)),
        "after": reliability(
            *confidence_and_correctness(scale(test_logits, temperature), test_labels, task)
        ),
    }
    return report

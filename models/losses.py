"""Losses written on log-softmax / log-sigmoid, finite for every option at any logit scale.

Keras' focal losses compute probabilities first: ``CategoricalFocalCrossentropy`` clips them to
``[1e-7, 1 - 1e-7]`` even with ``from_logits=True`` (so the hardest examples get no gradient), and
``BinaryFocalCrossentropy`` raises ``(1 - p_t)`` to ``gamma``, whose gradient is ``0 * inf`` once
``p_t`` rounds to 1 for ``gamma < 1``. The losses here stay in log space instead (docs/losses.md,
section 7):

- sigmoid: ``log p = -softplus(-z)`` and ``log(1 - p) = -softplus(z)``;
- softmax: the same with the log-odds ``a_k = logsumexp(z_j, j != k) - z_k`` in place of ``-z``,
  so neither ever takes the log of a probability rounded to 0 or 1 in float32;
- ``(1 - p)^gamma = exp(gamma * log(1 - p))``, whose gradient is finite for every ``gamma >= 0``
  and exactly 0 for ``gamma = 0``, so ``gamma = 0`` is the cross-entropy, value and gradient.

Both accept probabilities too (``from_logits=False``): the logits behind a Keras softmax/sigmoid
layer are recovered as Keras' TensorFlow backend does, otherwise the probabilities are clipped to
``[1e-7, 1 - 1e-7]`` and inverted. Written on ``keras.ops``, so they run on every Keras backend.
"""

import keras
from keras import ops

EPSILON = 1e-7


def _graph_input(outputs, activation: str):
    """The input of the TensorFlow graph op that made ``outputs``, when that op is ``activation``
    (inside ``tf.function``); None on other backends, eagerly, or for any other op."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf  # only this backend has graph ops to look through

    op = getattr(outputs, "op", None)
    if tf.executing_eagerly() or op is None or op.type.lower() != activation:
        return None
    return op.inputs[0]


def recover_logits(outputs, activation: str):
    """Logits behind ``outputs``, the output of a softmax or sigmoid.

    Keras' TensorFlow backend marks the output of its activations with ``_keras_logits`` (eager)
    and the graph op keeps its input (``tf.function``); otherwise, as on the other backends, the
    probabilities are clipped to ``[1e-7, 1 - 1e-7]`` and inverted, which is where Keras' own
    probability path clips too.
    """
    marked = getattr(outputs, "_keras_logits", None)
    if marked is not None:
        return ops.cast(marked, outputs.dtype)
    logits = _graph_input(outputs, activation)
    if logits is not None:
        return logits
    probabilities = ops.clip(outputs, EPSILON, 1.0 - EPSILON)
    if activation == "softmax":
        return ops.log(probabilities)
    return ops.log(probabilities) - ops.log1p(-probabilities)


def _class_weights(alpha, num_classes: int, dtype):
    """``alpha`` as a [K] tensor: one number for every class, or one per class; None means 1."""
    if alpha is None:
        return ops.ones([num_classes], dtype)
    weights = ops.reshape(ops.convert_to_tensor(alpha, dtype), [-1])
    return ops.broadcast_to(weights, [num_classes])


def softmax_log_odds(logits):
    """``a_k = logsumexp(z_j for j != k) - z_k`` for every class k, so that
    ``log p_k = -softplus(a_k)`` and ``log(1 - p_k) = -softplus(-a_k)``.

    Both stay exact where ``p_k`` rounds to 0 or 1 in float32 (``log_softmax`` returns exactly 0
    for the top class once it leads by about 17), and both are differentiable everywhere.
    """
    num_classes = logits.shape[-1]
    others = ops.where(
        ops.eye(num_classes, dtype="bool"),
        ops.cast(-float("inf"), logits.dtype),
        logits[..., None, :],
    )  # [..., K, K]: row k holds the logits with class k masked out
    return ops.logsumexp(others, axis=-1) - logits


@keras.saving.register_keras_serializable(package="zoo")
class CategoricalFocalLoss(keras.losses.Loss):
    """Focal cross-entropy for one-label-per-image tasks, ``-sum_k alpha_k y_k (1 - p_k)^gamma
    log p_k`` with ``p = softmax(z)``, computed in log space.

    Args:
        gamma: focusing parameter, ``>= 0``; 0 gives the cross-entropy. Defaults to 2.
        alpha: class weight: None (every class 1), one number, or a list of K numbers.
            Defaults to None.
        from_logits: whether ``y_pred`` holds logits (True) or softmax probabilities.
        label_smoothing: mixes the one-hot target with the uniform distribution. Defaults to 0.
    """

    def __init__(
        self,
        gamma=2.0,
        alpha=None,
        from_logits=True,
        label_smoothing=0.0,
        name="categorical_focal_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be at least 0. Received: gamma={gamma}")
        self.gamma, self.alpha = float(gamma), alpha
        self.from_logits, self.label_smoothing = from_logits, float(label_smoothing)

    def call(self, y_true, y_pred):
        logits = (
            ops.convert_to_tensor(y_pred) if self.from_logits else recover_logits(y_pred, "softmax")
        )
        num_classes = logits.shape[-1]
        y_true = ops.cast(y_true, logits.dtype)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        log_odds = softmax_log_odds(logits)
        weight = _class_weights(self.alpha, num_classes, logits.dtype)
        if self.gamma:
            weight = weight * ops.exp(-self.gamma * ops.softplus(-log_odds))  # (1 - p)^gamma
        return ops.sum(y_true * weight * ops.softplus(log_odds), axis=-1)  # -log p

    def get_config(self):
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "alpha": self.alpha,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="zoo")
class BinaryFocalLoss(keras.losses.Loss):
    """(Focal) binary cross-entropy for multilabel tasks, averaged over the K classes.

    Per class, with ``p = sigmoid(z)``: ``-[w alpha y (1 - p)^gamma log p + (1 - alpha) (1 - y)
    p^gamma log(1 - p)]``, computed from ``log p = -softplus(-z)`` and ``log(1 - p) =
    -softplus(z)``. With ``gamma = 0``, ``alpha = None`` and ``pos_weight = None`` it is the binary
    cross-entropy; ``pos_weight`` is PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``.

    Args:
        gamma: focusing parameter, ``>= 0``; 0 turns focusing off. Defaults to 0.
        alpha: weight of the positive term in [0, 1] (the negative term gets ``1 - alpha``): one
            number or K numbers; None weighs both terms 1. Defaults to None.
        pos_weight: extra weight of each class's positive term, one number or K numbers (e.g.
            negatives / positives in the training labels). Defaults to None (1).
        from_logits: whether ``y_pred`` holds logits (True) or sigmoid probabilities.
        label_smoothing: replaces y by ``y (1 - a) + a / 2``. Defaults to 0.
    """

    def __init__(
        self,
        gamma=0.0,
        alpha=None,
        pos_weight=None,
        from_logits=True,
        label_smoothing=0.0,
        name="binary_focal_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be at least 0. Received: gamma={gamma}")
        self.gamma, self.alpha, self.pos_weight = float(gamma), alpha, pos_weight
        self.from_logits, self.label_smoothing = from_logits, float(label_smoothing)

    def call(self, y_true, y_pred):
        logits = (
            ops.convert_to_tensor(y_pred) if self.from_logits else recover_logits(y_pred, "sigmoid")
        )
        num_classes = logits.shape[-1]
        y_true = ops.cast(y_true, logits.dtype)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / 2.0
        log_p = -ops.softplus(-logits)
        log_not_p = -ops.softplus(logits)
        positive, negative = y_true, 1.0 - y_true
        if self.pos_weight is not None:
            positive = positive * _class_weights(self.pos_weight, num_classes, logits.dtype)
        if self.alpha is not None:
            alpha = _class_weights(self.alpha, num_classes, logits.dtype)
            positive, negative = positive * alpha, negative * (1.0 - alpha)
        if self.gamma:
            positive = positive * ops.exp(self.gamma * log_not_p)
            negative = negative * ops.exp(self.gamma * log_p)
        return -ops.mean(positive * log_p + negative * log_not_p, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "alpha": self.alpha,
            "pos_weight": self.pos_weight,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }

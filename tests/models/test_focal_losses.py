"""The zoo's focal losses against float64 references, value and gradient (docs/losses.md §7-8).

The references are written independently of the implementation: NumPy in float64, the analytic
gradients derived in docs/losses.md, at logit magnitudes from 1e-3 to 1e5 and under the float32,
``mixed_bfloat16`` and ``mixed_float16`` policies.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import BinaryFocalLoss, CategoricalFocalLoss, get_head

RNG = np.random.default_rng(7)
SCALES = [1e-3, 1.0, 30.0, 1e3, 1e5]
GAMMAS = [0.0, 0.5, 1.0, 2.0]
POLICIES = ["float32", "mixed_bfloat16", "mixed_float16"]


def softplus(x):
    return np.logaddexp(0.0, x)


def log_softplus(x):
    """log(softplus(x)) in float64, exact where softplus(x) underflows (x below about -745)."""
    return np.where(x > -30.0, np.log(np.maximum(softplus(x), 1e-300)), x)


def categorical_reference(z, y, gamma, alpha):
    """Loss [N] and gradient [N, K] of -sum_k alpha_k y_k (1 - p_k)^gamma log p_k, p = softmax(z).

    With a_k = logsumexp(z_j, j != k) - z_k: log p_k = -softplus(a_k), log(1 - p_k) =
    -softplus(-a_k), and dL/dz_j = sum_k alpha_k y_k (delta_kj - p_j) [gamma (1 - p_k)^(gamma - 1)
    p_k log p_k - (1 - p_k)^gamma].
    """
    k = z.shape[-1]
    others = np.where(np.eye(k, dtype=bool), -np.inf, z[:, None, :])
    a = np.logaddexp.reduce(others, axis=-1) - z
    log_p, log_not_p = -softplus(a), -softplus(-a)
    p = np.exp(z - np.logaddexp.reduce(z, axis=-1, keepdims=True))
    weight = alpha * y
    loss = (weight * np.exp(gamma * log_not_p) * softplus(a)).sum(-1)
    # gamma (1 - p)^(gamma - 1) p log p, in logs: its magnitude is exp((gamma - 1) log(1 - p) +
    # log p + log(-log p)), and -log p = softplus(a).
    focusing = -gamma * np.exp((gamma - 1) * log_not_p + log_p + log_softplus(a)) if gamma else 0
    per_class = weight * (focusing - np.exp(gamma * log_not_p))  # [N, K]: the bracket times w_k
    gradient = per_class - p * per_class.sum(-1, keepdims=True)  # sum_k w_k(delta_kj - p_j)[...]
    return loss, gradient


def binary_reference(z, y, gamma, alpha, pos_weight):
    """Loss [N] (mean over classes) and gradient of the binary focal loss with positive weights.

    dL/dz = -[w a y (1 - p)^g (1 - p - g p log p) + (1 - a)(1 - y) p^g (g (1 - p) log(1 - p) - p)]/K.
    """
    k = z.shape[-1]
    log_p, log_not_p = -softplus(-z), -softplus(z)
    p, not_p = np.exp(log_p), np.exp(log_not_p)
    a_pos = alpha if alpha is not None else 1.0
    a_neg = (1.0 - alpha) if alpha is not None else 1.0
    positive = pos_weight * a_pos * y
    negative = a_neg * (1.0 - y)
    loss = (
        positive * np.exp(gamma * log_not_p) * softplus(-z)
        + negative * np.exp(gamma * log_p) * softplus(z)
    ).mean(-1)
    gradient = (
        -(
            positive * np.exp(gamma * log_not_p) * (not_p + gamma * p * softplus(-z))
            - negative * np.exp(gamma * log_p) * (gamma * not_p * softplus(z) + p)
        )
        / k
    )
    return loss, gradient


def loss_and_gradient(loss_fn, y, z, policy):
    """Per-example loss and the gradient of its sum, computed by TensorFlow under ``policy``."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        logits = tf.constant(z, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = loss_fn(tf.constant(y, tf.float32), logits)
            total = tf.reduce_sum(loss)
        return loss.numpy(), tape.gradient(total, logits).numpy()
    finally:
        keras.config.set_dtype_policy(previous)


def random_case(scale, k=5, n=16):
    z = RNG.normal(size=(n, k)) * scale
    # float32 logits: the reference sees exactly what the implementation sees.
    return z.astype(np.float32).astype(np.float64)


def assert_matches(actual, expected, scale):
    # Float32 rounding of logits near `scale` perturbs results by about scale * 6e-8.
    atol = 1e-6 * max(1.0, scale) * 1e-1
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=atol)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("scale", SCALES)
def test_categorical_focal_loss_matches_float64_reference(scale, gamma, policy):
    z = random_case(scale)
    y = np.eye(z.shape[1])[RNG.integers(z.shape[1], size=len(z))]
    alpha = RNG.uniform(0.2, 1.0, size=z.shape[1])
    loss_fn = CategoricalFocalLoss(gamma, alpha=alpha.tolist(), reduction=None)
    loss, gradient = loss_and_gradient(loss_fn, y, z, policy)
    expected_loss, expected_gradient = categorical_reference(z, y, gamma, alpha)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(gradient))
    assert_matches(loss, expected_loss, scale)
    assert_matches(gradient, expected_gradient, 1.0)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("scale", SCALES)
def test_binary_focal_loss_matches_float64_reference(scale, gamma, policy):
    z = random_case(scale)
    y = (RNG.random(z.shape) < 0.4).astype(np.float64)
    alpha, pos_weight = 0.3, RNG.uniform(0.5, 4.0, size=z.shape[1])
    loss_fn = BinaryFocalLoss(gamma, alpha=alpha, pos_weight=pos_weight.tolist(), reduction=None)
    loss, gradient = loss_and_gradient(loss_fn, y, z, policy)
    expected_loss, expected_gradient = binary_reference(z, y, gamma, alpha, pos_weight)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(gradient))
    assert_matches(loss, expected_loss, scale)
    assert_matches(gradient, expected_gradient, 1.0)


def test_issue_example_multilabel_focal_below_one_has_finite_gradient():
    """Keras' BinaryFocalCrossentropy gives NaN here: (1 - p_t)^0.5 at p_t = 1 in float32."""
    z = tf.constant([[20.0, -20.0, 0.3]])
    y = np.array([[1.0, 0.0, 1.0]], np.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = get_head("sigmoid_logits").loss(focal=True, focal_gamma=0.5)(y, z)
    gradient = tape.gradient(loss, z).numpy()
    assert np.all(np.isfinite(gradient))
    _, expected = binary_reference(z.numpy().astype(np.float64), y, 0.5, None, 1.0)
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("trailing_by", [16.2, 40.0])
def test_multiclass_focal_from_logits_is_not_clipped(trailing_by):
    """Keras' CategoricalFocalCrossentropy clips softmax to 1e-7: loss 4.03, gradient 0 here."""
    z = tf.constant([[0.0, trailing_by, 0.0]])
    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = get_head("logits").loss(focal=True, focal_gamma=2.0)(y, z)
    expected_loss, expected_gradient = categorical_reference(
        z.numpy().astype(np.float64), y, 2.0, np.ones(3)
    )
    np.testing.assert_allclose(loss.numpy(), expected_loss[0], rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), expected_gradient, atol=1e-6)
    assert loss.numpy() > trailing_by - 0.01


@pytest.mark.parametrize("head_name", ["logits", "softmax", "sigmoid", "sigmoid_logits"])
def test_gamma_zero_is_cross_entropy_value_and_gradient(head_name):
    """γ = 0 and no weights: exactly the plain cross-entropy, for logit and probability heads."""
    head = get_head(head_name)
    z = RNG.normal(size=(8, 6)).astype(np.float32) * 4
    if head.activation == "softmax":
        y = np.eye(6, dtype=np.float32)[RNG.integers(6, size=8)]
        plain = keras.losses.CategoricalCrossentropy(from_logits=head.from_logits)
    else:
        y = (RNG.random(z.shape) < 0.4).astype(np.float32)
        plain = keras.losses.BinaryCrossentropy(from_logits=head.from_logits)
    activate = {"softmax": tf.nn.softmax, "sigmoid": tf.sigmoid}[head.activation]
    focal = head.loss(focal=True, focal_gamma=0.0)
    results = []
    for loss_fn in (focal, plain):
        logits = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            outputs = logits if head.from_logits else activate(logits)
            loss = loss_fn(y, outputs)
        results.append((loss.numpy(), tape.gradient(loss, logits).numpy()))
    (focal_loss, focal_gradient), (plain_loss, plain_gradient) = results
    np.testing.assert_allclose(focal_loss, plain_loss, rtol=2e-6)
    np.testing.assert_allclose(focal_gradient, plain_gradient, rtol=1e-5, atol=1e-8)


def test_probability_heads_recover_logits_like_keras():
    """Through a Keras softmax layer, the focal loss sees the logits (no clipping at 1e-7)."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(inputs))
    z = tf.constant([[0.0, 40.0, 0.0]])
    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    loss_fn = get_head("softmax").loss(focal=True, focal_gamma=0.0)
    eager = loss_fn(y, model(z)).numpy()
    graph = tf.function(lambda t: loss_fn(y, model(t)))(z).numpy()
    np.testing.assert_allclose([eager, graph], [40.0, 40.0], rtol=1e-6)


def test_pos_weight_is_pytorch_bce_with_logits_pos_weight():
    z = RNG.normal(size=(8, 4)).astype(np.float32) * 3
    y = (RNG.random(z.shape) < 0.3).astype(np.float32)
    weights = [1.0, 2.0, 5.0, 0.5]
    loss = get_head("sigmoid_logits").loss(pos_weight=weights)(y, z).numpy()
    zz = z.astype(np.float64)
    # PyTorch's definition: -[w y log σ(z) + (1 - y) log(1 - σ(z))], averaged over all elements.
    expected = (np.array(weights) * y * softplus(-zz) + (1 - y) * softplus(zz)).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("head_name", "options", "match"),
    [
        ("logits", {"focal": True, "focal_gamma": -1.0}, "focal_gamma must be at least 0"),
        ("softmax", {"pos_weight": 2.0}, "pos_weight weighs the positives"),
    ],
)
def test_invalid_loss_options_are_refused(head_name, options, match):
    with pytest.raises(ValueError, match=match):
        get_head(head_name).loss(**options)


def test_focal_losses_round_trip_through_their_config():
    for loss in (
        CategoricalFocalLoss(1.5, alpha=[0.5, 1.0], label_smoothing=0.1),
        BinaryFocalLoss(0.5, alpha=0.25, pos_weight=[1.0, 3.0], from_logits=False),
    ):
        revived = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(revived) is type(loss)
        assert revived.get_config() == loss.get_config()


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_losses_smooth_their_targets_as_documented(gamma):
    """Categorical: y (1 - a) + a / K over K = 10 classes; binary: y (1 - a) + a / 2 per class
    of K = 4, so neither can pass with the other's rule."""
    smoothing = 0.2
    z = RNG.normal(size=(6, 10)) * 3
    y = np.eye(10)[RNG.integers(0, 10, 6)]
    smoothed = y * (1 - smoothing) + smoothing / 10
    log_p = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
    expected = -(smoothed * (1 - np.exp(log_p)) ** gamma * log_p).sum(axis=-1)
    loss = CategoricalFocalLoss(gamma=gamma, label_smoothing=smoothing, reduction=None)
    np.testing.assert_allclose(loss(y, z.astype(np.float32)).numpy(), expected, rtol=2e-4)

    z = RNG.normal(size=(6, 4)) * 3
    y = RNG.integers(0, 2, (6, 4)).astype(np.float64)
    smoothed = y * (1 - smoothing) + smoothing / 2
    p, log_p, log_not_p = 1 / (1 + np.exp(-z)), -softplus(-z), -softplus(z)
    expected = -(smoothed * (1 - p) ** gamma * log_p
                 + (1 - smoothed) * p**gamma * log_not_p).mean(axis=-1)  # fmt: skip
    loss = BinaryFocalLoss(gamma=gamma, label_smoothing=smoothing, reduction=None)
    np.testing.assert_allclose(loss(y, z.astype(np.float32)).numpy(), expected, rtol=2e-4)

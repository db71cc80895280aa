"""Numeric checks of every statement in docs/losses.md (each test names its section there)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import get_head

RNG = np.random.default_rng(0)
K = 10


def random_logits(n=8, k=K, scale=3.0, dtype=np.float64):
    return (RNG.normal(size=(n, k)) * scale).astype(dtype)


def one_hot(n=8, k=K):
    return np.eye(k)[RNG.integers(k, size=n)]


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def naive_ce(z, y):
    return -(y * np.log(softmax(z))).sum(axis=-1)


def naive_bce(z, y):
    p = sigmoid(z)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=-1)


def finite_difference(f, z, eps=1e-6):
    """Central differences of sum(f(z)) in float64."""
    grad = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = eps
        grad[index] = (f(z + step).sum() - f(z - step).sum()) / (2 * eps)
    return grad


def tape_gradient(loss_fn, z):
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = tf.reduce_sum(loss_fn(z))
    return tape.gradient(loss, z).numpy()


# §1: dCE(softmax(z), y)/dz = softmax(z) - y
def test_softmax_cross_entropy_gradient_is_softmax_minus_target():
    z, y = random_logits(), one_hot()
    analytic = softmax(z) - y
    head_loss = get_head("logits").loss(label_smoothing=0.0, focal=False)
    # The head's loss averages over the batch; per-example losses come from the functional form.
    per_example = lambda t: keras.losses.categorical_crossentropy(y, t, from_logits=True)  # noqa: E731
    np.testing.assert_allclose(tape_gradient(per_example, z), analytic, atol=1e-10)
    np.testing.assert_allclose(finite_difference(lambda t: naive_ce(t, y), z), analytic, atol=1e-6)
    sparse = np.argmax(y, axis=-1)
    batch_mean = lambda t: head_loss(sparse, t)  # noqa: E731
    # Keras losses compute in float32 (keras.config.floatx()), hence the looser tolerance.
    np.testing.assert_allclose(tape_gradient(batch_mean, z), analytic / len(z), atol=1e-7)


# §1: the gradient also holds for soft targets (any y on the simplex), e.g. smoothed labels.
def test_softmax_gradient_with_soft_targets():
    z = random_logits()
    y = softmax(random_logits())
    analytic = softmax(z) - y
    np.testing.assert_allclose(finite_difference(lambda t: naive_ce(t, y), z), analytic, atol=1e-6)


# §2: dBCE(sigmoid(z), y)/dz = sigmoid(z) - y, element by element
def test_sigmoid_binary_cross_entropy_gradient_is_sigmoid_minus_target():
    z = random_logits()
    y = (RNG.random(z.shape) < 0.3).astype(np.float64)
    analytic = sigmoid(z) - y
    np.testing.assert_allclose(finite_difference(lambda t: naive_bce(t, y), z), analytic, atol=1e-6)
    # Keras' BinaryCrossentropy averages over the K classes: its gradient is (sigmoid(z) - y) / K.
    per_example = lambda t: keras.losses.binary_crossentropy(y, t, from_logits=True)  # noqa: E731
    np.testing.assert_allclose(tape_gradient(per_example, z), analytic / K, atol=1e-10)


# §3: CE = logsumexp(z) - <y, z>; BCE = softplus(z) - y z
def test_stable_forms_equal_the_definitions():
    z, y = random_logits(), one_hot()
    lse = np.log(np.exp(z).sum(axis=-1))
    np.testing.assert_allclose(lse - (y * z).sum(axis=-1), naive_ce(z, y), rtol=1e-12)
    yb = (RNG.random(z.shape) < 0.5).astype(np.float64)
    softplus = np.logaddexp(0, z)
    np.testing.assert_allclose((softplus - yb * z).sum(axis=-1), naive_bce(z, yb), rtol=1e-10)


# §4: from_logits stays finite where -log(softmax(z)) overflows in float32
@pytest.mark.parametrize("head_name", ["logits", "sigmoid_logits"])
def test_from_logits_is_finite_for_huge_logits_in_float32(head_name):
    z = tf.constant([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], tf.float32)
    y = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]], tf.float32)
    head = get_head(head_name)
    loss_fn = head.loss(label_smoothing=1e-9) if head.task == "multiclass" else head.loss()
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = loss_fn(y, z)
    gradient = tape.gradient(loss, z)
    assert np.isfinite(loss.numpy()) and np.all(np.isfinite(gradient.numpy()))
    assert loss.numpy() > 1e3, "the loss is large, as it should be, yet finite"
    with tf.GradientTape() as tape:
        tape.watch(z)
        naive = (
            -tf.reduce_sum(y * tf.math.log(tf.nn.softmax(z)), axis=-1)
            if head.activation == "softmax"
            else -tf.reduce_sum(
                y * tf.math.log(tf.sigmoid(z)) + (1 - y) * tf.math.log(1 - tf.sigmoid(z)), axis=-1
            )
        )
        naive = tf.reduce_mean(naive)
    assert not np.isfinite(naive.numpy()) or not np.all(np.isfinite(tape.gradient(naive, z)))


# §4: in the ordinary range both paths compute the same loss
@pytest.mark.parametrize(
    ("probability_head", "logit_head"), [("softmax", "logits"), ("sigmoid", "sigmoid_logits")]
)
def test_probability_and_logit_paths_agree_in_ordinary_range(probability_head, logit_head):
    z = random_logits(scale=2.0, dtype=np.float32)
    if get_head(probability_head).activation == "softmax":
        y, probabilities = np.argmax(one_hot(), -1), softmax(z.astype(np.float64))
    else:
        y, probabilities = (
            (RNG.random(z.shape) < 0.3).astype(np.float32),
            sigmoid(z.astype(np.float64)),
        )
    # A plain constant: no logits attached for Keras to recover, so the probability path really runs.
    from_probabilities = get_head(probability_head).loss()(
        y, tf.constant(probabilities, tf.float32)
    )
    from_logits = get_head(logit_head).loss()(y, tf.constant(z))
    np.testing.assert_allclose(from_probabilities.numpy(), from_logits.numpy(), rtol=1e-5)


# §5: label smoothing replaces y by y(1 - a) + a/K (softmax) or y(1 - a) + a/2 (sigmoid)
@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_label_smoothing_produces_the_documented_target(alpha):
    z, y = random_logits(dtype=np.float32), one_hot().astype(np.float32)
    smoothed = y * (1 - alpha) + alpha / K
    loss = get_head("logits").loss(label_smoothing=alpha)(y, z).numpy()
    np.testing.assert_allclose(loss, naive_ce(z.astype(np.float64), smoothed).mean(), rtol=1e-5)
    # The minimiser of the smoothed loss is the smoothed target: gradient zero at softmax(z) = target.
    z_star = np.log(smoothed).astype(np.float64)
    gradient = tape_gradient(
        lambda t: keras.losses.categorical_crossentropy(
            y, t, from_logits=True, label_smoothing=alpha
        ),
        z_star,
    )
    np.testing.assert_allclose(gradient, 0.0, atol=1e-7)
    yb = (RNG.random(z.shape) < 0.3).astype(np.float32)
    bce = get_head("sigmoid_logits").loss(label_smoothing=alpha)(yb, z).numpy()
    target = yb * (1 - alpha) + alpha / 2
    np.testing.assert_allclose(bce, naive_bce(z.astype(np.float64), target).mean() / K, rtol=1e-5)


# §6: Keras clips probabilities to [1e-7, 1 - 1e-7] when no logits are attached
def test_keras_clips_plain_probabilities_to_epsilon():
    y = np.array([[1.0, 0.0]], np.float32)
    p = tf.constant([[0.0, 1.0]])
    assert keras.backend.epsilon() == pytest.approx(1e-7)
    np.testing.assert_allclose(
        keras.losses.categorical_crossentropy(y, p).numpy(), -np.log(1e-7), rtol=1e-5
    )
    # BCE of two positives predicted at probability 0: each term is -log(1e-7).
    bce = keras.losses.binary_crossentropy(np.ones((1, 2), np.float32), tf.zeros((1, 2)))
    np.testing.assert_allclose(bce.numpy(), -np.log(1e-7), rtol=1e-5)


# §6: on the TensorFlow backend Keras recovers the logits behind a softmax/sigmoid layer's output
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_keras_tf_backend_recovers_logits_of_activation_layer(activation):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Activation(activation)(inputs))
    z = tf.constant([[0.0, 100.0]])
    y = tf.constant([[1.0, 0.0]])
    loss_fn = (
        keras.losses.categorical_crossentropy
        if activation == "softmax"
        else keras.losses.binary_crossentropy
    )
    eager = loss_fn(y, model(z)).numpy()
    graph = tf.function(lambda t: loss_fn(y, model(t)))(z).numpy()
    # softmax: logsumexp(0, 100) - 0 = 100; sigmoid: mean(softplus(0), softplus(100)).
    exact = 100.0 if activation == "softmax" else (np.log(2) + 100.0) / 2
    np.testing.assert_allclose(np.ravel([eager, graph]), [exact, exact], rtol=1e-5)
    assert exact > -np.log(1e-7), "the clipped probability path would cap the loss at 16.1"


# §7-8 (focal losses, positive weights): tests/models/test_focal_losses.py

"""Heads under mixed precision, and models that carry their head (docs/losses.md §4, §9)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import HEADS, Classifier, create_model, get_head

POLICIES = ["mixed_bfloat16", "mixed_float16"]
K = 4


@pytest.fixture
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def saturating_model(head_name):
    """Input -> a hidden Dense under the global (mixed) policy -> the head; both Dense layers are
    the identity, so the logits equal the input, as float16/bfloat16 features would carry them."""
    inputs = keras.Input((K,))
    hidden = keras.layers.Dense(K, kernel_initializer="identity", bias_initializer="zeros")
    features = hidden(inputs)
    model = Classifier(inputs, get_head(head_name).build_outputs(features, K), head=head_name)
    model.get_layer("logits").set_weights([np.eye(K, dtype=np.float32), np.zeros(K, np.float32)])
    return model


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
@pytest.mark.parametrize("head_name", list(HEADS))
def test_heads_under_mixed_precision_keep_float32_exact_loss_and_gradient(policy, head_name):
    head = get_head(head_name)
    model = saturating_model(head_name)
    assert model.compute_dtype != "float32", "the hidden layer runs in the mixed policy"
    # The true class trails by 40 (multiclass) / a positive at -40 and a negative at +40
    # (multilabel): float16 or bfloat16 probabilities would round to 0 and 1 there.
    x = tf.constant([[0.0, 40.0, 0.0, 0.0], [-40.0, 40.0, 1.0, -1.0]])
    if head.task == "multiclass":
        y = np.array([0, 2])
        target = np.eye(K)[y]
        z = x.numpy().astype(np.float64)
        exact = np.logaddexp.reduce(z, axis=1) - z[np.arange(2), y]
        p = np.exp(z - np.logaddexp.reduce(z, axis=1, keepdims=True))
    else:
        target = y = np.array([[1, 0, 1, 0], [1, 0, 0, 1]], np.float32)
        z = x.numpy().astype(np.float64)
        exact = (np.logaddexp(0, z) - y * z).mean(axis=1)
        p = 1 / (1 + np.exp(-z))
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(x)
        loss = head.loss()(y, outputs)
    assert outputs.dtype == tf.float32, "the head computes and returns float32"
    np.testing.assert_allclose(loss.numpy(), exact.mean(), rtol=1e-5)
    # Through two identity layers d loss / d x = d loss / d z = (p - y) / N (and / K multilabel).
    scale = len(x) * (1 if head.task == "multiclass" else K)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), (p - target) / scale, atol=2e-3)


def test_created_models_carry_their_head_through_saving(tmp_path):
    model = create_model("mlp", input_shape=(8, 8, 1), num_classes=3, head="sigmoid_logits")
    assert isinstance(model, Classifier) and model.head is get_head("sigmoid_logits")
    model.compile("adam")
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    assert model.loss.from_logits
    model.save(tmp_path / "model.keras")
    revived = keras.saving.load_model(tmp_path / "model.keras")
    assert revived.head is get_head("sigmoid_logits")
    assert revived.compiled and revived.loss.from_logits


@pytest.mark.parametrize(
    ("head_name", "loss", "named"),
    [
        ("logits", get_head("softmax").loss(), "'logits'"),
        ("softmax", keras.losses.CategoricalCrossentropy(from_logits=True), "'softmax'"),
        ("logits", "binary_crossentropy", "'logits'"),
        ("sigmoid_logits", keras.losses.SparseCategoricalCrossentropy(), "'sigmoid_logits'"),
    ],
)
def test_a_loss_contradicting_the_models_head_is_refused(head_name, loss, named):
    model = create_model("mlp", input_shape=(8, 8, 1), num_classes=3, head=head_name)
    with pytest.raises(ValueError, match=named) as error:
        model.compile("adam", loss=loss)
    assert "expects" in str(error.value) and "outputs" in str(error.value)


def test_the_heads_own_loss_and_custom_losses_are_accepted():
    model = create_model("mlp", input_shape=(8, 8, 1), num_classes=3, head="logits")
    own = get_head("logits").loss(label_smoothing=0.1)
    model.compile("adam", loss=own)
    assert model.loss is own and own.from_logits and own.label_smoothing == 0.1
    model.compile("adam", loss="mse")  # not a cross-entropy: the user's choice
    assert model.loss == "mse"
    loss = model.train_on_batch(np.zeros((4, 8, 8, 1)), np.eye(3)[[0, 1, 2, 0]])
    assert np.isfinite(loss)

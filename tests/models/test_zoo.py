"""Every registered model with every head: build, forward, backward, config and .keras round trips.

Registering a model is enough to get it tested here.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from core.outputs import decide
from models import HEADS, get_head

CASES = [(name, head) for name in models.list_models() for head in HEADS]


def tiny_batch(model, n=3):
    return np.random.default_rng(0).random((n, *model.input_shape[1:]), np.float32)


def labels_for(head, n=3, k=10):
    if head.label_format() == "sparse":
        return np.arange(n) % k
    return (np.random.default_rng(1).random((n, k)) < 0.3).astype(np.float32)


@pytest.mark.parametrize(("name", "head_name"), CASES)
def test_model_with_head(name, head_name, tmp_path):
    head = get_head(head_name)
    model = models.create_model(name, num_classes=10, head=head_name)
    x = tiny_batch(model)
    outputs = model(x, training=False).numpy()
    assert outputs.shape == (3, 10) and np.all(np.isfinite(outputs))
    probabilities = head.probabilities(tf.constant(outputs)).numpy()
    if head.activation == "softmax":
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((probabilities >= 0) & (probabilities <= 1))

    # Backward: the head's loss gives finite gradients for every trainable weight.
    with tf.GradientTape() as tape:
        loss = head.loss()(labels_for(head), model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(loss.numpy())
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in gradients)

    outputs = model(x, training=False).numpy()  # the training pass moved batch-norm statistics
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False).numpy(), outputs, rtol=1e-5, atol=1e-6)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(x, training=False).numpy(), outputs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head_name", ["softmax", "sigmoid_logits"])
def test_flip_averaged_outputs_average_the_logits_of_each_image_and_its_mirror(head_name):
    head = get_head(head_name)
    model = models.create_model("mnist_fastnet", head=head_name)
    x = tiny_batch(model)
    plain = head.inference_outputs(model)
    averaged = head.inference_outputs(model, flip_average=True)(x)
    expected = (plain(x)["logits"].numpy() + plain(x[:, :, ::-1])["logits"].numpy()) / 2
    np.testing.assert_allclose(averaged["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    activation = tf.nn.softmax if head.activation == "softmax" else tf.sigmoid
    np.testing.assert_allclose(averaged["probabilities"].numpy(),
                               activation(expected).numpy(), rtol=1e-5, atol=1e-7)  # fmt: skip
    assert not np.allclose(expected, plain(x)["logits"].numpy()), "the mirror image counts"


@pytest.mark.parametrize("head_name", list(HEADS))
def test_inference_outputs_apply_the_activation_exactly_once(head_name):
    head = get_head(head_name)
    model = models.create_model("mlp", head=head_name)
    x = tiny_batch(model)
    inference = head.inference_outputs(model)(x)
    logits = inference["logits"].numpy()
    expected = tf.nn.softmax(logits) if head.activation == "softmax" else tf.sigmoid(logits)
    np.testing.assert_allclose(inference["probabilities"].numpy(), expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        head.probabilities(model(x)).numpy(), expected.numpy(), rtol=1e-5, atol=1e-7
    )
    classes = decide(inference["probabilities"].numpy(), head.task)
    if head.task == "multiclass":
        np.testing.assert_array_equal(classes, logits.argmax(axis=1))
    else:
        np.testing.assert_array_equal(classes, (logits >= 0).astype(np.int64))


def test_reference_convnet_matches_keras_io_parameter_count():
    assert models.create_model("mnist_cnn").count_params() == 34_826
    assert 0.26e6 < models.create_model("resnet20").count_params() < 0.28e6


def test_fastnet_hidden_layer_sits_between_the_features_and_the_head():
    plain = models.create_model("mnist_fastnet", batch_norm=False)
    hidden = models.create_model("mnist_fastnet", batch_norm=False, hidden_units=512)
    features = 3 * 3 * 128  # three 2x2 poolings of 28x28, 128 channels
    added = features * 512 + 512 + 512 * 10 + 10 - (features * 10 + 10)
    assert hidden.count_params() - plain.count_params() == added
    dense = [layer for layer in hidden.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [512, 10]


def test_airnet_takes_another_activation_everywhere_and_fashion_mnist_images():
    options = {"input_shape": (28, 28, 1), "widths": (32, 64, 128), "head": "logits"}
    gelu = models.create_model("airnet", **options)
    relu = models.create_model("airnet", **options, activation="relu")

    def activations(model):
        return [layer.activation.__name__ for layer in model.layers
                if isinstance(layer, keras.layers.Activation)]  # fmt: skip

    assert activations(gelu) == ["gelu"] * 7  # the stem and two per block
    assert activations(relu) == ["relu"] * 7
    assert relu.count_params() == gelu.count_params()
    assert "fashion_mnist" in models.get_entry("airnet").suits


def test_list_models_pattern_and_at_least_five_architectures():
    assert len(models.list_models()) >= 5
    assert models.list_models("resnet*") == ["resnet20", "resnet56"]
    assert models.list_models("nothing*") == []


@pytest.mark.parametrize(
    ("head", "task", "message"),
    [
        ("softmax", "multilabel", "softmax makes the classes compete"),
        ("logits", "multilabel", "Valid heads for multilabel: sigmoid, sigmoid_logits"),
        ("sigmoid", "multiclass", "allow_sigmoid_for_multiclass=True"),
        ("sigmoid_logits", "multiclass", "Valid heads for multiclass: softmax, logits"),
    ],
)
def test_head_that_does_not_fit_the_task_is_a_clear_error(head, task, message):
    with pytest.raises(ValueError, match=message):
        models.create_model("mlp", head=head, task=task)


def test_sigmoid_on_multiclass_when_asked_for_explicitly():
    model = models.create_model(
        "mlp", head="sigmoid", task="multiclass", allow_sigmoid_for_multiclass=True
    )
    assert model.output.shape == (None, 10)


@pytest.mark.parametrize(("head", "twin"), [("softmax", "logits"), ("sigmoid", "sigmoid_logits")])
def test_from_logits_on_a_probability_head_is_refused(head, twin):
    with pytest.raises(
        ValueError, match=f"from_logits=False.*Received: from_logits=True.*{twin!r}"
    ):
        get_head(head).loss(from_logits=True)
    with pytest.raises(ValueError, match="from_logits=True"):
        get_head(twin).loss(from_logits=False)


def test_unknown_names_list_the_valid_choices():
    with pytest.raises(ValueError, match="Unknown model 'vgg'.*mnist_cnn"):
        models.create_model("vgg")
    with pytest.raises(ValueError, match="Unknown head 'tanh'.*softmax, logits, sigmoid"):
        models.create_model("mlp", head="tanh")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        get_head("logits").loss(label_smoothing=1.5)


def test_label_format_follows_loss_options():
    assert get_head("softmax").label_format() == "sparse"
    assert get_head("softmax").label_format(label_smoothing=0.1) == "one_hot"
    assert get_head("logits").label_format(focal=True) == "one_hot"
    assert get_head("sigmoid").label_format() == "multi_hot"
    assert isinstance(get_head("logits").loss(), keras.losses.SparseCategoricalCrossentropy)


def test_the_catalogue_zoo_models_reads_matches_the_registry():
    from bench.models_table import catalogue_rows
    from models.catalogue import architectures

    assert architectures() == catalogue_rows(), "run python -m bench.readme_table to refresh it"

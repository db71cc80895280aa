"""The zoo's models and recipes run on Keras' JAX backend too (the accelerator bench trains there,
on a machine without TensorFlow): nothing on that path imports TensorFlow, and a model saved on
TensorFlow computes the same outputs on JAX, batch normalization included."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
from bench.accelerator import on_jax

ROOT = Path(__file__).resolve().parents[2]


def run_on_jax(code: str) -> str:
    """``code`` in a fresh interpreter on Keras' JAX backend; its standard output."""
    env = on_jax({**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_tensorflow_processes_never_see_jax():
    """TensorFlow imports jax at start where it can (about 0.45 s more for every `zoo train` and
    `zoo serve`): JAX lives apart, on the path of JAX processes only."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, training.loop, serving.process.server\n"
         "print('jax' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False"]


def test_models_configs_and_recipes_import_no_tensorflow():
    out = run_on_jax(
        "import sys, keras, models, training.config, training.datasets, training.recipe\n"
        "for name in models.list_models():\n"
        "    models.create_model(name, head='logits')\n"
        "print(keras.backend.backend(), 'tensorflow' in sys.modules)\n"
    )
    assert out.split() == ["jax", "False"]


@pytest.mark.parametrize("name", ["airnet", "mnist_fastnet", "resnet20"])
def test_a_model_saved_on_tensorflow_predicts_the_same_on_jax(tmp_path, name):
    model = models.create_model(name, head="softmax", num_classes=10)
    x = np.random.default_rng(0).random((4, *model.input_shape[1:]), dtype=np.float32)
    model(x, training=True)  # moving statistics away from their start, so inference uses them
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    out = run_on_jax(
        "import json, keras, numpy as np, models\n"
        f"model = keras.saving.load_model({str(tmp_path / 'model.keras')!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "print(json.dumps(np.asarray(model(x, training=False)).tolist()))\n"
    )
    np.testing.assert_allclose(json.loads(out), np.asarray(model(x)), atol=2e-4)


def test_batch_norm_trains_the_same_on_jax():
    """Normalized outputs and updated moving statistics of one training call."""
    x = np.random.default_rng(1).normal(3.0, 2.0, (8, 5, 5, 4)).astype(np.float32)
    layer = models.layers.FusedBatchNorm(momentum=0.5, epsilon=1e-3)
    outputs = np.asarray(layer(x, training=True))
    expected = [outputs, layer.moving_mean.numpy(), layer.moving_variance.numpy()]
    out = run_on_jax(
        "import json, numpy as np, models\n"
        "x = np.random.default_rng(1).normal(3.0, 2.0, (8, 5, 5, 4)).astype(np.float32)\n"
        "layer = models.layers.FusedBatchNorm(momentum=0.5, epsilon=1e-3)\n"
        "outputs = np.asarray(layer(x, training=True))\n"
        "print(json.dumps([a.tolist() for a in\n"
        "                  (outputs, layer.moving_mean.numpy(), layer.moving_variance.numpy())]))\n"
    )
    names = ("outputs", "mean", "variance")
    for name, jax_value, tf_value in zip(names, json.loads(out), expected, strict=True):
        np.testing.assert_allclose(jax_value, tf_value, rtol=1e-4, atol=1e-4, err_msg=name)


def test_the_zoo_losses_give_the_same_values_on_jax():
    logits = [[2.0, -1.0, 0.5], [0.0, 30.0, -30.0]]
    targets = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    losses = {
        "focal": models.CategoricalFocalLoss(gamma=2.0, alpha=[0.2, 0.3, 0.5], label_smoothing=0.1),
        "binary": models.BinaryFocalLoss(gamma=1.0, alpha=0.25, pos_weight=[1.0, 2.0, 3.0]),
    }
    expected = {key: float(loss(targets, logits)) for key, loss in losses.items()}
    out = run_on_jax(
        "import json, models\n"
        "losses = {\n"
        "    'focal': models.CategoricalFocalLoss(gamma=2.0, alpha=[0.2, 0.3, 0.5],\n"
        "                                         label_smoothing=0.1),\n"
        "    'binary': models.BinaryFocalLoss(gamma=1.0, alpha=0.25, pos_weight=[1.0, 2.0, 3.0]),\n"
        "}\n"
        f"print(json.dumps({{k: float(loss({targets}, {logits})) for k, loss in losses.items()}}))\n"
    )
    assert json.loads(out) == pytest.approx(expected, rel=1e-5)

"""Export: TF Serving layout, signatures' names, dtypes and shapes, metadata, atomic versions."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from core.artifact import ArtifactError, read_metadata
from training import datasets
from training.config import build_config
from training.export import ExportError, build_archive, export_run
from training.loop import train
from zoo import cli


@pytest.fixture(scope="module", params=["softmax", "logits"])
def mnist_run(request, tmp_path_factory):
    config = build_config(
        {
            "model": "mnist_cnn",
            "head": request.param,
            "epochs": 1,
            "train_limit": 256,
            "test_limit": 64,
            "batch_size": 64,
            "runs_root": str(tmp_path_factory.mktemp("runs")),
        }
    )
    return train(config, verbose=0)


def tensor_spec(signature, name):
    return signature.structured_outputs[name]


def test_export_writes_servable_signatures(mnist_run, tmp_path):
    path = export_run(mnist_run.path, name="mnist", repo=tmp_path / "repo")
    assert path == tmp_path / "repo" / "mnist" / "1"
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "predict_images"}

    serving = loaded.signatures["serving_default"]
    (_, inputs) = serving.structured_input_signature
    assert list(inputs) == ["images"]
    assert inputs["images"].dtype == tf.uint8 and inputs["images"].shape.as_list() == [
        None,
        28,
        28,
        1,
    ]
    outputs = serving.structured_outputs
    assert set(outputs) == {"probabilities", "log_probabilities", "classes", "logits"}
    assert outputs["probabilities"].dtype == tf.float32 and outputs[
        "probabilities"
    ].shape.as_list() == [None, 10]
    assert outputs["classes"].dtype == tf.int64 and outputs["classes"].shape.as_list() == [None]
    assert outputs["logits"].dtype == tf.float32

    images, labels = datasets.load_arrays("mnist", "test", limit=16)
    result = serving(images=tf.constant(images))
    probabilities = result["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(result["classes"].numpy(), probabilities.argmax(axis=1))
    np.testing.assert_allclose(
        tf.nn.softmax(result["logits"]).numpy(), probabilities, rtol=1e-4, atol=1e-6
    )

    mnist_example = loaded.signatures["predict_images"]
    (_, example_inputs) = mnist_example.structured_input_signature
    assert example_inputs["images"].dtype == tf.float32
    assert example_inputs["images"].shape.as_list() == [None, 784]
    assert list(mnist_example.structured_outputs) == ["scores"]
    scores = mnist_example(images=tf.constant(images.reshape(-1, 784) / 255.0, tf.float32))[
        "scores"
    ]
    np.testing.assert_allclose(scores.numpy(), probabilities, rtol=1e-4, atol=1e-6)

    metadata = read_metadata(path)
    assert metadata.class_names == [str(d) for d in range(10)]
    assert metadata.task == "multiclass" and metadata.head in ("softmax", "logits")
    assert metadata.version == 1 and "accuracy" in metadata.metrics
    assert metadata.config["model"] == "mnist_cnn"


def test_versions_increment_and_are_immutable(mnist_run, tmp_path):
    repo = tmp_path / "repo"
    assert export_run(mnist_run.path, name="m", repo=repo).name == "1"
    assert export_run(mnist_run.path, name="m", repo=repo).name == "2"
    assert export_run(mnist_run.path, name="m", repo=repo, version=7).name == "7"
    with pytest.raises(ExportError, match="already exists; versions are immutable"):
        export_run(mnist_run.path, name="m", repo=repo, version=2)
    assert sorted(p.name for p in (repo / "m").iterdir()) == ["1", "2", "7"], "no temporary left"


def test_failed_export_leaves_no_version(mnist_run, tmp_path, monkeypatch):
    from training import export

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "build_archive", broken)
    with pytest.raises(RuntimeError):
        export_run(mnist_run.path, name="m", repo=tmp_path / "repo")
    assert list((tmp_path / "repo" / "m").iterdir()) == []


def test_multilabel_export_classes_are_indicators(tmp_path):
    config = build_config(
        {
            "model": "mlp",
            "dataset": "mnist_multilabel",
            "head": "sigmoid_logits",
            "epochs": 1,
            "train_limit": 64,
            "test_limit": 16,
            "batch_size": 32,
            "runs_root": str(tmp_path / "runs"),
            "histogram_freq": 0,
        }
    )
    run = train(config, verbose=0)
    path = export_run(run.path, name="digits", repo=tmp_path / "repo")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    images, _ = datasets.load_arrays("mnist_multilabel", "test", limit=4)
    result = serving(images=tf.constant(images))
    probabilities = result["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, tf.sigmoid(result["logits"]).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(
        result["classes"].numpy(), (probabilities >= 0.5).astype(np.int64)
    )
    assert json.loads((path / "assets.extra" / "zoo.json").read_text())["task"] == "multilabel"


@pytest.mark.parametrize("temperature", [1.0, [0.5] * 10])
def test_a_probability_exactly_at_the_threshold_is_a_label_present(tmp_path, temperature):
    """The export's rule is core.outputs' (p >= threshold): zero weights give logits of exactly
    0, so every probability is exactly 0.5, whatever the temperature, and every label is present."""
    model = models.create_model("mlp", input_shape=(56, 56, 1), head="sigmoid_logits")
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    info = datasets.get_info("mnist_multilabel")
    archive = build_archive(model, model.head, info, 0.5, temperature)
    archive.write_out(str(tmp_path / "m"), verbose=False)
    serving = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    result = serving(images=tf.zeros((2, 56, 56, 1), tf.uint8))
    np.testing.assert_array_equal(result["probabilities"].numpy(), 0.5)
    np.testing.assert_array_equal(result["classes"].numpy(), 1)


def test_export_cli_errors_exit_2(tmp_path, capsys, mnist_run):
    assert (
        cli.main(["export", str(mnist_run.path), "--name", "bad name!", "--repo", str(tmp_path)])
        == 2
    )
    assert "Invalid model name 'bad name!'" in capsys.readouterr().err
    unfinished = mnist_run.path.parent / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text((mnist_run.config_path).read_text())
    (unfinished / "run.json").write_text("{}")
    assert cli.main(["export", str(unfinished), "--name", "m", "--repo", str(tmp_path)]) == 2
    assert "did not finish" in capsys.readouterr().err
    argv = ["export", str(mnist_run.path), "--repo", str(tmp_path), "--version", str(2**70)]
    assert cli.main(argv) == 2
    assert "Version must be an integer from 1 to 9223372036854775807" in capsys.readouterr().err
    assert not (tmp_path / "mnist").exists() or not list((tmp_path / "mnist").iterdir())


def test_metadata_that_is_not_text_is_an_artifact_error(tmp_path):
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / "assets.extra" / "zoo.json").write_bytes(b'{"task": "\xc6\xff"}')
    with pytest.raises(ArtifactError, match="zoo.json is not UTF-8 text"):
        read_metadata(tmp_path)


def test_reported_multilabel_decisions_are_the_ones_the_export_serves(tmp_path):
    """The run's exact match and F1 decide on calibrated probabilities, as the export does."""
    config = build_config(
        {"model": "mlp", "dataset": "mnist_multilabel", "head": "sigmoid_logits", "epochs": 2,
         "train_limit": 600, "test_limit": 300, "batch_size": 64, "threshold": 0.3,
         "validation_split": 0.2, "runs_root": str(tmp_path / "runs"), "histogram_freq": 0}
    )  # fmt: skip
    run = train(config, verbose=0)
    metrics = json.loads(run.metrics_path.read_text())
    temperatures = np.asarray(metrics["calibration"]["temperature"])
    assert np.abs(np.log(temperatures)).max() > 0.05, "a temperature that changes decisions"
    path = export_run(run.path, name="digits", repo=tmp_path / "repo")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    images, targets = datasets.load_arrays("mnist_multilabel", "test", limit=300)
    served = serving(images=tf.constant(images))["classes"].numpy()
    assert metrics["test"]["exact_match"] == pytest.approx((served == targets).all(axis=1).mean())


def test_a_run_with_test_time_flip_exports_and_reports_mirror_averaged_logits(tmp_path):
    config = build_config(
        {"model": "mnist_fastnet", "epochs": 1, "train_limit": 256, "test_limit": 64,
         "batch_size": 64, "test_time_flip": True, "validation_split": 0.25,
         "runs_root": str(tmp_path / "runs"), "histogram_freq": 0}
    )  # fmt: skip
    run = train(config, verbose=0)
    model = run.load_model(run.model_path, compile=False)
    path = export_run(run.path, name="mnist", repo=tmp_path / "repo")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    images, labels = datasets.load_arrays("mnist", "test", limit=64)
    served = serving(images=tf.constant(images))["logits"].numpy()
    x = images.astype(np.float32) / 255
    scorer = keras.Model(model.input, model.get_layer("logits").output)
    expected = (scorer(x).numpy() + scorer(x[:, :, ::-1]).numpy()) / 2
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["test"]["accuracy"] == pytest.approx((served.argmax(axis=1) == labels).mean())

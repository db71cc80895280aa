"""ONNX and LiteRT exports: each computes what the SavedModel serves, calibrated and all, within
float32 round-off (int8: the same decisions almost everywhere), and bad requests write nothing."""

import numpy as np
import pytest
import tensorflow as tf

import models
from training import datasets
from training.export import build_archive, load_pretrained, run_dataset_info
from training.portable import (
    PortableExportError,
    export_loaded,
    export_portable,
    portable_probabilities,
)
from zoo import cli


def savedmodel_probabilities(loaded, images, tmp_path) -> np.ndarray:
    model, config, metrics, _ = loaded
    info = run_dataset_info(config, metrics)
    temperature = metrics["calibration"]["temperature"]
    archive = build_archive(model, model.head, info, config.threshold, temperature,
                            config.test_time_flip)  # fmt: skip
    archive.write_out(str(tmp_path / "savedmodel"), verbose=False)
    serving = tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["serving_default"]
    return serving(images=tf.constant(images))["probabilities"].numpy()


@pytest.mark.parametrize(
    ("checkpoint", "split"),
    [("mnist_fastnet:mnist", "test"), ("mnist_fastnet:mnist_multilabel", "test")],
)
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_the_export_computes_what_the_savedmodel_serves(checkpoint, split, fmt, tmp_path):
    loaded = load_pretrained(*checkpoint.split(":"))
    assert loaded[2]["calibration"]["temperature"] != 1.0, "calibration must be in the file"
    images, _ = datasets.load_arrays(loaded[1].dataset, split, limit=64)
    path = export_loaded(loaded, fmt, tmp_path / f"model.{fmt}")
    expected = savedmodel_probabilities(loaded, images, tmp_path)
    np.testing.assert_allclose(portable_probabilities(path, images), expected, atol=2e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_int8_quantization_keeps_the_decisions_in_a_quarter_of_the_size(tmp_path):
    loaded = load_pretrained("mnist_fastnet", "mnist")
    images, labels = datasets.load_arrays("mnist", "test", limit=500)
    full = export_loaded(loaded, "litert", tmp_path / "full.tflite")
    small = export_loaded(loaded, "litert-int8", tmp_path / "int8.tflite")
    assert small.stat().st_size < full.stat().st_size / 3
    decisions = portable_probabilities(small, images).argmax(-1)
    assert (decisions == portable_probabilities(full, images).argmax(-1)).mean() >= 0.98
    assert (decisions == labels).mean() >= 0.97


def test_bad_requests_are_refused_and_write_nothing(tmp_path):
    model = models.create_model("mnist_fastnet", pretrained="mnist")
    common = {"temperature": 1.0, "flip": False}
    with pytest.raises(PortableExportError, match="Unknown format 'coreml'"):
        export_portable(model, model.head, fmt="coreml", path=tmp_path / "m", **common)
    with pytest.raises(PortableExportError, match="litert-int8 needs representative images"):
        export_portable(model, model.head, fmt="litert-int8", path=tmp_path / "m", **common)
    with pytest.raises(PortableExportError, match="is a folder"):
        export_portable(model, model.head, fmt="onnx", path=tmp_path, **common)
    (tmp_path / "file").write_text("")
    with pytest.raises(PortableExportError, match="Cannot write .*file/m.onnx"):
        export_portable(model, model.head, fmt="onnx", path=tmp_path / "file" / "m.onnx", **common)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    nested = export_portable(
        model, model.head, fmt="onnx", path=tmp_path / "a" / "m.onnx", **common
    )
    assert [p.name for p in nested.parent.iterdir()] == ["m.onnx"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "onnx", "--repo", "x"], "--repo does nothing with --format onnx"),
        (["--format", "litert", "--data-dir", "x"], "--data-dir does nothing with --format"),
        (["--output", "m.onnx"], "--output is only for --format onnx"),
        ([], None),
    ],
)
def test_options_that_do_nothing_with_the_format_are_refused(argv, message, tmp_path, capsys,
                                                             monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code = cli.main(["export", "--pretrained", "mnist_fastnet:mnist", *argv])
    if message is None:
        assert code == 0 and (tmp_path / "model_repo" / "mnist" / "1" / "saved_model.pb").exists()
        return
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

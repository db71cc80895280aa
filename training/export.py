"""Export a finished run as a SavedModel in TensorFlow Serving's layout: ``REPO/NAME/VERSION/``.

Signatures:

- ``serving_default``: ``images`` uint8 [N, H, W, C] raw pixels -> ``probabilities`` float32
  [N, K] (calibrated when the run fitted a temperature: the activation of ``logits / T``),
  ``log_probabilities`` float32 [N, K] (their logarithm, computed from the logits, so finite
  where float32 probabilities underflow to 0), ``classes`` int64 ([N] argmax; multilabel: [N, K]
  0/1 at the threshold) and ``logits`` float32 [N, K], raw. Scaling to [0, 1] happens inside the
  graph.
- ``predict_images`` (28x28x1 models with 10 classes): the signature of TensorFlow Serving's MNIST
  example, ``images`` float32 [N, 784] in [0, 1] -> ``scores`` float32 [N, 10], so that example's
  client works unchanged.

Beside the SavedModel, ``assets.extra/zoo.json`` holds the metadata (docs/export.md). The version
is written into a hidden temporary folder and renamed into place: a server polling the repository
never sees a half-written version.
"""

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from training import datasets
from training.config import build_config, load_yaml
from training.preprocess import scale_pixels
from training.run_dir import RunDir
from zoo.errors import ZooError

METADATA_PATH = Path("assets.extra") / "zoo.json"
METADATA_FORMAT = 2  # 2 adds "calibration" and the log_probabilities output; 1 is still read
MNIST_EXAMPLE_SHAPE = (28, 28, 1)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExportError(ZooError):
    """An export request that cannot be carried out; nothing is written."""


def existing_versions(model_dir: Path) -> list[int]:
    """The integer version folders of a model, ascending (hidden temporary folders are ignored)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def build_archive(
    model: keras.Model,
    head: models.Head,
    info: datasets.DatasetInfo,
    threshold: float,
    temperature: float | list[float] = 1.0,
) -> keras.export.ExportArchive:
    """The SavedModel's endpoints around ``model``: preprocessing, calibrated probabilities, their
    logarithm, raw logits and classes.

    Args:
        temperature: divides the logits before the activation; one number, or one per class
            (multilabel). Defaults to 1 (no calibration).
    """
    inference = head.inference_outputs(model)
    archive = keras.export.ExportArchive()
    archive.track(inference)
    height, width, channels = info.input_shape
    inverse_temperature = tf.constant(1.0 / np.asarray(temperature, np.float64), tf.float32)

    def outputs(images_01: tf.Tensor) -> dict:
        logits = tf.cast(inference(images_01, training=False)["logits"], tf.float32)
        scaled = logits * inverse_temperature
        if head.activation == "softmax":
            log_probabilities = tf.nn.log_softmax(scaled, axis=-1)
        else:
            log_probabilities = tf.math.log_sigmoid(scaled)
        probabilities = tf.exp(log_probabilities)
        if info.task == datasets.MULTICLASS:
            classes = tf.argmax(probabilities, axis=-1)
        else:
            classes = tf.cast(models.labels_present(probabilities, threshold), tf.int64)
        return {
            "probabilities": probabilities,
            "log_probabilities": log_probabilities,
            "classes": classes,
            "logits": logits,
        }

    archive.add_endpoint(
        "serving_default",
        lambda images: outputs(scale_pixels(images)),
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")],
    )
    if info.input_shape == MNIST_EXAMPLE_SHAPE and info.num_classes == 10:
        archive.add_endpoint(
            "predict_images",
            lambda images: {
                "scores": outputs(tf.reshape(images, [-1, *MNIST_EXAMPLE_SHAPE]))["probabilities"]
            },
            input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")],
        )
    return archive


def signature_summary(info: datasets.DatasetInfo) -> dict:
    """The signatures' inputs and outputs as documented in zoo.json."""
    h, w, c = info.input_shape
    k = info.num_classes
    classes_shape = [-1] if info.task == datasets.MULTICLASS else [-1, k]
    summary = {
        "serving_default": {
            "inputs": {
                "images": {
                    "dtype": "uint8",
                    "shape": [-1, h, w, c],
                    "description": "raw pixels 0-255; scaled to [0, 1] in the graph",
                }
            },
            "outputs": {
                "probabilities": {"dtype": "float32", "shape": [-1, k]},
                "log_probabilities": {"dtype": "float32", "shape": [-1, k]},
                "classes": {"dtype": "int64", "shape": classes_shape},
                "logits": {"dtype": "float32", "shape": [-1, k]},
            },
        }
    }
    if info.input_shape == MNIST_EXAMPLE_SHAPE and k == 10:
        summary["predict_images"] = {
            "inputs": {
                "images": {
                    "dtype": "float32",
                    "shape": [-1, 784],
                    "description": "pixels in [0, 1], row-major 28x28",
                }
            },
            "outputs": {"scores": {"dtype": "float32", "shape": [-1, 10]}},
        }
    return summary


def export_run(
    run_path: str | os.PathLike, *, name: str, repo: str | os.PathLike, version: int | None = None
) -> Path:
    """Exports the final model of a run as ``repo/name/version``; returns that path.

    Args:
        run_path: a completed run directory (holding ``model.keras``).
        name: the model's name in the repository (what clients put in ``model_spec.name``).
        repo: the model repository's root folder; created if missing.
        version: the version number. Defaults to the next integer after the newest version.
    """
    run = RunDir.open(run_path)
    if not run.model_path.is_file():
        raise ExportError(
            f"Run {str(run.path)!r} has no final model (model.keras): it did not finish. "
            f"Resume it with: zoo train --resume {run.path}"
        )
    if not NAME_PATTERN.match(name):
        raise ExportError(
            f"Invalid model name {name!r}: use letters, digits, '_', '-' and '.', starting with a "
            "letter or digit."
        )
    model_dir = Path(repo) / name
    versions = existing_versions(model_dir)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if version < 1:
        raise ExportError(f"Version must be a positive integer. Received: version={version}")
    target = model_dir / str(version)
    if target.exists():
        raise ExportError(
            f"{target} already exists; versions are immutable. Existing versions: {versions}. "
            "Omit --version to export as the next one."
        )

    config = build_config(load_yaml(run.config_path))
    info = datasets.get_info(config.dataset)
    head = models.get_head(config.head)
    model = keras.saving.load_model(run.model_path, compile=False)
    metrics = json.loads(run.metrics_path.read_text()) if run.metrics_path.exists() else {}
    test_metrics = {k: v for k, v in metrics.get("test", {}).items() if isinstance(v, float)}
    calibration = metrics.get("calibration")
    temperature = calibration["temperature"] if calibration else 1.0

    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-export-{version}-", dir=model_dir))
    try:
        archive = build_archive(model, head, info, config.threshold, temperature)
        archive.write_out(str(staging), verbose=False)
        metadata = {
            "format_version": METADATA_FORMAT,
            "name": name,
            "version": version,
            "task": info.task,
            "head": head.name,
            "threshold": config.threshold,
            "class_names": list(info.class_names),
            "input": {"shape": list(info.input_shape), "dtype": "uint8", "scale": "1/255 in graph"},
            "signatures": signature_summary(info),
            "metrics": test_metrics,
            "calibration": None
            if calibration is None
            else {
                "method": calibration["method"],
                "temperature": temperature,
                "validation_examples": calibration["validation"]["examples"],
                "test": calibration["test"],
            },
            "config": config.to_dict(),
            "source_run": str(run.path.resolve()),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staging / METADATA_PATH).parent.mkdir(exist_ok=True)
        (staging / METADATA_PATH).write_text(json.dumps(metadata, indent=2) + "\n")
        os.chmod(staging, 0o755)
        os.rename(staging, target)  # atomic: the version appears complete or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_metadata(version_dir: str | os.PathLike) -> dict:
    """The ``zoo.json`` metadata of an exported version ({} for SavedModels from elsewhere)."""
    path = Path(version_dir) / METADATA_PATH
    return json.loads(path.read_text()) if path.is_file() else {}

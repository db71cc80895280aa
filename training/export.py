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

Beside the SavedModel, ``assets.extra/zoo.json`` holds the metadata (``core.artifact``, which also
derives the signatures' spec). The version is written into a hidden temporary folder and renamed
into place: a server polling the repository never sees a half-written version. Two exports of the
same model at once each get their own version; temporary folders that a killed export left behind
are removed by the next export once they are an hour old.
"""

import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from core.artifact import (
    MAX_VERSION,
    NAME_PATTERN,
    Calibration,
    InputInfo,
    ModelMetadata,
    existing_versions,
    signature_spec,
    write_metadata,
)
from core.errors import ZooError
from core.outputs import labels_present
from training import datasets
from training.config import TrainConfig, load_yaml, parse_config
from training.preprocess import scale_pixels
from training.run_dir import RunDir

STALE_STAGING_SECONDS = 3600
TF_DTYPES = {"uint8": tf.uint8, "float32": tf.float32}


class ExportError(ZooError):
    """An export request that cannot be carried out; nothing is written."""


def build_archive(
    model: keras.Model,
    head: models.Head,
    info: datasets.DatasetInfo,
    threshold: float,
    temperature: float | list[float] = 1.0,
    flip: bool = False,
) -> keras.export.ExportArchive:
    """The SavedModel's endpoints around ``model``: preprocessing, calibrated probabilities, their
    logarithm, raw logits and classes.

    Args:
        temperature: divides the logits before the activation; one number, or one per class
            (multilabel). Defaults to 1 (no calibration).
        flip: average each image's logits with its mirror image's (``test_time_flip``).
            Defaults to False.
    """
    inference = head.inference_outputs(model, flip_average=flip)
    archive = keras.export.ExportArchive()
    archive.track(inference)
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
            classes = tf.cast(labels_present(probabilities, threshold), tf.int64)
        return {
            "probabilities": probabilities,
            "log_probabilities": log_probabilities,
            "classes": classes,
            "logits": logits,
        }

    spec = signature_spec(info.task, info.input_shape, info.num_classes)

    def input_signature(name: str) -> list[tf.TensorSpec]:
        ((input_name, tensor),) = spec[name].inputs.items()
        shape = [None if d == -1 else d for d in tensor.shape]
        return [tf.TensorSpec(shape, TF_DTYPES[tensor.dtype], name=input_name)]

    archive.add_endpoint(
        "serving_default",
        lambda images: outputs(scale_pixels(images)),
        input_signature=input_signature("serving_default"),
    )
    if "predict_images" in spec:  # TensorFlow Serving's MNIST example client
        archive.add_endpoint(
            "predict_images",
            lambda images: {
                "scores": outputs(tf.reshape(images, [-1, *info.input_shape]))["probabilities"]
            },
            input_signature=input_signature("predict_images"),
        )
    return archive


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
    model_dir = _model_dir(name, repo, version)
    return _export(*load_run(run_path), model_dir, version)


def export_pretrained(
    model_name: str, dataset: str, *, name: str, repo: str | os.PathLike, version: int | None = None
) -> Path:
    """Exports a shipped checkpoint (``models.list_pretrained()``) as ``repo/name/version``, with
    the calibration its card records; returns that path."""
    models.get_card(model_name, dataset)  # an unknown checkpoint before any folder is made
    model_dir = _model_dir(name, repo, version)
    return _export(*load_pretrained(model_name, dataset), model_dir, version)


Loaded = tuple[keras.Model, TrainConfig, dict, str]  # model, config, metrics, where from


def load_run(run_path: str | os.PathLike) -> Loaded:
    """A finished run's final model, config and metrics, and its path as where it came from."""
    run = RunDir.open(run_path)
    if not run.model_path.is_file():
        raise ExportError(
            f"Run {str(run.path)!r} has no final model (model.keras): it did not finish. "
            f"Resume it with: zoo train --resume {run.path}"
        )
    config = parse_config(load_yaml(run.config_path))  # checked when the run started
    metrics = json.loads(run.metrics_path.read_text()) if run.metrics_path.exists() else {}
    model = run.load_model(run.model_path, compile=False)
    return model, config, metrics, str(run.path.resolve())


def load_pretrained(model_name: str, dataset: str) -> Loaded:
    """A shipped checkpoint, verified, with the config and figures of its card."""
    card = models.get_card(model_name, dataset)
    model = models.create_model(model_name, pretrained=dataset)
    metrics = {"dataset": card["dataset_info"], "test": card["test"]}
    if card["calibration"]:
        metrics["calibration"] = card["calibration"]
    source = f"pretrained {model_name}:{dataset} (sha256 {card['weights']['sha256']})"
    return model, parse_config(card["config"]), metrics, source


def _export(model, config, metrics: dict, source: str, model_dir: Path, version: int | None):
    """Writes ``model`` with its calibration as the next (or the given) version of
    ``model_dir``."""
    info = run_dataset_info(config, metrics)
    head = models.get_head(config.head)
    calibration = metrics.get("calibration")
    temperature = calibration["temperature"] if calibration else 1.0
    metadata = ModelMetadata(
        name=model_dir.name,
        version=version or 0,  # set below, once the version is taken
        task=info.task,
        head=head.name,
        threshold=config.threshold,
        class_names=list(info.class_names),
        input=InputInfo(shape=list(info.input_shape)),
        signatures=signature_spec(info.task, info.input_shape, info.num_classes),
        metrics={k: v for k, v in metrics.get("test", {}).items() if isinstance(v, float)},
        calibration=None
        if calibration is None
        else Calibration(
            temperature=temperature,
            validation_examples=calibration["validation"]["examples"],
            test=calibration["test"],
        ),
        config=config.to_dict(),
        source_run=source,
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )

    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(model_dir)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir))
    except OSError as error:
        raise ExportError(f"Cannot write into {str(model_dir)!r}: {error.strerror}.") from None
    try:
        archive = build_archive(
            model, head, info, config.threshold, temperature, config.test_time_flip
        )
        archive.write_out(str(staging), verbose=False)
        os.chmod(staging, 0o755)
        return _publish(staging, model_dir, metadata, version)
    except OSError as error:
        raise ExportError(
            f"Export to {str(model_dir)!r} failed, nothing was published: {error.strerror or error}."
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _model_dir(name: str, repo: str | os.PathLike, version: int | None) -> Path:
    """``repo/name``, once the name, the repository and the version asked for are checked."""
    if not NAME_PATTERN.match(name):
        raise ExportError(
            f"Invalid model name {name!r}: use letters, digits, '_', '-' and '.', starting with a "
            "letter or digit."
        )
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise ExportError(f"--repo {str(repo)!r} is a file; give the repository's folder.")
    model_dir = repo / name
    versions = existing_versions(model_dir)
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise ExportError(
            f"Version must be an integer from 1 to {MAX_VERSION} (int64, as TensorFlow Serving's "
            f"API carries it). Received: version={version}"
        )
    if version is not None and (model_dir / str(version)).exists():
        raise ExportError(
            f"{model_dir / str(version)} already exists; versions are immutable. Existing "
            f"versions: {versions}. Omit --version to export as the next one."
        )

    return model_dir


def _publish(staging: Path, model_dir: Path, metadata: ModelMetadata, version: int | None) -> Path:
    """Renames ``staging`` to the next free version (or ``version``); atomic, so the version
    appears complete or not at all. A version taken meanwhile by another export is skipped."""
    while True:
        number = version or (max(existing_versions(model_dir), default=0) + 1)
        write_metadata(staging, metadata.model_copy(update={"version": number}))
        target = model_dir / str(number)
        try:
            os.rename(staging, target)
            return target
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            if version is not None:
                raise ExportError(
                    f"{target} was created by another export meanwhile; versions are immutable."
                ) from None


def run_dataset_info(config, metrics: dict) -> datasets.DatasetInfo:
    """What the run trained on, as its metrics.json recorded it (an image folder need not be
    there any more), else from the catalog."""
    if "dataset" in metrics:
        return datasets.DatasetInfo.from_json(metrics["dataset"])
    return datasets.get_info(config.dataset, image_size=config.image_hw)


def remove_stale_staging(model_dir: Path) -> None:
    """Removes the temporary folders of exports killed more than an hour ago."""
    now = time.time()
    for entry in model_dir.glob(".tmp-export-*"):
        try:
            if now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # removed by another export meanwhile
            continue

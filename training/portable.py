"""Exports for servers other than TensorFlow Serving: ONNX (Triton's ONNX Runtime backend,
onnxruntime anywhere) and LiteRT / TFLite (mobile, TF Serving's TFLite path), both through Keras'
own ``model.export(format=...)``.

Each file holds what the SavedModel's ``serving_default`` computes for ``probabilities``: uint8
pixels [N, H, W, C] in, scaled to [0, 1] inside, the mirror average where the run used it, the
calibration temperature, then the head's activation. ``litert-int8`` adds post-training
quantization (int8 weights and activations, calibrated on training images; inputs and outputs
stay uint8 and float32).
"""

import contextlib
import os
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from core.errors import ZooError
from core.quiet import captured_stderr, verbose
from training import datasets
from training.export import Loaded

FORMATS = {"onnx": ".onnx", "litert": ".tflite", "litert-int8": ".tflite"}
REPRESENTATIVE_BATCHES = 32
REPRESENTATIVE_IMAGES = 512


class PortableExportError(ZooError):
    """A portable export that cannot be written; nothing is left behind."""


def probability_model(model: keras.Model, head, temperature, flip: bool) -> keras.Model:
    """``model`` as one Keras model from raw pixels to calibrated probabilities."""
    inference = head.inference_outputs(model, flip_average=flip)
    images = keras.Input(shape=model.input_shape[1:], dtype="uint8", name="images")
    scaled = keras.layers.Rescaling(1 / 255, dtype="float32")(images)
    logits = inference(scaled)["logits"]
    inverse_temperature = (1 / np.asarray(temperature, np.float64)).astype(np.float32).tolist()
    calibrated = keras.layers.Rescaling(inverse_temperature, dtype="float32")(logits)
    probabilities = keras.layers.Activation(head.activation, name="probabilities")(calibrated)
    return keras.Model(images, probabilities, name=f"{model.name}_probabilities")


def export_portable(
    model: keras.Model,
    head,
    *,
    temperature,
    flip: bool,
    fmt: str,
    path: str | os.PathLike,
    representative_images: np.ndarray | None = None,
) -> Path:
    """Writes ``model`` as ``fmt`` (``onnx``, ``litert`` or ``litert-int8``) to ``path``,
    through a temporary file renamed into place. ``litert-int8`` needs ``representative_images``
    (uint8, a few hundred training images) to calibrate its activation ranges."""
    if fmt not in FORMATS:
        raise PortableExportError(f"Unknown format {fmt!r}. Valid choices: {', '.join(FORMATS)}.")
    if fmt == "litert-int8" and representative_images is None:
        raise PortableExportError("litert-int8 needs representative images to calibrate on.")
    path = Path(path)
    if path.is_dir():
        raise PortableExportError(f"--output {str(path)!r} is a folder; give a file name.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cannot_write(path, error) from None
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.stem}{FORMATS[fmt]}")
    wrapped = probability_model(model, head, temperature, flip)
    wrapped(np.zeros((1, *model.input_shape[1:]), np.uint8))  # export traces a called model
    options = {}
    if fmt == "litert-int8":
        batches = np.array_split(representative_images, REPRESENTATIVE_BATCHES)

        def representative():
            for batch in batches:
                yield [tf.constant(batch, tf.uint8)]

        options = {"optimizations": [tf.lite.Optimize.DEFAULT],
                   "representative_dataset": representative}  # fmt: skip
    try:
        with (
            contextlib.nullcontext() if verbose() else captured_stderr(),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", FutureWarning)  # Keras' tf2onnx shim on NumPy 2
            wrapped.export(str(temporary), format=fmt.split("-")[0], verbose=False, **options)
        os.replace(temporary, path)
    except OSError as error:
        raise _cannot_write(path, error) from None
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _cannot_write(path: Path, error: OSError) -> PortableExportError:
    return PortableExportError(
        f"Cannot write {str(path)!r}: {error.strerror or error}; nothing was written."
    )


def export_loaded(loaded: Loaded, fmt: str, path: str | os.PathLike, data_dir=None) -> Path:
    """Writes a loaded run or checkpoint (``training.export.load_run`` / ``load_pretrained``) as
    ``fmt``; ``litert-int8`` calibrates on the first 512 images of its training split, read
    from ``data_dir`` (default: the run's own)."""
    model, config, metrics, _ = loaded
    calibration = metrics.get("calibration")
    representative = None
    if fmt == "litert-int8":
        representative, _ = datasets.load_arrays(
            config.dataset, "train", data_dir=data_dir or config.data_dir or None,
            limit=REPRESENTATIVE_IMAGES, seed=config.seed, image_size=config.image_hw,
        )  # fmt: skip
    return export_portable(
        model, models.get_head(config.head),
        temperature=calibration["temperature"] if calibration else 1.0,
        flip=config.test_time_flip, fmt=fmt, path=path, representative_images=representative,
    )  # fmt: skip


def portable_probabilities(path: str | os.PathLike, images: np.ndarray, batch: int = 256):
    """Runs a portable export on uint8 ``images`` with its own runtime (onnxruntime or the LiteRT
    interpreter); returns the probabilities, float32 [N, K]."""
    path = Path(path)
    outputs = []
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for start in range(0, len(images), batch):
            outputs.append(session.run(None, {name: images[start : start + batch]})[0])
        return np.concatenate(outputs).astype(np.float32)
    from ai_edge_litert.interpreter import Interpreter

    with captured_stderr():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(str(path))
        (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            interpreter.resize_tensor_input(source["index"], chunk.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(source["index"], chunk)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(target["index"]).copy())
    return np.concatenate(outputs).astype(np.float32)
